/* node.c - one replica: raft + fsm behind node_io (see node.h). */
#include "node.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cmd/cmd.h"
#include "../common/defs.h"
#include "fsm.h"

#define NODE_PENDING_MAX 100000 /* client requests waiting, all kinds */
/* A learner meant to vote is promoted once its log is within this many
 * entries of the commit index (and the leader streams to it). */
#define NODE_PROMOTE_LAG_MAX 256

/* A write waiting for its entry to be applied: the request waiting list. */
struct node__write {
    raft_index index;
    raft_term term;
    uint64_t req_id;
    uint8_t ack;   /* enum raft_ack */
    bool early;    /* its answer is "+OK" whatever the state: may leave once
                      durable at `ack`, before it commits (ONE, TWO) */
    bool answered; /* it did */
};

/* A write applied (its answer known) that waits for the further copies
 * its ack level asks for. */
struct node__held {
    raft_index index;
    uint64_t req_id;
    uint8_t ack;
    uint64_t deadline_ms;
    char *reply;
    size_t len;
};

/* WAIT: until `want` other members hold `index`, or the deadline. */
struct node__wait {
    uint64_t req_id;
    raft_index index;
    uint32_t want;
    uint64_t deadline_ms; /* UINT64_MAX: none */
};

/* A read waiting for its ReadIndex, then for the state machine to get
 * there. The command is copied (argv in one allocation). */
struct node__read {
    uint64_t ctx;
    uint64_t req_id;
    raft_index index; /* 0 until the ReadIndex is known */
    raft_index after; /* the session's floor: serve at this index or later */
    int db, proto, argc;
    char **argv;
    size_t *argvlen;
};

struct node {
    struct node_config cfg;
    struct node_io io;
    struct raft *raft;
    struct fsm fsm;
    struct node_stats stats;

    struct node__write *writes;
    size_t n_writes, cap_writes;
    size_t n_early; /* writes with early && !answered */
    struct node__held *held;
    size_t n_held, cap_held;
    struct node__wait *waits;
    size_t n_waits, cap_waits;
    struct node__read *reads;
    size_t n_reads, cap_reads;
    uint64_t next_ctx;
    uint64_t last_proposed_ms; /* the proposer's clock in our latest entry */

    struct raft_ready inflight; /* the persisting ready */
    bool persisting;
    bool in_process;
    bool persist_done_early; /* node_persisted() called from inside io.persist */
    bool dirty;              /* io.wake asked for a node_flush() */
    bool compacting;         /* io.snapshot is at work */
    raft_index compact_after; /* after a failed io.snapshot: not before this */
    unsigned compact_failures; /* io.snapshot's failures in a row */

    struct tbuf reply;
    struct tbuf scratch;
};

void node_config_default(struct node_config *c, raft_id id)
{
    memset(c, 0, sizeof(*c));
    raft_config_default(&c->raft, id);
    c->snapshot_entries = 100000;
    c->clock_tick_ms = 100;
    c->ack_timeout_ms = 5000;
}

static void node__reply_at(struct node *n, uint64_t req_id, const char *s, size_t len,
                           raft_index index)
{
    n->io.reply(n->io.arg, req_id, s, len, index);
}

static void node__reply_str(struct node *n, uint64_t req_id, const char *s)
{
    node__reply_at(n, req_id, s, strlen(s), 0);
}

#define NODE__GROW(arr, n, cap)                                                                    \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? (cap) * 2 : 64;                                                        \
            (arr) = realloc((arr), (cap) * sizeof(*(arr)));                                        \
            TRIAD_ASSERT((arr) != NULL);                                                           \
        }                                                                                          \
    } while (0)

static void node__redirect(struct node *n, uint64_t req_id)
{
    char buf[64];
    int len = snprintf(buf, sizeof(buf), "-NOTLEADER %u\r\n", (unsigned)raft_leader(n->raft));
    n->stats.redirected++;
    node__reply_at(n, req_id, buf, (size_t)len, 0);
}

/* The write's outcome is unknown to this node: its entry may still commit
 * under another leader. A retry with the same (client id, seq) is safe: the
 * idempotent receiver applies it once and returns the first reply. */
static const char node__uncertain[] =
    "-TRYAGAIN the write may or may not have been applied; retry it with the same sequence number\r\n";

static void node__read_free(struct node__read *rd)
{
    free(rd->argv);
    rd->argv = NULL;
}

