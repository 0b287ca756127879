/* fsm.c - the replicated state machine: entry payloads, apply, sessions,
 * snapshots and digests. fsm.h states the rules; this file says why where
 * an order matters.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "../common/crc32c.h"
#include "../common/defs.h"
#include "../common/mem.h"
#include "../common/num.h"
#include "fsm.h"

#define FSM_ERRMSG_MAX 256
#define FSM_SESSION_BUCKETS_MIN 16

static const char fsm__snap_magic[8] = {'T', 'R', 'I', 'A', 'D', 'F', 'S', 'M'};
/* magic, version, applied_index, clock_ms, ndb ... nsessions, crc */
#define FSM_SNAP_HEADER_SIZE (8 + 4 + 8 + 8 + 4)
#define FSM_SNAP_KEY_MIN_SIZE (4 + 8 + 8)           /* an empty key and value */
#define FSM_SNAP_SESSION_MIN_SIZE (8 + 8 + 8 + 8)   /* an empty reply */
_Static_assert(FSM_COMMAND_HEADER_SIZE == 1 + 1 + 8 + 8 + 8 + 4 + 4, "entry header layout");
_Static_assert(FSM_COMMAND_BYTES_MAX <= UINT32_MAX, "an argument length is a u32");
_Static_assert(FSM_DATABASES <= CMD_DATABASES_MAX, "more databases than cmd has");

struct fsm_session {
    struct fsm_session *hnext;       /* hash chain */
    struct fsm_session *prev, *next; /* touch order */
    uint64_t client_id;
    uint64_t last_seq;
    uint64_t touch_ms;
    char *reply; /* owned; the RESP reply to last_seq */
    size_t reply_len;
};

/* An "-ERR ..." reply. Texts never hold CR or LF: they come from this file
 * and from command names in cmd's table. */
static void fsm__reply_verr(struct tbuf *reply, const char *code, const char *fmt, va_list ap)
{
    char msg[FSM_ERRMSG_MAX];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    tbuf_appendf(reply, "-%s %s\r\n", code, msg);
}

__attribute__((format(printf, 2, 3))) static void fsm__reply_err(struct tbuf *reply,
                                                                 const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fsm__reply_verr(reply, "ERR", fmt, ap);
    va_end(ap);
}

