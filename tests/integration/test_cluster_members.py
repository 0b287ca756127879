"""Leader mode's membership on real processes: a wiped follower comes back
by snapshot, a node added with TRIAD.MEMBERS catches up and is promoted, a
node is removed and leadership moves while clients keep writing."""
import shutil
import threading
import time

import pytest
import redis

from conftest import Server, free_port
from test_cluster import Cluster, cluster, wait_for  # noqa: F401 (cluster: a fixture)

pytestmark = pytest.mark.triad_only("leader mode is triad's")

LOAD_S = 6.0  # each write load runs at most this long


class Writer:
    """SET w<i> <i> through any live node, recording what was acknowledged."""

    def __init__(self, nodes):
        self.nodes = nodes
        self.acked = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        i = 0
        deadline = time.monotonic() + LOAD_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            live = [s for s in self.nodes if s.running()]
            s = live[i % len(live)]
            try:
                r = redis.Redis(host="127.0.0.1", port=s.port, socket_timeout=3)
                for _ in range(50):
                    if self.stop.is_set() or time.monotonic() > deadline:
                        break
                    if r.set("w%d" % i, str(i)):
                        self.acked.append(i)
                    i += 1
            except (redis.RedisError, OSError):
                i += 1
                time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=LOAD_S + 10)
        assert not self.thread.is_alive()


def local_reader(s):
    r = s.client()
    assert r.execute_command("READONLY") is True
    return r


def members(s):
    return {m[0]: (m[1], m[2], m[3]) for m in s.client().execute_command("TRIAD.MEMBERS")}


def assert_all_present(s, acked):
    """Every acknowledged write is in node s's own copy."""
    r = local_reader(s)
    pipe = r.pipeline(transaction=False)
    for i in acked:
        pipe.get("w%d" % i)
    values = pipe.execute()
    missing = [i for i, v in zip(acked, values) if v != str(i).encode()]
    assert not missing, "node %s lacks %d acknowledged writes, e.g. %s" % (
        s.name, len(missing), missing[:5])


def caught_up(cluster, s, leader):
    return cluster.info(s)["triad_applied_index"] >= cluster.info(leader)["triad_commit_index"]


def test_a_wiped_follower_rejoins_by_snapshot(tmp_path):
    c = Cluster(tmp_path, extra_args=["--raft-snapshot-entries", "50"]).start()
    try:
        leader = c.settled()
        r = leader.client()
        for i in range(300):
            r.set("k%d" % i, str(i))
        follower = next(s for s in c.nodes if s is not leader)
        follower.kill()
        shutil.rmtree(follower.dir)
        follower.dir.mkdir()
        for i in range(300, 400):
            r.set("k%d" % i, str(i))
        # an empty log must not found a cluster of its own: it joins
        follower.extra_args += ["--join", "yes"]
        follower.start()
        wait_for(lambda: c.info(follower)["triad_snapshots_installed"] >= 1,
                 what="the wiped follower to install a snapshot")
        wait_for(lambda: caught_up(c, follower, leader), what="the follower to catch up")
        assert local_reader(follower).dbsize() == 400
        assert local_reader(follower).get("k399") == b"399"
        assert "installed the leader's snapshot" in follower.log_tail(20000)
        assert "sending node %d the snapshot" % (c.nodes.index(follower) + 1) in \
            leader.log_tail(20000)
    finally:
        c.stop()


def test_a_node_added_under_load_catches_up_and_is_promoted(tmp_path):
    c = Cluster(tmp_path, extra_args=["--raft-snapshot-entries", "200"]).start()
    node4 = None
    try:
        leader = c.settled()
        r = leader.client()
        for i in range(100):
            r.set("pre%d" % i, "x")
        p4 = free_port()
        node4 = Server(tmp_path, name="node4",
                       extra_args=["--node-id", "4", "--peers", c.peers + ",4=127.0.0.1:%d" % p4,
                                   "--join", "yes"])
        node4.start()
        assert c.info(node4)["triad_raft_role"] == "follower"
        with Writer(c.nodes) as w:
            time.sleep(0.5)
            assert r.execute_command("TRIAD.MEMBERS", "ADD", 4, "127.0.0.1:%d" % p4) == b"OK"
            wait_for(lambda: members(leader).get(4, ("",))[0] == b"voter",
                     what="node 4 to be promoted")
            time.sleep(1.0)
        assert len(w.acked) > 100
        wait_for(lambda: caught_up(c, node4, leader), what="node 4 to catch up")
        m = members(leader)
        assert sorted(m) == [1, 2, 3, 4]
        assert m[4] == (b"voter", b"connected", ("127.0.0.1:%d" % p4).encode())
        assert_all_present(node4, w.acked)
        assert local_reader(node4).get("pre99") == b"x"
        # every node knows node 4
        for s in c.nodes:
            assert 4 in members(s)
    finally:
        if node4 is not None:
            node4.stop()
        c.stop()


