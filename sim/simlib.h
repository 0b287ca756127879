/* simlib.h - what both simulators stand on (sim.c for leader mode, dsim.c
 * for leaderless mode): the seeded PRNG and its draws, a node's drifting
 * clock, a trace line's format, and the event queue.
 *
 * A run must be a pure function of its seed, so nothing here reads a
 * clock or any other source of randomness.
 */
#ifndef TRIAD_SIMLIB_H
#define TRIAD_SIMLIB_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/common/defs.h"

struct tbuf;

/* ---- randomness: splitmix64 ----
 *
 * Inline, as is the clock below: the simulators draw for every message
 * and read a clock at every step. */

struct simlib_rng {
    uint64_t state; /* set it from the seed; every draw advances it */
};

static inline uint64_t simlib_rand(struct simlib_rng *r)
{
    return triad_splitmix64(&r->state);
}

/* Uniform in [lo, hi] (modulo bias and all: seeds must replay); lo when
 * hi <= lo. One draw. */
static inline uint64_t simlib_range(struct simlib_rng *r, uint64_t lo, uint64_t hi)
{
    return hi <= lo ? lo : lo + simlib_rand(r) % (hi - lo + 1);
}

/* True with probability permille / 1000. One draw. */
static inline bool simlib_chance(struct simlib_rng *r, uint32_t permille)
{
    return simlib_rand(r) % 1000 < permille;
}

/* A delay in [lo, hi], plus, with probability tail_pm / 1000, one in
 * [0, tail_max] on top: a network's latency with its long tail. Two draws,
 * three with the tail. */
static inline uint64_t simlib_delay(struct simlib_rng *r, uint64_t lo, uint64_t hi,
                                    uint32_t tail_pm, uint64_t tail_max)
{
    uint64_t d = simlib_range(r, lo, hi);
    if (simlib_chance(r, tail_pm))
        d += simlib_range(r, 0, tail_max);
    return d;
}

/* ---- clocks ---- */

/* A node's local clock at global time global_us: it runs drift_ppm fast
 * (slow if negative) and is offset_us ahead. The drift is taken per whole
 * second and for the rest apart, so that global_us * drift_ppm cannot
 * overflow. */
static inline uint64_t simlib_local_us(uint64_t global_us, int64_t drift_ppm, int64_t offset_us)
{
    int64_t drift = (int64_t)global_us / 1000000 * drift_ppm +
                    ((int64_t)global_us % 1000000) * drift_ppm / 1000000;
    return (uint64_t)((int64_t)global_us + drift + offset_us);
}

/* ---- the trace ---- */

/* Appends a line to out: the simulated time in ms (to the microsecond),
 * then the message, cut at 511 bytes. */
void simlib_vtrace(struct tbuf *out, uint64_t now_us, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ---- the event queue ---- */

/* Events of one fixed size, popped in order of time, and of push among
 * events at the same time: a total order, so a run replays exactly. The
 * heap holds only small keys; each event waits in a slot of its own. */
struct simlib_evq_key {
    uint64_t t;
    uint64_t seq; /* pushes before this one */
    uint32_t slot;
};

struct simlib_evq {
    struct simlib_evq_key *heap; /* a binary min-heap on (t, seq) */
    size_t n, cap;               /* events queued; room for */
    unsigned char *slots;        /* cap slots of size bytes */
    uint32_t *free_slots;        /* slots below slots_used that are free */
    size_t n_free, slots_used;
    size_t size;
    uint64_t seq;
};

/* size: sizeof the event's type (slots lie size bytes apart from an
 * address malloc aligns, so every slot is aligned for it). */
void simlib_evq_init(struct simlib_evq *q, size_t size);
/* Frees the queue's memory only: pop first whatever events own. */
void simlib_evq_free(struct simlib_evq *q);
/* Queues an event at time t and returns its slot for the caller to fill
 * in, which it must do before the next push. */
void *simlib_evq_push(struct simlib_evq *q, uint64_t t);
/* Removes the first event and returns its slot, valid until the next push
 * (copy the event out before handling it); NULL when the queue is empty. */
const void *simlib_evq_pop(struct simlib_evq *q);

#endif
