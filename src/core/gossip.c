/* gossip.c - leaderless mode's membership gossip and phi-accrual failure
 * detector (see gossip.h for the contract).
 *
 * Choices the header leaves open:
 *  - the first round is due at once, at the time given to gossip_new: a
 *    restarted node announces its new generation without waiting a round;
 *  - the first state heard for a node (and the first of each new
 *    generation) counts as an arrival, so a node we only ever hear of
 *    second-hand, and never again, is convicted in time instead of staying
 *    "no arrival yet" (phi 0) for ever; and its detector starts with one
 *    interval of interval_ms already in the window (gossip__phi_start says
 *    why);
 *  - a seed is not a state: adding one does not move the epoch, and it
 *    takes a slot of the table (GOSSIP_NODES_MAX, ourselves included) that
 *    its state fills when it arrives;
 *  - states that break the header's rules (id 0, bad status or host) are
 *    skipped by gossip_merge: they can only come from outside.
 */
#include "gossip.h"

#include <string.h>

#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"

#define PHI_LOG10_E 0.43429448190325182765 /* phi = elapsed / mean * log10(e) */
/* No clock comes near this; it only keeps PHI_WINDOW intervals from
 * overflowing sum_ms whatever times a caller passes. */
#define PHI_INTERVAL_MS_MAX (UINT64_MAX / PHI_WINDOW)

/* Wire: u8 version, u16 count, then per state u32 id, u64 generation, u64
 * version, u8 status, u16 peer_port, u16 client_port, u8 host length and
 * the host bytes; integers little-endian. */
#define GOSSIP_WIRE_VERSION 1
#define GOSSIP_WIRE_HEADER_BYTES 3
#define GOSSIP_WIRE_STATE_FIXED_BYTES (4 + 8 + 8 + 1 + 2 + 2 + 1)
_Static_assert(GOSSIP_WIRE_STATE_FIXED_BYTES == 26, "state layout");
_Static_assert(GOSSIP_HOST_MAX <= UINT8_MAX, "the host length is one byte on the wire");
_Static_assert(GOSSIP_NODES_MAX <= UINT16_MAX, "the count is two bytes on the wire");

/* ---- phi accrual ---- */

void phi_init(struct phi *p, uint64_t bootstrap_interval_ms)
{
    TRIAD_ASSERT(bootstrap_interval_ms > 0); /* the mean divides */
    memset(p, 0, sizeof(*p));
    p->bootstrap_ms = bootstrap_interval_ms;
}

void phi_arrival(struct phi *p, uint64_t now_ms)
{
    /* last_ms 0 means "none yet": an arrival at 0 ms is kept as 1 ms. */
    uint64_t at = now_ms ? now_ms : 1;

    if (p->last_ms != 0) {
        /* 0 ms (or a clock that stepped back) counts as 1 ms: the mean
         * must stay above 0. */
        uint64_t iv = at > p->last_ms ? at - p->last_ms : 1;
        iv = TRIAD_MIN(iv, PHI_INTERVAL_MS_MAX);
        if (p->n == PHI_WINDOW)
            p->sum_ms -= p->intervals_ms[p->next];
        else
            p->n++;
        p->intervals_ms[p->next] = iv;
        p->sum_ms += iv;
        p->next = (p->next + 1) % PHI_WINDOW;
    }
    if (at > p->last_ms)
        p->last_ms = at;
    TRIAD_ASSERT(p->n <= PHI_WINDOW);
    TRIAD_ASSERT(p->n == 0 || p->sum_ms >= p->n);
}

double phi_value(const struct phi *p, uint64_t now_ms)
{
    if (p->last_ms == 0)
        return 0;
    double mean = p->n ? (double)p->sum_ms / p->n : (double)p->bootstrap_ms;
    uint64_t elapsed = now_ms > p->last_ms ? now_ms - p->last_ms : 0;
    TRIAD_ASSERT(mean > 0);
    return (double)elapsed / mean * PHI_LOG10_E;
}

/* ---- gossip ---- */

struct gossip__node {
    uint32_t id;
    bool has_state; /* false: a seed we have heard nothing of yet */
    struct gossip_state st;
    struct phi phi; /* unused for ourselves */
};

