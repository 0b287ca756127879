/* kv.h - the state machine: one keyspace (a Redis "database") of string
 * keys to string values, with per-key expiry.
 *
 * A chained hash table (xxhash) that resizes incrementally, as Redis's dict
 * does: while a resize is in progress every operation also moves a few
 * buckets, so no call ever pauses for time proportional to the table. An
 * expiry index (a binary min-heap of the keys that have a deadline) drives
 * the active expiry cycle exactly, without sampling.
 *
 * Pure code: no I/O, no clock (callers pass now_ms), no rand() (callers pass
 * a seed). Values are byte strings; the only type is "string".
 *
 * Ownership: kv copies every key and value it is given. Pointers it returns
 * (struct kv_val.ptr, keys passed to callbacks) are borrowed and valid until
 * the next call that modifies this kv.
 *
 * Expiry times are absolute Unix milliseconds; KV_NO_EXPIRE means none.
 * A key whose deadline is <= now_ms is logically absent: reads that pass
 * now_ms treat it as missing (and free it: lazy expiry).
 */
#ifndef TRIAD_KV_H
#define TRIAD_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KV_NO_EXPIRE INT64_MIN
#define KV_KEY_MAX_LEN (512u * 1024 * 1024)

struct kv;

struct kv_val {
    const char *ptr; /* borrowed, see above */
    size_t len;
    int64_t expire_ms; /* KV_NO_EXPIRE if none */
};

struct kv *kv_new(uint64_t seed);
void kv_free(struct kv *kv);

/* Look a key up. Returns 0 and fills *out, or TRIAD_ENOTFOUND (also when
 * the key has expired by now_ms; it is then deleted). */
int kv_get(struct kv *kv, const char *key, size_t klen, int64_t now_ms, struct kv_val *out);
bool kv_exists(struct kv *kv, const char *key, size_t klen, int64_t now_ms);

/* Cache warming for a batch of lookups to come (a pipeline): call
 * kv_prefetch_bucket for each key, then kv_prefetch_entry with each hash it
 * returned, then do the lookups. The first pass starts every bucket's
 * cache miss at once, the second every entry's, so a batch waits for about
 * two misses rather than two per key. Hints only: nothing changes. */
uint64_t kv_prefetch_bucket(const struct kv *kv, const char *key, size_t klen);
void kv_prefetch_entry(const struct kv *kv, uint64_t hash);

/* Insert or overwrite. expire_ms: an absolute deadline, KV_NO_EXPIRE, or
 * KV_KEEP_TTL to keep the existing key's deadline (none if the key is new).
 * A deadline already in the past is stored as given (the caller decides
 * whether to delete instead; replay of the WAL relies on storing it). */
#define KV_KEEP_TTL (INT64_MIN + 1)
void kv_set(struct kv *kv, const char *key, size_t klen, const void *val, size_t vlen,
            int64_t expire_ms);

/* Make the value of `key` exactly new_len bytes long, creating the key
 * (with no deadline) if it is absent or expired. Bytes [0, min(old,new)) keep
 * their value; bytes past the old length are zero. Returns a writable
 * pointer to the value, valid until the next modifying call; the caller
 * writes into it (APPEND, SETRANGE). Growth is amortised (the value may
 * reserve more than new_len), so repeated APPEND is linear overall. */
char *kv_resize_value(struct kv *kv, const char *key, size_t klen, size_t new_len, int64_t now_ms);

/* 0 if deleted, TRIAD_ENOTFOUND if absent (or expired). */
int kv_del(struct kv *kv, const char *key, size_t klen, int64_t now_ms);

/* Set (expire_ms >= 0) or clear (KV_NO_EXPIRE) a key's deadline.
 * 0 on success, TRIAD_ENOTFOUND if the key is absent or expired. */
int kv_set_expire(struct kv *kv, const char *key, size_t klen, int64_t expire_ms, int64_t now_ms);

/* Keys, and keys with a deadline (expired-but-not-yet-collected included). */
size_t kv_count(const struct kv *kv);
size_t kv_expires_count(const struct kv *kv);

/* Delete everything. */
void kv_clear(struct kv *kv);

/* Active expiry: delete up to max_keys keys whose deadline is <= now_ms,
 * earliest first, calling cb(key) for each before it is freed (cb may be
 * NULL). Returns how many were deleted. */
typedef void (*kv_key_cb)(void *arg, const char *key, size_t klen);
size_t kv_expire_cycle(struct kv *kv, int64_t now_ms, size_t max_keys, kv_key_cb cb, void *arg);

/* SCAN, with Redis's guarantee: a key present for the whole iteration is
 * returned at least once, even across resizes (reverse-binary cursor). Calls
 * cb for the keys of about `count` buckets starting at `cursor` (expired keys
 * are skipped, not deleted) and returns the next cursor; 0 when done. */
uint64_t kv_scan(struct kv *kv, uint64_t cursor, size_t count, int64_t now_ms, kv_key_cb cb,
                 void *arg);

/* A random live key, chosen with the kv's own PRNG (seeded at kv_new).
 * Returns 0 and sets *key and *klen (borrowed), or TRIAD_ENOTFOUND if empty. */
int kv_random_key(struct kv *kv, int64_t now_ms, const char **key, size_t *klen);

/* Full iteration in table order, for snapshots and KEYS: calls cb for every
 * entry (expired ones included; the caller filters). cb must not modify the
 * kv. Stops early and returns cb's value if cb returns non-zero. */
typedef int (*kv_entry_cb)(void *arg, const char *key, size_t klen, const char *val,
                           size_t vlen, int64_t expire_ms);
int kv_foreach(const struct kv *kv, kv_entry_cb cb, void *arg);

/* The mean time left, in ms, until the deadlines of the keys that have
 * one (exact, where Redis samples); 0 if there are none or the mean is
 * already past. INFO keyspace's avg_ttl. */
int64_t kv_avg_ttl_ms(const struct kv *kv, int64_t now_ms);

/* Bytes this kv holds (entries, tables, expiry index), as allocated. */
size_t kv_mem_bytes(const struct kv *kv);

/* While a forked child shares this memory (a background snapshot), moving
 * entries between tables would copy nearly every page: with avoid set, the
 * table neither starts a resize (unless its load factor passes 5, as
 * Redis's) nor moves entries of one in progress; clearing it catches up. */
void kv_set_resize_avoid(struct kv *kv, bool avoid);
/* Buckets of the table(s) now (both while a resize is in progress). */
size_t kv_buckets(const struct kv *kv);

/* Do up to `steps` buckets of pending incremental rehash work (called from
 * the server's cron so that an idle table also finishes resizing).
 * Returns true if a rehash is still in progress. */
bool kv_rehash_step(struct kv *kv, int steps);

#endif
