# SPDX-License-Identifier: BSD-2-Clause
"""Mixed operations from many threads (and tasks) on two shared connections, with
contexts cancelled and deadlines passing at random moments: no unexpected error, no
hang, and nothing left behind: no waiter on the server, no call record in the client.
Randomness here makes races, it synchronises nothing; every wait is bounded."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import chand
import chand.aio as aio
from chandtest import Server, until

SECONDS = 1.0


def test_threads_mixed_ops_with_cancels(server: Server) -> None:
    c, c2 = server.dial(), server.dial()
    chans = [c.make(f"stress.{random.getrandbits(32):x}.{i}", i % 3) for i in range(4)]
    stop = time.monotonic() + SECONDS
    errors: list = []
    timers: list = []

    def worker(k: int) -> None:
        rnd = random.Random(k)
        while time.monotonic() < stop:
            conn = rnd.choice([c, c2])
            h = conn.handle(rnd.choice(chans).name)
            other = conn.handle(rnd.choice(chans).name)
            ctx = chand.with_cancel()
            if rnd.random() < 0.3:
                t = threading.Timer(rnd.random() * 0.01, ctx.cancel)
                timers.append(t)
                t.start()
            try:
                op = rnd.randrange(6)
                if op == 0:
                    h.send(b"x", ctx=ctx, timeout=rnd.random() * 0.02)
                elif op == 1:
                    h.recv(ctx=ctx, timeout=rnd.random() * 0.02)
                elif op == 2:
                    chand.select(chand.recv(h), chand.send(other, b"y"), ctx=ctx, timeout=0.01)
                elif op == 3:
                    h.try_send(b"z")
                elif op == 4:
                    h.try_recv()
                else:
                    with h.stream(2, ctx=ctx, timeout=0.02) as st:
                        try:
                            st.recv()
                        except (chand.DeadlineExceeded, chand.Canceled):
                            pass
            except (chand.DeadlineExceeded, chand.Canceled):
                pass
            except Exception as e:  # anything else is a bug
                errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for t in timers:
            t.join(10)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        until(lambda: c.stats()["waiters"] == 0, what="no waiter left")
        for conn in (c, c2):
            # conn.closed reads what has arrived (no call waits): the last CANCELs' replies
            until(lambda: not conn.closed and not conn._calls and not conn._abandoned,
                  what="no call record left")
    finally:
        c.close()
        c2.close()


async def test_tasks_mixed_ops_with_cancels(server: Server) -> None:
    c, c2 = await aio.dial(server.addr), await aio.dial(server.addr)
    chans = [await c.make(f"astress.{random.getrandbits(32):x}.{i}", i % 3) for i in range(4)]
    loop = asyncio.get_running_loop()
    stop = loop.time() + SECONDS
    errors: list = []

    async def worker(k: int) -> None:
        rnd = random.Random(k)
        while loop.time() < stop:
            conn = rnd.choice([c, c2])
            h = conn.handle(rnd.choice(chans).name)
            op = rnd.randrange(4)
            if op == 0:
                coro = h.send(b"x", timeout=0.02)
            elif op == 1:
                coro = h.recv(timeout=0.02)
            elif op == 2:
                coro = aio.select(aio.recv(h), aio.send(conn.handle(rnd.choice(chans).name), b"y"),
                                  timeout=0.02)
            else:
                coro = h.try_recv()
            task = asyncio.ensure_future(coro)
            if rnd.random() < 0.5:
                await asyncio.sleep(rnd.random() * 0.005)
                task.cancel()
            try:
                await asyncio.wait_for(task, 30)
            except (asyncio.CancelledError, chand.DeadlineExceeded):
                pass
            except Exception as e:  # anything else is a bug
                errors.append(repr(e))

    try:
        await asyncio.gather(*(worker(k) for k in range(16)))
        assert errors == []
        end = loop.time() + 10
        while (await c.stats())["waiters"] and loop.time() < end:
            await asyncio.sleep(0.005)
        assert (await c.stats())["waiters"] == 0
        while (c._calls or c2._calls or c._abandoned or c2._abandoned) and loop.time() < end:
            await asyncio.sleep(0.005)
        assert not (c._calls or c2._calls or c._abandoned or c2._abandoned)
    finally:
        await c.close()
        await c2.close()
