"""Many clients at once."""
import socket
import threading
import time

from conftest import HOST, pack_command

N_CLIENTS = 1000
DEADLINE_S = 60.0


def test_1000_concurrent_connections_each_set_and_get(server, r):
    socks = []
    deadline = time.monotonic() + DEADLINE_S
    try:
        for i in range(N_CLIENTS):
            s = socket.create_connection((HOST, server.port), timeout=10)
            socks.append(s)
        # every connection is open at once; each sends its SET before any reply is read
        for i, s in enumerate(socks):
            s.sendall(pack_command("SET", "client:%d" % i, "v%d" % i))
        for s in socks:
            assert recv_n(s, 5, deadline) == b"+OK\r\n"
        info = r.info("clients")
        assert info["connected_clients"] >= N_CLIENTS + 1
        for i, s in enumerate(socks):
            s.sendall(pack_command("GET", "client:%d" % i))
        for i, s in enumerate(socks):
            v = b"v%d" % i
            want = b"$%d\r\n%s\r\n" % (len(v), v)
            assert recv_n(s, len(want), deadline) == want
    finally:
        for s in socks:
            s.close()
    assert r.dbsize() == N_CLIENTS


def recv_n(s, n, deadline):
    buf = b""
    while len(buf) < n:
        assert time.monotonic() < deadline, "clients took longer than %ss" % DEADLINE_S
        chunk = s.recv(n - len(buf))
        assert chunk, "connection closed"
        buf += chunk
    return buf


def test_concurrent_increments_are_not_lost(server, r):
    n_threads, per_thread = 20, 500
    errors = []

    def work():
        client = server.client()
        try:
            for _ in range(per_thread):
                client.incr("shared")
        except Exception as e:  # reported below
            errors.append(e)
        finally:
            client.close()

    threads = [threading.Thread(target=work) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=DEADLINE_S)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert r.get("shared") == str(n_threads * per_thread).encode()


def test_connection_count_goes_down_after_close(server, r):
    before = r.info("clients")["connected_clients"]
    extra = [server.resp() for _ in range(20)]
    for conn in extra:
        assert conn.cmd("PING") == "PONG"
    assert r.info("clients")["connected_clients"] >= before + 20
    for conn in extra:
        conn.close()
    from conftest import wait_until
    assert wait_until(lambda: r.info("clients")["connected_clients"] <= before, timeout_s=10.0)
