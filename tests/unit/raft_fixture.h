/* raft_fixture.h - an in-memory cluster of raft cores for the unit tests.
 *
 * Up to FX_NODES_MAX nodes (ids 1..n), each a struct raft with
 *   - a disk: the hard state, the snapshot and the log entries that a ready
 *     made durable, and nothing else (a crash loses whatever was not);
 *   - a state machine: a hash of the commands applied, so that two nodes
 *     that applied the same entries have the same state;
 * one FIFO message queue (messages deep-copied when sent, so they outlive
 * the ready that produced them), a cut matrix that drops messages, and one
 * clock in milliseconds.
 *
 * Persistence is durable at once unless a node is `manual`: then its
 * persisting ready is held until fx_persist() says the disk is done, and its
 * rd.msgs wait with it (raft.h: they leave only once the persist is durable).
 *
 * At every step the fixture checks, and counts in `violations`:
 *   - election safety (Raft §5.2): at most one leader per term;
 *   - state machine safety (§5.4.3): an index applied anywhere holds the
 *     same entry everywhere;
 *   - leader completeness (§5.4): a leader's log holds every entry applied
 *     anywhere (down to its snapshot).
 * Everything is deterministic: the same calls give the same run.
 */
#ifndef TRIAD_RAFT_FIXTURE_H
#define TRIAD_RAFT_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/defs.h"
#include "../../src/core/raft.h"

#define FX_NODES_MAX 5
#define FX_TERMS_MAX 4096     /* terms tracked for election safety */
#define FX_LOG_MAX 4096       /* indexes tracked for state machine safety */
#define FX_DELIVER_MAX 100000 /* messages delivered in one fx_deliver_all */
#define FX_SNAP_HEADER 16     /* state hash + applied index */

struct fx_disk {
    struct raft_hard_state hs;
    struct raft_snapshot snap; /* index 0: none; data owned */
    struct raft_entry *ents;   /* snap.index+1 ..; headers and data owned */
    size_t n, cap;
};

struct fx_node {
    raft_id id;
    struct raft_config cfg;
    struct raft *r; /* NULL while down */
    struct fx_disk disk;
    bool manual;          /* persists wait for fx_persist() */
    bool held;            /* ... and one does */
    struct raft_ready rd; /* that one */
    raft_index applied;
    uint64_t sm; /* the state machine: a hash of the commands applied */
    size_t n_reads;
    uint64_t read_ctx[64];
    raft_index read_index[64];
};

struct fx_applied {
    raft_term term;
    uint64_t hash;
};

struct fx {
    uint32_t n;
    uint64_t now;
    struct fx_node nodes[FX_NODES_MAX + 1]; /* by id; [0] unused */
    struct raft_msg *q;
    size_t qhead, qn, qcap;
    bool cut[FX_NODES_MAX + 1][FX_NODES_MAX + 1]; /* cut[from][to]: dropped */
    uint64_t snap_pad_bytes; /* snapshot size beyond its header (chunk tests) */
    /* if set, called for each message about to be delivered; true drops it
     * (a test may keep a copy to deliver late: the pointers inside are the
     * fixture's and die with the call) */
    bool (*filter)(struct fx *c, const struct raft_msg *m);
    raft_id leader_of[FX_TERMS_MAX];
    raft_term max_leader_term;
    struct fx_applied applied[FX_LOG_MAX];
    int violations;
    char why[256];
};

