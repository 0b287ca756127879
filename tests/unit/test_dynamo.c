/* test_dynamo.c - leaderless mode's coordinator and replica logic, on a
 * hand-driven in-memory cluster: every message is encoded, queued and
 * delivered by the test, the store is a small map per node, and a node's
 * puts become durable only when the test says (or at once). The
 * randomized fault schedules live in the simulator (sim/dsim.c); these
 * tests pin down one behaviour each. */
#include <stdlib.h>
#include <string.h>

#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/core/dynamo.h"
#include "../../src/core/ring.h"
#include "test.h"

#define T_NODES_MAX 6
#define T_KEYS_MAX 4096

struct t_ent {
    uint32_t owner; /* hints: whose (0: the node's own store) */
    char *key;
    size_t klen;
    struct tbuf obj;
};

struct t_node {
    struct dyn *d;
    uint32_t id;
    bool down;         /* crashed: messages to it vanish, no ticks */
    bool hold;         /* puts wait for t_flush */
    uint64_t held[1024];
    size_t n_held;
    struct t_ent ents[T_KEYS_MAX];
    size_t n_ents;
};

struct t_reply {
    bool done;
    uint8_t err;
    char msg[160];
    struct tbuf obj;   /* encoded result object */
    struct dvv_dot dot;
    bool existed;
};

static struct t_node tn[T_NODES_MAX + 1];
static uint32_t t_count;
static uint64_t t_now;
static struct tbuf t_q; /* [u32 to][u32 len][msg] ... */
static struct t_reply t_rep[64];
static bool t_cut[T_NODES_MAX + 1][T_NODES_MAX + 1]; /* link from->to dropped */
static uint8_t t_drop_type; /* messages of this type vanish (0: none) */

static struct t_ent *t_find(struct t_node *n, uint32_t owner, const char *key, size_t klen)
{
    for (size_t i = 0; i < n->n_ents; i++)
        if (n->ents[i].owner == owner && n->ents[i].klen == klen &&
            memcmp(n->ents[i].key, key, klen) == 0)
            return &n->ents[i];
    return NULL;
}

static void t_set(struct t_node *n, uint32_t owner, const char *key, size_t klen,
                  const struct dvv_obj *o)
{
    struct t_ent *e = t_find(n, owner, key, klen);
    if (o == NULL) {
        if (e != NULL) {
            free(e->key);
            tbuf_free(&e->obj);
            *e = n->ents[--n->n_ents];
        }
        return;
    }
    if (e == NULL) {
        TRIAD_ASSERT(n->n_ents < T_KEYS_MAX);
        e = &n->ents[n->n_ents++];
        memset(e, 0, sizeof(*e));
        e->owner = owner;
        e->key = malloc(klen);
        memcpy(e->key, key, klen);
        e->klen = klen;
    }
    tbuf_reset(&e->obj);
    dvv_encode(o, &e->obj);
}

static bool t_get_obj(struct t_node *n, uint32_t owner, const char *key, size_t klen,
                      struct dvv_obj *out)
{
    struct t_ent *e = t_find(n, owner, key, klen);
    if (e == NULL)
        return false;
    int rc = dvv_decode(out, e->obj.data, e->obj.len, NULL, 0);
    TRIAD_ASSERT(rc == 0);
    return true;
}

static void t_durable(struct t_node *n, uint64_t token)
{
    if (n->hold) {
        TRIAD_ASSERT(n->n_held < 1024);
        n->held[n->n_held++] = token;
    } else {
        dyn_durable(n->d, token);
    }
}

/* io */
static void io_send(void *arg, const struct dyn_msg *m)
{
    size_t at = t_q.len;
    tbuf_append_u32le(&t_q, m->to);
    tbuf_append_u32le(&t_q, 0);
    dyn_msg_encode(m, &t_q);
    tbuf_write_u32le(t_q.data + at + 4, (uint32_t)(t_q.len - at - 8));
}
static bool io_get(void *arg, const char *key, size_t klen, struct dvv_obj *out)
{
    return t_get_obj(arg, 0, key, klen, out);
}
static void io_put(void *arg, const char *key, size_t klen, const struct dvv_obj *o, uint64_t tok)
{
    t_set(arg, 0, key, klen, o);
    t_durable(arg, tok);
}
static bool io_hint_get(void *arg, uint32_t owner, const char *key, size_t klen,
                        struct dvv_obj *out)
{
    return t_get_obj(arg, owner, key, klen, out);
}
static void io_hint_put(void *arg, uint32_t owner, const char *key, size_t klen,
                        const struct dvv_obj *o, uint64_t tok)
{
    t_set(arg, owner, key, klen, o);
    t_durable(arg, tok);
}
static uint64_t io_hint_count(void *arg, uint32_t owner)
{
    struct t_node *n = arg;
    uint64_t c = 0;
    for (size_t i = 0; i < n->n_ents; i++)
        if (n->ents[i].owner != 0 && (owner == 0 || n->ents[i].owner == owner))
            c++;
    return c;
}
static void t_scan_owner(struct t_node *n, uint32_t owner, bool range, uint64_t lo, uint64_t hi,
                         size_t max, dyn_scan_cb cb, void *cbarg)
{
    size_t seen = 0;
    for (size_t i = 0; i < n->n_ents && (max == 0 || seen < max); i++) {
        struct t_ent *e = &n->ents[i];
        if (e->owner != owner)
            continue;
        if (range && !ring_in_range(lo, hi, ring_hash(e->key, e->klen)))
            continue;
        struct dvv_obj o = {0};
        dvv_decode(&o, e->obj.data, e->obj.len, NULL, 0);
        cb(cbarg, e->key, e->klen, &o);
        dvv_free(&o);
        seen++;
    }
}
static void io_scan(void *arg, uint64_t lo, uint64_t hi, size_t max, dyn_scan_cb cb, void *cbarg)
{
    t_scan_owner(arg, 0, true, lo, hi, max, cb, cbarg);
}
static void io_scan_hints(void *arg, uint32_t owner, size_t max, dyn_scan_cb cb, void *cbarg)
{
    t_scan_owner(arg, owner, false, 0, 0, max, cb, cbarg);
}
static void io_reply(void *arg, uint64_t req, const struct dyn_result *r)
{
    TRIAD_ASSERT(req < 64);
    struct t_reply *t = &t_rep[req];
    TRIAD_ASSERT(!t->done);
    t->done = true;
    t->err = r->err;
    snprintf(t->msg, sizeof(t->msg), "%s", r->msg);
    tbuf_reset(&t->obj);
    if (r->obj != NULL)
        dvv_encode(r->obj, &t->obj);
    t->dot = r->dot;
    t->existed = r->existed;
}

