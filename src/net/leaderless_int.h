/* leaderless_int.h - what leaderless.c (the node on libuv: its store, peers
 * and timer) and leaderless_cmd.c (the client commands) share. Nothing
 * outside those two files includes it.
 */
#ifndef TRIAD_LEADERLESS_INT_H
#define TRIAD_LEADERLESS_INT_H

#include "../core/dynamo.h"
#include "../core/gossip.h"
#include "leaderless.h"
#include "peer.h"

/* Sub-requests of one command (MGET, MSET, DEL ...) in the core at once:
 * a command of a million keys is fed to it in windows. */
#define LL_CMD_WINDOW 128

/* One key of a command. */
struct ll__item {
    const char *key; /* into the command's copy of its arguments */
    size_t klen;
    const char *val;
    size_t vlen;
    struct dvv_clock ctx; /* SET, DEL: the session's view; PUT: the client's context */
    uint32_t off, len;    /* its reply fragment in cmd->frags */
    uint8_t state;        /* LL__ITEM_* */
    bool err;             /* the fragment is an error reply */
    bool flag;            /* DEL: existed; EXISTS: live */
};

enum { LL__ITEM_NEW = 0, LL__ITEM_SENT, LL__ITEM_DONE };

/* A client command in flight: owned by the node (ll->cmds), pointed to by
 * its session until answered; a session that closes leaves it to finish
 * (its sub-requests are answered by the core, then it is freed). */
struct ll__cmd {
    struct ll *ll;
    struct ll_session *ls; /* NULL once the connection has closed */
    uint64_t req_id;       /* the server's */
    uint8_t kind;          /* LL__K_* (leaderless_cmd.c) */
    int proto;
    uint32_t r, w;         /* dyn_req's levels (0: default) */
    bool local;            /* READONLY read */
    uint32_t n;            /* items */
    uint32_t next;         /* the first item not yet submitted */
    uint32_t outstanding;  /* submitted, not answered */
    uint32_t done;
    struct ll__item *items;
    char *args;            /* copies of the keys and values */
    struct tbuf frags;     /* reply fragments */
    bool queued, driving;
    struct ll__cmd *next_ready;
    struct ll__cmd *prev_all, *next_all;
};

/* leaderless.c */

/* Hand item idx of cmd to the core (its answer comes to ll__cmd_result,
 * possibly before this returns). */
void ll__submit(struct ll *ll, struct ll__cmd *cmd, uint32_t idx, const struct dyn_req *rq);
/* cmd has progress to act on: ll__cmd_drive runs from the loop soon. */
void ll__ready(struct ll *ll, struct ll__cmd *cmd);
void ll__cmd_link(struct ll *ll, struct ll__cmd *cmd);
void ll__cmd_unlink(struct ll *ll, struct ll__cmd *cmd);
uint32_t ll__n(const struct ll *ll);
struct dyn *ll__dyn(struct ll *ll);
/* The configured W (write) or R. */
uint32_t ll__default_level(const struct ll *ll, bool write);
void ll__answer(struct ll *ll, uint64_t req_id, const char *resp, size_t len);

/* leaderless_cmd.c */

/* The core's answer to item idx (r borrowed for the call). Records, never
 * calls the core. */
void ll__cmd_result(struct ll__cmd *cmd, uint32_t idx, const struct dyn_result *r);
/* Submit what the window allows; answer and free the command when every
 * item is done (or free it when its session is gone and nothing is out). */
void ll__cmd_drive(struct ll__cmd *cmd);
void ll__cmd_free(struct ll__cmd *cmd);

#endif
