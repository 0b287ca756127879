/* vclock.c - dotted version vectors (see vclock.h for the contract).
 *
 * Clock entries and siblings stay sorted, so every join, merge and
 * comparison is one walk over both sides, and the encodings come out
 * canonical without a sort.
 *
 * Object encoding, version 1 (all integers LEB128 varints, minimal):
 *
 *     u8 version = 1
 *     n_actors, then per entry: actor, counter     (actors strictly ascending)
 *     n_sibs, then per sibling: actor, counter, ts, node, u8 tombstone (0/1),
 *                               len, len bytes of value
 *                                                  (dots strictly ascending)
 *
 * Context string: "c1" then base64url without padding of the varints
 * n_actors, then per entry: actor, counter. The empty clock is "".
 */
#include "vclock.h"

#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* an XXH3_state_t on the stack */
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"

#define DVV_VERSION 1
#define DVV_VARINT_BYTES_MAX 10
#define DVV_CONTEXT_PREFIX "c1"

/* O(n) self-check, for tests and TRIAD_DEBUG builds. */
bool dvv__check(const struct dvv_obj *o);

/* ---- small helpers ---- */

static int dvv__dot_cmp(struct dvv_dot a, struct dvv_dot b)
{
    if (a.actor != b.actor)
        return a.actor < b.actor ? -1 : 1;
    if (a.counter != b.counter)
        return a.counter < b.counter ? -1 : 1;
    return 0;
}

/* Next capacity for an array that must hold n; the limits keep n far from
 * overflow, the assertion keeps it so. */
static uint32_t dvv__grow(uint32_t cap, uint32_t n)
{
    TRIAD_ASSERT(n <= UINT32_MAX / 2);
    cap = cap ? cap : 4;
    while (cap < n)
        cap *= 2;
    return cap;
}

static void dvv__clock_reserve(struct dvv_clock *c, uint32_t n)
{
    if (n <= c->cap)
        return;
    c->cap = dvv__grow(c->cap, n);
    c->e = trealloc(c->e, (size_t)c->cap * sizeof(*c->e));
}

static void dvv__sibs_reserve(struct dvv_obj *o, uint32_t n)
{
    if (n <= o->cap_sibs)
        return;
    o->cap_sibs = dvv__grow(o->cap_sibs, n);
    o->sibs = trealloc(o->sibs, (size_t)o->cap_sibs * sizeof(*o->sibs));
}

/* The first index whose actor is >= a. */
static uint32_t dvv__clock_lower(const struct dvv_clock *c, dvv_actor a)
{
    uint32_t lo = 0, hi = c->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->e[mid].actor < a)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Reads c[actor] for non-decreasing actors in amortized O(1): what makes
 * the walks over sorted siblings linear. */
struct dvv__cursor {
    const struct dvv_clock *c;
    uint32_t i;
};

static uint64_t dvv__cursor_get(struct dvv__cursor *k, dvv_actor a)
{
    while (k->i < k->c->n && k->c->e[k->i].actor < a)
        k->i++;
    return k->i < k->c->n && k->c->e[k->i].actor == a ? k->c->e[k->i].counter : 0;
}

/* |actors of a ∪ actors of b| */
static uint32_t dvv__union_n(const struct dvv_clock *a, const struct dvv_clock *b)
{
    uint32_t i = 0, j = 0, n = 0;
    while (i < a->n && j < b->n) {
        dvv_actor x = a->e[i].actor, y = b->e[j].actor;
        i += x <= y;
        j += y <= x;
        n++;
    }
    return n + (a->n - i) + (b->n - j);
}

static void dvv__sib_free(struct dvv_sib *s)
{
    tfree(s->value);
    s->value = NULL;
}

/* ---- clocks ---- */

void dvv_clock_free(struct dvv_clock *c)
{
    tfree(c->e);
    memset(c, 0, sizeof(*c));
}

