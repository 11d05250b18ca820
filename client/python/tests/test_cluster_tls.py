# SPDX-License-Identifier: BSD-2-Clause
"""TLS to a cluster's nodes (PROTOCOL.md §17; libchanclient's cluster+tls://): a real
etcd and three chand nodes with TLS between them, each advertising its TLS listener,
so that MOVED replies name TLS ports. Certificates from tests/gencerts.sh. The argument
checks need no server; the rest is skipped without /usr/bin/etcd or the openssl CLI."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import chand
import chand._cluster
import chand._conn
import chand.aio as aio
from chandtest import make_certs, unique, until
from clusterutil import (Node, check_owner_direct, check_owner_direct_aio, etcd_cluster,
                         moved, needs_etcd)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def tls_nodes(certs: Path) -> Iterator[List[Node]]:
    with etcd_cluster(certs) as started:
        yield started


def count_contexts(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """Count the SSLContexts dial_cluster makes ([n]); a node's dial making one of its own
    (chand.dial's, chand.aio.dial's) fails the test."""
    made = [0]
    real = chand._cluster._make_tls_context

    def counted(*a: Any) -> ssl.SSLContext:
        made[0] += 1
        return real(*a)

    def refused(*a: Any) -> ssl.SSLContext:
        raise AssertionError("a node's dial made an SSLContext of its own")

    monkeypatch.setattr(chand._cluster, "_make_tls_context", counted)
    monkeypatch.setattr(chand._conn, "_make_tls_context", refused)
    monkeypatch.setattr(aio, "_make_tls_context", refused)
    return made


def seed_moved_per_name(nodes: List[Node], before: List[int], owners: List[str]) -> None:
    """check_owner_direct made and located (where) each name through nodes[0]: each name
    another node owns cost the seed two MOVED replies, which the client followed over TLS;
    the other nodes sent none."""
    off = sum(o != nodes[0].advertise for o in owners)
    assert off > 0
    assert moved(nodes) == [before[0] + 2 * off] + before[1:]


@needs_etcd
def test_tls_owner_direct(tls_nodes: List[Node], certs: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """cluster+tls:// through one seed: channels on every node, each made at its owner
    (a MOVED naming its TLS listener, dialed in TLS), sends and receives straight there;
    every node's connection is TLS, all with the one context dial_cluster made."""
    nodes = tls_nodes
    assert all(s.advertise != s.addr for s in nodes)
    made = count_contexts(monkeypatch)
    before = moved(nodes)
    with chand.dial_cluster(f"cluster+tls://{nodes[0].advertise}",
                            ca=str(certs / "ca.pem")) as cl:
        owners = check_owner_direct(cl, nodes, "tlsdirect")
        assert set(owners) == {f"127.0.0.1:{s.tls_port}" for s in nodes}
        assert [cl.node(a).address.scheme for a in cl.nodes] == ["tls"] * len(nodes)
    assert made == [1]
    seed_moved_per_name(nodes, before, owners)


