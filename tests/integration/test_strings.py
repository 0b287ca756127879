"""String commands: exact replies and error texts, as Redis 7 gives them."""
import pytest

from conftest import E_FLOAT, E_INT, E_SYNTAX, Err, arity, expire_err, run_steps

# Each case: a fresh database, then (command, exact reply) in order.
CASES = {
    "get_missing_is_nil": [(("GET", "k"), None)],
    "set_then_get": [(("SET", "k", "v"), "OK"), (("GET", "k"), b"v")],
    "set_binary_safe": [(("SET", "k", b"a\x00b\r\n\xff"), "OK"), (("GET", "k"), b"a\x00b\r\n\xff")],
    "set_empty_value": [(("SET", "k", ""), "OK"), (("GET", "k"), b""), (("STRLEN", "k"), 0)],
    "set_nx": [(("SET", "k", "1", "NX"), "OK"), (("SET", "k", "2", "NX"), None),
               (("GET", "k"), b"1")],
    "set_xx": [(("SET", "k", "1", "XX"), None), (("EXISTS", "k"), 0),
               (("SET", "k", "1"), "OK"), (("SET", "k", "2", "XX"), "OK"), (("GET", "k"), b"2")],
    "set_get_returns_old": [(("SET", "k", "1", "GET"), None), (("SET", "k", "2", "GET"), b"1"),
                            (("GET", "k"), b"2")],
    "set_nx_get_on_existing": [(("SET", "k", "1"), "OK"), (("SET", "k", "2", "NX", "GET"), b"1"),
                               (("GET", "k"), b"1")],
    "set_options_case_insensitive": [(("set", "k", "1", "nx", "ex", "100"), "OK"),
                                     (("ttl", "k"), 100)],
    "set_nx_xx_syntax": [(("SET", "k", "v", "NX", "XX"), E_SYNTAX)],
    "set_ex_px_syntax": [(("SET", "k", "v", "EX", "1", "PX", "1000"), E_SYNTAX)],
    "set_keepttl_ex_syntax": [(("SET", "k", "v", "KEEPTTL", "EX", "10"), E_SYNTAX)],
    "set_unknown_option_syntax": [(("SET", "k", "v", "FOO"), E_SYNTAX)],
    "set_ex_missing_value_syntax": [(("SET", "k", "v", "EX"), E_SYNTAX)],
    "set_ex_zero": [(("SET", "k", "v", "EX", "0"), expire_err("set"))],
    "set_ex_negative": [(("SET", "k", "v", "EX", "-1"), expire_err("set"))],
    "set_px_zero": [(("SET", "k", "v", "PX", "0"), expire_err("set"))],
    "set_exat_zero": [(("SET", "k", "v", "EXAT", "0"), expire_err("set"))],
    "set_pxat_zero": [(("SET", "k", "v", "PXAT", "0"), expire_err("set"))],
    "set_ex_overflow": [(("SET", "k", "v", "EX", "9223372036854775807"), expire_err("set"))],
    "set_ex_not_integer": [(("SET", "k", "v", "EX", "abc"), E_INT)],
    "set_px_too_big_integer": [(("SET", "k", "v", "PX", "9999999999999999999"), E_INT)],
    "set_arity": [(("SET", "k"), arity("set"))],
    "get_arity": [(("GET",), arity("get")), (("GET", "a", "b"), arity("get"))],
    "setnx": [(("SETNX", "k", "1"), 1), (("SETNX", "k", "2"), 0), (("GET", "k"), b"1")],
    "getset": [(("GETSET", "k", "1"), None), (("GETSET", "k", "2"), b"1"), (("GET", "k"), b"2")],
    "getdel": [(("SET", "k", "v"), "OK"), (("GETDEL", "k"), b"v"), (("GETDEL", "k"), None),
               (("EXISTS", "k"), 0)],
    "getex_plain": [(("SET", "k", "v"), "OK"), (("GETEX", "k"), b"v"), (("TTL", "k"), -1)],
    "getex_missing": [(("GETEX", "k", "EX", "10"), None), (("EXISTS", "k"), 0)],
    # the key before the time's value (the options' syntax before both)
    "getex_missing_bad_time": [(("GETEX", "k", "EX", "abc"), None), (("GETEX", "k", "PX", "-5"), None),
                               (("GETEX", "k", "EXAT", "0"), None), (("GETEX", "k", "FOO"), E_SYNTAX),
                               (("SET", "k", "v"), "OK"), (("GETEX", "k", "EX", "abc"), E_INT)],
    "getex_ex_then_persist": [(("SET", "k", "v"), "OK"), (("GETEX", "k", "EX", "100"), b"v"),
                              (("TTL", "k"), 100), (("GETEX", "k", "PERSIST"), b"v"),
                              (("TTL", "k"), -1)],
    "getex_px": [(("SET", "k", "v"), "OK"), (("GETEX", "k", "PX", "100000"), b"v"),
                 (("TTL", "k"), 100)],
    "getex_exat_pxat": [(("SET", "k", "v"), "OK"), (("GETEX", "k", "EXAT", "32503680000"), b"v"),
                        (("EXPIRETIME", "k"), 32503680000),
                        (("GETEX", "k", "PXAT", "32503680000123"), b"v"),
                        (("PEXPIRETIME", "k"), 32503680000123)],
    "getex_ex_zero": [(("SET", "k", "v"), "OK"), (("GETEX", "k", "EX", "0"), expire_err("getex"))],
    "getex_two_options_syntax": [(("SET", "k", "v"), "OK"),
                                 (("GETEX", "k", "PERSIST", "EX", "1"), E_SYNTAX)],
    "mset_mget": [(("MSET", "a", "1", "b", "2"), "OK"),
                  (("MGET", "a", "nokey", "b"), [b"1", None, b"2"])],
    "mset_odd_arity": [(("MSET", "a"), arity("mset")), (("MSET", "a", "1", "b"), arity("mset"))],
    "mset_last_wins": [(("MSET", "a", "1", "a", "2"), "OK"), (("GET", "a"), b"2")],
    "mget_arity": [(("MGET",), arity("mget"))],
    "msetnx_all_new": [(("MSETNX", "a", "1", "b", "2"), 1), (("MGET", "a", "b"), [b"1", b"2"])],
    "msetnx_one_exists_sets_none": [(("SET", "b", "x"), "OK"), (("MSETNX", "a", "1", "b", "2"), 0),
                                    (("MGET", "a", "b"), [None, b"x"])],
    "msetnx_arity": [(("MSETNX", "a"), arity("msetnx"))],
    "incr_decr": [(("INCR", "n"), 1), (("INCR", "n"), 2), (("DECR", "n"), 1), (("DECR", "n"), 0),
                  (("DECR", "n"), -1), (("GET", "n"), b"-1")],
    "incrby_decrby": [(("INCRBY", "n", "10"), 10), (("DECRBY", "n", "3"), 7),
                      (("INCRBY", "n", "-10"), -3), (("DECRBY", "n", "-3"), 0)],
    "incr_keeps_ttl": [(("SET", "n", "1", "EX", "100"), "OK"), (("INCR", "n"), 2),
                       (("TTL", "n"), 100)],
    "incr_not_integer": [(("SET", "n", "abc"), "OK"), (("INCR", "n"), E_INT)],
    "incr_spaces_not_integer": [(("SET", "n", " 1"), "OK"), (("INCR", "n"), E_INT)],
    "incr_float_string_not_integer": [(("SET", "n", "1.5"), "OK"), (("INCR", "n"), E_INT)],
    "incr_too_long_not_integer": [(("SET", "n", "99999999999999999999"), "OK"), (("INCR", "n"), E_INT)],
    "incrby_arg_not_integer": [(("INCRBY", "n", "1.5"), E_INT), (("INCRBY", "n", "x"), E_INT)],
    "incr_overflow": [(("SET", "n", "9223372036854775807"), "OK"),
                      (("INCR", "n"), Err("ERR increment or decrement would overflow")),
                      (("GET", "n"), b"9223372036854775807")],
    "decr_underflow": [(("SET", "n", "-9223372036854775808"), "OK"),
                       (("DECR", "n"), Err("ERR increment or decrement would overflow"))],
    "incrby_overflow": [(("SET", "n", "1"), "OK"),
                        (("INCRBY", "n", "9223372036854775807"),
                         Err("ERR increment or decrement would overflow"))],
    "decrby_llong_min": [(("DECRBY", "n", "-9223372036854775808"),
                          Err("ERR decrement would overflow"))],
    "incr_arity": [(("INCR",), arity("incr")), (("INCRBY", "n"), arity("incrby"))],
    "incrbyfloat_doc_example": [(("SET", "f", "10.50"), "OK"), (("INCRBYFLOAT", "f", "0.1"), b"10.6"),
                                (("INCRBYFLOAT", "f", "-5"), b"5.6"),
                                (("SET", "f", "5.0e3"), "OK"),
                                (("INCRBYFLOAT", "f", "2.0e2"), b"5200")],
    "incrbyfloat_missing_key": [(("INCRBYFLOAT", "f", "1.5"), b"1.5"), (("GET", "f"), b"1.5")],
    "incrbyfloat_integer_result": [(("SET", "f", "1"), "OK"), (("INCRBYFLOAT", "f", "2"), b"3")],
    "incrbyfloat_bad_value": [(("SET", "f", "abc"), "OK"), (("INCRBYFLOAT", "f", "1"), E_FLOAT)],
    "incrbyfloat_bad_increment": [(("INCRBYFLOAT", "f", "abc"), E_FLOAT)],
    "incrbyfloat_infinity": [(("SET", "f", "1"), "OK"),
                             (("INCRBYFLOAT", "f", "inf"),
                              Err("ERR increment would produce NaN or Infinity"))],
    "append": [(("APPEND", "k", "Hello"), 5), (("APPEND", "k", " World"), 11),
               (("GET", "k"), b"Hello World")],
    "strlen": [(("STRLEN", "k"), 0), (("SET", "k", "abc"), "OK"), (("STRLEN", "k"), 3)],
    "setrange_doc_example": [(("SET", "k", "Hello World"), "OK"), (("SETRANGE", "k", "6", "Redis"), 11),
                             (("GET", "k"), b"Hello Redis")],
    "setrange_pads_with_zero_bytes": [(("SETRANGE", "k", "3", "ab"), 5), (("GET", "k"), b"\x00\x00\x00ab")],
    "setrange_empty_on_missing_creates_nothing": [(("SETRANGE", "k", "0", ""), 0), (("EXISTS", "k"), 0)],
    "setrange_negative_offset": [(("SETRANGE", "k", "-1", "x"), Err("ERR offset is out of range"))],
    "setrange_too_big": [(("SETRANGE", "k", "536870912", "x"),
                          Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"))],
    "getrange": [(("SET", "k", "This is a string"), "OK"), (("GETRANGE", "k", "0", "3"), b"This"),
                 (("GETRANGE", "k", "-3", "-1"), b"ing"), (("GETRANGE", "k", "0", "-1"), b"This is a string"),
                 (("GETRANGE", "k", "10", "100"), b"string"), (("GETRANGE", "k", "5", "2"), b""),
                 (("GETRANGE", "k", "-100", "-1"), b"This is a string"),
                 (("GETRANGE", "nokey", "0", "-1"), b""),
                 (("GETRANGE", "k", "a", "1"), E_INT)],
    "substr_is_getrange": [(("SET", "k", "Hello"), "OK"), (("SUBSTR", "k", "1", "3"), b"ell")],
    "lcs": [(("MSET", "k1", "ohmytext", "k2", "mynewtext"), "OK"), (("LCS", "k1", "k2"), b"mytext"),
            (("LCS", "k1", "k2", "LEN"), 6),
            (("LCS", "k1", "k2", "IDX"),
             [b"matches", [[[4, 7], [5, 8]], [[2, 3], [0, 1]]], b"len", 6]),
            (("LCS", "k1", "k2", "IDX", "MINMATCHLEN", "4", "WITHMATCHLEN"),
             [b"matches", [[[4, 7], [5, 8], 4]], b"len", 6])],
    "lcs_missing_keys": [(("LCS", "a", "b"), b""), (("LCS", "a", "b", "LEN"), 0)],
    "unknown_command": [(("FOO", "bar", "baz"),
                         Err("ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' "))],
    "unknown_command_no_args": [(("NOSUCHCMD",), Err("ERR unknown command 'NOSUCHCMD', with args beginning with: "))],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_string_command(c, name):
    run_steps(c, CASES[name])


def test_command_names_are_case_insensitive(c):
    assert c.cmd("sEt", "k", "v") == "OK"
    assert c.cmd("get", "k") == b"v"


def test_set_then_get_through_redis_py(r):
    assert r.set("key", b"value") is True
    assert r.get("key") == b"value"
    assert r.set("key", b"x", nx=True) is None
    assert r.set("key", b"y", xx=True, get=True) == b"value"
    assert r.mget(["key", "none"]) == [b"y", None]
    assert r.incr("n", 5) == 5
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.getrange("key", 0, 0) == b"y"


def test_large_value_round_trips(c):
    value = bytes(range(256)) * 4096  # 1 MiB of every byte value
    assert c.cmd("SET", "big", value) == "OK"
    assert c.cmd("GET", "big") == value
    assert c.cmd("STRLEN", "big") == len(value)


# SET key value IFEQ old: compare-and-set, as Valkey spells it.
IFEQ_CASES = {
    "ifeq_match_sets": [(("SET", "k", "old"), "OK"), (("SET", "k", "new", "IFEQ", "old"), "OK"),
                        (("GET", "k"), b"new")],
    "ifeq_mismatch_keeps": [(("SET", "k", "old"), "OK"), (("SET", "k", "new", "IFEQ", "other"), None),
                            (("GET", "k"), b"old")],
    "ifeq_missing_key_not_created": [(("SET", "k", "new", "IFEQ", "old"), None), (("EXISTS", "k"), 0)],
    "ifeq_with_get_returns_old": [(("SET", "k", "old"), "OK"),
                                  (("SET", "k", "new", "IFEQ", "old", "GET"), b"old"),
                                  (("GET", "k"), b"new")],
    "ifeq_with_ex": [(("SET", "k", "old"), "OK"), (("SET", "k", "new", "IFEQ", "old", "EX", "100"), "OK"),
                     (("TTL", "k"), 100)],
    "ifeq_with_nx_is_syntax_error": [(("SET", "k", "old"), "OK"),
                                     (("SET", "k", "new", "IFEQ", "old", "NX"), E_SYNTAX)],
    "ifeq_with_xx_is_syntax_error": [(("SET", "k", "new", "IFEQ", "old", "XX"), E_SYNTAX)],
    "ifeq_missing_value_is_syntax_error": [(("SET", "k", "new", "IFEQ"), E_SYNTAX)],
}


@pytest.mark.triad_only("SET ... IFEQ is a Valkey/Triad extension; Redis 7 rejects it")
@pytest.mark.parametrize("name", sorted(IFEQ_CASES))
def test_set_ifeq(c, name):
    run_steps(c, IFEQ_CASES[name])


E_TOO_BIG = Err("ERR string exceeds maximum allowed size (proto-max-bulk-len)")


@pytest.mark.triad_only("restarts on triad's log; the first half matches redis-server 7.0.15")
def test_append_and_setrange_obey_proto_max_bulk_len(make_server):
    """APPEND and SETRANGE grow no string past proto-max-bulk-len, as set
    now; a restart under a lower setting still replays the log's APPENDs
    and SETRANGEs that passed the check when they ran."""
    mib = 1024 * 1024
    s = make_server(extra_args=["--fsync", "always"])
    c = s.resp()
    assert c.cmd("CONFIG", "SET", "proto-max-bulk-len", "1mb") == "OK"
    assert c.cmd("SETRANGE", "r", str(mib), "x") == E_TOO_BIG
    assert c.cmd("EXISTS", "r") == 0
    assert c.cmd("SETRANGE", "r", str(mib - 1), "x") == mib
    assert c.cmd("SET", "a", "x" * (mib - 4)) == "OK"
    assert c.cmd("APPEND", "a", "yyyy") == mib
    assert c.cmd("APPEND", "a", "z") == E_TOO_BIG
    assert c.cmd("STRLEN", "a") == mib
    assert c.cmd("CONFIG", "SET", "proto-max-bulk-len", "4mb") == "OK"
    assert c.cmd("APPEND", "a", "z" * mib) == 2 * mib
    assert c.cmd("SETRANGE", "r", str(3 * mib - 1), "x") == 3 * mib
    c.close()
    s.stop()
    s.extra_args += ["--proto-max-bulk-len", "1mb"]
    s.start()
    c = s.resp()
    assert c.cmd("STRLEN", "a") == 2 * mib
    assert c.cmd("STRLEN", "r") == 3 * mib
    assert c.cmd("APPEND", "a", "") == E_TOO_BIG  # already past the limit, as Redis says
    assert c.cmd("SETRANGE", "a", str(mib), "w") == E_TOO_BIG  # offset + length is checked
    assert c.cmd("SETRANGE", "a", "0", "w") == 2 * mib
    c.close()
