/* node.h - one replica: the Raft core + the state machine (fsm: cmd over
 * kv), behind an `io` interface.
 *
 * The node does no I/O itself. Everything it needs from the world goes
 * through struct node_io: the time, randomness (once, to seed the core),
 * sending a message to a peer, persisting a ready, a timer, and replying to
 * a client. The same code runs under the simulator (sim/) and, in the
 * server, under libuv (net/); nothing here includes <uv.h>.
 *
 * Clients: node_submit() takes one command. A write on the leader becomes a
 * log entry (with its session's client id and sequence number, so that a
 * retry is applied once) and is answered when it has been applied; a read
 * on the leader is answered at a ReadIndex (lease or heartbeat round). On
 * any other node, the answer is an error naming the leader, so the caller
 * can go there (proxying comes with the server).
 */
#ifndef TRIAD_NODE_H
#define TRIAD_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../core/raft.h"

struct node;

/* What a restarted node finds on its disk (all borrowed for node_new). */
struct node_disk {
    struct raft_hard_state hs;
    const struct raft_snapshot *snapshot; /* NULL: none */
    const struct raft_entry *entries;     /* after the snapshot, in order */
    size_t n_entries;
};

struct node_io {
    void *arg;
    uint64_t (*now_ms)(void *arg);
    uint64_t (*random)(void *arg);
    /* Deliver m to m->to, best effort. m and what it points to are borrowed
     * for the call: copy what is kept. */
    void (*send)(void *arg, const struct raft_msg *m);
    /* Start making rd's hard state, snapshot and entries durable (copied
     * during the call); call node_persisted() once they are. At most one is
     * outstanding. */
    void (*persist)(void *arg, const struct raft_ready *rd);
    /* Call node_tick() at (or soon after) at_ms; replaces earlier requests. */
    void (*set_timer)(void *arg, uint64_t at_ms);
    /* The answer to request req_id (RESP bytes, borrowed for the call).
     * index: the log index the answer reflects (a write's entry; the
     * applied index a read was served at; WAIT's floor), 0 for an error.
     * A session keeps the largest it has seen (read-your-writes,
     * monotonic reads, TRIAD.TOKEN). */
    void (*reply)(void *arg, uint64_t req_id, const char *resp, size_t len, uint64_t index);
    /* Optional: batch the work of many inputs. If set, inputs (step, tick,
     * submit, persisted, ...) only record what they change and call wake
     * (once until the next node_flush); the caller then calls node_flush()
     * before it waits for more input, and one round of readies carries
     * everything that came in meanwhile. If NULL, every input is processed
     * at once. */
    void (*wake)(void *arg);
    /* Optional observer (the simulator's checks): an entry was applied;
     * digest is the state machine's digest after it. */
    void (*applied)(void *arg, const struct raft_entry *e, uint64_t digest);
    /* Optional: take the log compaction's snapshot elsewhere. Called when
     * the log is due for compaction, with the index the state machine has
     * applied; the callee serializes node_snapshot_fsm(n) of the state as
     * it is during this call (the server: in a forked child, whose memory
     * is that state) and later hands the bytes to node_compact() or calls
     * node_compact_failed(), either possibly from inside the call. At most
     * one is outstanding. If NULL, the node serializes the state machine
     * itself, on the spot, which stalls it for as long as that takes. */
    void (*snapshot)(void *arg, struct node *n, uint64_t index);
};

struct node_config {
    struct raft_config raft;
    uint64_t snapshot_entries; /* compact after this many applied entries (0: never) */
    /* While keys have deadlines, the leader moves the state machine's clock
     * (which only entries advance) at least this often, so keys expire in a
     * cluster that receives no writes. 0: never. */
    uint64_t clock_tick_ms;
    /* How long a write applied at QUORUM may wait for the further copies
     * its ack level asks for (W ALL), before it is answered -NOREPLICAS. */
    uint64_t ack_timeout_ms;
};

void node_config_default(struct node_config *c, raft_id id);

/* Create a replica; disk is NULL for an empty one. bootstrap (may be NULL)
 * makes a brand-new cluster's first configuration. Returns NULL on error
 * (errmsg says why: e.g. a corrupt snapshot). */
