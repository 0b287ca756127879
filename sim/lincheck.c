/* lincheck.c - Wing & Gong's linearizability search with Lowe's memo, per
 * key. See lincheck.h for the model and the contract.
 *
 * One key's search is a depth-first search over prefixes of a
 * linearization. The OK ops' calls and returns sit on a doubly linked list
 * in time order; a node of the search is the set of ops placed so far and
 * the model state after them. The first return entry on the list (the
 * node's bound) belongs to the unplaced op that returned first: every op
 * called before it is a candidate to go next, nothing called after it is.
 * Placing an op lifts its entries out of the list and pushes it on a
 * stack; a node where no candidate fits (or each leads only to dead or
 * already visited configurations) pops the last op, puts its entries back
 * and tries that node's next candidate. Popping the empty stack proves
 * that no linearization exists; emptying the list finds one.
 *
 * Lowe's memo: a configuration (placed set as a bitset, state) is searched
 * once. Everything below a configuration depends only on it, so meeting it
 * again, by another order of the same ops, cannot succeed where the first
 * visit failed.
 *
 * UNKNOWN ops return at +infinity, so they never bound a node: each is a
 * candidate from its call on, and the search succeeds once every OK op is
 * placed, whatever UNKNOWN ops are left (they never took effect, or took
 * it after everything else; nothing observes them).
 *
 * Two things keep the search small on real histories without changing any
 * answer: a read-only op that fits a node's state is that node's only
 * choice (lin__enter), and the candidates are tried lazily, those that
 * serve the bound op first (lin__candidates).
 *
 * Model states are interned per key (one id per distinct value, 0 = nil),
 * so comparing states, and comparing a state with a GET's output or an
 * IFEQ's expected value, is comparing ids.
 */
#include "lincheck.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "../src/common/defs.h"
#include "../src/common/num.h"
#include "../src/common/err.h"
#include "../src/common/mem.h"

/* ---- the recorded history ---- */

enum lin__out {
    LIN__OUT_NONE,        /* not completed OK, or SET */
    LIN__OUT_NIL,         /* GET of a missing key */
    LIN__OUT_VALUE,       /* GET: out_off/out_len */
    LIN__OUT_INT,         /* APPEND length, INCR value: out_int */
    LIN__OUT_ERROR,       /* INCR error */
    LIN__OUT_APPLIED,     /* SET IFEQ set the value */
    LIN__OUT_NOT_APPLIED, /* SET IFEQ returned nil */
};

struct lin__rec {
    uint64_t call_time;
    uint64_t return_time; /* meaningful for OK and FAIL */
    int64_t out_int;
    size_t key_off, key_len; /* offsets into history.bytes: it moves */
    size_t value_off, value_len;
    size_t expected_off, expected_len;
    size_t out_off, out_len;
    uint32_t client;
    uint8_t op;     /* enum lin_op */
    uint8_t status; /* enum lin_status */
    uint8_t out;    /* enum lin__out */
};

/* bytes at an offset into an arena; never a null pointer plus an offset */
static const char *lin__at(const struct tbuf *b, size_t off)
{
    return b->data != NULL ? b->data + off : "";
}

static bool lin__mem_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static size_t lin__copy(struct lin_history *h, const void *p, size_t len)
{
    TRIAD_ASSERT(p != NULL || len == 0);
    size_t off = h->bytes.len;
    tbuf_append(&h->bytes, p, len);
    return off;
}

void lin_history_init(struct lin_history *h)
{
    memset(h, 0, sizeof(*h));
}

void lin_history_free(struct lin_history *h)
{
    tfree(h->ops);
    tbuf_free(&h->bytes);
    memset(h, 0, sizeof(*h));
}

size_t lin_invoke(struct lin_history *h, uint32_t client, enum lin_op op, const void *key,
                  size_t klen, const void *value, size_t vlen, const void *expected, size_t elen,
                  uint64_t call_time)
{
    TRIAD_ASSERT(op >= LIN_GET && op <= LIN_INCR);
    TRIAD_ASSERT(h->ops_count < LIN_OPS_MAX);
    bool takes_value = op == LIN_SET || op == LIN_SET_IFEQ || op == LIN_APPEND;
    TRIAD_ASSERT(takes_value || vlen == 0);
    TRIAD_ASSERT(op == LIN_SET_IFEQ || elen == 0);
    if (h->ops_count == h->ops_cap) {
        h->ops_cap = h->ops_cap ? h->ops_cap * 2 : 64;
        h->ops = trealloc(h->ops, h->ops_cap * sizeof(*h->ops));
    }
    struct lin__rec *r = &h->ops[h->ops_count];
    memset(r, 0, sizeof(*r));
    r->client = client;
    r->op = (uint8_t)op;
    r->status = LIN_PENDING;
    r->out = LIN__OUT_NONE;
    r->call_time = call_time;
    r->key_len = klen;
    r->key_off = lin__copy(h, key, klen);
    r->value_len = vlen;
    r->value_off = lin__copy(h, value, vlen);
    r->expected_len = elen;
    r->expected_off = lin__copy(h, expected, elen);
    return h->ops_count++;
}

/* the pending op `id` of kind `op`, about to complete at return_time */
static struct lin__rec *lin__completing(struct lin_history *h, size_t id, enum lin_op op,
                                        uint64_t return_time)
{
    TRIAD_ASSERT(id < h->ops_count);
    struct lin__rec *r = &h->ops[id];
    TRIAD_ASSERT(r->status == LIN_PENDING);
    TRIAD_ASSERT(r->op == op);
    TRIAD_ASSERT(return_time >= r->call_time);
    r->status = LIN_OK;
    r->return_time = return_time;
    return r;
}

void lin_complete_get(struct lin_history *h, size_t id, const void *value, size_t vlen,
                      uint64_t return_time)
{
    size_t off = lin__copy(h, value, vlen); /* before taking r: ops do not move, bytes do */
    struct lin__rec *r = lin__completing(h, id, LIN_GET, return_time);
    r->out = LIN__OUT_VALUE;
    r->out_off = off;
    r->out_len = vlen;
}

void lin_complete_get_nil(struct lin_history *h, size_t id, uint64_t return_time)
{
    lin__completing(h, id, LIN_GET, return_time)->out = LIN__OUT_NIL;
}

void lin_complete_set(struct lin_history *h, size_t id, uint64_t return_time)
{
    lin__completing(h, id, LIN_SET, return_time)->out = LIN__OUT_NONE;
}

void lin_complete_ifeq(struct lin_history *h, size_t id, bool applied, uint64_t return_time)
{
    struct lin__rec *r = lin__completing(h, id, LIN_SET_IFEQ, return_time);
    r->out = applied ? LIN__OUT_APPLIED : LIN__OUT_NOT_APPLIED;
}

void lin_complete_append(struct lin_history *h, size_t id, uint64_t new_len,
                         uint64_t return_time)
{
    TRIAD_ASSERT(new_len <= INT64_MAX);
    struct lin__rec *r = lin__completing(h, id, LIN_APPEND, return_time);
    r->out = LIN__OUT_INT;
    r->out_int = (int64_t)new_len;
}

void lin_complete_incr(struct lin_history *h, size_t id, int64_t new_value, uint64_t return_time)
{
    struct lin__rec *r = lin__completing(h, id, LIN_INCR, return_time);
    r->out = LIN__OUT_INT;
    r->out_int = new_value;
}

void lin_complete_incr_error(struct lin_history *h, size_t id, uint64_t return_time)
{
    lin__completing(h, id, LIN_INCR, return_time)->out = LIN__OUT_ERROR;
}

void lin_fail(struct lin_history *h, size_t id, uint64_t return_time)
{
    TRIAD_ASSERT(id < h->ops_count);
    struct lin__rec *r = &h->ops[id];
    TRIAD_ASSERT(r->status == LIN_PENDING);
    TRIAD_ASSERT(return_time >= r->call_time);
    r->status = LIN_FAIL;
    r->return_time = return_time;
}

void lin_unknown(struct lin_history *h, size_t id)
{
    TRIAD_ASSERT(id < h->ops_count);
    struct lin__rec *r = &h->ops[id];
    TRIAD_ASSERT(r->status == LIN_PENDING);
    r->status = LIN_UNKNOWN;
}

/* ---- the model: Redis's rules for INCR ---- */


/* ---- one key's search ---- */

#define LIN__NIL 0u          /* state id of a missing key */
#define LIN__NO_STATE 0u     /* incr_next not computed yet (never nil) */

/* an interned value: one per distinct byte string seen by a key's search */
struct lin__state {
    uint64_t hash;
    size_t off, len;    /* into lin__search.state_bytes */
    int64_t ival;       /* when int_ok: the value as INCR reads it */
    uint32_t incr_next; /* the state INCR leads to, once computed */
    bool int_ok;        /* INCR can read it and add one */
};

/* an op as the search sees it; local index into lin__search.ops */
struct lin__sop {
    size_t id; /* in the history */
    uint64_t zobrist;
    uint64_t mid_time; /* the middle of [call, return], see lin__candidates */
    int64_t out_int;
    const char *arg; /* APPEND's suffix (borrowed from the history) */
    size_t arg_len;
    uint32_t value;    /* interned: SET/IFEQ new value, GET output */
    uint32_t expected; /* interned: IFEQ */
    uint32_t call_entry, return_entry;
    uint8_t op;
    uint8_t out;
    bool unknown;
    /* An OK op that changes nothing wherever its output fits: GET, IFEQ
     * that was not applied, INCR that failed. See lin__enter. */
    bool read_only;
};

