/* test_config.c - settings: defaults, file, flags, CONFIG GET/SET. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/net/config.h"
#include "test.h"

TEST(config_defaults_match_the_documented_ones)
{
    struct config c;
    char err[256];
    char *argv[] = {"server"};
    CHECK_EQ_INT(config_load(&c, 1, argv, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.port, 7379);
    CHECK(strcmp(c.bind, "127.0.0.1") == 0);
    CHECK(strcmp(c.name, "node-7379") == 0);
    CHECK(strcmp(c.dir, "./data/node-7379") == 0);
    CHECK_EQ_INT(c.fsync, CONFIG_FSYNC_ALWAYS);
    CHECK_EQ_INT(c.maxclients, 10000);
    CHECK_EQ_INT(c.proto_max_bulk_len, 512ll * 1024 * 1024);
    CHECK_EQ_INT(c.hz, 10);
    CHECK_EQ_INT(c.idle_poll_us, 50);
    CHECK_EQ_INT(c.raft_snapshot_entries, 100000);
    CHECK_EQ_INT(c.raft_snapshot_timeout_ms, 15 * 60 * 1000);
}

TEST(config_raft_snapshot_settings_keep_to_their_ranges)
{
    struct config c;
    char err[256];
    static const struct {
        const char *name, *value;
        int ok;
    } cases[] = {
        {"--raft-snapshot-timeout-ms", "999", 0},
        {"--raft-snapshot-timeout-ms", "1000", 1},
        {"--raft-snapshot-timeout-ms", "86400000", 1},
        {"--raft-snapshot-timeout-ms", "86400001", 0},
        {"--raft-snapshot-entries", "0", 0},
        {"--raft-snapshot-entries", "1", 1},
        {"--raft-snapshot-entries", "1000000001", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *argv[] = {"server", (char *)cases[i].name, (char *)cases[i].value};
        CHECK_EQ_INT(config_load(&c, 3, argv, err, sizeof(err)), cases[i].ok ? 0 : -1);
    }
    char *argv[] = {"server", "--raft-snapshot-timeout-ms", "2500"};
    CHECK_EQ_INT(config_load(&c, 3, argv, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.raft_snapshot_timeout_ms, 2500);
}

TEST(config_parses_peers)
{
    struct config_peer p[CONFIG_PEERS_MAX];
    char err[256];
    CHECK_EQ_INT(config_parse_peers("1=127.0.0.1:7380,2=localhost:7381,3=[::1]:7382", p,
                                    CONFIG_PEERS_MAX, err, sizeof(err)), 3);
    CHECK_EQ_INT(p[0].id, 1);
    CHECK(strcmp(p[0].host, "127.0.0.1") == 0);
    CHECK_EQ_INT(p[0].port, 7380);
    CHECK(strcmp(p[1].host, "localhost") == 0);
    CHECK_EQ_INT(p[1].port, 7381);
    CHECK_EQ_INT(p[2].id, 3);
    CHECK(strcmp(p[2].host, "::1") == 0);
    CHECK_EQ_INT(p[2].port, 7382);
    CHECK_EQ_INT(config_parse_peers("7=h:1", p, CONFIG_PEERS_MAX, err, sizeof(err)), 1);
}

TEST(config_refuses_bad_peers_with_the_reason)
{
    struct config_peer p[CONFIG_PEERS_MAX];
    char err[256];
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"", "no members"},
        {"1=h:1,", "trailing comma"},
        {"h:1", "expected id=host:port, got 'h:1'"},
        {"0=h:1", "bad node id '0' (1..1000000)"},
        {"x=h:1", "bad node id 'x' (1..1000000)"},
        {"1=h:1,1=g:2", "node id 1 listed twice"},
        {"1=h", "bad address 'h' for node 1 (host:port)"},
        {"1=h:0", "bad address 'h:0' for node 1 (host:port)"},
        {"1=h:65536", "bad address 'h:65536' for node 1 (host:port)"},
        {"1=:5", "bad address ':5' for node 1 (host:port)"},
        {"1=[::1]5", "bad address '[::1]5' for node 1"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK_EQ_INT(config_parse_peers(bad[i].in, p, CONFIG_PEERS_MAX, err, sizeof(err)), -1);
        if (strcmp(err, bad[i].why) != 0)
            fprintf(stderr, "  '%s': got '%s', want '%s'\n", bad[i].in, err, bad[i].why);
        CHECK(strcmp(err, bad[i].why) == 0);
    }
    CHECK_EQ_INT(config_parse_peers("1=a:1,2=a:2,3=a:3", p, 2, err, sizeof(err)), -1);
    CHECK(strcmp(err, "more than 2 members") == 0);
}

TEST(config_cluster_needs_node_id_and_peers_together)
{
    struct config c;
    char err[256];
    char *ok[] = {"server", "--node-id", "2", "--peers", "1=127.0.0.1:7380,2=127.0.0.1:7381"};
    CHECK_EQ_INT(config_load(&c, 5, ok, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.node_id, 2);
    CHECK(strcmp(c.name, "node2") == 0);
    CHECK(strcmp(c.dir, "./data/node2") == 0);
    CHECK(strcmp(c.cluster_id, "triad") == 0);
    char *alone[] = {"server", "--node-id", "2"};
    CHECK_EQ_INT(config_load(&c, 3, alone, err, sizeof(err)), -1);
    CHECK(strcmp(err, "--node-id and --peers go together (a cluster needs both)") == 0);
    char *missing[] = {"server", "--node-id", "3", "--peers", "1=127.0.0.1:7380,2=127.0.0.1:7381"};
    CHECK_EQ_INT(config_load(&c, 5, missing, err, sizeof(err)), -1);
    CHECK(strcmp(err, "--peers does not list this node's id 3") == 0);
    char *bad[] = {"server", "--node-id", "1", "--peers", "1=127.0.0.1"};
    CHECK_EQ_INT(config_load(&c, 5, bad, err, sizeof(err)), -1);
    CHECK(strcmp(err, "--peers 1=127.0.0.1: bad address '127.0.0.1' for node 1 (host:port)") == 0);
}

TEST(config_leaderless_settings_have_the_documented_defaults)
{
    struct config c;
    char err[256];
    char *argv[] = {"server"};
    CHECK_EQ_INT(config_load(&c, 1, argv, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.mode, CONFIG_MODE_LEADER);
    CHECK_EQ_INT(c.replicas, 3);
    CHECK_EQ_INT(c.read_quorum, 2);
    CHECK_EQ_INT(c.write_quorum, 2);
    CHECK_EQ_INT(c.vnodes, 64);
    CHECK_EQ_INT(c.sloppy_quorum, 1);
    CHECK_EQ_INT(c.anti_entropy_interval_ms, 10000);
    CHECK_EQ_INT(c.hints_max, 1000000);
    CHECK_EQ_INT(c.tombstone_grace_ms, 864000000ll);
    CHECK_EQ_INT(c.gossip_interval_ms, 1000);
    CHECK_EQ_INT(c.phi_convict_threshold, 8);
    CHECK_EQ_INT(c.request_timeout_ms, 2000);
}

TEST(config_leaderless_mode_takes_its_settings_and_checks_r_and_w_against_n)
{
    struct config c;
    char err[256];
    char *ok[] = {"server", "--mode", "leaderless", "--node-id", "2", "--peers",
                  "1=127.0.0.1:7380,2=127.0.0.1:7381", "--replicas", "5", "--read-quorum", "1",
                  "--write-quorum", "5", "--sloppy-quorum", "no", "--tombstone-grace-ms",
                  "5000000000", "--anti-entropy-interval-ms", "0", "--vnodes", "1024"};
    CHECK_EQ_INT(config_load(&c, 21, ok, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.mode, CONFIG_MODE_LEADERLESS);
    CHECK_EQ_INT(c.replicas, 5);
    CHECK_EQ_INT(c.read_quorum, 1);
    CHECK_EQ_INT(c.write_quorum, 5);
    CHECK_EQ_INT(c.sloppy_quorum, 0);
    CHECK(c.tombstone_grace_ms == 5000000000ll); /* past an int */
    CHECK_EQ_INT(c.anti_entropy_interval_ms, 0);
    CHECK_EQ_INT(c.vnodes, 1024);

    char *no_node[] = {"server", "--mode", "leaderless"};
    CHECK_EQ_INT(config_load(&c, 3, no_node, err, sizeof(err)), -1);
    CHECK(strcmp(err, "--mode leaderless needs --node-id and --peers (this node's own peer "
                      "address and the gossip seeds)") == 0);
    char *r_over[] = {"server", "--mode", "leaderless", "--node-id", "1", "--peers",
                      "1=127.0.0.1:7380", "--read-quorum", "4"};
    CHECK_EQ_INT(config_load(&c, 9, r_over, err, sizeof(err)), -1);
    CHECK(strcmp(err, "--read-quorum 4 and --write-quorum 2 must each be between 1 and "
                      "--replicas 3") == 0);
    char *w_over[] = {"server", "--mode", "leaderless", "--node-id", "1", "--peers",
                      "1=127.0.0.1:7380", "--replicas", "1", "--read-quorum", "1"};
    CHECK_EQ_INT(config_load(&c, 11, w_over, err, sizeof(err)), -1);
    CHECK(strstr(err, "--write-quorum 2") != NULL);
    /* N is at most DYN_N_MAX (7); R and W at least 1; a mode is one of two */
    char *n8[] = {"server", "--replicas", "8"};
    CHECK_EQ_INT(config_load(&c, 3, n8, err, sizeof(err)), -1);
    CHECK(strstr(err, "between 1 and 7") != NULL);
    char *n7[] = {"server", "--replicas", "7"};
    CHECK_EQ_INT(config_load(&c, 3, n7, err, sizeof(err)), 0);
    char *w0[] = {"server", "--write-quorum", "0"};
    CHECK_EQ_INT(config_load(&c, 3, w0, err, sizeof(err)), -1);
    char *mode[] = {"server", "--mode", "masterless"};
    CHECK_EQ_INT(config_load(&c, 3, mode, err, sizeof(err)), -1);
    CHECK(strstr(err, "leader, leaderless") != NULL);
    /* leader mode ignores R and W: no check against N there */
    char *leader[] = {"server", "--read-quorum", "7", "--replicas", "3"};
    CHECK_EQ_INT(config_load(&c, 5, leader, err, sizeof(err)), 0);
}

