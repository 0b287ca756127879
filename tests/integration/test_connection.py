"""Connection commands: PING ECHO HELLO AUTH CLIENT SELECT QUIT RESET."""
import pytest
import redis

from conftest import E_SYNTAX, ConnClosed, Err, Verbatim, arity, running_server

PASSWORD = "s3cret"
E_NOAUTH = Err("NOAUTH Authentication required.")
E_WRONGPASS = Err("WRONGPASS invalid username-password pair or user is disabled.")
E_HELLO_NOAUTH = Err(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
    "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
    "the RESP protocol version at the same time")


def test_ping_and_echo(c):
    assert c.cmd("PING") == "PONG"
    assert c.cmd("PING", "hello") == b"hello"
    assert c.cmd("PING", "a", "b") == arity("ping")
    assert c.cmd("ECHO", b"bin\x00\r\nary") == b"bin\x00\r\nary"
    assert c.cmd("ECHO") == arity("echo")
    assert c.cmd("ECHO", "a", "b") == arity("echo")


def hello_fields(reply):
    """HELLO's reply as a dict whether it came as a RESP2 flat list or a map."""
    if isinstance(reply, dict):
        return reply
    assert isinstance(reply, list) and len(reply) % 2 == 0, reply
    return dict(zip(reply[0::2], reply[1::2]))


def test_hello_2_is_a_flat_list(c):
    reply = c.cmd("HELLO", "2")
    assert isinstance(reply, list)
    f = hello_fields(reply)
    assert f[b"proto"] == 2
    assert f[b"id"] == c.cmd("CLIENT", "ID")
    for key in (b"server", b"version", b"mode", b"role", b"modules"):
        assert key in f  # values are the target's own


def test_hello_without_version_keeps_protocol(c):
    f = hello_fields(c.cmd("HELLO"))
    assert f[b"proto"] == 2


def test_hello_3_is_a_map_and_switches_protocol(c):
    reply = c.cmd("HELLO", "3")
    assert isinstance(reply, dict)
    assert reply[b"proto"] == 3
    assert isinstance(reply[b"id"], int)
    assert reply[b"id"] == c.cmd("CLIENT", "ID")
    assert c.cmd("GET", "nokey") is None
    # and back
    assert isinstance(c.cmd("HELLO", "2"), list)


def test_hello_setname(c):
    hello_fields(c.cmd("HELLO", "3", "SETNAME", "myname"))
    assert c.cmd("CLIENT", "GETNAME") == b"myname"


@pytest.mark.parametrize("args,want", [
    (("4",), Err("NOPROTO unsupported protocol version")),
    (("1",), Err("NOPROTO unsupported protocol version")),
    (("x",), Err("ERR Protocol version is not an integer or out of range")),
])
def test_hello_bad_version(c, args, want):
    assert c.cmd("HELLO", *args) == want
    assert c.cmd("PING") == "PONG"


def test_auth_without_password_configured(c):
    assert c.cmd("AUTH", "x") == Err(
        "ERR AUTH <password> called without any password configured for the default user. "
        "Are you sure your configuration is correct?")
    assert c.cmd("AUTH", "someone", "x") == E_WRONGPASS
    assert c.cmd("AUTH") == arity("auth")


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    yield from running_server(tmp_path_factory, "auth", password=PASSWORD)


def test_auth_noauth_before_wrongpass_then_ok(auth_server):
    conn = auth_server.resp(auth=False)
    try:
        assert conn.cmd("PING") == E_NOAUTH
        assert conn.cmd("GET", "a") == E_NOAUTH
        assert conn.cmd("SET", "a", "1") == E_NOAUTH
        assert conn.cmd("CLIENT", "ID") == E_NOAUTH
        # an EXEC refused says so as a discarded transaction (Redis's
        # execCommandAbort); a wrong count is found before authentication
        assert conn.cmd("EXEC") == \
            Err("EXECABORT Transaction discarded because of: NOAUTH Authentication required.")
        assert conn.cmd("EXEC", "x") == Err("EXECABORT Transaction discarded because of: "
                                            "wrong number of arguments for 'exec' command")
        assert conn.cmd("AUTH", "nope") == E_WRONGPASS
        assert conn.cmd("AUTH", "default", "nope") == E_WRONGPASS
        assert conn.cmd("PING") == E_NOAUTH
        assert conn.cmd("AUTH", PASSWORD) == "OK"
        assert conn.cmd("PING") == "PONG"
        assert conn.cmd("SET", "a", "1") == "OK"
        assert conn.cmd("GET", "a") == b"1"
    finally:
        conn.close()


