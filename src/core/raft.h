/* raft.h - leader mode's consensus core: a pure state machine.
 *
 * Nothing here reads a clock, draws from rand(), or touches a file or a
 * socket. Time comes in through raft_tick(), randomness from a PRNG seeded
 * by the caller, messages through raft_step(); what must be done (persist,
 * send, apply) comes out of raft_ready(). The same code runs in the server
 * and, millions of times over, in the simulator (sim/), which is what
 * proves it safe.
 *
 * The cycle, as in etcd's raft:
 *
 *     raft_step / raft_tick / raft_propose / raft_read_index   (inputs)
 *     while (raft_ready(r, &rd)) {
 *         send rd.msgs_now at once (the leader's appends: Raft dissertation
 *             §10.2.1 lets the leader write its log in parallel with them);
 *         apply rd.committed in order, answer rd.reads;
 *         if rd.persist: make rd.hs, rd.snapshot and rd.entries durable, then
 *             send rd.msgs and call raft_advance(r, &rd);
 *         else raft_advance(r, &rd) at once;
 *     }
 *
 * At most one persisting ready is outstanding: while it is, raft_ready()
 * hands out only what needs no disk (msgs_now, committed, reads), and
 * everything else accumulates for the next one, which is how group commit
 * falls out of the protocol.
 *
 * Pointers inside a ready (entries, their data, the snapshot blob, messages)
 * are borrowed from the core and stay valid until raft_advance() of that
 * ready. Messages given to raft_step() are borrowed for the call only.
 */
#ifndef TRIAD_RAFT_H
#define TRIAD_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t raft_term;
typedef uint64_t raft_index;
typedef uint32_t raft_id; /* 0 = nobody */

#define RAFT_NODES_MAX 16            /* voters + learners in one configuration */
#define RAFT_ENTRY_BYTES_MAX (64u << 20)
#define RAFT_SNAPSHOT_BYTES_MAX (1ull << 36)

enum raft_role { RAFT_FOLLOWER = 0, RAFT_PRECANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* a command for the state machine */
    RAFT_ENTRY_NOOP = 2,   /* a new leader's first entry (Raft §8) */
    RAFT_ENTRY_CONF = 3,   /* a membership configuration (raft_conf_encode) */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;
    uint32_t len;
    uint8_t *data; /* owned by the core's log */
};

enum raft_member_role { RAFT_VOTER = 1, RAFT_LEARNER = 2 };

struct raft_member {
    raft_id id;
    uint8_t role;
};

struct raft_conf {
    uint32_t n;
    struct raft_member members[RAFT_NODES_MAX];
};

#define RAFT_CONF_BYTES_MAX (4 + RAFT_NODES_MAX * 5)
/* Encode into buf (RAFT_CONF_BYTES_MAX bytes); returns the length. */
size_t raft_conf_encode(const struct raft_conf *c, uint8_t *buf);
/* 0, or TRIAD_ECORRUPT for bytes that are no configuration. */
int raft_conf_decode(struct raft_conf *c, const uint8_t *buf, size_t len);
const struct raft_member *raft_conf_find(const struct raft_conf *c, raft_id id);
uint32_t raft_conf_voters(const struct raft_conf *c);
/* The same members with the same roles, in the same order. */
bool raft_conf_equal(const struct raft_conf *a, const struct raft_conf *b);

enum raft_msg_type {
    RAFT_MSG_PREVOTE = 1,
    RAFT_MSG_PREVOTE_RESP,
    RAFT_MSG_VOTE,
    RAFT_MSG_VOTE_RESP,
    RAFT_MSG_APPEND,
    RAFT_MSG_APPEND_RESP,
    RAFT_MSG_SNAPSHOT,
    RAFT_MSG_SNAPSHOT_RESP,
    RAFT_MSG_TIMEOUT_NOW,
    RAFT_MSG_TYPE_MAX = RAFT_MSG_TIMEOUT_NOW,
};

/* One message. Which fields are meaningful depends on the type; the rest are
 * zero. Pointers are borrowed (see above). */
struct raft_msg {
    uint8_t type;
    raft_id from, to;
    raft_term term;

    /* PREVOTE / VOTE */
    raft_index last_log_index;
    raft_term last_log_term;
    bool transfer; /* sent on TimeoutNow: overrides the leader lease (§3.10) */

    /* *_RESP */
    bool reject;

