"""`triad sim` as a user runs it: seeds, the summary, a failing seed's replay
command, the history and trace files, planted bugs. (The simulator's checks
themselves are tested in tests/unit/test_sim.c.)"""
import json
import re
import subprocess

import pytest

from conftest import TRIAD_BIN

pytestmark = pytest.mark.triad_only("the simulator is triad's")

RUN_TIMEOUT_S = 300


def sim(*args):
    return subprocess.run([TRIAD_BIN, "sim", *args], capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


def test_seeds_pass_and_the_summary_reports_rates_and_failover():
    p = sim("--seed", "11", "--seeds", "3")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert [l.split(":")[0] for l in lines[:3]] == ["seed 11", "seed 12", "seed 13"]
    assert all(": ok, " in l and "linearizability ok" in l for l in lines[:3])
    assert re.search(r"^sim: 3 seeds in [0-9.]+ s \([0-9.]+ seeds/s", p.stdout, re.M)
    assert re.search(r"^sim: leader failure to a new leader's first commit: \d+ samples, p50 \d+ ms, p99 \d+ ms",
                     p.stdout, re.M)


def test_a_seed_replays_exactly(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    ta, tb = tmp_path / "a.trace", tmp_path / "b.trace"
    assert sim("--seed", "21", "--history", str(a), "--trace", str(ta)).returncode == 0
    assert sim("--seed", "21", "--history", str(b), "--trace", str(tb)).returncode == 0
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    assert ta.read_bytes() == tb.read_bytes() and ta.stat().st_size > 0


def test_history_is_json_lines_with_every_field(tmp_path):
    h = tmp_path / "h.jsonl"
    assert sim("--seed", "4", "--history", str(h)).returncode == 0
    ops = [json.loads(l) for l in h.read_text().splitlines()]
    assert len(ops) > 10
    for op in ops:
        assert {"client", "op", "key", "value", "expected", "ok", "output", "call", "return"} <= set(op)
        assert op["op"] in ("get", "set", "set_ifeq", "append", "incr")
        assert op["ok"] in ("ok", "fail", "unknown")
        assert (op["return"] is None) == (op["ok"] == "unknown")


def test_planted_bug_fails_with_the_replay_command():
    p = sim("--seed", "1", "--seeds", "50", "--bug", "commit-minority", "--quiet")
    assert p.returncode == 1
    m = re.search(r"^FAIL seed (\d+): .+\n  replay: triad sim --seed (\d+) --bug commit-minority$",
                  p.stdout, re.M)
    assert m and m.group(1) == m.group(2), p.stdout
    # the replay command fails the same way
    again = sim("--seed", m.group(1), "--bug", "commit-minority")
    assert again.returncode == 1
    first = re.search(r"^FAIL seed \d+: (.+)$", p.stdout, re.M).group(1)
    assert first in again.stdout


def test_expect_failure_succeeds_only_when_caught():
    p = sim("--seed", "1", "--seeds", "50", "--bug", "apply-uncommitted", "--expect-failure", "--quiet")
    assert p.returncode == 0 and "was caught at seed" in p.stdout
    clean = sim("--seed", "1", "--seeds", "2", "--expect-failure", "--quiet")
    assert clean.returncode == 1 and "NOT caught" in clean.stdout


def test_bad_options_are_refused_with_usage():
    p = sim("--bug", "no-such-bug")
    assert p.returncode == 2 and "unknown bug 'no-such-bug'" in p.stderr and "Usage: triad sim" in p.stderr
    p = sim("--seeds")
    assert p.returncode == 2 and "unknown or incomplete option '--seeds'" in p.stderr
    h = sim("--help")
    assert h.returncode == 0 and "--leader-faults" in h.stdout
