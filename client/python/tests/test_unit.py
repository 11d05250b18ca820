# SPDX-License-Identifier: BSD-2-Clause
"""The module alone: addresses, framing, the wait budget, errors, values, contexts."""

from __future__ import annotations

import os
import re
import struct
import threading
import time

import msgpack
import pytest

import chand
import chand.aio
from chand import _proto as P
from chand.context import deadline_of


@pytest.mark.parametrize("addr,want", [
    ("127.0.0.1:7000", ("tcp", "127.0.0.1", 7000, "")),
    ("localhost", ("tcp", "localhost", 7420, "")),
    ("[::1]:9", ("tcp", "::1", 9, "")),
    ("[::1]", ("tcp", "::1", 7420, "")),
    ("::1", ("tcp", "::1", 7420, "")),
    ("tcp://example.org:1", ("tcp", "example.org", 1, "")),
    ("tcp://example.org", ("tcp", "example.org", 7420, "")),
    ("tls://[fe80::1]:443", ("tls", "fe80::1", 443, "")),
    ("unix:/run/chand.sock", ("unix", "", 0, "/run/chand.sock")),
    ("/run/chand.sock", ("unix", "", 0, "/run/chand.sock")),
])
def test_parse_address(addr: str, want: tuple) -> None:
    a = chand.parse_address(addr)
    assert (a.scheme, a.host, a.port, a.path) == want


@pytest.mark.parametrize("addr", ["", "tcp://", "http://x:1", "x:0", "x:65536", "x:port",
                                  "[::1", "[::1]x", "[]:1", "unix:", ":7420", "a b:1",
                                  "a\tb:1", "a\x7fb:1", "user@h:1", "[::1 ]:1", "tcp://a\nb:1",
                                  "[a@b]"])
def test_parse_address_bad(addr: str) -> None:
    with pytest.raises(ValueError):
        chand.parse_address(addr)


def test_parse_address_tls_flag() -> None:
    assert chand.parse_address("h:1", tls=True).scheme == "tls"
    assert chand.parse_address("tcp://h:1", tls=True).scheme == "tls"
    with pytest.raises(ValueError):
        chand.parse_address("/sock", tls=True)
    with pytest.raises(TypeError):
        chand.parse_address(7420)  # type: ignore[arg-type]


@pytest.mark.parametrize("tls", ["no", 0, 1])
async def test_dial_tls_must_be_bool_or_context(tls: object) -> None:
    """A ``tls`` that is neither a bool nor an SSLContext is refused before anything is
    dialed (port 1 would say DialError), as dial_cluster refuses it: "no" is not True."""
    with pytest.raises(TypeError, match="tls is a bool or an ssl.SSLContext"):
        chand.dial("127.0.0.1:1", tls=tls)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tls is a bool or an ssl.SSLContext"):
        await chand.aio.dial("127.0.0.1:1", tls=tls)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="tls is a bool or an ssl.SSLContext"):
        chand.dial_cluster("127.0.0.1:1", tls=tls)  # type: ignore[arg-type]


def test_frame_roundtrip() -> None:
    f = P.frame([5, 1, None, "jobs", b"x"])
    (n,) = struct.unpack(">I", f[:4])
    assert n == len(f) - 4
    assert msgpack.unpackb(f[4:], raw=False) == [5, 1, None, "jobs", b"x"]
    # bytes travel as bin, names as str
    assert f[4:].endswith(b"\xc4\x01x")


def test_frame_length_checks() -> None:
    assert P.frame_length(b"\x00\x00\x00\x05", 10) == 5
    with pytest.raises(chand.ProtocolError, match="length 0"):
        P.frame_length(b"\x00\x00\x00\x00", 10)
    with pytest.raises(chand.ProtocolError, match="limit"):
        P.frame_length(b"\xff\xff\xff\xff", 10)


