"""Server commands: INFO CONFIG COMMAND TIME DBSIZE SHUTDOWN, and maxmemory."""
import time

import pytest
import redis.client

from conftest import ConnClosed, Err, Verbatim, arity

INFO_SECTIONS = ["server", "clients", "memory", "persistence", "stats", "replication", "keyspace"]
INFO_FIELDS = {
    "server": ["redis_version", "tcp_port", "process_id", "uptime_in_seconds"],
    "clients": ["connected_clients"],
    "memory": ["used_memory", "maxmemory"],
    "persistence": ["loading"],
    "stats": ["total_connections_received", "total_commands_processed", "keyspace_hits",
              "keyspace_misses", "expired_keys"],
    "replication": ["role"],
    "keyspace": [],
}


def info_headers(text):
    return [line[2:].strip().lower().decode() for line in text.split(b"\r\n") if line.startswith(b"# ")]


def test_info_has_every_section_and_parses(server, c):
    text = c.cmd("INFO")
    assert isinstance(text, bytes)
    # every line is "# Section", "key:value" or empty, CRLF-terminated
    assert text.endswith(b"\r\n")
    for line in text.split(b"\r\n"):
        assert line == b"" or line.startswith(b"# ") or b":" in line, line
    headers = info_headers(text)
    for s in INFO_SECTIONS:
        assert s in headers, (s, headers)
    info = redis.client.parse_info(text.decode())
    for section, fields in INFO_FIELDS.items():
        for f in fields:
            assert f in info, (section, f)
    assert info["tcp_port"] == server.port
    assert info["process_id"] == server.pid
    assert info["connected_clients"] >= 1
    assert isinstance(info["used_memory"], int) and info["used_memory"] > 0
    assert info["loading"] == 0


@pytest.mark.parametrize("section", INFO_SECTIONS)
def test_info_single_section(c, section):
    text = c.cmd("INFO", section)
    assert info_headers(text) == [section]
    info = redis.client.parse_info(text.decode())
    for f in INFO_FIELDS[section]:
        assert f in info, f


def test_info_section_names_are_case_insensitive(c):
    assert info_headers(c.cmd("INFO", "KeySpace")) == ["keyspace"]


def test_info_unknown_section_is_empty(c):
    assert c.cmd("INFO", "nosuchsection") == b""


def test_info_keyspace_counts_keys_and_expires(r, c):
    assert c.cmd("INFO", "keyspace") == b"# Keyspace\r\n"
    r.mset({"a": 1, "b": 2, "c": 3})
    r.expire("a", 100)
    r.execute_command("SELECT", 0)
    conn = c
    assert conn.cmd("SELECT", "2") == "OK"
    assert conn.cmd("SET", "x", "1") == "OK"
    text = conn.cmd("INFO", "keyspace")
    lines = [l for l in text.split(b"\r\n") if l.startswith(b"db")]
    assert lines[0].startswith(b"db0:keys=3,expires=1,"), lines
    assert lines[1].startswith(b"db2:keys=1,expires=0,"), lines
    assert len(lines) == 2
    ks = r.info("keyspace")
    assert ks["db0"]["keys"] == 3 and ks["db0"]["expires"] == 1
    assert ks["db2"]["keys"] == 1 and ks["db2"]["expires"] == 0


def test_info_stats_count_hits_and_misses(r):
    before = r.info("stats")
    r.set("k", "v")
    r.get("k")
    r.get("k")
    r.get("nokey")
    after = r.info("stats")
    assert after["keyspace_hits"] - before["keyspace_hits"] == 2
    assert after["keyspace_misses"] - before["keyspace_misses"] == 1
    assert after["total_commands_processed"] > before["total_commands_processed"]


def test_info_through_redis_py(r):
    info = r.info()
    assert "redis_version" in info and "used_memory" in info
    assert r.info("memory")["used_memory"] > 0


def test_config_get(server, c):
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    assert c.cmd("CONFIG", "GET", "port") == [b"port", str(server.port).encode()]
    assert c.cmd("CONFIG", "GET", "requirepass") == [b"requirepass", b""]
    assert c.cmd("CONFIG", "GET", "databases") == [b"databases", b"16"]
    assert c.cmd("CONFIG", "GET", "nosuchparam") == []
    got = c.cmd("CONFIG", "GET", "maxmemory", "port")
    assert dict(zip(got[0::2], got[1::2])) == {b"maxmemory": b"0", b"port": str(server.port).encode()}


