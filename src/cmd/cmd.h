/* cmd.h - the command table: argument checks, RESP replies, and the
 * translation of a client command into a deterministic log record.
 *
 * cmd/ sits between the session layer (net/) and the state machine
 * (store/kv). It never does I/O: replies go into the client's output
 * buffer, log records go out through s->log_fn, and everything it needs from
 * the session layer (INFO text, CONFIG, CLIENT LIST, SHUTDOWN, snapshots)
 * comes through struct cmd_hooks.
 *
 * Execution model. cmd_exec runs one command to completion against the kvs:
 * a write is applied in memory at once and described by a log record. The
 * record is a deterministic description of the effect: relative times are
 * made absolute (EXPIRE -> PEXPIREAT, SET EX -> SET PXAT), float arithmetic
 * is logged as its result (INCRBYFLOAT -> SET KEEPTTL), and the record
 * carries the `now_ms` the command ran at, so replay decides expiry exactly
 * as the original run did. One top-level command - or one EXEC with all its
 * queued commands - produces at most one record, so a crash never applies
 * half a transaction.
 *
 * Log record body (WAL record type CMD_LOG_BATCH), little-endian:
 *     [u64 now_ms][u32 ncmds] then per command
 *     [u32 db][u32 argc] then per argument [u32 len][bytes]
 *
 * Durability is the session layer's business: after cmd_exec the session
 * holds the client's replies until the WAL is durable up to the lsn the
 * server had reached (see net/server.c).
 */
#ifndef TRIAD_CMD_H
#define TRIAD_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/buf.h"
#include "../store/kv.h"

#define CMD_LOG_BATCH 1 /* WAL record type of a command batch */
#define CMD_DATABASES_DEFAULT 16
#define CMD_DATABASES_MAX 16
#define CMD_MULTI_QUEUE_MAX 100000 /* queued commands in one MULTI */

/* command flags */
#define CMD_WRITE (1u << 0)
#define CMD_READONLY (1u << 1)
#define CMD_DENYOOM (1u << 2)  /* refused when used memory > maxmemory */
#define CMD_FAST (1u << 3)
#define CMD_NOAUTH (1u << 4)   /* allowed before AUTH (AUTH, HELLO, QUIT, ...) */
#define CMD_NOMULTI (1u << 5)  /* executed at once even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET) */
#define CMD_ADMIN (1u << 6)
#define CMD_NOSCRIPT (1u << 7)
#define CMD_LOADING (1u << 8)
#define CMD_STALE (1u << 9)
#define CMD_SUBCOMMANDS (1u << 11) /* CLIENT, CONFIG, COMMAND: argv[1] names a subcommand */
#define CMD_DENYMULTI (1u << 10) /* refused inside MULTI (SHUTDOWN, SAVE), as Redis's no-multi */

/* client flags */
#define CMD_CLIENT_MULTI (1u << 0)
#define CMD_CLIENT_DIRTY_CAS (1u << 1)  /* a WATCHed key was touched */
#define CMD_CLIENT_DIRTY_EXEC (1u << 2) /* a command failed while queueing */
#define CMD_CLIENT_CLOSE_AFTER_REPLY (1u << 3)
#define CMD_CLIENT_REPLAY (1u << 4)     /* the internal client that replays the WAL */
#define CMD_CLIENT_REPLY_OFF (1u << 5)  /* CLIENT REPLY OFF: no replies */
#define CMD_CLIENT_REPLY_SKIP (1u << 6) /* CLIENT REPLY SKIP: none for the next command */
#define CMD_CLIENT_REPLY_SKIP_NOW (1u << 7) /* (set while the SKIP itself runs) */
#define CMD_CLIENT_NO_EVICT (1u << 8)   /* CLIENT NO-EVICT ON (shown as 'e') */
#define CMD_CLIENT_NO_TOUCH (1u << 9)   /* CLIENT NO-TOUCH ON (shown as 'T') */

struct cmd_server;
struct cmd_client;

typedef void (*cmd_handler)(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                            size_t *argvlen);

struct cmd_spec {
    const char *name;   /* upper case */
    cmd_handler fn;
    int arity;          /* Redis's: >0 exact, <0 at least -arity */
    uint32_t flags;
    int first_key, last_key, key_step; /* as COMMAND reports them */
    const char *group;  /* "string", "keyspace", "connection", "server", "transactions" */
    const char *summary;
    const char *since;
};

/* WAIT numreplicas timeout's arguments (argv[1], argv[2]), checked as
 * Redis checks them: NULL and the values, or the error ("ERR ..."). For
 * leader mode's WAIT as for a single node's. */
