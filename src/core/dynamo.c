/* dynamo.c - leaderless mode's coordinator and replica logic (dynamo.h).
 *
 * Three kinds of state live here, none of it the data itself (that is the
 * io's store):
 *   - coordinations (struct dyn__op): one per client request in flight
 *     on this node, in a list ordered by deadline (a constant timeout after
 *     creation) and a hash table by id;
 *   - waits (struct dyn__wait): what to do once a local put is durable
 *     (acknowledge a PUT, answer an UPDATE, count our own copy);
 *   - background work: gossip rounds, hint delivery, anti-entropy
 *     exchanges and a leave's handoff, each driven by dyn_tick.
 *
 * Messages to ourselves go through the same code as messages to others,
 * but via a loopback queue drained before each entry point returns, so no
 * handler ever runs inside another.
 */
#include "dynamo.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"
#include "merkle.h"
#include "ring.h"

#define DYN_MSG_VERSION 1
#define DYN_HDR_BYTES (1 + 1 + 4 + 4 + 8 + 8 + 8 + 1 + 1 + 4 + 8 + 8 + 4)
#define DYN_AE_TOP_LEVEL 4       /* AE_TREE sends this level's hashes */
#define DYN_AE_WHOLE (1u << 31)  /* AE_TREE_REPLY: all leaves under this node differ */
#define DYN_TABLE_MIN 64

/* ---- small helpers ---- */

static void put_u32(struct tbuf *b, uint32_t v) { tbuf_append_u32le(b, v); }
static void put_u64(struct tbuf *b, uint64_t v) { tbuf_append_u64le(b, v); }

/* A cursor over received bytes: every read checks the length first. */
struct rd {
    const unsigned char *p;
    size_t n;
    bool bad;
};

static bool rd_take(struct rd *r, size_t k, const unsigned char **out)
{
    if (r->bad || r->n < k) {
        r->bad = true;
        return false;
    }
    *out = r->p;
    r->p += k;
    r->n -= k;
    return true;
}

static uint64_t rd_u64(struct rd *r)
{
    const unsigned char *p;
    return rd_take(r, 8, &p) ? tbuf_read_u64le(p) : 0;
}

static uint32_t rd_u32(struct rd *r)
{
    const unsigned char *p;
    return rd_take(r, 4, &p) ? tbuf_read_u32le(p) : 0;
}

static uint8_t rd_u8(struct rd *r)
{
    const unsigned char *p;
    return rd_take(r, 1, &p) ? p[0] : 0;
}

/* ---- message codec ---- */

void dyn_msg_encode(const struct dyn_msg *m, struct tbuf *out)
{
    tbuf_reserve(out, DYN_HDR_BYTES + 12 + m->klen + m->blen + m->b2len);
    tbuf_appendc(out, DYN_MSG_VERSION);
    tbuf_appendc(out, (char)m->type);
    put_u32(out, m->from);
    put_u32(out, m->to);
    put_u64(out, m->req);
    put_u64(out, m->ring_epoch);
    put_u64(out, m->ts);
    tbuf_appendc(out, (char)m->status);
    tbuf_appendc(out, (char)m->op);
    put_u32(out, m->hint_for);
    put_u64(out, m->a);
    put_u64(out, m->b);
    put_u32(out, m->level);
    put_u32(out, m->klen);
    tbuf_append(out, m->key, m->klen);
    put_u32(out, m->blen);
    tbuf_append(out, m->body, m->blen);
    put_u32(out, m->b2len);
    tbuf_append(out, m->body2, m->b2len);
}

int dyn_msg_decode(struct dyn_msg *m, const void *p, size_t n, char *errmsg, size_t errlen)
{
    struct rd r = {p, n, false};
    const unsigned char *q;

    memset(m, 0, sizeof(*m));
    if (n > DYN_MSG_BYTES_MAX) {
        triad_errf(errmsg, errlen, "message of %zu bytes is over the limit", n);
        return TRIAD_EPROTO;
    }
    uint8_t version = rd_u8(&r);
    if (!r.bad && version != DYN_MSG_VERSION) {
        triad_errf(errmsg, errlen, "unknown message version %u", version);
        return TRIAD_EPROTO;
    }
    m->type = rd_u8(&r);
    m->from = rd_u32(&r);
    m->to = rd_u32(&r);
    m->req = rd_u64(&r);
    m->ring_epoch = rd_u64(&r);
    m->ts = rd_u64(&r);
    m->status = rd_u8(&r);
    m->op = rd_u8(&r);
    m->hint_for = rd_u32(&r);
    m->a = rd_u64(&r);
    m->b = rd_u64(&r);
    m->level = rd_u32(&r);
    m->klen = rd_u32(&r);
    if (!r.bad && m->klen > DYN_KEY_BYTES_MAX) {
        triad_errf(errmsg, errlen, "key of %u bytes is over the limit", m->klen);
        return TRIAD_EPROTO;
    }
    if (rd_take(&r, m->klen, &q))
        m->key = (const char *)q;
    m->blen = rd_u32(&r);
    if (rd_take(&r, m->blen, &q))
        m->body = q;
    m->b2len = rd_u32(&r);
    if (rd_take(&r, m->b2len, &q))
        m->body2 = q;
    if (r.bad) {
        triad_errf(errmsg, errlen, "truncated message");
        return TRIAD_EPROTO;
    }
    if (r.n != 0) {
        triad_errf(errmsg, errlen, "%zu bytes after the message", r.n);
        return TRIAD_EPROTO;
    }
    if (m->type < DYN_MSG_UPDATE || m->type > DYN_MSG_TYPE_MAX) {
        triad_errf(errmsg, errlen, "unknown message type %u", m->type);
        return TRIAD_EPROTO;
    }
    if (m->from == 0 || m->to == 0) {
        triad_errf(errmsg, errlen, "message from or to node 0");
        return TRIAD_EPROTO;
    }
    if (m->status > DYN_ST_NOT_OWNER) {
        triad_errf(errmsg, errlen, "unknown status %u", m->status);
        return TRIAD_EPROTO;
    }
    return 0;
}

/* ---- the node's state ---- */

enum dyn__op_kind { OPK_READ = 1, OPK_WRITE, OPK_HINT, OPK_HANDOFF, OPK_PULL };

/* One target of a coordination. */
struct dyn__target {
    uint32_t node;
    uint32_t hint_for; /* a fallback standing in for this primary */
    bool extra;        /* a joining node's copy: does not count towards W */
    uint8_t state;     /* 0 waiting, 1 answered, 2 failed */
    bool has_obj;      /* reads: obj holds its reply */
    struct dvv_obj obj;
};

/* An entry of a chained hash table keyed by a 64-bit id (ops, waits):
 * the first member of what it indexes. */
struct dyn__hnode {
    uint64_t key;
    struct dyn__hnode *next;
};

struct dyn__htab {
    struct dyn__hnode **b;
    size_t cap, n;
};

struct dyn__op {
    struct dyn__hnode h;     /* key: id */
    uint64_t id;             /* our request id in messages */
    uint64_t client_req;     /* the client's (io.reply), for reads and writes */
    uint8_t kind;            /* enum dyn__op_kind */
    uint8_t op;              /* enum dyn_op (reads, writes) */
    char *key;
    size_t klen;
    uint32_t need;           /* R or W */
    uint32_t n_primaries;
    uint64_t deadline_ms;
    struct dyn__target t[2 * DYN_N_MAX]; /* replicas, then joining nodes */
    uint32_t nt;
    uint32_t acks, fails;
    bool answered;
    bool sent;               /* writes: the object went out to the targets */
    bool local;              /* read: own copy only (answered at once) */
    struct dvv_obj obj;      /* reads: the merge so far; writes: the version */
    struct dvv_dot dot;
    bool existed;
    uint64_t digest;         /* hints and handoff: the digest offered */
    uint32_t owner;          /* hints: whose hint */
    uint32_t coord;          /* writes: the coordinating replica */
    bool for_leave;          /* a handoff of our leave (not of a LEFT node's hint) */
    uint64_t lo, hi;         /* pulls: the range */
    bool listed;                   /* in the deadline list */
    struct dyn__op *next, *prev;   /* deadline list */
};

/* Something to do once a local put is durable. */
enum dyn__wait_kind { WAIT_ACK = 1, WAIT_UPDATE_REPLY, WAIT_OWN_COPY };

struct dyn__wait {
    struct dyn__hnode h;     /* key: token */
    uint64_t token;
    uint8_t kind;
    uint32_t to;             /* WAIT_ACK, WAIT_UPDATE_REPLY: who asked */
    uint64_t req;            /* ... their request id, or our op's id */
    struct tbuf reply;       /* WAIT_UPDATE_REPLY: the encoded object */
    struct dvv_dot dot;
    bool existed;
    bool ok;
};

/* An anti-entropy tree for one range this node replicates. */
struct dyn__tree {
    uint64_t lo, hi;
    struct merkle *m;        /* NULL until built */
};

/* An exchange in flight (we started it). */
struct dyn__ae {
    bool active;
    uint64_t id;
    uint32_t partner;
    size_t range;
    uint64_t deadline_ms;
    bool more;               /* the last step found differences: go again */
};

struct dyn {
    struct dyn_config cfg;
    struct dyn_io io;
    uint32_t id;
    struct gossip *g;
    struct ring *ring;
    uint64_t ring_gossip_epoch;
    uint64_t ring_epoch;     /* hash of the members */
    uint32_t seeds[GOSSIP_NODES_MAX];
    size_t n_seeds;
    /* Direct evidence, faster than gossip's: a node that let a request of
     * ours time out is taken for down until this time, or until we hear
     * from it. */
    struct {
        uint32_t id;
        uint64_t until_ms;
    } suspect[GOSSIP_NODES_MAX];
    struct hlc hlc;
    uint64_t rng;
    uint64_t now_ms;
    uint64_t next_id;
    uint64_t next_token;
    struct dyn_stats st;

    struct dyn__htab ops;    /* by id */
    struct dyn__op *head, *tail; /* by deadline */

    struct dyn__htab waits;  /* by token */

    struct tbuf loop_q;      /* encoded messages to ourselves */
    bool draining;
    int depth;               /* inside an entry point */
    bool sweep_needed;       /* there may be tombstones to collect */
    uint64_t *durable_q;     /* tokens made durable meanwhile: handled after */
    size_t durable_n, durable_cap;
    struct tbuf scratch;

    uint64_t hint_next_ms;
    uint64_t gossip_sent_ms;

    struct dyn__tree *trees; /* one per ring range (NULL entries: not ours) */
    size_t n_trees;
    size_t ae_cursor;
    uint64_t ae_next_ms;
    struct dyn__ae ae;

    struct ring *pending;    /* the ring with the JOINING nodes (NULL: none) */

    bool joining, join_started;
    struct ring *join_ring;  /* the ring with us */
    uint64_t *join_todo;     /* ranges (lo, hi) still to pull, 2 per range */
    size_t join_n;
    uint32_t join_inflight;
    uint64_t join_start_ms;

    bool leaving, left;
    struct ring *leave_ring; /* the ring without us */
    uint64_t leave_next_ms;
    uint64_t leave_inflight;
    size_t leave_range;      /* the next range of d->ring to hand off */
    bool leave_failed;       /* this pass lost a copy: go round again */
};

/* ---- hash tables (chained, power-of-two sizes) ---- */

static size_t dyn__slot(uint64_t k, size_t cap) { return (size_t)(XXH3_64bits(&k, 8) & (cap - 1)); }

static void dyn__h_put(struct dyn__htab *t, struct dyn__hnode *nd, uint64_t key)
{
    if (t->n + 1 > t->cap / 2) {
        size_t cap = t->cap ? t->cap * 2 : DYN_TABLE_MIN;
        struct dyn__hnode **b = tcalloc(cap, sizeof(*b));
        for (size_t i = 0; i < t->cap; i++) {
            for (struct dyn__hnode *e = t->b[i], *nx; e != NULL; e = nx) {
                nx = e->next;
                size_t s = dyn__slot(e->key, cap);
                e->next = b[s];
                b[s] = e;
            }
        }
        tfree(t->b);
        t->b = b;
        t->cap = cap;
    }
    nd->key = key;
    size_t s = dyn__slot(key, t->cap);
    nd->next = t->b[s];
    t->b[s] = nd;
    t->n++;
}

