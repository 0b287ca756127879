/* snap.h - snapshots: a point-in-time image of every database at a WAL lsn.
 *
 * File `snap-<lsn, 20 digits>.snap` in the data directory:
 *     [8 magic "TRIADSNP"][u32 version=1][u32 databases][u64 lsn]
 *     entries: [u8 1][u32 db][u32 klen][u32 vlen][i64 expire_ms][key][value]
 *     end:     [u8 0xFF][u64 entry count][u32 crc32c of every byte before it]
 * Written to `snap-<lsn>.tmp`, fsynced, renamed, and the directory fsynced:
 * a crash leaves either the old snapshot or the new one, never half of one.
 *
 * snap_write is meant to run in a forked child (it only reads the kvs and
 * writes one file) or synchronously (SAVE, tests).
 */
#ifndef TRIAD_SNAP_H
#define TRIAD_SNAP_H

#include <stddef.h>
#include <stdint.h>

#include "kv.h"

/* Write a snapshot of dbs[0..ndbs) as of `lsn` into dir. Keys already
 * expired at now_ms are left out. 0 or TRIAD_EIO (errmsg set). On success
 * *bytes_out (may be NULL) is the file size. */
int snap_write(const char *dir, uint64_t lsn, struct kv **dbs, int ndbs, int64_t now_ms,
               uint64_t *bytes_out, char *errmsg, size_t errlen);

/* Load the newest snapshot in dir into the (empty) dbs, setting *lsn_out
 * (0 and no change if there is none). A snapshot that fails its checks
 * returns TRIAD_ECORRUPT with errmsg naming the file and offset. Entries for
 * databases >= ndbs are an error too (TRIAD_ECORRUPT). Stray .tmp files are
 * removed. */
int snap_load_latest(const char *dir, struct kv **dbs, int ndbs, uint64_t *lsn_out,
                     char *errmsg, size_t errlen);

/* Remove every snapshot older than keep_lsn: hand its file to the reaper
 * (reaper.h), or delete it before returning if reaper is NULL. 0, or
 * TRIAD_EIO if the directory could not be listed. */
struct reaper;
int snap_remove_older(const char *dir, uint64_t keep_lsn, struct reaper *reaper);

#endif
