/* raftlog.c - a Raft node's durable storage (see raftlog.h for the format,
 * the order of records and compaction).
 *
 * One function applies a record to the in-memory image (raftlog__apply), and it
 * serves both directions: replay calls it on each record the WAL hands
 * back, and raftlog_persist calls it on the very bytes it has just
 * appended. The image after a persist is therefore, by construction, what
 * a reopen will rebuild from the same records.
 *
 * The image is a window on the log: ents[i] has index first + i. Once the
 * replay is "known" (always outside replay) first == snapshot index + 1.
 * A replay that starts after compaction starts unknown (see
 * raftlog__maybe_known).
 */
#include "raftlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../common/buf.h"
#include "../common/crc32c.h"
#include "../common/defs.h"
#include "../common/err.h"
#include "../common/mem.h"
#include "fs.h"
#include "reaper.h"

#define RAFTLOG_HS_BYTES 24
#define RAFTLOG_ENTRIES_HEADER_BYTES 12 /* truncate_from, n */
#define RAFTLOG_ENTRY_HEADER_BYTES 21   /* term, index, type, len */
#define RAFTLOG_SNAP_REC_FIXED_BYTES 37 /* flags, index, term, last, len, crc */

#define RAFTLOG_SNAP_MAGIC "TRIADRSN"
#define RAFTLOG_SNAP_VERSION 1
#define RAFTLOG_SNAP_HEADER_BYTES 48
#define RAFTLOG_SNAP_PREFIX "raftsnap-"
#define RAFTLOG_SNAP_SUFFIX ".snap"
/* A snapshot file written elsewhere (raftlog_snap_prepare), named for its
 * index and lsn 0, until a persist renames it into place. */
#define RAFTLOG_PREPARED_SUFFIX ".pre"
#define RAFTLOG_TMP_SUFFIX ".tmp"
/* "raftsnap-" + 20 digits + "-" + 20 digits + ".snap" (".tmp" is shorter) */
#define RAFTLOG_SNAP_NAME_LEN (9 + 20 + 1 + 20 + 5)
/* wal.c's segment names, "wal-<20 digits>.log": read here only to learn the
 * oldest lsn left after compaction (see raftlog__oldest_lsn). */
#define RAFTLOG_WAL_PREFIX "wal-"
#define RAFTLOG_WAL_SUFFIX ".log"
#define RAFTLOG_WAL_NAME_LEN (4 + 20 + 4)

/* Durable points remembered for compaction; older ones are dropped when
 * full, which only delays compaction (see raftlog_compact). */
#define RAFTLOG_MARKS_MAX 64
#define RAFTLOG_MSG_MAX 512

#define RAFTLOG_NONE UINT64_MAX

_Static_assert(RAFTLOG_HS_BYTES == 8 + 8 + 8, "hard state layout");
_Static_assert(RAFTLOG_ENTRY_HEADER_BYTES == 8 + 8 + 1 + 4, "entry layout");
_Static_assert(RAFTLOG_SNAP_REC_FIXED_BYTES == 1 + 8 + 8 + 8 + 8 + 4, "snapshot record layout");
_Static_assert(RAFTLOG_SNAP_HEADER_BYTES == 8 + 4 + 4 + 8 + 8 + 8 + 4 + 4, "snapshot header");
_Static_assert(sizeof(RAFTLOG_SNAP_MAGIC) - 1 == 8, "magic is 8 bytes");
/* The biggest record we write: one entry alone (up to RAFT_ENTRY_BYTES_MAX),
 * or a chunk of several (up to RAFTLOG_ENTRIES_RECORD_BYTES_MAX); either
 * must fit a WAL record. */
_Static_assert((uint64_t)RAFTLOG_ENTRIES_HEADER_BYTES + RAFTLOG_ENTRY_HEADER_BYTES +
                       RAFT_ENTRY_BYTES_MAX <=
                   WAL_RECORD_MAX_BYTES - 9,
               "an entry fits one WAL record");
_Static_assert(RAFTLOG_ENTRIES_RECORD_BYTES_MAX <= WAL_RECORD_MAX_BYTES - 9,
               "a chunk fits one WAL record");
_Static_assert(RAFTLOG_SNAP_REC_FIXED_BYTES + RAFT_CONF_BYTES_MAX < 4096, "small snapshot record");

struct raftlog_mark {
    uint64_t lsn;  /* the WAL's last lsn at this point */
    uint64_t need; /* the oldest record the image needed then (RAFTLOG_NONE: none) */
};

struct raftlog_old_snap {
    char *path;
    uint64_t superseded_lsn; /* the record of the snapshot that replaced it */
};

struct raftlog {
    char *dir;
    struct wal *wal;

    /* ---- the image ---- */
    struct raft_hard_state hs;
    uint64_t hs_lsn; /* 0: no record */

    bool has_snap;
    struct raft_snapshot snap; /* data loaded at open; NULL once released */
    uint32_t snap_crc;
    uint64_t snap_lsn;

    raft_index first;         /* index of ents[0] (or of the next entry if none) */
    struct raft_entry *ents;  /* data owned (NULL once released) */
    uint64_t *lsns;           /* lsns[i]: the record that wrote ents[i] */
    size_t n, cap;

    bool released;

    /* ---- replay ---- */
    bool known; /* the log after the snapshot is wholly in the window */
    bool seen;  /* the window's bounds mean something (first, last) */
    uint64_t oldest_lsn;
    char why[RAFTLOG_MSG_MAX];

    /* ---- compaction ---- */
    struct raftlog_mark marks[RAFTLOG_MARKS_MAX];
    size_t n_marks;
    struct raftlog_old_snap *old;
    size_t n_old, cap_old;
    struct reaper *reaper; /* deletes what compaction frees; NULL: at once */
    /* a snapshot file raftlog_snap_prepare wrote, for the next persist of
     * a compaction to that snapshot */
    struct {
        bool set;
        raft_index index;
        raft_term term;
        uint64_t len;
        uint32_t crc;
    } prepared;

