/* dsim.c - the deterministic simulator of leaderless mode (see dsim.h).
 *
 * Time is global simulated microseconds; each node reads it through its
 * own clock, which drifts and now and then steps backwards. Everything
 * happens as events in one priority queue ordered by (time, sequence
 * number), so a run is a pure function of its seed. Each node is a real
 * struct dyn behind a struct dyn_io whose store keeps two images of every
 * key and hint: the volatile one, which put changes at once, and the
 * durable one, which a simulated fsync catches up with in order; a crash
 * throws the volatile image away.
 *
 * The oracle: every object any node stores passes through io.put, so the
 * simulator sees every dot the moment it is made (the coordinating
 * replica's put of dvv_update's result), and keeps that first object as
 * the write's "made" object: the dots it covers without holding are the
 * ones that write superseded. That is what tells a sibling dropped by a
 * later write from one lost by a bug.
 */
#include "dsim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "../src/common/defs.h"
#include "../src/core/dynamo.h"
#include "../src/core/ring.h"
#include "simlib.h"

#define DS_NODES_MAX 5
#define DS_CLIENTS_MAX 6
#define DS_KEYS_MAX 8
#define DS_OPS_PER_CLIENT_MAX 50
#define DS_OPS_MAX (DS_CLIENTS_MAX * DS_OPS_PER_CLIENT_MAX)
#define DS_WARMUP_MS 1500      /* gossip alone, before clients and faults */
#define DS_QUIET_MS 60000      /* a healed cluster converges within this */
#define DS_STABLE_MS 1000      /* ... and stays converged this long */
#define DS_CHECK_MS 100        /* how often convergence is looked at */
#define DS_CLIENT_TIMEOUT_MS 2500
#define DS_STEPS_MAX 20000000ull
#define DS_TOMBSTONE_GRACE_MS 1000000000ull /* no purge within a run: see dsim__store */

enum ds_ev_kind {
    EV_DELIVER = 1,    /* p: an encoded message, a: its length, from: the sender */
    EV_TICK,           /* a: the node's tick sequence number */
    EV_FSYNC,          /* the node's disk finished the writes due by now */
    EV_DURABLE,        /* a: a token whose callback waited for a pause to end */
    EV_CLIENT_REQ,     /* a: op index */
    EV_CLIENT_REPLY,   /* a: op index, p: struct ds_reply */
    EV_CLIENT_TIMEOUT, /* a: op index */
    EV_CLIENT_NEXT,    /* a: client */
    EV_NEMESIS,
    EV_RESTART,
    EV_RESUME,
    EV_HEAL,
    EV_CHECK,
};

struct ds_ev {
    uint64_t t; /* the queue's order: by t, then by push */
    uint64_t a;
    void *p;
    uint32_t gen;
    uint8_t kind;
    uint8_t node;
    uint8_t from;
};

/* ---- the store: sorted maps of (owner, key) -> encoded object ---- */

struct ds_ent {
    uint32_t owner; /* hints: the node it is held for; 0 in the main store */
    uint32_t klen, vlen;
    uint64_t khash; /* ring_hash(key) */
    char *key, *val;
};

struct ds_map {
    struct ds_ent *e;
    size_t n, cap;
};

/* A write the disk has not finished yet. */
struct ds_pend {
    bool hint, del;
    uint32_t owner;
    uint32_t klen, vlen;
    char *key, *val;
    uint64_t token;
    uint64_t due_us;
};

struct ds_node {
    struct dsim *s;
    uint32_t id;
    struct dyn *d;
    bool up, paused;
    uint32_t gen;        /* incarnation: events for an older one are dropped */
    uint64_t generation; /* gossip generation, bumped at every restart */
    dvv_actor actor;
    uint32_t disks;      /* disks it has had (a wipe gives it a new one) */
    int64_t drift_ppm, offset_us;
    uint64_t tick_seq, tick_want_ms;
    bool tick_set;
    struct ds_map vol, dur;   /* main store: volatile and durable images */
    struct ds_map hvol, hdur; /* hints */
    struct ds_pend *pend;
    size_t n_pend, cap_pend;
    uint64_t fsync_at_us; /* the disk completes writes in order */
    struct ds_ev *def;    /* events held while paused */
    size_t n_def, cap_def;
    bool scanning;
    hlc_ts made_ts; /* the timestamp of the last write it made, this incarnation */
    bool wiped;
    uint64_t wiped_us;
    struct dyn_stats acc; /* counters of its earlier incarnations */
};

/* ---- the history ---- */

enum ds_op_state { OP_PENDING = 0, OP_OK, OP_FAILED, OP_TIMEOUT };

struct ds_op {
    uint8_t op;    /* enum dyn_op */
    uint8_t state; /* enum ds_op_state */
    uint8_t client, key, node;
    bool ring_ok;  /* the coordinator knew every member when it took it */
    bool answered; /* io.reply came (once at most) */
    char value[24];
    uint64_t call_us, ret_us;
    struct dvv_clock ctx; /* the context sent */
    struct dvv_dot dot;   /* writes: the result's dot */
    uint32_t acks;
    struct dvv_obj obj;   /* the result's object, through its encoding */
};

struct ds_reply {
    uint8_t err;
    bool has_obj;
    struct dvv_dot dot;
    uint32_t acks;
    struct tbuf obj; /* dvv_encode of the result's object */
};

struct ds_client {
    uint32_t idx;
    uint32_t n_ops, ops_max;
    int cur; /* the op in progress, -1 when idle */
    /* the session: the join of its successful results' clocks per key,
     * which SET and DEL carry, so its own writes in sequence supersede */
    struct dvv_clock session[DS_KEYS_MAX];
    struct dvv_clock getall[DS_KEYS_MAX]; /* its last GETALL's context */
    bool has_getall[DS_KEYS_MAX];
    int op_of[DS_OPS_PER_CLIENT_MAX + 1]; /* value c<idx>-<n> -> op index */
};

/* Every dot ever made. */
struct ds_write {
    uint8_t key;
    uint32_t node;       /* where it was made */
    struct dvv_dot dot;
    hlc_ts ts;
    uint32_t sib_node;
    bool tomb;
    uint64_t vhash;
    int op;              /* the op that wrote it, -1 unknown */
    /* Lost in a crash before it was durable or sent anywhere: its maker
     * may hand its dot out again (dead: it did). */
    bool vanished, dead;
    struct dvv_obj made; /* the first object that held it */
};

struct ds_params {
    uint32_t nodes, n, r, w, clients, keys;
    bool sloppy;
    uint32_t lat_min_us, lat_max_us, tail_pm, tail_max_us;
    uint32_t loss_pm, dup_pm;
    uint32_t fsync_max_us, inline_pm;
    uint32_t drift_ppm_max;
    uint32_t wipe_pm;
    uint64_t fault_ms;
    uint32_t fault_min_ms, fault_max_ms;
    uint32_t ops_max, think_max_ms;
    uint64_t gossip_ms, request_timeout_ms, hint_retry_ms, ae_interval_ms;
};

struct dsim {
    const struct dsim_options *opt;
    struct dsim_result *res;
    struct simlib_rng rng;
    struct ds_params p;
    uint64_t now;
    struct simlib_evq events; /* of struct ds_ev */

    struct ds_node nodes[DS_NODES_MAX];
    bool link[DS_NODES_MAX][DS_NODES_MAX];
    uint32_t loss_pm, dup_pm;
    bool wiped_once;
    uint64_t first_wipe_us; /* 0: no disk replaced yet */

    struct ds_client clients[DS_CLIENTS_MAX];
    struct ds_op *ops;
    size_t n_ops;
    struct ds_write *writes;
    size_t n_writes, cap_writes;
    uint32_t *wslot; /* open addressing: write index + 1 */
    size_t wcap;

    bool stopped; /* clients start no new op */
    bool healed, ended, failed;
    uint64_t heal_us, converged_us;
    struct tbuf converged_img; /* the replicas' bytes when first seen converged */
    struct dvv_obj final[DS_KEYS_MAX];
};

/* ---- failures and the trace ---- */

static const char *dsim__check_name(int check)
{
    static const char *names[] = {
        "", "check (1) durable at acknowledgement", "check (2) no acknowledged write lost",
        "check (3) a read sees every write acknowledged before it",
        "check (4) convergence", "check (5) no false siblings", "HLC: a node's writes in order",
        "step invariant"};
    return check >= 0 && check < (int)TRIAD_ARRAY_LEN(names) ? names[check] : "?";
}

