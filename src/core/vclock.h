/* vclock.h - dotted version vectors: the versions of leaderless mode.
 *
 * Every replica keeps, per key, a struct dvv_obj: a version vector (what
 * the object has seen: for each actor, the number of its writes to this
 * key) and the live siblings, each tagged with the dot (actor, counter) of
 * the write that made it. Writes that did not see each other stay side by
 * side as siblings; a write supersedes exactly the siblings its context
 * had seen (Preguica, Baquero et al., "Dotted Version Vectors", 2010; the
 * model Riak 2.0 uses).
 *
 * The rule that keeps it sound: an actor's dots on one key are handed out
 * by one replica that holds all of that actor's earlier writes to the key
 * (dynamo.c makes the coordinator a replica and gives a node a new actor id
 * whenever it drops data), so vv[a] = n means "has seen all of a's writes
 * 1..n to this key" and a dot is covered by a clock iff its counter is not
 * above the clock's entry for its actor.
 *
 * Pure and deterministic: no clock (timestamps come in as arguments), no
 * I/O. Encodings are canonical (sorted, minimal), so equal objects encode
 * to equal bytes and hash alike (dvv_digest).
 */
#ifndef TRIAD_VCLOCK_H
#define TRIAD_VCLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "hlc.h"

typedef uint64_t dvv_actor; /* 0 is not an actor */

/* A write refused by dvv_update past this many siblings: the client must
 * resolve them first (Riak warns at 25 and refuses at 100). */
#define DVV_SIBLINGS_MAX 100
/* What a decoder accepts: merges of objects within DVV_SIBLINGS_MAX can
 * exceed it, so the decoders allow more. */
#define DVV_DECODE_SIBLINGS_MAX 4096
#define DVV_DECODE_ACTORS_MAX 4096
#define DVV_VALUE_BYTES_MAX (512u << 20)
/* A context string from a client is at most this long. */
#define DVV_CONTEXT_BYTES_MAX 65536

struct dvv_dot {
    dvv_actor actor;
    uint64_t counter; /* >= 1 */
};

/* A version vector: entries sorted by actor, each counter >= 1, no actor
 * twice. A zeroed struct is the empty clock. Owns e. */
struct dvv_clock {
    uint32_t n, cap;
    struct dvv_dot *e;
};

struct dvv_sib {
    struct dvv_dot dot;
    hlc_ts ts;          /* the coordinator's hybrid clock when it wrote */
    uint32_t node;      /* the coordinating node's id: breaks ts ties */
    bool tombstone;     /* a DEL: no value */
    uint32_t len;
    char *value;        /* owned; NULL when len == 0 */
};

/* A key's object: siblings sorted by dot (actor, then counter), each dot
 * covered by vv. A zeroed struct is the empty object (key never written). */
struct dvv_obj {
    struct dvv_clock vv;
    uint32_t n_sibs, cap_sibs;
    struct dvv_sib *sibs;
};

void dvv_clock_free(struct dvv_clock *c);
int dvv_clock_copy(struct dvv_clock *dst, const struct dvv_clock *src);
/* c[actor], 0 if absent */
uint64_t dvv_clock_get(const struct dvv_clock *c, dvv_actor actor);
/* c[actor] = max(c[actor], counter) */
void dvv_clock_bump(struct dvv_clock *c, dvv_actor actor, uint64_t counter);
/* dst = pointwise max(dst, src) */
void dvv_clock_join(struct dvv_clock *dst, const struct dvv_clock *src);
bool dvv_clock_covers(const struct dvv_clock *c, struct dvv_dot d);
/* a >= b pointwise */
bool dvv_clock_descends(const struct dvv_clock *a, const struct dvv_clock *b);
bool dvv_clock_equal(const struct dvv_clock *a, const struct dvv_clock *b);

void dvv_free(struct dvv_obj *o); /* o is the empty object after */
int dvv_copy(struct dvv_obj *dst, const struct dvv_obj *src); /* dst: empty or freed */

/* A coordinator's write (or, with tombstone, DEL): drop the siblings whose
 * dots ctx covers, join ctx into vv, and add one sibling with the next dot
 * of `actor` (max(vv[actor], ctx[actor]) + 1), ts, node and the value
 * (copied). *dot (may be NULL) gets the new dot. TRIAD_ELIMIT (and o
 * unchanged) if the object would hold more than DVV_SIBLINGS_MAX. */
int dvv_update(struct dvv_obj *o, const struct dvv_clock *ctx, dvv_actor actor, hlc_ts ts,
               uint32_t node, bool tombstone, const void *value, size_t len, struct dvv_dot *dot);

/* dst = the merge (sync) of dst and src: a sibling survives if both hold
 * it, or if the other side's vv has not seen its dot; vv is the join. The
 * merge is commutative, associative and idempotent. TRIAD_ELIMIT (dst
 * unchanged) past DVV_DECODE_SIBLINGS_MAX siblings or actors. */
int dvv_merge(struct dvv_obj *dst, const struct dvv_obj *src);

/* Same vv and the same sibling dots (a dot names one write, so the same
 * content). */
bool dvv_equal(const struct dvv_obj *a, const struct dvv_obj *b);
/* Does o (its vv) cover dot d: is d in o or superseded by what o holds? */
bool dvv_covers(const struct dvv_obj *o, struct dvv_dot d);

/* The sibling plain GET answers with: the largest (ts, node, dot.actor,
 * dot.counter). NULL if o has no siblings. May be a tombstone. */
const struct dvv_sib *dvv_winner(const struct dvv_obj *o);
/* No siblings, or only tombstones. */
bool dvv_deleted(const struct dvv_obj *o);
/* The largest sibling timestamp (0 without siblings). */
hlc_ts dvv_max_ts(const struct dvv_obj *o);

/* Storage and wire form: canonical bytes, appended to out. */
void dvv_encode(const struct dvv_obj *o, struct tbuf *out);
/* Parse p[0..n) into o (empty or freed before). Anything not exactly a
 * canonical encoding within the limits above is TRIAD_EPROTO with errmsg
 * saying what; o is then empty. */
int dvv_decode(struct dvv_obj *o, const void *p, size_t n, char *errmsg, size_t errlen);
/* xxhash of the canonical encoding; equal objects, equal digests. */
uint64_t dvv_digest(const struct dvv_obj *o);
/* Bytes of memory o uses (INFO memory). */
size_t dvv_mem(const struct dvv_obj *o);

/* The opaque causal context TRIAD.GETALL gives a client and TRIAD.PUT
 * takes back: printable ASCII with no spaces (redis-cli can echo it), a
 * version tag first so the format can change. The empty string is the
 * empty clock (a blind write). */
void dvv_context_encode(const struct dvv_clock *c, struct tbuf *out);
int dvv_context_decode(struct dvv_clock *c, const char *p, size_t n, char *errmsg, size_t errlen);

#endif
