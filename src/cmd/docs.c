/* docs.c - COMMAND DOCS: every command's complexity, history and argument
 * tree, in the shape Redis 7.0 replies.
 *
 * redis-cli 7 reads COMMAND DOCS when it starts and builds its interactive
 * hints ("SET key value [NX|XX] [GET] ...") from the argument trees, so a
 * server that answers with summaries alone gets no hints. The trees here
 * are Redis 7.0's, written as data, with two kinds of exception:
 *
 * - What Triad does not implement is not advertised: CLIENT has only the
 *   subcommands Triad answers, COMMAND has no GETKEYSANDFLAGS.
 * - What Triad has beyond 7.0 is documented as the Redis release that added
 *   it documents it: SET's IFEQ (Redis 8.4, as "ifeq-value" in the
 *   condition; the history line is ours, as Redis's names the three
 *   conditions Triad lacks), CLIENT SETINFO and CLIENT NO-TOUCH (Redis 7.2;
 *   SETINFO with the two attributes Triad accepts).
 *
 * A command's summary, since and group stay in cmd.c's table (COMMAND LIST
 * and INFO commandstats use them too); a subcommand's are here. Argument
 * names and types are what Redis reports: clients match on them.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd_int.h"

/* ---- the model ---- */

enum docs_arg_type {
    DOCS_STRING,
    DOCS_INTEGER,
    DOCS_DOUBLE,
    DOCS_KEY,
    DOCS_PATTERN,
    DOCS_UNIX_TIME,
    DOCS_PURE_TOKEN,
    DOCS_ONEOF, /* exactly one of .args */
    DOCS_BLOCK, /* all of .args, in order */
};

static const char *const docs__type_names[] = {
    [DOCS_STRING] = "string",         [DOCS_INTEGER] = "integer",
    [DOCS_DOUBLE] = "double",         [DOCS_KEY] = "key",
    [DOCS_PATTERN] = "pattern",       [DOCS_UNIX_TIME] = "unix-time",
    [DOCS_PURE_TOKEN] = "pure-token", [DOCS_ONEOF] = "oneof",
    [DOCS_BLOCK] = "block",
};

/* argument flags, replied in this order */
#define DOCS_OPTIONAL (1u << 0)
#define DOCS_MULTIPLE (1u << 1)
#define DOCS_MULTIPLE_TOKEN (1u << 2) /* the token repeats with every value */

#define DOCS_DEPTH_MAX 4 /* nesting of oneof/block (CLIENT KILL has 3) */

struct docs_arg {
    const char *name;
    enum docs_arg_type type;
    int key_spec_index; /* DOCS_KEY only: which of COMMAND INFO's key specs */
    const char *token;  /* the literal word before the value, or NULL */
    const char *since;  /* NULL: as old as the command */
    const char *deprecated_since;
    const char *display_text; /* Redis 7.0 has none for Triad's commands */
    unsigned flags;           /* DOCS_OPTIONAL ... */
    const struct docs_arg *args; /* DOCS_ONEOF/DOCS_BLOCK: the parts, up to a {0} */
};

struct docs_history {
    const char *version;
    const char *change;
};

struct docs_cmd {
    const char *name; /* a command: upper case, as in cmd.c's table; a subcommand: "client|kill" */
    int arity; /* a subcommand's, counting command and subcommand, as Redis (a command's: cmd_spec) */
    const char *summary, *since, *group; /* subcommands only (a command's are in its cmd_spec) */
    const char *complexity;
    const char *deprecated_since; /* set: doc_flags says "deprecated" */
    const char *replaced_by;
    const struct docs_history *history; /* up to a {0} */
    const struct docs_arg *args;        /* up to a {0}; NULL: no arguments */
    const struct docs_cmd *subcommands; /* up to a {0} */
};

/* Table shorthand: every initializer names its fields, so a new field can
 * never be filled by position by mistake. */
#define A(n, t) .name = (n), .type = DOCS_##t
#define ARGS(...) ((const struct docs_arg[]){__VA_ARGS__, {0}})
#define HISTORY(...) ((const struct docs_history[]){__VA_ARGS__, {0}})
#define OPT DOCS_OPTIONAL
#define MULTI DOCS_MULTIPLE

/* ---- argument lists that several commands share ---- */

static const struct docs_arg docs__key[] = {{A("key", KEY)}, {0}};
static const struct docs_arg docs__keys[] = {{A("key", KEY), .flags = MULTI}, {0}};
static const struct docs_arg docs__key_value[] = {{A("key", KEY)}, {A("value", STRING)}, {0}};
static const struct docs_arg docs__key_newkey[] = {
    {A("key", KEY)}, {A("newkey", KEY), .key_spec_index = 1}, {0}};
static const struct docs_arg docs__key_start_end[] = {
    {A("key", KEY)}, {A("start", INTEGER)}, {A("end", INTEGER)}, {0}};
static const struct docs_arg docs__key_value_pairs[] = {
    {A("key_value", BLOCK), .flags = MULTI,
     .args = ARGS({A("key", KEY)}, {A("value", STRING)})},
    {0}};

/* (Shared parts of a list are macros: a static object is no constant
 * expression, so it cannot be an element of another static list.) */
