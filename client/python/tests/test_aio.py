# SPDX-License-Identifier: BSD-2-Clause
"""chand.aio against a real chand: the same semantics with await, task cancellation
sending CANCEL, asyncio.wait_for and asyncio.TaskGroup."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import AsyncIterator

import pytest

import chand
import chand.aio as aio
from chandtest import Server, unique

BOUND = 10.0


@pytest.fixture
async def aconn(server: Server) -> AsyncIterator[aio.Conn]:
    c = await aio.dial(server.addr, client_name="pytest-aio")
    yield c
    await c.close()


async def until(cond, what: str = "condition"):
    """Await cond() (a coroutine function) until true, within the generous bound."""
    loop = asyncio.get_running_loop()
    end = loop.time() + BOUND
    while True:
        v = await cond()
        if v:
            return v
        if loop.time() > end:
            raise AssertionError(f"{what} not met within {BOUND} s")
        await asyncio.sleep(0.005)


async def receivers(ch: aio.Chan) -> int:
    return (await ch.info()).receivers


async def test_basics(aconn: aio.Conn) -> None:
    assert aconn.info.version == 1
    await aconn.ping()
    ch = await aconn.make(unique(), 2)
    assert ch.cap == 2
    await ch.send(b"a")
    await ch.send("b")
    assert await ch.len() == 2 and await ch.get_cap() == 2
    assert await ch.recv() == (b"a", True)
    assert await ch.try_recv() == (b"b", True)
    assert await ch.try_recv() is None
    assert await ch.try_send(b"c") and await ch.try_send(b"d")
    assert not await ch.try_send(b"e")
    await ch.close()
    assert [v async for v in ch] == [b"c", b"d"]
    assert await ch.recv() == (None, False)
    with pytest.raises(chand.Closed):
        await ch.send(b"x")
    assert await ch.delete() == 0
    with pytest.raises(chand.NotFound):
        await ch.info()
    with pytest.raises(chand.Exists):
        n = unique()
        await aconn.make(n, 1)
        await aconn.make(n, 2)


async def test_unix_and_open(server: Server, aconn: aio.Conn) -> None:
    async with await aio.dial(f"unix:{server.sock}") as c:
        ch = await aconn.make(unique(), 3)
        assert (await c.open(ch.name)).cap == 3
        with pytest.raises(chand.NotFound):
            await c.open(unique())


async def test_rendezvous_between_tasks(aconn: aio.Conn) -> None:
    ch = await aconn.make(None, 0)

    async def producer() -> None:
        for i in range(5):
            await ch.send(str(i))
        await ch.close()

    task = asyncio.create_task(producer())
    assert [v async for v in ch] == [str(i).encode() for i in range(5)]
    await task


async def test_task_cancel_sends_cancel(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 0)
    task = asyncio.create_task(ch.recv())
    await until(lambda: receivers(ch), "receiver queued")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the server shows no waiter left
    await until(lambda: _zero(ch), "no waiter left")
    await aconn.ping()                                # and the connection goes on


async def _zero(ch: aio.Chan) -> bool:
    return (await ch.info()).receivers == 0


async def test_wait_for(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 0)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ch.recv(), 0.1)
    await until(lambda: _zero(ch), "no waiter left")


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is 3.11")
async def test_task_group(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 0)
    other = await aconn.make(unique(), 0)

    async def fail_once_waiting() -> None:
        await until(lambda: receivers(ch), "receiver queued")
        raise RuntimeError("boom")

    with pytest.raises(BaseException) as ei:
        async with asyncio.TaskGroup() as tg:   # type: ignore[attr-defined]
            tg.create_task(ch.recv())
            tg.create_task(other.recv())
            tg.create_task(fail_once_waiting())
    assert "boom" in repr(ei.value)
    await until(lambda: _both_zero(ch, other), "no waiter left")


async def _both_zero(a: aio.Chan, b: aio.Chan) -> bool:
    return (await a.info()).receivers + (await b.info()).receivers == 0


async def test_deadlines_and_contexts(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 0)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with pytest.raises(chand.DeadlineExceeded):
        await ch.recv(timeout=0.1)
    assert loop.time() - t0 < BOUND
    ctx = chand.with_cancel()
    task = asyncio.create_task(ch.recv(ctx=ctx))
    await until(lambda: receivers(ch), "receiver queued")
    threading.Thread(target=ctx.cancel).start()      # cancel from another thread
    with pytest.raises(chand.Canceled):
        await task
    assert (await ch.info()).receivers == 0          # the server confirmed first
    with pytest.raises(chand.Canceled):
        await ch.recv(ctx=ctx)                       # done already: nothing sent


async def test_concurrent_tasks_one_connection(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 0)
    n = 200
    sends = [asyncio.create_task(ch.send(str(i))) for i in range(n)]
    got = [(await ch.recv())[0] for _ in range(n)]
    await asyncio.gather(*sends)
    assert sorted(got) == sorted(str(i).encode() for i in range(n))


async def test_select(aconn: aio.Conn) -> None:
    a, b = await aconn.make(unique(), 1), await aconn.make(unique(), 1)
    await a.send(b"x")
    assert await aio.select(chand.recv(a), chand.recv(b)) == (0, b"x", True)
    assert await aio.select(chand.recv(a), chand.send(b, b"y")) == (1, None, True)
    assert await aio.select(aio.recv(a), default=True) == (-1, None, True)
    await a.close()
    with pytest.raises(chand.Closed) as ei:
        await aio.select(chand.recv(None), chand.send(a, b"z"))
    assert ei.value.index == 1
    with pytest.raises(chand.DeadlineExceeded):
        await aio.select(chand.recv(None), timeout=0.05)
    c = await aconn.make(unique(), 0)
    with pytest.raises(chand.DeadlineExceeded):
        await aio.select(chand.recv(c), timeout=0.05)


async def test_references(aconn: aio.Conn, server: Server) -> None:
    chans = await aconn.make(unique(), 1)
    inner = await aconn.make(None, 1)
    await inner.send(b"in")
    await chans.send(inner)
    async with await aio.dial(server.addr) as other:
        v, ok = await other.handle(chans.name).recv()
        assert isinstance(v, aio.Chan) and v.conn is other
        assert await v.recv() == (b"in", True)


async def test_stream(aconn: aio.Conn) -> None:
    ch = await aconn.make(unique(), 0)
    s = await ch.stream(3)
    await until(lambda: _n_receivers(ch, 3), "credit queued")

    async def producer() -> None:
        for i in range(20):
            await ch.send(str(i))
        await ch.close()

    task = asyncio.create_task(producer())
    assert [v async for v in s] == [str(i).encode() for i in range(20)]
    await task
    assert s.delivered == 20
    ctx = chand.with_cancel()
    ch2 = await aconn.make(unique(), 0)
    async with await ch2.stream(2, ctx=ctx) as s2:
        ctx.cancel()
        with pytest.raises(chand.Canceled):
            await s2.recv()
    assert (await ch2.info()).receivers == 0


async def _n_receivers(ch: aio.Chan, n: int) -> bool:
    return (await ch.info()).receivers == n


async def test_links(aconn: aio.Conn) -> None:
    rep = await aio.repeat(aconn, [b"1", b"2"])
    tk = await aio.take(rep.out, 3)
    assert [v async for v in tk.out] == [b"1", b"2", b"1"]
    assert await tk.wait() == 3
    rep.cancel()
    with pytest.raises(chand.Canceled):
        await rep.wait()
    src = await aconn.make(unique(), 4)
    job = await aio.fan_out(src, "isprime", 1, ordered=True)
    for v in (b"2", b"4", b"x"):
        await src.send(v)
    await src.close()
    got = [v async for v in job.out]
    assert got[0] == b"2" and isinstance(got[1], chand.ErrorValue) and len(got) == 2
    assert await job.wait() == 2
    a, b = await aconn.make(unique(), 1), await aconn.make(unique(), 1)
    o = await aio.or_(a, b)
    await a.close()
    assert [v async for v in o.out] == []
    await o.wait()
    fi = await aio.fan_in(a, b)
    await b.close()
    assert [v async for v in fi.out] == []
    c = await aconn.make(unique(), 2)
    te = await aio.tee(c, outs=[(None, 2), (None, 2)])
    od = await aio.or_done(te.outputs[0])
    chans = await aconn.make(unique(), 1)
    br = await aio.bridge(chans)
    await c.send(b"t")
    await c.close()
    assert [v async for v in od.out] == [b"t"]
    assert [v async for v in te.outputs[1]] == [b"t"]
    await chans.send(b"not a ref")
    await chans.close()
    got = [v async for v in br.out]
    assert len(got) == 1 and isinstance(got[0], chand.ErrorValue)
    ctx = chand.with_cancel()
    rep = await aio.repeat(aconn, [b"v"], ctx=ctx)
    threading.Thread(target=ctx.cancel).start()
    with pytest.raises(chand.Canceled):
        await asyncio.wait_for(rep.wait(), BOUND)


async def test_admin(aconn: aio.Conn) -> None:
    assert (await aconn.stats())["connections"] >= 1
    n = unique("aioadm")
    await aconn.make(n, 0)
    infos, matched = await aconn.channels(n)
    assert matched == 1 and infos[0].name == n
    assert any(c.name == "pytest-aio" for c in await aconn.clients())
    ch = await aconn.make(unique(), 0)
    task = asyncio.create_task(ch.recv())
    ws = await until(lambda: _waiting_on(aconn, ch.name), "waiter listed")
    assert await aconn.unblock(ws[0].client, ws[0].request) == 1
    with pytest.raises(chand.Canceled):
        await task


async def _waiting_on(conn: aio.Conn, name: str):
    return [w for w in (await conn.waiters())[0] if w.cases == [(0, name)]]


async def test_connection_loss(server: Server) -> None:
    c = await aio.dial(server.addr)
    ch = await c.make(None, 0)
    task = asyncio.create_task(ch.recv())
    await until(lambda: receivers(ch), "receiver queued")
    await c.close()
    with pytest.raises(chand.ConnectionLost):
        await task
    with pytest.raises(chand.ConnectionLost):
        await c.ping()


async def test_dial_errors(tmp_path) -> None:
    with pytest.raises(chand.DialError):
        await aio.dial(f"unix:{tmp_path}/none.sock")
    with pytest.raises(ValueError):
        await aio.dial("bad://x")


async def test_ack_channel_values_are_acked(server: Server, aconn: aio.Conn) -> None:
    # an ack channel (PROTOCOL.md §16) made by chanctl: recv and select ack its values
    import json
    import os
    import subprocess
    from chandtest import CHANCTL
    if not os.access(CHANCTL, os.X_OK):
        pytest.skip(f"no chanctl at {CHANCTL}")

    def chanctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([CHANCTL, "-s", f"tcp://{server.addr}", *args],
                              capture_output=True, timeout=30)
    name = unique()
    assert chanctl("make", "--ack-wait", "30s", name, "8").returncode == 0
    ch = await aconn.open(name)
    await ch.send(b"a")
    await ch.send(b"b")
    assert await ch.recv(timeout=10) == (b"a", True)
    assert await aio.select(chand.recv(ch)) == (0, b"b", True)
    await aconn.ping()                       # the ACKs went before it
    assert json.loads(chanctl("--json", "info", name).stdout)["inflight"] == 0
