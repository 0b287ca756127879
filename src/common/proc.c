#include "proc.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* Close descriptors lo..hi (hi >= lo). */
static void proc__close_from(unsigned lo, unsigned hi)
{
    if (close_range(lo, hi, 0) == 0)
        return;
    /* a kernel before 5.9: one by one, as far as the limit goes */
    long max = sysconf(_SC_OPEN_MAX);
    unsigned top = max > 0 && (unsigned long)max - 1 < hi ? (unsigned)max - 1 : hi;
    for (unsigned fd = lo; fd <= top && fd <= INT_MAX; fd++)
        close((int)fd);
}

pid_t proc_fork(int keep)
{
    sigset_t stop, old;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, &old);
    fflush(NULL);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        int saved = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        errno = saved;
        return pid;
    }
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(1);
    /* background work yields to the server it is a copy of */
    setpriority(PRIO_PROCESS, 0, 19);
    if (keep < 3) {
        proc__close_from(3, ~0u);
    } else {
        if (keep > 3)
            proc__close_from(3, (unsigned)keep - 1);
        proc__close_from((unsigned)keep + 1, ~0u);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

void proc_reap(pid_t pid, bool kill_first, int *status)
{
    if (kill_first)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    if (status != NULL)
        *status = st;
}

bool proc_reap_try(pid_t pid)
{
    pid_t r;
    while ((r = waitpid(pid, NULL, WNOHANG)) < 0 && errno == EINTR) {
    }
    return r != 0;
}
