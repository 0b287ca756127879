/* test_cmd.c - the command layer's core: table, dispatch, MULTI/EXEC/WATCH,
 * log records and replay, connection/server commands and the keyspace
 * commands, driven through cmd_exec with exact RESP bytes. */
#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/cmd/cmd_int.h"
#include "../../src/common/mem.h"
#include "test.h"
#include "test_words.h"

/* ---- fixture ---- */

#define T_RECORDS_MAX 512
#define T_NOW_MS 1700000000000ll

struct t_records {
    struct tbuf rec[T_RECORDS_MAX];
    int n;
};

static uint64_t t_log(void *arg, const void *body, size_t len)
{
    struct t_records *r = arg;
    TRIAD_ASSERT(r->n < T_RECORDS_MAX);
    struct tbuf *b = &r->rec[r->n++];
    memset(b, 0, sizeof(*b));
    tbuf_append(b, body, len);
    return (uint64_t)r->n; /* lsn */
}

static void t_records_free(struct t_records *r)
{
    for (int i = 0; i < r->n; i++)
        tbuf_free(&r->rec[i]);
    r->n = 0;
}

struct fx {
    struct cmd_server s;
    struct tbuf out, out2;
    struct cmd_client c, c2; /* two sessions */
    struct t_records log;
    uint64_t last_lsn;
};

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    cmd_server_init(&f->s, CMD_DATABASES_DEFAULT, 42);
    f->s.now_ms = T_NOW_MS;
    f->s.log_fn = t_log;
    f->s.log_arg = &f->log;
    cmd_client_init(&f->c, 7, &f->out);
    cmd_client_init(&f->c2, 8, &f->out2);
}

static void fx_free(struct fx *f)
{
    cmd_client_free(&f->s, &f->c);
    cmd_client_free(&f->s, &f->c2);
    cmd_server_free(&f->s);
    tbuf_free(&f->out);
    tbuf_free(&f->out2);
    t_records_free(&f->log);
}

/* Run a command given as space-separated words ("\s" in a word is a space,
 * "\0" a NUL byte, "\e" makes the word empty) and return the reply as a
 * NUL-terminated string. The client's buffer is reset first. */
static const char *t_run(struct fx *f, struct cmd_client *c, const char *line)
{
    char words[T_LINE_MAX];
    char *argv[T_ARGS_MAX];
    size_t argvlen[T_ARGS_MAX];
    int argc = t_split(line, words, argv, argvlen);
    tbuf_reset(c->out);
    f->last_lsn = cmd_exec(&f->s, c, argc, argv, argvlen);
    tbuf_appendc(c->out, '\0');
    c->out->len--;
    return c->out->data;
}

#define EXPECT(f, c, line, want)                                                          \
    do {                                                                                  \
        const char *t__got = t_run((f), (c), (line));                                     \
        CHECK_MEM_STR(t__got, (c)->out->len, (want));                                     \
    } while (0)

/* ---- table and lookup ---- */

TEST(lookup_finds_every_table_command_in_any_case)
{
    size_t n;
    const struct cmd_spec *t = cmd_table(&n);
    CHECK_EQ_INT(n, 19 + 12 + 14 + 8 + 10 + 5); /* every handler of cmd_int.h */
    for (size_t i = 0; i < n; i++) {
        char low[64], mixed[64];
        size_t l = strlen(t[i].name);
        for (size_t j = 0; j <= l; j++) {
            low[j] = (char)tolower((unsigned char)t[i].name[j]);
            mixed[j] = j % 2 ? low[j] : t[i].name[j];
        }
        CHECK(cmd_lookup(t[i].name, l) == &t[i]);
        CHECK(cmd_lookup(low, l) == &t[i]);
        CHECK(cmd_lookup(mixed, l) == &t[i]);
        CHECK(t[i].fn != NULL);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(t[i].name, t[j].name) != 0);
    }
    CHECK(cmd_lookup("GETT", 4) == NULL);
    CHECK(cmd_lookup("GE", 2) == NULL);
    CHECK(cmd_lookup("", 0) == NULL);
    CHECK(cmd_lookup("GET\0", 4) == NULL);
    char longname[200];
    memset(longname, 'A', sizeof(longname));
    CHECK(cmd_lookup(longname, sizeof(longname)) == NULL);
}

TEST(unknown_command_error_quotes_the_name_and_first_args_like_redis_7)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "FOO a b",
           "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    EXPECT(&f, &f.c, "foo", "-ERR unknown command 'foo', with args beginning with: \r\n");
    /* arguments stop once 128 bytes of them have been written */
    char line[400] = "nope ";
    memset(line + 5, 'x', 200);
    line[205] = '\0';
    strcat(line, " more");
    t_run(&f, &f.c, line);
    char want[300] = "-ERR unknown command 'nope', with args beginning with: '";
    size_t wl = strlen(want);
    memset(want + wl, 'x', 128);
    strcpy(want + wl + 128, "' \r\n");
    CHECK_MEM_STR(f.out.data, f.out.len, want);
    CHECK_EQ_INT(f.s.stats.errors, 3);
    CHECK_EQ_INT(f.s.stats.rejected_calls, 3);
    fx_free(&f);
}

TEST(wrong_arity_names_the_command_in_lower_case)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT(&f, &f.c, "Echo", "-ERR wrong number of arguments for 'echo' command\r\n");
    EXPECT(&f, &f.c, "PING a b", "-ERR wrong number of arguments for 'ping' command\r\n");
    EXPECT(&f, &f.c, "config get", "-ERR wrong number of arguments for 'config|get' command\r\n");
    EXPECT(&f, &f.c, "CLIENT SETNAME", "-ERR wrong number of arguments for 'client|setname' command\r\n");
    EXPECT(&f, &f.c, "TIME x", "-ERR wrong number of arguments for 'time' command\r\n");
    fx_free(&f);
}

TEST(parse_ll_accepts_exactly_what_string2ll_accepts)
{
    long long v;
    CHECK(cmd_parse_ll("0", 1, &v) && v == 0);
    CHECK(cmd_parse_ll("-1", 2, &v) && v == -1);
    CHECK(cmd_parse_ll("9223372036854775807", 19, &v) && v == LLONG_MAX);
    CHECK(cmd_parse_ll("-9223372036854775808", 20, &v) && v == LLONG_MIN);
    CHECK(!cmd_parse_ll("9223372036854775808", 19, &v));
    CHECK(!cmd_parse_ll("-9223372036854775809", 20, &v));
    CHECK(!cmd_parse_ll("", 0, &v));
    CHECK(!cmd_parse_ll("-", 1, &v));
    CHECK(!cmd_parse_ll("-0", 2, &v));
    CHECK(!cmd_parse_ll("+1", 2, &v));
    CHECK(!cmd_parse_ll("01", 2, &v));
    CHECK(!cmd_parse_ll(" 1", 2, &v));
    CHECK(!cmd_parse_ll("1 ", 2, &v));
    CHECK(!cmd_parse_ll("1x", 2, &v));
    CHECK(!cmd_parse_ll("99999999999999999999", 20, &v));
    CHECK(cmd_parse_ll("12", 1, &v) && v == 1); /* only len bytes count */
}

TEST(parse_ld_rejects_spaces_nan_and_overflow)
{
    long double v;
    CHECK(cmd_parse_ld("1.5", 3, &v) && v == 1.5L);
    CHECK(cmd_parse_ld("-3e2", 4, &v) && v == -300.0L);
    CHECK(cmd_parse_ld("inf", 3, &v));
    CHECK(!cmd_parse_ld("nan", 3, &v));
    CHECK(!cmd_parse_ld(" 1", 2, &v));
    CHECK(!cmd_parse_ld("1 ", 2, &v));
    CHECK(!cmd_parse_ld("", 0, &v));
    CHECK(!cmd_parse_ld("1e999999", 8, &v));
    CHECK(!cmd_parse_ld("abc", 3, &v));
}

/* ---- connection ---- */

TEST(ping_echo_select_and_quit_reply_as_redis)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "PING", "+PONG\r\n");
    EXPECT(&f, &f.c, "ping hello", "$5\r\nhello\r\n");
    EXPECT(&f, &f.c, "ECHO a\\sb", "$3\r\na b\r\n");
    EXPECT(&f, &f.c, "SELECT 15", "+OK\r\n");
    CHECK_EQ_INT(f.c.db, 15);
    EXPECT(&f, &f.c, "SELECT 16", "-ERR DB index is out of range\r\n");
    EXPECT(&f, &f.c, "SELECT -1", "-ERR DB index is out of range\r\n");
    EXPECT(&f, &f.c, "SELECT x", "-ERR value is not an integer or out of range\r\n");
    CHECK_EQ_INT(f.c.db, 15);
    EXPECT(&f, &f.c, "QUIT", "+OK\r\n");
    CHECK(f.c.flags & CMD_CLIENT_CLOSE_AFTER_REPLY);
    fx_free(&f);
}

