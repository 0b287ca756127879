/* dsim.h - the deterministic simulator of leaderless mode (DESIGN.md §8).
 *
 * One seed decides everything: 3 or 5 nodes, R and W, sloppy or strict
 * quorum, the network's latency, loss, duplication, reordering and
 * partitions, fsync latency, crashes (and now and then a replaced disk),
 * pauses, drifting clocks that jump backwards, and a workload of clients
 * doing SET, GET, GETALL, DEL and TRIAD.PUT on a few keys. The production
 * leaderless core (src/core/dynamo.c and what it builds on) runs on a
 * simulated network, store and clock in one thread, every message through
 * its wire codec, so a failing seed replays exactly.
 *
 * Checked at every store write: a dot names one write; a new dot is made
 * by the node whose actor it carries, with a timestamp above that node's
 * earlier writes (HLC); a replica's object never forgets what it covered;
 * a sibling leaves an object only for a write that superseded it; no two
 * live siblings where one's write superseded the other. Checked at every
 * acknowledgement: W nodes hold the write durably. At the end: every
 * acknowledged write survived (live, or superseded by a write the final
 * object holds), with strict quorum and R + W > N every read saw every
 * write acknowledged before it started, and once every fault has healed
 * all N replicas of every key converge byte for byte, with no hint left.
 */
#ifndef TRIAD_DSIM_H
#define TRIAD_DSIM_H

#include <stdbool.h>
#include <stdint.h>

#include "../src/common/buf.h"

struct dsim_options {
    uint64_t seed;
    uint32_t bugs;      /* DYN_BUG_* planted bugs */
    struct tbuf *trace; /* if set: one line per event (what -v prints) */
};

/* Which check failed (dsim_result.check). */
enum dsim_check {
    DSIM_CHECK_NONE = 0,
    DSIM_CHECK_DURABLE_AT_ACK = 1, /* (1) W durable copies when acknowledged */
    DSIM_CHECK_NO_LOST_WRITE = 2,  /* (2) no acknowledged write lost */
    DSIM_CHECK_READ_SEES_ACKED = 3, /* (3) strict quorum, R + W > N */
    DSIM_CHECK_CONVERGENCE = 4,    /* (4) replicas identical, no hint left */
    DSIM_CHECK_NO_FALSE_SIBLINGS = 5, /* (5) */
    DSIM_CHECK_HLC = 6,            /* a node's writes in timestamp order */
    DSIM_CHECK_STEP = 7,           /* the per-write invariants, the codec, the io contract */
};

struct dsim_result {
    bool ok;
    int check;                /* enum dsim_check of the first violation */
    char what[512];           /* the first violation: the check, the key, what */
    uint64_t steps;           /* events processed */
    uint64_t sim_ms;          /* simulated time */
    uint32_t nodes, n, r, w, clients, keys;
    bool sloppy;
    uint64_t ops, ops_ok, ops_failed, ops_timeout;
    uint64_t writes_acked, reads_ok;
    uint64_t reads_with_siblings; /* successful reads that returned 2+ live siblings */
    uint64_t faults, crashes, wipes, pauses, partitions, clock_jumps;
    uint64_t msgs_sent, msgs_delivered;
    uint64_t hints_stored, hints_delivered, read_repairs, ae_exchanges, ae_keys_repaired;
    uint64_t converge_ms;     /* from healing to the replicas converged */
};

/* Run one seed. Returns 0 when every check passed, -1 otherwise (res
 * says which check and why). */
int dsim_run(const struct dsim_options *opt, struct dsim_result *res);

/* Planted bug names (ack-early, causal, drop-hint, repair-clobber) for
 * --bug: 0 if unknown. */
uint32_t dsim_bug_by_name(const char *name);

/* `triad sim --mode leaderless ...`: returns the process exit code. */
int dsim_main(int argc, char **argv);

#endif