static void dsim__fail(struct dsim *s, int check, int key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void dsim__fail(struct dsim *s, int check, int key, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    s->res->check = check;
    char *w = s->res->what;
    size_t cap = sizeof(s->res->what);
    int n = key >= 0 ? snprintf(w, cap, "t=%" PRIu64 "ms: %s: key k%d: ", s->now / 1000,
                                dsim__check_name(check), key)
                     : snprintf(w, cap, "t=%" PRIu64 "ms: %s: ", s->now / 1000,
                                dsim__check_name(check));
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < cap)
        vsnprintf(w + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if (s->opt->trace != NULL)
        tbuf_appendf(s->opt->trace, "%" PRIu64 ".%03" PRIu64 " FAIL %s\n", s->now / 1000,
                     s->now % 1000, w);
}

static void dsim__trace(struct dsim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dsim__trace(struct dsim *s, const char *fmt, ...)
{
    if (s->opt->trace == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    simlib_vtrace(s->opt->trace, s->now, fmt, ap);
    va_end(ap);
}

/* "(actor,counter)" for messages; actors are id << 32 | disk. */
static const char *dsim__dot_str(struct dvv_dot d, char *buf, size_t n)
{
    snprintf(buf, n, "(n%u.%u,%" PRIu64 ")", (unsigned)(d.actor >> 32), (unsigned)(d.actor & 0xffffffffu),
             d.counter);
    return buf;
}

/* ---- the event queue ---- */

static void dsim__push_ev(struct dsim *s, struct ds_ev ev)
{
    if (ev.t < s->now)
        ev.t = s->now;
    struct ds_ev *slot = simlib_evq_push(&s->events, ev.t);
    *slot = ev;
}

static void dsim__push(struct dsim *s, uint64_t t, uint8_t kind, int node, uint32_t gen, uint64_t a,
                       void *p)
{
    dsim__push_ev(s, (struct ds_ev){.t = t, .kind = kind, .node = (uint8_t)node, .gen = gen,
                                    .a = a, .p = p});
}

static bool dsim__pop(struct dsim *s, struct ds_ev *out)
{
    const struct ds_ev *ev = simlib_evq_pop(&s->events);
    if (ev == NULL)
        return false;
    *out = *ev;
    return true;
}

static void dsim__free_event(struct ds_ev *ev)
{
    if (ev->kind == EV_DELIVER) {
        free(ev->p);
    } else if (ev->kind == EV_CLIENT_REPLY) {
        struct ds_reply *rp = ev->p;
        tbuf_free(&rp->obj);
        free(rp);
    }
    ev->p = NULL;
}

/* ---- clocks ---- */

static uint64_t dsim__ms(const struct ds_node *sn)
{
    return simlib_local_us(sn->s->now, sn->drift_ppm, sn->offset_us) / 1000;
}

/* The node wants dyn_tick at its local time dyn_next_tick_ms: when is that
 * in global time? (A clock that jumps in between makes it early or late;
 * the tick then does what is due and the node says when next.) */
static void dsim__schedule_tick(struct dsim *s, struct ds_node *sn)
{
    if (!sn->up || sn->d == NULL)
        return;
    uint64_t want = dyn_next_tick_ms(sn->d);
    if (sn->tick_set && want == sn->tick_want_ms)
        return;
    sn->tick_set = true;
    sn->tick_want_ms = want;
    uint64_t local = simlib_local_us(s->now, sn->drift_ppm, sn->offset_us);
    uint64_t at;
    if (want >= UINT64_MAX / 1000 || want * 1000 > local + 3600000000ull)
        at = s->now + 3600000000ull; /* nothing due: look again in an hour */
    else if (want * 1000 <= local)
        at = s->now + 1000;          /* overdue: a loop iteration later */
    else
        at = s->now + (want * 1000 - local) * 1000000 / (uint64_t)(1000000 + sn->drift_ppm) + 1;
    dsim__push(s, at, EV_TICK, (int)sn->id - 1, sn->gen, ++sn->tick_seq, NULL);
}

/* ---- maps ---- */

static int dsim__ent_cmp(uint32_t owner, const char *key, size_t klen, const struct ds_ent *e)
{
    if (owner != e->owner)
        return owner < e->owner ? -1 : 1;
    size_t m = klen < e->klen ? klen : e->klen;
    int c = m > 0 ? memcmp(key, e->key, m) : 0;
    if (c != 0)
        return c;
    return klen < e->klen ? -1 : klen > e->klen;
}

/* The entry's index, or where it would go. */
static size_t dsim__map_find(const struct ds_map *m, uint32_t owner, const char *key, size_t klen,
                             bool *found)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = dsim__ent_cmp(owner, key, klen, &m->e[mid]);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    *found = false;
    return lo;
}

static const struct ds_ent *dsim__map_get(const struct ds_map *m, uint32_t owner, const char *key,
                                          size_t klen)
{
    bool found;
    size_t i = dsim__map_find(m, owner, key, klen, &found);
    return found ? &m->e[i] : NULL;
}

static char *dsim__dup(const void *p, size_t n)
{
    char *c = malloc(n ? n : 1);
    TRIAD_ASSERT(c != NULL);
    if (n > 0)
        memcpy(c, p, n);
    return c;
}

/* val == NULL removes the entry. */
static void dsim__map_set(struct ds_map *m, uint32_t owner, const char *key, size_t klen,
                          const void *val, size_t vlen)
{
    bool found;
    size_t i = dsim__map_find(m, owner, key, klen, &found);
    if (val == NULL) {
        if (found) {
            free(m->e[i].key);
            free(m->e[i].val);
            memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(*m->e));
            m->n--;
        }
        return;
    }
    if (found) {
        free(m->e[i].val);
    } else {
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 16;
            m->e = realloc(m->e, m->cap * sizeof(*m->e));
            TRIAD_ASSERT(m->e != NULL);
        }
        memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
        m->n++;
        m->e[i] = (struct ds_ent){.owner = owner, .klen = (uint32_t)klen,
                                  .khash = ring_hash(key, klen), .key = dsim__dup(key, klen)};
    }
    m->e[i].val = dsim__dup(val, vlen);
    m->e[i].vlen = (uint32_t)vlen;
}

static void dsim__map_free(struct ds_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->e[i].key);
        free(m->e[i].val);
    }
    free(m->e);
    memset(m, 0, sizeof(*m));
}

static void dsim__map_copy(struct ds_map *dst, const struct ds_map *src)
{
    dsim__map_free(dst);
    for (size_t i = 0; i < src->n; i++) {
        const struct ds_ent *e = &src->e[i];
        dsim__map_set(dst, e->owner, e->key, e->klen, e->val, e->vlen);
    }
}

/* The key's index in the workload (k0..k7), -1 if it is not one of ours. */
static int dsim__key_index(const struct dsim *s, const char *key, size_t klen)
{
    if (klen < 2 || klen > 3 || key[0] != 'k')
        return -1;
    int k = 0;
    for (size_t i = 1; i < klen; i++) {
        if (key[i] < '0' || key[i] > '9')
            return -1;
        k = k * 10 + (key[i] - '0');
    }
    return k < (int)s->p.keys ? k : -1;
}

static size_t dsim__key_name(int k, char *buf)
{
    return (size_t)snprintf(buf, 8, "k%d", k);
}

/* Decode stored bytes (ours: a failure is the codec's). */
static bool dsim__decode(struct dsim *s, const void *p, size_t n, struct dvv_obj *out, int key,
                         const char *what)
{
    char err[128];
    if (dvv_decode(out, p, n, err, sizeof(err)) != 0) {
        dsim__fail(s, DSIM_CHECK_STEP, key, "%s does not decode: %s", what, err);
        return false;
    }
    return true;
}

/* ---- the oracle: every dot made ---- */

static const char *dsim__op_name(uint8_t op);

static bool dsim__live(const struct dvv_obj *o, struct dvv_dot d)
{
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (o->sibs[i].dot.actor == d.actor && o->sibs[i].dot.counter == d.counter)
            return true;
    return false;
}

static uint64_t dsim__whash(int key, struct dvv_dot d)
{
    uint64_t k[3] = {(uint64_t)key, d.actor, d.counter};
    return XXH3_64bits(k, sizeof(k));
}

static struct ds_write *dsim__write_find(struct dsim *s, int key, struct dvv_dot d)
{
    if (s->wcap == 0)
        return NULL;
    size_t h = (size_t)dsim__whash(key, d) & (s->wcap - 1);
    while (s->wslot[h] != 0) {
        struct ds_write *w = &s->writes[s->wslot[h] - 1];
        if (!w->dead && w->key == key && w->dot.actor == d.actor && w->dot.counter == d.counter)
            return w;
        h = (h + 1) & (s->wcap - 1);
    }
    return NULL;
}

static void dsim__wslot_put(struct dsim *s, size_t idx)
{
    const struct ds_write *w = &s->writes[idx];
    size_t h = (size_t)dsim__whash(w->key, w->dot) & (s->wcap - 1);
    while (s->wslot[h] != 0)
        h = (h + 1) & (s->wcap - 1);
    s->wslot[h] = (uint32_t)idx + 1;
}

static struct ds_write *dsim__write_add(struct dsim *s, int key, const struct dvv_sib *sib,
                                        uint32_t node, const struct dvv_obj *made)
{
    if (s->n_writes == s->cap_writes) {
        s->cap_writes = s->cap_writes ? s->cap_writes * 2 : 256;
        s->writes = realloc(s->writes, s->cap_writes * sizeof(*s->writes));
        TRIAD_ASSERT(s->writes != NULL);
    }
    if ((s->n_writes + 1) * 2 > s->wcap) {
        free(s->wslot);
        s->wcap = s->wcap ? s->wcap * 2 : 1024;
        s->wslot = calloc(s->wcap, sizeof(*s->wslot));
        TRIAD_ASSERT(s->wslot != NULL);
        for (size_t i = 0; i < s->n_writes; i++)
            dsim__wslot_put(s, i);
    }
    struct ds_write *w = &s->writes[s->n_writes];
    *w = (struct ds_write){.key = (uint8_t)key, .node = node, .dot = sib->dot, .ts = sib->ts,
                           .sib_node = sib->node, .tomb = sib->tombstone,
                           .vhash = XXH3_64bits(sib->value, sib->len), .op = -1};
    TRIAD_ASSERT(dvv_copy(&w->made, made) == 0);
    /* a value names the op that wrote it: c<client>-<n> */
    unsigned c, n;
    char v[24];
    if (!sib->tombstone && sib->len < sizeof(v)) {
        memcpy(v, sib->value, sib->len);
        v[sib->len] = '\0';
        if (sscanf(v, "c%u-%u", &c, &n) == 2 && c < s->p.clients && n >= 1 &&
            n <= DS_OPS_PER_CLIENT_MAX)
            w->op = s->clients[c].op_of[n];
    }
    dsim__wslot_put(s, s->n_writes);
    s->n_writes++;
    return w;
}

/* Was d superseded by a write that `by` holds (live or covered)? That
 * write covered d without holding it when it was made. */
static const struct ds_write *dsim__superseded_by(const struct dsim *s, int key, struct dvv_dot d,
                                                  const struct dvv_obj *by)
{
    for (size_t i = 0; i < s->n_writes; i++) {
        const struct ds_write *w = &s->writes[i];
        if (!w->dead && w->key == key && dvv_covers(by, w->dot) && dvv_covers(&w->made, d) &&
            !dsim__live(&w->made, d))
            return w;
    }
    return NULL;
}

/* Had write w superseded dot x? Its made object covers x without holding
 * it, or the context its client sent named x (SET, DEL and PUT all
 * supersede their context; checking what the client sent as well catches a
 * coordinator that ignores it). */
static bool dsim__supersedes(const struct dsim *s, const struct ds_write *w, struct dvv_dot x)
{
    if (dvv_covers(&w->made, x) && !dsim__live(&w->made, x))
        return true;
    return w->op >= 0 && dvv_clock_covers(&s->ops[w->op].ctx, x);
}

/* (5) No two live siblings where one's write had superseded the other:
 * above all, one client's writes in sequence, each carrying the session's
 * context, never stand side by side. */
static bool dsim__check_siblings(struct dsim *s, int key, const struct dvv_obj *o, const char *where)
{
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        const struct ds_write *wy = dsim__write_find(s, key, o->sibs[i].dot);
        if (wy == NULL)
            continue;
        for (uint32_t j = 0; j < o->n_sibs; j++) {
            struct dvv_dot x = o->sibs[j].dot;
            if (j == i || !dsim__supersedes(s, wy, x))
                continue;
            const struct ds_write *wx = dsim__write_find(s, key, x);
            char b1[48], b2[48], who[96] = "";
            if (wx != NULL && wx->op >= 0 && wy->op >= 0) {
                const struct ds_op *ox = &s->ops[wx->op], *oy = &s->ops[wy->op];
                snprintf(who, sizeof(who), " (client %u's %s %s, then client %u's %s %s)",
                         ox->client, dsim__op_name(ox->op), ox->value, oy->client,
                         dsim__op_name(oy->op), oy->value);
            }
            dsim__fail(s, DSIM_CHECK_NO_FALSE_SIBLINGS, key,
                       "%s holds %s and %s as siblings, though the write of %s had superseded "
                       "%s%s",
                       where, dsim__dot_str(x, b1, sizeof(b1)),
                       dsim__dot_str(wy->dot, b2, sizeof(b2)), b2, b1, who);
            return false;
        }
    }
    return true;
}