static inline uint64_t fx_hash(uint64_t h, const void *data, size_t len)
{
    /* FNV-1a, 64 bit */
    const uint8_t *p = data;
    if (h == 0)
        h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static inline void fx__violation(struct fx *c, const char *what)
{
    if (c->violations++ == 0)
        snprintf(c->why, sizeof(c->why), "%s (now %llu)", what, (unsigned long long)c->now);
}

/* ---- the disk ---- */

static inline void fx__disk_drop_from(struct fx_disk *d, raft_index from)
{
    while (d->n > 0 && d->ents[d->n - 1].index >= from) {
        free(d->ents[d->n - 1].data);
        d->n--;
    }
}

static inline void fx__disk_drop_to(struct fx_disk *d, raft_index to)
{
    size_t k = 0;
    while (k < d->n && d->ents[k].index <= to) {
        free(d->ents[k].data);
        k++;
    }
    memmove(d->ents, d->ents + k, (d->n - k) * sizeof(*d->ents));
    d->n -= k;
}

static inline void fx__disk_append(struct fx_disk *d, const struct raft_entry *e)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 64;
        d->ents = realloc(d->ents, d->cap * sizeof(*d->ents));
        TRIAD_ASSERT(d->ents != NULL);
    }
    struct raft_entry *x = &d->ents[d->n++];
    *x = *e;
    x->data = NULL;
    if (e->len > 0) {
        x->data = malloc(e->len);
        TRIAD_ASSERT(x->data != NULL);
        memcpy(x->data, e->data, e->len);
    }
}

static inline void fx__disk_free(struct fx_disk *d)
{
    fx__disk_drop_from(d, 0);
    free(d->ents);
    free(d->snap.data);
    memset(d, 0, sizeof(*d));
}

/* Make a persisting ready durable, in the order raft.h gives. */
static inline void fx__disk_write(struct fx_disk *d, const struct raft_ready *rd)
{
    if (rd->hs_changed)
        d->hs = rd->hs;
    if (rd->snapshot != NULL) {
        free(d->snap.data);
        d->snap = *rd->snapshot;
        d->snap.data = NULL;
        if (rd->snapshot->len > 0) {
            d->snap.data = malloc(rd->snapshot->len);
            TRIAD_ASSERT(d->snap.data != NULL);
            memcpy(d->snap.data, rd->snapshot->data, rd->snapshot->len);
        }
        if (rd->snapshot_install)
            fx__disk_drop_from(d, 0);
        else
            fx__disk_drop_to(d, rd->snapshot->index);
    }
    if (rd->truncate_from > 0)
        fx__disk_drop_from(d, rd->truncate_from);
    for (size_t i = 0; i < rd->n_entries; i++)
        fx__disk_append(d, &rd->entries[i]);
}

/* ---- messages ---- */

static inline void fx__msg_free(struct raft_msg *m)
{
    for (uint32_t i = 0; i < m->n_entries; i++)
        free(m->entries[i].data);
    free((void *)m->entries);
    free((void *)m->data);
}

static inline void fx_send(struct fx *c, const struct raft_msg *m)
{
    if (c->qn == c->qcap) {
        c->qcap = c->qcap ? c->qcap * 2 : 256;
        c->q = realloc(c->q, c->qcap * sizeof(*c->q));
        TRIAD_ASSERT(c->q != NULL);
    }
    struct raft_msg *d = &c->q[c->qn++];
    *d = *m;
    d->entries = NULL;
    d->data = NULL;
    if (m->n_entries > 0) {
        struct raft_entry *e = calloc(m->n_entries, sizeof(*e));
        TRIAD_ASSERT(e != NULL);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            e[i] = m->entries[i];
            e[i].data = NULL;
            if (e[i].len > 0) {
                e[i].data = malloc(e[i].len);
                TRIAD_ASSERT(e[i].data != NULL);
                memcpy(e[i].data, m->entries[i].data, e[i].len);
            }
        }
        d->entries = e;
    }
    if (m->len > 0 && m->data != NULL) {
        uint8_t *p = malloc(m->len);
        TRIAD_ASSERT(p != NULL);
        memcpy(p, m->data, m->len);
        d->data = p;
    }
}

/* ---- the state machine ---- */

