/* raftlog.h - the durable storage of one Raft node: its hard state, its
 * latest snapshot and the log after it, on top of the WAL (wal.h).
 *
 * The server persists each raft_ready with raftlog_persist() and learns
 * from the returned lsn when it is durable (its fsync thread writes the
 * WAL's batches, as for any WAL). A restarted node opens the directory with
 * raftlog_open() and gets back, through raftlog_disk(), exactly the
 * struct node_disk (node.h) that the durable records describe.
 *
 * ---- The directory (one per node; nothing else may live in it) ----
 *
 *     wal-<first lsn, 20 digits>.log            WAL segments (wal.h)
 *     raftsnap-<index, 20>-<lsn, 20>.snap       the snapshot whose record
 *                                               has that lsn
 *     raftsnap-<index, 20>-<lsn, 20>.tmp        one being written
 *
 * The record's lsn is in the file's name, so two snapshots at one index
 * (a reinstall after a crash) never share a file: renaming over a file a
 * durable record still names could swap its bytes under the record.
 * Every raftsnap-* file but the one the latest durable record names is
 * removed at open (superseded, or written by a persist that a crash cut
 * short), and superseded ones again by raftlog_compact().
 *
 * ---- WAL records (bodies; wal.c frames each with its lsn and crc32c) ----
 *
 * All integers little-endian. The types do not clash with cmd's
 * CMD_LOG_BATCH (1); a raftlog directory holds no other records.
 *
 *   RAFTLOG_REC_HARD_STATE (16), 24 bytes:
 *       [u64 term][u64 vote][u64 commit]
 *   RAFTLOG_REC_ENTRIES (17), 12 + n * 21 + data bytes:
 *       [u64 truncate_from][u32 n]
 *       n * {[u64 term][u64 index][u8 type][u32 len][len bytes]}
 *       Drop every entry >= truncate_from, then append the n entries;
 *       entry i has index truncate_from + i. n may be 0 (a truncation
 *       alone). A ready's entries are split over several records of at
 *       most RAFTLOG_ENTRIES_RECORD_BYTES_MAX (a record holds at least one
 *       entry), the later ones truncating nothing.
 *   RAFTLOG_REC_SNAPSHOT (18), 37 + conf bytes:
 *       [u8 flags][u64 index][u64 term][u64 last][u64 len]
 *       [u32 crc32c of the snapshot bytes][conf as raft_conf_encode, to the end]
 *       flags bit 0 (RAFTLOG_SNAP_INSTALL): a leader's snapshot, the whole
 *       log is dropped; otherwise a local compaction, entries <= index are
 *       dropped. `last` is the log's last index once the record is applied
 *       (install: index; compaction: max(log's last, index)): checked at
 *       replay, and what tells a replay that starts after compaction whether
 *       entries follow the snapshot. Appended only once the snapshot file is
 *       durable under its final name.
 *
 * ---- Snapshot file ----
 *
 *     [8 magic "TRIADRSN"][u32 version=1][u32 reserved=0]
 *     [u64 index][u64 term][u64 len][u32 crc32c of the bytes]
 *     [u32 crc32c of the 44 header bytes before it]       (48-byte header)
 *     [len bytes: the state machine's snapshot, as the core gave it]
 *
 * Written as snap.c writes its files: to the .tmp name, fsynced, renamed,
 * the directory fsynced. Opening checks the header against the record
 * (index, term, len, crc), the file's size and the bytes' crc.
 *
 * ---- Order of one ready's records: SNAPSHOT, ENTRIES..., HARD_STATE ----
 *
 * A crash keeps a prefix of what was appended (wal.c truncates a torn
 * tail; damage elsewhere refuses to open), so every prefix must be a safe
 * state. Nothing of the ready was acted on (its messages go out only once
 * all of it is durable), so a prefix is safe if it is a state the node
 * could have reached by itself:
 *   - The snapshot first: its file is durable before its record, and
 *     entries that follow an install need the install before them.
 *   - Entries before the hard state: a hard state's commit may cover this
 *     ready's entries, and may be meant for entries this ready writes in
 *     place of stale ones (a follower truncating a deposed leader's
 *     tail). Were the hard state first, a crash between the two would
 *     leave a commit index over entries that are not durable, or worse
 *     over the stale ones this ready was to replace: a restarted node
 *     would apply entries that were never committed. With entries first,
 *     a lost hard state leaves the older, smaller commit.
 *   - A kept prefix of entries without the hard state may hold entries of
 *     a term newer than the durable term; raft_restore() takes that term
 *     without a vote (no vote in it was sent, since nothing of the ready
 *     was). Likewise a kept install may carry a term newer than the
 *     durable one; that is safe for the same reason (a leader of that term
 *     already holds a majority's votes in it), though raft_restore() does
 *     not lift its term to the snapshot's.
 *
 * ---- Compaction ----
 *
 * Every entry of the image remembers the lsn of the record that wrote it;
 * the oldest record still needed is the oldest of: the writer of the
 * entry after the snapshot, the latest snapshot record, the latest hard
 * state record. raftlog_compact() deletes the segments wholly older than
 * that (wal_remove_before), as of the newest state known durable, and
 * re-appends the hard state when an old one is all that holds a segment.
 * A segment cut at an arbitrary record can leave, at the head of the log,
 * records older than the oldest needed one: replay then starts "unsure"
 * and treats what the log says before its first snapshot as a window on
 * the true log, and refuses to open if at its end the log after the
 * snapshot is not wholly known (segments lost).
 *
 * Threads: every function here runs on the loop thread, except that the
 * fsync thread may take and write batches of raftlog_wal() (wal.h).
 */