TEST(auth_follows_redis_with_and_without_a_password)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "AUTH x",
           "-ERR AUTH <password> called without any password configured for the default user. "
           "Are you sure your configuration is correct?\r\n");
    EXPECT(&f, &f.c, "AUTH default anything", "+OK\r\n");
    EXPECT(&f, &f.c, "AUTH someone x",
           "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT(&f, &f.c, "AUTH a b c", "-ERR syntax error\r\n");

    f.s.requirepass = "s3cret";
    EXPECT(&f, &f.c2, "GET k", "-NOAUTH Authentication required.\r\n");
    EXPECT(&f, &f.c2, "MULTI", "-NOAUTH Authentication required.\r\n");
    /* unknown commands and arity are checked before authentication */
    EXPECT(&f, &f.c2, "NOPE", "-ERR unknown command 'NOPE', with args beginning with: \r\n");
    EXPECT(&f, &f.c2, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT(&f, &f.c2, "AUTH wrong",
           "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT(&f, &f.c2, "AUTH s3cre",
           "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT(&f, &f.c2, "AUTH other s3cret",
           "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    EXPECT(&f, &f.c2, "HELLO 3",
           "-NOAUTH HELLO must be called with the client already authenticated, otherwise the "
           "HELLO AUTH <user> <pass> option can be used to authenticate the client and "
           "select the RESP protocol version at the same time\r\n");
    CHECK_EQ_INT(f.c2.proto, 2);
    EXPECT(&f, &f.c2, "QUIT", "+OK\r\n"); /* allowed before AUTH */
    EXPECT(&f, &f.c2, "AUTH s3cret", "+OK\r\n");
    EXPECT(&f, &f.c2, "EXISTS k", ":0\r\n");
    EXPECT(&f, &f.c2, "RESET", "+RESET\r\n");
    EXPECT(&f, &f.c2, "EXISTS k", "-NOAUTH Authentication required.\r\n");
    EXPECT(&f, &f.c2, "AUTH default s3cret", "+OK\r\n");
    EXPECT(&f, &f.c2, "EXISTS k", ":0\r\n");
    fx_free(&f);
}

TEST(hello_switches_protocol_and_replies_with_a_map)
{
    struct fx f;
    fx_init(&f);
    static const char body[] =
        "$6\r\nserver\r\n$5\r\ntriad\r\n$7\r\nversion\r\n$5\r\n7.0.0\r\n$5\r\nproto\r\n:%d\r\n"
        "$2\r\nid\r\n:7\r\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
        "$7\r\nmodules\r\n*0\r\n";
    char want[512];
    snprintf(want, sizeof(want), "%%7\r\n");
    snprintf(want + strlen(want), sizeof(want) - strlen(want), body, 3);
    EXPECT(&f, &f.c, "HELLO 3", want);
    CHECK_EQ_INT(f.c.proto, 3);
    snprintf(want, sizeof(want), "*14\r\n");
    snprintf(want + strlen(want), sizeof(want) - strlen(want), body, 2);
    EXPECT(&f, &f.c, "HELLO 2", want);
    CHECK_EQ_INT(f.c.proto, 2);
    EXPECT(&f, &f.c, "HELLO", want); /* no version: report, keep the protocol */
    EXPECT(&f, &f.c, "HELLO 4", "-NOPROTO unsupported protocol version\r\n");
    EXPECT(&f, &f.c, "HELLO 1", "-NOPROTO unsupported protocol version\r\n");
    EXPECT(&f, &f.c, "HELLO x", "-ERR Protocol version is not an integer or out of range\r\n");
    EXPECT(&f, &f.c, "HELLO 3 foo", "-ERR Syntax error in HELLO option 'foo'\r\n");
    EXPECT(&f, &f.c, "HELLO 3 AUTH a", "-ERR Syntax error in HELLO option 'AUTH'\r\n");
    EXPECT(&f, &f.c, "HELLO 3 SETNAME a\\sb",
           "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    CHECK_EQ_INT(f.c.proto, 2);
    t_run(&f, &f.c, "HELLO 3 SETNAME app");
    CHECK(f.out.data[0] == '%');
    CHECK(f.c.name != NULL && strcmp(f.c.name, "app") == 0);
    /* RESP3 replies from now on */
    EXPECT(&f, &f.c, "CLIENT GETNAME", "$3\r\napp\r\n");
    EXPECT(&f, &f.c, "RESET", "+RESET\r\n");
    CHECK_EQ_INT(f.c.proto, 2);
    CHECK(f.c.name == NULL);

    f.s.requirepass = "pw";
    t_run(&f, &f.c2, "HELLO 3 AUTH default pw SETNAME n");
    CHECK(f.out2.data[0] == '%');
    CHECK(f.c2.authenticated);
    EXPECT(&f, &f.c, "HELLO 3 AUTH default bad",
           "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    /* RESET made c the default user while it needed no password; a failed
     * AUTH leaves that as it was, as in Redis */
    CHECK(f.c.authenticated);
    fx_free(&f);
}

TEST(reset_leaves_multi_watch_db_protocol_and_name)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "HELLO 3");
    t_run(&f, &f.c, "SELECT 3");
    t_run(&f, &f.c, "CLIENT SETNAME x");
    t_run(&f, &f.c, "WATCH k");
    t_run(&f, &f.c, "MULTI");
    EXPECT(&f, &f.c, "DEL k", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "RESET", "+RESET\r\n");
    CHECK_EQ_INT(f.c.db, 0);
    CHECK_EQ_INT(f.c.proto, 2);
    CHECK(f.c.name == NULL);
    CHECK_EQ_INT(f.c.flags, 0);
    CHECK_EQ_INT(f.c.queue_len, 0);
    CHECK_EQ_INT(f.c.watched_len, 0);
    EXPECT(&f, &f.c, "EXEC", "-ERR EXEC without MULTI\r\n");
    fx_free(&f);
}

/* ---- hooks for the server commands ---- */

struct t_hooks {
    int resetstat_calls, shutdown_calls, snapshot_calls;
    bool shutdown_save, snapshot_background, snapshot_fail;
    uint64_t killed_id;
    int kill_calls;
    int free_async_calls;
    char last_set[64];
};

static void t_info(void *arg, struct cmd_client *c, int argc, char **argv, size_t *argvlen,
                   struct tbuf *text)
{
    tbuf_appendf(text, "# Server\r\nsections:%d\r\n", argc);
    if (argc > 0)
        tbuf_appendf(text, "first:%.*s\r\n", (int)argvlen[0], argv[0]);
}

static void t_config_get(void *arg, const char *pattern,
                         void (*emit)(void *e, const char *name, const char *value), void *e)
{
    static const char *const params[][2] = {{"maxmemory", "0"}, {"maxclients", "10000"},
                                            {"port", "6379"}};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(params); i++)
        if (cmd_glob_match(pattern, strlen(pattern), params[i][0], strlen(params[i][0]), true))
            emit(e, params[i][0], params[i][1]);
}

static int t_config_set(void *arg, int npairs, char **names, char **values, char *errmsg,
                        size_t errlen)
{
    struct t_hooks *h = arg;
    /* all or nothing, as the server's hook: check every pair first */
    for (int i = 0; i < npairs; i++) {
        if (strcmp(names[i], "maxmemory") != 0) {
            snprintf(errmsg, errlen, "Unknown option or number of arguments for CONFIG SET - '%s'",
                     names[i]);
            return 1;
        }
    }
    h->last_set[0] = '\0';
    for (int i = 0; i < npairs; i++)
        snprintf(h->last_set + strlen(h->last_set), sizeof(h->last_set) - strlen(h->last_set),
                 "%s%s=%s", i ? "," : "", names[i], values[i]);
    return 0;
}

static void t_config_resetstat(void *arg)
{
    ((struct t_hooks *)arg)->resetstat_calls++;
}

static void t_client_list(void *arg, struct cmd_client *self, bool only_self, const uint64_t *ids,
                          size_t nids, struct tbuf *text)
{
    if (only_self) {
        tbuf_appendf(text, "id=%llu\n", (unsigned long long)self->id);
        return;
    }
    if (ids != NULL) {
        for (size_t i = 0; i < nids; i++)
            if (ids[i] == 7 || ids[i] == 8)
                tbuf_appendf(text, "id=%llu\n", (unsigned long long)ids[i]);
        return;
    }
    tbuf_appends(text, "id=7\nid=8\n");
}

/* two clients: id 7 at 1.1.1.1:7 and id 8 at 1.1.1.1:8, both 10 s old */
static int t_client_kill(void *arg, const struct cmd_kill_filter *f)
{
    struct t_hooks *h = arg;
    int n = 0;
    h->kill_calls++;
    for (uint64_t id = 7; id <= 8; id++) {
        char addr[32];
        snprintf(addr, sizeof(addr), "1.1.1.1:%llu", (unsigned long long)id);
        if ((f->id && f->id != id) || (f->addr && strcmp(f->addr, addr) != 0) ||
            (f->laddr && strcmp(f->laddr, "2.2.2.2:1") != 0) || f->skip_id == id ||
            (f->maxage_s && 10 <= f->maxage_s))
            continue;
        h->killed_id = id;
        n++;
    }
    return n;
}

static void t_free_async(void *arg, struct kv *kv)
{
    ((struct t_hooks *)arg)->free_async_calls++;
    kv_free(kv);
}

static void t_shutdown(void *arg, bool save)
{
    struct t_hooks *h = arg;
    h->shutdown_calls++;
    h->shutdown_save = save;
}

static int t_snapshot(void *arg, bool background, char *errmsg, size_t errlen)
{
    struct t_hooks *h = arg;
    h->snapshot_calls++;
    h->snapshot_background = background;
    if (h->snapshot_fail) {
        snprintf(errmsg, errlen, "Background save already in progress");
        return 1;
    }
    return 0;
}

static long long t_last_snapshot(void *arg)
{
    return 1700000000;
}

static void fx_hooks(struct fx *f, struct t_hooks *h)
{
    memset(h, 0, sizeof(*h));
    struct cmd_hooks hooks = {
        .arg = h,
        .info = t_info,
        .config_get = t_config_get,
        .config_set = t_config_set,
        .config_resetstat = t_config_resetstat,
        .client_list = t_client_list,
        .client_kill = t_client_kill,
        .free_async = t_free_async,
        .shutdown = t_shutdown,
        .snapshot = t_snapshot,
        .last_snapshot = t_last_snapshot,
    };
    f->s.hooks = hooks;
}

TEST(client_subcommands_reply_as_redis)
{
    struct fx f;
    struct t_hooks h;
    fx_init(&f);
    fx_hooks(&f, &h);
    EXPECT(&f, &f.c, "CLIENT ID", ":7\r\n");
    EXPECT(&f, &f.c, "CLIENT GETNAME", "$-1\r\n");
    EXPECT(&f, &f.c, "CLIENT SETNAME conn-1", "+OK\r\n");
    EXPECT(&f, &f.c, "client getname", "$6\r\nconn-1\r\n");
    EXPECT(&f, &f.c, "CLIENT SETNAME a\\sb",
           "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    EXPECT(&f, &f.c, "CLIENT SETNAME a\nb",
           "-ERR Client names cannot contain spaces, newlines or special characters.\r\n");
    EXPECT(&f, &f.c, "CLIENT GETNAME", "$6\r\nconn-1\r\n");
    EXPECT(&f, &f.c, "CLIENT SETNAME \\e", "+OK\r\n"); /* empty name clears it */
    EXPECT(&f, &f.c, "CLIENT GETNAME", "$-1\r\n");
    EXPECT(&f, &f.c, "CLIENT LIST", "$10\r\nid=7\nid=8\n\r\n");
    EXPECT(&f, &f.c, "CLIENT LIST ID 8 99", "$5\r\nid=8\n\r\n");
    EXPECT(&f, &f.c, "CLIENT LIST ID x", "-ERR Invalid client ID\r\n");
    EXPECT(&f, &f.c, "CLIENT LIST TYPE pubsub", "$0\r\n\r\n");
    EXPECT(&f, &f.c, "CLIENT LIST TYPE x", "-ERR Unknown client type 'x'\r\n");
    EXPECT(&f, &f.c, "CLIENT LIST FOO", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "CLIENT INFO", "$5\r\nid=7\n\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL ID 8", ":1\r\n");
    CHECK_EQ_INT(h.killed_id, 8);
    EXPECT(&f, &f.c, "CLIENT KILL ID 9999", ":0\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL ID x", "-ERR client-id should be greater than 0\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL 1.2.3.4:5", "-ERR No such client\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL 1.1.1.1:8", "+OK\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL ADDR 1.1.1.1:7 SKIPME no", ":1\r\n");
    CHECK_EQ_INT(h.killed_id, 7);
    EXPECT(&f, &f.c, "CLIENT KILL LADDR 2.2.2.2:1 SKIPME no", ":2\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL TYPE normal SKIPME no", ":2\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL TYPE master", ":0\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL TYPE x", "-ERR Unknown client type 'x'\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL USER nobody", "-ERR No such user 'nobody'\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL MAXAGE 5 SKIPME no", ":2\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL MAXAGE 50 SKIPME no", ":0\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL FOO bar", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "CLIENT KILL", "-ERR wrong number of arguments for 'client|kill' command\r\n");
    EXPECT(&f, &f.c, "CLIENT SETINFO lib-name redis-py", "+OK\r\n");
    EXPECT(&f, &f.c, "CLIENT SETINFO foo x", "-ERR Unrecognized option 'foo'\r\n");
    EXPECT(&f, &f.c, "CLIENT NO-EVICT on", "+OK\r\n");
    EXPECT(&f, &f.c, "CLIENT NO-TOUCH off", "+OK\r\n");
    EXPECT(&f, &f.c, "CLIENT NO-EVICT x", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "CLIENT REPLY ON", "+OK\r\n");
    EXPECT(&f, &f.c, "CLIENT REPLY x", "-ERR syntax error\r\n");
    /* OFF: nothing is answered, errors included, until ON */
    EXPECT(&f, &f.c, "CLIENT REPLY OFF", "");
    EXPECT(&f, &f.c, "SET r 1", "");
    EXPECT(&f, &f.c, "NOSUCHCOMMAND", "");
    EXPECT(&f, &f.c, "CLIENT REPLY ON", "+OK\r\n");
    EXPECT(&f, &f.c, "GET r", "$1\r\n1\r\n"); /* the write did happen */
    /* SKIP: neither the SKIP nor the next command is answered */
    EXPECT(&f, &f.c, "CLIENT REPLY SKIP", "");
    EXPECT(&f, &f.c, "INCR r", "");
    EXPECT(&f, &f.c, "GET r", "$1\r\n2\r\n");
    /* RESET turns replies back on, and answers itself (as in Redis) */
    EXPECT(&f, &f.c, "CLIENT REPLY OFF", "");
    EXPECT(&f, &f.c, "RESET", "+RESET\r\n");
    EXPECT(&f, &f.c, "PING", "+PONG\r\n");
    EXPECT(&f, &f.c, "CLIENT FOO", "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n");
    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "CLIENT INFO", "=9\r\ntxt:id=7\n\r\n");
    EXPECT(&f, &f.c, "CLIENT GETNAME", "_\r\n");
    fx_free(&f);
}

