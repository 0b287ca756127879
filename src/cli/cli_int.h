/* cli_int.h - internals of `triad cli` shared by the files of src/cli/.
 *
 * reply.c  an incremental RESP2/RESP3 reply parser and redis-cli's two output
 *          formats (the quoted, numbered one for a terminal; --raw).
 * hints.c  the table of the commands Triad serves with their argument syntax,
 *          for hints, TAB completion and `help`.
 * split.c  splitting a typed line into arguments, with redis-cli's quoting.
 * cli.c    options, the connection, one-shot, stdin and interactive modes.
 *
 * Nothing here includes <uv.h>: the client uses plain blocking sockets.
 */
#ifndef TRIAD_CLI_INT_H
#define TRIAD_CLI_INT_H

#include <stddef.h>

#include "../common/buf.h"

/* ---- replies ---------------------------------------------------------- */

enum cli_reply_type {
    CLI_REPLY_STATUS = 1, /* +OK */
    CLI_REPLY_ERROR,      /* -ERR ..., and RESP3's blob error '!' */
    CLI_REPLY_INTEGER,    /* :5 */
    CLI_REPLY_STRING,     /* $3 ... */
    CLI_REPLY_NIL,        /* $-1, *-1, and RESP3's '_' */
    CLI_REPLY_ARRAY,      /* *N */
    CLI_REPLY_DOUBLE,     /* ,1.5 (str holds the server's text) */
    CLI_REPLY_BOOL,       /* #t / #f (integer is 1 / 0) */
    CLI_REPLY_BIGNUM,     /* (1234... (str holds the digits) */
    CLI_REPLY_VERB,       /* =N txt:... (str is the text without "txt:") */
    CLI_REPLY_MAP,        /* %N: elements holds 2N items, key then value */
    CLI_REPLY_SET,        /* ~N */
    CLI_REPLY_PUSH,       /* >N: out-of-band data, not the command's reply */
};

/* A parsed reply. It owns str (NUL-terminated after len bytes) and every
 * element; free it with cli_reply_free. */
struct cli_reply {
    enum cli_reply_type type;
    long long integer;
    char *str;
    size_t len;
    struct cli_reply **element;
    size_t elements;
    size_t element_cap;
    char verb_format[4]; /* "txt", "mkd" for CLI_REPLY_VERB */
};

/* Limits on what a server may send us: a bad or hostile server makes the
 * parser fail with TRIAD_EPROTO instead of exhausting memory. */
#define CLI_REPLY_BULK_LEN_MAX (512LL * 1024 * 1024) /* proto-max-bulk-len */
#define CLI_REPLY_AGG_LEN_MAX (1LL << 32)            /* elements of one aggregate */
#define CLI_REPLY_LINE_LEN_MAX (64 * 1024)           /* a +, -, :, ... line */
#define CLI_REPLY_DEPTH_MAX 128                      /* nesting of aggregates */

/* One frame on the stack of aggregates still being filled. Attributes ('|')
 * are parsed like maps and then dropped: redis-cli does not show them. */
struct cli_reply_frame {
    struct cli_reply *agg;
    long long want; /* items still expected (a map counts 2 per entry) */
    int is_attr;
};

struct cli_reply_parser {
    struct cli_reply_frame stack[CLI_REPLY_DEPTH_MAX];
    int depth;
    char errmsg[128];
};

void cli_reply_parser_init(struct cli_reply_parser *p);
/* Frees any half-built reply; the parser can be reused after init. */
void cli_reply_parser_reset(struct cli_reply_parser *p);
/* Parses from in->data, consuming (tbuf_consume) what it used. Returns 0 and
 * sets *out (owned by the caller) when a whole reply is parsed, TRIAD_EAGAIN
 * when it needs more bytes (partial state is kept: feed more and call again),
 * TRIAD_EPROTO on bad bytes (p->errmsg says why; the connection is unusable). */
int cli_reply_parse(struct cli_reply_parser *p, struct tbuf *in, struct cli_reply **out);
void cli_reply_free(struct cli_reply *r);

/* Appends r as redis-cli shows it on a terminal ("(integer) 5", "\"v\"",
 * "1) ..."); every line ends with '\n'. prefix indents nested lines. */
void cli_reply_format_tty(struct tbuf *out, const struct cli_reply *r, const char *prefix);
/* Appends r as redis-cli --raw does, items separated by mb_delim, with no
 * final delimiter (the caller adds the command delimiter). */
void cli_reply_format_raw(struct tbuf *out, const struct cli_reply *r, const char *mb_delim);
/* Appends s quoted the way redis-cli shows a bulk string: "a\x00\n". */
void cli_repr(struct tbuf *out, const char *s, size_t len);

/* ---- command table ---------------------------------------------------- */

struct cli_cmd_help {
    const char *name;   /* upper case, may be two words: "CONFIG GET" */
    const char *params; /* argument syntax, "" when it takes none */
    const char *summary;
};

extern const struct cli_cmd_help cli_cmd_table[];
extern const size_t cli_cmd_table_len;

/* The entry for argv (matching a two-word name like "CONFIG GET" first), or
 * NULL. *words_out is how many of argv the name took (1 or 2). */
const struct cli_cmd_help *cli_cmd_lookup(int argc, char **argv, int *words_out);
/* The hint to show after the text typed so far (the remaining argument
 * syntax), written to out; returns 0 if there is one, -1 if not. */
int cli_hint_for_line(const char *line, struct tbuf *out);

/* ---- splitting typed lines -------------------------------------------- */

/* Limit on arguments in one typed line. */
#define CLI_SPLIT_ARGS_MAX (1024 * 1024)

/* Splits line into arguments with redis-cli's quoting ("a\x41\n", 'it\'s').
 * On success *argv_out is an array of *argc_out strings and *lens_out their
 * lengths (arguments may hold NUL bytes); free with cli_split_free.
 * Returns TRIAD_EINVAL for unbalanced quotes. */
int cli_split_line(const char *line, int *argc_out, char ***argv_out, size_t **lens_out);
void cli_split_free(int argc, char **argv, size_t *lens);

#endif
