/* test_cmd_string.c - the string and expiry commands, driven through
 * cmd_exec with a bare client at exact simulated times.
 *
 * Every expected reply below was checked against redis-server 7.0 (IFEQ
 * against Valkey's documented semantics). Every write's log record is
 * checked word for word, and replay tests apply the records to a fresh
 * server and compare the whole keyspace, deadlines included.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cmd/cmd.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "test.h"

#define FX_ARGS_MAX 32
#define FX_TEXT_MAX 4096

struct fx {
    struct cmd_server s;
    struct cmd_client c;
    struct tbuf out;
    struct tbuf *rec;                /* captured log records */
    size_t nrec, nrec_cap;
    size_t nrec_checked;             /* records already compared by CHECK_LOG */
};

static uint64_t fx_log(void *arg, const void *body, size_t len)
{
    struct fx *f = arg;
    if (f->nrec == f->nrec_cap) {
        f->nrec_cap = f->nrec_cap ? f->nrec_cap * 2 : 64;
        f->rec = trealloc(f->rec, f->nrec_cap * sizeof(*f->rec));
    }
    struct tbuf *r = &f->rec[f->nrec++];
    memset(r, 0, sizeof(*r));
    tbuf_append(r, body, len);
    return f->nrec;
}

static void fx_init(struct fx *f, int64_t now_ms)
{
    memset(f, 0, sizeof(*f));
    cmd_server_init(&f->s, CMD_DATABASES_DEFAULT, 42);
    f->s.now_ms = now_ms;
    f->s.log_fn = fx_log;
    f->s.log_arg = f;
    cmd_client_init(&f->c, 1, &f->out);
}

static void fx_free(struct fx *f)
{
    cmd_client_free(&f->s, &f->c);
    cmd_server_free(&f->s);
    tbuf_free(&f->out);
    for (size_t i = 0; i < f->nrec; i++)
        tbuf_free(&f->rec[i]);
    tfree(f->rec);
}

/* Run one command; the arguments are copied (cmd may modify them). */
static void fx_execv(struct fx *f, int argc, const char **args, const size_t *lens)
{
    char *argv[FX_ARGS_MAX];
    size_t argvlen[FX_ARGS_MAX];
    TRIAD_ASSERT(argc > 0 && argc <= FX_ARGS_MAX);
    for (int i = 0; i < argc; i++) {
        argvlen[i] = lens ? lens[i] : strlen(args[i]);
        argv[i] = tmalloc(argvlen[i] + 1);
        memcpy(argv[i], args[i], argvlen[i]);
        argv[i][argvlen[i]] = '\0';
    }
    tbuf_reset(&f->out);
    cmd_exec(&f->s, &f->c, argc, argv, argvlen);
    for (int i = 0; i < argc; i++)
        tfree(argv[i]);
}

/* Run a command written as one line: words split at spaces, "" is an
 * empty argument. */
static void fx_exec(struct fx *f, const char *line)
{
    char copy[FX_TEXT_MAX];
    const char *args[FX_ARGS_MAX];
    int argc = 0;
    snprintf(copy, sizeof(copy), "%s", line);
    for (char *tok = strtok(copy, " "); tok != NULL; tok = strtok(NULL, " ")) {
        TRIAD_ASSERT(argc < FX_ARGS_MAX);
        args[argc++] = strcmp(tok, "\"\"") == 0 ? "" : tok;
    }
    fx_execv(f, argc, args, NULL);
}

/* The reply with CR and LF made visible, for failure messages. */
static const char *fx_show(const char *p, size_t n)
{
    static char buf[FX_TEXT_MAX];
    size_t o = 0;
    for (size_t i = 0; i < n && o + 4 < sizeof(buf); i++) {
        if (p[i] == '\r') {
            buf[o++] = '\\';
            buf[o++] = 'r';
        } else if (p[i] == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else {
            buf[o++] = p[i];
        }
    }
    buf[o] = '\0';
    return buf;
}

static bool fx_out_is_n(struct fx *f, const char *want, size_t n)
{
    return f->out.len == n && memcmp(f->out.data, want, n) == 0;
}

static bool fx_out_is(struct fx *f, const char *want)
{
    return fx_out_is_n(f, want, strlen(want));
}

#define CHECK_OUT_N(f, what, want, n)                                                       \
    do {                                                                                    \
        if (!fx_out_is_n((f), (want), (n))) {                                               \
            fprintf(stderr, "  FAIL %s: %s:%d: %s -> want \"%s\"", test__cur, __FILE__,     \
                    __LINE__, (what), fx_show((want), (n)));                                \
            fprintf(stderr, " got \"%s\"\n", fx_show((f)->out.data, (f)->out.len));         \
            test__cur_failed = 1;                                                           \
        }                                                                                   \
    } while (0)
#define CHECK_OUT(f, what, want) CHECK_OUT_N((f), (what), (want), strlen(want))

/* EXPECT(f, "SET k v", "+OK\r\n"): run a line, compare the reply bytes. */
#define EXPECT(f, line, want)             \
    do {                                  \
        fx_exec((f), (line));             \
        CHECK_OUT((f), (line), (want));   \
    } while (0)

/* The same for a reply with NUL bytes, given as a string literal. */
#define EXPECT_BIN(f, line, want)                          \
    do {                                                   \
        fx_exec((f), (line));                              \
        CHECK_OUT_N((f), (line), (want), sizeof(want) - 1); \
    } while (0)

/* The same with explicit arguments (for spaces or binary bytes). */
#define EXPECTV(f, want, ...)                                              \
    do {                                                                   \
        const char *fx__a[] = {__VA_ARGS__};                               \
        fx_execv((f), (int)TRIAD_ARRAY_LEN(fx__a), fx__a, NULL);           \
        CHECK_OUT((f), fx__a[0], (want));                                  \
    } while (0)

/* The records logged since the last check, decoded as text: commands as
 * space-separated words, "; " between commands, " | " between records, and
 * each record prefixed with "@<now_ms> ". */
static void fx_records_text(struct fx *f, char *dst, size_t size)
{
    struct tbuf t = {0};
    for (size_t i = f->nrec_checked; i < f->nrec; i++) {
        const unsigned char *p = (const unsigned char *)f->rec[i].data;
        size_t len = f->rec[i].len, off = 12;
        if (i > f->nrec_checked)
            tbuf_appends(&t, " | ");
        TRIAD_ASSERT(len >= 12);
        tbuf_appendf(&t, "@%lld ", (long long)tbuf_read_u64le(p));
        uint32_t ncmds = tbuf_read_u32le(p + 8);
        for (uint32_t k = 0; k < ncmds; k++) {
            uint32_t db = tbuf_read_u32le(p + off), argc = tbuf_read_u32le(p + off + 4);
            off += 8;
            if (k > 0)
                tbuf_appends(&t, "; ");
            if (db != 0)
                tbuf_appendf(&t, "[db%u] ", db);
            for (uint32_t j = 0; j < argc; j++) {
                uint32_t alen = tbuf_read_u32le(p + off);
                off += 4;
                if (j > 0)
                    tbuf_appendc(&t, ' ');
                tbuf_append(&t, p + off, alen);
                off += alen;
            }
        }
        TRIAD_ASSERT(off == len);
    }
    f->nrec_checked = f->nrec;
    snprintf(dst, size, "%.*s", (int)t.len, t.data ? t.data : "");
    tbuf_free(&t);
}

/* CHECK_LOG(f, "@1000 SET k v PXAT 11000"): the records since the last
 * CHECK_LOG are exactly these ("" for none). */
#define CHECK_LOG(f, want)                                                                  \
    do {                                                                                    \
        char fx__got[FX_TEXT_MAX];                                                          \
        fx_records_text((f), fx__got, sizeof(fx__got));                                     \
        if (strcmp(fx__got, (want)) != 0) {                                                 \
            fprintf(stderr, "  FAIL %s: %s:%d: log want \"%s\" got \"%s\"\n", test__cur,    \
                    __FILE__, __LINE__, (want), fx__got);                                   \
            test__cur_failed = 1;                                                           \
        }                                                                                   \
    } while (0)

/* ---- keyspace images, for replay comparisons ---- */

struct fx_image {
    struct tbuf text; /* one line per live entry, sorted */
};

struct fx_lines {
    char **line;
    size_t n, cap;
    int db;
    int64_t now_ms;
};

/* bytes as text that strcmp can compare whole (NULs included) */
static void fx_append_escaped(struct tbuf *t, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            tbuf_appendf(t, "\\x%02x", ch);
        else
            tbuf_appendc(t, (char)ch);
    }
}

