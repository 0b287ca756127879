/* cmd_int.h - what the files of cmd/ share. Not for use outside cmd/.
 *
 * Files: cmd.c (table, dispatch, log records and replay, MULTI/EXEC/WATCH,
 * connection and server commands), keyspace.c (DEL ... SCAN, RENAME, COPY,
 * FLUSH*), string.c (GET/SET family, INCR*, APPEND, SETRANGE/GETRANGE, LCS,
 * M*), expire.c (EXPIRE family, TTL family, PERSIST, SETEX/PSETEX, GETEX),
 * docs.c (COMMAND DOCS: complexity, history and argument trees).
 */
#ifndef TRIAD_CMD_INT_H
#define TRIAD_CMD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/defs.h"
#include "../net/resp.h"
#include "cmd.h"

/* ---- handlers (each file defines its own; cmd.c's table lists them) ---- */
#define CMD_HANDLER(fn) \
    void fn(struct cmd_server *s, struct cmd_client *c, int argc, char **argv, size_t *argvlen)

/* string.c */
CMD_HANDLER(cmd_get); CMD_HANDLER(cmd_set); CMD_HANDLER(cmd_setnx); CMD_HANDLER(cmd_getset);
CMD_HANDLER(cmd_getdel); CMD_HANDLER(cmd_mget); CMD_HANDLER(cmd_mset); CMD_HANDLER(cmd_msetnx);
CMD_HANDLER(cmd_incr); CMD_HANDLER(cmd_decr); CMD_HANDLER(cmd_incrby); CMD_HANDLER(cmd_decrby);
CMD_HANDLER(cmd_incrbyfloat); CMD_HANDLER(cmd_append); CMD_HANDLER(cmd_strlen);
CMD_HANDLER(cmd_setrange); CMD_HANDLER(cmd_getrange); CMD_HANDLER(cmd_substr); CMD_HANDLER(cmd_lcs);
/* expire.c */
CMD_HANDLER(cmd_expire); CMD_HANDLER(cmd_pexpire); CMD_HANDLER(cmd_expireat);
CMD_HANDLER(cmd_pexpireat); CMD_HANDLER(cmd_ttl); CMD_HANDLER(cmd_pttl);
CMD_HANDLER(cmd_expiretime); CMD_HANDLER(cmd_pexpiretime); CMD_HANDLER(cmd_persist);
CMD_HANDLER(cmd_setex); CMD_HANDLER(cmd_psetex); CMD_HANDLER(cmd_getex);
/* keyspace.c */
CMD_HANDLER(cmd_del); CMD_HANDLER(cmd_unlink); CMD_HANDLER(cmd_exists); CMD_HANDLER(cmd_type);
CMD_HANDLER(cmd_keys); CMD_HANDLER(cmd_scan); CMD_HANDLER(cmd_rename); CMD_HANDLER(cmd_renamenx);
CMD_HANDLER(cmd_copy); CMD_HANDLER(cmd_dbsize); CMD_HANDLER(cmd_flushall); CMD_HANDLER(cmd_flushdb);
CMD_HANDLER(cmd_randomkey); CMD_HANDLER(cmd_touch_cmd); /* TOUCH (cmd_touch is the helper) */
/* cmd.c: connection, server, transactions */
CMD_HANDLER(cmd_ping); CMD_HANDLER(cmd_echo); CMD_HANDLER(cmd_hello); CMD_HANDLER(cmd_auth);
CMD_HANDLER(cmd_client); CMD_HANDLER(cmd_select); CMD_HANDLER(cmd_quit); CMD_HANDLER(cmd_reset);
CMD_HANDLER(cmd_info); CMD_HANDLER(cmd_config); CMD_HANDLER(cmd_command); CMD_HANDLER(cmd_time);
CMD_HANDLER(cmd_role); CMD_HANDLER(cmd_wait);
CMD_HANDLER(cmd_shutdown); CMD_HANDLER(cmd_save); CMD_HANDLER(cmd_bgsave); CMD_HANDLER(cmd_lastsave);
CMD_HANDLER(cmd_multi); CMD_HANDLER(cmd_exec_cmd); /* EXEC (cmd_exec is the API) */
CMD_HANDLER(cmd_discard); CMD_HANDLER(cmd_watch);
CMD_HANDLER(cmd_unwatch);

/* ---- helpers, defined in cmd.c ---- */

/* The client's current database. */
static inline struct kv *cmd_db(struct cmd_server *s, struct cmd_client *c)
{
    return s->db[c->db];
}

