# SPDX-License-Identifier: BSD-2-Clause
"""The cluster connection (PROTOCOL.md §17, libchanclient's cluster:// as in
tests/test_client_cluster.c) against a real etcd and three chand nodes started here
on ephemeral loopback ports, and stopped. Skipped without /usr/bin/etcd."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Iterator, List

import pytest

import chand
import chand.aio as aio
from chandtest import FakeServer, frame, read_frame, unique, until
from clusterutil import (NODES, Node, check_owner_direct, etcd_cluster, free_port, moved,
                         needs_etcd)

pytestmark = needs_etcd


@pytest.fixture(scope="module")
def nodes() -> Iterator[List[Node]]:
    with etcd_cluster() as started:
        yield started


def made_off(cl: chand.ClusterConn, addr: str) -> "tuple[str, str]":
    """A channel made through cl on a node other than addr: (name, owner)."""
    for _ in range(200):
        name = unique("cold")
        cl.make(name, 1)
        owner = cl.where(name)
        if owner != addr:
            return name, owner
        cl.handle(name).delete()
    raise AssertionError("200 names all placed on one node")


def test_owner_direct(nodes: List[Node]) -> None:
    """Channels on every node through one seed: each is made at its owner, and its
    sends and receives go straight there (no MOVED)."""
    with chand.dial_cluster(f"cluster://{nodes[0].addr}") as cl:
        check_owner_direct(cl, nodes, "direct")


def test_cold_cache_follows_moved(nodes: List[Node]) -> None:
    """A fresh connection whose only seed does not own the channel follows one MOVED to
    the owner, which it did not know of, and caches it: the next handle costs nothing."""
    with chand.dial_cluster(f"cluster://{nodes[0].addr}") as maker:
        name, owner = made_off(maker, nodes[0].addr)
        with chand.dial_cluster([nodes[0].addr, nodes[0].addr]) as cl:
            assert cl.nodes == [nodes[0].addr]
            before = moved(nodes)
            ch = cl.open(name)
            assert moved(nodes)[0] == before[0] + 1
            assert owner in cl.nodes and ch._conn is cl.node(owner)
            ch.send(b"x", timeout=10)
            assert maker.handle(name).recv(timeout=10) == (b"x", True)
            assert cl.handle(name)._conn is ch._conn
            assert moved(nodes) == [before[0] + 1] + before[1:]
        maker.handle(name).delete()
        with pytest.raises(chand.NotFound):
            maker.where(name)


def test_anonymous_and_errors(nodes: List[Node]) -> None:
    with chand.dial_cluster(",".join(s.addr for s in nodes)) as cl:
        anon = cl.make(None, 2)
        assert anon.name.startswith("~")
        anon.send(b"a", timeout=10)
        assert anon.recv(timeout=10) == (b"a", True)
        with pytest.raises(chand.NotFound):
            cl.open(unique("none"))
        infos = cl.node().cluster_nodes()
        assert sorted(i.advertise for i in infos) == sorted(s.addr for s in nodes)
        assert sum(i.self for i in infos) == 1
    with pytest.raises(chand.ConnectionLost):
        cl.open("x")
    with pytest.raises(ValueError):
        chand.dial_cluster(f"cluster://{nodes[0].addr},,{nodes[1].addr}")
    with pytest.raises(ValueError):
        chand.dial_cluster(f"cluster://tcp://{nodes[0].addr}")
    with pytest.raises(ValueError):
        chand.dial_cluster([])
    with pytest.raises(ValueError):
        chand.dial(f"cluster://{nodes[0].addr}")     # dial_cluster's
    dead = f"127.0.0.1:{free_port()}"
    with pytest.raises(chand.DialError):
        chand.dial_cluster(f"cluster://{dead}")
    # a dead seed is passed over
    with chand.dial_cluster(f"cluster://{dead},{nodes[1].addr}") as cl:
        name = unique("seeds")
        cl.make(name, 1).delete()


def test_anonymous_from_anywhere(nodes: List[Node]) -> None:
    """An anonymous channel made on node 1 and passed by name: its name says node 1, so a
    cluster connection seeded at node 0 follows one MOVED there, and a plain connection
    to node 0 is forwarded there."""
    with chand.dial(nodes[1].addr) as maker, \
            chand.dial_cluster(f"cluster://{nodes[0].addr}") as cl, \
            chand.dial(nodes[0].addr) as plain:
        anon = maker.make(None, 1)
        assert anon.name.startswith("~") and anon.name.endswith("@n1")
        before = moved(nodes)
        cl.handle(anon.name).send(b"c", timeout=10)
        assert moved(nodes)[0] == before[0] + 1
        assert cl.where(anon.name) == nodes[1].addr
        assert anon.recv(timeout=10) == (b"c", True)
        plain.handle(anon.name).send(b"p", timeout=10)
        assert anon.recv(timeout=10) == (b"p", True)
        anon.send(b"q", timeout=10)
        assert plain.handle(anon.name).recv(timeout=10) == (b"q", True)
        gone = anon.name[:33] + "@n9"
        with pytest.raises(chand.NotFound, match="node n9 made it and is not live"):
            plain.handle(gone).send(b"x", timeout=10)


async def test_aio_cluster(nodes: List[Node]) -> None:
    """chand.aio.dial_cluster: made at the owner through one seed, a cold connection
    follows MOVED to it and caches it, NotFound and the closed connection as sync."""
    async with await aio.dial_cluster(f"cluster://{nodes[0].addr}") as maker:
        for _ in range(200):
            name = unique("aio")
            await maker.make(name, 1)
            owner = await maker.where(name)
            if owner != nodes[0].addr:
                break
            await (await maker.handle(name)).delete()
        assert owner != nodes[0].addr
        async with await aio.dial_cluster([nodes[0].addr]) as cl:
            before = moved(nodes)
            ch = await cl.open(name)
            assert moved(nodes)[0] == before[0] + 1
            assert ch._conn is await cl.node(owner) and owner in cl.nodes
            await ch.send(b"x", timeout=10)
            assert await (await maker.handle(name)).recv(timeout=10) == (b"x", True)
            assert (await cl.handle(name))._conn is ch._conn
            await ch.delete()
            with pytest.raises(chand.NotFound):
                await cl.open(name)
        with pytest.raises(chand.ConnectionLost):
            await cl.open(name)
    with pytest.raises(ValueError):
        await aio.dial(f"cluster://{nodes[0].addr}")


async def test_aio_cluster_nodes(nodes: List[Node]) -> None:
    c = await aio.dial(nodes[1].addr)
    try:
        infos = await c.cluster_nodes()
        assert [i.advertise for i in infos if i.self] == [nodes[1].addr]
        assert all(i.name.startswith("n") for i in infos) and len(infos) == NODES
    finally:
        await c.close()


def test_cluster_nodes_off_a_cluster(conn: chand.Conn) -> None:
    with pytest.raises(chand.BadRequest):
        conn.cluster_nodes()


def test_moved_hops_are_bounded() -> None:
    """A node that keeps answering MOVED (naming itself) is followed 5 times, then the
    request fails with Unavailable; the node connection's HELLO asked for MOVED."""
    opens: List[str] = []

    def script(sock: socket.socket) -> None:
        for _ in range(6):
            req = read_frame(sock)
            opens.append(req[3])
            sock.sendall(frame([req[1], 12, fake.addr]))
        while sock.recv(4096):
            pass

    fake = FakeServer(script)
    with chand.dial_cluster([fake.addr]) as cl:
        with pytest.raises(chand.Unavailable) as e:
            cl.open("loop")
        assert e.value.code == -122 and "MOVED" in str(e.value)
    fake.close()
    assert fake.requests[0][6] == {"moved": True}       # HELLO: [1, id, wait, v, name, auth, caps]
    assert opens == ["loop"] * 6