struct node *node_new(const struct node_config *cfg, const struct node_io *io,
                      const struct node_disk *disk, const struct raft_conf *bootstrap,
                      char *errmsg, size_t errlen);
/* Free it; requests still waiting get no reply (the process is going). */
void node_free(struct node *n);

/* io.snapshot's work: the state machine's snapshot (fsm_snapshot's
 * bytes) appended to out. */
void node_snapshot_fsm(const struct node *n, struct tbuf *out);
/* io.snapshot's result: the state machine's snapshot as of index, len
 * bytes of data (malloc'd; the node owns it now). The log is compacted up
 * to index unless a snapshot at or past it was installed meanwhile. */
void node_compact(struct node *n, uint64_t index, uint8_t *data, uint64_t len);
/* io.snapshot failed: compaction is tried again after a tenth of
 * snapshot_entries more entries; after three failures in a row the node
 * serializes that snapshot itself, on the spot. */
void node_compact_failed(struct node *n);
/* io.snapshot cannot start now (the last one's worker is still going): as
 * node_compact_failed, tried again a tenth of snapshot_entries later, but
 * not counted as a failure, so it never brings the compaction on the spot
 * that three failures do. */
void node_compact_later(struct node *n);

/* Inputs. */
void node_step(struct node *n, const struct raft_msg *m);
void node_tick(struct node *n);
void node_persisted(struct node *n);
/* Process what the inputs since the last call changed (io.wake); false
 * if there was nothing to do. */
bool node_flush(struct node *n);

/* A client command: argv[0] is its name (borrowed for the call). */
struct node_req {
    uint64_t id;           /* echoed by io.reply */
    uint64_t client_id;    /* 0: no session (no retry protection) */
    uint64_t seq;          /* the session's write number, from 1 */
    int db, proto;
    /* Writes: when the answer may leave (DESIGN.md §4); 0 = QUORUM. A
     * write whose answer does not depend on the state (plain SET, MSET) is
     * answered "+OK" once it is durable on that many copies, at ONE and
     * TWO possibly before it commits (it may then be lost on failover); any
     * other write once applied, and at ALL once every voter has it too. */
    enum raft_ack ack;
    /* Reads: never from a state older than this index (the session's
     * writes and what it has read: read-your-writes, monotonic reads). */
    uint64_t after;
    int argc;
    char **argv;
    size_t *argvlen;
};

/* Run a command on the leader (writes through the log, reads at a
 * ReadIndex); elsewhere the answer is -NOTLEADER <id>. */
void node_submit(struct node *n, const struct node_req *rq);

/* A read served by this node's own state machine (a follower after
 * READONLY): at once when it has applied rq->after, or as soon as it has
 * when its commit index is there already. false: it is further behind (the
 * caller asks the leader instead). */
bool node_read_local(struct node *n, const struct node_req *rq);

/* WAIT numreplicas timeout (Redis's semantics, on the leader): answered
 * with the number of other members whose durable log holds `index`, once
 * that reaches `replicas` or timeout_ms has passed (0: no timeout). */
void node_wait(struct node *n, uint64_t req_id, uint64_t index, uint32_t replicas,
               uint64_t timeout_ms);

/* TRIAD.MEMBERS on the leader (elsewhere -NOTLEADER <id>). ADD records
 * the node's peer address in the log (fsm.h: the member table), then adds
 * it as a learner; with `voter` the leader promotes it by itself once it
 * has caught up (node_tick). PROMOTE makes a learner a voter, REMOVE takes
 * a member out (the leader included: it steps down once that commits).
 * Answered "+OK" once the change has committed, or with why not. One
 * change at a time. */
void node_change_member(struct node *n, uint64_t req_id, enum raft_change change, raft_id id,
                        const char *host, uint16_t port, bool voter);

/* Counters, for INFO and the simulator's report. */
struct node_stats {
    uint64_t writes_proposed, writes_answered, reads_answered;
    uint64_t redirected, failed;
    uint64_t clock_ticks;
    uint64_t snapshots_taken, snapshots_installed;
};
const struct node_stats *node_stats(const struct node *n);

struct raft *node_raft(struct node *n);
struct fsm *node_fsm(struct node *n);
uint64_t node_digest(const struct node *n);

#endif