/* a visited configuration; its bitset is stored compressed (see lin__window) */
struct lin__memo {
    uint64_t hash;
    size_t words_off; /* into lin__search.memo_words */
    uint32_t state;
    uint32_t lo;  /* first OK word that is not all ones */
    uint32_t win; /* OK words stored from lo; the rest are zero */
};

/* an op that fits a node's state, and the state it leads to */
struct lin__cand {
    uint64_t mid_time;
    uint32_t op;
    uint32_t to;
    uint32_t rank; /* see lin__candidates */
};

/* One linearized op on the search's stack, and the node it was chosen at:
 * that node's state, its first return entry, and its candidates
 * cands[cand_off, cand_off + cand_count), of which this op is number pos. */
struct lin__frame {
    uint32_t op;
    uint32_t prev_state;
    uint32_t bound;
    uint32_t cand_count, pos;
    size_t cand_off;
    bool forced; /* the node's only choice (lin__enter); no candidates */
};

struct lin__search {
    const struct lin_history *h;
    struct lin__sop *ops;
    uint32_t n, n_ok; /* ops [0, n_ok) are OK, [n_ok, n) UNKNOWN */

    /* Entries 1..2n are every call and return, numbered in time order.
     * Two lists thread them: the main list holds the OK ops' calls and
     * returns (head 0, tail 2n+1); the unknown list holds the UNKNOWN ops'
     * calls (head 2n+2, tail 2n+3). Their returns, at +infinity, are in
     * neither: once the main list is empty every OK op is placed, and the
     * UNKNOWN ops left can be taken never to have happened. */
    uint32_t *next, *prev, *entry_op;
    uint32_t tail, uhead, utail;

    /* the linearized set: OK ops in words [0, ok_words), UNKNOWN ops in
     * [ok_words, words), so a long run of finished OK ops compresses */
    uint64_t *bits;
    uint32_t ok_words, words;
    uint32_t lo_hint, hi_hint; /* bits[< lo_hint] full, bits[>= hi_hint] (OK part) zero */
    uint64_t zobrist;          /* xor of the linearized ops' zobrist values */

    struct lin__state *states;
    size_t states_count, states_cap;
    uint32_t *state_slots; /* open addressing: state id, 0 empty (nil is never looked up) */
    size_t state_slots_cap;
    struct tbuf state_bytes;
    struct tbuf scratch; /* APPEND and INCR build their result here */

    struct lin__memo *memos;
    size_t memos_count, memos_cap;
    uint32_t *memo_slots; /* memo index + 1, 0 empty */
    size_t memo_slots_cap;
    uint64_t *memo_words;
    size_t memo_words_count, memo_words_cap;

    size_t bytes_used;
    bool bytes_exceeded;

    struct lin__frame *stack;
    uint32_t depth, depth_max;
    /* the candidate lists of the nodes on the stack, then the current one's */
    struct lin__cand *cands;
    size_t cands_count, cands_cap;
    uint64_t steps, steps_max;

    /* the longest linearizable prefix met, for the report */
    bool best_set;
    uint32_t *best_ops;
    uint32_t best_depth, best_blocked, best_state;
};

static uint64_t lin__mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static void lin__account(struct lin__search *s, size_t bytes)
{
    s->bytes_used += bytes;
    if (s->bytes_used > LIN_SEARCH_BYTES_MAX)
        s->bytes_exceeded = true;
}

static const char *lin__state_ptr(const struct lin__search *s, uint32_t id)
{
    return lin__at(&s->state_bytes, s->states[id].off);
}

static void lin__state_slots_grow(struct lin__search *s)
{
    size_t cap = s->state_slots_cap ? s->state_slots_cap * 2 : 64;
    uint32_t *slots = tcalloc(cap, sizeof(*slots));
    lin__account(s, (cap - s->state_slots_cap) * sizeof(*slots));
    for (size_t id = 1; id < s->states_count; id++) {
        size_t i = s->states[id].hash & (cap - 1);
        while (slots[i] != 0)
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)id;
    }
    tfree(s->state_slots);
    s->state_slots = slots;
    s->state_slots_cap = cap;
}

/* The id of the state holding these bytes, adding it if new. p must not
 * point into state_bytes (which may move). */
static uint32_t lin__intern(struct lin__search *s, const char *p, size_t len)
{
    uint64_t hash = XXH3_64bits(len ? p : "", len);
    if ((s->states_count + 1) * 2 > s->state_slots_cap)
        lin__state_slots_grow(s);
    size_t mask = s->state_slots_cap - 1;
    size_t i = hash & mask;
    for (; s->state_slots[i] != 0; i = (i + 1) & mask) {
        const struct lin__state *st = &s->states[s->state_slots[i]];
        if (st->hash == hash && lin__mem_eq(lin__state_ptr(s, s->state_slots[i]), st->len, p, len))
            return s->state_slots[i];
    }
    TRIAD_ASSERT(s->states_count < UINT32_MAX);
    if (s->states_count == s->states_cap) {
        s->states_cap *= 2;
        s->states = trealloc(s->states, s->states_cap * sizeof(*s->states));
        lin__account(s, s->states_cap / 2 * sizeof(*s->states));
    }
    uint32_t id = (uint32_t)s->states_count++;
    struct lin__state *st = &s->states[id];
    memset(st, 0, sizeof(*st));
    st->hash = hash;
    st->len = len;
    st->off = s->state_bytes.len;
    tbuf_append(&s->state_bytes, p, len);
    lin__account(s, len);
    st->int_ok = triad_parse_i64(p, len, &st->ival) && st->ival != INT64_MAX;
    s->state_slots[i] = id;
    return id;
}

/* INCR's successor of state `from`; from must be int_ok */
static uint32_t lin__incr_next(struct lin__search *s, uint32_t from)
{
    TRIAD_ASSERT(s->states[from].int_ok);
    if (s->states[from].incr_next != LIN__NO_STATE)
        return s->states[from].incr_next;
    char num[32];
    int n = snprintf(num, sizeof(num), "%" PRId64, s->states[from].ival + 1);
    TRIAD_ASSERT(n > 0 && (size_t)n < sizeof(num));
    uint32_t to = lin__intern(s, num, (size_t)n);
    s->states[from].incr_next = to; /* after intern: states may have moved */
    TRIAD_ASSERT(to != LIN__NIL);
    return to;
}

/* Apply op o to state `from`. Returns false when the op's recorded output
 * cannot come from this state; else sets *to. */
static bool lin__step(struct lin__search *s, const struct lin__sop *o, uint32_t from,
                      uint32_t *to)
{
    switch (o->op) {
    case LIN_GET:
        TRIAD_ASSERT(!o->unknown); /* dropped: they constrain nothing */
        *to = from;
        return from == o->value;
    case LIN_SET:
        *to = o->value;
        return true;
    case LIN_SET_IFEQ: {
        bool applies = from != LIN__NIL && from == o->expected;
        if (!o->unknown && applies != (o->out == LIN__OUT_APPLIED))
            return false;
        *to = applies ? o->value : from;
        return true;
    }
    case LIN_APPEND: {
        size_t old_len = s->states[from].len;
        if (!o->unknown && (uint64_t)o->out_int != (uint64_t)old_len + o->arg_len)
            return false; /* before building the string: most wrong orders stop here */
        tbuf_reset(&s->scratch);
        tbuf_append(&s->scratch, lin__state_ptr(s, from), old_len);
        tbuf_append(&s->scratch, o->arg, o->arg_len);
        *to = lin__intern(s, lin__at(&s->scratch, 0), s->scratch.len);
        return true;
    }
    case LIN_INCR:
        if (!s->states[from].int_ok) {
            *to = from;
            return o->unknown || o->out == LIN__OUT_ERROR;
        }
        if (!o->unknown && (o->out != LIN__OUT_INT || o->out_int != s->states[from].ival + 1))
            return false;
        *to = lin__incr_next(s, from);
        return true;
    }
    TRIAD_ASSERT(0 && "unknown op");
    return false;
}

/* ---- the memo of visited configurations (Lowe) ---- */

static uint64_t lin__ok_full(const struct lin__search *s, uint32_t w)
{
    uint32_t rem = s->n_ok - w * 64;
    return rem >= 64 ? UINT64_MAX : ((uint64_t)1 << rem) - 1;
}

static void lin__bit_set(struct lin__search *s, uint32_t i)
{
    uint32_t w = i < s->n_ok ? i / 64 : s->ok_words + (i - s->n_ok) / 64;
    uint32_t b = i < s->n_ok ? i % 64 : (i - s->n_ok) % 64;
    TRIAD_DEBUG_ASSERT(!(s->bits[w] >> b & 1));
    s->bits[w] |= (uint64_t)1 << b;
    if (i < s->n_ok && w + 1 > s->hi_hint)
        s->hi_hint = w + 1;
    s->zobrist ^= s->ops[i].zobrist;
}

