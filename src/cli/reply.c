/* reply.c - the client's RESP2/RESP3 reply parser and redis-cli's two output
 * formats.
 *
 * The parser is incremental: each scalar is parsed once, as soon as all its
 * bytes are in the buffer, and aggregates still being filled wait on an
 * explicit stack. A reply that arrives a byte at a time therefore costs the
 * same as one that arrives whole (no re-parsing from the start).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/defs.h"
#include "../common/mem.h"
#include "cli_int.h"

/* Elements reserved up front for an aggregate; more are added as they
 * arrive, so a server announcing 2^32 elements cannot make us allocate them
 * before sending them. */
#define CLI_REPLY_PREALLOC_MAX 1024

void cli_reply_parser_init(struct cli_reply_parser *p)
{
    p->depth = 0;
    p->errmsg[0] = '\0';
}

void cli_reply_free(struct cli_reply *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->elements; i++)
        cli_reply_free(r->element[i]);
    tfree(r->element);
    tfree(r->str);
    tfree(r);
}

void cli_reply_parser_reset(struct cli_reply_parser *p)
{
    /* an aggregate joins its parent only once complete, so each frame
     * still owns its own */
    for (int i = 0; i < p->depth; i++)
        cli_reply_free(p->stack[i].agg);
    p->depth = 0;
    p->errmsg[0] = '\0';
}

static struct cli_reply *reply_new(enum cli_reply_type type)
{
    struct cli_reply *r = tcalloc(1, sizeof(*r));
    r->type = type;
    return r;
}

static void reply_set_str(struct cli_reply *r, const char *s, size_t len)
{
    r->str = tmalloc(len + 1);
    memcpy(r->str, s, len);
    r->str[len] = '\0';
    r->len = len;
}

static void reply_append(struct cli_reply *agg, struct cli_reply *item)
{
    if (agg->elements == agg->element_cap) {
        size_t cap = agg->element_cap ? agg->element_cap * 2 : 4;
        agg->element = trealloc(agg->element, cap * sizeof(*agg->element));
        agg->element_cap = cap;
    }
    agg->element[agg->elements++] = item;
}

/* Parses a whole line as a signed 64-bit decimal integer. */
static int parse_ll(const char *s, size_t len, long long *out)
{
    char tmp[32];

    if (len == 0 || len >= sizeof(tmp))
        return TRIAD_EPROTO;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || end == tmp)
        return TRIAD_EPROTO;
    *out = v;
    return 0;
}

static int proto_error(struct cli_reply_parser *p, const char *what)
{
    snprintf(p->errmsg, sizeof(p->errmsg), "Protocol error, %s", what);
    return TRIAD_EPROTO;
}

/* Parses the item at the start of `in`. Returns 0 with *item set when a
 * whole scalar (or an empty aggregate) was consumed; 0 with *item NULL when
 * an aggregate header was consumed and a frame pushed; TRIAD_EAGAIN if the
 * item's bytes are not all here yet (nothing consumed). */
