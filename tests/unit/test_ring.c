/* test_ring.c - the consistent-hashing ring: determinism, preference
 * lists, their stability under membership changes, balance and ranges. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#include "../../src/common/defs.h"
#include "../../src/core/ring.h"
#include "test.h"

typedef unsigned __int128 u128;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static void shuffle(uint32_t *v, size_t n, uint64_t *s)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix64(s) % i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}

/* The documented token formula (ring.c's header comment), recomputed here
 * so that the code and the wire contract cannot drift apart silently. */
static uint64_t token_of(uint32_t id, uint32_t j)
{
    unsigned char le[4] = {(unsigned char)j, (unsigned char)(j >> 8), (unsigned char)(j >> 16),
                           (unsigned char)(j >> 24)};
    uint64_t seed = UINT64_C(0x7472696164726e67) ^ ((uint64_t)id * UINT64_C(0x9e3779b97f4a7c15));
    return XXH3_64bits_withSeed(le, 4, seed);
}

/* Copies walk a minus every occurrence of id into out; returns its length. */
static size_t without(const uint32_t *a, size_t n, uint32_t id, uint32_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (a[i] != id)
            out[k++] = a[i];
    return k;
}

static bool same_walk(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
    return na == nb && memcmp(a, b, na * sizeof(*a)) == 0;
}

static u128 width_of(const struct ring *r, size_t i)
{
    uint64_t lo, hi;
    ring_range_bounds(r, i, &lo, &hi);
    return ring_ranges(r) == 1 ? (u128)1 << 64 : (u128)(uint64_t)(hi - lo);
}

TEST(ring_is_the_same_whatever_order_members_join_in)
{
    uint32_t ids[12] = {1, 2, 3, 4, 5, 6, 7, 8, 100, 1000, 65536, UINT32_MAX};
    uint64_t s = 1;
    struct ring *a = ring_new(32), *b = ring_new(32);

    for (size_t i = 0; i < 12; i++)
        CHECK_EQ_INT(ring_add(a, ids[i]), 0);
    shuffle(ids, 12, &s);
    CHECK_EQ_INT(ring_add(b, 77), 0); /* a member that comes and goes leaves no trace */
    for (size_t i = 0; i < 12; i++)
        CHECK_EQ_INT(ring_add(b, ids[i]), 0);
    CHECK_EQ_INT(ring_remove(b, 77), 0);

    CHECK_EQ_INT(ring_ranges(a), 12 * 32);
    CHECK_EQ_INT(ring_ranges(b), ring_ranges(a));
    for (size_t i = 0; i < ring_ranges(a); i++) {
        uint64_t alo, ahi, blo, bhi;
        ring_range_bounds(a, i, &alo, &ahi);
        ring_range_bounds(b, i, &blo, &bhi);
        CHECK(alo == blo && ahi == bhi);
    }
    int mismatches = 0;
    for (int k = 0; k < 10000; k++) {
        uint64_t h = splitmix64(&s);
        uint32_t wa[RING_NODES_MAX], wb[RING_NODES_MAX];
        size_t na = ring_walk(a, h, wa, RING_NODES_MAX), nb = ring_walk(b, h, wb, RING_NODES_MAX);
        mismatches += !same_walk(wa, na, wb, nb);
    }
    CHECK_EQ_INT(mismatches, 0);
    ring_free(a);
    ring_free(b);
}

TEST(ring_tokens_follow_the_documented_formula)
{
    struct ring *r = ring_new(16);
    bool found[16] = {false};

    CHECK_EQ_INT(ring_add(r, 42), 0);
    for (size_t i = 0; i < ring_ranges(r); i++) {
        uint64_t lo, hi;
        ring_range_bounds(r, i, &lo, &hi);
        for (uint32_t j = 0; j < 16; j++)
            if (hi == token_of(42, j))
                found[j] = true;
        if (i > 0) {
            uint64_t plo, phi;
            ring_range_bounds(r, i - 1, &plo, &phi);
            CHECK(phi < hi); /* sorted */
        }
    }
    for (uint32_t j = 0; j < 16; j++)
        CHECK(found[j]);
    /* Keys hash with a fixed seed, not the plain XXH3 of the key. */
    CHECK(ring_hash("user:1", 6) == ring_hash("user:1", 6));
    CHECK(ring_hash("user:1", 6) != ring_hash("user:2", 6));
    CHECK(ring_hash("user:1", 6) ==
          XXH3_64bits_withSeed("user:1", 6, UINT64_C(0x74726961646b6579)));
    ring_free(r);
}