/* Every object a node stores, old -> o (main store, or a hint). */
static void dsim__check_put(struct dsim *s, struct ds_node *sn, bool hint, int key,
                            const struct dvv_obj *old, const struct dvv_obj *o)
{
    char b1[48];
    const char *store = hint ? "hint" : "object";
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sib *sib = &o->sibs[i];
        struct ds_write *w = dsim__write_find(s, key, sib->dot);
        bool same = w != NULL && w->ts == sib->ts && w->tomb == sib->tombstone &&
                    w->sib_node == sib->node && w->vhash == XXH3_64bits(sib->value, sib->len);
        if (same) {
            if (w->vanished) /* it had left the node before the crash after all */
                dsim__trace(s, "node %u stores k%d %s again, which a crash seemed to lose", sn->id,
                            key, dsim__dot_str(sib->dot, b1, sizeof(b1)));
            w->vanished = false;
            continue;
        }
        if (w != NULL && !w->vanished) {
            /* a dot names one write */
            dsim__fail(s, DSIM_CHECK_STEP, key,
                       "dot %s names two writes: node %u stores one made by node %u with "
                       "another value or timestamp",
                       dsim__dot_str(sib->dot, b1, sizeof(b1)), sn->id, w->node);
            return;
        }
        /* a new dot: made here, now, by this node's actor, above what it
         * held, at a later timestamp than its earlier writes */
        if (hint || sib->dot.actor != sn->actor) {
            dsim__fail(s, DSIM_CHECK_STEP, key, "dot %s first appears in a %s at node %u (actor %s)",
                       dsim__dot_str(sib->dot, b1, sizeof(b1)), store, sn->id,
                       hint ? "-" : "of another node");
            return;
        }
        if (dvv_covers(old, sib->dot)) {
            dsim__fail(s, DSIM_CHECK_STEP, key,
                       "node %u makes dot %s that its object already covered (a dot reused)",
                       sn->id, dsim__dot_str(sib->dot, b1, sizeof(b1)));
            return;
        }
        if (sib->ts <= sn->made_ts) {
            dsim__fail(s, DSIM_CHECK_HLC, key,
                       "node %u's write %s has timestamp %" PRIu64 ".%" PRIu64
                       ", not above its previous write's %" PRIu64 ".%" PRIu64,
                       sn->id, dsim__dot_str(sib->dot, b1, sizeof(b1)), HLC_MS(sib->ts),
                       HLC_LOGICAL(sib->ts), HLC_MS(sn->made_ts), HLC_LOGICAL(sn->made_ts));
            return;
        }
        sn->made_ts = sib->ts;
        if (w != NULL)
            w->dead = true; /* its dot handed out again: harmless, nobody saw it */
        w = dsim__write_add(s, key, sib, sn->id, o);
        dsim__trace(s, "node %u made k%d %s %s (op %d)", sn->id, key,
                    dsim__dot_str(sib->dot, b1, sizeof(b1)), sib->tombstone ? "tombstone" : "value",
                    w->op);
    }
    /* a replica never forgets: its clock only grows */
    if (!dvv_clock_descends(&o->vv, &old->vv)) {
        for (uint32_t i = 0; i < old->vv.n; i++) {
            struct dvv_dot e = old->vv.e[i];
            if (dvv_clock_get(&o->vv, e.actor) < e.counter) {
                dsim__fail(s, DSIM_CHECK_STEP, key,
                           "node %u's %s forgot %s: its clock went from %" PRIu64 " to %" PRIu64
                           " for that actor",
                           sn->id, store, dsim__dot_str(e, b1, sizeof(b1)), e.counter,
                           dvv_clock_get(&o->vv, e.actor));
                return;
            }
        }
    }
    /* a sibling leaves only for a write that superseded it */
    for (uint32_t i = 0; i < old->n_sibs; i++) {
        struct dvv_dot x = old->sibs[i].dot;
        if (dsim__live(o, x) || dsim__superseded_by(s, key, x, o) != NULL)
            continue;
        dsim__fail(s, DSIM_CHECK_STEP, key,
                   "node %u's %s dropped sibling %s with no write that superseded it", sn->id,
                   store, dsim__dot_str(x, b1, sizeof(b1)));
        return;
    }
    char where[48];
    snprintf(where, sizeof(where), "node %u's %s", sn->id, store);
    dsim__check_siblings(s, key, o, where);
}

/* Nodes that hold dot d of key durably (main store or any hint); a node
 * whose disk was replaced since `since_us` counts, as it may have. */
static uint32_t dsim__durable_holders(struct dsim *s, int key, struct dvv_dot d, uint64_t since_us)
{
    char kb[8];
    size_t kl = dsim__key_name(key, kb);
    uint32_t n = 0;
    for (uint32_t j = 0; j < s->p.nodes; j++) {
        struct ds_node *sn = &s->nodes[j];
        if (sn->wiped && sn->wiped_us >= since_us) {
            n++;
            continue;
        }
        bool have = false;
        const struct ds_ent *e = dsim__map_get(&sn->dur, 0, kb, kl);
        struct dvv_obj o = {0};
        if (e != NULL && dsim__decode(s, e->val, e->vlen, &o, key, "a durable object"))
            have = dvv_covers(&o, d);
        dvv_free(&o);
        for (size_t i = 0; i < sn->hdur.n && !have; i++) {
            const struct ds_ent *h = &sn->hdur.e[i];
            if (h->klen != kl || memcmp(h->key, kb, kl) != 0)
                continue;
            if (dsim__decode(s, h->val, h->vlen, &o, key, "a durable hint"))
                have = dvv_covers(&o, d);
            dvv_free(&o);
        }
        n += have;
    }
    return n;
}

/* ---- the store behind dyn_io ---- */

static void dsim__pend_add(struct dsim *s, struct ds_node *sn, bool hint, uint32_t owner,
                           const char *key, size_t klen, const struct tbuf *val, uint64_t token)
{
    if (sn->n_pend == sn->cap_pend) {
        sn->cap_pend = sn->cap_pend ? sn->cap_pend * 2 : 32;
        sn->pend = realloc(sn->pend, sn->cap_pend * sizeof(*sn->pend));
        TRIAD_ASSERT(sn->pend != NULL);
    }
    /* the disk finishes writes in the order they were issued */
    uint64_t due = s->now + simlib_range(&s->rng, 0, s->p.fsync_max_us);
    if (due < sn->fsync_at_us)
        due = sn->fsync_at_us;
    sn->fsync_at_us = due;
    sn->pend[sn->n_pend++] = (struct ds_pend){
        .hint = hint, .del = val == NULL, .owner = owner, .klen = (uint32_t)klen,
        .key = dsim__dup(key, klen), .vlen = val ? (uint32_t)val->len : 0,
        .val = val ? dsim__dup(val->data, val->len) : NULL, .token = token, .due_us = due};
    dsim__push(s, due, EV_FSYNC, (int)sn->id - 1, sn->gen, 0, NULL);
}

static void dsim__pend_free(struct ds_node *sn)
{
    for (size_t i = 0; i < sn->n_pend; i++) {
        free(sn->pend[i].key);
        free(sn->pend[i].val);
    }
    sn->n_pend = 0;
}

/* put and hint_put: check, apply to the volatile image, and have the disk
 * make it durable later (or at once, before put returns, which the
 * contract allows). */
static void dsim__store(struct ds_node *sn, bool hint, uint32_t owner, const char *key,
                        size_t klen, const struct dvv_obj *o, uint64_t token)
{
    struct dsim *s = sn->s;
    struct ds_map *vol = hint ? &sn->hvol : &sn->vol;
    int k = dsim__key_index(s, key, klen);
    if (k < 0) {
        dsim__fail(s, DSIM_CHECK_STEP, -1, "node %u stores key '%.*s', which no client wrote",
                   sn->id, (int)TRIAD_MIN(klen, 32), key);
        return;
    }
    const struct ds_ent *e = dsim__map_get(vol, owner, key, klen);
    if (sn->scanning && (e == NULL) != (o == NULL)) {
        dsim__fail(s, DSIM_CHECK_STEP, k, "node %u %s a key inside a scan callback", sn->id,
                   o == NULL ? "removes" : "adds");
        return;
    }
    struct dvv_obj old = {0};
    if (e != NULL && !dsim__decode(s, e->val, e->vlen, &old, k, "a stored object"))
        return;
    if (o == NULL && !hint && e != NULL) {
        /* Tombstones are purged only after tombstone_grace_ms, which the
         * simulator sets beyond the run: any removal is a lost object. */
        dsim__fail(s, DSIM_CHECK_STEP, k, "node %u removes its object (%u siblings)", sn->id,
                   old.n_sibs);
        dvv_free(&old);
        return;
    }
    if (o != NULL)
        dsim__check_put(s, sn, hint, k, &old, o);
    dvv_free(&old);
    if (s->failed)
        return;
    struct tbuf b = {0};
    if (o != NULL)
        dvv_encode(o, &b);
    dsim__map_set(vol, owner, key, klen, o != NULL ? b.data : NULL, b.len);
    bool inline_sync = sn->d != NULL && sn->n_pend == 0 && simlib_chance(&s->rng, s->p.inline_pm);
    if (inline_sync) {
        dsim__map_set(hint ? &sn->hdur : &sn->dur, owner, key, klen, o != NULL ? b.data : NULL,
                      b.len);
        tbuf_free(&b);
        dyn_durable(sn->d, token);
        return;
    }
    dsim__pend_add(s, sn, hint, owner, key, klen, o != NULL ? &b : NULL, token);
    tbuf_free(&b);
}

static bool dsim__load(struct ds_node *sn, const struct ds_map *m, uint32_t owner, const char *key,
                       size_t klen, struct dvv_obj *out)
{
    const struct ds_ent *e = dsim__map_get(m, owner, key, klen);
    if (e == NULL)
        return false;
    return dsim__decode(sn->s, e->val, e->vlen, out, dsim__key_index(sn->s, key, klen),
                        "a stored object");
}

static bool dsim__io_get(void *arg, const char *key, size_t klen, struct dvv_obj *out)
{
    struct ds_node *sn = arg;
    return dsim__load(sn, &sn->vol, 0, key, klen, out);
}

static void dsim__io_put(void *arg, const char *key, size_t klen, const struct dvv_obj *o,
                         uint64_t token)
{
    dsim__store(arg, false, 0, key, klen, o, token);
}