    struct tbuf scratch; /* a record's body being encoded */
};

#define raftlog__err triad_errf

/* Replay's reason for refusing a record, kept in rl->why: wal.c writes its
 * own line into errmsg when the callback fails, and ours replaces it. */
static int raftlog__corrupt(struct raftlog *rl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int raftlog__corrupt(struct raftlog *rl, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rl->why, sizeof(rl->why), fmt, ap);
    va_end(ap);
    return TRIAD_ECORRUPT;
}

static char *raftlog__snap_path(const char *dir, raft_index index, uint64_t lsn,
                                const char *suffix)
{
    size_t n = strlen(dir) + 1 + RAFTLOG_SNAP_NAME_LEN + 1;
    char *p = tmalloc(n);
    int w = snprintf(p, n, "%s/" RAFTLOG_SNAP_PREFIX "%020" PRIu64 "-%020" PRIu64 "%s", dir,
                     index, lsn, suffix);
    TRIAD_ASSERT(w > 0 && (size_t)w < n);
    return p;
}

static raft_index raftlog__base(const struct raftlog *rl)
{
    return rl->has_snap ? rl->snap.index : 0;
}

/* The last index of the window (first - 1 when empty). */
static raft_index raftlog__last(const struct raftlog *rl)
{
    return rl->first + rl->n - 1;
}

/* The oldest record the image needs: every entry's writer (the first
 * entry's is the oldest: a record rewrites everything after its
 * truncate_from, so writers grow with the index), the snapshot record,
 * the hard state record. RAFTLOG_NONE (compact nothing) for a log with
 * neither snapshot nor entry: it is tiny, and keeping its head whole means
 * that a replay which starts after lsn 1 always meets a snapshot or an
 * entries record, so one whose head was lost can be told apart. */
static uint64_t raftlog__need(const struct raftlog *rl)
{
    if (!rl->has_snap && rl->n == 0)
        return RAFTLOG_NONE;
    uint64_t need = RAFTLOG_NONE;
    if (rl->n > 0)
        need = rl->lsns[0];
    if (rl->has_snap)
        need = TRIAD_MIN(need, rl->snap_lsn);
    if (rl->hs_lsn != 0)
        need = TRIAD_MIN(need, rl->hs_lsn);
    return need;
}

/* ---- the window ---------------------------------------------------------- */

static void raftlog__free_data(struct raft_entry *e)
{
    tfree(e->data);
    e->data = NULL;
}

/* Drop every entry with index >= index (first <= index). */
static void raftlog__drop_from(struct raftlog *rl, raft_index index)
{
    TRIAD_ASSERT(index >= rl->first);
    size_t keep = (size_t)TRIAD_MIN(index - rl->first, (raft_index)rl->n);
    for (size_t i = keep; i < rl->n; i++)
        raftlog__free_data(&rl->ents[i]);
    rl->n = keep;
}

/* Drop every entry with index <= index; the window then starts after it. */
static void raftlog__drop_upto(struct raftlog *rl, raft_index index)
{
    if (index < rl->first)
        return;
    size_t k = (size_t)TRIAD_MIN(index - rl->first + 1, (raft_index)rl->n);
    for (size_t i = 0; i < k; i++)
        raftlog__free_data(&rl->ents[i]);
    memmove(rl->ents, rl->ents + k, (rl->n - k) * sizeof(*rl->ents));
    memmove(rl->lsns, rl->lsns + k, (rl->n - k) * sizeof(*rl->lsns));
    rl->n -= k;
    rl->first = index + 1;
}

static void raftlog__push(struct raftlog *rl, raft_term term, raft_index index, uint8_t type,
                          const uint8_t *data, uint32_t len, bool keep_data, uint64_t lsn)
{
    TRIAD_ASSERT(index == rl->first + rl->n);
    if (rl->n == rl->cap) {
        rl->cap = rl->cap ? rl->cap * 2 : 256;
        rl->ents = trealloc(rl->ents, rl->cap * sizeof(*rl->ents));
        rl->lsns = trealloc(rl->lsns, rl->cap * sizeof(*rl->lsns));
    }
    struct raft_entry *e = &rl->ents[rl->n];
    e->term = term;
    e->index = index;
    e->type = type;
    e->len = len;
    e->data = NULL;
    if (keep_data && len > 0) {
        e->data = tmalloc(len);
        memcpy(e->data, data, len);
    }
    TRIAD_ASSERT(rl->n == 0 || rl->lsns[rl->n - 1] <= lsn);
    rl->lsns[rl->n] = lsn;
    rl->n++;
}

/* ---- applying a record (replay and persist alike) -------------------------- */

static int raftlog__apply_hs(struct raftlog *rl, uint64_t lsn, const uint8_t *b, size_t len)
{
    if (len != RAFTLOG_HS_BYTES)
        return raftlog__corrupt(rl, "hard state record of %zu bytes", len);
    uint64_t vote = tbuf_read_u64le(b + 8);
    if (vote > UINT32_MAX)
        return raftlog__corrupt(rl, "hard state votes for node %" PRIu64, vote);
    rl->hs.term = tbuf_read_u64le(b);
    rl->hs.vote = (raft_id)vote;
    rl->hs.commit = tbuf_read_u64le(b + 16);
    rl->hs_lsn = lsn;
    return 0;
}

/* An unknown replay reads the window as "the true log from `first` on":
 * a truncation below `first` restarts the window there, and the window
 * becomes known once it reaches down to the entry after the snapshot. */
static void raftlog__maybe_known(struct raftlog *rl)
{
    if (!rl->known && rl->seen && rl->first == raftlog__base(rl) + 1)
        rl->known = true;
}

