# SPDX-License-Identifier: BSD-2-Clause
"""Channel semantics against a real chand: Go's rules, values, errors, connections
(after tests/test_client.c and test_client_chan.c)."""

from __future__ import annotations

import re
import threading
import time

import pytest

import chand
from chandtest import Server, unique, until, waiters_on


def test_dial_and_info(server: Server, conn: chand.Conn) -> None:
    assert conn.info.version == 1
    assert conn.info.server.startswith("chand ")
    assert conn.info.max_value > 0 and conn.info.max_stream_credit > 0
    conn.ping(timeout=5)
    assert not conn.closed


def test_dial_unix(server: Server) -> None:
    for addr in (f"unix:{server.sock}", str(server.sock)):
        with chand.dial(addr) as c:
            c.ping()


def test_dial_errors(server: Server, tmp_path) -> None:
    with pytest.raises(ValueError):
        chand.dial("tcp://")
    with pytest.raises(chand.DialError) as ei:
        chand.dial(f"unix:{tmp_path}/nothing.sock")
    assert isinstance(ei.value.__cause__, OSError)
    with pytest.raises(chand.Canceled):
        ctx = chand.with_cancel()
        ctx.cancel()
        chand.dial(server.addr, ctx=ctx)


def test_make_open(conn: chand.Conn, conn2: chand.Conn) -> None:
    name = unique()
    ch = conn.make(name, 3)
    assert ch.name == name and ch.cap == 3
    assert conn.make(name, 3).name == name          # same cap: opens
    with pytest.raises(chand.Exists):
        conn.make(name, 4)
    assert conn2.open(name).cap == 3
    with pytest.raises(chand.NotFound):
        conn2.open(unique())
    h = conn2.handle(name)
    assert h.cap == 3 and len(h) == 0                 # asked of the server
    assert h == conn2.handle(name) and h != ch and bool(h)


def test_anonymous_names(conn: chand.Conn) -> None:
    a, b = conn.make(), conn.make(None, 2)
    for ch in (a, b):
        assert re.fullmatch(r"~[0-9a-f]{32}", ch.name)
        assert ch.info().anonymous
    assert a.name != b.name and b.cap == 2


def test_anonymous_goes_with_its_connection(server: Server, conn: chand.Conn) -> None:
    c = server.dial()
    ch = c.make()
    assert conn.handle(ch.name).info().anonymous
    c.close()
    until(lambda: _gone(conn, ch.name), what="anonymous channel deleted")


def _gone(conn: chand.Conn, name: str) -> bool:
    try:
        conn.handle(name).info()
    except chand.NotFound:
        return True
    return False


def test_buffered_fifo_len_cap(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 3)
    for v in (b"1", b"2", b"3"):
        ch.send(v)
    assert len(ch) == 3 and ch.len() == 3 and ch.get_cap() == 3
    info = ch.info()
    assert (info.len, info.cap, info.closed) == (3, 3, False) and info.bytes >= 3
    assert not ch.try_send(b"4")                      # full: would block
    assert [ch.recv() for _ in range(3)] == [(b"1", True), (b"2", True), (b"3", True)]
    assert ch.try_recv() is None                      # empty: would block


