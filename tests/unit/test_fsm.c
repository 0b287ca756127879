/* test_fsm.c - the replicated state machine: entry payloads, apply with
 * exact replies, the idempotent receiver's sessions, the logical clock,
 * reads, snapshots and digests, and agreement between replicas. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/crc32c.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/node/fsm.h"
#include "test.h"
#include "test_words.h"

/* ---- fixture ---- */

#define T_SEED 42

static struct tbuf t_reply; /* the last reply, NUL-terminated past len */
static int t_rc;            /* the last fsm_apply / fsm_read return code */


/* Append the payload of `line` (NULL: a clock tick) to out. */
static void t_encode(struct tbuf *out, int db, int proto, uint64_t client_id, uint64_t seq,
                     uint64_t now_ms, const char *line)
{
    char words[T_LINE_MAX];
    char *argv[T_ARGS_MAX];
    size_t argvlen[T_ARGS_MAX];
    struct fsm_command c = {.proto = proto, .client_id = client_id, .seq = seq,
                            .now_ms = now_ms, .db = db, .argv = argv, .argvlen = argvlen};
    c.argc = line ? t_split(line, words, argv, argvlen) : 0;
    int rc = fsm_encode_command(&c, out);
    TRIAD_ASSERT(rc == 0);
}

static void t_reply_terminate(void)
{
    tbuf_appendc(&t_reply, '\0');
    t_reply.len--;
}

/* Apply raw payload bytes as the next entry; the reply is in t_reply. */
static const char *t_apply_raw(struct fsm *f, const void *data, size_t len)
{
    tbuf_reset(&t_reply);
    t_rc = fsm_apply(f, f->applied_index + 1, data, len, &t_reply);
    t_reply_terminate();
    return t_reply.data;
}

static const char *t_apply_full(struct fsm *f, int db, int proto, uint64_t client_id,
                                uint64_t seq, uint64_t now_ms, const char *line)
{
    struct tbuf e = {0};
    t_encode(&e, db, proto, client_id, seq, now_ms, line);
    t_apply_raw(f, e.data, e.len);
    tbuf_free(&e);
    return t_reply.data;
}

static const char *t_apply(struct fsm *f, uint64_t client_id, uint64_t seq, uint64_t now_ms,
                           const char *line)
{
    return t_apply_full(f, 0, 2, client_id, seq, now_ms, line);
}

static const char *t_read(struct fsm *f, int db, int proto, const char *line)
{
    char words[T_LINE_MAX];
    char *argv[T_ARGS_MAX];
    size_t argvlen[T_ARGS_MAX];
    int argc = t_split(line, words, argv, argvlen);
    tbuf_reset(&t_reply);
    t_rc = fsm_read(f, db, proto, argc, argv, argvlen, &t_reply);
    t_reply_terminate();
    return t_reply.data;
}

#define EXPECT_APPLY(f, client, seq, now, line, want)                                     \
    do {                                                                                  \
        t_apply((f), (client), (seq), (now), (line));                                     \
        CHECK_MEM_STR(t_reply.data, t_reply.len, (want));                                 \
        CHECK_EQ_INT(t_rc, 0);                                                            \
    } while (0)

#define EXPECT_READ(f, line, want)                                                        \
    do {                                                                                  \
        t_read((f), 0, 2, (line));                                                        \
        CHECK_MEM_STR(t_reply.data, t_reply.len, (want));                                 \
    } while (0)

static bool t_starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void t_snapshot(const struct fsm *f, struct tbuf *out)
{
    tbuf_reset(out);
    CHECK_EQ_INT(fsm_snapshot(f, out), 0);
}