static void node__serve_read(struct node *n, struct node__read *rd)
{
    tbuf_reset(&n->reply);
    fsm_read(&n->fsm, rd->db, rd->proto, rd->argc, rd->argv, rd->argvlen, &n->reply);
    n->stats.reads_answered++;
    node__reply_at(n, rd->req_id, n->reply.data, n->reply.len, n->fsm.applied_index);
}

/* Reads whose index has been applied are answered, in arrival order. */
static void node__serve_reads(struct node *n)
{
    size_t w = 0;
    raft_index applied = n->fsm.applied_index;
    for (size_t i = 0; i < n->n_reads; i++) {
        struct node__read *rd = &n->reads[i];
        if (rd->index != 0 && rd->index <= applied) {
            node__serve_read(n, rd);
            node__read_free(rd);
        } else {
            n->reads[w++] = *rd;
        }
    }
    n->n_reads = w;
}

static void node__read_index_done(struct node *n, const struct raft_read *r)
{
    for (size_t i = 0; i < n->n_reads; i++) {
        struct node__read *rd = &n->reads[i];
        if (rd->ctx != r->ctx)
            continue;
        if (r->index == 0) { /* leadership lost before it was confirmed */
            n->stats.failed++;
            node__redirect(n, rd->req_id);
            node__read_free(rd);
            memmove(n->reads + i, n->reads + i + 1, (n->n_reads - i - 1) * sizeof(*n->reads));
            n->n_reads--;
        } else {
            rd->index = TRIAD_MAX(r->index, rd->after);
        }
        return;
    }
}

/* Committed and applied, but not yet on as many copies as asked. */
static void node__hold(struct node *n, const struct node__write *w, const char *reply, size_t len)
{
    NODE__GROW(n->held, n->n_held, n->cap_held);
    char *copy = malloc(len ? len : 1);
    TRIAD_ASSERT(copy != NULL);
    memcpy(copy, reply, len);
    n->held[n->n_held++] = (struct node__held){
        .index = w->index,
        .req_id = w->req_id,
        .ack = w->ack,
        .deadline_ms = n->io.now_ms(n->io.arg) + n->cfg.ack_timeout_ms,
        .reply = copy,
        .len = len,
    };
}

/* Writes no longer waiting (at or below a snapshot, or in an overwritten
 * suffix) that were never answered learn that their outcome is unknown. */
static void node__write_uncertain(struct node *n, struct node__write *w)
{
    if (w->answered)
        return;
    if (w->early)
        n->n_early--;
    n->stats.failed++;
    node__reply_str(n, w->req_id, node__uncertain);
}

/* Other members whose durable log holds index (WAIT's count). Index 0: the
 * ones that answered the leader within an election timeout. */
static uint32_t node__replicas_at(struct node *n, raft_index index)
{
    struct raft *r = n->raft;
    if (raft_role(r) != RAFT_LEADER)
        return 0;
    const struct raft_conf *c = raft_conf(r);
    uint64_t now = n->io.now_ms(n->io.arg);
    uint32_t count = 0;
    for (uint32_t i = 0; i < c->n; i++) {
        struct raft_progress p;
        if (c->members[i].id == raft_id_of(r) || raft_progress_get(r, c->members[i].id, &p) != 0)
            continue;
        if (index > 0 ? p.match >= index
                      : p.last_ack_ms + n->cfg.raft.election_timeout_ms_min >= now)
            count++;
    }
    return count;
}

static void node__wait_done(struct node *n, size_t i, uint32_t count)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), ":%u\r\n", (unsigned)count);
    node__reply_at(n, n->waits[i].req_id, buf, (size_t)len, n->waits[i].index);
    n->waits[i] = n->waits[--n->n_waits];
}

/* Answers that wait for copies rather than for the state machine: early
 * writes, held writes, WAIT. Runs after every batch of readies. */