def test_unavailable_is_its_own_class() -> None:
    e = chand.Unavailable("fenced")
    assert isinstance(e, chand.Error) and e.status == 13 and e.code == -122


def test_waiters_show_home(nodes: List[Node]) -> None:
    """A receive forwarded by n0 waits at the owner as n0's: WAITERS names its home."""
    with chand.dial_cluster(f"cluster://{nodes[0].addr}") as cl:
        name, owner = made_off(cl, nodes[0].addr)
        own = next(s for s in nodes if s.addr == owner)
        with nodes[0].dial() as front, own.dial() as adm:
            got: list = []
            t = threading.Thread(target=lambda: got.append(front.open(name).recv(timeout=30)))
            t.start()
            w = until(lambda: [w for w in adm.waiters()[0] if w.cases == [(0, name)]],
                      what="the forwarded receive waiting at the owner")
            assert w[0].home == "n0"
            assert all(x.home is None for x in adm.waiters()[0] if x.client != w[0].client)
            cl.handle(name).send(b"v", timeout=10)
            t.join(30)
            assert got == [(b"v", True)]
        cl.handle(name).delete()


def one_per_node(cl: chand.ClusterConn, nodes: List[Node], tag: str) -> List[chand.Chan]:
    """Three channels of capacity 4 made through cl, one owned by each node, in node order."""
    by: dict = {}
    for _ in range(300):
        name = unique(tag)
        ch = cl.make(name, 4)
        owner = cl.where(name)
        if owner in by:
            ch.delete()
        else:
            by[owner] = ch
        if len(by) == NODES:
            return [by[s.addr] for s in nodes]
    raise AssertionError("300 names never covered three nodes")


