/* Unit tests for mem's I/O buffers (tmem_io_alloc): aligned, whole units,
 * zeros, counted in tmem_used, and absent from a forked child. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../src/common/mem.h"
#include "test.h"

static bool all_zero(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i += 4096)
        if (p[i] != 0 || p[len - 1 - i] != 0)
            return false;
    return true;
}

TEST(tmem_io_alloc_gives_aligned_whole_units_of_zeros_and_counts_them)
{
    static const struct {
        size_t len, cap;
    } cases[] = {
        {0, TMEM_IO_ALIGN},
        {1, TMEM_IO_ALIGN},
        {4096, TMEM_IO_ALIGN},
        {TMEM_IO_ALIGN, TMEM_IO_ALIGN},
        {TMEM_IO_ALIGN + 1, 2 * TMEM_IO_ALIGN},
        {3 * TMEM_IO_ALIGN - 4096, 3 * TMEM_IO_ALIGN},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t before = tmem_used(), cap = 0;
        unsigned char *p = tmem_io_alloc(cases[i].len, &cap);
        CHECK(p != NULL);
        CHECK_EQ_INT((uintptr_t)p % TMEM_IO_ALIGN, 0);
        CHECK_EQ_INT(cap, cases[i].cap);
        CHECK_EQ_INT(tmem_used(), before + cap);
        CHECK(all_zero(p, cap));
        memset(p, 0xA5, cap); /* all of it is ours to write */
        CHECK_EQ_INT(p[cap - 1], 0xA5);
        tmem_io_free(p, cap);
        CHECK_EQ_INT(tmem_used(), before);
    }
    tmem_io_free(NULL, 0); /* like free(NULL) */
}

/* MADV_DONTFORK: a snapshot child has no mapping there, so the parent's
 * writes to the buffer while the child lives copy no pages. */
TEST(tmem_io_buffers_are_not_mapped_in_a_forked_child)
{
    size_t cap;
    unsigned char *p = tmem_io_alloc(1, &cap);
    p[0] = 1;
    CHECK_EQ_INT(msync(p, cap, MS_ASYNC), 0);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* msync on an unmapped range fails with ENOMEM */
        int rc = msync(p, cap, MS_ASYNC);
        _exit(rc == -1 && errno == ENOMEM ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ_INT(WEXITSTATUS(status), 0);
    CHECK_EQ_INT(p[0], 1);
    tmem_io_free(p, cap);
}

/* The AnonHugePages of the mapping that starts at p, from smaps; -1 if
 * there is no such mapping. */
static long anon_huge_kb(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL)
        return -1;
    char line[512];
    bool in = false;
    long kb = -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
            in = lo == (unsigned long)(uintptr_t)p;
            continue;
        }
        if (in && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    }
    fclose(f);
    return kb;
}

/* tmem_io_huge keeps what the buffer holds, and says true only if the
 * kernel shows the whole mapping in huge pages. (Whether it can be true
 * depends on the kernel: both answers are legitimate.) */
TEST(tmem_io_huge_keeps_the_bytes_and_tells_the_truth)
{
    size_t cap;
    unsigned char *p = tmem_io_alloc(TMEM_IO_ALIGN + 1, &cap);
    for (size_t i = 0; i < cap; i += 4096)
        p[i] = (unsigned char)(i / 4096 + 1);
    bool huge = tmem_io_huge(p, cap);
    int bad = 0;
    for (size_t i = 0; i < cap; i += 4096)
        if (p[i] != (unsigned char)(i / 4096 + 1))
            bad++;
    CHECK_EQ_INT(bad, 0);
    if (huge)
        CHECK_EQ_INT(anon_huge_kb(p), (long)(cap / 1024));
    else
        fprintf(stderr, "  note: no huge pages for I/O buffers here\n");
    tmem_io_free(p, cap);
}

int main(void)
{
    RUN(tmem_io_alloc_gives_aligned_whole_units_of_zeros_and_counts_them);
    RUN(tmem_io_buffers_are_not_mapped_in_a_forked_child);
    RUN(tmem_io_huge_keeps_the_bytes_and_tells_the_truth);
    return test_summary("mem");
}
