/* leaderless.c - leaderless mode in the server (see leaderless.h): the
 * core's io on the server's keyspace and WAL, its messages over peer.c, its
 * timer, and the node's identity on disk (actor id, gossip generation).
 *
 * Re-entrancy: the core is not re-entered from its own callbacks. Its
 * answers (io.reply) are recorded on the waiting command and acted on from
 * a uv_idle handler, so that a client's next command (which submits to the
 * core) never starts inside dyn_step or dyn_tick.
 */
#include "leaderless.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/mem.h"
#include "../core/ring.h"
#include "../store/fs.h"
#include "../store/kv.h"
#include "leaderless_int.h"

#define LL_DB_OBJECTS 0
#define LL_DB_HINTS 1
#define LL_TIMER_MAX_MS 250 /* tick at least this often, whatever the core says */
#define LL_ACTOR_FILE "actor"
#define LL_GENERATION_FILE "generation"
#define LL_CLEAN_FILE "clean" /* present from a clean shutdown to the next start */
#define LL_LEFT_FILE "left"   /* this node left the ring (TRIAD.LEAVE): it never rejoins on this data */

struct ll__token {
    uint64_t lsn, token;
};

struct ll__slot {
    uint64_t id; /* 0: empty */
    struct ll__cmd *cmd;
    uint32_t idx;
};

struct ll__hints {
    uint32_t owner;
    uint64_t n;
};

struct ll__dialed {
    uint32_t id;
    int port;
    char host[GOSSIP_HOST_MAX + 1];
};

struct ll {
    const struct config *cfg;
    struct ll_hooks hooks;
    uv_loop_t *loop;
    struct cmd_server *cmd;
    struct dyn *d;
    struct dyn_config dc;
    uint32_t id;
    dvv_actor actor;
    const char *actor_why; /* for the log */
    uint64_t generation;
    bool was_joining, left_logged; /* for the log lines of those moments */
    bool stopped;
    uv_timer_t timer;
    uint64_t timer_at;
    uv_idle_t idle;
    struct peer_net *pn;

    /* writes waiting to be durable, in lsn order */
    struct ll__token *tokens;
    size_t tok_head, tok_n, tok_cap;

    /* hints held, per owner (rebuilt from database 1 at start) */
    struct ll__hints *hints;
    size_t n_hints, cap_hints;
    uint64_t hints_total;

    /* request id -> (command, item): open addressing, linear probing */
    struct ll__slot *map;
    size_t map_cap, map_n;
    uint64_t next_req;

    struct ll__cmd *ready_head, *ready_tail;
    struct ll__cmd *cmds; /* every command alive */

    struct tbuf rec; /* a WAL record being built */
    struct tbuf enc; /* an object's encoding */

    struct ll__dialed dialed[PEER_MEMBERS_MAX]; /* what peer_net was given */
    size_t n_dialed;
    uint64_t sent_dropped;
    struct gossip_state states[GOSSIP_NODES_MAX];
};

/* ---- small helpers ---- */

static uint64_t ll__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

__attribute__((format(printf, 3, 4))) static void ll__log(struct ll *ll, int level,
                                                          const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    ll->hooks.log(ll->hooks.arg, level, line);
}

uint32_t ll__n(const struct ll *ll)
{
    return ll->dc.n;
}

struct dyn *ll__dyn(struct ll *ll)
{
    return ll->d;
}

uint32_t ll__default_level(const struct ll *ll, bool write)
{
    return write ? ll->dc.w : ll->dc.r;
}

void ll__answer(struct ll *ll, uint64_t req_id, const char *resp, size_t len)
{
    ll->hooks.reply(ll->hooks.arg, req_id, resp, len);
}

static void ll__hint_key(struct tbuf *b, uint32_t owner, const char *key, size_t klen)
{
    uint8_t be[4] = {(uint8_t)(owner >> 24), (uint8_t)(owner >> 16), (uint8_t)(owner >> 8),
                     (uint8_t)owner};
    tbuf_reset(b);
    tbuf_append(b, be, 4);
    tbuf_append(b, key, klen);
}

/* ---- the request map ---- */

static size_t ll__map_home(const struct ll *ll, uint64_t id)
{
    return (size_t)(XXH3_64bits(&id, sizeof(id)) & (ll->map_cap - 1));
}

static void ll__map_put(struct ll *ll, uint64_t id, struct ll__cmd *cmd, uint32_t idx)
{
    TRIAD_ASSERT(id != 0);
    if ((ll->map_n + 1) * 2 > ll->map_cap) {
        struct ll__slot *old = ll->map;
        size_t old_cap = ll->map_cap;
        ll->map_cap = old_cap ? old_cap * 2 : 256;
        ll->map = tcalloc(ll->map_cap, sizeof(*ll->map));
        ll->map_n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].id != 0)
                ll__map_put(ll, old[i].id, old[i].cmd, old[i].idx);
        tfree(old);
    }
    size_t i = ll__map_home(ll, id);
    while (ll->map[i].id != 0)
        i = (i + 1) & (ll->map_cap - 1);
    ll->map[i] = (struct ll__slot){id, cmd, idx};
    ll->map_n++;
}

