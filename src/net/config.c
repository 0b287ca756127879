/* config.c - the settings table and its parsers. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/defs.h"
#include "../core/dynamo.h"
#include "../core/ring.h"

/* CT_FIXED: a read-only value reported for tools that ask Redis for it
 * (redis-benchmark reads `save` and `appendonly`); never set. */
enum config_type { CT_INT, CT_LLONG, CT_MEMORY, CT_STRING, CT_ENUM, CT_FIXED };

struct config_param {
    const char *name;
    enum config_type type;
    bool mutable_;
    size_t offset;   /* into struct config */
    size_t size;     /* for strings: the buffer size */
    long long min, max;
    const char *const *enum_names;
    const char *help;
};

static const char *const fsync_names[] = {"always", "everysec", "no", NULL};
static const char *const maxmemory_policy_names[] = {"noeviction", NULL};
static const char *const loglevel_names[] = {"debug", "verbose", "notice", "warning", NULL};
static const char *const yesno_names[] = {"no", "yes", NULL};
static const char *const mode_names[] = {"leader", "leaderless", NULL};

#define OFF(f) offsetof(struct config, f)
#define SZ(f) sizeof(((struct config *)0)->f)

static const struct config_param config_params[] = {
    {"port", CT_INT, false, OFF(port), SZ(port), 0, 65535, NULL,
     "TCP port for clients (0 = pick a free port). Default 7379."},
    {"bind", CT_STRING, false, OFF(bind), SZ(bind), 0, 0, NULL,
     "address to listen on. Default 127.0.0.1."},
    {"dir", CT_STRING, false, OFF(dir), SZ(dir), 0, 0, NULL,
     "data directory (WAL segments and snapshots). Default ./data/<name>."},
    {"name", CT_STRING, false, OFF(name), SZ(name), 0, 0, NULL,
     "this node's name. Default node-<port>."},
    {"requirepass", CT_STRING, true, OFF(requirepass), SZ(requirepass), 0, 0, NULL,
     "password clients must give with AUTH. Default none."},
    {"maxmemory", CT_MEMORY, true, OFF(maxmemory), SZ(maxmemory), 0, LLONG_MAX, NULL,
     "refuse writes when used memory exceeds this (0 = no limit)."},
    {"maxmemory-policy", CT_ENUM, true, OFF(maxmemory_policy), SZ(maxmemory_policy), 0, 0,
     maxmemory_policy_names, "what to do at maxmemory: noeviction (refuse writes) only."},
    {"maxclients", CT_INT, true, OFF(maxclients), SZ(maxclients), 1, 1000000, NULL,
     "most clients connected at once. Default 10000."},
    {"loglevel", CT_ENUM, true, OFF(loglevel), SZ(loglevel), 0, 0, loglevel_names,
     "debug, verbose, notice or warning. Default notice."},
    {"logfile", CT_STRING, false, OFF(logfile), SZ(logfile), 0, 0, NULL,
     "log to this file instead of stderr."},
    {"pidfile", CT_STRING, false, OFF(pidfile), SZ(pidfile), 0, 0, NULL,
     "write the process id to this file."},
    {"fsync", CT_ENUM, true, OFF(fsync), SZ(fsync), 0, 0, fsync_names,
     "always (reply once durable), everysec or no. Default always."},
    {"databases", CT_INT, false, OFF(databases), SZ(databases), 1, 16, NULL,
     "number of databases (SELECT 0..n-1). Default 16."},
    {"timeout", CT_INT, true, OFF(timeout_s), SZ(timeout_s), 0, INT_MAX, NULL,
     "close a client idle this many seconds (0 = never)."},
    {"tcp-keepalive", CT_INT, true, OFF(tcp_keepalive_s), SZ(tcp_keepalive_s), 0, INT_MAX, NULL,
     "TCP keepalive interval in seconds (0 = off). Default 300."},
    {"tcp-backlog", CT_INT, false, OFF(tcp_backlog), SZ(tcp_backlog), 1, 65535, NULL,
     "listen() backlog. Default 511."},
    {"proto-max-bulk-len", CT_MEMORY, true, OFF(proto_max_bulk_len), SZ(proto_max_bulk_len),
     1024 * 1024, 512ll * 1024 * 1024, NULL, "largest bulk string a client may send. Default 512mb."},
    {"client-query-buffer-limit", CT_MEMORY, true, OFF(client_query_buffer_limit),
     SZ(client_query_buffer_limit), 1024 * 1024, 1024ll * 1024 * 1024, NULL,
     "largest unparsed input per client. Default 1gb."},
    {"hz", CT_INT, true, OFF(hz), SZ(hz), 0, INT_MAX, NULL,
     "background tasks (active expiry, ...) per second, 1 to 500 (outside, the nearest). "
     "Default 10."},
    {"idle-poll-us", CT_INT, true, OFF(idle_poll_us), SZ(idle_poll_us), 0, 100000, NULL,
     "poll up to this long for work before the loop sleeps, adapted to the load (0 = never). "
     "Default 50."},
    {"snapshot-wal-bytes", CT_MEMORY, true, OFF(snapshot_wal_bytes), SZ(snapshot_wal_bytes), 0,
     LLONG_MAX, NULL,
     "take a background snapshot once the WAL has grown this much (0 = never). Default 64mb."},
    {"snapshot-wal-percentage", CT_INT, true, OFF(snapshot_wal_percentage),
     SZ(snapshot_wal_percentage), 0, 100000, NULL,
     "...and once it grew this % of the last snapshot's size (0 = size alone). Default 100."},
    {"wal-segment-bytes", CT_MEMORY, false, OFF(wal_segment_bytes), SZ(wal_segment_bytes), 4096,
     1ll << 40, NULL, "size of one WAL segment file. Default 64mb."},
    {"node-id", CT_INT, false, OFF(node_id), SZ(node_id), 0, 1000000, NULL,
     "this node's id in a cluster (either mode); 0 = a single node. Default 0."},
    {"peers", CT_STRING, false, OFF(peers), SZ(peers), 0, 0, NULL,
     "every member's id and peer address: 1=host:port,2=host:port,... (with node-id; in "
     "leaderless mode the gossip seeds, and this node's own entry)."},
    {"cluster-id", CT_STRING, false, OFF(cluster_id), SZ(cluster_id), 0, 0, NULL,
     "a name every member of one cluster shares; peers of another are refused. Default triad."},
    {"cluster-secret", CT_STRING, false, OFF(cluster_secret), SZ(cluster_secret), 0, 0, NULL,
     "a shared secret peers prove with HMAC-SHA256 when they connect. Default none."},
    {"enable-fault-commands", CT_ENUM, false, OFF(enable_fault_commands),
     SZ(enable_fault_commands), 0, 0, yesno_names,
     "allow TRIAD.FAULT (cut this node off from peers, for partition tests). Default no."},
    {"join", CT_ENUM, false, OFF(join), SZ(join), 0, 0, yesno_names,
     "start with an empty log and wait to be added by a running cluster's leader (TRIAD.MEMBERS "
     "ADD) instead of founding a new cluster of --peers (leaderless: a node with no data "
     "first streams the ranges it will replicate from the running nodes). Use it for a new or "
     "wiped node. Default no."},
    {"redirect", CT_ENUM, true, OFF(redirect), SZ(redirect), 0, 0, yesno_names,
     "a follower answers a command for the leader with -MOVED <slot> <leader's address> instead of "
     "forwarding it. Default no."},
    {"raft-snapshot-entries", CT_INT, false, OFF(raft_snapshot_entries),
     SZ(raft_snapshot_entries), 1, 1000000000, NULL,
     "compact the Raft log into a snapshot after this many applied entries. Default 100000."},
    {"raft-snapshot-timeout-ms", CT_INT, false, OFF(raft_snapshot_timeout_ms),
     SZ(raft_snapshot_timeout_ms), 1000, 86400000, NULL,
     "a forked child serializing a log compaction's snapshot that has not delivered it after "
     "this long is killed, and the compaction tried again later. Default 900000 (15 minutes)."},
    {"mode", CT_ENUM, false, OFF(mode), SZ(mode), 0, 0, mode_names,
     "with node-id and peers: leader (Raft, one leader orders every write) or leaderless "
     "(Dynamo-style: any node coordinates, N replicas, R and W quorums). Default leader."},
    {"replicas", CT_INT, false, OFF(replicas), SZ(replicas), 1, DYN_N_MAX, NULL,
     "leaderless: copies of each key, N (at most 7). Default 3."},
    {"read-quorum", CT_INT, false, OFF(read_quorum), SZ(read_quorum), 1, DYN_N_MAX, NULL,
     "leaderless: replies a read waits for by default, R (1..N). Default 2."},
    {"write-quorum", CT_INT, false, OFF(write_quorum), SZ(write_quorum), 1, DYN_N_MAX, NULL,
     "leaderless: durable copies a write waits for by default, W (1..N). Default 2."},
    {"vnodes", CT_INT, false, OFF(vnodes), SZ(vnodes), 1, RING_VNODES_MAX, NULL,
     "leaderless: tokens per node on the hash ring. Default 64."},
    {"sloppy-quorum", CT_ENUM, false, OFF(sloppy_quorum), SZ(sloppy_quorum), 0, 0, yesno_names,
     "leaderless: a replica that is down is stood in for by the next live node, which keeps a "
     "hint and hands it over when the replica is back (no: such writes fail). Default yes."},
    {"anti-entropy-interval-ms", CT_LLONG, false, OFF(anti_entropy_interval_ms),
     SZ(anti_entropy_interval_ms), 0, 86400000ll, NULL,
     "leaderless: compare a range's Merkle tree with another replica this often (0 = off). "
     "Default 10000."},
    {"hints-max", CT_LLONG, false, OFF(hints_max), SZ(hints_max), 0, 1000000000ll, NULL,
     "leaderless: hints this node keeps at most for nodes that are down. Default 1000000."},
    {"tombstone-grace-ms", CT_LLONG, false, OFF(tombstone_grace_ms), SZ(tombstone_grace_ms), 0,
     100ll * 365 * 86400000, NULL,
     "leaderless: a deletion's tombstone is kept at least this long (Cassandra's gc_grace). "
     "Default 864000000 (10 days)."},
    {"gossip-interval-ms", CT_LLONG, false, OFF(gossip_interval_ms), SZ(gossip_interval_ms), 10,
     60000, NULL, "leaderless: a gossip round this often. Default 1000."},
    {"phi-convict-threshold", CT_INT, false, OFF(phi_convict_threshold),
     SZ(phi_convict_threshold), 1, 100, NULL,
     "leaderless: a node is thought down once the failure detector's phi reaches this. "
     "Default 8."},
    {"request-timeout-ms", CT_LLONG, false, OFF(request_timeout_ms), SZ(request_timeout_ms), 1,
     3600000, NULL,
     "leaderless: a read or write not done by then fails. Default 2000."},
    /* What Redis tools ask for, answered truthfully: Triad has no RDB save
     * points (snapshots follow WAL growth) and always keeps a log. */
    {"save", CT_FIXED, false, 0, 0, 0, 0, NULL, ""},
    {"appendonly", CT_FIXED, false, 0, 0, 0, 0, NULL, "yes"},
};