def test_rendezvous(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    done = threading.Event()

    def sender() -> None:
        ch.send(b"hi")
        done.set()

    t = threading.Thread(target=sender)
    t.start()
    until(lambda: ch.info().senders == 1, what="sender waiting")
    assert not done.is_set()                          # nobody took it: still blocked
    assert conn2.handle(ch.name).recv(timeout=10) == (b"hi", True)
    assert done.wait(10)
    t.join()


def test_close_then_drain_and_range(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4)
    for v in (b"a", b"b", "c"):
        ch.send(v)
    ch.close()
    with pytest.raises(chand.Closed):
        ch.send(b"x")
    with pytest.raises(chand.Closed):
        ch.close()
    assert ch.info().closed
    assert list(ch) == [b"a", b"b", b"c"]            # the range ends once drained
    assert ch.recv() == (None, False)
    assert ch.try_recv() == (None, False)


def test_close_wakes_receivers_and_senders(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    results: list = []

    def receiver() -> None:
        results.append(conn2.handle(ch.name).recv())

    def sender() -> None:
        try:
            conn2.handle(ch.name).send(b"x")
        except chand.Closed as e:
            results.append(e)

    threads = [threading.Thread(target=receiver)]
    threads[0].start()
    until(lambda: ch.info().receivers == 1)
    ch.close()
    threads[0].join(10)
    assert results == [(None, False)]
    ch2 = conn.make(unique(), 0)
    ch = ch2
    threads = [threading.Thread(target=sender)]
    threads[0].start()
    until(lambda: ch2.info().senders == 1)
    ch2.close()
    threads[0].join(10)
    assert isinstance(results[1], chand.Closed)


def test_delete(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 4)
    ch.send(b"1")
    ch.send(b"2")
    assert ch.delete() == 2
    with pytest.raises(chand.NotFound):
        ch.send(b"x")
    # a waiter of a deleted channel gets NOT_FOUND
    ch = conn.make(unique(), 0)
    err: list = []
    t = threading.Thread(target=lambda: _catch(err, lambda: conn2.handle(ch.name).recv()))
    t.start()
    until(lambda: ch.info().receivers == 1)
    assert ch.delete() == 0
    t.join(10)
    assert isinstance(err[0], chand.NotFound)


def _catch(out: list, fn) -> None:
    try:
        out.append(fn())
    except chand.Error as e:
        out.append(e)


def test_values_bytes_str_and_sizes(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4)
    ch.send(b"")
    ch.send("héllo")
    ch.send(bytearray(b"\x00\xff"))
    assert [ch.recv()[0] for _ in range(3)] == [b"", "héllo".encode(), b"\x00\xff"]
    big = b"x" * conn.info.max_value
    ch.send(big)
    assert ch.recv() == (big, True)
    with pytest.raises(chand.Limit):                 # checked before anything is sent
        ch.send(big + b"x")
    with pytest.raises(TypeError):
        ch.send(42)
    with pytest.raises(TypeError):
        ch.send(chand.ErrorValue("no"))
    conn.ping()                                       # the connection is fine


def test_channel_references(conn: chand.Conn, conn2: chand.Conn) -> None:
    chans = conn.make(unique(), 2)
    inner = conn.make(None, 1)
    inner.send(b"inside")
    chans.send(inner)                                 # chan chan: a reference
    v, ok = conn2.handle(chans.name).recv()
    assert ok and isinstance(v, chand.Chan)
    assert v.name == inner.name and v.conn is conn2  # bound to the receiving connection
    assert v.recv() == (b"inside", True)


def test_server_errors(conn: chand.Conn) -> None:
    with pytest.raises(chand.BadRequest):
        conn.make("~mine", 0)                         # reserved for anonymous channels
    with pytest.raises(chand.BadRequest):
        conn.make("bad\x01name", 0)
    with pytest.raises(chand.BadRequest):
        conn.make("x" * 256, 0)
    with pytest.raises(chand.Limit):
        conn.make(unique(), 1 << 40)
    with pytest.raises(chand.NotFound):
        conn.handle(unique()).send(b"x")
    with pytest.raises(chand.NotFound):
        conn.handle(unique()).info()
    with pytest.raises(TypeError):
        conn.make(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        conn.make(unique(), -1)
    conn.ping()                                        # every error left it usable


def test_many_threads_one_connection(conn: chand.Conn) -> None:
    """Pipelining: 8 senders and 8 receivers share one connection."""
    ch = conn.make(unique(), 0)
    n, per = 8, 50
    got: list = []
    lock = threading.Lock()

    def send_all(k: int) -> None:
        for i in range(per):
            ch.send(f"{k}:{i}")

    def recv_all() -> None:
        for _ in range(per):
            v, ok = ch.recv(timeout=30)
            with lock:
                got.append(v)

    threads = [threading.Thread(target=send_all, args=(k,)) for k in range(n)]
    threads += [threading.Thread(target=recv_all) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(got) == sorted(f"{k}:{i}".encode() for k in range(n) for i in range(per))
    # each sender's values arrive in its order
    for k in range(n):
        mine = [int(v.split(b":")[1]) for v in got if v.startswith(f"{k}:".encode())]
        assert len(mine) == per


def test_fifo_waiters(conn: chand.Conn, server: Server) -> None:
    """Blocked receivers are served first come, first served."""
    ch = conn.make(unique(), 0)
    conns = [server.dial() for _ in range(3)]
    got: dict = {}
    threads = []
    for i, c in enumerate(conns):
        t = threading.Thread(target=lambda i=i, c=c: got.__setitem__(i, c.handle(ch.name).recv()))
        t.start()
        threads.append(t)
        until(lambda i=i: ch.info().receivers == i + 1)
    for v in (b"0", b"1", b"2"):
        ch.send(v)
    for t in threads:
        t.join(10)
    assert got == {0: (b"0", True), 1: (b"1", True), 2: (b"2", True)}
    for c in conns:
        c.close()


def test_close_connection_fails_pending_and_later_calls(server: Server, conn: chand.Conn) -> None:
    c = server.dial()
    ch = c.make(unique(), 0)
    err: list = []
    t = threading.Thread(target=lambda: _catch(err, ch.recv))
    t.start()
    until(lambda: conn.handle(ch.name).info().receivers == 1)
    c.close()
    t.join(10)
    assert not t.is_alive() and isinstance(err[0], chand.ConnectionLost)
    with pytest.raises(chand.ConnectionLost):
        ch.send(b"x")
    c.close()                                          # idempotent
    # the server dropped the waiter with the connection
    until(lambda: conn.handle(ch.name).info().receivers == 0, what="waiter gone")


def test_disconnect_leaves_no_waiter(server: Server, conn: chand.Conn) -> None:
    """A client that goes away takes its waiters with it: a recv, a send, a select."""
    a, b = conn.make(unique(), 0), conn.make(unique(), 0)
    c = server.dial()
    ca, cb = c.handle(a.name), c.handle(b.name)
    threads = [threading.Thread(target=_catch, args=([], fn)) for fn in (
        ca.recv, lambda: cb.send(b"v"),
        lambda: chand.select(chand.recv(ca), chand.send(cb, b"w")))]
    for t in threads:
        t.start()
    until(lambda: waiters_on(conn, a) == 2 and waiters_on(conn, b) == 2, what="4 waiters")
    c.close()
    for t in threads:
        t.join(10)
    until(lambda: waiters_on(conn, a) + waiters_on(conn, b) == 0, what="no waiter left")


def test_conn_is_context_manager(server: Server) -> None:
    with server.dial() as c:
        c.ping()
    assert c.closed
    with pytest.raises(chand.ConnectionLost):
        c.ping()


def test_server_shutdown_fails_pending_calls() -> None:
    s = Server()
    try:
        with s.dial() as c:
            ch = c.make("x", 0)
            err: list = []
            t = threading.Thread(target=_catch, args=(err, ch.recv))
            t.start()
            until(lambda: c.stats()["waiters"] == 1)
            t0 = time.monotonic()
            s.proc.terminate()
            t.join(10)
            assert time.monotonic() - t0 < 10
            assert isinstance(err[0], chand.ShuttingDown), err
            with pytest.raises((chand.ConnectionLost, chand.ShuttingDown)):
                until(lambda: c.ping() and False, what="connection closed")
    finally:
        assert s.stop() == 0


def test_server_killed_fails_pending_calls() -> None:
    s = Server()
    try:
        with s.dial() as c:
            ch = c.make("x", 0)
            err: list = []
            t = threading.Thread(target=_catch, args=(err, ch.recv))
            t.start()
            until(lambda: c.stats()["waiters"] == 1)
            s.proc.kill()
            t.join(10)
            assert isinstance(err[0], chand.ConnectionLost)
    finally:
        s.stop()


def test_protocol_error_from_chand(server: Server) -> None:
    """A malformed frame (written past the codec): chand answers [0, PROTOCOL, msg] and
    closes; the client fails with ProtocolError, the server's message kept."""
    c = server.dial()
    c._t.sendall(b"\x00\x00\x00\x01\xc1")
    until(lambda: c.closed, what="connection closed by chand")
    with pytest.raises(chand.ProtocolError) as ei:
        c.ping()
    assert ei.value.message
    c.close()