/* Record the effect of the running command for the log: appends one command
 * (in the client's current db) to the record being built. Handlers call it
 * with the deterministic form of what they did, only when they changed
 * something. cmd_exec/EXEC turn the accumulated commands into one record. */
void cmd_propagate(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                   size_t *argvlen);
/* The same with the db given (FLUSHALL, or a COPY into another db). */
void cmd_propagate_db(struct cmd_server *s, int db, int argc, char **argv, size_t *argvlen);

/* A key changed: mark WATCHers dirty; bump s->dirty. Every write handler
 * calls it for each key it modifies or deletes. */
void cmd_touch(struct cmd_server *s, int db, const char *key, size_t klen);
/* every key of a db changed (FLUSHDB) / of all dbs (db = -1, FLUSHALL);
 * call it before emptying: as in Redis, only WATCHers of keys that exist
 * are dirtied */
void cmd_touch_all(struct cmd_server *s, int db);

/* Parse integers as Redis's string2ll does: the whole string, no spaces,
 * no leading '+', no leading zeros except "0", within long long. */
bool cmd_parse_ll(const char *p, size_t len, long long *out);
/* Parse a long double as Redis's string2ld does (no spaces, no nan). */
bool cmd_parse_ld(const char *p, size_t len, long double *out);

/* Replies with Redis's exact texts. */
void cmd_reply_ok(struct cmd_client *c);
void cmd_reply_syntax_error(struct cmd_client *c);        /* ERR syntax error */
void cmd_reply_not_integer(struct cmd_client *c);         /* ERR value is not an integer or out of range */
void cmd_reply_wrong_arity(struct cmd_client *c, const char *name); /* ERR wrong number of arguments for 'get' command */
/* An int argument, as Redis's getIntFromObjectOrReply takes it: true and
 * *out, or false with the reply (not an integer; out of an int's range). */
bool cmd_parse_int_or_reply(struct cmd_client *c, const char *p, size_t len, int *out);
/* msg is the whole text with its code ("ERR ...", "WRONGTYPE ..."), as for
 * resp_add_error. stats.errors is counted by the dispatcher for every reply
 * that starts with '-', however it was written. */
void cmd_reply_error(struct cmd_server *s, struct cmd_client *c, const char *msg);

/* The absolute deadline of an expiry argument (EX/PX/EXAT/PXAT, SETEX,
 * GETEX), as Redis's getExpireMillisecondsOrReply computes it: the number
 * must be > 0, and neither the unit conversion nor adding now may overflow.
 * Replies with Redis's error and returns false on a bad argument. */
bool cmd_expire_arg(struct cmd_server *s, struct cmd_client *c, const char *arg, size_t len,
                    bool seconds, bool relative, const char *cmdname, int64_t *abs_ms);
/* Log "SET key value [PXAT ms | KEEPTTL]" (expire_ms: a deadline,
 * KV_NO_EXPIRE or KV_KEEP_TTL). */
void cmd_propagate_set(struct cmd_server *s, struct cmd_client *c, const char *key, size_t klen,
                       const char *val, size_t vlen, int64_t expire_ms);

/* case-insensitive compare of an argument with a C string */
bool cmd_arg_is(const char *arg, size_t len, const char *word);

/* docs.c: COMMAND DOCS. Append cmd's documentation map (summary, since,
 * group from the table; complexity, history, arguments, subcommands from
 * docs.c), as Redis 7.0 replies it: a map in RESP3, a flat array in RESP2.
 * The caller writes the name before it. */
void cmd_docs_add(struct tbuf *o, int proto, const struct cmd_spec *cmd);
/* The subcommand arg names of cmd (one with CMD_SUBCOMMANDS), as its docs
 * list it: true, its lower-case name ("setname") and arity; false if cmd
 * has none of that name. The docs are the one list of subcommands:
 * cmd_exec refuses any other before the handler runs. */
bool cmd_docs_subcommand(const struct cmd_spec *cmd, const char *arg, size_t len,
                         const char **name, int *arity);
/* 0 if every command of the table has docs, every documented command is in
 * the table and every argument tree is well formed; otherwise
 * TRIAD_ENOTFOUND or TRIAD_EINVAL with errmsg naming the first fault. */
int cmd_docs_check(char *errmsg, size_t errlen);

/* Redis's glob (KEYS, SCAN MATCH, COMMAND LIST): * ? [abc] [^a] [a-z] and
 * \x escapes. Iterative; work is at most plen * slen steps. (keyspace.c) */
bool cmd_glob_match(const char *pat, size_t plen, const char *str, size_t slen, bool nocase);

#endif
