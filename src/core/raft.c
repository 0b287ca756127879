/* raft.c - leader mode's consensus core (see raft.h for the contract).
 *
 * Section numbers cite Ongaro's dissertation "Consensus: Bridging Theory and
 * Practice" (2014); "Raft §5.x" cites the paper's section 5 as restated in
 * the dissertation's chapter 3.
 */
#include "raft.h"

#include <stdlib.h>
#include <string.h>

#include "../common/defs.h"

#define RAFT_INFLIGHT_RING 256 /* >= inflight_msgs_max */
#define RAFT_ROUNDS_RING 64    /* heartbeat rounds remembered for the lease */

/* ---- small helpers ---- */

static void *raft__alloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    TRIAD_ASSERT(p != NULL); /* the core has no way to report ENOMEM mid-step */
    return p;
}

static void *raft__realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    TRIAD_ASSERT(q != NULL);
    return q;
}

/* A growable array of messages. */
struct raft__msgs {
    struct raft_msg *v;
    size_t n, cap;
};

static struct raft_msg *raft__msgs_push(struct raft__msgs *q)
{
    if (q->n == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 16;
        q->v = raft__realloc(q->v, q->cap * sizeof(*q->v));
    }
    struct raft_msg *m = &q->v[q->n++];
    memset(m, 0, sizeof(*m));
    return m;
}

/* Pointers freed while a ready may still refer to them: released at the
 * advance of the next ready handed out (see raft.h on lifetimes). */
struct raft__garbage {
    void **v;
    size_t n, cap;
};

static void raft__garbage_add(struct raft__garbage *g, void *p)
{
    if (p == NULL)
        return;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 32;
        g->v = raft__realloc(g->v, g->cap * sizeof(*g->v));
    }
    g->v[g->n++] = p;
}

static void raft__garbage_free(struct raft__garbage *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->v[i]);
    free(g->v);
    memset(g, 0, sizeof(*g));
}

struct raft__peer {
    struct raft_progress p;
    bool probe_sent;        /* PROBE: one append out, wait for its answer */
    raft_index commit_sent; /* the commit index last sent to it */
    uint64_t match_seq;     /* the heartbeat round when match last grew */
    raft_index match_at_hb; /* match at the previous heartbeat (stall check) */
    raft_index ring_last[RAFT_INFLIGHT_RING];
    uint64_t ring_bytes[RAFT_INFLIGHT_RING];
    uint32_t ring_head;
};

struct raft__pending_read {
    uint64_t ctx;
    raft_index index;
    uint64_t seq; /* heartbeat round that must be acknowledged by a majority */
    bool waiting_commit; /* no entry of this term committed yet */
};

struct raft {
    struct raft_config cfg;
    raft_id id;
    enum raft_role role;
    raft_term term;
    raft_id vote;
    raft_id leader;
    raft_index commit;
    raft_index applied; /* handed out for applying */
    uint64_t rng;

    /* the log: entries snap_index+1 .. snap_index+n */
    struct raft_entry *ents;
    size_t n, cap;
    raft_index snap_index;
    raft_term snap_term;
    struct raft_snapshot snap; /* data NULL until the first snapshot */
    bool snap_persist;         /* snap must go to disk in the next ready */
    bool snap_install;         /* ... and replace the state machine */

    /* persistence */
    raft_index unstable_from; /* lowest index not yet handed out to persist */
    raft_index stable;        /* durable and unchanged since */
    struct raft_hard_state hs_persisted;
    bool persist_inflight;

    /* membership: the latest configuration in the log takes effect at once
     * (dissertation §4.1) */
    struct raft_conf conf;
    raft_index conf_index;

    /* time */
    uint64_t now;
    uint64_t election_deadline;
    uint64_t heartbeat_deadline;
    uint64_t checkq_deadline;
    uint64_t last_leader_contact;

    /* elections */
    raft_id granted[RAFT_NODES_MAX];
    uint32_t n_granted;
    raft_id refused[RAFT_NODES_MAX];
    uint32_t n_refused;
    bool transfer_campaign;

    /* leader */
    struct raft__peer *peers[RAFT_NODES_MAX];
    uint32_t n_peers;
    bool committed_in_term;
    bool need_bcast;
    bool need_commit_bcast;
    bool transferred_in_term; /* a TimeoutNow may be in flight: no lease this term */
    raft_id transfer_target;
    uint64_t transfer_deadline;
    uint64_t hb_seq;
    uint64_t round_sent_ms[RAFT_ROUNDS_RING];
    uint64_t lease_until;
    struct raft__pending_read *pending;
    size_t n_pending, cap_pending;
    bool read_round_needed;

    /* outputs */
    struct raft__msgs out;     /* after persist */
    struct raft__msgs out_now; /* at once */
    struct raft_read *reads;
    size_t n_reads, cap_reads;
    struct raft__garbage garbage;

    /* a snapshot being received */
    uint8_t *recv;
    uint64_t recv_size, recv_off, recv_cap;
    raft_index recv_index;
    raft_term recv_term;
};

static uint64_t raft__rand(struct raft *r)
{
    return triad_splitmix64(&r->rng); /* the core's only randomness, seeded by the caller */
}

static void raft__reset_election(struct raft *r)
{
    uint64_t lo = r->cfg.election_timeout_ms_min, hi = r->cfg.election_timeout_ms_max;
    uint64_t span = hi > lo ? hi - lo : 1;
    r->election_deadline = r->now + lo + raft__rand(r) % span;
}

/* ---- configurations ---- */

size_t raft_conf_encode(const struct raft_conf *c, uint8_t *buf)
{
    TRIAD_ASSERT(c->n <= RAFT_NODES_MAX);
    size_t o = 0;
    buf[o++] = (uint8_t)c->n;
    buf[o++] = 0;
    buf[o++] = 0;
    buf[o++] = 1; /* format version */
    for (uint32_t i = 0; i < c->n; i++) {
        uint32_t id = c->members[i].id;
        buf[o++] = (uint8_t)id;
        buf[o++] = (uint8_t)(id >> 8);
        buf[o++] = (uint8_t)(id >> 16);
        buf[o++] = (uint8_t)(id >> 24);
        buf[o++] = c->members[i].role;
    }
    return o;
}

int raft_conf_decode(struct raft_conf *c, const uint8_t *buf, size_t len)
{
    /* [u8 n][u8 0][u8 0][u8 version 1] then n * ([u32 id][u8 role]) */
    if (len < 4 || buf[1] != 0 || buf[2] != 0 || buf[3] != 1 || buf[0] > RAFT_NODES_MAX ||
        len != 4 + (size_t)buf[0] * 5)
        return TRIAD_ECORRUPT;
    struct raft_conf t;
    memset(&t, 0, sizeof(t));
    t.n = buf[0];
    for (uint32_t i = 0; i < t.n; i++) {
        const uint8_t *p = buf + 4 + i * 5;
        t.members[i].id = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                          (uint32_t)p[3] << 24;
        t.members[i].role = p[4];
        if (t.members[i].id == 0 ||
            (t.members[i].role != RAFT_VOTER && t.members[i].role != RAFT_LEARNER))
            return TRIAD_ECORRUPT;
        for (uint32_t j = 0; j < i; j++)
            if (t.members[j].id == t.members[i].id)
                return TRIAD_ECORRUPT;
    }
    *c = t;
    return 0;
}

const struct raft_member *raft_conf_find(const struct raft_conf *c, raft_id id)
{
    for (uint32_t i = 0; i < c->n; i++)
        if (c->members[i].id == id)
            return &c->members[i];
    return NULL;
}

bool raft_conf_equal(const struct raft_conf *a, const struct raft_conf *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->members[i].id != b->members[i].id || a->members[i].role != b->members[i].role)
            return false;
    return true;
}

uint32_t raft_conf_voters(const struct raft_conf *c)
{
    uint32_t v = 0;
    for (uint32_t i = 0; i < c->n; i++)
        v += c->members[i].role == RAFT_VOTER;
    return v;
}

static bool raft__is_voter(const struct raft *r, raft_id id)
{
    const struct raft_member *m = raft_conf_find(&r->conf, id);
    return m != NULL && m->role == RAFT_VOTER;
}

static uint32_t raft__quorum(const struct raft *r)
{
    uint32_t q = raft_conf_voters(&r->conf) / 2 + 1;
    if ((r->cfg.bugs & RAFT_BUG_COMMIT_MINORITY) && q > 1)
        q--;
    return q;
}

