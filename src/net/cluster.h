/* cluster.h - leader mode in the server: one Raft node (src/node) on libuv,
 * its log on disk (src/store/raftlog.c) and its peers over TCP (peer.c).
 *
 * The server hands data commands (reads and writes) to cluster_submit()
 * and gets each answer through hooks.reply; it makes the WAL durable on its
 * fsync thread as for a single node and tells the cluster how far with
 * cluster_durable(). Everything else (connection commands, INFO, CONFIG,
 * ...) the server still runs itself.
 */
#ifndef TRIAD_CLUSTER_H
#define TRIAD_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../cmd/cmd.h"
#include "../common/buf.h"
#include "config.h"

struct cluster;
struct wal;

struct cluster_hooks {
    void *arg;
    /* The answer to req_id (RESP bytes, borrowed for the call) and the log
     * index it reflects (node.h): pass both to cluster_session_answer(). May be
     * called from inside cluster_command. */
    void (*reply)(void *arg, uint64_t req_id, const char *resp, size_t len, uint64_t index);
    /* Records were appended to the WAL: hand them to the fsync thread. */
    void (*kick_syncer)(void *arg);
    void (*log)(void *arg, int level, const char *line);
};

/* Open the node's log in cfg->dir (bootstrapping a new cluster of every
 * member of cfg->peers when the log is empty), listen for peers at this
 * node's address in cfg->peers and dial the others. 0, or -1 with errmsg. */
int cluster_open(struct cluster **out, uv_loop_t *loop, const struct config *cfg,
                 const struct cluster_hooks *hooks, char *errmsg, size_t errlen);
/* The WAL the server's fsync thread writes for the cluster. */
struct wal *cluster_wal(struct cluster *cl);
/* The reaper that deletes the files compaction frees (raftlog.h). */
struct reaper;
void cluster_set_reaper(struct cluster *cl, struct reaper *r);
/* The WAL is durable up to lsn (or, with fsync no, written). */
void cluster_durable(struct cluster *cl, uint64_t lsn);

/* Does this command go through the log (writes) or a ReadIndex (reads)? */
bool cluster_handles(const struct cmd_spec *spec);

/* A key a connection WATCHes: what it held when WATCH read it (fsm.h's
 * fsm_key_digest; 0: no key). */
struct cluster_watch {
    int db;
    uint64_t digest;
    char *key;
    size_t len;
};

/* A client connection's leader-mode state; the server keeps one per
 * connection, zeroed when it opens, and frees it with
 * cluster_session_free. */
struct cluster_session {
    uint8_t ack;   /* TRIAD.CONSISTENCY W: enum raft_ack, 0 = QUORUM */
    bool readonly; /* READONLY: reads from this node's own state machine */
    uint64_t seen; /* the newest log index it wrote or read: its floor */
    struct cluster_watch *watch; /* WATCHed keys, for the next EXEC */
    uint32_t n_watch, cap_watch;
    uint32_t watch_pending; /* the last ones wait for WATCH's read */
};

/* Hand the connection the answer to its command (hooks.reply): appended
 * to out (WATCH's read becomes its +OK), and the floor moves to index. */
void cluster_session_answer(struct cluster_session *cs, const char *resp, size_t len,
                            uint64_t index, struct tbuf *out);
/* Forget the WATCHed keys (UNWATCH, EXEC, DISCARD, RESET). */
void cluster_session_unwatch(struct cluster_session *cs);
void cluster_session_free(struct cluster_session *cs);

enum cluster_outcome {
    CLUSTER_LOCAL,   /* not leader mode's: the server runs it (cmd_exec) */
    CLUSTER_DONE,    /* answered into out */
    CLUSTER_PENDING, /* the answer comes through hooks.reply(req_id) (it may have already) */
};

/* Leader mode's part of a client's command (the caller has checked AUTH):
 * data commands through the log or a ReadIndex (or this node's state after
 * READONLY); EXEC of the transaction cc has queued (the caller then ends
 * cc's MULTI), WATCH, UNWATCH; READONLY, READWRITE, WAIT, ROLE, SENTINEL,
 * TRIAD.EXEC, TRIAD.CONSISTENCY, TRIAD.TOKEN, TRIAD.AFTER, TRIAD.MEMBERS,
 * TRIAD.TRANSFER, TRIAD.FAULT. Answers go to cc->out. Commands with a
 * wrong argument count are left to cmd_exec, which answers Redis's
 * error. */
enum cluster_outcome cluster_command(struct cluster *cl, struct cluster_session *cs,
                                     struct cmd_client *cc, uint64_t req_id, int argc,
                                     char **argv, size_t *argvlen);

/* TRIAD.FAULT: drop everything to and from these peers (a partition the
 * test drives), or nothing (heal). */
void cluster_fault_block(struct cluster *cl, const uint32_t *ids, size_t n);


/* INFO replication's lines (Redis's role and Triad's Raft figures). */
void cluster_info(struct cluster *cl, struct tbuf *t);
bool cluster_is_leader(const struct cluster *cl);
/* Keys in each database of the replicated state (INFO keyspace, DBSIZE). */
size_t cluster_keys(struct cluster *cl, int db, size_t *expires);

/* Stop talking to peers; the log stays open for cluster_free. */
void cluster_stop(struct cluster *cl);
void cluster_free(struct cluster *cl);

#endif