TEST(config_parses_memory_sizes_as_redis_does)
{
    long long v;
    CHECK(config_parse_memory("100", &v) && v == 100);
    CHECK(config_parse_memory("1k", &v) && v == 1000);
    CHECK(config_parse_memory("1kb", &v) && v == 1024);
    CHECK(config_parse_memory("2MB", &v) && v == 2 * 1024 * 1024);
    CHECK(config_parse_memory("1gb", &v) && v == 1024ll * 1024 * 1024);
    CHECK(!config_parse_memory("", &v));
    CHECK(!config_parse_memory("12xb", &v));
    CHECK(!config_parse_memory("-5", &v));
    /* whole numbers only, as Redis's memtoull */
    CHECK(!config_parse_memory("1.5gb", &v));
    CHECK(!config_parse_memory("1e3", &v));
    CHECK(!config_parse_memory("+5", &v));
    CHECK(!config_parse_memory(" 5", &v));
    CHECK(!config_parse_memory("gb", &v));
    CHECK(config_parse_memory("9223372036854775807", &v) && v == LLONG_MAX);
    CHECK(!config_parse_memory("9223372036854775808", &v));
    CHECK(!config_parse_memory("9223372036854775807k", &v));
    CHECK(config_parse_memory("0", &v) && v == 0);
}