/* ---- the log ---- */

static raft_index raft__last(const struct raft *r)
{
    return r->snap_index + r->n;
}

raft_term raft_term_at(const struct raft *r, raft_index index)
{
    if (index == r->snap_index)
        return r->snap_term;
    if (index < r->snap_index || index > raft__last(r))
        return 0;
    return r->ents[index - r->snap_index - 1].term;
}

const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index)
{
    if (index <= r->snap_index || index > raft__last(r))
        return NULL;
    return &r->ents[index - r->snap_index - 1];
}

static void raft__append_entry(struct raft *r, raft_term term, uint8_t type, const void *data,
                               uint32_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->ents = raft__realloc(r->ents, r->cap * sizeof(*r->ents));
    }
    struct raft_entry *e = &r->ents[r->n++];
    e->term = term;
    e->index = raft__last(r);
    e->type = type;
    e->len = len;
    e->data = NULL;
    if (len > 0) {
        e->data = raft__alloc(len);
        memcpy(e->data, data, len);
    }
}

static void raft__conf_recompute(struct raft *r);

/* Drop every entry at or after `from`. The caller has checked that none of
 * them is committed (Raft §5.3: only a conflicting, uncommitted suffix is
 * ever removed). */
static void raft__truncate(struct raft *r, raft_index from)
{
    TRIAD_ASSERT(from > r->commit);
    TRIAD_ASSERT(from > r->snap_index);
    while (raft__last(r) >= from) {
        raft__garbage_add(&r->garbage, r->ents[r->n - 1].data);
        r->n--;
    }
    if (r->unstable_from > from)
        r->unstable_from = from;
    if (r->stable >= from)
        r->stable = from - 1;
    if (r->conf_index >= from)
        raft__conf_recompute(r);
}

/* The latest configuration entry in the log, else the snapshot's. */
static void raft__conf_recompute(struct raft *r)
{
    for (size_t i = r->n; i-- > 0;) {
        struct raft_entry *e = &r->ents[i];
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(&c, e->data, e->len) == 0) {
            r->conf = c;
            r->conf_index = e->index;
            return;
        }
    }
    r->conf = r->snap.conf;
    r->conf_index = r->snap_index;
}

/* ---- roles ---- */

static struct raft__peer *raft__peer(struct raft *r, raft_id id)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        if (r->peers[i]->p.id == id)
            return r->peers[i];
    return NULL;
}

static void raft__peers_clear(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        free(r->peers[i]);
    r->n_peers = 0;
}

static void raft__peer_reset(struct raft *r, struct raft__peer *p)
{
    p->p.next = raft__last(r) + 1;
    p->p.state = RAFT_PROBE;
    p->p.inflight_count = 0;
    p->p.inflight_bytes = 0;
    p->probe_sent = false;
    p->ring_head = 0;
}

/* Make the leader's progress table match the configuration. */
static void raft__peers_sync(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_peers;) {
        if (raft_conf_find(&r->conf, r->peers[i]->p.id) == NULL) {
            free(r->peers[i]);
            r->peers[i] = r->peers[--r->n_peers];
        } else {
            i++;
        }
    }
    for (uint32_t i = 0; i < r->conf.n; i++) {
        raft_id id = r->conf.members[i].id;
        if (id == r->id || raft__peer(r, id) != NULL)
            continue;
        struct raft__peer *p = raft__alloc(sizeof(*p));
        memset(p, 0, sizeof(*p));
        p->p.id = id;
        raft__peer_reset(r, p);
        r->peers[r->n_peers++] = p;
    }
}

static void raft__fail_reads(struct raft *r)
{
    for (size_t i = 0; i < r->n_pending; i++) {
        if (r->n_reads == r->cap_reads) {
            r->cap_reads = r->cap_reads ? r->cap_reads * 2 : 16;
            r->reads = raft__realloc(r->reads, r->cap_reads * sizeof(*r->reads));
        }
        r->reads[r->n_reads++] = (struct raft_read){.ctx = r->pending[i].ctx, .index = 0};
    }
    r->n_pending = 0;
    r->read_round_needed = false;
}

static void raft__become_follower(struct raft *r, raft_term term, raft_id leader)
{
    TRIAD_ASSERT(term >= r->term);
    if (term > r->term) {
        r->term = term;
        r->vote = 0;
    }
    if (r->role == RAFT_LEADER) {
        raft__peers_clear(r);
        raft__fail_reads(r);
    }
    r->role = RAFT_FOLLOWER;
    r->leader = leader;
    r->transfer_target = 0;
    r->lease_until = 0;
    r->n_granted = r->n_refused = 0;
    raft__reset_election(r);
}

static void raft__send_vote_requests(struct raft *r, uint8_t type, raft_term term)
{
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const struct raft_member *mb = &r->conf.members[i];
        if (mb->id == r->id || mb->role != RAFT_VOTER)
            continue;
        struct raft_msg *m = raft__msgs_push(&r->out);
        m->type = type;
        m->from = r->id;
        m->to = mb->id;
        m->term = term;
        m->last_log_index = raft__last(r);
        m->last_log_term = raft_term_at(r, raft__last(r));
        m->transfer = r->transfer_campaign;
    }
}

static void raft__become_leader(struct raft *r);

/* A candidate with a quorum of votes leads once its own term and vote are
 * on disk (Raft §5.2: persistent state before responding, or acting). */
static void raft__maybe_win(struct raft *r)
{
    if (r->role == RAFT_CANDIDATE && r->hs_persisted.term == r->term &&
        r->hs_persisted.vote == r->id)
        raft__become_leader(r);
}

static bool raft__tally(struct raft *r, raft_id from, bool granted)
{
    raft_id *v = granted ? r->granted : r->refused;
    uint32_t *n = granted ? &r->n_granted : &r->n_refused;
    for (uint32_t i = 0; i < *n; i++)
        if (v[i] == from)
            return false;
    if (*n < RAFT_NODES_MAX)
        v[(*n)++] = from;
    return true;
}

/* Start a real election: a new term, our own vote, then ask the others.
 * The term and the vote reach the disk before any vote request leaves (they
 * go out in rd.msgs): a node that crashed and restarted must not vote twice
 * in one term (Raft §5.2, Figure 2 "persistent state"). */
/* Either kind of election starts alike: no leader, our own vote counted,
 * a fresh timeout. */
static void raft__begin_election(struct raft *r, enum raft_role role, bool transfer)
{
    r->role = role;
    r->leader = 0;
    r->transfer_campaign = transfer;
    r->n_granted = r->n_refused = 0;
    raft__tally(r, r->id, true);
    raft__reset_election(r);
}

static void raft__campaign(struct raft *r, bool transfer)
{
    r->term++;
    r->vote = r->id;
    raft__begin_election(r, RAFT_CANDIDATE, transfer);
    /* A sole voter has won already, but it leads only once its term and
     * vote are durable (raft_advance): its appends go out before its own
     * persist, and a crash that lost the term would let it lead the same
     * term twice with different entries. With other voters the votes
     * arrive only after the persist, since the requests wait for it. */
    if (r->n_granted >= raft__quorum(r)) {
        raft__maybe_win(r);
        return;
    }
    raft__send_vote_requests(r, RAFT_MSG_VOTE, r->term);
}

/* Pre-vote (dissertation §9.6): ask whether we could win before disturbing
 * anyone with a higher term. Nothing of ours changes. */
static void raft__pre_campaign(struct raft *r)
{
    raft__begin_election(r, RAFT_PRECANDIDATE, false);
    if (r->n_granted >= raft__quorum(r)) {
        raft__campaign(r, false);
        return;
    }
    raft__send_vote_requests(r, RAFT_MSG_PREVOTE, r->term + 1);
}

static void raft__start_election(struct raft *r, bool transfer)
{
    if (r->cfg.pre_vote && !transfer)
        raft__pre_campaign(r);
    else
        raft__campaign(r, transfer);
}

