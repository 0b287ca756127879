/* idlepoll.c - the adaptive poll window (see idlepoll.h). */
#include "idlepoll.h"

#include <string.h>

#include "num.h"

/* The window starts at a quarter of the limit, doubles on each sleep a
 * longer poll would have saved, and halves on each it would not; below an
 * eighth of the limit it is 0, so a loop whose work comes further apart than
 * the limit stops polling after a few passes. */
#define IDLEPOLL_START_DIV 4
#define IDLEPOLL_FLOOR_DIV 8

void idlepoll_init(struct idlepoll *p, uint64_t limit_ns)
{
    p->limit_ns = limit_ns;
    p->window_ns = 0;
    p->pressure = 0;
}

void idlepoll_set_limit(struct idlepoll *p, uint64_t limit_ns)
{
    p->limit_ns = limit_ns;
    if (p->window_ns > limit_ns)
        p->window_ns = limit_ns;
}

void idlepoll_slept(struct idlepoll *p, uint64_t slept_ns)
{
    if (p->limit_ns == 0) {
        p->window_ns = 0;
        return;
    }
    if (p->window_ns + slept_ns <= p->limit_ns) {
        uint64_t w = p->window_ns * 2;
        if (w < p->limit_ns / IDLEPOLL_START_DIV)
            w = p->limit_ns / IDLEPOLL_START_DIV;
        p->window_ns = w < p->limit_ns ? w : p->limit_ns;
        return;
    }
    p->window_ns /= 2;
    if (p->window_ns < p->limit_ns / IDLEPOLL_FLOOR_DIV)
        p->window_ns = 0;
}

void idlepoll_pressure(struct idlepoll *p, uint64_t waited_us, uint64_t elapsed_us)
{
    if (elapsed_us == 0)
        return;
    uint64_t share = waited_us >= elapsed_us ? 1000 : waited_us * 1000 / elapsed_us;
    p->pressure = (p->pressure * 3 + share) / 4;
    if (idlepoll_contended(p))
        p->window_ns = 0;
}

bool idlepoll_parse_psi(const char *text, size_t len, uint64_t *total_us)
{
    /* "some avg10=1.43 avg60=11.05 avg300=10.69 total=3509466102\n" */
    static const char key[] = "total=";
    const char *end = text + len;
    if (len < 5 || memcmp(text, "some ", 5) != 0)
        return false;
    const char *eol = memchr(text, '\n', len);
    if (eol != NULL)
        end = eol;
    for (const char *q = text; q + sizeof(key) - 1 <= end; q++) {
        if (memcmp(q, key, sizeof(key) - 1) != 0)
            continue;
        const char *d = q + sizeof(key) - 1;
        const char *e = d;
        while (e < end && *e >= '0' && *e <= '9')
            e++;
        return triad_parse_u64(d, (size_t)(e - d), total_us);
    }
    return false;
}
