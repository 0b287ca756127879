/* idlepoll.h - how long an event loop polls for work before it sleeps.
 *
 * A loop that sleeps in epoll_wait as soon as it runs out of work must be
 * woken for the next packet, and the wake-up is paid twice: by the sender,
 * whose write has to wake the sleeping thread (an inter-processor interrupt,
 * in a VM an exit to the hypervisor), and by the loop, which is scheduled
 * back in. Under a steady load the next request is often microseconds away;
 * polling that long instead of sleeping saves both.
 *
 * Polling only pays while work keeps coming, so the window adapts, as
 * Linux's haltpoll cpuidle governor does: it grows when the loop went to
 * sleep and work came within the limit (a longer poll would have caught it)
 * and shrinks when a poll found nothing and the sleep that followed
 * outlasted the limit. An idle or lightly loaded loop soon polls not at
 * all, so it costs CPU only while the load is close to continuous.
 *
 * Nor does it poll while the machine's CPUs are contended: then the CPU it
 * would spin on is one that another task waits for (Linux's pressure stall
 * information, /proc/pressure/cpu, says how long tasks waited).
 *
 * Pure: the loop measures the durations and passes them in.
 */
#ifndef TRIAD_IDLEPOLL_H
#define TRIAD_IDLEPOLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tasks waiting for a CPU this share of the time or more (percent, a
 * moving average over the last few samples) stop the polling until they
 * wait less. */
#define IDLEPOLL_PRESSURE_MAX_PCT 20

struct idlepoll {
    uint64_t limit_ns;  /* the longest window; 0 never polls */
    uint64_t window_ns; /* how long the next poll lasts, 0..limit_ns */
    uint64_t pressure;  /* moving average of the share waited, in 1/1000 */
};

/* Tasks wait for a CPU too much for the loop to poll. */
static inline bool idlepoll_contended(const struct idlepoll *p)
{
    return p->pressure >= IDLEPOLL_PRESSURE_MAX_PCT * 10;
}

void idlepoll_init(struct idlepoll *p, uint64_t limit_ns);

/* A new limit (CONFIG SET idle-poll-us); the window stays within it. */
void idlepoll_set_limit(struct idlepoll *p, uint64_t limit_ns);

/* The window is the poll that found work before it ran out. */
static inline uint64_t idlepoll_window(const struct idlepoll *p)
{
    return idlepoll_contended(p) ? 0 : p->window_ns;
}

/* The poll ran out (or did not run: window 0) and the loop slept slept_ns
 * before work came. */
void idlepoll_slept(struct idlepoll *p, uint64_t slept_ns);

/* Over elapsed_us some task waited waited_us for a CPU. */
void idlepoll_pressure(struct idlepoll *p, uint64_t waited_us, uint64_t elapsed_us);

/* The "some ... total=N" figure (microseconds waited, ever) of the text of
 * /proc/pressure/cpu; false if the text has none. */
bool idlepoll_parse_psi(const char *text, size_t len, uint64_t *total_us);

#endif
