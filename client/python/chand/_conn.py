"""The synchronous client: connections, channels, select, streams, links, admin.

One :class:`Conn` is one socket. It is thread-safe: any number of threads
may block in calls on it at once, each call has its own request id, and a
dedicated reader thread hands every reply to the call it belongs to
(replies come back in any order, PROTOCOL.md §1). A blocked call blocks
only its own thread.

Waiting follows libchanclient (chanclient(3)): a call's deadline (from its
context and ``timeout=``) travels as the request's ``wait``; the server ends
the wait on time by itself and the call raises :class:`DeadlineExceeded`
once the server confirmed. Cancelling the context wakes the call at once
and sends CANCEL; the call then waits for the server's answer, at most
``cancel_grace`` seconds (a dial option, default 1 s), so that a value the
server matched before the CANCEL reached it is returned rather than lost,
as Go's select picks a ready case over ``ctx.Done()``.
"""

from __future__ import annotations

import socket
import ssl
import threading
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union)

from . import _proto as P
from ._addr import Address, parse_address
from ._proto import ChanInfo, ClientInfo, ServerInfo, Shape, Value, Waiter
from .context import Context, background, deadline_of
from .errors import (Canceled, Closed, ConnectionLost, DeadlineExceeded, DialError, Error,
                     ProtocolError)

__all__ = ["Conn", "Chan", "Stream", "Link", "RecvCase", "SendCase", "dial", "select",
           "recv", "send", "or_", "or_done", "tee", "bridge", "fan_in", "repeat", "take",
           "fan_out"]

# how a call's wait is sent
_BUDGET = 0      # the context's remaining budget (nil without a deadline)
_TRY = 1         # 0: do not wait
_NONE = 2        # nil: the op does not wait (its wait is validated and ignored)

_DEFAULT_ADDR = "tcp://127.0.0.1:7420"


def _raise_copy(e: Error) -> Error:
    """A fresh exception of e's class and text (a stored one must not be re-raised twice)."""
    c = type(e)(e.message, e.index)
    if e.status is not None and type(e).status != e.status:
        c.status = e.status
    return c


# ---- transports: who owns the socket --------------------------------------------------


class _Plain:
    """A TCP or unix socket: the reader thread reads, writers write under a lock."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._wlock = threading.Lock()

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def sendall(self, data: bytes) -> None:
        with self._wlock:
            self.sock.sendall(data)

    def shutdown(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


class _TLS(_Plain):
    """TLS through memory BIOs, so that reading and writing threads never share an SSL
    object unlocked (OpenSSL forbids it) and nobody holds the TLS lock in a blocking
    socket call (the reader must keep reading while a writer is blocked)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext,
                 server_hostname: Optional[str]) -> None:
        super().__init__(sock)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_hostname=server_hostname)
        self._slock = threading.Lock()

    def handshake(self) -> None:
        """The handshake, on the socket's current timeout (before the reader starts)."""
        while True:
            try:
                self._obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush_locked()
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionResetError("the server closed the connection "
                                               "during the TLS handshake")
                self._in.write(data)
        self._flush_locked()

    def _flush_locked(self) -> None:
        out = self._out.read()
        if out:
            self.sock.sendall(out)

    def recv(self, n: int) -> bytes:
        while True:
            with self._slock:
                try:
                    data: Optional[bytes] = self._obj.read(n)
                except ssl.SSLWantReadError:
                    data = None
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    data = b""
                pending = self._out.pending
            if pending and self._wlock.acquire(blocking=False):
                # the read made TLS records of its own (a key update): send them unless a
                # writer is busy, which sends them with its next write
                try:
                    with self._slock:
                        out = self._out.read()
                    self.sock.sendall(out)
                finally:
                    self._wlock.release()
            if data is not None:
                return data
            raw = self.sock.recv(65536)
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
                self.sock.sendall(out)


# ---- calls ----------------------------------------------------------------------------------


class _Call:
    """One request id: its replies (one, or interim ones then the final) and how it ended."""

    __slots__ = ("id", "op", "kind", "replies", "done", "cond", "ctx_err", "cancel_sent",
                 "error", "on_reply")

    def __init__(self, lock: threading.Lock, op: int, kind: int) -> None:
        self.id = 0
        self.op = op
        self.kind = kind
        self.replies: List[Tuple[int, List[Any]]] = []
        self.done = False                   # the final reply came, or the connection broke
        self.cond = threading.Condition(lock)
        self.ctx_err: Optional[Error] = None
        self.cancel_sent = False
        self.error: Optional[Error] = None  # the connection's failure
        self.on_reply: Optional[Callable[[], None]] = None


