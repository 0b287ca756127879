/* test_vclock.c - dotted version vectors: update and merge semantics, the
 * merge laws and convergence under random histories checked against a
 * model of which write superseded which, the winner order, and the object
 * and context encodings (round trips, canonical form, every rejection). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/core/vclock.h"
#include "test.h"

/* vclock.c's O(n) self-check (kept out of vclock.h: tests and debug builds). */
bool dvv__check(const struct dvv_obj *o);

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
    return rng_next(s) % n;
}

static const struct dvv_clock no_ctx; /* the empty clock: a blind write */

static struct dvv_dot put(struct dvv_obj *o, const struct dvv_clock *ctx, dvv_actor a,
                          hlc_ts ts, const char *v)
{
    struct dvv_dot d = {0, 0};
    int rc = dvv_update(o, ctx, a, ts, (uint32_t)a, false, v, strlen(v), &d);
    CHECK_EQ_INT(rc, 0);
    return d;
}

static bool has_dot(const struct dvv_obj *o, struct dvv_dot d)
{
    for (uint32_t i = 0; i < o->n_sibs; i++)
        if (o->sibs[i].dot.actor == d.actor && o->sibs[i].dot.counter == d.counter)
            return true;
    return false;
}

static void encode(const struct dvv_obj *o, struct tbuf *b)
{
    tbuf_reset(b);
    dvv_encode(o, b);
}

static bool same_bytes(const struct dvv_obj *a, const struct dvv_obj *b)
{
    struct tbuf x = {0}, y = {0};
    dvv_encode(a, &x);
    dvv_encode(b, &y);
    bool eq = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    tbuf_free(&x);
    tbuf_free(&y);
    return eq;
}

static bool merged(struct dvv_obj *out, const struct dvv_obj *a, const struct dvv_obj *b)
{
    dvv_copy(out, a);
    return dvv_merge(out, b) == 0;
}

/* ---- update ---- */

TEST(dvv_update_on_an_empty_object_makes_one_sibling_with_the_first_dot)
{
    struct dvv_obj o = {0};
    CHECK(dvv_deleted(&o));
    CHECK(dvv_winner(&o) == NULL);
    CHECK(dvv_max_ts(&o) == 0);

    struct dvv_dot d = put(&o, &no_ctx, 7, 1000, "hello");
    CHECK(d.actor == 7 && d.counter == 1);
    CHECK_EQ_INT(o.n_sibs, 1);
    CHECK_EQ_INT(o.vv.n, 1);
    CHECK(dvv_clock_get(&o.vv, 7) == 1);
    CHECK(o.sibs[0].ts == 1000);
    CHECK_EQ_INT(o.sibs[0].node, 7);
    CHECK(!o.sibs[0].tombstone);
    CHECK_MEM_STR(o.sibs[0].value, o.sibs[0].len, "hello");
    CHECK(!dvv_deleted(&o));
    CHECK(dvv_winner(&o) == &o.sibs[0]);
    CHECK(dvv_max_ts(&o) == 1000);
    CHECK(dvv__check(&o));
    CHECK(dvv_mem(&o) >= 5 + sizeof(struct dvv_sib) + sizeof(struct dvv_dot));

    /* An empty value is no allocation. */
    struct dvv_obj e = {0};
    CHECK_EQ_INT(dvv_update(&e, &no_ctx, 1, 1, 1, false, NULL, 0, NULL), 0);
    CHECK(e.sibs[0].value == NULL && e.sibs[0].len == 0);
    CHECK(!dvv_deleted(&e));
    dvv_free(&e);
    dvv_free(&o);
    CHECK(o.n_sibs == 0 && o.vv.n == 0 && o.sibs == NULL && o.vv.e == NULL);
}

TEST(dvv_write_with_a_read_context_supersedes_exactly_the_siblings_read)
{
    struct dvv_obj o = {0};
    struct dvv_dot a1 = put(&o, &no_ctx, 1, 10, "a1");
    struct dvv_dot b1 = put(&o, &no_ctx, 2, 11, "b1");
    struct dvv_clock read; /* a client reads {a1, b1} */
    dvv_clock_copy(&read, &o.vv);
    struct dvv_dot c1 = put(&o, &no_ctx, 3, 12, "c1"); /* unseen by the client */
    CHECK_EQ_INT(o.n_sibs, 3);

    struct dvv_dot a2 = put(&o, &read, 1, 13, "a2");
    CHECK(a2.actor == 1 && a2.counter == 2);
    CHECK_EQ_INT(o.n_sibs, 2);
    CHECK(!has_dot(&o, a1));
    CHECK(!has_dot(&o, b1));
    CHECK(has_dot(&o, c1));
    CHECK(has_dot(&o, a2));
    CHECK(dvv_covers(&o, a1) && dvv_covers(&o, b1) && dvv_covers(&o, c1));
    CHECK(dvv__check(&o));
    dvv_clock_free(&read);
    dvv_free(&o);
}

TEST(dvv_two_writes_with_the_same_stale_context_become_siblings)
{
    struct dvv_obj o = {0};
    struct dvv_dot a1 = put(&o, &no_ctx, 1, 10, "v1");
    struct dvv_clock ctx;
    dvv_clock_copy(&ctx, &o.vv);
    struct dvv_dot x = put(&o, &ctx, 1, 11, "x");
    struct dvv_dot y = put(&o, &ctx, 1, 12, "y");
    CHECK_EQ_INT(o.n_sibs, 2);
    CHECK(!has_dot(&o, a1));
    CHECK(has_dot(&o, x) && has_dot(&o, y));
    CHECK(x.counter == 2 && y.counter == 3);
    /* ... also when the writes go through different actors */
    struct dvv_dot z = put(&o, &ctx, 2, 13, "z");
    CHECK_EQ_INT(o.n_sibs, 3);
    CHECK(has_dot(&o, z));
    CHECK(dvv__check(&o));
    dvv_clock_free(&ctx);
    dvv_free(&o);
}

TEST(dvv_blind_write_never_supersedes)
{
    struct dvv_obj o = {0};
    struct dvv_dot d[5];
    for (int i = 0; i < 5; i++)
        d[i] = put(&o, &no_ctx, 1 + (uint64_t)(i % 2), 10 + (hlc_ts)i, "v");
    CHECK_EQ_INT(o.n_sibs, 5);
    for (int i = 0; i < 5; i++)
        CHECK(has_dot(&o, d[i]));
    /* The dots of one actor count up past what the object has seen. */
    CHECK(d[4].actor == 1 && d[4].counter == 3);
    dvv_free(&o);
}

TEST(dvv_new_dot_counts_past_a_context_that_is_ahead_of_the_object)
{
    struct dvv_obj o = {0};
    struct dvv_clock ctx = {0};
    dvv_clock_bump(&ctx, 4, 9);
    struct dvv_dot d = put(&o, &ctx, 4, 1, "v");
    CHECK(d.counter == 10);
    CHECK(dvv_clock_get(&o.vv, 4) == 10);
    CHECK(dvv__check(&o));
    dvv_clock_free(&ctx);
    dvv_free(&o);
}