def test_config_get_is_a_map_in_resp3(r3):
    assert r3.cmd("CONFIG", "GET", "maxmemory") == {b"maxmemory": b"0"}


def test_config_errors(c):
    assert c.cmd("CONFIG") == arity("config")
    assert c.cmd("CONFIG", "GET") == arity("config|get")
    assert c.cmd("CONFIG", "SET", "maxmemory") == arity("config|set")
    assert c.cmd("CONFIG", "FOO") == Err("ERR unknown subcommand 'FOO'. Try CONFIG HELP.")
    assert c.cmd("CONFIG", "SET", "nosuchparam", "1") == Err(
        "ERR Unknown option or number of arguments for CONFIG SET - 'nosuchparam'")
    assert c.cmd("CONFIG", "SET", "maxmemory", "abc") == Err(
        "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - "
        "argument must be a memory value")
    assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]


def test_config_resetstat(c):
    assert c.cmd("CONFIG", "RESETSTAT") == "OK"


@pytest.mark.parametrize("value,want", [("10485760", b"10485760"), ("10mb", b"10485760"),
                                        ("1gb", b"1073741824"), ("100k", b"100000"),
                                        ("0", b"0")])
def test_config_set_maxmemory(make_server, value, want):
    conn = make_server().resp()
    assert conn.cmd("CONFIG", "SET", "maxmemory", value) == "OK"
    assert conn.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", want]
    conn.close()


def test_config_set_requirepass(make_server):
    s = make_server()
    admin = s.resp()
    assert admin.cmd("CONFIG", "SET", "requirepass", "newpw") == "OK"
    assert admin.cmd("CONFIG", "GET", "requirepass") == [b"requirepass", b"newpw"]
    assert admin.cmd("PING") == "PONG"  # an authenticated connection stays so
    fresh = s.resp(auth=False)
    assert fresh.cmd("PING") == Err("NOAUTH Authentication required.")
    assert fresh.cmd("AUTH", "newpw") == "OK"
    assert fresh.cmd("PING") == "PONG"
    fresh.close()
    admin.close()


def test_maxmemory_refuses_writes_but_serves_reads(make_server):
    s = make_server()
    conn = s.resp()
    assert conn.cmd("SET", "keep", "v") == "OK"
    assert conn.cmd("CONFIG", "SET", "maxmemory", "1") == "OK"
    oom = Err("OOM command not allowed when used memory > 'maxmemory'.")
    assert conn.cmd("SET", "k", "v") == oom
    assert conn.cmd("MSET", "a", "1") == oom
    assert conn.cmd("APPEND", "keep", "x") == oom
    assert conn.cmd("GET", "keep") == b"v"
    assert conn.cmd("EXISTS", "k") == 0
    assert conn.cmd("DEL", "keep") == 1  # freeing memory is allowed
    assert conn.cmd("CONFIG", "SET", "maxmemory", "0") == "OK"
    assert conn.cmd("SET", "k", "v") == "OK"
    conn.close()


def test_maxmemory_oom_through_redis_py(make_server):
    import redis.exceptions
    s = make_server()
    client = s.client()
    client.set("keep", b"v")
    client.config_set("maxmemory", 1)
    with pytest.raises(redis.exceptions.ResponseError, match="^OOM command not allowed"):
        client.set("k", b"v")
    assert client.get("keep") == b"v"


def test_command_count_matches_command_list(c):
    n = c.cmd("COMMAND", "COUNT")
    assert isinstance(n, int) and n > 0
    listing = c.cmd("COMMAND")
    assert len(listing) == n
    names = {entry[0] for entry in listing}
    for name in (b"get", b"set", b"del", b"expire", b"multi", b"exec", b"info", b"config", b"hello"):
        assert name in names


def test_command_info_get(c):
    reply = c.cmd("COMMAND", "INFO", "get")
    assert len(reply) == 1
    entry = reply[0]
    assert len(entry) == 10  # Redis 7: name arity flags first last step acl tips keyspecs subcommands
    assert entry[:2] == [b"get", 2]
    assert set(entry[2]) == {"readonly", "fast"}
    assert entry[3:6] == [1, 1, 1]
    for i in range(6, 10):
        assert isinstance(entry[i], list)


