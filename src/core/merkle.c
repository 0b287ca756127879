/* merkle.c - a Merkle tree over one range of the ring (see merkle.h).
 *
 * The tree is an implicit binary heap: node (level, index) is nodes[2^level
 * - 1 + index], leaves last. A leaf holds the sum of its items' mixed
 * hashes, so add and remove are O(1) there; the leaf's ancestors are only
 * marked dirty and rehashed when someone asks (anti-entropy runs far less
 * often than writes). Invariant: a dirty node's ancestors are all dirty, so
 * marking stops at the first dirty ancestor.
 *
 * Replicas compare these hashes, so the formulas below are a wire contract
 * (all integers little-endian):
 *
 *     mix(key_hash, item_hash)  = XXH3_64bits_withSeed(le64(key_hash) le64(item_hash),
 *                                                      16, MERKLE_MIX_SEED)
 *     leaf                      = sum of mix() of its items, mod 2^64
 *     inner(left, right)        = 0 if left == right == 0, else
 *                                 XXH3_64bits_withSeed(le64(left) le64(right), 16,
 *                                                      MERKLE_NODE_SEED), 1 if that is 0
 *     merkle_item_hash(key, d)  = XXH3_64bits_withSeed(le64(XXH3_64bits_withSeed(key,
 *                                                      MERKLE_KEY_SEED)) le64(d), 16,
 *                                                      MERKLE_ITEM_SEED)
 *
 * Mixing each item before the sum keeps structured item hashes from
 * cancelling: a non-empty leaf sums to 0 with odds 2^-64, and an inner
 * node is 0 exactly when its subtree is empty.
 */
#include "merkle.h"

#include <string.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/mem.h"

#define MERKLE_MIX_SEED UINT64_C(0x747269616d6d6978)  /* "triammix" */
#define MERKLE_NODE_SEED UINT64_C(0x747269616d6e6f64) /* "triamnod" */
#define MERKLE_KEY_SEED UINT64_C(0x747269616d6b6579)  /* "triamkey" */
#define MERKLE_ITEM_SEED UINT64_C(0x747269616d69746d) /* "triamitm" */

typedef unsigned __int128 merkle__u128;

struct merkle {
    uint64_t lo, hi;
    unsigned depth;
    uint64_t items;
    uint64_t *nodes; /* 2^(depth+1) - 1 hashes */
    uint8_t *dirty;  /* per inner node (2^depth - 1 of them) */
};

static void merkle__le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t merkle__hash2(uint64_t a, uint64_t b, uint64_t seed)
{
    unsigned char buf[16];
    merkle__le64(buf, a);
    merkle__le64(buf + 8, b);
    return XXH3_64bits_withSeed(buf, sizeof(buf), seed);
}

/* The width of (lo, hi]: 2^64 for the whole ring. */
static merkle__u128 merkle__width(const struct merkle *m)
{
    return m->lo == m->hi ? (merkle__u128)1 << 64 : (merkle__u128)(m->hi - m->lo);
}

static size_t merkle__slot(const struct merkle *m, unsigned level, uint32_t index)
{
    TRIAD_ASSERT(level <= m->depth);
    TRIAD_ASSERT(index < (UINT32_C(1) << level));
    return ((size_t)1 << level) - 1 + index;
}

struct merkle *merkle_new(uint64_t lo, uint64_t hi, unsigned depth)
{
    TRIAD_ASSERT(depth <= MERKLE_DEPTH_MAX);
    struct merkle *m = tcalloc(1, sizeof(*m));
    m->lo = lo;
    m->hi = hi;
    m->depth = depth;
    m->nodes = tcalloc(((size_t)2 << depth) - 1, sizeof(*m->nodes));
    m->dirty = tcalloc(((size_t)1 << depth) - 1, sizeof(*m->dirty)); /* depth 0: none */
    return m;
}

void merkle_free(struct merkle *m)
{
    if (m == NULL)
        return;
    tfree(m->nodes);
    tfree(m->dirty);
    tfree(m);
}

unsigned merkle_depth(const struct merkle *m)
{
    return m->depth;
}

uint32_t merkle_leaf_of(const struct merkle *m, uint64_t key_hash)
{
    uint64_t off = key_hash - m->lo - 1; /* 0 .. width-1 when in range */
    merkle__u128 width = merkle__width(m);

    TRIAD_ASSERT(off < width);
    uint32_t leaf = (uint32_t)(((merkle__u128)off << m->depth) / width);
    TRIAD_ASSERT(leaf < (UINT32_C(1) << m->depth));
    return leaf;
}