#define DOCS_EXPIRE_CONDITION                                                                  \
    {A("condition", ONEOF), .since = "7.0.0", .flags = OPT,                                   \
     .args = ARGS({A("nx", PURE_TOKEN), .token = "NX"}, {A("xx", PURE_TOKEN), .token = "XX"}, \
                  {A("gt", PURE_TOKEN), .token = "GT"}, {A("lt", PURE_TOKEN), .token = "LT"})}
static const struct docs_history docs__expire_history[] = {
    {"7.0.0", "Added options: `NX`, `XX`, `GT` and `LT`."}, {0}};

static const struct docs_arg docs__flush_mode[] = {
    {A("async", ONEOF), .flags = OPT,
     .args = ARGS({A("async", PURE_TOKEN), .token = "ASYNC", .since = "4.0.0"},
                  {A("sync", PURE_TOKEN), .token = "SYNC", .since = "6.2.0"})},
    {0}};
static const struct docs_history docs__flush_history[] = {
    {"4.0.0", "Added the `ASYNC` flushing mode modifier."},
    {"6.2.0", "Added the `SYNC` flushing mode modifier."},
    {0}};

static const struct docs_history docs__ttl_history[] = {{"2.8.0", "Added the -2 reply."}, {0}};

#define DOCS_ON_OFF                                                                            \
    {A("enabled", ONEOF),                                                                      \
     .args = ARGS({A("on", PURE_TOKEN), .token = "ON"}, {A("off", PURE_TOKEN), .token = "OFF"})}

#define DOCS_HELP_SUMMARY "Show helpful text about the different subcommands"
#define DOCS_RANGE_COMPLEXITY                                                                  \
    "O(N) where N is the length of the returned string. The complexity is ultimately "        \
    "determined by the returned length, but because creating a substring from an existing " \
    "string is very cheap, it can be considered O(1) for small strings."

/* ---- subcommands ---- */

static const struct docs_cmd docs__client_subcommands[] = {
    {.name = "client|getname", .arity = 2, .summary = "Get the current connection name", .since = "2.6.9",
     .group = "connection", .complexity = "O(1)"},
    {.name = "client|help", .arity = 2, .summary = DOCS_HELP_SUMMARY, .since = "5.0.0", .group = "connection",
     .complexity = "O(1)"},
    {.name = "client|id", .arity = 2, .summary = "Returns the client ID for the current connection",
     .since = "5.0.0", .group = "connection", .complexity = "O(1)"},
    {.name = "client|info", .arity = 2, .summary = "Returns information about the current client connection.",
     .since = "6.2.0", .group = "connection", .complexity = "O(1)"},
    {.name = "client|kill", .arity = -3, .summary = "Kill the connection of a client", .since = "2.4.0",
     .group = "connection", .complexity = "O(N) where N is the number of client connections",
     .history = HISTORY(
         {"2.8.12", "Added new filter format."}, {"2.8.12", "`ID` option."},
         {"3.2.0", "Added `master` type in for `TYPE` option."},
         {"5.0.0", "Replaced `slave` `TYPE` with `replica`. `slave` still supported for "
                   "backward compatibility."},
         {"6.2.0", "`LADDR` option."}),
     .args = ARGS(
         {A("filter", ONEOF),
          .args = ARGS(
              {A("ip:port", STRING), .deprecated_since = "2.8.12"},
              {A("new-format", ONEOF), .flags = MULTI,
               .args = ARGS(
                   {A("client-id", INTEGER), .token = "ID", .since = "2.8.12", .flags = OPT},
                   {A("normal_master_slave_pubsub", ONEOF), .token = "TYPE", .since = "2.8.12",
                    .flags = OPT,
                    .args = ARGS({A("normal", PURE_TOKEN), .token = "NORMAL"},
                                 {A("master", PURE_TOKEN), .token = "MASTER", .since = "3.2.0"},
                                 {A("slave", PURE_TOKEN), .token = "SLAVE"},
                                 {A("replica", PURE_TOKEN), .token = "REPLICA", .since = "5.0.0"},
                                 {A("pubsub", PURE_TOKEN), .token = "PUBSUB"})},
                   {A("username", STRING), .token = "USER", .flags = OPT},
                   {A("ip:port", STRING), .token = "ADDR", .flags = OPT},
                   {A("ip:port", STRING), .token = "LADDR", .since = "6.2.0", .flags = OPT},
                   {A("yes/no", STRING), .token = "SKIPME", .flags = OPT})})})},
    {.name = "client|list", .arity = -2, .summary = "Get the list of client connections", .since = "2.4.0",
     .group = "connection", .complexity = "O(N) where N is the number of client connections",
     .history = HISTORY(
         {"2.8.12", "Added unique client `id` field."}, {"5.0.0", "Added optional `TYPE` filter."},
         {"6.0.0", "Added `user` field."},
         {"6.2.0", "Added `argv-mem`, `tot-mem`, `laddr` and `redir` fields and the optional "
                   "`ID` filter."},
         {"7.0.0", "Added `resp`, `multi-mem`, `rbs` and `rbp` fields."},
         {"7.0.3", "Added `ssub` field."}),
     .args = ARGS({A("normal_master_replica_pubsub", ONEOF), .token = "TYPE", .since = "5.0.0",
                   .flags = OPT,
                   .args = ARGS({A("normal", PURE_TOKEN), .token = "NORMAL"},
                                {A("master", PURE_TOKEN), .token = "MASTER"},
                                {A("replica", PURE_TOKEN), .token = "REPLICA"},
                                {A("pubsub", PURE_TOKEN), .token = "PUBSUB"})},
                  {A("id", BLOCK), .token = "ID", .since = "6.2.0", .flags = OPT,
                   .args = ARGS({A("client-id", INTEGER), .flags = MULTI})})},
    {.name = "client|no-evict", .arity = 3, .summary = "Set client eviction mode for the current connection",
     .since = "7.0.0", .group = "connection", .complexity = "O(1)",
     .args = ARGS(DOCS_ON_OFF)},
    /* Redis 7.2 */
    {.name = "client|no-touch", .arity = 3,
     .summary = "Controls whether commands sent by the client affect the LRU/LFU of accessed keys.",
     .since = "7.2.0", .group = "connection", .complexity = "O(1)", .args = ARGS(DOCS_ON_OFF)},
    {.name = "client|reply", .arity = 3, .summary = "Instruct the server whether to reply to commands",
     .since = "3.2.0", .group = "connection", .complexity = "O(1)",
     .args = ARGS({A("on_off_skip", ONEOF),
                   .args = ARGS({A("on", PURE_TOKEN), .token = "ON"},
                                {A("off", PURE_TOKEN), .token = "OFF"},
                                {A("skip", PURE_TOKEN), .token = "SKIP"})})},
    {.name = "client|setinfo", .arity = 4, /* Redis 7.2 */
     .summary = "Sets information specific to the client or connection.", .since = "7.2.0",
     .group = "connection", .complexity = "O(1)",
     .args = ARGS({A("attr", ONEOF),
                   .args = ARGS({A("libname", STRING), .token = "lib-name"},
                                {A("libver", STRING), .token = "lib-ver"})})},
    {.name = "client|setname", .arity = 3, .summary = "Set the current connection name", .since = "2.6.9",
     .group = "connection", .complexity = "O(1)",
     .args = ARGS({A("connection-name", STRING)})},
    {0},
};