static void t_cfg(struct dyn_config *c, uint32_t id)
{
    dyn_config_default(c, id);
    c->vnodes = 8;
    c->gossip.interval_ms = 100;
    c->request_timeout_ms = 500;
    c->hint_retry_ms = 200;
    c->ae_interval_ms = 0;
    c->merkle_depth = 6;
}

static void t_start_as(uint32_t id, const struct dyn_config *cfg, uint8_t status)
{
    struct t_node *n = &tn[id];
    struct dyn_io io = {n, io_send, io_get, io_put, io_hint_get, io_hint_put, io_hint_count,
                        io_scan, io_scan_hints, io_reply};
    struct gossip_state self;
    memset(&self, 0, sizeof(self));
    self.id = id;
    self.generation = t_now + 1;
    self.status = status;
    self.peer_port = (uint16_t)(7000 + id);
    self.client_port = (uint16_t)(6000 + id);
    strcpy(self.host, "127.0.0.1");
    n->id = id;
    n->down = false;
    n->d = dyn_new(cfg, &io, &self, id * 7919, t_now);
    for (uint32_t k = 1; k <= t_count; k++)
        dyn_add_seed(n->d, k);
}

static void t_start(uint32_t id, const struct dyn_config *cfg)
{
    t_start_as(id, cfg, GOSSIP_NORMAL);
}

static void t_cluster(uint32_t count, void (*tweak)(struct dyn_config *))
{
    memset(tn, 0, sizeof(tn));
    memset(t_cut, 0, sizeof(t_cut));
    for (size_t i = 0; i < 64; i++) {
        tbuf_free(&t_rep[i].obj);
        memset(&t_rep[i], 0, sizeof(t_rep[i]));
    }
    tbuf_reset(&t_q);
    t_count = count;
    t_now = 1000;
    for (uint32_t id = 1; id <= count; id++) {
        struct dyn_config c;
        t_cfg(&c, id);
        if (tweak)
            tweak(&c);
        t_start(id, &c);
    }
}

static void t_teardown(void)
{
    for (uint32_t id = 1; id <= t_count; id++) {
        if (tn[id].d)
            dyn_free(tn[id].d);
        for (size_t i = 0; i < tn[id].n_ents; i++) {
            free(tn[id].ents[i].key);
            tbuf_free(&tn[id].ents[i].obj);
        }
        tn[id].d = NULL;
        tn[id].n_ents = 0;
    }
}

/* Deliver every queued message (and what they cause). */
static void t_deliver(void)
{
    for (int rounds = 0; t_q.len > 0 && rounds < 10000; rounds++) {
        struct tbuf q = t_q;
        memset(&t_q, 0, sizeof(t_q));
        for (size_t off = 0; off < q.len;) {
            uint32_t to = tbuf_read_u32le(q.data + off);
            uint32_t len = tbuf_read_u32le(q.data + off + 4);
            const char *p = q.data + off + 8;
            off += 8 + len;
            struct dyn_msg m;
            int rc = dyn_msg_decode(&m, p, len, NULL, 0);
            TRIAD_ASSERT(rc == 0);
            if (to > t_count || tn[to].down || t_cut[m.from][to] || m.type == t_drop_type)
                continue;
            dyn_step(tn[to].d, &m, t_now);
        }
        tbuf_free(&q);
    }
}

/* Let time pass in steps of 10 ms, ticking every live node. */
static void t_run(uint64_t ms)
{
    uint64_t end = t_now + ms;
    while (t_now < end) {
        t_now += 10;
        for (uint32_t id = 1; id <= t_count; id++)
            if (!tn[id].down)
                dyn_tick(tn[id].d, t_now);
        t_deliver();
    }
}

static void t_req(uint32_t node, uint64_t id, uint8_t op, const char *key, const char *val,
                  const struct dvv_clock *ctx, uint32_t r, uint32_t w)
{
    struct dyn_req rq = {.id = id, .op = op, .key = key, .klen = strlen(key), .value = val,
                         .vlen = val ? strlen(val) : 0, .ctx = ctx, .r = r, .w = w};
    tbuf_free(&t_rep[id].obj);
    memset(&t_rep[id], 0, sizeof(t_rep[id]));
    dyn_submit(tn[node].d, &rq, t_now);
    t_deliver();
}

static void t_rep_obj(uint64_t id, struct dvv_obj *o)
{
    int rc = dvv_decode(o, t_rep[id].obj.data, t_rep[id].obj.len, NULL, 0);
    TRIAD_ASSERT(rc == 0);
}

/* The value GET would answer on request id's result ("" if none). */
static bool t_rep_value(uint64_t id, const char *want)
{
    struct dvv_obj o = {0};
    t_rep_obj(id, &o);
    const struct dvv_sib *w = dvv_winner(&o);
    bool ok;
    if (want == NULL)
        ok = w == NULL || w->tombstone;
    else
        ok = w != NULL && !w->tombstone && w->len == strlen(want) &&
             memcmp(w->value, want, w->len) == 0;
    dvv_free(&o);
    return ok;
}