static int raftlog__apply_entries(struct raftlog *rl, uint64_t lsn, const uint8_t *b,
                                  size_t len, bool keep_data)
{
    if (len < RAFTLOG_ENTRIES_HEADER_BYTES)
        return raftlog__corrupt(rl, "entries record of %zu bytes", len);
    raft_index from = tbuf_read_u64le(b);
    uint32_t n = tbuf_read_u32le(b + 8);
    if ((uint64_t)n > (len - RAFTLOG_ENTRIES_HEADER_BYTES) / RAFTLOG_ENTRY_HEADER_BYTES)
        return raftlog__corrupt(rl, "entries record of %zu bytes claims %" PRIu32 " entries",
                                len, n);
    /* Framing first, so that a bad record changes nothing. */
    size_t off = RAFTLOG_ENTRIES_HEADER_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < RAFTLOG_ENTRY_HEADER_BYTES)
            return raftlog__corrupt(rl, "entries record ends inside entry %" PRIu32, i);
        raft_index index = tbuf_read_u64le(b + off + 8);
        uint32_t elen = tbuf_read_u32le(b + off + 17);
        if (index != from + i)
            return raftlog__corrupt(rl,
                                    "entry %" PRIu32 " has index %" PRIu64 ", expected %" PRIu64,
                                    i, index, from + i);
        if (elen > RAFT_ENTRY_BYTES_MAX || elen > len - off - RAFTLOG_ENTRY_HEADER_BYTES)
            return raftlog__corrupt(rl,
                                    "entry %" PRIu64 " of %" PRIu32 " bytes runs past the record",
                                    index, elen);
        off += RAFTLOG_ENTRY_HEADER_BYTES + elen;
    }
    if (off != len)
        return raftlog__corrupt(rl, "%zu bytes after the last entry", len - off);

    raft_index base = raftlog__base(rl);
    if (from <= base)
        return raftlog__corrupt(rl,
                                "entries from index %" PRIu64
                                " go back into the snapshot (index %" PRIu64 ")",
                                from, base);
    if (rl->seen) {
        if (from > raftlog__last(rl) + 1)
            return raftlog__corrupt(rl,
                                    "entries from index %" PRIu64
                                    " leave a hole after index %" PRIu64,
                                    from, raftlog__last(rl));
        if (from < rl->first) {
            /* only while unknown: earlier entries were never in the window */
            TRIAD_ASSERT(!rl->known);
            raftlog__drop_from(rl, rl->first);
            rl->first = from;
        } else {
            raftlog__drop_from(rl, from);
        }
    } else {
        rl->seen = true;
        rl->first = from;
        TRIAD_ASSERT(rl->n == 0);
    }
    off = RAFTLOG_ENTRIES_HEADER_BYTES;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = b + off;
        uint32_t elen = tbuf_read_u32le(e + 17);
        raftlog__push(rl, tbuf_read_u64le(e), from + i, e[16], e + RAFTLOG_ENTRY_HEADER_BYTES,
                      elen, keep_data, lsn);
        off += RAFTLOG_ENTRY_HEADER_BYTES + elen;
    }
    raftlog__maybe_known(rl);
    return 0;
}

static int raftlog__apply_snapshot(struct raftlog *rl, uint64_t lsn, const uint8_t *b,
                                   size_t len)
{
    if (len < RAFTLOG_SNAP_REC_FIXED_BYTES)
        return raftlog__corrupt(rl, "snapshot record of %zu bytes", len);
    uint8_t flags = b[0];
    raft_index index = tbuf_read_u64le(b + 1);
    raft_term term = tbuf_read_u64le(b + 9);
    raft_index last = tbuf_read_u64le(b + 17);
    uint64_t slen = tbuf_read_u64le(b + 25);
    uint32_t crc = tbuf_read_u32le(b + 33);
    struct raft_conf conf;
    if ((flags & ~RAFTLOG_SNAP_INSTALL) != 0)
        return raftlog__corrupt(rl, "snapshot record with flags %02x", flags);
    if (index == 0)
        return raftlog__corrupt(rl, "snapshot record at index 0");
    if (slen > RAFT_SNAPSHOT_BYTES_MAX)
        return raftlog__corrupt(rl, "snapshot of %" PRIu64 " bytes", slen);
    if (last < index)
        return raftlog__corrupt(rl, "snapshot at index %" PRIu64 " says the log ends at %" PRIu64,
                                index, last);
    if (raft_conf_decode(&conf, b + RAFTLOG_SNAP_REC_FIXED_BYTES,
                         len - RAFTLOG_SNAP_REC_FIXED_BYTES) != 0)
        return raftlog__corrupt(rl, "snapshot record with a bad configuration");

    if (flags & RAFTLOG_SNAP_INSTALL) {
        if (last != index)
            return raftlog__corrupt(rl, "installed snapshot at index %" PRIu64
                                        " says the log ends at %" PRIu64, index, last);
        raftlog__drop_from(rl, rl->first);
        rl->first = index + 1;
        rl->seen = true;
        rl->known = true;
    } else {
        raft_index base = raftlog__base(rl);
        if (rl->has_snap && index <= base)
            return raftlog__corrupt(rl,
                                    "compaction to index %" PRIu64
                                    " is not past the snapshot at %" PRIu64,
                                    index, base);
        if (rl->seen) {
            raft_index have = TRIAD_MAX(raftlog__last(rl), index);
            if (last != have)
                return raftlog__corrupt(rl,
                                        "compaction to index %" PRIu64
                                        " says the log ends at %" PRIu64
                                        ", but it ends at %" PRIu64,
                                        index, last, raftlog__last(rl));
            /* A window starting past index + 1 (unknown replay) keeps its
             * entries: all are after the snapshot. */
            if (rl->first <= index + 1)
                raftlog__drop_upto(rl, index);
        } else {
            /* Nothing seen yet: the log ends at `last`, entries unknown. */
            rl->seen = true;
            rl->first = last + 1;
        }
    }
    tfree(rl->snap.data);
    rl->has_snap = true;
    rl->snap.index = index;
    rl->snap.term = term;
    rl->snap.conf = conf;
    rl->snap.len = slen;
    rl->snap.data = NULL;
    rl->snap_crc = crc;
    rl->snap_lsn = lsn;
    raftlog__maybe_known(rl);
    TRIAD_ASSERT(!rl->known || rl->first == index + 1);
    return 0;
}

