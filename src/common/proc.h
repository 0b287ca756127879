/* proc.h - a forked child that does one job for the server and nothing
 * else (a snapshot).
 *
 * A child forked from the server inherits its signal handlers, which write
 * to the parent's event loop (libuv's signal pipe): a SIGTERM sent to the
 * child alone would stop the server. It inherits every descriptor too: a
 * client or peer socket the parent closes would send no FIN, and the data
 * directory's lock would stay held, until the child exits. And it must
 * not outlive the server: it would hold the data directory and ports a
 * restarted server needs.
 */
#ifndef TRIAD_PROC_H
#define TRIAD_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* fork(), with SIGTERM and SIGINT blocked across it. In the child (0
 * returned) they are back at their default action (death), every
 * descriptor but 0-2 and keep (-1: none) is closed, the child dies with
 * the parent (PR_SET_PDEATHSIG) and runs at the lowest priority; a child
 * whose parent is already gone _exits. In the parent, as fork(). */
pid_t proc_fork(int keep);

/* Reap child pid (waitpid, again on EINTR), killing it first (SIGKILL)
 * if kill_first; its wait status goes to *status if not NULL. */
void proc_reap(pid_t pid, bool kill_first, int *status);

/* Reap child pid if it has exited, without waiting: true if it has, or is
 * no child of ours (any more); false while it lives. */
bool proc_reap_try(pid_t pid);

#endif