int dvv_clock_copy(struct dvv_clock *dst, const struct dvv_clock *src)
{
    memset(dst, 0, sizeof(*dst));
    if (src->n == 0)
        return 0;
    dvv__clock_reserve(dst, src->n);
    memcpy(dst->e, src->e, (size_t)src->n * sizeof(*src->e));
    dst->n = src->n;
    return 0;
}

uint64_t dvv_clock_get(const struct dvv_clock *c, dvv_actor actor)
{
    uint32_t i = dvv__clock_lower(c, actor);
    return i < c->n && c->e[i].actor == actor ? c->e[i].counter : 0;
}

void dvv_clock_bump(struct dvv_clock *c, dvv_actor actor, uint64_t counter)
{
    TRIAD_ASSERT(actor != 0);
    if (counter == 0) /* max with 0 changes nothing: entries are >= 1 */
        return;
    uint32_t i = dvv__clock_lower(c, actor);
    if (i < c->n && c->e[i].actor == actor) {
        if (c->e[i].counter < counter)
            c->e[i].counter = counter;
        return;
    }
    dvv__clock_reserve(c, c->n + 1);
    memmove(&c->e[i + 1], &c->e[i], (size_t)(c->n - i) * sizeof(*c->e));
    c->e[i] = (struct dvv_dot){actor, counter};
    c->n++;
}

void dvv_clock_join(struct dvv_clock *dst, const struct dvv_clock *src)
{
    if (dst == src || src->n == 0)
        return;
    uint32_t n = dvv__union_n(dst, src);
    dvv__clock_reserve(dst, n);
    /* Merge from the back, in place: the write index never falls below
     * the read index of dst, so nothing unread is overwritten. */
    uint32_t i = dst->n, j = src->n, k = n;
    while (j > 0) {
        struct dvv_dot s = src->e[j - 1];
        if (i > 0 && dst->e[i - 1].actor > s.actor) {
            dst->e[--k] = dst->e[--i];
        } else if (i > 0 && dst->e[i - 1].actor == s.actor) {
            struct dvv_dot d = dst->e[--i];
            d.counter = TRIAD_MAX(d.counter, s.counter);
            dst->e[--k] = d;
            j--;
        } else {
            dst->e[--k] = s;
            j--;
        }
    }
    TRIAD_ASSERT(k == i);
    dst->n = n;
}

bool dvv_clock_covers(const struct dvv_clock *c, struct dvv_dot d)
{
    return d.counter <= dvv_clock_get(c, d.actor);
}

bool dvv_clock_descends(const struct dvv_clock *a, const struct dvv_clock *b)
{
    struct dvv__cursor k = {a, 0};
    for (uint32_t j = 0; j < b->n; j++)
        if (dvv__cursor_get(&k, b->e[j].actor) < b->e[j].counter)
            return false;
    return true;
}

bool dvv_clock_equal(const struct dvv_clock *a, const struct dvv_clock *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (dvv__dot_cmp(a->e[i], b->e[i]) != 0)
            return false;
    return true;
}

/* ---- objects ---- */

static bool dvv__clock_check(const struct dvv_clock *c)
{
    if (c->n > c->cap)
        return false;
    for (uint32_t i = 0; i < c->n; i++) {
        if (c->e[i].actor == 0 || c->e[i].counter == 0)
            return false;
        if (i > 0 && c->e[i - 1].actor >= c->e[i].actor)
            return false;
    }
    return true;
}

bool dvv__check(const struct dvv_obj *o)
{
    const struct dvv_clock *vv = &o->vv;
    if (!dvv__clock_check(vv) || o->n_sibs > o->cap_sibs)
        return false;
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sib *s = &o->sibs[i];
        if (s->dot.actor == 0 || s->dot.counter == 0 || !dvv_clock_covers(vv, s->dot))
            return false;
        if (i > 0 && dvv__dot_cmp(o->sibs[i - 1].dot, s->dot) >= 0)
            return false;
        if ((s->len == 0) != (s->value == NULL) || (s->tombstone && s->len != 0))
            return false;
    }
    return true;
}