static void lin__bit_clear(struct lin__search *s, uint32_t i)
{
    uint32_t w = i < s->n_ok ? i / 64 : s->ok_words + (i - s->n_ok) / 64;
    uint32_t b = i < s->n_ok ? i % 64 : (i - s->n_ok) % 64;
    TRIAD_DEBUG_ASSERT(s->bits[w] >> b & 1);
    s->bits[w] &= ~((uint64_t)1 << b);
    if (i < s->n_ok && w < s->lo_hint)
        s->lo_hint = w;
    s->zobrist ^= s->ops[i].zobrist;
}

/* The canonical compressed form of the linearized set: OK words below lo
 * are all ones, OK words from lo + win on are zero, so only [lo, lo + win)
 * and the UNKNOWN words are stored. OK ops are indexed in call order and
 * finish in roughly that order, so the window is about as wide as the
 * history's concurrency. */
static void lin__window(struct lin__search *s, uint32_t *lo, uint32_t *win)
{
    while (s->lo_hint < s->ok_words && s->bits[s->lo_hint] == lin__ok_full(s, s->lo_hint))
        s->lo_hint++;
    if (s->hi_hint < s->lo_hint)
        s->hi_hint = s->lo_hint;
    while (s->hi_hint > s->lo_hint && s->bits[s->hi_hint - 1] == 0)
        s->hi_hint--;
    *lo = s->lo_hint;
    *win = s->hi_hint - s->lo_hint;
}

static void lin__memo_slots_grow(struct lin__search *s)
{
    size_t cap = s->memo_slots_cap ? s->memo_slots_cap * 2 : 1024;
    uint32_t *slots = tcalloc(cap, sizeof(*slots));
    lin__account(s, (cap - s->memo_slots_cap) * sizeof(*slots));
    for (size_t m = 0; m < s->memos_count; m++) {
        size_t i = s->memos[m].hash & (cap - 1);
        while (slots[i] != 0)
            i = (i + 1) & (cap - 1);
        slots[i] = (uint32_t)(m + 1);
    }
    tfree(s->memo_slots);
    s->memo_slots = slots;
    s->memo_slots_cap = cap;
}

/* Remember (current bits, state). Returns false if it was already there:
 * everything reachable from it has been explored. */
static bool lin__memo_add(struct lin__search *s, uint32_t state)
{
    uint32_t lo, win;
    lin__window(s, &lo, &win);
    uint32_t unk_words = s->words - s->ok_words;
    uint64_t hash = lin__mix64(s->zobrist ^ lin__mix64((uint64_t)state + 0x9e3779b97f4a7c15ULL));

    if ((s->memos_count + 1) * 2 > s->memo_slots_cap)
        lin__memo_slots_grow(s);
    size_t mask = s->memo_slots_cap - 1;
    size_t i = hash & mask;
    for (; s->memo_slots[i] != 0; i = (i + 1) & mask) {
        const struct lin__memo *m = &s->memos[s->memo_slots[i] - 1];
        if (m->hash != hash || m->state != state || m->lo != lo || m->win != win)
            continue;
        const uint64_t *w = s->memo_words + m->words_off;
        if ((win == 0 || memcmp(w, s->bits + lo, win * sizeof(*w)) == 0) &&
            (unk_words == 0 ||
             memcmp(w + win, s->bits + s->ok_words, unk_words * sizeof(*w)) == 0))
            return false;
    }

    TRIAD_ASSERT(s->memos_count < UINT32_MAX - 1);
    if (s->memos_count == s->memos_cap) {
        s->memos_cap = s->memos_cap ? s->memos_cap * 2 : 1024;
        s->memos = trealloc(s->memos, s->memos_cap * sizeof(*s->memos));
        lin__account(s, s->memos_cap / 2 * sizeof(*s->memos));
    }
    size_t need = (size_t)win + unk_words;
    if (s->memo_words_count + need > s->memo_words_cap) {
        size_t cap = s->memo_words_cap ? s->memo_words_cap * 2 : 4096;
        while (cap < s->memo_words_count + need)
            cap *= 2;
        lin__account(s, (cap - s->memo_words_cap) * sizeof(*s->memo_words));
        s->memo_words = trealloc(s->memo_words, cap * sizeof(*s->memo_words));
        s->memo_words_cap = cap;
    }
    struct lin__memo *m = &s->memos[s->memos_count];
    m->hash = hash;
    m->state = state;
    m->lo = lo;
    m->win = win;
    m->words_off = s->memo_words_count;
    if (win)
        memcpy(s->memo_words + m->words_off, s->bits + lo, win * sizeof(uint64_t));
    if (unk_words)
        memcpy(s->memo_words + m->words_off + win, s->bits + s->ok_words,
               unk_words * sizeof(uint64_t));
    s->memo_words_count += need;
    s->memo_slots[i] = (uint32_t)(++s->memos_count);
    return true;
}

/* ---- the list of entries and the search proper ---- */

struct lin__entry {
    uint64_t time;
    uint32_t kind; /* 0 call, 1 return, 2 return of an UNKNOWN op (+infinity) */
    uint32_t op;
};

static int lin__entry_cmp(const void *pa, const void *pb)
{
    const struct lin__entry *a = pa, *b = pb;
    /* a return at +infinity is after every finite time */
    uint64_t ta = a->kind == 2 ? UINT64_MAX : a->time, tb = b->kind == 2 ? UINT64_MAX : b->time;
    if (ta != tb)
        return ta < tb ? -1 : 1;
    /* Calls before returns at equal times: an op returning at t is
     * concurrent with one called at t (the documented rule). */
    if (a->kind != b->kind)
        return a->kind < b->kind ? -1 : 1;
    return a->op < b->op ? -1 : a->op > b->op;
}

static void lin__unlink(struct lin__search *s, uint32_t e)
{
    s->next[s->prev[e]] = s->next[e];
    s->prev[s->next[e]] = s->prev[e];
}

/* Undoes lin__unlink; valid only in the reverse order of the unlinks. */
static void lin__relink(struct lin__search *s, uint32_t e)
{
    s->next[s->prev[e]] = e;
    s->prev[s->next[e]] = e;
}

static void lin__lift(struct lin__search *s, uint32_t i)
{
    lin__unlink(s, s->ops[i].call_entry);
    if (!s->ops[i].unknown)
        lin__unlink(s, s->ops[i].return_entry);
}

static void lin__unlift(struct lin__search *s, uint32_t i)
{
    if (!s->ops[i].unknown)
        lin__relink(s, s->ops[i].return_entry);
    lin__relink(s, s->ops[i].call_entry);
}

static void lin__note_blocked(struct lin__search *s, uint32_t blocked, uint32_t state)
{
    if (s->best_set && s->depth <= s->best_depth)
        return;
    s->best_set = true;
    s->best_depth = s->depth;
    s->best_blocked = blocked;
    s->best_state = state;
    for (uint32_t d = 0; d < s->depth; d++)
        s->best_ops[d] = s->stack[d].op;
}

/* one unit of work; false once the key's bounds are spent */
static bool lin__tick(struct lin__search *s)
{
    if (s->steps >= s->steps_max || s->bytes_exceeded)
        return false;
    s->steps++;
    return true;
}

/* the current node's choices, for lin__push to record in the frame */
struct lin__node {
    uint32_t bound;
    uint32_t cand_count, pos;
    size_t cand_off;
    bool forced;
};

/* Linearize op i next, leading to state `to`, unless that configuration
 * was met before (Lowe): then everything after it has been explored and
 * failed, and so would this. */
static bool lin__push(struct lin__search *s, uint32_t i, uint32_t *state, uint32_t to,
                      const struct lin__node *node)
{
    lin__bit_set(s, i);
    if (!lin__memo_add(s, to)) {
        lin__bit_clear(s, i);
        return false;
    }
    TRIAD_ASSERT(s->depth < s->n);
    struct lin__frame *f = &s->stack[s->depth++];
    if (s->depth > s->depth_max)
        s->depth_max = s->depth;
    f->op = i;
    f->prev_state = *state;
    f->bound = node->bound;
    f->cand_off = node->cand_off;
    f->cand_count = node->cand_count;
    f->pos = node->pos;
    f->forced = node->forced;
    *state = to;
    lin__lift(s, i);
    return true;
}

static struct lin__frame lin__pop(struct lin__search *s, uint32_t *state)
{
    TRIAD_ASSERT(s->depth > 0);
    struct lin__frame f = s->stack[--s->depth];
    *state = f.prev_state;
    lin__bit_clear(s, f.op);
    lin__unlift(s, f.op);
    return f;
}

static bool lin__is_call(const struct lin__search *s, uint32_t e)
{
    return s->entry_op[e] != UINT32_MAX && s->ops[s->entry_op[e]].call_entry == e;
}

enum lin__rc { LIN__PUSHED, LIN__DEAD, LIN__READY, LIN__SPENT };

/* Arrive at a node. Its candidates are the OK ops whose call entry
 * precedes the first return entry (*bound) of the main list, and the
 * UNKNOWN ops called before it. If a read-only op among them fits the
 * state, it is the node's only choice: placing it first loses nothing,
 * since any linearization from here that places it later can move it here
 * (it changes no state, and no unplaced op returned before its call). That
 * one reduction takes most reads out of the branching. */