@needs_etcd
async def test_tls_owner_direct_aio(tls_nodes: List[Node], certs: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """chand.aio.dial_cluster with cluster+tls://: as test_tls_owner_direct."""
    nodes = tls_nodes
    made = count_contexts(monkeypatch)
    before = moved(nodes)
    async with await aio.dial_cluster(f"cluster+tls://{nodes[0].advertise}",
                                      ca=str(certs / "ca.pem")) as cl:
        owners = await check_owner_direct_aio(cl, nodes, "atlsdirect")
        assert set(owners) == {f"127.0.0.1:{s.tls_port}" for s in nodes}
        assert [(await cl.node(a)).address.scheme for a in cl.nodes] == ["tls"] * len(nodes)
    assert made == [1]
    seed_moved_per_name(nodes, before, owners)


@needs_etcd
async def test_tls_true_and_own_context(tls_nodes: List[Node], certs: Path) -> None:
    """tls=True on cluster:// and on a list of seeds; an SSLContext of the caller's (the
    one that verifies: a context without the CA is refused); server_hostname, checked
    on every node (the certificates name localhost)."""
    nodes = tls_nodes
    ca = str(certs / "ca.pem")
    with chand.dial_cluster(f"cluster://{nodes[0].advertise}", tls=True, ca=ca) as cl:
        check_owner_direct(cl, nodes, "tlstrue")
    own = ssl.create_default_context(cafile=ca)
    with chand.dial_cluster([nodes[0].advertise], tls=own) as cl:
        check_owner_direct(cl, nodes, "tlsown")
        assert [cl.node(a).address.scheme for a in cl.nodes] == ["tls"] * len(nodes)
    async with await aio.dial_cluster([nodes[0].advertise], tls=own) as acl:
        await check_owner_direct_aio(acl, nodes, "atlsown")
    with pytest.raises(chand.DialError, match="CERTIFICATE_VERIFY_FAILED"):
        chand.dial_cluster(f"cluster+tls://{nodes[0].advertise}",
                           tls=ssl.create_default_context())
    with chand.dial_cluster(f"cluster+tls://{nodes[0].advertise}", ca=ca,
                            server_hostname="localhost") as cl:
        check_owner_direct(cl, nodes, "tlsname")
    with pytest.raises(chand.DialError, match="CERTIFICATE_VERIFY_FAILED"):
        chand.dial_cluster(f"cluster+tls://{nodes[0].advertise}", ca=ca,
                           server_hostname="elsewhere.example")
    with pytest.raises(chand.DialError, match="CERTIFICATE_VERIFY_FAILED"):
        await aio.dial_cluster(f"cluster+tls://{nodes[0].advertise}", ca=ca,
                               server_hostname="elsewhere.example")


@needs_etcd
async def test_tls_refused(tls_nodes: List[Node], certs: Path) -> None:
    """A certificate from another CA fails dial_cluster with DialError; a CA file that
    is not there too. Plaintext to a TLS port: the node ends the connection during
    HELLO (a TLS alert, then the end), ConnectionLost. A seed whose handshake fails (a plain port dialed in TLS) is
    passed over as a dead one is, and the next seed serves."""
    nodes = tls_nodes
    seed = f"cluster+tls://{nodes[0].advertise}"
    with pytest.raises(chand.DialError, match="CERTIFICATE_VERIFY_FAILED"):
        chand.dial_cluster(seed, ca=str(certs / "otherca.pem"))
    with pytest.raises(chand.DialError, match="CERTIFICATE_VERIFY_FAILED"):
        await aio.dial_cluster(seed, ca=str(certs / "otherca.pem"))
    with pytest.raises(chand.DialError, match="No such file"):
        chand.dial_cluster(seed, ca=str(certs / "absent.pem"))
    with pytest.raises(chand.DialError, match="No such file"):
        await aio.dial_cluster(seed, ca=str(certs / "absent.pem"))
    with pytest.raises(chand.ConnectionLost, match="closed|reset") as e:
        chand.dial_cluster(f"cluster://{nodes[0].advertise}", timeout=10)
    assert type(e.value) is chand.ConnectionLost
    with pytest.raises(chand.ConnectionLost, match="closed|reset") as e:
        await aio.dial_cluster(f"cluster://{nodes[0].advertise}", timeout=10)
    assert type(e.value) is chand.ConnectionLost
    # a seed that cut the HELLO short is passed over as a dead one is: the next one serves
    with chand.dial_cluster([nodes[0].advertise, nodes[1].addr], timeout=10) as pc:
        pc.node(nodes[1].addr).ping(timeout=10)
    async with await aio.dial_cluster([nodes[0].advertise, nodes[1].addr], timeout=10) as ac:
        await (await ac.node(nodes[1].addr)).ping(timeout=10)
    with chand.dial_cluster([nodes[0].addr, nodes[1].advertise], tls=True,
                            ca=str(certs / "ca.pem"), timeout=10) as cl:
        name = unique("tlsover")
        ch = cl.make(name, 1)
        ch.send(b"x", timeout=10)
        assert ch.recv(timeout=10) == (b"x", True)
        assert cl.where(name) in {s.advertise for s in nodes}
        assert all(cl.node(a).address.scheme == "tls" for a in cl.nodes if a != nodes[0].addr)
        ch.delete()


async def test_tls_options_need_tls() -> None:
    """ca, cert, key or server_hostname on a plain cluster address, tls=False with
    cluster+tls://, a bad cluster+tls:// address: ValueError before anything is dialed
    (the listener below never sees a connection); chand.dial of cluster+tls:// points at
    dial_cluster."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        addr = f"127.0.0.1:{listener.getsockname()[1]}"
        plain_forms: List[Any] = [f"cluster://{addr}", addr, [addr], f"{addr},{addr}"]
        for seeds in plain_forms:
            tls_kws: List[Dict[str, Any]] = [
                {"ca": "ca.pem"}, {"cert": "c.pem", "key": "c.key"}, {"key": "c.key"},
                {"server_hostname": "localhost"}, {"ca": "ca.pem", "tls": False}]
            for kw in tls_kws:
                with pytest.raises(ValueError, match=r"cluster\+tls://.*tls=True"):
                    chand.dial_cluster(seeds, **kw)
                with pytest.raises(ValueError, match=r"cluster\+tls://.*tls=True"):
                    await aio.dial_cluster(seeds, **kw)
        for seeds in (f"cluster+tls://{addr}", f"cluster+tls://{addr},{addr}"):
            with pytest.raises(ValueError, match="tls=False"):
                chand.dial_cluster(seeds, tls=False, ca="ca.pem")
            with pytest.raises(ValueError, match="tls=False"):
                await aio.dial_cluster(seeds, tls=False)
        for bad in ("cluster+tls://", f"cluster+tls://tcp://{addr}", "cluster+tls://localhost",
                    f"cluster+tls://{addr},,{addr}", "cluster+tls://unix:/tmp/x",
                    f"cluster+tls://cluster://{addr}"):
            with pytest.raises(ValueError, match="bad cluster address"):
                chand.dial_cluster(bad, ca="ca.pem")
        with pytest.raises(TypeError):
            chand.dial_cluster(f"cluster://{addr}", tls="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="dial_cluster"):
            chand.dial(f"cluster+tls://{addr}")
        with pytest.raises(ValueError, match="dial_cluster"):
            chand.dial(f"cluster+tls://{addr}", tls=True)
        with pytest.raises(ValueError, match="dial_cluster"):
            await aio.dial(f"cluster+tls://{addr}")
        with pytest.raises(BlockingIOError):
            listener.accept()


def handshake_certificate(node: Node, client_name: str) -> str:
    """The client certificate node's log names for the connection of client_name (its
    id and peer from CLIENTS on the plain port): the log line is tls-handshake's."""
    with node.dial() as adm:
        me = [c for c in adm.clients() if c.name == client_name]
    assert len(me) == 1
    head = f"tls-handshake client={me[0].id} peer={me[0].peer} certificate="
    lines = until(lambda: [ln for ln in node.log_text().splitlines() if head in ln],
                  what=f"{node.advertise} logging the handshake of {client_name}")
    return lines[0].split(head, 1)[1]


@needs_etcd
def test_tls_client_certificate(tls_nodes: List[Node], certs: Path) -> None:
    """cert and key are presented to every node, the seed and those MOVED replies named:
    each node logs the handshake with the certificate's name (alice); without them, none."""
    nodes = tls_nodes
    ca = str(certs / "ca.pem")
    for cert, key, want in ((str(certs / "client.pem"), str(certs / "client.key"), "alice"),
                            (None, None, "-")):
        name = unique("mtls")
        with chand.dial_cluster(f"cluster+tls://{nodes[0].advertise}", ca=ca, cert=cert,
                                key=key, client_name=name) as cl:
            check_owner_direct(cl, nodes, "mtls")
            assert [handshake_certificate(s, name) for s in nodes] == [want] * len(nodes)