/* The entry with key, taken out of the table if take. */
static struct dyn__hnode *dyn__h_get(struct dyn__htab *t, uint64_t key, bool take)
{
    if (t->cap == 0)
        return NULL;
    for (struct dyn__hnode **pp = &t->b[dyn__slot(key, t->cap)]; *pp != NULL; pp = &(*pp)->next) {
        struct dyn__hnode *e = *pp;
        if (e->key != key)
            continue;
        if (take) {
            *pp = e->next;
            t->n--;
        }
        return e;
    }
    return NULL;
}

static struct dyn__op *dyn__op_find(struct dyn *d, uint64_t id)
{
    return (struct dyn__op *)dyn__h_get(&d->ops, id, false);
}

static struct dyn__op *dyn__op_new(struct dyn *d, uint8_t kind, const char *key, size_t klen)
{
    struct dyn__op *o = tcalloc(1, sizeof(*o));
    o->id = ++d->next_id;
    o->kind = kind;
    o->key = tmalloc(klen ? klen : 1);
    memcpy(o->key, key, klen);
    o->klen = klen;
    o->deadline_ms = d->now_ms + d->cfg.request_timeout_ms;
    dyn__h_put(&d->ops, &o->h, o->id);
    /* deadlines grow with creation: append */
    o->listed = true;
    o->prev = d->tail;
    if (d->tail)
        d->tail->next = o;
    else
        d->head = o;
    d->tail = o;
    return o;
}

static void dyn__op_unlist(struct dyn *d, struct dyn__op *o)
{
    if (!o->listed)
        return;
    o->listed = false;
    if (o->prev)
        o->prev->next = o->next;
    else
        d->head = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        d->tail = o->prev;
    o->next = o->prev = NULL;
}

static void dyn__op_free(struct dyn *d, struct dyn__op *o)
{
    struct dyn__hnode *h = dyn__h_get(&d->ops, o->id, true);
    TRIAD_ASSERT(h == &o->h);
    dyn__op_unlist(d, o);
    for (uint32_t i = 0; i < o->nt; i++)
        dvv_free(&o->t[i].obj);
    dvv_free(&o->obj);
    tfree(o->key);
    tfree(o);
}

static struct dyn__wait *dyn__wait_new(struct dyn *d, uint8_t kind)
{
    struct dyn__wait *w = tcalloc(1, sizeof(*w));
    w->token = ++d->next_token;
    w->kind = kind;
    dyn__h_put(&d->waits, &w->h, w->token);
    return w;
}

static struct dyn__wait *dyn__wait_take(struct dyn *d, uint64_t token)
{
    return (struct dyn__wait *)dyn__h_get(&d->waits, token, true);
}

static void dyn__wait_free(struct dyn__wait *w)
{
    tbuf_free(&w->reply);
    tfree(w);
}

/* ---- sending ---- */

static void dyn__send(struct dyn *d, struct dyn_msg *m)
{
    m->from = d->id;
    m->ring_epoch = d->ring_epoch;
    m->ts = d->hlc.last;
    if (m->to == d->id) {
        /* to ourselves: later, through the loopback queue */
        size_t at = d->loop_q.len;
        tbuf_append_u32le(&d->loop_q, 0);
        dyn_msg_encode(m, &d->loop_q);
        tbuf_write_u32le(d->loop_q.data + at, (uint32_t)(d->loop_q.len - at - 4));
        return;
    }
    d->io.send(d->io.arg, m);
}

static void dyn__handle(struct dyn *d, const struct dyn_msg *m);
static void dyn__durable(struct dyn *d, uint64_t token);

/* Deliver what we sent ourselves and the durability that came in while a
 * handler ran, in order, until none is left. */
static void dyn__drain(struct dyn *d)
{
    if (d->draining)
        return;
    d->draining = true;
    size_t off = 0;
    for (;;) {
        if (d->durable_n > 0) {
            uint64_t token = d->durable_q[0];
            memmove(d->durable_q, d->durable_q + 1, --d->durable_n * sizeof(*d->durable_q));
            dyn__durable(d, token);
            continue;
        }
        if (off >= d->loop_q.len)
            break;
        uint32_t len = tbuf_read_u32le(d->loop_q.data + off);
        /* copy: handling may append to loop_q and move its data */
        char *copy = tmalloc(len ? len : 1);
        memcpy(copy, d->loop_q.data + off + 4, len);
        off += 4 + len;
        struct dyn_msg m;
        int rc = dyn_msg_decode(&m, copy, len, NULL, 0);
        TRIAD_ASSERT(rc == 0);
        dyn__handle(d, &m);
        tfree(copy);
    }
    tbuf_reset(&d->loop_q);
    d->draining = false;
}

/* ---- the ring ---- */

static bool dyn__owns_tokens(uint8_t status)
{
    return status == GOSSIP_NORMAL || status == GOSSIP_LEAVING;
}

/* Rebuild the ring from what gossip knows: every node NORMAL or LEAVING,
 * and the seeds we have no state for yet (assumed NORMAL: a cluster
 * started from one --peers list agrees on its ring from the first
 * moment). */
static void dyn__ring_sync(struct dyn *d)
{
    uint64_t ge = gossip_epoch(d->g);
    if (d->ring != NULL && ge == d->ring_gossip_epoch)
        return;
    d->ring_gossip_epoch = ge;
    struct ring *r = ring_new(d->cfg.vnodes);
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n = gossip_states(d->g, st, GOSSIP_NODES_MAX);
    for (size_t i = 0; i < n; i++)
        if (dyn__owns_tokens(st[i].status))
            ring_add(r, st[i].id);
    for (size_t i = 0; i < d->n_seeds; i++)
        if (gossip_get(d->g, d->seeds[i]) == NULL)
            ring_add(r, d->seeds[i]);
    /* the ring as it will be once the joining nodes own their ranges and
     * the leaving ones are gone (NULL: the same as r) */
    if (d->pending)
        ring_free(d->pending);
    d->pending = NULL;
    bool moving = false;
    for (size_t i = 0; i < n; i++)
        moving = moving || st[i].status == GOSSIP_JOINING || st[i].status == GOSSIP_LEAVING;
    if (moving) {
        d->pending = ring_new(d->cfg.vnodes);
        uint32_t m[RING_NODES_MAX];
        size_t k = ring_members(r, m, RING_NODES_MAX);
        for (size_t j = 0; j < k; j++) {
            const struct gossip_state *g = gossip_get(d->g, m[j]);
            if (g == NULL || g->status != GOSSIP_LEAVING)
                ring_add(d->pending, m[j]);
        }
        for (size_t i = 0; i < n; i++)
            if (st[i].status == GOSSIP_JOINING)
                ring_add(d->pending, st[i].id);
    }
    uint32_t members[RING_NODES_MAX];
    size_t k = ring_members(r, members, RING_NODES_MAX);
    unsigned char le[4 * RING_NODES_MAX]; /* the ids as u32 little-endian: a wire value */
    for (size_t i = 0; i < k; i++)
        tbuf_write_u32le(le + 4 * i, members[i]);
    uint64_t epoch = XXH3_64bits(le, 4 * k);
    if (d->ring != NULL && epoch == d->ring_epoch) {
        ring_free(r);
        return;
    }
    if (d->ring)
        ring_free(d->ring);
    d->ring = r;
    d->ring_epoch = epoch;
    /* the ranges moved: every tree is rebuilt when next needed */
    for (size_t i = 0; i < d->n_trees; i++)
        if (d->trees[i].m)
            merkle_free(d->trees[i].m);
    tfree(d->trees);
    d->n_trees = ring_ranges(r);
    d->trees = tcalloc(d->n_trees ? d->n_trees : 1, sizeof(*d->trees));
    for (size_t i = 0; i < d->n_trees; i++)
        ring_range_bounds(r, i, &d->trees[i].lo, &d->trees[i].hi);
    d->ae_cursor = 0;
    d->ae.active = false;
    d->ae.more = false; /* its range index was of the old ring */
}

static void dyn__suspect(struct dyn *d, uint32_t id, uint64_t until_ms)
{
    size_t free_slot = GOSSIP_NODES_MAX;
    for (size_t i = 0; i < GOSSIP_NODES_MAX; i++) {
        if (d->suspect[i].id == id) {
            d->suspect[i].until_ms = until_ms;
            if (until_ms == 0)
                d->suspect[i].id = 0;
            return;
        }
        if (d->suspect[i].id == 0 && free_slot == GOSSIP_NODES_MAX)
            free_slot = i;
    }
    if (until_ms != 0 && free_slot < GOSSIP_NODES_MAX) {
        d->suspect[free_slot].id = id;
        d->suspect[free_slot].until_ms = until_ms;
    }
}

static bool dyn__suspected(const struct dyn *d, uint32_t id)
{
    for (size_t i = 0; i < GOSSIP_NODES_MAX; i++)
        if (d->suspect[i].id == id)
            return d->suspect[i].until_ms > d->now_ms;
    return false;
}

static bool dyn__alive(struct dyn *d, uint32_t id)
{
    if (id == d->id)
        return true;
    if (dyn__suspected(d, id))
        return false;
    if (gossip_get(d->g, id) == NULL)
        return true; /* a seed not heard from yet: give it the benefit */
    return gossip_alive(d->g, id, d->now_ms);
}

static size_t dyn__walk(struct dyn *d, const char *key, size_t klen, uint32_t *out, size_t max)
{
    dyn__ring_sync(d);
    return ring_walk(d->ring, ring_hash(key, klen), out, max);
}

size_t dyn_replicas(const struct dyn *d, const char *key, size_t klen, uint32_t *out, size_t max)
{
    if (d->ring == NULL)
        return 0;
    uint32_t all[RING_NODES_MAX];
    size_t n = ring_walk(d->ring, ring_hash(key, klen), all, RING_NODES_MAX);
    n = TRIAD_MIN(n, (size_t)d->cfg.n);
    n = TRIAD_MIN(n, max);
    memcpy(out, all, n * sizeof(*out));
    return n;
}

/* ---- the local store, with the trees kept in step ---- */

static struct dyn__tree *dyn__tree_of(struct dyn *d, uint64_t h)
{
    if (d->ring == NULL || d->n_trees == 0)
        return NULL;
    return &d->trees[ring_range_of(d->ring, h)];
}

/* Make o (NULL or empty: remove) the local object of key, old being what
 * it was (NULL: absent). Returns the token io.put will call back with. */
static uint64_t dyn__store(struct dyn *d, const char *key, size_t klen, const struct dvv_obj *old,
                           const struct dvv_obj *o, struct dyn__wait *w)
{
    uint64_t h = ring_hash(key, klen);
    struct dyn__tree *t = dyn__tree_of(d, h);
    if (t != NULL && t->m != NULL) {
        if (old != NULL && old->vv.n > 0)
            merkle_remove(t->m, h, merkle_item_hash(key, klen, dvv_digest(old)));
        if (o != NULL && o->vv.n > 0)
            merkle_add(t->m, h, merkle_item_hash(key, klen, dvv_digest(o)));
    }
    if (o != NULL && o->vv.n > 0 && dvv_deleted(o))
        d->sweep_needed = true;
    uint64_t token = w ? w->token : 0;
    d->io.put(d->io.arg, key, klen, (o != NULL && o->vv.n > 0) ? o : NULL, token);
    return token;
}

/* ---- replies to clients ---- */

static void dyn__reply_err(struct dyn *d, uint64_t req, uint8_t err, uint32_t acks, uint32_t need,
                           const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void dyn__reply_err(struct dyn *d, uint64_t req, uint8_t err, uint32_t acks, uint32_t need,
                           const char *fmt, ...)
{
    struct dyn_result r;
    memset(&r, 0, sizeof(r));
    r.err = err;
    r.acks = acks;
    r.needed = need;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r.msg, sizeof(r.msg), fmt, ap);
    va_end(ap);
    d->io.reply(d->io.arg, req, &r);
}

