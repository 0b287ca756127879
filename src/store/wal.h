/* wal.h - the segmented write-ahead log.
 *
 * On disk: a directory of segment files `wal-<first lsn, 20 digits>.log`.
 * Each segment starts with a header
 *     [8 magic "TRIADWAL"][u32 version=1][u32 reserved=0][u64 first_lsn]
 * followed by records
 *     [u32 length][u32 crc32c][u8 type][payload]
 * where length counts type+payload, crc32c covers type+payload, and the
 * payload begins with the record's u64 lsn (little-endian) followed by the
 * caller's body. LSNs are consecutive from 1.
 *
 * Segments are zero-prefilled ahead of the last record (real zero bytes,
 * written and synced by the fsync thread), so that most fdatasyncs flush
 * data into blocks the file already has instead of growing it. A length
 * of 0 is never a valid record: zeros after the last record of a segment
 * are its clean end, in any segment, and are left in place.
 *
 * Where the filesystem allows, the current segment is written with
 * O_DIRECT in whole 4 KiB blocks (the last one of each write padded with
 * zeros past the records, a clean end; the next write rewrites it), so a
 * segment's file size is then rounded up to a block; some runs go through
 * the page cache in the same whole blocks (WAL_CACHED_RUN_BYTES_MIN). A
 * write through the page cache may grow the file with zeros to the end of
 * a 64 KiB chunk (WAL_PRIME_BYTES).
 * Otherwise, and for the header, writes go through the page cache.
 *
 * Threads: the loop thread appends records into an in-memory pending
 * buffer (wal_append) and, once per loop turn, takes it as a batch
 * (wal_take_batch). The fsync thread writes a batch to the files and makes
 * it durable (wal_write_batch, wal_sync). Only the fsync thread touches the
 * file descriptors after wal_open returns, except for a batch the loop
 * writes itself while that thread is idle (wal_pending_stays_cached); the
 * segment list is guarded by a mutex so that wal_remove_before may be
 * called from the loop thread; the files it removes are deleted by a
 * reaper thread (reaper.h), since deleting one takes tens of milliseconds.
 *
 * All file access goes through fs.h so tests can inject faults.
 */
#ifndef TRIAD_WAL_H
#define TRIAD_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WAL_SEGMENT_BYTES_DEFAULT (64ull * 1024 * 1024)
#define WAL_RECORD_MAX_BYTES (1024ull * 1024 * 1024 + 4096) /* one command's bytes + framing */
#define WAL_HEADER_BYTES 24
#define WAL_RECORD_OVERHEAD 9 /* u32 length + u32 crc + u8 type */
/* Before a batch is written, the current segment's file holds zeros at
 * least this far past the batch's end (never past the segment limit, nor
 * past a lone record bigger than a segment)... */
#define WAL_PREFILL_AHEAD_BYTES (4ull * 1024 * 1024)
/* ...and when it must grow for that, it grows this much further, so that
 * growing (which costs a journal commit in the fdatasync) is rare. */
#define WAL_PREFILL_CHUNK_BYTES (4ull * 1024 * 1024)
/* A synced run of records at least this big is appended without prefill:
 * its fdatasync moves enough data that the journal commit no longer
 * dominates, while writing zeros first would double its disk traffic. */
#define WAL_PREFILL_RUN_BYTES_MAX (128ull * 1024)
/* Where the segment is open for direct I/O, an unsynced run smaller than
 * this goes through the page cache: its write is all that replies under
 * `fsync everysec` wait for, and a copy into the cache returns without
 * waiting for the device. Bigger unsynced runs stay direct, sparing the
 * CPU the cache's bookkeeping.
 *
 * Synced runs go direct, from a staging buffer in huge pages
 * (tmem_io_alloc): durable 1 KiB SETs at pipeline 16, whose runs are
 * hundreds of KiB, made 11% more ops/s that way than through the page
 * cache. Where the buffer is in small pages (wal_huge_io), each 4 KiB page
 * of it is a piece of the device request, and a 256 KiB run took
 * 0.72 ms direct and 0.53 ms cached, write and fdatasync together: there
 * a synced run at least this big goes through the page cache instead (a
 * 16 KiB run took 0.15 ms either way, and smaller ones are faster direct).
 *
 * Only where a page is a 4 KiB block: with bigger pages the kernel would
 * read each page before a write of part of it. */
