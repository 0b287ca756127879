/* leaderless_cmd.c - the client commands of leaderless mode (see
 * leaderless.h: ll_command): GET, SET, DEL, EXISTS, MGET, MSET over the
 * core's quorum reads and writes, TRIAD.GETALL and TRIAD.PUT for siblings
 * and causal contexts, TRIAD.CONSISTENCY per connection, READONLY, and
 * TRIAD.REPLICAS (a key's preference list, as Cassandra's `nodetool
 * getendpoints` or Riak's preflist).
 *
 * A connection keeps, for its last LL_SESSION_CTX_MAX keys, the version
 * vector of what its last result for the key showed (joined over its
 * results, so a stale read never takes knowledge away), and passes it as
 * the context of its plain SET and DEL: one client's writes in sequence
 * supersede each other and never become siblings, whichever replica
 * coordinates them (dynamo.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/mem.h"
#include "../common/num.h"
#include "leaderless_int.h"
#include "resp.h"

/* A value larger than this could not travel in one peer frame with the
 * object around it (PEER_PAYLOAD_BYTES_MAX, 64 MiB), together with a few
 * siblings. */
#define LL_VALUE_BYTES_MAX (32u << 20)

enum ll_level { LL_LEVEL_DEFAULT = 0, LL_LEVEL_ONE, LL_LEVEL_TWO, LL_LEVEL_THREE,
                LL_LEVEL_QUORUM, LL_LEVEL_ALL, LL_LEVEL_NUM };

/* What a command is. */
enum { LL__K_GET = 1, LL__K_SET, LL__K_DEL, LL__K_EXISTS, LL__K_MGET, LL__K_MSET, LL__K_GETALL,
       LL__K_PUT };

static bool cmd_is(const char *arg, size_t len, const char *name)
{
    return len == strlen(name) && strncasecmp(arg, name, len) == 0;
}

static void arity_error(struct tbuf *out, const char *name)
{
    tbuf_appendf(out, "-ERR wrong number of arguments for '%s' command\r\n", name);
}

/* ---- the session's causal context ---- */

static uint64_t key_hash(const char *key, size_t klen)
{
    return XXH3_64bits(key, klen);
}

static struct ll_ctx_entry *ctx_find(struct ll_session *ls, const char *key, size_t klen)
{
    uint64_t h = key_hash(key, klen);
    for (uint32_t i = 0; i < ls->n_ctx; i++) {
        struct ll_ctx_entry *e = &ls->ctx[i];
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    }
    return NULL;
}

/* What the connection has seen of key grows by vv. The oldest entry makes
 * room once LL_SESSION_CTX_MAX keys are held (FIFO). */
static void ctx_saw(struct ll_session *ls, const char *key, size_t klen,
                    const struct dvv_clock *vv)
{
    struct ll_ctx_entry *e = ctx_find(ls, key, klen);
    if (e == NULL) {
        if (ls->ctx == NULL)
            ls->ctx = tcalloc(LL_SESSION_CTX_MAX, sizeof(*ls->ctx));
        if (ls->n_ctx < LL_SESSION_CTX_MAX) {
            e = &ls->ctx[ls->n_ctx++];
        } else {
            e = &ls->ctx[ls->next_ctx];
            ls->next_ctx = (ls->next_ctx + 1) % LL_SESSION_CTX_MAX;
            tfree(e->key);
            dvv_clock_free(&e->vv);
        }
        e->hash = key_hash(key, klen);
        e->key = tmalloc(klen ? klen : 1);
        memcpy(e->key, key, klen);
        e->klen = klen;
        memset(&e->vv, 0, sizeof(e->vv));
    }
    dvv_clock_join(&e->vv, vv);
}

static void ctx_clear(struct ll_session *ls)
{
    for (uint32_t i = 0; i < ls->n_ctx; i++) {
        tfree(ls->ctx[i].key);
        dvv_clock_free(&ls->ctx[i].vv);
    }
    tfree(ls->ctx);
    ls->ctx = NULL;
    ls->n_ctx = ls->next_ctx = 0;
}