static void dyn__answer_write(struct dyn *d, struct dyn__op *o)
{
    struct dyn_result r;
    memset(&r, 0, sizeof(r));
    r.obj = &o->obj;
    r.dot = o->dot;
    r.existed = o->existed;
    r.acks = o->acks;
    r.needed = o->need;
    o->answered = true;
    d->st.writes++;
    d->io.reply(d->io.arg, o->client_req, &r);
}

static void dyn__answer_read(struct dyn *d, struct dyn__op *o)
{
    struct dyn_result r;
    memset(&r, 0, sizeof(r));
    r.obj = &o->obj;
    r.acks = o->acks;
    r.needed = o->need;
    o->answered = true;
    d->st.reads++;
    d->io.reply(d->io.arg, o->client_req, &r);
}

/* ---- choosing targets ---- */

/* The targets of a key: its first n nodes on the ring; with a sloppy
 * quorum, each one the failure detector holds dead is replaced by the
 * next live node after them (a fallback, holding a hint for it). skip
 * (0: none) is left out (the coordinating replica, sent to separately). */
static uint32_t dyn__targets(struct dyn *d, const char *key, size_t klen, uint32_t skip,
                             struct dyn__op *o)
{
    uint32_t walk[RING_NODES_MAX];
    size_t nw = dyn__walk(d, key, klen, walk, RING_NODES_MAX);
    size_t np = TRIAD_MIN(nw, (size_t)d->cfg.n);
    size_t fb = np; /* the next fallback to use */
    o->n_primaries = (uint32_t)np;
    for (size_t i = 0; i < np; i++) {
        uint32_t node = walk[i], hint_for = 0;
        if (node == skip)
            continue;
        if (d->cfg.sloppy && !dyn__alive(d, node)) {
            while (fb < nw && !dyn__alive(d, walk[fb]))
                fb++;
            if (fb == nw)
                continue; /* nobody to stand in */
            hint_for = node;
            node = walk[fb++];
        }
        struct dyn__target *t = &o->t[o->nt++];
        memset(t, 0, sizeof(*t));
        t->node = node;
        t->hint_for = hint_for;
    }
    return (uint32_t)np;
}

/* A node that will be one of the key's replicas once the joins and leaves
 * under way are done gets the write too, as an extra target (its ack does
 * not count towards W): a joining node, or the one that takes over from a
 * leaving node. */
static void dyn__pending_targets(struct dyn *d, const char *key, size_t klen, uint32_t coord,
                                 struct dyn__op *o)
{
    if (d->pending == NULL)
        return;
    uint32_t walk[DYN_N_MAX];
    size_t n = ring_walk(d->pending, ring_hash(key, klen), walk, d->cfg.n);
    for (size_t i = 0; i < n; i++) {
        /* already the coordinating replica or a target (a replica, or a
         * fallback standing in for one) */
        bool known = walk[i] == coord;
        for (uint32_t k = 0; k < o->nt && !known; k++)
            known = o->t[k].node == walk[i];
        if (known || o->nt == 2 * DYN_N_MAX)
            continue;
        struct dyn__target *t = &o->t[o->nt++];
        memset(t, 0, sizeof(*t));
        t->node = walk[i];
        t->extra = true;
    }
}

/* ---- writes ---- */

static void dyn__write_sendout(struct dyn *d, struct dyn__op *o)
{
    struct tbuf enc = {0};
    dvv_encode(&o->obj, &enc);
    o->sent = true;
    for (uint32_t i = 0; i < o->nt; i++) {
        struct dyn_msg m = {.type = DYN_MSG_PUT, .to = o->t[i].node, .req = o->id,
                            .hint_for = o->t[i].hint_for, .key = o->key,
                            .klen = (uint32_t)o->klen, .body = enc.data,
                            .blen = (uint32_t)enc.len};
        dyn__send(d, &m);
    }
    tbuf_free(&enc);
}

static void dyn__write_progress(struct dyn *d, struct dyn__op *o)
{
    if (!o->answered && (o->acks >= o->need || (d->cfg.bugs & DYN_BUG_ACK_EARLY))) {
        if (o->sent || (d->cfg.bugs & DYN_BUG_ACK_EARLY))
            dyn__answer_write(d, o);
    }
    bool all = o->sent;
    for (uint32_t i = 0; i < o->nt && all; i++)
        all = o->t[i].state != 0;
    if (all && o->answered)
        dyn__op_free(d, o);
}

/* The coordinating replica's part, on whichever node it is: make the new
 * version from the local object and the request, store it, and call back
 * (wait) once it is durable. Returns 0 or a refusal with msg set. */
static int dyn__make_version(struct dyn *d, uint8_t upd, const char *key, size_t klen,
                             const struct dvv_clock *ctx, const void *val, size_t vlen,
                             struct dyn__wait *w, struct dvv_obj *out, struct dvv_dot *dot,
                             bool *existed, char *msg, size_t msglen)
{
    struct dvv_obj local = {0};
    d->io.get(d->io.arg, key, klen, &local);
    struct dvv_clock eff = {0};
    if (ctx != NULL)
        dvv_clock_copy(&eff, ctx);
    if (upd != DYN_UPD_PUT)
        dvv_clock_join(&eff, &local.vv); /* SET and DEL supersede what we hold */
    /* the new version is later than every one it sees, even if our clock
     * went back across a restart */
    hlc_observe(&d->hlc, dvv_max_ts(&local), d->now_ms);
    hlc_ts ts = hlc_now(&d->hlc, d->now_ms);
    struct dvv_obj next = {0};
    dvv_copy(&next, &local);
    w->existed = !dvv_deleted(&local);
    bool del = upd == DYN_UPD_DEL;
    int rc = dvv_update(&next, &eff, d->cfg.actor, ts, d->id, del, del ? NULL : val,
                        del ? 0 : vlen, &w->dot);
    dvv_clock_free(&eff);
    if (rc != 0) {
        if (local.n_sibs >= DVV_SIBLINGS_MAX)
            snprintf(msg, msglen, "REFUSED the key has %d siblings or more: resolve them with "
                                  "TRIAD.GETALL and TRIAD.PUT", DVV_SIBLINGS_MAX);
        else
            snprintf(msg, msglen, "ERR the context or value cannot make a version (counter "
                                  "overflow, too many actors, or value too large)");
        dvv_free(&next);
        dvv_free(&local);
        return rc;
    }
    w->ok = true;
    if (w->kind == WAIT_UPDATE_REPLY)
        dvv_encode(&next, &w->reply);
    /* w may be done with as soon as the store is durable: read it first */
    *dot = w->dot;
    *existed = w->existed;
    dyn__store(d, key, klen, &local, &next, w);
    dvv_free(&local);
    *out = next;
    return 0;
}

static void dyn__submit_write(struct dyn *d, const struct dyn_req *rq)
{
    uint32_t walk[RING_NODES_MAX];
    size_t nw = dyn__walk(d, rq->key, rq->klen, walk, RING_NODES_MAX);
    size_t np = TRIAD_MIN(nw, (size_t)d->cfg.n);
    uint32_t w = rq->w ? rq->w : d->cfg.w;

    if (w > np) {
        d->st.writes_failed++;
        dyn__reply_err(d, rq->id, DYN_ERR_UNAVAILABLE, 0, w,
                       "NOREPLICAS W=%u but the ring has only %zu replicas for this key", w, np);
        return;
    }
    /* the coordinating replica: ourselves if we are one, else the first
     * live one */
    uint32_t coord = 0;
    for (size_t i = 0; i < np && coord == 0; i++)
        if (walk[i] == d->id)
            coord = d->id;
    for (size_t i = 0; i < np && coord == 0; i++)
        if (dyn__alive(d, walk[i]))
            coord = walk[i];
    if (coord == 0) {
        d->st.writes_failed++;
        dyn__reply_err(d, rq->id, DYN_ERR_UNAVAILABLE, 0, w,
                       "UNAVAILABLE no replica of the key is reachable");
        return;
    }
    uint8_t upd = rq->op == DYN_OP_SET ? DYN_UPD_SET : rq->op == DYN_OP_DEL ? DYN_UPD_DEL
                                                                            : DYN_UPD_PUT;
    struct dyn__op *o = dyn__op_new(d, OPK_WRITE, rq->key, rq->klen);
    o->client_req = rq->id;
    o->op = rq->op;
    o->need = w;
    o->coord = coord;
    dyn__targets(d, rq->key, rq->klen, coord, o);
    dyn__pending_targets(d, rq->key, rq->klen, coord, o);
    if (coord == d->id) {
        char msg[160];
        struct dyn__wait *wt = dyn__wait_new(d, WAIT_OWN_COPY);
        wt->req = o->id;
        if (dyn__make_version(d, upd, rq->key, rq->klen, rq->ctx, rq->value, rq->vlen, wt,
                              &o->obj, &o->dot, &o->existed, msg, sizeof(msg)) != 0) {
            dyn__wait_free(dyn__wait_take(d, wt->token));
            d->st.writes_failed++;
            dyn__reply_err(d, rq->id, DYN_ERR_REFUSED, 0, w, "%s", msg);
            o->answered = true;
            o->sent = true;
            o->nt = 0;
            dyn__write_progress(d, o);
            return;
        }
        dyn__write_sendout(d, o);
        return; /* our own copy counts once durable (WAIT_OWN_COPY) */
    }
    d->st.forwarded++;
    struct tbuf ctx = {0};
    if (rq->ctx != NULL)
        dvv_encode(&(struct dvv_obj){.vv = *rq->ctx}, &ctx);
    struct dyn_msg m = {.type = DYN_MSG_UPDATE, .to = coord, .req = o->id, .op = upd,
                        .key = rq->key, .klen = (uint32_t)rq->klen, .body = ctx.data,
                        .blen = (uint32_t)ctx.len, .body2 = rq->value,
                        .b2len = (uint32_t)rq->vlen};
    dyn__send(d, &m);
    tbuf_free(&ctx);
}

/* UPDATE arrived: we are the key's coordinating replica. */
static void dyn__on_update(struct dyn *d, const struct dyn_msg *m)
{
    struct dvv_obj ctxo = {0};
    char msg[160];
    struct dyn_msg r = {.type = DYN_MSG_UPDATE_REPLY, .to = m->from, .req = m->req,
                        .status = DYN_ST_FAIL};
    if (m->op < DYN_UPD_SET || m->op > DYN_UPD_PUT ||
        (m->blen > 0 && dvv_decode(&ctxo, m->body, m->blen, NULL, 0) != 0)) {
        snprintf(msg, sizeof(msg), "ERR malformed update");
        r.body = msg;
        r.blen = (uint32_t)strlen(msg);
        dyn__send(d, &r);
        return;
    }
    struct dyn__wait *w = dyn__wait_new(d, WAIT_UPDATE_REPLY);
    w->to = m->from;
    w->req = m->req;
    struct dvv_obj made = {0};
    struct dvv_dot dot;
    bool existed;
    if (dyn__make_version(d, m->op, m->key, m->klen, &ctxo.vv, m->body2, m->b2len, w, &made,
                          &dot, &existed, msg, sizeof(msg)) != 0) {
        dyn__wait_free(dyn__wait_take(d, w->token));
        r.body = msg;
        r.blen = (uint32_t)strlen(msg);
        dyn__send(d, &r);
        dvv_free(&ctxo);
        return;
    }
    dvv_free(&made);
    dvv_free(&ctxo);
}

static void dyn__on_update_reply(struct dyn *d, const struct dyn_msg *m)
{
    struct dyn__op *o = dyn__op_find(d, m->req);
    if (o == NULL || o->kind != OPK_WRITE || o->sent)
        return; /* timed out, or a duplicate */
    if (m->status != DYN_ST_OK) {
        d->st.writes_failed++;
        dyn__reply_err(d, o->client_req, DYN_ERR_REFUSED, 0, o->need, "%.*s",
                       (int)TRIAD_MIN(m->blen, 150u), (const char *)m->body);
        o->answered = true;
        o->sent = true;
        o->nt = 0;
        dyn__write_progress(d, o);
        return;
    }
    if (dvv_decode(&o->obj, m->body, m->blen, NULL, 0) != 0)
        return; /* a corrupt reply: the request times out */
    o->dot.actor = m->a;
    o->dot.counter = m->b;
    o->existed = m->op != 0;
    o->acks++; /* the coordinating replica's durable copy */
    dyn__write_sendout(d, o);
    dyn__write_progress(d, o);
}