TEST(config_flags_override_the_file)
{
    char path[] = "/tmp/triad-config-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    const char *text = "# a comment\nport 7400\nrequirepass \"with space\"\nfsync everysec\n\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    struct config c;
    char err[256];
    char *argv[] = {"server", path, "--port", "7401", "--maxmemory=10mb"};
    CHECK_EQ_INT(config_load(&c, 5, argv, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.port, 7401);
    CHECK(strcmp(c.requirepass, "with space") == 0);
    CHECK_EQ_INT(c.fsync, CONFIG_FSYNC_EVERYSEC);
    CHECK_EQ_INT(c.maxmemory, 10 * 1024 * 1024);
    unlink(path);
}

TEST(config_rejects_unknown_settings_and_bad_values)
{
    struct config c;
    char err[256];
    char *a1[] = {"server", "--nope", "1"};
    CHECK_EQ_INT(config_load(&c, 3, a1, err, sizeof(err)), -1);
    CHECK(strstr(err, "unknown setting --nope") != NULL);
    char *a2[] = {"server", "--port", "99999"};
    CHECK_EQ_INT(config_load(&c, 3, a2, err, sizeof(err)), -1);
    char *a3[] = {"server", "--fsync", "sometimes"};
    CHECK_EQ_INT(config_load(&c, 3, a3, err, sizeof(err)), -1);
    CHECK(strstr(err, "always, everysec, no") != NULL);
    char *a4[] = {"server", "--port"};
    CHECK_EQ_INT(config_load(&c, 2, a4, err, sizeof(err)), -1);
    char *a5[] = {"server", "/nonexistent/triad.conf"};
    CHECK_EQ_INT(config_load(&c, 2, a5, err, sizeof(err)), -1);
}

struct collect {
    char names[64][64];
    int n;
};

static void collect_emit(void *e, const char *name, const char *value)
{
    struct collect *c = e;
    (void)value;
    if (c->n < 64)
        snprintf(c->names[c->n++], 64, "%s", name);
}

TEST(config_get_matches_glob_patterns)
{
    struct config c;
    char err[256];
    char *argv[] = {"server"};
    config_load(&c, 1, argv, err, sizeof(err));
    struct collect col = {0};
    config_get(&c, "max*", collect_emit, &col); /* maxmemory, -policy, maxclients */
    CHECK_EQ_INT(col.n, 3);
    col.n = 0;
    config_get(&c, "PORT", collect_emit, &col);
    CHECK_EQ_INT(col.n, 1);
    col.n = 0;
    config_get(&c, "*", collect_emit, &col);
    CHECK(col.n >= 18);
}

TEST(config_set_changes_runtime_settings_only)
{
    struct config c;
    char err[256];
    char *argv[] = {"server"};
    config_load(&c, 1, argv, err, sizeof(err));
    CHECK_EQ_INT(config_set(&c, "maxmemory", "1mb", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.maxmemory, 1024 * 1024);
    CHECK_EQ_INT(config_set(&c, "maxmemory", "1.5gb", err, sizeof(err)), -1);
    CHECK_EQ_INT(c.maxmemory, 1024 * 1024);
    /* hz: any count taken, the nearest of 1..500 used, as Redis does */
    CHECK_EQ_INT(config_set(&c, "hz", "0", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.hz, 1);
    CHECK_EQ_INT(config_set(&c, "hz", "1000", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.hz, 500);
    CHECK_EQ_INT(config_set(&c, "hz", "50", err, sizeof(err)), 0);
    CHECK_EQ_INT(c.hz, 50);
    CHECK_EQ_INT(config_set(&c, "hz", "-1", err, sizeof(err)), -1);
    CHECK_EQ_INT(c.hz, 50);
    CHECK_EQ_INT(config_set(&c, "port", "1234", err, sizeof(err)), -1);
    CHECK(strcmp(err, "CONFIG SET failed (possibly related to argument 'port') - can't set "
                      "immutable config") == 0);
    CHECK_EQ_INT(config_set(&c, "foo", "1", err, sizeof(err)), -1);
    CHECK(strcmp(err, "Unknown option or number of arguments for CONFIG SET - 'foo'") == 0);
    CHECK_EQ_INT(config_set(&c, "maxmemory", "lots", err, sizeof(err)), -1);
    CHECK(strcmp(err, "CONFIG SET failed (possibly related to argument 'maxmemory') - argument "
                      "must be a memory value") == 0);
    CHECK_EQ_INT(c.maxmemory, 1024 * 1024);
}

TEST(config_glob_handles_classes_ranges_and_escapes)
{
    CHECK(config_glob_match("h?llo", "hello", false));
    CHECK(config_glob_match("h*llo", "heeeello", false));
    CHECK(config_glob_match("h[ae]llo", "hallo", false));
    CHECK(!config_glob_match("h[^e]llo", "hello", false));
    CHECK(config_glob_match("h[a-b]llo", "hbllo", false));
    CHECK(config_glob_match("h\\*llo", "h*llo", false));
    CHECK(!config_glob_match("h\\*llo", "hello", false));
    CHECK(config_glob_match("*", "", false));
    CHECK(!config_glob_match("a*b*c*d*e*f*g*h*i*j*z", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false));
    CHECK(config_glob_match("MAX*", "maxmemory", true));
}

TEST(config_reports_fixed_values_that_cannot_be_set)
{
    struct config c;
    char err[256];
    char *argv[] = {"server"};
    config_load(&c, 1, argv, err, sizeof(err));
    struct collect col = {0};
    config_get(&c, "appendonly", collect_emit, &col);
    CHECK_EQ_INT(col.n, 1);
    CHECK_EQ_INT(config_set(&c, "save", "", err, sizeof(err)), -1);
    char *a1[] = {"server", "--save", ""};
    CHECK_EQ_INT(config_load(&c, 3, a1, err, sizeof(err)), -1);
}

int main(void)
{
    RUN(config_defaults_match_the_documented_ones);
    RUN(config_raft_snapshot_settings_keep_to_their_ranges);
    RUN(config_leaderless_settings_have_the_documented_defaults);
    RUN(config_leaderless_mode_takes_its_settings_and_checks_r_and_w_against_n);
    RUN(config_parses_memory_sizes_as_redis_does);
    RUN(config_parses_peers);
    RUN(config_refuses_bad_peers_with_the_reason);
    RUN(config_cluster_needs_node_id_and_peers_together);
    RUN(config_flags_override_the_file);
    RUN(config_rejects_unknown_settings_and_bad_values);
    RUN(config_get_matches_glob_patterns);
    RUN(config_set_changes_runtime_settings_only);
    RUN(config_glob_handles_classes_ranges_and_escapes);
    RUN(config_reports_fixed_values_that_cannot_be_set);
    return test_summary("config");
}
