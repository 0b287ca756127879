/* test_wal.c - the write-ahead log and crc32c: round trips, recovery from
 * torn tails and corruption, rotation, removal, injected I/O errors, and
 * the zero prefill ahead of the records, and the O_DIRECT block writes
 * with their buffered fallback. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common/buf.h"
#include "../../src/common/crc32c.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/store/fs.h"
#include "../../src/store/wal.h"
#include "test.h"
#include "test_dir.h"

/* ---- helpers ----------------------------------------------------------- */

#define REPLAY_MAX 20000

struct replayed {
    size_t count;
    uint64_t lsn[REPLAY_MAX];
    uint8_t type[REPLAY_MAX];
    size_t len[REPLAY_MAX];
    uint32_t crc[REPLAY_MAX]; /* of the body: enough to compare contents */
    int stop_at_lsn;          /* return -99 at this lsn (0: never) */
};

static struct replayed rp;

static int replay_cb(void *arg, uint64_t lsn, uint8_t type, const void *body, size_t len)
{
    struct replayed *r = arg;
    if (r->stop_at_lsn != 0 && lsn == (uint64_t)r->stop_at_lsn)
        return -99;
    if (r->count < REPLAY_MAX) {
        r->lsn[r->count] = lsn;
        r->type[r->count] = type;
        r->len[r->count] = len;
        r->crc[r->count] = crc32c(0, body, len);
    }
    r->count++;
    return 0;
}

struct logged {
    int count;
    char last[1024];
};

static struct logged lg;

static void log_cb(void *arg, const char *msg)
{
    struct logged *l = arg;
    l->count++;
    snprintf(l->last, sizeof(l->last), "%s", msg);
}

/* The body of record `lsn`: its length and bytes follow from the lsn, so
 * a replay can be checked without remembering what was written. */
static size_t body_len_for(uint64_t lsn)
{
    return (size_t)(lsn * 7 % 61);
}

static void body_for(uint64_t lsn, char *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (char)((lsn * 31 + i * 7) & 0xff);
}

static uint8_t type_for(uint64_t lsn)
{
    return (uint8_t)(lsn % 5 + 1);
}

static bool replayed_matches(const struct replayed *r, size_t i, uint64_t lsn)
{
    char body[64];
    size_t len = body_len_for(lsn);
    body_for(lsn, body, len);
    return r->lsn[i] == lsn && r->type[i] == type_for(lsn) && r->len[i] == len &&
           r->crc[i] == crc32c(0, body, len);
}

/* Every record replayed is exactly first..last in order. */
static bool replayed_range(const struct replayed *r, uint64_t first, uint64_t last)
{
    if (r->count != (size_t)(last + 1 - first))
        return false;
    for (size_t i = 0; i < r->count; i++)
        if (!replayed_matches(r, i, first + i))
            return false;
    return true;
}

static char errmsg[512];

/* Every WAL test runs twice: with O_DIRECT where the filesystem has it,
 * then with fs_open refusing it, through the page cache. Faults are set
 * through here so that a test's own faults keep the pass's choice. */
static bool buffered_pass;

static void set_faults(struct fs_faults f)
{
    f.direct_io_off = buffered_pass;
    fs_faults = f;
}

static int open_wal(struct wal **w, const char *dir, uint64_t seg_bytes, uint64_t after)
{
    memset(&rp, 0, sizeof(rp));
    memset(&lg, 0, sizeof(lg));
    errmsg[0] = '\0';
    return wal_open(w, dir, seg_bytes, after, replay_cb, &rp, log_cb, &lg, errmsg,
                    sizeof(errmsg));
}

/* Append n records (lsn-derived bodies) and write them as one batch. */
static int append_and_write(struct wal *w, int n, bool sync)
{
    for (int i = 0; i < n; i++) {
        uint64_t lsn = wal_last_lsn(w) + 1;
        char body[64];
        size_t len = body_len_for(lsn);
        body_for(lsn, body, len);
        uint64_t got = wal_append(w, type_for(lsn), body, len);
        if (got != lsn)
            return -1000;
    }
    struct wal_batch b;
    wal_take_batch(w, &b);
    int rc = wal_write_batch(w, &b, sync, errmsg, sizeof(errmsg));
    wal_batch_free(&b);
    return rc;
}

static char *make_tmpdir(void)
{
    return make_tmpdir_named("wal");
}


static void seg_path(const char *dir, uint64_t first_lsn, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s/wal-%020" PRIu64 ".log", dir, first_lsn);
}

static void flip_bit(const char *path, long off, int bit)
{
    int fd = open(path, O_RDWR);
    TRIAD_ASSERT(fd >= 0);
    unsigned char c;
    TRIAD_ASSERT(pread(fd, &c, 1, off) == 1);
    c ^= (unsigned char)(1u << bit);
    TRIAD_ASSERT(pwrite(fd, &c, 1, off) == 1);
    close(fd);
}

/* Offset of the record carrying `lsn` in a segment that starts at first. */
static long record_offset(const char *path, uint64_t first, uint64_t lsn)
{
    size_t len;
    char *data = read_file(path, &len);
    long off = WAL_HEADER_BYTES;
    for (uint64_t l = first; l < lsn; l++)
        off += 8 + (long)tbuf_read_u32le(data + off);
    free(data);
    return off;
}

/* The logical end of a segment: past its last whole record, where its
 * zero prefill (if any) begins. */
static long data_end(const char *path)
{
    size_t len;
    char *data = read_file(path, &len);
    size_t off = WAL_HEADER_BYTES;
    while (off + 8 <= len) {
        uint32_t n = tbuf_read_u32le(data + off);
        if (n == 0 || n > len - off - 8)
            break;
        off += 8 + n;
    }
    free(data);
    return (long)off;
}

/* Every byte of the file from `from` on is zero. */
static bool zeros_from(const char *path, long from)
{
    size_t len;
    char *data = read_file(path, &len);
    bool zero = true;
    for (size_t i = (size_t)from; i < len && zero; i++)
        zero = data[i] == 0;
    free(data);
    return zero;
}

/* With O_DIRECT the WAL writes whole blocks of this size, so its files'
 * sizes are what they would be through the page cache, rounded up. */
#define TEST_BLOCK_BYTES 4096

static long file_bytes(bool direct, long n)
{
    return direct ? (n + TEST_BLOCK_BYTES - 1) / TEST_BLOCK_BYTES * TEST_BLOCK_BYTES : n;
}

static bool wal_keeps_cached_runs(bool direct);

/* The file's size once records up to `logical` are written, by runs that
 * went direct (whole blocks where the segment is direct) or, if `cached`,
 * through the page cache, which also primes each WAL_PRIME_BYTES chunk
 * they reach into past the first. */
static long file_after(bool direct, bool cached, long logical)
{
    if (!cached || logical <= (long)WAL_PRIME_BYTES)
        return file_bytes(direct, logical);
    return (logical + (long)WAL_PRIME_BYTES - 1) / (long)WAL_PRIME_BYTES * (long)WAL_PRIME_BYTES;
}

static void write_at(const char *path, long off, const void *p, size_t len)
{
    int fd = open(path, O_RDWR);
    TRIAD_ASSERT(fd >= 0);
    TRIAD_ASSERT(pwrite(fd, p, len, off) == (ssize_t)len);
    close(fd);
}

/* ---- crc32c ------------------------------------------------------------ */

TEST(crc32c_matches_the_standard_check_value)
{
    CHECK_EQ_INT(crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c_hw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ_INT(crc32c(0, "", 0), 0);
}

TEST(crc32c_table_and_instruction_agree_at_every_length_and_alignment)
{
    unsigned char buf[600];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof(buf); i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        buf[i] = (unsigned char)x;
    }
    int mismatches = 0;
    for (size_t start = 0; start < 16; start++)
        for (size_t len = 0; len + start <= sizeof(buf); len += (len < 80 ? 1 : 37)) {
            uint32_t a = crc32c_sw(0, buf + start, len);
            uint32_t b = crc32c_hw(0, buf + start, len);
            uint32_t c = crc32c(0, buf + start, len);
            if (a != b || a != c)
                mismatches++;
        }
    CHECK_EQ_INT(mismatches, 0);
    if (!crc32c_hw_available())
        fprintf(stderr, "  note: no SSE4.2; only the table path was tested\n");
}