static bool t_same_bytes(const struct tbuf *a, const struct tbuf *b)
{
    return a->len == b->len && (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* ---- entry payloads ---- */

TEST(command_round_trips_through_encode_and_decode)
{
    char a0[] = "SET", a1[] = "k\0ey", a2[] = "";
    char *argv[3] = {a0, a1, a2};
    size_t argvlen[3] = {3, 4, 0};
    struct fsm_command c = {.proto = 3, .client_id = UINT64_MAX, .seq = 1ull << 63,
                            .now_ms = INT64_MAX, .db = FSM_DATABASES - 1, .argc = 3,
                            .argv = argv, .argvlen = argvlen};
    struct tbuf e = {0};
    tbuf_appends(&e, "xy"); /* encode appends */
    CHECK_EQ_INT(fsm_encode_command(&c, &e), 0);
    CHECK_EQ_INT(e.len, 2 + FSM_COMMAND_HEADER_SIZE + 3 * 4 + 3 + 4 + 0);
    CHECK(memcmp(e.data, "xy", 2) == 0);
    /* the layout, byte for byte */
    const unsigned char *p = (const unsigned char *)e.data + 2;
    CHECK_EQ_INT(p[0], 1);
    CHECK_EQ_INT(p[1], 3);
    CHECK(tbuf_read_u64le(p + 2) == UINT64_MAX);
    CHECK(tbuf_read_u64le(p + 10) == 1ull << 63);
    CHECK(tbuf_read_u64le(p + 18) == (uint64_t)INT64_MAX);
    CHECK_EQ_INT(tbuf_read_u32le(p + 26), FSM_DATABASES - 1);
    CHECK_EQ_INT(tbuf_read_u32le(p + 30), 3);
    CHECK_EQ_INT(tbuf_read_u32le(p + 34), 3);
    CHECK(memcmp(p + 38, "SET", 3) == 0);

    struct fsm_command d;
    char err[256];
    CHECK_EQ_INT(fsm_decode_command(e.data + 2, e.len - 2, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.proto, 3);
    CHECK(d.client_id == UINT64_MAX);
    CHECK(d.seq == 1ull << 63);
    CHECK(d.now_ms == (uint64_t)INT64_MAX);
    CHECK_EQ_INT(d.db, FSM_DATABASES - 1);
    CHECK_EQ_INT(d.argc, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(d.argvlen[i], argvlen[i]);
        CHECK(memcmp(d.argv[i], argv[i], argvlen[i]) == 0);
        CHECK_EQ_INT(d.argv[i][d.argvlen[i]], '\0'); /* NUL-terminated copies */
        CHECK(d.argv[i] != argv[i]);
    }
    fsm_command_free(&d);
    CHECK(d.argv == NULL);

    /* a clock tick: no arguments, no session */
    tbuf_reset(&e);
    struct fsm_command tick = {.proto = 2, .now_ms = 5};
    CHECK_EQ_INT(fsm_encode_command(&tick, &e), 0);
    CHECK_EQ_INT(e.len, FSM_COMMAND_HEADER_SIZE);
    CHECK_EQ_INT(fsm_decode_command(e.data, e.len, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.argc, 0);
    CHECK(d.now_ms == 5);
    fsm_command_free(&d);
    tbuf_free(&e);
}

TEST(encode_refuses_out_of_range_fields_and_leaves_out_unchanged)
{
    char a0[] = "GET", a1[] = "k";
    char *argv[2] = {a0, a1};
    size_t argvlen[2] = {3, 1};
    struct fsm_command good = {.proto = 2, .client_id = 1, .seq = 1, .now_ms = 1, .db = 0,
                               .argc = 2, .argv = argv, .argvlen = argvlen};
    struct tbuf e = {0};
    tbuf_appends(&e, "keep");
    struct fsm_command c;
    c = good, c.proto = 1;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.proto = 4;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.db = -1;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.db = FSM_DATABASES;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.seq = 0;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.client_id = 0;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.now_ms = (uint64_t)INT64_MAX + 1;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.argc = -1;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.argc = 0; /* a clock tick with a session */
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_EINVAL);
    c = good, c.argc = FSM_COMMAND_ARGC_MAX + 1;
    CHECK_EQ_INT(fsm_encode_command(&c, &e), TRIAD_ELIMIT);
    CHECK_MEM_STR(e.data, e.len, "keep");
    tbuf_free(&e);
}

TEST(entries_at_the_argc_and_size_limits_round_trip_and_one_past_is_refused)
{
    struct tbuf e = {0};
    char err[256];
    struct fsm_command d;

    /* FSM_COMMAND_ARGC_MAX empty arguments */
    char **argv = tcalloc(FSM_COMMAND_ARGC_MAX, sizeof(*argv));
    size_t *argvlen = tcalloc(FSM_COMMAND_ARGC_MAX, sizeof(*argvlen));
    char empty[1] = "";
    for (int i = 0; i < FSM_COMMAND_ARGC_MAX; i++)
        argv[i] = empty;
    struct fsm_command c = {.proto = 2, .argc = FSM_COMMAND_ARGC_MAX, .argv = argv,
                            .argvlen = argvlen};
    CHECK_EQ_INT(fsm_encode_command(&c, &e), 0);
    CHECK_EQ_INT(fsm_decode_command(e.data, e.len, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.argc, FSM_COMMAND_ARGC_MAX);
    fsm_command_free(&d);
    /* one more argument in the count than the limit */
    tbuf_write_u32le(e.data + 30, FSM_COMMAND_ARGC_MAX + 1);
    CHECK_EQ_INT(fsm_decode_command(e.data, e.len, &d, err, sizeof(err)), TRIAD_ECORRUPT);
    CHECK(strstr(err, "argument count") != NULL);
    tfree(argv);
    tfree(argvlen);

    /* exactly FSM_COMMAND_BYTES_MAX: one argument filling the rest */
    size_t big = FSM_COMMAND_BYTES_MAX - FSM_COMMAND_HEADER_SIZE - 4;
    char *val = tcalloc(1, big + 1);
    char *bargv[1] = {val};
    size_t bargvlen[1] = {big};
    struct fsm_command b = {.proto = 2, .argc = 1, .argv = bargv, .argvlen = bargvlen};
    tbuf_reset(&e);
    CHECK_EQ_INT(fsm_encode_command(&b, &e), 0);
    CHECK_EQ_INT(e.len, FSM_COMMAND_BYTES_MAX);
    CHECK_EQ_INT(fsm_decode_command(e.data, e.len, &d, err, sizeof(err)), 0);
    CHECK_EQ_INT(d.argvlen[0], big);
    fsm_command_free(&d);
    /* one byte more */
    bargvlen[0] = big + 1;
    tbuf_reset(&e);
    CHECK_EQ_INT(fsm_encode_command(&b, &e), TRIAD_ELIMIT);
    CHECK_EQ_INT(e.len, 0);
    char *over = tcalloc(1, (size_t)FSM_COMMAND_BYTES_MAX + 1);
    CHECK_EQ_INT(fsm_decode_command(over, (size_t)FSM_COMMAND_BYTES_MAX + 1, &d, err,
                                    sizeof(err)),
                 TRIAD_ECORRUPT);
    CHECK(strstr(err, "exceeds the limit") != NULL);
    tfree(over);
    tfree(val);
    tbuf_free(&e);
}

/* Decode `e` with the u8/u32/u64 at off replaced by v; expect a refusal
 * whose message contains `why`. */
static void t_expect_corrupt(const struct tbuf *e, size_t off, int width, uint64_t v,
                             const char *why, int line)
{
    char *copy = tmalloc(e->len);
    memcpy(copy, e->data, e->len);
    if (width == 1)
        copy[off] = (char)v;
    else if (width == 4)
        tbuf_write_u32le(copy + off, (uint32_t)v);
    else
        tbuf_write_u64le(copy + off, v);
    struct fsm_command d;
    char err[256] = "";
    int rc = fsm_decode_command(copy, e->len, &d, err, sizeof(err));
    if (rc != TRIAD_ECORRUPT || strstr(err, why) == NULL || d.argv != NULL || d.argc != 0) {
        fprintf(stderr, "  (line %d: rc %d, message \"%s\", wanted \"%s\")\n", line, rc, err,
                why);
        CHECK(rc == TRIAD_ECORRUPT && strstr(err, why) != NULL);
    }
    tfree(copy);
}

TEST(decode_rejects_every_malformed_field)
{
    struct tbuf e = {0};
    t_encode(&e, 1, 2, 7, 3, 1000, "SET key value");
    char err[256];
    struct fsm_command d;
    CHECK_EQ_INT(fsm_decode_command(e.data, e.len, &d, err, sizeof(err)), 0);
    fsm_command_free(&d);

    t_expect_corrupt(&e, 0, 1, 0, "version 0", __LINE__);
    t_expect_corrupt(&e, 0, 1, 2, "version 2", __LINE__);
    t_expect_corrupt(&e, 1, 1, 0, "protocol 0", __LINE__);
    t_expect_corrupt(&e, 1, 1, 1, "protocol 1", __LINE__);
    t_expect_corrupt(&e, 1, 1, 4, "protocol 4", __LINE__);
    t_expect_corrupt(&e, 2, 8, 0, "sequence 3 without a client id", __LINE__);
    t_expect_corrupt(&e, 10, 8, 0, "client 7 with sequence 0", __LINE__);
    t_expect_corrupt(&e, 18, 8, (uint64_t)INT64_MAX + 1, "out of range", __LINE__);
    t_expect_corrupt(&e, 26, 4, FSM_DATABASES, "db 16 out of range", __LINE__);
    t_expect_corrupt(&e, 26, 4, UINT32_MAX, "out of range", __LINE__);
    t_expect_corrupt(&e, 30, 4, 0, "clock tick with client 7", __LINE__);
    t_expect_corrupt(&e, 30, 4, 6, "does not fit", __LINE__);
    t_expect_corrupt(&e, 30, 4, 4, "truncated at the length of argument 3", __LINE__);
    t_expect_corrupt(&e, 30, 4, 2, "trailing bytes", __LINE__);
    t_expect_corrupt(&e, 30, 4, UINT32_MAX, "exceeds the limit", __LINE__);
    t_expect_corrupt(&e, 34, 4, 4, "argument 1 of", __LINE__); /* eats the next length */
    t_expect_corrupt(&e, 34, 4, UINT32_MAX, "runs past the entry", __LINE__);
    t_expect_corrupt(&e, 34 + 4 + 3 + 4 + 3, 4, 6, "argument 2 of 6 bytes runs past", __LINE__);
    t_expect_corrupt(&e, 34 + 4 + 3 + 4 + 3, 4, 4, "1 trailing bytes", __LINE__);

    /* every proper prefix is refused, and so is one byte more */
    for (size_t n = 0; n < e.len; n++) {
        memset(&d, 0xff, sizeof(d));
        CHECK_EQ_INT(fsm_decode_command(e.data, n, &d, err, sizeof(err)), TRIAD_ECORRUPT);
        CHECK(d.argv == NULL);
    }
    tbuf_appendc(&e, 'x');
    CHECK_EQ_INT(fsm_decode_command(e.data, e.len, &d, err, sizeof(err)), TRIAD_ECORRUPT);
    CHECK(strstr(err, "1 trailing bytes") != NULL);
    tbuf_free(&e);
}

/* ---- apply ---- */

TEST(apply_runs_string_commands_with_redis_replies)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k v", "+OK\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$1\r\nv\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "APPEND k w", ":2\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$2\r\nvw\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "INCR n", ":1\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "INCR n", ":2\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "INCR k",
                 "-ERR value is not an integer or out of range\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET missing", "$-1\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "SET b a\\0b", "+OK\r\n");
    t_apply(&f, 0, 0, 1000, "GET b");
    CHECK(t_reply.len == 9 && memcmp(t_reply.data, "$3\r\na\0b\r\n", 9) == 0);
    CHECK_EQ_INT(f.applied_index, 10);
    CHECK(f.clock_ms == 1000);
    /* the entry's db and protocol */
    t_apply_full(&f, 3, 3, 0, 0, 1000, "GET k");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "_\r\n");
    t_apply_full(&f, 3, 3, 0, 0, 1000, "SET k three");
    t_apply_full(&f, 3, 2, 0, 0, 1000, "GET k");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "$5\r\nthree\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$2\r\nvw\r\n");
    /* the reply is appended to what the buffer held */
    struct tbuf r = {0}, e = {0};
    tbuf_appends(&r, "before");
    t_encode(&e, 0, 2, 0, 0, 1000, "GET k");
    CHECK_EQ_INT(fsm_apply(&f, f.applied_index + 1, e.data, e.len, &r), 0);
    CHECK_MEM_STR(r.data, r.len, "before$2\r\nvw\r\n");
    tbuf_free(&r);
    tbuf_free(&e);
    fsm_free(&f);
}

TEST(apply_set_ifeq_writes_only_over_an_equal_value)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k new IFEQ old", "$-1\r\n"); /* never creates */
    EXPECT_APPLY(&f, 0, 0, 1000, "EXISTS k", ":0\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k old", "+OK\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k new IFEQ other", "$-1\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$3\r\nold\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k new IFEQ old", "+OK\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$3\r\nnew\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k newer IFEQ new GET", "$3\r\nnew\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$5\r\nnewer\r\n");
    fsm_free(&f);
}