__attribute__((format(printf, 3, 4))) static void fsm__reply_err_code(struct tbuf *reply,
                                                                      const char *code,
                                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fsm__reply_verr(reply, code, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* a bounded reader                                                          */
/* ------------------------------------------------------------------------ */

struct fsm__rd {
    const unsigned char *p;
    size_t len, off;
};

static bool fsm__rd_u8(struct fsm__rd *r, uint8_t *v)
{
    if (r->len - r->off < 1)
        return false;
    *v = r->p[r->off++];
    return true;
}

static bool fsm__rd_u32(struct fsm__rd *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return false;
    *v = tbuf_read_u32le(r->p + r->off);
    r->off += 4;
    return true;
}

static bool fsm__rd_u64(struct fsm__rd *r, uint64_t *v)
{
    if (r->len - r->off < 8)
        return false;
    *v = tbuf_read_u64le(r->p + r->off);
    r->off += 8;
    return true;
}

/* n bytes in place (borrowed from the reader's data) */
static bool fsm__rd_bytes(struct fsm__rd *r, uint64_t n, const unsigned char **at)
{
    if (r->len - r->off < n)
        return false;
    *at = r->p + r->off;
    r->off += (size_t)n;
    return true;
}

static size_t fsm__rd_left(const struct fsm__rd *r)
{
    return r->len - r->off;
}

/* ------------------------------------------------------------------------ */
/* entry payloads                                                            */
/* ------------------------------------------------------------------------ */

int fsm_encode_command(const struct fsm_command *cmd, struct tbuf *out)
{
    if (cmd->proto != 2 && cmd->proto != 3)
        return TRIAD_EINVAL;
    if (cmd->db < 0 || cmd->db >= FSM_DATABASES)
        return TRIAD_EINVAL;
    if ((cmd->client_id == 0) != (cmd->seq == 0))
        return TRIAD_EINVAL;
    if (cmd->now_ms > (uint64_t)INT64_MAX)
        return TRIAD_EINVAL;
    if (cmd->argc < 0)
        return TRIAD_EINVAL;
    if (cmd->argc == 0 && cmd->client_id != 0)
        return TRIAD_EINVAL; /* a clock tick has no session */
    if (cmd->argc > FSM_COMMAND_ARGC_MAX)
        return TRIAD_ELIMIT;
    /* Size everything before writing anything, so that a refusal leaves out
     * as it was. */
    size_t size = FSM_COMMAND_HEADER_SIZE;
    for (int i = 0; i < cmd->argc; i++) {
        if (FSM_COMMAND_BYTES_MAX - size < 4 || cmd->argvlen[i] > FSM_COMMAND_BYTES_MAX - size - 4)
            return TRIAD_ELIMIT;
        size += 4 + cmd->argvlen[i];
    }
    TRIAD_ASSERT(size <= FSM_COMMAND_BYTES_MAX);

    size_t start = out->len;
    tbuf_reserve(out, size);
    tbuf_appendc(out, (char)FSM_COMMAND_VERSION);
    tbuf_appendc(out, (char)cmd->proto);
    tbuf_append_u64le(out, cmd->client_id);
    tbuf_append_u64le(out, cmd->seq);
    tbuf_append_u64le(out, cmd->now_ms);
    tbuf_append_u32le(out, (uint32_t)cmd->db);
    tbuf_append_u32le(out, (uint32_t)cmd->argc);
    for (int i = 0; i < cmd->argc; i++) {
        tbuf_append_u32le(out, (uint32_t)cmd->argvlen[i]);
        tbuf_append(out, cmd->argv[i], cmd->argvlen[i]);
    }
    TRIAD_ASSERT(out->len - start == size);
    return 0;
}

#define FSM__CORRUPT(...)                            \
    do {                                             \
        snprintf(errmsg, errlen, __VA_ARGS__);       \
        return TRIAD_ECORRUPT;                       \
    } while (0)

/* Pass one of decoding: check every field, count the argument bytes. */
static int fsm__command_check(const void *data, size_t len, size_t *arena_size, char *errmsg,
                              size_t errlen)
{
    struct fsm__rd r = {data, len, 0};
    uint8_t version, proto;
    uint64_t client_id, seq, now_ms;
    uint32_t db, argc;

    if (len > FSM_COMMAND_BYTES_MAX)
        FSM__CORRUPT("entry of %zu bytes exceeds the limit of %u", len, FSM_COMMAND_BYTES_MAX);
    if (len < FSM_COMMAND_HEADER_SIZE)
        FSM__CORRUPT("entry of %zu bytes is shorter than its %d-byte header", len,
                     FSM_COMMAND_HEADER_SIZE);
    (void)fsm__rd_u8(&r, &version);
    (void)fsm__rd_u8(&r, &proto);
    (void)fsm__rd_u64(&r, &client_id);
    (void)fsm__rd_u64(&r, &seq);
    (void)fsm__rd_u64(&r, &now_ms);
    (void)fsm__rd_u32(&r, &db);
    (void)fsm__rd_u32(&r, &argc);
    TRIAD_ASSERT(r.off == FSM_COMMAND_HEADER_SIZE);
    if (version != FSM_COMMAND_VERSION)
        FSM__CORRUPT("entry version %u is not %d", version, FSM_COMMAND_VERSION);
    if (proto != 2 && proto != 3)
        FSM__CORRUPT("protocol %u is neither 2 nor 3", proto);
    if (client_id == 0 && seq != 0)
        FSM__CORRUPT("sequence %llu without a client id", (unsigned long long)seq);
    if (client_id != 0 && seq == 0)
        FSM__CORRUPT("client %llu with sequence 0", (unsigned long long)client_id);
    if (now_ms > (uint64_t)INT64_MAX)
        FSM__CORRUPT("time %llu ms is out of range", (unsigned long long)now_ms);
    if (db >= FSM_DATABASES)
        FSM__CORRUPT("db %u out of range", db);
    if (argc > FSM_COMMAND_ARGC_MAX)
        FSM__CORRUPT("argument count %u exceeds the limit of %d", argc, FSM_COMMAND_ARGC_MAX);
    if (argc == 0 && client_id != 0)
        FSM__CORRUPT("clock tick with client %llu", (unsigned long long)client_id);
    if (argc > fsm__rd_left(&r) / 4)
        FSM__CORRUPT("argument count %u does not fit in %zu bytes", argc, fsm__rd_left(&r));
    size_t bytes = 0;
    for (uint32_t i = 0; i < argc; i++) {
        uint32_t alen;
        const unsigned char *at;
        if (!fsm__rd_u32(&r, &alen))
            FSM__CORRUPT("entry truncated at the length of argument %u", i);
        if (!fsm__rd_bytes(&r, alen, &at))
            FSM__CORRUPT("argument %u of %u bytes runs past the entry", i, alen);
        bytes += (size_t)alen + 1;
    }
    if (r.off != len)
        FSM__CORRUPT("entry has %zu trailing bytes", len - r.off);
    *arena_size = bytes;
    return 0;
}

int fsm_decode_command(const void *data, size_t len, struct fsm_command *out, char *errmsg,
                       size_t errlen)
{
    size_t arena_size;
    memset(out, 0, sizeof(*out));
    int rc = fsm__command_check(data, len, &arena_size, errmsg, errlen);
    if (rc != 0)
        return rc;

    const unsigned char *p = data;
    out->proto = p[1];
    out->client_id = tbuf_read_u64le(p + 2);
    out->seq = tbuf_read_u64le(p + 10);
    out->now_ms = tbuf_read_u64le(p + 18);
    out->db = (int)tbuf_read_u32le(p + 26);
    out->argc = (int)tbuf_read_u32le(p + 30);
    if (out->argc == 0)
        return 0;
    /* Handlers expect NUL-terminated arguments they may modify: copy. */
    out->argv = tmalloc((size_t)out->argc * sizeof(*out->argv));
    out->argvlen = tmalloc((size_t)out->argc * sizeof(*out->argvlen));
    out->arena = tmalloc(arena_size);
    size_t off = FSM_COMMAND_HEADER_SIZE, b = 0;
    for (int i = 0; i < out->argc; i++) {
        uint32_t alen = tbuf_read_u32le(p + off);
        off += 4;
        memcpy(out->arena + b, p + off, alen);
        out->arena[b + alen] = '\0';
        out->argv[i] = out->arena + b;
        out->argvlen[i] = alen;
        off += alen;
        b += (size_t)alen + 1;
    }
    TRIAD_ASSERT(off == len);
    TRIAD_ASSERT(b == arena_size);
    return 0;
}

void fsm_command_free(struct fsm_command *cmd)
{
    tfree(cmd->argv);
    tfree(cmd->argvlen);
    tfree(cmd->arena);
    memset(cmd, 0, sizeof(*cmd));
}

/* ------------------------------------------------------------------------ */
/* sessions                                                                  */
/* ------------------------------------------------------------------------ */

static size_t fsm__session_bucket(const struct fsm_sessions *t, uint64_t client_id)
{
    uint64_t h = client_id; /* splitmix64's finaliser: ids are often small and dense */
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return (size_t)(h & (t->nbuckets - 1));
}

static struct fsm_session *fsm__session_find(const struct fsm_sessions *t, uint64_t client_id)
{
    if (t->nbuckets == 0)
        return NULL;
    struct fsm_session *e = t->buckets[fsm__session_bucket(t, client_id)];
    while (e != NULL && e->client_id != client_id)
        e = e->hnext;
    return e;
}

static void fsm__sessions_grow(struct fsm_sessions *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : FSM_SESSION_BUCKETS_MIN;
    struct fsm_session **old = t->buckets;
    size_t old_n = t->nbuckets;
    t->buckets = tcalloc(n, sizeof(*t->buckets));
    t->nbuckets = n;
    for (size_t i = 0; i < old_n; i++) {
        struct fsm_session *e = old[i], *next;
        for (; e != NULL; e = next) {
            next = e->hnext;
            size_t b = fsm__session_bucket(t, e->client_id);
            e->hnext = t->buckets[b];
            t->buckets[b] = e;
        }
    }
    tfree(old);
}

/* Link a new session into the table, at the tail of the touch order: its
 * touch_ms is the newest (the clock never goes back). */
static void fsm__session_insert(struct fsm_sessions *t, struct fsm_session *e)
{
    TRIAD_ASSERT(e->client_id != 0);
    TRIAD_ASSERT(t->tail == NULL || t->tail->touch_ms <= e->touch_ms);
    if (t->count >= t->nbuckets)
        fsm__sessions_grow(t);
    size_t b = fsm__session_bucket(t, e->client_id);
    e->hnext = t->buckets[b];
    t->buckets[b] = e;
    e->prev = t->tail;
    e->next = NULL;
    if (t->tail != NULL)
        t->tail->next = e;
    else
        t->head = e;
    t->tail = e;
    t->count++;
}

static void fsm__session_unlink_order(struct fsm_sessions *t, struct fsm_session *e)
{
    if (e->prev != NULL)
        e->prev->next = e->next;
    else
        t->head = e->next;
    if (e->next != NULL)
        e->next->prev = e->prev;
    else
        t->tail = e->prev;
    e->prev = e->next = NULL;
}

static void fsm__session_remove(struct fsm_sessions *t, struct fsm_session *e)
{
    struct fsm_session **pp = &t->buckets[fsm__session_bucket(t, e->client_id)];
    while (*pp != e) {
        TRIAD_ASSERT(*pp != NULL); /* every session is in its bucket */
        pp = &(*pp)->hnext;
    }
    *pp = e->hnext;
    fsm__session_unlink_order(t, e);
    TRIAD_ASSERT(t->count > 0);
    t->count--;
    tfree(e->reply);
    tfree(e);
}

static void fsm__session_touch(struct fsm_sessions *t, struct fsm_session *e, uint64_t now_ms)
{
    TRIAD_ASSERT(e->touch_ms <= now_ms);
    e->touch_ms = now_ms;
    fsm__session_unlink_order(t, e);
    e->prev = t->tail;
    if (t->tail != NULL)
        t->tail->next = e;
    else
        t->head = e;
    t->tail = e;
}

static void fsm__sessions_free(struct fsm_sessions *t)
{
    struct fsm_session *e = t->head, *next;
    for (; e != NULL; e = next) {
        next = e->next;
        tfree(e->reply);
        tfree(e);
    }
    tfree(t->buckets);
    memset(t, 0, sizeof(*t));
}

static bool fsm__session_expired(const struct fsm *f, const struct fsm_session *e)
{
    return f->clock_ms - e->touch_ms >= f->session_ttl_ms;
}

/* Free up to FSM_SESSION_SWEEP_MAX sessions past their TTL. The touch order
 * is also the order of touch_ms because the clock never goes back, so the
 * expired ones are a prefix of the list and the work is bounded. */
static void fsm__sessions_sweep(struct fsm *f)
{
    for (int i = 0; i < FSM_SESSION_SWEEP_MAX; i++) {
        struct fsm_session *e = f->sessions.head;
        if (e == NULL || !fsm__session_expired(f, e))
            return;
        fsm__session_remove(&f->sessions, e);
    }
}

/* ------------------------------------------------------------------------ */
/* init, apply, read                                                         */
/* ------------------------------------------------------------------------ */

int fsm_init(struct fsm *f, uint64_t seed)
{
    memset(f, 0, sizeof(*f));
    cmd_server_init(&f->srv, FSM_DATABASES, seed);
    /* cmd_server_init leaves log_fn, requirepass, maxmemory and hooks zero:
     * no WAL (the log is Raft's), no AUTH, no memory refusals (they would
     * differ between replicas), FLUSH ASYNC frees at once. */
    TRIAD_ASSERT(f->srv.log_fn == NULL);
    TRIAD_ASSERT(f->srv.maxmemory == 0);
    f->seed = seed;
    f->session_ttl_ms = FSM_SESSION_TTL_MS;
    f->sessions_max = FSM_SESSIONS_MAX;
    return 0;
}

void fsm_free(struct fsm *f)
{
    fsm__sessions_free(&f->sessions);
    cmd_server_free(&f->srv);
    memset(f, 0, sizeof(*f));
}

size_t fsm_session_count(const struct fsm *f)
{
    return f->sessions.count;
}

/* Replies that are a function of the hash table's layout or of a PRNG,
 * neither of which is replicated. */
static bool fsm__layout_dependent(const struct cmd_spec *spec)
{
    static const char *const names[] = {"KEYS", "SCAN", "RANDOMKEY"};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(names); i++)
        if (strcmp(spec->name, names[i]) == 0)
            return true;
    return false;
}

#define FSM_DENIED_FLAGS \
    (CMD_ADMIN | CMD_NOMULTI | CMD_DENYMULTI | CMD_NOAUTH | CMD_SUBCOMMANDS)

/* Collect every key whose deadline has passed by the logical clock. */
static void fsm__expire_keys(struct fsm *f)
{
    TRIAD_ASSERT(f->srv.now_ms == (int64_t)f->clock_ms);
    cmd_active_expire(&f->srv, SIZE_MAX);
}

/* Execute one command with a throwaway client of that db and protocol. */
static void fsm__exec(struct fsm *f, uint64_t client_id, int db, int proto, int argc,
                      char **argv, size_t *argvlen, struct tbuf *reply)
{
    struct cmd_client c;
    cmd_client_init(&c, client_id, reply);
    c.db = db;
    c.proto = proto;
    c.authenticated = true;
    cmd_exec(&f->srv, &c, argc, argv, argvlen);
    cmd_client_free(&f->srv, &c);
}

/* Run (or refuse) a decoded command; the reply is appended. */
static void fsm__run_logged(struct fsm *f, const struct fsm_command *cmd, struct tbuf *reply)
{
    const struct cmd_spec *spec = cmd_lookup(cmd->argv[0], cmd->argvlen[0]);
    if (spec != NULL && (!(spec->flags & (CMD_WRITE | CMD_READONLY)) ||
                         (spec->flags & FSM_DENIED_FLAGS))) {
        fsm__reply_err(reply,
                       "TRIAD '%s' cannot run through the replicated log: only data reads and "
                       "writes can",
                       spec->name);
        return;
    }
    if (spec != NULL && fsm__layout_dependent(spec)) {
        fsm__reply_err(reply,
                       "TRIAD '%s' answers from the replica's own hash table layout and cannot "
                       "run through the replicated log; send it as a read",
                       spec->name);
        return;
    }
    /* Unknown commands and wrong arities get cmd's Redis-style errors. */
    fsm__exec(f, cmd->client_id, cmd->db, cmd->proto, cmd->argc, cmd->argv, cmd->argvlen, reply);
}

/* Save the reply to `seq` in client_id's session (e may be NULL: a new
 * session, evicting the least recently touched one at the cap). */
static void fsm__session_save(struct fsm *f, struct fsm_session *e, uint64_t client_id,
                              uint64_t seq, const char *data, size_t len)
{
    if (e == NULL) {
        TRIAD_ASSERT(f->sessions_max >= 1);
        while (f->sessions.count >= f->sessions_max)
            fsm__session_remove(&f->sessions, f->sessions.head);
        e = tcalloc(1, sizeof(*e));
        e->client_id = client_id;
        e->touch_ms = f->clock_ms;
        fsm__session_insert(&f->sessions, e);
    } else {
        TRIAD_ASSERT(seq > e->last_seq);
        fsm__session_touch(&f->sessions, e, f->clock_ms);
    }
    tfree(e->reply);
    e->reply = tmalloc(len ? len : 1);
    memcpy(e->reply, data, len);
    e->reply_len = len;
    e->last_seq = seq;
    TRIAD_ASSERT(f->sessions.count <= f->sessions_max);
}

int fsm_encode_member(uint64_t now_ms, uint32_t id, const char *host, uint16_t port, bool voter,
                      struct tbuf *out)
{
    char ids[16], ports[8];
    size_t hl = strlen(host);
    if (id == 0 || port == 0 || hl == 0 || hl > FSM_MEMBER_HOST_MAX)
        return TRIAD_EINVAL;
    int il = snprintf(ids, sizeof(ids), "%u", (unsigned)id);
    int pl = snprintf(ports, sizeof(ports), "%u", (unsigned)port);
    char *argv[5] = {"TRIAD.MEMBER", ids, (char *)host, ports, voter ? "voter" : "learner"};
    size_t argvlen[5] = {12, (size_t)il, hl, (size_t)pl, voter ? 5u : 7u};
    struct fsm_command c = {.proto = 2, .now_ms = now_ms, .argc = 5, .argv = argv,
                            .argvlen = argvlen};
    return fsm_encode_command(&c, out);
}

const struct fsm_member *fsm_member(const struct fsm *f, uint32_t id)
{
    for (uint32_t i = 0; i < f->n_members; i++)
        if (f->members[i].id == id)
            return &f->members[i];
    return NULL;
}

void fsm_members_retain(struct fsm *f, const uint32_t *ids, size_t n)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < f->n_members; i++) {
        bool keep = false;
        for (size_t k = 0; k < n && !keep; k++)
            keep = ids[k] == f->members[i].id;
        if (keep)
            f->members[w++] = f->members[i];
    }
    if (w != f->n_members) {
        f->n_members = w;
        f->members_version++;
    }
}