static int fx_collect_cb(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                         int64_t expire_ms)
{
    struct fx_lines *l = arg;
    if (expire_ms != KV_NO_EXPIRE && expire_ms <= l->now_ms)
        return 0; /* logically absent; whether it was collected yet is not state */
    struct tbuf t = {0};
    tbuf_appendf(&t, "db%d key=", l->db);
    fx_append_escaped(&t, key, klen);
    tbuf_appends(&t, " val=");
    fx_append_escaped(&t, val, vlen);
    if (expire_ms == KV_NO_EXPIRE)
        tbuf_appends(&t, " exp=none");
    else
        tbuf_appendf(&t, " exp=%lld", (long long)expire_ms);
    tbuf_appendc(&t, '\0');
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->line = trealloc(l->line, l->cap * sizeof(*l->line));
    }
    l->line[l->n++] = t.data;
    return 0;
}

static int fx_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every live entry of every db at now_ms, sorted, one per line. */
static void fx_image(struct cmd_server *s, int64_t now_ms, struct tbuf *out)
{
    struct fx_lines l = {0};
    l.now_ms = now_ms;
    for (int db = 0; db < s->databases; db++) {
        l.db = db;
        kv_foreach(s->db[db], fx_collect_cb, &l);
    }
    qsort(l.line, l.n, sizeof(*l.line), fx_cmp_str);
    for (size_t i = 0; i < l.n; i++) {
        tbuf_appends(out, l.line[i]);
        tbuf_appendc(out, '\n');
        tfree(l.line[i]);
    }
    tfree(l.line);
    tbuf_appendc(out, '\0');
}

/* Replay every record f logged into a fresh server whose clock reads
 * later, and require the same keyspace as f's at f's current time. */
static void fx_check_replay(struct fx *f, int line)
{
    struct cmd_server r;
    cmd_server_init(&r, CMD_DATABASES_DEFAULT, 7);
    r.now_ms = f->s.now_ms + 1000000; /* replay happens long after */
    for (size_t i = 0; i < f->nrec; i++) {
        char err[256] = "";
        int rc = cmd_replay(&r, f->rec[i].data, f->rec[i].len, err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "  FAIL %s: line %d: replay of record %zu: %s\n", test__cur, line,
                    i, err);
            test__cur_failed = 1;
        }
    }
    struct tbuf a = {0}, b = {0};
    fx_image(&f->s, f->s.now_ms, &a);
    fx_image(&r, f->s.now_ms, &b);
    if (strcmp(a.data, b.data) != 0) {
        fprintf(stderr, "  FAIL %s: line %d: replayed state differs\n--- original\n%s--- replayed\n%s",
                test__cur, line, a.data, b.data);
        test__cur_failed = 1;
    }
    tbuf_free(&a);
    tbuf_free(&b);
    cmd_server_free(&r);
}
#define CHECK_REPLAY(f) fx_check_replay((f), __LINE__)

/* ======================================================================== */
/* GET / SET                                                                 */
/* ======================================================================== */

TEST(get_replies_null_as_resp2_or_resp3_and_counts_hits_and_misses)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "GET nokey", "$-1\r\n");
    f.c.proto = 3;
    EXPECT(&f, "GET nokey", "_\r\n");
    EXPECT(&f, "SET k hello", "+OK\r\n");
    EXPECT(&f, "GET k", "$5\r\nhello\r\n");
    EXPECT(&f, "GET k extra", "-ERR wrong number of arguments for 'get' command\r\n");
    CHECK_EQ_INT(f.s.stats.keyspace_hits, 1);
    CHECK_EQ_INT(f.s.stats.keyspace_misses, 2);
    fx_free(&f);
}

TEST(get_returns_binary_values_whole)
{
    struct fx f;
    fx_init(&f, 1000);
    const char *args[] = {"SET", "bin", "a\0b\r\n"};
    size_t lens[] = {3, 3, 5};
    fx_execv(&f, 3, args, lens);
    CHECK_OUT(&f, "SET bin", "+OK\r\n");
    EXPECT_BIN(&f, "GET bin", "$5\r\na\0b\r\n\r\n");
    fx_free(&f);
}

TEST(set_rejects_conflicting_or_malformed_options_with_redis_errors)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v NX XX", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v XX NX", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v EX 10 PX 100", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v EXAT 10 PXAT 100", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v KEEPTTL EX 10", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v EX 10 KEEPTTL", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v EX", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v foo", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v PERSIST", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v EX abc NX XX", "-ERR syntax error\r\n"); /* syntax before numbers */
    EXPECT(&f, "SET k v EX 0", "-ERR invalid expire time in 'set' command\r\n");
    EXPECT(&f, "SET k v EX -1", "-ERR invalid expire time in 'set' command\r\n");
    EXPECT(&f, "SET k v PXAT 0", "-ERR invalid expire time in 'set' command\r\n");
    EXPECT(&f, "SET k v EX 9223372036854776", "-ERR invalid expire time in 'set' command\r\n");
    /* 9223372036854775000 ms is representable, but not once now is added */
    EXPECT(&f, "SET k v EX 9223372036854775", "-ERR invalid expire time in 'set' command\r\n");
    EXPECT(&f, "SET k v PX 9223372036854775807", "-ERR invalid expire time in 'set' command\r\n");
    EXPECT(&f, "SET k v EX 1.5", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET k v EX abc", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET k v EX 010", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET k v IFEQ", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v IFEQ a NX", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v XX IFEQ a", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k v IFEQ a IFEQ b", "-ERR syntax error\r\n");
    EXPECT(&f, "SET k", "-ERR wrong number of arguments for 'set' command\r\n");
    EXPECT(&f, "GET k", "$-1\r\n"); /* none of these wrote */
    CHECK_LOG(&f, "");
    /* accepted repetitions */
    EXPECT(&f, "SET k v NX NX", "+OK\r\n");
    EXPECT(&f, "SET k v KEEPTTL KEEPTTL", "+OK\r\n");
    EXPECT(&f, "set k v ex 10 ex 20", "+OK\r\n"); /* the last EX wins */
    EXPECT(&f, "PTTL k", ":20000\r\n");
    EXPECT(&f, "SET k v EX 9223372036854", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k v | @1000 SET k v KEEPTTL | @1000 SET k v PXAT 21000 | "
                  "@1000 SET k v PXAT 9223372036855000");
    fx_free(&f);
}

