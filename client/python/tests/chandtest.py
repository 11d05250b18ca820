# SPDX-License-Identifier: BSD-2-Clause
"""What the tests share: a real chand on an ephemeral loopback port, and waiting on a
condition with a generous bound (never a bare sleep standing in for synchronisation)."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, TypeVar

import msgpack
import pytest

import chand

ROOT = Path(__file__).resolve().parents[3]
CHAND = os.environ.get("CHAND") or str(ROOT / "build" / "server" / "chand")
CHANCTL = os.environ.get("CHANCTL") or str(ROOT / "build" / "client" / "chanctl")

T = TypeVar("T")

BOUND = 10.0    # seconds: the generous upper bound of every wait on a condition


class Server:
    """chand started as tests/testutil.c's test_server_start does: -f -p 0 -l 127.0.0.1,
    a config of our own in a temporary directory, and the port read from --ready-fd."""

    def __init__(self, conf: str = "", unix: bool = False, port: int = 0) -> None:
        if not os.access(CHAND, os.X_OK):
            raise RuntimeError(f"no chand at {CHAND}: build the tree or set CHAND")
        self.dir = Path(tempfile.mkdtemp(prefix="chand-py."))
        self.sock = self.dir / "chand.sock"
        self.log = self.dir / "chand.log"
        text = conf + (f"\nunix_socket = {self.sock}\n" if unix else "\n")
        (self.dir / "chand.conf").write_text(text)
        rfd, wfd = os.pipe()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [CHAND, "-f", "-c", str(self.dir / "chand.conf"), "-l", "127.0.0.1",
                 "-p", str(port), "--ready-fd", str(wfd)],
                pass_fds=(wfd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log)
        os.close(wfd)
        try:
            line = b""
            end = time.monotonic() + BOUND
            while not line.endswith(b"\n"):
                left = end - time.monotonic()
                if left <= 0 or not select.select([rfd], [], [], left)[0]:
                    raise RuntimeError("chand did not report its port")
                chunk = os.read(rfd, 64)
                if not chunk:
                    raise RuntimeError(f"chand exited: {self.log.read_text()}")
                line += chunk
            self.port = int(line)
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(rfd)
        self.addr = f"127.0.0.1:{self.port}"

    def dial(self, **kw: object) -> chand.Conn:
        return chand.dial(self.addr, **kw)  # type: ignore[arg-type]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM, and the exit status (killed past the bound)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


def unique(prefix: str = "py") -> str:
    """A channel name no other test uses."""
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


def until(cond: Callable[[], T], bound: float = BOUND, what: str = "condition") -> T:
    """Poll cond until it is true (returning it), failing the test past bound seconds."""
    end = time.monotonic() + bound
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"{what} not met within {bound} s")
        time.sleep(0.005)


def waiters_on(conn: chand.Conn, ch: chand.Chan) -> int:
    """Waiting senders and receivers on ch, as the server sees them."""
    i = conn.handle(ch.name).info()
    return i.senders + i.receivers


def server_waiters(conn: chand.Conn) -> int:
    return conn.stats()["waiters"]


def timed(fn: Callable[[], T]) -> "tuple[T, float]":
    t0 = time.monotonic()
    v = fn()
    return v, time.monotonic() - t0


def make_certs(d: Path) -> Path:
    """tests/gencerts.sh's certificates in d (ca.pem, server.pem/.key for localhost and
    127.0.0.1, client.pem/.key CN alice, otherca.pem, ...): d. Skips the test without
    the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI to make certificates")
    subprocess.run(["sh", str(ROOT / "tests" / "gencerts.sh"), str(d)], check=True,
                   timeout=60)
    return d


# ---- a fake server: for what a real chand never sends ------------------------------------


def read_frame(sock: "socket.socket") -> list:
    """One request frame, decoded."""
    def exact(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf
    n = struct.unpack(">I", exact(4))[0]
    return msgpack.unpackb(exact(n), raw=False)


def frame(obj: object) -> bytes:
    body = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


HELLO_INFO = {"version": 1, "server": "fake 0", "max_frame": 1 << 20, "max_value": 1 << 16,
              "max_pending": 64, "max_select_cases": 64, "max_stream_credit": 64}


class FakeServer:
    """A one-connection server in a thread: answers HELLO, then runs script(sock)."""

    def __init__(self, script: Callable[["socket.socket"], None], hello: bool = True) -> None:
        self.hello = hello
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.addr = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.script = script
        self.error: "BaseException | None" = None
        self.requests: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.listener.settimeout(BOUND)
            sock, _ = self.listener.accept()
            sock.settimeout(BOUND)
            with sock:
                if not self.hello:
                    self.script(sock)
                    return
                hello = read_frame(sock)
                self.requests.append(hello)
                sock.sendall(frame([hello[1], 0, HELLO_INFO]))
                self.script(sock)
        except BaseException as e:      # reported by close()
            self.error = e
        finally:
            self.listener.close()

    def close(self) -> None:
        self.thread.join(BOUND)
        assert not self.thread.is_alive()
        if self.error is not None and not isinstance(self.error, (EOFError, OSError)):
            raise self.error
