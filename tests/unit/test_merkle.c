/* test_merkle.c - per-range Merkle trees: order independence, exact
 * top-down diffs, lazy rehashing, and leaf bounds over wrapping ranges. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "../../src/common/defs.h"
#include "../../src/core/merkle.h"
#include "test.h"

typedef unsigned __int128 u128;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* (lo, hi] wrapping, lo == hi the whole ring: ring_in_range's meaning,
 * restated so this test links merkle.c alone. */
static bool in_range(uint64_t lo, uint64_t hi, uint64_t h)
{
    if (lo == hi)
        return true;
    return lo < hi ? h > lo && h <= hi : h > lo || h <= hi;
}

static u128 range_width(uint64_t lo, uint64_t hi)
{
    return lo == hi ? (u128)1 << 64 : (u128)(uint64_t)(hi - lo);
}

/* A key hash uniformly inside (lo, hi]. */
static uint64_t point_in(uint64_t lo, uint64_t hi, uint64_t *s)
{
    u128 w = range_width(lo, hi);
    return lo + 1 + (uint64_t)(splitmix64(s) % w);
}

struct item {
    uint64_t key_hash, item_hash;
};

static bool trees_equal(struct merkle *a, struct merkle *b)
{
    unsigned depth = merkle_depth(a);
    for (unsigned level = 0; level <= depth; level++)
        for (uint32_t i = 0; i < (UINT32_C(1) << level); i++)
            if (merkle_node(a, level, i) != merkle_node(b, level, i))
                return false;
    return true;
}

/* Anti-entropy as two replicas run it: from the root down, asking for the
 * children of the nodes that differed. Returns the differing leaves. */
static size_t diff_top_down(struct merkle *mine, struct merkle *theirs, uint32_t *leaves)
{
    static uint32_t frontier[1 << MERKLE_DEPTH_MAX], next[1 << MERKLE_DEPTH_MAX];
    static uint64_t hashes[1 << MERKLE_DEPTH_MAX];
    unsigned depth = merkle_depth(mine);
    size_t n = 0;

    if (merkle_root(mine) == merkle_root(theirs))
        return 0;
    frontier[n++] = 0;
    for (unsigned level = 0; level < depth; level++) {
        for (size_t k = 0; k < n; k++) {
            hashes[2 * k] = merkle_node(theirs, level + 1, 2 * frontier[k]);
            hashes[2 * k + 1] = merkle_node(theirs, level + 1, 2 * frontier[k] + 1);
        }
        n = merkle_diff_children(mine, level, frontier, n, hashes, next);
        memcpy(frontier, next, n * sizeof(*next));
    }
    memcpy(leaves, frontier, n * sizeof(*leaves));
    return n;
}

TEST(merkle_trees_with_the_same_items_are_equal_whatever_the_order)
{
    enum { N = 600 };
    static struct item items[N];
    uint64_t s = 11, lo = UINT64_C(0x4000000000000000), hi = UINT64_C(0x9000000000000000);
    struct merkle *a = merkle_new(lo, hi, 7), *b = merkle_new(lo, hi, 7);

    for (int i = 0; i < N; i++)
        items[i] = (struct item){point_in(lo, hi, &s), splitmix64(&s)};
    for (int i = 0; i < N; i++)
        merkle_add(a, items[i].key_hash, items[i].item_hash);
    for (int i = N - 1; i >= 0; i -= 2)
        merkle_add(b, items[i].key_hash, items[i].item_hash);
    (void)merkle_root(b); /* rehash half-way: laziness must not change the result */
    for (int i = N - 2; i >= 0; i -= 2)
        merkle_add(b, items[i].key_hash, items[i].item_hash);

    CHECK(merkle_root(a) != 0);
    CHECK(merkle_root(a) == merkle_root(b));
    CHECK(trees_equal(a, b));
    CHECK_EQ_INT(merkle_items(a), N);
    CHECK_EQ_INT(merkle_items(b), N);
    merkle_free(a);
    merkle_free(b);
}