#define WAL_CACHED_RUN_BYTES_MIN (128ull * 1024)

/* A write through the page cache whose last byte falls in a new aligned
 * chunk this big, past the log's end and the file's, first writes that
 * chunk whole with zeros: a filesystem with large folios (XFS, ext4 from
 * Linux 6.16) then caches it as one, which the records' small writes
 * after it fill, and writeback sends to the device as one piece instead of
 * one per 4 KiB page. Writing 64 MiB in 1500-byte writes (a loop turn's
 * few records under `fsync everysec`) and an fdatasync took 92 + 175 ms
 * in pages, 65 + 90 ms in primed chunks. Where the kernel keeps small
 * pages, it costs a copy of 64 KiB of zeros per 64 KiB of log. */
#define WAL_PRIME_BYTES (64ull * 1024)

struct wal;

/* A record found during recovery: body excludes the lsn (borrowed, valid
 * during the callback). Return non-zero to abort recovery with that code. */
typedef int (*wal_replay_cb)(void *arg, uint64_t lsn, uint8_t type, const void *body,
                             size_t len);

struct wal_batch {
    char *data;        /* owned by the batch; freed by wal_batch_free */
    size_t len;
    size_t cap;        /* bytes allocated at data */
    uint64_t first_lsn; /* 0 if empty */
    uint64_t last_lsn;
};

/* Open (creating the directory if needed) and recover: for every record
 * with lsn > after_lsn, in order, call cb. Zeros after a segment's last
 * record are its clean end (no log line, nothing truncated; in the last
 * segment new records overwrite them). A torn or checksum-failing record
 * at the very tail of the last segment is truncated away, with a line in
 * errmsg-like form written through log_cb (may be NULL). A bad record
 * anywhere else returns TRIAD_ECORRUPT with errmsg naming the file and
 * offset. After recovery, new records continue from the last lsn found (or
 * from after_lsn + 1 if the log holds nothing newer, e.g. after a snapshot
 * that covered every segment). */
typedef void (*wal_log_cb)(void *arg, const char *msg);
int wal_open(struct wal **out, const char *dir, uint64_t segment_bytes, uint64_t after_lsn,
             wal_replay_cb cb, void *cb_arg, wal_log_cb log_cb, void *log_arg, char *errmsg,
             size_t errlen);
/* Close the files (the caller has written and synced every batch first). */
void wal_close(struct wal *w);

/* Loop thread: frame a record into the pending buffer and return its lsn. */
uint64_t wal_append(struct wal *w, uint8_t type, const void *body, size_t len);
/* Loop thread: build a record in place instead, saving the copy of its
 * body: wal_record_begin reserves the framing in the pending buffer and
 * returns that buffer; append the body to it; wal_record_end frames it
 * and returns its lsn, or wal_record_cancel drops it. No other record may
 * be appended or taken in between. */
struct tbuf *wal_record_begin(struct wal *w);
/* The open record's bytes so far, framing included. */
size_t wal_record_bytes(const struct wal *w);
uint64_t wal_record_end(struct wal *w, uint8_t type);
void wal_record_cancel(struct wal *w);
/* Loop thread: the lsn of the last appended record (0 if none ever). */
uint64_t wal_last_lsn(const struct wal *w);
/* Loop thread: bytes pending (appended, not yet taken). */
size_t wal_pending_bytes(const struct wal *w);
/* Loop thread: move the pending records into *b (empty if nothing pending). */
void wal_take_batch(struct wal *w, struct wal_batch *b);
void wal_batch_free(struct wal_batch *b);
/* Loop thread: give a written batch's buffer back, to hold the next
 * pending records; it is freed instead if the pending records already
 * have a buffer or it is bigger than WAL_SPARE_BYTES_MAX. A fresh buffer
 * per batch would cost the loop page faults and realloc copies for every
 * byte of log, which at hundreds of MB/s is a fifth of its time. */