def test_command_info_set_and_mset_key_positions(c):
    s, m, missing = c.cmd("COMMAND", "INFO", "SET", "mset", "nosuchcmd")
    assert s[:2] == [b"set", -3] and s[3:6] == [1, 1, 1]
    assert "write" in s[2] and "denyoom" in s[2]
    assert m[:2] == [b"mset", -3] and m[3:6] == [1, -1, 2]
    assert missing is None


def test_command_docs_get(c):
    reply = c.cmd("COMMAND", "DOCS", "get")
    assert isinstance(reply, list) and len(reply) == 2 and reply[0] == b"get"
    doc = dict(zip(reply[1][0::2], reply[1][1::2]))
    assert isinstance(doc[b"summary"], bytes) and doc[b"summary"]
    assert doc[b"since"] == b"1.0.0"
    assert doc[b"group"] == b"string"
    assert c.cmd("COMMAND", "DOCS", "nosuchcmd") == []


def test_command_docs_is_a_map_in_resp3(r3):
    reply = r3.cmd("COMMAND", "DOCS", "get")
    assert isinstance(reply, dict) and list(reply) == [b"get"]
    assert reply[b"get"][b"group"] == b"string"


def test_command_errors(c):
    assert c.cmd("COMMAND", "COUNT", "x") == arity("command|count")
    assert c.cmd("COMMAND", "FOO") == Err("ERR unknown subcommand 'FOO'. Try COMMAND HELP.")


def test_role_of_a_single_node(c):
    """A single node is a master without replicas, as redis-server alone
    answers (leader mode answers from the cluster: test_cluster.py)."""
    assert c.cmd("ROLE") == [b"master", 0, []]
    assert c.cmd("ROLE", "x") == arity("role")


def test_wait_on_a_single_node_counts_no_replicas(c):
    """No replica can acknowledge a single node's writes: WAIT answers 0
    (redis-server alone answers 0 too, after the timeout when asked for
    replicas; triad answers at once). Its arguments are checked as
    Redis checks them."""
    assert c.cmd("SET", "w", "1") == "OK"
    assert c.cmd("WAIT", "0", "0") == 0
    assert c.cmd("WAIT", "1", "50") == 0
    assert c.cmd("WAIT", "x", "0") == Err("ERR value is not an integer or out of range")
    assert c.cmd("WAIT", "1", "-1") == Err("ERR timeout is negative")
    assert c.cmd("WAIT", "1") == arity("wait")


def test_time(c):
    reply = c.cmd("TIME")
    assert isinstance(reply, list) and len(reply) == 2
    secs, usecs = int(reply[0]), int(reply[1])
    assert abs(secs - time.time()) < 300  # same clock, loosely
    assert 0 <= usecs < 1000000
    # microseconds, not milliseconds times 1000: twenty readings all on a
    # whole millisecond would be a chance of 1 in 10^60
    assert any(int(c.cmd("TIME")[1]) % 1000 != 0 for _ in range(20))
    assert c.cmd("TIME", "x") == arity("time")


def test_dbsize_through_redis_py(r):
    assert r.dbsize() == 0
    r.mset({"a": 1, "b": 2})
    assert r.dbsize() == 2


@pytest.mark.parametrize("args", [(), ("NOSAVE",)])
def test_shutdown_stops_the_server(make_server, args):
    s = make_server()
    conn = s.resp()
    assert conn.cmd("SET", "a", "1") == "OK"
    conn.send(b"".join([b"*%d\r\n$8\r\nSHUTDOWN\r\n" % (1 + len(args))] +
                       [b"$%d\r\n%s\r\n" % (len(a), a.encode()) for a in args]))
    with pytest.raises((ConnClosed, ConnectionError)):
        conn.read()  # no reply: the connection just closes
    conn.close()
    rc = s.wait_exit(15.0)
    assert rc is not None, "server still running after SHUTDOWN"
    assert rc == 0


def test_shutdown_through_redis_py(make_server):
    s = make_server()
    s.client().shutdown()
    assert s.wait_exit(15.0) == 0


def test_info_is_verbatim_in_resp3(r3):
    reply = r3.cmd("INFO", "keyspace")
    assert isinstance(reply, Verbatim) and reply.fmt == "txt"
    assert reply.data.startswith(b"# Keyspace\r\n")


def test_config_get_answers_a_name_as_asked_and_each_once(c):
    """As Redis: a name (no glob) is answered under the spelling asked, and
    a parameter named twice is answered once, under its first spelling;
    a pattern answers the canonical names."""
    assert c.cmd("CONFIG", "GET", "MAXMEMORY", "maxmemory") == [b"MAXMEMORY", b"0"]
    assert c.cmd("CONFIG", "GET", "Hz") == [b"Hz", b"10"]
    assert c.cmd("CONFIG", "GET", "HZ*") == [b"hz", b"10"]
    assert c.cmd("CONFIG", "GET", "nosuch") == []


