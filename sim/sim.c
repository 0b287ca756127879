/* sim.c - the deterministic cluster simulator (see sim.h).
 *
 * Time is global simulated microseconds; each node reads it through its own
 * clock, which runs fast or slow by a drift drawn from the seed (within the
 * bound that the leader lease assumes). Everything happens as events in one
 * priority queue ordered by (time, sequence number), so a run is a pure
 * function of its seed.
 */
#include "sim.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../src/common/defs.h"
#include "../src/core/raft.h"
#include "../src/node/fsm.h"
#include "../src/node/node.h"
#include "lincheck.h"
#include "simlib.h"

#define SIM_NODES_MAX 5
#define SIM_CLIENTS_MAX 16
#define SIM_KEYS_MAX 4
#define SIM_STEPS_MAX 20000000ull
#define SIM_LIVENESS_MS 20000    /* healed cluster must commit within this */
#define SIM_LIN_STEPS 20000000u /* linearizability search bound per key */

enum sim_ev_kind {
    EV_DELIVER = 1,
    EV_TIMER,
    EV_DISK_DONE,
    EV_CLIENT_REQ,
    EV_CLIENT_REPLY,
    EV_CLIENT_TIMEOUT,
    EV_CLIENT_NEXT,
    EV_NEMESIS,
    EV_RESTART,
    EV_RESUME,
    EV_HEAL,
    EV_STOP_CLIENTS,
    EV_WORKLOAD,
    EV_END,
    EV_FLUSH,
};

struct sim_ev {
    uint64_t t; /* the queue's order: by t, then by push */
    uint8_t kind;
    uint8_t node;
    uint32_t gen;
    uint64_t a;
    void *p;
};

struct sim_disk {
    struct raft_hard_state hs;
    struct raft_snapshot snap;
    struct raft_entry *ents; /* snap.index+1 .. */
    size_t n, cap;
    /* the one persist in progress (the node allows one at a time) */
    bool op_pending;
    bool op_has_hs;
    struct raft_hard_state op_hs;
    struct raft_snapshot op_snap;
    bool op_has_snap, op_install;
    raft_index op_truncate_from;
    struct raft_entry *op_ents;
    size_t op_n;
    uint64_t spike_until_us;
};

struct sim_node {
    struct sim *s;
    int idx;
    raft_id id;
    struct node *node;
    bool up, paused;
    uint32_t gen;
    int64_t drift_ppm;
    int64_t offset_us;
    uint64_t timer_seq;
    struct sim_disk disk;
    struct sim_ev *deferred;
    size_t n_def, cap_def;
    /* checks */
    raft_term lead_term;
    raft_index lead_last;
    raft_term lead_last_term;
    raft_index commit_checked;
    /* terms of the log as persisted, for Log Matching */
    raft_term *m_term; /* m_term[i - m_base - 1] */
    size_t m_n, m_cap;
    raft_index m_base;
    raft_term m_base_term;
};

enum sim_op { OP_GET, OP_SET, OP_IFEQ, OP_APPEND, OP_INCR };

struct sim_client {
    int idx;
    uint64_t client_id;
    uint64_t seq;
    bool busy;
    bool stopped;
    enum sim_op op;
    int key;
    char value[32];
    char expected[32];
    bool has_expected;
    size_t lin_id;
    uint64_t attempt; /* req ids: attempt * 64 + idx */
    int target;
    bool maybe_applied;
    uint64_t op_start_us;
    char last_seen[SIM_KEYS_MAX][32];
    bool has_seen[SIM_KEYS_MAX];
    uint64_t n_ops;
    bool wrote_after_heal; /* the liveness check needs a write to commit */
};

struct sim_req {
    uint64_t req_id;
    uint64_t client_id, seq;
    int argc;
    char *argv[5];
    size_t argvlen[5];
    char buf[160];
};

struct sim_reply {
    uint64_t req_id;
    size_t len;
    char data[];
};

struct sim_params {
    uint32_t n;
    uint64_t heartbeat_ms, elect_min_ms, elect_max_ms;
    uint32_t lat_min_us, lat_max_us, tail_pm, tail_max_us;
    uint32_t loss_pm, dup_pm;
    uint32_t fsync_min_us, fsync_max_us, spike_pm, spike_max_us, torn_pm;
    uint32_t drift_ppm_max;
    uint64_t safety_ms;
    uint32_t fault_min_ms, fault_max_ms;
    uint32_t clients, keys;
    uint32_t think_max_ms, req_timeout_ms, op_deadline_ms;
    uint32_t write_pct; /* the rest are GETs */
    uint32_t spread_pm; /* an op starts at a random node (a client behind a balancer) */
    bool membership;    /* the nemesis changes the membership too */
    bool grow;          /* start with node 1 as the only voter (implies membership) */
    bool batch;         /* nodes batch their inputs (node_io.wake), as the server's do */
    uint64_t snapshot_entries;
    uint32_t chunk_bytes;
};

struct sim_oracle {
    raft_term *term;
    uint64_t *hash;
    uint64_t *digest; /* applied only */
    raft_term *in_term; /* committed only: the term in which it was first known committed */
    uint32_t *voters;   /* committed only: the voters (bit id-1) it was counted among */
    size_t n, cap;
};

struct sim_lm_slot { /* (index, term) -> (entry hash, previous term) */
    raft_index index;
    raft_term term;
    uint64_t hash;
    raft_term prev_term;
};

/* Request ids of the nemesis's own membership changes (node_change_member),
 * apart from the clients'. */
#define SIM_ADMIN_REQ (1ull << 62)

struct sim {
    const struct sim_options *opt;
    struct sim_result *res;
    struct simlib_rng rng;
    uint64_t admin_seq;
    struct sim_params p;
    uint64_t now;
    struct simlib_evq events; /* of struct sim_ev */

    struct sim_node nodes[SIM_NODES_MAX];
    bool link[SIM_NODES_MAX][SIM_NODES_MAX];
    uint32_t link_delay_us[SIM_NODES_MAX][SIM_NODES_MAX]; /* a slow link's extra latency */
    bool read_only;   /* a stretch of the workload with reads only */
    uint64_t writes_resume_us; /* a quiet spell's end (0: none) */
    uint32_t loss_pm, dup_pm;
    struct sim_client clients[SIM_CLIENTS_MAX];
    bool clients_stopped;
    bool healed;
    uint64_t heal_us;
    raft_index heal_commit;
    bool heal_committed;
    bool ended;

    /* checks */
    bool failed;
    raft_id *term_leader; /* term -> leader */
    size_t n_terms;
    struct sim_oracle committed, applied;
    struct sim_lm_slot *lm;
    size_t lm_cap, lm_n;
    bool failover_pending;
    bool failover_elected;
    uint64_t failover_start_us;
    raft_term failover_term;

    struct lin_history hist;
};

/* ---- failures of the checks ---- */

static void sim__fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sim__fail(struct sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = true;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(s->res->what, sizeof(s->res->what), "t=%" PRIu64 "ms: ", s->now / 1000);
    vsnprintf(s->res->what + n, sizeof(s->res->what) - (size_t)n, fmt, ap);
    va_end(ap);
}