#ifndef TRIAD_RAFTLOG_H
#define TRIAD_RAFTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* raft.h is pure types and the core's API: store/ borrows its types, not
 * node/'s (node/ sits above store/, and includes never point back). */
#include "../core/raft.h"
#include "wal.h"

#define RAFTLOG_REC_HARD_STATE 16
#define RAFTLOG_REC_ENTRIES 17
#define RAFTLOG_REC_SNAPSHOT 18

#define RAFTLOG_SNAP_INSTALL 0x01u

/* An ENTRIES record's body holds at most this much, unless one entry alone
 * is bigger (an entry is at most RAFT_ENTRY_BYTES_MAX). */
#define RAFTLOG_ENTRIES_RECORD_BYTES_MAX (4u * 1024 * 1024)

struct raftlog;

/* Open (creating the directory if needed) and replay the WAL into the
 * in-memory image: hard state, latest snapshot (its bytes loaded from its
 * file and checked), the entries after it. segment_bytes: as wal_open (0:
 * the default). log_cb (may be NULL) gets a line for a torn WAL tail that
 * was truncated and for every stale snapshot file removed. A record that
 * does not fit the log (a hole, entries going back into the snapshot, an
 * unknown type, bad framing), a log whose oldest records are missing, or
 * a snapshot file that is missing or fails its checks: TRIAD_ECORRUPT
 * with errmsg naming the problem (and the file). TRIAD_EIO for a failed
 * system call. On failure nothing in the directory has been removed
 * (beyond what wal_open itself truncates). */
int raftlog_open(struct raftlog **out, const char *dir, uint64_t segment_bytes,
                 wal_log_cb log_cb, void *log_arg, char *errmsg, size_t errlen);

/* Close (the caller has written and synced every batch it wants kept). */
void raftlog_close(struct raftlog *rl);

/* The disk as found at open, for node_new(), in struct node_disk's
 * fields (node.h is above store/, hence the out-parameters):
 *     struct node_disk d;
 *     raftlog_disk(rl, &d.hs, &d.snapshot, &d.entries, &d.n_entries);
 * *snapshot is NULL when there is none. Pointers are borrowed: valid
 * until the next raftlog_persist, raftlog_compact, raftlog_release_disk or
 * raftlog_close. Allowed only before the first of those: after it, the
 * image keeps no entry data and no snapshot bytes (the core holds them; a
 * second copy of the log and of the state machine's snapshot would double
 * the memory for nothing). */
