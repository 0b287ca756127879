/* test_resp.c - the RESP parser and reply writer.
 *
 * Every frame is fed whole, split at every byte (first part, then the rest)
 * and byte by byte, through a harness that behaves like the session layer:
 * it keeps a query buffer, drops what the parser consumed and presents the
 * rest again with the next bytes. Expected error texts and inline splitting
 * were checked against redis-server 7.0.15.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/net/resp.h"
#include "test.h"

#define S(lit) lit, sizeof(lit) - 1

/* What a stream parses into: each command re-encoded as a RESP multibulk,
 * "ERR <errmsg>" for a protocol error (parsing stops there), and "PARTIAL"
 * when bytes of an unfinished frame remain. */
struct outcome {
    struct tbuf text;
    int commands;
};

static void record_command(struct resp_parser *p, struct outcome *o)
{
    resp_add_array_len(&o->text, p->argc);
    for (int i = 0; i < p->argc; i++) {
        /* argv[i] must be a C string of argvlen[i] bytes */
        CHECK(p->argv[i][p->argvlen[i]] == '\0');
        resp_add_bulk(&o->text, p->argv[i], p->argvlen[i]);
    }
    o->commands++;
}

/* Parser settings for a stream; NULL stands for resp_parser_init's. */
struct parse_opts {
    long long max_bulk; /* 0: the default proto_max_bulk_len */
    bool auth_required;
};

static const struct parse_opts unauth = {0, true};

/* Feed in[0..n) as a first chunk of `first` bytes, then chunks of `step`. */
static void parse_chunked(const char *in, size_t n, size_t first, size_t step,
                          const struct parse_opts *opts, struct outcome *o)
{
    struct resp_parser p;
    struct tbuf q = {0};
    size_t off = 0;
    bool failed = false, first_chunk = true;

    resp_parser_init(&p);
    if (opts != NULL && opts->max_bulk > 0)
        p.proto_max_bulk_len = opts->max_bulk;
    if (opts != NULL)
        p.auth_required = opts->auth_required;
    memset(o, 0, sizeof(*o));
    while (!failed && off < n) {
        size_t c = first_chunk ? first : step;
        first_chunk = false;
        if (c > n - off)
            c = n - off;
        tbuf_append(&q, in + off, c);
        off += c;
        for (;;) {
            size_t consumed = 12345;
            int rc = resp_parse(&p, q.data, q.len, &consumed);
            CHECK(consumed <= q.len);
            if (rc == TRIAD_EPROTO) {
                tbuf_appendf(&o->text, "ERR %s", p.errmsg);
                failed = true;
                break;
            }
            tbuf_consume(&q, consumed);
            if (rc == TRIAD_EAGAIN)
                break;
            CHECK_EQ_INT(rc, 0);
            record_command(&p, o);
        }
    }
    if (!failed && (q.len > 0 || p.state != RESP_ST_START))
        tbuf_appends(&o->text, "PARTIAL");
    tbuf_free(&q);
    resp_parser_free(&p);
}

static bool outcome_is(const struct outcome *o, const char *expect, size_t elen)
{
    return o->text.len == elen && (elen == 0 || memcmp(o->text.data, expect, elen) == 0);
}

/* in[0..n) parses to expect[0..elen) whole, at every split point and byte by
 * byte */
static void check_stream_n(const char *in, size_t n, const char *expect, size_t elen,
                           const struct parse_opts *opts)
{
    struct outcome o;
    bool reported = false;

    for (size_t k = 0; k <= n + 1; k++) {
        /* k == n + 1 stands for byte by byte */
        if (k <= n)
            parse_chunked(in, n, k, n, opts, &o);
        else
            parse_chunked(in, n, 1, 1, opts, &o);
        if (!outcome_is(&o, expect, elen)) {
            if (!reported)
                fprintf(stderr, "  %s: input \"%.*s\" split at %zu gives \"%.*s\"\n",
                        test__cur, (int)n, in, k, (int)o.text.len, o.text.data);
            reported = true;
            test__cur_failed = 1;
        }
        tbuf_free(&o.text);
    }
}

static void check_stream_opts(const char *in, size_t n, const char *expect,
                              const struct parse_opts *opts)
{
    check_stream_n(in, n, expect, strlen(expect), opts);
}

static void check_stream_lim(const char *in, size_t n, const char *expect, long long max_bulk)
{
    struct parse_opts opts = {max_bulk, false};
    check_stream_opts(in, n, expect, &opts);
}

static void check_stream(const char *in, size_t n, const char *expect)
{
    check_stream_opts(in, n, expect, NULL);
}

/* ---- multibulk ---- */

TEST(multibulk_with_several_args_parses_at_every_split)
{
    check_stream(S("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n"),
                 "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
}

TEST(multibulk_with_an_empty_bulk_parses_at_every_split)
{
    check_stream(S("*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n"),
                 "*3\r\n$3\r\nSET\r\n$0\r\n\r\n$0\r\n\r\n");
}

TEST(binary_bulk_with_crlf_and_nul_inside_parses_at_every_split)
{
    static const char in[] = "*2\r\n$4\r\nECHO\r\n$7\r\na\r\n\0b\r\n\r\n";
    static const char expect[] = "*2\r\n$4\r\nECHO\r\n$7\r\na\r\n\0b\r\n\r\n";
    check_stream_n(in, sizeof(in) - 1, expect, sizeof(expect) - 1, NULL);
}

TEST(binary_bulk_argument_is_nul_terminated_and_keeps_its_length)
{
    struct resp_parser p;
    size_t consumed;
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, S("*1\r\n$5\r\na\0b\r\n\r\n"), &consumed), 0);
    CHECK_EQ_INT(consumed, 15);
    CHECK_EQ_INT(p.argc, 1);
    CHECK_EQ_INT(p.argvlen[0], 5);
    CHECK(memcmp(p.argv[0], "a\0b\r\n", 6) == 0);
    resp_parser_free(&p);
}

