"""The durability rule, observed directly: no reply leaves the server before
the write it follows is durable.

An LD_PRELOAD shim (syncgate.c, built as build/libsyncgate.so) makes every
fdatasync wait while a gate file exists. With the gate closed the log is
written but not durable, so under fsync always a SET must get no reply - and
neither may a GET that would reveal its value, nor a PING that arrived after
it - until the gate opens. Under fsync no, replies do not wait.

Runs against redis too (appendonly yes with the same appendfsync policy),
which holds replies the same way by fsyncing before it writes them.
"""
import socket

import pytest

from conftest import HOST, durable_args, syncgate_env, wait_until

HELD_S = 0.7  # how long a held reply is watched for not arriving


def gated(make_server, tmp_path, fsync):
    gate = tmp_path / "gate"
    gate.mkdir()
    s = make_server(extra_args=durable_args(fsync), env=syncgate_env(TRIAD_TEST_SYNC_GATE=gate))
    return s, gate


def send(port, *args):
    """Send one command on a fresh raw connection; return the socket."""
    sock = socket.create_connection((HOST, port), timeout=10)
    frame = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
    sock.sendall(frame)
    return sock


def reply_within(sock, timeout_s):
    """The bytes of a reply if one arrives within timeout_s, else None."""
    sock.settimeout(timeout_s)
    try:
        data = sock.recv(4096)
    except socket.timeout:
        return None
    return data


def test_no_reply_leaves_before_the_write_is_durable(make_server, tmp_path):
    s, gate = gated(make_server, tmp_path, "always")
    (gate / "closed").touch()
    try:
        setter = send(s.port, b"SET", b"k", b"v1")
        assert reply_within(setter, HELD_S) is None, "SET acknowledged before its fsync"
        reader = send(s.port, b"GET", b"k")
        assert reply_within(reader, HELD_S) is None, "a read revealed a write not yet durable"
        pinger = send(s.port, b"PING")
        assert reply_within(pinger, HELD_S) is None
    finally:
        (gate / "closed").unlink()
    assert reply_within(setter, 10) == b"+OK\r\n"
    assert reply_within(reader, 10) == b"$2\r\nv1\r\n"
    assert reply_within(pinger, 10) == b"+PONG\r\n"
    for sock in (setter, reader, pinger):
        sock.close()


def test_info_counts_the_clients_whose_replies_wait_for_the_disk(make_server, tmp_path):
    """INFO's own reply waits like any other, but says how many clients
    were waiting when it was made."""
    s, gate = gated(make_server, tmp_path, "always")
    (gate / "closed").touch()
    try:
        setters = [send(s.port, b"SET", b"k%d" % i, b"v") for i in range(3)]
        for sock in setters:
            assert reply_within(sock, HELD_S) is None
        info = send(s.port, b"INFO", b"clients")
        assert reply_within(info, HELD_S) is None
    finally:
        (gate / "closed").unlink()
    text = reply_within(info, 10)
    assert text and text.startswith(b"$"), text
    want = int(text[1:text.index(b"\r\n")]) + text.index(b"\r\n") + 4
    while len(text) < want:
        chunk = reply_within(info, 10)
        assert chunk, "INFO reply cut short: %r" % text
        text += chunk
    assert b"clients_waiting_for_durability:3\r\n" in text, text
    for sock in setters:
        assert reply_within(sock, 10) == b"+OK\r\n"
        sock.close()
    info.close()
    assert s.client().info("clients")["clients_waiting_for_durability"] == 0


def test_fsync_no_replies_without_waiting_for_the_disk(make_server, tmp_path):
    s, gate = gated(make_server, tmp_path, "no")
    (gate / "closed").touch()
    try:
        setter = send(s.port, b"SET", b"k", b"v1")
        assert reply_within(setter, 10) == b"+OK\r\n"
        reader = send(s.port, b"GET", b"k")
        assert reply_within(reader, 10) == b"$2\r\nv1\r\n"
    finally:
        (gate / "closed").unlink()
    setter.close()
    reader.close()


@pytest.mark.triad_only("CONFIG SET fsync is triad's (Redis: appendfsync)")
def test_a_switch_back_from_fsync_no_holds_replies_again(make_server, tmp_path):
    """Under `no` replies never wait; switched back to `always`, they must
    wait for their fsync again."""
    s, gate = gated(make_server, tmp_path, "always")
    c = s.client()
    assert c.config_set("fsync", "no") is True
    assert c.set("before", "x") is True
    assert c.config_set("fsync", "always") is True
    (gate / "closed").touch()
    try:
        setter = send(s.port, b"SET", b"k", b"v1")
        assert reply_within(setter, HELD_S) is None, "SET acknowledged before its fsync"
    finally:
        (gate / "closed").unlink()
    assert reply_within(setter, 10) == b"+OK\r\n"
    setter.close()


@pytest.mark.triad_only("CONFIG SET fsync is triad's (Redis: appendfsync)")
def test_records_written_under_fsync_no_are_synced_once_the_policy_is_always(make_server,
                                                                               tmp_path):
    """A write made under `no` and already written to the OS, not synced:
    once the policy is `always`, a read of it waits for its fsync, which
    the fsync thread makes at once (no new write need come to carry it)."""
    s, gate = gated(make_server, tmp_path, "no")
    c = s.client()
    assert c.set("k", "v1") is True
    assert wait_until(lambda: c.info("persistence")["wal_written_lsn"] >=
                      c.info("persistence")["wal_last_lsn"], timeout_s=10.0)
    info = c.info("persistence")
    assert info["wal_synced_lsn"] < info["wal_written_lsn"], info
    (gate / "closed").touch()
    try:
        # CONFIG SET's own reply waits like any other, for the fsync of k
        switch = send(s.port, b"CONFIG", b"SET", b"fsync", b"always")
        assert reply_within(switch, HELD_S) is None, "a reply left before an earlier write's fsync"
        reader = send(s.port, b"GET", b"k")
        assert reply_within(reader, HELD_S) is None, "a read revealed a write not yet durable"
    finally:
        (gate / "closed").unlink()
    assert reply_within(switch, 10) == b"+OK\r\n"
    assert reply_within(reader, 10) == b"$2\r\nv1\r\n"
    switch.close()
    reader.close()