def test_auth_with_default_username(auth_server):
    conn = auth_server.resp(auth=False)
    try:
        assert conn.cmd("AUTH", "default", PASSWORD) == "OK"
        assert conn.cmd("PING") == "PONG"
    finally:
        conn.close()


def test_hello_before_auth_and_hello_auth(auth_server):
    conn = auth_server.resp(auth=False)
    try:
        assert conn.cmd("HELLO", "3") == E_HELLO_NOAUTH
        assert conn.cmd("HELLO", "3", "AUTH", "default", "bad") == E_WRONGPASS
        reply = conn.cmd("HELLO", "3", "AUTH", "default", PASSWORD)
        assert isinstance(reply, dict) and reply[b"proto"] == 3
        assert conn.cmd("PING") == "PONG"
    finally:
        conn.close()


def test_hello_auth_is_checked_where_it_stands(auth_server):
    """As Redis 7.0: a wrong password answers before a later option's
    syntax error, and a right one holds although a later option fails."""
    conn = auth_server.resp(auth=False)
    try:
        assert conn.cmd("HELLO", "3", "AUTH", "default", "bad", "c") == E_WRONGPASS
        assert conn.cmd("HELLO", "3", "FOO", "AUTH", "default", "bad") == \
            Err("ERR Syntax error in HELLO option 'FOO'")
        assert conn.cmd("PING") == E_NOAUTH
        assert conn.cmd("HELLO", "3", "AUTH", "default", PASSWORD, "c") == \
            Err("ERR Syntax error in HELLO option 'c'")
        assert conn.cmd("PING") == "PONG"
    finally:
        conn.close()


def test_quit_and_unknown_command_before_auth(auth_server):
    conn = auth_server.resp(auth=False)
    try:
        # Unknown commands are reported as unknown even before AUTH.
        assert conn.cmd("NOSUCH") == Err("ERR unknown command 'NOSUCH', with args beginning with: ")
        assert conn.cmd("QUIT") == "OK"
        with pytest.raises((ConnClosed, ConnectionError)):
            conn.cmd("PING")
    finally:
        conn.close()


def test_reset_forgets_authentication(auth_server):
    conn = auth_server.resp()
    try:
        assert conn.cmd("PING") == "PONG"
        assert conn.cmd("RESET") == "RESET"
        assert conn.cmd("PING") == E_NOAUTH
    finally:
        conn.close()


def test_redis_py_with_password(auth_server):
    import redis.exceptions
    client = auth_server.client()
    assert client.set("x", b"1") is True
    assert client.get("x") == b"1"
    bad = auth_server.client(password="wrong")
    with pytest.raises(redis.RedisError, match="WRONGPASS"):
        bad.ping()
    nopass = auth_server.client(password=None)
    with pytest.raises(redis.exceptions.RedisError, match="Authentication required"):
        nopass.ping()


def test_client_id_is_unique_and_increasing(server, c):
    other = server.resp()
    try:
        a, b = c.cmd("CLIENT", "ID"), other.cmd("CLIENT", "ID")
        assert isinstance(a, int) and isinstance(b, int)
        assert b > a
        assert c.cmd("CLIENT", "ID") == a
    finally:
        other.close()


def test_client_setname_getname(c):
    assert c.cmd("CLIENT", "GETNAME") is None
    assert c.cmd("CLIENT", "SETNAME", "worker-1") == "OK"
    assert c.cmd("CLIENT", "GETNAME") == b"worker-1"
    assert c.cmd("CLIENT", "SETNAME", "a b") == Err(
        "ERR Client names cannot contain spaces, newlines or special characters.")
    assert c.cmd("CLIENT", "GETNAME") == b"worker-1"
    assert c.cmd("CLIENT", "SETNAME", "") == "OK"
    assert c.cmd("CLIENT", "GETNAME") is None


