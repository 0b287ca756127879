/* ring.c - leaderless mode's consistent-hashing ring (see ring.h).
 *
 * Dynamo §4.2: every node owns `vnodes` tokens; a key's preference order
 * is the distinct owners met walking clockwise from its hash. The tokens
 * live in one array sorted by (token, id) and rebuilt on every membership
 * change: changes are rare, lookups are a binary search.
 *
 * Wire contract (every node must compute the same ring, so none of this
 * may change without a cluster-wide migration):
 *
 *     token(id, j) = XXH3_64bits_withSeed(le32(j), 4,
 *                                         RING_TOKEN_SEED ^ (id * RING_ID_MUL))
 *     ring_hash(key) = XXH3_64bits_withSeed(key, len, RING_KEY_SEED)
 *
 * with le32(j) the 4 bytes of j little-endian, j = 0..vnodes-1, and the
 * product taken mod 2^64. Multiplying the id by an odd constant spreads
 * small consecutive ids over all 64 bits of the seed.
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/mem.h"

#define RING_TOKEN_SEED UINT64_C(0x7472696164726e67) /* "triadrng" */
#define RING_ID_MUL UINT64_C(0x9e3779b97f4a7c15)     /* 2^64 / golden ratio, odd */
#define RING_KEY_SEED UINT64_C(0x74726961646b6579)   /* "triadkey" */

_Static_assert(RING_NODES_MAX <= 64, "ring walks track the members met in a uint64_t");

struct ring__tok {
    uint64_t token;
    uint32_t id;
    uint32_t member; /* index into members[]: a bit of the walk's seen mask */
};

struct ring {
    uint32_t vnodes;
    uint32_t members[RING_NODES_MAX]; /* ascending */
    size_t members_count;
    struct ring__tok *toks; /* members_count * vnodes, sorted by (token, id) */
    size_t toks_count;
};

static uint64_t ring__token(uint32_t id, uint32_t j)
{
    unsigned char le[4] = {(unsigned char)j, (unsigned char)(j >> 8), (unsigned char)(j >> 16),
                           (unsigned char)(j >> 24)};
    return XXH3_64bits_withSeed(le, sizeof(le), RING_TOKEN_SEED ^ ((uint64_t)id * RING_ID_MUL));
}