TEST(dvv_one_clients_sequential_writes_never_make_siblings)
{
    /* One client, writing at random replicas (each with its own actor)
     * with the context of the object its previous write returned, while
     * replicas sync at random: never two siblings anywhere. */
    enum { R = 4, STEPS = 400 };
    uint64_t seed = 42;
    struct dvv_obj rep[R];
    memset(rep, 0, sizeof(rep));
    struct dvv_clock ctx = {0};
    struct dvv_dot last = {0, 0};
    bool ok = true;
    for (int step = 0; step < STEPS; step++) {
        if (rng_below(&seed, 3) == 0) {
            uint64_t a = rng_below(&seed, R), b = rng_below(&seed, R);
            CHECK_EQ_INT(dvv_merge(&rep[a], &rep[b]), 0);
        } else {
            uint64_t r = rng_below(&seed, R);
            char v[32];
            snprintf(v, sizeof(v), "w%d", step);
            last = put(&rep[r], &ctx, r + 1, (hlc_ts)step, v);
            dvv_clock_free(&ctx);
            dvv_clock_copy(&ctx, &rep[r].vv);
        }
        for (int r = 0; r < R; r++)
            ok &= rep[r].n_sibs <= 1 && dvv__check(&rep[r]);
    }
    CHECK(ok);
    for (int r = 1; r < R; r++)
        CHECK_EQ_INT(dvv_merge(&rep[0], &rep[r]), 0);
    CHECK_EQ_INT(rep[0].n_sibs, 1);
    CHECK(has_dot(&rep[0], last));
    for (int r = 0; r < R; r++)
        dvv_free(&rep[r]);
    dvv_clock_free(&ctx);
}

TEST(dvv_update_past_siblings_max_is_refused_and_leaves_the_object_unchanged)
{
    struct dvv_obj o = {0};
    for (int i = 0; i < DVV_SIBLINGS_MAX; i++)
        put(&o, &no_ctx, 1 + (uint64_t)(i % 3), (hlc_ts)i, "v");
    CHECK_EQ_INT(o.n_sibs, DVV_SIBLINGS_MAX);
    struct tbuf before = {0}, after = {0};
    dvv_encode(&o, &before);
    struct dvv_dot d = {99, 99};
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 1, 1, 1, false, "x", 1, &d), TRIAD_ELIMIT);
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 5, 1, 1, true, NULL, 0, &d), TRIAD_ELIMIT);
    CHECK(d.actor == 99 && d.counter == 99);
    dvv_encode(&o, &after);
    CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);

    /* A context that covers one sibling makes room for exactly one. */
    struct dvv_clock ctx = {0};
    dvv_clock_bump(&ctx, o.sibs[0].dot.actor, o.sibs[0].dot.counter);
    CHECK_EQ_INT(dvv_update(&o, &ctx, 1, 1, 1, false, "x", 1, NULL), 0);
    CHECK_EQ_INT(o.n_sibs, DVV_SIBLINGS_MAX);
    CHECK_EQ_INT(dvv_update(&o, &ctx, 1, 1, 1, false, "x", 1, NULL), TRIAD_ELIMIT);
    /* Resolving them all (the object's own clock) always goes through. */
    CHECK_EQ_INT(dvv_update(&o, &o.vv, 2, 1, 1, false, "r", 1, NULL), 0);
    CHECK_EQ_INT(o.n_sibs, 1);
    dvv_clock_free(&ctx);
    tbuf_free(&before);
    tbuf_free(&after);
    dvv_free(&o);
}

TEST(dvv_update_refuses_a_counter_that_would_overflow)
{
    struct dvv_obj o = {0};
    struct dvv_clock ctx = {0};
    dvv_clock_bump(&ctx, 3, UINT64_MAX);
    CHECK_EQ_INT(dvv_update(&o, &ctx, 3, 1, 1, false, "v", 1, NULL), TRIAD_EOVERFLOW);
    CHECK(o.n_sibs == 0 && o.vv.n == 0);
    /* another actor is fine, and the context's entry joins the clock */
    CHECK_EQ_INT(dvv_update(&o, &ctx, 4, 1, 1, false, "v", 1, NULL), 0);
    CHECK(dvv_clock_get(&o.vv, 3) == UINT64_MAX);
    dvv_clock_free(&ctx);
    dvv_free(&o);
}

TEST(dvv_tombstones_delete_only_what_they_saw)
{
    struct dvv_obj o = {0};
    put(&o, &no_ctx, 1, 10, "v");
    struct dvv_clock ctx;
    dvv_clock_copy(&ctx, &o.vv);
    struct dvv_dot del;
    CHECK_EQ_INT(dvv_update(&o, &ctx, 1, 20, 1, true, NULL, 0, &del), 0);
    CHECK_EQ_INT(o.n_sibs, 1);
    CHECK(dvv_deleted(&o));
    CHECK(dvv_winner(&o) != NULL && dvv_winner(&o)->tombstone);
    CHECK(dvv_winner(&o)->value == NULL);

    /* A concurrent put (stale context) survives the delete. */
    struct dvv_dot p = put(&o, &ctx, 2, 15, "concurrent");
    CHECK_EQ_INT(o.n_sibs, 2);
    CHECK(!dvv_deleted(&o));
    CHECK(dvv_winner(&o)->tombstone); /* ts 20 > 15: plain GET sees the delete */
    CHECK(has_dot(&o, p));

    /* A blind delete keeps the put; a delete with the full context leaves one tombstone. */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 3, 30, 3, true, NULL, 0, NULL), 0);
    CHECK(!dvv_deleted(&o));
    CHECK_EQ_INT(dvv_update(&o, &o.vv, 3, 40, 3, true, NULL, 0, NULL), 0);
    CHECK_EQ_INT(o.n_sibs, 1);
    CHECK(dvv_deleted(&o));
    CHECK(dvv_max_ts(&o) == 40);

    /* Merging the tombstone into a replica that holds the old value deletes it there. */
    struct dvv_obj old = {0};
    put(&old, &no_ctx, 1, 10, "v");
    CHECK_EQ_INT(dvv_merge(&old, &o), 0);
    CHECK(dvv_deleted(&old));
    CHECK(dvv_equal(&old, &o));
    dvv_free(&old);
    dvv_clock_free(&ctx);
    dvv_free(&o);
}

/* ---- clocks and covers ---- */