struct gossip {
    struct gossip_config cfg;
    uint32_t self;
    struct gossip__node *me;
    /* Ascending by id. A node is never removed (a LEFT one stays so that
     * its status spreads), so a node's address is stable until
     * gossip_free. */
    struct gossip__node *nodes[GOSSIP_NODES_MAX];
    size_t n;
    uint64_t next_ms;
    uint64_t epoch;
};

void gossip_config_default(struct gossip_config *c)
{
    c->interval_ms = 1000;
    c->phi_convict = 8; /* Cassandra's phi_convict_threshold */
}

static bool gossip__state_ok(const struct gossip_state *s)
{
    size_t len = strnlen(s->host, sizeof(s->host));
    return s->id != 0 && s->status >= GOSSIP_JOINING && s->status <= GOSSIP_LEFT &&
           len <= GOSSIP_HOST_MAX && triad_host_ok(s->host, len, GOSSIP_HOST_MAX);
}

/* (generation, version) of a is larger than b's. */
static bool gossip__newer(const struct gossip_state *a, const struct gossip_state *b)
{
    if (a->generation != b->generation)
        return a->generation > b->generation;
    return a->version > b->version;
}

/* Copies with the bytes past the host's NUL zeroed, so that equal states
 * are equal bytes. */
static void gossip__copy(struct gossip_state *dst, const struct gossip_state *src)
{
    size_t len = strnlen(src->host, sizeof(src->host));
    TRIAD_ASSERT(len <= GOSSIP_HOST_MAX);
    *dst = *src;
    memset(dst->host + len, 0, sizeof(dst->host) - len);
}

static bool gossip__same_place(const struct gossip_state *a, const struct gossip_state *b)
{
    return a->status == b->status && a->peer_port == b->peer_port &&
           a->client_port == b->client_port && strcmp(a->host, b->host) == 0;
}

