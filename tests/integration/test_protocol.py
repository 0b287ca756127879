"""The wire: exact bytes in RESP2 and RESP3, inline commands, and bad input.

Bad input gets Redis's error text (where Redis sends one), the connection is
closed, and other clients never notice.
"""
import random

import pytest

from conftest import RespConn, pack_command, running_server


# (commands to set up, command, RESP2 bytes, RESP3 bytes)
EXACT = [
    ("ok", [], ("SET", "k", "v"), b"+OK\r\n", b"+OK\r\n"),
    ("bulk", [("SET", "k", "v")], ("GET", "k"), b"$1\r\nv\r\n", b"$1\r\nv\r\n"),
    ("empty_bulk", [("SET", "k", "")], ("GET", "k"), b"$0\r\n\r\n", b"$0\r\n\r\n"),
    ("nil", [], ("GET", "k"), b"$-1\r\n", b"_\r\n"),
    ("nil_in_array", [("SET", "a", "1")], ("MGET", "a", "b"),
     b"*2\r\n$1\r\n1\r\n$-1\r\n", b"*2\r\n$1\r\n1\r\n_\r\n"),
    ("set_nx_fail_nil", [("SET", "k", "v")], ("SET", "k", "v", "NX"), b"$-1\r\n", b"_\r\n"),
    ("integer", [], ("INCR", "n"), b":1\r\n", b":1\r\n"),
    ("negative_integer", [], ("TTL", "k"), b":-2\r\n", b":-2\r\n"),
    ("incrbyfloat_is_bulk", [("SET", "f", "1.5")], ("INCRBYFLOAT", "f", "1"),
     b"$3\r\n2.5\r\n", b"$3\r\n2.5\r\n"),
    ("type_is_status", [("SET", "k", "v")], ("TYPE", "k"), b"+string\r\n", b"+string\r\n"),
    ("empty_array", [], ("KEYS", "*"), b"*0\r\n", b"*0\r\n"),
    ("scan", [], ("SCAN", "0"), b"*2\r\n$1\r\n0\r\n*0\r\n", b"*2\r\n$1\r\n0\r\n*0\r\n"),
    ("config_get", [], ("CONFIG", "GET", "maxmemory"),
     b"*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n", b"%1\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"),
    ("lcs_idx_map", [], ("LCS", "a", "b", "IDX"),
     b"*4\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n",
     b"%2\r\n$7\r\nmatches\r\n*0\r\n$3\r\nlen\r\n:0\r\n"),
    ("getname_nil", [], ("CLIENT", "GETNAME"), b"$-1\r\n", b"_\r\n"),
    ("randomkey_nil", [], ("RANDOMKEY",), b"$-1\r\n", b"_\r\n"),
    ("command_info_unknown_nil", [], ("COMMAND", "INFO", "nosuch"), b"*1\r\n$-1\r\n",
     b"*1\r\n_\r\n"),
    ("error", [], ("GET",), b"-ERR wrong number of arguments for 'get' command\r\n",
     b"-ERR wrong number of arguments for 'get' command\r\n"),
    ("wrong_int", [("SET", "k", "v")], ("INCR", "k"),
     b"-ERR value is not an integer or out of range\r\n",
     b"-ERR value is not an integer or out of range\r\n"),
    ("queued", [("MULTI",)], ("SET", "k", "v"), b"+QUEUED\r\n", b"+QUEUED\r\n"),
    ("exec", [("MULTI",), ("SET", "k", "v"), ("GET", "nokey")], ("EXEC",),
     b"*2\r\n+OK\r\n$-1\r\n", b"*2\r\n+OK\r\n_\r\n"),
    ("ping", [], ("PING",), b"+PONG\r\n", b"+PONG\r\n"),
    ("ping_arg", [], ("PING", "x"), b"$1\r\nx\r\n", b"$1\r\nx\r\n"),
]


@pytest.mark.parametrize("proto", [2, 3])
@pytest.mark.parametrize("name,setup,cmd,want2,want3", EXACT, ids=[e[0] for e in EXACT])
def test_exact_reply_bytes(server, r, proto, name, setup, cmd, want2, want3):
    conn = RespConn(server.port)
    try:
        if proto == 3:
            assert isinstance(conn.cmd("HELLO", "3"), dict)
        for s in setup:
            conn.cmd(*s)
        conn.send(pack_command(*cmd))
        want = want2 if proto == 2 else want3
        got = conn.f.read(len(want))
        assert got == want
        # nothing extra was sent: the next reply is exactly the expected one
        in_multi = ("MULTI",) in setup and cmd != ("EXEC",)
        conn.send(pack_command("DISCARD" if in_multi else "PING"))
        assert conn.f.readline() == (b"+OK\r\n" if in_multi else b"+PONG\r\n")
    finally:
        conn.close()


