/* wal.c - the segmented write-ahead log (see wal.h for the format and the
 * threads).
 *
 * Recovery maps each segment read-only and walks its records. The rule for
 * a bad record (short, over-long, checksum mismatch) follows DESIGN.md §2: a
 * crash mid-write can only damage the end of the newest segment, so a bad
 * record there with nothing valid after it is a torn write, truncated and
 * logged; anything else is corruption, and the node refuses to start
 * rather than silently lose acknowledged writes.
 *
 * Segments are zero-prefilled ahead of the write position (wal__prefill),
 * so a segment's file is usually longer than its records: its logical end
 * is where the records stop and zeros begin. A record's length is never 0,
 * so zeros cannot be mistaken for a record, and a segment whose records are
 * followed by nothing but zeros ends cleanly there.
 *
 * Where the filesystem allows, the current segment is written with
 * O_DIRECT: records go from our buffer to the device, skipping the page
 * cache's copy, per-page bookkeeping and writeback threads, which at
 * hundreds of MB/s of log cost the server a core's worth of kernel time.
 * O_DIRECT wants buffer, offset and length aligned (WAL_BLOCK_BYTES), so a
 * run of records is written as whole blocks from an aligned staging
 * buffer: the bytes already in the segment's last partial block (kept in
 * memory, w->tail), the records, then zeros to the next block boundary.
 * Those zeros are the clean end recovery already accepts; the next write
 * rewrites the block with more records. Rewriting a block whose first
 * bytes are synced records is no new risk: writeback of a page-cache page
 * rewrites the whole page just the same, and the bytes are identical. A
 * filesystem that refuses O_DIRECT (tmpfs on older kernels) gets the same
 * records through the page cache, unpadded.
 *
 * Some runs go through the page cache even so, in the same whole blocks,
 * through a second descriptor of the segment (WAL_CACHED_RUN_BYTES_MIN
 * says which and why): whole blocks, so the kernel never has to read a
 * page it is about to overwrite part of. Mixing the two is safe for the
 * bytes - a direct write first writes back any dirty cached page in its
 * own range, then invalidates it - but not for their order on the device:
 * a direct write of later records could reach it before cached earlier
 * ones, and a power cut then leave a hole recovery would take for damage.
 * So before a direct write of records, cached blocks not yet synced are
 * written back (sync_file_range, no flush: the guarantee a direct write of
 * them would have had), or, where that does not reach the file's pages
 * (overlayfs, FUSE, any filesystem fs_writes_back_ranges does not know),
 * the segment is fdatasync'd. A restarted process counts everything
 * before the end it found as such, since the process before it may have
 * left dirty pages. Within cached runs the order is the page
 * cache's writeback's, as on a filesystem without O_DIRECT. Zeros written
 * direct past cached records (the prefill), or cached past any records
 * (a primed chunk, WAL_PRIME_BYTES), need no such care: zeros after lost
 * records are a clean end, and a direct write of records over cached
 * zeros makes the kernel write those back first.
 */
#include "wal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/buf.h"
#include "../common/crc32c.h"
#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"
#include "fs.h"
#include "reaper.h"

#define WAL_MAGIC "TRIADWAL"
#define WAL_VERSION 1
#define WAL_NAME_PREFIX "wal-"
#define WAL_NAME_SUFFIX ".log"
#define WAL_NAME_DIGITS 20
/* "wal-" + 20 digits + ".log" */
#define WAL_NAME_LEN (4 + WAL_NAME_DIGITS + 4)
/* The smallest payload: type + lsn. */
#define WAL_PAYLOAD_MIN_BYTES 9
#define WAL_RECORD_MIN_BYTES (WAL_RECORD_OVERHEAD + 8)
#define WAL_MSG_MAX 512
/* A new pending buffer starts as big as the last batch, up to this: one
 * huge record must not make every later batch reserve as much. */
#define WAL_PENDING_HINT_BYTES_MAX (4u * 1024 * 1024)
/* Zero runs are compared against a block this big (memcmp, which libc
 * vectorises) rather than byte by byte: a 64 MiB segment that is mostly
 * prefill must not slow start-up down. */
#define WAL_ZERO_BLOCK_BYTES 4096
/* Reading back from the end of a skipped segment for its last data byte. */
#define WAL_TAIL_READ_BYTES (64u * 1024)
/* O_DIRECT's alignment of buffer, file offset and length: the logical
 * block size of 4Kn devices, and a multiple of 512-byte sectors. */
#define WAL_BLOCK_BYTES 4096u
/* cached_unsynced_from when nothing cached waits for a sync */
#define WAL_NONE_UNSYNCED UINT64_MAX
/* The staging buffer for O_DIRECT writes grows to at most this: a bigger
 * run of records is written in several such pieces, so one huge record
 * does not leave a buffer as big behind. */
#define WAL_STAGE_BYTES_MAX (4u * 1024 * 1024)

_Static_assert(WAL_HEADER_BYTES == 8 + 4 + 4 + 8, "header layout");
_Static_assert(WAL_RECORD_OVERHEAD == 4 + 4 + 1, "record framing");
_Static_assert(WAL_RECORD_MAX_BYTES <= UINT32_MAX, "a length must fit its u32 field");
_Static_assert(sizeof(WAL_MAGIC) - 1 == 8, "magic is 8 bytes");
_Static_assert(WAL_PAYLOAD_MIN_BYTES > 0, "a zero length must never be a valid record");
_Static_assert(WAL_PREFILL_CHUNK_BYTES > 0, "prefill must make progress");
_Static_assert((WAL_BLOCK_BYTES & (WAL_BLOCK_BYTES - 1)) == 0, "block size is a power of two");
_Static_assert(WAL_STAGE_BYTES_MAX % WAL_BLOCK_BYTES == 0, "stage is whole blocks");
_Static_assert(TMEM_IO_ALIGN % WAL_BLOCK_BYTES == 0, "an I/O buffer is block-aligned");
_Static_assert(WAL_STAGE_BYTES_MAX >= 2 * WAL_BLOCK_BYTES, "a piece holds a tail and a block");
_Static_assert(WAL_HEADER_BYTES < WAL_BLOCK_BYTES, "the header is the start of block 0");

/* Zeros to compare against (WAL_ZERO_BLOCK_BYTES at a time) and to prime
 * a chunk with (WAL_PRIME_BYTES). */
static const unsigned char wal__zeros[WAL_PRIME_BYTES];
_Static_assert(WAL_ZERO_BLOCK_BYTES <= WAL_PRIME_BYTES, "one zero array serves both");

struct wal_seg {
    uint64_t first_lsn;
    uint64_t bytes;       /* logical: header and records */
    uint64_t alloc_bytes; /* the file's size, prefill included */
};

struct wal {
    char *dir;
    uint64_t segment_bytes;

    /* Loop thread only. */
    struct tbuf pending;
    uint64_t pending_first_lsn;
    bool open;          /* a record is being built in pending (wal_record_begin) */
    size_t open_start;  /* where its framing starts */
    uint64_t next_lsn;
    size_t batch_len_hint; /* size of the last batch, to pre-size the next */

