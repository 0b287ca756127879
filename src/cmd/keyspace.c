/* keyspace.c - commands over keys regardless of their value: DEL, UNLINK,
 * EXISTS, TYPE, KEYS, SCAN, RENAME(NX), COPY, DBSIZE, FLUSHALL, FLUSHDB,
 * RANDOMKEY, TOUCH; and Redis's glob matcher.
 *
 * Every write touches the keys it changes (WATCH) and propagates the
 * deterministic form of what it did: DEL lists only the keys it deleted,
 * RENAME and COPY are logged as given (their effect depends only on the
 * state the log rebuilds).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/mem.h"
#include "cmd_int.h"

/* ------------------------------------------------------------------------ */
/* glob                                                                      */
/* ------------------------------------------------------------------------ */

static inline unsigned char ks__fold(unsigned char ch, bool nocase)
{
    return nocase ? (unsigned char)tolower(ch) : ch;
}

/* Does the single-character token at pat[0..plen) match ch? Sets *tok_len
 * to the token's length in the pattern. The token is not '*'. */
static bool ks__token_match(const char *pat, size_t plen, unsigned char ch, bool nocase,
                            size_t *tok_len)
{
    unsigned char fc = ks__fold(ch, nocase);
    if (pat[0] == '?') {
        *tok_len = 1;
        return true;
    }
    if (pat[0] == '\\' && plen >= 2) {
        *tok_len = 2;
        return ks__fold((unsigned char)pat[1], nocase) == fc;
    }
    if (pat[0] != '[') {
        *tok_len = 1;
        return ks__fold((unsigned char)pat[0], nocase) == fc;
    }
    /* A set: [abc] [^abc] [a-z] [\]]; an unterminated set ends with the
     * pattern, as in Redis. */
    size_t i = 1;
    bool negate = false, match = false;
    if (i < plen && pat[i] == '^') {
        negate = true;
        i++;
    }
    for (;;) {
        if (i >= plen)
            break;
        if (pat[i] == '\\' && plen - i >= 2) {
            if (ks__fold((unsigned char)pat[i + 1], nocase) == fc)
                match = true;
            i += 2;
        } else if (pat[i] == ']') {
            i++;
            break;
        } else if (plen - i >= 3 && pat[i + 1] == '-') {
            unsigned char lo = ks__fold((unsigned char)pat[i], nocase);
            unsigned char hi = ks__fold((unsigned char)pat[i + 2], nocase);
            if (lo > hi) {
                unsigned char t = lo;
                lo = hi;
                hi = t;
            }
            if (fc >= lo && fc <= hi)
                match = true;
            i += 3;
        } else {
            if (ks__fold((unsigned char)pat[i], nocase) == fc)
                match = true;
            i++;
        }
    }
    *tok_len = i;
    return negate ? !match : match;
}

/* Classic wildcard matching with one backtrack point (the last '*'): every
 * other token matches exactly one character, so retrying from the last star
 * is complete, and the work is bounded by plen * slen with no recursion (a
 * hostile pattern cannot blow the stack). */
bool cmd_glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase)
{
    size_t pi = 0, si = 0;
    size_t star_pi = SIZE_MAX, star_si = 0;
    while (si < slen) {
        if (pi < plen && pat[pi] == '*') {
            while (pi < plen && pat[pi] == '*')
                pi++;
            if (pi == plen)
                return true;
            star_pi = pi;
            star_si = si;
            continue;
        }
        if (pi < plen) {
            size_t tl;
            if (ks__token_match(pat + pi, plen - pi, (unsigned char)str[si], nocase, &tl)) {
                pi += tl;
                si++;
                continue;
            }
        }
        if (star_pi == SIZE_MAX)
            return false;
        pi = star_pi;
        si = ++star_si;
    }
    while (pi < plen && pat[pi] == '*')
        pi++;
    return pi == plen;
}

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */
/* ------------------------------------------------------------------------ */

#define KS_STACK_ARGS 16 /* keys handled without a heap array */

static bool ks__is_live(int64_t expire_ms, int64_t now_ms)
{
    return expire_ms == KV_NO_EXPIRE || expire_ms > now_ms;
}

/* ------------------------------------------------------------------------ */
/* DEL UNLINK EXISTS TYPE TOUCH                                              */
/* ------------------------------------------------------------------------ */