TEST(crc32c_chains_across_pieces)
{
    const char *s = "the quick brown fox jumps over the lazy dog";
    size_t n = strlen(s);
    uint32_t whole = crc32c(0, s, n);
    for (size_t cut = 0; cut <= n; cut++) {
        CHECK_EQ_INT(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
        CHECK_EQ_INT(crc32c_sw(crc32c_hw(0, s, cut), s + cut, n - cut), whole);
    }
}

/* ---- wal --------------------------------------------------------------- */

TEST(wal_replays_every_record_after_reopen)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(wal_last_lsn(w), 0);
    CHECK_EQ_INT(rp.count, 0);
    for (int batch = 0; batch < 10; batch++)
        CHECK_EQ_INT(append_and_write(w, 1 + batch * 3, batch % 2 == 0), 0);
    CHECK_EQ_INT(wal_sync(w, errmsg, sizeof(errmsg)), 0);
    uint64_t last = wal_last_lsn(w);
    CHECK_EQ_INT(last, 145);
    wal_close(w);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, last));
    CHECK_EQ_INT(lg.count, 0);
    CHECK_EQ_INT(wal_last_lsn(w), last);
    /* New records continue the lsns and the file. */
    CHECK_EQ_INT(append_and_write(w, 5, true), 0);
    CHECK_EQ_INT(wal_last_lsn(w), last + 5);
    wal_close(w);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, last + 5));
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_take_batch_hands_over_exactly_what_was_appended)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    struct wal_batch b;
    wal_take_batch(w, &b);
    CHECK_EQ_INT(b.len, 0);
    CHECK_EQ_INT(b.first_lsn, 0);
    CHECK(b.data == NULL);
    /* An empty batch is a no-op write. */
    CHECK_EQ_INT(wal_write_batch(w, &b, true, errmsg, sizeof(errmsg)), 0);
    wal_batch_free(&b);

    CHECK_EQ_INT(wal_append(w, 7, "abc", 3), 1);
    CHECK_EQ_INT(wal_append(w, 8, NULL, 0), 2);
    CHECK_EQ_INT(wal_pending_bytes(w), 2 * (WAL_RECORD_OVERHEAD + 8) + 3);
    wal_take_batch(w, &b);
    CHECK_EQ_INT(wal_pending_bytes(w), 0);
    CHECK_EQ_INT(b.first_lsn, 1);
    CHECK_EQ_INT(b.last_lsn, 2);
    CHECK_EQ_INT(b.len, 2 * (WAL_RECORD_OVERHEAD + 8) + 3);
    /* Appends after the take go to the next batch. */
    CHECK_EQ_INT(wal_append(w, 9, "z", 1), 3);
    CHECK_EQ_INT(wal_write_batch(w, &b, true, errmsg, sizeof(errmsg)), 0);
    wal_batch_free(&b);
    wal_take_batch(w, &b);
    CHECK_EQ_INT(b.first_lsn, 3);
    CHECK_EQ_INT(b.last_lsn, 3);
    CHECK_EQ_INT(wal_write_batch(w, &b, true, errmsg, sizeof(errmsg)), 0);
    wal_batch_free(&b);
    wal_close(w);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(rp.count, 3);
    CHECK_EQ_INT(rp.type[0], 7);
    CHECK_EQ_INT(rp.len[0], 3);
    CHECK_EQ_INT(rp.crc[0], crc32c(0, "abc", 3));
    CHECK_EQ_INT(rp.type[1], 8);
    CHECK_EQ_INT(rp.len[1], 0);
    CHECK_EQ_INT(rp.type[2], 9);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_opens_an_empty_directory_and_an_empty_segment)
{
    char *root = make_tmpdir();
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/a/b", root);
    struct wal *w;
    /* The directory doesn't exist yet: wal_open creates it. */
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(wal_last_lsn(w), 0);
    size_t segs;
    uint64_t bytes;
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(segs, 1);
    CHECK_EQ_INT(bytes, WAL_HEADER_BYTES);
    bool direct = wal_direct_io(w);
    wal_close(w);

    /* A new segment is its header and a synced prefill of zeros. */
    char p[700];
    seg_path(dir, 1, p, sizeof(p));
    CHECK_EQ_INT(file_size(p), file_bytes(direct, WAL_HEADER_BYTES + WAL_PREFILL_AHEAD_BYTES +
                                                      WAL_PREFILL_CHUNK_BYTES));
    CHECK(zeros_from(p, WAL_HEADER_BYTES));
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(rp.count, 0);
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);

    /* A header-only segment (as written before segments were prefilled)
     * opens with nothing to replay. */
    int fd = open(p, O_RDWR);
    CHECK(ftruncate(fd, WAL_HEADER_BYTES) == 0);
    close(fd);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(rp.count, 0);
    CHECK_EQ_INT(lg.count, 0);
    CHECK_EQ_INT(wal_last_lsn(w), 0);
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 3));
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    wal_close(w);
    rm_rf(root);
    free(root);
}

TEST(wal_replays_only_records_after_after_lsn)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 256, 0), 0);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(append_and_write(w, 5, false), 0);
    CHECK_EQ_INT(wal_sync(w, errmsg, sizeof(errmsg)), 0);
    wal_close(w);
    int nsegs = count_files(dir, ".log");
    CHECK(nsegs > 5);

    CHECK_EQ_INT(open_wal(&w, dir, 256, 57), 0);
    CHECK(replayed_range(&rp, 58, 100));
    CHECK_EQ_INT(wal_last_lsn(w), 100);
    wal_close(w);

    CHECK_EQ_INT(open_wal(&w, dir, 256, 100), 0);
    CHECK_EQ_INT(rp.count, 0);
    CHECK_EQ_INT(wal_last_lsn(w), 100);
    wal_close(w);

    /* Segments wholly covered by after_lsn are skipped by name: damage to
     * their records goes unread (their headers are still checked). */
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    flip_bit(p, WAL_HEADER_BYTES + 10, 3);
    CHECK_EQ_INT(open_wal(&w, dir, 256, 57), 0);
    CHECK(replayed_range(&rp, 58, 100));
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 256, 0), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, p) != NULL);
    flip_bit(p, WAL_HEADER_BYTES + 10, 3);
    flip_bit(p, 2, 0); /* the magic */
    CHECK_EQ_INT(open_wal(&w, dir, 256, 57), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, p) != NULL);
    CHECK(strstr(errmsg, "header") != NULL);
    rm_rf(dir);
    free(dir);
}

TEST(wal_truncates_a_torn_last_record_at_every_offset)
{
    char *dir = make_tmpdir();
    struct wal *w;
    /* A small segment keeps the prefill (and this test) small. */
    const uint64_t seg = 4096;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 9, true), 0);
    CHECK_EQ_INT(append_and_write(w, 1, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    size_t full_len;
    char *full = read_file(p, &full_len);
    long start = record_offset(p, 1, 10);
    long end = record_offset(p, 1, 11);
    CHECK(end < (long)full_len);
    /* The same cuts, each once at the end of the file (a torn append) and
     * once followed by zeros (a torn write into the prefill). */
    char *padded = calloc(1, full_len);

    int bad = 0;
    for (int zero_tail = 0; zero_tail < 2; zero_tail++) {
        for (long cut = start; cut < end; cut++) {
            memcpy(padded, full, (size_t)cut);
            memset(padded + cut, 0, full_len - (size_t)cut);
            write_file(p, padded, zero_tail ? full_len : (size_t)cut);
            if (open_wal(&w, dir, seg, 0) != 0) {
                bad++;
                continue;
            }
            /* A record cut before its first byte leaves a clean end: zeros
             * stay, nothing is truncated. */
            long want_size = zero_tail && cut == start ? (long)full_len : start;
            if (!replayed_range(&rp, 1, 9) || wal_last_lsn(w) != 9 || file_size(p) != want_size)
                bad++;
            /* Only a cut inside the record leaves something to truncate. */
            if (lg.count != (cut > start ? 1 : 0))
                bad++;
            if (cut > start) {
                char want[700];
                snprintf(want, sizeof(want), "wal: truncated torn record at %s offset %ld: ", p,
                         start);
                if (strncmp(lg.last, want, strlen(want)) != 0)
                    bad++;
            }
            /* The log goes on from the cut. */
            if (append_and_write(w, 1, true) != 0)
                bad++;
            wal_close(w);
            if (open_wal(&w, dir, seg, 0) != 0 || !replayed_range(&rp, 1, 10) || lg.count != 0)
                bad++;
            else
                wal_close(w);
        }
    }
    CHECK_EQ_INT(bad, 0);
    free(padded);
    free(full);
    rm_rf(dir);
    free(dir);
}

TEST(wal_truncates_a_flipped_bit_in_the_last_record)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 10, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long off = record_offset(p, 1, 10);
    flip_bit(p, off + 20, 5);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 9));
    CHECK_EQ_INT(lg.count, 1);
    char want[700];
    snprintf(want, sizeof(want), "wal: truncated torn record at %s offset %ld: checksum", p, off);
    CHECK(strncmp(lg.last, want, strlen(want)) == 0);
    CHECK_EQ_INT(file_size(p), off);
    CHECK_EQ_INT(wal_last_lsn(w), 9);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_refuses_a_flipped_bit_in_a_middle_record)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 10, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long sz = file_size(p);

    /* Damage to the body and to the length field alike. */
    long body_off = record_offset(p, 1, 5);
    long len_off = record_offset(p, 1, 7);
    long offs[2] = {body_off + 18, len_off};
    long rec[2] = {body_off, len_off};
    for (int k = 0; k < 2; k++) {
        flip_bit(p, offs[k], 1);
        CHECK_EQ_INT(open_wal(&w, dir, 0, 0), TRIAD_ECORRUPT);
        char want[700];
        snprintf(want, sizeof(want), "wal: corrupt record in %s at offset %ld: ", p, rec[k]);
        CHECK(strncmp(errmsg, want, strlen(want)) == 0);
        /* Refusing changes nothing on disk. */
        CHECK_EQ_INT(file_size(p), sz);
        flip_bit(p, offs[k], 1);
    }
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 10));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_refuses_a_bad_record_at_the_end_of_an_earlier_segment)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 200, 0), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ_INT(append_and_write(w, 2, true), 0);
    wal_close(w);
    CHECK(count_files(dir, ".log") > 2);
    /* The first segment's last record: nothing valid follows it in its
     * own file, but it is not the log's tail. */
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    flip_bit(p, data_end(p) - 1, 0);
    CHECK_EQ_INT(open_wal(&w, dir, 200, 0), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, "wal: corrupt record in ") == errmsg);
    CHECK(strstr(errmsg, p) != NULL);
    rm_rf(dir);
    free(dir);
}

