"""Leaderless mode on real processes: `triad server --mode leaderless` nodes
on 127.0.0.1 (ports chosen at run time), redis-py and redis-cli as clients,
SIGKILL and restarts. Gossip, anti-entropy and request timeouts are set
short so that each test runs in seconds."""
import subprocess
import threading
import time

import pytest
import redis

from conftest import REDIS_CLI_BIN, Err, Server, free_port
from test_cluster import Cluster, wait_for

pytestmark = pytest.mark.triad_only("leaderless mode is triad's")

FAST = ["--gossip-interval-ms", "100", "--anti-entropy-interval-ms", "500",
        "--request-timeout-ms", "1000"]
SETTLE_S = 20.0


class LLCluster(Cluster):
    def __init__(self, base_dir, n=3, extra_args=()):
        super().__init__(base_dir, n, ["--mode", "leaderless", *FAST, *extra_args], name="ll")

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def running(self):
        return [s for s in self.nodes if s.running()]

    def info(self, s):
        return s.client().info("leaderless")

    def peer_view(self, s):
        """{peer id: (alive, connected)} as node s sees them."""
        info = self.info(s)
        return {v["id"]: (v["alive"], v["connected"]) for k, v in info.items()
                if k.startswith("peer") and isinstance(v, dict)}

    def settled(self):
        """Every running node has the whole ring, sees exactly the running
        nodes alive and is connected to each (gossip can say a node is
        alive through a third one before the two are connected)."""
        for s in self.running():
            if self.info(s)["ring_members"] != len(self.nodes):
                return False
            peers = self.peer_view(s)
            for j, t in enumerate(self.nodes):
                if t is s:
                    continue
                alive, connected = peers.get(j + 1, (None, None))
                if t.running() and (alive, connected) != (1, 1):
                    return False
                if not t.running() and alive != 0:
                    return False
        return True

    def wait_settled(self, timeout_s=SETTLE_S):
        wait_for(self.settled, timeout_s, "the nodes to agree on who is alive",
                 lambda: "\n".join(s.log_tail(1500) for s in self.nodes))


def replicas(s, key):
    """The key's replicas (node ids, preference order) as node s sees them."""
    return [int(x) for x in s.client().execute_command("TRIAD.REPLICAS", key)]


def readonly_get(s, key):
    c = s.resp()
    try:
        assert c.cmd("READONLY") == "OK"
        return c.cmd("GET", key)
    finally:
        c.close()


@pytest.fixture
def cluster(tmp_path):
    c = LLCluster(tmp_path).start()
    try:
        c.wait_settled()
        yield c
    finally:
        c.stop()


def test_set_and_get_through_every_node_in_resp2_and_resp3(cluster):
    for i, s in enumerate(cluster.nodes):
        assert s.client().set("k%d" % i, "v%d" % i) is True
    for s in cluster.nodes:
        r = s.client()
        for i in range(len(cluster.nodes)):
            assert r.get("k%d" % i) == ("v%d" % i).encode()
        assert r.get("missing") is None
        assert r.mget("k0", "missing", "k2") == [b"v0", None, b"v2"]
        assert r.exists("k0", "k1", "missing", "k0") == 3
    c3 = cluster.node(2).resp()
    try:
        assert isinstance(c3.cmd("HELLO", "3"), dict)
        assert c3.cmd("GET", "k1") == b"v1"
        assert c3.cmd("GET", "missing") is None
        assert c3.cmd("MSET", "a", "1", "b", "2", "a", "3") == "OK"
        assert c3.cmd("MGET", "a", "b", "nope") == [b"3", b"2", None]
        assert c3.cmd("TRIAD.GETALL", "nope")[1:] == []
    finally:
        c3.close()
    # one connection's writes in sequence supersede each other: no siblings
    r = cluster.node(1).client()
    for v in ("x1", "x2", "x3"):
        assert r.set("seq", v) is True
    for s in cluster.nodes:
        wait_for(lambda: s.client().execute_command("TRIAD.GETALL", "seq")[1:] == [b"x3"],
                 10, "one value of seq on node %s" % s.name)


