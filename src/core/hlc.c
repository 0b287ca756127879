/* hlc.c - the hybrid logical clock (hlc.h). */
#include "hlc.h"

#include "../common/defs.h"

void hlc_init(struct hlc *c, hlc_ts floor, uint64_t max_ahead_ms)
{
    c->last = floor;
    c->max_ahead_ms = max_ahead_ms;
}

hlc_ts hlc_now(struct hlc *c, uint64_t physical_ms)
{
    hlc_ts phys = HLC_FROM_MS(physical_ms);

    /* A full logical counter carries into the milliseconds: the clock runs
     * ahead of physical time for a moment rather than repeat itself. */
    TRIAD_ASSERT(c->last != UINT64_MAX);
    c->last = phys > c->last ? phys : c->last + 1;
    return c->last;
}

bool hlc_observe(struct hlc *c, hlc_ts remote, uint64_t physical_ms)
{
    if (c->max_ahead_ms != 0 && HLC_MS(remote) > physical_ms + c->max_ahead_ms)
        return false;
    if (remote > c->last)
        c->last = remote;
    return true;
}