TEST(retried_seq_gets_the_first_reply_and_is_not_applied_again)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 9, 1, 1000, "INCR n", ":1\r\n");
    EXPECT_APPLY(&f, 9, 1, 1001, "INCR n", ":1\r\n");
    EXPECT_APPLY(&f, 9, 1, 1002, "INCR n", ":1\r\n");
    EXPECT_APPLY(&f, 0, 0, 1003, "GET n", "$1\r\n1\r\n");
    /* a read's reply is saved too: the retry does not see later writes */
    EXPECT_APPLY(&f, 9, 2, 1004, "GET k", "$-1\r\n");
    EXPECT_APPLY(&f, 4, 1, 1005, "SET k v", "+OK\r\n");
    EXPECT_APPLY(&f, 9, 2, 1006, "GET k", "$-1\r\n");
    /* the next seq runs; seqs may skip (a client gave up on one) */
    EXPECT_APPLY(&f, 9, 5, 1007, "INCR n", ":2\r\n");
    EXPECT_APPLY(&f, 9, 5, 1008, "INCR n", ":2\r\n");
    /* another client's sequence numbers are its own */
    EXPECT_APPLY(&f, 4, 1, 1009, "INCR n", "+OK\r\n");
    EXPECT_APPLY(&f, 4, 2, 1010, "INCR n", ":3\r\n");
    /* client 0 has no session: every entry runs */
    EXPECT_APPLY(&f, 0, 0, 1011, "INCR n", ":4\r\n");
    EXPECT_APPLY(&f, 0, 0, 1012, "INCR n", ":5\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 2);
    /* an error reply is an answer like any other */
    EXPECT_APPLY(&f, 4, 3, 1013, "INCR k", "-ERR value is not an integer or out of range\r\n");
    EXPECT_APPLY(&f, 4, 3, 1014, "INCR k", "-ERR value is not an integer or out of range\r\n");
    fsm_free(&f);
}

TEST(older_seq_is_refused_as_stale_and_changes_nothing)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 9, 1, 1000, "INCR n", ":1\r\n");
    EXPECT_APPLY(&f, 9, 3, 1000, "INCR n", ":2\r\n");
    uint64_t before = fsm_digest(&f);
    EXPECT_APPLY(&f, 9, 2, 1000, "INCR n",
                 "-ERR TRIAD stale request: sequence 2 of client 9 was already answered "
                 "(last answered: 3)\r\n");
    EXPECT_APPLY(&f, 9, 1, 1000, "SET n x",
                 "-ERR TRIAD stale request: sequence 1 of client 9 was already answered "
                 "(last answered: 3)\r\n");
    CHECK(fsm_digest(&f) == before); /* no write, no touch */
    EXPECT_APPLY(&f, 0, 0, 1000, "GET n", "$1\r\n2\r\n");
    EXPECT_APPLY(&f, 9, 3, 1000, "INCR n", ":2\r\n"); /* the last is still the last */
    fsm_free(&f);
}

TEST(sessions_expire_after_the_ttl_of_logical_time)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    f.session_ttl_ms = 1000;
    EXPECT_APPLY(&f, 1, 1, 0, "INCR a", ":1\r\n");
    EXPECT_APPLY(&f, 2, 1, 999, "INCR b", ":1\r\n");
    EXPECT_APPLY(&f, 1, 1, 999, "INCR a", ":1\r\n"); /* a retry touches the session */
    EXPECT_APPLY(&f, 2, 2, 1998, "INCR b", ":2\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 2);
    EXPECT_APPLY(&f, 2, 3, 1999, "INCR b", ":3\r\n"); /* 1000 ms since client 1's touch */
    CHECK_EQ_INT(fsm_session_count(&f), 1);
    /* A retry after its session is gone runs again: the documented limit
     * of implicit sessions. */
    EXPECT_APPLY(&f, 1, 1, 2000, "INCR a", ":2\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 2);
    /* Wall time means nothing: only entries move the clock. */
    EXPECT_APPLY(&f, 0, 0, 2998, "GET a", "$1\r\n2\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 2);
    EXPECT_APPLY(&f, 0, 0, 2999, "GET a", "$1\r\n2\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 1); /* client 2, touched at 1999, is gone */
    /* a clock tick expires sessions too */
    t_apply(&f, 0, 0, 3000, NULL);
    CHECK_EQ_INT(t_rc, 0);
    CHECK_EQ_INT(t_reply.len, 0);
    CHECK_EQ_INT(fsm_session_count(&f), 0);
    fsm_free(&f);
}

TEST(sessions_past_the_cap_evict_the_least_recently_touched)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    f.sessions_max = 3;
    EXPECT_APPLY(&f, 1, 1, 10, "INCR c1", ":1\r\n");
    EXPECT_APPLY(&f, 2, 1, 20, "INCR c2", ":1\r\n");
    EXPECT_APPLY(&f, 3, 1, 30, "INCR c3", ":1\r\n");
    EXPECT_APPLY(&f, 1, 1, 40, "INCR c1", ":1\r\n"); /* order now 2, 3, 1 */
    CHECK_EQ_INT(fsm_session_count(&f), 3);
    EXPECT_APPLY(&f, 4, 1, 50, "INCR c4", ":1\r\n"); /* evicts client 2 */
    CHECK_EQ_INT(fsm_session_count(&f), 3);
    EXPECT_APPLY(&f, 2, 1, 60, "INCR c2", ":2\r\n"); /* forgotten: runs again; evicts 3 */
    EXPECT_APPLY(&f, 1, 1, 70, "INCR c1", ":1\r\n"); /* still remembered */
    EXPECT_APPLY(&f, 4, 1, 80, "INCR c4", ":1\r\n");
    EXPECT_APPLY(&f, 3, 1, 90, "INCR c3", ":2\r\n"); /* evicted by client 2 */
    CHECK_EQ_INT(fsm_session_count(&f), 3);
    /* the same touches at the same instant still order by the log */
    EXPECT_APPLY(&f, 5, 1, 90, "INCR c5", ":1\r\n"); /* evicts 1 (touched at 70) */
    EXPECT_APPLY(&f, 6, 1, 90, "INCR c6", ":1\r\n"); /* evicts 4 (80) */
    EXPECT_APPLY(&f, 7, 1, 90, "INCR c7", ":1\r\n"); /* evicts 3 (90, before 5) */
    EXPECT_APPLY(&f, 3, 1, 90, "INCR c3", ":3\r\n"); /* forgotten again; evicts 5 */
    EXPECT_APPLY(&f, 6, 1, 90, "INCR c6", ":1\r\n");
    EXPECT_APPLY(&f, 7, 1, 90, "INCR c7", ":1\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 3);
    fsm_free(&f);
}

TEST(expired_sessions_are_freed_a_bounded_number_per_apply_and_never_used)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    f.session_ttl_ms = 100;
    for (uint64_t id = 1; id <= 200; id++)
        t_apply(&f, id, 1, 0, "INCR n");
    CHECK_EQ_INT(fsm_session_count(&f), 200);
    EXPECT_APPLY(&f, 0, 0, 100, "GET n", "$3\r\n200\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 200 - FSM_SESSION_SWEEP_MAX);
    /* Client 150 is past its TTL though not freed yet: gone all the same,
     * so its retry runs again. */
    EXPECT_APPLY(&f, 150, 1, 100, "INCR n", ":201\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 200 - 2 * FSM_SESSION_SWEEP_MAX - 1 + 1);
    EXPECT_APPLY(&f, 0, 0, 100, "GET n", "$3\r\n201\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 200 - 3 * FSM_SESSION_SWEEP_MAX);
    EXPECT_APPLY(&f, 0, 0, 100, "GET n", "$3\r\n201\r\n");
    CHECK_EQ_INT(fsm_session_count(&f), 1);
    EXPECT_APPLY(&f, 150, 1, 100, "INCR n", ":201\r\n");
    fsm_free(&f);
}

TEST(clock_never_goes_back_and_an_expired_key_is_not_revived)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k v PX 100", "+OK\r\n"); /* deadline 1100 */
    EXPECT_APPLY(&f, 0, 0, 1099, "PTTL k", ":1\r\n");
    EXPECT_APPLY(&f, 0, 0, 1200, "SET other x", "+OK\r\n");
    /* collected eagerly: no replica holds an expired key between entries */
    CHECK_EQ_INT(kv_count(f.srv.db[0]), 1);
    /* a new leader whose clock is behind */
    EXPECT_APPLY(&f, 0, 0, 1050, "GET k", "$-1\r\n");
    CHECK(f.clock_ms == 1200);
    EXPECT_APPLY(&f, 0, 0, 1050, "SET k2 v PX 500", "+OK\r\n"); /* from 1200: 1700 */
    EXPECT_APPLY(&f, 0, 0, 900, "PTTL k2", ":500\r\n");
    EXPECT_APPLY(&f, 0, 0, 1050, "DBSIZE", ":2\r\n");
    EXPECT_READ(&f, "PEXPIRETIME k2", ":1700\r\n");
    CHECK(f.clock_ms == 1200);
    fsm_free(&f);
}

TEST(a_clock_tick_expires_keys_without_running_a_command)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k v PX 100", "+OK\r\n");
    t_apply(&f, 0, 0, 1100, NULL);
    CHECK_EQ_INT(t_rc, 0);
    CHECK_EQ_INT(t_reply.len, 0);
    CHECK_EQ_INT(f.applied_index, 2);
    CHECK(f.clock_ms == 1100);
    CHECK_EQ_INT(kv_count(f.srv.db[0]), 0);
    EXPECT_READ(&f, "EXISTS k", ":0\r\n");
    fsm_free(&f);
}

TEST(log_refuses_connection_and_server_commands_with_err)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "MULTI",
                 "-ERR TRIAD 'MULTI' cannot run through the replicated log: only data reads "
                 "and writes can\r\n");
    static const char *const refused[] = {
        "EXEC", "DISCARD", "WATCH k", "UNWATCH", "SELECT 1", "CLIENT ID", "CLIENT REPLY OFF",
        "HELLO 3", "AUTH pw", "CONFIG SET maxmemory 1", "SHUTDOWN", "SAVE", "BGSAVE", "INFO",
        "TIME", "PING", "ECHO x", "QUIT", "RESET", "COMMAND", "LASTSAVE",
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(refused); i++) {
        t_apply(&f, 0, 0, 1000, refused[i]);
        if (!t_starts_with(t_reply.data, "-ERR TRIAD '") ||
            strstr(t_reply.data, "cannot run through the replicated log") == NULL) {
            fprintf(stderr, "  (%s: %s)\n", refused[i], t_reply.data);
            CHECK(false);
        }
    }
    static const char *const layout[] = {"KEYS *", "SCAN 0", "RANDOMKEY"};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(layout); i++) {
        t_apply(&f, 0, 0, 1000, layout[i]);
        CHECK(t_starts_with(t_reply.data, "-ERR TRIAD '"));
        CHECK(strstr(t_reply.data, "hash table layout") != NULL);
    }
    /* cmd's own errors for unknown commands and arities */
    EXPECT_APPLY(&f, 0, 0, 1000, "NOPE a",
                 "-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    /* a refused command from a session is answered once, like any other */
    EXPECT_APPLY(&f, 5, 1, 1000, "SELECT 2",
                 "-ERR TRIAD 'SELECT' cannot run through the replicated log: only data reads "
                 "and writes can\r\n");
    EXPECT_APPLY(&f, 5, 1, 1000, "SET k v",
                 "-ERR TRIAD 'SELECT' cannot run through the replicated log: only data reads "
                 "and writes can\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "DBSIZE", ":0\r\n"); /* nothing of the above wrote */
    /* data writes that span databases are fine, FLUSH ASYNC included */
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k v", "+OK\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "COPY k k DB 4", ":1\r\n");
    t_apply_full(&f, 4, 2, 0, 0, 1000, "GET k");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "$1\r\nv\r\n");
    EXPECT_APPLY(&f, 0, 0, 1000, "FLUSHALL ASYNC", "+OK\r\n");
    t_apply_full(&f, 4, 2, 0, 0, 1000, "DBSIZE");
    CHECK_MEM_STR(t_reply.data, t_reply.len, ":0\r\n");
    fsm_free(&f);
}

