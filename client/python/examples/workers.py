#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""workers.py: a worker pool on one channel, the README's example.

Four worker threads range over "jobs" and send each result on "results"; main sends
ten jobs, closes "jobs" (so every worker's range ends) and collects ten results.

Output: the squares of 0..9, in some order, then "10 results".

Usage: workers.py [tcp://127.0.0.1:7420]
"""

import sys
import threading

import chand

conn = chand.dial(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:7420")
jobs, results = conn.make(None, 16), conn.make(None, 16)   # make(chan []byte, 16)


def worker() -> None:
    for job in jobs:                                        # for job := range jobs
        results.send(str(int(job) ** 2))


pool = [threading.Thread(target=worker) for _ in range(4)]
for t in pool:
    t.start()
for i in range(10):
    jobs.send(str(i))
jobs.close()                                                # every worker's range ends
got = sorted(int(results.recv(timeout=10)[0]) for _ in range(10))
for t in pool:
    t.join()
print(*got)
print(f"{len(got)} results")
conn.close()
