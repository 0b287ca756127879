/* test_snap.c - snapshots: round trips, expiry, corruption, leftovers,
 * choosing the newest, removal, injected I/O errors. */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/store/fs.h"
#include "../../src/store/kv.h"
#include "../../src/store/snap.h"
#include "test.h"
#include "test_dir.h"

#define NDBS 4
#define NOW_MS 1700000000000ll

static char errmsg[512];

static char *make_tmpdir(void)
{
    return make_tmpdir_named("snap");
}


static void snap_path(const char *dir, uint64_t lsn, const char *suffix, char *out, size_t n)
{
    snprintf(out, n, "%s/snap-%020" PRIu64 "%s", dir, lsn, suffix);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    if (d != NULL)
        closedir(d);
    return n;
}

static void new_dbs(struct kv **dbs, int n)
{
    for (int i = 0; i < n; i++)
        dbs[i] = kv_new((uint64_t)i + 1);
}

static void free_dbs(struct kv **dbs, int n)
{
    for (int i = 0; i < n; i++)
        kv_free(dbs[i]);
}

/* Every live entry of `want` is in `got` with the same value and deadline. */
struct cmp_ctx {
    struct kv *got;
    int64_t now_ms;
    size_t live;
    size_t mismatches;
};

static int cmp_entry(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire_ms)
{
    struct cmp_ctx *c = arg;
    if (expire_ms != KV_NO_EXPIRE && expire_ms <= c->now_ms)
        return 0;
    c->live++;
    struct kv_val v;
    if (kv_get(c->got, key, klen, c->now_ms, &v) != 0 || v.len != vlen ||
        (vlen > 0 && memcmp(v.ptr, val, vlen) != 0) || v.expire_ms != expire_ms)
        c->mismatches++;
    return 0;
}

/* The dbs hold the same live keys. */
static bool dbs_equal(struct kv **want, struct kv **got, int n, int64_t now_ms)
{
    for (int i = 0; i < n; i++) {
        struct cmp_ctx c = {.got = got[i], .now_ms = now_ms};
        kv_foreach(want[i], cmp_entry, &c);
        if (c.mismatches != 0 || c.live != kv_count(got[i]))
            return false;
    }
    return true;
}

static void fill_dbs(struct kv **dbs, uint64_t salt)
{
    char key[64], val[300];
    /* Enough small keys to cross the streaming buffer many times. */
    for (int i = 0; i < 20000; i++) {
        int kl = snprintf(key, sizeof(key), "key:%" PRIu64 ":%d", salt, i);
        size_t vl = (size_t)(i * 13 % 290);
        for (size_t j = 0; j < vl; j++)
            val[j] = (char)(i + j + salt);
        int64_t exp = i % 3 == 0 ? NOW_MS + 1000 + i : KV_NO_EXPIRE;
        kv_set(dbs[i % 3], key, (size_t)kl, val, vl, exp);
    }
    /* A 0-byte value, every byte value, a 1 MiB value, a binary key. */
    kv_set(dbs[1], "empty", 5, "", 0, KV_NO_EXPIRE);
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    kv_set(dbs[1], "bytes", 5, all, sizeof(all), NOW_MS + 5);
    kv_set(dbs[3], all, sizeof(all), "binary key", 10, KV_NO_EXPIRE);
    size_t big_len = 1024 * 1024;
    char *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7 + salt);
    kv_set(dbs[2], "big", 3, big, big_len, KV_NO_EXPIRE);
    kv_set(dbs[3], "big-with-deadline", 17, big, big_len - 1, NOW_MS + 99);
    free(big);
}

/* ---- tests ------------------------------------------------------------- */