#define WAL_SPARE_BYTES_MAX (16u * 1024 * 1024)
void wal_recycle_batch(struct wal *w, struct wal_batch *b);
/* Loop thread: free the pending buffer if it holds nothing, so that an
 * idle server keeps no log buffer. */
void wal_release_idle(struct wal *w);

/* Fsync thread: append the batch to the current segment (starting a new
 * segment, header and directory fsync included, whenever the current one
 * would exceed segment_bytes; a record never spans segments), then
 * fdatasync if `sync`. 0 or TRIAD_EIO (errmsg set). The records are
 * written at the segment's logical end, over its prefill, after extending
 * the prefill if it runs short (see WAL_PREFILL_AHEAD_BYTES); segment_bytes
 * limits the logical size (the file, with O_DIRECT, may end up to a block
 * past it). The records' checksums are computed here, into the batch:
 * wal_append leaves them to this thread, so that the loop does less. */
int wal_write_batch(struct wal *w, struct wal_batch *b, bool sync, char *errmsg,
                    size_t errlen);
/* Loop thread, while no other thread writes or syncs the log (the fsync
 * thread is idle, and the caller holds the lock it needs to start
 * anything until the write is done): whether
 * wal_write_batch(sync false) of the pending records, taken now, would only
 * copy them into the page cache: one run under WAL_CACHED_RUN_BYTES_MIN,
 * written through the buffered descriptor, in the current segment, with no
 * new segment, prefill, write-back or direct write. Such a write seldom
 * waits for the device, so under `fsync everysec` the loop makes it itself
 * before replying, as Redis writes its AOF, instead of handing the records
 * to the fsync thread and waiting for it. */
bool wal_pending_stays_cached(const struct wal *w);
/* Fsync thread: fdatasync the current segment. */
int wal_sync(struct wal *w, char *errmsg, size_t errlen);

/* Any thread: delete every segment all of whose records have lsn <= lsn
 * (after a snapshot at lsn is durable). Never deletes the current segment.
 * The segments leave the log at once; their files go to the reaper set
 * with wal_set_reaper, or are deleted before this returns if none is,
 * oldest first and stopping at one that cannot be deleted: that one and
 * every newer file stay, never a gap, and are deleted by the next call
 * that removes a segment (or, after a restart, by the first). */
void wal_remove_before(struct wal *w, uint64_t lsn);

/* Any thread: the reaper that deletes removed segments from now on
 * (reaper.h); NULL deletes them at once. It must outlive the log. */
struct reaper;
void wal_set_reaper(struct wal *w, struct reaper *r);

/* Any thread: number of segment files and their total bytes: logical
 * bytes (headers and records), not counting the prefill. A segment skipped
 * at open (wholly before after_lsn) counts up to its last non-zero byte. */
void wal_stats(struct wal *w, size_t *segments, uint64_t *bytes);
/* Any thread: the segment files' total size on disk, prefill and primed
 * chunks included. */
uint64_t wal_allocated_bytes(struct wal *w);
/* Fsync thread (or any thread while none writes): whether the current
 * segment has an O_DIRECT descriptor, for the runs that go direct (false:
 * every write goes through the page cache, as on a filesystem without
 * direct I/O). */
bool wal_direct_io(const struct wal *w);
/* Any thread: whether the staging buffer for direct writes is in huge
 * pages (tmem_io_huge, asked when it is allocated: at open, and when it
 * grows). Synced runs then all go direct (WAL_CACHED_RUN_BYTES_MIN).
 * fs_faults.io_pages can force it. */
bool wal_huge_io(const struct wal *w);
/* Any thread: wal_direct_io as of its last lasting change (a new
 * segment, a fallback from O_DIRECT), and wal_huge_io, for INFO. */
void wal_io_mode(struct wal *w, bool *direct, bool *huge);

#endif