static enum lin__rc lin__enter(struct lin__search *s, uint32_t *state, uint32_t *bound)
{
    uint32_t e = s->next[0];
    for (; lin__is_call(s, e); e = s->next[e]) {
        if (!lin__tick(s))
            return LIN__SPENT;
        uint32_t i = s->entry_op[e], to;
        if (!s->ops[i].read_only || !lin__step(s, &s->ops[i], *state, &to))
            continue;
        TRIAD_ASSERT(to == *state);
        struct lin__node node = {.forced = true};
        return lin__push(s, i, state, to, &node) ? LIN__PUSHED : LIN__DEAD;
    }
    TRIAD_ASSERT(e != s->tail); /* an OK call entry has its return after it */
    *bound = e;
    return LIN__READY;
}

static int lin__cand_cmp(const void *pa, const void *pb)
{
    const struct lin__cand *a = pa, *b = pb;
    if (a->rank != b->rank)
        return a->rank < b->rank ? -1 : 1;
    if (a->mid_time != b->mid_time)
        return a->mid_time < b->mid_time ? -1 : 1;
    return a->op < b->op ? -1 : a->op > b->op;
}

/* Lay out the candidates of a node that has no forced op: every op that
 * fits the state, OK ones from the main list and UNKNOWN ones called
 * before the bound. The order decides only how soon a valid history is
 * found, never the answer; it is laziness aimed at the bound op o, which
 * returns first and so is the only op that must be placed soon:
 *   0  o itself, if it fits: place nothing early that need not be;
 *   1  an op after which o fits (the write a read of o's needs);
 *   2  the other OK ops, by the middle of their interval (a
 *      linearization point is as likely early as late in it);
 *   3  the other UNKNOWN ops: most never took effect, or not yet.
 * Placing a write early that belonged later is what costs: everything
 * between it and the read that exposes it is searched in vain. */
static void lin__candidates(struct lin__search *s, uint32_t state, uint32_t bound,
                            struct lin__node *node)
{
    uint32_t o = s->entry_op[bound], to, after;
    node->bound = bound;
    node->cand_off = s->cands_count;
    node->pos = 0;
    node->forced = false;
    for (int pass = 0; pass < 2; pass++) {
        uint32_t e = pass == 0 ? s->next[0] : s->next[s->uhead];
        for (; e < bound; e = s->next[e]) { /* in both lists, utail > every entry */
            uint32_t i = s->entry_op[e];
            if (s->ops[i].read_only) /* does not fit here: lin__enter tried it */
                continue;
            if (!lin__step(s, &s->ops[i], state, &to))
                continue;
            if (s->cands_count == s->cands_cap) {
                size_t cap = s->cands_cap ? s->cands_cap * 2 : 256;
                lin__account(s, (cap - s->cands_cap) * sizeof(*s->cands));
                s->cands = trealloc(s->cands, cap * sizeof(*s->cands));
                s->cands_cap = cap;
            }
            struct lin__cand *c = &s->cands[s->cands_count++];
            c->op = i;
            c->to = to;
            c->mid_time = s->ops[i].mid_time;
            if (i == o)
                c->rank = 0;
            else if (lin__step(s, &s->ops[o], to, &after))
                c->rank = 1;
            else
                c->rank = pass == 0 ? 2 : 3;
        }
    }
    node->cand_count = (uint32_t)(s->cands_count - node->cand_off);
    if (node->cand_count > 1)
        qsort(s->cands + node->cand_off, node->cand_count, sizeof(*s->cands), lin__cand_cmp);
}

/* Try the node's candidates from node->pos on. */
static enum lin__rc lin__branch(struct lin__search *s, uint32_t *state, struct lin__node *node)
{
    for (; node->pos < node->cand_count; node->pos++) {
        if (!lin__tick(s))
            return LIN__SPENT;
        const struct lin__cand *c = &s->cands[node->cand_off + node->pos];
        if (lin__push(s, c->op, state, c->to, node))
            return LIN__PUSHED;
    }
    lin__note_blocked(s, s->entry_op[node->bound], *state);
    s->cands_count = node->cand_off; /* this node is done with */
    return LIN__DEAD;
}

static enum lin_result lin__search_run(struct lin__search *s)
{
    uint32_t state = LIN__NIL;
    for (;;) {
        if (s->next[0] == s->tail)
            return LIN_RESULT_OK; /* every OK op is placed */
        uint32_t bound;
        enum lin__rc rc = lin__enter(s, &state, &bound);
        if (rc == LIN__READY) {
            struct lin__node node;
            lin__candidates(s, state, bound, &node);
            rc = lin__branch(s, &state, &node);
        }
        while (rc == LIN__DEAD) {
            /* Nothing works from this node: back to the one before, and
             * on with its next candidate. */
            if (s->depth == 0)
                return LIN_RESULT_VIOLATION;
            struct lin__frame f = lin__pop(s, &state);
            if (f.forced)
                continue; /* that node had no other choice: dead too */
            struct lin__node node = {f.bound, f.cand_count, f.pos + 1, f.cand_off, false};
            rc = lin__branch(s, &state, &node);
        }
        if (rc == LIN__SPENT)
            return LIN_RESULT_UNKNOWN;
        TRIAD_ASSERT(rc == LIN__PUSHED);
    }
}

static void lin__search_free(struct lin__search *s)
{
    tfree(s->ops);
    tfree(s->next);
    tfree(s->prev);
    tfree(s->entry_op);
    tfree(s->bits);
    tfree(s->states);
    tfree(s->state_slots);
    tbuf_free(&s->state_bytes);
    tbuf_free(&s->scratch);
    tfree(s->memos);
    tfree(s->memo_slots);
    tfree(s->memo_words);
    tfree(s->stack);
    tfree(s->best_ops);
    tfree(s->cands);
}

/* Set up the search over the ops ids[0..count) (one key, sorted by call
 * time), dropping FAIL ops and UNKNOWN GETs, which constrain nothing. */
static void lin__search_init(struct lin__search *s, const struct lin_history *h, const size_t *ids,
                             size_t count, uint64_t steps_max)
{
    memset(s, 0, sizeof(*s));
    s->h = h;
    s->steps_max = steps_max;
    s->states_cap = 64;
    s->states = tmalloc(s->states_cap * sizeof(*s->states));
    memset(&s->states[0], 0, sizeof(s->states[0])); /* nil: INCR reads it as 0 */
    s->states[0].int_ok = true;
    s->states_count = 1;
    s->ops = tcalloc(count ? count : 1, sizeof(*s->ops));

    /* OK ops first, then UNKNOWN ones, each in call order */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < count; k++) {
            const struct lin__rec *r = &h->ops[ids[k]];
            bool unknown = r->status == LIN_UNKNOWN || r->status == LIN_PENDING;
            if (r->status == LIN_FAIL || (unknown && r->op == LIN_GET))
                continue;
            if (unknown != (pass == 1))
                continue;
            TRIAD_ASSERT(s->n < UINT32_MAX / 2 - 2);
            struct lin__sop *o = &s->ops[s->n++];
            o->id = ids[k];
            o->op = r->op;
            o->out = r->out;
            o->out_int = r->out_int;
            o->unknown = unknown;
            o->read_only = !unknown && (r->op == LIN_GET || r->out == LIN__OUT_NOT_APPLIED ||
                                        r->out == LIN__OUT_ERROR);
            o->zobrist = lin__mix64((uint64_t)s->n * 0x9e3779b97f4a7c15ULL);
            const char *val = lin__at(&h->bytes, r->value_off);
            switch (r->op) {
            case LIN_GET:
                o->value = r->out == LIN__OUT_NIL
                               ? LIN__NIL
                               : lin__intern(s, lin__at(&h->bytes, r->out_off), r->out_len);
                break;
            case LIN_SET:
                o->value = lin__intern(s, val, r->value_len);
                break;
            case LIN_SET_IFEQ:
                o->value = lin__intern(s, val, r->value_len);
                o->expected =
                    lin__intern(s, lin__at(&h->bytes, r->expected_off), r->expected_len);
                break;
            case LIN_APPEND:
                o->arg = val;
                o->arg_len = r->value_len;
                break;
            case LIN_INCR:
                break;
            }
        }
        if (pass == 0)
            s->n_ok = s->n;
    }

    uint32_t n = s->n;
    s->ok_words = (s->n_ok + 63) / 64;
    s->words = s->ok_words + (n - s->n_ok + 63) / 64;
    s->bits = tcalloc(s->words ? s->words : 1, sizeof(*s->bits));
    s->stack = tmalloc((n ? n : 1) * sizeof(*s->stack));
    s->best_ops = tmalloc((n ? n : 1) * sizeof(*s->best_ops));

    struct lin__entry *ents = tmalloc((2 * (size_t)n + 1) * sizeof(*ents));
    for (uint32_t i = 0; i < n; i++) {
        const struct lin__rec *r = &h->ops[s->ops[i].id];
        ents[2 * i] = (struct lin__entry){r->call_time, 0, i};
        ents[2 * i + 1] = (struct lin__entry){r->return_time, s->ops[i].unknown ? 2u : 1u, i};
        uint64_t c = r->call_time, t = r->return_time;
        s->ops[i].mid_time = s->ops[i].unknown ? c : c / 2 + t / 2 + (c & t & 1);
    }
    qsort(ents, 2 * (size_t)n, sizeof(*ents), lin__entry_cmp);
    s->tail = 2 * n + 1;
    s->uhead = 2 * n + 2;
    s->utail = 2 * n + 3;
    size_t nodes = 2 * (size_t)n + 4;
    s->next = tcalloc(nodes, sizeof(*s->next));
    s->prev = tcalloc(nodes, sizeof(*s->prev));
    s->entry_op = tmalloc(nodes * sizeof(*s->entry_op));
    for (size_t e = 0; e < nodes; e++)
        s->entry_op[e] = UINT32_MAX;
    uint32_t last = 0, ulast = s->uhead; /* the lists' ends so far */
    for (uint32_t k = 0; k < 2 * n; k++) {
        uint32_t e = k + 1, i = ents[k].op;
        s->entry_op[e] = i;
        if (ents[k].kind == 0)
            s->ops[i].call_entry = e;
        else
            s->ops[i].return_entry = e;
        if (!s->ops[i].unknown) {
            s->next[last] = e;
            s->prev[e] = last;
            last = e;
        } else if (ents[k].kind == 0) {
            s->next[ulast] = e;
            s->prev[e] = ulast;
            ulast = e;
        }
    }
    s->next[last] = s->tail;
    s->prev[s->tail] = last;
    s->next[ulast] = s->utail;
    s->prev[s->utail] = ulast;
    tfree(ents);
    for (uint32_t i = 0; i < n; i++)
        TRIAD_ASSERT(s->ops[i].call_entry < s->ops[i].return_entry);
}

