/* resp.c - the Redis protocol: request parser and reply writer.
 *
 * Pure code (no libuv, no I/O): see resp.h for the contract.
 *
 * How the parser keeps state: a header line (`*<n>\r\n`, `$<len>\r\n`) or an
 * inline line is only consumed once it is complete; until then it stays in
 * the caller's query buffer and is presented again with the bytes that
 * follow. Bulk payloads are copied into the arena as they arrive, so a large
 * value never needs the whole of it in the caller's buffer and every byte is
 * copied once. The elements already read of a multibulk, the count still
 * expected and the bytes still missing of the current bulk live in the
 * parser.
 *
 * Where Redis 7's own parser (networking.c) is lax we are lax the same way,
 * so a client that works against Redis works against us:
 *  - a header line ends at the first '\r', and the byte after it is skipped
 *    without checking that it is '\n';
 *  - the two bytes after a bulk payload are skipped without checking that
 *    they are CRLF;
 *  - `*0` and any negative count (`*-1`, `*-5`) are an empty command.
 * One deliberate difference: Redis 7.0 accepts a multibulk count up to
 * INT_MAX; we refuse counts above RESP_MULTIBULK_MAX (1M) with Redis's
 * "invalid multibulk length", as Redis 6 did, so a 15-byte header cannot
 * make us plan for billions of arguments.
 */
#include "resp.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/defs.h"
#include "../common/mem.h"

/* After a command whose arguments needed more than this, the arena is freed
 * rather than kept: one big SET must not pin its size for the life of an idle
 * connection. Small commands reuse the arena with no allocation at all. */
#define RESP_ARENA_KEEP_MAX (1024 * 1024)
/* Same for the argv arrays (three arrays of this many entries). */
#define RESP_ARGV_KEEP_MAX 1024
#define RESP_ARGV_CAP_MIN 16

void resp_parser_init(struct resp_parser *p)
{
    memset(p, 0, sizeof(*p));
    p->proto_max_bulk_len = RESP_PROTO_MAX_BULK_LEN_DEFAULT;
    p->state = RESP_ST_START;
}

static void resp__free_argv(struct resp_parser *p)
{
    tfree(p->argv);
    tfree(p->argvlen);
    tfree(p->arg_off);
    p->argv = NULL;
    p->argvlen = NULL;
    p->arg_off = NULL;
    p->argv_cap = 0;
}

void resp_parser_free(struct resp_parser *p)
{
    resp__free_argv(p);
    tbuf_free(&p->arena);
    p->argc = 0;
    p->state = RESP_ST_START;
}

void resp_parser_reset(struct resp_parser *p)
{
    p->state = RESP_ST_START;
    p->argc = 0;
    p->multibulk_len = 0;
    p->bulk_len = 0;
    tbuf_reset(&p->arena);
}

size_t resp_parse_hint(const struct resp_parser *p)
{
    /* bulk_len counts the payload bytes still missing plus its CRLF */
    if (p->state == RESP_ST_MB_BULK)
        return (size_t)p->bulk_len;
    return 0;
}

bool resp_parser_idle(const struct resp_parser *p)
{
    return p->state == RESP_ST_START;
}

/* Room for one more argument in argv / argvlen / arg_off. */
static void resp__argv_reserve(struct resp_parser *p)
{
    if (TRIAD_LIKELY(p->argc < p->argv_cap))
        return;
    int cap = p->argv_cap ? p->argv_cap * 2 : RESP_ARGV_CAP_MIN;
    TRIAD_ASSERT(cap > p->argc);
    p->argv = trealloc(p->argv, (size_t)cap * sizeof(*p->argv));
    p->argvlen = trealloc(p->argvlen, (size_t)cap * sizeof(*p->argvlen));
    p->arg_off = trealloc(p->arg_off, (size_t)cap * sizeof(*p->arg_off));
    p->argv_cap = cap;
}

/* A new command begins: drop the previous one, and give back memory a big
 * previous command left behind. */
static void resp__begin_command(struct resp_parser *p)
{
    p->argc = 0;
    p->multibulk_len = 0;
    p->bulk_len = 0;
    if (TRIAD_UNLIKELY(p->arena.cap > RESP_ARENA_KEEP_MAX))
        tbuf_free(&p->arena);
    else
        tbuf_reset(&p->arena);
    if (TRIAD_UNLIKELY(p->argv_cap > RESP_ARGV_KEEP_MAX))
        resp__free_argv(p);
}

