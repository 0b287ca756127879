/* cli.c - `triad sim`: run seeds, report, print the replay command of a
 * failing seed. `--mode leaderless` hands over to dsim_main (dsim.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/core/raft.h"
#include "dsim.h"
#include "lincheck.h"
#include "sim.h"

static const struct {
    const char *name;
    uint32_t bug;
} sim__bugs[] = {
    {"commit-minority", RAFT_BUG_COMMIT_MINORITY},
    {"vote-twice", RAFT_BUG_VOTE_TWICE},
    {"ack-before-fsync", RAFT_BUG_ACK_BEFORE_PERSIST},
    {"apply-uncommitted", RAFT_BUG_APPLY_UNCOMMITTED},
    {"lease-without-checkquorum", RAFT_BUG_LEASE_NO_CHECKQ},
};

uint32_t sim_bug_by_name(const char *name)
{
    for (size_t i = 0; i < sizeof(sim__bugs) / sizeof(sim__bugs[0]); i++)
        if (strcmp(sim__bugs[i].name, name) == 0)
            return sim__bugs[i].bug;
    return 0;
}

static void sim__usage(FILE *f)
{
    fprintf(f,
            "Usage: triad sim [options]\n"
            "  --mode MODE         leader (default) or leaderless (triad sim --mode leaderless --help)\n"
            "  --seed N            first seed (default 1)\n"
            "  --seeds COUNT       how many seeds from N (default 1)\n"
            "  --bug NAME          plant a bug: commit-minority, vote-twice, ack-before-fsync,\n"
            "                      apply-uncommitted, lease-without-checkquorum\n"
            "  --expect-failure    succeed only if some seed fails (proves the checks catch the bug)\n"
            "  --default-timeouts  heartbeat 50 ms, election timeout 300-600 ms in every seed\n"
            "  --leader-faults     only failures of the leader (crash, pause, isolation), one at a\n"
            "                      time on a healthy network: for measuring failover\n"
            "  --history FILE      write the history of the (last) seed as JSON lines\n"
            "  --trace FILE        write a line per event of the (last) seed\n"
            "  --quiet             print only failures and the summary\n");
}

static int sim__cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t sim__pct(const uint64_t *v, size_t n, int pct)
{
    if (n == 0)
        return 0;
    size_t i = (n * (size_t)pct + 99) / 100;
    return v[i == 0 ? 0 : i - 1];
}

static int sim__write_file(const char *path, const struct tbuf *b)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    fwrite(b->data, 1, b->len, f);
    fclose(f);
    return 0;
}

int sim_main(int argc, char **argv)
{
    uint64_t seed = 1, seeds = 1;
    const char *bug_name = NULL, *history = NULL, *trace = NULL;
    bool expect_failure = false, quiet = false, default_timeouts = false, leader_faults = false;
    uint32_t bugs = 0;
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--mode") != 0)
            continue;
        if (strcmp(argv[i + 1], "leaderless") == 0)
            return dsim_main(argc, argv);
        if (strcmp(argv[i + 1], "leader") != 0) {
            fprintf(stderr, "triad sim: unknown mode '%s'\n", argv[i + 1]);
            sim__usage(stderr);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--mode") == 0 && v) {
            i++; /* leader: checked above */
        } else if (strcmp(a, "--seed") == 0 && v) {
            seed = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--seeds") == 0 && v) {
            seeds = strtoull(v, NULL, 10);
            i++;
        } else if (strcmp(a, "--bug") == 0 && v) {
            bug_name = v;
            bugs = sim_bug_by_name(v);
            if (bugs == 0) {
                fprintf(stderr, "triad sim: unknown bug '%s'\n", v);
                sim__usage(stderr);
                return 2;
            }
            i++;
        } else if (strcmp(a, "--history") == 0 && v) {
            history = v;
            i++;
        } else if (strcmp(a, "--trace") == 0 && v) {
            trace = v;
            i++;
        } else if (strcmp(a, "--expect-failure") == 0) {
            expect_failure = true;
        } else if (strcmp(a, "--leader-faults") == 0) {
            leader_faults = true;
        } else if (strcmp(a, "--default-timeouts") == 0) {
            default_timeouts = true;
        } else if (strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            sim__usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "triad sim: unknown or incomplete option '%s'\n", a);
            sim__usage(stderr);
            return 2;
        }
    }
    if (seeds == 0)
        seeds = 1;

    uint64_t *failover = NULL, *heal = NULL, *elected = NULL;
    size_t n_failover = 0, n_heal = 0, n_elected = 0;
    failover = malloc(seeds * 64 * sizeof(*failover));
    elected = malloc(seeds * 64 * sizeof(*elected));
    heal = malloc(seeds * sizeof(*heal));
    if (failover == NULL || heal == NULL || elected == NULL) {
        fprintf(stderr, "triad sim: out of memory\n");
        return 1;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t ops = 0, unknown_ops = 0, lin_unknown = 0, sim_ms = 0, steps = 0, snaps = 0;
    uint64_t failed_seed = 0;
    bool failed = false;
    uint64_t ran = 0;
    for (uint64_t k = 0; k < seeds; k++) {
        uint64_t sd = seed + k;
        struct tbuf hb = {0}, tb = {0};
        bool last = k + 1 == seeds;
        struct sim_options opt = {
            .seed = sd,
            .bugs = bugs,
            .default_timeouts = default_timeouts,
            .leader_faults = leader_faults,
            .history = history ? &hb : NULL,
            .trace = trace ? &tb : NULL,
        };
        struct sim_result res;
        int rc = sim_run(&opt, &res);
        ran++;
        ops += res.ops;
        unknown_ops += res.ops_unknown;
        lin_unknown += res.lin_result == LIN_RESULT_UNKNOWN;
        sim_ms += res.sim_ms;
        steps += res.steps;
        snaps += res.snapshots_installed;
        for (uint32_t i = 0; i < res.n_failover; i++)
            failover[n_failover++] = res.failover_ms[i];
        for (uint32_t i = 0; i < res.n_elected; i++)
            elected[n_elected++] = res.elected_ms[i];
        if (rc == 0)
            heal[n_heal++] = res.heal_to_commit_ms;
        if (!quiet && !expect_failure)
            printf("seed %" PRIu64 ": %s, %u nodes, %" PRIu64 " ops (%" PRIu64 " unknown), %" PRIu64
                   " faults, %" PRIu64 " ms simulated, linearizability %s\n",
                   sd, rc == 0 ? "ok" : "FAIL", res.nodes, res.ops, res.ops_unknown, res.faults,
                   res.sim_ms, lin_result_name((enum lin_result)res.lin_result));
        if (rc != 0 || last) {
            if (history)
                sim__write_file(history, &hb);
            if (trace)
                sim__write_file(trace, &tb);
        }
        tbuf_free(&hb);
        tbuf_free(&tb);
        if (rc != 0) {
            failed = true;
            failed_seed = sd;
            printf("FAIL seed %" PRIu64 ": %s\n  replay: triad sim --seed %" PRIu64 "%s%s%s%s\n", sd,
                   res.what, sd, bug_name ? " --bug " : "", bug_name ? bug_name : "",
                   default_timeouts ? " --default-timeouts" : "",
                   leader_faults ? " --leader-faults" : "");
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    qsort(failover, n_failover, sizeof(*failover), sim__cmp_u64);
    qsort(heal, n_heal, sizeof(*heal), sim__cmp_u64);
    qsort(elected, n_elected, sizeof(*elected), sim__cmp_u64);
    printf("sim: %" PRIu64 " seeds in %.1f s (%.1f seeds/s, %.0fx real time), %" PRIu64
           " steps, %" PRIu64 " ops (%" PRIu64 " unknown), %" PRIu64 " snapshots installed, "
           "linearizability unknown in %" PRIu64 " seeds\n",
           ran, secs, secs > 0 ? (double)ran / secs : 0.0, secs > 0 ? (double)sim_ms / 1000.0 / secs : 0.0,
           steps, ops, unknown_ops, snaps, lin_unknown);
    printf("sim: leader failure to a new leader's first commit: %zu samples, p50 %" PRIu64
           " ms, p99 %" PRIu64 " ms, max %" PRIu64 " ms\n",
           n_elected, sim__pct(elected, n_elected, 50), sim__pct(elected, n_elected, 99),
           n_elected ? elected[n_elected - 1] : 0);
    printf("sim: leader failure to the next client write committed: %zu samples, p50 %" PRIu64
           " ms, p99 %" PRIu64 " ms, max %" PRIu64 " ms\n",
           n_failover, sim__pct(failover, n_failover, 50), sim__pct(failover, n_failover, 99),
           n_failover ? failover[n_failover - 1] : 0);
    printf("sim: heal to first commit: p50 %" PRIu64 " ms, p99 %" PRIu64 " ms\n",
           sim__pct(heal, n_heal, 50), sim__pct(heal, n_heal, 99));
    free(failover);
    free(heal);
    free(elected);
    if (expect_failure) {
        if (failed) {
            printf("sim: the planted bug %s was caught at seed %" PRIu64 " (after %" PRIu64
                   " seeds)\n", bug_name ? bug_name : "(none)", failed_seed, ran);
            return 0;
        }
        printf("sim: NOT caught: %" PRIu64 " seeds passed with bug %s planted\n", ran,
               bug_name ? bug_name : "(none)");
        return 1;
    }
    return failed ? 1 : 0;
}
