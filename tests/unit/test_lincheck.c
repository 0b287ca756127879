/* test_lincheck.c - the simulator's linearizability checker: exact small
 * histories for each rule, the work bound, the JSON dump, random valid
 * histories from a simulated linearizable store (and the same with one read
 * corrupted), and agreement with brute-force enumeration on small ones. */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../sim/lincheck.h"
#include "../../src/common/buf.h"
#include "../../src/common/defs.h"
#include "../../src/common/mem.h"
#include "test.h"

#define STEPS 1000000u

/* ---- building histories by hand ---- */

static size_t h_invoke(struct lin_history *h, uint32_t c, enum lin_op op, const char *k,
                       const char *v, const char *e, uint64_t t)
{
    return lin_invoke(h, c, op, k, strlen(k), v, v ? strlen(v) : 0, e, e ? strlen(e) : 0, t);
}

static size_t h_set(struct lin_history *h, uint32_t c, const char *k, const char *v, uint64_t t0,
                    uint64_t t1)
{
    size_t id = h_invoke(h, c, LIN_SET, k, v, NULL, t0);
    lin_complete_set(h, id, t1);
    return id;
}

/* v NULL: the read returned nil */
static size_t h_get(struct lin_history *h, uint32_t c, const char *k, const char *v, uint64_t t0,
                    uint64_t t1)
{
    size_t id = h_invoke(h, c, LIN_GET, k, NULL, NULL, t0);
    if (v)
        lin_complete_get(h, id, v, strlen(v), t1);
    else
        lin_complete_get_nil(h, id, t1);
    return id;
}

static size_t h_ifeq(struct lin_history *h, uint32_t c, const char *k, const char *v,
                     const char *e, bool applied, uint64_t t0, uint64_t t1)
{
    size_t id = h_invoke(h, c, LIN_SET_IFEQ, k, v, e, t0);
    lin_complete_ifeq(h, id, applied, t1);
    return id;
}

static size_t h_append(struct lin_history *h, uint32_t c, const char *k, const char *v,
                       uint64_t len, uint64_t t0, uint64_t t1)
{
    size_t id = h_invoke(h, c, LIN_APPEND, k, v, NULL, t0);
    lin_complete_append(h, id, len, t1);
    return id;
}

static size_t h_incr(struct lin_history *h, uint32_t c, const char *k, int64_t v, uint64_t t0,
                     uint64_t t1)
{
    size_t id = h_invoke(h, c, LIN_INCR, k, NULL, NULL, t0);
    lin_complete_incr(h, id, v, t1);
    return id;
}

static size_t h_incr_err(struct lin_history *h, uint32_t c, const char *k, uint64_t t0,
                         uint64_t t1)
{
    size_t id = h_invoke(h, c, LIN_INCR, k, NULL, NULL, t0);
    lin_complete_incr_error(h, id, t1);
    return id;
}

static size_t h_unknown(struct lin_history *h, uint32_t c, enum lin_op op, const char *k,
                        const char *v, uint64_t t0)
{
    size_t id = h_invoke(h, c, op, k, v, NULL, t0);
    lin_unknown(h, id);
    return id;
}

static enum lin_result check(struct lin_history *h, struct lin_report *rep)
{
    return lin_check(h, STEPS, rep);
}

static bool key_is(const struct lin_report *rep, const char *k)
{
    return rep->key_len == strlen(k) && memcmp(rep->key, k, rep->key_len) == 0;
}

/* ---- exact small histories ---- */

TEST(lin_accepts_sequential_history_of_every_op_kind)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_get(&h, 1, "a", NULL, 0, 1);
    h_set(&h, 1, "a", "x", 2, 3);
    h_get(&h, 2, "a", "x", 4, 5);
    h_ifeq(&h, 1, "a", "y", "x", true, 6, 7);
    h_ifeq(&h, 2, "a", "z", "x", false, 8, 9);
    h_ifeq(&h, 2, "missing", "z", "", false, 8, 9);
    h_append(&h, 1, "a", "12", 3, 10, 11);
    h_get(&h, 2, "a", "y12", 12, 13);
    h_incr_err(&h, 1, "a", 14, 15);
    h_set(&h, 1, "a", "41", 16, 17);
    h_incr(&h, 2, "a", 42, 18, 19);
    h_incr(&h, 2, "n", 1, 18, 19);
    h_append(&h, 1, "n", "0", 2, 20, 21);
    h_incr(&h, 1, "n", 11, 22, 23);
    h_get(&h, 3, "n", "11", 24, 25);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    CHECK_EQ_INT(rep.result, LIN_RESULT_OK);
    CHECK_EQ_INT(rep.ops_count, 15);
    CHECK_EQ_INT(rep.keys_count, 3);
    CHECK_EQ_INT(rep.ops_failed_count, 0);
    CHECK_EQ_INT(rep.ops_unknown_count, 0);
    CHECK_EQ_INT(rep.keys_unknown_count, 0);
    CHECK(rep.bad_op == LIN_NO_OP);
    CHECK(rep.steps_count >= 15);
    CHECK(strstr(rep.msg, "linearizable") != NULL);
    lin_history_free(&h);
}

TEST(lin_accepts_empty_history)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    CHECK_EQ_INT(rep.keys_count, 0);
    CHECK_EQ_INT(rep.steps_count, 0);
    lin_history_free(&h);
}

TEST(lin_rejects_stale_read_after_completed_write)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "old", 0, 10);
    h_set(&h, 1, "a", "new", 20, 30);
    size_t bad = h_get(&h, 2, "a", "old", 40, 50);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    CHECK(key_is(&rep, "a"));
    CHECK_EQ_INT(rep.bad_op, bad);
    /* the explanation names the prefix, the state it leaves, and the op */
    CHECK(strstr(rep.msg, "key \"a\"") != NULL);
    CHECK(strstr(rep.msg, "2 of 3 ops (#0 #1)") != NULL);
    CHECK(strstr(rep.msg, "leaving the value \"new\"") != NULL);
    CHECK(strstr(rep.msg, "#2 (client 2, call 40, return 50) get -> \"old\"") != NULL);
    lin_history_free(&h);
}

TEST(lin_accepts_concurrent_write_and_read_in_either_order)
{
    for (int seen_new = 0; seen_new < 2; seen_new++) {
        struct lin_history h;
        struct lin_report rep;
        lin_history_init(&h);
        h_set(&h, 1, "a", "old", 0, 10);
        h_set(&h, 1, "a", "new", 20, 40);
        h_get(&h, 2, "a", seen_new ? "new" : "old", 25, 35);
        h_get(&h, 3, "a", "new", 41, 42);
        CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
        lin_history_free(&h);
    }
}

/* The documented rule: a precedes b only when a.return < b.call. */
TEST(lin_treats_a_return_equal_to_a_call_as_concurrent)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 10, 20);
    h_get(&h, 2, "a", NULL, 20, 30); /* may come first */
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    lin_history_free(&h);

    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 10, 20);
    h_get(&h, 2, "a", NULL, 21, 30); /* one unit later: ordered after the SET */
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);
}

TEST(lin_rejects_two_ifeq_applied_on_the_same_expected_value)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "v0", 0, 10);
    h_ifeq(&h, 1, "a", "v1", "v0", true, 20, 40);
    h_ifeq(&h, 2, "a", "v2", "v0", true, 21, 41);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    CHECK(key_is(&rep, "a"));
    lin_history_free(&h);
}

TEST(lin_accepts_one_ifeq_applied_and_one_not_on_the_same_expected_value)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "v0", 0, 10);
    h_ifeq(&h, 1, "a", "v1", "v0", false, 20, 40);
    h_ifeq(&h, 2, "a", "v2", "v0", true, 21, 41);
    h_get(&h, 3, "a", "v2", 50, 60);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    lin_history_free(&h);
}

TEST(lin_rejects_ifeq_applied_on_a_missing_key)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_ifeq(&h, 1, "a", "v1", "", true, 0, 10);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);
    lin_history_init(&h);
    h_set(&h, 1, "a", "", 0, 1); /* an empty value exists: IFEQ "" applies */
    h_ifeq(&h, 1, "a", "v1", "", true, 2, 10);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    lin_history_free(&h);
}

