/* config.h - `triad server` settings: flags, a config file of Redis-style
 * `name value` lines, and CONFIG GET/SET at run time.
 *
 * Names follow Redis wherever Redis has the setting (port, bind, dir,
 * requirepass, maxmemory, maxclients, loglevel, ...); Triad's own are
 * `fsync`, `name`, `snapshot-wal-bytes` and `wal-segment-bytes`, and
 * those of the replicated modes (`node-id`, `peers`, `mode`, and leaderless
 * mode's `replicas`, `read-quorum`, ... named as Cassandra and Riak name
 * theirs where they have one).
 */
#ifndef TRIAD_CONFIG_H
#define TRIAD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum config_fsync { CONFIG_FSYNC_ALWAYS = 0, CONFIG_FSYNC_EVERYSEC, CONFIG_FSYNC_NO };
enum config_loglevel { LOG_DEBUG = 0, LOG_VERBOSE, LOG_NOTICE, LOG_WARNING };
enum config_mode { CONFIG_MODE_LEADER = 0, CONFIG_MODE_LEADERLESS };

#define CONFIG_STR_MAX 1024
#define CONFIG_HZ_MIN 1   /* hz is taken as the nearest of these (Redis's updateHZ) */
#define CONFIG_HZ_MAX 500

struct config {
    int port;
    char bind[CONFIG_STR_MAX];
    char dir[CONFIG_STR_MAX];
    char name[128];
    char requirepass[CONFIG_STR_MAX];
    char logfile[CONFIG_STR_MAX];
    char pidfile[CONFIG_STR_MAX];
    char config_file[CONFIG_STR_MAX];
    long long maxmemory;
    int maxclients;
    int loglevel;
    int fsync;
    int databases;
    int timeout_s;
    int tcp_keepalive_s;
    int tcp_backlog;
    long long proto_max_bulk_len;
    long long client_query_buffer_limit;
    int hz;
    int idle_poll_us;
    long long snapshot_wal_bytes;
    int snapshot_wal_percentage;
    int maxmemory_policy;
    long long wal_segment_bytes;
    /* leader mode (cluster) */
    int node_id;                           /* 0: a single node, no cluster */
    char peers[CONFIG_STR_MAX];            /* "1=host:port,2=host:port,..." */
    char cluster_id[128];
    char cluster_secret[CONFIG_STR_MAX];   /* "" = peers are not authenticated */
    int enable_fault_commands;             /* TRIAD.FAULT, for tests of partitions */
    int redirect;                          /* followers answer -MOVED instead of forwarding */
    int join;                              /* an empty log waits for a leader: no bootstrap */
    int raft_snapshot_entries;             /* compact the Raft log after this many entries */
    int raft_snapshot_timeout_ms;          /* a snapshot child slower than this is killed */
    /* which replicated mode --node-id and --peers run */
    int mode;                              /* enum config_mode */
    /* leaderless mode (src/core/dynamo.h): --peers are the gossip seeds */
    int replicas;                          /* N */
    int read_quorum;                       /* R: the default read level */
    int write_quorum;                      /* W: the default write level */
    int vnodes;                            /* ring tokens per node */
    int sloppy_quorum;                     /* fallbacks and hinted handoff */
    long long anti_entropy_interval_ms;    /* 0: off */
    long long hints_max;
    long long tombstone_grace_ms;
    long long gossip_interval_ms;
    int phi_convict_threshold;
    long long request_timeout_ms;
};

#define CONFIG_PEERS_MAX 16 /* as RAFT_NODES_MAX */

/* One member of --peers: its node id and the address of its peer port. */
struct config_peer {
    int id;
    char host[256];
    int port;
};

/* Parse "1=127.0.0.1:7380,2=127.0.0.1:7381,...": ids 1..1000000, each once;
 * hosts as IPv4 dotted quads, [IPv6] or names; ports 1..65535. Returns the
 * number of peers (>= 1), or -1 with errmsg. */
int config_parse_peers(const char *s, struct config_peer *out, int max, char *errmsg,
                       size_t errlen);
/* cfg's --peers parsed into out (room for CONFIG_PEERS_MAX), with *self
 * pointing at this node's entry: the count, or -1 with errmsg (bad list,
 * or one without --node-id's entry). */
int config_peers_self(const struct config *cfg, struct config_peer *out,
                      const struct config_peer **self, char *errmsg, size_t errlen);

/* Defaults, then the config file (if argv holds one), then --flags.
 * 0 on success; 1 if --help was printed; -1 with errmsg on bad input. */
int config_load(struct config *cfg, int argc, char **argv, char *errmsg, size_t errlen);
void config_print_help(FILE *f);

/* CONFIG GET: emit every parameter whose name matches the glob. */
void config_get(const struct config *cfg, const char *pattern,
                void (*emit)(void *e, const char *name, const char *value), void *e);
/* CONFIG SET name value: 0, or -1 with errmsg (Redis's text minus "ERR "). */
int config_set(struct config *cfg, const char *name, const char *value, char *errmsg,
               size_t errlen);

/* "1gb" -> 1073741824 as Redis's memtoll reads it; false if malformed. */
bool config_parse_memory(const char *s, long long *out);
const char *config_fsync_name(int fsync);

/* glob match as Redis's stringmatchlen (used by CONFIG GET). */
bool config_glob_match(const char *pattern, const char *s, bool nocase);

#endif
