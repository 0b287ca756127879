/* expire.c - key deadlines: EXPIRE and its variants, TTL and its variants,
 * PERSIST, SETEX/PSETEX and GETEX.
 *
 * Deadlines are absolute Unix milliseconds in the kv. What reaches the log
 * is always absolute too (PEXPIREAT, SET ... PXAT): replayed later, a
 * relative time would name a different instant. A deadline that is already
 * past when the command runs deletes the key, and the log says DEL.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cmd_int.h"

#define EXP_LL_CHARS_MAX 32

/* EXPIRE options */
#define EXP_NX (1u << 0)
#define EXP_XX (1u << 1)
#define EXP_GT (1u << 2)
#define EXP_LT (1u << 3)

/* GETEX options */
#define EXP_GETEX_EX (1u << 0)
#define EXP_GETEX_PX (1u << 1)
#define EXP_GETEX_EXAT (1u << 2)
#define EXP_GETEX_PXAT (1u << 3)
#define EXP_GETEX_PERSIST (1u << 4)

static void exp__reply_invalid(struct cmd_client *c, const char *cmdname)
{
    resp_add_errorf(c->out, "ERR invalid expire time in '%s' command", cmdname);
}

static void exp__propagate_pexpireat(struct cmd_server *s, struct cmd_client *c, const char *key,
                                     size_t klen, int64_t abs_ms)
{
    char ms[EXP_LL_CHARS_MAX];
    char *argv[3] = {"PEXPIREAT", (char *)key, ms};
    size_t argvlen[3] = {9, klen, 0};
    argvlen[2] = (size_t)snprintf(ms, sizeof(ms), "%lld", (long long)abs_ms);
    cmd_propagate(s, c, 3, argv, argvlen);
}

static void exp__propagate_key(struct cmd_server *s, struct cmd_client *c, const char *cmdname,
                               const char *key, size_t klen)
{
    char *argv[2] = {(char *)cmdname, (char *)key};
    size_t argvlen[2] = {strlen(cmdname), klen};
    cmd_propagate(s, c, 2, argv, argvlen);
}

/* Give the (live) key the deadline abs_ms, or delete it if that is not in
 * the future, and log the effect. */
static void exp__apply(struct cmd_server *s, struct cmd_client *c, const char *key, size_t klen,
                       int64_t abs_ms)
{
    struct kv *kv = cmd_db(s, c);
    if (abs_ms <= s->now_ms) {
        int rc = kv_del(kv, key, klen, s->now_ms);
        TRIAD_ASSERT(rc == 0);
        exp__propagate_key(s, c, "DEL", key, klen);
    } else {
        int rc = kv_set_expire(kv, key, klen, abs_ms, s->now_ms);
        TRIAD_ASSERT(rc == 0);
        exp__propagate_pexpireat(s, c, key, klen, abs_ms);
    }
    cmd_touch(s, c->db, key, klen);
}

/* ------------------------------------------------------------------------ */
/* EXPIRE PEXPIRE EXPIREAT PEXPIREAT                                         */
/* ------------------------------------------------------------------------ */