TEST(lin_rejects_append_lengths_that_imply_a_lost_append)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    /* two concurrent appends of 1 byte to "" : lengths must be 1 and 2 */
    h_append(&h, 1, "a", "x", 1, 0, 10);
    h_append(&h, 2, "a", "y", 1, 5, 15);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);

    lin_history_init(&h);
    h_append(&h, 1, "a", "x", 1, 0, 10);
    h_append(&h, 2, "a", "y", 2, 5, 15);
    h_get(&h, 3, "a", "xy", 20, 30);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    lin_history_free(&h);

    /* lengths fine, but the read shows the appends in the other order */
    lin_history_init(&h);
    h_append(&h, 1, "a", "x", 1, 0, 10);
    h_append(&h, 2, "a", "y", 2, 5, 15);
    h_get(&h, 3, "a", "yx", 20, 30);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);
}

TEST(lin_rejects_incr_value_returned_to_two_clients)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "n", "5", 0, 1);
    h_incr(&h, 1, "n", 6, 10, 20);
    h_incr(&h, 2, "n", 6, 11, 21);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);

    /* the same with 6 and 7 is fine; a later read of 6 means one was lost */
    lin_history_init(&h);
    h_set(&h, 1, "n", "5", 0, 1);
    h_incr(&h, 1, "n", 7, 10, 20);
    h_incr(&h, 2, "n", 6, 11, 21);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    h_get(&h, 3, "n", "6", 30, 31);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);
}

/* SET v; INCR. The model predicts Redis's outcome exactly, and the other
 * outcome is a violation. */
TEST(lin_predicts_incr_errors_by_redis_integer_rules)
{
    static const struct {
        const char *value; /* NULL: the key is missing */
        bool ok;
        int64_t result;
    } cases[] = {
        {NULL, true, 1},
        {"0", true, 1},
        {"-1", true, 0},
        {"41", true, 42},
        {"-9223372036854775808", true, INT64_MIN + 1},
        {"9223372036854775806", true, INT64_MAX},
        {"9223372036854775807", false, 0}, /* +1 overflows */
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"", false, 0},
        {"+1", false, 0},
        {"01", false, 0},
        {"00", false, 0},
        {"-0", false, 0},
        {"-", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1.5", false, 0},
        {"abc", false, 0},
        {"123456789012345678901", false, 0},
    };
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(cases); i++) {
        for (int wrong = 0; wrong < 2; wrong++) {
            struct lin_history h;
            struct lin_report rep;
            lin_history_init(&h);
            if (cases[i].value)
                h_set(&h, 1, "n", cases[i].value, 0, 1);
            bool claim_ok = cases[i].ok != (wrong == 1);
            if (claim_ok)
                h_incr(&h, 1, "n", cases[i].ok ? cases[i].result : 1, 2, 3);
            else
                h_incr_err(&h, 1, "n", 2, 3);
            enum lin_result r = check(&h, &rep);
            if (r != (wrong ? LIN_RESULT_VIOLATION : LIN_RESULT_OK))
                fprintf(stderr, "  case \"%s\" wrong=%d: %s\n",
                        cases[i].value ? cases[i].value : "(missing)", wrong, rep.msg);
            CHECK_EQ_INT(r, wrong ? LIN_RESULT_VIOLATION : LIN_RESULT_OK);
            lin_history_free(&h);
        }
    }
}

TEST(lin_rejects_incr_error_on_an_integer_and_accepts_it_on_text)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "n", "abc", 0, 1);
    h_incr_err(&h, 2, "n", 2, 3);
    h_get(&h, 2, "n", "abc", 4, 5); /* the error changed nothing */
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    h_set(&h, 1, "n", "10", 6, 7);
    h_incr_err(&h, 2, "n", 8, 9);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    CHECK_EQ_INT(rep.bad_op, 4);
    lin_history_free(&h);
}

TEST(lin_accepts_unknown_write_that_a_later_read_sees)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 0, 10);
    h_unknown(&h, 1, LIN_SET, "a", "u", 20);
    h_get(&h, 1, "a", "x", 30, 40); /* not yet */
    h_get(&h, 2, "a", "u", 100, 110);
    h_get(&h, 2, "a", "u", 120, 130);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    CHECK_EQ_INT(rep.ops_unknown_count, 1);
    /* once seen it cannot be unseen: it took effect once */
    h_get(&h, 2, "a", "x", 140, 150);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);
}

TEST(lin_accepts_unknown_write_never_seen)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 0, 10);
    h_unknown(&h, 1, LIN_SET, "a", "u", 20);
    h_unknown(&h, 1, LIN_APPEND, "a", "zz", 25);
    h_unknown(&h, 1, LIN_INCR, "a", NULL, 26);
    h_get(&h, 2, "a", "x", 30, 40);
    h_get(&h, 2, "a", "x", 1000, 1010);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    lin_history_free(&h);
}

TEST(lin_rejects_read_of_a_value_nobody_wrote)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 0, 10);
    h_unknown(&h, 1, LIN_SET, "a", "u", 20);
    size_t bad = h_get(&h, 2, "a", "w", 5, 40);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    CHECK_EQ_INT(rep.bad_op, bad);
    lin_history_free(&h);
}

TEST(lin_counts_pending_ops_as_unknown)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 0, 10);
    h_invoke(&h, 1, LIN_SET, "a", "p", NULL, 20); /* never completed */
    h_get(&h, 2, "a", "p", 30, 40);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    CHECK_EQ_INT(rep.ops_unknown_count, 1);
    lin_history_free(&h);
}

TEST(lin_rejects_read_of_a_failed_write)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 0, 10);
    size_t f = h_invoke(&h, 1, LIN_SET, "a", "f", NULL, 20);
    lin_fail(&h, f, 25);
    h_get(&h, 2, "a", "x", 30, 40);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    CHECK_EQ_INT(rep.ops_failed_count, 1);
    h_get(&h, 2, "a", "f", 50, 60);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    lin_history_free(&h);
}

TEST(lin_reports_a_violation_in_key_b_with_key_b)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    /* interleaved in time; a's ops alone are fine, b's are not */
    h_set(&h, 1, "a", "1", 0, 10);
    h_set(&h, 2, "b", "1", 1, 11);
    h_set(&h, 1, "a", "2", 20, 30);
    h_set(&h, 2, "b", "2", 21, 31);
    h_get(&h, 3, "a", "2", 40, 50);
    size_t bad = h_get(&h, 4, "b", "1", 41, 51);
    h_set(&h, 1, "c", "3", 0, 10);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    CHECK(key_is(&rep, "b"));
    CHECK_EQ_INT(rep.bad_op, bad);
    CHECK_EQ_INT(rep.keys_count, 3);
    CHECK(strstr(rep.msg, "key \"b\"") != NULL);
    lin_history_free(&h);
}

/* same key bytes mean the same key, whatever their length or content */
TEST(lin_tells_binary_keys_apart_by_every_byte)
{
    struct lin_history h;
    struct lin_report rep;
    lin_history_init(&h);
    size_t id = lin_invoke(&h, 1, LIN_SET, "k\0x", 3, "1", 1, NULL, 0, 0);
    lin_complete_set(&h, id, 1);
    id = lin_invoke(&h, 1, LIN_GET, "k\0y", 3, NULL, 0, NULL, 0, 2);
    lin_complete_get_nil(&h, id, 3);
    id = lin_invoke(&h, 1, LIN_GET, "k", 1, NULL, 0, NULL, 0, 2);
    lin_complete_get_nil(&h, id, 3);
    id = lin_invoke(&h, 1, LIN_GET, "k\0x", 3, NULL, 0, NULL, 0, 4);
    lin_complete_get(&h, id, "1", 1, 5);
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_OK);
    CHECK_EQ_INT(rep.keys_count, 3);
    lin_history_free(&h);
}

/* n unknown SETs all concurrent, then a read of a value none of them
 * wrote: proving the violation means visiting every subset of them. */
static void pathological(struct lin_history *h, int n)
{
    char v[16];
    lin_history_init(h);
    for (int i = 0; i < n; i++) {
        snprintf(v, sizeof(v), "v%d", i);
        h_unknown(h, (uint32_t)i, LIN_SET, "p", v, (uint64_t)i);
    }
    h_get(h, 100, "p", "nobody", 1000, 1010);
}