/* Take id out (backward-shift deletion keeps every probe chain whole).
 * false if it is not there. */
static bool ll__map_take(struct ll *ll, uint64_t id, struct ll__slot *out)
{
    if (ll->map_cap == 0)
        return false;
    size_t mask = ll->map_cap - 1, i = ll__map_home(ll, id);
    while (ll->map[i].id != id) {
        if (ll->map[i].id == 0)
            return false;
        i = (i + 1) & mask;
    }
    *out = ll->map[i];
    size_t hole = i;
    for (size_t j = (i + 1) & mask; ll->map[j].id != 0; j = (j + 1) & mask) {
        size_t home = ll__map_home(ll, ll->map[j].id);
        /* j may move into the hole unless its home lies cyclically in (hole, j] */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            ll->map[hole] = ll->map[j];
            hole = j;
        }
    }
    ll->map[hole].id = 0;
    ll->map_n--;
    return true;
}

/* ---- commands in flight ---- */

void ll__cmd_link(struct ll *ll, struct ll__cmd *cmd)
{
    cmd->ll = ll;
    cmd->prev_all = NULL;
    cmd->next_all = ll->cmds;
    if (ll->cmds != NULL)
        ll->cmds->prev_all = cmd;
    ll->cmds = cmd;
}

void ll__cmd_unlink(struct ll *ll, struct ll__cmd *cmd)
{
    TRIAD_ASSERT(!cmd->queued);
    if (cmd->prev_all != NULL)
        cmd->prev_all->next_all = cmd->next_all;
    else
        ll->cmds = cmd->next_all;
    if (cmd->next_all != NULL)
        cmd->next_all->prev_all = cmd->prev_all;
}

static void ll__on_idle(uv_idle_t *h);

void ll__ready(struct ll *ll, struct ll__cmd *cmd)
{
    if (cmd->queued || cmd->driving)
        return;
    cmd->queued = true;
    cmd->next_ready = NULL;
    if (ll->ready_tail != NULL)
        ll->ready_tail->next_ready = cmd;
    else
        ll->ready_head = cmd;
    ll->ready_tail = cmd;
    if (!ll->stopped)
        uv_idle_start(&ll->idle, ll__on_idle);
}

static void ll__arm_timer(struct ll *ll);

static void ll__on_idle(uv_idle_t *h)
{
    struct ll *ll = h->data;
    /* only what is queued now: what driving queues waits for the next turn */
    struct ll__cmd *batch = ll->ready_head;
    ll->ready_head = ll->ready_tail = NULL;
    uv_idle_stop(h);
    while (batch != NULL) {
        struct ll__cmd *cmd = batch;
        batch = cmd->next_ready;
        cmd->queued = false;
        ll__cmd_drive(cmd); /* may free cmd */
    }
    if (!ll->stopped)
        ll__arm_timer(ll);
}

void ll__submit(struct ll *ll, struct ll__cmd *cmd, uint32_t idx, const struct dyn_req *rq)
{
    struct dyn_req r = *rq;
    r.id = ++ll->next_req;
    cmd->items[idx].state = LL__ITEM_SENT;
    cmd->outstanding++;
    ll__map_put(ll, r.id, cmd, idx);
    if (ll->stopped) {
        struct dyn_result res = {.err = DYN_ERR_UNAVAILABLE};
        snprintf(res.msg, sizeof(res.msg), "UNAVAILABLE the node is shutting down");
        struct ll__slot s;
        ll__map_take(ll, r.id, &s);
        ll__cmd_result(cmd, idx, &res);
        return;
    }
    dyn_submit(ll->d, &r, ll__now_ms());
    ll__arm_timer(ll); /* the request's timeout may be the next thing due */
}

/* ---- the local replica: database 0 objects, database 1 hints ---- */

/* One WAL record of one command, as cmd.c writes it (a deterministic SET
 * or DEL, replayed by cmd_replay): [u64 now_ms][u32 1][u32 db][u32 argc]
 * then [u32 len][bytes] per argument. Returns its lsn. */
static uint64_t ll__wal(struct ll *ll, int db, int argc, const char *const *argv,
                        const size_t *argvlen)
{
    struct tbuf *b = &ll->rec;
    tbuf_reset(b);
    tbuf_append_u64le(b, ll__now_ms());
    tbuf_append_u32le(b, 1);
    tbuf_append_u32le(b, (uint32_t)db);
    tbuf_append_u32le(b, (uint32_t)argc);
    for (int i = 0; i < argc; i++) {
        TRIAD_ASSERT(argvlen[i] <= UINT32_MAX);
        tbuf_append_u32le(b, (uint32_t)argvlen[i]);
        tbuf_append(b, argv[i], argvlen[i]);
    }
    ll->cmd->dirty++;
    TRIAD_ASSERT(ll->cmd->log_fn != NULL);
    uint64_t lsn = ll->cmd->log_fn(ll->cmd->log_arg, b->data, b->len);
    if (b->cap > (1u << 20))
        tbuf_free(b);
    return lsn;
}

/* Make val key's value (val NULL: remove key) in db, in memory now and in
 * the WAL. Returns the record's lsn, 0 if nothing changed. */