TEST(wal_rejects_a_length_one_past_the_record_limit)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    unsigned char len[4];
    /* In the middle (a valid record follows): corruption. */
    long mid = record_offset(p, 1, 2);
    tbuf_write_u32le(len, (uint32_t)(WAL_RECORD_MAX_BYTES + 1));
    int fd = open(p, O_RDWR);
    CHECK(pwrite(fd, len, 4, mid) == 4);
    close(fd);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, "bad length") != NULL);
    /* As the last thing in the file (a header claiming too much): a torn
     * tail. Cut the file after that record header. */
    fd = open(p, O_RDWR);
    CHECK(ftruncate(fd, mid + 8) == 0);
    close(fd);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 1));
    CHECK(strstr(lg.last, "bad length") != NULL);
    CHECK_EQ_INT(file_size(p), mid);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_rotates_when_a_segment_is_full)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 300;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    /* One big batch must still be split across segments. */
    CHECK_EQ_INT(append_and_write(w, 60, true), 0);
    size_t segs;
    uint64_t bytes;
    wal_stats(w, &segs, &bytes);
    CHECK(segs > 3);
    CHECK_EQ_INT((int)segs, count_files(dir, ".log"));
    bool direct = wal_direct_io(w);
    wal_close(w);

    DIR *d = opendir(dir);
    struct dirent *e;
    uint64_t total = 0;
    int over = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[700];
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        /* Records within the limit; the file (prefill) too, but for the
         * rounding up to a block of a direct write. */
        long n = data_end(p);
        total += (uint64_t)n;
        if (n > (long)seg || n <= WAL_HEADER_BYTES || file_size(p) > file_bytes(direct, (long)seg))
            over++;
    }
    closedir(d);
    CHECK_EQ_INT(over, 0);
    /* wal_stats counts records, not prefill. */
    CHECK_EQ_INT(total, bytes);

    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK(replayed_range(&rp, 1, 60));
    CHECK_EQ_INT(lg.count, 0);
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(total, bytes);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_gives_a_record_larger_than_a_segment_its_own_segment)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 200;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    /* The first segment is empty: the big record goes in it, alone. */
    char big[1000];
    memset(big, 'x', sizeof(big));
    CHECK_EQ_INT(wal_append(w, 1, big, sizeof(big)), 1);
    CHECK_EQ_INT(wal_append(w, 1, "a", 1), 2);
    CHECK_EQ_INT(wal_append(w, 1, big, sizeof(big)), 3);
    CHECK_EQ_INT(wal_append(w, 1, "b", 1), 4);
    struct wal_batch b;
    wal_take_batch(w, &b);
    CHECK_EQ_INT(wal_write_batch(w, &b, true, errmsg, sizeof(errmsg)), 0);
    wal_batch_free(&b);
    bool direct = wal_direct_io(w);
    wal_close(w);

    /* A big record's segment is exactly its size (no prefill past a lone
     * record bigger than the limit); a small one's is prefilled to the
     * limit. (Both rounded up to a block if written direct.) */
    char p[600];
    long big_seg = WAL_HEADER_BYTES + WAL_RECORD_OVERHEAD + 8 + (long)sizeof(big);
    long small_seg = WAL_HEADER_BYTES + WAL_RECORD_OVERHEAD + 8 + 1;
    seg_path(dir, 1, p, sizeof(p));
    CHECK_EQ_INT(file_size(p), file_bytes(direct, big_seg));
    CHECK_EQ_INT(data_end(p), big_seg);
    seg_path(dir, 2, p, sizeof(p));
    CHECK_EQ_INT(data_end(p), small_seg);
    CHECK_EQ_INT(file_size(p), file_bytes(direct, seg));
    seg_path(dir, 3, p, sizeof(p));
    CHECK_EQ_INT(file_size(p), file_bytes(direct, big_seg));
    seg_path(dir, 4, p, sizeof(p));
    CHECK_EQ_INT(data_end(p), small_seg);
    CHECK_EQ_INT(file_size(p), file_bytes(direct, seg));

    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, 4);
    CHECK_EQ_INT(rp.len[0], sizeof(big));
    CHECK_EQ_INT(rp.crc[0], crc32c(0, big, sizeof(big)));
    CHECK_EQ_INT(rp.len[1], 1);
    CHECK_EQ_INT(rp.len[2], sizeof(big));
    CHECK_EQ_INT(rp.lsn[3], 4);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_remove_before_deletes_only_segments_wholly_covered)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 200, 0), 0);
    for (int i = 0; i < 30; i++)
        CHECK_EQ_INT(append_and_write(w, 1, true), 0);
    size_t segs_before;
    uint64_t bytes_before;
    wal_stats(w, &segs_before, &bytes_before);
    CHECK(segs_before > 4);

    /* Nothing is wholly at or before lsn 0. */
    wal_remove_before(w, 0);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs_before);

    wal_remove_before(w, 17);
    size_t segs;
    uint64_t bytes;
    wal_stats(w, &segs, &bytes);
    CHECK(segs < segs_before);
    CHECK(bytes < bytes_before);
    CHECK_EQ_INT(count_files(dir, ".log"), (int)segs);
    /* The segment holding lsn 18 survives, and every later one. */
    CHECK_EQ_INT(append_and_write(w, 2, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 200, 17), 0);
    CHECK(replayed_range(&rp, 18, 32));
    wal_close(w);
    /* Records 1..17 are gone: a caller that needs them is refused. */
    CHECK_EQ_INT(open_wal(&w, dir, 200, 0), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, "log starts at lsn") != NULL);

    /* Removing past the end never deletes the current segment. */
    CHECK_EQ_INT(open_wal(&w, dir, 200, 17), 0);
    wal_remove_before(w, 1000);
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(segs, 1);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    CHECK_EQ_INT(append_and_write(w, 1, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 200, 32), 0);
    CHECK(replayed_range(&rp, 33, 33));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_starts_after_after_lsn_when_the_log_ends_before_it)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 10, true), 0);
    wal_close(w);
    /* A snapshot at 500 covers more than the log holds. */
    CHECK_EQ_INT(open_wal(&w, dir, 0, 500), 0);
    CHECK_EQ_INT(rp.count, 0);
    CHECK_EQ_INT(wal_last_lsn(w), 500);
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    wal_close(w);
    CHECK_EQ_INT(count_files(dir, ".log"), 2);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 500), 0);
    CHECK(replayed_range(&rp, 501, 503));
    wal_close(w);
    /* Without the snapshot, 11..500 are missing. */
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), TRIAD_ECORRUPT);
    rm_rf(dir);
    free(dir);
}

TEST(wal_removes_a_last_segment_with_a_torn_header)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 4, true), 0);
    wal_close(w);
    /* A crash while creating segment 5: part of its header made it. */
    char p[600];
    seg_path(dir, 5, p, sizeof(p));
    for (size_t n = 0; n <= WAL_HEADER_BYTES; n++) {
        char h[WAL_HEADER_BYTES] = "TRIADWAL\1";
        write_file(p, h, n); /* the full 24 have a bad (zero) first lsn */
        CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
        CHECK(replayed_range(&rp, 1, 4));
        CHECK_EQ_INT(lg.count, 1);
        CHECK(strstr(lg.last, "torn header") != NULL);
        CHECK_EQ_INT(file_size(p), -1);
        wal_close(w);
    }
    /* With records after it, a bad header is corruption. */
    char junk[100] = "TRIADWAL";
    write_file(p, junk, sizeof(junk));
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, p) != NULL);
    unlink(p);
    /* The only segment torn: the log starts afresh after after_lsn. */
    rm_rf(dir);
    CHECK_EQ_INT(mkdir(dir, 0755), 0);
    seg_path(dir, 1, p, sizeof(p));
    write_file(p, "TRIAD", 5);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(wal_last_lsn(w), 0);
    CHECK_EQ_INT(append_and_write(w, 2, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 2));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_refuses_a_foreign_file_name)
{
    char *dir = make_tmpdir();
    struct wal *w;
    char p[600];
    snprintf(p, sizeof(p), "%s/wal-banana.log", dir);
    write_file(p, "x", 1);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, "wal-banana.log") != NULL);
    rm_rf(dir);
    free(dir);
}

TEST(wal_stops_recovery_with_the_replay_callbacks_code)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 10, true), 0);
    wal_close(w);
    memset(&rp, 0, sizeof(rp));
    rp.stop_at_lsn = 4;
    w = NULL;
    CHECK_EQ_INT(wal_open(&w, dir, 0, 0, replay_cb, &rp, NULL, NULL, errmsg, sizeof(errmsg)), -99);
    CHECK(w == NULL);
    CHECK_EQ_INT(rp.count, 3);
    rm_rf(dir);
    free(dir);
}

TEST(wal_returns_eio_on_an_injected_write_error_and_recovers_what_came_before)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 5, true), 0);
    /* The next write tears 13 bytes into its records and fails (a direct
     * write starts with the bytes of the block before the records). */
    size_t segs;
    uint64_t end;
    wal_stats(w, &segs, &end);
    size_t before = wal_direct_io(w) ? (size_t)(end % TEST_BLOCK_BYTES) : 0;
    set_faults((struct fs_faults){.write_fail_nth = 1, .write_partial_bytes = before + 13});
    errmsg[0] = '\0';
    CHECK_EQ_INT(append_and_write(w, 5, true), TRIAD_EIO);
    CHECK(strstr(errmsg, "wal: write segment") == errmsg);
    set_faults((struct fs_faults){0});
    /* The log does not pretend later writes are fine. */
    CHECK_EQ_INT(append_and_write(w, 1, true), TRIAD_EIO);
    CHECK_EQ_INT(wal_sync(w, errmsg, sizeof(errmsg)), TRIAD_EIO);
    wal_close(w);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 5));
    CHECK_EQ_INT(lg.count, 1);
    CHECK_EQ_INT(wal_last_lsn(w), 5);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_returns_eio_on_an_injected_sync_error)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    set_faults((struct fs_faults){.sync_fail_nth = 1});
    CHECK_EQ_INT(append_and_write(w, 2, true), TRIAD_EIO);
    set_faults((struct fs_faults){0});
    CHECK_EQ_INT(append_and_write(w, 1, false), TRIAD_EIO);
    wal_close(w);

    /* Rotation syncs too: a failure there is reported the same way. */
    rm_rf(dir);
    CHECK_EQ_INT(open_wal(&w, dir, 100, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 2, false), 0);
    set_faults((struct fs_faults){.sync_fail_nth = 1});
    CHECK_EQ_INT(append_and_write(w, 10, false), TRIAD_EIO);
    set_faults((struct fs_faults){0});
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* ---- zero prefill ------------------------------------------------------ */

