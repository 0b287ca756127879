"""Leader mode as clients see it: acknowledgement levels, WAIT, follower
reads with session floors (READONLY, TRIAD.TOKEN / TRIAD.AFTER), ROLE and
INFO replication in Redis's shapes, SENTINEL for redis-py's Sentinel, and
--redirect for redis-cli -c. Real processes on 127.0.0.1."""
import subprocess
import threading
import time

import pytest
import redis
from redis.sentinel import Sentinel

from conftest import REDIS_CLI_BIN, Err
from test_cluster import Cluster, wait_for

pytestmark = pytest.mark.triad_only("leader mode is triad's")


@pytest.fixture
def fcluster(tmp_path):
    """A cluster whose nodes take TRIAD.FAULT (partitions the test drives)."""
    c = Cluster(tmp_path, extra_args=["--enable-fault-commands", "yes"]).start()
    yield c
    for s in c.nodes:
        if s.running():
            try:
                s.client().execute_command("TRIAD.FAULT", "HEAL")
            except redis.RedisError:
                pass
    c.stop()


def node_id(cluster, s):
    return cluster.nodes.index(s) + 1


def cut(cluster, s, others):
    """s drops everything to and from `others` (one side of a partition)."""
    ids = [node_id(cluster, o) for o in others]
    assert s.client().execute_command("TRIAD.FAULT", "CUT", *ids) == b"OK"


def heal(cluster):
    for s in cluster.nodes:
        assert s.client().execute_command("TRIAD.FAULT", "HEAL") == b"OK"


def test_consistency_levels_are_per_connection_and_validated(fcluster):
    leader = fcluster.settled()
    r = leader.client()
    assert r.execute_command("TRIAD.CONSISTENCY") == [b"W", b"QUORUM"]
    assert r.execute_command("TRIAD.CONSISTENCY", "W", "one") == b"OK"
    assert r.execute_command("TRIAD.CONSISTENCY") == [b"W", b"ONE"]
    assert leader.client().execute_command("TRIAD.CONSISTENCY") == [b"W", b"QUORUM"]
    for bad, msg in ((("W", "THREE"), "invalid W level: use ONE, TWO, QUORUM or ALL"),
                     (("W",), "syntax error"),
                     (("X", "ONE"), "syntax error")):
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command("TRIAD.CONSISTENCY", *bad)
        assert str(e.value) == msg
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("TRIAD.CONSISTENCY", "R", "ONE")
    assert "no read level" in str(e.value)
    r.execute_command("RESET")
    assert r.execute_command("TRIAD.CONSISTENCY") == [b"W", b"QUORUM"]


def test_w_one_answers_from_the_leaders_disk_alone_and_quorum_does_not(fcluster):
    leader = fcluster.settled()
    followers = [s for s in fcluster.nodes if s is not leader]
    one = leader.client(socket_timeout=5)
    assert one.execute_command("TRIAD.CONSISTENCY", "W", "ONE") == b"OK"
    quorum = leader.client(socket_timeout=1)
    assert one.set("warm", "up") is True
    cut(fcluster, leader, followers)
    try:
        # nobody else can have it: only W ONE may answer
        assert one.set("async", "1") is True
        with pytest.raises(redis.TimeoutError):
            quorum.set("sync", "1")
    finally:
        heal(fcluster)
    # afterwards there is one history: each write is everywhere or nowhere
    new = fcluster.settled()
    wait_for(lambda: len({fcluster.info(s)["triad_applied_index"] for s in fcluster.nodes}) == 1,
             what="every node to apply the same log")
    for s in fcluster.nodes:
        rs = s.client()
        rs.execute_command("READONLY")
        for key in ("async", "sync"):
            assert rs.get(key) == new.client().get(key)


def test_w_all_waits_for_every_voter_and_says_so_when_one_is_missing(fcluster):
    leader = fcluster.settled()
    followers = [s for s in fcluster.nodes if s is not leader]
    r = leader.client(socket_timeout=15)
    assert r.execute_command("TRIAD.CONSISTENCY", "W", "ALL") == b"OK"
    assert r.set("all", "1") is True
    assert r.incr("counter") == 1
    cut(fcluster, leader, followers[:1])
    try:
        with pytest.raises(redis.ResponseError) as e:
            r.incr("counter")
        assert str(e.value).startswith("NOREPLICAS the write was applied")
        # a majority still commits: the write is there, on two copies
        q = leader.client()
        assert q.get("counter") == b"2"
        assert q.execute_command("TRIAD.CONSISTENCY", "W", "TWO") == b"OK"
        assert q.set("two", "copies") is True
    finally:
        heal(fcluster)