    /* Fsync thread only (after wal_open), or the loop thread while the
     * fsync thread can start nothing (wal_pending_stays_cached). */
    atomic_bool in_use;    /* a write or sync is under way: never two at once */
    int fd;                /* current (last) segment, -1 if none */
    uint64_t cur_first_lsn;
    uint64_t cur_next_lsn; /* the lsn the next record in this segment must carry */
    uint64_t cur_bytes;    /* logical end: header and records, where the next goes */
    uint64_t cur_alloc_bytes; /* file size; zeros from cur_bytes up to it */
    uint64_t primed_to;    /* chunks before this were primed (WAL_PRIME_BYTES) */
    uint64_t cur_records;
    bool failed;           /* a write or sync failed: the file can't be trusted */
    bool direct;           /* fd is O_DIRECT: writes are whole aligned blocks */
    int cached_fd;         /* with direct: the segment without O_DIRECT, for
                              the runs WAL_CACHED_RUN_BYTES_MIN picks; else -1 */
    /* Where the blocks start that may have been written through the page
     * cache since the segment's last fdatasync, and be only in memory; their
     * records run up to the block holding cur_bytes, as every write after
     * the first of them was cached too (past it, up to primed_to, cached
     * zeros may wait too: harmless, as for the prefill's). WAL_NONE_UNSYNCED
     * if there are none. */
    uint64_t cached_unsynced_from;
    bool cached_write_back; /* fs_write_back reaches cached_fd's pages */
    bool direct_refused;   /* the filesystem refused O_DIRECT: don't ask again */
    /* The staging buffer is in huge pages (wal_huge_io). Set by whichever
     * thread allocates the buffer, read by any (wal_io_mode). */
    atomic_bool huge_io;
    /* direct as of its last change, for any thread (wal_io_mode): direct
     * itself is false for a moment at each new segment */
    atomic_bool shown_direct;
    /* The segment's bytes from the last block boundary up to cur_bytes
     * (cur_bytes % WAL_BLOCK_BYTES of them): what a direct write of the
     * block holding cur_bytes must carry before the new records. */
    unsigned char tail[WAL_BLOCK_BYTES];
    /* Staging buffer for whole-block writes (direct or cached), kept
     * across batches: an I/O buffer (tmem_io_alloc), so block-aligned. */
    unsigned char *stage;
    size_t stage_cap;

    /* Any thread, under seg_mu. The last entry is the current segment. */
    pthread_mutex_t seg_mu;
    struct reaper *reaper; /* deletes removed segments; NULL: at once */
    struct wal_seg *segs;
    size_t segs_count;
    size_t segs_cap;
};

#define wal__err triad_errf

static void wal__seg_path(const struct wal *w, uint64_t first_lsn, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/" WAL_NAME_PREFIX "%020" PRIu64 WAL_NAME_SUFFIX, w->dir,
                     first_lsn);
    TRIAD_ASSERT(n > 0 && (size_t)n < outlen);
}

static size_t wal__path_max(const struct wal *w)
{
    return strlen(w->dir) + 1 + WAL_NAME_LEN + 1;
}

