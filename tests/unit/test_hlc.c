/* test_hlc.c - the hybrid logical clock: monotonic whatever the physical
 * clock does, the logical counter's carry, observe's max and its refusal
 * of timestamps too far ahead. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../../src/common/defs.h"
#include "../../src/core/hlc.h"
#include "test.h"

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define LOGICAL_MAX ((1u << HLC_LOGICAL_BITS) - 1)

TEST(hlc_now_follows_physical_time_and_counts_within_a_millisecond)
{
    struct hlc c;
    hlc_init(&c, 0, 0);
    CHECK(hlc_now(&c, 100) == HLC_FROM_MS(100));
    CHECK(hlc_now(&c, 100) == HLC_FROM_MS(100) + 1);
    hlc_ts t = hlc_now(&c, 100);
    CHECK(HLC_MS(t) == 100 && HLC_LOGICAL(t) == 2);
    CHECK(hlc_now(&c, 101) == HLC_FROM_MS(101)); /* the counter restarts */
    CHECK(c.last == HLC_FROM_MS(101));
}

TEST(hlc_now_is_monotonic_under_a_backwards_stepping_physical_clock)
{
    uint64_t seed = 11;
    struct hlc c;
    hlc_init(&c, 0, 0);
    uint64_t phys = 1000000;
    hlc_ts prev = 0;
    int bad = 0, ahead = 0;
    for (int i = 0; i < 20000; i++) {
        uint64_t r = rng_next(&seed);
        /* mostly forwards, sometimes a step back of up to 5 s, sometimes
         * the same millisecond many times */
        if (r % 10 == 0)
            phys -= TRIAD_MIN(phys, (r >> 8) % 5000);
        else if (r % 10 < 4)
            phys += (r >> 8) % 3;
        hlc_ts t = hlc_now(&c, phys);
        if ((t <= prev || t < HLC_FROM_MS(phys)) && bad++ == 0)
            fprintf(stderr, "  step %d: %" PRIu64 " after %" PRIu64 " at %" PRIu64 " ms\n", i, t,
                    prev, phys);
        ahead += HLC_MS(t) > phys; /* the clock ran ahead of a stepped-back physical */
        prev = t;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(ahead > 0); /* the steps back did happen */
}

TEST(hlc_logical_counter_carries_into_the_milliseconds)
{
    struct hlc c;
    hlc_init(&c, HLC_FROM_MS(5) | LOGICAL_MAX, 0);
    hlc_ts t = hlc_now(&c, 5);
    CHECK(HLC_MS(t) == 6);
    CHECK(HLC_LOGICAL(t) == 0);
    CHECK(hlc_now(&c, 5) == HLC_FROM_MS(6) + 1);
    /* physical time catching up takes over again */
    CHECK(hlc_now(&c, 7) == HLC_FROM_MS(7));

    /* 2^16 events in one millisecond run the clock one ms ahead, no repeats */
    hlc_init(&c, 0, 0);
    hlc_ts prev = hlc_now(&c, 50);
    bool up = true;
    for (uint32_t i = 0; i < LOGICAL_MAX + 10; i++) {
        hlc_ts n = hlc_now(&c, 50);
        up &= n == prev + 1;
        prev = n;
    }
    CHECK(up);
    CHECK(HLC_MS(prev) == 51 && HLC_LOGICAL(prev) == 9);
}

TEST(hlc_init_floor_is_never_handed_out_again)
{
    struct hlc c;
    hlc_init(&c, HLC_FROM_MS(1000) + 3, 0);
    CHECK(hlc_now(&c, 10) == HLC_FROM_MS(1000) + 4);
    hlc_init(&c, HLC_FROM_MS(1000) + 3, 0);
    CHECK(hlc_now(&c, 2000) == HLC_FROM_MS(2000));
}

TEST(hlc_observe_takes_the_max_and_later_events_order_after_it)
{
    struct hlc c;
    hlc_init(&c, 0, 0);
    hlc_now(&c, 100);
    hlc_ts remote = HLC_FROM_MS(300) + 7;
    CHECK(hlc_observe(&c, remote, 100));
    CHECK(c.last == remote);
    CHECK(hlc_now(&c, 100) == remote + 1);

    /* an older timestamp is accepted and changes nothing */
    hlc_ts before = c.last;
    CHECK(hlc_observe(&c, HLC_FROM_MS(50), 100));
    CHECK(c.last == before);
    CHECK(hlc_observe(&c, before, 100));
    CHECK(c.last == before);
}

TEST(hlc_observe_refuses_a_timestamp_more_than_max_ahead_ms_ahead)
{
    struct hlc c;
    hlc_init(&c, 0, 1000);
    hlc_now(&c, 5000);
    hlc_ts before = c.last;
    CHECK(!hlc_observe(&c, HLC_FROM_MS(6001), 5000));
    CHECK(!hlc_observe(&c, UINT64_MAX, 5000));
    CHECK(c.last == before);
    CHECK(hlc_now(&c, 5000) == before + 1); /* ignored entirely */
    /* exactly max_ahead_ms ahead, any logical part, is fine */
    CHECK(hlc_observe(&c, HLC_FROM_MS(6000) | LOGICAL_MAX, 5000));
    CHECK(c.last == (HLC_FROM_MS(6000) | LOGICAL_MAX));
    /* the limit is against the physical time passed, not the clock */
    CHECK(hlc_observe(&c, HLC_FROM_MS(7000), 6000));
    CHECK(!hlc_observe(&c, HLC_FROM_MS(7001), 6000));
}

TEST(hlc_observe_with_max_ahead_ms_zero_has_no_limit)
{
    struct hlc c;
    hlc_init(&c, 0, 0);
    hlc_ts far = HLC_FROM_MS((uint64_t)1 << 46);
    CHECK(hlc_observe(&c, far, 0));
    CHECK(c.last == far);
    CHECK(hlc_now(&c, 0) == far + 1);
}

TEST(hlc_messages_between_skewed_clocks_are_ordered_after_their_send)
{
    /* Three nodes with physical clocks skewed by up to a second and
     * jittering backwards exchange messages: a receive (observe, then a
     * local event) always orders after the send, and each node's own
     * timestamps only grow. */
    uint64_t seed = 3;
    struct hlc n[3];
    int64_t skew[3] = {0, 700, -900};
    hlc_ts last[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        hlc_init(&n[i], 0, 0);
    int bad = 0;
    uint64_t now = 100000;
    for (int step = 0; step < 5000; step++) {
        now += rng_next(&seed) % 3;
        uint64_t r = rng_next(&seed);
        int a = (int)(r % 3), b = (int)((r >> 8) % 3);
        uint64_t pa = (uint64_t)((int64_t)now + skew[a] - (int64_t)((r >> 16) % 50));
        uint64_t pb = (uint64_t)((int64_t)now + skew[b] - (int64_t)((r >> 24) % 50));
        hlc_ts sent = hlc_now(&n[a], pa);
        bad += sent <= last[a];
        last[a] = sent;
        CHECK(hlc_observe(&n[b], sent, pb));
        hlc_ts got = hlc_now(&n[b], pb);
        bad += got <= sent || got <= last[b];
        last[b] = got;
    }
    CHECK_EQ_INT(bad, 0);
}

int main(void)
{
    RUN(hlc_now_follows_physical_time_and_counts_within_a_millisecond);
    RUN(hlc_now_is_monotonic_under_a_backwards_stepping_physical_clock);
    RUN(hlc_logical_counter_carries_into_the_milliseconds);
    RUN(hlc_init_floor_is_never_handed_out_again);
    RUN(hlc_observe_takes_the_max_and_later_events_order_after_it);
    RUN(hlc_observe_refuses_a_timestamp_more_than_max_ahead_ms_ahead);
    RUN(hlc_observe_with_max_ahead_ms_zero_has_no_limit);
    RUN(hlc_messages_between_skewed_clocks_are_ordered_after_their_send);
    return test_summary("hlc");
}
