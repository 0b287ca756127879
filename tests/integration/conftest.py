"""Integration fixtures: real servers, real clients.

The suite runs against either target, chosen by TRIAD_TEST_TARGET:
  triad (default)  $TRIAD_BIN server --port P --dir <tmp>/node   (TRIAD_BIN
                   defaults to <repo>/build/triad)
  redis            redis-server 7 with no persistence, as the reference.

Every expectation was checked against redis-server 7.0, so on the triad
target a failure means triad differs from Redis. Tests of behaviour Redis
lacks carry @pytest.mark.triad_only("why") and are skipped on redis.

Fixtures:
  server       session-scoped Server (.port .pid .dir .client() .resp())
  make_server  factory for private servers (stopped at teardown)
  r            redis.Redis(decode_responses=False), FLUSHALL done
  c            RespConn speaking RESP2, for exact replies (same server, db 0)
  r3           RespConn after HELLO 3, for RESP3 replies
  raw          factory: raw(): a RawConn (plain socket, exact bytes)

Reply model of RespConn (exact, so tests can tell reply types apart):
  +simple -> str, $bulk -> bytes, :int -> int, nulls -> None, *array -> list,
  -error -> Err (compares equal only to Err with the same text),
  RESP3: %map -> dict, ~set -> RSet (a list), ,double -> float,
  #bool -> bool, (big -> int, =verbatim -> Verbatim, >push -> Push (a list).
"""
import os
import random
import resource
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

TARGET = os.environ.get("TRIAD_TEST_TARGET", "triad").strip().lower()
if TARGET not in ("triad", "redis"):
    raise RuntimeError("TRIAD_TEST_TARGET must be 'triad' or 'redis', not %r" % TARGET)

REPO = Path(__file__).resolve().parents[2]
TRIAD_BIN = os.environ.get("TRIAD_BIN", str(REPO / "build" / "triad"))
REDIS_SERVER_BIN = os.environ.get("REDIS_SERVER_BIN", "redis-server")
REDIS_CLI_BIN = os.environ.get("REDIS_CLI_BIN", "redis-cli")
HOST = "127.0.0.1"

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
IO_TIMEOUT_S = 10.0

# The many-clients test opens 1000+ sockets; servers inherit our limit.
NOFILE_WANTED = 8192


def _raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = NOFILE_WANTED if hard == resource.RLIM_INFINITY else min(NOFILE_WANTED, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


_raise_nofile()


# Durability tests are triad's (WAL, --fsync, snapshots). To check the tests
# themselves, TRIAD_TEST_REDIS_AOF=1 runs them against redis with
# appendonly + appendfsync, which promises the same.
REDIS_AOF = os.environ.get("TRIAD_TEST_REDIS_AOF", "") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "triad_only(reason): behaviour Redis lacks; skipped when the target is redis")
    config.addinivalue_line(
        "markers", "durability: triad's WAL and snapshots; skipped on redis unless "
        "TRIAD_TEST_REDIS_AOF=1")


def pytest_runtest_setup(item):
    m = item.get_closest_marker("triad_only")
    if m is not None and TARGET == "redis":
        reason = m.args[0] if m.args else m.kwargs.get("reason", "triad-only behaviour")
        pytest.skip("triad-only: " + reason)
    if item.get_closest_marker("durability") is not None and TARGET == "redis" and not REDIS_AOF:
        pytest.skip("triad-only: durability through triad's WAL and snapshots "
                    "(TRIAD_TEST_REDIS_AOF=1 checks these tests against redis with AOF)")


def pytest_report_header(config):
    return "triad integration target: %s (%s)" % (
        TARGET, TRIAD_BIN if TARGET == "triad" else REDIS_SERVER_BIN)


