/* test_kv.c - the keyspace: hash table, incremental rehash, expiry heap,
 * SCAN, RANDOMKEY and memory accounting. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "../../src/store/kv.h"
#include "test.h"

/* kv.c's O(n) self-check (kept out of kv.h: tests and debug builds only). */
int kv__check(const struct kv *kv);

#define KEY_LEN 16

/* 16-byte keys, as the memory target is stated for */
static void key_of(uint64_t i, char *out)
{
    char tmp[32];
    snprintf(tmp, sizeof(tmp), "key:%012" PRIu64, i);
    memcpy(out, tmp, KEY_LEN);
}

static void set_i(struct kv *kv, uint64_t i, int64_t expire_ms)
{
    char k[KEY_LEN], v[KEY_LEN];
    key_of(i, k);
    key_of(i * 7 + 3, v);
    kv_set(kv, k, KEY_LEN, v, KEY_LEN, expire_ms);
}

static bool has_i(struct kv *kv, uint64_t i, int64_t now_ms)
{
    char k[KEY_LEN], v[KEY_LEN];
    struct kv_val out;
    key_of(i, k);
    key_of(i * 7 + 3, v);
    if (kv_get(kv, k, KEY_LEN, now_ms, &out) != 0)
        return false;
    return out.len == KEY_LEN && memcmp(out.ptr, v, KEY_LEN) == 0;
}

static int del_i(struct kv *kv, uint64_t i, int64_t now_ms)
{
    char k[KEY_LEN];
    key_of(i, k);
    return kv_del(kv, k, KEY_LEN, now_ms);
}

static bool rehashing(struct kv *kv)
{
    return kv_rehash_step(kv, 0); /* zero steps: only reports */
}

static void settle(struct kv *kv)
{
    while (kv_rehash_step(kv, 100))
        ;
}