static inline void fx__apply(struct fx *c, struct fx_node *nd, const struct raft_entry *e)
{
    if (e->index != nd->applied + 1)
        fx__violation(c, "entries applied out of order");
    uint64_t h = fx_hash(0, e->data, e->len);
    if (e->index < FX_LOG_MAX) {
        struct fx_applied *a = &c->applied[e->index];
        if (a->term == 0) {
            a->term = e->term;
            a->hash = h;
        } else if (a->term != e->term || a->hash != h) {
            fx__violation(c, "state machine safety: two entries applied at one index");
        }
    }
    if (e->type == RAFT_ENTRY_NORMAL)
        nd->sm = fx_hash(nd->sm, e->data, e->len);
    nd->applied = e->index;
}

static inline void fx__restore_sm(struct fx_node *nd, const struct raft_snapshot *s)
{
    nd->sm = 0;
    nd->applied = 0;
    if (s != NULL && s->index > 0) {
        TRIAD_ASSERT(s->len >= FX_SNAP_HEADER);
        memcpy(&nd->sm, s->data, 8);
        memcpy(&nd->applied, s->data + 8, 8);
        TRIAD_ASSERT(nd->applied == s->index);
    }
}

/* ---- checks ---- */

static inline void fx_check(struct fx *c)
{
    for (raft_id id = 1; id <= c->n; id++) {
        struct fx_node *nd = &c->nodes[id];
        if (nd->r == NULL || raft_role(nd->r) != RAFT_LEADER)
            continue;
        raft_term t = raft_current_term(nd->r);
        if (t > c->max_leader_term)
            c->max_leader_term = t;
        if (t < FX_TERMS_MAX) {
            if (c->leader_of[t] == 0)
                c->leader_of[t] = id;
            else if (c->leader_of[t] != id)
                fx__violation(c, "election safety: two leaders in one term");
        }
    }
    /* Leader completeness binds the leader of the newest term: a deposed
     * leader that has not heard of it yet may well lack newer entries. */
    for (raft_id id = 1; id <= c->n; id++) {
        struct fx_node *nd = &c->nodes[id];
        if (nd->r == NULL || raft_role(nd->r) != RAFT_LEADER ||
            raft_current_term(nd->r) != c->max_leader_term)
            continue;
        raft_index first = raft_first_index(nd->r);
        for (raft_index i = first; i < FX_LOG_MAX && c->applied[i].term != 0; i++)
            if (raft_term_at(nd->r, i) != c->applied[i].term)
                fx__violation(c, "leader completeness: a leader lacks an applied entry");
    }
}

/* ---- one node's I/O ---- */

static inline void fx__ready_out(struct fx *c, struct fx_node *nd, struct raft_ready *rd)
{
    for (size_t i = 0; i < rd->n_msgs_now; i++)
        fx_send(c, &rd->msgs_now[i]);
    for (size_t i = 0; i < rd->n_committed; i++)
        fx__apply(c, nd, &rd->committed[i]);
    for (size_t i = 0; i < rd->n_reads; i++) {
        if (nd->n_reads < TRIAD_ARRAY_LEN(nd->read_ctx)) {
            nd->read_ctx[nd->n_reads] = rd->reads[i].ctx;
            nd->read_index[nd->n_reads] = rd->reads[i].index;
        }
        nd->n_reads++;
    }
}

static inline void fx__persisted(struct fx *c, struct fx_node *nd, struct raft_ready *rd)
{
    fx__disk_write(&nd->disk, rd);
    if (rd->snapshot != NULL && rd->snapshot_install)
        fx__restore_sm(nd, rd->snapshot);
    for (size_t i = 0; i < rd->n_msgs; i++)
        fx_send(c, &rd->msgs[i]);
    raft_advance(nd->r, rd);
}

/* Run the ready loop of raft.h until the node has nothing more to do. */
static inline void fx_process(struct fx *c, raft_id id)
{
    struct fx_node *nd = &c->nodes[id];
    if (nd->r == NULL)
        return;
    for (int guard = 0; guard < 1000; guard++) {
        struct raft_ready rd;
        bool any = raft_ready(nd->r, &rd);
        if (!any) {
            /* raft.h's loop stops here; advancing a ready that holds
             * nothing is harmless, and frees what a ready may carry without
             * saying so (see raft_ready_false_leaves_nothing_to_advance) */
            raft_advance(nd->r, &rd);
            break;
        }
        fx__ready_out(c, nd, &rd);
        if (rd.persist && nd->manual) {
            TRIAD_ASSERT(!nd->held);
            nd->rd = rd;
            nd->held = true;
            continue;
        }
        if (rd.persist) {
            fx__persisted(c, nd, &rd);
        } else {
            for (size_t i = 0; i < rd.n_msgs; i++)
                fx_send(c, &rd.msgs[i]);
            raft_advance(nd->r, &rd);
        }
    }
    fx_check(c);
}