def test_select_across_nodes(nodes: List[Node]) -> None:
    """A select over channels owned by three nodes, each holding a value: exactly one
    case fires, the other values stay; a send case to another node's channel; a
    receive that waits fires when a value comes on a third node's channel."""
    with chand.dial_cluster(f"cluster://{nodes[0].addr}") as cl:
        chans = one_per_node(cl, nodes, "xsel")
        assert len({ch._conn for ch in chans}) == NODES
        with pytest.raises(ValueError):
            chand.select(*[chand.recv(ch) for ch in chans])   # one connection only
        with pytest.raises(TypeError):
            cl.select(chans[0])
        seen = set()
        for _ in range(12):
            for i, ch in enumerate(chans):
                ch.send(f"v{i}", timeout=10)
            i, v, ok = cl.select(*[chand.recv(ch) for ch in chans], timeout=10)
            assert ok and v == f"v{i}".encode()
            seen.add(i)
            assert [len(ch) for ch in chans] == [0 if j == i else 1 for j in range(NODES)]
            for j, ch in enumerate(chans):
                if j != i:
                    assert ch.recv(timeout=10) == (f"v{j}".encode(), True)
        assert len(seen) > 1        # uniform among three: all 12 on one case, p = 3^-11
        i, _, _ = cl.select(chand.recv(chans[0]), chand.send(chans[2], b"s"), timeout=10)
        assert i == 1 and chans[2].recv(timeout=10) == (b"s", True)
        assert cl.select(chand.recv(chans[1]), default=True) == (-1, None, True)
        got: list = []
        t = threading.Thread(target=lambda: got.append(
            cl.select(chand.recv(chans[0]), chand.recv(chans[1]), timeout=30)))
        t.start()
        until(lambda: any((0, chans[1].name) in w.cases
                          for w in cl.node(nodes[1].addr).waiters()[0]),
              what="a remote waiter at the second node")
        chans[1].send(b"late", timeout=10)
        t.join(30)
        assert got == [(1, b"late", True)]
        chans[2].close()
        assert cl.select(chand.recv(chans[0]), chand.recv(chans[2]), timeout=10) == \
            (1, None, False)
        for ch in chans:
            ch.delete()


def test_wait_sends_queued_for_other_nodes(nodes: List[Node]) -> None:
    """What is queued for one node leaves when a thread waits on another's reply, as on
    one connection: an asynchronous RECV of pong (node 0) and SEND of ping (node 1), then
    a wait for the pong, which comes only once the echo had the ping; then a SEND of ping
    queued and a blocking recv of pong. A ping left queued fails DeadlineExceeded."""
    with chand.dial_cluster(f"cluster://{nodes[0].addr}") as cl, \
            chand.dial_cluster(f"cluster://{nodes[0].addr}") as ecl:
        chans = one_per_node(cl, nodes, "corked")
        pong, ping = chans[0], chans[1]
        eping, epong = ecl.handle(ping.name), ecl.handle(pong.name)
        errs: list = []

        def echo() -> None:
            try:
                for _ in range(2):
                    v, _ = eping.recv(timeout=10)
                    epong.send(v, timeout=10)
            except chand.Error as e:
                errs.append(e)

        t = threading.Thread(target=echo)
        t.start()
        r = pong.recv_async(timeout=10)
        w = ping.send_async(b"async", timeout=10)
        assert r.wait() == (b"async", True)
        w.wait()
        w = ping.send_async(b"blocking", timeout=10)
        assert pong.recv(timeout=10) == (b"blocking", True)
        w.wait()
        t.join(30)
        assert errs == [] and not t.is_alive()
        for ch in chans:
            ch.delete()