def test_del_then_get_is_nil_through_every_node(cluster):
    r = cluster.node(1).client()
    assert r.set("gone", "soon") is True
    assert r.set("other", "stays") is True
    assert cluster.node(2).client().delete("gone", "gone", "never") == 1
    for s in cluster.nodes:
        assert s.client().get("gone") is None
        assert s.client().exists("gone") == 0
        assert s.client().get("other") == b"stays"
    assert cluster.node(3).client().delete("gone") == 0
    # the tombstone is a sibling GETALL shows as nil until purged
    ga = cluster.node(3).client().execute_command("TRIAD.GETALL", "gone")
    assert ga[1:] == [None]
    # and READONLY copies agree once the delete has spread
    for s in cluster.nodes:
        wait_for(lambda: readonly_get(s, "gone") is None, 10, "the delete on %s" % s.name)


def test_tombstones_are_collected_from_every_replica_after_their_grace(tmp_path):
    """With a 1 s grace, deleted keys vanish from every node's own store
    (INFO keyspace) without anyone reading them again; a key that was not
    deleted stays."""
    c = LLCluster(tmp_path, extra_args=["--tombstone-grace-ms", "1000"]).start()
    try:
        c.wait_settled()
        r = c.node(1).client()
        for i in range(20):
            assert r.set("t%d" % i, "v") is True
        assert r.set("kept", "v") is True
        assert r.delete(*["t%d" % i for i in range(20)]) == 20

        def local_keys(s):
            return s.client().info("keyspace").get("db0", {}).get("keys", 0)
        # the tombstones are there on every node at first ...
        for s in c.nodes:
            wait_for(lambda: local_keys(s) == 21, 10, "the deletes on %s" % s.name)
        # ... and gone once the grace has passed (anti-entropy's sweep reads them)
        for s in c.nodes:
            wait_for(lambda: local_keys(s) == 1, 30, "the tombstones to be collected on " + s.name)
        assert sum(c.info(s)["tombstones_purged"] for s in c.nodes) == 60
        for s in c.nodes:
            assert readonly_get(s, "kept") == b"v"
            assert s.client().get("t3") is None
    finally:
        c.stop()


def test_unsupported_commands_and_options_get_clear_errors(cluster):
    c = cluster.node(1).resp()
    try:
        assert c.cmd("INCR", "n") == Err("ERR 'INCR' is not supported in leaderless mode")
        assert c.cmd("keys", "*") == Err("ERR 'keys' is not supported in leaderless mode")
        assert c.cmd("MULTI") == Err("ERR 'MULTI' is not supported in leaderless mode")
        assert c.cmd("FLUSHALL") == Err("ERR 'FLUSHALL' is not supported in leaderless mode")
        assert c.cmd("SET", "k", "v", "EX", "10") == \
            Err("ERR SET options are not supported in leaderless mode")
        assert c.cmd("GET") == Err("ERR wrong number of arguments for 'get' command")
        assert c.cmd("MSET", "a") == Err("ERR wrong number of arguments for 'mset' command")
        assert c.cmd("SELECT", "1") == Err("ERR leaderless mode has database 0 only")
        assert c.cmd("SELECT", "0") == "OK"
        assert c.cmd("NOSUCHCOMMAND").startswith("ERR unknown command")
        # a value that could not travel to the other replicas in one frame
        big = (32 << 20) + 1
        assert c.cmd("SET", "big", b"x" * big) == Err(
            "ERR a value of %d bytes is over leaderless mode's limit of %d bytes"
            % (big, 32 << 20))
        # connection and server commands still work
        assert c.cmd("PING") == "PONG"
        assert c.cmd("ECHO", "hi") == b"hi"
        assert len(c.cmd("TIME")) == 2
        assert c.cmd("CONFIG", "GET", "replicas") == [b"replicas", b"3"]
        assert c.cmd("CONFIG", "GET", "mode") == [b"mode", b"leaderless"]
        assert c.cmd("SET", "k", "v") == "OK"
        assert c.cmd("GET", "k") == b"v"
    finally:
        c.close()