static uint64_t ll__store(struct ll *ll, int db, const char *key, size_t klen, const void *val,
                          size_t vlen)
{
    struct kv *kv = ll->cmd->db[db];
    int64_t now = (int64_t)ll__now_ms();
    if (val == NULL) {
        if (kv_del(kv, key, klen, now) != 0)
            return 0;
        const char *argv[2] = {"DEL", key};
        size_t argvlen[2] = {3, klen};
        return ll__wal(ll, db, 2, argv, argvlen);
    }
    kv_set(kv, key, klen, val, vlen, KV_NO_EXPIRE);
    const char *argv[3] = {"SET", key, val};
    size_t argvlen[3] = {3, klen, vlen};
    return ll__wal(ll, db, 3, argv, argvlen);
}

/* The core hears of a change once its record is durable, and not before:
 * a replica that acknowledged a write must still have it after a crash. */
static void ll__when_durable(struct ll *ll, uint64_t lsn, uint64_t token)
{
    if (token == 0)
        return; /* nobody waits for this one */
    if (ll->d != NULL && ll->tok_n == 0 && (lsn == 0 || lsn <= ll->hooks.durable_lsn(ll->hooks.arg))) {
        dyn_durable(ll->d, token);
        return;
    }
    if (ll->tok_n == ll->tok_cap) {
        size_t cap = ll->tok_cap ? ll->tok_cap * 2 : 64;
        struct ll__token *t = tmalloc(cap * sizeof(*t));
        for (size_t i = 0; i < ll->tok_n; i++)
            t[i] = ll->tokens[(ll->tok_head + i) % ll->tok_cap];
        tfree(ll->tokens);
        ll->tokens = t;
        ll->tok_cap = cap;
        ll->tok_head = 0;
    }
    /* a no-op (lsn 0) behind records still waiting keeps its place */
    uint64_t last = ll->tok_n ? ll->tokens[(ll->tok_head + ll->tok_n - 1) % ll->tok_cap].lsn : 0;
    ll->tokens[(ll->tok_head + ll->tok_n) % ll->tok_cap] =
        (struct ll__token){lsn > last ? lsn : last, token};
    ll->tok_n++;
}

static void ll__release_tokens(struct ll *ll, uint64_t durable)
{
    while (ll->tok_n > 0 && ll->d != NULL) {
        struct ll__token t = ll->tokens[ll->tok_head];
        if (t.lsn > durable)
            break;
        ll->tok_head = (ll->tok_head + 1) % ll->tok_cap;
        ll->tok_n--;
        dyn_durable(ll->d, t.token);
    }
}

static bool ll__decode(struct ll *ll, const char *what, const char *key, size_t klen,
                       const struct kv_val *v, struct dvv_obj *out)
{
    char err[160];
    if (dvv_decode(out, v->ptr, v->len, err, sizeof(err)) == 0)
        return true;
    ll__log(ll, LOG_WARNING, "leaderless: the stored %s of a key of %zu bytes does not decode "
                             "(%s): treated as absent", what, klen, err);
    return false;
}

static bool ll__io_get(void *arg, const char *key, size_t klen, struct dvv_obj *out)
{
    struct ll *ll = arg;
    struct kv_val v;
    if (kv_get(ll->cmd->db[LL_DB_OBJECTS], key, klen, (int64_t)ll__now_ms(), &v) != 0)
        return false;
    return ll__decode(ll, "object", key, klen, &v, out);
}

static void ll__io_put(void *arg, const char *key, size_t klen, const struct dvv_obj *o,
                       uint64_t token)
{
    struct ll *ll = arg;
    uint64_t lsn;
    if (o == NULL) {
        lsn = ll__store(ll, LL_DB_OBJECTS, key, klen, NULL, 0);
    } else {
        tbuf_reset(&ll->enc);
        dvv_encode(o, &ll->enc);
        lsn = ll__store(ll, LL_DB_OBJECTS, key, klen, ll->enc.data, ll->enc.len);
    }
    ll__when_durable(ll, lsn, token);
}

static struct ll__hints *ll__hints_of(struct ll *ll, uint32_t owner, bool add)
{
    for (size_t i = 0; i < ll->n_hints; i++)
        if (ll->hints[i].owner == owner)
            return &ll->hints[i];
    if (!add)
        return NULL;
    if (ll->n_hints == ll->cap_hints) {
        ll->cap_hints = ll->cap_hints ? ll->cap_hints * 2 : 8;
        ll->hints = trealloc(ll->hints, ll->cap_hints * sizeof(*ll->hints));
    }
    ll->hints[ll->n_hints] = (struct ll__hints){owner, 0};
    return &ll->hints[ll->n_hints++];
}

static bool ll__io_hint_get(void *arg, uint32_t owner, const char *key, size_t klen,
                            struct dvv_obj *out)
{
    struct ll *ll = arg;
    struct tbuf hk = {0};
    struct kv_val v;
    ll__hint_key(&hk, owner, key, klen);
    bool found = kv_get(ll->cmd->db[LL_DB_HINTS], hk.data, hk.len, (int64_t)ll__now_ms(), &v) == 0 &&
                 ll__decode(ll, "hint", key, klen, &v, out);
    tbuf_free(&hk);
    return found;
}