static const struct docs_cmd docs__config_subcommands[] = {
    {.name = "config|get", .arity = -3, .summary = "Get the values of configuration parameters",
     .since = "2.0.0", .group = "server",
     .complexity = "O(N) when N is the number of configuration parameters provided",
     .history = HISTORY({"7.0.0", "Added the ability to pass multiple pattern parameters in one "
                                  "call"}),
     .args = ARGS({A("parameter", BLOCK), .flags = MULTI,
                   .args = ARGS({A("parameter", STRING)})})},
    {.name = "config|help", .arity = 2, .summary = DOCS_HELP_SUMMARY, .since = "5.0.0", .group = "server",
     .complexity = "O(1)"},
    {.name = "config|resetstat", .arity = 2, .summary = "Reset the stats returned by INFO", .since = "2.0.0",
     .group = "server", .complexity = "O(1)"},
    {.name = "config|rewrite", .arity = 2,
     .summary = "Rewrite the configuration file with the in memory configuration",
     .since = "2.8.0", .group = "server", .complexity = "O(1)"},
    {.name = "config|set", .arity = -4, .summary = "Set configuration parameters to the given values",
     .since = "2.0.0", .group = "server",
     .complexity = "O(N) when N is the number of configuration parameters provided",
     .history = HISTORY({"7.0.0", "Added the ability to set multiple parameters in one call."}),
     .args = ARGS({A("parameter_value", BLOCK), .flags = MULTI,
                   .args = ARGS({A("parameter", STRING)}, {A("value", STRING)})})},
    {0},
};

static const struct docs_cmd docs__command_subcommands[] = {
    {.name = "command|count", .arity = 2, .summary = "Get total number of Redis commands", .since = "2.8.13",
     .group = "server", .complexity = "O(1)"},
    {.name = "command|docs", .arity = -2, .summary = "Get array of specific Redis command documentation",
     .since = "7.0.0", .group = "server",
     .complexity = "O(N) where N is the number of commands to look up",
     .args = ARGS({A("command-name", STRING), .flags = OPT | MULTI})},
    {.name = "command|getkeys", .arity = -4, .summary = "Extract keys given a full Redis command",
     .since = "2.8.13", .group = "server",
     .complexity = "O(N) where N is the number of arguments to the command"},
    {.name = "command|help", .arity = 2, .summary = DOCS_HELP_SUMMARY, .since = "5.0.0", .group = "server",
     .complexity = "O(1)"},
    {.name = "command|info", .arity = -2,
     .summary = "Get array of specific Redis command details, or all when no argument is given.",
     .since = "2.8.13", .group = "server",
     .complexity = "O(N) where N is the number of commands to look up",
     .history = HISTORY({"7.0.0", "Allowed to be called with no argument to get info on all "
                                  "commands."}),
     .args = ARGS({A("command-name", STRING), .flags = OPT | MULTI})},
    {.name = "command|list", .arity = -2, .summary = "Get an array of Redis command names", .since = "7.0.0",
     .group = "server", .complexity = "O(N) where N is the total number of Redis commands",
     .args = ARGS({A("filterby", ONEOF), .token = "FILTERBY", .flags = OPT,
                   .args = ARGS({A("module-name", STRING), .token = "MODULE"},
                                {A("category", STRING), .token = "ACLCAT"},
                                {A("pattern", PATTERN), .token = "PATTERN"})})},
    {0},
};