TEST(set_nx_xx_get_reply_and_write_as_redis_does)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v XX", "$-1\r\n");
    EXPECT(&f, "SET k v XX GET", "$-1\r\n");
    EXPECT(&f, "SET k old NX", "+OK\r\n");
    EXPECT(&f, "SET k new NX", "$-1\r\n");
    EXPECT(&f, "SET k new NX GET", "$3\r\nold\r\n"); /* GET replies even when NX blocks */
    EXPECT(&f, "GET k", "$3\r\nold\r\n");
    EXPECT(&f, "SET k new XX GET", "$3\r\nold\r\n");
    EXPECT(&f, "GET k", "$3\r\nnew\r\n");
    EXPECT(&f, "SET k2 v GET", "$-1\r\n");
    f.c.proto = 3;
    EXPECT(&f, "SET k3 v XX", "_\r\n");
    EXPECT(&f, "SET k4 v GET", "_\r\n");
    /* conditions that held are not logged, nor is GET */
    CHECK_LOG(&f, "@1000 SET k old | @1000 SET k new | @1000 SET k2 v | @1000 SET k4 v");
    fx_free(&f);
}

TEST(set_ex_expires_the_key_at_the_exact_millisecond)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v EX 10", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k v PXAT 11000");
    f.s.now_ms = 10999;
    EXPECT(&f, "GET k", "$1\r\nv\r\n");
    EXPECT(&f, "PTTL k", ":1\r\n");
    f.s.now_ms = 11000;
    EXPECT(&f, "GET k", "$-1\r\n");
    EXPECT(&f, "TTL k", ":-2\r\n");
    EXPECT(&f, "SET p v PX 250", "+OK\r\n");
    EXPECT(&f, "SET ea v EXAT 20", "+OK\r\n");
    EXPECT(&f, "SET pa v PXAT 20001", "+OK\r\n");
    CHECK_LOG(&f, "@11000 SET p v PXAT 11250 | @11000 SET ea v PXAT 20000 | "
                  "@11000 SET pa v PXAT 20001");
    f.s.now_ms = 11249;
    EXPECT(&f, "EXISTS p", ":1\r\n");
    f.s.now_ms = 11250;
    EXPECT(&f, "EXISTS p", ":0\r\n");
    f.s.now_ms = 20000;
    EXPECT(&f, "MGET ea pa", "*2\r\n$-1\r\n$1\r\nv\r\n");
    fx_free(&f);
}

TEST(set_removes_a_deadline_unless_keepttl)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v EX 100", "+OK\r\n");
    EXPECT(&f, "SET k v2 KEEPTTL", "+OK\r\n");
    EXPECT(&f, "PTTL k", ":100000\r\n");
    EXPECT(&f, "SET k v3", "+OK\r\n");
    EXPECT(&f, "PTTL k", ":-1\r\n");
    EXPECT(&f, "SET n v KEEPTTL", "+OK\r\n"); /* a new key: no deadline to keep */
    EXPECT(&f, "TTL n", ":-1\r\n");
    fx_free(&f);
}

TEST(set_with_a_past_deadline_deletes_the_key_and_logs_del)
{
    struct fx f;
    fx_init(&f, 5000);
    EXPECT(&f, "SET k v", "+OK\r\n");
    CHECK_LOG(&f, "@5000 SET k v");
    EXPECT(&f, "SET k v2 PXAT 5000 GET", "$1\r\nv\r\n");
    CHECK_LOG(&f, "@5000 DEL k");
    EXPECT(&f, "GET k", "$-1\r\n");
    EXPECT(&f, "SET k v EXAT 1", "+OK\r\n"); /* absent already: nothing to log */
    CHECK_LOG(&f, "");
    EXPECT(&f, "DBSIZE", ":0\r\n");
    fx_free(&f);
}

TEST(set_ifeq_writes_only_over_an_equal_value_and_never_creates)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v IFEQ v", "$-1\r\n");
    EXPECT(&f, "EXISTS k", ":0\r\n");
    EXPECT(&f, "SET k v IFEQ v GET", "$-1\r\n");
    EXPECT(&f, "SET k old", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k old");
    EXPECT(&f, "SET k new IFEQ other", "$-1\r\n");
    EXPECT(&f, "SET k new IFEQ ol", "$-1\r\n");
    EXPECT(&f, "SET k new IFEQ old2", "$-1\r\n");
    EXPECT(&f, "SET k new IFEQ other GET", "$3\r\nold\r\n");
    CHECK_LOG(&f, "");
    EXPECT(&f, "GET k", "$3\r\nold\r\n");
    EXPECT(&f, "SET k new ifeq old EX 10", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k new PXAT 11000");
    EXPECT(&f, "SET k newer IFEQ new GET", "$3\r\nnew\r\n");
    CHECK_LOG(&f, "@1000 SET k newer");
    EXPECT(&f, "GET k", "$5\r\nnewer\r\n");
    EXPECTV(&f, "+OK\r\n", "SET", "e", "");
    EXPECTV(&f, "+OK\r\n", "SET", "e", "x", "IFEQ", "");
    EXPECT(&f, "GET e", "$1\r\nx\r\n");
    fx_free(&f);
}

TEST(setnx_getset_getdel_reply_and_log_plain_writes)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SETNX k v", ":1\r\n");
    EXPECT(&f, "SETNX k w", ":0\r\n");
    CHECK_LOG(&f, "@1000 SET k v");
    EXPECT(&f, "EXPIRE k 100", ":1\r\n");
    EXPECT(&f, "GETSET k w", "$1\r\nv\r\n");
    EXPECT(&f, "TTL k", ":-1\r\n"); /* GETSET drops the deadline */
    EXPECT(&f, "GETSET n x", "$-1\r\n");
    CHECK_LOG(&f, "@1000 PEXPIREAT k 101000 | @1000 SET k w | @1000 SET n x");
    EXPECT(&f, "GETDEL k", "$1\r\nw\r\n");
    EXPECT(&f, "GETDEL k", "$-1\r\n");
    f.c.proto = 3;
    EXPECT(&f, "GETDEL k", "_\r\n");
    CHECK_LOG(&f, "@1000 DEL k");
    EXPECT(&f, "EXISTS k", ":0\r\n");
    fx_free(&f);
}

TEST(mget_mset_msetnx_reply_as_redis_does)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "MSET a 1 b 2", "+OK\r\n");
    EXPECT(&f, "MSET a", "-ERR wrong number of arguments for 'mset' command\r\n");
    EXPECT(&f, "MSET a 1 b", "-ERR wrong number of arguments for 'mset' command\r\n");
    EXPECT(&f, "MSETNX a 1 b", "-ERR wrong number of arguments for 'msetnx' command\r\n");
    EXPECT(&f, "MGET a b c", "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n");
    f.c.proto = 3;
    EXPECT(&f, "MGET a c", "*2\r\n$1\r\n1\r\n_\r\n");
    CHECK_EQ_INT(f.s.stats.keyspace_hits, 3);
    CHECK_EQ_INT(f.s.stats.keyspace_misses, 2);
    EXPECT(&f, "MSETNX c 3 a 9", ":0\r\n");
    EXPECT(&f, "EXISTS c", ":0\r\n"); /* all or nothing */
    EXPECT(&f, "MSETNX c 3 d 4", ":1\r\n");
    CHECK_LOG(&f, "@1000 MSET a 1 b 2 | @1000 MSET c 3 d 4");
    EXPECT(&f, "MGET c d", "*2\r\n$1\r\n3\r\n$1\r\n4\r\n");
    fx_free(&f);
}

/* ======================================================================== */
/* INCR family                                                               */
/* ======================================================================== */

