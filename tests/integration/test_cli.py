"""`triad cli`: the command-line client, checked against exact redis-cli 7
output.

Two kinds of server:
  * a canned-reply server in this file (FakeServer) that answers
    `REPLY <name>` with fixed RESP2/RESP3 bytes, sent one byte at a time, so
    every reply type (doubles, maps, pushes, attributes...) is shown whatever
    the real server supports, and the client's parser meets split reads;
  * a real server for sessions (-n, -a, -3, stdin, interactive): triad
    (`$TRIAD_BIN server`), or redis-server 7 when TRIAD_CLI_TEST_AGAINST=redis
    (or TRIAD_TEST_TARGET=redis).

The client under test is `$TRIAD_BIN cli`; TRIAD_CLI_CMD overrides it (a
command line, e.g. a test build of the client alone). Where redis-cli is
installed, each expected output is also checked against redis-cli itself, so
the expectations are redis-cli's, not ours.
"""
import os
import pty
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time
import fcntl
import termios

import pytest

import conftest
from conftest import HOST, REDIS_CLI_BIN, TARGET, TRIAD_BIN, Server, free_port, running_server

CLI_TARGET = "redis" if os.environ.get("TRIAD_CLI_TEST_AGAINST", "").lower() == "redis" else TARGET
CLI_CMD = shlex.split(os.environ["TRIAD_CLI_CMD"]) if os.environ.get("TRIAD_CLI_CMD") else [TRIAD_BIN, "cli"]
HAVE_REDIS_CLI = shutil.which(REDIS_CLI_BIN) is not None
RUN_TIMEOUT_S = 30
PTY_TIMEOUT_S = 10


def _check_cli_binary():
    exe = CLI_CMD[0]
    if shutil.which(exe) is None and not os.access(exe, os.X_OK):
        pytest.fail("client %s not found: build it (make) or set TRIAD_CLI_CMD" % exe)


def run_cli(port, *args, stdin=b"", prog=None, env=None):
    """Runs the client with stdout/stderr piped (so not a tty)."""
    if prog is None:
        _check_cli_binary()
        prog = CLI_CMD
    argv = list(prog) + ["-p", str(port)] + list(args)
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run(argv, input=stdin, capture_output=True, timeout=RUN_TIMEOUT_S, env=e)


# ------------------------------------------------------------ canned server


def _read_command(f):
    """One RESP multibulk command from a binary file, or None at EOF."""
    line = f.readline()
    if not line:
        return None
    assert line.startswith(b"*"), line
    args = []
    for _ in range(int(line[1:])):
        hdr = f.readline()
        n = int(hdr[1:])
        args.append(f.read(n + 2)[:-2])
    return args