/* Where id is, or would go, in the table. */
static size_t gossip__pos(const struct gossip *g, uint32_t id)
{
    size_t lo = 0, hi = g->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (g->nodes[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct gossip__node *gossip__find(const struct gossip *g, uint32_t id)
{
    size_t i = gossip__pos(g, id);
    return i < g->n && g->nodes[i]->id == id ? g->nodes[i] : NULL;
}

/* A new entry without a state; NULL when the table is full. */
static struct gossip__node *gossip__insert(struct gossip *g, uint32_t id)
{
    TRIAD_ASSERT(id != 0);
    TRIAD_ASSERT(gossip__find(g, id) == NULL);
    if (g->n == GOSSIP_NODES_MAX)
        return NULL;
    size_t i = gossip__pos(g, id);
    struct gossip__node *x = tcalloc(1, sizeof(*x));
    x->id = id;
    memmove(&g->nodes[i + 1], &g->nodes[i], (g->n - i) * sizeof(g->nodes[0]));
    g->nodes[i] = x;
    g->n++;
    return x;
}

/* Our pair moves just past (gen, ver). Should the version ever reach its
 * end the generation carries; at (max, max) nothing can be newer anyway. */
static void gossip__self_past(struct gossip *g, uint64_t gen, uint64_t ver)
{
    struct gossip_state *me = &g->me->st;
    if (ver < UINT64_MAX) {
        me->generation = gen;
        me->version = ver + 1;
    } else if (gen < UINT64_MAX) {
        me->generation = gen + 1;
        me->version = 0;
    } else {
        me->generation = gen;
        me->version = ver;
    }
}

/* O(n) self-check for tests and debug builds: 0 when consistent. */
int gossip__check(const struct gossip *g)
{
    if (g->n == 0 || g->n > GOSSIP_NODES_MAX)
        return -1;
    if (g->me != gossip__find(g, g->self) || !g->me->has_state || g->me->st.id != g->self)
        return -2;
    for (size_t i = 0; i < g->n; i++) {
        const struct gossip__node *x = g->nodes[i];
        if (i > 0 && g->nodes[i - 1]->id >= x->id)
            return -3;
        if (x->has_state && (x->st.id != x->id || !gossip__state_ok(&x->st)))
            return -4;
        if (x == g->me)
            continue;
        if (!x->has_state && x->phi.last_ms != 0)
            return -5;
        uint64_t sum = 0;
        for (uint32_t k = 0; k < x->phi.n; k++)
            sum += x->phi.intervals_ms[(x->phi.next + PHI_WINDOW - 1 - k) % PHI_WINDOW];
        if (x->phi.n > PHI_WINDOW || sum != x->phi.sum_ms)
            return -6;
    }
    return 0;
}

struct gossip *gossip_new(const struct gossip_state *self, const struct gossip_config *cfg,
                          uint64_t now_ms)
{
    TRIAD_ASSERT(gossip__state_ok(self));
    TRIAD_ASSERT(cfg->interval_ms > 0);
    TRIAD_ASSERT(cfg->phi_convict > 0);

    struct gossip *g = tcalloc(1, sizeof(*g));
    g->cfg = *cfg;
    g->self = self->id;
    g->me = gossip__insert(g, self->id);
    g->me->has_state = true;
    gossip__copy(&g->me->st, self);
    g->next_ms = now_ms;
    g->epoch = 1; /* we are the first node known */
    TRIAD_DEBUG_ASSERT(gossip__check(g) == 0);
    return g;
}

void gossip_free(struct gossip *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->n; i++)
        tfree(g->nodes[i]);
    tfree(g);
}

void gossip_add_seed(struct gossip *g, uint32_t id)
{
    TRIAD_ASSERT(id != 0);
    if (gossip__find(g, id) != NULL)
        return; /* ourselves, or already known */
    (void)gossip__insert(g, id); /* a full table drops it, as it drops states */
}

uint32_t gossip_tick(struct gossip *g, uint64_t now_ms, uint64_t rnd)
{
    if (now_ms < g->next_ms)
        return 0;
    /* Keep the cadence; a tick later than a whole round skips the missed
     * rounds rather than running them in a burst. */
    uint64_t iv = g->cfg.interval_ms;
    g->next_ms = g->next_ms <= UINT64_MAX - iv ? g->next_ms + iv : UINT64_MAX;
    if (g->next_ms <= now_ms)
        g->next_ms = now_ms <= UINT64_MAX - iv ? now_ms + iv : UINT64_MAX;
    gossip__self_past(g, g->me->st.generation, g->me->st.version);

    /* A LEFT node stays in the table so that its status spreads, but it
     * has gone: talking to it would only waste a round. A dead one is
     * still chosen: that is how we notice it is back. */
    uint32_t cand[GOSSIP_NODES_MAX];
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        const struct gossip__node *x = g->nodes[i];
        if (x == g->me || (x->has_state && x->st.status == GOSSIP_LEFT))
            continue;
        cand[k++] = x->id;
    }
    if (k == 0)
        return 0;
    uint32_t to = cand[rnd % k]; /* bias of at most 64 / 2^64 */
    TRIAD_ASSERT(to != g->self);
    return to;
}

uint64_t gossip_next_ms(const struct gossip *g)
{
    return g->next_ms;
}

size_t gossip_states(const struct gossip *g, struct gossip_state *out, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < g->n && k < max; i++)
        if (g->nodes[i]->has_state)
            out[k++] = g->nodes[i]->st;
    return k;
}

const struct gossip_state *gossip_get(const struct gossip *g, uint32_t id)
{
    const struct gossip__node *x = gossip__find(g, id);
    return x != NULL && x->has_state ? &x->st : NULL;
}

/* A node's detector, at the first arrival of a node or of a new generation
 * of it. Phi over a handful of intervals flaps: the first states heard of
 * a node are often relayed and stale, the next, fresh one follows within
 * milliseconds, and a mean of a few tiny intervals convicts a healthy node
 * after a second of silence (in half of the unit test's simulated clusters
 * it did). So, as Cassandra's ArrivalWindow does, the window starts with
 * one interval of the round's length, which the real ones soon outweigh. */
static void gossip__phi_start(const struct gossip *g, struct phi *p, uint64_t now_ms)
{
    uint64_t iv = TRIAD_MIN(g->cfg.interval_ms, PHI_INTERVAL_MS_MAX);
    phi_init(p, g->cfg.interval_ms);
    phi_arrival(p, now_ms);
    p->intervals_ms[0] = iv;
    p->sum_ms = iv;
    p->n = 1;
    p->next = 1;
}