static int raftlog__apply(struct raftlog *rl, uint64_t lsn, uint8_t type, const void *body,
                          size_t len, bool keep_data)
{
    switch (type) {
    case RAFTLOG_REC_HARD_STATE:
        return raftlog__apply_hs(rl, lsn, body, len);
    case RAFTLOG_REC_ENTRIES:
        return raftlog__apply_entries(rl, lsn, body, len, keep_data);
    case RAFTLOG_REC_SNAPSHOT:
        return raftlog__apply_snapshot(rl, lsn, body, len);
    default:
        return raftlog__corrupt(rl, "unknown record type %u", (unsigned)type);
    }
}

static int raftlog__replay_cb(void *arg, uint64_t lsn, uint8_t type, const void *body,
                              size_t len)
{
    struct raftlog *rl = arg;
    int rc = raftlog__apply(rl, lsn, type, body, len, true);
    if (rc != 0) {
        char why[RAFTLOG_MSG_MAX];
        snprintf(why, sizeof(why), "%s", rl->why);
        raftlog__err(rl->why, sizeof(rl->why), "raftlog: %s: record at lsn %" PRIu64 ": %s",
                     rl->dir, lsn, why);
    }
    return rc;
}

/* ---- snapshot files ------------------------------------------------------ */

static void raftlog__snap_header(uint8_t *h, const struct raft_snapshot *s, uint32_t crc)
{
    memcpy(h, RAFTLOG_SNAP_MAGIC, 8);
    tbuf_write_u32le(h + 8, RAFTLOG_SNAP_VERSION);
    tbuf_write_u32le(h + 12, 0);
    tbuf_write_u64le(h + 16, s->index);
    tbuf_write_u64le(h + 24, s->term);
    tbuf_write_u64le(h + 32, s->len);
    tbuf_write_u32le(h + 40, crc);
    tbuf_write_u32le(h + 44, crc32c(0, h, 44));
}

/* Write s (header, bytes) to the file at path and make it durable; on
 * failure the file is removed and errmsg says what failed. */
static int raftlog__snap_file(const char *path, const struct raft_snapshot *s, uint32_t crc,
                              char *errmsg, size_t errlen)
{
    const char *what = "create";
    int fd = -1;
    uint8_t h[RAFTLOG_SNAP_HEADER_BYTES];
    raftlog__snap_header(h, s, crc);
    if (fs_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd) != 0)
        goto err;
    what = "write";
    if (fs_write_all(fd, h, sizeof(h)) != 0)
        goto err_unlink;
    if (s->len > 0 && fs_write_all(fd, s->data, (size_t)s->len) != 0)
        goto err_unlink;
    what = "fsync";
    if (fs_fsync(fd) != 0)
        goto err_unlink;
    fs_close(fd);
    return 0;

err_unlink:
    fs_close(fd);
    raftlog__err(errmsg, errlen, "raftlog: %s snapshot %s: %s", what, path, strerror(errno));
    fs_unlink(path);
    return TRIAD_EIO;
err:
    raftlog__err(errmsg, errlen, "raftlog: %s snapshot %s: %s", what, path, strerror(errno));
    return TRIAD_EIO;
}

/* Give the snapshot file at from its final name (for the record that will
 * carry lsn), durable before returning: the record may be appended only
 * then. On failure the file at from is removed. */