static int ring__tok_cmp(const void *a, const void *b)
{
    const struct ring__tok *x = a, *y = b;
    if (x->token != y->token)
        return x->token < y->token ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* The index of id in members[], or members_count if absent. */
static size_t ring__member_index(const struct ring *r, uint32_t id)
{
    size_t lo = 0, hi = r->members_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->members[mid] < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < r->members_count && r->members[lo] == id ? lo : r->members_count;
}

/* After members[] changed: sort the tokens and renumber their members. */
static void ring__rebuild(struct ring *r)
{
    TRIAD_ASSERT(r->toks_count == r->members_count * r->vnodes);
    qsort(r->toks, r->toks_count, sizeof(*r->toks), ring__tok_cmp);
    for (size_t i = 0; i < r->toks_count; i++) {
        size_t m = ring__member_index(r, r->toks[i].id);
        TRIAD_ASSERT(m < r->members_count);
        r->toks[i].member = (uint32_t)m;
    }
}

struct ring *ring_new(uint32_t vnodes)
{
    if (vnodes < 1 || vnodes > RING_VNODES_MAX)
        return NULL;
    struct ring *r = tcalloc(1, sizeof(*r));
    r->vnodes = vnodes;
    return r;
}

void ring_free(struct ring *r)
{
    if (r == NULL)
        return;
    tfree(r->toks);
    tfree(r);
}

int ring_add(struct ring *r, uint32_t id)
{
    if (id == 0 || ring_has(r, id))
        return TRIAD_EINVAL;
    if (r->members_count == RING_NODES_MAX)
        return TRIAD_ELIMIT;

    size_t at;
    for (at = 0; at < r->members_count && r->members[at] < id; at++)
        ;
    memmove(&r->members[at + 1], &r->members[at], (r->members_count - at) * sizeof(r->members[0]));
    r->members[at] = id;
    r->members_count++;

    r->toks = trealloc(r->toks, (r->toks_count + r->vnodes) * sizeof(*r->toks));
    for (uint32_t j = 0; j < r->vnodes; j++)
        r->toks[r->toks_count++] = (struct ring__tok){.token = ring__token(id, j), .id = id};
    ring__rebuild(r);
    return 0;
}

int ring_remove(struct ring *r, uint32_t id)
{
    size_t at = ring__member_index(r, id);
    if (at == r->members_count)
        return TRIAD_ENOTFOUND;
    memmove(&r->members[at], &r->members[at + 1],
            (r->members_count - at - 1) * sizeof(r->members[0]));
    r->members_count--;

    /* Filtering keeps the others' order: only the member numbers change. */
    size_t kept = 0;
    for (size_t i = 0; i < r->toks_count; i++)
        if (r->toks[i].id != id)
            r->toks[kept++] = r->toks[i];
    TRIAD_ASSERT(kept + r->vnodes == r->toks_count);
    r->toks_count = kept;
    ring__rebuild(r);
    return 0;
}

bool ring_has(const struct ring *r, uint32_t id)
{
    return ring__member_index(r, id) < r->members_count;
}

size_t ring_members(const struct ring *r, uint32_t *out, size_t max)
{
    size_t n = TRIAD_MIN(max, r->members_count);
    if (n > 0)
        memcpy(out, r->members, n * sizeof(*out));
    return n;
}

uint32_t ring_vnodes(const struct ring *r)
{
    return r->vnodes;
}

uint64_t ring_hash(const void *key, size_t len)
{
    return XXH3_64bits_withSeed(key, len, RING_KEY_SEED);
}

/* The first token >= h; toks_count when h is above them all. */
static size_t ring__lower_bound(const struct ring *r, uint64_t h)
{
    size_t lo = 0, hi = r->toks_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->toks[mid].token < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The distinct owners met walking clockwise from token index i. */
static size_t ring__walk_from(const struct ring *r, size_t i, uint32_t *out, size_t max)
{
    size_t want = TRIAD_MIN(max, r->members_count), n = 0;
    uint64_t seen = 0;

    TRIAD_ASSERT(want == 0 || i < r->toks_count);
    for (size_t s = 0; s < r->toks_count && n < want; s++) {
        const struct ring__tok *t = &r->toks[(i + s) % r->toks_count];
        uint64_t bit = UINT64_C(1) << t->member;
        if (seen & bit)
            continue;
        seen |= bit;
        out[n++] = t->id;
    }
    TRIAD_ASSERT(n == want); /* every member owns at least one token */
    return n;
}

size_t ring_walk(const struct ring *r, uint64_t h, uint32_t *out, size_t max)
{
    if (r->toks_count == 0)
        return 0;
    return ring__walk_from(r, ring__lower_bound(r, h) % r->toks_count, out, max);
}

size_t ring_ranges(const struct ring *r)
{
    return r->toks_count;
}

size_t ring_range_of(const struct ring *r, uint64_t h)
{
    TRIAD_ASSERT(r->toks_count > 0);
    return ring__lower_bound(r, h) % r->toks_count; /* above the last token: range 0 */
}

void ring_range_bounds(const struct ring *r, size_t i, uint64_t *lo, uint64_t *hi)
{
    TRIAD_ASSERT(i < r->toks_count);
    *hi = r->toks[i].token;
    *lo = r->toks[(i + r->toks_count - 1) % r->toks_count].token;
}

/* Walking from the index rather than from hi differs only for a range left
 * empty by two colliding tokens (lo == hi with more than one token). */
size_t ring_range_walk(const struct ring *r, size_t i, uint32_t *out, size_t max)
{
    TRIAD_ASSERT(i < r->toks_count);
    return ring__walk_from(r, i, out, max);
}

bool ring_in_range(uint64_t lo, uint64_t hi, uint64_t h)
{
    /* Offsets from lo, mod 2^64: the range is offsets 1..hi-lo. */
    return lo == hi || h - lo - 1 < hi - lo;
}

uint32_t ring_share_ppm(const struct ring *r, uint32_t id, size_t n)
{
    uint32_t walk[RING_NODES_MAX];
    unsigned __int128 owned = 0; /* up to 2^64: the whole ring */

    if (!ring_has(r, id) || n == 0)
        return 0;
    for (size_t i = 0; i < r->toks_count; i++) {
        size_t got = ring__walk_from(r, i, walk, TRIAD_MIN(n, RING_NODES_MAX));
        size_t k = 0;
        while (k < got && walk[k] != id)
            k++;
        if (k == got)
            continue;
        uint64_t lo, hi;
        ring_range_bounds(r, i, &lo, &hi);
        owned += r->toks_count == 1 ? (unsigned __int128)1 << 64 : (unsigned __int128)(hi - lo);
    }
    TRIAD_ASSERT(owned <= (unsigned __int128)1 << 64);
    /* Rounded to nearest: owning the whole ring is exactly 1,000,000. */
    return (uint32_t)((owned * 1000000u + ((unsigned __int128)1 << 63)) >> 64);
}
