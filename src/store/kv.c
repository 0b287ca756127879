/* kv.c - the keyspace: an incrementally rehashed chained hash table plus a
 * min-heap of deadlines. See kv.h for the contract.
 *
 * Memory layout. Each key is ONE allocation: a 24-byte header, the key
 * bytes, then the value bytes (with room for vcap of them). A 16-byte key
 * with a 16-byte value asks malloc for 56 bytes (a 64-byte glibc chunk),
 * plus 8-16 bytes of bucket pointer depending on the load factor.
 *
 * Deadlines live only in the expiry heap: a heap slot is {deadline, entry},
 * and an entry with a deadline records its slot index (heap_pos). Keys
 * without a deadline pay 4 bytes (the unused heap_pos) and nothing else;
 * heap comparisons read deadlines from the contiguous slot array instead of
 * chasing entry pointers; and setting or clearing a deadline never moves
 * the entry.
 *
 * Incremental rehash (as Redis's dict): while tab[1] exists, buckets of
 * tab[0] below rehash_idx are empty and their entries live in tab[1]. Every
 * lookup, insert and delete first moves one bucket (visiting at most
 * KV_REHASH_EMPTY_VISITS empty buckets), so no call costs time proportional
 * to the table. New keys go to tab[1]; lookups look in both.
 */
#include "kv.h"

#include <string.h>
#include <xxhash.h>

#include "../common/defs.h"
#include "../common/mem.h"

/* Smallest bucket array; a table never shrinks below it. */
#define KV_TABLE_SIZE_MIN 16u
/* Grow when keys >= buckets (load factor 1); shrink when keys < buckets/8. */
#define KV_SHRINK_RATIO 8u
/* While resizing is to be avoided (a forked snapshot shares the memory:
 * moving every entry would copy every page), grow only past this load
 * factor, as Redis does. */
#define KV_FORCE_GROW_RATIO 5u
/* Empty buckets a single rehash step may skip over, per bucket of work:
 * bounds the cost of a step in a sparse table being shrunk. */
#define KV_REHASH_EMPTY_VISITS 10
/* kv_random_key: random bucket probes before falling back to a linear walk
 * (reached only when almost every key is expired but not yet collected). */
#define KV_RANDOM_TRIES_MAX 100
/* kv_scan visits at most this many buckets per requested key, so a sparse
 * table cannot turn one SCAN call into a walk of the whole table. */
#define KV_SCAN_EMPTY_VISITS 10
/* Smallest heap array kept once allocated; an empty heap is freed. */
#define KV_HEAP_CAP_MIN 64u
#define KV_HEAP_NONE UINT32_MAX
#define KV_LEN_MAX UINT32_MAX

struct kv_entry {
    struct kv_entry *next;
    uint32_t klen;
    uint32_t vlen;
    uint32_t vcap;     /* value bytes reserved after the key */
    uint32_t heap_pos; /* index in kv->heap, or KV_HEAP_NONE: no deadline */
    char data[];       /* key (klen bytes), then value (vcap bytes) */
};

_Static_assert(sizeof(struct kv_entry) == 24, "kv_entry header is 24 bytes");

struct kv_table {
    struct kv_entry **buckets; /* NULL for tab[1] when not rehashing */
    size_t size;               /* a power of two, or 0 */
    size_t used;
};

struct kv_heap_slot {
    int64_t deadline_ms;
    struct kv_entry *e;
};

struct kv {
    struct kv_table tab[2];
    size_t rehash_idx; /* next tab[0] bucket to move; meaningful if tab[1].buckets */
    bool resize_avoid; /* kv_set_resize_avoid */
    bool forced;       /* this rehash was started past KV_FORCE_GROW_RATIO */
    struct kv_heap_slot *heap;
    size_t heap_len;
    size_t heap_cap;
    __int128 deadline_sum_ms; /* of every heap deadline: INFO keyspace's avg_ttl */
    uint64_t seed;     /* the hash seed */
    uint64_t rng;      /* splitmix64 state for kv_random_key */
    size_t mem_bytes;  /* allocated bytes of everything above, struct kv included */
};

/* ---- small helpers ---- */

static inline uint64_t kv__hash(const struct kv *kv, const char *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, kv->seed);
}

static inline char *kv__key(struct kv_entry *e)
{
    return e->data;
}

static inline char *kv__val(struct kv_entry *e)
{
    return e->data + e->klen;
}

static inline bool kv__rehashing(const struct kv *kv)
{
    return kv->tab[1].buckets != NULL;
}

