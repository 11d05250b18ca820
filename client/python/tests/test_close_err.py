# SPDX-License-Identifier: BSD-2-Clause
"""Close with an error (PROTOCOL.md §5 CLOSE, issue 17): ``ch.close(error)``, the
receivers' ``ch.err`` after recv, try_recv, a range, a select and a stream, INFO's and
CHANNELS' ``close_error``, a link passing the error downstream; sync and asyncio."""

from __future__ import annotations

import socket
import threading
from typing import AsyncIterator

import pytest

import chand
import chand.aio as aio
from chandtest import FakeServer, Server, frame, read_frame, unique, until

DISK_FULL = chand.CloseError(28, "disk full")


# ---- CloseError itself ---------------------------------------------------------------------


def test_close_error_checks() -> None:
    e = chand.CloseError(0)
    assert e.code == 0 and e.message == "" and e == chand.CloseError(0, "")
    assert str(DISK_FULL) == "closed with error 28: disk full"
    assert chand.CloseError((1 << 64) - 1, "é" * 512).code == (1 << 64) - 1   # 1024 bytes
    with pytest.raises(Exception):
        DISK_FULL.code = 1                                  # type: ignore[misc]  # frozen
    for code, message in [(-1, ""), (1 << 64, ""), (True, ""), (1.0, ""), ("1", ""),
                          (1, "x" * 1025), (1, "é" * 513), (1, b"bytes"), (1, "\ud800")]:
        with pytest.raises(ValueError):
            chand.CloseError(code, message)                 # type: ignore[arg-type]
    assert aio.CloseError is chand.CloseError


def test_close_on_the_wire() -> None:
    got: list = []

    def script(sock: socket.socket) -> None:
        for _ in range(3):
            req = read_frame(sock)
            got.append(req)
            sock.sendall(frame([req[1], 0]))
        while sock.recv(4096):
            pass
    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    ch = c.handle("x")
    ch.close()                                              # the 1-argument form, as of old
    ch.close(DISK_FULL)
    ch.close((0, "é"))
    c.close()
    fake.close()
    assert [r[0] for r in got] == [7, 7, 7]
    assert [r[3:] for r in got] == [["x"], ["x", [28, "disk full"]], ["x", [0, "é"]]]


def test_bad_close_errors_send_nothing(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 1)
    for bad in [(-1, "x"), (1, "x" * 1025), (1,), (1, "a", "b")]:
        with pytest.raises(ValueError):
            ch.close(bad)                                   # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ch.close("disk full")                               # type: ignore[arg-type]
    assert not ch.info().closed                             # still open


# ---- sync -------------------------------------------------------------------------------------


def test_recv_and_try_recv(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 2)
    ch.send(b"a")
    ch.close(DISK_FULL)
    rx = conn2.handle(ch.name)
    assert rx.err is None
    assert rx.recv(timeout=10) == (b"a", True)              # buffered values first
    assert rx.err is None
    assert rx.recv(timeout=10) == (None, False)
    assert rx.err == DISK_FULL
    assert rx.try_recv() == (None, False) and rx.err == DISK_FULL
    other = conn2.handle(ch.name)                           # err is per handle object
    assert other.err is None
    assert other.try_recv() == (None, False) and other.err == DISK_FULL
    # a later close, with an error or not, is Closed and keeps the first error
    with pytest.raises(chand.Closed):
        ch.close((1, "second"))
    with pytest.raises(chand.Closed):
        ch.close()
    info = ch.info()
    assert info.closed and info.close_error == DISK_FULL