TEST(kv_returns_what_was_set_and_forgets_what_was_deleted)
{
    struct kv *kv = kv_new(1);
    struct kv_val v;
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), TRIAD_ENOTFOUND);
    kv_set(kv, "a", 1, "hello", 5, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), 0);
    CHECK_MEM_STR(v.ptr, v.len, "hello");
    CHECK(v.expire_ms == KV_NO_EXPIRE);
    CHECK(kv_exists(kv, "a", 1, 0));
    CHECK(!kv_exists(kv, "ab", 2, 0));
    CHECK(!kv_exists(kv, "b", 1, 0));

    kv_set(kv, "a", 1, "a much longer value than before", 31, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), 0);
    CHECK_MEM_STR(v.ptr, v.len, "a much longer value than before");
    kv_set(kv, "a", 1, "x", 1, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), 0);
    CHECK_MEM_STR(v.ptr, v.len, "x");
    CHECK_EQ_INT(kv_count(kv), 1);

    /* empty key, empty value, binary bytes */
    kv_set(kv, "", 0, "", 0, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "", 0, 0, &v), 0);
    CHECK_EQ_INT(v.len, 0);
    kv_set(kv, "k\0z", 3, "v\0w", 3, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "k\0z", 3, 0, &v), 0);
    CHECK(v.len == 3 && memcmp(v.ptr, "v\0w", 3) == 0);
    CHECK(!kv_exists(kv, "k\0y", 3, 0));
    CHECK_EQ_INT(kv_count(kv), 3);

    CHECK_EQ_INT(kv_del(kv, "a", 1, 0), 0);
    CHECK_EQ_INT(kv_del(kv, "a", 1, 0), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), TRIAD_ENOTFOUND);

    /* a value set from a slice of itself (the allocation may shrink) */
    char big[600];
    memset(big, 'b', sizeof(big));
    memcpy(big + 500, "tail", 4);
    kv_set(kv, "a", 1, big, sizeof(big), KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), 0);
    kv_set(kv, "a", 1, v.ptr + 500, 4, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), 0);
    CHECK_MEM_STR(v.ptr, v.len, "tail");
    CHECK_EQ_INT(kv_del(kv, "a", 1, 0), 0);
    CHECK_EQ_INT(kv_get(kv, "a", 1, 0, &v), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(kv_count(kv), 2);
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

TEST(kv_finds_every_one_of_a_million_keys_through_growth_and_shrinking)
{
    enum { N = 1000000 };
    struct kv *kv = kv_new(42);
    size_t mem_empty = kv_mem_bytes(kv);
    int missing = 0;
    for (uint64_t i = 0; i < N; i++) {
        set_i(kv, i, KV_NO_EXPIRE);
        /* spot-check older keys while the table resizes under them */
        if (i % 97 == 0 && !has_i(kv, i / 2, 0))
            missing++;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(kv_count(kv), N);
    CHECK_EQ_INT(kv__check(kv), 0);
    for (uint64_t i = 0; i < N; i++) {
        if (!has_i(kv, i, 0))
            missing++;
    }
    CHECK_EQ_INT(missing, 0);
    CHECK(!has_i(kv, N, 0));

    /* delete down through every shrink, checking survivors as we go */
    int del_failed = 0;
    for (uint64_t i = 0; i < N; i++) {
        if (del_i(kv, i, 0) != 0)
            del_failed++;
        if (i % 101 == 0 && i + 1 < N && !has_i(kv, i + 1 + (N - 1 - i) / 2, 0))
            missing++;
        if (i == N - 1000)
            CHECK_EQ_INT(kv__check(kv), 0);
    }
    CHECK_EQ_INT(del_failed, 0);
    CHECK_EQ_INT(missing, 0);
    CHECK_EQ_INT(kv_count(kv), 0);
    settle(kv);
    CHECK_EQ_INT(kv_mem_bytes(kv), mem_empty); /* back to the minimum table */
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

TEST(kv_serves_lookups_inserts_and_deletes_in_the_middle_of_a_rehash)
{
    struct kv *kv = kv_new(7);
    uint64_t n = 0;
    /* fill until a grow starts, then stop calling anything but the ops */
    while (!rehashing(kv))
        set_i(kv, n++, KV_NO_EXPIRE);
    CHECK(n >= 16);
    int bad = 0, checks = 0;
    uint64_t deleted_below = 0;
    while (rehashing(kv)) {
        /* one of each op per round: insert new, look up old, delete oldest */
        set_i(kv, n++, KV_NO_EXPIRE);
        if (del_i(kv, deleted_below++, 0) != 0)
            bad++;
        for (uint64_t i = deleted_below; i < n; i++)
            bad += !has_i(kv, i, 0);
        bad += has_i(kv, deleted_below - 1, 0);
        if (kv__check(kv) != 0)
            bad++;
        checks++;
    }
    CHECK(checks > 0);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(kv_count(kv), n - deleted_below);

    /* and mid-shrink: delete most keys so a shrink starts, then mix ops */
    for (uint64_t i = 0; i < 4000; i++)
        set_i(kv, n++, KV_NO_EXPIRE);
    settle(kv);
    uint64_t lo = deleted_below;
    while (!rehashing(kv) && lo < n)
        CHECK_EQ_INT(del_i(kv, lo++, 0), 0);
    CHECK(rehashing(kv));
    checks = 0;
    while (rehashing(kv)) {
        set_i(kv, n++, KV_NO_EXPIRE);
        CHECK_EQ_INT(del_i(kv, lo++, 0), 0);
        if (checks++ % 16 == 0) {
            for (uint64_t i = lo; i < n; i++)
                bad += !has_i(kv, i, 0);
            bad += kv__check(kv) != 0;
        }
    }
    for (uint64_t i = lo; i < n; i++)
        bad += !has_i(kv, i, 0);
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(kv_count(kv), n - lo);
    kv_free(kv);
}

/* Prefetching is a hint: in an empty table, a quiet one and one in the
 * middle of a rehash, for present and absent keys, it changes nothing,
 * not even the rehash's progress. */
TEST(kv_prefetch_changes_nothing_in_any_table_state)
{
    struct kv *kv = kv_new(9);
    char k[KEY_LEN];
    key_of(1, k);
    kv_prefetch_entry(kv, kv_prefetch_bucket(kv, k, KEY_LEN));
    CHECK_EQ_INT(kv_count(kv), 0);
    uint64_t n = 0;
    while (!rehashing(kv))
        set_i(kv, n++, KV_NO_EXPIRE);
    for (int phase = 0; phase < 2; phase++) {
        size_t mem = kv_mem_bytes(kv);
        bool was_rehashing = rehashing(kv);
        for (uint64_t i = 0; i < n + 50; i++) {
            key_of(i, k);
            kv_prefetch_entry(kv, kv_prefetch_bucket(kv, k, KEY_LEN));
        }
        CHECK(rehashing(kv) == was_rehashing);
        CHECK_EQ_INT(kv_mem_bytes(kv), mem);
        CHECK_EQ_INT(kv_count(kv), n);
        CHECK_EQ_INT(kv__check(kv), 0);
        int bad = 0;
        for (uint64_t i = 0; i < n; i++)
            bad += !has_i(kv, i, 0);
        CHECK_EQ_INT(bad, 0);
        settle(kv); /* then again with the rehash done */
    }
    kv_free(kv);
}

TEST(kv_rehash_step_finishes_a_resize_with_bounded_work_per_call)
{
    struct kv *kv = kv_new(9);
    uint64_t n = 0;
    while (n < 5000 || !rehashing(kv))
        set_i(kv, n++, KV_NO_EXPIRE);
    /* the grow just started: tab[0] holds about n/2 keys to move */
    int calls = 0;
    while (kv_rehash_step(kv, 1)) {
        calls++;
        TRIAD_ASSERT(calls < 1000000);
    }
    CHECK(calls > 100);          /* one bucket per call, not all at once */
    CHECK(!rehashing(kv));
    CHECK_EQ_INT(kv__check(kv), 0);
    int missing = 0;
    for (uint64_t i = 0; i < n; i++)
        missing += !has_i(kv, i, 0);
    CHECK_EQ_INT(missing, 0);
    CHECK(!kv_rehash_step(kv, 10)); /* nothing pending */
    kv_free(kv);
}

TEST(kv_treats_an_expired_key_as_absent_and_frees_it_lazily)
{
    struct kv *kv = kv_new(2);
    struct kv_val v;
    kv_set(kv, "k", 1, "v", 1, 1000);
    CHECK_EQ_INT(kv_expires_count(kv), 1);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 999, &v), 0);
    CHECK_EQ_INT(v.expire_ms, 1000);
    CHECK(kv_exists(kv, "k", 1, 999));
    CHECK_EQ_INT(kv_count(kv), 1);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 1000, &v), TRIAD_ENOTFOUND); /* deadline <= now */
    CHECK_EQ_INT(kv_count(kv), 0);
    CHECK_EQ_INT(kv_expires_count(kv), 0);

    kv_set(kv, "e", 1, "v", 1, 50);
    CHECK(!kv_exists(kv, "e", 1, 60));
    CHECK_EQ_INT(kv_count(kv), 0);
    kv_set(kv, "d", 1, "v", 1, 50);
    CHECK_EQ_INT(kv_del(kv, "d", 1, 60), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(kv_count(kv), 0);
    kv_set(kv, "s", 1, "v", 1, 50);
    CHECK_EQ_INT(kv_set_expire(kv, "s", 1, 500, 60), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(kv_count(kv), 0);

    /* a deadline already past is stored as given (WAL replay) */
    kv_set(kv, "p", 1, "v", 1, 10);
    CHECK_EQ_INT(kv_count(kv), 1);
    CHECK_EQ_INT(kv_expires_count(kv), 1);
    CHECK_EQ_INT(kv_get(kv, "p", 1, 5, &v), 0);
    CHECK_EQ_INT(v.expire_ms, 10);

    /* kv_resize_value on an expired key starts from an empty value */
    kv_set(kv, "r", 1, "old", 3, 100);
    char *p = kv_resize_value(kv, "r", 1, 2, 200);
    CHECK(p[0] == 0 && p[1] == 0);
    CHECK_EQ_INT(kv_get(kv, "r", 1, 300, &v), 0);
    CHECK_EQ_INT(v.len, 2);
    CHECK(v.expire_ms == KV_NO_EXPIRE);
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

struct collected {
    char keys[64][KEY_LEN];
    size_t n;
};

static void collect_cb(void *arg, const char *key, size_t klen)
{
    struct collected *c = arg;
    TRIAD_ASSERT(klen == KEY_LEN);
    TRIAD_ASSERT(c->n < TRIAD_ARRAY_LEN(c->keys));
    memcpy(c->keys[c->n++], key, KEY_LEN);
}

TEST(kv_expire_cycle_deletes_earliest_first_and_at_most_max_keys)
{
    struct kv *kv = kv_new(3);
    /* deadlines 1000 + 10*perm(i), inserted in a scrambled order */
    for (uint64_t i = 0; i < 50; i++) {
        uint64_t d = (i * 17) % 50;
        set_i(kv, d, 1000 + 10 * (int64_t)d);
    }
    set_i(kv, 100, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_expires_count(kv), 50);
    struct collected c = {.n = 0};
    CHECK_EQ_INT(kv_expire_cycle(kv, 999, 100, collect_cb, &c), 0); /* nothing due */
    CHECK_EQ_INT(kv_expire_cycle(kv, 5000, 3, collect_cb, &c), 3);  /* bounded */
    CHECK_EQ_INT(c.n, 3);
    char k[KEY_LEN];
    for (uint64_t i = 0; i < 3; i++) {
        key_of(i, k);
        CHECK(memcmp(c.keys[i], k, KEY_LEN) == 0);
    }
    CHECK_EQ_INT(kv_count(kv), 48);
    /* only those due by now_ms: deadlines 1030..1200 are 18 keys */
    c.n = 0;
    CHECK_EQ_INT(kv_expire_cycle(kv, 1200, 100, collect_cb, &c), 18);
    for (uint64_t i = 0; i < c.n; i++) {
        key_of(i + 3, k);
        CHECK(memcmp(c.keys[i], k, KEY_LEN) == 0);
    }
    CHECK(has_i(kv, 21, 0));
    CHECK(!has_i(kv, 20, 0));
    CHECK_EQ_INT(kv_expire_cycle(kv, INT64_MAX, 1000, NULL, NULL), 29);
    CHECK_EQ_INT(kv_count(kv), 1); /* the key without a deadline stays */
    CHECK_EQ_INT(kv_expires_count(kv), 0);
    CHECK(has_i(kv, 100, INT64_MAX));
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

TEST(kv_set_drops_the_deadline_unless_keep_ttl_and_set_expire_can_clear_it)
{
    struct kv *kv = kv_new(4);
    struct kv_val v;
    kv_set(kv, "k", 1, "v1", 2, 5000);
    kv_set(kv, "k", 1, "v2", 2, KV_KEEP_TTL);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK_MEM_STR(v.ptr, v.len, "v2");
    CHECK_EQ_INT(v.expire_ms, 5000);
    kv_set(kv, "k", 1, "v3", 2, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK(v.expire_ms == KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_expires_count(kv), 0);
    kv_set(kv, "n", 1, "v", 1, KV_KEEP_TTL); /* new key: no deadline */
    CHECK_EQ_INT(kv_get(kv, "n", 1, 0, &v), 0);
    CHECK(v.expire_ms == KV_NO_EXPIRE);
    kv_set(kv, "k", 1, "v4", 2, 7000);
    kv_set(kv, "k", 1, "v5", 2, 6000); /* a new deadline replaces the old */
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK_EQ_INT(v.expire_ms, 6000);
    CHECK_EQ_INT(kv_expires_count(kv), 1);

    CHECK_EQ_INT(kv_set_expire(kv, "k", 1, 9000, 0), 0);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK_EQ_INT(v.expire_ms, 9000);
    CHECK_EQ_INT(kv_set_expire(kv, "k", 1, KV_NO_EXPIRE, 0), 0);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 10000, &v), 0);
    CHECK(v.expire_ms == KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_expires_count(kv), 0);
    CHECK_EQ_INT(kv_set_expire(kv, "none", 4, 9000, 0), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(kv_expire_cycle(kv, INT64_MAX, 100, NULL, NULL), 0);
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

struct taken {
    uint64_t idx[8];
    size_t n;
};

static void taken_cb(void *arg, const char *key, size_t klen)
{
    struct taken *t = arg;
    char tmp[KEY_LEN + 1];
    TRIAD_ASSERT(klen == KEY_LEN && t->n < TRIAD_ARRAY_LEN(t->idx));
    memcpy(tmp, key, KEY_LEN);
    tmp[KEY_LEN] = 0;
    t->idx[t->n++] = strtoull(tmp + 4, NULL, 10);
}

/* A model of up to M keys driven by random operations; after every one the
 * heap must be ordered with positions in sync (kv__check) and the kv must
 * agree with the model, including which keys the expiry cycle takes. */
TEST(kv_expiry_heap_stays_valid_through_random_operations)
{
    enum { M = 300, OPS = 30000 };
    static int64_t model_exp[M];
    static bool model_live[M];
    memset(model_live, 0, sizeof(model_live));
    struct kv *kv = kv_new(5);
    uint64_t rng = 12345;
    int64_t now = 1000;
    int bad = 0;
    for (int op = 0; op < OPS; op++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t r = rng >> 33;
        uint64_t i = r % M;
        int64_t dl = now + (int64_t)((r >> 9) % 200) - 20; /* some already past */
        /* lazy expiry of key i as the model sees it */
        bool live = model_live[i] && !(model_exp[i] != KV_NO_EXPIRE && model_exp[i] <= now);
        switch ((r >> 20) % 8) {
        case 0: /* set with a deadline */
            set_i(kv, i, dl);
            model_live[i] = true;
            model_exp[i] = dl;
            break;
        case 1: /* set without */
            set_i(kv, i, KV_NO_EXPIRE);
            model_live[i] = true;
            model_exp[i] = KV_NO_EXPIRE;
            break;
        case 2: /* set keeping the deadline (of a possibly expired key) */
            set_i(kv, i, KV_KEEP_TTL);
            if (!model_live[i])
                model_exp[i] = KV_NO_EXPIRE;
            model_live[i] = true;
            break;
        case 3:
            bad += (del_i(kv, i, now) == 0) != live;
            model_live[i] = false;
            break;
        case 4: {
            char k[KEY_LEN];
            key_of(i, k);
            int64_t e = (r & 1) ? dl : KV_NO_EXPIRE;
            bad += (kv_set_expire(kv, k, KEY_LEN, e, now) == 0) != live;
            if (live)
                model_exp[i] = e;
            else
                model_live[i] = false;
            break;
        }
        case 5:
            bad += has_i(kv, i, now) != live;
            if (!live)
                model_live[i] = false;
            break;
        case 6: { /* active expiry of a few keys: the earliest due ones */
            struct taken t = {.n = 0};
            size_t due = 0;
            for (uint64_t j = 0; j < M; j++)
                due += model_live[j] && model_exp[j] != KV_NO_EXPIRE && model_exp[j] <= now;
            size_t n = kv_expire_cycle(kv, now, 3, taken_cb, &t);
            bad += n != TRIAD_MIN(due, (size_t)3) || t.n != n;
            int64_t latest_taken = INT64_MIN;
            for (size_t x = 0; x < t.n; x++) {
                uint64_t j = t.idx[x];
                bad += !model_live[j] || model_exp[j] == KV_NO_EXPIRE || model_exp[j] > now;
                bad += model_exp[j] < latest_taken; /* earliest first */
                latest_taken = TRIAD_MAX(latest_taken, model_exp[j]);
                model_live[j] = false;
            }
            /* nothing left behind was due earlier than what was taken */
            for (uint64_t j = 0; j < M; j++) {
                if (model_live[j] && model_exp[j] != KV_NO_EXPIRE && model_exp[j] <= now)
                    bad += model_exp[j] < latest_taken;
            }
            break;
        }
        default:
            now += (int64_t)(r % 7);
            break;
        }
        if (op % 50 == 0 || op == OPS - 1) {
            if (kv__check(kv) != 0)
                bad++;
            size_t live_n = 0, exp_n = 0;
            for (uint64_t j = 0; j < M; j++) {
                live_n += model_live[j];
                exp_n += model_live[j] && model_exp[j] != KV_NO_EXPIRE;
            }
            bad += kv_count(kv) != live_n;
            bad += kv_expires_count(kv) != exp_n;
        }
    }
    CHECK_EQ_INT(bad, 0);
    /* finally the cycle takes exactly the due keys */
    size_t due = 0;
    for (uint64_t j = 0; j < M; j++)
        due += model_live[j] && model_exp[j] != KV_NO_EXPIRE && model_exp[j] <= now;
    CHECK_EQ_INT(kv_expire_cycle(kv, now, SIZE_MAX, NULL, NULL), due);
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

TEST(kv_resize_value_grows_shrinks_and_zero_fills)
{
    struct kv *kv = kv_new(6);
    struct kv_val v;
    char *p = kv_resize_value(kv, "k", 1, 5, 0); /* creates */
    CHECK(p != NULL);
    CHECK(memcmp(p, "\0\0\0\0\0", 5) == 0);
    memcpy(p, "hello", 5);
    p = kv_resize_value(kv, "k", 1, 8, 0);
    CHECK(memcmp(p, "hello\0\0\0", 8) == 0);
    p = kv_resize_value(kv, "k", 1, 2, 0);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK_MEM_STR(v.ptr, v.len, "he");
    /* bytes beyond a shrink come back as zeros, not as the old "llo" */
    p = kv_resize_value(kv, "k", 1, 6, 0);
    CHECK(memcmp(p, "he\0\0\0\0", 6) == 0);
    /* the deadline survives a resize */
    CHECK_EQ_INT(kv_set_expire(kv, "k", 1, 777, 0), 0);
    p = kv_resize_value(kv, "k", 1, 4000, 0);
    CHECK(memcmp(p, "he\0\0", 4) == 0 && p[3999] == 0);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK_EQ_INT(v.len, 4000);
    CHECK_EQ_INT(v.expire_ms, 777);
    p = kv_resize_value(kv, "k", 1, 0, 0);
    CHECK_EQ_INT(kv_get(kv, "k", 1, 0, &v), 0);
    CHECK_EQ_INT(v.len, 0);
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

TEST(kv_resize_value_makes_repeated_append_linear)
{
    enum { N = 200000 };
    struct kv *kv = kv_new(6);
    kv_set(kv, "log", 3, "", 0, KV_NO_EXPIRE);
    const char *prev = NULL;
    int moves = 0;
    for (size_t len = 1; len <= N; len++) {
        char *p = kv_resize_value(kv, "log", 3, len, 0);
        p[len - 1] = (char)('a' + len % 26);
        if (p != prev)
            moves++;
        prev = p;
    }
    /* doubling: about log2(N) reallocations (every one moves under ASan) */
    CHECK(moves <= 40);
    struct kv_val v;
    CHECK_EQ_INT(kv_get(kv, "log", 3, 0, &v), 0);
    CHECK_EQ_INT(v.len, N);
    int wrong = 0;
    for (size_t i = 0; i < N; i++)
        wrong += v.ptr[i] != (char)('a' + (i + 1) % 26);
    CHECK_EQ_INT(wrong, 0);
    /* a plain SET after a big APPEND gives the reserve back */
    size_t big = kv_mem_bytes(kv);
    kv_set(kv, "log", 3, "x", 1, KV_NO_EXPIRE);
    CHECK(kv_mem_bytes(kv) + N / 2 < big);
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

/* ---- SCAN ---- */

struct scan_seen {
    uint8_t *seen; /* count per key index */
    uint64_t n_max;
    size_t calls;
};

static void scan_cb(void *arg, const char *key, size_t klen)
{
    struct scan_seen *s = arg;
    TRIAD_ASSERT(klen == KEY_LEN);
    char tmp[KEY_LEN + 1];
    memcpy(tmp, key, KEY_LEN);
    tmp[KEY_LEN] = 0;
    uint64_t i = strtoull(tmp + 4, NULL, 10);
    TRIAD_ASSERT(i < s->n_max);
    if (s->seen[i] < 255)
        s->seen[i]++;
    s->calls++;
}

TEST(kv_scan_returns_every_key_present_throughout_while_the_table_grows)
{
    enum { STABLE = 2000, EXTRA = 200000 };
    struct kv *kv = kv_new(11);
    struct scan_seen s = {calloc(STABLE + EXTRA, 1), STABLE + EXTRA, 0};
    for (uint64_t i = 0; i < STABLE; i++)
        set_i(kv, i, KV_NO_EXPIRE);
    uint64_t cursor = 0, next_extra = STABLE;
    int rounds = 0;
    do {
        cursor = kv_scan(kv, cursor, 10, 0, scan_cb, &s);
        /* grow the table between calls, many times over */
        for (int j = 0; j < 1000 && next_extra < STABLE + EXTRA; j++)
            set_i(kv, next_extra++, KV_NO_EXPIRE);
        rounds++;
    } while (cursor != 0);
    int missed = 0;
    for (uint64_t i = 0; i < STABLE; i++)
        missed += s.seen[i] == 0;
    CHECK_EQ_INT(missed, 0);
    CHECK(rounds > 10);
    CHECK(next_extra > STABLE * 8); /* it did grow several times */
    free(s.seen);
    kv_free(kv);
}

TEST(kv_scan_returns_every_key_present_throughout_while_the_table_shrinks)
{
    enum { STABLE = 1000, EXTRA = 100000 };
    struct kv *kv = kv_new(12);
    struct scan_seen s = {calloc(STABLE + EXTRA, 1), STABLE + EXTRA, 0};
    for (uint64_t i = 0; i < STABLE + EXTRA; i++)
        set_i(kv, i, KV_NO_EXPIRE);
    settle(kv);
    uint64_t cursor = 0, next_del = STABLE;
    do {
        cursor = kv_scan(kv, cursor, 20, 0, scan_cb, &s);
        for (int j = 0; j < 2000 && next_del < STABLE + EXTRA; j++)
            CHECK_EQ_INT(del_i(kv, next_del++, 0), 0);
    } while (cursor != 0);
    int missed = 0;
    for (uint64_t i = 0; i < STABLE; i++)
        missed += s.seen[i] == 0;
    CHECK_EQ_INT(missed, 0);
    CHECK_EQ_INT(next_del, STABLE + EXTRA); /* it shrank all the way down */
    free(s.seen);
    kv_free(kv);
}

TEST(kv_scan_of_a_quiet_table_returns_each_key_once_and_skips_expired_ones)
{
    enum { N = 5000 };
    struct kv *kv = kv_new(13);
    struct scan_seen s = {calloc(N, 1), N, 0};
    /* stop with a rehash in progress: both tables are scanned */
    uint64_t n = 0;
    while (n < N / 2 || !rehashing(kv)) {
        set_i(kv, n, n % 5 == 0 ? 100 : KV_NO_EXPIRE);
        n++;
    }
    uint64_t cursor = 0;
    int calls = 0, over = 0;
    do {
        size_t before = s.calls;
        cursor = kv_scan(kv, cursor, 50, 200, scan_cb, &s);
        /* about count keys a call (a bucket's chain can overshoot a bit) */
        over += s.calls - before > 60;
        calls++;
    } while (cursor != 0);
    CHECK_EQ_INT(over, 0);
    CHECK(calls >= (int)(n * 4 / 5 / 60));
    int wrong = 0;
    for (uint64_t i = 0; i < n; i++)
        wrong += s.seen[i] != (i % 5 == 0 ? 0 : 1);
    CHECK_EQ_INT(wrong, 0);
    CHECK_EQ_INT(kv_count(kv), n); /* skipped, not deleted */
    free(s.seen);
    kv_free(kv);
}

TEST(kv_scan_finishes_during_a_rehash_with_each_key_at_least_once)
{
    struct kv *kv = kv_new(14);
    uint64_t n = 0;
    while (n < 3000 || !rehashing(kv))
        set_i(kv, n++, KV_NO_EXPIRE);
    struct scan_seen s = {calloc(n, 1), n, 0};
    uint64_t cursor = 0;
    do
        cursor = kv_scan(kv, cursor, 7, 0, scan_cb, &s);
    while (cursor != 0);
    CHECK(rehashing(kv)); /* scan did not move buckets */
    int missed = 0;
    for (uint64_t i = 0; i < n; i++)
        missed += s.seen[i] == 0;
    CHECK_EQ_INT(missed, 0);
    free(s.seen);
    kv_free(kv);
}

/* ---- RANDOMKEY ---- */

TEST(kv_random_key_handles_empty_single_and_expired_only_tables)
{
    struct kv *kv = kv_new(15);
    const char *k;
    size_t kl;
    CHECK_EQ_INT(kv_random_key(kv, 0, &k, &kl), TRIAD_ENOTFOUND);
    kv_set(kv, "only", 4, "v", 1, KV_NO_EXPIRE);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ_INT(kv_random_key(kv, 0, &k, &kl), 0);
        CHECK_MEM_STR(k, kl, "only");
    }
    CHECK_EQ_INT(kv_del(kv, "only", 4, 0), 0);
    for (uint64_t i = 0; i < 1000; i++)
        set_i(kv, i, 100);
    CHECK_EQ_INT(kv_random_key(kv, 100, &k, &kl), TRIAD_ENOTFOUND);
    CHECK_EQ_INT(kv_random_key(kv, 99, &k, &kl), 0);
    /* one live key among a thousand expired: found via the fallback walk */
    kv_set(kv, "live", 4, "v", 1, KV_NO_EXPIRE);
    for (int i = 0; i < 20; i++) {
        CHECK_EQ_INT(kv_random_key(kv, 100, &k, &kl), 0);
        CHECK_MEM_STR(k, kl, "live");
    }
    CHECK_EQ_INT(kv_count(kv), 1001); /* skipped, not deleted */
    kv_free(kv);
}

TEST(kv_random_key_reaches_every_key_including_mid_rehash)
{
    struct kv *kv = kv_new(16);
    uint64_t n = 0;
    while (n < 100 || !rehashing(kv))
        set_i(kv, n++, KV_NO_EXPIRE);
    struct scan_seen s = {calloc(n, 1), n, 0};
    int errors = 0;
    for (int i = 0; i < 20000; i++) {
        const char *k;
        size_t kl;
        if (kv_random_key(kv, 0, &k, &kl) != 0) {
            errors++;
            continue;
        }
        scan_cb(&s, k, kl);
    }
    CHECK_EQ_INT(errors, 0);
    int never = 0;
    for (uint64_t i = 0; i < n; i++)
        never += s.seen[i] == 0;
    CHECK_EQ_INT(never, 0);
    free(s.seen);
    kv_free(kv);
}

/* ---- iteration, clear, memory ---- */

struct fe_state {
    uint8_t *seen;
    uint64_t n_max;
    size_t visited;
    size_t with_deadline;
    size_t stop_after;
};

static int foreach_cb(void *arg, const char *key, size_t klen, const char *val, size_t vlen,
                      int64_t expire_ms)
{
    struct fe_state *st = arg;
    char tmp[KEY_LEN + 1];
    TRIAD_ASSERT(klen == KEY_LEN && vlen == KEY_LEN);
    memcpy(tmp, key, KEY_LEN);
    tmp[KEY_LEN] = 0;
    uint64_t i = strtoull(tmp + 4, NULL, 10);
    char want[KEY_LEN];
    key_of(i * 7 + 3, want);
    TRIAD_ASSERT(memcmp(val, want, KEY_LEN) == 0);
    st->seen[i]++;
    st->visited++;
    st->with_deadline += expire_ms != KV_NO_EXPIRE;
    if (st->stop_after && st->visited == st->stop_after)
        return 99;
    return 0;
}

TEST(kv_foreach_visits_every_entry_once_in_both_tables_and_stops_early)
{
    struct kv *kv = kv_new(17);
    uint64_t n = 0;
    while (n < 1000 || !rehashing(kv)) {
        set_i(kv, n, n % 3 == 0 ? 5 : KV_NO_EXPIRE);
        n++;
    }
    struct fe_state st = {calloc(n, 1), n, 0, 0, 0};
    CHECK_EQ_INT(kv_foreach(kv, foreach_cb, &st), 0);
    CHECK_EQ_INT(st.visited, n);
    CHECK_EQ_INT(st.with_deadline, (n + 2) / 3); /* expired ones included */
    int not_once = 0;
    for (uint64_t i = 0; i < n; i++)
        not_once += st.seen[i] != 1;
    CHECK_EQ_INT(not_once, 0);
    struct fe_state st2 = {st.seen, n, 0, 0, 10};
    CHECK_EQ_INT(kv_foreach(kv, foreach_cb, &st2), 99);
    CHECK_EQ_INT(st2.visited, 10);
    free(st.seen);
    kv_free(kv);
}

TEST(kv_clear_empties_the_keyspace_and_returns_its_memory)
{
    struct kv *kv = kv_new(18);
    size_t mem_empty = kv_mem_bytes(kv);
    for (uint64_t i = 0; i < 20000; i++)
        set_i(kv, i, i % 2 ? 1000 : KV_NO_EXPIRE);
    CHECK(kv_mem_bytes(kv) > mem_empty + 20000 * 32);
    kv_clear(kv);
    CHECK_EQ_INT(kv_count(kv), 0);
    CHECK_EQ_INT(kv_expires_count(kv), 0);
    CHECK_EQ_INT(kv_mem_bytes(kv), mem_empty);
    CHECK(!has_i(kv, 5, 0));
    CHECK_EQ_INT(kv_expire_cycle(kv, INT64_MAX, 100, NULL, NULL), 0);
    set_i(kv, 5, KV_NO_EXPIRE);
    CHECK(has_i(kv, 5, 0));
    CHECK_EQ_INT(kv__check(kv), 0);
    kv_free(kv);
}

TEST(kv_mem_bytes_matches_the_allocator_and_returns_to_baseline)
{
    size_t before = tmem_used();
    struct kv *kv = kv_new(19);
    size_t base = tmem_used();
    CHECK_EQ_INT(kv_mem_bytes(kv), base - before);
    for (uint64_t i = 0; i < 50000; i++)
        set_i(kv, i, i % 3 == 0 ? 1000 + (int64_t)i : KV_NO_EXPIRE);
    char *p = kv_resize_value(kv, "blob", 4, 100000, 0);
    p[5] = 1;
    CHECK_EQ_INT(kv_mem_bytes(kv), tmem_used() - before);
    for (uint64_t i = 0; i < 50000; i += 2)
        CHECK_EQ_INT(del_i(kv, i, 0), 0);
    kv_expire_cycle(kv, INT64_MAX, SIZE_MAX, NULL, NULL);
    CHECK_EQ_INT(kv_mem_bytes(kv), tmem_used() - before);
    for (uint64_t i = 1; i < 50000; i += 2)
        del_i(kv, i, 0);
    CHECK_EQ_INT(kv_del(kv, "blob", 4, 0), 0);
    CHECK_EQ_INT(kv_count(kv), 0);
    settle(kv);
    CHECK_EQ_INT(tmem_used(), base);
    CHECK_EQ_INT(kv_mem_bytes(kv), base - before);
    kv_free(kv);
    CHECK_EQ_INT(tmem_used(), before);
}

TEST(kv_hash_seed_changes_table_order_not_contents)
{
    struct kv *a = kv_new(1), *b = kv_new(2);
    for (uint64_t i = 0; i < 100; i++) {
        set_i(a, i, KV_NO_EXPIRE);
        set_i(b, i, KV_NO_EXPIRE);
    }
    struct collected ca = {.n = 0}, cb = {.n = 0};
    kv_scan(a, 0, 5, 0, collect_cb, &ca);
    kv_scan(b, 0, 5, 0, collect_cb, &cb);
    CHECK(ca.n > 0 && cb.n > 0);
    CHECK(ca.n != cb.n || memcmp(ca.keys, cb.keys, ca.n * KEY_LEN) != 0);
    int missing = 0;
    for (uint64_t i = 0; i < 100; i++)
        missing += !has_i(a, i, 0) + !has_i(b, i, 0);
    CHECK_EQ_INT(missing, 0);
    kv_free(a);
    kv_free(b);
}

TEST(kv_avg_ttl_is_the_exact_mean_time_left)
{
    struct kv *kv = kv_new(7);
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 1000), 0);
    kv_set(kv, "a", 1, "1", 1, 2000);
    kv_set(kv, "b", 1, "1", 1, 4000);
    kv_set(kv, "c", 1, "1", 1, KV_NO_EXPIRE);
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 1000), 2000); /* (1000 + 3000) / 2 */
    CHECK_EQ_INT(kv_set_expire(kv, "a", 1, 6000, 1000), 0);
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 1000), 4000);
    CHECK_EQ_INT(kv_set_expire(kv, "b", 1, KV_NO_EXPIRE, 1000), 0);
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 1000), 5000);
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 9000), 0); /* past: never negative */
    kv_set(kv, "a", 1, "2", 1, KV_NO_EXPIRE);   /* overwrite drops it */
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 1000), 0);
    kv_set(kv, "d", 1, "1", 1, 11000);
    kv_clear(kv);
    kv_set(kv, "e", 1, "1", 1, 3000);
    CHECK_EQ_INT(kv_avg_ttl_ms(kv, 1000), 2000);
    kv_free(kv);
}