    /* APPEND */
    raft_index prev_index;
    raft_term prev_term;
    raft_index commit;            /* the high-water mark, on every append */
    uint32_t n_entries;
    const struct raft_entry *entries;
    uint64_t seq;                 /* heartbeat round (ReadIndex, lease); echoed */

    /* APPEND_RESP: on success, index = the last index now known to match
     * the leader's log; on reject, index = the rejected prev_index and the
     * hint says where to retry (fast backtracking, §5.3). */
    raft_index index;
    raft_index hint_index;
    raft_term hint_term;

    /* SNAPSHOT (chunked) / SNAPSHOT_RESP (offset = the next byte wanted;
     * index = snap_index once installed) */
    raft_index snap_index;
    raft_term snap_term;
    struct raft_conf snap_conf;
    uint64_t snap_size;
    uint64_t offset;
    uint32_t len;
    const uint8_t *data;
    bool done;
};

struct raft_hard_state {
    raft_term term;
    raft_id vote;
    raft_index commit;
};

struct raft_snapshot {
    raft_index index;
    raft_term term;
    struct raft_conf conf;
    uint8_t *data; /* owned by the core */
    uint64_t len;
};

/* A ReadIndex answer: the read `ctx` may be served once the state machine
 * has applied `index` (Raft §6.4). */
struct raft_read {
    uint64_t ctx;
    raft_index index;
};

struct raft_ready {
    /* persist (only when `persist`): hs if hs_changed; the snapshot if
     * non-NULL (snapshot_install: a leader's snapshot, discard the whole log
     * and restore the state machine from it; otherwise a local compaction:
     * the log up to snapshot->index may go once the snapshot is durable);
     * then drop every log entry at or after truncate_from and append
     * entries (their indexes start at truncate_from when n_entries > 0). */
    bool persist;
    bool hs_changed;
    struct raft_hard_state hs;
    const struct raft_snapshot *snapshot;
    bool snapshot_install;
    raft_index truncate_from;
    struct raft_entry *entries;
    size_t n_entries;

    struct raft_msg *msgs;     /* send after the persist is durable */
    size_t n_msgs;
    struct raft_msg *msgs_now; /* may be sent at once */
    size_t n_msgs_now;

    struct raft_entry *committed; /* apply in order, before the next call */
    size_t n_committed;
    struct raft_read *reads;
    size_t n_reads;

    /* private */
    raft_index persist_last; /* last index handed out for persisting */
    void *garbage;           /* freed at advance */
};

/* Planted bugs, for proving that the simulator's checks can fail. Never set
 * outside sim/ and its tests. */
#define RAFT_BUG_COMMIT_MINORITY (1u << 0)  /* commit with one vote short of a majority */
#define RAFT_BUG_VOTE_TWICE (1u << 1)       /* grant a second vote in one term */
#define RAFT_BUG_APPLY_UNCOMMITTED (1u << 2)/* apply entries beyond the commit index */
#define RAFT_BUG_LEASE_NO_CHECKQ (1u << 3)  /* lease reads with check-quorum off */
#define RAFT_BUG_ACK_BEFORE_PERSIST (1u << 4) /* count and acknowledge entries not yet durable */

struct raft_config {
    raft_id id;
    uint64_t heartbeat_ms;            /* 50 */
    uint64_t election_timeout_ms_min; /* 300; the timeout is drawn from [min, max) */
    uint64_t election_timeout_ms_max; /* 600 */
    bool pre_vote;                    /* true */
    bool check_quorum;                /* true */
    bool lease_reads;                 /* true: needs check_quorum */
    uint32_t clock_drift_permille;    /* the bound the lease assumes: 50 = 5% */
    uint32_t inflight_msgs_max;       /* appends in flight per follower: 64 */
    uint64_t inflight_bytes_max;      /* 8 MiB */
    uint64_t append_bytes_max;        /* entries bytes in one append: 1 MiB */
    uint32_t snapshot_chunk_bytes;    /* 1 MiB */
    uint64_t seed;                    /* of the election-timeout PRNG */
    uint32_t bugs;                    /* RAFT_BUG_* (simulator only) */
};

void raft_config_default(struct raft_config *c, raft_id id);

/* Durability levels of DESIGN.md §4, as indexes on the leader. */
enum raft_ack { RAFT_ACK_ONE = 1, RAFT_ACK_TWO, RAFT_ACK_QUORUM, RAFT_ACK_ALL };

enum raft_progress_state { RAFT_PROBE = 0, RAFT_REPLICATE, RAFT_SNAPSHOTTING };