/* s, newer than what we hold for another node (or the first we hear). */
static void gossip__learn(struct gossip *g, struct gossip__node *x, const struct gossip_state *s,
                          uint64_t now_ms)
{
    TRIAD_ASSERT(x != g->me);
    TRIAD_ASSERT(x->id == s->id);
    if (!x->has_state) {
        gossip__phi_start(g, &x->phi, now_ms);
        gossip__copy(&x->st, s);
        x->has_state = true;
        g->epoch++;
        return;
    }
    if (!gossip__newer(s, &x->st))
        return;
    /* A new generation is a restart: the old incarnation's intervals say
     * nothing about the new one's, and hearing of it is its first
     * arrival. A higher version within a generation is a heartbeat. */
    if (s->generation > x->st.generation)
        gossip__phi_start(g, &x->phi, now_ms);
    else
        phi_arrival(&x->phi, now_ms);
    if (!gossip__same_place(s, &x->st))
        g->epoch++;
    gossip__copy(&x->st, s);
}

/* Do we hold a state newer than what s[0..n) says of its node, or one for
 * a node s does not mention? Then the sender should hear ours. */
static bool gossip__holds_newer(const struct gossip *g, const struct gossip_state *s, size_t n)
{
    for (size_t i = 0; i < g->n; i++) {
        const struct gossip__node *x = g->nodes[i];
        if (!x->has_state)
            continue;
        const struct gossip_state *sent = NULL;
        for (size_t k = 0; k < n; k++)
            if (s[k].id == x->id && gossip__state_ok(&s[k]) &&
                (sent == NULL || gossip__newer(&s[k], sent)))
                sent = &s[k];
        if (sent == NULL || gossip__newer(&x->st, sent))
            return true;
    }
    return false;
}

bool gossip_merge(struct gossip *g, uint32_t from, const struct gossip_state *s, size_t n,
                  uint64_t now_ms)
{
    TRIAD_ASSERT(n == 0 || s != NULL);
    for (size_t i = 0; i < n; i++) {
        const struct gossip_state *in = &s[i];
        if (!gossip__state_ok(in))
            continue;
        if (in->id == g->self) {
            /* Someone remembers a later us: we restarted without knowing
             * our last version. Jump past it, or our heartbeats would be
             * ignored as old until we counted up to it. Our own address
             * and status stay: only we say what they are. */
            if (gossip__newer(in, &g->me->st))
                gossip__self_past(g, in->generation, in->version);
            continue;
        }
        struct gossip__node *x = gossip__find(g, in->id);
        if (x == NULL && (x = gossip__insert(g, in->id)) == NULL)
            continue; /* the table is full: dropped */
        gossip__learn(g, x, in, now_ms);
    }
    TRIAD_DEBUG_ASSERT(gossip__check(g) == 0);
    return gossip__holds_newer(g, s, n);
}

double gossip_phi(const struct gossip *g, uint32_t id, uint64_t now_ms)
{
    const struct gossip__node *x = gossip__find(g, id);
    if (x == NULL || x == g->me || !x->has_state)
        return 0;
    return phi_value(&x->phi, now_ms);
}

bool gossip_alive(const struct gossip *g, uint32_t id, uint64_t now_ms)
{
    if (id == g->self)
        return true;
    const struct gossip__node *x = gossip__find(g, id);
    if (x == NULL || !x->has_state)
        return false; /* a seed is not alive until we hear from it */
    return phi_value(&x->phi, now_ms) < g->cfg.phi_convict;
}

void gossip_set_status(struct gossip *g, enum gossip_status st)
{
    TRIAD_ASSERT(st >= GOSSIP_JOINING);
    TRIAD_ASSERT(st <= GOSSIP_LEFT);
    if (g->me->st.status != (uint8_t)st) {
        g->me->st.status = (uint8_t)st;
        g->epoch++;
    }
    gossip__self_past(g, g->me->st.generation, g->me->st.version);
}

uint64_t gossip_epoch(const struct gossip *g)
{
    return g->epoch;
}

/* ---- wire codec ---- */