void dvv_free(struct dvv_obj *o)
{
    for (uint32_t i = 0; i < o->n_sibs; i++)
        dvv__sib_free(&o->sibs[i]);
    tfree(o->sibs);
    dvv_clock_free(&o->vv);
    memset(o, 0, sizeof(*o));
}

static void dvv__sib_copy(struct dvv_sib *dst, const struct dvv_sib *src)
{
    *dst = *src;
    if (src->len > 0) {
        dst->value = tmalloc(src->len);
        memcpy(dst->value, src->value, src->len);
    }
}

int dvv_copy(struct dvv_obj *dst, const struct dvv_obj *src)
{
    memset(dst, 0, sizeof(*dst));
    dvv_clock_copy(&dst->vv, &src->vv);
    if (src->n_sibs > 0) {
        dvv__sibs_reserve(dst, src->n_sibs);
        for (uint32_t i = 0; i < src->n_sibs; i++)
            dvv__sib_copy(&dst->sibs[i], &src->sibs[i]);
        dst->n_sibs = src->n_sibs;
    }
    return 0;
}

int dvv_update(struct dvv_obj *o, const struct dvv_clock *ctx, dvv_actor actor, hlc_ts ts,
               uint32_t node, bool tombstone, const void *value, size_t len, struct dvv_dot *dot)
{
    TRIAD_ASSERT(actor != 0);
    TRIAD_ASSERT(len == 0 || value != NULL);
    TRIAD_ASSERT(!tombstone || len == 0); /* a DEL carries no value */
    TRIAD_DEBUG_ASSERT(dvv__check(o));
    TRIAD_DEBUG_ASSERT(dvv__clock_check(ctx));

    /* Every refusal comes before the first change: o stays as it was. A
     * value or a clock the decoder would refuse is never made here, so
     * whatever an object holds can be stored and sent. */
    if (len > DVV_VALUE_BYTES_MAX)
        return TRIAD_ELIMIT;
    uint64_t top = TRIAD_MAX(dvv_clock_get(&o->vv, actor), dvv_clock_get(ctx, actor));
    if (top == UINT64_MAX)
        return TRIAD_EOVERFLOW;
    uint32_t keep = 0;
    struct dvv__cursor k = {ctx, 0};
    for (uint32_t i = 0; i < o->n_sibs; i++)
        keep += o->sibs[i].dot.counter > dvv__cursor_get(&k, o->sibs[i].dot.actor);
    if (keep + 1 > DVV_SIBLINGS_MAX)
        return TRIAD_ELIMIT;
    uint32_t actors = dvv__union_n(&o->vv, ctx);
    actors += dvv_clock_get(&o->vv, actor) == 0 && dvv_clock_get(ctx, actor) == 0;
    if (actors > DVV_DECODE_ACTORS_MAX)
        return TRIAD_ELIMIT;

    /* Drop what the writer had seen (DVV §4: the write's context), keep
     * the rest in order. */
    uint32_t w = 0;
    k.i = 0;
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        struct dvv_sib *s = &o->sibs[i];
        if (s->dot.counter <= dvv__cursor_get(&k, s->dot.actor))
            dvv__sib_free(s);
        else
            o->sibs[w++] = *s;
    }
    TRIAD_ASSERT(w == keep);
    o->n_sibs = w;

    dvv_clock_join(&o->vv, ctx);
    struct dvv_dot d = {actor, top + 1};
    dvv_clock_bump(&o->vv, actor, d.counter);

    /* Every sibling of `actor` has a counter <= top (vv covers it), so the
     * new one goes after them: after every sibling with actor <= ours. */
    uint32_t at = o->n_sibs;
    while (at > 0 && o->sibs[at - 1].dot.actor > actor)
        at--;
    dvv__sibs_reserve(o, o->n_sibs + 1);
    memmove(&o->sibs[at + 1], &o->sibs[at], (size_t)(o->n_sibs - at) * sizeof(*o->sibs));
    struct dvv_sib *s = &o->sibs[at];
    *s = (struct dvv_sib){.dot = d, .ts = ts, .node = node, .tombstone = tombstone,
                          .len = (uint32_t)len, .value = NULL};
    if (len > 0) {
        s->value = tmalloc(len);
        memcpy(s->value, value, len);
    }
    o->n_sibs++;
    if (dot != NULL)
        *dot = d;
    TRIAD_DEBUG_ASSERT(dvv__check(o));
    return 0;
}

