/* test_raftlog.c - a Raft node's durable storage: every ready persisted,
 * synced and reopened gives back exactly the disk an in-memory model of it
 * says; torn tails give the state before the torn record; compaction
 * deletes old segments and snapshot files without changing what a reopen
 * sees; corruption refuses to open, naming the problem; injected I/O
 * errors leave the image as it was. A randomized run drives a model through
 * thousands of readies with clean reopens, lost batches and torn batches
 * at random points (splitmix64, seed printed on failure). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common/buf.h"
#include "../../src/common/crc32c.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/core/raft.h"
#include "../../src/node/node.h"
#include "../../src/store/fs.h"
#include "../../src/store/raftlog.h"
#include "../../src/store/reaper.h"
#include "../../src/store/wal.h"
#include "test.h"
#include "test_dir.h"

static char errmsg[1024];

/* Every test runs twice: with O_DIRECT where the filesystem has it, then
 * through the page cache (as test_wal.c does). */
static bool buffered_pass;

static void set_faults(struct fs_faults f)
{
    f.direct_io_off = buffered_pass;
    fs_faults = f;
}

/* ---- splitmix64 ---------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [lo, hi] */
static uint64_t rng_range(uint64_t lo, uint64_t hi)
{
    TRIAD_ASSERT(lo <= hi);
    return lo + rng_next() % (hi - lo + 1);
}

static bool rng_chance(unsigned permille)
{
    return rng_next() % 1000 < permille;
}

/* ---- files --------------------------------------------------------------- */

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    TRIAD_ASSERT(fd >= 0);
    unsigned char c;
    TRIAD_ASSERT(pread(fd, &c, 1, off) == 1);
    c ^= 0x5a;
    TRIAD_ASSERT(pwrite(fd, &c, 1, off) == 1);
    close(fd);
}

/* The names in dir starting with prefix and ending with suffix, sorted;
 * returns how many (up to max), the last one's path in `last` if any. */
static int list_files(const char *dir, const char *prefix, const char *suffix, char *first,
                      char *last, size_t pathlen)
{
    char **names;
    size_t count;
    TRIAD_ASSERT(fs_list(dir, prefix, suffix, &names, &count) == 0);
    if (count > 0 && first != NULL)
        snprintf(first, pathlen, "%s/%s", dir, names[0]);
    if (count > 0 && last != NULL)
        snprintf(last, pathlen, "%s/%s", dir, names[count - 1]);
    fs_list_free(names, count);
    return (int)count;
}

static int count_snap_files(const char *dir)
{
    return list_files(dir, "raftsnap-", "", NULL, NULL, 0);
}

static int count_segments(const char *dir)
{
    return list_files(dir, "wal-", ".log", NULL, NULL, 0);
}

static uint64_t oldest_segment_lsn(const char *dir)
{
    char first[600];
    if (list_files(dir, "wal-", ".log", first, NULL, sizeof(first)) == 0)
        return 0;
    const char *name = strrchr(first, '/') + 1;
    return strtoull(name + 4, NULL, 10);
}

/* The records of a segment file: offset, size and lsn of each. */
struct seg_rec {
    long off, bytes;
    uint64_t lsn;
};

static size_t parse_segment(const char *path, struct seg_rec *out, size_t max)
{
    size_t len;
    char *data = read_file(path, &len);
    size_t off = WAL_HEADER_BYTES, n = 0;
    while (off + WAL_RECORD_OVERHEAD + 8 <= len && n < max) {
        uint32_t rlen = tbuf_read_u32le(data + off);
        if (rlen == 0 || rlen > len - off - 8)
            break;
        out[n].off = (long)off;
        out[n].bytes = 8 + (long)rlen;
        out[n].lsn = tbuf_read_u64le(data + off + 9);
        n++;
        off += 8 + rlen;
    }
    free(data);
    return n;
}

/* ---- the model ----------------------------------------------------------- */

struct model {
    struct raft_hard_state hs;
    bool has_snap;
    raft_index snap_index;
    raft_term snap_term;
    struct raft_conf conf;
    uint8_t *snap_data;
    uint64_t snap_len;
    struct raft_entry *ents; /* ents[i].index == snap_index + 1 + i */
    size_t n, cap;
};

static raft_index model_last(const struct model *m)
{
    return m->snap_index + m->n;
}

static raft_term model_term_at(const struct model *m, raft_index i)
{
    if (i == m->snap_index)
        return m->snap_term;
    TRIAD_ASSERT(i > m->snap_index && i <= model_last(m));
    return m->ents[i - m->snap_index - 1].term;
}

static void model_truncate(struct model *m, size_t keep)
{
    for (size_t i = keep; i < m->n; i++)
        free(m->ents[i].data);
    if (keep < m->n)
        m->n = keep;
}

static void model_free(struct model *m)
{
    model_truncate(m, 0);
    free(m->ents);
    free(m->snap_data);
    memset(m, 0, sizeof(*m));
}

static uint8_t *dup_bytes(const void *p, uint64_t len)
{
    if (len == 0)
        return NULL;
    uint8_t *d = malloc((size_t)len);
    memcpy(d, p, (size_t)len);
    return d;
}

static void model_push(struct model *m, const struct raft_entry *e)
{
    TRIAD_ASSERT(e->index == model_last(m) + 1);
    if (m->n == m->cap) {
        m->cap = m->cap ? m->cap * 2 : 64;
        m->ents = realloc(m->ents, m->cap * sizeof(*m->ents));
    }
    m->ents[m->n] = *e;
    m->ents[m->n].data = dup_bytes(e->data, e->len);
    m->n++;
}

static void model_copy(struct model *dst, const struct model *src)
{
    model_free(dst);
    *dst = *src;
    dst->ents = NULL;
    dst->n = dst->cap = 0;
    dst->snap_data = dup_bytes(src->snap_data, src->snap_len);
    for (size_t i = 0; i < src->n; i++)
        model_push(dst, &src->ents[i]);
}

static void model_snapshot(struct model *m, const struct raft_snapshot *s, bool install)
{
    if (install) {
        model_truncate(m, 0);
    } else {
        size_t drop = (size_t)TRIAD_MIN(s->index - m->snap_index, (raft_index)m->n);
        for (size_t i = 0; i < drop; i++)
            free(m->ents[i].data);
        memmove(m->ents, m->ents + drop, (m->n - drop) * sizeof(*m->ents));
        m->n -= drop;
    }
    free(m->snap_data);
    m->has_snap = true;
    m->snap_index = s->index;
    m->snap_term = s->term;
    m->conf = s->conf;
    m->snap_data = dup_bytes(s->data, s->len);
    m->snap_len = s->len;
}

/* How raftlog splits n entries into records: [start, end) per record. */
static size_t entry_chunks(const struct raft_entry *ents, size_t n, size_t *ends, size_t max)
{
    size_t i = 0, c = 0;
    do {
        size_t start = i;
        uint64_t bytes = 12;
        while (i < n &&
               (i == start || bytes + 21 + ents[i].len <= RAFTLOG_ENTRIES_RECORD_BYTES_MAX)) {
            bytes += 21 + ents[i].len;
            i++;
        }
        TRIAD_ASSERT(c < max);
        ends[c++] = i;
    } while (i < n);
    return c;
}

/* Apply the first `kmax` of the records raftlog writes for rd (all of them
 * for SIZE_MAX); returns how many records rd makes. */
static size_t model_apply_ready(struct model *m, const struct raft_ready *rd, size_t kmax)
{
    size_t k = 0;
    if (!rd->persist)
        return 0;
    const struct raft_snapshot *s = rd->snapshot;
    if (s != NULL && (rd->snapshot_install || !m->has_snap || s->index > m->snap_index)) {
        if (k++ < kmax)
            model_snapshot(m, s, rd->snapshot_install);
    }
    raft_index from = rd->truncate_from;
    if (rd->n_entries > 0 || from <= model_last(m)) {
        size_t ends[64];
        size_t chunks = entry_chunks(rd->entries, rd->n_entries, ends, 64);
        size_t start = 0;
        for (size_t c = 0; c < chunks; c++) {
            if (k++ < kmax) {
                if (c == 0) {
                    TRIAD_ASSERT(from > m->snap_index && from <= model_last(m) + 1);
                    model_truncate(m, (size_t)(from - m->snap_index - 1));
                }
                for (size_t i = start; i < ends[c]; i++)
                    model_push(m, &rd->entries[i]);
            }
            start = ends[c];
        }
    }
    if (rd->hs_changed || rd->hs.term != m->hs.term || rd->hs.vote != m->hs.vote ||
        rd->hs.commit != m->hs.commit) {
        if (k++ < kmax)
            m->hs = rd->hs;
    }
    return k;
}

