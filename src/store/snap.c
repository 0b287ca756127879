/* snap.c - snapshots (see snap.h for the format).
 *
 * Both directions stream through one fixed buffer, so a snapshot of many
 * GiB needs neither that much memory nor a system call per key. The
 * checksum is computed over the buffer as it is flushed or refilled, not
 * per entry.
 */
#include "snap.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/crc32c.h"
#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"
#include "fs.h"
#include "reaper.h"

#define SNAP_MAGIC "TRIADSNP"
#define SNAP_VERSION 1
#define SNAP_HEADER_BYTES 24
#define SNAP_ENTRY_HEADER_BYTES 21 /* tag, db, klen, vlen, expire_ms */
#define SNAP_TRAILER_BYTES 13      /* tag, count, crc */
#define SNAP_TAG_ENTRY 1
#define SNAP_TAG_END 0xFF
#define SNAP_NAME_PREFIX "snap-"
#define SNAP_NAME_DIGITS 20
#define SNAP_NAME_LEN (5 + SNAP_NAME_DIGITS + 5) /* "snap-" digits ".snap" */
/* The streaming buffer of writes and of reads. An entry larger than this
 * on load gets a buffer of its own. */
#define SNAP_BUF_BYTES (256u * 1024)

_Static_assert(SNAP_HEADER_BYTES == 8 + 4 + 4 + 8, "header layout");
_Static_assert(SNAP_ENTRY_HEADER_BYTES == 1 + 4 + 4 + 4 + 8, "entry layout");
_Static_assert(SNAP_TRAILER_BYTES == 1 + 8 + 4, "trailer layout");
_Static_assert(SNAP_BUF_BYTES >= SNAP_HEADER_BYTES + SNAP_ENTRY_HEADER_BYTES, "buffer size");

#define snap__err triad_errf

static char *snap__path(const char *dir, uint64_t lsn, const char *suffix)
{
    size_t n = strlen(dir) + 1 + SNAP_NAME_LEN + 1;
    char *p = tmalloc(n);
    int w = snprintf(p, n, "%s/" SNAP_NAME_PREFIX "%020" PRIu64 "%s", dir, lsn, suffix);
    TRIAD_ASSERT(w > 0 && (size_t)w < n);
    return p;
}