void ll_session_reset(struct ll_session *ls)
{
    ls->r_level = ls->w_level = LL_LEVEL_DEFAULT;
    ls->r_num = ls->w_num = 0;
    ls->readonly = false;
    ctx_clear(ls);
}

void ll_session_free(struct ll_session *ls)
{
    ctx_clear(ls);
    if (ls->cmd != NULL) {
        struct ll__cmd *cmd = ls->cmd;
        ls->cmd = NULL;
        cmd->ls = NULL;
        ll__ready(cmd->ll, cmd); /* freed once nothing of it is in the core */
    }
    memset(ls, 0, sizeof(*ls));
}

/* ---- levels ---- */

static uint32_t level_value(uint8_t level, uint8_t num, uint32_t n)
{
    switch (level) {
    case LL_LEVEL_ONE: return 1;
    case LL_LEVEL_TWO: return TRIAD_MIN(2u, n);
    case LL_LEVEL_THREE: return TRIAD_MIN(3u, n);
    case LL_LEVEL_QUORUM: return n / 2 + 1;
    case LL_LEVEL_ALL: return n;
    case LL_LEVEL_NUM: return num;
    default: return 0; /* the configured R or W */
    }
}

static void level_bulk(struct tbuf *out, uint8_t level, uint8_t num, uint32_t dflt)
{
    static const char *const names[] = {[LL_LEVEL_ONE] = "ONE", [LL_LEVEL_TWO] = "TWO",
                                        [LL_LEVEL_THREE] = "THREE", [LL_LEVEL_QUORUM] = "QUORUM",
                                        [LL_LEVEL_ALL] = "ALL"};
    char buf[16];
    if (level == LL_LEVEL_DEFAULT || level == LL_LEVEL_NUM)
        snprintf(buf, sizeof(buf), "%u", level == LL_LEVEL_NUM ? (unsigned)num : (unsigned)dflt);
    else
        snprintf(buf, sizeof(buf), "%s", names[level]);
    resp_add_bulk_str(out, buf);
}

static bool level_parse(const char *v, size_t vl, uint32_t n, uint8_t *level, uint8_t *num)
{
    static const struct {
        const char *name;
        uint8_t level;
    } names[] = {{"ONE", LL_LEVEL_ONE}, {"TWO", LL_LEVEL_TWO}, {"THREE", LL_LEVEL_THREE},
                 {"QUORUM", LL_LEVEL_QUORUM}, {"ALL", LL_LEVEL_ALL}};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(names); i++)
        if (cmd_is(v, vl, names[i].name)) {
            if ((names[i].level == LL_LEVEL_TWO && n < 2) ||
                (names[i].level == LL_LEVEL_THREE && n < 3))
                return false;
            *level = names[i].level;
            *num = 0;
            return true;
        }
    uint64_t k;
    if (!triad_parse_u64(v, vl, &k) || k < 1 || k > n)
        return false;
    *level = LL_LEVEL_NUM;
    *num = (uint8_t)k;
    return true;
}

/* TRIAD.CONSISTENCY [R level] [W level] */
static void triad_consistency(struct ll *ll, struct ll_session *ls, int argc, char **argv,
                              size_t *argvlen, struct tbuf *out)
{
    uint32_t n = ll__n(ll);
    if (argc == 1) {
        tbuf_appends(out, "*4\r\n$1\r\nR\r\n");
        level_bulk(out, ls->r_level, ls->r_num, ll__default_level(ll, false));
        tbuf_appends(out, "$1\r\nW\r\n");
        level_bulk(out, ls->w_level, ls->w_num, ll__default_level(ll, true));
        return;
    }
    uint8_t rl = ls->r_level, rn = ls->r_num, wl = ls->w_level, wn = ls->w_num;
    for (int i = 1; i < argc; i += 2) {
        bool r = cmd_is(argv[i], argvlen[i], "R"), w = cmd_is(argv[i], argvlen[i], "W");
        if (i + 1 >= argc || (!r && !w)) {
            tbuf_appends(out, "-ERR syntax error: TRIAD.CONSISTENCY [R level] [W level]\r\n");
            return;
        }
        bool ok = r ? level_parse(argv[i + 1], argvlen[i + 1], n, &rl, &rn)
                    : level_parse(argv[i + 1], argvlen[i + 1], n, &wl, &wn);
        if (!ok) {
            tbuf_appendf(out,
                         "-ERR invalid %s level: use ONE, TWO, THREE, QUORUM, ALL or a number "
                         "from 1 to %u (N)\r\n",
                         r ? "R" : "W", (unsigned)n);
            return;
        }
    }
    ls->r_level = rl;
    ls->r_num = rn;
    ls->w_level = wl;
    ls->w_num = wn;
    tbuf_appends(out, "+OK\r\n");
}