class Conn:
    """A connection to chand; make one with :func:`dial`. Thread-safe.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, transport: _Plain, address: Address, cancel_grace: float) -> None:
        self._t = transport
        self.address = address
        self._grace = cancel_grace
        self._lock = threading.Lock()
        self._calls: Dict[int, _Call] = {}
        self._abandoned: Dict[int, int] = {}     # id -> kind: replies still to come, unwanted
        self._next_id = 1
        self._dead: Optional[Error] = None
        self._info = ServerInfo(P.VERSION, "", P.DEFAULT_MAX_FRAME, 1 << 20, 4096, 1024, 0)
        self._reader = threading.Thread(target=self._read_loop, name="chand-reader",
                                         daemon=True)
        self._reader.start()

    # -- life ---------------------------------------------------------------------------

    @property
    def info(self) -> ServerInfo:
        """What HELLO said: the server, the protocol version and the server's limits."""
        return self._info

    @property
    def closed(self) -> bool:
        """True once the connection broke or was closed."""
        return self._dead is not None

    def close(self) -> None:
        """Close the connection: pending and later calls raise :class:`ConnectionLost`.

        Anonymous channels held only by this connection go with it. Idempotent.
        """
        self._break(ConnectionLost("connection closed"))
        if threading.current_thread() is not self._reader:
            self._reader.join(5.0)
        self._t.close()

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<chand.Conn {self.address}{' closed' if self.closed else ''}>"

    def _break(self, err: Error) -> None:
        """Fail every pending call with err; the first failure sticks."""
        with self._lock:
            if self._dead is None:
                self._dead = err
            calls = list(self._calls.values())
            self._calls.clear()
            for call in calls:
                call.done = True
                call.error = self._dead
                call.cond.notify_all()
        for call in calls:
            if call.on_reply is not None:
                call.on_reply()
        self._t.shutdown()

    # -- reading ------------------------------------------------------------------------

    def _read_loop(self) -> None:
        buf = bytearray()

        def read_exact(n: int, what: str) -> bytes:
            while len(buf) < n:
                chunk = self._t.recv(max(65536, n - len(buf)))
                if not chunk:
                    if not buf and what == "head":
                        raise ConnectionLost("the server closed the connection")
                    raise ConnectionLost("the server closed the connection in the middle "
                                         "of a frame (truncated frame)")
                buf.extend(chunk)
            data = bytes(buf[:n])
            del buf[:n]
            return data

        try:
            while self._dead is None:
                limit = max(P.READ_LIMIT, 2 * self._info.max_frame)
                n = P.frame_length(read_exact(4, "head"), limit)
                rid, status, results = P.decode_body(read_exact(n, "body"))
                self._deliver(rid, status, results)
        except Error as e:
            self._break(e)
        except (OSError, ValueError) as e:
            self._break(ConnectionLost(f"connection lost: {e}"))

    def _deliver(self, rid: int, status: int, results: List[Any]) -> None:
        with self._lock:
            if rid == 0:        # a connection notice (§2)
                if status == P.SHUTTING_DOWN:
                    return      # pending requests get replies of their own
                raise P.reply_error(status, results)
            call = self._calls.get(rid)
            if call is None:
                kind = self._abandoned.get(rid)
                if kind is None:
                    raise ProtocolError(f"the server replied to request id {rid}, "
                                        "which is not pending")
                if P.is_final(kind, status, len(results)):
                    del self._abandoned[rid]
                return
            call.replies.append((status, results))
            if P.is_final(call.kind, status, len(results)):
                del self._calls[rid]
                call.done = True
            call.cond.notify_all()
            hook = call.on_reply
        if hook is not None:
            hook()

    # -- writing -------------------------------------------------------------------------

    def _check_dead(self) -> None:
        if self._dead is not None:
            raise _raise_copy(self._dead)

    def _write(self, msg: Sequence[Any]) -> None:
        data = P.frame(msg)
        if len(data) - 4 > self._info.max_frame:
            from .errors import Limit
            raise Limit(f"request of {len(data) - 4} bytes is over the server's max_frame "
                        f"{self._info.max_frame}")
        try:
            self._t.sendall(data)
        except OSError as e:
            self._break(ConnectionLost(f"connection lost: {e}"))
            self._check_dead()

    def _post(self, op: int, *args: Any) -> None:
        """A request nobody waits for (CANCEL, CREDIT): its reply is expected and dropped."""
        with self._lock:
            if self._dead is not None:
                return
            rid = self._next_id
            self._next_id += 1
            self._abandoned[rid] = P.KIND_PLAIN
        try:
            self._write([op, rid, None, *args])
        except Error:
            pass

    def _cancel(self, call: _Call) -> None:
        with self._lock:
            if call.cancel_sent or call.done:
                return
            call.cancel_sent = True
        self._post(P.CANCEL, call.id)

    def _start(self, op: int, args: Sequence[Any], ctx: Optional[Context],
               deadline: Optional[int], how: int = _BUDGET,
               kind: int = P.KIND_PLAIN) -> _Call:
        """Check the context, link a call under a fresh id and send its request."""
        ctx = ctx or background()
        e = ctx.err()
        if e is not None:
            raise e                             # done already: nothing is sent
        wait: Optional[int] = None
        if how == _TRY:
            wait = 0
        elif how == _BUDGET and deadline is not None:
            now = P.now_ns()
            if deadline <= now:
                raise DeadlineExceeded("context deadline exceeded")
            wait = P.wait_us(deadline, now)
        call = _Call(self._lock, op, kind)
        with self._lock:
            self._check_dead()
            call.id = self._next_id
            self._next_id += 1
            self._calls[call.id] = call
        try:
            self._write([op, call.id, wait, *args])
        except BaseException:
            with self._lock:
                self._calls.pop(call.id, None)
            raise
        return call

    def _next(self, call: _Call, ctx: Optional[Context],
              deadline: Optional[int]) -> Tuple[int, List[Any]]:
        """Wait for the call's next reply, watching ctx and deadline (see the module doc).

        Returns (status, results); raises the connection's failure or the context's error.
        """
        ctx = ctx or background()

        def fired(err: Error) -> None:
            with self._lock:
                if call.ctx_err is None:
                    call.ctx_err = err
                call.cond.notify_all()

        token = ctx._watch(fired)
        if token is None:
            call.ctx_err = call.ctx_err or ctx.err()
        try:
            with self._lock:
                while not call.replies and not call.done and call.ctx_err is None:
                    if deadline is None:
                        call.cond.wait()
                        continue
                    left = deadline - P.now_ns()
                    if left <= 0:
                        call.ctx_err = DeadlineExceeded("context deadline exceeded")
                        break
                    call.cond.wait(left / 1e9)
                ready = bool(call.replies) or call.done
        finally:
            ctx._unwatch(token)
        if not ready:
            if isinstance(call.ctx_err, Canceled):
                self._cancel(call)
            grace_end = P.now_ns() + int(self._grace * 1e9)
            with self._lock:
                while not call.replies and not call.done:
                    left = grace_end - P.now_ns()
                    if left <= 0:
                        break
                    call.cond.wait(left / 1e9)
                ready = bool(call.replies) or call.done
                if not ready and self._calls.pop(call.id, None) is not None:
                    # the server did not confirm in time: give up on the request
                    self._abandoned[call.id] = call.kind
                    call.done = True
            if not ready:
                self._cancel_abandoned(call)
                assert call.ctx_err is not None
                raise call.ctx_err
        return self._take(call)

    def _cancel_abandoned(self, call: _Call) -> None:
        if not call.cancel_sent:
            call.cancel_sent = True
            self._post(P.CANCEL, call.id)

    def _take(self, call: _Call) -> Tuple[int, List[Any]]:
        with self._lock:
            if not call.replies:
                assert call.error is not None
                raise _raise_copy(call.error)
            status, results = call.replies.pop(0)
        if call.ctx_err is not None and status in (P.CANCELED, P.DEADLINE_EXCEEDED):
            raise call.ctx_err
        return status, results

    def _roundtrip(self, op: int, args: Sequence[Any], ctx: Optional[Context] = None,
                   timeout: Optional[float] = None, how: int = _BUDGET) -> List[Any]:
        """One request, one reply: the OK results, or the error raised."""
        ctx = ctx or background()
        deadline = deadline_of(ctx, timeout)
        call = self._start(op, args, ctx, deadline, how)
        status, results = self._next(call, ctx, deadline)
        if status != P.OK:
            raise P.reply_error(status, results)
        return results

    def _checked(self, fn: Callable[[], Any]) -> Any:
        """Run a reply decoder; a reply of the wrong shape breaks the connection."""
        try:
            return fn()
        except ProtocolError as e:
            self._break(e)
            raise

    def _value(self, v: Any) -> Value:
        if isinstance(v, P.ChanRef):
            return Chan(self, v.name)
        return v

    # -- HELLO ------------------------------------------------------------------------------

    def _hello(self, client_name: str, token: Optional[str], ctx: Context,
               deadline: Optional[int]) -> None:
        auth = {"token": token} if token is not None else None
        res = self._roundtrip(P.HELLO, [P.VERSION, client_name, auth], ctx,
                              None if deadline is None else (deadline - P.now_ns()) / 1e9)
        self._info = self._checked(lambda: P.server_info(
            Shape.mapping(res[0] if len(res) == 1 else None, "HELLO's info")))

    # -- channels ----------------------------------------------------------------------------

    def ping(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """One round trip."""
        self._roundtrip(P.PING, [], ctx, timeout, _NONE)

    def make(self, name: Optional[str] = None, cap: int = 0, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> "Chan":
        """Go's ``make(chan T, cap)``: create name, or open it if it exists with this cap.

        ``name=None`` makes an anonymous channel, named by the server ``~`` and 32 hex
        digits, which lives while a connection that made or opened it is open.
        Raises :class:`Exists` (another cap), :class:`BadRequest` (bad name),
        :class:`Limit`.
        """
        if name is not None:
            P.check_name(name)
        if type(cap) is not int or cap < 0:
            raise ValueError("cap is a non-negative int")
        res = self._roundtrip(P.MAKE, [name, cap], ctx, timeout, _NONE)

        def decode() -> Chan:
            Shape.arity(res, 3, "MAKE")
            return Chan(self, Shape.string(res[0], "name"), Shape.uint(res[1], "cap"))
        return self._checked(decode)

    def open(self, name: str, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> "Chan":
        """A handle on an existing channel (:class:`NotFound` if there is none).

        Opening an anonymous channel keeps it alive while this connection is open.
        """
        res = self._roundtrip(P.OPEN, [P.check_name(name)], ctx, timeout, _NONE)

        def decode() -> Chan:
            Shape.arity(res, 1, "OPEN")
            return Chan(self, name, Shape.uint(res[0], "cap"))
        return self._checked(decode)

    def handle(self, name: str) -> "Chan":
        """A handle on name without a round trip (not checked)."""
        return Chan(self, P.check_name(name))

    def stream(self, chans: Sequence["Chan"], credit: int = 64, *,
               ctx: Optional[Context] = None, timeout: Optional[float] = None) -> "Stream":
        """A receive stream over chans (see :class:`Stream`)."""
        return Stream(self, chans, credit, ctx, timeout)

    # -- admin (PROTOCOL.md §11) ---------------------------------------------------------------

    def stats(self, *, ctx: Optional[Context] = None,
              timeout: Optional[float] = None) -> Dict[str, int]:
        """The server's counters (uptime_ms, connections, channels, waiters, ...)."""
        res = self._roundtrip(P.STATS, [], ctx, timeout, _NONE)

        def decode() -> Dict[str, int]:
            Shape.arity(res, 1, "STATS")
            m = Shape.mapping(res[0], "stats")
            return {Shape.string(k, "key"): Shape.uint(v, k) for k, v in m.items()}
        return self._checked(decode)

    def channels(self, pattern: Optional[str] = None, limit: int = 0, *,
                 ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Tuple[List[ChanInfo], int]:
        """Channels matching the glob pattern (None: all), at most limit (0: 1000).

        Returns (infos, matched), matched counting every match.
        """
        res = self._roundtrip(P.CHANNELS, [pattern, limit], ctx, timeout, _NONE)

        def decode() -> Tuple[List[ChanInfo], int]:
            Shape.arity(res, 2, "CHANNELS")
            return ([P.chan_info(m) for m in Shape.array(res[0], "channels")],
                    Shape.uint(res[1], "matched"))
        return self._checked(decode)

    def clients(self, *, ctx: Optional[Context] = None,
                timeout: Optional[float] = None) -> List[ClientInfo]:
        """Every connection of the server."""
        res = self._roundtrip(P.CLIENTS, [], ctx, timeout, _NONE)

        def decode() -> List[ClientInfo]:
            Shape.arity(res, 1, "CLIENTS")
            return [P.client_info(m) for m in Shape.array(res[0], "clients")]
        return self._checked(decode)

    def waiters(self, limit: int = 0, *, ctx: Optional[Context] = None,
                timeout: Optional[float] = None) -> Tuple[List[Waiter], int]:
        """Every pending request (the broker's goroutine dump): (waiters, total)."""
        res = self._roundtrip(P.WAITERS, [limit], ctx, timeout, _NONE)

        def decode() -> Tuple[List[Waiter], int]:
            Shape.arity(res, 2, "WAITERS")
            return ([P.waiter(m) for m in Shape.array(res[0], "waiters")],
                    Shape.uint(res[1], "total"))
        return self._checked(decode)

    def unblock(self, client: int, request: Optional[int] = None, *,
                ctx: Optional[Context] = None, timeout: Optional[float] = None) -> int:
        """End one pending request of another client (or all, request None) with
        CANCELED; returns how many. :class:`NotFound` for an unknown client or request."""
        res = self._roundtrip(P.UNBLOCK, [client, request], ctx, timeout, _NONE)
        return self._checked(lambda: Shape.uint(res[0] if len(res) == 1 else None,
                                                "canceled"))

    def shutdown(self, *, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> None:
        """Ask the server to shut down, as SIGTERM does."""
        self._roundtrip(P.SHUTDOWN, [], ctx, timeout, _NONE)


def _make_tls_context(ca: Optional[str], cert: Optional[str],
                      key: Optional[str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert is not None:
        context.load_cert_chain(cert, key)
    return context


def dial(addr: str = _DEFAULT_ADDR, *, token: Optional[str] = None,
         tls: Union[bool, ssl.SSLContext, None] = None, ca: Optional[str] = None,
         cert: Optional[str] = None, key: Optional[str] = None,
         server_hostname: Optional[str] = None, client_name: str = "chand-python",
         cancel_grace: float = 1.0, ctx: Optional[Context] = None,
         timeout: Optional[float] = None) -> Conn:
    """Connect to chand, say HELLO and return the :class:`Conn`.

    addr: ``host:port``, ``[v6]:port``, ``host`` (port 7420), ``tcp://host:port``,
    ``tls://host:port``, ``unix:/path`` or ``/path``. ``tls``: True (or an
    :class:`ssl.SSLContext` of your own) for TLS on an address without ``tls://``.
    ``ca``: the CA file that signs the server's certificate (default: the system's);
    ``cert``/``key``: a client certificate for mutual TLS; ``server_hostname``: the name
    the certificate must carry (default: the host dialled, an IP address checked as
    one). ``token``: the authentication token sent in HELLO. ``cancel_grace``: how long
    a call whose context ended waits for the server's confirmation. ``ctx`` and
    ``timeout`` bound connecting, the TLS handshake and HELLO.

    Raises :class:`ValueError` (bad address), :class:`DialError` (cannot connect or
    TLS failed; the OSError is its ``__cause__``), :class:`PermissionDenied` (token
    refused), :class:`DeadlineExceeded`, :class:`ProtocolError`.
    """
    want_tls = tls if isinstance(tls, bool) else (True if tls is not None else None)
    address = parse_address(addr, want_tls)
    ctx = ctx or background()
    err = ctx.err()
    if err is not None:
        raise err
    deadline = deadline_of(ctx, timeout)

    def left() -> Optional[float]:
        if deadline is None:
            return None
        s = (deadline - P.now_ns()) / 1e9
        if s <= 0:
            raise DeadlineExceeded("context deadline exceeded")
        return s

    sock: Optional[socket.socket] = None
    try:
        if address.scheme == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(left())
            sock.connect(address.path)
        else:
            sock = socket.create_connection((address.host, address.port), timeout=left())
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport: _Plain
        if address.scheme == "tls":
            context = tls if isinstance(tls, ssl.SSLContext) else \
                _make_tls_context(ca, cert, key)
            t = _TLS(sock, context, server_hostname or address.host)
            sock.settimeout(left())
            t.handshake()
            transport = t
        else:
            transport = _Plain(sock)
        sock.settimeout(None)
    except DeadlineExceeded:
        if sock is not None:
            sock.close()
        raise
    except socket.timeout as e:
        if sock is not None:
            sock.close()
        raise DeadlineExceeded(f"dial {address}: timed out") from e
    except (OSError, ssl.SSLError) as e:
        if sock is not None:
            sock.close()
        raise DialError(f"dial {address}: {e}") from e
    conn = Conn(transport, address, cancel_grace)
    try:
        conn._hello(client_name, token, ctx, deadline)
    except BaseException:
        conn.close()
        raise
    return conn


# ---- channels ---------------------------------------------------------------------------------


class Chan(P.BaseChan):
    """A channel handle: a connection and a name. Immutable and thread-safe.

    Values are :class:`bytes` (a :class:`str` is sent as its UTF-8 bytes, as a
    convenience; it is received as bytes), channel handles (sending one sends a
    reference to its channel; receiving one gives a :class:`Chan` on the receiving
    connection), or, received only, :class:`chand.ErrorValue`.
    """

    __slots__ = ("_conn", "_cap")

    def __init__(self, conn: Conn, name: str, cap: Optional[int] = None) -> None:
        super().__init__(name)
        self._conn = conn
        self._cap = cap

    @property
    def conn(self) -> Conn:
        """The handle's connection."""
        return self._conn

    def __repr__(self) -> str:
        return f"<chand.Chan {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Chan) and other._conn is self._conn and \
            other._name == self._name

    def __hash__(self) -> int:
        return hash((id(self._conn), self._name))

    def __bool__(self) -> bool:
        return True     # not len(): a handle is never false

    def send(self, value: Any, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> None:
        """``ch <- value``: block until a receiver takes it or the buffer has room.

        Raises :class:`Closed`, :class:`DeadlineExceeded`, :class:`Canceled`,
        :class:`NotFound` (no such channel, or deleted while waiting), :class:`Limit`
        (over max_value), :class:`ConnectionLost`.
        """
        c = self._conn
        v = P.encode_value(value, c._info.max_value)
        c._roundtrip(P.SEND, [self._name, v], ctx, timeout)

    def recv(self, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> Tuple[Value, bool]:
        """``v, ok := <-ch``: (value, True), or (None, False) once closed and drained."""
        res = self._conn._roundtrip(P.RECV, [self._name], ctx, timeout)
        return self._recv_result(res)

    def _recv_result(self, res: List[Any]) -> Tuple[Value, bool]:
        c = self._conn

        def decode() -> Tuple[Value, bool]:
            Shape.arity(res, 2, "RECV")
            return c._value(Shape.value(res[0], "value")), Shape.boolean(res[1], "ok")
        return c._checked(decode)

    def try_send(self, value: Any, *, ctx: Optional[Context] = None) -> bool:
        """Send only if it can complete at once; False if it would block."""
        c = self._conn
        v = P.encode_value(value, c._info.max_value)
        try:
            c._roundtrip(P.SEND, [self._name, v], ctx, None, _TRY)
        except DeadlineExceeded:
            if (ctx or background()).err() is not None:
                raise
            return False
        return True

    def try_recv(self, *, ctx: Optional[Context] = None) -> Optional[Tuple[Value, bool]]:
        """Receive only if it can complete at once: (value, ok), or None if it would block."""
        try:
            res = self._conn._roundtrip(P.RECV, [self._name], ctx, None, _TRY)
        except DeadlineExceeded:
            if (ctx or background()).err() is not None:
                raise
            return None
        return self._recv_result(res)

    def __iter__(self) -> Iterator[Value]:
        """Go's ``for v := range ch``: ends when the channel is closed and drained."""
        return self.range()

    def range(self, *, ctx: Optional[Context] = None) -> Iterator[Value]:
        """``for v := range ch`` whose every receive is bounded by ctx."""
        while True:
            v, ok = self.recv(ctx=ctx)
            if not ok:
                return
            yield v

    def close(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """``close(ch)``. Raises :class:`Closed` if it was closed already."""
        self._conn._roundtrip(P.CLOSE, [self._name], ctx, timeout, _NONE)

    def len(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> int:
        """``len(ch)``: the values in the buffer."""
        res = self._conn._roundtrip(P.LEN, [self._name], ctx, timeout, _NONE)
        return self._conn._checked(lambda: Shape.uint(res[0] if len(res) == 1 else None,
                                                      "len"))

    def __len__(self) -> int:
        return self.len()

    def get_cap(self, *, ctx: Optional[Context] = None,
                timeout: Optional[float] = None) -> int:
        """``cap(ch)``, asked of the server."""
        res = self._conn._roundtrip(P.CAP, [self._name], ctx, timeout, _NONE)
        self._cap = self._conn._checked(lambda: Shape.uint(res[0] if len(res) == 1 else None,
                                                           "cap"))
        return self._cap

    @property
    def cap(self) -> int:
        """``cap(ch)``: known from MAKE or OPEN, else asked of the server once."""
        if self._cap is None:
            return self.get_cap()
        return self._cap

    def delete(self, *, ctx: Optional[Context] = None,
               timeout: Optional[float] = None) -> int:
        """Remove the channel from the server; returns the buffered values discarded.

        Its waiters fail with :class:`NotFound`.
        """
        res = self._conn._roundtrip(P.DELETE, [self._name], ctx, timeout, _NONE)
        return self._conn._checked(lambda: Shape.uint(res[0] if len(res) == 1 else None,
                                                      "discarded"))

    def info(self, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> ChanInfo:
        """The server's view: len, cap, closed, anonymous, waiting senders and receivers."""
        res = self._conn._roundtrip(P.INFO, [self._name], ctx, timeout, _NONE)
        return self._conn._checked(lambda: P.chan_info(res[0] if len(res) == 1 else None))

    def stream(self, credit: int = 64, *, ctx: Optional[Context] = None,
               timeout: Optional[float] = None) -> "Stream":
        """A receive stream over this channel (see :class:`Stream`)."""
        return Stream(self._conn, [self], credit, ctx, timeout)


# ---- select ------------------------------------------------------------------------------------


class RecvCase:
    """A receive case of :func:`select`: ``recv(ch)``. ch None is Go's nil channel."""

    __slots__ = ("chan",)

    def __init__(self, chan: Optional[P.BaseChan]) -> None:
        self.chan = chan


class SendCase:
    """A send case of :func:`select`: ``send(ch, value)``."""

    __slots__ = ("chan", "value")

    def __init__(self, chan: Optional[P.BaseChan], value: Any) -> None:
        self.chan = chan
        self.value = value


def recv(chan: Optional[P.BaseChan]) -> RecvCase:
    """A receive case for :func:`select` (``case v, ok := <-ch``)."""
    return RecvCase(chan)


def send(chan: Optional[P.BaseChan], value: Any) -> SendCase:
    """A send case for :func:`select` (``case ch <- value``)."""
    return SendCase(chan, value)


Case = Union[RecvCase, SendCase]


def select_cases(cases: Sequence[Case], conn_type: type) -> Tuple[Any, List[Any]]:
    """The cases' common connection (None if every channel is nil) and their wire form."""
    if not cases:
        raise ValueError("select needs at least one case")
    conn = None
    for c in cases:
        if not isinstance(c, (RecvCase, SendCase)):
            raise TypeError("select takes chand.recv(ch) and chand.send(ch, v) cases")
        if c.chan is None:
            continue
        cc = getattr(c.chan, "_conn", None)
        if not isinstance(cc, conn_type):
            raise TypeError(f"a case's channel is not a handle of this API ({conn_type})")
        if conn is None:
            conn = cc
        elif cc is not conn:
            raise ValueError("every channel of a select must be on one connection")
    wire: List[Any] = []
    if conn is not None:
        for c in cases:
            name = c.chan.name if c.chan is not None else None
            if isinstance(c, SendCase):
                wire.append([1, name, P.encode_value(c.value, conn._info.max_value)])
            else:
                wire.append([0, name])
    return conn, wire


def select_result(conn: Any, res: List[Any]) -> Tuple[int, Value, bool]:
    def decode() -> Tuple[int, Value, bool]:
        Shape.arity(res, 3, "SELECT")
        return (Shape.int_(res[0], "index"), conn._value(Shape.value(res[1], "value")),
                Shape.boolean(res[2], "ok"))
    return conn._checked(decode)


def select(*cases: Case, default: bool = False, ctx: Optional[Context] = None,
           timeout: Optional[float] = None) -> Tuple[int, Value, bool]:
    """Go's select over receive and send cases, chosen uniformly among the ready ones.

    Returns (index, value, ok): for a receive case the value and ok of ``v, ok :=
    <-ch``; (index, None, True) for a send case; (-1, None, True) for the default
    (with ``default=True`` when no case is ready). A timeout (Go's ``case
    <-time.After(d)``) raises :class:`DeadlineExceeded`; a send case on a closed channel
    raises :class:`Closed` and a missing channel :class:`NotFound`, with ``.index``.
    All channels must be on one connection; with every channel None it returns the
    default, or blocks until the context ends (Go's ``select {}``).
    """
    conn, wire = select_cases(cases, Conn)
    ctx = ctx or background()
    if conn is None:
        if default:
            return -1, None, True
        deadline = deadline_of(ctx, timeout)
        t = None if deadline is None else max(0.0, (deadline - P.now_ns()) / 1e9)
        if not ctx.done().wait(t):
            raise DeadlineExceeded("context deadline exceeded")
        e = ctx.err()
        assert e is not None
        raise e
    res = conn._roundtrip(P.SELECT, [wire, bool(default)], ctx, timeout)
    return select_result(conn, res)


# ---- streams -----------------------------------------------------------------------------------


class Stream:
    """A receive stream (PROTOCOL.md §14): ``credit`` receives kept pending on the server.

    Over one channel it is like ``credit`` goroutines blocked in ``<-ch``, queued FIFO
    with the channel's other receivers; over several, like ``credit`` blocked selects
    over those receive cases. The server sends each value as it takes it; the client
    grants the credit of the values taken back when :meth:`recv` has to wait, or once
    half the credit was taken, so the stream is ``credit`` receives deep whenever the
    program waits on it. A value taken by the stream went to nobody else.

    ``for v in stream`` yields the values and ends once every channel is closed and
    drained; :meth:`items` yields (index, value). The context (and ``timeout``) bound
    the stream's whole life. One thread at a time per stream. :meth:`close` (or leaving
    a ``with`` block) ends it: values already sent but not taken are dropped.
    """

    def __init__(self, conn: Conn, chans: Sequence[Chan], credit: int,
                 ctx: Optional[Context], timeout: Optional[float]) -> None:
        chans = list(chans)
        if not chans:
            raise ValueError("a stream needs at least one channel")
        for ch in chans:
            if not isinstance(ch, Chan) or ch._conn is not conn:
                raise ValueError("every channel of a stream must be a Chan on its connection")
        if type(credit) is not int or credit < 1:
            raise ValueError("credit is an int of at least 1")
        self._conn = conn
        self.chans = chans
        self._credit = credit
        self._granted = credit
        self._taken = 0
        self._ctx = ctx or background()
        self._end: Optional[Error] = None
        self._finished = False
        self.delivered: Optional[int] = None
        deadline = deadline_of(self._ctx, timeout)
        self._call = conn._start(P.STREAM, [[c.name for c in chans], credit], self._ctx,
                                 deadline, _BUDGET, P.KIND_STREAM)
        self._token = self._ctx._watch(self._ctx_done)
        if self._token is None:
            conn._cancel(self._call)

    def _ctx_done(self, err: Error) -> None:
        with self._conn._lock:
            if self._call.ctx_err is None:
                self._call.ctx_err = err
        if isinstance(err, Canceled):
            self._conn._cancel(self._call)

    def _grant(self, waiting: bool) -> None:
        held = self._granted - self._taken      # never below the server's count
        if held < self._credit and (waiting or held * 2 <= self._credit):
            n = self._credit - held
            self._granted += n
            self._conn._post(P.CREDIT, self._call.id, n)

    def recv(self) -> Tuple[int, Value, bool]:
        """The next value: (index, value, True), or (index, None, False) once when
        chans[index] is closed and drained. Raises :class:`Closed` once every channel
        was reported closed, or why the stream ended otherwise (and so does every later
        call); values taken before the end come first."""
        if self._end is not None:
            raise _raise_copy(self._end)
        call = self._call
        with self._conn._lock:
            waiting = not call.replies
        if not call.done:
            self._grant(waiting)
        try:
            status, res = self._conn._next(call, None, None)
        except Error as e:
            self._stop(e)
            raise
        if status == P.OK and len(res) == 3:
            self._taken += 1

            def decode() -> Tuple[int, Value, bool]:
                return (Shape.uint(res[0], "index"),
                        self._conn._value(Shape.value(res[1], "value")),
                        Shape.boolean(res[2], "ok"))
            return self._conn._checked(decode)
        if status == P.OK:
            self.delivered = self._conn._checked(
                lambda: Shape.uint(res[0] if len(res) == 1 else None, "delivered"))
            self._finished = True
            self._stop(Closed("every channel of the stream is closed"))
        else:
            err = P.reply_error(status, res)
            if call.ctx_err is not None and status in (P.CANCELED, P.DEADLINE_EXCEEDED):
                err = call.ctx_err
            self._stop(err)
        assert self._end is not None
        raise _raise_copy(self._end)

    def _stop(self, err: Error) -> None:
        if self._end is None:
            self._end = err
            self._ctx._unwatch(self._token)

    def items(self) -> Iterator[Tuple[int, Value]]:
        """Yield (index, value) for every value until every channel is closed."""
        while True:
            try:
                index, v, ok = self.recv()
            except Closed:
                if self._finished:
                    return
                raise
            if ok:
                yield index, v

    def __iter__(self) -> Iterator[Value]:
        for _, v in self.items():
            yield v

    def close(self) -> None:
        """End the stream (CANCEL, if it still runs). Idempotent."""
        if not self._call.done:
            self._conn._cancel(self._call)
        self._stop(Canceled("stream closed"))

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---- links ----------------------------------------------------------------------------------------


class Link:
    """A link running inside chand (PROTOCOL.md §12): or, or-done, tee, bridge, fan-in,
    repeat, take, or a fan-out job.

    ``outputs`` are handles on its output channels (``out`` is the first); however
    the link stops, the server closes them, so a range over an output always ends.
    :meth:`wait` waits for the end; :meth:`cancel` stops it. Leaving a ``with`` block
    cancels a link still running, like Go's ``defer cancel()``.
    """

    def __init__(self, conn: Conn, call: _Call, outputs: List[Chan], ctx: Context) -> None:
        self._conn = conn
        self._call = call
        self.outputs: Tuple[Chan, ...] = tuple(outputs)
        self._ctx = ctx
        self._result: Optional[Union[int, Error]] = None
        self._wait_lock = threading.Lock()
        self._token = ctx._watch(self._ctx_done)
        if self._token is None:
            conn._cancel(call)

    @property
    def out(self) -> Chan:
        """The first (for every link but tee, the only) output."""
        return self.outputs[0]

    @property
    def id(self) -> int:
        """The link's request id: the ``request`` of :meth:`Conn.waiters`."""
        return self._call.id

    def _ctx_done(self, err: Error) -> None:
        with self._conn._lock:
            if self._call.ctx_err is None:
                self._call.ctx_err = err
        if isinstance(err, Canceled):
            self._conn._cancel(self._call)

    def cancel(self) -> None:
        """Stop the link (CANCEL) without waiting. Any thread."""
        self._conn._cancel(self._call)

    def running(self) -> bool:
        """Whether the final reply is still to come."""
        return not self._call.done

    def wait(self, timeout: Optional[float] = None) -> int:
        """Wait for the end; returns the values the link sent (tee counts each twice).

        Raises why it stopped: :class:`Canceled` (cancel, its context, the done channel,
        an admin), :class:`DeadlineExceeded`, :class:`Closed` (someone closed an output),
        :class:`NotFound`, :class:`Limit`, :class:`ShuttingDown`, :class:`ConnectionLost`.
        The result is kept. ``timeout`` bounds this wait only (the link goes on):
        :class:`TimeoutError` when it passes.
        """
        with self._wait_lock:
            if self._result is None:
                deadline = None if timeout is None else P.now_ns() + int(timeout * 1e9)
                call = self._call
                with self._conn._lock:
                    while not call.replies and not call.done:
                        if deadline is None:
                            call.cond.wait()
                            continue
                        left = deadline - P.now_ns()
                        if left <= 0:
                            raise TimeoutError("the link is still running")
                        call.cond.wait(left / 1e9)
                self._ctx._unwatch(self._token)
                try:
                    status, res = self._conn._take(call)
                    if status == P.OK:
                        self._result = self._conn._checked(
                            lambda: Shape.uint(res[0] if len(res) == 1 else None, "sent"))
                    else:
                        self._result = P.reply_error(status, res)
                except Error as e:
                    self._result = e
            if isinstance(self._result, Error):
                raise _raise_copy(self._result)
            return self._result

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.running():
            self.cancel()

    def __repr__(self) -> str:
        return f"<chand.Link {P.OP_NAMES.get(self._call.op)} id={self.id}>"


def _link_conn(chans: Sequence[Optional[Chan]]) -> Conn:
    conn = None
    for ch in chans:
        if ch is None:
            continue
        if not isinstance(ch, Chan):
            raise TypeError(f"a link's channel is a chand.Chan, not {type(ch).__name__}")
        if conn is None:
            conn = ch._conn
        elif ch._conn is not conn:
            raise ValueError("every channel of a link must be on one connection")
    if conn is None:
        raise ValueError("a link needs a channel")
    return conn


def _link(conn: Conn, op: int, nouts: int, args: List[Any], done: Optional[Chan],
          outs: Optional[Sequence[P.OutSpec]], ctx: Optional[Context],
          timeout: Optional[float]) -> Link:
    ctx = ctx or background()
    if done is not None and (not isinstance(done, Chan) or done._conn is not conn):
        raise ValueError("the done channel must be a Chan on the link's connection")
    deadline = deadline_of(ctx, timeout)
    wire = [None if done is None else done.name, P.link_outs(outs, nouts), *args]
    call = conn._start(op, wire, ctx, deadline, _BUDGET, P.KIND_LINK)
    status, res = conn._next(call, ctx, deadline)
    if status != P.STARTED:
        if status == P.OK:
            conn._break(ProtocolError("a link's first reply is neither STARTED nor an error"))
        raise P.reply_error(status, res)
    names = conn._checked(lambda: P.link_started(res, nouts))
    return Link(conn, call, [Chan(conn, n) for n in names], ctx)


def or_(*inputs: Chan, done: Optional[Chan] = None,
        outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
        timeout: Optional[float] = None) -> Link:
    """The or-channel: the output closes as soon as any input closes or yields a value.

    Every link takes ``done`` (Go's done channel: a receive on it completing stops the
    link), ``outs`` (per output None for anonymous unbuffered, or (name or None, cap)),
    ``ctx`` and ``timeout`` (the link's lifetime: its budget travels as the wait and
    cancelling ctx stops the link).
    """
    conn = _link_conn(list(inputs))
    return _link(conn, P.OR, 1, [[c.name for c in inputs]], done, outs, ctx, timeout)


def or_done(input: Chan, *, done: Optional[Chan] = None,
            outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
            timeout: Optional[float] = None) -> Link:
    """or-done: forwards input's values to the output until input closes or done fires."""
    conn = _link_conn([input])
    return _link(conn, P.OR_DONE, 1, [input.name], done, outs, ctx, timeout)


def tee(input: Chan, *, done: Optional[Chan] = None,
        outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
        timeout: Optional[float] = None) -> Link:
    """tee: each value of input goes to both outputs before the next is taken."""
    conn = _link_conn([input])
    return _link(conn, P.TEE, 2, [input.name], done, outs, ctx, timeout)


def bridge(input: Chan, *, done: Optional[Chan] = None,
           outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
           timeout: Optional[float] = None) -> Link:
    """bridge: input carries channels; each is drained into the output, in order.

    A value that is not a channel reference, or names no channel, arrives on the
    output as an :class:`ErrorValue` and the bridge goes on.
    """
    conn = _link_conn([input])
    return _link(conn, P.BRIDGE, 1, [input.name], done, outs, ctx, timeout)


def fan_in(*inputs: Chan, done: Optional[Chan] = None,
           outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
           timeout: Optional[float] = None) -> Link:
    """fan-in: merges the inputs into the output; ends when every input has closed."""
    conn = _link_conn(list(inputs))
    return _link(conn, P.FAN_IN, 1, [[c.name for c in inputs]], done, outs, ctx, timeout)


def repeat(conn: Conn, values: Sequence[Any], *, done: Optional[Chan] = None,
           outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
           timeout: Optional[float] = None) -> Link:
    """repeat: sends values to the output, in order, over and over, until stopped."""
    wire = [P.encode_value(v, conn._info.max_value) for v in values]
    return _link(conn, P.REPEAT, 1, [wire], done, outs, ctx, timeout)


def take(input: Chan, n: int, *, done: Optional[Chan] = None,
         outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
         timeout: Optional[float] = None) -> Link:
    """take: forwards the first n values of input, then ends (earlier if input closes)."""
    conn = _link_conn([input])
    return _link(conn, P.TAKE, 1, [input.name, n], done, outs, ctx, timeout)


def fan_out(input: Chan, stage: str, workers: int, ordered: bool = False, *,
            done: Optional[Chan] = None, outs: Optional[Sequence[P.OutSpec]] = None,
            ctx: Optional[Context] = None, timeout: Optional[float] = None) -> Link:
    """A fan-out job: the server's stage (``identity``, ``sha256``, ``isprime`` or a
    configured module) applied to each value of input on its worker pool, at most
    workers at once; with ordered, results leave in input order. A failed stage gives
    an :class:`ErrorValue` on the output and the job goes on."""
    conn = _link_conn([input])
    return _link(conn, P.FAN_OUT, 1, [input.name, stage, workers, bool(ordered)], done, outs,
                 ctx, timeout)