def test_a_garbage_context_is_refused_and_the_connection_keeps_working(cluster):
    c = cluster.node(2).resp()
    try:
        got = c.cmd("TRIAD.PUT", "k", "this is not a context", "v")
        assert isinstance(got, Err) and got.startswith("ERR invalid context: "), got
        got = c.cmd("TRIAD.PUT", "k", "\x00\xff", "v")
        assert isinstance(got, Err) and got.startswith("ERR invalid context: "), got
        assert c.cmd("PING") == "PONG"
        assert c.cmd("SET", "k", "fine") == "OK"
        assert c.cmd("GET", "k") == b"fine"
        assert c.cmd("TRIAD.PUT", "k") == Err("ERR wrong number of arguments for 'triad.put' command")
    finally:
        c.close()


def test_concurrent_puts_from_one_context_are_siblings_until_a_merged_put(cluster):
    a = cluster.node(1).client()
    b = cluster.node(2).client()
    assert a.set("doc", "v0") is True
    wait_for(lambda: b.execute_command("TRIAD.GETALL", "doc")[1:] == [b"v0"], 10, "v0 on node 2")
    ctx_a = a.execute_command("TRIAD.GETALL", "doc")[0]
    ctx_b = b.execute_command("TRIAD.GETALL", "doc")[0]
    assert ctx_a == ctx_b
    assert a.execute_command("TRIAD.PUT", "doc", ctx_a, "from-a") == b"OK"
    assert b.execute_command("TRIAD.PUT", "doc", ctx_b, "from-b") == b"OK"

    def both_everywhere():
        for s in cluster.nodes:
            vals = s.client().execute_command("TRIAD.GETALL", "doc")[1:]
            if sorted(vals) != [b"from-a", b"from-b"]:
                return False
        return True
    wait_for(both_everywhere, 10, "two siblings on every node")
    # GET answers with the same one of them everywhere: GETALL's first
    winners = {s.client().get("doc") for s in cluster.nodes}
    assert len(winners) == 1, winners
    first = cluster.node(3).client().execute_command("TRIAD.GETALL", "doc")
    assert first[1] in winners
    # a write with the merged context resolves them
    assert cluster.node(3).client().execute_command("TRIAD.PUT", "doc", first[0],
                                                    "merged") == b"OK"
    for s in cluster.nodes:
        wait_for(lambda: s.client().execute_command("TRIAD.GETALL", "doc")[1:] == [b"merged"],
                 10, "one value on %s" % s.name)
        assert s.client().get("doc") == b"merged"


def test_consistency_levels_per_connection(cluster):
    c = cluster.node(1).resp()
    try:
        assert c.cmd("TRIAD.CONSISTENCY") == [b"R", b"2", b"W", b"2"]
        assert c.cmd("TRIAD.CONSISTENCY", "R", "ONE", "W", "ALL") == "OK"
        assert c.cmd("TRIAD.CONSISTENCY") == [b"R", b"ONE", b"W", b"ALL"]
        assert c.cmd("TRIAD.CONSISTENCY", "W", "3") == "OK"
        assert c.cmd("TRIAD.CONSISTENCY") == [b"R", b"ONE", b"W", b"3"]
        assert c.cmd("TRIAD.CONSISTENCY", "W", "4") == \
            Err("ERR invalid W level: use ONE, TWO, THREE, QUORUM, ALL or a number from 1 to 3 (N)")
        assert c.cmd("TRIAD.CONSISTENCY", "X", "ONE").startswith("ERR syntax error")
        assert c.cmd("SET", "lvl", "all") == "OK"  # all three nodes are up
        assert c.cmd("RESET") == "RESET"
        assert c.cmd("TRIAD.CONSISTENCY") == [b"R", b"2", b"W", b"2"]
    finally:
        c.close()


