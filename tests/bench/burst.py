#!/usr/bin/python3
# SPDX-License-Identifier: BSD-2-Clause
"""burst: a cluster node under bursts of many connections, A/B between chand builds.

    burst.py [--rounds N] [--conns N] [--each K] [--waiters N] [--dial N]
             [--only lookups,etcd,close,dial] LABEL=CHAND [LABEL=CHAND ...]

Each round, for each build in turn: a fresh etcd and two chand nodes on
loopback ports (temporary directories, node_ttl 5s), then

  lookups  --conns connections to node 0, each pipelining --each LENs of
           channels nobody made (three names a connection): every one is
           held for etcd and asks it. Reports seconds until the last reply,
           the replies by status (all NOT_FOUND is right; UNAVAILABLE means
           the node could not ask etcd, or was fenced), the node's etcd
           errors (STATS cluster_etcd_errors) and whether it still serves
           (cluster_serving) after, and the node's and etcd's CPU
           seconds.
  etcd     the peer, in the same round: as many range calls straight to
           etcd's HTTP gateway over 8 kept connections (threads): its own
           rate, the floor of any lookup burst through chand.
  close    --waiters connections to node 0, each blocked in a RECV of a
           channel node 1 owns (forwarded), all closed at once: the node's
           CPU ticks (10 ms) to end them, and the wall time until STATS
           shows them gone.
  dial     --dial connections to node 0, each making one channel of its
           own (a fresh cluster's clients starting: half the names are
           node 1's, forwarded there and claimed by it). Reports seconds,
           the replies OK and not, node 0's etcd errors and sessions
           (a second one: it lost its lease) and whether it still serves.

Lines are TSV: label, round, workload, metric, value.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Dict, List, Tuple

import msgpack

OP_HELLO, OP_LEN, OP_RECV, OP_STATS, OP_MAKE = 1, 8, 6, 14, 3
NOT_FOUND = 4


def frame(obj) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


class Conn:
    """A raw protocol connection: HELLO done, replies read whole."""

    def __init__(self, port: int, moved: bool = False) -> None:
        self.s = socket.create_connection(("127.0.0.1", port))
        self.buf = b""
        self.s.sendall(frame([OP_HELLO, 1, None, 1, "burst", None, {"moved": moved}]))
        if self.reply()[1] != 0:
            raise RuntimeError("HELLO refused")

    def reply(self) -> List:
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack_from(">I", self.buf)
                if len(self.buf) >= 4 + n:
                    rep = msgpack.unpackb(self.buf[4:4 + n], raw=False)
                    self.buf = self.buf[4 + n:]
                    return rep
            data = self.s.recv(1 << 20)
            if not data:
                raise RuntimeError("connection closed")
            self.buf += data

    def call(self, obj) -> List:
        self.s.sendall(frame(obj))
        return self.reply()

    def close(self) -> None:
        self.s.close()


def stat(port: int, name: str) -> int:
    c = Conn(port)
    rep = c.call([OP_STATS, 2, None])
    c.close()
    return rep[2][name]


class Cluster:
    """etcd and two chand nodes in a temporary directory."""

    def __init__(self, chand: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="chand-burst.")
        self.etcd_port, peer = free_port(), free_port()
        self.procs: List[subprocess.Popen] = []
        self.etcd = self.start(["/usr/bin/etcd", "--data-dir", f"{self.dir}/etcd",
                                "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
                                "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
                                "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                                "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                                "--initial-cluster", f"default=http://127.0.0.1:{peer}"],
                               "etcd.log")
        self.wait(lambda: self.etcd_ok(), "etcd")
        self.ports, self.nodes = [], []
        for i in range(2):
            port = free_port()
            conf = f"{self.dir}/n{i}.conf"
            with open(conf, "w") as f:
                f.write(f"log_level = warn\ncluster_etcd = http://127.0.0.1:{self.etcd_port}\n"
                        f"cluster_name = burst\nnode_name = n{i}\nadvertise = 127.0.0.1:{port}\n"
                        "node_ttl = 5s\nmax_connections = 20000\n")
            self.ports.append(port)
            self.nodes.append(self.start([chand, "-f", "-c", conf, "-l", "127.0.0.1", "-p",
                                          str(port)], f"n{i}.log"))
        for port in self.ports:
            self.wait(lambda: self.nodes_seen(port) == 2, "the nodes")

    def start(self, argv: List[str], log: str) -> subprocess.Popen:
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                             stderr=open(f"{self.dir}/{log}", "w"))
        self.procs.append(p)
        return p

    def etcd_ok(self) -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.etcd_port, timeout=1)
            c.request("GET", "/health")
            return b"true" in c.getresponse().read()
        except OSError:
            return False

    @staticmethod
    def nodes_seen(port: int) -> int:
        try:
            return stat(port, "cluster_nodes")
        except (OSError, RuntimeError):
            return 0

    @staticmethod
    def wait(cond, what: str) -> None:
        end = time.monotonic() + 30
        while not cond():
            if time.monotonic() > end:
                raise RuntimeError(f"{what} did not come up within 30 s")
            time.sleep(0.05)

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def lookups(cl: Cluster, conns: int, each: int) -> Dict[str, float]:
    node, etcd = cl.nodes[0].pid, cl.etcd.pid
    t_node, t_etcd = ticks(node), ticks(etcd)
    errors = stat(cl.ports[0], "cluster_etcd_errors")
    cs = [Conn(cl.ports[0]) for _ in range(conns)]
    start = time.monotonic()
    for i, c in enumerate(cs):
        c.s.sendall(b"".join(frame([OP_LEN, 2 + k, None, f"never.{i}.{k % 3}"])
                             for k in range(each)))
    by_status: Dict[int, int] = {}
    for c in cs:
        for _ in range(each):
            st = c.reply()[1]
            by_status[st] = by_status.get(st, 0) + 1
    secs = time.monotonic() - start
    for c in cs:
        c.close()
    cpu = {"node_cpu_s": (ticks(node) - t_node) / 100, "etcd_cpu_s": (ticks(etcd) - t_etcd) / 100}
    return {"seconds": secs, "not_found": by_status.pop(NOT_FOUND, 0),
            "other": sum(by_status.values()),
            "etcd_errors": stat(cl.ports[0], "cluster_etcd_errors") - errors,
            "serving_after": stat(cl.ports[0], "cluster_serving"), **cpu}


def etcd_direct(cl: Cluster, calls: int) -> Dict[str, float]:
    def run(n: int) -> None:
        c = http.client.HTTPConnection("127.0.0.1", cl.etcd_port)
        for _ in range(n):
            c.request("POST", "/v3/kv/range", body='{"key":"bmV2ZXI="}',
                      headers={"Content-Type": "application/json"})
            c.getresponse().read()
    start = time.monotonic()
    threads = [threading.Thread(target=run, args=(calls // 8,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    secs = time.monotonic() - start
    return {"seconds": secs, "calls_s": calls // 8 * 8 / secs}


def dial(cl: Cluster, conns: int) -> Dict[str, float]:
    port = cl.ports[0]
    errors, sessions = stat(port, "cluster_etcd_errors"), stat(port, "cluster_sessions")
    cs = [Conn(port) for _ in range(conns)]
    start = time.monotonic()
    for i, c in enumerate(cs):
        c.s.sendall(frame([OP_MAKE, 2, None, f"made.{i}", 0]))
    ok = sum(c.reply()[1] == 0 for c in cs)
    secs = time.monotonic() - start
    for c in cs:
        c.close()
    return {"seconds": secs, "ok": ok, "other": conns - ok,
            "etcd_errors": stat(port, "cluster_etcd_errors") - errors,
            "new_sessions": stat(port, "cluster_sessions") - sessions,
            "serving_after": stat(port, "cluster_serving")}


def owned_by_node1(cl: Cluster) -> str:
    c = Conn(cl.ports[1], moved=True)    # a name placed elsewhere is MOVED, not forwarded
    for i in range(1000):
        name = f"owned.{i}"
        rep = c.call([OP_MAKE, 2 + i, None, name, 0])
        if rep[1] == 0:
            c.close()
            return name
    raise RuntimeError("node 1 made none of 1,000 names")


def close_all(cl: Cluster, waiters: int) -> Dict[str, float]:
    name = owned_by_node1(cl)
    port, node = cl.ports[0], cl.nodes[0].pid
    before = stat(port, "cluster_forwarded")
    cs = [Conn(port) for _ in range(waiters)]
    for c in cs:
        c.s.sendall(frame([OP_RECV, 2, None, name]))
    Cluster.wait(lambda: stat(port, "cluster_forwarded") - before >= waiters, "the forwarded RECVs")
    t0, start = ticks(node), time.monotonic()
    for c in cs:
        c.close()
    Cluster.wait(lambda: stat(port, "connections") <= 1, "the close")
    return {"ticks": ticks(node) - t0, "seconds": time.monotonic() - start}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--each", type=int, default=40)
    ap.add_argument("--waiters", type=int, default=15000)
    ap.add_argument("--dial", type=int, default=8000)
    ap.add_argument("--only", default="lookups,etcd,close,dial")
    ap.add_argument("builds", nargs="+", help="LABEL=path/to/chand")
    a = ap.parse_args()
    builds: List[Tuple[str, str]] = [tuple(b.split("=", 1)) for b in a.builds]  # type: ignore
    print("label\tround\tworkload\tmetric\tvalue", flush=True)
    for r in range(1, a.rounds + 1):
        for label, chand in builds:
            runs = {"lookups": lambda: lookups(cl, a.conns, a.each),
                    "etcd": lambda: etcd_direct(cl, a.conns * a.each),
                    "close": lambda: close_all(cl, a.waiters),
                    "dial": lambda: dial(cl, a.dial)}
            cl = Cluster(chand)
            try:
                rows = [(w, runs[w]()) for w in a.only.split(",")]
            finally:
                cl.stop()
            for workload, m in rows:
                for k, v in m.items():
                    print(f"{label}\t{r}\t{workload}\t{k}\t{v:.6g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