/* Append one record with a body of `len` bytes (a pattern from the lsn). */
static uint64_t append_sized(struct wal *w, size_t len)
{
    static char body[8192];
    TRIAD_ASSERT(len <= sizeof(body));
    uint64_t lsn = wal_last_lsn(w) + 1;
    for (size_t i = 0; i < len; i++)
        body[i] = (char)((lsn + i) | 1);
    return wal_append(w, 1, body, len);
}

static int write_pending(struct wal *w, bool sync)
{
    struct wal_batch b;
    wal_take_batch(w, &b);
    int rc = wal_write_batch(w, &b, sync, errmsg, sizeof(errmsg));
    wal_batch_free(&b);
    return rc;
}

TEST(wal_reopens_a_zero_tailed_segment_cleanly_and_appends_at_its_logical_end)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 10, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long end = record_offset(p, 1, 11);
    long size = file_size(p);
    CHECK_EQ_INT(data_end(p), end);
    CHECK(size >= end + (long)WAL_PREFILL_AHEAD_BYTES);
    CHECK(zeros_from(p, end));

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 10));
    /* A clean end: no log line, nothing truncated. */
    CHECK_EQ_INT(lg.count, 0);
    CHECK_EQ_INT(file_size(p), size);
    size_t segs;
    uint64_t bytes;
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(bytes, end);
    CHECK_EQ_INT(wal_allocated_bytes(w), size);
    /* New records go right after the old ones, over the zeros. */
    CHECK_EQ_INT(append_and_write(w, 5, true), 0);
    wal_close(w);
    CHECK_EQ_INT(data_end(p), record_offset(p, 1, 16));
    CHECK_EQ_INT(file_size(p), size);
    CHECK(zeros_from(p, data_end(p)));

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 15));
    CHECK_EQ_INT(lg.count, 0);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_truncates_and_logs_a_torn_write_followed_by_zeros)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 10, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long start = record_offset(p, 1, 10);
    long end = record_offset(p, 1, 11);
    /* Record 10 half written, then the prefill's zeros. */
    char zeros[64] = {0};
    write_at(p, start + (end - start) / 2, zeros, (size_t)(end - start));
    CHECK(file_size(p) > end);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 9));
    CHECK_EQ_INT(lg.count, 1);
    char want[700];
    snprintf(want, sizeof(want), "wal: truncated torn record at %s offset %ld: ", p, start);
    CHECK(strncmp(lg.last, want, strlen(want)) == 0);
    CHECK_EQ_INT(file_size(p), start);
    /* The next batch prefills again and the log goes on. */
    CHECK_EQ_INT(append_and_write(w, 2, true), 0);
    CHECK(file_size(p) >= record_offset(p, 1, 12) + (long)WAL_PREFILL_AHEAD_BYTES);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 11));
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);

    /* Garbage far out in the last segment's zeros is a torn tail too: it
     * is cut off from the end of the last record. */
    long tail = data_end(p);
    write_at(p, tail + 100000, "junk", 4);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, 11));
    CHECK_EQ_INT(lg.count, 1);
    CHECK_EQ_INT(file_size(p), tail);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* Segment 1 with records 1..3 and its whole prefill, segment 4 after it:
 * the first segment was rotated before its prefill was used (here because
 * the log was reopened with a smaller segment limit). */
static void make_zero_tailed_earlier_segment(const char *dir)
{
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 100, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 1, true), 0);
    wal_close(w);
    CHECK_EQ_INT(count_files(dir, ".log"), 2);
}

TEST(wal_accepts_zeros_at_the_end_of_an_earlier_segment)
{
    char *dir = make_tmpdir();
    make_zero_tailed_earlier_segment(dir);
    char p1[600], p4[600];
    seg_path(dir, 1, p1, sizeof(p1));
    seg_path(dir, 4, p4, sizeof(p4));
    CHECK(file_size(p1) > data_end(p1) + (long)WAL_PREFILL_AHEAD_BYTES);

    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 100, 0), 0);
    CHECK(replayed_range(&rp, 1, 4));
    CHECK_EQ_INT(lg.count, 0);
    size_t segs;
    uint64_t bytes;
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(segs, 2);
    CHECK_EQ_INT(bytes, data_end(p1) + data_end(p4));
    CHECK_EQ_INT(wal_allocated_bytes(w), file_size(p1) + file_size(p4));
    wal_close(w);
    /* Skipped (wholly before after_lsn), it still counts its data only. */
    CHECK_EQ_INT(open_wal(&w, dir, 100, 3), 0);
    CHECK(replayed_range(&rp, 4, 4));
    wal_stats(w, &segs, &bytes);
    CHECK_EQ_INT(bytes, data_end(p1) + data_end(p4));
    wal_close(w);
    /* The earlier segment stays as it was. */
    CHECK(zeros_from(p1, data_end(p1)));
    rm_rf(dir);
    free(dir);
}