TEST(info_is_bulk_in_resp2_and_verbatim_in_resp3)
{
    struct fx f;
    struct t_hooks h;
    fx_init(&f);
    fx_hooks(&f, &h);
    EXPECT(&f, &f.c, "INFO", "$22\r\n# Server\r\nsections:0\r\n\r\n");
    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "INFO keyspace",
           "=42\r\ntxt:# Server\r\nsections:1\r\nfirst:keyspace\r\n\r\n");
    fx_free(&f);
}

TEST(config_get_dedups_and_is_a_map_in_resp3)
{
    struct fx f;
    struct t_hooks h;
    fx_init(&f);
    fx_hooks(&f, &h);
    EXPECT(&f, &f.c, "CONFIG GET maxmemory", "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    EXPECT(&f, &f.c, "CONFIG GET max* maxmemory nothing",
           "*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n");
    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "CONFIG GET port", "%1\r\n$4\r\nport\r\n$4\r\n6379\r\n");
    EXPECT(&f, &f.c, "CONFIG SET maxmemory 100", "+OK\r\n");
    CHECK(strcmp(h.last_set, "maxmemory=100") == 0);
    EXPECT(&f, &f.c, "CONFIG SET maxmemory 5 foo 1",
           "-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n");
    CHECK(strcmp(h.last_set, "maxmemory=100") == 0); /* nothing applied */
    EXPECT(&f, &f.c, "CONFIG SET foo bar",
           "-ERR Unknown option or number of arguments for CONFIG SET - 'foo'\r\n");
    EXPECT(&f, &f.c, "CONFIG SET a b c", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "CONFIG SET maxmemory 0 MAXMEMORY 1",
           "-ERR CONFIG SET failed (possibly related to argument 'MAXMEMORY') - duplicate "
           "parameter\r\n");
    EXPECT(&f, &f.c, "CONFIG SET x", "-ERR wrong number of arguments for 'config|set' command\r\n");
    EXPECT(&f, &f.c, "CONFIG REWRITE", "-ERR The server is running without a config file\r\n");
    EXPECT(&f, &f.c, "CONFIG FOO", "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n");
    CHECK(f.s.stats.errors > 0);
    EXPECT(&f, &f.c, "CONFIG RESETSTAT", "+OK\r\n");
    CHECK_EQ_INT(h.resetstat_calls, 1);
    CHECK_EQ_INT(f.s.stats.errors, 0);
    fx_free(&f);
}

static int64_t fake_wall_us(void)
{
    return 1700000002012345;
}

