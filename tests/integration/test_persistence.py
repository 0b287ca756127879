"""Durability (triad-only): the WAL with --fsync, snapshots, restarts.

An acknowledged write is on disk (default --fsync always): a SIGKILL in the
middle of a load loses nothing that was acknowledged. A clean SIGTERM keeps
everything under any fsync policy, and data survives snapshots.

Skipped on redis; TRIAD_TEST_REDIS_AOF=1 runs them against redis with
appendonly/appendfsync to check the tests themselves.
"""
import os
import threading
import time

import pytest
import redis.exceptions

from conftest import TARGET, durable_args, syncgate_env, wait_until

pytestmark = pytest.mark.durability

WRITERS = 4
WRITES_PER_WRITER_MAX = 200000
ACKS_BEFORE_KILL = 2000
LOAD_TIMEOUT_S = 60.0


def read_all(client, keys, chunk=1000):
    keys = list(keys)
    out = {}
    for i in range(0, len(keys), chunk):
        part = keys[i:i + chunk]
        out.update(zip(part, client.mget(part)))
    return out


def value_for(w, i):
    return b"w%d-i%d-" % (w, i) + b"x" * (i % 97)


@pytest.mark.parametrize("fsync", ["always", "everysec"])
def test_every_acknowledged_write_survives_sigkill(make_server, fsync):
    """Under everysec too: a write is in the kernel's hands before its
    reply leaves (only a machine crash may lose the last second)."""
    s = make_server(extra_args=durable_args(fsync))
    acked = [dict() for _ in range(WRITERS)]
    failures = []
    stop = threading.Event()

    def writer(w):
        client = s.client()
        try:
            for i in range(WRITES_PER_WRITER_MAX):
                if stop.is_set():
                    return
                key = b"crash:%d:%d" % (w, i)
                try:
                    ok = client.set(key, value_for(w, i))
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                    return  # the server died under us: this write was not acknowledged
                if ok is not True:
                    failures.append((key, ok))
                    return
                acked[w][key] = value_for(w, i)
        finally:
            client.close()

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sum(map(len, acked)) >= ACKS_BEFORE_KILL or
                   not any(t.is_alive() for t in threads), timeout_s=LOAD_TIMEOUT_S, interval_s=0.01)
        s.kill()  # SIGKILL while the writers are mid-load
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert failures == []
    all_acked = {}
    for d in acked:
        all_acked.update(d)
    assert len(all_acked) >= ACKS_BEFORE_KILL, "the load did not get going"

    s.start()  # same --dir
    client = s.client()
    got = read_all(client, all_acked)
    missing = [k for k, v in got.items() if v is None]
    wrong = [k for k, v in got.items() if v is not None and v != all_acked[k]]
    assert missing == [], "%d acknowledged keys lost, e.g. %r" % (len(missing), missing[:5])
    assert wrong == [], "wrong values, e.g. %r" % wrong[:5]
    # at most one in-flight, unacknowledged write per writer may also be there
    assert client.dbsize() <= len(all_acked) + WRITERS


def test_everysec_writes_small_batches_on_the_loop_and_syncs_them_after(make_server):
    """Under everysec a reply goes once its write is in the page cache,
    made by the loop itself for small batches (INFO wal_loop_writes); the
    fsync thread's fdatasync follows, also for writes that come after an
    idle spell (nothing unsynced, the thread asleep without a deadline)."""
    if TARGET == "redis":
        pytest.skip("reads triad's INFO persistence wal_* fields")
    s = make_server(extra_args=durable_args("everysec"))
    client = s.client()
    loop_writes = 0
    for burst in range(2):
        if burst > 0:
            time.sleep(1.2)  # idle for longer than the sync interval
        for i in range(200):
            assert client.set(b"es:%d:%d" % (burst, i), b"v" * (i % 50)) is True
        info = client.info("persistence")
        written = info["wal_written_lsn"]
        assert written >= 200 * (burst + 1)
        assert info["wal_loop_writes"] > loop_writes, info
        loop_writes = info["wal_loop_writes"]
        assert wait_until(lambda: client.info("persistence")["wal_synced_lsn"] >= written,
                          timeout_s=10.0), client.info("persistence")