TEST(lin_answers_unknown_when_the_step_bound_is_hit)
{
    struct lin_history h;
    struct lin_report rep;
    pathological(&h, 16);
    CHECK_EQ_INT(lin_check(&h, 1000, &rep), LIN_RESULT_UNKNOWN);
    CHECK_EQ_INT(rep.result, LIN_RESULT_UNKNOWN);
    CHECK_EQ_INT(rep.keys_unknown_count, 1);
    CHECK_EQ_INT(rep.steps_count, 1000);
    CHECK(key_is(&rep, "p"));
    CHECK(rep.bad_op == LIN_NO_OP);
    CHECK(strstr(rep.msg, "no answer within 1000 search steps") != NULL);
    CHECK(strcmp(lin_result_name(rep.result), "unknown") == 0);
    /* a bound of zero answers nothing */
    CHECK_EQ_INT(lin_check(&h, 0, &rep), LIN_RESULT_UNKNOWN);
    lin_history_free(&h);

    /* the same shape, small enough to finish: the answer is definite */
    pathological(&h, 8);
    CHECK_EQ_INT(lin_check(&h, STEPS, &rep), LIN_RESULT_VIOLATION);
    CHECK(rep.steps_count > 8 * 256); /* it did search the subsets */
    lin_history_free(&h);
}

TEST(lin_reports_violation_over_unknown_in_other_keys)
{
    struct lin_history h;
    struct lin_report rep;
    pathological(&h, 16); /* key "p": no answer in 1000 steps */
    h_set(&h, 1, "q", "1", 0, 1);
    h_get(&h, 1, "q", "2", 2, 3); /* "q" is checked after "p" */
    CHECK_EQ_INT(lin_check(&h, 1000, &rep), LIN_RESULT_VIOLATION);
    CHECK(key_is(&rep, "q"));
    CHECK_EQ_INT(rep.keys_unknown_count, 1);
    lin_history_free(&h);
}

TEST(lin_checks_two_histories_independently)
{
    struct lin_history a, b;
    struct lin_report ra, rb;
    lin_history_init(&a);
    lin_history_init(&b);
    h_set(&a, 1, "k", "1", 0, 1);
    h_set(&b, 1, "k", "2", 0, 1);
    h_get(&a, 1, "k", "1", 2, 3);
    h_get(&b, 1, "k", "1", 2, 3);
    CHECK_EQ_INT(check(&a, &ra), LIN_RESULT_OK);
    CHECK_EQ_INT(check(&b, &rb), LIN_RESULT_VIOLATION);
    lin_history_free(&a);
    lin_history_free(&b);
}

TEST(lin_dumps_json_lines_with_escaped_bytes)
{
    struct lin_history h;
    struct tbuf out = {0};
    lin_history_init(&h);
    h_set(&h, 1, "a", "x", 10, 20);
    h_get(&h, 2, "a", "x", 15, 25);
    h_ifeq(&h, 1, "a", "y", "x", true, 30, 40);
    size_t id = lin_invoke(&h, 2, LIN_APPEND, "a\n\"", 3, "\x01\xff\\", 3, NULL, 0, 50);
    lin_unknown(&h, id);
    h_incr_err(&h, 3, "n", 60, 70);
    h_incr(&h, 3, "n", -5, 80, 90);
    h_get(&h, 4, "b", NULL, 1, 2);
    id = h_invoke(&h, 4, LIN_SET, "b", "z", NULL, 3);
    lin_fail(&h, id, 4);
    h_append(&h, 5, "c", "ab", 2, 5, 6);
    h_invoke(&h, 5, LIN_GET, "c", NULL, NULL, 7); /* pending */
    h_ifeq(&h, 6, "c", "q", "zz", false, 8, 9);
    lin_dump_json(&h, &out);
    const char *want =
        "{\"id\":0,\"client\":1,\"op\":\"set\",\"key\":\"a\",\"value\":\"x\",\"expected\":null,"
        "\"ok\":\"ok\",\"output\":\"OK\",\"call\":10,\"return\":20}\n"
        "{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":\"x\",\"call\":15,\"return\":25}\n"
        "{\"id\":2,\"client\":1,\"op\":\"set_ifeq\",\"key\":\"a\",\"value\":\"y\",\"expected\":"
        "\"x\",\"ok\":\"ok\",\"output\":true,\"call\":30,\"return\":40}\n"
        "{\"id\":3,\"client\":2,\"op\":\"append\",\"key\":\"a\\u000a\\\"\",\"value\":"
        "\"\\u0001\\u00ff\\\\\",\"expected\":null,\"ok\":\"unknown\",\"output\":null,\"call\":50,"
        "\"return\":null}\n"
        "{\"id\":4,\"client\":3,\"op\":\"incr\",\"key\":\"n\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":\"ERR\",\"call\":60,\"return\":70}\n"
        "{\"id\":5,\"client\":3,\"op\":\"incr\",\"key\":\"n\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":-5,\"call\":80,\"return\":90}\n"
        "{\"id\":6,\"client\":4,\"op\":\"get\",\"key\":\"b\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":null,\"call\":1,\"return\":2}\n"
        "{\"id\":7,\"client\":4,\"op\":\"set\",\"key\":\"b\",\"value\":\"z\",\"expected\":null,"
        "\"ok\":\"fail\",\"output\":null,\"call\":3,\"return\":4}\n"
        "{\"id\":8,\"client\":5,\"op\":\"append\",\"key\":\"c\",\"value\":\"ab\",\"expected\":null,"
        "\"ok\":\"ok\",\"output\":2,\"call\":5,\"return\":6}\n"
        "{\"id\":9,\"client\":5,\"op\":\"get\",\"key\":\"c\",\"value\":null,\"expected\":null,"
        "\"ok\":\"unknown\",\"output\":null,\"call\":7,\"return\":null}\n"
        "{\"id\":10,\"client\":6,\"op\":\"set_ifeq\",\"key\":\"c\",\"value\":\"q\",\"expected\":"
        "\"zz\",\"ok\":\"ok\",\"output\":false,\"call\":8,\"return\":9}\n";
    CHECK_MEM_STR(out.data, out.len, want);
    tbuf_free(&out);
    lin_history_free(&h);
}

/* ---- random histories from a simulated linearizable store ---- */

static uint64_t sm64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd(uint64_t *s, uint64_t n)
{
    return sm64(s) % n;
}

#define MSTATE_MAX 2048

/* the test's own model of a key, written independently of the checker's */
struct mstate {
    bool exists;
    size_t len;
    char v[MSTATE_MAX];
};

struct gop {
    uint32_t client;
    enum lin_op op;
    int key;
    const char *value, *expected; /* static strings, or uv */
    char uv[24];
    uint64_t call, ret, lin;
    enum lin_status status;
    bool took_effect;
    /* output, when status is OK */
    bool out_nil, out_err, out_applied;
    int64_t out_int;
    char *out_v; /* GET, malloc'd */
    size_t out_len;
};

struct mres {
    bool nil, err, applied;
    int64_t i;
    size_t len;
    char v[MSTATE_MAX];
};

/* INCR's reading of a value, by round trip: strtoll must take all of it
 * and print it back the same (which rules out "+1", "01", "-0", spaces) */
static bool m_int(const struct mstate *st, int64_t *out)
{
    if (!st->exists) {
        *out = 0;
        return true;
    }
    char buf[32], back[32];
    if (st->len == 0 || st->len >= sizeof(buf))
        return false;
    memcpy(buf, st->v, st->len);
    buf[st->len] = '\0';
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    snprintf(back, sizeof(back), "%lld", v);
    if (strcmp(back, buf) != 0)
        return false;
    *out = v;
    return true;
}

static void m_apply(struct mstate *st, const struct gop *o, struct mres *r)
{
    memset(r, 0, offsetof(struct mres, v));
    switch (o->op) {
    case LIN_GET:
        r->nil = !st->exists;
        r->len = st->len;
        memcpy(r->v, st->v, st->len);
        break;
    case LIN_SET:
        st->exists = true;
        st->len = strlen(o->value);
        memcpy(st->v, o->value, st->len);
        break;
    case LIN_SET_IFEQ:
        r->applied = st->exists && st->len == strlen(o->expected) &&
                     memcmp(st->v, o->expected, st->len) == 0;
        if (r->applied) {
            st->len = strlen(o->value);
            memcpy(st->v, o->value, st->len);
        }
        break;
    case LIN_APPEND: {
        size_t n = strlen(o->value);
        if (!st->exists)
            st->len = 0;
        TRIAD_ASSERT(st->len + n <= MSTATE_MAX);
        memcpy(st->v + st->len, o->value, n);
        st->len += n;
        st->exists = true;
        r->i = (int64_t)st->len;
        break;
    }
    case LIN_INCR: {
        int64_t v;
        if (!m_int(st, &v) || v == INT64_MAX) {
            r->err = true;
            break;
        }
        r->i = v + 1;
        st->exists = true;
        st->len = (size_t)snprintf(st->v, sizeof(st->v), "%" PRId64, r->i);
        break;
    }
    }
}