static void ll__io_hint_put(void *arg, uint32_t owner, const char *key, size_t klen,
                            const struct dvv_obj *o, uint64_t token)
{
    struct ll *ll = arg;
    struct tbuf hk = {0};
    ll__hint_key(&hk, owner, key, klen);
    struct kv *kv = ll->cmd->db[LL_DB_HINTS];
    bool had = kv_exists(kv, hk.data, hk.len, (int64_t)ll__now_ms());
    uint64_t lsn;
    if (o == NULL) {
        lsn = ll__store(ll, LL_DB_HINTS, hk.data, hk.len, NULL, 0);
    } else {
        tbuf_reset(&ll->enc);
        dvv_encode(o, &ll->enc);
        lsn = ll__store(ll, LL_DB_HINTS, hk.data, hk.len, ll->enc.data, ll->enc.len);
    }
    tbuf_free(&hk);
    struct ll__hints *h = ll__hints_of(ll, owner, true);
    if (!had && o != NULL) {
        h->n++;
        ll->hints_total++;
    } else if (had && o == NULL) {
        TRIAD_ASSERT(h->n > 0 && ll->hints_total > 0);
        h->n--;
        ll->hints_total--;
    }
    ll__when_durable(ll, lsn, token);
}

static uint64_t ll__io_hint_count(void *arg, uint32_t owner)
{
    struct ll *ll = arg;
    if (owner == 0)
        return ll->hints_total;
    const struct ll__hints *h = ll__hints_of(ll, owner, false);
    return h ? h->n : 0;
}

struct ll__scan {
    struct ll *ll;
    bool hints;
    uint32_t owner;
    uint64_t lo, hi;
    size_t max, seen;
    dyn_scan_cb cb;
    void *cbarg;
};

static int ll__scan_entry(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                          int64_t expire_ms)
{
    struct ll__scan *sc = arg;
    (void)expire_ms;
    if (sc->hints) {
        if (klen < 4)
            return 0;
        uint32_t owner = (uint32_t)(uint8_t)key[0] << 24 | (uint32_t)(uint8_t)key[1] << 16 |
                         (uint32_t)(uint8_t)key[2] << 8 | (uint32_t)(uint8_t)key[3];
        if (owner != sc->owner)
            return 0;
        key += 4;
        klen -= 4;
    } else if (!ring_in_range(sc->lo, sc->hi, ring_hash(key, klen))) {
        return 0;
    }
    struct dvv_obj o = {0};
    struct kv_val v = {.ptr = val, .len = vlen};
    if (!ll__decode(sc->ll, sc->hints ? "hint" : "object", key, klen, &v, &o))
        return 0;
    sc->cb(sc->cbarg, key, klen, &o);
    dvv_free(&o);
    sc->seen++;
    return sc->max != 0 && sc->seen >= sc->max;
}

static void ll__io_scan(void *arg, uint64_t lo, uint64_t hi, size_t max, dyn_scan_cb cb,
                        void *cbarg)
{
    struct ll *ll = arg;
    struct ll__scan sc = {.ll = ll, .lo = lo, .hi = hi, .max = max, .cb = cb, .cbarg = cbarg};
    kv_foreach(ll->cmd->db[LL_DB_OBJECTS], ll__scan_entry, &sc);
}

static void ll__io_scan_hints(void *arg, uint32_t owner, size_t max, dyn_scan_cb cb, void *cbarg)
{
    struct ll *ll = arg;
    struct ll__scan sc = {.ll = ll, .hints = true, .owner = owner, .max = max, .cb = cb,
                          .cbarg = cbarg};
    kv_foreach(ll->cmd->db[LL_DB_HINTS], ll__scan_entry, &sc);
}

static int ll__count_hint(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                          int64_t expire_ms)
{
    struct ll *ll = arg;
    (void)val, (void)vlen, (void)expire_ms;
    if (klen < 4)
        return 0;
    uint32_t owner = (uint32_t)(uint8_t)key[0] << 24 | (uint32_t)(uint8_t)key[1] << 16 |
                     (uint32_t)(uint8_t)key[2] << 8 | (uint32_t)(uint8_t)key[3];
    ll__hints_of(ll, owner, true)->n++;
    ll->hints_total++;
    return 0;
}

/* ---- the core's other io ---- */

static void ll__io_send(void *arg, const struct dyn_msg *m)
{
    struct ll *ll = arg;
    if (ll->stopped || ll->pn == NULL)
        return;
    if (peer_net_send_dyn(ll->pn, m) != 0)
        ll->sent_dropped++; /* best effort: the core retries or times out */
}

static void ll__io_reply(void *arg, uint64_t req_id, const struct dyn_result *r)
{
    struct ll *ll = arg;
    struct ll__slot s;
    if (!ll__map_take(ll, req_id, &s))
        return;
    ll__cmd_result(s.cmd, s.idx, r);
}

/* ---- peers ---- */

/* Point the transport at every node gossip knows (a node's address may
 * change when it restarts). */
