#!/usr/bin/python3
# client_seeds.py: writes the seeds of fuzz_client (tests/fuzz/corpus/client/):
# each a client script and the server's records that answer it as chand
# would (PROTOCOL.md), or as it never would (the bad-* ones). The layout is
# fuzz_client.c's. Run from the top of the tree:
#   /usr/bin/python3 tests/fuzz/client_seeds.py
# SPDX-License-Identifier: BSD-2-Clause
import os
import struct

import msgpack

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "client")

# client ops (fuzz_client.c's client_ops order)
(PING, MAKE, OPEN, SEND, RECV, TRY, SELECT, LEN, INFO, CLOSE, STREAM, LINK, MSG, ASYNC,
 ADMIN) = range(15)

# record flags
RAW, ID, PUSH, HANGUP, CANCEL, LATE = 1, 2, 16, 32, 64, 128

# an op's context (the op byte's top 2 bits)
BACKGROUND, CANCELLABLE, HOUR, PASSED = range(4)


def under(op, ctx):
    return op | ctx << 6


def back(k):
    return k << 2


def pack(o):
    return msgpack.packb(o, use_bin_type=True)


def rec(flags, body):
    return bytes([flags]) + struct.pack(">H", len(body)) + body


def rep(status, *results, flags=0):
    """[id, status, results...] with the id of a recent request put in by the harness."""
    n = 2 + len(results)
    assert n < 16
    return rec(flags | ID, bytes([0x90 | n]) + b"".join(pack(x) for x in (status,) + results))


def raw_frame(*objs, flags=0):
    """Framed bodies the harness writes as they are, in one write (their ids fixed here)."""
    data = b""
    for obj in objs:
        b = pack(obj)
        data += struct.pack(">I", len(b)) + b
    return rec(flags | RAW, data)


HELLO = rep(0, {"version": 1, "server": "chand 0.1.0", "max_frame": 65536, "max_value": 4096,
                "max_pending": 64, "max_select_cases": 16, "max_stream_credit": 64,
                "max_waiters_per_connection": 256})


def info(name="a", **more):
    m = {"name": name, "len": 1, "cap": 4, "closed": False, "anonymous": False, "senders": 0,
         "receivers": 0, "bytes": 7}
    m.update(more)
    return m


def ref(name):
    return msgpack.ExtType(1, name.encode())


def err_value(msg):
    return msgpack.ExtType(2, msg.encode())