/* The arena has stopped moving: point argv into it. */
static void resp__finish_command(struct resp_parser *p)
{
    for (int i = 0; i < p->argc; i++) {
        p->argv[i] = p->arena.data + p->arg_off[i];
        TRIAD_DEBUG_ASSERT(p->argv[i][p->argvlen[i]] == '\0');
    }
    p->state = RESP_ST_START;
    p->multibulk_len = 0;
    p->bulk_len = 0;
}

static int resp__fail(struct resp_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record Redis's error text and forget the partial command: the caller
 * replies and closes, and a parser reused anyway starts clean. A client's
 * CR or LF quoted in the text (`expected '$', got '\n'`) becomes a space,
 * as in Redis's error replies: errmsg is one line, for the reply and the
 * log alike. */
static int resp__fail(struct resp_parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->errmsg, sizeof(p->errmsg), fmt, ap);
    va_end(ap);
    for (char *c = p->errmsg; *c != '\0'; c++)
        if (*c == '\r' || *c == '\n')
            *c = ' ';
    resp_parser_reset(p);
    return TRIAD_EPROTO;
}

/* Parse a decimal long long exactly as Redis's string2ll accepts it: an
 * optional '-', no '+', no leading zeros (except "0" itself), no spaces, no
 * overflow. Returns true on success. */