/* PUT arrived: merge the object into ours (or into the hint we keep). */
static void dyn__on_put(struct dyn *d, const struct dyn_msg *m)
{
    struct dyn_msg ack = {.type = DYN_MSG_PUT_ACK, .to = m->from, .req = m->req,
                          .status = DYN_ST_FAIL};
    struct dvv_obj in = {0};
    if (dvv_decode(&in, m->body, m->blen, NULL, 0) != 0 || m->klen == 0) {
        dyn__send(d, &ack);
        return;
    }
    uint32_t owner = m->hint_for == d->id ? 0 : m->hint_for;
    if (owner != 0) {
        if (d->cfg.bugs & DYN_BUG_DROP_HINT) {
            ack.status = DYN_ST_OK;
            dyn__send(d, &ack);
            dvv_free(&in);
            return;
        }
        struct dvv_obj held = {0};
        bool had = d->io.hint_get(d->io.arg, owner, m->key, m->klen, &held);
        if (!had && d->io.hint_count(d->io.arg, 0) >= d->cfg.hints_max) {
            d->st.hints_refused++;
            dyn__send(d, &ack);
            dvv_free(&in);
            return;
        }
        if (dvv_merge(&held, &in) != 0) {
            dyn__send(d, &ack);
        } else {
            struct dyn__wait *w = dyn__wait_new(d, WAIT_ACK);
            w->to = m->from;
            w->req = m->req;
            w->ok = true;
            if (!had)
                d->st.hints_stored++;
            d->io.hint_put(d->io.arg, owner, m->key, m->klen, &held, w->token);
        }
        dvv_free(&held);
        dvv_free(&in);
        return;
    }
    struct dvv_obj local = {0}, next = {0};
    d->io.get(d->io.arg, m->key, m->klen, &local);
    int rc;
    if ((d->cfg.bugs & DYN_BUG_REPAIR_CLOBBER) && m->op == 1) {
        rc = dvv_copy(&next, &in); /* the planted bug: replace */
    } else if (d->cfg.bugs & DYN_BUG_CAUSAL) {
        /* the planted bug: whichever clock is "bigger" wins outright */
        uint64_t sa = 0, sb = 0;
        for (uint32_t i = 0; i < local.vv.n; i++)
            sa += local.vv.e[i].counter;
        for (uint32_t i = 0; i < in.vv.n; i++)
            sb += in.vv.e[i].counter;
        rc = dvv_copy(&next, sb >= sa ? &in : &local);
    } else {
        dvv_copy(&next, &local);
        rc = dvv_merge(&next, &in);
    }
    if (rc != 0) {
        dyn__send(d, &ack);
    } else {
        /* stored even when unchanged: the ack must wait until what we hold
         * is durable, and an earlier put of it may still be on its way */
        struct dyn__wait *w = dyn__wait_new(d, WAIT_ACK);
        w->to = m->from;
        w->req = m->req;
        w->ok = true;
        dyn__store(d, m->key, m->klen, &local, &next, w);
    }
    dvv_free(&local);
    dvv_free(&next);
    dvv_free(&in);
}

static void dyn__hint_acked(struct dyn *d, struct dyn__op *o, bool ok);
static void dyn__handoff_acked(struct dyn *d, struct dyn__op *o, bool ok);

static void dyn__on_put_ack(struct dyn *d, const struct dyn_msg *m)
{
    struct dyn__op *o = dyn__op_find(d, m->req);
    if (o == NULL)
        return;
    if (o->kind == OPK_HINT) {
        dyn__hint_acked(d, o, m->status == DYN_ST_OK);
        return;
    }
    if (o->kind == OPK_HANDOFF) {
        dyn__handoff_acked(d, o, m->status == DYN_ST_OK);
        return;
    }
    if (o->kind != OPK_WRITE)
        return;
    for (uint32_t i = 0; i < o->nt; i++) {
        struct dyn__target *t = &o->t[i];
        if (t->node != m->from || t->state != 0)
            continue;
        t->state = m->status == DYN_ST_OK ? 1 : 2;
        if (t->extra)
            break;
        if (t->state == 1)
            o->acks++;
        else
            o->fails++;
        break;
    }
    dyn__write_progress(d, o);
}

/* ---- reads ---- */

static void dyn__read_finish(struct dyn *d, struct dyn__op *o)
{
    /* read repair: every primary that answered with less than the merge
     * gets the merge (fallbacks are only standing in) */
    uint32_t equal = 0;
    bool all = o->nt == o->n_primaries;
    for (uint32_t i = 0; i < o->nt; i++) {
        struct dyn__target *t = &o->t[i];
        if (t->state != 1) {
            all = false;
            continue;
        }
        if (t->hint_for != 0) {
            all = false;
            continue;
        }
        if (dvv_equal(&t->obj, &o->obj)) {
            equal++;
            continue;
        }
        all = false;
        if (!d->cfg.read_repair || o->obj.vv.n == 0)
            continue;
        struct tbuf enc = {0};
        dvv_encode(&o->obj, &enc);
        struct dyn_msg m = {.type = DYN_MSG_PUT, .to = t->node, .req = 0, .op = 1,
                            .key = o->key, .klen = (uint32_t)o->klen, .body = enc.data,
                            .blen = (uint32_t)enc.len};
        dyn__send(d, &m);
        tbuf_free(&enc);
        d->st.read_repairs++;
    }
    /* a tombstone every replica holds, past its grace: collect it */
    if (all && equal == d->cfg.n && o->obj.vv.n > 0 && dvv_deleted(&o->obj) &&
        HLC_MS(dvv_max_ts(&o->obj)) + d->cfg.tombstone_grace_ms < d->now_ms) {
        uint64_t digest = dvv_digest(&o->obj);
        for (uint32_t i = 0; i < o->nt; i++) {
            struct dyn_msg m = {.type = DYN_MSG_PURGE, .to = o->t[i].node, .a = digest,
                                .key = o->key, .klen = (uint32_t)o->klen};
            dyn__send(d, &m);
        }
    }
    dyn__op_free(d, o);
}

/* A read; internal (no client: a tombstone sweep) reads answer nobody
 * but still repair and collect. */
static void dyn__start_read(struct dyn *d, const struct dyn_req *rq, bool internal)
{
    uint32_t r = rq->r ? rq->r : d->cfg.r;
    if (rq->local) {
        struct dvv_obj local = {0};
        d->io.get(d->io.arg, rq->key, rq->klen, &local);
        struct dyn_result res;
        memset(&res, 0, sizeof(res));
        res.obj = &local;
        res.acks = 1;
        res.needed = 1;
        d->st.reads++;
        d->io.reply(d->io.arg, rq->id, &res);
        dvv_free(&local);
        return;
    }
    struct dyn__op *o = dyn__op_new(d, OPK_READ, rq->key, rq->klen);
    o->client_req = rq->id;
    o->op = rq->op;
    o->need = r;
    o->answered = internal;
    if (d->cfg.sloppy) {
        dyn__targets(d, rq->key, rq->klen, 0, o);
    } else {
        uint32_t walk[DYN_N_MAX];
        size_t np = dyn__walk(d, rq->key, rq->klen, walk, d->cfg.n);
        o->n_primaries = (uint32_t)np;
        for (size_t i = 0; i < np; i++) {
            memset(&o->t[o->nt], 0, sizeof(o->t[0]));
            o->t[o->nt++].node = walk[i];
        }
    }
    if (r > o->n_primaries) {
        if (!internal) {
            d->st.reads_failed++;
            dyn__reply_err(d, rq->id, DYN_ERR_UNAVAILABLE, 0, r,
                           "UNAVAILABLE R=%u but the ring has only %u replicas for this key", r,
                           o->n_primaries);
        }
        o->answered = true;
        o->nt = 0;
        dyn__op_free(d, o);
        return;
    }
    for (uint32_t i = 0; i < o->nt; i++) {
        struct dyn_msg m = {.type = DYN_MSG_GET, .to = o->t[i].node, .req = o->id,
                            .hint_for = o->t[i].hint_for, .key = rq->key,
                            .klen = (uint32_t)rq->klen};
        dyn__send(d, &m);
    }
}

#define DYN_SWEEP_KEYS_MAX 16 /* tombstones checked per anti-entropy step */

struct dyn__sweep {
    struct dyn *d;
    struct tbuf keys; /* (u32 klen, key) of tombstones past their grace */
    uint32_t n;
    uint64_t tombstones; /* seen, past their grace or not */
};

static void dyn__sweep_add(void *arg, const char *key, size_t klen, const struct dvv_obj *o)
{
    struct dyn__sweep *sw = arg;
    if (o->vv.n == 0 || !dvv_deleted(o))
        return;
    sw->tombstones++;
    if (sw->n >= DYN_SWEEP_KEYS_MAX ||
        HLC_MS(dvv_max_ts(o)) + sw->d->cfg.tombstone_grace_ms >= sw->d->now_ms)
        return;
    tbuf_append_u32le(&sw->keys, (uint32_t)klen);
    tbuf_append(&sw->keys, key, klen);
    sw->n++;
}

/* Tombstones past their grace: read each from all N replicas (a read
 * that hears all N identical collects it), so a deleted key that nobody
 * reads still goes. One pass over the store per anti-entropy sweep, and
 * only while there may be tombstones (since the start, one was stored, or
 * the last pass saw one). */
static void dyn__sweep_tombstones(struct dyn *d)
{
    if (!d->sweep_needed)
        return;
    d->sweep_needed = false;
    struct dyn__sweep sw = {d, {0}, 0, 0};
    d->io.scan(d->io.arg, 0, 0, 0, dyn__sweep_add, &sw);
    if (sw.tombstones > 0)
        d->sweep_needed = true; /* look again next sweep */
    for (size_t off = 0; off < sw.keys.len;) {
        uint32_t klen = tbuf_read_u32le(sw.keys.data + off);
        struct dyn_req rq = {.op = DYN_OP_GET, .key = sw.keys.data + off + 4, .klen = klen,
                             .r = d->cfg.n};
        dyn__start_read(d, &rq, true);
        off += 4 + klen;
    }
    tbuf_free(&sw.keys);
}

static void dyn__on_get(struct dyn *d, const struct dyn_msg *m)
{
    struct dvv_obj local = {0};
    uint32_t owner = m->hint_for == d->id ? 0 : m->hint_for;
    if (owner != 0) {
        /* a fallback answers with what it holds for the owner, merged with
         * any copy of its own */
        struct dvv_obj mine = {0};
        d->io.hint_get(d->io.arg, owner, m->key, m->klen, &local);
        if (d->io.get(d->io.arg, m->key, m->klen, &mine))
            dvv_merge(&local, &mine);
        dvv_free(&mine);
    } else {
        d->io.get(d->io.arg, m->key, m->klen, &local);
    }
    tbuf_reset(&d->scratch);
    dvv_encode(&local, &d->scratch);
    struct dyn_msg r = {.type = DYN_MSG_GET_REPLY, .to = m->from, .req = m->req,
                        .key = m->key, .klen = m->klen, .body = d->scratch.data,
                        .blen = (uint32_t)d->scratch.len};
    dvv_free(&local);
    /* scratch is reused by nothing until the send returns */
    dyn__send(d, &r);
}

static void dyn__on_get_reply(struct dyn *d, const struct dyn_msg *m)
{
    struct dyn__op *o = dyn__op_find(d, m->req);
    if (o == NULL || o->kind != OPK_READ)
        return;
    struct dyn__target *t = NULL;
    for (uint32_t i = 0; i < o->nt; i++)
        if (o->t[i].node == m->from && o->t[i].state == 0)
            t = &o->t[i];
    if (t == NULL)
        return;
    if (dvv_decode(&t->obj, m->body, m->blen, NULL, 0) != 0 || dvv_merge(&o->obj, &t->obj) != 0) {
        dvv_free(&t->obj);
        t->state = 2;
        o->fails++;
    } else {
        t->state = 1;
        o->acks++;
    }
    if (!o->answered && o->acks >= o->need)
        dyn__answer_read(d, o);
    for (uint32_t i = 0; i < o->nt; i++)
        if (o->t[i].state == 0)
            return;
    if (!o->answered) {
        d->st.reads_failed++;
        dyn__reply_err(d, o->client_req, DYN_ERR_UNAVAILABLE, o->acks, o->need,
                       "UNAVAILABLE read reached %u of R=%u replicas", o->acks, o->need);
        o->answered = true;
    }
    dyn__read_finish(d, o);
}