static void raft__become_leader(struct raft *r)
{
    TRIAD_ASSERT(r->role == RAFT_CANDIDATE);
    r->role = RAFT_LEADER;
    r->leader = r->id;
    r->committed_in_term = false;
    r->transfer_target = 0;
    r->transferred_in_term = false;
    r->lease_until = 0;
    r->n_pending = 0;
    raft__peers_clear(r);
    raft__peers_sync(r);
    for (uint32_t i = 0; i < r->n_peers; i++)
        r->peers[i]->p.active = true; /* a grace period before the first check */
    r->heartbeat_deadline = r->now;
    r->checkq_deadline = r->now + r->cfg.election_timeout_ms_min;
    /* Raft §8: a new leader commits a blank entry of its term at once, so
     * that it learns what is committed (reads wait for it). */
    raft__append_entry(r, r->term, RAFT_ENTRY_NOOP, NULL, 0);
    r->need_bcast = true;
}

/* ---- leader: replication ---- */

static void raft__send_snapshot_chunk(struct raft *r, struct raft__peer *p)
{
    TRIAD_ASSERT(r->snap.data != NULL || r->snap.len == 0);
    struct raft_msg *m = raft__msgs_push(&r->out_now);
    uint64_t off = p->p.snap_offset;
    if (off > r->snap.len)
        off = 0;
    uint64_t left = r->snap.len - off;
    uint32_t len = left > r->cfg.snapshot_chunk_bytes ? r->cfg.snapshot_chunk_bytes : (uint32_t)left;
    m->type = RAFT_MSG_SNAPSHOT;
    m->from = r->id;
    m->to = p->p.id;
    m->term = r->term;
    m->snap_index = r->snap.index;
    m->snap_term = r->snap.term;
    m->snap_conf = r->snap.conf;
    m->snap_size = r->snap.len;
    m->offset = off;
    m->len = len;
    m->data = r->snap.data ? r->snap.data + off : NULL;
    m->done = off + len == r->snap.len;
    m->commit = r->commit;
    m->seq = r->hb_seq;
}

/* Entry headers for a message or a ready: a copy, because the log array
 * moves when it grows; the data stays the log's (see garbage). */
static struct raft_entry *raft__copy_entries(struct raft *r, raft_index from, raft_index to,
                                             size_t *n)
{
    *n = to >= from ? (size_t)(to - from + 1) : 0;
    if (*n == 0)
        return NULL;
    struct raft_entry *v = raft__alloc(*n * sizeof(*v));
    memcpy(v, raft_entry_at(r, from), *n * sizeof(*v));
    return v;
}

/* One append to p from p->next: entries up to append_bytes_max (at least
 * one), or none for a heartbeat. Returns false when nothing was sent. */
static bool raft__send_append(struct raft *r, struct raft__peer *p, bool heartbeat)
{
    if (p->p.state == RAFT_SNAPSHOTTING) {
        if (heartbeat)
            raft__send_snapshot_chunk(r, p); /* a lost chunk must not stall it */
        return heartbeat;
    }
    if (p->p.next <= r->snap_index) {
        /* the entries it needs are compacted away: InstallSnapshot (§5.1) */
        p->p.state = RAFT_SNAPSHOTTING;
        p->p.snap_offset = 0;
        raft__send_snapshot_chunk(r, p);
        return true;
    }
    raft_index last = raft__last(r);
    raft_index prev = p->p.next - 1;
    raft_index to = prev;
    uint64_t bytes = 0;
    if (!heartbeat) {
        if (p->p.state == RAFT_PROBE && p->probe_sent)
            return false;
        if (p->p.state == RAFT_REPLICATE &&
            (p->p.inflight_count >= r->cfg.inflight_msgs_max ||
             p->p.inflight_bytes >= r->cfg.inflight_bytes_max))
            return false; /* flow control: wait for acknowledgements */
        if (p->p.next > last && p->p.state == RAFT_REPLICATE)
            return false;
        while (to < last) {
            const struct raft_entry *e = raft_entry_at(r, to + 1);
            if (to > prev && bytes + e->len > r->cfg.append_bytes_max)
                break;
            bytes += e->len;
            to++;
        }
    } else if (p->p.state == RAFT_REPLICATE) {
        /* a heartbeat checks at the match point, which it surely has */
        prev = p->p.match;
        to = prev;
        if (prev < r->snap_index) {
            p->p.state = RAFT_PROBE;
            return raft__send_append(r, p, false);
        }
    }
    struct raft_msg *m = raft__msgs_push(&r->out_now);
    m->type = RAFT_MSG_APPEND;
    m->from = r->id;
    m->to = p->p.id;
    m->term = r->term;
    m->prev_index = prev;
    m->prev_term = raft_term_at(r, prev);
    m->commit = r->commit;
    m->seq = r->hb_seq;
    p->commit_sent = r->commit;
    size_t n = 0;
    m->entries = raft__copy_entries(r, prev + 1, to, &n);
    m->n_entries = (uint32_t)n;
    if (m->entries != NULL)
        raft__garbage_add(&r->garbage, (void *)m->entries);
    if (n > 0 || !heartbeat) {
        if (p->p.state == RAFT_PROBE) {
            p->probe_sent = true;
        } else if (n > 0) {
            /* pipelining: assume it arrives, correct on a rejection */
            p->p.next = to + 1;
            uint32_t slot = (p->ring_head + p->p.inflight_count) % RAFT_INFLIGHT_RING;
            p->ring_last[slot] = to;
            p->ring_bytes[slot] = bytes;
            p->p.inflight_count++;
            p->p.inflight_bytes += bytes;
        }
    }
    return true;
}

static void raft__send_more(struct raft *r, struct raft__peer *p)
{
    /* bounded: each round either sends or stops, and sends move next on */
    for (int i = 0; i < RAFT_INFLIGHT_RING && raft__send_append(r, p, false); i++) {
        if (p->p.state != RAFT_REPLICATE)
            break;
    }
}

static void raft__bcast_append(struct raft *r)
{
    for (uint32_t i = 0; i < r->n_peers; i++)
        raft__send_more(r, r->peers[i]);
}

static void raft__inflight_free_to(struct raft__peer *p, raft_index index)
{
    while (p->p.inflight_count > 0 && p->ring_last[p->ring_head] <= index) {
        p->p.inflight_bytes -= p->ring_bytes[p->ring_head];
        p->ring_head = (p->ring_head + 1) % RAFT_INFLIGHT_RING;
        p->p.inflight_count--;
    }
}

static raft_index raft__self_durable(const struct raft *r)
{
    if (r->cfg.bugs & RAFT_BUG_ACK_BEFORE_PERSIST)
        return raft__last(r);
    return r->stable;
}

/* The index that `k` of the voters (the leader included, counting its own
 * durable log) have: the k-th largest match. */