static bool dsim__io_hint_get(void *arg, uint32_t owner, const char *key, size_t klen,
                              struct dvv_obj *out)
{
    struct ds_node *sn = arg;
    return dsim__load(sn, &sn->hvol, owner, key, klen, out);
}

static void dsim__io_hint_put(void *arg, uint32_t owner, const char *key, size_t klen,
                              const struct dvv_obj *o, uint64_t token)
{
    struct ds_node *sn = arg;
    if (owner == 0) {
        dsim__fail(sn->s, DSIM_CHECK_STEP, -1, "node %u stores a hint for owner 0", sn->id);
        return;
    }
    dsim__store(sn, true, owner, key, klen, o, token);
}

static uint64_t dsim__io_hint_count(void *arg, uint32_t owner)
{
    struct ds_node *sn = arg;
    uint64_t n = 0;
    for (size_t i = 0; i < sn->hvol.n; i++)
        n += owner == 0 || sn->hvol.e[i].owner == owner;
    return n;
}

/* Visit a snapshot of the matching entries, in key order: cb may put
 * (change values) while we walk. */
static void dsim__scan_map(struct ds_node *sn, const struct ds_map *m, bool hints, uint32_t owner,
                           uint64_t lo, uint64_t hi, size_t max, dyn_scan_cb cb, void *cbarg)
{
    struct dsim *s = sn->s;
    size_t n = 0;
    struct ds_ent *snap = calloc(m->n ? m->n : 1, sizeof(*snap));
    TRIAD_ASSERT(snap != NULL);
    for (size_t i = 0; i < m->n && (max == 0 || n < max); i++) {
        const struct ds_ent *e = &m->e[i];
        if (hints ? owner != 0 && e->owner != owner
                  : lo != hi && !ring_in_range(lo, hi, e->khash))
            continue;
        snap[n] = *e;
        snap[n].key = dsim__dup(e->key, e->klen);
        snap[n].val = dsim__dup(e->val, e->vlen);
        n++;
    }
    bool was = sn->scanning;
    sn->scanning = true;
    for (size_t i = 0; i < n && !s->failed; i++) {
        struct dvv_obj o = {0};
        if (dsim__decode(s, snap[i].val, snap[i].vlen, &o,
                         dsim__key_index(s, snap[i].key, snap[i].klen), "a stored object"))
            cb(cbarg, snap[i].key, snap[i].klen, &o);
        dvv_free(&o);
    }
    sn->scanning = was;
    for (size_t i = 0; i < n; i++) {
        free(snap[i].key);
        free(snap[i].val);
    }
    free(snap);
}

static void dsim__io_scan(void *arg, uint64_t lo, uint64_t hi, size_t max, dyn_scan_cb cb,
                          void *cbarg)
{
    struct ds_node *sn = arg;
    dsim__scan_map(sn, &sn->vol, false, 0, lo, hi, max, cb, cbarg);
}

static void dsim__io_scan_hints(void *arg, uint32_t owner, size_t max, dyn_scan_cb cb, void *cbarg)
{
    struct ds_node *sn = arg;
    dsim__scan_map(sn, &sn->hvol, true, owner, 0, 0, max, cb, cbarg);
}

/* ---- the network ---- */

static const char *dsim__msg_name(uint8_t t)
{
    static const char *names[] = {"?", "update", "update_reply", "put", "put_ack", "get",
                                  "get_reply", "gossip", "gossip_reply", "ae_tree",
                                  "ae_tree_reply", "ae_keys", "ae_objs", "purge", "pull",
                                  "pull_reply"};
    return t < TRIAD_ARRAY_LEN(names) ? names[t] : "?";
}

static uint64_t dsim__latency(struct dsim *s)
{
    return simlib_delay(&s->rng, s->p.lat_min_us, s->p.lat_max_us, s->p.tail_pm, s->p.tail_max_us);
}

/* Every message crosses the wire as dyn_msg_encode's bytes. */
static void dsim__io_send(void *arg, const struct dyn_msg *m)
{
    struct ds_node *sn = arg;
    struct dsim *s = sn->s;
    if (m->to < 1 || m->to > s->p.nodes) {
        dsim__fail(s, DSIM_CHECK_STEP, -1, "node %u sends a message to unknown node %u", sn->id,
                   m->to);
        return;
    }
    if (m->from != sn->id) {
        dsim__fail(s, DSIM_CHECK_STEP, -1, "node %u sends a message from %u", sn->id, m->from);
        return;
    }
    s->res->msgs_sent++;
    int from = (int)sn->id - 1, to = (int)m->to - 1;
    if (!s->link[from][to] || simlib_chance(&s->rng, s->loss_pm))
        return;
    struct tbuf b = {0};
    dyn_msg_encode(m, &b);
    int copies = simlib_chance(&s->rng, s->dup_pm) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        struct ds_ev ev = {.t = s->now + dsim__latency(s), .kind = EV_DELIVER, .node = (uint8_t)to,
                           .from = (uint8_t)from, .gen = s->nodes[to].gen, .a = b.len,
                           .p = dsim__dup(b.data, b.len)};
        dsim__push_ev(s, ev);
    }
    tbuf_free(&b);
}

static void dsim__io_reply(void *arg, uint64_t req_id, const struct dyn_result *r);

static void dsim__deliver(struct dsim *s, struct ds_node *sn, const struct ds_ev *ev)
{
    struct dyn_msg m;
    char err[160];
    if (dyn_msg_decode(&m, ev->p, (size_t)ev->a, err, sizeof(err)) != 0) {
        dsim__fail(s, DSIM_CHECK_STEP, -1, "a message from node %u to node %u does not decode: %s",
                   ev->from + 1, sn->id, err);
        return;
    }
    if (m.from != (uint32_t)ev->from + 1 || m.to != sn->id) {
        dsim__fail(s, DSIM_CHECK_STEP, -1, "a message from node %u to node %u decodes as %u -> %u",
                   ev->from + 1, sn->id, m.from, m.to);
        return;
    }
    s->res->msgs_delivered++;
    if (s->opt->trace != NULL)
        dsim__trace(s, "%u -> %u %s req %" PRIu64 "%s%.*s%s", m.from, m.to, dsim__msg_name(m.type),
                    m.req, m.klen ? " " : "", (int)TRIAD_MIN(m.klen, 16u), m.key ? m.key : "",
                    m.hint_for ? " (hint)" : "");
    dyn_step(sn->d, &m, dsim__ms(sn));
}

/* ---- nodes ---- */

static void dsim__acc_stats(struct ds_node *sn)
{
    if (sn->d == NULL)
        return;
    const struct dyn_stats *st = dyn_stats(sn->d);
    sn->acc.hints_stored += st->hints_stored;
    sn->acc.hints_delivered += st->hints_delivered;
    sn->acc.read_repairs += st->read_repairs;
    sn->acc.ae_exchanges += st->ae_exchanges;
    sn->acc.ae_keys_repaired += st->ae_keys_repaired;
}

static void dsim__node_start(struct dsim *s, struct ds_node *sn)
{
    struct dyn_config c;
    dyn_config_default(&c, sn->id);
    c.actor = sn->actor;
    c.n = s->p.n;
    c.r = s->p.r;
    c.w = s->p.w;
    c.vnodes = 8;
    c.sloppy = s->p.sloppy;
    c.request_timeout_ms = s->p.request_timeout_ms;
    c.hint_retry_ms = s->p.hint_retry_ms;
    c.hints_max = 10000;
    c.hint_batch = 4;
    c.ae_interval_ms = s->p.ae_interval_ms;
    c.ae_keys_max = 4;
    c.merkle_depth = 6;
    c.tombstone_grace_ms = DS_TOMBSTONE_GRACE_MS;
    c.read_repair = true;
    c.clock_max_ahead_ms = 10000; /* above any skew the nemesis makes */
    c.gossip.interval_ms = s->p.gossip_ms;
    c.bugs = s->opt->bugs;
    struct dyn_io io = {
        .arg = sn,
        .send = dsim__io_send,
        .get = dsim__io_get,
        .put = dsim__io_put,
        .hint_get = dsim__io_hint_get,
        .hint_put = dsim__io_hint_put,
        .hint_count = dsim__io_hint_count,
        .scan = dsim__io_scan,
        .scan_hints = dsim__io_scan_hints,
        .reply = dsim__io_reply,
    };
    struct gossip_state self = {.id = sn->id, .generation = sn->generation, .version = 1,
                                .status = GOSSIP_NORMAL, .peer_port = (uint16_t)(7000 + sn->id),
                                .client_port = (uint16_t)(6379 + sn->id)};
    snprintf(self.host, sizeof(self.host), "127.0.0.1");
    sn->up = true;
    sn->paused = false;
    sn->tick_set = false;
    sn->scanning = false;
    sn->made_ts = 0;
    sn->d = NULL;
    struct dyn *d = dyn_new(&c, &io, &self, simlib_rand(&s->rng), dsim__ms(sn));
    TRIAD_ASSERT(d != NULL);
    sn->d = d;
    for (uint32_t j = 1; j <= s->p.nodes; j++)
        if (j != sn->id)
            dyn_add_seed(d, j);
    dsim__schedule_tick(s, sn);
}

/* After sn's crash: its writes that no store anywhere covers any more
 * were never durable nor sent (the contract: durable before answered), so
 * its actor may make their dots again. One that did get out (in a message
 * still in flight) shows up again with the same content. */
static void dsim__mark_vanished(struct dsim *s, struct ds_node *sn)
{
    for (uint32_t key = 0; key < s->p.keys; key++) {
        char kb[8];
        size_t kl = dsim__key_name((int)key, kb);
        struct dvv_obj objs[DS_NODES_MAX * (DS_NODES_MAX + 1)];
        char err[128];
        size_t n = 0;
        for (uint32_t j = 0; j < s->p.nodes; j++) {
            struct ds_node *o = &s->nodes[j];
            const struct ds_ent *e = dsim__map_get(&o->vol, 0, kb, kl);
            if (e != NULL && dvv_decode(&objs[n], e->val, e->vlen, err, sizeof(err)) == 0)
                n++;
            for (size_t i = 0; i < o->hvol.n; i++) {
                const struct ds_ent *h = &o->hvol.e[i];
                if (h->klen == kl && memcmp(h->key, kb, kl) == 0 && n < TRIAD_ARRAY_LEN(objs) &&
                    dvv_decode(&objs[n], h->val, h->vlen, err, sizeof(err)) == 0)
                    n++;
            }
        }
        for (size_t i = 0; i < s->n_writes; i++) {
            struct ds_write *w = &s->writes[i];
            if (w->dead || w->vanished || w->key != key || w->dot.actor != sn->actor)
                continue;
            bool held = false;
            for (size_t j = 0; j < n && !held; j++)
                held = dvv_covers(&objs[j], w->dot);
            if (!held) {
                char b1[48];
                w->vanished = true;
                dsim__trace(s, "k%u %s vanished with node %u's crash", key,
                            dsim__dot_str(w->dot, b1, sizeof(b1)), sn->id);
            }
        }
        for (size_t j = 0; j < n; j++)
            dvv_free(&objs[j]);
    }
}