/* ---- the commands, in cmd.c's table order ---- */

static const struct docs_cmd docs__table[] = {
    /* string */
    {.name = "GET", .complexity = "O(1)", .args = docs__key},
    {.name = "SET", .complexity = "O(1)",
     .history = HISTORY({"2.6.12", "Added the `EX`, `PX`, `NX` and `XX` options."},
                        {"6.0.0", "Added the `KEEPTTL` option."},
                        {"6.2.0", "Added the `GET`, `EXAT` and `PXAT` option."},
                        {"7.0.0", "Allowed the `NX` and `GET` options to be used together."},
                        {"8.4.0", "Added the `IFEQ` option."}),
     .args = ARGS(
         {A("key", KEY)}, {A("value", STRING)},
         {A("condition", ONEOF), .since = "2.6.12", .flags = OPT,
          .args = ARGS({A("nx", PURE_TOKEN), .token = "NX"},
                       {A("xx", PURE_TOKEN), .token = "XX"},
                       /* Redis 8.4's name and place; Triad has IFEQ alone of its four */
                       {A("ifeq-value", STRING), .token = "IFEQ", .since = "8.4.0"})},
         {A("get", PURE_TOKEN), .token = "GET", .since = "6.2.0", .flags = OPT},
         {A("expiration", ONEOF), .flags = OPT,
          .args = ARGS(
              {A("seconds", INTEGER), .token = "EX", .since = "2.6.12"},
              {A("milliseconds", INTEGER), .token = "PX", .since = "2.6.12"},
              {A("unix-time-seconds", UNIX_TIME), .token = "EXAT", .since = "6.2.0"},
              {A("unix-time-milliseconds", UNIX_TIME), .token = "PXAT", .since = "6.2.0"},
              {A("keepttl", PURE_TOKEN), .token = "KEEPTTL", .since = "6.0.0"})})},
    {.name = "SETNX", .complexity = "O(1)", .args = docs__key_value},
    {.name = "GETSET", .complexity = "O(1)", .deprecated_since = "6.2.0",
     .replaced_by = "`SET` with the `!GET` argument", .args = docs__key_value},
    {.name = "GETDEL", .complexity = "O(1)", .args = docs__key},
    {.name = "MGET", .complexity = "O(N) where N is the number of keys to retrieve.",
     .args = docs__keys},
    {.name = "MSET", .complexity = "O(N) where N is the number of keys to set.",
     .args = docs__key_value_pairs},
    {.name = "MSETNX", .complexity = "O(N) where N is the number of keys to set.",
     .args = docs__key_value_pairs},
    {.name = "INCR", .complexity = "O(1)", .args = docs__key},
    {.name = "DECR", .complexity = "O(1)", .args = docs__key},
    {.name = "INCRBY", .complexity = "O(1)",
     .args = ARGS({A("key", KEY)}, {A("increment", INTEGER)})},
    {.name = "DECRBY", .complexity = "O(1)",
     .args = ARGS({A("key", KEY)}, {A("decrement", INTEGER)})},
    {.name = "INCRBYFLOAT", .complexity = "O(1)",
     .args = ARGS({A("key", KEY)}, {A("increment", DOUBLE)})},
    {.name = "APPEND",
     .complexity = "O(1). The amortized time complexity is O(1) assuming the appended value is "
                   "small and the already present value is of any size, since the dynamic "
                   "string library used by Redis will double the free space available on every "
                   "reallocation.",
     .args = docs__key_value},
    {.name = "STRLEN", .complexity = "O(1)", .args = docs__key},
    {.name = "SETRANGE",
     .complexity = "O(1), not counting the time taken to copy the new string in place. Usually, "
                   "this string is very small so the amortized complexity is O(1). Otherwise, "
                   "complexity is O(M) with M being the length of the value argument.",
     .args = ARGS({A("key", KEY)}, {A("offset", INTEGER)}, {A("value", STRING)})},
    {.name = "GETRANGE", .complexity = DOCS_RANGE_COMPLEXITY, .args = docs__key_start_end},
    {.name = "SUBSTR", .complexity = DOCS_RANGE_COMPLEXITY, .deprecated_since = "2.0.0",
     .replaced_by = "`GETRANGE`", .args = docs__key_start_end},
    /* Both keys are in LCS's one key spec, hence index 0 twice. */
    {.name = "LCS", .complexity = "O(N*M) where N and M are the lengths of s1 and s2, respectively",
     .args = ARGS({A("key1", KEY)}, {A("key2", KEY)},
                  {A("len", PURE_TOKEN), .token = "LEN", .flags = OPT},
                  {A("idx", PURE_TOKEN), .token = "IDX", .flags = OPT},
                  {A("len", INTEGER), .token = "MINMATCHLEN", .flags = OPT},
                  {A("withmatchlen", PURE_TOKEN), .token = "WITHMATCHLEN", .flags = OPT})},

    /* expiry */
    {.name = "EXPIRE", .complexity = "O(1)", .history = docs__expire_history,
     .args = ARGS({A("key", KEY)}, {A("seconds", INTEGER)}, DOCS_EXPIRE_CONDITION)},
    {.name = "PEXPIRE", .complexity = "O(1)", .history = docs__expire_history,
     .args = ARGS({A("key", KEY)}, {A("milliseconds", INTEGER)}, DOCS_EXPIRE_CONDITION)},
    {.name = "EXPIREAT", .complexity = "O(1)", .history = docs__expire_history,
     .args = ARGS({A("key", KEY)}, {A("unix-time-seconds", UNIX_TIME)}, DOCS_EXPIRE_CONDITION)},
    {.name = "PEXPIREAT", .complexity = "O(1)", .history = docs__expire_history,
     .args = ARGS({A("key", KEY)}, {A("unix-time-milliseconds", UNIX_TIME)},
                  DOCS_EXPIRE_CONDITION)},
    {.name = "TTL", .complexity = "O(1)", .history = docs__ttl_history, .args = docs__key},
    {.name = "PTTL", .complexity = "O(1)", .history = docs__ttl_history, .args = docs__key},
    {.name = "EXPIRETIME", .complexity = "O(1)", .args = docs__key},
    {.name = "PEXPIRETIME", .complexity = "O(1)", .args = docs__key},
    {.name = "PERSIST", .complexity = "O(1)", .args = docs__key},
    {.name = "SETEX", .complexity = "O(1)",
     .args = ARGS({A("key", KEY)}, {A("seconds", INTEGER)}, {A("value", STRING)})},
    {.name = "PSETEX", .complexity = "O(1)",
     .args = ARGS({A("key", KEY)}, {A("milliseconds", INTEGER)}, {A("value", STRING)})},
    {.name = "GETEX", .complexity = "O(1)",
     .args = ARGS({A("key", KEY)},
                  {A("expiration", ONEOF), .flags = OPT,
                   .args = ARGS({A("seconds", INTEGER), .token = "EX"},
                                {A("milliseconds", INTEGER), .token = "PX"},
                                {A("unix-time-seconds", UNIX_TIME), .token = "EXAT"},
                                {A("unix-time-milliseconds", UNIX_TIME), .token = "PXAT"},
                                {A("persist", PURE_TOKEN), .token = "PERSIST"})})},

    /* keyspace */
    {.name = "DEL",
     .complexity = "O(N) where N is the number of keys that will be removed. When a key to "
                   "remove holds a value other than a string, the individual complexity for this "
                   "key is O(M) where M is the number of elements in the list, set, sorted set or "
                   "hash. Removing a single key that holds a string value is O(1).",
     .args = docs__keys},
    {.name = "UNLINK",
     .complexity = "O(1) for each key removed regardless of its size. Then the command does O(N) "
                   "work in a different thread in order to reclaim memory, where N is the number "
                   "of allocations the deleted objects where composed of.",
     .args = docs__keys},
    {.name = "EXISTS", .complexity = "O(N) where N is the number of keys to check.",
     .history = HISTORY({"3.0.3", "Accepts multiple `key` arguments."}), .args = docs__keys},
    {.name = "TYPE", .complexity = "O(1)", .args = docs__key},
    {.name = "KEYS",
     .complexity = "O(N) with N being the number of keys in the database, under the assumption "
                   "that the key names in the database and the given pattern have limited length.",
     .args = ARGS({A("pattern", PATTERN)})},
    {.name = "SCAN",
     .complexity = "O(1) for every call. O(N) for a complete iteration, including enough command "
                   "calls for the cursor to return back to 0. N is the number of elements inside "
                   "the collection.",
     .history = HISTORY({"6.0.0", "Added the `TYPE` subcommand."}),
     .args = ARGS({A("cursor", INTEGER)},
                  {A("pattern", PATTERN), .token = "MATCH", .flags = OPT},
                  {A("count", INTEGER), .token = "COUNT", .flags = OPT},
                  {A("type", STRING), .token = "TYPE", .since = "6.0.0", .flags = OPT})},
    {.name = "RENAME", .complexity = "O(1)", .args = docs__key_newkey},
    {.name = "RENAMENX", .complexity = "O(1)",
     .history = HISTORY({"3.2.0", "The command no longer returns an error when source and "
                                  "destination names are the same."}),
     .args = docs__key_newkey},
    {.name = "COPY",
     .complexity = "O(N) worst case for collections, where N is the number of nested items. O(1) "
                   "for string values.",
     .args = ARGS({A("source", KEY)}, {A("destination", KEY), .key_spec_index = 1},
                  {A("destination-db", INTEGER), .token = "DB", .flags = OPT},
                  {A("replace", PURE_TOKEN), .token = "REPLACE", .flags = OPT})},
    {.name = "DBSIZE", .complexity = "O(1)"},
    {.name = "FLUSHALL",
     .complexity = "O(N) where N is the total number of keys in all databases",
     .history = docs__flush_history, .args = docs__flush_mode},
    {.name = "FLUSHDB",
     .complexity = "O(N) where N is the number of keys in the selected database",
     .history = docs__flush_history, .args = docs__flush_mode},
    {.name = "RANDOMKEY", .complexity = "O(1)"},
    {.name = "TOUCH", .complexity = "O(N) where N is the number of keys that will be touched.",
     .args = docs__keys},

    /* connection */
    {.name = "PING", .complexity = "O(1)",
     .args = ARGS({A("message", STRING), .flags = OPT})},
    {.name = "ECHO", .complexity = "O(1)", .args = ARGS({A("message", STRING)})},
    {.name = "HELLO", .complexity = "O(1)",
     .history = HISTORY({"6.2.0", "`protover` made optional; when called without arguments the "
                                  "command reports the current connection's context."}),
     .args = ARGS({A("arguments", BLOCK), .flags = OPT,
                   .args = ARGS({A("protover", INTEGER)},
                                {A("username_password", BLOCK), .token = "AUTH", .flags = OPT,
                                 .args = ARGS({A("username", STRING)}, {A("password", STRING)})},
                                {A("clientname", STRING), .token = "SETNAME", .flags = OPT})})},
    {.name = "AUTH", .complexity = "O(N) where N is the number of passwords defined for the user",
     .history = HISTORY({"6.0.0", "Added ACL style (username and password)."}),
     .args = ARGS({A("username", STRING), .since = "6.0.0", .flags = OPT},
                  {A("password", STRING)})},
    {.name = "CLIENT", .complexity = "Depends on subcommand.",
     .subcommands = docs__client_subcommands},
    {.name = "SELECT", .complexity = "O(1)", .args = ARGS({A("index", INTEGER)})},
    {.name = "QUIT", .complexity = "O(1)"},
    {.name = "RESET", .complexity = "O(1)"},

    /* server */
    {.name = "INFO", .complexity = "O(1)",
     .history = HISTORY({"7.0.0", "Added support for taking multiple section arguments."}),
     .args = ARGS({A("section", STRING), .flags = OPT | MULTI})},
    {.name = "CONFIG", .complexity = "Depends on subcommand.",
     .subcommands = docs__config_subcommands},
    {.name = "COMMAND", .complexity = "O(N) where N is the total number of Redis commands",
     .subcommands = docs__command_subcommands},
    {.name = "TIME", .complexity = "O(1)"},
    {.name = "SHUTDOWN",
     .complexity = "O(N) when saving, where N is the total number of keys in all databases when "
                   "saving data, otherwise O(1)",
     .history = HISTORY({"7.0.0", "Added the `NOW`, `FORCE` and `ABORT` modifiers."}),
     .args = ARGS({A("nosave_save", ONEOF), .flags = OPT,
                   .args = ARGS({A("nosave", PURE_TOKEN), .token = "NOSAVE"},
                                {A("save", PURE_TOKEN), .token = "SAVE"})},
                  {A("now", PURE_TOKEN), .token = "NOW", .since = "7.0.0", .flags = OPT},
                  {A("force", PURE_TOKEN), .token = "FORCE", .since = "7.0.0", .flags = OPT},
                  {A("abort", PURE_TOKEN), .token = "ABORT", .since = "7.0.0", .flags = OPT})},
    {.name = "SAVE", .complexity = "O(N) where N is the total number of keys in all databases"},
    {.name = "BGSAVE", .complexity = "O(1)",
     .history = HISTORY({"3.2.2", "Added the `SCHEDULE` option."}),
     .args = ARGS({A("schedule", PURE_TOKEN), .token = "SCHEDULE", .since = "3.2.2",
                   .flags = OPT})},
    {.name = "LASTSAVE", .complexity = "O(1)"},
    {.name = "ROLE", .complexity = "O(1)"},
    {.name = "WAIT", .complexity = "O(1)",
     .args = ARGS({A("numreplicas", INTEGER)}, {A("timeout", INTEGER)})},

    /* transactions */
    {.name = "MULTI", .complexity = "O(1)"},
    {.name = "EXEC", .complexity = "Depends on commands in the transaction"},
    {.name = "DISCARD", .complexity = "O(N), when N is the number of queued commands"},
    {.name = "WATCH", .complexity = "O(1) for every key.", .args = docs__keys},
    {.name = "UNWATCH", .complexity = "O(1)"},
};