TEST(incr_family_follows_string2ll_and_refuses_overflow)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "INCR n", ":1\r\n");
    EXPECT(&f, "INCRBY n 41", ":42\r\n");
    EXPECT(&f, "DECR n", ":41\r\n");
    EXPECT(&f, "DECRBY n 50", ":-9\r\n");
    EXPECT(&f, "GET n", "$2\r\n-9\r\n");
    CHECK_LOG(&f, "@1000 INCR n | @1000 INCRBY n 41 | @1000 DECR n | @1000 DECRBY n 50");
    EXPECT(&f, "SET s 010", "+OK\r\n");
    EXPECT(&f, "INCR s", "-ERR value is not an integer or out of range\r\n");
    EXPECTV(&f, "+OK\r\n", "SET", "s", " 1");
    EXPECT(&f, "INCR s", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET s +1", "+OK\r\n");
    EXPECT(&f, "INCR s", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET s 1.0", "+OK\r\n");
    EXPECT(&f, "DECR s", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET s 9223372036854775808", "+OK\r\n");
    EXPECT(&f, "INCR s", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "INCRBY x abc", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "DECRBY x 9223372036854775808", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "DECRBY x -9223372036854775808", "-ERR decrement would overflow\r\n");
    EXPECT(&f, "SET m 9223372036854775807", "+OK\r\n");
    EXPECT(&f, "INCR m", "-ERR increment or decrement would overflow\r\n");
    EXPECT(&f, "INCRBY m 0", ":9223372036854775807\r\n");
    EXPECT(&f, "SET m -9223372036854775808", "+OK\r\n");
    EXPECT(&f, "DECR m", "-ERR increment or decrement would overflow\r\n");
    EXPECT(&f, "INCRBY m -1", "-ERR increment or decrement would overflow\r\n");
    EXPECT(&f, "INCRBY m 9223372036854775807", ":-1\r\n");
    EXPECT(&f, "INCR", "-ERR wrong number of arguments for 'incr' command\r\n");
    EXPECT(&f, "EXISTS x", ":0\r\n");
    fx_free(&f);
}

TEST(incr_keeps_the_deadline_and_writes_canonical_digits)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET n 5 EX 100", "+OK\r\n");
    EXPECT(&f, "INCRBY n 10", ":15\r\n");
    EXPECT(&f, "PTTL n", ":100000\r\n");
    EXPECT(&f, "SET z -0", "+OK\r\n");
    EXPECT(&f, "INCR z", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SET z 0", "+OK\r\n");
    EXPECT(&f, "DECRBY z 0", ":0\r\n");
    /* an expired counter starts again from zero, with no deadline */
    f.s.now_ms = 101000;
    EXPECT(&f, "INCR n", ":1\r\n");
    EXPECT(&f, "TTL n", ":-1\r\n");
    fx_free(&f);
}

TEST(incrbyfloat_formats_like_redis_and_logs_the_result)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET f 10.50", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n");
    EXPECT(&f, "SET f 3.0e3", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT f 200", "$4\r\n3200\r\n");
    EXPECT(&f, "INCRBYFLOAT g 5.0e3", "$4\r\n5000\r\n");
    EXPECT(&f, "INCRBYFLOAT g 1.1e-5", "$22\r\n5000.00001100000000021\r\n");
    EXPECT(&f, "SET y 1e2", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT y -100", "$1\r\n0\r\n");
    EXPECT(&f, "INCRBYFLOAT y -0.0", "$1\r\n0\r\n");
    EXPECT(&f, "INCRBYFLOAT y 0x10", "$2\r\n16\r\n");
    /* RESP3 replies with the same bulk string */
    f.c.proto = 3;
    EXPECT(&f, "INCRBYFLOAT h 1.5", "$3\r\n1.5\r\n");
    EXPECT(&f, "INCRBYFLOAT h 1.5", "$1\r\n3\r\n");
    CHECK_LOG(&f, "@1000 SET f 10.50 | @1000 SET f 10.6 KEEPTTL | @1000 SET f 3.0e3 | "
                  "@1000 SET f 3200 KEEPTTL | @1000 SET g 5000 KEEPTTL | "
                  "@1000 SET g 5000.00001100000000021 KEEPTTL | @1000 SET y 1e2 | "
                  "@1000 SET y 0 KEEPTTL | @1000 SET y 0 KEEPTTL | @1000 SET y 16 KEEPTTL | "
                  "@1000 SET h 1.5 KEEPTTL | @1000 SET h 3 KEEPTTL");
    fx_free(&f);
}

TEST(incrbyfloat_refuses_bad_floats_nan_and_infinity)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET f 1", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT f abc", "-ERR value is not a valid float\r\n");
    EXPECTV(&f, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "f", " 1");
    EXPECTV(&f, "-ERR value is not a valid float\r\n", "INCRBYFLOAT", "f", "");
    EXPECT(&f, "INCRBYFLOAT f nan", "-ERR value is not a valid float\r\n");
    EXPECT(&f, "INCRBYFLOAT f inf", "-ERR increment would produce NaN or Infinity\r\n");
    EXPECT(&f, "SET f 1e4932", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT f 1e4932", "-ERR increment would produce NaN or Infinity\r\n");
    EXPECT(&f, "INCRBYFLOAT f 1e4933", "-ERR value is not a valid float\r\n");
    EXPECT(&f, "SET s hello", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT s 1", "-ERR value is not a valid float\r\n");
    CHECK_LOG(&f, "@1000 SET f 1 | @1000 SET f 1e4932 | @1000 SET s hello");
    EXPECT(&f, "GET f", "$6\r\n1e4932\r\n");
    fx_free(&f);
}

TEST(incrbyfloat_keeps_the_deadline)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET i 15 EX 100", "+OK\r\n");
    EXPECT(&f, "INCRBYFLOAT i 0.5", "$4\r\n15.5\r\n");
    EXPECT(&f, "TTL i", ":100\r\n");
    fx_free(&f);
}

/* ======================================================================== */
/* APPEND STRLEN SETRANGE GETRANGE                                           */
/* ======================================================================== */

TEST(append_and_strlen_reply_lengths_and_keep_the_deadline)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "STRLEN k", ":0\r\n");
    EXPECT(&f, "APPEND k Hello", ":5\r\n");
    EXPECT(&f, "APPEND k World", ":10\r\n");
    EXPECT(&f, "GET k", "$10\r\nHelloWorld\r\n");
    EXPECT(&f, "STRLEN k", ":10\r\n");
    EXPECT(&f, "EXPIRE k 50", ":1\r\n");
    EXPECT(&f, "APPEND k !", ":11\r\n");
    EXPECT(&f, "TTL k", ":50\r\n");
    CHECK_EQ_INT(f.s.stats.keyspace_hits, 3);   /* GET, STRLEN, TTL */
    CHECK_EQ_INT(f.s.stats.keyspace_misses, 1); /* STRLEN */
    EXPECT(&f, "APPEND k \"\"", ":11\r\n"); /* no change, no record */
    EXPECT(&f, "APPEND e \"\"", ":0\r\n");  /* but an absent key is created */
    EXPECT(&f, "EXISTS e", ":1\r\n");
    CHECK_LOG(&f, "@1000 APPEND k Hello | @1000 APPEND k World | @1000 PEXPIREAT k 51000 | "
                  "@1000 APPEND k ! | @1000 APPEND e ");
    fx_free(&f);
}