int dvv_merge(struct dvv_obj *dst, const struct dvv_obj *src)
{
    TRIAD_DEBUG_ASSERT(dvv__check(dst));
    TRIAD_DEBUG_ASSERT(dvv__check(src));
    if (dst == src)
        return 0;

    /* First count, so that a refusal leaves dst as it was. A sibling
     * survives if both sides hold it, or if the side without it has not
     * seen its dot (had it seen it, it dropped it: a write superseded it). */
    struct dvv__cursor in_src = {&src->vv, 0}, in_dst = {&dst->vv, 0};
    uint32_t i = 0, j = 0, n = 0;
    while (i < dst->n_sibs || j < src->n_sibs) {
        int c = i == dst->n_sibs   ? 1
                : j == src->n_sibs ? -1
                                   : dvv__dot_cmp(dst->sibs[i].dot, src->sibs[j].dot);
        if (c == 0) {
            n++, i++, j++;
        } else if (c < 0) {
            struct dvv_dot d = dst->sibs[i++].dot;
            n += d.counter > dvv__cursor_get(&in_src, d.actor);
        } else {
            struct dvv_dot d = src->sibs[j++].dot;
            n += d.counter > dvv__cursor_get(&in_dst, d.actor);
        }
    }
    if (n > DVV_DECODE_SIBLINGS_MAX || dvv__union_n(&dst->vv, &src->vv) > DVV_DECODE_ACTORS_MAX)
        return TRIAD_ELIMIT;

    /* Then build: dst's survivors move, src's are copied, dst's losers are
     * freed. A dot names one write, so when both hold it either copy will
     * do; dst's is kept. */
    struct dvv_sib *out = n ? tmalloc((size_t)n * sizeof(*out)) : NULL;
    uint32_t w = 0;
    in_src.i = in_dst.i = 0;
    i = j = 0;
    while (i < dst->n_sibs || j < src->n_sibs) {
        int c = i == dst->n_sibs   ? 1
                : j == src->n_sibs ? -1
                                   : dvv__dot_cmp(dst->sibs[i].dot, src->sibs[j].dot);
        if (c == 0) {
            TRIAD_DEBUG_ASSERT(dst->sibs[i].len == src->sibs[j].len);
            out[w++] = dst->sibs[i++];
            j++;
        } else if (c < 0) {
            struct dvv_sib *s = &dst->sibs[i++];
            if (s->dot.counter > dvv__cursor_get(&in_src, s->dot.actor))
                out[w++] = *s;
            else
                dvv__sib_free(s);
        } else {
            const struct dvv_sib *s = &src->sibs[j++];
            if (s->dot.counter > dvv__cursor_get(&in_dst, s->dot.actor))
                dvv__sib_copy(&out[w++], s);
        }
    }
    TRIAD_ASSERT(w == n);
    tfree(dst->sibs);
    dst->sibs = out;
    dst->n_sibs = dst->cap_sibs = n;
    dvv_clock_join(&dst->vv, &src->vv);
    TRIAD_DEBUG_ASSERT(dvv__check(dst));
    return 0;
}

bool dvv_equal(const struct dvv_obj *a, const struct dvv_obj *b)
{
    if (a->n_sibs != b->n_sibs || !dvv_clock_equal(&a->vv, &b->vv))
        return false;
    for (uint32_t i = 0; i < a->n_sibs; i++)
        if (dvv__dot_cmp(a->sibs[i].dot, b->sibs[i].dot) != 0)
            return false;
    return true;
}

bool dvv_covers(const struct dvv_obj *o, struct dvv_dot d)
{
    return dvv_clock_covers(&o->vv, d);
}