static void node__check_acks(struct node *n)
{
    struct raft *r = n->raft;
    bool leader = raft_role(r) == RAFT_LEADER;
    uint64_t now = n->io.now_ms(n->io.arg);
    if (leader && n->n_early > 0) {
        raft_index at[RAFT_ACK_ALL + 1] = {0};
        at[RAFT_ACK_ONE] = raft_ack_index(r, RAFT_ACK_ONE);
        at[RAFT_ACK_TWO] = raft_ack_index(r, RAFT_ACK_TWO);
        raft_term term = raft_current_term(r);
        for (size_t i = 0; i < n->n_writes && n->writes[i].index <= at[RAFT_ACK_ONE]; i++) {
            struct node__write *w = &n->writes[i];
            if (!w->early || w->answered || w->term != term || at[w->ack] < w->index)
                continue;
            w->answered = true;
            n->n_early--;
            n->stats.writes_answered++;
            node__reply_at(n, w->req_id, "+OK\r\n", 5, w->index);
        }
    }
    for (size_t i = 0; i < n->n_held;) {
        struct node__held *h = &n->held[i];
        bool done = leader && raft_ack_index(r, (enum raft_ack)h->ack) >= h->index;
        if (!done && now < h->deadline_ms) {
            i++;
            continue;
        }
        if (done) {
            n->stats.writes_answered++;
            node__reply_at(n, h->req_id, h->reply, h->len, h->index);
        } else {
            n->stats.failed++;
            node__reply_str(n, h->req_id,
                            "-NOREPLICAS the write was applied, but not every voter confirmed "
                            "its copy in time\r\n");
        }
        free(h->reply);
        n->held[i] = n->held[--n->n_held];
    }
    if (!leader) {
        /* A read this node took as leader, waiting for an index above what
         * is committed: that suffix may never commit now (another leader
         * may overwrite it), so it could wait forever. The client asks
         * the leader instead. */
        raft_index commit = raft_commit_index(r);
        for (size_t i = 0; i < n->n_reads;) {
            struct node__read *rd = &n->reads[i];
            if (rd->ctx == 0 || rd->index <= commit) {
                i++;
                continue;
            }
            uint64_t id = rd->req_id;
            node__read_free(rd);
            memmove(n->reads + i, n->reads + i + 1, (n->n_reads - i - 1) * sizeof(*n->reads));
            n->n_reads--;
            n->stats.failed++;
            node__redirect(n, id);
        }
    }
    for (size_t i = 0; i < n->n_waits;) {
        struct node__wait *w = &n->waits[i];
        if (!leader) {
            uint64_t id = w->req_id;
            n->waits[i] = n->waits[--n->n_waits];
            node__redirect(n, id);
            continue;
        }
        uint32_t count = node__replicas_at(n, w->index);
        if (count >= w->want || now >= w->deadline_ms)
            node__wait_done(n, i, count);
        else
            i++;
    }
}

/* The earliest deadline among held writes and WAITs. */
static uint64_t node__next_deadline(const struct node *n)
{
    uint64_t at = UINT64_MAX;
    for (size_t i = 0; i < n->n_held; i++)
        at = TRIAD_MIN(at, n->held[i].deadline_ms);
    for (size_t i = 0; i < n->n_waits; i++)
        at = TRIAD_MIN(at, n->waits[i].deadline_ms);
    return at;
}

static void node__apply(struct node *n, const struct raft_entry *e)
{
    tbuf_reset(&n->reply);
    if (e->type == RAFT_ENTRY_NORMAL) {
        fsm_apply(&n->fsm, e->index, e->data, e->len, &n->reply);
    } else {
        fsm_apply_noop(&n->fsm, e->index);
        struct raft_conf c;
        if (e->type == RAFT_ENTRY_CONF && raft_conf_decode(&c, e->data, e->len) == 0) {
            uint32_t ids[RAFT_NODES_MAX];
            for (uint32_t i = 0; i < c.n; i++)
                ids[i] = c.members[i].id;
            fsm_members_retain(&n->fsm, ids, c.n);
            tbuf_appends(&n->reply, "+OK\r\n"); /* for TRIAD.MEMBERS, waiting on it */
        }
    }
    /* answer the writes waiting for this index: ours if the term matches,
     * else our entry was overwritten by another leader's */
    size_t k = 0;
    while (k < n->n_writes && n->writes[k].index <= e->index) {
        struct node__write *w = &n->writes[k++];
        if (w->answered) {
            /* answered early (ONE, TWO): if its entry lost, so did the write */
            continue;
        }
        if (w->early)
            n->n_early--;
        if (w->index != e->index || w->term != e->term) {
            n->stats.failed++;
            node__reply_str(n, w->req_id, node__uncertain);
        } else if (w->ack == RAFT_ACK_ALL && raft_ack_index(n->raft, RAFT_ACK_ALL) < e->index) {
            node__hold(n, w, n->reply.data, n->reply.len);
        } else {
            n->stats.writes_answered++;
            node__reply_at(n, w->req_id, n->reply.data, n->reply.len, e->index);
        }
    }
    if (k > 0) {
        memmove(n->writes, n->writes + k, (n->n_writes - k) * sizeof(*n->writes));
        n->n_writes -= k;
    }
    if (n->io.applied != NULL)
        n->io.applied(n->io.arg, e, fsm_digest(&n->fsm));
}

