/* string.c - the string commands: GET/SET and their variants, the INCR
 * family, APPEND, SETRANGE/GETRANGE, MGET/MSET and LCS.
 *
 * Every write is applied to the kv at once and described to the log by
 * cmd_propagate in a deterministic form: a relative expiry becomes an
 * absolute PXAT, float arithmetic is logged as its result, and a condition
 * (NX, XX, IFEQ) that held is dropped, since replay must reproduce the
 * effect, not re-decide it. A write that changed nothing is not logged.
 *
 * Pointers returned by kv_get are borrowed until the next kv call that may
 * modify the kv (kv_get itself may: lazy expiry, rehash steps), so every
 * handler finishes with a value - reply, compare, parse - before the next
 * kv call, and never hands kv one of its own values to store.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/mem.h"
#include "cmd_int.h"

/* Redis's proto-max-bulk-len: no string may grow beyond it. */
#define STR_VALUE_LEN_MAX ((size_t)RESP_PROTO_MAX_BULK_LEN_DEFAULT)
/* LCS's dynamic-programming table is transient memory of
 * (len1+1)*(len2+1) cells; Redis refuses a table above proto-max-bulk-len. */
#define STR_LCS_TABLE_BYTES_MAX ((unsigned long long)RESP_PROTO_MAX_BULK_LEN_DEFAULT)
/* Redis's MAX_LONG_DOUBLE_CHARS: %.17Lf of the largest long double fits. */
#define STR_LD_CHARS_MAX (5 * 1024)
#define STR_LL_CHARS_MAX 32

#define STR_ERR_TOO_BIG "ERR string exceeds maximum allowed size (proto-max-bulk-len)"

/* The longest client c may make a string: proto-max-bulk-len, as Redis
 * checks it (checkStringLength). A command replayed from the log passed
 * the check when it ran, whatever the setting is now. */
static size_t str__len_max(const struct cmd_server *s, const struct cmd_client *c)
{
    if ((c->flags & CMD_CLIENT_REPLAY) || s->proto_max_bulk_len == 0)
        return STR_VALUE_LEN_MAX;
    return (size_t)TRIAD_MIN(s->proto_max_bulk_len, (uint64_t)STR_VALUE_LEN_MAX);
}

/* SET options */
#define STR_SET_NX (1u << 0)
#define STR_SET_XX (1u << 1)
#define STR_SET_GET (1u << 2)
#define STR_SET_KEEPTTL (1u << 3)
#define STR_SET_EX (1u << 4)
#define STR_SET_PX (1u << 5)
#define STR_SET_EXAT (1u << 6)
#define STR_SET_PXAT (1u << 7)
#define STR_SET_IFEQ (1u << 8)
#define STR_SET_EXPIRE_ANY (STR_SET_EX | STR_SET_PX | STR_SET_EXAT | STR_SET_PXAT)

/* A read as Redis's lookupKeyRead: counts a keyspace hit or miss. */
static bool str__lookup_read(struct cmd_server *s, struct cmd_client *c, const char *key,
                             size_t klen, struct kv_val *v)
{
    if (kv_get(cmd_db(s, c), key, klen, s->now_ms, v) == 0) {
        s->stats.keyspace_hits++;
        return true;
    }
    s->stats.keyspace_misses++;
    return false;
}

/* A read as lookupKeyWrite: no statistics. */
static bool str__lookup_write(struct cmd_server *s, struct cmd_client *c, const char *key,
                              size_t klen, struct kv_val *v)
{
    return kv_get(cmd_db(s, c), key, klen, s->now_ms, v) == 0;
}

static void str__reply_value(struct cmd_client *c, bool found, const struct kv_val *v)
{
    if (found)
        resp_add_bulk(c->out, v->ptr, v->len);
    else
        resp_add_null(c->out, c->proto);
}

static void str__propagate_del(struct cmd_server *s, struct cmd_client *c, const char *key,
                               size_t klen)
{
    char *argv[2] = {"DEL", (char *)key};
    size_t argvlen[2] = {3, klen};
    cmd_propagate(s, c, 2, argv, argvlen);
}

/* ------------------------------------------------------------------------ */
/* GET SET and their variants                                               */
/* ------------------------------------------------------------------------ */

CMD_HANDLER(cmd_get)
{
    struct kv_val v;
    bool found = str__lookup_read(s, c, argv[1], argvlen[1], &v);
    str__reply_value(c, found, &v);
}

