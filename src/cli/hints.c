/* hints.c - the commands Triad serves, with their argument syntax.
 *
 * Used for the grey hint after a typed command name, TAB completion of
 * command names and `help <command>` in interactive mode. Syntax follows
 * Redis 7's documentation conventions: [optional], a|b alternatives, "..."
 * for repetition. Two-word commands ("CONFIG GET") come before their
 * container so a lookup finds the longer name first.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "../common/defs.h"
#include "cli_int.h"

const struct cli_cmd_help cli_cmd_table[] = {
    /* strings */
    {"APPEND", "key value", "Append a value to a key"},
    {"DECR", "key", "Decrement the integer value of a key by one"},
    {"DECRBY", "key decrement", "Decrement the integer value of a key by the given number"},
    {"GET", "key", "Get the value of a key"},
    {"GETDEL", "key", "Get the value of a key and delete the key"},
    {"GETEX", "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]",
     "Get the value of a key and optionally set its expiration"},
    {"GETRANGE", "key start end", "Get a substring of the string stored at a key"},
    {"GETSET", "key value", "Set the string value of a key and return its old value"},
    {"INCR", "key", "Increment the integer value of a key by one"},
    {"INCRBY", "key increment", "Increment the integer value of a key by the given amount"},
    {"INCRBYFLOAT", "key increment", "Increment the float value of a key by the given amount"},
    {"MGET", "key [key ...]", "Get the values of all the given keys"},
    {"MSET", "key value [key value ...]", "Set multiple keys to multiple values"},
    {"MSETNX", "key value [key value ...]", "Set multiple keys to multiple values, only if none of the keys exist"},
    {"PSETEX", "key milliseconds value", "Set the value and expiration in milliseconds of a key"},
    {"SET",
     "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL] "
     "[IFEQ comparison-value]",
     "Set the string value of a key"},
    {"SETEX", "key seconds value", "Set the value and expiration of a key"},
    {"SETNX", "key value", "Set the value of a key, only if the key does not exist"},
    {"SETRANGE", "key offset value", "Overwrite part of a string at key starting at the specified offset"},
    {"STRLEN", "key", "Get the length of the value stored in a key"},
    /* keyspace */
    {"COPY", "source destination [DB destination-db] [REPLACE]", "Copy a key"},
    {"DEL", "key [key ...]", "Delete a key"},
    {"EXISTS", "key [key ...]", "Determine if a key exists"},
    {"KEYS", "pattern", "Find all keys matching the given pattern"},
    {"RANDOMKEY", "", "Return a random key from the keyspace"},
    {"RENAME", "key newkey", "Rename a key"},
    {"RENAMENX", "key newkey", "Rename a key, only if the new key does not exist"},
    {"SCAN", "cursor [MATCH pattern] [COUNT count] [TYPE type]", "Incrementally iterate the keys space"},
    {"TOUCH", "key [key ...]", "Alter the last access time of a key(s)"},
    {"TYPE", "key", "Determine the type stored at key"},
    {"UNLINK", "key [key ...]", "Delete a key asynchronously in another thread"},
    /* expiry */
    {"EXPIRE", "key seconds [NX|XX|GT|LT]", "Set a key's time to live in seconds"},
    {"EXPIREAT", "key unix-time-seconds [NX|XX|GT|LT]", "Set the expiration for a key as a UNIX timestamp"},
    {"EXPIRETIME", "key", "Get the expiration Unix timestamp for a key"},
    {"PERSIST", "key", "Remove the expiration from a key"},
    {"PEXPIRE", "key milliseconds [NX|XX|GT|LT]", "Set a key's time to live in milliseconds"},
    {"PEXPIREAT", "key unix-time-milliseconds [NX|XX|GT|LT]",
     "Set the expiration for a key as a UNIX timestamp specified in milliseconds"},
    {"PEXPIRETIME", "key", "Get the expiration Unix timestamp for a key in milliseconds"},
    {"PTTL", "key", "Get the time to live for a key in milliseconds"},
    {"TTL", "key", "Get the time to live for a key in seconds"},
    /* connection */
    {"AUTH", "[username] password", "Authenticate to the server"},
    {"CLIENT GETNAME", "", "Get the current connection name"},
    {"CLIENT ID", "", "Returns the client ID for the current connection"},
    {"CLIENT INFO", "", "Returns information about the current client connection"},
    {"CLIENT LIST", "[TYPE NORMAL|MASTER|REPLICA|PUBSUB] [ID client-id [client-id ...]]",
     "Get the list of client connections"},
    {"CLIENT SETINFO", "LIB-NAME libname|LIB-VER libver", "Set client or connection specific info"},
    {"CLIENT SETNAME", "connection-name", "Set the current connection name"},
    {"CLIENT", "subcommand [argument ...]", "A container for client connection commands"},
    {"ECHO", "message", "Echo the given string"},
    {"HELLO", "[protover [AUTH username password] [SETNAME clientname]]", "Handshake with Redis"},
    {"PING", "[message]", "Ping the server"},
    {"QUIT", "", "Close the connection"},
    {"RESET", "", "Reset the connection"},
    {"SELECT", "index", "Change the selected database for the current connection"},
    /* server */
    {"COMMAND COUNT", "", "Get total number of Redis commands"},
    {"COMMAND DOCS", "[command-name [command-name ...]]", "Get array of specific Redis command documentation"},
    {"COMMAND INFO", "[command-name [command-name ...]]", "Get array of specific Redis command details"},
    {"COMMAND LIST", "[FILTERBY MODULE module-name|ACLCAT category|PATTERN pattern]", "Get an array of Redis command names"},
    {"COMMAND", "", "Get array of Redis command details"},
    {"CONFIG GET", "parameter [parameter ...]", "Get the values of configuration parameters"},
    {"CONFIG RESETSTAT", "", "Reset the stats returned by INFO"},
    {"CONFIG SET", "parameter value [parameter value ...]", "Set configuration parameters to the given values"},
    {"CONFIG", "subcommand [argument ...]", "A container for server configuration commands"},
    {"DBSIZE", "", "Return the number of keys in the selected database"},
    {"FLUSHALL", "[ASYNC|SYNC]", "Remove all keys from all databases"},
    {"FLUSHDB", "[ASYNC|SYNC]", "Remove all keys from the current database"},
    {"INFO", "[section [section ...]]", "Get information and statistics about the server"},
    {"SHUTDOWN", "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]", "Synchronously save the dataset to disk and then shut down the server"},
    {"TIME", "", "Return the current server time"},
    /* transactions */
    {"DISCARD", "", "Discard all commands issued after MULTI"},
    {"EXEC", "", "Execute all commands issued after MULTI"},
    {"MULTI", "", "Mark the start of a transaction block"},
    {"UNWATCH", "", "Forget about all watched keys"},
    {"WATCH", "key [key ...]", "Watch the given keys to determine execution of the MULTI/EXEC block"},
    /* replication */
    {"READONLY", "", "Enables read queries for a connection to a follower"},
    {"READWRITE", "", "Disables read queries for a connection to a follower"},
    {"ROLE", "", "Return the role of the instance in the context of replication"},
    {"WAIT", "numreplicas timeout", "Wait for the synchronous replication of all the write commands sent before"},
    /* Triad's own */
    {"TRIAD.CONSISTENCY", "[ONE|TWO|QUORUM|ALL]", "Get or set this connection's write acknowledgement level"},
    {"TRIAD.MEMBERS", "", "List the members of the Triad cluster"},
    {"TRIAD.TRANSFER", "node-id", "Transfer leadership to another node"},
};