static const struct config_param *config__find(const char *name)
{
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(config_params); i++)
        if (strcasecmp(config_params[i].name, name) == 0)
            return &config_params[i];
    return NULL;
}

bool config_parse_memory(const char *s, long long *out)
{
    /* Redis's memtoull: whole digits, then an optional unit; no sign, no
     * fraction, no exponent ("1.5gb" is refused, not rounded). */
    const char *end = s;
    while (*end >= '0' && *end <= '9')
        end++;
    if (end == s)
        return false;
    unsigned long long mul;
    if (strcasecmp(end, "") == 0 || strcasecmp(end, "b") == 0)
        mul = 1;
    else if (strcasecmp(end, "k") == 0)
        mul = 1000;
    else if (strcasecmp(end, "kb") == 0)
        mul = 1024;
    else if (strcasecmp(end, "m") == 0)
        mul = 1000 * 1000;
    else if (strcasecmp(end, "mb") == 0)
        mul = 1024 * 1024;
    else if (strcasecmp(end, "g") == 0)
        mul = 1000ull * 1000 * 1000;
    else if (strcasecmp(end, "gb") == 0)
        mul = 1024ull * 1024 * 1024;
    else
        return false;
    unsigned long long v = 0;
    for (const char *p = s; p < end; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > ((unsigned long long)LLONG_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v > (unsigned long long)LLONG_MAX / mul)
        return false;
    *out = (long long)(v * mul);
    return true;
}

const char *config_fsync_name(int fsync)
{
    TRIAD_ASSERT(fsync >= 0 && fsync <= CONFIG_FSYNC_NO);
    return fsync_names[fsync];
}

static bool config__in_range(const struct config_param *p, long long v, char *errmsg,
                             size_t errlen)
{
    if (v >= p->min && v <= p->max)
        return true;
    snprintf(errmsg, errlen, "argument must be between %lld and %lld inclusive", p->min, p->max);
    return false;
}

static int config__apply(struct config *cfg, const struct config_param *p, const char *value,
                         char *errmsg, size_t errlen)
{
    char *field = (char *)cfg + p->offset;
    switch (p->type) {
    case CT_INT:
    case CT_LLONG: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno != 0 || end == value || *end != '\0') {
            snprintf(errmsg, errlen, "argument couldn't be parsed into an integer");
            return -1;
        }
        if (!config__in_range(p, v, errmsg, errlen))
            return -1;
        /* as Redis's updateHZ: any count is taken, the nearest in range used */
        if (p->offset == offsetof(struct config, hz))
            v = TRIAD_MIN(TRIAD_MAX(v, CONFIG_HZ_MIN), CONFIG_HZ_MAX);
        if (p->type == CT_LLONG)
            *(long long *)field = v;
        else
            *(int *)field = (int)v;
        return 0;
    }
    case CT_MEMORY: {
        long long v;
        if (!config_parse_memory(value, &v)) {
            snprintf(errmsg, errlen, "argument must be a memory value");
            return -1;
        }
        if (!config__in_range(p, v, errmsg, errlen))
            return -1;
        *(long long *)field = v;
        return 0;
    }
    case CT_STRING:
        if (strlen(value) >= p->size) {
            snprintf(errmsg, errlen, "argument is too long (at most %zu bytes)", p->size - 1);
            return -1;
        }
        strcpy(field, value);
        return 0;
    case CT_FIXED:
        snprintf(errmsg, errlen, "can't set immutable config");
        return -1;
    case CT_ENUM:
        for (int i = 0; p->enum_names[i]; i++) {
            if (strcasecmp(p->enum_names[i], value) == 0) {
                *(int *)field = i;
                return 0;
            }
        }
        snprintf(errmsg, errlen, "argument(s) must be one of the following: ");
        for (int i = 0; p->enum_names[i]; i++) {
            size_t n = strlen(errmsg);
            snprintf(errmsg + n, errlen - n, "%s%s", i ? ", " : "", p->enum_names[i]);
        }
        return -1;
    }
    return -1;
}

