/* server.h - `triad server`: the libuv event loop, client sessions, the
 * fsync thread, snapshots and configuration. */
#ifndef TRIAD_SERVER_H
#define TRIAD_SERVER_H

/* argv[0] is "server"; returns the process exit code. */
int server_main(int argc, char **argv);

#endif
