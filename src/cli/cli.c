/* cli.c - `triad cli`: a Redis-compatible command-line client.
 *
 * Three modes, chosen as redis-cli chooses them:
 *   one-shot     `triad cli SET k v`: run the command (-r times), print, exit;
 *   stdin        no command and stdin is not a terminal: one command a line;
 *   interactive  no command and stdin is a terminal: libedit line editing,
 *                history, hints and TAB completion of command names.
 * Replies are shown as redis-cli shows them: quoted and numbered when stdout
 * is a terminal (or --no-raw), plain (--raw style) otherwise.
 *
 * The client is a plain blocking-socket program: one request, one reply.
 */
#include <errno.h>
#include <histedit.h>
#include <limits.h>
#include <locale.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include "../common/buf.h"
#include "../common/defs.h"
#include "../common/mem.h"
#include "cli.h"
#include "cli_int.h"

#define CLI_PORT_DEFAULT 7379
#define CLI_READ_CHUNK_SIZE (64 * 1024)
/* what -x reads from stdin, and one line read in stdin mode */
#define CLI_STDIN_ARG_LEN_MAX (512LL * 1024 * 1024)
#define CLI_HISTORY_LEN_MAX 1000
#define CLI_PROMPT_LEN_MAX 256

struct cli_config {
    char *host;
    int port;
    char *user;
    char *pass;
    int db;
    int resp3;
    long long repeat;  /* -r; -1 is forever */
    double interval_s; /* -i */
    int output_raw;    /* 1: --raw style, 0: the terminal style */
    int stdin_last_arg;
    int exit_on_error; /* -e */
    int no_auth_warning;
    const char *mb_delim;  /* -D: between items of an aggregate in raw mode */
    const char *cmd_delim; /* -d: after each reply in raw mode */
    int interactive;
};

struct cli_conn {
    int fd; /* -1 when not connected */
    struct tbuf in;
    struct cli_reply_parser parser;
    int db_now; /* the database the connection has selected */
};

static struct cli_config cfg;
static struct cli_conn conn = {.fd = -1};
static int saw_error_reply;

/* ---- the connection --------------------------------------------------- */

static void conn_close(void)
{
    if (conn.fd >= 0)
        close(conn.fd);
    conn.fd = -1;
    tbuf_free(&conn.in);
    cli_reply_parser_reset(&conn.parser);
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TRIAD_EIO;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends one command; on failure errmsg says why and the caller closes. */
/* the last request was written whole (so a closed connection after it is
 * the server's answer, not a failure to send) */
static int conn_sent_ok;

static int conn_send(int argc, char **argv, const size_t *lens, char *errmsg, size_t errmsg_size)
{
    struct tbuf req = {0};
    tbuf_appendf(&req, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        tbuf_appendf(&req, "$%zu\r\n", lens[i]);
        tbuf_append(&req, argv[i], lens[i]);
        tbuf_append(&req, "\r\n", 2);
    }
    int rc = write_all(conn.fd, req.data, req.len);
    if (rc != 0)
        snprintf(errmsg, errmsg_size, "%s", strerror(errno));
    conn_sent_ok = rc == 0;
    tbuf_free(&req);
    return rc;
}

/* Reads one reply (pushes included; the caller sorts them out). */
static int conn_read_reply(struct cli_reply **out, char *errmsg, size_t errmsg_size)
{
    for (;;) {
        int rc = cli_reply_parse(&conn.parser, &conn.in, out);
        if (rc == 0)
            return 0;
        if (rc != TRIAD_EAGAIN) {
            snprintf(errmsg, errmsg_size, "%s", conn.parser.errmsg);
            return rc;
        }
        tbuf_reserve(&conn.in, CLI_READ_CHUNK_SIZE);
        ssize_t n = recv(conn.fd, conn.in.data + conn.in.len, CLI_READ_CHUNK_SIZE, 0);
        if (n == 0) {
            snprintf(errmsg, errmsg_size, "Server closed the connection");
            return TRIAD_EIO;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            snprintf(errmsg, errmsg_size, "%s", strerror(errno));
            return TRIAD_EIO;
        }
        conn.in.len += (size_t)n;
    }
}

/* Sends argv and reads its reply, skipping (and returning nothing for)
 * out-of-band pushes, which are printed through show_push when set. */
static int conn_call(int argc, char **argv, const size_t *lens, struct cli_reply **out,
                     void (*show_push)(const struct cli_reply *), char *errmsg, size_t errmsg_size)
{
    int rc = conn_send(argc, argv, lens, errmsg, errmsg_size);
    if (rc != 0)
        return rc;
    for (;;) {
        rc = conn_read_reply(out, errmsg, errmsg_size);
        if (rc != 0)
            return rc;
        if ((*out)->type != CLI_REPLY_PUSH)
            return 0;
        if (show_push != NULL)
            show_push(*out);
        cli_reply_free(*out);
        *out = NULL;
    }
}

/* A command built from C strings, for the client's own AUTH/SELECT/HELLO. */
static int conn_call_simple(struct cli_reply **out, char *errmsg, size_t errmsg_size, int argc, ...)
{
    char *argv[8];
    size_t lens[8];
    va_list ap;

    TRIAD_ASSERT(argc > 0 && argc <= 8);
    va_start(ap, argc);
    for (int i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, char *);
        lens[i] = strlen(argv[i]);
    }
    va_end(ap);
    return conn_call(argc, argv, lens, out, NULL, errmsg, errmsg_size);
}

