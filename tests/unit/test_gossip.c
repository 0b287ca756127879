/* test_gossip.c - leaderless mode's membership (src/core/gossip.c): the
 * phi-accrual detector, gossip rounds and merging, the wire codec, and an
 * in-process cluster of gossip instances over a lossy message queue, every
 * setting drawn from one seed (printed on failure). */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/core/gossip.h"
#include "test.h"

/* gossip.c's O(n) self-check (kept out of gossip.h: tests and debug only). */
int gossip__check(const struct gossip *g);

#define LOG10_E 0.43429448190325182765

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static struct gossip_state mkstate(uint32_t id, uint64_t gen, uint64_t ver, uint8_t status,
                                   const char *host)
{
    struct gossip_state s;
    memset(&s, 0, sizeof(s));
    s.id = id;
    s.generation = gen;
    s.version = ver;
    s.status = status;
    s.peer_port = (uint16_t)(7000 + id);
    s.client_port = (uint16_t)(6000 + id);
    snprintf(s.host, sizeof(s.host), "%s", host);
    return s;
}

static struct gossip_state node_state(uint32_t id, uint64_t gen, uint64_t ver)
{
    char host[32];
    snprintf(host, sizeof(host), "10.0.0.%u", id);
    return mkstate(id, gen, ver, GOSSIP_NORMAL, host);
}

static struct gossip *new_node(uint32_t id, uint64_t gen, uint64_t ver, uint64_t now_ms)
{
    struct gossip_config cfg;
    gossip_config_default(&cfg);
    struct gossip_state self = node_state(id, gen, ver);
    return gossip_new(&self, &cfg, now_ms);
}

static bool state_eq(const struct gossip_state *a, const struct gossip_state *b)
{
    return a->id == b->id && a->generation == b->generation && a->version == b->version &&
           a->status == b->status && a->peer_port == b->peer_port &&
           a->client_port == b->client_port && strcmp(a->host, b->host) == 0;
}

static bool newer(uint64_t ga, uint64_t va, uint64_t gb, uint64_t vb)
{
    return ga != gb ? ga > gb : va > vb;
}

/* ---- phi ---- */

TEST(phi_is_zero_before_the_first_arrival_then_rises_with_silence)
{
    struct phi p;
    phi_init(&p, 1000);
    CHECK(phi_value(&p, 0) == 0);
    CHECK(phi_value(&p, 1000000) == 0);
    phi_arrival(&p, 5000);
    CHECK(phi_value(&p, 5000) == 0);
    /* before any interval the mean is the bootstrap one */
    CHECK(fabs(phi_value(&p, 6000) - LOG10_E) < 1e-12);
    double prev = 0;
    for (uint64_t t = 5100; t <= 60000; t += 100) {
        double v = phi_value(&p, t);
        CHECK(v > prev);
        prev = v;
    }
    CHECK(fabs(phi_value(&p, 15000) - 10 * LOG10_E) < 1e-9);
}

TEST(phi_stays_low_with_regular_arrivals)
{
    struct phi p;
    uint64_t rng = 7, t = 1000;
    double max = 0;
    phi_init(&p, 1000);
    phi_arrival(&p, t);
    for (int i = 0; i < 3000; i++) {
        t += 800 + splitmix64(&rng) % 401; /* 1 s +- 200 ms */
        max = TRIAD_MAX(max, phi_value(&p, t));
        phi_arrival(&p, t);
    }
    CHECK(max > 0.3);
    CHECK(max < 0.6); /* 1.2 s / 1 s * log10(e) = 0.52 */
}

TEST(phi_crosses_8_after_18_4_seconds_of_silence_at_a_1_second_mean)
{
    struct phi p;
    uint64_t t = 1000;
    phi_init(&p, 1000);
    for (int i = 0; i < 100; i++, t += 1000)
        phi_arrival(&p, t);
    uint64_t last = t - 1000;
    CHECK(p.n == 99 && p.sum_ms == 99000);
    CHECK(phi_value(&p, last + 18000) < 8);
    CHECK(phi_value(&p, last + 18420) < 8); /* 8 / log10(e) s = 18.4207 s */
    CHECK(phi_value(&p, last + 18421) >= 8);
    CHECK(phi_value(&p, last + 19000) >= 8);

    /* the same through gossip: node 2 heard of once a second */
    struct gossip *g = new_node(1, 1, 0, 0);
    uint64_t now = 1000;
    for (uint64_t v = 1; v <= 60; v++, now += 1000) {
        struct gossip_state s = node_state(2, 1, v);
        gossip_merge(g, 2, &s, 1, now);
    }
    last = now - 1000;
    CHECK(gossip_alive(g, 2, last + 18000));
    CHECK(!gossip_alive(g, 2, last + 19000));
    CHECK(gossip_phi(g, 2, last + 19000) > 8);
    gossip_free(g);
}

TEST(phi_window_keeps_the_mean_of_the_last_PHI_WINDOW_intervals)
{
    struct phi p;
    uint64_t t = 1;
    phi_init(&p, 1000);
    phi_arrival(&p, t);
    for (int i = 0; i < PHI_WINDOW; i++)
        phi_arrival(&p, t += 100);
    CHECK(p.n == PHI_WINDOW && p.sum_ms == 100ull * PHI_WINDOW);
    for (int i = 0; i < PHI_WINDOW / 2; i++)
        phi_arrival(&p, t += 3000);
    CHECK(p.n == PHI_WINDOW);
    CHECK(p.sum_ms == 100ull * (PHI_WINDOW / 2) + 3000ull * (PHI_WINDOW / 2));
    double mean = (double)p.sum_ms / PHI_WINDOW;
    CHECK(fabs(phi_value(&p, t + 1550) - 1550 / mean * LOG10_E) < 1e-12);
    for (int i = 0; i < PHI_WINDOW / 2; i++)
        phi_arrival(&p, t += 3000);
    /* every 100 ms interval has been evicted */
    CHECK(p.sum_ms == 3000ull * PHI_WINDOW);
    CHECK(fabs(phi_value(&p, t + 3000) - LOG10_E) < 1e-12);
}

TEST(phi_counts_a_zero_interval_as_one_ms)
{
    struct phi p;
    phi_init(&p, 1000);
    phi_arrival(&p, 500);
    phi_arrival(&p, 500);
    CHECK(p.n == 1 && p.sum_ms == 1);
    CHECK(fabs(phi_value(&p, 510) - 10 * LOG10_E) < 1e-9);
    /* an arrival at 0 ms is still an arrival */
    phi_init(&p, 1000);
    phi_arrival(&p, 0);
    CHECK(phi_value(&p, 2001) > 0);
}