static void ll__sync_peers(struct ll *ll)
{
    size_t n = gossip_states(dyn_gossip(ll->d), ll->states, GOSSIP_NODES_MAX);
    for (size_t i = 0; i < n; i++) {
        const struct gossip_state *s = &ll->states[i];
        if (s->id == ll->id || s->peer_port == 0 || s->host[0] == '\0')
            continue;
        size_t k = 0;
        while (k < ll->n_dialed && ll->dialed[k].id != s->id)
            k++;
        if (k < ll->n_dialed && ll->dialed[k].port == s->peer_port &&
            strcmp(ll->dialed[k].host, s->host) == 0)
            continue;
        if (k == ll->n_dialed && k == PEER_MEMBERS_MAX)
            continue;
        if (peer_net_set_member(ll->pn, s->id, s->host, s->peer_port) != 0) {
            ll__log(ll, LOG_WARNING, "leaderless: can't reach node %u at %s port %u (the peer "
                                     "transport takes numeric addresses, up to %u peers)",
                    (unsigned)s->id, s->host, (unsigned)s->peer_port, PEER_MEMBERS_MAX);
            if (k == ll->n_dialed)
                ll->n_dialed++;
        } else {
            ll__log(ll, LOG_VERBOSE, "leaderless: node %u is at %s port %u", (unsigned)s->id,
                    s->host, (unsigned)s->peer_port);
            if (k == ll->n_dialed)
                ll->n_dialed++;
        }
        ll->dialed[k].id = s->id;
        ll->dialed[k].port = s->peer_port;
        snprintf(ll->dialed[k].host, sizeof(ll->dialed[k].host), "%s", s->host);
    }
}

static void ll__on_timer(uv_timer_t *t);

static void ll__arm_timer(struct ll *ll)
{
    uint64_t now = ll__now_ms();
    uint64_t at = dyn_next_tick_ms(ll->d);
    if (at > now + LL_TIMER_MAX_MS)
        at = now + LL_TIMER_MAX_MS;
    if (at == ll->timer_at && uv_is_active((uv_handle_t *)&ll->timer))
        return;
    ll->timer_at = at;
    uv_timer_start(&ll->timer, ll__on_timer, at > now ? at - now : 0, 0);
}

static int ll__write_file(const char *dir, const char *name, const char *text, char *errmsg,
                          size_t errlen);

/* One log line when the node has pulled its ranges, and one when its
 * leave is done. */
static void ll__note_status(struct ll *ll)
{
    if (ll->was_joining && !dyn_joining(ll->d)) {
        ll->was_joining = false;
        const struct dyn_stats *st = dyn_stats(ll->d);
        ll__log(ll, LOG_NOTICE, "leaderless: joined the ring (%" PRIu64 " ranges, %" PRIu64
                                " keys pulled)", st->join_ranges_pulled, st->join_keys_received);
    }
    if (dyn_left(ll->d) && !ll->left_logged) {
        ll->left_logged = true;
        char err[256];
        if (ll__write_file(ll->cfg->dir, LL_LEFT_FILE, "left\n", err, sizeof(err)) != 0)
            ll__log(ll, LOG_WARNING, "leaderless: %s", err);
        ll__log(ll, LOG_NOTICE, "leaderless: left the ring; every key and hint is on the "
                                "nodes that own it now, and this node may be stopped");
    }
}

void ll_leave(struct ll *ll)
{
    if (!dyn_left(ll->d))
        ll__log(ll, LOG_NOTICE, "leaderless: leaving the ring: handing every key and hint off");
    dyn_leave(ll->d);
    ll__arm_timer(ll);
}

static void ll__on_timer(uv_timer_t *t)
{
    struct ll *ll = t->data;
    if (ll->stopped)
        return;
    ll->timer_at = 0;
    dyn_tick(ll->d, ll__now_ms());
    ll__sync_peers(ll);
    ll__note_status(ll);
    ll__arm_timer(ll);
}

static void ll__on_dyn(void *arg, raft_id from, const struct dyn_msg *m)
{
    struct ll *ll = arg;
    (void)from; /* peer.c checked m->from */
    if (ll->stopped)
        return;
    dyn_step(ll->d, m, ll__now_ms());
    if (m->type == DYN_MSG_GOSSIP || m->type == DYN_MSG_GOSSIP_REPLY)
        ll__sync_peers(ll);
    ll__arm_timer(ll);
}

static void ll__on_peer_log(void *arg, int level, const char *line)
{
    struct ll *ll = arg;
    ll->hooks.log(ll->hooks.arg, level, line);
}

void ll_durable(struct ll *ll, uint64_t lsn)
{
    if (ll->stopped)
        return;
    size_t before = ll->tok_n;
    ll__release_tokens(ll, lsn);
    if (ll->tok_n != before)
        ll__arm_timer(ll);
}

/* ---- identity on disk ---- */

static int ll__write_file(const char *dir, const char *name, const char *text, char *errmsg,
                          size_t errlen)
{
    char path[CONFIG_STR_MAX + 64], tmp[CONFIG_STR_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, name);
    int fd;
    int rc = fs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644, &fd);
    if (rc == 0) {
        rc = fs_write_all(fd, text, strlen(text));
        if (rc == 0)
            rc = fs_fsync(fd);
        fs_close(fd);
    }
    /* renamed, then the directory synced: the file is whole or absent */
    if (rc == 0)
        rc = fs_rename(tmp, path);
    if (rc == 0)
        rc = fs_sync_dir(dir);
    if (rc != 0)
        snprintf(errmsg, errlen, "can't write %s: %s", path, strerror(errno));
    return rc;
}