TEST(server_commands_go_through_the_hooks)
{
    struct fx f;
    struct t_hooks h;
    fx_init(&f);
    EXPECT(&f, &f.c, "SAVE", "-ERR snapshots are not available\r\n");
    EXPECT(&f, &f.c, "SHUTDOWN", "-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    EXPECT(&f, &f.c, "LASTSAVE", ":0\r\n");
    fx_hooks(&f, &h);
    EXPECT(&f, &f.c, "SAVE", "+OK\r\n");
    CHECK(!h.snapshot_background);
    EXPECT(&f, &f.c, "BGSAVE", "+Background saving started\r\n");
    CHECK(h.snapshot_background);
    EXPECT(&f, &f.c, "BGSAVE SCHEDULE", "+Background saving started\r\n");
    EXPECT(&f, &f.c, "BGSAVE x", "-ERR syntax error\r\n");
    h.snapshot_fail = true;
    EXPECT(&f, &f.c, "BGSAVE", "-ERR Background save already in progress\r\n");
    EXPECT(&f, &f.c, "LASTSAVE", ":1700000000\r\n");
    EXPECT(&f, &f.c, "ROLE", "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n");
    EXPECT(&f, &f.c, "WAIT 1 100", ":0\r\n");
    EXPECT(&f, &f.c, "WAIT 0 0", ":0\r\n");
    EXPECT(&f, &f.c, "WAIT x 0", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, &f.c, "WAIT 1 x", "-ERR timeout is not an integer or out of range\r\n");
    EXPECT(&f, &f.c, "WAIT 1 -1", "-ERR timeout is negative\r\n");
    EXPECT(&f, &f.c, "TIME", "*2\r\n$10\r\n1700000000\r\n$1\r\n0\r\n");
    f.s.now_ms = T_NOW_MS + 1234;
    EXPECT(&f, &f.c, "TIME", "*2\r\n$10\r\n1700000001\r\n$6\r\n234000\r\n");
    f.s.wall_us = fake_wall_us; /* the server's clock, in microseconds */
    EXPECT(&f, &f.c, "TIME", "*2\r\n$10\r\n1700000002\r\n$5\r\n12345\r\n");
    f.s.wall_us = NULL;
    EXPECT(&f, &f.c, "SHUTDOWN ABORT", "-ERR No shutdown in progress.\r\n");
    EXPECT(&f, &f.c, "SHUTDOWN NOSAVE SAVE", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "SHUTDOWN FOO", "-ERR syntax error\r\n");
    CHECK_EQ_INT(h.shutdown_calls, 0);
    EXPECT(&f, &f.c, "SHUTDOWN SAVE NOW", "");
    CHECK_EQ_INT(h.shutdown_calls, 1);
    CHECK(h.shutdown_save);
    CHECK(f.c.flags & CMD_CLIENT_CLOSE_AFTER_REPLY);
    fx_free(&f);
}

TEST(command_reports_the_table_like_redis_7)
{
    struct fx f;
    fx_init(&f);
    size_t n;
    cmd_table(&n);
    char want[64];
    snprintf(want, sizeof(want), ":%zu\r\n", n);
    EXPECT(&f, &f.c, "COMMAND COUNT", want);
    /* byte-for-byte what redis 7.0 answers for GET in RESP2 */
    EXPECT(&f, &f.c, "COMMAND INFO get nosuch",
           "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n"
           "+@read\r\n+@string\r\n+@fast\r\n*0\r\n*1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n"
           "+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n"
           "*2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n"
           "$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n$7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n"
           ":0\r\n*0\r\n$-1\r\n");
    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "COMMAND INFO ping",
           "*1\r\n*10\r\n$4\r\nping\r\n:-1\r\n~1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n~2\r\n+@fast\r\n"
           "+@connection\r\n~0\r\n~0\r\n~0\r\n");
    EXPECT(&f, &f.c, "COMMAND DOCS get nosuch",
           "%1\r\n$3\r\nget\r\n%5\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n$5\r\n"
           "since\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\n"
           "O(1)\r\n$9\r\narguments\r\n*1\r\n%3\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\n"
           "key\r\n$14\r\nkey_spec_index\r\n:0\r\n");
    EXPECT(&f, &f.c, "COMMAND LIST FILTERBY PATTERN ge?", "*1\r\n$3\r\nget\r\n");
    EXPECT(&f, &f.c, "COMMAND LIST FILTERBY ACLCAT transaction",
           "*5\r\n$5\r\nmulti\r\n$4\r\nexec\r\n$7\r\ndiscard\r\n$5\r\nwatch\r\n$7\r\nunwatch\r\n");
    EXPECT(&f, &f.c, "COMMAND LIST x", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "COMMAND GETKEYS mset a 1 b 2", "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    EXPECT(&f, &f.c, "COMMAND GETKEYS nosuch a", "-ERR Invalid command specified\r\n");
    EXPECT(&f, &f.c, "COMMAND GETKEYS get", "-ERR wrong number of arguments for 'command|getkeys' command\r\n");
    EXPECT(&f, &f.c, "COMMAND FOO", "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n");
    /* the whole table: an array of one 10-element entry per command */
    t_run(&f, &f.c, "COMMAND");
    snprintf(want, sizeof(want), "*%zu\r\n*10\r\n", n);
    CHECK(strncmp(f.out.data, want, strlen(want)) == 0);
    t_run(&f, &f.c, "COMMAND DOCS");
    snprintf(want, sizeof(want), "%%%zu\r\n", n);
    CHECK(strncmp(f.out.data, want, strlen(want)) == 0);
    fx_free(&f);
}

/* What redis 7.0.15 answers, byte for byte, captured from redis-server. */
static const char t_docs_expire_resp2[] =
    "*2\r\n$6\r\nexpire\r\n*12\r\n$7\r\nsummary\r\n$35\r\n"
    "Set a key's time to live in seconds\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n"
    "$7\r\ngeneric\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n$7\r\nhistory\r\n*1\r\n*2\r\n"
    "$5\r\n7.0.0\r\n$41\r\nAdded options: `NX`, `XX`, `GT` and `LT`.\r\n$9\r\narguments\r\n"
    "*3\r\n*6\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\n"
    "key_spec_index\r\n:0\r\n*4\r\n$4\r\nname\r\n$7\r\nseconds\r\n$4\r\ntype\r\n$7\r\n"
    "integer\r\n*10\r\n$4\r\nname\r\n$9\r\ncondition\r\n$4\r\ntype\r\n$5\r\noneof\r\n$5\r\n"
    "since\r\n$5\r\n7.0.0\r\n$5\r\nflags\r\n*1\r\n+optional\r\n$9\r\narguments\r\n*4\r\n"
    "*6\r\n$4\r\nname\r\n$2\r\nnx\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n"
    "$2\r\nNX\r\n*6\r\n$4\r\nname\r\n$2\r\nxx\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\n"
    "token\r\n$2\r\nXX\r\n*6\r\n$4\r\nname\r\n$2\r\ngt\r\n$4\r\ntype\r\n$10\r\n"
    "pure-token\r\n$5\r\ntoken\r\n$2\r\nGT\r\n*6\r\n$4\r\nname\r\n$2\r\nlt\r\n$4\r\n"
    "type\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$2\r\nLT\r\n";

/* Redis 7.0's SET in RESP3 with what Redis 8.4 documents for IFEQ: a fifth
 * history entry and "ifeq-value" as the condition's third choice. */
static const char t_docs_set_resp3[] =
    "%1\r\n$3\r\nset\r\n%6\r\n$7\r\nsummary\r\n$29\r\nSet the string value of a key\r\n"
    "$5\r\nsince\r\n$5\r\n1.0.0\r\n$5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n"
    "$4\r\nO(1)\r\n$7\r\nhistory\r\n~5\r\n*2\r\n$6\r\n2.6.12\r\n$44\r\n"
    "Added the `EX`, `PX`, `NX` and `XX` options.\r\n*2\r\n$5\r\n6.0.0\r\n$27\r\n"
    "Added the `KEEPTTL` option.\r\n*2\r\n$5\r\n6.2.0\r\n$42\r\n"
    "Added the `GET`, `EXAT` and `PXAT` option.\r\n*2\r\n$5\r\n7.0.0\r\n$55\r\n"
    "Allowed the `NX` and `GET` options to be used together.\r\n"
    "*2\r\n$5\r\n8.4.0\r\n$24\r\nAdded the `IFEQ` option.\r\n$9\r\narguments\r\n*5\r\n"
    "%3\r\n$4\r\nname\r\n$3\r\nkey\r\n$4\r\ntype\r\n$3\r\nkey\r\n$14\r\nkey_spec_index\r\n"
    ":0\r\n%2\r\n$4\r\nname\r\n$5\r\nvalue\r\n$4\r\ntype\r\n$6\r\nstring\r\n%5\r\n$4\r\n"
    "name\r\n$9\r\ncondition\r\n$4\r\ntype\r\n$5\r\noneof\r\n$5\r\nsince\r\n$6\r\n"
    "2.6.12\r\n$5\r\nflags\r\n~1\r\n+optional\r\n$9\r\narguments\r\n*3\r\n%3\r\n$4\r\n"
    "name\r\n$2\r\nnx\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$2\r\nNX\r\n"
    "%3\r\n$4\r\nname\r\n$2\r\nxx\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n"
    "$2\r\nXX\r\n"
    "%4\r\n$4\r\nname\r\n$10\r\nifeq-value\r\n$4\r\ntype\r\n$6\r\nstring\r\n$5\r\ntoken\r\n"
    "$4\r\nIFEQ\r\n$5\r\nsince\r\n$5\r\n8.4.0\r\n"
    "%5\r\n$4\r\nname\r\n$3\r\nget\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\n"
    "token\r\n$3\r\nGET\r\n$5\r\nsince\r\n$5\r\n6.2.0\r\n$5\r\nflags\r\n~1\r\n+optional\r\n"
    "%4\r\n$4\r\nname\r\n$10\r\nexpiration\r\n$4\r\ntype\r\n$5\r\noneof\r\n$5\r\nflags\r\n"
    "~1\r\n+optional\r\n$9\r\narguments\r\n*5\r\n%4\r\n$4\r\nname\r\n$7\r\nseconds\r\n"
    "$4\r\ntype\r\n$7\r\ninteger\r\n$5\r\ntoken\r\n$2\r\nEX\r\n$5\r\nsince\r\n$6\r\n"
    "2.6.12\r\n%4\r\n$4\r\nname\r\n$12\r\nmilliseconds\r\n$4\r\ntype\r\n$7\r\ninteger\r\n"
    "$5\r\ntoken\r\n$2\r\nPX\r\n$5\r\nsince\r\n$6\r\n2.6.12\r\n%4\r\n$4\r\nname\r\n$17\r\n"
    "unix-time-seconds\r\n$4\r\ntype\r\n$9\r\nunix-time\r\n$5\r\ntoken\r\n$4\r\nEXAT\r\n"
    "$5\r\nsince\r\n$5\r\n6.2.0\r\n%4\r\n$4\r\nname\r\n$22\r\nunix-time-milliseconds\r\n"
    "$4\r\ntype\r\n$9\r\nunix-time\r\n$5\r\ntoken\r\n$4\r\nPXAT\r\n$5\r\nsince\r\n$5\r\n"
    "6.2.0\r\n%4\r\n$4\r\nname\r\n$7\r\nkeepttl\r\n$4\r\ntype\r\n$10\r\npure-token\r\n"
    "$5\r\ntoken\r\n$7\r\nKEEPTTL\r\n$5\r\nsince\r\n$5\r\n6.0.0\r\n";

/* CLIENT KILL's entry inside CLIENT's subcommands, RESP2: three levels of
 * nesting, a deprecated form and a repeatable oneof. */
static const char t_docs_client_kill_resp2[] =
    "$11\r\nclient|kill\r\n*12\r\n$7\r\nsummary\r\n$31\r\n"
    "Kill the connection of a client\r\n$5\r\nsince\r\n$5\r\n2.4.0\r\n$5\r\ngroup\r\n"
    "$10\r\nconnection\r\n$10\r\ncomplexity\r\n$48\r\n"
    "O(N) where N is the number of client connections\r\n$7\r\nhistory\r\n*5\r\n*2\r\n"
    "$6\r\n2.8.12\r\n$24\r\nAdded new filter format.\r\n*2\r\n$6\r\n2.8.12\r\n$12\r\n"
    "`ID` option.\r\n*2\r\n$5\r\n3.2.0\r\n$41\r\n"
    "Added `master` type in for `TYPE` option.\r\n*2\r\n$5\r\n5.0.0\r\n$91\r\n"
    "Replaced `slave` `TYPE` with `replica`. `slave` still supported for backward "
    "compatibility.\r\n"
    "*2\r\n$5\r\n6.2.0\r\n$15\r\n`LADDR` option.\r\n$9\r\narguments\r\n*1\r\n*6\r\n$4\r\n"
    "name\r\n$6\r\nfilter\r\n$4\r\ntype\r\n$5\r\noneof\r\n$9\r\narguments\r\n*2\r\n*6\r\n"
    "$4\r\nname\r\n$7\r\nip:port\r\n$4\r\ntype\r\n$6\r\nstring\r\n$16\r\n"
    "deprecated_since\r\n$6\r\n2.8.12\r\n*8\r\n$4\r\nname\r\n$10\r\nnew-format\r\n$4\r\n"
    "type\r\n$5\r\noneof\r\n$5\r\nflags\r\n*1\r\n+multiple\r\n$9\r\narguments\r\n*6\r\n"
    "*10\r\n$4\r\nname\r\n$9\r\nclient-id\r\n$4\r\ntype\r\n$7\r\ninteger\r\n$5\r\ntoken\r\n"
    "$2\r\nID\r\n$5\r\nsince\r\n$6\r\n2.8.12\r\n$5\r\nflags\r\n*1\r\n+optional\r\n*12\r\n"
    "$4\r\nname\r\n$26\r\nnormal_master_slave_pubsub\r\n$4\r\ntype\r\n$5\r\noneof\r\n$5\r\n"
    "token\r\n$4\r\nTYPE\r\n$5\r\nsince\r\n$6\r\n2.8.12\r\n$5\r\nflags\r\n*1\r\n"
    "+optional\r\n$9\r\narguments\r\n*5\r\n*6\r\n$4\r\nname\r\n$6\r\nnormal\r\n$4\r\n"
    "type\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$6\r\nNORMAL\r\n*8\r\n$4\r\nname\r\n$6\r\n"
    "master\r\n$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$6\r\nMASTER\r\n$5\r\n"
    "since\r\n$5\r\n3.2.0\r\n*6\r\n$4\r\nname\r\n$5\r\nslave\r\n$4\r\ntype\r\n$10\r\n"
    "pure-token\r\n$5\r\ntoken\r\n$5\r\nSLAVE\r\n*8\r\n$4\r\nname\r\n$7\r\nreplica\r\n"
    "$4\r\ntype\r\n$10\r\npure-token\r\n$5\r\ntoken\r\n$7\r\nREPLICA\r\n$5\r\nsince\r\n"
    "$5\r\n5.0.0\r\n*6\r\n$4\r\nname\r\n$6\r\npubsub\r\n$4\r\ntype\r\n$10\r\npure-token\r\n"
    "$5\r\ntoken\r\n$6\r\nPUBSUB\r\n*8\r\n$4\r\nname\r\n$8\r\nusername\r\n$4\r\ntype\r\n"
    "$6\r\nstring\r\n$5\r\ntoken\r\n$4\r\nUSER\r\n$5\r\nflags\r\n*1\r\n+optional\r\n*8\r\n"
    "$4\r\nname\r\n$7\r\nip:port\r\n$4\r\ntype\r\n$6\r\nstring\r\n$5\r\ntoken\r\n$4\r\n"
    "ADDR\r\n$5\r\nflags\r\n*1\r\n+optional\r\n*10\r\n$4\r\nname\r\n$7\r\nip:port\r\n$4\r\n"
    "type\r\n$6\r\nstring\r\n$5\r\ntoken\r\n$5\r\nLADDR\r\n$5\r\nsince\r\n$5\r\n6.2.0\r\n"
    "$5\r\nflags\r\n*1\r\n+optional\r\n*8\r\n$4\r\nname\r\n$6\r\nyes/no\r\n$4\r\ntype\r\n"
    "$6\r\nstring\r\n$5\r\ntoken\r\n$6\r\nSKIPME\r\n$5\r\nflags\r\n*1\r\n+optional\r\n";

TEST(command_docs_carry_complexity_and_arguments_like_redis_7)
{
    struct fx f;
    fx_init(&f);
    char err[256] = "";
    CHECK_EQ_INT(cmd_docs_check(err, sizeof(err)), 0);
    if (err[0] != '\0')
        fprintf(stderr, "  docs: %s\n", err);

    EXPECT(&f, &f.c, "COMMAND DOCS expire", t_docs_expire_resp2);
    t_run(&f, &f.c, "COMMAND DOCS client");
    CHECK(strstr(f.out.data, t_docs_client_kill_resp2) != NULL);
    /* only the subcommands Triad answers are advertised */
    CHECK(strstr(f.out.data, "client|setinfo") != NULL);
    CHECK(strstr(f.out.data, "client|pause") == NULL);
    CHECK(strstr(f.out.data, "client|tracking") == NULL);
    t_run(&f, &f.c, "COMMAND DOCS command");
    CHECK(strstr(f.out.data, "$12\r\ncommand|docs\r\n") != NULL);
    CHECK(strstr(f.out.data, "getkeysandflags") == NULL);

    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "COMMAND DOCS set", t_docs_set_resp3);

    /* Every command of the table has a complexity. The containers have
     * subcommands and no arguments of their own; of the rest all but these
     * take arguments, as in Redis. */
    static const char *const no_arguments[] = {
        "DBSIZE", "RANDOMKEY", "QUIT", "RESET", "TIME", "SAVE",
        "LASTSAVE", "ROLE", "MULTI", "EXEC", "DISCARD", "UNWATCH",
    };
    size_t n;
    const struct cmd_spec *t = cmd_table(&n);
    for (size_t i = 0; i < n; i++) {
        char line[64];
        snprintf(line, sizeof(line), "COMMAND DOCS %s", t[i].name);
        const char *got = t_run(&f, &f.c, line);
        bool container = (t[i].flags & CMD_SUBCOMMANDS) != 0;
        bool takes_args = !container;
        for (size_t k = 0; k < TRIAD_ARRAY_LEN(no_arguments); k++)
            takes_args &= strcmp(t[i].name, no_arguments[k]) != 0;
        const char *subs = strstr(got, "$11\r\nsubcommands\r\n");
        const char *args = strstr(got, "$9\r\narguments\r\n");
        bool own_args = args != NULL && (subs == NULL || args < subs);
        bool ok = strstr(got, "$10\r\ncomplexity\r\n") != NULL && own_args == takes_args &&
                  (subs != NULL) == container;
        if (!ok)
            fprintf(stderr, "  docs of %s: %s\n", t[i].name, got);
        CHECK(ok);
    }
    fx_free(&f);
}