#undef DOCS_EXPIRE_CONDITION
#undef DOCS_ON_OFF
#undef DOCS_HELP_SUMMARY
#undef DOCS_RANGE_COMPLEXITY
#undef A
#undef ARGS
#undef HISTORY
#undef OPT
#undef MULTI

/* ---- the reply ---- */

static size_t docs__args_count(const struct docs_arg *args)
{
    size_t n = 0;
    while (args != NULL && args[n].name != NULL)
        n++;
    return n;
}

static void docs__add_args(struct tbuf *o, int proto, const struct docs_arg *args, int depth)
{
    static const struct {
        unsigned flag;
        const char *name;
    } flag_names[] = {
        {DOCS_OPTIONAL, "optional"},
        {DOCS_MULTIPLE, "multiple"},
        {DOCS_MULTIPLE_TOKEN, "multiple_token"},
    };
    TRIAD_ASSERT(depth < DOCS_DEPTH_MAX);
    size_t n = docs__args_count(args);
    resp_add_array_len(o, (long long)n);
    for (size_t i = 0; i < n; i++) {
        const struct docs_arg *a = &args[i];
        bool nested = a->type == DOCS_ONEOF || a->type == DOCS_BLOCK;
        TRIAD_ASSERT(nested == (docs__args_count(a->args) > 0));
        /* Redis's order: name, type, key_spec_index, token, since,
         * deprecated_since, display_text, flags, arguments. */
        long long fields = 2 + (a->type == DOCS_KEY) + (a->token != NULL) + (a->since != NULL) +
                           (a->deprecated_since != NULL) + (a->display_text != NULL) +
                           (a->flags != 0) + nested;
        resp_add_map_len(o, proto, fields);
        resp_add_bulk_str(o, "name");
        resp_add_bulk_str(o, a->name);
        resp_add_bulk_str(o, "type");
        resp_add_bulk_str(o, docs__type_names[a->type]);
        if (a->type == DOCS_KEY) {
            resp_add_bulk_str(o, "key_spec_index");
            resp_add_int(o, a->key_spec_index);
        }
        if (a->token != NULL) {
            resp_add_bulk_str(o, "token");
            resp_add_bulk_str(o, a->token);
        }
        if (a->since != NULL) {
            resp_add_bulk_str(o, "since");
            resp_add_bulk_str(o, a->since);
        }
        if (a->deprecated_since != NULL) {
            resp_add_bulk_str(o, "deprecated_since");
            resp_add_bulk_str(o, a->deprecated_since);
        }
        if (a->display_text != NULL) {
            resp_add_bulk_str(o, "display_text");
            resp_add_bulk_str(o, a->display_text);
        }
        if (a->flags != 0) {
            size_t nf = 0;
            for (size_t f = 0; f < TRIAD_ARRAY_LEN(flag_names); f++)
                nf += (a->flags & flag_names[f].flag) != 0;
            resp_add_bulk_str(o, "flags");
            resp_add_set_len(o, proto, (long long)nf);
            for (size_t f = 0; f < TRIAD_ARRAY_LEN(flag_names); f++)
                if (a->flags & flag_names[f].flag)
                    resp_add_simple(o, flag_names[f].name);
        }
        if (nested) {
            resp_add_bulk_str(o, "arguments");
            docs__add_args(o, proto, a->args, depth + 1);
        }
    }
}