TEST(dvv_clock_ops_keep_entries_sorted_and_take_maxima)
{
    struct dvv_clock a = {0}, b = {0};
    dvv_clock_bump(&a, 5, 2);
    dvv_clock_bump(&a, 1, 4);
    dvv_clock_bump(&a, 9, 1);
    dvv_clock_bump(&a, 5, 1); /* lower: no change */
    dvv_clock_bump(&a, 7, 0); /* zero: no entry */
    CHECK_EQ_INT(a.n, 3);
    CHECK(a.e[0].actor == 1 && a.e[1].actor == 5 && a.e[2].actor == 9);
    CHECK(dvv_clock_get(&a, 5) == 2 && dvv_clock_get(&a, 7) == 0);

    dvv_clock_bump(&b, 5, 3);
    dvv_clock_bump(&b, 2, 1);
    dvv_clock_bump(&b, 10, 8);
    CHECK(!dvv_clock_descends(&a, &b) && !dvv_clock_descends(&b, &a));
    struct dvv_clock j;
    dvv_clock_copy(&j, &a);
    dvv_clock_join(&j, &b);
    CHECK_EQ_INT(j.n, 5);
    dvv_actor want_a[] = {1, 2, 5, 9, 10};
    uint64_t want_c[] = {4, 1, 3, 1, 8};
    for (int i = 0; i < 5; i++)
        CHECK(j.e[i].actor == want_a[i] && j.e[i].counter == want_c[i]);
    CHECK(dvv_clock_descends(&j, &a) && dvv_clock_descends(&j, &b));
    CHECK(!dvv_clock_descends(&a, &j));
    struct dvv_clock a1;
    dvv_clock_copy(&a1, &a);
    dvv_clock_bump(&a1, 5, 3); /* one more than a at one entry */
    CHECK(!dvv_clock_descends(&a, &a1) && dvv_clock_descends(&a1, &a));
    dvv_clock_free(&a1);
    CHECK(dvv_clock_descends(&a, &a));
    CHECK(dvv_clock_descends(&a, &no_ctx));
    CHECK(!dvv_clock_descends(&no_ctx, &a));

    struct dvv_clock k;
    dvv_clock_copy(&k, &b);
    dvv_clock_join(&k, &a);
    CHECK(dvv_clock_equal(&j, &k));
    CHECK(!dvv_clock_equal(&j, &a));
    dvv_clock_join(&k, &k);
    CHECK(dvv_clock_equal(&j, &k));

    CHECK(dvv_clock_covers(&a, (struct dvv_dot){1, 4}));
    CHECK(dvv_clock_covers(&a, (struct dvv_dot){1, 1}));
    CHECK(!dvv_clock_covers(&a, (struct dvv_dot){1, 5}));
    CHECK(!dvv_clock_covers(&a, (struct dvv_dot){2, 1}));
    dvv_clock_free(&a);
    dvv_clock_free(&b);
    dvv_clock_free(&j);
    dvv_clock_free(&k);
}

TEST(dvv_covers_what_it_holds_and_what_it_superseded_and_nothing_newer)
{
    struct dvv_obj o = {0};
    struct dvv_dot a1 = put(&o, &no_ctx, 1, 1, "a");
    struct dvv_dot a2 = put(&o, &o.vv, 1, 2, "b");
    CHECK(!has_dot(&o, a1) && has_dot(&o, a2));
    CHECK(dvv_covers(&o, a1));
    CHECK(dvv_covers(&o, a2));
    CHECK(!dvv_covers(&o, (struct dvv_dot){1, 3}));
    CHECK(!dvv_covers(&o, (struct dvv_dot){2, 1}));
    struct dvv_obj e = {0};
    CHECK(!dvv_covers(&e, a1));
    dvv_free(&o);
}

TEST(dvv_equal_compares_the_clock_and_the_sibling_dots)
{
    struct dvv_obj a = {0}, b = {0}, c = {0};
    put(&a, &no_ctx, 1, 1, "x");
    put(&a, &no_ctx, 1, 2, "y"); /* siblings (1,1) (1,2) */
    put(&b, &no_ctx, 1, 1, "x");
    put(&b, &b.vv, 1, 2, "y"); /* sibling (1,2) only */
    CHECK(dvv_clock_equal(&a.vv, &b.vv));
    CHECK(!dvv_equal(&a, &b) && !dvv_equal(&b, &a));
    put(&c, &no_ctx, 1, 1, "x");
    put(&c, &no_ctx, 1, 2, "y");
    CHECK(dvv_equal(&a, &c));
    put(&c, &no_ctx, 2, 3, "z");
    CHECK(!dvv_equal(&a, &c));

    /* same clock {1:2, 2:1}, as many siblings, different dots */
    struct dvv_obj d = {0}, e = {0};
    struct dvv_clock saw = {0};
    put(&d, &no_ctx, 1, 1, "x");
    put(&d, &no_ctx, 2, 1, "w");
    dvv_clock_bump(&saw, 2, 1);
    put(&d, &saw, 1, 2, "y"); /* (1,1) (1,2) */
    put(&e, &no_ctx, 1, 1, "x");
    put(&e, &no_ctx, 2, 1, "w");
    dvv_clock_free(&saw);
    dvv_clock_bump(&saw, 1, 1);
    put(&e, &saw, 1, 2, "y"); /* (1,2) (2,1) */
    CHECK(dvv_clock_equal(&d.vv, &e.vv) && d.n_sibs == e.n_sibs);
    CHECK(!dvv_equal(&d, &e));
    dvv_clock_free(&saw);
    dvv_free(&a), dvv_free(&b), dvv_free(&c), dvv_free(&d), dvv_free(&e);
}

/* ---- winner ---- */

TEST(dvv_winner_is_max_of_ts_then_node_then_dot_whatever_the_order)
{
    struct dvv_obj o = {0};
    /* dvv_update(o, ctx, actor, ts, node, ...) */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 2, 50, 3, false, "a", 1, NULL), 0); /* (2,1) */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 1, 50, 9, false, "b", 1, NULL), 0); /* (1,1) */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 3, 49, 99, false, "c", 1, NULL), 0);
    CHECK_MEM_STR(dvv_winner(&o)->value, 1, "b"); /* ts tie: node 9 beats 3 and a larger dot */
    CHECK(dvv_max_ts(&o) == 50); /* not the last sibling's 49 */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 2, 50, 9, false, "d", 1, NULL), 0); /* (2,2) */
    CHECK_MEM_STR(dvv_winner(&o)->value, 1, "d"); /* ts, node tie: actor 2 beats 1 */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 2, 50, 9, false, "e", 1, NULL), 0); /* (2,3) */
    CHECK_MEM_STR(dvv_winner(&o)->value, 1, "e"); /* ts, node, actor tie: counter 3 beats 2 */
    CHECK_EQ_INT(dvv_update(&o, &no_ctx, 1, 51, 0, false, "f", 1, NULL), 0); /* (1,2) */
    CHECK_MEM_STR(dvv_winner(&o)->value, 1, "f"); /* ts first */

    /* The same writes split over two replicas (actors 1 and 3 at one, 2
     * at the other): either merge order gives o and the same winner. */
    struct dvv_obj p = {0}, q = {0}, pq, qp;
    CHECK_EQ_INT(dvv_update(&q, &no_ctx, 2, 50, 3, false, "a", 1, NULL), 0);
    CHECK_EQ_INT(dvv_update(&p, &no_ctx, 1, 50, 9, false, "b", 1, NULL), 0);
    CHECK_EQ_INT(dvv_update(&p, &no_ctx, 3, 49, 99, false, "c", 1, NULL), 0);
    CHECK_EQ_INT(dvv_update(&q, &no_ctx, 2, 50, 9, false, "d", 1, NULL), 0);
    CHECK_EQ_INT(dvv_update(&q, &no_ctx, 2, 50, 9, false, "e", 1, NULL), 0);
    CHECK_EQ_INT(dvv_update(&p, &no_ctx, 1, 51, 0, false, "f", 1, NULL), 0);
    CHECK(merged(&pq, &p, &q) && merged(&qp, &q, &p));
    CHECK(dvv_equal(&pq, &o) && dvv_equal(&qp, &o));
    CHECK_MEM_STR(dvv_winner(&pq)->value, 1, "f");
    CHECK_MEM_STR(dvv_winner(&qp)->value, 1, "f");
    dvv_free(&p), dvv_free(&q), dvv_free(&pq), dvv_free(&qp);
    dvv_free(&o);
}

