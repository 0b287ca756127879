/* test_dsim.c - the leaderless simulator: runs replay exactly, clean seeds
 * pass every check while the workload really makes the situations the
 * checks are about (siblings, hints, read repair, anti-entropy, crashes,
 * a replaced disk), and every planted bug is caught within a bounded
 * number of seeds (which is what shows the checks can fail). */
#include <stdlib.h>
#include <string.h>

#include "../../sim/dsim.h"
#include "../../src/core/dynamo.h"
#include "test.h"

#define T_CLEAN_SEEDS 300
#define T_BUG_SEEDS_MAX 2000

TEST(dsim_same_seed_replays_the_same_run)
{
    struct tbuf t1 = {0}, t2 = {0};
    struct dsim_options o1 = {.seed = 11, .trace = &t1};
    struct dsim_options o2 = {.seed = 11, .trace = &t2};
    struct dsim_result r1, r2;
    CHECK_EQ_INT(dsim_run(&o1, &r1), 0);
    CHECK_EQ_INT(dsim_run(&o2, &r2), 0);
    CHECK_EQ_INT(r1.steps, r2.steps);
    CHECK_EQ_INT(r1.ops, r2.ops);
    CHECK_EQ_INT(r1.sim_ms, r2.sim_ms);
    CHECK_EQ_INT(r1.msgs_delivered, r2.msgs_delivered);
    CHECK(r1.ops > 0);
    CHECK(t1.len > 0 && t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0);
    /* tracing does not change the run */
    struct dsim_options o3 = {.seed = 11};
    struct dsim_result r3;
    CHECK_EQ_INT(dsim_run(&o3, &r3), 0);
    CHECK_EQ_INT(r3.steps, r1.steps);
    tbuf_free(&t1);
    tbuf_free(&t2);
}

TEST(dsim_different_seeds_make_different_runs)
{
    struct dsim_options o1 = {.seed = 1}, o2 = {.seed = 2};
    struct dsim_result r1, r2;
    CHECK_EQ_INT(dsim_run(&o1, &r1), 0);
    CHECK_EQ_INT(dsim_run(&o2, &r2), 0);
    CHECK(r1.steps != r2.steps || r1.ops != r2.ops);
}

/* Every check passes on a range of seeds without a bug, and across them
 * the workload reaches what the checks are about: otherwise a pass would
 * say little. */
TEST(dsim_clean_seeds_pass_every_check_and_cover_the_protocol)
{
    uint64_t sizes[6] = {0}, sloppy = 0, strict_overlap = 0, weak = 0;
    uint64_t acked = 0, sib_reads = 0, hints = 0, repairs = 0, ae = 0, crashes = 0, wipes = 0;
    uint64_t pauses = 0, jumps = 0, partitions = 0, failed_ops = 0, no_fault = 0;
    for (uint64_t seed = 1; seed <= T_CLEAN_SEEDS; seed++) {
        struct dsim_options o = {.seed = seed};
        struct dsim_result r;
        int rc = dsim_run(&o, &r);
        if (rc != 0)
            fprintf(stderr, "  seed %llu: %s\n    replay: triad sim --mode leaderless --seed %llu -v\n",
                    (unsigned long long)seed, r.what, (unsigned long long)seed);
        CHECK_EQ_INT(rc, 0);
        CHECK(r.ops > 0);
        CHECK(r.writes_acked > 0);
        sizes[r.nodes]++;
        sloppy += r.sloppy;
        strict_overlap += !r.sloppy && r.r + r.w > r.n;
        weak += r.r + r.w <= r.n;
        acked += r.writes_acked;
        sib_reads += r.reads_with_siblings;
        hints += r.hints_delivered;
        repairs += r.read_repairs;
        ae += r.ae_keys_repaired;
        crashes += r.crashes;
        wipes += r.wipes;
        pauses += r.pauses;
        jumps += r.clock_jumps;
        partitions += r.partitions;
        failed_ops += r.ops_failed + r.ops_timeout;
        no_fault += r.faults == 0;
    }
    printf("  %d seeds: %llu writes acknowledged, %llu reads with siblings, %llu hints delivered, "
           "%llu read repairs, %llu keys repaired by anti-entropy, %llu crashes, %llu disks "
           "replaced\n",
           T_CLEAN_SEEDS, (unsigned long long)acked, (unsigned long long)sib_reads,
           (unsigned long long)hints, (unsigned long long)repairs, (unsigned long long)ae,
           (unsigned long long)crashes, (unsigned long long)wipes);
    CHECK(sizes[3] > 0 && sizes[5] > 0);
    CHECK(sloppy > 0 && sloppy < T_CLEAN_SEEDS);
    CHECK(strict_overlap > 0);
    CHECK(weak > 0);
    CHECK(sib_reads > 0);
    CHECK(hints > 0);
    CHECK(repairs > 0);
    CHECK(ae > 0);
    CHECK(crashes > 0 && wipes > 0 && pauses > 0 && jumps > 0 && partitions > 0);
    CHECK(failed_ops > 0);
    CHECK_EQ_INT(no_fault, 0);
}