/* The held persist of a manual node is durable now. */
static inline void fx_persist(struct fx *c, raft_id id)
{
    struct fx_node *nd = &c->nodes[id];
    if (nd->r == NULL || !nd->held)
        return;
    nd->held = false;
    fx__persisted(c, nd, &nd->rd);
    fx_process(c, id);
}

/* ---- life cycle ---- */

static inline void fx_config(struct raft_config *cfg, raft_id id, uint64_t seed)
{
    raft_config_default(cfg, id);
    cfg->seed = seed * 1000003u + id;
}

/* n nodes, ids 1..n; the first `voters` bootstrap a configuration of
 * voters 1..voters, the others start empty (joining later as learners). */
static inline void fx_init(struct fx *c, uint32_t n, uint32_t voters, uint64_t seed)
{
    TRIAD_ASSERT(n <= FX_NODES_MAX && voters <= n);
    memset(c, 0, sizeof(*c));
    c->n = n;
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (raft_id id = 1; id <= voters; id++)
        conf.members[conf.n++] = (struct raft_member){.id = id, .role = RAFT_VOTER};
    for (raft_id id = 1; id <= n; id++) {
        struct fx_node *nd = &c->nodes[id];
        nd->id = id;
        fx_config(&nd->cfg, id, seed);
    }
    for (raft_id id = 1; id <= n; id++) {
        struct fx_node *nd = &c->nodes[id];
        nd->r = raft_new(&nd->cfg, c->now);
        TRIAD_ASSERT(nd->r != NULL);
        if (id <= voters)
            TRIAD_ASSERT(raft_bootstrap(nd->r, &conf) == 0);
        fx_process(c, id);
    }
}

/* A node's config may be changed between fx_init and its next restart. */
static inline void fx_crash(struct fx *c, raft_id id)
{
    struct fx_node *nd = &c->nodes[id];
    if (nd->r == NULL)
        return;
    if (nd->held) {
        /* the persist never finished and its messages never left; advance
         * only so that the ready's memory goes back */
        nd->held = false;
        raft_advance(nd->r, &nd->rd);
    }
    raft_free(nd->r);
    nd->r = NULL;
}

static inline void fx_restart(struct fx *c, raft_id id)
{
    struct fx_node *nd = &c->nodes[id];
    TRIAD_ASSERT(nd->r == NULL);
    nd->r = raft_new(&nd->cfg, c->now);
    TRIAD_ASSERT(nd->r != NULL);
    struct fx_disk *d = &nd->disk;
    const struct raft_snapshot *snap = d->snap.index > 0 ? &d->snap : NULL;
    if (d->hs.term > 0 || d->n > 0 || snap != NULL)
        TRIAD_ASSERT(raft_restore(nd->r, &d->hs, snap, d->ents, d->n) == 0);
    fx__restore_sm(nd, snap);
    fx_process(c, id);
}

/* Crash and lose the disk: the node comes back knowing nothing. */
static inline void fx_wipe(struct fx *c, raft_id id)
{
    fx_crash(c, id);
    fx__disk_free(&c->nodes[id].disk);
    fx_restart(c, id);
}

static inline void fx_free(struct fx *c)
{
    for (raft_id id = 1; id <= c->n; id++) {
        fx_crash(c, id);
        fx__disk_free(&c->nodes[id].disk);
    }
    for (size_t i = c->qhead; i < c->qn; i++)
        fx__msg_free(&c->q[i]);
    free(c->q);
    memset(c, 0, sizeof(*c));
}