/* ---- rounds, membership, merging ---- */

TEST(gossip_tick_runs_a_round_every_interval_and_bumps_our_version)
{
    struct gossip *g = new_node(1, 3, 10, 5000);
    CHECK(gossip_next_ms(g) == 5000); /* the first round at once */
    CHECK(gossip_tick(g, 4999, 0) == 0);
    CHECK(gossip_get(g, 1)->version == 10);
    CHECK(gossip_tick(g, 5000, 0) == 0); /* due, but nobody to send to */
    CHECK(gossip_get(g, 1)->version == 11);
    CHECK(gossip_next_ms(g) == 6000);
    CHECK(gossip_tick(g, 5999, 0) == 0);
    CHECK(gossip_get(g, 1)->version == 11);
    gossip_add_seed(g, 2);
    CHECK(gossip_tick(g, 6000, 0) == 2);
    CHECK(gossip_get(g, 1)->version == 12);
    CHECK(gossip_get(g, 1)->generation == 3);
    /* a late tick runs one round, not the missed ones */
    CHECK(gossip_tick(g, 9500, 0) == 2);
    CHECK(gossip_get(g, 1)->version == 13);
    CHECK(gossip_next_ms(g) == 10500);
    CHECK(gossip_tick(g, 10499, 0) == 0);
    CHECK(gossip_get(g, 1)->version == 13);
    CHECK(gossip_epoch(g) == 1); /* heartbeats move no epoch */
    gossip_free(g);
}

TEST(gossip_tick_picks_uniformly_among_the_others_never_self_nor_left)
{
    struct gossip *g = new_node(3, 1, 0, 0);
    gossip_add_seed(g, 1);
    gossip_add_seed(g, 7);
    gossip_add_seed(g, 3); /* ourselves: ignored */
    struct gossip_state s[3] = {node_state(5, 1, 1), node_state(6, 1, 1), node_state(7, 1, 1)};
    s[1].status = GOSSIP_LEFT;
    gossip_merge(g, 5, s, 3, 0);
    int count[9] = {0};
    uint64_t rng = 42;
    for (int r = 0; r < 8000; r++) {
        uint32_t to = gossip_tick(g, (uint64_t)r * 1000, splitmix64(&rng));
        CHECK(to < 9);
        if (to < 9)
            count[to]++;
    }
    /* 1, 5, 7: 8000 / 3 = 2667 each, sd 42 */
    CHECK(count[1] > 2450 && count[1] < 2880);
    CHECK(count[5] > 2450 && count[5] < 2880);
    CHECK(count[7] > 2450 && count[7] < 2880);
    CHECK_EQ_INT(count[0] + count[1] + count[5] + count[7], 8000);
    CHECK_EQ_INT(count[0], 0);
    CHECK_EQ_INT(count[3], 0);
    CHECK_EQ_INT(count[6], 0);
    gossip_free(g);
}

TEST(gossip_alive_is_self_always_seeds_never_others_by_phi)
{
    struct gossip *g = new_node(1, 1, 0, 0);
    gossip_add_seed(g, 2);
    CHECK(gossip_alive(g, 1, 1000000));
    CHECK(!gossip_alive(g, 2, 0));
    CHECK(gossip_get(g, 2) == NULL);
    CHECK(!gossip_alive(g, 9, 0));
    CHECK(gossip_phi(g, 9, 0) == 0);
    struct gossip_state s = node_state(2, 1, 1);
    gossip_merge(g, 2, &s, 1, 1000);
    CHECK(gossip_get(g, 2) != NULL);
    CHECK(gossip_alive(g, 2, 1000));
    CHECK(gossip_alive(g, 2, 15000));
    /* heard of once, never again: convicted in time (bootstrap mean 1 s) */
    CHECK(!gossip_alive(g, 2, 1000 + 19000));
    CHECK(gossip_alive(g, 1, 1000 + 19000));
    struct gossip_state out[4];
    CHECK_EQ_INT(gossip_states(g, out, 4), 2);
    CHECK(out[0].id == 1 && out[1].id == 2);
    CHECK_EQ_INT(gossip_states(g, out, 1), 1);
    gossip_free(g);
}

TEST(gossip_merge_answers_when_we_hold_newer_or_unsent_states)
{
    struct gossip *g = new_node(1, 1, 5, 0);
    struct gossip_state s[3] = {node_state(1, 1, 5), node_state(2, 1, 7), node_state(3, 1, 1)};
    /* everything they sent is what we now hold */
    CHECK(!gossip_merge(g, 2, s, 3, 100));
    CHECK(gossip_get(g, 2)->version == 7);
    /* they do not know us */
    CHECK(gossip_merge(g, 2, &s[1], 2, 200));
    /* they know an older us */
    s[0].version = 4;
    CHECK(gossip_merge(g, 2, s, 3, 300));
    /* they know an older 3 */
    s[0].version = 5;
    struct gossip_state s3 = node_state(3, 1, 9);
    gossip_merge(g, 3, &s3, 1, 400);
    CHECK(gossip_merge(g, 2, s, 3, 500));
    /* newer than ours for everyone else: we take it and have nothing to add */
    s[1].version = 8;
    s[2].version = 10;
    CHECK(!gossip_merge(g, 2, s, 3, 600));
    CHECK(gossip_get(g, 3)->version == 10);
    gossip_free(g);
}

TEST(gossip_merge_jumps_our_version_past_a_newer_state_for_us)
{
    struct gossip *g = new_node(1, 3, 5, 0);
    struct gossip_state mine = *gossip_get(g, 1);
    struct gossip_state s = mkstate(1, 3, 100, GOSSIP_LEAVING, "elsewhere");
    s.peer_port = 1;
    CHECK(gossip_merge(g, 2, &s, 1, 0)); /* now ours is newer than theirs */
    const struct gossip_state *me = gossip_get(g, 1);
    CHECK(me->generation == 3 && me->version == 101);
    /* only we say where we are and what we do */
    CHECK(me->status == mine.status && me->peer_port == mine.peer_port);
    CHECK(strcmp(me->host, mine.host) == 0);
    s.version = 50; /* older: ignored */
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(me->generation == 3 && me->version == 101);
    s.generation = 7;
    s.version = 2;
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(me->generation == 7 && me->version == 3);
    /* at the version's end the generation carries */
    s.version = UINT64_MAX;
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(me->generation == 8 && me->version == 0);
    /* at the end of both, nothing is newer: we stay there */
    s.generation = UINT64_MAX;
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(me->generation == UINT64_MAX && me->version == UINT64_MAX);
    gossip_tick(g, 0, 0);
    CHECK(me->generation == UINT64_MAX && me->version == UINT64_MAX);
    CHECK(gossip_epoch(g) == 1);
    gossip_free(g);
}