/* ---- commands in flight ---- */

void ll__cmd_free(struct ll__cmd *cmd)
{
    TRIAD_ASSERT(!cmd->queued);
    for (uint32_t i = 0; i < cmd->n; i++)
        dvv_clock_free(&cmd->items[i].ctx);
    tfree(cmd->items);
    tfree(cmd->args);
    tbuf_free(&cmd->frags);
    tfree(cmd);
}

static bool kind_is_read(uint8_t kind)
{
    return kind == LL__K_GET || kind == LL__K_MGET || kind == LL__K_EXISTS ||
           kind == LL__K_GETALL;
}

/* A command of n items, their keys (and values) copied: the parser's
 * argv is gone once ll_command returns, while the window feeds the core
 * from the copies. keys[i] at argv[first + i * step], values after them. */
static struct ll__cmd *cmd_new(struct ll *ll, struct ll_session *ls, struct cmd_client *cc,
                               uint64_t req_id, uint8_t kind, uint32_t n, char **argv,
                               size_t *argvlen, int first, int step, bool with_values)
{
    struct ll__cmd *cmd = tcalloc(1, sizeof(*cmd));
    cmd->ls = ls;
    cmd->req_id = req_id;
    cmd->kind = kind;
    cmd->proto = cc->proto;
    cmd->n = n;
    cmd->items = tcalloc(n, sizeof(*cmd->items));
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        int a = first + (int)i * step;
        bytes += argvlen[a] + (with_values ? argvlen[a + 1] : 0);
    }
    cmd->args = tmalloc(bytes ? bytes : 1);
    char *w = cmd->args;
    for (uint32_t i = 0; i < n; i++) {
        int a = first + (int)i * step;
        struct ll__item *it = &cmd->items[i];
        memcpy(w, argv[a], argvlen[a]);
        it->key = w;
        it->klen = argvlen[a];
        w += argvlen[a];
        if (with_values) {
            memcpy(w, argv[a + 1], argvlen[a + 1]);
            it->val = w;
            it->vlen = argvlen[a + 1];
            w += argvlen[a + 1];
        }
    }
    if (kind_is_read(kind)) {
        cmd->r = level_value(ls->r_level, ls->r_num, ll__n(ll));
        cmd->local = ls->readonly;
    } else {
        cmd->w = level_value(ls->w_level, ls->w_num, ll__n(ll));
    }
    ll__cmd_link(ll, cmd);
    ls->cmd = cmd;
    return cmd;
}

static int item_cmp(const void *a, const void *b, void *arg)
{
    const struct ll__cmd *cmd = arg;
    const struct ll__item *x = &cmd->items[*(const uint32_t *)a];
    const struct ll__item *y = &cmd->items[*(const uint32_t *)b];
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    int c = memcmp(x->key, y->key, x->klen);
    if (c != 0)
        return c;
    return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* One write per key: of MSET's repeats the last value counts (as in
 * Redis), of DEL's the first is the one deleted and counted. Two writes of
 * one key in flight at once would not see each other: siblings. */
static void cmd_dedup(struct ll__cmd *cmd, bool keep_last)
{
    if (cmd->n < 2)
        return;
    uint32_t *ix = tmalloc(cmd->n * sizeof(*ix));
    for (uint32_t i = 0; i < cmd->n; i++)
        ix[i] = i;
    qsort_r(ix, cmd->n, sizeof(*ix), item_cmp, cmd);
    for (uint32_t i = 0; i + 1 < cmd->n; i++) {
        struct ll__item *x = &cmd->items[ix[i]], *y = &cmd->items[ix[i + 1]];
        if (x->klen != y->klen || memcmp(x->key, y->key, x->klen) != 0)
            continue;
        /* ix is sorted by index within a key: x came first */
        struct ll__item *skip = keep_last ? x : y;
        if (!keep_last) /* keep the first: carry it forward for the next comparison */
            ix[i + 1] = ix[i];
        skip->state = LL__ITEM_DONE;
        cmd->done++;
    }
    tfree(ix);
}

