/* fs.h - the only way src/store/ touches files.
 *
 * Thin wrappers over the system calls that retry on EINTR and finish short
 * reads and writes. Each returns 0 or a negative TRIAD_E* code (TRIAD_EIO
 * for a failed call, TRIAD_ENOTFOUND where a missing file is an expected
 * answer) and leaves errno set, so the caller can say strerror(errno) in its
 * errmsg right after the call.
 *
 * Fault injection: tests set fields of the global fs_faults to make a
 * chosen write or sync fail, the way SQLite's test VFS does. The counters
 * are plain ints: set them only while no other thread does file I/O.
 *
 * A torn (partial) injected write lands its bytes through the page cache
 * even on an O_DIRECT descriptor, whose own writes must be whole aligned
 * blocks: a torn write in the tests may end at any byte, a superset of the
 * sector-sized tears a device makes.
 */
#ifndef TRIAD_FS_H
#define TRIAD_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fs_faults {
    /* Fail the Nth write call from now (1: the next one); 0: never. */
    int write_fail_nth;
    /* The failing write first writes this many bytes of its buffer (a torn
     * write), then fails. */
    size_t write_partial_bytes;
    /* Fail the Nth fdatasync/fsync/write-back call (files and directories)
     * from now. */
    int sync_fail_nth;
    /* Fail the Nth unlink call from now. */
    int unlink_fail_nth;
    /* errno of an injected failure; EIO if 0. */
    int fail_errno;
    /* Make every fdatasync/fsync a successful no-op: for fuzzers, which
     * want speed and never crash the machine. */
    bool syncs_off;
    /* Make fs_open refuse O_DIRECT with EINVAL, as a filesystem without
     * direct I/O does: tests reach the buffered fallback this way. */
    bool direct_io_off;
    /* What the WAL takes its I/O buffers' pages to be (wal_huge_io), for
     * its write policy: FS_IO_PAGES_AS_THEY_ARE, or a forced answer, so
     * that tests reach both policies on any kernel. Forcing only chooses
     * the path; the bytes are the same either way. */
    int io_pages;
    /* Called by fs_unlink, on whatever thread it runs, before it deletes
     * path: a test can hold a deletion there or note the order. */
    void (*before_unlink)(const char *path);
};
extern struct fs_faults fs_faults;
#define FS_IO_PAGES_AS_THEY_ARE 0
#define FS_IO_PAGES_SMALL 1
#define FS_IO_PAGES_HUGE 2

/* Cap on the names fs_list returns: a directory with more files than this
 * is not one of ours. */
#define FS_LIST_NAMES_MAX (1u << 20)

int fs_open(const char *path, int flags, int mode, int *fd_out); /* ENOENT -> TRIAD_ENOTFOUND */
void fs_close(int fd);
int fs_write_all(int fd, const void *p, size_t len);
int fs_pwrite_all(int fd, const void *p, size_t len, uint64_t off);
/* Read up to len bytes, stopping early only at end of file: *got says how
 * many were read. */
int fs_read_all(int fd, void *p, size_t len, size_t *got);
int fs_pread_all(int fd, void *p, size_t len, uint64_t off, size_t *got);
int fs_datasync(int fd);
/* Write the dirty pages of [off, off+len) to the device and wait for them:
 * no metadata, no flush of the device's cache (sync_file_range). Counts as
 * a sync for fault injection. Only where fs_writes_back_ranges says so. */
int fs_write_back(int fd, uint64_t off, uint64_t len);
/* Does fs_write_back on fd reach the pages its writes went to? */
bool fs_writes_back_ranges(int fd);
int fs_fsync(int fd);
/* fsync a directory, making renames, creations and removals in it durable. */
int fs_sync_dir(const char *dir);
int fs_rename(const char *from, const char *to);
int fs_unlink(const char *path); /* ENOENT -> TRIAD_ENOTFOUND */
int fs_truncate(int fd, uint64_t len);
int fs_file_size(int fd, uint64_t *size);
/* mkdir -p (mode 0755); an existing directory is fine. */
int fs_mkdir_p(const char *dir);
/* The names (not paths) of the regular files in dir that start with
 * prefix and end with suffix, sorted by strcmp. *names_out is owned by the
 * caller: free it with fs_list_free. */
int fs_list(const char *dir, const char *prefix, const char *suffix, char ***names_out,
            size_t *count_out);
void fs_list_free(char **names, size_t count);
/* Map len bytes of fd read-only (len > 0); unmap with fs_unmap. */
int fs_map(int fd, size_t len, const void **out);
void fs_unmap(const void *p, size_t len);

#endif