TEST(gossip_new_generation_resets_phi_and_counts_as_an_arrival)
{
    struct gossip *g = new_node(1, 1, 0, 0);
    uint64_t now = 1000;
    /* node 2 beats every 100 ms for a while */
    for (uint64_t v = 1; v <= 200; v++, now += 100) {
        struct gossip_state s = node_state(2, 1, v);
        gossip_merge(g, 2, &s, 1, now);
    }
    uint64_t last = now - 100;
    double mean = (1000.0 + 199 * 100) / 200; /* the starting interval, then 100s */
    CHECK(fabs(gossip_phi(g, 2, last + 1000) - 1000 / mean * LOG10_E) < 1e-9);
    CHECK(!gossip_alive(g, 2, last + 2000));
    /* a lower version of the same generation is old news: no arrival */
    struct gossip_state s = node_state(2, 1, 3);
    gossip_merge(g, 2, &s, 1, last + 2000);
    CHECK(!gossip_alive(g, 2, last + 2000));
    /* it restarts: back to the bootstrap mean (1 s), alive at once */
    s = node_state(2, 2, 0);
    gossip_merge(g, 2, &s, 1, last + 5000);
    CHECK(gossip_alive(g, 2, last + 5000));
    CHECK(fabs(gossip_phi(g, 2, last + 6000) - LOG10_E) < 1e-9);
    CHECK(gossip_get(g, 2)->generation == 2 && gossip_get(g, 2)->version == 0);
    gossip_free(g);
}

TEST(gossip_does_not_convict_a_new_node_after_a_burst_of_first_arrivals)
{
    /* a stale relayed state, then two fresh ones right after it */
    struct gossip *g = new_node(1, 1, 0, 0);
    for (uint64_t v = 1; v <= 3; v++) {
        struct gossip_state s = node_state(2, 1, v);
        gossip_merge(g, 3, &s, 1, 1000 + v * 10);
    }
    /* intervals 1000 (the start), 10, 10: mean 340 ms, phi 8 at 6.3 s;
     * a mean of 10 ms would convict it at once */
    CHECK(gossip_alive(g, 2, 1030 + 5000));
    CHECK(!gossip_alive(g, 2, 1030 + 7000));
    gossip_free(g);
}

TEST(gossip_epoch_moves_on_a_new_node_status_or_address_only)
{
    struct gossip *g = new_node(1, 1, 0, 0);
    uint64_t e = gossip_epoch(g);
    gossip_add_seed(g, 2);
    CHECK(gossip_epoch(g) == e); /* a seed is not a state */
    struct gossip_state s = node_state(2, 1, 1);
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(gossip_epoch(g) > e);
    e = gossip_epoch(g);
    s.version++;
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(gossip_epoch(g) == e);
    s.version++;
    s.status = GOSSIP_LEAVING;
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(gossip_epoch(g) > e);
    e = gossip_epoch(g);
    s.version++;
    s.client_port++;
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(gossip_epoch(g) > e);
    e = gossip_epoch(g);
    s.version++;
    snprintf(s.host, sizeof(s.host), "10.9.9.9");
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(gossip_epoch(g) > e);
    e = gossip_epoch(g);
    s.peer_port++; /* same pair: not newer, not taken */
    gossip_merge(g, 2, &s, 1, 0);
    CHECK(gossip_epoch(g) == e);
    CHECK(gossip_get(g, 2)->peer_port == (uint16_t)(7000 + 2));
    uint64_t v = gossip_get(g, 1)->version;
    gossip_set_status(g, GOSSIP_NORMAL); /* unchanged: a version, no epoch */
    CHECK(gossip_epoch(g) == e);
    CHECK(gossip_get(g, 1)->version == v + 1);
    gossip_set_status(g, GOSSIP_LEAVING);
    CHECK(gossip_epoch(g) > e);
    CHECK(gossip_get(g, 1)->status == GOSSIP_LEAVING);
    CHECK(gossip_get(g, 1)->version == v + 2);
    gossip_free(g);
}

TEST(gossip_merge_skips_states_that_break_the_rules)
{
    struct gossip *g = new_node(1, 1, 0, 0);
    struct gossip_state s[4] = {node_state(0, 1, 1), node_state(2, 1, 1), node_state(3, 1, 1),
                                node_state(4, 1, 1)};
    s[1].status = 0;
    s[2].host[0] = '\0';
    s[3].host[2] = ' ';
    uint64_t e = gossip_epoch(g);
    gossip_merge(g, 2, s, 4, 0);
    struct gossip_state out[8];
    CHECK_EQ_INT(gossip_states(g, out, 8), 1);
    CHECK(gossip_epoch(g) == e);
    gossip_free(g);
}

TEST(gossip_table_drops_states_past_GOSSIP_NODES_MAX)
{
    struct gossip *g = new_node(1, 1, 0, 0);
    struct gossip_state s[GOSSIP_NODES_MAX + 5];
    for (uint32_t i = 0; i < GOSSIP_NODES_MAX + 5; i++)
        s[i] = node_state(i + 2, 1, 1);
    gossip_merge(g, 2, s, GOSSIP_NODES_MAX + 5, 0);
    struct gossip_state out[GOSSIP_NODES_MAX + 5];
    CHECK_EQ_INT(gossip_states(g, out, GOSSIP_NODES_MAX + 5), GOSSIP_NODES_MAX);
    CHECK(gossip_get(g, GOSSIP_NODES_MAX) != NULL);      /* the 63rd other */
    CHECK(gossip_get(g, GOSSIP_NODES_MAX + 1) == NULL);  /* the 64th: no room */
    gossip_add_seed(g, 500);
    CHECK(gossip_tick(g, 0, 12345) != 500);
    CHECK(gossip__check(g) == 0);
    /* the ones held still take news */
    s[0].version = 2;
    gossip_merge(g, 2, s, 1, 0);
    CHECK(gossip_get(g, 2)->version == 2);
    gossip_free(g);
}

/* A state whose content is a function of (id, generation, version), as
 * it is in a real cluster: one pair, one state. */