/* Node id's own copy of key holds value `want` as its winner. */
/* A ring of nodes 1..n, as every node will compute it once they are the
 * members. */
static struct ring *t_ring_of(uint32_t n)
{
    struct ring *r = ring_new(8);
    for (uint32_t id = 1; id <= n; id++)
        ring_add(r, id);
    return r;
}

static bool t_local_is(uint32_t id, const char *key, const char *want)
{
    struct dvv_obj o = {0};
    bool have = t_get_obj(&tn[id], 0, key, strlen(key), &o);
    const struct dvv_sib *w = have ? dvv_winner(&o) : NULL;
    bool ok = w != NULL && !w->tombstone && want != NULL && w->len == strlen(want) &&
              memcmp(w->value, want, w->len) == 0;
    dvv_free(&o);
    return ok;
}

static uint32_t t_sibs(uint64_t id)
{
    struct dvv_obj o = {0};
    t_rep_obj(id, &o);
    uint32_t n = o.n_sibs;
    dvv_free(&o);
    return n;
}

/* let gossip make everyone known and alive */
static void t_settle(void) { t_run(1000); }

TEST(dyn_write_then_read_through_another_node)
{
    t_cluster(3, NULL);
    t_settle();
    t_req(1, 1, DYN_OP_SET, "k", "v1", NULL, 0, 0);
    CHECK(t_rep[1].done);
    CHECK_EQ_INT(t_rep[1].err, DYN_OK);
    CHECK(t_rep[1].dot.counter == 1);
    t_req(2, 2, DYN_OP_GET, "k", NULL, NULL, 0, 0);
    CHECK(t_rep[2].done && t_rep[2].err == DYN_OK);
    CHECK(t_rep_value(2, "v1"));
    /* N=3 on three nodes: every node holds it */
    for (uint32_t id = 1; id <= 3; id++)
        CHECK(t_local_is(id, "k", "v1"));
    t_teardown();
}

TEST(dyn_write_is_not_acknowledged_before_w_copies_are_durable)
{
    t_cluster(3, NULL);
    t_settle();
    for (uint32_t id = 1; id <= 3; id++)
        tn[id].hold = true;
    t_req(1, 1, DYN_OP_SET, "k", "v", NULL, 0, 2);
    CHECK(!t_rep[1].done);
    /* one durable copy is not enough for W=2 */
    uint32_t first = 0;
    for (uint32_t id = 1; id <= 3 && first == 0; id++)
        if (tn[id].n_held > 0)
            first = id;
    CHECK(first != 0);
    tn[first].hold = false;
    for (size_t i = 0; i < tn[first].n_held; i++)
        dyn_durable(tn[first].d, tn[first].held[i]);
    tn[first].n_held = 0;
    t_deliver();
    CHECK(!t_rep[1].done);
    for (uint32_t id = 1; id <= 3; id++) {
        tn[id].hold = false;
        for (size_t i = 0; i < tn[id].n_held; i++)
            dyn_durable(tn[id].d, tn[id].held[i]);
        tn[id].n_held = 0;
    }
    t_deliver();
    CHECK(t_rep[1].done && t_rep[1].err == DYN_OK);
    t_teardown();
}

static void t_strict(struct dyn_config *c) { c->sloppy = false; }

TEST(dyn_strict_quorum_fails_clearly_when_w_replicas_are_down)
{
    t_cluster(3, t_strict);
    t_settle();
    tn[2].down = tn[3].down = true;
    t_req(1, 1, DYN_OP_SET, "k", "v", NULL, 0, 2);
    CHECK(!t_rep[1].done);
    t_run(600);
    CHECK(t_rep[1].done);
    CHECK_EQ_INT(t_rep[1].err, DYN_ERR_UNAVAILABLE);
    CHECK(strncmp(t_rep[1].msg, "NOREPLICAS", 10) == 0);
    /* W=1 still works: the coordinating replica's own copy */
    t_req(1, 2, DYN_OP_SET, "k", "v2", NULL, 0, 1);
    CHECK(t_rep[2].done && t_rep[2].err == DYN_OK);
    /* a read at R=2 cannot be served */
    t_req(1, 3, DYN_OP_GET, "k", NULL, NULL, 2, 0);
    t_run(600);
    CHECK(t_rep[3].done && t_rep[3].err == DYN_ERR_UNAVAILABLE);
    t_teardown();
}

TEST(dyn_sloppy_quorum_writes_hints_and_hands_them_off)
{
    t_cluster(5, NULL);
    t_settle();
    /* a key whose replicas do not include node 5 */
    char key[16];
    uint32_t reps[3];
    int i = 0;
    for (;; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        dyn_replicas(tn[1].d, key, strlen(key), reps, 3);
        if (reps[0] != 5 && reps[1] != 5 && reps[2] != 5)
            break;
    }
    uint32_t dead = reps[2], via = reps[0];
    tn[dead].down = true;
    t_run(30000); /* the failure detector convicts it */
    CHECK(!gossip_alive(dyn_gossip(tn[via].d), dead, t_now));
    t_req(via, 1, DYN_OP_SET, key, "v", NULL, 0, 3); /* W=3: needs the stand-in */
    CHECK(t_rep[1].done && t_rep[1].err == DYN_OK);
    uint64_t hints = 0;
    for (uint32_t id = 1; id <= 5; id++)
        hints += io_hint_count(&tn[id], dead);
    CHECK_EQ_INT(hints, 1);
    CHECK(!t_local_is(dead, key, "v"));
    /* it comes back: the hint goes home */
    tn[dead].down = false;
    t_run(3000);
    CHECK(t_local_is(dead, key, "v"));
    hints = 0;
    for (uint32_t id = 1; id <= 5; id++)
        hints += io_hint_count(&tn[id], 0);
    CHECK_EQ_INT(hints, 0);
    t_teardown();
}

