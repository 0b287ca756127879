/* triad.c - the one binary: `triad server | demo | cli | sim | version`. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "net/demo.h"
#include "net/server.h"
#include "../sim/sim.h"

#define TRIAD_VERSION "0.1.0"

static void usage(FILE *f)
{
    fprintf(f,
            "Triad %s - a replicated key-value store that speaks the Redis protocol\n"
            "\n"
            "Usage: triad <command> [options]\n"
            "\n"
            "  server [config-file] [--name value ...]   run a node (triad server --help)\n"
            "  demo [--port BASE] [--mode M]             a local three-node cluster, leader or\n"
            "                                            leaderless mode (Ctrl-C stops it)\n"
            "  cli [-h host] [-p port] [cmd args ...]    talk to a node (triad cli --help)\n"
            "  sim [--seed N] [--seeds COUNT] ...        the deterministic simulator (triad sim --help)\n"
            "  lincheck FILE [--steps N]                 check a history (JSON lines) for linearizability\n"
            "  version                                   print the version\n",
            TRIAD_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "server") == 0)
        return server_main(argc - 1, argv + 1);
    if (strcmp(sub, "cli") == 0)
        return cli_main(argc - 1, argv + 1);
    if (strcmp(sub, "demo") == 0)
        return demo_main(argc - 1, argv + 1);
    if (strcmp(sub, "sim") == 0)
        return sim_main(argc - 1, argv + 1);
    if (strcmp(sub, "lincheck") == 0)
        return lin_main(argc - 1, argv + 1);
    if (strcmp(sub, "version") == 0 || strcmp(sub, "--version") == 0 || strcmp(sub, "-v") == 0) {
        printf("triad %s\n", TRIAD_VERSION);
        return 0;
    }
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "triad: unknown command '%s'\n\n", sub);
    usage(stderr);
    return 2;
}
