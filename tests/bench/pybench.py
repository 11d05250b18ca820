#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""pybench: workloads 1 and 2 of tests/bench from Python, on chand and on Redis.

    pybench.py -p PORT [-n N] [-t DEPTH] [-s SIZE] [-k TAG] [-o SAMPLES]
               [--redis] [--threads | --aio] [--procs N]
               throughput|pingpong

Figures are "RESULT <tag> <metric> <value>" lines on stdout, as chanbench and
redis_bench print them, so that run.sh can record them as two more systems:
chand through the Python client (client/python, package chand) and Redis
through redis-py (Debian's python3-redis) doing the same work.

  throughput  (1) one producer connection and one consumer connection on a
              channel of cap 1024: the producer keeps DEPTH sends in flight
              (DEPTH threads sharing its connection), the consumer a stream
              of credit DEPTH. -n values of -s bytes. Metrics msgs_s, and
              cpu_us: the process's CPU time (every thread, user and
              system) per value, which the machine's load moves less;
              prod_cpu_us and cons_cpu_us: the producer's threads' and
              the consumer thread's share of it (sync shapes only).
              The producer keeps them in flight from one thread with
              Chan.send_async, as chanbench does with chan_send_async;
              --threads: from DEPTH threads each blocking in Chan.send.
              --redis: the producer LPUSHes and the consumer BRPOPs, DEPTH
              commands pipelined on each connection.
              --aio: asyncio (chand.aio; redis.asyncio with --redis), the
              producer's DEPTH sends in flight from DEPTH tasks.
              --procs N: N such processes (one producer and one consumer
              each, on a channel or key of their own) started together;
              msgs_s is their values over first start to last end, cpu_us
              their CPU summed per value. The same shape for chand and
              Redis, for either client: one process has one GIL.
  pingpong    (2) two processes, each with its own connection, bounce a
              value over two unbuffered channels: -n round trips after n/10
              warm-up ones. p50_us, p99_us, mean_us of a round trip, and
              cpu_us, the pinger's CPU time per round trip.
              --redis: LPUSH ping / BLPOP pong against BLPOP ping / LPUSH pong.
              --aio: the pinger through asyncio (the echo stays sync).

The Python client is found beside this file (../../client/python) unless
chand is importable already.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import statistics
import sys
import threading
import time
import uuid
from collections import deque
from typing import Any, Awaitable, Callable, Deque, List, NamedTuple, Optional

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))

import chand  # noqa: E402
import chand.aio as aio  # noqa: E402

BUDGET = 300.0      # every blocking call, as chanbench's contexts


def result(tag: str, metric: str, value: float) -> None:
    print(f"RESULT {tag} {metric} {value:.6g}", flush=True)


def latencies(tag: str, lat_ns: List[int], samples: Optional[str]) -> None:
    lat_ns.sort()

    def q(p: float) -> float:
        return lat_ns[min(len(lat_ns) - 1, int(p * len(lat_ns)))] / 1e3

    result(tag, "p50_us", q(0.50))
    result(tag, "p99_us", q(0.99))
    result(tag, "mean_us", statistics.fmean(lat_ns) / 1e3)
    if samples:
        with open(samples, "w") as f:
            f.writelines(f"{v / 1e3:.3f}\n" for v in lat_ns)


class Span(NamedTuple):
    """One throughput run: when it started and ended (time.monotonic, one clock for
    every process), the process's CPU seconds, the values moved, and the CPU seconds
    of the producer's threads and of the consumer's thread (0: not counted, asyncio)."""
    t0: float
    t1: float
    cpu: float
    n: int
    prod: float = 0.0
    cons: float = 0.0


def thread_cpu() -> float:
    """The calling thread's CPU seconds so far, user and system."""
    r = resource.getrusage(resource.RUSAGE_THREAD)
    return r.ru_utime + r.ru_stime


def report(tag: str, spans: List[Span]) -> None:
    """msgs_s over the runs together (first start to last end) and cpu_us per value
    (every process's CPU summed)."""
    n = sum(s.n for s in spans)
    secs = max(s.t1 for s in spans) - min(s.t0 for s in spans)
    result(tag, "msgs_s", n / secs)
    result(tag, "cpu_us", sum(s.cpu for s in spans) / n * 1e6)
    if all(s.prod and s.cons for s in spans):
        result(tag, "prod_cpu_us", sum(s.prod for s in spans) / n * 1e6)
        result(tag, "cons_cpu_us", sum(s.cons for s in spans) / n * 1e6)