/* The file's first line as a u64 in base 16 or 10; false if absent or not a number. */
static bool ll__read_u64(const char *dir, const char *name, int base, uint64_t *out)
{
    char path[CONFIG_STR_MAX + 64], buf[64] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    bool ok = fgets(buf, sizeof(buf), f) != NULL;
    fclose(f);
    if (!ok)
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, base);
    if (errno != 0 || end == buf || (*end != '\n' && *end != '\0'))
        return false;
    *out = v;
    return true;
}

/* The actor id (dynamo.h): kept across a clean restart; new after a crash,
 * since a version made under the old one may have left in a reply or a
 * PUT before it was durable, and the old actor's next dot would then name
 * two writes; new too for a node without data (new, or wiped). A clean
 * shutdown leaves the `clean` file once everything is durable
 * (ll_shutdown_clean); a start removes it, durably, before the actor makes
 * anything. */
static int ll__identity(struct ll *ll, bool fresh, char *errmsg, size_t errlen)
{
    char left[CONFIG_STR_MAX + 16];
    snprintf(left, sizeof(left), "%s/%s", ll->cfg->dir, LL_LEFT_FILE);
    if (!fresh && access(left, F_OK) == 0) {
        /* its data was handed off and the others dropped it: coming back
         * on it would serve stale copies as a full member */
        snprintf(errmsg, errlen, "this node left the ring (%s): to add it again, start it with an "
                                 "empty --dir and --join yes", left);
        return -1;
    }
    const char *dir = ll->cfg->dir;
    char path[CONFIG_STR_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, LL_CLEAN_FILE);
    bool clean = access(path, F_OK) == 0;
    if (clean && (fs_unlink(path) != 0 || fs_sync_dir(dir) != 0)) {
        snprintf(errmsg, errlen, "can't remove %s: %s", path, strerror(errno));
        return -1;
    }
    uint64_t actor = 0;
    bool have = !fresh && clean && ll__read_u64(dir, LL_ACTOR_FILE, 16, &actor) && actor != 0;
    ll->actor_why = fresh ? "new: no data" : have ? "kept: clean shutdown"
                                                  : "new: the last run did not shut down cleanly";
    if (!have) {
        while (actor == 0)
            if (getrandom(&actor, sizeof(actor), 0) != (ssize_t)sizeof(actor))
                actor = ll__now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
        char text[32];
        snprintf(text, sizeof(text), "%016" PRIx64 "\n", actor);
        if (ll__write_file(dir, LL_ACTOR_FILE, text, errmsg, errlen) != 0)
            return -1;
    }
    ll->actor = actor;
    /* the gossip generation only grows, even if the clock steps back */
    uint64_t prev = 0, gen = ll__now_ms();
    if (ll__read_u64(dir, LL_GENERATION_FILE, 10, &prev) && prev >= gen)
        gen = prev + 1;
    char text[32];
    snprintf(text, sizeof(text), "%" PRIu64 "\n", gen);
    if (ll__write_file(dir, LL_GENERATION_FILE, text, errmsg, errlen) != 0)
        return -1;
    ll->generation = gen;
    return 0;
}

/* ---- INFO ---- */

static const char *ll__status_name(uint8_t st)
{
    switch (st) {
    case GOSSIP_JOINING: return "joining";
    case GOSSIP_NORMAL: return "normal";
    case GOSSIP_LEAVING: return "leaving";
    case GOSSIP_LEFT: return "left";
    default: return "unknown";
    }
}