TEST(merkle_add_then_remove_returns_to_the_empty_tree)
{
    uint64_t s = 12;
    struct merkle *m = merkle_new(0, 0, 5), *empty = merkle_new(0, 0, 5);
    struct item items[100];

    CHECK(merkle_root(m) == 0);
    for (int i = 0; i < 100; i++) {
        items[i] = (struct item){splitmix64(&s), splitmix64(&s)};
        merkle_add(m, items[i].key_hash, items[i].item_hash);
    }
    CHECK(merkle_root(m) != 0);
    for (int i = 0; i < 100; i++)
        merkle_remove(m, items[i].key_hash, items[i].item_hash);
    CHECK(merkle_root(m) == 0);
    CHECK_EQ_INT(merkle_items(m), 0);
    CHECK(trees_equal(m, empty));

    /* clear forgets every item, including rehashing still owed */
    merkle_add(m, items[0].key_hash, items[0].item_hash);
    CHECK(merkle_root(m) != 0);
    merkle_add(m, items[1].key_hash, items[1].item_hash);
    merkle_clear(m);
    CHECK(merkle_root(m) == 0);
    CHECK_EQ_INT(merkle_items(m), 0);
    CHECK(trees_equal(m, empty));
    merkle_free(m);
    merkle_free(empty);
}

TEST(merkle_one_differing_item_changes_exactly_the_path_to_its_leaf)
{
    uint64_t s = 13, lo = UINT64_MAX - 1000000, hi = 5000000; /* wraps */
    struct merkle *a = merkle_new(lo, hi, 8), *b = merkle_new(lo, hi, 8);

    for (int i = 0; i < 300; i++) {
        uint64_t k = point_in(lo, hi, &s), v = splitmix64(&s);
        merkle_add(a, k, v);
        merkle_add(b, k, v);
    }
    /* b holds a newer version of one key */
    uint64_t key = point_in(lo, hi, &s), old = splitmix64(&s), newer = splitmix64(&s);
    merkle_add(a, key, old);
    merkle_add(b, key, old);
    merkle_remove(b, key, old);
    merkle_add(b, key, newer);
    CHECK_EQ_INT(merkle_items(a), merkle_items(b));

    uint32_t leaf = merkle_leaf_of(a, key);
    for (unsigned level = 0; level <= 8; level++) {
        uint32_t on_path = leaf >> (8 - level);
        for (uint32_t i = 0; i < (UINT32_C(1) << level); i++) {
            bool differs = merkle_node(a, level, i) != merkle_node(b, level, i);
            CHECK(differs == (i == on_path));
        }
    }
    uint32_t found[1 << 8];
    CHECK_EQ_INT(diff_top_down(a, b, found), 1);
    CHECK_EQ_INT(found[0], leaf);
    CHECK_EQ_INT(diff_top_down(b, a, found), 1);
    CHECK_EQ_INT(found[0], leaf);

    /* and once b's change reaches a, they agree again */
    merkle_remove(a, key, old);
    merkle_add(a, key, newer);
    CHECK(trees_equal(a, b));
    CHECK_EQ_INT(diff_top_down(a, b, found), 0);
    merkle_free(a);
    merkle_free(b);
}