/* A decimal number in [0, max]: digits only. */
static bool fsm__parse_uint(const char *p, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!triad_parse_u64(p, n, &v) || v > max)
        return false;
    *out = v;
    return true;
}

/* Insert or replace, keeping the table sorted by id. */
static int fsm__member_set(struct fsm *f, const struct fsm_member *m)
{
    uint32_t i = 0;
    while (i < f->n_members && f->members[i].id < m->id)
        i++;
    if (i == f->n_members || f->members[i].id != m->id) {
        if (f->n_members == FSM_MEMBERS_MAX)
            return TRIAD_ELIMIT;
        memmove(&f->members[i + 1], &f->members[i], (f->n_members - i) * sizeof(*f->members));
        f->n_members++;
    }
    f->members[i] = *m;
    f->members_version++;
    return 0;
}

/* TRIAD.MEMBER id host port voter|learner */
static void fsm__apply_member(struct fsm *f, const struct fsm_command *cmd, struct tbuf *reply)
{
    uint64_t id, port;
    struct fsm_member m = {0};
    bool voter = cmd->argvlen[4] == 5 && memcmp(cmd->argv[4], "voter", 5) == 0;
    bool learner = cmd->argvlen[4] == 7 && memcmp(cmd->argv[4], "learner", 7) == 0;
    if (!fsm__parse_uint(cmd->argv[1], cmd->argvlen[1], UINT32_MAX, &id) || id == 0 ||
        !fsm__parse_uint(cmd->argv[3], cmd->argvlen[3], UINT16_MAX, &port) || port == 0 ||
        !triad_host_ok(cmd->argv[2], cmd->argvlen[2], FSM_MEMBER_HOST_MAX) || !(voter || learner)) {
        fsm__reply_err(reply, "TRIAD malformed member address");
        return;
    }
    m.id = (uint32_t)id;
    m.port = (uint16_t)port;
    m.voter = voter;
    memcpy(m.host, cmd->argv[2], cmd->argvlen[2]);
    if (fsm__member_set(f, &m) != 0) {
        fsm__reply_err(reply, "TRIAD the member table is full (%d)", FSM_MEMBERS_MAX);
        return;
    }
    tbuf_appends(reply, "+OK\r\n");
}