TEST(wal_refuses_garbage_after_the_records_of_an_earlier_segment)
{
    char *dir = make_tmpdir();
    make_zero_tailed_earlier_segment(dir);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long end = data_end(p);
    long size = file_size(p);
    /* Right after the last record, and far out in the zeros. */
    long offs[2] = {end, end + 3000000};
    for (int k = 0; k < 2; k++) {
        write_at(p, offs[k], "\x07", 1);
        struct wal *w;
        CHECK_EQ_INT(open_wal(&w, dir, 100, 0), TRIAD_ECORRUPT);
        char want[700];
        snprintf(want, sizeof(want), "wal: corrupt record in %s at offset %ld: ", p, end);
        CHECK(strncmp(errmsg, want, strlen(want)) == 0);
        CHECK_EQ_INT(file_size(p), size);
        write_at(p, offs[k], "", 1);
    }
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 100, 0), 0);
    CHECK(replayed_range(&rp, 1, 4));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_rotates_by_logical_size_not_file_size)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    /* The file is 8 MiB of mostly prefill; a 64 KiB limit still has room
     * for many more records. */
    const uint64_t seg = 64 * 1024;
    CHECK(file_size(p) > (long)seg);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    for (int i = 0; i < 20; i++)
        CHECK_EQ_INT(append_and_write(w, 5, true), 0);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK(replayed_range(&rp, 1, 103));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_a_big_synced_run_is_appended_without_prefill)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 64ull * 1024 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    uint64_t logical = WAL_HEADER_BYTES;
    const size_t body_bytes = 8000;
    const uint64_t rec_bytes = WAL_RECORD_OVERHEAD + 8 + body_bytes;
    long initial = file_size(p);
    /* synced runs of ~256 KiB until the data passes the first prefill */
    while (logical < (uint64_t)initial + 2 * WAL_PREFILL_RUN_BYTES_MAX) {
        for (uint64_t n = 0; n * rec_bytes < 2 * WAL_PREFILL_RUN_BYTES_MAX; n++) {
            append_sized(w, body_bytes);
            logical += rec_bytes;
        }
        CHECK_EQ_INT(write_pending(w, true), 0);
    }
    /* (big synced runs go direct where the I/O buffers have huge pages,
     * or where a direct segment keeps no page-cache descriptor) */
    bool direct = wal_direct_io(w);
    bool cached = !direct || (wal_keeps_cached_runs(direct) && !wal_huge_io(w));
    CHECK_EQ_INT(file_size(p), file_after(direct, cached, (long)logical));
    uint64_t last = wal_last_lsn(w);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, (long long)last);
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_unsynced_batches_do_not_prefill_and_reopen_cleanly)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 64ull * 1024 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long initial = file_size(p); /* a new segment's first prefill */
    /* past the initial prefill, unsynced records grow the file by their
     * own bytes (and a page-cache write to the end of its 64 KiB chunk):
     * no zeros written further ahead (they would cost a second write of
     * every byte when no fdatasync benefits) */
    uint64_t logical = WAL_HEADER_BYTES;
    const size_t body_bytes = 8000;
    const uint64_t rec_bytes = WAL_RECORD_OVERHEAD + 8 + body_bytes;
    while (logical < (uint64_t)initial + 4 * rec_bytes) {
        for (int i = 0; i < 64; i++) {
            append_sized(w, body_bytes);
            logical += rec_bytes;
        }
        CHECK_EQ_INT(write_pending(w, false), 0);
    }
    /* (runs this big go direct where the segment is direct) */
    CHECK_EQ_INT(file_size(p), file_after(wal_direct_io(w), !wal_direct_io(w), (long)logical));
    CHECK_EQ_INT(wal_allocated_bytes(w), file_size(p));
    uint64_t last = wal_last_lsn(w);
    /* a synced batch prefills again from there */
    append_sized(w, body_bytes);
    logical += rec_bytes;
    CHECK_EQ_INT(write_pending(w, true), 0);
    CHECK(file_size(p) >= (long)(logical + WAL_PREFILL_AHEAD_BYTES));
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, (long long)(last + 1));
    CHECK_EQ_INT(lg.count, 0); /* a clean end: nothing truncated or logged */
    CHECK_EQ_INT(wal_last_lsn(w), (long long)(last + 1));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_a_segment_an_unsynced_batch_starts_gets_no_prefill)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 1024 * 1024;
    const size_t body_bytes = 8000;
    const uint64_t rec_bytes = WAL_RECORD_OVERHEAD + 8 + body_bytes;
    /* Past a full segment, a run too big to prefill itself (synced runs of
     * WAL_PREFILL_RUN_BYTES_MAX or more do not): whatever zeros its new
     * segment holds, its creation wrote. */
    const uint64_t extra = WAL_PREFILL_RUN_BYTES_MAX / rec_bytes + 2;
    const uint64_t per_seg = (seg - WAL_HEADER_BYTES) / rec_bytes;
    const long extra_bytes = (long)(WAL_HEADER_BYTES + extra * rec_bytes);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    /* An unsynced batch fills segment 1 and goes on into segment 2, which
     * holds only the header and its records. */
    for (uint64_t i = 0; i < per_seg + extra; i++)
        append_sized(w, body_bytes);
    CHECK_EQ_INT(write_pending(w, false), 0);
    CHECK_EQ_INT(count_files(dir, ".log"), 2);
    char p[600];
    seg_path(dir, per_seg + 1, p, sizeof(p));
    CHECK_EQ_INT(file_size(p), file_after(wal_direct_io(w), !wal_direct_io(w), extra_bytes));
    /* A synced batch fills segment 2 and puts `extra` records in segment
     * 3, which its creation prefilled. */
    for (uint64_t i = 0; i < per_seg; i++)
        append_sized(w, body_bytes);
    CHECK_EQ_INT(write_pending(w, true), 0);
    CHECK_EQ_INT(count_files(dir, ".log"), 3);
    seg_path(dir, 2 * per_seg + 1, p, sizeof(p));
    CHECK(file_size(p) > file_bytes(wal_direct_io(w), extra_bytes));
    uint64_t last = wal_last_lsn(w);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, (long long)last);
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_prefill_stays_ahead_of_the_records_in_rare_chunks_within_the_segment_limit)
{
    char *dir = make_tmpdir();
    struct wal *w;
    /* Not a multiple of the chunk: the last extension is cut at the limit. */
    const uint64_t seg = 10ull * 1024 * 1024;
    const size_t body_bytes = 4000, per_batch = 16;
    const uint64_t rec_bytes = WAL_RECORD_OVERHEAD + 8 + body_bytes;
    const int batches = 420; /* about 27 MB: three segments */
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);

    /* The expected layout, by the rule "rotate when the next record would
     * take the logical size past the limit". */
    uint64_t cur_first = 1, cur_bytes = WAL_HEADER_BYTES, done_bytes = 0, done_alloc = 0;
    uint64_t lsn = 0;
    int nsegs = 1, bad_size = 0, bad_stats = 0, grows = 0;
    long last_size = -1;
    for (int b = 0; b < batches; b++) {
        for (size_t i = 0; i < per_batch; i++) {
            lsn++;
            if (cur_bytes + rec_bytes > seg) {
                char old[600];
                seg_path(dir, cur_first, old, sizeof(old));
                done_bytes += cur_bytes;
                done_alloc += (uint64_t)file_size(old);
                nsegs++;
                cur_first = lsn;
                cur_bytes = WAL_HEADER_BYTES;
                last_size = -1;
            }
            cur_bytes += rec_bytes;
            append_sized(w, body_bytes);
        }
        /* prefill is for batches that are fdatasync'd */
        CHECK_EQ_INT(write_pending(w, true), 0);
        char p[600];
        seg_path(dir, cur_first, p, sizeof(p));
        long size = file_size(p);
        /* Zeros at least AHEAD past the records (or up to the limit), and
         * never past the limit. */
        uint64_t low = TRIAD_MIN(cur_bytes + WAL_PREFILL_AHEAD_BYTES, seg);
        if (size < (long)low || size > (long)seg)
            bad_size++;
        if (last_size >= 0 && size != last_size)
            grows++;
        last_size = size;
        size_t segs;
        uint64_t bytes;
        wal_stats(w, &segs, &bytes);
        if (segs != (size_t)nsegs || bytes != done_bytes + cur_bytes ||
            wal_allocated_bytes(w) != done_alloc + (uint64_t)size)
            bad_stats++;
    }
    CHECK_EQ_INT(bad_size, 0);
    CHECK_EQ_INT(bad_stats, 0);
    CHECK_EQ_INT(count_files(dir, ".log"), nsegs);
    CHECK_EQ_INT(nsegs, 3);
    /* Growing is rare: once per chunk of records, not once per batch. */
    CHECK(grows > 0);
    CHECK(grows <= (int)(done_bytes + cur_bytes) / (int)WAL_PREFILL_CHUNK_BYTES + nsegs);
    CHECK_EQ_INT(wal_sync(w, errmsg, sizeof(errmsg)), 0);
    wal_close(w);

    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, lsn);
    CHECK_EQ_INT(rp.lsn[rp.count - 1], lsn);
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_returns_eio_on_an_injected_write_error_while_prefilling)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    /* Use up the first chunk of prefill without growing: ~4 MiB minus a
     * margin, so that the next batch must grow the file first. */
    const size_t body_bytes = 8000;
    const uint64_t rec_bytes = WAL_RECORD_OVERHEAD + 8 + body_bytes;
    uint64_t n = (WAL_PREFILL_CHUNK_BYTES - rec_bytes) / rec_bytes;
    for (uint64_t i = 0; i < n; i++)
        append_sized(w, body_bytes);
    CHECK_EQ_INT(write_pending(w, true), 0);
    uint64_t alloc = wal_allocated_bytes(w);
    CHECK_EQ_INT(alloc, file_bytes(wal_direct_io(w), WAL_HEADER_BYTES + WAL_PREFILL_AHEAD_BYTES +
                                                         WAL_PREFILL_CHUNK_BYTES));

    /* The next batch's first write call is the prefill's. */
    for (int i = 0; i < 4; i++)
        append_sized(w, body_bytes);
    set_faults((struct fs_faults){.write_fail_nth = 1, .write_partial_bytes = 4096});
    errmsg[0] = '\0';
    CHECK_EQ_INT(write_pending(w, true), TRIAD_EIO);
    CHECK(strstr(errmsg, "wal: prefill segment 1 at offset ") == errmsg);
    set_faults((struct fs_faults){0});
    CHECK_EQ_INT(append_and_write(w, 1, true), TRIAD_EIO);
    wal_close(w);

    /* What was written before is all there; the torn prefill was zeros. */
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(rp.count, n);
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);

    /* A new segment's first prefill failing (after its header) is
     * reported the same way, and leaves no file behind. The segment limit
     * leaves room for a prefill past the header's block, and eight
     * records. */
    rm_rf(dir);
    const uint64_t seg = 64 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    for (int i = 0; i < 8; i++)
        append_sized(w, body_bytes);
    CHECK_EQ_INT(write_pending(w, true), 0);
    /* the prefill starts after the header, or after its block if direct */
    char want[100];
    snprintf(want, sizeof(want), "wal: prefill segment 9 at offset %d: ",
             wal_direct_io(w) ? TEST_BLOCK_BYTES : WAL_HEADER_BYTES);
    append_sized(w, body_bytes);
    set_faults((struct fs_faults){.write_fail_nth = 2});
    CHECK_EQ_INT(write_pending(w, true), TRIAD_EIO);
    set_faults((struct fs_faults){0});
    CHECK(strstr(errmsg, want) == errmsg);
    CHECK_EQ_INT(count_files(dir, ".log"), 1);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, 8);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* ---- O_DIRECT block writes --------------------------------------------- */

/* Does the filesystem under dir take O_DIRECT? */
static bool fs_takes_direct(const char *dir)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/probe", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_DIRECT, 0644);
    if (fd >= 0)
        close(fd);
    unlink(p);
    return fd >= 0;
}

/* The body append_sized writes for record `lsn` of `len` bytes. */
static uint32_t sized_body_crc(uint64_t lsn, size_t len)
{
    static char body[8192];
    for (size_t i = 0; i < len; i++)
        body[i] = (char)((lsn + i) | 1);
    return crc32c(0, body, len);
}