static void node__install(struct node *n, const struct raft_snapshot *s)
{
    char err[256];
    /* The snapshot carries its own CRC and came through a checksummed
     * transport: failing here means the leader's state machine is broken. */
    int rc = fsm_restore(&n->fsm, s->data, s->len, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "triad: node %u: cannot install snapshot at %llu: %s\n",
                (unsigned)raft_id_of(n->raft), (unsigned long long)s->index, err);
        TRIAD_ASSERT(rc == 0);
    }
    TRIAD_ASSERT(n->fsm.applied_index == s->index);
    n->stats.snapshots_installed++;
    /* writes at or below the snapshot: their outcome is unknown here */
    size_t k = 0;
    while (k < n->n_writes && n->writes[k].index <= s->index)
        node__write_uncertain(n, &n->writes[k++]);
    if (k > 0) {
        memmove(n->writes, n->writes + k, (n->n_writes - k) * sizeof(*n->writes));
        n->n_writes -= k;
    }
}

/* After this many failures of io.snapshot in a row the node serializes
 * the next snapshot itself: a stall, but the log must not grow without
 * bound because forks keep failing (memory limits). */
#define NODE_COMPACT_ELSEWHERE_TRIES 3

static void node__maybe_compact(struct node *n)
{
    struct raft *r = n->raft;
    raft_index applied = n->fsm.applied_index;
    if (n->cfg.snapshot_entries == 0 || applied < raft_snapshot_index(r) + n->cfg.snapshot_entries)
        return;
    if (applied > raft_stable_index(r) || n->compacting || applied < n->compact_after)
        return;
    if (n->io.snapshot != NULL && n->compact_failures < NODE_COMPACT_ELSEWHERE_TRIES) {
        n->compacting = true;
        n->io.snapshot(n->io.arg, n, applied);
        return;
    }
    tbuf_reset(&n->scratch);
    fsm_snapshot(&n->fsm, &n->scratch);
    uint8_t *copy = malloc(n->scratch.len ? n->scratch.len : 1);
    if (copy == NULL)
        return; /* try again after the next apply */
    memcpy(copy, n->scratch.data, n->scratch.len);
    if (raft_compact(r, applied, copy, n->scratch.len) == 0) {
        n->stats.snapshots_taken++;
        n->compact_failures = 0; /* io.snapshot gets the next one again */
    }
}

static bool node__has_deadlines(const struct node *n)
{
    for (int db = 0; db < n->fsm.srv.databases; db++)
        if (kv_expires_count(n->fsm.srv.db[db]) > 0)
            return true;
    return false;
}

/* Time inside the state machine moves only with entries (fsm.h). While
 * keys have deadlines, the leader proposes a clock tick when the last
 * entry's time is older than clock_tick_ms, so they expire on time (within
 * about one tick) even if no write comes. */
static uint64_t node__next_clock_tick(struct node *n)
{
    if (n->cfg.clock_tick_ms == 0 || raft_role(n->raft) != RAFT_LEADER || !node__has_deadlines(n))
        return UINT64_MAX;
    return n->last_proposed_ms + n->cfg.clock_tick_ms;
}

static void node__maybe_clock_tick(struct node *n)
{
    uint64_t now = n->io.now_ms(n->io.arg);
    if (now < node__next_clock_tick(n))
        return;
    struct fsm_command c = {.proto = 2, .now_ms = now};
    tbuf_reset(&n->scratch);
    if (fsm_encode_command(&c, &n->scratch) != 0)
        return;
    if (raft_propose(n->raft, RAFT_ENTRY_NORMAL, n->scratch.data, n->scratch.len, NULL) == 0) {
        n->last_proposed_ms = now;
        n->stats.clock_ticks++;
    }
}

static void node__finish_persist(struct node *n)
{
    TRIAD_ASSERT(n->persisting);
    /* durable now: the messages that depended on it may go */
    for (size_t i = 0; i < n->inflight.n_msgs; i++)
        n->io.send(n->io.arg, &n->inflight.msgs[i]);
    n->persisting = false;
    raft_advance(n->raft, &n->inflight);
}