/* key t [NX|XX|GT|LT]: the deadline is base_ms + t (t in seconds or ms). */
static void exp__expire(struct cmd_server *s, struct cmd_client *c, int argc, char **argv,
                        size_t *argvlen, bool seconds, bool relative, const char *cmdname)
{
    uint32_t flags = 0;
    for (int j = 3; j < argc; j++) {
        if (cmd_arg_is(argv[j], argvlen[j], "NX")) {
            flags |= EXP_NX;
        } else if (cmd_arg_is(argv[j], argvlen[j], "XX")) {
            flags |= EXP_XX;
        } else if (cmd_arg_is(argv[j], argvlen[j], "GT")) {
            flags |= EXP_GT;
        } else if (cmd_arg_is(argv[j], argvlen[j], "LT")) {
            flags |= EXP_LT;
        } else {
            resp_add_errorf(c->out, "ERR Unsupported option %.*s", (int)argvlen[j], argv[j]);
            return;
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
        resp_add_error(c->out,
                       "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & EXP_GT) && (flags & EXP_LT)) {
        resp_add_error(c->out, "ERR GT and LT options at the same time are not compatible");
        return;
    }

    /* Negative times are allowed here (they delete the key); only
     * overflow is refused. */
    long long when;
    if (!cmd_parse_ll(argv[2], argvlen[2], &when)) {
        cmd_reply_not_integer(c);
        return;
    }
    if (seconds) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000)
            goto err_invalid;
        when *= 1000;
    }
    if (relative) {
        if (s->now_ms > 0 && when > LLONG_MAX - s->now_ms)
            goto err_invalid;
        when += s->now_ms;
    }

    struct kv_val v;
    if (kv_get(cmd_db(s, c), argv[1], argvlen[1], s->now_ms, &v) != 0) {
        resp_add_int(c->out, 0);
        return;
    }
    /* GT and LT treat "no deadline" as an infinite one. */
    bool has = v.expire_ms != KV_NO_EXPIRE;
    if (((flags & EXP_NX) && has) || ((flags & EXP_XX) && !has) ||
        ((flags & EXP_GT) && (!has || when <= v.expire_ms)) ||
        ((flags & EXP_LT) && has && when >= v.expire_ms)) {
        resp_add_int(c->out, 0);
        return;
    }
    exp__apply(s, c, argv[1], argvlen[1], when);
    resp_add_int(c->out, 1);
    return;

err_invalid:
    exp__reply_invalid(c, cmdname);
}

CMD_HANDLER(cmd_expire)
{
    exp__expire(s, c, argc, argv, argvlen, true, true, "expire");
}

CMD_HANDLER(cmd_pexpire)
{
    exp__expire(s, c, argc, argv, argvlen, false, true, "pexpire");
}

CMD_HANDLER(cmd_expireat)
{
    exp__expire(s, c, argc, argv, argvlen, true, false, "expireat");
}

CMD_HANDLER(cmd_pexpireat)
{
    exp__expire(s, c, argc, argv, argvlen, false, false, "pexpireat");
}

/* ------------------------------------------------------------------------ */
/* TTL PTTL EXPIRETIME PEXPIRETIME PERSIST                                   */
/* ------------------------------------------------------------------------ */

/* -2 if the key is absent, -1 if it has no deadline; else the time left
 * (or the deadline itself), in ms or rounded to seconds as Redis does. */
static void exp__ttl(struct cmd_server *s, struct cmd_client *c, const char *key, size_t klen,
                     bool ms, bool absolute)
{
    struct kv_val v;
    if (kv_get(cmd_db(s, c), key, klen, s->now_ms, &v) != 0) {
        s->stats.keyspace_misses++;
        resp_add_int(c->out, -2);
        return;
    }
    s->stats.keyspace_hits++;
    if (v.expire_ms == KV_NO_EXPIRE) {
        resp_add_int(c->out, -1);
        return;
    }
    long long t = absolute ? v.expire_ms : v.expire_ms - s->now_ms;
    if (t < 0)
        t = 0;
    resp_add_int(c->out, ms ? t : (t + 500) / 1000);
}

CMD_HANDLER(cmd_ttl)
{
    exp__ttl(s, c, argv[1], argvlen[1], false, false);
}

CMD_HANDLER(cmd_pttl)
{
    exp__ttl(s, c, argv[1], argvlen[1], true, false);
}

CMD_HANDLER(cmd_expiretime)
{
    exp__ttl(s, c, argv[1], argvlen[1], false, true);
}

CMD_HANDLER(cmd_pexpiretime)
{
    exp__ttl(s, c, argv[1], argvlen[1], true, true);
}

CMD_HANDLER(cmd_persist)
{
    struct kv_val v;
    struct kv *kv = cmd_db(s, c);
    if (kv_get(kv, argv[1], argvlen[1], s->now_ms, &v) != 0 || v.expire_ms == KV_NO_EXPIRE) {
        resp_add_int(c->out, 0);
        return;
    }
    int rc = kv_set_expire(kv, argv[1], argvlen[1], KV_NO_EXPIRE, s->now_ms);
    TRIAD_ASSERT(rc == 0);
    cmd_touch(s, c->db, argv[1], argvlen[1]);
    exp__propagate_key(s, c, "PERSIST", argv[1], argvlen[1]);
    resp_add_int(c->out, 1);
}