/* ---- merge: laws and no lost writes, against a model ---- */

/* One created write, as the model remembers it. */
struct model_write {
    struct dvv_dot dot;
    struct dvv_clock ctx; /* what it superseded */
};

#define HIST_R 4
#define HIST_SNAPS_MAX 256

struct hist {
    uint64_t seed;
    struct dvv_obj rep[HIST_R];
    struct dvv_obj snaps[HIST_SNAPS_MAX]; /* objects replicas held once */
    int n_snaps;
    struct model_write *w;
    int n_w, cap_w;
};

static void hist_snap(struct hist *h, const struct dvv_obj *o)
{
    int i = h->n_snaps < HIST_SNAPS_MAX ? h->n_snaps++ : (int)rng_below(&h->seed, HIST_SNAPS_MAX);
    dvv_free(&h->snaps[i]);
    dvv_copy(&h->snaps[i], o);
}

/* One random step: a write at a replica, with the context of something a
 * client saw (a replica now, an old snapshot, nothing), or a sync. */
static void hist_step(struct hist *h, int step)
{
    uint64_t r = rng_below(&h->seed, HIST_R);
    if (rng_below(&h->seed, 3) == 0) {
        uint64_t s = rng_below(&h->seed, HIST_R);
        CHECK_EQ_INT(dvv_merge(&h->rep[r], &h->rep[s]), 0);
        hist_snap(h, &h->rep[r]);
        return;
    }
    struct dvv_clock ctx = {0};
    uint64_t kind = rng_below(&h->seed, 4);
    if (kind == 1)
        dvv_clock_copy(&ctx, &h->rep[rng_below(&h->seed, HIST_R)].vv);
    else if (kind >= 2 && h->n_snaps > 0)
        dvv_clock_copy(&ctx, &h->snaps[rng_below(&h->seed, (uint64_t)h->n_snaps)].vv);
    char v[32];
    int vn = snprintf(v, sizeof(v), "s%d", step);
    bool tomb = rng_below(&h->seed, 8) == 0;
    struct dvv_dot d;
    /* Replica r hands out actor r+1's dots: it holds all of them (vclock.h). */
    int rc = dvv_update(&h->rep[r], &ctx, r + 1, (hlc_ts)rng_below(&h->seed, 1000),
                        (uint32_t)r, tomb, tomb ? NULL : v, tomb ? 0 : (size_t)vn, &d);
    if (rc == TRIAD_ELIMIT) { /* refused: no write made */
        dvv_clock_free(&ctx);
        return;
    }
    CHECK_EQ_INT(rc, 0);
    if (h->n_w == h->cap_w) {
        h->cap_w = h->cap_w ? h->cap_w * 2 : 64;
        h->w = realloc(h->w, (size_t)h->cap_w * sizeof(*h->w));
    }
    h->w[h->n_w++] = (struct model_write){d, ctx};
    hist_snap(h, &h->rep[r]);
}

static void hist_free(struct hist *h)
{
    for (int i = 0; i < HIST_R; i++)
        dvv_free(&h->rep[i]);
    for (int i = 0; i < h->n_snaps; i++)
        dvv_free(&h->snaps[i]);
    for (int i = 0; i < h->n_w; i++)
        dvv_clock_free(&h->w[i].ctx);
    free(h->w);
    memset(h, 0, sizeof(*h));
}

TEST(dvv_merge_is_commutative_associative_and_idempotent_on_random_histories)
{
    int failures = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        struct hist h = {.seed = seed};
        for (int step = 0; step < 120; step++)
            hist_step(&h, step);
        for (int t = 0; t < 60; t++) {
            const struct dvv_obj *a = &h.snaps[rng_below(&h.seed, (uint64_t)h.n_snaps)];
            const struct dvv_obj *b = &h.snaps[rng_below(&h.seed, (uint64_t)h.n_snaps)];
            const struct dvv_obj *c = &h.snaps[rng_below(&h.seed, (uint64_t)h.n_snaps)];
            struct dvv_obj ab = {0}, ba = {0}, aa = {0}, ab_c = {0}, bc = {0}, a_bc = {0};
            bool ok = merged(&ab, a, b) && merged(&ba, b, a) && merged(&aa, a, a) &&
                      merged(&ab_c, &ab, c) && merged(&bc, b, c) && merged(&a_bc, a, &bc);
            ok = ok && same_bytes(&ab, &ba);
            ok = ok && same_bytes(&aa, a);
            ok = ok && same_bytes(&ab_c, &a_bc);
            ok = ok && dvv__check(&ab) && dvv__check(&a_bc);
            /* the merge is an upper bound: it has seen both */
            ok = ok && dvv_clock_descends(&ab.vv, &a->vv) && dvv_clock_descends(&ab.vv, &b->vv);
            /* merging in something already merged changes nothing */
            struct dvv_obj abb = {0};
            ok = ok && merged(&abb, &ab, b) && same_bytes(&abb, &ab);
            if (!ok && failures++ == 0)
                fprintf(stderr, "  merge laws fail: seed %" PRIu64 " trial %d\n", seed, t);
            dvv_free(&ab), dvv_free(&ba), dvv_free(&aa), dvv_free(&ab_c);
            dvv_free(&bc), dvv_free(&a_bc), dvv_free(&abb);
        }
        hist_free(&h);
    }
    CHECK_EQ_INT(failures, 0);
}