TEST(zero_and_negative_multibulk_counts_give_an_empty_command)
{
    check_stream(S("*0\r\n"), "*0\r\n");
    check_stream(S("*-1\r\n"), "*0\r\n");
    check_stream(S("*-5\r\n*1\r\n$4\r\nPING\r\n"), "*0\r\n*1\r\n$4\r\nPING\r\n");
}

TEST(pipelined_commands_back_to_back_parse_at_every_split)
{
    check_stream(S("*1\r\n$4\r\nPING\r\nSET k v\r\n*0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                   "GET \"a b\"\n"),
                 "*1\r\n$4\r\nPING\r\n"
                 "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n"
                 "*0\r\n"
                 "*0\r\n"
                 "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                 "*2\r\n$3\r\nGET\r\n$3\r\na b\r\n");
}

TEST(an_unfinished_frame_waits_for_more_bytes)
{
    check_stream(S("*2\r\n$3\r\nGET\r\n$1\r\n"), "PARTIAL");
    check_stream(S("*1\r\n$4\r\nPING\r"), "PARTIAL");
    check_stream(S("*1\r"), "PARTIAL");
    check_stream(S("GET k"), "PARTIAL");
}

/* Redis skips the byte after a header's '\r' and the two bytes after a
 * payload without looking at them; clients that work with Redis must work
 * with us, so we do the same. */
TEST(bytes_after_header_cr_and_after_payload_are_skipped_like_redis)
{
    check_stream(S("*1\rX$4\r\nPINGXY*1\r\n$4\r\nPING\r\n"),
                 "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n");
}

TEST(resp_parse_reports_consumed_bytes_of_one_command_only)
{
    struct resp_parser p;
    size_t consumed;
    static const char in[] = "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n";
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, in, sizeof(in) - 1, &consumed), 0);
    CHECK_EQ_INT(consumed, 14);
    CHECK_EQ_INT(resp_parse(&p, in + 14, sizeof(in) - 1 - 14, &consumed), 0);
    CHECK_EQ_INT(consumed, 14);
    CHECK_EQ_INT(resp_parse(&p, in + 28, 0, &consumed), TRIAD_EAGAIN);
    CHECK_EQ_INT(consumed, 0);
    resp_parser_free(&p);
}

TEST(hint_says_how_many_bytes_a_partial_bulk_still_needs)
{
    struct resp_parser p;
    size_t consumed;
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse_hint(&p), 0);
    CHECK_EQ_INT(resp_parse(&p, S("*2\r\n$3\r\nSET\r\n$10\r\nabc"), &consumed), TRIAD_EAGAIN);
    /* header lines and the payload bytes present are all taken */
    CHECK_EQ_INT(consumed, 21);
    CHECK_EQ_INT(resp_parse_hint(&p), 7 + 2);
    CHECK_EQ_INT(resp_parse(&p, S("defghij\r"), &consumed), TRIAD_EAGAIN);
    CHECK_EQ_INT(consumed, 8);
    CHECK_EQ_INT(resp_parse_hint(&p), 1);
    CHECK_EQ_INT(resp_parse(&p, S("\n"), &consumed), 0);
    CHECK_EQ_INT(consumed, 1);
    CHECK_EQ_INT(p.argc, 2);
    CHECK_MEM_STR(p.argv[1], p.argvlen[1], "abcdefghij");
    CHECK_EQ_INT(resp_parse_hint(&p), 0);
    resp_parser_free(&p);
}

TEST(large_bulk_arriving_in_pieces_is_assembled_once)
{
    enum { BIG = 3 * 1024 * 1024 };
    struct resp_parser p;
    struct tbuf in = {0};
    size_t consumed, off = 0;
    int rc = TRIAD_EAGAIN;

    resp_parser_init(&p);
    tbuf_appendf(&in, "*2\r\n$3\r\nSET\r\n$%d\r\n", BIG);
    size_t hdr = in.len;
    tbuf_reserve(&in, BIG + 2);
    for (int i = 0; i < BIG; i++)
        in.data[in.len++] = (char)('a' + i % 26);
    tbuf_append(&in, "\r\n", 2);
    while (off < in.len) {
        size_t c = TRIAD_MIN((size_t)16384, in.len - off);
        rc = resp_parse(&p, in.data + off, c, &consumed);
        /* nothing stays in the caller's buffer but a header in progress */
        CHECK_EQ_INT(consumed, c);
        off += consumed;
        if (rc == TRIAD_EAGAIN && off > hdr)
            CHECK_EQ_INT(resp_parse_hint(&p), in.len - off);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(p.argc, 2);
    CHECK_EQ_INT(p.argvlen[1], BIG);
    CHECK(memcmp(p.argv[1], in.data + hdr, BIG) == 0);
    CHECK(p.argv[1][BIG] == '\0');

    /* the next, small command gives the big arena back */
    size_t used_big = tmem_used();
    CHECK_EQ_INT(resp_parse(&p, S("PING\r\n"), &consumed), 0);
    CHECK(tmem_used() + BIG / 2 < used_big);
    tbuf_free(&in);
    resp_parser_free(&p);
}

TEST(small_commands_reuse_parser_memory_without_allocating)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nGET \"key\"\r\n";
    struct resp_parser p;
    size_t consumed;
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, in, sizeof(in) - 1, &consumed), 0);
    CHECK_EQ_INT(resp_parse(&p, in + consumed, sizeof(in) - 1 - consumed, &consumed), 0);
    size_t used = tmem_used();
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ_INT(resp_parse(&p, in, sizeof(in) - 1, &consumed), 0);
        CHECK_EQ_INT(p.argc, 3);
        CHECK_EQ_INT(resp_parse(&p, in + consumed, sizeof(in) - 1 - consumed, &consumed), 0);
        CHECK_EQ_INT(p.argc, 2);
    }
    CHECK_EQ_INT(tmem_used(), used);
    resp_parser_free(&p);
}