static raft_index raft__kth_match(const struct raft *r, uint32_t k)
{
    raft_index v[RAFT_NODES_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const struct raft_member *mb = &r->conf.members[i];
        if (mb->role != RAFT_VOTER)
            continue;
        if (mb->id == r->id) {
            v[n++] = raft__self_durable(r);
        } else {
            struct raft__peer *p = raft__peer((struct raft *)r, mb->id);
            v[n++] = p ? p->p.match : 0;
        }
    }
    if (k == 0 || k > n)
        return 0;
    for (uint32_t i = 1; i < n; i++) /* insertion sort, descending */
        for (uint32_t j = i; j > 0 && v[j] > v[j - 1]; j--) {
            raft_index t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[k - 1];
}

static void raft__release_reads(struct raft *r);

/* Raft §5.4.2: a leader commits only an entry of its own term counted on a
 * majority; earlier entries are committed with it, never by counting. */
static void raft__maybe_commit(struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return;
    raft_index idx = raft__kth_match(r, raft__quorum(r));
    if (idx > r->commit && raft_term_at(r, idx) == r->term) {
        r->commit = idx;
        if (!r->committed_in_term) {
            r->committed_in_term = true;
            for (size_t i = 0; i < r->n_pending; i++)
                if (r->pending[i].waiting_commit) {
                    r->pending[i].waiting_commit = false;
                    r->pending[i].index = r->commit;
                    r->pending[i].seq = r->hb_seq + 1;
                    r->read_round_needed = true;
                }
        }
        /* A leader removed from the configuration leads until that change
         * commits, then steps down (dissertation §4.2.2). */
        if (r->conf_index <= r->commit && !raft__is_voter(r, r->id)) {
            raft__become_follower(r, r->term, 0);
            return;
        }
        r->need_commit_bcast = true; /* carry the new high-water mark at once */
    }
}

static void raft__maybe_send_timeout_now(struct raft *r, struct raft__peer *p)
{
    if (r->transfer_target != p->p.id || p->p.match != raft__last(r))
        return;
    struct raft_msg *m = raft__msgs_push(&r->out_now);
    m->type = RAFT_MSG_TIMEOUT_NOW;
    m->from = r->id;
    m->to = p->p.id;
    m->term = r->term;
}

/* ---- leader: heartbeats, lease, ReadIndex ---- */

static void raft__start_round(struct raft *r)
{
    r->hb_seq++;
    r->round_sent_ms[r->hb_seq % RAFT_ROUNDS_RING] = r->now;
}

/* A heartbeat round: on the timer (stalled pipelines are probed again) or
 * for ReadIndex (timer false: no stall check, rounds may be close). */
static void raft__heartbeat(struct raft *r, bool timer)
{
    raft__start_round(r);
    for (uint32_t i = 0; i < r->n_peers; i++) {
        struct raft__peer *p = r->peers[i];
        if (timer && p->p.state == RAFT_REPLICATE && p->p.inflight_count > 0 &&
            p->p.match == p->match_at_hb) {
            /* no progress for a whole interval with appends out: assume
             * they were lost and probe again from the match point */
            p->p.next = p->p.match + 1;
            p->p.state = RAFT_PROBE;
            p->p.inflight_count = 0;
            p->p.inflight_bytes = 0;
            p->ring_head = 0;
        }
        if (timer)
            p->match_at_hb = p->p.match;
        if (p->p.state == RAFT_PROBE) {
            p->probe_sent = false;
            raft__send_append(r, p, false);
        } else {
            raft__send_append(r, p, true);
        }
    }
}

static bool raft__lease_allowed(const struct raft *r)
{
    if (!r->cfg.lease_reads)
        return false;
    /* Without check-quorum, followers grant votes while we still believe
     * we lead, so a lease would be a lie. */
    return r->cfg.check_quorum || (r->cfg.bugs & RAFT_BUG_LEASE_NO_CHECKQ);
}

bool raft_lease_valid(const struct raft *r)
{
    return r->role == RAFT_LEADER && raft__lease_allowed(r) && r->committed_in_term &&
           !r->transferred_in_term && r->now < r->lease_until;
}

/* The newest heartbeat round acknowledged by a majority of voters (the
 * leader acknowledges each of its own rounds). */
static uint64_t raft__quorum_seq(const struct raft *r)
{
    uint64_t v[RAFT_NODES_MAX];
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->conf.n; i++) {
        const struct raft_member *mb = &r->conf.members[i];
        if (mb->role != RAFT_VOTER)
            continue;
        if (mb->id == r->id) {
            v[n++] = r->hb_seq;
        } else {
            struct raft__peer *p = raft__peer((struct raft *)r, mb->id);
            v[n++] = p ? p->p.acked_seq : 0;
        }
    }
    uint32_t k = raft_conf_voters(&r->conf) / 2 + 1; /* never the planted minority */
    if (n < k)
        return 0;
    for (uint32_t i = 1; i < n; i++)
        for (uint32_t j = i; j > 0 && v[j] > v[j - 1]; j--) {
            uint64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return v[k - 1];
}

static void raft__push_read(struct raft *r, uint64_t ctx, raft_index index)
{
    if (r->n_reads == r->cap_reads) {
        r->cap_reads = r->cap_reads ? r->cap_reads * 2 : 16;
        r->reads = raft__realloc(r->reads, r->cap_reads * sizeof(*r->reads));
    }
    r->reads[r->n_reads++] = (struct raft_read){.ctx = ctx, .index = index};
}

static void raft__release_reads(struct raft *r)
{
    uint64_t qs = raft__quorum_seq(r);
    /* The lease: followers refuse to vote for election_timeout_min after
     * hearing from us (measured on their clocks from receipt, which is
     * after our send), so no other leader can exist until the send time of
     * a majority-acknowledged round plus that, shortened by the drift
     * bound in both directions. */
    if (qs > 0 && r->hb_seq - qs < RAFT_ROUNDS_RING) {
        uint64_t min = r->cfg.election_timeout_ms_min;
        uint64_t lease = min - min * 2 * r->cfg.clock_drift_permille / 1000;
        uint64_t until = r->round_sent_ms[qs % RAFT_ROUNDS_RING] + lease;
        if (until > r->lease_until)
            r->lease_until = until;
    }
    size_t w = 0;
    for (size_t i = 0; i < r->n_pending; i++) {
        struct raft__pending_read *pr = &r->pending[i];
        if (!pr->waiting_commit && pr->seq <= qs)
            raft__push_read(r, pr->ctx, pr->index);
        else
            r->pending[w++] = *pr;
    }
    r->n_pending = w;
}

/* ---- message handlers ---- */

static bool raft__log_up_to_date(const struct raft *r, const struct raft_msg *m)
{
    /* Raft §5.4.1: the later last term wins; equal terms, the longer log */
    raft_term lt = raft_term_at(r, raft__last(r));
    if (m->last_log_term != lt)
        return m->last_log_term > lt;
    return m->last_log_index >= raft__last(r);
}

static void raft__reply(struct raft *r, const struct raft_msg *req, uint8_t type, raft_term term,
                        bool reject, bool after_persist)
{
    struct raft_msg *m = raft__msgs_push(after_persist ? &r->out : &r->out_now);
    m->type = type;
    m->from = r->id;
    m->to = req->from;
    m->term = term;
    m->reject = reject;
}

static bool raft__in_lease(const struct raft *r)
{
    /* Check-quorum's other half (dissertation §4.2.3): while we heard from
     * a leader less than a minimum election timeout ago, we believe in it
     * and will not help depose it. Also true for a minimum timeout after
     * start-up, since a restarted node has forgotten when it last heard. */
    return r->cfg.check_quorum && r->now < r->last_leader_contact + r->cfg.election_timeout_ms_min;
}

static void raft__handle_prevote(struct raft *r, const struct raft_msg *m)
{
    bool grant = m->term > r->term && raft__log_up_to_date(r, m) &&
                 (r->role != RAFT_LEADER);
    raft__reply(r, m, RAFT_MSG_PREVOTE_RESP, grant ? m->term : r->term, !grant, false);
}

static void raft__handle_vote(struct raft *r, const struct raft_msg *m)
{
    TRIAD_ASSERT(m->term == r->term);
    bool can_vote = r->vote == m->from || (r->vote == 0 && r->leader == 0);
    if ((r->cfg.bugs & RAFT_BUG_VOTE_TWICE) && r->role != RAFT_LEADER && r->vote != r->id)
        can_vote = true;
    bool grant = can_vote && raft__log_up_to_date(r, m);
    if (grant) {
        r->vote = m->from;
        raft__reset_election(r);
    }
    /* after persist: the vote must be on disk before the candidate hears of
     * it, or a restart could vote again in this term (Raft §5.2) */
    raft__reply(r, m, RAFT_MSG_VOTE_RESP, r->term, !grant, true);
}

static void raft__handle_vote_resp(struct raft *r, const struct raft_msg *m, bool pre)
{
    /* a pre-vote grant carries the term we would campaign in, a refusal
     * the responder's own (ours, or it would have made us follow it) */
    if (pre ? r->role != RAFT_PRECANDIDATE || m->term != r->term + (m->reject ? 0 : 1)
            : r->role != RAFT_CANDIDATE || m->term != r->term)
        return;
    if (!raft__is_voter(r, m->from))
        return;
    raft__tally(r, m->from, !m->reject);
    if (r->n_granted >= raft__quorum(r)) {
        if (pre)
            raft__campaign(r, false);
        else
            raft__maybe_win(r);
    } else if (r->n_refused >= raft_conf_voters(&r->conf) / 2 + 1) {
        raft__become_follower(r, r->term, 0);
    }
}

static void raft__append_resp(struct raft *r, const struct raft_msg *req, bool reject,
                              raft_index index, raft_index hint_index, raft_term hint_term)
{
    bool early = (r->cfg.bugs & RAFT_BUG_ACK_BEFORE_PERSIST) != 0;
    struct raft_msg *m = raft__msgs_push(early ? &r->out_now : &r->out);
    m->type = RAFT_MSG_APPEND_RESP;
    m->from = r->id;
    m->to = req->from;
    m->term = r->term;
    m->reject = reject;
    m->index = index;
    m->hint_index = hint_index;
    m->hint_term = hint_term;
    m->seq = req->seq;
}

static void raft__heard_from_leader(struct raft *r, raft_id leader)
{
    if (r->role != RAFT_FOLLOWER)
        raft__become_follower(r, r->term, leader);
    r->leader = leader;
    r->last_leader_contact = r->now;
    raft__reset_election(r);
}

static void raft__apply_conf_entries(struct raft *r, const struct raft_entry *e)
{
    struct raft_conf c;
    if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(&c, e->data, e->len) == 0) {
        r->conf = c;
        r->conf_index = e->index;
    }
}