static struct gossip_state prop_state(uint32_t id, uint64_t gen, uint64_t ver)
{
    uint64_t h = id * 1000003ull + gen * 10007ull + ver;
    uint64_t x = splitmix64(&h);
    char host[32];
    snprintf(host, sizeof(host), "h%u.%" PRIu64, id, x % 3);
    struct gossip_state s = mkstate(id, gen, ver, (uint8_t)(1 + x % 4), host);
    s.client_port = (uint16_t)(x >> 20);
    return s;
}

static void merge_in_batches(struct gossip *g, const struct gossip_state *s, size_t n,
                             uint64_t *rng)
{
    size_t off = 0;
    while (off < n) {
        size_t k = 1 + splitmix64(rng) % (n - off);
        gossip_merge(g, 9, s + off, k, off);
        off += k;
    }
}

TEST(gossip_merge_is_idempotent_and_order_independent)
{
    uint64_t rng = 2024;
    for (int trial = 0; trial < 300; trial++) {
        struct gossip_state in[60], shuffled[60];
        size_t n = 1 + splitmix64(&rng) % 60;
        for (size_t i = 0; i < n; i++) {
            uint32_t id = 2 + (uint32_t)(splitmix64(&rng) % 11);
            uint64_t gen = 1 + splitmix64(&rng) % 3;
            in[i] = prop_state(id, gen, splitmix64(&rng) % 6);
        }
        memcpy(shuffled, in, n * sizeof(in[0]));
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = splitmix64(&rng) % (i + 1);
            struct gossip_state t = shuffled[i];
            shuffled[i] = shuffled[j];
            shuffled[j] = t;
        }
        struct gossip *a = new_node(1, 1, 0, 0), *b = new_node(1, 1, 0, 0);
        struct gossip *c = new_node(1, 1, 0, 0);
        merge_in_batches(a, in, n, &rng);
        merge_in_batches(b, shuffled, n, &rng);
        gossip_merge(c, 9, shuffled, n, 0);

        struct gossip_state sa[16], sb[16], sc[16], again[16];
        size_t na = gossip_states(a, sa, 16), nb = gossip_states(b, sb, 16);
        size_t nc = gossip_states(c, sc, 16);
        CHECK(na == nb && na == nc);
        for (size_t i = 0; i < na && i < nb && i < nc; i++) {
            CHECK(state_eq(&sa[i], &sb[i]));
            CHECK(state_eq(&sa[i], &sc[i]));
        }
        /* and what they hold is, for each node, the largest pair sent */
        for (uint32_t id = 2; id <= 12; id++) {
            const struct gossip_state *best = NULL;
            for (size_t i = 0; i < n; i++)
                if (in[i].id == id &&
                    (best == NULL ||
                     newer(in[i].generation, in[i].version, best->generation, best->version)))
                    best = &in[i];
            const struct gossip_state *held = gossip_get(a, id);
            CHECK((best == NULL) == (held == NULL));
            if (best != NULL && held != NULL)
                CHECK(state_eq(best, held));
        }
        /* again: nothing moves, and nothing newer is left to tell them */
        uint64_t e = gossip_epoch(a);
        merge_in_batches(a, shuffled, n, &rng);
        CHECK(gossip_epoch(a) == e);
        CHECK_EQ_INT(gossip_states(a, again, 16), na);
        for (size_t i = 0; i < na; i++)
            CHECK(state_eq(&sa[i], &again[i]));
        CHECK(!gossip_merge(a, 9, sa, na, 0));
        CHECK(gossip__check(a) == 0);
        gossip_free(a);
        gossip_free(b);
        gossip_free(c);
    }
}

TEST(gossip_our_pair_ends_past_every_state_sent_for_us)
{
    uint64_t rng = 99;
    for (int trial = 0; trial < 300; trial++) {
        uint64_t g0 = 1 + splitmix64(&rng) % 3, v0 = splitmix64(&rng) % 10;
        struct gossip *g = new_node(1, g0, v0, 0);
        struct gossip_state in[20];
        size_t n = 1 + splitmix64(&rng) % 20;
        for (size_t i = 0; i < n; i++) {
            uint32_t id = 1 + (uint32_t)(splitmix64(&rng) % 3);
            uint64_t gen = 1 + splitmix64(&rng) % 4;
            in[i] = node_state(id, gen, splitmix64(&rng) % 40);
        }
        merge_in_batches(g, in, n, &rng);
        const struct gossip_state *me = gossip_get(g, 1);
        CHECK(!newer(g0, v0, me->generation, me->version));
        bool jumped = false;
        for (size_t i = 0; i < n; i++) {
            if (in[i].id != 1)
                continue;
            /* never behind anything said of us (equal is no news) */
            CHECK(!newer(in[i].generation, in[i].version, me->generation, me->version));
            jumped |= newer(in[i].generation, in[i].version, g0, v0);
        }
        CHECK(jumped == newer(me->generation, me->version, g0, v0));
        gossip_free(g);
    }
}

/* ---- codec ---- */

static char errbuf[256];

static int decode(const void *p, size_t len, struct gossip_state *out, size_t max, size_t *n)
{
    errbuf[0] = '\0';
    int rc = gossip_decode(p, len, out, max, n, errbuf, sizeof(errbuf));
    if (rc != 0)
        CHECK(errbuf[0] != '\0'); /* says what */
    return rc;
}

TEST(gossip_codec_has_the_documented_layout)
{
    struct gossip_state s = mkstate(0x01020304, 5, 0x0102, GOSSIP_NORMAL, "a.b");
    s.peer_port = 7001;
    s.client_port = 6001;
    struct tbuf b = {0};
    gossip_encode(&s, 1, &b);
    static const unsigned char want[] = {
        1,    1,    0,                                    /* version, count */
        4,    3,    2,    1,                              /* id */
        5,    0,    0,    0,    0, 0, 0, 0,               /* generation */
        2,    1,    0,    0,    0, 0, 0, 0,               /* version */
        2,                                                /* status */
        0x59, 0x1b, 0x71, 0x17,                           /* ports */
        3,    'a',  '.',  'b'};                           /* host */
    CHECK(b.len == sizeof(want) && memcmp(b.data, want, sizeof(want)) == 0);
    tbuf_reset(&b);
    gossip_encode(NULL, 0, &b);
    CHECK(b.len == 3);
    struct gossip_state out[1];
    size_t n = 9;
    CHECK_EQ_INT(decode(b.data, b.len, out, 0, &n), 0);
    CHECK_EQ_INT(n, 0);
    tbuf_free(&b);
}