TEST(append_many_times_builds_the_whole_value)
{
    struct fx f;
    fx_init(&f, 1000);
    for (int i = 0; i < 2000; i++)
        fx_exec(&f, "APPEND k abcde");
    CHECK_OUT(&f, "APPEND", ":10000\r\n");
    struct tbuf want = {0};
    tbuf_appends(&want, "$10000\r\n");
    for (int i = 0; i < 2000; i++)
        tbuf_appends(&want, "abcde");
    tbuf_appends(&want, "\r\n");
    tbuf_appendc(&want, '\0');
    fx_exec(&f, "GET k");
    CHECK(fx_out_is(&f, want.data));
    tbuf_free(&want);
    fx_free(&f);
}

TEST(setrange_writes_pads_and_refuses_offsets_past_512mb)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET s Hello", "+OK\r\n");
    EXPECT(&f, "SETRANGE s 1 ipp", ":5\r\n");
    EXPECT(&f, "GET s", "$5\r\nHippo\r\n");
    EXPECT(&f, "SETRANGE s 7 !", ":8\r\n");
    EXPECT_BIN(&f, "GET s", "$8\r\nHippo\0\0!\r\n");
    EXPECT(&f, "SETRANGE s -1 x", "-ERR offset is out of range\r\n");
    EXPECT(&f, "SETRANGE s abc x", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "SETRANGE s 536870912 x",
           "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
    EXPECT(&f, "SETRANGE s 9223372036854775807 x",
           "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
    EXPECT(&f, "SETRANGE s 536870912 \"\"", ":8\r\n"); /* nothing to write: no limit */
    EXPECT(&f, "SETRANGE nos 5 \"\"", ":0\r\n");
    EXPECT(&f, "EXISTS nos", ":0\r\n");
    EXPECT(&f, "SETRANGE nos 2 ab", ":4\r\n");
    EXPECT_BIN(&f, "GET nos", "$4\r\n\0\0ab\r\n");
    CHECK_LOG(&f, "@1000 SET s Hello | @1000 SETRANGE s 1 ipp | @1000 SETRANGE s 7 ! | "
                  "@1000 SETRANGE nos 2 ab");
    fx_free(&f);
}

/* The limit itself: a value of exactly 512 MiB is allowed, one byte more
 * is not, by APPEND or by SETRANGE. */
TEST(string_values_stop_at_exactly_512mb)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SETRANGE big 536870911 x", ":536870912\r\n");
    EXPECT(&f, "STRLEN big", ":536870912\r\n");
    EXPECT(&f, "APPEND big y", "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
    EXPECT(&f, "SETRANGE big 536870911 yz",
           "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n");
    EXPECT(&f, "SETRANGE big 536870911 y", ":536870912\r\n");
    EXPECT(&f, "APPEND big \"\"", ":536870912\r\n");
    EXPECT_BIN(&f, "GETRANGE big -2 -1", "$2\r\n\0y\r\n");
    EXPECT(&f, "DEL big", ":1\r\n");
    fx_free(&f);
}

TEST(getrange_follows_redis_7_index_rules)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET s Hello", "+OK\r\n");
    static const struct {
        const char *line, *want;
    } cases[] = {
        {"GETRANGE s 0 -1", "$5\r\nHello\r\n"},
        {"GETRANGE s 0 -100", "$1\r\nH\r\n"}, /* 7.0 clamps the end to 0 */
        {"GETRANGE s -100 -200", "$0\r\n\r\n"},
        {"GETRANGE s -1 -1", "$1\r\no\r\n"},
        {"GETRANGE s 2 100", "$3\r\nllo\r\n"},
        {"GETRANGE s -3 -2", "$2\r\nll\r\n"},
        {"GETRANGE s 5 5", "$0\r\n\r\n"},
        {"GETRANGE s 4 4", "$1\r\no\r\n"},
        {"GETRANGE s 3 1", "$0\r\n\r\n"},
        {"GETRANGE s -9223372036854775808 9223372036854775807", "$5\r\nHello\r\n"},
        {"GETRANGE s 0 -6", "$1\r\nH\r\n"},
        {"GETRANGE s -5 -6", "$0\r\n\r\n"},
        {"GETRANGE s -6 -5", "$1\r\nH\r\n"},
        {"SUBSTR s 1 2", "$2\r\nel\r\n"},
        {"GETRANGE s a 1", "-ERR value is not an integer or out of range\r\n"},
        {"GETRANGE s 1 1.0", "-ERR value is not an integer or out of range\r\n"},
        {"GETRANGE nokey 0 -1", "$0\r\n\r\n"},
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(cases); i++)
        EXPECT(&f, cases[i].line, cases[i].want);
    EXPECTV(&f, "+OK\r\n", "SET", "e", "");
    EXPECT(&f, "GETRANGE e 0 -1", "$0\r\n\r\n");
    EXPECT(&f, "GETRANGE e 0 0", "$0\r\n\r\n");
    f.c.proto = 3; /* an empty bulk, not a null, in RESP3 too */
    EXPECT(&f, "GETRANGE nokey 0 -1", "$0\r\n\r\n");
    EXPECT(&f, "GETRANGE s 1 3", "$3\r\nell\r\n");
    fx_free(&f);
}

/* ======================================================================== */
/* LCS                                                                       */
/* ======================================================================== */

TEST(lcs_replies_string_len_and_idx_like_redis)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET a ohmytext", "+OK\r\n");
    EXPECT(&f, "SET b mynewtext", "+OK\r\n");
    EXPECT(&f, "LCS a b", "$6\r\nmytext\r\n");
    EXPECT(&f, "LCS a b LEN", ":6\r\n");
    EXPECT(&f, "LCS a b IDX",
           "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n"
           "*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n");
    f.c.proto = 3;
    EXPECT(&f, "LCS a b IDX",
           "%2\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n"
           "*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n");
    EXPECT(&f, "LCS a b IDX WITHMATCHLEN MINMATCHLEN 4",
           "%2\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n"
           "$3\r\nlen\r\n:6\r\n");
    EXPECT(&f, "LCS a b idx minmatchlen -5 withmatchlen",
           "%2\r\n$7\r\nmatches\r\n*2\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n"
           "*3\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n:2\r\n$3\r\nlen\r\n:6\r\n");
    EXPECT(&f, "LCS a nokey", "$0\r\n\r\n");
    EXPECT(&f, "LCS nokey nokey2 IDX",
           "%2\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n");
    EXPECT(&f, "LCS a b LEN IDX",
           "-ERR If you want both the length and indexes, please just use IDX.\r\n");
    EXPECT(&f, "LCS a b foo", "-ERR syntax error\r\n");
    EXPECT(&f, "LCS a b MINMATCHLEN", "-ERR syntax error\r\n");
    EXPECT(&f, "LCS a b MINMATCHLEN x", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "LCS a", "-ERR wrong number of arguments for 'lcs' command\r\n");
    CHECK_LOG(&f, "@1000 SET a ohmytext | @1000 SET b mynewtext");
    fx_free(&f);
}

TEST(lcs_of_identical_and_disjoint_strings)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET a abcdef", "+OK\r\n");
    EXPECT(&f, "SET b abcdef", "+OK\r\n");
    EXPECT(&f, "SET c xyz", "+OK\r\n");
    EXPECT(&f, "LCS a b IDX WITHMATCHLEN",
           "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:0\r\n:5\r\n*2\r\n:0\r\n:5\r\n:6\r\n"
           "$3\r\nlen\r\n:6\r\n");
    EXPECT(&f, "LCS a c", "$0\r\n\r\n");
    EXPECT(&f, "LCS a c LEN", ":0\r\n");
    fx_free(&f);
}