TEST(reset_forgets_a_partial_command)
{
    struct resp_parser p;
    size_t consumed;
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, S("*2\r\n$3\r\nGET\r\n$5\r\nab"), &consumed), TRIAD_EAGAIN);
    resp_parser_reset(&p);
    CHECK_EQ_INT(resp_parse(&p, S("PING\r\n"), &consumed), 0);
    CHECK_EQ_INT(p.argc, 1);
    CHECK_MEM_STR(p.argv[0], p.argvlen[0], "PING");
    resp_parser_free(&p);
}

/* ---- inline ---- */

TEST(inline_with_quotes_and_escapes_parses_at_every_split)
{
    check_stream(S("SET \"a\\x41\\x4g\\n\" 'b\\'c' d\"e f\"\r\n"),
                 "*4\r\n$3\r\nSET\r\n$6\r\naAx4g\n\r\n$3\r\nb'c\r\n$4\r\nde f\r\n");
}

TEST(inline_double_quote_escapes_match_sdssplitargs)
{
    check_stream(S("ECHO \"\\xzz\\n\\r\\t\\b\\a\\q\\\"\\\\\\x4A\"\n"),
                 "*2\r\n$4\r\nECHO\r\n$12\r\nxzz\n\r\t\b\aq\"\\J\r\n");
}

TEST(inline_single_quotes_keep_backslashes_but_for_quote)
{
    check_stream(S("ECHO 'a\\nb' 'a\\\\b'\n"),
                 "*3\r\n$4\r\nECHO\r\n$4\r\na\\nb\r\n$4\r\na\\\\b\r\n");
    /* a backslash before the closing quote escapes it, as in Redis */
    check_stream(S("ECHO '\\\\' x\n"), "ERR Protocol error: unbalanced quotes in request");
}

TEST(inline_empty_quotes_give_empty_arguments)
{
    check_stream(S("ECHO \"\" ''\r\n"), "*3\r\n$4\r\nECHO\r\n$0\r\n\r\n$0\r\n\r\n");
}

TEST(inline_unquoted_backslash_is_literal)
{
    check_stream(S("ECHO \\x41\n"), "*2\r\n$4\r\nECHO\r\n$4\r\n\\x41\r\n");
}

TEST(inline_separators_are_spaces_tabs_and_cr)
{
    check_stream(S("  ECHO\t x \r\r\n"), "*2\r\n$4\r\nECHO\r\n$1\r\nx\r\n");
    check_stream(S("ECHO a\rb\n"), "*3\r\n$4\r\nECHO\r\n$1\r\na\r\n$1\r\nb\r\n");
    /* \v separates only before a word (isspace), not inside one */
    check_stream(S("ECHO a\vb\n"), "*2\r\n$4\r\nECHO\r\n$3\r\na\vb\r\n");
    check_stream(S("ECHO \"a\"\vx\n"), "*3\r\n$4\r\nECHO\r\n$1\r\na\r\n$1\r\nx\r\n");
}

TEST(empty_inline_lines_give_empty_commands)
{
    check_stream(S("\r\n\n   \r\n"), "*0\r\n*0\r\n*0\r\n");
}

TEST(inline_line_ends_at_a_nul_byte_like_sdssplitargs)
{
    check_stream(S("ECHO a\0b c\r\nPING\n"), "*2\r\n$4\r\nECHO\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n");
}

TEST(inline_unbalanced_quotes_are_a_protocol_error)
{
    static const char *const bad[] = {
        "ECHO \"abc\r\n", "ECHO \"ab\"c\r\n", "ECHO 'ab'c\r\n", "ECHO \"a\\\"\r\n",
        "ECHO \"a\\\r\n", "ECHO 'a\\'\r\n", "ECHO 'abc\n",
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(bad); i++)
        check_stream(bad[i], strlen(bad[i]), "ERR Protocol error: unbalanced quotes in request");
}

/* ---- errors and limits ---- */

TEST(bad_multibulk_counts_are_invalid_multibulk_length)
{
    static const char *const bad[] = {
        "*\r\n", "*01\r\n", "*-0\r\n", "*+1\r\n", "*1 \r\n", "*x\r\n",
        "*99999999999999999999\r\n", "*1048577\r\n",
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(bad); i++)
        check_stream(bad[i], strlen(bad[i]), "ERR Protocol error: invalid multibulk length");
}

TEST(multibulk_count_at_the_limit_is_accepted)
{
    check_stream(S("*1048576\r\n"), "PARTIAL");
}

TEST(a_request_with_the_maximum_element_count_parses)
{
    struct tbuf in = {0};
    struct resp_parser p;
    size_t consumed;
    tbuf_appendf(&in, "*%d\r\n", RESP_MULTIBULK_MAX);
    for (int i = 0; i < RESP_MULTIBULK_MAX; i++)
        tbuf_append(&in, "$1\r\nx\r\n", 7);
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, in.data, in.len, &consumed), 0);
    CHECK_EQ_INT(consumed, in.len);
    CHECK_EQ_INT(p.argc, RESP_MULTIBULK_MAX);
    CHECK_MEM_STR(p.argv[RESP_MULTIBULK_MAX - 1], p.argvlen[RESP_MULTIBULK_MAX - 1], "x");
    resp_parser_free(&p);
    tbuf_free(&in);
}