def seed(name, ops, records, hello=True):
    data = bytes([len(ops)]) + b"".join(bytes(op) for op in ops)
    data += (HELLO if hello else b"") + b"".join(records)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    seed("hello", [(PING, 0)], [rep(0)])
    seed("channel", [(MAKE, 4 << 3), (MAKE, 1), (OPEN, 1), (SEND, 7), (RECV, 0), (LEN, 0), (LEN, 1),
                     (INFO, 0), (CLOSE, 0), (CLOSE, 1), (CLOSE, 2)],
         [rep(0, "a", 4, True), rep(0, "~" + "0" * 32, 0, True), rep(0, 0), rep(0),
          rep(0, b"a value", True), rep(0, 1), rep(0, 4), rep(0, info()), rep(0), rep(1, "closed"),
          rep(0, 3)])
    seed("values", [(RECV, 0), (RECV, 0), (RECV, 0), (RECV, 1), (TRY, 0), (TRY, 1)],
         [rep(0, ref("b"), True), rep(0, err_value("stage failed"), True), rep(0, None, False),
          rep(0, None, False, [7, "why"]), rep(2, "not ready"), rep(0)])
    seed("select", [(SELECT, 0), (SELECT, 1), (SELECT, 2 | 4 << 2), (SELECT, 0), (SELECT, 0)],
         [rep(0, 0, b"x", True), rep(0, -1, None, False), rep(0, 1, None, False),
          rep(0, 0, None, False, [3, "done"]), rep(1, "closed", 1)])
    seed("select-ack", [(SELECT, 0), (PING, 0)],
         [rep(0, 0, b"x", True, 9, 1), rep(0, 1), rep(0)])
    # STREAM over a and b, credit 2, up to 4 values; CREDIT requests trigger records too
    seed("stream", [(STREAM, 1 | 1 << 1 | 3 << 3), (PING, 0)],
         [rep(0, 0, b"v1", True), rep(0, 1, b"v2", True, flags=PUSH),
          rep(0, 0, None, False, [5, "bye"], flags=back(1)), rep(0, 1, None, False, flags=back(1) | PUSH),
          rep(0, 1, flags=back(1) | PUSH), rep(0)])
    seed("stream-msg", [(STREAM, 128 | 1 << 3)],
         [rep(0, 0, b"v1", True, 5, 1), rep(4, "channel deleted", 0, flags=PUSH)])
    seed("links", [(LINK, 0 | 8), (LINK, 1 | 4), (LINK, 2), (LINK, 3)],
         [rep(11, ["~" + "1" * 32]), rep(0, b"out", True), rep(0, 1, flags=back(1)),
          rep(11, ["o1", "o2"]), rep(3, "canceled"),
          rep(11, ["t"]), rep(0, 3),
          rep(8, "limit")])
    seed("ack", [(MSG, 0), (MSG, 1), (MSG, 2), (MSG, 3), (PING, 0)],
         [rep(0, b"m", True, 1, 1), rep(0, b"m", True, 2, 1), rep(0, flags=back(1)), rep(0),
          rep(0, b"m", True, 3, 2), rep(0), rep(0, b"m", True, 4, 5), rep(0, 1), rep(0), rep(0)])
    seed("async", [(ASYNC, 1 | 3 << 1), (ASYNC, 0)],
         [rep(0, flags=back(1)), rep(0, b"r", True), rep(1, "closed", flags=back(1)),
          rep(0, None, False)])
    seed("admin", [(ADMIN, 0), (ADMIN, 1), (ADMIN, 2), (ADMIN, 3), (ADMIN, 4), (ADMIN, 9), (ADMIN, 14)],
         [rep(0, {"uptime_ms": 5, "channels": 2}),
          rep(0, [info(), info("~" + "2" * 32, anonymous=True, close_error=[1, "x"])], 2),
          rep(0, [{"client": 1, "request": 2, "op": 6, "waited_ms": 3, "cases": [[0, "a"], [1, None]]},
                  {"client": 2, "request": 9, "op": 10, "waited_ms": 1, "cases": [], "home": "n1"}], 2),
          rep(0, 3),
          rep(0, [{"id": 1, "peer": "unix", "name": "fuzz", "pending": 0, "age_ms": 1, "unsent": 0}]),
          rep(0, [{"name": "n1", "advertise": "127.0.0.1:7420", "owned": 3, "self": 1, "lease_left_ms": 9}]),
          rep(0, [{"client": 1, "tag": 3, "count": 1, "age_ms": 2}], 1)])
    # contexts: a cancel the server confirms, a value matched before the cancel reached it, the
    # server's deadline on a call with an hour left, a deadline passed before the call
    seed("cancel", [(under(RECV, CANCELLABLE), 0), (under(SEND, CANCELLABLE), 3),
                    (under(SELECT, HOUR), 0), (under(RECV, PASSED), 0), (PING, 0)],
         [rec(CANCEL, b""), rep(3, "canceled", flags=back(1)), rep(0, flags=PUSH),
          rec(CANCEL, b""), rep(0, flags=back(1)), rep(4, "no such request", flags=PUSH),
          rep(2, "deadline exceeded"), rep(0)])
    # the server confirms after the client's grace: the call gave up, the late replies are dropped
    seed("cancel-late", [(under(RECV, CANCELLABLE), 0), (PING, 0), (PING, 0)],
         [rec(CANCEL, b""), rep(3, "canceled", flags=back(1) | LATE), rep(0, flags=PUSH), rep(0),
          rep(0)])
    # what chand never sends
    seed("bad-notice", [(PING, 0), (PING, 0)], [raw_frame([0, 9, "you sent garbage"])])
    seed("bad-revoked", [(RECV, 0), (PING, 0)], [raw_frame([0, 6, "credentials revoked"])])
    seed("bad-unknown-id", [(PING, 0), (PING, 0)], [raw_frame([999, 0]), rep(0)])
    seed("bad-select-index", [(SELECT, 0), (PING, 0)], [rep(0, 5, b"x", True), rep(0)])
    seed("bad-select-default", [(SELECT, 0), (PING, 0)], [rep(0, -1, None, False), rep(0)])
    seed("bad-stream-index", [(STREAM, 0), (PING, 0)], [rep(0, 3, b"x", True), rep(0)])
    seed("bad-frame-length", [(PING, 0), (PING, 0)], [rec(RAW, b"\x7f\xff\xff\xff")])
    seed("bad-hangup-mid-frame", [(RECV, 0), (PING, 0)], [rec(RAW | HANGUP, b"\x00\x00\x00\x10\x94")])
    seed("bad-hello-refused", [(PING, 0)], [rep(6, "unknown token")], hello=False)
    seed("bad-hello-limits", [(SEND, 200), (STREAM, 1 << 1)],
         [rep(0, {"version": 1, "server": "x" * 100, "max_frame": 2**64 - 1, "max_value": 0,
                  "max_pending": 0, "max_select_cases": 0, "max_stream_credit": 0}), rep(0), rep(0, 0)],
         hello=False)
    seed("bad-interim", [(PING, 0), (RECV, 0), (PING, 0)],
         [rep(11, ["x"]), rep(0, b"v", True), rep(0, b"w", True, flags=PUSH), rep(0)])
    seed("bad-link-no-names", [(LINK, 1), (PING, 0)], [rep(11, []), rep(0, 0), rep(0)])
    seed("bad-protocol-status", [(PING, 0), (PING, 0)], [rep(9, "you broke it"), rep(0)])
    # credit 1, two values in one write: the second breaks the connection as it arrives
    seed("bad-stream-past-credit", [(STREAM, 1 << 3), (PING, 0)],
         [raw_frame([2, 0, 0, b"v1", True], [2, 0, 0, b"v2", True]), rep(0)])


if __name__ == "__main__":
    main()