/* ---- reports ---- */

/* a bounded writer into a fixed buffer; output past the end is dropped
 * and the buffer then ends in "..." */
struct lin__msg {
    char *p;
    size_t cap, len;
};

static void lin__msgf(struct lin__msg *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void lin__msgf(struct lin__msg *m, const char *fmt, ...)
{
    if (m->len + 1 >= m->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(m->p + m->len, m->cap - m->len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= m->cap - m->len) {
        m->len = m->cap - 1;
        if (m->cap >= 4)
            memcpy(m->p + m->cap - 4, "...", 4);
        return;
    }
    m->len += (size_t)n;
}

/* Write bytes as a JSON string body (no quotes). */
static void lin__json_escape(struct tbuf *out, const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c == '\\') {
            tbuf_appendc(out, '\\');
            tbuf_appendc(out, (char)c);
        } else if (c < 0x20 || c >= 0x7f) {
            tbuf_appendf(out, "\\u%04x", c);
        } else {
            tbuf_appendc(out, (char)c);
        }
    }
}

static void lin__json_str(struct tbuf *out, const char *p, size_t len)
{
    tbuf_appendc(out, '"');
    lin__json_escape(out, p, len);
    tbuf_appendc(out, '"');
}

/* a short quoted rendering of bytes for a report line */
#define LIN__QUOTE_MAX 40
static void lin__msg_quote(struct lin__msg *m, const char *p, size_t len)
{
    struct tbuf t = {0};
    lin__json_escape(&t, p, TRIAD_MIN(len, (size_t)LIN__QUOTE_MAX));
    lin__msgf(m, "\"%.*s\"%s", (int)t.len, lin__at(&t, 0), len > LIN__QUOTE_MAX ? "..." : "");
    tbuf_free(&t);
}

static const char *const lin__op_names[] = {"get", "set", "set_ifeq", "append", "incr"};

/* "#7 (client 2, call 10, return 20) set "x" -> OK" */
static void lin__msg_op(struct lin__msg *m, const struct lin_history *h, size_t id)
{
    const struct lin__rec *r = &h->ops[id];
    bool unknown = r->status == LIN_UNKNOWN || r->status == LIN_PENDING;
    lin__msgf(m, "#%zu (client %" PRIu32 ", call %" PRIu64, id, r->client, r->call_time);
    if (unknown)
        lin__msgf(m, ", unknown) ");
    else
        lin__msgf(m, ", return %" PRIu64 ") ", r->return_time);
    lin__msgf(m, "%s", lin__op_names[r->op]);
    if (r->op == LIN_SET || r->op == LIN_SET_IFEQ || r->op == LIN_APPEND) {
        lin__msgf(m, " ");
        lin__msg_quote(m, lin__at(&h->bytes, r->value_off), r->value_len);
    }
    if (r->op == LIN_SET_IFEQ) {
        lin__msgf(m, " ifeq ");
        lin__msg_quote(m, lin__at(&h->bytes, r->expected_off), r->expected_len);
    }
    lin__msgf(m, " -> ");
    if (unknown) {
        lin__msgf(m, "?");
        return;
    }
    switch (r->out) {
    case LIN__OUT_NONE:
        lin__msgf(m, "OK");
        break;
    case LIN__OUT_NIL:
        lin__msgf(m, "nil");
        break;
    case LIN__OUT_VALUE:
        lin__msg_quote(m, lin__at(&h->bytes, r->out_off), r->out_len);
        break;
    case LIN__OUT_INT:
        lin__msgf(m, "%" PRId64, r->out_int);
        break;
    case LIN__OUT_ERROR:
        lin__msgf(m, "ERR");
        break;
    case LIN__OUT_APPLIED:
        lin__msgf(m, "OK");
        break;
    case LIN__OUT_NOT_APPLIED:
        lin__msgf(m, "nil");
        break;
    }
}

/* at most this many op ids of the prefix are listed (its last ones) */
#define LIN__PREFIX_SHOWN 8

static void lin__report_key(struct lin_report *rep, const struct lin__rec *r,
                            const struct lin_history *h, struct lin__msg *m)
{
    rep->key_len = r->key_len;
    memset(rep->key, 0, sizeof(rep->key));
    size_t n = TRIAD_MIN(r->key_len, sizeof(rep->key));
    if (n)
        memcpy(rep->key, lin__at(&h->bytes, r->key_off), n);
    m->len = 0;
    m->p[0] = '\0';
    lin__msgf(m, "key ");
    lin__msg_quote(m, lin__at(&h->bytes, r->key_off), r->key_len);
}

static void lin__report_violation(struct lin_report *rep, const struct lin__search *s,
                                  const struct lin__rec *key_rec)
{
    struct lin__msg m = {rep->msg, sizeof(rep->msg), 0};
    const struct lin_history *h = s->h;
    TRIAD_ASSERT(s->best_set);
    lin__report_key(rep, key_rec, h, &m);
    rep->bad_op = s->ops[s->best_blocked].id;
    lin__msgf(&m, ": not linearizable. Longest linearizable prefix: %" PRIu32 " of %" PRIu32 " ops",
              s->best_depth, s->n);
    if (s->best_depth > 0) {
        lin__msgf(&m, " (%s", s->best_depth > LIN__PREFIX_SHOWN ? "..., " : "");
        for (uint32_t d = s->best_depth > LIN__PREFIX_SHOWN ? s->best_depth - LIN__PREFIX_SHOWN : 0;
             d < s->best_depth; d++)
            lin__msgf(&m, "#%zu%s", s->ops[s->best_ops[d]].id, d + 1 < s->best_depth ? " " : "");
        lin__msgf(&m, ")");
    }
    lin__msgf(&m, ", leaving the value ");
    if (s->best_state == LIN__NIL)
        lin__msgf(&m, "nil");
    else
        lin__msg_quote(&m, lin__state_ptr(s, s->best_state), s->states[s->best_state].len);
    lin__msgf(&m, "; no op can follow it before ");
    lin__msg_op(&m, h, rep->bad_op);
    lin__msgf(&m, " returns");
}

static void lin__report_unknown(struct lin_report *rep, const struct lin__search *s,
                                const struct lin__rec *key_rec)
{
    struct lin__msg m = {rep->msg, sizeof(rep->msg), 0};
    lin__report_key(rep, key_rec, s->h, &m);
    if (s->bytes_exceeded)
        lin__msgf(&m, ": no answer: the search used more than %zu bytes",
                  (size_t)LIN_SEARCH_BYTES_MAX);
    else
        lin__msgf(&m, ": no answer within %" PRIu64 " search steps", s->steps_max);
    lin__msgf(&m,
              " (%" PRIu32 " ops, %" PRIu32 " of them unknown; %zu configurations explored, the"
              " longest linearizable prefix met has %" PRIu32 " ops)",
              s->n, s->n - s->n_ok, s->memos_count, s->depth_max);
}

/* ---- lin_check ---- */

static int lin__id_cmp(const void *pa, const void *pb, void *arg)
{
    const struct lin_history *h = arg;
    const struct lin__rec *a = &h->ops[*(const size_t *)pa], *b = &h->ops[*(const size_t *)pb];
    size_t n = TRIAD_MIN(a->key_len, b->key_len);
    int c = n ? memcmp(lin__at(&h->bytes, a->key_off), lin__at(&h->bytes, b->key_off), n) : 0;
    if (c != 0)
        return c;
    if (a->key_len != b->key_len)
        return a->key_len < b->key_len ? -1 : 1;
    if (a->call_time != b->call_time)
        return a->call_time < b->call_time ? -1 : 1;
    size_t ia = *(const size_t *)pa, ib = *(const size_t *)pb;
    return ia < ib ? -1 : ia > ib;
}

static bool lin__same_key(const struct lin_history *h, size_t a, size_t b)
{
    const struct lin__rec *ra = &h->ops[a], *rb = &h->ops[b];
    return lin__mem_eq(lin__at(&h->bytes, ra->key_off), ra->key_len,
                       lin__at(&h->bytes, rb->key_off), rb->key_len);
}