/* Among equally long answers, Redis's walk back shortens the second string
 * first on a tie; clients see which one, so ours must pick the same. */
TEST(lcs_breaks_ties_as_redis_does)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "MSET x ab y ba", "+OK\r\n");
    EXPECT(&f, "LCS x y", "$1\r\nb\r\n");
    EXPECT(&f, "MSET x abcab y bacba", "+OK\r\n");
    EXPECT(&f, "LCS x y", "$3\r\nbab\r\n");
    EXPECT(&f, "LCS x y IDX WITHMATCHLEN",
           "*4\r\n$7\r\nmatches\r\n*3\r\n*3\r\n*2\r\n:4\r\n:4\r\n*2\r\n:3\r\n:3\r\n:1\r\n"
           "*3\r\n*2\r\n:3\r\n:3\r\n*2\r\n:1\r\n:1\r\n:1\r\n*3\r\n*2\r\n:1\r\n:1\r\n*2\r\n"
           ":0\r\n:0\r\n:1\r\n$3\r\nlen\r\n:3\r\n");
    fx_free(&f);
}

/* The DP table is (len1+1)*(len2+1) 4-byte cells: two 12000-byte strings
 * would need 576 MB, more than Redis allows; 8000 bytes need 256 MB. */
TEST(lcs_refuses_a_table_larger_than_proto_max_bulk_len)
{
    struct fx f;
    fx_init(&f, 1000);
    char *big = tmalloc(12000);
    memset(big, 'a', 12000);
    const char *args[] = {"SET", "la", big};
    size_t lens[] = {3, 2, 12000};
    fx_execv(&f, 3, args, lens);
    memset(big, 'b', 12000);
    args[1] = "lb";
    fx_execv(&f, 3, args, lens);
    EXPECT(&f, "LCS la lb",
           "-ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len\r\n");
    EXPECT(&f, "LCS la nokey LEN", ":0\r\n"); /* 12001 cells */
    tfree(big);
    fx_free(&f);
}

/* ======================================================================== */
/* EXPIRE family, TTL family, PERSIST                                        */
/* ======================================================================== */

TEST(expire_options_and_errors_match_redis)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "EXPIRE nokey 10", ":0\r\n");
    EXPECT(&f, "SET k v", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k v");
    EXPECT(&f, "EXPIRE k 10 foo", "-ERR Unsupported option foo\r\n");
    EXPECT(&f, "EXPIRE k 10 NX XX",
           "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    EXPECT(&f, "EXPIRE k 10 nx gt",
           "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    EXPECT(&f, "EXPIRE k 10 GT LT",
           "-ERR GT and LT options at the same time are not compatible\r\n");
    EXPECT(&f, "EXPIRE k abc NX XX",
           "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    EXPECT(&f, "EXPIRE k abc", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "EXPIRE k 9223372036854776", "-ERR invalid expire time in 'expire' command\r\n");
    EXPECT(&f, "EXPIRE k 9223372036854775", "-ERR invalid expire time in 'expire' command\r\n");
    EXPECT(&f, "EXPIRE k -9223372036854776", "-ERR invalid expire time in 'expire' command\r\n");
    EXPECT(&f, "PEXPIRE k 9223372036854775807",
           "-ERR invalid expire time in 'pexpire' command\r\n");
    EXPECT(&f, "EXPIREAT k 9223372036854776",
           "-ERR invalid expire time in 'expireat' command\r\n");
    EXPECT(&f, "EXPIRE k", "-ERR wrong number of arguments for 'expire' command\r\n");
    CHECK_LOG(&f, "");
    EXPECT(&f, "TTL k", ":-1\r\n");
    /* XX and GT need a deadline; NX and LT accept none (LT: none is infinite) */
    EXPECT(&f, "EXPIRE k 10 XX", ":0\r\n");
    EXPECT(&f, "EXPIRE k 10 GT", ":0\r\n");
    EXPECT(&f, "EXPIRE k 100 LT", ":1\r\n");
    EXPECT(&f, "EXPIRE k 10 NX", ":0\r\n");
    EXPECT(&f, "EXPIRE k 200 LT", ":0\r\n");
    EXPECT(&f, "EXPIRE k 100 GT", ":0\r\n"); /* equal is not greater */
    EXPECT(&f, "EXPIRE k 200 gt", ":1\r\n");
    EXPECT(&f, "EXPIRE k 50 xx", ":1\r\n");
    EXPECT(&f, "PERSIST k", ":1\r\n");
    EXPECT(&f, "PERSIST k", ":0\r\n");
    EXPECT(&f, "PERSIST nokey", ":0\r\n");
    EXPECT(&f, "EXPIRE k 10 NX", ":1\r\n");
    CHECK_LOG(&f, "@1000 PEXPIREAT k 101000 | @1000 PEXPIREAT k 201000 | "
                  "@1000 PEXPIREAT k 51000 | @1000 PERSIST k | @1000 PEXPIREAT k 11000");
    fx_free(&f);
}

TEST(expire_family_logs_absolute_pexpireat)
{
    struct fx f;
    fx_init(&f, 1500);
    EXPECT(&f, "SET k v", "+OK\r\n");
    EXPECT(&f, "EXPIRE k 10", ":1\r\n");
    EXPECT(&f, "PEXPIRE k 2500", ":1\r\n");
    EXPECT(&f, "EXPIREAT k 4000000000", ":1\r\n");
    EXPECT(&f, "PEXPIREAT k 4000000000600", ":1\r\n");
    CHECK_LOG(&f, "@1500 SET k v | @1500 PEXPIREAT k 11500 | @1500 PEXPIREAT k 4000 | "
                  "@1500 PEXPIREAT k 4000000000000 | @1500 PEXPIREAT k 4000000000600");
    EXPECT(&f, "EXPIRETIME k", ":4000000001\r\n"); /* rounded, as Redis 7.0 does */
    EXPECT(&f, "PEXPIRETIME k", ":4000000000600\r\n");
    EXPECT(&f, "PEXPIREAT k 4000000000499", ":1\r\n");
    EXPECT(&f, "EXPIRETIME k", ":4000000000\r\n");
    EXPECT(&f, "EXPIRETIME nokey", ":-2\r\n");
    EXPECT(&f, "SET p v", "+OK\r\n");
    EXPECT(&f, "PEXPIRETIME p", ":-1\r\n");
    fx_free(&f);
}

TEST(expire_in_the_past_deletes_the_key_and_logs_del)
{
    struct fx f;
    fx_init(&f, 10000);
    EXPECT(&f, "MSET a 1 b 2 c 3 d 4", "+OK\r\n");
    EXPECT(&f, "EXPIRE a -1", ":1\r\n");
    EXPECT(&f, "PEXPIRE b 0", ":1\r\n");
    EXPECT(&f, "EXPIREAT c 10", ":1\r\n");
    EXPECT(&f, "PEXPIREAT d 10000", ":1\r\n"); /* now is already too late */
    CHECK_LOG(&f, "@10000 MSET a 1 b 2 c 3 d 4 | @10000 DEL a | @10000 DEL b | @10000 DEL c | "
                  "@10000 DEL d");
    EXPECT(&f, "DBSIZE", ":0\r\n");
    EXPECT(&f, "EXPIRE a -1", ":0\r\n");
    CHECK_LOG(&f, "");
    fx_free(&f);
}

TEST(ttl_rounds_to_seconds_and_counts_reads)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "TTL k", ":-2\r\n");
    EXPECT(&f, "PTTL k", ":-2\r\n");
    EXPECT(&f, "SET k v PX 1499", "+OK\r\n");
    EXPECT(&f, "TTL k", ":1\r\n");
    EXPECT(&f, "PTTL k", ":1499\r\n");
    EXPECT(&f, "SET k v PX 1500", "+OK\r\n");
    EXPECT(&f, "TTL k", ":2\r\n");
    EXPECT(&f, "SET k v PX 499", "+OK\r\n");
    EXPECT(&f, "TTL k", ":0\r\n");
    f.s.now_ms = 1498;
    EXPECT(&f, "PTTL k", ":1\r\n");
    f.s.now_ms = 1499;
    EXPECT(&f, "PTTL k", ":-2\r\n");
    CHECK_EQ_INT(f.s.stats.keyspace_hits, 5);
    CHECK_EQ_INT(f.s.stats.keyspace_misses, 3);
    fx_free(&f);
}

