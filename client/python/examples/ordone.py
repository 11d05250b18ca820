#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""ordone.py: the or-done channel, run inside chand (client/examples/ordone_server.c).

    for val := range orDone(done, myChan) {
        // Do something with val
    }

myChan is a channel from "a disparate part of the system" that never closes: here a
REPEAT link cycling "a", "b", "c". orDone forwards its values until done closes; the
consumer ranges over orDone's output with a plain loop, and no select on done is
needed: after five values it closes done, which stops both links (they share done),
and the range ends because a stopped link closes its output.

Output:
    a b c a b
    close(done): the range over orDone ended
    orDone: Canceled; myChan's repeat: Canceled

Usage: ordone.py [tcp://127.0.0.1:7420]
"""

import sys

import chand


def outcome(link: chand.Link) -> str:
    try:
        return f"ended, {link.wait()} sent"
    except chand.Error as e:
        return type(e).__name__


def main() -> None:
    with chand.dial(sys.argv[1] if len(sys.argv) > 1 else "tcp://127.0.0.1:7420") as conn:
        done = conn.make()
        rep = chand.repeat(conn, [b"a", b"b", b"c"], done=done)
        ord_ = chand.or_done(rep.out, done=done)
        got = []
        for v in ord_.out:                     # for val := range orDone(done, myChan)
            got.append(v.decode())
            if len(got) == 5:
                print(" ".join(got))
                done.close()
        if not 5 <= len(got) <= 6:             # at most the value in flight
            sys.exit(1)
        print("close(done): the range over orDone ended")
        print(f"orDone: {outcome(ord_)}; myChan's repeat: {outcome(rep)}")


if __name__ == "__main__":
    main()
