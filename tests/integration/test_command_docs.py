"""COMMAND DOCS: every command's complexity and argument tree, in Redis 7.0's
shape. redis-cli 7 reads them at start-up to show its interactive hints
(`SET key value [NX|XX] [GET] ...`), so a server that answers with the
summary alone gets no hints (src/cmd/docs.c holds the data).

What Triad and Redis share runs on both targets, so the expectations are
checked against redis-server too. Triad's own differences are triad_only:
SET's IFEQ (documented as Redis 8.4 does) and CLIENT's subcommands (only
those Triad answers, with 7.2's SETINFO and NO-TOUCH). When a redis-server
7.0 is installed, test_docs_match_redis_7_0 compares every command's reply
with it byte for byte; without one it is skipped (CI need not have it).
"""
import shutil
import subprocess

import pytest

from conftest import REDIS_SERVER_BIN, TARGET, Err, RespConn, RSet, Server, pack_command

ARG_TYPES = {"string", "integer", "double", "key", "pattern", "unix-time", "pure-token", "oneof",
             "block"}
ARG_FLAGS = {"optional", "multiple", "multiple_token"}
# Triad's commands that take no arguments (the containers take theirs
# through their subcommands).
NO_ARGUMENTS = {"dbsize", "randomkey", "quit", "reset", "time", "save", "lastsave", "role", "multi",
                "exec", "discard", "unwatch", "client", "config", "command"}
CONTAINERS = {"client", "config", "command"}


def s(x):
    return x.decode() if isinstance(x, bytes) else x