/* Leaf j holds offsets off with floor(off * 2^depth / width) == j, that is
 * ceil(j * width / 2^depth) <= off < ceil((j+1) * width / 2^depth); a node
 * of level L is the union of its leaves, so index i covers key hashes
 * (lo + ceil(i * width / 2^L), lo + ceil((i+1) * width / 2^L)]. When the
 * range is narrower than 2^depth some leaves hold no hash at all and come
 * out with lo == hi: there that means empty, not the whole ring. */
void merkle_node_bounds(const struct merkle *m, unsigned level, uint32_t index, uint64_t *lo,
                        uint64_t *hi)
{
    merkle__u128 width = merkle__width(m), round = ((merkle__u128)1 << level) - 1;

    (void)merkle__slot(m, level, index); /* bounds checks */
    *lo = m->lo + (uint64_t)(((merkle__u128)index * width + round) >> level);
    *hi = m->lo + (uint64_t)(((merkle__u128)(index + 1) * width + round) >> level);
}

/* Mark the ancestors of a changed leaf for rehashing. */
static void merkle__touch(struct merkle *m, uint32_t leaf)
{
    for (unsigned level = m->depth; level > 0; level--) {
        leaf >>= 1;
        size_t slot = merkle__slot(m, level - 1, leaf);
        if (m->dirty[slot])
            break; /* its ancestors are dirty already */
        m->dirty[slot] = 1;
    }
}

void merkle_add(struct merkle *m, uint64_t key_hash, uint64_t item_hash)
{
    uint32_t leaf = merkle_leaf_of(m, key_hash);
    m->nodes[merkle__slot(m, m->depth, leaf)] += merkle__hash2(key_hash, item_hash, MERKLE_MIX_SEED);
    m->items++;
    merkle__touch(m, leaf);
}

void merkle_remove(struct merkle *m, uint64_t key_hash, uint64_t item_hash)
{
    uint32_t leaf = merkle_leaf_of(m, key_hash);
    TRIAD_ASSERT(m->items > 0);
    m->nodes[merkle__slot(m, m->depth, leaf)] -= merkle__hash2(key_hash, item_hash, MERKLE_MIX_SEED);
    m->items--;
    merkle__touch(m, leaf);
}

void merkle_clear(struct merkle *m)
{
    memset(m->nodes, 0, (((size_t)2 << m->depth) - 1) * sizeof(*m->nodes));
    memset(m->dirty, 0, (((size_t)1 << m->depth) - 1) * sizeof(*m->dirty));
    m->items = 0;
}

uint64_t merkle_node(struct merkle *m, unsigned level, uint32_t index)
{
    size_t slot = merkle__slot(m, level, index);
    if (level == m->depth || !m->dirty[slot])
        return m->nodes[slot];

    /* Recursion is at most MERKLE_DEPTH_MAX deep. */
    uint64_t left = merkle_node(m, level + 1, 2 * index);
    uint64_t right = merkle_node(m, level + 1, 2 * index + 1);
    uint64_t h = 0;
    if (left != 0 || right != 0) {
        h = merkle__hash2(left, right, MERKLE_NODE_SEED);
        h = h != 0 ? h : 1; /* 0 is reserved for an empty subtree */
    }
    m->nodes[slot] = h;
    m->dirty[slot] = 0;
    return h;
}

uint64_t merkle_root(struct merkle *m)
{
    return merkle_node(m, 0, 0);
}

uint64_t merkle_items(const struct merkle *m)
{
    return m->items;
}

size_t merkle_diff_children(struct merkle *m, unsigned level, const uint32_t *idx, size_t n,
                            const uint64_t *theirs, uint32_t *out)
{
    size_t diff = 0;

    TRIAD_ASSERT(level < m->depth);
    for (size_t k = 0; k < n; k++) {
        TRIAD_ASSERT(idx[k] < (UINT32_C(1) << level));
        for (uint32_t c = 0; c < 2; c++) {
            uint32_t child = 2 * idx[k] + c;
            if (merkle_node(m, level + 1, child) != theirs[2 * k + c])
                out[diff++] = child;
        }
    }
    TRIAD_ASSERT(diff <= 2 * n);
    return diff;
}

uint64_t merkle_item_hash(const void *key, size_t len, uint64_t object_digest)
{
    return merkle__hash2(XXH3_64bits_withSeed(key, len, MERKLE_KEY_SEED), object_digest,
                         MERKLE_ITEM_SEED);
}