static bool m_matches(const struct gop *o, const struct mres *r)
{
    switch (o->op) {
    case LIN_GET:
        if (o->out_nil || r->nil)
            return o->out_nil == r->nil;
        return o->out_len == r->len && memcmp(o->out_v, r->v, r->len) == 0;
    case LIN_SET:
        return true;
    case LIN_SET_IFEQ:
        return o->out_applied == r->applied;
    case LIN_APPEND:
        return o->out_int == r->i;
    case LIN_INCR:
        return o->out_err == r->err && (r->err || o->out_int == r->i);
    }
    return false;
}

static void m_record(struct gop *o, const struct mres *r)
{
    o->out_nil = r->nil;
    o->out_err = r->err;
    o->out_applied = r->applied;
    o->out_int = r->i;
    free(o->out_v);
    o->out_v = NULL;
    o->out_len = 0;
    if (o->op == LIN_GET && !r->nil) {
        o->out_v = malloc(r->len ? r->len : 1);
        memcpy(o->out_v, r->v, r->len);
        o->out_len = r->len;
    }
}

static const char *const g_values[] = {"0", "1", "7", "-3", "x", "abc", "007", "", " 5",
                                       "9223372036854775806"};
static const char *const g_suffixes[] = {"1", "a", "0", "-"};
static const char *const g_keys[] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

struct gen {
    uint32_t clients;
    int keys;
    size_t ops;
    unsigned unknown_per_mille, fail_per_mille;
    uint64_t dur_max; /* an op lasts 1..dur_max */
    /* Each SET writes a value of its own (a decimal number, so INCR still
     * applies), and IFEQ expects one of the last values SET on its key,
     * as a workload that can tell writes apart does. */
    bool unique_values;
};

static int g_lin_cmp(const void *pa, const void *pb, void *arg)
{
    const struct gop *ops = arg;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    if (ops[a].lin != ops[b].lin)
        return ops[a].lin < ops[b].lin ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* A linearizable execution: every op that takes effect does so at a moment
 * `lin` within [call, return] (UNKNOWN ones: any moment after the call, or
 * never), and outputs come from applying them in that order. */
static struct gop *gen_history(uint64_t seed, const struct gen *g)
{
    struct gop *ops = calloc(g->ops, sizeof(*ops));
    uint64_t *next_call = calloc(g->clients, sizeof(*next_call));
    for (uint32_t c = 0; c < g->clients; c++)
        next_call[c] = rnd(&seed, 10);
    for (size_t i = 0; i < g->ops; i++) {
        uint32_t c = 0;
        for (uint32_t d = 1; d < g->clients; d++)
            if (next_call[d] < next_call[c])
                c = d;
        struct gop *o = &ops[i];
        o->client = c;
        o->key = (int)rnd(&seed, (uint64_t)g->keys);
        uint64_t r = rnd(&seed, 100);
        o->op = r < 35 ? LIN_GET : r < 55 ? LIN_SET : r < 65 ? LIN_SET_IFEQ : r < 80 ? LIN_APPEND
                                                                                  : LIN_INCR;
        o->value = o->op == LIN_APPEND ? g_suffixes[rnd(&seed, TRIAD_ARRAY_LEN(g_suffixes))]
                                       : g_values[rnd(&seed, TRIAD_ARRAY_LEN(g_values))];
        if (o->op == LIN_GET || o->op == LIN_INCR)
            o->value = NULL;
        o->expected = o->op == LIN_SET_IFEQ ? g_values[rnd(&seed, TRIAD_ARRAY_LEN(g_values))]
                                            : NULL;
        if (g->unique_values && (o->op == LIN_SET || o->op == LIN_SET_IFEQ)) {
            snprintf(o->uv, sizeof(o->uv), "%zu", (i + 1) * 1000000);
            o->value = o->uv;
        }
        if (g->unique_values && o->op == LIN_SET_IFEQ) {
            for (size_t back = 1; back <= TRIAD_MIN(i, (size_t)3 * g->clients); back++) {
                const struct gop *p = &ops[i - back];
                if (p->key == o->key && p->op == LIN_SET && rnd(&seed, 3) == 0) {
                    o->expected = p->value;
                    break;
                }
            }
        }
        o->call = next_call[c];
        uint64_t dur = 1 + rnd(&seed, g->dur_max);
        o->ret = o->call + dur;
        o->lin = o->call + rnd(&seed, dur + 1);
        uint64_t s = rnd(&seed, 1000);
        if (s < g->unknown_per_mille) {
            o->status = LIN_UNKNOWN;
            o->took_effect = rnd(&seed, 2) == 0;
            o->lin = o->call + rnd(&seed, 20 * g->dur_max); /* maybe long after */
        } else if (s < g->unknown_per_mille + g->fail_per_mille) {
            o->status = LIN_FAIL;
        } else {
            o->status = LIN_OK;
            o->took_effect = true;
        }
        next_call[c] = o->ret + rnd(&seed, 5); /* may equal the return: concurrent */
    }
    free(next_call);

    size_t *order = malloc(g->ops * sizeof(*order));
    size_t n = 0;
    for (size_t i = 0; i < g->ops; i++)
        if (ops[i].took_effect)
            order[n++] = i;
    qsort_r(order, n, sizeof(*order), g_lin_cmp, ops);
    struct mstate *st = calloc((size_t)g->keys, sizeof(*st));
    struct mres *res = malloc(sizeof(*res));
    for (size_t k = 0; k < n; k++) {
        struct gop *o = &ops[order[k]];
        m_apply(&st[o->key], o, res);
        m_record(o, res);
    }
    free(res);
    free(st);
    free(order);
    return ops;
}

static void gen_free(struct gop *ops, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ops[i].out_v);
    free(ops);
}

static void record(struct lin_history *h, const struct gop *ops, size_t n)
{
    lin_history_init(h);
    for (size_t i = 0; i < n; i++) {
        const struct gop *o = &ops[i];
        const char *k = g_keys[o->key];
        size_t id = h_invoke(h, o->client, o->op, k, o->value, o->expected, o->call);
        TRIAD_ASSERT(id == i);
        if (o->status == LIN_UNKNOWN) {
            lin_unknown(h, id);
            continue;
        }
        if (o->status == LIN_FAIL) {
            lin_fail(h, id, o->ret);
            continue;
        }
        switch (o->op) {
        case LIN_GET:
            if (o->out_nil)
                lin_complete_get_nil(h, id, o->ret);
            else
                lin_complete_get(h, id, o->out_v, o->out_len, o->ret);
            break;
        case LIN_SET:
            lin_complete_set(h, id, o->ret);
            break;
        case LIN_SET_IFEQ:
            lin_complete_ifeq(h, id, o->out_applied, o->ret);
            break;
        case LIN_APPEND:
            lin_complete_append(h, id, (uint64_t)o->out_int, o->ret);
            break;
        case LIN_INCR:
            if (o->out_err)
                lin_complete_incr_error(h, id, o->ret);
            else
                lin_complete_incr(h, id, o->out_int, o->ret);
            break;
        }
    }
}

/* Change one OK GET's output to another value its key held or was given
 * (stale or from the future), or to nil. Returns false if there is no GET. */
