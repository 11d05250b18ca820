#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""fanout.py: the notes' fan-out prime finder, run inside chand
(client/examples/primes_server.c).

    for prime := range take(done, fanIn(done, finders...), 10) { ... }

The finders and their fan-in are one FAN_OUT job on the server's worker pool with the
built-in ``isprime`` stage (primes go on, other numbers are dropped); ``take`` is a TAKE
link. With ``ordered`` the results leave in input order. The first run sends 2..999 and
ranges over the job's output to its end; the second has a thread generate pseudo-random
numbers until done closes: take(10) ends after ten primes, close(done) stops the
generator and the job.

Output:
    Spinning up 2 prime finders on the server.
    168 primes below 1000: 2 3 5 7 11 13 17 19 23 29 ... 997
    Primes:
        ... (ten primes)
    took 10 primes, all prime, in input order; close(done) stopped the job

Usage: fanout.py [tcp://127.0.0.1:7420]
"""

import sys
import threading
from typing import List, Optional, Tuple

import chand

NFINDERS = 4


def is_prime(n: int) -> bool:
    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def prime_finders(inp: chand.Chan, done: Optional[chand.Chan]) -> Tuple[chand.Link, int]:
    """The job, with as many finders as the server's pool allows (at most NFINDERS)."""
    workers = NFINDERS
    while True:
        try:
            return chand.fan_out(inp, "isprime", workers, ordered=True, done=done), workers
        except chand.Limit:
            if workers == 1:
                raise
            workers //= 2


def below_1000(conn: chand.Conn) -> None:
    inp = conn.make(None, 1000)
    for v in range(2, 1000):
        inp.send(str(v))
    inp.close()
    job, workers = prime_finders(inp, None)
    print(f"Spinning up {workers} prime finders on the server.")
    primes = [int(v) for v in job.out]
    job.wait()
    print(f"{len(primes)} primes below 1000:", " ".join(map(str, primes[:10])), "...",
          primes[-1])
    if len(primes) != 168:
        sys.exit(1)


def take_10(conn: chand.Conn) -> None:
    done, ints = conn.make(), conn.make()
    sent: List[int] = []

    def rand_ints() -> None:                  # repeatFn(done, rand)
        seed = 1
        while True:
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            v = seed % 50000000
            sent.append(v)
            i, _, _ = chand.select(chand.recv(done), chand.send(ints, str(v)))
            if i == 0:
                return

    gen = threading.Thread(target=rand_ints)
    gen.start()
    job, _ = prime_finders(ints, done)
    ten = chand.take(job.out, 10)
    print("Primes:")
    primes = [int(v) for v in ten.out]
    for p in primes:
        print(f"\t{p}")
    ten.wait()
    done.close()
    gen.join()
    try:
        job.wait()
        sys.exit(1)                            # the job runs until done closes
    except chand.Canceled:
        pass
    it = iter(sent)
    in_order = all(p in it for p in primes)    # a subsequence of the input
    all_prime = all(map(is_prime, primes))
    print(f"took {len(primes)} primes, {'all prime' if all_prime else 'NOT ALL PRIME'}, "
          f"{'in input order' if in_order else 'OUT OF ORDER'}; close(done) stopped the job")
    if len(primes) != 10 or not all_prime or not in_order:
        sys.exit(1)


def main() -> None:
    with chand.dial(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:7420") as conn:
        below_1000(conn)
        take_10(conn)


if __name__ == "__main__":
    main()