static void config__format(const struct config *cfg, const struct config_param *p, char *out,
                           size_t outlen)
{
    const char *field = (const char *)cfg + p->offset;
    switch (p->type) {
    case CT_INT:
        snprintf(out, outlen, "%d", *(const int *)field);
        break;
    case CT_LLONG:
    case CT_MEMORY:
        snprintf(out, outlen, "%lld", *(const long long *)field);
        break;
    case CT_STRING:
        snprintf(out, outlen, "%s", field);
        break;
    case CT_ENUM:
        snprintf(out, outlen, "%s", p->enum_names[*(const int *)field]);
        break;
    case CT_FIXED:
        snprintf(out, outlen, "%s", p->help);
        break;
    }
}

static void config__defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->port = 7379;
    strcpy(cfg->bind, "127.0.0.1");
    cfg->maxclients = 10000;
    cfg->loglevel = LOG_NOTICE;
    cfg->fsync = CONFIG_FSYNC_ALWAYS;
    cfg->databases = 16;
    cfg->tcp_keepalive_s = 300;
    cfg->tcp_backlog = 511;
    cfg->proto_max_bulk_len = 512ll * 1024 * 1024;
    cfg->client_query_buffer_limit = 1024ll * 1024 * 1024;
    cfg->hz = 10;
    cfg->idle_poll_us = 50;
    cfg->snapshot_wal_bytes = 64ll * 1024 * 1024;
    cfg->snapshot_wal_percentage = 100;
    cfg->wal_segment_bytes = 64ll * 1024 * 1024;
    strcpy(cfg->cluster_id, "triad");
    cfg->raft_snapshot_entries = 100000;
    cfg->raft_snapshot_timeout_ms = 15 * 60 * 1000;
    cfg->mode = CONFIG_MODE_LEADER;
    /* leaderless mode's settings default to the core's own defaults, so
     * the simulator and the server run with the same ones */
    struct dyn_config d;
    dyn_config_default(&d, 1);
    cfg->replicas = (int)d.n;
    cfg->read_quorum = (int)d.r;
    cfg->write_quorum = (int)d.w;
    cfg->vnodes = (int)d.vnodes;
    cfg->sloppy_quorum = d.sloppy ? 1 : 0;
    cfg->anti_entropy_interval_ms = (long long)d.ae_interval_ms;
    cfg->hints_max = (long long)d.hints_max;
    cfg->tombstone_grace_ms = (long long)d.tombstone_grace_ms;
    cfg->gossip_interval_ms = (long long)d.gossip.interval_ms;
    cfg->phi_convict_threshold = (int)d.gossip.phi_convict;
    cfg->request_timeout_ms = (long long)d.request_timeout_ms;
}