/* ------------------------------------------------------------------------ */
/* SETEX PSETEX GETEX                                                        */
/* ------------------------------------------------------------------------ */

/* key t value: SET with a relative deadline, logged as SET ... PXAT. */
static void exp__setex(struct cmd_server *s, struct cmd_client *c, char **argv, size_t *argvlen,
                       bool seconds, const char *cmdname)
{
    int64_t abs_ms;
    if (!cmd_expire_arg(s, c, argv[2], argvlen[2], seconds, true, cmdname, &abs_ms))
        return;
    /* t > 0, so the deadline is in the future. */
    TRIAD_ASSERT(abs_ms > s->now_ms);
    kv_set(cmd_db(s, c), argv[1], argvlen[1], argv[3], argvlen[3], abs_ms);
    cmd_touch(s, c->db, argv[1], argvlen[1]);

    cmd_propagate_set(s, c, argv[1], argvlen[1], argv[3], argvlen[3], abs_ms);
    cmd_reply_ok(c);
}

CMD_HANDLER(cmd_setex)
{
    exp__setex(s, c, argv, argvlen, true, "setex");
}

CMD_HANDLER(cmd_psetex)
{
    exp__setex(s, c, argv, argvlen, false, "psetex");
}

/* GETEX key [EX s | PX ms | EXAT ts | PXAT ms | PERSIST] */
CMD_HANDLER(cmd_getex)
{
    uint32_t flags = 0;
    int expire_arg = 0;
    for (int j = 2; j < argc; j++) {
        const char *o = argv[j];
        size_t n = argvlen[j];
        bool next = j + 1 < argc;
        uint32_t unit = 0;
        if (cmd_arg_is(o, n, "PERSIST") && !(flags & ~EXP_GETEX_PERSIST)) {
            flags |= EXP_GETEX_PERSIST;
        } else if ((cmd_arg_is(o, n, "EX") && (unit = EXP_GETEX_EX)) ||
                   (cmd_arg_is(o, n, "PX") && (unit = EXP_GETEX_PX)) ||
                   (cmd_arg_is(o, n, "EXAT") && (unit = EXP_GETEX_EXAT)) ||
                   (cmd_arg_is(o, n, "PXAT") && (unit = EXP_GETEX_PXAT))) {
            /* the same option twice is allowed (the last wins), two
             * different ones are not */
            if (!next || (flags & ~unit)) {
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

    /* Redis's order: the options' syntax, then the key (a missing one is
     * nil whatever the time given), then the time's value. */
    struct kv_val v;
    if (kv_get(cmd_db(s, c), argv[1], argvlen[1], s->now_ms, &v) != 0) {
        s->stats.keyspace_misses++;
        resp_add_null(c->out, c->proto);
        return;
    }
    s->stats.keyspace_hits++;
    int64_t abs_ms = 0;
    bool set_deadline = flags & ~EXP_GETEX_PERSIST;
    if (set_deadline) {
        bool seconds = flags & (EXP_GETEX_EX | EXP_GETEX_EXAT);
        bool relative = flags & (EXP_GETEX_EX | EXP_GETEX_PX);
        if (!cmd_expire_arg(s, c, argv[expire_arg], argvlen[expire_arg], seconds, relative,
                               "getex", &abs_ms))
            return;
    }
    /* the reply first: v.ptr is borrowed only until the kv changes */
    resp_add_bulk(c->out, v.ptr, v.len);
    if (set_deadline) {
        exp__apply(s, c, argv[1], argvlen[1], abs_ms);
    } else if ((flags & EXP_GETEX_PERSIST) && v.expire_ms != KV_NO_EXPIRE) {
        int rc = kv_set_expire(cmd_db(s, c), argv[1], argvlen[1], KV_NO_EXPIRE, s->now_ms);
        TRIAD_ASSERT(rc == 0);
        cmd_touch(s, c->db, argv[1], argvlen[1]);
        exp__propagate_key(s, c, "PERSIST", argv[1], argvlen[1]);
    }
}