static void random_host(uint64_t *rng, char *h, size_t len)
{
    for (size_t i = 0; i < len; i++)
        h[i] = (char)('!' + splitmix64(rng) % ('~' - '!' + 1));
    h[len] = '\0';
}

TEST(gossip_codec_round_trips_random_lists_up_to_the_limit)
{
    uint64_t rng = 5;
    static struct gossip_state in[GOSSIP_NODES_MAX], out[GOSSIP_NODES_MAX];
    for (int trial = 0; trial < 200; trial++) {
        size_t n = trial == 0 ? GOSSIP_NODES_MAX : splitmix64(&rng) % (GOSSIP_NODES_MAX + 1);
        for (size_t i = 0; i < n; i++) {
            uint64_t x = splitmix64(&rng);
            memset(&in[i], 0, sizeof(in[i]));
            in[i].id = (uint32_t)(i * 977 + 1 + (trial == 0 ? UINT32_MAX - 977 * 64 : x % 977));
            in[i].generation = splitmix64(&rng);
            in[i].version = splitmix64(&rng);
            in[i].status = (uint8_t)(1 + x % 4);
            in[i].peer_port = (uint16_t)(x >> 16);
            in[i].client_port = (uint16_t)(x >> 32);
            random_host(&rng, in[i].host, trial == 0 ? GOSSIP_HOST_MAX : 1 + (x >> 48) % 255);
        }
        struct tbuf b = {0}, again = {0};
        gossip_encode(in, n, &b);
        size_t m = 0;
        CHECK_EQ_INT(decode(b.data, b.len, out, GOSSIP_NODES_MAX, &m), 0);
        CHECK_EQ_INT(m, n);
        for (size_t i = 0; i < n && i < m; i++)
            CHECK(state_eq(&in[i], &out[i]));
        gossip_encode(out, m, &again);
        CHECK(again.len == b.len && memcmp(again.data, b.data, b.len) == 0);
        if (n > 0) /* one over the caller's limit */
            CHECK_EQ_INT(decode(b.data, b.len, out, n - 1, &m), TRIAD_EPROTO);
        tbuf_free(&b);
        tbuf_free(&again);
    }
}

/* A valid two-state encoding to break. */
static void valid_two(struct tbuf *b)
{
    struct gossip_state s[2] = {node_state(1, 1, 1), node_state(2, 2, 2)};
    gossip_encode(s, 2, b);
}

#define OFF_STATE1 3
#define OFF_STATUS1 (OFF_STATE1 + 20)
#define OFF_HOSTLEN1 (OFF_STATE1 + 25)

TEST(gossip_decode_rejects_every_malformed_case)
{
    struct gossip_state out[GOSSIP_NODES_MAX];
    size_t n;
    struct tbuf b = {0};
    valid_two(&b);
    CHECK_EQ_INT(decode(b.data, b.len, out, 2, &n), 0);
    CHECK_EQ_INT(n, 2);

    /* every strict prefix */
    for (size_t len = 0; len < b.len; len++) {
        n = 7;
        CHECK_EQ_INT(decode(b.data, len, out, 2, &n), TRIAD_EPROTO);
        CHECK_EQ_INT(n, 0);
    }
    CHECK_EQ_INT(decode(NULL, 0, out, 2, &n), TRIAD_EPROTO);

    struct tbuf m = {0};
#define MUTATED(stmt)                    \
    do {                                 \
        tbuf_reset(&m);                  \
        tbuf_append(&m, b.data, b.len);  \
        stmt;                            \
    } while (0)

    MUTATED(m.data[0] = 2); /* version */
    CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    MUTATED(m.data[0] = 0);
    CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    MUTATED(tbuf_appendc(&m, 0)); /* trailing byte */
    CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    MUTATED(m.data[1] = 1); /* says one state, carries two */
    CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    MUTATED(m.data[1] = 3); /* says three, carries two */
    CHECK_EQ_INT(decode(m.data, m.len, out, 3, &n), TRIAD_EPROTO);
    CHECK_EQ_INT(decode(b.data, b.len, out, 1, &n), TRIAD_EPROTO); /* count > max */
    MUTATED(memset(m.data + OFF_STATE1, 0, 4)); /* id 0 */
    CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    static const uint8_t bad_status[] = {0, 5, 255};
    for (size_t i = 0; i < sizeof(bad_status); i++) {
        MUTATED(m.data[OFF_STATUS1] = (char)bad_status[i]);
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    }
    for (uint8_t st = 1; st <= 4; st++) {
        MUTATED(m.data[OFF_STATUS1] = (char)st);
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), 0);
        CHECK(out[0].status == st);
    }
    static const char bad_host[] = {' ', 0x7f, (char)0x80, '\0', '\n', (char)0xff};
    for (size_t i = 0; i < sizeof(bad_host); i++) {
        MUTATED(m.data[OFF_HOSTLEN1 + 2] = bad_host[i]);
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    }
    /* an empty host: the length byte 0, the host bytes gone */
    {
        size_t hl = (uint8_t)b.data[OFF_HOSTLEN1];
        tbuf_reset(&m);
        tbuf_append(&m, b.data, OFF_HOSTLEN1);
        tbuf_appendc(&m, 0);
        tbuf_append(&m, b.data + OFF_HOSTLEN1 + 1 + hl, b.len - (OFF_HOSTLEN1 + 1 + hl));
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    }
    /* the second state's host length: past the end, or short of it */
    {
        size_t hostlen2 = OFF_HOSTLEN1 + 1 + (uint8_t)b.data[OFF_HOSTLEN1] + 25;
        MUTATED(m.data[hostlen2] = (char)200);
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
        MUTATED(m.data[hostlen2] = 3);
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
        MUTATED(m.data[hostlen2] = 0);
        CHECK_EQ_INT(decode(m.data, m.len, out, 2, &n), TRIAD_EPROTO);
    }
    /* duplicate ids */
    {
        struct gossip_state s[3] = {node_state(4, 1, 1), node_state(5, 1, 1),
                                    node_state(4, 2, 2)};
        tbuf_reset(&m);
        gossip_encode(s, 3, &m);
        CHECK_EQ_INT(decode(m.data, m.len, out, 3, &n), TRIAD_EPROTO);
        tbuf_reset(&m);
        gossip_encode(s, 2, &m);
        CHECK_EQ_INT(decode(m.data, m.len, out, 3, &n), 0);
    }
#undef MUTATED
    tbuf_free(&m);
    tbuf_free(&b);
}

/* ---- an in-process cluster ---- */

