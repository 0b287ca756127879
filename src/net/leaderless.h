/* leaderless.h - leaderless mode in the server: one Dynamo-style node
 * (src/core/dynamo.h) on libuv, its replica on the server's own keyspace
 * and WAL, its peers over TCP (peer.c, DYN frames).
 *
 * The local replica lives in the server's struct cmd_server: database 0
 * holds key -> dvv_encode(object), database 1 the hints this node keeps for
 * others under (4-byte big-endian owner id, key). Each change is one WAL
 * record of a deterministic SET or DEL, exactly as a client's write would
 * be logged, so the server's fsync thread, group commit, snapshots and
 * restart (snapshot, then WAL replay) serve this mode unchanged; the core
 * hears that a change is durable (dyn_durable) once the server reports the
 * WAL durable past its record (ll_durable).
 *
 * Clients see only what the commands of leaderless_cmd.c give them (GET,
 * SET, DEL, EXISTS, MGET, MSET, TRIAD.GETALL, TRIAD.PUT,
 * TRIAD.CONSISTENCY, READONLY, READWRITE) and the connection and server
 * commands the server runs itself; never the stored encodings.
 */
#ifndef TRIAD_LEADERLESS_H
#define TRIAD_LEADERLESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../cmd/cmd.h"
#include "../common/buf.h"
#include "../core/vclock.h"
#include "config.h"

struct ll;

struct ll_hooks {
    void *arg;
    /* The answer to req_id (RESP bytes, borrowed for the call). Called
     * from ll_command itself when the answer is known at once, else later
     * from the loop (never from inside the core). */
    void (*reply)(void *arg, uint64_t req_id, const char *resp, size_t len);
    void (*log)(void *arg, int level, const char *line);
    /* How far the WAL is durable now (fsync no: UINT64_MAX, nothing
     * waits). */
    uint64_t (*durable_lsn)(void *arg);
};

/* Start the node over the keyspace and WAL the server has just loaded
 * (cmd's log_fn must be set): fresh says the data directory held no data,
 * which gives the node a new actor id. Listens for peers at this node's
 * --peers entry and dials the others (the gossip seeds). 0, or -1 with
 * errmsg. cfg and cmd are borrowed for the node's life. */
int ll_open(struct ll **out, uv_loop_t *loop, const struct config *cfg, struct cmd_server *cmd,
            bool fresh, const struct ll_hooks *hooks, char *errmsg, size_t errlen);
/* The WAL is durable up to lsn. */
void ll_durable(struct ll *ll, uint64_t lsn);

/* A connection's state: levels, READONLY, the causal context it has seen
 * per key, and the command it waits for. Zeroed when the connection
 * opens; ll_session_free when it closes. */
#define LL_SESSION_CTX_MAX 256

struct ll_ctx_entry {
    uint64_t hash;
    char *key;
    size_t klen;
    struct dvv_clock vv;
};

struct ll__cmd;

struct ll_session {
    uint8_t r_level, w_level; /* enum ll_level (leaderless_cmd.c); 0: the configured default */
    uint8_t r_num, w_num;     /* the number, for a numeric level */
    bool readonly;
    struct ll_ctx_entry *ctx; /* LL_SESSION_CTX_MAX, allocated at first use */
    uint32_t n_ctx, next_ctx; /* held; the oldest (replaced next) once full */
    struct ll__cmd *cmd;      /* the command waiting for the core, or NULL */
};

enum ll_outcome {
    LL_LOCAL,   /* a connection or server command: the server runs it (cmd_exec) */
    LL_DONE,    /* answered into cc->out */
    LL_PENDING, /* the answer comes through hooks.reply(req_id) (it may have already) */
};

/* A client's command in leaderless mode (the caller has checked AUTH). */
enum ll_outcome ll_command(struct ll *ll, struct ll_session *ls, struct cmd_client *cc,
                           uint64_t req_id, int argc, char **argv, size_t *argvlen);
/* RESET: levels and READONLY back to the defaults, the context forgotten. */
void ll_session_reset(struct ll_session *ls);
/* The connection is gone: its command's answer, if any, is dropped. */
void ll_session_free(struct ll_session *ls);

/* INFO's `# Leaderless` section (the lines after the header). */
void ll_info(struct ll *ll, struct tbuf *t);

/* TRIAD.LEAVE: decommission this node (dynamo.h: dyn_leave). INFO's
 * status goes leaving, then left once every key and hint is on the nodes
 * that own it without this one. */
void ll_leave(struct ll *ll);

/* Stop talking to peers and ticking; ll_free once the loop has run. */
void ll_stop(struct ll *ll);
/* After ll_stop, once every WAL record is durable: the next start may keep
 * the actor id (after a crash it takes a new one). */
void ll_shutdown_clean(struct ll *ll);
void ll_free(struct ll *ll);

#endif
