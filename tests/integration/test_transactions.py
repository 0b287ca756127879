"""Transactions: MULTI EXEC DISCARD WATCH UNWATCH."""
import pytest
import redis.exceptions

from conftest import E_INT, Err, arity, run_steps

E_EXECABORT = Err("EXECABORT Transaction discarded because of previous errors.")

CASES = {
    "multi_exec": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"), (("INCR", "a"), "QUEUED"),
                   (("GET", "a"), "QUEUED"), (("EXEC",), ["OK", 2, b"2"]), (("GET", "a"), b"2")],
    "empty_exec": [(("MULTI",), "OK"), (("EXEC",), [])],
    "discard": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"), (("DISCARD",), "OK"),
                (("EXISTS", "a"), 0), (("EXEC",), Err("ERR EXEC without MULTI"))],
    "exec_without_multi": [(("EXEC",), Err("ERR EXEC without MULTI"))],
    "discard_without_multi": [(("DISCARD",), Err("ERR DISCARD without MULTI"))],
    "nested_multi": [(("MULTI",), "OK"), (("MULTI",), Err("ERR MULTI calls can not be nested")),
                     (("SET", "a", "1"), "QUEUED"), (("EXEC",), ["OK"])],
    "unknown_command_aborts": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"),
                               (("NOSUCH",), Err("ERR unknown command 'NOSUCH', with args beginning with: ")),
                               (("EXEC",), E_EXECABORT), (("EXISTS", "a"), 0)],
    "arity_error_aborts": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"), (("GET",), arity("get")),
                           (("EXEC",), E_EXECABORT), (("EXISTS", "a"), 0)],
    # a subcommand is checked when it is queued, as a command is
    "unknown_subcommand_aborts": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"),
                                  (("CLIENT", "FOO"),
                                   Err("ERR unknown subcommand 'FOO'. Try CLIENT HELP.")),
                                  (("EXEC",), E_EXECABORT), (("EXISTS", "a"), 0)],
    "subcommand_arity_error_aborts": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"),
                                      (("CONFIG", "GET"), arity("config|get")),
                                      (("EXEC",), E_EXECABORT), (("EXISTS", "a"), 0)],
    # EXEC refused (here: an argument too many) takes the transaction with it
    "exec_with_arguments_discards": [(("MULTI",), "OK"), (("SET", "a", "1"), "QUEUED"),
                                     (("EXEC", "x"),
                                      Err("EXECABORT Transaction discarded because of: "
                                          "wrong number of arguments for 'exec' command")),
                                     (("EXEC",), Err("ERR EXEC without MULTI")),
                                     (("EXISTS", "a"), 0)],
    "runtime_error_does_not_abort": [(("SET", "s", "abc"), "OK"), (("MULTI",), "OK"),
                                     (("SET", "a", "1"), "QUEUED"), (("INCR", "s"), "QUEUED"),
                                     (("INCR", "a"), "QUEUED"), (("EXEC",), ["OK", E_INT, 2])],
    "watch_inside_multi": [(("MULTI",), "OK"),
                           (("WATCH", "a"), Err("ERR WATCH inside MULTI is not allowed")),
                           (("EXEC",), [])],
    "watch_unwatch_ok": [(("WATCH", "a", "b"), "OK"), (("UNWATCH",), "OK"), (("WATCH",), arity("watch"))],
    "watch_own_write_aborts": [(("WATCH", "a"), "OK"), (("SET", "a", "1"), "OK"), (("MULTI",), "OK"),
                               (("SET", "a", "2"), "QUEUED"), (("EXEC",), None), (("GET", "a"), b"1")],
    "unwatch_inside_multi_is_queued": [(("MULTI",), "OK"), (("UNWATCH",), "QUEUED"), (("EXEC",), ["OK"])],
    "select_inside_multi": [(("MULTI",), "OK"), (("SELECT", "1"), "QUEUED"), (("SET", "a", "1"), "QUEUED"),
                            (("EXEC",), ["OK", "OK"]), (("GET", "a"), b"1"), (("SELECT", "0"), "OK"),
                            (("EXISTS", "a"), 0)],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_transaction(c, name):
    run_steps(c, CASES[name])


def test_watch_aborts_when_another_client_writes(server, c):
    other = server.resp()
    try:
        assert c.cmd("SET", "bal", "10") == "OK"
        assert c.cmd("WATCH", "bal") == "OK"
        assert c.cmd("GET", "bal") == b"10"
        assert other.cmd("SET", "bal", "10") == "OK"  # same value still counts as a write
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "bal", "20") == "QUEUED"
        assert c.cmd("EXEC") is None
        assert c.cmd("GET", "bal") == b"10"
        # the watch is gone after EXEC: the next transaction commits
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "bal", "30") == "QUEUED"
        assert c.cmd("EXEC") == ["OK"]
    finally:
        other.close()