static void dsim__node_crash(struct dsim *s, struct ds_node *sn)
{
    if (!sn->up)
        return;
    dsim__trace(s, "crash node %u (%zu writes not yet durable are lost)", sn->id, sn->n_pend);
    dsim__acc_stats(sn);
    dyn_free(sn->d);
    sn->d = NULL;
    sn->up = false;
    sn->paused = false;
    sn->gen++;
    dsim__pend_free(sn);
    /* what was not fsynced is gone */
    dsim__map_copy(&sn->vol, &sn->dur);
    dsim__map_copy(&sn->hvol, &sn->hdur);
    dsim__mark_vanished(s, sn);
    for (size_t i = 0; i < sn->n_def; i++)
        dsim__free_event(&sn->def[i]);
    sn->n_def = 0;
    s->res->crashes++;
}

/* A restart keeps the disk; a replaced disk is empty. Either way the node
 * comes back with a new actor id, as dynamo.h asks of a node that may have
 * lost versions it made: a crash loses what was not durable, and a version
 * may have left before it was (in a PUT, a GET reply, an exchange), so the
 * old actor's next dots could name two writes. */
static void dsim__node_restart(struct dsim *s, struct ds_node *sn, bool wipe)
{
    if (sn->up)
        return;
    sn->disks++; /* the incarnation: the actor's low half */
    sn->actor = (dvv_actor)sn->id << 32 | sn->disks;
    if (wipe) {
        dsim__map_free(&sn->vol);
        dsim__map_free(&sn->dur);
        dsim__map_free(&sn->hvol);
        dsim__map_free(&sn->hdur);
        sn->wiped = true;
        sn->wiped_us = s->now;
        s->res->wipes++;
        if (s->first_wipe_us == 0)
            s->first_wipe_us = s->now;
    }
    sn->generation++;
    dsim__trace(s, "restart node %u%s (generation %" PRIu64 ")", sn->id,
                wipe ? " on an empty disk" : "", sn->generation);
    dsim__node_start(s, sn);
}

static void dsim__defer(struct ds_node *sn, const struct ds_ev *ev)
{
    if (sn->n_def == sn->cap_def) {
        sn->cap_def = sn->cap_def ? sn->cap_def * 2 : 64;
        sn->def = realloc(sn->def, sn->cap_def * sizeof(*sn->def));
        TRIAD_ASSERT(sn->def != NULL);
    }
    sn->def[sn->n_def++] = *ev;
}

static void dsim__node_resume(struct dsim *s, struct ds_node *sn)
{
    if (!sn->up || !sn->paused)
        return;
    dsim__trace(s, "resume node %u (%zu events waited)", sn->id, sn->n_def);
    sn->paused = false;
    /* its timers first, then what arrived while it slept, in order */
    sn->tick_set = false;
    dsim__push(s, s->now, EV_TICK, (int)sn->id - 1, sn->gen, ++sn->tick_seq, NULL);
    for (size_t i = 0; i < sn->n_def; i++) {
        struct ds_ev ev = sn->def[i];
        ev.t = s->now;
        dsim__push_ev(s, ev);
    }
    sn->n_def = 0;
}

static uint32_t dsim__nodes_down(const struct dsim *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->p.nodes; i++)
        n += !s->nodes[i].up;
    return n;
}

/* ---- clients ---- */

static const char *dsim__op_name(uint8_t op)
{
    static const char *n[] = {"?", "GET", "GETALL", "SET", "DEL", "PUT"};
    return op < TRIAD_ARRAY_LEN(n) ? n[op] : "?";
}

static bool dsim__is_write(uint8_t op)
{
    return op == DYN_OP_SET || op == DYN_OP_DEL || op == DYN_OP_PUT;
}

static uint64_t dsim__client_latency(struct dsim *s)
{
    return simlib_range(&s->rng, 100, 2000);
}

static void dsim__client_next(struct dsim *s, struct ds_client *c)
{
    c->cur = -1;
    if (s->stopped || s->failed || c->n_ops >= c->ops_max)
        return;
    TRIAD_ASSERT(s->n_ops < DS_OPS_MAX);
    int idx = (int)s->n_ops++;
    struct ds_op *op = &s->ops[idx];
    memset(op, 0, sizeof(*op));
    op->client = (uint8_t)c->idx;
    op->key = (uint8_t)simlib_range(&s->rng, 0, s->p.keys - 1);
    uint64_t r = simlib_range(&s->rng, 0, 99);
    op->op = r < 15   ? DYN_OP_GET
             : r < 33 ? DYN_OP_GETALL
             : r < 66 ? DYN_OP_SET
             : r < 74 ? DYN_OP_DEL
                      : DYN_OP_PUT;
    if (op->op == DYN_OP_PUT && !c->has_getall[op->key])
        op->op = DYN_OP_SET;
    c->n_ops++;
    if (op->op == DYN_OP_SET || op->op == DYN_OP_PUT) {
        snprintf(op->value, sizeof(op->value), "c%u-%u", c->idx, c->n_ops);
        c->op_of[c->n_ops] = idx;
    }
    /* SET and DEL carry the session's view of the key, PUT the context of
     * an earlier GETALL (which is what makes true siblings) */
    if (op->op == DYN_OP_SET || op->op == DYN_OP_DEL)
        TRIAD_ASSERT(dvv_clock_copy(&op->ctx, &c->session[op->key]) == 0);
    else if (op->op == DYN_OP_PUT)
        TRIAD_ASSERT(dvv_clock_copy(&op->ctx, &c->getall[op->key]) == 0);
    /* through a random node, mostly one that is up (a balancer's health
     * check), sometimes any */
    uint32_t k = s->p.nodes;
    uint32_t node = (uint32_t)simlib_range(&s->rng, 0, k - 1);
    if (simlib_chance(&s->rng, 800))
        for (uint32_t i = 0; i < k && !s->nodes[node].up; i++)
            node = (node + 1) % k;
    op->node = (uint8_t)node;
    op->call_us = s->now;
    op->state = OP_PENDING;
    c->cur = idx;
    dsim__trace(s, "client %u: %s k%u %s via node %u (op %d)", c->idx, dsim__op_name(op->op),
                op->key, op->value, node + 1, idx);
    dsim__push(s, s->now + dsim__client_latency(s), EV_CLIENT_REQ, (int)node, 0, (uint64_t)idx,
               NULL);
    dsim__push(s, s->now + DS_CLIENT_TIMEOUT_MS * 1000ull, EV_CLIENT_TIMEOUT, 0, 0, (uint64_t)idx,
               NULL);
}

static void dsim__client_done(struct dsim *s, struct ds_client *c)
{
    c->cur = -1;
    dsim__push(s, s->now + simlib_range(&s->rng, 0, (uint64_t)s->p.think_max_ms * 1000),
               EV_CLIENT_NEXT, 0, 0, c->idx, NULL);
}

static void dsim__submit(struct dsim *s, struct ds_node *sn, int idx)
{
    struct ds_op *op = &s->ops[idx];
    char kb[8];
    size_t kl = dsim__key_name(op->key, kb);
    struct dyn_req rq = {
        .id = (uint64_t)idx + 1,
        .op = op->op,
        .key = kb,
        .klen = kl,
        .value = op->value,
        .vlen = op->op == DYN_OP_SET || op->op == DYN_OP_PUT ? strlen(op->value) : 0,
        .ctx = dsim__is_write(op->op) ? &op->ctx : NULL,
    };
    uint32_t members[DS_NODES_MAX];
    op->ring_ok = ring_members(dyn_ring(sn->d), members, DS_NODES_MAX) == s->p.nodes;
    dyn_submit(sn->d, &rq, dsim__ms(sn));
}

/* io.reply: check (1) now, at the moment of the acknowledgement; the
 * client hears of it a little later. */
static void dsim__io_reply(void *arg, uint64_t req_id, const struct dyn_result *r)
{
    struct ds_node *sn = arg;
    struct dsim *s = sn->s;
    if (req_id < 1 || req_id > s->n_ops) {
        dsim__fail(s, DSIM_CHECK_STEP, -1, "node %u answers request %" PRIu64 ", never made",
                   sn->id, req_id);
        return;
    }
    int idx = (int)req_id - 1;
    struct ds_op *op = &s->ops[idx];
    if (op->answered) {
        dsim__fail(s, DSIM_CHECK_STEP, op->key, "node %u answers op %d a second time", sn->id, idx);
        return;
    }
    op->answered = true;
    char b1[48];
    if (r->err == DYN_OK && dsim__is_write(op->op)) {
        if (r->obj == NULL || !dsim__live(r->obj, r->dot)) {
            dsim__fail(s, DSIM_CHECK_STEP, op->key,
                       "op %d (%s) acknowledged with dot %s, which its object does not hold", idx,
                       dsim__op_name(op->op), dsim__dot_str(r->dot, b1, sizeof(b1)));
            return;
        }
        uint32_t have = dsim__durable_holders(s, op->key, r->dot, op->call_us);
        if (have < s->p.w) {
            dsim__fail(s, DSIM_CHECK_DURABLE_AT_ACK, op->key,
                       "op %d (%s %s) acknowledged at W=%u (acks %u) with dot %s durable on %u "
                       "node(s)",
                       idx, dsim__op_name(op->op), op->value, s->p.w, r->acks,
                       dsim__dot_str(r->dot, b1, sizeof(b1)), have);
            return;
        }
    }
    struct ds_reply *rp = calloc(1, sizeof(*rp));
    TRIAD_ASSERT(rp != NULL);
    rp->err = r->err;
    rp->dot = r->dot;
    rp->acks = r->acks;
    rp->has_obj = r->obj != NULL;
    if (r->obj != NULL)
        dvv_encode(r->obj, &rp->obj);
    dsim__trace(s, "node %u answers op %d: %s, acks %u/%u%s%s", sn->id, idx,
                r->err == DYN_OK ? "ok" : "error", r->acks, r->needed, r->err ? ": " : "",
                r->err ? r->msg : "");
    dsim__push(s, s->now + dsim__client_latency(s), EV_CLIENT_REPLY, 0, 0, (uint64_t)idx, rp);
}