def test_info_reports_the_leaderless_fields(cluster):
    r = cluster.node(1).client()
    r.set("i", "1")
    wait_for(lambda: cluster.info(cluster.node(1))["ae_exchanges"] > 0, 10,
             "an anti-entropy exchange")
    info = cluster.info(cluster.node(1))
    assert info["mode"] == "leaderless"
    assert info["n"] == 3 and info["r"] == 2 and info["w"] == 2
    assert info["sloppy_quorum"] == 1
    assert info["ring_members"] == 3
    assert info["ring_ownership"] == pytest.approx(1.0)  # N = 3 of 3 nodes: all of it
    for field in ("hints_pending", "hints_delivered", "hints_refused", "read_repairs",
                  "ae_exchanges", "ae_keys_repaired", "ae_bytes_sent", "tombstones_purged"):
        assert isinstance(info[field], int), field
    peers = sorted((v for k, v in info.items() if k.startswith("peer")), key=lambda p: p["id"])
    assert [p["id"] for p in peers] == [2, 3]
    for p in peers:
        assert p["status"] == "normal"
        assert p["alive"] == 1
        assert p["addr"] == "127.0.0.1:%d" % cluster.peer_ports[p["id"] - 1]
        assert isinstance(p["phi"], float)
    # default INFO includes the section; keyspace shows the objects
    full = r.info()
    assert full["mode"] == "leaderless"


def test_redis_cli_works_against_a_leaderless_node(cluster):
    port = str(cluster.node(2).port)

    def cli(*args):
        out = subprocess.run([REDIS_CLI_BIN, "-h", "127.0.0.1", "-p", port, *args],
                             capture_output=True, timeout=10)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode().strip()
    assert cli("SET", "cli", "hello") == "OK"
    assert cli("GET", "cli") == "hello"
    assert cli("EXISTS", "cli") == "1"
    assert "mode:leaderless" in cli("INFO", "leaderless")
    lines = cli("TRIAD.GETALL", "cli").splitlines()
    assert lines[1] == "hello"
    # the context echoes back through redis-cli as it is
    assert cli("TRIAD.PUT", "cli", lines[0], "again") == "OK"
    assert cli("GET", "cli") == "again"
    assert cli("INCR", "x") == "ERR 'INCR' is not supported in leaderless mode"


def test_sloppy_quorum_off_fails_w_all_but_quorum_succeeds(tmp_path):
    c = LLCluster(tmp_path, extra_args=["--sloppy-quorum", "no"]).start()
    try:
        c.wait_settled()
        c.node(3).kill()
        c.wait_settled()
        conn = c.node(1).resp()
        try:
            assert conn.cmd("SET", "q", "quorum") == "OK"
            assert conn.cmd("TRIAD.CONSISTENCY", "W", "ALL") == "OK"
            got = conn.cmd("SET", "q", "all")
            assert isinstance(got, Err), got
            assert got.msg.split()[0] in ("UNAVAILABLE", "NOREPLICAS"), got
            assert conn.cmd("TRIAD.CONSISTENCY", "W", "QUORUM") == "OK"
            for i in range(20):
                assert conn.cmd("SET", "q%d" % i, "v") == "OK"
        finally:
            conn.close()
    finally:
        c.stop()


def test_hinted_handoff_and_anti_entropy_resync_a_restarted_node(tmp_path):
    # four nodes, N = 3: a key whose replica is down has a live fallback
    c = LLCluster(tmp_path, n=4).start()
    try:
        c.wait_settled()
        victim = c.node(4)
        victim.kill()
        c.wait_settled()
        writers = [c.node(i).client() for i in (1, 2, 3)]
        keys = ["h%d" % i for i in range(120)]
        for i, k in enumerate(keys):
            assert writers[i % 3].set(k, "v1-%d" % i) is True  # QUORUM, all succeed
        for i, k in enumerate(keys[:40]):
            assert writers[(i + 1) % 3].set(k, "v2-%d" % i) is True
        latest = {k: ("v2-%d" % i if i < 40 else "v1-%d" % i).encode()
                  for i, k in enumerate(keys)}
        held = sum(c.info(s)["hints_pending"] for s in c.running())
        assert held > 0, "no hints were kept for the node that is down"
        victim.start()
        c.wait_settled()
        owners = {k: replicas(c.node(1), k) for k in keys}
        assert any(4 in o for o in owners.values())

        def in_sync():
            for k, nodes in owners.items():
                for nid in nodes:
                    if readonly_get(c.node(nid), k) != latest[k]:
                        return False
            return True
        wait_for(in_sync, 30, "every replica to hold the latest value",
                 lambda: "\n".join("%s: %s" % (s.name, c.info(s)) for s in c.running()))
        # the hints go to their owner once it is back (each checked by the
        # owner's ack, then dropped), whatever anti-entropy did first
        wait_for(lambda: sum(c.info(s)["hints_pending"] for s in c.nodes) == 0, 20,
                 "every hint handed over")
        delivered = sum(c.info(s)["hints_delivered"] for s in c.nodes)
        assert delivered >= held > 0, (delivered, held)
    finally:
        c.stop()