static void sim__trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sim__trace(struct sim *s, const char *fmt, ...)
{
    if (s->opt->trace == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    simlib_vtrace(s->opt->trace, s->now, fmt, ap);
    va_end(ap);
}

/* ---- the event queue ---- */

static void sim__push(struct sim *s, uint64_t t, uint8_t kind, int node, uint32_t gen, uint64_t a,
                      void *p)
{
    if (t < s->now)
        t = s->now;
    struct sim_ev *ev = simlib_evq_push(&s->events, t);
    *ev = (struct sim_ev){.t = t, .kind = kind, .node = (uint8_t)node, .gen = gen, .a = a, .p = p};
}

static bool sim__pop(struct sim *s, struct sim_ev *out)
{
    const struct sim_ev *ev = simlib_evq_pop(&s->events);
    if (ev == NULL)
        return false;
    *out = *ev;
    return true;
}

/* ---- clocks ---- */

static uint64_t sim__global_us(const struct sim_node *sn, uint64_t local_us)
{
    /* invert local = global * (1 + d) + offset, rounding up */
    int64_t x = (int64_t)local_us - sn->offset_us;
    if (x < 0)
        return 0;
    long double g = (long double)x / (1.0L + (long double)sn->drift_ppm / 1e6L);
    uint64_t gu = (uint64_t)g + 1;
    while (simlib_local_us(gu, sn->drift_ppm, sn->offset_us) < local_us)
        gu++;
    return gu;
}

/* ---- the oracles ---- */

static void sim__oracle_grow(struct sim_oracle *o, size_t n)
{
    if (n <= o->cap)
        return;
    size_t cap = o->cap ? o->cap : 1024;
    while (cap < n)
        cap *= 2;
    o->term = realloc(o->term, cap * sizeof(*o->term));
    o->hash = realloc(o->hash, cap * sizeof(*o->hash));
    o->digest = realloc(o->digest, cap * sizeof(*o->digest));
    o->in_term = realloc(o->in_term, cap * sizeof(*o->in_term));
    o->voters = realloc(o->voters, cap * sizeof(*o->voters));
    TRIAD_ASSERT(o->term && o->hash && o->digest && o->in_term && o->voters);
    memset(o->voters + o->cap, 0, (cap - o->cap) * sizeof(*o->voters));
    memset(o->in_term + o->cap, 0, (cap - o->cap) * sizeof(*o->in_term));
    memset(o->term + o->cap, 0, (cap - o->cap) * sizeof(*o->term));
    memset(o->hash + o->cap, 0, (cap - o->cap) * sizeof(*o->hash));
    memset(o->digest + o->cap, 0, (cap - o->cap) * sizeof(*o->digest));
    o->cap = cap;
}

static uint64_t sim__entry_hash(const struct raft_entry *e)
{
    return XXH3_64bits_withSeed(e->data, e->len, e->type);
}

/* Log Matching, checked exactly and incrementally: every (index, term) ever
 * persisted by anyone maps to one entry and one previous term. By induction
 * two logs that share an (index, term) then share the whole prefix. */
static void sim__lm_check(struct sim *s, struct sim_node *sn, const struct raft_entry *e,
                          raft_term prev_term)
{
    if (s->lm_n * 2 >= s->lm_cap) {
        size_t cap = s->lm_cap ? s->lm_cap * 2 : 4096;
        struct sim_lm_slot *t = calloc(cap, sizeof(*t));
        TRIAD_ASSERT(t != NULL);
        for (size_t i = 0; i < s->lm_cap; i++) {
            if (s->lm[i].term == 0)
                continue;
            size_t h = (size_t)XXH3_64bits(&s->lm[i].index, 16) & (cap - 1);
            while (t[h].term != 0)
                h = (h + 1) & (cap - 1);
            t[h] = s->lm[i];
        }
        free(s->lm);
        s->lm = t;
        s->lm_cap = cap;
    }
    raft_index key[2] = {e->index, e->term};
    size_t h = (size_t)XXH3_64bits(key, 16) & (s->lm_cap - 1);
    uint64_t eh = sim__entry_hash(e);
    while (s->lm[h].term != 0) {
        if (s->lm[h].index == e->index && s->lm[h].term == e->term) {
            if (s->lm[h].hash != eh)
                sim__fail(s, "log matching: node %u has a different entry at index %" PRIu64
                          " term %" PRIu64, sn->id, e->index, e->term);
            else if (s->lm[h].prev_term != prev_term)
                sim__fail(s, "log matching: node %u's entry %" PRIu64 "/%" PRIu64
                          " follows term %" PRIu64 ", elsewhere term %" PRIu64,
                          sn->id, e->index, e->term, prev_term, s->lm[h].prev_term);
            return;
        }
        h = (h + 1) & (s->lm_cap - 1);
    }
    s->lm[h] = (struct sim_lm_slot){e->index, e->term, eh, prev_term};
    s->lm_n++;
}

static raft_term sim__mirror_term(const struct sim_node *sn, raft_index i)
{
    if (i == sn->m_base)
        return sn->m_base_term;
    if (i < sn->m_base || i > sn->m_base + sn->m_n)
        return 0;
    return sn->m_term[i - sn->m_base - 1];
}

static void sim__mirror_persist(struct sim *s, struct sim_node *sn, const struct raft_ready *rd)
{
    if (rd->snapshot != NULL && rd->snapshot_install) {
        sn->m_base = rd->snapshot->index;
        sn->m_base_term = rd->snapshot->term;
        sn->m_n = 0;
    }
    if (rd->n_entries == 0)
        return;
    raft_index from = rd->truncate_from;
    if (from <= sn->m_base) {
        sim__fail(s, "node %u rewrites index %" PRIu64 " at or below its snapshot", sn->id, from);
        return;
    }
    if (from > sn->m_base + sn->m_n + 1) {
        sim__fail(s, "node %u persists index %" PRIu64 " after a hole (last %" PRIu64 ")", sn->id,
                  from, sn->m_base + sn->m_n);
        return;
    }
    sn->m_n = from - sn->m_base - 1;
    for (size_t i = 0; i < rd->n_entries; i++) {
        const struct raft_entry *e = &rd->entries[i];
        sim__lm_check(s, sn, e, sim__mirror_term(sn, e->index - 1));
        if (sn->m_n == sn->m_cap) {
            sn->m_cap = sn->m_cap ? sn->m_cap * 2 : 256;
            sn->m_term = realloc(sn->m_term, sn->m_cap * sizeof(*sn->m_term));
            TRIAD_ASSERT(sn->m_term != NULL);
        }
        sn->m_term[sn->m_n++] = e->term;
    }
}

static uint32_t sim__voters_mask(const struct raft_conf *c)
{
    uint32_t m = 0;
    for (uint32_t i = 0; i < c->n; i++)
        if (c->members[i].role == RAFT_VOTER && c->members[i].id >= 1 && c->members[i].id <= 32)
            m |= 1u << (c->members[i].id - 1);
    return m;
}

/* After any step at a node: the invariants that concern it. */
static void sim__check_node(struct sim *s, struct sim_node *sn)
{
    if (!sn->up || sn->node == NULL)
        return;
    struct raft *r = node_raft(sn->node);
    raft_term term = raft_current_term(r);
    raft_index last = raft_last_index(r);

    if (raft_role(r) == RAFT_LEADER) {
        /* Election Safety: at most one leader per term */
        if (term >= s->n_terms) {
            size_t n = s->n_terms ? s->n_terms : 64;
            while (n <= term)
                n *= 2;
            s->term_leader = realloc(s->term_leader, n * sizeof(*s->term_leader));
            TRIAD_ASSERT(s->term_leader != NULL);
            memset(s->term_leader + s->n_terms, 0, (n - s->n_terms) * sizeof(*s->term_leader));
            s->n_terms = n;
        }
        if (s->term_leader[term] == 0)
            s->term_leader[term] = sn->id;
        else if (s->term_leader[term] != sn->id)
            sim__fail(s, "election safety: nodes %u and %u both lead term %" PRIu64,
                      s->term_leader[term], sn->id, term);
        if (sn->lead_term != term) {
            /* Leader Completeness: a new leader holds every entry committed
             * in an earlier term (the leader that committed an entry is the
             * first to know, so in_term is the term it was committed in) */
            sn->lead_term = term;
            for (raft_index i = raft_snapshot_index(r) + 1; i < s->committed.n; i++) {
                if (s->committed.term[i] == 0 || s->committed.in_term[i] >= term)
                    continue;
                if (raft_term_at(r, i) != s->committed.term[i]) {
                    sim__fail(s, "leader completeness: node %u leads term %" PRIu64
                              " without committed entry %" PRIu64 " (term %" PRIu64 ", has %" PRIu64 ")",
                              sn->id, term, i, s->committed.term[i], raft_term_at(r, i));
                    break;
                }
            }
        } else {
            /* Leader Append-Only: it never overwrites or deletes */
            raft_term t = raft_term_at(r, sn->lead_last);
            if (last < sn->lead_last || (t != 0 && t != sn->lead_last_term))
                sim__fail(s, "leader append-only: node %u in term %" PRIu64 " lost index %" PRIu64,
                          sn->id, term, sn->lead_last);
        }
        sn->lead_last = last;
        sn->lead_last_term = raft_term_at(r, last);
        if (s->failover_pending && !s->failover_elected && term > s->failover_term &&
            raft_term_at(r, raft_commit_index(r)) == term) {
            s->failover_elected = true;
            if (s->res->n_elected < 64)
                s->res->elected_ms[s->res->n_elected++] = (s->now - s->failover_start_us) / 1000;
        }
    } else {
        sn->lead_term = 0;
    }

    /* Committed entries never change: every node's committed prefix agrees
     * with the first node that committed each index. */
    raft_index c = raft_commit_index(r);
    if (c < sn->commit_checked)
        sn->commit_checked = c; /* restarted: check again */
    raft_index from = TRIAD_MAX(sn->commit_checked, raft_snapshot_index(r)) + 1;
    raft_index to = TRIAD_MIN(c, last);
    sim__oracle_grow(&s->committed, (size_t)to + 1);
    for (raft_index i = from; i <= to; i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        if (e == NULL)
            continue;
        uint64_t h = sim__entry_hash(e);
        if (s->committed.term[i] == 0) {
            s->committed.term[i] = e->term;
            s->committed.hash[i] = h;
            s->committed.in_term[i] = term;
            s->committed.voters[i] = sim__voters_mask(raft_conf(r));
        } else if (s->committed.term[i] != e->term || s->committed.hash[i] != h) {
            sim__fail(s, "committed entry %" PRIu64 " differs on node %u (term %" PRIu64
                      ", first seen term %" PRIu64 ")", i, sn->id, e->term, s->committed.term[i]);
            return;
        }
    }
    if ((size_t)to + 1 > s->committed.n)
        s->committed.n = (size_t)to + 1;
    if (to > sn->commit_checked)
        sn->commit_checked = to;
    if (s->healed && !s->heal_committed && raft_role(r) == RAFT_LEADER && c > s->heal_commit &&
        raft_term_at(r, c) == term) {
        s->heal_committed = true;
        s->res->heal_to_commit_ms = (s->now - s->heal_us) / 1000;
    }
}

/* State Machine Safety: every replica applies the same entry at an index,
 * and ends in the same state after it. */
static void sim__on_applied(void *arg, const struct raft_entry *e, uint64_t digest)
{
    struct sim_node *sn = arg;
    struct sim *s = sn->s;
    sim__oracle_grow(&s->applied, (size_t)e->index + 1);
    uint64_t h = sim__entry_hash(e);
    if (s->applied.term[e->index] == 0) {
        s->applied.term[e->index] = e->term;
        s->applied.hash[e->index] = h;
        s->applied.digest[e->index] = digest;
        if ((size_t)e->index + 1 > s->applied.n)
            s->applied.n = (size_t)e->index + 1;
    } else if (s->applied.term[e->index] != e->term || s->applied.hash[e->index] != h) {
        sim__fail(s, "state machine safety: node %u applied a different entry at %" PRIu64, sn->id,
                  e->index);
    } else if (s->applied.digest[e->index] != digest) {
        sim__fail(s, "state machine divergence: node %u's state after %" PRIu64 " differs", sn->id,
                  e->index);
    }
    /* An applied entry is committed: record it here too, since the node may
     * compact it away before the next per-step check looks. */
    struct raft *nr = sn->node != NULL ? node_raft(sn->node) : NULL;
    if ((s->opt->bugs & RAFT_BUG_APPLY_UNCOMMITTED) == 0 && nr != NULL) {
        sim__oracle_grow(&s->committed, (size_t)e->index + 1);
        if (s->committed.term[e->index] == 0) {
            s->committed.term[e->index] = e->term;
            s->committed.hash[e->index] = h;
            s->committed.in_term[e->index] = raft_current_term(nr);
            s->committed.voters[e->index] = sim__voters_mask(raft_conf(nr));
            if ((size_t)e->index + 1 > s->committed.n)
                s->committed.n = (size_t)e->index + 1;
        }
    }
    /* failover time: to the first client write applied by a new leader */
    if (s->failover_pending && e->type == RAFT_ENTRY_NORMAL && e->term > s->failover_term &&
        sn->node != NULL && raft_role(node_raft(sn->node)) == RAFT_LEADER) {
        s->failover_pending = false;
        if (s->res->n_failover < 64)
            s->res->failover_ms[s->res->n_failover++] = (s->now - s->failover_start_us) / 1000;
    }
    if (e->index < s->committed.n && s->committed.term[e->index] != 0 &&
        s->committed.term[e->index] != e->term)
        sim__fail(s, "node %u applied uncommitted entry %" PRIu64 " (term %" PRIu64 ")", sn->id,
                  e->index, e->term);
}

/* Committed entries are never lost: the newest committed entry is on the
 * durable disk of a majority (or under its snapshot). */
static void sim__check_durable(struct sim *s)
{
    raft_index c = 0;
    for (raft_index i = s->committed.n; i-- > 1;)
        if (s->committed.term[i] != 0) {
            c = i;
            break;
        }
    if (c == 0)
        return;
    /* a majority of the voters it was counted among when it committed */
    uint32_t mask = s->committed.voters[c], have = 0, voters = 0;
    for (uint32_t k = 0; k < s->p.n; k++) {
        if (!(mask >> k & 1))
            continue;
        voters++;
        const struct sim_disk *d = &s->nodes[k].disk;
        if (d->snap.index >= c)
            have++;
        else if (c <= d->snap.index + d->n && d->ents[c - d->snap.index - 1].term == s->committed.term[c])
            have++;
    }
    if (have < voters / 2 + 1)
        sim__fail(s, "committed entry %" PRIu64 " is durable on only %u of its %u voters", c, have,
                  voters);
}

/* ---- the disk ---- */

static void sim__ents_free(struct raft_entry *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].data);
    free(v);
}