static void dsim__client_reply(struct dsim *s, int idx, struct ds_reply *rp)
{
    struct ds_op *op = &s->ops[idx];
    struct ds_client *c = &s->clients[op->client];
    if (op->state != OP_PENDING)
        return; /* it timed out: the client has moved on */
    op->ret_us = s->now;
    op->acks = rp->acks;
    op->dot = rp->dot;
    if (rp->has_obj && !dsim__decode(s, rp->obj.data, rp->obj.len, &op->obj, op->key,
                                     "a reply's object"))
        return;
    if (rp->err != DYN_OK) {
        op->state = OP_FAILED;
        s->res->ops_failed++;
        dsim__client_done(s, c);
        return;
    }
    op->state = OP_OK;
    s->res->ops_ok++;
    if (dsim__is_write(op->op)) {
        s->res->writes_acked++;
        struct ds_write *w = dsim__write_find(s, op->key, op->dot);
        if (w != NULL && w->op < 0)
            w->op = idx;
    } else {
        s->res->reads_ok++;
        if (op->obj.n_sibs >= 2)
            s->res->reads_with_siblings++;
    }
    dvv_clock_join(&c->session[op->key], &op->obj.vv);
    if (op->op == DYN_OP_GETALL) {
        dvv_clock_free(&c->getall[op->key]);
        TRIAD_ASSERT(dvv_clock_copy(&c->getall[op->key], &op->obj.vv) == 0);
        c->has_getall[op->key] = true;
    }
    dsim__client_done(s, c);
}

/* ---- the nemesis ---- */

static void dsim__links_all(struct dsim *s, bool up)
{
    for (uint32_t i = 0; i < s->p.nodes; i++)
        for (uint32_t j = 0; j < s->p.nodes; j++)
            s->link[i][j] = up || i == j;
}

static void dsim__nemesis(struct dsim *s)
{
    uint32_t k = s->p.nodes;
    uint64_t kind = simlib_range(&s->rng, 0, 99);
    uint32_t v = (uint32_t)simlib_range(&s->rng, 0, k - 1);
    struct ds_node *sn = &s->nodes[v];
    s->res->faults++;
    if (kind < 14) { /* random halves */
        uint32_t mask = (uint32_t)simlib_rand(&s->rng);
        dsim__links_all(s, true);
        for (uint32_t i = 0; i < k; i++)
            for (uint32_t j = 0; j < k; j++)
                if (((mask >> i) & 1) != ((mask >> j) & 1))
                    s->link[i][j] = false;
        s->res->partitions++;
        dsim__trace(s, "nemesis: partition halves, mask %x", mask & ((1u << k) - 1));
    } else if (kind < 26) { /* one node isolated */
        dsim__links_all(s, true);
        for (uint32_t j = 0; j < k; j++)
            if (j != v)
                s->link[v][j] = s->link[j][v] = false;
        s->res->partitions++;
        dsim__trace(s, "nemesis: isolate node %u", v + 1);
    } else if (kind < 42) {
        dsim__links_all(s, true);
        dsim__trace(s, "nemesis: heal the network");
    } else if (kind < 66) { /* crash, restart later: at most a minority down */
        if (!sn->up || dsim__nodes_down(s) >= (k - 1) / 2)
            return;
        dsim__node_crash(s, sn);
        dsim__push(s, s->now + simlib_range(&s->rng, 100000, 2500000), EV_RESTART, (int)v, sn->gen,
                   0, NULL);
    } else if (kind < 80) { /* a pause: messages to it wait */
        if (!sn->up || sn->paused)
            return;
        sn->paused = true;
        s->res->pauses++;
        dsim__trace(s, "nemesis: pause node %u", v + 1);
        dsim__push(s, s->now + simlib_range(&s->rng, 100000, 2000000), EV_RESUME, (int)v, sn->gen,
                   0, NULL);
    } else if (kind < 92) { /* the clock steps back (NTP): the HLC must cope */
        uint64_t back = simlib_range(&s->rng, 1000, 300000);
        sn->offset_us -= (int64_t)back;
        s->res->clock_jumps++;
        dsim__trace(s, "nemesis: node %u's clock steps back %" PRIu64 " ms", v + 1, back / 1000);
    } else {
        s->loss_pm = (uint32_t)simlib_range(&s->rng, 0, 100);
        s->dup_pm = (uint32_t)simlib_range(&s->rng, 0, 50);
        dsim__trace(s, "nemesis: loss %u permille, duplication %u permille", s->loss_pm, s->dup_pm);
    }
}

static void dsim__heal(struct dsim *s)
{
    dsim__trace(s, "heal everything; clients stop");
    s->healed = true;
    s->stopped = true;
    s->heal_us = s->now;
    dsim__links_all(s, true);
    s->loss_pm = 0;
    s->dup_pm = 0;
    for (uint32_t i = 0; i < s->p.nodes; i++) {
        struct ds_node *sn = &s->nodes[i];
        if (!sn->up)
            dsim__node_restart(s, sn, false);
        else if (sn->paused)
            dsim__node_resume(s, sn);
    }
    dsim__push(s, s->now + DS_CHECK_MS * 1000, EV_CHECK, 0, 0, 0, NULL);
}

/* ---- convergence ---- */

static bool dsim__clients_idle(const struct dsim *s)
{
    for (uint32_t i = 0; i < s->p.clients; i++)
        if (s->clients[i].cur >= 0)
            return false;
    return true;
}

/* Every replica of every key holds the same bytes and no hint is left;
 * img gets the replicas' bytes (to see they stay put). why says what is
 * still missing. */
static bool dsim__converged(struct dsim *s, struct tbuf *img, char *why, size_t why_len)
{
    for (uint32_t i = 0; i < s->p.nodes; i++) {
        struct ds_node *sn = &s->nodes[i];
        if (!sn->up || sn->paused) {
            snprintf(why, why_len, "node %u is not running", sn->id);
            return false;
        }
        if (sn->hvol.n > 0) {
            snprintf(why, why_len, "node %u still holds %zu hint(s), the first for node %u", sn->id,
                     sn->hvol.n, sn->hvol.e[0].owner);
            return false;
        }
    }
    for (uint32_t key = 0; key < s->p.keys; key++) {
        char kb[8];
        size_t kl = dsim__key_name((int)key, kb);
        uint32_t rep[DYN_N_MAX], other[DYN_N_MAX];
        size_t nr = dyn_replicas(s->nodes[0].d, kb, kl, rep, DYN_N_MAX);
        if (nr != s->p.n) {
            snprintf(why, why_len, "k%u: node 1 knows %zu replicas", key, nr);
            return false;
        }
        for (uint32_t i = 1; i < s->p.nodes; i++) {
            size_t no = dyn_replicas(s->nodes[i].d, kb, kl, other, DYN_N_MAX);
            if (no != nr || memcmp(rep, other, nr * sizeof(*rep)) != 0) {
                snprintf(why, why_len, "k%u: nodes 1 and %u disagree on its replicas", key, i + 1);
                return false;
            }
        }
        const struct ds_ent *first = NULL;
        for (size_t i = 0; i < nr; i++) {
            if (rep[i] < 1 || rep[i] > s->p.nodes) {
                snprintf(why, why_len, "k%u: replica %u is no node", key, rep[i]);
                return false;
            }
            const struct ds_ent *e = dsim__map_get(&s->nodes[rep[i] - 1].vol, 0, kb, kl);
            if (i == 0)
                first = e;
            else if ((e == NULL) != (first == NULL) ||
                     (e != NULL && (e->vlen != first->vlen ||
                                    memcmp(e->val, first->val, e->vlen) != 0))) {
                snprintf(why, why_len, "k%u: replicas %u and %u differ%s", key, rep[0], rep[i],
                         e == NULL || first == NULL ? " (one has no object)" : "");
                return false;
            }
        }
        if (img != NULL) {
            tbuf_append_u32le(img, first ? first->vlen + 1 : 0);
            if (first != NULL)
                tbuf_append(img, first->val, first->vlen);
        }
    }
    return true;
}

static void dsim__check(struct dsim *s)
{
    char why[160] = "";
    struct tbuf img = {0};
    bool ok = dsim__clients_idle(s) && dsim__converged(s, &img, why, sizeof(why));
    if (!dsim__clients_idle(s))
        snprintf(why, sizeof(why), "clients still wait for replies");
    if (ok && s->converged_us != 0 && img.len == s->converged_img.len &&
        memcmp(img.data, s->converged_img.data, img.len) == 0) {
        if (s->now >= s->converged_us + DS_STABLE_MS * 1000ull) {
            s->ended = true;
            tbuf_free(&img);
            return;
        }
    } else if (ok) {
        s->converged_us = s->now;
        s->res->converge_ms = (s->now - s->heal_us) / 1000;
        tbuf_reset(&s->converged_img);
        tbuf_append(&s->converged_img, img.data, img.len);
        dsim__trace(s, "converged, %" PRIu64 " ms after healing", s->res->converge_ms);
    } else {
        s->converged_us = 0;
    }
    tbuf_free(&img);
    if (s->now >= s->heal_us + DS_QUIET_MS * 1000ull) {
        dsim__fail(s, DSIM_CHECK_CONVERGENCE, -1, "not converged %d ms after healing: %s",
                   DS_QUIET_MS, why);
        return;
    }
    dsim__push(s, s->now + DS_CHECK_MS * 1000, EV_CHECK, 0, 0, 0, NULL);
}

/* ---- the checks on the history, at the end ---- */

static void dsim__final_objects(struct dsim *s)
{
    for (uint32_t key = 0; key < s->p.keys && !s->failed; key++) {
        char kb[8];
        size_t kl = dsim__key_name((int)key, kb);
        uint32_t rep[DYN_N_MAX];
        size_t nr = dyn_replicas(s->nodes[0].d, kb, kl, rep, DYN_N_MAX);
        TRIAD_ASSERT(nr >= 1);
        const struct ds_ent *e = dsim__map_get(&s->nodes[rep[0] - 1].vol, 0, kb, kl);
        if (e != NULL)
            dsim__decode(s, e->val, e->vlen, &s->final[key], (int)key, "a final object");
    }
}

/* (2): every acknowledged write is in the final object, or was superseded
 * by a write the final object holds. */
static void dsim__check_lost(struct dsim *s)
{
    char b1[48];
    for (size_t i = 0; i < s->n_ops && !s->failed; i++) {
        const struct ds_op *op = &s->ops[i];
        if (op->state != OP_OK || !dsim__is_write(op->op))
            continue;
        const struct dvv_obj *f = &s->final[op->key];
        if (!dvv_covers(f, op->dot)) {
            dsim__fail(s, DSIM_CHECK_NO_LOST_WRITE, op->key,
                       "op %zu (%s %s by client %u, acknowledged at %" PRIu64
                       " ms) dot %s is not in the final object",
                       i, dsim__op_name(op->op), op->value, op->client, op->ret_us / 1000,
                       dsim__dot_str(op->dot, b1, sizeof(b1)));
            return;
        }
        if (dsim__live(f, op->dot) || dsim__superseded_by(s, op->key, op->dot, f) != NULL)
            continue;
        dsim__fail(s, DSIM_CHECK_NO_LOST_WRITE, op->key,
                   "op %zu (%s %s by client %u) dot %s is covered by the final object but "
                   "neither held nor superseded by any write it holds",
                   i, dsim__op_name(op->op), op->value, op->client,
                   dsim__dot_str(op->dot, b1, sizeof(b1)));
        return;
    }
}