def test_config_get_more_shared_params(server, c):
    assert c.cmd("CONFIG", "GET", "dir") == [b"dir", str(server.dir).encode()]
    assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"0"]
    name, value = c.cmd("CONFIG", "GET", "maxclients")
    assert name == b"maxclients" and int(value) > 1000


@pytest.mark.parametrize("container", ["CLIENT", "CONFIG", "COMMAND"])
def test_help_ends_as_redis_help_does(c, container):
    lines = c.cmd(container, "HELP")
    assert lines[0].startswith(container + " <subcommand> [<arg> [value] [opt] ...]")
    assert lines[-2:] == ["HELP", "    Prints this help."]


def test_config_set_hz_takes_the_nearest_in_range_and_memory_whole_numbers(c):
    """As Redis: hz takes any count and uses the nearest of 1..500; a memory
    value is whole digits and a unit ("1.5gb" refused, not rounded)."""
    try:
        assert c.cmd("CONFIG", "SET", "hz", "0") == "OK"
        assert c.cmd("CONFIG", "GET", "hz") == [b"hz", b"1"]
        assert c.cmd("CONFIG", "SET", "hz", "1000") == "OK"
        assert c.cmd("CONFIG", "GET", "hz") == [b"hz", b"500"]
        assert c.cmd("CONFIG", "SET", "maxmemory", "1.5gb") == Err(
            "ERR CONFIG SET failed (possibly related to argument 'maxmemory') - "
            "argument must be a memory value")
        assert c.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
    finally:
        assert c.cmd("CONFIG", "SET", "hz", "10") == "OK"


def test_config_set_timeout_and_range_errors(c):
    try:
        assert c.cmd("CONFIG", "SET", "timeout", "100") == "OK"
        assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"100"]
        assert c.cmd("CONFIG", "SET", "timeout", "-1") == Err(
            "ERR CONFIG SET failed (possibly related to argument 'timeout') - "
            "argument must be between 0 and 2147483647 inclusive")
        assert c.cmd("CONFIG", "SET", "maxclients", "abc") == Err(
            "ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
            "argument couldn't be parsed into an integer")
        assert c.cmd("CONFIG", "SET", "databases", "4") == Err(
            "ERR CONFIG SET failed (possibly related to argument 'databases') - "
            "can't set immutable config")
    finally:
        assert c.cmd("CONFIG", "SET", "timeout", "0") == "OK"


@pytest.mark.triad_only("fsync and snapshot-wal-bytes are Triad's own settings")
def test_triad_config_names(make_server, snapshot_args):
    s = make_server(extra_args=["--fsync", "everysec"] + snapshot_args)
    conn = s.resp()
    assert conn.cmd("CONFIG", "GET", "fsync") == [b"fsync", b"everysec"]
    assert conn.cmd("CONFIG", "SET", "fsync", "always") == "OK"
    assert conn.cmd("CONFIG", "GET", "fsync") == [b"fsync", b"always"]
    assert conn.cmd("CONFIG", "SET", "fsync", "sometimes").startswith("ERR CONFIG SET failed")
    assert conn.cmd("CONFIG", "GET", snapshot_args[0].lstrip("-")) == \
        [snapshot_args[0].lstrip("-").encode(), snapshot_args[1].encode()]
    assert conn.cmd("SET", "k", "v") == "OK"
    conn.close()


@pytest.mark.triad_only("--fsync is Triad's flag")
def test_triad_rejects_a_bad_fsync_flag(make_server):
    s = make_server(extra_args=["--fsync", "sometimes"], start=False)
    with pytest.raises(RuntimeError, match="exited"):
        s.start(timeout_s=10.0)


def test_config_set_is_all_or_nothing(c):
    assert c.cmd("CONFIG", "SET", "timeout", "0") == "OK"
    err = c.cmd("CONFIG", "SET", "timeout", "7", "no-such-setting", "1")
    assert isinstance(err, Err)
    assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"0"]
    err = c.cmd("CONFIG", "SET", "timeout", "7", "maxclients", "0")
    assert isinstance(err, Err)
    assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"0"]
    assert c.cmd("CONFIG", "SET", "timeout", "7", "maxmemory", "0") == "OK"
    assert c.cmd("CONFIG", "GET", "timeout") == [b"timeout", b"7"]
    assert c.cmd("CONFIG", "SET", "timeout", "0") == "OK"