static bool resp__str2ll(const char *s, size_t n, long long *out)
{
    const char *end = s + n;
    bool neg = false;
    unsigned long long v;

    if (n == 0)
        return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (*s == '-') {
        neg = true;
        s++;
        if (s == end)
            return false;
    }
    if (*s < '1' || *s > '9')
        return false;
    v = (unsigned long long)(*s - '0');
    s++;
    for (; s < end; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned long long d = (unsigned long long)(*s - '0');
        if (v > (ULLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return false;
        *out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}

/* isspace() in the C locale, which is what sdssplitargs sees. */
static inline bool resp__isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Split one inline line into arguments in the arena, as Redis's
 * sdssplitargs does. sdssplitargs works on a C string, so the line ends at
 * its first NUL byte, as it does in Redis. Returns false on unbalanced
 * quotes. */
static bool resp__split_inline(struct resp_parser *p, const char *s, size_t n)
{
    const char *nul = memchr(s, '\0', n);
    if (nul != NULL)
        n = (size_t)(nul - s);
    const char *q = s, *end = s + n;

    /* Each argument takes at most the input bytes it consumed plus its NUL,
     * and every argument but the last consumes a separator: n + 1 bytes
     * always suffice, so the arena does not move while we write. */
    tbuf_reserve(&p->arena, n + 1);
    char *base = p->arena.data;
    char *out = base + p->arena.len;

    for (;;) {
        while (q < end && resp__isspace(*q))
            q++;
        if (q == end)
            break;

        char *arg = out;
        bool inq = false, insq = false, done = false;
        while (!done) {
            char c = q < end ? *q : '\0';
            if (inq) {
                if (c == '\\' && end - q >= 4 && q[1] == 'x' && triad_hex_digit(q[2]) >= 0 &&
                    triad_hex_digit(q[3]) >= 0) {
                    *out++ = (char)(triad_hex_digit(q[2]) * 16 + triad_hex_digit(q[3]));
                    q += 3;
                } else if (c == '\\' && end - q >= 2) {
                    q++;
                    switch (*q) {
                    case 'n': *out++ = '\n'; break;
                    case 'r': *out++ = '\r'; break;
                    case 't': *out++ = '\t'; break;
                    case 'b': *out++ = '\b'; break;
                    case 'a': *out++ = '\a'; break;
                    default: *out++ = *q; break;
                    }
                } else if (c == '"') {
                    /* a closing quote must be followed by a space or the end */
                    if (end - q >= 2 && !resp__isspace(q[1]))
                        return false;
                    done = true;
                } else if (c == '\0') {
                    return false; /* unterminated quotes */
                } else {
                    *out++ = c;
                }
            } else if (insq) {
                if (c == '\\' && end - q >= 2 && q[1] == '\'') {
                    q++;
                    *out++ = '\'';
                } else if (c == '\'') {
                    if (end - q >= 2 && !resp__isspace(q[1]))
                        return false;
                    done = true;
                } else if (c == '\0') {
                    return false;
                } else {
                    *out++ = c;
                }
            } else {
                switch (c) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = true;
                    break;
                case '"':
                    inq = true;
                    break;
                case '\'':
                    insq = true;
                    break;
                default:
                    *out++ = c;
                    break;
                }
            }
            if (q < end)
                q++;
        }

        resp__argv_reserve(p);
        p->arg_off[p->argc] = (size_t)(arg - base);
        p->argvlen[p->argc] = (size_t)(out - arg);
        p->argc++;
        *out++ = '\0';
    }
    TRIAD_ASSERT(out <= base + p->arena.len + n + 1);
    p->arena.len = (size_t)(out - base);
    return true;
}

static int resp__parse_inline(struct resp_parser *p, const char *buf, size_t len,
                              size_t *consumed)
{
    const char *nl = memchr(buf, '\n', len);
    if (nl == NULL) {
        if (len > RESP_INLINE_MAX)
            return resp__fail(p, "Protocol error: too big inline request");
        return TRIAD_EAGAIN;
    }
    size_t line_len = (size_t)(nl - buf);
    size_t taken = line_len + 1;
    if (line_len > 0 && buf[line_len - 1] == '\r')
        line_len--;
    if (!resp__split_inline(p, buf, line_len))
        return resp__fail(p, "Protocol error: unbalanced quotes in request");
    *consumed = taken;
    resp__finish_command(p);
    return 0;
}

int resp_parse(struct resp_parser *p, const char *buf, size_t len, size_t *consumed)
{
    size_t pos = 0;
    int rc;

    *consumed = 0;
    if (p->state == RESP_ST_START) {
        resp__begin_command(p);
        if (len == 0)
            return TRIAD_EAGAIN;
        if (buf[0] != '*')
            return resp__parse_inline(p, buf, len, consumed);

        /* `*<count>\r\n` */
        const char *cr = memchr(buf, '\r', len);
        if (cr == NULL) {
            if (len > RESP_INLINE_MAX)
                return resp__fail(p, "Protocol error: too big mbulk count string");
            return TRIAD_EAGAIN;
        }
        if ((size_t)(cr - buf) + 2 > len)
            return TRIAD_EAGAIN; /* the byte after '\r' has not arrived */
        long long count;
        if (!resp__str2ll(buf + 1, (size_t)(cr - buf) - 1, &count) || count > INT_MAX)
            return resp__fail(p, "Protocol error: invalid multibulk length");
        /* Redis's order: past INT_MAX is invalid for everyone, then the
         * unauthenticated limit, then our own RESP_MULTIBULK_MAX */
        if (p->auth_required && count > RESP_UNAUTH_MULTIBULK_MAX)
            return resp__fail(p, "Protocol error: unauthenticated multibulk length");
        if (count > RESP_MULTIBULK_MAX)
            return resp__fail(p, "Protocol error: invalid multibulk length");
        pos = (size_t)(cr - buf) + 2;
        if (count <= 0) {
            *consumed = pos;
            resp__finish_command(p);
            return 0;
        }
        p->multibulk_len = count;
        p->state = RESP_ST_MB_ELEMENT;
    }

    while (p->multibulk_len > 0) {
        if (p->state == RESP_ST_MB_ELEMENT) {
            /* `$<len>\r\n` */
            if (pos == len) {
                rc = TRIAD_EAGAIN;
                goto out;
            }
            const char *cr = memchr(buf + pos, '\r', len - pos);
            if (cr == NULL) {
                if (len - pos > RESP_INLINE_MAX)
                    return resp__fail(p, "Protocol error: too big bulk count string");
                rc = TRIAD_EAGAIN;
                goto out;
            }
            size_t line_end = (size_t)(cr - buf);
            if (line_end + 2 > len) {
                rc = TRIAD_EAGAIN;
                goto out;
            }
            if (buf[pos] != '$')
                return resp__fail(p, "Protocol error: expected '$', got '%c'", buf[pos]);
            long long blen;
            if (!resp__str2ll(buf + pos + 1, line_end - pos - 1, &blen) || blen < 0 ||
                blen > p->proto_max_bulk_len)
                return resp__fail(p, "Protocol error: invalid bulk length");
            if (p->auth_required && blen > RESP_UNAUTH_BULK_LEN_MAX)
                return resp__fail(p, "Protocol error: unauthenticated bulk length");
            pos = line_end + 2;

            resp__argv_reserve(p);
            p->arg_off[p->argc] = p->arena.len;
            p->argvlen[p->argc] = (size_t)blen;
            p->bulk_len = blen + 2;
            p->state = RESP_ST_MB_BULK;
        }

        TRIAD_ASSERT(p->state == RESP_ST_MB_BULK);
        TRIAD_ASSERT(p->bulk_len > 0);
        size_t avail = len - pos;
        size_t want = (size_t)p->bulk_len;
        if (TRIAD_LIKELY(avail >= want)) {
            /* the whole rest of the payload and its CRLF are here */
            size_t data = want > 2 ? want - 2 : 0;
            tbuf_reserve(&p->arena, data + 1);
            memcpy(p->arena.data + p->arena.len, buf + pos, data);
            p->arena.len += data;
            p->arena.data[p->arena.len++] = '\0';
            pos += want;
        } else {
            /* Take what there is: payload into the arena, and count the
             * CRLF bytes that arrived. */
            size_t data_left = want > 2 ? want - 2 : 0;
            size_t n = TRIAD_MIN(avail, data_left);
            tbuf_append(&p->arena, buf + pos, n);
            pos = len;
            p->bulk_len -= (long long)avail;
            rc = TRIAD_EAGAIN;
            goto out;
        }
        TRIAD_ASSERT(p->arena.len - p->arg_off[p->argc] == p->argvlen[p->argc] + 1);
        p->argc++;
        p->multibulk_len--;
        p->bulk_len = 0;
        p->state = RESP_ST_MB_ELEMENT;
    }

    *consumed = pos;
    resp__finish_command(p);
    return 0;

out:
    *consumed = pos;
    return rc;
}

/* ---- replies ---- */

/* Decimal digits of v into dst (at least 21 bytes); returns the length. */
static size_t resp__ll2str(char *dst, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    size_t len = 0;
    if (v < 0)
        dst[len++] = '-';
    while (n > 0)
        dst[len++] = tmp[--n];
    return len;
}

/* `<prefix><v>\r\n` */
static void resp__add_header(struct tbuf *b, char prefix, long long v)
{
    tbuf_reserve(b, 24);
    char *o = b->data + b->len;
    *o++ = prefix;
    o += resp__ll2str(o, v);
    *o++ = '\r';
    *o++ = '\n';
    b->len = (size_t)(o - b->data);
}

void resp_add_simple(struct tbuf *b, const char *s)
{
    resp_add_simple_len(b, s, strlen(s));
}

void resp_add_simple_len(struct tbuf *b, const char *s, size_t n)
{
    tbuf_reserve(b, n + 3);
    char *o = b->data + b->len;
    *o++ = '+';
    memcpy(o, s, n);
    o += n;
    *o++ = '\r';
    *o++ = '\n';
    b->len = (size_t)(o - b->data);
}

void resp_add_error(struct tbuf *b, const char *msg)
{
    size_t n = strlen(msg);
    tbuf_reserve(b, n + 3);
    char *o = b->data + b->len;
    *o++ = '-';
    /* a CR or LF inside would end the error early and desync the client */
    for (size_t i = 0; i < n; i++)
        *o++ = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    *o++ = '\r';
    *o++ = '\n';
    b->len = (size_t)(o - b->data);
}

void resp_add_errorf(struct tbuf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    TRIAD_ASSERT(n >= 0);
    if ((size_t)n < sizeof(small)) {
        resp_add_error(b, small);
        return;
    }
    char *big = tmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp_add_error(b, big);
    tfree(big);
}

void resp_add_int(struct tbuf *b, long long v)
{
    resp__add_header(b, ':', v);
}

void resp_add_bulk(struct tbuf *b, const void *p, size_t n)
{
    TRIAD_ASSERT(n <= (size_t)LLONG_MAX);
    tbuf_reserve(b, n + 26);
    char *o = b->data + b->len;
    *o++ = '$';
    o += resp__ll2str(o, (long long)n);
    *o++ = '\r';
    *o++ = '\n';
    if (n > 0)
        memcpy(o, p, n);
    o += n;
    *o++ = '\r';
    *o++ = '\n';
    b->len = (size_t)(o - b->data);
}

void resp_add_bulk_str(struct tbuf *b, const char *s)
{
    resp_add_bulk(b, s, strlen(s));
}

void resp_add_bulk_ll(struct tbuf *b, long long v)
{
    char digits[24];
    size_t n = resp__ll2str(digits, v);
    resp_add_bulk(b, digits, n);
}

void resp_add_null(struct tbuf *b, int proto)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    tbuf_append(b, proto == 3 ? "_\r\n" : "$-1\r\n", proto == 3 ? 3 : 5);
}

void resp_add_null_array(struct tbuf *b, int proto)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    tbuf_append(b, proto == 3 ? "_\r\n" : "*-1\r\n", proto == 3 ? 3 : 5);
}