def test_info_shows_how_the_wal_writes(make_server):
    """INFO persistence says whether the WAL's newest segment is written
    with O_DIRECT (wal_direct_io) and from a staging buffer in huge pages
    (wal_huge_pages): 1 where the data directory takes O_DIRECT, and 1
    only if the process really holds huge pages."""
    if TARGET == "redis":
        pytest.skip("reads triad's INFO persistence wal_* fields")
    s = make_server(extra_args=durable_args("always"))
    client = s.client()
    assert client.set("k", "v") is True
    info = client.info("persistence")
    probe = s.dir / "direct-probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
        os.close(fd)
        takes_direct = True
    except OSError:
        takes_direct = False
    finally:
        if probe.exists():
            probe.unlink()
    assert info["wal_direct_io"] == (1 if takes_direct else 0), info
    assert info["wal_huge_pages"] in (0, 1)
    if info["wal_huge_pages"] == 1:
        with open("/proc/%d/smaps_rollup" % s.pid) as f:
            huge_kb = next(int(line.split()[1]) for line in f
                           if line.startswith("AnonHugePages:"))
        assert huge_kb >= 2048


def write_varied_state(client, c_db3):
    """Writes a bit of everything; returns the expected state of db 0."""
    want = {}
    for i in range(500):
        client.set(b"plain:%d" % i, b"v%d" % i)
        want[b"plain:%d" % i] = b"v%d" % i
    client.delete(*[b"plain:%d" % i for i in range(0, 500, 5)])
    for i in range(0, 500, 5):
        del want[b"plain:%d" % i]
    client.set(b"big", b"B" * (1 << 20))
    want[b"big"] = b"B" * (1 << 20)
    for _ in range(77):
        client.incr(b"counter")
    want[b"counter"] = b"77"
    client.set(b"old-name", b"moved")
    client.rename(b"old-name", b"new-name")
    want[b"new-name"] = b"moved"
    client.append(b"appended", b"abc")
    client.append(b"appended", b"def")
    want[b"appended"] = b"abcdef"
    client.set(b"ttl", b"t", ex=1000)
    want[b"ttl"] = b"t"
    client.set(b"gone-soon", b"x", px=100)
    client.set(b"persisted", b"p", ex=1000)
    client.persist(b"persisted")
    want[b"persisted"] = b"p"
    client.incrbyfloat(b"float", 10.5)
    client.incrbyfloat(b"float", 0.1)
    want[b"float"] = b"10.6"
    c_db3.set(b"db3-key", b"in-db3")
    c_db3.set(b"db3-other", b"x")
    c_db3.delete(b"db3-other")
    # a transaction is all or nothing across a restart too
    with client.pipeline(transaction=True) as p:
        p.set(b"tx:a", b"1").set(b"tx:b", b"2").incr(b"counter")
        p.execute()
    want[b"tx:a"], want[b"tx:b"], want[b"counter"] = b"1", b"2", b"78"
    assert wait_until(lambda: client.exists(b"gone-soon") == 0, timeout_s=5.0)
    return want