/* Seeds from 1 until the checks fail; 0 if they never did. */
static uint64_t t_seeds_to_catch(uint32_t bug, struct dsim_result *r)
{
    for (uint64_t seed = 1; seed <= T_BUG_SEEDS_MAX; seed++) {
        struct dsim_options o = {.seed = seed, .bugs = bug};
        if (dsim_run(&o, r) != 0)
            return seed;
    }
    return 0;
}

static void t_planted(const char *name)
{
    uint32_t bug = dsim_bug_by_name(name);
    CHECK(bug != 0);
    struct dsim_result r;
    uint64_t n = t_seeds_to_catch(bug, &r);
    printf("  %s: caught at seed %llu: %s\n", name, (unsigned long long)n, n ? r.what : "-");
    CHECK(n >= 1 && n <= T_BUG_SEEDS_MAX);
    if (n == 0)
        return;
    CHECK(r.check != DSIM_CHECK_NONE);
    /* the failure replays: the same seed fails the same way */
    struct dsim_options o = {.seed = n, .bugs = bug};
    struct dsim_result again;
    CHECK(dsim_run(&o, &again) != 0);
    CHECK(strcmp(again.what, r.what) == 0);
    /* and the seed passes without the bug */
    struct dsim_options clean = {.seed = n};
    struct dsim_result ok;
    CHECK_EQ_INT(dsim_run(&clean, &ok), 0);
}

TEST(dsim_catches_acknowledging_before_w_copies) { t_planted("ack-early"); }
TEST(dsim_catches_merging_by_clock_sum) { t_planted("causal"); }
TEST(dsim_catches_a_fallback_that_drops_its_hint) { t_planted("drop-hint"); }
TEST(dsim_catches_read_repair_that_replaces) { t_planted("repair-clobber"); }

TEST(dsim_bug_names_map_to_the_planted_bugs)
{
    CHECK_EQ_INT(dsim_bug_by_name("ack-early"), DYN_BUG_ACK_EARLY);
    CHECK_EQ_INT(dsim_bug_by_name("causal"), DYN_BUG_CAUSAL);
    CHECK_EQ_INT(dsim_bug_by_name("drop-hint"), DYN_BUG_DROP_HINT);
    CHECK_EQ_INT(dsim_bug_by_name("repair-clobber"), DYN_BUG_REPAIR_CLOBBER);
    CHECK_EQ_INT(dsim_bug_by_name("no-such-bug"), 0);
    CHECK_EQ_INT(dsim_bug_by_name("vote-twice"), 0); /* leader mode's */
}

int main(void)
{
    RUN(dsim_same_seed_replays_the_same_run);
    RUN(dsim_different_seeds_make_different_runs);
    RUN(dsim_clean_seeds_pass_every_check_and_cover_the_protocol);
    RUN(dsim_catches_acknowledging_before_w_copies);
    RUN(dsim_catches_merging_by_clock_sum);
    RUN(dsim_catches_a_fallback_that_drops_its_hint);
    RUN(dsim_catches_read_repair_that_replaces);
    RUN(dsim_bug_names_map_to_the_planted_bugs);
    return test_summary("dsim");
}