/* (ts, node, dot.actor, dot.counter): a total order, so every replica
 * holding the same siblings answers with the same one. */
static bool dvv__sib_beats(const struct dvv_sib *a, const struct dvv_sib *b)
{
    if (a->ts != b->ts)
        return a->ts > b->ts;
    if (a->node != b->node)
        return a->node > b->node;
    return dvv__dot_cmp(a->dot, b->dot) > 0;
}

const struct dvv_sib *dvv_winner(const struct dvv_obj *o)
{
    const struct dvv_sib *best = NULL;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (best == NULL || dvv__sib_beats(&o->sibs[i], best))
            best = &o->sibs[i];
    return best;
}

bool dvv_deleted(const struct dvv_obj *o)
{
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (!o->sibs[i].tombstone)
            return false;
    return true;
}

hlc_ts dvv_max_ts(const struct dvv_obj *o)
{
    hlc_ts m = 0;
    for (uint32_t i = 0; i < o->n_sibs; i++)
        m = TRIAD_MAX(m, o->sibs[i].ts);
    return m;
}

size_t dvv_mem(const struct dvv_obj *o)
{
    /* The allocator's usable sizes, as used_memory counts them (mem.h). */
    size_t n = 0;
    if (o->vv.e != NULL)
        n += tmalloc_size(o->vv.e);
    if (o->sibs != NULL)
        n += tmalloc_size(o->sibs);
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (o->sibs[i].value != NULL)
            n += tmalloc_size(o->sibs[i].value);
    return n;
}

/* ---- encoding ---- */

static size_t dvv__varint_put(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

/* Where encoded bytes go: a buffer (dvv_encode) or a hash (dvv_digest),
 * so a digest never copies the values. */
struct dvv__sink {
    struct tbuf *out;
    XXH3_state_t *xxh;
};

static void dvv__emit(struct dvv__sink *k, const void *p, size_t n)
{
    if (k->out != NULL)
        tbuf_append(k->out, p, n);
    else
        XXH3_64bits_update(k->xxh, p, n);
}

static void dvv__encode_to(const struct dvv_obj *o, struct dvv__sink *k)
{
    unsigned char b[5 * DVV_VARINT_BYTES_MAX + 2];
    size_t n = 0;

    TRIAD_DEBUG_ASSERT(dvv__check(o));
    b[n++] = DVV_VERSION;
    n += dvv__varint_put(b + n, o->vv.n);
    dvv__emit(k, b, n);
    for (uint32_t i = 0; i < o->vv.n; i++) {
        n = dvv__varint_put(b, o->vv.e[i].actor);
        n += dvv__varint_put(b + n, o->vv.e[i].counter);
        dvv__emit(k, b, n);
    }
    n = dvv__varint_put(b, o->n_sibs);
    dvv__emit(k, b, n);
    for (uint32_t i = 0; i < o->n_sibs; i++) {
        const struct dvv_sib *s = &o->sibs[i];
        n = dvv__varint_put(b, s->dot.actor);
        n += dvv__varint_put(b + n, s->dot.counter);
        n += dvv__varint_put(b + n, s->ts);
        n += dvv__varint_put(b + n, s->node);
        b[n++] = s->tombstone ? 1 : 0;
        n += dvv__varint_put(b + n, s->len);
        TRIAD_ASSERT(n <= sizeof(b));
        dvv__emit(k, b, n);
        if (s->len > 0)
            dvv__emit(k, s->value, s->len);
    }
}

void dvv_encode(const struct dvv_obj *o, struct tbuf *out)
{
    struct dvv__sink k = {out, NULL};
    dvv__encode_to(o, &k);
}

uint64_t dvv_digest(const struct dvv_obj *o)
{
    /* Streaming XXH3 gives the same hash as XXH3_64bits over the bytes. */
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    struct dvv__sink k = {NULL, &st};
    dvv__encode_to(o, &k);
    return XXH3_64bits_digest(&st);
}

/* ---- decoding ---- */

struct dvv__rd {
    const unsigned char *p;
    size_t n, off;
    const char *what; /* "object" or "context", first in every errmsg */
    char *errmsg;
    size_t errlen;
};

/* A minimal LEB128 varint of at most 64 bits: anything else would give a
 * second encoding of the same object. */
static int dvv__rd_varint(struct dvv__rd *r, uint64_t *out, const char *field)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < DVV_VARINT_BYTES_MAX; i++) {
        if (r->off >= r->n) {
            triad_errf(r->errmsg, r->errlen, "%s: truncated in %s", r->what, field);
            return TRIAD_EPROTO;
        }
        unsigned char b = r->p[r->off++];
        if (i == DVV_VARINT_BYTES_MAX - 1 && b > 1) {
            triad_errf(r->errmsg, r->errlen, "%s: %s does not fit in 64 bits", r->what, field);
            return TRIAD_EPROTO;
        }
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) {
            if (b == 0 && i > 0) {
                triad_errf(r->errmsg, r->errlen, "%s: non-minimal varint in %s", r->what, field);
                return TRIAD_EPROTO;
            }
            *out = v;
            return 0;
        }
    }
    TRIAD_ASSERT(0); /* the 10th byte is 0 or 1: the loop returned */
    return TRIAD_EPROTO;
}