TEST(kv_avoiding_resizes_grows_only_past_load_five_and_catches_up_after)
{
    struct kv *kv = kv_new(7);
    char key[32];
    for (int i = 0; i < 16; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        kv_set(kv, key, strlen(key), "v", 1, KV_NO_EXPIRE);
    }
    while (kv_rehash_step(kv, 100))
        ;
    size_t before = kv_buckets(kv);
    kv_set_resize_avoid(kv, true);
    /* up to five keys a bucket: no new table, no entry moved */
    int n = 16;
    for (; (size_t)(n + 1) < 5 * before; n++) {
        snprintf(key, sizeof(key), "k%d", n);
        kv_set(kv, key, strlen(key), "v", 1, KV_NO_EXPIRE);
    }
    CHECK_EQ_INT(kv_buckets(kv), before);
    CHECK(!kv_rehash_step(kv, 100));
    CHECK_EQ_INT(kv__check(kv), 0);
    /* past five it must grow after all, or lookups would crawl */
    for (int k = 0; k < 3; k++, n++) {
        snprintf(key, sizeof(key), "k%d", n);
        kv_set(kv, key, strlen(key), "v", 1, KV_NO_EXPIRE);
    }
    CHECK(kv_buckets(kv) > before);
    while (kv_rehash_step(kv, 100))
        ;
    CHECK_EQ_INT(kv__check(kv), 0);
    /* allowed again: it settles at a load factor of at most one */
    kv_set_resize_avoid(kv, false);
    while (kv_rehash_step(kv, 100))
        ;
    CHECK(kv_buckets(kv) >= kv_count(kv));
    CHECK_EQ_INT(kv__check(kv), 0);
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        CHECK(kv_exists(kv, key, strlen(key), 0));
    }
    kv_free(kv);
}