TEST(dyn_a_replica_that_times_out_is_stood_in_for_at_once)
{
    t_cluster(4, NULL);
    t_settle();
    uint32_t reps[3];
    dyn_replicas(tn[1].d, "k", 1, reps, 3);
    uint32_t dead = reps[2], via = reps[0];
    tn[dead].down = true;
    /* W=3 before gossip convicts it: the first write times out ... */
    t_req(via, 1, DYN_OP_SET, "k", "v1", NULL, 0, 3);
    t_run(600);
    CHECK(t_rep[1].done && t_rep[1].err == DYN_ERR_UNAVAILABLE);
    CHECK(gossip_alive(dyn_gossip(tn[via].d), dead, t_now));
    /* ... and the next goes to the stand-in */
    t_req(via, 2, DYN_OP_SET, "k", "v2", NULL, 0, 3);
    CHECK(t_rep[2].done && t_rep[2].err == DYN_OK);
    t_teardown();
}

TEST(dyn_a_coordinating_replica_that_times_out_is_passed_over_next_time)
{
    t_cluster(5, NULL);
    t_settle();
    char key[16];
    uint32_t reps[3];
    for (int i = 0;; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        dyn_replicas(tn[1].d, key, strlen(key), reps, 3);
        if (reps[0] != 5 && reps[1] != 5 && reps[2] != 5)
            break;
    }
    tn[reps[0]].down = true;
    t_req(5, 1, DYN_OP_SET, key, "v1", NULL, 0, 2);
    t_run(600);
    CHECK(t_rep[1].done && t_rep[1].err == DYN_ERR_UNAVAILABLE);
    t_req(5, 2, DYN_OP_SET, key, "v2", NULL, 0, 2);
    CHECK(t_rep[2].done && t_rep[2].err == DYN_OK);
    CHECK(t_local_is(reps[1], key, "v2"));
    t_teardown();
}

TEST(dyn_concurrent_puts_with_one_context_become_siblings_and_resolve)
{
    t_cluster(3, NULL);
    t_settle();
    t_req(1, 1, DYN_OP_SET, "k", "base", NULL, 0, 0);
    t_req(2, 2, DYN_OP_GETALL, "k", NULL, NULL, 0, 0);
    struct dvv_obj seen = {0};
    t_rep_obj(2, &seen);
    t_req(2, 3, DYN_OP_PUT, "k", "a", &seen.vv, 0, 0);
    t_req(3, 4, DYN_OP_PUT, "k", "b", &seen.vv, 0, 0);
    CHECK(t_rep[3].err == DYN_OK && t_rep[4].err == DYN_OK);
    t_req(1, 5, DYN_OP_GETALL, "k", NULL, NULL, 3, 0);
    CHECK_EQ_INT(t_sibs(5), 2);
    struct dvv_obj both = {0};
    t_rep_obj(5, &both);
    t_req(3, 6, DYN_OP_PUT, "k", "merged", &both.vv, 0, 0);
    t_req(2, 7, DYN_OP_GETALL, "k", NULL, NULL, 3, 0);
    CHECK_EQ_INT(t_sibs(7), 1);
    CHECK(t_rep_value(7, "merged"));
    dvv_free(&seen);
    dvv_free(&both);
    t_teardown();
}

TEST(dyn_one_clients_sets_through_different_coordinators_never_conflict)
{
    t_cluster(3, NULL);
    t_settle();
    /* the coordinating replica is cut off from one replica each time, so
     * each SET is made by a replica that has not seen the previous one;
     * the session context still supersedes it */
    struct dvv_clock session = {0};
    char val[16];
    for (int i = 0; i < 6; i++) {
        uint32_t via = (uint32_t)(i % 3) + 1;
        snprintf(val, sizeof(val), "v%d", i);
        memset(t_cut, 0, sizeof(t_cut));
        for (uint32_t x = 1; x <= 3; x++)
            t_cut[via][x] = x != via;
        t_req(via, (uint64_t)(10 + i), DYN_OP_SET, "k", val, &session, 0, 1);
        CHECK(t_rep[10 + i].err == DYN_OK);
        struct dvv_obj o = {0};
        t_rep_obj((uint64_t)(10 + i), &o);
        dvv_clock_free(&session);
        dvv_clock_copy(&session, &o.vv);
        dvv_free(&o);
    }
    memset(t_cut, 0, sizeof(t_cut));
    t_req(1, 30, DYN_OP_GETALL, "k", NULL, NULL, 3, 0);
    CHECK_EQ_INT(t_sibs(30), 1);
    CHECK(t_rep_value(30, "v5"));
    dvv_clock_free(&session);
    t_teardown();
}

static void t_no_ae_no_rr(struct dyn_config *c) { c->read_repair = false; }

TEST(dyn_concurrent_writes_in_a_partition_survive_as_siblings_on_every_replica)
{
    t_cluster(3, NULL);
    t_settle();
    /* node 1 alone on one side, 2 and 3 on the other */
    for (uint32_t x = 2; x <= 3; x++)
        t_cut[1][x] = t_cut[x][1] = true;
    t_req(1, 1, DYN_OP_SET, "k", "left", NULL, 0, 1);
    t_req(2, 2, DYN_OP_SET, "k", "right", NULL, 0, 2);
    CHECK(t_rep[1].err == DYN_OK && t_rep[2].err == DYN_OK);
    memset(t_cut, 0, sizeof(t_cut));
    t_req(3, 3, DYN_OP_GETALL, "k", NULL, NULL, 3, 0);
    CHECK_EQ_INT(t_sibs(3), 2);
    t_run(100);
    /* read repair gave every replica both */
    for (uint32_t id = 1; id <= 3; id++) {
        struct dvv_obj o = {0};
        CHECK(t_get_obj(&tn[id], 0, "k", 1, &o));
        CHECK_EQ_INT(o.n_sibs, 2);
        dvv_free(&o);
    }
    t_teardown();
}

