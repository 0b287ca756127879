"""Keyspace commands: DEL UNLINK EXISTS TYPE KEYS SCAN RENAME RENAMENX COPY
DBSIZE FLUSHALL FLUSHDB RANDOMKEY TOUCH SELECT."""
import pytest

from conftest import E_INT, E_SYNTAX, Err, arity, run_steps

E_DB_RANGE = Err("ERR DB index is out of range")
E_INT_RANGE = Err("ERR value is out of range, value must between -2147483648 and 2147483647")

CASES = {
    "del_counts_removed": [(("MSET", "a", "1", "b", "2"), "OK"), (("DEL", "a", "b", "c"), 2),
                           (("DEL", "a"), 0), (("EXISTS", "a", "b"), 0)],
    "del_same_key_twice_counts_once": [(("SET", "a", "1"), "OK"), (("DEL", "a", "a"), 1)],
    "unlink": [(("MSET", "a", "1", "b", "2"), "OK"), (("UNLINK", "a", "b", "c"), 2),
               (("DBSIZE",), 0)],
    "exists_counts_repeats": [(("SET", "a", "1"), "OK"), (("EXISTS", "a", "a", "nokey", "a"), 3)],
    "type": [(("SET", "a", "1"), "OK"), (("TYPE", "a"), "string"), (("TYPE", "nokey"), "none")],
    "rename": [(("SET", "a", "1"), "OK"), (("RENAME", "a", "b"), "OK"), (("EXISTS", "a"), 0),
               (("GET", "b"), b"1")],
    "rename_overwrites": [(("MSET", "a", "1", "b", "2"), "OK"), (("RENAME", "a", "b"), "OK"),
                          (("GET", "b"), b"1"), (("DBSIZE",), 1)],
    "rename_keeps_ttl": [(("SET", "a", "1", "EX", "100"), "OK"), (("RENAME", "a", "b"), "OK"),
                         (("TTL", "b"), 100)],
    "rename_to_itself": [(("SET", "a", "1"), "OK"), (("RENAME", "a", "a"), "OK"), (("GET", "a"), b"1")],
    "rename_missing": [(("RENAME", "nokey", "x"), Err("ERR no such key"))],
    "renamenx": [(("MSET", "a", "1", "b", "2"), "OK"), (("RENAMENX", "a", "b"), 0),
                 (("RENAMENX", "a", "c"), 1), (("MGET", "a", "b", "c"), [None, b"2", b"1"])],
    "renamenx_to_itself": [(("SET", "a", "1"), "OK"), (("RENAMENX", "a", "a"), 0)],
    "renamenx_missing": [(("RENAMENX", "nokey", "x"), Err("ERR no such key"))],
    "copy": [(("SET", "a", "1"), "OK"), (("COPY", "a", "b"), 1), (("MGET", "a", "b"), [b"1", b"1"])],
    "copy_no_replace": [(("MSET", "a", "1", "b", "2"), "OK"), (("COPY", "a", "b"), 0),
                        (("GET", "b"), b"2"), (("COPY", "a", "b", "REPLACE"), 1), (("GET", "b"), b"1")],
    "copy_keeps_ttl": [(("SET", "a", "1", "EX", "100"), "OK"), (("COPY", "a", "b"), 1),
                       (("TTL", "b"), 100)],
    "copy_missing": [(("COPY", "nokey", "b"), 0), (("EXISTS", "b"), 0)],
    "copy_same": [(("SET", "a", "1"), "OK"),
                  (("COPY", "a", "a"), Err("ERR source and destination objects are the same"))],
    "copy_to_other_db": [(("SET", "a", "1"), "OK"), (("COPY", "a", "a", "DB", "1"), 1),
                         (("SELECT", "1"), "OK"), (("GET", "a"), b"1"), (("SELECT", "0"), "OK")],
    "copy_db_out_of_range": [(("SET", "a", "1"), "OK"), (("COPY", "a", "b", "DB", "16"), E_DB_RANGE)],
    # past an int: Redis's getIntFromObjectOrReply words it so
    "copy_db_past_int": [(("SET", "a", "1"), "OK"), (("COPY", "a", "b", "DB", "2147483648"), E_INT_RANGE),
                         (("COPY", "a", "b", "DB", "x"), E_INT)],
    "select_past_int": [(("SELECT", "2147483648"), E_INT_RANGE), (("SELECT", "-2147483649"), E_INT_RANGE)],
    "copy_db_not_integer": [(("SET", "a", "1"), "OK"), (("COPY", "a", "b", "DB", "x"), E_INT)],
    "copy_bad_option": [(("SET", "a", "1"), "OK"), (("COPY", "a", "b", "FOO"), E_SYNTAX)],
    "dbsize": [(("DBSIZE",), 0), (("MSET", "a", "1", "b", "2"), "OK"), (("DBSIZE",), 2),
               (("DBSIZE", "x"), arity("dbsize"))],
    "randomkey_empty": [(("RANDOMKEY",), None)],
    "randomkey_single": [(("SET", "only", "1"), "OK"), (("RANDOMKEY",), b"only")],
    "touch": [(("MSET", "a", "1", "b", "2"), "OK"), (("TOUCH", "a", "b", "c"), 2),
              (("TOUCH",), arity("touch"))],
    "flushdb_and_flushall_options": [(("FLUSHDB", "SYNC"), "OK"), (("FLUSHDB", "ASYNC"), "OK"),
                                     (("FLUSHALL", "SYNC"), "OK"), (("FLUSHALL", "ASYNC"), "OK"),
                                     (("FLUSHALL", "FOO"), E_SYNTAX), (("FLUSHDB", "FOO"), E_SYNTAX)],
    "select_errors": [(("SELECT", "16"), E_DB_RANGE), (("SELECT", "-1"), E_DB_RANGE),
                      (("SELECT", "x"), E_INT)],
    "arity_errors": [(("DEL",), arity("del")), (("EXISTS",), arity("exists")),
                     (("RENAME", "a"), arity("rename")), (("TYPE",), arity("type")),
                     (("KEYS",), arity("keys"))],
    "scan_errors": [(("SCAN", "x"), Err("ERR invalid cursor")),
                    (("SCAN", "18446744073709551616"), Err("ERR invalid cursor")),
                    (("SCAN", "0", "COUNT", "0"), E_SYNTAX), (("SCAN", "0", "COUNT", "x"), E_INT),
                    (("SCAN", "0", "MATCH"), E_SYNTAX), (("SCAN", "0", "TYPE"), E_SYNTAX),
                    (("SCAN", "0", "FOO", "1"), E_SYNTAX)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_keyspace_command(c, name):
    run_steps(c, CASES[name])


GLOB_KEYS = [b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"h*llo", b"other"]
GLOB_CASES = [
    ("*", GLOB_KEYS),
    ("h?llo", [b"hello", b"hallo", b"hxllo", b"h*llo"]),
    ("h*llo", [b"hello", b"hallo", b"hxllo", b"hllo", b"heeeello", b"h*llo"]),
    ("h[ae]llo", [b"hello", b"hallo"]),
    ("h[^e]llo", [b"hallo", b"hxllo", b"h*llo"]),
    ("h[a-b]llo", [b"hallo"]),
    ("h\\*llo", [b"h*llo"]),
    ("nomatch*", []),
    ("other", [b"other"]),
]


@pytest.mark.parametrize("pattern,want", GLOB_CASES, ids=[p for p, _ in GLOB_CASES])
def test_keys_glob(c, pattern, want):
    assert c.cmd("MSET", *[x for k in GLOB_KEYS for x in (k, b"1")]) == "OK"
    got = c.cmd("KEYS", pattern)
    assert sorted(got) == sorted(want)


def scan_all(c, *opts, limit_calls=100000):
    seen, cursor, calls = [], b"0", 0
    while True:
        reply = c.cmd("SCAN", cursor, *opts)
        assert isinstance(reply, list) and len(reply) == 2, reply
        cursor, keys = reply
        assert isinstance(cursor, bytes)
        seen.extend(keys)
        calls += 1
        assert calls < limit_calls, "SCAN did not finish"
        if cursor == b"0":
            return seen


def test_scan_full_iteration_returns_every_key(c):
    want = {b"key:%d" % i for i in range(1000)}
    assert c.cmd("MSET", *[x for k in sorted(want) for x in (k, b"v")]) == "OK"
    seen = scan_all(c, "COUNT", "10")
    assert set(seen) == want  # every key at least once, nothing else


def test_scan_match_and_type(c):
    assert c.cmd("MSET", *[x for i in range(200) for x in (b"a:%d" % i, b"v", b"b:%d" % i, b"v")]) == "OK"
    assert set(scan_all(c, "MATCH", "a:*", "COUNT", "7")) == {b"a:%d" % i for i in range(200)}
    assert set(scan_all(c, "MATCH", "b:1?")) == {b"b:%d" % i for i in range(10, 20)}
    assert len(set(scan_all(c, "TYPE", "string"))) == 400
    assert scan_all(c, "TYPE", "hash") == []


def test_scan_empty_db(c):
    assert c.cmd("SCAN", "0") == [b"0", []]


def test_scan_iter_through_redis_py(r):
    r.mset({b"k%d" % i: b"v" for i in range(300)})
    assert set(r.scan_iter(count=17)) == {b"k%d" % i for i in range(300)}


def test_databases_are_independent(c):
    assert c.cmd("SET", "k", "db0") == "OK"
    assert c.cmd("SELECT", "1") == "OK"
    assert c.cmd("GET", "k") is None
    assert c.cmd("SET", "k", "db1") == "OK"
    assert c.cmd("SET", "k2", "x") == "OK"
    assert c.cmd("DBSIZE") == 2
    assert c.cmd("SELECT", "15") == "OK"
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("SELECT", "0") == "OK"
    assert c.cmd("GET", "k") == b"db0"
    assert c.cmd("DBSIZE") == 1


def test_flushdb_only_current_flushall_every_db(c):
    assert c.cmd("SET", "a", "1") == "OK"
    assert c.cmd("SELECT", "2") == "OK"
    assert c.cmd("SET", "b", "1") == "OK"
    assert c.cmd("FLUSHDB") == "OK"
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("SELECT", "0") == "OK"
    assert c.cmd("DBSIZE") == 1
    assert c.cmd("SELECT", "3") == "OK"
    assert c.cmd("SET", "c", "1") == "OK"
    assert c.cmd("FLUSHALL") == "OK"
    assert c.cmd("DBSIZE") == 0
    assert c.cmd("SELECT", "0") == "OK"
    assert c.cmd("DBSIZE") == 0


def test_select_is_per_connection(server, c):
    assert c.cmd("SELECT", "5") == "OK"
    assert c.cmd("SET", "k", "in5") == "OK"
    other = server.resp()
    try:
        assert other.cmd("GET", "k") is None
        assert other.cmd("SELECT", "5") == "OK"
        assert other.cmd("GET", "k") == b"in5"
    finally:
        other.close()


def test_randomkey_returns_existing_keys(c):
    keys = {b"r%d" % i for i in range(20)}
    assert c.cmd("MSET", *[x for k in keys for x in (k, b"v")]) == "OK"
    for _ in range(50):
        assert c.cmd("RANDOMKEY") in keys