/* n_actors then the entries of a clock, into the empty c. */
static int dvv__rd_clock(struct dvv__rd *r, struct dvv_clock *c)
{
    uint64_t n, actor, counter;
    int rc = dvv__rd_varint(r, &n, "actor count");
    if (rc != 0)
        return rc;
    if (n > DVV_DECODE_ACTORS_MAX) {
        triad_errf(r->errmsg, r->errlen, "%s: %llu actors, more than %d", r->what,
                   (unsigned long long)n, DVV_DECODE_ACTORS_MAX);
        return TRIAD_EPROTO;
    }
    if (n > 0)
        dvv__clock_reserve(c, (uint32_t)n);
    for (uint64_t i = 0; i < n; i++) {
        if ((rc = dvv__rd_varint(r, &actor, "clock actor")) != 0 ||
            (rc = dvv__rd_varint(r, &counter, "clock counter")) != 0)
            return rc;
        if (actor == 0 || counter == 0) {
            triad_errf(r->errmsg, r->errlen, "%s: clock entry %llu has a zero %s", r->what,
                       (unsigned long long)i, actor == 0 ? "actor" : "counter");
            return TRIAD_EPROTO;
        }
        if (c->n > 0 && c->e[c->n - 1].actor >= actor) {
            triad_errf(r->errmsg, r->errlen, "%s: clock actors not strictly ascending at %llu",
                       r->what, (unsigned long long)i);
            return TRIAD_EPROTO;
        }
        c->e[c->n++] = (struct dvv_dot){actor, counter};
    }
    return 0;
}