void resp_add_array_len(struct tbuf *b, long long n)
{
    resp__add_header(b, '*', n);
}

void resp_add_map_len(struct tbuf *b, int proto, long long n)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    TRIAD_ASSERT(n >= 0);
    if (proto == 3)
        resp__add_header(b, '%', n);
    else
        resp__add_header(b, '*', n * 2);
}

void resp_add_set_len(struct tbuf *b, int proto, long long n)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    resp__add_header(b, proto == 3 ? '~' : '*', n);
}

void resp_add_double(struct tbuf *b, int proto, double d)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    char txt[64];
    int n;
    /* spelled out: libcs disagree on how printf writes infinity */
    if (isinf(d))
        n = snprintf(txt, sizeof(txt), "%s", d > 0 ? "inf" : "-inf");
    else
        n = snprintf(txt, sizeof(txt), "%.17g", d);
    TRIAD_ASSERT(n > 0 && (size_t)n < sizeof(txt));
    if (proto == 3) {
        tbuf_reserve(b, (size_t)n + 3);
        b->data[b->len++] = ',';
        memcpy(b->data + b->len, txt, (size_t)n);
        b->len += (size_t)n;
        b->data[b->len++] = '\r';
        b->data[b->len++] = '\n';
    } else {
        resp_add_bulk(b, txt, (size_t)n);
    }
}

