# SPDX-License-Identifier: BSD-2-Clause
"""The sync connection's transports: who owns the socket, plain or TLS.

The socket is non-blocking once the connection starts: the thread leading the reads
polls for input (see _conn.Conn._wait), writers write under a lock and wait in
``full`` (set by the connection) when the socket is full.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Callable, Optional

__all__ = ["Plain", "TLS", "wait_writable", "READ_SIZE"]

READ_SIZE = 1 << 18     # the most one read returns


def wait_writable(fd: int) -> None:
    """Block until fd can take more bytes (or failed: the next send says how)."""
    p = select.poll()
    p.register(fd, select.POLLOUT)
    p.poll()


class Plain:
    """A TCP or unix socket in non-blocking mode: the thread leading the reads polls
    for input (see Conn), writers write under a lock and wait in ``full`` when the
    socket is full."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.full: Callable[[], None] = lambda: wait_writable(self.fd)
        self.drained = False        # the last read emptied the socket (nothing buffered)
        self._wlock = threading.Lock()
        # reads land here (see read): a fresh buffer for each read cost a 256 KiB
        # allocation each time, an mmap, an mremap and a munmap with their page faults
        self._rbuf = memoryview(bytearray(READ_SIZE))

    def start(self) -> None:
        """Go non-blocking (after the TLS handshake, which runs on the dial's timeout)."""
        self.sock.setblocking(False)

    def read(self) -> Optional[memoryview]:
        """What has arrived, at most READ_SIZE bytes, as a view of the transport's buffer
        that the next read overwrites: empty at the end, None when nothing has."""
        try:
            n = self.sock.recv_into(self._rbuf)
        except (BlockingIOError, InterruptedError):
            self.drained = False
            return None
        self.drained = 0 < n < READ_SIZE
        return self._rbuf[:n]

    def sendall(self, data: bytes) -> None:
        with self._wlock:
            self._send_locked(memoryview(data))

    def _send_locked(self, view: memoryview) -> None:
        while view:
            try:
                n = self.sock.send(view)
            except (BlockingIOError, InterruptedError):
                self.full()
                continue
            view = view[n:]

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


class TLS(Plain):
    """TLS through memory BIOs, so that the reading and the writing thread never share
    an SSL object unlocked (OpenSSL forbids it) and nobody holds the TLS lock in a
    socket call."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext,
                 server_hostname: Optional[str]) -> None:
        super().__init__(sock)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._slock = threading.Lock()
        self._clear = memoryview(bytearray(READ_SIZE))      # decrypted reads land here

    def handshake(self) -> None:
        """The handshake, on the socket's current timeout (before start)."""
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_handshake()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionResetError("the server closed the connection "
                                               "during the TLS handshake")
                self._in.write(data)
        self._flush_handshake()

    def _flush_handshake(self) -> None:
        out = self._out.read()
        if out:
            self.sock.sendall(out)

    def read(self) -> Optional[memoryview]:
        while True:
            with self._slock:
                try:
                    n = self._obj.read(READ_SIZE, self._clear)
                    data: Optional[memoryview] = self._clear[:n]
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = self._clear[:0]
                pending = self._out.pending
            if pending and self._wlock.acquire(blocking=False):
                # the read made TLS records of its own (a key update): send them unless a
                # writer is busy, which sends them with its next write
                try:
                    with self._slock:
                        out = self._out.read()
                    self._send_locked(memoryview(out))
                finally:
                    self._wlock.release()
            if data is not None:
                return data
            raw = super().read()
            self.drained = False     # records may wait in the SSL object, unseen by poll
            if raw is None:
                return None
            with self._slock:
                if raw:
                    self._in.write(raw)
                else:
                    self._in.write_eof()

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        with self._wlock:
            while view:
                with self._slock:
                    n = self._obj.write(view)
                    out = self._out.read()
                view = view[n:]
                self._send_locked(memoryview(out))