TEST(element_not_starting_with_dollar_is_an_error_naming_the_byte)
{
    check_stream(S("*1\r\nX\r\n"), "ERR Protocol error: expected '$', got 'X'");
    check_stream(S("*2\r\n$1\r\na\r\n:1\r\n"), "ERR Protocol error: expected '$', got ':'");
}

TEST(a_cr_or_lf_quoted_in_a_protocol_error_becomes_a_space)
{
    /* as Redis 7.0 replies: the error must stay one line */
    check_stream(S("*1\r\n\r\n"), "ERR Protocol error: expected '$', got ' '");
    check_stream(S("*1\r\n\n\r\n"), "ERR Protocol error: expected '$', got ' '");
    check_stream(S("*2\r\n$1\r\na\r\n\n\r\n"), "ERR Protocol error: expected '$', got ' '");
    /* and the text written as a reply is exactly Redis's bytes */
    struct resp_parser p;
    size_t consumed;
    struct tbuf reply = {0};
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, S("*1\r\n\n\r\n"), &consumed), TRIAD_EPROTO);
    CHECK(strchr(p.errmsg, '\n') == NULL);
    CHECK(strchr(p.errmsg, '\r') == NULL);
    resp_add_errorf(&reply, "ERR %s", p.errmsg);
    CHECK_MEM_STR(reply.data, reply.len, "-ERR Protocol error: expected '$', got ' '\r\n");
    tbuf_free(&reply);
    resp_parser_free(&p);
}

TEST(bad_bulk_lengths_are_invalid_bulk_length)
{
    static const char *const bad[] = {
        "*1\r\n$-1\r\n", "*1\r\n$-0\r\n", "*1\r\n$+4\r\n", "*1\r\n$\r\n",
        "*1\r\n$4x\r\n", "*1\r\n$99999999999999999999\r\n", "*1\r\n$536870913\r\n",
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(bad); i++)
        check_stream(bad[i], strlen(bad[i]), "ERR Protocol error: invalid bulk length");
    check_stream(S("*1\r\n$536870912\r\n"), "PARTIAL");
}

TEST(bulk_at_proto_max_bulk_len_is_accepted_and_one_more_is_refused)
{
    check_stream_lim(S("*1\r\n$16\r\n0123456789abcdef\r\n"),
                     "*1\r\n$16\r\n0123456789abcdef\r\n", 16);
    check_stream_lim(S("*1\r\n$17\r\n0123456789abcdefg\r\n"),
                     "ERR Protocol error: invalid bulk length", 16);
}

/* Feed a long stream in `step`-byte chunks and whole; check the outcome. */
static void check_long_opts(const struct tbuf *in, size_t step, const char *expect,
                            const struct parse_opts *opts)
{
    struct outcome o;
    parse_chunked(in->data, in->len, step, step, opts, &o);
    CHECK_MEM_STR(o.text.data, o.text.len, expect);
    tbuf_free(&o.text);
    parse_chunked(in->data, in->len, in->len, in->len, opts, &o);
    CHECK_MEM_STR(o.text.data, o.text.len, expect);
    tbuf_free(&o.text);
}

static void check_long(const struct tbuf *in, size_t step, const char *expect)
{
    check_long_opts(in, step, expect, NULL);
}

static void fill(struct tbuf *b, const char *prefix, size_t total, char c)
{
    tbuf_reset(b);
    tbuf_appends(b, prefix);
    while (b->len < total)
        tbuf_appendc(b, c);
}

TEST(inline_line_longer_than_64k_without_newline_is_too_big)
{
    struct tbuf in = {0};
    fill(&in, "ECHO ", RESP_INLINE_MAX, 'a');
    check_long(&in, 4096, "PARTIAL");
    tbuf_appendc(&in, 'a');
    check_long(&in, 4096, "ERR Protocol error: too big inline request");
    check_long(&in, 1000, "ERR Protocol error: too big inline request");
    /* a longer line whose newline is already here is served, as by Redis */
    fill(&in, "ECHO ", RESP_INLINE_MAX + 100, 'a');
    tbuf_appendc(&in, '\n');
    struct outcome o;
    parse_chunked(in.data, in.len, in.len, in.len, NULL, &o);
    CHECK_EQ_INT(o.commands, 1);
    tbuf_free(&o.text);
    tbuf_free(&in);
}

TEST(multibulk_count_line_longer_than_64k_is_too_big)
{
    struct tbuf in = {0};
    fill(&in, "*1", RESP_INLINE_MAX, '1');
    check_long(&in, 4096, "PARTIAL");
    tbuf_appendc(&in, '1');
    check_long(&in, 4096, "ERR Protocol error: too big mbulk count string");
    tbuf_free(&in);
}

TEST(bulk_count_line_longer_than_64k_is_too_big)
{
    struct tbuf in = {0};
    /* the limit counts from the start of the element header */
    fill(&in, "*1\r\n$1", 4 + RESP_INLINE_MAX, '1');
    check_long(&in, 4096, "PARTIAL");
    tbuf_appendc(&in, '1');
    check_long(&in, 4096, "ERR Protocol error: too big bulk count string");
    /* with its CR present, a long count is merely invalid */
    tbuf_append(&in, "\r\n", 2);
    check_long(&in, 4096, "ERR Protocol error: invalid bulk length");
    tbuf_free(&in);
}

