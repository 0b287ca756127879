/* cmd.c - the command table, dispatch, log records and their replay,
 * MULTI/EXEC/WATCH, and the connection and server commands.
 *
 * Everything here runs on the event loop thread. Nothing does I/O: replies
 * go to c->out, log records leave through s->log_fn, and whatever only the
 * session layer knows comes through s->hooks.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <xxhash.h>

#include "../common/mem.h"
#include "../common/num.h"
#include "cmd_int.h"

/* ------------------------------------------------------------------------ */
/* shared helpers (cmd_int.h)                                                */
/* ------------------------------------------------------------------------ */

bool cmd_arg_is(const char *arg, size_t len, const char *word)
{
    size_t n = strlen(word);
    return n == len && strncasecmp(arg, word, n) == 0;
}

/* Redis's string2ll (num.h), as a long long. */
bool cmd_parse_ll(const char *p, size_t len, long long *out)
{
    int64_t v;
    if (!triad_parse_i64(p, len, &v))
        return false;
    if (out)
        *out = (long long)v;
    return true;
}

/* Redis's string2ld: what strtold accepts, but the whole string, no leading
 * space, no NaN, and no overflow/underflow to infinity or zero. */
#define CMD_LD_CHARS_MAX (5 * 1024) /* MAX_LONG_DOUBLE_CHARS */
bool cmd_parse_ld(const char *p, size_t len, long double *out)
{
    char buf[CMD_LD_CHARS_MAX];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (isspace((unsigned char)buf[0]))
        return false;
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if (end != buf + len)
        return false;
    if (errno == EINVAL || isnan(v))
        return false;
    if (errno == ERANGE && (isinf(v) || v == 0))
        return false;
    if (out)
        *out = v;
    return true;
}

void cmd_reply_ok(struct cmd_client *c)
{
    resp_add_simple(c->out, "OK");
}

void cmd_reply_syntax_error(struct cmd_client *c)
{
    resp_add_error(c->out, "ERR syntax error");
}

void cmd_reply_not_integer(struct cmd_client *c)
{
    resp_add_error(c->out, "ERR value is not an integer or out of range");
}

bool cmd_parse_int_or_reply(struct cmd_client *c, const char *p, size_t len, int *out)
{
    long long v;
    if (!cmd_parse_ll(p, len, &v)) {
        cmd_reply_not_integer(c);
        return false;
    }
    if (v < INT_MIN || v > INT_MAX) {
        resp_add_error(c->out,
                       "ERR value is out of range, value must between -2147483648 and 2147483647");
        return false;
    }
    *out = (int)v;
    return true;
}

#define CMD_NAME_MAX 64 /* longest name echoed in an arity error */
#define CMD_ARITY_MSG_MAX (2 * CMD_NAME_MAX + 64)

/* Redis's arity error for command name (or its subcommand sub, if not
 * NULL), the name in lower case, into msg. */
static void cmd__arity_msg(char *msg, size_t size, const char *name, const char *sub)
{
    char low[CMD_NAME_MAX];
    size_t i;
    for (i = 0; name[i] != '\0' && i + 1 < sizeof(low); i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = '\0';
    snprintf(msg, size, "ERR wrong number of arguments for '%s%s%s' command", low,
             sub != NULL ? "|" : "", sub != NULL ? sub : "");
}

void cmd_reply_wrong_arity(struct cmd_client *c, const char *name)
{
    char msg[CMD_ARITY_MSG_MAX];
    cmd__arity_msg(msg, sizeof(msg), name, NULL);
    resp_add_error(c->out, msg);
}

/* `msg` is the whole text with its code ("ERR ...", "WRONGTYPE ..."), as
 * resp_add_error takes it; a leading '-' is dropped. stats.errors is counted
 * by the dispatcher, which looks at the first byte of every reply, so that
 * the other reply_* helpers and resp_add_error count too. */
void cmd_reply_error(struct cmd_server *s, struct cmd_client *c, const char *msg)
{
    (void)s;
    if (msg[0] == '-')
        msg++;
    resp_add_error(c->out, msg);
}

/* ------------------------------------------------------------------------ */
/* log records                                                               */
/* ------------------------------------------------------------------------ */

#define CMD_LOG_HEADER_SIZE 12 /* [u64 now_ms][u32 ncmds] */
#define CMD_LOG_BUF_KEEP_MAX (1u << 20) /* larger buffers are released after a record */

void cmd_propagate_db(struct cmd_server *s, int db, int argc, char **argv, size_t *argvlen)
{
    TRIAD_ASSERT(db >= 0 && db < s->databases);
    TRIAD_ASSERT(argc >= 1);
    if (s->log_ncmds == 0) {
        if (s->log_begin != NULL) {
            s->log_out = s->log_begin(s->log_arg);
        } else {
            s->log_out = &s->log_buf;
            tbuf_reset(&s->log_buf);
        }
        s->log_start = s->log_out->len;
        tbuf_append_u64le(s->log_out, (uint64_t)s->now_ms);
        tbuf_append_u32le(s->log_out, 0); /* ncmds, patched when the record is finished */
    }
    size_t need = 8;
    for (int i = 0; i < argc; i++) {
        TRIAD_ASSERT(argvlen[i] <= UINT32_MAX);
        need += 4 + argvlen[i];
    }
    struct tbuf *b = s->log_out;
    tbuf_reserve(b, need);
    char *p = b->data + b->len;
    tbuf_write_u32le(p, (uint32_t)db);
    tbuf_write_u32le(p + 4, (uint32_t)argc);
    p += 8;
    for (int i = 0; i < argc; i++) {
        tbuf_write_u32le(p, (uint32_t)argvlen[i]);
        memcpy(p + 4, argv[i], argvlen[i]);
        p += 4 + argvlen[i];
    }
    b->len += need;
    s->log_ncmds++;
}

void cmd_propagate(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                   size_t *argvlen)
{
    cmd_propagate_db(s, c->db, argc, argv, argvlen);
}

bool cmd_record_open(const struct cmd_server *s)
{
    return s->exec_depth > 0 || s->log_ncmds > 0;
}

/* Forget the record being built (replay, or no WAL attached). */
static void cmd__log_discard(struct cmd_server *s)
{
    if (s->log_ncmds > 0 && s->log_out != &s->log_buf)
        s->log_cancel(s->log_arg);
    s->log_ncmds = 0;
    s->log_out = NULL;
    if (s->log_buf.cap > CMD_LOG_BUF_KEEP_MAX)
        tbuf_free(&s->log_buf);
    else
        tbuf_reset(&s->log_buf);
}

/* Turn the commands propagated since the last record into one record. */
static uint64_t cmd__log_finish(struct cmd_server *s)
{
    uint64_t lsn = 0;
    if (s->log_ncmds == 0)
        return 0;
    struct tbuf *b = s->log_out;
    TRIAD_ASSERT(b->len >= s->log_start + CMD_LOG_HEADER_SIZE);
    tbuf_write_u32le(b->data + s->log_start + 8, s->log_ncmds);
    if (b != &s->log_buf) {
        lsn = s->log_end(s->log_arg);
        s->log_ncmds = 0;
        s->log_out = NULL;
        return lsn;
    }
    if (s->log_fn != NULL)
        lsn = s->log_fn(s->log_arg, b->data + s->log_start, b->len - s->log_start);
    cmd__log_discard(s);
    return lsn;
}

/* ------------------------------------------------------------------------ */
/* WATCH                                                                     */
/* ------------------------------------------------------------------------ */

/* One key a client watches (the client's own list). */
struct cmd_watched {
    int db;
    bool existed; /* the key was live at WATCH time: its expiry dirties EXEC */
    char *key;
    size_t klen;
};

/* One watched (db, key) and the clients watching it (the server's table). */
struct cmd_watch_entry {
    struct cmd_watch_entry *next;
    uint64_t hash;
    int db;
    size_t klen;
    struct cmd_client **clients;
    int nclients, cap;
    char key[];
};

struct cmd_watch_table {
    struct cmd_watch_entry **buckets;
    size_t nbuckets; /* power of two */
    size_t nkeys;
};

#define CMD_WATCH_BUCKETS_MIN 16
#define CMD_CLIENT_WATCHED_MAX (1 << 20) /* keys one client may watch */

static uint64_t cmd__watch_hash(int db, const char *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, (uint64_t)db);
}