static char *snap__join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = tmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* "snap-<20 digits><suffix>" -> lsn. False for any other name. */
static bool snap__parse_name(const char *name, const char *suffix, uint64_t *lsn)
{
    size_t slen = strlen(suffix);
    if (strlen(name) != 5 + SNAP_NAME_DIGITS + slen || strcmp(name + 5 + SNAP_NAME_DIGITS, suffix) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < SNAP_NAME_DIGITS; i++) {
        char c = name[5 + i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *lsn = v;
    return true;
}

/* ---- writing ----------------------------------------------------------- */

struct snap_writer {
    int fd;
    char *buf;
    size_t len;
    uint32_t crc;   /* of every byte flushed so far */
    uint64_t bytes; /* flushed so far */
    uint64_t entries;
    uint32_t db;
    int64_t now_ms;
    const char *fail; /* why the write failed; NULL while it hasn't */
    int fail_errno;
};

static int snap__flush(struct snap_writer *w)
{
    if (w->len == 0)
        return 0;
    w->crc = crc32c(w->crc, w->buf, w->len);
    if (fs_write_all(w->fd, w->buf, w->len) != 0) {
        w->fail = "write";
        w->fail_errno = errno;
        return TRIAD_EIO;
    }
    w->bytes += w->len;
    w->len = 0;
    return 0;
}

static int snap__emit(struct snap_writer *w, const void *p, size_t n)
{
    if (w->len + n > SNAP_BUF_BYTES && snap__flush(w) != 0)
        return TRIAD_EIO;
    if (n <= SNAP_BUF_BYTES) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
        return 0;
    }
    /* Bigger than the buffer (a large value): straight to the file. */
    TRIAD_ASSERT(w->len == 0);
    w->crc = crc32c(w->crc, p, n);
    if (fs_write_all(w->fd, p, n) != 0) {
        w->fail = "write";
        w->fail_errno = errno;
        return TRIAD_EIO;
    }
    w->bytes += n;
    return 0;
}

static int snap__write_entry(void *arg, const char *key, size_t klen, const char *val,
                             size_t vlen, int64_t expire_ms)
{
    struct snap_writer *w = arg;
    if (expire_ms != KV_NO_EXPIRE && expire_ms <= w->now_ms)
        return 0;
    if (klen > UINT32_MAX || vlen > UINT32_MAX) {
        w->fail = "an entry too large for the format's u32 lengths";
        w->fail_errno = EFBIG;
        return TRIAD_EIO;
    }
    unsigned char h[SNAP_ENTRY_HEADER_BYTES];
    h[0] = SNAP_TAG_ENTRY;
    tbuf_write_u32le(h + 1, w->db);
    tbuf_write_u32le(h + 5, (uint32_t)klen);
    tbuf_write_u32le(h + 9, (uint32_t)vlen);
    tbuf_write_u64le(h + 13, (uint64_t)expire_ms);
    if (snap__emit(w, h, sizeof(h)) != 0 || snap__emit(w, key, klen) != 0 ||
        snap__emit(w, val, vlen) != 0)
        return TRIAD_EIO;
    w->entries++;
    return 0;
}

int snap_write(const char *dir, uint64_t lsn, struct kv **dbs, int ndbs, int64_t now_ms,
               uint64_t *bytes_out, char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(ndbs >= 0);
    int rc = TRIAD_EIO;
    char *tmp = snap__path(dir, lsn, ".tmp");
    char *final = snap__path(dir, lsn, ".snap");
    struct snap_writer w = {.fd = -1, .now_ms = now_ms};

    if (fs_mkdir_p(dir) != 0) {
        snap__err(errmsg, errlen, "snap: create directory %s: %s", dir, strerror(errno));
        goto out_free_paths;
    }
    if (fs_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, &w.fd) != 0) {
        snap__err(errmsg, errlen, "snap: create %s: %s", tmp, strerror(errno));
        goto out_free_paths;
    }
    w.buf = tmalloc(SNAP_BUF_BYTES);

    unsigned char h[SNAP_HEADER_BYTES];
    memcpy(h, SNAP_MAGIC, 8);
    tbuf_write_u32le(h + 8, SNAP_VERSION);
    tbuf_write_u32le(h + 12, (uint32_t)ndbs);
    tbuf_write_u64le(h + 16, lsn);
    if (snap__emit(&w, h, sizeof(h)) != 0)
        goto err_unlink;
    for (int i = 0; i < ndbs; i++) {
        w.db = (uint32_t)i;
        if (kv_foreach(dbs[i], snap__write_entry, &w) != 0)
            goto err_unlink;
    }
    unsigned char t[SNAP_TRAILER_BYTES];
    t[0] = SNAP_TAG_END;
    tbuf_write_u64le(t + 1, w.entries);
    if (snap__emit(&w, t, 9) != 0 || snap__flush(&w) != 0)
        goto err_unlink;
    /* The crc covers every byte before it, so it goes out after the flush
     * that folded the last of them in. */
    tbuf_write_u32le(t + 9, w.crc);
    if (fs_write_all(w.fd, t + 9, 4) != 0) {
        w.fail = "write";
        w.fail_errno = errno;
        goto err_unlink;
    }
    w.bytes += 4;
    /* Durable before the rename, and the rename durable before we say
     * done: a crash must leave the old snapshot or the whole new one. */
    if (fs_fsync(w.fd) != 0) {
        w.fail = "fsync";
        w.fail_errno = errno;
        goto err_unlink;
    }
    fs_close(w.fd);
    w.fd = -1;
    if (fs_rename(tmp, final) != 0) {
        w.fail = "rename";
        w.fail_errno = errno;
        goto err_unlink;
    }
    if (fs_sync_dir(dir) != 0) {
        /* The file is complete under its final name; only the directory
         * entry's durability is in doubt. Report it, keep the file. */
        snap__err(errmsg, errlen, "snap: fsync directory %s: %s", dir, strerror(errno));
        goto out_free_buf;
    }
    if (bytes_out != NULL)
        *bytes_out = w.bytes;
    rc = 0;
    goto out_free_buf;

err_unlink:
    snap__err(errmsg, errlen, "snap: %s %s: %s", w.fail ? w.fail : "write", tmp,
              strerror(w.fail_errno));
    if (w.fd >= 0)
        fs_close(w.fd);
    w.fd = -1;
    fs_unlink(tmp);
out_free_buf:
    tfree(w.buf);
out_free_paths:
    tfree(final);
    tfree(tmp);
    return rc;
}