static bool fsm__is_member_cmd(const struct fsm_command *cmd)
{
    return cmd->client_id == 0 && cmd->argc == 5 && cmd->argvlen[0] == 12 &&
           memcmp(cmd->argv[0], "TRIAD.MEMBER", 12) == 0;
}

#define FSM_DIGEST_WATCH_SEED 0x7761746368646967ull /* "watchdig" */

uint64_t fsm_key_digest(struct fsm *f, int db, const char *key, size_t klen)
{
    struct kv_val v;
    if (db < 0 || db >= FSM_DATABASES ||
        kv_get(f->srv.db[db], key, klen, (int64_t)f->clock_ms, &v) != 0)
        return 0;
    unsigned char exp[8];
    tbuf_write_u64le(exp, (uint64_t)v.expire_ms);
    uint64_t h = XXH3_64bits_withSeed(v.ptr, v.len, FSM_DIGEST_WATCH_SEED);
    h = XXH3_64bits_withSeed(exp, sizeof(exp), h);
    return h != 0 ? h : 1;
}

static bool fsm__is_txn(const struct fsm_command *cmd)
{
    return cmd->client_id == 0 && cmd->argc >= 2 && cmd->argvlen[0] == 9 &&
           memcmp(cmd->argv[0], "TRIAD.TXN", 9) == 0;
}

bool fsm_txn_allowed(const char *name, size_t len)
{
    const struct cmd_spec *spec = cmd_lookup(name, len);
    return spec != NULL && (spec->flags & (CMD_WRITE | CMD_READONLY)) &&
           !(spec->flags & FSM_DENIED_FLAGS) && !fsm__layout_dependent(spec);
}

