/* syncgate.c - an LD_PRELOAD shim for the durability tests.
 *
 * While the file $TRIAD_TEST_SYNC_GATE/closed exists, every fdatasync()
 * waits before doing its work, so a test can hold a server's log "written
 * but not yet durable" for as long as it needs and check that no reply
 * leaves meanwhile. The wait is bounded (SYNCGATE_WAIT_MS_MAX) so a
 * forgotten gate cannot hang a test run.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SYNCGATE_WAIT_MS_MAX 60000

int fdatasync(int fd)
{
    static int (*real_fdatasync)(int);
    if (real_fdatasync == NULL)
        real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    const char *gate = getenv("TRIAD_TEST_SYNC_GATE");
    if (gate != NULL) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof(path), "%s/closed", gate);
        for (int waited_ms = 0; waited_ms < SYNCGATE_WAIT_MS_MAX && stat(path, &st) == 0;
             waited_ms++) {
            struct timespec ms = {0, 1000 * 1000};
            nanosleep(&ms, NULL);
        }
    }
    return real_fdatasync(fd);
}