static void node__process(struct node *n)
{
    struct raft_ready rd;
    TRIAD_ASSERT(!n->in_process);
    n->in_process = true;
    for (int guard = 0; raft_ready(n->raft, &rd); guard++) {
        TRIAD_ASSERT(guard < 1000000);
        for (size_t i = 0; i < rd.n_msgs_now; i++)
            n->io.send(n->io.arg, &rd.msgs_now[i]);
        if (rd.persist && rd.snapshot != NULL && rd.snapshot_install)
            node__install(n, rd.snapshot);
        for (size_t i = 0; i < rd.n_committed; i++)
            node__apply(n, &rd.committed[i]);
        for (size_t i = 0; i < rd.n_reads; i++)
            node__read_index_done(n, &rd.reads[i]);
        node__serve_reads(n);
        if (rd.persist) {
            TRIAD_ASSERT(!n->persisting);
            n->inflight = rd;
            n->persisting = true;
            n->persist_done_early = false;
            n->io.persist(n->io.arg, &n->inflight);
            if (n->persist_done_early)
                node__finish_persist(n);
        } else {
            for (size_t i = 0; i < rd.n_msgs; i++)
                n->io.send(n->io.arg, &rd.msgs[i]);
            raft_advance(n->raft, &rd);
        }
        node__maybe_compact(n);
    }
    node__check_acks(n);
    n->in_process = false;
    uint64_t at = raft_next_tick_ms(n->raft);
    at = TRIAD_MIN(at, node__next_clock_tick(n));
    at = TRIAD_MIN(at, node__next_deadline(n));
    n->io.set_timer(n->io.arg, at);
}

/* There is work for node__process: do it now, or (io.wake set) note it
 * and let the caller run node_flush() once for everything that came in
 * meanwhile, so that one ready carries a whole batch. */
static void node__kick(struct node *n)
{
    if (n->io.wake != NULL) {
        if (!n->dirty) {
            n->dirty = true;
            n->io.wake(n->io.arg);
        }
    } else if (!n->in_process) {
        node__process(n);
    }
}

bool node_flush(struct node *n)
{
    if (!n->dirty || n->in_process)
        return false;
    n->dirty = false;
    node__process(n);
    return true;
}

struct node *node_new(const struct node_config *cfg, const struct node_io *io,
                      const struct node_disk *disk, const struct raft_conf *bootstrap,
                      char *errmsg, size_t errlen)
{
    struct node *n = calloc(1, sizeof(*n));
    if (n == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        return NULL;
    }
    n->cfg = *cfg;
    n->io = *io;
    n->cfg.raft.seed = io->random(io->arg);
    if (fsm_init(&n->fsm, io->random(io->arg)) != 0) {
        snprintf(errmsg, errlen, "out of memory");
        goto err_free;
    }
    n->raft = raft_new(&n->cfg.raft, io->now_ms(io->arg));
    if (n->raft == NULL) {
        snprintf(errmsg, errlen, "out of memory");
        goto err_fsm;
    }
    if (disk != NULL) {
        if (disk->snapshot != NULL && disk->snapshot->index > 0) {
            int rc = fsm_restore(&n->fsm, disk->snapshot->data, disk->snapshot->len, errmsg, errlen);
            if (rc != 0)
                goto err_raft;
        }
        int rc = raft_restore(n->raft, &disk->hs, disk->snapshot, disk->entries, disk->n_entries);
        if (rc != 0) {
            snprintf(errmsg, errlen, "the log on disk is not a valid Raft log (%d)", rc);
            goto err_raft;
        }
    }
    if (bootstrap != NULL && raft_last_index(n->raft) == 0 && raft_current_term(n->raft) == 0) {
        if (raft_bootstrap(n->raft, bootstrap) != 0) {
            snprintf(errmsg, errlen, "invalid bootstrap configuration");
            goto err_raft;
        }
    }
    node__process(n);
    return n;

err_raft:
    raft_free(n->raft);
err_fsm:
    fsm_free(&n->fsm);
err_free:
    free(n);
    return NULL;
}

void node_free(struct node *n)
{
    if (n == NULL)
        return;
    if (n->persisting)
        raft_advance(n->raft, &n->inflight); /* frees what it holds */
    for (size_t i = 0; i < n->n_reads; i++)
        node__read_free(&n->reads[i]);
    for (size_t i = 0; i < n->n_held; i++)
        free(n->held[i].reply);
    free(n->held);
    free(n->waits);
    free(n->reads);
    free(n->writes);
    raft_free(n->raft);
    fsm_free(&n->fsm);
    tbuf_free(&n->reply);
    tbuf_free(&n->scratch);
    free(n);
}

void node_snapshot_fsm(const struct node *n, struct tbuf *out)
{
    fsm_snapshot(&n->fsm, out);
}