const char *cmd_wait_args(char **argv, size_t *argvlen, long long *replicas,
                          long long *timeout);

/* The table, for COMMAND, and a lookup by name (case-insensitive). */
const struct cmd_spec *cmd_table(size_t *count);
const struct cmd_spec *cmd_lookup(const char *name, size_t len);

/* CLIENT KILL's filters; a zero/NULL field matches every client. */
struct cmd_kill_filter {
    uint64_t id;           /* ID */
    const char *addr;      /* ADDR ip:port (or the old one-argument form) */
    const char *laddr;     /* LADDR ip:port */
    uint64_t skip_id;      /* SKIPME yes: the caller's own id */
    long long maxage_s;    /* MAXAGE: only clients older than this */
};

/* What the session layer supplies. Every hook receives hooks.arg. */
struct cmd_hooks {
    void *arg;
    /* INFO [section ...]: append the text (Redis's "# Section\r\nk:v\r\n"
     * layout) for the requested sections (argc==0: default sections). */
    void (*info)(void *arg, struct cmd_client *c, int argc, char **argv, size_t *argvlen,
                 struct tbuf *text);
    /* CONFIG GET: call emit(name, value) for every parameter matching the
     * glob pattern. */
    void (*config_get)(void *arg, const char *pattern,
                       void (*emit)(void *e, const char *name, const char *value), void *e);
    /* CONFIG SET name value [name value ...]: all or nothing. 0, or
     * non-zero with errmsg set to Redis's text without "ERR " (e.g.
     * "Unknown option or number of arguments for CONFIG SET - 'foo'") and
     * no setting changed. */
    int (*config_set)(void *arg, int npairs, char **names, char **values, char *errmsg,
                      size_t errlen);
    /* CONFIG RESETSTAT */
    void (*config_resetstat)(void *arg);
    /* CLIENT LIST (filter: NULL or a client id), CLIENT INFO (one): append
     * Redis-format lines. */
    void (*client_list)(void *arg, struct cmd_client *self, bool only_self, const uint64_t *ids,
                        size_t nids, struct tbuf *text);
    /* CLIENT KILL: close every client matching all of the filter's set
     * fields; returns how many. */
    int (*client_kill)(void *arg, const struct cmd_kill_filter *f);
    /* FLUSHALL/FLUSHDB ASYNC: free this keyspace off the loop thread (owned
     * by the hook from now on). NULL: cmd frees it at once. */
    void (*free_async)(void *arg, struct kv *kv);
    /* SHUTDOWN [NOSAVE|SAVE]: flush the WAL and stop. */
    void (*shutdown)(void *arg, bool save);
    /* BGSAVE (background=true) / SAVE: 0, or non-zero with errmsg. */
    int (*snapshot)(void *arg, bool background, char *errmsg, size_t errlen);
    /* LASTSAVE: unix seconds of the last successful snapshot. */
    long long (*last_snapshot)(void *arg);
};

/* INFO errorstats: error replies by their code (the first word), as Redis
 * counts them; past CMD_ERRORSTATS_MAX distinct codes new ones go uncounted
 * (Redis stops tracking at 128 too). */
#define CMD_ERRORSTATS_MAX 128
#define CMD_ERRORCODE_MAX 32
struct cmd_errorstat {
    char code[CMD_ERRORCODE_MAX];
    uint64_t count;
};

/* INFO commandstats: per command, or per subcommand ("config|get") for the
 * commands that have them, as Redis counts them. */
#define CMD_CMDSTATS_MAX 256
#define CMD_TABLE_MAX 128 /* commands in the table (asserted in cmd.c) */
#define CMD_CMDSTAT_NAME_MAX 48
struct cmd_cmdstat {
    char name[CMD_CMDSTAT_NAME_MAX]; /* lower case */
    uint64_t calls;    /* ran */
    uint64_t usec;     /* time spent running (0 without a clock) */
    uint64_t rejected; /* refused before running: arity, auth, memory, MULTI */
    uint64_t failed;   /* ran and replied with an error */
};

struct cmd_stats {
    uint64_t commands_processed;
    uint64_t keyspace_hits;
    uint64_t keyspace_misses;
    uint64_t expired_keys;   /* lazy and active expiry */
    uint64_t rejected_calls;
    uint64_t errors;         /* error replies */
    struct cmd_errorstat errorstats[CMD_ERRORSTATS_MAX];
    int nerrorstats;
    struct cmd_cmdstat cmdstats[CMD_CMDSTATS_MAX];
    int ncmdstats;
    uint16_t cmdstat_hint[CMD_TABLE_MAX]; /* table position -> cmdstats index + 1 */
};