TEST(dvv_replicas_converge_and_lose_no_acknowledged_write)
{
    int failures = 0, n_superseded = 0, n_live = 0, multi = 0;
    for (uint64_t seed = 100; seed < 160; seed++) {
        struct hist h = {.seed = seed};
        int steps = 40 + (int)rng_below(&h.seed, 200);
        for (int step = 0; step < steps; step++)
            hist_step(&h, step);

        /* Everyone syncs with everyone, in a random order, until no
         * replica changes: then all hold the same bytes. */
        for (int round = 0; round < 2; round++)
            for (int i = 0; i < HIST_R * HIST_R; i++) {
                uint64_t a = rng_below(&h.seed, HIST_R), b = rng_below(&h.seed, HIST_R);
                CHECK_EQ_INT(dvv_merge(&h.rep[a], &h.rep[b]), 0);
            }
        for (int i = 1; i < HIST_R; i++)
            CHECK_EQ_INT(dvv_merge(&h.rep[0], &h.rep[i]), 0);
        for (int i = 1; i < HIST_R; i++)
            CHECK_EQ_INT(dvv_merge(&h.rep[i], &h.rep[0]), 0);
        bool ok = true;
        for (int i = 1; i < HIST_R; i++)
            ok &= same_bytes(&h.rep[i], &h.rep[0]);

        /* Every write made is covered, and it is a live sibling exactly
         * when no write's context covered it (in which case it was
         * superseded, as a client asked). */
        const struct dvv_obj *f = &h.rep[0];
        for (int i = 0; i < h.n_w; i++) {
            struct dvv_dot d = h.w[i].dot;
            bool superseded = false;
            for (int j = 0; j < h.n_w && !superseded; j++)
                superseded = dvv_clock_covers(&h.w[j].ctx, d);
            ok &= dvv_covers(f, d);
            ok &= has_dot(f, d) == !superseded;
            n_superseded += superseded;
        }
        n_live += (int)f->n_sibs;
        multi += f->n_sibs > 1;
        /* ... and holds nothing that was never written */
        for (uint32_t s = 0; s < f->n_sibs; s++) {
            bool made = false;
            for (int i = 0; i < h.n_w && !made; i++)
                made = h.w[i].dot.actor == f->sibs[s].dot.actor &&
                       h.w[i].dot.counter == f->sibs[s].dot.counter;
            ok &= made;
        }
        if (!ok && failures++ == 0)
            fprintf(stderr, "  convergence fails: seed %" PRIu64 "\n", seed);
        hist_free(&h);
    }
    CHECK_EQ_INT(failures, 0);
    /* the histories had both kinds of write, and concurrency at the end */
    CHECK(n_superseded > 1000 && n_live > 100 && multi > 10);
}

TEST(dvv_merge_past_decode_limits_is_refused_and_leaves_dst_unchanged)
{
    /* DVV_DECODE_ACTORS_MAX blind writes by distinct actors in a, one more in b. */
    struct dvv_obj a = {0}, b = {0};
    for (uint64_t i = 1; i <= DVV_DECODE_ACTORS_MAX; i++) {
        struct dvv_obj one = {0};
        CHECK_EQ_INT(dvv_update(&one, &no_ctx, i, 1, 1, false, "v", 1, NULL), 0);
        if (i == 1 || i == DVV_DECODE_ACTORS_MAX) /* siblings stay few, actors grow */
            CHECK_EQ_INT(dvv_merge(&a, &one), 0);
        else
            dvv_clock_join(&a.vv, &one.vv);
        dvv_free(&one);
    }
    CHECK_EQ_INT(a.vv.n, DVV_DECODE_ACTORS_MAX);
    put(&b, &no_ctx, DVV_DECODE_ACTORS_MAX + 1, 1, "w");
    struct dvv_obj before;
    dvv_copy(&before, &a);
    CHECK_EQ_INT(dvv_merge(&a, &b), TRIAD_ELIMIT);
    CHECK(same_bytes(&a, &before));
    /* update refuses to make an actor the decoder would refuse */
    CHECK_EQ_INT(dvv_update(&a, &no_ctx, DVV_DECODE_ACTORS_MAX + 1, 1, 1, false, "v", 1, NULL),
                 TRIAD_ELIMIT);
    CHECK(same_bytes(&a, &before));
    CHECK_EQ_INT(dvv_update(&a, &no_ctx, 1, 1, 1, false, "v", 1, NULL), 0);
    dvv_free(&before);
    dvv_free(&a);
    dvv_free(&b);
}

/* ---- the object encoding ---- */

/* A random valid object, built field by field: actors and counters of
 * every varint width, up to two siblings under each clock entry. */
static void random_obj(uint64_t *seed, struct dvv_obj *o)
{
    memset(o, 0, sizeof(*o));
    uint64_t n_actors = rng_below(seed, 8);
    for (uint64_t i = 0; i < n_actors; i++) {
        dvv_actor a = 1 + (rng_next(seed) >> rng_below(seed, 64));
        uint64_t c = 1 + (rng_next(seed) >> (1 + rng_below(seed, 63)));
        dvv_clock_bump(&o->vv, a == 0 ? 1 : a, c);
    }
    o->cap_sibs = 2 * o->vv.n;
    o->sibs = o->cap_sibs ? tcalloc(o->cap_sibs, sizeof(*o->sibs)) : NULL;
    for (uint32_t i = 0; i < o->vv.n; i++) {
        struct dvv_dot top = o->vv.e[i];
        uint64_t k = rng_below(seed, TRIAD_MIN(top.counter, 3));
        uint64_t off = k ? rng_below(seed, TRIAD_MIN(top.counter - k + 1, 4)) : 0;
        for (uint64_t j = k; j > 0; j--) { /* counters ascending, all <= top */
            struct dvv_sib *s = &o->sibs[o->n_sibs++];
            s->dot = (struct dvv_dot){top.actor, top.counter - (j - 1) - off};
            s->ts = rng_next(seed) >> rng_below(seed, 64);
            s->node = (uint32_t)(rng_next(seed) >> rng_below(seed, 32));
            s->tombstone = rng_below(seed, 4) == 0;
            s->len = s->tombstone ? 0 : (uint32_t)rng_below(seed, 300);
            s->value = s->len ? tmalloc(s->len) : NULL;
            for (uint32_t b = 0; b < s->len; b++)
                s->value[b] = (char)rng_next(seed);
        }
    }
    CHECK(dvv__check(o));
}