def _one_proc(run: Callable[[argparse.Namespace], Any], o: argparse.Namespace,
              start: Any, out: Any) -> None:
    start.wait()        # every process is up: they start together
    span = run(o)
    out.put(asyncio.run(span) if asyncio.iscoroutine(span) else span)


def throughput(run: Callable[[argparse.Namespace], Any], o: argparse.Namespace) -> None:
    """--procs N: N processes each run the workload on a channel (key) of its own, all
    released at once; one process otherwise."""
    if o.procs <= 1:
        span = run(o)
        report(o.tag or "w1", [asyncio.run(span) if asyncio.iscoroutine(span) else span])
        return
    start, out = multiprocessing.Barrier(o.procs), multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_one_proc, args=(run, o, start, out))
             for _ in range(o.procs)]
    for p in procs:
        p.start()
    spans = [out.get(timeout=BUDGET) for _ in procs]
    for p in procs:
        p.join(BUDGET)
        if p.exitcode != 0:
            raise SystemExit(f"pybench: a process failed ({p.exitcode})")
    report(o.tag or "w1", spans)


# ---- chand ------------------------------------------------------------------------------


def chand_throughput(o: argparse.Namespace) -> "Span":
    addr = f"tcp://127.0.0.1:{o.port}"
    name = f"pybench.w1.{uuid.uuid4().hex[:8]}"
    prod, cons = chand.dial(addr, client_name="pybench"), chand.dial(addr, client_name="pybench")
    ch = prod.make(name, 1024)
    payload = b"x" * o.size
    depth = max(1, o.depth)
    prod_cpu: List[float] = []      # each producer thread's CPU seconds

    def producer() -> None:
        c = thread_cpu()
        ops: Deque[chand.Op] = deque()
        for _ in range(o.n):
            if len(ops) == depth:
                ops.popleft().wait()
            ops.append(ch.send_async(payload, timeout=BUDGET))
        for op in ops:
            op.wait()
        prod_cpu.append(thread_cpu() - c)

    def blocking_producer(k: int) -> None:
        c = thread_cpu()
        for _ in range(o.n // depth + (1 if k < o.n % depth else 0)):
            ch.send(payload, timeout=BUDGET)
        prod_cpu.append(thread_cpu() - c)

    t0, c0, cc = time.monotonic(), time.process_time(), thread_cpu()
    if o.threads:
        threads = [threading.Thread(target=blocking_producer, args=(k,)) for k in range(depth)]
    else:
        threads = [threading.Thread(target=producer)]
    for t in threads:
        t.start()
    got = 0
    with cons.handle(name).stream(min(depth, cons.info.max_stream_credit or 1),
                                  timeout=BUDGET) as s:
        while got < o.n:
            s.recv()
            got += 1
    t1, cons_cpu = time.monotonic(), thread_cpu() - cc
    for t in threads:
        t.join()
    span = Span(t0, t1, time.process_time() - c0, o.n, sum(prod_cpu), cons_cpu)
    prod.handle(name).delete()
    prod.close()
    cons.close()
    return span


def _chand_echo(addr: str, ping: str, pong: str, n: int) -> None:
    with chand.dial(addr, client_name="pybench-echo") as c:
        pi, po = c.handle(ping), c.handle(pong)
        for _ in range(n):
            v, _ = pi.recv(timeout=BUDGET)
            po.send(v, timeout=BUDGET)


def chand_pingpong(o: argparse.Namespace) -> None:
    addr = f"tcp://127.0.0.1:{o.port}"
    ping, pong = (f"pybench.w2.{uuid.uuid4().hex[:8]}.{x}" for x in ("ping", "pong"))
    c = chand.dial(addr, client_name="pybench")
    pi, po = c.make(ping, 0), c.make(pong, 0)
    warm = o.n // 10
    echo = multiprocessing.Process(target=_chand_echo, args=(addr, ping, pong, warm + o.n))
    echo.start()

    def one() -> None:
        pi.send(b"p", timeout=BUDGET)
        po.recv(timeout=BUDGET)

    _pingpong(o, one, warm)
    echo.join(BUDGET)
    pi.delete()
    po.delete()
    c.close()


def _pingpong(o: argparse.Namespace, one: Callable[[], None], warm: int) -> None:
    for _ in range(warm):
        one()
    lat: List[int] = []
    c0 = time.process_time()
    for _ in range(o.n):
        t = time.perf_counter_ns()
        one()
        lat.append(time.perf_counter_ns() - t)
    result(o.tag or "w2", "cpu_us", (time.process_time() - c0) / o.n * 1e6)
    latencies(o.tag or "w2", lat, o.samples)


# ---- chand through asyncio ------------------------------------------------------------------


async def aio_throughput(o: argparse.Namespace) -> "Span":
    addr = f"tcp://127.0.0.1:{o.port}"
    name = f"pybench.w1a.{uuid.uuid4().hex[:8]}"
    prod = await aio.dial(addr, client_name="pybench")
    cons = await aio.dial(addr, client_name="pybench")
    ch = await prod.make(name, 1024)
    payload = b"x" * o.size
    depth = max(1, o.depth)

    async def producer(k: int) -> None:
        for _ in range(o.n // depth + (1 if k < o.n % depth else 0)):
            await ch.send(payload, timeout=BUDGET)

    t0, c0 = time.monotonic(), time.process_time()
    tasks = [asyncio.ensure_future(producer(k)) for k in range(depth)]
    got = 0
    async with await cons.handle(name).stream(min(depth, cons.info.max_stream_credit or 1),
                                              timeout=BUDGET) as s:
        while got < o.n:
            await s.recv()
            got += 1
    t1 = time.monotonic()
    await asyncio.gather(*tasks)
    span = Span(t0, t1, time.process_time() - c0, o.n)
    await prod.handle(name).delete()
    await prod.close()
    await cons.close()
    return span


async def aio_pingpong(o: argparse.Namespace) -> None:
    addr = f"tcp://127.0.0.1:{o.port}"
    ping, pong = (f"pybench.w2a.{uuid.uuid4().hex[:8]}.{x}" for x in ("ping", "pong"))
    c = await aio.dial(addr, client_name="pybench")
    pi, po = await c.make(ping, 0), await c.make(pong, 0)
    warm = o.n // 10
    echo = multiprocessing.Process(target=_chand_echo, args=(addr, ping, pong, warm + o.n))
    echo.start()

    async def one() -> None:
        await pi.send(b"p", timeout=BUDGET)
        await po.recv(timeout=BUDGET)

    await _aio_pingpong(o, one, warm)
    echo.join(BUDGET)
    await pi.delete()
    await po.delete()
    await c.close()


async def _aio_pingpong(o: argparse.Namespace, one: Callable[[], Awaitable[None]],
                        warm: int) -> None:
    for _ in range(warm):
        await one()
    lat: List[int] = []
    c0 = time.process_time()
    for _ in range(o.n):
        t = time.perf_counter_ns()
        await one()
        lat.append(time.perf_counter_ns() - t)
    result(o.tag or "w2", "cpu_us", (time.process_time() - c0) / o.n * 1e6)
    latencies(o.tag or "w2", lat, o.samples)


# ---- Redis (redis-py) -------------------------------------------------------------------


def _redis(port: int):  # type: ignore[no-untyped-def]
    import redis
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=BUDGET)


def redis_throughput(o: argparse.Namespace) -> "Span":
    key = f"pybench.w1.{uuid.uuid4().hex[:8]}"
    prod, cons = _redis(o.port), _redis(o.port)
    payload = b"x" * o.size
    depth = max(1, o.depth)

    prod_cpu: List[float] = []

    def producer() -> None:
        c = thread_cpu()
        left = o.n
        while left:
            k = min(depth, left)
            p = prod.pipeline(transaction=False)
            for _ in range(k):
                p.lpush(key, payload)
            p.execute()
            left -= k
        prod_cpu.append(thread_cpu() - c)

    t0, c0, cc = time.monotonic(), time.process_time(), thread_cpu()
    t = threading.Thread(target=producer)
    t.start()
    left = o.n
    while left:
        k = min(depth, left)
        p = cons.pipeline(transaction=False)
        for _ in range(k):
            p.brpop(key, timeout=int(BUDGET))
        for r in p.execute():
            if r is None:
                raise SystemExit("pybench: redis: BRPOP timed out")
        left -= k
    t1, cons_cpu = time.monotonic(), thread_cpu() - cc
    t.join()
    span = Span(t0, t1, time.process_time() - c0, o.n, sum(prod_cpu), cons_cpu)
    prod.delete(key)
    return span


def _redis_echo(port: int, ping: str, pong: str, n: int) -> None:
    r = _redis(port)
    for _ in range(n):
        _, v = r.blpop(ping, timeout=int(BUDGET))
        r.lpush(pong, v)


def redis_pingpong(o: argparse.Namespace) -> None:
    ping, pong = (f"pybench.w2.{uuid.uuid4().hex[:8]}.{x}" for x in ("ping", "pong"))
    r = _redis(o.port)
    warm = o.n // 10
    echo = multiprocessing.Process(target=_redis_echo, args=(o.port, ping, pong, warm + o.n))
    echo.start()

    def one() -> None:
        r.lpush(ping, b"p")
        if r.blpop(pong, timeout=int(BUDGET)) is None:
            raise SystemExit("pybench: redis: BLPOP timed out")

    _pingpong(o, one, warm)
    echo.join(BUDGET)


async def aio_redis_throughput(o: argparse.Namespace) -> "Span":
    import redis.asyncio
    key = f"pybench.w1a.{uuid.uuid4().hex[:8]}"
    prod, cons = (redis.asyncio.Redis(host="127.0.0.1", port=o.port) for _ in range(2))
    payload = b"x" * o.size
    depth = max(1, o.depth)

    async def producer() -> None:
        left = o.n
        while left:
            k = min(depth, left)
            p = prod.pipeline(transaction=False)
            for _ in range(k):
                p.lpush(key, payload)
            await p.execute()
            left -= k

    t0, c0 = time.monotonic(), time.process_time()
    task = asyncio.ensure_future(producer())
    left = o.n
    while left:
        k = min(depth, left)
        p = cons.pipeline(transaction=False)
        for _ in range(k):
            p.brpop(key, timeout=int(BUDGET))
        for r in await p.execute():
            if r is None:
                raise SystemExit("pybench: redis: BRPOP timed out")
        left -= k
    t1 = time.monotonic()
    await task
    span = Span(t0, t1, time.process_time() - c0, o.n)
    await prod.delete(key)
    await prod.close()
    await cons.close()
    return span


async def aio_redis_pingpong(o: argparse.Namespace) -> None:
    import redis.asyncio
    ping, pong = (f"pybench.w2a.{uuid.uuid4().hex[:8]}.{x}" for x in ("ping", "pong"))
    r = redis.asyncio.Redis(host="127.0.0.1", port=o.port)
    warm = o.n // 10
    echo = multiprocessing.Process(target=_redis_echo, args=(o.port, ping, pong, warm + o.n))
    echo.start()

    async def one() -> None:
        await r.lpush(ping, b"p")
        if await r.blpop(pong, timeout=int(BUDGET)) is None:
            raise SystemExit("pybench: redis: BLPOP timed out")

    await _aio_pingpong(o, one, warm)
    echo.join(BUDGET)
    await r.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-p", "--port", type=int, required=True)
    ap.add_argument("-n", type=int, default=20000)
    ap.add_argument("-t", "--depth", type=int, default=16)
    ap.add_argument("-s", "--size", type=int, default=16)
    ap.add_argument("-k", "--tag", default=None)
    ap.add_argument("-o", "--samples", default=None)
    ap.add_argument("--redis", action="store_true")
    ap.add_argument("--threads", action="store_true")
    ap.add_argument("--aio", action="store_true")
    ap.add_argument("--procs", type=int, default=1)
    ap.add_argument("workload", choices=["throughput", "pingpong"])
    o = ap.parse_args()
    if o.workload == "throughput":
        tput = {(False, False): chand_throughput, (False, True): redis_throughput,
                (True, False): aio_throughput, (True, True): aio_redis_throughput}
        throughput(tput[(o.aio, o.redis)], o)
    elif o.aio:
        asyncio.run((aio_redis_pingpong if o.redis else aio_pingpong)(o))
    else:
        (redis_pingpong if o.redis else chand_pingpong)(o)

if __name__ == "__main__":
    main()
