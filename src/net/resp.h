/* resp.h - the Redis protocol: an incremental request parser and a reply
 * writer for RESP2 and RESP3.
 *
 * Pure code: no I/O, no libuv. The session layer feeds the parser whatever
 * bytes arrived; the parser keeps its own state between calls, so a frame
 * may be split at any byte.
 *
 * Requests are either multibulk (`*<n>\r\n$<len>\r\n<bytes>\r\n...`) or
 * inline (`SET k v\r\n`, as typed in telnet; double and single quotes and
 * escapes as redis-cli and Redis's sdssplitargs understand them).
 */
#ifndef TRIAD_RESP_H
#define TRIAD_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"

/* Redis's limits and defaults. */
#define RESP_PROTO_MAX_BULK_LEN_DEFAULT (512ll * 1024 * 1024)
#define RESP_MULTIBULK_MAX (1024 * 1024)    /* elements in one request */
#define RESP_INLINE_MAX (64 * 1024)         /* PROTO_INLINE_MAX_SIZE */
#define RESP_QUERYBUF_MAX_DEFAULT (1024ll * 1024 * 1024) /* client-query-buffer-limit */
/* Redis 7.0's limits while the client still has to authenticate
 * (networking.c processMultibulkBuffer): a client that has not given the
 * password cannot make us hold more than a few small arguments. Inline
 * requests have only RESP_INLINE_MAX, as in Redis. */
#define RESP_UNAUTH_MULTIBULK_MAX 10
#define RESP_UNAUTH_BULK_LEN_MAX 16384

enum resp_state {
    RESP_ST_START = 0,   /* waiting for the first byte of a request */
    RESP_ST_MB_ELEMENT,  /* inside a multibulk: waiting for `$<len>\r\n` */
    RESP_ST_MB_BULK,     /* inside a multibulk: waiting for <len> bytes + CRLF */
};

struct resp_parser {
    /* settings (set before use; resp_parser_init gives Redis's defaults) */
    long long proto_max_bulk_len;
    /* Redis's authRequired(): a password is set and the client has not
     * given it. While true, multibulk counts above RESP_UNAUTH_MULTIBULK_MAX
     * and bulk lengths above RESP_UNAUTH_BULK_LEN_MAX are protocol errors.
     * false after resp_parser_init; the session layer keeps it current. */
    bool auth_required;

    /* the command being assembled; valid after resp_parse returns a command
     * and until the next call to resp_parse or resp_parser_reset */
    int argc;
    char **argv;        /* argv[i] points into `arena`, NUL-terminated */
    size_t *argvlen;
    int argv_cap;

    /* private */
    enum resp_state state;
    long long multibulk_len; /* elements still expected */
    long long bulk_len;      /* bytes expected for the current bulk */
    struct tbuf arena;       /* argument bytes of the current command */
    size_t *arg_off;         /* offsets into arena while assembling */
    char errmsg[128];        /* "Protocol error: ..." after TRIAD_EPROTO */
};

void resp_parser_init(struct resp_parser *p);
void resp_parser_free(struct resp_parser *p);
/* forget any partial command (used by RESET and after errors) */
void resp_parser_reset(struct resp_parser *p);

/* Parse at most one request from buf[0..len).
 *
 * Sets *consumed to the bytes the parser has taken (always, on every return
 * code; the caller drops them from its query buffer - the parser has copied
 * what it needs). Returns:
 *   0             a complete command is in p->argc / p->argv / p->argvlen.
 *                 argc may be 0 (an empty inline line or `*0\r\n`): the
 *                 caller ignores it, as Redis does.
 *   TRIAD_EAGAIN  need more bytes; call again when they arrive.
 *   TRIAD_EPROTO  malformed input; p->errmsg holds Redis's text without the
 *                 leading "ERR ", e.g. "Protocol error: invalid bulk length",
 *                 never with a CR or LF (a client's one quoted in it is a
 *                 space, as in Redis).
 *                 The caller replies -ERR <errmsg> and closes the connection.
 * `resp_parse_hint` then says how many more bytes the current frame needs at
 * least (to size the read buffer for a large bulk); 0 when unknown.
 */
int resp_parse(struct resp_parser *p, const char *buf, size_t len, size_t *consumed);
size_t resp_parse_hint(const struct resp_parser *p);

/* Lookahead, for prefetching: the complete multibulk requests at the start
 * of buf[0..len), at most `max` of them. keys[i] is the second element of
 * request i (the key, for most commands), or {NULL, 0} if it has only one.
 * Returns how many requests were found and sets *scanned to the bytes they
 * span. An inline request, a malformed one or an incomplete one ends the
 * scan: it is the parser's to judge. Nothing is copied; keys point into buf.
 * resp_parser_idle says whether the parser is between requests, so that
 * buf starts with one. */
struct resp_key {
    const char *ptr;
    size_t len;
};
size_t resp_peek_keys(const char *buf, size_t len, struct resp_key *keys, size_t max,
                      size_t *scanned);
bool resp_parser_idle(const struct resp_parser *p);

/* ---- replies ----
 * Each function appends one RESP value to `b`. `proto` is 2 or 3; where the
 * two protocols differ the function writes the right form:
 *   null bulk   RESP2 `$-1`   RESP3 `_`
 *   null array  RESP2 `*-1`   RESP3 `_`
 *   map         RESP2 array of 2n   RESP3 `%n`
 *   set         RESP2 array   RESP3 `~n`
 *   double      RESP2 bulk string   RESP3 `,`
 *   boolean     RESP2 integer 0/1   RESP3 `#t`/`#f`
 *   verbatim    RESP2 bulk string   RESP3 `=<len>\r\ntxt:...`
 */
void resp_add_simple(struct tbuf *b, const char *s);              /* +s */
void resp_add_simple_len(struct tbuf *b, const char *s, size_t n);
/* `msg` is the whole error text, e.g. "ERR syntax error" or "WRONGTYPE ...";
 * CR and LF in it are replaced by spaces, as Redis does */
void resp_add_error(struct tbuf *b, const char *msg);
void resp_add_errorf(struct tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_add_int(struct tbuf *b, long long v);                   /* :v */
void resp_add_bulk(struct tbuf *b, const void *p, size_t n);       /* $n */
void resp_add_bulk_str(struct tbuf *b, const char *s);
void resp_add_bulk_ll(struct tbuf *b, long long v);               /* integer as a bulk */
void resp_add_null(struct tbuf *b, int proto);
void resp_add_null_array(struct tbuf *b, int proto);
void resp_add_array_len(struct tbuf *b, long long n);             /* *n */
void resp_add_map_len(struct tbuf *b, int proto, long long n);    /* n pairs */
void resp_add_set_len(struct tbuf *b, int proto, long long n);
void resp_add_double(struct tbuf *b, int proto, double d);        /* %.17g like Redis */
void resp_add_bool(struct tbuf *b, int proto, bool v);
void resp_add_verbatim(struct tbuf *b, int proto, const char *p, size_t n); /* txt */

/* Format a long double as Redis's INCRBYFLOAT does (humanfriendly: %.17Lf
 * with trailing zeros and a trailing point removed). Writes at most
 * `size`-1 bytes plus NUL into dst; returns the length. */
int resp_format_long_double(char *dst, size_t size, long double v);

#endif
