/* lincheck.h - a linearizability checker for the simulator's client histories.
 *
 * The simulator records every operation its clients issue against the
 * replicated key-value store: when it was called, when (and whether) it
 * returned, and what it returned. lin_check() decides whether some total
 * order of those operations (a) respects real time, (b) contains every
 * operation that took effect, and (c) gives every operation the output a
 * single-copy key-value store would have given (Herlihy & Wing 1990).
 *
 * The model is a map from string keys to byte strings with Redis semantics;
 * the state of a key is nil or a byte string:
 *   GET k            -> the value, or nil
 *   SET k v          -> OK
 *   SET k v IFEQ e   -> OK if k exists and holds exactly e (then k := v),
 *                       else nil and nothing changes
 *   APPEND k v       -> the new length (creates k if missing)
 *   INCR k           -> missing counts as "0"; a canonical base-10 int64
 *                       (no '+', no leading zeros, no "-0", no spaces, no
 *                       overflow on +1) becomes n+1, which is returned;
 *                       anything else is an error and changes nothing. The
 *                       error is an output like any other: the model must
 *                       predict it.
 *
 * Completion status of an operation:
 *   LIN_OK       it took effect exactly once, with the recorded output;
 *   LIN_FAIL     it definitely did not take effect (dropped by the check);
 *   LIN_UNKNOWN  it may have taken effect, at any moment after its call
 *                (return time +infinity, output unconstrained). Ops still
 *                LIN_PENDING when lin_check() runs count as LIN_UNKNOWN.
 * A client runs one operation at a time, but after an UNKNOWN it goes on:
 * an UNKNOWN op is concurrent with everything called after it.
 *
 * Real-time order: a precedes b only when a.return < b.call. An op that
 * returns at exactly the time another is called is concurrent with it
 * (equal timestamps say nothing about which happened first). Time units
 * do not matter to the checker.
 *
 * Algorithm: Wing & Gong's backtracking search (J. Parallel Distrib.
 * Comput. 1993) with Lowe's memo of visited configurations ("Testing for
 * linearizability", CCPE 2017): a configuration is the set of ops already
 * linearized (a bitset) plus the model state after them, and each is
 * explored once. Each key is checked on its own (P-compositionality,
 * Horn & Kroening 2015): every op touches one key, and a history is
 * linearizable iff each key's sub-history is.
 *
 * A read-only op that fits the current state is placed at once (no
 * branching: this loses no linearization), and the other candidates are
 * tried lazily, those the earliest-returning op needs first. Both only
 * make a valid history quicker to find; neither changes an answer.
 *
 * Cost: a step is one candidate op examined (one model transition and one
 * memo probe). Measured on random valid histories: about 6 ops concurrent
 * on a key take a few hundred steps per op, about 10 a few thousand; the
 * work grows exponentially with the ops concurrent on one key, above all
 * when proving a violation amid many concurrent writes or UNKNOWNs.
 *
 * Limits: each key's search takes at most max_steps_per_key steps and
 * LIN_SEARCH_BYTES_MAX bytes of memo and states; past either the key's
 * answer is LIN_RESULT_UNKNOWN, never "linearizable". A history holds at
 * most LIN_OPS_MAX ops.
 *
 * Ownership: the history copies every key, value and output it is given;
 * callers' buffers are borrowed only for the duration of the call.
 * No global state: histories are independent of each other.
 */
#ifndef TRIAD_LINCHECK_H
#define TRIAD_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../src/common/buf.h"

#define LIN_OPS_MAX (1u << 30)
/* memo + model states of one key's search; past it the key is UNKNOWN */
#define LIN_SEARCH_BYTES_MAX ((size_t)1 << 30)
/* A sensible max_steps_per_key. Measured (x86-64, -O2): 20-30 M steps/s;
 * a key that spends all 10 M took about 0.5-1.2 s and up to 120 MB. */
#define LIN_STEPS_PER_KEY_DEFAULT 10000000u
#define LIN_REPORT_KEY_SIZE 64
#define LIN_REPORT_MSG_SIZE 1024
#define LIN_NO_OP SIZE_MAX

enum lin_op { LIN_GET, LIN_SET, LIN_SET_IFEQ, LIN_APPEND, LIN_INCR };
enum lin_status { LIN_PENDING, LIN_OK, LIN_FAIL, LIN_UNKNOWN };

enum lin_result {
    LIN_RESULT_OK = 0,        /* linearizable */
    LIN_RESULT_VIOLATION = 1, /* definitely not linearizable */
    LIN_RESULT_UNKNOWN = 2,   /* a key's search hit its bound: no answer */
};

struct lin__rec; /* one recorded op; lincheck.c */

/* A zeroed struct (or lin_history_init) is an empty history. */
struct lin_history {
    struct lin__rec *ops; /* ops_count records; an op id indexes it */
    size_t ops_count;
    size_t ops_cap;
    struct tbuf bytes; /* copies of every key, argument and output */
};

