# SPDX-License-Identifier: BSD-2-Clause
"""Links inside chand (PROTOCOL.md §12; after tests/test_client_links.c): each kind, the
done channel, contexts, outputs closed however a link stops, errors and error values."""

from __future__ import annotations

import hashlib
import threading

import pytest

import chand
import chand.aio as aio
from chandtest import Server, unique, until


def test_or(conn: chand.Conn) -> None:
    a, b = conn.make(unique(), 0), conn.make(unique(), 1)
    link = chand.or_(a, b)
    assert link.running() and len(link.outputs) == 1
    b.send(b"fire")
    assert list(link.out) == []                     # the or-channel just closes
    assert link.wait(timeout=10) >= 0
    assert not link.running()


def test_or_done_named_output(conn: chand.Conn) -> None:
    src = conn.make(unique(), 8)
    out_name = unique("out")
    for i in range(5):
        src.send(str(i))
    src.close()
    link = chand.or_done(src, outs=[(out_name, 4)])
    assert link.out.name == out_name
    assert list(link.out) == [str(i).encode() for i in range(5)]
    assert link.wait() == 5
    assert link.wait() == 5                          # the result is kept
    assert conn.handle(out_name).info().cap == 4


def test_done_channel_stops_links(conn: chand.Conn) -> None:
    done = conn.make()
    rep = chand.repeat(conn, [b"a", b"b", b"c"], done=done)
    od = chand.or_done(rep.out, done=done)
    got = [od.out.recv()[0] for _ in range(5)]
    assert got == [b"a", b"b", b"c", b"a", b"b"]
    done.close()
    with pytest.raises(chand.Canceled):
        od.wait(timeout=10)
    with pytest.raises(chand.Canceled):
        rep.wait(timeout=10)
    list(od.out)                                     # closed: the range ends


def test_tee(conn: chand.Conn) -> None:
    src = conn.make(unique(), 4)
    link = chand.tee(src, outs=[None, (None, 4)])
    o1, o2 = link.outputs
    for v in (b"x", b"y"):
        src.send(v)
    src.close()
    got1: list = []
    t = threading.Thread(target=lambda: got1.extend(o1))
    t.start()
    assert list(o2) == [b"x", b"y"]
    t.join(10)
    assert got1 == [b"x", b"y"]
    assert link.wait() == 4                          # each value counted twice


def test_bridge_and_error_values(conn: chand.Conn) -> None:
    chans = conn.make(unique(), 8)
    link = chand.bridge(chans)
    firsts = []
    for k in range(2):
        c = conn.make(None, 4)
        c.send(f"{k}a")
        c.send(f"{k}b")
        c.close()
        chans.send(c)
        firsts.append(c)
    chans.send(b"not a reference")
    chans.send(conn.handle("~" + "0" * 32))          # a reference to no channel
    chans.close()
    got = list(link.out)
    assert got[:4] == [b"0a", b"0b", b"1a", b"1b"]
    assert len(got) == 6 and all(isinstance(v, chand.ErrorValue) for v in got[4:])
    assert all(v.message for v in got[4:])
    assert link.wait() == 6


def test_fan_in(conn: chand.Conn) -> None:
    a, b = conn.make(unique(), 8), conn.make(unique(), 8)
    for i in range(4):
        a.send(f"a{i}")
        b.send(f"b{i}")
    a.close()
    b.close()
    link = chand.fan_in(a, b)
    got = list(link.out)
    assert sorted(got) == sorted([f"a{i}".encode() for i in range(4)] +
                                 [f"b{i}".encode() for i in range(4)])
    assert [v for v in got if v.startswith(b"a")] == [f"a{i}".encode() for i in range(4)]
    assert link.wait() == 8


def test_repeat_take_and_cancel(conn: chand.Conn) -> None:
    rep = chand.repeat(conn, [b"1", b"2"])
    tk = chand.take(rep.out, 5)
    assert list(tk.out) == [b"1", b"2", b"1", b"2", b"1"]
    assert tk.wait() == 5
    rep.cancel()
    with pytest.raises(chand.Canceled):
        rep.wait(timeout=10)
    assert list(rep.out) in ([], [b"2"])             # at most the value in flight


def test_context_is_the_lifetime(conn: chand.Conn) -> None:
    ctx = chand.with_cancel()
    rep = chand.repeat(conn, [b"v"], ctx=ctx)
    assert rep.out.recv() == (b"v", True)
    ctx.cancel()                                     # nobody waits on the link: still CANCEL
    until(lambda: not rep.running(), what="link stopped")
    with pytest.raises(chand.Canceled):
        rep.wait()
    dl = chand.repeat(conn, [b"v"], timeout=0.1)
    with pytest.raises(chand.DeadlineExceeded):
        dl.wait(timeout=10)
    with chand.repeat(conn, [b"v"]) as scoped:       # `defer cancel()`
        pass
    with pytest.raises(chand.Canceled):
        scoped.wait(timeout=10)