/* (3): strict quorum with R + W > N: a read that starts after a write was
 * acknowledged sees it. Not while a coordinator's ring lacked a member,
 * and not once a disk was replaced (a replica's copy then really is
 * gone). */
static void dsim__check_reads(struct dsim *s)
{
    if (s->p.sloppy || s->p.r + s->p.w <= s->p.n)
        return;
    char b1[48];
    for (size_t i = 0; i < s->n_ops && !s->failed; i++) {
        const struct ds_op *rd = &s->ops[i];
        if (rd->state != OP_OK || dsim__is_write(rd->op) || !rd->ring_ok)
            continue;
        if (s->first_wipe_us != 0 && s->first_wipe_us <= rd->ret_us)
            continue;
        for (size_t j = 0; j < s->n_ops; j++) {
            const struct ds_op *w = &s->ops[j];
            if (w->state != OP_OK || !dsim__is_write(w->op) || w->key != rd->key || !w->ring_ok ||
                w->ret_us >= rd->call_us)
                continue;
            if (!dvv_covers(&rd->obj, w->dot)) {
                dsim__fail(s, DSIM_CHECK_READ_SEES_ACKED, rd->key,
                           "op %zu (%s via node %u at %" PRIu64 " ms) misses op %zu (%s %s, dot %s, "
                           "acknowledged at %" PRIu64 " ms), R=%u W=%u N=%u",
                           i, dsim__op_name(rd->op), rd->node + 1u, rd->call_us / 1000, j,
                           dsim__op_name(w->op), w->value, dsim__dot_str(w->dot, b1, sizeof(b1)),
                           w->ret_us / 1000, s->p.r, s->p.w, s->p.n);
                return;
            }
        }
    }
}

/* (5) on what the clients read and on the final objects. */
static void dsim__check_false_siblings(struct dsim *s)
{
    char where[48];
    for (size_t i = 0; i < s->n_ops && !s->failed; i++) {
        const struct ds_op *op = &s->ops[i];
        if (op->state != OP_OK || dsim__is_write(op->op))
            continue;
        snprintf(where, sizeof(where), "op %zu's read", i);
        dsim__check_siblings(s, op->key, &op->obj, where);
    }
    for (uint32_t key = 0; key < s->p.keys && !s->failed; key++)
        dsim__check_siblings(s, (int)key, &s->final[key], "the final object");
}

/* ---- the run ---- */

static void dsim__params(struct dsim *s)
{
    struct ds_params *p = &s->p;
    p->nodes = simlib_chance(&s->rng, 500) ? 3 : 5;
    p->n = 3;
    p->sloppy = simlib_chance(&s->rng, 500);
    static const uint32_t rw[][2] = {{2, 2}, {2, 2}, {2, 2}, {2, 2}, {2, 2}, {1, 3},
                                     {3, 1}, {1, 2}, {2, 1}, {1, 1}};
    uint64_t q = simlib_range(&s->rng, 0, TRIAD_ARRAY_LEN(rw) - 1);
    p->r = rw[q][0];
    p->w = rw[q][1];
    p->clients = (uint32_t)simlib_range(&s->rng, 3, DS_CLIENTS_MAX);
    p->keys = (uint32_t)simlib_range(&s->rng, 3, DS_KEYS_MAX);
    p->lat_min_us = (uint32_t)simlib_range(&s->rng, 1000, 5000);
    p->lat_max_us = p->lat_min_us + (uint32_t)simlib_range(&s->rng, 1000, 15000);
    p->tail_pm = (uint32_t)simlib_range(&s->rng, 0, 20);
    p->tail_max_us = (uint32_t)simlib_range(&s->rng, 10000, 200000);
    p->loss_pm = (uint32_t)simlib_range(&s->rng, 0, 40);
    p->dup_pm = (uint32_t)simlib_range(&s->rng, 0, 30);
    p->fsync_max_us = (uint32_t)simlib_range(&s->rng, 0, 10000);
    p->inline_pm = simlib_chance(&s->rng, 250) ? (uint32_t)simlib_range(&s->rng, 50, 500) : 0;
    p->drift_ppm_max = (uint32_t)simlib_range(&s->rng, 0, 20000);
    /* a replaced disk loses what only it held: only when W >= 2 (and once),
     * so that every acknowledged write keeps a durable copy */
    p->wipe_pm = p->w >= 2 ? (uint32_t)simlib_range(&s->rng, 0, 150) : 0;
    p->fault_ms = simlib_range(&s->rng, 4000, 9000);
    p->fault_min_ms = (uint32_t)simlib_range(&s->rng, 100, 500);
    p->fault_max_ms = p->fault_min_ms + (uint32_t)simlib_range(&s->rng, 100, 1500);
    p->ops_max = (uint32_t)simlib_range(&s->rng, 20, DS_OPS_PER_CLIENT_MAX);
    p->think_max_ms = (uint32_t)simlib_range(&s->rng, 0, 80);
    p->gossip_ms = 100;
    p->request_timeout_ms = 500;
    p->hint_retry_ms = 200;
    p->ae_interval_ms = simlib_range(&s->rng, 200, 400);
}

static void dsim__handle(struct dsim *s, const struct ds_ev *ev)
{
    struct ds_node *sn = &s->nodes[ev->node];
    switch (ev->kind) {
    case EV_DELIVER:
        if (!sn->up || sn->gen != ev->gen || !s->link[ev->from][ev->node])
            break;
        if (sn->paused) {
            dsim__defer(sn, ev);
            return; /* the payload now belongs to the deferred event */
        }
        dsim__deliver(s, sn, ev);
        dsim__schedule_tick(s, sn);
        break;
    case EV_TICK:
        if (!sn->up || sn->gen != ev->gen || ev->a != sn->tick_seq || sn->paused)
            break; /* a paused node gets a tick when it resumes */
        sn->tick_set = false;
        dyn_tick(sn->d, dsim__ms(sn));
        dsim__schedule_tick(s, sn);
        break;
    case EV_FSYNC:
        if (!sn->up || sn->gen != ev->gen)
            break;
        /* in issue order; the kernel finishes writes even while the process
         * is stopped, and the callback waits for it to resume */
        while (sn->up && !s->failed && sn->n_pend > 0 && sn->pend[0].due_us <= s->now) {
            struct ds_pend pd = sn->pend[0];
            sn->n_pend--;
            memmove(sn->pend, sn->pend + 1, sn->n_pend * sizeof(*sn->pend));
            dsim__map_set(pd.hint ? &sn->hdur : &sn->dur, pd.owner, pd.key, pd.klen,
                          pd.del ? NULL : pd.val, pd.vlen);
            free(pd.key);
            free(pd.val);
            if (sn->paused) {
                struct ds_ev dev = {.t = s->now, .kind = EV_DURABLE, .node = ev->node,
                                    .gen = sn->gen, .a = pd.token};
                dsim__defer(sn, &dev);
            } else {
                dyn_durable(sn->d, pd.token);
            }
        }
        dsim__schedule_tick(s, sn);
        break;
    case EV_DURABLE:
        if (!sn->up || sn->gen != ev->gen)
            break;
        if (sn->paused) {
            dsim__defer(sn, ev);
            break;
        }
        dyn_durable(sn->d, ev->a);
        dsim__schedule_tick(s, sn);
        break;
    case EV_CLIENT_REQ:
        if (!sn->up)
            break; /* lost: the client times out */
        if (sn->paused) {
            dsim__defer(sn, ev);
            break;
        }
        dsim__submit(s, sn, (int)ev->a);
        dsim__schedule_tick(s, sn);
        break;
    case EV_CLIENT_REPLY:
        dsim__client_reply(s, (int)ev->a, ev->p);
        break;
    case EV_CLIENT_TIMEOUT: {
        struct ds_op *op = &s->ops[ev->a];
        if (op->state != OP_PENDING)
            break;
        op->state = OP_TIMEOUT;
        op->ret_us = s->now;
        s->res->ops_timeout++;
        dsim__trace(s, "client %u: op %" PRIu64 " timed out", op->client, ev->a);
        dsim__client_done(s, &s->clients[op->client]);
        break;
    }
    case EV_CLIENT_NEXT:
        if (s->clients[ev->a].cur < 0)
            dsim__client_next(s, &s->clients[ev->a]);
        break;
    case EV_NEMESIS:
        if (s->healed)
            break;
        dsim__nemesis(s);
        dsim__push(s, s->now + simlib_range(&s->rng, (uint64_t)s->p.fault_min_ms * 1000,
                                             (uint64_t)s->p.fault_max_ms * 1000),
                   EV_NEMESIS, 0, 0, 0, NULL);
        break;
    case EV_RESTART:
        if (!sn->up && sn->gen == ev->gen && !s->healed) {
            bool wipe = !s->wiped_once && simlib_chance(&s->rng, s->p.wipe_pm);
            s->wiped_once |= wipe;
            dsim__node_restart(s, sn, wipe);
        }
        break;
    case EV_RESUME:
        if (sn->gen == ev->gen)
            dsim__node_resume(s, sn);
        break;
    case EV_HEAL:
        dsim__heal(s);
        break;
    case EV_CHECK:
        dsim__check(s);
        break;
    }
    if (ev->kind == EV_DELIVER || ev->kind == EV_CLIENT_REPLY) {
        struct ds_ev e = *ev;
        dsim__free_event(&e);
    }
}

static void dsim__free(struct dsim *s)
{
    struct ds_ev ev;
    for (uint32_t i = 0; i < s->p.nodes; i++) {
        struct ds_node *sn = &s->nodes[i];
        dsim__acc_stats(sn);
        dyn_free(sn->d);
        sn->d = NULL;
        dsim__map_free(&sn->vol);
        dsim__map_free(&sn->dur);
        dsim__map_free(&sn->hvol);
        dsim__map_free(&sn->hdur);
        dsim__pend_free(sn);
        free(sn->pend);
        for (size_t k = 0; k < sn->n_def; k++)
            dsim__free_event(&sn->def[k]);
        free(sn->def);
        s->res->hints_stored += sn->acc.hints_stored;
        s->res->hints_delivered += sn->acc.hints_delivered;
        s->res->read_repairs += sn->acc.read_repairs;
        s->res->ae_exchanges += sn->acc.ae_exchanges;
        s->res->ae_keys_repaired += sn->acc.ae_keys_repaired;
    }
    while (dsim__pop(s, &ev))
        dsim__free_event(&ev);
    simlib_evq_free(&s->events);
    for (size_t i = 0; i < s->n_ops; i++) {
        dvv_clock_free(&s->ops[i].ctx);
        dvv_free(&s->ops[i].obj);
    }
    free(s->ops);
    for (size_t i = 0; i < s->n_writes; i++)
        dvv_free(&s->writes[i].made);
    free(s->writes);
    free(s->wslot);
    for (uint32_t i = 0; i < DS_CLIENTS_MAX; i++)
        for (uint32_t k = 0; k < DS_KEYS_MAX; k++) {
            dvv_clock_free(&s->clients[i].session[k]);
            dvv_clock_free(&s->clients[i].getall[k]);
        }
    for (uint32_t k = 0; k < DS_KEYS_MAX; k++)
        dvv_free(&s->final[k]);
    tbuf_free(&s->converged_img);
    free(s);
}