static int dvv__rd_sib(struct dvv__rd *r, struct dvv_obj *o, struct dvv__cursor *vv)
{
    uint64_t actor, counter, ts, node, len;
    int rc;
    if ((rc = dvv__rd_varint(r, &actor, "sibling actor")) != 0 ||
        (rc = dvv__rd_varint(r, &counter, "sibling counter")) != 0 ||
        (rc = dvv__rd_varint(r, &ts, "sibling timestamp")) != 0 ||
        (rc = dvv__rd_varint(r, &node, "sibling node")) != 0)
        return rc;
    uint32_t i = o->n_sibs;
    struct dvv_dot d = {actor, counter};
    if (actor == 0 || counter == 0) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling %u has a zero %s", r->what, i,
                   actor == 0 ? "actor" : "counter");
        return TRIAD_EPROTO;
    }
    if (i > 0 && dvv__dot_cmp(o->sibs[i - 1].dot, d) >= 0) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling dots not strictly ascending at %u",
                   r->what, i);
        return TRIAD_EPROTO;
    }
    if (counter > dvv__cursor_get(vv, actor)) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling %u's dot is not covered by the clock",
                   r->what, i);
        return TRIAD_EPROTO;
    }
    if (node > UINT32_MAX) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling %u's node id does not fit in 32 bits",
                   r->what, i);
        return TRIAD_EPROTO;
    }
    if (r->off >= r->n) {
        triad_errf(r->errmsg, r->errlen, "%s: truncated in sibling flags", r->what);
        return TRIAD_EPROTO;
    }
    unsigned char flag = r->p[r->off++];
    if (flag > 1) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling %u has tombstone flag %u (not 0 or 1)",
                   r->what, i, flag);
        return TRIAD_EPROTO;
    }
    if ((rc = dvv__rd_varint(r, &len, "value length")) != 0)
        return rc;
    if (len > DVV_VALUE_BYTES_MAX) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling %u's value of %llu bytes is over the limit",
                   r->what, i, (unsigned long long)len);
        return TRIAD_EPROTO;
    }
    if (flag == 1 && len != 0) {
        triad_errf(r->errmsg, r->errlen, "%s: sibling %u is a tombstone with a value", r->what, i);
        return TRIAD_EPROTO;
    }
    if (len > r->n - r->off) {
        triad_errf(r->errmsg, r->errlen, "%s: truncated in sibling %u's value", r->what, i);
        return TRIAD_EPROTO;
    }
    struct dvv_sib *s = &o->sibs[o->n_sibs++];
    *s = (struct dvv_sib){.dot = d, .ts = ts, .node = (uint32_t)node, .tombstone = flag == 1,
                          .len = (uint32_t)len, .value = NULL};
    if (len > 0) {
        s->value = tmalloc(len);
        memcpy(s->value, r->p + r->off, len);
        r->off += len;
    }
    return 0;
}

int dvv_decode(struct dvv_obj *o, const void *p, size_t n, char *errmsg, size_t errlen)
{
    struct dvv__rd r = {p, n, 0, "object", errmsg, errlen};
    uint64_t n_sibs;
    int rc;

    memset(o, 0, sizeof(*o));
    if (n == 0) {
        triad_errf(errmsg, errlen, "object: empty");
        return TRIAD_EPROTO;
    }
    if (r.p[0] != DVV_VERSION) {
        triad_errf(errmsg, errlen, "object: unknown version %u", r.p[0]);
        return TRIAD_EPROTO;
    }
    r.off = 1;
    if ((rc = dvv__rd_clock(&r, &o->vv)) != 0)
        goto err_free;
    if ((rc = dvv__rd_varint(&r, &n_sibs, "sibling count")) != 0)
        goto err_free;
    if (n_sibs > DVV_DECODE_SIBLINGS_MAX) {
        triad_errf(errmsg, errlen, "object: %llu siblings, more than %d",
                   (unsigned long long)n_sibs, DVV_DECODE_SIBLINGS_MAX);
        rc = TRIAD_EPROTO;
        goto err_free;
    }
    if (n_sibs > 0)
        dvv__sibs_reserve(o, (uint32_t)n_sibs);
    struct dvv__cursor vv = {&o->vv, 0};
    while (o->n_sibs < n_sibs)
        if ((rc = dvv__rd_sib(&r, o, &vv)) != 0)
            goto err_free;
    if (r.off != n) {
        triad_errf(errmsg, errlen, "object: %zu trailing bytes", n - r.off);
        rc = TRIAD_EPROTO;
        goto err_free;
    }
    TRIAD_DEBUG_ASSERT(dvv__check(o));
    return 0;

err_free:
    dvv_free(o);
    return rc;
}

/* ---- the client's context string ---- */

static const char dvv__b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int dvv__b64_val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