static bool corrupt_a_read(struct gop *ops, size_t n, uint64_t *seed)
{
    size_t gets = 0;
    for (size_t i = 0; i < n; i++)
        gets += ops[i].op == LIN_GET && ops[i].status == LIN_OK;
    if (gets == 0)
        return false;
    size_t pick = rnd(seed, gets), g = SIZE_MAX;
    for (size_t i = 0; i < n && g == SIZE_MAX; i++)
        if (ops[i].op == LIN_GET && ops[i].status == LIN_OK && pick-- == 0)
            g = i;
    struct gop *o = &ops[g];
    for (int tries = 0; tries < 50; tries++) {
        size_t j = rnd(seed, n);
        const char *v = NULL;
        size_t len = 0;
        bool nil = false;
        if (rnd(seed, 8) == 0) {
            nil = true;
        } else if (ops[j].key != o->key) {
            continue;
        } else if (ops[j].op == LIN_SET || ops[j].op == LIN_SET_IFEQ) {
            v = ops[j].value;
            len = strlen(v);
        } else if (ops[j].op == LIN_GET && ops[j].status == LIN_OK && !ops[j].out_nil) {
            v = ops[j].out_v;
            len = ops[j].out_len;
        } else {
            continue;
        }
        if (nil ? o->out_nil : (!o->out_nil && o->out_len == len && memcmp(o->out_v, v, len) == 0))
            continue; /* the same output: not a corruption */
        char *copy = nil ? NULL : malloc(len ? len : 1);
        if (copy && len)
            memcpy(copy, v, len);
        free(o->out_v);
        o->out_v = copy;
        o->out_len = len;
        o->out_nil = nil;
        return true;
    }
    return false;
}

TEST(lin_accepts_random_linearizable_histories_and_catches_most_corrupted_reads)
{
    struct gen g = {.clients = 8, .keys = 3, .ops = 120, .unknown_per_mille = 40,
                    .fail_per_mille = 30, .dur_max = 30};
    int valid_ok = 0, corrupted = 0, caught = 0, unknown = 0;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        g.unique_values = seed % 2 == 0;
        struct gop *ops = gen_history(seed, &g);
        struct lin_history h;
        struct lin_report rep;
        record(&h, ops, g.ops);
        enum lin_result r = check(&h, &rep);
        if (r != LIN_RESULT_OK)
            fprintf(stderr, "  seed %" PRIu64 ": %s: %s\n", seed, lin_result_name(r), rep.msg);
        valid_ok += r == LIN_RESULT_OK;
        lin_history_free(&h);

        uint64_t cseed = seed * 7919;
        if (corrupt_a_read(ops, g.ops, &cseed)) {
            record(&h, ops, g.ops);
            r = check(&h, &rep);
            corrupted++;
            caught += r == LIN_RESULT_VIOLATION;
            unknown += r == LIN_RESULT_UNKNOWN;
            lin_history_free(&h);
        }
        gen_free(ops, g.ops);
    }
    printf("  random: 300 valid histories, %d pass; %d corrupted, %d caught, %d unknown\n",
           valid_ok, corrupted, caught, unknown);
    CHECK_EQ_INT(valid_ok, 300);
    CHECK(corrupted >= 280);
    CHECK(caught * 10 >= corrupted * 8); /* a changed read may still fit some order */
}

/* The size the simulator produces: a few thousand ops over 5 keys, tens of
 * clients, a few UNKNOWNs, with values drawn from a small set (so writes
 * cannot be told apart) or unique ones. It must pass well within the
 * default bound. */
TEST(lin_accepts_a_large_history_within_the_default_bound)
{
    struct gen g = {.clients = 30, .keys = 5, .ops = 4000, .unknown_per_mille = 2,
                    .fail_per_mille = 5, .dur_max = 40};
    for (uint64_t seed = 100; seed < 106; seed++) {
        g.unique_values = seed % 2 == 1;
        struct gop *ops = gen_history(seed, &g);
        struct lin_history h;
        struct lin_report rep;
        record(&h, ops, g.ops);
        enum lin_result r = lin_check(&h, LIN_STEPS_PER_KEY_DEFAULT, &rep);
        if (r != LIN_RESULT_OK)
            fprintf(stderr, "  seed %" PRIu64 ": %s\n", seed, rep.msg);
        CHECK_EQ_INT(r, LIN_RESULT_OK);
        CHECK_EQ_INT(rep.keys_count, 5);
        CHECK(rep.steps_count < 5 * (uint64_t)LIN_STEPS_PER_KEY_DEFAULT / 20);
        lin_history_free(&h);
        gen_free(ops, g.ops);
    }
}

/* ---- agreement with brute force on small histories ---- */

#define BF_OPS 8 /* n! orders: keep it small */
#define BF_KEYS 2

static bool bf_search(const struct gop *ops, size_t n, unsigned included, unsigned placed,
                      struct mstate *st)
{
    if (placed == included)
        return true;
    struct mres *r = malloc(sizeof(*r));
    bool found = false;
    for (size_t i = 0; i < n && !found; i++) {
        if (!(included >> i & 1) || (placed >> i & 1))
            continue;
        /* i may go next only if no other unplaced op must precede it */
        bool blocked = false;
        for (size_t j = 0; j < n && !blocked; j++)
            blocked = j != i && (included >> j & 1) && !(placed >> j & 1) &&
                      ops[j].status == LIN_OK && ops[j].ret < ops[i].call;
        if (blocked)
            continue;
        struct mstate saved = st[ops[i].key];
        m_apply(&st[ops[i].key], &ops[i], r);
        if (ops[i].status != LIN_OK || m_matches(&ops[i], r))
            found = bf_search(ops, n, included, placed | 1u << i, st);
        st[ops[i].key] = saved;
    }
    free(r);
    return found;
}

/* some subset of the UNKNOWN ops, with every OK op, fits some order */
static bool bf_linearizable(const struct gop *ops, size_t n)
{
    unsigned ok = 0, unk = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].status == LIN_OK)
            ok |= 1u << i;
        else if (ops[i].status == LIN_UNKNOWN)
            unk |= 1u << i;
    }
    struct mstate *st = calloc(BF_KEYS, sizeof(*st));
    bool found = false;
    for (unsigned sub = unk;; sub = (sub - 1) & unk) { /* every subset of unk */
        found = bf_search(ops, n, ok | sub, 0, st);
        if (found || sub == 0)
            break;
    }
    free(st);
    return found;
}

/* perturb one OK op's output */
static void mutate_output(struct gop *ops, size_t n, uint64_t *seed)
{
    for (int tries = 0; tries < 20; tries++) {
        struct gop *o = &ops[rnd(seed, n)];
        if (o->status != LIN_OK || o->op == LIN_SET)
            continue;
        switch (o->op) {
        case LIN_GET:
            if (o->out_nil || rnd(seed, 2)) {
                const char *v = g_values[rnd(seed, TRIAD_ARRAY_LEN(g_values))];
                free(o->out_v);
                o->out_len = strlen(v);
                o->out_v = malloc(o->out_len + 1);
                memcpy(o->out_v, v, o->out_len + 1);
                o->out_nil = false;
            } else {
                o->out_nil = true;
            }
            break;
        case LIN_SET_IFEQ:
            o->out_applied = !o->out_applied;
            break;
        case LIN_APPEND:
            o->out_int += rnd(seed, 2) ? 1 : -1;
            break;
        case LIN_INCR:
            if (o->out_err) {
                o->out_err = false;
                o->out_int = (int64_t)rnd(seed, 4);
            } else if (rnd(seed, 2)) {
                o->out_err = true;
            } else {
                o->out_int += o->out_int < INT64_MAX ? 1 : -1;
            }
            break;
        case LIN_SET:
            break;
        }
        return;
    }
}

TEST(lin_agrees_with_brute_force_on_small_random_histories)
{
    struct gen g = {.clients = 4, .keys = BF_KEYS, .ops = BF_OPS, .unknown_per_mille = 150,
                    .fail_per_mille = 80, .dur_max = 16};
    int agree = 0, ok = 0, bad = 0;
    for (uint64_t seed = 1; seed <= 10000; seed++) {
        g.keys = seed % 4 == 1 ? 1 : BF_KEYS; /* one key: the most contention */
        g.unique_values = seed % 3 == 0;
        struct gop *ops = gen_history(seed * 31, &g);
        uint64_t mseed = seed;
        if (seed % 2 == 0)
            mutate_output(ops, g.ops, &mseed);
        bool want = bf_linearizable(ops, g.ops);
        struct lin_history h;
        struct lin_report rep;
        record(&h, ops, g.ops);
        enum lin_result r = check(&h, &rep);
        enum lin_result w = want ? LIN_RESULT_OK : LIN_RESULT_VIOLATION;
        if (r != w) {
            struct tbuf js = {0};
            lin_dump_json(&h, &js);
            fprintf(stderr, "  seed %" PRIu64 ": brute force %s, checker %s: %s\n%.*s", seed,
                    lin_result_name(w), lin_result_name(r), rep.msg, (int)js.len, js.data);
            tbuf_free(&js);
        }
        agree += r == w;
        ok += want;
        bad += !want;
        lin_history_free(&h);
        gen_free(ops, g.ops);
    }
    printf("  brute force: 10000 histories, %d linearizable, %d not, checker agrees on %d\n", ok,
           bad, agree);
    CHECK_EQ_INT(agree, 10000);
    CHECK(ok > 2000);
    CHECK(bad > 2000);
}