static struct cmd_watch_entry *cmd__watch_find(struct cmd_watch_table *t, int db,
                                               const char *key, size_t klen, uint64_t h)
{
    if (t->nbuckets == 0)
        return NULL;
    struct cmd_watch_entry *e = t->buckets[h & (t->nbuckets - 1)];
    for (; e != NULL; e = e->next)
        if (e->hash == h && e->db == db && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

static void cmd__watch_grow(struct cmd_watch_table *t)
{
    size_t n = t->nbuckets ? t->nbuckets * 2 : CMD_WATCH_BUCKETS_MIN;
    struct cmd_watch_entry **b = tcalloc(n, sizeof(*b));
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct cmd_watch_entry *e = t->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    tfree(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

static void cmd__watch_add(struct cmd_server *s, struct cmd_client *c, int db, const char *key,
                           size_t klen)
{
    struct cmd_watch_table *t = s->watch;
    uint64_t h = cmd__watch_hash(db, key, klen);
    struct cmd_watch_entry *e = cmd__watch_find(t, db, key, klen, h);
    if (e != NULL) {
        for (int i = 0; i < e->nclients; i++)
            if (e->clients[i] == c)
                return; /* already watched by this client */
    } else {
        if (t->nkeys >= t->nbuckets)
            cmd__watch_grow(t);
        e = tmalloc(sizeof(*e) + klen);
        memset(e, 0, sizeof(*e));
        e->hash = h;
        e->db = db;
        e->klen = klen;
        memcpy(e->key, key, klen);
        size_t b = h & (t->nbuckets - 1);
        e->next = t->buckets[b];
        t->buckets[b] = e;
        t->nkeys++;
    }
    if (e->nclients == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 2;
        e->clients = trealloc(e->clients, (size_t)e->cap * sizeof(*e->clients));
    }
    e->clients[e->nclients++] = c;

    if (c->watched_len == c->watched_cap) {
        c->watched_cap = c->watched_cap ? c->watched_cap * 2 : 4;
        c->watched = trealloc(c->watched, (size_t)c->watched_cap * sizeof(*c->watched));
    }
    struct cmd_watched *w = &c->watched[c->watched_len++];
    w->db = db;
    w->key = tstrndup(key, klen);
    w->klen = klen;
    w->existed = kv_exists(s->db[db], key, klen, s->now_ms);
}

/* Drop every WATCH of c (EXEC, DISCARD, UNWATCH, RESET, disconnect). */
static void cmd__unwatch_all(struct cmd_server *s, struct cmd_client *c)
{
    struct cmd_watch_table *t = s->watch;
    for (int i = 0; i < c->watched_len; i++) {
        struct cmd_watched *w = &c->watched[i];
        uint64_t h = cmd__watch_hash(w->db, w->key, w->klen);
        struct cmd_watch_entry **pp = &t->buckets[h & (t->nbuckets - 1)];
        while (*pp != NULL && !((*pp)->hash == h && (*pp)->db == w->db && (*pp)->klen == w->klen &&
                                memcmp((*pp)->key, w->key, w->klen) == 0))
            pp = &(*pp)->next;
        struct cmd_watch_entry *e = *pp;
        TRIAD_ASSERT(e != NULL); /* every watched key of a client is in the table */
        for (int j = 0; j < e->nclients; j++) {
            if (e->clients[j] == c) {
                e->clients[j] = e->clients[--e->nclients];
                break;
            }
        }
        if (e->nclients == 0) {
            *pp = e->next;
            tfree(e->clients);
            tfree(e);
            t->nkeys--;
        }
        tfree(w->key);
    }
    tfree(c->watched);
    c->watched = NULL;
    c->watched_len = c->watched_cap = 0;
}

static void cmd__watch_mark(struct cmd_watch_entry *e)
{
    for (int i = 0; i < e->nclients; i++)
        e->clients[i]->flags |= CMD_CLIENT_DIRTY_CAS;
}

void cmd_touch(struct cmd_server *s, int db, const char *key, size_t klen)
{
    s->dirty++;
    /* The common case - nobody watches anything - costs one load. */
    if (TRIAD_LIKELY(s->watch->nkeys == 0))
        return;
    struct cmd_watch_entry *e =
        cmd__watch_find(s->watch, db, key, klen, cmd__watch_hash(db, key, klen));
    if (e != NULL)
        cmd__watch_mark(e);
}

void cmd_touch_key(struct cmd_server *s, int db, const char *key, size_t klen)
{
    if (s->watch->nkeys == 0)
        return;
    struct cmd_watch_entry *e =
        cmd__watch_find(s->watch, db, key, klen, cmd__watch_hash(db, key, klen));
    if (e != NULL)
        cmd__watch_mark(e);
}

/* Called before the db is emptied: as Redis does, only watchers of keys that
 * exist are dirtied (watching an absent key and flushing changes nothing). */
void cmd_touch_all(struct cmd_server *s, int db)
{
    struct cmd_watch_table *t = s->watch;
    s->dirty++;
    if (t->nkeys == 0)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        for (struct cmd_watch_entry *e = t->buckets[i]; e != NULL; e = e->next) {
            if (db != -1 && e->db != db)
                continue;
            if (kv_exists(s->db[e->db], e->key, e->klen, s->now_ms))
                cmd__watch_mark(e);
        }
    }
}

/* A key live at WATCH time that has expired since makes EXEC fail, as in
 * Redis 7: from the client's view the key changed. */
static bool cmd__watched_expired(struct cmd_server *s, struct cmd_client *c)
{
    for (int i = 0; i < c->watched_len; i++) {
        struct cmd_watched *w = &c->watched[i];
        if (w->existed && !kv_exists(s->db[w->db], w->key, w->klen, s->now_ms))
            return true;
    }
    return false;
}

static void cmd_active_expire_cb(void *arg, const char *key, size_t klen)
{
    void **a = arg;
    cmd_touch_key(a[0], *(int *)a[1], key, klen);
}

/* Expired keys need no log record: every replica (and a replay) decides
 * that a key with a past deadline is absent from the record's now_ms. */
size_t cmd_active_expire(struct cmd_server *s, size_t max_keys)
{
    size_t total = 0;
    for (int db = 0; db < s->databases && total < max_keys; db++) {
        void *a[2] = {s, &db};
        total += kv_expire_cycle(s->db[db], s->now_ms, max_keys - total, cmd_active_expire_cb, a);
    }
    s->stats.expired_keys += total;
    return total;
}

/* ------------------------------------------------------------------------ */
/* the table                                                                 */
/* ------------------------------------------------------------------------ */

#define W CMD_WRITE
#define R CMD_READONLY
#define M CMD_DENYOOM
#define F CMD_FAST
#define NA CMD_NOAUTH
#define NM CMD_NOMULTI
#define AD CMD_ADMIN
#define NS CMD_NOSCRIPT
#define LD CMD_LOADING
#define ST CMD_STALE

/* Arity, flags and key positions as Redis 7.0's COMMAND INFO reports them;
 * groups and summaries as its COMMAND DOCS does. */
static const struct cmd_spec cmd__table[] = {
    /* name          handler          arity flags            first last step group summary since */
    {"GET", cmd_get, 2, R | F, 1, 1, 1, "string", "Get the value of a key", "1.0.0"},
    {"SET", cmd_set, -3, W | M, 1, 1, 1, "string", "Set the string value of a key", "1.0.0"},
    {"SETNX", cmd_setnx, 3, W | M | F, 1, 1, 1, "string",
     "Set the value of a key, only if the key does not exist", "1.0.0"},
    {"GETSET", cmd_getset, 3, W | M | F, 1, 1, 1, "string",
     "Set the string value of a key and return its old value", "1.0.0"},
    {"GETDEL", cmd_getdel, 2, W | F, 1, 1, 1, "string", "Get the value of a key and delete the key",
     "6.2.0"},
    {"MGET", cmd_mget, -2, R | F, 1, -1, 1, "string", "Get the values of all the given keys",
     "1.0.0"},
    {"MSET", cmd_mset, -3, W | M, 1, -1, 2, "string", "Set multiple keys to multiple values",
     "1.0.1"},
    {"MSETNX", cmd_msetnx, -3, W | M, 1, -1, 2, "string",
     "Set multiple keys to multiple values, only if none of the keys exist", "1.0.1"},
    {"INCR", cmd_incr, 2, W | M | F, 1, 1, 1, "string", "Increment the integer value of a key by one",
     "1.0.0"},
    {"DECR", cmd_decr, 2, W | M | F, 1, 1, 1, "string", "Decrement the integer value of a key by one",
     "1.0.0"},
    {"INCRBY", cmd_incrby, 3, W | M | F, 1, 1, 1, "string",
     "Increment the integer value of a key by the given amount", "1.0.0"},
    {"DECRBY", cmd_decrby, 3, W | M | F, 1, 1, 1, "string",
     "Decrement the integer value of a key by the given number", "1.0.0"},
    {"INCRBYFLOAT", cmd_incrbyfloat, 3, W | M | F, 1, 1, 1, "string",
     "Increment the float value of a key by the given amount", "2.6.0"},
    {"APPEND", cmd_append, 3, W | M | F, 1, 1, 1, "string", "Append a value to a key", "2.0.0"},
    {"STRLEN", cmd_strlen, 2, R | F, 1, 1, 1, "string", "Get the length of the value stored in a key",
     "2.2.0"},
    {"SETRANGE", cmd_setrange, 4, W | M, 1, 1, 1, "string",
     "Overwrite part of a string at key starting at the specified offset", "2.2.0"},
    {"GETRANGE", cmd_getrange, 4, R, 1, 1, 1, "string",
     "Get a substring of the string stored at a key", "2.4.0"},
    {"SUBSTR", cmd_substr, 4, R, 1, 1, 1, "string", "Get a substring of the string stored at a key",
     "1.0.0"},
    {"LCS", cmd_lcs, -3, R, 1, 2, 1, "string", "Find longest common substring", "7.0.0"},

    {"EXPIRE", cmd_expire, -3, W | F, 1, 1, 1, "generic", "Set a key's time to live in seconds",
     "1.0.0"},
    {"PEXPIRE", cmd_pexpire, -3, W | F, 1, 1, 1, "generic",
     "Set a key's time to live in milliseconds", "2.6.0"},
    {"EXPIREAT", cmd_expireat, -3, W | F, 1, 1, 1, "generic",
     "Set the expiration for a key as a UNIX timestamp", "1.2.0"},
    {"PEXPIREAT", cmd_pexpireat, -3, W | F, 1, 1, 1, "generic",
     "Set the expiration for a key as a UNIX timestamp specified in milliseconds", "2.6.0"},
    {"TTL", cmd_ttl, 2, R | F, 1, 1, 1, "generic", "Get the time to live for a key in seconds",
     "1.0.0"},
    {"PTTL", cmd_pttl, 2, R | F, 1, 1, 1, "generic", "Get the time to live for a key in milliseconds",
     "2.6.0"},
    {"EXPIRETIME", cmd_expiretime, 2, R | F, 1, 1, 1, "generic",
     "Get the expiration Unix timestamp for a key", "7.0.0"},
    {"PEXPIRETIME", cmd_pexpiretime, 2, R | F, 1, 1, 1, "generic",
     "Get the expiration Unix timestamp for a key in milliseconds", "7.0.0"},
    {"PERSIST", cmd_persist, 2, W | F, 1, 1, 1, "generic", "Remove the expiration from a key",
     "2.2.0"},
    {"SETEX", cmd_setex, 4, W | M, 1, 1, 1, "string", "Set the value and expiration of a key",
     "2.0.0"},
    {"PSETEX", cmd_psetex, 4, W | M, 1, 1, 1, "string",
     "Set the value and expiration in milliseconds of a key", "2.6.0"},
    {"GETEX", cmd_getex, -2, W | F, 1, 1, 1, "string",
     "Get the value of a key and optionally set its expiration", "6.2.0"},

    {"DEL", cmd_del, -2, W, 1, -1, 1, "generic", "Delete a key", "1.0.0"},
    {"UNLINK", cmd_unlink, -2, W | F, 1, -1, 1, "generic",
     "Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non "
     "blocking.",
     "4.0.0"},
    {"EXISTS", cmd_exists, -2, R | F, 1, -1, 1, "generic", "Determine if a key exists", "1.0.0"},
    {"TYPE", cmd_type, 2, R | F, 1, 1, 1, "generic", "Determine the type stored at key", "1.0.0"},
    {"KEYS", cmd_keys, 2, R, 0, 0, 0, "generic", "Find all keys matching the given pattern",
     "1.0.0"},
    {"SCAN", cmd_scan, -2, R, 0, 0, 0, "generic", "Incrementally iterate the keys space", "2.8.0"},
    {"RENAME", cmd_rename, 3, W, 1, 2, 1, "generic", "Rename a key", "1.0.0"},
    {"RENAMENX", cmd_renamenx, 3, W | F, 1, 2, 1, "generic",
     "Rename a key, only if the new key does not exist", "1.0.0"},
    {"COPY", cmd_copy, -3, W | M, 1, 2, 1, "generic", "Copy a key", "6.2.0"},
    {"DBSIZE", cmd_dbsize, 1, R | F, 0, 0, 0, "server",
     "Return the number of keys in the selected database", "1.0.0"},
    {"FLUSHALL", cmd_flushall, -1, W, 0, 0, 0, "server", "Remove all keys from all databases",
     "1.0.0"},
    {"FLUSHDB", cmd_flushdb, -1, W, 0, 0, 0, "server", "Remove all keys from the current database",
     "1.0.0"},
    {"RANDOMKEY", cmd_randomkey, 1, R, 0, 0, 0, "generic", "Return a random key from the keyspace",
     "1.0.0"},
    {"TOUCH", cmd_touch_cmd, -2, R | F, 1, -1, 1, "generic",
     "Alters the last access time of a key(s). Returns the number of existing keys specified.",
     "3.2.1"},

    {"PING", cmd_ping, -1, F, 0, 0, 0, "connection", "Ping the server", "1.0.0"},
    {"ECHO", cmd_echo, 2, LD | ST | F, 0, 0, 0, "connection", "Echo the given string", "1.0.0"},
    {"HELLO", cmd_hello, -1, NS | LD | ST | F | NA, 0, 0, 0, "connection", "Handshake with Redis",
     "6.0.0"},
    {"AUTH", cmd_auth, -2, NS | LD | ST | F | NA, 0, 0, 0, "connection",
     "Authenticate to the server", "1.0.0"},
    {"CLIENT", cmd_client, -2, CMD_SUBCOMMANDS, 0, 0, 0, "connection",
     "A container for client connection commands", "2.4.0"},
    {"SELECT", cmd_select, 2, LD | ST | F, 0, 0, 0, "connection",
     "Change the selected database for the current connection", "1.0.0"},
    /* Redis 7.0 answers QUIT with any arguments, even before AUTH */
    {"QUIT", cmd_quit, -1, NS | LD | ST | F | NA | NM, 0, 0, 0, "connection", "Close the connection",
     "1.0.0"},
    {"RESET", cmd_reset, 1, NS | LD | ST | F | NA | NM, 0, 0, 0, "connection",
     "Reset the connection", "6.2.0"},

    {"INFO", cmd_info, -1, LD | ST, 0, 0, 0, "server",
     "Get information and statistics about the server", "1.0.0"},
    {"CONFIG", cmd_config, -2, CMD_SUBCOMMANDS, 0, 0, 0, "server",
     "A container for server configuration commands", "2.0.0"},
    {"COMMAND", cmd_command, -1, LD | ST | CMD_SUBCOMMANDS, 0, 0, 0, "server", "Get array of Redis command details",
     "2.8.13"},
    {"TIME", cmd_time, 1, LD | ST | F, 0, 0, 0, "server", "Return the current server time", "2.6.0"},
    {"SHUTDOWN", cmd_shutdown, -1, AD | NS | LD | ST | CMD_DENYMULTI, 0, 0, 0, "server",
     "Synchronously save the dataset to disk and then shut down the server", "1.0.0"},
    {"SAVE", cmd_save, 1, AD | NS | CMD_DENYMULTI, 0, 0, 0, "server", "Synchronously save the dataset to disk",
     "1.0.0"},
    {"BGSAVE", cmd_bgsave, -1, AD | NS, 0, 0, 0, "server", "Asynchronously save the dataset to disk",
     "1.0.0"},
    {"LASTSAVE", cmd_lastsave, 1, LD | ST | F, 0, 0, 0, "server",
     "Get the UNIX time stamp of the last successful save to disk", "1.0.0"},
    {"ROLE", cmd_role, 1, NS | LD | ST | F, 0, 0, 0, "server",
     "Return the role of the instance in the context of replication", "2.8.12"},
    {"WAIT", cmd_wait, 3, NS, 0, 0, 0, "generic",
     "Wait for the synchronous replication of all the write commands sent in the context of "
     "the current connection",
     "3.0.0"},

    {"MULTI", cmd_multi, 1, NS | LD | ST | F | NM, 0, 0, 0, "transactions",
     "Mark the start of a transaction block", "1.2.0"},
    {"EXEC", cmd_exec_cmd, 1, NS | LD | ST | NM, 0, 0, 0, "transactions",
     "Execute all commands issued after MULTI", "1.2.0"},
    {"DISCARD", cmd_discard, 1, NS | LD | ST | F | NM, 0, 0, 0, "transactions",
     "Discard all commands issued after MULTI", "2.0.0"},
    {"WATCH", cmd_watch, -2, NS | LD | ST | F | NM, 1, -1, 1, "transactions",
     "Watch the given keys to determine execution of the MULTI/EXEC block", "2.2.0"},
    {"UNWATCH", cmd_unwatch, 1, NS | LD | ST | F, 0, 0, 0, "transactions",
     "Forget about all watched keys", "2.2.0"},
};

#undef W
#undef R
#undef M
#undef F
#undef NA
#undef NM
#undef AD
#undef NS
#undef LD
#undef ST

_Static_assert(TRIAD_ARRAY_LEN(cmd__table) <= CMD_TABLE_MAX, "cmdstat_hint is too small");

const struct cmd_spec *cmd_table(size_t *count)
{
    *count = TRIAD_ARRAY_LEN(cmd__table);
    return cmd__table;
}

/* Lookup: an open-addressing index over the table, built once. Names are
 * hashed upper-cased from a stack copy, so a lookup never allocates. */
#define CMD_INDEX_SIZE 256     /* slots; a power of two, > 2x the table */
#define CMD_LOOKUP_NAME_MAX 32 /* longer names are not commands */
_Static_assert(CMD_INDEX_SIZE >= 2 * TRIAD_ARRAY_LEN(cmd__table), "command index too small");

static uint8_t cmd__index[CMD_INDEX_SIZE]; /* table position + 1; 0 = empty */
static uint8_t cmd__name_len[TRIAD_ARRAY_LEN(cmd__table)];
static pthread_once_t cmd__index_once = PTHREAD_ONCE_INIT;

static uint32_t cmd__name_hash(const char *up, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)up[i]) * 16777619u;
    return h;
}

static void cmd__index_build(void)
{
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(cmd__table); i++) {
        size_t len = strlen(cmd__table[i].name);
        TRIAD_ASSERT(len <= CMD_LOOKUP_NAME_MAX);
        cmd__name_len[i] = (uint8_t)len;
        uint32_t slot = cmd__name_hash(cmd__table[i].name, len) & (CMD_INDEX_SIZE - 1);
        while (cmd__index[slot] != 0)
            slot = (slot + 1) & (CMD_INDEX_SIZE - 1);
        cmd__index[slot] = (uint8_t)(i + 1);
    }
}