void node_compact(struct node *n, uint64_t index, uint8_t *data, uint64_t len)
{
    TRIAD_ASSERT(n->compacting);
    n->compacting = false;
    n->compact_failures = 0;
    /* refused (data freed) if a snapshot at or past index came meanwhile */
    if (raft_compact(n->raft, index, data, len) != 0)
        return;
    n->stats.snapshots_taken++;
    node__kick(n); /* the next ready persists the snapshot */
}

void node_compact_later(struct node *n)
{
    TRIAD_ASSERT(n->compacting);
    n->compacting = false;
    n->compact_after = n->fsm.applied_index + TRIAD_MAX(n->cfg.snapshot_entries / 10, 1);
}

void node_compact_failed(struct node *n)
{
    node_compact_later(n);
    n->compact_failures++;
}

void node_step(struct node *n, const struct raft_msg *m)
{
    raft_tick(n->raft, n->io.now_ms(n->io.arg));
    if (raft_step(n->raft, m) != 0)
        return; /* malformed: dropped (the transport logs it) */
    node__kick(n);
}

/* Promote a learner the member table marks as a voter once it has caught
 * up (the dissertation's catch-up rounds, §4.2.1, by a simpler test). */
static void node__maybe_promote(struct node *n)
{
    struct raft *r = n->raft;
    if (raft_role(r) != RAFT_LEADER)
        return;
    const struct raft_conf *c = raft_conf(r);
    for (uint32_t i = 0; i < c->n; i++) {
        const struct fsm_member *m = fsm_member(&n->fsm, c->members[i].id);
        struct raft_progress p;
        if (c->members[i].role != RAFT_LEARNER || m == NULL || !m->voter ||
            raft_progress_get(r, m->id, &p) != 0)
            continue;
        if (p.state == RAFT_REPLICATE && p.match + NODE_PROMOTE_LAG_MAX >= raft_commit_index(r)) {
            raft_change_member(r, RAFT_PROMOTE, m->id, NULL); /* else: next tick */
            return;
        }
    }
}

void node_tick(struct node *n)
{
    raft_tick(n->raft, n->io.now_ms(n->io.arg));
    node__maybe_clock_tick(n);
    node__maybe_promote(n);
    node__kick(n);
}

void node_persisted(struct node *n)
{
    if (n->in_process) {
        n->persist_done_early = true;
        return;
    }
    node__finish_persist(n);
    node__kick(n);
}

/* Writes go through the log: data writes, and transactions (fsm.h's
 * TRIAD.TXN, which only the server builds from a client's MULTI/EXEC). */
static bool node__is_write(const struct cmd_spec *spec, const struct node_req *rq)
{
    if (spec != NULL)
        return (spec->flags & CMD_WRITE) != 0;
    return rq->argvlen[0] == 9 && memcmp(rq->argv[0], "TRIAD.TXN", 9) == 0;
}

/* Writes whose answer is "+OK" whatever the state holds: a plain SET and a
 * well-formed MSET (the state machine has no maxmemory: fsm.c). */
static bool node__blind(const struct cmd_spec *spec, int argc)
{
    if (spec == NULL)
        return false;
    return (strcmp(spec->name, "SET") == 0 && argc == 3) ||
           (strcmp(spec->name, "MSET") == 0 && argc >= 3 && argc % 2 == 1);
}

/* A copy of a read, parked until the state machine gets to its index. */
static struct node__read *node__park_read(struct node *n, const struct node_req *rq)
{
    size_t bytes = (size_t)rq->argc * (sizeof(char *) + sizeof(size_t));
    for (int i = 0; i < rq->argc; i++)
        bytes += rq->argvlen[i] + 1;
    char **av = malloc(bytes);
    TRIAD_ASSERT(av != NULL);
    size_t *al = (size_t *)(av + rq->argc);
    char *p = (char *)(al + rq->argc);
    for (int i = 0; i < rq->argc; i++) {
        memcpy(p, rq->argv[i], rq->argvlen[i]);
        p[rq->argvlen[i]] = '\0';
        av[i] = p;
        al[i] = rq->argvlen[i];
        p += rq->argvlen[i] + 1;
    }
    NODE__GROW(n->reads, n->n_reads, n->cap_reads);
    struct node__read *rd = &n->reads[n->n_reads++];
    *rd = (struct node__read){.req_id = rq->id, .db = rq->db, .proto = rq->proto,
                              .argc = rq->argc, .argv = av, .argvlen = al};
    return rd;
}

