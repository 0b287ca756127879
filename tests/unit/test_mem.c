/* Unit tests for mem's I/O buffers (tmem_io_alloc): aligned, whole units,
 * zeros, counted in tmem_used, and absent from a forked child. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
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

int main(void)
{
    RUN(tmem_io_alloc_gives_aligned_whole_units_of_zeros_and_counts_them);
    RUN(tmem_io_buffers_are_not_mapped_in_a_forked_child);
    return test_summary("mem");
}