/* One documentation map. d may be NULL (a command without docs still gets
 * Redis's three mandatory fields). */
static void docs__add_map(struct tbuf *o, int proto, const char *summary, const char *since,
                          const char *group, const struct docs_cmd *d)
{
    TRIAD_ASSERT(summary != NULL);
    TRIAD_ASSERT(since != NULL);
    TRIAD_ASSERT(group != NULL);
    long long fields = 3;
    size_t nhistory = 0, nsub = 0;
    if (d != NULL) {
        while (d->history != NULL && d->history[nhistory].version != NULL)
            nhistory++;
        while (d->subcommands != NULL && d->subcommands[nsub].name != NULL)
            nsub++;
        fields += (d->complexity != NULL) + 2 * (d->deprecated_since != NULL) +
                  (d->replaced_by != NULL) + (nhistory > 0) + (d->args != NULL) + (nsub > 0);
    }
    /* Redis's order: summary, since, group, complexity, doc_flags,
     * deprecated_since, replaced_by, history, arguments, subcommands. */
    resp_add_map_len(o, proto, fields);
    resp_add_bulk_str(o, "summary");
    resp_add_bulk_str(o, summary);
    resp_add_bulk_str(o, "since");
    resp_add_bulk_str(o, since);
    resp_add_bulk_str(o, "group");
    resp_add_bulk_str(o, group);
    if (d == NULL)
        return;
    if (d->complexity != NULL) {
        resp_add_bulk_str(o, "complexity");
        resp_add_bulk_str(o, d->complexity);
    }
    if (d->deprecated_since != NULL) {
        resp_add_bulk_str(o, "doc_flags");
        resp_add_set_len(o, proto, 1);
        resp_add_simple(o, "deprecated");
        resp_add_bulk_str(o, "deprecated_since");
        resp_add_bulk_str(o, d->deprecated_since);
    }
    if (d->replaced_by != NULL) {
        resp_add_bulk_str(o, "replaced_by");
        resp_add_bulk_str(o, d->replaced_by);
    }
    if (nhistory > 0) {
        resp_add_bulk_str(o, "history");
        resp_add_set_len(o, proto, (long long)nhistory);
        for (size_t i = 0; i < nhistory; i++) {
            resp_add_array_len(o, 2);
            resp_add_bulk_str(o, d->history[i].version);
            resp_add_bulk_str(o, d->history[i].change);
        }
    }
    if (d->args != NULL) {
        resp_add_bulk_str(o, "arguments");
        docs__add_args(o, proto, d->args, 0);
    }
    if (nsub > 0) {
        resp_add_bulk_str(o, "subcommands");
        resp_add_map_len(o, proto, (long long)nsub);
        for (size_t i = 0; i < nsub; i++) {
            const struct docs_cmd *sub = &d->subcommands[i];
            TRIAD_ASSERT(sub->subcommands == NULL); /* one level, as in Redis */
            resp_add_bulk_str(o, sub->name);
            docs__add_map(o, proto, sub->summary, sub->since, sub->group, sub);
        }
    }
}