def test_hello_3_exact_map_header(raw, r):
    conn = raw()
    conn.send(pack_command("HELLO", "3"))
    head = conn.recv_exact(4)
    assert head == b"%7\r\n"


# ---------------------------------------------------------------- inline


@pytest.mark.parametrize("line,want", [
    (b"PING\r\n", b"+PONG\r\n"),
    (b"PING\n", b"+PONG\r\n"),
    (b"ping hello\r\n", b"$5\r\nhello\r\n"),
    (b"SET a \"b c\"\r\nGET a\r\n", b"+OK\r\n$3\r\nb c\r\n"),
    (b"SET a 'b c'\r\nGET a\r\n", b"+OK\r\n$3\r\nb c\r\n"),
    (b"SET a \"x\\\"y\"\r\nGET a\r\n", b"+OK\r\n$3\r\nx\"y\r\n"),
    (b"\r\n\r\n   \r\nPING\r\n", b"+PONG\r\n"),  # empty lines are ignored
    (b"SET  a   b\r\nGET a\r\n", b"+OK\r\n$1\r\nb\r\n"),
    (b"GET\r\n", b"-ERR wrong number of arguments for 'get' command\r\n"),
])
def test_inline_command(raw, r, line, want):
    conn = raw()
    conn.send(line)
    assert conn.recv_exact(len(want)) == want
    conn.send(b"PING\r\n")
    assert conn.recv_exact(7) == b"+PONG\r\n"


def test_inline_and_multibulk_mix_in_one_write(raw, r):
    conn = raw()
    conn.send(b"SET k 1\r\n" + pack_command("INCR", "k") + b"GET k\r\n")
    want = b"+OK\r\n:2\r\n$1\r\n2\r\n"
    assert conn.recv_exact(len(want)) == want


# ---------------------------------------------------------------- bad input

PROTO = b"-ERR Protocol error: "

BAD_FRAMES = [
    ("bulk_len_2g", b"*1\r\n$2147483648\r\n", PROTO + b"invalid bulk length\r\n"),
    ("bulk_len_over_512m", b"*1\r\n$536870913\r\n", PROTO + b"invalid bulk length\r\n"),
    ("bulk_len_negative", b"*1\r\n$-5\r\n", PROTO + b"invalid bulk length\r\n"),
    ("bulk_len_not_number", b"*1\r\n$abc\r\n", PROTO + b"invalid bulk length\r\n"),
    ("bulk_len_huge_digits", b"*1\r\n$" + b"1" * 40 + b"\r\n", PROTO + b"invalid bulk length\r\n"),
    ("multibulk_len_not_number", b"*abc\r\n", PROTO + b"invalid multibulk length\r\n"),
    ("multibulk_len_2g", b"*2147483648\r\n", PROTO + b"invalid multibulk length\r\n"),
    ("expected_dollar", b"*1\r\nx\r\n", PROTO + b"expected '$', got 'x'\r\n"),
    ("expected_dollar_colon", b"*1\r\n:5\r\n", PROTO + b"expected '$', got ':'\r\n"),
    # a CR or LF the client sent is a space in the error line, as in Redis
    ("expected_dollar_got_cr", b"*1\r\n\r\n", PROTO + b"expected '$', got ' '\r\n"),
    ("expected_dollar_got_lf", b"*1\r\n\n\r\n", PROTO + b"expected '$', got ' '\r\n"),
    ("unbalanced_double_quotes", b"SET a \"b\r\n", PROTO + b"unbalanced quotes in request\r\n"),
    ("unbalanced_single_quotes", b"SET a 'b\r\n", PROTO + b"unbalanced quotes in request\r\n"),
    ("too_big_inline", b"x" * 70000, PROTO + b"too big inline request\r\n"),
    ("good_then_bad", pack_command("PING") + b"*1\r\n$x\r\n",
     b"+PONG\r\n" + PROTO + b"invalid bulk length\r\n"),
]


@pytest.fixture
def bystander(server, r):
    """A client connected before the bad one, which must keep working."""
    conn = server.resp()
    assert conn.cmd("SET", "bystander", "ok") == "OK"
    yield conn
    assert conn.cmd("GET", "bystander") == b"ok"
    assert conn.cmd("PING") == "PONG"
    conn.close()