def check_varied_state(s, want):
    client = s.client()
    db3 = s.client(db=3)
    assert read_all(client, want) == want
    assert client.exists(b"gone-soon") == 0
    # DBSIZE may count a key whose TTL has passed until expiry reaps it, in
    # Redis too; it must get there without the key being read.
    assert wait_until(lambda: client.dbsize() == len(want), timeout_s=10.0), \
        "DBSIZE %d, want %d" % (client.dbsize(), len(want))
    assert 0 < client.ttl(b"ttl") <= 1000
    assert client.ttl(b"persisted") == -1
    assert client.ttl(b"counter") == -1
    assert db3.get(b"db3-key") == b"in-db3"
    assert db3.dbsize() == 1
    assert s.client(db=1).dbsize() == 0


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_clean_sigterm_restart_keeps_everything(make_server, fsync):
    s = make_server(extra_args=durable_args(fsync))
    want = write_varied_state(s.client(), s.client(db=3))
    rc = s.stop()
    assert rc == 0, "SIGTERM should be a clean exit:\n" + s.log_tail()
    s.start()
    check_varied_state(s, want)
    # and once more: a restarted node restarts again
    assert s.stop() == 0
    s.start()
    check_varied_state(s, want)


def test_shutdown_command_then_restart_keeps_everything(make_server):
    s = make_server(extra_args=durable_args("everysec"))
    want = write_varied_state(s.client(), s.client(db=3))
    s.client().shutdown()
    assert s.wait_exit(15.0) == 0
    s.start()
    check_varied_state(s, want)


def test_sigkill_after_acknowledged_writes_keeps_everything(make_server):
    s = make_server(extra_args=durable_args("always"))
    want = write_varied_state(s.client(), s.client(db=3))
    s.kill()
    s.start()
    check_varied_state(s, want)


def snapshot_files(s):
    return sorted(p.name for p in s.dir.rglob("*") if p.is_file() and p.name.startswith("snap")
                  and not p.name.endswith(".tmp"))


def test_data_survives_snapshots_and_restart(make_server, snapshot_args):
    s = make_server(extra_args=durable_args("always") + snapshot_args)
    client = s.client()
    want = {}
    value = b"S" * 1024
    rounds = 6  # ~1.5 MiB of log per round, over the 1 MiB threshold each time
    for rnd in range(rounds):
        with client.pipeline(transaction=False) as p:
            for i in range(1500):
                key = b"snap:%d" % ((rnd * 1000 + i) % 5000)
                v = b"%d:" % rnd + value
                p.set(key, v)
                want[key] = v
            for i in range(0, 5000, 37 + rnd):
                key = b"snap:%d" % i
                p.delete(key)
                want.pop(key, None)
            p.execute()
    if TARGET == "triad":
        assert wait_until(lambda: snapshot_files(s), timeout_s=30.0), \
            "no snapshot file in %s after ~9 MiB of writes" % s.dir
    # writes after the snapshot live only in the log tail
    client.set(b"after-snapshot", b"tail")
    want[b"after-snapshot"] = b"tail"
    client.delete(b"snap:1")
    want.pop(b"snap:1", None)

    s.kill()
    s.start()
    client = s.client()
    assert client.dbsize() == len(want)
    assert read_all(client, want) == want

    # and a clean restart of the recovered node
    assert s.stop() == 0
    s.start()
    assert read_all(s.client(), want) == want


def test_bgsave_inside_a_transaction_does_not_replay_its_writes_twice(make_server):
    """A BGSAVE queued in MULTI runs while the transaction's earlier writes
    are applied but their record has no lsn yet: the snapshot must not hold
    them under an earlier lsn, or a restart would apply them twice."""
    s = make_server(extra_args=durable_args("always"))
    client = s.client()
    with client.pipeline(transaction=True) as p:
        p.incr(b"before")
        p.bgsave()
        p.bgsave()
        p.incr(b"after")
        replies = p.execute(raise_on_error=False)
    assert replies[0] == 1 and replies[3] == 1
    assert replies[1] in (True, b"Background saving started", "Background saving started")
    assert isinstance(replies[2], Exception) and "already in progress" in str(replies[2])
    assert wait_until(lambda: snapshot_files(s) and
                      info_persistence(client)["rdb_bgsave_in_progress"] == 0, timeout_s=30.0)
    assert info_persistence(client)["rdb_last_bgsave_status"] == "ok"
    client.incr(b"later")
    s.kill()
    s.start()
    client = s.client()
    assert client.mget(b"before", b"after", b"later") == [b"1", b"1", b"1"]


