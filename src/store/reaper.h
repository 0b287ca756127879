/* reaper.h - deletes files on a thread of its own.
 *
 * Deleting a big file is slow: the filesystem frees its extents and the
 * kernel drops its cached pages before unlink() returns. A 64 MiB WAL
 * segment or a 100 MB snapshot takes tens of milliseconds, seen at 25 to
 * 55 ms on the CI machine's disk, and an event loop that waits that long
 * holds every client's reply. Redis hands such work to a background
 * thread for the same reason (its bio threads).
 *
 * The loop gives the reaper the files a snapshot made obsolete, one at a
 * time or as a chain: the files of a chain are deleted in the order given,
 * and once one cannot be deleted the rest of that chain stays. A log hands
 * over its old segments oldest first as one chain, so neither a crash nor
 * a failed deletion ever leaves a gap in it; the segments that stayed are
 * found again by the log's next removal (wal_remove_before lists the
 * directory). A file already gone counts as deleted. The reaper counts
 * failures and keeps the last one's message for its owner to log.
 *
 * The queue holds at most REAPER_QUEUE_MAX paths; the files of a chain
 * given beyond that stay where they are (counted as kept), for the next
 * removal to find. A crash part-way through a chain leaves its oldest
 * files deleted and the rest in place, as long as the filesystem keeps
 * unlinks in order, as journalled ones (ext4, XFS) do.
 *
 * Every function may be called from any thread. A NULL reaper deletes at
 * once on the calling thread, for tools and tests that have no loop.
 */
#ifndef TRIAD_REAPER_H
#define TRIAD_REAPER_H

#include <stddef.h>
#include <stdint.h>

#define REAPER_QUEUE_MAX 65536

struct reaper;

/* Starts the thread. 0, or TRIAD_EIO with errmsg set. */
int reaper_new(struct reaper **out, char *errmsg, size_t errlen);

/* Deletes what it was given, then stops its thread and frees it. */
void reaper_free(struct reaper *r);

/* Queues path (a copy is taken) for deletion after everything given
 * before it. */
void reaper_delete(struct reaper *r, const char *path);

/* Queues paths[0..n) (copies are taken) as one chain, after everything
 * given before: deleted in this order, stopping at the first that cannot
 * be deleted. */
void reaper_delete_chain(struct reaper *r, char *const *paths, size_t n);

/* Returns once every file given so far has been dealt with. */
void reaper_wait(struct reaper *r);

struct reaper_stats {
    uint64_t pending; /* given and not yet dealt with */
    uint64_t deleted; /* deleted, or already gone */
    uint64_t failed;  /* could not be deleted */
    uint64_t kept;    /* left in place: after an earlier file of its chain failed,
                       * or past the queue's limit */
};

/* The counts, and the message of the last failure ("" if none) in
 * last_error. */
void reaper_stats(struct reaper *r, struct reaper_stats *st, char *last_error, size_t len);

#endif