/* AUTH, SELECT and HELLO 3 as the options ask, in redis-cli's order.
 * A refused one is reported and the session goes on, as in redis-cli. */
static int conn_setup(void)
{
    char errmsg[256];
    struct cli_reply *r = NULL;
    int rc;

    if (cfg.pass != NULL) {
        if (cfg.user != NULL)
            rc = conn_call_simple(&r, errmsg, sizeof(errmsg), 3, "AUTH", cfg.user, cfg.pass);
        else
            rc = conn_call_simple(&r, errmsg, sizeof(errmsg), 2, "AUTH", cfg.pass);
        if (rc != 0)
            goto err_io;
        if (r->type == CLI_REPLY_ERROR)
            fprintf(stderr, "AUTH failed: %s\n", r->str);
        cli_reply_free(r);
    }
    conn.db_now = 0;
    if (cfg.db != 0) {
        char db[32];
        snprintf(db, sizeof(db), "%d", cfg.db);
        rc = conn_call_simple(&r, errmsg, sizeof(errmsg), 2, "SELECT", db);
        if (rc != 0)
            goto err_io;
        if (r->type == CLI_REPLY_ERROR)
            fprintf(stderr, "SELECT %d failed: %s\n", cfg.db, r->str);
        else
            conn.db_now = cfg.db;
        cli_reply_free(r);
    }
    if (cfg.resp3) {
        rc = conn_call_simple(&r, errmsg, sizeof(errmsg), 2, "HELLO", "3");
        if (rc != 0)
            goto err_io;
        if (r->type == CLI_REPLY_ERROR)
            fprintf(stderr, "HELLO 3 failed: %s\n", r->str);
        cli_reply_free(r);
    }
    return 0;

err_io:
    fprintf(stderr, "Error: %s\n", errmsg);
    conn_close();
    return rc;
}

/* Connects to cfg.host:cfg.port. quiet: say nothing on failure. */
static int conn_open(int quiet)
{
    struct addrinfo hints, *res, *ai;
    char port[16];
    int err = 0;

    conn_close();
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", cfg.port);
    int gai = getaddrinfo(cfg.host, port, &hints, &res);
    if (gai != 0) {
        if (!quiet)
            fprintf(stderr, "Could not connect to Redis at %s:%d: %s\n", cfg.host, cfg.port, gai_strerror(gai));
        return TRIAD_EIO;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc;
        do
            rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
        while (rc != 0 && errno == EINTR);
        if (rc == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            conn.fd = fd;
            break;
        }
        err = errno;
        close(fd);
    }
    freeaddrinfo(res);
    if (conn.fd < 0) {
        if (!quiet)
            fprintf(stderr, "Could not connect to Redis at %s:%d: %s\n", cfg.host, cfg.port, strerror(err));
        return TRIAD_EIO;
    }
    cli_reply_parser_init(&conn.parser);
    return conn_setup();
}

/* ---- running commands and printing replies ---------------------------- */

/* Commands whose text reply is already laid out for people (INFO's lines):
 * redis-cli prints them raw even on a terminal. */
static int wants_raw_strings(int argc, char **argv)
{
    const char *c = argv[0];
    if (strcasecmp(c, "info") == 0 || strcasecmp(c, "lolwut") == 0)
        return 1;
    if (argc < 2)
        return 0;
    const char *s = argv[1];
    if (strcasecmp(c, "client") == 0)
        return strcasecmp(s, "list") == 0 || strcasecmp(s, "info") == 0;
    if (strcasecmp(c, "cluster") == 0 && argc == 2)
        return strcasecmp(s, "nodes") == 0 || strcasecmp(s, "info") == 0;
    if (strcasecmp(c, "memory") == 0)
        return strcasecmp(s, "doctor") == 0 || strcasecmp(s, "malloc-stats") == 0;
    if (strcasecmp(c, "latency") == 0)
        return (argc == 2 && strcasecmp(s, "doctor") == 0) || (argc == 3 && strcasecmp(s, "graph") == 0);
    return 0;
}