def test_maxmemory_policy_noeviction(c):
    assert c.cmd("CONFIG", "GET", "maxmemory-policy") == [b"maxmemory-policy", b"noeviction"]
    assert c.cmd("CONFIG", "SET", "maxmemory-policy", "noeviction") == "OK"


@pytest.mark.parametrize("cmd", [("SHUTDOWN",), ("SAVE",)])
def test_commands_refused_inside_multi(c, cmd):
    assert c.cmd("MULTI") == "OK"
    assert c.cmd(*cmd) == Err("ERR Command not allowed inside a transaction")
    assert c.cmd("EXEC") == Err("EXECABORT Transaction discarded because of previous errors.")


def test_flushall_async_empties_at_once_and_keeps_serving(make_server):
    s = make_server()
    client = s.client()
    pipe = client.pipeline(transaction=False)
    for i in range(200000):
        pipe.set(b"k:%d" % i, b"v")
        if i % 10000 == 9999:
            pipe.execute()
    pipe.execute()
    assert client.dbsize() == 200000
    assert client.execute_command("FLUSHALL", "ASYNC") is True
    assert client.dbsize() == 0
    assert client.get(b"k:1") is None
    assert client.set(b"after", b"1") is True
    assert client.get(b"after") == b"1"
    assert client.execute_command("FLUSHDB", "ASYNC") is True
    assert client.dbsize() == 0


@pytest.mark.triad_only("Redis estimates avg_ttl from its expiry cycle's samples (0 until "
                        "they come in); Triad's is exact")
def test_info_keyspace_avg_ttl_is_the_mean_time_left(r, c):
    r.set(b"a", b"1", px=100000)
    r.set(b"b", b"1", px=300000)
    r.set(b"c", b"1")
    line = [l for l in c.cmd("INFO", "keyspace").decode().splitlines()
            if l.startswith("db0:")][0]
    fields = dict(f.split("=") for f in line[len("db0:"):].split(","))
    assert fields["keys"] == "3" and fields["expires"] == "2"
    assert 150000 <= int(fields["avg_ttl"]) <= 200000, line


def test_info_errorstats_counts_errors_by_code(make_server):
    s = make_server()
    conn = s.resp()
    assert isinstance(conn.cmd("NOSUCHCOMMAND"), Err)
    assert isinstance(conn.cmd("EXEC"), Err)
    assert isinstance(conn.cmd("HELLO", "4"), Err)
    text = conn.cmd("INFO", "errorstats").decode()
    lines = [l for l in text.split("\r\n") if l.startswith("errorstat_")]
    assert sorted(lines) == ["errorstat_ERR:count=2", "errorstat_NOPROTO:count=1"]
    assert conn.cmd("CONFIG", "RESETSTAT") == "OK"
    text = conn.cmd("INFO", "errorstats").decode()
    assert [l for l in text.split("\r\n") if l.startswith("errorstat_")] == []
    conn.close()


def test_info_commandstats_counts_calls_rejections_and_failures(make_server):
    s = make_server()
    conn = s.resp()
    assert conn.cmd("SET", "k", "v") == "OK"
    assert conn.cmd("SET", "k", "v") == "OK"
    assert isinstance(conn.cmd("SET", "k"), Err)           # arity: rejected before it runs
    assert isinstance(conn.cmd("INCR", "k"), Err)          # ran, replied with an error
    assert conn.cmd("CONFIG", "GET", "port")               # counted per subcommand
    text = conn.cmd("INFO", "commandstats").decode()
    assert text.startswith("# Commandstats\r\n")
    stats = {}
    for line in text.split("\r\n"):
        if line.startswith("cmdstat_"):
            name, fields = line[len("cmdstat_"):].split(":", 1)
            stats[name] = dict(f.split("=") for f in fields.split(","))
    assert stats["set"]["calls"] == "2" and stats["set"]["rejected_calls"] == "1"
    assert stats["set"]["failed_calls"] == "0"
    assert stats["incr"]["calls"] == "1" and stats["incr"]["failed_calls"] == "1"
    assert stats["config|get"]["calls"] == "1"
    for f in stats.values():
        assert set(f) == {"calls", "usec", "usec_per_call", "rejected_calls", "failed_calls"}
        assert int(f["usec"]) >= 0 and float(f["usec_per_call"]) >= 0
    # not in the default sections, but in "all"
    assert "cmdstat_" not in conn.cmd("INFO").decode()
    assert "cmdstat_set:" in conn.cmd("INFO", "all").decode()
    assert conn.cmd("CONFIG", "RESETSTAT") == "OK"
    after = conn.cmd("INFO", "commandstats").decode()
    assert "cmdstat_set:" not in after and "cmdstat_incr:" not in after
    conn.close()


