# SPDX-License-Identifier: BSD-2-Clause
"""One side of workload 1 through the Python client, for pycost.sh: N values sent with
send_async at 16 in flight (the producer) or taken by a stream of credit 16 (the
consumer). This process runs the side measured; the other side runs in a spawned
process (not forked: valgrind follows forks, not execs), so that only the measured
side's instructions are counted.

    pycost.py PORT N producer|consumer

The client package comes first on sys.path from $PYCLI (default: this tree's).
Prints "cpu_us_a_value X" (this process's CPU time over N, the spawned side's not in it).
"""

import multiprocessing
import os
import sys
import time
from collections import deque

sys.path.insert(0, os.environ.get("PYCLI") or
                os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../client/python"))
import chand  # noqa: E402

DEPTH = 16
PAYLOAD = b"x" * 64


def consume(addr: str, name: str, n: int) -> None:
    with chand.dial(addr) as c, c.handle(name).stream(DEPTH, timeout=60) as s:
        for _ in range(n):
            s.recv()


def produce(addr: str, name: str, n: int) -> None:
    with chand.dial(addr) as c:
        ch, ops = c.handle(name), deque()
        for _ in range(n):
            if len(ops) == DEPTH:
                ops.popleft().wait()
            ops.append(ch.send_async(PAYLOAD, timeout=60))
        for op in ops:
            op.wait()


def main() -> None:
    port, n, side = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    mine, other = (produce, consume) if side == "producer" else (consume, produce)
    addr, name = f"tcp://127.0.0.1:{port}", f"pycost.{os.getpid()}"
    with chand.dial(addr) as c:
        c.make(name, 1024)
        multiprocessing.set_start_method("spawn")
        p = multiprocessing.Process(target=other, args=(addr, name, n))
        p.start()
        t0 = time.process_time()
        mine(addr, name, n)
        print(f"cpu_us_a_value {(time.process_time() - t0) / n * 1e6:.2f}")
        p.join(60)
        c.handle(name).delete()
    if p.exitcode != 0:
        sys.exit(f"pycost.py: the {'consumer' if side == 'producer' else 'producer'} failed")


if __name__ == "__main__":
    main()