@pytest.mark.parametrize("name,data,want", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
def test_bad_frame_gets_error_and_close(raw, bystander, name, data, want):
    conn = raw()
    conn.send(data)
    got = conn.recv_until_close()
    assert got == want
    assert bystander.cmd("INCR", "counter") == 1


@pytest.mark.parametrize("name,data", [
    ("unterminated_multibulk", b"*3\r\n$3\r\nSET\r\n"),
    ("half_sent_bulk", b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$5\r\nval"),
    ("half_sent_header", b"*3\r\n$3\r\nSET\r\n$4"),
    ("multibulk_count_only", b"*2"),
    ("inline_without_newline", b"SET half value"),
])
def test_incomplete_frame_then_disconnect(raw, bystander, name, data):
    conn = raw()
    conn.send(data)
    conn.close()
    # the partial command never runs, and the server carries on
    assert bystander.cmd("EXISTS", "half") == 0
    assert bystander.cmd("DBSIZE") == 1


def test_incomplete_frame_waits_for_the_rest(raw, r):
    conn = raw()
    conn.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva")
    conn.sock.settimeout(0.3)
    with pytest.raises(OSError):  # socket.timeout: no reply yet
        conn.sock.recv(100)
    conn.sock.settimeout(10)
    conn.send(b"lue\r\n")
    assert conn.recv_exact(5) == b"+OK\r\n"
    assert r.get("k") == b"value"


def test_frame_split_byte_by_byte(raw, r):
    conn = raw()
    for b in pack_command("SET", "split", "bytes"):
        conn.send(bytes([b]))
    assert conn.recv_exact(5) == b"+OK\r\n"
    assert r.get("split") == b"bytes"


def test_null_and_zero_multibulk_are_ignored(raw, r):
    conn = raw()
    conn.send(b"*0\r\n*-1\r\n" + pack_command("PING"))
    assert conn.recv_exact(7) == b"+PONG\r\n"


@pytest.mark.parametrize("seed", range(12))
def test_random_bytes_never_hurt_the_server(server, raw, bystander, seed):
    rng = random.Random(seed)
    prefixes = [b"", b"*", b"*3\r\n$3\r\nSET\r\n$", b"*2\r\n"]
    payload = prefixes[seed % len(prefixes)] + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
    conn = raw()
    conn.sock.settimeout(0.5)
    try:
        conn.send(payload)
        conn.send(b"\r\n")
        conn.sock.recv(65536)  # whatever it answers, if anything
    except OSError:
        pass
    conn.close()
    assert server.running()
    fresh = server.resp()
    try:
        assert fresh.cmd("PING") == "PONG"
    finally:
        fresh.close()
    assert bystander.cmd("GET", "bystander") == b"ok"


# ---------------------------------------------------------------- limits before AUTH
#
# With requirepass set, a client that has not authenticated may send at most
# 10 elements per multibulk and 16384 bytes per bulk (Redis 7.0,
# processMultibulkBuffer); past that it gets an error and is closed, so it
# cannot make the server hold a large frame. Inline requests keep only
# their usual 64 KiB limit.

PASSWORD = "limits-pw"
UNAUTH_BULK_MAX = 16384
UNAUTH_MULTIBULK_MAX = 10


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    yield from running_server(tmp_path_factory, "unauth_limits", password=PASSWORD)


@pytest.fixture
def auth_bystander(auth_server):
    """An authenticated client connected before the bad one."""
    conn = auth_server.resp()
    assert conn.cmd("SET", "bystander", "ok") == "OK"
    yield conn
    assert conn.cmd("GET", "bystander") == b"ok"
    conn.close()


def mset_args(nargs):
    """MSET with nargs elements in all (nargs odd)."""
    assert nargs % 2 == 1
    args = ["MSET"]
    for i in range(nargs // 2):
        args += ["k%d" % i, "v%d" % i]
    return args


BIG_MULTIBULK = pack_command(*mset_args(UNAUTH_MULTIBULK_MAX + 1))
BIG_BULK = pack_command("SET", "big", b"b" * (UNAUTH_BULK_MAX + 1))

UNAUTH_FRAMES = [
    ("multibulk_11", BIG_MULTIBULK, PROTO + b"unauthenticated multibulk length\r\n"),
    ("multibulk_count_only", b"*11\r\n", PROTO + b"unauthenticated multibulk length\r\n"),
    ("bulk_16385", BIG_BULK, PROTO + b"unauthenticated bulk length\r\n"),
    ("bulk_16385_header_only", b"*1\r\n$16385\r\n", PROTO + b"unauthenticated bulk length\r\n"),
    ("bulk_16385_second_element", b"*2\r\n$3\r\nGET\r\n$16385\r\n",
     PROTO + b"unauthenticated bulk length\r\n"),
    ("after_a_refused_command", pack_command("PING") + BIG_BULK,
     b"-NOAUTH Authentication required.\r\n" + PROTO + b"unauthenticated bulk length\r\n"),
]


@pytest.mark.parametrize("name,data,want", UNAUTH_FRAMES, ids=[u[0] for u in UNAUTH_FRAMES])
def test_unauthenticated_big_frame_gets_error_and_close(auth_server, raw, auth_bystander, name,
                                                        data, want):
    conn = raw(auth_server.port)
    conn.send(data)
    assert conn.recv_until_close() == want
    # the server serves others: the authenticated bystander (checked at
    # teardown too) and a new unauthenticated client
    assert auth_bystander.cmd("INCR", "counter") >= 1
    fresh = raw(auth_server.port)
    fresh.send(b"PING\r\n")
    assert fresh.recv_exact(34) == b"-NOAUTH Authentication required.\r\n"


@pytest.mark.parametrize("data", [
    pack_command("DEL", *["k%d" % i for i in range(UNAUTH_MULTIBULK_MAX - 1)]),
    pack_command("SET", "big", b"b" * UNAUTH_BULK_MAX),
    b"SET big " + b"b" * (UNAUTH_BULK_MAX + 1) + b" " + b" ".join([b"x"] * 20) + b"\r\n",
], ids=["multibulk_10", "bulk_16384", "inline_long_with_many_args"])
def test_unauthenticated_frame_at_the_limit_is_read_and_refused_noauth(auth_server, raw, data):
    conn = raw(auth_server.port)
    conn.send(data)
    assert conn.recv_exact(34) == b"-NOAUTH Authentication required.\r\n"
    # still open
    conn.send(b"PING\r\n")
    assert conn.recv_exact(34) == b"-NOAUTH Authentication required.\r\n"


@pytest.mark.parametrize("how", ["auth", "auth_same_write", "hello_auth"])
def test_after_auth_the_same_big_frames_are_accepted(auth_server, raw, how):
    conn = raw(auth_server.port)
    if how == "auth":
        conn.send(pack_command("AUTH", PASSWORD))
        assert conn.recv_exact(5) == b"+OK\r\n"
        conn.send(BIG_MULTIBULK + BIG_BULK)
    elif how == "auth_same_write":
        conn.send(pack_command("AUTH", PASSWORD) + BIG_MULTIBULK + BIG_BULK)
        assert conn.recv_exact(5) == b"+OK\r\n"
    else:
        conn.send(pack_command("HELLO", "2", "AUTH", "default", PASSWORD))
        assert conn.recv_exact(4) == b"*14\r"
        conn.sock.settimeout(10)
        buf = b""
        for _ in range(64):  # the rest of the HELLO reply ends with `modules`, `*0`
            buf += conn.sock.recv(4096)
            if buf.endswith(b"$7\r\nmodules\r\n*0\r\n"):
                break
        assert buf.endswith(b"$7\r\nmodules\r\n*0\r\n")
        conn.send(BIG_MULTIBULK + BIG_BULK)
    assert conn.recv_exact(10) == b"+OK\r\n+OK\r\n"
    conn.send(pack_command("STRLEN", "big") + pack_command("GET", "k4"))
    want = b":%d\r\n$2\r\nv4\r\n" % (UNAUTH_BULK_MAX + 1)
    assert conn.recv_exact(len(want)) == want


def test_reset_brings_the_limits_back(auth_server, raw):
    conn = raw(auth_server.port)
    conn.send(pack_command("AUTH", PASSWORD) + pack_command("RESET") + BIG_BULK)
    want = b"+OK\r\n+RESET\r\n" + PROTO + b"unauthenticated bulk length\r\n"
    assert conn.recv_until_close() == want


def test_limits_follow_config_set_requirepass(make_server, raw):
    s = make_server("requirepass_set_later")
    admin = s.resp()
    try:
        # connected with no password: authenticated, and stays so
        assert admin.cmd("CONFIG", "SET", "requirepass", PASSWORD) == "OK"
        late = raw(s.port)
        late.send(b"*1\r\n$16385\r\n")
        assert late.recv_until_close() == PROTO + b"unauthenticated bulk length\r\n"
        assert admin.cmd("SET", "big", b"b" * (UNAUTH_BULK_MAX + 1)) == "OK"
        # a client that connected while the password was set ...
        waiting = raw(s.port)
        waiting.send(b"PING\r\n")
        assert waiting.recv_exact(34) == b"-NOAUTH Authentication required.\r\n"
        # ... needs none once it is cleared
        assert admin.cmd("CONFIG", "SET", "requirepass", "") == "OK"
        waiting.send(BIG_BULK)
        assert waiting.recv_exact(5) == b"+OK\r\n"
    finally:
        admin.close()