/* The disk raftlog gives back equals the model, exactly. Says why not. */
static bool disk_equals(const struct raftlog *rl, const struct model *m)
{
    struct node_disk d;
    raftlog_disk(rl, &d.hs, &d.snapshot, &d.entries, &d.n_entries);
    if (d.hs.term != m->hs.term || d.hs.vote != m->hs.vote || d.hs.commit != m->hs.commit) {
        fprintf(stderr,
                "    hard state {%" PRIu64 " %u %" PRIu64 "}, model {%" PRIu64 " %u %" PRIu64 "}\n",
                d.hs.term, d.hs.vote, d.hs.commit, m->hs.term, m->hs.vote, m->hs.commit);
        return false;
    }
    if ((d.snapshot != NULL) != m->has_snap) {
        fprintf(stderr, "    snapshot %s, model %s\n", d.snapshot ? "present" : "absent",
                m->has_snap ? "present" : "absent");
        return false;
    }
    if (m->has_snap) {
        const struct raft_snapshot *s = d.snapshot;
        if (s->index != m->snap_index || s->term != m->snap_term || s->len != m->snap_len ||
            !raft_conf_equal(&s->conf, &m->conf) ||
            (s->len > 0 && memcmp(s->data, m->snap_data, (size_t)s->len) != 0)) {
            fprintf(stderr,
                    "    snapshot %" PRIu64 "/%" PRIu64 " (%" PRIu64 " bytes), "
                    "model %" PRIu64 "/%" PRIu64 " (%" PRIu64 " bytes)\n",
                    s->index, s->term, s->len, m->snap_index, m->snap_term, m->snap_len);
            return false;
        }
    }
    if (d.n_entries != m->n) {
        fprintf(stderr, "    %zu entries, model %zu\n", d.n_entries, m->n);
        return false;
    }
    for (size_t i = 0; i < m->n; i++) {
        const struct raft_entry *a = &d.entries[i], *b = &m->ents[i];
        if (a->index != b->index || a->term != b->term || a->type != b->type || a->len != b->len ||
            (a->len > 0 && memcmp(a->data, b->data, a->len) != 0)) {
            fprintf(stderr, "    entry %zu: %" PRIu64 "/%" PRIu64 " type %u len %u, model %" PRIu64
                            "/%" PRIu64 " type %u len %u\n",
                    i, a->index, a->term, a->type, a->len, b->index, b->term, b->type, b->len);
            return false;
        }
    }
    return true;
}

/* The cheap view of the image, checked after every persist. */
static bool image_matches(const struct raftlog *rl, const struct model *m)
{
    struct raft_hard_state hs = raftlog_hard_state(rl);
    return raftlog_last_index(rl) == model_last(m) && raftlog_snapshot_index(rl) == m->snap_index &&
           hs.term == m->hs.term && hs.vote == m->hs.vote && hs.commit == m->hs.commit;
}

/* ---- raftlog helpers ----------------------------------------------------- */

struct logged {
    int count;
    int snaps_removed;
    char last[1024];
};

static struct logged lg;

static void log_cb(void *arg, const char *msg)
{
    struct logged *l = arg;
    l->count++;
    if (strstr(msg, "removed stale snapshot file") != NULL)
        l->snaps_removed++;
    snprintf(l->last, sizeof(l->last), "%s", msg);
}

static int open_rl(struct raftlog **rl, const char *dir, uint64_t seg)
{
    memset(&lg, 0, sizeof(lg));
    errmsg[0] = '\0';
    return raftlog_open(rl, dir, seg, log_cb, &lg, errmsg, sizeof(errmsg));
}

/* What the server's fsync thread does with a batch, synced. */
static int sync_rl(struct raftlog *rl)
{
    struct wal *w = raftlog_wal(rl);
    struct wal_batch b;
    wal_take_batch(w, &b);
    int rc = 0;
    if (b.len > 0)
        rc = wal_write_batch(w, &b, true, errmsg, sizeof(errmsg));
    wal_batch_free(&b);
    return rc;
}

/* Persist rd, apply it to the model, check the image. */
static bool persist(struct raftlog *rl, struct model *m, const struct raft_ready *rd)
{
    uint64_t lsn = 0;
    errmsg[0] = '\0';
    int rc = raftlog_persist(rl, rd, &lsn, errmsg, sizeof(errmsg));
    if (rc != 0) {
        fprintf(stderr, "    persist: %d %s\n", rc, errmsg);
        return false;
    }
    model_apply_ready(m, rd, SIZE_MAX);
    if (lsn != wal_last_lsn(raftlog_wal(rl)) || !image_matches(rl, m)) {
        fprintf(stderr, "    image after persist differs from the model\n");
        return false;
    }
    return true;
}

/* Sync, close, reopen: the disk equals the model. */
static bool reopen_equals(struct raftlog **rl, const char *dir, uint64_t seg, const struct model *m)
{
    if (sync_rl(*rl) != 0)
        return false;
    raftlog_close(*rl);
    *rl = NULL;
    if (open_rl(rl, dir, seg) != 0) {
        fprintf(stderr, "    reopen: %s\n", errmsg);
        return false;
    }
    return disk_equals(*rl, m) && count_snap_files(dir) == (m->has_snap ? 1 : 0);
}

/* Entries [from, from + n) of term `term`, data derived from the index. */
struct batch {
    struct raft_entry ents[64];
    uint8_t data[64][64];
};

static void make_entries(struct batch *b, raft_index from, size_t n, raft_term term)
{
    TRIAD_ASSERT(n <= 64);
    for (size_t i = 0; i < n; i++) {
        raft_index idx = from + i;
        size_t len = (size_t)(idx * 13 % 41);
        for (size_t j = 0; j < len; j++)
            b->data[i][j] = (uint8_t)(idx * 7 + j + term);
        b->ents[i] = (struct raft_entry){.term = term, .index = idx,
                                         .type = (uint8_t)(idx % 3 + 1), .len = (uint32_t)len,
                                         .data = len ? b->data[i] : NULL};
    }
}

static struct raft_ready entries_ready(struct batch *b, raft_index from, size_t n, raft_term term,
                                       struct raft_hard_state hs)
{
    make_entries(b, from, n, term);
    return (struct raft_ready){.persist = true, .hs_changed = true, .hs = hs,
                               .truncate_from = from, .entries = b->ents, .n_entries = n};
}

static struct raft_conf three_voters(void)
{
    struct raft_conf c = {.n = 3};
    for (uint32_t i = 0; i < 3; i++)
        c.members[i] =
            (struct raft_member){.id = i + 1, .role = i == 2 ? RAFT_LEARNER : RAFT_VOTER};
    return c;
}

static uint8_t snap_bytes[8192];

static struct raft_snapshot make_snapshot(raft_index index, raft_term term, uint64_t len)
{
    TRIAD_ASSERT(len <= sizeof(snap_bytes));
    for (uint64_t i = 0; i < len; i++)
        snap_bytes[i] = (uint8_t)(index * 31 + i * 3);
    return (struct raft_snapshot){.index = index, .term = term, .conf = three_voters(),
                                  .data = len ? snap_bytes : NULL, .len = len};
}

static char *make_tmpdir(void)
{
    return make_tmpdir_named("raftlog");
}

#define SEG_SMALL 4096

/* ---- round trips --------------------------------------------------------- */