def test_wait_counts_the_replicas_that_have_the_connections_writes(fcluster):
    leader = fcluster.settled()
    followers = [s for s in fcluster.nodes if s is not leader]
    r = leader.client(socket_timeout=10)
    assert r.set("k", "v") is True
    assert r.execute_command("WAIT", 2, 5000) == 2
    # through a follower too: WAIT runs on the leader for this connection
    f = followers[0].client(socket_timeout=10)
    assert f.set("k2", "v") is True
    assert f.execute_command("WAIT", 2, 5000) == 2
    cut(fcluster, leader, followers[:1])
    try:
        assert r.set("k3", "v") is True
        # one follower cut off: the timeout ends the wait, with the one copy
        assert r.execute_command("WAIT", 2, 300) == 1
        assert r.execute_command("WAIT", 1, 0) == 1
    finally:
        heal(fcluster)
    for bad, msg in (((1, -1), "timeout is negative"),
                     (("x", 0), "value is not an integer or out of range"),
                     ((1, "y"), "timeout is not an integer or out of range")):
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command("WAIT", *bad)
        assert str(e.value) == msg


def test_readonly_reads_a_followers_own_copy_within_the_sessions_floor(fcluster):
    leader = fcluster.settled()
    lagging, other = [s for s in fcluster.nodes if s is not leader]
    w = leader.client()
    assert w.set("x", "old") is True
    wait_for(lambda: fcluster.info(lagging)["triad_applied_index"] >=
             fcluster.info(leader)["triad_applied_index"], what="the follower to catch up")
    cut(fcluster, lagging, [leader, other])
    try:
        assert w.set("x", "new") is True
        token = w.execute_command("TRIAD.TOKEN")
        assert token.startswith(b"v1:")
        plain = lagging.client(socket_timeout=3)
        assert plain.execute_command("READONLY") is True
        assert plain.get("x") == b"old"          # its own copy: local, and behind
        floor = lagging.client(socket_timeout=3)
        floor.execute_command("READONLY")
        assert floor.execute_command("TRIAD.AFTER", token) == b"OK"
        try:
            value = floor.get("x")
        except redis.ResponseError as e:            # too far behind, and the leader is cut off
            assert str(e).startswith("TRYAGAIN"), str(e)
        else:
            assert value == b"new"               # never older than the token
        with pytest.raises(redis.ResponseError) as e:
            floor.execute_command("TRIAD.AFTER", "garbage")
        assert str(e.value) == "invalid token: pass what TRIAD.TOKEN returned"
    finally:
        heal(fcluster)
    wait_for(lambda: floor.get("x") == b"new", what="the follower to catch up after healing")
    # read-your-writes on one connection: a write through the follower,
    # then a local read there, sees it
    s = other.client()
    s.execute_command("READONLY")
    for i in range(20):
        assert s.set("ryw", str(i)) is True
        assert s.get("ryw") == str(i).encode()
    assert s.execute_command("READWRITE") is True


def test_role_and_info_replication_have_redis_shapes(fcluster):
    leader = fcluster.settled()
    followers = [s for s in fcluster.nodes if s is not leader]
    leader.client().set("k", "v")
    role = leader.client().execute_command("ROLE")
    assert role[0] == b"master"
    assert isinstance(role[1], int) and role[1] > 0
    assert sorted(int(rep[1]) for rep in role[2]) == sorted(s.port for s in followers)
    for rep in role[2]:
        assert rep[0] == b"127.0.0.1"
    for f in followers:
        frole = f.client().execute_command("ROLE")
        assert frole[0] == b"slave"
        assert frole[1] == b"127.0.0.1" and frole[2] == leader.port
        assert frole[3] == b"connected"
        info = fcluster.info(f)
        assert info["role"] == "slave"
        assert info["master_port"] == leader.port
        assert info["master_link_status"] == "up"
    info = fcluster.info(leader)
    assert info["role"] == "master"
    assert info["connected_slaves"] == 2
    assert {info["slave0"]["port"], info["slave1"]["port"]} == {s.port for s in followers}
    peers = [info["triad_peer0"], info["triad_peer1"]]
    for p in peers:
        assert p["lag_ms"] >= 0 and p["lag"] >= 0 and p["match"] > 0