void raftlog_disk(const struct raftlog *rl, struct raft_hard_state *hs,
                  const struct raft_snapshot **snapshot, const struct raft_entry **entries,
                  size_t *n_entries);

/* Drop the entry data and snapshot bytes loaded at open (node_new has
 * copied them). raftlog_persist does it too. */
void raftlog_release_disk(struct raftlog *rl);

/* Persist rd (only if rd->persist; rd is borrowed for the call): if
 * rd->snapshot, its file is written and made durable now, synchronously;
 * then its record, the entries (rd->truncate_from, rd->entries) and the
 * hard state (when rd->hs_changed or it differs from the durable one) are
 * appended to the WAL's pending buffer, in that order (see above). *lsn is
 * the last lsn appended: once the WAL is durable up to it, so is all of rd
 * (if nothing was appended, the WAL's last lsn). A local compaction not
 * newer than the recorded snapshot is skipped (a newer snapshot already
 * covers it). TRIAD_EIO if the snapshot file could not be made durable
 * (errmsg says why): then nothing was appended and the image is as before.
 * rd's contents breaking the core's contract (a hole, entries into the
 * snapshot) stop the node with an assertion. */
int raftlog_persist(struct raftlog *rl, const struct raft_ready *rd, uint64_t *lsn,
                    char *errmsg, size_t errlen);

/* A compaction's snapshot file written elsewhere, off the caller's thread
 * (the server: by the forked child that serialized the state machine).
 * raftlog_snap_prepare writes s's file (index, term, bytes) into dir under
 * a name of its own, makes it durable and sets *crc, the bytes' checksum;
 * it touches nothing but that file, so a child process may call it.
 * raftlog_snap_prepared then tells the log: the next persist of a
 * compaction to a snapshot of that index, term and length renames the
 * file into place instead of writing the bytes again (other persists of a
 * snapshot delete it; so does the next open, if no persist came). */
int raftlog_snap_prepare(const char *dir, const struct raft_snapshot *s, uint32_t *crc,
                         char *errmsg, size_t errlen);
void raftlog_snap_prepared(struct raftlog *rl, const struct raft_snapshot *s, uint32_t crc);
/* The file raftlog_snap_prepare would write for index, if there is one,
 * goes (on the reaper): its writer failed or its snapshot is not wanted.
 * (A prepared file the persist cannot rename into place is not needed
 * either: the persist writes the snapshot's bytes itself.) */
void raftlog_snap_discard(struct raftlog *rl, raft_index index);

/* Reclaim space, given that every record with lsn <= durable_lsn is
 * durable (wal_write_batch with sync returned for it). Deletes snapshot
 * files superseded by a durable record, and the WAL segments that only
 * hold records no longer needed by the newest durable state; may append a
 * hard state record (so that an old one no longer holds its segment),
 * which the next batch carries. Cheap when there is nothing to do: call it
 * after each durable persist. The files go to the reaper set with
 * raftlog_set_reaper (or are deleted before it returns). A snapshot file
 * that cannot be deleted is removed at the next open; a segment that
 * cannot be deleted stays, with every newer one (never a gap), until a
 * later compaction deletes them (wal_remove_before). */
void raftlog_compact(struct raftlog *rl, uint64_t durable_lsn);

/* The reaper (reaper.h) that deletes the files compaction frees, the
 * WAL's segments with them; NULL (the default) deletes them at once. It
 * must outlive the log. */
struct reaper;
void raftlog_set_reaper(struct raftlog *rl, struct reaper *r);

/* The WAL underneath, for the server's fsync thread (wal_take_batch on the
 * loop thread, wal_write_batch on the fsync thread) and wal_stats. */
struct wal *raftlog_wal(struct raftlog *rl);

/* What the image holds now (durable or pending in the WAL). */
struct raft_hard_state raftlog_hard_state(const struct raftlog *rl);
raft_index raftlog_snapshot_index(const struct raftlog *rl); /* 0: none */
raft_index raftlog_last_index(const struct raftlog *rl);

#endif