static void ks__del(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                    size_t *argvlen)
{
    struct kv *db = cmd_db(s, c);
    char *stack_argv[KS_STACK_ARGS];
    size_t stack_len[KS_STACK_ARGS];
    char **pargv = stack_argv;
    size_t *plen = stack_len;
    if (argc > KS_STACK_ARGS) {
        pargv = tmalloc((size_t)argc * sizeof(*pargv));
        plen = tmalloc((size_t)argc * sizeof(*plen));
    }
    int n = 1;
    pargv[0] = "DEL";
    plen[0] = 3;
    for (int i = 1; i < argc; i++) {
        if (kv_del(db, argv[i], argvlen[i], s->now_ms) == 0) {
            cmd_touch(s, c->db, argv[i], argvlen[i]);
            pargv[n] = argv[i];
            plen[n] = argvlen[i];
            n++;
        }
    }
    if (n > 1)
        cmd_propagate(s, c, n, pargv, plen);
    resp_add_int(c->out, n - 1);
    if (pargv != stack_argv) {
        tfree(pargv);
        tfree(plen);
    }
}

CMD_HANDLER(cmd_del)
{
    ks__del(s, c, argc, argv, argvlen);
}

/* Values are freed at once: there is no background thread to hand them to. */
CMD_HANDLER(cmd_unlink)
{
    ks__del(s, c, argc, argv, argvlen);
}

static long long ks__count_existing(struct cmd_server *s, struct cmd_client *c, int argc,
                                    char **argv, size_t *argvlen, bool stats)
{
    long long n = 0;
    for (int i = 1; i < argc; i++) {
        bool hit = kv_exists(cmd_db(s, c), argv[i], argvlen[i], s->now_ms);
        n += hit;
        if (stats) {
            if (hit)
                s->stats.keyspace_hits++;
            else
                s->stats.keyspace_misses++;
        }
    }
    return n;
}

CMD_HANDLER(cmd_exists)
{
    resp_add_int(c->out, ks__count_existing(s, c, argc, argv, argvlen, true));
}

CMD_HANDLER(cmd_touch_cmd)
{
    resp_add_int(c->out, ks__count_existing(s, c, argc, argv, argvlen, false));
}

CMD_HANDLER(cmd_type)
{
    bool hit = kv_exists(cmd_db(s, c), argv[1], argvlen[1], s->now_ms);
    if (hit)
        s->stats.keyspace_hits++;
    else
        s->stats.keyspace_misses++;
    resp_add_simple(c->out, hit ? "string" : "none");
}

/* ------------------------------------------------------------------------ */
/* KEYS SCAN RANDOMKEY DBSIZE                                                */
/* ------------------------------------------------------------------------ */

struct ks__collect {
    struct tbuf keys; /* bulk strings */
    long long n;
    const char *pat;  /* NULL: every key */
    size_t patlen;
    int64_t now_ms;
    bool type_ok;     /* SCAN TYPE: false filters every key out */
};

static int ks__keys_cb(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                       int64_t expire_ms)
{
    struct ks__collect *k = arg;
    (void)val;
    (void)vlen;
    if (!ks__is_live(expire_ms, k->now_ms))
        return 0;
    if (k->pat != NULL && !cmd_glob_match(k->pat, k->patlen, key, klen, false))
        return 0;
    resp_add_bulk(&k->keys, key, klen);
    k->n++;
    return 0;
}

CMD_HANDLER(cmd_keys)
{
    struct ks__collect k = {.now_ms = s->now_ms, .type_ok = true};
    bool all = argvlen[1] == 1 && argv[1][0] == '*';
    if (!all) {
        k.pat = argv[1];
        k.patlen = argvlen[1];
    }
    kv_foreach(cmd_db(s, c), ks__keys_cb, &k);
    resp_add_array_len(c->out, k.n);
    tbuf_append(c->out, k.keys.data, k.keys.len);
    tbuf_free(&k.keys);
}

static void ks__scan_cb(void *arg, const char *key, size_t klen)
{
    struct ks__collect *k = arg;
    if (!k->type_ok)
        return;
    if (k->pat != NULL && !cmd_glob_match(k->pat, k->patlen, key, klen, false))
        return;
    resp_add_bulk(&k->keys, key, klen);
    k->n++;
}

#define KS_CURSOR_CHARS_MAX 32 /* a u64 in decimal, with room for junk to reject */
#define KS_SCAN_COUNT_MAX (1ll << 20) /* buckets one SCAN call may visit */

