"""redis-cli talks to the server (run on both targets: on redis it checks
the test itself, on triad it proves the stock client works)."""
import shutil
import subprocess

import pytest

from conftest import REDIS_CLI_BIN

pytestmark = pytest.mark.skipif(shutil.which(REDIS_CLI_BIN) is None, reason="redis-cli not installed")


def cli(server, *args):
    p = subprocess.run([REDIS_CLI_BIN, "-h", "127.0.0.1", "-p", str(server.port)] + list(args),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_redis_cli_ping(server, r):
    assert cli(server, "PING") == b"PONG\n"


def test_redis_cli_set_and_raw_get(server, r):
    assert cli(server, "SET", "a", "b") == b"OK\n"
    assert cli(server, "--raw", "GET", "a") == b"b\n"
    assert r.get("a") == b"b"


def test_redis_cli_nil_integer_and_error(server, r):
    assert cli(server, "INCR", "n") == b"1\n"
    assert cli(server, "GET", "missing") == b"\n"
    assert cli(server, "GET").startswith(b"ERR wrong number of arguments for 'get' command")


def test_redis_cli_reads_commands_from_stdin(server, r):
    p = subprocess.run([REDIS_CLI_BIN, "-h", "127.0.0.1", "-p", str(server.port)],
                       input=b"SET x 1\nINCR x\nGET x\n", capture_output=True, timeout=30)
    assert p.returncode == 0
    assert p.stdout == b"OK\n2\n2\n"