/* ---- MULTI / EXEC / WATCH ---- */

TEST(exec_runs_the_queued_commands_in_order)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SET a 1", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "SELECT 2", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "SET b 2", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "INCR b", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "PING", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "EXISTS a", "+QUEUED\r\n");
    CHECK_EQ_INT(f.log.n, 0); /* nothing ran yet */
    EXPECT(&f, &f.c, "EXEC", "*6\r\n+OK\r\n+OK\r\n+OK\r\n:3\r\n+PONG\r\n:0\r\n");
    CHECK_EQ_INT(f.c.db, 2);
    CHECK(!(f.c.flags & CMD_CLIENT_MULTI));
    EXPECT(&f, &f.c, "GET b", "$1\r\n3\r\n");
    EXPECT(&f, &f.c, "SELECT 0", "+OK\r\n");
    EXPECT(&f, &f.c, "GET a", "$1\r\n1\r\n");
    /* the whole transaction is one log record */
    CHECK_EQ_INT(f.log.n, 1);
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "EXEC", "*0\r\n");
    CHECK_EQ_INT(f.log.n, 1);
    fx_free(&f);
}

TEST(transaction_errors_use_redis_texts)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "EXEC", "-ERR EXEC without MULTI\r\n");
    EXPECT(&f, &f.c, "DISCARD", "-ERR DISCARD without MULTI\r\n");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "MULTI", "-ERR MULTI calls can not be nested\r\n");
    EXPECT(&f, &f.c, "WATCH x", "-ERR WATCH inside MULTI is not allowed\r\n");
    /* neither of those dooms the transaction */
    EXPECT(&f, &f.c, "SET x 1", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "EXEC", "*1\r\n+OK\r\n");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SET x 2", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "DISCARD", "+OK\r\n");
    EXPECT(&f, &f.c, "GET x", "$1\r\n1\r\n");
    fx_free(&f);
}

TEST(an_error_while_queueing_aborts_the_exec)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SET x 1", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "FOO", "-ERR unknown command 'FOO', with args beginning with: \r\n");
    CHECK(f.c.flags & CMD_CLIENT_DIRTY_EXEC);
    EXPECT(&f, &f.c, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EXPECT(&f, &f.c, "EXISTS x", ":0\r\n");
    CHECK_EQ_INT(f.c.flags, 0);

    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    EXPECT(&f, &f.c, "SET x 1", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    EXPECT(&f, &f.c, "EXISTS x", ":0\r\n");
    CHECK_EQ_INT(f.log.n, 0);
    fx_free(&f);
}

TEST(exec_fails_with_a_null_array_when_another_client_touched_a_watched_key)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET k 1");
    EXPECT(&f, &f.c, "WATCH k other", "+OK\r\n");
    EXPECT(&f, &f.c2, "SET k 2", "+OK\r\n");
    CHECK(f.c.flags & CMD_CLIENT_DIRTY_CAS);
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SET k 3", "+QUEUED\r\n");
    EXPECT(&f, &f.c, "EXEC", "*-1\r\n");
    EXPECT(&f, &f.c, "GET k", "$1\r\n2\r\n");
    CHECK_EQ_INT(f.c.watched_len, 0);

    /* RESP3: a null; and a watch in another db is not touched by this one */
    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "WATCH k", "+OK\r\n");
    t_run(&f, &f.c2, "SELECT 1");
    t_run(&f, &f.c2, "SET k 9");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "EXEC", "*0\r\n");
    EXPECT(&f, &f.c, "WATCH k", "+OK\r\n");
    t_run(&f, &f.c2, "SELECT 0");
    EXPECT(&f, &f.c2, "DEL k", ":1\r\n");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "EXEC", "_\r\n");
    fx_free(&f);
}

TEST(unwatch_and_discard_forget_the_watched_keys)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "WATCH a b", "+OK\r\n");
    EXPECT(&f, &f.c2, "WATCH a", "+OK\r\n");
    EXPECT(&f, &f.c, "UNWATCH", "+OK\r\n");
    CHECK_EQ_INT(f.c.watched_len, 0);
    t_run(&f, &f.c2, "SET a 1"); /* dirties c2 itself, not c */
    CHECK(!(f.c.flags & CMD_CLIENT_DIRTY_CAS));
    CHECK(f.c2.flags & CMD_CLIENT_DIRTY_CAS);
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "EXEC", "*0\r\n");
    /* UNWATCH also forgives a touch that already happened */
    EXPECT(&f, &f.c2, "UNWATCH", "+OK\r\n");
    EXPECT(&f, &f.c2, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c2, "EXEC", "*0\r\n");
    EXPECT(&f, &f.c, "WATCH a", "+OK\r\n");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "DISCARD", "+OK\r\n");
    CHECK_EQ_INT(f.c.watched_len, 0);
    t_run(&f, &f.c2, "SET a 2");
    CHECK(!(f.c.flags & CMD_CLIENT_DIRTY_CAS));
    fx_free(&f);
}

TEST(flush_dirties_watchers_of_existing_keys_only)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c2, "SET present 1");
    EXPECT(&f, &f.c, "WATCH absent", "+OK\r\n");
    t_run(&f, &f.c2, "FLUSHALL");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "EXEC", "*0\r\n");

    t_run(&f, &f.c2, "SET present 1");
    EXPECT(&f, &f.c, "WATCH present", "+OK\r\n");
    t_run(&f, &f.c2, "FLUSHALL");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "EXEC", "*-1\r\n");

    t_run(&f, &f.c2, "SET present 1");
    EXPECT(&f, &f.c, "WATCH present", "+OK\r\n");
    t_run(&f, &f.c2, "SELECT 1");
    t_run(&f, &f.c2, "FLUSHDB"); /* another db */
    CHECK(!(f.c.flags & CMD_CLIENT_DIRTY_CAS));
    t_run(&f, &f.c2, "SELECT 0");
    t_run(&f, &f.c2, "FLUSHDB");
    CHECK(f.c.flags & CMD_CLIENT_DIRTY_CAS);
    fx_free(&f);
}

TEST(a_watched_key_that_expires_fails_the_exec)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET k v PX 100");
    EXPECT(&f, &f.c, "WATCH k", "+OK\r\n");
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    f.s.now_ms += 200;
    EXPECT(&f, &f.c, "EXEC", "*-1\r\n");
    fx_free(&f);
}

TEST(active_expiry_dirties_watchers_and_counts)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET k v PX 100");
    t_run(&f, &f.c, "SET j v");
    EXPECT(&f, &f.c2, "WATCH k", "+OK\r\n");
    f.s.now_ms += 200;
    CHECK_EQ_INT(cmd_active_expire(&f.s, 100), 1);
    CHECK_EQ_INT(f.s.stats.expired_keys, 1);
    CHECK(f.c2.flags & CMD_CLIENT_DIRTY_CAS);
    EXPECT(&f, &f.c, "DBSIZE", ":1\r\n");
    fx_free(&f);
}

TEST(multi_queue_stops_at_its_limit)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "MULTI");
    for (int i = 0; i < CMD_MULTI_QUEUE_MAX; i++)
        t_run(&f, &f.c, "PING");
    CHECK_EQ_INT(f.c.queue_len, CMD_MULTI_QUEUE_MAX);
    CHECK(!(f.c.flags & CMD_CLIENT_DIRTY_EXEC));
    EXPECT(&f, &f.c, "PING", "-ERR Transaction queue limit reached\r\n");
    CHECK(f.c.flags & CMD_CLIENT_DIRTY_EXEC);
    EXPECT(&f, &f.c, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    CHECK_EQ_INT(f.c.queue_len, 0);
    fx_free(&f);
}

/* ---- OOM ---- */

static size_t t_used_memory_value;
static size_t t_used_memory(void)
{
    return t_used_memory_value;
}

TEST(denyoom_commands_are_refused_over_maxmemory)
{
    struct fx f;
    fx_init(&f);
    f.s.maxmemory = 1000;
    f.s.used_memory = t_used_memory;
    t_used_memory_value = 500;
    EXPECT(&f, &f.c, "SET a 1", "+OK\r\n");
    t_used_memory_value = 2000;
    EXPECT(&f, &f.c, "SET a 2", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    EXPECT(&f, &f.c, "COPY a b", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    /* reads and deletes still work: they free memory */
    EXPECT(&f, &f.c, "GET a", "$1\r\n1\r\n");
    EXPECT(&f, &f.c, "DEL a", ":1\r\n");
    /* queued: the refusal dooms the transaction */
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SET a 3", "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    EXPECT(&f, &f.c, "EXEC", "-EXECABORT Transaction discarded because of previous errors.\r\n");
    /* queued while there was room, executed when there is none */
    t_used_memory_value = 500;
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SET a 4", "+QUEUED\r\n");
    t_used_memory_value = 2000;
    EXPECT(&f, &f.c, "EXEC",
           "-EXECABORT Transaction discarded because of: OOM command not allowed when used "
           "memory > 'maxmemory'.\r\n");
    CHECK(!(f.c.flags & CMD_CLIENT_MULTI));
    EXPECT(&f, &f.c, "EXISTS a", ":0\r\n");
    f.s.maxmemory = 0;
    EXPECT(&f, &f.c, "SET a 5", "+OK\r\n");
    fx_free(&f);
}

/* ---- stats ---- */

TEST(stats_count_commands_errors_and_keyspace_reads)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET a 1");
    t_run(&f, &f.c, "EXISTS a b");
    t_run(&f, &f.c, "TYPE a");
    t_run(&f, &f.c, "RENAME nokey x");
    t_run(&f, &f.c, "NOPE");
    CHECK_EQ_INT(f.s.stats.commands_processed, 4);
    CHECK_EQ_INT(f.s.stats.errors, 2);
    CHECK_EQ_INT(f.s.stats.rejected_calls, 1);
    CHECK_EQ_INT(f.s.stats.keyspace_hits, 2);
    CHECK_EQ_INT(f.s.stats.keyspace_misses, 1);
    CHECK(f.s.dirty >= 1);
    fx_free(&f);
}

/* ---- log records and replay ---- */

/* Decode a record into "db:ARG ARG;db:ARG..." for assertions. */
static void t_describe(const struct tbuf *r, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)r->data;
    uint32_t n = tbuf_read_u32le(p + 8);
    size_t off = 12, o = 0;
    out[0] = '\0';
    for (uint32_t i = 0; i < n; i++) {
        uint32_t db = tbuf_read_u32le(p + off), argc = tbuf_read_u32le(p + off + 4);
        off += 8;
        o += (size_t)snprintf(out + o, size - o, "%s%u:", i ? ";" : "", db);
        for (uint32_t j = 0; j < argc; j++) {
            uint32_t l = tbuf_read_u32le(p + off);
            off += 4;
            o += (size_t)snprintf(out + o, size - o, "%s%.*s", j ? " " : "", (int)l, p + off);
            off += l;
        }
    }
}