static int parse_one(struct cli_reply_parser *p, struct tbuf *in, struct cli_reply **item)
{
    *item = NULL;
    if (in->len < 1)
        return TRIAD_EAGAIN;
    const char *d = in->data;
    char type = d[0];
    const char *cr = memchr(d + 1, '\r', in->len - 1);
    if (cr == NULL || (size_t)(cr - d) + 1 >= in->len) {
        if (in->len > CLI_REPLY_LINE_LEN_MAX)
            return proto_error(p, "too big inline reply");
        return TRIAD_EAGAIN;
    }
    if (cr[1] != '\n')
        return proto_error(p, "expected \\r\\n after a reply line");
    const char *line = d + 1;
    size_t line_len = (size_t)(cr - line);
    size_t used = line_len + 3; /* type byte, line, CRLF */
    long long n;
    struct cli_reply *r = NULL;

    switch (type) {
    case '+':
    case '-':
        r = reply_new(type == '+' ? CLI_REPLY_STATUS : CLI_REPLY_ERROR);
        reply_set_str(r, line, line_len);
        break;
    case ':':
        if (parse_ll(line, line_len, &n) != 0)
            return proto_error(p, "bad integer reply");
        r = reply_new(CLI_REPLY_INTEGER);
        r->integer = n;
        break;
    case ',':
    case '(':
        if (line_len == 0)
            return proto_error(p, "empty number reply");
        r = reply_new(type == ',' ? CLI_REPLY_DOUBLE : CLI_REPLY_BIGNUM);
        reply_set_str(r, line, line_len);
        break;
    case '#':
        if (line_len != 1 || (line[0] != 't' && line[0] != 'f'))
            return proto_error(p, "bad boolean reply");
        r = reply_new(CLI_REPLY_BOOL);
        r->integer = line[0] == 't';
        break;
    case '_':
        if (line_len != 0)
            return proto_error(p, "bad null reply");
        r = reply_new(CLI_REPLY_NIL);
        break;
    case '$':
    case '!':
    case '=':
        if (parse_ll(line, line_len, &n) != 0)
            return proto_error(p, "bad bulk length");
        if (n == -1 && type == '$') {
            r = reply_new(CLI_REPLY_NIL);
            break;
        }
        if (n < 0 || n > CLI_REPLY_BULK_LEN_MAX)
            return proto_error(p, "invalid bulk length");
        if (in->len - used < (size_t)n + 2)
            return TRIAD_EAGAIN;
        if (d[used + (size_t)n] != '\r' || d[used + (size_t)n + 1] != '\n')
            return proto_error(p, "bulk not followed by \\r\\n");
        if (type == '=') {
            /* "txt:" then the text; redis-cli shows the text only */
            if (n < 4 || d[used + 3] != ':')
                return proto_error(p, "bad verbatim string");
            r = reply_new(CLI_REPLY_VERB);
            memcpy(r->verb_format, d + used, 3);
            r->verb_format[3] = '\0';
            reply_set_str(r, d + used + 4, (size_t)n - 4);
        } else {
            r = reply_new(type == '$' ? CLI_REPLY_STRING : CLI_REPLY_ERROR);
            reply_set_str(r, d + used, (size_t)n);
        }
        used += (size_t)n + 2;
        break;
    case '*':
    case '%':
    case '~':
    case '>':
    case '|': {
        if (parse_ll(line, line_len, &n) != 0)
            return proto_error(p, "bad aggregate length");
        if (n == -1 && type == '*') {
            r = reply_new(CLI_REPLY_NIL);
            break;
        }
        if (n < 0 || n > CLI_REPLY_AGG_LEN_MAX)
            return proto_error(p, "invalid aggregate length");
        enum cli_reply_type t = type == '*'   ? CLI_REPLY_ARRAY
                                : type == '~' ? CLI_REPLY_SET
                                : type == '>' ? CLI_REPLY_PUSH
                                              : CLI_REPLY_MAP; /* '%' and '|' */
        long long want = (t == CLI_REPLY_MAP) ? n * 2 : n;
        r = reply_new(t);
        if (want == 0) {
            if (type == '|') {
                /* an empty attribute: nothing to show, nothing to wait for */
                cli_reply_free(r);
                tbuf_consume(in, used);
                return 0;
            }
            break;
        }
        if (p->depth == CLI_REPLY_DEPTH_MAX) {
            cli_reply_free(r);
            return proto_error(p, "reply nested too deeply");
        }
        size_t prealloc = (size_t)TRIAD_MIN(want, (long long)CLI_REPLY_PREALLOC_MAX);
        r->element = tmalloc(prealloc * sizeof(*r->element));
        r->element_cap = prealloc;
        p->stack[p->depth].agg = r;
        p->stack[p->depth].want = want;
        p->stack[p->depth].is_attr = type == '|';
        p->depth++;
        tbuf_consume(in, used);
        return 0; /* *item stays NULL: the aggregate is not complete */
    }
    default: {
        char what[64];
        snprintf(what, sizeof(what), "got \"%c\" as reply type byte", type);
        return proto_error(p, what);
    }
    }
    tbuf_consume(in, used);
    *item = r;
    return 0;
}