/* ---- loading JSON lines (lin_load_json) ---- */

static int load_str(struct lin_history *h, const char *text, char *err, size_t errlen)
{
    return lin_load_json(h, text, strlen(text), err, errlen);
}

/* dump a, load it into b, dump b: the same bytes */
static bool round_trips(const struct lin_history *a, struct lin_history *b)
{
    struct tbuf d1 = {0}, d2 = {0};
    char err[256];
    lin_dump_json(a, &d1);
    lin_history_init(b);
    int rc = lin_load_json(b, d1.data, d1.len, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "  load failed: %s\n", err);
    lin_dump_json(b, &d2);
    bool same = rc == 0 && d1.len == d2.len && (d1.len == 0 || memcmp(d1.data, d2.data, d1.len) == 0);
    tbuf_free(&d1);
    tbuf_free(&d2);
    return same;
}

/* every kind of op, output and status, escaped bytes, extreme integers */
static void every_kind(struct lin_history *h)
{
    lin_history_init(h);
    h_set(h, 1, "a", "x", 10, 20);
    h_get(h, 2, "a", "x", 15, 25);
    h_ifeq(h, 1, "a", "y", "x", true, 30, 40);
    size_t id = lin_invoke(h, 2, LIN_APPEND, "a\n\"", 3, "\x01\xff\\\x7f/", 5, NULL, 0, 50);
    lin_unknown(h, id);
    h_incr_err(h, 3, "n", 60, 70);
    h_incr(h, 3, "n", -5, 80, 90);
    h_incr(h, 3, "n", INT64_MIN, 91, 92);
    h_incr(h, 3, "n", INT64_MAX, 93, 94);
    h_get(h, 4, "b", NULL, 1, 2);
    id = h_invoke(h, 4, LIN_SET, "b", "z", NULL, 3);
    lin_fail(h, id, 4);
    h_append(h, 5, "c", "ab", 2, 5, 6);
    h_invoke(h, 5, LIN_GET, "c", NULL, NULL, 7); /* pending: dumped as unknown */
    h_ifeq(h, 6, "c", "q", "zz", false, 8, 9);
    h_set(h, UINT32_MAX, "", "", 0, UINT64_MAX); /* empty key and value, extreme times */
    id = lin_invoke(h, 7, LIN_GET, "k\0k", 3, NULL, 0, NULL, 0, 100);
    lin_complete_get(h, id, "\0\t\r", 3, 101);
}

TEST(lin_load_json_round_trips_every_op_output_and_escape)
{
    struct lin_history a, b;
    struct lin_report ra, rb;
    every_kind(&a);
    CHECK(round_trips(&a, &b));
    CHECK_EQ_INT(b.ops_count, a.ops_count);
    CHECK_EQ_INT(check(&a, &ra), check(&b, &rb));
    CHECK_EQ_INT(ra.ops_unknown_count, rb.ops_unknown_count);
    CHECK_EQ_INT(ra.ops_failed_count, rb.ops_failed_count);
    CHECK_EQ_INT(ra.keys_count, rb.keys_count);
    CHECK(strcmp(ra.msg, rb.msg) == 0);
    lin_history_free(&a);
    lin_history_free(&b);
}

TEST(lin_load_json_round_trips_random_histories_with_the_same_verdict)
{
    struct gen g = {.clients = 6, .keys = 3, .ops = 80, .unknown_per_mille = 50,
                    .fail_per_mille = 50, .dur_max = 30};
    int same = 0, violations = 0, ok = 0;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        g.unique_values = seed % 2 == 0;
        struct gop *ops = gen_history(seed * 13, &g);
        uint64_t cseed = seed;
        if (seed % 3 == 0)
            corrupt_a_read(ops, g.ops, &cseed);
        struct lin_history a, b;
        struct lin_report ra, rb;
        record(&a, ops, g.ops);
        bool trip = round_trips(&a, &b);
        enum lin_result r1 = check(&a, &ra), r2 = check(&b, &rb);
        same += trip && r1 == r2 && ra.bad_op == rb.bad_op && strcmp(ra.msg, rb.msg) == 0;
        violations += r1 == LIN_RESULT_VIOLATION;
        ok += r1 == LIN_RESULT_OK;
        lin_history_free(&a);
        lin_history_free(&b);
        gen_free(ops, g.ops);
    }
    CHECK_EQ_INT(same, 200);
    CHECK(violations >= 30); /* both verdicts were round-tripped */
    CHECK(ok >= 130);
}

TEST(lin_load_json_takes_any_field_order_spaces_crlf_blank_lines_and_json_escapes)
{
    /* as Python's json.dumps writes it: ", " and ": ", fields in any order,
     * \n and \t and \/ escapes, upper-case hex, no "id" */
    const char *text =
        "\n"
        "{\"op\": \"set\", \"key\": \"k\\/1\", \"value\": \"a\\n\\t\\u00E9\\b\\f\\r\", "
        "\"expected\": null, \"ok\": \"ok\", \"output\": \"OK\", \"call\": 1, \"return\": 2, "
        "\"client\": 0}\r\n"
        "   \t\r\n"
        "  { \"client\" : 3 , \"op\" : \"get\" , \"key\" : \"k/1\" , \"value\" : null , "
        "\"expected\" : null , \"ok\" : \"ok\" , \"output\" : \"a\\n\\t\\u00e9\\u0008\\u000c\\u000d\" , "
        "\"call\" : 3 , \"return\" : 4 , \"id\" : 1 }  \n"
        "{\"client\":1,\"op\":\"incr\",\"key\":\"n\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":-0,\"call\":-0,\"return\":0}"; /* no final newline */
    struct lin_history h;
    struct lin_report rep;
    char err[256];
    lin_history_init(&h);
    CHECK_EQ_INT(load_str(&h, text, err, sizeof(err)), 0);
    CHECK_EQ_INT(h.ops_count, 3);
    CHECK_EQ_INT(err[0], '\0');
    struct tbuf out = {0};
    lin_dump_json(&h, &out);
    const char *want =
        "{\"id\":0,\"client\":0,\"op\":\"set\",\"key\":\"k/1\",\"value\":"
        "\"a\\u000a\\u0009\\u00e9\\u0008\\u000c\\u000d\",\"expected\":null,\"ok\":\"ok\","
        "\"output\":\"OK\",\"call\":1,\"return\":2}\n"
        "{\"id\":1,\"client\":3,\"op\":\"get\",\"key\":\"k/1\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":\"a\\u000a\\u0009\\u00e9\\u0008\\u000c\\u000d\",\"call\":3,"
        "\"return\":4}\n"
        "{\"id\":2,\"client\":1,\"op\":\"incr\",\"key\":\"n\",\"value\":null,\"expected\":null,"
        "\"ok\":\"ok\",\"output\":0,\"call\":0,\"return\":0}\n";
    CHECK_MEM_STR(out.data, out.len, want);
    /* INCR of a missing key giving 0 is wrong: the file is checked as read */
    CHECK_EQ_INT(check(&h, &rep), LIN_RESULT_VIOLATION);
    CHECK(key_is(&rep, "n"));
    tbuf_free(&out);
    lin_history_free(&h);

    /* an empty text is an empty history */
    lin_history_init(&h);
    CHECK_EQ_INT(lin_load_json(&h, NULL, 0, err, sizeof(err)), 0);
    CHECK_EQ_INT(load_str(&h, "\n\n \r\n", err, sizeof(err)), 0);
    CHECK_EQ_INT(h.ops_count, 0);
    lin_history_free(&h);
}

#define GOOD_LINE                                                                             \
    "{\"id\":0,\"client\":1,\"op\":\"set\",\"key\":\"a\",\"value\":\"1\",\"expected\":null,"   \
    "\"ok\":\"ok\",\"output\":\"OK\",\"call\":1,\"return\":2}\n"
/* the start of line 2 (op 1) of a case whose error comes before the rest */
#define L_HEAD "{\"id\":1,\"client\":2,"