static void dyn__on_purge(struct dyn *d, const struct dyn_msg *m)
{
    struct dvv_obj local = {0};
    if (d->io.get(d->io.arg, m->key, m->klen, &local) && dvv_deleted(&local) &&
        dvv_digest(&local) == m->a) {
        dyn__store(d, m->key, m->klen, &local, NULL, NULL);
        d->st.tombstones_purged++;
    }
    dvv_free(&local);
}

/* ---- durability ---- */

void dyn_durable(struct dyn *d, uint64_t token)
{
    if (token == 0)
        return;
    if (d->depth > 0 || d->draining) {
        /* io.put called back from inside: handle it once the caller is done */
        if (d->durable_n == d->durable_cap) {
            d->durable_cap = d->durable_cap ? d->durable_cap * 2 : 16;
            d->durable_q = trealloc(d->durable_q, d->durable_cap * sizeof(*d->durable_q));
        }
        d->durable_q[d->durable_n++] = token;
        return;
    }
    d->depth++;
    dyn__durable(d, token);
    d->depth--;
    dyn__drain(d);
}

static void dyn__durable(struct dyn *d, uint64_t token)
{
    struct dyn__wait *w = dyn__wait_take(d, token);
    if (w == NULL)
        return;
    switch (w->kind) {
    case WAIT_ACK: {
        struct dyn_msg m = {.type = DYN_MSG_PUT_ACK, .to = w->to, .req = w->req,
                            .status = w->ok ? DYN_ST_OK : DYN_ST_FAIL};
        dyn__send(d, &m);
        break;
    }
    case WAIT_UPDATE_REPLY: {
        struct dyn_msg m = {.type = DYN_MSG_UPDATE_REPLY, .to = w->to, .req = w->req,
                            .status = DYN_ST_OK, .op = w->existed, .a = w->dot.actor,
                            .b = w->dot.counter, .body = w->reply.data,
                            .blen = (uint32_t)w->reply.len};
        dyn__send(d, &m);
        break;
    }
    case WAIT_OWN_COPY: {
        struct dyn__op *o = dyn__op_find(d, w->req);
        if (o != NULL) {
            o->acks++;
            dyn__write_progress(d, o);
        }
        break;
    }
    }
    dyn__wait_free(w);
}

/* ---- hinted handoff ---- */

struct dyn__handoff_scan {
    struct dyn *d;
    uint32_t owner;          /* scanning hints for this owner (0: our keys) */
    const struct ring *ring; /* whose replicas get them */
    bool for_leave;
};

static void dyn__handoff_key(void *arg, const char *key, size_t klen, const struct dvv_obj *obj);

static uint32_t dyn__hints_inflight(struct dyn *d, uint32_t owner)
{
    uint32_t n = 0;
    for (struct dyn__op *o = d->head; o != NULL; o = o->next)
        if ((o->kind == OPK_HINT || o->kind == OPK_HANDOFF) && o->owner == owner)
            n++;
    return n;
}

struct dyn__hint_scan {
    struct dyn *d;
    uint32_t owner;
};

static void dyn__hint_offer(void *arg, const char *key, size_t klen, const struct dvv_obj *obj)
{
    struct dyn__hint_scan *hs = arg;
    struct dyn *d = hs->d;
    struct dyn__op *o = dyn__op_new(d, OPK_HINT, key, klen);
    o->owner = hs->owner;
    o->digest = dvv_digest(obj);
    tbuf_reset(&d->scratch);
    dvv_encode(obj, &d->scratch);
    struct dyn_msg m = {.type = DYN_MSG_PUT, .to = hs->owner, .req = o->id, .key = key,
                        .klen = (uint32_t)klen, .body = d->scratch.data,
                        .blen = (uint32_t)d->scratch.len};
    dyn__send(d, &m);
}

/* Offer the hints we hold to every owner that is back, a batch at a time. */
static void dyn__hints_round(struct dyn *d)
{
    if (d->io.hint_count(d->io.arg, 0) == 0)
        return;
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n = gossip_states(d->g, st, GOSSIP_NODES_MAX);
    for (size_t i = 0; i < n; i++) {
        uint32_t owner = st[i].id;
        if (owner == d->id || d->io.hint_count(d->io.arg, owner) == 0 ||
            dyn__hints_inflight(d, owner) > 0)
            continue;
        if (st[i].status == GOSSIP_LEFT) {
            /* its owner is gone for good: to the key's replicas now */
            struct dyn__handoff_scan hs = {d, owner, d->ring, false};
            d->io.scan_hints(d->io.arg, owner, d->cfg.hint_batch, dyn__handoff_key, &hs);
            continue;
        }
        if (!gossip_alive(d->g, owner, d->now_ms))
            continue;
        struct dyn__hint_scan hs = {d, owner};
        d->io.scan_hints(d->io.arg, owner, d->cfg.hint_batch, dyn__hint_offer, &hs);
    }
}

static void dyn__hint_acked(struct dyn *d, struct dyn__op *o, bool ok)
{
    if (ok) {
        /* drop the hint unless it changed while on its way */
        struct dvv_obj held = {0};
        if (d->io.hint_get(d->io.arg, o->owner, o->key, o->klen, &held) &&
            dvv_digest(&held) == o->digest) {
            d->io.hint_put(d->io.arg, o->owner, o->key, o->klen, NULL, 0);
            d->st.hints_delivered++;
        }
        dvv_free(&held);
    }
    dyn__op_free(d, o);
}

/* ---- merging what other replicas send outside a request ---- */

/* Merge obj into our copy of key; true if ours changed. */
static bool dyn__merge_local(struct dyn *d, const char *key, size_t klen, const struct dvv_obj *obj)
{
    struct dvv_obj local = {0}, next = {0};
    d->io.get(d->io.arg, key, klen, &local);
    dvv_copy(&next, &local);
    bool changed = false;
    if (dvv_merge(&next, obj) == 0 && !dvv_equal(&next, &local)) {
        dyn__store(d, key, klen, &local, &next, NULL);
        changed = true;
    }
    dvv_free(&local);
    dvv_free(&next);
    return changed;
}

/* Append (u32 klen, key, u32 olen, obj) to an object list. */
static void dyn__objs_add(struct tbuf *b, const char *key, size_t klen, const struct dvv_obj *o)
{
    tbuf_append_u32le(b, (uint32_t)klen);
    tbuf_append(b, key, klen);
    size_t at = b->len;
    tbuf_append_u32le(b, 0);
    dvv_encode(o, b);
    tbuf_write_u32le(b->data + at, (uint32_t)(b->len - at - 4));
}

/* ---- anti-entropy ---- */

static bool dyn__replicates(struct dyn *d, size_t range)
{
    uint32_t walk[DYN_N_MAX];
    size_t n = ring_range_walk(d->ring, range, walk, d->cfg.n);
    for (size_t i = 0; i < n; i++)
        if (walk[i] == d->id)
            return true;
    return false;
}

static void dyn__tree_add(void *arg, const char *key, size_t klen, const struct dvv_obj *o)
{
    struct dyn *d = arg;
    uint64_t h = ring_hash(key, klen);
    struct merkle *m = d->trees[ring_range_of(d->ring, h)].m;
    if (m != NULL && o->vv.n > 0)
        merkle_add(m, h, merkle_item_hash(key, klen, dvv_digest(o)));
}

/* Range i's tree. The first one asked for after the ring changed builds
 * the trees of every range we replicate, in one pass over the store: a
 * scan costs the whole store, whatever its range. */
static struct merkle *dyn__tree(struct dyn *d, size_t i)
{
    if (d->trees[i].m == NULL) {
        for (size_t k = 0; k < d->n_trees; k++)
            if (d->trees[k].m == NULL && (k == i || dyn__replicates(d, k)))
                d->trees[k].m = merkle_new(d->trees[k].lo, d->trees[k].hi, d->cfg.merkle_depth);
        d->io.scan(d->io.arg, 0, 0, 0, dyn__tree_add, d);
    }
    return d->trees[i].m;
}

/* The range a message names, if our ring has exactly it and we hold it. */
static bool dyn__ae_range(struct dyn *d, const struct dyn_msg *m, size_t *range)
{
    dyn__ring_sync(d);
    if (m->ring_epoch != d->ring_epoch || d->n_trees == 0)
        return false;
    size_t i = ring_range_of(d->ring, m->b);
    if (d->trees[i].lo != m->a || d->trees[i].hi != m->b || !dyn__replicates(d, i))
        return false;
    *range = i;
    return true;
}

static void dyn__ae_send(struct dyn *d, struct dyn_msg *m)
{
    d->st.ae_bytes_sent += DYN_HDR_BYTES + 12 + m->klen + m->blen + m->b2len;
    dyn__send(d, m);
}

static unsigned dyn__ae_level(struct dyn *d)
{
    return TRIAD_MIN((unsigned)DYN_AE_TOP_LEVEL, d->cfg.merkle_depth);
}

static void dyn__ae_start(struct dyn *d)
{
    dyn__ring_sync(d);
    if (d->n_trees == 0)
        return;
    size_t mine = 0;
    for (size_t k = 0; k < d->n_trees; k++)
        mine += dyn__replicates(d, k);
    uint64_t period = mine ? d->cfg.ae_interval_ms / mine : d->cfg.ae_interval_ms;
    d->ae_next_ms = d->now_ms + TRIAD_MAX(period, 1);
    if (d->ae_cursor == 0 && !d->ae.more)
        dyn__sweep_tombstones(d); /* a new sweep of the ring begins */
    for (size_t step = 0; step < d->n_trees; step++) {
        size_t i = d->ae.more ? d->ae.range : d->ae_cursor;
        if (!d->ae.more)
            d->ae_cursor = (d->ae_cursor + 1) % d->n_trees;
        d->ae.more = false;
        if (!dyn__replicates(d, i))
            continue;
        uint32_t walk[DYN_N_MAX], cand[DYN_N_MAX];
        size_t n = ring_range_walk(d->ring, i, walk, d->cfg.n), nc = 0;
        for (size_t k = 0; k < n; k++)
            if (walk[k] != d->id && gossip_get(d->g, walk[k]) != NULL &&
                gossip_alive(d->g, walk[k], d->now_ms))
                cand[nc++] = walk[k];
        if (nc == 0)
            continue;
        uint32_t partner = cand[triad_splitmix64(&d->rng) % nc];
        struct merkle *t = dyn__tree(d, i);
        unsigned level = dyn__ae_level(d);
        uint32_t count = 1u << level;
        tbuf_reset(&d->scratch);
        for (uint32_t k = 0; k < count; k++)
            tbuf_append_u64le(&d->scratch, merkle_node(t, level, k));
        d->ae.active = true;
        d->ae.id = ++d->next_id;
        d->ae.partner = partner;
        d->ae.range = i;
        d->ae.deadline_ms = d->now_ms + d->cfg.request_timeout_ms;
        struct dyn_msg m = {.type = DYN_MSG_AE_TREE, .to = partner, .req = d->ae.id,
                            .a = d->trees[i].lo, .b = d->trees[i].hi, .level = level,
                            .body = d->scratch.data, .blen = (uint32_t)d->scratch.len};
        dyn__ae_send(d, &m);
        return;
    }
}

/* AE_TREE: compare the top level; answer with our leaves under every top
 * node that differs. */
