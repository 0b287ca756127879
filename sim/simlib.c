/* simlib.c - the trace line and the event queue both simulators share
 * (see simlib.h; the PRNG and the clock are inline there). */
#include "simlib.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../src/common/buf.h"
#include "../src/common/defs.h"

/* ---- the trace ---- */

void simlib_vtrace(struct tbuf *out, uint64_t now_us, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    tbuf_appendf(out, "%" PRIu64 ".%03" PRIu64 " %s\n", now_us / 1000, now_us % 1000, line);
}

/* ---- the event queue ---- */

static bool simlib__key_less(const struct simlib_evq_key *a, const struct simlib_evq_key *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void simlib_evq_init(struct simlib_evq *q, size_t size)
{
    TRIAD_ASSERT(size > 0);
    *q = (struct simlib_evq){.size = size};
}

void simlib_evq_free(struct simlib_evq *q)
{
    free(q->heap);
    free(q->slots);
    free(q->free_slots);
    *q = (struct simlib_evq){.size = q->size};
}

void *simlib_evq_push(struct simlib_evq *q, uint64_t t)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 1024;
        TRIAD_ASSERT(q->cap <= UINT32_MAX);
        q->heap = realloc(q->heap, q->cap * sizeof(*q->heap));
        q->slots = realloc(q->slots, q->cap * q->size);
        q->free_slots = realloc(q->free_slots, q->cap * sizeof(*q->free_slots));
        TRIAD_ASSERT(q->heap != NULL);
        TRIAD_ASSERT(q->slots != NULL);
        TRIAD_ASSERT(q->free_slots != NULL);
    }
    /* a slot is either free or holds a queued event: with n < cap, the
     * free list or the slots never used yet have one */
    struct simlib_evq_key k = {.t = t, .seq = q->seq++};
    k.slot = q->n_free > 0 ? q->free_slots[--q->n_free] : (uint32_t)q->slots_used++;
    TRIAD_DEBUG_ASSERT(k.slot < q->cap);
    /* the hole at the end rises past every parent k comes before */
    size_t i = q->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!simlib__key_less(&k, &q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = k;
    return q->slots + (size_t)k.slot * q->size;
}

const void *simlib_evq_pop(struct simlib_evq *q)
{
    if (q->n == 0)
        return NULL;
    /* the slot goes back on the free list but keeps the event until a
     * push takes it again */
    uint32_t slot = q->heap[0].slot;
    q->free_slots[q->n_free++] = slot;
    /* the hole at the root sinks to where the last key belongs */
    struct simlib_evq_key last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct simlib_evq_key *best = &last;
        if (l < q->n && simlib__key_less(&q->heap[l], best)) {
            m = l;
            best = &q->heap[l];
        }
        if (r < q->n && simlib__key_less(&q->heap[r], best))
            m = r;
        if (m == i)
            break;
        q->heap[i] = q->heap[m];
        i = m;
    }
    if (q->n > 0)
        q->heap[i] = last;
    return q->slots + (size_t)slot * q->size;
}