/* What the leader knows of one member's log (etcd's Progress). */
struct raft_progress {
    raft_id id;
    raft_index match, next;
    uint8_t state;        /* RAFT_PROBE, RAFT_REPLICATE, RAFT_SNAPSHOTTING */
    bool active;          /* heard from in this check-quorum period */
    uint64_t acked_seq;   /* newest heartbeat round it answered */
    uint64_t last_ack_ms; /* when it last answered (leader's clock) */
    uint32_t inflight_count;
    uint64_t inflight_bytes;
    uint64_t snap_offset; /* next snapshot byte it wants */
};

struct raft;

/* Create a node with an empty log. Then either raft_bootstrap() (a brand
 * new cluster: every initial node calls it with the same configuration) or
 * raft_restore() (state loaded from disk), or neither (a new node that will
 * learn everything from a leader). Returns NULL on out of memory. */
struct raft *raft_new(const struct raft_config *cfg, uint64_t now_ms);
void raft_free(struct raft *r);

/* Bootstrap: entry 1 (term 1) holds `conf`. Must be identical on every
 * initial member. */
int raft_bootstrap(struct raft *r, const struct raft_conf *conf);

/* Restore what a previous run made durable: hard state, the latest
 * snapshot (may be NULL; its data is copied) and the log entries after it
 * (copied), in order. */
int raft_restore(struct raft *r, const struct raft_hard_state *hs, const struct raft_snapshot *snap,
                 const struct raft_entry *entries, size_t n);

/* Inputs. raft_step: 0, or TRIAD_EPROTO for a malformed message (dropped). */
int raft_step(struct raft *r, const struct raft_msg *m);
void raft_tick(struct raft *r, uint64_t now_ms);
/* The time by which raft_tick() must be called next. */
uint64_t raft_next_tick_ms(const struct raft *r);

/* Append a command (copied). TRIAD_EINVAL if not leader or a transfer is in
 * progress (the caller redirects to raft_leader()), TRIAD_ELIMIT if too big. */
int raft_propose(struct raft *r, uint8_t type, const void *data, size_t len, raft_index *index);

/* Membership (single-server changes, dissertation §4.1). Allowed only on a
 * leader that has committed an entry of its term, with no configuration
 * change still uncommitted; TRIAD_EINVAL otherwise. */
enum raft_change { RAFT_ADD_LEARNER = 1, RAFT_PROMOTE, RAFT_REMOVE };
int raft_change_member(struct raft *r, enum raft_change change, raft_id id, raft_index *index);
/* Would a membership change be accepted now (any change, any id)? */
bool raft_can_change_member(const struct raft *r);

/* Leadership transfer (dissertation §3.10). TRIAD_EINVAL if not leader or
 * the target is no voter. */
int raft_transfer(struct raft *r, raft_id target);

/* Linearizable read (§6.4): TRIAD_EINVAL if not leader. The answer comes
 * out in a ready's reads with this ctx; by the lease at once when it holds,
 * else after a heartbeat round acknowledged by a majority. */
int raft_read_index(struct raft *r, uint64_t ctx);

/* Compact: the state machine's snapshot at `index` (<= applied); the data
 * is owned by the core from now on (it is sent to lagging followers). */
int raft_compact(struct raft *r, raft_index index, uint8_t *data, uint64_t len);

bool raft_ready(struct raft *r, struct raft_ready *rd);
void raft_advance(struct raft *r, struct raft_ready *rd);

/* Introspection. */
enum raft_role raft_role(const struct raft *r);
raft_id raft_id_of(const struct raft *r);
raft_id raft_leader(const struct raft *r);
raft_term raft_current_term(const struct raft *r);
raft_id raft_voted_for(const struct raft *r);
raft_index raft_commit_index(const struct raft *r);
raft_index raft_applied_index(const struct raft *r);
raft_index raft_last_index(const struct raft *r);
raft_index raft_first_index(const struct raft *r);
raft_index raft_stable_index(const struct raft *r);
raft_index raft_snapshot_index(const struct raft *r);
raft_term raft_term_at(const struct raft *r, raft_index index); /* 0 if unknown */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);
const struct raft_conf *raft_conf(const struct raft *r);
bool raft_lease_valid(const struct raft *r);
raft_index raft_ack_index(const struct raft *r, enum raft_ack level);
/* Leader only: the progress of a member; TRIAD_ENOTFOUND otherwise. */
int raft_progress_get(const struct raft *r, raft_id id, struct raft_progress *out);
const char *raft_role_name(enum raft_role role);

#endif