def test_commandstats_keep_no_unknown_subcommand(make_server):
    """An unknown subcommand is refused before it runs and, as in Redis,
    counted as no command's call: its name is the client's text, which must
    not reach INFO (a CR LF in it would forge lines), nor fill the table of
    statistics and push the real commands out."""
    conn = make_server().resp()
    assert conn.cmd("CONFIG", "zz\r\nfake_line:1", "x") == \
        Err("ERR unknown subcommand 'zz  fake_line:1'. Try CONFIG HELP.")
    for i in range(300):
        assert conn.cmd("CLIENT", "bogus%d" % i) == \
            Err("ERR unknown subcommand 'bogus%d'. Try CLIENT HELP." % i)
    assert conn.cmd("CLIENT", "SETNAME") == arity("client|setname")  # a known one: counted
    assert conn.cmd("TOUCH", "x") == 0
    text = conn.cmd("INFO", "commandstats").decode()
    names = [l.split(":", 1)[0] for l in text.split("\r\n")[1:] if l]
    assert all(n.startswith("cmdstat_") for n in names), names
    assert "cmdstat_touch" in names and "cmdstat_client|setname" in names
    assert not any("bogus" in n or "zz" in n for n in names), names
    # and CLIENT LIST's cmd= never shows it either
    assert conn.cmd("CONFIG", "q z\r\nq") == Err("ERR unknown subcommand 'q z  q'. Try CONFIG HELP.")
    listing = conn.cmd("CLIENT", "LIST").decode()
    assert "\r" not in listing and listing.count("\n") == 1
    conn.close()


def info_stats(conn):
    return redis.client.parse_info(conn.cmd("INFO", "stats").decode())


def test_idle_poll_is_a_setting_that_zero_turns_off(make_server):
    """idle-poll-us bounds how long the loop polls for work before it sleeps;
    INFO stats shows the window it has learned, and 0 keeps it shut."""
    conn = make_server().resp()
    assert conn.cmd("CONFIG", "GET", "idle-poll-us") == [b"idle-poll-us", b"50"]
    for _ in range(2000):  # back to back: work comes as soon as a reply leaves
        assert conn.cmd("PING") == "PONG"
    st = info_stats(conn)
    assert 0 <= st["idle_poll_window_us"] <= 50
    assert st["idle_poll_cpu_contended"] in (0, 1)
    assert conn.cmd("CONFIG", "SET", "idle-poll-us", "0") == "OK"
    for _ in range(2000):
        assert conn.cmd("PING") == "PONG"
    assert info_stats(conn)["idle_poll_window_us"] == 0
    for bad in ("-1", "100001", "abc"):
        assert isinstance(conn.cmd("CONFIG", "SET", "idle-poll-us", bad), Err)
    assert conn.cmd("CONFIG", "GET", "idle-poll-us") == [b"idle-poll-us", b"0"]
    conn.close()


def test_a_polling_loop_runs_its_timers_and_serves_every_client(make_server):
    """With the longest poll window (100 ms), while one client keeps the loop
    busy back to back: the cron still expires keys nobody reads, other
    clients are answered, and SIGTERM still shuts the server down cleanly."""
    s = make_server(extra_args=["--idle-poll-us", "100000"])
    busy, other = s.resp(), s.resp()
    assert other.cmd("SET", "gone", "x", "PX", "100") == "OK"
    deadline = time.monotonic() + 30.0
    expired = False
    n = 0
    while time.monotonic() < deadline and n < 200000:
        assert busy.cmd("INCR", "n") == n + 1
        n += 1
        if n % 500 == 0:
            assert other.cmd("GET", "n") == str(n).encode()
            if info_stats(other)["expired_keys"] == 1:
                expired = True
                break
    assert expired, "the cron never expired the key under a polling loop (%d requests)" % n
    assert other.cmd("DBSIZE") == 1
    busy.close()
    other.close()
    assert s.stop() == 0