def test_kill_during_a_write_load_loses_no_acknowledged_write(cluster):
    acked, errors, stop = [], [], threading.Event()

    def writer(node_index):
        s = cluster.nodes[node_index]
        i = 0
        deadline = time.monotonic() + 4.0
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                r = redis.Redis(host="127.0.0.1", port=s.port, socket_timeout=3)
                while not stop.is_set() and time.monotonic() < deadline:
                    key = "load-%d-%d" % (node_index, i)
                    if r.set(key, str(i)):
                        acked.append((key, str(i).encode()))
                    i += 1
            except (redis.RedisError, OSError) as e:
                errors.append(str(e))
                i += 1
                time.sleep(0.05)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    actor = cluster.info(cluster.node(2))["actor"]
    cluster.node(2).kill()  # SIGKILL mid-load
    for t in threads:
        t.join(timeout=20)
    stop.set()
    assert not any(t.is_alive() for t in threads)
    assert len(acked) > 50
    cluster.node(2).start()
    cluster.wait_settled()
    # after a crash the node makes its versions under a new actor id
    assert cluster.info(cluster.node(2))["actor"] != actor
    # W = 2 and R = 2 of N = 3: a quorum read through any node sees each
    for s in cluster.nodes:
        r = s.client()
        missing = []
        for i in range(0, len(acked), 200):
            batch = acked[i:i + 200]
            got = r.mget([k for k, _ in batch])
            missing += [k for (k, v), g in zip(batch, got) if g != v]
        assert missing == [], "%s lost acknowledged writes: %s" % (s.name, missing[:10])


@pytest.mark.parametrize("join", [False, True], ids=["normal", "join"])
def test_a_node_that_knows_one_seed_joins_through_gossip(tmp_path, join):
    """Node 4 lists only itself and seed 1, which has never heard of it:
    the seed accepts it, gossip spreads its address, the others dial it,
    and it takes its share of the ring and its data: by anti-entropy once
    it owns its ranges, or, with --join, by pulling them first."""
    c = LLCluster(tmp_path, extra_args=["--vnodes", "8"]).start()
    new = None
    try:
        c.wait_settled()
        r = c.node(2).client()
        keys = ["j%d" % i for i in range(60)]
        for k in keys:
            assert r.set(k, k.upper()) is True
        port4 = free_port()
        new = Server(tmp_path, name="ll4",
                     extra_args=["--mode", "leaderless", "--node-id", "4", "--peers",
                                 "1=127.0.0.1:%d,4=127.0.0.1:%d" % (c.peer_ports[0], port4),
                                 "--vnodes", "8", "--join", "yes" if join else "no",
                                 *FAST]).start()
        c.nodes.append(new)
        c.peer_ports.append(port4)
        c.wait_settled()
        info = c.info(new)
        assert info["ring_members"] == 4
        assert 0 < info["ring_ownership"] < 1
        # its own copies of the keys it now replicates arrive (anti-entropy,
        # before any read could repair them)
        mine = [k for k in keys if 4 in replicas(new, k)]
        assert mine
        wait_for(lambda: all(readonly_get(new, k) == k.upper().encode() for k in mine), 40,
                 "node 4's copies of its %d keys" % len(mine))
        if join:
            assert info["status"] == "normal"
            assert info["join_keys_received"] >= len(mine)
        else:
            assert sum(c.info(s)["ae_keys_repaired"] for s in c.nodes) > 0
        # it coordinates reads and writes
        r4 = new.client()
        assert r4.mget(keys) == [k.upper().encode() for k in keys]
        assert r4.set("from-4", "hi") is True
        assert c.node(3).client().get("from-4") == b"hi"
    finally:
        c.stop()