/* TRIAD.TXN (fsm.h): check the WATCHed keys, then run the queued commands
 * as one MULTI/EXEC of an internal client, so cmd's own transaction code
 * answers exactly as a single node would. */
static void fsm__apply_txn(struct fsm *f, const struct fsm_command *cmd, struct tbuf *reply)
{
    uint64_t nwatch, v = 0;
    int i = 2;
    if (!fsm__parse_uint(cmd->argv[1], cmd->argvlen[1], (uint64_t)cmd->argc, &nwatch) ||
        nwatch > (uint64_t)(cmd->argc - 2) / 3) {
        fsm__reply_err(reply, "TRIAD malformed transaction");
        return;
    }
    bool changed = false;
    for (uint64_t w = 0; w < nwatch; w++, i += 3) {
        uint64_t db, digest;
        if (!fsm__parse_uint(cmd->argv[i], cmd->argvlen[i], FSM_DATABASES - 1, &db) ||
            !fsm__parse_uint(cmd->argv[i + 2], cmd->argvlen[i + 2], UINT64_MAX, &digest)) {
            fsm__reply_err(reply, "TRIAD malformed transaction");
            return;
        }
        changed |= fsm_key_digest(f, (int)db, cmd->argv[i + 1], cmd->argvlen[i + 1]) != digest;
    }
    /* the commands: argc, then its arguments; all of them known first */
    int first = i;
    while (i < cmd->argc) {
        if (!fsm__parse_uint(cmd->argv[i], cmd->argvlen[i], (uint64_t)(cmd->argc - i - 1), &v) ||
            v == 0) {
            fsm__reply_err(reply, "TRIAD malformed transaction");
            return;
        }
        if (!fsm_txn_allowed(cmd->argv[i + 1], cmd->argvlen[i + 1])) {
            fsm__reply_err_code(reply, "EXECABORT",
                                "Transaction discarded: '%.*s' cannot run in a leader-mode "
                                "transaction",
                                (int)TRIAD_MIN(cmd->argvlen[i + 1], (size_t)64), cmd->argv[i + 1]);
            return;
        }
        i += 1 + (int)v;
    }
    if (changed) {
        /* a WATCHed key changed since WATCH: EXEC's null reply */
        tbuf_appends(reply, cmd->proto == 3 ? "_\r\n" : "*-1\r\n");
        return;
    }
    struct tbuf queued = {0};
    struct cmd_client c;
    cmd_client_init(&c, 0, &queued);
    c.db = cmd->db;
    c.proto = cmd->proto;
    c.authenticated = true;
    char multi[] = "MULTI", exec[] = "EXEC";
    char *mv[1] = {multi}, *ev[1] = {exec};
    size_t ml[1] = {5}, el[1] = {4};
    cmd_exec(&f->srv, &c, 1, mv, ml);
    for (i = first; i < cmd->argc;) {
        fsm__parse_uint(cmd->argv[i], cmd->argvlen[i], UINT64_MAX, &v);
        cmd_exec(&f->srv, &c, (int)v, cmd->argv + i + 1, cmd->argvlen + i + 1);
        i += 1 + (int)v;
    }
    c.out = reply;
    cmd_exec(&f->srv, &c, 1, ev, el);
    cmd_client_free(&f->srv, &c);
    tbuf_free(&queued);
}

int fsm_apply(struct fsm *f, uint64_t index, const void *data, size_t len, struct tbuf *reply)
{
    TRIAD_ASSERT(index == f->applied_index + 1);
    char errmsg[FSM_ERRMSG_MAX];
    struct fsm_command cmd;
    int rc = fsm_decode_command(data, len, &cmd, errmsg, sizeof(errmsg));
    if (rc != 0) {
        /* Every replica holds the same bytes at this index and decides the
         * same: the entry is consumed and changes nothing. */
        fsm__reply_err(reply, "TRIAD malformed entry at index %llu: %s",
                       (unsigned long long)index, errmsg);
        f->applied_index = index;
        return TRIAD_ECORRUPT;
    }

    /* The clock only moves forward. A new leader's clock may be behind the
     * old one's, and a replica that let time go back would revive keys it
     * had already expired - or, restored from a snapshot, expire them at a
     * different entry than its peers. Expiry must be a function of the log
     * alone so that replicas agree, and max() over the applied entries is. */
    if (cmd.now_ms > f->clock_ms)
        f->clock_ms = cmd.now_ms;
    f->srv.now_ms = (int64_t)f->clock_ms;
    fsm__expire_keys(f);
    fsm__sessions_sweep(f);

    struct fsm_session *e = NULL;
    if (cmd.client_id != 0) {
        e = fsm__session_find(&f->sessions, cmd.client_id);
        if (e != NULL && fsm__session_expired(f, e)) {
            /* past its TTL but not swept yet: gone, as on every replica */
            fsm__session_remove(&f->sessions, e);
            e = NULL;
        }
    }
    if (e != NULL && cmd.seq == e->last_seq) {
        /* A retry of an answered request (§6.3): answer it again, unrun. */
        fsm__session_touch(&f->sessions, e, f->clock_ms);
        tbuf_append(reply, e->reply, e->reply_len);
    } else if (e != NULL && cmd.seq < e->last_seq) {
        /* The client has had a later answer, so this one is a stray copy
         * (a delayed duplicate): it changes nothing, not even the touch. */
        fsm__reply_err(reply,
                       "TRIAD stale request: sequence %llu of client %llu was already answered "
                       "(last answered: %llu)",
                       (unsigned long long)cmd.seq, (unsigned long long)cmd.client_id,
                       (unsigned long long)e->last_seq);
    } else if (fsm__is_member_cmd(&cmd)) {
        fsm__apply_member(f, &cmd, reply);
    } else if (fsm__is_txn(&cmd)) {
        fsm__apply_txn(f, &cmd, reply);
        fsm__expire_keys(f);
    } else if (cmd.argc > 0) {
        size_t mark = reply->len;
        fsm__run_logged(f, &cmd, reply);
        /* A command may leave a deadline it set already past; collect it
         * now so that no expired key survives to the next entry. */
        fsm__expire_keys(f);
        if (cmd.client_id != 0)
            fsm__session_save(f, e, cmd.client_id, cmd.seq, reply->data + mark,
                              reply->len - mark);
    }
    fsm_command_free(&cmd);
    f->applied_index = index;
    return 0;
}

void fsm_apply_noop(struct fsm *f, uint64_t index)
{
    TRIAD_ASSERT(index == f->applied_index + 1);
    f->applied_index = index;
}