int dsim_run(const struct dsim_options *opt, struct dsim_result *res)
{
    struct dsim *s = calloc(1, sizeof(*s));
    TRIAD_ASSERT(s != NULL);
    memset(res, 0, sizeof(*res));
    s->opt = opt;
    s->res = res;
    s->rng.state = opt->seed * 0x2545f4914f6cdd1dull + 0x5851f42d4c957f2dull;
    simlib_evq_init(&s->events, sizeof(struct ds_ev));
    dsim__params(s);
    res->nodes = s->p.nodes;
    res->n = s->p.n;
    res->r = s->p.r;
    res->w = s->p.w;
    res->sloppy = s->p.sloppy;
    res->clients = s->p.clients;
    res->keys = s->p.keys;
    s->loss_pm = s->p.loss_pm;
    s->dup_pm = s->p.dup_pm;
    s->ops = calloc(DS_OPS_MAX, sizeof(*s->ops));
    TRIAD_ASSERT(s->ops != NULL);
    dsim__links_all(s, true);
    dsim__trace(s, "seed %" PRIu64 ": %u nodes, N=%u R=%u W=%u, %s quorum, %u clients, %u keys, "
                "faults for %" PRIu64 " ms",
                opt->seed, s->p.nodes, s->p.n, s->p.r, s->p.w, s->p.sloppy ? "sloppy" : "strict",
                s->p.clients, s->p.keys, s->p.fault_ms);
    for (uint32_t i = 0; i < s->p.nodes; i++) {
        struct ds_node *sn = &s->nodes[i];
        sn->s = s;
        sn->id = i + 1;
        sn->disks = 1;
        sn->actor = (dvv_actor)sn->id << 32 | 1;
        sn->generation = 1;
        sn->drift_ppm = (int64_t)simlib_range(&s->rng, 0, 2 * (uint64_t)s->p.drift_ppm_max) -
                        (int64_t)s->p.drift_ppm_max;
        /* clocks start up to half a second apart, far from zero so that
         * steps back never go below it */
        sn->offset_us = 1000000000000ll + (int64_t)simlib_range(&s->rng, 0, 500000);
    }
    for (uint32_t i = 0; i < s->p.nodes; i++)
        dsim__node_start(s, &s->nodes[i]);
    for (uint32_t i = 0; i < s->p.clients; i++) {
        struct ds_client *c = &s->clients[i];
        c->idx = i;
        c->cur = -1;
        c->ops_max = s->p.ops_max;
        dsim__push(s, DS_WARMUP_MS * 1000ull + simlib_range(&s->rng, 0, 100000), EV_CLIENT_NEXT,
                   0, 0, i, NULL);
    }
    dsim__push(s, DS_WARMUP_MS * 1000ull + simlib_range(&s->rng, 0, 500000), EV_NEMESIS, 0, 0, 0,
               NULL);
    dsim__push(s, DS_WARMUP_MS * 1000ull + s->p.fault_ms * 1000, EV_HEAL, 0, 0, 0, NULL);

    struct ds_ev ev;
    while (!s->failed && !s->ended && dsim__pop(s, &ev)) {
        s->now = ev.t;
        res->steps++;
        dsim__handle(s, &ev);
        if (res->steps >= DS_STEPS_MAX) {
            dsim__fail(s, DSIM_CHECK_STEP, -1, "step limit (%llu events) reached",
                       (unsigned long long)DS_STEPS_MAX);
            break;
        }
    }
    res->sim_ms = s->now / 1000;
    res->ops = s->n_ops;
    if (!s->failed && !s->ended)
        dsim__fail(s, DSIM_CHECK_STEP, -1, "the event queue ran dry");
    if (!s->failed)
        dsim__final_objects(s);
    if (!s->failed)
        dsim__check_lost(s);
    if (!s->failed)
        dsim__check_reads(s);
    if (!s->failed)
        dsim__check_false_siblings(s);
    res->ok = !s->failed;
    dsim__trace(s, "end: %s", res->ok ? "every check passed" : res->what);
    dsim__free(s);
    return res->ok ? 0 : -1;
}

/* ---- names and the command line ---- */

static const struct {
    const char *name;
    uint32_t bug;
} dsim__bugs[] = {
    {"ack-early", DYN_BUG_ACK_EARLY},
    {"causal", DYN_BUG_CAUSAL},
    {"drop-hint", DYN_BUG_DROP_HINT},
    {"repair-clobber", DYN_BUG_REPAIR_CLOBBER},
};

uint32_t dsim_bug_by_name(const char *name)
{
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(dsim__bugs); i++)
        if (strcmp(dsim__bugs[i].name, name) == 0)
            return dsim__bugs[i].bug;
    return 0;
}

static void dsim__usage(FILE *f)
{
    fprintf(f,
            "Usage: triad sim --mode leaderless [options]\n"
            "  --seed N            the seed (default 1)\n"
            "  --seeds A-B         every seed from A to B; --seeds COUNT: COUNT seeds from --seed\n"
            "  --bug NAME          plant a bug: ack-early, causal, drop-hint, repair-clobber\n"
            "  --expect-failure    succeed only if some seed fails (proves the checks catch the bug)\n"
            "  --keep-going        run every seed even after a failure; report each\n"
            "  -v, --verbose       print every event of each seed run\n"
            "  --quiet             print only failures and the summary\n");
}

int dsim_main(int argc, char **argv)
{
    uint64_t first = 1, last = 1, count = 0;
    bool range = false, verbose = false, expect_failure = false, quiet = false, keep_going = false;
    const char *bug_name = NULL;
    uint32_t bugs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--mode") == 0 && v) {
            if (strcmp(v, "leaderless") != 0) {
                fprintf(stderr, "triad sim: unknown mode '%s'\n", v);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--seed") == 0 && v) {
            first = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) {
            const char *dash = strchr(v, '-');
            if (dash != NULL) {
                first = strtoull(v, NULL, 10);
                last = strtoull(dash + 1, NULL, 10);
                range = true;
                if (last < first) {
                    fprintf(stderr, "triad sim: empty seed range '%s'\n", v);
                    return 2;
                }
            } else {
                count = strtoull(v, NULL, 10);
            }
            i++;
        } else if (strcmp(a, "--bug") == 0 && v) {
            bug_name = v;
            bugs = dsim_bug_by_name(v);
            if (bugs == 0) {
                fprintf(stderr, "triad sim: unknown bug '%s'\n", v);
                dsim__usage(stderr);
                return 2;
            }
            i++;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(a, "--expect-failure") == 0) {
            expect_failure = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--keep-going") == 0) {
            keep_going = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            dsim__usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "triad sim: unknown or incomplete option '%s'\n", a);
            dsim__usage(stderr);
            return 2;
        }
    }
    if (!range)
        last = first + (count ? count : 1) - 1;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ran = 0, failed_seed = 0, sim_ms = 0, ops = 0, ops_ok = 0, faults = 0;
    uint64_t hints = 0, repairs = 0, ae = 0, sib_reads = 0, wipes = 0, n_failed = 0;
    bool failed = false;
    for (uint64_t sd = first; sd <= last; sd++) {
        struct tbuf tb = {0};
        struct dsim_options o = {.seed = sd, .bugs = bugs, .trace = verbose ? &tb : NULL};
        struct dsim_result r;
        int rc = dsim_run(&o, &r);
        ran++;
        sim_ms += r.sim_ms;
        ops += r.ops;
        ops_ok += r.ops_ok;
        faults += r.faults;
        hints += r.hints_delivered;
        repairs += r.read_repairs;
        ae += r.ae_keys_repaired;
        sib_reads += r.reads_with_siblings;
        wipes += r.wipes;
        if (verbose)
            fwrite(tb.data, 1, tb.len, stdout);
        tbuf_free(&tb);
        if (!quiet && !expect_failure)
            printf("seed %" PRIu64 ": %s, %u nodes, N=%u R=%u W=%u %s, %" PRIu64 " ops (%" PRIu64
                   " ok, %" PRIu64 " failed, %" PRIu64 " timed out), %" PRIu64 " faults, %" PRIu64
                   " ms simulated%s",
                   sd, rc == 0 ? "ok" : "FAIL", r.nodes, r.n, r.r, r.w,
                   r.sloppy ? "sloppy" : "strict", r.ops, r.ops_ok, r.ops_failed, r.ops_timeout,
                   r.faults, r.sim_ms, rc == 0 ? ", converged " : "\n");
        if (!quiet && !expect_failure && rc == 0)
            printf("%" PRIu64 " ms after healing\n", r.converge_ms);
        if (rc != 0) {
            if (!failed)
                failed_seed = sd;
            failed = true;
            n_failed++;
            printf("FAIL seed %" PRIu64 ": %s\n  replay: triad sim --mode leaderless --seed %" PRIu64
                   " -v%s%s\n",
                   sd, r.what, sd, bug_name ? " --bug " : "", bug_name ? bug_name : "");
            fflush(stdout);
            if (!keep_going)
                break;
        }
        if (sd == UINT64_MAX)
            break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (n_failed > 0)
        printf("dsim: %" PRIu64 " of %" PRIu64 " seeds failed\n", n_failed, ran);
    printf("dsim: %" PRIu64 " seeds in %.1f s (%.0fx real time), %" PRIu64 " ops (%" PRIu64
           " ok), %" PRIu64 " faults, %" PRIu64 " disks replaced, %" PRIu64
           " reads with siblings, %" PRIu64 " hints delivered, %" PRIu64 " read repairs, %" PRIu64
           " keys repaired by anti-entropy\n",
           ran, secs, secs > 0 ? (double)sim_ms / 1000.0 / secs : 0.0, ops, ops_ok, faults, wipes,
           sib_reads, hints, repairs, ae);
    if (expect_failure) {
        if (failed) {
            printf("dsim: the planted bug %s was caught at seed %" PRIu64 " (after %" PRIu64
                   " seeds)\n",
                   bug_name ? bug_name : "(none)", failed_seed, ran);
            return 0;
        }
        printf("dsim: NOT caught: %" PRIu64 " seeds passed with bug %s planted\n", ran,
               bug_name ? bug_name : "(none)");
        return 1;
    }
    return failed ? 1 : 0;
}