def test_a_clean_restart_keeps_the_actor_id_and_the_data(cluster):
    s = cluster.node(3)
    r = s.client()
    for i in range(30):
        assert r.set("c%d" % i, "v%d" % i) is True
    actor = cluster.info(s)["actor"]
    assert s.stop() == 0  # SIGTERM: a clean shutdown
    s.start()
    cluster.wait_settled()
    assert cluster.info(s)["actor"] == actor
    for i in range(30):
        assert readonly_get(s, "c%d" % i) == ("v%d" % i).encode()
    # its next write continues the same actor's versions: one sibling
    assert s.client().set("c0", "again") is True
    assert s.client().execute_command("TRIAD.GETALL", "c0")[1:] == [b"again"]



def test_a_node_joins_and_another_leaves_under_load_without_losing_a_write(tmp_path):
    """Writers keep writing new keys at QUORUM through nodes 1 and 3 while
    node 4 joins (--join: it pulls its ranges first) and node 2 leaves
    (TRIAD.LEAVE: it hands its keys off, then is stopped). Every write
    acknowledged meanwhile is then read back at R=2, and each of its
    replicas in the final ring holds it."""
    c = LLCluster(tmp_path, extra_args=["--vnodes", "8"]).start()
    stop = threading.Event()
    acked, errors = [], []

    def writer(w, port):
        r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
        for i in range(20000):  # bounded; stopped long before
            if stop.is_set():
                return
            k, v = "w%d:%d" % (w, i), "v%d" % i
            try:
                if r.set(k, v) is True:
                    acked.append((k, v.encode()))
            except redis.RedisError as e:
                errors.append(str(e))
                time.sleep(0.05)

    try:
        c.wait_settled()
        threads = [threading.Thread(target=writer, args=(w, c.node(1 if w % 2 else 3).port))
                   for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        port4 = free_port()
        new = Server(tmp_path, name="ll4",
                     extra_args=["--mode", "leaderless", "--node-id", "4", "--peers",
                                 "%s,4=127.0.0.1:%d" % (c.peers, port4), "--vnodes", "8",
                                 "--join", "yes", *FAST]).start()
        c.nodes.append(new)
        c.peer_ports.append(port4)
        wait_for(lambda: c.info(new)["status"] == "normal", 40, "node 4 to finish joining")
        wait_for(lambda: all(c.info(s)["ring_members"] == 4 for s in c.running()), 20,
                 "every node to have node 4 in its ring")
        time.sleep(0.5)
        leaving = c.node(2)
        assert leaving.client().execute_command("TRIAD.LEAVE") == b"OK"
        wait_for(lambda: c.info(leaving)["status"] == "left", 60, "node 2 to hand off and leave")
        wait_for(lambda: all(c.info(s)["ring_members"] == 3 for s in (c.node(1), c.node(3), new)),
                 20, "the others to drop node 2 from their rings",
                 lambda: "\n".join("%s: %r" % (s.name, c.info(s)) for s in c.running()))
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert leaving.stop() == 0
        # a node that left never comes back on its old data
        with pytest.raises(RuntimeError, match="left the ring"):
            leaving.start()
        assert len(acked) > 200, (len(acked), errors[:5])
        # every acknowledged write reads back at R=2 ...
        r = c.node(1).client()
        for i in range(0, len(acked), 200):
            batch = acked[i:i + 200]
            got = r.mget([k for k, _ in batch])
            missing = [k for (k, v), g in zip(batch, got) if g != v]
            assert missing == [], "lost acknowledged writes: %s" % missing[:10]
        # ... and each of its replicas holds it (anti-entropy finishes what
        # the writes, the pulls and the handoff did not)
        live = {1: c.node(1), 3: c.node(3), 4: new}

        def all_replicas_hold():
            for k, v in acked[::7]:
                for nid in replicas(new, k):
                    if readonly_get(live[nid], k) != v:
                        return False
            return True
        wait_for(all_replicas_hold, 60, "every replica to hold every sampled write")
    finally:
        stop.set()
        c.stop()