static struct raft_entry *sim__ents_copy(const struct raft_entry *v, size_t n)
{
    if (n == 0)
        return NULL;
    struct raft_entry *c = malloc(n * sizeof(*c));
    TRIAD_ASSERT(c != NULL);
    for (size_t i = 0; i < n; i++) {
        c[i] = v[i];
        c[i].data = NULL;
        if (v[i].len > 0) {
            c[i].data = malloc(v[i].len);
            TRIAD_ASSERT(c[i].data != NULL);
            memcpy(c[i].data, v[i].data, v[i].len);
        }
    }
    return c;
}

static void sim__snap_copy(struct raft_snapshot *dst, const struct raft_snapshot *src)
{
    *dst = *src;
    dst->data = NULL;
    if (src->len > 0) {
        dst->data = malloc(src->len);
        TRIAD_ASSERT(dst->data != NULL);
        memcpy(dst->data, src->data, src->len);
    }
}

static void sim__disk_append(struct sim_disk *d, const struct raft_entry *e)
{
    if (d->n == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 256;
        d->ents = realloc(d->ents, d->cap * sizeof(*d->ents));
        TRIAD_ASSERT(d->ents != NULL);
    }
    d->ents[d->n++] = *e; /* takes the data */
}

static void sim__disk_truncate(struct sim_disk *d, raft_index from)
{
    while (d->n > 0 && d->snap.index + d->n >= from) {
        free(d->ents[d->n - 1].data);
        d->n--;
    }
}

/* Make the pending op durable; `entries_kept` < op_n models a torn write
 * (records are checksummed, so a tear keeps a prefix). */
static void sim__disk_apply(struct sim_disk *d, size_t entries_kept, bool keep_hs)
{
    TRIAD_ASSERT(d->op_pending);
    if (d->op_has_hs && keep_hs)
        d->hs = d->op_hs;
    if (d->op_has_snap) {
        if (d->op_install) {
            sim__disk_truncate(d, 0);
            free(d->snap.data);
            d->snap = d->op_snap;
        } else if (d->op_snap.index > d->snap.index) {
            size_t drop = (size_t)TRIAD_MIN(d->op_snap.index - d->snap.index, (raft_index)d->n);
            for (size_t i = 0; i < drop; i++)
                free(d->ents[i].data);
            memmove(d->ents, d->ents + drop, (d->n - drop) * sizeof(*d->ents));
            d->n -= drop;
            free(d->snap.data);
            d->snap = d->op_snap;
        } else {
            free(d->op_snap.data);
        }
        d->op_snap.data = NULL;
    }
    if (d->op_n > 0 && entries_kept > 0) {
        sim__disk_truncate(d, d->op_truncate_from);
        TRIAD_ASSERT(d->snap.index + d->n + 1 == d->op_ents[0].index);
    }
    for (size_t i = 0; i < d->op_n; i++) {
        if (i < entries_kept)
            sim__disk_append(d, &d->op_ents[i]);
        else
            free(d->op_ents[i].data);
    }
    free(d->op_ents);
    d->op_ents = NULL;
    d->op_n = 0;
    d->op_pending = false;
}

static void sim__disk_drop_op(struct sim_disk *d)
{
    if (!d->op_pending)
        return;
    sim__ents_free(d->op_ents, d->op_n);
    d->op_ents = NULL;
    d->op_n = 0;
    if (d->op_has_snap)
        free(d->op_snap.data);
    d->op_snap.data = NULL;
    d->op_pending = false;
}

static void sim__disk_free(struct sim_disk *d)
{
    sim__disk_drop_op(d);
    sim__ents_free(d->ents, d->n);
    free(d->snap.data);
    memset(d, 0, sizeof(*d));
}

/* ---- node io ---- */

static uint64_t sim__io_now(void *arg)
{
    struct sim_node *sn = arg;
    return simlib_local_us(sn->s->now, sn->drift_ppm, sn->offset_us) / 1000;
}

static uint64_t sim__io_random(void *arg)
{
    struct sim_node *sn = arg;
    return simlib_rand(&sn->s->rng);
}

static uint64_t sim__latency(struct sim *s)
{
    return simlib_delay(&s->rng, s->p.lat_min_us, s->p.lat_max_us, s->p.tail_pm, s->p.tail_max_us);
}

static struct raft_msg *sim__msg_copy(const struct raft_msg *m)
{
    size_t size = sizeof(*m) + m->n_entries * sizeof(struct raft_entry) + m->len;
    for (uint32_t i = 0; i < m->n_entries; i++)
        size += m->entries[i].len;
    char *p = malloc(size);
    TRIAD_ASSERT(p != NULL);
    struct raft_msg *c = (struct raft_msg *)p;
    *c = *m;
    p += sizeof(*c);
    if (m->n_entries > 0) {
        struct raft_entry *e = (struct raft_entry *)p;
        p += m->n_entries * sizeof(*e);
        for (uint32_t i = 0; i < m->n_entries; i++) {
            e[i] = m->entries[i];
            if (e[i].len > 0) {
                memcpy(p, m->entries[i].data, e[i].len);
                e[i].data = (uint8_t *)p;
                p += e[i].len;
            } else {
                e[i].data = NULL;
            }
        }
        c->entries = e;
    }
    if (m->len > 0) {
        memcpy(p, m->data, m->len);
        c->data = (const uint8_t *)p;
    }
    return c;
}