const size_t cli_cmd_table_len = TRIAD_ARRAY_LEN(cli_cmd_table);

/* true if name (maybe "A B") is spelled by argv[0] and, for two words,
 * argv[1] */
static int name_matches(const char *name, int argc, char **argv, int *words_out)
{
    const char *space = strchr(name, ' ');
    if (space == NULL) {
        if (argc < 1 || strcasecmp(name, argv[0]) != 0)
            return 0;
        *words_out = 1;
        return 1;
    }
    size_t first_len = (size_t)(space - name);
    if (argc < 2 || strlen(argv[0]) != first_len || strncasecmp(name, argv[0], first_len) != 0)
        return 0;
    if (strcasecmp(space + 1, argv[1]) != 0)
        return 0;
    *words_out = 2;
    return 1;
}

const struct cli_cmd_help *cli_cmd_lookup(int argc, char **argv, int *words_out)
{
    for (size_t i = 0; i < cli_cmd_table_len; i++) {
        if (name_matches(cli_cmd_table[i].name, argc, argv, words_out))
            return &cli_cmd_table[i];
    }
    return NULL;
}

int cli_hint_for_line(const char *line, struct tbuf *out)
{
    int argc;
    char **argv;
    size_t *lens;
    int rc = -1;

    if (cli_split_line(line, &argc, &argv, &lens) != 0)
        return -1; /* half-typed quotes: no hint */
    size_t line_len = strlen(line);
    int ends_with_space = line_len > 0 && isspace((unsigned char)line[line_len - 1]);
    int words;
    const struct cli_cmd_help *h = cli_cmd_lookup(argc, argv, &words);
    if (h == NULL || h->params[0] == '\0')
        goto out_free;
    /* Arguments already typed take the leading words of the syntax; an
     * optional part ("[...") stops that, since we cannot tell which ones
     * were given. */
    int typed = argc - words;
    const char *hint = h->params;
    while (typed > 0 && *hint != '\0' && *hint != '[') {
        const char *sp = strchr(hint, ' ');
        hint = sp ? sp + 1 : hint + strlen(hint);
        typed--;
    }
    if (*hint == '\0')
        goto out_free;
    if (!ends_with_space)
        tbuf_appendc(out, ' ');
    tbuf_appends(out, hint);
    rc = 0;

out_free:
    cli_split_free(argc, argv, lens);
    return rc;
}