def test_redis_py_sentinel_finds_the_leader_and_follows_a_failover(fcluster):
    leader = fcluster.settled()
    sentinel = Sentinel([("127.0.0.1", s.port) for s in fcluster.nodes], socket_timeout=1)
    assert sentinel.discover_master("triad") == ("127.0.0.1", leader.port)
    replicas = sentinel.discover_slaves("triad")
    assert sorted(p for _, p in replicas) == sorted(s.port for s in fcluster.nodes
                                                     if s is not leader)
    with pytest.raises(redis.sentinel.MasterNotFoundError):
        sentinel.discover_master("no-such-cluster")
    master = sentinel.master_for("triad", socket_timeout=2)
    assert master.set("via", "sentinel") is True
    r = leader.client()
    assert r.execute_command("SENTINEL", "get-master-addr-by-name", "triad") == \
        [b"127.0.0.1", str(leader.port).encode()]
    assert r.execute_command("SENTINEL", "get-master-addr-by-name", "nope") is None
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("SENTINEL", "bogus")
    assert "Try SENTINEL HELP" in str(e.value)

    leader.kill()
    new = fcluster.leader(exclude=(leader,))
    deadline = time.monotonic() + 15
    found = None
    while time.monotonic() < deadline:
        try:
            found = sentinel.discover_master("triad")
            if found == ("127.0.0.1", new.port):
                break
        except redis.sentinel.MasterNotFoundError:
            pass
        time.sleep(0.1)
    assert found == ("127.0.0.1", new.port)
    deadline = time.monotonic() + 15
    while True:
        try:
            assert master.set("after", "failover") is True
            break
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert new.client().get("via") == b"sentinel"
    assert new.client().get("after") == b"failover"


def test_redirect_answers_moved_and_redis_cli_follows_it(tmp_path):
    c = Cluster(tmp_path, extra_args=["--redirect", "yes"]).start()
    try:
        leader = c.settled()
        follower = next(s for s in c.nodes if s is not leader)
        with pytest.raises(redis.ResponseError) as e:
            follower.client().set("foo", "bar")
        # Redis Cluster's shape: the key's hash slot, then the leader
        assert str(e.value) == "MOVED 12182 127.0.0.1:%d" % leader.port
        with pytest.raises(redis.ResponseError) as e:
            follower.client().get("{user1000}.following")
        assert str(e.value) == "MOVED 3443 127.0.0.1:%d" % leader.port
        p = subprocess.run([REDIS_CLI_BIN, "-c", "-h", "127.0.0.1", "-p", str(follower.port),
                            "SET", "foo", "bar"], capture_output=True, text=True, timeout=20)
        assert p.stdout.strip() == "OK", p.stdout + p.stderr
        assert leader.client().get("foo") == b"bar"
        # a READONLY connection still reads the follower's own copy
        f = follower.client()
        f.execute_command("READONLY")
        wait_for(lambda: f.get("foo") == b"bar", what="the follower to apply the write")
        assert follower.client().config_get("redirect") == {"redirect": "yes"}
        # what rests on the connection here still runs: WATCH, MULTI/EXEC
        with follower.client().pipeline() as p:
            p.watch("foo")
            p.multi()
            p.set("foo", "txn")
            assert p.execute() == [True]
        assert leader.client().get("foo") == b"txn"
    finally:
        c.stop()


def test_multi_exec_runs_atomically_through_any_node(fcluster):
    leader = fcluster.settled()
    for s in fcluster.nodes:
        r = s.client()
        p = r.pipeline()  # MULTI ... EXEC
        p.set("t", s.port).incr("tn").get("t").mget("t", "tn")
        res = p.execute()
        assert res[0] is True and res[2] == str(s.port).encode()
        assert res[3] == [str(s.port).encode(), str(res[1]).encode()]
    assert leader.client().get("tn") == b"3"
    # RESP3 too, and an empty transaction
    r = leader.client()
    assert r.execute_command("MULTI") == b"OK"
    assert r.execute_command("EXEC") == []
    # errors: as Redis's, or a clear refusal for what cannot run in the log
    with pytest.raises(redis.ResponseError) as e:
        p = r.pipeline()
        p.set("x", 1).keys("*")
        p.execute()
    assert str(e.value) == "Transaction discarded: 'KEYS' cannot run in a leader-mode transaction"
    assert r.get("x") is None
    with pytest.raises(redis.ResponseError) as e:
        p = r.pipeline()
        p.execute_command("SET", "x")  # wrong arity: refused while queueing
        p.execute()
    assert "EXECABORT" in str(e.value) or "wrong number of arguments" in str(e.value)
    assert r.get("x") is None
    p = r.pipeline()
    p.set("s", "str").incr("s").set("after", "1")
    res = p.execute(raise_on_error=False)
    assert res[0] is True and isinstance(res[1], redis.ResponseError) and res[2] is True
    c = leader.resp()
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "d", "1") == "QUEUED"
    assert c.cmd("DISCARD") == "OK"
    assert r.get("d") is None
    assert c.cmd("EXEC") == Err("ERR EXEC without MULTI")
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("NOSUCHCMD") .startswith("ERR unknown command")
    assert c.cmd("EXEC") == Err("EXECABORT Transaction discarded because of previous errors.")