TEST(raftlog_opens_an_empty_directory_as_an_empty_disk)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    CHECK(disk_equals(rl, &m));
    CHECK_EQ_INT(raftlog_last_index(rl), 0);
    CHECK_EQ_INT(raftlog_snapshot_index(rl), 0);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_reopens_hard_state_and_entries_exactly)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 3, 1, (struct raft_hard_state){1, 1, 0});
    CHECK(persist(rl, &m, &rd));
    /* entries then hard state: two records */
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), 2);
    rd = entries_ready(&b, 4, 5, 2, (struct raft_hard_state){2, 3, 4});
    CHECK(persist(rl, &m, &rd));
    CHECK(reopen_equals(&rl, dir, 0, &m));
    CHECK_EQ_INT(m.n, 8);
    /* and again after more, across the reopen */
    rd = entries_ready(&b, 9, 1, 2, (struct raft_hard_state){2, 3, 9});
    CHECK(persist(rl, &m, &rd));
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_writes_a_hard_state_only_when_it_changed_or_differs_from_the_disk)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 2, 1, (struct raft_hard_state){1, 1, 0});
    CHECK(persist(rl, &m, &rd));
    uint64_t before = wal_last_lsn(raftlog_wal(rl));
    rd = entries_ready(&b, 3, 1, 1, (struct raft_hard_state){1, 1, 0});
    rd.hs_changed = false;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), before + 1); /* the entries alone */
    /* unchanged for the core (it clamps commit at restore) but not the disk's */
    rd = entries_ready(&b, 4, 1, 1, (struct raft_hard_state){1, 1, 2});
    rd.hs_changed = false;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), before + 3);
    /* a ready that persists nothing new appends nothing */
    rd = (struct raft_ready){.persist = true, .hs = {1, 1, 2}, .truncate_from = 5};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), before + 3);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_reopens_a_truncation_in_the_middle_of_the_log)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 0, 2});
    CHECK(persist(rl, &m, &rd));
    /* a new leader's entries replace 6..10 */
    rd = entries_ready(&b, 6, 3, 2, (struct raft_hard_state){2, 0, 2});
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(model_last(&m), 8);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    /* a truncation alone, no entries after it */
    rd = (struct raft_ready){.persist = true, .hs = {2, 0, 2}, .truncate_from = 4};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(model_last(&m), 3);
    CHECK_EQ_INT(raftlog_last_index(rl), 3);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    rd = entries_ready(&b, 4, 2, 3, (struct raft_hard_state){3, 2, 5});
    CHECK(persist(rl, &m, &rd));
    CHECK(reopen_equals(&rl, dir, 0, &m));
    CHECK_EQ_INT(m.ents[3].term, 3);
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_reopens_a_local_compaction_with_its_snapshot_bytes)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 8});
    CHECK(persist(rl, &m, &rd));
    struct raft_snapshot s = make_snapshot(6, 1, 1000);
    rd = entries_ready(&b, 11, 2, 1, (struct raft_hard_state){1, 1, 9});
    rd.snapshot = &s;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(raftlog_snapshot_index(rl), 6);
    CHECK_EQ_INT(m.n, 6); /* 7..12 */
    CHECK_EQ_INT(count_snap_files(dir), 1);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    /* an empty snapshot, and one covering the whole log */
    s = make_snapshot(12, 1, 0);
    rd = (struct raft_ready){.persist = true, .hs = {1, 1, 12}, .hs_changed = true,
                             .snapshot = &s, .truncate_from = 13};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(m.n, 0);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    rd = entries_ready(&b, 13, 2, 2, (struct raft_hard_state){2, 1, 12});
    CHECK(persist(rl, &m, &rd));
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

static int count_prepared_files(const char *dir)
{
    return list_files(dir, "raftsnap-", ".pre", NULL, NULL, 0);
}

/* A compaction's snapshot file written elsewhere (the server's forked
 * child) is renamed into place by the persist, which writes none of its
 * bytes; a prepared file for another snapshot is not used and goes; one
 * that vanished before the persist is written afresh from the bytes; a
 * discarded one goes at once, and one no persist took at the next open. */
TEST(raftlog_a_compaction_renames_a_snapshot_file_written_elsewhere)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 8});
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    struct raft_snapshot s = make_snapshot(6, 1, 1000);
    uint32_t crc = 0;
    CHECK_EQ_INT(raftlog_snap_prepare(dir, &s, &crc, errmsg, sizeof(errmsg)), 0);
    CHECK(crc == crc32c(0, s.data, (size_t)s.len));
    CHECK_EQ_INT(count_prepared_files(dir), 1);
    raftlog_snap_prepared(rl, &s, crc);
    /* any write now fails: the persist must write none */
    set_faults((struct fs_faults){.write_fail_nth = 1});
    rd = entries_ready(&b, 11, 2, 1, (struct raft_hard_state){1, 1, 9});
    rd.snapshot = &s;
    CHECK(persist(rl, &m, &rd));
    set_faults((struct fs_faults){0});
    CHECK_EQ_INT(count_prepared_files(dir), 0);
    CHECK_EQ_INT(count_snap_files(dir), 1);
    CHECK(reopen_equals(&rl, dir, 0, &m)); /* the bytes read back are the snapshot's */

    /* prepared for index 9, compacted to 10: written here, the other gone */
    struct raft_snapshot s9 = make_snapshot(9, 1, 500);
    CHECK_EQ_INT(raftlog_snap_prepare(dir, &s9, &crc, errmsg, sizeof(errmsg)), 0);
    raftlog_snap_prepared(rl, &s9, crc);
    s = make_snapshot(10, 1, 700);
    rd = entries_ready(&b, 13, 1, 1, (struct raft_hard_state){1, 1, 11});
    rd.snapshot = &s;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(count_prepared_files(dir), 0);
    CHECK(reopen_equals(&rl, dir, 0, &m));

    /* prepared, but its file gone by the persist: written from the bytes */
    s = make_snapshot(11, 1, 400);
    CHECK_EQ_INT(raftlog_snap_prepare(dir, &s, &crc, errmsg, sizeof(errmsg)), 0);
    raftlog_snap_prepared(rl, &s, crc);
    char pre[4096];
    CHECK_EQ_INT(list_files(dir, "raftsnap-", ".pre", pre, NULL, sizeof(pre)), 1);
    CHECK_EQ_INT(unlink(pre), 0);
    rd = entries_ready(&b, 14, 1, 1, (struct raft_hard_state){1, 1, 12});
    rd.snapshot = &s;
    CHECK(persist(rl, &m, &rd));
    CHECK(reopen_equals(&rl, dir, 0, &m));

    /* discarded (its writer failed): gone at once */
    s = make_snapshot(12, 1, 300);
    CHECK_EQ_INT(raftlog_snap_prepare(dir, &s, &crc, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(count_prepared_files(dir), 1);
    raftlog_snap_discard(rl, 12);
    CHECK_EQ_INT(count_prepared_files(dir), 0);

    /* prepared and never persisted: the next open removes it */
    CHECK_EQ_INT(raftlog_snap_prepare(dir, &s, &crc, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(count_prepared_files(dir), 1);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    CHECK_EQ_INT(count_prepared_files(dir), 0);
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_reopens_a_snapshot_install_that_drops_the_whole_log)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 3});
    CHECK(persist(rl, &m, &rd));
    /* far ahead of the log, with the leader's next entries in the ready */
    struct raft_snapshot s = make_snapshot(50, 3, 777);
    rd = entries_ready(&b, 51, 2, 3, (struct raft_hard_state){3, 0, 50});
    rd.snapshot = &s;
    rd.snapshot_install = true;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(raftlog_snapshot_index(rl), 50);
    CHECK_EQ_INT(raftlog_last_index(rl), 52);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    /* behind the log's end: the log still goes */
    s = make_snapshot(51, 3, 10);
    rd = (struct raft_ready){.persist = true, .hs = {4, 0, 51}, .hs_changed = true,
                             .snapshot = &s, .snapshot_install = true, .truncate_from = 52};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(m.n, 0);
    CHECK_EQ_INT(raftlog_last_index(rl), 51);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    /* below the recorded snapshot (an install is unconditional) */
    s = make_snapshot(20, 4, 5);
    rd = (struct raft_ready){.persist = true, .hs = {4, 0, 51}, .snapshot = &s,
                             .snapshot_install = true, .truncate_from = 21};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(raftlog_snapshot_index(rl), 20);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_skips_a_compaction_not_past_the_recorded_snapshot)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 9});
    CHECK(persist(rl, &m, &rd));
    struct raft_snapshot s = make_snapshot(8, 1, 100);
    rd = (struct raft_ready){.persist = true, .hs = {1, 1, 9}, .snapshot = &s, .truncate_from = 11};
    CHECK(persist(rl, &m, &rd));
    uint64_t before = wal_last_lsn(raftlog_wal(rl));
    struct raft_snapshot older = make_snapshot(7, 1, 50);
    rd.snapshot = &older;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), before);
    CHECK_EQ_INT(raftlog_snapshot_index(rl), 8);
    CHECK_EQ_INT(count_snap_files(dir), 1);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_splits_big_readies_into_records_and_a_torn_one_keeps_a_prefix)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    /* three 1.5 MiB entries and one bigger than a record's limit */
    const uint32_t big = 3u << 19;
    const uint32_t huge = RAFTLOG_ENTRIES_RECORD_BYTES_MAX + 100;
    uint8_t *data = malloc(huge + 8); /* entry i starts at data + i */
    for (uint32_t i = 0; i < huge + 8; i++)
        data[i] = (uint8_t)(i * 7 + i / 251);
    struct raft_entry ents[5];
    for (int i = 0; i < 5; i++)
        ents[i] = (struct raft_entry){.term = 1, .index = (raft_index)i + 1, .type = 1,
                                      .len = i == 3 ? huge : (i == 4 ? 1 : big), .data = data + i};
    struct raft_ready rd = {.persist = true, .hs_changed = true, .hs = {1, 1, 0},
                            .truncate_from = 1, .entries = ents, .n_entries = 5};
    uint64_t before = wal_last_lsn(raftlog_wal(rl));
    struct model before_m = {0};
    CHECK(persist(rl, &m, &rd));
    /* [1 2] [3] [4] [5] then the hard state */
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)) - before, 5);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    /* cut inside the record holding entry 4: entries 1..3 remain */
    char seg[600];
    list_files(dir, "wal-", ".log", NULL, seg, sizeof(seg));
    struct seg_rec recs[16];
    size_t nrec = parse_segment(seg, recs, 16);
    CHECK_EQ_INT(nrec, 5);
    size_t len;
    char *full = read_file(seg, &len);
    write_file(seg, full, (size_t)(recs[2].off + recs[2].bytes / 2));
    struct model want = {0};
    model_apply_ready(&want, &rd, 2);
    CHECK_EQ_INT(want.n, 3);
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    CHECK(disk_equals(rl, &want));
    CHECK_EQ_INT(lg.count, 1); /* the torn tail, logged by wal.c */
    raftlog_close(rl);
    free(full);
    free(data);
    model_free(&want);
    model_free(&before_m);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