TEST(parser_after_an_error_starts_clean)
{
    struct resp_parser p;
    size_t consumed;
    resp_parser_init(&p);
    CHECK_EQ_INT(resp_parse(&p, S("*1\r\n$x\r\n"), &consumed), TRIAD_EPROTO);
    CHECK_EQ_INT(p.argc, 0);
    CHECK(strcmp(p.errmsg, "Protocol error: invalid bulk length") == 0);
    CHECK_EQ_INT(resp_parse(&p, S("PING\r\n"), &consumed), 0);
    CHECK_EQ_INT(p.argc, 1);
    resp_parser_free(&p);
}

/* ---- limits before AUTH ---- */

/* `*<count>\r\n` then count times `$1\r\nx\r\n` */
static void fill_multibulk(struct tbuf *b, int count)
{
    tbuf_reset(b);
    tbuf_appendf(b, "*%d\r\n", count);
    for (int i = 0; i < count; i++)
        tbuf_append(b, "$1\r\nx\r\n", 7);
}

/* `*1\r\n$<len>\r\n<len bytes>\r\n` */
static void fill_bulk(struct tbuf *b, int len)
{
    tbuf_reset(b);
    tbuf_appendf(b, "*1\r\n$%d\r\n", len);
    for (int i = 0; i < len; i++)
        tbuf_appendc(b, 'v');
    tbuf_append(b, "\r\n", 2);
}

TEST(unauthenticated_multibulk_count_above_10_is_refused)
{
    struct tbuf in = {0};
    struct tbuf want = {0};
    _Static_assert(RESP_UNAUTH_MULTIBULK_MAX == 10, "Redis 7.0's limit");
    /* 10 elements: a command, re-encoded exactly as sent */
    fill_multibulk(&in, RESP_UNAUTH_MULTIBULK_MAX);
    fill_multibulk(&want, RESP_UNAUTH_MULTIBULK_MAX);
    tbuf_appendc(&want, '\0');
    check_stream_opts(in.data, in.len, want.data, &unauth);
    /* 11: refused on the count line, before any element arrives */
    fill_multibulk(&in, RESP_UNAUTH_MULTIBULK_MAX + 1);
    check_stream_opts(in.data, in.len, "ERR Protocol error: unauthenticated multibulk length",
                      &unauth);
    check_stream_opts(S("*11\r\n"), "ERR Protocol error: unauthenticated multibulk length",
                      &unauth);
    /* Redis's order: past INT_MAX or not a number is invalid for everyone;
     * up to INT_MAX the unauthenticated limit speaks before our 1M limit */
    check_stream_opts(S("*2147483648\r\n"), "ERR Protocol error: invalid multibulk length",
                      &unauth);
    check_stream_opts(S("*1x\r\n"), "ERR Protocol error: invalid multibulk length", &unauth);
    check_stream_opts(S("*1048577\r\n"), "ERR Protocol error: unauthenticated multibulk length",
                      &unauth);
    /* empty commands stay empty */
    check_stream_opts(S("*0\r\n*-1\r\n"), "*0\r\n*0\r\n", &unauth);
    tbuf_free(&want);
    tbuf_free(&in);
}

TEST(unauthenticated_bulk_length_above_16384_is_refused)
{
    struct tbuf in = {0};
    struct tbuf want = {0};
    _Static_assert(RESP_UNAUTH_BULK_LEN_MAX == 16384, "Redis 7.0's limit");
    /* 16384 bytes: the whole value arrives and is the command */
    fill_bulk(&in, RESP_UNAUTH_BULK_LEN_MAX);
    fill_bulk(&want, RESP_UNAUTH_BULK_LEN_MAX);
    tbuf_appendc(&want, '\0');
    check_long_opts(&in, 1000, want.data, &unauth);
    check_stream_opts(S("*1\r\n$16384\r\n"), "PARTIAL", &unauth);
    /* 16385: refused on the length line, before the payload */
    fill_bulk(&in, RESP_UNAUTH_BULK_LEN_MAX + 1);
    check_long_opts(&in, 1000, "ERR Protocol error: unauthenticated bulk length", &unauth);
    check_stream_opts(S("*1\r\n$16385\r\n"), "ERR Protocol error: unauthenticated bulk length",
                      &unauth);
    /* any element, not only the first */
    check_stream_opts(S("*2\r\n$4\r\nPING\r\n$16385\r\n"),
                      "ERR Protocol error: unauthenticated bulk length", &unauth);
    /* what is invalid for everyone stays "invalid" */
    check_stream_opts(S("*1\r\n$-1\r\n"), "ERR Protocol error: invalid bulk length", &unauth);
    check_stream_opts(S("*1\r\n$536870913\r\n"), "ERR Protocol error: invalid bulk length",
                      &unauth);
    tbuf_free(&want);
    tbuf_free(&in);
}

TEST(authenticated_parser_is_not_held_to_the_unauthenticated_limits)
{
    struct tbuf in = {0};
    struct tbuf want = {0};
    fill_multibulk(&in, RESP_UNAUTH_MULTIBULK_MAX + 1);
    fill_multibulk(&want, RESP_UNAUTH_MULTIBULK_MAX + 1);
    tbuf_appendc(&want, '\0');
    check_stream(in.data, in.len, want.data);
    fill_bulk(&in, RESP_UNAUTH_BULK_LEN_MAX + 1);
    fill_bulk(&want, RESP_UNAUTH_BULK_LEN_MAX + 1);
    tbuf_appendc(&want, '\0');
    check_long(&in, 1000, want.data);

    /* the flag is read per frame: cleared between commands, as after AUTH,
     * the same parser takes the big frame */
    struct resp_parser p;
    size_t consumed;
    resp_parser_init(&p);
    CHECK(!p.auth_required);
    p.auth_required = true;
    CHECK_EQ_INT(resp_parse(&p, S("*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"), &consumed), 0);
    CHECK_EQ_INT(p.argc, 2);
    p.auth_required = false;
    CHECK_EQ_INT(resp_parse(&p, in.data, in.len, &consumed), 0);
    CHECK_EQ_INT(consumed, in.len);
    CHECK_EQ_INT(p.argc, 1);
    CHECK_EQ_INT(p.argvlen[0], RESP_UNAUTH_BULK_LEN_MAX + 1);
    resp_parser_free(&p);
    tbuf_free(&want);
    tbuf_free(&in);
}