def test_a_refused_exec_drops_the_watches_as_redis_does(fcluster):
    """EXEC refused for its arguments discards the transaction and the
    connection's WATCHes, MULTI or not (Redis's execCommandAbort): a later
    transaction commits although the key was written meanwhile."""
    leader = fcluster.settled()
    c = leader.resp()
    assert c.cmd("SET", "rw", "1") == "OK"
    assert c.cmd("WATCH", "rw") == "OK"
    assert c.cmd("EXEC", "x") == Err("EXECABORT Transaction discarded because of: "
                                     "wrong number of arguments for 'exec' command")
    leader.client().set("rw", "2")  # someone else writes
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "rw", "mine") == "QUEUED"
    assert c.cmd("EXEC") == ["OK"]
    assert leader.client().get("rw") == b"mine"


def test_watch_aborts_exec_when_another_client_changes_the_key(fcluster):
    leader = fcluster.settled()
    follower = next(s for s in fcluster.nodes if s is not leader)
    for via in (leader, follower):
        r = via.client()
        r.set("w", "1")
        with r.pipeline() as p:
            p.watch("w")
            assert p.get("w") == b"1"
            leader.client().set("w", "2")          # someone else writes
            p.multi()
            p.set("w", "mine")
            with pytest.raises(redis.WatchError):
                p.execute()
        assert r.get("w") == b"2"
        with r.pipeline() as p:                    # untouched: it commits
            p.watch("w", "absent")
            p.multi()
            p.set("w", "mine")
            assert p.execute() == [True]
        assert r.get("w") == b"mine"
    # redis-py's optimistic-locking helper retries until it wins; many
    # clients incrementing one key by WATCH/MULTI lose no increment
    r0 = leader.client()
    r0.set("ctr", "0")

    def bump(pipe):
        v = int(pipe.get("ctr"))
        pipe.multi()
        pipe.set("ctr", v + 1)

    def worker(node):
        r = node.client()
        for _ in range(15):
            r.transaction(bump, "ctr")

    threads = [threading.Thread(target=worker, args=(s,)) for s in fcluster.nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert r0.get("ctr") == b"45"
    # UNWATCH forgets; WATCH inside MULTI is Redis's error
    c = leader.resp()
    assert c.cmd("WATCH", "w") == "OK"
    leader.client().set("w", "changed")
    assert c.cmd("UNWATCH") == "OK"
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("WATCH", "w") == Err("ERR WATCH inside MULTI is not allowed")
    assert c.cmd("SET", "w", "ok") == "QUEUED"
    assert c.cmd("EXEC") == ["OK"]
    # WATCH then a change then EXEC: the null reply
    assert c.cmd("WATCH", "w") == "OK"
    leader.client().set("w", "other")
    assert c.cmd("MULTI") == "OK"
    assert c.cmd("SET", "w", "lost") == "QUEUED"
    assert c.cmd("EXEC") is None
    assert leader.client().get("w") == b"other"


def test_a_wait_forwarded_to_a_leader_that_dies_ends(fcluster):
    leader = fcluster.settled()
    follower = next(s for s in fcluster.nodes if s is not leader)
    r = follower.client(socket_timeout=20)
    assert r.set("k", "v") is True
    result = {}

    def waiter():
        try:
            result["reply"] = r.execute_command("WAIT", 5, 0)  # more than exist: forever
        except redis.RedisError as e:
            result["error"] = str(e)

    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.5)
    assert t.is_alive()
    leader.kill()
    t.join(timeout=15)
    assert not t.is_alive()
    assert result.get("error", "").startswith("TRYAGAIN the leader WAIT ran on is gone"), result