TEST(ring_walk_returns_distinct_members_and_all_of_them)
{
    uint64_t s = 2;
    struct ring *r = ring_new(8);
    for (uint32_t id = 10; id < 30; id++)
        CHECK_EQ_INT(ring_add(r, id), 0);

    int bad = 0;
    for (int k = 0; k < 2000; k++) {
        uint64_t h = splitmix64(&s);
        uint32_t all[RING_NODES_MAX], three[3];
        size_t n = ring_walk(r, h, all, RING_NODES_MAX);
        uint64_t seen = 0;
        bad += n != 20;
        for (size_t i = 0; i < n; i++) {
            bad += !ring_has(r, all[i]);
            bad += (seen >> (all[i] - 10)) & 1;
            seen |= UINT64_C(1) << (all[i] - 10);
        }
        /* a shorter walk is a prefix of the full one */
        bad += ring_walk(r, h, three, 3) != 3 || memcmp(three, all, sizeof(three)) != 0;
        bad += ring_walk(r, h, three, 0) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    ring_free(r);
}

TEST(ring_adding_a_node_only_inserts_it_into_preference_lists)
{
    uint64_t s = 3;
    int bad = 0;

    for (int trial = 0; trial < 20; trial++) {
        struct ring *r = ring_new(1 + (uint32_t)(splitmix64(&s) % 64));
        size_t members = 1 + (size_t)(splitmix64(&s) % 12);
        for (size_t i = 0; i < members; i++)
            (void)ring_add(r, 1 + (uint32_t)(splitmix64(&s) % 1000)); /* repeats refused */
        uint32_t fresh;
        do
            fresh = 1 + (uint32_t)(splitmix64(&s) % 1000);
        while (ring_has(r, fresh));

        enum { POINTS = 500 };
        static uint64_t pts[POINTS];
        static uint32_t before[POINTS][RING_NODES_MAX];
        static size_t nbefore[POINTS];
        for (int k = 0; k < POINTS; k++) {
            pts[k] = splitmix64(&s);
            nbefore[k] = ring_walk(r, pts[k], before[k], RING_NODES_MAX);
        }
        CHECK_EQ_INT(ring_add(r, fresh), 0);
        for (int k = 0; k < POINTS; k++) {
            uint32_t after[RING_NODES_MAX], rest[RING_NODES_MAX], first3[3], rest3[3];
            size_t n = ring_walk(r, pts[k], after, RING_NODES_MAX);
            bad += n != nbefore[k] + 1;
            bad += !same_walk(rest, without(after, n, fresh, rest), before[k], nbefore[k]);
            /* the first-3 list: the old one with at most the new node let in */
            size_t n3 = ring_walk(r, pts[k], first3, 3);
            size_t r3 = without(first3, n3, fresh, rest3);
            bad += r3 > nbefore[k] || memcmp(rest3, before[k], r3 * sizeof(uint32_t)) != 0;
            bad += r3 < TRIAD_MIN(nbefore[k], (size_t)2);
        }
        ring_free(r);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(ring_removing_a_node_only_drops_it_from_preference_lists)
{
    uint64_t s = 4;
    int bad = 0;

    for (int trial = 0; trial < 20; trial++) {
        struct ring *r = ring_new(1 + (uint32_t)(splitmix64(&s) % 64));
        size_t members = 2 + (size_t)(splitmix64(&s) % 12);
        for (size_t i = 0; i < members; i++)
            (void)ring_add(r, 1 + (uint32_t)(splitmix64(&s) % 1000));
        uint32_t ids[RING_NODES_MAX];
        size_t count = ring_members(r, ids, RING_NODES_MAX);
        uint32_t gone = ids[splitmix64(&s) % count];

        enum { POINTS = 500 };
        static uint64_t pts[POINTS];
        static uint32_t before[POINTS][RING_NODES_MAX];
        static size_t nbefore[POINTS];
        for (int k = 0; k < POINTS; k++) {
            pts[k] = splitmix64(&s);
            nbefore[k] = ring_walk(r, pts[k], before[k], RING_NODES_MAX);
        }
        CHECK_EQ_INT(ring_remove(r, gone), 0);
        CHECK(!ring_has(r, gone));
        for (int k = 0; k < POINTS; k++) {
            uint32_t after[RING_NODES_MAX], rest[RING_NODES_MAX];
            size_t n = ring_walk(r, pts[k], after, RING_NODES_MAX);
            size_t nr = without(before[k], nbefore[k], gone, rest);
            bad += nr + 1 != nbefore[k];
            bad += !same_walk(after, n, rest, nr);
        }
        ring_free(r);
    }
    CHECK_EQ_INT(bad, 0);
}

TEST(ring_shares_are_balanced_and_sum_to_the_replica_count)
{
    struct ring *r = ring_new(64);
    uint32_t sum1 = 0, sum2 = 0;

    for (uint32_t id = 1; id <= 3; id++)
        CHECK_EQ_INT(ring_add(r, id), 0);
    for (uint32_t id = 1; id <= 3; id++) {
        uint32_t one = ring_share_ppm(r, id, 1);
        CHECK(one >= 200000 && one <= 470000);
        CHECK_EQ_INT(ring_share_ppm(r, id, 3), 1000000);
        CHECK_EQ_INT(ring_share_ppm(r, id, 64), 1000000); /* n beyond the members */
        CHECK(ring_share_ppm(r, id, 2) > one);
        CHECK_EQ_INT(ring_share_ppm(r, id, 0), 0);
        sum1 += one;
        sum2 += ring_share_ppm(r, id, 2);
    }
    /* each point has exactly n owners; rounding costs at most 1 ppm a node */
    CHECK(sum1 >= 1000000 - 2 && sum1 <= 1000000 + 2);
    CHECK(sum2 >= 2000000 - 2 && sum2 <= 2000000 + 2);
    CHECK_EQ_INT(ring_share_ppm(r, 4, 1), 0); /* not a member */
    ring_free(r);
}

TEST(ring_share_follows_the_walks_of_random_points)
{
    /* Monte Carlo against the walks: the share is what points see. */
    uint64_t s = 5;
    struct ring *r = ring_new(16);
    for (uint32_t id = 1; id <= 5; id++)
        CHECK_EQ_INT(ring_add(r, id), 0);
    int hits[6] = {0};
    enum { POINTS = 200000 };
    for (int k = 0; k < POINTS; k++) {
        uint32_t w[2];
        size_t n = ring_walk(r, splitmix64(&s), w, 2);
        for (size_t i = 0; i < n; i++)
            hits[w[i]]++;
    }
    for (uint32_t id = 1; id <= 5; id++) {
        double seen = hits[id] * 1e6 / POINTS, ppm = ring_share_ppm(r, id, 2);
        CHECK(seen > ppm - 5000 && seen < ppm + 5000); /* ~4.5 sigma */
    }
    ring_free(r);
}

TEST(ring_ranges_tile_the_ring_and_share_one_preference_order)
{
    uint64_t s = 6;
    struct ring *r = ring_new(24);
    for (uint32_t id = 1; id <= 7; id++)
        CHECK_EQ_INT(ring_add(r, id * 11), 0);

    size_t nr = ring_ranges(r);
    u128 total = 0;
    CHECK_EQ_INT(nr, 7 * 24);
    for (size_t i = 0; i < nr; i++) {
        uint64_t lo, hi, plo, phi;
        ring_range_bounds(r, i, &lo, &hi);
        ring_range_bounds(r, (i + nr - 1) % nr, &plo, &phi);
        CHECK(lo == phi); /* each range starts where the previous one ends */
        CHECK(ring_range_of(r, hi) == i);
        CHECK(ring_range_of(r, lo + 1) == i);
        CHECK(ring_range_of(r, hi + 1) == (i + 1) % nr);
        total += width_of(r, i);
    }
    CHECK(total == (u128)1 << 64);

    uint64_t first_lo, first_hi, last_lo, last_hi;
    ring_range_bounds(r, 0, &first_lo, &first_hi);
    ring_range_bounds(r, nr - 1, &last_lo, &last_hi);
    CHECK(first_lo == last_hi && first_lo > first_hi); /* range 0 wraps */
    CHECK_EQ_INT(ring_range_of(r, 0), 0);
    CHECK_EQ_INT(ring_range_of(r, UINT64_MAX), 0);

    int bad = 0;
    for (int k = 0; k < 10000; k++) {
        uint64_t p = splitmix64(&s), lo, hi;
        size_t i = ring_range_of(r, p);
        ring_range_bounds(r, i, &lo, &hi);
        bad += !ring_in_range(lo, hi, p);
        uint32_t a[RING_NODES_MAX], b[RING_NODES_MAX];
        size_t na = ring_range_walk(r, i, a, RING_NODES_MAX), nb = ring_walk(r, p, b, RING_NODES_MAX);
        bad += !same_walk(a, na, b, nb);
    }
    CHECK_EQ_INT(bad, 0);
    ring_free(r);
}

TEST(ring_in_range_is_half_open_and_wraps)
{
    CHECK(!ring_in_range(10, 20, 10));
    CHECK(ring_in_range(10, 20, 11));
    CHECK(ring_in_range(10, 20, 20));
    CHECK(!ring_in_range(10, 20, 21));
    CHECK(!ring_in_range(10, 20, 0));
    CHECK(ring_in_range(UINT64_MAX - 5, 5, UINT64_MAX));
    CHECK(ring_in_range(UINT64_MAX - 5, 5, 0));
    CHECK(ring_in_range(UINT64_MAX - 5, 5, 5));
    CHECK(!ring_in_range(UINT64_MAX - 5, 5, 6));
    CHECK(!ring_in_range(UINT64_MAX - 5, 5, UINT64_MAX - 5));
    CHECK(ring_in_range(7, 7, 7));
    CHECK(ring_in_range(7, 7, 8));
    CHECK(ring_in_range(0, 0, UINT64_MAX));
    CHECK(ring_in_range(UINT64_MAX, 0, 0));
    CHECK(!ring_in_range(UINT64_MAX, 0, UINT64_MAX));
}

TEST(ring_refuses_bad_members_and_stops_at_its_limits)
{
    CHECK(ring_new(0) == NULL);
    CHECK(ring_new(RING_VNODES_MAX + 1) == NULL);
    struct ring *big = ring_new(RING_VNODES_MAX);
    CHECK(big != NULL);
    CHECK_EQ_INT(ring_vnodes(big), RING_VNODES_MAX);
    ring_free(big);

    struct ring *r = ring_new(4);
    uint32_t out[RING_NODES_MAX + 1];
    CHECK_EQ_INT(ring_add(r, 0), TRIAD_EINVAL);
    CHECK_EQ_INT(ring_remove(r, 5), TRIAD_ENOTFOUND);
    for (uint32_t i = 0; i < RING_NODES_MAX; i++)
        CHECK_EQ_INT(ring_add(r, 1000 - i * 7), 0); /* descending: inserts at the front */
    CHECK_EQ_INT(ring_add(r, 1000), TRIAD_EINVAL);
    CHECK_EQ_INT(ring_add(r, 5000), TRIAD_ELIMIT);
    CHECK(!ring_has(r, 5000));
    CHECK_EQ_INT(ring_ranges(r), RING_NODES_MAX * 4);
    CHECK_EQ_INT(ring_members(r, out, RING_NODES_MAX + 1), RING_NODES_MAX);
    for (size_t i = 1; i < RING_NODES_MAX; i++)
        CHECK(out[i - 1] < out[i]);
    CHECK_EQ_INT(out[0], 1000 - (RING_NODES_MAX - 1) * 7);
    CHECK_EQ_INT(ring_members(r, out, 3), 3); /* copies at most max */
    CHECK_EQ_INT(ring_walk(r, 12345, out, RING_NODES_MAX + 1), RING_NODES_MAX);

    CHECK_EQ_INT(ring_remove(r, 1000), 0);
    CHECK_EQ_INT(ring_remove(r, 1000), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(ring_add(r, 5000), 0);
    CHECK_EQ_INT(ring_members(r, out, RING_NODES_MAX), RING_NODES_MAX);
    CHECK_EQ_INT(out[RING_NODES_MAX - 1], 5000);
    CHECK_EQ_INT(ring_ranges(r), RING_NODES_MAX * 4);
    ring_free(r);
}

TEST(ring_empty_has_no_owners_and_no_ranges)
{
    struct ring *r = ring_new(8);
    uint32_t out[4];
    CHECK_EQ_INT(ring_walk(r, 99, out, 4), 0);
    CHECK_EQ_INT(ring_ranges(r), 0);
    CHECK_EQ_INT(ring_members(r, out, 4), 0);
    CHECK_EQ_INT(ring_share_ppm(r, 1, 3), 0);
    CHECK_EQ_INT(ring_add(r, 3), 0);
    CHECK_EQ_INT(ring_remove(r, 3), 0);
    CHECK_EQ_INT(ring_walk(r, 99, out, 4), 0);
    CHECK_EQ_INT(ring_ranges(r), 0);
    ring_free(r);
}

TEST(ring_single_token_is_one_range_over_the_whole_ring)
{
    struct ring *r = ring_new(1);
    uint64_t lo, hi;
    uint32_t out[2];

    CHECK_EQ_INT(ring_add(r, 9), 0);
    CHECK_EQ_INT(ring_ranges(r), 1);
    ring_range_bounds(r, 0, &lo, &hi);
    CHECK(lo == hi);
    CHECK(hi == token_of(9, 0));
    CHECK(ring_in_range(lo, hi, 0) && ring_in_range(lo, hi, hi) && ring_in_range(lo, hi, hi + 1));
    CHECK_EQ_INT(ring_range_of(r, 0), 0);
    CHECK_EQ_INT(ring_range_of(r, UINT64_MAX), 0);
    CHECK_EQ_INT(ring_range_of(r, hi), 0);
    CHECK_EQ_INT(ring_walk(r, hi + 1, out, 2), 1);
    CHECK_EQ_INT(out[0], 9);
    CHECK_EQ_INT(ring_range_walk(r, 0, out, 2), 1);
    CHECK_EQ_INT(out[0], 9);
    CHECK_EQ_INT(ring_share_ppm(r, 9, 1), 1000000);
    CHECK(width_of(r, 0) == (u128)1 << 64);
    ring_free(r);
}

int main(void)
{
    RUN(ring_is_the_same_whatever_order_members_join_in);
    RUN(ring_tokens_follow_the_documented_formula);
    RUN(ring_walk_returns_distinct_members_and_all_of_them);
    RUN(ring_adding_a_node_only_inserts_it_into_preference_lists);
    RUN(ring_removing_a_node_only_drops_it_from_preference_lists);
    RUN(ring_shares_are_balanced_and_sum_to_the_replica_count);
    RUN(ring_share_follows_the_walks_of_random_points);
    RUN(ring_ranges_tile_the_ring_and_share_one_preference_order);
    RUN(ring_in_range_is_half_open_and_wraps);
    RUN(ring_refuses_bad_members_and_stops_at_its_limits);
    RUN(ring_empty_has_no_owners_and_no_ranges);
    RUN(ring_single_token_is_one_range_over_the_whole_ring);
    return test_summary("ring");
}