const struct cmd_spec *cmd_lookup(const char *name, size_t len)
{
    char up[CMD_LOOKUP_NAME_MAX];
    if (len == 0 || len > CMD_LOOKUP_NAME_MAX)
        return NULL;
    pthread_once(&cmd__index_once, cmd__index_build);
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        up[i] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 32) : ch;
    }
    uint32_t slot = cmd__name_hash(up, len) & (CMD_INDEX_SIZE - 1);
    for (;;) {
        uint8_t at = cmd__index[slot];
        if (at == 0)
            return NULL;
        if (cmd__name_len[at - 1] == len && memcmp(cmd__table[at - 1].name, up, len) == 0)
            return &cmd__table[at - 1];
        slot = (slot + 1) & (CMD_INDEX_SIZE - 1);
    }
}

/* ------------------------------------------------------------------------ */
/* server and client                                                         */
/* ------------------------------------------------------------------------ */

void cmd_server_init(struct cmd_server *s, int databases, uint64_t seed)
{
    TRIAD_ASSERT(databases >= 1 && databases <= CMD_DATABASES_MAX);
    memset(s, 0, sizeof(*s));
    s->databases = databases;
    s->seed = seed;
    for (int i = 0; i < databases; i++)
        s->db[i] = kv_new(seed + (uint64_t)i);
    s->watch = tcalloc(1, sizeof(*s->watch));
    pthread_once(&cmd__index_once, cmd__index_build);
}

void cmd_server_free(struct cmd_server *s)
{
    for (int i = 0; i < s->databases; i++)
        kv_free(s->db[i]);
    /* Clients are freed first (cmd_client_free unwatches), so the table is
     * empty here; free whatever is left anyway. */
    struct cmd_watch_table *t = s->watch;
    for (size_t i = 0; i < t->nbuckets; i++) {
        struct cmd_watch_entry *e = t->buckets[i], *next;
        for (; e != NULL; e = next) {
            next = e->next;
            tfree(e->clients);
            tfree(e);
        }
    }
    tfree(t->buckets);
    tfree(t);
    tbuf_free(&s->log_buf);
    memset(s, 0, sizeof(*s));
}

void cmd_client_init(struct cmd_client *c, uint64_t id, struct tbuf *out)
{
    memset(c, 0, sizeof(*c));
    c->id = id;
    c->proto = 2;
    c->out = out;
}

static void cmd__queue_free(struct cmd_client *c)
{
    for (int i = 0; i < c->queue_len; i++) {
        struct cmd_queued *q = &c->queue[i];
        for (int j = 0; j < q->argc; j++)
            tfree(q->argv[j]);
        tfree(q->argv);
        tfree(q->argvlen);
    }
    tfree(c->queue);
    c->queue = NULL;
    c->queue_len = c->queue_cap = 0;
}

/* MULTI ends: drop the queue, the transaction flags and the WATCHes. */
static void cmd__discard_transaction(struct cmd_server *s, struct cmd_client *c)
{
    cmd__queue_free(c);
    c->flags &= ~(CMD_CLIENT_MULTI | CMD_CLIENT_DIRTY_CAS | CMD_CLIENT_DIRTY_EXEC);
    cmd__unwatch_all(s, c);
}

void cmd_discard_transaction(struct cmd_server *s, struct cmd_client *c)
{
    cmd__discard_transaction(s, c);
}

void cmd_client_free(struct cmd_server *s, struct cmd_client *c)
{
    cmd__discard_transaction(s, c);
    tfree(c->name);
    c->name = NULL;
}

/* ------------------------------------------------------------------------ */
/* dispatch                                                                  */
/* ------------------------------------------------------------------------ */

#define CMD_ERR_ARGS_MAX 128 /* bytes of arguments echoed by "unknown command" */

/* Count an error reply: in total and by its code, the text up to the first
 * space or line end ("ERR", "WRONGPASS", ...). */
static void cmd__count_error(struct cmd_server *s, const char *text, size_t len)
{
    s->stats.errors++;
    size_t n = 0;
    while (n < len && n + 1 < CMD_ERRORCODE_MAX && text[n] != ' ' && text[n] != '\r' &&
           text[n] != '\n')
        n++;
    struct cmd_stats *st = &s->stats;
    for (int i = 0; i < st->nerrorstats; i++) {
        if (strncmp(st->errorstats[i].code, text, n) == 0 && st->errorstats[i].code[n] == '\0') {
            st->errorstats[i].count++;
            return;
        }
    }
    if (st->nerrorstats == CMD_ERRORSTATS_MAX)
        return;
    struct cmd_errorstat *e = &st->errorstats[st->nerrorstats++];
    memcpy(e->code, text, n);
    e->code[n] = '\0';
    e->count = 1;
}

/* The commandstats entry of a command (or of its subcommand, for the
 * commands that have them: "config|get"); NULL once the table is full. */
static struct cmd_cmdstat *cmd__cmdstat(struct cmd_server *s, const struct cmd_spec *cmd, int argc,
                                        char **argv, size_t *argvlen)
{
    char name[CMD_CMDSTAT_NAME_MAX];
    size_t n = 0;
    for (const char *p = cmd->name; *p != '\0' && n + 1 < sizeof(name); p++)
        name[n++] = (char)tolower((unsigned char)*p);
    if (argc >= 2 && (cmd->flags & CMD_SUBCOMMANDS) && n + 2 < sizeof(name)) {
        name[n++] = '|';
        for (size_t i = 0; i < argvlen[1] && n + 1 < sizeof(name); i++)
            name[n++] = (char)tolower((unsigned char)argv[1][i]);
    }
    name[n] = '\0';
    struct cmd_stats *st = &s->stats;
    /* a command without subcommands remembers its entry: no search on the
     * hot path (the hint is checked, RESETSTAT clears the table) */
    bool plain = !(argc >= 2 && (cmd->flags & CMD_SUBCOMMANDS));
    size_t ti = (size_t)(cmd - cmd__table);
    if (plain && ti < TRIAD_ARRAY_LEN(cmd__table)) {
        int h = st->cmdstat_hint[ti] - 1;
        if (h >= 0 && h < st->ncmdstats && strcmp(st->cmdstats[h].name, name) == 0)
            return &st->cmdstats[h];
    }
    for (int i = 0; i < st->ncmdstats; i++)
        if (strcmp(st->cmdstats[i].name, name) == 0) {
            if (plain && ti < TRIAD_ARRAY_LEN(cmd__table))
                st->cmdstat_hint[ti] = (uint16_t)(i + 1);
            return &st->cmdstats[i];
        }
    if (st->ncmdstats == CMD_CMDSTATS_MAX)
        return NULL;
    struct cmd_cmdstat *e = &st->cmdstats[st->ncmdstats++];
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name, n + 1);
    if (plain && ti < TRIAD_ARRAY_LEN(cmd__table))
        st->cmdstat_hint[ti] = (uint16_t)st->ncmdstats;
    return e;
}

