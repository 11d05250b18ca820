# SPDX-License-Identifier: BSD-2-Clause
"""select: receive and send cases, default, nil channels, errors with their case index,
blocking and waking, and uniform choice tested statistically (within 4 sigma)."""

from __future__ import annotations

import math
import threading

import pytest

import chand
from chandtest import unique, until


def within_4_sigma(hits: int, n: int, p: float = 0.5) -> bool:
    sigma = math.sqrt(n * p * (1 - p))
    return abs(hits - n * p) < 4 * sigma


def test_select_recv_and_send(conn: chand.Conn) -> None:
    a, b = conn.make(unique(), 1), conn.make(unique(), 1)
    a.send(b"x")
    assert chand.select(chand.recv(a), chand.recv(b)) == (0, b"x", True)
    # b has room: its send case is ready, a's receive is not
    assert chand.select(chand.recv(a), chand.send(b, b"y")) == (1, None, True)
    assert b.recv() == (b"y", True)


def test_select_default(conn: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    assert chand.select(chand.recv(a), chand.send(a, b"v"), default=True) == (-1, None, True)
    assert a.info().senders + a.info().receivers == 0     # nothing stayed queued


def test_select_nil_and_closed(conn: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    a.close()
    # a nil channel is never ready; a closed one is
    assert chand.select(chand.recv(None), chand.recv(a)) == (1, None, False)
    with pytest.raises(chand.Closed) as ei:
        chand.select(chand.recv(None), chand.send(a, b"v"))
    assert ei.value.index == 1
    assert chand.select(chand.recv(None), chand.send(None, b"x"), default=True) == \
        (-1, None, True)
    with pytest.raises(chand.DeadlineExceeded):       # Go's select {} bounded by a timeout
        chand.select(chand.recv(None), timeout=0.05)


def test_select_not_found_index(conn: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    with pytest.raises(chand.NotFound) as ei:
        chand.select(chand.recv(a), chand.recv(conn.handle(unique())))
    assert ei.value.index == 1


def test_select_argument_errors(conn: chand.Conn, conn2: chand.Conn) -> None:
    with pytest.raises(ValueError):
        chand.select()
    with pytest.raises(ValueError):
        chand.select(chand.recv(conn.make(unique())), chand.recv(conn2.make(unique())))
    with pytest.raises(TypeError):
        chand.select(conn.make(unique()))  # type: ignore[arg-type]


def test_select_blocks_and_wakes(conn: chand.Conn, conn2: chand.Conn) -> None:
    a, b = conn.make(unique(), 0), conn.make(unique(), 0)
    out: list = []
    t = threading.Thread(target=lambda: out.append(
        chand.select(chand.recv(a), chand.recv(b), timeout=30)))
    t.start()
    until(lambda: a.info().receivers == 1 and b.info().receivers == 1, what="select queued")
    conn2.handle(b.name).send(b"B")
    t.join(10)
    assert out == [(1, b"B", True)]
    # the other case was withdrawn at once
    assert a.info().receivers == 0 and b.info().receivers == 0


def test_select_timeout_leaves_nothing(conn: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    with pytest.raises(chand.DeadlineExceeded):
        chand.select(chand.recv(a), chand.send(a, b"x"), timeout=0.1)
    assert a.info().receivers == 0 and a.info().senders == 0


def test_select_fair_among_ready(conn: chand.Conn) -> None:
    n = 400
    a, b = conn.make(unique(), n), conn.make(unique(), n)
    for _ in range(n):
        a.send(b"a")
        b.send(b"b")
    hits = sum(1 for _ in range(n) if chand.select(chand.recv(a), chand.recv(b))[0] == 0)
    assert within_4_sigma(hits, n), hits
    # send cases too
    c, d = conn.make(unique(), n), conn.make(unique(), n)
    hits = sum(1 for _ in range(n)
               if chand.select(chand.send(c, b"x"), chand.send(d, b"x"))[0] == 0)
    assert within_4_sigma(hits, n), hits


def test_select_blocked_cases_on_one_channel_fair(conn: chand.Conn, conn2: chand.Conn) -> None:
    """A waiting select queues its cases in random order: woken by one RECV, each of two
    send cases on one channel fires half the time."""
    n = 200
    c = conn.make(unique(), 0)
    peer = conn2.handle(c.name)
    hits = 0
    for _ in range(n):
        out: list = []
        t = threading.Thread(target=lambda: out.append(
            chand.select(chand.send(c, b"0"), chand.send(c, b"1"), timeout=30)))
        t.start()
        until(lambda: c.info().senders == 2, what="select queued")
        v, ok = peer.recv(timeout=10)
        t.join(10)
        assert out[0][0] == int(v)                  # the case that fired sent that value
        hits += v == b"0"
    assert within_4_sigma(hits, n), hits


def test_select_never_matches_itself(conn: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    with pytest.raises(chand.DeadlineExceeded):
        chand.select(chand.send(a, b"x"), chand.recv(a), timeout=0.1)


def test_select_channel_reference(conn: chand.Conn, conn2: chand.Conn) -> None:
    a = conn.make(unique(), 1)
    ref = conn.make(None, 0)
    assert chand.select(chand.send(a, ref)) == (0, None, True)
    i, v, ok = chand.select(chand.recv(conn2.handle(a.name)))
    assert (i, ok) == (0, True) and isinstance(v, chand.Chan) and v.name == ref.name
