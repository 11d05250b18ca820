# SPDX-License-Identifier: BSD-2-Clause
"""Bad input from the server side: a fake server sends what chand never would. The
client raises a clear exception, fails every pending call, and never hangs."""

from __future__ import annotations

import asyncio
import socket
import struct

import msgpack
import pytest

import chand
import chand.aio
from chandtest import FakeServer, frame, read_frame, until


def answer_ping_with(data: bytes, close: bool = False):
    """A script: read one request, answer it with raw data, then wait for the client to
    go (or close at once)."""
    def script(sock: socket.socket) -> None:
        read_frame(sock)
        sock.sendall(data)
        if close:
            sock.shutdown(socket.SHUT_RDWR)
            return
        while sock.recv(4096):
            pass
    return script


def body(obj: object) -> bytes:
    b = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(b)) + b


BAD = [
    ("not msgpack", b"\x00\x00\x00\x01\xc1", chand.ProtocolError, "malformed"),
    ("zero length", b"\x00\x00\x00\x00", chand.ProtocolError, "length 0"),
    ("over the limit", b"\x7f\xff\xff\xff", chand.ProtocolError, "limit"),
    ("not an array", body({"id": 2}), chand.ProtocolError, "array"),
    ("trailing bytes", b"\x00\x00\x00\x04\x92\x02\x00\xc0", chand.ProtocolError, "malformed"),
    ("unknown id", body([999, 0]), chand.ProtocolError, "999"),
    ("notice", body([0, 9, "you sent garbage"]), chand.ProtocolError, "you sent garbage"),
    ("revoked", body([0, 6, "credentials revoked"]), chand.PermissionDenied, "revoked"),
]


@pytest.mark.parametrize("what,data,exc,text", BAD, ids=[b[0] for b in BAD])
def test_bad_frames(what: str, data: bytes, exc: type, text: str) -> None:
    fake = FakeServer(answer_ping_with(data))
    c = chand.dial(fake.addr)
    with pytest.raises(exc, match=text):
        c.ping(timeout=10)
    assert c.closed
    with pytest.raises(exc):                          # the failure sticks
        c.handle("x").recv()
    c.close()
    fake.close()


def test_truncated_frame_then_close() -> None:
    fake = FakeServer(answer_ping_with(b"\x00\x00\x00\x64" + b"\x93" * 10, close=True))
    c = chand.dial(fake.addr)
    with pytest.raises(chand.ConnectionLost, match="truncated"):
        c.ping(timeout=10)
    c.close()
    fake.close()


def test_close_between_frames() -> None:
    fake = FakeServer(answer_ping_with(b"", close=True))
    c = chand.dial(fake.addr)
    with pytest.raises(chand.ConnectionLost, match="closed the connection"):
        c.ping(timeout=10)
    c.close()
    fake.close()


def answer_with(results: list):
    """A script: read one request, answer it OK with these results, then wait for the
    client to go."""
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 0] + results))
        while sock.recv(4096):
            pass
    return script


WRONG_SHAPE = [
    ("a str is not a value", ["a str is not a value", True], "value"),
    ("a value with ok false", [b"x", False], "ok"),
    ("nil with ok true", [None, True], "ok"),
]


@pytest.mark.parametrize("what,results,text", WRONG_SHAPE, ids=[s[0] for s in WRONG_SHAPE])
def test_reply_of_the_wrong_shape(what: str, results: list, text: str) -> None:
    fake = FakeServer(answer_with(results))
    c = chand.dial(fake.addr)
    with pytest.raises(chand.ProtocolError, match=text):
        c.handle("x").recv(timeout=10)
    assert c.closed
    c.close()
    fake.close()


SELECT_NOT_ASKED = [
    ("case 5 of 3", [5, b"x", True], True),
    ("the nil channel's case", [2, b"x", True], True),
    ("a default not asked for", [-1, None, False], False),
]


@pytest.mark.parametrize("what,results,default", SELECT_NOT_ASKED, ids=[s[0] for s in SELECT_NOT_ASKED])
def test_select_case_not_asked(what: str, results: list, default: bool) -> None:
    fake = FakeServer(answer_with(results))
    c = chand.dial(fake.addr)
    a, b = c.handle("a"), c.handle("b")
    with pytest.raises(chand.ProtocolError, match="SELECT chose"):
        chand.select(chand.recv(a), chand.send(b, b"v"), chand.recv(None), default=default,
                     timeout=10)
    assert c.closed
    with pytest.raises(chand.ProtocolError):          # the failure sticks
        c.ping(timeout=10)
    c.close()
    fake.close()


def test_protocol_reply_ends_the_connection() -> None:
    """The server closes a connection after a PROTOCOL reply (§9): one that goes on
    answering is not believed."""
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 9, "you broke it"]))
        while True:
            rid = read_frame(sock)[1]
            sock.sendall(frame([rid, 0]))

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    with pytest.raises(chand.ProtocolError, match="you broke it"):
        c.ping(timeout=10)
    assert c.closed
    with pytest.raises(chand.ProtocolError):
        c.ping(timeout=10)
    c.close()
    fake.close()


