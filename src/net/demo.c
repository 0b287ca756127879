/* demo.c - `triad demo`: a local three-node cluster in the foreground,
 * leader mode or (--mode leaderless) leaderless mode, for trying Triad out
 * (and what `make run` starts).
 *
 * Each node is a `triad server` child process of this one, on 127.0.0.1:
 * clients at ports base, base+1, base+2, peers at base+10.., data in
 * ./data/node<N>. Ctrl-C (or SIGTERM) stops them all and waits for them. A
 * node killed by hand is reported and the others go on (that is the
 * point: watch a new leader take over, or, leaderless, the other two
 * keep taking writes and hand them over when it is back).
 */
#include "demo.h"

#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEMO_NODES 3
#define DEMO_PEER_OFFSET 10

static volatile sig_atomic_t demo_stop;

static void demo_on_signal(int sig)
{
    (void)sig;
    demo_stop = 1;
}

static void demo_usage(FILE *f)
{
    fprintf(f, "Usage: triad demo [--port BASE] [--mode leader|leaderless]\n"
               "  Starts three nodes on 127.0.0.1: clients on BASE, BASE+1, BASE+2 (default\n"
               "  7379), peers on BASE+10.., data in ./data/node1..3 (leader mode) or\n"
               "  ./data/ll-node1..3 (leaderless mode). Ctrl-C stops them.\n");
}

int demo_main(int argc, char **argv)
{
    int base = 7379;
    bool leaderless = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            base = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            const char *m = argv[++i];
            if (strcmp(m, "leaderless") == 0) {
                leaderless = true;
            } else if (strcmp(m, "leader") != 0) {
                fprintf(stderr, "triad demo: --mode is leader or leaderless, not '%s'\n", m);
                return 2;
            }
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            demo_usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "triad demo: unknown option '%s'\n", argv[i]);
            demo_usage(stderr);
            return 2;
        }
    }
    if (base < 1 || base + DEMO_PEER_OFFSET + DEMO_NODES > 65535) {
        fprintf(stderr, "triad demo: bad base port %d\n", base);
        return 2;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
        fprintf(stderr, "triad demo: can't find my own binary: %s\n", strerror(errno));
        return 1;
    }
    self[n] = '\0';

    char peers[256];
    size_t off = 0;
    for (int i = 0; i < DEMO_NODES; i++)
        off += (size_t)snprintf(peers + off, sizeof(peers) - off, "%s%d=127.0.0.1:%d",
                                i ? "," : "", i + 1, base + DEMO_PEER_OFFSET + i);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = demo_on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    pid_t pids[DEMO_NODES];
    for (int i = 0; i < DEMO_NODES; i++) {
        char id[16], port[16], dir[64];
        snprintf(id, sizeof(id), "%d", i + 1);
        snprintf(port, sizeof(port), "%d", base + i);
        /* the two modes' data directories are not interchangeable */
        snprintf(dir, sizeof(dir), leaderless ? "./data/ll-node%d" : "./data/node%d", i + 1);
        pids[i] = fork();
        if (pids[i] < 0) {
            fprintf(stderr, "triad demo: fork: %s\n", strerror(errno));
            demo_stop = 1;
            break;
        }
        if (pids[i] == 0) {
            /* the node handles SIGINT itself (a clean shutdown) */
            signal(SIGINT, SIG_DFL);
            signal(SIGTERM, SIG_DFL);
            execl(self, self, "server", "--node-id", id, "--peers", peers, "--port", port, "--dir",
                  dir, "--mode", leaderless ? "leaderless" : "leader", (char *)NULL);
            fprintf(stderr, "triad demo: exec %s: %s\n", self, strerror(errno));
            _exit(127);
        }
    }
    if (!demo_stop && leaderless) {
        printf("Triad demo: three leaderless nodes (N=3, R=2, W=2) on 127.0.0.1, ports %d, %d "
               "and %d.\n"
               "  redis-cli -p %d SET greeting hello\n"
               "  redis-cli -p %d GET greeting          any node coordinates any key\n"
               "  redis-cli -p %d INFO leaderless       ring, hints, anti-entropy, peers\n"
               "  redis-cli -p %d TRIAD.GETALL greeting  siblings and their context\n"
               "Kill one node (kill -9): writes go on at W=2, and read repair and anti-entropy\n"
               "bring it up to date when it is back. Ctrl-C stops them all.\n",
               base, base + 1, base + 2, base, base + 1, base + 2, base);
        fflush(stdout);
    } else if (!demo_stop) {
        printf("Triad demo: a three-node cluster (leader mode) on 127.0.0.1, ports %d, %d and %d.\n"
               "  redis-cli -p %d INFO replication     who leads (triad_raft_role)\n"
               "  redis-cli -p %d SET greeting hello\n"
               "  build/triad cli -p %d                 interactive\n"
               "Any node serves any client (followers forward to the leader).\n"
               "Kill one node (kill -9) and watch another take over. Ctrl-C stops them all.\n",
               base, base + 1, base + 2, base, base + 1, base);
        fflush(stdout);
    }
    int alive = DEMO_NODES;
    bool signalled = false;
    while (alive > 0) {
        if (demo_stop && !signalled) {
            signalled = true;
            for (int i = 0; i < DEMO_NODES; i++)
                if (pids[i] > 0)
                    kill(pids[i], SIGTERM);
        }
        int status;
        pid_t p = waitpid(-1, &status, 0);
        if (p < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        for (int i = 0; i < DEMO_NODES; i++) {
            if (pids[i] != p)
                continue;
            pids[i] = 0;
            alive--;
            if (!demo_stop)
                fprintf(stderr, "triad demo: node %d (port %d) exited (%s %d); the others go on\n",
                        i + 1, base + i, WIFSIGNALED(status) ? "signal" : "status",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        }
    }
    return 0;
}
