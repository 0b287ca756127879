/* cli.h - `triad cli`: an interactive and one-shot Redis client. */
#ifndef TRIAD_CLI_H
#define TRIAD_CLI_H

/* argv[0] is "cli"; returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