static void node__submit_write(struct node *n, const struct node_req *rq,
                               const struct cmd_spec *spec)
{
    struct raft *r = n->raft;
    struct fsm_command c = {
        .proto = rq->proto,
        .client_id = rq->client_id,
        .seq = rq->client_id ? rq->seq : 0,
        .now_ms = n->io.now_ms(n->io.arg),
        .db = rq->db,
        .argc = rq->argc,
        .argv = rq->argv,
        .argvlen = rq->argvlen,
    };
    tbuf_reset(&n->scratch);
    int rc = fsm_encode_command(&c, &n->scratch);
    if (rc != 0) {
        node__reply_str(n, rq->id, rc == TRIAD_ELIMIT ? "-ERR TRIAD command too large for one log entry\r\n"
                                                      : "-ERR TRIAD invalid session, sequence or database\r\n");
        return;
    }
    raft_index index;
    rc = raft_propose(r, RAFT_ENTRY_NORMAL, n->scratch.data, n->scratch.len, &index);
    if (rc != 0) {
        /* a leader refuses proposals while it hands leadership over */
        n->stats.failed++;
        node__reply_str(n, rq->id, "-TRYAGAIN leadership is being transferred; retry shortly\r\n");
        return;
    }
    n->last_proposed_ms = c.now_ms;
    /* Waiting writes at or above this index were in a log suffix that
     * another leader overwrote while we were away: keep the list in index
     * order and tell them now. */
    while (n->n_writes > 0 && n->writes[n->n_writes - 1].index >= index)
        node__write_uncertain(n, &n->writes[--n->n_writes]);
    NODE__GROW(n->writes, n->n_writes, n->cap_writes);
    enum raft_ack ack = rq->ack ? rq->ack : RAFT_ACK_QUORUM;
    /* a session's write may be a retry whose saved answer is not +OK */
    bool early = ack < RAFT_ACK_QUORUM && rq->client_id == 0 && node__blind(spec, rq->argc);
    n->writes[n->n_writes++] = (struct node__write){
        .index = index, .term = raft_current_term(r), .req_id = rq->id, .ack = (uint8_t)ack,
        .early = early};
    n->n_early += early;
    n->stats.writes_proposed++;
}

void node_submit(struct node *n, const struct node_req *rq)
{
    struct raft *r = n->raft;
    raft_tick(r, n->io.now_ms(n->io.arg));
    if (rq->argc < 1) {
        n->stats.failed++;
        node__reply_str(n, rq->id, "-ERR empty command\r\n");
        return;
    }
    if (raft_role(r) != RAFT_LEADER) {
        node__redirect(n, rq->id);
        return;
    }
    if (n->n_writes + n->n_reads + n->n_held + n->n_waits >= NODE_PENDING_MAX) {
        n->stats.failed++;
        node__reply_str(n, rq->id, "-BUSY too many requests waiting for the log; retry later\r\n");
        return;
    }
    const struct cmd_spec *spec = cmd_lookup(rq->argv[0], rq->argvlen[0]);
    if (node__is_write(spec, rq)) {
        node__submit_write(n, rq, spec);
    } else {
        /* a read (or an unknown command, answered by fsm_read's error) at a
         * ReadIndex: linearizable (Raft §6.4), and never older than the
         * session's floor. A floor past our log is a write lost with an
         * old leader (ONE) or another cluster's token: our log's end is
         * the most any read can see. */
        uint64_t ctx = ++n->next_ctx;
        struct node__read *rd = node__park_read(n, rq);
        rd->ctx = ctx;
        rd->after = TRIAD_MIN(rq->after, raft_last_index(r));
        if (raft_read_index(r, ctx) != 0) {
            node__read_free(rd);
            n->n_reads--;
            node__redirect(n, rq->id);
            return;
        }
    }
    node__kick(n);
}

/* Wait for the entry at index (a configuration change) like a write. */
static void node__wait_entry(struct node *n, uint64_t req_id, raft_index index)
{
    while (n->n_writes > 0 && n->writes[n->n_writes - 1].index >= index)
        node__write_uncertain(n, &n->writes[--n->n_writes]);
    NODE__GROW(n->writes, n->n_writes, n->cap_writes);
    n->writes[n->n_writes++] = (struct node__write){
        .index = index, .term = raft_current_term(n->raft), .req_id = req_id,
        .ack = RAFT_ACK_QUORUM};
}