void resp_add_bool(struct tbuf *b, int proto, bool v)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    if (proto == 3)
        tbuf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    else
        tbuf_append(b, v ? ":1\r\n" : ":0\r\n", 4);
}

void resp_add_verbatim(struct tbuf *b, int proto, const char *p, size_t n)
{
    TRIAD_ASSERT(proto == 2 || proto == 3);
    if (proto == 2) {
        resp_add_bulk(b, p, n);
        return;
    }
    /* `=<len>\r\ntxt:<bytes>\r\n`, len counting the "txt:" prefix */
    resp__add_header(b, '=', (long long)n + 4);
    tbuf_reserve(b, n + 6);
    memcpy(b->data + b->len, "txt:", 4);
    b->len += 4;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

int resp_format_long_double(char *dst, size_t size, long double v)
{
    TRIAD_ASSERT(dst != NULL);
    TRIAD_ASSERT(size > 0);
    int len;

    if (isinf(v)) {
        if (size < 5)
            goto err_no_room;
        len = snprintf(dst, size, "%s", v > 0 ? "inf" : "-inf");
        return len;
    }
    /* 17 digits: with 80- or 128-bit long doubles, small decimal numbers a
     * user typed come back exactly as typed once trailing zeros are cut */
    len = snprintf(dst, size, "%.17Lf", v);
    if (len < 0 || (size_t)len + 1 > size)
        goto err_no_room;
    if (memchr(dst, '.', (size_t)len) != NULL) {
        while (dst[len - 1] == '0')
            len--;
        if (dst[len - 1] == '.')
            len--;
    }
    if (len == 2 && dst[0] == '-' && dst[1] == '0') {
        dst[0] = '0';
        len = 1;
    }
    dst[len] = '\0';
    return len;

err_no_room:
    dst[0] = '\0';
    return 0;
}

/* ---- lookahead ---- */

/* A `<type><integer>\r\n` line at buf[*pos]; moves *pos past it. */
static bool resp__peek_line(const char *buf, size_t len, size_t *pos, char type, long long *n)
{
    size_t p = *pos;
    if (p >= len || buf[p] != type)
        return false;
    /* a length line is short: 1 type byte, at most 20 digits and a sign */
    const char *cr = memchr(buf + p, '\r', TRIAD_MIN(len - p, (size_t)24));
    if (cr == NULL || (size_t)(cr - buf) + 2 > len)
        return false;
    if (!resp__str2ll(buf + p + 1, (size_t)(cr - buf) - p - 1, n))
        return false;
    *pos = (size_t)(cr - buf) + 2;
    return true;
}

size_t resp_peek_keys(const char *buf, size_t len, struct resp_key *keys, size_t max,
                      size_t *scanned)
{
    size_t pos = 0, found = 0;
    *scanned = 0;
    while (found < max) {
        long long argc;
        if (!resp__peek_line(buf, len, &pos, '*', &argc) || argc < 1 || argc > RESP_MULTIBULK_MAX)
            break;
        struct resp_key key = {NULL, 0};
        long long i;
        for (i = 0; i < argc; i++) {
            long long blen;
            if (!resp__peek_line(buf, len, &pos, '$', &blen) || blen < 0 ||
                (unsigned long long)blen > len - pos || len - pos - (size_t)blen < 2)
                break;
            if (i == 1)
                key = (struct resp_key){buf + pos, (size_t)blen};
            pos += (size_t)blen + 2;
        }
        if (i < argc)
            break;
        keys[found++] = key;
        *scanned = pos;
    }
    return found;
}