@pytest.mark.parametrize("body", [
    b"\xc1",                                  # never used
    msgpack.packb([1, 0]) + b"\x00",          # trailing bytes
    msgpack.packb([1, 0])[:-1],               # incomplete
    msgpack.packb({"a": 1}),                  # not an array
    msgpack.packb([1]),                       # too short
    msgpack.packb(["x", 0]),                  # id not an int
    msgpack.packb([-1, 0]),                   # negative id
    msgpack.packb([1, 0, msgpack.ExtType(9, b"x")]),   # unknown ext type
    msgpack.packb([1, 0, msgpack.ExtType(1, b"\xff")]),  # ref not UTF-8
    b"\x91" * 5000 + b"\xc0",                 # nested far too deep
])
def test_decode_body_rejects(body: bytes) -> None:
    r = P.ReplyReader()
    assert r.body(msgpack.packb([1, 0])) == (1, 0, [])     # a reader that decoded before
    with pytest.raises(chand.ProtocolError):
        r.body(body)
    with pytest.raises(chand.ProtocolError):
        P.ReplyReader().body(body)                          # and a fresh one



def test_decode_values() -> None:
    body = msgpack.packb([7, 0, msgpack.ExtType(1, b"~ab"), msgpack.ExtType(2, b"bad"), b"v"],
                         use_bin_type=True)
    rid, status, res = P.ReplyReader().body(body)
    assert (rid, status) == (7, 0)
    assert isinstance(res[0], P.ChanRef) and res[0].name == "~ab"
    assert res[1] == chand.ErrorValue("bad")
    assert res[2] == b"v"


def test_reply_reader_frames() -> None:
    """Frames split anywhere across reads come out whole, in order, each once; a body
    past the reader's big mark (its unpacker replaced) does not disturb the next."""
    r = P.ReplyReader()
    big = b"b" * (P.ReplyReader._BIG + 10)
    frames = [P.frame([k, 0, b"v%d" % k, True]) for k in range(1, 40)]
    frames.insert(7, P.frame([99, 0, big, True]))
    data = b"".join(frames)
    got = []
    for step in (1, 3, 64, 4096, len(data)):
        for at in range(0, len(data), step):
            got += r.feed(data[at:at + step], 1 << 30)
        assert r.pending == 0
    want = [(k, 0, [b"v%d" % k, True]) for k in range(1, 40)]
    want.insert(7, (99, 0, [big, True]))
    assert got == want * 5
    assert r.feed(frames[0][:6], 1 << 30) == [] and r.pending == 6
    with pytest.raises(chand.ProtocolError, match="limit"):
        P.ReplyReader().feed(P.frame([1, 0, big]), 100)


def test_encode_values() -> None:
    assert P.encode_value(b"x", 10) == b"x"
    assert P.encode_value("é", 10) == "é".encode()
    assert P.encode_value(bytearray(b"ab"), 10) == b"ab"
    ref = P.encode_value(P.BaseChan("jobs"), 10)
    assert ref == msgpack.ExtType(1, b"jobs")
    with pytest.raises(TypeError):
        P.encode_value(5, 10)
    with pytest.raises(TypeError):
        P.encode_value(chand.ErrorValue("x"), 10)
    with pytest.raises(chand.Limit):
        P.encode_value(b"x" * 11, 10)


def test_wait_us_rounds_up_and_caps() -> None:
    assert P.wait_us(None, 0) is None
    assert P.wait_us(1, 0) == 1               # 1 ns left: 1 µs, never "don't wait"
    assert P.wait_us(1000, 0) == 1
    assert P.wait_us(1001, 0) == 2
    assert P.wait_us(2_000_000_000, 0) == 2_000_000
    assert P.wait_us(10 ** 30, 0) == 1 << 48


def test_errors_one_class_per_status() -> None:
    classes = [chand.Closed, chand.DeadlineExceeded, chand.Canceled, chand.NotFound,
               chand.Exists, chand.PermissionDenied, chand.BadRequest, chand.Limit,
               chand.ProtocolError, chand.ShuttingDown, None, chand.Moved, chand.Unavailable,
               chand.Storage]
    for status, cls in enumerate(classes, start=1):
        if cls is None:     # 11 is STARTED, an interim reply, never an error
            continue
        e = P.reply_error(status, ["why", 3])
        assert type(e) is cls and issubclass(cls, chand.Error)
        assert e.status == status and e.message == "why" and e.index == 3
        assert str(e) == "why (case 3)"
    e = P.reply_error(99, ["odd"])
    assert type(e) is chand.Error and e.status == 99 and "unknown status 99" in str(e)
    assert issubclass(chand.ConnectionLost, chand.Error)
    assert issubclass(chand.DialError, chand.Error)