int fsm_read(struct fsm *f, int db, int proto, int argc, char **argv, size_t *argvlen,
             struct tbuf *reply)
{
    if (argc < 1) {
        fsm__reply_err(reply, "TRIAD empty command");
        return TRIAD_EINVAL;
    }
    if (db < 0 || db >= FSM_DATABASES) {
        fsm__reply_err(reply, "DB index is out of range");
        return TRIAD_EINVAL;
    }
    if (proto != 2 && proto != 3) {
        fsm__reply_err(reply, "TRIAD protocol %d is neither 2 nor 3", proto);
        return TRIAD_EINVAL;
    }
    f->srv.now_ms = (int64_t)f->clock_ms;
    if (argvlen[0] == 12 && memcmp(argv[0], "TRIAD.DIGEST", 12) == 0) {
        /* WATCH's read (fsm.h): one number per key */
        tbuf_appendf(reply, "*%d\r\n", argc - 1);
        for (int i = 1; i < argc; i++)
            tbuf_appendf(reply, ":%lld\r\n", (long long)fsm_key_digest(f, db, argv[i], argvlen[i]));
        return 0;
    }
    const struct cmd_spec *spec = cmd_lookup(argv[0], argvlen[0]);
    if (spec == NULL) {
        fsm__exec(f, 0, db, proto, argc, argv, argvlen, reply); /* "unknown command" */
        return TRIAD_EINVAL;
    }
    if (!(spec->flags & CMD_READONLY) || (spec->flags & FSM_DENIED_FLAGS)) {
        fsm__reply_err(reply, "TRIAD '%s' is not a read-only command", spec->name);
        return TRIAD_EINVAL;
    }
    /* Nothing here can expire a key (none is past the clock between
     * entries), so a read changes no replica's state. */
    fsm__exec(f, 0, db, proto, argc, argv, argvlen, reply);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* snapshots                                                                 */
/* ------------------------------------------------------------------------ */

struct fsm__kref {
    const char *key, *val; /* borrowed from the kv; f is const meanwhile */
    size_t klen, vlen;
    int64_t expire_ms;
};

struct fsm__krefs {
    struct fsm__kref *v;
    size_t n, cap;
    int64_t clock_ms;
};

static bool fsm__key_live(int64_t expire_ms, int64_t clock_ms)
{
    return expire_ms == KV_NO_EXPIRE || expire_ms > clock_ms;
}

static int fsm__collect_cb(void *arg, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t expire_ms)
{
    struct fsm__krefs *k = arg;
    if (!fsm__key_live(expire_ms, k->clock_ms))
        return 0;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->v = trealloc(k->v, k->cap * sizeof(*k->v));
    }
    k->v[k->n++] = (struct fsm__kref){key, val, klen, vlen, expire_ms};
    return 0;
}

/* memcmp order, the shorter first when one is a prefix of the other */
static int fsm__key_cmp(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, TRIAD_MIN(alen, blen));
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

static int fsm__kref_cmp(const void *a, const void *b)
{
    const struct fsm__kref *x = a, *y = b;
    return fsm__key_cmp(x->key, x->klen, y->key, y->klen);
}

int fsm_snapshot(const struct fsm *f, struct tbuf *out)
{
    size_t start = out->len;
    tbuf_append(out, fsm__snap_magic, sizeof(fsm__snap_magic));
    tbuf_append_u32le(out, FSM_SNAPSHOT_VERSION);
    tbuf_append_u64le(out, f->applied_index);
    tbuf_append_u64le(out, f->clock_ms);
    tbuf_append_u32le(out, FSM_DATABASES);

    /* Sorted, so that the bytes depend on the keys and not on the order a
     * replica's hash table happens to hold them in. */
    struct fsm__krefs k = {.clock_ms = (int64_t)f->clock_ms};
    for (int db = 0; db < FSM_DATABASES; db++) {
        k.n = 0;
        kv_foreach(f->srv.db[db], fsm__collect_cb, &k);
        if (k.n > 1)
            qsort(k.v, k.n, sizeof(*k.v), fsm__kref_cmp);
        tbuf_append_u64le(out, k.n);
        for (size_t i = 0; i < k.n; i++) {
            const struct fsm__kref *r = &k.v[i];
            TRIAD_ASSERT(r->klen <= UINT32_MAX);
            tbuf_append_u32le(out, (uint32_t)r->klen);
            tbuf_append(out, r->key, r->klen);
            tbuf_append_u64le(out, r->vlen);
            tbuf_append(out, r->val, r->vlen);
            tbuf_append_u64le(out, (uint64_t)r->expire_ms);
        }
    }
    tfree(k.v);

    tbuf_append_u64le(out, f->sessions.count);
    size_t n = 0;
    for (const struct fsm_session *e = f->sessions.head; e != NULL; e = e->next, n++) {
        tbuf_append_u64le(out, e->client_id);
        tbuf_append_u64le(out, e->last_seq);
        tbuf_append_u64le(out, e->touch_ms);
        tbuf_append_u64le(out, e->reply_len);
        tbuf_append(out, e->reply, e->reply_len);
    }
    TRIAD_ASSERT(n == f->sessions.count);
    tbuf_append_u32le(out, f->n_members);
    for (uint32_t i = 0; i < f->n_members; i++) {
        const struct fsm_member *m = &f->members[i];
        size_t hl = strlen(m->host);
        tbuf_append_u32le(out, m->id);
        tbuf_append_u32le(out, m->port);
        tbuf_appendc(out, (char)m->voter);
        tbuf_appendc(out, (char)hl);
        tbuf_append(out, m->host, hl);
    }
    tbuf_append_u32le(out, crc32c(0, out->data + start, out->len - start));
    return 0;
}

