# SPDX-License-Identifier: BSD-2-Clause
"""Streams (PROTOCOL.md §14; after tests/test_client_stream.c): credit, top-up, order,
several channels with their close reports, ends and errors."""

from __future__ import annotations

import threading

import pytest

import chand
from chandtest import unique, until


def test_credit_depth_and_top_up(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    with ch.stream(4) as s:
        until(lambda: ch.info().receivers == 4, what="4 receives pending")
        peer = conn2.handle(ch.name)
        n = 50                                    # far more than the credit: top-ups
        t = threading.Thread(target=lambda: [peer.send(str(i)) for i in range(n)])
        t.start()
        got = [s.recv() for _ in range(n)]
        t.join(10)
        assert got == [(0, str(i).encode(), True) for i in range(n)]
        # a recv that has to wait grants back what was taken: 4 deep again
        last: list = []
        t = threading.Thread(target=lambda: last.append(s.recv()))
        t.start()
        until(lambda: ch.info().receivers == 4, what="credit granted back")
        peer.send(b"last")
        t.join(10)
        assert last == [(0, b"last", True)]
    until(lambda: ch.info().receivers == 0, what="close withdrew the stream")


def test_order_close_and_delivered(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 8)
    for i in range(6):
        ch.send(str(i))
    ch.close()
    s = ch.stream(2)
    assert list(s) == [str(i).encode() for i in range(6)]
    assert s.delivered == 6
    with pytest.raises(chand.Closed):
        s.recv()


def test_several_channels(conn: chand.Conn) -> None:
    a, b = conn.make(unique(), 4), conn.make(unique(), 4)
    a.send(b"a1")
    b.send(b"b1")
    b.close()
    s = conn.stream([a, b], credit=8)
    seen = [s.recv() for _ in range(3)]
    assert sorted(seen, key=repr) == sorted([(0, b"a1", True), (1, b"b1", True),
                                             (1, None, False)], key=repr)
    assert seen.index((1, b"b1", True)) < seen.index((1, None, False))
    a.send(b"a2")
    assert s.recv() == (0, b"a2", True)
    a.close()
    assert s.recv() == (0, None, False)
    with pytest.raises(chand.Closed):
        s.recv()
    assert s.delivered == 3


def test_items_and_references(conn: chand.Conn) -> None:
    a = conn.make(unique(), 4)
    ref = conn.make()
    a.send(ref)
    a.send(b"x")
    a.close()
    items = list(conn.stream([a]).items())
    assert items[1] == (0, b"x") and isinstance(items[0][1], chand.Chan)
    assert items[0][1].name == ref.name


def test_cancel_by_context(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    ctx = chand.with_cancel()
    s = ch.stream(3, ctx=ctx)
    until(lambda: ch.info().receivers == 3)
    out: list = []

    def recv() -> None:
        try:
            s.recv()
        except chand.Error as e:
            out.append(e)

    t = threading.Thread(target=recv)
    t.start()
    ctx.cancel()
    t.join(10)
    assert isinstance(out[0], chand.Canceled)
    until(lambda: ch.info().receivers == 0, what="stream withdrawn")
    with pytest.raises(chand.Canceled):
        s.recv()                                   # and so does every later call


def test_deadline(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    s = ch.stream(1, timeout=0.1)
    with pytest.raises(chand.DeadlineExceeded):
        s.recv()
    assert ch.info().receivers == 0


def test_deleted_channel(conn: chand.Conn) -> None:
    a, b = conn.make(unique(), 0), conn.make(unique(), 0)
    s = conn.stream([a, b], credit=1)
    until(lambda: b.info().receivers == 1)
    b.delete()
    with pytest.raises(chand.NotFound) as ei:
        s.recv()
    assert ei.value.index == 1


def test_bad_input(conn: chand.Conn, conn2: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    with pytest.raises(ValueError):
        a.stream(0)
    with pytest.raises(ValueError):
        conn.stream([])
    with pytest.raises(ValueError):
        conn.stream([a, conn2.handle(a.name)])
    with pytest.raises(chand.BadRequest) as ei:
        conn.stream([a, a]).recv()
    assert ei.value.index == 1
    with pytest.raises(chand.NotFound) as ei:
        conn.stream([a, conn.handle(unique())]).recv()
    assert ei.value.index == 1
    with pytest.raises(chand.Limit):
        a.stream(conn.info.max_stream_credit + 1).recv()
    conn.ping()