static const char *sim__msg_name(uint8_t t)
{
    static const char *names[] = {"?", "prevote", "prevote_resp", "vote", "vote_resp", "append",
                                  "append_resp", "snapshot", "snapshot_resp", "timeout_now"};
    return t <= RAFT_MSG_TYPE_MAX ? names[t] : "?";
}

static void sim__io_send(void *arg, const struct raft_msg *m)
{
    struct sim_node *sn = arg;
    struct sim *s = sn->s;
    int to = (int)m->to - 1;
    if (to < 0 || to >= (int)s->p.n)
        return;
    if (!s->link[sn->idx][to] || simlib_chance(&s->rng, s->loss_pm))
        return;
    int copies = simlib_chance(&s->rng, s->dup_pm) ? 2 : 1;
    for (int i = 0; i < copies; i++)
        sim__push(s, s->now + sim__latency(s) + s->link_delay_us[sn->idx][to], EV_DELIVER, to, s->nodes[to].gen, 0, sim__msg_copy(m));
}

static void sim__io_persist(void *arg, const struct raft_ready *rd)
{
    struct sim_node *sn = arg;
    struct sim *s = sn->s;
    struct sim_disk *d = &sn->disk;
    TRIAD_ASSERT(!d->op_pending);
    sim__mirror_persist(s, sn, rd);
    d->op_pending = true;
    d->op_has_hs = true; /* the hard-state record goes first in every write */
    d->op_hs = rd->hs;
    d->op_has_snap = rd->snapshot != NULL;
    d->op_install = rd->snapshot_install;
    if (rd->snapshot != NULL)
        sim__snap_copy(&d->op_snap, rd->snapshot);
    d->op_truncate_from = rd->truncate_from;
    d->op_ents = sim__ents_copy(rd->entries, rd->n_entries);
    d->op_n = rd->n_entries;
    uint64_t lat = simlib_range(&s->rng, s->p.fsync_min_us, s->p.fsync_max_us);
    if (s->now < d->spike_until_us || simlib_chance(&s->rng, s->p.spike_pm))
        lat += simlib_range(&s->rng, 0, s->p.spike_max_us);
    sim__push(s, s->now + lat, EV_DISK_DONE, sn->idx, sn->gen, 0, NULL);
}

static void sim__io_set_timer(void *arg, uint64_t at_ms)
{
    struct sim_node *sn = arg;
    struct sim *s = sn->s;
    uint64_t t = sim__global_us(sn, at_ms * 1000);
    sim__push(s, t, EV_TIMER, sn->idx, sn->gen, ++sn->timer_seq, NULL);
}

static void sim__io_reply(void *arg, uint64_t req_id, const char *resp, size_t len,
                          uint64_t index)
{
    (void)index;
    struct sim_node *sn = arg;
    struct sim *s = sn->s;
    if (req_id & SIM_ADMIN_REQ) {
        sim__trace(s, "node %u: membership change %llu: %.*s", sn->id,
                   (unsigned long long)(req_id & ~SIM_ADMIN_REQ), (int)(len > 2 ? len - 2 : len),
                   resp);
        return;
    }
    struct sim_reply *rp = malloc(sizeof(*rp) + len + 1);
    TRIAD_ASSERT(rp != NULL);
    rp->req_id = req_id;
    rp->len = len;
    memcpy(rp->data, resp, len);
    rp->data[len] = '\0';
    sim__push(s, s->now + sim__latency(s), EV_CLIENT_REPLY, 0, 0, req_id % 64, rp);
}

/* ---- nodes: start, crash, pause ---- */

/* node_io.wake: the node's inputs are processed together a moment later,
 * as the server's event loop does at the end of an iteration. */
static void sim__io_wake(void *arg)
{
    struct sim_node *sn = arg;
    struct sim *s = sn->s;
    sim__push(s, s->now + simlib_range(&s->rng, 0, 300), EV_FLUSH, sn->idx, sn->gen, 0, NULL);
}

static void sim__node_start(struct sim *s, struct sim_node *sn, bool bootstrap)
{
    struct node_config cfg;
    node_config_default(&cfg, sn->id);
    cfg.raft.heartbeat_ms = s->p.heartbeat_ms;
    cfg.raft.election_timeout_ms_min = s->p.elect_min_ms;
    cfg.raft.election_timeout_ms_max = s->p.elect_max_ms;
    cfg.raft.snapshot_chunk_bytes = s->p.chunk_bytes;
    cfg.raft.append_bytes_max = 4096;
    cfg.raft.inflight_msgs_max = 8;
    cfg.raft.bugs = s->opt->bugs;
    if (s->opt->bugs & RAFT_BUG_LEASE_NO_CHECKQ)
        cfg.raft.check_quorum = false;
    cfg.snapshot_entries = s->p.snapshot_entries;
    struct node_io io = {
        .arg = sn,
        .now_ms = sim__io_now,
        .random = sim__io_random,
        .send = sim__io_send,
        .persist = sim__io_persist,
        .set_timer = sim__io_set_timer,
        .reply = sim__io_reply,
        .applied = sim__on_applied,
        .wake = s->p.batch ? sim__io_wake : NULL,
    };
    /* the first configuration: every node a voter, or node 1 alone (the
     * others join through membership changes) */
    struct raft_conf conf = {.n = s->p.grow ? 1 : s->p.n};
    for (uint32_t i = 0; i < conf.n; i++)
        conf.members[i] = (struct raft_member){.id = i + 1, .role = RAFT_VOTER};
    if (s->p.grow && sn->id != 1)
        bootstrap = false;
    struct node_disk disk = {
        .hs = sn->disk.hs,
        .snapshot = sn->disk.snap.index > 0 ? &sn->disk.snap : NULL,
        .entries = sn->disk.ents,
        .n_entries = sn->disk.n,
    };
    /* the mirror restarts from the disk */
    sn->m_base = sn->disk.snap.index;
    sn->m_base_term = sn->disk.snap.term;
    sn->m_n = 0;
    for (size_t i = 0; i < sn->disk.n; i++) {
        if (sn->m_n == sn->m_cap) {
            sn->m_cap = sn->m_cap ? sn->m_cap * 2 : 256;
            sn->m_term = realloc(sn->m_term, sn->m_cap * sizeof(*sn->m_term));
        }
        sn->m_term[sn->m_n++] = sn->disk.ents[i].term;
    }
    sn->up = true;
    sn->paused = false;
    sn->lead_term = 0;
    sn->commit_checked = 0;
    char err[256];
    sn->node = node_new(&cfg, &io, &disk, bootstrap ? &conf : NULL, err, sizeof(err));
    if (sn->node == NULL)
        sim__fail(s, "node %u cannot start: %s", sn->id, err);
}

static void sim__free_event(struct sim_ev *ev)
{
    if (ev->kind == EV_DELIVER || ev->kind == EV_CLIENT_REQ || ev->kind == EV_CLIENT_REPLY)
        free(ev->p);
}

static void sim__node_crash(struct sim *s, struct sim_node *sn)
{
    if (!sn->up)
        return;
    sim__trace(s, "crash node %u", sn->id);
    /* the unsynced write is lost, or torn: a prefix of its records made it */
    struct sim_disk *d = &sn->disk;
    if (d->op_pending) {
        if (d->op_n > 0 && !d->op_has_snap && simlib_chance(&s->rng, s->p.torn_pm)) {
            /* as src/store/raftlog.c lays a ready out: the entries records
             * (the first carries the truncation), then the hard state; a
             * tear keeps a prefix of them */
            size_t kept = (size_t)simlib_range(&s->rng, 0, d->op_n);
            sim__disk_apply(d, kept, kept == d->op_n && simlib_chance(&s->rng, 500));
        }
        else
            sim__disk_drop_op(d);
    }
    node_free(sn->node);
    sn->node = NULL;
    sn->up = false;
    sn->paused = false;
    sn->gen++;
    for (size_t i = 0; i < sn->n_def; i++)
        sim__free_event(&sn->deferred[i]);
    sn->n_def = 0;
    sim__check_durable(s);
}

static void sim__defer(struct sim_node *sn, const struct sim_ev *ev)
{
    if (sn->n_def == sn->cap_def) {
        sn->cap_def = sn->cap_def ? sn->cap_def * 2 : 64;
        sn->deferred = realloc(sn->deferred, sn->cap_def * sizeof(*sn->deferred));
        TRIAD_ASSERT(sn->deferred != NULL);
    }
    sn->deferred[sn->n_def++] = *ev;
}