/* Parse one database's keys into kv, checking each. */
static int fsm__restore_db(struct fsm__rd *r, int db, struct kv *kv, int64_t clock_ms,
                           char *errmsg, size_t errlen)
{
    uint64_t nkeys;
    if (!fsm__rd_u64(r, &nkeys))
        FSM__CORRUPT("snapshot truncated at db %d's key count", db);
    if (nkeys > fsm__rd_left(r) / FSM_SNAP_KEY_MIN_SIZE)
        FSM__CORRUPT("db %d: %llu keys do not fit in %zu bytes", db,
                     (unsigned long long)nkeys, fsm__rd_left(r));
    const unsigned char *prev = NULL;
    size_t prev_len = 0;
    for (uint64_t i = 0; i < nkeys; i++) {
        uint32_t klen;
        uint64_t vlen, expire;
        const unsigned char *key, *val;
        if (!fsm__rd_u32(r, &klen) || !fsm__rd_bytes(r, klen, &key) || !fsm__rd_u64(r, &vlen) ||
            !fsm__rd_bytes(r, vlen, &val) || !fsm__rd_u64(r, &expire))
            FSM__CORRUPT("snapshot truncated in db %d key %llu", db, (unsigned long long)i);
        if (klen > KV_KEY_MAX_LEN)
            FSM__CORRUPT("db %d key %llu: length %u over the limit", db, (unsigned long long)i,
                         klen);
        /* Strictly increasing: the order snapshots are written in, and no
         * key twice. */
        if (prev != NULL && fsm__key_cmp(prev, prev_len, key, klen) >= 0)
            FSM__CORRUPT("db %d key %llu is out of order or repeated", db,
                         (unsigned long long)i);
        int64_t expire_ms = (int64_t)expire;
        if (!fsm__key_live(expire_ms, clock_ms))
            FSM__CORRUPT("db %d key %llu: deadline %lld is not after the clock %lld", db,
                         (unsigned long long)i, (long long)expire_ms, (long long)clock_ms);
        kv_set(kv, (const char *)key, klen, val, (size_t)vlen, expire_ms);
        prev = key;
        prev_len = klen;
    }
    return 0;
}

static int fsm__restore_sessions(struct fsm__rd *r, const struct fsm *f, uint64_t clock_ms,
                                 struct fsm_sessions *t, char *errmsg, size_t errlen)
{
    uint64_t n;
    if (!fsm__rd_u64(r, &n))
        FSM__CORRUPT("snapshot truncated at the session count");
    if (n > f->sessions_max)
        FSM__CORRUPT("%llu sessions exceed this replica's limit of %zu", (unsigned long long)n,
                     f->sessions_max);
    if (n > fsm__rd_left(r) / FSM_SNAP_SESSION_MIN_SIZE)
        FSM__CORRUPT("%llu sessions do not fit in %zu bytes", (unsigned long long)n,
                     fsm__rd_left(r));
    uint64_t prev_touch_ms = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t client_id, seq, touch_ms, reply_len;
        const unsigned char *reply;
        if (!fsm__rd_u64(r, &client_id) || !fsm__rd_u64(r, &seq) || !fsm__rd_u64(r, &touch_ms) ||
            !fsm__rd_u64(r, &reply_len) || !fsm__rd_bytes(r, reply_len, &reply))
            FSM__CORRUPT("snapshot truncated in session %llu", (unsigned long long)i);
        if (client_id == 0 || seq == 0)
            FSM__CORRUPT("session %llu: client %llu, sequence %llu", (unsigned long long)i,
                         (unsigned long long)client_id, (unsigned long long)seq);
        if (touch_ms > clock_ms || touch_ms < prev_touch_ms)
            FSM__CORRUPT("session %llu: touch time %llu out of order", (unsigned long long)i,
                         (unsigned long long)touch_ms);
        if (fsm__session_find(t, client_id) != NULL)
            FSM__CORRUPT("session %llu: client %llu appears twice", (unsigned long long)i,
                         (unsigned long long)client_id);
        struct fsm_session *e = tcalloc(1, sizeof(*e));
        e->client_id = client_id;
        e->last_seq = seq;
        e->touch_ms = touch_ms;
        e->reply = tmalloc(reply_len ? (size_t)reply_len : 1);
        memcpy(e->reply, reply, (size_t)reply_len);
        e->reply_len = (size_t)reply_len;
        fsm__session_insert(t, e);
        prev_touch_ms = touch_ms;
    }
    return 0;
}

/* Version 2's member table, sorted by id. */
static int fsm__restore_members(struct fsm__rd *r, struct fsm_member *members, uint32_t *n_out,
                                char *errmsg, size_t errlen)
{
    uint32_t n;
    if (!fsm__rd_u32(r, &n))
        FSM__CORRUPT("snapshot truncated at the member count");
    if (n > FSM_MEMBERS_MAX)
        FSM__CORRUPT("%u members exceed the limit of %d", n, FSM_MEMBERS_MAX);
    for (uint32_t i = 0; i < n; i++) {
        uint32_t id, port;
        uint8_t voter, hl;
        const unsigned char *host;
        if (!fsm__rd_u32(r, &id) || !fsm__rd_u32(r, &port) || !fsm__rd_u8(r, &voter) ||
            !fsm__rd_u8(r, &hl) || !fsm__rd_bytes(r, hl, &host))
            FSM__CORRUPT("snapshot truncated in member %u", i);
        if (id == 0 || (i > 0 && id <= members[i - 1].id) || port == 0 || port > UINT16_MAX ||
            voter > 1 || !triad_host_ok((const char *)host, hl, FSM_MEMBER_HOST_MAX))
            FSM__CORRUPT("member %u: a bad or repeated entry", i);
        members[i] = (struct fsm_member){.id = id, .port = (uint16_t)port, .voter = voter};
        memcpy(members[i].host, host, hl);
        members[i].host[hl] = '\0';
    }
    *n_out = n;
    return 0;
}

/* Parse the whole blob into kvs, t and members, which the caller frees on
 * error. */