static int raftlog__snap_place(struct raftlog *rl, const char *from, const struct raft_snapshot *s,
                               uint64_t lsn, char *errmsg, size_t errlen)
{
    char *final = raftlog__snap_path(rl->dir, s->index, lsn, RAFTLOG_SNAP_SUFFIX);
    int rc = TRIAD_EIO;
    if (fs_rename(from, final) != 0) {
        raftlog__err(errmsg, errlen, "raftlog: rename snapshot %s: %s", from, strerror(errno));
        fs_unlink(from);
        goto out;
    }
    /* Without the directory entry durable, the record could outlive the
     * file's name after a crash: no record until it is. The file is left
     * to the next open, which removes it as named by no record. */
    if (fs_sync_dir(rl->dir) != 0) {
        raftlog__err(errmsg, errlen, "raftlog: fsync directory %s after writing %s: %s", rl->dir,
                     final, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    tfree(final);
    return rc;
}

/* Write s to its file (named for the record that will carry lsn), durable
 * under its final name before returning. */
static int raftlog__snap_write(struct raftlog *rl, const struct raft_snapshot *s, uint64_t lsn,
                               uint32_t crc, char *errmsg, size_t errlen)
{
    char *tmp = raftlog__snap_path(rl->dir, s->index, lsn, RAFTLOG_TMP_SUFFIX);
    int rc = raftlog__snap_file(tmp, s, crc, errmsg, errlen);
    if (rc == 0)
        rc = raftlog__snap_place(rl, tmp, s, lsn, errmsg, errlen);
    tfree(tmp);
    return rc;
}

/* The name raftlog_snap_prepare gives the snapshot at index (tmalloc'd). */
static char *raftlog__prepared_path(const char *dir, raft_index index)
{
    return raftlog__snap_path(dir, index, 0, RAFTLOG_PREPARED_SUFFIX);
}

int raftlog_snap_prepare(const char *dir, const struct raft_snapshot *s, uint32_t *crc,
                         char *errmsg, size_t errlen)
{
    *crc = s->len > 0 ? crc32c(0, s->data, (size_t)s->len) : 0;
    char *path = raftlog__prepared_path(dir, s->index);
    int rc = raftlog__snap_file(path, s, *crc, errmsg, errlen);
    tfree(path);
    return rc;
}

void raftlog_snap_discard(struct raftlog *rl, raft_index index)
{
    if (rl->prepared.index == index)
        rl->prepared.set = false;
    char *path = raftlog__prepared_path(rl->dir, index);
    reaper_delete(rl->reaper, path);
    tfree(path);
}

/* Forget the prepared file, deleting it (on the reaper) unless a persist
 * took it. */
static void raftlog__drop_prepared(struct raftlog *rl, bool delete_file)
{
    if (!rl->prepared.set)
        return;
    rl->prepared.set = false;
    if (delete_file)
        raftlog_snap_discard(rl, rl->prepared.index);
}

void raftlog_snap_prepared(struct raftlog *rl, const struct raft_snapshot *s, uint32_t crc)
{
    raftlog__drop_prepared(rl, true);
    rl->prepared.set = true;
    rl->prepared.index = s->index;
    rl->prepared.term = s->term;
    rl->prepared.len = s->len;
    rl->prepared.crc = crc;
}

/* Load and check the recorded snapshot's bytes. */
static int raftlog__snap_load(struct raftlog *rl, char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(rl->has_snap);
    char *path = raftlog__snap_path(rl->dir, rl->snap.index, rl->snap_lsn, RAFTLOG_SNAP_SUFFIX);
    int fd = -1;
    uint8_t h[RAFTLOG_SNAP_HEADER_BYTES];
    size_t got = 0;
    uint64_t size = 0;
    const char *why = NULL;
    char whybuf[160];
    int rc = fs_open(path, O_RDONLY, 0, &fd);
    if (rc == TRIAD_ENOTFOUND) {
        raftlog__err(errmsg, errlen,
                     "raftlog: snapshot file %s is missing (recorded at lsn %" PRIu64 ")", path,
                     rl->snap_lsn);
        rc = TRIAD_ECORRUPT;
        goto out;
    }
    if (rc != 0 || fs_file_size(fd, &size) != 0 ||
        fs_pread_all(fd, h, sizeof(h), 0, &got) != 0) {
        raftlog__err(errmsg, errlen, "raftlog: read snapshot file %s: %s", path, strerror(errno));
        rc = TRIAD_EIO;
        goto out;
    }
    if (got < sizeof(h)) {
        snprintf(whybuf, sizeof(whybuf), "short header (%zu bytes)", got);
        why = whybuf;
    } else if (memcmp(h, RAFTLOG_SNAP_MAGIC, 8) != 0) {
        why = "bad magic";
    } else if (tbuf_read_u32le(h + 44) != crc32c(0, h, 44)) {
        why = "header checksum mismatch";
    } else if (tbuf_read_u32le(h + 8) != RAFTLOG_SNAP_VERSION) {
        snprintf(whybuf, sizeof(whybuf), "unsupported version %" PRIu32, tbuf_read_u32le(h + 8));
        why = whybuf;
    } else if (tbuf_read_u64le(h + 16) != rl->snap.index ||
               tbuf_read_u64le(h + 24) != rl->snap.term ||
               tbuf_read_u64le(h + 32) != rl->snap.len ||
               tbuf_read_u32le(h + 40) != rl->snap_crc) {
        why = "header does not match the WAL's snapshot record";
    } else if (size != RAFTLOG_SNAP_HEADER_BYTES + rl->snap.len) {
        snprintf(whybuf, sizeof(whybuf), "%" PRIu64 " bytes, expected %" PRIu64, size,
                 RAFTLOG_SNAP_HEADER_BYTES + rl->snap.len);
        why = whybuf;
    }
    if (why == NULL && rl->snap.len > 0) {
        uint8_t *data = tmalloc((size_t)rl->snap.len);
        if (fs_pread_all(fd, data, (size_t)rl->snap.len, RAFTLOG_SNAP_HEADER_BYTES, &got) != 0) {
            raftlog__err(errmsg, errlen, "raftlog: read snapshot file %s: %s", path,
                         strerror(errno));
            tfree(data);
            rc = TRIAD_EIO;
            goto out;
        }
        if (got != rl->snap.len)
            why = "shorter than its header says";
        else if (crc32c(0, data, (size_t)rl->snap.len) != rl->snap_crc)
            why = "checksum mismatch";
        if (why != NULL)
            tfree(data);
        else
            rl->snap.data = data;
    }
    if (why != NULL) {
        raftlog__err(errmsg, errlen, "raftlog: corrupt snapshot file %s: %s", path, why);
        rc = TRIAD_ECORRUPT;
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        fs_close(fd);
    tfree(path);
    return rc;
}

/* Remove every raftsnap-* file but the recorded snapshot's: superseded
 * ones, and those of persists a crash cut short. */
static int raftlog__remove_stale_snaps(struct raftlog *rl, wal_log_cb log_cb, void *log_arg,
                                       char *errmsg, size_t errlen)
{
    char **names = NULL;
    size_t count = 0;
    if (fs_list(rl->dir, RAFTLOG_SNAP_PREFIX, "", &names, &count) != 0) {
        raftlog__err(errmsg, errlen, "raftlog: list %s: %s", rl->dir, strerror(errno));
        return TRIAD_EIO;
    }
    char *keep = NULL;
    if (rl->has_snap)
        keep = raftlog__snap_path("", rl->snap.index, rl->snap_lsn, RAFTLOG_SNAP_SUFFIX);
    int rc = 0;
    for (size_t i = 0; i < count; i++) {
        if (keep != NULL && strcmp(names[i], keep + 1) == 0) /* keep is "/name" */
            continue;
        size_t n = strlen(rl->dir) + 1 + strlen(names[i]) + 1;
        char *path = tmalloc(n);
        snprintf(path, n, "%s/%s", rl->dir, names[i]);
        int r = fs_unlink(path);
        if (r != 0 && r != TRIAD_ENOTFOUND) {
            raftlog__err(errmsg, errlen, "raftlog: remove %s: %s", path, strerror(errno));
            rc = TRIAD_EIO;
        } else if (r == 0 && log_cb != NULL) {
            char msg[RAFTLOG_MSG_MAX];
            snprintf(msg, sizeof(msg), "raftlog: removed stale snapshot file %s", path);
            log_cb(log_arg, msg);
        }
        tfree(path);
    }
    tfree(keep);
    fs_list_free(names, count);
    return rc;
}

/* ---- open / close ---------------------------------------------------------- */

/* The first lsn of the oldest WAL segment (0 if none): after compaction
 * the log no longer starts at lsn 1, and wal_open must be told where it
 * does (after_lsn), else it takes the missing head for lost records. */
static int raftlog__oldest_lsn(const char *dir, uint64_t *lsn, char *errmsg, size_t errlen)
{
    char **names = NULL;
    size_t count = 0;
    *lsn = 0;
    if (fs_list(dir, RAFTLOG_WAL_PREFIX, RAFTLOG_WAL_SUFFIX, &names, &count) != 0) {
        raftlog__err(errmsg, errlen, "raftlog: list %s: %s", dir, strerror(errno));
        return TRIAD_EIO;
    }
    /* Sorted by name, and the names are fixed-width: the first is the
     * oldest. A name that is not a segment's is left to wal_open. */
    if (count > 0 && strlen(names[0]) == RAFTLOG_WAL_NAME_LEN) {
        uint64_t v = 0;
        bool ok = true;
        for (int i = 0; i < 20 && ok; i++) {
            char c = names[0][4 + i];
            ok = c >= '0' && c <= '9' && v <= (UINT64_MAX - 9) / 10;
            v = v * 10 + (uint64_t)(c - '0');
        }
        if (ok)
            *lsn = v;
    }
    fs_list_free(names, count);
    return 0;
}

static void raftlog__mark(struct raftlog *rl)
{
    struct raftlog_mark m = {.lsn = wal_last_lsn(rl->wal), .need = raftlog__need(rl)};
    if (rl->n_marks > 0 && rl->marks[rl->n_marks - 1].lsn == m.lsn) {
        rl->marks[rl->n_marks - 1] = m;
        return;
    }
    if (rl->n_marks == RAFTLOG_MARKS_MAX) {
        memmove(rl->marks, rl->marks + 1, (RAFTLOG_MARKS_MAX - 1) * sizeof(*rl->marks));
        rl->n_marks--;
    }
    TRIAD_ASSERT(rl->n_marks == 0 || rl->marks[rl->n_marks - 1].lsn < m.lsn);
    /* Needs only grow (see raftlog_compact); RAFTLOG_NONE compacts
     * nothing, so it may come and go. */
    TRIAD_ASSERT(rl->n_marks == 0 || rl->marks[rl->n_marks - 1].need == RAFTLOG_NONE ||
                 m.need == RAFTLOG_NONE || rl->marks[rl->n_marks - 1].need <= m.need);
    rl->marks[rl->n_marks++] = m;
}

static void raftlog__free(struct raftlog *rl)
{
    if (rl->wal != NULL)
        wal_close(rl->wal);
    for (size_t i = 0; i < rl->n; i++)
        tfree(rl->ents[i].data);
    tfree(rl->ents);
    tfree(rl->lsns);
    tfree(rl->snap.data);
    for (size_t i = 0; i < rl->n_old; i++)
        tfree(rl->old[i].path);
    tfree(rl->old);
    tbuf_free(&rl->scratch);
    tfree(rl->dir);
    tfree(rl);
}

/* The image's entries' terms never go down, nor below the snapshot's. */
static int raftlog__check_terms(struct raftlog *rl, char *errmsg, size_t errlen)
{
    raft_term prev = rl->has_snap ? rl->snap.term : 0;
    for (size_t i = 0; i < rl->n; i++) {
        if (rl->ents[i].term < prev) {
            raftlog__err(errmsg, errlen,
                         "raftlog: %s: entry %" PRIu64 " (lsn %" PRIu64 ") has term %" PRIu64
                         ", below the term %" PRIu64 " before it",
                         rl->dir, rl->ents[i].index, rl->lsns[i], rl->ents[i].term, prev);
            return TRIAD_ECORRUPT;
        }
        prev = rl->ents[i].term;
    }
    return 0;
}

int raftlog_open(struct raftlog **out, const char *dir, uint64_t segment_bytes,
                 wal_log_cb log_cb, void *log_arg, char *errmsg, size_t errlen)
{
    struct raftlog *rl = tcalloc(1, sizeof(*rl));
    rl->dir = tstrndup(dir, strlen(dir));
    int rc = fs_mkdir_p(dir);
    if (rc != 0) {
        raftlog__err(errmsg, errlen, "raftlog: create directory %s: %s", dir, strerror(errno));
        rc = TRIAD_EIO;
        goto err_free;
    }
    rc = raftlog__oldest_lsn(dir, &rl->oldest_lsn, errmsg, errlen);
    if (rc != 0)
        goto err_free;
    /* A log that starts at lsn 1 holds the whole history; one that starts
     * later (compacted) begins in the middle of it, unknown. */
    uint64_t after_lsn = rl->oldest_lsn > 1 ? rl->oldest_lsn - 1 : 0;
    rl->known = after_lsn == 0;
    rl->seen = rl->known;
    rl->first = 1;
    rc = wal_open(&rl->wal, dir, segment_bytes, after_lsn, raftlog__replay_cb, rl, log_cb,
                  log_arg, errmsg, errlen);
    if (rc != 0) {
        if (rl->why[0] != '\0')
            raftlog__err(errmsg, errlen, "%s", rl->why);
        goto err_free;
    }
    if (!rl->known) {
        if (!rl->seen)
            raftlog__err(errmsg, errlen,
                         "raftlog: %s: the log starts at lsn %" PRIu64
                         " but holds no snapshot and no entries: its first segments are missing",
                         dir, rl->oldest_lsn);
        else
            raftlog__err(errmsg, errlen,
                         "raftlog: %s: the log starts at lsn %" PRIu64
                         " and holds entries from index %" PRIu64
                         " on, but the snapshot ends at index %" PRIu64
                         ": records in between are missing",
                         dir, rl->oldest_lsn, rl->first, raftlog__base(rl));
        rc = TRIAD_ECORRUPT;
        goto err_free;
    }
    TRIAD_ASSERT(rl->first == raftlog__base(rl) + 1);
    rc = raftlog__check_terms(rl, errmsg, errlen);
    if (rc != 0)
        goto err_free;
    if (rl->has_snap) {
        rc = raftlog__snap_load(rl, errmsg, errlen);
        if (rc != 0)
            goto err_free;
    }
    rc = raftlog__remove_stale_snaps(rl, log_cb, log_arg, errmsg, errlen);
    if (rc != 0)
        goto err_free;
    /* What was replayed is durable once the first batch is synced (its
     * fdatasync covers the current segment; older ones were synced when
     * the WAL rotated). */
    raftlog__mark(rl);
    *out = rl;
    return 0;

err_free:
    raftlog__free(rl);
    return rc;
}

void raftlog_close(struct raftlog *rl)
{
    if (rl != NULL)
        raftlog__free(rl);
}

void raftlog_disk(const struct raftlog *rl, struct raft_hard_state *hs,
                  const struct raft_snapshot **snapshot, const struct raft_entry **entries,
                  size_t *n_entries)
{
    TRIAD_ASSERT(!rl->released);
    TRIAD_ASSERT(rl->known);
    *hs = rl->hs;
    *snapshot = rl->has_snap ? &rl->snap : NULL;
    *entries = rl->ents;
    *n_entries = rl->n;
}

void raftlog_release_disk(struct raftlog *rl)
{
    if (rl->released)
        return;
    for (size_t i = 0; i < rl->n; i++)
        raftlog__free_data(&rl->ents[i]);
    tfree(rl->snap.data);
    rl->snap.data = NULL;
    rl->released = true;
}

/* ---- persisting ------------------------------------------------------------ */

/* Append the scratch buffer as a record and apply it to the image. */
static uint64_t raftlog__append(struct raftlog *rl, uint8_t type)
{
    uint64_t lsn = wal_append(rl->wal, type, rl->scratch.data, rl->scratch.len);
    int rc = raftlog__apply(rl, lsn, type, rl->scratch.data, rl->scratch.len, false);
    /* We just encoded it: a refusal is a bug here, not bad bytes. */
    if (rc != 0)
        fprintf(stderr, "raftlog: own record refused: %s\n", rl->why);
    TRIAD_ASSERT(rc == 0);
    return lsn;
}

static void raftlog__append_hs(struct raftlog *rl, const struct raft_hard_state *hs)
{
    tbuf_reset(&rl->scratch);
    tbuf_append_u64le(&rl->scratch, hs->term);
    tbuf_append_u64le(&rl->scratch, hs->vote);
    tbuf_append_u64le(&rl->scratch, hs->commit);
    raftlog__append(rl, RAFTLOG_REC_HARD_STATE);
    TRIAD_ASSERT(rl->hs.term == hs->term && rl->hs.vote == hs->vote);
    TRIAD_ASSERT(rl->hs.commit == hs->commit);
}

static int raftlog__persist_snapshot(struct raftlog *rl, const struct raft_snapshot *s,
                                     bool install, char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(s->index > 0);
    TRIAD_ASSERT(s->len <= RAFT_SNAPSHOT_BYTES_MAX);
    TRIAD_ASSERT(s->len == 0 || s->data != NULL);
    if (!install) {
        /* The core compacts only what it has applied, hence holds. */
        TRIAD_ASSERT(s->index <= raftlog__last(rl));
    }
    uint64_t lsn = wal_last_lsn(rl->wal) + 1;
    /* a compaction's file written elsewhere for this very snapshot is
     * renamed into place; any other is written here */
    bool adopt = !install && rl->prepared.set && rl->prepared.index == s->index &&
                 rl->prepared.term == s->term && rl->prepared.len == s->len;
    uint32_t crc = 0;
    int rc = TRIAD_EIO;
    if (adopt) {
        crc = rl->prepared.crc;
        char *from = raftlog__prepared_path(rl->dir, s->index);
        rc = raftlog__snap_place(rl, from, s, lsn, errmsg, errlen);
        tfree(from);
    }
    if (rc != 0) { /* not prepared, or the file could not be placed: we hold the bytes */
        crc = s->len > 0 ? crc32c(0, s->data, (size_t)s->len) : 0;
        rc = raftlog__snap_write(rl, s, lsn, crc, errmsg, errlen);
    }
    raftlog__drop_prepared(rl, !adopt);
    if (rc != 0)
        return rc;

    bool had = rl->has_snap;
    raft_index old_index = rl->snap.index;
    uint64_t old_lsn = rl->snap_lsn;
    raft_index last = install ? s->index : TRIAD_MAX(raftlog__last(rl), s->index);
    uint8_t conf[RAFT_CONF_BYTES_MAX];
    size_t conf_len = raft_conf_encode(&s->conf, conf);
    tbuf_reset(&rl->scratch);
    tbuf_appendc(&rl->scratch, (char)(install ? RAFTLOG_SNAP_INSTALL : 0));
    tbuf_append_u64le(&rl->scratch, s->index);
    tbuf_append_u64le(&rl->scratch, s->term);
    tbuf_append_u64le(&rl->scratch, last);
    tbuf_append_u64le(&rl->scratch, s->len);
    tbuf_append_u32le(&rl->scratch, crc);
    tbuf_append(&rl->scratch, conf, conf_len);
    uint64_t got = raftlog__append(rl, RAFTLOG_REC_SNAPSHOT);
    /* The file is named for this lsn: nothing else may append between. */
    TRIAD_ASSERT(got == lsn);
    TRIAD_ASSERT(rl->snap.index == s->index);

    if (had) {
        if (rl->n_old == rl->cap_old) {
            rl->cap_old = rl->cap_old ? rl->cap_old * 2 : 4;
            rl->old = trealloc(rl->old, rl->cap_old * sizeof(*rl->old));
        }
        rl->old[rl->n_old].path =
            raftlog__snap_path(rl->dir, old_index, old_lsn, RAFTLOG_SNAP_SUFFIX);
        rl->old[rl->n_old].superseded_lsn = lsn;
        rl->n_old++;
    }
    return 0;
}

static void raftlog__persist_entries(struct raftlog *rl, raft_index from,
                                     const struct raft_entry *ents, size_t n)
{
    size_t i = 0;
    do {
        size_t start = i;
        uint64_t bytes = RAFTLOG_ENTRIES_HEADER_BYTES;
        while (i < n && (i == start || bytes + RAFTLOG_ENTRY_HEADER_BYTES + ents[i].len <=
                                           RAFTLOG_ENTRIES_RECORD_BYTES_MAX)) {
            bytes += RAFTLOG_ENTRY_HEADER_BYTES + ents[i].len;
            i++;
        }
        tbuf_reset(&rl->scratch);
        tbuf_reserve(&rl->scratch, (size_t)bytes);
        tbuf_append_u64le(&rl->scratch, from + start);
        tbuf_append_u32le(&rl->scratch, (uint32_t)(i - start));
        for (size_t j = start; j < i; j++) {
            const struct raft_entry *e = &ents[j];
            TRIAD_ASSERT(e->index == from + j);
            TRIAD_ASSERT(e->len <= RAFT_ENTRY_BYTES_MAX);
            tbuf_append_u64le(&rl->scratch, e->term);
            tbuf_append_u64le(&rl->scratch, e->index);
            tbuf_appendc(&rl->scratch, (char)e->type);
            tbuf_append_u32le(&rl->scratch, e->len);
            if (e->len > 0)
                tbuf_append(&rl->scratch, e->data, e->len);
        }
        TRIAD_ASSERT(rl->scratch.len == bytes);
        raftlog__append(rl, RAFTLOG_REC_ENTRIES);
    } while (i < n);
    TRIAD_ASSERT(n == 0 || raftlog__last(rl) == from + n - 1);
}

int raftlog_persist(struct raftlog *rl, const struct raft_ready *rd, uint64_t *lsn,
                    char *errmsg, size_t errlen)
{
    TRIAD_ASSERT(rl->known);
    if (!rd->persist) {
        *lsn = wal_last_lsn(rl->wal);
        return 0;
    }
    raftlog_release_disk(rl);

    /* 1. The snapshot: its file durable now, its record first. */
    const struct raft_snapshot *s = rd->snapshot;
    if (s != NULL && (rd->snapshot_install || !rl->has_snap || s->index > rl->snap.index)) {
        int rc = raftlog__persist_snapshot(rl, s, rd->snapshot_install, errmsg, errlen);
        if (rc != 0)
            return rc;
    }

    /* 2. The entries, before the hard state whose commit may cover them. */
    raft_index from = rd->truncate_from;
    if (rd->n_entries > 0 || from <= raftlog__last(rl)) {
        TRIAD_ASSERT(from > raftlog__base(rl));
        TRIAD_ASSERT(from <= raftlog__last(rl) + 1);
        raftlog__persist_entries(rl, from, rd->entries, rd->n_entries);
    }

    /* 3. The hard state. Written also when the core thinks it unchanged
     * but it differs from the disk's (the core clamps commit at restore). */
    if (rd->hs_changed || rd->hs.term != rl->hs.term || rd->hs.vote != rl->hs.vote ||
        rd->hs.commit != rl->hs.commit)
        raftlog__append_hs(rl, &rd->hs);

    raftlog__mark(rl);
    *lsn = wal_last_lsn(rl->wal);
    return 0;
}

/* ---- compaction ------------------------------------------------------------ */

void raftlog_set_reaper(struct raftlog *rl, struct reaper *r)
{
    rl->reaper = r;
    wal_set_reaper(rl->wal, r);
}

void raftlog_compact(struct raftlog *rl, uint64_t durable_lsn)
{
    TRIAD_ASSERT(durable_lsn <= wal_last_lsn(rl->wal));

    /* Snapshot files whose successor's record is durable: no crash can
     * bring back a state that names them. */
    size_t keep = 0;
    for (size_t i = 0; i < rl->n_old; i++) {
        if (rl->old[i].superseded_lsn <= durable_lsn) {
            reaper_delete(rl->reaper, rl->old[i].path);
            tfree(rl->old[i].path);
        } else {
            rl->old[keep++] = rl->old[i];
        }
    }
    rl->n_old = keep;

    /* The newest mark that is durable: a crash now leaves that state or a
     * later one, and the need only grows from one to the next (writers of
     * the entry after the snapshot, the snapshot record and the hard state
     * record only move forward), so its need is the oldest any of them
     * has. */
    size_t j = rl->n_marks;
    while (j > 0 && rl->marks[j - 1].lsn > durable_lsn)
        j--;
    if (j == 0)
        return; /* not yet known durable (or marks were dropped) */
    uint64_t need = rl->marks[j - 1].need;
    memmove(rl->marks, rl->marks + j - 1, (rl->n_marks - j + 1) * sizeof(*rl->marks));
    rl->n_marks -= j - 1;
    if (need != RAFTLOG_NONE && need > 1)
        wal_remove_before(rl->wal, need - 1);

    /* A hard state older than everything else needed holds its segment:
     * write it again, so that the next compaction can let that go. */
    uint64_t other = RAFTLOG_NONE;
    if (rl->n > 0)
        other = rl->lsns[0];
    if (rl->has_snap)
        other = TRIAD_MIN(other, rl->snap_lsn);
    if (rl->hs_lsn != 0 && other != RAFTLOG_NONE && rl->hs_lsn < other &&
        rl->hs_lsn <= durable_lsn) {
        struct raft_hard_state hs = rl->hs;
        raftlog__append_hs(rl, &hs);
        raftlog__mark(rl);
    }
}

/* ---- introspection --------------------------------------------------------- */

struct wal *raftlog_wal(struct raftlog *rl)
{
    return rl->wal;
}

struct raft_hard_state raftlog_hard_state(const struct raftlog *rl)
{
    return rl->hs;
}

raft_index raftlog_snapshot_index(const struct raftlog *rl)
{
    return raftlog__base(rl);
}

raft_index raftlog_last_index(const struct raftlog *rl)
{
    return raftlog__last(rl);
}