/* ---- torn tails ---------------------------------------------------------- */

/* Persist `setup`, sync; persist `last` (one record), sync; then cut the
 * segment at every byte of that record: reopen gives the state before it
 * (and at its end, the state after it). */
static int torn_at_every_offset(const struct raft_ready *setup, size_t n_setup,
                                const struct raft_ready *last)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model before = {0}, after = {0};
    int bad = 0;
    TRIAD_ASSERT(open_rl(&rl, dir, SEG_SMALL * 4) == 0);
    for (size_t i = 0; i < n_setup; i++)
        if (!persist(rl, &before, &setup[i]))
            bad++;
    if (sync_rl(rl) != 0)
        bad++;
    model_copy(&after, &before);
    uint64_t first_lsn = wal_last_lsn(raftlog_wal(rl)) + 1;
    if (!persist(rl, &after, last) || wal_last_lsn(raftlog_wal(rl)) != first_lsn)
        bad++;
    if (sync_rl(rl) != 0)
        bad++;
    raftlog_close(rl);

    char seg[600], snap[600];
    list_files(dir, "wal-", ".log", NULL, seg, sizeof(seg));
    struct seg_rec recs[256];
    size_t nrec = parse_segment(seg, recs, 256);
    if (nrec == 0 || recs[nrec - 1].lsn != first_lsn)
        return bad + 1000;
    long start = recs[nrec - 1].off, end = start + recs[nrec - 1].bytes;
    size_t full_len, snap_len = 0;
    char *full = read_file(seg, &full_len);
    char *snap_data = NULL;
    bool has_snap_file = count_snap_files(dir) > 0;
    if (has_snap_file) {
        /* the newest file is the one the last record names, if it does */
        list_files(dir, "raftsnap-", ".snap", NULL, snap, sizeof(snap));
        snap_data = read_file(snap, &snap_len);
    }
    for (long cut = start; cut <= end; cut++) {
        write_file(seg, full, (size_t)cut);
        if (has_snap_file)
            write_file(snap, snap_data, snap_len);
        if (open_rl(&rl, dir, SEG_SMALL * 4) != 0) {
            fprintf(stderr, "    cut %ld: %s\n", cut, errmsg);
            bad++;
            continue;
        }
        const struct model *want = cut == end ? &after : &before;
        if (!disk_equals(rl, want) || count_snap_files(dir) != (want->has_snap ? 1 : 0))
            bad++;
        /* a cut inside the record is truncated and logged */
        int torn_lines = lg.count - lg.snaps_removed;
        if (torn_lines != (cut > start && cut < end ? 1 : 0))
            bad++;
        raftlog_close(rl);
    }
    free(full);
    free(snap_data);
    model_free(&before);
    model_free(&after);
    rm_rf(dir);
    free(dir);
    return bad;
}

TEST(raftlog_a_torn_last_record_gives_the_state_before_it_at_every_offset)
{
    struct batch b1, b2, b3;
    struct raft_ready setup[3];
    setup[0] = entries_ready(&b1, 1, 10, 1, (struct raft_hard_state){1, 1, 5});
    setup[1] = entries_ready(&b2, 8, 5, 2, (struct raft_hard_state){2, 2, 6});
    struct raft_snapshot s = make_snapshot(4, 1, 300);
    setup[2] = (struct raft_ready){.persist = true, .hs = {2, 2, 6}, .snapshot = &s,
                                   .truncate_from = 13};

    /* the last record: entries (with a truncation) */
    struct raft_ready last = entries_ready(&b3, 11, 3, 3, (struct raft_hard_state){2, 2, 6});
    last.hs_changed = false;
    CHECK_EQ_INT(torn_at_every_offset(setup, 3, &last), 0);

    /* the last record: a hard state */
    last = (struct raft_ready){.persist = true, .hs_changed = true, .hs = {5, 3, 12},
                               .truncate_from = 13};
    CHECK_EQ_INT(torn_at_every_offset(setup, 3, &last), 0);

    /* the last record: a compaction's snapshot (its file is written, then
     * orphaned by the cut: reopen removes it) */
    struct raft_snapshot s2 = {.index = 9, .term = 2, .conf = three_voters(),
                               .data = (uint8_t *)"compacted state", .len = 15};
    last = (struct raft_ready){.persist = true, .hs = {2, 2, 6}, .snapshot = &s2,
                               .truncate_from = 13};
    CHECK_EQ_INT(torn_at_every_offset(setup, 3, &last), 0);

    /* the last record: an install */
    struct raft_snapshot s3 = {.index = 40, .term = 4, .conf = three_voters(),
                               .data = (uint8_t *)"installed", .len = 9};
    last = (struct raft_ready){.persist = true, .hs = {2, 2, 6}, .snapshot = &s3,
                               .snapshot_install = true, .truncate_from = 41};
    CHECK_EQ_INT(torn_at_every_offset(setup, 3, &last), 0);
}

TEST(raftlog_a_lost_batch_leaves_the_synced_state_and_removes_its_orphan_snapshot)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0}, durable = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 9});
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    model_copy(&durable, &m);
    struct raft_snapshot s = make_snapshot(9, 1, 500);
    rd = entries_ready(&b, 11, 2, 1, (struct raft_hard_state){1, 1, 10});
    rd.snapshot = &s;
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(count_snap_files(dir), 1); /* durable before its record */
    raftlog_close(rl);                       /* the batch never written */
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    CHECK(disk_equals(rl, &durable));
    CHECK_EQ_INT(count_snap_files(dir), 0);
    CHECK_EQ_INT(lg.snaps_removed, 1);
    raftlog_close(rl);
    model_free(&m);
    model_free(&durable);
    rm_rf(dir);
    free(dir);
}

/* ---- compaction ---------------------------------------------------------- */