static uint64_t kv__rand(struct kv *kv)
{
    uint64_t z = (kv->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t kv__pow2_at_least(size_t n)
{
    size_t s = KV_TABLE_SIZE_MIN;
    while (s < n) {
        TRIAD_ASSERT(s <= SIZE_MAX / 2);
        s *= 2;
    }
    return s;
}

static void *kv__alloc(struct kv *kv, size_t size)
{
    void *p = tmalloc(size);
    kv->mem_bytes += tmalloc_size(p);
    return p;
}

static void *kv__calloc(struct kv *kv, size_t n, size_t size)
{
    void *p = tcalloc(n, size);
    kv->mem_bytes += tmalloc_size(p);
    return p;
}

static void *kv__realloc(struct kv *kv, void *p, size_t size)
{
    size_t old = tmalloc_size(p);
    p = trealloc(p, size);
    TRIAD_ASSERT(kv->mem_bytes >= old);
    kv->mem_bytes = kv->mem_bytes - old + tmalloc_size(p);
    return p;
}

static void kv__free_mem(struct kv *kv, void *p)
{
    size_t sz = tmalloc_size(p);
    TRIAD_ASSERT(kv->mem_bytes >= sz);
    kv->mem_bytes -= sz;
    tfree(p);
}

/* The value capacity the allocator really gave us (its slack is free). */
static void kv__set_cap_from_alloc(struct kv_entry *e)
{
    size_t usable = tmalloc_size(e) - sizeof(*e) - e->klen;
    e->vcap = usable > KV_LEN_MAX ? KV_LEN_MAX : (uint32_t)usable;
}

/* ---- expiry heap: slots ordered by deadline_ms, heap_pos kept in sync ---- */

static inline void kv__heap_place(struct kv *kv, size_t pos, struct kv_heap_slot slot)
{
    kv->heap[pos] = slot;
    slot.e->heap_pos = (uint32_t)pos;
}

static void kv__heap_sift_up(struct kv *kv, size_t pos)
{
    struct kv_heap_slot slot = kv->heap[pos];
    while (pos > 0) {
        size_t parent = (pos - 1) / 2;
        if (kv->heap[parent].deadline_ms <= slot.deadline_ms)
            break;
        kv__heap_place(kv, pos, kv->heap[parent]);
        pos = parent;
    }
    kv__heap_place(kv, pos, slot);
}

static void kv__heap_sift_down(struct kv *kv, size_t pos)
{
    struct kv_heap_slot slot = kv->heap[pos];
    size_t n = kv->heap_len;
    for (;;) {
        size_t child = 2 * pos + 1;
        if (child >= n)
            break;
        if (child + 1 < n && kv->heap[child + 1].deadline_ms < kv->heap[child].deadline_ms)
            child++;
        if (slot.deadline_ms <= kv->heap[child].deadline_ms)
            break;
        kv__heap_place(kv, pos, kv->heap[child]);
        pos = child;
    }
    kv__heap_place(kv, pos, slot);
}

static void kv__heap_push(struct kv *kv, struct kv_entry *e, int64_t deadline_ms)
{
    TRIAD_ASSERT(e->heap_pos == KV_HEAP_NONE);
    if (kv->heap_len == kv->heap_cap) {
        size_t cap = kv->heap_cap ? kv->heap_cap * 2 : KV_HEAP_CAP_MIN;
        TRIAD_ASSERT(cap < KV_HEAP_NONE); /* positions fit in heap_pos */
        if (kv->heap == NULL)
            kv->heap = kv__alloc(kv, cap * sizeof(*kv->heap));
        else
            kv->heap = kv__realloc(kv, kv->heap, cap * sizeof(*kv->heap));
        kv->heap_cap = cap;
    }
    size_t pos = kv->heap_len++;
    kv->deadline_sum_ms += deadline_ms;
    kv__heap_place(kv, pos, (struct kv_heap_slot){deadline_ms, e});
    kv__heap_sift_up(kv, pos);
}

static void kv__heap_remove(struct kv *kv, struct kv_entry *e)
{
    size_t pos = e->heap_pos;
    TRIAD_ASSERT(pos < kv->heap_len);
    TRIAD_ASSERT(kv->heap[pos].e == e);
    e->heap_pos = KV_HEAP_NONE;
    kv->deadline_sum_ms -= kv->heap[pos].deadline_ms;
    size_t last = --kv->heap_len;
    if (pos != last) {
        int64_t old_ms = kv->heap[pos].deadline_ms;
        kv__heap_place(kv, pos, kv->heap[last]);
        if (kv->heap[pos].deadline_ms < old_ms)
            kv__heap_sift_up(kv, pos);
        else
            kv__heap_sift_down(kv, pos);
    }
    /* Give memory back as the heap empties, so that deleting every key
     * returns kv_mem_bytes to where it started. */
    if (kv->heap_len == 0) {
        kv__free_mem(kv, kv->heap);
        kv->heap = NULL;
        kv->heap_cap = 0;
    } else if (kv->heap_cap > KV_HEAP_CAP_MIN && kv->heap_len < kv->heap_cap / 4) {
        kv->heap_cap /= 2;
        kv->heap = kv__realloc(kv, kv->heap, kv->heap_cap * sizeof(*kv->heap));
    }
}

static void kv__heap_update(struct kv *kv, struct kv_entry *e, int64_t deadline_ms)
{
    size_t pos = e->heap_pos;
    TRIAD_ASSERT(pos < kv->heap_len);
    int64_t old_ms = kv->heap[pos].deadline_ms;
    kv->deadline_sum_ms += (__int128)deadline_ms - old_ms;
    kv->heap[pos].deadline_ms = deadline_ms;
    if (deadline_ms < old_ms)
        kv__heap_sift_up(kv, pos);
    else
        kv__heap_sift_down(kv, pos);
}

/* Set, change or clear (KV_NO_EXPIRE) e's deadline. */
static void kv__set_deadline(struct kv *kv, struct kv_entry *e, int64_t expire_ms)
{
    if (expire_ms == KV_NO_EXPIRE) {
        if (e->heap_pos != KV_HEAP_NONE)
            kv__heap_remove(kv, e);
    } else if (e->heap_pos == KV_HEAP_NONE) {
        kv__heap_push(kv, e, expire_ms);
    } else {
        kv__heap_update(kv, e, expire_ms);
    }
}

static inline int64_t kv__deadline(const struct kv *kv, const struct kv_entry *e)
{
    return e->heap_pos == KV_HEAP_NONE ? KV_NO_EXPIRE : kv->heap[e->heap_pos].deadline_ms;
}

static inline bool kv__expired(const struct kv *kv, const struct kv_entry *e, int64_t now_ms)
{
    return e->heap_pos != KV_HEAP_NONE && kv->heap[e->heap_pos].deadline_ms <= now_ms;
}

/* ---- tables and incremental rehash ---- */

static void kv__table_init(struct kv *kv, struct kv_table *t, size_t size)
{
    TRIAD_ASSERT((size & (size - 1)) == 0);
    t->buckets = kv__calloc(kv, size, sizeof(*t->buckets));
    t->size = size;
    t->used = 0;
}

static void kv__table_release(struct kv *kv, struct kv_table *t)
{
    if (t->buckets != NULL)
        kv__free_mem(kv, t->buckets);
    t->buckets = NULL;
    t->size = 0;
    t->used = 0;
}

static void kv__maybe_resize(struct kv *kv)
{
    if (kv__rehashing(kv))
        return;
    struct kv_table *t = &kv->tab[0];
    size_t target;
    kv->forced = false;
    if (kv->resize_avoid) {
        if (t->size == 0 || t->used / t->size < KV_FORCE_GROW_RATIO)
            return;
        kv->forced = true;
    }
    if (t->used >= t->size) {
        TRIAD_ASSERT(t->size <= SIZE_MAX / 2);
        target = t->size * 2;
    } else if (t->size > KV_TABLE_SIZE_MIN && t->used < t->size / KV_SHRINK_RATIO) {
        /* Land at a load factor of 1/4..1/2: far from both thresholds, so a
         * table at the edge does not flap between sizes. */
        target = kv__pow2_at_least(t->used * 2);
    } else {
        return;
    }
    if (target == t->size)
        return;
    kv__table_init(kv, &kv->tab[1], target);
    kv->rehash_idx = 0;
}

/* Move up to `buckets` non-empty buckets of tab[0] into tab[1]. Returns true
 * if the rehash is still in progress afterwards. */
static bool kv__rehash(struct kv *kv, size_t buckets)
{
    if (!kv__rehashing(kv))
        return false;
    struct kv_table *from = &kv->tab[0], *to = &kv->tab[1];
    size_t empty_visits = buckets * KV_REHASH_EMPTY_VISITS;
    uint64_t mask = to->size - 1;
    while (buckets-- > 0 && from->used > 0) {
        TRIAD_ASSERT(kv->rehash_idx < from->size);
        while (from->buckets[kv->rehash_idx] == NULL) {
            kv->rehash_idx++;
            if (--empty_visits == 0)
                return true;
        }
        struct kv_entry *e = from->buckets[kv->rehash_idx];
        while (e != NULL) {
            struct kv_entry *next = e->next;
            size_t b = kv__hash(kv, kv__key(e), e->klen) & mask;
            e->next = to->buckets[b];
            to->buckets[b] = e;
            from->used--;
            to->used++;
            e = next;
        }
        from->buckets[kv->rehash_idx++] = NULL;
    }
    if (from->used > 0)
        return true;
    kv__table_release(kv, from);
    kv->tab[0] = kv->tab[1];
    kv->tab[1] = (struct kv_table){NULL, 0, 0};
    kv->rehash_idx = 0;
    /* A table that grew or shrank a lot while this rehash ran may already
     * need the next resize; an idle table settles via kv_rehash_step. */
    kv__maybe_resize(kv);
    return kv__rehashing(kv);
}

static inline void kv__rehash_tick(struct kv *kv)
{
    if (TRIAD_UNLIKELY(kv__rehashing(kv)) &&
        (!kv->resize_avoid || kv->forced ||
         kv->tab[1].used / kv->tab[1].size >= KV_FORCE_GROW_RATIO))
        kv__rehash(kv, 1);
}

struct kv_found {
    struct kv_entry *e;     /* NULL if absent */
    struct kv_entry **link; /* the pointer that points at e */
    struct kv_table *t;     /* the table holding e */
};

static inline bool kv__key_eq(struct kv_entry *e, const char *key, size_t klen)
{
    return e->klen == klen && memcmp(kv__key(e), key, klen) == 0;
}

static struct kv_found kv__find(struct kv *kv, const char *key, size_t klen, uint64_t h)
{
    struct kv_found f = {NULL, NULL, NULL};
    for (int i = 0; i < 2; i++) {
        struct kv_table *t = &kv->tab[i];
        if (t->buckets == NULL)
            break;
        size_t b = h & (t->size - 1);
        /* tab[0]'s buckets below rehash_idx have already moved */
        if (i == 0 && kv__rehashing(kv) && b < kv->rehash_idx)
            continue;
        for (struct kv_entry **link = &t->buckets[b]; *link != NULL; link = &(*link)->next) {
            if (kv__key_eq(*link, key, klen)) {
                f.e = *link;
                f.link = link;
                f.t = t;
                return f;
            }
        }
    }
    return f;
}

/* Find the link pointing at e (which must be in the table). */
static struct kv_found kv__find_entry(struct kv *kv, struct kv_entry *e)
{
    uint64_t h = kv__hash(kv, kv__key(e), e->klen);
    for (int i = 0; i < 2; i++) {
        struct kv_table *t = &kv->tab[i];
        if (t->buckets == NULL)
            break;
        for (struct kv_entry **link = &t->buckets[h & (t->size - 1)]; *link != NULL;
             link = &(*link)->next) {
            if (*link == e)
                return (struct kv_found){e, link, t};
        }
    }
    TRIAD_ASSERT(!"kv entry not in its table");
    return (struct kv_found){NULL, NULL, NULL};
}

/* Unlink and free f.e. Does not resize: callers call kv__maybe_resize. */
static void kv__delete_found(struct kv *kv, struct kv_found f)
{
    TRIAD_ASSERT(f.e != NULL);
    TRIAD_ASSERT(f.t->used > 0);
    *f.link = f.e->next;
    f.t->used--;
    if (f.e->heap_pos != KV_HEAP_NONE)
        kv__heap_remove(kv, f.e);
    kv__free_mem(kv, f.e);
}

/* Look key up, deleting it if it has expired by now_ms. */
static struct kv_found kv__find_live(struct kv *kv, const char *key, size_t klen, uint64_t h,
                                     int64_t now_ms)
{
    struct kv_found f = kv__find(kv, key, klen, h);
    if (f.e != NULL && kv__expired(kv, f.e, now_ms)) {
        kv__delete_found(kv, f);
        kv__maybe_resize(kv);
        f = (struct kv_found){NULL, NULL, NULL};
    }
    return f;
}

/* Realloc f->e to hold a value of vcap bytes and relink it (the chain and
 * the heap slot point at the old address). */
static void kv__realloc_entry(struct kv *kv, struct kv_found *f, size_t vcap)
{
    struct kv_entry *e = kv__realloc(kv, f->e, sizeof(*e) + f->e->klen + vcap);
    *f->link = e;
    if (e->heap_pos != KV_HEAP_NONE)
        kv->heap[e->heap_pos].e = e;
    kv__set_cap_from_alloc(e);
    f->e = e;
}

/* Create a new entry for key with room for vlen value bytes (vlen set). */
static struct kv_entry *kv__insert_new(struct kv *kv, const char *key, size_t klen, uint64_t h,
                                       size_t vlen)
{
    kv__maybe_resize(kv);
    struct kv_entry *e = kv__alloc(kv, sizeof(*e) + klen + vlen);
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->heap_pos = KV_HEAP_NONE;
    kv__set_cap_from_alloc(e);
    memcpy(kv__key(e), key, klen);
    /* During a rehash new keys go to the new table, so tab[0] only empties. */
    struct kv_table *t = &kv->tab[kv__rehashing(kv) ? 1 : 0];
    size_t b = h & (t->size - 1);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->used++;
    return e;
}

/* ---- public API ---- */

struct kv *kv_new(uint64_t seed)
{
    struct kv *kv = tcalloc(1, sizeof(*kv));
    kv->mem_bytes = tmalloc_size(kv);
    kv->seed = seed;
    kv->rng = seed ^ 0x6a09e667f3bcc909ull;
    kv__table_init(kv, &kv->tab[0], KV_TABLE_SIZE_MIN);
    return kv;
}

static void kv__free_entries(struct kv *kv)
{
    for (int i = 0; i < 2; i++) {
        struct kv_table *t = &kv->tab[i];
        for (size_t b = 0; t->buckets != NULL && b < t->size; b++) {
            struct kv_entry *e = t->buckets[b];
            while (e != NULL) {
                struct kv_entry *next = e->next;
                kv__free_mem(kv, e);
                e = next;
            }
        }
        kv__table_release(kv, t);
    }
    if (kv->heap != NULL)
        kv__free_mem(kv, kv->heap);
    kv->heap = NULL;
    kv->heap_len = 0;
    kv->heap_cap = 0;
    kv->deadline_sum_ms = 0;
    kv->rehash_idx = 0;
}

int64_t kv_avg_ttl_ms(const struct kv *kv, int64_t now_ms)
{
    if (kv->heap_len == 0)
        return 0;
    __int128 avg = kv->deadline_sum_ms / (__int128)kv->heap_len - now_ms;
    return avg > 0 ? (int64_t)avg : 0;
}

void kv_free(struct kv *kv)
{
    if (kv == NULL)
        return;
    kv__free_entries(kv);
    TRIAD_ASSERT(kv->mem_bytes == tmalloc_size(kv));
    tfree(kv);
}

void kv_clear(struct kv *kv)
{
    kv__free_entries(kv);
    kv__table_init(kv, &kv->tab[0], KV_TABLE_SIZE_MIN);
}

int kv_get(struct kv *kv, const char *key, size_t klen, int64_t now_ms, struct kv_val *out)
{
    uint64_t h = kv__hash(kv, key, klen);
    kv__rehash_tick(kv);
    struct kv_found f = kv__find_live(kv, key, klen, h, now_ms);
    if (f.e == NULL)
        return TRIAD_ENOTFOUND;
    out->ptr = kv__val(f.e);
    out->len = f.e->vlen;
    out->expire_ms = kv__deadline(kv, f.e);
    return 0;
}

bool kv_exists(struct kv *kv, const char *key, size_t klen, int64_t now_ms)
{
    uint64_t h = kv__hash(kv, key, klen);
    kv__rehash_tick(kv);
    return kv__find_live(kv, key, klen, h, now_ms).e != NULL;
}

/* The table a lookup of hash h reads first (kv__find's order). */
static const struct kv_table *kv__table_of(const struct kv *kv, uint64_t h)
{
    const struct kv_table *t = &kv->tab[0];
    if (kv__rehashing(kv) && (h & (t->size - 1)) < kv->rehash_idx)
        t = &kv->tab[1];
    return t->buckets != NULL ? t : NULL;
}

uint64_t kv_prefetch_bucket(const struct kv *kv, const char *key, size_t klen)
{
    uint64_t h = kv__hash(kv, key, klen);
    const struct kv_table *t = kv__table_of(kv, h);
    if (t != NULL)
        __builtin_prefetch(&t->buckets[h & (t->size - 1)], 0, 3);
    return h;
}

void kv_prefetch_entry(const struct kv *kv, uint64_t hash)
{
    const struct kv_table *t = kv__table_of(kv, hash);
    if (t == NULL)
        return;
    const struct kv_entry *e = t->buckets[hash & (t->size - 1)];
    if (e != NULL)
        __builtin_prefetch(e, 0, 3);
}

void kv_set(struct kv *kv, const char *key, size_t klen, const void *val, size_t vlen,
            int64_t expire_ms)
{
    TRIAD_ASSERT(klen <= KV_KEY_MAX_LEN);
    TRIAD_ASSERT(vlen <= KV_LEN_MAX);
    uint64_t h = kv__hash(kv, key, klen);
    kv__rehash_tick(kv);
    /* No now_ms here: an expired key is simply overwritten, and with
     * KV_KEEP_TTL keeps its (past) deadline. A caller that wants Redis's
     * SET KEEPTTL on a logically expired key (no deadline) expires it first
     * with kv_exists(now_ms). */
    struct kv_found f = kv__find(kv, key, klen, h);
    struct kv_entry *e;
    bool val_in_place = false;
    if (f.e == NULL) {
        e = kv__insert_new(kv, key, klen, h, vlen);
        if (expire_ms != KV_KEEP_TTL)
            kv__set_deadline(kv, e, expire_ms);
    } else {
        /* val may be borrowed from this very value (a caller writing back
         * part of what kv_get returned): move it into place before any
         * realloc can free it. It then fits, so the realloc only shrinks. */
        uintptr_t cur = (uintptr_t)kv__val(f.e), src = (uintptr_t)val;
        if (vlen > 0 && src >= cur && src < cur + f.e->vcap) {
            memmove(kv__val(f.e), val, vlen);
            val_in_place = true;
        }
        /* Reuse the allocation unless it is too small or, after a big
         * APPEND, more than twice too large. */
        if (vlen > f.e->vcap || f.e->vcap / 2 > vlen + sizeof(struct kv_entry))
            kv__realloc_entry(kv, &f, vlen);
        e = f.e;
        e->vlen = (uint32_t)vlen;
        if (expire_ms != KV_KEEP_TTL)
            kv__set_deadline(kv, e, expire_ms);
    }
    if (vlen > 0 && !val_in_place)
        memcpy(kv__val(e), val, vlen);
}

char *kv_resize_value(struct kv *kv, const char *key, size_t klen, size_t new_len, int64_t now_ms)
{
    TRIAD_ASSERT(klen <= KV_KEY_MAX_LEN);
    TRIAD_ASSERT(new_len <= KV_LEN_MAX);
    uint64_t h = kv__hash(kv, key, klen);
    kv__rehash_tick(kv);
    struct kv_found f = kv__find_live(kv, key, klen, h, now_ms);
    if (f.e == NULL) {
        struct kv_entry *e = kv__insert_new(kv, key, klen, h, new_len);
        memset(kv__val(e), 0, new_len);
        return kv__val(e);
    }
    size_t old_len = f.e->vlen;
    if (new_len > f.e->vcap) {
        /* Doubling keeps a run of APPENDs linear overall. */
        size_t cap = (size_t)f.e->vcap * 2;
        if (cap > KV_LEN_MAX)
            cap = KV_LEN_MAX;
        kv__realloc_entry(kv, &f, TRIAD_MAX(cap, new_len));
    } else if (f.e->vcap > 4 * (new_len + sizeof(struct kv_entry))) {
        kv__realloc_entry(kv, &f, new_len); /* give back most of a shrunk value */
    }
    struct kv_entry *e = f.e;
    if (new_len > old_len)
        memset(kv__val(e) + old_len, 0, new_len - old_len);
    e->vlen = (uint32_t)new_len;
    return kv__val(e);
}

int kv_del(struct kv *kv, const char *key, size_t klen, int64_t now_ms)
{
    uint64_t h = kv__hash(kv, key, klen);
    kv__rehash_tick(kv);
    struct kv_found f = kv__find_live(kv, key, klen, h, now_ms);
    if (f.e == NULL)
        return TRIAD_ENOTFOUND;
    kv__delete_found(kv, f);
    kv__maybe_resize(kv);
    return 0;
}

int kv_set_expire(struct kv *kv, const char *key, size_t klen, int64_t expire_ms, int64_t now_ms)
{
    TRIAD_ASSERT(expire_ms != KV_KEEP_TTL);
    uint64_t h = kv__hash(kv, key, klen);
    kv__rehash_tick(kv);
    struct kv_found f = kv__find_live(kv, key, klen, h, now_ms);
    if (f.e == NULL)
        return TRIAD_ENOTFOUND;
    kv__set_deadline(kv, f.e, expire_ms);
    return 0;
}

size_t kv_count(const struct kv *kv)
{
    return kv->tab[0].used + kv->tab[1].used;
}

size_t kv_expires_count(const struct kv *kv)
{
    return kv->heap_len;
}

size_t kv_expire_cycle(struct kv *kv, int64_t now_ms, size_t max_keys, kv_key_cb cb, void *arg)
{
    size_t deleted = 0;
    while (deleted < max_keys && kv->heap_len > 0 && kv->heap[0].deadline_ms <= now_ms) {
        struct kv_entry *e = kv->heap[0].e;
        if (cb != NULL)
            cb(arg, kv__key(e), e->klen);
        kv__delete_found(kv, kv__find_entry(kv, e));
        deleted++;
    }
    if (deleted > 0)
        kv__maybe_resize(kv);
    return deleted;
}

/* ---- SCAN ---- */

static inline uint64_t kv__bit_reverse(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ull) | ((v & 0x5555555555555555ull) << 1);
    v = ((v >> 2) & 0x3333333333333333ull) | ((v & 0x3333333333333333ull) << 2);
    v = ((v >> 4) & 0x0f0f0f0f0f0f0f0full) | ((v & 0x0f0f0f0f0f0f0f0full) << 4);
    return __builtin_bswap64(v);
}

/* Advance the cursor over a table of mask+1 buckets by incrementing its
 * bits in reverse order (the high bit of the mask first). Bits above the
 * mask are set first so that the carry runs off the top. Counting this
 * way, every bucket of a bigger table that splits from bucket b of a
 * smaller one (they share b's low bits) comes right after the cursors
 * already visited, so a resize between calls skips no bucket: a
 * grown table may repeat keys, never lose them. */
static inline uint64_t kv__cursor_next(uint64_t v, uint64_t mask)
{
    v |= ~mask;
    v = kv__bit_reverse(v);
    v++;
    return kv__bit_reverse(v);
}

static size_t kv__scan_bucket(const struct kv *kv, struct kv_entry *e, int64_t now_ms,
                              kv_key_cb cb, void *arg)
{
    size_t n = 0;
    for (; e != NULL; e = e->next) {
        if (kv__expired(kv, e, now_ms))
            continue;
        cb(arg, kv__key(e), e->klen);
        n++;
    }
    return n;
}

uint64_t kv_scan(struct kv *kv, uint64_t cursor, size_t count, int64_t now_ms, kv_key_cb cb,
                 void *arg)
{
    /* Read-only, no rehash step: cb sees a table that stays put. */
    size_t keys = 0, visits = 0;
    if (count == 0)
        count = 1;
    size_t visits_max = count > SIZE_MAX / KV_SCAN_EMPTY_VISITS ? SIZE_MAX
                                                                : count * KV_SCAN_EMPTY_VISITS;
    uint64_t v = cursor;
    do {
        if (!kv__rehashing(kv)) {
            const struct kv_table *t = &kv->tab[0];
            uint64_t mask = t->size - 1;
            keys += kv__scan_bucket(kv, t->buckets[v & mask], now_ms, cb, arg);
            visits++;
            v = kv__cursor_next(v, mask);
        } else {
            /* Two tables: visit the cursor's bucket in the small one, then
             * every bucket of the large one that it expands to (the large
             * mask's extra bits, counted in reverse). */
            const struct kv_table *small = &kv->tab[0], *large = &kv->tab[1];
            if (small->size > large->size) {
                small = &kv->tab[1];
                large = &kv->tab[0];
            }
            uint64_t m_small = small->size - 1, m_large = large->size - 1;
            keys += kv__scan_bucket(kv, small->buckets[v & m_small], now_ms, cb, arg);
            visits++;
            do {
                keys += kv__scan_bucket(kv, large->buckets[v & m_large], now_ms, cb, arg);
                visits++;
                v = kv__cursor_next(v, m_large);
            } while (v & (m_small ^ m_large));
        }
    } while (v != 0 && keys < count && visits < visits_max);
    return v;
}

/* ---- random key ---- */

/* Bucket i of tab[0] followed by tab[1], as one index space. */
static inline struct kv_entry *kv__bucket_at(const struct kv *kv, size_t i)
{
    if (i < kv->tab[0].size)
        return kv->tab[0].buckets[i];
    return kv->tab[1].buckets[i - kv->tab[0].size];
}

int kv_random_key(struct kv *kv, int64_t now_ms, const char **key, size_t *klen)
{
    kv__rehash_tick(kv); /* moves entries, frees none: fine for a read */
    if (kv_count(kv) == 0)
        return TRIAD_ENOTFOUND;
    /* tab[0]'s buckets below rehash_idx are empty during a rehash. */
    size_t lo = kv__rehashing(kv) ? kv->rehash_idx : 0;
    size_t span = kv->tab[0].size + kv->tab[1].size - lo;
    for (int tries = 0; tries < KV_RANDOM_TRIES_MAX; tries++) {
        struct kv_entry *chain = kv__bucket_at(kv, lo + kv__rand(kv) % span);
        if (chain == NULL)
            continue;
        size_t n = 0;
        for (struct kv_entry *e = chain; e != NULL; e = e->next)
            n++;
        struct kv_entry *e = chain;
        for (size_t skip = kv__rand(kv) % n; skip > 0; skip--)
            e = e->next;
        if (kv__expired(kv, e, now_ms))
            continue;
        *key = kv__key(e);
        *klen = e->klen;
        return 0;
    }
    /* Mostly expired keys (or an unlucky run): walk from a random bucket to
     * the first live key. Not uniform, but found if there is one. */
    size_t start = kv__rand(kv) % span;
    for (size_t k = 0; k < span; k++) {
        size_t i = lo + (start + k) % span;
        for (struct kv_entry *e = kv__bucket_at(kv, i); e != NULL; e = e->next) {
            if (!kv__expired(kv, e, now_ms)) {
                *key = kv__key(e);
                *klen = e->klen;
                return 0;
            }
        }
    }
    return TRIAD_ENOTFOUND;
}

/* ---- iteration, accounting, maintenance ---- */

int kv_foreach(const struct kv *kv, kv_entry_cb cb, void *arg)
{
    for (int i = 0; i < 2; i++) {
        const struct kv_table *t = &kv->tab[i];
        for (size_t b = 0; t->buckets != NULL && b < t->size; b++) {
            for (struct kv_entry *e = t->buckets[b]; e != NULL; e = e->next) {
                int rc = cb(arg, kv__key(e), e->klen, kv__val(e), e->vlen, kv__deadline(kv, e));
                if (rc != 0)
                    return rc;
            }
        }
    }
    return 0;
}

size_t kv_mem_bytes(const struct kv *kv)
{
    return kv->mem_bytes;
}

size_t kv_buckets(const struct kv *kv)
{
    return kv->tab[0].size + kv->tab[1].size;
}

void kv_set_resize_avoid(struct kv *kv, bool avoid)
{
    kv->resize_avoid = avoid;
    if (!avoid)
        kv__maybe_resize(kv); /* what was put off */
}

bool kv_rehash_step(struct kv *kv, int steps)
{
    if (steps <= 0 || (kv->resize_avoid && !kv->forced))
        return kv__rehashing(kv);
    return kv__rehash(kv, (size_t)steps);
}

/* O(n) self-check for tests and debug builds (not in kv.h): every entry in
 * the bucket its hash names, the moved part of tab[0] empty, counts right,
 * the heap ordered with positions in sync, memory accounted. Returns 0, or
 * a negative number naming the first broken invariant. */
int kv__check(const struct kv *kv)
{
    size_t mem = tmalloc_size((void *)kv), with_deadline = 0;
    for (int i = 0; i < 2; i++) {
        const struct kv_table *t = &kv->tab[i];
        if (t->buckets == NULL) {
            if (i == 0 || t->used != 0)
                return -1;
            continue;
        }
        if (t->size == 0 || (t->size & (t->size - 1)) != 0)
            return -2;
        mem += tmalloc_size(t->buckets);
        size_t used = 0;
        for (size_t b = 0; b < t->size; b++) {
            if (i == 0 && kv__rehashing(kv) && b < kv->rehash_idx && t->buckets[b] != NULL)
                return -3;
            for (struct kv_entry *e = t->buckets[b]; e != NULL; e = e->next) {
                if ((kv__hash(kv, kv__key(e), e->klen) & (t->size - 1)) != b)
                    return -4;
                if (e->vlen > e->vcap)
                    return -5;
                if (sizeof(*e) + e->klen + e->vcap > tmalloc_size(e))
                    return -6;
                if (e->heap_pos != KV_HEAP_NONE) {
                    if (e->heap_pos >= kv->heap_len || kv->heap[e->heap_pos].e != e)
                        return -7;
                    with_deadline++;
                }
                mem += tmalloc_size(e);
                used++;
            }
        }
        if (used != t->used)
            return -8;
    }
    if (with_deadline != kv->heap_len)
        return -9;
    for (size_t p = 1; p < kv->heap_len; p++) {
        if (kv->heap[(p - 1) / 2].deadline_ms > kv->heap[p].deadline_ms)
            return -10;
    }
    if (kv->heap != NULL)
        mem += tmalloc_size(kv->heap);
    if (mem != kv->mem_bytes)
        return -11;
    return 0;
}