TEST(malformed_entry_replies_err_advances_the_index_and_changes_nothing)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 3, 1, 1000, "SET k v", "+OK\r\n");
    uint64_t before = fsm_digest(&f);
    struct tbuf e = {0};
    t_encode(&e, 0, 2, 3, 2, 5000, "SET k w");
    e.data[1] = 9; /* protocol 9 */
    t_apply_raw(&f, e.data, e.len);
    CHECK_EQ_INT(t_rc, TRIAD_ECORRUPT);
    CHECK_MEM_STR(t_reply.data, t_reply.len,
                  "-ERR TRIAD malformed entry at index 2: protocol 9 is neither 2 nor 3\r\n");
    CHECK_EQ_INT(f.applied_index, 2);
    CHECK(f.clock_ms == 1000); /* a malformed entry's time is not trusted either */
    CHECK(fsm_digest(&f) == before);
    t_apply_raw(&f, "", 0);
    CHECK_EQ_INT(t_rc, TRIAD_ECORRUPT);
    CHECK(t_starts_with(t_reply.data, "-ERR TRIAD malformed entry at index 3: "));
    CHECK_EQ_INT(f.applied_index, 3);
    EXPECT_APPLY(&f, 3, 2, 1000, "GET k", "$1\r\nv\r\n");
    tbuf_free(&e);
    fsm_free(&f);
}

TEST(noop_entries_advance_only_the_applied_index)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k v", "+OK\r\n");
    uint64_t before = fsm_digest(&f);
    fsm_apply_noop(&f, 2);
    fsm_apply_noop(&f, 3);
    CHECK_EQ_INT(f.applied_index, 3);
    CHECK(fsm_digest(&f) == before);
    CHECK(f.clock_ms == 1000);
    EXPECT_APPLY(&f, 0, 0, 1000, "GET k", "$1\r\nv\r\n");
    CHECK_EQ_INT(f.applied_index, 4);
    fsm_free(&f);
}

/* ---- reads ---- */

TEST(read_answers_at_the_logical_clock_and_refuses_writes)
{
    struct fsm f;
    fsm_init(&f, T_SEED);
    EXPECT_APPLY(&f, 0, 0, 1000, "SET k v PX 300", "+OK\r\n");
    EXPECT_READ(&f, "GET k", "$1\r\nv\r\n");
    CHECK_EQ_INT(t_rc, 0);
    EXPECT_READ(&f, "PTTL k", ":300\r\n"); /* whatever the wall clock says */
    EXPECT_READ(&f, "get k", "$1\r\nv\r\n");
    t_read(&f, 0, 3, "GET nope");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "_\r\n");
    t_read(&f, 2, 2, "GET k");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "$-1\r\n");
    /* layout-dependent reads are fine here: nothing is saved */
    EXPECT_READ(&f, "KEYS *", "*1\r\n$1\r\nk\r\n");
    CHECK_EQ_INT(t_rc, 0);

    uint64_t before = fsm_digest(&f);
    EXPECT_READ(&f, "SET k w", "-ERR TRIAD 'SET' is not a read-only command\r\n");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    EXPECT_READ(&f, "INCR n", "-ERR TRIAD 'INCR' is not a read-only command\r\n");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    EXPECT_READ(&f, "MULTI", "-ERR TRIAD 'MULTI' is not a read-only command\r\n");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    EXPECT_READ(&f, "PING", "-ERR TRIAD 'PING' is not a read-only command\r\n");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    EXPECT_READ(&f, "NOPE", "-ERR unknown command 'NOPE', with args beginning with: \r\n");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    t_read(&f, FSM_DATABASES, 2, "GET k");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "-ERR DB index is out of range\r\n");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    t_read(&f, 0, 4, "GET k");
    CHECK_EQ_INT(t_rc, TRIAD_EINVAL);
    CHECK(t_starts_with(t_reply.data, "-ERR TRIAD protocol 4"));
    CHECK(fsm_digest(&f) == before);
    CHECK_EQ_INT(f.applied_index, 1);
    EXPECT_APPLY(&f, 0, 0, 1300, "GET k", "$-1\r\n");
    EXPECT_READ(&f, "GET k", "$-1\r\n");
    fsm_free(&f);
}

/* ---- a workload: entries drawn from a seed ---- */

#define T_LOG_MAX 1200

struct t_entry {
    struct tbuf payload;
    bool noop;
};

struct t_log {
    struct t_entry e[T_LOG_MAX];
    int n;
};

static uint64_t t_rand(uint64_t *s)
{
    /* xorshift64* */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dull;
}

/* Commands of every kind the log carries, from six clients with sessions
 * and from none, retries and stale copies among them, a clock that
 * sometimes goes back, deadlines that pass, malformed entries, no-ops and
 * clock ticks. */