#define SIM_NODES_MAX 20
#define SIM_QUEUE_MAX 4096
#define SIM_STEP_MS 10
#define SIM_LATENCY_MS_MIN 10
#define SIM_LATENCY_MS_MAX 60
#define SIM_LOSS_PERCENT 10
#define SIM_INTERVAL_MS 1000

struct sim_msg {
    uint64_t at_ms;
    uint32_t from, to;
    bool reply;
    struct tbuf bytes; /* gossip_encode of the sender's states */
};

struct sim {
    uint64_t seed, rng, now_ms;
    uint32_t n; /* nodes 1..n */
    struct gossip *g[SIM_NODES_MAX + 1];
    bool up[SIM_NODES_MAX + 1];
    uint64_t gen[SIM_NODES_MAX + 1];
    /* what each node last held for each other: it must never go back */
    uint64_t seen_gen[SIM_NODES_MAX + 1][SIM_NODES_MAX + 1];
    uint64_t seen_ver[SIM_NODES_MAX + 1][SIM_NODES_MAX + 1];
    struct sim_msg q[SIM_QUEUE_MAX];
    size_t nq;
    int violations;
};

static void sim_fail(struct sim *s, const char *what, uint32_t a, uint32_t b)
{
    if (s->violations++ < 5)
        fprintf(stderr, "  sim seed %" PRIu64 " at %" PRIu64 " ms: %s (%u, %u)\n", s->seed,
                s->now_ms, what, a, b);
}

/* Node id starts (or restarts) now with this pair; every node knows node 1
 * from configuration. Its first round comes within one interval. */
static void sim_start(struct sim *s, uint32_t id, uint64_t gen, uint64_t ver)
{
    struct gossip_config cfg;
    gossip_config_default(&cfg);
    cfg.interval_ms = SIM_INTERVAL_MS;
    struct gossip_state self = node_state(id, gen, ver);
    gossip_free(s->g[id]);
    s->g[id] = gossip_new(&self, &cfg, s->now_ms + splitmix64(&s->rng) % SIM_INTERVAL_MS);
    if (id != 1)
        gossip_add_seed(s->g[id], 1);
    s->up[id] = true;
    s->gen[id] = gen;
    memset(s->seen_gen[id], 0, sizeof(s->seen_gen[id]));
    memset(s->seen_ver[id], 0, sizeof(s->seen_ver[id]));
}

static void sim_init(struct sim *s, uint64_t seed, uint32_t n)
{
    TRIAD_ASSERT(n <= SIM_NODES_MAX);
    memset(s, 0, sizeof(*s));
    s->seed = s->rng = seed;
    s->now_ms = 1000;
    s->n = n;
    for (uint32_t id = 1; id <= n; id++)
        sim_start(s, id, 1, 0);
}

static void sim_free(struct sim *s)
{
    for (uint32_t id = 1; id <= s->n; id++) {
        if (gossip__check(s->g[id]) != 0)
            sim_fail(s, "gossip__check", id, 0);
        gossip_free(s->g[id]);
    }
    for (size_t i = 0; i < s->nq; i++)
        tbuf_free(&s->q[i].bytes);
}

static void sim_send(struct sim *s, uint32_t from, uint32_t to, bool reply)
{
    if (splitmix64(&s->rng) % 100 < SIM_LOSS_PERCENT)
        return;
    TRIAD_ASSERT(s->nq < SIM_QUEUE_MAX);
    struct sim_msg *m = &s->q[s->nq++];
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n = gossip_states(s->g[from], st, GOSSIP_NODES_MAX);
    memset(m, 0, sizeof(*m));
    m->at_ms = s->now_ms + SIM_LATENCY_MS_MIN +
               splitmix64(&s->rng) % (SIM_LATENCY_MS_MAX - SIM_LATENCY_MS_MIN + 1);
    m->from = from;
    m->to = to;
    m->reply = reply;
    gossip_encode(st, n, &m->bytes);
}

static void sim_deliver(struct sim *s, struct sim_msg *m)
{
    if (!s->up[m->to])
        return; /* a stopped node hears nothing */
    struct gossip_state st[GOSSIP_NODES_MAX];
    size_t n;
    char err[128];
    if (gossip_decode(m->bytes.data, m->bytes.len, st, GOSSIP_NODES_MAX, &n, err, sizeof(err))) {
        sim_fail(s, err, m->from, m->to);
        return;
    }
    /* push-pull: the receiver answers with its states when it knows more */
    if (gossip_merge(s->g[m->to], m->from, st, n, s->now_ms) && !m->reply)
        sim_send(s, m->to, m->from, true);
}

/* Invariants after every step. */
static void sim_check(struct sim *s)
{
    for (uint32_t i = 1; i <= s->n; i++) {
        if (!s->up[i])
            continue;
        for (uint32_t j = 1; j <= s->n; j++) {
            const struct gossip_state *x = gossip_get(s->g[i], j);
            if (x == NULL)
                continue;
            if (newer(s->seen_gen[i][j], s->seen_ver[i][j], x->generation, x->version))
                sim_fail(s, "a node's view of another went back", i, j);
            s->seen_gen[i][j] = x->generation;
            s->seen_ver[i][j] = x->version;
        }
    }
}

static void sim_step(struct sim *s)
{
    s->now_ms += SIM_STEP_MS;
    for (uint32_t id = 1; id <= s->n; id++) {
        if (!s->up[id])
            continue;
        uint32_t to = gossip_tick(s->g[id], s->now_ms, splitmix64(&s->rng));
        if (to == 0)
            continue;
        const struct gossip_state *t = gossip_get(s->g[id], to);
        if (to == id || to > s->n)
            sim_fail(s, "gossiped to a node that is not another", id, to);
        else if (t != NULL && t->status == GOSSIP_LEFT)
            sim_fail(s, "gossiped to a node known to have left", id, to);
        else
            sim_send(s, id, to, false);
    }
    size_t due = s->nq, k = 0;
    for (size_t i = 0; i < due; i++)
        if (s->q[i].at_ms <= s->now_ms)
            sim_deliver(s, &s->q[i]); /* may append past `due`: never due now */
    for (size_t i = 0; i < s->nq; i++) {
        if (i < due && s->q[i].at_ms <= s->now_ms)
            tbuf_free(&s->q[i].bytes);
        else
            s->q[k++] = s->q[i];
    }
    s->nq = k;
    sim_check(s);
}

/* Steps until cond holds or ms_max pass; returns the time it took, or
 * UINT64_MAX. */