def test_client_errors(c):
    assert c.cmd("CLIENT") == arity("client")
    assert c.cmd("CLIENT", "FOO") == Err("ERR unknown subcommand 'FOO'. Try CLIENT HELP.")
    assert c.cmd("CLIENT", "SETNAME") == arity("client|setname")


def parse_client_line(line):
    fields = {}
    for part in line.split(b" "):
        k, sep, v = part.partition(b"=")
        assert sep == b"=", line
        fields[k] = v
    return fields


CLIENT_FIELDS = (b"id", b"addr", b"laddr", b"name", b"age", b"idle", b"flags", b"db", b"multi",
                 b"cmd", b"resp")


def client_flags(c):
    info = c.cmd("CLIENT", "INFO")
    return parse_client_line(info.rstrip(b"\n"))[b"flags"]


def test_client_no_evict_shows_in_the_flags_and_outlives_reset(c):
    assert client_flags(c) == b"N"
    assert c.cmd("CLIENT", "NO-EVICT", "on") == "OK"
    assert client_flags(c) == b"e"
    assert c.cmd("CLIENT", "NO-EVICT", "off") == "OK"
    assert client_flags(c) == b"N"
    assert c.cmd("CLIENT", "NO-EVICT", "maybe") == E_SYNTAX
    assert c.cmd("CLIENT", "NO-EVICT", "on") == "OK"
    assert c.cmd("RESET") == "RESET"
    assert client_flags(c) == b"e"  # as redis-server 7.0 keeps it
    assert c.cmd("CLIENT", "NO-EVICT", "off") == "OK"


@pytest.mark.triad_only("CLIENT NO-TOUCH is Redis 7.2's; 7.0 does not know it")
def test_client_no_touch_shows_in_the_flags_until_reset(c):
    assert c.cmd("CLIENT", "NO-TOUCH", "on") == "OK"
    assert c.cmd("CLIENT", "NO-EVICT", "on") == "OK"
    assert client_flags(c) == b"eT"
    assert c.cmd("CLIENT", "NO-TOUCH", "off") == "OK"
    assert client_flags(c) == b"e"
    assert c.cmd("CLIENT", "NO-TOUCH", "on") == "OK"
    assert c.cmd("RESET") == "RESET"  # as Redis 7.2, which has NO-TOUCH
    assert client_flags(c) == b"e"
    assert c.cmd("CLIENT", "NO-EVICT", "off") == "OK"


def test_client_info_and_list(server, c):
    assert c.cmd("CLIENT", "SETNAME", "me") == "OK"
    assert c.cmd("SELECT", "3") == "OK"
    my_id = c.cmd("CLIENT", "ID")
    info = c.cmd("CLIENT", "INFO")
    assert isinstance(info, bytes) and info.endswith(b"\n") and info.count(b"\n") == 1
    f = parse_client_line(info.rstrip(b"\n"))
    for k in CLIENT_FIELDS:
        assert k in f, (k, info)
    assert f[b"id"] == str(my_id).encode()
    assert f[b"name"] == b"me"
    assert f[b"db"] == b"3"
    assert f[b"cmd"] == b"client|info"
    assert f[b"addr"].startswith(b"127.0.0.1:")
    assert f[b"resp"] == b"2"

    other = server.resp()
    try:
        other_id = other.cmd("CLIENT", "ID")
        listing = c.cmd("CLIENT", "LIST")
        lines = [parse_client_line(x) for x in listing.rstrip(b"\n").split(b"\n")]
        ids = {int(x[b"id"]) for x in lines}
        assert {my_id, other_id} <= ids
        mine = [x for x in lines if int(x[b"id"]) == my_id][0]
        assert mine[b"name"] == b"me" and mine[b"cmd"] == b"client|list"
        only = c.cmd("CLIENT", "LIST", "ID", str(other_id))
        assert [int(parse_client_line(x)[b"id"]) for x in only.rstrip(b"\n").split(b"\n")] == [other_id]
        # any integer is an id, as in Redis: ones no client has list nothing
        assert c.cmd("CLIENT", "LIST", "ID", "0", "-1") == b""
        assert c.cmd("CLIENT", "LIST", "ID", "-1", str(other_id)) == only
        assert c.cmd("CLIENT", "LIST", "ID", "x") == Err("ERR Invalid client ID")
    finally:
        other.close()