def test_flushall_survives_restart(make_server):
    s = make_server(extra_args=durable_args("always"))
    client = s.client()
    client.mset({b"a": b"1", b"b": b"2"})
    client.flushall()
    client.set(b"c", b"3")
    s.kill()
    s.start()
    client = s.client()
    assert client.dbsize() == 1
    assert client.get(b"c") == b"3"


def test_expired_keys_do_not_come_back(make_server):
    s = make_server(extra_args=durable_args("always"))
    client = s.client()
    client.set(b"short", b"x", px=200)
    client.set(b"long", b"y", ex=1000)
    assert wait_until(lambda: client.exists(b"short") == 0, timeout_s=5.0)
    s.kill()
    s.start()
    client = s.client()
    assert client.get(b"short") is None
    assert client.get(b"long") == b"y"
    # a key whose TTL ran out while the server was down is gone after restart
    client.set(b"dies-while-down", b"z", px=300)
    s.stop()
    time.sleep(0.5)  # let its TTL pass while no server runs
    s.start()
    assert s.client().get(b"dies-while-down") is None


def test_repeated_sigkills_under_load_lose_no_acknowledged_write(make_server):
    """Five crash/restart cycles, each killing the server mid-load: every
    restart must recover the log's partial last block and go on appending
    after it, so a write acknowledged in any cycle is there at the end."""
    s = make_server(extra_args=durable_args("always"))
    acked = {}
    lock = threading.Lock()
    for cycle in range(5):
        stop = threading.Event()
        counts = [0] * WRITERS

        def writer(w):
            client = s.client()
            try:
                for i in range(WRITES_PER_WRITER_MAX):
                    if stop.is_set():
                        return
                    key = b"cycle%d:%d:%d" % (cycle, w, i)
                    val = value_for(w, i) * (1 + i % 5)  # records of many sizes
                    try:
                        ok = client.set(key, val)
                    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                            OSError):
                        return
                    if ok is True:
                        with lock:
                            acked[key] = val
                        counts[w] += 1
            finally:
                client.close()

        threads = [threading.Thread(target=writer, args=(w,), daemon=True)
                   for w in range(WRITERS)]
        for t in threads:
            t.start()
        try:
            wait_until(lambda: sum(counts) >= 500 or not any(t.is_alive() for t in threads),
                       timeout_s=LOAD_TIMEOUT_S, interval_s=0.01)
            s.kill()
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert sum(counts) >= 500, "the load did not get going in cycle %d" % cycle
        s.start()
        got = read_all(s.client(), acked)
        missing = [k for k, v in got.items() if v != acked[k]]
        assert missing == [], "cycle %d: %d acknowledged keys lost or wrong, e.g. %r" % (
            cycle, len(missing), missing[:5])


def info_persistence(client):
    return client.info("persistence")


def test_snapshots_wait_for_wal_growth_relative_to_the_last_snapshot(make_server):
    """snapshot-wal-percentage: a snapshot rewrites the whole dataset, so the
    next one waits until the WAL grew by that share of the last snapshot's
    size, not merely by snapshot-wal-bytes."""
    s = make_server(extra_args=durable_args("no") + [
        "--snapshot-wal-bytes", "1mb", "--snapshot-wal-percentage", "200"])
    client = s.client()
    value = b"v" * 1000

    def write_mb(mb, tag):
        with client.pipeline(transaction=False) as p:
            for i in range(mb * 1000):
                p.set(b"pct:%d" % (i % 3000), b"%s:" % tag + value)
            p.execute()

    write_mb(3, b"a")
    # Past 1 MB a background snapshot starts on the next cron tick (none
    # before it), which may come after the writes are all answered: SAVE
    # gets "already in progress" until that one is done.
    def save():
        try:
            return client.save() is True
        except redis.exceptions.ResponseError as e:
            assert "Background save already in progress" in str(e)
            return False
    assert wait_until(save, timeout_s=30.0)
    first = info_persistence(client)
    assert first["snapshot_bytes"] > 3000000
    lsn = first["snapshot_lsn"]
    # 2 MB more: past snapshot-wal-bytes, short of 200% of ~3 MB
    write_mb(2, b"b")
    time.sleep(0.5)  # several cron ticks, each of which could start one
    info = info_persistence(client)
    assert info["wal_bytes_since_snapshot"] > 1024 * 1024
    assert info["snapshot_lsn"] == lsn and info["rdb_bgsave_in_progress"] == 0
    # 5 MB more: past 200% of the snapshot, so one starts by itself
    write_mb(5, b"c")
    assert wait_until(lambda: info_persistence(client)["snapshot_lsn"] > lsn, timeout_s=30.0), \
        "no snapshot after the WAL outgrew 200%% of the last one:\n%s" % s.log_tail()