def test_waiting_receiver_gets_the_error(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    out: list = []
    t = threading.Thread(target=lambda: out.append((ch.recv(timeout=10), ch.err)))
    t.start()
    until(lambda: ch.info().receivers == 1)
    conn2.handle(ch.name).close((7, "upstream failed"))    # a tuple does as well
    t.join(10)
    assert out == [((None, False), chand.CloseError(7, "upstream failed"))]


def test_plain_close_has_no_error(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 1)
    ch.close(None)
    assert ch.recv(timeout=10) == (None, False) and ch.err is None
    assert ch.info().close_error is None
    # a receive with ok false replaces what an earlier one found: the name made anew
    errd = conn.make(unique(), 0)
    errd.close(DISK_FULL)
    h = conn.handle(errd.name)
    assert h.recv(timeout=10) == (None, False) and h.err == DISK_FULL
    errd.delete()
    conn.make(errd.name, 0).close()
    assert h.recv(timeout=10) == (None, False) and h.err is None


def test_range_ends_normally(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4)
    for v in (b"1", b"2", b"3"):
        ch.send(v)
    ch.close(chand.CloseError(0, ""))                       # code 0, empty message: an error
    assert list(ch) == [b"1", b"2", b"3"]
    assert ch.err == chand.CloseError(0, "")
    ch2 = conn.make(unique(), 1)
    ch2.send(b"x")
    ch2.close(DISK_FULL)
    assert list(ch2.range(ctx=chand.with_timeout(None, 10))) == [b"x"]
    assert ch2.err == DISK_FULL


def test_select(conn: chand.Conn) -> None:
    a, b = conn.make(unique(), 0), conn.make(unique(), 0)
    b.close(DISK_FULL)
    i, v, ok = chand.select(chand.recv(a), chand.recv(b), timeout=10)
    assert (i, v, ok) == (1, None, False)
    assert b.err == DISK_FULL and a.err is None
    # a select on a plain-closed channel clears it, as a recv would
    b.delete()
    conn.make(b.name, 0).close()
    assert chand.select(chand.recv(None), chand.recv(b), timeout=10) == (1, None, False)
    assert b.err is None
    # a waiting select woken by the close
    d = conn.make(unique(), 0)
    out: list = []
    t = threading.Thread(target=lambda: out.append(
        chand.select(chand.recv(a), chand.recv(d), timeout=10)))
    t.start()
    until(lambda: d.info().receivers == 1)
    conn.handle(d.name).close((3, "three"))
    t.join(10)
    assert out == [(1, None, False)] and d.err == chand.CloseError(3, "three")


def test_stream(conn: chand.Conn) -> None:
    a, b, c = conn.make(unique(), 2), conn.make(unique(), 0), conn.make(unique(), 0)
    a.send(b"v")
    a.close(DISK_FULL)
    b.close()
    with conn.stream([a, b, c], credit=4) as s:
        got = {s.recv() for _ in range(3)}
        assert got == {(0, b"v", True), (0, None, False), (1, None, False)}
        assert s.err(0) == DISK_FULL and s.err(1) is None and s.err(2) is None
        assert a.err == DISK_FULL and b.err is None          # the handles learn it too
        assert s.err(99) is None
        c.close((5, "late"))
        assert s.recv() == (2, None, False)
        assert s.err(2) == chand.CloseError(5, "late") and c.err == s.err(2)
        with pytest.raises(chand.Closed):                    # then the stream's end
            s.recv()
        assert s.delivered == 1
    # iteration ends normally; err() defaults to the first channel
    d = conn.make(unique(), 2)
    d.send(b"1")
    d.close(DISK_FULL)
    with d.stream(2) as s:
        assert list(s) == [b"1"]
        assert s.err() == DISK_FULL and s.delivered == 1


def test_channels_list_the_error(conn: chand.Conn) -> None:
    prefix = unique("cerr")
    a, b = conn.make(prefix + ".a", 0), conn.make(prefix + ".b", 0)
    a.close(DISK_FULL)
    b.close()
    infos, n = conn.channels(prefix + ".*")
    assert n == 2
    assert {i.name: i.close_error for i in infos} == {a.name: DISK_FULL, b.name: None}


def test_or_done_passes_the_error_downstream(conn: chand.Conn) -> None:
    src = conn.make(unique(), 4)
    link = chand.or_done(src)
    tk = chand.take(link.out, 100)                         # two links: the error flows on
    src.send(b"1")
    src.send(b"2")
    src.close(DISK_FULL)
    out = tk.out
    assert list(out) == [b"1", b"2"]
    assert out.err == DISK_FULL
    assert link.wait(timeout=10) == 2 and tk.wait(timeout=10) == 2
    assert link.out.info().close_error == DISK_FULL


def test_cancelled_link_closes_without_error(conn: chand.Conn) -> None:
    src = conn.make(unique(), 0)
    link = chand.or_done(src)
    link.cancel()
    with pytest.raises(chand.Canceled):
        link.wait(timeout=10)
    assert link.out.recv(timeout=10) == (None, False) and link.out.err is None


# ---- asyncio ---------------------------------------------------------------------------------


@pytest.fixture
async def aconn(server: Server) -> AsyncIterator[aio.Conn]:
    c = await aio.dial(server.addr, client_name="pytest-aio")
    yield c
    await c.close()


async def test_aio_recv_range_and_info(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 2)
    await ch.send(b"a")
    with pytest.raises(ValueError):
        await ch.close((1, "x" * 1025))
    await ch.close(DISK_FULL)
    assert ch.err is None
    assert [v async for v in ch] == [b"a"]
    assert ch.err == DISK_FULL
    h = aconn.handle(ch.name)
    assert await h.try_recv() == (None, False) and h.err == DISK_FULL
    h2 = aconn.handle(ch.name)
    assert await h2.recv(timeout=10) == (None, False) and h2.err == DISK_FULL
    assert (await ch.info()).close_error == DISK_FULL
    with pytest.raises(chand.Closed):
        await ch.close((2, "again"))
    assert (await ch.info()).close_error == DISK_FULL
    plain = await aconn.make(unique(), 0)
    await plain.close()
    assert await plain.recv(timeout=10) == (None, False) and plain.err is None
    assert (await plain.info()).close_error is None


async def test_aio_select_stream_and_link(aconn: aio.Conn) -> None:
    a, b = await aconn.make(unique(), 0), await aconn.make(unique(), 1)
    await b.send(b"v")
    await b.close((9, "nine"))
    assert await aio.select(aio.recv(a), aio.recv(b), timeout=10) == (1, b"v", True)
    assert b.err is None
    assert await aio.select(aio.recv(a), aio.recv(b), timeout=10) == (1, None, False)
    assert b.err == chand.CloseError(9, "nine")
    c = await aconn.make(unique(), 1)
    await c.send(b"s")
    await c.close(DISK_FULL)
    s = await aconn.stream([a, c], credit=4)
    assert await s.recv() == (1, b"s", True)
    assert await s.recv() == (1, None, False)
    assert s.err(1) == DISK_FULL and s.err(0) is None and c.err == DISK_FULL
    await a.close()
    assert await s.recv() == (0, None, False)
    assert s.err(0) is None
    with pytest.raises(chand.Closed):
        await s.recv()
    s.close()
    src = await aconn.make(unique(), 2)
    link = await aio.or_done(src)
    await src.send(b"x")
    await src.close((4, "four"))
    assert [v async for v in link.out] == [b"x"]
    assert link.out.err == chand.CloseError(4, "four")
    assert await link.wait() == 1