TEST(merkle_top_down_diff_finds_exactly_the_leaves_that_differ)
{
    uint64_t s = 14;
    static uint32_t found[1 << 10];
    int bad = 0;

    for (int trial = 0; trial < 40; trial++) {
        uint64_t lo = splitmix64(&s), hi = splitmix64(&s);
        struct merkle *a = merkle_new(lo, hi, 10), *b = merkle_new(lo, hi, 10);
        bool expect[1 << 10] = {false};
        size_t expect_n = 0;

        for (int i = 0; i < 2000; i++) {
            uint64_t k = point_in(lo, hi, &s), v = splitmix64(&s);
            merkle_add(a, k, v);
            merkle_add(b, k, v);
        }
        (void)merkle_root(a); /* both sides have rehashed before the changes */
        (void)merkle_root(b);
        int k_diffs = 1 + (int)(splitmix64(&s) % 30);
        for (int d = 0; d < k_diffs; d++) {
            uint64_t k = point_in(lo, hi, &s), v = splitmix64(&s);
            switch (splitmix64(&s) % 3) {
            case 0: /* only a has it */
                merkle_add(a, k, v);
                break;
            case 1: /* only b has it */
                merkle_add(b, k, v);
                break;
            default: /* both, in different versions */
                merkle_add(a, k, v);
                merkle_add(b, k, v ^ 1);
            }
            uint32_t leaf = merkle_leaf_of(a, k);
            expect_n += !expect[leaf];
            expect[leaf] = true;
        }
        size_t n = diff_top_down(a, b, found);
        bad += n != expect_n;
        for (size_t i = 0; i < n; i++) {
            bad += !expect[found[i]];
            bad += i > 0 && found[i - 1] >= found[i]; /* in order, each once */
        }
        merkle_free(a);
        merkle_free(b);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(merkle_lazy_rehash_matches_a_tree_built_from_scratch)
{
    /* Random adds, removes and queries of random nodes in between (which
     * rehash parts of the tree), then compare every node with a tree that
     * got the surviving items in one go. */
    enum { N = 400 };
    static struct item items[N];
    static bool present[N];
    uint64_t s = 15, lo = 77, hi = 77 + (UINT64_C(1) << 40);
    struct merkle *m = merkle_new(lo, hi, 9), *fresh = merkle_new(lo, hi, 9);

    for (int i = 0; i < N; i++)
        items[i] = (struct item){point_in(lo, hi, &s), splitmix64(&s)};
    for (int step = 0; step < 5000; step++) {
        int i = (int)(splitmix64(&s) % N);
        if (present[i])
            merkle_remove(m, items[i].key_hash, items[i].item_hash);
        else
            merkle_add(m, items[i].key_hash, items[i].item_hash);
        present[i] = !present[i];
        unsigned level = (unsigned)(splitmix64(&s) % 10);
        (void)merkle_node(m, level, (uint32_t)(splitmix64(&s) % (UINT64_C(1) << level)));
    }
    uint64_t count = 0;
    for (int i = 0; i < N; i++)
        if (present[i]) {
            merkle_add(fresh, items[i].key_hash, items[i].item_hash);
            count++;
        }
    CHECK(count > 0);
    CHECK_EQ_INT(merkle_items(m), count);
    CHECK(trees_equal(m, fresh));
    merkle_free(m);
    merkle_free(fresh);
}

TEST(merkle_empty_subtrees_hash_to_zero_and_others_do_not)
{
    struct merkle *m = merkle_new(0, 1024, 4); /* 16 leaves of 64 hashes */
    merkle_add(m, 1, 42);                      /* leaf 0 */
    merkle_add(m, 1024, 43);                   /* leaf 15 */
    CHECK_EQ_INT(merkle_leaf_of(m, 1), 0);
    CHECK_EQ_INT(merkle_leaf_of(m, 1024), 15);
    for (unsigned level = 0; level <= 4; level++)
        for (uint32_t i = 0; i < (UINT32_C(1) << level); i++) {
            bool edge = i == 0 || i == (UINT32_C(1) << level) - 1;
            CHECK((merkle_node(m, level, i) != 0) == edge);
        }
    merkle_remove(m, 1, 42);
    merkle_remove(m, 1024, 43);
    CHECK(merkle_root(m) == 0);

    /* Item hashes are mixed before they are summed: two items whose raw
     * hashes cancel mod 2^64 still make a non-empty leaf. */
    merkle_add(m, 1, 5);
    merkle_add(m, 2, (uint64_t)0 - 5);
    CHECK(merkle_node(m, 4, 0) != 0);
    CHECK(merkle_root(m) != 0);
    merkle_free(m);
}

TEST(merkle_leaves_have_equal_widths_and_bounds_that_hold_their_hashes)
{
    /* width 16 * 1000: leaf j holds exactly the hashes lo + 1000j + 1 .. lo + 1000(j+1) */
    uint64_t lo = UINT64_MAX - 7999, hi = lo + 16000; /* wraps past zero */
    struct merkle *m = merkle_new(lo, hi, 4);
    for (uint32_t j = 0; j < 16; j++) {
        uint64_t first = lo + 1000 * (uint64_t)j + 1, last = lo + 1000 * (uint64_t)(j + 1);
        uint64_t blo, bhi;
        CHECK_EQ_INT(merkle_leaf_of(m, first), j);
        CHECK_EQ_INT(merkle_leaf_of(m, last), j);
        merkle_node_bounds(m, 4, j, &blo, &bhi);
        CHECK(blo == first - 1 && bhi == last);
    }
    merkle_free(m);
}

TEST(merkle_places_every_key_of_wrapping_and_whole_ranges_inside_its_leaf)
{
    uint64_t s = 16;
    const uint64_t ranges[][2] = {
        {UINT64_C(0xf000000000000000), UINT64_C(0x1000000000000000)}, /* wraps */
        {UINT64_MAX, 0},                                              /* wraps, one hash */
        {UINT64_MAX - 2, 3},                                          /* 6 hashes, 1024 leaves */
        {12345, 12345},                                               /* whole ring */
        {0, 0},
        {UINT64_MAX, UINT64_MAX},
        {5, UINT64_MAX},
    };
    int bad = 0;

    for (size_t r = 0; r < TRIAD_ARRAY_LEN(ranges); r++) {
        uint64_t lo = ranges[r][0], hi = ranges[r][1];
        struct merkle *m = merkle_new(lo, hi, 10);
        uint64_t blo, bhi;
        merkle_node_bounds(m, 0, 0, &blo, &bhi);
        bad += blo != lo || bhi != hi;
        for (int k = 0; k < 3000; k++) {
            /* random points, and the edges of the range */
            uint64_t h = k == 0 ? lo + 1 : k == 1 ? hi : point_in(lo, hi, &s);
            uint32_t leaf = merkle_leaf_of(m, h);
            bad += leaf >= 1024;
            for (unsigned level = 0; level <= 10; level++) {
                merkle_node_bounds(m, level, leaf >> (10 - level), &blo, &bhi);
                bad += !in_range(blo, bhi, h) || (blo == bhi && range_width(lo, hi) != (u128)1 << 64);
            }
            merkle_add(m, h, (uint64_t)k);
        }
        bad += merkle_leaf_of(m, lo + 1) != 0;
        /* hi is in the last leaf, unless the range is narrower than the
         * leaves are many: then hash i of w is in leaf floor(i * 1024 / w) */
        u128 w = range_width(lo, hi);
        bad += merkle_leaf_of(m, hi) != (w >= 1024 ? 1023 : (uint32_t)(((w - 1) << 10) / w));
        bad += merkle_items(m) != 3000;
        merkle_free(m);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(merkle_children_bounds_tile_their_parent)
{
    uint64_t s = 17;
    int bad = 0;

    for (int trial = 0; trial < 50; trial++) {
        uint64_t lo = splitmix64(&s), hi = trial % 5 == 0 ? lo + 1 + splitmix64(&s) % 3000
                                                          : splitmix64(&s);
        if (trial == 1)
            hi = lo; /* the whole ring */
        unsigned depth = (unsigned)(splitmix64(&s) % (MERKLE_DEPTH_MAX + 1));
        struct merkle *m = merkle_new(lo, hi, depth);
        u128 total = 0;
        for (unsigned level = 0; level < depth && level < 12; level++)
            for (uint32_t i = 0; i < (UINT32_C(1) << level); i++) {
                uint64_t plo, phi, l0, h0, l1, h1;
                merkle_node_bounds(m, level, i, &plo, &phi);
                merkle_node_bounds(m, level + 1, 2 * i, &l0, &h0);
                merkle_node_bounds(m, level + 1, 2 * i + 1, &l1, &h1);
                bad += l0 != plo || h0 != l1 || h1 != phi;
            }
        for (uint32_t j = 0; j < (UINT32_C(1) << depth); j++) {
            uint64_t llo, lhi;
            merkle_node_bounds(m, depth, j, &llo, &lhi);
            total += depth == 0 ? range_width(llo, lhi) : (u128)(uint64_t)(lhi - llo);
        }
        bad += total != range_width(lo, hi);
        merkle_free(m);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(merkle_counts_items_as_adds_minus_removes)
{
    struct merkle *m = merkle_new(100, 200, 3);
    CHECK_EQ_INT(merkle_items(m), 0);
    merkle_add(m, 150, 1);
    merkle_add(m, 150, 1); /* the same item twice counts twice */
    merkle_add(m, 200, 2);
    CHECK_EQ_INT(merkle_items(m), 3);
    merkle_remove(m, 150, 1);
    CHECK_EQ_INT(merkle_items(m), 2);
    uint64_t twice_minus_once = merkle_root(m);
    merkle_remove(m, 150, 1);
    merkle_add(m, 150, 1);
    CHECK(merkle_root(m) == twice_minus_once);
    merkle_clear(m);
    CHECK_EQ_INT(merkle_items(m), 0);
    CHECK_EQ_INT(merkle_depth(m), 3);
    merkle_free(m);
}

TEST(merkle_depth_zero_is_one_leaf_over_the_range)
{
    uint64_t lo = 1000, hi = 10, blo, bhi;
    struct merkle *a = merkle_new(lo, hi, 0), *b = merkle_new(lo, hi, 0);

    CHECK_EQ_INT(merkle_depth(a), 0);
    CHECK_EQ_INT(merkle_leaf_of(a, 1001), 0);
    CHECK_EQ_INT(merkle_leaf_of(a, 0), 0);
    CHECK_EQ_INT(merkle_leaf_of(a, 10), 0);
    merkle_node_bounds(a, 0, 0, &blo, &bhi);
    CHECK(blo == lo && bhi == hi);
    merkle_add(a, 5, 7);
    CHECK(merkle_root(a) != 0);
    CHECK(merkle_root(a) == merkle_node(a, 0, 0));
    CHECK(merkle_root(a) != merkle_root(b));
    merkle_add(b, 5, 8);
    CHECK(merkle_root(a) != merkle_root(b));
    merkle_remove(b, 5, 8);
    merkle_add(b, 5, 7);
    CHECK(merkle_root(a) == merkle_root(b));
    merkle_remove(a, 5, 7);
    CHECK(merkle_root(a) == 0);
    merkle_free(a);
    merkle_free(b);
}

TEST(merkle_item_hash_depends_on_key_and_digest)
{
    uint64_t h = merkle_item_hash("k1", 2, 100);
    CHECK(h == merkle_item_hash("k1", 2, 100));
    CHECK(h != merkle_item_hash("k1", 2, 101));
    CHECK(h != merkle_item_hash("k2", 2, 100));
    CHECK(h != merkle_item_hash("k1x", 2 + 1, 100));
    CHECK(merkle_item_hash("", 0, 0) != merkle_item_hash("", 0, 1));
}

TEST(merkle_deepest_tree_works_at_its_limit)
{
    uint64_t s = 18;
    struct merkle *a = merkle_new(0, 0, MERKLE_DEPTH_MAX), *b = merkle_new(0, 0, MERKLE_DEPTH_MAX);
    static uint32_t found[1 << MERKLE_DEPTH_MAX];
    for (int i = 0; i < 1000; i++) {
        uint64_t k = splitmix64(&s), v = splitmix64(&s);
        merkle_add(a, k, v);
        merkle_add(b, k, v);
    }
    merkle_add(b, UINT64_MAX, 1); /* the last leaf */
    CHECK_EQ_INT(diff_top_down(a, b, found), 1);
    CHECK_EQ_INT(found[0], (1u << MERKLE_DEPTH_MAX) - 1);
    CHECK_EQ_INT(merkle_leaf_of(a, 1), 0);
    merkle_free(a);
    merkle_free(b);
}

int main(void)
{
    RUN(merkle_trees_with_the_same_items_are_equal_whatever_the_order);
    RUN(merkle_add_then_remove_returns_to_the_empty_tree);
    RUN(merkle_one_differing_item_changes_exactly_the_path_to_its_leaf);
    RUN(merkle_top_down_diff_finds_exactly_the_leaves_that_differ);
    RUN(merkle_lazy_rehash_matches_a_tree_built_from_scratch);
    RUN(merkle_empty_subtrees_hash_to_zero_and_others_do_not);
    RUN(merkle_leaves_have_equal_widths_and_bounds_that_hold_their_hashes);
    RUN(merkle_places_every_key_of_wrapping_and_whole_ranges_inside_its_leaf);
    RUN(merkle_children_bounds_tile_their_parent);
    RUN(merkle_counts_items_as_adds_minus_removes);
    RUN(merkle_depth_zero_is_one_leaf_over_the_range);
    RUN(merkle_item_hash_depends_on_key_and_digest);
    RUN(merkle_deepest_tree_works_at_its_limit);
    return test_summary("merkle");
}
