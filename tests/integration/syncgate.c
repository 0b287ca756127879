/* syncgate.c - an LD_PRELOAD shim for the durability tests.
 *
 * While the file $TRIAD_TEST_SYNC_GATE/closed exists, every fdatasync()
 * waits before doing its work, so a test can hold a server's log "written
 * but not yet durable" for as long as it needs and check that no reply
 * leaves meanwhile.
 *
 * Likewise, while $TRIAD_TEST_UNLINK_GATE/closed exists, every unlink()
 * waits, having first created $TRIAD_TEST_UNLINK_GATE/held: a test can
 * hold the deletion of the files a snapshot made obsolete and check that
 * clients are served meanwhile.
 *
 * And while $TRIAD_TEST_FORK_GATE/closed exists, a child process fork()
 * made waits before it returns to the program, having first created
 * $TRIAD_TEST_FORK_GATE/held: a test can hold a snapshot being taken in a
 * forked child and check that the parent serves meanwhile.
 *
 * And while $TRIAD_TEST_KILL_GATE/closed exists, a SIGKILL the program
 * sends is not sent: the target's pid is written to
 * $TRIAD_TEST_KILL_GATE/held instead and kill() returns 0, as if it had
 * been. A test can stand in for a child that dies only long after it is
 * killed (in an I/O that cannot be interrupted) and kill it itself later.
 *
 * Each wait is bounded (SYNCGATE_WAIT_MS_MAX) so a forgotten gate cannot
 * hang a test run.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/types.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SYNCGATE_WAIT_MS_MAX 60000

/* Waits while the gate named by the environment variable is closed; when
 * it holds a call, first creates the gate's "held" file. */
static void syncgate_wait(const char *env)
{
    const char *gate = getenv(env);
    if (gate == NULL)
        return;
    char path[4096];
    struct stat st;
    snprintf(path, sizeof(path), "%s/closed", gate);
    if (stat(path, &st) != 0)
        return;
    char held[4096];
    snprintf(held, sizeof(held), "%s/held", gate);
    int fd = open(held, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0)
        close(fd);
    for (int waited_ms = 0; waited_ms < SYNCGATE_WAIT_MS_MAX && stat(path, &st) == 0;
         waited_ms++) {
        struct timespec ms = {0, 1000 * 1000};
        nanosleep(&ms, NULL);
    }
}

int fdatasync(int fd)
{
    static int (*real_fdatasync)(int);
    if (real_fdatasync == NULL)
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    syncgate_wait("TRIAD_TEST_SYNC_GATE");
    return real_fdatasync(fd);
}

int unlink(const char *pathname)
{
    static int (*real_unlink)(const char *);
    if (real_unlink == NULL)
        real_unlink = (int (*)(const char *))dlsym(RTLD_NEXT, "unlink");
    syncgate_wait("TRIAD_TEST_UNLINK_GATE");
    return real_unlink(pathname);
}

pid_t fork(void)
{
    static pid_t (*real_fork)(void);
    if (real_fork == NULL)
        real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
    pid_t pid = real_fork();
    if (pid == 0)
        syncgate_wait("TRIAD_TEST_FORK_GATE");
    return pid;
}

int kill(pid_t pid, int sig)
{
    static int (*real_kill)(pid_t, int);
    if (real_kill == NULL)
        real_kill = (int (*)(pid_t, int))dlsym(RTLD_NEXT, "kill");
    const char *gate = getenv("TRIAD_TEST_KILL_GATE");
    char path[4096];
    struct stat st;
    if (sig != SIGKILL || gate == NULL ||
        (snprintf(path, sizeof(path), "%s/closed", gate), stat(path, &st) != 0))
        return real_kill(pid, sig);
    snprintf(path, sizeof(path), "%s/held", gate);
    FILE *f = fopen(path, "a");
    if (f != NULL) {
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    return 0;
}
