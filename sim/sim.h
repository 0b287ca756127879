/* sim.h - the deterministic cluster simulator (DESIGN.md §8).
 *
 * One seed determines everything: the cluster's size, its timings, the
 * network's latency, loss, duplication and partitions, the disks' fsync
 * latency and what a crash loses, pauses, clock drift, and the clients'
 * workload. The real node code (src/node, src/core, src/cmd, src/store's
 * kv) runs on a simulated network, disk and clock, single-threaded, so a
 * failing seed replays exactly.
 *
 * After every step the leader-mode invariants are checked; at the end the
 * clients' history must be linearizable, and once every fault has healed
 * the cluster must elect a leader and commit within a bounded simulated
 * time.
 */
#ifndef TRIAD_SIM_H
#define TRIAD_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "../src/common/buf.h"

struct sim_options {
    uint64_t seed;
    uint32_t bugs;           /* RAFT_BUG_* planted bugs */
    bool default_timeouts;   /* heartbeat 50 ms, election 300-600 ms, always */
    bool leader_faults;      /* only one failure of the leader at a time */
    struct tbuf *history;    /* if set: the history as JSON lines */
    struct tbuf *trace;      /* if set: one line per event */
};

struct sim_result {
    bool ok;
    char what[512];           /* the first violation, if not ok */
    uint64_t steps;           /* events processed */
    uint64_t sim_ms;          /* simulated time */
    uint32_t nodes;
    uint64_t ops, ops_ok, ops_failed, ops_unknown;
    uint64_t faults;
    int lin_result;           /* enum lin_result */
    uint64_t heal_to_commit_ms; /* after the last fault healed */
    /* from each failure of a leader to the next client write applied by a
     * new leader (simulated ms), in order */
    uint64_t failover_ms[64];
    uint32_t n_failover;
    /* ... and to the new leader's first commit (its no-op) */
    uint64_t elected_ms[64];
    uint32_t n_elected;
    uint64_t snapshots_installed;
};

/* Run one seed. Returns 0 when every check passed. */
int sim_run(const struct sim_options *opt, struct sim_result *res);

/* `triad sim ...`: returns the process exit code. */
int sim_main(int argc, char **argv);

/* `triad lincheck FILE [--steps N]` (lincheck_cli.c): check a history file
 * (JSON lines, lin_load_json); returns 0 linearizable, 1 not, 2 unknown or
 * bad input. */
int lin_main(int argc, char **argv);

/* Planted bug names, for --bug: 0 if unknown. */
uint32_t sim_bug_by_name(const char *name);

#endif