static void sim__node_resume(struct sim *s, struct sim_node *sn)
{
    if (!sn->up || !sn->paused)
        return;
    sim__trace(s, "resume node %u", sn->id);
    sn->paused = false;
    /* a libuv loop runs its due timers before it reads the sockets, so the
     * node wakes to its expired timers first, then to what arrived while
     * it slept */
    sim__push(s, s->now, EV_TIMER, sn->idx, sn->gen, sn->timer_seq, NULL);
    for (size_t i = 0; i < sn->n_def; i++) {
        struct sim_ev *ev = &sn->deferred[i];
        if (ev->kind != EV_TIMER)
            sim__push(s, s->now, ev->kind, ev->node, ev->gen, ev->a, ev->p);
    }
    sn->n_def = 0;
}

/* ---- clients ---- */

static const char *sim__op_name(enum sim_op op)
{
    static const char *n[] = {"GET", "SET", "SET IFEQ", "APPEND", "INCR"};
    return n[op];
}

static void sim__client_send(struct sim *s, struct sim_client *c)
{
    c->attempt++;
    uint64_t req_id = c->attempt * 64 + (uint64_t)c->idx;
    struct sim_req *rq = calloc(1, sizeof(*rq));
    TRIAD_ASSERT(rq != NULL);
    rq->req_id = req_id;
    bool write = c->op != OP_GET;
    rq->client_id = write ? c->client_id : 0;
    rq->seq = write ? c->seq : 0;
    char key[8];
    snprintf(key, sizeof(key), "k%d", c->key);
    const char *args[5];
    int argc = 0;
    switch (c->op) {
    case OP_GET: args[argc++] = "GET"; args[argc++] = key; break;
    case OP_SET: args[argc++] = "SET"; args[argc++] = key; args[argc++] = c->value; break;
    case OP_IFEQ:
        args[argc++] = "SET"; args[argc++] = key; args[argc++] = c->value;
        args[argc++] = "IFEQ"; args[argc++] = c->expected;
        break;
    case OP_APPEND: args[argc++] = "APPEND"; args[argc++] = key; args[argc++] = c->value; break;
    case OP_INCR: args[argc++] = "INCR"; args[argc++] = key; break;
    }
    size_t o = 0;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(args[i]);
        TRIAD_ASSERT(o + l + 1 <= sizeof(rq->buf));
        memcpy(rq->buf + o, args[i], l + 1);
        rq->argv[i] = rq->buf + o;
        rq->argvlen[i] = l;
        o += l + 1;
    }
    rq->argc = argc;
    sim__push(s, s->now + sim__latency(s), EV_CLIENT_REQ, c->target, 0, (uint64_t)c->idx, rq);
    sim__push(s, s->now + (uint64_t)s->p.req_timeout_ms * 1000, EV_CLIENT_TIMEOUT, 0,
              (uint32_t)c->attempt, (uint64_t)c->idx, NULL);
}

static void sim__client_start_op(struct sim *s, struct sim_client *c)
{
    if (s->clients_stopped || s->failed) {
        c->stopped = true;
        return;
    }
    if (s->writes_resume_us != 0 && s->now >= s->writes_resume_us) {
        s->read_only = false;
        s->writes_resume_us = 0;
    }
    if (s->healed && !c->wrote_after_heal) {
        c->op = OP_SET;
        c->wrote_after_heal = true;
    } else if (s->read_only || simlib_range(&s->rng, 0, 99) >= s->p.write_pct) {
        c->op = OP_GET;
    } else {
        uint64_t r = simlib_range(&s->rng, 0, 99);
        c->op = r < 30 ? OP_SET : r < 55 ? OP_IFEQ : r < 80 ? OP_APPEND : OP_INCR;
    }
    c->key = (int)simlib_range(&s->rng, 0, s->p.keys - 1);
    c->n_ops++;
    if (c->op == OP_SET) {
        if (simlib_chance(&s->rng, 500))
            snprintf(c->value, sizeof(c->value), "%" PRIu64, simlib_range(&s->rng, 0, 99));
        else
            snprintf(c->value, sizeof(c->value), "c%d.%" PRIu64, c->idx, c->n_ops);
    } else if (c->op == OP_IFEQ) {
        snprintf(c->value, sizeof(c->value), "c%d.%" PRIu64, c->idx, c->n_ops);
        if (c->has_seen[c->key] && simlib_chance(&s->rng, 800))
            memcpy(c->expected, c->last_seen[c->key], sizeof(c->expected));
        else
            snprintf(c->expected, sizeof(c->expected), "%" PRIu64, simlib_range(&s->rng, 0, 99));
    } else if (c->op == OP_APPEND) {
        snprintf(c->value, sizeof(c->value), "%" PRIu64, simlib_range(&s->rng, 0, 9));
    }
    if (c->op != OP_GET)
        c->seq++;
    if (simlib_chance(&s->rng, s->p.spread_pm))
        c->target = (int)simlib_range(&s->rng, 0, s->p.n - 1);
    c->maybe_applied = false;
    c->busy = true;
    c->op_start_us = s->now;
    char key[8];
    snprintf(key, sizeof(key), "k%d", c->key);
    static const enum lin_op lops[] = {LIN_GET, LIN_SET, LIN_SET_IFEQ, LIN_APPEND, LIN_INCR};
    const char *v = c->op == OP_SET || c->op == OP_IFEQ || c->op == OP_APPEND ? c->value : "";
    const char *e = c->op == OP_IFEQ ? c->expected : "";
    c->lin_id = lin_invoke(&s->hist, (uint32_t)c->idx, lops[c->op], key, strlen(key), v, strlen(v),
                           e, strlen(e), s->now);
    sim__client_send(s, c);
}

static void sim__client_done(struct sim *s, struct sim_client *c)
{
    c->busy = false;
    sim__push(s, s->now + simlib_range(&s->rng, 0, (uint64_t)s->p.think_max_ms * 1000),
              EV_CLIENT_NEXT, 0, 0, (uint64_t)c->idx, NULL);
}

static void sim__client_give_up(struct sim *s, struct sim_client *c)
{
    if (c->op != OP_GET && c->maybe_applied) {
        lin_unknown(&s->hist, c->lin_id);
        s->res->ops_unknown++;
    } else {
        lin_fail(&s->hist, c->lin_id, s->now);
        s->res->ops_failed++;
    }
    sim__client_done(s, c);
}

static void sim__client_retry(struct sim *s, struct sim_client *c, int target)
{
    if (s->now - c->op_start_us >= (uint64_t)s->p.op_deadline_ms * 1000) {
        sim__client_give_up(s, c);
        return;
    }
    c->target = target;
    /* a short pause before the retry: the cluster may be electing */
    c->attempt++;
    sim__push(s, s->now + simlib_range(&s->rng, 1000, 30000), EV_CLIENT_NEXT, 0,
              (uint32_t)c->attempt, (uint64_t)c->idx + 1000, NULL);
}

static void sim__client_reply(struct sim *s, struct sim_client *c, const struct sim_reply *rp)
{
    if (!c->busy || rp->req_id != c->attempt * 64 + (uint64_t)c->idx)
        return; /* an answer to an attempt given up on */
    const char *d = rp->data;
    if (d[0] == '-') {
        if (strncmp(d, "-NOTLEADER ", 11) == 0) {
            int leader = atoi(d + 11);
            int target = leader >= 1 && leader <= (int)s->p.n
                             ? leader - 1
                             : (int)simlib_range(&s->rng, 0, s->p.n - 1);
            sim__client_retry(s, c, target);
            return;
        }
        if (strncmp(d, "-TRYAGAIN", 9) == 0 || strncmp(d, "-BUSY", 5) == 0) {
            if (strncmp(d, "-TRYAGAIN", 9) == 0)
                c->maybe_applied = true;
            sim__client_retry(s, c, c->target);
            return;
        }
        if (c->op == OP_INCR && strstr(d, "not an integer") != NULL) {
            lin_complete_incr_error(&s->hist, c->lin_id, s->now);
            s->res->ops_ok++;
            sim__client_done(s, c);
            return;
        }
        sim__fail(s, "client %d: unexpected reply to %s: %.100s", c->idx, sim__op_name(c->op), d);
        return;
    }
    s->res->ops_ok++;
    switch (c->op) {
    case OP_GET:
        if (strncmp(d, "$-1", 3) == 0 || strncmp(d, "_", 1) == 0) {
            lin_complete_get_nil(&s->hist, c->lin_id, s->now);
            c->has_seen[c->key] = false;
        } else if (d[0] == '$') {
            const char *v = strstr(d, "\r\n");
            size_t len = (size_t)atoll(d + 1);
            TRIAD_ASSERT(v != NULL);
            lin_complete_get(&s->hist, c->lin_id, v + 2, len, s->now);
            if (len < sizeof(c->last_seen[0])) {
                memcpy(c->last_seen[c->key], v + 2, len);
                c->last_seen[c->key][len] = '\0';
                c->has_seen[c->key] = true;
            }
        } else {
            sim__fail(s, "client %d: bad GET reply %.60s", c->idx, d);
        }
        break;
    case OP_SET:
        lin_complete_set(&s->hist, c->lin_id, s->now);
        break;
    case OP_IFEQ:
        lin_complete_ifeq(&s->hist, c->lin_id, d[0] == '+', s->now);
        break;
    case OP_APPEND:
        lin_complete_append(&s->hist, c->lin_id, (uint64_t)atoll(d + 1), s->now);
        break;
    case OP_INCR: {
        long long v = atoll(d + 1);
        lin_complete_incr(&s->hist, c->lin_id, v, s->now);
        snprintf(c->last_seen[c->key], sizeof(c->last_seen[0]), "%lld", v);
        c->has_seen[c->key] = true;
        break;
    }
    }
    sim__client_done(s, c);
}

