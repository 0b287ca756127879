"""Expiry: EXPIRE family with NX XX GT LT, TTL/PTTL, PERSIST, EXPIRETIME,
SETEX/PSETEX, lazy and active expiry."""
import pytest

from conftest import E_INT, Err, arity, expire_err, run_steps, wait_until

FAR_S = 32503680000          # year 3000, as unix seconds
FAR_MS = FAR_S * 1000 + 123

E_NX_MIX = Err("ERR NX and XX, GT or LT options at the same time are not compatible")
E_GT_LT = Err("ERR GT and LT options at the same time are not compatible")

CASES = {
    "expire_sets_ttl": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "100"), 1), (("TTL", "a"), 100)],
    "expire_missing_key": [(("EXPIRE", "nokey", "10"), 0), (("PEXPIRE", "nokey", "10"), 0),
                           (("EXPIREAT", "nokey", str(FAR_S)), 0),
                           (("PEXPIREAT", "nokey", str(FAR_MS)), 0)],
    "ttl_states": [(("TTL", "nokey"), -2), (("PTTL", "nokey"), -2), (("SET", "a", "1"), "OK"),
                   (("TTL", "a"), -1), (("PTTL", "a"), -1)],
    "expiretime_states": [(("EXPIRETIME", "nokey"), -2), (("PEXPIRETIME", "nokey"), -2),
                          (("SET", "a", "1"), "OK"), (("EXPIRETIME", "a"), -1),
                          (("PEXPIRETIME", "a"), -1)],
    "expireat_and_expiretime": [(("SET", "a", "1"), "OK"), (("EXPIREAT", "a", str(FAR_S)), 1),
                                (("EXPIRETIME", "a"), FAR_S), (("PEXPIRETIME", "a"), FAR_S * 1000)],
    "pexpireat_and_pexpiretime": [(("SET", "a", "1"), "OK"), (("PEXPIREAT", "a", str(FAR_MS)), 1),
                                  (("PEXPIRETIME", "a"), FAR_MS), (("EXPIRETIME", "a"), FAR_S)],
    "expire_nx": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "100", "NX"), 1),
                  (("EXPIRE", "a", "200", "NX"), 0), (("TTL", "a"), 100)],
    "expire_xx": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "100", "XX"), 0), (("TTL", "a"), -1),
                  (("EXPIRE", "a", "100"), 1), (("EXPIRE", "a", "200", "XX"), 1), (("TTL", "a"), 200)],
    "expire_gt": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "100", "GT"), 0), (("TTL", "a"), -1),
                  (("EXPIRE", "a", "100"), 1), (("EXPIRE", "a", "50", "GT"), 0),
                  (("EXPIRE", "a", "200", "GT"), 1), (("TTL", "a"), 200)],
    "expire_lt": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "100", "LT"), 1),  # no TTL = infinite
                  (("EXPIRE", "a", "200", "LT"), 0), (("EXPIRE", "a", "50", "LT"), 1), (("TTL", "a"), 50)],
    "pexpire_options": [(("SET", "a", "1"), "OK"), (("PEXPIRE", "a", "100000", "NX"), 1),
                        (("PEXPIRE", "a", "50000", "GT"), 0), (("PEXPIRE", "a", "50000", "LT"), 1),
                        (("TTL", "a"), 50)],
    "expireat_options": [(("SET", "a", "1"), "OK"), (("EXPIREAT", "a", str(FAR_S), "XX"), 0),
                         (("EXPIREAT", "a", str(FAR_S), "NX"), 1),
                         (("EXPIREAT", "a", str(FAR_S + 10), "LT"), 0),
                         (("EXPIREAT", "a", str(FAR_S + 10), "GT"), 1), (("EXPIRETIME", "a"), FAR_S + 10)],
    "expire_option_conflicts": [(("SET", "a", "1"), "OK"),
                                (("EXPIRE", "a", "100", "NX", "XX"), E_NX_MIX),
                                (("EXPIRE", "a", "100", "NX", "GT"), E_NX_MIX),
                                (("EXPIRE", "a", "100", "GT", "LT"), E_GT_LT),
                                (("EXPIRE", "a", "100", "FOO"), Err("ERR Unsupported option FOO")),
                                (("TTL", "a"), -1)],
    "expire_not_integer": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "abc"), E_INT),
                           (("PEXPIRE", "a", "1.5"), E_INT)],
    "expire_overflow": [(("SET", "a", "1"), "OK"),
                        (("EXPIRE", "a", "9223372036854775807"), expire_err("expire")),
                        (("EXPIRE", "a", "9223372036854775"), expire_err("expire")),
                        (("PEXPIRE", "a", "9223372036854775807"), expire_err("pexpire")),
                        (("EXPIREAT", "a", "9223372036854775807"), expire_err("expireat")),
                        (("TTL", "a"), -1)],
    "expire_negative_deletes": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "-1"), 1),
                                (("EXISTS", "a"), 0)],
    "expire_zero_deletes": [(("SET", "a", "1"), "OK"), (("EXPIRE", "a", "0"), 1), (("GET", "a"), None)],
    "expireat_past_deletes": [(("SET", "a", "1"), "OK"), (("PEXPIREAT", "a", "0"), 1),
                              (("EXISTS", "a"), 0), (("SET", "b", "1"), "OK"),
                              (("EXPIREAT", "b", "1"), 1), (("DBSIZE",), 0)],
    "persist": [(("SET", "a", "1", "EX", "100"), "OK"), (("PERSIST", "a"), 1), (("TTL", "a"), -1),
                (("PERSIST", "a"), 0), (("PERSIST", "nokey"), 0)],
    "set_clears_ttl_keepttl_keeps": [(("SET", "a", "1", "EX", "100"), "OK"), (("SET", "a", "2"), "OK"),
                                     (("TTL", "a"), -1), (("SET", "a", "3", "EX", "100"), "OK"),
                                     (("SET", "a", "4", "KEEPTTL"), "OK"), (("TTL", "a"), 100)],
    "set_exat_pxat": [(("SET", "a", "1", "EXAT", str(FAR_S)), "OK"), (("EXPIRETIME", "a"), FAR_S),
                      (("SET", "a", "1", "PXAT", str(FAR_MS)), "OK"), (("PEXPIRETIME", "a"), FAR_MS)],
    "set_px": [(("SET", "a", "1", "PX", "100000"), "OK"), (("TTL", "a"), 100)],
    "setex": [(("SETEX", "a", "100", "v"), "OK"), (("GET", "a"), b"v"), (("TTL", "a"), 100)],
    "setex_errors": [(("SETEX", "a", "0", "v"), expire_err("setex")),
                     (("SETEX", "a", "-5", "v"), expire_err("setex")),
                     (("SETEX", "a", "abc", "v"), E_INT), (("SETEX", "a", "10"), arity("setex")),
                     (("EXISTS", "a"), 0)],
    "psetex": [(("PSETEX", "a", "100000", "v"), "OK"), (("TTL", "a"), 100)],
    "psetex_errors": [(("PSETEX", "a", "0", "v"), expire_err("psetex")),
                      (("PSETEX", "a", "-5", "v"), expire_err("psetex"))],
    "getset_clears_ttl": [(("SET", "a", "1", "EX", "100"), "OK"), (("GETSET", "a", "2"), b"1"),
                          (("TTL", "a"), -1)],
    "append_keeps_ttl": [(("SET", "a", "1", "EX", "100"), "OK"), (("APPEND", "a", "2"), 2),
                         (("TTL", "a"), 100)],
    "arity": [(("EXPIRE", "a"), arity("expire")), (("TTL",), arity("ttl")),
              (("PERSIST",), arity("persist")), (("EXPIRETIME",), arity("expiretime"))],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_expiry_command(c, name):
    run_steps(c, CASES[name])