typedef bool sim_cond(struct sim *s, const void *arg);
static uint64_t sim_run_until(struct sim *s, sim_cond *cond, const void *arg, uint64_t ms_max)
{
    uint64_t start = s->now_ms;
    while (!cond(s, arg)) {
        if (s->now_ms - start >= ms_max)
            return UINT64_MAX;
        sim_step(s);
    }
    return s->now_ms - start;
}

static void sim_run(struct sim *s, uint64_t ms)
{
    uint64_t end = s->now_ms + ms;
    while (s->now_ms < end)
        sim_step(s);
}

/* Every running node holds a state of every other, at least as new as
 * `floor` (per node; NULL: any). */
struct pairs {
    uint64_t gen[SIM_NODES_MAX + 1], ver[SIM_NODES_MAX + 1];
};

static bool sim_all_hold(struct sim *s, const void *arg)
{
    const struct pairs *floor = arg;
    for (uint32_t i = 1; i <= s->n; i++) {
        if (!s->up[i])
            continue;
        for (uint32_t j = 1; j <= s->n; j++) {
            const struct gossip_state *x = gossip_get(s->g[i], j);
            if (x == NULL)
                return false;
            if (floor != NULL && newer(floor->gen[j], floor->ver[j], x->generation, x->version))
                return false;
        }
    }
    return true;
}

static void sim_snapshot(struct sim *s, struct pairs *p)
{
    for (uint32_t j = 1; j <= s->n; j++) {
        const struct gossip_state *me = gossip_get(s->g[j], j);
        p->gen[j] = me->generation;
        p->ver[j] = me->version;
    }
}

struct alive_arg {
    uint32_t id;
    bool alive;
    uint64_t gen; /* with alive: and they hold this generation of it */
};

/* Every other running node sees node `id` as alive (or dead). */
static bool sim_all_see(struct sim *s, const void *arg)
{
    const struct alive_arg *a = arg;
    for (uint32_t i = 1; i <= s->n; i++) {
        if (!s->up[i] || i == a->id)
            continue;
        if (gossip_alive(s->g[i], a->id, s->now_ms) != a->alive)
            return false;
        if (a->alive && gossip_get(s->g[i], a->id)->generation != a->gen)
            return false;
    }
    return true;
}

/* How many (observer, node) pairs of running nodes see the other as dead. */
static int sim_suspicions(struct sim *s)
{
    int k = 0;
    for (uint32_t i = 1; i <= s->n; i++)
        for (uint32_t j = 1; j <= s->n; j++)
            if (s->up[i] && s->up[j] && !gossip_alive(s->g[i], j, s->now_ms))
                k++;
    return k;
}

#define ROUNDS(ms) ((ms) == UINT64_MAX ? 9999 : (int)((ms) / SIM_INTERVAL_MS))

TEST(gossip_cluster_converges_within_a_bounded_number_of_rounds)
{
    static struct sim s;
    static const uint32_t sizes[] = {5, 10, 20};
    int worst_join = 0, worst_spread = 0;
    for (size_t z = 0; z < TRIAD_ARRAY_LEN(sizes); z++) {
        for (uint64_t seed = 1; seed <= 8; seed++) {
            sim_init(&s, seed * 1000 + sizes[z], sizes[z]);
            /* from cold, every node knowing only node 1 */
            uint64_t join = sim_run_until(&s, sim_all_hold, NULL, 60000);
            /* then: everyone's state of now reaches everyone */
            struct pairs p;
            sim_snapshot(&s, &p);
            uint64_t spread = sim_run_until(&s, sim_all_hold, &p, 60000);
            if (ROUNDS(join) > 30 || ROUNDS(spread) > 15 || s.violations)
                fprintf(stderr, "  seed %" PRIu64 " (%u nodes): join %d rounds, spread %d\n",
                        s.seed, s.n, ROUNDS(join), ROUNDS(spread));
            CHECK(ROUNDS(join) <= 30);
            CHECK(ROUNDS(spread) <= 15);
            CHECK_EQ_INT(s.violations, 0);
            worst_join = TRIAD_MAX(worst_join, ROUNDS(join));
            worst_spread = TRIAD_MAX(worst_spread, ROUNDS(spread));
            sim_free(&s);
        }
    }
    printf("  cluster: worst join %d rounds, worst spread %d rounds\n", worst_join, worst_spread);
}

TEST(gossip_cluster_convicts_a_stopped_node_and_revives_it_after_restart)
{
    static struct sim s;
    static const uint32_t victims[] = {1, 4, 7, 10}; /* node 1, everyone's seed, too */
    uint64_t worst_ms = 0;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        sim_init(&s, 77 + seed, 10);
        CHECK(sim_run_until(&s, sim_all_hold, NULL, 60000) != UINT64_MAX);
        /* steady state: a minute with nobody suspected, ever */
        int suspicions = 0;
        for (int i = 0; i < 600; i++) {
            sim_run(&s, 100);
            suspicions += sim_suspicions(&s);
        }
        CHECK_EQ_INT(suspicions, 0);

        uint32_t k = victims[seed - 1];
        s.up[k] = false;
        uint64_t stop = s.now_ms;
        struct alive_arg dead = {k, false, 0};
        sim_run(&s, 10000);
        /* 10 s of silence at a mean of >= 1 s is phi <= 4.4 */
        CHECK(sim_suspicions(&s) == 0);
        for (uint32_t i = 1; i <= s.n; i++)
            CHECK(i == k || gossip_alive(s.g[i], k, s.now_ms));
        uint64_t took = sim_run_until(&s, sim_all_see, &dead, 60000);
        took = took == UINT64_MAX ? took : s.now_ms - stop;
        /* 8 / log10(e) = 18.4 mean intervals, and a node hears of another's
         * heartbeats every 1 to 2.5 s */
        CHECK(took <= 60000);
        /* nobody else was suspected on the way */
        CHECK(sim_suspicions(&s) == 0);

        sim_run(&s, 5000);
        sim_start(&s, k, s.gen[k] + 1, 0);
        struct alive_arg back = {k, true, s.gen[k]};
        uint64_t revived = sim_run_until(&s, sim_all_see, &back, 60000);
        CHECK(ROUNDS(revived) <= 10);
        sim_run(&s, 30000);
        CHECK(sim_suspicions(&s) == 0);
        CHECK_EQ_INT(s.violations, 0);
        worst_ms = TRIAD_MAX(worst_ms, took);
        if (took == UINT64_MAX || took > 60000 || ROUNDS(revived) > 10)
            fprintf(stderr, "  seed %" PRIu64 ": convicted in %d ms, revived in %d rounds\n",
                    s.seed, took == UINT64_MAX ? -1 : (int)took, ROUNDS(revived));
        sim_free(&s);
    }
    printf("  cluster: worst conviction %" PRIu64 " ms after the stop\n", worst_ms);
}