int main(void)
{
    RUN(kv_returns_what_was_set_and_forgets_what_was_deleted);
    RUN(kv_finds_every_one_of_a_million_keys_through_growth_and_shrinking);
    RUN(kv_serves_lookups_inserts_and_deletes_in_the_middle_of_a_rehash);
    RUN(kv_prefetch_changes_nothing_in_any_table_state);
    RUN(kv_rehash_step_finishes_a_resize_with_bounded_work_per_call);
    RUN(kv_treats_an_expired_key_as_absent_and_frees_it_lazily);
    RUN(kv_expire_cycle_deletes_earliest_first_and_at_most_max_keys);
    RUN(kv_set_drops_the_deadline_unless_keep_ttl_and_set_expire_can_clear_it);
    RUN(kv_expiry_heap_stays_valid_through_random_operations);
    RUN(kv_resize_value_grows_shrinks_and_zero_fills);
    RUN(kv_resize_value_makes_repeated_append_linear);
    RUN(kv_scan_returns_every_key_present_throughout_while_the_table_grows);
    RUN(kv_scan_returns_every_key_present_throughout_while_the_table_shrinks);
    RUN(kv_scan_of_a_quiet_table_returns_each_key_once_and_skips_expired_ones);
    RUN(kv_scan_finishes_during_a_rehash_with_each_key_at_least_once);
    RUN(kv_random_key_handles_empty_single_and_expired_only_tables);
    RUN(kv_random_key_reaches_every_key_including_mid_rehash);
    RUN(kv_foreach_visits_every_entry_once_in_both_tables_and_stops_early);
    RUN(kv_clear_empties_the_keyspace_and_returns_its_memory);
    RUN(kv_mem_bytes_matches_the_allocator_and_returns_to_baseline);
    RUN(kv_hash_seed_changes_table_order_not_contents);
    RUN(kv_avg_ttl_is_the_exact_mean_time_left);
    RUN(kv_avoiding_resizes_grows_only_past_load_five_and_catches_up_after);
    return test_summary("kv");
}