static int fsm__restore_parse(const struct fsm *f, const void *data, size_t len,
                              struct kv **kvs, struct fsm_sessions *t, struct fsm_member *members,
                              uint32_t *n_members, uint64_t *applied_index, uint64_t *clock_ms,
                              char *errmsg, size_t errlen)
{
    if (len < FSM_SNAP_HEADER_SIZE + 4)
        FSM__CORRUPT("snapshot of %zu bytes is shorter than its header", len);
    /* The checksum first: a flipped bit is reported as such, not as
     * whichever field it happened to land in. */
    uint32_t want = tbuf_read_u32le((const unsigned char *)data + len - 4);
    uint32_t got = crc32c(0, data, len - 4);
    if (want != got)
        FSM__CORRUPT("snapshot checksum mismatch (stored %08x, computed %08x)", want, got);

    struct fsm__rd r = {data, len - 4, 0};
    const unsigned char *magic;
    uint32_t version, ndb;
    (void)fsm__rd_bytes(&r, sizeof(fsm__snap_magic), &magic);
    if (memcmp(magic, fsm__snap_magic, sizeof(fsm__snap_magic)) != 0)
        FSM__CORRUPT("not an fsm snapshot (bad magic)");
    (void)fsm__rd_u32(&r, &version);
    (void)fsm__rd_u64(&r, applied_index);
    (void)fsm__rd_u64(&r, clock_ms);
    (void)fsm__rd_u32(&r, &ndb);
    TRIAD_ASSERT(r.off == FSM_SNAP_HEADER_SIZE);
    if (version != 1 && version != FSM_SNAPSHOT_VERSION)
        FSM__CORRUPT("snapshot version %u is not 1 or %d", version, FSM_SNAPSHOT_VERSION);
    if (*clock_ms > (uint64_t)INT64_MAX)
        FSM__CORRUPT("snapshot clock %llu out of range", (unsigned long long)*clock_ms);
    if (ndb != FSM_DATABASES)
        FSM__CORRUPT("snapshot has %u databases, not %d", ndb, FSM_DATABASES);
    for (int db = 0; db < FSM_DATABASES; db++) {
        int rc = fsm__restore_db(&r, db, kvs[db], (int64_t)*clock_ms, errmsg, errlen);
        if (rc != 0)
            return rc;
    }
    int rc = fsm__restore_sessions(&r, f, *clock_ms, t, errmsg, errlen);
    if (rc != 0)
        return rc;
    *n_members = 0;
    if (version >= 2) {
        rc = fsm__restore_members(&r, members, n_members, errmsg, errlen);
        if (rc != 0)
            return rc;
    }
    if (r.off != r.len)
        FSM__CORRUPT("snapshot has %zu bytes after its %s", r.len - r.off,
                     version >= 2 ? "members" : "sessions");
    return 0;
}

int fsm_restore(struct fsm *f, const void *data, size_t len, char *errmsg, size_t errlen)
{
    struct kv *kvs[FSM_DATABASES];
    struct fsm_sessions t;
    uint64_t applied_index, clock_ms;
    struct fsm_member members[FSM_MEMBERS_MAX];
    uint32_t n_members = 0;
    memset(&t, 0, sizeof(t));
    /* The seeds cmd_server_init uses, so only the contents differ. */
    for (int i = 0; i < FSM_DATABASES; i++)
        kvs[i] = kv_new(f->seed + (uint64_t)i);
    int rc = fsm__restore_parse(f, data, len, kvs, &t, members, &n_members, &applied_index,
                                &clock_ms, errmsg, errlen);
    if (rc != 0) {
        for (int i = 0; i < FSM_DATABASES; i++)
            kv_free(kvs[i]);
        fsm__sessions_free(&t);
        return rc;
    }
    /* Everything checked: now replace. */
    TRIAD_ASSERT(f->srv.databases == FSM_DATABASES);
    for (int i = 0; i < FSM_DATABASES; i++) {
        kv_free(f->srv.db[i]);
        f->srv.db[i] = kvs[i];
    }
    fsm__sessions_free(&f->sessions);
    f->sessions = t;
    memcpy(f->members, members, n_members * sizeof(*members));
    f->n_members = n_members;
    f->members_version++;
    f->clock_ms = clock_ms;
    f->applied_index = applied_index;
    f->srv.now_ms = (int64_t)clock_ms;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* digest                                                                    */
/* ------------------------------------------------------------------------ */

/* Domain seeds, so that a key and a session never hash alike. */
#define FSM_DIGEST_KEY_SEED 0x6b6579736b657973ull     /* "keyskeys" */
#define FSM_DIGEST_SESSION_SEED 0x73657373696f6e73ull /* "sessions" */
#define FSM_DIGEST_DB_MUL 0x9e3779b97f4a7c15ull
#define FSM_DIGEST_MEMBER_SEED 0x6d656d626572736dull /* "membersm" */

struct fsm__digest {
    uint64_t sum;
    uint64_t db_seed;
    int64_t clock_ms;
};

static int fsm__digest_cb(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                          int64_t expire_ms)
{
    struct fsm__digest *d = arg;
    unsigned char exp[8];
    if (!fsm__key_live(expire_ms, d->clock_ms))
        return 0;
    tbuf_write_u64le(exp, (uint64_t)expire_ms);
    uint64_t h = XXH3_64bits_withSeed(key, klen, d->db_seed);
    h = XXH3_64bits_withSeed(val, vlen, h);
    h = XXH3_64bits_withSeed(exp, sizeof(exp), h);
    /* A sum, not a xor: commutative, so the table order does not matter,
     * and two equal hashes do not cancel out. */
    d->sum += h;
    return 0;
}

uint64_t fsm_digest(const struct fsm *f)
{
    struct fsm__digest d = {0, 0, (int64_t)f->clock_ms};
    for (int db = 0; db < FSM_DATABASES; db++) {
        d.db_seed = FSM_DIGEST_KEY_SEED + (uint64_t)(db + 1) * FSM_DIGEST_DB_MUL;
        kv_foreach(f->srv.db[db], fsm__digest_cb, &d);
    }
    for (const struct fsm_session *e = f->sessions.head; e != NULL; e = e->next) {
        unsigned char hdr[24];
        tbuf_write_u64le(hdr, e->client_id);
        tbuf_write_u64le(hdr + 8, e->last_seq);
        tbuf_write_u64le(hdr + 16, e->touch_ms);
        uint64_t h = XXH3_64bits_withSeed(hdr, sizeof(hdr), FSM_DIGEST_SESSION_SEED);
        d.sum += XXH3_64bits_withSeed(e->reply, e->reply_len, h);
    }
    for (uint32_t i = 0; i < f->n_members; i++) {
        const struct fsm_member *m = &f->members[i];
        unsigned char hdr[8];
        tbuf_write_u32le(hdr, m->id);
        hdr[4] = (unsigned char)(m->port & 0xff);
        hdr[5] = (unsigned char)(m->port >> 8);
        hdr[6] = (unsigned char)m->voter;
        hdr[7] = 0;
        uint64_t h = XXH3_64bits_withSeed(hdr, sizeof(hdr), FSM_DIGEST_MEMBER_SEED);
        d.sum += XXH3_64bits_withSeed(m->host, strlen(m->host), h);
    }
    unsigned char tail[16];
    tbuf_write_u64le(tail, d.sum);
    tbuf_write_u64le(tail + 8, f->clock_ms);
    return XXH3_64bits(tail, sizeof(tail));
}