static void frag_begin(struct ll__cmd *cmd, struct ll__item *it)
{
    it->off = (uint32_t)cmd->frags.len;
}

static void frag_end(struct ll__cmd *cmd, struct ll__item *it)
{
    TRIAD_ASSERT(cmd->frags.len - it->off <= UINT32_MAX);
    it->len = (uint32_t)(cmd->frags.len - it->off);
}

/* Siblings newest first, as GET picks its winner: by (ts, node, dot). */
static int sib_cmp_desc(const void *a, const void *b)
{
    const struct dvv_sib *x = *(const struct dvv_sib *const *)a;
    const struct dvv_sib *y = *(const struct dvv_sib *const *)b;
    if (x->ts != y->ts)
        return x->ts > y->ts ? -1 : 1;
    if (x->node != y->node)
        return x->node > y->node ? -1 : 1;
    if (x->dot.actor != y->dot.actor)
        return x->dot.actor > y->dot.actor ? -1 : 1;
    if (x->dot.counter != y->dot.counter)
        return x->dot.counter > y->dot.counter ? -1 : 1;
    return 0;
}

/* TRIAD.GETALL's answer: the context, then each sibling's value (nil for a
 * tombstone), the one GET answers with first. */
static void getall_reply(struct tbuf *out, int proto, const struct dvv_obj *o)
{
    struct dvv_clock empty = {0};
    struct tbuf ctx = {0};
    dvv_context_encode(o ? &o->vv : &empty, &ctx);
    uint32_t n = o ? o->n_sibs : 0;
    const struct dvv_sib **sibs = tmalloc((n ? n : 1) * sizeof(*sibs));
    for (uint32_t i = 0; i < n; i++)
        sibs[i] = &o->sibs[i];
    qsort(sibs, n, sizeof(*sibs), sib_cmp_desc);
    /* GET's answer first, as vclock.h picks it (the same order, but the
     * core's word is the one GET goes by) */
    const struct dvv_sib *win = n ? dvv_winner(o) : NULL;
    for (uint32_t i = 1; win != NULL && i < n && sibs[0] != win; i++)
        if (sibs[i] == win) {
            memmove(sibs + 1, sibs, i * sizeof(*sibs));
            sibs[0] = win;
        }
    resp_add_array_len(out, 1 + (long long)n);
    resp_add_bulk(out, ctx.data, ctx.len);
    for (uint32_t i = 0; i < n; i++) {
        if (sibs[i]->tombstone)
            resp_add_null(out, proto);
        else
            resp_add_bulk(out, sibs[i]->value, sibs[i]->len);
    }
    tfree(sibs);
    tbuf_free(&ctx);
}

void ll__cmd_result(struct ll__cmd *cmd, uint32_t idx, const struct dyn_result *r)
{
    TRIAD_ASSERT(idx < cmd->n);
    struct ll__item *it = &cmd->items[idx];
    TRIAD_ASSERT(it->state == LL__ITEM_SENT);
    TRIAD_ASSERT(cmd->outstanding > 0);
    it->state = LL__ITEM_DONE;
    cmd->outstanding--;
    cmd->done++;
    ll__ready(cmd->ll, cmd);
    if (cmd->ls == NULL)
        return;
    frag_begin(cmd, it);
    if (r->err != DYN_OK) {
        it->err = true;
        resp_add_error(&cmd->frags, r->msg[0] ? r->msg : "ERR the leaderless request failed");
        frag_end(cmd, it);
        return;
    }
    const struct dvv_obj *o = r->obj;
    if (o != NULL)
        ctx_saw(cmd->ls, it->key, it->klen, &o->vv);
    switch (cmd->kind) {
    case LL__K_GET:
    case LL__K_MGET: {
        const struct dvv_sib *win = o ? dvv_winner(o) : NULL;
        if (win == NULL || win->tombstone)
            resp_add_null(&cmd->frags, cmd->proto);
        else
            resp_add_bulk(&cmd->frags, win->value, win->len);
        break;
    }
    case LL__K_EXISTS:
        it->flag = o != NULL && !dvv_deleted(o);
        break;
    case LL__K_DEL:
        it->flag = r->existed;
        break;
    case LL__K_GETALL:
        getall_reply(&cmd->frags, cmd->proto, o);
        break;
    default:
        break; /* SET, MSET, PUT: +OK */
    }
    frag_end(cmd, it);
}

