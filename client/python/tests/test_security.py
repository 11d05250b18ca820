# SPDX-License-Identifier: BSD-2-Clause
"""Authentication, rights and TLS (PROTOCOL.md §13; after tests/test_security.c)."""

from __future__ import annotations

import hashlib
import re
import socket
import ssl
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import chand
import chand.aio
from chandtest import BOUND, Server, frame, make_certs, read_frame

TOKEN = "alice-secret"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory) -> Iterator[Tuple[Server, int, Path]]:
    certs = make_certs(tmp_path_factory.mktemp("certs"))
    s = Server(f"tls_listen = 127.0.0.1:0\ntls_cert = {certs}/server.pem\n"
               f"tls_key = {certs}/server.key\ntls_ca = {certs}/ca.pem\n"
               f"tls_verify_client = optional\ntoken = alice:{_digest(TOKEN)}\n"
               "allow = alice t.* all\nallow = alice admin\n")
    # the TLS port is in the log, as tests/test_security.c reads it
    ports = [int(m.group(1)) for line in s.log_text().splitlines()
             if "tls=yes" in line and "listening" in line
             and (m := re.search(r"port=(\d+)", line))]
    assert ports, s.log_text()
    yield s, ports[0], certs
    assert s.stop() == 0


def test_tls_holds_deferred_replies(tls_server) -> None:
    """Over TLS chand holds a deferred reply as over TCP (PROTOCOL.md §15): its id
    stays in use, so a PING that reuses it is a duplicate id. The held OK is
    written first, then the PROTOCOL notice, and the connection closes."""
    _, port, certs = tls_server
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as raw, \
            ctx.wrap_socket(raw, server_hostname="localhost") as sock:
        sock.sendall(frame([1, 1, None, 1, "held", {"token": TOKEN}]))
        assert read_frame(sock)[:2] == [1, 0]
        sock.sendall(frame([3, 2, None, "t.held", 4]))
        assert read_frame(sock)[:2] == [2, 0]
        # SEND into room, its reply deferred (op + 64): done at once, its OK held
        sock.sendall(frame([5 + 64, 3, None, "t.held", b"x"]) + frame([2, 3, None]))
        assert read_frame(sock)[:2] == [3, 0]
        notice = read_frame(sock)
        assert notice[:2] == [0, 9] and notice[2].startswith("duplicate request id"), notice


def test_token_and_rights(tls_server) -> None:
    s, _, _ = tls_server
    with pytest.raises(chand.PermissionDenied):
        s.dial()                                       # no credentials
    with pytest.raises(chand.PermissionDenied):
        s.dial(token="wrong")
    with s.dial(token=TOKEN) as c:
        ch = c.make("t.ok", 1)
        ch.send(b"x")
        assert ch.recv() == (b"x", True)
        with pytest.raises(chand.PermissionDenied):
            c.make("u.no", 1)
        with pytest.raises(chand.PermissionDenied) as ei:
            chand.select(chand.recv(ch), chand.recv(c.handle("u.no")))
        assert ei.value.index == 1
        c.stats()                                      # admin


def test_tls(tls_server) -> None:
    s, port, certs = tls_server
    with chand.dial(f"tls://127.0.0.1:{port}", ca=str(certs / "ca.pem"), token=TOKEN) as c:
        ch = c.make("t.tls", 0)
        b = c.make("t.tlsbuf", 4)
        big = b"y" * 500000
        for _ in range(4):
            b.send(big)                               # large writes through the TLS layer
        assert [b.recv()[0] for _ in range(4)] == [big] * 4
        assert ch.try_recv() is None
    # a client certificate (CN alice) is an identity too
    with chand.dial(f"127.0.0.1:{port}", tls=True, ca=str(certs / "ca.pem"),
                    cert=str(certs / "client.pem"), key=str(certs / "client.key"),
                    server_hostname="localhost") as c:
        c.make("t.cert", 0)
    # a server certificate from another CA is refused
    with pytest.raises(chand.DialError):
        chand.dial(f"tls://127.0.0.1:{port}", ca=str(certs / "otherca.pem"), token=TOKEN)
    # plaintext HELLO on the TLS port: not a TLS server for us
    with pytest.raises(chand.DialError):
        chand.dial(f"tls://{s.addr}", ca=str(certs / "ca.pem"), token=TOKEN, timeout=10)


async def test_tls_aio(tls_server) -> None:
    s, port, certs = tls_server
    c = await chand.aio.dial(f"tls://127.0.0.1:{port}", ca=str(certs / "ca.pem"), token=TOKEN)
    ch = await c.make("t.aio", 1)
    await ch.send(b"z")
    assert await ch.recv() == (b"z", True)
    await c.close()
