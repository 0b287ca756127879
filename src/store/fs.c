#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "../common/defs.h"
#include "../common/mem.h"

struct fs_faults fs_faults;

static int fs__injected(int *nth)
{
    if (*nth > 0 && --*nth == 0) {
        errno = fs_faults.fail_errno ? fs_faults.fail_errno : EIO;
        return 1;
    }
    return 0;
}

int fs_open(const char *path, int flags, int mode, int *fd_out)
{
    int fd;
    if ((flags & O_DIRECT) && fs_faults.direct_io_off) {
        errno = EINVAL;
        return TRIAD_EIO;
    }
    do
        fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno == ENOENT ? TRIAD_ENOTFOUND : TRIAD_EIO;
    *fd_out = fd;
    return 0;
}

void fs_close(int fd)
{
    int saved = errno;
    /* Not retried on EINTR: on Linux the descriptor is gone either way. */
    close(fd);
    errno = saved;
}

/* The injected failure of a write: optionally some bytes land first, as
 * when a crash or a full disk tears a write. */
static int fs__torn_write(int fd, const void *p, size_t len, uint64_t off, int positioned)
{
    int err = errno;
    size_t part = TRIAD_MIN(fs_faults.write_partial_bytes, len);
    if (part > 0) {
        /* An O_DIRECT descriptor would refuse a part that is not whole
         * blocks: land it through the page cache for the moment. */
        int fl = fcntl(fd, F_GETFL);
        bool direct = fl >= 0 && (fl & O_DIRECT) != 0;
        if (direct)
            (void)fcntl(fd, F_SETFL, fl & ~O_DIRECT);
        ssize_t n = positioned ? pwrite(fd, p, part, (off_t)off) : write(fd, p, part);
        (void)n;
        if (direct)
            (void)fcntl(fd, F_SETFL, fl);
    }
    errno = err;
    return TRIAD_EIO;
}

int fs_write_all(int fd, const void *p, size_t len)
{
    if (fs__injected(&fs_faults.write_fail_nth))
        return fs__torn_write(fd, p, len, 0, 0);
    const char *c = p;
    while (len > 0) {
        ssize_t n = write(fd, c, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TRIAD_EIO;
        }
        c += n;
        len -= (size_t)n;
    }
    return 0;
}