/* A replay holds exactly records 1..n of the sizes in lens[]. */
static bool replayed_sized(const struct replayed *r, const size_t *lens, size_t n)
{
    if (r->count != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (r->lsn[i] != i + 1 || r->type[i] != 1 || r->len[i] != lens[i] ||
            r->crc[i] != sized_body_crc(i + 1, lens[i]))
            return false;
    return true;
}

TEST(wal_uses_o_direct_exactly_when_the_filesystem_takes_it)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(wal_direct_io(w), !buffered_pass && fs_takes_direct(dir));
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    wal_close(w);
    /* The reopened last segment too. */
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(wal_direct_io(w), !buffered_pass && fs_takes_direct(dir));
    CHECK(replayed_range(&rp, 1, 3));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

#define SIZES_RECORDS 3000

TEST(wal_reopens_records_of_many_sizes_written_across_blocks_in_small_batches)
{
    char *dir = make_tmpdir();
    struct wal *w;
    /* Segments of 1 MiB (a few of them) and unsynced batches too, which
     * append past the prefill. */
    const uint64_t seg = 1024 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    static size_t lens[SIZES_RECORDS];
    uint64_t x = 0x9E3779B97F4A7C15ull;
    size_t n = 0;
    int bad = 0;
    while (n < SIZES_RECORDS) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t batch = 1 + (size_t)(x % 7);
        for (size_t i = 0; i < batch && n < SIZES_RECORDS; i++, n++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            /* Mostly small, some over a block, some exactly around one. */
            size_t len = x % 4 == 0 ? (size_t)(x >> 8) % 8192
                         : x % 4 == 1 ? 4096 - 17 + (size_t)(x >> 8) % 3
                                      : (size_t)(x >> 8) % 300;
            lens[n] = len;
            if (append_sized(w, len) != n + 1)
                bad++;
        }
        if (write_pending(w, x % 3 != 0) != 0)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(count_files(dir, ".log") > 2);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK(replayed_sized(&rp, lens, n));
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_a_batch_exactly_filling_a_block_is_followed_cleanly)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    const size_t frame = WAL_RECORD_OVERHEAD + 8;
    size_t lens[6];
    /* 24 + 4072 = one block; then two records that end at 3 blocks. */
    lens[0] = TEST_BLOCK_BYTES - WAL_HEADER_BYTES - frame;
    lens[1] = 100;
    lens[2] = 2 * TEST_BLOCK_BYTES - 2 * frame - lens[1];
    for (int i = 0; i < 3; i++)
        append_sized(w, lens[i]);
    CHECK_EQ_INT(write_pending(w, true), 0);
    CHECK_EQ_INT(wal_direct_io(w), !buffered_pass && fs_takes_direct(dir));
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    CHECK_EQ_INT(data_end(p), 3 * TEST_BLOCK_BYTES);
    wal_close(w);
    /* Reopened at a block boundary: nothing of the old block to carry. */
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_sized(&rp, lens, 3));
    CHECK_EQ_INT(lg.count, 0);
    lens[3] = 7;
    append_sized(w, lens[3]);
    CHECK_EQ_INT(write_pending(w, true), 0);
    /* One more that ends exactly on the next boundary, then one after. */
    lens[4] = TEST_BLOCK_BYTES - 2 * frame - lens[3];
    append_sized(w, lens[4]);
    CHECK_EQ_INT(write_pending(w, false), 0);
    CHECK_EQ_INT(data_end(p), 4 * TEST_BLOCK_BYTES);
    lens[5] = 1;
    append_sized(w, lens[5]);
    CHECK_EQ_INT(write_pending(w, true), 0);
    wal_close(w);
    CHECK(zeros_from(p, data_end(p)));
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_sized(&rp, lens, 6));
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_reopened_mid_block_keeps_the_records_before_it_in_that_block)
{
    char *dir = make_tmpdir();
    struct wal *w;
    size_t lens[40];
    size_t n = 0;
    /* Each round closes and reopens the log with its end mid-block: the
     * next write rewrites that block, and must carry the records already
     * in it (a zeroed start would end the log early, cleanly, silently). */
    for (int round = 0; round < 8; round++) {
        CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
        CHECK(replayed_sized(&rp, lens, n));
        CHECK_EQ_INT(lg.count, 0);
        for (int i = 0; i < 5; i++) {
            lens[n] = (size_t)(round * 331 + i * 97) % 1500;
            append_sized(w, lens[n++]);
        }
        CHECK_EQ_INT(write_pending(w, round % 2 == 0), 0);
        size_t segs;
        uint64_t end;
        wal_stats(w, &segs, &end);
        CHECK(end % TEST_BLOCK_BYTES != 0);
        wal_close(w);
    }
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_sized(&rp, lens, n));
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_writes_a_run_bigger_than_the_staging_buffer_in_pieces)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    /* A lone record of 9 MiB plus a bit (pieces end mid-record), then a
     * batch of ~6 MiB of small records, unsynced, then synced. */
    const size_t big = 9 * 1024 * 1024 + 12345;
    unsigned char *body = malloc(big);
    for (size_t i = 0; i < big; i++)
        body[i] = (unsigned char)(i * 13 + 5);
    size_t lens[1000];
    size_t n = 0;
    append_sized(w, 10);
    lens[n++] = 10;
    CHECK_EQ_INT(wal_append(w, 1, body, big), 2);
    lens[n++] = big;
    CHECK_EQ_INT(write_pending(w, false), 0);
    while (n < 800) {
        lens[n] = 7000 + n;
        append_sized(w, lens[n++]);
    }
    CHECK_EQ_INT(write_pending(w, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(rp.count, n);
    CHECK_EQ_INT(lg.count, 0);
    int bad = 0;
    for (size_t i = 0; i < rp.count && i < n; i++) {
        uint32_t want = i == 1 ? crc32c(0, body, big) : sized_body_crc(i + 1, lens[i]);
        if (rp.lsn[i] != i + 1 || rp.len[i] != lens[i] || rp.crc[i] != want)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    wal_close(w);
    free(body);
    rm_rf(dir);
    free(dir);
}

/* Is the page of `path` holding byte `off` in the page cache? */
static bool page_cached(const char *path, long off)
{
    int fd = open(path, O_RDONLY);
    TRIAD_ASSERT(fd >= 0);
    long page = sysconf(_SC_PAGESIZE);
    long at = off / page * page;
    void *m = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, at);
    TRIAD_ASSERT(m != MAP_FAILED);
    unsigned char v = 0;
    TRIAD_ASSERT(mincore(m, (size_t)page, &v) == 0);
    munmap(m, (size_t)page);
    close(fd);
    return (v & 1) != 0;
}

/* Does the WAL send some runs through the page cache here: with direct
 * I/O, where a page is a 4 KiB block? */
static bool wal_keeps_cached_runs(bool direct)
{
    return direct && sysconf(_SC_PAGESIZE) == TEST_BLOCK_BYTES;
}

/* Does the filesystem under dir cache a buffered write, and take the page
 * out again for a direct write of the same block? */
static bool cache_follows_direct_io(const char *dir)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/probe", dir);
    bool ok = false;
    void *raw = NULL;
    if (posix_memalign(&raw, TEST_BLOCK_BYTES, TEST_BLOCK_BYTES) != 0)
        return false;
    memset(raw, 'x', TEST_BLOCK_BYTES);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0 && pwrite(fd, raw, TEST_BLOCK_BYTES, 0) == TEST_BLOCK_BYTES && fdatasync(fd) == 0 &&
        page_cached(p, 0)) {
        int dfd = open(p, O_WRONLY | O_DIRECT);
        ok = dfd >= 0 && pwrite(dfd, raw, TEST_BLOCK_BYTES, 0) == TEST_BLOCK_BYTES && !page_cached(p, 0);
        if (dfd >= 0)
            close(dfd);
    }
    if (fd >= 0)
        close(fd);
    unlink(p);
    free(raw);
    return ok;
}

/* Append 4000-byte records, lens[n..] recording them, until they make a
 * run of twice WAL_CACHED_RUN_BYTES_MIN; returns the new n. */
static size_t append_big_run(struct wal *w, size_t *lens, size_t n)
{
    for (uint64_t bytes = 0; bytes < 2 * WAL_CACHED_RUN_BYTES_MIN; n++) {
        append_sized(w, 4000);
        if (lens != NULL)
            lens[n] = 4000;
        bytes += WAL_RECORD_OVERHEAD + 8 + 4000;
    }
    return n;
}

#define MIXED_RECORDS 4000

/* Small unsynced runs go through the page cache, and so do big synced
 * ones where the staging buffer is in small pages; the rest go direct,
 * into the same blocks of the same segments: each kind of write must find
 * the other's bytes where it left them, and a reopen reads back every
 * record. Under both policies (fs_faults.io_pages), whatever the pages. */
static void mixed_runs(const char *dir, int io_pages, bool *direct_out)
{
    struct wal *w;
    const uint64_t seg = 4 * 1024 * 1024; /* several segments */
    set_faults((struct fs_faults){.io_pages = io_pages});
    rm_rf(dir);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(wal_huge_io(w), io_pages == FS_IO_PAGES_HUGE);
    bool direct = wal_direct_io(w);
    *direct_out = direct;
    static size_t lens[MIXED_RECORDS];
    uint64_t x = 0x2545F4914F6CDD1Dull;
    size_t n = 0;
    int bad = 0, big_runs = 0;
    while (n < MIXED_RECORDS) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* big synced, small synced, big unsynced, small unsynced */
        int kind = (int)(x % 4);
        bool big = kind == 0 || kind == 2;
        size_t target = big ? WAL_CACHED_RUN_BYTES_MIN + (x >> 8) % 65536 : (x >> 8) % 9000;
        size_t bytes = 0;
        do {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t len = (size_t)(x >> 8) % 8192;
            lens[n] = len;
            if (append_sized(w, len) != n + 1)
                bad++;
            bytes += WAL_RECORD_OVERHEAD + 8 + len;
            n++;
        } while (bytes < target && n < MIXED_RECORDS);
        if (write_pending(w, kind < 2) != 0)
            bad++;
        if (big && bytes >= WAL_CACHED_RUN_BYTES_MIN)
            big_runs++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(big_runs > 10);
    CHECK(count_files(dir, ".log") > 2);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK(replayed_sized(&rp, lens, n));
    CHECK_EQ_INT(lg.count, 0);
    CHECK_EQ_INT(wal_direct_io(w), direct);
    wal_close(w);
    set_faults((struct fs_faults){0});
}

TEST(wal_runs_go_through_the_page_cache_or_direct_into_the_same_blocks)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 4 * 1024 * 1024;
    size_t n;
    bool direct;
    mixed_runs(dir, FS_IO_PAGES_SMALL, &direct);
    mixed_runs(dir, FS_IO_PAGES_HUGE, &direct);

    /* Which path a run took: in a fresh log, a big synced run leaves its
     * pages in the page cache where the I/O buffers have small pages (and
     * goes direct where they have huge ones), a small synced run after it,
     * direct, takes the block it rewrote out again, a small unsynced one is
     * cached, and a big unsynced one is not. Both policies, forced. Only
     * where the filesystem's direct and buffered writes do that to the
     * page cache at all (not tmpfs, whose files are nothing but page
     * cache, nor ZFS). */
    if (!wal_keeps_cached_runs(direct) || !cache_follows_direct_io(dir)) {
        if (!buffered_pass)
            fprintf(stderr, "  note: no cached runs here, or %s does not keep direct writes out "
                            "of the page cache: which path each run took was not checked\n", dir);
    } else {
        for (int huge = 0; huge < 2; huge++) {
            set_faults((struct fs_faults){.io_pages = huge ? FS_IO_PAGES_HUGE
                                                           : FS_IO_PAGES_SMALL});
            rm_rf(dir);
            CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
            CHECK_EQ_INT(wal_huge_io(w), huge);
            bool big_synced_cached = !huge;
            char p[600];
            seg_path(dir, 1, p, sizeof(p));
            /* (reading the file would bring its pages in: the end is known) */
            n = append_big_run(w, NULL, 0);
            long end = WAL_HEADER_BYTES + (long)n * (WAL_RECORD_OVERHEAD + 8 + 4000);
            CHECK_EQ_INT(write_pending(w, true), 0);
            CHECK_EQ_INT(page_cached(p, WAL_HEADER_BYTES + (long)WAL_CACHED_RUN_BYTES_MIN),
                         big_synced_cached);
            CHECK_EQ_INT(page_cached(p, end - 1), big_synced_cached);
            append_sized(w, 100);
            CHECK_EQ_INT(write_pending(w, true), 0);
            CHECK(!page_cached(p, end));
            CHECK_EQ_INT(page_cached(p, WAL_HEADER_BYTES + (long)WAL_CACHED_RUN_BYTES_MIN),
                         big_synced_cached);
            end += WAL_RECORD_OVERHEAD + 8 + 100;
            append_sized(w, 50);
            CHECK_EQ_INT(write_pending(w, false), 0);
            CHECK(page_cached(p, end));
            end += WAL_RECORD_OVERHEAD + 8 + 50;
            long big_start = end;
            size_t m = append_big_run(w, NULL, 0);
            CHECK_EQ_INT(write_pending(w, false), 0);
            CHECK(!page_cached(p, big_start + (long)WAL_CACHED_RUN_BYTES_MIN));
            wal_close(w);
            CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
            CHECK_EQ_INT(rp.count, (long long)(n + 2 + m));
            CHECK_EQ_INT(lg.count, 0);
            wal_close(w);
        }
        set_faults((struct fs_faults){0});
    }
    rm_rf(dir);
    free(dir);
}

