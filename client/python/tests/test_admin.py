# SPDX-License-Identifier: BSD-2-Clause
"""Admin calls (PROTOCOL.md §11; after tests/test_admin.c): stats, channels, clients,
waiters, unblock, shutdown."""

from __future__ import annotations

import threading

import pytest

import chand
from chandtest import Server, unique, until


def test_stats(conn: chand.Conn) -> None:
    s = conn.stats()
    for key in ("uptime_ms", "connections", "channels", "waiters", "requests_total"):
        assert isinstance(s[key], int)
    assert s["connections"] >= 1


def test_channels(conn: chand.Conn) -> None:
    prefix = unique("adm")
    for i in range(3):
        conn.make(f"{prefix}.{i}", i)
    infos, matched = conn.channels(f"{prefix}.*")
    assert matched == 3
    assert sorted((i.name, i.cap) for i in infos) == [(f"{prefix}.{i}", i) for i in range(3)]
    infos, matched = conn.channels(f"{prefix}.*", limit=2)
    assert len(infos) == 2 and matched == 3


def test_clients(server: Server, conn: chand.Conn) -> None:
    with server.dial(client_name="named-client") as c:
        clients = conn.clients()
        mine = [x for x in clients if x.name == "named-client"]
        assert len(mine) == 1 and mine[0].peer.startswith("127.0.0.1")
        c.ping()


def test_waiters_and_unblock(conn: chand.Conn, conn2: chand.Conn) -> None:
    a = conn.make(unique(), 0)
    out: list = []

    def recv() -> None:
        try:
            conn2.handle(a.name).recv()
        except chand.Error as e:
            out.append(e)

    t = threading.Thread(target=recv)
    t.start()
    w = until(lambda: [w for w in conn.waiters()[0] if w.cases == [(0, a.name)]])
    assert w[0].op == "RECV" and w[0].waited_ms >= 0
    client = w[0].client
    assert conn.unblock(client, w[0].request) == 1
    t.join(10)
    assert isinstance(out[0], chand.Canceled)
    with pytest.raises(chand.NotFound):
        conn.unblock(client, 1 << 40)
    with pytest.raises(chand.NotFound):
        conn.unblock(1 << 40)


def test_shutdown() -> None:
    s = Server()
    try:
        with s.dial() as c:
            c.shutdown()
            assert s.proc.wait(10) == 0
            with pytest.raises(chand.Error):
                until(lambda: c.ping() and False)
    finally:
        s.stop()