enum lin_result lin_check(const struct lin_history *h, uint64_t max_steps_per_key,
                          struct lin_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    rep->result = LIN_RESULT_OK;
    rep->bad_op = LIN_NO_OP;
    rep->ops_count = h->ops_count;
    for (size_t i = 0; i < h->ops_count; i++) {
        if (h->ops[i].status == LIN_FAIL)
            rep->ops_failed_count++;
        else if (h->ops[i].status != LIN_OK)
            rep->ops_unknown_count++;
    }

    size_t *ids = tmalloc((h->ops_count ? h->ops_count : 1) * sizeof(*ids));
    for (size_t i = 0; i < h->ops_count; i++)
        ids[i] = i;
    qsort_r(ids, h->ops_count, sizeof(*ids), lin__id_cmp, (void *)h);

    for (size_t start = 0, end; start < h->ops_count; start = end) {
        end = start + 1;
        while (end < h->ops_count && lin__same_key(h, ids[start], ids[end]))
            end++;
        rep->keys_count++;
        if (rep->result == LIN_RESULT_VIOLATION)
            continue; /* only counting keys now */

        struct lin__search s;
        lin__search_init(&s, h, ids + start, end - start, max_steps_per_key);
        enum lin_result r = lin__search_run(&s);
        rep->steps_count += s.steps;
        rep->search_bytes_max = TRIAD_MAX(rep->search_bytes_max, s.bytes_used);
        const struct lin__rec *key_rec = &h->ops[ids[start]];
        if (r == LIN_RESULT_VIOLATION) {
            rep->result = LIN_RESULT_VIOLATION;
            lin__report_violation(rep, &s, key_rec);
        } else if (r == LIN_RESULT_UNKNOWN) {
            rep->keys_unknown_count++;
            if (rep->result == LIN_RESULT_OK) {
                rep->result = LIN_RESULT_UNKNOWN;
                lin__report_unknown(rep, &s, key_rec);
            }
        }
        lin__search_free(&s);
    }
    tfree(ids);

    if (rep->result == LIN_RESULT_OK)
        snprintf(rep->msg, sizeof(rep->msg),
                 "linearizable: %zu ops (%zu failed, %zu unknown) over %zu keys, %" PRIu64
                 " search steps",
                 rep->ops_count, rep->ops_failed_count, rep->ops_unknown_count, rep->keys_count,
                 rep->steps_count);
    return rep->result;
}

const char *lin_result_name(enum lin_result r)
{
    switch (r) {
    case LIN_RESULT_OK:
        return "ok";
    case LIN_RESULT_VIOLATION:
        return "violation";
    case LIN_RESULT_UNKNOWN:
        return "unknown";
    }
    return "?";
}

/* ---- JSON ---- */

void lin_dump_json(const struct lin_history *h, struct tbuf *out)
{
    for (size_t id = 0; id < h->ops_count; id++) {
        const struct lin__rec *r = &h->ops[id];
        bool ok = r->status == LIN_OK, fail = r->status == LIN_FAIL;
        tbuf_appendf(out, "{\"id\":%zu,\"client\":%" PRIu32 ",\"op\":\"%s\",\"key\":", id,
                     r->client, lin__op_names[r->op]);
        lin__json_str(out, lin__at(&h->bytes, r->key_off), r->key_len);
        tbuf_appends(out, ",\"value\":");
        if (r->op == LIN_SET || r->op == LIN_SET_IFEQ || r->op == LIN_APPEND)
            lin__json_str(out, lin__at(&h->bytes, r->value_off), r->value_len);
        else
            tbuf_appends(out, "null");
        tbuf_appends(out, ",\"expected\":");
        if (r->op == LIN_SET_IFEQ)
            lin__json_str(out, lin__at(&h->bytes, r->expected_off), r->expected_len);
        else
            tbuf_appends(out, "null");
        tbuf_appendf(out, ",\"ok\":\"%s\",\"output\":", ok ? "ok" : fail ? "fail" : "unknown");
        if (!ok) {
            tbuf_appends(out, "null");
        } else {
            switch (r->out) {
            case LIN__OUT_NONE:
                tbuf_appends(out, "\"OK\"");
                break;
            case LIN__OUT_NIL:
                tbuf_appends(out, "null");
                break;
            case LIN__OUT_VALUE:
                lin__json_str(out, lin__at(&h->bytes, r->out_off), r->out_len);
                break;
            case LIN__OUT_INT:
                tbuf_appendf(out, "%" PRId64, r->out_int);
                break;
            case LIN__OUT_ERROR:
                tbuf_appends(out, "\"ERR\"");
                break;
            case LIN__OUT_APPLIED:
                tbuf_appends(out, "true");
                break;
            case LIN__OUT_NOT_APPLIED:
                tbuf_appends(out, "false");
                break;
            }
        }
        tbuf_appendf(out, ",\"call\":%" PRIu64 ",\"return\":", r->call_time);
        if (ok || fail)
            tbuf_appendf(out, "%" PRIu64 "}\n", r->return_time);
        else
            tbuf_appends(out, "null}\n");
    }
}

/* ---- loading JSON lines: the inverse of lin_dump_json ----
 *
 * A small strict reader for exactly the dump's shape, not a general JSON
 * parser: one flat object per line whose values are strings, integers,
 * null, true or false. Every byte of the input is looked at once, no
 * recursion, and nothing from the input reaches an assertion: each check
 * that lin_invoke and the completions assert is made here first, as an
 * error. */

enum lin__jkind { LIN__J_ABSENT, LIN__J_NULL, LIN__J_BOOL, LIN__J_INT, LIN__J_STR };

struct lin__jval {
    uint8_t kind;    /* enum lin__jkind */
    bool b;          /* J_BOOL */
    bool neg;        /* J_INT: below zero */
    uint64_t mag;    /* J_INT: the magnitude (so -2^63 fits) */
    size_t off, len; /* J_STR: the decoded bytes, in lin__reader.scratch */
    size_t col;      /* where the value starts (1-based), for errors */
};

enum lin__field {
    LIN__F_ID,
    LIN__F_CLIENT,
    LIN__F_OP,
    LIN__F_KEY,
    LIN__F_VALUE,
    LIN__F_EXPECTED,
    LIN__F_OK,
    LIN__F_OUTPUT,
    LIN__F_CALL,
    LIN__F_RETURN,
    LIN__F_COUNT,
};

static const char *const lin__field_names[LIN__F_COUNT] = {
    "id", "client", "op", "key", "value", "expected", "ok", "output", "call", "return",
};

/* one line of input, and the bytes its strings decode to */
struct lin__reader {
    const char *p;
    size_t len, pos;
    size_t line; /* 1-based */
    struct tbuf scratch;
    struct lin__jval vals[LIN__F_COUNT];
    char *errmsg;
    size_t errlen;
};