def test_wait_timeout_leaves_it_running(conn: chand.Conn) -> None:
    rep = chand.repeat(conn, [b"v"])
    with pytest.raises(TimeoutError):
        rep.wait(timeout=0.05)
    assert rep.running()
    waiters, _ = conn.waiters()
    assert any(w.request == rep.id and w.op == "REPEAT" for w in waiters)
    rep.cancel()
    with pytest.raises(chand.Canceled):
        rep.wait(timeout=10)


def test_closed_output_and_lost_connection(server: Server, conn: chand.Conn) -> None:
    rep = chand.repeat(conn, [b"v"])
    rep.out.close()                                  # someone else closed the output
    with pytest.raises(chand.Closed):
        rep.wait(timeout=10)
    c = server.dial()
    src = c.make(None, 0)
    link = chand.or_done(src)
    c.close()
    with pytest.raises(chand.ConnectionLost):
        link.wait(timeout=10)


def test_fan_out_sha256_ordered(conn: chand.Conn) -> None:
    src = conn.make(unique(), 16)
    job = chand.fan_out(src, "sha256", 2, ordered=True)
    values = [f"value {i}".encode() for i in range(12)]
    t = threading.Thread(target=lambda: ([src.send(v) for v in values], src.close()))
    t.start()
    got = list(job.out)
    t.join(10)
    assert got == [hashlib.sha256(v).digest() for v in values]
    assert job.wait() == 12


def test_fan_out_isprime_error_value(conn: chand.Conn) -> None:
    src = conn.make(unique(), 8)
    job = chand.fan_out(src, "isprime", 1, ordered=True)
    for v in (b"7", b"8", b"not a number", b"13"):
        src.send(v)
    src.close()
    got = list(job.out)
    assert got[0] == b"7" and got[-1] == b"13" and len(got) == 3
    assert isinstance(got[1], chand.ErrorValue) and got[1].message
    job.wait()


def test_link_errors(conn: chand.Conn) -> None:
    src = conn.make(unique(), 0)
    with pytest.raises(chand.NotFound):
        chand.fan_out(src, "no-such-stage", 1)
    with pytest.raises(chand.BadRequest):
        chand.fan_out(src, "identity", 0)
    with pytest.raises(chand.Limit):
        chand.fan_out(src, "identity", 1 << 20)
    with pytest.raises(chand.NotFound):
        chand.or_done(conn.handle(unique()))
    named = conn.make(unique(), 2)
    with pytest.raises(chand.Exists):
        chand.or_done(src, outs=[(named.name, 3)])
    with pytest.raises(ValueError):
        chand.tee(src, outs=[None])
    with pytest.raises(chand.DeadlineExceeded):
        chand.repeat(conn, [b"v"], timeout=0)        # no budget: nothing is sent
    conn.ping()


def test_notes_pipeline(conn: chand.Conn) -> None:
    """The notes' tee(done, take(done, repeat(done, 1, 2), 20))."""
    done = conn.make()
    rep = chand.repeat(conn, [b"1", b"2"], done=done)
    tk = chand.take(rep.out, 20, done=done)
    te = chand.tee(tk.out, done=done)
    o1, o2 = te.outputs
    got: list = []
    t = threading.Thread(target=lambda: got.extend(o1))
    t.start()
    assert list(o2) == [b"1", b"2"] * 10
    t.join(10)
    assert got == [b"1", b"2"] * 10
    assert te.wait() == 40
    done.close()
    with pytest.raises(chand.Canceled):
        rep.wait(timeout=10)


def test_stream_and_link_arguments(conn: chand.Conn, conn2: chand.Conn) -> None:
    """The checks the sync and asyncio streams and links share (_common): before
    anything is sent."""
    a = conn.make(unique(), 1)
    b = conn2.handle(a.name)
    with pytest.raises(ValueError, match="at least one channel"):
        conn.stream([])
    with pytest.raises(ValueError, match="on its connection"):
        conn.stream([b])
    with pytest.raises(ValueError, match="credit"):
        conn.stream([a], 0)
    with pytest.raises(TypeError, match="a chand.Chan, not str"):
        chand.or_(a, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one connection"):
        chand.or_(a, b)
    with pytest.raises(ValueError, match="needs a channel"):
        chand.or_()


async def test_stream_and_link_arguments_aio(server: Server) -> None:
    c1, c2 = await aio.dial(server.addr), await aio.dial(server.addr)
    a = await c1.make(unique(), 1)
    b = c2.handle(a.name)
    with pytest.raises(ValueError, match="at least one channel"):
        await c1.stream([])
    with pytest.raises(ValueError, match="on its connection"):
        await c1.stream([b])
    with pytest.raises(ValueError, match="credit"):
        await c1.stream([a], 0)
    with pytest.raises(TypeError, match="a chand.aio.Chan, not str"):
        await aio.or_(a, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one connection"):
        await aio.or_(a, b)
    await c1.close()
    await c2.close()