TEST(writes_produce_records_in_the_documented_format)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET a 1");
    CHECK_EQ_INT(f.last_lsn, 1);
    CHECK_EQ_INT(f.log.n, 1);
    const unsigned char *p = (const unsigned char *)f.log.rec[0].data;
    CHECK_EQ_INT(f.log.rec[0].len, 12 + 8 + (4 + 3) + (4 + 1) + (4 + 1));
    CHECK_EQ_INT(tbuf_read_u64le(p), T_NOW_MS);
    CHECK_EQ_INT(tbuf_read_u32le(p + 8), 1);
    CHECK_EQ_INT(tbuf_read_u32le(p + 12), 0);
    CHECK_EQ_INT(tbuf_read_u32le(p + 16), 3);
    CHECK(memcmp(p + 20, "\3\0\0\0SET", 7) == 0);

    /* reads and no-op writes log nothing */
    t_run(&f, &f.c, "GET a");
    t_run(&f, &f.c, "DEL nokey");
    t_run(&f, &f.c, "RENAMENX a a");
    CHECK_EQ_INT(f.last_lsn, 0);
    CHECK_EQ_INT(f.log.n, 1);

    char d[256];
    t_run(&f, &f.c, "SET b 2");
    t_run(&f, &f.c, "DEL a nokey b a");
    t_describe(&f.log.rec[2], d, sizeof(d));
    CHECK(strcmp(d, "0:DEL a b") == 0);
    t_run(&f, &f.c, "SET a 1");
    t_run(&f, &f.c, "SELECT 3");
    t_run(&f, &f.c, "SET x 1");
    t_describe(&f.log.rec[4], d, sizeof(d));
    CHECK(strcmp(d, "3:SET x 1") == 0);
    t_run(&f, &f.c, "MULTI");
    t_run(&f, &f.c, "UNLINK x");
    t_run(&f, &f.c, "SELECT 0");
    t_run(&f, &f.c, "COPY a b DB 5");
    t_run(&f, &f.c, "RENAME a c");
    t_run(&f, &f.c, "FLUSHDB ASYNC");
    EXPECT(&f, &f.c, "EXEC", "*5\r\n:1\r\n+OK\r\n:1\r\n+OK\r\n+OK\r\n");
    CHECK_EQ_INT(f.log.n, 6);
    t_describe(&f.log.rec[5], d, sizeof(d));
    CHECK(strcmp(d, "3:DEL x;0:COPY a b DB 5;0:RENAME a c;0:FLUSHDB") == 0);
    t_run(&f, &f.c, "FLUSHALL");
    t_describe(&f.log.rec[6], d, sizeof(d));
    CHECK(strcmp(d, "0:FLUSHALL") == 0);
    fx_free(&f);
}

/* An in-place sink (cmd.h, log_begin): records are built in one buffer
 * after a 3-byte stand-in for the WAL's framing, as the server's are. */
struct t_sink {
    struct tbuf buf;
    size_t start;          /* the open record's framing */
    bool open;
    struct t_records done; /* each finished record's body, copied out */
    int cancelled;
};

static struct tbuf *t_sink_begin(void *arg)
{
    struct t_sink *k = arg;
    TRIAD_ASSERT(!k->open);
    k->open = true;
    k->start = k->buf.len;
    tbuf_append(&k->buf, "HDR", 3);
    return &k->buf;
}

static uint64_t t_sink_end(void *arg)
{
    struct t_sink *k = arg;
    TRIAD_ASSERT(k->open);
    k->open = false;
    TRIAD_ASSERT(memcmp(k->buf.data + k->start, "HDR", 3) == 0);
    return t_log(&k->done, k->buf.data + k->start + 3, k->buf.len - k->start - 3);
}

static void t_sink_cancel(void *arg)
{
    struct t_sink *k = arg;
    TRIAD_ASSERT(k->open);
    k->open = false;
    k->buf.len = k->start;
    k->cancelled++;
}

TEST(records_built_in_the_sinks_buffer_equal_copied_ones)
{
    static const char *const script[] = {
        "SET a 1", "SET b 2 PX 50000", "GET a", "INCR a", "DEL a nokey b", "SELECT 4",
        "SET x y", "MULTI", "SET t1 1", "SET t2 2", "DEL t1", "EXEC", "FLUSHALL",
    };
    struct fx f, g;
    fx_init(&f);
    fx_init(&g);
    struct t_sink k = {0};
    g.s.log_begin = t_sink_begin;
    g.s.log_end = t_sink_end;
    g.s.log_cancel = t_sink_cancel;
    g.s.log_arg = &k;
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(script); i++) {
        t_run(&f, &f.c, script[i]);
        t_run(&g, &g.c, script[i]);
        CHECK_EQ_INT(g.last_lsn, f.last_lsn);
        CHECK(!k.open);
    }
    CHECK_EQ_INT(g.log.n, 0); /* log_begin takes precedence over log_fn */
    CHECK_EQ_INT(k.done.n, f.log.n);
    size_t framed = 0;
    for (int i = 0; i < f.log.n && i < k.done.n; i++) {
        CHECK_EQ_INT(k.done.rec[i].len, f.log.rec[i].len);
        CHECK(memcmp(k.done.rec[i].data, f.log.rec[i].data, f.log.rec[i].len) == 0);
        framed += 3 + f.log.rec[i].len;
    }
    CHECK_EQ_INT(k.buf.len, framed);
    CHECK_EQ_INT(k.cancelled, 0);

    /* Replay propagates into an in-place record too, and cancels it. */
    struct cmd_server r;
    cmd_server_init(&r, CMD_DATABASES_DEFAULT, 1);
    struct t_sink rk = {0};
    r.log_begin = t_sink_begin;
    r.log_end = t_sink_end;
    r.log_cancel = t_sink_cancel;
    r.log_arg = &rk;
    char err[128];
    for (int i = 0; i < f.log.n; i++)
        CHECK_EQ_INT(cmd_replay(&r, f.log.rec[i].data, f.log.rec[i].len, err, sizeof(err)), 0);
    CHECK_EQ_INT(rk.done.n, 0);
    CHECK_EQ_INT(rk.buf.len, 0);
    CHECK(rk.cancelled > 0);
    cmd_server_free(&r);
    tbuf_free(&rk.buf);
    t_records_free(&rk.done);
    tbuf_free(&k.buf);
    t_records_free(&k.done);
    fx_free(&f);
    fx_free(&g);
}

/* A canonical view of one server's data: every db's keys, sorted, with
 * values and deadlines. */
static void t_state(struct cmd_server *s, struct tbuf *out)
{
    struct tbuf o = {0};
    struct cmd_client c;
    for (int db = 0; db < s->databases; db++) {
        cmd_client_init(&c, 99, &o);
        c.db = db;
        char *argv[2] = {"KEYS", "*"};
        size_t argvlen[2] = {4, 1};
        tbuf_reset(&o);
        cmd_exec(s, &c, 2, argv, argvlen);
        /* parse the array of bulks, sort the keys */
        char *keys[256];
        size_t lens[256];
        int n = atoi(o.data + 1);
        TRIAD_ASSERT(n < 256);
        char *p = strchr(o.data, '\n') + 1;
        for (int i = 0; i < n; i++) {
            lens[i] = (size_t)atoi(p + 1);
            p = strchr(p, '\n') + 1;
            keys[i] = tstrndup(p, lens[i]);
            p += lens[i] + 2;
        }
        for (int i = 1; i < n; i++)
            for (int j = i; j > 0 && strcmp(keys[j - 1], keys[j]) > 0; j--) {
                char *t = keys[j];
                keys[j] = keys[j - 1];
                keys[j - 1] = t;
            }
        for (int i = 0; i < n; i++) {
            struct kv_val v;
            TRIAD_ASSERT(kv_get(s->db[db], keys[i], strlen(keys[i]), s->now_ms, &v) == 0);
            tbuf_appendf(out, "%d:%s=%.*s@%lld\n", db, keys[i], (int)v.len, v.ptr,
                         (long long)v.expire_ms);
            tfree(keys[i]);
        }
        cmd_client_free(s, &c);
    }
    tbuf_appendc(out, '\0');
    out->len--;
    tbuf_free(&o);
}

TEST(replaying_the_records_rebuilds_the_same_state)
{
    struct fx f;
    fx_init(&f);
    static const char *const script[] = {
        "SET a 1", "SET b 2 PX 50000", "SET gone x", "INCR a", "APPEND b zz", "DEL gone nokey",
        "SELECT 4", "SET x y", "COPY x y", "RENAME x z", "SELECT 0", "COPY a a2 DB 7",
        "MSET m1 1 m2 2", "RENAMENX m1 m3", "SET e v EX 100", "EXPIRE a 1000", "PERSIST a",
        "MULTI", "SET t1 1", "SET t2 2", "DEL m2", "EXEC", "SELECT 9", "SET f 1", "FLUSHDB",
        "SET f2 2", "SELECT 0", "SETEX s 100 v", "GETDEL e",
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(script); i++) {
        f.s.now_ms += 10; /* records carry their own time */
        t_run(&f, &f.c, script[i]);
        CHECK(f.out.data[0] != '-');
    }
    struct tbuf want = {0};
    t_state(&f.s, &want);

    struct cmd_server r;
    cmd_server_init(&r, CMD_DATABASES_DEFAULT, 1);
    struct t_records relog = {0};
    r.log_fn = t_log; /* must not be called: replay is never logged */
    r.log_arg = &relog;
    r.now_ms = 5; /* ignored: every record says when it ran */
    char err[128];
    for (int i = 0; i < f.log.n; i++)
        CHECK_EQ_INT(cmd_replay(&r, f.log.rec[i].data, f.log.rec[i].len, err, sizeof(err)), 0);
    CHECK_EQ_INT(relog.n, 0);
    CHECK_EQ_INT(r.now_ms, 5);
    r.now_ms = f.s.now_ms;
    struct tbuf got = {0};
    t_state(&r, &got);
    CHECK(want.len > 0);
    CHECK_MEM_STR(got.data, got.len, want.data);

    /* a FLUSHALL replays too */
    t_run(&f, &f.c, "FLUSHALL");
    const struct tbuf *last = &f.log.rec[f.log.n - 1];
    CHECK_EQ_INT(cmd_replay(&r, last->data, last->len, err, sizeof(err)), 0);
    for (int db = 0; db < r.databases; db++)
        CHECK_EQ_INT(kv_count(r.db[db]), 0);
    tbuf_free(&want);
    tbuf_free(&got);
    t_records_free(&relog);
    cmd_server_free(&r);
    fx_free(&f);
}

TEST(replay_decides_expiry_at_the_time_of_the_record)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET k v PX 100");
    f.s.now_ms += 50;
    t_run(&f, &f.c, "RENAME k k2"); /* alive at +50: renamed */
    struct cmd_server r;
    cmd_server_init(&r, CMD_DATABASES_DEFAULT, 1);
    r.now_ms = T_NOW_MS + 100000; /* recovery much later */
    char err[128];
    for (int i = 0; i < f.log.n; i++)
        CHECK_EQ_INT(cmd_replay(&r, f.log.rec[i].data, f.log.rec[i].len, err, sizeof(err)), 0);
    struct kv_val v;
    CHECK_EQ_INT(kv_get(r.db[0], "k2", 2, T_NOW_MS + 60, &v), 0);
    CHECK_EQ_INT(v.expire_ms, T_NOW_MS + 100);
    cmd_server_free(&r);
    fx_free(&f);
}