int fs_pwrite_all(int fd, const void *p, size_t len, uint64_t off)
{
    if (fs__injected(&fs_faults.write_fail_nth))
        return fs__torn_write(fd, p, len, off, 1);
    const char *c = p;
    while (len > 0) {
        ssize_t n = pwrite(fd, c, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TRIAD_EIO;
        }
        c += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

int fs_read_all(int fd, void *p, size_t len, size_t *got)
{
    char *c = p;
    size_t done = 0;
    while (done < len) {
        ssize_t n = read(fd, c + done, len - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TRIAD_EIO;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int fs_pread_all(int fd, void *p, size_t len, uint64_t off, size_t *got)
{
    char *c = p;
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, c + done, len - done, (off_t)(off + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return TRIAD_EIO;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

int fs_datasync(int fd)
{
    if (fs__injected(&fs_faults.sync_fail_nth))
        return TRIAD_EIO;
    if (fs_faults.syncs_off)
        return 0;
    /* Not retried on EINTR or anything else: after a failed fsync the
     * kernel may have dropped the dirty pages, so a retry that succeeds
     * proves nothing. The caller must treat the file as lost. */
    return fdatasync(fd) == 0 ? 0 : TRIAD_EIO;
}

int fs_write_back(int fd, uint64_t off, uint64_t len)
{
    if (fs__injected(&fs_faults.sync_fail_nth))
        return TRIAD_EIO;
    if (fs_faults.syncs_off)
        return 0;
    unsigned flags = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                     SYNC_FILE_RANGE_WAIT_AFTER;
    return sync_file_range(fd, (off_t)off, (off_t)len, flags) == 0 ? 0 : TRIAD_EIO;
}

bool fs_writes_back_ranges(int fd)
{
    /* Where the page cache is the file's own. A stacked filesystem
     * (overlayfs, FUSE) keeps the pages below it, where sync_file_range
     * does not reach; one not listed is not trusted. */
    static const unsigned long own[] = {
        0xEF53,     /* ext2/3/4 */
        0x58465342, /* xfs */
        0x9123683E, /* btrfs */
        0xF2F52010, /* f2fs */
    };
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return false;
    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++)
        if ((unsigned long)sf.f_type == own[i])
            return true;
    return false;
}

int fs_fsync(int fd)
{
    if (fs__injected(&fs_faults.sync_fail_nth))
        return TRIAD_EIO;
    if (fs_faults.syncs_off)
        return 0;
    return fsync(fd) == 0 ? 0 : TRIAD_EIO;
}

int fs_sync_dir(const char *dir)
{
    int fd;
    int rc = fs_open(dir, O_RDONLY | O_DIRECTORY, 0, &fd);
    if (rc != 0)
        return TRIAD_EIO;
    rc = fs_fsync(fd);
    fs_close(fd);
    return rc;
}

int fs_rename(const char *from, const char *to)
{
    return rename(from, to) == 0 ? 0 : TRIAD_EIO;
}

int fs_unlink(const char *path)
{
    if (fs_faults.before_unlink != NULL)
        fs_faults.before_unlink(path);
    if (fs__injected(&fs_faults.unlink_fail_nth))
        return TRIAD_EIO;
    if (unlink(path) == 0)
        return 0;
    return errno == ENOENT ? TRIAD_ENOTFOUND : TRIAD_EIO;
}

int fs_truncate(int fd, uint64_t len)
{
    int r;
    do
        r = ftruncate(fd, (off_t)len);
    while (r < 0 && errno == EINTR);
    return r == 0 ? 0 : TRIAD_EIO;
}

int fs_file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return TRIAD_EIO;
    *size = (uint64_t)st.st_size;
    return 0;
}

int fs_mkdir_p(const char *dir)
{
    size_t len = strlen(dir);
    char *path = tstrndup(dir, len);
    int rc = 0;
    /* Create each prefix ending before a '/', then the whole path. */
    for (size_t i = 1; i <= len && rc == 0; i++) {
        if (i < len && path[i] != '/')
            continue;
        char saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            rc = TRIAD_EIO;
        path[i] = saved;
    }
    if (rc == 0) {
        struct stat st;
        if (stat(dir, &st) != 0)
            rc = TRIAD_EIO;
        else if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            rc = TRIAD_EIO;
        }
    }
    tfree(path);
    return rc;
}

static int fs__cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fs_list(const char *dir, const char *prefix, const char *suffix, char ***names_out,
            size_t *count_out)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT ? TRIAD_ENOTFOUND : TRIAD_EIO;
    size_t plen = strlen(prefix), slen = strlen(suffix);
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                rc = TRIAD_EIO;
            break;
        }
        size_t nlen = strlen(e->d_name);
        if (nlen < plen + slen || memcmp(e->d_name, prefix, plen) != 0 ||
            memcmp(e->d_name + nlen - slen, suffix, slen) != 0)
            continue;
        if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
            continue;
        if (count == FS_LIST_NAMES_MAX) {
            errno = E2BIG;
            rc = TRIAD_ELIMIT;
            break;
        }
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            names = trealloc(names, cap * sizeof(*names));
        }
        names[count++] = tstrndup(e->d_name, nlen);
    }
    closedir(d);
    if (rc != 0) {
        fs_list_free(names, count);
        return rc;
    }
    if (count > 1)
        qsort(names, count, sizeof(*names), fs__cmp_names);
    *names_out = names;
    *count_out = count;
    return 0;
}

void fs_list_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        tfree(names[i]);
    tfree(names);
}

int fs_map(int fd, size_t len, const void **out)
{
    TRIAD_ASSERT(len > 0);
    void *p = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED)
        return TRIAD_EIO;
    /* Recovery reads front to back once. */
    madvise(p, len, MADV_SEQUENTIAL);
    *out = p;
    return 0;
}

void fs_unmap(const void *p, size_t len)
{
    if (p != NULL && len > 0)
        munmap((void *)p, len);
}