static void dyn__on_ae_tree(struct dyn *d, const struct dyn_msg *m)
{
    size_t i;
    struct dyn_msg r = {.type = DYN_MSG_AE_TREE_REPLY, .to = m->from, .req = m->req, .a = m->a,
                        .b = m->b, .level = m->level, .status = DYN_ST_FAIL};
    unsigned level = dyn__ae_level(d);
    if (!dyn__ae_range(d, m, &i) || m->level != level || m->blen != (8u << level)) {
        dyn__ae_send(d, &r);
        return;
    }
    struct merkle *t = dyn__tree(d, i);
    unsigned depth = merkle_depth(t);
    uint32_t per = 1u << (depth - level);
    struct tbuf out = {0};
    const unsigned char *theirs = m->body;
    for (uint32_t k = 0; k < (1u << level); k++) {
        uint64_t mine = merkle_node(t, level, k), other = tbuf_read_u64le(theirs + 8 * k);
        if (mine == other)
            continue;
        if (mine == 0 || other == 0) {
            /* one side holds nothing there: every leaf differs, no hashes
             * needed (a replica that missed everything costs no leaves) */
            tbuf_append_u32le(&out, k | DYN_AE_WHOLE);
            continue;
        }
        tbuf_append_u32le(&out, k);
        for (uint32_t j = 0; j < per; j++)
            tbuf_append_u64le(&out, merkle_node(t, depth, k * per + j));
    }
    r.status = DYN_ST_OK;
    r.body = out.data;
    r.blen = (uint32_t)out.len;
    dyn__ae_send(d, &r);
    tbuf_free(&out);
}

/* Keys of a range in a set of leaves (a bitmap), with their digests. */
struct dyn__ent {
    uint32_t leaf, off, klen;
    uint64_t digest;
};

struct dyn__ae_scan {
    struct merkle *t;
    uint64_t lo, hi;        /* the tree's range */
    const uint8_t *leaves;
    struct tbuf *keys;      /* the key bytes */
    struct dyn__ent *ents;
    uint32_t n, cap;
};

static int dyn__ent_cmp(const void *a, const void *b)
{
    const struct dyn__ent *x = a, *y = b;
    return x->leaf < y->leaf ? -1 : x->leaf > y->leaf;
}

static bool dyn__leaf_set(const uint8_t *bits, uint32_t leaf)
{
    return (bits[leaf >> 3] >> (leaf & 7)) & 1;
}

static void dyn__ae_collect(void *arg, const char *key, size_t klen, const struct dvv_obj *o)
{
    struct dyn__ae_scan *s = arg;
    uint64_t h = ring_hash(key, klen);
    if (o->vv.n == 0 || !ring_in_range(s->lo, s->hi, h))
        return;
    uint32_t leaf = merkle_leaf_of(s->t, h);
    if (!dyn__leaf_set(s->leaves, leaf))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->ents = trealloc(s->ents, s->cap * sizeof(*s->ents));
    }
    s->ents[s->n++] = (struct dyn__ent){leaf, (uint32_t)s->keys->len, (uint32_t)klen,
                                        dvv_digest(o)};
    tbuf_append(s->keys, key, klen);
}

static void dyn__on_ae_tree_reply(struct dyn *d, const struct dyn_msg *m)
{
    if (!d->ae.active || m->req != d->ae.id || m->from != d->ae.partner)
        return;
    d->ae.active = false;
    size_t i = d->ae.range;
    if (m->status != DYN_ST_OK || i >= d->n_trees || d->trees[i].lo != m->a ||
        d->trees[i].hi != m->b)
        return;
    struct merkle *t = dyn__tree(d, i);
    unsigned depth = merkle_depth(t), level = dyn__ae_level(d);
    uint32_t per = 1u << (depth - level), nleaves = 1u << depth;
    if (m->level != level)
        return;
    uint8_t *bits = tcalloc(nleaves / 8 + 1, 1);
    uint32_t ndiff = 0;
    struct rd in = {m->body, m->blen, false};
    while (in.n > 0) {
        uint32_t k = rd_u32(&in);
        bool whole = (k & DYN_AE_WHOLE) != 0;
        k &= ~DYN_AE_WHOLE;
        const unsigned char *h = NULL;
        if (in.bad || k >= (1u << level) || (!whole && !rd_take(&in, 8 * (size_t)per, &h)))
            break;
        for (uint32_t j = 0; j < per; j++) {
            uint32_t leaf = k * per + j;
            if (whole || merkle_node(t, depth, leaf) != tbuf_read_u64le(h + 8 * j)) {
                bits[leaf >> 3] |= (uint8_t)(1u << (leaf & 7));
                ndiff++;
            }
        }
    }
    d->st.ae_exchanges++;
    if (ndiff == 0) {
        tfree(bits);
        return;
    }
    /* list our keys of the differing leaves, whole leaves at a time, until
     * ae_keys_max: the other side then knows which keys we lack */
    struct tbuf keys = {0}, body = {0};
    struct dyn__ae_scan s = {t, d->trees[i].lo, d->trees[i].hi, bits, &keys, NULL, 0, 0};
    d->io.scan(d->io.arg, s.lo, s.hi, 0, dyn__ae_collect, &s);
    if (s.n > 0)
        qsort(s.ents, s.n, sizeof(*s.ents), dyn__ent_cmp);
    struct tbuf list = {0};
    uint32_t leaves_sent = 0, nkeys = 0;
    for (uint32_t leaf = 0, e = 0; leaf < nleaves; leaf++) {
        if (!dyn__leaf_set(bits, leaf))
            continue;
        if (leaves_sent > 0 && nkeys >= d->cfg.ae_keys_max) {
            d->ae.more = true; /* the rest next time */
            break;
        }
        tbuf_append_u32le(&body, leaf);
        leaves_sent++;
        for (; e < s.n && s.ents[e].leaf <= leaf; e++) {
            if (s.ents[e].leaf != leaf)
                continue;
            tbuf_append_u32le(&list, s.ents[e].klen);
            tbuf_append(&list, keys.data + s.ents[e].off, s.ents[e].klen);
            tbuf_append_u64le(&list, s.ents[e].digest);
            nkeys++;
        }
    }
    struct tbuf msgbody = {0};
    tbuf_append_u32le(&msgbody, leaves_sent);
    tbuf_append(&msgbody, body.data, body.len);
    tbuf_append_u32le(&msgbody, nkeys);
    tbuf_append(&msgbody, list.data, list.len);
    d->ae.active = true;
    d->ae.deadline_ms = d->now_ms + d->cfg.request_timeout_ms;
    struct dyn_msg r = {.type = DYN_MSG_AE_KEYS, .to = m->from, .req = d->ae.id, .a = m->a,
                        .b = m->b, .body = msgbody.data, .blen = (uint32_t)msgbody.len};
    dyn__ae_send(d, &r);
    tbuf_free(&msgbody);
    tbuf_free(&keys);
    tbuf_free(&list);
    tbuf_free(&body);
    tfree(s.ents);
    tfree(bits);
}

/* A (key, digest) list, sorted by key for lookups. */
struct dyn__kd {
    const char *key;
    uint32_t klen;
    uint64_t digest;
    bool seen;
};