def test_stream_across_nodes(nodes: List[Node]) -> None:
    """A stream over three nodes' channels: every value once, each from its channel,
    and every channel's close reported."""
    with chand.dial_cluster(f"cluster://{nodes[1].addr}") as cl:
        chans = one_per_node(cl, nodes, "xstr")
        n = 40
        want = {(i, f"{i}-{k}".encode()) for i in range(NODES) for k in range(n)}

        def produce(i: int) -> None:
            for k in range(n):
                chans[i].send(f"{i}-{k}", timeout=30)
            chans[i].close()
        ts = [threading.Thread(target=produce, args=(i,)) for i in range(NODES)]
        for t in ts:
            t.start()
        got, closed = [], set()
        with cl.stream(chans, credit=8, timeout=60) as st:
            while len(closed) < NODES or len(got) < len(want):
                i, v, ok = st.recv()
                if ok:
                    got.append((i, v))
                else:
                    closed.add(i)
        for t in ts:
            t.join(30)
        assert sorted(got) == sorted(want)
        for ch in chans:
            ch.delete()


def test_fan_in_across_nodes(nodes: List[Node]) -> None:
    """fan_in over three nodes' channels, started through ClusterConn.link: every value
    once on the output, which closes when every input has closed."""
    with chand.dial_cluster(f"cluster://{nodes[2].addr}") as cl:
        chans = one_per_node(cl, nodes, "xfan")
        with cl.link(chand.fan_in, *chans, timeout=60) as ln:
            got: list = []
            t = threading.Thread(target=lambda: got.extend(ln.out))
            t.start()
            for i, ch in enumerate(chans):
                for k in range(10):
                    ch.send(f"{i}-{k}", timeout=30)
                ch.close()
            t.join(60)
            assert not t.is_alive()
            assert sorted(got) == sorted(f"{i}-{k}".encode() for i in range(NODES)
                                         for k in range(10))
        for ch in chans:
            ch.delete()


async def test_aio_across_nodes(nodes: List[Node]) -> None:
    """chand.aio's ClusterConn.select, stream and link over three nodes' channels:
    one case fires and the others' values stay; the stream and a fan-in give every
    value once."""
    with chand.dial_cluster(f"cluster://{nodes[0].addr}") as sync:
        names = [ch.name for ch in one_per_node(sync, nodes, "axn")]
        async with await aio.dial_cluster(f"cluster://{nodes[2].addr}") as cl:
            chans = [await cl.handle(n) for n in names]
            assert len({ch._conn for ch in chans}) == NODES
            for i, ch in enumerate(chans):
                await ch.send(f"v{i}", timeout=10)
            i, v, ok = await cl.select(*[chand.recv(ch) for ch in chans], timeout=10)
            assert ok and v == f"v{i}".encode()
            assert [await ch.len() for ch in chans] == [0 if j == i else 1 for j in range(NODES)]
            for j, ch in enumerate(chans):
                if j != i:
                    assert await ch.recv(timeout=10) == (f"v{j}".encode(), True)

            async def produce() -> None:
                for k in range(10):
                    for j, ch in enumerate(chans):
                        await ch.send(f"{j}-{k}", timeout=30)
            want = sorted(f"{j}-{k}".encode() for j in range(NODES) for k in range(10))
            prod = asyncio.ensure_future(produce())
            got = []
            async with await cl.stream(chans, credit=4, timeout=60) as st:
                while len(got) < len(want):
                    j, v, ok = await st.recv()
                    assert ok and v.startswith(f"{j}-".encode())
                    got.append(v)
            await prod
            assert sorted(got) == want

            async with await cl.link(aio.fan_in, *chans, timeout=60) as ln:
                prod = asyncio.ensure_future(produce())
                got = [await ln.out.recv(timeout=30) for _ in want]
                await prod
                assert sorted(v for v, _ in got) == want
                for ch in chans:
                    await ch.close()
                assert await ln.out.recv(timeout=30) == (None, False)
        for n in names:
            sync.handle(n).delete()