static void print_reply(const struct cli_reply *r, int raw_strings)
{
    struct tbuf out = {0};

    if (r->type == CLI_REPLY_ERROR && cfg.exit_on_error && !cfg.interactive) {
        /* -e: the error goes to stderr and sets the exit code */
        fprintf(stderr, "%.*s\n", (int)r->len, r->str);
        return;
    }
    if (raw_strings) {
        cli_reply_format_raw(&out, r, cfg.mb_delim);
    } else if (cfg.output_raw) {
        cli_reply_format_raw(&out, r, cfg.mb_delim);
        tbuf_appends(&out, cfg.cmd_delim);
    } else {
        cli_reply_format_tty(&out, r, "");
    }
    if (out.len > 0)
        fwrite(out.data, 1, out.len, stdout);
    fflush(stdout);
    tbuf_free(&out);
}

static void show_push(const struct cli_reply *r)
{
    /* out-of-band data is shown to a person, not mixed into piped output
     * (redis-cli 7 shows them on a terminal only) */
    if (isatty(STDOUT_FILENO))
        print_reply(r, 0);
}

/* Follows what a successful reply changes in the session, so the prompt
 * and a later reconnection keep the same database, password and protocol. */
static void track_session(int argc, char **argv, const struct cli_reply *r)
{
    if (r->type == CLI_REPLY_ERROR)
        return;
    if (strcasecmp(argv[0], "select") == 0 && argc == 2) {
        conn.db_now = atoi(argv[1]);
        cfg.db = conn.db_now;
    } else if (strcasecmp(argv[0], "auth") == 0 && (argc == 2 || argc == 3)) {
        tfree(cfg.user);
        tfree(cfg.pass);
        cfg.user = argc == 3 ? tstrndup(argv[1], strlen(argv[1])) : NULL;
        cfg.pass = tstrndup(argv[argc - 1], strlen(argv[argc - 1]));
    } else if (strcasecmp(argv[0], "hello") == 0 && argc >= 2) {
        cfg.resp3 = strcmp(argv[1], "3") == 0;
    } else if (strcasecmp(argv[0], "reset") == 0) {
        conn.db_now = 0;
        cfg.db = 0;
        cfg.resp3 = 0;
    }
}