def test_watch_missing_key_aborts_when_created(server, c):
    other = server.resp()
    try:
        assert c.cmd("WATCH", "new") == "OK"
        assert other.cmd("SET", "new", "x") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "new", "y") == "QUEUED"
        assert c.cmd("EXEC") is None
    finally:
        other.close()


def test_watch_aborts_on_delete_and_on_expire_change(server, c):
    other = server.resp()
    try:
        for mutation in (("DEL", "w"), ("EXPIRE", "w", "100"), ("APPEND", "w", "x"),
                         ("RENAME", "w", "w2")):
            assert c.cmd("SET", "w", "1") == "OK"
            assert c.cmd("WATCH", "w") == "OK"
            assert other.cmd(*mutation) in (1, "OK", 2)
            assert c.cmd("MULTI") == "OK"
            assert c.cmd("GET", "w") == "QUEUED"
            assert c.cmd("EXEC") is None, mutation
            c.cmd("DEL", "w", "w2")
    finally:
        other.close()


def test_watch_in_other_db_is_a_different_key(server, c):
    other = server.resp()
    try:
        assert c.cmd("WATCH", "k") == "OK"
        assert other.cmd("SELECT", "1") == "OK"
        assert other.cmd("SET", "k", "x") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "k", "y") == "QUEUED"
        assert c.cmd("EXEC") == ["OK"]
    finally:
        other.close()


def test_unwatch_forgets_keys(server, c):
    other = server.resp()
    try:
        assert c.cmd("WATCH", "k") == "OK"
        assert c.cmd("UNWATCH") == "OK"
        assert other.cmd("SET", "k", "x") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "k", "y") == "QUEUED"
        assert c.cmd("EXEC") == ["OK"]
    finally:
        other.close()


def test_discard_forgets_watched_keys(server, c):
    other = server.resp()
    try:
        assert c.cmd("WATCH", "k") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("DISCARD") == "OK"
        assert other.cmd("SET", "k", "x") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "k", "y") == "QUEUED"
        assert c.cmd("EXEC") == ["OK"]
    finally:
        other.close()


def test_flushall_aborts_watchers(server, c):
    other = server.resp()
    try:
        assert c.cmd("SET", "k", "1") == "OK"
        assert c.cmd("WATCH", "k") == "OK"
        assert other.cmd("FLUSHALL") == "OK"
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "k", "y") == "QUEUED"
        assert c.cmd("EXEC") is None
    finally:
        other.close()


def test_failed_exec_is_null_in_resp3(server, r3):
    other = server.resp()
    try:
        assert r3.cmd("WATCH", "k") == "OK"
        assert other.cmd("SET", "k", "x") == "OK"
        assert r3.cmd("MULTI") == "OK"
        assert r3.cmd("SET", "k", "y") == "QUEUED"
        r3.send(b"*1\r\n$4\r\nEXEC\r\n")
        assert r3.f.readline() == b"_\r\n"
    finally:
        other.close()


def test_exec_aborted_is_nil_array_in_resp2(server, c):
    other = server.resp()
    try:
        assert c.cmd("WATCH", "k") == "OK"
        assert other.cmd("SET", "k", "x") == "OK"
        assert c.cmd("MULTI") == "OK"
        c.send(b"*1\r\n$4\r\nEXEC\r\n")
        assert c.f.readline() == b"*-1\r\n"
    finally:
        other.close()


def test_transaction_is_isolated_from_other_clients(server, c):
    other = server.resp()
    try:
        assert c.cmd("MULTI") == "OK"
        assert c.cmd("SET", "k", "1") == "QUEUED"
        assert other.cmd("GET", "k") is None  # nothing applied before EXEC
        assert c.cmd("EXEC") == ["OK"]
        assert other.cmd("GET", "k") == b"1"
    finally:
        other.close()


def test_redis_py_transaction_and_watch_error(server, r):
    with r.pipeline(transaction=True) as p:
        p.set("a", 1).incr("a").get("a")
        assert p.execute() == [True, 2, b"2"]
    other = server.client()
    with r.pipeline(transaction=True) as p:
        p.watch("a")
        other.set("a", 100)
        p.multi()
        p.set("a", 5)
        with pytest.raises(redis.exceptions.WatchError):
            p.execute()
    assert r.get("a") == b"100"