def test_client_list_through_redis_py(r):
    r.client_setname("pyclient")
    names = [x["name"] for x in r.client_list()]
    assert "pyclient" in names
    assert r.client_getname() == "pyclient"  # redis-py decodes this one
    assert isinstance(r.client_id(), int)


def test_client_info_is_verbatim_in_resp3(r3):
    info = r3.cmd("CLIENT", "INFO")
    assert isinstance(info, Verbatim) and info.fmt == "txt"
    assert parse_client_line(info.data.rstrip(b"\n"))[b"resp"] == b"3"


def test_quit_replies_ok_and_closes(c):
    assert c.cmd("QUIT") == "OK"
    with pytest.raises((ConnClosed, ConnectionError)):
        c.cmd("PING")


def test_reset_restores_connection_state(c):
    c.cmd("HELLO", "3")
    assert c.cmd("CLIENT", "SETNAME", "named") == "OK"
    assert c.cmd("SELECT", "4") == "OK"
    assert c.cmd("SET", "in4", "x") == "OK"
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "q", "1") == "QUEUED"
    assert c.cmd("RESET") == "RESET"
    assert c.cmd("EXEC") == Err("ERR EXEC without MULTI")  # transaction discarded
    assert c.cmd("GET", "in4") is None  # back in db 0
    assert c.cmd("CLIENT", "GETNAME") is None
    assert isinstance(c.cmd("HELLO"), list)  # back to RESP2
    assert c.cmd("EXISTS", "q") == 0
    assert c.cmd("SELECT", "4") == "OK"
    assert c.cmd("GET", "in4") == b"x"


def test_reset_keeps_the_client_id(c):
    cid = c.cmd("CLIENT", "ID")
    assert c.cmd("RESET") == "RESET"
    assert c.cmd("CLIENT", "ID") == cid


def test_client_kill_by_address_and_filters(server, r):
    victim = server.resp()
    vid = victim.cmd("CLIENT", "ID")
    line = [l for l in r.execute_command("CLIENT", "LIST").decode().splitlines()
            if l.startswith("id=%d " % vid)][0]
    addr = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)["addr"]
    laddr = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)["laddr"]
    assert r.execute_command("CLIENT", "KILL", "ADDR", "1.2.3.4:5") == 0
    assert r.execute_command("CLIENT", "KILL", "ADDR", addr) == 1
    with pytest.raises((ConnClosed, ConnectionError)):
        victim.cmd("PING")
    victim.close()
    # the old form names one client by address and answers +OK
    victim = server.resp()
    vid = victim.cmd("CLIENT", "ID")
    line = [l for l in r.execute_command("CLIENT", "LIST").decode().splitlines()
            if l.startswith("id=%d " % vid)][0]
    addr = dict(f.split("=", 1) for f in line.split(" ") if "=" in f)["addr"]
    assert r.execute_command("CLIENT", "KILL", addr) == b"OK"
    with pytest.raises((ConnClosed, ConnectionError)):
        victim.cmd("PING")
    victim.close()
    with pytest.raises(redis.exceptions.ResponseError, match="No such client"):
        r.execute_command("CLIENT", "KILL", addr)
    # LADDR and TYPE normal match this client too, but SKIPME (the default) spares it
    assert r.execute_command("CLIENT", "KILL", "LADDR", laddr, "TYPE", "normal") >= 0
    assert r.ping() is True




def test_client_reply_off_skip_and_on(c):
    # OFF: neither it nor what follows is answered, until ON; SKIP: neither
    # it nor the next command. Only ON's +OK and the last GET come back.
    from conftest import pack_command
    c.send(b"".join(pack_command(*cmd) for cmd in [
        ("CLIENT", "REPLY", "OFF"),
        ("SET", "rk", "1"),
        ("NOSUCHCOMMAND",),
        ("CLIENT", "REPLY", "ON"),
        ("CLIENT", "REPLY", "SKIP"),
        ("INCR", "rk"),
        ("GET", "rk"),
        ("PING",),
    ]))
    assert c.read() == "OK"
    assert c.read() == b"2"
    assert c.read() == "PONG"