static void sleep_s(double s)
{
    if (s <= 0)
        return;
    struct timespec ts = {.tv_sec = (time_t)s, .tv_nsec = (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* true if the server closed the idle connection (a restart, a timeout):
 * then a fresh connection is made before sending, so nothing sent is lost */
static int conn_peer_closed(void)
{
    struct pollfd pfd = {.fd = conn.fd, .events = POLLIN};
    if (poll(&pfd, 1, 0) <= 0)
        return 0;
    char c;
    ssize_t n = recv(conn.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Runs argv `repeat` times (-1: forever). Returns 0, or TRIAD_EIO when the
 * connection failed. A command is never re-sent after a failure: the server
 * may have run it, and INCR twice is not INCR once. */
static int run_command(int argc, char **argv, size_t *lens, long long repeat, double interval_s)
{
    char errmsg[256];
    int raw_strings = wants_raw_strings(argc, argv);

    for (long long i = 0; repeat < 0 || i < repeat; i++) {
        struct cli_reply *r = NULL;
        if (conn.fd >= 0 && cfg.interactive && conn_peer_closed())
            conn_close();
        if (conn.fd < 0 && conn_open(0) != 0)
            return TRIAD_EIO;
        int rc = conn_call(argc, argv, lens, &r, show_push, errmsg, sizeof(errmsg));
        if (rc != 0 && strcasecmp(argv[0], "shutdown") == 0 && conn_sent_ok) {
            /* A server that shuts down closes the connection instead of
             * replying: that is SHUTDOWN succeeding, as redis-cli sees it. */
            conn_close();
            return 0;
        }
        if (rc != 0) {
            fprintf(stderr, "Error: %s\n", errmsg);
            conn_close();
            return TRIAD_EIO;
        }
        if (r->type == CLI_REPLY_ERROR)
            saw_error_reply = 1;
        print_reply(r, raw_strings);
        track_session(argc, argv, r);
        cli_reply_free(r);
        if (interval_s > 0 && (repeat < 0 || i + 1 < repeat))
            sleep_s(interval_s);
    }
    return 0;
}

/* ---- interactive mode ------------------------------------------------- */

static char prompt_text[CLI_PROMPT_LEN_MAX];
static size_t prompt_len;

static void prompt_update(void)
{
    if (conn.fd < 0)
        snprintf(prompt_text, sizeof(prompt_text), "not connected> ");
    else if (conn.db_now != 0)
        snprintf(prompt_text, sizeof(prompt_text), "%s:%d[%d]> ", cfg.host, cfg.port, conn.db_now);
    else
        snprintf(prompt_text, sizeof(prompt_text), "%s:%d> ", cfg.host, cfg.port);
    prompt_len = strlen(prompt_text);
}

static char *el_prompt_cb(EditLine *el)
{
    return prompt_text;
}

static int hint_shown;

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

/* Shows the rest of the typed command's syntax in grey after the cursor,
 * when the cursor is at the end of the line; the text is never part of the
 * line and is erased before the next key is handled. */
static void hint_show(EditLine *el)
{
    const LineInfo *li = el_line(el);
    if (li->cursor != li->lastchar || li->lastchar == li->buffer)
        return;
    char line[4096];
    size_t len = (size_t)(li->lastchar - li->buffer);
    if (len >= sizeof(line))
        return;
    memcpy(line, li->buffer, len);
    line[len] = '\0';
    struct tbuf hint = {0};
    if (cli_hint_for_line(line, &hint) == 0) {
        size_t shown_cols = prompt_len + mbstowcs(NULL, line, 0);
        int room = term_cols() - (int)shown_cols - 1;
        /* a hint that wrapped would leave the saved cursor a line off */
        if (room > 3) {
            int n = (int)TRIAD_MIN(hint.len, (size_t)room);
            fprintf(stdout, "\0337\033[90m%.*s\033[0m\0338", n, hint.data);
            fflush(stdout);
            hint_shown = 1;
        }
    }
    tbuf_free(&hint);
}

static void hint_erase(void)
{
    if (!hint_shown)
        return;
    fputs("\033[K", stdout);
    fflush(stdout);
    hint_shown = 0;
}

/* libedit's character source: the hint is drawn while we wait for a key. */
static int el_getc_cb(EditLine *el, wchar_t *wc)
{
    mbstate_t st;
    memset(&st, 0, sizeof(st));
    hint_show(el);
    for (;;) {
        char c;
        ssize_t n = read(STDIN_FILENO, &c, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            hint_erase();
            return n == 0 ? 0 : -1;
        }
        size_t m = mbrtowc(wc, &c, 1, &st);
        if (m == (size_t)-2)
            continue; /* the middle of a multibyte character */
        if (m == (size_t)-1) {
            memset(&st, 0, sizeof(st));
            *wc = (unsigned char)c;
        }
        hint_erase();
        return 1;
    }
}

/* The distinct words that can follow `prev` (NULL: command names). */
static int completion_candidates(const char *prev, const char **out, int out_max)
{
    int n = 0;
    static char words[256][32];
    for (size_t i = 0; i < cli_cmd_table_len && n < out_max && n < 256; i++) {
        const char *name = cli_cmd_table[i].name;
        const char *sp = strchr(name, ' ');
        const char *w;
        size_t wl;
        if (prev == NULL) {
            w = name;
            wl = sp ? (size_t)(sp - name) : strlen(name);
        } else {
            if (sp == NULL || strlen(prev) != (size_t)(sp - name) || strncasecmp(name, prev, (size_t)(sp - name)) != 0)
                continue;
            w = sp + 1;
            wl = strlen(w);
        }
        if (wl >= sizeof(words[0]))
            continue;
        int dup = 0;
        for (int j = 0; j < n; j++)
            dup |= strlen(out[j]) == wl && strncmp(out[j], w, wl) == 0;
        if (dup)
            continue;
        memcpy(words[n], w, wl);
        words[n][wl] = '\0';
        out[n] = words[n];
        n++;
    }
    return n;
}

/* TAB: completes the command name (or a two-word command's second word). */
static unsigned char el_complete_cb(EditLine *el, int ch)
{
    const LineInfo *li = el_line(el);
    char before[512];
    size_t len = (size_t)(li->cursor - li->buffer);
    if (len >= sizeof(before))
        return CC_ERROR;
    memcpy(before, li->buffer, len);
    before[len] = '\0';

    /* the word under the cursor and the one before it, if any */
    char *word = before + len;
    while (word > before && word[-1] != ' ')
        word--;
    char *prev = NULL;
    char *p = before;
    while (*p == ' ')
        p++;
    if (p != word) {
        char *end = p;
        while (*end != ' ' && *end != '\0')
            end++;
        char *q = end;
        while (*q == ' ')
            q++;
        if (q != word)
            return CC_ERROR; /* past the second word: nothing to offer */
        *end = '\0';
        prev = p;
    }
    /* after "help", command names again */
    if (prev != NULL && (strcasecmp(prev, "help") == 0 || strcmp(prev, "?") == 0))
        prev = NULL;
    size_t wlen = strlen(word);
    const char *cands[256];
    const char *match[256];
    int n = completion_candidates(prev, cands, 256), m = 0;
    for (int i = 0; i < n; i++) {
        if (strncasecmp(cands[i], word, wlen) == 0)
            match[m++] = cands[i];
    }
    if (m == 0)
        return CC_ERROR;
    /* type in the case the user started with */
    int lower = wlen > 0 ? (word[0] >= 'a' && word[0] <= 'z') : 0;
    size_t common = strlen(match[0]);
    for (int i = 1; i < m; i++) {
        size_t k = 0;
        while (k < common && match[i][k] != '\0' && match[i][k] == match[0][k])
            k++;
        common = k;
    }
    if (common > wlen || m == 1) {
        char ins[64];
        size_t k = 0;
        for (size_t i = wlen; i < common && k + 2 < sizeof(ins); i++) {
            char c = match[0][i];
            ins[k++] = lower && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        }
        if (m == 1)
            ins[k++] = ' ';
        ins[k] = '\0';
        el_insertstr(el, ins);
        return CC_REFRESH;
    }
    fputc('\n', stdout);
    for (int i = 0; i < m; i++)
        fprintf(stdout, "%s%s", i ? "  " : "", match[i]);
    fputc('\n', stdout);
    return CC_REDISPLAY;
}

static void print_help(int argc, char **argv)
{
    if (argc == 0) {
        printf("triad cli %s\n"
               "To get help about a command:\n"
               "      \"help <command>\" shows its syntax and summary\n"
               "      \"help <tab>\" completes command names\n"
               "To set the database: \"select <n>\"; to leave: \"quit\"\n",
               "0.1.0");
        return;
    }
    /* a container's subcommands: "help config" lists CONFIG GET, ... */
    if (argc == 1) {
        int found = 0;
        size_t l = strlen(argv[0]);
        for (size_t i = 0; i < cli_cmd_table_len; i++) {
            const struct cli_cmd_help *e = &cli_cmd_table[i];
            if (strncasecmp(e->name, argv[0], l) == 0 && e->name[l] == ' ') {
                printf("\n  %s%s%s\n  summary: %s\n", e->name, e->params[0] ? " " : "", e->params, e->summary);
                found = 1;
            }
        }
        if (found) {
            printf("\n");
            return;
        }
    }
    int words;
    const struct cli_cmd_help *h = cli_cmd_lookup(argc, argv, &words);
    if (h != NULL)
        printf("\n  %s%s%s\n  summary: %s\n\n", h->name, h->params[0] ? " " : "", h->params, h->summary);
}

/* Lines that may hold a password are kept out of the history file. */
static int is_sensitive(int argc, char **argv)
{
    if (strcasecmp(argv[0], "auth") == 0)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcasecmp(argv[0], "hello") == 0 && strcasecmp(argv[i], "auth") == 0)
            return 1;
    }
    if (argc >= 2 && strcasecmp(argv[0], "acl") == 0 && strcasecmp(argv[1], "setuser") == 0)
        return 1;
    if (argc >= 3 && strcasecmp(argv[0], "config") == 0 && strcasecmp(argv[1], "set") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcasecmp(argv[i], "requirepass") == 0 || strcasecmp(argv[i], "masterauth") == 0)
                return 1;
        }
    }
    return 0;
}

static char *history_path(void)
{
    const char *env = getenv("TRIADCLI_HISTFILE");
    if (env != NULL) {
        if (strcmp(env, "/dev/null") == 0 || env[0] == '\0')
            return NULL;
        return tstrndup(env, strlen(env));
    }
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0')
        return NULL;
    struct tbuf p = {0};
    tbuf_appendf(&p, "%s/.triadcli_history", home);
    tbuf_appendc(&p, '\0');
    return p.data;
}

/* Handles one typed line; returns 1 when the user asked to leave. */
static int interactive_line(const char *line, History *hist, const char *hist_file)
{
    int argc;
    char **argv;
    size_t *lens;
    HistEvent ev;

    if (cli_split_line(line, &argc, &argv, &lens) != 0) {
        printf("Invalid argument(s)\n");
        fflush(stdout);
        return 0;
    }
    if (argc == 0) {
        cli_split_free(argc, argv, lens);
        return 0;
    }
    if (hist != NULL && !is_sensitive(argc, argv)) {
        history(hist, &ev, H_ENTER, line);
        if (hist_file != NULL)
            history(hist, &ev, H_SAVE, hist_file);
    }
    int quit = 0;
    char **av = argv;
    size_t *al = lens;
    int ac = argc;
    long long repeat = 1;
    /* "3 INCR x" runs INCR three times, as in redis-cli */
    if (ac > 1) {
        char *end;
        errno = 0;
        long long r = strtoll(av[0], &end, 10);
        if (errno == 0 && *end == '\0' && end != av[0] && r > 0) {
            repeat = r;
            av++;
            al++;
            ac--;
        }
    }
    if (strcasecmp(av[0], "quit") == 0 || strcasecmp(av[0], "exit") == 0) {
        quit = 1;
    } else if (strcasecmp(av[0], "help") == 0 || strcmp(av[0], "?") == 0) {
        print_help(ac - 1, av + 1);
    } else if (strcasecmp(av[0], "clear") == 0) {
        fputs("\033[H\033[2J", stdout);
    } else if (strcasecmp(av[0], "connect") == 0 && (ac == 2 || ac == 3)) {
        tfree(cfg.host);
        cfg.host = tstrndup(av[1], strlen(av[1]));
        cfg.port = ac == 3 ? atoi(av[2]) : CLI_PORT_DEFAULT;
        conn_open(0);
    } else {
        run_command(ac, av, al, repeat, cfg.interval_s);
    }
    fflush(stdout);
    cli_split_free(argc, argv, lens);
    return quit;
}

static int interactive_main(void)
{
    HistEvent ev;
    char *hist_file = history_path();

    setlocale(LC_CTYPE, "");
    conn_open(0); /* a failure leaves us at "not connected> " */

    EditLine *el = el_init("triad-cli", stdin, stdout, stderr);
    History *hist = history_init();
    if (el == NULL || hist == NULL) {
        fprintf(stderr, "could not set up line editing\n");
        return 1;
    }
    history(hist, &ev, H_SETSIZE, CLI_HISTORY_LEN_MAX);
    history(hist, &ev, H_SETUNIQUE, 1);
    if (hist_file != NULL)
        history(hist, &ev, H_LOAD, hist_file);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_SIGNAL, 1);
    el_set(el, EL_PROMPT, el_prompt_cb);
    el_set(el, EL_HIST, history, hist);
    /* the wide calls: libedit's narrow EL_ADDFN copies the names and never
     * frees them */
    el_wset(el, EL_ADDFN, L"triad-complete", L"Complete a command name", el_complete_cb);
    el_wset(el, EL_BIND, L"^I", L"triad-complete", NULL);
    /* hints are terminal escapes: not for a dumb terminal or a pipe */
    const char *term = getenv("TERM");
    if ((term == NULL || strcmp(term, "dumb") != 0) && isatty(STDOUT_FILENO))
        el_set(el, EL_GETCFN, el_getc_cb);

    for (;;) {
        prompt_update();
        int count;
        const char *got = el_gets(el, &count);
        if (got == NULL || count <= 0)
            break; /* Ctrl-D */
        struct tbuf line = {0};
        tbuf_append(&line, got, (size_t)count);
        while (line.len > 0 && (line.data[line.len - 1] == '\n' || line.data[line.len - 1] == '\r'))
            line.len--;
        tbuf_appendc(&line, '\0');
        int quit = interactive_line(line.data, hist, hist_file);
        tbuf_free(&line);
        if (quit)
            break;
    }
    el_end(el);
    history_end(hist);
    tfree(hist_file);
    conn_close();
    return 0;
}

