/* dynamo.h - leaderless mode: the coordinator and replica logic of a
 * Dynamo-style store (DeCandia et al., SOSP 2007; Riak's model of it).
 *
 * Any node accepts any request and coordinates it over the key's N
 * replicas: the first N distinct nodes clockwise from the key on the ring
 * (ring.h), whose membership gossip (gossip.h) agrees on.
 *
 * A write goes first to one replica, the key's *coordinating replica*: the
 * node itself if it is one of the key's N, else the first of them alive.
 * That replica makes the new version (dvv_update with its own actor id, so
 * the dot counters of an actor on a key come from one place that holds all
 * its earlier ones: vclock.h), stores it durably, and answers with the
 * resulting object, which the coordinator then sends to the other
 * replicas to merge. The write is acknowledged once W copies are durable
 * (the coordinating replica's counts). With a sloppy quorum, a replica the
 * failure detector thinks down is replaced by the next live node on the
 * ring, which keeps the object as a durable hint for it and hands it over
 * when it is back; without one, the write fails once it cannot reach W.
 *
 * A read asks the N replicas (with a sloppy quorum, the first N live in
 * preference order), answers from the merge of the first R replies, and
 * keeps listening until all have replied or the request times out: every
 * replica whose object differs from the merge of all replies then gets the
 * merge (read repair).
 *
 * Plain SET and DEL supersede every version the coordinating replica
 * holds, and whatever the request's context names (the client session's
 * last view of the key, so one client's writes in sequence never become
 * siblings even when they are coordinated by different replicas).
 * TRIAD.PUT supersedes exactly its context: writes whose contexts did not
 * see each other become siblings.
 *
 * Anti-entropy: every ae_interval_ms a node picks, round robin, a range it
 * replicates and another live replica of it, and they compare Merkle trees
 * of the range (merkle.h; maintained incrementally as objects change)
 * top-down, then exchange (key, digest) lists for the leaves that differ
 * and the objects that differ, at most ae_keys_max per step; both sides
 * merge what they receive.
 *
 * Joining: a node started JOINING (its gossip state) owns nothing yet.
 * Once gossip has told it the ring, it pulls every range it will
 * replicate from all live current replicas of the range, then turns
 * NORMAL and the others add it to their rings. Meanwhile coordinators also
 * send writes to the joining node where it will be a replica (as
 * Cassandra's pending ranges), so nothing written during the join is
 * missing from it once it owns the range; such copies do not count
 * towards W.
 *
 * Leaving: dyn_leave turns the node LEAVING; a few gossip rounds later,
 * once the others know (and so also send new writes to the nodes taking
 * over, as for a join), it hands every key and hint to the nodes that will
 * replicate it without this one; once all have acknowledged, it turns LEFT
 * and the others drop it from their rings.
 * Hints held for a node that LEFT go to the key's current replicas.
 *
 * Tombstones: an object whose siblings are all tombstones, the newest
 * older than tombstone_grace_ms, is removed once a read has heard it
 * identical from all N replicas: the coordinator then asks each to drop it
 * if its copy still has that digest. Besides clients' reads, each
 * anti-entropy sweep of the ring starts by reading a few such tombstones
 * from all N replicas, so a deleted key that nobody reads goes too.
 *
 * Pure: no clock (time comes in through dyn_tick and dyn_submit's now),
 * no randomness but the seed given, no I/O. Messages, the local store and
 * replies go through struct dyn_io. The simulator (sim/dsim.c) and the
 * server (net/) drive the same code.
 */
#ifndef TRIAD_DYNAMO_H
#define TRIAD_DYNAMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "gossip.h"
#include "hlc.h"
#include "vclock.h"

#define DYN_N_MAX 7
#define DYN_KEY_BYTES_MAX (64u << 10)

/* ---- messages between nodes ---- */

enum dyn_msg_type {
    DYN_MSG_UPDATE = 1,       /* coordinator -> coordinating replica: make a version */
    DYN_MSG_UPDATE_REPLY = 2, /* ... the resulting object, or why not */
    DYN_MSG_PUT = 3,          /* merge this object (hint_for != 0: keep it as a hint) */
    DYN_MSG_PUT_ACK = 4,
    DYN_MSG_GET = 5,          /* your copy of key, please */
    DYN_MSG_GET_REPLY = 6,
    DYN_MSG_GOSSIP = 7,       /* gossip states (gossip_encode) */
    DYN_MSG_GOSSIP_REPLY = 8,
    DYN_MSG_AE_TREE = 9,      /* anti-entropy: node hashes of a range's tree */
    DYN_MSG_AE_TREE_REPLY = 10,
    DYN_MSG_AE_KEYS = 11,     /* (key, digest) of the leaves that differ */
    DYN_MSG_AE_OBJS = 12,     /* objects that differ, and the keys wanted back */
    DYN_MSG_PURGE = 13,       /* drop key if your copy has this digest */
    DYN_MSG_PULL = 14,        /* a joining node: your keys in (a, b], please */
    DYN_MSG_PULL_REPLY = 15,  /* ... the objects */
    DYN_MSG_TYPE_MAX = DYN_MSG_PULL_REPLY,
};