static int dyn__kd_cmp(const void *a, const void *b)
{
    const struct dyn__kd *x = a, *y = b;
    size_t n = TRIAD_MIN(x->klen, y->klen);
    int c = n ? memcmp(x->key, y->key, n) : 0;
    if (c != 0)
        return c;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

struct dyn__ae_objs {
    struct dyn *d;
    struct merkle *t;
    uint64_t lo, hi; /* the tree's range */
    uint8_t *leaves;
    struct dyn__kd *kd;
    uint32_t nkd;
    struct tbuf *objs;
    uint32_t nobjs;
};

static void dyn__ae_match(void *arg, const char *key, size_t klen, const struct dvv_obj *o)
{
    struct dyn__ae_objs *s = arg;
    uint64_t h = ring_hash(key, klen);
    if (o->vv.n == 0 || !ring_in_range(s->lo, s->hi, h) ||
        !dyn__leaf_set(s->leaves, merkle_leaf_of(s->t, h)))
        return;
    struct dyn__kd probe = {key, (uint32_t)klen, 0, false};
    struct dyn__kd *hit =
        s->nkd ? bsearch(&probe, s->kd, s->nkd, sizeof(*s->kd), dyn__kd_cmp) : NULL;
    uint64_t dg = dvv_digest(o);
    if (hit != NULL) {
        hit->seen = true;
        if (hit->digest == dg)
            return;
    }
    if (s->nobjs >= s->d->cfg.ae_keys_max)
        return;
    dyn__objs_add(s->objs, key, klen, o);
    s->nobjs++;
}

/* Parse (u32 n, then n x (u32 klen, key, u64 digest)). */
static struct dyn__kd *dyn__kd_parse(struct rd *r, uint32_t *n_out)
{
    uint32_t n = rd_u32(r);
    if (r->bad || n > r->n / 12)
        return NULL;
    struct dyn__kd *kd = tcalloc(n ? n : 1, sizeof(*kd));
    for (uint32_t k = 0; k < n; k++) {
        const unsigned char *q;
        kd[k].klen = rd_u32(r);
        if (kd[k].klen > DYN_KEY_BYTES_MAX)
            r->bad = true;
        if (!rd_take(r, kd[k].klen, &q))
            break;
        kd[k].key = (const char *)q;
        kd[k].digest = rd_u64(r);
    }
    if (r->bad) {
        tfree(kd);
        return NULL;
    }
    if (n > 0)
        qsort(kd, n, sizeof(*kd), dyn__kd_cmp);
    *n_out = n;
    return kd;
}

/* AE_KEYS at the partner: send back our objects that differ or the other
 * side lacks, and name the keys we want theirs of. */
static void dyn__on_ae_keys(struct dyn *d, const struct dyn_msg *m)
{
    size_t i;
    if (!dyn__ae_range(d, m, &i))
        return;
    struct merkle *t = dyn__tree(d, i);
    uint32_t nleaves = 1u << merkle_depth(t);
    struct rd r = {m->body, m->blen, false};
    uint32_t nl = rd_u32(&r);
    if (r.bad || nl > nleaves || (size_t)nl * 4 > r.n)
        return;
    uint8_t *bits = tcalloc(nleaves / 8 + 1, 1);
    for (uint32_t k = 0; k < nl; k++) {
        uint32_t leaf = rd_u32(&r);
        if (leaf < nleaves)
            bits[leaf >> 3] |= (uint8_t)(1u << (leaf & 7));
    }
    uint32_t nkd = 0;
    struct dyn__kd *kd = dyn__kd_parse(&r, &nkd);
    if (kd == NULL || r.n != 0) {
        tfree(kd);
        tfree(bits);
        return;
    }
    struct tbuf objs = {0}, body = {0};
    struct dyn__ae_objs s = {d, t, d->trees[i].lo, d->trees[i].hi, bits, kd, nkd, &objs, 0};
    d->io.scan(d->io.arg, s.lo, s.hi, 0, dyn__ae_match, &s);
    /* wanted: theirs that we lack or hold differently */
    struct tbuf wanted = {0};
    uint32_t nwanted = 0;
    for (uint32_t k = 0; k < nkd && nwanted < d->cfg.ae_keys_max; k++) {
        struct dvv_obj mine = {0};
        bool have = kd[k].seen && d->io.get(d->io.arg, kd[k].key, kd[k].klen, &mine);
        if (!have || dvv_digest(&mine) != kd[k].digest) {
            tbuf_append_u32le(&wanted, kd[k].klen);
            tbuf_append(&wanted, kd[k].key, kd[k].klen);
            nwanted++;
        }
        dvv_free(&mine);
    }
    tbuf_append_u32le(&body, s.nobjs);
    tbuf_append(&body, objs.data, objs.len);
    tbuf_append_u32le(&body, nwanted);
    tbuf_append(&body, wanted.data, wanted.len);
    struct dyn_msg rep = {.type = DYN_MSG_AE_OBJS, .to = m->from, .req = m->req, .a = m->a,
                          .b = m->b, .op = 0, .body = body.data, .blen = (uint32_t)body.len};
    dyn__ae_send(d, &rep);
    tbuf_free(&objs);
    tbuf_free(&wanted);
    tbuf_free(&body);
    tfree(kd);
    tfree(bits);
}

/* Merge a list (u32 n, then n x (u32 klen, key, u32 olen, obj)); r is
 * left after it. false if malformed. */
static bool dyn__merge_objs(struct dyn *d, struct rd *r, uint64_t *changed)
{
    uint32_t n = rd_u32(r);
    for (uint32_t k = 0; k < n && !r->bad; k++) {
        const unsigned char *key, *obj;
        uint32_t klen = rd_u32(r);
        if (klen == 0 || klen > DYN_KEY_BYTES_MAX || !rd_take(r, klen, &key))
            return false;
        uint32_t olen = rd_u32(r);
        if (!rd_take(r, olen, &obj))
            return false;
        struct dvv_obj o = {0};
        if (dvv_decode(&o, obj, olen, NULL, 0) != 0)
            return false;
        if (dyn__merge_local(d, (const char *)key, klen, &o))
            (*changed)++;
        dvv_free(&o);
    }
    return !r->bad;
}


static void dyn__on_ae_objs(struct dyn *d, const struct dyn_msg *m)
{
    size_t i;
    if (!dyn__ae_range(d, m, &i))
        return;
    struct rd r = {m->body, m->blen, false};
    if (!dyn__merge_objs(d, &r, &d->st.ae_keys_repaired))
        return;
    if (m->op != 0)
        return; /* the last step */
    if (!d->ae.active || m->req != d->ae.id || m->from != d->ae.partner)
        return;
    d->ae.active = false;
    d->ae.more = true; /* there were differences: look at this range again */
    uint32_t nw = rd_u32(&r);
    struct tbuf objs = {0}, body = {0};
    uint32_t nobjs = 0;
    for (uint32_t k = 0; k < nw && !r.bad; k++) {
        const unsigned char *key;
        uint32_t klen = rd_u32(&r);
        if (klen > DYN_KEY_BYTES_MAX || !rd_take(&r, klen, &key))
            break;
        struct dvv_obj mine = {0};
        if (d->io.get(d->io.arg, (const char *)key, klen, &mine) && mine.vv.n > 0) {
            dyn__objs_add(&objs, (const char *)key, klen, &mine);
            nobjs++;
        }
        dvv_free(&mine);
    }
    if (nobjs > 0) {
        tbuf_append_u32le(&body, nobjs);
        tbuf_append(&body, objs.data, objs.len);
        tbuf_append_u32le(&body, 0);
        struct dyn_msg rep = {.type = DYN_MSG_AE_OBJS, .to = m->from, .req = m->req, .a = m->a,
                              .b = m->b, .op = 1, .body = body.data, .blen = (uint32_t)body.len};
        dyn__ae_send(d, &rep);
    }
    tbuf_free(&objs);
    tbuf_free(&body);
}

/* ---- leaving ---- */

/* Send key's object to its first n nodes on hs->ring; the hint (if it is
 * one) is dropped once they all have it. */
static void dyn__handoff_key(void *arg, const char *key, size_t klen, const struct dvv_obj *obj)
{
    struct dyn__handoff_scan *hs = arg;
    struct dyn *d = hs->d;
    uint32_t walk[DYN_N_MAX];
    size_t n = ring_walk(hs->ring, ring_hash(key, klen), walk, d->cfg.n);
    if (n == 0 || obj->vv.n == 0)
        return;
    struct dyn__op *o = dyn__op_new(d, OPK_HANDOFF, key, klen);
    o->owner = hs->owner;
    o->digest = dvv_digest(obj);
    o->need = (uint32_t)n;
    o->for_leave = hs->for_leave;
    if (o->for_leave)
        d->leave_inflight++;
    tbuf_reset(&d->scratch);
    dvv_encode(obj, &d->scratch);
    for (size_t i = 0; i < n; i++) {
        struct dyn_msg m = {.type = DYN_MSG_PUT, .to = walk[i], .req = o->id, .key = key,
                            .klen = (uint32_t)klen, .body = d->scratch.data,
                            .blen = (uint32_t)d->scratch.len};
        dyn__send(d, &m);
    }
}

static void dyn__handoff_acked(struct dyn *d, struct dyn__op *o, bool ok)
{
    if (!ok) {
        o->fails++;
    } else if (++o->acks == o->need && o->owner != 0) {
        struct dvv_obj held = {0};
        if (d->io.hint_get(d->io.arg, o->owner, o->key, o->klen, &held) &&
            dvv_digest(&held) == o->digest) {
            d->io.hint_put(d->io.arg, o->owner, o->key, o->klen, NULL, 0);
            d->st.hints_delivered++;
        }
        dvv_free(&held);
    }
    if (o->acks + o->fails < o->need)
        return;
    bool failed = o->fails > 0, for_leave = o->for_leave;
    dyn__op_free(d, o);
    if (for_leave) {
        d->leave_inflight--;
        d->leave_failed = d->leave_failed || failed;
    }
}

/* A leave goes one range at a time (its keys sent together, then the
 * next once all are acknowledged or timed out), then the hints; a pass
 * that lost a copy starts over after a pause, and one that lost none ends
 * the leave. So a large node never floods its peers' queues, and a lost
 * message only costs a retry. */
static void dyn__leave_step(struct dyn *d)
{
    if (!d->leaving || d->left || d->leave_inflight > 0 || d->now_ms < d->leave_next_ms)
        return;
    struct dyn__handoff_scan hs = {d, 0, d->leave_ring, true};
    size_t nr = ring_ranges(d->ring);
    if (d->leave_range < nr) {
        uint64_t lo, hi;
        ring_range_bounds(d->ring, d->leave_range++, &lo, &hi);
        d->io.scan(d->io.arg, lo, hi, 0, dyn__handoff_key, &hs);
        return;
    }
    /* then the hints, a batch per owner at a time, until none is left */
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n = gossip_states(d->g, st, GOSSIP_NODES_MAX);
    for (size_t i = 0; i < n; i++) {
        hs.owner = st[i].id;
        if (st[i].id != d->id && d->io.hint_count(d->io.arg, st[i].id) > 0)
            d->io.scan_hints(d->io.arg, st[i].id, d->cfg.hint_batch, dyn__handoff_key, &hs);
    }
    if (d->leave_inflight > 0)
        return;
    if (d->leave_failed) {
        d->leave_failed = false;
        d->leave_range = 0;
        d->leave_next_ms = d->now_ms + d->cfg.hint_retry_ms;
        return;
    }
    /* every key and hint went out and was acknowledged */
    gossip_set_status(d->g, GOSSIP_LEFT);
    d->left = true;
}

void dyn_leave(struct dyn *d)
{
    if (d->leaving)
        return;
    d->leaving = true;
    dyn__ring_sync(d);
    d->leave_ring = ring_new(d->cfg.vnodes);
    uint32_t members[RING_NODES_MAX];
    size_t k = ring_members(d->ring, members, RING_NODES_MAX);
    for (size_t i = 0; i < k; i++)
        if (members[i] != d->id)
            ring_add(d->leave_ring, members[i]);
    gossip_set_status(d->g, GOSSIP_LEAVING);
    /* hand off once the others know we are leaving (a few gossip rounds),
     * so every write from then on also goes to the nodes taking over */
    d->leave_next_ms = d->now_ms + 3 * d->cfg.gossip.interval_ms;
}

bool dyn_left(const struct dyn *d) { return d->left; }

/* ---- joining ---- */

#define DYN_JOIN_PULLS_MAX 4 /* ranges pulled at once */

struct dyn__pull_scan {
    struct tbuf *objs;
    uint32_t n;
};

static void dyn__pull_add(void *arg, const char *key, size_t klen, const struct dvv_obj *o)
{
    struct dyn__pull_scan *ps = arg;
    if (o->vv.n == 0)
        return;
    dyn__objs_add(ps->objs, key, klen, o);
    ps->n++;
}

/* PULL: a joining node wants our keys of a range. */
static void dyn__on_pull(struct dyn *d, const struct dyn_msg *m)
{
    struct tbuf objs = {0}, body = {0};
    struct dyn__pull_scan ps = {&objs, 0};
    d->io.scan(d->io.arg, m->a, m->b, 0, dyn__pull_add, &ps);
    tbuf_append_u32le(&body, ps.n);
    tbuf_append(&body, objs.data, objs.len);
    struct dyn_msg r = {.type = DYN_MSG_PULL_REPLY, .to = m->from, .req = m->req, .a = m->a,
                        .b = m->b, .body = body.data, .blen = (uint32_t)body.len};
    dyn__send(d, &r);
    tbuf_free(&objs);
    tbuf_free(&body);
}

static void dyn__pull_done(struct dyn *d, struct dyn__op *o, bool ok)
{
    if (ok) {
        d->st.join_ranges_pulled++;
    } else {
        /* again later */
        d->join_todo = trealloc(d->join_todo, (d->join_n + 1) * 2 * sizeof(uint64_t));
        d->join_todo[2 * d->join_n] = o->lo;
        d->join_todo[2 * d->join_n + 1] = o->hi;
        d->join_n++;
    }
    d->join_inflight--;
    dyn__op_free(d, o);
}

static void dyn__on_pull_reply(struct dyn *d, const struct dyn_msg *m)
{
    struct dyn__op *o = dyn__op_find(d, m->req);
    if (o == NULL || o->kind != OPK_PULL)
        return;
    struct rd r = {m->body, m->blen, false};
    for (uint32_t i = 0; i < o->nt; i++) {
        if (o->t[i].node != m->from || o->t[i].state != 0)
            continue;
        bool ok = dyn__merge_objs(d, &r, &d->st.join_keys_received) && r.n == 0;
        o->t[i].state = ok ? 1 : 2;
        o->acks += ok;
        o->fails += !ok;
    }
    if (o->acks + o->fails == o->nt)
        dyn__pull_done(d, o, o->fails == 0);
}

/* Pull the ranges we will replicate from their current replicas, a few
 * at a time; once all are in, turn NORMAL. */
static void dyn__join_step(struct dyn *d)
{
    if (!d->joining)
        return;
    if (!d->join_started) {
        /* wait until gossip has told us the ring (or a few rounds passed) */
        bool ready = true;
        for (size_t i = 0; i < d->n_seeds; i++)
            ready = ready && gossip_get(d->g, d->seeds[i]) != NULL;
        if (!ready && d->now_ms < d->join_start_ms + 3 * d->cfg.gossip.interval_ms)
            return;
        dyn__ring_sync(d);
        d->join_ring = ring_new(d->cfg.vnodes);
        uint32_t m[RING_NODES_MAX];
        size_t k = ring_members(d->ring, m, RING_NODES_MAX);
        for (size_t i = 0; i < k; i++)
            ring_add(d->join_ring, m[i]);
        ring_add(d->join_ring, d->id);
        size_t nr = ring_ranges(d->join_ring);
        d->join_todo = tmalloc(2 * nr * sizeof(uint64_t) + 1);
        for (size_t i = 0; i < nr; i++) {
            uint32_t walk[DYN_N_MAX];
            size_t n = ring_range_walk(d->join_ring, i, walk, d->cfg.n);
            for (size_t j = 0; j < n; j++) {
                if (walk[j] != d->id)
                    continue;
                ring_range_bounds(d->join_ring, i, &d->join_todo[2 * d->join_n],
                                  &d->join_todo[2 * d->join_n + 1]);
                d->join_n++;
            }
        }
        d->join_started = true;
    }
    while (d->join_inflight < DYN_JOIN_PULLS_MAX && d->join_n > 0) {
        uint64_t lo = d->join_todo[2 * (d->join_n - 1)], hi = d->join_todo[2 * d->join_n - 1];
        uint32_t walk[DYN_N_MAX];
        size_t n = ring_walk(d->ring, hi, walk, d->cfg.n);
        struct dyn__op *o = dyn__op_new(d, OPK_PULL, "", 0);
        o->lo = lo;
        o->hi = hi;
        for (size_t i = 0; i < n; i++) {
            if (walk[i] == d->id || !dyn__alive(d, walk[i]))
                continue;
            memset(&o->t[o->nt], 0, sizeof(o->t[0]));
            o->t[o->nt++].node = walk[i];
        }
        if (o->nt == 0) {
            dyn__op_free(d, o); /* nobody to pull from yet */
            break;
        }
        d->join_n--;
        d->join_inflight++;
        for (uint32_t i = 0; i < o->nt; i++) {
            struct dyn_msg m = {.type = DYN_MSG_PULL, .to = o->t[i].node, .req = o->id, .a = lo,
                                .b = hi};
            dyn__send(d, &m);
        }
    }
    if (d->join_n == 0 && d->join_inflight == 0) {
        d->joining = false;
        gossip_set_status(d->g, GOSSIP_NORMAL);
        dyn__ring_sync(d);
    }
}

bool dyn_joining(const struct dyn *d) { return d->joining; }

/* ---- gossip ---- */

static void dyn__gossip_send(struct dyn *d, uint32_t to, uint8_t type)
{
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n = gossip_states(d->g, st, GOSSIP_NODES_MAX);
    tbuf_reset(&d->scratch);
    gossip_encode(st, n, &d->scratch);
    struct dyn_msg m = {.type = type, .to = to, .body = d->scratch.data,
                        .blen = (uint32_t)d->scratch.len};
    dyn__send(d, &m);
}

static void dyn__on_gossip(struct dyn *d, const struct dyn_msg *m)
{
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n;
    if (gossip_decode(m->body, m->blen, st, GOSSIP_NODES_MAX, &n, NULL, 0) != 0)
        return;
    bool newer = gossip_merge(d->g, m->from, st, n, d->now_ms);
    if (m->type == DYN_MSG_GOSSIP && newer)
        dyn__gossip_send(d, m->from, DYN_MSG_GOSSIP_REPLY);
    dyn__ring_sync(d);
}

/* ---- the entry points ---- */

static void dyn__handle(struct dyn *d, const struct dyn_msg *m)
{
    if (m->to != d->id)
        return;
    if (!hlc_observe(&d->hlc, m->ts, d->now_ms))
        d->st.clock_refused++;
    if (m->from != d->id && dyn__suspected(d, m->from))
        dyn__suspect(d, m->from, 0);
    switch (m->type) {
    case DYN_MSG_UPDATE: dyn__on_update(d, m); break;
    case DYN_MSG_UPDATE_REPLY: dyn__on_update_reply(d, m); break;
    case DYN_MSG_PUT: dyn__on_put(d, m); break;
    case DYN_MSG_PUT_ACK: dyn__on_put_ack(d, m); break;
    case DYN_MSG_GET: dyn__on_get(d, m); break;
    case DYN_MSG_GET_REPLY: dyn__on_get_reply(d, m); break;
    case DYN_MSG_GOSSIP:
    case DYN_MSG_GOSSIP_REPLY: dyn__on_gossip(d, m); break;
    case DYN_MSG_AE_TREE: dyn__on_ae_tree(d, m); break;
    case DYN_MSG_AE_TREE_REPLY: dyn__on_ae_tree_reply(d, m); break;
    case DYN_MSG_AE_KEYS: dyn__on_ae_keys(d, m); break;
    case DYN_MSG_AE_OBJS: dyn__on_ae_objs(d, m); break;
    case DYN_MSG_PURGE: dyn__on_purge(d, m); break;
    case DYN_MSG_PULL: dyn__on_pull(d, m); break;
    case DYN_MSG_PULL_REPLY: dyn__on_pull_reply(d, m); break;
    }
}

void dyn_step(struct dyn *d, const struct dyn_msg *m, uint64_t now_ms)
{
    d->now_ms = TRIAD_MAX(d->now_ms, now_ms);
    d->depth++;
    dyn__handle(d, m);
    d->depth--;
    dyn__drain(d);
}

void dyn_submit(struct dyn *d, const struct dyn_req *rq, uint64_t now_ms)
{
    d->now_ms = TRIAD_MAX(d->now_ms, now_ms);
    uint32_t level = rq->op == DYN_OP_GET || rq->op == DYN_OP_GETALL ? rq->r : rq->w;
    if (rq->klen == 0 || rq->klen > DYN_KEY_BYTES_MAX || level > d->cfg.n ||
        rq->op < DYN_OP_GET || rq->op > DYN_OP_PUT || rq->vlen > DVV_VALUE_BYTES_MAX) {
        dyn__reply_err(d, rq->id, DYN_ERR_INVALID, 0, level,
                       rq->klen == 0 || rq->klen > DYN_KEY_BYTES_MAX
                           ? "ERR key length must be between 1 and %u bytes"
                           : "ERR invalid request (a level above N=%u, or a value too large)",
                       rq->klen == 0 || rq->klen > DYN_KEY_BYTES_MAX ? DYN_KEY_BYTES_MAX
                                                                     : d->cfg.n);
        return;
    }
    d->depth++;
    if (rq->op == DYN_OP_GET || rq->op == DYN_OP_GETALL)
        dyn__start_read(d, rq, false);
    else
        dyn__submit_write(d, rq);
    d->depth--;
    dyn__drain(d);
}

/* Requests whose time is up: writes that never reached W fail (they may
 * still be applied: say so), reads answer with what came, or fail. */
static void dyn__expire(struct dyn *d)
{
    while (d->head != NULL && d->head->deadline_ms <= d->now_ms) {
        struct dyn__op *o = d->head;
        uint64_t until = d->now_ms + 2 * d->cfg.gossip.interval_ms + d->cfg.request_timeout_ms;
        if (o->kind == OPK_WRITE && !o->sent && o->coord != d->id)
            dyn__suspect(d, o->coord, until); /* the coordinating replica never answered */
        if (o->kind == OPK_WRITE || o->kind == OPK_READ)
            for (uint32_t i = 0; i < o->nt; i++)
                if (o->t[i].state == 0 && (o->kind == OPK_READ || o->sent))
                    dyn__suspect(d, o->t[i].node, until);
        switch (o->kind) {
        case OPK_WRITE:
            if (!o->answered) {
                d->st.writes_failed++;
                dyn__reply_err(d, o->client_req, DYN_ERR_UNAVAILABLE, o->acks, o->need,
                               "NOREPLICAS write reached %u of W=%u replicas in time; it "
                               "may still be applied", o->acks, o->need);
                o->answered = true;
            }
            dyn__op_free(d, o);
            break;
        case OPK_READ:
            if (!o->answered) {
                d->st.reads_failed++;
                dyn__reply_err(d, o->client_req, DYN_ERR_UNAVAILABLE, o->acks, o->need,
                               "UNAVAILABLE read reached %u of R=%u replicas", o->acks,
                               o->need);
                o->answered = true;
            }
            dyn__read_finish(d, o);
            break;
        case OPK_PULL:
            dyn__pull_done(d, o, false);
            break;
        case OPK_HANDOFF:
            if (o->for_leave) {
                d->leave_inflight--;
                d->leave_failed = true;
            }
            dyn__op_free(d, o);
            break;
        default:
            dyn__op_free(d, o);
            break;
        }
    }
    if (d->ae.active && d->ae.deadline_ms <= d->now_ms)
        d->ae.active = false;
}

void dyn_tick(struct dyn *d, uint64_t now_ms)
{
    d->now_ms = TRIAD_MAX(d->now_ms, now_ms);
    d->depth++;
    uint32_t to = gossip_tick(d->g, d->now_ms, triad_splitmix64(&d->rng));
    if (to != 0)
        dyn__gossip_send(d, to, DYN_MSG_GOSSIP);
    dyn__ring_sync(d);
    dyn__expire(d);
    if (d->now_ms >= d->hint_next_ms) {
        d->hint_next_ms = d->now_ms + d->cfg.hint_retry_ms;
        dyn__hints_round(d);
    }
    if (d->cfg.ae_interval_ms > 0 && !d->ae.active && d->now_ms >= d->ae_next_ms)
        dyn__ae_start(d);
    dyn__join_step(d);
    dyn__leave_step(d);
    d->depth--;
    dyn__drain(d);
}

uint64_t dyn_next_tick_ms(const struct dyn *d)
{
    uint64_t t = gossip_next_ms(d->g);
    if (d->head != NULL)
        t = TRIAD_MIN(t, d->head->deadline_ms);
    t = TRIAD_MIN(t, d->hint_next_ms);
    if (d->cfg.ae_interval_ms > 0)
        t = TRIAD_MIN(t, d->ae.active ? d->ae.deadline_ms : d->ae_next_ms);
    if ((d->leaving && !d->left) || d->joining)
        t = TRIAD_MIN(t, TRIAD_MAX(d->leave_next_ms, d->now_ms + 1));
    return t;
}

/* ---- life cycle ---- */

void dyn_config_default(struct dyn_config *c, uint32_t id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->actor = ((uint64_t)id << 32) | 1;
    c->n = 3;
    c->r = 2;
    c->w = 2;
    c->vnodes = 64;
    c->sloppy = true;
    c->request_timeout_ms = 2000;
    c->hint_retry_ms = 1000;
    c->hints_max = 1000000;
    c->hint_batch = 256;
    c->ae_interval_ms = 10000;
    c->ae_keys_max = 1000;
    c->merkle_depth = 7; /* 128 leaves a range: with 64 tokens a node, a few keys a leaf per
                            10,000 keys */
    c->tombstone_grace_ms = 10ull * 24 * 3600 * 1000;
    c->read_repair = true;
    c->clock_max_ahead_ms = 60000;
    gossip_config_default(&c->gossip);
}

struct dyn *dyn_new(const struct dyn_config *cfg, const struct dyn_io *io,
                    const struct gossip_state *self, uint64_t seed, uint64_t now_ms)
{
    TRIAD_ASSERT(cfg->id != 0 && cfg->id == self->id);
    TRIAD_ASSERT(cfg->n >= 1 && cfg->n <= DYN_N_MAX);
    TRIAD_ASSERT(cfg->actor != 0);
    struct dyn *d = tcalloc(1, sizeof(*d));
    d->cfg = *cfg;
    if (d->cfg.merkle_depth > MERKLE_DEPTH_MAX)
        d->cfg.merkle_depth = MERKLE_DEPTH_MAX;
    if (d->cfg.hint_batch == 0)
        d->cfg.hint_batch = 1;
    if (d->cfg.ae_keys_max == 0)
        d->cfg.ae_keys_max = 1;
    d->io = *io;
    d->id = cfg->id;
    d->rng = seed;
    d->now_ms = now_ms;
    d->g = gossip_new(self, &cfg->gossip, now_ms);
    hlc_init(&d->hlc, HLC_FROM_MS(now_ms), cfg->clock_max_ahead_ms);
    d->hint_next_ms = now_ms + cfg->hint_retry_ms;
    d->ae_next_ms = now_ms + cfg->ae_interval_ms;
    d->joining = self->status == GOSSIP_JOINING;
    d->sweep_needed = true; /* what is on disk is unknown: one pass */
    d->join_start_ms = now_ms;
    dyn__ring_sync(d);
    return d;
}

void dyn_free(struct dyn *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->ops.cap; i++)
        while (d->ops.b[i] != NULL)
            dyn__op_free(d, (struct dyn__op *)d->ops.b[i]);
    tfree(d->ops.b);
    for (size_t i = 0; i < d->waits.cap; i++)
        while (d->waits.b[i] != NULL)
            dyn__wait_free(dyn__wait_take(d, d->waits.b[i]->key));
    tfree(d->waits.b);
    for (size_t i = 0; i < d->n_trees; i++)
        if (d->trees[i].m)
            merkle_free(d->trees[i].m);
    tfree(d->trees);
    if (d->ring)
        ring_free(d->ring);
    if (d->leave_ring)
        ring_free(d->leave_ring);
    if (d->join_ring)
        ring_free(d->join_ring);
    if (d->pending)
        ring_free(d->pending);
    tfree(d->join_todo);
    gossip_free(d->g);
    tbuf_free(&d->loop_q);
    tbuf_free(&d->scratch);
    tfree(d->durable_q);
    tfree(d);
}

void dyn_add_seed(struct dyn *d, uint32_t id)
{
    if (id == d->id || id == 0)
        return;
    for (size_t i = 0; i < d->n_seeds; i++)
        if (d->seeds[i] == id)
            return;
    if (d->n_seeds == GOSSIP_NODES_MAX)
        return;
    d->seeds[d->n_seeds++] = id;
    gossip_add_seed(d->g, id);
    d->ring_gossip_epoch = ~gossip_epoch(d->g); /* rebuild: a new member */
    dyn__ring_sync(d);
}

const struct dyn_stats *dyn_stats(const struct dyn *d) { return &d->st; }
struct gossip *dyn_gossip(struct dyn *d) { return d->g; }
const struct ring *dyn_ring(const struct dyn *d) { return d->ring; }
struct hlc *dyn_hlc(struct dyn *d) { return &d->hlc; }
uint64_t dyn_ring_epoch(const struct dyn *d) { return d->ring_epoch; }