static void item_submit(struct ll__cmd *cmd, uint32_t i)
{
    struct ll__item *it = &cmd->items[i];
    static const uint8_t ops[] = {[LL__K_GET] = DYN_OP_GET,       [LL__K_SET] = DYN_OP_SET,
                                  [LL__K_DEL] = DYN_OP_DEL,       [LL__K_EXISTS] = DYN_OP_GET,
                                  [LL__K_MGET] = DYN_OP_GET,      [LL__K_MSET] = DYN_OP_SET,
                                  [LL__K_GETALL] = DYN_OP_GETALL, [LL__K_PUT] = DYN_OP_PUT};
    struct dyn_req rq = {.op = ops[cmd->kind], .key = it->key, .klen = it->klen,
                         .value = it->val, .vlen = it->vlen, .r = cmd->r, .w = cmd->w,
                         .local = cmd->local};
    if (cmd->kind == LL__K_SET || cmd->kind == LL__K_MSET || cmd->kind == LL__K_DEL) {
        /* what the connection has seen of the key, copied: the cache may
         * drop it before the core is done */
        const struct ll_ctx_entry *e = ctx_find(cmd->ls, it->key, it->klen);
        if (e != NULL)
            dvv_clock_copy(&it->ctx, &e->vv);
        rq.ctx = &it->ctx;
    } else if (cmd->kind == LL__K_PUT) {
        rq.ctx = &it->ctx;
    }
    ll__submit(cmd->ll, cmd, i, &rq);
}

/* The whole answer, from the items' fragments. */
static void cmd_answer(struct ll__cmd *cmd, struct tbuf *out)
{
    const struct ll__item *first_err = NULL;
    for (uint32_t i = 0; i < cmd->n && first_err == NULL; i++)
        if (cmd->items[i].err)
            first_err = &cmd->items[i];
    if (first_err != NULL && cmd->kind != LL__K_GET && cmd->kind != LL__K_GETALL) {
        tbuf_append(out, cmd->frags.data + first_err->off, first_err->len);
        return;
    }
    switch (cmd->kind) {
    case LL__K_GET:
    case LL__K_GETALL:
        tbuf_append(out, cmd->frags.data + cmd->items[0].off, cmd->items[0].len);
        return;
    case LL__K_MGET:
        resp_add_array_len(out, cmd->n);
        for (uint32_t i = 0; i < cmd->n; i++)
            tbuf_append(out, cmd->frags.data + cmd->items[i].off, cmd->items[i].len);
        return;
    case LL__K_DEL:
    case LL__K_EXISTS: {
        long long k = 0;
        for (uint32_t i = 0; i < cmd->n; i++)
            k += cmd->items[i].flag;
        resp_add_int(out, k);
        return;
    }
    default:
        tbuf_appends(out, "+OK\r\n");
        return;
    }
}