TEST(raftlog_compaction_deletes_old_segments_and_reopen_gives_the_same_disk)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, SEG_SMALL), 0);
    raft_index next = 1;
    for (int i = 0; i < 200; i++) {
        struct raft_ready rd =
            entries_ready(&b, next, 5, 1, (struct raft_hard_state){1, 1, next + 2});
        CHECK(persist(rl, &m, &rd));
        next += 5;
        if (i % 10 == 9)
            CHECK_EQ_INT(sync_rl(rl), 0);
    }
    int segs_before = count_segments(dir);
    CHECK(segs_before > 10);
    /* nothing to reclaim without a snapshot */
    raftlog_compact(rl, wal_last_lsn(raftlog_wal(rl)));
    CHECK_EQ_INT(count_segments(dir), segs_before);
    struct raft_snapshot s = make_snapshot(next - 3, 1, 2000);
    struct raft_ready rd = {.persist = true, .hs = {1, 1, next - 1}, .hs_changed = true,
                            .snapshot = &s, .truncate_from = next};
    CHECK(persist(rl, &m, &rd));
    uint64_t snap_lsn = wal_last_lsn(raftlog_wal(rl)) - 1;
    /* not durable yet: nothing may go */
    raftlog_compact(rl, snap_lsn - 1);
    CHECK_EQ_INT(count_segments(dir), segs_before);
    CHECK_EQ_INT(sync_rl(rl), 0);
    raftlog_compact(rl, wal_last_lsn(raftlog_wal(rl)));
    int segs_after = count_segments(dir);
    CHECK(segs_after < 4);
    CHECK(oldest_segment_lsn(dir) > 1);
    CHECK(reopen_equals(&rl, dir, SEG_SMALL, &m));
    /* and the log goes on, is compacted again, reopens again */
    for (int i = 0; i < 100; i++) {
        rd = entries_ready(&b, next, 5, 2, (struct raft_hard_state){2, 1, next + 2});
        CHECK(persist(rl, &m, &rd));
        next += 5;
        if (i % 10 == 9)
            CHECK_EQ_INT(sync_rl(rl), 0);
    }
    s = make_snapshot(next - 10, 2, 100);
    rd = (struct raft_ready){.persist = true, .hs = {2, 1, next - 1}, .hs_changed = true,
                             .snapshot = &s, .truncate_from = next};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    uint64_t oldest = oldest_segment_lsn(dir);
    raftlog_compact(rl, wal_last_lsn(raftlog_wal(rl)));
    CHECK(oldest_segment_lsn(dir) > oldest);
    CHECK_EQ_INT(count_snap_files(dir), 1);
    CHECK(reopen_equals(&rl, dir, SEG_SMALL, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

/* Compaction through a reaper whose first deletion fails: that segment
 * and every newer one stay (a gap would make the log refuse to open).
 * Round 1 reopens after such a failure; round 2 fails again and round 3's
 * compaction, with no reopen in between, deletes what round 2 left. */
TEST(raftlog_compaction_through_a_reaper_never_leaves_a_gap_when_a_delete_fails)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    struct reaper *reaper;
    CHECK_EQ_INT(reaper_new(&reaper, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(open_rl(&rl, dir, SEG_SMALL), 0);
    raftlog_set_reaper(rl, reaper);
    raft_index next = 1;
    for (int round = 1; round <= 3; round++) {
        for (int i = 0; i < 100; i++) {
            struct raft_ready rd = entries_ready(&b, next, 5, (raft_term)round,
                                                 (struct raft_hard_state){(raft_term)round, 1, next + 2});
            CHECK(persist(rl, &m, &rd));
            next += 5;
            if (i % 10 == 9)
                CHECK_EQ_INT(sync_rl(rl), 0);
        }
        struct raft_snapshot s = make_snapshot(next - 3, (raft_term)round, 500);
        struct raft_ready rd = {.persist = true, .hs = {(raft_term)round, 1, next - 1},
                                .hs_changed = true, .snapshot = &s, .truncate_from = next};
        CHECK(persist(rl, &m, &rd));
        CHECK_EQ_INT(sync_rl(rl), 0);
        int segs_before = count_segments(dir);
        uint64_t oldest = oldest_segment_lsn(dir);
        /* the first unlink: round 1 has no older snapshot file, so it is
         * the oldest segment's; round 2's is the old snapshot's, then the
         * oldest segment's */
        if (round < 3)
            fs_faults.unlink_fail_nth = round;
        raftlog_compact(rl, wal_last_lsn(raftlog_wal(rl)));
        reaper_wait(reaper);
        fs_faults.unlink_fail_nth = 0;
        if (round < 3) {
            /* no segment went: the failed one held back the newer ones */
            CHECK_EQ_INT(count_segments(dir), segs_before);
            CHECK_EQ_INT(oldest_segment_lsn(dir), (long long)oldest);
        } else {
            /* round 2's leftovers went with this round's */
            CHECK(count_segments(dir) < 4);
            CHECK(oldest_segment_lsn(dir) > oldest);
        }
        if (round != 2) {
            CHECK(reopen_equals(&rl, dir, SEG_SMALL, &m));
            raftlog_set_reaper(rl, reaper);
        }
    }
    struct reaper_stats st;
    reaper_stats(reaper, &st, errmsg, sizeof(errmsg));
    CHECK_EQ_INT(st.failed, 2);
    CHECK(st.kept > 0);
    raftlog_close(rl);
    reaper_free(reaper);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_compaction_rewrites_an_old_hard_state_so_its_segment_can_go)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, SEG_SMALL), 0);
    /* the hard state is written once, then never changes */
    struct raft_ready rd = entries_ready(&b, 1, 5, 1, (struct raft_hard_state){1, 2, 0});
    CHECK(persist(rl, &m, &rd));
    raft_index next = 6;
    for (int i = 0; i < 200; i++) {
        rd = entries_ready(&b, next, 5, 1, (struct raft_hard_state){1, 2, 0});
        rd.hs_changed = false;
        CHECK(persist(rl, &m, &rd));
        next += 5;
        if (i % 10 == 9)
            CHECK_EQ_INT(sync_rl(rl), 0);
    }
    int segs_before = count_segments(dir);
    struct raft_snapshot s = make_snapshot(next - 2, 1, 64);
    rd = (struct raft_ready){.persist = true, .hs = {1, 2, 0}, .snapshot = &s,
                             .truncate_from = next};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    uint64_t last = wal_last_lsn(raftlog_wal(rl));
    /* the hard state at lsn 2 holds the first segment: it is written again */
    raftlog_compact(rl, last);
    CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), last + 1);
    CHECK_EQ_INT(count_segments(dir), segs_before);
    CHECK_EQ_INT(sync_rl(rl), 0);
    raftlog_compact(rl, last + 1);
    CHECK(count_segments(dir) < 3);
    CHECK(reopen_equals(&rl, dir, SEG_SMALL, &m));
    CHECK_EQ_INT(raftlog_hard_state(rl).vote, 2);
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_deletes_a_superseded_snapshot_file_once_the_newer_record_is_durable)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 20, 1, (struct raft_hard_state){1, 1, 20});
    CHECK(persist(rl, &m, &rd));
    struct raft_snapshot s = make_snapshot(5, 1, 100);
    rd = (struct raft_ready){.persist = true, .hs = {1, 1, 20}, .snapshot = &s,
                             .truncate_from = 21};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    uint64_t durable = wal_last_lsn(raftlog_wal(rl));
    s = make_snapshot(10, 1, 100);
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(count_snap_files(dir), 2);
    /* the newer record is not durable: a crash would need the older file */
    raftlog_compact(rl, durable);
    CHECK_EQ_INT(count_snap_files(dir), 2);
    CHECK_EQ_INT(sync_rl(rl), 0);
    raftlog_compact(rl, wal_last_lsn(raftlog_wal(rl)));
    CHECK_EQ_INT(count_snap_files(dir), 1);
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

/* ---- corruption ---------------------------------------------------------- */

static int raw_cb(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len)
{
    return 0;
}

/* Append records straight to the WAL of dir (which starts at lsn 1). */
static void raw_append(const char *dir, uint8_t type, const struct tbuf *body)
{
    struct wal *w;
    TRIAD_ASSERT(wal_open(&w, dir, 0, 0, raw_cb, NULL, NULL, NULL, errmsg, sizeof(errmsg)) == 0);
    wal_append(w, type, body->data, body->len);
    struct wal_batch b;
    wal_take_batch(w, &b);
    TRIAD_ASSERT(wal_write_batch(w, &b, true, errmsg, sizeof(errmsg)) == 0);
    wal_batch_free(&b);
    wal_close(w);
}

