#!/usr/bin/python3
"""Side-by-side benchmark: triad server vs redis-server, same machine, same run.

Runs redis-benchmark with identical flags against both servers and prints
ratios (triad / redis); with --write, appends a dated section to
bench/RESULTS.md. Every server this script starts listens on 127.0.0.1 on a
free port and is stopped by its pid.

    bench/run.py [--quick] [--write]
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRIAD = os.environ.get("TRIAD_BIN", os.path.join(ROOT, "build", "triad"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s" % proc.returncode)
        try:
            out = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True,
                                 text=True, timeout=5).stdout.strip()
            if out == "PONG":
                return
        except subprocess.TimeoutExpired:
            pass
        time.sleep(0.02)
    raise RuntimeError("server on port %d not ready" % port)


STARTED = []  # every server this run started, stopped at the end whatever happens


class Server:
    def __init__(self, kind, args, datadir):
        self.kind = kind
        self.port = free_port()
        self.datadir = datadir
        os.makedirs(datadir, exist_ok=True)
        if kind == "triad":
            cmd = [TRIAD, "server", "--port", str(self.port), "--dir", datadir,
                   "--loglevel", "warning"] + args
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", datadir, "--daemonize", "no", "--loglevel", "warning"] + args
        self.cmd = cmd
        self.start()

    def start(self):
        t0 = time.time()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        STARTED.append(self)
        wait_ready(self.port, self.proc)
        if self.kind == "redis":
            # redis answers PING with -LOADING while it loads: wait for loading:0
            while "loading:1" in self.cli("INFO", "persistence"):
                time.sleep(0.01)
        return time.time() - t0

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port)] + list(args),
                              capture_output=True, text=True, timeout=600).stdout

    def rss_kb(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


ROUNDS = 6


def bench_pair(tport, rport, test, clients, pipeline, size, requests):
    """triad and redis back to back, ROUNDS times, the one going first
    alternating (t r, r t, t r, ...). The machine's speed drifts over seconds
    (the disk, the other tenants: the same server's figure for the same row
    moves by a quarter between runs), and both runs of a round see nearly
    the same machine, so the ratio is taken per round and the row's ratio is
    the median of those: drift cancels within a round, and one disturbed
    run moves the median little. Returns (ratio, lowest ratio, highest
    ratio, triad's median ops/s and p99, redis's)."""
    ts, rs = [], []
    for i in range(ROUNDS):
        if i % 2 == 0:
            ts.append(bench_once(tport, test, clients, pipeline, size, requests))
            rs.append(bench_once(rport, test, clients, pipeline, size, requests))
        else:
            rs.append(bench_once(rport, test, clients, pipeline, size, requests))
            ts.append(bench_once(tport, test, clients, pipeline, size, requests))
    ratios = [t[0] / r[0] for t, r in zip(ts, rs)]
    return (statistics.median(ratios), min(ratios), max(ratios),
            statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts),
            statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))


def row(test, pipeline, size, pair):
    ratio, lo, hi, tv, tp, rv, rp = pair
    return "| %s | 50 | %d | %d B | %.0f | %.0f | **%.2f** | %.2f-%.2f | %.3f | %.3f |" % (
        test.upper(), pipeline, size, tv, rv, ratio, lo, hi, tp, rp)


TABLE_HEAD = ("| test | clients | pipeline | value | triad ops/s | redis ops/s | ratio | ratio range |"
              " triad p99 ms | redis p99 ms |\n|---|---|---|---|---|---|---|---|---|---|")


def bench_once(port, test, clients, pipeline, size, requests):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", test, "-c", str(clients), "-P", str(pipeline),
         "-d", str(size), "-n", str(requests), "-r", "100000", "--csv", "-q"],
        capture_output=True, text=True, timeout=600).stdout
    for line in out.splitlines():
        m = re.match(r'"([A-Z]+)[^"]*","([0-9.]+)"(?:,"([0-9.]+)","([0-9.]+)","([0-9.]+)","([0-9.]+)","([0-9.]+)","([0-9.]+)")?', line)
        if m and m.group(1) == test.upper():
            p99 = float(m.group(7)) if m.group(7) else float("nan")
            return float(m.group(2)), p99
    raise RuntimeError("no result from redis-benchmark: %r" % out)


def load_keys(port, n, size):
    """1..n keys "key:%012d" with `size`-byte values, through redis-cli --pipe."""
    val = "x" * size
    chunks = []
    for i in range(n):
        k = "key:%012d" % i
        chunks.append("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, size, val))
    data = "".join(chunks).encode()
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data, capture_output=True,
                   timeout=600, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    ap.add_argument("--write", action="store_true", help="append the results to bench/RESULTS.md")
    ap.add_argument("--keys", type=int, default=1000000)
    opts = ap.parse_args()
    scale = 10 if opts.quick else 1
    tmp = tempfile.mkdtemp(prefix="triad-bench-")
    lines = []

    def say(s):
        print(s, flush=True)
        lines.append(s)

    try:
        # 1. persistence off on both
        say("## Throughput, persistence off (triad --fsync no; redis --save '' --appendonly no)")
        say("")
        say(TABLE_HEAD)
        t = Server("triad", ["--fsync", "no", "--snapshot-wal-bytes", "0"], os.path.join(tmp, "t1"))
        r = Server("redis", ["--save", "", "--appendonly", "no"], os.path.join(tmp, "r1"))
        os.makedirs(os.path.join(tmp, "r1"), exist_ok=True)
        try:
            for size in (16, 1024):
                for pipeline in (1, 16):
                    for test in ("set", "get"):
                        n = (1000000 if pipeline == 16 else 200000) // scale
                        pair = bench_pair(t.port, r.port, test, 50, pipeline, size, n)
                        say(row(test, pipeline, size, pair))
        finally:
            t.stop()
            r.stop()

        # 2. durable
        say("")
        say("## Throughput, durable (triad --fsync always; redis --appendonly yes --appendfsync always)")
        say("")
        say(TABLE_HEAD)
        os.makedirs(os.path.join(tmp, "r2"), exist_ok=True)
        t = Server("triad", ["--fsync", "always"], os.path.join(tmp, "t2"))
        r = Server("redis", ["--save", "", "--appendonly", "yes", "--appendfsync", "always"],
                   os.path.join(tmp, "r2"))
        try:
            for size in (16, 1024):
                for pipeline in (1, 16):
                    n = (100000 if pipeline == 16 else 50000) // scale
                    pair = bench_pair(t.port, r.port, "set", 50, pipeline, size, n)
                    say(row("set", pipeline, size, pair))
        finally:
            t.stop()
            r.stop()

        # 2b. both with a log written each batch and fsynced once a second:
        # the like-for-like row for what --fsync no still does (write a WAL)
        say("")
        say("## Throughput, log fsynced every second (triad --fsync everysec; redis --appendonly yes --appendfsync everysec)")
        say("")
        say(TABLE_HEAD)
        t = Server("triad", ["--fsync", "everysec", "--snapshot-wal-bytes", "0"], os.path.join(tmp, "t4"))
        r = Server("redis", ["--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
                             "--auto-aof-rewrite-percentage", "0"], os.path.join(tmp, "r4"))
        try:
            for size in (16, 1024):
                for pipeline in (1, 16):
                    n = (1000000 if pipeline == 16 else 200000) // scale
                    pair = bench_pair(t.port, r.port, "set", 50, pipeline, size, n)
                    say(row("set", pipeline, size, pair))
        finally:
            t.stop()
            r.stop()

        # 3. memory per key and restart time
        nkeys = opts.keys // scale
        say("")
        say("## Memory and restart with %d keys (16-byte values)" % nkeys)
        say("")
        os.makedirs(os.path.join(tmp, "r3"), exist_ok=True)
        t = Server("triad", ["--fsync", "no", "--snapshot-wal-bytes", "0"], os.path.join(tmp, "t3"))
        r = Server("redis", ["--save", "", "--appendonly", "no"], os.path.join(tmp, "r3"))
        try:
            t0_rss, r0_rss = t.rss_kb(), r.rss_kb()
            load_keys(t.port, nkeys, 16)
            load_keys(r.port, nkeys, 16)
            t_dbsize = int(t.cli("DBSIZE").strip())
            r_dbsize = int(r.cli("DBSIZE").strip())
            assert t_dbsize == nkeys and r_dbsize == nkeys, (t_dbsize, r_dbsize)
            t_per = (t.rss_kb() - t0_rss) * 1024.0 / nkeys
            r_per = (r.rss_kb() - r0_rss) * 1024.0 / nkeys
            say("| measure | triad | redis | ratio |")
            say("|---|---|---|---|")
            say("| RSS bytes per key | %.1f | %.1f | **%.2f** |" % (t_per, r_per, t_per / r_per))
            # restart: triad from a snapshot plus a WAL tail of 10% more keys;
            # redis from an RDB of the same data
            t.cli("SAVE")
            tail = max(1, nkeys // 10)
            subprocess.run(["redis-benchmark", "-p", str(t.port), "-t", "set", "-n", str(tail),
                            "-r", "1000000000", "-d", "16", "-q"], capture_output=True, timeout=600)
            subprocess.run(["redis-benchmark", "-p", str(r.port), "-t", "set", "-n", str(tail),
                            "-r", "1000000000", "-d", "16", "-q"], capture_output=True, timeout=600)
            r.cli("SAVE")
            t_keys = int(t.cli("DBSIZE").strip())
            r_keys = int(r.cli("DBSIZE").strip())
            t.stop()
            r.stop()
            t_load = t.start()
            r_load = r.start()
            assert int(t.cli("DBSIZE").strip()) == t_keys
            assert int(r.cli("DBSIZE").strip()) == r_keys
            say("| restart to ready, s (triad: snapshot + WAL tail; redis: RDB) | %.2f | %.2f | **%.2f** |" % (
                t_load, r_load, t_load / r_load))
        finally:
            t.stop()
            r.stop()
    finally:
        # a server whose partner failed to start is stopped here too
        for srv in STARTED:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    if opts.write:
        prepend_results("", lines, opts.quick)


def prepend_results(what, lines, quick, versions=()):
    """Put a dated section (`what`: "" or a title like "Leader mode") at the
    top of bench/RESULTS.md, under its fixed introduction."""
    redis = subprocess.run(["redis-server", "--version"], capture_output=True,
                           text=True).stdout.split(" sha")[0]
    head = "# %s %son %s (%d cores), %s%s\n\n" % (
        datetime.date.today().isoformat(), what + ", " if what else "",
        platform.node() or "this machine", os.cpu_count(),
        ", ".join((redis,) + tuple(versions)), " (quick run)" if quick else "")
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    old = open(path).read() if os.path.exists(path) else ""
    intro = "# Benchmark results\n\nNewest first. Ratios are triad / redis-server, same machine, same run (`make bench`).\n\n"
    if old.startswith(intro):
        old = old[len(intro):]
    with open(path, "w") as f:
        f.write(intro + head + "\n".join(lines) + "\n\n" + old)


if __name__ == "__main__":
    main()
