# SPDX-License-Identifier: BSD-2-Clause
"""Ack channels (PROTOCOL.md §16, issue 17) through the Python API, sync and asyncio:
make's options, recv_msg's tag and count, ACK, NACK, TOUCH, redelivery after ack_wait
and after a holder's disconnect, dead letters, INFLIGHT, the context managers, and a
value sent by chanctl(1) received and acked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import AsyncIterator, List

import msgpack
import pytest

import chand
import chand.aio as aio
from chand import _proto as P
from chandtest import BOUND, CHANCTL, FakeServer, Server, frame, read_frame, unique, until

ACK_WAIT = 30.0     # long enough never to expire during a test that does not want it


def inflight_tags(conn: chand.Conn, ch: chand.Chan) -> List[int]:
    entries, total = conn.inflight(ch.name)
    assert total == len(entries)
    return [e.tag for e in entries]


# ---- the client side: options and frames ------------------------------------------------


def test_make_options_checked_before_sending(conn: chand.Conn) -> None:
    name = unique()
    for kw in [dict(ack_wait=0), dict(ack_wait=-1.0), dict(ack_wait=float(1 << 48)),
               dict(ack_wait=float("nan")), dict(ack_wait=float("inf")),
               dict(ack_wait=1.0, max_deliver=-1), dict(ack_wait=1.0, max_deliver=1 << 32),
               dict(ack_wait=1.0, max_unacked=-1), dict(ack_wait=1.0, max_unacked=1.5),
               dict(max_deliver=3), dict(max_unacked=10), dict(dead_letter="x")]:
        with pytest.raises(ValueError):
            conn.make(name, 1, **kw)                        # type: ignore[arg-type]
    with pytest.raises(TypeError):
        conn.make(name, 1, ack_wait="1s")                   # type: ignore[arg-type]
    with pytest.raises(chand.NotFound):
        conn.handle(name).info()                            # nothing was sent
    assert P.ack_opts(None, 5, 1000, None) is None
    assert P.ack_opts(0.0000001, 0, 0, "d") == {"ack_wait": 1, "max_deliver": 0,
                                                "max_unacked": 0, "dead_letter": "d"}


def test_ack_frames_on_the_wire() -> None:
    got: list = []

    def script(sock: socket.socket) -> None:
        replies = [[0, "j", 4, True], [0, b"v", True, 7, 1], [0, 1], [0], [0],
                   [0, [{"client": 3, "tag": 7, "count": 1, "age_ms": 5}], 1]]
        for rest in replies:
            req = read_frame(sock)
            got.append(req)
            sock.sendall(frame([req[1], *rest]))
        while sock.recv(4096):
            pass
    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    try:
        ch = c.make("j", 4, ack_wait=1.5, max_deliver=0, dead_letter="j.dead")
        m = ch.recv_msg()
        assert (m.value, m.ok, m.tag, m.count) == (b"v", True, 7, 1)
        assert c.ack(7, timeout=5) == 1
        m.nack(delay=0.25)
        m.touch()
        assert c.inflight("j") == ([chand.InflightInfo(3, 7, 1, 5)], 1)
    finally:
        c.close()
        fake.close()
    assert got[0][3:] == ["j", 4, {"ack_wait": 1500000, "max_deliver": 0,
                                   "max_unacked": 1000, "dead_letter": "j.dead"}]
    assert [r[0] for r in got] == [3, 6, 23, 24, 25, 26]
    assert got[2][3:] == [[7]]
    assert got[3][3:] == [7, 250000]
    assert got[4][3:] == [7]
    assert got[5][3:] == ["j", 0]


# ---- a real chand ----------------------------------------------------------------------------


def test_make_with_options_and_exists(conn: chand.Conn) -> None:
    name, dead = unique(), unique()
    ch = conn.make(name, 4, ack_wait=2.5, max_deliver=3, max_unacked=10, dead_letter=dead)
    assert conn.make(name, 4, ack_wait=2.5, max_deliver=3, max_unacked=10,
                     dead_letter=dead) == ch
    for kw in [dict(), dict(ack_wait=2.0, max_deliver=3, max_unacked=10, dead_letter=dead),
               dict(ack_wait=2.5, max_deliver=4, max_unacked=10, dead_letter=dead),
               dict(ack_wait=2.5, max_deliver=3, max_unacked=10)]:
        with pytest.raises(chand.Exists):
            conn.make(name, 4, **kw)                        # type: ignore[arg-type]
    plain = conn.make(unique(), 1)
    with pytest.raises(chand.Exists):
        conn.make(plain.name, 1, ack_wait=1.0)
    with pytest.raises(chand.BadRequest):
        conn.make(None, 1, ack_wait=1.0)                    # anonymous: no options
    selfish = unique()
    with pytest.raises(chand.BadRequest):
        conn.make(selfish, 1, ack_wait=1.0, dead_letter=selfish)     # its own dead letter
    i = ch.info()
    assert (i.ack_wait, i.inflight, i.redelivered, i.dead_lettered) == (2.5, 0, 0, 0)
    assert plain.info().ack_wait is None
    with pytest.raises(chand.BadRequest):
        conn.inflight(plain.name)
    with pytest.raises(chand.NotFound):
        conn.inflight(unique())


def test_max_ack_pending(conn: chand.Conn, conn2: chand.Conn) -> None:
    name = unique()
    with pytest.raises(ValueError):
        conn.make(name, 4, ack_wait=1.0, max_ack_pending=1 << 32)
    with pytest.raises(ValueError):
        conn.make(name, 4, max_ack_pending=1)                # needs ack_wait
    ch = conn.make(name, 4, ack_wait=30.0, max_ack_pending=1)
    i = ch.info()
    assert (i.max_ack_pending, i.max_unacked) == (1, 1000)
    with pytest.raises(chand.Exists):
        conn.make(name, 4, ack_wait=30.0, max_ack_pending=2)
    ch.send(b"a")
    ch.send(b"b")
    m = ch.recv_msg(timeout=BOUND)
    assert m.value == b"a"
    # the channel holds one in flight: conn2 waits though "b" is buffered
    other = conn2.handle(name)
    with pytest.raises(chand.DeadlineExceeded):
        other.recv_msg(timeout=0.2)
    m.ack()
    m2 = other.recv_msg(timeout=BOUND)
    assert (m2.value, m2.count) == (b"b", 1)
    m2.ack()


def test_recv_msg_tag_count_and_ack(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4, ack_wait=ACK_WAIT)
    ch.send(b"a")
    ch.send(b"b")
    m = ch.recv_msg(timeout=BOUND)
    assert isinstance(m, chand.Message)
    assert (m.value, m.ok, m.count) == (b"a", True, 1) and m.tag >= 1
    assert tuple(m) == (b"a", True) and not m.settled
    entries, total = conn.inflight(ch.name)
    assert total == 1 and entries[0].tag == m.tag and entries[0].count == 1
    assert entries[0].client in {c.id for c in conn.clients() if c.name == "pytest"}
    i = ch.info()
    assert (i.len, i.inflight) == (2, 1)                     # in flight counts in len
    m.ack()
    assert m.settled
    assert inflight_tags(conn, ch) == []
    i = ch.info()
    assert (i.len, i.inflight) == (1, 0)
    m2 = ch.recv_msg(timeout=BOUND)
    assert m2.tag > m.tag and m2.value == b"b"               # tags are never reused
    with pytest.raises(chand.NotFound):
        m.ack()                                             # acked already
    m2.ack()
    # a plain channel's value has no tag: nothing to settle (libchanclient's CHAN_EINVAL)
    plain = conn.make(unique(), 1)
    plain.send(b"p")
    pm = plain.recv_msg(timeout=BOUND)
    assert (pm.value, pm.ok, pm.tag, pm.count) == (b"p", True, 0, 0) and pm.settled
    for settle in (pm.ack, pm.nack, pm.touch):
        with pytest.raises(ValueError):
            settle()
    plain.send(b"q")
    with plain.recv_msg(timeout=BOUND) as q:
        assert q.value == b"q"                              # exits without a request
    # closed and drained, nothing in flight: ok false
    ch.close(chand.CloseError(3, "done"))
    end = ch.recv_msg(timeout=BOUND)
    assert (end.value, end.ok, end.tag) == (None, False, 0)
    assert ch.err == chand.CloseError(3, "done")


def test_ack_errors_and_batches(conn: chand.Conn, conn2: chand.Conn) -> None:
    ch = conn.make(unique(), 8, ack_wait=ACK_WAIT)
    for v in (b"1", b"2", b"3"):
        ch.send(v)
    tags = [ch.recv_msg(timeout=BOUND).tag for _ in range(3)]
    with pytest.raises(ValueError):
        conn.ack()
    with pytest.raises(ValueError):
        conn.ack(0)
    with pytest.raises(chand.PermissionDenied):
        conn2.ack(tags[0])                                  # another connection's
    with pytest.raises(chand.NotFound):
        conn.ack(max(tags) + 1000)                          # never issued
    assert sorted(inflight_tags(conn, ch)) == tags           # errors left them as they were
    # one bad tag in a batch: the good ones are acked all the same
    with pytest.raises(chand.NotFound, match="2 of 3 acked"):
        conn.ack(tags[0], max(tags) + 1000, tags[1])
    assert inflight_tags(conn, ch) == [tags[2]]
    assert conn.ack(tags[2]) == 1
    assert ch.info().inflight == 0


def test_nack_redelivers_ahead_of_new_values(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4, ack_wait=ACK_WAIT)
    ch.send(b"a")
    ch.send(b"b")
    m = ch.recv_msg(timeout=BOUND)
    m.nack()
    with pytest.raises(chand.NotFound):
        m.ack()                                             # the tag ended with the NACK
    again = ch.recv_msg(timeout=BOUND)
    assert (again.value, again.count) == (b"a", 2) and again.tag != m.tag
    nxt = ch.recv_msg(timeout=BOUND)
    assert (nxt.value, nxt.count) == (b"b", 1)
    conn.ack(again.tag, nxt.tag)
    assert ch.info().redelivered == 1
    # a delayed NACK: the value is back after the delay, not before
    ch.send(b"c")
    m = ch.recv_msg(timeout=BOUND)
    m.nack(delay=0.5)
    assert ch.try_recv() is None                             # not back yet
    back = ch.recv_msg(timeout=BOUND)
    assert (back.value, back.count) == (b"c", 2)
    back.ack()
    with pytest.raises(ValueError):
        back.nack(delay=-1.0)


def test_ack_wait_expiry_redelivers(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 2, ack_wait=0.2)
    ch.send(b"x")
    m = ch.recv_msg(timeout=BOUND)
    t0 = time.monotonic()
    again = ch.recv_msg(timeout=BOUND)                     # waits out the ack_wait
    assert time.monotonic() - t0 >= 0.15
    assert (again.value, again.count) == (b"x", 2)
    with pytest.raises(chand.NotFound):
        m.ack()                                             # given back: no longer ours
    again.ack()
    assert ch.info().redelivered == 1


def test_touch_renews(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 2, ack_wait=0.5)
    ch.send(b"long job")
    m = ch.recv_msg(timeout=BOUND)
    for _ in range(8):                                       # 0.8 s in all, past ack_wait
        time.sleep(0.1)
        m.touch()
    assert inflight_tags(conn, ch) == [m.tag]
    assert ch.try_recv() is None                             # never given back
    m.ack()
    assert ch.info().redelivered == 0


def test_max_deliver_dead_letter(conn: chand.Conn) -> None:
    name, dead = unique(), unique("dead")
    ch = conn.make(name, 2, ack_wait=ACK_WAIT, max_deliver=2, dead_letter=dead)
    dl = conn.make(dead, 4)
    ch.send(b"poison")
    for count in (1, 2):
        m = ch.recv_msg(timeout=BOUND)
        assert m.count == count
        m.nack()
    v, ok = dl.recv(timeout=BOUND)
    assert ok and isinstance(v, bytes)
    assert msgpack.unpackb(v, raw=False) == {"channel": name, "count": 2, "reason": "nack",
                                             "value": b"poison"}
    i = ch.info()
    assert (i.dead_lettered, i.inflight, i.len) == (1, 0, 0)
    assert ch.try_recv() is None


def test_disconnect_redelivers_to_another(server: Server, conn: chand.Conn) -> None:
    ch = conn.make(unique(), 2, ack_wait=ACK_WAIT)
    ch.send(b"held")
    holder = server.dial(client_name="holder")
    m = holder.handle(ch.name).recv_msg(timeout=BOUND)
    assert m.count == 1
    holder.close()
    again = ch.recv_msg(timeout=BOUND)
    assert (again.value, again.count) == (b"held", 2)
    again.ack()


def test_context_manager_acks_or_nacks(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4, ack_wait=ACK_WAIT)
    ch.send(b"ok")
    with ch.recv_msg(timeout=BOUND) as m:
        assert m.value == b"ok"
    assert m.settled and ch.info().inflight == 0
    ch.send(b"fails")
    with pytest.raises(KeyError):
        with ch.recv_msg(timeout=BOUND) as m:
            raise KeyError("the job failed")
    again = ch.recv_msg(timeout=BOUND)
    assert (again.value, again.count) == (b"fails", 2)      # nacked: back at once
    with again as m:
        m.nack()                                            # settled inside: left alone
    with ch.recv_msg(timeout=BOUND) as m:
        assert m.count == 3
    assert ch.info().inflight == 0


def test_untagged_calls_still_ack(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4, ack_wait=ACK_WAIT)
    ch.send(b"a")
    ch.send(b"b")
    assert ch.recv(timeout=BOUND) == (b"a", True)
    assert chand.select(chand.recv(ch)) == (0, b"b", True)
    until(lambda: ch.info().inflight == 0, what="the untagged values acked")


def test_stream_manual_ack(conn: chand.Conn) -> None:
    ch = conn.make(unique(), 8, ack_wait=ACK_WAIT)
    for v in (b"a", b"b", b"c"):
        ch.send(v)
    ch.close()
    got = []
    with ch.stream(2, manual_ack=True) as s:
        for m in s:
            assert isinstance(m, chand.Message) and m.tag >= 1 and m.chan == ch
            got.append((m.value, m.count))
            if m.value == b"b" and m.count == 1:
                m.nack()                                     # back to the stream, count 2
            else:
                m.ack()
    # the stream may hold c already when b comes back: the order of c and b's return
    # depends on the credit, the set does not
    assert sorted(got) == [(b"a", 1), (b"b", 1), (b"b", 2), (b"c", 1)]
    assert ch.info().inflight == 0
    # recv_msg on a plain stream; recv acks by itself
    ch2 = conn.make(unique(), 4, ack_wait=ACK_WAIT)
    ch2.send(b"x")
    ch2.send(b"y")
    with ch2.stream(1) as s:
        index, m = s.recv_msg()
        assert (index, m.value, m.count) == (0, b"x", 1)
        assert s.recv() == (0, b"y", True)
        assert inflight_tags(conn, ch2) == [m.tag]
        m.ack()
    assert ch2.info().inflight == 0


async def test_aio_stream_manual_ack(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 4, ack_wait=ACK_WAIT)
    await ch.send(b"a")
    await ch.send(b"b")
    await ch.close()
    s = await ch.stream(2, manual_ack=True)
    async with s:
        got = []
        async for m in s:
            assert isinstance(m, aio.Message)
            got.append(m.value)
            await m.ack()
    assert sorted(got) == [b"a", b"b"]
    assert (await ch.info()).inflight == 0


@pytest.mark.skipif(not os.access(CHANCTL, os.X_OK), reason=f"no chanctl at {CHANCTL}")
def test_chanctl_sends_recv_msg_acks(server: Server, conn: chand.Conn) -> None:
    ch = conn.make(unique(), 2, ack_wait=ACK_WAIT)
    r = subprocess.run([CHANCTL, "-s", f"tcp://{server.addr}", "send", ch.name],
                       input=b"from C", capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    m = ch.recv_msg(timeout=BOUND)
    assert (m.value, m.count) == (b"from C", 1)
    m.ack()
    r = subprocess.run([CHANCTL, "-s", f"tcp://{server.addr}", "--json", "info", ch.name],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["inflight"] == 0


# ---- asyncio ------------------------------------------------------------------------------


@pytest.fixture
async def aconn(server: Server) -> AsyncIterator[aio.Conn]:
    c = await aio.dial(server.addr, client_name="pytest-aio")
    yield c
    await c.close()


async def test_aio_ack_channel(server: Server, aconn: aio.Conn) -> None:
    name = unique()
    with pytest.raises(ValueError):
        await aconn.make(name, 1, max_deliver=2)
    ch = await aconn.make(name, 4, ack_wait=ACK_WAIT, max_deliver=2, dead_letter=name + ".d")
    with pytest.raises(chand.Exists):
        await aconn.make(name, 4, ack_wait=ACK_WAIT)
    dl = await aconn.make(name + ".d", 2)
    await ch.send(b"a")
    await ch.send(b"b")
    m = await ch.recv_msg(timeout=BOUND)
    assert isinstance(m, aio.Message) and (m.value, m.count) == (b"a", 1)
    entries, total = await aconn.inflight(name)
    assert total == 1 and entries[0].tag == m.tag
    assert (await ch.info()).inflight == 1
    other = await aio.dial(server.addr)
    try:
        with pytest.raises(chand.PermissionDenied):
            await other.ack(m.tag)
    finally:
        await other.close()
    await m.touch()
    await m.nack()
    again = await ch.recv_msg(timeout=BOUND)
    assert (again.value, again.count) == (b"a", 2)           # ahead of b
    with pytest.raises(KeyError):
        async with again:
            raise KeyError("fails")                          # nacked: 2 deliveries done
    v, ok = await dl.recv(timeout=BOUND)
    assert msgpack.unpackb(v, raw=False)["reason"] == "nack"
    async with await ch.recv_msg(timeout=BOUND) as m:
        assert (m.value, m.count) == (b"b", 1)
    assert m.settled
    with pytest.raises(chand.NotFound):
        await aconn.ack(m.tag)
    i = await ch.info()
    assert (i.inflight, i.len, i.dead_lettered) == (0, 0, 1)


async def test_aio_ack_wait_and_disconnect(server: Server, aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 2, ack_wait=0.2)
    await ch.send(b"x")
    m = await ch.recv_msg(timeout=BOUND)
    again = await ch.recv_msg(timeout=BOUND)                 # after ack_wait
    assert (again.value, again.count) == (b"x", 2)
    with pytest.raises(chand.NotFound):
        await m.ack()
    holder = await aio.dial(server.addr)
    await again.nack()                                       # to the other connection
    held = await holder.handle(ch.name).recv_msg(timeout=BOUND)
    assert held.count == 3
    await holder.close()
    last = await ch.recv_msg(timeout=BOUND)
    assert (last.value, last.count) == (b"x", 4)
    await last.ack()