/* ---- loading ----------------------------------------------------------- */

struct snap_reader {
    int fd;
    const char *path;
    char *buf;
    size_t pos;        /* next unread byte */
    size_t end;        /* bytes valid in buf */
    size_t crc_pos;    /* buf[..crc_pos) is already folded into crc */
    uint64_t off;      /* file offset of buf[pos] */
    uint64_t size;     /* the file's size */
    uint32_t crc;
    char *errmsg;
    size_t errlen;
};

static int snap__corrupt(struct snap_reader *r, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int snap__corrupt(struct snap_reader *r, uint64_t off, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    snap__err(r->errmsg, r->errlen, "snap: corrupt snapshot %s at offset %" PRIu64 ": %s",
              r->path, off, why);
    return TRIAD_ECORRUPT;
}

static void snap__crc_catch_up(struct snap_reader *r)
{
    if (r->pos > r->crc_pos) {
        r->crc = crc32c(r->crc, r->buf + r->crc_pos, r->pos - r->crc_pos);
        r->crc_pos = r->pos;
    }
}

/* Make n (<= SNAP_BUF_BYTES) bytes readable at buf + pos. */
static int snap__need(struct snap_reader *r, size_t n)
{
    TRIAD_ASSERT(n <= SNAP_BUF_BYTES);
    if (r->end - r->pos >= n)
        return 0;
    if (r->off + n > r->size)
        return snap__corrupt(r, r->off, "file ends inside a %zu-byte field", n);
    snap__crc_catch_up(r);
    memmove(r->buf, r->buf + r->pos, r->end - r->pos);
    r->end -= r->pos;
    r->pos = 0;
    r->crc_pos = 0;
    size_t got = 0;
    if (fs_read_all(r->fd, r->buf + r->end, SNAP_BUF_BYTES - r->end, &got) != 0) {
        snap__err(r->errmsg, r->errlen, "snap: read %s: %s", r->path, strerror(errno));
        return TRIAD_EIO;
    }
    r->end += got;
    if (r->end < n)
        return snap__corrupt(r, r->off, "file ends inside a %zu-byte field", n);
    return 0;
}

static void snap__skip(struct snap_reader *r, size_t n)
{
    TRIAD_ASSERT(r->end - r->pos >= n);
    r->pos += n;
    r->off += n;
}

/* An entry that doesn't fit the buffer: read it into memory of its own. */
static int snap__load_big(struct snap_reader *r, struct kv *db, size_t klen, size_t vlen,
                          int64_t expire_ms)
{
    size_t n = klen + vlen;
    char *p = tmalloc(n);
    size_t have = TRIAD_MIN(n, r->end - r->pos);
    memcpy(p, r->buf + r->pos, have);
    snap__skip(r, have);
    snap__crc_catch_up(r);
    r->pos = r->end = r->crc_pos = 0;
    size_t got = 0;
    if (fs_read_all(r->fd, p + have, n - have, &got) != 0) {
        snap__err(r->errmsg, r->errlen, "snap: read %s: %s", r->path, strerror(errno));
        tfree(p);
        return TRIAD_EIO;
    }
    if (got != n - have) {
        tfree(p);
        return snap__corrupt(r, r->off + got, "file ends inside an entry");
    }
    r->crc = crc32c(r->crc, p + have, n - have);
    r->off += n - have;
    kv_set(db, p, klen, p + klen, vlen, expire_ms);
    tfree(p);
    return 0;
}

static int snap__load_file(struct snap_reader *r, uint64_t name_lsn, struct kv **dbs, int ndbs)
{
    int rc = snap__need(r, SNAP_HEADER_BYTES);
    if (rc != 0)
        return rc;
    const unsigned char *h = (const unsigned char *)r->buf + r->pos;
    if (memcmp(h, SNAP_MAGIC, 8) != 0)
        return snap__corrupt(r, 0, "bad magic");
    if (tbuf_read_u32le(h + 8) != SNAP_VERSION)
        return snap__corrupt(r, 8, "unsupported version %" PRIu32, tbuf_read_u32le(h + 8));
    if (tbuf_read_u64le(h + 16) != name_lsn)
        return snap__corrupt(r, 16, "lsn %" PRIu64 " does not match the file name",
                             tbuf_read_u64le(h + 16));
    snap__skip(r, SNAP_HEADER_BYTES);

    uint64_t entries = 0;
    for (;;) {
        uint64_t entry_off = r->off;
        rc = snap__need(r, 1);
        if (rc != 0)
            return rc;
        unsigned char tag = (unsigned char)r->buf[r->pos];
        if (tag == SNAP_TAG_END)
            break;
        if (tag != SNAP_TAG_ENTRY)
            return snap__corrupt(r, entry_off, "bad entry tag %u", tag);
        rc = snap__need(r, SNAP_ENTRY_HEADER_BYTES);
        if (rc != 0)
            return rc;
        const unsigned char *e = (const unsigned char *)r->buf + r->pos;
        uint32_t db = tbuf_read_u32le(e + 1);
        uint32_t klen = tbuf_read_u32le(e + 5);
        uint32_t vlen = tbuf_read_u32le(e + 9);
        int64_t expire_ms = (int64_t)tbuf_read_u64le(e + 13);
        if (db >= (uint32_t)ndbs)
            return snap__corrupt(r, entry_off, "database %" PRIu32 " out of range (%d databases)",
                                 db, ndbs);
        /* Written entries are live at write time, so a deadline is never
         * negative; the sentinels other than "none" never reach a file. */
        if (expire_ms != KV_NO_EXPIRE && expire_ms < 0)
            return snap__corrupt(r, entry_off, "bad deadline %" PRId64, expire_ms);
        if (klen > KV_KEY_MAX_LEN)
            return snap__corrupt(r, entry_off, "key length %" PRIu32 " over the limit", klen);
        /* Checked before anything is allocated: a damaged length must not
         * ask for gigabytes the file doesn't have. */
        uint64_t body = (uint64_t)klen + vlen;
        if (r->size - r->off < SNAP_ENTRY_HEADER_BYTES + body + SNAP_TRAILER_BYTES)
            return snap__corrupt(r, entry_off, "entry of %" PRIu64 " bytes runs past the end",
                                 body);
        snap__skip(r, SNAP_ENTRY_HEADER_BYTES);
        if (body <= SNAP_BUF_BYTES) {
            rc = snap__need(r, (size_t)body);
            if (rc != 0)
                return rc;
            const char *k = r->buf + r->pos;
            kv_set(dbs[db], k, klen, k + klen, vlen, expire_ms);
            snap__skip(r, (size_t)body);
        } else {
            rc = snap__load_big(r, dbs[db], klen, vlen, expire_ms);
            if (rc != 0)
                return rc;
        }
        entries++;
    }

    uint64_t end_off = r->off;
    rc = snap__need(r, SNAP_TRAILER_BYTES);
    if (rc != 0)
        return rc;
    const unsigned char *t = (const unsigned char *)r->buf + r->pos;
    uint64_t count = tbuf_read_u64le(t + 1);
    uint32_t stored = tbuf_read_u32le(t + 9);
    snap__skip(r, 9);
    snap__crc_catch_up(r);
    if (stored != r->crc)
        return snap__corrupt(r, r->off,
                             "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                             stored, r->crc);
    if (count != entries)
        return snap__corrupt(r, end_off, "trailer counts %" PRIu64 " entries, found %" PRIu64,
                             count, entries);
    snap__skip(r, 4);
    if (r->off != r->size)
        return snap__corrupt(r, r->off, "%" PRIu64 " bytes after the end", r->size - r->off);
    return 0;
}

static void snap__remove_tmp(const char *dir)
{
    char **names;
    size_t count;
    if (fs_list(dir, SNAP_NAME_PREFIX, ".tmp", &names, &count) != 0)
        return;
    for (size_t i = 0; i < count; i++) {
        /* A crash mid-write leaves these; they were never renamed, so no
         * one ever relied on them. */
        char *p = snap__join(dir, names[i]);
        fs_unlink(p);
        tfree(p);
    }
    fs_list_free(names, count);
}

int snap_load_latest(const char *dir, struct kv **dbs, int ndbs, uint64_t *lsn_out,
                     char *errmsg, size_t errlen)
{
    for (int i = 0; i < ndbs; i++)
        TRIAD_ASSERT(kv_count(dbs[i]) == 0);
    snap__remove_tmp(dir);

    char **names;
    size_t count;
    int rc = fs_list(dir, SNAP_NAME_PREFIX, ".snap", &names, &count);
    if (rc == TRIAD_ENOTFOUND) {
        *lsn_out = 0;
        return 0;
    }
    if (rc != 0) {
        snap__err(errmsg, errlen, "snap: list %s: %s", dir, strerror(errno));
        return TRIAD_EIO;
    }
    /* Names sort by lsn (fixed-width digits): the newest valid name is the
     * last. An older snapshot is never a fallback for a damaged newer one:
     * the WAL before the newer one may already be gone. */
    const char *newest = NULL;
    uint64_t lsn = 0;
    for (size_t i = count; i-- > 0;)
        if (snap__parse_name(names[i], ".snap", &lsn)) {
            newest = names[i];
            break;
        }
    if (newest == NULL) {
        fs_list_free(names, count);
        *lsn_out = 0;
        return 0;
    }

    struct snap_reader r = {.errmsg = errmsg, .errlen = errlen};
    char *path = snap__join(dir, newest);
    r.path = path;
    rc = fs_open(path, O_RDONLY, 0, &r.fd);
    if (rc != 0) {
        snap__err(errmsg, errlen, "snap: open %s: %s", path, strerror(errno));
        rc = TRIAD_EIO;
        goto out_free;
    }
    if (fs_file_size(r.fd, &r.size) != 0) {
        snap__err(errmsg, errlen, "snap: stat %s: %s", path, strerror(errno));
        rc = TRIAD_EIO;
        goto out_close;
    }
    r.buf = tmalloc(SNAP_BUF_BYTES);
    rc = snap__load_file(&r, lsn, dbs, ndbs);
    tfree(r.buf);
    if (rc != 0) {
        /* Leave no half-loaded keyspace behind. */
        for (int i = 0; i < ndbs; i++)
            kv_clear(dbs[i]);
        goto out_close;
    }
    *lsn_out = lsn;

out_close:
    fs_close(r.fd);
out_free:
    tfree(path);
    fs_list_free(names, count);
    return rc;
}

int snap_remove_older(const char *dir, uint64_t keep_lsn, struct reaper *reaper)
{
    char **names;
    size_t count;
    int rc = fs_list(dir, SNAP_NAME_PREFIX, ".snap", &names, &count);
    if (rc == TRIAD_ENOTFOUND)
        return 0;
    if (rc != 0)
        return TRIAD_EIO;
    for (size_t i = 0; i < count; i++) {
        uint64_t lsn;
        if (!snap__parse_name(names[i], ".snap", &lsn) || lsn >= keep_lsn)
            continue;
        char *p = snap__join(dir, names[i]);
        reaper_delete(reaper, p);
        tfree(p);
    }
    fs_list_free(names, count);
    return 0;
}