/* ======================================================================== */
/* SETEX PSETEX GETEX                                                        */
/* ======================================================================== */

TEST(setex_and_psetex_set_a_deadline_and_log_set_pxat)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SETEX k 0 v", "-ERR invalid expire time in 'setex' command\r\n");
    EXPECT(&f, "SETEX k -5 v", "-ERR invalid expire time in 'setex' command\r\n");
    EXPECT(&f, "SETEX k abc v", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, "PSETEX k 0 v", "-ERR invalid expire time in 'psetex' command\r\n");
    EXPECT(&f, "SETEX k 9223372036854775 v", "-ERR invalid expire time in 'setex' command\r\n");
    EXPECT(&f, "PSETEX k 9223372036854775807 v",
           "-ERR invalid expire time in 'psetex' command\r\n");
    EXPECT(&f, "SETEX k 10", "-ERR wrong number of arguments for 'setex' command\r\n");
    CHECK_LOG(&f, "");
    EXPECT(&f, "SETEX k 10 v", "+OK\r\n");
    EXPECT(&f, "PSETEX p 1234 w", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k v PXAT 11000 | @1000 SET p w PXAT 2234");
    EXPECT(&f, "TTL k", ":10\r\n");
    f.s.now_ms = 2233;
    EXPECT(&f, "GET p", "$1\r\nw\r\n");
    f.s.now_ms = 2234;
    EXPECT(&f, "GET p", "$-1\r\n");
    fx_free(&f);
}

TEST(getex_options_and_errors_match_redis)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v", "+OK\r\n");
    CHECK_LOG(&f, "@1000 SET k v");
    EXPECT(&f, "GETEX k ex 10 persist", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k PERSIST EX 10", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k EX 10 PX 10", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k NX", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k KEEPTTL", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k GET", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k EX", "-ERR syntax error\r\n");
    EXPECT(&f, "GETEX k EX 0", "-ERR invalid expire time in 'getex' command\r\n");
    EXPECT(&f, "GETEX nokey EX 0", "$-1\r\n"); /* the key first, as in Redis */
    EXPECT(&f, "GETEX k EX 9223372036854775", "-ERR invalid expire time in 'getex' command\r\n");
    EXPECT(&f, "GETEX k PX x", "-ERR value is not an integer or out of range\r\n");
    CHECK_LOG(&f, "");
    EXPECT(&f, "GETEX k", "$1\r\nv\r\n");
    EXPECT(&f, "GETEX nokey EX 10", "$-1\r\n");
    f.c.proto = 3;
    EXPECT(&f, "GETEX nokey", "_\r\n");
    CHECK_LOG(&f, "");
    EXPECT(&f, "GETEX k ex 10 ex 20", "$1\r\nv\r\n");
    EXPECT(&f, "TTL k", ":20\r\n");
    EXPECT(&f, "GETEX k PX 500", "$1\r\nv\r\n");
    EXPECT(&f, "GETEX k EXAT 4000000000", "$1\r\nv\r\n");
    EXPECT(&f, "GETEX k PXAT 4000000000123", "$1\r\nv\r\n");
    EXPECT(&f, "GETEX k PERSIST PERSIST", "$1\r\nv\r\n");
    EXPECT(&f, "GETEX k PERSIST", "$1\r\nv\r\n"); /* no deadline: nothing to log */
    EXPECT(&f, "TTL k", ":-1\r\n");
    CHECK_LOG(&f, "@1000 PEXPIREAT k 21000 | @1000 PEXPIREAT k 1500 | "
                  "@1000 PEXPIREAT k 4000000000000 | @1000 PEXPIREAT k 4000000000123 | "
                  "@1000 PERSIST k");
    EXPECT(&f, "GETEX k EXAT 1", "$1\r\nv\r\n");
    CHECK_LOG(&f, "@1000 DEL k");
    /* a bad time is found after the key is read: hits and misses count */
    CHECK_EQ_INT(f.s.stats.keyspace_hits, 13);
    CHECK_EQ_INT(f.s.stats.keyspace_misses, 3);
    EXPECT(&f, "GET k", "_\r\n");
    fx_free(&f);
}

/* ======================================================================== */
/* replay                                                                    */
/* ======================================================================== */

/* Every write of the family, at several times, then replayed later: the
 * keyspace (values and exact deadlines) must come out the same. */
TEST(replayed_records_reproduce_the_keyspace_exactly)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET a v EX 10", "+OK\r\n");
    EXPECT(&f, "SET b v PX 2500 NX", "+OK\r\n");
    EXPECT(&f, "SET c 10 EX 100", "+OK\r\n");
    EXPECT(&f, "INCR c", ":11\r\n");
    EXPECT(&f, "INCRBYFLOAT c 0.1", "$4\r\n11.1\r\n");
    EXPECT(&f, "SET d hello", "+OK\r\n");
    EXPECT(&f, "EXPIRE d 30", ":1\r\n");
    EXPECT(&f, "APPEND d world", ":10\r\n");
    EXPECT(&f, "SETRANGE d 12 !", ":13\r\n");
    CHECK_REPLAY(&f);
    f.s.now_ms = 3000;
    EXPECT(&f, "SETEX e 5 x", "+OK\r\n");
    EXPECT(&f, "PSETEX g 700 y", "+OK\r\n");
    EXPECT_BIN(&f, "GETEX d PERSIST", "$13\r\nhelloworld\0\0!\r\n");
    EXPECT(&f, "GETEX a EX 60", "$1\r\nv\r\n");
    EXPECT(&f, "PEXPIRE c 12345", ":1\r\n");
    EXPECT(&f, "EXPIREAT e 4000000000", ":1\r\n");
    EXPECT(&f, "SET h 1 KEEPTTL", "+OK\r\n");
    EXPECT(&f, "SET a w XX KEEPTTL GET", "$1\r\nv\r\n");
    EXPECT(&f, "SET g z IFEQ y", "+OK\r\n");
    EXPECT(&f, "MSET m1 1 m2 2", "+OK\r\n");
    EXPECT(&f, "MSETNX n1 1 n2 2", ":1\r\n");
    EXPECT(&f, "GETDEL m1", "$1\r\n1\r\n");
    EXPECT(&f, "GETSET m2 3", "$1\r\n2\r\n");
    EXPECT(&f, "DECRBY m2 10", ":-7\r\n");
    EXPECT(&f, "SETNX q 1", ":1\r\n");
    EXPECT(&f, "EXPIRE q -1", ":1\r\n");
    EXPECT(&f, "SET r 1 PXAT 2999", "+OK\r\n");
    CHECK_REPLAY(&f);
    /* b has expired by now; INCR on it starts afresh without a deadline,
     * which replay must see the same way */
    f.s.now_ms = 4000;
    EXPECT(&f, "INCR b", ":1\r\n");
    EXPECT(&f, "SELECT 3", "+OK\r\n");
    EXPECT(&f, "SET other v EX 1", "+OK\r\n");
    EXPECT(&f, "APPEND other2 x", ":1\r\n");
    CHECK_REPLAY(&f);
    /* the non-trivial records are what they claim to be */
    char text[FX_TEXT_MAX];
    fx_records_text(&f, text, sizeof(text));
    CHECK(strstr(text, "@1000 SET a v PXAT 11000") != NULL);
    CHECK(strstr(text, "@1000 SET b v PXAT 3500") != NULL);
    CHECK(strstr(text, "@1000 SET c 11.1 KEEPTTL") != NULL);
    CHECK(strstr(text, "@3000 PERSIST d") != NULL);
    CHECK(strstr(text, "@3000 PEXPIREAT a 63000") != NULL);
    CHECK(strstr(text, "@3000 SET a w KEEPTTL") != NULL);
    CHECK(strstr(text, "@3000 SET g z |") != NULL);
    CHECK(strstr(text, "@3000 DEL q") != NULL);
    CHECK(strstr(text, "@4000 [db3] SET other v PXAT 5000") != NULL);
    CHECK(strstr(text, "2999") == NULL); /* r was never stored: nothing logged */
    fx_free(&f);
}