TEST(snap_round_trips_every_db_with_values_of_many_sizes)
{
    char *dir = make_tmpdir();
    struct kv *src[NDBS], *dst[NDBS];
    new_dbs(src, NDBS);
    fill_dbs(src, 1);
    uint64_t bytes = 0;
    CHECK_EQ_INT(snap_write(dir, 42, src, NDBS, NOW_MS, &bytes, errmsg, sizeof(errmsg)), 0);
    char p[600];
    snap_path(dir, 42, ".snap", p, sizeof(p));
    CHECK_EQ_INT(file_size(p), (long)bytes);
    CHECK_EQ_INT(count_entries(dir), 1);

    new_dbs(dst, NDBS);
    uint64_t lsn = 0;
    CHECK_EQ_INT(snap_load_latest(dir, dst, NDBS, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(lsn, 42);
    CHECK(dbs_equal(src, dst, NDBS, NOW_MS));
    CHECK(kv_count(dst[0]) > 0 && kv_count(dst[3]) == 2);
    struct kv_val v;
    CHECK_EQ_INT(kv_get(dst[1], "empty", 5, NOW_MS, &v), 0);
    CHECK_EQ_INT(v.len, 0);
    CHECK_EQ_INT(kv_get(dst[2], "big", 3, NOW_MS, &v), 0);
    CHECK_EQ_INT(v.len, 1024 * 1024);
    CHECK_EQ_INT(kv_get(dst[1], "bytes", 5, NOW_MS, &v), 0);
    CHECK_EQ_INT(v.expire_ms, NOW_MS + 5);
    free_dbs(src, NDBS);
    free_dbs(dst, NDBS);
    rm_rf(dir);
    free(dir);
}

TEST(snap_of_empty_dbs_loads_as_empty)
{
    char *dir = make_tmpdir();
    struct kv *dbs[NDBS];
    new_dbs(dbs, NDBS);
    uint64_t bytes = 0;
    CHECK_EQ_INT(snap_write(dir, 1, dbs, NDBS, NOW_MS, &bytes, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(bytes, 24 + 13);
    uint64_t lsn = 0;
    CHECK_EQ_INT(snap_load_latest(dir, dbs, NDBS, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(lsn, 1);
    for (int i = 0; i < NDBS; i++)
        CHECK_EQ_INT(kv_count(dbs[i]), 0);
    free_dbs(dbs, NDBS);
    rm_rf(dir);
    free(dir);
}

TEST(snap_load_without_a_snapshot_sets_lsn_zero)
{
    char *dir = make_tmpdir();
    struct kv *dbs[NDBS];
    new_dbs(dbs, NDBS);
    uint64_t lsn = 77;
    CHECK_EQ_INT(snap_load_latest(dir, dbs, NDBS, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(lsn, 0);
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/nope", dir);
    lsn = 77;
    CHECK_EQ_INT(snap_load_latest(missing, dbs, NDBS, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(lsn, 0);
    free_dbs(dbs, NDBS);
    rm_rf(dir);
    free(dir);
}

TEST(snap_leaves_out_keys_expired_at_write_time)
{
    char *dir = make_tmpdir();
    struct kv *src[1], *dst[1];
    new_dbs(src, 1);
    kv_set(src[0], "past", 4, "x", 1, NOW_MS - 1);
    kv_set(src[0], "now", 3, "x", 1, NOW_MS);
    kv_set(src[0], "soon", 4, "x", 1, NOW_MS + 1);
    kv_set(src[0], "never", 5, "x", 1, KV_NO_EXPIRE);
    CHECK_EQ_INT(snap_write(dir, 3, src, 1, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    new_dbs(dst, 1);
    uint64_t lsn;
    CHECK_EQ_INT(snap_load_latest(dir, dst, 1, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(kv_count(dst[0]), 2);
    struct kv_val v;
    CHECK_EQ_INT(kv_get(dst[0], "soon", 4, NOW_MS, &v), 0);
    CHECK_EQ_INT(v.expire_ms, NOW_MS + 1);
    CHECK_EQ_INT(kv_get(dst[0], "never", 5, NOW_MS, &v), 0);
    CHECK_EQ_INT(v.expire_ms, KV_NO_EXPIRE);
    free_dbs(src, 1);
    free_dbs(dst, 1);
    rm_rf(dir);
    free(dir);
}

TEST(snap_refuses_every_flipped_bit_and_every_truncation)
{
    char *dir = make_tmpdir();
    struct kv *dbs[2];
    new_dbs(dbs, 2);
    kv_set(dbs[0], "alpha", 5, "one", 3, KV_NO_EXPIRE);
    kv_set(dbs[1], "beta", 4, "", 0, NOW_MS + 10);
    kv_set(dbs[1], "gamma", 5, "three", 5, KV_NO_EXPIRE);
    CHECK_EQ_INT(snap_write(dir, 9, dbs, 2, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    free_dbs(dbs, 2);
    char p[600];
    snap_path(dir, 9, ".snap", p, sizeof(p));
    size_t len;
    char *orig = read_file(p, &len);
    char *copy = malloc(len);

    int accepted = 0, unnamed = 0, left_keys = 0;
    for (size_t i = 0; i < len * 8; i++) {
        memcpy(copy, orig, len);
        copy[i / 8] ^= (char)(1 << (i % 8));
        write_file(p, copy, len);
        new_dbs(dbs, 2);
        uint64_t lsn = 0;
        errmsg[0] = '\0';
        if (snap_load_latest(dir, dbs, 2, &lsn, errmsg, sizeof(errmsg)) != TRIAD_ECORRUPT)
            accepted++;
        if (strstr(errmsg, p) == NULL || strstr(errmsg, " at offset ") == NULL)
            unnamed++;
        left_keys += (int)(kv_count(dbs[0]) + kv_count(dbs[1]));
        free_dbs(dbs, 2);
    }
    for (size_t cut = 0; cut < len; cut++) {
        write_file(p, orig, cut);
        new_dbs(dbs, 2);
        uint64_t lsn = 0;
        if (snap_load_latest(dir, dbs, 2, &lsn, errmsg, sizeof(errmsg)) != TRIAD_ECORRUPT)
            accepted++;
        free_dbs(dbs, 2);
    }
    CHECK_EQ_INT(accepted, 0);
    CHECK_EQ_INT(unnamed, 0);
    CHECK_EQ_INT(left_keys, 0);

    /* A flipped value byte: the checksum names the trailer's offset. */
    memcpy(copy, orig, len);
    copy[len - 20] ^= 1;
    write_file(p, copy, len);
    new_dbs(dbs, 2);
    uint64_t lsn;
    CHECK_EQ_INT(snap_load_latest(dir, dbs, 2, &lsn, errmsg, sizeof(errmsg)), TRIAD_ECORRUPT);
    char want[700];
    snprintf(want, sizeof(want), "snap: corrupt snapshot %s at offset %zu: checksum", p, len - 4);
    CHECK(strncmp(errmsg, want, strlen(want)) == 0);
    free_dbs(dbs, 2);
    free(copy);
    free(orig);
    rm_rf(dir);
    free(dir);
}

TEST(snap_refuses_a_corrupt_big_value)
{
    char *dir = make_tmpdir();
    struct kv *src[NDBS], *dst[NDBS];
    new_dbs(src, NDBS);
    fill_dbs(src, 2);
    CHECK_EQ_INT(snap_write(dir, 5, src, NDBS, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    char p[600];
    snap_path(dir, 5, ".snap", p, sizeof(p));
    size_t len;
    char *data = read_file(p, &len);
    /* Somewhere inside one of the 1 MiB values (bigger than the buffer). */
    char *hit = memmem(data, len, "big-with-deadline", 17);
    CHECK(hit != NULL);
    if (hit != NULL) {
        hit[17 + 500000] ^= 0x40;
        write_file(p, data, len);
        new_dbs(dst, NDBS);
        uint64_t lsn;
        CHECK_EQ_INT(snap_load_latest(dir, dst, NDBS, &lsn, errmsg, sizeof(errmsg)),
                     TRIAD_ECORRUPT);
        CHECK(strstr(errmsg, "checksum") != NULL);
        for (int i = 0; i < NDBS; i++)
            CHECK_EQ_INT(kv_count(dst[i]), 0);
        free_dbs(dst, NDBS);
    }
    free(data);
    free_dbs(src, NDBS);
    rm_rf(dir);
    free(dir);
}

TEST(snap_refuses_an_entry_for_a_database_it_was_not_given)
{
    char *dir = make_tmpdir();
    struct kv *src[NDBS], *dst[2];
    new_dbs(src, NDBS);
    kv_set(src[3], "k", 1, "v", 1, KV_NO_EXPIRE);
    CHECK_EQ_INT(snap_write(dir, 8, src, NDBS, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    new_dbs(dst, 2);
    uint64_t lsn;
    CHECK_EQ_INT(snap_load_latest(dir, dst, 2, &lsn, errmsg, sizeof(errmsg)), TRIAD_ECORRUPT);
    CHECK(strstr(errmsg, "database 3") != NULL);
    free_dbs(src, NDBS);
    free_dbs(dst, 2);
    rm_rf(dir);
    free(dir);
}

TEST(snap_removes_a_leftover_tmp_and_loads_the_real_one)
{
    char *dir = make_tmpdir();
    struct kv *dbs[1];
    new_dbs(dbs, 1);
    kv_set(dbs[0], "k", 1, "v", 1, KV_NO_EXPIRE);
    CHECK_EQ_INT(snap_write(dir, 5, dbs, 1, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    free_dbs(dbs, 1);
    /* A crash half-way through writing a newer one. */
    char tmp[600];
    snap_path(dir, 9, ".tmp", tmp, sizeof(tmp));
    write_file(tmp, "TRIADSNP garbage", 16);
    new_dbs(dbs, 1);
    uint64_t lsn = 0;
    CHECK_EQ_INT(snap_load_latest(dir, dbs, 1, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(lsn, 5);
    CHECK_EQ_INT(kv_count(dbs[0]), 1);
    CHECK_EQ_INT(file_size(tmp), -1);
    CHECK_EQ_INT(count_entries(dir), 1);
    free_dbs(dbs, 1);
    rm_rf(dir);
    free(dir);
}

TEST(snap_loads_the_newest_and_never_falls_back)
{
    char *dir = make_tmpdir();
    struct kv *dbs[1];
    uint64_t lsns[3] = {3, 12, 7}; /* written out of order */
    for (int i = 0; i < 3; i++) {
        new_dbs(dbs, 1);
        char key[32];
        int kl = snprintf(key, sizeof(key), "at-%" PRIu64, lsns[i]);
        kv_set(dbs[0], key, (size_t)kl, "v", 1, KV_NO_EXPIRE);
        CHECK_EQ_INT(snap_write(dir, lsns[i], dbs, 1, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
        free_dbs(dbs, 1);
    }
    new_dbs(dbs, 1);
    uint64_t lsn = 0;
    CHECK_EQ_INT(snap_load_latest(dir, dbs, 1, &lsn, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(lsn, 12);
    CHECK_EQ_INT(kv_count(dbs[0]), 1);
    CHECK(kv_exists(dbs[0], "at-12", 5, NOW_MS));
    free_dbs(dbs, 1);

    /* The newest damaged: refuse, don't quietly load lsn 7. */
    char p[600];
    snap_path(dir, 12, ".snap", p, sizeof(p));
    size_t len;
    char *data = read_file(p, &len);
    data[30] ^= 1;
    write_file(p, data, len);
    free(data);
    new_dbs(dbs, 1);
    lsn = 0;
    CHECK_EQ_INT(snap_load_latest(dir, dbs, 1, &lsn, errmsg, sizeof(errmsg)), TRIAD_ECORRUPT);
    CHECK_EQ_INT(lsn, 0);
    CHECK(strstr(errmsg, p) != NULL);
    free_dbs(dbs, 1);
    rm_rf(dir);
    free(dir);
}

TEST(snap_remove_older_keeps_the_given_lsn_and_newer)
{
    char *dir = make_tmpdir();
    struct kv *dbs[1];
    new_dbs(dbs, 1);
    uint64_t lsns[4] = {3, 7, 12, 20};
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(snap_write(dir, lsns[i], dbs, 1, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(snap_remove_older(dir, 12, NULL), 0);
    char p[600];
    for (int i = 0; i < 4; i++) {
        snap_path(dir, lsns[i], ".snap", p, sizeof(p));
        CHECK_EQ_INT(file_size(p) >= 0, lsns[i] >= 12);
    }
    CHECK_EQ_INT(count_entries(dir), 2);
    free_dbs(dbs, 1);
    rm_rf(dir);
    free(dir);
}

TEST(snap_write_returns_eio_on_injected_faults_and_leaves_no_file)
{
    char *dir = make_tmpdir();
    struct kv *dbs[NDBS];
    new_dbs(dbs, NDBS);
    fill_dbs(dbs, 3);
    /* A failure at the first write, deep inside, at the last, at fsync. */
    int fail_at[3] = {1, 5, 14};
    for (int i = 0; i < 4; i++) {
        if (i < 3)
            fs_faults = (struct fs_faults){.write_fail_nth = fail_at[i], .write_partial_bytes = 7};
        else
            fs_faults = (struct fs_faults){.sync_fail_nth = 1};
        errmsg[0] = '\0';
        int rc = snap_write(dir, 11, dbs, NDBS, NOW_MS, NULL, errmsg, sizeof(errmsg));
        bool fired = fs_faults.write_fail_nth == 0 && fs_faults.sync_fail_nth == 0;
        fs_faults = (struct fs_faults){0};
        if (!fired) { /* fewer writes than fail_at: the snapshot succeeded */
            CHECK_EQ_INT(rc, 0);
            CHECK_EQ_INT(snap_remove_older(dir, 12, NULL), 0);
            continue;
        }
        CHECK_EQ_INT(rc, TRIAD_EIO);
        CHECK(strstr(errmsg, "snap: ") == errmsg);
        CHECK_EQ_INT(count_entries(dir), 0);
    }
    CHECK_EQ_INT(snap_write(dir, 11, dbs, NDBS, NOW_MS, NULL, errmsg, sizeof(errmsg)), 0);
    CHECK_EQ_INT(count_entries(dir), 1);
    free_dbs(dbs, NDBS);
    rm_rf(dir);
    free(dir);
}

int main(void)
{
    RUN(snap_round_trips_every_db_with_values_of_many_sizes);
    RUN(snap_of_empty_dbs_loads_as_empty);
    RUN(snap_load_without_a_snapshot_sets_lsn_zero);
    RUN(snap_leaves_out_keys_expired_at_write_time);
    RUN(snap_refuses_every_flipped_bit_and_every_truncation);
    RUN(snap_refuses_a_corrupt_big_value);
    RUN(snap_refuses_an_entry_for_a_database_it_was_not_given);
    RUN(snap_removes_a_leftover_tmp_and_loads_the_real_one);
    RUN(snap_loads_the_newest_and_never_falls_back);
    RUN(snap_remove_older_keeps_the_given_lsn_and_newer);
    RUN(snap_write_returns_eio_on_injected_faults_and_leaves_no_file);
    return test_summary("snap");
}
