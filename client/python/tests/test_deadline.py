# SPDX-License-Identifier: BSD-2-Clause
"""Deadlines and cancellation (after tests/test_client_deadline.c): the budget on the
wire in µs exactly as libchanclient sends it, the server ending waits on time and
leaving no waiter, cancel from another thread, and a matched value never lost."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import chand
import chand.aio
from chandtest import FakeServer, frame, read_frame, unique, until


def test_deadline_recv_send_leave_nothing(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    t0 = time.monotonic()
    with pytest.raises(chand.DeadlineExceeded):
        ch.recv(timeout=0.2)
    elapsed = time.monotonic() - t0
    assert 0.2 <= elapsed < 5
    with pytest.raises(chand.DeadlineExceeded):
        ch.send(b"x", ctx=chand.with_timeout(None, 0.1))
    info = ch.info()
    assert info.senders == 0 and info.receivers == 0 and info.len == 0


def test_deadline_earlier_of_ctx_and_timeout(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    ctx = chand.with_timeout(None, 60)
    t0 = time.monotonic()
    with pytest.raises(chand.DeadlineExceeded):
        ch.recv(ctx=ctx, timeout=0.1)
    assert time.monotonic() - t0 < 5 and ctx.err() is None


def test_wait_on_the_wire() -> None:
    """wait = the remaining budget in µs, rounded up; nil without one; 0 for try forms;
    nil for operations that do not wait."""
    def script(sock) -> None:
        for _ in range(5):
            req = read_frame(sock)
            fake.requests.append(req)
            op, rid = req[0], req[1]
            if op == 6 and req[2] == 0:
                sock.sendall(frame([rid, 2, "not ready"]))
            elif op == 6:
                sock.sendall(frame([rid, 0, b"v", True]))
            else:
                sock.sendall(frame([rid, 0, "x", 0, True]))

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    ch = c.handle("x")
    ch.recv(ctx=chand.with_timeout(None, 2.0))
    ch.recv(timeout=0.5)
    ch.recv()
    assert ch.try_recv() is None
    c.make("x", 0, timeout=3)
    c.close()
    fake.close()
    waits = [r[2] for r in fake.requests[1:]]
    assert 1_900_000 < waits[0] <= 2_000_000
    assert 400_000 < waits[1] <= 500_000
    assert waits[2:] == [None, 0, None]
    assert fake.requests[0][:3] == [1, 1, None] and fake.requests[0][3:5] == [1, "chand-python"]


def test_done_context_sends_nothing() -> None:
    def script(sock) -> None:
        fake.requests.append(read_frame(sock))
        sock.sendall(frame([fake.requests[-1][1], 0]))

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    ctx = chand.with_cancel()
    ctx.cancel()
    with pytest.raises(chand.Canceled):
        c.handle("x").recv(ctx=ctx)
    with pytest.raises(chand.DeadlineExceeded):
        c.handle("x").recv(timeout=0)
    c.ping()
    c.close()
    fake.close()
    assert [r[0] for r in fake.requests] == [1, 2]    # HELLO, then the PING only


def test_cancel_from_another_thread(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    ctx = chand.with_cancel()
    out: list = []

    def recv() -> None:
        try:
            ch.recv(ctx=ctx)
        except chand.Error as e:
            out.append((e, time.monotonic()))

    t = threading.Thread(target=recv)
    t.start()
    until(lambda: ch.info().receivers == 1)
    t0 = time.monotonic()
    ctx.cancel()
    t.join(10)
    assert isinstance(out[0][0], chand.Canceled)
    assert out[0][1] - t0 < 5
    # the call returned once the server confirmed: no waiter is left
    assert ch.info().receivers == 0


def test_parent_cancel_reaches_calls(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    parent = chand.with_cancel()
    child = chand.with_value(chand.with_timeout(parent, 60), "k", 1)
    out: list = []
    t = threading.Thread(target=lambda: _catch(out, lambda: ch.send(b"x", ctx=child)))
    t.start()
    until(lambda: ch.info().senders == 1)
    parent.cancel()
    t.join(10)
    assert isinstance(out[0], chand.Canceled)
    assert ch.info().senders == 0


def _catch(out: list, fn) -> None:
    try:
        out.append(fn())
    except chand.Error as e:
        out.append(e)


def test_cancel_race_keeps_values(conn: chand.Conn, conn2: chand.Conn) -> None:
    """Cancel racing a send: a value the server matched is returned, never lost."""
    ch = conn.make(unique(), 0)
    peer = conn2.handle(ch.name)
    matched = 0
    for i in range(40):
        ctx = chand.with_cancel()
        got: list = []
        t = threading.Thread(target=lambda: _catch(got, lambda: ch.recv(ctx=ctx)))
        t.start()
        until(lambda: ch.info().receivers == 1)
        v = str(i).encode()
        sender = threading.Thread(target=lambda: peer.try_send(v) and got.append("sent"))
        sender.start()
        ctx.cancel()
        sender.join(10)
        t.join(10)
        if "sent" in got:
            assert (v, True) in got, got              # the send matched our receiver
            matched += 1
        else:
            assert any(isinstance(g, chand.Canceled) for g in got), got
        assert ch.info().receivers == 0


async def test_aio_deadlines_when_the_server_is_silent() -> None:
    """asyncio: the calls waiting with a deadline share one timer (aio.Conn._arm), set
    at the earliest; a call with an earlier deadline than the timer's, waiting after it,
    still gives up on its own time (its deadline, then cancel_grace), and so does the
    later one, once the timer re-armed for it."""
    def script(sock) -> None:
        while True:
            fake.requests.append(read_frame(sock))

    fake = FakeServer(script)
    c = await chand.aio.dial(fake.addr, cancel_grace=0.1)
    t0 = time.monotonic()

    async def gives_up(timeout: float) -> float:
        with pytest.raises(chand.DeadlineExceeded):
            await c.handle("x").recv(timeout=timeout)
        return time.monotonic() - t0

    # gather runs its tasks in order: the later deadline waits (and arms the timer) first;
    # the early call ends before the late one's deadline, the late one at all
    late, early = await asyncio.wait_for(asyncio.gather(gives_up(2.0), gives_up(0.2)), 20)
    assert 0.3 <= early < 2.0 and 2.1 <= late, (early, late)
    await c.close()
    fake.close()


def test_cancel_grace_when_the_server_is_silent() -> None:
    """A server that never confirms: the call gives up after cancel_grace, with CANCEL sent."""
    got_recv = threading.Event()

    def script(sock) -> None:
        while True:
            fake.requests.append(read_frame(sock))
            got_recv.set()

    fake = FakeServer(script)
    c = chand.dial(fake.addr, cancel_grace=0.2)
    ctx = chand.with_cancel()
    canceled_at: list = []

    def cancel_once_sent() -> None:
        got_recv.wait(10)
        canceled_at.append(time.monotonic())
        ctx.cancel()

    threading.Thread(target=cancel_once_sent).start()
    with pytest.raises(chand.Canceled):
        c.handle("x").recv(ctx=ctx)
    assert 0.2 <= time.monotonic() - canceled_at[0] < 5     # the grace, then it gave up
    with pytest.raises(chand.DeadlineExceeded):
        c.handle("x").recv(timeout=0.1)
    c.close()
    fake.close()
    ops = [(r[0], r[3] if r[0] == 11 else r[1]) for r in fake.requests]
    recv_id = fake.requests[1][1]
    assert (11, recv_id) in ops                       # CANCEL for the abandoned RECV