void dvv_context_encode(const struct dvv_clock *c, struct tbuf *out)
{
    if (c->n == 0)
        return; /* the empty clock is the empty string */
    struct tbuf raw = {0};
    unsigned char b[2 * DVV_VARINT_BYTES_MAX];
    tbuf_append(&raw, b, dvv__varint_put(b, c->n));
    for (uint32_t i = 0; i < c->n; i++) {
        TRIAD_ASSERT(c->e[i].actor != 0 && c->e[i].counter != 0);
        TRIAD_ASSERT(i == 0 || c->e[i - 1].actor < c->e[i].actor);
        size_t n = dvv__varint_put(b, c->e[i].actor);
        n += dvv__varint_put(b + n, c->e[i].counter);
        tbuf_append(&raw, b, n);
    }
    const unsigned char *p = (const unsigned char *)raw.data;
    tbuf_reserve(out, 2 + (raw.len * 4 + 2) / 3);
    tbuf_appends(out, DVV_CONTEXT_PREFIX);
    size_t i = 0;
    for (; i + 3 <= raw.len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        tbuf_appendc(out, dvv__b64[v >> 18]);
        tbuf_appendc(out, dvv__b64[(v >> 12) & 63]);
        tbuf_appendc(out, dvv__b64[(v >> 6) & 63]);
        tbuf_appendc(out, dvv__b64[v & 63]);
    }
    if (raw.len - i == 1) {
        tbuf_appendc(out, dvv__b64[p[i] >> 2]);
        tbuf_appendc(out, dvv__b64[(p[i] & 3) << 4]);
    } else if (raw.len - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        tbuf_appendc(out, dvv__b64[v >> 10]);
        tbuf_appendc(out, dvv__b64[(v >> 4) & 63]);
        tbuf_appendc(out, dvv__b64[(v & 15) << 2]);
    }
    tbuf_free(&raw);
}

int dvv_context_decode(struct dvv_clock *c, const char *p, size_t n, char *errmsg, size_t errlen)
{
    size_t plen = sizeof(DVV_CONTEXT_PREFIX) - 1;
    int rc;

    memset(c, 0, sizeof(*c));
    if (n == 0)
        return 0; /* a blind write */
    if (n > DVV_CONTEXT_BYTES_MAX) {
        triad_errf(errmsg, errlen, "context: %zu bytes, more than %d", n, DVV_CONTEXT_BYTES_MAX);
        return TRIAD_EPROTO;
    }
    if (n < plen || memcmp(p, DVV_CONTEXT_PREFIX, plen) != 0) {
        triad_errf(errmsg, errlen, "context: bad prefix (not \"" DVV_CONTEXT_PREFIX "\")");
        return TRIAD_EPROTO;
    }
    p += plen;
    n -= plen;
    if (n == 0) {
        triad_errf(errmsg, errlen, "context: non-canonical (the empty clock is \"\")");
        return TRIAD_EPROTO;
    }
    if (n % 4 == 1) {
        triad_errf(errmsg, errlen, "context: bad length");
        return TRIAD_EPROTO;
    }

    /* base64url without padding; the unused low bits of the last
     * character must be zero, or two strings would name one clock. */
    unsigned char *raw = tmalloc(n / 4 * 3 + 2);
    size_t len = 0;
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = dvv__b64_val(p[i]);
        if (v < 0) {
            triad_errf(errmsg, errlen, "context: bad character at offset %zu", i + plen);
            rc = TRIAD_EPROTO;
            goto err_free_raw;
        }
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            raw[len++] = (unsigned char)(acc >> bits);
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) {
        triad_errf(errmsg, errlen, "context: non-canonical (stray bits in the last character)");
        rc = TRIAD_EPROTO;
        goto err_free_raw;
    }

    struct dvv__rd r = {raw, len, 0, "context", errmsg, errlen};
    if ((rc = dvv__rd_clock(&r, c)) != 0)
        goto err_free_clock;
    if (c->n == 0) {
        triad_errf(errmsg, errlen, "context: non-canonical (the empty clock is \"\")");
        rc = TRIAD_EPROTO;
        goto err_free_clock;
    }
    if (r.off != len) {
        triad_errf(errmsg, errlen, "context: %zu trailing bytes", len - r.off);
        rc = TRIAD_EPROTO;
        goto err_free_clock;
    }
    tfree(raw);
    return 0;

err_free_clock:
    dvv_clock_free(c);
err_free_raw:
    tfree(raw);
    return rc;
}