/* Redis parses the cursor with strtoull: "-1" wraps, leading space does not
 * pass, anything after the number is an error. */
static bool ks__parse_cursor(const char *p, size_t len, uint64_t *out)
{
    char buf[KS_CURSOR_CHARS_MAX + 1];
    if (len > KS_CURSOR_CHARS_MAX)
        return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (len > 0 && isspace((unsigned char)buf[0]))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end != '\0' || errno == ERANGE)
        return false;
    *out = v;
    return true;
}

CMD_HANDLER(cmd_scan)
{
    uint64_t cursor;
    if (!ks__parse_cursor(argv[1], argvlen[1], &cursor)) {
        resp_add_error(c->out, "ERR invalid cursor");
        return;
    }
    struct ks__collect k = {.now_ms = s->now_ms, .type_ok = true};
    long long count = 10;
    for (int j = 2; j < argc; j += 2) {
        if (j + 1 >= argc) {
            cmd_reply_syntax_error(c);
            return;
        }
        if (cmd_arg_is(argv[j], argvlen[j], "COUNT")) {
            if (!cmd_parse_ll(argv[j + 1], argvlen[j + 1], &count)) {
                cmd_reply_not_integer(c);
                return;
            }
            if (count < 1) {
                cmd_reply_syntax_error(c);
                return;
            }
        } else if (cmd_arg_is(argv[j], argvlen[j], "MATCH")) {
            k.pat = argv[j + 1];
            k.patlen = argvlen[j + 1];
            if (k.patlen == 1 && k.pat[0] == '*')
                k.pat = NULL;
        } else if (cmd_arg_is(argv[j], argvlen[j], "TYPE")) {
            k.type_ok = cmd_arg_is(argv[j + 1], argvlen[j + 1], "string");
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }
    if (count > KS_SCAN_COUNT_MAX)
        count = KS_SCAN_COUNT_MAX;
    uint64_t next = kv_scan(cmd_db(s, c), cursor, (size_t)count, s->now_ms, ks__scan_cb, &k);
    resp_add_array_len(c->out, 2);
    /* the cursor is unsigned: format it ourselves, not as a long long */
    char cur[24];
    int cl = snprintf(cur, sizeof(cur), "%llu", (unsigned long long)next);
    resp_add_bulk(c->out, cur, (size_t)cl);
    resp_add_array_len(c->out, k.n);
    tbuf_append(c->out, k.keys.data, k.keys.len);
    tbuf_free(&k.keys);
}

CMD_HANDLER(cmd_randomkey)
{
    const char *key;
    size_t klen;
    if (kv_random_key(cmd_db(s, c), s->now_ms, &key, &klen) != 0)
        resp_add_null(c->out, c->proto);
    else
        resp_add_bulk(c->out, key, klen);
}

CMD_HANDLER(cmd_dbsize)
{
    resp_add_int(c->out, (long long)kv_count(cmd_db(s, c)));
}

/* ------------------------------------------------------------------------ */
/* RENAME RENAMENX COPY                                                      */
/* ------------------------------------------------------------------------ */

static void ks__rename(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                       size_t *argvlen, bool nx)
{
    struct kv *db = cmd_db(s, c);
    struct kv_val v;
    if (kv_get(db, argv[1], argvlen[1], s->now_ms, &v) != 0) {
        resp_add_error(c->out, "ERR no such key");
        return;
    }
    if (argvlen[1] == argvlen[2] && memcmp(argv[1], argv[2], argvlen[1]) == 0) {
        if (nx)
            resp_add_int(c->out, 0);
        else
            cmd_reply_ok(c);
        return;
    }
    if (nx && kv_exists(db, argv[2], argvlen[2], s->now_ms)) {
        resp_add_int(c->out, 0);
        return;
    }
    /* v.ptr is valid only until the kv changes: copy before writing. */
    char *val = tmalloc(v.len ? v.len : 1);
    memcpy(val, v.ptr, v.len);
    size_t vlen = v.len;
    int64_t expire_ms = v.expire_ms;
    kv_set(db, argv[2], argvlen[2], val, vlen, expire_ms);
    tfree(val);
    int rc = kv_del(db, argv[1], argvlen[1], s->now_ms);
    TRIAD_ASSERT(rc == 0);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    cmd_touch(s, c->db, argv[2], argvlen[2]);
    cmd_propagate(s, c, argc, argv, argvlen);
    if (nx)
        resp_add_int(c->out, 1);
    else
        cmd_reply_ok(c);
}

CMD_HANDLER(cmd_rename)
{
    ks__rename(s, c, argc, argv, argvlen, false);
}

CMD_HANDLER(cmd_renamenx)
{
    ks__rename(s, c, argc, argv, argvlen, true);
}

CMD_HANDLER(cmd_copy)
{
    int dst_db = c->db;
    bool replace = false;
    for (int j = 3; j < argc; j++) {
        if (cmd_arg_is(argv[j], argvlen[j], "REPLACE")) {
            replace = true;
        } else if (cmd_arg_is(argv[j], argvlen[j], "DB") && j + 1 < argc) {
            int n;
            if (!cmd_parse_int_or_reply(c, argv[j + 1], argvlen[j + 1], &n))
                return;
            if (n < 0 || n >= s->databases) {
                resp_add_error(c->out, "ERR DB index is out of range");
                return;
            }
            dst_db = n;
            j++;
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }
    if (dst_db == c->db && argvlen[1] == argvlen[2] && memcmp(argv[1], argv[2], argvlen[1]) == 0) {
        resp_add_error(c->out, "ERR source and destination objects are the same");
        return;
    }
    struct kv_val v;
    if (kv_get(cmd_db(s, c), argv[1], argvlen[1], s->now_ms, &v) != 0) {
        resp_add_int(c->out, 0);
        return;
    }
    struct kv *dst = s->db[dst_db];
    if (!replace && kv_exists(dst, argv[2], argvlen[2], s->now_ms)) {
        resp_add_int(c->out, 0);
        return;
    }
    /* Copy first: when dst is the source's db, v.ptr dies with the write. */
    char *val = tmalloc(v.len ? v.len : 1);
    memcpy(val, v.ptr, v.len);
    kv_set(dst, argv[2], argvlen[2], val, v.len, v.expire_ms);
    tfree(val);
    cmd_touch(s, dst_db, argv[2], argvlen[2]);
    cmd_propagate(s, c, argc, argv, argvlen);
    resp_add_int(c->out, 1);
}

/* ------------------------------------------------------------------------ */
/* FLUSHALL FLUSHDB                                                          */
/* ------------------------------------------------------------------------ */

/* [ASYNC|SYNC]: 1 for ASYNC, 0 for SYNC or nothing (Redis's default with
 * lazyfree-lazy-user-flush no), -1 after replying with a syntax error. */
static int ks__flush_mode(struct cmd_client *c, int argc, char **argv, size_t *argvlen)
{
    if (argc == 1)
        return 0;
    if (argc == 2 && cmd_arg_is(argv[1], argvlen[1], "ASYNC"))
        return 1;
    if (argc == 2 && cmd_arg_is(argv[1], argvlen[1], "SYNC"))
        return 0;
    cmd_reply_syntax_error(c);
    return -1;
}

/* Empty database i. ASYNC puts an empty keyspace in place and hands the old
 * one to the server to free on another thread, so flushing millions of keys
 * does not stall every client. */
static void ks__flush_db(struct cmd_server *s, int i, bool async)
{
    s->dirty += kv_count(s->db[i]);
    if (async && s->hooks.free_async != NULL && kv_count(s->db[i]) > 0) {
        struct kv *old = s->db[i];
        s->db[i] = kv_new(s->seed + (uint64_t)i + s->dirty);
        s->hooks.free_async(s->hooks.arg, old);
        return;
    }
    kv_clear(s->db[i]);
}

CMD_HANDLER(cmd_flushdb)
{
    int mode = ks__flush_mode(c, argc, argv, argvlen);
    if (mode < 0)
        return;
    /* WATCHers are told before the keys go: only watched keys that exist
     * dirty their clients. */
    cmd_touch_all(s, c->db);
    ks__flush_db(s, c->db, mode == 1);
    char *pargv[1] = {"FLUSHDB"};
    size_t plen[1] = {7};
    cmd_propagate(s, c, 1, pargv, plen);
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_flushall)
{
    int mode = ks__flush_mode(c, argc, argv, argvlen);
    if (mode < 0)
        return;
    cmd_touch_all(s, -1);
    for (int i = 0; i < s->databases; i++)
        ks__flush_db(s, i, mode == 1);
    char *pargv[1] = {"FLUSHALL"};
    size_t plen[1] = {8};
    cmd_propagate(s, c, 1, pargv, plen);
    cmd_reply_ok(c);
}