def pairs(flat):
    """A RESP2 map (a flat array) as a dict with its keys decoded."""
    assert len(flat) % 2 == 0, flat
    return {s(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}


def arg_from_resp2(flat):
    a = pairs(flat)
    out = {}
    for k, v in a.items():
        if k == "arguments":
            out[k] = [arg_from_resp2(x) for x in v]
        elif k == "flags":
            out[k] = [s(f) for f in v]
        else:
            out[k] = s(v) if isinstance(v, bytes) else v
    return out


def doc_from_resp2(flat):
    d = pairs(flat)
    out = {}
    for k, v in d.items():
        if k == "arguments":
            out[k] = [arg_from_resp2(x) for x in v]
        elif k == "subcommands":
            out[k] = {s(n): doc_from_resp2(sub) for n, sub in pairs(v).items()}
        elif k == "history":
            out[k] = [[s(ver), s(text)] for ver, text in v]
        elif k == "doc_flags":
            out[k] = [s(f) for f in v]
        else:
            out[k] = s(v)
    return out


def docs(r, *names):
    """COMMAND DOCS through redis-py (RESP2), as {name: doc}. The command
    name goes as one string: redis-py 4.3 would otherwise parse the reply
    with its callback for COMMAND."""
    flat = r.execute_command("COMMAND DOCS", *names)
    return {s(n): doc_from_resp2(d) for n, d in pairs(flat).items()}


def check_args(where, args):
    """Every argument map is one Redis 7.0 could send."""
    assert isinstance(args, list) and args, where
    for a in args:
        here = "%s/%s" % (where, a.get("name"))
        assert list(a)[:2] == ["name", "type"], here
        assert a["type"] in ARG_TYPES, here
        assert set(a.get("flags", [])) <= ARG_FLAGS, here
        if a["type"] == "key":  # (Redis gives SORT's BY pattern one too)
            assert isinstance(a["key_spec_index"], int), here
        if a["type"] == "pure-token":
            assert "token" in a, here  # (MIGRATE's is the empty string)
        if a["type"] in ("oneof", "block"):
            check_args(here, a["arguments"])
        else:
            assert "arguments" not in a, here


# ---------------------------------------------------------------- both targets


def test_argument_trees_are_well_formed(r):
    for name, d in docs(r).items():
        assert d["summary"] and d["since"] and d["group"], name
        if "arguments" in d:
            check_args(name, d["arguments"])
        for sub, sd in d.get("subcommands", {}).items():
            assert sub.startswith(name + "|"), sub
            if "arguments" in sd:
                check_args(sub, sd["arguments"])


def test_set_docs(r, target):
    d = docs(r, "SET")["set"]
    assert list(d) == ["summary", "since", "group", "complexity", "history", "arguments"]
    assert d["complexity"] == "O(1)"
    condition = [{"name": "nx", "type": "pure-token", "token": "NX"},
                 {"name": "xx", "type": "pure-token", "token": "XX"}]
    history_added = []
    if target == "triad":  # Redis 8.4's IFEQ, the one of its four conditions Triad has
        condition.append({"name": "ifeq-value", "type": "string", "token": "IFEQ",
                          "since": "8.4.0"})
        history_added = [["8.4.0", "Added the `IFEQ` option."]]
    assert [h[0] for h in d["history"]] == ["2.6.12", "6.0.0", "6.2.0", "7.0.0"] + \
        [h[0] for h in history_added]
    assert d["history"][4:] == history_added
    assert d["arguments"] == [
        {"name": "key", "type": "key", "key_spec_index": 0},
        {"name": "value", "type": "string"},
        {"name": "condition", "type": "oneof", "since": "2.6.12", "flags": ["optional"],
         "arguments": condition},
        {"name": "get", "type": "pure-token", "token": "GET", "since": "6.2.0",
         "flags": ["optional"]},
        {"name": "expiration", "type": "oneof", "flags": ["optional"], "arguments": [
            {"name": "seconds", "type": "integer", "token": "EX", "since": "2.6.12"},
            {"name": "milliseconds", "type": "integer", "token": "PX", "since": "2.6.12"},
            {"name": "unix-time-seconds", "type": "unix-time", "token": "EXAT",
             "since": "6.2.0"},
            {"name": "unix-time-milliseconds", "type": "unix-time", "token": "PXAT",
             "since": "6.2.0"},
            {"name": "keepttl", "type": "pure-token", "token": "KEEPTTL", "since": "6.0.0"},
        ]},
    ]


def test_getex_docs(r):
    d = docs(r, "getex")["getex"]
    assert d == {
        "summary": "Get the value of a key and optionally set its expiration",
        "since": "6.2.0", "group": "string", "complexity": "O(1)",
        "arguments": [
            {"name": "key", "type": "key", "key_spec_index": 0},
            {"name": "expiration", "type": "oneof", "flags": ["optional"], "arguments": [
                {"name": "seconds", "type": "integer", "token": "EX"},
                {"name": "milliseconds", "type": "integer", "token": "PX"},
                {"name": "unix-time-seconds", "type": "unix-time", "token": "EXAT"},
                {"name": "unix-time-milliseconds", "type": "unix-time", "token": "PXAT"},
                {"name": "persist", "type": "pure-token", "token": "PERSIST"},
            ]},
        ],
    }


def test_scan_docs(r):
    d = docs(r, "SCAN")["scan"]
    assert d["history"] == [["6.0.0", "Added the `TYPE` subcommand."]]
    assert d["arguments"] == [
        {"name": "cursor", "type": "integer"},
        {"name": "pattern", "type": "pattern", "token": "MATCH", "flags": ["optional"]},
        {"name": "count", "type": "integer", "token": "COUNT", "flags": ["optional"]},
        {"name": "type", "type": "string", "token": "TYPE", "since": "6.0.0",
         "flags": ["optional"]},
    ]


def test_repeatable_blocks_and_deprecation(r):
    d = docs(r, "MSET", "GETSET", "RENAME", "nosuch")
    assert set(d) == {"mset", "getset", "rename"}  # unknown names are left out
    assert d["mset"]["arguments"] == [
        {"name": "key_value", "type": "block", "flags": ["multiple"], "arguments": [
            {"name": "key", "type": "key", "key_spec_index": 0},
            {"name": "value", "type": "string"}]}]
    assert d["getset"]["doc_flags"] == ["deprecated"]
    assert d["getset"]["deprecated_since"] == "6.2.0"
    assert d["getset"]["replaced_by"] == "`SET` with the `!GET` argument"
    assert d["rename"]["arguments"][1] == {"name": "newkey", "type": "key", "key_spec_index": 1}


def test_resp3_docs_are_maps_with_sets(r3):
    d = r3.cmd("COMMAND", "DOCS", "EXPIRE")
    assert list(d) == [b"expire"]
    e = d[b"expire"]
    assert list(e) == [b"summary", b"since", b"group", b"complexity", b"history", b"arguments"]
    assert e[b"history"] == RSet([[b"7.0.0", b"Added options: `NX`, `XX`, `GT` and `LT`."]])
    cond = e[b"arguments"][2]
    assert list(cond) == [b"name", b"type", b"since", b"flags", b"arguments"]
    assert cond[b"flags"] == RSet(["optional"])
    assert [a[b"token"] for a in cond[b"arguments"]] == [b"NX", b"XX", b"GT", b"LT"]


def test_container_subcommands_are_answered(make_server):
    """Every documented subcommand exists: called bare it may want more
    arguments, but it is never an unknown subcommand. (A private server:
    CONFIG RESETSTAT clears the stats.)"""
    srv = make_server()
    r = srv.client()
    d = docs(r, "CLIENT", "CONFIG", "COMMAND")
    c = srv.resp()
    try:
        for name in ("client", "config", "command"):
            subs = d[name]["subcommands"]
            assert subs and "arguments" not in d[name]
            for full in subs:
                parent, sub = full.split("|")
                assert parent == name
                reply = c.cmd(parent.upper(), sub.upper())
                assert not (isinstance(reply, Err) and "unknown subcommand" in reply.msg), full
    finally:
        c.close()
        r.close()


# ---------------------------------------------------------------- triad only


@pytest.mark.triad_only("Redis 7.0 leaves complexity out for a few of its 240 commands")
def test_every_command_has_docs(r):
    commands = {s(n) for n in r.execute_command("COMMAND LIST")}
    d = docs(r)
    assert set(d) == commands
    for name in commands:
        assert set(docs(r, name)) == {name}
        doc = d[name]
        assert list(doc)[:4] == ["summary", "since", "group", "complexity"], name
        assert all(doc[k] for k in ("summary", "since", "group", "complexity")), name
        assert ("arguments" in doc) == (name not in NO_ARGUMENTS), name
        assert ("subcommands" in doc) == (name in CONTAINERS), name


@pytest.mark.triad_only("CLIENT advertises only what Triad answers")
def test_client_docs_advertise_only_what_triad_answers(r):
    subs = docs(r, "CLIENT")["client"]["subcommands"]
    assert set(subs) == {"client|" + n for n in (
        "getname", "help", "id", "info", "kill", "list", "no-evict", "no-touch", "reply",
        "setinfo", "setname")}
    assert subs["client|setinfo"]["since"] == "7.2.0"
    assert subs["client|setinfo"]["arguments"] == [
        {"name": "attr", "type": "oneof", "arguments": [
            {"name": "libname", "type": "string", "token": "lib-name"},
            {"name": "libver", "type": "string", "token": "lib-ver"}]}]
    assert "command|getkeysandflags" not in docs(r, "COMMAND")["command"]["subcommands"]


# ---------------------------------------------------------------- against redis-server 7.0


def raw_reply(f):
    """One reply's exact bytes."""
    line = f.readline()
    assert line.endswith(b"\r\n"), line
    t, body = line[:1], line[1:-2]
    if t in b"+-:(,#_":
        return line
    if t in (b"$", b"=", b"!"):
        n = int(body)
        return line + (f.read(n + 2) if n >= 0 else b"")
    if t in (b"*", b"~", b">", b"%"):
        n = int(body) * (2 if t == b"%" else 1)
        return line + b"".join(raw_reply(f) for _ in range(max(n, 0)))
    raise ValueError(line)


def raw_docs(port, proto, name):
    c = RespConn(port)
    try:
        if proto == 3:
            c.cmd("HELLO", "3")
        c.send(pack_command("COMMAND", "DOCS", name))
        return raw_reply(c.f)
    finally:
        c.close()


def redis_7_0_installed():
    if shutil.which(REDIS_SERVER_BIN) is None:
        return False
    p = subprocess.run([REDIS_SERVER_BIN, "--version"], capture_output=True, timeout=30)
    return b" v=7.0." in p.stdout


@pytest.mark.skipif(TARGET != "triad", reason="compares triad with redis-server")
@pytest.mark.skipif(not redis_7_0_installed(), reason="redis-server 7.0 not installed")
def test_docs_match_redis_7_0(r, server, tmp_path):
    """Byte for byte in RESP2 and RESP3, except Triad's known differences:
    SET has IFEQ; CLIENT, CONFIG and COMMAND list their subcommands in
    another order (Redis's is its hash table's), CLIENT and COMMAND fewer of
    them and CLIENT two of Redis 7.2's."""
    ref = Server(tmp_path, name="redis7", target="redis")
    ref.start()
    try:
        rr = ref.client()
        structural = {"set", "client", "config", "command"}
        names = sorted(s(n) for n in r.execute_command("COMMAND LIST"))
        for name in names:
            if name in structural:
                continue
            for proto in (2, 3):
                assert raw_docs(server.port, proto, name) == raw_docs(ref.port, proto, name), \
                    (name, proto)

        mine, theirs = docs(r, *structural), docs(rr, *structural)
        ifeq = mine["set"]["arguments"][2]["arguments"].pop()
        assert ifeq["token"] == "IFEQ"
        assert mine["set"]["history"].pop()[0] == "8.4.0"
        assert mine["set"] == theirs["set"]
        triad_extra = {"client|setinfo", "client|no-touch"}
        for name in ("client", "config", "command"):
            m, t = mine[name], theirs[name]
            msub, tsub = m.pop("subcommands"), t.pop("subcommands")
            assert m == t, name
            assert set(msub) - set(tsub) <= triad_extra, name
            for sub in set(msub) & set(tsub):
                assert msub[sub] == tsub[sub], sub
                assert list(msub[sub]) == list(tsub[sub]), sub
        rr.close()
    finally:
        ref.stop()