TEST(unauthenticated_inline_requests_have_only_the_inline_limit)
{
    /* Redis 7.0 checks no argument count or length in processInlineBuffer */
    struct tbuf in = {0};
    fill(&in, "ECHO ", 5 + RESP_UNAUTH_BULK_LEN_MAX + 1, 'a');
    tbuf_append(&in, "\r\n", 2);
    struct outcome o;
    parse_chunked(in.data, in.len, 1000, 1000, &unauth, &o);
    CHECK_EQ_INT(o.commands, 1);
    tbuf_free(&o.text);
    check_stream_opts(S("PING a b c d e f g h i j k\r\n"),
                      "*12\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n$1\r\ne\r\n"
                      "$1\r\nf\r\n$1\r\ng\r\n$1\r\nh\r\n$1\r\ni\r\n$1\r\nj\r\n$1\r\nk\r\n",
                      &unauth);
    tbuf_free(&in);
}

/* ---- replies ---- */

static struct tbuf out;

#define CHECK_OUT(expect)                                        \
    do {                                                         \
        CHECK_MEM_STR(out.data, out.len, expect);                \
        tbuf_reset(&out);                                        \
    } while (0)

TEST(simple_int_and_bulk_writers_write_exact_bytes)
{
    resp_add_simple(&out, "OK");
    CHECK_OUT("+OK\r\n");
    resp_add_simple_len(&out, "PONGXX", 4);
    CHECK_OUT("+PONG\r\n");
    resp_add_int(&out, 0);
    CHECK_OUT(":0\r\n");
    resp_add_int(&out, -42);
    CHECK_OUT(":-42\r\n");
    resp_add_int(&out, LLONG_MIN);
    CHECK_OUT(":-9223372036854775808\r\n");
    resp_add_int(&out, LLONG_MAX);
    CHECK_OUT(":9223372036854775807\r\n");
    resp_add_bulk(&out, "a\r\nb", 4);
    CHECK_OUT("$4\r\na\r\nb\r\n");
    resp_add_bulk(&out, NULL, 0);
    CHECK_OUT("$0\r\n\r\n");
    resp_add_bulk_str(&out, "hello");
    CHECK_OUT("$5\r\nhello\r\n");
    resp_add_bulk_ll(&out, -1234567);
    CHECK_OUT("$8\r\n-1234567\r\n");
    resp_add_array_len(&out, 3);
    CHECK_OUT("*3\r\n");
    resp_add_array_len(&out, 0);
    CHECK_OUT("*0\r\n");
}