def test_error_codes_are_libchanclients() -> None:
    """Each class's code is chanclient.h's CHAN_E* for the same failure (read from the
    header beside this package, so that the two cannot drift apart)."""
    header = os.path.join(os.path.dirname(__file__), "..", "..", "chanclient.h")
    with open(header) as f:
        codes = dict(re.findall(r"\b(CHAN_E[A-Z]+) = (-\d+),", f.read()))
    want = {chand.Closed: "CHAN_ECLOSED", chand.DeadlineExceeded: "CHAN_EDEADLINE",
            chand.Canceled: "CHAN_ECANCELED", chand.NotFound: "CHAN_ENOTFOUND",
            chand.Exists: "CHAN_EEXISTS", chand.PermissionDenied: "CHAN_EPERM",
            chand.BadRequest: "CHAN_EBADREQ", chand.Limit: "CHAN_ELIMIT",
            chand.ProtocolError: "CHAN_EPROTO", chand.ShuttingDown: "CHAN_ESHUTDOWN",
            chand.ConnectionLost: "CHAN_ECONNLOST", chand.DialError: "CHAN_ECONNECT",
            chand.Storage: "CHAN_ESTORAGE", chand.Unavailable: "CHAN_EUNAVAILABLE"}
    for cls, name in want.items():
        assert cls.code == int(codes[name]), cls
    assert chand.Unavailable.code == -122
    assert P.reply_error(13, ["fenced"]).code == -122
    assert P.reply_error(99, ["odd"]).code == int(codes["CHAN_EUNKNOWN"])
    assert chand.Moved.code is None and chand.Error.code is None


def test_is_final() -> None:
    assert P.is_final(P.KIND_PLAIN, 0, 0)
    assert not P.is_final(P.KIND_LINK, P.STARTED, 1)
    assert P.is_final(P.KIND_LINK, 0, 1)
    assert not P.is_final(P.KIND_STREAM, 0, 3)
    assert P.is_final(P.KIND_STREAM, 0, 1)
    assert P.is_final(P.KIND_STREAM, P.CANCELED, 1)


# ---- contexts -------------------------------------------------------------------------------


def test_background() -> None:
    bg = chand.background()
    assert bg.err() is None and bg.deadline() is None and bg.value("k") is None
    assert not bg.done().is_set()
    with pytest.raises(ValueError):
        bg.cancel()


def test_cancel_tree() -> None:
    root = chand.with_cancel()
    child = chand.with_cancel(root)
    grand = chand.with_value(child, "k", "v")
    leaf = chand.with_timeout(grand, 100)
    other = chand.with_cancel()
    child.cancel()
    assert isinstance(child.err(), chand.Canceled)
    assert isinstance(grand.err(), chand.Canceled)
    assert isinstance(leaf.err(), chand.Canceled)
    assert leaf.done().is_set()
    assert root.err() is None and other.err() is None
    child.cancel()      # idempotent
    # a child of a done parent is born done
    assert isinstance(chand.with_cancel(child).err(), chand.Canceled)
    assert leaf.value("k") == "v" and leaf.value("other") is None
    with pytest.raises(ValueError):
        grand.cancel()


def test_timeout_fires_without_calls() -> None:
    ctx = chand.with_timeout(None, 0.05)
    assert ctx.err() is None
    assert ctx.done().wait(10)
    assert isinstance(ctx.err(), chand.DeadlineExceeded)
    assert str(ctx.err()) == "context deadline exceeded"


def test_deadline_is_the_earlier() -> None:
    parent = chand.with_timeout(None, 1.0)
    child = chand.with_timeout(parent, 100.0)
    assert child.deadline() == parent.deadline()
    d = time.monotonic() + 0.5
    near = chand.with_deadline(parent, d)
    assert near.deadline() == pytest.approx(d, abs=1e-6)
    assert deadline_of(near, 0.01) < int(d * 1e9)
    assert deadline_of(chand.background(), None) is None
    past = chand.with_deadline(None, time.monotonic() - 1)
    assert isinstance(past.err(), chand.DeadlineExceeded)


def test_context_manager_cancels() -> None:
    with chand.with_timeout(None, 100) as ctx:
        assert ctx.err() is None
    assert isinstance(ctx.err(), chand.Canceled)


def test_cancel_from_another_thread_wakes_waiter() -> None:
    ctx = chand.with_cancel()
    t = threading.Thread(target=ctx.cancel)
    t.start()
    assert ctx.done().wait(10)
    t.join()