def test_remove_a_node_and_transfer_leadership_under_load(cluster):
    c = cluster
    leader = c.settled()
    lid = c.nodes.index(leader) + 1
    followers = [s for s in c.nodes if s is not leader]
    gone, heir = followers
    gone_id, heir_id = c.nodes.index(gone) + 1, c.nodes.index(heir) + 1
    with Writer([leader, heir]) as w:
        time.sleep(0.5)
        assert leader.client().execute_command("TRIAD.MEMBERS", "REMOVE", gone_id) == b"OK"
        assert sorted(members(leader)) == sorted([lid, heir_id])
        time.sleep(0.5)
        wait_for(lambda: caught_up(c, heir, leader), what="the heir to catch up")
        assert leader.client().execute_command("TRIAD.TRANSFER", heir_id) == b"OK"
        new = c.leader(exclude=(leader, gone))
        assert new is heir
        time.sleep(0.5)
    assert len(w.acked) > 100
    wait_for(lambda: caught_up(c, leader, heir), what="the old leader to catch up")
    for s in (leader, heir):
        assert_all_present(s, w.acked)
    assert "left the configuration" in heir.log_tail(20000)
    # two voters left: both are needed, and both have every write
    assert heir.client().set("after", "removal") is True


def test_membership_commands_check_their_arguments(tmp_path):
    c = Cluster(tmp_path).start()
    node4 = None
    try:
        leader = c.settled()
        follower = next(s for s in c.nodes if s is not leader)
        r = leader.client()
        cases = [
            (("ADD", 2, "127.0.0.1:1"), "node 2 is already a member"),
            (("PROMOTE", 1), "node 1 is not a learner"),
            (("REMOVE", 9), "node 9 is not a member"),
            (("ADD", 5, "nohostport"), "the new member's peer address is host:port"),
            (("ADD", 5, "h:0"), "the new member's peer address is host:port"),
            (("ADD", 0, "h:1"), "a node id is an integer from 1 to 1000000"),
            (("ADD", 5),
             "usage: TRIAD.MEMBERS [ADD id host:port [LEARNER] | PROMOTE id | REMOVE id]"),
            (("FROB", 5), "usage: TRIAD.MEMBERS [ADD id host:port [LEARNER] | PROMOTE id | REMOVE id]"),
        ]
        for args, msg in cases:
            with pytest.raises(redis.ResponseError) as e:
                r.execute_command("TRIAD.MEMBERS", *args)
            assert str(e.value) == msg, args
        with pytest.raises(redis.ResponseError) as e:
            follower.client().execute_command("TRIAD.MEMBERS", "REMOVE", 3)
        assert str(e.value).startswith("NOTLEADER")
        # a learner added as such stays one until promoted
        p4 = free_port()
        node4 = Server(tmp_path, name="node4",
                       extra_args=["--node-id", "4", "--peers", c.peers + ",4=127.0.0.1:%d" % p4,
                                   "--join", "yes"])
        node4.start()
        assert r.execute_command("TRIAD.MEMBERS", "ADD", 4, "[127.0.0.1]:%d" % p4,
                                 "LEARNER") == b"OK"
        wait_for(lambda: caught_up(c, node4, leader), what="the learner to catch up")
        time.sleep(0.5)
        assert members(leader)[4][0] == b"learner"
        assert r.execute_command("TRIAD.MEMBERS", "PROMOTE", 4) == b"OK"
        assert members(leader)[4][0] == b"voter"
    finally:
        if node4 is not None:
            node4.stop()
        c.stop()