/* Split a config file line into words, honouring "double" and 'single'
 * quotes. Returns the word count, or -1 on an unbalanced quote. */
static int config__split(char *line, char **words, int max_words)
{
    int n = 0;
    char *p = line, *w = line;
    while (*p) {
        while (*p && isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (n == max_words)
            return -1;
        char quote = 0;
        if (*p == '"' || *p == '\'')
            quote = *p++;
        words[n++] = w = p;
        char *dst = w;
        for (;;) {
            if (*p == '\0') {
                if (quote)
                    return -1;
                break;
            }
            if (quote && *p == quote) {
                p++;
                break;
            }
            if (!quote && isspace((unsigned char)*p))
                break;
            if (quote == '"' && *p == '\\' && p[1]) {
                p++;
                *dst++ = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                p++;
                continue;
            }
            *dst++ = *p++;
        }
        char *after = p;
        if (*p)
            p++;
        *dst = '\0';
        (void)after;
    }
    return n;
}

static int config__load_file(struct config *cfg, const char *path, char *errmsg, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(errmsg, errlen, "can't open config file '%s': %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        char *words[4];
        char *hash = line;
        while (*hash && isspace((unsigned char)*hash))
            hash++;
        if (*hash == '#' || *hash == '\0')
            continue;
        int n = config__split(line, words, 3);
        if (n == 0)
            continue;
        if (n != 2) {
            snprintf(errmsg, errlen, "%s:%d: expected 'name value'", path, lineno);
            fclose(f);
            return -1;
        }
        const struct config_param *p = config__find(words[0]);
        if (p == NULL) {
            snprintf(errmsg, errlen, "%s:%d: unknown setting '%s'", path, lineno, words[0]);
            fclose(f);
            return -1;
        }
        char why[256];
        if (config__apply(cfg, p, words[1], why, sizeof(why)) != 0) {
            snprintf(errmsg, errlen, "%s:%d: %s: %s", path, lineno, words[0], why);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

void config_print_help(FILE *f)
{
    fprintf(f, "Usage: triad server [config-file] [--name value ...]\n\n"
               "A config file holds one `name value` per line (# comments), as redis.conf.\n"
               "Flags override the file. Settings:\n\n");
    struct config def;
    config__defaults(&def);
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(config_params); i++) {
        const struct config_param *p = &config_params[i];
        if (p->type == CT_FIXED)
            continue;
        fprintf(f, "  --%-26s %s%s\n", p->name, p->help,
                p->mutable_ ? "" : " (fixed at start)");
    }
    fprintf(f, "\nExample: triad server --port 7379 --dir ./data/n1 --fsync always\n");
}

int config_load(struct config *cfg, int argc, char **argv, char *errmsg, size_t errlen)
{
    config__defaults(cfg);
    int i = 1;
    if (i < argc && strncmp(argv[i], "--", 2) != 0 && strcmp(argv[i], "-h") != 0) {
        snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", argv[i]);
        if (config__load_file(cfg, argv[i], errmsg, errlen) != 0)
            return -1;
        i++;
    }
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            config_print_help(stdout);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0) {
            snprintf(errmsg, errlen, "unexpected argument '%s' (settings are --name value)", a);
            return -1;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        char namebuf[128];
        const char *value;
        if (eq) {
            snprintf(namebuf, sizeof(namebuf), "%.*s", (int)(eq - name), name);
            name = namebuf;
            value = eq + 1;
        } else {
            if (i + 1 >= argc) {
                snprintf(errmsg, errlen, "--%s needs a value", name);
                return -1;
            }
            value = argv[++i];
        }
        const struct config_param *p = config__find(name);
        if (p == NULL) {
            snprintf(errmsg, errlen, "unknown setting --%s (see triad server --help)", name);
            return -1;
        }
        char why[256];
        if (config__apply(cfg, p, value, why, sizeof(why)) != 0) {
            snprintf(errmsg, errlen, "--%s %s: %s", name, value, why);
            return -1;
        }
    }
    /* a cluster: node-id and peers come together, and name this node */
    if ((cfg->node_id != 0) != (cfg->peers[0] != '\0')) {
        snprintf(errmsg, errlen, "--node-id and --peers go together (a cluster needs both)");
        return -1;
    }
    if (cfg->mode == CONFIG_MODE_LEADERLESS) {
        if (cfg->node_id == 0) {
            snprintf(errmsg, errlen, "--mode leaderless needs --node-id and --peers (this node's "
                                     "own peer address and the gossip seeds)");
            return -1;
        }
        if (cfg->read_quorum > cfg->replicas || cfg->write_quorum > cfg->replicas) {
            snprintf(errmsg, errlen,
                     "--read-quorum %d and --write-quorum %d must each be between 1 and "
                     "--replicas %d",
                     cfg->read_quorum, cfg->write_quorum, cfg->replicas);
            return -1;
        }
    }
    if (cfg->node_id != 0) {
        struct config_peer peers[CONFIG_PEERS_MAX];
        char why[256];
        int n = config_parse_peers(cfg->peers, peers, CONFIG_PEERS_MAX, why, sizeof(why));
        if (n < 0) {
            snprintf(errmsg, errlen, "--peers %s: %s", cfg->peers, why);
            return -1;
        }
        bool self = false;
        for (int i = 0; i < n; i++)
            self |= peers[i].id == cfg->node_id;
        if (!self) {
            snprintf(errmsg, errlen, "--peers does not list this node's id %d", cfg->node_id);
            return -1;
        }
    }
    if (cfg->name[0] == '\0') {
        if (cfg->node_id != 0)
            snprintf(cfg->name, sizeof(cfg->name), "node%d", cfg->node_id);
        else
            snprintf(cfg->name, sizeof(cfg->name), "node-%d", cfg->port);
    }
    if (cfg->dir[0] == '\0')
        snprintf(cfg->dir, sizeof(cfg->dir), "./data/%s", cfg->name);
    return 0;
}

static int config__parse_port(const char *s, size_t n, int *port)
{
    if (n == 0 || n > 5)
        return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = v;
    return 0;
}

int config_parse_peers(const char *s, struct config_peer *out, int max, char *errmsg,
                       size_t errlen)
{
    int n = 0;
    const char *p = s;
    while (*p != '\0') {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (len == 0 || eq == NULL) {
            snprintf(errmsg, errlen, "expected id=host:port, got '%.*s'", (int)len, p);
            return -1;
        }
        if (n == max) {
            snprintf(errmsg, errlen, "more than %d members", max);
            return -1;
        }
        struct config_peer *pe = &out[n];
        memset(pe, 0, sizeof(*pe));
        long id = 0;
        size_t idlen = (size_t)(eq - p);
        for (size_t i = 0; i < idlen; i++) {
            if (p[i] < '0' || p[i] > '9' || id > 1000000) {
                id = -1;
                break;
            }
            id = id * 10 + (p[i] - '0');
        }
        if (idlen == 0 || id < 1 || id > 1000000) {
            snprintf(errmsg, errlen, "bad node id '%.*s' (1..1000000)", (int)idlen, p);
            return -1;
        }
        pe->id = (int)id;
        for (int i = 0; i < n; i++)
            if (out[i].id == pe->id) {
                snprintf(errmsg, errlen, "node id %d listed twice", pe->id);
                return -1;
            }
        const char *addr = eq + 1;
        size_t alen = len - idlen - 1;
        const char *colon;
        const char *host = addr;
        size_t hlen;
        if (alen > 0 && addr[0] == '[') { /* [IPv6]:port */
            const char *rb = memchr(addr, ']', alen);
            if (rb == NULL || rb + 1 >= addr + alen || rb[1] != ':') {
                snprintf(errmsg, errlen, "bad address '%.*s' for node %d", (int)alen, addr, pe->id);
                return -1;
            }
            host = addr + 1;
            hlen = (size_t)(rb - host);
            colon = rb + 1;
        } else {
            colon = NULL;
            for (const char *c = addr; c < addr + alen; c++)
                if (*c == ':')
                    colon = c;
            hlen = colon ? (size_t)(colon - addr) : 0;
        }
        int port;
        if (colon == NULL || hlen == 0 || hlen >= sizeof(pe->host) ||
            config__parse_port(colon + 1, (size_t)(addr + alen - colon - 1), &port) != 0) {
            snprintf(errmsg, errlen, "bad address '%.*s' for node %d (host:port)", (int)alen, addr,
                     pe->id);
            return -1;
        }
        memcpy(pe->host, host, hlen);
        pe->host[hlen] = '\0';
        pe->port = port;
        n++;
        p = end ? end + 1 : p + len;
        if (end != NULL && *p == '\0') {
            snprintf(errmsg, errlen, "trailing comma");
            return -1;
        }
    }
    if (n == 0) {
        snprintf(errmsg, errlen, "no members");
        return -1;
    }
    return n;
}

int config_peers_self(const struct config *cfg, struct config_peer *out,
                      const struct config_peer **self, char *errmsg, size_t errlen)
{
    int n = config_parse_peers(cfg->peers, out, CONFIG_PEERS_MAX, errmsg, errlen);
    if (n < 0)
        return -1;
    *self = NULL;
    for (int i = 0; i < n; i++)
        if (out[i].id == cfg->node_id)
            *self = &out[i];
    if (*self == NULL) {
        snprintf(errmsg, errlen, "--peers does not list node %d", cfg->node_id);
        return -1;
    }
    return n;
}

void config_get(const struct config *cfg, const char *pattern,
                void (*emit)(void *e, const char *name, const char *value), void *e)
{
    char value[CONFIG_STR_MAX + 32];
    if (strpbrk(pattern, "[*?") == NULL) {
        /* a name, not a pattern: as Redis, answered under the name asked */
        const struct config_param *p = config__find(pattern);
        if (p != NULL) {
            config__format(cfg, p, value, sizeof(value));
            emit(e, pattern, value);
        }
        return;
    }
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(config_params); i++) {
        const struct config_param *p = &config_params[i];
        if (!config_glob_match(pattern, p->name, true))
            continue;
        config__format(cfg, p, value, sizeof(value));
        emit(e, p->name, value);
    }
}

int config_set(struct config *cfg, const char *name, const char *value, char *errmsg,
               size_t errlen)
{
    const struct config_param *p = config__find(name);
    if (p == NULL) {
        snprintf(errmsg, errlen, "Unknown option or number of arguments for CONFIG SET - '%s'",
                 name);
        return -1;
    }
    if (!p->mutable_) {
        snprintf(errmsg, errlen,
                 "CONFIG SET failed (possibly related to argument '%s') - can't set immutable config",
                 p->name);
        return -1;
    }
    char why[256];
    struct config tmp = *cfg;
    if (config__apply(&tmp, p, value, why, sizeof(why)) != 0) {
        snprintf(errmsg, errlen, "CONFIG SET failed (possibly related to argument '%s') - %s",
                 p->name, why);
        return -1;
    }
    *cfg = tmp;
    return 0;
}

/* Glob matching with * ? [set] [^set] [a-z] and \ escapes. Iterative with
 * one backtrack point for '*', so its work is bounded by |pattern|*|s|. */
bool config_glob_match(const char *pat, const char *s, bool nocase)
{
    const char *star_p = NULL, *star_s = NULL;
    while (*s) {
        bool matched = false;
        const char *next = pat;
        if (*pat == '*') {
            while (*pat == '*')
                pat++;
            if (*pat == '\0')
                return true;
            star_p = pat;
            star_s = s;
            continue;
        } else if (*pat == '?') {
            matched = true;
            next = pat + 1;
        } else if (*pat == '[') {
            const char *q = pat + 1;
            bool neg = false, hit = false;
            if (*q == '^') {
                neg = true;
                q++;
            }
            while (*q && *q != ']') {
                char lo = *q, hi = *q;
                if (*q == '\\' && q[1]) {
                    q++;
                    lo = hi = *q;
                } else if (q[1] == '-' && q[2] && q[2] != ']') {
                    lo = q[0];
                    hi = q[2];
                    q += 2;
                    if (lo > hi) {
                        char t = lo;
                        lo = hi;
                        hi = t;
                    }
                }
                char c = *s;
                if (nocase) {
                    c = (char)tolower((unsigned char)c);
                    lo = (char)tolower((unsigned char)lo);
                    hi = (char)tolower((unsigned char)hi);
                }
                if (c >= lo && c <= hi)
                    hit = true;
                q++;
            }
            matched = neg ? !hit : hit;
            next = *q ? q + 1 : q;
        } else if (*pat != '\0') {
            const char *pc = pat;
            if (*pc == '\\' && pc[1])
                pc++;
            matched = nocase ? tolower((unsigned char)*pc) == tolower((unsigned char)*s)
                             : *pc == *s;
            next = pc + 1;
        }
        if (matched) {
            pat = next;
            s++;
        } else if (star_p) {
            pat = star_p;
            s = ++star_s;
        } else {
            return false;
        }
    }
    while (*pat == '*')
        pat++;
    return *pat == '\0';
}