def test_unknown_status_is_an_error_and_the_connection_goes_on() -> None:
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 42, "from the future"]))
        rid = read_frame(sock)[1]
        sock.sendall(frame([0, 10, "shutting down soon"]) + frame([rid, 0]))
        while sock.recv(4096):
            pass

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    with pytest.raises(chand.Error) as ei:
        c.ping()
    assert type(ei.value) is chand.Error and ei.value.status == 42
    c.ping()                            # a SHUTTING_DOWN notice alone fails nothing
    c.close()
    fake.close()


def test_every_pending_call_fails() -> None:
    import threading

    def script(sock: socket.socket) -> None:
        for _ in range(3):
            read_frame(sock)
        sock.sendall(b"\x00\x00\x00\x01\xc1")
        while sock.recv(4096):
            pass

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    errs: list = []

    def call() -> None:
        try:
            c.handle("x").recv()
        except chand.Error as e:
            errs.append(e)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errs) == 3 and all(isinstance(e, chand.ProtocolError) for e in errs)
    c.close()
    fake.close()


def test_hello_refused() -> None:
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 6, "unknown token"]))

    fake = FakeServer(script, hello=False)
    with pytest.raises(chand.PermissionDenied, match="unknown token"):
        chand.dial(fake.addr, token="nope")
    fake.close()


def test_hello_never_answered() -> None:
    def script(sock: socket.socket) -> None:
        read_frame(sock)
        while sock.recv(4096):
            pass

    fake = FakeServer(script, hello=False)
    with pytest.raises(chand.DeadlineExceeded):
        chand.dial(fake.addr, timeout=0.2, cancel_grace=0.1)
    fake.close()


def test_closed_at_once() -> None:
    fake = FakeServer(lambda sock: None, hello=False)
    with pytest.raises(chand.ConnectionLost):
        chand.dial(fake.addr, timeout=10)
    fake.close()


@pytest.mark.parametrize("data,exc", [
    (b"\x00\x00\x00\x01\xc1", chand.ProtocolError),
    (b"\x00\x00\x00\x64\x93", chand.ConnectionLost),
    (body([999, 0]), chand.ProtocolError),
    (body([2, 9, "you broke it"]), chand.ProtocolError),
], ids=["malformed", "truncated", "unknown id", "protocol reply"])
async def test_bad_frames_aio(data: bytes, exc: type) -> None:
    fake = FakeServer(answer_ping_with(data, close=True))
    c = await chand.aio.dial(fake.addr)
    with pytest.raises(exc):
        await asyncio.wait_for(c.ping(), 10)
    assert c.closed
    with pytest.raises(exc):
        await c.handle("x").recv()
    await c.close()
    fake.close()


def test_stream_values_past_the_credit() -> None:
    """More interim replies than the credit granted: the client's memory is not the
    server's to grow."""
    def script(sock: socket.socket) -> None:
        req = read_frame(sock)
        assert req[0] == 20 and req[4] == 2
        sock.sendall(b"".join(frame([req[1], 0, 0, b"v", True]) for _ in range(3)))
        while sock.recv(4096):
            pass

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    s = c.handle("x").stream(2)
    until(lambda: c.closed, what="connection broken")
    assert s.recv() == (0, b"v", True) and s.recv() == (0, b"v", True)   # taken before
    with pytest.raises(chand.ProtocolError, match="credit"):
        s.recv()
    c.close()
    fake.close()


def test_link_started_twice() -> None:
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 11, ["~out"]]) * 2)
        while sock.recv(4096):
            pass

    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    link = chand.repeat(c, [b"v"])
    assert link.out.name == "~out"
    with pytest.raises(chand.ProtocolError, match="STARTED twice"):
        link.wait(timeout=10)
    c.close()
    fake.close()


def test_hello_version_not_spoken() -> None:
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 0, {"version": 7, "server": "future"}]))
        while sock.recv(4096):
            pass

    fake = FakeServer(script, hello=False)
    with pytest.raises(chand.ProtocolError, match="version 7"):
        chand.dial(fake.addr, timeout=10)
    fake.close()


MALFORMED_CLOSE_ERRORS = [
    ("ok true", [None, True, [1, "x"]]),
    ("a value", [b"v", False, [1, "x"]]),
    ("code a str", [None, False, ["1", "x"]]),
    ("code only", [None, False, [1]]),
    ("message too long", [None, False, [1, "x" * 1025]]),
    ("too many results", [None, False, [1, "x"], True]),
]


@pytest.mark.parametrize("results", [m[1] for m in MALFORMED_CLOSE_ERRORS],
                         ids=[m[0] for m in MALFORMED_CLOSE_ERRORS])
def test_malformed_close_error_in_a_recv_reply(results: list) -> None:
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 0, *results]))
        while sock.recv(4096):
            pass
    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    with pytest.raises(chand.ProtocolError):
        c.handle("x").recv(timeout=10)
    assert c.closed
    c.close()
    fake.close()