/* ---- stdin and one-shot modes ----------------------------------------- */

static int stdin_main(void)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int rc = 0;

    if (conn_open(0) != 0)
        return 1;
    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        int argc;
        char **argv;
        size_t *lens;
        if (cli_split_line(line, &argc, &argv, &lens) != 0) {
            printf("Invalid argument(s)\n");
            fflush(stdout);
            continue;
        }
        if (argc > 0) {
            if (strcasecmp(argv[0], "quit") == 0 || strcasecmp(argv[0], "exit") == 0) {
                cli_split_free(argc, argv, lens);
                break;
            }
            if (run_command(argc, argv, lens, cfg.repeat, cfg.interval_s) != 0)
                rc = 1;
        }
        cli_split_free(argc, argv, lens);
        if (rc != 0)
            break;
    }
    free(line); /* getline's buffer comes from malloc */
    conn_close();
    if (saw_error_reply && cfg.exit_on_error)
        rc = 1;
    return rc;
}

static int read_all_stdin(struct tbuf *out)
{
    for (;;) {
        tbuf_reserve(out, CLI_READ_CHUNK_SIZE);
        ssize_t n = read(STDIN_FILENO, out->data + out->len, CLI_READ_CHUNK_SIZE);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return TRIAD_EIO;
        if (n == 0)
            return 0;
        out->len += (size_t)n;
        if ((long long)out->len > CLI_STDIN_ARG_LEN_MAX)
            return TRIAD_ELIMIT;
    }
}