static void raw_entries(const char *dir, raft_index from, uint32_t n, raft_term term)
{
    struct tbuf t = {0};
    tbuf_append_u64le(&t, from);
    tbuf_append_u32le(&t, n);
    for (uint32_t i = 0; i < n; i++) {
        tbuf_append_u64le(&t, term);
        tbuf_append_u64le(&t, from + i);
        tbuf_appendc(&t, 1);
        tbuf_append_u32le(&t, 2);
        tbuf_append(&t, "ab", 2);
    }
    raw_append(dir, RAFTLOG_REC_ENTRIES, &t);
    tbuf_free(&t);
}

/* raftlog_open refuses dir with TRIAD_ECORRUPT and a message holding `a`
 * and `b` (b may be NULL). */
static bool refuses(const char *dir, const char *a, const char *b)
{
    struct raftlog *rl;
    int rc = open_rl(&rl, dir, 0);
    if (rc == 0)
        raftlog_close(rl);
    bool ok = rc == TRIAD_ECORRUPT && strstr(errmsg, a) != NULL && (b == NULL || strstr(errmsg, b));
    if (!ok)
        fprintf(stderr, "    rc %d, errmsg \"%s\", wanted \"%s\" and \"%s\"\n", rc, errmsg, a,
                b ? b : "");
    return ok;
}

TEST(raftlog_refuses_entries_that_leave_a_hole)
{
    char *dir = make_tmpdir();
    raw_entries(dir, 1, 3, 1);
    raw_entries(dir, 5, 1, 1);
    CHECK(refuses(dir, "leave a hole after index 3", "lsn 2"));
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_refuses_a_log_that_does_not_start_at_index_one)
{
    char *dir = make_tmpdir();
    raw_entries(dir, 2, 3, 1);
    CHECK(refuses(dir, "leave a hole after index 0", "lsn 1"));
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_refuses_entries_that_go_back_into_the_snapshot)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 9});
    CHECK(persist(rl, &m, &rd));
    struct raft_snapshot s = make_snapshot(8, 1, 10);
    rd = (struct raft_ready){.persist = true, .hs = {1, 1, 9}, .snapshot = &s, .truncate_from = 11};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    raftlog_close(rl);
    raw_entries(dir, 8, 1, 1);
    CHECK(refuses(dir, "go back into the snapshot (index 8)", "lsn 4"));
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_refuses_terms_that_go_down)
{
    char *dir = make_tmpdir();
    raw_entries(dir, 1, 3, 2);
    raw_entries(dir, 4, 1, 1);
    CHECK(refuses(dir, "entry 4", "below the term 2"));
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_refuses_an_unknown_record_type_and_bad_framing)
{
    char *dir = make_tmpdir();
    struct tbuf t = {0};
    tbuf_append(&t, "xyz", 3);
    raw_append(dir, 19, &t);
    CHECK(refuses(dir, "unknown record type 19", "lsn 1"));
    rm_rf(dir);
    free(dir);

    /* an entries record claiming more entries than it holds */
    dir = make_tmpdir();
    tbuf_reset(&t);
    tbuf_append_u64le(&t, 1);
    tbuf_append_u32le(&t, 1000000);
    raw_append(dir, RAFTLOG_REC_ENTRIES, &t);
    CHECK(refuses(dir, "claims 1000000 entries", NULL));
    rm_rf(dir);
    free(dir);

    /* an entry whose length runs past its record */
    dir = make_tmpdir();
    tbuf_reset(&t);
    tbuf_append_u64le(&t, 1);
    tbuf_append_u32le(&t, 1);
    tbuf_append_u64le(&t, 1);
    tbuf_append_u64le(&t, 1);
    tbuf_appendc(&t, 1);
    tbuf_append_u32le(&t, 50);
    tbuf_append(&t, "short", 5);
    raw_append(dir, RAFTLOG_REC_ENTRIES, &t);
    CHECK(refuses(dir, "runs past the record", NULL));
    rm_rf(dir);
    free(dir);

    /* a compaction that disagrees with the log about where it ends */
    dir = make_tmpdir();
    raw_entries(dir, 1, 3, 1);
    tbuf_reset(&t);
    tbuf_appendc(&t, 0);
    tbuf_append_u64le(&t, 2);   /* index */
    tbuf_append_u64le(&t, 1);   /* term */
    tbuf_append_u64le(&t, 100); /* last */
    tbuf_append_u64le(&t, 0);   /* len */
    tbuf_append_u32le(&t, 0);   /* crc */
    struct raft_conf conf = three_voters();
    uint8_t cbuf[RAFT_CONF_BYTES_MAX];
    tbuf_append(&t, cbuf, raft_conf_encode(&conf, cbuf));
    raw_append(dir, RAFTLOG_REC_SNAPSHOT, &t);
    CHECK(refuses(dir, "says the log ends at 100, but it ends at 3", "lsn 2"));
    rm_rf(dir);
    free(dir);

    /* a hard state of the wrong size */
    dir = make_tmpdir();
    tbuf_reset(&t);
    tbuf_append_u64le(&t, 1);
    raw_append(dir, RAFTLOG_REC_HARD_STATE, &t);
    CHECK(refuses(dir, "hard state record of 8 bytes", NULL));
    rm_rf(dir);
    free(dir);
    tbuf_free(&t);
}

TEST(raftlog_refuses_a_log_whose_oldest_segments_were_deleted)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, SEG_SMALL), 0);
    raft_index next = 1;
    for (int i = 0; i < 30; i++) {
        struct raft_ready rd = entries_ready(&b, next, 5, 1, (struct raft_hard_state){1, 1, 0});
        CHECK(persist(rl, &m, &rd));
        next += 5;
        CHECK_EQ_INT(sync_rl(rl), 0);
    }
    raftlog_close(rl);
    char first[600];
    list_files(dir, "wal-", ".log", first, NULL, sizeof(first));
    CHECK(unlink(first) == 0);
    CHECK(refuses(dir, "records in between are missing", NULL));
    model_free(&m);
    rm_rf(dir);
    free(dir);

    /* hard states alone are never compacted, so losing their head shows */
    dir = make_tmpdir();
    memset(&m, 0, sizeof(m));
    CHECK_EQ_INT(open_rl(&rl, dir, SEG_SMALL), 0);
    for (uint64_t t = 1; t <= 300; t++) {
        struct raft_ready rd = {.persist = true, .hs_changed = true, .hs = {t, 1, 0},
                                .truncate_from = 1};
        CHECK(persist(rl, &m, &rd));
    }
    CHECK_EQ_INT(sync_rl(rl), 0);
    raftlog_compact(rl, wal_last_lsn(raftlog_wal(rl)));
    CHECK(count_segments(dir) > 1);
    CHECK(oldest_segment_lsn(dir) == 1);
    raftlog_close(rl);
    list_files(dir, "wal-", ".log", first, NULL, sizeof(first));
    CHECK(unlink(first) == 0);
    CHECK(refuses(dir, "holds no snapshot and no entries", NULL));
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_refuses_a_corrupt_or_missing_snapshot_file_naming_it)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 9});
    CHECK(persist(rl, &m, &rd));
    struct raft_snapshot s = make_snapshot(8, 1, 1000);
    rd = (struct raft_ready){.persist = true, .hs = {1, 1, 9}, .snapshot = &s, .truncate_from = 11};
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    raftlog_close(rl);
    char path[600];
    list_files(dir, "raftsnap-", ".snap", NULL, path, sizeof(path));
    size_t len;
    char *good = read_file(path, &len);
    CHECK_EQ_INT(len, 48 + 1000);

    flip_byte(path, 48 + 500);
    CHECK(refuses(dir, path, "checksum mismatch"));
    write_file(path, good, len);
    flip_byte(path, 20); /* the index, in the header */
    CHECK(refuses(dir, path, "header checksum mismatch"));
    write_file(path, good, len - 1);
    CHECK(refuses(dir, path, "1047 bytes, expected 1048"));
    write_file(path, good, 30);
    CHECK(refuses(dir, path, "short header"));
    CHECK(unlink(path) == 0);
    CHECK(refuses(dir, path, "is missing"));
    /* refusing removed nothing: put the file back and it opens */
    write_file(path, good, len);
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    CHECK(disk_equals(rl, &m));
    raftlog_close(rl);
    free(good);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