TEST(dyn_read_repair_merges_and_never_clobbers_a_newer_write)
{
    t_cluster(3, NULL);
    t_settle();
    t_cut[1][2] = true; /* node 2 misses "v" */
    t_req(1, 1, DYN_OP_SET, "k", "v", NULL, 0, 2);
    CHECK(t_rep[1].err == DYN_OK);
    memset(t_cut, 0, sizeof(t_cut));
    t_cut[3][1] = true; /* node 3's answer is lost: the read waits */
    t_req(1, 2, DYN_OP_GET, "k", NULL, NULL, 2, 0);
    CHECK(t_rep[2].done && t_rep_value(2, "v"));
    /* meanwhile node 2 takes a write of its own */
    for (uint32_t x = 1; x <= 3; x++)
        t_cut[2][x] = x != 2;
    t_req(2, 3, DYN_OP_SET, "k", "new", NULL, 0, 1);
    CHECK(t_rep[3].err == DYN_OK);
    for (uint32_t x = 1; x <= 3; x++)
        t_cut[2][x] = false;
    t_run(600); /* the read ends; its repair reaches node 2 */
    CHECK(dyn_stats(tn[1].d)->read_repairs >= 1);
    CHECK(t_local_is(2, "k", "new"));
    struct dvv_obj o = {0};
    CHECK(t_get_obj(&tn[2], 0, "k", 1, &o));
    CHECK_EQ_INT(o.n_sibs, 2);
    dvv_free(&o);
    t_teardown();
}

TEST(dyn_read_repair_brings_a_stale_replica_up_to_date)
{
    t_cluster(3, NULL);
    t_settle();
    uint32_t reps[3];
    dyn_replicas(tn[1].d, "k", 1, reps, 3);
    /* the third replica misses the write */
    uint32_t stale = reps[2];
    for (uint32_t id = 1; id <= 3; id++)
        t_cut[id][stale] = true;
    t_req(reps[0], 1, DYN_OP_SET, "k", "v", NULL, 0, 2);
    CHECK(t_rep[1].err == DYN_OK);
    CHECK(!t_local_is(stale, "k", "v"));
    memset(t_cut, 0, sizeof(t_cut));
    t_req(reps[0], 2, DYN_OP_GET, "k", NULL, NULL, 2, 0);
    CHECK(t_rep_value(2, "v"));
    t_run(100);
    CHECK(t_local_is(stale, "k", "v"));
    CHECK(dyn_stats(tn[reps[0]].d)->read_repairs >= 1);
    t_teardown();
    /* and with read repair off, it stays stale */
    t_cluster(3, t_no_ae_no_rr);
    t_settle();
    for (uint32_t id = 1; id <= 3; id++)
        t_cut[id][stale] = true;
    t_req(reps[0], 1, DYN_OP_SET, "k", "v", NULL, 0, 2);
    memset(t_cut, 0, sizeof(t_cut));
    t_req(reps[0], 2, DYN_OP_GET, "k", NULL, NULL, 3, 0);
    t_run(100);
    CHECK(!t_local_is(stale, "k", "v"));
    t_teardown();
}

static void t_ae(struct dyn_config *c)
{
    c->read_repair = false;
    c->sloppy = false;
    c->ae_interval_ms = 500;
    c->ae_keys_max = 50;
}

TEST(dyn_anti_entropy_repairs_a_replica_that_missed_writes)
{
    t_cluster(3, t_ae);
    t_settle();
    /* node 3 misses 300 writes */
    for (uint32_t id = 1; id <= 3; id++)
        t_cut[id][3] = t_cut[3][id] = true;
    char key[16], val[16];
    int acked = 0;
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        uint64_t rid = (uint64_t)(i % 60);
        t_req(1, rid, DYN_OP_SET, key, val, NULL, 0, 2);
        acked += t_rep[rid].done && t_rep[rid].err == DYN_OK;
    }
    CHECK_EQ_INT(acked, 300);
    CHECK_EQ_INT(tn[3].n_ents, 0);
    memset(t_cut, 0, sizeof(t_cut));
    t_run(60000);
    CHECK_EQ_INT(tn[3].n_ents, 300);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        if (!t_local_is(3, key, val)) {
            CHECK(t_local_is(3, key, val));
            break;
        }
    }
    uint64_t repaired = 0, sent = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        repaired += dyn_stats(tn[id].d)->ae_keys_repaired;
        sent += dyn_stats(tn[id].d)->ae_exchanges;
    }
    CHECK_EQ_INT(repaired, 300);
    CHECK(sent > 0);
    t_teardown();
}

TEST(dyn_anti_entropy_in_sync_sends_little)
{
    t_cluster(3, t_ae);
    t_settle();
    char key[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        t_req(1, (uint64_t)(i % 60), DYN_OP_SET, key, "0123456789abcdef0123456789abcdef", NULL, 0,
              3);
    }
    t_run(5000);
    uint64_t bytes = 0, ex = 0, rep = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        bytes += dyn_stats(tn[id].d)->ae_bytes_sent;
        ex += dyn_stats(tn[id].d)->ae_exchanges;
        rep += dyn_stats(tn[id].d)->ae_keys_repaired;
    }
    CHECK(ex > 0);
    CHECK_EQ_INT(rep, 0);
    /* only top-level hashes travel: about 200 bytes per exchange */
    CHECK(bytes / ex < 400);
    t_teardown();
}

static void t_grace(struct dyn_config *c) { c->tombstone_grace_ms = 1000; }