/* A record is replayed at its own time even when the replaying server's
 * clock is far ahead: a key that was alive when written is written. */
TEST(replay_uses_the_records_time_not_the_servers)
{
    struct fx f;
    fx_init(&f, 1000);
    EXPECT(&f, "SET k v PX 100", "+OK\r\n");
    EXPECT(&f, "APPEND k w", ":2\r\n");
    EXPECT(&f, "SETRANGE k 0 x", ":2\r\n");
    f.s.now_ms = 1050;
    EXPECT(&f, "INCRBYFLOAT n 1.25", "$4\r\n1.25\r\n");
    CHECK_REPLAY(&f);

    struct cmd_server r;
    cmd_server_init(&r, CMD_DATABASES_DEFAULT, 7);
    r.now_ms = 99999999;
    char err[128];
    for (size_t i = 0; i < f.nrec; i++)
        CHECK_EQ_INT(cmd_replay(&r, f.rec[i].data, f.rec[i].len, err, sizeof(err)), 0);
    struct kv_val v;
    CHECK_EQ_INT(kv_get(r.db[0], "k", 1, 1099, &v), 0);
    CHECK(v.len == 2 && memcmp(v.ptr, "xw", 2) == 0);
    CHECK_EQ_INT(v.expire_ms, 1100);
    cmd_server_free(&r);
    fx_free(&f);
}

static uint64_t fx_rand(uint64_t *state)
{
    /* splitmix64: deterministic from the seed */
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random mixes of every write (and failing variants of them) over a few
 * keys, with the clock moving so that keys expire mid-run: whatever the
 * handlers logged must rebuild the same keyspace. */
TEST(random_workloads_replay_to_the_same_keyspace)
{
    static const char *const cmds[] = {
        "SET %s %s", "SET %s %s EX 3", "SET %s %s PX 1500 NX", "SET %s %s XX GET",
        "SET %s %s KEEPTTL", "SET %s %s PXAT 20000", "SET %s %s IFEQ 1", "SET %s %s EXAT 1",
        "SETNX %s %s", "GETSET %s %s", "GETDEL %s", "MSET %s %s k9 1", "MSETNX %s %s",
        "INCR %s", "DECRBY %s 7", "INCRBYFLOAT %s 0.25", "APPEND %s %s", "SETRANGE %s 3 %s",
        "EXPIRE %s 2", "PEXPIRE %s 700 GT", "EXPIREAT %s 30 NX", "PEXPIREAT %s 1 XX",
        "EXPIRE %s 5 LT", "PERSIST %s", "SETEX %s 4 %s", "PSETEX %s 900 %s", "GETEX %s EX 2",
        "GETEX %s PERSIST", "GETEX %s PXAT 9000", "GETEX %s EXAT 2", "GET %s", "TTL %s",
    };
    static const char *const keys[] = {"a", "b", "c", "d"};
    static const char *const vals[] = {"1", "-3", "2.5", "x", "010", "abc", "1"};
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct fx f;
        uint64_t rs = seed;
        fx_init(&f, 1000);
        for (int i = 0; i < 400; i++) {
            char line[128];
            const char *cmd = cmds[fx_rand(&rs) % TRIAD_ARRAY_LEN(cmds)];
            const char *key = keys[fx_rand(&rs) % TRIAD_ARRAY_LEN(keys)];
            const char *val = vals[fx_rand(&rs) % TRIAD_ARRAY_LEN(vals)];
            snprintf(line, sizeof(line), cmd, key, val);
            fx_exec(&f, line);
            f.s.now_ms += (int64_t)(fx_rand(&rs) % 200);
        }
        int failed_before = test__cur_failed;
        test__cur_failed = 0;
        CHECK_REPLAY(&f);
        if (test__cur_failed)
            fprintf(stderr, "  (seed %llu)\n", (unsigned long long)seed);
        test__cur_failed |= failed_before;
        fx_free(&f);
    }
}

int main(void)
{
    RUN(get_replies_null_as_resp2_or_resp3_and_counts_hits_and_misses);
    RUN(get_returns_binary_values_whole);
    RUN(set_rejects_conflicting_or_malformed_options_with_redis_errors);
    RUN(set_nx_xx_get_reply_and_write_as_redis_does);
    RUN(set_ex_expires_the_key_at_the_exact_millisecond);
    RUN(set_removes_a_deadline_unless_keepttl);
    RUN(set_with_a_past_deadline_deletes_the_key_and_logs_del);
    RUN(set_ifeq_writes_only_over_an_equal_value_and_never_creates);
    RUN(setnx_getset_getdel_reply_and_log_plain_writes);
    RUN(mget_mset_msetnx_reply_as_redis_does);
    RUN(incr_family_follows_string2ll_and_refuses_overflow);
    RUN(incr_keeps_the_deadline_and_writes_canonical_digits);
    RUN(incrbyfloat_formats_like_redis_and_logs_the_result);
    RUN(incrbyfloat_refuses_bad_floats_nan_and_infinity);
    RUN(incrbyfloat_keeps_the_deadline);
    RUN(append_and_strlen_reply_lengths_and_keep_the_deadline);
    RUN(append_many_times_builds_the_whole_value);
    RUN(setrange_writes_pads_and_refuses_offsets_past_512mb);
    RUN(string_values_stop_at_exactly_512mb);
    RUN(getrange_follows_redis_7_index_rules);
    RUN(lcs_replies_string_len_and_idx_like_redis);
    RUN(lcs_of_identical_and_disjoint_strings);
    RUN(lcs_breaks_ties_as_redis_does);
    RUN(lcs_refuses_a_table_larger_than_proto_max_bulk_len);
    RUN(expire_options_and_errors_match_redis);
    RUN(expire_family_logs_absolute_pexpireat);
    RUN(expire_in_the_past_deletes_the_key_and_logs_del);
    RUN(ttl_rounds_to_seconds_and_counts_reads);
    RUN(setex_and_psetex_set_a_deadline_and_log_set_pxat);
    RUN(getex_options_and_errors_match_redis);
    RUN(replayed_records_reproduce_the_keyspace_exactly);
    RUN(replay_uses_the_records_time_not_the_servers);
    RUN(random_workloads_replay_to_the_same_keyspace);
    return test_summary("cmd_string");
}