void ll_info(struct ll *ll, struct tbuf *t)
{
    const struct dyn_stats *st = dyn_stats(ll->d);
    const struct ring *ring = dyn_ring(ll->d);
    struct gossip *g = dyn_gossip(ll->d);
    uint64_t now = ll__now_ms();
    uint32_t members[RING_NODES_MAX];
    size_t nm = ring_members(ring, members, RING_NODES_MAX);
    const struct gossip_state *me = gossip_get(g, ll->id);
    tbuf_appendf(t, "mode:leaderless\r\nnode_id:%u\r\nstatus:%s\r\nactor:%016" PRIx64 "\r\n"
                    "generation:%" PRIu64 "\r\nn:%u\r\nr:%u\r\nw:%u\r\nsloppy_quorum:%d\r\n",
                 (unsigned)ll->id, ll__status_name(me ? me->status : 0), ll->actor,
                 ll->generation, (unsigned)ll->dc.n, (unsigned)ll->dc.r, (unsigned)ll->dc.w,
                 ll->dc.sloppy ? 1 : 0);
    tbuf_appendf(t, "ring_members:%zu\r\nring_vnodes:%u\r\nring_ownership:%.6f\r\n", nm,
                 (unsigned)ring_vnodes(ring),
                 nm ? ring_share_ppm(ring, ll->id, ll->dc.n) / 1e6 : 0.0);
    tbuf_appendf(t,
                 "reads:%" PRIu64 "\r\nwrites:%" PRIu64 "\r\nreads_failed:%" PRIu64
                 "\r\nwrites_failed:%" PRIu64 "\r\nwrites_forwarded:%" PRIu64 "\r\n"
                 "hints_pending:%" PRIu64 "\r\nhints_stored:%" PRIu64 "\r\nhints_delivered:%" PRIu64
                 "\r\nhints_refused:%" PRIu64 "\r\nread_repairs:%" PRIu64 "\r\nae_exchanges:%" PRIu64
                 "\r\nae_keys_repaired:%" PRIu64 "\r\nae_bytes_sent:%" PRIu64
                 "\r\ntombstones_purged:%" PRIu64 "\r\njoin_ranges_pulled:%" PRIu64
                 "\r\njoin_keys_received:%" PRIu64 "\r\nclock_refused:%" PRIu64
                 "\r\nmessages_dropped:%" PRIu64 "\r\n",
                 st->reads, st->writes, st->reads_failed, st->writes_failed, st->forwarded,
                 ll->hints_total, st->hints_stored, st->hints_delivered, st->hints_refused,
                 st->read_repairs, st->ae_exchanges, st->ae_keys_repaired, st->ae_bytes_sent,
                 st->tombstones_purged, st->join_ranges_pulled, st->join_keys_received,
                 st->clock_refused, ll->sent_dropped);
    size_t n = gossip_states(g, ll->states, GOSSIP_NODES_MAX);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        const struct gossip_state *s = &ll->states[i];
        if (s->id == ll->id)
            continue;
        tbuf_appendf(t, "peer%d:id=%u,addr=%s:%u,status=%s,phi=%.2f,alive=%d,connected=%d\r\n",
                     k++, (unsigned)s->id, s->host, (unsigned)s->peer_port,
                     ll__status_name(s->status), gossip_phi(g, s->id, now),
                     gossip_alive(g, s->id, now) ? 1 : 0,
                     peer_net_connected(ll->pn, s->id) ? 1 : 0);
    }
    /* seeds no state has come from yet */
    for (size_t i = 0; i < ll->n_dialed; i++) {
        if (gossip_get(g, ll->dialed[i].id) != NULL)
            continue;
        tbuf_appendf(t, "peer%d:id=%u,addr=%s:%d,status=unknown,phi=0.00,alive=0,connected=%d\r\n",
                     k++, (unsigned)ll->dialed[i].id, ll->dialed[i].host, ll->dialed[i].port,
                     peer_net_connected(ll->pn, ll->dialed[i].id) ? 1 : 0);
    }
}

/* ---- start and stop ---- */

