# SPDX-License-Identifier: BSD-2-Clause
"""The connection's concurrency: no reader thread, a waiting call reads for every
other (leader/follower), and operations kept in flight from one thread
(Chan.send_async, Chan.recv_async, Conn.flush; after libchanclient's pipelining)."""

from __future__ import annotations

import threading
import time

import pytest

import chand
from chandtest import Server, unique, until, waiters_on

THREADS = 8
CALLS = 10000       # a thread's calls: CALLS / 2 sends, each received back


def test_threads_share_the_reading_without_crossing_replies(conn: chand.Conn) -> None:
    """8 threads, 10,000 calls each, on one connection: each thread gets exactly its
    own values back, in order, so no reply was lost or handed to another call."""
    chans = [conn.make(unique(), 1) for _ in range(THREADS)]
    errors: list = []

    def worker(k: int) -> None:
        ch = chans[k]
        try:
            for i in range(CALLS // 2):
                v = f"{k}:{i}".encode()
                ch.send(v, timeout=30)
                got = ch.recv(timeout=30)
                if got != (v, True):
                    errors.append((k, i, got))
                    return
        except chand.Error as e:
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert not conn._calls and conn._leader is None and not conn._followers


def test_reader_thread_is_gone(server: Server) -> None:
    """A connection starts no thread of its own: a lone caller reads its reply itself."""
    before = threading.active_count()
    c = server.dial()
    ch = c.make(unique(), 1)
    ch.send(b"x")
    assert ch.recv() == (b"x", True)
    assert threading.active_count() == before
    c.close()


def test_cancel_wakes_the_reading_call(conn: chand.Conn) -> None:
    """The only waiting call is the one polling the socket: a cancel from another
    thread still ends it at once, and leaves no waiter on the server."""
    ch = conn.make(unique(), 0)
    ctx = chand.with_cancel()
    err: list = []

    def blocked() -> None:
        try:
            ch.recv(ctx=ctx)
        except chand.Error as e:
            err.append(e)

    t = threading.Thread(target=blocked)
    t.start()
    until(lambda: waiters_on(conn, ch) == 1, what="the receive waiting")
    until(lambda: conn._leader == t.ident, what="the receive leads the reading")
    t0 = time.monotonic()
    ctx.cancel()
    t.join(10)
    assert not t.is_alive() and isinstance(err[0], chand.Canceled)
    assert time.monotonic() - t0 < 5
    until(lambda: waiters_on(conn, ch) == 0, what="no waiter left")


def test_followers_take_over_the_reading(conn: chand.Conn, conn2: chand.Conn) -> None:
    """Four calls wait at once; each ends in turn (the leader first or not) and every
    other is still answered: the reading passes on to a call still waiting."""
    chans = [conn.make(unique(), 0) for _ in range(4)]
    got: dict = {}

    def waiter(k: int) -> None:
        got[k] = chans[k].recv(timeout=30)

    threads = [threading.Thread(target=waiter, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    until(lambda: len(conn._followers) == 3, what="one leads, three follow")
    for k in range(4):
        conn2.handle(chans[k].name).send(f"v{k}".encode(), timeout=10)
        threads[k].join(10)
        assert not threads[k].is_alive() and got[k] == (f"v{k}".encode(), True)
    assert conn._leader is None and not conn._followers


def test_send_async_leaves_when_a_thread_waits(conn: chand.Conn, conn2: chand.Conn) -> None:
    """An asynchronous request stays queued until a wait, a flush or a blocking call,
    then leaves with the others in one write; the server runs them in order."""
    ch = conn.make(unique(), 100)
    ops = [ch.send_async(f"{i}".encode(), timeout=10) for i in range(50)]
    assert conn2.handle(ch.name).len() == 0         # nothing sent yet
    conn.flush()
    until(lambda: conn2.handle(ch.name).len() == 50, what="the queue written by flush")
    assert [op.wait() for op in ops] == [None] * 50
    recvs = [ch.recv_async(timeout=10) for _ in range(50)]
    assert [op.wait() for op in recvs] == [(f"{i}".encode(), True) for i in range(50)]
    more = ch.send_async(b"last")
    assert ch.recv(timeout=10) == (b"last", True)   # a blocking call writes the queue first
    assert more.wait() is None


def test_send_async_pipeline_keeps_depth(conn: chand.Conn, conn2: chand.Conn) -> None:
    """The pybench producer's loop: 16 in flight over a channel drained by a stream."""
    ch = conn.make(unique(), 64)
    n, got = 5000, []

    def consume() -> None:
        with conn2.handle(ch.name).stream(16, timeout=60) as s:
            for v in s:
                got.append(v)

    t = threading.Thread(target=consume)
    t.start()
    ops: list = []
    for i in range(n):
        if len(ops) == 16:
            ops.pop(0).wait()
        ops.append(ch.send_async(i.to_bytes(4, "big"), timeout=60))
    for op in ops:
        op.wait()
    ch.close()
    t.join(60)
    assert [int.from_bytes(v, "big") for v in got] == list(range(n))


def test_async_op_errors(conn: chand.Conn) -> None:
    """An operation's error is raised by its wait (again on a second wait); what the
    blocking form raises before sending is raised at once."""
    ch = conn.make(unique(), 0)
    ch.close()
    op = ch.send_async(b"x")
    with pytest.raises(chand.Closed):
        op.wait()
    with pytest.raises(chand.Closed):
        op.wait()
    assert ch.recv_async().wait() == (None, False)
    with pytest.raises(chand.Limit):
        ch.send_async(b"x" * (conn.info.max_value + 1))
    late = conn.make(unique(), 0).recv_async(timeout=0.1)
    t0 = time.monotonic()
    with pytest.raises(chand.DeadlineExceeded):
        late.wait()
    assert time.monotonic() - t0 < 5
    ctx = chand.with_cancel()
    ctx.cancel()
    with pytest.raises(chand.Canceled):
        ch.send_async(b"x", ctx=ctx)


def test_async_op_cancel_while_waiting(conn: chand.Conn) -> None:
    """A cancel of the op's context is acted on while wait waits: CANCEL is sent and
    the server keeps no waiter."""
    ch = conn.make(unique(), 0)
    ctx = chand.with_cancel()
    op = ch.recv_async(ctx=ctx)
    threading.Timer(0.05, ctx.cancel).start()
    with pytest.raises(chand.Canceled):
        op.wait()
    until(lambda: waiters_on(conn, ch) == 0, what="no waiter left")