static void t_workload(struct t_log *log, int n, uint64_t seed)
{
    uint64_t s = seed | 1;
    uint64_t seq[7] = {0};
    uint64_t now_ms = 1000000;
    memset(log, 0, sizeof(*log));
    TRIAD_ASSERT(n <= T_LOG_MAX);
    for (int i = 0; i < n; i++) {
        struct t_entry *e = &log->e[log->n++];
        uint64_t r = t_rand(&s) % 100;
        if (r < 3) {
            e->noop = true;
            continue;
        }
        if (r < 5) {
            for (uint64_t j = t_rand(&s) % 40; j > 0; j--)
                tbuf_appendc(&e->payload, (char)t_rand(&s));
            continue;
        }
        /* time: mostly forward, sometimes back (a lagging new leader) */
        uint64_t dt = t_rand(&s) % 10;
        if (dt == 0 && now_ms > 300)
            now_ms -= 300;
        else
            now_ms += dt * 37;
        if (r < 8) {
            t_encode(&e->payload, 0, 2, 0, 0, now_ms, NULL);
            continue;
        }
        char line[256];
        int k = (int)(t_rand(&s) % 12);
        int ms = (int)(t_rand(&s) % 900);
        switch (t_rand(&s) % 14) {
        case 0: snprintf(line, sizeof(line), "SET k%d v%d", k, i); break;
        case 1: snprintf(line, sizeof(line), "SET k%d v%d PX %d", k, i, ms); break;
        case 2: snprintf(line, sizeof(line), "INCR n%d", k % 3); break;
        case 3: snprintf(line, sizeof(line), "APPEND k%d x", k); break;
        case 4: snprintf(line, sizeof(line), "DEL k%d k%d", k, k + 1); break;
        case 5: snprintf(line, sizeof(line), "GETDEL k%d", k); break;
        case 6: snprintf(line, sizeof(line), "PEXPIRE k%d %d", k, ms); break;
        case 7: snprintf(line, sizeof(line), "MGET k%d k%d n0", k, k + 1); break;
        case 8: snprintf(line, sizeof(line), "TTL k%d", k); break;
        case 9: snprintf(line, sizeof(line), "SET k%d w IFEQ v%d", k, i - 1); break;
        case 10: snprintf(line, sizeof(line), "GETEX k%d PX 5000", k); break;
        case 11: snprintf(line, sizeof(line), "%s", t_rand(&s) % 8 ? "DBSIZE" : "FLUSHDB"); break;
        case 12: snprintf(line, sizeof(line), "MSET a%d 1 b%d 2", k, k); break;
        default: snprintf(line, sizeof(line), "SELECT %d", k); break;
        }
        int db = (int)(t_rand(&s) % 3);
        uint64_t client = t_rand(&s) % 7, sq = 0;
        if (client != 0) {
            uint64_t how = t_rand(&s) % 10;
            if (how == 0 && seq[client] > 0)
                sq = seq[client]; /* a retry */
            else if (how == 1 && seq[client] > 1)
                sq = seq[client] - 1; /* a stale copy */
            else
                sq = ++seq[client];
        }
        t_encode(&e->payload, db, 2 + (int)(t_rand(&s) % 2), client, sq, now_ms, line);
    }
}

static void t_log_free(struct t_log *log)
{
    for (int i = 0; i < log->n; i++)
        tbuf_free(&log->e[i].payload);
    log->n = 0;
}

/* The settings every replica of the workload shares: small enough that
 * sessions expire and hit the cap. */
static void t_replica_init(struct fsm *f, uint64_t seed)
{
    fsm_init(f, seed);
    f->session_ttl_ms = 2000;
    f->sessions_max = 4;
}

/* Apply entries [from, to) of log; append every reply to replies. */
static void t_feed(struct fsm *f, const struct t_log *log, int from, int to,
                   struct tbuf *replies)
{
    for (int i = from; i < to; i++) {
        const struct t_entry *e = &log->e[i];
        TRIAD_ASSERT(f->applied_index == (uint64_t)i);
        if (e->noop)
            fsm_apply_noop(f, (uint64_t)i + 1);
        else
            (void)fsm_apply(f, (uint64_t)i + 1, e->payload.data, e->payload.len, replies);
        tbuf_appendc(replies, '|');
    }
}

/* ---- snapshots ---- */

TEST(snapshot_restore_then_the_same_entries_gives_identical_bytes)
{
    struct t_log *log = tmalloc(sizeof(*log));
    t_workload(log, 1000, 7);
    struct fsm a;
    t_replica_init(&a, T_SEED);
    struct tbuf ra = {0}, snap = {0}, sa = {0}, sb = {0};
    int points[] = {0, 1, 137, 500, 999, 1000};
    int done = 0;
    for (size_t p = 0; p < TRIAD_ARRAY_LEN(points); p++) {
        int k = points[p];
        t_feed(&a, log, done, k, &ra);
        done = k;
        t_snapshot(&a, &snap);

        /* a replica with another seed (another hash layout) and some state
         * of its own, which the restore replaces */
        struct fsm b;
        t_replica_init(&b, 1000 + (uint64_t)k);
        EXPECT_APPLY(&b, 77, 1, 5, "SET junk x", "+OK\r\n");
        char err[256];
        CHECK_EQ_INT(fsm_restore(&b, snap.data, snap.len, err, sizeof(err)), 0);
        CHECK(b.applied_index == (uint64_t)k);
        CHECK(b.clock_ms == a.clock_ms);
        CHECK_EQ_INT(fsm_session_count(&b), fsm_session_count(&a));
        CHECK(fsm_digest(&b) == fsm_digest(&a));
        t_snapshot(&b, &sb);
        CHECK(t_same_bytes(&sb, &snap));

        /* both go on to the end of the log with the same replies */
        struct fsm a2;
        t_replica_init(&a2, T_SEED);
        CHECK_EQ_INT(fsm_restore(&a2, snap.data, snap.len, err, sizeof(err)), 0);
        struct tbuf r1 = {0}, r2 = {0};
        t_feed(&a2, log, k, log->n, &r1);
        t_feed(&b, log, k, log->n, &r2);
        CHECK(t_same_bytes(&r1, &r2));
        t_snapshot(&a2, &sa);
        t_snapshot(&b, &sb);
        CHECK(t_same_bytes(&sa, &sb));
        CHECK(fsm_digest(&a2) == fsm_digest(&b));
        tbuf_free(&r1);
        tbuf_free(&r2);
        fsm_free(&a2);
        fsm_free(&b);
    }
    /* and the original, fed straight through, ends in the same bytes */
    t_snapshot(&a, &snap);
    CHECK(t_same_bytes(&snap, &sa));
    CHECK(a.applied_index == 1000);
    CHECK(fsm_session_count(&a) > 0);
    tbuf_free(&ra);
    tbuf_free(&snap);
    tbuf_free(&sa);
    tbuf_free(&sb);
    fsm_free(&a);
    t_log_free(log);
    tfree(log);
}

/* A replica with keys in two dbs, deadlines and sessions. */
static void t_some_state(struct fsm *f)
{
    t_replica_init(f, T_SEED);
    EXPECT_APPLY(f, 1, 1, 1000, "SET a 1", "+OK\r\n");
    EXPECT_APPLY(f, 2, 1, 1001, "SET b 2 PX 5000", "+OK\r\n");
    t_apply_full(f, 5, 3, 0, 0, 1002, "SET c 3");
    EXPECT_APPLY(f, 1, 2, 1003, "INCR n", ":1\r\n");
}

static void t_expect_restore_fails(struct fsm *f, const void *blob, size_t len,
                                   const char *why, int line)
{
    struct tbuf before = {0}, after = {0};
    t_snapshot(f, &before);
    uint64_t digest = fsm_digest(f), index = f->applied_index, clock = f->clock_ms;
    char err[256] = "";
    int rc = fsm_restore(f, blob, len, err, sizeof(err));
    t_snapshot(f, &after);
    bool ok = rc == TRIAD_ECORRUPT && err[0] != '\0' && (why == NULL || strstr(err, why)) &&
              t_same_bytes(&before, &after) && fsm_digest(f) == digest &&
              f->applied_index == index && f->clock_ms == clock;
    if (!ok) {
        fprintf(stderr, "  (line %d, len %zu: rc %d, message \"%s\", wanted \"%s\")\n", line,
                len, rc, err, why ? why : "");
        CHECK(ok);
    }
    tbuf_free(&before);
    tbuf_free(&after);
}

TEST(restore_of_a_truncated_or_bit_flipped_blob_fails_and_keeps_the_state)
{
    struct fsm src, dst;
    t_some_state(&src);
    struct tbuf snap = {0};
    t_snapshot(&src, &snap);
    t_replica_init(&dst, 99);
    EXPECT_APPLY(&dst, 0, 0, 50, "SET mine yes", "+OK\r\n");
    EXPECT_APPLY(&dst, 8, 1, 60, "INCR z", ":1\r\n");

    for (size_t n = 0; n < snap.len; n++)
        t_expect_restore_fails(&dst, snap.data, n, NULL, __LINE__);
    char *copy = tmalloc(snap.len + 1);
    for (size_t i = 0; i < snap.len; i++) {
        memcpy(copy, snap.data, snap.len);
        copy[i] ^= (char)(1u << (i % 8));
        t_expect_restore_fails(&dst, copy, snap.len, "checksum", __LINE__);
    }
    memcpy(copy, snap.data, snap.len);
    copy[snap.len] = 0;
    t_expect_restore_fails(&dst, copy, snap.len + 1, "checksum", __LINE__);
    tfree(copy);

    /* still whole: it answers as before, and the good blob restores */
    EXPECT_READ(&dst, "GET mine", "$3\r\nyes\r\n");
    EXPECT_APPLY(&dst, 8, 1, 70, "INCR z", ":1\r\n");
    char err[256];
    CHECK_EQ_INT(fsm_restore(&dst, snap.data, snap.len, err, sizeof(err)), 0);
    CHECK(fsm_digest(&dst) == fsm_digest(&src));
    EXPECT_READ(&dst, "GET mine", "$-1\r\n");
    EXPECT_READ(&dst, "GET a", "$1\r\n1\r\n");
    tbuf_free(&snap);
    fsm_free(&src);
    fsm_free(&dst);
}