TEST(error_writers_replace_cr_and_lf_with_spaces)
{
    resp_add_error(&out, "ERR syntax error");
    CHECK_OUT("-ERR syntax error\r\n");
    resp_add_error(&out, "ERR a\r\nb\nc");
    CHECK_OUT("-ERR a  b c\r\n");
    resp_add_errorf(&out, "ERR Protocol error: expected '$', got '%c'", '\r');
    CHECK_OUT("-ERR Protocol error: expected '$', got ' '\r\n");
    resp_add_errorf(&out, "ERR unknown command '%s'", "foo");
    CHECK_OUT("-ERR unknown command 'foo'\r\n");

    char longmsg[1000];
    memset(longmsg, 'x', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    resp_add_errorf(&out, "ERR %s", longmsg);
    CHECK_EQ_INT(out.len, 1 + 4 + 999 + 2);
    CHECK(memcmp(out.data, "-ERR xxx", 8) == 0);
    CHECK(memcmp(out.data + out.len - 3, "x\r\n", 3) == 0);
    tbuf_reset(&out);
}

TEST(resp2_and_resp3_forms_differ_where_the_protocols_do)
{
    resp_add_null(&out, 2);
    CHECK_OUT("$-1\r\n");
    resp_add_null(&out, 3);
    CHECK_OUT("_\r\n");
    resp_add_null_array(&out, 2);
    CHECK_OUT("*-1\r\n");
    resp_add_null_array(&out, 3);
    CHECK_OUT("_\r\n");
    resp_add_map_len(&out, 2, 3);
    CHECK_OUT("*6\r\n");
    resp_add_map_len(&out, 3, 3);
    CHECK_OUT("%3\r\n");
    resp_add_set_len(&out, 2, 4);
    CHECK_OUT("*4\r\n");
    resp_add_set_len(&out, 3, 4);
    CHECK_OUT("~4\r\n");
    resp_add_bool(&out, 2, true);
    CHECK_OUT(":1\r\n");
    resp_add_bool(&out, 2, false);
    CHECK_OUT(":0\r\n");
    resp_add_bool(&out, 3, true);
    CHECK_OUT("#t\r\n");
    resp_add_bool(&out, 3, false);
    CHECK_OUT("#f\r\n");
    resp_add_verbatim(&out, 2, "hi\nthere", 8);
    CHECK_OUT("$8\r\nhi\nthere\r\n");
    resp_add_verbatim(&out, 3, "hi\nthere", 8);
    CHECK_OUT("=12\r\ntxt:hi\nthere\r\n");
    resp_add_verbatim(&out, 3, "", 0);
    CHECK_OUT("=4\r\ntxt:\r\n");
}

/* Bytes as redis-server 7.0 sends them for ZSCORE in RESP2 and RESP3. */
TEST(doubles_are_written_like_redis_7)
{
    resp_add_double(&out, 2, 1.1);
    CHECK_OUT("$18\r\n1.1000000000000001\r\n");
    resp_add_double(&out, 3, 1.1);
    CHECK_OUT(",1.1000000000000001\r\n");
    resp_add_double(&out, 2, 0.1);
    CHECK_OUT("$19\r\n0.10000000000000001\r\n");
    resp_add_double(&out, 3, 1e300);
    CHECK_OUT(",1.0000000000000001e+300\r\n");
    resp_add_double(&out, 2, 3.0);
    CHECK_OUT("$1\r\n3\r\n");
    resp_add_double(&out, 3, -2.5);
    CHECK_OUT(",-2.5\r\n");
    resp_add_double(&out, 2, INFINITY);
    CHECK_OUT("$3\r\ninf\r\n");
    resp_add_double(&out, 2, -INFINITY);
    CHECK_OUT("$4\r\n-inf\r\n");
    resp_add_double(&out, 3, INFINITY);
    CHECK_OUT(",inf\r\n");
    resp_add_double(&out, 3, -INFINITY);
    CHECK_OUT(",-inf\r\n");
}

static void check_ld(long double v, const char *expect)
{
    char buf[512];
    int n = resp_format_long_double(buf, sizeof(buf), v);
    CHECK_MEM_STR(buf, (size_t)n, expect);
    CHECK(buf[n] == '\0');
}

/* Results of INCRBYFLOAT on redis-server 7.0 (x86-64, 80-bit long double). */
TEST(long_doubles_are_formatted_like_incrbyfloat)
{
    check_ld(10.5L, "10.5");
    check_ld(3.0e3L, "3000");
    check_ld(5.0e3L, "5000");
    check_ld(1.1L + 0.1L, "1.2");
    check_ld(0.1L, "0.1");
    check_ld(-0.0L, "0");
    check_ld(1e20L, "100000000000000000000");
    check_ld(1.0000000000000000001L, "1");
    check_ld(123456789.123456789L, "123456789.12345678899873747");
    check_ld(-7.25L, "-7.25");
    check_ld((long double)INFINITY, "inf");
    check_ld(-(long double)INFINITY, "-inf");
}

TEST(long_double_without_room_gives_an_empty_string)
{
    char buf[8];
    CHECK_EQ_INT(resp_format_long_double(buf, sizeof(buf), 10.5L), 0);
    CHECK(buf[0] == '\0');
    CHECK_EQ_INT(resp_format_long_double(buf, 4, -(long double)INFINITY), 0);
    CHECK_EQ_INT(resp_format_long_double(buf, 5, -(long double)INFINITY), 4);
    CHECK(strcmp(buf, "-inf") == 0);
}

/* ---- lookahead (resp_peek_keys) ---- */

TEST(peek_finds_the_key_of_each_complete_request_and_stops_at_a_partial_one)
{
    static const char in[] = "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$2\r\nxy\r\n"
                             "*2\r\n$3\r\nGET\r\n$2\r\nbc\r\n"
                             "*1\r\n$4\r\nPING\r\n"
                             "*2\r\n$3\r\nGET\r\n$1";
    struct resp_key keys[8];
    size_t scanned = 0;
    size_t n = resp_peek_keys(in, sizeof(in) - 1, keys, 8, &scanned);
    CHECK_EQ_INT(n, 3);
    CHECK_MEM_STR(keys[0].ptr, keys[0].len, "a");
    CHECK_MEM_STR(keys[1].ptr, keys[1].len, "bc");
    CHECK(keys[2].ptr == NULL && keys[2].len == 0);
    CHECK_EQ_INT(scanned, strstr(in, "*2\r\n$3\r\nGET\r\n$1") - in);
}

TEST(peek_stops_at_its_limit_and_at_inline_or_malformed_requests)
{
    static const char two[] = "*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$1\r\nb\r\n";
    struct resp_key keys[4];
    size_t scanned = 0;
    CHECK_EQ_INT(resp_peek_keys(two, sizeof(two) - 1, keys, 1, &scanned), 1);
    CHECK_EQ_INT(scanned, (sizeof(two) - 1) / 2);
    CHECK_EQ_INT(resp_peek_keys(S("GET a\r\n"), keys, 4, &scanned), 0);
    CHECK_EQ_INT(scanned, 0);
    CHECK_EQ_INT(resp_peek_keys(S("*2\r\n$3\r\nGET\r\n$-1\r\n"), keys, 4, &scanned), 0);
    CHECK_EQ_INT(resp_peek_keys(S("*2\r\n$3\r\nGET\r\n:1\r\n"), keys, 4, &scanned), 0);
    CHECK_EQ_INT(resp_peek_keys(S("*0\r\n"), keys, 4, &scanned), 0);
    CHECK_EQ_INT(resp_peek_keys(S("*1\r\n$99999999999999999999\r\n"), keys, 4, &scanned), 0);
    /* a bulk shorter than it claims, or missing its CRLF, is incomplete */
    CHECK_EQ_INT(resp_peek_keys(S("*2\r\n$3\r\nGET\r\n$5\r\nab\r\n"), keys, 4, &scanned), 0);
    CHECK_EQ_INT(resp_peek_keys(S("*2\r\n$3\r\nGET\r\n$2\r\nab"), keys, 4, &scanned), 0);
    CHECK_EQ_INT(resp_peek_keys("", 0, keys, 4, &scanned), 0);
}

/* Random pipelines, cut at every length: the lookahead finds exactly the
 * requests the parser completes from the same bytes, with their argv[1]. */
TEST(peek_agrees_with_the_parser_on_random_pipelines)
{
    uint64_t seed = 42;
    for (int round = 0; round < 200; round++) {
        struct tbuf in = {0};
        int ncmds = 1 + (int)(triad_splitmix64(&seed) % 6);
        for (int c = 0; c < ncmds; c++) {
            int argc = 1 + (int)(triad_splitmix64(&seed) % 4);
            resp_add_array_len(&in, argc);
            for (int a = 0; a < argc; a++) {
                char arg[40];
                size_t alen = triad_splitmix64(&seed) % sizeof(arg);
                for (size_t i = 0; i < alen; i++)
                    arg[i] = (char)(triad_splitmix64(&seed) & 0xff);
                resp_add_bulk(&in, arg, alen);
            }
        }
        for (size_t cut = 0; cut <= in.len; cut++) {
            struct resp_key keys[8];
            size_t scanned = 0;
            size_t n = resp_peek_keys(in.data, cut, keys, 8, &scanned);
            struct resp_parser p;
            resp_parser_init(&p);
            size_t off = 0, parsed = 0;
            while (off < cut) {
                size_t consumed = 0;
                int rc = resp_parse(&p, in.data + off, cut - off, &consumed);
                if (rc != 0)
                    break;
                off += consumed;
                CHECK(parsed < n);
                if (parsed < n) {
                    if (p.argc < 2) {
                        CHECK(keys[parsed].ptr == NULL);
                    } else {
                        CHECK(keys[parsed].len == p.argvlen[1] &&
                              memcmp(keys[parsed].ptr, p.argv[1], p.argvlen[1]) == 0);
                    }
                }
                parsed++;
                if (parsed == n)
                    CHECK_EQ_INT(off, scanned);
            }
            CHECK_EQ_INT(parsed, n);
            resp_parser_free(&p);
        }
        tbuf_free(&in);
    }
}

int main(void)
{
    RUN(multibulk_with_several_args_parses_at_every_split);
    RUN(multibulk_with_an_empty_bulk_parses_at_every_split);
    RUN(binary_bulk_with_crlf_and_nul_inside_parses_at_every_split);
    RUN(binary_bulk_argument_is_nul_terminated_and_keeps_its_length);
    RUN(zero_and_negative_multibulk_counts_give_an_empty_command);
    RUN(pipelined_commands_back_to_back_parse_at_every_split);
    RUN(an_unfinished_frame_waits_for_more_bytes);
    RUN(bytes_after_header_cr_and_after_payload_are_skipped_like_redis);
    RUN(resp_parse_reports_consumed_bytes_of_one_command_only);
    RUN(hint_says_how_many_bytes_a_partial_bulk_still_needs);
    RUN(large_bulk_arriving_in_pieces_is_assembled_once);
    RUN(small_commands_reuse_parser_memory_without_allocating);
    RUN(reset_forgets_a_partial_command);
    RUN(inline_with_quotes_and_escapes_parses_at_every_split);
    RUN(inline_double_quote_escapes_match_sdssplitargs);
    RUN(inline_single_quotes_keep_backslashes_but_for_quote);
    RUN(inline_empty_quotes_give_empty_arguments);
    RUN(inline_unquoted_backslash_is_literal);
    RUN(inline_separators_are_spaces_tabs_and_cr);
    RUN(empty_inline_lines_give_empty_commands);
    RUN(inline_line_ends_at_a_nul_byte_like_sdssplitargs);
    RUN(inline_unbalanced_quotes_are_a_protocol_error);
    RUN(bad_multibulk_counts_are_invalid_multibulk_length);
    RUN(multibulk_count_at_the_limit_is_accepted);
    RUN(a_request_with_the_maximum_element_count_parses);
    RUN(element_not_starting_with_dollar_is_an_error_naming_the_byte);
    RUN(a_cr_or_lf_quoted_in_a_protocol_error_becomes_a_space);
    RUN(bad_bulk_lengths_are_invalid_bulk_length);
    RUN(bulk_at_proto_max_bulk_len_is_accepted_and_one_more_is_refused);
    RUN(inline_line_longer_than_64k_without_newline_is_too_big);
    RUN(multibulk_count_line_longer_than_64k_is_too_big);
    RUN(bulk_count_line_longer_than_64k_is_too_big);
    RUN(parser_after_an_error_starts_clean);
    RUN(unauthenticated_multibulk_count_above_10_is_refused);
    RUN(unauthenticated_bulk_length_above_16384_is_refused);
    RUN(authenticated_parser_is_not_held_to_the_unauthenticated_limits);
    RUN(unauthenticated_inline_requests_have_only_the_inline_limit);
    RUN(simple_int_and_bulk_writers_write_exact_bytes);
    RUN(error_writers_replace_cr_and_lf_with_spaces);
    RUN(resp2_and_resp3_forms_differ_where_the_protocols_do);
    RUN(doubles_are_written_like_redis_7);
    RUN(long_doubles_are_formatted_like_incrbyfloat);
    RUN(long_double_without_room_gives_an_empty_string);
    RUN(peek_finds_the_key_of_each_complete_request_and_stops_at_a_partial_one);
    RUN(peek_stops_at_its_limit_and_at_inline_or_malformed_requests);
    RUN(peek_agrees_with_the_parser_on_random_pipelines);
    tbuf_free(&out);
    return test_summary("resp");
}