TEST(dvv_encode_decode_round_trips_random_objects_canonically)
{
    uint64_t seed = 7;
    struct tbuf b = {0}, b2 = {0};
    int bad = 0, with_sibs = 0;
    for (int t = 0; t < 500; t++) {
        struct dvv_obj o, d, c;
        random_obj(&seed, &o);
        with_sibs += o.n_sibs > 1;
        encode(&o, &b);
        char err[128] = "";
        if (dvv_decode(&d, b.data, b.len, err, sizeof(err)) != 0) {
            if (bad++ == 0)
                fprintf(stderr, "  decode failed at %d: %s\n", t, err);
            dvv_free(&o);
            continue;
        }
        encode(&d, &b2);
        bool ok = dvv_equal(&o, &d) && dvv__check(&d);
        ok = ok && b.len == b2.len && memcmp(b.data, b2.data, b.len) == 0;
        for (uint32_t i = 0; ok && i < o.n_sibs; i++) {
            const struct dvv_sib *x = &o.sibs[i], *y = &d.sibs[i];
            ok = x->ts == y->ts && x->node == y->node && x->tombstone == y->tombstone &&
                 x->len == y->len && (x->len == 0 || memcmp(x->value, y->value, x->len) == 0);
        }
        ok = ok && dvv_digest(&o) == XXH3_64bits(b.data, b.len);
        ok = ok && dvv_digest(&d) == dvv_digest(&o);
        dvv_copy(&c, &o);
        ok = ok && dvv_equal(&c, &o) && dvv_digest(&c) == dvv_digest(&o);
        if (!ok && bad++ == 0)
            fprintf(stderr, "  round trip differs at %d\n", t);
        dvv_free(&o);
        dvv_free(&d);
        dvv_free(&c);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(with_sibs > 50); /* the generator does make interesting objects */

    /* the empty object: version, no actors, no siblings */
    struct dvv_obj e = {0}, d;
    encode(&e, &b);
    CHECK(b.len == 3 && b.data[0] == 1 && b.data[1] == 0 && b.data[2] == 0);
    CHECK_EQ_INT(dvv_decode(&d, b.data, b.len, NULL, 0), 0);
    CHECK(dvv_equal(&d, &e));
    tbuf_free(&b);
    tbuf_free(&b2);
}

TEST(dvv_digest_tells_different_objects_apart)
{
    struct dvv_obj a = {0}, b = {0};
    put(&a, &no_ctx, 1, 5, "x");
    put(&b, &no_ctx, 1, 5, "y");
    CHECK(dvv_digest(&a) != dvv_digest(&b));
    struct dvv_obj e = {0};
    CHECK(dvv_digest(&a) != dvv_digest(&e));
    dvv_free(&a);
    dvv_free(&b);
}

/* A hand-written encoding, to make each malformed case exactly. */
static void vput(struct tbuf *b, uint64_t v)
{
    while (v >= 0x80) {
        tbuf_appendc(b, (char)(v | 0x80));
        v >>= 7;
    }
    tbuf_appendc(b, (char)v);
}

struct enc_sib {
    uint64_t actor, counter, ts, node;
    unsigned flag;
    uint64_t len;
};

static void enc(struct tbuf *b, unsigned version, int n_vv, const uint64_t *vv, int n_sibs,
                const struct enc_sib *s)
{
    tbuf_reset(b);
    tbuf_appendc(b, (char)version);
    vput(b, (uint64_t)n_vv);
    for (int i = 0; i < 2 * n_vv; i++)
        vput(b, vv[i]);
    vput(b, (uint64_t)n_sibs);
    for (int i = 0; i < n_sibs; i++) {
        vput(b, s[i].actor);
        vput(b, s[i].counter);
        vput(b, s[i].ts);
        vput(b, s[i].node);
        tbuf_appendc(b, (char)s[i].flag);
        vput(b, s[i].len);
        for (uint64_t k = 0; k < s[i].len; k++)
            tbuf_appendc(b, 'v');
    }
}

static bool rejected(const struct tbuf *b, const char *want)
{
    struct dvv_obj o;
    char err[160] = "";
    int rc = dvv_decode(&o, b->data, b->len, err, sizeof(err));
    bool ok = rc == TRIAD_EPROTO && err[0] != '\0' && o.n_sibs == 0 && o.vv.n == 0 &&
              o.sibs == NULL && o.vv.e == NULL;
    if (ok && want != NULL && strstr(err, want) == NULL)
        ok = false;
    if (!ok)
        fprintf(stderr, "  expected rejection (%s): rc %d err \"%s\"\n", want ? want : "", rc,
                err);
    if (rc == 0)
        dvv_free(&o);
    return ok;
}

static bool accepted(const struct tbuf *b)
{
    struct dvv_obj o;
    char err[160] = "";
    int rc = dvv_decode(&o, b->data, b->len, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "  unexpected rejection: %s\n", err);
    dvv_free(&o);
    return rc == 0;
}

TEST(dvv_decode_rejects_every_malformed_encoding_with_an_errmsg)
{
    struct tbuf b = {0};
    const uint64_t vv[] = {1, 3, 5, 2};
    struct enc_sib s[2] = {{1, 2, 100, 7, 0, 3}, {5, 2, 101, 8, 1, 0}};

    enc(&b, 1, 2, vv, 2, s);
    CHECK(accepted(&b)); /* the base every case below breaks once */

    CHECK(rejected(&(struct tbuf){0}, "empty"));
    enc(&b, 0, 2, vv, 2, s);
    CHECK(rejected(&b, "version"));
    enc(&b, 2, 2, vv, 2, s);
    CHECK(rejected(&b, "version"));

    enc(&b, 1, 2, vv, 2, s);
    tbuf_appendc(&b, 0);
    CHECK(rejected(&b, "trailing"));

    const uint64_t vv_actor0[] = {0, 3, 5, 2};
    enc(&b, 1, 2, vv_actor0, 0, s);
    CHECK(rejected(&b, "zero actor"));
    const uint64_t vv_counter0[] = {1, 0, 5, 2};
    enc(&b, 1, 2, vv_counter0, 0, s);
    CHECK(rejected(&b, "zero counter"));
    const uint64_t vv_equal[] = {5, 3, 5, 2};
    enc(&b, 1, 2, vv_equal, 0, s);
    CHECK(rejected(&b, "ascending"));
    const uint64_t vv_desc[] = {5, 3, 1, 2};
    enc(&b, 1, 2, vv_desc, 0, s);
    CHECK(rejected(&b, "ascending"));

    struct enc_sib same[2] = {s[0], s[0]};
    enc(&b, 1, 2, vv, 2, same);
    CHECK(rejected(&b, "ascending"));
    struct enc_sib desc[2] = {s[1], s[0]};
    desc[0].flag = 0;
    enc(&b, 1, 2, vv, 2, desc);
    CHECK(rejected(&b, "ascending"));
    struct enc_sib desc_counter[2] = {{1, 3, 1, 1, 0, 0}, {1, 2, 1, 1, 0, 0}};
    enc(&b, 1, 2, vv, 2, desc_counter);
    CHECK(rejected(&b, "ascending"));

    struct enc_sib uncovered[1] = {{1, 4, 1, 1, 0, 0}}; /* vv[1] = 3 */
    enc(&b, 1, 2, vv, 1, uncovered);
    CHECK(rejected(&b, "not covered"));
    struct enc_sib unknown_actor[1] = {{2, 1, 1, 1, 0, 0}};
    enc(&b, 1, 2, vv, 1, unknown_actor);
    CHECK(rejected(&b, "not covered"));
    struct enc_sib sib_actor0[1] = {{0, 1, 1, 1, 0, 0}};
    enc(&b, 1, 2, vv, 1, sib_actor0);
    CHECK(rejected(&b, "zero actor"));
    struct enc_sib sib_counter0[1] = {{1, 0, 1, 1, 0, 0}};
    enc(&b, 1, 2, vv, 1, sib_counter0);
    CHECK(rejected(&b, "zero counter"));

    struct enc_sib tomb_value[1] = {{1, 1, 1, 1, 1, 2}};
    enc(&b, 1, 2, vv, 1, tomb_value);
    CHECK(rejected(&b, "tombstone with a value"));
    struct enc_sib flag2[1] = {{1, 1, 1, 1, 2, 0}};
    enc(&b, 1, 2, vv, 1, flag2);
    CHECK(rejected(&b, "flag"));
    struct enc_sib flag_ff[1] = {{1, 1, 1, 1, 0xff, 0}};
    enc(&b, 1, 2, vv, 1, flag_ff);
    CHECK(rejected(&b, "flag"));
    struct enc_sib big_node[1] = {{1, 1, 1, (uint64_t)UINT32_MAX + 1, 0, 0}};
    enc(&b, 1, 2, vv, 1, big_node);
    CHECK(rejected(&b, "node"));
    struct enc_sib max_node[1] = {{1, 1, 1, UINT32_MAX, 0, 0}};
    enc(&b, 1, 2, vv, 1, max_node);
    CHECK(accepted(&b));

    /* limits: counts past them are refused before anything is read */
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, DVV_DECODE_ACTORS_MAX + 1);
    CHECK(rejected(&b, "actors"));
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, 0);
    vput(&b, DVV_DECODE_SIBLINGS_MAX + 1);
    CHECK(rejected(&b, "siblings"));
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, 1), vput(&b, 1), vput(&b, 1);
    vput(&b, 1), vput(&b, 1), vput(&b, 1), vput(&b, 1), vput(&b, 1);
    tbuf_appendc(&b, 0);
    vput(&b, (uint64_t)DVV_VALUE_BYTES_MAX + 1);
    CHECK(rejected(&b, "limit"));
    /* a declared value longer than what follows */
    struct enc_sib short_value[1] = {{1, 1, 1, 1, 0, 5}};
    enc(&b, 1, 2, vv, 1, short_value);
    b.len -= 1;
    CHECK(rejected(&b, "truncated"));

    /* exactly at the limits is fine: 4096 actors, 4096 siblings over them */
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, DVV_DECODE_ACTORS_MAX);
    for (uint64_t a = 1; a <= DVV_DECODE_ACTORS_MAX; a++)
        vput(&b, a), vput(&b, 1);
    vput(&b, DVV_DECODE_SIBLINGS_MAX);
    for (uint64_t a = 1; a <= DVV_DECODE_SIBLINGS_MAX; a++) {
        vput(&b, a), vput(&b, 1), vput(&b, 9), vput(&b, 1);
        tbuf_appendc(&b, 1);
        vput(&b, 0);
    }
    CHECK(accepted(&b));

    /* non-minimal and overlong varints: 0 as 0x80 0x00, 1 as 0x81 0x00 */
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    tbuf_append(&b, "\x80\x00", 2);
    vput(&b, 0);
    CHECK(rejected(&b, "non-minimal"));
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, 1);
    tbuf_append(&b, "\x81\x00", 2);
    vput(&b, 1), vput(&b, 0);
    CHECK(rejected(&b, "non-minimal"));
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, 1);
    tbuf_append(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x02", 10); /* 2^64 and more */
    vput(&b, 1), vput(&b, 0);
    CHECK(rejected(&b, "64 bits"));
    tbuf_reset(&b);
    tbuf_appendc(&b, 1);
    vput(&b, 1);
    tbuf_append(&b, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 10); /* UINT64_MAX */
    vput(&b, UINT64_MAX), vput(&b, 0);
    CHECK(accepted(&b));
    tbuf_free(&b);
}