/* Run one handler and keep the statistics. An error reply is recognised by
 * its first byte, so every way of replying with an error is counted. */
static void cmd__call(struct cmd_server *s, struct cmd_client *c, const struct cmd_spec *cmd,
                      int argc, char **argv, size_t *argvlen)
{
    size_t mark = c->out->len;
    uint64_t t0 = s->clock_us != NULL ? s->clock_us() : 0;
    c->last_cmd = cmd->name;
    c->last_sub[0] = '\0';
    if (argc >= 2 && (cmd->flags & CMD_SUBCOMMANDS)) {
        size_t n = TRIAD_MIN(argvlen[1], sizeof(c->last_sub) - 1);
        for (size_t i = 0; i < n; i++)
            c->last_sub[i] = (char)tolower((unsigned char)argv[1][i]);
        c->last_sub[n] = '\0';
    }
    cmd->fn(s, c, argc, argv, argvlen);
    s->stats.commands_processed++;
    bool failed = c->out->len > mark && c->out->data[mark] == '-';
    if (failed)
        cmd__count_error(s, c->out->data + mark + 1, c->out->len - mark - 1);
    struct cmd_cmdstat *cs = cmd__cmdstat(s, cmd, argc, argv, argvlen);
    if (cs != NULL) {
        cs->calls++;
        cs->failed += failed;
        if (s->clock_us != NULL)
            cs->usec += s->clock_us() - t0;
    }
}

/* A known command refused before it ran counts as its rejected call. */
static void cmd__count_rejected(struct cmd_server *s, const struct cmd_spec *cmd, int argc,
                                char **argv, size_t *argvlen)
{
    struct cmd_cmdstat *cs = cmd__cmdstat(s, cmd, argc, argv, argvlen);
    if (cs != NULL)
        cs->rejected++;
}

/* A command refused before it ran: inside MULTI it also dooms the EXEC. */
static void cmd__reject(struct cmd_server *s, struct cmd_client *c, const char *msg)
{
    if (c->flags & CMD_CLIENT_MULTI)
        c->flags |= CMD_CLIENT_DIRTY_EXEC;
    s->stats.rejected_calls++;
    cmd__count_error(s, msg, strlen(msg));
    resp_add_error(c->out, msg);
}

/* A known command refused before it ran (msg: the error, "ERR ..."): its
 * rejected call counted, and the refusal. An EXEC refused takes its
 * transaction with it, as Redis does (execCommandAbort), inside MULTI or
 * not, saying why. */
static void cmd__reject_call(struct cmd_server *s, struct cmd_client *c, const struct cmd_spec *cmd,
                             int argc, char **argv, size_t *argvlen, const char *msg)
{
    cmd__count_rejected(s, cmd, argc, argv, argvlen);
    if (cmd->fn != cmd_exec_cmd) {
        cmd__reject(s, c, msg);
        return;
    }
    if (strncmp(msg, "ERR ", 4) == 0)
        msg += 4;
    cmd__discard_transaction(s, c);
    s->stats.rejected_calls++;
    cmd__count_error(s, "EXECABORT", 9);
    resp_add_errorf(c->out, "EXECABORT Transaction discarded because of: %s", msg);
}

static void cmd__reject_unknown(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                                size_t *argvlen)
{
    /* Redis 7.0's text: the name (up to 128 bytes) and the first arguments,
     * each quoted and followed by a space, while fewer than 128 bytes of
     * them have been written. */
    struct tbuf m = {0};
    tbuf_appendf(&m, "ERR unknown command '%.*s', with args beginning with: ",
                 (int)TRIAD_MIN(argvlen[0], (size_t)128), argv[0]);
    size_t args_start = m.len;
    for (int i = 1; i < argc && m.len - args_start < CMD_ERR_ARGS_MAX; i++) {
        size_t room = CMD_ERR_ARGS_MAX - (m.len - args_start);
        tbuf_appendf(&m, "'%.*s' ", (int)TRIAD_MIN(argvlen[i], room), argv[i]);
    }
    tbuf_appendc(&m, '\0');
    cmd__reject(s, c, m.data);
    tbuf_free(&m);
}

static bool cmd__arity_fits(int arity, int argc)
{
    return arity > 0 ? argc == arity : argc >= -arity;
}

static bool cmd__arity_ok(const struct cmd_spec *cmd, int argc)
{
    return cmd__arity_fits(cmd->arity, argc);
}

/* Refuse cmd (or its subcommand sub, if not NULL) for a wrong number of
 * arguments, in Redis's words. */
static void cmd__reject_arity(struct cmd_server *s, struct cmd_client *c,
                              const struct cmd_spec *cmd, const char *sub, int argc, char **argv,
                              size_t *argvlen)
{
    char msg[CMD_ARITY_MSG_MAX];
    cmd__arity_msg(msg, sizeof(msg), cmd->name, sub);
    cmd__reject_call(s, c, cmd, argc, argv, argvlen, msg);
}

static bool cmd__auth_required(struct cmd_server *s, struct cmd_client *c)
{
    return s->requirepass != NULL && s->requirepass[0] != '\0' && !c->authenticated;
}

static bool cmd__over_maxmemory(struct cmd_server *s)
{
    return s->maxmemory != 0 && s->used_memory != NULL && s->used_memory() > s->maxmemory;
}

/* Does the queued transaction hold a command refused under memory pressure? */
static bool cmd__queue_denyoom(struct cmd_client *c)
{
    for (int i = 0; i < c->queue_len; i++) {
        const struct cmd_spec *q = cmd_lookup(c->queue[i].argv[0], c->queue[i].argvlen[0]);
        if (q != NULL && (q->flags & CMD_DENYOOM))
            return true;
    }
    return false;
}

static void cmd__queue_add(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                           size_t *argvlen)
{
    if (c->queue_len >= CMD_MULTI_QUEUE_MAX) {
        cmd__reject(s, c, "ERR Transaction queue limit reached");
        return;
    }
    if (c->queue_len == c->queue_cap) {
        c->queue_cap = c->queue_cap ? c->queue_cap * 2 : 8;
        c->queue = trealloc(c->queue, (size_t)c->queue_cap * sizeof(*c->queue));
    }
    struct cmd_queued *q = &c->queue[c->queue_len++];
    q->argc = argc;
    q->argv = tmalloc((size_t)argc * sizeof(*q->argv));
    q->argvlen = tmalloc((size_t)argc * sizeof(*q->argvlen));
    for (int i = 0; i < argc; i++) {
        q->argv[i] = tstrndup(argv[i], argvlen[i]);
        q->argvlen[i] = argvlen[i];
    }
    resp_add_simple(c->out, "QUEUED");
}

static uint64_t cmd__exec(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                          size_t *argvlen);

/* CLIENT REPLY OFF|SKIP: what a command replies while they are in force is
 * taken back out of the output buffer (SKIP covers the command after it). */
uint64_t cmd_exec(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                  size_t *argvlen)
{
    size_t mark = c->out->len;
    bool skip = (c->flags & CMD_CLIENT_REPLY_SKIP) != 0;
    uint64_t lsn = cmd__exec(s, c, argc, argv, argvlen);
    if (c->flags & CMD_CLIENT_REPLY_SKIP_NOW) {
        /* this was the SKIP itself: the next command is the one skipped */
        c->flags &= ~CMD_CLIENT_REPLY_SKIP_NOW;
        skip = true;
    } else if (skip) {
        c->flags &= ~CMD_CLIENT_REPLY_SKIP;
    }
    if (skip || (c->flags & CMD_CLIENT_REPLY_OFF)) {
        TRIAD_ASSERT(c->out->len >= mark);
        c->out->len = mark;
    }
    return lsn;
}

static uint64_t cmd__exec(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                          size_t *argvlen)
{
    TRIAD_ASSERT(argc >= 1);
    TRIAD_ASSERT(s->exec_depth == 0);
    TRIAD_ASSERT(s->log_ncmds == 0);

    /* The checks run in Redis's order (processCommand): existence, arity,
     * authentication, memory, then MULTI queueing. */
    const struct cmd_spec *cmd = cmd_lookup(argv[0], argvlen[0]);
    if (cmd == NULL) {
        cmd__reject_unknown(s, c, argc, argv, argvlen);
        return 0;
    }
    if (!cmd__arity_ok(cmd, argc)) {
        cmd__reject_arity(s, c, cmd, NULL, argc, argv, argvlen);
        return 0;
    }
    if ((cmd->flags & CMD_SUBCOMMANDS) && argc >= 2) {
        const char *sub;
        int sub_arity;
        if (!cmd_docs_subcommand(cmd, argv[1], argvlen[1], &sub, &sub_arity)) {
            /* not counted as a call of any command: the name is the
             * client's text, and Redis records none either */
            char msg[CMD_NAME_MAX + 200];
            size_t n = TRIAD_MIN(argvlen[1], (size_t)128), i;
            char up[CMD_NAME_MAX];
            for (i = 0; i < argvlen[0] && i + 1 < sizeof(up); i++)
                up[i] = (char)toupper((unsigned char)argv[0][i]);
            up[i] = '\0';
            snprintf(msg, sizeof(msg), "ERR unknown subcommand '%.*s'. Try %s HELP.", (int)n,
                     argv[1], up);
            cmd__reject(s, c, msg);
            return 0;
        }
        if (!cmd__arity_fits(sub_arity, argc)) {
            cmd__reject_arity(s, c, cmd, sub, argc, argv, argvlen);
            return 0;
        }
    }
    if (cmd__auth_required(s, c) && !(cmd->flags & CMD_NOAUTH)) {
        cmd__reject_call(s, c, cmd, argc, argv, argvlen, "NOAUTH Authentication required.");
        return 0;
    }
    bool is_exec = cmd->fn == cmd_exec_cmd;
    if (((cmd->flags & CMD_DENYOOM) ||
         (is_exec && (c->flags & CMD_CLIENT_MULTI) && cmd__queue_denyoom(c))) &&
        cmd__over_maxmemory(s)) {
        cmd__reject_call(s, c, cmd, argc, argv, argvlen,
                         "OOM command not allowed when used memory > 'maxmemory'.");
        return 0;
    }
    if ((c->flags & CMD_CLIENT_MULTI) && (cmd->flags & CMD_DENYMULTI)) {
        cmd__count_rejected(s, cmd, argc, argv, argvlen);
        cmd__reject(s, c, "ERR Command not allowed inside a transaction");
        return 0;
    }
    if ((c->flags & CMD_CLIENT_MULTI) && !(cmd->flags & CMD_NOMULTI)) {
        cmd__queue_add(s, c, argc, argv, argvlen);
        return 0;
    }
    cmd__call(s, c, cmd, argc, argv, argvlen);
    /* One record per top-level command; EXEC's queued commands ran inside
     * this call, so a transaction is one record too. */
    return cmd__log_finish(s);
}

/* ------------------------------------------------------------------------ */
/* replay                                                                    */
/* ------------------------------------------------------------------------ */

#define CMD_REPLAY_ARGC_MAX RESP_MULTIBULK_MAX /* no client could have sent more */

struct cmd__reader {
    const unsigned char *p;
    size_t len, off;
};