/* Small unsynced runs (the loop's writes under `fsync everysec`) go
 * through the page cache, and one that reaches into a new WAL_PRIME_BYTES
 * chunk past the records first writes that chunk whole with zeros: past
 * the segment's first prefill the file is whole chunks, never more than
 * the one the records end in, and every record reads back (the zeros
 * never land on one). */
TEST(wal_small_cached_runs_prime_whole_chunks_and_keep_every_record)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 64ull * 1024 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    bool direct = wal_direct_io(w);
    bool cached = !direct || wal_keeps_cached_runs(direct);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    long initial = file_size(p); /* a new segment's first prefill */
    static size_t lens[16384];
    size_t n = 0;
    long logical = WAL_HEADER_BYTES;
    int bad = 0, checked = 0;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    bool reopened = false;
    while (logical < initial + 5 * (long)WAL_PRIME_BYTES + 1000 && n + 3 <= 16384) {
        if (!reopened && logical > initial + 2 * (long)WAL_PRIME_BYTES) {
            /* a reopened log primes on from where the records end */
            reopened = true;
            wal_close(w);
            CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
            CHECK_EQ_INT(rp.count, (long long)n);
            CHECK_EQ_INT(file_size(p), file_after(direct, cached, logical));
        }
        for (int i = 0; i < 3; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t len = 100 + (size_t)(x >> 8) % 2000;
            lens[n] = len;
            if (append_sized(w, len) != n + 1)
                bad++;
            n++;
            logical += (long)(WAL_RECORD_OVERHEAD + 8 + len);
        }
        if (write_pending(w, false) != 0)
            bad++;
        if (logical > initial) {
            checked++;
            if (file_size(p) != file_after(direct, cached, logical))
                bad++;
        }
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(reopened);
    CHECK(checked > 50);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK(replayed_sized(&rp, lens, n));
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* Priming stops at the segment limit, or at a record's own end where it
 * is bigger than a segment: such a record's file is exactly its bytes
 * (in whole blocks where direct), however it was written. */
TEST(wal_a_record_bigger_than_a_segment_is_not_primed_past_its_end)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 128 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    for (int sync = 0; sync < 2; sync++) {
        uint64_t lsn = wal_last_lsn(w) + 1;
        static char big[300000];
        memset(big, 'b', sizeof(big));
        CHECK_EQ_INT(wal_append(w, 1, big, sizeof(big)), lsn);
        CHECK_EQ_INT(write_pending(w, sync), 0);
        char p[600];
        seg_path(dir, lsn, p, sizeof(p));
        CHECK_EQ_INT(file_size(p), file_bytes(wal_direct_io(w), (long)(WAL_HEADER_BYTES +
                                                                         WAL_RECORD_OVERHEAD +
                                                                         8 + 300000)));
    }
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    CHECK_EQ_INT(rp.count, 2);
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* wal_io_mode shows any thread what wal_direct_io and wal_huge_io say. */
TEST(wal_io_mode_shows_the_write_path)
{
    char *dir = make_tmpdir();
    for (int huge = 0; huge < 2; huge++) {
        struct wal *w;
        set_faults((struct fs_faults){.io_pages = huge ? FS_IO_PAGES_HUGE : FS_IO_PAGES_SMALL});
        CHECK_EQ_INT(open_wal(&w, dir, 1024 * 1024, 0), 0);
        bool d, h;
        wal_io_mode(w, &d, &h);
        CHECK_EQ_INT(d, wal_direct_io(w));
        CHECK_EQ_INT(h, huge);
        append_sized(w, 100);
        CHECK_EQ_INT(write_pending(w, true), 0);
        wal_io_mode(w, &d, &h);
        CHECK_EQ_INT(d, wal_direct_io(w));
        CHECK_EQ_INT(h, huge);
        wal_close(w);
    }
    set_faults((struct fs_faults){0});
    rm_rf(dir);
    free(dir);
}

/* The loop writes a batch itself (fsync everysec) only when
 * wal_pending_stays_cached says the write is a page-cache copy: one small
 * run in the current segment. Each refusal below is a case where the
 * write would do more: a new segment, a direct write, or a log that
 * failed. */
TEST(wal_says_when_the_pending_records_are_only_a_page_cache_write)
{
    char *dir = make_tmpdir();
    struct wal *w;
    const uint64_t seg = 1024 * 1024;
    CHECK_EQ_INT(open_wal(&w, dir, seg, 0), 0);
    bool direct = wal_direct_io(w);
    bool cached = !direct || wal_keeps_cached_runs(direct);
    CHECK(!wal_pending_stays_cached(w)); /* nothing pending */
    append_sized(w, 100);
    CHECK_EQ_INT(wal_pending_stays_cached(w), cached);
    CHECK_EQ_INT(write_pending(w, false), 0);

    /* a run of WAL_CACHED_RUN_BYTES_MIN or more goes direct (where there
     * is O_DIRECT; either way the loop leaves it to the fsync thread) */
    while (wal_pending_bytes(w) < WAL_CACHED_RUN_BYTES_MIN - 5000) {
        append_sized(w, 4000);
        CHECK_EQ_INT(wal_pending_stays_cached(w), cached);
    }
    append_sized(w, 5000);
    CHECK(!wal_pending_stays_cached(w));
    CHECK_EQ_INT(write_pending(w, false), 0);

    /* Fill the segment with small runs, each a page-cache write while it
     * fits, until the next would start a new segment. */
    int bad = 0, runs = 0;
    for (;;) {
        uint64_t end;
        size_t segs;
        wal_stats(w, &segs, &end);
        CHECK_EQ_INT(segs, 1);
        append_sized(w, 8000);
        append_sized(w, 8000);
        if (end + wal_pending_bytes(w) > seg)
            break;
        if (wal_pending_stays_cached(w) != cached || write_pending(w, false) != 0)
            bad++;
        runs++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(runs > 50);
    CHECK(!wal_pending_stays_cached(w)); /* it would not fit */
    CHECK_EQ_INT(write_pending(w, false), 0);
    CHECK_EQ_INT(count_files(dir, ".log"), 2);
    append_sized(w, 100); /* the new segment takes small runs again */
    CHECK_EQ_INT(wal_pending_stays_cached(w), cached);
    CHECK_EQ_INT(write_pending(w, true), 0);
    uint64_t last = wal_last_lsn(w);
    wal_close(w);

    /* After a snapshot past the end of the log, the next record starts a
     * segment of its own. */
    CHECK_EQ_INT(open_wal(&w, dir, seg, last + 100), 0);
    append_sized(w, 100);
    CHECK(!wal_pending_stays_cached(w));
    CHECK_EQ_INT(write_pending(w, false), 0);
    append_sized(w, 100);
    CHECK_EQ_INT(wal_pending_stays_cached(w), cached);

    /* A log whose write failed writes nothing more. */
    set_faults((struct fs_faults){.write_fail_nth = 1});
    CHECK_EQ_INT(write_pending(w, false), TRIAD_EIO);
    set_faults((struct fs_faults){0});
    append_sized(w, 100);
    CHECK(!wal_pending_stays_cached(w));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* Blocks written through the page cache and not yet synced go to the
 * device before a direct write of later records does: the segment is
 * synced first, and when that fails the direct write is never made. */
TEST(wal_syncs_cached_blocks_before_a_direct_write_after_them)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    bool cached = wal_keeps_cached_runs(wal_direct_io(w));
    size_t lens[400];
    size_t n = 0;
    for (; n < 3; n++)
        append_sized(w, lens[n] = 500 + n);
    CHECK_EQ_INT(write_pending(w, false), 0); /* small, unsynced: cached */
    size_t cached_end = n;
    /* a big unsynced run: direct, after a sync that fails */
    set_faults((struct fs_faults){.sync_fail_nth = 1});
    n = append_big_run(w, lens, n);
    int rc = write_pending(w, false);
    set_faults((struct fs_faults){0});
    /* with every run the same way there is nothing to sync first */
    CHECK_EQ_INT(rc, cached ? TRIAD_EIO : 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_sized(&rp, lens, cached ? cached_end : n));
    wal_close(w);

    if (cached) {
        /* After a sync nothing is left to sync first: the same direct run
         * succeeds with the next sync set to fail. */
        rm_rf(dir);
        CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
        for (n = 0; n < 3; n++)
            append_sized(w, lens[n] = 500 + n);
        CHECK_EQ_INT(write_pending(w, false), 0);
        CHECK_EQ_INT(wal_sync(w, errmsg, sizeof(errmsg)), 0);
        set_faults((struct fs_faults){.sync_fail_nth = 1});
        size_t m = append_big_run(w, lens, n);
        rc = write_pending(w, false);
        set_faults((struct fs_faults){0});
        CHECK_EQ_INT(rc, 0);
        wal_close(w);

        /* A reopened log cannot know what the process before left in the
         * page cache: its first direct write syncs first too. */
        CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
        CHECK(replayed_sized(&rp, lens, m));
        set_faults((struct fs_faults){.sync_fail_nth = 1});
        append_big_run(w, NULL, 0);
        rc = write_pending(w, false); /* big, unsynced: direct */
        set_faults((struct fs_faults){0});
        CHECK_EQ_INT(rc, TRIAD_EIO);
        wal_close(w);
    }
    rm_rf(dir);
    free(dir);
}

TEST(wal_truncates_and_logs_a_torn_tail_inside_an_aligned_block)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    size_t lens[8] = {5000, 200, 1000, 30};
    for (int i = 0; i < 2; i++)
        append_sized(w, lens[i]);
    CHECK_EQ_INT(write_pending(w, true), 0);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    size_t before_len;
    char *before = read_file(p, &before_len);
    long start = data_end(p); /* mid-block: 24 + 5017 + 217 */
    CHECK(start % TEST_BLOCK_BYTES != 0);
    append_sized(w, lens[2]);
    CHECK_EQ_INT(write_pending(w, true), 0);
    long end = data_end(p);
    wal_close(w);
    /* A write of record 3's block torn after its first 512-byte sector
     * past the old end: the rest of the block still holds what it held
     * before (zeros after record 2). */
    long blk = start / TEST_BLOCK_BYTES * TEST_BLOCK_BYTES;
    long cut = blk + (start - blk + 512) / 512 * 512;
    CHECK(cut > start && cut < end);
    write_at(p, cut, before + cut, (size_t)(blk + TEST_BLOCK_BYTES - cut));
    free(before);

    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_sized(&rp, lens, 2));
    CHECK_EQ_INT(lg.count, 1);
    char want[700];
    snprintf(want, sizeof(want), "wal: truncated torn record at %s offset %ld: ", p, start);
    CHECK(strncmp(lg.last, want, strlen(want)) == 0);
    CHECK_EQ_INT(file_size(p), start);
    /* The log goes on from the cut, mid-block. */
    lens[2] = 30;
    append_sized(w, lens[2]);
    CHECK_EQ_INT(write_pending(w, true), 0);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_sized(&rp, lens, 3));
    CHECK_EQ_INT(lg.count, 0);
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_falls_back_to_buffered_writes_when_a_direct_write_is_refused)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 3, true), 0);
    /* EINVAL from a write: what a filesystem that took O_DIRECT at open
     * but wants a bigger alignment says, having written nothing. */
    set_faults((struct fs_faults){.write_fail_nth = 1, .fail_errno = EINVAL});
    int rc = append_and_write(w, 4, true);
    set_faults((struct fs_faults){0});
    if (buffered_pass || !fs_takes_direct(dir)) {
        /* Already buffered: EINVAL is a failed write like any other. */
        CHECK_EQ_INT(rc, TRIAD_EIO);
    } else {
        /* Written again through the page cache, which it goes on using. */
        CHECK_EQ_INT(rc, 0);
        CHECK(!wal_direct_io(w));
        CHECK_EQ_INT(append_and_write(w, 2, false), 0);
        CHECK_EQ_INT(append_and_write(w, 1, true), 0);
        wal_close(w);
        CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
        CHECK(replayed_range(&rp, 1, 10));
        CHECK_EQ_INT(lg.count, 0);
    }
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