int ll_open(struct ll **out, uv_loop_t *loop, const struct config *cfg, struct cmd_server *cmd,
            bool fresh, const struct ll_hooks *hooks, char *errmsg, size_t errlen)
{
    struct config_peer peers[CONFIG_PEERS_MAX];
    const struct config_peer *self;
    int n = config_peers_self(cfg, peers, &self, errmsg, errlen);
    if (n < 0)
        return -1;
    if (cmd->databases < 2) {
        snprintf(errmsg, errlen, "leaderless mode keeps hints in database 1: databases must be "
                                 "at least 2");
        return -1;
    }
    if (!triad_host_ok(self->host, strlen(self->host), GOSSIP_HOST_MAX)) {
        snprintf(errmsg, errlen, "bad peer host '%s' for this node", self->host);
        return -1;
    }
    struct ll *ll = tcalloc(1, sizeof(*ll));
    ll->cfg = cfg;
    ll->hooks = *hooks;
    ll->loop = loop;
    ll->cmd = cmd;
    ll->id = (uint32_t)cfg->node_id;
    if (ll__identity(ll, fresh, errmsg, errlen) != 0) {
        tfree(ll);
        return -1;
    }
    kv_foreach(cmd->db[LL_DB_HINTS], ll__count_hint, ll);

    struct dyn_config *dc = &ll->dc;
    dyn_config_default(dc, ll->id);
    dc->actor = ll->actor;
    dc->n = (uint32_t)cfg->replicas;
    dc->r = (uint32_t)cfg->read_quorum;
    dc->w = (uint32_t)cfg->write_quorum;
    dc->vnodes = (uint32_t)cfg->vnodes;
    dc->sloppy = cfg->sloppy_quorum != 0;
    dc->request_timeout_ms = (uint64_t)cfg->request_timeout_ms;
    dc->hints_max = (uint64_t)cfg->hints_max;
    dc->ae_interval_ms = (uint64_t)cfg->anti_entropy_interval_ms;
    dc->tombstone_grace_ms = (uint64_t)cfg->tombstone_grace_ms;
    dc->gossip.interval_ms = (uint64_t)cfg->gossip_interval_ms;
    dc->gossip.phi_convict = (double)cfg->phi_convict_threshold;

    /* A new node joining a running cluster (--join, with no data) streams
     * the ranges it will replicate before it takes them (dynamo.h); the
     * founding members and every restart start NORMAL. */
    uint8_t status = fresh && cfg->join ? GOSSIP_JOINING : GOSSIP_NORMAL;
    struct gossip_state me = {.id = ll->id, .generation = ll->generation, .version = 0,
                              .status = status, .peer_port = (uint16_t)self->port,
                              .client_port = (uint16_t)cfg->port};
    snprintf(me.host, sizeof(me.host), "%s", self->host);
    struct dyn_io io = {
        .arg = ll,
        .send = ll__io_send,
        .get = ll__io_get,
        .put = ll__io_put,
        .hint_get = ll__io_hint_get,
        .hint_put = ll__io_hint_put,
        .hint_count = ll__io_hint_count,
        .scan = ll__io_scan,
        .scan_hints = ll__io_scan_hints,
        .reply = ll__io_reply,
    };
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        seed = ll__now_ms() ^ ll->actor;

    struct peer_net_config pc = {
        .loop = loop,
        .self = ll->id,
        .cluster_id = XXH3_64bits(cfg->cluster_id, strlen(cfg->cluster_id)),
        .secret = cfg->cluster_secret,
        .listen_host = self->host,
        .listen_port = self->port,
        .announce = {.client_port = (uint16_t)cfg->port},
        .open_membership = true,
        .cb = {.arg = ll, .on_dyn = ll__on_dyn, .on_log = ll__on_peer_log},
    };
    snprintf(pc.announce.host, sizeof(pc.announce.host), "%s", self->host);
    if (peer_net_start(&ll->pn, &pc, errmsg, errlen) != 0)
        goto err_free;

    ll__log(ll, LOG_NOTICE,
            "leaderless: node %u, actor %016" PRIx64 " (%s), generation %" PRIu64
            ", N=%d R=%d W=%d, %s quorum, %" PRIu64 " hint(s) held",
            (unsigned)ll->id, ll->actor, ll->actor_why, ll->generation, cfg->replicas,
            cfg->read_quorum, cfg->write_quorum, cfg->sloppy_quorum ? "sloppy" : "strict",
            ll->hints_total);
    ll->d = dyn_new(dc, &io, &me, seed, ll__now_ms());
    if (ll->d == NULL) {
        snprintf(errmsg, errlen, "the leaderless core refused its configuration");
        peer_net_close(ll->pn, NULL, NULL);
        goto err_free;
    }
    ll->was_joining = dyn_joining(ll->d);
    uv_timer_init(loop, &ll->timer);
    ll->timer.data = ll;
    uv_idle_init(loop, &ll->idle);
    ll->idle.data = ll;
    ll__release_tokens(ll, hooks->durable_lsn(hooks->arg));
    for (int i = 0; i < n; i++) {
        if (peers[i].id == cfg->node_id)
            continue;
        dyn_add_seed(ll->d, (uint32_t)peers[i].id);
        if (peer_net_set_member(ll->pn, (raft_id)peers[i].id, peers[i].host, peers[i].port) != 0) {
            ll__log(ll, LOG_WARNING, "leaderless: bad seed address %s:%d for node %d (numeric "
                                     "addresses only)", peers[i].host, peers[i].port, peers[i].id);
            continue;
        }
        if (ll->n_dialed < PEER_MEMBERS_MAX) {
            struct ll__dialed *dl = &ll->dialed[ll->n_dialed++];
            dl->id = (uint32_t)peers[i].id;
            dl->port = peers[i].port;
            snprintf(dl->host, sizeof(dl->host), "%s", peers[i].host);
        }
    }
    ll__arm_timer(ll);
    *out = ll;
    return 0;

err_free:
    /* the peer transport's handles close on their own; nothing of ll is in them */
    tfree(ll->hints);
    tfree(ll);
    *out = NULL;
    return -1;
}

void ll_stop(struct ll *ll)
{
    if (ll->stopped)
        return;
    ll->stopped = true;
    uv_timer_stop(&ll->timer);
    uv_close((uv_handle_t *)&ll->timer, NULL);
    uv_idle_stop(&ll->idle);
    uv_close((uv_handle_t *)&ll->idle, NULL);
    if (ll->pn != NULL)
        peer_net_close(ll->pn, NULL, NULL);
    ll->pn = NULL;
}

void ll_shutdown_clean(struct ll *ll)
{
    char err[CONFIG_STR_MAX + 128];
    TRIAD_ASSERT(ll->stopped);
    if (ll__write_file(ll->cfg->dir, LL_CLEAN_FILE, "clean\n", err, sizeof(err)) != 0)
        ll__log(ll, LOG_WARNING, "leaderless: %s (the next start takes a new actor id)", err);
}

void ll_free(struct ll *ll)
{
    if (ll == NULL)
        return;
    TRIAD_ASSERT(ll->stopped);
    /* commands whose sessions are gone and whose answers never came */
    while (ll->cmds != NULL) {
        struct ll__cmd *cmd = ll->cmds;
        cmd->queued = false;
        ll__cmd_unlink(ll, cmd);
        cmd->prev_all = cmd->next_all = NULL;
        if (cmd->ls != NULL)
            cmd->ls->cmd = NULL;
        ll__cmd_free(cmd);
    }
    if (ll->d != NULL)
        dyn_free(ll->d);
    tfree(ll->tokens);
    tfree(ll->hints);
    tfree(ll->map);
    tbuf_free(&ll->rec);
    tbuf_free(&ll->enc);
    tfree(ll);
}