static bool cmd__read_u32(struct cmd__reader *r, uint32_t *v)
{
    if (r->len - r->off < 4)
        return false;
    *v = tbuf_read_u32le(r->p + r->off);
    r->off += 4;
    return true;
}

/* Check the whole record before applying any of it, so that a corrupt
 * record changes nothing. Counts arguments and their bytes for pass two. */
static int cmd__replay_check(struct cmd_server *s, const void *body, size_t len, size_t *nargs,
                             size_t *nbytes, char *errmsg, size_t errlen)
{
    struct cmd__reader r = {body, len, 0};
    uint32_t ncmds;
    if (len < CMD_LOG_HEADER_SIZE) {
        snprintf(errmsg, errlen, "command record of %zu bytes is shorter than its header", len);
        return TRIAD_ECORRUPT;
    }
    r.off = 8;
    (void)cmd__read_u32(&r, &ncmds);
    if (ncmds == 0) {
        snprintf(errmsg, errlen, "command record holds no command");
        return TRIAD_ECORRUPT;
    }
    *nargs = *nbytes = 0;
    for (uint32_t i = 0; i < ncmds; i++) {
        uint32_t db, argc;
        if (!cmd__read_u32(&r, &db) || !cmd__read_u32(&r, &argc)) {
            snprintf(errmsg, errlen, "command record truncated in command %u", i);
            return TRIAD_ECORRUPT;
        }
        if (db >= (uint32_t)s->databases) {
            snprintf(errmsg, errlen, "command %u: db %u out of range", i, db);
            return TRIAD_ECORRUPT;
        }
        if (argc == 0 || argc > CMD_REPLAY_ARGC_MAX) {
            snprintf(errmsg, errlen, "command %u: bad argument count %u", i, argc);
            return TRIAD_ECORRUPT;
        }
        size_t name_off = r.off + 4;
        for (uint32_t j = 0; j < argc; j++) {
            uint32_t alen;
            if (!cmd__read_u32(&r, &alen) || r.len - r.off < alen) {
                snprintf(errmsg, errlen, "command %u truncated in argument %u", i, j);
                return TRIAD_ECORRUPT;
            }
            r.off += alen;
            *nbytes += (size_t)alen + 1;
        }
        *nargs += argc;
        const struct cmd_spec *cmd =
            cmd_lookup((const char *)r.p + name_off, tbuf_read_u32le(r.p + name_off - 4));
        if (cmd == NULL || !cmd__arity_ok(cmd, (int)argc) || !(cmd->flags & CMD_WRITE)) {
            snprintf(errmsg, errlen, "command %u is not a write command with a valid arity", i);
            return TRIAD_ECORRUPT;
        }
    }
    if (r.off != len) {
        snprintf(errmsg, errlen, "command record has %zu trailing bytes", len - r.off);
        return TRIAD_ECORRUPT;
    }
    return 0;
}