static int oneshot_main(int argc, char **argv)
{
    size_t *lens = tmalloc((size_t)(argc + 1) * sizeof(*lens));
    char **av = tmalloc((size_t)(argc + 1) * sizeof(*av));
    struct tbuf last = {0};
    int rc = 0;

    for (int i = 0; i < argc; i++) {
        av[i] = argv[i];
        lens[i] = strlen(argv[i]);
    }
    int ac = argc;
    if (cfg.stdin_last_arg) {
        if (read_all_stdin(&last) != 0) {
            fprintf(stderr, "Could not read the last argument from stdin\n");
            rc = 1;
            goto out_free;
        }
        tbuf_appendc(&last, '\0');
        av[ac] = last.data;
        lens[ac] = last.len - 1;
        ac++;
    }
    if (conn_open(0) != 0) {
        rc = 1;
        goto out_free;
    }
    if (run_command(ac, av, lens, cfg.repeat, cfg.interval_s) != 0)
        rc = 1;
    else if (saw_error_reply && cfg.exit_on_error)
        rc = 1;
    conn_close();

out_free:
    tbuf_free(&last);
    tfree(av);
    tfree(lens);
    return rc;
}

/* ---- options ---------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: triad cli [OPTIONS] [cmd [arg [arg ...]]]\n"
            "  -h <hostname>      Server hostname (default: 127.0.0.1).\n"
            "  -p <port>          Server port (default: %d).\n"
            "  -a <password>      Password to use when connecting to the server.\n"
            "  --user <username>  Used to send ACL style 'AUTH username pass'. Needs -a.\n"
            "  --pass <password>  Alias of -a.\n"
            "  --no-auth-warning  Don't warn about a password given on the command line.\n"
            "  -u <uri>           Server URI: redis://[[user]:password@]host[:port][/db].\n"
            "  -n <db>            Database number.\n"
            "  -2                 Start the session in RESP2 protocol mode.\n"
            "  -3                 Start the session in RESP3 protocol mode (HELLO 3).\n"
            "  -r <repeat>        Execute the command N times (-1: forever).\n"
            "  -i <interval>      With -r, wait <interval> seconds between commands\n"
            "                     (it accepts fractions, like -i 0.1).\n"
            "  -x                 Read the last argument from stdin.\n"
            "  -d <delimiter>     Delimiter between replies in raw mode (default: \\n).\n"
            "  -D <delimiter>     Delimiter between items of a reply in raw mode (default: \\n).\n"
            "  -e                 Return exit error code when command execution fails.\n"
            "  --raw              Use raw formatting for replies (default when stdout\n"
            "                     is not a tty).\n"
            "  --no-raw           Force formatted output even when stdout is not a tty.\n"
            "  --help             Output this help and exit.\n"
            "\n"
            "Examples:\n"
            "  triad cli SET k v\n"
            "  triad cli -n 2 GET k\n"
            "  cat /etc/passwd | triad cli -x SET mypasswd\n"
            "  triad cli -r 100 -i 1 INFO | grep used_memory_human:\n"
            "  echo PING | triad cli\n"
            "\n"
            "With no command and a terminal on stdin, an interactive session starts:\n"
            "TAB completes command names, \"help <command>\" shows the syntax.\n"
            "History is kept in ~/.triadcli_history ($TRIADCLI_HISTFILE; /dev/null: none).\n",
            CLI_PORT_DEFAULT);
}

static void set_str(char **dst, const char *s, size_t len)
{
    tfree(*dst);
    *dst = tmalloc(len + 1);
    memcpy(*dst, s, len);
    (*dst)[len] = '\0';
}

/* %XX decoding of the user and password parts of a URI, in place */
static void percent_decode(char *s)
{
    char *w = s;
    for (char *r = s; *r != '\0'; r++) {
        int hi, lo;
        if (r[0] == '%' && r[1] != '\0' && r[2] != '\0' && sscanf(r + 1, "%1x%1x", &hi, &lo) == 2) {
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

/* redis://[[user]:password@]host[:port][/db] */
static int parse_uri(const char *uri)
{
    const char *scheme = "redis://";
    if (strncasecmp(uri, scheme, strlen(scheme)) != 0) {
        fprintf(stderr, "Invalid URI scheme\n");
        return TRIAD_EINVAL;
    }
    const char *p = uri + strlen(scheme);
    const char *end = p + strcspn(p, "/");
    const char *at = NULL;
    for (const char *q = p; q < end; q++) {
        if (*q == '@')
            at = q;
    }
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon != NULL) {
            if (colon > p) {
                set_str(&cfg.user, p, (size_t)(colon - p));
                percent_decode(cfg.user);
            }
            set_str(&cfg.pass, colon + 1, (size_t)(at - colon - 1));
        } else {
            set_str(&cfg.pass, p, (size_t)(at - p));
        }
        percent_decode(cfg.pass);
        p = at + 1;
    }
    const char *hend = end;
    const char *port = NULL;
    if (*p == '[') { /* [::1]:port */
        const char *rb = memchr(p, ']', (size_t)(end - p));
        if (rb == NULL)
            return TRIAD_EINVAL;
        set_str(&cfg.host, p + 1, (size_t)(rb - p - 1));
        if (rb + 1 < end && rb[1] == ':')
            port = rb + 2;
    } else {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon != NULL) {
            hend = colon;
            port = colon + 1;
        }
        if (hend > p)
            set_str(&cfg.host, p, (size_t)(hend - p));
    }
    if (port != NULL && port < end)
        cfg.port = atoi(port);
    if (*end == '/' && end[1] != '\0')
        cfg.db = atoi(end + 1);
    return 0;
}