void ll__cmd_drive(struct ll__cmd *cmd)
{
    struct ll *ll = cmd->ll;
    if (cmd->ls == NULL) {
        /* the connection is gone: wait for what is in the core, then go */
        if (cmd->outstanding == 0) {
            ll__cmd_unlink(ll, cmd);
            ll__cmd_free(cmd);
        }
        return;
    }
    cmd->driving = true;
    /* a submit may be answered at once, which opens the window again */
    while (cmd->next < cmd->n && cmd->outstanding < LL_CMD_WINDOW) {
        uint32_t i = cmd->next++;
        if (cmd->items[i].state == LL__ITEM_NEW)
            item_submit(cmd, i);
    }
    cmd->driving = false;
    if (cmd->done < cmd->n)
        return;
    TRIAD_ASSERT(cmd->outstanding == 0);
    struct tbuf out = {0};
    cmd_answer(cmd, &out);
    cmd->ls->cmd = NULL;
    uint64_t req_id = cmd->req_id;
    ll__cmd_unlink(ll, cmd);
    ll__cmd_free(cmd);
    ll__answer(ll, req_id, out.data, out.len);
    tbuf_free(&out);
}

/* ---- dispatch ---- */

/* Connection and server commands: the same in every mode. */
static bool is_local_command(const char *name, size_t nl)
{
    static const char *const local[] = {"PING", "ECHO", "HELLO", "AUTH", "CLIENT", "QUIT",
                                        "RESET", "COMMAND", "CONFIG", "TIME", "SHUTDOWN", "INFO"};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(local); i++)
        if (cmd_is(name, nl, local[i]))
            return true;
    return false;
}

static bool arity_ok(const char *name, size_t nl, int argc, struct tbuf *out)
{
    const struct cmd_spec *spec = cmd_lookup(name, nl);
    TRIAD_ASSERT(spec != NULL);
    if (spec->arity > 0 ? argc == spec->arity : argc >= -spec->arity)
        return true;
    char low[32];
    size_t i;
    for (i = 0; spec->name[i] != '\0' && i + 1 < sizeof(low); i++)
        low[i] = (char)(spec->name[i] | 0x20);
    low[i] = '\0';
    arity_error(out, low);
    return false;
}

static bool values_fit(char **argv, size_t *argvlen, int first, int argc, int step,
                       struct tbuf *out)
{
    for (int a = first; a < argc; a += step)
        if (argvlen[a] > LL_VALUE_BYTES_MAX) {
            tbuf_appendf(out, "-ERR a value of %zu bytes is over leaderless mode's limit of %u "
                              "bytes\r\n", argvlen[a], LL_VALUE_BYTES_MAX);
            return false;
        }
    return true;
}

