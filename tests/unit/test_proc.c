/* Unit tests for proc_fork: the child it makes keeps none of the parent's
 * descriptors but the one named, takes SIGTERM and SIGINT at their
 * default action, runs at the lowest priority; the parent keeps its own
 * handlers and mask. And proc_reap, proc_reap_try. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/common/proc.h"
#include "test.h"

static volatile sig_atomic_t got_term;
static void on_term(int sig)
{
    (void)sig;
    got_term = 1;
}

/* What the child found, sent through the kept pipe. */
struct report {
    int other_fd_open; /* an fd the parent had open before the fork */
    int keep_open;
    int term_default, int_default;
    int term_blocked;
    int nice;
};

TEST(proc_fork_child_keeps_one_descriptor_and_default_stop_signals)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    CHECK_EQ_INT(sigaction(SIGTERM, &sa, NULL), 0);
    int other = open("/dev/null", O_RDONLY);
    CHECK(other >= 3);
    int fds[2];
    CHECK_EQ_INT(pipe(fds), 0);
    pid_t pid = proc_fork(fds[1]);
    CHECK(pid >= 0);
    if (pid == 0) {
        struct report r;
        memset(&r, 0, sizeof(r));
        r.other_fd_open = fcntl(other, F_GETFD) != -1;
        r.keep_open = fcntl(fds[1], F_GETFD) != -1;
        struct sigaction cur;
        sigaction(SIGTERM, NULL, &cur);
        r.term_default = cur.sa_handler == SIG_DFL;
        sigaction(SIGINT, NULL, &cur);
        r.int_default = cur.sa_handler == SIG_DFL;
        sigset_t mask;
        pthread_sigmask(SIG_SETMASK, NULL, &mask);
        r.term_blocked = sigismember(&mask, SIGTERM);
        r.nice = getpriority(PRIO_PROCESS, 0);
        _exit(write(fds[1], &r, sizeof(r)) == (ssize_t)sizeof(r) ? 0 : 1);
    }
    close(fds[1]);
    struct report r;
    memset(&r, 0xff, sizeof(r));
    CHECK_EQ_INT(read(fds[0], &r, sizeof(r)), (long)sizeof(r));
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT(r.other_fd_open, 0);
    CHECK_EQ_INT(r.keep_open, 1);
    CHECK_EQ_INT(r.term_default, 1);
    CHECK_EQ_INT(r.int_default, 1);
    CHECK_EQ_INT(r.term_blocked, 0);
    CHECK_EQ_INT(r.nice, 19);
    /* the parent: its handler and mask as before, its fds open */
    struct sigaction cur;
    sigaction(SIGTERM, NULL, &cur);
    CHECK(cur.sa_handler == on_term);
    sigset_t mask;
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    CHECK_EQ_INT(sigismember(&mask, SIGTERM), 0);
    CHECK(fcntl(other, F_GETFD) != -1);
    raise(SIGTERM);
    CHECK_EQ_INT(got_term, 1);
    close(fds[0]);
    close(other);
    signal(SIGTERM, SIG_DFL);
}

TEST(proc_fork_child_without_a_kept_descriptor_keeps_only_0_to_2)
{
    int fds[2];
    CHECK_EQ_INT(pipe(fds), 0);
    pid_t pid = proc_fork(-1);
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(fcntl(fds[0], F_GETFD) == -1 && fcntl(fds[1], F_GETFD) == -1 &&
                      fcntl(2, F_GETFD) != -1
                  ? 0
                  : 1);
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(fds[0]);
    close(fds[1]);
}

TEST(proc_reap_kills_and_reaps_or_just_reaps)
{
    pid_t pid = proc_fork(-1);
    CHECK(pid >= 0);
    if (pid == 0) {
        pause();
        _exit(0);
    }
    int status = 0;
    proc_reap(pid, true, &status);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK_EQ_INT(waitpid(pid, NULL, WNOHANG), -1); /* reaped: no such child */
    pid = proc_fork(-1);
    CHECK(pid >= 0);
    if (pid == 0)
        _exit(7);
    proc_reap(pid, false, &status);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 7);
}

TEST(proc_reap_try_reaps_only_a_child_that_has_exited)
{
    int fds[2];
    CHECK_EQ_INT(pipe(fds), 0);
    pid_t pid = proc_fork(fds[0]);
    CHECK(pid >= 0);
    if (pid == 0) {
        char c;
        _exit(read(fds[0], &c, 1) == 1 ? 0 : 1); /* lives until told */
    }
    close(fds[0]);
    CHECK(!proc_reap_try(pid)); /* alive: not waited for */
    CHECK(!proc_reap_try(pid));
    CHECK_EQ_INT(kill(pid, 0), 0);
    CHECK_EQ_INT(write(fds[1], "x", 1), 1);
    /* once it has exited, a try reaps it; a child of ours no more, any
     * later try says so at once */
    int tries = 0;
    while (!proc_reap_try(pid)) {
        CHECK(++tries < 10000);
        usleep(1000);
    }
    CHECK_EQ_INT(waitpid(pid, NULL, WNOHANG), -1);
    CHECK(proc_reap_try(pid));
    close(fds[1]);
}

int main(void)
{
    RUN(proc_fork_child_keeps_one_descriptor_and_default_stop_signals);
    RUN(proc_fork_child_without_a_kept_descriptor_keeps_only_0_to_2);
    RUN(proc_reap_kills_and_reaps_or_just_reaps);
    RUN(proc_reap_try_reaps_only_a_child_that_has_exited);
    return test_summary("proc");
}