def ephemeral_ports():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = map(int, f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


_ports_given = set()
_ports_rng = random.Random(os.urandom(16))


def _port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port nothing is bound to now, outside the kernel's ephemeral range,
    and not handed out before in this run. A port from bind(0) is an
    ephemeral one: between the probe and the server's own bind any outgoing
    connection (a test's client, a node dialing its peers) may take it as
    its local port, and the server then fails to start with "address already
    in use"; a cluster names its peer ports before any node binds them, and
    a restarted node binds its peer port again, so the window is long.
    Falls back to bind(0) where that range is empty, or after 1000 tries."""
    lo, hi = ephemeral_ports()
    spans = [(r0, r1) for r0, r1 in ((10000, lo - 1), (hi + 1, 65535)) if r1 >= r0]
    if spans:
        total = sum(r1 - r0 + 1 for r0, r1 in spans)
        for _ in range(1000):
            k = _ports_rng.randrange(total)
            for r0, r1 in spans:
                if k <= r1 - r0:
                    port = r0 + k
                    break
                k -= r1 - r0 + 1
            if port not in _ports_given and _port_free(port):
                _ports_given.add(port)
                return port
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind((HOST, 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- RESP client


class Err:
    """An error reply; equal only to another Err with the same text."""

    def __init__(self, msg):
        self.msg = msg.decode() if isinstance(msg, bytes) else msg

    def __eq__(self, other):
        return isinstance(other, Err) and other.msg == self.msg

    def __hash__(self):
        return hash(("Err", self.msg))

    def startswith(self, prefix):
        return self.msg.startswith(prefix)

    def __repr__(self):
        return "Err(%r)" % self.msg


class RSet(list):
    def __eq__(self, other):
        if isinstance(other, RSet):
            return sorted(map(repr, self)) == sorted(map(repr, other))
        return NotImplemented

    def __repr__(self):
        return "RSet(%s)" % list.__repr__(self)


class Push(list):
    def __repr__(self):
        return "Push(%s)" % list.__repr__(self)


class Verbatim:
    def __init__(self, fmt, data):
        self.fmt, self.data = fmt, data

    def __eq__(self, other):
        return isinstance(other, Verbatim) and (self.fmt, self.data) == (other.fmt, other.data)

    def __repr__(self):
        return "Verbatim(%r, %r)" % (self.fmt, self.data)


class ConnClosed(Exception):
    pass


def pack_command(*args):
    """RESP2 multibulk encoding of one command."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, (int, float)):
            a = repr(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def read_reply(f):
    """Read one RESP2/RESP3 reply from a buffered binary file."""
    line = f.readline()
    if not line:
        raise ConnClosed("server closed the connection")
    if not line.endswith(b"\r\n"):
        raise ConnClosed("truncated reply line %r" % line)
    t, body = line[:1], line[1:-2]
    if t == b"+":
        return body.decode()
    if t == b"-":
        return Err(body)
    if t == b":":
        return int(body)
    if t == b"(":
        return int(body)
    if t == b",":
        return float(body)  # handles inf, -inf, nan
    if t == b"#":
        return body == b"t"
    if t == b"_":
        return None
    if t in (b"$", b"=", b"!"):
        n = int(body)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnClosed("truncated bulk")
        data = data[:-2]
        if t == b"=":
            return Verbatim(data[:3].decode(), data[4:])
        if t == b"!":
            return Err(data)
        return data
    if t in (b"*", b"~", b">"):
        n = int(body)
        if n < 0:
            return None
        items = [read_reply(f) for _ in range(n)]
        return RSet(items) if t == b"~" else Push(items) if t == b">" else items
    if t == b"%":
        n = int(body)
        d = {}
        for _ in range(n):
            k = read_reply(f)
            d[k] = read_reply(f)
        return d
    if t == b"|":
        n = int(body)
        for _ in range(2 * n):  # attributes decorate the next reply: skip them
            read_reply(f)
        return read_reply(f)
    raise ValueError("unknown RESP type byte in %r" % line)


class RespConn:
    """A minimal client returning exact reply types (see module doc)."""

    def __init__(self, port, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.f = self.sock.makefile("rb")

    def send(self, data):
        self.sock.sendall(data)

    def read(self):
        return read_reply(self.f)

    def cmd(self, *args):
        self.send(pack_command(*args))
        return self.read()

    def pipeline(self, cmds):
        self.send(b"".join(pack_command(*c) for c in cmds))
        return [self.read() for _ in cmds]

    def inline(self, line):
        self.send(line + b"\r\n")
        return self.read()

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()


class RawConn:
    """A plain socket for exact-byte tests."""

    def __init__(self, port, timeout=IO_TIMEOUT_S):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.timeout = timeout

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                break
            buf += chunk
        return buf

    def recv_until_close(self, limit_bytes=1 << 20):
        """All bytes until the server closes; raises socket.timeout if it
        does not close within the timeout."""
        buf = b""
        while len(buf) < limit_bytes:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
        return buf

    def is_closed_by_server(self, wait_s=IO_TIMEOUT_S):
        self.sock.settimeout(wait_s)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        finally:
            self.sock.settimeout(self.timeout)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------- servers


class Server:
    """One server process of the chosen target, owned by the test run."""

    def __init__(self, base_dir, name="node", extra_args=(), password=None, target=TARGET,
                 env=None):
        self.base_dir = Path(base_dir)
        self.env = env  # extra environment variables for the process
        self.name = name
        self.dir = self.base_dir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.extra_args = list(extra_args)
        self.password = password
        self.target = target
        self.proc = None
        self.port = None
        self.log_path = self.base_dir / (name + ".log")
        self._log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def argv(self):
        pw = ["--requirepass", self.password] if self.password else []
        if self.target == "triad":
            return [TRIAD_BIN, "server", "--port", str(self.port), "--bind", HOST,
                    "--dir", str(self.dir)] + \
                pw + self.extra_args
        return [REDIS_SERVER_BIN, "--port", str(self.port), "--bind", HOST, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir)] + \
            pw + self.extra_args

    def start(self, timeout_s=START_TIMEOUT_S):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        if self.target == "triad" and not os.access(TRIAD_BIN, os.X_OK):
            pytest.fail("triad binary %s not found; build it (make) or set TRIAD_BIN, "
                        "or run with TRIAD_TEST_TARGET=redis" % TRIAD_BIN)
        self.port = free_port()
        self._log = open(self.log_path, "ab")
        self._log.write(b"\n=== start: %s\n" % " ".join(self.argv()).encode())
        self._log.flush()
        env = None
        if self.env:
            env = dict(os.environ)
            env.update(self.env)
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=str(self.base_dir), env=env)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited with %s during start-up:\n%s"
                                   % (self.proc.returncode, self.log_tail()))
            if self._answers_ping():
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not answer PING within %.0fs:\n%s"
                                   % (timeout_s, self.log_tail()))
            time.sleep(0.05)

    def _answers_ping(self):
        try:
            c = RespConn(self.port, timeout=1.0)
        except OSError:
            return False
        try:
            rep = c.cmd("PING")
            # A password-protected server answers NOAUTH: it is up.
            return rep == "PONG" or (isinstance(rep, Err) and rep.startswith("NOAUTH"))
        except (OSError, ConnClosed, ValueError):
            return False
        finally:
            c.close()

    def log_tail(self, nbytes=4000):
        try:
            return self.log_path.read_bytes()[-nbytes:].decode(errors="replace")
        except OSError:
            return "(no log)"

    def wait_exit(self, timeout_s):
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s=STOP_TIMEOUT_S):
        """SIGTERM, then SIGKILL after a bounded wait; returns the exit code."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            rc = self.wait_exit(timeout_s)
            if rc is None:
                self.kill()
                rc = self.proc.returncode
        self._close_log()
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        self._close_log()

    def _close_log(self):
        if self._log is not None:
            self._log.close()
            self._log = None
            self.check_sanitizers()

    def check_sanitizers(self):
        """Fail the test if an ASan/UBSan/LSan build reported anything."""
        try:
            text = self.log_path.read_bytes().decode(errors="replace")
        except OSError:
            return
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if marker in text:
                raise AssertionError("sanitizer report in %s:\n%s" % (self.log_path, text[-6000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw):
        kw.setdefault("password", self.password)
        kw.setdefault("socket_timeout", IO_TIMEOUT_S)
        return redis.Redis(host=HOST, port=self.port, decode_responses=False, **kw)

    def resp(self, auth=True):
        c = RespConn(self.port)
        if auth and self.password:
            assert c.cmd("AUTH", self.password) == "OK"
        return c


@pytest.fixture(scope="session")
def target():
    return TARGET


def running_server(tmp_path_factory, name, **kw):
    """A started Server in a fresh directory named after name, stopped when
    the fixture ends: `yield from running_server(...)` in a fixture."""
    s = Server(tmp_path_factory.mktemp(name), **kw)
    s.start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    yield from running_server(tmp_path_factory, "shared")


@pytest.fixture
def make_server(tmp_path):
    """make_server(name="node", extra_args=(), password=None, start=True)."""
    made = []

    def make(name="node", extra_args=(), password=None, start=True, base_dir=None, env=None):
        s = Server(base_dir or tmp_path, name=name, extra_args=extra_args, password=password,
                   env=env)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture
def r(server):
    if not server.running():
        pytest.fail("the shared server died:\n" + server.log_tail())
    client = server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def c(r, server):
    conn = server.resp()
    yield conn
    conn.close()


@pytest.fixture
def r3(r, server):
    conn = server.resp()
    hello = conn.cmd("HELLO", "3")
    assert isinstance(hello, dict), hello
    yield conn
    conn.close()


@pytest.fixture
def raw(server):
    conns = []

    def make(port=None):
        conn = RawConn(port or server.port)
        conns.append(conn)
        return conn

    yield make
    for conn in conns:
        conn.close()


@pytest.fixture
def snapshot_args():
    """The triad option that makes snapshots frequent; named here once so a
    rename of the option is a one-line change. (On redis, with
    TRIAD_TEST_REDIS_AOF=1: the nearest thing, AOF rewrites.)"""
    if TARGET == "redis":
        return ["--auto-aof-rewrite-min-size", "1mb", "--auto-aof-rewrite-percentage", "50"]
    return ["--snapshot-wal-bytes", "1048576"]


SYNCGATE = os.environ.get("TRIAD_SYNCGATE", str(REPO / "build" / "libsyncgate.so"))


def syncgate_env(**gates):
    """The environment for a server with the syncgate shim (syncgate.c)
    preloaded and its gates at the given directories, as
    syncgate_env(TRIAD_TEST_SYNC_GATE=dir)."""
    if not os.path.exists(SYNCGATE):
        pytest.fail("%s is missing: build it with `make build/libsyncgate.so`" % SYNCGATE)
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"LD_PRELOAD": SYNCGATE,
           # an ASan build must accept a preloaded library ahead of its runtime
           "ASAN_OPTIONS": "verify_asan_link_order=0" + (":" + asan if asan else "")}
    env.update({k: str(v) for k, v in gates.items()})
    return env


def durable_args(fsync="always"):
    """Server arguments for durable writes with the given fsync policy."""
    if TARGET == "redis":
        return ["--appendonly", "yes", "--appendfsync", fsync]
    return ["--fsync", fsync]


# ---------------------------------------------------------------- helpers

E_INT = Err("ERR value is not an integer or out of range")
E_FLOAT = Err("ERR value is not a valid float")
E_SYNTAX = Err("ERR syntax error")


def arity(name):
    return Err("ERR wrong number of arguments for '%s' command" % name)


def expire_err(name):
    return Err("ERR invalid expire time in '%s' command" % name)


def run_steps(c, steps):
    for i, (cmd, want) in enumerate(steps):
        got = c.cmd(*cmd)
        assert got == want, "step %d %r: got %r, want %r" % (i, cmd, got, want)


def wait_until(pred, timeout_s, interval_s=0.02):
    """Poll pred() until it is true or timeout_s passes; returns its last value."""
    deadline = time.monotonic() + timeout_s
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval_s)
