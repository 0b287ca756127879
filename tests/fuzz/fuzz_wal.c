/* fuzz_wal.c - libFuzzer harness for WAL recovery.
 *
 * Each input becomes a segment file in a private temp dir: behind a valid
 * header (to reach the record parser), the same followed by zeros (as a
 * zero-prefilled segment ends, to reach the clean-end and torn-then-zeros
 * paths), and as the whole file (to reach the header checks). wal_open
 * must never crash, and when it accepts the log, the log must stay usable:
 * one more record appended, written and synced must be there, with the
 * next lsn, after a reopen, and the log's logical bytes never exceed its
 * files' sizes.
 *
 *   clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -pthread \
 *     -o build-fuzz/fuzz_wal tests/fuzz/fuzz_wal.c src/store/wal.c src/store/fs.c \
 *     src/common/\*.c
 *   build-fuzz/fuzz_wal -max_total_time=60 tests/fuzz/corpus_wal
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/store/fs.h"
#include "../../src/store/wal.h"

static char fuzz_dir[64];

static int fuzz_replay(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len)
{
    uint64_t *last = arg;
    /* Touch every byte so ASan sees any read past the mapping. */
    volatile unsigned char sink = type;
    for (size_t i = 0; i < len; i++)
        sink ^= ((const unsigned char *)body)[i];
    (void)sink;
    TRIAD_ASSERT(lsn > *last);
    *last = lsn;
    return 0;
}

static void fuzz_clean(void)
{
    DIR *d = opendir(fuzz_dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", fuzz_dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

/* Zeros after the input in the prefill variant: more than a block of the
 * recovery's zero scan, less than a segment here. */
#define FUZZ_ZERO_TAIL_BYTES 5000

static void fuzz_one(const unsigned char *head, size_t head_len, const uint8_t *data,
                     size_t size, size_t zero_tail, uint64_t after_lsn)
{
    fuzz_clean();
    char p[512];
    snprintf(p, sizeof(p), "%s/wal-00000000000000000001.log", fuzz_dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    TRIAD_ASSERT(fd >= 0);
    if (head_len > 0)
        TRIAD_ASSERT(write(fd, head, head_len) == (ssize_t)head_len);
    if (size > 0)
        TRIAD_ASSERT(write(fd, data, size) == (ssize_t)size);
    if (zero_tail > 0)
        TRIAD_ASSERT(ftruncate(fd, (off_t)(head_len + size + zero_tail)) == 0);
    close(fd);

    struct wal *w;
    char err[512];
    uint64_t last = 0;
    if (wal_open(&w, fuzz_dir, 4096, after_lsn, fuzz_replay, &last, NULL, NULL, err,
                 sizeof(err)) != 0)
        return;
    uint64_t lsn = wal_append(w, 1, data, size < 100 ? size : 100);
    TRIAD_ASSERT(lsn == wal_last_lsn(w));
    struct wal_batch b;
    wal_take_batch(w, &b);
    TRIAD_ASSERT(wal_write_batch(w, &b, true, err, sizeof(err)) == 0);
    wal_batch_free(&b);
    wal_close(w);

    last = 0;
    TRIAD_ASSERT(wal_open(&w, fuzz_dir, 4096, after_lsn, fuzz_replay, &last, NULL, NULL, err,
                          sizeof(err)) == 0);
    TRIAD_ASSERT(last == lsn);
    TRIAD_ASSERT(wal_last_lsn(w) == lsn);
    size_t segs;
    uint64_t bytes;
    wal_stats(w, &segs, &bytes);
    TRIAD_ASSERT(segs > 0);
    TRIAD_ASSERT(bytes <= wal_allocated_bytes(w));
    wal_close(w);
}

static void fuzz_remove_dir(void)
{
    fuzz_clean();
    rmdir(fuzz_dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_dir[0] == '\0') {
        snprintf(fuzz_dir, sizeof(fuzz_dir), "/tmp/triad-fuzz-wal-XXXXXX");
        TRIAD_ASSERT(mkdtemp(fuzz_dir) != NULL);
        fs_faults.syncs_off = true;
        atexit(fuzz_remove_dir);
    }
    /* Both write policies (wal_huge_io), by the input's length, and
     * without asking the kernel at each open, which costs a touch of 2 MiB
     * and maybe a compaction. */
    fs_faults.io_pages = size % 2 ? FS_IO_PAGES_HUGE : FS_IO_PAGES_SMALL;
    unsigned char h[WAL_HEADER_BYTES];
    memcpy(h, "TRIADWAL", 8);
    tbuf_write_u32le(h + 8, 1);
    tbuf_write_u32le(h + 12, 0);
    tbuf_write_u64le(h + 16, 1);
    uint64_t after = size > 0 ? data[0] % 4 : 0;
    fuzz_one(h, sizeof(h), data, size, 0, 0);
    fuzz_one(h, sizeof(h), data, size, 0, after);
    fuzz_one(h, sizeof(h), data, size, FUZZ_ZERO_TAIL_BYTES, after);
    fuzz_one(NULL, 0, data, size, 0, 0);
    return 0;
}