static int t_replay_bytes(struct cmd_server *r, const struct tbuf *b, char *err, size_t errlen)
{
    return cmd_replay(r, b->data, b->len, err, errlen);
}

TEST(replay_rejects_corrupt_records_and_applies_none_of_them)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "MULTI");
    t_run(&f, &f.c, "SET a 1");
    t_run(&f, &f.c, "SET b 2");
    t_run(&f, &f.c, "EXEC");
    CHECK_EQ_INT(f.log.n, 1);
    const struct tbuf *good = &f.log.rec[0];

    struct cmd_server r;
    cmd_server_init(&r, CMD_DATABASES_DEFAULT, 1);
    char err[128];
    /* every truncation */
    for (size_t n = 0; n < good->len; n++) {
        err[0] = '\0';
        CHECK_EQ_INT(cmd_replay(&r, good->data, n, err, sizeof(err)), TRIAD_ECORRUPT);
        CHECK(err[0] != '\0');
    }
    CHECK_EQ_INT(kv_count(r.db[0]), 0);

    struct tbuf b = {0};
    /* trailing garbage */
    tbuf_append(&b, good->data, good->len);
    tbuf_appendc(&b, 'x');
    CHECK_EQ_INT(t_replay_bytes(&r, &b, err, sizeof(err)), TRIAD_ECORRUPT);
    /* a bad db in the second command: the first is not applied either */
    tbuf_reset(&b);
    tbuf_append(&b, good->data, good->len);
    size_t second = 12 + 8 + (4 + 3) + (4 + 1) + (4 + 1);
    tbuf_write_u32le(b.data + second, 16);
    CHECK_EQ_INT(t_replay_bytes(&r, &b, err, sizeof(err)), TRIAD_ECORRUPT);
    CHECK(strstr(err, "db") != NULL);
    CHECK_EQ_INT(kv_count(r.db[0]), 0);
    /* ncmds 0, ncmds too large, argc 0, argc huge, a huge argument length */
    static const size_t patch_at[] = {8, 8, 16, 16, 20};
    static const uint32_t patch_val[] = {0, 3, 0, 0xffffffffu, 0x7fffffffu};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(patch_at); i++) {
        tbuf_reset(&b);
        tbuf_append(&b, good->data, good->len);
        tbuf_write_u32le(b.data + patch_at[i], patch_val[i]);
        CHECK_EQ_INT(t_replay_bytes(&r, &b, err, sizeof(err)), TRIAD_ECORRUPT);
    }
    /* not a command, or not a write, or a bad arity */
    tbuf_reset(&b);
    tbuf_append(&b, good->data, good->len);
    memcpy(b.data + 24, "GET", 3);
    CHECK_EQ_INT(t_replay_bytes(&r, &b, err, sizeof(err)), TRIAD_ECORRUPT);
    memcpy(b.data + 24, "XYZ", 3);
    CHECK_EQ_INT(t_replay_bytes(&r, &b, err, sizeof(err)), TRIAD_ECORRUPT);
    tbuf_reset(&b);
    tbuf_append(&b, good->data, good->len);
    tbuf_write_u32le(b.data + 16, 2); /* SET a, then "1" read as a db... */
    CHECK_EQ_INT(t_replay_bytes(&r, &b, err, sizeof(err)), TRIAD_ECORRUPT);
    CHECK_EQ_INT(kv_count(r.db[0]), 0);

    /* random bit flips never crash; each either applies or is refused */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 2000; i++) {
        tbuf_reset(&b);
        tbuf_append(&b, good->data, good->len);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.data[x % b.len] ^= (char)(1u << (x >> 32) % 8);
        int rc = t_replay_bytes(&r, &b, err, sizeof(err));
        CHECK(rc == 0 || rc == TRIAD_ECORRUPT);
    }
    /* and the good record still applies */
    CHECK_EQ_INT(cmd_replay(&r, good->data, good->len, err, sizeof(err)), 0);
    CHECK(kv_exists(r.db[0], "a", 1, T_NOW_MS));
    CHECK(kv_exists(r.db[0], "b", 1, T_NOW_MS));
    tbuf_free(&b);
    cmd_server_free(&r);
    fx_free(&f);
}

/* ---- keyspace ---- */

TEST(del_exists_type_and_touch_count_like_redis)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "MSET a 1 b 2 c 3");
    EXPECT(&f, &f.c, "EXISTS a a b nokey", ":3\r\n");
    EXPECT(&f, &f.c, "TOUCH a b nokey", ":2\r\n");
    EXPECT(&f, &f.c, "TYPE a", "+string\r\n");
    EXPECT(&f, &f.c, "TYPE nokey", "+none\r\n");
    EXPECT(&f, &f.c, "DEL a a nokey", ":1\r\n");
    EXPECT(&f, &f.c, "UNLINK b c", ":2\r\n");
    EXPECT(&f, &f.c, "DEL b", ":0\r\n");
    EXPECT(&f, &f.c, "DBSIZE", ":0\r\n");
    /* an expired key is gone for every command */
    t_run(&f, &f.c, "SET e v PX 10");
    f.s.now_ms += 10;
    EXPECT(&f, &f.c, "EXISTS e", ":0\r\n");
    EXPECT(&f, &f.c, "TYPE e", "+none\r\n");
    EXPECT(&f, &f.c, "DEL e", ":0\r\n");
    /* more keys than the stack array */
    t_run(&f, &f.c, "MSET k1 1 k2 2 k3 3 k4 4 k5 5 k6 6 k7 7 k8 8 k9 9 k10 a k11 b k12 c "
                    "k13 d k14 e k15 f k16 g k17 h");
    EXPECT(&f, &f.c, "DEL k1 k2 k3 k4 k5 k6 k7 k8 k9 k10 k11 k12 k13 k14 k15 k16 k17 k18 k19",
           ":17\r\n");
    fx_free(&f);
}

TEST(glob_matches_as_redis_does)
{
    static const struct {
        const char *pat, *str;
        bool match;
    } cases[] = {
        {"*", "", true},           {"*", "abc", true},         {"a*", "abc", true},
        {"a*", "bac", false},      {"*c", "abc", true},        {"a*c", "ac", true},
        {"a*c", "abcd", false},    {"?", "a", true},           {"?", "", false},
        {"a?c", "abc", true},      {"a?c", "ac", false},       {"[abc]", "b", true},
        {"[abc]", "d", false},     {"[^abc]", "d", true},      {"[^abc]", "a", false},
        {"[a-c]x", "bx", true},    {"[c-a]x", "bx", true},     {"[a-c]x", "dx", false},
        {"h\\*llo", "h*llo", true}, {"h\\*llo", "hello", false}, {"\\?", "?", true},
        {"[\\]]", "]", true},      {"[\\^a]", "^", true},      {"h[ae]llo", "hallo", true},
        {"*a*b*c*", "xaybzc", true}, {"*a*b*c*", "xaycb", false}, {"abc", "abc", true},
        {"abc", "abcd", false},    {"abcd", "abc", false},      {"", "", true},
        {"", "a", false},          {"**", "x", true},           {"a[", "a", false},
        {"a[b", "ab", true},       {"user:*:name", "user:42:name", true},
        {"\\", "\\", true},
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(cases); i++) {
        bool got = cmd_glob_match(cases[i].pat, strlen(cases[i].pat), cases[i].str,
                                  strlen(cases[i].str), false);
        if (got != cases[i].match)
            fprintf(stderr, "  glob '%s' vs '%s': got %d\n", cases[i].pat, cases[i].str, got);
        CHECK(got == cases[i].match);
    }
    CHECK(cmd_glob_match("GE?", 3, "get", 3, true));
    CHECK(!cmd_glob_match("GE?", 3, "get", 3, false));
    /* a pathological pattern finishes (no exponential backtracking) */
    char pat[200], str[4000];
    for (int i = 0; i < 100; i++) {
        pat[2 * i] = '*';
        pat[2 * i + 1] = 'a';
    }
    pat[199] = 'b';
    memset(str, 'a', sizeof(str));
    CHECK(!cmd_glob_match(pat, sizeof(pat), str, sizeof(str), false));
}

TEST(keys_returns_the_live_keys_matching_a_pattern)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "MSET user:1 a user:2 b other c");
    t_run(&f, &f.c, "SET user:3 x PX 5");
    EXPECT(&f, &f.c, "KEYS nothing*", "*0\r\n");
    EXPECT(&f, &f.c, "KEYS oth?r", "*1\r\n$5\r\nother\r\n");
    t_run(&f, &f.c, "KEYS user:*");
    CHECK(strncmp(f.out.data, "*3\r\n", 4) == 0);
    f.s.now_ms += 5;
    t_run(&f, &f.c, "KEYS user:*");
    CHECK(strncmp(f.out.data, "*2\r\n", 4) == 0);
    CHECK(strstr(f.out.data, "user:3") == NULL);
    t_run(&f, &f.c, "KEYS *");
    CHECK(strncmp(f.out.data, "*3\r\n", 4) == 0);
    fx_free(&f);
}

/* Follow SCAN to the end; returns the number of distinct keys seen. */
static int t_scan_all(struct fx *f, const char *opts, int *calls)
{
    char seen[200] = {0};
    char line[128];
    unsigned long long cursor = 0;
    int distinct = 0;
    *calls = 0;
    do {
        snprintf(line, sizeof(line), "SCAN %llu %s", cursor, opts);
        const char *r = t_run(f, &f->c, line);
        (*calls)++;
        TRIAD_ASSERT(strncmp(r, "*2\r\n$", 5) == 0);
        const char *p = strchr(r + 4, '\n') + 1;
        cursor = strtoull(p, NULL, 10);
        p = strchr(p, '\n') + 1;
        int n = atoi(p + 1);
        p = strchr(p, '\n') + 1;
        for (int i = 0; i < n; i++) {
            p = strchr(p, '\n') + 1; /* $len */
            int k = atoi(p + 1);     /* keys are "k<number>" */
            TRIAD_ASSERT(k >= 0 && k < 200);
            if (!seen[k]++)
                distinct++;
            p = strchr(p, '\n') + 1;
        }
    } while (cursor != 0 && *calls < 10000);
    return distinct;
}

TEST(scan_visits_every_key_and_checks_its_arguments)
{
    struct fx f;
    fx_init(&f);
    char line[64];
    for (int i = 0; i < 150; i++) {
        snprintf(line, sizeof(line), "SET k%d v", i);
        t_run(&f, &f.c, line);
    }
    int calls;
    CHECK_EQ_INT(t_scan_all(&f, "", &calls), 150);
    CHECK(calls > 1);
    CHECK_EQ_INT(t_scan_all(&f, "COUNT 1000", &calls), 150);
    CHECK_EQ_INT(t_scan_all(&f, "MATCH k1?", &calls), 10);
    CHECK_EQ_INT(t_scan_all(&f, "TYPE string COUNT 7", &calls), 150);
    CHECK_EQ_INT(t_scan_all(&f, "TYPE list", &calls), 0);
    EXPECT(&f, &f.c, "SCAN x", "-ERR invalid cursor\r\n");
    EXPECT(&f, &f.c, "SCAN 18446744073709551616", "-ERR invalid cursor\r\n");
    EXPECT(&f, &f.c, "SCAN 0 COUNT 0", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "SCAN 0 COUNT x", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, &f.c, "SCAN 0 MATCH", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "SCAN 0 FOO x", "-ERR syntax error\r\n");
    t_run(&f, &f.c, "FLUSHDB");
    EXPECT(&f, &f.c, "SCAN 0", "*2\r\n$1\r\n0\r\n*0\r\n");
    fx_free(&f);
}