def test_pttl_is_within_the_set_bound(c):
    assert c.cmd("PSETEX", "a", "100000", "v") == "OK"
    pttl = c.cmd("PTTL", "a")
    assert 0 < pttl <= 100000
    assert c.cmd("PEXPIRE", "a", "5000") == 1
    assert 0 < c.cmd("PTTL", "a") <= 5000


def test_key_with_100ms_ttl_is_gone_after_it_passes(c):
    assert c.cmd("SET", "short", "v", "PX", "100") == "OK"
    assert c.cmd("SET", "long", "v", "EX", "100") == "OK"
    assert wait_until(lambda: c.cmd("GET", "short") is None, timeout_s=5.0)
    assert c.cmd("EXISTS", "short") == 0
    assert c.cmd("TTL", "short") == -2
    assert c.cmd("GET", "long") == b"v"


def test_expired_key_is_not_returned_by_any_read(c):
    assert c.cmd("SET", "k", "v", "PX", "50") == "OK"
    assert wait_until(lambda: c.cmd("PTTL", "k") == -2, timeout_s=5.0)
    assert c.cmd("MGET", "k") == [None]
    assert c.cmd("KEYS", "*") == []
    assert c.cmd("EXISTS", "k") == 0
    assert c.cmd("STRLEN", "k") == 0
    assert c.cmd("SET", "k", "new", "NX") == "OK"  # expired counts as missing


def test_active_expiry_removes_keys_nobody_reads(c):
    n = 500
    cmds = [("SET", "vol:%d" % i, "v", "PX", "100") for i in range(n)]
    assert c.pipeline(cmds) == ["OK"] * n
    assert c.cmd("SET", "keeper", "v") == "OK"
    # Only DBSIZE is asked: no key is touched, so only active expiry can
    # bring the count down.
    assert wait_until(lambda: c.cmd("DBSIZE") == 1, timeout_s=15.0, interval_s=0.1), \
        "DBSIZE still %d" % c.cmd("DBSIZE")
    assert c.cmd("GET", "keeper") == b"v"


def test_expiry_through_redis_py(r):
    r.set("a", b"1", ex=100)
    assert r.ttl("a") == 100
    assert r.expire("a", 200, gt=True) is True
    assert r.persist("a") is True
    assert r.ttl("a") == -1
