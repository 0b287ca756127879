/* test_sim.c - the simulator itself: runs replay exactly, clean seeds pass,
 * and every planted bug is caught by the checks within 10,000 seeds (which
 * is what shows the checks can fail). */
#include <stdlib.h>
#include <string.h>

#include "../../sim/sim.h"
#include "../../src/core/raft.h"
#include "test.h"

#define T_BUG_SEEDS_MAX 10000

TEST(sim_same_seed_replays_the_same_run)
{
    struct tbuf h1 = {0}, h2 = {0}, t1 = {0}, t2 = {0};
    struct sim_options o1 = {.seed = 7, .history = &h1, .trace = &t1};
    struct sim_options o2 = {.seed = 7, .history = &h2, .trace = &t2};
    struct sim_result r1, r2;
    CHECK_EQ_INT(sim_run(&o1, &r1), 0);
    CHECK_EQ_INT(sim_run(&o2, &r2), 0);
    CHECK_EQ_INT(r1.steps, r2.steps);
    CHECK_EQ_INT(r1.ops, r2.ops);
    CHECK_EQ_INT(r1.sim_ms, r2.sim_ms);
    CHECK(r1.ops > 0);
    CHECK(h1.len > 0 && h1.len == h2.len && memcmp(h1.data, h2.data, h1.len) == 0);
    CHECK(t1.len > 0 && t1.len == t2.len && memcmp(t1.data, t2.data, t1.len) == 0);
    tbuf_free(&h1);
    tbuf_free(&h2);
    tbuf_free(&t1);
    tbuf_free(&t2);
}

TEST(sim_different_seeds_make_different_runs)
{
    struct sim_options o1 = {.seed = 1}, o2 = {.seed = 2};
    struct sim_result r1, r2;
    CHECK_EQ_INT(sim_run(&o1, &r1), 0);
    CHECK_EQ_INT(sim_run(&o2, &r2), 0);
    CHECK(r1.steps != r2.steps || r1.ops != r2.ops);
}

TEST(sim_clean_seeds_pass_every_check)
{
    for (uint64_t seed = 100; seed < 130; seed++) {
        struct sim_options o = {.seed = seed};
        struct sim_result r;
        int rc = sim_run(&o, &r);
        if (rc != 0)
            fprintf(stderr, "  seed %llu: %s\n", (unsigned long long)seed, r.what);
        CHECK_EQ_INT(rc, 0);
        CHECK(r.ops > 0);
        CHECK(r.faults > 0);
        CHECK(r.lin_result != 1 /* LIN_RESULT_VIOLATION */);
    }
}

TEST(sim_history_dump_is_json_lines)
{
    struct tbuf h = {0};
    struct sim_options o = {.seed = 3, .history = &h};
    struct sim_result r;
    CHECK_EQ_INT(sim_run(&o, &r), 0);
    CHECK(h.len > 0 && h.data[0] == '{' && h.data[h.len - 1] == '\n');
    size_t lines = 0;
    for (size_t i = 0; i < h.len; i++)
        lines += h.data[i] == '\n';
    CHECK_EQ_INT(lines, r.ops);
    tbuf_free(&h);
}

/* Seeds from 1 until the checks fail; 0 if they never did. */
static uint64_t t_seeds_to_catch(uint32_t bug, char *what, size_t what_len)
{
    for (uint64_t seed = 1; seed <= T_BUG_SEEDS_MAX; seed++) {
        struct sim_options o = {.seed = seed, .bugs = bug};
        struct sim_result r;
        if (sim_run(&o, &r) != 0) {
            snprintf(what, what_len, "%s", r.what);
            return seed;
        }
    }
    return 0;
}

static void t_planted(const char *name)
{
    uint32_t bug = sim_bug_by_name(name);
    CHECK(bug != 0);
    char what[512] = "";
    uint64_t n = t_seeds_to_catch(bug, what, sizeof(what));
    printf("  %s: caught after %llu seeds: %s\n", name, (unsigned long long)n, what);
    CHECK(n >= 1 && n <= T_BUG_SEEDS_MAX);
}

TEST(sim_catches_commit_without_a_majority) { t_planted("commit-minority"); }
TEST(sim_catches_two_votes_in_one_term) { t_planted("vote-twice"); }
TEST(sim_catches_acknowledging_before_fsync) { t_planted("ack-before-fsync"); }
TEST(sim_catches_applying_an_uncommitted_entry) { t_planted("apply-uncommitted"); }
TEST(sim_catches_lease_reads_without_check_quorum) { t_planted("lease-without-checkquorum"); }

TEST(sim_unknown_bug_name_is_zero)
{
    CHECK_EQ_INT(sim_bug_by_name("no-such-bug"), 0);
    CHECK_EQ_INT(sim_bug_by_name("vote-twice"), RAFT_BUG_VOTE_TWICE);
}

int main(void)
{
    RUN(sim_same_seed_replays_the_same_run);
    RUN(sim_different_seeds_make_different_runs);
    RUN(sim_clean_seeds_pass_every_check);
    RUN(sim_history_dump_is_json_lines);
    RUN(sim_catches_commit_without_a_majority);
    RUN(sim_catches_two_votes_in_one_term);
    RUN(sim_catches_acknowledging_before_fsync);
    RUN(sim_catches_applying_an_uncommitted_entry);
    RUN(sim_catches_lease_reads_without_check_quorum);
    RUN(sim_unknown_bug_name_is_zero);
    return test_summary("sim");
}
