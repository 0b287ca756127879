#!/usr/bin/python3
"""Leaderless mode side by side with leader mode, on this machine, in one run.

    bench/leaderless.py [--quick] [--write]

1. Three leaderless nodes (N=3, R=2, W=2, fsync always) beside three
   leader-mode nodes (writes acknowledged at QUORUM, fsync always):
   redis-benchmark SET and GET, 50 clients, 16-byte values, ops/s and p99.
   Leaderless requests go to one node, which coordinates every key; leader
   mode's go to the leader. Each figure is the better of two interleaved
   runs.
2. Anti-entropy: one leaderless node is stopped while KEYS keys are written
   at W=2 (sloppy quorum and read repair have nothing to do: the sloppy
   quorum is off and nothing is read), then started again. Reported: the
   time until its own copy holds every key, and the bytes the exchanges
   sent, against the size of the data. Then the same when it misses only
   SMALL overwrites, and, with every replica in sync, the bytes one full
   sweep of the ring sends.

Every process listens on 127.0.0.1 on a free port, keeps its data in one
temporary directory, and is stopped by its pid at the end. With --write the
results are prepended to bench/RESULTS.md.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cluster  # noqa: E402
from cluster import HOST, Proc, Resp, info_dict, redis_benchmark, resp_call, wait_until  # noqa: E402
from run import free_port, prepend_results  # noqa: E402

VALUE = b"v" * 16
SMALL = 100  # keys node 3 misses in the "little differs" case


class Leaderless:
    def __init__(self, tmp, binary, logdir, extra=(), n=3, name="ll"):
        self.ports = [free_port() for _ in range(n)]
        peer_ports = [free_port() for _ in range(n)]
        peers = ",".join("%d=%s:%d" % (i + 1, HOST, p) for i, p in enumerate(peer_ports))
        self.nodes = [Proc("%s%d" % (name, i + 1),
                           [binary, "server", "--mode", "leaderless", "--node-id", str(i + 1),
                            "--peers", peers, "--port", str(self.ports[i]),
                            "--dir", os.path.join(tmp, "%s%d" % (name, i + 1)),
                            "--fsync", "always", "--loglevel", "warning"] + list(extra), logdir)
                      for i in range(n)]

    def start(self):
        for p in self.nodes:
            p.start()
        self.healthy()

    def _all_alive(self):
        # every node sees every other alive, and a quorum write goes through
        for i, p in enumerate(self.nodes):
            if not p.alive():
                return False
            info = info_dict(self.ports[i], "leaderless")
            peers = [v for k, v in info.items() if k.startswith("peer")]
            if len(peers) != len(self.nodes) - 1 or any("alive=1" not in v for v in peers):
                return False
        return resp_call(self.ports[0], "SET", "bench:probe", "1") == b"OK"

    def healthy(self):
        wait_until("a healthy leaderless cluster", self._all_alive, cluster.HEALTHY_TIMEOUT_S,
                   self.nodes)


def local_keys(port):
    """Keys in the node's own copy (INFO keyspace, db0)."""
    ks = info_dict(port, "keyspace").get("db0", "keys=0")
    return int(dict(kv.split("=") for kv in ks.split(","))["keys"])


def ae_bytes(ll):
    return sum(int(info_dict(p, "leaderless").get("ae_bytes_sent", 0)) for p in ll.ports)


