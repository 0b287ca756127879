"""Leader mode on real processes: three `triad server --node-id N --peers ...`
on 127.0.0.1 (ports chosen at run time), real clients, SIGKILL, restarts."""
import threading
import time

import pytest
import redis

import os
import re

from conftest import Server, ephemeral_ports, free_port, syncgate_env

pytestmark = pytest.mark.triad_only("leader mode is triad's")

ELECTION_WAIT_S = 15.0
LOAD_S = 4.0  # the write load runs at most this long


class Cluster:
    def __init__(self, base_dir, n=3, extra_args=(), name="node", env=None):
        self.peer_ports = [free_port() for _ in range(n)]
        self.peers = ",".join("%d=127.0.0.1:%d" % (i + 1, p) for i, p in enumerate(self.peer_ports))
        self.nodes = [Server(base_dir, name="%s%d" % (name, i + 1),
                             extra_args=["--node-id", str(i + 1), "--peers", self.peers,
                                         *extra_args], env=env)
                      for i in range(n)]

    def start(self):
        for s in self.nodes:
            s.start()
        return self

    def stop(self):
        for s in self.nodes:
            s.stop()

    def info(self, s):
        text = s.client().info("replication")
        return text

    def leader(self, timeout_s=ELECTION_WAIT_S, exclude=()):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for s in self.nodes:
                if s in exclude or not s.running():
                    continue
                try:
                    if self.info(s).get("triad_raft_role") == "leader":
                        return s
                except redis.RedisError:
                    pass
            time.sleep(0.05)
        raise AssertionError("no leader within %.0f s:\n%s" % (
            timeout_s, "\n".join(s.log_tail(1500) for s in self.nodes)))

    def settled(self, timeout_s=ELECTION_WAIT_S):
        """The leader, once every running node follows it (so any node can
        forward to it)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            leader = self.leader(timeout_s=max(0.1, deadline - time.monotonic()))
            lid = self.nodes.index(leader) + 1
            try:
                if all(self.info(s).get("triad_leader") == lid for s in self.nodes if s.running()):
                    return leader
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError("the nodes did not settle on one leader")


def wait_for(pred, timeout_s=20.0, what="condition", detail=None):
    """Until pred() is true (bounded); a Redis error counts as not yet.
    detail(), if given, says more when time runs out (e.g. logs)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what + ("\n" + detail() if detail else ""))


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path).start()
    yield c
    c.stop()


def test_three_nodes_elect_one_leader_and_serve_redis_clients(cluster):
    leader = cluster.settled()
    r = leader.client()
    assert r.set("greeting", "hi") is True
    assert r.get("greeting") == b"hi"
    assert r.incr("n") == 1
    assert r.append("greeting", "!") == 3
    assert r.dbsize() == 2
    roles = [cluster.info(s)["triad_raft_role"] for s in cluster.nodes]
    assert sorted(roles) == ["follower", "follower", "leader"]
    terms = {cluster.info(s)["triad_term"] for s in cluster.nodes}
    assert len(terms) == 1
    assert cluster.info(leader)["role"] == "master"


def test_any_node_serves_any_client_by_forwarding_to_the_leader(cluster):
    leader = cluster.settled()
    followers = [s for s in cluster.nodes if s is not leader]
    f = followers[0].client()
    assert f.set("k", "v") is True          # forwarded to the leader
    assert f.get("k") == b"v"                # a linearizable read, through the leader
    assert followers[1].client().get("k") == b"v"
    assert leader.client().get("k") == b"v"
    assert f.incr("n") == 1
    assert followers[1].client().incr("n") == 2
    with pytest.raises(redis.ResponseError) as e:
        f.incr("k")
    assert str(e.value) == "value is not an integer or out of range"
    # connection and server commands run on the node itself
    assert f.ping() is True
    assert cluster.info(followers[0])["triad_raft_role"] == "follower"