TEST(dyn_tombstones_are_collected_only_once_every_replica_holds_them_past_grace)
{
    t_cluster(3, t_grace);
    t_settle();
    t_req(1, 1, DYN_OP_SET, "k", "v", NULL, 0, 3);
    t_req(1, 2, DYN_OP_DEL, "k", NULL, NULL, 0, 3);
    CHECK(t_rep[2].err == DYN_OK && t_rep[2].existed);
    t_req(2, 3, DYN_OP_GET, "k", NULL, NULL, 0, 0);
    CHECK(t_rep_value(3, NULL));
    /* within grace: the tombstone stays */
    t_run(100);
    CHECK(t_find(&tn[1], 0, "k", 1) != NULL);
    t_run(2000);
    t_req(2, 4, DYN_OP_GET, "k", NULL, NULL, 0, 0);
    t_run(100);
    for (uint32_t id = 1; id <= 3; id++)
        CHECK(t_find(&tn[id], 0, "k", 1) == NULL);
    t_teardown();
    /* with one replica missing the tombstone, nothing is collected */
    t_cluster(3, t_grace);
    t_settle();
    t_req(1, 1, DYN_OP_SET, "k", "v", NULL, 0, 3);
    uint32_t reps[3];
    dyn_replicas(tn[1].d, "k", 1, reps, 3);
    for (uint32_t id = 1; id <= 3; id++)
        t_cut[id][reps[2]] = true;
    t_req(reps[0], 2, DYN_OP_DEL, "k", NULL, NULL, 0, 2);
    t_run(2000);
    t_req(reps[0], 3, DYN_OP_GET, "k", NULL, NULL, 2, 0);
    t_run(100);
    CHECK(t_find(&tn[reps[0]], 0, "k", 1) != NULL);
    t_teardown();
}

static void t_grace_ae(struct dyn_config *c)
{
    c->tombstone_grace_ms = 1000;
    c->ae_interval_ms = 400;
}

TEST(dyn_tombstones_nobody_reads_are_collected_by_the_background_sweep)
{
    t_cluster(3, t_grace_ae);
    t_settle();
    char key[16];
    for (int i = 0; i < 20; i++) {
        snprintf(key, sizeof(key), "d%d", i);
        t_req(1, 1, DYN_OP_SET, key, "v", NULL, 0, 3);
        t_req(1, 2, DYN_OP_DEL, key, NULL, NULL, 0, 3);
        CHECK(t_rep[2].err == DYN_OK);
    }
    t_req(1, 3, DYN_OP_SET, "kept", "v", NULL, 0, 3);
    t_run(500);
    for (uint32_t id = 1; id <= 3; id++)
        CHECK_EQ_INT(tn[id].n_ents, 21); /* within grace: all still there */
    t_run(5000);
    uint64_t purged = 0;
    for (uint32_t id = 1; id <= 3; id++) {
        CHECK_EQ_INT(tn[id].n_ents, 1);
        CHECK(t_local_is(id, "kept", "v"));
        purged += dyn_stats(tn[id].d)->tombstones_purged;
    }
    CHECK_EQ_INT(purged, 60);
    t_teardown();
}

TEST(dyn_a_clock_stepping_back_never_reorders_a_nodes_writes)
{
    t_cluster(3, NULL);
    t_settle();
    t_req(1, 1, DYN_OP_SET, "k", "first", NULL, 0, 0);
    struct dvv_obj a = {0};
    t_rep_obj(1, &a);
    hlc_ts t1 = dvv_max_ts(&a);
    t_now -= 500; /* the clock steps back (dyn keeps the larger now) */
    t_req(1, 2, DYN_OP_SET, "k", "second", &a.vv, 0, 0);
    struct dvv_obj b = {0};
    t_rep_obj(2, &b);
    CHECK(dvv_max_ts(&b) > t1);
    t_now += 500;
    dvv_free(&a);
    dvv_free(&b);
    t_teardown();
}

TEST(dyn_a_joining_node_pulls_its_ranges_and_gets_writes_made_meanwhile)
{
    t_cluster(3, NULL);
    t_settle();
    char key[16];
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        t_req(1, (uint64_t)(i % 60), DYN_OP_SET, key, key, NULL, 0, 3);
    }
    /* node 4 joins; the others know of it by gossip only */
    t_count = 4;
    struct dyn_config c;
    t_cfg(&c, 4);
    t_start_as(4, &c, GOSSIP_JOINING);
    CHECK(dyn_joining(tn[4].d));
    CHECK(!ring_has(dyn_ring(tn[1].d), 4));
    /* writes while it joins: its pulls get no answer for a while */
    t_drop_type = DYN_MSG_PULL_REPLY;
    t_run(1000);
    CHECK(dyn_joining(tn[4].d));
    for (int i = 60; i < 80; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        t_req(2, (uint64_t)(i % 60), DYN_OP_SET, key, key, NULL, 0, 2);
        CHECK(t_rep[i % 60].err == DYN_OK);
    }
    /* those it will replicate reached it already (pending ranges) */
    struct ring *future = t_ring_of(4);
    uint32_t pending = 0;
    for (int i = 60; i < 80; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        uint32_t walk[3];
        ring_walk(future, ring_hash(key, strlen(key)), walk, 3);
        if (walk[0] == 4 || walk[1] == 4 || walk[2] == 4) {
            pending++;
            CHECK(t_local_is(4, key, key));
        }
    }
    CHECK(pending > 5);
    ring_free(future);
    t_drop_type = 0;
    t_run(5000);
    CHECK(!dyn_joining(tn[4].d));
    CHECK(dyn_stats(tn[4].d)->join_ranges_pulled > 0);
    for (uint32_t id = 1; id <= 4; id++)
        CHECK(ring_has(dyn_ring(tn[id].d), 4));
    /* it holds every key it replicates, old and new */
    uint32_t owned = 0;
    for (int i = 0; i < 80; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        uint32_t reps[3];
        size_t n = dyn_replicas(tn[1].d, key, strlen(key), reps, 3);
        for (size_t k = 0; k < n; k++) {
            if (reps[k] != 4)
                continue;
            owned++;
            if (!t_local_is(4, key, key)) {
                CHECK(t_local_is(4, key, key));
                i = 80;
            }
        }
    }
    CHECK(owned > 20);
    t_teardown();
}