/* ---- injected faults ----------------------------------------------------- */

TEST(raftlog_a_snapshot_that_cannot_be_made_durable_fails_with_eio_and_changes_nothing)
{
    char *dir = make_tmpdir();
    struct raftlog *rl;
    struct model m = {0};
    struct batch b;
    CHECK_EQ_INT(open_rl(&rl, dir, 0), 0);
    struct raft_ready rd = entries_ready(&b, 1, 10, 1, (struct raft_hard_state){1, 1, 9});
    CHECK(persist(rl, &m, &rd));
    CHECK_EQ_INT(sync_rl(rl), 0);
    struct raft_snapshot s = make_snapshot(8, 1, 1000);
    struct batch b2;
    rd = entries_ready(&b2, 11, 1, 1, (struct raft_hard_state){1, 1, 10});
    rd.snapshot = &s;

    struct fs_faults faults[] = {
        {.write_fail_nth = 1},                            /* the header */
        {.write_fail_nth = 2, .write_partial_bytes = 77}, /* the bytes, torn */
        {.sync_fail_nth = 1},                             /* the file's fsync */
        {.sync_fail_nth = 2},                             /* the directory's */
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(faults); i++) {
        uint64_t before = wal_last_lsn(raftlog_wal(rl));
        uint64_t lsn = 0;
        set_faults(faults[i]);
        errmsg[0] = '\0';
        int rc = raftlog_persist(rl, &rd, &lsn, errmsg, sizeof(errmsg));
        set_faults((struct fs_faults){0});
        CHECK_EQ_INT(rc, TRIAD_EIO);
        CHECK(strstr(errmsg, "raftlog: ") != NULL && strstr(errmsg, dir) != NULL);
        CHECK_EQ_INT(wal_last_lsn(raftlog_wal(rl)), before);
        CHECK(image_matches(rl, &m));
        /* no temporary file stays; a renamed one only when the directory's
         * fsync failed, and the next open removes it */
        CHECK_EQ_INT(list_files(dir, "raftsnap-", ".tmp", NULL, NULL, 0), 0);
        CHECK_EQ_INT(count_snap_files(dir), i == 3 ? 1 : 0);
        if (i == 3) {
            CHECK(reopen_equals(&rl, dir, 0, &m));
            CHECK_EQ_INT(lg.snaps_removed, 1);
        }
    }
    /* the same ready goes through once the disk behaves */
    CHECK(persist(rl, &m, &rd));
    CHECK(reopen_equals(&rl, dir, 0, &m));
    raftlog_close(rl);
    model_free(&m);
    rm_rf(dir);
    free(dir);
}

TEST(raftlog_open_fails_with_eio_when_the_directory_cannot_be_created)
{
    struct raftlog *rl;
    int rc = open_rl(&rl, "/proc/triad-raftlog-test/x", 0);
    CHECK_EQ_INT(rc, TRIAD_EIO);
    CHECK(strstr(errmsg, "/proc/triad-raftlog-test/x") != NULL);
}

/* ---- randomized ---------------------------------------------------------- */

/* What a ready generated for the random run points into. */
struct gen {
    struct raft_entry ents[8];
    uint8_t data[8][200];
    struct raft_snapshot snap;
    uint8_t snap_data[3000];
};

/* A ready as the core could hand out for the disk `m` describes: terms
 * never go down, truncations stay above the commit index, compactions
 * at or below it. */
static void gen_ready(const struct model *m, struct raft_ready *rd, struct gen *g)
{
    memset(rd, 0, sizeof(*rd));
    rd->persist = true;
    struct raft_hard_state hs = m->hs;
    if (hs.term == 0 || rng_chance(150)) {
        hs.term += rng_range(1, 2);
        hs.vote = (raft_id)rng_range(0, 5);
    } else if (rng_chance(30)) {
        hs.vote = (raft_id)rng_range(0, 5);
    }
    raft_index base = m->snap_index, last = model_last(m);
    /* as raft_restore clamps it: a torn ready may have kept an install
     * without the hard state that followed it */
    raft_index commit = TRIAD_MIN(TRIAD_MAX(hs.commit, base), last);
    raft_term base_term = m->snap_term;
    uint64_t what = rng_range(0, 999);
    bool install = false, snap = false;
    if (what < 50 && commit > base) {
        raft_index s = rng_range(base + 1, commit);
        snap = true;
        g->snap.index = s;
        g->snap.term = model_term_at(m, s);
        base = s;
        base_term = g->snap.term;
    } else if (what < 70) {
        /* a leader sends a snapshot past the follower's commit index */
        raft_index s = rng_range(TRIAD_MAX(base, commit) + 1, last + 30);
        install = snap = true;
        g->snap.index = s;
        g->snap.term = hs.term;
        base = last = s;
        base_term = hs.term;
        commit = TRIAD_MAX(commit, s);
    }
    if (snap) {
        g->snap.conf = (struct raft_conf){.n = (uint32_t)rng_range(0, 4)};
        for (uint32_t i = 0; i < g->snap.conf.n; i++)
            g->snap.conf.members[i] = (struct raft_member){
                .id = i + 1, .role = rng_chance(500) ? RAFT_VOTER : RAFT_LEARNER};
        g->snap.len = rng_range(0, sizeof(g->snap_data));
        for (uint64_t i = 0; i < g->snap.len; i++)
            g->snap_data[i] = (uint8_t)rng_next();
        g->snap.data = g->snap_data;
        rd->snapshot = &g->snap;
        rd->snapshot_install = install;
    }

    raft_index from = last + 1;
    size_t n = 0;
    if (install || rng_chance(700)) {
        raft_index lo = TRIAD_MAX(commit, base) + 1;
        from = install ? base + 1 : rng_range(lo, last + 1);
        n = (size_t)rng_range(from <= last ? 0 : 1, 6);
        raft_term t = from - 1 == base ? base_term : model_term_at(m, from - 1);
        if (rng_chance(100)) {
            hs.term++;
            hs.vote = 0;
        }
        for (size_t i = 0; i < n; i++) {
            if (t < hs.term && rng_chance(200))
                t = rng_range(t + 1, hs.term);
            uint32_t len = (uint32_t)rng_range(0, sizeof(g->data[i]));
            for (uint32_t j = 0; j < len; j++)
                g->data[i][j] = (uint8_t)rng_next();
            g->ents[i] = (struct raft_entry){.term = t, .index = from + i,
                                             .type = (uint8_t)rng_range(1, 3), .len = len,
                                             .data = g->data[i]};
        }
        last = n > 0 ? from + n - 1 : from - 1;
    }
    if (rng_chance(500))
        commit = rng_range(commit, last);
    hs.commit = commit;
    rd->hs = hs;
    rd->hs_changed = hs.term != m->hs.term || hs.vote != m->hs.vote || hs.commit != m->hs.commit;
    rd->truncate_from = from;
    rd->entries = g->ents;
    rd->n_entries = n;
}

struct run {
    char *dir;
    uint64_t seg;
    struct raftlog *rl;
    struct model cur, durable;
    uint64_t durable_lsn;
    int reopens, losses, tears, compactions;
    uint64_t oldest_max;
    int bad;
};

static void run_reopened(struct run *r, const struct model *want, const char *what, int step)
{
    if (open_rl(&r->rl, r->dir, r->seg) != 0) {
        fprintf(stderr, "    step %d (%s): reopen: %s\n", step, what, errmsg);
        r->bad++;
        return;
    }
    if (!disk_equals(r->rl, want) || count_snap_files(r->dir) != (want->has_snap ? 1 : 0)) {
        fprintf(stderr, "    step %d (%s): the disk differs from the model\n", step, what);
        r->bad++;
    }
    model_copy(&r->cur, want);
    model_copy(&r->durable, want);
    r->durable_lsn = wal_last_lsn(raftlog_wal(r->rl));
}

/* Write the ready's batch, close, cut the last segment inside one of the
 * ready's records (or not at all): reopen gives the synced state plus the
 * records before the cut. */
