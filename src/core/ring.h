/* ring.h - the consistent-hashing ring of leaderless mode.
 *
 * Every node owns `vnodes` tokens on a 64-bit ring; token j of node id is a
 * fixed hash of (id, j), so every node that knows the same members computes
 * the same ring with no tokens exchanged. A key hashes (ring_hash) to a
 * point; walking clockwise from it, the owners of the tokens met, repeats
 * skipped, are the key's preference order: the first N are its replicas,
 * the rest its fallbacks for a sloppy quorum, in order.
 *
 * The ring is cut into ranges, one per token: range i is the arc
 * (token[i-1], token[i]] (range 0 wraps around zero). Every key of a range
 * has the same preference order, which is what anti-entropy (one Merkle
 * tree per range) and handoff (stream the ranges a node gains) work on.
 *
 * Pure and deterministic. Tokens that collide (by chance) are ordered by
 * node id, so the ring is still a total order.
 */
#ifndef TRIAD_RING_H
#define TRIAD_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RING_NODES_MAX 64
#define RING_VNODES_MAX 1024

struct ring;

struct ring *ring_new(uint32_t vnodes); /* 1..RING_VNODES_MAX tokens per node */
void ring_free(struct ring *r);
/* 0, TRIAD_EINVAL (id 0 or already in), TRIAD_ELIMIT (RING_NODES_MAX). */
int ring_add(struct ring *r, uint32_t id);
/* 0 or TRIAD_ENOTFOUND. */
int ring_remove(struct ring *r, uint32_t id);
bool ring_has(const struct ring *r, uint32_t id);
/* The members, ascending; returns how many (copies at most max). */
size_t ring_members(const struct ring *r, uint32_t *out, size_t max);
uint32_t ring_vnodes(const struct ring *r);

/* Where a key sits on the ring (xxhash). */
uint64_t ring_hash(const void *key, size_t len);

/* The distinct nodes in preference order from point h (see above); copies
 * at most max into out and returns how many. Empty ring: 0. */
size_t ring_walk(const struct ring *r, uint64_t h, uint32_t *out, size_t max);

/* Ranges: as many as tokens (members x vnodes). */
size_t ring_ranges(const struct ring *r);
/* The range point h falls in. The ring must not be empty. */
size_t ring_range_of(const struct ring *r, uint64_t h);
/* Range i is (*lo, *hi]: lo is the previous token (exclusive), hi its own
 * token (inclusive). With one token in all, lo == hi and the range is the
 * whole ring. */
void ring_range_bounds(const struct ring *r, size_t i, uint64_t *lo, uint64_t *hi);
/* The preference order of range i (as ring_walk from its hi). */
size_t ring_range_walk(const struct ring *r, size_t i, uint32_t *out, size_t max);
/* Is h inside (lo, hi] (wrapping; lo == hi is the whole ring)? */
bool ring_in_range(uint64_t lo, uint64_t hi, uint64_t h);

/* The share of the ring node id replicates as one of the first n, in
 * millionths (INFO's ring ownership). */
uint32_t ring_share_ppm(const struct ring *r, uint32_t id, size_t n);

#endif