/* ---- the nemesis ---- */

static int sim__leader(struct sim *s)
{
    int best = -1;
    raft_term bt = 0;
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sn->up && !sn->paused && raft_role(node_raft(sn->node)) == RAFT_LEADER &&
            raft_current_term(node_raft(sn->node)) >= bt) {
            best = (int)i;
            bt = raft_current_term(node_raft(sn->node));
        }
    }
    return best;
}

static void sim__links_all(struct sim *s, bool up)
{
    for (uint32_t i = 0; i < s->p.n; i++)
        for (uint32_t j = 0; j < s->p.n; j++) {
            s->link[i][j] = up || i == j;
            s->link_delay_us[i][j] = 0;
        }
}

static void sim__leader_failing(struct sim *s, int victim)
{
    if (victim < 0 || s->failover_pending)
        return;
    struct sim_node *sn = &s->nodes[victim];
    if (!sn->up || raft_role(node_raft(sn->node)) != RAFT_LEADER)
        return;
    s->failover_pending = true;
    s->failover_elected = false;
    s->failover_start_us = s->now;
    s->failover_term = raft_current_term(node_raft(sn->node));
}

/* --leader-faults: one failure of the leader at a time (crash, pause or
 * isolation), repaired before the next, on an otherwise healthy network:
 * what the failover figures are measured on. */
static void sim__nemesis_leader(struct sim *s)
{
    uint32_t n = s->p.n;
    int leader = sim__leader(s);
    /* repair the previous fault first */
    sim__links_all(s, true);
    for (uint32_t i = 0; i < n; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (!sn->up)
            sim__node_start(s, sn, false);
        else if (sn->paused)
            sim__node_resume(s, sn);
    }
    if (leader >= 0 && !s->failover_pending) {
        struct sim_node *sn = &s->nodes[leader];
        s->res->faults++;
        sim__leader_failing(s, leader);
        switch (simlib_range(&s->rng, 0, 2)) {
        case 0:
            sim__node_crash(s, sn);
            break;
        case 1:
            sn->paused = true;
            sim__trace(s, "pause node %u", sn->id);
            break;
        default:
            for (uint32_t j = 0; j < n; j++)
                if ((int)j != leader)
                    s->link[leader][j] = s->link[j][leader] = false;
            sim__trace(s, "nemesis: isolate leader %d", leader + 1);
            break;
        }
    }
    if (!s->healed)
        sim__push(s, s->now + simlib_range(&s->rng, 2000000, 4000000), EV_NEMESIS, 0, 0, 0, NULL);
}

static void sim__nemesis(struct sim *s)
{
    uint32_t n = s->p.n;
    int leader = sim__leader(s);
    if (s->opt->leader_faults) {
        sim__nemesis_leader(s);
        return;
    }
    uint64_t kind = s->p.membership && simlib_chance(&s->rng, 300) ? 15
                    : simlib_chance(&s->rng, 60)                     ? 17
                                                                     : simlib_range(&s->rng, 0, 14);
    s->res->faults++;
    switch (kind) {
    case 0: { /* random halves */
        sim__links_all(s, true);
        uint32_t mask = (uint32_t)simlib_rand(&s->rng);
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++)
                if (((mask >> i) & 1) != ((mask >> j) & 1))
                    s->link[i][j] = false;
        sim__trace(s, "nemesis: partition halves mask %x", mask);
        if (leader >= 0)
            sim__leader_failing(s, leader);
        break;
    }
    case 1: /* isolate the leader */
        if (leader < 0)
            break;
        sim__links_all(s, true);
        for (uint32_t j = 0; j < n; j++)
            if ((int)j != leader)
                s->link[leader][j] = s->link[j][leader] = false;
        sim__trace(s, "nemesis: isolate leader %d", leader + 1);
        sim__leader_failing(s, leader);
        break;
    case 2: /* majorities ring: each node sees its neighbours only */
        sim__links_all(s, false);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t a = (i + 1) % n, b = (i + n - 1) % n;
            s->link[i][a] = s->link[a][i] = s->link[i][b] = s->link[b][i] = true;
        }
        sim__trace(s, "nemesis: majorities ring");
        break;
    case 3: { /* bridge: two halves joined by one node */
        sim__links_all(s, true);
        uint32_t bridge = (uint32_t)simlib_range(&s->rng, 0, n - 1);
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = 0; j < n; j++) {
                if (i == bridge || j == bridge)
                    continue;
                bool hi = i < bridge, hj = j < bridge;
                if (hi != hj)
                    s->link[i][j] = false;
            }
        sim__trace(s, "nemesis: bridge through %u", bridge + 1);
        break;
    }
    case 4: { /* asymmetric: one direction of some links */
        uint32_t a = (uint32_t)simlib_range(&s->rng, 0, n - 1);
        for (uint32_t j = 0; j < n; j++)
            if (j != a && simlib_chance(&s->rng, 600))
                s->link[a][j] = false;
        sim__trace(s, "nemesis: node %u's outbound links cut", a + 1);
        break;
    }
    case 5:
    case 6: /* heal the network */
        sim__links_all(s, true);
        sim__trace(s, "nemesis: heal network");
        break;
    case 7:
    case 8: { /* crash a node (the leader half the time), restart later */
        int v = leader >= 0 && simlib_chance(&s->rng, 500) ? leader
                                                            : (int)simlib_range(&s->rng, 0, n - 1);
        if (!s->nodes[v].up)
            break;
        sim__leader_failing(s, v);
        sim__node_crash(s, &s->nodes[v]);
        sim__push(s, s->now + simlib_range(&s->rng, 50000, 3000000), EV_RESTART, v, 0, 0, NULL);
        break;
    }
    case 9:
    case 10: { /* pause a node for longer than an election timeout */
        int v = leader >= 0 && simlib_chance(&s->rng, 600) ? leader
                                                            : (int)simlib_range(&s->rng, 0, n - 1);
        struct sim_node *sn = &s->nodes[v];
        if (!sn->up || sn->paused)
            break;
        sim__leader_failing(s, v);
        sn->paused = true;
        sim__trace(s, "pause node %u", sn->id);
        sim__push(s,
                  s->now + simlib_range(&s->rng, s->p.elect_min_ms * 1000,
                                        s->p.elect_max_ms * 5000),
                  EV_RESUME, v, sn->gen, 0, NULL);
        break;
    }
    case 12: { /* a partial partition: the leader loses one follower, both ways */
        if (leader < 0)
            break;
        uint32_t f = (uint32_t)simlib_range(&s->rng, 0, n - 2);
        if ((int)f >= leader)
            f++;
        s->link[leader][f] = s->link[f][leader] = false;
        sim__trace(s, "nemesis: cut link %d <-> %u", leader + 1, f + 1);
        break;
    }
    case 13: { /* slow links: one node's messages to the others lag */
        uint32_t a = leader >= 0 && simlib_chance(&s->rng, 500)
                         ? (uint32_t)simlib_range(&s->rng, 0, n - 1)
                         : (uint32_t)simlib_range(&s->rng, 0, n - 1);
        for (uint32_t j = 0; j < n; j++)
            if (j != a && simlib_chance(&s->rng, 700))
                s->link_delay_us[j][a] = (uint32_t)simlib_range(&s->rng, 20000, 300000);
        sim__trace(s, "nemesis: slow links into node %u", a + 1);
        break;
    }
    case 14: { /* A quiet spell and a follower that sleeps through it: it
                * wakes with a complete log and an expired election timer
                * and campaigns at once, while the leader's lease stands and
                * news of the new term reaches it slowly. Then a burst of
                * writes. Exactly what check-quorum's vote refusal is for. */
        if (leader < 0)
            break;
        int v = (int)simlib_range(&s->rng, 0, n - 2);
        if (v >= leader)
            v++;
        struct sim_node *sn = &s->nodes[v];
        if (!sn->up || sn->paused)
            break;
        uint64_t pause_us =
            simlib_range(&s->rng, s->p.elect_max_ms * 1000, s->p.elect_max_ms * 2000);
        sn->paused = true;
        s->read_only = true;
        s->writes_resume_us = s->now + pause_us;
        for (uint32_t j = 0; j < n; j++)
            if ((int)j != leader)
                s->link_delay_us[j][leader] = (uint32_t)simlib_range(&s->rng, 20000, 250000);
        s->link[leader][v] = false; /* it will not hear the leader when it wakes */
        sim__trace(s, "nemesis: quiet spell, node %u sleeps, slow links into leader %d", sn->id,
                   leader + 1);
        sim__push(s, s->now + pause_us, EV_RESUME, v, sn->gen, 0, NULL);
        break;
    }
    case 15: { /* a membership change: promote a learner, add a node that is
                * out as a learner, or remove a member (the leader too) */
        if (leader < 0)
            break;
        struct raft *lr = node_raft(s->nodes[leader].node);
        const struct raft_conf *c = raft_conf(lr);
        enum raft_change change = 0;
        raft_id id = 0;
        for (uint32_t i = 0; i < c->n && id == 0; i++)
            if (c->members[i].role == RAFT_LEARNER) {
                change = RAFT_PROMOTE;
                id = c->members[i].id;
            }
        for (uint32_t k = 0; k < n && id == 0; k++)
            if (raft_conf_find(c, k + 1) == NULL) {
                change = RAFT_ADD_LEARNER;
                id = k + 1;
            }
        if (id == 0 && raft_conf_voters(c) > 1) {
            change = RAFT_REMOVE;
            id = (raft_id)simlib_range(&s->rng, 1, n);
        }
        if (id == 0)
            break;
        /* through the node, as TRIAD.MEMBERS does: an added node's address
         * goes into the log first, and one added to vote is promoted by the
         * leader itself once it has caught up */
        char host[32];
        snprintf(host, sizeof(host), "10.0.0.%u", (unsigned)id);
        bool voter = change == RAFT_ADD_LEARNER && simlib_range(&s->rng, 0, 1) == 1;
        static const char *names[] = {"", "add learner", "promote", "remove"};
        uint64_t rid = SIM_ADMIN_REQ | ++s->admin_seq;
        sim__trace(s, "nemesis: %s %u%s (change %llu)", names[change], id,
                   voter ? " to promote" : "", (unsigned long long)s->admin_seq);
        node_change_member(s->nodes[leader].node, rid, change, id, host, (uint16_t)(7000 + id),
                           voter);
        sim__check_node(s, &s->nodes[leader]);
        break;
    }
    case 17: { /* a leadership transfer to a random voter */
        if (leader < 0)
            break;
        struct raft *lr = node_raft(s->nodes[leader].node);
        raft_id to = (raft_id)simlib_range(&s->rng, 1, n);
        int rc = raft_transfer(lr, to);
        sim__trace(s, "nemesis: transfer leadership %d -> %u: %s", leader + 1, to,
                   rc == 0 ? "started" : "refused");
        if (rc == 0) {
            node_tick(s->nodes[leader].node);
            sim__check_node(s, &s->nodes[leader]);
        }
        break;
    }
    case 11: { /* an fsync latency spike on one disk */
        int v = (int)simlib_range(&s->rng, 0, n - 1);
        s->nodes[v].disk.spike_until_us = s->now + simlib_range(&s->rng, 100000, 2000000);
        sim__trace(s, "nemesis: slow disk on node %d", v + 1);
        break;
    }
    }
    if (!s->healed)
        sim__push(s, s->now + simlib_range(&s->rng, (uint64_t)s->p.fault_min_ms * 1000,
                                           (uint64_t)s->p.fault_max_ms * 1000),
                  EV_NEMESIS, 0, 0, 0, NULL);
}