/* ---- a snapshot built by hand, for checks the checksum cannot make ---- */

/* magic, version, applied_index, clock_ms, ndb, then db 0's count */
#define T_SNAP_DB1_COUNT_OFF (8 + 4 + 8 + 8 + 4 + 8)

struct t_key {
    const char *key, *val;
    int64_t expire_ms;
};

struct t_sess {
    uint64_t client_id, seq, touch_ms;
    const char *reply;
};

static void t_blob(struct tbuf *b, uint32_t version, uint64_t clock_ms, uint32_t ndb,
                   const struct t_key *keys, int nkeys, const struct t_sess *sess, int nsess,
                   const char *extra)
{
    tbuf_reset(b);
    tbuf_append(b, "TRIADFSM", 8);
    tbuf_append_u32le(b, version);
    tbuf_append_u64le(b, 42); /* applied_index */
    tbuf_append_u64le(b, clock_ms);
    tbuf_append_u32le(b, ndb);
    for (uint32_t db = 0; db < ndb; db++) {
        tbuf_append_u64le(b, db == 1 ? (uint64_t)nkeys : 0);
        for (int i = 0; db == 1 && i < nkeys; i++) {
            tbuf_append_u32le(b, (uint32_t)strlen(keys[i].key));
            tbuf_appends(b, keys[i].key);
            tbuf_append_u64le(b, strlen(keys[i].val));
            tbuf_appends(b, keys[i].val);
            tbuf_append_u64le(b, (uint64_t)keys[i].expire_ms);
        }
    }
    tbuf_append_u64le(b, (uint64_t)nsess);
    for (int i = 0; i < nsess; i++) {
        tbuf_append_u64le(b, sess[i].client_id);
        tbuf_append_u64le(b, sess[i].seq);
        tbuf_append_u64le(b, sess[i].touch_ms);
        tbuf_append_u64le(b, strlen(sess[i].reply));
        tbuf_appends(b, sess[i].reply);
    }
    if (extra)
        tbuf_appends(b, extra);
    tbuf_append_u32le(b, crc32c(0, b->data, b->len));
}

TEST(restore_checks_every_field_behind_a_valid_checksum)
{
    struct fsm f;
    t_some_state(&f);
    struct tbuf b = {0};
    const struct t_key keys[] = {{"a", "1", KV_NO_EXPIRE}, {"ab", "2", 9000}, {"b", "", 5001}};
    const struct t_sess sess[] = {{7, 3, 4000, "+OK\r\n"}, {8, 1, 5000, ":1\r\n"}};
    char err[256];

    /* the builder's blob is good, and restores what it says */
    struct fsm g;
    t_replica_init(&g, 5);
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, sess, 2, NULL);
    CHECK_EQ_INT(fsm_restore(&g, b.data, b.len, err, sizeof(err)), 0);
    CHECK(g.applied_index == 42);
    CHECK(g.clock_ms == 5000);
    t_read(&g, 1, 2, "PTTL ab");
    CHECK_MEM_STR(t_reply.data, t_reply.len, ":4000\r\n");
    t_apply_full(&g, 0, 2, 7, 3, 5000, "INCR x");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "+OK\r\n");
    struct tbuf again = {0};
    t_snapshot(&g, &again);
    /* written back as version 2: the same plus an empty member table */
    CHECK_EQ_INT(again.len, b.len + 4);
    CHECK_EQ_INT(tbuf_read_u32le((const unsigned char *)again.data + 8), 2);
    fsm_free(&g);
    tbuf_free(&again);

    t_blob(&b, 3, 5000, FSM_DATABASES, keys, 3, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "version 3", __LINE__);
    t_blob(&b, 2, 5000, FSM_DATABASES, keys, 3, sess, 2, NULL); /* no member table */
    t_expect_restore_fails(&f, b.data, b.len, "member count", __LINE__);
    t_blob(&b, 1, 5000, FSM_DATABASES - 1, keys, 3, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "databases", __LINE__);
    t_blob(&b, 1, (uint64_t)INT64_MAX + 1, FSM_DATABASES, keys, 3, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "clock", __LINE__);
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, sess, 2, "x");
    t_expect_restore_fails(&f, b.data, b.len, "after its sessions", __LINE__);
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, sess, 2, NULL);
    b.data[0] = 'X';
    tbuf_write_u32le(b.data + b.len - 4, crc32c(0, b.data, b.len - 4));
    t_expect_restore_fails(&f, b.data, b.len, "magic", __LINE__);

    const struct t_key unsorted[] = {{"b", "1", KV_NO_EXPIRE}, {"a", "2", KV_NO_EXPIRE}};
    t_blob(&b, 1, 5000, FSM_DATABASES, unsorted, 2, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "out of order or repeated", __LINE__);
    const struct t_key twice[] = {{"a", "1", KV_NO_EXPIRE}, {"a", "2", KV_NO_EXPIRE}};
    t_blob(&b, 1, 5000, FSM_DATABASES, twice, 2, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "out of order or repeated", __LINE__);
    const struct t_key dead[] = {{"a", "1", 5000}};
    t_blob(&b, 1, 5000, FSM_DATABASES, dead, 1, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "not after the clock", __LINE__);
    const struct t_key keep_ttl[] = {{"a", "1", KV_KEEP_TTL}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keep_ttl, 1, sess, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "not after the clock", __LINE__);

    const struct t_sess no_client[] = {{0, 1, 10, ""}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, no_client, 1, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "session 0", __LINE__);
    const struct t_sess no_seq[] = {{3, 0, 10, ""}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, no_seq, 1, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "sequence 0", __LINE__);
    const struct t_sess dup[] = {{3, 1, 10, ""}, {3, 2, 20, ""}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, dup, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "appears twice", __LINE__);
    const struct t_sess future[] = {{3, 1, 5001, ""}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, future, 1, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "touch time", __LINE__);
    const struct t_sess backwards[] = {{3, 1, 20, ""}, {4, 1, 10, ""}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, backwards, 2, NULL);
    t_expect_restore_fails(&f, b.data, b.len, "touch time", __LINE__);
    const struct t_sess many[] = {{1, 1, 1, ""}, {2, 1, 2, ""}, {3, 1, 3, ""}, {4, 1, 4, ""},
                                  {5, 1, 5, ""}};
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, many, 5, NULL); /* this replica's cap is 4 */
    t_expect_restore_fails(&f, b.data, b.len, "limit of 4", __LINE__);

    /* counts larger than the bytes left */
    t_blob(&b, 1, 5000, FSM_DATABASES, keys, 3, sess, 2, NULL);
    tbuf_write_u64le(b.data + T_SNAP_DB1_COUNT_OFF, UINT64_MAX);
    tbuf_write_u32le(b.data + b.len - 4, crc32c(0, b.data, b.len - 4));
    t_expect_restore_fails(&f, b.data, b.len, "do not fit", __LINE__);
    tbuf_free(&b);
    fsm_free(&f);
}

/* ---- digests and agreement ---- */

TEST(replicas_fed_the_same_entries_agree_whatever_their_seed_and_reads)
{
    struct t_log *log = tmalloc(sizeof(*log));
    t_workload(log, 1000, 12345);
    struct fsm a, b, c;
    t_replica_init(&a, 1);
    t_replica_init(&b, 2);
    t_replica_init(&c, 3);
    struct tbuf ra = {0}, rb = {0}, rc = {0}, sa = {0}, sb = {0};
    for (int i = 0; i < log->n; i++) {
        t_feed(&a, log, i, i + 1, &ra);
        t_feed(&b, log, i, i + 1, &rb);
        /* c serves reads between entries, as a follower would */
        t_read(&c, i % 3, 2, "MGET k1 k2 k3 n0");
        t_read(&c, i % 3, 2, "DBSIZE");
        t_read(&c, i % 3, 2, "KEYS *");
        t_feed(&c, log, i, i + 1, &rc);
        if (i % 100 == 99) {
            CHECK(fsm_digest(&a) == fsm_digest(&b));
            CHECK(fsm_digest(&a) == fsm_digest(&c));
        }
    }
    CHECK(t_same_bytes(&ra, &rb));
    CHECK(t_same_bytes(&ra, &rc));
    t_snapshot(&a, &sa);
    t_snapshot(&c, &sb);
    CHECK(t_same_bytes(&sa, &sb));
    /* the workload did what it is for */
    CHECK(strstr(ra.data, "stale request") != NULL);
    CHECK(strstr(ra.data, "malformed entry") != NULL);
    CHECK(strstr(ra.data, "cannot run through") != NULL);
    tbuf_free(&ra);
    tbuf_free(&rb);
    tbuf_free(&rc);
    tbuf_free(&sa);
    tbuf_free(&sb);
    fsm_free(&a);
    fsm_free(&b);
    fsm_free(&c);
    t_log_free(log);
    tfree(log);
}