int cli_reply_parse(struct cli_reply_parser *p, struct tbuf *in, struct cli_reply **out)
{
    *out = NULL;
    for (;;) {
        struct cli_reply *item;
        int rc = parse_one(p, in, &item);
        if (rc != 0)
            return rc;
        /* Attach the finished item to its parent; finishing the parent's
         * last slot finishes the parent, and so on up the stack. */
        while (item != NULL) {
            if (p->depth == 0) {
                *out = item;
                return 0;
            }
            struct cli_reply_frame *f = &p->stack[p->depth - 1];
            TRIAD_ASSERT(f->want > 0);
            reply_append(f->agg, item);
            f->want--;
            if (f->want > 0)
                break;
            p->depth--;
            item = f->agg;
            f->agg = NULL;
            if (f->is_attr) {
                /* attributes describe the next item; redis-cli drops them */
                cli_reply_free(item);
                item = NULL;
            }
        }
    }
}

/* ---- output ----------------------------------------------------------- */

void cli_repr(struct tbuf *out, const char *s, size_t len)
{
    tbuf_appendc(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '\\':
            tbuf_append(out, "\\\\", 2);
            break;
        case '"':
            tbuf_append(out, "\\\"", 2);
            break;
        case '\n':
            tbuf_append(out, "\\n", 2);
            break;
        case '\r':
            tbuf_append(out, "\\r", 2);
            break;
        case '\t':
            tbuf_append(out, "\\t", 2);
            break;
        case '\a':
            tbuf_append(out, "\\a", 2);
            break;
        case '\b':
            tbuf_append(out, "\\b", 2);
            break;
        default:
            /* printable ASCII only, whatever the locale says: UTF-8 text is
             * shown byte by byte, as redis-cli does */
            if (c >= 0x20 && c < 0x7f)
                tbuf_appendc(out, (char)c);
            else
                tbuf_appendf(out, "\\x%02x", c);
        }
    }
    tbuf_appendc(out, '"');
}

static const char *empty_text(enum cli_reply_type t)
{
    switch (t) {
    case CLI_REPLY_MAP:
        return "(empty hash)\n";
    case CLI_REPLY_SET:
        return "(empty set)\n";
    case CLI_REPLY_PUSH:
        return "(empty push)\n";
    default:
        return "(empty array)\n";
    }
}

/* true if text (ending in '\n') has more than one line */
static int is_multiline(const char *s, size_t len)
{
    const char *nl = len ? memchr(s, '\n', len) : NULL;
    return nl != NULL && (size_t)(nl - s) + 1 < len;
}

static void format_aggregate_tty(struct tbuf *out, const struct cli_reply *r, const char *prefix)
{
    if (r->elements == 0) {
        tbuf_appends(out, empty_text(r->type));
        return;
    }
    int is_map = r->type == CLI_REPLY_MAP;
    size_t count = is_map ? r->elements / 2 : r->elements;
    int idx_width = 0;
    for (size_t c = count; c > 0 || idx_width == 0; c /= 10)
        idx_width++;
    char sep = r->type == CLI_REPLY_SET ? '~' : is_map ? '#' : ')';

    /* nested lines line up under the first element's text */
    size_t prefix_len = strlen(prefix);
    char *child_prefix = tmalloc(prefix_len + (size_t)idx_width + 3);
    memcpy(child_prefix, prefix, prefix_len);
    memset(child_prefix + prefix_len, ' ', (size_t)idx_width + 2);
    child_prefix[prefix_len + (size_t)idx_width + 2] = '\0';

    struct tbuf tmp = {0};
    for (size_t i = 0; i < r->elements; i++) {
        size_t human = (is_map ? i / 2 : i) + 1;
        /* the first element goes on the line the parent already started */
        tbuf_appendf(out, "%s%*zu%c ", i == 0 ? "" : prefix, idx_width, human, sep);
        cli_reply_format_tty(out, r->element[i], child_prefix);
        if (!is_map)
            continue;
        i++;
        if (out->len > 0 && out->data[out->len - 1] == '\n')
            out->len--;
        tbuf_appends(out, " => ");
        tbuf_reset(&tmp);
        cli_reply_format_tty(&tmp, r->element[i], child_prefix);
        /* a value of several lines starts on its own line, all of it
         * indented, so its items line up (as redis-cli 7 shows them) */
        if (is_multiline(tmp.data, tmp.len)) {
            tbuf_appendc(out, '\n');
            tbuf_appends(out, child_prefix);
        }
        tbuf_append(out, tmp.data, tmp.len);
    }
    tbuf_free(&tmp);
    tfree(child_prefix);
}