def _data_files(s):
    return (sorted(p.name for p in s.dir.glob("snap-*.snap")),
            sorted(p.name for p in s.dir.glob("wal-*.log")))


@pytest.mark.triad_only("the files are triad's WAL segments and snapshots")
def test_clients_are_served_while_the_files_a_snapshot_freed_are_deleted(make_server, tmp_path):
    """Deleting a 64 MiB segment or a big snapshot takes tens of milliseconds,
    so the server deletes the files a snapshot made obsolete on a thread of
    its own. With every unlink held back (the syncgate shim), a snapshot
    still completes and clients are still answered; the files go once
    unlink may proceed, and a restart finds every key."""
    gate = tmp_path / "unlink-gate"
    gate.mkdir()
    s = make_server(extra_args=durable_args("always") + [
        "--wal-segment-bytes", "65536", "--snapshot-wal-bytes", "0"],
        env=syncgate_env(TRIAD_TEST_UNLINK_GATE=gate))
    client = s.client(socket_timeout=5)
    value = b"v" * 1000

    def fill(tag):
        with client.pipeline(transaction=False) as p:
            for i in range(300):
                p.set(b"%s:%d" % (tag, i), value)
            p.execute()

    fill(b"a")
    assert client.save() is True
    # The SAVE's own clean-up leaves only the current segment.
    assert wait_until(lambda: len(_data_files(s)[1]) == 1, timeout_s=30.0), _data_files(s)
    fill(b"b")
    old_snaps, old_segs = _data_files(s)
    assert len(old_snaps) == 1 and len(old_segs) > 3, (old_snaps, old_segs)

    (gate / "closed").touch()
    try:
        assert client.bgsave()
        assert wait_until(lambda: (gate / "held").exists(), timeout_s=30.0), \
            "the snapshot's clean-up never reached unlink:\n%s" % s.log_tail()
        # The deletion is held; the loop is not waiting for it.
        assert client.ping() is True
        assert client.set(b"during", b"the delete") is True
        assert client.get(b"during") == b"the delete"
        info = info_persistence(client)
        assert info["rdb_bgsave_in_progress"] == 0 and info["rdb_last_bgsave_status"] == "ok"
        snaps, segs = _data_files(s)
        assert set(old_snaps) <= set(snaps) and set(old_segs) <= set(segs)
    finally:
        (gate / "closed").unlink()
    # Every segment the snapshot covers goes (all but the one current at
    # BGSAVE), and the old snapshot.
    assert wait_until(lambda: set(old_snaps + old_segs[:-1]).isdisjoint(sum(_data_files(s), [])),
                      timeout_s=30.0), "old files are still there: %s" % (_data_files(s),)

    assert s.stop() == 0
    s.start()
    client = s.client()
    assert client.get(b"during") == b"the delete"
    assert client.mget([b"a:%d" % i for i in range(300)]) == [value] * 300
    assert client.mget([b"b:%d" % i for i in range(300)]) == [value] * 300