static const char *delim_unescape(const char *s)
{
    /* "-d '\n'" means a newline, as with redis-cli */
    if (strcmp(s, "\\n") == 0)
        return "\n";
    if (strcmp(s, "\\r\\n") == 0)
        return "\r\n";
    if (strcmp(s, "\\t") == 0)
        return "\t";
    return s;
}

/* Returns the index of the first command argument, or -1 to exit with
 * *exit_code. */
static int parse_options(int argc, char **argv, int *exit_code)
{
    int i;
    *exit_code = 0;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_next = i + 1 < argc;
#define NEXT_ARG()                                                          \
    do {                                                                    \
        if (!has_next) {                                                    \
            fprintf(stderr, "Unrecognized option or bad number of args for: '%s'\n", a); \
            *exit_code = 1;                                                 \
            return -1;                                                      \
        }                                                                   \
        i++;                                                                \
    } while (0)
        if (strcmp(a, "--help") == 0) {
            usage(stdout);
            return -1;
        } else if (strcmp(a, "-h") == 0) {
            NEXT_ARG();
            set_str(&cfg.host, argv[i], strlen(argv[i]));
        } else if (strcmp(a, "-p") == 0) {
            NEXT_ARG();
            cfg.port = atoi(argv[i]);
        } else if (strcmp(a, "-a") == 0 || strcmp(a, "--pass") == 0) {
            NEXT_ARG();
            set_str(&cfg.pass, argv[i], strlen(argv[i]));
        } else if (strcmp(a, "--user") == 0) {
            NEXT_ARG();
            set_str(&cfg.user, argv[i], strlen(argv[i]));
        } else if (strcmp(a, "-u") == 0) {
            NEXT_ARG();
            if (parse_uri(argv[i]) != 0) {
                *exit_code = 1;
                return -1;
            }
        } else if (strcmp(a, "-n") == 0) {
            NEXT_ARG();
            cfg.db = atoi(argv[i]);
        } else if (strcmp(a, "-r") == 0) {
            NEXT_ARG();
            cfg.repeat = strtoll(argv[i], NULL, 10);
        } else if (strcmp(a, "-i") == 0) {
            NEXT_ARG();
            cfg.interval_s = strtod(argv[i], NULL);
        } else if (strcmp(a, "-d") == 0) {
            NEXT_ARG();
            cfg.cmd_delim = delim_unescape(argv[i]);
        } else if (strcmp(a, "-D") == 0) {
            NEXT_ARG();
            cfg.mb_delim = delim_unescape(argv[i]);
        } else if (strcmp(a, "-2") == 0) {
            cfg.resp3 = 0;
        } else if (strcmp(a, "-3") == 0) {
            cfg.resp3 = 1;
        } else if (strcmp(a, "-x") == 0) {
            cfg.stdin_last_arg = 1;
        } else if (strcmp(a, "-e") == 0) {
            cfg.exit_on_error = 1;
        } else if (strcmp(a, "--raw") == 0) {
            cfg.output_raw = 1;
        } else if (strcmp(a, "--no-raw") == 0) {
            cfg.output_raw = 0;
        } else if (strcmp(a, "--no-auth-warning") == 0) {
            cfg.no_auth_warning = 1;
        } else if (a[0] == '-' && a[1] != '\0' && a[1] != '-' && !(a[1] >= '0' && a[1] <= '9')) {
            fprintf(stderr, "Unrecognized option or bad number of args for: '%s'\n", a);
            *exit_code = 1;
            return -1;
        } else if (a[0] == '-' && a[1] == '-') {
            fprintf(stderr, "Unrecognized option or bad number of args for: '%s'\n", a);
            *exit_code = 1;
            return -1;
        } else {
            break; /* the command starts here */
        }
#undef NEXT_ARG
    }
    return i;
}