/* Update kinds (DYN_MSG_UPDATE's op). */
enum dyn_update_op {
    DYN_UPD_SET = 1, /* supersede the replica's object and the context */
    DYN_UPD_DEL = 2, /* the same, with a tombstone */
    DYN_UPD_PUT = 3, /* supersede exactly the context */
};

/* Status of a reply message. */
enum dyn_status {
    DYN_ST_OK = 0,
    DYN_ST_FAIL = 1,       /* refused (detail in body) */
    DYN_ST_NOT_OWNER = 2,  /* this node is not a replica of the key */
};

/* One message. All pointers are borrowed: into the sender's memory when
 * handed to io.send, into the received bytes after dyn_msg_decode. Which
 * fields mean something depends on the type (dynamo.c's codec writes only
 * those). */
struct dyn_msg {
    uint8_t type;        /* enum dyn_msg_type */
    uint32_t from, to;
    uint64_t req;        /* the sender's request id; echoed by the reply */
    uint64_t ring_epoch; /* hash of the sender's ring members (AE: must match) */
    hlc_ts ts;           /* the sender's hybrid clock */
    uint8_t status;      /* replies: enum dyn_status */
    uint8_t op;          /* UPDATE: enum dyn_update_op; AE: step detail */
    uint32_t hint_for;   /* PUT: the owner this copy is a hint for (0: none) */
    uint64_t a, b;       /* AE: range bounds (lo, hi]; PURGE: digest in a */
    uint32_t level;      /* AE_TREE: the tree level of the hashes */
    const char *key;
    uint32_t klen;
    const void *body;    /* object, context, value, states or AE payload */
    uint32_t blen;
    const void *body2;   /* UPDATE: the value (body: the context) */
    uint32_t b2len;
};

#define DYN_MSG_BYTES_MAX (600u << 20)

void dyn_msg_encode(const struct dyn_msg *m, struct tbuf *out);
/* m's pointers point into p afterwards. TRIAD_EPROTO (errmsg says what)
 * for anything malformed. */
int dyn_msg_decode(struct dyn_msg *m, const void *p, size_t n, char *errmsg, size_t errlen);

/* ---- what the node supplies ---- */

struct dyn_result;

/* A local key visited by a scan. o is borrowed for the call. */
typedef void (*dyn_scan_cb)(void *cbarg, const char *key, size_t klen, const struct dvv_obj *o);

struct dyn_io {
    void *arg;
    /* Best effort; m is borrowed for the call. */
    void (*send)(void *arg, const struct dyn_msg *m);
    /* The local replica: get decodes the key's object into *out (empty
     * before; the caller frees it) and returns false if the key is absent.
     * put makes o (NULL: remove the key) the key's object in memory at
     * once, durable eventually, and calls dyn_durable(token) when it is
     * (possibly before put returns). */
    bool (*get)(void *arg, const char *key, size_t klen, struct dvv_obj *out);
    void (*put)(void *arg, const char *key, size_t klen, const struct dvv_obj *o, uint64_t token);
    /* Hints this node holds for other nodes: the same, per owner. */
    bool (*hint_get)(void *arg, uint32_t owner, const char *key, size_t klen,
                     struct dvv_obj *out);
    void (*hint_put)(void *arg, uint32_t owner, const char *key, size_t klen,
                     const struct dvv_obj *o, uint64_t token);
    /* How many hints are held for owner (0 = any owner: all of them). */
    uint64_t (*hint_count)(void *arg, uint32_t owner);
    /* Visit local keys whose ring_hash is in (lo, hi] (lo == hi: all), or
     * the hints held for owner (scan_hints), at most max of them (0: no
     * limit). Keys must not be added or removed from inside cb. */
    void (*scan)(void *arg, uint64_t lo, uint64_t hi, size_t max, dyn_scan_cb cb, void *cbarg);
    void (*scan_hints)(void *arg, uint32_t owner, size_t max, dyn_scan_cb cb, void *cbarg);
    /* The answer to client request req_id (see struct dyn_result). */
    void (*reply)(void *arg, uint64_t req_id, const struct dyn_result *r);
};

/* ---- configuration ---- */

/* Planted bugs, for the simulator's tests only: each must be caught. */
#define DYN_BUG_ACK_EARLY (1u << 0)     /* acknowledge a write before W copies */
#define DYN_BUG_CAUSAL (1u << 1)        /* merge by "larger clock sum wins" */
#define DYN_BUG_DROP_HINT (1u << 2)     /* a fallback acks a hint it never stores */
#define DYN_BUG_REPAIR_CLOBBER (1u << 3) /* read repair replaces instead of merging */