TEST(dyn_a_leaving_node_hands_its_data_off)
{
    t_cluster(4, NULL);
    t_settle();
    char key[16];
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        t_req(1, (uint64_t)(i % 60), DYN_OP_SET, key, key, NULL, 0, 3);
    }
    dyn_leave(tn[4].d);
    /* once the others know it is leaving (before its handoff starts), a
     * write reaches the node that takes over from it at once */
    t_run(150);
    CHECK(!dyn_left(tn[4].d));
    struct ring *after = t_ring_of(3);
    int taken_over = 0;
    for (int i = 100; i < 160; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        uint32_t reps[3], next[3];
        dyn_replicas(tn[1].d, key, strlen(key), reps, 3);
        t_req(1, (uint64_t)(i % 60), DYN_OP_SET, key, key, NULL, 0, 2);
        if (reps[0] != 4 && reps[1] != 4 && reps[2] != 4)
            continue;
        ring_walk(after, ring_hash(key, strlen(key)), next, 3);
        for (int k = 0; k < 3; k++)
            CHECK(t_local_is(next[k], key, key));
        taken_over++;
    }
    CHECK(taken_over > 10);
    ring_free(after);
    t_run(5000);
    CHECK(dyn_left(tn[4].d));
    t_run(2000);
    /* the others see it gone, and each key is on its three new replicas */
    CHECK(!ring_has(dyn_ring(tn[1].d), 4));
    for (int i = 0; i < 160; i = i == 39 ? 100 : i + 1) {
        snprintf(key, sizeof(key), "k%d", i);
        uint32_t reps[3];
        size_t n = dyn_replicas(tn[1].d, key, strlen(key), reps, 3);
        CHECK_EQ_INT(n, 3);
        for (size_t k = 0; k < n; k++)
            if (!t_local_is(reps[k], key, key)) {
                CHECK(t_local_is(reps[k], key, key));
                i = 160;
                break;
            }
    }
    t_teardown();
}

static void t_ae_small(struct dyn_config *c)
{
    t_ae(c);
    c->ae_interval_ms = 50;
    c->ae_keys_max = 1;
}

/* Only this node runs anti-entropy (t_ae_one). */
static uint32_t t_ae_node;

static void t_ae_one(struct dyn_config *c)
{
    t_ae_small(c);
    if (c->id != t_ae_node)
        c->ae_interval_ms = 0;
}

/* Keys that ring r4 of nodes 1-4 puts in a range whose index the ring
 * without `leaver` no longer has, replicated by `stale` and not by
 * `leaver`. */
static int t_keys_past_the_smaller_ring(uint32_t leaver, uint32_t stale, char (*keys)[16],
                                        int want)
{
    struct dyn_config cfg;
    t_cfg(&cfg, 1);
    struct ring *r4 = ring_new(cfg.vnodes), *r3 = ring_new(cfg.vnodes);
    for (uint32_t id = 1; id <= 4; id++) {
        ring_add(r4, id);
        if (id != leaver)
            ring_add(r3, id);
    }
    int n = 0;
    for (int i = 0; n < want && i < 100000; i++) {
        snprintf(keys[n], sizeof(keys[n]), "k%d", i);
        size_t range = ring_range_of(r4, ring_hash(keys[n], strlen(keys[n])));
        uint32_t walk[3];
        size_t nw = ring_range_walk(r4, range, walk, 3);
        bool by_stale = false, by_leaver = false;
        for (size_t k = 0; k < nw; k++) {
            by_stale = by_stale || walk[k] == stale;
            by_leaver = by_leaver || walk[k] == leaver;
        }
        n += range >= ring_ranges(r3) && by_stale && !by_leaver;
    }
    ring_free(r4);
    ring_free(r3);
    return n;
}

/* How many of keys[0..n) node id lacks. */
static int t_lacks(uint32_t id, char (*keys)[16], int n)
{
    int lacking = 0;
    for (int i = 0; i < n; i++)
        lacking += !t_local_is(id, keys[i], keys[i]);
    return lacking;
}

/* The ring shrinks under a node that is mid-repair: node `stale` missed
 * writes, all of keys in ranges whose index the ring without `leaver` no
 * longer has, and is being repaired by its own anti-entropy, one key an
 * exchange, when `leaver` (which holds none of them) leaves. The range it
 * has more to look at then lies past the end of the new ring: anti-entropy
 * must forget that index. It once walked it on the new ring and stopped
 * the node on ring.c's assertion. The repair goes on to the end. */
TEST(dyn_the_ring_shrinks_under_a_node_that_anti_entropy_is_repairing)
{
    static char keys[300][16];
    int cases = 0;
    for (uint32_t leaver = 1; leaver <= 4; leaver++) {
        for (uint32_t stale = 1; stale <= 4; stale++) {
            if (stale == leaver || t_keys_past_the_smaller_ring(leaver, stale, keys, 300) < 300)
                continue;
            cases++;
            t_ae_node = stale;
            t_cluster(4, t_ae_one);
            t_settle();
            for (uint32_t id = 1; id <= 4; id++)
                t_cut[id][stale] = t_cut[stale][id] = true;
            /* the two other replicas (every node but these two) take every
             * write, one of them coordinating */
            uint32_t coord = 1;
            while (coord == leaver || coord == stale)
                coord++;
            for (int i = 0; i < 300; i++) {
                uint64_t rid = (uint64_t)(i % 60);
                t_req(coord, rid, DYN_OP_SET, keys[i], keys[i], NULL, 0, 2);
                CHECK(t_rep[rid].done && t_rep[rid].err == DYN_OK);
            }
            memset(t_cut, 0, sizeof(t_cut));
            t_run(500);
            int missing = t_lacks(stale, keys, 300);
            CHECK(missing > 0 && missing < 300); /* under repair */
            dyn_leave(tn[leaver].d);
            t_run(1000);
            CHECK(dyn_left(tn[leaver].d));
            int still = t_lacks(stale, keys, 300);
            CHECK(still > 0 && still < missing); /* the ring shrank mid-repair */
            t_run(30000);
            CHECK_EQ_INT(t_lacks(stale, keys, 300), 0);
            t_teardown();
        }
    }
    CHECK(cases >= 4);
}