static const struct {
    const char *line; /* line 2 of the input, after GOOD_LINE */
    const char *want; /* in the error message, after "line 2, column " */
} bad_lines[] = {
    /* truncated lines */
    {"{", "expected a field name, found the end of the line"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\"", "expected ',' or '}', found the end of the line"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a", "not closed before the end of the line"},
    {L_HEAD "\"op\":\"get\",\"key\":", "expected a value"},
    {L_HEAD "\"op\":\"get\",\"key\"", "expected ':' after a field name"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\\", "the line ends inside an escape"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\\u00", "four hex digits"},
    {L_HEAD "\"call\":-", "expected a digit"},
    {L_HEAD "\"op\":\"get\",\"key\":nul", "expected a value"},
    /* bad escapes and raw bytes */
    {L_HEAD "\"op\":\"get\",\"key\":\"a\\q\"}", "bad escape: '\\' then 'q'"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\\u00g1\"}", "four hex digits"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\\u0100\"}", "\\u0100 is not a byte"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\\ud83d\\ude00\"}", "is not a byte"},
    {L_HEAD "\"op\":\"get\",\"key\":\"\xc3\xa9\"}", "raw byte 0xc3 in a string"},
    {L_HEAD "\"op\":\"get\",\"key\":\"a\tb\"}", "raw control byte 0x09"},
    /* not JSON of this shape */
    {"[1,2]", "expected '{' (one object per line)"},
    {"\"id\"", "expected '{'"},
    {GOOD_LINE, "\"id\" is 0 but this is op 1"},
    {L_HEAD "\"op\":\"get\",\"value\":{}}", "a nested object"},
    {L_HEAD "\"op\":\"get\",\"value\":[]}", "a nested array"},
    {L_HEAD "\"op\":\"get\"} x", "expected the end of the line after the object"},
    {L_HEAD "\"op\":\"get\"}{}", "expected the end of the line after the object"},
    {L_HEAD "\"op\":\"get\",}", "expected a field name, found '}'"},
    {L_HEAD "\"op\" \"get\"}", "expected ':' after a field name, found '\"'"},
    {L_HEAD "op:\"get\"}", "expected a field name, found 'o'"},
    {L_HEAD "\"op\":'get'}", "expected a value"},
    {L_HEAD "\"op\":\"get\",\"node\":3}", "unknown field \"node\""},
    {L_HEAD "\"op\":\"get\",\"op\":\"set\"}", "field \"op\" given twice"},
    {L_HEAD "\"call\":1.5}", "not an integer"},
    {L_HEAD "\"call\":1e3}", "not an integer"},
    {L_HEAD "\"call\":01}", "a number with a leading zero"},
    {L_HEAD "\"call\":18446744073709551616}", "integer out of range"},
    {L_HEAD "\"call\":+1}", "expected a value"},
    /* missing fields, wrong types, wrong values */
    {"{}", "missing field \"client\""},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"return\":5}",
     "missing field \"call\""},
    {"{\"id\":5,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"id\" is 5 but this is op 1"},
    {"{\"id\":\"1\",\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"id\" must be an integer >= 0, not \"1\""},
    {"{\"id\":1,\"client\":\"2\",\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"client\" must be an integer 0..4294967295, not \"2\""},
    {"{\"id\":1,\"client\":4294967296,\"op\":\"get\",\"key\":\"a\",\"value\":null,"
     "\"expected\":null,\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"client\" must be an integer 0..4294967295, not 4294967296"},
    {"{\"id\":1,\"client\":2,\"op\":\"del\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"op\" must be one of get, set, set_ifeq, append, incr, not \"del\""},
    {"{\"id\":1,\"client\":2,\"op\":\"GET\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "not \"GET\""},
    {"{\"id\":1,\"client\":2,\"op\":7,\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"op\" must be one of get, set, set_ifeq, append, incr, not 7"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":null,\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"key\" must be a string, not null"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"value\" must be null for this op, not \"v\""},
    {"{\"id\":1,\"client\":2,\"op\":\"set\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":\"OK\",\"call\":3,\"return\":5}",
     "\"value\" must be a string for this op, not null"},
    {"{\"id\":1,\"client\":2,\"op\":\"append\",\"key\":\"a\",\"value\":3,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":3,\"call\":3,\"return\":5}",
     "\"value\" must be a string for this op, not 3"},
    {"{\"id\":1,\"client\":2,\"op\":\"set_ifeq\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"ok\",\"output\":true,\"call\":3,\"return\":5}",
     "\"expected\" must be a string for set_ifeq, not null"},
    {"{\"id\":1,\"client\":2,\"op\":\"set\",\"key\":\"a\",\"value\":\"v\",\"expected\":\"w\","
     "\"ok\":\"ok\",\"output\":\"OK\",\"call\":3,\"return\":5}",
     "\"expected\" must be null for this op, not \"w\""},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"maybe\",\"output\":null,\"call\":3,\"return\":5}",
     "\"ok\" must be \"ok\", \"fail\" or \"unknown\", not \"maybe\""},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":true,\"output\":null,\"call\":3,\"return\":5}",
     "\"ok\" must be \"ok\", \"fail\" or \"unknown\", not true"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":-3,\"return\":5}",
     "\"call\" must be an integer >= 0, not -3"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":6,\"return\":5}",
     "\"return\" 5 is before \"call\" 6"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":null}",
     "\"return\" must be an integer >= 0 for an ok or failed op, not null"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"fail\",\"output\":null,\"call\":3,\"return\":null}",
     "\"return\" must be an integer >= 0 for an ok or failed op"},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"unknown\",\"output\":null,\"call\":3,\"return\":5}",
     "\"return\" must be null for an unknown op, not 5"},
    {"{\"id\":1,\"client\":2,\"op\":\"set\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"fail\",\"output\":\"OK\",\"call\":3,\"return\":5}",
     "\"output\" must be null for an op that is not ok, not \"OK\""},
    {"{\"id\":1,\"client\":2,\"op\":\"get\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":4,\"call\":3,\"return\":5}",
     "\"output\" must be a string or null for get, not 4"},
    {"{\"id\":1,\"client\":2,\"op\":\"set\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"ok\",\"output\":\"ok\",\"call\":3,\"return\":5}",
     "\"output\" must be \"OK\" for an ok set, not \"ok\""},
    {"{\"id\":1,\"client\":2,\"op\":\"set\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"ok\",\"output\":null,\"call\":3,\"return\":5}",
     "\"output\" must be \"OK\" for an ok set"},
    {"{\"id\":1,\"client\":2,\"op\":\"set_ifeq\",\"key\":\"a\",\"value\":\"v\",\"expected\":\"w\","
     "\"ok\":\"ok\",\"output\":\"OK\",\"call\":3,\"return\":5}",
     "\"output\" must be true or false for set_ifeq, not \"OK\""},
    {"{\"id\":1,\"client\":2,\"op\":\"append\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"ok\",\"output\":-1,\"call\":3,\"return\":5}",
     "\"output\" must be an integer 0..2^63-1 for append, not -1"},
    {"{\"id\":1,\"client\":2,\"op\":\"append\",\"key\":\"a\",\"value\":\"v\",\"expected\":null,"
     "\"ok\":\"ok\",\"output\":9223372036854775808,\"call\":3,\"return\":5}",
     "\"output\" must be an integer 0..2^63-1 for append"},
    {"{\"id\":1,\"client\":2,\"op\":\"incr\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":9223372036854775808,\"call\":3,\"return\":5}",
     "\"output\" must be a 64-bit integer or \"ERR\" for incr"},
    {"{\"id\":1,\"client\":2,\"op\":\"incr\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":-9223372036854775809,\"call\":3,\"return\":5}",
     "\"output\" must be a 64-bit integer or \"ERR\" for incr"},
    {"{\"id\":1,\"client\":2,\"op\":\"incr\",\"key\":\"a\",\"value\":null,\"expected\":null,"
     "\"ok\":\"ok\",\"output\":\"err\",\"call\":3,\"return\":5}",
     "\"output\" must be a 64-bit integer or \"ERR\" for incr, not \"err\""},
};