static void raft__handle_append(struct raft *r, const struct raft_msg *m)
{
    raft__heard_from_leader(r, m->from);
    if (m->prev_index < r->commit || m->prev_index < r->snap_index) {
        /* everything up to our commit index matches the leader's log
         * already (Log Matching); a stale or duplicated append */
        raft_index at = TRIAD_MAX(r->commit, r->snap_index);
        raft__append_resp(r, m, false, at, 0, 0);
        return;
    }
    if (raft_term_at(r, m->prev_index) != m->prev_term || m->prev_index > raft__last(r)) {
        /* fast backtracking (§5.3): where the leader should retry */
        raft_index hint_index;
        raft_term hint_term = 0;
        if (m->prev_index > raft__last(r)) {
            hint_index = raft__last(r) + 1;
        } else {
            hint_term = raft_term_at(r, m->prev_index);
            hint_index = m->prev_index;
            raft_index floor = TRIAD_MAX(r->commit, r->snap_index) + 1;
            while (hint_index > floor && raft_term_at(r, hint_index - 1) == hint_term)
                hint_index--;
        }
        raft__append_resp(r, m, true, m->prev_index, hint_index, hint_term);
        return;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index <= raft__last(r)) {
            if (raft_term_at(r, e->index) == e->term)
                continue;
            /* a conflicting suffix that was never committed (§5.3). A
             * leader that asks us to overwrite a committed entry is broken:
             * refuse, and keep what we have. */
            if (e->index <= r->commit)
                return;
            raft__truncate(r, e->index);
        }
        TRIAD_ASSERT(e->index == raft__last(r) + 1);
        raft__append_entry(r, e->term, e->type, e->data, e->len);
        raft__apply_conf_entries(r, &r->ents[r->n - 1]);
    }
    raft_index last_new = m->prev_index + m->n_entries;
    raft_index c = TRIAD_MIN(m->commit, last_new);
    if (c > r->commit)
        r->commit = c;
    raft__append_resp(r, m, false, last_new, 0, 0);
}

static void raft__snapshot_resp(struct raft *r, const struct raft_msg *req, uint64_t offset,
                                bool done, raft_index index, bool after_persist)
{
    struct raft_msg *m = raft__msgs_push(after_persist ? &r->out : &r->out_now);
    m->type = RAFT_MSG_SNAPSHOT_RESP;
    m->from = r->id;
    m->to = req->from;
    m->term = r->term;
    m->offset = offset;
    m->done = done;
    m->index = index;
    m->snap_index = req->snap_index;
    m->seq = req->seq;
}

static void raft__handle_snapshot(struct raft *r, const struct raft_msg *m)
{
    raft__heard_from_leader(r, m->from);
    if (m->snap_index <= r->commit) {
        raft__snapshot_resp(r, m, m->snap_size, true, r->commit, true);
        return;
    }
    if (raft_term_at(r, m->snap_index) == m->snap_term && m->snap_index <= raft__last(r)) {
        /* Raft §7: the log already holds the snapshot's last entry; keep
         * what follows and just learn that it is committed. */
        r->commit = m->snap_index;
        raft__snapshot_resp(r, m, m->snap_size, true, m->snap_index, true);
        return;
    }
    if (m->offset == 0) {
        free(r->recv);
        r->recv = NULL;
        r->recv_cap = r->recv_off = 0;
        r->recv_size = m->snap_size;
        r->recv_index = m->snap_index;
        r->recv_term = m->snap_term;
    }
    if (m->snap_index != r->recv_index || m->snap_term != r->recv_term ||
        m->offset != r->recv_off || m->snap_size != r->recv_size) {
        uint64_t want = m->snap_index == r->recv_index && m->snap_term == r->recv_term ? r->recv_off : 0;
        raft__snapshot_resp(r, m, want, false, 0, false);
        return;
    }
    if (m->len > 0) {
        if (r->recv_off + m->len > r->recv_cap) {
            uint64_t cap = TRIAD_MAX(r->recv_cap * 2, r->recv_off + m->len);
            if (cap > r->recv_size)
                cap = r->recv_size;
            r->recv = raft__realloc(r->recv, cap);
            r->recv_cap = cap;
        }
        memcpy(r->recv + r->recv_off, m->data, m->len);
        r->recv_off += m->len;
    }
    if (!m->done || r->recv_off != r->recv_size) {
        raft__snapshot_resp(r, m, r->recv_off, false, 0, false);
        return;
    }
    /* Install: the whole log goes, the snapshot is the new base. */
    for (size_t i = 0; i < r->n; i++)
        raft__garbage_add(&r->garbage, r->ents[i].data);
    r->n = 0;
    raft__garbage_add(&r->garbage, r->snap.data);
    r->snap.data = r->recv;
    r->snap.len = r->recv_size;
    r->snap.index = m->snap_index;
    r->snap.term = m->snap_term;
    r->snap.conf = m->snap_conf;
    r->recv = NULL;
    r->recv_cap = r->recv_off = r->recv_size = 0;
    r->snap_index = m->snap_index;
    r->snap_term = m->snap_term;
    r->commit = m->snap_index;
    r->applied = m->snap_index;
    r->stable = TRIAD_MIN(r->stable, r->snap_index);
    r->unstable_from = r->snap_index + 1;
    r->snap_persist = true;
    r->snap_install = true;
    raft__conf_recompute(r);
    raft__snapshot_resp(r, m, r->snap.len, true, r->snap_index, true);
}

/* An answer from a member: it is alive (check-quorum) and acknowledges a
 * heartbeat round (ReadIndex, the lease). NULL if it is no member. */
static struct raft__peer *raft__peer_heard(struct raft *r, const struct raft_msg *m)
{
    struct raft__peer *p = raft__peer(r, m->from);
    if (p == NULL)
        return NULL;
    p->p.active = true;
    p->p.last_ack_ms = r->now;
    if (m->seq > p->p.acked_seq && m->seq <= r->hb_seq)
        p->p.acked_seq = m->seq;
    return p;
}

static void raft__handle_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft__peer *p = raft__peer_heard(r, m);
    if (p == NULL)
        return;
    if (m->reject) {
        if (m->index == p->p.match && m->hint_index <= p->p.match && p->p.match > 0 &&
            m->seq > p->match_seq) {
            /* It refuses the very entry it acknowledged: within one term a
             * follower never drops an entry it acknowledged, so its disk was
             * wiped. Start over from what it has (a snapshot if need be);
             * the commit index stays, it was counted when the copy was there. */
            p->p.match = m->hint_index > 0 ? m->hint_index - 1 : 0;
        } else if (m->index <= p->p.match || m->index >= p->p.next) {
            return; /* stale: answers an append we have moved past */
        }
        raft_index next = m->hint_index;
        if (m->hint_term != 0) {
            /* skip the follower's whole conflicting term; if we hold
             * entries of that term, retry just after our last of them */
            for (raft_index i = TRIAD_MIN(m->index, raft__last(r)); i > r->snap_index; i--) {
                raft_term t = raft_term_at(r, i);
                if (t == m->hint_term) {
                    next = i + 1;
                    break;
                }
                if (t < m->hint_term)
                    break;
            }
        }
        next = TRIAD_MIN(next, m->index);
        next = TRIAD_MAX(next, p->p.match + 1);
        p->p.next = next;
        p->p.state = RAFT_PROBE;
        p->p.inflight_count = 0;
        p->p.inflight_bytes = 0;
        p->ring_head = 0;
        p->probe_sent = false;
        raft__send_append(r, p, false);
    } else {
        if (m->index > raft__last(r))
            return; /* cannot be an answer to anything this leader sent */
        if (m->index > p->p.match) {
            p->p.match = m->index;
            p->match_seq = r->hb_seq;
            raft__maybe_commit(r);
            if (r->role != RAFT_LEADER)
                return;
        }
        if (p->p.next <= p->p.match)
            p->p.next = p->p.match + 1;
        raft__inflight_free_to(p, p->p.match);
        if (p->p.state == RAFT_PROBE) {
            p->p.state = RAFT_REPLICATE;
            p->p.next = p->p.match + 1;
            p->probe_sent = false;
        }
        raft__maybe_send_timeout_now(r, p);
        raft__send_more(r, p);
    }
    raft__release_reads(r);
}