enum ll_outcome ll_command(struct ll *ll, struct ll_session *ls, struct cmd_client *cc,
                           uint64_t req_id, int argc, char **argv, size_t *argvlen)
{
    const char *name = argv[0];
    size_t nl = argvlen[0];
    struct tbuf *out = cc->out;
    struct ll__cmd *cmd = NULL;
    TRIAD_ASSERT(ls->cmd == NULL);

    if (is_local_command(name, nl))
        return LL_LOCAL;
    if (cmd_is(name, nl, "SELECT")) {
        if (argc == 2 && !cmd_is(argv[1], argvlen[1], "0")) {
            tbuf_appends(out, "-ERR leaderless mode has database 0 only\r\n");
            return LL_DONE;
        }
        return LL_LOCAL;
    }
    if (cmd_is(name, nl, "READONLY") || cmd_is(name, nl, "READWRITE")) {
        if (argc != 1) {
            arity_error(out, cmd_is(name, nl, "READONLY") ? "readonly" : "readwrite");
            return LL_DONE;
        }
        ls->readonly = cmd_is(name, nl, "READONLY");
        tbuf_appends(out, "+OK\r\n");
        return LL_DONE;
    }
    if (cmd_is(name, nl, "TRIAD.CONSISTENCY")) {
        triad_consistency(ll, ls, argc, argv, argvlen, out);
        return LL_DONE;
    }
    if (cmd_is(name, nl, "TRIAD.LEAVE")) {
        if (argc != 1) {
            arity_error(out, "triad.leave");
            return LL_DONE;
        }
        ll_leave(ll);
        tbuf_appends(out, "+OK\r\n");
        return LL_DONE;
    }
    if (cmd_is(name, nl, "TRIAD.REPLICAS")) {
        if (argc != 2) {
            arity_error(out, "triad.replicas");
            return LL_DONE;
        }
        uint32_t ids[DYN_N_MAX];
        size_t n = argvlen[1] > DYN_KEY_BYTES_MAX
                       ? 0
                       : dyn_replicas(ll__dyn(ll), argv[1], argvlen[1], ids, DYN_N_MAX);
        resp_add_array_len(out, (long long)n);
        for (size_t i = 0; i < n; i++)
            resp_add_int(out, ids[i]);
        return LL_DONE;
    }
    if (cmd_is(name, nl, "TRIAD.GETALL")) {
        if (argc != 2) {
            arity_error(out, "triad.getall");
            return LL_DONE;
        }
        cmd = cmd_new(ll, ls, cc, req_id, LL__K_GETALL, 1, argv, argvlen, 1, 1, false);
    } else if (cmd_is(name, nl, "TRIAD.PUT")) {
        if (argc != 4) {
            arity_error(out, "triad.put");
            return LL_DONE;
        }
        struct dvv_clock ctx = {0};
        char why[160];
        if (dvv_context_decode(&ctx, argv[2], argvlen[2], why, sizeof(why)) != 0) {
            resp_add_errorf(out, "ERR invalid context: %s", why);
            return LL_DONE;
        }
        if (!values_fit(argv, argvlen, 3, argc, 1, out)) {
            dvv_clock_free(&ctx);
            return LL_DONE;
        }
        /* key at argv[1], value at argv[3]: swap the context out of the way */
        char *v = argv[3];
        size_t vl = argvlen[3];
        char *kv[3] = {argv[0], argv[1], v};
        size_t kl[3] = {argvlen[0], argvlen[1], vl};
        cmd = cmd_new(ll, ls, cc, req_id, LL__K_PUT, 1, kv, kl, 1, 2, true);
        cmd->items[0].ctx = ctx; /* owned by the item now */
    } else if (cmd_is(name, nl, "GET")) {
        if (!arity_ok(name, nl, argc, out))
            return LL_DONE;
        cmd = cmd_new(ll, ls, cc, req_id, LL__K_GET, 1, argv, argvlen, 1, 1, false);
    } else if (cmd_is(name, nl, "SET")) {
        if (argc > 3) {
            tbuf_appends(out, "-ERR SET options are not supported in leaderless mode\r\n");
            return LL_DONE;
        }
        if (!arity_ok(name, nl, argc, out) || !values_fit(argv, argvlen, 2, argc, 1, out))
            return LL_DONE;
        cmd = cmd_new(ll, ls, cc, req_id, LL__K_SET, 1, argv, argvlen, 1, 2, true);
    } else if (cmd_is(name, nl, "DEL") || cmd_is(name, nl, "EXISTS") ||
               cmd_is(name, nl, "MGET")) {
        if (!arity_ok(name, nl, argc, out))
            return LL_DONE;
        uint8_t kind = cmd_is(name, nl, "DEL") ? LL__K_DEL
                       : cmd_is(name, nl, "EXISTS") ? LL__K_EXISTS
                                                    : LL__K_MGET;
        cmd = cmd_new(ll, ls, cc, req_id, kind, (uint32_t)(argc - 1), argv, argvlen, 1, 1, false);
        if (kind == LL__K_DEL)
            cmd_dedup(cmd, false);
    } else if (cmd_is(name, nl, "MSET")) {
        if (!arity_ok(name, nl, argc, out))
            return LL_DONE;
        if (argc % 2 != 1) {
            arity_error(out, "mset");
            return LL_DONE;
        }
        if (!values_fit(argv, argvlen, 2, argc, 2, out))
            return LL_DONE;
        cmd = cmd_new(ll, ls, cc, req_id, LL__K_MSET, (uint32_t)(argc - 1) / 2, argv, argvlen, 1,
                      2, true);
        cmd_dedup(cmd, true);
    } else if (cmd_lookup(name, nl) != NULL) {
        resp_add_errorf(out, "ERR '%.*s' is not supported in leaderless mode",
                        (int)TRIAD_MIN(nl, (size_t)64), name);
        return LL_DONE;
    } else {
        return LL_LOCAL; /* cmd_exec's unknown-command error */
    }
    ll__cmd_drive(cmd); /* may answer at once */
    return LL_PENDING;
}
