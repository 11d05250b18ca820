#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""pipeline.py: generator -> multiply -> add -> multiply, stopped by done.

The notes' "Best Practices for Constructing Pipelines", as client/examples/pipeline.c
runs it: each stage is a thread; stages pass values through unbuffered anonymous
channels on one shared connection. The first run ranges to the end; the second takes
two values and closes done: every stage leaves, the ones blocked on a send through
their select's done case, the others because their input was closed, and each closes
its output on the way out (``defer close(out)``).

Output:
    6
    10
    14
    18
    4 stages exited after the pipeline drained
    6
    10
    4 stages exited after close(done) with 2 values taken

Usage: pipeline.py [tcp://127.0.0.1:7420]
"""

import sys
import threading
from typing import Callable, List, Optional

import chand


def send_or_done(done: chand.Chan, out: chand.Chan, v: int) -> bool:
    """select { case <-done: return false; case out <- v: return true }"""
    i, _, _ = chand.select(chand.recv(done), chand.send(out, str(v)))
    return i == 1


def stage(done: chand.Chan, inp: Optional[chand.Chan], out: chand.Chan,
          f: Callable[[int], int], n: int) -> None:
    try:
        if inp is None:                       # the generator: 1..n
            for i in range(1, n + 1):
                if not send_or_done(done, out, i):
                    break
        else:
            for v in inp:                     # for v := range in
                if not send_or_done(done, out, f(int(v))):
                    break
    finally:
        out.close()                           # defer close(out)


def run(conn: chand.Conn, take: int) -> None:
    plan = [(lambda v: v, 4), (lambda v: v * 2, 0), (lambda v: v + 1, 0), (lambda v: v * 2, 0)]
    done = conn.make()
    threads: List[threading.Thread] = []
    prev: Optional[chand.Chan] = None
    for f, n in plan:
        out = conn.make()
        threads.append(threading.Thread(target=stage, args=(done, prev, out, f, n)))
        threads[-1].start()
        prev = out
    assert prev is not None
    taken = 0
    for v in prev:                            # for v := range pipeline
        print(int(v))
        taken += 1
        if taken == take:
            break
    done.close()                              # defer close(done)
    for t in threads:
        t.join()
    if take == 0:
        print(f"{len(plan)} stages exited after the pipeline drained")
    else:
        print(f"{len(plan)} stages exited after close(done) with {taken} values taken")


def main() -> None:
    with chand.dial(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:7420") as conn:
        run(conn, 0)
        run(conn, 2)


if __name__ == "__main__":
    main()
