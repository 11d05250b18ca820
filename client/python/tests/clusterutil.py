# SPDX-License-Identifier: BSD-2-Clause
"""What the cluster tests share (test_cluster.py, test_cluster_tls.py): a real etcd and
three chand nodes on ephemeral loopback ports, in plain TCP or with TLS between them
(as tests/clustertest.c starts them), and the check that a cluster connection sends
each channel's operations straight to its owner."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator, List, Optional

import pytest

import chand
import chand.aio as aio
from chandtest import Server, unique, until

ETCD = "/usr/bin/etcd"
NODES = 3
START_TRIES = 3

needs_etcd = pytest.mark.skipif(not os.access(ETCD, os.X_OK), reason="no /usr/bin/etcd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


class Node(Server):
    """A cluster node: a :class:`Server` (``addr`` its plain listener, for admin calls)
    and ``advertise``, the ``HOST:PORT`` the cluster knows it by, which MOVED replies and
    ``where`` name: its TLS listener's when it has one (``tls_port``)."""

    def __init__(self, conf: str, port: int, tls_port: Optional[int]) -> None:
        super().__init__(conf, port=port)
        self.tls_port = tls_port
        self.advertise = f"127.0.0.1:{tls_port or port}"


def start_node(i: int, etcd_url: str, certs: Optional[Path]) -> Node:
    """Node i on ports picked first (its advertise address is in its config): another
    socket may take one before the node binds it, so a start that fails is tried again
    on new ports, as tests/clustertest.c's node_start does."""
    for attempt in range(START_TRIES):
        port = free_port()
        tls_port = free_port() if certs is not None else None
        conf = (f"cluster_etcd = {etcd_url}\ncluster_name = py\nnode_name = n{i}\n"
                f"advertise = 127.0.0.1:{tls_port or port}\nnode_ttl = 2s\n")
        if certs is not None:
            # with TLS the advertised address (what the nodes dial) is the TLS listener
            conf += (f"tls_listen = 127.0.0.1:{tls_port}\ntls_cert = {certs}/server.pem\n"
                     f"tls_key = {certs}/server.key\ntls_ca = {certs}/ca.pem\n"
                     "tls_verify_client = optional\nprotected_mode = no\n")
        try:
            return Node(conf, port, tls_port)
        except RuntimeError:
            if attempt == START_TRIES - 1:
                raise
    raise AssertionError("unreachable")


@contextlib.contextmanager
def etcd_cluster(certs: Optional[Path] = None) -> Iterator[List[Node]]:
    """A real etcd and NODES chand nodes in one cluster, TLS between them with certs (a
    directory of tests/gencerts.sh's certificates); everything stopped on the way out,
    and the nodes must exit 0."""
    d = tempfile.mkdtemp(prefix="chand-py-etcd.")
    port, peer = free_port(), free_port()
    client, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    with open(os.path.join(d, "etcd.log"), "wb") as log:
        etcd = subprocess.Popen(
            [ETCD, "--data-dir", os.path.join(d, "data"), "--listen-client-urls", client,
             "--advertise-client-urls", client, "--listen-peer-urls", peer_url,
             "--initial-advertise-peer-urls", peer_url, "--initial-cluster",
             f"default={peer_url}"], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    started: List[Node] = []
    try:
        until(lambda: listening(port), what="etcd listening")
        for i in range(NODES):
            started.append(start_node(i, client, certs))
        for s in started:
            with s.dial() as c:
                until(lambda: c.stats().get("cluster_nodes") == NODES, what="three nodes")
        yield started
    finally:
        rcs = [s.stop() for s in started]
        etcd.terminate()
        try:
            etcd.wait(10)
        except subprocess.TimeoutExpired:
            etcd.kill()
            etcd.wait()
        shutil.rmtree(d, ignore_errors=True)
    assert rcs == [0] * NODES


def moved(nodes: List[Node]) -> List[int]:
    """Each node's cluster_moved (MOVED replies sent), asked on its plain listener."""
    out = []
    for s in nodes:
        with s.dial() as c:
            out.append(c.stats()["cluster_moved"])
    return out


def check_owner_direct(cl: chand.ClusterConn, nodes: List[Node], tag: str) -> List[str]:
    """Channels on every node through cl, whose one seed is nodes[0]: each is made at its
    owner (a MOVED from the seed named it; its address is the node's advertised one),
    and its sends and receives go straight there (no MOVED any more). The owners."""
    assert cl.nodes == [nodes[0].advertise]
    names = [unique(tag) for _ in range(30)]
    chans = [cl.make(n, 4) for n in names]
    owners = [cl.where(n) for n in names]
    # rendezvous placement: 30 names all on two of three nodes, p < 2e-5
    assert set(owners) == {s.advertise for s in nodes}
    for n, ch, own in zip(names, chans, owners):
        assert ch._conn is cl.node(own)
        cl.node(own).open(n)        # the owner answers itself: no MOVED
    before = moved(nodes)
    for i, ch in enumerate(chans):
        ch.send(f"v{i}", timeout=10)
        assert ch.recv(timeout=10) == (f"v{i}".encode(), True)
    assert moved(nodes) == before
    assert sorted(cl.nodes) == sorted(s.advertise for s in nodes)
    for ch in chans:
        ch.delete()
    return owners


async def check_owner_direct_aio(cl: aio.ClusterConn, nodes: List[Node], tag: str) -> List[str]:
    """:func:`check_owner_direct` through chand.aio's cluster connection."""
    assert cl.nodes == [nodes[0].advertise]
    names = [unique(tag) for _ in range(30)]
    chans = [await cl.make(n, 4) for n in names]
    owners = [await cl.where(n) for n in names]
    assert set(owners) == {s.advertise for s in nodes}
    for n, ch, own in zip(names, chans, owners):
        assert ch._conn is await cl.node(own)
        await (await cl.node(own)).open(n)
    before = moved(nodes)
    for i, ch in enumerate(chans):
        await ch.send(f"v{i}", timeout=10)
        assert await ch.recv(timeout=10) == (f"v{i}".encode(), True)
    assert moved(nodes) == before
    assert sorted(cl.nodes) == sorted(s.advertise for s in nodes)
    for ch in chans:
        await ch.delete()
    return owners
