# SPDX-License-Identifier: BSD-2-Clause
"""Interoperability with the C client through the built chanctl(1): C sends and Python
receives, and the reverse; channel references; error values of a fan-out job."""

from __future__ import annotations

import json
import os
import subprocess
import threading

import pytest

import chand
from chandtest import CHANCTL, Server, unique, until

pytestmark = pytest.mark.skipif(not os.access(CHANCTL, os.X_OK),
                                reason=f"no chanctl at {CHANCTL}: build the tree or set CHANCTL")


def chanctl(server: Server, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    # tcp://: this tree's chan_dial refuses the bare HOST:PORT form chanctl(1) lists
    return subprocess.run([CHANCTL, "-s", f"tcp://{server.addr}", *args], input=stdin,
                          capture_output=True, timeout=30)


def test_c_sends_python_receives(server: Server, conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    out: list = []
    t = threading.Thread(target=lambda: out.append(ch.recv(timeout=30)))
    t.start()
    until(lambda: ch.info().receivers == 1)
    r = chanctl(server, "send", ch.name, stdin=b"from C \x00\xff")
    t.join(10)
    assert r.returncode == 0, r.stderr
    assert out == [(b"from C \x00\xff", True)]


def test_python_sends_c_receives(server: Server, conn: chand.Conn) -> None:
    ch = conn.make(unique(), 4)
    ch.send(b"hello")
    ch.send("wörld")
    r = chanctl(server, "recv", "-n", "2", ch.name)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\nwörld\n".encode()
    ch.close()
    r = chanctl(server, "recv", "-t", "5s", ch.name)
    assert r.returncode == 5                          # closed and drained


def test_c_makes_python_opens(server: Server, conn: chand.Conn) -> None:
    name = unique()
    assert chanctl(server, "make", name, "3").returncode == 0
    assert conn.open(name).cap == 3
    conn.handle(name).close()
    r = chanctl(server, "--json", "info", name)
    assert r.returncode == 0 and json.loads(r.stdout)["closed"] is True


def test_references_both_ways(server: Server, conn: chand.Conn) -> None:
    # Python -> C: chanctl shows the reference it received
    ch = conn.make(unique(), 2)
    ref = conn.make(None, 1)
    ch.send(ref)
    r = chanctl(server, "recv", ch.name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == f"chan:{ref.name}\n"
    ch.send(ref)
    r = chanctl(server, "--json", "recv", ch.name)
    assert json.loads(r.stdout)["values"] == [{"chan": ref.name}]
    # C -> Python through a server-side bridge: C's values reach Python along the
    # reference Python sent
    chans = conn.make(unique(), 2)
    inner = conn.make(unique(), 4)
    link = chand.bridge(chans)
    chans.send(inner)
    chans.close()
    for v in (b"c1", b"c2"):
        assert chanctl(server, "send", inner.name, stdin=v).returncode == 0
    assert chanctl(server, "close", inner.name).returncode == 0
    assert list(link.out) == [b"c1", b"c2"]
    assert link.wait() == 2


def test_error_values_from_a_job(server: Server, conn: chand.Conn) -> None:
    src = conn.make(unique(), 4)
    job = chand.fan_out(src, "isprime", 1, ordered=True)
    for v in (b"11", b"eleven"):
        r = chanctl(server, "send", src.name, stdin=v)
        assert r.returncode == 0, r.stderr
    v1, _ = job.out.recv(timeout=30)
    v2, _ = job.out.recv(timeout=30)
    assert v1 == b"11"
    assert isinstance(v2, chand.ErrorValue) and v2.message   # returned, not raised
    # and C receives an error value as an error, not data
    src.send(b"not prime either")
    r = chanctl(server, "recv", "-t", "10s", job.out.name)
    assert r.stdout == b"" and b"error value" in r.stderr
    src.close()
    job.wait()


def test_c_sees_python_waiters(server: Server, conn: chand.Conn) -> None:
    ch = conn.make(unique(), 0)
    ctx = chand.with_cancel()
    t = threading.Thread(target=lambda: pytest.raises(chand.Canceled, ch.recv, ctx=ctx))
    t.start()
    until(lambda: ch.info().receivers == 1)
    r = chanctl(server, "--json", "waiters")
    assert r.returncode == 0
    assert ch.name in r.stdout.decode()
    ctx.cancel()
    t.join(10)


def test_c_closes_with_an_error_python_receives(server: Server, conn: chand.Conn) -> None:
    # the replies one result longer (PROTOCOL.md §5 CLOSE) are neither malformed nor,
    # on a stream, its end
    ch = conn.make(unique(), 2)
    ch.send(b"v")
    r = chanctl(server, "close", "--error", "disk full", "--code", "28", ch.name)
    assert r.returncode == 0, r.stderr
    want = chand.CloseError(28, "disk full")
    assert ch.recv(timeout=10) == (b"v", True) and ch.err is None
    assert ch.recv(timeout=10) == (None, False) and ch.err == want
    h = conn.handle(ch.name)
    assert h.try_recv() == (None, False) and h.err == want
    h = conn.handle(ch.name)
    assert list(h) == [] and h.err == want
    h = conn.handle(ch.name)
    assert chand.select(chand.recv(h), timeout=10) == (0, None, False) and h.err == want
    with ch.stream(2) as s:
        assert s.recv() == (0, None, False) and s.err(0) == want
        with pytest.raises(chand.Closed):
            s.recv()
        assert s.delivered == 0
    assert not conn.closed and ch.info().close_error == want
    name = unique()                                   # --code alone: an empty message
    assert chanctl(server, "make", name).returncode == 0
    assert chanctl(server, "close", "--code", "3", name).returncode == 0
    assert conn.handle(name).info().close_error == chand.CloseError(3, "")


def test_python_closes_with_an_error_c_receives(server: Server, conn: chand.Conn) -> None:
    ch = conn.make(unique(), 2)
    ch.send(b"last")
    ch.close(chand.CloseError(28, "disk full"))
    r = chanctl(server, "recv", "-n", "2", "-t", "5s", ch.name)
    assert r.returncode == 5
    assert r.stdout == b"last\n"
    assert f"chanctl: {ch.name}: closed with error 28: disk full".encode() in r.stderr
    r = chanctl(server, "--json", "recv", "-t", "5s", ch.name)
    assert r.returncode == 5
    doc = json.loads(r.stdout)
    assert doc["closed"] is True
    assert doc["close_error"] == {"code": 28, "message": "disk full"}
    r = chanctl(server, "--json", "info", ch.name)
    assert r.returncode == 0
    info = json.loads(r.stdout)                      # chanctl(1): close_code, close_error
    assert (info["close_code"], info["close_error"]) == (28, "disk full")
    # a plain close from Python: no error for C either
    plain = conn.make(unique(), 0)
    plain.close()
    r = chanctl(server, "recv", "-t", "5s", plain.name)
    assert r.returncode == 5 and b"closed with error" not in r.stderr


def test_ack_channel_values_are_acked(server: Server, conn: chand.Conn) -> None:
    # an ack channel (PROTOCOL.md §16) made by chanctl: recv, select and a stream take
    # its tagged values and ack them, as libchanclient's untagged calls do
    name = unique()
    r = chanctl(server, "make", "--ack-wait", "30s", name, "8")
    assert r.returncode == 0, r.stderr
    ch = conn.open(name)
    for v in (b"a", b"b", b"c"):
        ch.send(v)
    assert ch.recv(timeout=10) == (b"a", True)
    assert chand.select(chand.recv(ch)) == (0, b"b", True)
    with ch.stream(1) as s:
        assert s.recv() == (0, b"c", True)

    def inflight() -> int:
        r = chanctl(server, "--json", "info", name)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)["inflight"]
    until(lambda: inflight() == 0, what="every value acked")
    # closed with an error and drained, nothing in flight: ok false and the error
    ch.close(chand.CloseError(3, "done"))
    assert ch.recv(timeout=10) == (None, False)
    assert ch.err == chand.CloseError(3, "done")