static void raft__handle_snapshot_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft__peer *p = raft__peer_heard(r, m);
    if (p == NULL)
        return;
    if (m->done) {
        if (m->index > raft__last(r))
            return;
        if (m->index > p->p.match) {
            p->p.match = m->index;
            p->match_seq = r->hb_seq;
            raft__maybe_commit(r);
            if (r->role != RAFT_LEADER)
                return;
        }
        if (p->p.state == RAFT_SNAPSHOTTING) {
            p->p.state = RAFT_PROBE;
            p->p.next = p->p.match + 1;
            p->probe_sent = false;
            raft__send_append(r, p, false);
        }
    } else if (p->p.state == RAFT_SNAPSHOTTING && m->snap_index == r->snap.index) {
        p->p.snap_offset = m->offset;
        raft__send_snapshot_chunk(r, p);
    }
    raft__release_reads(r);
}

static int raft__validate(const struct raft *r, const struct raft_msg *m)
{
    if (m->type < RAFT_MSG_PREVOTE || m->type > RAFT_MSG_TYPE_MAX)
        return TRIAD_EPROTO;
    if (m->from == 0 || m->from == r->id || (m->to != 0 && m->to != r->id))
        return TRIAD_EPROTO;
    if (m->type == RAFT_MSG_APPEND) {
        if (m->n_entries > 0 && m->entries == NULL)
            return TRIAD_EPROTO;
        for (uint32_t i = 0; i < m->n_entries; i++) {
            const struct raft_entry *e = &m->entries[i];
            if (e->index != m->prev_index + 1 + i || e->term > m->term || e->term == 0 ||
                (e->len > 0 && e->data == NULL) || e->len > RAFT_ENTRY_BYTES_MAX ||
                e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONF)
                return TRIAD_EPROTO;
            if (i > 0 && e->term < m->entries[i - 1].term)
                return TRIAD_EPROTO;
        }
        if (m->n_entries > 0 && m->entries[0].term < m->prev_term)
            return TRIAD_EPROTO;
    }
    if (m->type == RAFT_MSG_SNAPSHOT) {
        if ((m->len > 0 && m->data == NULL) || m->snap_size > RAFT_SNAPSHOT_BYTES_MAX ||
            m->offset > m->snap_size || m->len > m->snap_size - m->offset ||
            m->snap_conf.n > RAFT_NODES_MAX || m->snap_index == 0 || m->snap_term == 0)
            return TRIAD_EPROTO;
    }
    return 0;
}

int raft_step(struct raft *r, const struct raft_msg *m)
{
    int rc = raft__validate(r, m);
    if (rc != 0)
        return rc;
    if (m->term > r->term) {
        if (m->type == RAFT_MSG_PREVOTE || m->type == RAFT_MSG_VOTE) {
            if (raft__in_lease(r) && !m->transfer)
                return 0; /* ignore: we have a live leader */
            if (m->type == RAFT_MSG_VOTE)
                raft__become_follower(r, m->term, 0);
        } else if (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject) {
            /* carries the term we would campaign in: no change */
        } else {
            bool from_leader = m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT ||
                               m->type == RAFT_MSG_TIMEOUT_NOW;
            raft__become_follower(r, m->term, from_leader ? m->from : 0);
        }
    } else if (m->term < r->term) {
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_SNAPSHOT) {
            /* tell a stale leader about the newer term so it steps down */
            raft__reply(r, m, RAFT_MSG_APPEND_RESP, r->term, true, false);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            raft__reply(r, m, RAFT_MSG_PREVOTE_RESP, r->term, true, false);
        }
        return 0;
    }

    switch (m->type) {
    case RAFT_MSG_PREVOTE:
        raft__handle_prevote(r, m);
        break;
    case RAFT_MSG_VOTE:
        raft__handle_vote(r, m);
        break;
    case RAFT_MSG_PREVOTE_RESP:
        raft__handle_vote_resp(r, m, true);
        break;
    case RAFT_MSG_VOTE_RESP:
        raft__handle_vote_resp(r, m, false);
        break;
    case RAFT_MSG_APPEND:
        if (r->role == RAFT_LEADER)
            return 0; /* two leaders in one term cannot be: ignore */
        raft__handle_append(r, m);
        break;
    case RAFT_MSG_SNAPSHOT:
        if (r->role == RAFT_LEADER)
            return 0;
        raft__handle_snapshot(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        if (r->role == RAFT_LEADER)
            raft__handle_append_resp(r, m);
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        if (r->role == RAFT_LEADER)
            raft__handle_snapshot_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role != RAFT_LEADER && raft__is_voter(r, r->id)) {
            r->leader = 0;
            raft__campaign(r, true);
        }
        break;
    }
    return 0;
}

/* ---- time ---- */

void raft_tick(struct raft *r, uint64_t now_ms)
{
    if (now_ms > r->now)
        r->now = now_ms; /* a clock stepping back does not move us back */
    if (r->role == RAFT_LEADER) {
        if (r->now >= r->heartbeat_deadline) {
            raft__heartbeat(r, true);
            r->heartbeat_deadline = r->now + r->cfg.heartbeat_ms;
        }
        if (r->transfer_target != 0 && r->now >= r->transfer_deadline)
            r->transfer_target = 0; /* the target did not take over: lead on */
        if (r->cfg.check_quorum && r->now >= r->checkq_deadline) {
            /* Check-quorum (§6.2): a leader that has not heard from a
             * majority within an election timeout steps down, so a leader
             * cut off from the rest stops serving. */
            uint32_t active = raft__is_voter(r, r->id) ? 1 : 0;
            for (uint32_t i = 0; i < r->n_peers; i++) {
                if (raft__is_voter(r, r->peers[i]->p.id) && r->peers[i]->p.active)
                    active++;
                r->peers[i]->p.active = false;
            }
            r->checkq_deadline = r->now + r->cfg.election_timeout_ms_min;
            if (active < raft_conf_voters(&r->conf) / 2 + 1) {
                raft__become_follower(r, r->term, 0);
                return;
            }
        }
        return;
    }
    if (r->now >= r->election_deadline) {
        if (raft__is_voter(r, r->id))
            raft__start_election(r, false);
        else
            raft__reset_election(r);
    }
}

uint64_t raft_next_tick_ms(const struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return r->election_deadline;
    uint64_t t = r->heartbeat_deadline;
    if (r->cfg.check_quorum && r->checkq_deadline < t)
        t = r->checkq_deadline;
    if (r->transfer_target != 0 && r->transfer_deadline < t)
        t = r->transfer_deadline;
    return t;
}

/* ---- client-facing operations ---- */

int raft_propose(struct raft *r, uint8_t type, const void *data, size_t len, raft_index *index)
{
    if (r->role != RAFT_LEADER || r->transfer_target != 0)
        return TRIAD_EINVAL;
    if (len > RAFT_ENTRY_BYTES_MAX)
        return TRIAD_ELIMIT;
    if (type != RAFT_ENTRY_NORMAL && type != RAFT_ENTRY_NOOP)
        return TRIAD_EINVAL;
    raft__append_entry(r, r->term, type, data, (uint32_t)len);
    if (index != NULL)
        *index = raft__last(r);
    r->need_bcast = true;
    return 0;
}

bool raft_can_change_member(const struct raft *r)
{
    /* one change at a time: the previous must be committed (§4.1) */
    return r->role == RAFT_LEADER && r->transfer_target == 0 && r->committed_in_term &&
           r->conf_index <= r->commit;
}