/* "wal-00000000000000000042.log" -> 42. False for any other name. */
static bool wal__parse_name(const char *name, uint64_t *lsn)
{
    if (strlen(name) != WAL_NAME_LEN)
        return false;
    uint64_t v = 0;
    for (int i = 0; i < WAL_NAME_DIGITS; i++) {
        char c = name[4 + i];
        if (c < '0' || c > '9')
            return false;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *lsn = v;
    return v > 0;
}

static void wal__segs_push(struct wal *w, uint64_t first_lsn, uint64_t bytes,
                           uint64_t alloc_bytes)
{
    TRIAD_ASSERT(bytes <= alloc_bytes);
    pthread_mutex_lock(&w->seg_mu);
    if (w->segs_count == w->segs_cap) {
        w->segs_cap = w->segs_cap ? w->segs_cap * 2 : 16;
        w->segs = trealloc(w->segs, w->segs_cap * sizeof(*w->segs));
    }
    TRIAD_ASSERT(w->segs_count == 0 || w->segs[w->segs_count - 1].first_lsn < first_lsn);
    w->segs[w->segs_count].first_lsn = first_lsn;
    w->segs[w->segs_count].bytes = bytes;
    w->segs[w->segs_count].alloc_bytes = alloc_bytes;
    w->segs_count++;
    pthread_mutex_unlock(&w->seg_mu);
}

static void wal__segs_set_cur_bytes(struct wal *w)
{
    TRIAD_ASSERT(w->cur_bytes <= w->cur_alloc_bytes);
    pthread_mutex_lock(&w->seg_mu);
    TRIAD_ASSERT(w->segs_count > 0);
    w->segs[w->segs_count - 1].bytes = w->cur_bytes;
    w->segs[w->segs_count - 1].alloc_bytes = w->cur_alloc_bytes;
    pthread_mutex_unlock(&w->seg_mu);
}

/* The first offset in data[from..size) holding a non-zero byte, or size. */
static uint64_t wal__skip_zeros(const unsigned char *data, uint64_t from, uint64_t size)
{
    uint64_t p = from;
    while (p < size) {
        size_t n = (size_t)TRIAD_MIN(size - p, (uint64_t)WAL_ZERO_BLOCK_BYTES);
        if (memcmp(data + p, wal__zeros, n) != 0)
            break;
        p += n;
    }
    /* At most one block to go, and only if a non-zero byte is in it. */
    while (p < size && data[p] == 0)
        p++;
    return p;
}

static uint64_t wal__block_down(uint64_t off)
{
    return off & ~(uint64_t)(WAL_BLOCK_BYTES - 1);
}

static uint64_t wal__block_up(uint64_t off)
{
    return wal__block_down(off + WAL_BLOCK_BYTES - 1);
}

/* Make the staging buffer hold at least len bytes (<= WAL_STAGE_BYTES_MAX). */
static void wal__stage_reserve(struct wal *w, size_t len)
{
    TRIAD_ASSERT(len <= WAL_STAGE_BYTES_MAX);
    if (w->stage_cap >= len)
        return;
    tmem_io_free(w->stage, w->stage_cap);
    w->stage = tmem_io_alloc(len, &w->stage_cap);
    /* (a forced answer skips the question, which costs a touch of every
     * page and, where the kernel must compact, more) */
    bool huge = fs_faults.io_pages == FS_IO_PAGES_AS_THEY_ARE
                    ? tmem_io_huge(w->stage, w->stage_cap)
                    : fs_faults.io_pages == FS_IO_PAGES_HUGE;
    atomic_store_explicit(&w->huge_io, huge, memory_order_relaxed);
}

/* Try to make `fd` (the current segment, open for writing at `path`) an
 * O_DIRECT descriptor: on success *fd is replaced by a new one and
 * w->direct is set; otherwise *fd stays and writes go through the page
 * cache. A filesystem that says EINVAL is not asked again. */
static void wal__try_direct(struct wal *w, const char *path, int *fd)
{
    TRIAD_ASSERT(w->cached_fd < 0);
    w->direct = false;
    atomic_store_explicit(&w->shown_direct, false, memory_order_relaxed);
    if (w->direct_refused)
        return;
    int dfd;
    if (fs_open(path, O_WRONLY | O_DIRECT, 0, &dfd) != 0) {
        if (errno == EINVAL)
            w->direct_refused = true;
        return;
    }
    /* Kept for cached runs only where a block is a page: with bigger pages
     * a whole-block write would make the kernel read the rest first. */
    if (sysconf(_SC_PAGESIZE) == WAL_BLOCK_BYTES) {
        w->cached_fd = *fd;
        w->cached_write_back = fs_writes_back_ranges(*fd);
    } else {
        fs_close(*fd);
    }
    *fd = dfd;
    w->direct = true;
    atomic_store_explicit(&w->shown_direct, true, memory_order_relaxed);
}

/* Close the current segment's descriptors. */
static void wal__close_cur(struct wal *w)
{
    if (w->fd >= 0)
        fs_close(w->fd);
    if (w->cached_fd >= 0)
        fs_close(w->cached_fd);
    w->fd = -1;
    w->cached_fd = -1;
    w->direct = false;
    w->cached_unsynced_from = WAL_NONE_UNSYNCED;
    w->primed_to = 0;
}

/* Write p[0..len) at off in the current segment. On a direct descriptor
 * p, len and off are block-aligned; if the write is refused with EINVAL
 * (the filesystem took O_DIRECT at open but wants a bigger alignment, and
 * wrote nothing), the segment is written through the page cache from then
 * on (its cached descriptor, or a new one), and the same bytes written
 * that way: padding included, they are valid buffered writes too. */
static int wal__pwrite(struct wal *w, const void *p, size_t len, uint64_t off)
{
    TRIAD_ASSERT(w->fd >= 0);
    if (w->direct) {
        TRIAD_ASSERT(((uintptr_t)p & (WAL_BLOCK_BYTES - 1)) == 0);
        TRIAD_ASSERT(len % WAL_BLOCK_BYTES == 0);
        TRIAD_ASSERT(off % WAL_BLOCK_BYTES == 0);
    }
    int rc = fs_pwrite_all(w->fd, p, len, off);
    if (rc == 0 || !w->direct || errno != EINVAL)
        return rc;
    /* the descriptor kept for cached runs is just that, if there is one */
    int fd = w->cached_fd;
    w->cached_fd = -1;
    if (fd < 0) {
        size_t plen = wal__path_max(w);
        char *path = tmalloc(plen);
        wal__seg_path(w, w->cur_first_lsn, path, plen);
        rc = fs_open(path, O_WRONLY, 0, &fd);
        tfree(path);
        if (rc != 0)
            return TRIAD_EIO;
    }
    wal__close_cur(w);
    w->fd = fd;
    w->direct_refused = true;
    atomic_store_explicit(&w->shown_direct, false, memory_order_relaxed);
    return fs_pwrite_all(w->fd, p, len, off);
}

/* Make the current segment's file hold zeros at least
 * WAL_PREFILL_AHEAD_BYTES past `end`, the end of the records about to be
 * written at cur_bytes, but not past the segment limit (nor past `end`
 * for a record bigger than a segment, which gets a segment to itself).
 * When the file must grow it grows a further WAL_PREFILL_CHUNK_BYTES, so
 * that most batches overwrite blocks the file already has: their
 * fdatasync then flushes data only, with no change of size for the
 * filesystem to commit to its journal. The zeros are really written, not
 * fallocated: an unwritten extent still needs a metadata update on its
 * first write. The caller's next fdatasync covers them.
 *
 * On a direct descriptor the zeros are whole blocks: from the block after
 * the records' last one (their own write pads that block) or from the
 * block holding the old end of file, whichever is later (that block holds
 * only zeros past cur_bytes), up to the target rounded up to a block. */
static int wal__prefill(struct wal *w, uint64_t end, char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(w->fd >= 0);
    TRIAD_ASSERT(end >= w->cur_bytes);
    TRIAD_ASSERT(w->cur_alloc_bytes >= w->cur_bytes);
    uint64_t limit = TRIAD_MAX(w->segment_bytes, end);
    uint64_t need = TRIAD_MIN(end + WAL_PREFILL_AHEAD_BYTES, limit);
    if (w->cur_alloc_bytes >= need)
        return 0;
    uint64_t target = TRIAD_MIN(need + WAL_PREFILL_CHUNK_BYTES, limit);
    /* The records themselves will cover [cur_bytes, end). */
    uint64_t off = TRIAD_MAX(w->cur_alloc_bytes, end);
    if (w->direct) {
        target = wal__block_up(target);
        off = TRIAD_MAX(wal__block_up(end), wal__block_down(w->cur_alloc_bytes));
        /* Never a block holding records, and zeros over zeros only:
         * [cur_bytes, cur_alloc_bytes) is zeros already. */
        TRIAD_ASSERT(off % WAL_BLOCK_BYTES == 0);
        TRIAD_ASSERT(off >= end);
    }
    TRIAD_ASSERT(target >= off);
    if (target > off) {
        size_t zlen = (size_t)TRIAD_MIN(target - off, (uint64_t)WAL_PREFILL_CHUNK_BYTES);
        /* A fresh I/O buffer, for this call only: zeros that cost
         * nothing until read, aligned for a direct write (whole blocks of
         * zeros stay whole blocks, as zlen is then a block multiple). */
        size_t zcap;
        unsigned char *zeros = tmem_io_alloc(zlen, &zcap);
        while (off < target) {
            size_t n = (size_t)TRIAD_MIN(target - off, (uint64_t)zlen);
            if (wal__pwrite(w, zeros, n, off) != 0) {
                wal__err(errmsg, errlen,
                         "wal: prefill segment %" PRIu64 " at offset %" PRIu64 ": %s",
                         w->cur_first_lsn, off, strerror(errno));
                tmem_io_free(zeros, zcap);
                return TRIAD_EIO;
            }
            off += n;
        }
        tmem_io_free(zeros, zcap);
    }
    w->cur_alloc_bytes = target;
    TRIAD_ASSERT(w->cur_alloc_bytes >= end);
    return 0;
}

static void wal__header_encode(unsigned char *h, uint64_t first_lsn)
{
    memcpy(h, WAL_MAGIC, 8);
    tbuf_write_u32le(h + 8, WAL_VERSION);
    tbuf_write_u32le(h + 12, 0);
    tbuf_write_u64le(h + 16, first_lsn);
}

/* NULL if the header is good, else why not. */
static const char *wal__header_check(const unsigned char *h, size_t len, uint64_t name_lsn,
                                     char *why, size_t whylen)
{
    if (len < WAL_HEADER_BYTES) {
        snprintf(why, whylen, "short header (%zu bytes)", len);
        return why;
    }
    if (memcmp(h, WAL_MAGIC, 8) != 0)
        return "bad magic";
    if (tbuf_read_u32le(h + 8) != WAL_VERSION) {
        snprintf(why, whylen, "unsupported version %" PRIu32, tbuf_read_u32le(h + 8));
        return why;
    }
    if (tbuf_read_u64le(h + 16) != name_lsn) {
        snprintf(why, whylen, "header first lsn %" PRIu64 " does not match the file name",
                 tbuf_read_u64le(h + 16));
        return why;
    }
    return NULL;
}

/* Create segment `first_lsn` and make it the current one. The header is
 * durable and the directory entry too before any record goes in: a crash
 * can then tear only this segment's records, never its header or name.
 * With `prefill`, the segment starts with its first prefill, synced. A
 * segment created while an unsynced batch is written gets none: under
 * fsync everysec or no every batch is unsynced and never prefills, and
 * its zeros would be written for nothing, an eighth of a default
 * segment's bytes again. (Under fsync always that happens to a group's
 * batches before its last, and the last, synced, prefills the segment.) */
static int wal__create_segment(struct wal *w, uint64_t first_lsn, bool prefill, char *errmsg,
                               size_t errlen)
{
    TRIAD_ASSERT(w->fd < 0);
    TRIAD_ASSERT(first_lsn > 0);
    size_t plen = wal__path_max(w);
    char *path = tmalloc(plen);
    wal__seg_path(w, first_lsn, path, plen);
    unsigned char h[WAL_HEADER_BYTES];
    wal__header_encode(h, first_lsn);
    int fd;
    /* O_EXCL: a segment is never re-created; finding one would mean lsns
     * went backwards, and truncating it would destroy records. */
    int rc = fs_open(path, O_WRONLY | O_CREAT | O_EXCL, 0644, &fd);
    if (rc != 0) {
        wal__err(errmsg, errlen, "wal: create %s: %s", path, strerror(errno));
        goto err_free_path;
    }
    /* The header is durable before the prefill is written, so a file whose
     * header is torn is never longer than a header: recovery can remove it
     * as a creation cut short without mistaking it for a damaged segment. */
    if (fs_pwrite_all(fd, h, sizeof(h), 0) != 0 || fs_datasync(fd) != 0) {
        wal__err(errmsg, errlen, "wal: write header of %s: %s", path, strerror(errno));
        goto err_close;
    }
    /* The header went through the page cache (a direct write of block 0
     * would make a torn header look like a damaged segment); the records
     * go direct if the filesystem allows. The header is block 0's start. */
    wal__try_direct(w, path, &fd);
    memcpy(w->tail, h, sizeof(h));
    w->fd = fd;
    w->cur_first_lsn = first_lsn;
    w->cur_next_lsn = first_lsn;
    w->cur_bytes = WAL_HEADER_BYTES;
    w->cur_alloc_bytes = WAL_HEADER_BYTES;
    w->cur_records = 0;
    /* The first prefill is synced here too, so that the first batches'
     * fdatasyncs already find the file at its new size. */
    if (prefill) {
        if (wal__prefill(w, WAL_HEADER_BYTES, errmsg, errlen) != 0)
            goto err_reset;
        if (fs_datasync(w->fd) != 0) {
            wal__err(errmsg, errlen, "wal: fdatasync prefill of %s: %s", path, strerror(errno));
            goto err_reset;
        }
    }
    if (fs_sync_dir(w->dir) != 0) {
        wal__err(errmsg, errlen, "wal: fsync directory %s: %s", w->dir, strerror(errno));
        goto err_reset;
    }
    wal__segs_push(w, first_lsn, w->cur_bytes, w->cur_alloc_bytes);
    tfree(path);
    return 0;

err_reset:
    wal__close_cur(w); /* wal__pwrite may have reopened fd */
    fd = -1;
err_close:
    if (fd >= 0)
        fs_close(fd);
    /* Leave no header-less file behind for recovery to puzzle over. */
    fs_unlink(path);
err_free_path:
    tfree(path);
    return TRIAD_EIO;
}

/* ---- recovery ---------------------------------------------------------- */

struct wal_recovery {
    struct wal *w;
    uint64_t after_lsn;
    wal_replay_cb cb;
    void *cb_arg;
    wal_log_cb log_cb;
    void *log_arg;
    char *errmsg;
    size_t errlen;
};

/* Check the record at data[off..size) which must carry `lsn`. Returns NULL
 * and its full size in *rec_bytes if it is good, else the reason. A record
 * whose checksum holds but whose lsn is wrong is reported through
 * *lsn_mismatch: no torn write produces that. */
static const char *wal__record_check(const unsigned char *data, uint64_t size, uint64_t off,
                                     uint64_t lsn, uint64_t *rec_bytes, bool *lsn_mismatch,
                                     char *why, size_t whylen)
{
    uint64_t left = size - off;
    *lsn_mismatch = false;
    if (left < 8) {
        snprintf(why, whylen, "short record header (%" PRIu64 " bytes)", left);
        return why;
    }
    uint32_t len = tbuf_read_u32le(data + off);
    if (len < WAL_PAYLOAD_MIN_BYTES || len > WAL_RECORD_MAX_BYTES) {
        snprintf(why, whylen, "bad length %" PRIu32, len);
        return why;
    }
    if ((uint64_t)len > left - 8) {
        snprintf(why, whylen, "length %" PRIu32 " runs past the end of the file", len);
        return why;
    }
    uint32_t want = tbuf_read_u32le(data + off + 4);
    uint32_t got = crc32c(0, data + off + 8, len);
    if (want != got) {
        snprintf(why, whylen, "checksum mismatch (stored %08" PRIx32 ", computed %08" PRIx32 ")",
                 want, got);
        return why;
    }
    uint64_t rec_lsn = tbuf_read_u64le(data + off + 9);
    if (rec_lsn != lsn) {
        *lsn_mismatch = true;
        snprintf(why, whylen, "lsn %" PRIu64 ", expected %" PRIu64, rec_lsn, lsn);
        return why;
    }
    *rec_bytes = 8 + (uint64_t)len;
    return NULL;
}

/* Is there a whole, valid record anywhere in data[from..size) that could
 * belong to this log after lsn `lsn` - 1? If so, a bad record before it
 * is damage in the middle of the log, not a torn tail. Cheap filters
 * (length fits, lsn plausible) come before the checksum so that scanning
 * a garbage tail stays linear. */
static bool wal__valid_record_after(const unsigned char *data, uint64_t size, uint64_t from,
                                    uint64_t lsn)
{
    if (size < WAL_RECORD_MIN_BYTES)
        return false;
    for (uint64_t p = from; p + WAL_RECORD_MIN_BYTES <= size; p++) {
        uint32_t len = tbuf_read_u32le(data + p);
        if (len == 0) {
            /* A zero run (prefill): a record's length field has a non-zero
             * byte, so the next candidate is 3 bytes before the next
             * non-zero byte. Skipped in blocks, not byte by byte. */
            uint64_t nz = wal__skip_zeros(data, p, size);
            TRIAD_ASSERT(nz >= p + 4);
            p = nz - 4; /* the loop's p++ makes it nz - 3 */
            continue;
        }
        if (len < WAL_PAYLOAD_MIN_BYTES || len > WAL_RECORD_MAX_BYTES || len > size - p - 8)
            continue;
        uint64_t rec_lsn = tbuf_read_u64le(data + p + 9);
        /* Every record takes at least WAL_RECORD_MIN_BYTES, which bounds
         * how far past `lsn` a real record at p could be. */
        if (rec_lsn < lsn || rec_lsn - lsn > (p - from) / WAL_RECORD_MIN_BYTES + 1)
            continue;
        if (crc32c(0, data + p + 8, len) == tbuf_read_u32le(data + p + 4))
            return true;
    }
    return false;
}

/* Replay one mapped segment. *lsn is the lsn its first record must carry
 * on entry and the next one after it on return. *keep_bytes is the
 * segment's logical end: where its records stop, before a tail of zeros
 * (unused prefill, kept) or, in the last segment only, before a torn tail
 * (*torn set: the caller truncates it). */
static int wal__replay_segment(struct wal_recovery *r, const char *path,
                               const unsigned char *data, uint64_t size, bool is_last,
                               uint64_t *lsn, uint64_t *keep_bytes, bool *torn,
                               uint64_t *records)
{
    uint64_t off = WAL_HEADER_BYTES;
    char why[160];
    *records = 0;
    *torn = false;
    while (off < size) {
        uint64_t rec_bytes = 0;
        bool lsn_mismatch;
        const char *reason =
            wal__record_check(data, size, off, *lsn, &rec_bytes, &lsn_mismatch, why, sizeof(why));
        if (reason != NULL) {
            /* Nothing but zeros to the end: prefill no record reached yet
             * (a record's length is never 0). A clean end, in any segment. */
            if (wal__skip_zeros(data, off, size) == size) {
                *keep_bytes = off;
                return 0;
            }
            if (is_last && !lsn_mismatch && !wal__valid_record_after(data, size, off + 1, *lsn)) {
                char msg[WAL_MSG_MAX];
                snprintf(msg, sizeof(msg), "wal: truncated torn record at %s offset %" PRIu64 ": %s",
                         path, off, reason);
                if (r->log_cb != NULL)
                    r->log_cb(r->log_arg, msg);
                *keep_bytes = off;
                *torn = true;
                return 0;
            }
            wal__err(r->errmsg, r->errlen, "wal: corrupt record in %s at offset %" PRIu64 ": %s",
                     path, off, reason);
            return TRIAD_ECORRUPT;
        }
        if (*lsn > r->after_lsn) {
            uint32_t len = tbuf_read_u32le(data + off);
            int rc = r->cb(r->cb_arg, *lsn, data[off + 8], data + off + WAL_RECORD_MIN_BYTES,
                           len - WAL_PAYLOAD_MIN_BYTES);
            if (rc != 0) {
                wal__err(r->errmsg, r->errlen, "wal: replay stopped at lsn %" PRIu64 " (%d)", *lsn,
                         rc);
                return rc;
            }
        }
        off += rec_bytes;
        (*lsn)++;
        (*records)++;
    }
    TRIAD_ASSERT(off == size);
    *keep_bytes = size;
    return 0;
}

/* The end of the last non-zero byte of fd's data after the header (the
 * header's end if none), read backwards from the end of the file: the
 * logical size of a segment whose records are not read, short by any zero
 * bytes that end its last record. Only the zero tail and one block more
 * are read. */
static int wal__data_end(int fd, uint64_t size, uint64_t *end)
{
    unsigned char *buf = tmalloc(WAL_TAIL_READ_BYTES);
    uint64_t hi = size;
    int rc = 0;
    *end = WAL_HEADER_BYTES;
    while (hi > WAL_HEADER_BYTES) {
        uint64_t lo = hi - TRIAD_MIN(hi - WAL_HEADER_BYTES, (uint64_t)WAL_TAIL_READ_BYTES);
        size_t got = 0;
        rc = fs_pread_all(fd, buf, (size_t)(hi - lo), lo, &got);
        if (rc != 0)
            break;
        if (wal__skip_zeros(buf, 0, got) < got) {
            size_t i = got;
            while (buf[i - 1] == 0)
                i--;
            *end = lo + i;
            break;
        }
        hi = lo;
    }
    tfree(buf);
    return rc;
}

/* Validate only the header of a segment wholly covered by after_lsn. */
static int wal__check_skipped(struct wal_recovery *r, const char *path, uint64_t name_lsn,
                              uint64_t *bytes, uint64_t *alloc_bytes)
{
    int fd;
    unsigned char h[WAL_HEADER_BYTES];
    size_t got = 0;
    char why[128];
    if (fs_open(path, O_RDONLY, 0, &fd) != 0) {
        wal__err(r->errmsg, r->errlen, "wal: open %s: %s", path, strerror(errno));
        return TRIAD_EIO;
    }
    int rc = fs_pread_all(fd, h, sizeof(h), 0, &got);
    if (rc == 0)
        rc = fs_file_size(fd, alloc_bytes);
    if (rc == 0)
        rc = wal__data_end(fd, *alloc_bytes, bytes);
    int err = errno;
    fs_close(fd);
    if (rc != 0) {
        wal__err(r->errmsg, r->errlen, "wal: read %s: %s", path, strerror(err));
        return TRIAD_EIO;
    }
    const char *reason = wal__header_check(h, got, name_lsn, why, sizeof(why));
    if (reason != NULL) {
        wal__err(r->errmsg, r->errlen, "wal: corrupt segment header in %s at offset 0: %s", path,
                 reason);
        return TRIAD_ECORRUPT;
    }
    return 0;
}

/* A crash while a new segment was being created can leave the newest file
 * with a partial header and nothing else. Its header was never synced, so
 * no record can be in it: remove it. A bad header with bytes after it is
 * corruption. Returns 1 if the file was removed. */
static int wal__drop_torn_last(struct wal_recovery *r, const char *path, uint64_t name_lsn)
{
    int fd;
    unsigned char h[WAL_HEADER_BYTES];
    size_t got = 0;
    uint64_t size = 0;
    char why[128];
    if (fs_open(path, O_RDONLY, 0, &fd) != 0) {
        wal__err(r->errmsg, r->errlen, "wal: open %s: %s", path, strerror(errno));
        return TRIAD_EIO;
    }
    int rc = fs_pread_all(fd, h, sizeof(h), 0, &got);
    if (rc == 0)
        rc = fs_file_size(fd, &size);
    int err = errno;
    fs_close(fd);
    if (rc != 0) {
        wal__err(r->errmsg, r->errlen, "wal: read %s: %s", path, strerror(err));
        return TRIAD_EIO;
    }
    const char *reason = wal__header_check(h, got, name_lsn, why, sizeof(why));
    if (reason == NULL)
        return 0;
    if (size > WAL_HEADER_BYTES) {
        wal__err(r->errmsg, r->errlen, "wal: corrupt segment header in %s at offset 0: %s", path,
                 reason);
        return TRIAD_ECORRUPT;
    }
    if (fs_unlink(path) != 0 || fs_sync_dir(r->w->dir) != 0) {
        wal__err(r->errmsg, r->errlen, "wal: remove %s: %s", path, strerror(errno));
        return TRIAD_EIO;
    }
    char msg[WAL_MSG_MAX];
    snprintf(msg, sizeof(msg), "wal: removed segment %s with a torn header (%" PRIu64 " bytes): %s",
             path, size, reason);
    if (r->log_cb != NULL)
        r->log_cb(r->log_arg, msg);
    return 1;
}

/* Replay a segment read in full; the last one stays open as the current
 * segment, with its torn tail (if any) cut off. */
static int wal__recover_segment(struct wal_recovery *r, const char *path, uint64_t name_lsn,
                                bool is_last, uint64_t *lsn)
{
    struct wal *w = r->w;
    int fd;
    int rc;
    uint64_t size = 0;
    const void *map = NULL;
    char why[128];

    if (fs_open(path, is_last ? O_RDWR : O_RDONLY, 0, &fd) != 0) {
        wal__err(r->errmsg, r->errlen, "wal: open %s: %s", path, strerror(errno));
        return TRIAD_EIO;
    }
    if (fs_file_size(fd, &size) != 0) {
        wal__err(r->errmsg, r->errlen, "wal: stat %s: %s", path, strerror(errno));
        rc = TRIAD_EIO;
        goto err_close;
    }
    if (size > SIZE_MAX) {
        wal__err(r->errmsg, r->errlen, "wal: %s is too large to map", path);
        rc = TRIAD_ELIMIT;
        goto err_close;
    }
    if (size > 0 && fs_map(fd, (size_t)size, &map) != 0) {
        wal__err(r->errmsg, r->errlen, "wal: map %s: %s", path, strerror(errno));
        rc = TRIAD_EIO;
        goto err_close;
    }
    const char *reason = wal__header_check(map, (size_t)TRIAD_MIN(size, WAL_HEADER_BYTES),
                                           name_lsn, why, sizeof(why));
    if (reason != NULL) {
        wal__err(r->errmsg, r->errlen, "wal: corrupt segment header in %s at offset 0: %s", path,
                 reason);
        rc = TRIAD_ECORRUPT;
        goto err_unmap;
    }
    /* Segments must continue each other exactly; *lsn is 0 for the first
     * segment read in full, whose start after_lsn already vouched for. */
    if (*lsn != 0 && name_lsn != *lsn) {
        wal__err(r->errmsg, r->errlen,
                 "wal: corrupt record in %s at offset %d: segment starts at lsn %" PRIu64
                 " but the previous segment ended before lsn %" PRIu64,
                 path, WAL_HEADER_BYTES, name_lsn, *lsn);
        rc = TRIAD_ECORRUPT;
        goto err_unmap;
    }
    *lsn = name_lsn;
    uint64_t keep = 0, records = 0;
    bool torn = false;
    rc = wal__replay_segment(r, path, map, size, is_last, lsn, &keep, &torn, &records);
    if (rc == 0 && is_last) {
        /* The records in the block holding the logical end: the next
         * direct write rewrites that block, starting with them. */
        TRIAD_ASSERT(keep >= WAL_HEADER_BYTES);
        TRIAD_ASSERT(keep <= size);
        uint64_t blk = wal__block_down(keep);
        memcpy(w->tail, (const unsigned char *)map + blk, (size_t)(keep - blk));
    }
    fs_unmap(map, (size_t)size);
    map = NULL;
    if (rc != 0)
        goto err_close;
    TRIAD_ASSERT(keep >= WAL_HEADER_BYTES);
    TRIAD_ASSERT(keep <= size);
    if (!is_last) {
        TRIAD_ASSERT(!torn);
        fs_close(fd);
        wal__segs_push(w, name_lsn, keep, size);
        return 0;
    }
    uint64_t alloc = size;
    if (torn) {
        /* Made durable now: new records will follow at `keep`, and the old
         * tail must not reappear behind them after another crash. */
        if (fs_truncate(fd, keep) != 0 || fs_datasync(fd) != 0) {
            wal__err(r->errmsg, r->errlen, "wal: truncate %s: %s", path, strerror(errno));
            rc = TRIAD_EIO;
            goto err_close;
        }
        /* The next batch's prefill grows it again. */
        alloc = keep;
    }
    /* A zero tail stays: new records overwrite it from `keep` on. */
    wal__try_direct(w, path, &fd);
    w->fd = fd;
    if (w->cached_fd >= 0) {
        /* the process before may have left records only in the page cache */
        w->cached_unsynced_from = 0;
    }
    w->cur_first_lsn = name_lsn;
    w->cur_next_lsn = *lsn;
    w->cur_bytes = keep;
    w->cur_alloc_bytes = alloc;
    w->cur_records = records;
    wal__segs_push(w, name_lsn, keep, alloc);
    return 0;

err_unmap:
    fs_unmap(map, (size_t)size);
err_close:
    fs_close(fd);
    return rc;
}

static int wal__recover(struct wal_recovery *r)
{
    struct wal *w = r->w;
    char **names = NULL;
    size_t nfiles = 0;
    int rc = fs_list(w->dir, WAL_NAME_PREFIX, WAL_NAME_SUFFIX, &names, &nfiles);
    if (rc != 0) {
        wal__err(r->errmsg, r->errlen, "wal: list %s: %s", w->dir, strerror(errno));
        return rc == TRIAD_ELIMIT ? rc : TRIAD_EIO;
    }
    size_t count = nfiles; /* the segments still in play */
    uint64_t *lsns = tmalloc((count ? count : 1) * sizeof(*lsns));
    size_t plen = wal__path_max(w);
    char *path = tmalloc(plen);
    for (size_t i = 0; i < count; i++) {
        if (!wal__parse_name(names[i], &lsns[i])) {
            wal__err(r->errmsg, r->errlen, "wal: unexpected file %s/%s in the log directory",
                     w->dir, names[i]);
            rc = TRIAD_ECORRUPT;
            goto out;
        }
    }

    if (count > 0) {
        wal__seg_path(w, lsns[count - 1], path, plen);
        rc = wal__drop_torn_last(r, path, lsns[count - 1]);
        if (rc < 0)
            goto out;
        if (rc == 1)
            count--;
        rc = 0;
    }

    /* Segments whose successor starts at or before after_lsn + 1 hold only
     * records the caller already has: check their headers, skip their
     * records. The last segment is always read, for the last lsn. */
    size_t i = 0;
    for (; i + 1 < count && lsns[i + 1] <= r->after_lsn + 1; i++) {
        uint64_t bytes = 0, alloc = 0;
        wal__seg_path(w, lsns[i], path, plen);
        rc = wal__check_skipped(r, path, lsns[i], &bytes, &alloc);
        if (rc != 0)
            goto out;
        wal__segs_push(w, lsns[i], bytes, alloc);
    }
    if (i < count && lsns[i] > r->after_lsn + 1) {
        wal__seg_path(w, lsns[i], path, plen);
        wal__err(r->errmsg, r->errlen,
                 "wal: corrupt record in %s at offset %d: log starts at lsn %" PRIu64
                 " but records after lsn %" PRIu64 " are needed",
                 path, WAL_HEADER_BYTES, lsns[i], r->after_lsn);
        rc = TRIAD_ECORRUPT;
        goto out;
    }
    uint64_t lsn = 0;
    for (; i < count; i++) {
        wal__seg_path(w, lsns[i], path, plen);
        rc = wal__recover_segment(r, path, lsns[i], i + 1 == count, &lsn);
        if (rc != 0)
            goto out;
    }

    uint64_t last_lsn = count > 0 ? lsn - 1 : 0;
    w->next_lsn = TRIAD_MAX(last_lsn, r->after_lsn) + 1;
    if (count == 0) {
        rc = wal__create_segment(w, w->next_lsn, true, r->errmsg, r->errlen);
        if (rc != 0)
            goto out;
    }
    /* If after_lsn is past the log's end (a snapshot newer than the WAL),
     * the first write starts a new segment at next_lsn: wal_write_batch
     * rotates whenever the lsns jump. */

out:
    tfree(path);
    tfree(lsns);
    fs_list_free(names, nfiles);
    return rc;
}

static void wal__free(struct wal *w)
{
    wal__close_cur(w);
    tbuf_free(&w->pending);
    tmem_io_free(w->stage, w->stage_cap);
    tfree(w->segs);
    pthread_mutex_destroy(&w->seg_mu);
    tfree(w->dir);
    tfree(w);
}

int wal_open(struct wal **out, const char *dir, uint64_t segment_bytes, uint64_t after_lsn,
             wal_replay_cb cb, void *cb_arg, wal_log_cb log_cb, void *log_arg, char *errmsg,
             size_t errlen)
{
    TRIAD_ASSERT(cb != NULL);
    struct wal *w = tcalloc(1, sizeof(*w));
    w->dir = tstrndup(dir, strlen(dir));
    w->segment_bytes = segment_bytes ? segment_bytes : WAL_SEGMENT_BYTES_DEFAULT;
    atomic_init(&w->in_use, false);
    atomic_init(&w->shown_direct, false);
    atomic_init(&w->huge_io, false);
    w->fd = -1;
    w->cached_fd = -1;
    w->cached_unsynced_from = WAL_NONE_UNSYNCED;
    /* The staging buffer now, not on the first write: that may be the
     * loop's (wal_pending_stays_cached), and a huge page's first touch may
     * make the kernel compact memory. It grows only for a run too big for
     * the loop to write. */
    wal__stage_reserve(w, TMEM_IO_ALIGN);
    pthread_mutex_init(&w->seg_mu, NULL);

    int rc = fs_mkdir_p(dir);
    if (rc != 0) {
        wal__err(errmsg, errlen, "wal: create directory %s: %s", dir, strerror(errno));
        rc = TRIAD_EIO;
        goto err_free;
    }
    struct wal_recovery r = {
        .w = w,
        .after_lsn = after_lsn,
        .cb = cb,
        .cb_arg = cb_arg,
        .log_cb = log_cb,
        .log_arg = log_arg,
        .errmsg = errmsg,
        .errlen = errlen,
    };
    rc = wal__recover(&r);
    if (rc != 0)
        goto err_free;
    TRIAD_ASSERT(w->fd >= 0);
    TRIAD_ASSERT(w->next_lsn > after_lsn);
    *out = w;
    return 0;

err_free:
    wal__free(w);
    return rc;
}

void wal_close(struct wal *w)
{
    if (w != NULL)
        wal__free(w);
}

/* ---- loop thread ------------------------------------------------------- */

struct tbuf *wal_record_begin(struct wal *w)
{
    TRIAD_ASSERT(!w->open);
    if (w->pending.len == 0 && w->pending.cap == 0 && w->batch_len_hint > 0)
        tbuf_reserve(&w->pending, TRIAD_MIN(w->batch_len_hint, WAL_PENDING_HINT_BYTES_MAX));
    w->open = true;
    w->open_start = w->pending.len;
    tbuf_reserve(&w->pending, WAL_RECORD_MIN_BYTES);
    w->pending.len += WAL_RECORD_MIN_BYTES;
    return &w->pending;
}

size_t wal_record_bytes(const struct wal *w)
{
    TRIAD_ASSERT(w->open);
    return w->pending.len - w->open_start;
}

uint64_t wal_record_end(struct wal *w, uint8_t type)
{
    TRIAD_ASSERT(w->open);
    w->open = false;
    size_t len = w->pending.len - w->open_start - WAL_RECORD_MIN_BYTES;
    /* Callers bound a command's size far below this; a bigger record could
     * never be read back, so it must not be written. */
    TRIAD_ASSERT(len <= WAL_RECORD_MAX_BYTES - WAL_PAYLOAD_MIN_BYTES);
    uint64_t lsn = w->next_lsn++;
    if (w->open_start == 0)
        w->pending_first_lsn = lsn;
    unsigned char *rec = (unsigned char *)w->pending.data + w->open_start;
    tbuf_write_u32le(rec, (uint32_t)(WAL_PAYLOAD_MIN_BYTES + len));
    /* The checksum is left to wal_write_batch, on the fsync thread: the
     * loop thread is the busier one (except for the small batches it
     * writes itself under everysec). */
    tbuf_write_u32le(rec + 4, 0);
    rec[8] = type;
    tbuf_write_u64le(rec + 9, lsn);
    return lsn;
}

void wal_record_cancel(struct wal *w)
{
    TRIAD_ASSERT(w->open);
    w->open = false;
    w->pending.len = w->open_start;
}

uint64_t wal_append(struct wal *w, uint8_t type, const void *body, size_t len)
{
    TRIAD_ASSERT(len <= WAL_RECORD_MAX_BYTES - WAL_PAYLOAD_MIN_BYTES);
    struct tbuf *b = wal_record_begin(w);
    if (len > 0)
        tbuf_append(b, body, len);
    return wal_record_end(w, type);
}

uint64_t wal_last_lsn(const struct wal *w)
{
    return w->next_lsn - 1;
}

size_t wal_pending_bytes(const struct wal *w)
{
    return w->pending.len;
}

void wal_take_batch(struct wal *w, struct wal_batch *b)
{
    TRIAD_ASSERT(!w->open);
    memset(b, 0, sizeof(*b));
    if (w->pending.len == 0)
        return;
    b->data = w->pending.data;
    b->len = w->pending.len;
    b->cap = w->pending.cap;
    b->first_lsn = w->pending_first_lsn;
    b->last_lsn = w->next_lsn - 1;
    TRIAD_ASSERT(b->last_lsn >= b->first_lsn);
    w->batch_len_hint = b->len;
    memset(&w->pending, 0, sizeof(w->pending));
}

void wal_batch_free(struct wal_batch *b)
{
    tfree(b->data);
    memset(b, 0, sizeof(*b));
}

void wal_release_idle(struct wal *w)
{
    if (w->pending.len == 0 && !w->open)
        tbuf_free(&w->pending);
}

void wal_recycle_batch(struct wal *w, struct wal_batch *b)
{
    if (w->pending.data == NULL && b->cap <= WAL_SPARE_BYTES_MAX) {
        w->pending.data = b->data;
        w->pending.cap = b->cap;
        w->pending.len = 0;
        memset(b, 0, sizeof(*b));
        return;
    }
    wal_batch_free(b);
}

/* ---- fsync thread ------------------------------------------------------ */

/* Finish the current segment and start one at first_lsn. The old segment
 * is made durable first, so a later fdatasync of the new one covers every
 * earlier record and recovery may trust every segment but the last. */
static int wal__rotate(struct wal *w, uint64_t first_lsn, bool prefill, char *errmsg,
                       size_t errlen)
{
    TRIAD_ASSERT(w->fd >= 0);
    if (fs_datasync(w->fd) != 0) {
        wal__err(errmsg, errlen, "wal: fdatasync segment %" PRIu64 ": %s", w->cur_first_lsn,
                 strerror(errno));
        return TRIAD_EIO;
    }
    wal__close_cur(w);
    return wal__create_segment(w, first_lsn, prefill, errmsg, errlen);
}

/* Before a write through the page cache descriptor fd that ends at end:
 * if the WAL_PRIME_BYTES chunk holding its last byte lies wholly past the
 * records (cur_bytes), was not primed yet, is not wholly in the file
 * already (a prefill wrote it, or an earlier write past it), and ends
 * within the segment limit (or the record bigger than it), write it whole
 * with zeros. Chunks before that one the write itself covers whole, which
 * makes the kernel cache them as large folios just the same. */
static int wal__prime(struct wal *w, int fd, uint64_t end)
{
    TRIAD_ASSERT(end > 0);
    uint64_t c = (end - 1) & ~(uint64_t)(WAL_PRIME_BYTES - 1);
    if (c < w->cur_bytes || c < w->primed_to || c + WAL_PRIME_BYTES <= w->cur_alloc_bytes ||
        c + WAL_PRIME_BYTES > TRIAD_MAX(w->segment_bytes, end))
        return 0;
    if (fs_pwrite_all(fd, wal__zeros, WAL_PRIME_BYTES, c) != 0)
        return TRIAD_EIO;
    w->cur_alloc_bytes = TRIAD_MAX(w->cur_alloc_bytes, c + WAL_PRIME_BYTES);
    w->primed_to = c + WAL_PRIME_BYTES;
    return 0;
}

/* Write a run of records, data[0..len), at the current segment's logical
 * end. Buffered: as they are. Direct: in whole blocks through the staging
 * buffer, each piece being the tail (the block's bytes before cur_bytes),
 * records, and zeros to the next block boundary; the tail is then what
 * the last piece left in its last block. Pieces after the first start on
 * a block boundary, as the first ends on one. Updates cur_alloc_bytes for
 * a direct write; the caller moves cur_bytes. With `cached`, a direct
 * segment's pieces go through its page-cache descriptor instead (if it has
 * one), the same whole blocks; without, any cached blocks not yet synced
 * are written back first (see the top of this file). */
static int wal__write_run(struct wal *w, const unsigned char *data, uint64_t len, bool cached,
                          char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(len > 0);
    uint64_t pos = w->cur_bytes;
    if (!w->direct) {
        if (wal__prime(w, w->fd, pos + len) != 0 || wal__pwrite(w, data, (size_t)len, pos) != 0)
            goto err;
        return 0;
    }
    cached = cached && w->cached_fd >= 0;
    if (cached && wal__prime(w, w->cached_fd, wal__block_up(pos + len)) != 0)
        goto err;
    if (!cached && w->cached_unsynced_from != WAL_NONE_UNSYNCED) {
        /* Cached blocks not yet synced reach the device before a direct
         * write after them does: otherwise a power cut could keep the
         * later records and lose the earlier ones, a hole recovery would
         * take for damage (see the top of this file). */
        int rc = w->cached_write_back
                     ? fs_write_back(w->cached_fd, w->cached_unsynced_from,
                                     wal__block_up(pos) - w->cached_unsynced_from)
                     : fs_datasync(w->fd);
        if (rc != 0) {
            wal__err(errmsg, errlen, "wal: write back segment %" PRIu64 ": %s", w->cur_first_lsn,
                     strerror(errno));
            return TRIAD_EIO;
        }
        w->cached_unsynced_from = WAL_NONE_UNSYNCED;
    }
    while (len > 0) {
        uint64_t blk = wal__block_down(pos);
        size_t head = (size_t)(pos - blk);
        size_t n = (size_t)TRIAD_MIN(len, (uint64_t)(WAL_STAGE_BYTES_MAX - head));
        size_t used = head + n;
        size_t wlen = (size_t)wal__block_up(used);
        wal__stage_reserve(w, wlen);
        memcpy(w->stage, w->tail, head);
        memcpy(w->stage + head, data, n);
        memset(w->stage + used, 0, wlen - used);
        int rc = cached ? fs_pwrite_all(w->cached_fd, w->stage, wlen, blk)
                        : wal__pwrite(w, w->stage, wlen, blk);
        if (rc != 0) {
            pos = blk;
            goto err;
        }
        if (cached && w->cached_unsynced_from == WAL_NONE_UNSYNCED)
            w->cached_unsynced_from = blk;
        /* wal__pwrite may have fallen back to buffered writes: the bytes
         * are the same, and the rest of the run still goes as pieces. */
        size_t last = (size_t)wal__block_down(used);
        memcpy(w->tail, w->stage + last, used - last);
        w->cur_alloc_bytes = TRIAD_MAX(w->cur_alloc_bytes, blk + wlen);
        pos += n;
        data += n;
        len -= n;
    }
    return 0;

err:
    wal__err(errmsg, errlen, "wal: write segment %" PRIu64 " at offset %" PRIu64 ": %s",
             w->cur_first_lsn, pos, strerror(errno));
    return TRIAD_EIO;
}

/* The files are one thread's at a time, whichever it is: a second writer
 * or syncer would corrupt the log's state (cached_unsynced_from, cur_bytes),
 * so two at once stop the process, however rarely they meet. */
static void wal__enter(struct wal *w)
{
    TRIAD_ASSERT(!atomic_exchange_explicit(&w->in_use, true, memory_order_acquire));
}

static void wal__leave(struct wal *w)
{
    atomic_store_explicit(&w->in_use, false, memory_order_release);
}

static int wal__sync(struct wal *w, char *errmsg, size_t errlen);

/* Whether a run of records goes through the page cache on a direct
 * segment (WAL_CACHED_RUN_BYTES_MIN says why): a small unsynced one, which
 * a copy into the page cache finishes at once, or, where the staging
 * buffer has only small pages, a big synced one, whose fdatasync then
 * writes it back faster than a direct write completes. */
static bool wal__run_cached(const struct wal *w, uint64_t run_bytes, bool sync)
{
    bool big = run_bytes >= WAL_CACHED_RUN_BYTES_MIN;
    return sync ? big && !wal_huge_io(w) : !big;
}

static int wal__write_batch(struct wal *w, struct wal_batch *b, bool sync, char *errmsg,
                            size_t errlen)
{
    if (w->failed) {
        wal__err(errmsg, errlen, "wal: an earlier write or sync failed; the log is read-only");
        return TRIAD_EIO;
    }
    const unsigned char *data = (const unsigned char *)b->data;
    uint64_t lsn = b->first_lsn;
    size_t off = 0;
    int rc;
    while (off < b->len) {
        uint64_t first_bytes = 8 + (uint64_t)tbuf_read_u32le(data + off);
        /* A record never spans segments; one bigger than a segment gets a
         * fresh segment to itself. A jump in lsns (after_lsn past the end
         * of the log at open) also starts a segment, keeping each segment's
         * lsns consecutive. */
        if (lsn != w->cur_next_lsn ||
            (w->cur_records > 0 && w->cur_bytes + first_bytes > w->segment_bytes)) {
            rc = wal__rotate(w, lsn, sync, errmsg, errlen);
            if (rc != 0)
                goto err_failed;
        }
        /* The run of records that fit in this segment: one write for it. */
        size_t run_start = off;
        uint64_t run_bytes = 0, run_records = 0;
        while (off < b->len) {
            TRIAD_ASSERT(b->len - off >= WAL_RECORD_MIN_BYTES);
            uint32_t len = tbuf_read_u32le(data + off);
            uint64_t rec_bytes = 8 + (uint64_t)len;
            TRIAD_ASSERT(rec_bytes <= b->len - off);
            TRIAD_ASSERT(tbuf_read_u64le(data + off + 9) == lsn);
            /* the record's checksum, computed here off the loop thread */
            tbuf_write_u32le(b->data + off + 4, crc32c(0, data + off + 8, len));
            bool empty = w->cur_records + run_records == 0;
            if (!empty && w->cur_bytes + run_bytes + rec_bytes > w->segment_bytes)
                break;
            run_bytes += rec_bytes;
            run_records++;
            off += rec_bytes;
            lsn++;
        }
        TRIAD_ASSERT(run_records > 0);
        /* Prefilling pays only when this batch is fdatasync'd and small:
         * unsynced writes (fsync everysec or no), and big synced runs, would
         * write every byte twice for little gain. */
        if (sync && run_bytes < WAL_PREFILL_RUN_BYTES_MAX) {
            rc = wal__prefill(w, w->cur_bytes + run_bytes, errmsg, errlen);
            if (rc != 0)
                goto err_failed;
        }
        rc = wal__write_run(w, data + run_start, run_bytes, wal__run_cached(w, run_bytes, sync),
                            errmsg, errlen);
        if (rc != 0)
            goto err_failed;
        w->cur_bytes += run_bytes;
        if (w->cur_alloc_bytes < w->cur_bytes)
            w->cur_alloc_bytes = w->cur_bytes; /* an unsynced write grew the file */
        w->cur_records += run_records;
        w->cur_next_lsn = lsn;
        wal__segs_set_cur_bytes(w);
    }
    TRIAD_ASSERT(b->len == 0 || lsn == b->last_lsn + 1);
    if (sync) {
        rc = wal__sync(w, errmsg, errlen);
        if (rc != 0)
            return rc;
    }
    return 0;

err_failed:
    /* After a failed write or fsync the kernel may have dropped dirty
     * pages we can't see; no later success could prove the log intact. */
    w->failed = true;
    return rc;
}

int wal_write_batch(struct wal *w, struct wal_batch *b, bool sync, char *errmsg,
                    size_t errlen)
{
    wal__enter(w);
    int rc = wal__write_batch(w, b, sync, errmsg, errlen);
    wal__leave(w);
    return rc;
}

int wal_sync(struct wal *w, char *errmsg, size_t errlen)
{
    wal__enter(w);
    int rc = wal__sync(w, errmsg, errlen);
    wal__leave(w);
    return rc;
}

static int wal__sync(struct wal *w, char *errmsg, size_t errlen)
{
    if (w->failed || w->fd < 0) {
        wal__err(errmsg, errlen, "wal: an earlier write or sync failed; the log is read-only");
        return TRIAD_EIO;
    }
    if (fs_datasync(w->fd) != 0) {
        wal__err(errmsg, errlen, "wal: fdatasync segment %" PRIu64 ": %s", w->cur_first_lsn,
                 strerror(errno));
        w->failed = true;
        return TRIAD_EIO;
    }
    w->cached_unsynced_from = WAL_NONE_UNSYNCED;
    return 0;
}

/* ---- any thread -------------------------------------------------------- */

void wal_set_reaper(struct wal *w, struct reaper *r)
{
    pthread_mutex_lock(&w->seg_mu);
    w->reaper = r;
    pthread_mutex_unlock(&w->seg_mu);
}

void wal_remove_before(struct wal *w, uint64_t lsn)
{
    /* Take the covered segments off the list under the lock; outside it,
     * so that the fsync thread's rotation never waits on a directory
     * listing or an unlink, hand every segment file older than the first
     * one left to the reaper as one chain, oldest first: the ones just
     * taken off, and any an earlier removal could not delete, which are
     * still in the directory. A failure stops the chain there, so the log
     * never has a gap, and this removal's successor tries again. Callers
     * racing each other queue chains that overlap; each is still oldest
     * first, and a file already gone counts as deleted. */
    pthread_mutex_lock(&w->seg_mu);
    size_t n = 0;
    while (n + 1 < w->segs_count && w->segs[n + 1].first_lsn - 1 <= lsn)
        n++;
    if (n > 0) {
        memmove(w->segs, w->segs + n, (w->segs_count - n) * sizeof(*w->segs));
        w->segs_count -= n;
    }
    TRIAD_ASSERT(w->segs_count > 0);
    uint64_t first_live = w->segs[0].first_lsn;
    struct reaper *reaper = w->reaper;
    pthread_mutex_unlock(&w->seg_mu);
    if (n == 0)
        return;

    char **names;
    size_t count;
    if (fs_list(w->dir, WAL_NAME_PREFIX, WAL_NAME_SUFFIX, &names, &count) != 0)
        return; /* the files stay for the next removal */
    size_t plen = wal__path_max(w);
    char **paths = tmalloc((count > 0 ? count : 1) * sizeof(*paths));
    size_t k = 0;
    for (size_t i = 0; i < count; i++) { /* by name, hence by first lsn */
        uint64_t first;
        if (!wal__parse_name(names[i], &first) || first >= first_live)
            continue;
        paths[k] = tmalloc(plen);
        wal__seg_path(w, first, paths[k++], plen);
    }
    reaper_delete_chain(reaper, paths, k);
    for (size_t i = 0; i < k; i++)
        tfree(paths[i]);
    tfree(paths);
    fs_list_free(names, count);
}

bool wal_pending_stays_cached(const struct wal *w)
{
    uint64_t len = w->pending.len;
    /* The conditions under which wal_write_batch neither rotates (the lsns
     * follow on, and all of it fits the segment: one run) nor writes
     * direct (an unsynced run this small goes cached; without O_DIRECT
     * every write does), and, with sync false, neither prefills nor syncs. */
    return len > 0 && wal__run_cached(w, len, false) && !w->open && !w->failed && w->fd >= 0 &&
           (!w->direct || w->cached_fd >= 0) && w->pending_first_lsn == w->cur_next_lsn &&
           w->cur_bytes + len <= w->segment_bytes;
}

bool wal_direct_io(const struct wal *w)
{
    return w->direct;
}

bool wal_huge_io(const struct wal *w)
{
    return atomic_load_explicit(&w->huge_io, memory_order_relaxed);
}

void wal_io_mode(struct wal *w, bool *direct, bool *huge)
{
    *direct = atomic_load_explicit(&w->shown_direct, memory_order_relaxed);
    *huge = wal_huge_io(w);
}

void wal_stats(struct wal *w, size_t *segments, uint64_t *bytes)
{
    pthread_mutex_lock(&w->seg_mu);
    uint64_t total = 0;
    for (size_t i = 0; i < w->segs_count; i++)
        total += w->segs[i].bytes;
    *segments = w->segs_count;
    *bytes = total;
    pthread_mutex_unlock(&w->seg_mu);
}

uint64_t wal_allocated_bytes(struct wal *w)
{
    pthread_mutex_lock(&w->seg_mu);
    uint64_t total = 0;
    for (size_t i = 0; i < w->segs_count; i++)
        total += w->segs[i].alloc_bytes;
    pthread_mutex_unlock(&w->seg_mu);
    return total;
}