TEST(digest_depends_on_the_state_and_not_on_the_order_it_was_built_in)
{
    struct fsm a, b;
    fsm_init(&a, 1);
    fsm_init(&b, 2);
    EXPECT_APPLY(&a, 0, 0, 100, "SET x 1", "+OK\r\n");
    EXPECT_APPLY(&a, 0, 0, 100, "SET y 2", "+OK\r\n");
    EXPECT_APPLY(&b, 0, 0, 100, "SET y 2", "+OK\r\n");
    EXPECT_APPLY(&b, 0, 0, 100, "SET x 1", "+OK\r\n");
    CHECK(fsm_digest(&a) == fsm_digest(&b));
    struct tbuf sa = {0}, sb = {0};
    t_snapshot(&a, &sa);
    t_snapshot(&b, &sb);
    CHECK(t_same_bytes(&sa, &sb));

    uint64_t d = fsm_digest(&a);
    EXPECT_APPLY(&b, 0, 0, 100, "SET x 2", "+OK\r\n");
    CHECK(fsm_digest(&b) != d); /* a value */
    EXPECT_APPLY(&b, 0, 0, 100, "SET x 1", "+OK\r\n");
    CHECK(fsm_digest(&b) == d);
    EXPECT_APPLY(&b, 0, 0, 100, "PEXPIRE x 10000", ":1\r\n");
    CHECK(fsm_digest(&b) != d); /* a deadline */
    EXPECT_APPLY(&b, 0, 0, 100, "PERSIST x", ":1\r\n");
    CHECK(fsm_digest(&b) == d);
    t_apply_full(&b, 1, 2, 0, 0, 100, "SET x 1");
    CHECK(fsm_digest(&b) != d); /* a db */
    t_apply_full(&b, 1, 2, 0, 0, 100, "DEL x");
    CHECK(fsm_digest(&b) == d);
    EXPECT_APPLY(&b, 3, 1, 100, "GET x", "$1\r\n1\r\n");
    CHECK(fsm_digest(&b) != d); /* a session */
    uint64_t with_session = fsm_digest(&b);
    EXPECT_APPLY(&b, 3, 1, 101, "GET x", "$1\r\n1\r\n");
    CHECK(fsm_digest(&b) != with_session); /* a touch (and the clock) */
    tbuf_free(&sa);
    tbuf_free(&sb);
    fsm_free(&a);
    fsm_free(&b);
}

/* A version 2 blob whose member table is `members` (raw bytes after the count). */
static void t_blob_members(struct tbuf *b, uint32_t n, const void *members, size_t len)
{
    const struct t_sess sess[] = {{7, 3, 4000, "+OK\r\n"}};
    t_blob(b, 2, 5000, FSM_DATABASES, NULL, 0, sess, 1, NULL);
    b->len -= 4; /* the checksum: the table goes before it */
    tbuf_append_u32le(b, n);
    tbuf_append(b, members, len);
    tbuf_append_u32le(b, crc32c(0, b->data, b->len));
}

TEST(member_addresses_apply_snapshot_and_digest_like_any_state)
{
    struct fsm a, c;
    t_replica_init(&a, 1);
    t_replica_init(&c, 2);
    struct tbuf e = {0};
    CHECK_EQ_INT(fsm_encode_member(1000, 4, "127.0.0.1", 7394, true, &e), 0);
    uint64_t d0 = fsm_digest(&a), v0 = a.members_version;
    tbuf_reset(&t_reply);
    CHECK_EQ_INT(fsm_apply(&a, 1, e.data, e.len, &t_reply), 0);
    CHECK_MEM_STR(t_reply.data, t_reply.len, "+OK\r\n");
    CHECK(a.members_version > v0);
    CHECK(fsm_digest(&a) != d0);
    const struct fsm_member *m = fsm_member(&a, 4);
    CHECK(m != NULL && m->port == 7394 && m->voter && strcmp(m->host, "127.0.0.1") == 0);
    CHECK(fsm_member(&a, 5) == NULL);
    /* replaced, and kept sorted */
    tbuf_reset(&e);
    CHECK_EQ_INT(fsm_encode_member(1001, 2, "::1", 9, false, &e), 0);
    tbuf_reset(&t_reply);
    CHECK_EQ_INT(fsm_apply(&a, 2, e.data, e.len, &t_reply), 0);
    tbuf_reset(&e);
    CHECK_EQ_INT(fsm_encode_member(1002, 4, "10.0.0.4", 7400, false, &e), 0);
    tbuf_reset(&t_reply);
    CHECK_EQ_INT(fsm_apply(&a, 3, e.data, e.len, &t_reply), 0);
    CHECK_EQ_INT(a.n_members, 2);
    CHECK_EQ_INT(a.members[0].id, 2);
    CHECK(strcmp(fsm_member(&a, 4)->host, "10.0.0.4") == 0 && !fsm_member(&a, 4)->voter);
    /* through a snapshot to another replica: same table, same digest */
    struct tbuf snap = {0};
    t_snapshot(&a, &snap);
    char err[256];
    CHECK_EQ_INT(fsm_restore(&c, snap.data, snap.len, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n_members, 2);
    CHECK(fsm_digest(&c) == fsm_digest(&a));
    CHECK(fsm_member(&c, 2)->port == 9 && strcmp(fsm_member(&c, 2)->host, "::1") == 0);
    /* no bad address gets into an entry */
    tbuf_reset(&e);
    CHECK_EQ_INT(fsm_encode_member(1, 0, "h", 1, true, &e), TRIAD_EINVAL);
    CHECK_EQ_INT(fsm_encode_member(1, 1, "", 1, true, &e), TRIAD_EINVAL);
    CHECK_EQ_INT(fsm_encode_member(1, 1, "h", 0, true, &e), TRIAD_EINVAL);
    /* a client's command of that name cannot set one: it has a session or
     * the wrong shape, and is just an unknown command */
    t_apply_full(&c, 0, 2, 9, 1, 2000, "TRIAD.MEMBER 7 h 1 voter");
    CHECK(t_reply.len > 0 && t_reply.data[0] == '-');
    t_apply_full(&c, 0, 2, 0, 0, 2001, "TRIAD.MEMBER 7 h 0 voter");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "-ERR TRIAD malformed member address\r\n");
    t_apply_full(&c, 0, 2, 0, 0, 2002, "TRIAD.MEMBER 7 h 1 boss");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "-ERR TRIAD malformed member address\r\n");
    CHECK(fsm_member(&c, 7) == NULL);
    tbuf_free(&snap);
    tbuf_free(&e);
    fsm_free(&a);
    fsm_free(&c);
}