int cli_main(int argc, char **argv)
{
    int exit_code;

    memset(&cfg, 0, sizeof(cfg));
    set_str(&cfg.host, "127.0.0.1", strlen("127.0.0.1"));
    cfg.port = CLI_PORT_DEFAULT;
    cfg.repeat = 1;
    cfg.mb_delim = "\n";
    cfg.cmd_delim = "\n";
    /* --raw style when the output is for a program, as redis-cli does;
     * --raw / --no-raw below override it */
    cfg.output_raw = !isatty(STDOUT_FILENO);

    int first = parse_options(argc, argv, &exit_code);
    if (first >= 0) {
        if (cfg.pass != NULL && !cfg.no_auth_warning)
            fprintf(stderr, "Warning: Using a password with '-a' or '-u' option on the command line interface "
                            "may not be safe.\n");
        if (cfg.repeat == 0)
            cfg.repeat = 1;
        if (first < argc) {
            exit_code = oneshot_main(argc - first, argv + first);
        } else if (isatty(STDIN_FILENO)) {
            cfg.interactive = 1;
            exit_code = interactive_main();
        } else {
            exit_code = stdin_main();
        }
    }
    tfree(cfg.host);
    tfree(cfg.user);
    tfree(cfg.pass);
    cfg.host = cfg.user = cfg.pass = NULL;
    return exit_code;
}