TEST(dvv_decode_rejects_every_strict_prefix_and_survives_every_byte_flip)
{
    uint64_t seed = 99;
    struct tbuf b = {0}, c = {0}, r = {0};
    int bad = 0, flips = 0, flips_ok = 0;
    for (int t = 0; t < 60; t++) {
        struct dvv_obj o, d;
        random_obj(&seed, &o);
        encode(&o, &b);
        dvv_free(&o);
        for (size_t n = 0; n < b.len; n++) {
            char err[128] = "";
            int rc = dvv_decode(&d, b.data, n, err, sizeof(err));
            if ((rc != TRIAD_EPROTO || err[0] == '\0') && bad++ == 0)
                fprintf(stderr, "  prefix %zu of %zu accepted\n", n, b.len);
            if (rc == 0)
                dvv_free(&d);
        }
        /* Flip each byte a few ways: decode fails, or what it accepts is
         * canonical (re-encodes to the same bytes). */
        for (size_t i = 0; i < b.len; i++) {
            for (int k = 0; k < 3; k++) {
                tbuf_reset(&c);
                tbuf_append(&c, b.data, b.len);
                static const unsigned char fixed[] = {0x01, 0x80};
                c.data[i] ^= (char)(k < 2 ? fixed[k] : 1 + rng_below(&seed, 255));
                flips++;
                if (dvv_decode(&d, c.data, c.len, NULL, 0) != 0)
                    continue;
                flips_ok++;
                encode(&d, &r);
                if ((r.len != c.len || memcmp(r.data, c.data, c.len) != 0) && bad++ == 0)
                    fprintf(stderr, "  flip at %zu accepted non-canonically\n", i);
                dvv_free(&d);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(flips_ok > 0 && flips_ok < flips); /* both paths were taken */
    tbuf_free(&b);
    tbuf_free(&c);
    tbuf_free(&r);
}

/* ---- the context string ---- */

static bool ctx_rejected(const char *s, size_t n, const char *want)
{
    struct dvv_clock c;
    char err[160] = "";
    int rc = dvv_context_decode(&c, s, n, err, sizeof(err));
    bool ok = rc == TRIAD_EPROTO && err[0] != '\0' && c.n == 0 && c.e == NULL &&
              (want == NULL || strstr(err, want) != NULL);
    if (!ok)
        fprintf(stderr, "  expected context rejection (%s) of \"%.*s\": rc %d err \"%s\"\n",
                want ? want : "", (int)TRIAD_MIN(n, 60), s, rc, err);
    if (rc == 0)
        dvv_clock_free(&c);
    return ok;
}

/* "c1" and base64url of the given raw bytes (a test-side encoder). */
static void ctx_of_raw(struct tbuf *out, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    tbuf_reset(out);
    tbuf_appends(out, "c1");
    uint32_t acc = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | p[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            tbuf_appendc(out, tab[(acc >> bits) & 63]);
        }
    }
    if (bits > 0)
        tbuf_appendc(out, tab[(acc << (6 - bits)) & 63]);
}

TEST(dvv_context_round_trips_and_is_printable)
{
    uint64_t seed = 5;
    struct tbuf s = {0}, s2 = {0};
    int bad = 0;
    for (int t = 0; t < 300; t++) {
        struct dvv_clock c = {0}, d;
        uint64_t n = rng_below(&seed, 12);
        for (uint64_t i = 0; i < n; i++)
            dvv_clock_bump(&c, 1 + (rng_next(&seed) >> rng_below(&seed, 64)),
                           1 + (rng_next(&seed) >> (1 + rng_below(&seed, 63))));
        tbuf_reset(&s);
        dvv_context_encode(&c, &s);
        bool ok = c.n == 0 ? s.len == 0 : s.len > 2 && memcmp(s.data, "c1", 2) == 0;
        for (size_t i = 0; i < s.len; i++)
            ok &= s.data[i] > ' ' && s.data[i] <= '~' && s.data[i] != '=';
        char err[128] = "";
        if (dvv_context_decode(&d, s.data, s.len, err, sizeof(err)) != 0) {
            fprintf(stderr, "  context decode failed: %s\n", err);
            ok = false;
        } else {
            ok &= dvv_clock_equal(&c, &d);
            tbuf_reset(&s2);
            dvv_context_encode(&d, &s2);
            ok &= s2.len == s.len && memcmp(s.data, s2.data, s.len) == 0;
            dvv_clock_free(&d);
        }
        if (!ok && bad++ == 0)
            fprintf(stderr, "  context round trip fails at %d\n", t);
        dvv_clock_free(&c);
    }
    CHECK_EQ_INT(bad, 0);

    /* "" is the empty clock */
    struct dvv_clock e;
    CHECK_EQ_INT(dvv_context_decode(&e, "", 0, NULL, 0), 0);
    CHECK(e.n == 0);
    /* a known value: {1: 1} is the bytes 01 01 01 -> "AQEB" */
    struct dvv_clock one = {0};
    dvv_clock_bump(&one, 1, 1);
    tbuf_reset(&s);
    dvv_context_encode(&one, &s);
    CHECK_MEM_STR(s.data, s.len, "c1AQEB");
    dvv_clock_free(&one);
    tbuf_free(&s);
    tbuf_free(&s2);
}

TEST(dvv_context_decode_rejects_everything_but_canonical_contexts)
{
    struct tbuf s = {0};
    CHECK(ctx_rejected("x1AQEB", 6, "prefix"));
    CHECK(ctx_rejected("c2AQEB", 6, "prefix"));
    CHECK(ctx_rejected("c", 1, "prefix"));
    CHECK(ctx_rejected("AQEB", 4, "prefix"));
    CHECK(ctx_rejected("c1", 2, "non-canonical"));
    CHECK(ctx_rejected("c1AQE=", 6, "character"));  /* padding */
    CHECK(ctx_rejected("c1AQ+B", 6, "character"));  /* plain base64's alphabet */
    CHECK(ctx_rejected("c1AQ/B", 6, "character"));
    CHECK(ctx_rejected("c1AQ B", 6, "character"));
    CHECK(ctx_rejected("c1AQ\0B", 6, "character"));
    CHECK(ctx_rejected("c1AQEBA", 7, "length"));     /* 5 chars: 1 mod 4 */
    CHECK(ctx_rejected("c1AQEBAR", 8, "non-canonical")); /* stray low bits */
    CHECK(ctx_rejected("c1AQF", 5, "non-canonical"));

    const unsigned char zero_count[] = {0};
    ctx_of_raw(&s, zero_count, sizeof(zero_count));
    CHECK(ctx_rejected(s.data, s.len, "non-canonical"));
    const unsigned char unsorted[] = {2, 5, 1, 3, 1};
    ctx_of_raw(&s, unsorted, sizeof(unsorted));
    CHECK(ctx_rejected(s.data, s.len, "ascending"));
    const unsigned char dup[] = {2, 5, 1, 5, 1};
    ctx_of_raw(&s, dup, sizeof(dup));
    CHECK(ctx_rejected(s.data, s.len, "ascending"));
    const unsigned char zero_counter[] = {1, 5, 0};
    ctx_of_raw(&s, zero_counter, sizeof(zero_counter));
    CHECK(ctx_rejected(s.data, s.len, "zero counter"));
    const unsigned char zero_actor[] = {1, 0, 1};
    ctx_of_raw(&s, zero_actor, sizeof(zero_actor));
    CHECK(ctx_rejected(s.data, s.len, "zero actor"));
    const unsigned char nonmin[] = {1, 0x85, 0x00, 1};
    ctx_of_raw(&s, nonmin, sizeof(nonmin));
    CHECK(ctx_rejected(s.data, s.len, "non-minimal"));
    const unsigned char truncated[] = {2, 5, 1, 6};
    ctx_of_raw(&s, truncated, sizeof(truncated));
    CHECK(ctx_rejected(s.data, s.len, "truncated"));
    const unsigned char trailing[] = {1, 5, 1, 9};
    ctx_of_raw(&s, trailing, sizeof(trailing));
    CHECK(ctx_rejected(s.data, s.len, "trailing"));
    const unsigned char too_many[] = {0x81, 0x20}; /* 4097 */
    ctx_of_raw(&s, too_many, sizeof(too_many));
    CHECK(ctx_rejected(s.data, s.len, "actors"));
    const unsigned char good[] = {2, 5, 1, 6, 0x80, 0x01};
    ctx_of_raw(&s, good, sizeof(good));
    struct dvv_clock c;
    CHECK_EQ_INT(dvv_context_decode(&c, s.data, s.len, NULL, 0), 0);
    CHECK(c.n == 2 && dvv_clock_get(&c, 6) == 128);
    dvv_clock_free(&c);

    /* Too long: checked on the length alone, whatever the bytes. */
    tbuf_reset(&s);
    tbuf_appends(&s, "c1");
    while (s.len < DVV_CONTEXT_BYTES_MAX + 1)
        tbuf_appendc(&s, 'A');
    CHECK(ctx_rejected(s.data, s.len, "more than"));

    /* Every strict prefix of a valid context other than "" is refused. */
    struct dvv_clock big = {0};
    for (uint64_t a = 1; a < 20; a++)
        dvv_clock_bump(&big, a * 1000003, a * a);
    tbuf_reset(&s);
    dvv_context_encode(&big, &s);
    int bad = 0;
    for (size_t n = 1; n < s.len; n++) {
        struct dvv_clock d;
        if (dvv_context_decode(&d, s.data, n, NULL, 0) == 0) {
            bad++;
            dvv_clock_free(&d);
        }
    }
    CHECK_EQ_INT(bad, 0);
    dvv_clock_free(&big);
    tbuf_free(&s);
}

int main(void)
{
    RUN(dvv_update_on_an_empty_object_makes_one_sibling_with_the_first_dot);
    RUN(dvv_write_with_a_read_context_supersedes_exactly_the_siblings_read);
    RUN(dvv_two_writes_with_the_same_stale_context_become_siblings);
    RUN(dvv_blind_write_never_supersedes);
    RUN(dvv_new_dot_counts_past_a_context_that_is_ahead_of_the_object);
    RUN(dvv_one_clients_sequential_writes_never_make_siblings);
    RUN(dvv_update_past_siblings_max_is_refused_and_leaves_the_object_unchanged);
    RUN(dvv_update_refuses_a_counter_that_would_overflow);
    RUN(dvv_tombstones_delete_only_what_they_saw);
    RUN(dvv_clock_ops_keep_entries_sorted_and_take_maxima);
    RUN(dvv_covers_what_it_holds_and_what_it_superseded_and_nothing_newer);
    RUN(dvv_equal_compares_the_clock_and_the_sibling_dots);
    RUN(dvv_winner_is_max_of_ts_then_node_then_dot_whatever_the_order);
    RUN(dvv_merge_is_commutative_associative_and_idempotent_on_random_histories);
    RUN(dvv_replicas_converge_and_lose_no_acknowledged_write);
    RUN(dvv_merge_past_decode_limits_is_refused_and_leaves_dst_unchanged);
    RUN(dvv_encode_decode_round_trips_random_objects_canonically);
    RUN(dvv_digest_tells_different_objects_apart);
    RUN(dvv_decode_rejects_every_malformed_encoding_with_an_errmsg);
    RUN(dvv_decode_rejects_every_strict_prefix_and_survives_every_byte_flip);
    RUN(dvv_context_round_trips_and_is_printable);
    RUN(dvv_context_decode_rejects_everything_but_canonical_contexts);
    return test_summary("vclock");
}