static void run_tear(struct run *r, const struct raft_ready *rd, uint64_t pre_lsn, int step)
{
    uint64_t lsn = wal_last_lsn(raftlog_wal(r->rl));
    size_t total = (size_t)(lsn - pre_lsn);
    if (sync_rl(r->rl) != 0)
        r->bad++;
    raftlog_close(r->rl);
    r->rl = NULL;
    char seg[600];
    list_files(r->dir, "wal-", ".log", NULL, seg, sizeof(seg));
    static struct seg_rec recs[4096];
    size_t nrec = parse_segment(seg, recs, 4096);
    size_t in_last = 0;
    for (size_t i = 0; i < nrec; i++)
        if (recs[i].lsn > pre_lsn)
            in_last++;
    size_t k = (size_t)rng_range(total - in_last, total);
    if (k < total) {
        const struct seg_rec *rec = &recs[nrec - total + k];
        TRIAD_ASSERT(rec->lsn == pre_lsn + 1 + k);
        long cut = rec->off + (long)rng_range(0, (uint64_t)rec->bytes - 1);
        size_t len;
        char *full = read_file(seg, &len);
        write_file(seg, full, (size_t)cut);
        free(full);
    }
    struct model want = {0};
    model_copy(&want, &r->durable);
    model_apply_ready(&want, rd, k);
    run_reopened(r, &want, "torn batch", step);
    model_free(&want);
    r->tears++;
}

static void run_random(uint64_t seed, int steps)
{
    rng_state = seed;
    struct run r = {.dir = make_tmpdir(), .seg = 8192};
    /* Crashes here are simulated by cutting files, not by losing power:
     * real fsyncs would only slow the run down. */
    set_faults((struct fs_faults){.syncs_off = true});
    if (open_rl(&r.rl, r.dir, r.seg) != 0)
        r.bad++;
    static struct gen g;
    for (int step = 0; step < steps && r.bad == 0; step++) {
        struct raft_ready rd;
        gen_ready(&r.cur, &rd, &g);
        uint64_t pre_lsn = wal_last_lsn(raftlog_wal(r.rl));
        if (!persist(r.rl, &r.cur, &rd)) {
            fprintf(stderr, "    step %d: persist\n", step);
            r.bad++;
            break;
        }
        /* compaction sees only the durable point, whatever is pending */
        if (rng_chance(100)) {
            uint64_t oldest = oldest_segment_lsn(r.dir);
            raftlog_compact(r.rl, r.durable_lsn);
            if (oldest_segment_lsn(r.dir) > oldest)
                r.compactions++;
        }
        uint64_t what = rng_range(0, 999);
        if (what < 15 && pre_lsn == r.durable_lsn && wal_last_lsn(raftlog_wal(r.rl)) > pre_lsn) {
            run_tear(&r, &rd, pre_lsn, step);
        } else if (what < 25) {
            /* a crash before the batch was written */
            raftlog_close(r.rl);
            struct model want = {0};
            model_copy(&want, &r.durable);
            run_reopened(&r, &want, "lost batch", step);
            model_free(&want);
            r.losses++;
        } else if (what < 35) {
            if (sync_rl(r.rl) != 0)
                r.bad++;
            raftlog_close(r.rl);
            struct model want = {0};
            model_copy(&want, &r.cur);
            run_reopened(&r, &want, "clean reopen", step);
            model_free(&want);
            r.reopens++;
        } else if (what < 500) {
            if (sync_rl(r.rl) != 0)
                r.bad++;
            r.durable_lsn = wal_last_lsn(raftlog_wal(r.rl));
            model_copy(&r.durable, &r.cur);
            if (rng_chance(500)) {
                uint64_t oldest = oldest_segment_lsn(r.dir);
                raftlog_compact(r.rl, r.durable_lsn);
                if (oldest_segment_lsn(r.dir) > oldest)
                    r.compactions++;
                r.oldest_max = TRIAD_MAX(r.oldest_max, oldest_segment_lsn(r.dir));
            }
        }
        if (r.rl == NULL)
            break;
    }
    if (r.rl != NULL && r.bad == 0) {
        if (sync_rl(r.rl) != 0)
            r.bad++;
        raftlog_close(r.rl);
        run_reopened(&r, &r.cur, "final reopen", steps);
    }
    size_t segs = 0;
    uint64_t bytes = 0;
    if (r.rl != NULL) {
        wal_stats(raftlog_wal(r.rl), &segs, &bytes);
        raftlog_close(r.rl);
    }
    set_faults((struct fs_faults){0});
    if (getenv("RAFTLOG_TEST_VERBOSE") != NULL)
        fprintf(stderr,
                "    seed %" PRIu64 ": tears %d, losses %d, reopens %d, compactions %d, "
                "segments %zu, oldest %" PRIu64 "\n",
                seed, r.tears, r.losses, r.reopens, r.compactions, segs, r.oldest_max);
    /* every kind of event happened, and compaction kept the log short */
    if (r.bad != 0 || r.tears < 5 || r.losses < 5 || r.reopens < 5 || r.compactions < 5 ||
        segs > 16) {
        fprintf(stderr,
                "    seed %" PRIu64 ": bad %d, tears %d, losses %d, reopens %d, compactions %d, "
                "segments %zu\n",
                seed, r.bad, r.tears, r.losses, r.reopens, r.compactions, segs);
        r.bad++;
    }
    CHECK_EQ_INT(r.bad, 0);
    model_free(&r.cur);
    model_free(&r.durable);
    rm_rf(r.dir);
    free(r.dir);
}

TEST(raftlog_matches_a_model_through_thousands_of_random_readies_crashes_and_reopens)
{
    static const uint64_t seeds[] = {1, 0xfeedface, 20240601};
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(seeds); i++)
        run_random(seeds[i], 3000);
}

static void run_all(void)
{
    RUN(raftlog_opens_an_empty_directory_as_an_empty_disk);
    RUN(raftlog_reopens_hard_state_and_entries_exactly);
    RUN(raftlog_writes_a_hard_state_only_when_it_changed_or_differs_from_the_disk);
    RUN(raftlog_reopens_a_truncation_in_the_middle_of_the_log);
    RUN(raftlog_reopens_a_local_compaction_with_its_snapshot_bytes);
    RUN(raftlog_a_compaction_renames_a_snapshot_file_written_elsewhere);
    RUN(raftlog_reopens_a_snapshot_install_that_drops_the_whole_log);
    RUN(raftlog_skips_a_compaction_not_past_the_recorded_snapshot);
    RUN(raftlog_splits_big_readies_into_records_and_a_torn_one_keeps_a_prefix);
    RUN(raftlog_a_torn_last_record_gives_the_state_before_it_at_every_offset);
    RUN(raftlog_a_lost_batch_leaves_the_synced_state_and_removes_its_orphan_snapshot);
    RUN(raftlog_compaction_deletes_old_segments_and_reopen_gives_the_same_disk);
    RUN(raftlog_compaction_rewrites_an_old_hard_state_so_its_segment_can_go);
    RUN(raftlog_compaction_through_a_reaper_never_leaves_a_gap_when_a_delete_fails);
    RUN(raftlog_deletes_a_superseded_snapshot_file_once_the_newer_record_is_durable);
    RUN(raftlog_refuses_entries_that_leave_a_hole);
    RUN(raftlog_refuses_a_log_that_does_not_start_at_index_one);
    RUN(raftlog_refuses_entries_that_go_back_into_the_snapshot);
    RUN(raftlog_refuses_terms_that_go_down);
    RUN(raftlog_refuses_an_unknown_record_type_and_bad_framing);
    RUN(raftlog_refuses_a_log_whose_oldest_segments_were_deleted);
    RUN(raftlog_refuses_a_corrupt_or_missing_snapshot_file_naming_it);
    RUN(raftlog_a_snapshot_that_cannot_be_made_durable_fails_with_eio_and_changes_nothing);
    RUN(raftlog_open_fails_with_eio_when_the_directory_cannot_be_created);
    RUN(raftlog_matches_a_model_through_thousands_of_random_readies_crashes_and_reopens);
}

int main(void)
{
    run_all();
    /* Again through the page cache, as on a filesystem without O_DIRECT. */
    fprintf(stderr, "-- the raftlog tests again with O_DIRECT refused --\n");
    buffered_pass = true;
    set_faults((struct fs_faults){0});
    run_all();
    return test_summary("raftlog");
}