static bool sim_caught_up(struct sim *s, const void *arg)
{
    const struct pairs *p = arg; /* of the restarted node only */
    for (uint32_t i = 1; i <= s->n; i++) {
        for (uint32_t j = 1; j <= s->n; j++) {
            const struct gossip_state *x = gossip_get(s->g[i], j);
            if (p->gen[j] == 0)
                continue;
            if (x == NULL || !newer(x->generation, x->version, p->gen[j], p->ver[j]))
                return false;
        }
    }
    return true;
}

TEST(gossip_restarted_node_with_a_lower_version_jumps_past_what_others_remember)
{
    static struct sim s;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        sim_init(&s, 500 + seed, 6);
        CHECK(sim_run_until(&s, sim_all_hold, NULL, 60000) != UINT64_MAX);
        sim_run(&s, 30000);
        uint32_t k = 2 + (uint32_t)(seed % 5);
        /* the highest version of k anyone remembers */
        struct pairs p;
        memset(&p, 0, sizeof(p));
        for (uint32_t i = 1; i <= s.n; i++) {
            const struct gossip_state *x = gossip_get(s.g[i], k);
            if (newer(x->generation, x->version, p.gen[k], p.ver[k])) {
                p.gen[k] = x->generation;
                p.ver[k] = x->version;
            }
        }
        CHECK(p.ver[k] >= 25);
        s.up[k] = false;
        sim_run(&s, 3000);
        /* same generation, counting from 0 again */
        sim_start(&s, k, s.gen[k], 0);
        uint64_t took = sim_run_until(&s, sim_caught_up, &p, 60000);
        CHECK(ROUNDS(took) <= 10);
        /* and it is, by everyone, alive */
        sim_run(&s, 20000);
        CHECK(sim_suspicions(&s) == 0);
        CHECK_EQ_INT(s.violations, 0);
        sim_free(&s);
    }
}

struct status_arg {
    uint32_t id;
    uint8_t status;
};

static bool sim_all_see_status(struct sim *s, const void *arg)
{
    const struct status_arg *a = arg;
    for (uint32_t i = 1; i <= s->n; i++) {
        const struct gossip_state *x = gossip_get(s->g[i], a->id);
        if (x == NULL || x->status != a->status)
            return false;
    }
    return true;
}

TEST(gossip_status_changes_spread_and_move_every_epoch)
{
    static struct sim s;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        sim_init(&s, 9000 + seed, 10);
        CHECK(sim_run_until(&s, sim_all_hold, NULL, 60000) != UINT64_MAX);
        sim_run(&s, 5000);
        uint32_t k = 1 + (uint32_t)(seed * 3 % 10);
        uint64_t epoch[SIM_NODES_MAX + 1];
        for (uint32_t i = 1; i <= s.n; i++)
            epoch[i] = gossip_epoch(s.g[i]);

        gossip_set_status(s.g[k], GOSSIP_LEAVING);
        struct status_arg leaving = {k, GOSSIP_LEAVING};
        CHECK(ROUNDS(sim_run_until(&s, sim_all_see_status, &leaving, 60000)) <= 15);
        for (uint32_t i = 1; i <= s.n; i++) {
            CHECK(gossip_epoch(s.g[i]) > epoch[i]);
            epoch[i] = gossip_epoch(s.g[i]);
        }
        /* heartbeats alone move no epoch */
        sim_run(&s, 5000);
        for (uint32_t i = 1; i <= s.n; i++)
            CHECK(gossip_epoch(s.g[i]) == epoch[i]);

        gossip_set_status(s.g[k], GOSSIP_LEFT);
        struct status_arg left = {k, GOSSIP_LEFT};
        CHECK(ROUNDS(sim_run_until(&s, sim_all_see_status, &left, 60000)) <= 15);
        for (uint32_t i = 1; i <= s.n; i++)
            CHECK(gossip_epoch(s.g[i]) > epoch[i]);
        /* the node that left stops; the others never gossip to it again
         * (sim_step counts that as a violation) and keep its LEFT state */
        s.up[k] = false;
        sim_run(&s, 30000);
        CHECK(sim_all_see_status(&s, &left));
        CHECK_EQ_INT(s.violations, 0);
        sim_free(&s);
    }
}

int main(void)
{
    RUN(phi_is_zero_before_the_first_arrival_then_rises_with_silence);
    RUN(phi_stays_low_with_regular_arrivals);
    RUN(phi_crosses_8_after_18_4_seconds_of_silence_at_a_1_second_mean);
    RUN(phi_window_keeps_the_mean_of_the_last_PHI_WINDOW_intervals);
    RUN(phi_counts_a_zero_interval_as_one_ms);
    RUN(gossip_tick_runs_a_round_every_interval_and_bumps_our_version);
    RUN(gossip_tick_picks_uniformly_among_the_others_never_self_nor_left);
    RUN(gossip_alive_is_self_always_seeds_never_others_by_phi);
    RUN(gossip_merge_answers_when_we_hold_newer_or_unsent_states);
    RUN(gossip_merge_jumps_our_version_past_a_newer_state_for_us);
    RUN(gossip_new_generation_resets_phi_and_counts_as_an_arrival);
    RUN(gossip_does_not_convict_a_new_node_after_a_burst_of_first_arrivals);
    RUN(gossip_epoch_moves_on_a_new_node_status_or_address_only);
    RUN(gossip_merge_skips_states_that_break_the_rules);
    RUN(gossip_table_drops_states_past_GOSSIP_NODES_MAX);
    RUN(gossip_merge_is_idempotent_and_order_independent);
    RUN(gossip_our_pair_ends_past_every_state_sent_for_us);
    RUN(gossip_codec_has_the_documented_layout);
    RUN(gossip_codec_round_trips_random_lists_up_to_the_limit);
    RUN(gossip_decode_rejects_every_malformed_case);
    RUN(gossip_cluster_converges_within_a_bounded_number_of_rounds);
    RUN(gossip_cluster_convicts_a_stopped_node_and_revives_it_after_restart);
    RUN(gossip_restarted_node_with_a_lower_version_jumps_past_what_others_remember);
    RUN(gossip_status_changes_spread_and_move_every_epoch);
    return test_summary("gossip");
}