struct lin_report {
    enum lin_result result;
    size_t ops_count;         /* every op recorded */
    size_t ops_failed_count;  /* LIN_FAIL: dropped before the search */
    size_t ops_unknown_count; /* LIN_UNKNOWN or still LIN_PENDING */
    size_t keys_count;        /* distinct keys */
    size_t keys_unknown_count; /* keys whose search hit a bound */
    uint64_t steps_count;     /* search steps, summed over keys */
    size_t search_bytes_max;  /* the most memory one key's search took */
    /* On VIOLATION: the op that could not be placed after the longest
     * linearizable prefix found; LIN_NO_OP otherwise. */
    size_t bad_op;
    /* On VIOLATION the violating key, on UNKNOWN the first key without an
     * answer (keys are checked in byte order): its length and its first
     * LIN_REPORT_KEY_SIZE bytes. */
    size_t key_len;
    char key[LIN_REPORT_KEY_SIZE];
    /* One NUL-terminated line for a human: the key, the prefix and the op
     * that could not follow it, or which bound was hit. */
    char msg[LIN_REPORT_MSG_SIZE];
};

void lin_history_init(struct lin_history *h);
void lin_history_free(struct lin_history *h); /* h is empty and reusable after */

/* Record the call of an op; returns its id (0, 1, 2, ... in call order of
 * this function). Arguments by op: GET and INCR take no value; SET and
 * APPEND take value; SET_IFEQ takes value and expected. Unused pointers
 * may be NULL with length 0. The op is LIN_PENDING until completed. */
size_t lin_invoke(struct lin_history *h, uint32_t client, enum lin_op op, const void *key,
                  size_t klen, const void *value, size_t vlen, const void *expected, size_t elen,
                  uint64_t call_time);

/* Completions: each takes a LIN_PENDING op of the matching kind, marks it
 * LIN_OK with the given output, and return_time >= its call_time. */
void lin_complete_get(struct lin_history *h, size_t id, const void *value, size_t vlen,
                      uint64_t return_time);
void lin_complete_get_nil(struct lin_history *h, size_t id, uint64_t return_time);
void lin_complete_set(struct lin_history *h, size_t id, uint64_t return_time);
void lin_complete_ifeq(struct lin_history *h, size_t id, bool applied, uint64_t return_time);
void lin_complete_append(struct lin_history *h, size_t id, uint64_t new_len,
                         uint64_t return_time);
void lin_complete_incr(struct lin_history *h, size_t id, int64_t new_value,
                       uint64_t return_time);
void lin_complete_incr_error(struct lin_history *h, size_t id, uint64_t return_time);
/* The op definitely did not take effect (e.g. refused before reaching the
 * log). return_time is kept for the dump only. */
void lin_fail(struct lin_history *h, size_t id, uint64_t return_time);
/* The op may or may not take effect (timeout, lost connection). */
void lin_unknown(struct lin_history *h, size_t id);

/* Check the history. Does not modify it; may be called again after more
 * ops are recorded. Fills *rep (every field) and returns rep->result. A
 * VIOLATION on any key wins over UNKNOWN on others; the search stops at
 * the first violating key. */
enum lin_result lin_check(const struct lin_history *h, uint64_t max_steps_per_key,
                          struct lin_report *rep);

const char *lin_result_name(enum lin_result r); /* "ok", "violation", "unknown" */

/* Append the history to out as JSON lines, one op per line in id order:
 *   {"id":0,"client":1,"op":"set","key":"a","value":"x","expected":null,
 *    "ok":"ok","output":"OK","call":10,"return":20}
 * op is get|set|set_ifeq|append|incr; ok is ok|fail|unknown (pending ops
 * are unknown). output by op when ok: GET a string or null (nil), SET "OK",
 * SET_IFEQ true (applied) or false, APPEND and INCR an integer, INCR error
 * the string "ERR"; null when the op is not ok. return is null for
 * unknown ops. Strings are bytes: '"' and '\\' are escaped, every byte
 * below 0x20, 0x7f and every byte >= 0x80 becomes \u00XX (so a reader
 * gets the bytes back as code points 0..255). */
void lin_dump_json(const struct lin_history *h, struct tbuf *out);

/* The inverse of lin_dump_json: append the ops of len bytes of JSON lines
 * (text need not be NUL-terminated) to h, in file order. Returns 0, or
 * TRIAD_EPROTO for malformed input and TRIAD_ELIMIT past LIN_OPS_MAX ops,
 * with "line L, column C: what" in errmsg (errlen bytes, NUL-terminated;
 * NULL/0 allowed). On error h is as it was before the call.
 *
 * Strict, for exactly the dump's shape: one object per line (lines of
 * whitespace only are skipped; '\r' before '\n' is whitespace); its
 * fields in any order, each at most once, no others. Every field but
 * "id" is required, with the types the dump gives them for the op and
 * status ("value" null unless the op takes one, "output" null unless ok,
 * "return" null exactly when unknown and >= "call" otherwise). "id" may be
 * left out; when present it must equal the id the op gets in h (its
 * position in the file, 0, 1, 2, ..., when h starts empty), so the op ids
 * lin_check reports are the file's ids.
 * Numbers are JSON integers (no fraction or exponent). Strings are bytes:
 * the escapes \" \\ \/ \b \f \n \r \t and \u0000-\u00ff (one byte
 * each; anything above \u00ff is refused), and raw bytes 0x20-0x7f; raw
 * control bytes and raw bytes >= 0x80 (UTF-8 in JSON) are refused. Any input, however
 * malformed, gives an error, never an assertion. */
int lin_load_json(struct lin_history *h, const char *text, size_t len, char *errmsg,
                  size_t errlen);

#endif