static const struct docs_cmd *docs__find(const char *name)
{
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(docs__table); i++)
        if (strcmp(docs__table[i].name, name) == 0)
            return &docs__table[i];
    return NULL;
}

void cmd_docs_add(struct tbuf *o, int proto, const struct cmd_spec *cmd)
{
    docs__add_map(o, proto, cmd->summary, cmd->since, cmd->group, docs__find(cmd->name));
}

bool cmd_docs_subcommand(const struct cmd_spec *cmd, const char *arg, size_t len,
                         const char **name, int *arity)
{
    const struct docs_cmd *d = docs__find(cmd->name);
    for (size_t i = 0; d != NULL && d->subcommands != NULL && d->subcommands[i].name != NULL;
         i++) {
        const char *sub = strchr(d->subcommands[i].name, '|') + 1;
        if (cmd_arg_is(arg, len, sub)) {
            *name = sub;
            *arity = d->subcommands[i].arity;
            return true;
        }
    }
    return false;
}

/* ---- self-check ---- */

static int docs__check_args(const char *cmd, const struct docs_arg *args, int depth,
                            char *errmsg, size_t errlen)
{
    if (depth >= DOCS_DEPTH_MAX) {
        snprintf(errmsg, errlen, "%s: arguments nested deeper than %d", cmd, DOCS_DEPTH_MAX);
        return TRIAD_EINVAL;
    }
    for (size_t i = 0; args != NULL && args[i].name != NULL; i++) {
        const struct docs_arg *a = &args[i];
        bool nested = a->type == DOCS_ONEOF || a->type == DOCS_BLOCK;
        if (nested != (docs__args_count(a->args) > 0)) {
            snprintf(errmsg, errlen, "%s: argument '%s' %s", cmd, a->name,
                     nested ? "has no parts" : "has parts but is no oneof or block");
            return TRIAD_EINVAL;
        }
        if (a->type == DOCS_PURE_TOKEN && a->token == NULL) {
            snprintf(errmsg, errlen, "%s: pure-token '%s' has no token", cmd, a->name);
            return TRIAD_EINVAL;
        }
        if (a->type != DOCS_KEY && a->key_spec_index != 0) {
            snprintf(errmsg, errlen, "%s: '%s' has a key spec but is no key", cmd, a->name);
            return TRIAD_EINVAL;
        }
        if ((a->flags & DOCS_MULTIPLE_TOKEN) && !(a->flags & DOCS_MULTIPLE)) {
            snprintf(errmsg, errlen, "%s: '%s' is multiple_token but not multiple", cmd, a->name);
            return TRIAD_EINVAL;
        }
        if (nested) {
            int rc = docs__check_args(cmd, a->args, depth + 1, errmsg, errlen);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

int cmd_docs_check(char *errmsg, size_t errlen)
{
    size_t n;
    const struct cmd_spec *table = cmd_table(&n);
    for (size_t i = 0; i < n; i++) {
        if (docs__find(table[i].name) == NULL) {
            snprintf(errmsg, errlen, "%s has no docs", table[i].name);
            return TRIAD_ENOTFOUND;
        }
    }
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(docs__table); i++) {
        const struct docs_cmd *d = &docs__table[i];
        if (cmd_lookup(d->name, strlen(d->name)) == NULL) {
            snprintf(errmsg, errlen, "%s is documented but not in the table", d->name);
            return TRIAD_ENOTFOUND;
        }
        if (d->complexity == NULL || d->summary != NULL) {
            snprintf(errmsg, errlen, "%s: complexity missing or summary outside the table",
                     d->name);
            return TRIAD_EINVAL;
        }
        if (d->args != NULL && docs__args_count(d->args) == 0) {
            snprintf(errmsg, errlen, "%s: an empty argument list (NULL says none)", d->name);
            return TRIAD_EINVAL;
        }
        int rc = docs__check_args(d->name, d->args, 0, errmsg, errlen);
        for (size_t j = 0; rc == 0 && d->subcommands != NULL && d->subcommands[j].name != NULL;
             j++) {
            const struct docs_cmd *sub = &d->subcommands[j];
            if (sub->summary == NULL || sub->since == NULL || sub->group == NULL ||
                sub->complexity == NULL || sub->arity == 0 || sub->subcommands != NULL) {
                snprintf(errmsg, errlen, "%s: incomplete docs", sub->name);
                return TRIAD_EINVAL;
            }
            rc = docs__check_args(sub->name, sub->args, 0, errmsg, errlen);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}
