/* hlc.h - a hybrid logical clock (Kulkarni et al., "Logical Physical
 * Clocks", 2014).
 *
 * A timestamp is one uint64_t: the high 48 bits are milliseconds of
 * physical time, the low 16 a logical counter. Timestamps one clock hands
 * out only grow, even when the physical clock it is fed steps backwards,
 * and a clock that has observed a timestamp hands out only larger ones, so
 * one node's writes and anything causally after them are ordered by
 * timestamp. Pure: the physical time is an argument.
 */
#ifndef TRIAD_HLC_H
#define TRIAD_HLC_H

#include <stdbool.h>
#include <stdint.h>

typedef uint64_t hlc_ts;

#define HLC_LOGICAL_BITS 16
#define HLC_MS(ts) ((uint64_t)(ts) >> HLC_LOGICAL_BITS)
#define HLC_LOGICAL(ts) ((uint64_t)(ts) & ((1u << HLC_LOGICAL_BITS) - 1))
#define HLC_FROM_MS(ms) ((hlc_ts)(ms) << HLC_LOGICAL_BITS)

struct hlc {
    hlc_ts last;          /* the largest timestamp handed out or observed */
    uint64_t max_ahead_ms; /* hlc_observe ignores a timestamp further ahead
                              of our physical time than this (0: no limit) */
};

/* Start at floor (e.g. the largest timestamp found on disk; 0 for none). */
void hlc_init(struct hlc *c, hlc_ts floor, uint64_t max_ahead_ms);
/* A local event (a write): a timestamp larger than every earlier one and
 * not below physical_ms. */
hlc_ts hlc_now(struct hlc *c, uint64_t physical_ms);
/* A timestamp arrived from elsewhere. false: it is more than max_ahead_ms
 * ahead of physical_ms and was ignored (the sender's clock is wrong). */
bool hlc_observe(struct hlc *c, hlc_ts remote, uint64_t physical_ms);

#endif