/* SET key value [NX|XX|IFEQ old] [GET] [EX s|PX ms|EXAT ts|PXAT ms|KEEPTTL] */
CMD_HANDLER(cmd_set)
{
    uint32_t flags = 0;
    int expire_arg = 0, ifeq_arg = 0;
    for (int j = 3; j < argc; j++) {
        const char *o = argv[j];
        size_t n = argvlen[j];
        bool next = j + 1 < argc;
        uint32_t unit = 0;
        if (cmd_arg_is(o, n, "NX") && !(flags & (STR_SET_XX | STR_SET_IFEQ))) {
            flags |= STR_SET_NX;
        } else if (cmd_arg_is(o, n, "XX") && !(flags & (STR_SET_NX | STR_SET_IFEQ))) {
            flags |= STR_SET_XX;
        } else if (cmd_arg_is(o, n, "IFEQ") && next &&
                   !(flags & (STR_SET_NX | STR_SET_XX | STR_SET_IFEQ))) {
            flags |= STR_SET_IFEQ;
            ifeq_arg = ++j;
        } else if (cmd_arg_is(o, n, "GET")) {
            flags |= STR_SET_GET;
        } else if (cmd_arg_is(o, n, "KEEPTTL") && !(flags & STR_SET_EXPIRE_ANY)) {
            flags |= STR_SET_KEEPTTL;
        } else if ((cmd_arg_is(o, n, "EX") && (unit = STR_SET_EX)) ||
                   (cmd_arg_is(o, n, "PX") && (unit = STR_SET_PX)) ||
                   (cmd_arg_is(o, n, "EXAT") && (unit = STR_SET_EXAT)) ||
                   (cmd_arg_is(o, n, "PXAT") && (unit = STR_SET_PXAT))) {
            /* The same unit twice is allowed (the last wins), two
             * different ones are not: Redis's rule. */
            if (!next || (flags & STR_SET_KEEPTTL) || (flags & STR_SET_EXPIRE_ANY & ~unit)) {
                cmd_reply_syntax_error(c);
                return;
            }
            flags |= unit;
            expire_arg = ++j;
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }

    int64_t expire_ms = (flags & STR_SET_KEEPTTL) ? KV_KEEP_TTL : KV_NO_EXPIRE;
    if (flags & STR_SET_EXPIRE_ANY) {
        bool seconds = flags & (STR_SET_EX | STR_SET_EXAT);
        bool relative = flags & (STR_SET_EX | STR_SET_PX);
        if (!cmd_expire_arg(s, c, argv[expire_arg], argvlen[expire_arg], seconds, relative,
                             "set", &expire_ms))
            return;
    }

    const char *key = argv[1], *val = argv[2];
    size_t klen = argvlen[1], vlen = argvlen[2];
    struct kv_val old;
    bool found = false;
    if (flags & STR_SET_GET) {
        found = str__lookup_read(s, c, key, klen, &old);
        str__reply_value(c, found, &old);
    } else if (flags & (STR_SET_NX | STR_SET_XX | STR_SET_IFEQ)) {
        found = str__lookup_write(s, c, key, klen, &old);
    }
    /* A plain SET needs nothing of the old value: kv_set finds the key
     * once, so the hot path hashes and walks the table once. */
    bool cond_failed = ((flags & STR_SET_NX) && found) || ((flags & STR_SET_XX) && !found);
    if (flags & STR_SET_IFEQ) {
        /* Valkey's IFEQ never creates a key. */
        cond_failed = !found || old.len != argvlen[ifeq_arg] ||
                      memcmp(old.ptr, argv[ifeq_arg], old.len) != 0;
    }
    if (cond_failed) {
        if (!(flags & STR_SET_GET))
            resp_add_null(c->out, c->proto);
        return;
    }

    if ((flags & STR_SET_EXPIRE_ANY) && expire_ms <= s->now_ms) {
        /* A deadline already past: the key is gone at once, and the log
         * says so plainly rather than storing a dead value. */
        if (kv_del(cmd_db(s, c), key, klen, s->now_ms) == 0) {
            cmd_touch(s, c->db, key, klen);
            str__propagate_del(s, c, key, klen);
        }
    } else {
        kv_set(cmd_db(s, c), key, klen, val, vlen, expire_ms);
        cmd_touch(s, c->db, key, klen);
        cmd_propagate_set(s, c, key, klen, val, vlen, expire_ms);
    }
    if (!(flags & STR_SET_GET))
        cmd_reply_ok(c);
}

CMD_HANDLER(cmd_setnx)
{
    struct kv_val v;
    if (str__lookup_write(s, c, argv[1], argvlen[1], &v)) {
        resp_add_int(c->out, 0);
        return;
    }
    kv_set(cmd_db(s, c), argv[1], argvlen[1], argv[2], argvlen[2], KV_NO_EXPIRE);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    cmd_propagate_set(s, c, argv[1], argvlen[1], argv[2], argvlen[2], KV_NO_EXPIRE);
    resp_add_int(c->out, 1);
}

CMD_HANDLER(cmd_getset)
{
    struct kv_val v;
    bool found = str__lookup_read(s, c, argv[1], argvlen[1], &v);
    str__reply_value(c, found, &v);
    kv_set(cmd_db(s, c), argv[1], argvlen[1], argv[2], argvlen[2], KV_NO_EXPIRE);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    cmd_propagate_set(s, c, argv[1], argvlen[1], argv[2], argvlen[2], KV_NO_EXPIRE);
}

CMD_HANDLER(cmd_getdel)
{
    struct kv_val v;
    bool found = str__lookup_read(s, c, argv[1], argvlen[1], &v);
    str__reply_value(c, found, &v);
    if (!found)
        return;
    kv_del(cmd_db(s, c), argv[1], argvlen[1], s->now_ms);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    str__propagate_del(s, c, argv[1], argvlen[1]);
}

CMD_HANDLER(cmd_mget)
{
    resp_add_array_len(c->out, argc - 1);
    for (int j = 1; j < argc; j++) {
        struct kv_val v;
        bool found = str__lookup_read(s, c, argv[j], argvlen[j], &v);
        str__reply_value(c, found, &v);
    }
}

static void str__mset_all(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                          size_t *argvlen)
{
    for (int j = 1; j + 1 < argc; j += 2) {
        kv_set(cmd_db(s, c), argv[j], argvlen[j], argv[j + 1], argvlen[j + 1], KV_NO_EXPIRE);
        cmd_touch(s, c->db, argv[j], argvlen[j]);
    }
}

CMD_HANDLER(cmd_mset)
{
    if (argc % 2 == 0) {
        cmd_reply_wrong_arity(c, "mset");
        return;
    }
    str__mset_all(s, c, argc, argv, argvlen);
    cmd_propagate(s, c, argc, argv, argvlen);
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_msetnx)
{
    if (argc % 2 == 0) {
        cmd_reply_wrong_arity(c, "msetnx");
        return;
    }
    for (int j = 1; j < argc; j += 2) {
        struct kv_val v;
        if (str__lookup_write(s, c, argv[j], argvlen[j], &v)) {
            resp_add_int(c->out, 0);
            return;
        }
    }
    str__mset_all(s, c, argc, argv, argvlen);
    /* No key existed, so replay needs no condition: log a plain MSET. */
    char *name = argv[0];
    size_t namelen = argvlen[0];
    argv[0] = "MSET";
    argvlen[0] = 4;
    cmd_propagate(s, c, argc, argv, argvlen);
    argv[0] = name;
    argvlen[0] = namelen;
    resp_add_int(c->out, 1);
}

/* ------------------------------------------------------------------------ */
/* INCR family                                                               */
/* ------------------------------------------------------------------------ */

/* Add `incr` to the integer at argv[1], keeping the key's deadline. The
 * command is logged as given: integer arithmetic replays exactly. */
static void str__incr(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                      size_t *argvlen, long long incr)
{
    struct kv_val v;
    long long old = 0;
    if (str__lookup_write(s, c, argv[1], argvlen[1], &v) && !cmd_parse_ll(v.ptr, v.len, &old)) {
        cmd_reply_not_integer(c);
        return;
    }
    if ((incr < 0 && old < 0 && incr < LLONG_MIN - old) ||
        (incr > 0 && old > 0 && incr > LLONG_MAX - old)) {
        resp_add_error(c->out, "ERR increment or decrement would overflow");
        return;
    }
    long long now = old + incr;
    char buf[STR_LL_CHARS_MAX];
    int n = snprintf(buf, sizeof(buf), "%lld", now);
    kv_set(cmd_db(s, c), argv[1], argvlen[1], buf, (size_t)n, KV_KEEP_TTL);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    cmd_propagate(s, c, argc, argv, argvlen);
    resp_add_int(c->out, now);
}

CMD_HANDLER(cmd_incr)
{
    str__incr(s, c, argc, argv, argvlen, 1);
}

CMD_HANDLER(cmd_decr)
{
    str__incr(s, c, argc, argv, argvlen, -1);
}

CMD_HANDLER(cmd_incrby)
{
    long long incr;
    if (!cmd_parse_ll(argv[2], argvlen[2], &incr)) {
        cmd_reply_not_integer(c);
        return;
    }
    str__incr(s, c, argc, argv, argvlen, incr);
}

CMD_HANDLER(cmd_decrby)
{
    long long decr;
    if (!cmd_parse_ll(argv[2], argvlen[2], &decr)) {
        cmd_reply_not_integer(c);
        return;
    }
    if (decr == LLONG_MIN) { /* its negation does not exist */
        resp_add_error(c->out, "ERR decrement would overflow");
        return;
    }
    str__incr(s, c, argc, argv, argvlen, -decr);
}

CMD_HANDLER(cmd_incrbyfloat)
{
    struct kv_val v;
    long double old = 0, incr;
    bool found = str__lookup_write(s, c, argv[1], argvlen[1], &v);
    if ((found && !cmd_parse_ld(v.ptr, v.len, &old)) ||
        !cmd_parse_ld(argv[2], argvlen[2], &incr)) {
        resp_add_error(c->out, "ERR value is not a valid float");
        return;
    }
    long double now = old + incr;
    if (isnan(now) || isinf(now)) {
        resp_add_error(c->out, "ERR increment would produce NaN or Infinity");
        return;
    }
    char buf[STR_LD_CHARS_MAX];
    int n = resp_format_long_double(buf, sizeof(buf), now);
    TRIAD_ASSERT(n > 0); /* the largest finite long double fits */
    kv_set(cmd_db(s, c), argv[1], argvlen[1], buf, (size_t)n, KV_KEEP_TTL);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    /* Float arithmetic and formatting may differ between builds: the log
     * carries the result, never the operation. */
    cmd_propagate_set(s, c, argv[1], argvlen[1], buf, (size_t)n, KV_KEEP_TTL);
    resp_add_bulk(c->out, buf, (size_t)n);
}

/* ------------------------------------------------------------------------ */
/* APPEND, STRLEN, SETRANGE, GETRANGE                                       */
/* ------------------------------------------------------------------------ */

CMD_HANDLER(cmd_append)
{
    struct kv_val v;
    size_t old_len = 0, alen = argvlen[2];
    bool found = str__lookup_write(s, c, argv[1], argvlen[1], &v);
    if (found) {
        old_len = v.len;
        if (old_len > str__len_max(s, c) || alen > str__len_max(s, c) - old_len) {
            resp_add_error(c->out, STR_ERR_TOO_BIG);
            return;
        }
        if (alen == 0) { /* nothing changes */
            resp_add_int(c->out, (long long)old_len);
            return;
        }
    }
    /* An absent key is created even by an empty APPEND, as in Redis. */
    char *p = kv_resize_value(cmd_db(s, c), argv[1], argvlen[1], old_len + alen, s->now_ms);
    if (alen > 0)
        memcpy(p + old_len, argv[2], alen);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    cmd_propagate(s, c, argc, argv, argvlen);
    resp_add_int(c->out, (long long)(old_len + alen));
}

CMD_HANDLER(cmd_strlen)
{
    struct kv_val v;
    bool found = str__lookup_read(s, c, argv[1], argvlen[1], &v);
    resp_add_int(c->out, found ? (long long)v.len : 0);
}

CMD_HANDLER(cmd_setrange)
{
    long long offset;
    if (!cmd_parse_ll(argv[2], argvlen[2], &offset)) {
        cmd_reply_not_integer(c);
        return;
    }
    if (offset < 0) {
        resp_add_error(c->out, "ERR offset is out of range");
        return;
    }
    struct kv_val v;
    size_t vlen = argvlen[3];
    bool found = str__lookup_write(s, c, argv[1], argvlen[1], &v);
    size_t old_len = found ? v.len : 0;
    if (vlen == 0) { /* nothing to write: an absent key stays absent */
        resp_add_int(c->out, (long long)old_len);
        return;
    }
    size_t len_max = str__len_max(s, c);
    if (vlen > len_max || (unsigned long long)offset > len_max - vlen) {
        resp_add_error(c->out, STR_ERR_TOO_BIG);
        return;
    }
    size_t end = (size_t)offset + vlen;
    size_t new_len = TRIAD_MAX(old_len, end);
    char *p = kv_resize_value(cmd_db(s, c), argv[1], argvlen[1], new_len, s->now_ms);
    memcpy(p + offset, argv[3], vlen);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    cmd_propagate(s, c, argc, argv, argvlen);
    resp_add_int(c->out, (long long)new_len);
}

CMD_HANDLER(cmd_getrange)
{
    long long start, end;
    if (!cmd_parse_ll(argv[2], argvlen[2], &start) || !cmd_parse_ll(argv[3], argvlen[3], &end)) {
        cmd_reply_not_integer(c);
        return;
    }
    struct kv_val v;
    if (!str__lookup_read(s, c, argv[1], argvlen[1], &v)) {
        resp_add_bulk(c->out, "", 0);
        return;
    }
    /* Redis 7.0's index rules, quirks included: both negative and crossed
     * is empty; otherwise negatives count from the end and clamp to 0 (so
     * GETRANGE "Hello" 0 -100 is "H"). */
    long long len = (long long)v.len;
    if (start < 0 && end < 0 && start > end) {
        resp_add_bulk(c->out, "", 0);
        return;
    }
    if (start < 0)
        start = len + start;
    if (end < 0)
        end = len + end;
    if (start < 0)
        start = 0;
    if (end < 0)
        end = 0;
    if (end >= len)
        end = len - 1;
    if (len == 0 || start > end)
        resp_add_bulk(c->out, "", 0);
    else
        resp_add_bulk(c->out, v.ptr + start, (size_t)(end - start + 1));
}

CMD_HANDLER(cmd_substr)
{
    cmd_getrange(s, c, argc, argv, argvlen);
}

/* ------------------------------------------------------------------------ */
/* LCS                                                                       */
/* ------------------------------------------------------------------------ */

/* One IDX match: [[a0, a1], [b0, b1]] (+ its length). */
static void str__lcs_match(struct tbuf *out, bool withmatchlen, size_t a0, size_t a1, size_t b0,
                           size_t b1)
{
    resp_add_array_len(out, withmatchlen ? 3 : 2);
    resp_add_array_len(out, 2);
    resp_add_int(out, (long long)a0);
    resp_add_int(out, (long long)a1);
    resp_add_array_len(out, 2);
    resp_add_int(out, (long long)b0);
    resp_add_int(out, (long long)b1);
    if (withmatchlen)
        resp_add_int(out, (long long)(a1 - a0 + 1));
}

#define STR_LCS(i, j) dp[(size_t)(i) * (blen + 1) + (j)]

/* Walk the filled table back from its far corner: the common string comes
 * out from its end, and so do the runs of contiguous matches (IDX lists
 * them last first, as Redis does). Replies with the string, or with IDX's
 * map. */
static void str__lcs_reply(struct cmd_client *c, const char *a, size_t alen, const char *b,
                           size_t blen, const uint32_t *dp, bool getidx, bool withmatchlen,
                           long long minmatchlen)
{
    uint32_t total = STR_LCS(alen, blen);
    char *common = tmalloc((size_t)total + 1);
    struct tbuf matches = {0}; /* IDX's entries, written once they are counted */
    size_t nmatches = 0;

    /* The current run of contiguous matches, if any: a[a0..a1], b[b0..b1]. */
    bool in_run = false;
    size_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    size_t i = alen, j = blen, k = total;
    while (i > 0 && j > 0) {
        bool end_run = false;
        if (a[i - 1] == b[j - 1]) {
            common[--k] = a[i - 1];
            if (!in_run) {
                in_run = true;
                a0 = a1 = i - 1;
                b0 = b1 = j - 1;
            } else {
                /* walking back along a diagonal: the run grows leftwards */
                a0--;
                b0--;
            }
            if (a0 == 0 || b0 == 0)
                end_run = true; /* the loop ends at this match */
            i--;
            j--;
        } else {
            /* Step towards the larger sub-result; on a tie, shorten b
             * (Redis's choice, which decides the answer clients see). */
            if (STR_LCS(i - 1, j) > STR_LCS(i, j - 1))
                i--;
            else
                j--;
            end_run = in_run;
        }
        if (end_run) {
            if (getidx && (a1 - a0 + 1) >= (unsigned long long)minmatchlen) {
                str__lcs_match(&matches, withmatchlen, a0, a1, b0, b1);
                nmatches++;
            }
            in_run = false;
        }
    }
    TRIAD_ASSERT(k == 0);
    TRIAD_ASSERT(!in_run);

    if (getidx) {
        resp_add_map_len(c->out, c->proto, 2);
        resp_add_bulk_str(c->out, "matches");
        resp_add_array_len(c->out, (long long)nmatches);
        tbuf_append(c->out, matches.data, matches.len);
        resp_add_bulk_str(c->out, "len");
        resp_add_int(c->out, total);
    } else {
        resp_add_bulk(c->out, common, total);
    }
    tbuf_free(&matches);
    tfree(common);
}

/* LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the classic
 * dynamic-programming table, bounded as Redis bounds it. */
CMD_HANDLER(cmd_lcs)
{
    struct kv_val va, vb;
    bool found_a = str__lookup_read(s, c, argv[1], argvlen[1], &va);
    size_t alen = found_a ? va.len : 0;
    bool found_b = str__lookup_read(s, c, argv[2], argvlen[2], &vb);
    size_t blen = found_b ? vb.len : 0;

    bool getlen = false, getidx = false, withmatchlen = false;
    long long minmatchlen = 0;
    for (int j = 3; j < argc; j++) {
        if (cmd_arg_is(argv[j], argvlen[j], "IDX")) {
            getidx = true;
        } else if (cmd_arg_is(argv[j], argvlen[j], "LEN")) {
            getlen = true;
        } else if (cmd_arg_is(argv[j], argvlen[j], "WITHMATCHLEN")) {
            withmatchlen = true;
        } else if (cmd_arg_is(argv[j], argvlen[j], "MINMATCHLEN") && j + 1 < argc) {
            if (!cmd_parse_ll(argv[j + 1], argvlen[j + 1], &minmatchlen)) {
                cmd_reply_not_integer(c);
                return;
            }
            if (minmatchlen < 0)
                minmatchlen = 0;
            j++;
        } else {
            cmd_reply_syntax_error(c);
            return;
        }
    }
    if (getidx && getlen) {
        resp_add_error(c->out, "ERR If you want both the length and indexes, please just use IDX.");
        return;
    }
    unsigned long long cells = (unsigned long long)(alen + 1) * (blen + 1);
    if (cells > STR_LCS_TABLE_BYTES_MAX / sizeof(uint32_t)) {
        resp_add_error(c->out,
                       "ERR Insufficient memory, transient memory for LCS exceeds "
                       "proto-max-bulk-len");
        return;
    }

    /* Reading b may have modified the kv (lazy expiry), so a's pointer is
     * stale: keep a copy of b (bounded by the table limit) and read a
     * again. */
    char *b = tmalloc(blen + 1);
    if (blen > 0)
        memcpy(b, vb.ptr, blen);
    const char *a = "";
    if (found_a) {
        int rc = kv_get(cmd_db(s, c), argv[1], argvlen[1], s->now_ms, &va);
        TRIAD_ASSERT(rc == 0);
        TRIAD_ASSERT(va.len == alen);
        a = va.ptr;
    }

    /* cell (i, j): the LCS length of a[0..i) and b[0..j) */
    uint32_t *dp = tmalloc((size_t)cells * sizeof(uint32_t));
    for (size_t i = 0; i <= alen; i++) {
        for (size_t j = 0; j <= blen; j++) {
            if (i == 0 || j == 0)
                STR_LCS(i, j) = 0;
            else if (a[i - 1] == b[j - 1])
                STR_LCS(i, j) = STR_LCS(i - 1, j - 1) + 1;
            else
                STR_LCS(i, j) = TRIAD_MAX(STR_LCS(i - 1, j), STR_LCS(i, j - 1));
        }
    }
    if (getlen)
        resp_add_int(c->out, STR_LCS(alen, blen));
    else
        str__lcs_reply(c, a, alen, b, blen, dp, getidx, withmatchlen, minmatchlen);
    tfree(dp);
    tfree(b);
}

#undef STR_LCS