class FakeServer:
    """Answers `REPLY name` with replies[name], one byte per send, and
    HELLO/AUTH/SELECT as a server would. Records the commands it got."""

    HELLO3 = (b"%3\r\n$6\r\nserver\r\n$4\r\nfake\r\n$5\r\nproto\r\n:3\r\n"
              b"$7\r\nmodules\r\n*0\r\n")

    def __init__(self, replies):
        self.replies = replies
        self.commands = []
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((HOST, 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                conn, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _reply_for(self, args):
        name = args[0].upper()
        if name == b"REPLY":
            return self.replies[args[1].decode()]
        if name == b"HELLO":
            return self.HELLO3
        if name in (b"AUTH", b"SELECT"):
            return b"+OK\r\n"
        return b"-ERR unknown command '%s'\r\n" % args[0]

    def _serve(self, conn):
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = conn.makefile("rb")
        try:
            while True:
                args = _read_command(f)
                if args is None:
                    return
                self.commands.append(args)
                data = self._reply_for(args)
                for i in range(len(data)):
                    conn.sendall(data[i:i + 1])
                    if i % 7 == 0:
                        time.sleep(0.0005)  # let the client see partial replies
        except OSError:
            return
        finally:
            f.close()
            conn.close()

    def close(self):
        self.stopping = True
        self.lsock.close()


# name -> (reply bytes, tty output, raw output). Expected outputs are
# redis-cli 7's; those redis-cli 7.0 cannot show (big numbers, attributes,
# blob errors)
# are marked in NOT_IN_REDIS_CLI_70.
BULK = b"a\"b\\\n\x01\xff\t\r\n \xc3\xa9"
REPLIES = {
    "status": (b"+OK\r\n", b"OK\n", b"OK\n"),
    "error": (b"-ERR bad thing\r\n", b"(error) ERR bad thing\n", b"ERR bad thing\n\n"),
    "integer": (b":-42\r\n", b"(integer) -42\n", b"-42\n"),
    "bulk": (b"$%d\r\n%s\r\n" % (len(BULK), BULK),
             b'"a\\"b\\\\\\n\\x01\\xff\\t\\r\\n \\xc3\\xa9"\n',
             b"a\"b\\\n\x01\xff\t\r\n \xc3\xa9\n"),
    "empty_bulk": (b"$0\r\n\r\n", b'""\n', b"\n"),
    "nil": (b"$-1\r\n", b"(nil)\n", b"\n"),
    "nil_array": (b"*-1\r\n", b"(nil)\n", b"\n"),
    "empty_array": (b"*0\r\n", b"(empty array)\n", b"\n"),
    "array": (b"*3\r\n$1\r\na\r\n$-1\r\n:7\r\n", b'1) "a"\n2) (nil)\n3) (integer) 7\n', b"a\n\n7\n"),
    "nested": (b"*4\r\n:1\r\n*3\r\n:2\r\n*2\r\n:3\r\n$1\r\na\r\n*0\r\n*0\r\n$1\r\nx\r\n",
               b'1) (integer) 1\n2) 1) (integer) 2\n   2) 1) (integer) 3\n      2) "a"\n'
               b'   3) (empty array)\n3) (empty array)\n4) "x"\n',
               b"1\n2\n3\na\n\n\nx\n"),
    "wide": (b"*10\r\n" + b"".join(b":%d\r\n" % i for i in range(10)),
             b"".join(b"%2d) (integer) %d\n" % (i + 1, i) for i in range(10)),
             b"".join(b"%d\n" % i for i in range(10))),
    "error_in_array": (b"*2\r\n:1\r\n-ERR inner\r\n", b"1) (integer) 1\n2) (error) ERR inner\n",
                       b"1\nERR inner\n\n"),
    "resp3_null": (b"_\r\n", b"(nil)\n", b"\n"),
    "double": (b",1.5\r\n", b"(double) 1.5\n", b"1.5\n"),
    "double_inf": (b",inf\r\n", b"(double) inf\n", b"inf\n"),
    "true": (b"#t\r\n", b"(true)\n", b"(true)\n"),
    "false": (b"#f\r\n", b"(false)\n", b"(false)\n"),
    "verbatim": (b"=19\r\ntxt:two\nlines here!\r\n", b"two\nlines here!\n", b"two\nlines here!\n"),
    "blob_error": (b"!13\r\nERR blob fail\r\n", b"(error) ERR blob fail\n", b"ERR blob fail\n\n"),
    "map": (b"%2\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n#f\r\n", b'1# "a" => (integer) 1\n2# "b" => (false)\n',
            b"a 1\nb (false)\n"),
    "map_multiline_value": (b"%2\r\n$1\r\na\r\n*2\r\n:1\r\n:2\r\n$1\r\nb\r\n*1\r\n:3\r\n",
                            b'1# "a" => \n   1) (integer) 1\n   2) (integer) 2\n2# "b" => 1) (integer) 3\n',
                            b"a 1\n2\nb 3\n"),
    "empty_map": (b"%0\r\n", b"(empty hash)\n", b"\n"),
    "set": (b"~2\r\n$1\r\nx\r\n$1\r\ny\r\n", b'1~ "x"\n2~ "y"\n', b"x\ny\n"),
    "empty_set": (b"~0\r\n", b"(empty set)\n", b"\n"),
    "push_then_reply": (b">2\r\n$7\r\nmessage\r\n$2\r\nhi\r\n+OK\r\n", b"OK\n", b"OK\n"),
    "bignum": (b"(3492890328409238509324850943850943825024385\r\n",
               b"(big number) 3492890328409238509324850943850943825024385\n",
               b"3492890328409238509324850943850943825024385\n"),
    "attribute_then_reply": (b"|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n:5\r\n",
                             b"(integer) 5\n", b"5\n"),
}
NOT_IN_REDIS_CLI_70 = {"bignum", "attribute_then_reply", "blob_error"}


@pytest.fixture(scope="module")
def fake():
    s = FakeServer({k: v[0] for k, v in REPLIES.items()})
    yield s
    s.close()


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_cli_shows_each_reply_type_raw_when_stdout_is_not_a_tty(fake, name):
    p = run_cli(fake.port, "REPLY", name)
    assert p.stdout == REPLIES[name][2]
    assert p.returncode == 0


@pytest.mark.parametrize("name", sorted(REPLIES))
def test_cli_shows_each_reply_type_formatted_with_no_raw(fake, name):
    p = run_cli(fake.port, "--no-raw", "REPLY", name)
    assert p.stdout == REPLIES[name][1]
    assert p.returncode == 0


@pytest.mark.skipif(not HAVE_REDIS_CLI, reason="redis-cli not installed")
@pytest.mark.parametrize("name", sorted(set(REPLIES) - NOT_IN_REDIS_CLI_70))
def test_cli_expectations_are_what_redis_cli_prints(fake, name):
    for mode, idx in (("--raw", 2), ("--no-raw", 1)):
        p = run_cli(fake.port, mode, "REPLY", name, prog=[REDIS_CLI_BIN])
        assert p.stdout == REPLIES[name][idx], mode


def test_cli_uses_the_formatted_style_when_stdout_is_a_terminal(fake):
    """On a real tty (script(1)) the default is the formatted style."""
    _check_cli_binary()
    if shutil.which("script") is None:
        pytest.skip("script(1) not installed")
    cmd = " ".join(shlex.quote(a) for a in CLI_CMD + ["-p", str(fake.port), "REPLY", "nested"])
    p = subprocess.run(["script", "-qc", cmd, "/dev/null"], capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=RUN_TIMEOUT_S)
    assert p.stdout.replace(b"\r\n", b"\n") == REPLIES["nested"][1]


def test_cli_sends_auth_select_and_hello_in_redis_cli_order(fake):
    fake.commands.clear()
    p = run_cli(fake.port, "-a", "pw", "-n", "2", "-3", "REPLY", "status")
    assert p.stdout == b"OK\n"
    assert fake.commands == [[b"AUTH", b"pw"], [b"SELECT", b"2"], [b"HELLO", b"3"],
                             [b"REPLY", b"status"]]
    assert b"Warning: Using a password" in p.stderr


def test_cli_user_and_uri_options_send_acl_style_auth(fake):
    fake.commands.clear()
    run_cli(fake.port, "--user", "alice", "-a", "pw", "--no-auth-warning", "REPLY", "status")
    uri = "redis://bob:p%%40ss@127.0.0.1:%d/3" % fake.port
    p = run_cli(fake.port, "-u", uri, "--no-auth-warning", "REPLY", "status")
    assert p.stderr == b""
    assert fake.commands == [[b"AUTH", b"alice", b"pw"], [b"REPLY", b"status"],
                             [b"AUTH", b"bob", b"p@ss"], [b"SELECT", b"3"], [b"REPLY", b"status"]]


def test_cli_exits_1_on_protocol_garbage(fake):
    fake.replies["garbage"] = b"?what\r\n"
    p = run_cli(fake.port, "REPLY", "garbage")
    assert p.returncode == 1
    assert b"Protocol error" in p.stderr


def test_cli_parses_replies_nested_to_the_depth_limit_and_refuses_deeper(fake):
    depth_max = 128  # CLI_REPLY_DEPTH_MAX
    fake.replies["deep_ok"] = b"*1\r\n" * depth_max + b":1\r\n"
    fake.replies["too_deep"] = b"*1\r\n" * (depth_max + 1) + b":1\r\n"
    p = run_cli(fake.port, "REPLY", "deep_ok")
    assert (p.returncode, p.stdout) == (0, b"1\n")
    p = run_cli(fake.port, "REPLY", "too_deep")
    assert p.returncode == 1
    assert b"nested too deeply" in p.stderr


def test_cli_refuses_a_bulk_longer_than_proto_max_bulk_len(fake):
    bulk_len_max = 512 * 1024 * 1024  # CLI_REPLY_BULK_LEN_MAX
    fake.replies["bulk_too_long"] = b"$%d\r\n" % (bulk_len_max + 1)
    p = run_cli(fake.port, "REPLY", "bulk_too_long")
    assert p.returncode == 1
    assert b"invalid bulk length" in p.stderr


# ------------------------------------------------------------ real server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from running_server(tmp_path_factory, "cli", target=CLI_TARGET)


@pytest.fixture
def fresh(srv):
    c = srv.resp()
    assert c.cmd("FLUSHALL") == "OK"
    c.close()
    return srv


def test_cli_one_shot_set_get_incr(fresh):
    port = fresh.port
    assert run_cli(port, "SET", "k", "v").stdout == b"OK\n"
    assert run_cli(port, "GET", "k").stdout == b"v\n"
    assert run_cli(port, "--no-raw", "GET", "k").stdout == b'"v"\n'
    assert run_cli(port, "GET", "missing").stdout == b"\n"
    assert run_cli(port, "--no-raw", "GET", "missing").stdout == b"(nil)\n"
    assert run_cli(port, "--no-raw", "INCR", "n").stdout == b"(integer) 1\n"
    assert run_cli(port, "INCR", "n").stdout == b"2\n"
    assert run_cli(port, "--no-raw", "MGET", "k", "missing").stdout == b'1) "v"\n2) (nil)\n'
    assert run_cli(port, "MGET", "k", "missing").stdout == b"v\n\n"


def test_cli_arguments_keep_binary_bytes(fresh):
    value = "a b\t\"q\"\\é"
    assert run_cli(fresh.port, "SET", "bin", value).stdout == b"OK\n"
    assert run_cli(fresh.port, "--no-raw", "GET", "bin").stdout == b'"a b\\t\\"q\\"\\\\\\xc3\\xa9"\n'


def test_cli_error_reply_exit_code_is_0_and_1_with_e_as_in_redis_cli(fresh):
    p = run_cli(fresh.port, "GET")
    assert p.returncode == 0
    assert p.stdout == b"ERR wrong number of arguments for 'get' command\n\n"
    p = run_cli(fresh.port, "--no-raw", "GET")
    assert p.stdout == b"(error) ERR wrong number of arguments for 'get' command\n"
    p = run_cli(fresh.port, "-e", "GET")
    assert p.returncode == 1
    assert p.stdout == b""
    assert p.stderr == b"ERR wrong number of arguments for 'get' command\n"


def test_cli_connection_refused_exits_1():
    port = free_port()  # nothing listens there
    p = run_cli(port, "PING")
    assert p.returncode == 1
    assert p.stderr == b"Could not connect to Redis at 127.0.0.1:%d: Connection refused\n" % port


def test_cli_n_selects_the_database(fresh):
    assert run_cli(fresh.port, "-n", "2", "SET", "dbk", "two").stdout == b"OK\n"
    assert run_cli(fresh.port, "GET", "dbk").stdout == b"\n"
    assert run_cli(fresh.port, "-n", "2", "GET", "dbk").stdout == b"two\n"


def test_cli_a_authenticates_to_a_password_protected_server(tmp_path):
    s = Server(tmp_path, password="s3cret", target=CLI_TARGET)
    s.start()
    try:
        p = run_cli(s.port, "PING")
        assert p.stdout.startswith(b"NOAUTH")
        p = run_cli(s.port, "-a", "s3cret", "PING")
        assert p.stdout == b"PONG\n"
        assert b"Warning" in p.stderr
        p = run_cli(s.port, "-a", "s3cret", "--no-auth-warning", "SET", "x", "1")
        assert (p.stdout, p.stderr) == (b"OK\n", b"")
        p = run_cli(s.port, "-u", "redis://:s3cret@127.0.0.1:%d" % s.port, "--no-auth-warning", "GET", "x")
        assert p.stdout == b"1\n"
    finally:
        s.stop()


def test_cli_shutdown_succeeds_quietly_as_in_redis_cli(tmp_path):
    s = Server(tmp_path, target=CLI_TARGET)
    s.start()
    try:
        p = run_cli(s.port, "SHUTDOWN")
        assert (p.returncode, p.stdout, p.stderr) == (0, b"", b"")
        assert s.wait_exit(15.0) == 0
    finally:
        s.stop()


def test_cli_3_speaks_resp3(fresh):
    p = run_cli(fresh.port, "-3", "--no-raw", "HELLO", "3")
    lines = p.stdout.decode().splitlines()
    assert lines[0].startswith('1# "server" => "')
    assert '3# "proto" => (integer) 3' in lines
    p = run_cli(fresh.port, "-3", "--no-raw", "GET", "missing")
    assert p.stdout == b"(nil)\n"


def test_cli_reads_commands_from_stdin(fresh):
    p = run_cli(fresh.port, stdin=b'SET x 1\nINCR x\n\nGET "x"\nGET\n')
    assert p.stdout == b"OK\n2\n2\nERR wrong number of arguments for 'get' command\n\n"
    assert p.returncode == 0


def test_cli_splits_lines_with_redis_cli_quoting(fresh):
    p = run_cli(fresh.port, stdin=b'SET q "a\\x41\\n b"\nSET s \'it\\\'s\'\nSET "bad\n')
    assert p.stdout == b"OK\nOK\nInvalid argument(s)\n"
    assert run_cli(fresh.port, "--no-raw", "GET", "q").stdout == b'"aA\\n b"\n'
    assert run_cli(fresh.port, "GET", "s").stdout == b"it's\n"


def test_cli_x_reads_the_last_argument_from_stdin(fresh):
    assert run_cli(fresh.port, "-x", "SET", "big", stdin=b"hello\nworld").stdout == b"OK\n"
    assert run_cli(fresh.port, "GET", "big").stdout == b"hello\nworld\n"


def test_cli_r_repeats_the_command(fresh):
    assert run_cli(fresh.port, "-r", "3", "INCR", "rep").stdout == b"1\n2\n3\n"
    assert run_cli(fresh.port, "-r", "2", "-i", "0.01", "--no-raw", "INCR", "rep").stdout == \
        b"(integer) 4\n(integer) 5\n"


def test_cli_help_exits_0():
    _check_cli_binary()
    p = subprocess.run(CLI_CMD + ["--help"], capture_output=True, timeout=RUN_TIMEOUT_S)
    assert p.returncode == 0
    assert b"Usage:" in p.stdout


# ------------------------------------------------------------ interactive


class Pty:
    """The client on a pseudo-terminal, as a person would run it."""

    def __init__(self, port, env):
        _check_cli_binary()
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 200, 0, 0))
        e = dict(os.environ)
        e.update(env)
        e["TERM"] = "xterm"
        self.proc = subprocess.Popen(CLI_CMD + ["-p", str(port)], stdin=slave, stdout=slave,
                                     stderr=slave, env=e, start_new_session=True)
        os.close(slave)
        self.fd = master
        self.out = b""

    def expect(self, pattern, timeout_s=PTY_TIMEOUT_S):
        """Reads until pattern appears after what earlier expects consumed."""
        deadline = time.monotonic() + timeout_s
        while pattern not in self.out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("did not see %r; got %r" % (pattern, self.out))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    data = os.read(self.fd, 4096)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError("client exited before %r; got %r" % (pattern, self.out))
                self.out += data
        seen, self.out = self.out.split(pattern, 1)
        return seen

    def send(self, data):
        os.write(self.fd, data)

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout=PTY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        os.close(self.fd)