struct cmd_server {
    struct kv *db[CMD_DATABASES_MAX];
    int databases;
    int64_t now_ms;          /* set by the caller before every cmd_exec */
    const char *requirepass; /* NULL or "" = no password (borrowed) */
    uint64_t maxmemory;      /* 0 = no limit */
    uint64_t proto_max_bulk_len; /* APPEND and SETRANGE grow no string past it; 0: 512 MiB */
    size_t (*used_memory)(void); /* the figure maxmemory is compared with */
    uint64_t (*clock_us)(void);  /* monotonic, for commandstats' usec; NULL: none */
    int64_t (*wall_us)(void);    /* the wall clock, for TIME; NULL: now_ms */
    struct cmd_stats stats;
    struct cmd_hooks hooks;
    uint64_t seed;           /* for the kvs that FLUSH ASYNC puts in place */

    /* Log records leave here: log_fn appends the body to the WAL and
     * returns its lsn. NULL while replaying or in tests without a WAL. */
    uint64_t (*log_fn)(void *arg, const void *body, size_t len);
    void *log_arg;
    /* Or, when log_begin is set (it takes precedence), records are built in
     * the sink's own buffer, saving a copy of every value written:
     * log_begin returns the buffer to append a record's body to,
     * log_end frames the body appended since and returns its lsn, and
     * log_cancel drops it. Nothing else appends to that buffer meanwhile. */
    struct tbuf *(*log_begin)(void *arg);
    uint64_t (*log_end)(void *arg);
    void (*log_cancel)(void *arg);

    /* private */
    struct tbuf log_buf;     /* the record being built, without log_begin */
    struct tbuf *log_out;    /* where the open record is: log_buf or log_begin's */
    size_t log_start;        /* its offset in *log_out */
    uint32_t log_ncmds;
    int exec_depth;
    struct cmd_watch_table *watch;
    uint64_t dirty;          /* writes since start (INFO: rdb_changes_since_last_save) */
};

/* A queued command inside MULTI (owned copies). */
struct cmd_queued {
    int argc;
    char **argv;
    size_t *argvlen;
};

/* The part of a session that commands see. net/ embeds it in its session;
 * tests use it bare. cmd_client_init/free manage the cmd-owned fields. */
struct cmd_client {
    uint64_t id;
    int db;
    int proto;               /* 2 or 3 */
    bool authenticated;
    uint32_t flags;          /* CMD_CLIENT_* */
    char *name;              /* CLIENT SETNAME (tmalloc'd) or NULL */
    struct tbuf *out;        /* replies are appended here (borrowed) */
    const char *last_cmd;    /* name of the last command (static string) */
    char last_sub[24];       /* its subcommand, lower case, for CLIENT/CONFIG/COMMAND */

    /* MULTI */
    struct cmd_queued *queue;
    int queue_len, queue_cap;
    /* WATCH: keys this client watches (owned by cmd) */
    struct cmd_watched *watched;
    int watched_len, watched_cap;
};

void cmd_server_init(struct cmd_server *s, int databases, uint64_t seed);
void cmd_server_free(struct cmd_server *s);
void cmd_client_init(struct cmd_client *c, uint64_t id, struct tbuf *out);
/* End a MULTI: drop its queue, its flags and the WATCHes (leader mode runs
 * EXEC itself, through the log). */
void cmd_discard_transaction(struct cmd_server *s, struct cmd_client *c);
/* True while a command runs whose log record is not finished yet: inside
 * EXEC, or after a write propagated within the command. The keyspace then
 * holds changes no lsn covers yet. */
bool cmd_record_open(const struct cmd_server *s);
/* Release MULTI queue, WATCHes and name (call before the session goes). */
void cmd_client_free(struct cmd_server *s, struct cmd_client *c);

/* Execute one command (argv[0] is its name). Replies are appended to
 * c->out. argv strings are borrowed for the duration of the call (cmd may
 * modify them in place, e.g. to upper-case a name). Returns the lsn of the
 * log record it produced, or 0 if it wrote nothing. */
uint64_t cmd_exec(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                  size_t *argvlen);

/* Apply a log record (a CMD_LOG_BATCH body) during recovery. 0, or
 * TRIAD_ECORRUPT if the body does not decode (errmsg set). */
int cmd_replay(struct cmd_server *s, const void *body, size_t len, char *errmsg, size_t errlen);

/* Tell WATCHers that a key changed outside a command (e.g. active expiry). */
void cmd_touch_key(struct cmd_server *s, int db, const char *key, size_t klen);
/* Active expiry across all dbs; returns keys deleted. */
size_t cmd_active_expire(struct cmd_server *s, size_t max_keys);

#endif