struct dyn_config {
    uint32_t id;                 /* this node, >= 1 */
    /* Its actor id. New whenever the node may have lost a version it made:
     * after a crash (what was not durable is gone, yet it may have left in
     * a PUT or a GET reply before it was), on a new disk, after dropping
     * data. Otherwise the old actor's next dot could name two writes. */
    dvv_actor actor;
    uint32_t n, r, w;            /* replicas, default read and write quorums */
    uint32_t vnodes;             /* tokens per node */
    bool sloppy;                 /* sloppy quorum + hinted handoff */
    uint64_t request_timeout_ms; /* a request not done by then fails */
    uint64_t hint_retry_ms;      /* how often hints are offered to their owners */
    uint64_t hints_max;          /* hints held at most (then a hint is refused) */
    uint32_t hint_batch;         /* hints sent per owner per round */
    uint64_t ae_interval_ms;     /* an anti-entropy exchange this often (0: off) */
    uint32_t ae_keys_max;        /* keys per exchange step */
    uint32_t merkle_depth;
    uint64_t tombstone_grace_ms;
    bool read_repair;
    uint64_t clock_max_ahead_ms; /* hlc.h: a peer's clock further ahead is ignored */
    struct gossip_config gossip;
    uint32_t bugs;               /* DYN_BUG_* */
};

void dyn_config_default(struct dyn_config *c, uint32_t id);

/* ---- client requests ---- */

enum dyn_op {
    DYN_OP_GET = 1,    /* the winner (or nothing) */
    DYN_OP_GETALL = 2, /* every sibling and the context */
    DYN_OP_SET = 3,
    DYN_OP_DEL = 4,
    DYN_OP_PUT = 5,    /* TRIAD.PUT: supersede exactly ctx */
};

struct dyn_req {
    uint64_t id;                /* echoed by io.reply */
    uint8_t op;                 /* enum dyn_op */
    const char *key;
    size_t klen;
    const void *value;          /* SET, PUT */
    size_t vlen;
    const struct dvv_clock *ctx; /* PUT: what it supersedes; SET, DEL: the
                                    session's view of the key (may be NULL) */
    uint32_t r, w;              /* 0: the configured default; at most n */
    bool local;                 /* reads: this node's own copy, no quorum */
};

/* Error kinds of a result. */
enum dyn_err {
    DYN_OK = 0,
    DYN_ERR_UNAVAILABLE = 1, /* not enough replicas answered in time */
    DYN_ERR_REFUSED = 2,     /* the coordinating replica refused (e.g. siblings) */
    DYN_ERR_INVALID = 3,     /* bad request (key too long, r > n, ...) */
};

/* A request's outcome, borrowed for the io.reply call. */
struct dyn_result {
    uint8_t err;             /* enum dyn_err */
    char msg[160];           /* the error's text, for the client */
    /* GET, GETALL: the merged object of the replies (empty: no such key).
     * SET, DEL, PUT: the object the coordinating replica made. */
    const struct dvv_obj *obj;
    struct dvv_dot dot;      /* writes: the new version's dot */
    bool existed;            /* DEL: the coordinating replica held a live value */
    uint32_t acks;           /* writes: durable copies; reads: replies */
    uint32_t needed;         /* W or R */
};

/* ---- the node ---- */

struct dyn;

/* self: this node's gossip state (address, generation). seed for the
 * PRNG (gossip targets, anti-entropy partners). */
struct dyn *dyn_new(const struct dyn_config *cfg, const struct dyn_io *io,
                    const struct gossip_state *self, uint64_t seed, uint64_t now_ms);
void dyn_free(struct dyn *d);

/* A peer known from configuration (id; its address is the io's business). */
void dyn_add_seed(struct dyn *d, uint32_t id);

/* Inputs. */
void dyn_step(struct dyn *d, const struct dyn_msg *m, uint64_t now_ms);
void dyn_tick(struct dyn *d, uint64_t now_ms);
void dyn_submit(struct dyn *d, const struct dyn_req *rq, uint64_t now_ms);
void dyn_durable(struct dyn *d, uint64_t token);
/* When dyn_tick next has something to do. */
uint64_t dyn_next_tick_ms(const struct dyn *d);

/* Leaving (see above). dyn_left() says when done. */
void dyn_leave(struct dyn *d);
bool dyn_left(const struct dyn *d);
/* Still JOINING (pulling its ranges)? */
bool dyn_joining(const struct dyn *d);

/* Introspection (INFO, tests, the simulator). */
struct dyn_stats {
    uint64_t reads, writes, reads_failed, writes_failed;
    uint64_t forwarded;          /* writes coordinated by another replica */
    uint64_t hints_stored, hints_delivered, hints_refused;
    uint64_t read_repairs;       /* objects written back by read repair */
    uint64_t ae_exchanges, ae_keys_repaired, ae_bytes_sent;
    uint64_t tombstones_purged;
    uint64_t join_ranges_pulled, join_keys_received;
    uint64_t clock_refused;      /* peer timestamps ignored as too far ahead */
};
const struct dyn_stats *dyn_stats(const struct dyn *d);
struct gossip *dyn_gossip(struct dyn *d);
const struct ring *dyn_ring(const struct dyn *d);
/* A hash of the ring's members: anti-entropy runs only between nodes that
 * agree on it. */
uint64_t dyn_ring_epoch(const struct dyn *d);
struct hlc *dyn_hlc(struct dyn *d);
/* The key's preference list (the first n of the ring walk) */
size_t dyn_replicas(const struct dyn *d, const char *key, size_t klen, uint32_t *out, size_t max);

#endif