TEST(wal_buffered_writes_are_not_padded_to_blocks)
{
    /* The fallback writes records as they are: the file grows by exactly
     * their bytes past the prefill (in the direct pass, a block-rounded
     * size instead). */
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 200, 0), 0);
    CHECK_EQ_INT(append_and_write(w, 1, false), 0);
    bool direct = wal_direct_io(w);
    wal_close(w);
    char p[600];
    seg_path(dir, 1, p, sizeof(p));
    /* the first prefill stops at the limit of 200 */
    CHECK_EQ_INT(file_size(p), file_bytes(direct, 200));
    CHECK_EQ_INT(direct, !buffered_pass && fs_takes_direct(dir));
    CHECK_EQ_INT(open_wal(&w, dir, 200, 0), 0);
    CHECK(replayed_range(&rp, 1, 1));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

/* Records built in place (wal_record_begin / end / cancel) are the same
 * bytes as wal_append's, a cancelled one leaves no trace, and recycled
 * batch buffers carry nothing over. */
TEST(wal_records_built_in_place_replay_like_appended_ones)
{
    char *dir = make_tmpdir();
    struct wal *w;
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            uint64_t lsn = wal_last_lsn(w) + 1;
            char body[64];
            size_t len = body_len_for(lsn);
            body_for(lsn, body, len);
            if (i % 3 == 0) {
                CHECK_EQ_INT(wal_append(w, type_for(lsn), body, len), lsn);
                continue;
            }
            size_t before = wal_pending_bytes(w);
            if (i % 3 == 1) {
                /* cancelled: the pending bytes are as they were */
                struct tbuf *b = wal_record_begin(w);
                tbuf_append(b, "junk", 4);
                wal_record_cancel(w);
                CHECK_EQ_INT(wal_pending_bytes(w), before);
            }
            struct tbuf *b = wal_record_begin(w);
            tbuf_append(b, body, len / 2);
            tbuf_append(b, body + len / 2, len - len / 2);
            CHECK_EQ_INT(wal_record_bytes(w), WAL_RECORD_OVERHEAD + 8 + len);
            CHECK_EQ_INT(wal_record_end(w, type_for(lsn)), lsn);
            CHECK_EQ_INT(wal_pending_bytes(w), before + WAL_RECORD_OVERHEAD + 8 + len);
        }
        struct wal_batch b;
        wal_take_batch(w, &b);
        CHECK(b.cap >= b.len);
        CHECK_EQ_INT(wal_write_batch(w, &b, true, errmsg, sizeof(errmsg)), 0);
        wal_recycle_batch(w, &b);
        CHECK(b.data == NULL); /* taken back as the pending buffer */
        CHECK_EQ_INT(wal_pending_bytes(w), 0);
    }
    uint64_t last = wal_last_lsn(w);
    CHECK_EQ_INT(last, 60);
    wal_close(w);
    CHECK_EQ_INT(open_wal(&w, dir, 0, 0), 0);
    CHECK(replayed_range(&rp, 1, last));
    wal_close(w);
    rm_rf(dir);
    free(dir);
}

static void run_wal_tests(void)
{
    RUN(wal_replays_every_record_after_reopen);
    RUN(wal_take_batch_hands_over_exactly_what_was_appended);
    RUN(wal_records_built_in_place_replay_like_appended_ones);
    RUN(wal_opens_an_empty_directory_and_an_empty_segment);
    RUN(wal_replays_only_records_after_after_lsn);
    RUN(wal_truncates_a_torn_last_record_at_every_offset);
    RUN(wal_truncates_a_flipped_bit_in_the_last_record);
    RUN(wal_refuses_a_flipped_bit_in_a_middle_record);
    RUN(wal_refuses_a_bad_record_at_the_end_of_an_earlier_segment);
    RUN(wal_rejects_a_length_one_past_the_record_limit);
    RUN(wal_rotates_when_a_segment_is_full);
    RUN(wal_gives_a_record_larger_than_a_segment_its_own_segment);
    RUN(wal_remove_before_deletes_only_segments_wholly_covered);
    RUN(wal_starts_after_after_lsn_when_the_log_ends_before_it);
    RUN(wal_removes_a_last_segment_with_a_torn_header);
    RUN(wal_refuses_a_foreign_file_name);
    RUN(wal_stops_recovery_with_the_replay_callbacks_code);
    RUN(wal_returns_eio_on_an_injected_write_error_and_recovers_what_came_before);
    RUN(wal_returns_eio_on_an_injected_sync_error);
    RUN(wal_reopens_a_zero_tailed_segment_cleanly_and_appends_at_its_logical_end);
    RUN(wal_truncates_and_logs_a_torn_write_followed_by_zeros);
    RUN(wal_accepts_zeros_at_the_end_of_an_earlier_segment);
    RUN(wal_refuses_garbage_after_the_records_of_an_earlier_segment);
    RUN(wal_rotates_by_logical_size_not_file_size);
    RUN(wal_prefill_stays_ahead_of_the_records_in_rare_chunks_within_the_segment_limit);
    RUN(wal_unsynced_batches_do_not_prefill_and_reopen_cleanly);
    RUN(wal_a_segment_an_unsynced_batch_starts_gets_no_prefill);
    RUN(wal_a_big_synced_run_is_appended_without_prefill);
    RUN(wal_returns_eio_on_an_injected_write_error_while_prefilling);
    RUN(wal_uses_o_direct_exactly_when_the_filesystem_takes_it);
    RUN(wal_reopens_records_of_many_sizes_written_across_blocks_in_small_batches);
    RUN(wal_a_batch_exactly_filling_a_block_is_followed_cleanly);
    RUN(wal_reopened_mid_block_keeps_the_records_before_it_in_that_block);
    RUN(wal_writes_a_run_bigger_than_the_staging_buffer_in_pieces);
    RUN(wal_runs_go_through_the_page_cache_or_direct_into_the_same_blocks);
    RUN(wal_syncs_cached_blocks_before_a_direct_write_after_them);
    RUN(wal_says_when_the_pending_records_are_only_a_page_cache_write);
    RUN(wal_small_cached_runs_prime_whole_chunks_and_keep_every_record);
    RUN(wal_a_record_bigger_than_a_segment_is_not_primed_past_its_end);
    RUN(wal_io_mode_shows_the_write_path);
    RUN(wal_truncates_and_logs_a_torn_tail_inside_an_aligned_block);
    RUN(wal_falls_back_to_buffered_writes_when_a_direct_write_is_refused);
    RUN(wal_buffered_writes_are_not_padded_to_blocks);
}

int main(void)
{
    RUN(crc32c_matches_the_standard_check_value);
    RUN(crc32c_table_and_instruction_agree_at_every_length_and_alignment);
    RUN(crc32c_chains_across_pieces);
    run_wal_tests();
    /* Again through the page cache, as on a filesystem without O_DIRECT. */
    fprintf(stderr, "-- the wal tests again with O_DIRECT refused --\n");
    buffered_pass = true;
    set_faults((struct fs_faults){0});
    run_wal_tests();
    return test_summary("wal");
}