TEST(rename_and_renamenx_move_value_and_deadline)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "RENAME nokey b", "-ERR no such key\r\n");
    EXPECT(&f, &f.c, "RENAMENX nokey b", "-ERR no such key\r\n");
    t_run(&f, &f.c, "SET a 1 PX 5000");
    EXPECT(&f, &f.c, "RENAME a a", "+OK\r\n");
    EXPECT(&f, &f.c, "RENAMENX a a", ":0\r\n");
    EXPECT(&f, &f.c, "RENAME a b", "+OK\r\n");
    EXPECT(&f, &f.c, "EXISTS a", ":0\r\n");
    EXPECT(&f, &f.c, "GET b", "$1\r\n1\r\n");
    struct kv_val v;
    CHECK_EQ_INT(kv_get(f.s.db[0], "b", 1, f.s.now_ms, &v), 0);
    CHECK_EQ_INT(v.expire_ms, T_NOW_MS + 5000);
    t_run(&f, &f.c, "SET c 3");
    EXPECT(&f, &f.c, "RENAMENX b c", ":0\r\n");
    EXPECT(&f, &f.c, "RENAME b c", "+OK\r\n"); /* overwrites */
    EXPECT(&f, &f.c, "GET c", "$1\r\n1\r\n");
    EXPECT(&f, &f.c, "RENAMENX c d", ":1\r\n");
    EXPECT(&f, &f.c, "DBSIZE", ":1\r\n");
    fx_free(&f);
}

TEST(copy_follows_redis_checks_and_copies_across_dbs)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET a 1 PX 5000");
    EXPECT(&f, &f.c, "COPY a a", "-ERR source and destination objects are the same\r\n");
    EXPECT(&f, &f.c, "COPY a a DB 0", "-ERR source and destination objects are the same\r\n");
    EXPECT(&f, &f.c, "COPY a b DB x", "-ERR value is not an integer or out of range\r\n");
    EXPECT(&f, &f.c, "COPY a b DB 99", "-ERR DB index is out of range\r\n");
    EXPECT(&f, &f.c, "COPY a b DB -1", "-ERR DB index is out of range\r\n");
    EXPECT(&f, &f.c, "COPY a b FOO", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "COPY nokey b", ":0\r\n");
    EXPECT(&f, &f.c, "COPY a b", ":1\r\n");
    EXPECT(&f, &f.c, "COPY a b", ":0\r\n");
    t_run(&f, &f.c, "SET a 2");
    EXPECT(&f, &f.c, "COPY a b REPLACE", ":1\r\n");
    EXPECT(&f, &f.c, "GET b", "$1\r\n2\r\n");
    EXPECT(&f, &f.c, "COPY a a DB 3", ":1\r\n");
    t_run(&f, &f.c, "SELECT 3");
    EXPECT(&f, &f.c, "GET a", "$1\r\n2\r\n");
    t_run(&f, &f.c, "SELECT 0");
    /* the deadline travels with the copy */
    t_run(&f, &f.c, "SET t v PX 100");
    EXPECT(&f, &f.c, "COPY t t2", ":1\r\n");
    struct kv_val v;
    CHECK_EQ_INT(kv_get(f.s.db[0], "t2", 2, f.s.now_ms, &v), 0);
    CHECK_EQ_INT(v.expire_ms, T_NOW_MS + 100);
    fx_free(&f);
}

TEST(flush_randomkey_and_dbsize)
{
    struct fx f;
    fx_init(&f);
    EXPECT(&f, &f.c, "RANDOMKEY", "$-1\r\n");
    t_run(&f, &f.c, "SET only 1");
    EXPECT(&f, &f.c, "RANDOMKEY", "$4\r\nonly\r\n");
    t_run(&f, &f.c, "SELECT 1");
    t_run(&f, &f.c, "MSET a 1 b 2");
    EXPECT(&f, &f.c, "DBSIZE", ":2\r\n");
    EXPECT(&f, &f.c, "FLUSHDB x", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "FLUSHDB sync", "+OK\r\n");
    EXPECT(&f, &f.c, "DBSIZE", ":0\r\n");
    t_run(&f, &f.c, "SELECT 0");
    EXPECT(&f, &f.c, "DBSIZE", ":1\r\n");
    EXPECT(&f, &f.c, "FLUSHALL ASYNC SYNC", "-ERR syntax error\r\n");
    EXPECT(&f, &f.c, "FLUSHALL ASYNC", "+OK\r\n");
    EXPECT(&f, &f.c, "DBSIZE", ":0\r\n");
    t_run(&f, &f.c, "HELLO 3");
    EXPECT(&f, &f.c, "RANDOMKEY", "_\r\n");
    fx_free(&f);
}

TEST(handlers_leave_no_memory_behind)
{
    size_t before = tmem_used();
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "SET a 1");
    t_run(&f, &f.c, "WATCH a b c");
    t_run(&f, &f.c2, "WATCH a");
    t_run(&f, &f.c, "MULTI");
    t_run(&f, &f.c, "SET b 2");
    t_run(&f, &f.c, "CLIENT SETNAME x");
    fx_free(&f); /* frees clients with queued commands and watches */
    CHECK_EQ_INT(tmem_used(), before);
}

TEST(flush_async_hands_the_old_keyspace_to_the_server)
{
    struct fx f;
    struct t_hooks h;
    fx_init(&f);
    fx_hooks(&f, &h);
    t_run(&f, &f.c, "SET a 1");
    t_run(&f, &f.c, "SELECT 1");
    t_run(&f, &f.c, "SET b 2");
    EXPECT(&f, &f.c, "FLUSHALL ASYNC", "+OK\r\n");
    CHECK_EQ_INT(h.free_async_calls, 2); /* the two non-empty dbs only */
    EXPECT(&f, &f.c, "DBSIZE", ":0\r\n");
    EXPECT(&f, &f.c, "SET c 3", "+OK\r\n");
    EXPECT(&f, &f.c, "GET c", "$1\r\n3\r\n");
    EXPECT(&f, &f.c, "FLUSHDB ASYNC", "+OK\r\n");
    CHECK_EQ_INT(h.free_async_calls, 3);
    EXPECT(&f, &f.c, "FLUSHDB ASYNC", "+OK\r\n"); /* empty: nothing to hand over */
    CHECK_EQ_INT(h.free_async_calls, 3);
    t_run(&f, &f.c, "SET d 4");
    EXPECT(&f, &f.c, "FLUSHDB SYNC", "+OK\r\n");
    CHECK_EQ_INT(h.free_async_calls, 3);
    EXPECT(&f, &f.c, "FLUSHALL LATER", "-ERR syntax error\r\n");
    /* SHUTDOWN and SAVE are refused inside MULTI, and doom the EXEC */
    EXPECT(&f, &f.c, "MULTI", "+OK\r\n");
    EXPECT(&f, &f.c, "SHUTDOWN", "-ERR Command not allowed inside a transaction\r\n");
    EXPECT(&f, &f.c, "SAVE", "-ERR Command not allowed inside a transaction\r\n");
    CHECK_EQ_INT(h.shutdown_calls, 0);
    EXPECT(&f, &f.c, "EXEC",
           "-EXECABORT Transaction discarded because of previous errors.\r\n");
    fx_free(&f);
}

TEST(errors_are_counted_by_code)
{
    struct fx f;
    fx_init(&f);
    t_run(&f, &f.c, "NOSUCHCOMMAND");
    t_run(&f, &f.c, "INCR");      /* arity: ERR */
    t_run(&f, &f.c, "HELLO 9");   /* NOPROTO */
    t_run(&f, &f.c, "MULTI");
    t_run(&f, &f.c, "MULTI");     /* nested: ERR */
    t_run(&f, &f.c, "EXEC");
    CHECK_EQ_INT(f.s.stats.errors, 4);
    CHECK_EQ_INT(f.s.stats.nerrorstats, 2);
    CHECK(strcmp(f.s.stats.errorstats[0].code, "ERR") == 0);
    CHECK_EQ_INT(f.s.stats.errorstats[0].count, 3);
    CHECK(strcmp(f.s.stats.errorstats[1].code, "NOPROTO") == 0);
    CHECK_EQ_INT(f.s.stats.errorstats[1].count, 1);
    fx_free(&f);
}

int main(void)
{
    RUN(lookup_finds_every_table_command_in_any_case);
    RUN(unknown_command_error_quotes_the_name_and_first_args_like_redis_7);
    RUN(wrong_arity_names_the_command_in_lower_case);
    RUN(parse_ll_accepts_exactly_what_string2ll_accepts);
    RUN(parse_ld_rejects_spaces_nan_and_overflow);
    RUN(ping_echo_select_and_quit_reply_as_redis);
    RUN(auth_follows_redis_with_and_without_a_password);
    RUN(hello_switches_protocol_and_replies_with_a_map);
    RUN(reset_leaves_multi_watch_db_protocol_and_name);
    RUN(client_subcommands_reply_as_redis);
    RUN(info_is_bulk_in_resp2_and_verbatim_in_resp3);
    RUN(config_get_dedups_and_is_a_map_in_resp3);
    RUN(server_commands_go_through_the_hooks);
    RUN(command_reports_the_table_like_redis_7);
    RUN(command_docs_carry_complexity_and_arguments_like_redis_7);
    RUN(exec_runs_the_queued_commands_in_order);
    RUN(transaction_errors_use_redis_texts);
    RUN(an_error_while_queueing_aborts_the_exec);
    RUN(exec_fails_with_a_null_array_when_another_client_touched_a_watched_key);
    RUN(unwatch_and_discard_forget_the_watched_keys);
    RUN(flush_dirties_watchers_of_existing_keys_only);
    RUN(a_watched_key_that_expires_fails_the_exec);
    RUN(active_expiry_dirties_watchers_and_counts);
    RUN(multi_queue_stops_at_its_limit);
    RUN(denyoom_commands_are_refused_over_maxmemory);
    RUN(stats_count_commands_errors_and_keyspace_reads);
    RUN(writes_produce_records_in_the_documented_format);
    RUN(records_built_in_the_sinks_buffer_equal_copied_ones);
    RUN(replaying_the_records_rebuilds_the_same_state);
    RUN(replay_decides_expiry_at_the_time_of_the_record);
    RUN(replay_rejects_corrupt_records_and_applies_none_of_them);
    RUN(del_exists_type_and_touch_count_like_redis);
    RUN(glob_matches_as_redis_does);
    RUN(keys_returns_the_live_keys_matching_a_pattern);
    RUN(scan_visits_every_key_and_checks_its_arguments);
    RUN(rename_and_renamenx_move_value_and_deadline);
    RUN(copy_follows_redis_checks_and_copies_across_dbs);
    RUN(flush_randomkey_and_dbsize);
    RUN(handlers_leave_no_memory_behind);
    RUN(flush_async_hands_the_old_keyspace_to_the_server);
    RUN(errors_are_counted_by_code);
    return test_summary("cmd");
}