void node_change_member(struct node *n, uint64_t req_id, enum raft_change change, raft_id id,
                        const char *host, uint16_t port, bool voter)
{
    struct raft *r = n->raft;
    raft_tick(r, n->io.now_ms(n->io.arg));
    if (raft_role(r) != RAFT_LEADER) {
        node__redirect(n, req_id);
        return;
    }
    const struct raft_member *mb = raft_conf_find(raft_conf(r), id);
    char err[128];
    err[0] = '\0';
    if (id == 0)
        snprintf(err, sizeof(err), "-ERR node ids start at 1\r\n");
    else if (change == RAFT_ADD_LEARNER && mb != NULL)
        snprintf(err, sizeof(err), "-ERR node %u is already a member\r\n", (unsigned)id);
    else if (change == RAFT_ADD_LEARNER && raft_conf(r)->n >= RAFT_NODES_MAX)
        snprintf(err, sizeof(err), "-ERR a cluster has at most %d members\r\n", RAFT_NODES_MAX);
    else if (change == RAFT_PROMOTE && (mb == NULL || mb->role != RAFT_LEARNER))
        snprintf(err, sizeof(err), "-ERR node %u is not a learner\r\n", (unsigned)id);
    else if (change == RAFT_REMOVE && mb == NULL)
        snprintf(err, sizeof(err), "-ERR node %u is not a member\r\n", (unsigned)id);
    else if (change == RAFT_REMOVE && mb->role == RAFT_VOTER && raft_conf_voters(raft_conf(r)) == 1)
        snprintf(err, sizeof(err), "-ERR node %u is the last voter\r\n", (unsigned)id);
    if (err[0] == '\0' && !raft_can_change_member(r))
        snprintf(err, sizeof(err), "-TRYAGAIN another membership change is in progress, or this "
                                   "leader is new; retry shortly\r\n");
    if (err[0] != '\0') {
        node__reply_str(n, req_id, err);
        return;
    }
    if (change == RAFT_ADD_LEARNER) {
        tbuf_reset(&n->scratch);
        uint64_t now = n->io.now_ms(n->io.arg);
        if (fsm_encode_member(now, id, host, port, voter, &n->scratch) != 0) {
            node__reply_str(n, req_id, "-ERR invalid member address\r\n");
            return;
        }
        /* the address first: a member's entry never precedes its address */
        if (raft_propose(r, RAFT_ENTRY_NORMAL, n->scratch.data, n->scratch.len, NULL) != 0) {
            node__reply_str(n, req_id, "-TRYAGAIN leadership is being transferred; retry shortly\r\n");
            return;
        }
        n->last_proposed_ms = now;
    }
    raft_index index;
    if (raft_change_member(r, change, id, &index) != 0) {
        node__reply_str(n, req_id, "-TRYAGAIN another membership change is in progress, or this "
                                   "leader is new; retry shortly\r\n");
    } else {
        node__wait_entry(n, req_id, index);
    }
    node__kick(n);
}

bool node_read_local(struct node *n, const struct node_req *rq)
{
    if (rq->argc < 1)
        return false;
    if (rq->after <= n->fsm.applied_index) {
        struct node__read rd = {.req_id = rq->id, .db = rq->db, .proto = rq->proto,
                                .argc = rq->argc, .argv = rq->argv, .argvlen = rq->argvlen};
        node__serve_read(n, &rd);
        return true;
    }
    if (rq->after > raft_commit_index(n->raft) ||
        n->n_writes + n->n_reads + n->n_held + n->n_waits >= NODE_PENDING_MAX)
        return false;
    /* committed here already: applied within this round of readies */
    node__park_read(n, rq)->index = rq->after;
    return true;
}

void node_wait(struct node *n, uint64_t req_id, uint64_t index, uint32_t replicas,
               uint64_t timeout_ms)
{
    struct raft *r = n->raft;
    raft_tick(r, n->io.now_ms(n->io.arg));
    if (raft_role(r) != RAFT_LEADER) {
        node__redirect(n, req_id);
        return;
    }
    NODE__GROW(n->waits, n->n_waits, n->cap_waits);
    uint64_t now = n->io.now_ms(n->io.arg);
    n->waits[n->n_waits++] = (struct node__wait){
        .req_id = req_id,
        .index = TRIAD_MIN(index, raft_last_index(r)),
        .want = replicas,
        .deadline_ms = timeout_ms == 0 ? UINT64_MAX : now + timeout_ms,
    };
    node__kick(n);
}

struct raft *node_raft(struct node *n) { return n->raft; }
struct fsm *node_fsm(struct node *n) { return &n->fsm; }
uint64_t node_digest(const struct node *n) { return fsm_digest(&n->fsm); }
const struct node_stats *node_stats(const struct node *n) { return &n->stats; }