def load(port, keys, conns=8, depth=200):
    """SET key:<i> for i in range(keys), pipelined: every reply must be +OK."""
    socks = [Resp(port, 30.0) for _ in range(conns)]
    try:
        i = 0
        while i < keys:
            batch = []
            for s in socks:
                n = min(depth, keys - i)
                if n <= 0:
                    break
                s.sock.sendall(b"".join(cluster.resp_encode("SET", "key:%09d" % j, VALUE)
                                        for j in range(i, i + n)))
                batch.append((s, n))
                i += n
            for s, n in batch:
                for _ in range(n):
                    r = s._read()
                    if r != b"OK":
                        raise RuntimeError("SET failed: %r" % (r,))
    finally:
        for s in socks:
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests and keys (a smoke run)")
    ap.add_argument("--write", action="store_true", help="prepend the results to bench/RESULTS.md")
    opts = ap.parse_args()
    rb_n = 20000 if opts.quick else 100000
    ae_keys = 20000 if opts.quick else 100000

    with cluster.BenchRun("triad-bench-leaderless-") as run:
        tmp, logdir, binary, say, progress = run.tmp, run.logdir, run.binary, run.say, run.progress
        # ---- 1. throughput beside leader mode ----
        ll = Leaderless(tmp, binary, logdir)
        lead = cluster.TriadCluster(tmp, binary, logdir)
        ll.start()
        lead.start()
        rows = {}

        def best(name, fn):
            r = fn()
            progress("  %-26s %9.0f ops/s  p50 %.3f ms  p99 %.3f ms" % (name, *r))
            if name not in rows or r[0] > rows[name][0]:
                rows[name] = r

        for rnd in range(2):
            progress("round %d" % (rnd + 1))
            lp = lead.ports[lead.healthy()]
            best("leaderless SET", lambda: redis_benchmark(ll.ports[0], "set", rb_n))
            best("leader SET", lambda: redis_benchmark(lp, "set", rb_n))
            best("leaderless GET", lambda: redis_benchmark(ll.ports[0], "get", rb_n))
            best("leader GET", lambda: redis_benchmark(lp, "get", rb_n))
        for p in ll.nodes + lead.nodes:
            p.stop()

        say("Three nodes of each mode on 127.0.0.1, all on this one machine and disk, fsync always. "
            "redis-benchmark, 50 connections, one request in flight on each, 16-byte values, keys drawn "
            "from 100,000; leaderless requests to one node (it coordinates every key), leader mode's to "
            "the leader. Each figure is the better of two interleaved runs.")
        say()
        say("## Leaderless (N=3, R=2, W=2) beside leader mode (QUORUM)")
        say()
        say("| command | leaderless ops/s | p99 ms | leader mode ops/s | p99 ms | ratio |")
        say("|---|---|---|---|---|---|")
        for cmd in ("SET", "GET"):
            a, b = rows["leaderless " + cmd], rows["leader " + cmd]
            say("| %s | %.0f | %.3f | %.0f | %.3f | **%.2f** |" % (cmd, a[0], a[2], b[0], b[2], a[0] / b[0]))
        say()

        # ---- 2. anti-entropy ----
        progress("anti-entropy: %d keys missed by one replica" % ae_keys)
        ae = Leaderless(tmp, binary, logdir, name="ae",
                        extra=["--sloppy-quorum", "no", "--anti-entropy-interval-ms", "2000",
                               "--gossip-interval-ms", "200"])
        ae.start()
        ae.nodes[2].stop()
        t0 = time.monotonic()
        load(ae.ports[0], ae_keys)
        t_load = time.monotonic() - t0
        full = [local_keys(p) for p in ae.ports[:2]]
        base = [int(info_dict(p, "leaderless").get("ae_bytes_sent", 0)) for p in ae.ports[:2]]
        ae.nodes[2].start()
        t1 = time.monotonic()
        wait_until("the stopped replica to hold every key",
                   lambda: local_keys(ae.ports[2]) >= ae_keys + 1, 600, ae.nodes)
        t_repair = time.monotonic() - t1
        sent = sum(int(info_dict(p, "leaderless").get("ae_bytes_sent", 0)) for p in ae.ports[:2]) - sum(base) \
            + int(info_dict(ae.ports[2], "leaderless").get("ae_bytes_sent", 0))
        repaired = sum(int(info_dict(p, "leaderless").get("ae_keys_repaired", 0)) for p in ae.ports)
        # little differs: node 3 misses SMALL overwrites of existing keys
        ae.nodes[2].stop()
        small_keys = ["key:%09d" % (j * (ae_keys // SMALL)) for j in range(SMALL)]
        r = Resp(ae.ports[0], 30.0)
        for k in small_keys:
            if r.call("SET", k, b"w" * 16) != b"OK":
                raise RuntimeError("SET failed")
        r.close()
        b0 = [int(info_dict(p, "leaderless").get("ae_bytes_sent", 0)) for p in ae.ports[:2]]
        ae.nodes[2].start()
        t2 = time.monotonic()

        def small_repaired():
            c = Resp(ae.ports[2], 5.0)
            try:
                if c.call("READONLY") != b"OK":
                    return False
                return all(c.call("GET", k) == b"w" * 16 for k in small_keys)
            finally:
                c.close()
        wait_until("the stopped replica to get the %d overwrites" % SMALL, small_repaired, 600,
                   ae.nodes)
        t_small = time.monotonic() - t2
        small_sent = sum(int(info_dict(p, "leaderless").get("ae_bytes_sent", 0)) for p in ae.ports[:2]) \
            - sum(b0) + int(info_dict(ae.ports[2], "leaderless").get("ae_bytes_sent", 0))
        # in sync: the bytes of one full sweep (every range compared once)
        time.sleep(1.0)
        s0 = ae_bytes(ae)
        x0 = sum(int(info_dict(p, "leaderless").get("ae_exchanges", 0)) for p in ae.ports)
        time.sleep(2.5)
        s1 = ae_bytes(ae)
        x1 = sum(int(info_dict(p, "leaderless").get("ae_exchanges", 0)) for p in ae.ports)
        for p in ae.nodes:
            p.stop()
        payload = ae_keys * (len("key:000000000") + len(VALUE))
        say("## Anti-entropy: a replica that missed %d writes" % ae_keys)
        say()
        say("Three leaderless nodes, sloppy quorum off, a full sweep of the ring every 2 s (anti-entropy-"
            "interval-ms 2000). Node 3 was stopped while %d keys (13-byte keys, 16-byte values) were "
            "written at W=2 through node 1 (%.1f s), then started again." % (ae_keys, t_load))
        say()
        say("| figure | value |")
        say("|---|---|")
        say("| keys on nodes 1 and 2 after the load | %s |" % " / ".join(str(k - 1) for k in full))
        say("| time from restart until node 3 holds every key | %.1f s |" % t_repair)
        say("| keys repaired by anti-entropy (all nodes) | %d |" % repaired)
        say("| bytes the exchanges sent during the repair | %d (%.2f x the keys and values, %d bytes) |" % (
            sent, sent / payload, payload))
        say("| %d of the %d keys overwritten while node 3 was down: time until it has them | %.1f s |" % (
            SMALL, ae_keys, t_small))
        say("| ... bytes the exchanges sent meanwhile (every node) | %d (%.4f x the keys and values) |" % (
            small_sent, small_sent / payload))
        say("| in sync: bytes per exchange (one range compared, nothing differs) | %.0f |" % (
            (s1 - s0) / max(1, x1 - x0)))
        say("| in sync: bytes for a full sweep of the ring, all three nodes | %.0f (%.4f x the data) |" % (
            (s1 - s0) / 2.5 * 2.0, (s1 - s0) / 2.5 * 2.0 / payload))
        say()
        run.footer()

    if opts.write:
        prepend_results("Leaderless mode (three nodes)", run.lines, opts.quick)


if __name__ == "__main__":
    main()