void cli_reply_format_tty(struct tbuf *out, const struct cli_reply *r, const char *prefix)
{
    switch (r->type) {
    case CLI_REPLY_STATUS:
        tbuf_append(out, r->str, r->len);
        tbuf_appendc(out, '\n');
        break;
    case CLI_REPLY_ERROR:
        tbuf_appends(out, "(error) ");
        tbuf_append(out, r->str, r->len);
        tbuf_appendc(out, '\n');
        break;
    case CLI_REPLY_INTEGER:
        tbuf_appendf(out, "(integer) %lld\n", r->integer);
        break;
    case CLI_REPLY_DOUBLE:
        tbuf_appendf(out, "(double) %s\n", r->str);
        break;
    case CLI_REPLY_BIGNUM:
        tbuf_appendf(out, "(big number) %s\n", r->str);
        break;
    case CLI_REPLY_STRING:
        cli_repr(out, r->str, r->len);
        tbuf_appendc(out, '\n');
        break;
    case CLI_REPLY_VERB:
        /* verbatim text is meant to be shown as it is */
        tbuf_append(out, r->str, r->len);
        tbuf_appendc(out, '\n');
        break;
    case CLI_REPLY_NIL:
        tbuf_appends(out, "(nil)\n");
        break;
    case CLI_REPLY_BOOL:
        tbuf_appends(out, r->integer ? "(true)\n" : "(false)\n");
        break;
    case CLI_REPLY_ARRAY:
    case CLI_REPLY_MAP:
    case CLI_REPLY_SET:
    case CLI_REPLY_PUSH:
        format_aggregate_tty(out, r, prefix);
        break;
    }
}

void cli_reply_format_raw(struct tbuf *out, const struct cli_reply *r, const char *mb_delim)
{
    switch (r->type) {
    case CLI_REPLY_NIL:
        break;
    case CLI_REPLY_ERROR:
        tbuf_append(out, r->str, r->len);
        tbuf_appendc(out, '\n');
        break;
    case CLI_REPLY_STATUS:
    case CLI_REPLY_STRING:
    case CLI_REPLY_VERB:
    case CLI_REPLY_DOUBLE:
    case CLI_REPLY_BIGNUM:
        tbuf_append(out, r->str, r->len);
        break;
    case CLI_REPLY_BOOL:
        tbuf_appends(out, r->integer ? "(true)" : "(false)");
        break;
    case CLI_REPLY_INTEGER:
        tbuf_appendf(out, "%lld", r->integer);
        break;
    case CLI_REPLY_ARRAY:
    case CLI_REPLY_SET:
    case CLI_REPLY_PUSH:
        for (size_t i = 0; i < r->elements; i++) {
            if (i > 0)
                tbuf_appends(out, mb_delim);
            cli_reply_format_raw(out, r->element[i], mb_delim);
        }
        break;
    case CLI_REPLY_MAP:
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            if (i > 0)
                tbuf_appends(out, mb_delim);
            cli_reply_format_raw(out, r->element[i], mb_delim);
            tbuf_appendc(out, ' ');
            cli_reply_format_raw(out, r->element[i + 1], mb_delim);
        }
        break;
    }
}
