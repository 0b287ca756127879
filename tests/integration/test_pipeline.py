"""Pipelining: many commands in one write come back complete and in order."""
from conftest import pack_command

N = 10000


def test_10k_commands_in_one_redis_py_pipeline(r):
    with r.pipeline(transaction=False) as p:
        for i in range(N):
            p.set(b"p:%d" % i, b"v%d" % i)
            p.incr(b"counter")
        for i in range(0, N, 7):
            p.get(b"p:%d" % i)
        replies = p.execute()
    assert replies[:2 * N:2] == [True] * N
    assert replies[1:2 * N:2] == list(range(1, N + 1))  # INCRs answered in order
    assert replies[2 * N:] == [b"v%d" % i for i in range(0, N, 7)]
    assert r.dbsize() == N + 1


def test_10k_raw_commands_in_one_write(server, r):
    conn = server.resp()
    try:
        data = b"".join(pack_command("INCR", "seq") for _ in range(N)) + pack_command("GET", "seq")
        conn.send(data)
        replies = [conn.read() for _ in range(N + 1)]
        assert replies[:N] == list(range(1, N + 1))
        assert replies[N] == str(N).encode()
    finally:
        conn.close()


def test_pipeline_of_mixed_replies_and_errors(server, r):
    conn = server.resp()
    try:
        cmds = []
        want = []
        for i in range(1000):
            cmds.append(("SET", "m:%d" % i, "x"))
            want.append("OK")
            cmds.append(("INCR", "m:%d" % i))  # an error in the middle must not stop the pipeline
            want.append("ERR value is not an integer or out of range")
            cmds.append(("GET", "m:%d" % i))
            want.append(b"x")
        got = conn.pipeline(cmds)
        got = [g.msg if hasattr(g, "msg") else g for g in got]
        assert got == want
    finally:
        conn.close()


def test_large_pipelined_values(server, r):
    conn = server.resp()
    try:
        values = [bytes([i % 251]) * (64 * 1024 + i) for i in range(64)]  # ~4 MiB total
        got = conn.pipeline([("SET", "big:%d" % i, v) for i, v in enumerate(values)] +
                            [("GET", "big:%d" % i) for i in range(len(values))])
        assert got[:len(values)] == ["OK"] * len(values)
        assert got[len(values):] == values
    finally:
        conn.close()


def test_pipeline_cut_at_random_points_across_many_reads(server, r):
    """Requests cut anywhere - inside a length line, a payload or its CRLF -
    and sent in pieces with pauses, so the server reads them in many parts
    (some into its shared read buffer, the rest carried over): every reply
    comes back in order and every value is stored whole."""
    import random
    import time
    rnd = random.Random(7)
    conn = server.resp()
    try:
        values = [bytes([rnd.randrange(256) for _ in range(rnd.choice((1, 100, 1024, 5000)))])
                  for _ in range(300)]
        data = b"".join(pack_command("SET", "cut:%d" % i, v) for i, v in enumerate(values))
        data += b"".join(pack_command("GET", "cut:%d" % i) for i in range(len(values)))
        pos = 0
        while pos < len(data):
            n = rnd.choice((1, 2, 7, 100, 1500, 20000, 70000))
            conn.send(data[pos:pos + n])
            pos += n
            if rnd.random() < 0.05:
                time.sleep(0.01)  # let the server read what has arrived
        replies = [conn.read() for _ in range(2 * len(values))]
        assert replies[:len(values)] == ["OK"] * len(values)
        assert replies[len(values):] == values
    finally:
        conn.close()