/* "line L, column C: <what>" into the caller's errmsg; returns rc */
static int lin__vrerr(struct lin__reader *rd, int rc, size_t col, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
static int lin__vrerr(struct lin__reader *rd, int rc, size_t col, const char *fmt, va_list ap)
{
    char what[256];
    vsnprintf(what, sizeof(what), fmt, ap);
    triad_errf(rd->errmsg, rd->errlen, "line %zu, column %zu: %s", rd->line, col, what);
    return rc;
}

/* an error at column col (1-based) */
static int lin__rerr_at(struct lin__reader *rd, int rc, size_t col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int lin__rerr_at(struct lin__reader *rd, int rc, size_t col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rc = lin__vrerr(rd, rc, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* a malformed line, at the reader's position */
static int lin__rerr(struct lin__reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int lin__rerr(struct lin__reader *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = lin__vrerr(rd, TRIAD_EPROTO, rd->pos + 1, fmt, ap);
    va_end(ap);
    return rc;
}

/* what stands at the reader's position, for "expected X, found Y" */
static const char *lin__found(const struct lin__reader *rd, char *buf, size_t size)
{
    if (rd->pos >= rd->len)
        return "the end of the line";
    unsigned char c = (unsigned char)rd->p[rd->pos];
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", c);
    return buf;
}

static int lin__expected(struct lin__reader *rd, const char *what)
{
    char buf[16];
    return lin__rerr(rd, "expected %s, found %s", what, lin__found(rd, buf, sizeof(buf)));
}

/* JSON's insignificant whitespace (a '\r' before the '\n' included) */
static void lin__skip_ws(struct lin__reader *rd)
{
    while (rd->pos < rd->len &&
           (rd->p[rd->pos] == ' ' || rd->p[rd->pos] == '\t' || rd->p[rd->pos] == '\r'))
        rd->pos++;
}

/* A string at rd->pos (its opening quote), decoded into scratch. Strings
 * hold bytes: \u0000-\u00ff are the bytes 0-255 and nothing above is
 * allowed; raw bytes must be printable ASCII (0x20-0x7f, not '"' or '\').
 * A raw byte >= 0x80 is refused rather than guessed at: in JSON it would
 * start a UTF-8 character, which is not what the dump means by a byte. */
static int lin__read_string(struct lin__reader *rd, size_t *off, size_t *len)
{
    TRIAD_ASSERT(rd->pos < rd->len && rd->p[rd->pos] == '"');
    size_t open_col = rd->pos + 1;
    rd->pos++;
    *off = rd->scratch.len;
    for (;;) {
        if (rd->pos >= rd->len)
            return lin__rerr_at(rd, TRIAD_EPROTO, open_col,
                                "the string that starts here is not closed before the end of "
                                "the line");
        unsigned char c = (unsigned char)rd->p[rd->pos];
        if (c == '"') {
            rd->pos++;
            break;
        }
        if (c < 0x20)
            return lin__rerr(rd, "raw control byte 0x%02x in a string (write it \\u%04x)", c, c);
        if (c >= 0x80)
            return lin__rerr(rd, "raw byte 0x%02x in a string: bytes above 0x7f are written "
                                 "\\u0080-\\u00ff", c);
        if (c != '\\') {
            tbuf_appendc(&rd->scratch, (char)c);
            rd->pos++;
            continue;
        }
        if (rd->pos + 1 >= rd->len)
            return lin__rerr(rd, "the line ends inside an escape");
        char e = rd->p[rd->pos + 1], byte;
        switch (e) {
        case '"':
        case '\\':
        case '/':
            byte = e;
            break;
        case 'b':
            byte = '\b';
            break;
        case 'f':
            byte = '\f';
            break;
        case 'n':
            byte = '\n';
            break;
        case 'r':
            byte = '\r';
            break;
        case 't':
            byte = '\t';
            break;
        case 'u': {
            unsigned v = 0;
            for (size_t i = 0; i < 4; i++) {
                int d = rd->pos + 2 + i < rd->len ? triad_hex_digit(rd->p[rd->pos + 2 + i]) : -1;
                if (d < 0)
                    return lin__rerr(rd, "bad \\u escape: it takes four hex digits");
                v = v * 16 + (unsigned)d;
            }
            if (v > 0xff)
                return lin__rerr(rd, "\\u%04x is not a byte: strings here hold bytes, "
                                     "\\u0000-\\u00ff", v);
            tbuf_appendc(&rd->scratch, (char)(unsigned char)v);
            rd->pos += 6;
            continue;
        }
        default: {
            char buf[16];
            rd->pos++;
            return lin__rerr(rd, "bad escape: '\\' then %s", lin__found(rd, buf, sizeof(buf)));
        }
        }
        tbuf_appendc(&rd->scratch, byte);
        rd->pos += 2;
    }
    *len = rd->scratch.len - *off;
    return 0;
}

/* an integer: JSON's syntax (no leading zeros, no '+'), no fraction or
 * exponent, magnitude at most UINT64_MAX */
static int lin__read_int(struct lin__reader *rd, struct lin__jval *v)
{
    v->kind = LIN__J_INT;
    v->neg = false;
    v->mag = 0;
    if (rd->p[rd->pos] == '-') {
        v->neg = true;
        rd->pos++;
    }
    size_t first = rd->pos;
    while (rd->pos < rd->len && rd->p[rd->pos] >= '0' && rd->p[rd->pos] <= '9') {
        unsigned d = (unsigned)(rd->p[rd->pos] - '0');
        if (v->mag > (UINT64_MAX - d) / 10)
            return lin__rerr_at(rd, TRIAD_EPROTO, v->col, "integer out of range");
        v->mag = v->mag * 10 + d;
        rd->pos++;
    }
    if (rd->pos == first)
        return lin__expected(rd, "a digit");
    if (rd->pos - first > 1 && rd->p[first] == '0')
        return lin__rerr_at(rd, TRIAD_EPROTO, first + 1, "a number with a leading zero");
    if (rd->pos < rd->len &&
        (rd->p[rd->pos] == '.' || rd->p[rd->pos] == 'e' || rd->p[rd->pos] == 'E'))
        return lin__rerr_at(rd, TRIAD_EPROTO, v->col, "not an integer: every number here is one");
    if (v->neg && v->mag == 0)
        v->neg = false; /* -0 is 0 */
    return 0;
}

static bool lin__read_literal(struct lin__reader *rd, const char *word)
{
    size_t n = strlen(word);
    if (rd->len - rd->pos < n || memcmp(rd->p + rd->pos, word, n) != 0)
        return false;
    rd->pos += n;
    return true;
}

static int lin__read_value(struct lin__reader *rd, struct lin__jval *v)
{
    v->col = rd->pos + 1;
    if (rd->pos >= rd->len)
        return lin__expected(rd, "a value");
    char c = rd->p[rd->pos];
    if (c == '"') {
        v->kind = LIN__J_STR;
        return lin__read_string(rd, &v->off, &v->len);
    }
    if (c == '-' || (c >= '0' && c <= '9'))
        return lin__read_int(rd, v);
    if (c == '{' || c == '[')
        return lin__rerr(rd, "a nested %s: values here are strings, integers, null, true or false",
                         c == '{' ? "object" : "array");
    if (lin__read_literal(rd, "null")) {
        v->kind = LIN__J_NULL;
        return 0;
    }
    if (lin__read_literal(rd, "true") || lin__read_literal(rd, "false")) {
        v->kind = LIN__J_BOOL;
        v->b = c == 't';
        return 0;
    }
    return lin__expected(rd, "a value (a string, an integer, null, true or false)");
}

/* The line's object into rd->vals; fields in any order, each at most once. */
static int lin__read_object(struct lin__reader *rd)
{
    int rc;
    for (size_t f = 0; f < LIN__F_COUNT; f++)
        rd->vals[f].kind = LIN__J_ABSENT;
    tbuf_reset(&rd->scratch);
    lin__skip_ws(rd);
    if (rd->pos >= rd->len || rd->p[rd->pos] != '{')
        return lin__expected(rd, "'{' (one object per line)");
    rd->pos++;
    lin__skip_ws(rd);
    if (rd->pos < rd->len && rd->p[rd->pos] == '}') {
        rd->pos++;
    } else {
        for (;;) {
            if (rd->pos >= rd->len || rd->p[rd->pos] != '"')
                return lin__expected(rd, "a field name");
            size_t name_col = rd->pos + 1, name_off, name_len;
            rc = lin__read_string(rd, &name_off, &name_len);
            if (rc != 0)
                return rc;
            const char *name = lin__at(&rd->scratch, name_off);
            size_t f = 0;
            while (f < LIN__F_COUNT && !lin__mem_eq(name, name_len, lin__field_names[f],
                                                    strlen(lin__field_names[f])))
                f++;
            if (f == LIN__F_COUNT) {
                struct tbuf q = {0};
                lin__json_escape(&q, name, TRIAD_MIN(name_len, (size_t)LIN__QUOTE_MAX));
                rc = lin__rerr_at(rd, TRIAD_EPROTO, name_col,
                                  "unknown field \"%.*s\"%s (fields: id, client, op, key, value, "
                                  "expected, ok, output, call, return)",
                                  (int)q.len, lin__at(&q, 0),
                                  name_len > LIN__QUOTE_MAX ? "..." : "");
                tbuf_free(&q);
                return rc;
            }
            if (rd->vals[f].kind != LIN__J_ABSENT)
                return lin__rerr_at(rd, TRIAD_EPROTO, name_col, "field \"%s\" given twice",
                                    lin__field_names[f]);
            lin__skip_ws(rd);
            if (rd->pos >= rd->len || rd->p[rd->pos] != ':')
                return lin__expected(rd, "':' after a field name");
            rd->pos++;
            lin__skip_ws(rd);
            rc = lin__read_value(rd, &rd->vals[f]);
            if (rc != 0)
                return rc;
            lin__skip_ws(rd);
            if (rd->pos < rd->len && rd->p[rd->pos] == ',') {
                rd->pos++;
                lin__skip_ws(rd);
                continue;
            }
            if (rd->pos < rd->len && rd->p[rd->pos] == '}') {
                rd->pos++;
                break;
            }
            return lin__expected(rd, "',' or '}'");
        }
    }
    lin__skip_ws(rd);
    if (rd->pos < rd->len)
        return lin__expected(rd, "the end of the line after the object");
    return 0;
}

static const char *lin__jkind_name(uint8_t kind)
{
    switch (kind) {
    case LIN__J_ABSENT:
        return "absent";
    case LIN__J_NULL:
        return "null";
    case LIN__J_BOOL:
        return "a boolean";
    case LIN__J_INT:
        return "an integer";
    case LIN__J_STR:
        return "a string";
    }
    return "?";
}

/* a short rendering of a value for an error: an integer or a string
 * itself, else its kind */
static void lin__jval_show(const struct lin__reader *rd, const struct lin__jval *v, struct tbuf *t)
{
    if (v->kind == LIN__J_INT) {
        tbuf_appendf(t, "%s%" PRIu64, v->neg ? "-" : "", v->mag);
    } else if (v->kind == LIN__J_STR) {
        tbuf_appendc(t, '"');
        lin__json_escape(t, lin__at(&rd->scratch, v->off), TRIAD_MIN(v->len, (size_t)LIN__QUOTE_MAX));
        tbuf_appends(t, v->len > LIN__QUOTE_MAX ? "\"..." : "\"");
    } else if (v->kind == LIN__J_BOOL) {
        tbuf_appends(t, v->b ? "true" : "false");
    } else {
        tbuf_appends(t, lin__jkind_name(v->kind));
    }
}

/* an error about field f's value */
static int lin__field_err(struct lin__reader *rd, enum lin__field f, const char *want)
{
    const struct lin__jval *v = &rd->vals[f];
    struct tbuf t = {0};
    lin__jval_show(rd, v, &t);
    int rc = lin__rerr_at(rd, TRIAD_EPROTO, v->col, "\"%s\" must be %s, not %.*s",
                          lin__field_names[f], want, (int)t.len, lin__at(&t, 0));
    tbuf_free(&t);
    return rc;
}

static bool lin__jstr_is(const struct lin__reader *rd, const struct lin__jval *v, const char *s)
{
    return v->kind == LIN__J_STR &&
           lin__mem_eq(lin__at(&rd->scratch, v->off), v->len, s, strlen(s));
}

static bool lin__ju64(const struct lin__jval *v, uint64_t max, uint64_t *out)
{
    if (v->kind != LIN__J_INT || v->neg || v->mag > max)
        return false;
    *out = v->mag;
    return true;
}

/* Check the object read from one line and add its op to h. */
static int lin__load_op(struct lin_history *h, struct lin__reader *rd)
{
    const struct lin__jval *v = rd->vals;
    for (size_t f = 0; f < LIN__F_COUNT; f++)
        if (f != LIN__F_ID && v[f].kind == LIN__J_ABSENT)
            return lin__rerr_at(rd, TRIAD_EPROTO, 1, "missing field \"%s\"", lin__field_names[f]);
    if (h->ops_count >= LIN_OPS_MAX)
        return lin__rerr_at(rd, TRIAD_ELIMIT, 1, "more than %u ops", (unsigned)LIN_OPS_MAX);

    uint64_t id = h->ops_count, client, call, ret = 0;
    if (v[LIN__F_ID].kind != LIN__J_ABSENT) {
        if (!lin__ju64(&v[LIN__F_ID], UINT64_MAX, &id))
            return lin__field_err(rd, LIN__F_ID, "an integer >= 0");
        if (id != h->ops_count)
            return lin__rerr_at(rd, TRIAD_EPROTO, v[LIN__F_ID].col,
                                "\"id\" is %" PRIu64 " but this is op %zu of the history (ids "
                                "count 0, 1, 2, ... in file order)",
                                id, h->ops_count);
    }
    if (!lin__ju64(&v[LIN__F_CLIENT], UINT32_MAX, &client))
        return lin__field_err(rd, LIN__F_CLIENT, "an integer 0..4294967295");

    enum lin_op op = LIN_GET;
    size_t k = 0;
    while (k < TRIAD_ARRAY_LEN(lin__op_names) && !lin__jstr_is(rd, &v[LIN__F_OP], lin__op_names[k]))
        k++;
    if (k == TRIAD_ARRAY_LEN(lin__op_names))
        return lin__field_err(rd, LIN__F_OP, "one of get, set, set_ifeq, append, incr");
    op = (enum lin_op)k;

    if (v[LIN__F_KEY].kind != LIN__J_STR)
        return lin__field_err(rd, LIN__F_KEY, "a string");
    bool takes_value = op == LIN_SET || op == LIN_SET_IFEQ || op == LIN_APPEND;
    if (v[LIN__F_VALUE].kind != (takes_value ? LIN__J_STR : LIN__J_NULL))
        return lin__field_err(rd, LIN__F_VALUE,
                              takes_value ? "a string for this op" : "null for this op");
    if (v[LIN__F_EXPECTED].kind != (op == LIN_SET_IFEQ ? LIN__J_STR : LIN__J_NULL))
        return lin__field_err(rd, LIN__F_EXPECTED,
                              op == LIN_SET_IFEQ ? "a string for set_ifeq" : "null for this op");

    enum lin_status status;
    if (lin__jstr_is(rd, &v[LIN__F_OK], "ok"))
        status = LIN_OK;
    else if (lin__jstr_is(rd, &v[LIN__F_OK], "fail"))
        status = LIN_FAIL;
    else if (lin__jstr_is(rd, &v[LIN__F_OK], "unknown"))
        status = LIN_UNKNOWN;
    else
        return lin__field_err(rd, LIN__F_OK, "\"ok\", \"fail\" or \"unknown\"");

    if (!lin__ju64(&v[LIN__F_CALL], UINT64_MAX, &call))
        return lin__field_err(rd, LIN__F_CALL, "an integer >= 0");
    if (status == LIN_UNKNOWN) {
        if (v[LIN__F_RETURN].kind != LIN__J_NULL)
            return lin__field_err(rd, LIN__F_RETURN, "null for an unknown op");
    } else {
        if (!lin__ju64(&v[LIN__F_RETURN], UINT64_MAX, &ret))
            return lin__field_err(rd, LIN__F_RETURN, "an integer >= 0 for an ok or failed op");
        if (ret < call)
            return lin__rerr_at(rd, TRIAD_EPROTO, v[LIN__F_RETURN].col,
                                "\"return\" %" PRIu64 " is before \"call\" %" PRIu64, ret, call);
    }

    /* the output, checked before anything is recorded */
    const struct lin__jval *out = &v[LIN__F_OUTPUT];
    uint64_t out_u = 0;
    int64_t out_i = 0;
    bool incr_err = false;
    if (status != LIN_OK) {
        if (out->kind != LIN__J_NULL)
            return lin__field_err(rd, LIN__F_OUTPUT, "null for an op that is not ok");
    } else {
        switch (op) {
        case LIN_GET:
            if (out->kind != LIN__J_STR && out->kind != LIN__J_NULL)
                return lin__field_err(rd, LIN__F_OUTPUT, "a string or null for get");
            break;
        case LIN_SET:
            if (!lin__jstr_is(rd, out, "OK"))
                return lin__field_err(rd, LIN__F_OUTPUT, "\"OK\" for an ok set");
            break;
        case LIN_SET_IFEQ:
            if (out->kind != LIN__J_BOOL)
                return lin__field_err(rd, LIN__F_OUTPUT, "true or false for set_ifeq");
            break;
        case LIN_APPEND:
            if (!lin__ju64(out, INT64_MAX, &out_u))
                return lin__field_err(rd, LIN__F_OUTPUT, "an integer 0..2^63-1 for append");
            break;
        case LIN_INCR:
            if (lin__jstr_is(rd, out, "ERR")) {
                incr_err = true;
            } else if (out->kind == LIN__J_INT && !out->neg && out->mag <= INT64_MAX) {
                out_i = (int64_t)out->mag;
            } else if (out->kind == LIN__J_INT && out->neg && out->mag <= (uint64_t)INT64_MAX + 1) {
                out_i = out->mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)out->mag;
            } else {
                return lin__field_err(rd, LIN__F_OUTPUT, "a 64-bit integer or \"ERR\" for incr");
            }
            break;
        }
    }

    const struct lin__jval *key = &v[LIN__F_KEY], *val = &v[LIN__F_VALUE],
                           *exp = &v[LIN__F_EXPECTED];
    size_t got = lin_invoke(
        h, (uint32_t)client, op, lin__at(&rd->scratch, key->off), key->len,
        takes_value ? lin__at(&rd->scratch, val->off) : NULL, takes_value ? val->len : 0,
        op == LIN_SET_IFEQ ? lin__at(&rd->scratch, exp->off) : NULL,
        op == LIN_SET_IFEQ ? exp->len : 0, call);
    TRIAD_ASSERT(got == id);
    if (status == LIN_UNKNOWN) {
        lin_unknown(h, got);
        return 0;
    }
    if (status == LIN_FAIL) {
        lin_fail(h, got, ret);
        return 0;
    }
    switch (op) {
    case LIN_GET:
        if (out->kind == LIN__J_NULL)
            lin_complete_get_nil(h, got, ret);
        else
            lin_complete_get(h, got, lin__at(&rd->scratch, out->off), out->len, ret);
        break;
    case LIN_SET:
        lin_complete_set(h, got, ret);
        break;
    case LIN_SET_IFEQ:
        lin_complete_ifeq(h, got, out->b, ret);
        break;
    case LIN_APPEND:
        lin_complete_append(h, got, out_u, ret);
        break;
    case LIN_INCR:
        if (incr_err)
            lin_complete_incr_error(h, got, ret);
        else
            lin_complete_incr(h, got, out_i, ret);
        break;
    }
    return 0;
}

int lin_load_json(struct lin_history *h, const char *text, size_t len, char *errmsg,
                  size_t errlen)
{
    TRIAD_ASSERT(text != NULL || len == 0);
    size_t ops_before = h->ops_count, bytes_before = h->bytes.len;
    struct lin__reader rd;
    memset(&rd, 0, sizeof(rd));
    rd.errmsg = errmsg;
    rd.errlen = errlen;
    triad_errf(errmsg, errlen, "%s", "");
    int rc = 0;
    size_t start = 0;
    for (size_t line = 1; start < len && rc == 0; line++) {
        const char *nl = memchr(text + start, '\n', len - start);
        size_t end = nl != NULL ? (size_t)(nl - text) : len;
        rd.p = text + start;
        rd.len = end - start;
        rd.pos = 0;
        rd.line = line;
        lin__skip_ws(&rd);
        if (rd.pos < rd.len) { /* blank lines are skipped */
            rc = lin__read_object(&rd);
            if (rc == 0)
                rc = lin__load_op(h, &rd);
        }
        start = end + 1;
    }
    tbuf_free(&rd.scratch);
    if (rc != 0) {
        /* all or nothing: the ops of the lines before the bad one go too */
        h->ops_count = ops_before;
        h->bytes.len = bytes_before;
    }
    TRIAD_ASSERT(rc != 0 || h->ops_count >= ops_before);
    return rc;
}