int raft_change_member(struct raft *r, enum raft_change change, raft_id id, raft_index *index)
{
    if (!raft_can_change_member(r) || id == 0)
        return TRIAD_EINVAL;
    struct raft_conf c = r->conf;
    struct raft_member *mb = NULL;
    for (uint32_t i = 0; i < c.n; i++)
        if (c.members[i].id == id)
            mb = &c.members[i];
    switch (change) {
    case RAFT_ADD_LEARNER:
        if (mb != NULL || c.n >= RAFT_NODES_MAX)
            return TRIAD_EINVAL;
        c.members[c.n++] = (struct raft_member){.id = id, .role = RAFT_LEARNER};
        break;
    case RAFT_PROMOTE:
        if (mb == NULL || mb->role != RAFT_LEARNER)
            return TRIAD_EINVAL;
        mb->role = RAFT_VOTER;
        break;
    case RAFT_REMOVE:
        if (mb == NULL)
            return TRIAD_EINVAL;
        if (mb->role == RAFT_VOTER && raft_conf_voters(&c) == 1)
            return TRIAD_EINVAL;
        *mb = c.members[--c.n];
        break;
    default:
        return TRIAD_EINVAL;
    }
    uint8_t buf[RAFT_CONF_BYTES_MAX];
    size_t len = raft_conf_encode(&c, buf);
    raft__append_entry(r, r->term, RAFT_ENTRY_CONF, buf, (uint32_t)len);
    r->conf = c;
    r->conf_index = raft__last(r);
    raft__peers_sync(r);
    if (index != NULL)
        *index = r->conf_index;
    r->need_bcast = true;
    /* the quorum may have shrunk */
    raft__maybe_commit(r);
    return 0;
}

int raft_transfer(struct raft *r, raft_id target)
{
    if (r->role != RAFT_LEADER || target == r->id || !raft__is_voter(r, target))
        return TRIAD_EINVAL;
    struct raft__peer *p = raft__peer(r, target);
    if (p == NULL)
        return TRIAD_EINVAL;
    r->transfer_target = target;
    r->transfer_deadline = r->now + r->cfg.election_timeout_ms_min;
    /* Our lease ends now, and for the rest of this term: the target will be
     * elected with votes that override the followers' belief in us, and a
     * TimeoutNow delayed in the network may do so long after we gave up on
     * this transfer. Reads fall back to ReadIndex, which stays safe. */
    r->lease_until = 0;
    r->transferred_in_term = true;
    raft__maybe_send_timeout_now(r, p);
    raft__send_more(r, p);
    return 0;
}

int raft_read_index(struct raft *r, uint64_t ctx)
{
    if (r->role != RAFT_LEADER)
        return TRIAD_EINVAL;
    if (!r->committed_in_term) {
        if (r->n_pending == r->cap_pending) {
            r->cap_pending = r->cap_pending ? r->cap_pending * 2 : 16;
            r->pending = raft__realloc(r->pending, r->cap_pending * sizeof(*r->pending));
        }
        r->pending[r->n_pending++] = (struct raft__pending_read){.ctx = ctx, .waiting_commit = true};
        return 0;
    }
    if (raft_lease_valid(r) || (raft_conf_voters(&r->conf) == 1 && raft__is_voter(r, r->id))) {
        raft__push_read(r, ctx, r->commit);
        return 0;
    }
    if (r->n_pending == r->cap_pending) {
        r->cap_pending = r->cap_pending ? r->cap_pending * 2 : 16;
        r->pending = raft__realloc(r->pending, r->cap_pending * sizeof(*r->pending));
    }
    /* one heartbeat round, started at the next ready, serves every read
     * that arrives before it */
    r->pending[r->n_pending++] =
        (struct raft__pending_read){.ctx = ctx, .index = r->commit, .seq = r->hb_seq + 1};
    r->read_round_needed = true;
    return 0;
}

int raft_compact(struct raft *r, raft_index index, uint8_t *data, uint64_t len)
{
    if (index > r->applied || index <= r->snap_index || index > r->stable) {
        free(data);
        return TRIAD_EINVAL;
    }
    raft_term term = raft_term_at(r, index);
    /* the configuration as of `index` */
    struct raft_conf conf = r->snap.conf;
    for (raft_index i = r->snap_index + 1; i <= index; i++) {
        const struct raft_entry *e = raft_entry_at(r, i);
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(&c, e->data, e->len) == 0)
            conf = c;
    }
    size_t drop = (size_t)(index - r->snap_index);
    for (size_t i = 0; i < drop; i++)
        raft__garbage_add(&r->garbage, r->ents[i].data);
    memmove(r->ents, r->ents + drop, (r->n - drop) * sizeof(*r->ents));
    r->n -= drop;
    raft__garbage_add(&r->garbage, r->snap.data);
    r->snap.data = data;
    r->snap.len = len;
    r->snap.index = index;
    r->snap.term = term;
    r->snap.conf = conf;
    r->snap_index = index;
    r->snap_term = term;
    r->snap_persist = true;
    r->snap_install = false;
    return 0;
}

/* ---- ready / advance ---- */

struct raft__rdmem {
    struct raft__garbage garbage;
    struct raft_snapshot snapshot; /* what rd.snapshot points at */
    struct raft_msg *msgs, *msgs_now;
    struct raft_entry *entries, *committed;
    struct raft_read *reads;
};

bool raft_ready(struct raft *r, struct raft_ready *rd)
{
    memset(rd, 0, sizeof(*rd));
    if (r->role == RAFT_LEADER && r->need_bcast) {
        raft__bcast_append(r);
        r->need_bcast = false;
    }
    if (r->role == RAFT_LEADER && r->read_round_needed) {
        raft__heartbeat(r, false);
        r->read_round_needed = false;
        raft__release_reads(r); /* a single voter acknowledges its own round */
    }
    if (r->role == RAFT_LEADER && r->need_commit_bcast) {
        /* followers with nothing new to receive still learn the commit
         * index now rather than at the next heartbeat */
        for (uint32_t i = 0; i < r->n_peers; i++) {
            struct raft__peer *p = r->peers[i];
            if (p->p.state != RAFT_SNAPSHOTTING && p->commit_sent < r->commit)
                raft__send_append(r, p, true);
        }
        r->need_commit_bcast = false;
    }

    /* committed entries, only those durable here (and, for a leader, they
     * were counted only once durable) */
    raft_index limit = TRIAD_MIN(r->commit, r->stable);
    if (r->cfg.bugs & RAFT_BUG_APPLY_UNCOMMITTED)
        limit = raft__last(r);
    if (r->applied < r->snap_index && !r->snap_install)
        r->applied = r->snap_index;
    if (limit > r->applied && !r->snap_install) {
        rd->committed = raft__copy_entries(r, r->applied + 1, limit, &rd->n_committed);
        r->applied = limit;
    }
    bool any = rd->n_committed > 0;
    bool persist_was_inflight = r->persist_inflight;

    if (r->n_reads > 0) {
        rd->reads = r->reads;
        rd->n_reads = r->n_reads;
        r->reads = NULL;
        r->n_reads = r->cap_reads = 0;
        any = true;
    }
    if (r->out_now.n > 0) {
        rd->msgs_now = r->out_now.v;
        rd->n_msgs_now = r->out_now.n;
        memset(&r->out_now, 0, sizeof(r->out_now));
        any = true;
    }

    if (!r->persist_inflight) {
        bool hs_changed = r->term != r->hs_persisted.term || r->vote != r->hs_persisted.vote ||
                          r->commit != r->hs_persisted.commit;
        bool need = r->term != r->hs_persisted.term || r->vote != r->hs_persisted.vote ||
                    r->unstable_from <= raft__last(r) || r->snap_persist;
        if (need) {
            rd->persist = true;
            rd->hs_changed = hs_changed;
            rd->hs = (struct raft_hard_state){r->term, r->vote, r->commit};
            if (r->snap_persist) {
                rd->snapshot = &r->snap;
                rd->snapshot_install = r->snap_install;
            }
            rd->truncate_from = r->unstable_from;
            rd->entries = raft__copy_entries(r, r->unstable_from, raft__last(r), &rd->n_entries);
            rd->persist_last = raft__last(r);
            r->unstable_from = raft__last(r) + 1;
            r->snap_persist = false;
            r->snap_install = false;
            r->persist_inflight = true;
            any = true;
        }
        if (r->out.n > 0) {
            /* with a persist: sent once it is durable; without one,
             * everything they depend on is durable already */
            rd->msgs = r->out.v;
            rd->n_msgs = r->out.n;
            memset(&r->out, 0, sizeof(r->out));
            any = true;
        }
    }

    /* Freed data may still be referred to by the persisting ready: it is
     * released only with a ready handed out while no persist is out, that
     * is after the persisting one's advance. */
    bool take_garbage = r->garbage.n > 0 && !persist_was_inflight;
    if (take_garbage || any) {
        struct raft__rdmem *mem = raft__alloc(sizeof(*mem));
        memset(mem, 0, sizeof(*mem));
        if (take_garbage) {
            mem->garbage = r->garbage;
            memset(&r->garbage, 0, sizeof(r->garbage));
        }
        if (rd->snapshot != NULL) {
            /* a copy of the header: a compaction may replace r->snap before
             * this ready's advance (its data is kept alive as garbage) */
            mem->snapshot = *rd->snapshot;
            rd->snapshot = &mem->snapshot;
        }
        mem->msgs = rd->msgs;
        mem->msgs_now = rd->msgs_now;
        mem->entries = rd->entries;
        mem->committed = rd->committed;
        mem->reads = rd->reads;
        rd->garbage = mem;
    }
    return any || take_garbage;
}