def test_every_node_applies_the_same_writes(cluster):
    leader = cluster.leader()
    r = leader.client()
    for i in range(200):
        r.set("k%d" % i, "v%d" % i)
    want = cluster.info(leader)["triad_commit_index"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        applied = [cluster.info(s)["triad_applied_index"] for s in cluster.nodes]
        if all(a >= want for a in applied):
            break
        time.sleep(0.05)
    assert all(a >= want for a in applied), applied
    for s in cluster.nodes:
        assert s.client().info("keyspace")["db0"]["keys"] == 200


def _writer(leader_port_box, acked, stop, errors):
    """SET w<i> <i> against whoever leads; records every acknowledged write."""
    i = 0
    deadline = time.monotonic() + LOAD_S
    while not stop.is_set() and time.monotonic() < deadline:
        port = leader_port_box[0]
        try:
            r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
            while not stop.is_set() and time.monotonic() < deadline:
                if r.set("w%d" % i, str(i)):
                    acked.append(i)
                i += 1
        except (redis.RedisError, OSError) as e:
            errors.append(str(e))
            i += 1
            time.sleep(0.02)


def test_kill_the_leader_under_load_loses_no_acknowledged_write(cluster):
    leader = cluster.leader()
    box = [leader.port]
    acked, errors, stop = [], [], threading.Event()
    t = threading.Thread(target=_writer, args=(box, acked, stop, errors))
    t.start()
    time.sleep(1.0)
    leader.kill()  # SIGKILL, mid-load
    new = cluster.leader(exclude=(leader,))
    assert new is not leader
    box[0] = new.port
    t.join(timeout=LOAD_S + 15)
    stop.set()
    assert not t.is_alive()
    assert len(acked) > 0
    r = new.client()
    missing = [i for i in acked if r.get("w%d" % i) != str(i).encode()]
    assert missing == [], "acknowledged writes lost: %s" % missing[:20]
    # writes flow again under the new leader
    assert r.set("after", "failover") is True
    # the killed node restarts from its own log and catches up
    leader.start()
    want = cluster.info(new)["triad_commit_index"]
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and cluster.info(leader)["triad_applied_index"] < want:
        time.sleep(0.05)
    assert cluster.info(leader)["triad_applied_index"] >= want
    assert cluster.info(leader)["triad_raft_role"] == "follower"


def test_sigterm_stops_each_node_cleanly(cluster):
    cluster.leader().client().set("k", "v")
    for s in cluster.nodes:
        assert s.stop() == 0


def _free_base():
    """A base port with base..base+2 and base+10..base+12 free."""
    import socket
    lo, _ = ephemeral_ports()
    for _ in range(50):
        base = free_port()
        if base + 12 > 65535 or (base < lo <= base + 12):
            continue  # all of them outside the ephemeral range
        ok = True
        for p in (base, base + 1, base + 2, base + 10, base + 11, base + 12):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            return base
    pytest.skip("no free run of ports for the demo")


def test_demo_starts_three_nodes_and_ctrl_c_stops_them(tmp_path):
    import os
    import signal
    import subprocess
    from conftest import TRIAD_BIN
    base = _free_base()
    log = open(tmp_path / "demo.log", "wb")
    p = subprocess.Popen([TRIAD_BIN, "demo", "--port", str(base)], cwd=str(tmp_path),
                         stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + ELECTION_WAIT_S
        leader = None
        while leader is None and time.monotonic() < deadline:
            for port in (base, base + 1, base + 2):
                try:
                    info = redis.Redis(port=port, socket_timeout=1).info("replication")
                    if info.get("triad_raft_role") == "leader":
                        leader = port
                except redis.RedisError:
                    pass
            time.sleep(0.1)
        assert leader is not None, (tmp_path / "demo.log").read_text(errors="replace")
        assert redis.Redis(port=leader).set("greeting", "hello") is True
        text = (tmp_path / "demo.log").read_text(errors="replace")
        assert "a three-node cluster (leader mode)" in text
        for i in (1, 2, 3):
            assert (tmp_path / "data" / ("node%d" % i)).is_dir()
        os.kill(p.pid, signal.SIGINT)
        assert p.wait(timeout=20) == 0
        for port in (base, base + 1, base + 2):
            with pytest.raises(redis.ConnectionError):
                redis.Redis(port=port, socket_timeout=1).ping()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()


def test_triad_exec_applies_a_retried_write_once(cluster):
    leader = cluster.settled()
    follower = next(s for s in cluster.nodes if s is not leader)
    r = leader.client()
    assert r.execute_command("TRIAD.EXEC", 42, 1, "INCR", "counter") == 1
    # the same (client, seq) again, even through another node: the first
    # answer, and the counter moved once
    assert r.execute_command("TRIAD.EXEC", 42, 1, "INCR", "counter") == 1
    assert follower.client().execute_command("TRIAD.EXEC", 42, 1, "INCR", "counter") == 1
    assert r.get("counter") == b"1"
    assert r.execute_command("TRIAD.EXEC", 42, 2, "INCR", "counter") == 2
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("TRIAD.EXEC", 42, 1, "INCR", "counter")
    assert "stale" in str(e.value)
    assert r.get("counter") == b"2"
    for bad, why in [((0, 1, "INCR", "x"), "positive integers"), ((1, "x", "INCR", "x"), "positive integers"),
                     ((1, 1, "GET", "x"), "one write command"), ((1, 1, "INCR"), "one write command")]:
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command("TRIAD.EXEC", *bad)
        assert why in str(e.value)


def test_members_and_leadership_transfer(cluster):
    leader = cluster.settled()
    lid = cluster.nodes.index(leader) + 1
    # a leader needs only a majority: the last link may still be coming up
    deadline = time.monotonic() + 10
    while True:
        members = leader.client().execute_command("TRIAD.MEMBERS")
        if all(m[2] == b"connected" for m in members) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(m[0] for m in members) == [1, 2, 3]
    assert {m[0]: m[1] for m in members}[lid] == b"leader"
    assert all(m[2] == b"connected" for m in members), members
    target = 1 if lid != 1 else 2
    assert leader.client().execute_command("TRIAD.TRANSFER", target) == b"OK"
    new = cluster.leader(exclude=(leader,))
    assert cluster.nodes.index(new) + 1 == target
    assert new.client().set("after", "transfer") is True
    with pytest.raises(redis.ResponseError) as e:
        leader.client().execute_command("TRIAD.TRANSFER", 99)
    assert str(e.value).startswith("NOTLEADER")


def test_a_paused_leader_steps_down_and_nothing_diverges(cluster):
    import os
    import signal
    leader = cluster.leader()
    r = leader.client()
    assert r.set("before", "pause") is True
    os.kill(leader.pid, signal.SIGSTOP)
    try:
        new = cluster.leader(exclude=(leader,))
        assert new.client().set("during", "pause") is True
    finally:
        os.kill(leader.pid, signal.SIGCONT)
    # the old leader hears the new term and follows; one history
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and cluster.info(leader)["triad_raft_role"] != "follower":
        time.sleep(0.05)
    assert cluster.info(leader)["triad_raft_role"] == "follower"
    cluster.settled()
    assert leader.client().get("during") == b"pause"   # forwarded to the new leader
    assert leader.client().get("before") == b"pause"


def test_an_isolated_leader_acknowledges_nothing_and_one_history_remains(tmp_path):
    c = Cluster(tmp_path, extra_args=["--enable-fault-commands", "yes"]).start()
    try:
        old = c.settled()
        oid = c.nodes.index(old) + 1
        others = [s for s in c.nodes if s is not old]
        ids = [c.nodes.index(s) + 1 for s in others]
        assert old.client().set("k", "before") is True
        # a partition the test drives: the leader on one side, the rest on the other
        assert old.client().execute_command("TRIAD.FAULT", "CUT", *ids) == b"OK"
        for s in others:
            assert s.client().execute_command("TRIAD.FAULT", "CUT", oid) == b"OK"
        minority = redis.Redis(port=old.port, socket_timeout=3)
        acked = False
        try:
            acked = minority.set("k", "minority") is True
        except (redis.TimeoutError, redis.ResponseError):
            pass
        assert not acked, "the isolated leader acknowledged a write"
        new = c.leader(exclude=(old,))
        assert new.client().set("k", "majority") is True
        for s in c.nodes:
            assert s.client().execute_command("TRIAD.FAULT", "HEAL") == b"OK"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and c.info(old)["triad_raft_role"] != "follower":
            time.sleep(0.05)
        assert c.info(old)["triad_raft_role"] == "follower"
        c.settled()
        for s in c.nodes:
            assert s.client().get("k") == b"majority"
        want = c.info(new)["triad_commit_index"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and c.info(old)["triad_applied_index"] < want:
            time.sleep(0.05)
        assert c.info(old)["triad_applied_index"] >= want
    finally:
        c.stop()


def test_fault_commands_are_off_by_default(cluster):
    with pytest.raises(redis.ResponseError) as e:
        cluster.leader().client().execute_command("TRIAD.FAULT", "HEAL")
    assert str(e.value) == "TRIAD.FAULT is off (enable-fault-commands no)"


def test_retries_through_triad_exec_apply_each_write_once_across_a_failover(cluster):
    """INCR with TRIAD.EXEC, retried with the same sequence number through
    any node until answered, while the leader is killed: every number is
    answered once, in order, and the counter counts each write once."""
    leader = cluster.leader()
    cid = 7777
    answers = []
    unanswered = []
    retries = [0]
    stop = threading.Event()

    def run():
        seq = 1
        deadline = time.monotonic() + LOAD_S
        # a new sequence number only before the deadline; the one in hand is
        # retried (bounded) until answered, since it may already be applied
        while seq <= 20000 and not stop.is_set() and time.monotonic() < deadline:
            give_up = time.monotonic() + 20
            answered = False
            while not answered and time.monotonic() < give_up:
                for s in cluster.nodes:
                    if not s.running():
                        continue
                    try:
                        v = redis.Redis(port=s.port, socket_timeout=2).execute_command(
                            "TRIAD.EXEC", cid, seq, "INCR", "exactly-once")
                        answers.append(v)
                        answered = True
                        break
                    except (redis.RedisError, OSError):
                        retries[0] += 1
                        time.sleep(0.02)  # same seq, next node
            if not answered:
                unanswered.append(seq)
                return
            seq += 1

    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.3)
    leader.kill()
    t.join(timeout=LOAD_S + 30)
    stop.set()
    assert not t.is_alive()
    new = cluster.leader(exclude=(leader,))
    assert unanswered == []
    assert len(answers) > 0
    assert retries[0] > 0, "the failover was not exercised"
    assert answers == list(range(1, len(answers) + 1))
    assert int(new.client().get("exactly-once")) == len(answers)


def test_shutdown_save_leaves_a_leader_mode_node_that_restarts_with_its_data(tmp_path):
    """SHUTDOWN SAVE on a leader-mode node: its data lives in the Raft log,
    which is durable and compacts itself. The single-node snapshot must not
    run there: it wrote a snapshot of the empty local keyspace into the log's
    directory and removed the log's segments, and the node could not start
    again."""
    c = Cluster(tmp_path, extra_args=["--wal-segment-bytes", "65536"]).start()
    try:
        leader = c.settled()
        with leader.client().pipeline(transaction=False) as p:
            for i in range(300):
                p.set("k%d" % i, "v" * 500)
            p.execute()
        node = next(s for s in c.nodes if s is not leader)
        wait_for(lambda: node.client().get("k299") == b"v" * 500, what="the write everywhere")
        assert len(list(node.dir.glob("wal-*.log"))) > 2
        try:
            node.client().shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closed the connection as it exited
        assert node.wait_exit(10.0) == 0, node.log_tail()
        assert not list(node.dir.glob("snap-*.snap"))
        node.start()
        c.settled()
        assert node.client().mget(["k%d" % i for i in range(300)]) == [b"v" * 500] * 300
    finally:
        c.stop()


def gated_cluster(tmp_path, *extra, **gates):
    """A started three-node cluster that compacts every 100 entries, with
    every forked child held at the fork until the returned gate directory's
    `closed` file is removed (the syncgate shim's fork gate), and any other
    syncgate gates given (name=directory)."""
    gate = tmp_path / "forkgate"
    gate.mkdir()
    (gate / "closed").touch()
    c = Cluster(tmp_path, extra_args=["--raft-snapshot-entries", "100", "--loglevel", "verbose",
                                      *extra],
                env=syncgate_env(TRIAD_TEST_FORK_GATE=gate, **gates)).start()
    return gate, c


def test_log_compaction_serializes_in_a_child_while_the_node_serves(tmp_path):
    """Serializing the state machine for a log compaction takes time in
    proportion to the data (about a second per million keys); on the loop
    it stalled every client and heartbeat, and a compacting leader lost its
    leadership. It runs in a forked child now. The test holds each child at
    the fork (the syncgate shim's fork gate) and checks that the nodes
    serve meanwhile, that a child that dies costs only a later retry, and
    that once released every node compacts its log and restarts whole."""
    gate, c = gated_cluster(tmp_path)
    try:
        leader = c.settled()
        r = leader.client()
        for i in range(150):
            assert r.set("k%d" % i, "v%d" % i) is True
        wait_for(lambda: (gate / "held").exists(), what="a snapshot child held at the gate")
        started = re.compile(r"snapshot at index (\d+) started by pid (\d+)")

        def children():
            return {s: started.findall(s.log_tail(200000)) for s in c.nodes}
        wait_for(lambda: all(children().values()), what="every node to start a snapshot")
        # every node serves while its child is held, and has compacted nothing
        for i in range(150, 200):
            assert r.set("k%d" % i, "v%d" % i) is True
        assert r.get("k0") == b"v0"
        for s in c.nodes:
            assert s.client().ping() is True
            info = c.info(s)
            assert info["triad_snapshots_taken"] == 0
            assert info["triad_snapshot_index"] == 0
            assert info["triad_snapshot_in_progress"] == 1
        # a child that dies: the node logs it, serves on, and tries again later
        victim = next(s for s in c.nodes if s is not leader)
        index, pid = children()[victim][-1]
        os.kill(int(pid), 9)
        wait_for(lambda: "the snapshot at index %s failed" % index in victim.log_tail(200000),
                 what="the failed snapshot to be logged")
        assert victim.client().ping() is True
        (gate / "closed").unlink()
        for i in range(200, 300):
            assert r.set("k%d" % i, "v%d" % i) is True
        wait_for(lambda: all(c.info(s)["triad_snapshots_taken"] >= 1 and
                             c.info(s)["triad_snapshot_index"] >= 100 for s in c.nodes),
                 what="every node to compact its log")
        # the child wrote the snapshot's file too; the persist renamed it
        assert "file written" in victim.log_tail(200000)
        wait_for(lambda: all(c.info(s)["triad_snapshot_in_progress"] == 0 for s in c.nodes),
                 what="no snapshot in progress")
        wait_for(lambda: not any(list(s.dir.glob("raftsnap-*.pre")) for s in c.nodes),
                 what="every prepared snapshot file in place")
        for s in c.nodes:
            assert list(s.dir.glob("raftsnap-*.snap"))
        c.stop()
        c.start()
        leader = c.settled()
        keys = ["k%d" % i for i in range(300)]
        assert leader.client().mget(keys) == [("v%d" % i).encode() for i in range(300)]
        for s in c.nodes:
            assert c.info(s)["triad_snapshot_index"] >= 100
    finally:
        # a child held at the gate would outlive its node for up to a minute
        if (gate / "closed").exists():
            (gate / "closed").unlink()
        c.stop()


SNAP_STARTED = re.compile(r"snapshot at index \d+ started by pid")


def snapshots_timed_out(c, r):
    """Writes through r until every node of gated cluster c has started a
    snapshot child, and no further: every write after that could bring a
    retry, and three failures in a row the inline fallback. Then waits for
    every child to time out. Returns the writes made (keys k0...) and each
    node's timed-out child's pid."""
    n = 0
    while not all(SNAP_STARTED.search(s.log_tail(200000)) for s in c.nodes):
        assert n < 150, "no snapshot started after 150 writes"
        assert r.set("k%d" % n, "v%d" % n) is True
        n += 1
    timed_out = re.compile(r"the snapshot at index (\d+) failed \(pid (\d+): timed out\)")
    wait_for(lambda: all(timed_out.search(s.log_tail(200000)) for s in c.nodes),
             what="every node's held child to time out")
    return n, {s: int(timed_out.search(s.log_tail(200000)).group(2)) for s in c.nodes}


def process_state(pid):
    """The state letter of process pid (R, S, D, Z...), or None if there is
    no such process."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None


def test_a_killed_snapshot_child_that_lingers_is_reaped_without_stalling_the_node(tmp_path):
    """A snapshot child killed (here at its deadline) may take its time to
    die: tearing down a big copy of the server's memory, or stuck in an I/O
    that cannot be interrupted. The node must not wait for it: it serves,
    starts no second child while the first lives, and reaps it once it
    dies. The syncgate shim's kill gate holds the SIGKILL back; the test
    sends it itself, later."""
    killgate = tmp_path / "killgate"
    killgate.mkdir()
    (killgate / "closed").touch()
    gate, c = gated_cluster(tmp_path, "--raft-snapshot-timeout-ms", "2000",
                            TRIAD_TEST_KILL_GATE=killgate)
    try:
        leader = c.settled()
        r = leader.client()
        n, pids = snapshots_timed_out(c, r)
        held = {int(p) for p in (killgate / "held").read_text().split()}
        assert set(pids.values()) <= held
        for s in c.nodes:
            # the node answers while its killed child still lives: it is
            # not waiting for it
            assert s.client(socket_timeout=10).ping() is True
            assert process_state(pids[s]) not in (None, "Z")
            assert c.info(s)["triad_snapshot_in_progress"] == 0
        # past the retry point (a tenth of the snapshot interval), three
        # times: no second child while the first lives, and the waits are
        # not failures (three in a row would make the node compact on the
        # loop instead)
        for i in range(n, n + 36):
            assert r.set("k%d" % i, "v%d" % i) is True
        n += 36
        wait_for(lambda: all("has not exited yet; compaction waits"
                             in s.log_tail(200000) for s in c.nodes),
                 what="every node to put the next compaction off")
        for s in c.nodes:
            assert len(SNAP_STARTED.findall(s.log_tail(200000))) == 1
            assert c.info(s)["triad_snapshots_taken"] == 0  # none on the loop
        # the children die at last (killed before the gates open, so none
        # runs on): each node reaps its own
        for s in c.nodes:
            os.kill(pids[s], 9)
        (killgate / "closed").unlink()
        (gate / "closed").unlink()
        for s in c.nodes:
            wait_for(lambda: process_state(pids[s]) is None and
                     "snapshot child pid %d reaped" % pids[s] in s.log_tail(200000),
                     what="the child reaped")
        for i in range(n, 300):
            assert r.set("k%d" % i, "v%d" % i) is True
        wait_for(lambda: all(c.info(s)["triad_snapshots_taken"] >= 1 for s in c.nodes),
                 what="every node to compact its log")
        keys = ["k%d" % i for i in range(300)]
        assert leader.client().mget(keys) == [("v%d" % i).encode() for i in range(300)]
    finally:
        for g in (killgate, gate):
            if (g / "closed").exists():
                (g / "closed").unlink()
        c.stop()


def test_a_snapshot_child_past_its_deadline_is_killed_and_retried(tmp_path):
    """raft-snapshot-timeout-ms: a child that has not delivered its snapshot
    in time (here held at the fork by the syncgate shim's fork gate) is
    killed; the node logs it and serves on, and once children can run the
    compaction, tried again, lands through a child."""
    gate, c = gated_cluster(tmp_path, "--raft-snapshot-timeout-ms", "2000")
    try:
        leader = c.settled()
        r = leader.client()
        n, pids = snapshots_timed_out(c, r)
        for s in c.nodes:
            # reaped (by the next tick of the timer): no such process any more
            pid = pids[s]
            wait_for(lambda: not os.path.exists("/proc/%d" % pid), what="the child reaped")
            assert s.client().ping() is True
            assert c.info(s)["triad_snapshots_taken"] == 0
        assert r.get("k0") == b"v0"
        assert not any(list(s.dir.glob("raftsnap-*.pre")) for s in c.nodes)
        (gate / "closed").unlink()
        for i in range(n, 300):
            assert r.set("k%d" % i, "v%d" % i) is True
        wait_for(lambda: all(c.info(s)["triad_snapshots_taken"] >= 1 for s in c.nodes),
                 what="every node to compact its log")
        wait_for(lambda: any("file written" in s.log_tail(200000) for s in c.nodes),
                 what="a compaction through a child")
        keys = ["k%d" % i for i in range(300)]
        assert leader.client().mget(keys) == [("v%d" % i).encode() for i in range(300)]
    finally:
        if (gate / "closed").exists():
            (gate / "closed").unlink()
        c.stop()