static void gossip__put_u16le(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static uint16_t gossip__get_u16le(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

void gossip_encode(const struct gossip_state *s, size_t n, struct tbuf *out)
{
    TRIAD_ASSERT(n <= UINT16_MAX);
    unsigned char hdr[GOSSIP_WIRE_HEADER_BYTES] = {GOSSIP_WIRE_VERSION};
    gossip__put_u16le(hdr + 1, (uint16_t)n);
    tbuf_append(out, hdr, sizeof(hdr));
    for (size_t i = 0; i < n; i++) {
        TRIAD_ASSERT(gossip__state_ok(&s[i])); /* what decode would refuse is never sent */
        size_t host_len = strlen(s[i].host);
        unsigned char b[GOSSIP_WIRE_STATE_FIXED_BYTES];
        tbuf_write_u32le(b, s[i].id);
        tbuf_write_u64le(b + 4, s[i].generation);
        tbuf_write_u64le(b + 12, s[i].version);
        b[20] = s[i].status;
        gossip__put_u16le(b + 21, s[i].peer_port);
        gossip__put_u16le(b + 23, s[i].client_port);
        b[25] = (unsigned char)host_len;
        tbuf_append(out, b, sizeof(b));
        tbuf_append(out, s[i].host, host_len);
    }
}

int gossip_decode(const void *p, size_t len, struct gossip_state *out, size_t max, size_t *n,
                  char *errmsg, size_t errlen)
{
    const unsigned char *b = p;
    *n = 0;
    if (len < GOSSIP_WIRE_HEADER_BYTES) {
        triad_errf(errmsg, errlen, "gossip: truncated header (%zu bytes)", len);
        return TRIAD_EPROTO;
    }
    if (b[0] != GOSSIP_WIRE_VERSION) {
        triad_errf(errmsg, errlen, "gossip: unknown version %u", b[0]);
        return TRIAD_EPROTO;
    }
    size_t count = gossip__get_u16le(b + 1);
    if (count > max) {
        triad_errf(errmsg, errlen, "gossip: %zu states, at most %zu", count, max);
        return TRIAD_EPROTO;
    }
    size_t off = GOSSIP_WIRE_HEADER_BYTES;
    for (size_t i = 0; i < count; i++) {
        if (len - off < GOSSIP_WIRE_STATE_FIXED_BYTES) {
            triad_errf(errmsg, errlen, "gossip: state %zu truncated", i);
            return TRIAD_EPROTO;
        }
        const unsigned char *c = b + off;
        struct gossip_state *s = &out[i];
        memset(s, 0, sizeof(*s));
        s->id = tbuf_read_u32le(c);
        s->generation = tbuf_read_u64le(c + 4);
        s->version = tbuf_read_u64le(c + 12);
        s->status = c[20];
        s->peer_port = gossip__get_u16le(c + 21);
        s->client_port = gossip__get_u16le(c + 23);
        size_t host_len = c[25];
        off += GOSSIP_WIRE_STATE_FIXED_BYTES;
        if (s->id == 0) {
            triad_errf(errmsg, errlen, "gossip: state %zu has id 0", i);
            return TRIAD_EPROTO;
        }
        if (s->status < GOSSIP_JOINING || s->status > GOSSIP_LEFT) {
            triad_errf(errmsg, errlen, "gossip: state %zu: bad status %u", i, s->status);
            return TRIAD_EPROTO;
        }
        if (len - off < host_len) {
            triad_errf(errmsg, errlen, "gossip: state %zu: host truncated", i);
            return TRIAD_EPROTO;
        }
        if (!triad_host_ok((const char *)b + off, host_len, GOSSIP_HOST_MAX)) {
            triad_errf(errmsg, errlen, "gossip: state %zu: bad host", i);
            return TRIAD_EPROTO;
        }
        memcpy(s->host, b + off, host_len);
        off += host_len;
        /* Quadratic, but count <= max and callers pass GOSSIP_NODES_MAX. */
        for (size_t k = 0; k < i; k++) {
            if (out[k].id == s->id) {
                triad_errf(errmsg, errlen, "gossip: node %u twice", s->id);
                return TRIAD_EPROTO;
            }
        }
    }
    if (off != len) {
        triad_errf(errmsg, errlen, "gossip: %zu trailing bytes", len - off);
        return TRIAD_EPROTO;
    }
    *n = count;
    return 0;
}