void raft_advance(struct raft *r, struct raft_ready *rd)
{
    if (rd->persist) {
        TRIAD_ASSERT(r->persist_inflight);
        r->persist_inflight = false;
        /* durable now: what was handed out, unless truncated meanwhile */
        r->stable = TRIAD_MIN(rd->persist_last, r->unstable_from - 1);
        r->hs_persisted = rd->hs;
        if (r->role == RAFT_CANDIDATE && r->n_granted >= raft__quorum(r))
            raft__maybe_win(r);
        raft__maybe_commit(r);
        if (r->role == RAFT_LEADER && raft_conf_voters(&r->conf) == 1)
            raft__release_reads(r);
    }
    struct raft__rdmem *mem = rd->garbage;
    if (mem != NULL) {
        raft__garbage_free(&mem->garbage);
        free(mem->msgs);
        free(mem->msgs_now);
        free(mem->entries);
        free(mem->committed);
        free(mem->reads);
        free(mem);
    }
    memset(rd, 0, sizeof(*rd));
}

/* ---- life cycle ---- */

void raft_config_default(struct raft_config *c, raft_id id)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->heartbeat_ms = 50;
    c->election_timeout_ms_min = 300;
    c->election_timeout_ms_max = 600;
    c->pre_vote = true;
    c->check_quorum = true;
    c->lease_reads = true;
    c->clock_drift_permille = 50;
    c->inflight_msgs_max = 64;
    c->inflight_bytes_max = 8u << 20;
    c->append_bytes_max = 1u << 20;
    c->snapshot_chunk_bytes = 1u << 20;
    c->seed = id;
}

struct raft *raft_new(const struct raft_config *cfg, uint64_t now_ms)
{
    TRIAD_ASSERT(cfg->id != 0);
    TRIAD_ASSERT(cfg->election_timeout_ms_min > cfg->heartbeat_ms);
    TRIAD_ASSERT(cfg->election_timeout_ms_max >= cfg->election_timeout_ms_min);
    TRIAD_ASSERT(cfg->inflight_msgs_max > 0 && cfg->inflight_msgs_max <= RAFT_INFLIGHT_RING);
    TRIAD_ASSERT(cfg->snapshot_chunk_bytes > 0);
    TRIAD_ASSERT(cfg->clock_drift_permille < 250);
    struct raft *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->cfg = *cfg;
    r->id = cfg->id;
    r->rng = cfg->seed ^ ((uint64_t)cfg->id << 32);
    r->role = RAFT_FOLLOWER;
    r->now = now_ms;
    r->last_leader_contact = now_ms;
    r->unstable_from = 1;
    raft__reset_election(r);
    return r;
}

void raft_free(struct raft *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        free(r->ents[i].data);
    free(r->ents);
    free(r->snap.data);
    raft__peers_clear(r);
    free(r->pending);
    free(r->out.v);
    free(r->out_now.v);
    free(r->reads);
    raft__garbage_free(&r->garbage);
    free(r->recv);
    free(r);
}

int raft_bootstrap(struct raft *r, const struct raft_conf *conf)
{
    if (r->n != 0 || r->snap_index != 0 || r->term != 0 || conf->n == 0 || raft_conf_voters(conf) == 0)
        return TRIAD_EINVAL;
    uint8_t buf[RAFT_CONF_BYTES_MAX];
    size_t len = raft_conf_encode(conf, buf);
    r->term = 1;
    raft__append_entry(r, 1, RAFT_ENTRY_CONF, buf, (uint32_t)len);
    r->conf = *conf;
    r->conf_index = 1;
    /* identical on every initial member, so committed by construction */
    r->commit = 1;
    return 0;
}

int raft_restore(struct raft *r, const struct raft_hard_state *hs, const struct raft_snapshot *snap,
                 const struct raft_entry *entries, size_t n)
{
    if (r->n != 0 || r->snap_index != 0)
        return TRIAD_EINVAL;
    r->term = hs->term;
    r->vote = hs->vote;
    /* A torn write may have kept entries of a term whose hard-state record
     * was lost; nothing was sent on the strength of that record, so taking
     * the entries' term (without a vote) is safe. */
    if (n > 0 && entries[n - 1].term > r->term) {
        r->term = entries[n - 1].term;
        r->vote = 0;
    }
    if (snap != NULL && snap->index > 0) {
        r->snap = *snap;
        r->snap.data = NULL;
        if (snap->len > 0) {
            r->snap.data = raft__alloc(snap->len);
            memcpy(r->snap.data, snap->data, snap->len);
        }
        r->snap_index = snap->index;
        r->snap_term = snap->term;
        r->applied = snap->index;
        /* likewise a snapshot whose hard-state record was lost: the term is
         * never behind the log's */
        if (snap->term > r->term) {
            r->term = snap->term;
            r->vote = 0;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (entries[i].index != raft__last(r) + 1 || entries[i].term > r->term ||
            (i > 0 && entries[i].term < entries[i - 1].term))
            return TRIAD_ECORRUPT;
        raft__append_entry(r, entries[i].term, entries[i].type, entries[i].data, entries[i].len);
    }
    raft__conf_recompute(r);
    r->commit = TRIAD_MIN(TRIAD_MAX(hs->commit, r->snap_index), raft__last(r));
    r->stable = raft__last(r);
    r->unstable_from = raft__last(r) + 1;
    r->hs_persisted = (struct raft_hard_state){r->term, r->vote, r->commit};
    return 0;
}

/* ---- introspection ---- */

enum raft_role raft_role(const struct raft *r) { return r->role; }
raft_id raft_id_of(const struct raft *r) { return r->id; }
raft_id raft_leader(const struct raft *r) { return r->leader; }
raft_term raft_current_term(const struct raft *r) { return r->term; }
raft_id raft_voted_for(const struct raft *r) { return r->vote; }
raft_index raft_commit_index(const struct raft *r) { return r->commit; }
raft_index raft_applied_index(const struct raft *r) { return r->applied; }
raft_index raft_last_index(const struct raft *r) { return raft__last(r); }
raft_index raft_first_index(const struct raft *r) { return r->snap_index + 1; }
raft_index raft_stable_index(const struct raft *r) { return r->stable; }
raft_index raft_snapshot_index(const struct raft *r) { return r->snap_index; }
const struct raft_conf *raft_conf(const struct raft *r) { return &r->conf; }

raft_index raft_ack_index(const struct raft *r, enum raft_ack level)
{
    if (r->role != RAFT_LEADER)
        return 0;
    uint32_t voters = raft_conf_voters(&r->conf);
    switch (level) {
    case RAFT_ACK_ONE:
        return raft__self_durable(r);
    case RAFT_ACK_TWO: {
        /* the leader's disk and one follower's */
        raft_index best = 0;
        for (uint32_t i = 0; i < r->n_peers; i++)
            if (raft__is_voter(r, r->peers[i]->p.id) && r->peers[i]->p.match > best)
                best = r->peers[i]->p.match;
        if (voters <= 1)
            best = raft__self_durable(r);
        return TRIAD_MIN(best, raft__self_durable(r));
    }
    case RAFT_ACK_QUORUM:
        return raft__kth_match(r, voters / 2 + 1);
    case RAFT_ACK_ALL:
        return raft__kth_match(r, voters);
    }
    return 0;
}

int raft_progress_get(const struct raft *r, raft_id id, struct raft_progress *out)
{
    if (r->role != RAFT_LEADER)
        return TRIAD_ENOTFOUND;
    struct raft__peer *p = raft__peer((struct raft *)r, id);
    if (p == NULL)
        return TRIAD_ENOTFOUND;
    *out = p->p;
    return 0;
}

const char *raft_role_name(enum raft_role role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRECANDIDATE:
        return "precandidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    return "?";
}