def test_close_errors_in_select_and_stream_replies() -> None:
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]                       # SELECT: the error, well formed
        sock.sendall(frame([rid, 0, 1, None, False, [7, "seven"]]))
        req = read_frame(sock)                          # STREAM: a close report with it,
        sock.sendall(frame([req[1], 0, 0, None, False, [8, "eight"]]) +   # not the end
                     frame([req[1], 0, 0]))
        while True:
            req = read_frame(sock)
            if req[0] == 10:                            # the default with an error
                sock.sendall(frame([req[1], 0, -1, None, False, [1, "x"]]))
                break
    fake = FakeServer(script)
    c = chand.dial(fake.addr)
    a, b = c.handle("a"), c.handle("b")
    assert chand.select(chand.recv(a), chand.recv(b), timeout=10) == (1, None, False)
    assert b.err == chand.CloseError(7, "seven") and a.err is None
    s = c.stream([a], 2)
    assert s.recv() == (0, None, False)
    assert s.err(0) == chand.CloseError(8, "eight") and a.err == s.err(0)
    with pytest.raises(chand.Closed):
        s.recv()
    assert s.delivered == 0 and not c.closed
    with pytest.raises(chand.ProtocolError):
        chand.select(chand.recv(a), default=True, timeout=10)
    assert c.closed
    c.close()
    fake.close()


def moved_to(where: str):
    """A script: read one request, answer it MOVED where, then wait for the client to go."""
    def script(sock: socket.socket) -> None:
        rid = read_frame(sock)[1]
        sock.sendall(frame([rid, 12, where]))
        while sock.recv(4096):
            pass
    return script


NO_NODE = ["unix:{path}", "{path}", "unix://{path}", "tcp://127.0.0.1:1", "127.0.0.1", "unix:7420"]


@pytest.fixture
def local_socket(tmp_path):
    """A unix socket nobody should connect to: (its path, a check that nobody did)."""
    path = str(tmp_path / "s")
    lis = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lis.bind(path)
    lis.listen(4)
    lis.setblocking(False)

    def untouched() -> bool:
        try:
            lis.accept()[0].close()
        except BlockingIOError:
            return True
        return False
    yield path, untouched
    lis.close()


@pytest.mark.parametrize("where", NO_NODE)
def test_moved_to_no_node(local_socket, where: str) -> None:
    """A MOVED naming no node's HOST:PORT (§3) is a broken contract: ProtocolError, the
    node's connection fails, and nothing is dialed."""
    path, untouched = local_socket
    fake = FakeServer(moved_to(where.format(path=path)))
    cl = chand.dial_cluster(fake.addr, timeout=10)
    with pytest.raises(chand.ProtocolError, match="no node's HOST:PORT"):
        cl.make("a", 1, timeout=10)
    assert cl.nodes == [fake.addr]                   # not even remembered
    assert untouched()
    cl.close()
    fake.close()


@pytest.mark.parametrize("where", NO_NODE)
async def test_moved_to_no_node_aio(local_socket, where: str) -> None:
    path, untouched = local_socket
    fake = FakeServer(moved_to(where.format(path=path)))
    cl = await chand.aio.dial_cluster(fake.addr, timeout=10)
    with pytest.raises(chand.ProtocolError, match="no node's HOST:PORT"):
        await cl.make("a", 1, timeout=10)
    assert untouched()
    await cl.close()
    fake.close()


@pytest.mark.parametrize("seeds", ["cluster://unix:/run/chand.sock", "cluster://unix:7420",
                                   "127.0.0.1,127.0.0.1:1", "cluster://[::1]",
                                   ",".join(f"127.0.0.1:{p}" for p in range(1, 66))],
                         ids=["unix path", "unix name", "no port", "v6 no port", "65 seeds"])
def test_seed_not_a_node_address(seeds: str) -> None:
    with pytest.raises(ValueError, match="bad cluster address"):
        chand.dial_cluster(seeds)


def test_moved_to_ever_more_nodes() -> None:
    """A node that MOVEs each request to a node never seen before grows no table without
    bound: past 64 nodes (libchanclient's CLUSTER_NODES_MAX) the request fails with
    Unavailable. The ports are bound but not listening, so each dial is refused."""
    closed = []
    for _ in range(chand._cluster.NODES_MAX):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        closed.append(s)
    ports = iter(s.getsockname()[1] for s in closed)

    def script(sock: socket.socket) -> None:
        while True:
            rid = read_frame(sock)[1]
            sock.sendall(frame([rid, 12, f"127.0.0.1:{next(ports)}"]))
    fake = FakeServer(script)
    cl = chand.dial_cluster(fake.addr, timeout=10)
    for _ in range(chand._cluster.NODES_MAX - 1):      # the seed is one of the 64
        with pytest.raises(chand.DialError):
            cl.open("a", timeout=10)
    with pytest.raises(chand.Unavailable, match="knows 64 nodes"):
        cl.open("a", timeout=10)
    assert len(cl.nodes) == chand._cluster.NODES_MAX
    cl.close()
    fake.close()
    for s in closed:
        s.close()