TEST(restore_checks_the_member_table)
{
    struct fsm f;
    t_some_state(&f);
    struct fsm g;
    t_replica_init(&g, 5);
    struct tbuf b = {0}, m = {0};
    char err[256];
#define T_MEMBER(id, port, voter, host)                                                    \
    do {                                                                                   \
        tbuf_append_u32le(&m, (id));                                                       \
        tbuf_append_u32le(&m, (port));                                                     \
        tbuf_appendc(&m, (char)(voter));                                                   \
        tbuf_appendc(&m, (char)strlen(host));                                              \
        tbuf_appends(&m, (host));                                                          \
    } while (0)
    T_MEMBER(3, 7000, 1, "h3");
    T_MEMBER(9, 7001, 0, "h9");
    t_blob_members(&b, 2, m.data, m.len);
    CHECK_EQ_INT(fsm_restore(&g, b.data, b.len, err, sizeof(err)), 0);
    CHECK_EQ_INT(g.n_members, 2);
    CHECK(fsm_member(&g, 9) != NULL && !fsm_member(&g, 9)->voter);

    const struct {
        uint32_t id, port;
        int voter;
        const char *host;
    } bad[] = {{0, 1, 0, "h"}, {3, 0, 0, "h"}, {3, 70000, 0, "h"}, {3, 1, 2, "h"},
               {3, 1, 0, ""},  {3, 1, 0, "a b"}, {2, 1, 0, "h"}};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(bad); i++) {
        tbuf_reset(&m);
        T_MEMBER(3, 7000, 1, "h3");
        if (bad[i].id == 2) /* out of order */
            T_MEMBER(2, 1, 0, "h");
        else
            T_MEMBER(bad[i].id == 3 ? 4 : bad[i].id, bad[i].port, bad[i].voter, bad[i].host);
        t_blob_members(&b, 2, m.data, m.len);
        t_expect_restore_fails(&f, b.data, b.len, "member 1", __LINE__);
    }
    tbuf_reset(&m);
    T_MEMBER(3, 7000, 1, "h3");
    t_blob_members(&b, 2, m.data, m.len);
    t_expect_restore_fails(&f, b.data, b.len, "truncated in member 1", __LINE__);
    t_blob_members(&b, FSM_MEMBERS_MAX + 1, m.data, m.len);
    t_expect_restore_fails(&f, b.data, b.len, "exceed the limit", __LINE__);
    tbuf_reset(&m);
    T_MEMBER(3, 7000, 1, "h3");
    tbuf_appendc(&m, 'x');
    t_blob_members(&b, 1, m.data, m.len);
    t_expect_restore_fails(&f, b.data, b.len, "after its members", __LINE__);
#undef T_MEMBER
    tbuf_free(&b);
    tbuf_free(&m);
    fsm_free(&f);
    fsm_free(&g);
}

/* Apply TRIAD.TXN with the given words (after the name); reply in t_reply. */
static const char *t_txn(struct fsm *f, int proto, uint64_t now, const char *words)
{
    char line[512];
    snprintf(line, sizeof(line), "TRIAD.TXN %s", words);
    return t_apply_full(f, 0, proto, 0, 0, now, line);
}

static uint64_t t_digest_of(struct fsm *f, const char *key)
{
    return fsm_key_digest(f, 0, key, strlen(key));
}

TEST(txn_runs_its_commands_atomically_and_answers_execs_array)
{
    struct fsm f, g;
    t_replica_init(&f, 1);
    t_replica_init(&g, 2);
    EXPECT_APPLY(&f, 0, 0, 100, "SET a 1", "+OK\r\n");
    t_txn(&f, 2, 101, "0 3 SET b 2 2 INCR a 3 MGET a b");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*3\r\n+OK\r\n:2\r\n*2\r\n$1\r\n2\r\n$1\r\n2\r\n");
    /* a failing command fails alone, inside the array, as in Redis */
    t_txn(&f, 2, 102, "0 2 INCR b 2 INCR nope");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*2\r\n:3\r\n:1\r\n");
    t_txn(&f, 3, 103, "0 3 APPEND b x 3 SET a y");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*2\r\n:2\r\n+OK\r\n");
    t_txn(&f, 2, 104, "0");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*0\r\n");
    /* a wrong arity in the queue aborts all of it, as cmd's EXEC does */
    t_txn(&f, 2, 105, "0 2 SET c 1 GET");
    CHECK(t_starts_with(t_reply.data, "-EXECABORT"));
    EXPECT_READ(&f, "GET c", "$-1\r\n");
    /* a command that cannot run through the log: refused, nothing runs */
    t_txn(&f, 2, 106, "0 3 SET c 1 2 KEYS * ");
    CHECK_MEM_STR(t_reply.data, t_reply.len,
                  "-EXECABORT Transaction discarded: 'KEYS' cannot run in a leader-mode "
                  "transaction\r\n");
    t_txn(&f, 2, 107, "0 1 PING");
    CHECK(t_starts_with(t_reply.data, "-EXECABORT Transaction discarded: 'PING'"));
    EXPECT_READ(&f, "GET c", "$-1\r\n");
    /* malformed bodies change nothing */
    t_txn(&f, 2, 108, "1 0 a");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "-ERR TRIAD malformed transaction\r\n");
    t_txn(&f, 2, 109, "0 5 SET a b");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "-ERR TRIAD malformed transaction\r\n");
    t_txn(&f, 2, 110, "x");
    CHECK_MEM_STR(t_reply.data, t_reply.len, "-ERR TRIAD malformed transaction\r\n");
    /* replicas agree */
    struct tbuf snap = {0};
    t_snapshot(&f, &snap);
    char err[256];
    CHECK_EQ_INT(fsm_restore(&g, snap.data, snap.len, err, sizeof(err)), 0);
    CHECK(fsm_digest(&g) == fsm_digest(&f));
    tbuf_free(&snap);
    fsm_free(&f);
    fsm_free(&g);
}

TEST(txn_is_refused_when_a_watched_key_changed)
{
    struct fsm f;
    t_replica_init(&f, 1);
    EXPECT_APPLY(&f, 0, 0, 100, "SET w 1", "+OK\r\n");
    uint64_t d = t_digest_of(&f, "w");
    CHECK(d != 0);
    CHECK_EQ_INT(t_digest_of(&f, "missing"), 0);
    /* TRIAD.DIGEST: WATCH's read */
    t_read(&f, 0, 2, "TRIAD.DIGEST w missing");
    char want[96];
    snprintf(want, sizeof(want), "*2\r\n:%lld\r\n:0\r\n", (long long)d);
    CHECK_MEM_STR(t_reply.data, t_reply.len, want);

    char words[160];
    snprintf(words, sizeof(words), "2 0 w %llu 0 missing 0 2 INCR w", (unsigned long long)d);
    t_txn(&f, 2, 101, words);
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*1\r\n:2\r\n");
    /* now w is 2: the same watch fails, in either protocol */
    t_txn(&f, 2, 102, words);
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*-1\r\n");
    t_txn(&f, 3, 103, words);
    CHECK_MEM_STR(t_reply.data, t_reply.len, "_\r\n");
    EXPECT_READ(&f, "GET w", "$1\r\n2\r\n");
    /* a deadline is part of what is watched */
    d = t_digest_of(&f, "w");
    EXPECT_APPLY(&f, 0, 0, 104, "PEXPIRE w 100000", ":1\r\n");
    CHECK(t_digest_of(&f, "w") != d);
    /* and a key that expires is gone */
    d = t_digest_of(&f, "w");
    EXPECT_APPLY(&f, 0, 0, 200000, "SET other 1", "+OK\r\n");
    CHECK_EQ_INT(t_digest_of(&f, "w"), 0);
    snprintf(words, sizeof(words), "1 0 w %llu 3 SET w 9", (unsigned long long)d);
    t_txn(&f, 2, 200001, words);
    CHECK_MEM_STR(t_reply.data, t_reply.len, "*-1\r\n");
    fsm_free(&f);
}

int main(void)
{
    RUN(command_round_trips_through_encode_and_decode);
    RUN(encode_refuses_out_of_range_fields_and_leaves_out_unchanged);
    RUN(entries_at_the_argc_and_size_limits_round_trip_and_one_past_is_refused);
    RUN(decode_rejects_every_malformed_field);
    RUN(apply_runs_string_commands_with_redis_replies);
    RUN(apply_set_ifeq_writes_only_over_an_equal_value);
    RUN(retried_seq_gets_the_first_reply_and_is_not_applied_again);
    RUN(older_seq_is_refused_as_stale_and_changes_nothing);
    RUN(sessions_expire_after_the_ttl_of_logical_time);
    RUN(sessions_past_the_cap_evict_the_least_recently_touched);
    RUN(expired_sessions_are_freed_a_bounded_number_per_apply_and_never_used);
    RUN(clock_never_goes_back_and_an_expired_key_is_not_revived);
    RUN(a_clock_tick_expires_keys_without_running_a_command);
    RUN(log_refuses_connection_and_server_commands_with_err);
    RUN(malformed_entry_replies_err_advances_the_index_and_changes_nothing);
    RUN(noop_entries_advance_only_the_applied_index);
    RUN(read_answers_at_the_logical_clock_and_refuses_writes);
    RUN(snapshot_restore_then_the_same_entries_gives_identical_bytes);
    RUN(restore_of_a_truncated_or_bit_flipped_blob_fails_and_keeps_the_state);
    RUN(restore_checks_every_field_behind_a_valid_checksum);
    RUN(member_addresses_apply_snapshot_and_digest_like_any_state);
    RUN(restore_checks_the_member_table);
    RUN(txn_runs_its_commands_atomically_and_answers_execs_array);
    RUN(txn_is_refused_when_a_watched_key_changed);
    RUN(replicas_fed_the_same_entries_agree_whatever_their_seed_and_reads);
    RUN(digest_depends_on_the_state_and_not_on_the_order_it_was_built_in);
    tbuf_free(&t_reply);
    return test_summary("fsm");
}