static void sim__heal(struct sim *s)
{
    sim__trace(s, "heal everything");
    s->healed = true;
    s->read_only = false;
    sim__links_all(s, true);
    s->loss_pm = 0;
    s->dup_pm = 0;
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->disk.spike_until_us = 0;
        if (!sn->up)
            sim__node_start(s, sn, false);
        else if (sn->paused)
            sim__node_resume(s, sn);
    }
    s->p.spike_pm = 0;
    s->heal_us = s->now;
    s->heal_commit = 0;
    for (uint32_t i = 0; i < s->p.n; i++)
        if (s->nodes[i].node)
            s->heal_commit = TRIAD_MAX(s->heal_commit, raft_commit_index(node_raft(s->nodes[i].node)));
}

/* ---- the run ---- */

static void sim__params(struct sim *s)
{
    struct sim_params *p = &s->p;
    p->n = simlib_chance(&s->rng, 500) ? 3 : 5;
    if (s->opt->default_timeouts || simlib_chance(&s->rng, 500)) {
        p->heartbeat_ms = 50;
        p->elect_min_ms = 300;
        p->elect_max_ms = 600;
    } else {
        p->heartbeat_ms = simlib_range(&s->rng, 10, 100);
        p->elect_min_ms = p->heartbeat_ms * simlib_range(&s->rng, 4, 10);
        p->elect_max_ms = p->elect_min_ms * 2;
    }
    p->lat_min_us = (uint32_t)simlib_range(&s->rng, 50, 1000);
    p->lat_max_us = p->lat_min_us + (uint32_t)simlib_range(&s->rng, 100, 5000);
    p->tail_pm = (uint32_t)simlib_range(&s->rng, 0, 30);
    p->tail_max_us = (uint32_t)simlib_range(&s->rng, 1000, 200000);
    p->loss_pm = (uint32_t)simlib_range(&s->rng, 0, 50);
    p->dup_pm = (uint32_t)simlib_range(&s->rng, 0, 20);
    p->fsync_min_us = (uint32_t)simlib_range(&s->rng, 50, 1000);
    p->fsync_max_us = p->fsync_min_us + (uint32_t)simlib_range(&s->rng, 0, 5000);
    p->spike_pm = (uint32_t)simlib_range(&s->rng, 0, 20);
    p->spike_max_us = (uint32_t)simlib_range(&s->rng, 10000, 500000);
    p->torn_pm = (uint32_t)simlib_range(&s->rng, 0, 600);
    p->drift_ppm_max = (uint32_t)simlib_range(&s->rng, 0, 20000); /* <= 2%: the lease assumes 5% */
    p->safety_ms = simlib_range(&s->rng, 3000, 12000);
    p->fault_min_ms = (uint32_t)simlib_range(&s->rng, 50, 500);
    p->fault_max_ms = p->fault_min_ms + (uint32_t)simlib_range(&s->rng, 100, 2000);
    p->clients = (uint32_t)simlib_range(&s->rng, 2, 8);
    p->keys = (uint32_t)simlib_range(&s->rng, 1, 3);
    p->think_max_ms = (uint32_t)simlib_range(&s->rng, 0, 60);
    p->write_pct = (uint32_t)simlib_range(&s->rng, 2, 70);
    p->spread_pm = (uint32_t)simlib_range(&s->rng, 0, 500);
    p->membership = simlib_chance(&s->rng, 500);
    p->grow = p->membership && simlib_chance(&s->rng, 400);
    if (s->opt->leader_faults) /* failover of a full cluster of voters */
        p->membership = p->grow = false;
    p->req_timeout_ms = (uint32_t)simlib_range(&s->rng, 200, 1000);
    p->op_deadline_ms = (uint32_t)simlib_range(&s->rng, 1000, 4000);
    p->snapshot_entries = simlib_chance(&s->rng, 700) ? simlib_range(&s->rng, 10, 300) : 0;
    p->chunk_bytes = (uint32_t)simlib_range(&s->rng, 64, 4096);
    /* from the seed, not the generator: the other draws stay as they were */
    p->batch = ((s->opt->seed * 0x9e3779b97f4a7c15ull) >> 63) != 0;
}