def test_cli_interactive_session_on_a_pty(fresh, tmp_path):
    hist = tmp_path / "hist"
    t = Pty(fresh.port, {"TRIADCLI_HISTFILE": str(hist), "HOME": str(tmp_path)})
    try:
        prompt = b"127.0.0.1:%d> " % fresh.port
        t.expect(prompt)
        t.send(b"SET a 1\r")
        t.expect(b"OK\r\n")
        t.expect(prompt)
        t.send(b"GET a\r")
        t.expect(b'"1"\r\n')
        t.expect(prompt)
        t.send(b"SELECT 2\r")
        t.expect(b"OK\r\n")
        t.expect(b"127.0.0.1:%d[2]> " % fresh.port)
        t.send(b"get ")  # the hint: the rest of GET's syntax, in grey
        t.expect(b"\x1b[90mkey")
        t.send(b"\x15ech\t")  # Ctrl-U, then TAB completes ECHO
        t.expect(b"o ")
        t.send(b'"x\\x41y"\r')
        t.expect(b'"xAy"\r\n')
        t.send(b"quit\r")
        assert t.proc.wait(timeout=PTY_TIMEOUT_S) == 0
    finally:
        t.close()
    saved = hist.read_bytes()
    assert b"SET" in saved and b"GET" in saved


def test_cli_interactive_shows_not_connected_and_reconnects(tmp_path, monkeypatch):
    port = free_port()
    t = Pty(port, {"TRIADCLI_HISTFILE": "/dev/null"})
    s = Server(tmp_path, target=CLI_TARGET)
    try:
        t.expect(b"Could not connect to Redis at 127.0.0.1:%d: Connection refused" % port)
        t.expect(b"not connected> ")
        # start a server on the very port the client was given
        monkeypatch.setattr(conftest, "free_port", lambda: port)
        s.start()
        t.send(b"PING\r")
        t.expect(b"PONG\r\n")
        t.expect(b"127.0.0.1:%d> " % port)
        t.send(b"quit\r")
        assert t.proc.wait(timeout=PTY_TIMEOUT_S) == 0
    finally:
        t.close()
        s.stop()