int cmd_replay(struct cmd_server *s, const void *body, size_t len, char *errmsg, size_t errlen)
{
    size_t nargs, nbytes;
    TRIAD_ASSERT(s->exec_depth == 0);
    TRIAD_ASSERT(s->log_ncmds == 0);
    int rc = cmd__replay_check(s, body, len, &nargs, &nbytes, errmsg, errlen);
    if (rc != 0)
        return rc;

    /* Handlers expect NUL-terminated arguments they may modify: copy. */
    char **argv = tmalloc(nargs * sizeof(*argv));
    size_t *argvlen = tmalloc(nargs * sizeof(*argvlen));
    char *arena = tmalloc(nbytes);
    struct tbuf out = {0};
    struct cmd_client rc_client;
    cmd_client_init(&rc_client, 0, &out);
    rc_client.flags = CMD_CLIENT_REPLAY;
    rc_client.authenticated = true;

    const unsigned char *p = body;
    int64_t saved_now_ms = s->now_ms;
    s->now_ms = (int64_t)tbuf_read_u64le(p);
    uint32_t ncmds = tbuf_read_u32le(p + 8);
    size_t off = CMD_LOG_HEADER_SIZE, a = 0, b = 0;
    for (uint32_t i = 0; i < ncmds; i++) {
        uint32_t db = tbuf_read_u32le(p + off);
        uint32_t argc = tbuf_read_u32le(p + off + 4);
        off += 8;
        size_t first = a;
        for (uint32_t j = 0; j < argc; j++) {
            uint32_t alen = tbuf_read_u32le(p + off);
            off += 4;
            memcpy(arena + b, p + off, alen);
            arena[b + alen] = '\0';
            argv[a] = arena + b;
            argvlen[a] = alen;
            a++;
            b += (size_t)alen + 1;
            off += alen;
        }
        const struct cmd_spec *cmd = cmd_lookup(argv[first], argvlen[first]);
        TRIAD_ASSERT(cmd != NULL); /* checked above */
        rc_client.db = (int)db;
        cmd->fn(s, &rc_client, (int)argc, argv + first, argvlen + first);
        tbuf_reset(&out);
    }
    TRIAD_ASSERT(off == len);
    /* What the replayed commands propagated is already in the log. */
    cmd__log_discard(s);
    s->now_ms = saved_now_ms;
    cmd_client_free(s, &rc_client);
    tbuf_free(&out);
    tfree(arena);
    tfree(argvlen);
    tfree(argv);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* transactions                                                              */
/* ------------------------------------------------------------------------ */

CMD_HANDLER(cmd_multi)
{
    if (c->flags & CMD_CLIENT_MULTI) {
        resp_add_error(c->out, "ERR MULTI calls can not be nested");
        return;
    }
    c->flags |= CMD_CLIENT_MULTI;
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_discard)
{
    if (!(c->flags & CMD_CLIENT_MULTI)) {
        resp_add_error(c->out, "ERR DISCARD without MULTI");
        return;
    }
    cmd__discard_transaction(s, c);
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_exec_cmd)
{
    if (!(c->flags & CMD_CLIENT_MULTI)) {
        resp_add_error(c->out, "ERR EXEC without MULTI");
        return;
    }
    if (c->flags & CMD_CLIENT_DIRTY_EXEC) {
        cmd__discard_transaction(s, c);
        resp_add_error(c->out, "EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    if ((c->flags & CMD_CLIENT_DIRTY_CAS) || cmd__watched_expired(s, c)) {
        cmd__discard_transaction(s, c);
        resp_add_null_array(c->out, c->proto);
        return;
    }
    /* Unwatch before running: the transaction's own writes must not mark
     * this client, and nothing can dirty it any more. */
    cmd__unwatch_all(s, c);
    struct cmd_queued *queue = c->queue;
    int n = c->queue_len;
    c->queue = NULL;
    c->queue_len = c->queue_cap = 0;
    c->flags &= ~(CMD_CLIENT_MULTI | CMD_CLIENT_DIRTY_CAS | CMD_CLIENT_DIRTY_EXEC);

    resp_add_array_len(c->out, n);
    s->exec_depth++;
    for (int i = 0; i < n; i++) {
        struct cmd_queued *q = &queue[i];
        const struct cmd_spec *cmd = cmd_lookup(q->argv[0], q->argvlen[0]);
        TRIAD_ASSERT(cmd != NULL); /* only known commands are queued */
        TRIAD_ASSERT(!(cmd->flags & CMD_NOMULTI));
        cmd__call(s, c, cmd, q->argc, q->argv, q->argvlen);
    }
    s->exec_depth--;
    c->last_cmd = "EXEC";

    /* give the queue back to the client so one function frees it */
    c->queue = queue;
    c->queue_len = c->queue_cap = n;
    cmd__queue_free(c);
}

CMD_HANDLER(cmd_watch)
{
    if (c->flags & CMD_CLIENT_MULTI) {
        resp_add_error(c->out, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    /* A client already doomed gains nothing from more WATCHes (Redis 7). */
    if (c->flags & CMD_CLIENT_DIRTY_CAS) {
        cmd_reply_ok(c);
        return;
    }
    if (c->watched_len + (argc - 1) > CMD_CLIENT_WATCHED_MAX) {
        resp_add_error(c->out, "ERR too many watched keys");
        return;
    }
    for (int i = 1; i < argc; i++)
        cmd__watch_add(s, c, c->db, argv[i], argvlen[i]);
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_unwatch)
{
    cmd__unwatch_all(s, c);
    c->flags &= ~CMD_CLIENT_DIRTY_CAS;
    cmd_reply_ok(c);
}

/* ------------------------------------------------------------------------ */
/* connection                                                                */
/* ------------------------------------------------------------------------ */

CMD_HANDLER(cmd_ping)
{
    if (argc > 2) {
        cmd_reply_wrong_arity(c, "ping");
        return;
    }
    if (argc == 1)
        resp_add_simple(c->out, "PONG");
    else
        resp_add_bulk(c->out, argv[1], argvlen[1]);
}

CMD_HANDLER(cmd_echo)
{
    resp_add_bulk(c->out, argv[1], argvlen[1]);
}

CMD_HANDLER(cmd_select)
{
    int db;
    if (!cmd_parse_int_or_reply(c, argv[1], argvlen[1], &db))
        return;
    if (db < 0 || db >= s->databases) {
        resp_add_error(c->out, "ERR DB index is out of range");
        return;
    }
    c->db = db;
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_quit)
{
    cmd_reply_ok(c);
    c->flags |= CMD_CLIENT_CLOSE_AFTER_REPLY;
}

CMD_HANDLER(cmd_reset)
{
    cmd__discard_transaction(s, c);
    c->db = 0;
    c->proto = 2;
    /* back to the default user: authenticated only if it needs no password */
    c->authenticated = s->requirepass == NULL || s->requirepass[0] == '\0';
    /* NO-EVICT outlives a RESET, as in Redis 7.0 (NO-TOUCH, 7.2's, does not) */
    c->flags &= CMD_CLIENT_REPLAY | CMD_CLIENT_NO_EVICT;
    tfree(c->name);
    c->name = NULL;
    resp_add_simple(c->out, "RESET");
}

/* Compare without an early exit, so the time taken does not tell how much
 * of a guessed password was right. */
static bool cmd__secret_eq(const char *a, size_t alen, const char *b)
{
    size_t blen = strlen(b);
    unsigned diff = alen != blen;
    for (size_t i = 0; i < alen; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[blen ? i % blen : 0];
    return diff == 0;
}

/* The default user's check: user NULL means "default". */
static bool cmd__auth_check(struct cmd_server *s, const char *user, size_t ulen, const char *pass,
                            size_t plen)
{
    if (user != NULL && !cmd_arg_is(user, ulen, "default"))
        return false;
    if (s->requirepass == NULL || s->requirepass[0] == '\0')
        return true; /* the default user has no password */
    return cmd__secret_eq(pass, plen, s->requirepass);
}

CMD_HANDLER(cmd_auth)
{
    if (argc > 3) {
        cmd_reply_syntax_error(c);
        return;
    }
    if (argc == 2 && (s->requirepass == NULL || s->requirepass[0] == '\0')) {
        resp_add_error(c->out, "ERR AUTH <password> called without any password configured for "
                               "the default user. Are you sure your configuration is correct?");
        return;
    }
    const char *user = argc == 3 ? argv[1] : NULL;
    size_t ulen = argc == 3 ? argvlen[1] : 0;
    if (!cmd__auth_check(s, user, ulen, argv[argc - 1], argvlen[argc - 1])) {
        resp_add_error(c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    c->authenticated = true;
    cmd_reply_ok(c);
}

/* Redis's rule for client names: printable ASCII without spaces. */
static bool cmd__client_name_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (p[i] < '!' || p[i] > '~')
            return false;
    return true;
}

static const char cmd__bad_name[] =
    "ERR Client names cannot contain spaces, newlines or special characters.";

static void cmd__set_name(struct cmd_client *c, const char *p, size_t len)
{
    tfree(c->name);
    c->name = len ? tstrndup(p, len) : NULL;
}

CMD_HANDLER(cmd_hello)
{
    long long ver = 0;
    int name_at = -1;

    if (argc >= 2) {
        if (!cmd_parse_ll(argv[1], argvlen[1], &ver)) {
            resp_add_error(c->out, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            resp_add_error(c->out, "NOPROTO unsupported protocol version");
            return;
        }
    }
    for (int j = 2; j < argc; j++) {
        int more = argc - 1 - j;
        if (cmd_arg_is(argv[j], argvlen[j], "AUTH") && more >= 2) {
            /* checked where it stands, as Redis 7.0 does: a wrong password
             * answers before a later option's error, and a right one holds
             * even if a later option fails */
            if (!cmd__auth_check(s, argv[j + 1], argvlen[j + 1], argv[j + 2], argvlen[j + 2])) {
                resp_add_error(c->out,
                               "WRONGPASS invalid username-password pair or user is disabled.");
                return;
            }
            c->authenticated = true;
            j += 2;
        } else if (cmd_arg_is(argv[j], argvlen[j], "SETNAME") && more >= 1) {
            if (!cmd__client_name_ok(argv[j + 1], argvlen[j + 1])) {
                resp_add_error(c->out, cmd__bad_name);
                return;
            }
            name_at = j + 1;
            j++;
        } else {
            resp_add_errorf(c->out, "ERR Syntax error in HELLO option '%.*s'",
                            (int)TRIAD_MIN(argvlen[j], (size_t)128), argv[j]);
            return;
        }
    }
    if (cmd__auth_required(s, c)) {
        resp_add_error(c->out,
                       "NOAUTH HELLO must be called with the client already authenticated, "
                       "otherwise the HELLO AUTH <user> <pass> option can be used to "
                       "authenticate the client and select the RESP protocol version at the same "
                       "time");
        return;
    }
    if (name_at >= 0)
        cmd__set_name(c, argv[name_at], argvlen[name_at]);
    if (ver != 0)
        c->proto = (int)ver;

    struct tbuf *o = c->out;
    resp_add_map_len(o, c->proto, 7);
    resp_add_bulk_str(o, "server");
    resp_add_bulk_str(o, "triad");
    resp_add_bulk_str(o, "version");
    resp_add_bulk_str(o, "7.0.0");
    resp_add_bulk_str(o, "proto");
    resp_add_int(o, c->proto);
    resp_add_bulk_str(o, "id");
    resp_add_int(o, (long long)c->id);
    resp_add_bulk_str(o, "mode");
    resp_add_bulk_str(o, "standalone");
    resp_add_bulk_str(o, "role");
    resp_add_bulk_str(o, "master");
    resp_add_bulk_str(o, "modules");
    resp_add_array_len(o, 0);
}

static void cmd__reply_help(struct cmd_client *c, const char *cmd, const char *const *lines)
{
    size_t n = 0;
    while (lines[n] != NULL)
        n++;
    resp_add_array_len(c->out, (long long)n + 3);
    char head[96];
    snprintf(head, sizeof(head), "%s <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
             cmd);
    resp_add_simple(c->out, head);
    for (size_t i = 0; i < n; i++)
        resp_add_simple(c->out, lines[i]);
    resp_add_simple(c->out, "HELP");
    resp_add_simple(c->out, "    Prints this help.");
}

static const char *const cmd__client_help[] = {
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL ID <client-id>",
    "    Kill the connection with the given id.",
    "LIST [TYPE normal] [ID <id> [<id> ...]]",
    "    Return information about client connections.",
    "NO-EVICT (ON|OFF)",
    "    Accepted for compatibility; no effect.",
    "NO-TOUCH (ON|OFF)",
    "    Accepted for compatibility; no effect.",
    "REPLY ON",
    "    Replies are always on.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Accepted for compatibility.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    NULL,
};

#define CMD_CLIENT_LIST_IDS_MAX 1024 /* ids in one CLIENT LIST ID ... */

static void cmd__client_list(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                             size_t *argvlen)
{
    uint64_t ids[CMD_CLIENT_LIST_IDS_MAX];
    size_t nids = 0;
    bool filter_ids = false, none = false;
    for (int j = 2; j < argc; j++) {
        if (cmd_arg_is(argv[j], argvlen[j], "TYPE") && j + 1 < argc) {
            const char *t = argv[j + 1];
            size_t tl = argvlen[j + 1];
            if (cmd_arg_is(t, tl, "normal")) {
                /* every client of ours is a normal one */
            } else if (cmd_arg_is(t, tl, "master") || cmd_arg_is(t, tl, "replica") ||
                       cmd_arg_is(t, tl, "slave") || cmd_arg_is(t, tl, "pubsub")) {
                none = true;
            } else {
                resp_add_errorf(c->out, "ERR Unknown client type '%.*s'",
                                (int)TRIAD_MIN(tl, (size_t)128), t);
                return;
            }
            j++;
        } else if (cmd_arg_is(argv[j], argvlen[j], "ID") && j + 1 < argc) {
            filter_ids = true;
            for (j = j + 1; j < argc; j++) {
                long long id;
                if (!cmd_parse_ll(argv[j], argvlen[j], &id)) {
                    resp_add_error(c->out, "ERR Invalid client ID");
                    return;
                }
                /* any integer, as Redis: one no client has lists nothing */
                if (id > 0 && nids < CMD_CLIENT_LIST_IDS_MAX)
                    ids[nids++] = (uint64_t)id;
            }
            none |= nids == 0;
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }
    struct tbuf text = {0};
    if (!none && s->hooks.client_list != NULL)
        s->hooks.client_list(s->hooks.arg, c, false, filter_ids ? ids : NULL, nids, &text);
    resp_add_verbatim(c->out, c->proto, text.data ? text.data : "", text.len);
    tbuf_free(&text);
}

static void cmd__client_kill(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                             size_t *argvlen)
{
    struct cmd_kill_filter f = {.skip_id = c->id};
    bool old_form = argc == 3;
    if (old_form) {
        /* CLIENT KILL addr:port: one client by address, itself included */
        f.addr = argv[2];
        f.skip_id = 0;
    }
    for (int j = 2; !old_form && j < argc; j += 2) {
        if (j + 1 >= argc) {
            cmd_reply_syntax_error(c);
            return;
        }
        const char *opt = argv[j], *val = argv[j + 1];
        size_t ol = argvlen[j], vl = argvlen[j + 1];
        if (cmd_arg_is(opt, ol, "ID")) {
            long long id;
            if (!cmd_parse_ll(val, vl, &id) || id <= 0) {
                resp_add_error(c->out, "ERR client-id should be greater than 0");
                return;
            }
            f.id = (uint64_t)id;
        } else if (cmd_arg_is(opt, ol, "ADDR")) {
            f.addr = val;
        } else if (cmd_arg_is(opt, ol, "LADDR")) {
            f.laddr = val;
        } else if (cmd_arg_is(opt, ol, "TYPE")) {
            /* every Triad client is a normal one */
            if (cmd_arg_is(val, vl, "normal")) {
            } else if (cmd_arg_is(val, vl, "master") || cmd_arg_is(val, vl, "replica") ||
                       cmd_arg_is(val, vl, "slave") || cmd_arg_is(val, vl, "pubsub")) {
                f.id = UINT64_MAX; /* matches nobody */
            } else {
                resp_add_errorf(c->out, "ERR Unknown client type '%.*s'",
                                (int)TRIAD_MIN(vl, (size_t)64), val);
                return;
            }
        } else if (cmd_arg_is(opt, ol, "USER")) {
            if (!cmd_arg_is(val, vl, "default")) {
                resp_add_errorf(c->out, "ERR No such user '%.*s'", (int)TRIAD_MIN(vl, (size_t)64),
                                val);
                return;
            }
        } else if (cmd_arg_is(opt, ol, "MAXAGE")) {
            long long age;
            if (!cmd_parse_ll(val, vl, &age)) {
                cmd_reply_syntax_error(c);
                return;
            }
            f.maxage_s = age;
        } else if (cmd_arg_is(opt, ol, "SKIPME")) {
            if (cmd_arg_is(val, vl, "yes")) {
                f.skip_id = c->id;
            } else if (cmd_arg_is(val, vl, "no")) {
                f.skip_id = 0;
            } else {
                cmd_reply_syntax_error(c);
                return;
            }
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }
    int killed = s->hooks.client_kill != NULL ? s->hooks.client_kill(s->hooks.arg, &f) : 0;
    if (old_form) {
        if (killed == 0)
            resp_add_error(c->out, "ERR No such client");
        else
            cmd_reply_ok(c);
        return;
    }
    resp_add_int(c->out, killed);
}

/* CLIENT NO-EVICT / NO-TOUCH ON|OFF: the flag is kept and shown by CLIENT
 * LIST and INFO (e, T), as Redis shows it. With no eviction of keys or
 * clients, and no LRU to spare, neither changes anything else. */
static void cmd__on_off(struct cmd_client *c, const char *arg, size_t len, uint32_t flag)
{
    if (cmd_arg_is(arg, len, "on")) {
        c->flags |= flag;
        cmd_reply_ok(c);
    } else if (cmd_arg_is(arg, len, "off")) {
        c->flags &= ~flag;
        cmd_reply_ok(c);
    } else {
        cmd_reply_syntax_error(c);
    }
}

CMD_HANDLER(cmd_client)
{
    const char *sub = argv[1];
    size_t sl = argvlen[1];
    if (cmd_arg_is(sub, sl, "ID")) {
        resp_add_int(c->out, (long long)c->id);
    } else if (cmd_arg_is(sub, sl, "SETNAME")) {
        if (!cmd__client_name_ok(argv[2], argvlen[2])) {
            resp_add_error(c->out, cmd__bad_name);
            return;
        }
        cmd__set_name(c, argv[2], argvlen[2]);
        cmd_reply_ok(c);
    } else if (cmd_arg_is(sub, sl, "GETNAME")) {
        if (c->name != NULL)
            resp_add_bulk_str(c->out, c->name);
        else
            resp_add_null(c->out, c->proto);
    } else if (cmd_arg_is(sub, sl, "LIST")) {
        cmd__client_list(s, c, argc, argv, argvlen);
    } else if (cmd_arg_is(sub, sl, "INFO")) {
        struct tbuf text = {0};
        if (s->hooks.client_list != NULL)
            s->hooks.client_list(s->hooks.arg, c, true, NULL, 0, &text);
        resp_add_verbatim(c->out, c->proto, text.data ? text.data : "", text.len);
        tbuf_free(&text);
    } else if (cmd_arg_is(sub, sl, "KILL")) {
        cmd__client_kill(s, c, argc, argv, argvlen);
    } else if (cmd_arg_is(sub, sl, "SETINFO")) {
        if (cmd_arg_is(argv[2], argvlen[2], "lib-name") ||
            cmd_arg_is(argv[2], argvlen[2], "lib-ver"))
            cmd_reply_ok(c);
        else
            resp_add_errorf(c->out, "ERR Unrecognized option '%.*s'",
                            (int)TRIAD_MIN(argvlen[2], (size_t)128), argv[2]);
    } else if (cmd_arg_is(sub, sl, "NO-EVICT")) {
        cmd__on_off(c, argv[2], argvlen[2], CMD_CLIENT_NO_EVICT);
    } else if (cmd_arg_is(sub, sl, "NO-TOUCH")) {
        cmd__on_off(c, argv[2], argvlen[2], CMD_CLIENT_NO_TOUCH);
    } else if (cmd_arg_is(sub, sl, "REPLY")) {
        /* OFF and SKIP are not answered themselves (cmd_exec drops what a
         * command replied while they are in force). */
        if (cmd_arg_is(argv[2], argvlen[2], "ON")) {
            c->flags &= ~(CMD_CLIENT_REPLY_OFF | CMD_CLIENT_REPLY_SKIP);
            cmd_reply_ok(c);
        } else if (cmd_arg_is(argv[2], argvlen[2], "OFF")) {
            c->flags |= CMD_CLIENT_REPLY_OFF;
        } else if (cmd_arg_is(argv[2], argvlen[2], "SKIP")) {
            c->flags |= CMD_CLIENT_REPLY_SKIP_NOW | CMD_CLIENT_REPLY_SKIP;
        } else {
            cmd_reply_syntax_error(c);
        }
    } else if (cmd_arg_is(sub, sl, "HELP")) {
        cmd__reply_help(c, "CLIENT", cmd__client_help);
    } else {
        TRIAD_ASSERT(!"a subcommand cmd__exec does not know"); /* its docs list none */
    }
}

/* ------------------------------------------------------------------------ */
/* server                                                                    */
/* ------------------------------------------------------------------------ */

CMD_HANDLER(cmd_info)
{
    struct tbuf text = {0};
    if (s->hooks.info != NULL)
        s->hooks.info(s->hooks.arg, c, argc - 1, argv + 1, argvlen + 1, &text);
    resp_add_verbatim(c->out, c->proto, text.data ? text.data : "", text.len);
    tbuf_free(&text);
}

CMD_HANDLER(cmd_time)
{
    /* In microseconds, as Redis answers; without a clock, the now_ms the
     * caller set before this command. */
    int64_t us = s->wall_us != NULL ? s->wall_us() : s->now_ms * 1000;
    resp_add_array_len(c->out, 2);
    resp_add_bulk_ll(c->out, us / 1000000);
    resp_add_bulk_ll(c->out, us % 1000000);
}

/* A single node is a master without replicas (leader mode answers ROLE
 * itself, from the cluster). */
CMD_HANDLER(cmd_role)
{
    resp_add_array_len(c->out, 3);
    resp_add_bulk_str(c->out, "master");
    resp_add_int(c->out, 0);
    resp_add_array_len(c->out, 0);
}

/* WAIT numreplicas timeout on a single node: no replica can acknowledge
 * anything, so the answer is 0, given at once rather than after the
 * timeout (Redis would wait it out for numreplicas > 0). The connection's
 * writes are already as durable as --fsync makes them: their replies left
 * only then. Leader mode answers WAIT from the cluster. */
const char *cmd_wait_args(char **argv, size_t *argvlen, long long *replicas,
                          long long *timeout)
{
    if (!cmd_parse_ll(argv[1], argvlen[1], replicas))
        return "ERR value is not an integer or out of range";
    if (!cmd_parse_ll(argv[2], argvlen[2], timeout))
        return "ERR timeout is not an integer or out of range";
    if (*timeout < 0)
        return "ERR timeout is negative";
    return NULL;
}

CMD_HANDLER(cmd_wait)
{
    long long replicas, timeout;
    const char *err = cmd_wait_args(argv, argvlen, &replicas, &timeout);
    if (err != NULL)
        resp_add_error(c->out, err);
    else
        resp_add_int(c->out, 0);
}

CMD_HANDLER(cmd_lastsave)
{
    long long t = s->hooks.last_snapshot ? s->hooks.last_snapshot(s->hooks.arg) : 0;
    resp_add_int(c->out, t);
}

#define CMD_ERRMSG_MAX 256

static void cmd__snapshot(struct cmd_server *s, struct cmd_client *c, bool background)
{
    char err[CMD_ERRMSG_MAX] = "snapshots are not available";
    if (s->hooks.snapshot == NULL || s->hooks.snapshot(s->hooks.arg, background, err, sizeof(err))) {
        resp_add_errorf(c->out, "ERR %s", err);
        return;
    }
    if (background)
        resp_add_simple(c->out, "Background saving started");
    else
        cmd_reply_ok(c);
}

CMD_HANDLER(cmd_save)
{
    cmd__snapshot(s, c, false);
}

CMD_HANDLER(cmd_bgsave)
{
    if (argc > 2 || (argc == 2 && !cmd_arg_is(argv[1], argvlen[1], "SCHEDULE"))) {
        cmd_reply_syntax_error(c);
        return;
    }
    cmd__snapshot(s, c, true);
}

CMD_HANDLER(cmd_shutdown)
{
    bool nosave = false, save = false, abort_ = false;
    for (int j = 1; j < argc; j++) {
        if (cmd_arg_is(argv[j], argvlen[j], "NOSAVE")) {
            nosave = true;
        } else if (cmd_arg_is(argv[j], argvlen[j], "SAVE")) {
            save = true;
        } else if (cmd_arg_is(argv[j], argvlen[j], "NOW") ||
                   cmd_arg_is(argv[j], argvlen[j], "FORCE")) {
            /* nothing to wait for and nothing to force: the WAL is flushed anyway */
        } else if (cmd_arg_is(argv[j], argvlen[j], "ABORT")) {
            abort_ = true;
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }
    if ((nosave && save) || (abort_ && argc != 2)) {
        cmd_reply_syntax_error(c);
        return;
    }
    if (abort_) {
        resp_add_error(c->out, "ERR No shutdown in progress.");
        return;
    }
    if (s->hooks.shutdown == NULL) {
        resp_add_error(c->out, "ERR Errors trying to SHUTDOWN. Check logs.");
        return;
    }
    /* As in Redis, a successful SHUTDOWN sends no reply: the connection closes. */
    s->hooks.shutdown(s->hooks.arg, save);
    c->flags |= CMD_CLIENT_CLOSE_AFTER_REPLY;
}

/* CONFIG GET collects pairs, dropping names already seen (several patterns
 * may match one parameter). */
struct cmd__config_pairs {
    struct tbuf reply; /* name/value bulks */
    struct tbuf names; /* NUL-separated names seen */
    long long n;
};

static void cmd__config_emit(void *e, const char *name, const char *value)
{
    struct cmd__config_pairs *p = e;
    size_t nl = strlen(name);
    for (size_t off = 0; off < p->names.len;) {
        size_t l = strlen(p->names.data + off);
        if (l == nl && strncasecmp(p->names.data + off, name, nl) == 0)
            return; /* each once, under its first spelling (Redis's dict) */
        off += l + 1;
    }
    tbuf_append(&p->names, name, nl + 1);
    resp_add_bulk_str(&p->reply, name);
    resp_add_bulk_str(&p->reply, value);
    p->n++;
}

static const char *const cmd__config_help[] = {
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    NULL,
};

static void cmd__config_set(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                            size_t *argvlen)
{
    if (argc % 2 != 0) {
        cmd_reply_syntax_error(c);
        return;
    }
    for (int i = 2; i < argc; i += 2)
        for (int j = 2; j < i; j += 2)
            if (argvlen[i] == argvlen[j] && strncasecmp(argv[i], argv[j], argvlen[i]) == 0) {
                resp_add_errorf(c->out,
                                "ERR CONFIG SET failed (possibly related to argument '%.*s') - "
                                "duplicate parameter",
                                (int)TRIAD_MIN(argvlen[i], (size_t)128), argv[i]);
                return;
            }
    char err[CMD_ERRMSG_MAX];
    snprintf(err, sizeof(err), "Unknown option or number of arguments for CONFIG SET - '%.*s'",
             (int)TRIAD_MIN(argvlen[2], (size_t)128), argv[2]);
    int npairs = (argc - 2) / 2;
    char *names[npairs > 0 ? npairs : 1], *values[npairs > 0 ? npairs : 1];
    for (int i = 0; i < npairs; i++) {
        names[i] = argv[2 + 2 * i];
        values[i] = argv[3 + 2 * i];
    }
    if (s->hooks.config_set == NULL ||
        s->hooks.config_set(s->hooks.arg, npairs, names, values, err, sizeof(err)) != 0) {
        resp_add_errorf(c->out, "ERR %s", err);
        return;
    }
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_config)
{
    const char *sub = argv[1];
    size_t sl = argvlen[1];
    if (cmd_arg_is(sub, sl, "GET")) {
        struct cmd__config_pairs p = {0};
        for (int i = 2; i < argc; i++)
            if (s->hooks.config_get != NULL)
                s->hooks.config_get(s->hooks.arg, argv[i], cmd__config_emit, &p);
        resp_add_map_len(c->out, c->proto, p.n);
        tbuf_append(c->out, p.reply.data, p.reply.len);
        tbuf_free(&p.reply);
        tbuf_free(&p.names);
    } else if (cmd_arg_is(sub, sl, "SET")) {
        cmd__config_set(s, c, argc, argv, argvlen);
    } else if (cmd_arg_is(sub, sl, "RESETSTAT")) {
        memset(&s->stats, 0, sizeof(s->stats));
        if (s->hooks.config_resetstat != NULL)
            s->hooks.config_resetstat(s->hooks.arg);
        cmd_reply_ok(c);
    } else if (cmd_arg_is(sub, sl, "REWRITE")) {
        resp_add_error(c->out, "ERR The server is running without a config file");
    } else if (cmd_arg_is(sub, sl, "HELP")) {
        cmd__reply_help(c, "CONFIG", cmd__config_help);
    } else {
        TRIAD_ASSERT(!"a subcommand cmd__exec does not know"); /* its docs list none */
    }
}

/* ---- COMMAND ---- */

/* ACL categories are not in the table: derive them as Redis assigns them. */
static size_t cmd__categories(const struct cmd_spec *cmd, const char **out)
{
    size_t n = 0;
    bool keyspace = strcmp(cmd->group, "generic") == 0 ||
                    (strcmp(cmd->group, "server") == 0 && (cmd->flags & (CMD_WRITE | CMD_READONLY)));
    bool dangerous = (cmd->flags & CMD_ADMIN) || strcmp(cmd->name, "KEYS") == 0 ||
                     strcmp(cmd->name, "FLUSHALL") == 0 || strcmp(cmd->name, "FLUSHDB") == 0 ||
                     strcmp(cmd->name, "INFO") == 0 || strcmp(cmd->name, "LASTSAVE") == 0;
    if (keyspace)
        out[n++] = "@keyspace";
    if (cmd->flags & CMD_WRITE)
        out[n++] = "@write";
    if (cmd->flags & CMD_READONLY)
        out[n++] = "@read";
    if (strcmp(cmd->group, "string") == 0)
        out[n++] = "@string";
    if ((cmd->flags & CMD_ADMIN) || strcmp(cmd->name, "LASTSAVE") == 0)
        out[n++] = "@admin";
    out[n++] = (cmd->flags & CMD_FAST) ? "@fast" : "@slow";
    if (dangerous)
        out[n++] = "@dangerous";
    if (strcmp(cmd->group, "connection") == 0 || strcmp(cmd->name, "COMMAND") == 0)
        out[n++] = "@connection";
    if (strcmp(cmd->group, "transactions") == 0)
        out[n++] = "@transaction";
    return n;
}

static void cmd__add_lower(struct tbuf *o, const char *name)
{
    char low[CMD_LOOKUP_NAME_MAX + 1];
    size_t i;
    for (i = 0; name[i] != '\0' && i < CMD_LOOKUP_NAME_MAX; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    resp_add_bulk(o, low, i);
}

static void cmd__reply_command_info(struct cmd_client *c, const struct cmd_spec *cmd)
{
    static const struct {
        uint32_t flag;
        const char *name;
    } flag_names[] = {
        {CMD_WRITE, "write"},     {CMD_READONLY, "readonly"}, {CMD_DENYOOM, "denyoom"},
        {CMD_ADMIN, "admin"},     {CMD_NOSCRIPT, "noscript"}, {CMD_LOADING, "loading"},
        {CMD_STALE, "stale"},     {CMD_FAST, "fast"},         {CMD_NOAUTH, "no_auth"},
        {CMD_DENYMULTI, "no_multi"},
    };
    struct tbuf *o = c->out;
    resp_add_array_len(o, 10);
    cmd__add_lower(o, cmd->name);
    resp_add_int(o, cmd->arity);
    size_t nf = 0;
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(flag_names); i++)
        nf += (cmd->flags & flag_names[i].flag) != 0;
    resp_add_set_len(o, c->proto, (long long)nf);
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(flag_names); i++)
        if (cmd->flags & flag_names[i].flag)
            resp_add_simple(o, flag_names[i].name);
    resp_add_int(o, cmd->first_key);
    resp_add_int(o, cmd->last_key);
    resp_add_int(o, cmd->key_step);
    const char *cats[8];
    size_t ncat = cmd__categories(cmd, cats);
    resp_add_set_len(o, c->proto, (long long)ncat);
    for (size_t i = 0; i < ncat; i++)
        resp_add_simple(o, cats[i]);
    resp_add_set_len(o, c->proto, 0); /* tips */
    if (cmd->first_key > 0) {
        bool ro = !(cmd->flags & CMD_WRITE);
        resp_add_set_len(o, c->proto, 1);
        resp_add_map_len(o, c->proto, 3);
        resp_add_bulk_str(o, "flags");
        resp_add_set_len(o, c->proto, 2);
        resp_add_simple(o, ro ? "RO" : "RW");
        resp_add_simple(o, ro ? "access" : "update");
        resp_add_bulk_str(o, "begin_search");
        resp_add_map_len(o, c->proto, 2);
        resp_add_bulk_str(o, "type");
        resp_add_bulk_str(o, "index");
        resp_add_bulk_str(o, "spec");
        resp_add_map_len(o, c->proto, 1);
        resp_add_bulk_str(o, "index");
        resp_add_int(o, cmd->first_key);
        resp_add_bulk_str(o, "find_keys");
        resp_add_map_len(o, c->proto, 2);
        resp_add_bulk_str(o, "type");
        resp_add_bulk_str(o, "range");
        resp_add_bulk_str(o, "spec");
        resp_add_map_len(o, c->proto, 3);
        resp_add_bulk_str(o, "lastkey");
        resp_add_int(o, cmd->last_key < 0 ? cmd->last_key : cmd->last_key - cmd->first_key);
        resp_add_bulk_str(o, "keystep");
        resp_add_int(o, cmd->key_step);
        resp_add_bulk_str(o, "limit");
        resp_add_int(o, 0);
    } else {
        resp_add_set_len(o, c->proto, 0);
    }
    resp_add_set_len(o, c->proto, 0); /* subcommands */
}

/* The entry's data is in docs.c: redis-cli 7 builds its hints from it. */
static void cmd__reply_command_docs(struct cmd_client *c, const struct cmd_spec *cmd)
{
    cmd__add_lower(c->out, cmd->name);
    cmd_docs_add(c->out, c->proto, cmd);
}

static const char *const cmd__command_help[] = {
    "(no subcommand)",
    "    Return details about all commands.",
    "COUNT",
    "    Return the total number of commands in this server.",
    "LIST [FILTERBY (ACLCAT <category>|PATTERN <pattern>)]",
    "    Return a list of all commands in this server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple commands.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple commands.",
    "GETKEYS <full-command>",
    "    Return the keys from a full command.",
    NULL,
};

static void cmd__command_list(struct cmd_client *c, int argc, char **argv, size_t *argvlen)
{
    const char *pat = NULL, *cat = NULL;
    size_t patlen = 0, catlen = 0;
    if (argc == 5 && cmd_arg_is(argv[2], argvlen[2], "FILTERBY")) {
        if (cmd_arg_is(argv[3], argvlen[3], "PATTERN")) {
            pat = argv[4];
            patlen = argvlen[4];
        } else if (cmd_arg_is(argv[3], argvlen[3], "ACLCAT")) {
            cat = argv[4];
            catlen = argvlen[4];
        } else if (!cmd_arg_is(argv[3], argvlen[3], "MODULE")) {
            cmd_reply_syntax_error(c);
            return;
        }
    } else if (argc != 2) {
        cmd_reply_syntax_error(c);
        return;
    }
    bool module = argc == 5 && pat == NULL && cat == NULL; /* no module commands here */
    struct tbuf names = {0};
    long long n = 0;
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(cmd__table) && !module; i++) {
        const struct cmd_spec *cmd = &cmd__table[i];
        char low[CMD_LOOKUP_NAME_MAX + 1];
        size_t l;
        for (l = 0; cmd->name[l] != '\0'; l++)
            low[l] = (char)tolower((unsigned char)cmd->name[l]);
        if (pat != NULL && !cmd_glob_match(pat, patlen, low, l, true))
            continue;
        if (cat != NULL) {
            const char *cats[8];
            size_t nc = cmd__categories(cmd, cats), k;
            for (k = 0; k < nc; k++)
                if (cmd_arg_is(cat, catlen, cats[k] + 1))
                    break;
            if (k == nc)
                continue;
        }
        resp_add_bulk(&names, low, l);
        n++;
    }
    resp_add_array_len(c->out, n);
    tbuf_append(c->out, names.data, names.len);
    tbuf_free(&names);
}

static void cmd__command_getkeys(struct cmd_client *c, int argc, char **argv, size_t *argvlen)
{
    const struct cmd_spec *cmd = cmd_lookup(argv[2], argvlen[2]);
    if (cmd == NULL) {
        resp_add_error(c->out, "ERR Invalid command specified");
        return;
    }
    int cargc = argc - 2;
    if (!cmd__arity_ok(cmd, cargc)) {
        resp_add_error(c->out, "ERR Invalid number of arguments specified for command");
        return;
    }
    if (cmd->first_key == 0) {
        resp_add_error(c->out, "ERR The command has no key arguments");
        return;
    }
    int last = cmd->last_key < 0 ? cargc + cmd->last_key : cmd->last_key;
    long long n = 0;
    for (int k = cmd->first_key; k <= last && k < cargc; k += cmd->key_step)
        n++;
    resp_add_array_len(c->out, n);
    for (int k = cmd->first_key; k <= last && k < cargc; k += cmd->key_step)
        resp_add_bulk(c->out, argv[2 + k], argvlen[2 + k]);
}

CMD_HANDLER(cmd_command)
{
    size_t count = TRIAD_ARRAY_LEN(cmd__table);
    if (argc == 1) {
        resp_add_array_len(c->out, (long long)count);
        for (size_t i = 0; i < count; i++)
            cmd__reply_command_info(c, &cmd__table[i]);
        return;
    }
    const char *sub = argv[1];
    size_t sl = argvlen[1];
    if (cmd_arg_is(sub, sl, "COUNT")) {
        resp_add_int(c->out, (long long)count);
    } else if (cmd_arg_is(sub, sl, "INFO")) {
        if (argc == 2) {
            resp_add_array_len(c->out, (long long)count);
            for (size_t i = 0; i < count; i++)
                cmd__reply_command_info(c, &cmd__table[i]);
            return;
        }
        resp_add_array_len(c->out, argc - 2);
        for (int i = 2; i < argc; i++) {
            const struct cmd_spec *cmd = cmd_lookup(argv[i], argvlen[i]);
            if (cmd != NULL)
                cmd__reply_command_info(c, cmd);
            else
                resp_add_null(c->out, c->proto); /* $-1, as Redis */
        }
    } else if (cmd_arg_is(sub, sl, "DOCS")) {
        if (argc == 2) {
            resp_add_map_len(c->out, c->proto, (long long)count);
            for (size_t i = 0; i < count; i++)
                cmd__reply_command_docs(c, &cmd__table[i]);
            return;
        }
        long long n = 0;
        for (int i = 2; i < argc; i++)
            n += cmd_lookup(argv[i], argvlen[i]) != NULL;
        resp_add_map_len(c->out, c->proto, n);
        for (int i = 2; i < argc; i++) {
            const struct cmd_spec *cmd = cmd_lookup(argv[i], argvlen[i]);
            if (cmd != NULL)
                cmd__reply_command_docs(c, cmd);
        }
    } else if (cmd_arg_is(sub, sl, "LIST")) {
        cmd__command_list(c, argc, argv, argvlen);
    } else if (cmd_arg_is(sub, sl, "GETKEYS")) {
        cmd__command_getkeys(c, argc, argv, argvlen);
    } else if (cmd_arg_is(sub, sl, "HELP")) {
        cmd__reply_help(c, "COMMAND", cmd__command_help);
    } else {
        TRIAD_ASSERT(!"a subcommand cmd__exec does not know"); /* its docs list none */
    }
}

/* ------------------------------------------------------------------------ */
/* expiry arguments and SET records, shared by string.c and expire.c         */
/* ------------------------------------------------------------------------ */

/* The absolute deadline of an expiry argument, as Redis's
 * getExpireMillisecondsOrReply computes it: the number must be > 0, and
 * neither the unit conversion nor adding now may overflow. Replies and
 * returns false on a bad argument. */
bool cmd_expire_arg(struct cmd_server *s, struct cmd_client *c, const char *arg,
                    size_t len, bool seconds, bool relative, const char *cmdname,
                    int64_t *abs_ms)
{
    long long t;
    if (!cmd_parse_ll(arg, len, &t)) {
        cmd_reply_not_integer(c);
        return false;
    }
    if (t <= 0 || (seconds && t > LLONG_MAX / 1000))
        goto err_invalid;
    if (seconds)
        t *= 1000;
    if (relative) {
        if (s->now_ms > 0 && t > LLONG_MAX - s->now_ms)
            goto err_invalid;
        t += s->now_ms;
    }
    if (t <= 0)
        goto err_invalid;
    *abs_ms = t;
    return true;

err_invalid:
    resp_add_errorf(c->out, "ERR invalid expire time in '%s' command", cmdname);
    return false;
}

/* Log "SET key value [PXAT ms | KEEPTTL]". */
void cmd_propagate_set(struct cmd_server *s, struct cmd_client *c, const char *key,
                               size_t klen, const char *val, size_t vlen, int64_t expire_ms)
{
    char ms[24];
    char *argv[5] = {"SET", (char *)key, (char *)val, NULL, NULL};
    size_t argvlen[5] = {3, klen, vlen, 0, 0};
    int argc = 3;
    if (expire_ms == KV_KEEP_TTL) {
        argv[argc] = "KEEPTTL";
        argvlen[argc++] = 7;
    } else if (expire_ms != KV_NO_EXPIRE) {
        argv[argc] = "PXAT";
        argvlen[argc++] = 4;
        argv[argc] = ms;
        argvlen[argc++] = (size_t)snprintf(ms, sizeof(ms), "%lld", (long long)expire_ms);
    }
    cmd_propagate(s, c, argc, argv, argvlen);
}