TEST(lin_load_json_rejects_malformed_lines_naming_the_line_and_keeps_the_history)
{
    char err[512];
    struct lin_history h;
    lin_history_init(&h);
    for (size_t i = 0; i < TRIAD_ARRAY_LEN(bad_lines); i++) {
        /* line 1 good (op 0), line 2 bad (op 1), line 3 good */
        struct tbuf text = {0};
        tbuf_appends(&text, GOOD_LINE);
        tbuf_appends(&text, bad_lines[i].line);
        tbuf_appends(&text, "\n" GOOD_LINE);
        memset(err, 'x', sizeof(err));
        int rc = lin_load_json(&h, text.data, text.len, err, sizeof(err));
        CHECK_EQ_INT(rc, TRIAD_EPROTO);
        CHECK(memchr(err, '\0', sizeof(err)) != NULL);
        CHECK_EQ_INT(h.ops_count, 0); /* the good line 1 is not kept */
        if (strncmp(err, "line 2, column ", 15) != 0 || strstr(err, bad_lines[i].want) == NULL) {
            fprintf(stderr, "  case %zu: want \"line 2, column ...%s\", got \"%.*s\"\n", i,
                    bad_lines[i].want, (int)sizeof(err), err);
            CHECK(0);
        }
        tbuf_free(&text);
    }
    lin_history_free(&h);
}

TEST(lin_load_json_leaves_a_history_as_it_was_on_error)
{
    char err[256];
    struct lin_history h;
    struct tbuf before = {0}, after = {0};
    every_kind(&h);
    lin_dump_json(&h, &before);
    size_t ops = h.ops_count, bytes = h.bytes.len;
    /* ids go on from h's ops: the first line is op `ops` */
    struct tbuf text = {0};
    tbuf_appendf(&text,
                 "{\"id\":%zu,\"client\":1,\"op\":\"set\",\"key\":\"a\",\"value\":\"1\","
                 "\"expected\":null,\"ok\":\"ok\",\"output\":\"OK\",\"call\":1,\"return\":2}\n"
                 "{\"client\":1}\n",
                 ops);
    CHECK_EQ_INT(lin_load_json(&h, text.data, text.len, err, sizeof(err)), TRIAD_EPROTO);
    CHECK(strcmp(err, "line 2, column 1: missing field \"op\"") == 0);
    CHECK_EQ_INT(h.ops_count, ops);
    CHECK_EQ_INT(h.bytes.len, bytes);
    lin_dump_json(&h, &after);
    CHECK(before.len == after.len && memcmp(before.data, after.data, before.len) == 0);
    /* the first line alone appends one op */
    text.len = (size_t)(strchr(text.data, '\n') - text.data) + 1;
    CHECK_EQ_INT(lin_load_json(&h, text.data, text.len, err, sizeof(err)), 0);
    CHECK_EQ_INT(h.ops_count, ops + 1);
    tbuf_free(&text);
    tbuf_free(&before);
    tbuf_free(&after);
    lin_history_free(&h);
}

TEST(lin_load_json_writes_errors_into_small_or_missing_buffers)
{
    struct lin_history h;
    char small[12];
    lin_history_init(&h);
    CHECK_EQ_INT(load_str(&h, "{", NULL, 0), TRIAD_EPROTO);
    memset(small, 'x', sizeof(small));
    CHECK_EQ_INT(load_str(&h, "{", small, sizeof(small)), TRIAD_EPROTO);
    CHECK(strcmp(small, "line 1, col") == 0);
    /* a NUL byte in the text is a byte like any other: refused in a string */
    const char nul[] = "{\"client\":1,\"op\":\"get\",\"key\":\"a\0b\"}";
    char err[256];
    CHECK_EQ_INT(lin_load_json(&h, nul, sizeof(nul) - 1, err, sizeof(err)), TRIAD_EPROTO);
    CHECK(strstr(err, "raw control byte 0x00") != NULL);
    CHECK_EQ_INT(h.ops_count, 0);
    lin_history_free(&h);
}

/* Every prefix of a dump, and many random corruptions of it, load or fail
 * cleanly (the unit-test cousin of fuzz_lincheck_json, run under ASan in
 * `make SAN=1 unit`); whatever loads can be checked and dumped again. */
TEST(lin_load_json_survives_every_truncation_and_random_corruption)
{
    struct lin_history a;
    struct tbuf dump = {0};
    every_kind(&a);
    lin_dump_json(&a, &dump);
    lin_history_free(&a);
    char err[256];
    size_t loaded = 0, refused = 0;
    for (size_t n = 0; n <= dump.len; n++) {
        struct lin_history h;
        lin_history_init(&h);
        int rc = lin_load_json(&h, dump.data, n, err, sizeof(err));
        CHECK(rc == 0 || strncmp(err, "line ", 5) == 0);
        loaded += rc == 0;
        refused += rc != 0;
        lin_history_free(&h);
    }
    CHECK(loaded >= 14); /* at least at each line's end */
    CHECK(refused > dump.len / 2);

    static const char interesting[] = "{}[]\",:\\u0123456789-+.eEnulltruefalse \t\r\n\x00\x7f\x80\xff";
    uint64_t seed = 42;
    char *copy = malloc(dump.len);
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, dump.data, dump.len);
        int edits = 1 + (int)rnd(&seed, 3);
        for (int e = 0; e < edits; e++) {
            size_t at = rnd(&seed, dump.len);
            copy[at] = rnd(&seed, 2) ? interesting[rnd(&seed, sizeof(interesting) - 1)]
                                     : (char)rnd(&seed, 256);
        }
        size_t len = rnd(&seed, 4) == 0 ? rnd(&seed, dump.len + 1) : dump.len;
        struct lin_history h;
        struct lin_report rep;
        lin_history_init(&h);
        int rc = lin_load_json(&h, copy, len, err, sizeof(err));
        if (rc == 0) {
            struct lin_history b;
            lin_check(&h, 10000, &rep);
            CHECK(round_trips(&h, &b)); /* what loads dumps the same way again */
            lin_history_free(&b);
        } else {
            CHECK(strncmp(err, "line ", 5) == 0);
            CHECK_EQ_INT(h.ops_count, 0);
        }
        lin_history_free(&h);
    }
    free(copy);
    tbuf_free(&dump);
}

int main(void)
{
    RUN(lin_accepts_sequential_history_of_every_op_kind);
    RUN(lin_accepts_empty_history);
    RUN(lin_rejects_stale_read_after_completed_write);
    RUN(lin_accepts_concurrent_write_and_read_in_either_order);
    RUN(lin_treats_a_return_equal_to_a_call_as_concurrent);
    RUN(lin_rejects_two_ifeq_applied_on_the_same_expected_value);
    RUN(lin_accepts_one_ifeq_applied_and_one_not_on_the_same_expected_value);
    RUN(lin_rejects_ifeq_applied_on_a_missing_key);
    RUN(lin_rejects_append_lengths_that_imply_a_lost_append);
    RUN(lin_rejects_incr_value_returned_to_two_clients);
    RUN(lin_predicts_incr_errors_by_redis_integer_rules);
    RUN(lin_rejects_incr_error_on_an_integer_and_accepts_it_on_text);
    RUN(lin_accepts_unknown_write_that_a_later_read_sees);
    RUN(lin_accepts_unknown_write_never_seen);
    RUN(lin_rejects_read_of_a_value_nobody_wrote);
    RUN(lin_counts_pending_ops_as_unknown);
    RUN(lin_rejects_read_of_a_failed_write);
    RUN(lin_reports_a_violation_in_key_b_with_key_b);
    RUN(lin_tells_binary_keys_apart_by_every_byte);
    RUN(lin_answers_unknown_when_the_step_bound_is_hit);
    RUN(lin_reports_violation_over_unknown_in_other_keys);
    RUN(lin_checks_two_histories_independently);
    RUN(lin_dumps_json_lines_with_escaped_bytes);
    RUN(lin_accepts_random_linearizable_histories_and_catches_most_corrupted_reads);
    RUN(lin_accepts_a_large_history_within_the_default_bound);
    RUN(lin_agrees_with_brute_force_on_small_random_histories);
    RUN(lin_load_json_round_trips_every_op_output_and_escape);
    RUN(lin_load_json_round_trips_random_histories_with_the_same_verdict);
    RUN(lin_load_json_takes_any_field_order_spaces_crlf_blank_lines_and_json_escapes);
    RUN(lin_load_json_rejects_malformed_lines_naming_the_line_and_keeps_the_history);
    RUN(lin_load_json_leaves_a_history_as_it_was_on_error);
    RUN(lin_load_json_writes_errors_into_small_or_missing_buffers);
    RUN(lin_load_json_survives_every_truncation_and_random_corruption);
    return test_summary("lincheck");
}