/* ---- the network and the clock ---- */

static inline void fx_isolate(struct fx *c, raft_id id, bool cut)
{
    for (raft_id o = 1; o <= c->n; o++) {
        if (o == id)
            continue;
        c->cut[id][o] = cut;
        c->cut[o][id] = cut;
    }
}

/* Deliver one queued message (false when the queue is empty). */
static inline bool fx_deliver_one(struct fx *c)
{
    if (c->qhead == c->qn) {
        c->qhead = c->qn = 0;
        return false;
    }
    struct raft_msg m = c->q[c->qhead++];
    struct fx_node *to = m.to <= c->n ? &c->nodes[m.to] : NULL;
    bool dropped = c->filter != NULL && c->filter(c, &m);
    if (!dropped && to != NULL && to->r != NULL && m.from <= c->n && !c->cut[m.from][m.to]) {
        int rc = raft_step(to->r, &m);
        if (rc != 0)
            fx__violation(c, "a node refused a message another node sent");
        fx_process(c, m.to);
    }
    fx__msg_free(&m);
    return true;
}

static inline void fx_deliver_all(struct fx *c)
{
    for (int i = 0; i < FX_DELIVER_MAX && fx_deliver_one(c); i++)
        ;
}

/* Drop everything in flight. */
static inline void fx_drop_all(struct fx *c)
{
    for (size_t i = c->qhead; i < c->qn; i++)
        fx__msg_free(&c->q[i]);
    c->qhead = c->qn = 0;
}

/* Advance the clock by ms, one millisecond at a time: every node ticks,
 * then every message is delivered (the network has no latency). */
static inline void fx_run(struct fx *c, uint64_t ms)
{
    for (uint64_t i = 0; i < ms; i++) {
        c->now++;
        for (raft_id id = 1; id <= c->n; id++) {
            if (c->nodes[id].r == NULL)
                continue;
            raft_tick(c->nodes[id].r, c->now);
            fx_process(c, id);
        }
        fx_deliver_all(c);
    }
}

/* The leader of the highest term among the nodes up, or 0. */
static inline raft_id fx_leader(const struct fx *c)
{
    raft_id best = 0;
    raft_term bt = 0;
    for (raft_id id = 1; id <= c->n; id++) {
        const struct raft *r = c->nodes[id].r;
        if (r != NULL && raft_role(r) == RAFT_LEADER && raft_current_term(r) >= bt) {
            best = id;
            bt = raft_current_term(r);
        }
    }
    return best;
}

/* Run until some node leads (at most ms); returns it or 0. */
static inline raft_id fx_run_until_leader(struct fx *c, uint64_t ms)
{
    for (uint64_t i = 0; i < ms; i++) {
        raft_id l = fx_leader(c);
        if (l != 0)
            return l;
        fx_run(c, 1);
    }
    return fx_leader(c);
}

static inline int fx_propose(struct fx *c, raft_id id, const char *s, raft_index *index)
{
    struct fx_node *nd = &c->nodes[id];
    TRIAD_ASSERT(nd->r != NULL);
    int rc = raft_propose(nd->r, RAFT_ENTRY_NORMAL, s, strlen(s), index);
    fx_process(c, id);
    return rc;
}

/* Snapshot the node's state machine at what it applied and compact. */
static inline int fx_compact(struct fx *c, raft_id id)
{
    struct fx_node *nd = &c->nodes[id];
    uint64_t len = FX_SNAP_HEADER + c->snap_pad_bytes;
    uint8_t *data = malloc(len);
    TRIAD_ASSERT(data != NULL);
    memcpy(data, &nd->sm, 8);
    memcpy(data + 8, &nd->applied, 8);
    for (uint64_t i = FX_SNAP_HEADER; i < len; i++)
        data[i] = (uint8_t)(i * 7);
    int rc = raft_compact(nd->r, nd->applied, data, len);
    fx_process(c, id);
    return rc;
}

#endif