static void sim__handle(struct sim *s, const struct sim_ev *ev)
{
    struct sim_node *sn = &s->nodes[ev->node];
    switch (ev->kind) {
    case EV_DELIVER: {
        struct raft_msg *m = ev->p;
        if (!sn->up || sn->gen != ev->gen || !s->link[m->from - 1][ev->node]) {
            free(m);
            break;
        }
        if (sn->paused) {
            sim__defer(sn, ev);
            break;
        }
        sim__trace(s, "%u -> %u %s term %" PRIu64 " n=%u", m->from, m->to, sim__msg_name(m->type),
                   m->term, m->n_entries);
        node_step(sn->node, m);
        free(m);
        sim__check_node(s, sn);
        break;
    }
    case EV_FLUSH:
        if (!sn->up || sn->gen != ev->gen)
            break;
        if (sn->paused) {
            sim__defer(sn, ev);
            break;
        }
        node_flush(sn->node);
        sim__check_node(s, sn);
        break;
    case EV_TIMER:
        if (!sn->up || sn->gen != ev->gen || ev->a != sn->timer_seq)
            break;
        if (sn->paused) {
            sim__defer(sn, ev);
            break;
        }
        node_tick(sn->node);
        sim__check_node(s, sn);
        break;
    case EV_DISK_DONE:
        if (!sn->up || sn->gen != ev->gen)
            break;
        /* the kernel finished the write even if the process is stopped */
        if (sn->disk.op_pending)
            sim__disk_apply(&sn->disk, SIZE_MAX, true);
        if (sn->paused) {
            struct sim_ev e2 = *ev;
            e2.kind = EV_DISK_DONE;
            e2.a = 1; /* already applied */
            sim__defer(sn, &e2);
            break;
        }
        node_persisted(sn->node);
        sim__check_node(s, sn);
        break;
    case EV_CLIENT_REQ: {
        struct sim_req *rq = ev->p;
        if (sn->up && sn->paused) {
            sim__defer(sn, ev);
            break;
        }
        if (sn->up) {
            struct node_req nr = {.id = rq->req_id, .client_id = rq->client_id, .seq = rq->seq,
                                  .proto = 2, .argc = rq->argc, .argv = rq->argv,
                                  .argvlen = rq->argvlen};
            node_submit(sn->node, &nr);
            sim__check_node(s, sn);
        }
        free(rq);
        break;
    }
    case EV_CLIENT_REPLY: {
        struct sim_reply *rp = ev->p;
        sim__client_reply(s, &s->clients[ev->a], rp);
        free(rp);
        break;
    }
    case EV_CLIENT_TIMEOUT: {
        struct sim_client *c = &s->clients[ev->a];
        if (!c->busy || c->attempt != ev->gen)
            break;
        if (c->op != OP_GET)
            c->maybe_applied = true;
        sim__client_retry(s, c, (int)simlib_range(&s->rng, 0, s->p.n - 1));
        break;
    }
    case EV_CLIENT_NEXT:
        if (ev->a >= 1000) { /* a retry */
            struct sim_client *c = &s->clients[ev->a - 1000];
            if (c->busy && c->attempt == ev->gen)
                sim__client_send(s, c);
        } else {
            sim__client_start_op(s, &s->clients[ev->a]);
        }
        break;
    case EV_NEMESIS:
        if (!s->healed)
            sim__nemesis(s);
        break;
    case EV_RESTART:
        if (!sn->up && !s->healed) {
            sim__trace(s, "restart node %u", sn->id);
            sim__node_start(s, sn, false);
            sim__check_node(s, sn);
        }
        break;
    case EV_RESUME:
        if (sn->gen == ev->gen)
            sim__node_resume(s, sn);
        break;
    case EV_HEAL:
        sim__heal(s);
        break;
    case EV_STOP_CLIENTS:
        s->clients_stopped = true;
        break;
    case EV_WORKLOAD:
        /* stretches of reads only, then mixed again: a leader can then be
         * elected by a node whose log is complete though it has not heard
         * from the old leader lately */
        if (s->writes_resume_us == 0)
            s->read_only = !s->read_only;
        if (!s->healed)
            sim__push(s, s->now + simlib_range(&s->rng, 100000, s->read_only ? 1500000 : 3000000),
                      EV_WORKLOAD, 0, 0, 0, NULL);
        else
            s->read_only = false;
        break;
    case EV_END:
        s->ended = true;
        break;
    }
}

static bool sim__clients_idle(const struct sim *s)
{
    for (uint32_t i = 0; i < s->p.clients; i++)
        if (s->clients[i].busy)
            return false;
    return true;
}

/* After the run: every up node has converged on one state. */
static void sim__check_converged(struct sim *s)
{
    raft_index applied = 0;
    uint64_t digest = 0;
    int first = -1;
    /* the members of the newest configuration: removed nodes stop hearing */
    const struct raft_conf *conf = NULL;
    raft_term best = 0;
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sn->up && raft_role(node_raft(sn->node)) == RAFT_LEADER &&
            raft_current_term(node_raft(sn->node)) >= best) {
            best = raft_current_term(node_raft(sn->node));
            conf = raft_conf(node_raft(sn->node));
        }
    }
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (!sn->up || (conf != NULL && raft_conf_find(conf, sn->id) == NULL))
            continue;
        raft_index a = raft_applied_index(node_raft(sn->node));
        uint64_t d = node_digest(sn->node);
        if (first < 0) {
            first = (int)i;
            applied = a;
            digest = d;
        } else if (a != applied || d != digest) {
            sim__fail(s, "no convergence: node %u applied %" PRIu64 ", node %d applied %" PRIu64
                      "%s", sn->id, a, first + 1, applied, a == applied ? " (different state)" : "");
            return;
        }
    }
}

int sim_run(const struct sim_options *opt, struct sim_result *res)
{
    struct sim *s = calloc(1, sizeof(*s));
    TRIAD_ASSERT(s != NULL);
    memset(res, 0, sizeof(*res));
    s->opt = opt;
    s->res = res;
    s->rng.state = opt->seed * 0x2545f4914f6cdd1dull + 1;
    simlib_evq_init(&s->events, sizeof(struct sim_ev));
    sim__params(s);
    res->nodes = s->p.n;
    s->loss_pm = opt->leader_faults ? 0 : s->p.loss_pm;
    s->dup_pm = opt->leader_faults ? 0 : s->p.dup_pm;
    if (opt->leader_faults)
        s->p.spike_pm = 0;
    lin_history_init(&s->hist);
    sim__links_all(s, true);
    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_node *sn = &s->nodes[i];
        sn->s = s;
        sn->idx = (int)i;
        sn->id = i + 1;
        sn->drift_ppm = (int64_t)simlib_range(&s->rng, 0, 2 * (uint64_t)s->p.drift_ppm_max) -
                        s->p.drift_ppm_max;
        sn->offset_us = (int64_t)simlib_range(&s->rng, 0, 1000000000);
    }
    for (uint32_t i = 0; i < s->p.n; i++)
        sim__node_start(s, &s->nodes[i], true);
    for (uint32_t i = 0; i < s->p.clients; i++) {
        struct sim_client *c = &s->clients[i];
        c->idx = (int)i;
        c->client_id = 1000 + i;
        c->target = (int)simlib_range(&s->rng, 0, s->p.n - 1);
        sim__push(s, simlib_range(&s->rng, 0, 100000), EV_CLIENT_NEXT, 0, 0, i, NULL);
    }
    uint64_t heal_at = s->p.safety_ms * 1000;
    sim__push(s, simlib_range(&s->rng, 200000, 1000000), EV_NEMESIS, 0, 0, 0, NULL);
    sim__push(s, heal_at, EV_HEAL, 0, 0, 0, NULL);
    sim__push(s, simlib_range(&s->rng, 0, 3000000), EV_WORKLOAD, 0, 0, 0, NULL);
    sim__push(s, heal_at + 3000000, EV_STOP_CLIENTS, 0, 0, 0, NULL);
    uint64_t end_at = heal_at + SIM_LIVENESS_MS * 1000ull;

    struct sim_ev ev;
    while (!s->failed && !s->ended && sim__pop(s, &ev)) {
        s->now = ev.t;
        res->steps++;
        sim__handle(s, &ev);
        if (res->steps >= SIM_STEPS_MAX) {
            sim__fail(s, "step limit reached");
            break;
        }
        /* the end: clients done and the cluster quiet for a while */
        if (s->clients_stopped && sim__clients_idle(s) && s->heal_committed && !s->ended &&
            s->now >= heal_at + 5000000) {
            sim__push(s, s->now + 2000000, EV_END, 0, 0, 0, NULL);
            end_at = s->now + 2000000;
            s->clients_stopped = true;
            heal_at = UINT64_MAX / 4; /* push the END only once */
        }
        if (s->now > end_at + 1 && !s->ended) {
            if (!s->heal_committed)
                sim__fail(s, "liveness: no leader committed within %d ms of healing", SIM_LIVENESS_MS);
            else if (!sim__clients_idle(s))
                sim__fail(s, "liveness: clients still waiting %d ms after healing", SIM_LIVENESS_MS);
            break;
        }
    }
    res->sim_ms = s->now / 1000;
    if (!s->failed)
        sim__check_durable(s);
    if (!s->failed)
        sim__check_converged(s);

    struct lin_report rep;
    res->ops = s->hist.ops_count;
    if (!s->failed) {
        res->lin_result = lin_check(&s->hist, SIM_LIN_STEPS, &rep);
        if (res->lin_result == LIN_RESULT_VIOLATION)
            sim__fail(s, "history not linearizable: %s", rep.msg);
    }
    if (opt->history != NULL)
        lin_dump_json(&s->hist, opt->history);

    for (uint32_t i = 0; i < s->p.n; i++) {
        struct sim_node *sn = &s->nodes[i];
        if (sn->node != NULL)
            res->snapshots_installed += node_stats(sn->node)->snapshots_installed;
        node_free(sn->node);
        sim__disk_free(&sn->disk);
        for (size_t k = 0; k < sn->n_def; k++)
            sim__free_event(&sn->deferred[k]);
        free(sn->deferred);
        free(sn->m_term);
    }
    while (sim__pop(s, &ev))
        sim__free_event(&ev);
    simlib_evq_free(&s->events);
    free(s->term_leader);
    free(s->committed.term);
    free(s->committed.hash);
    free(s->committed.digest);
    free(s->committed.in_term);
    free(s->committed.voters);
    free(s->applied.voters);
    free(s->applied.in_term);
    free(s->applied.term);
    free(s->applied.hash);
    free(s->applied.digest);
    free(s->lm);
    lin_history_free(&s->hist);
    res->ok = !s->failed;
    free(s);
    return res->ok ? 0 : -1;
}