TEST(dyn_requests_are_checked)
{
    t_cluster(3, NULL);
    t_settle();
    t_req(1, 1, DYN_OP_SET, "", "v", NULL, 0, 0);
    CHECK(t_rep[1].done && t_rep[1].err == DYN_ERR_INVALID);
    t_req(1, 2, DYN_OP_SET, "k", "v", NULL, 0, 4);
    CHECK(t_rep[2].done && t_rep[2].err == DYN_ERR_INVALID);
    t_req(1, 3, DYN_OP_GET, "k", NULL, NULL, 4, 0);
    CHECK(t_rep[3].done && t_rep[3].err == DYN_ERR_INVALID);
    t_teardown();
}

TEST(dyn_messages_round_trip_and_malformed_ones_are_refused)
{
    struct dyn_msg m = {.type = DYN_MSG_UPDATE, .from = 1, .to = 2, .req = 77, .ring_epoch = 5,
                        .ts = 99, .status = 0, .op = DYN_UPD_PUT, .hint_for = 3, .a = 4, .b = 6,
                        .level = 2, .key = "key", .klen = 3, .body = "ctx", .blen = 3,
                        .body2 = "value", .b2len = 5};
    struct tbuf b = {0};
    dyn_msg_encode(&m, &b);
    struct dyn_msg o;
    char err[128];
    CHECK_EQ_INT(dyn_msg_decode(&o, b.data, b.len, err, sizeof(err)), 0);
    CHECK(o.type == m.type && o.from == 1 && o.to == 2 && o.req == 77 && o.ring_epoch == 5);
    CHECK(o.ts == 99 && o.op == DYN_UPD_PUT && o.hint_for == 3 && o.a == 4 && o.b == 6);
    CHECK(o.level == 2);
    CHECK_MEM_STR(o.key, o.klen, "key");
    CHECK_MEM_STR(o.body, o.blen, "ctx");
    CHECK_MEM_STR(o.body2, o.b2len, "value");
    /* every strict prefix is truncated */
    for (size_t n = 0; n < b.len; n++)
        CHECK(dyn_msg_decode(&o, b.data, n, err, sizeof(err)) == TRIAD_EPROTO);
    /* a byte too many */
    tbuf_appendc(&b, 0);
    CHECK(dyn_msg_decode(&o, b.data, b.len, err, sizeof(err)) == TRIAD_EPROTO);
    b.len--;
    b.data[0] = 9; /* version */
    CHECK(dyn_msg_decode(&o, b.data, b.len, err, sizeof(err)) == TRIAD_EPROTO);
    b.data[0] = 1;
    b.data[1] = 0; /* type */
    CHECK(dyn_msg_decode(&o, b.data, b.len, err, sizeof(err)) == TRIAD_EPROTO);
    b.data[1] = DYN_MSG_TYPE_MAX + 1;
    CHECK(dyn_msg_decode(&o, b.data, b.len, err, sizeof(err)) == TRIAD_EPROTO);
    tbuf_free(&b);
}

int main(void)
{
    RUN(dyn_write_then_read_through_another_node);
    RUN(dyn_write_is_not_acknowledged_before_w_copies_are_durable);
    RUN(dyn_strict_quorum_fails_clearly_when_w_replicas_are_down);
    RUN(dyn_sloppy_quorum_writes_hints_and_hands_them_off);
    RUN(dyn_a_replica_that_times_out_is_stood_in_for_at_once);
    RUN(dyn_a_coordinating_replica_that_times_out_is_passed_over_next_time);
    RUN(dyn_concurrent_puts_with_one_context_become_siblings_and_resolve);
    RUN(dyn_one_clients_sets_through_different_coordinators_never_conflict);
    RUN(dyn_concurrent_writes_in_a_partition_survive_as_siblings_on_every_replica);
    RUN(dyn_read_repair_merges_and_never_clobbers_a_newer_write);
    RUN(dyn_read_repair_brings_a_stale_replica_up_to_date);
    RUN(dyn_anti_entropy_repairs_a_replica_that_missed_writes);
    RUN(dyn_anti_entropy_in_sync_sends_little);
    RUN(dyn_tombstones_are_collected_only_once_every_replica_holds_them_past_grace);
    RUN(dyn_tombstones_nobody_reads_are_collected_by_the_background_sweep);
    RUN(dyn_a_clock_stepping_back_never_reorders_a_nodes_writes);
    RUN(dyn_a_joining_node_pulls_its_ranges_and_gets_writes_made_meanwhile);
    RUN(dyn_a_leaving_node_hands_its_data_off);
    RUN(dyn_the_ring_shrinks_under_a_node_that_anti_entropy_is_repairing);
    RUN(dyn_requests_are_checked);
    RUN(dyn_messages_round_trip_and_malformed_ones_are_refused);
    tbuf_free(&t_q);
    for (size_t i = 0; i < 64; i++)
        tbuf_free(&t_rep[i].obj);
    return test_summary("dynamo");
}
