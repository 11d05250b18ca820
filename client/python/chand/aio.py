"""chand for asyncio: the surface of the synchronous API, with ``await``.

::

    import chand, chand.aio

    conn = await chand.aio.dial("tcp://127.0.0.1:7420")
    jobs = await conn.make("jobs", 16)
    await jobs.send(b"hello", timeout=2.0)
    v, ok = await jobs.recv()
    async for v in jobs: ...
    i, v, ok = await chand.aio.select(chand.recv(a), chand.send(b, b"x"))

One connection serves any number of tasks at once; a reader task hands
each reply to the call it belongs to. Select cases are the same
``chand.recv(ch)`` / ``chand.send(ch, v)`` as for the sync API.

**Cancellation.** Cancelling a task that awaits a call (``task.cancel()``,
``asyncio.wait_for``'s timeout, a failing ``asyncio.TaskGroup``) sends
CANCEL for its request at once and lets the ``CancelledError`` through
without waiting: the server then ends the operation and removes its
waiters. A value the server had matched before the CANCEL reached it is
lost (at most once, as for a disconnect, PROTOCOL.md §4). Deadlines and
contexts (``timeout=``, ``ctx=``) behave as in the sync API: the budget
travels as the request's wait and the call waits for the server's answer,
so a matched value is never lost that way. Prefer them where it matters.

Cancelling a task awaiting :meth:`Link.wait` or :meth:`Stream.recv` stops the
waiting only, as ``Thread.join`` would: the link or stream goes on until
:meth:`Link.cancel` / :meth:`Stream.close` or its context.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import (Any, AsyncIterator, Deque, Dict, List, Optional, Sequence, Tuple, Union)

from . import _proto as P
from ._addr import Address, parse_address
from ._conn import Case, _make_tls_context, _raise_copy, select_cases, select_result
from ._proto import ChanInfo, ClientInfo, ServerInfo, Shape, Value, Waiter
from .context import Context, background, deadline_of
from .errors import (Canceled, Closed, ConnectionLost, DeadlineExceeded, DialError, Error,
                     Limit, ProtocolError)

__all__ = ["Conn", "Chan", "Stream", "Link", "dial", "select", "or_", "or_done", "tee",
           "bridge", "fan_in", "repeat", "take", "fan_out"]

_BUDGET, _TRY, _NONE = 0, 1, 2
_DRAIN_AT = 1 << 20      # await the transport's drain past this much unsent


class _Call:
    __slots__ = ("id", "op", "kind", "replies", "done", "waiter", "ctx_err", "cancel_sent",
                 "error")

    def __init__(self, op: int, kind: int) -> None:
        self.id = 0
        self.op = op
        self.kind = kind
        self.replies: Deque[Tuple[int, List[Any]]] = deque()
        self.done = False
        self.waiter: Optional[asyncio.Future[None]] = None
        self.ctx_err: Optional[Error] = None
        self.cancel_sent = False
        self.error: Optional[Error] = None


def _wake(call: _Call) -> None:
    w = call.waiter
    if w is not None and not w.done():
        w.set_result(None)


def _wake_future(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class Conn:
    """An asyncio connection to chand; make one with :func:`dial`.

    Use it with ``async with``, or ``await conn.close()``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 address: Address, cancel_grace: float) -> None:
        self._r = reader
        self._w = writer
        self.address = address
        self._grace = cancel_grace
        self._loop = asyncio.get_running_loop()
        self._calls: Dict[int, _Call] = {}
        self._abandoned: Dict[int, int] = {}
        self._next_id = 1
        self._dead: Optional[Error] = None
        self._drain_lock = asyncio.Lock()
        self._info = ServerInfo(P.VERSION, "", P.DEFAULT_MAX_FRAME, 1 << 20, 4096, 1024, 0)
        self._task = self._loop.create_task(self._read_loop())

    @property
    def info(self) -> ServerInfo:
        """What HELLO said: the server, the protocol version and the server's limits."""
        return self._info

    @property
    def closed(self) -> bool:
        """True once the connection broke or was closed."""
        return self._dead is not None

    async def close(self) -> None:
        """Close the connection: pending and later calls raise :class:`ConnectionLost`."""
        self._break(ConnectionLost("connection closed"))
        if asyncio.current_task() is not self._task:
            try:
                await self._task
            except BaseException:
                pass
        try:
            await self._w.wait_closed()
        except (OSError, ssl.SSLError):
            pass

    async def __aenter__(self) -> "Conn":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<chand.aio.Conn {self.address}{' closed' if self.closed else ''}>"

    def _break(self, err: Error) -> None:
        if self._dead is None:
            self._dead = err
        calls = list(self._calls.values())
        self._calls.clear()
        for call in calls:
            call.done = True
            call.error = self._dead
            _wake(call)
        if not self._w.is_closing():
            self._w.close()
        if not self._task.done() and asyncio.current_task() is not self._task:
            self._task.cancel()

    # -- reading ------------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        try:
            while self._dead is None:
                try:
                    head = await self._r.readexactly(4)
                    limit = max(P.READ_LIMIT, 2 * self._info.max_frame)
                    body = await self._r.readexactly(P.frame_length(head, limit))
                except asyncio.IncompleteReadError as e:
                    if e.partial or e.expected != 4:
                        raise ConnectionLost("the server closed the connection in the middle "
                                             "of a frame (truncated frame)") from None
                    raise ConnectionLost("the server closed the connection") from None
                rid, status, results = P.decode_body(body)
                self._deliver(rid, status, results)
        except asyncio.CancelledError:
            self._break(ConnectionLost("connection closed"))
        except Error as e:
            self._break(e)
        except (OSError, ValueError, ssl.SSLError) as e:
            self._break(ConnectionLost(f"connection lost: {e}"))

    def _deliver(self, rid: int, status: int, results: List[Any]) -> None:
        if rid == 0:
            if status == P.SHUTTING_DOWN:
                return
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
        _wake(call)

    # -- writing ---------------------------------------------------------------------------------

    def _check_dead(self) -> None:
        if self._dead is not None:
            raise _raise_copy(self._dead)

    def _write(self, msg: Sequence[Any]) -> None:
        data = P.frame(msg)
        if len(data) - 4 > self._info.max_frame:
            raise Limit(f"request of {len(data) - 4} bytes is over the server's max_frame "
                        f"{self._info.max_frame}")
        self._w.write(data)

    async def _drain(self) -> None:
        if self._w.transport.get_write_buffer_size() > _DRAIN_AT:
            async with self._drain_lock:
                try:
                    await self._w.drain()
                except (OSError, ssl.SSLError) as e:
                    self._break(ConnectionLost(f"connection lost: {e}"))
                    self._check_dead()

    def _post(self, op: int, *args: Any) -> None:
        if self._dead is not None:
            return
        rid = self._next_id
        self._next_id += 1
        self._abandoned[rid] = P.KIND_PLAIN
        try:
            self._write([op, rid, None, *args])
        except (Error, OSError, RuntimeError):
            pass

    def _cancel(self, call: _Call) -> None:
        if call.cancel_sent or call.done:
            return
        call.cancel_sent = True
        self._post(P.CANCEL, call.id)

    def _cancel_threadsafe(self, call: _Call) -> None:
        try:
            self._loop.call_soon_threadsafe(self._cancel, call)
        except RuntimeError:
            pass        # the loop is closed: so is the connection

    def _abandon(self, call: _Call) -> None:
        """The caller stopped waiting (its task was cancelled): CANCEL, drop the reply."""
        if self._calls.pop(call.id, None) is not None:
            self._abandoned[call.id] = call.kind
            self._cancel(call)
            call.done = True

    async def _start(self, op: int, args: Sequence[Any], ctx: Optional[Context],
                     deadline: Optional[int], how: int = _BUDGET,
                     kind: int = P.KIND_PLAIN) -> _Call:
        ctx = ctx or background()
        e = ctx.err()
        if e is not None:
            raise e
        wait: Optional[int] = None
        if how == _TRY:
            wait = 0
        elif how == _BUDGET and deadline is not None:
            now = P.now_ns()
            if deadline <= now:
                raise DeadlineExceeded("context deadline exceeded")
            wait = P.wait_us(deadline, now)
        self._check_dead()
        call = _Call(op, kind)
        call.id = self._next_id
        self._next_id += 1
        self._calls[call.id] = call
        try:
            self._write([op, call.id, wait, *args])
        except BaseException:
            self._calls.pop(call.id, None)
            raise
        try:
            await self._drain()
        except asyncio.CancelledError:
            self._abandon(call)
            raise
        return call

    async def _wait(self, call: _Call, until: Optional[int], watch_ctx: bool) -> bool:
        """Until the call has a reply (True), or its context ended / until passed (False)."""
        while True:
            if call.replies or call.done:
                return True
            if watch_ctx and call.ctx_err is not None:
                return False
            left = None if until is None else until - P.now_ns()
            if left is not None and left <= 0:
                return False
            fut: asyncio.Future[None] = self._loop.create_future()
            call.waiter = fut
            timer = None if left is None else self._loop.call_later(left / 1e9, _wake_future,
                                                                    fut)
            try:
                await fut
            finally:
                call.waiter = None
                if timer is not None:
                    timer.cancel()

    def _ctx_fired(self, call: _Call, err: Error) -> None:
        if call.ctx_err is None:
            call.ctx_err = err
        _wake(call)

    def _watch(self, ctx: Context, call: _Call) -> Optional[object]:
        loop = self._loop

        def fired(err: Error) -> None:
            try:
                loop.call_soon_threadsafe(self._ctx_fired, call, err)
            except RuntimeError:
                pass
        token = ctx._watch(fired)
        if token is None and call.ctx_err is None:
            call.ctx_err = ctx.err()
        return token

    async def _next(self, call: _Call, ctx: Optional[Context],
                    deadline: Optional[int]) -> Tuple[int, List[Any]]:
        ctx = ctx or background()
        try:
            token = self._watch(ctx, call)
            try:
                ready = await self._wait(call, deadline, True)
            finally:
                ctx._unwatch(token)
            if not ready:
                if call.ctx_err is None:
                    call.ctx_err = DeadlineExceeded("context deadline exceeded")
                if isinstance(call.ctx_err, Canceled):
                    self._cancel(call)
                ready = await self._wait(call, P.now_ns() + int(self._grace * 1e9), False)
                if not ready:
                    self._abandon(call)
                    raise call.ctx_err
        except asyncio.CancelledError:
            self._abandon(call)
            raise
        return self._take(call)

    def _take(self, call: _Call) -> Tuple[int, List[Any]]:
        if not call.replies:
            assert call.error is not None
            raise _raise_copy(call.error)
        status, results = call.replies.popleft()
        if call.ctx_err is not None and status in (P.CANCELED, P.DEADLINE_EXCEEDED):
            raise call.ctx_err
        return status, results

    async def _roundtrip(self, op: int, args: Sequence[Any], ctx: Optional[Context] = None,
                         timeout: Optional[float] = None, how: int = _BUDGET) -> List[Any]:
        ctx = ctx or background()
        deadline = deadline_of(ctx, timeout)
        call = await self._start(op, args, ctx, deadline, how)
        status, results = await self._next(call, ctx, deadline)
        if status != P.OK:
            raise P.reply_error(status, results)
        return results

    def _checked(self, fn: Any) -> Any:
        try:
            return fn()
        except ProtocolError as e:
            self._break(e)
            raise

    def _value(self, v: Any) -> Value:
        if isinstance(v, P.ChanRef):
            return Chan(self, v.name)
        return v

    def _uint(self, res: List[Any], what: str) -> int:
        return self._checked(lambda: Shape.uint(res[0] if len(res) == 1 else None, what))

    # -- the operations: see the sync Conn for each one's documentation -----------------------

    async def _hello(self, client_name: str, token: Optional[str], ctx: Context,
                     deadline: Optional[int]) -> None:
        auth = {"token": token} if token is not None else None
        timeout = None if deadline is None else (deadline - P.now_ns()) / 1e9
        res = await self._roundtrip(P.HELLO, [P.VERSION, client_name, auth], ctx, timeout)
        self._info = self._checked(lambda: P.server_info(
            Shape.mapping(res[0] if len(res) == 1 else None, "HELLO's info")))

    async def ping(self, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> None:
        """One round trip."""
        await self._roundtrip(P.PING, [], ctx, timeout, _NONE)

    async def make(self, name: Optional[str] = None, cap: int = 0, *,
                   ctx: Optional[Context] = None, timeout: Optional[float] = None) -> "Chan":
        """``make(chan T, cap)``; name None makes an anonymous channel."""
        if name is not None:
            P.check_name(name)
        if type(cap) is not int or cap < 0:
            raise ValueError("cap is a non-negative int")
        res = await self._roundtrip(P.MAKE, [name, cap], ctx, timeout, _NONE)

        def decode() -> Chan:
            Shape.arity(res, 3, "MAKE")
            return Chan(self, Shape.string(res[0], "name"), Shape.uint(res[1], "cap"))
        return self._checked(decode)

    async def open(self, name: str, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> "Chan":
        """A handle on an existing channel (:class:`NotFound` if there is none)."""
        res = await self._roundtrip(P.OPEN, [P.check_name(name)], ctx, timeout, _NONE)
        return Chan(self, name, self._uint(res, "cap"))

    def handle(self, name: str) -> "Chan":
        """A handle on name without a round trip (not checked)."""
        return Chan(self, P.check_name(name))

    async def stream(self, chans: Sequence["Chan"], credit: int = 64, *,
                     ctx: Optional[Context] = None,
                     timeout: Optional[float] = None) -> "Stream":
        """A receive stream over chans (see :class:`Stream`)."""
        return await Stream._open(self, chans, credit, ctx, timeout)

    async def stats(self, *, ctx: Optional[Context] = None,
                    timeout: Optional[float] = None) -> Dict[str, int]:
        """The server's counters."""
        res = await self._roundtrip(P.STATS, [], ctx, timeout, _NONE)

        def decode() -> Dict[str, int]:
            Shape.arity(res, 1, "STATS")
            m = Shape.mapping(res[0], "stats")
            return {Shape.string(k, "key"): Shape.uint(v, k) for k, v in m.items()}
        return self._checked(decode)

    async def channels(self, pattern: Optional[str] = None, limit: int = 0, *,
                       ctx: Optional[Context] = None,
                       timeout: Optional[float] = None) -> Tuple[List[ChanInfo], int]:
        """Channels matching the glob pattern: (infos, matched)."""
        res = await self._roundtrip(P.CHANNELS, [pattern, limit], ctx, timeout, _NONE)

        def decode() -> Tuple[List[ChanInfo], int]:
            Shape.arity(res, 2, "CHANNELS")
            return ([P.chan_info(m) for m in Shape.array(res[0], "channels")],
                    Shape.uint(res[1], "matched"))
        return self._checked(decode)

    async def clients(self, *, ctx: Optional[Context] = None,
                      timeout: Optional[float] = None) -> List[ClientInfo]:
        """Every connection of the server."""
        res = await self._roundtrip(P.CLIENTS, [], ctx, timeout, _NONE)

        def decode() -> List[ClientInfo]:
            Shape.arity(res, 1, "CLIENTS")
            return [P.client_info(m) for m in Shape.array(res[0], "clients")]
        return self._checked(decode)

    async def waiters(self, limit: int = 0, *, ctx: Optional[Context] = None,
                      timeout: Optional[float] = None) -> Tuple[List[Waiter], int]:
        """Every pending request: (waiters, total)."""
        res = await self._roundtrip(P.WAITERS, [limit], ctx, timeout, _NONE)

        def decode() -> Tuple[List[Waiter], int]:
            Shape.arity(res, 2, "WAITERS")
            return ([P.waiter(m) for m in Shape.array(res[0], "waiters")],
                    Shape.uint(res[1], "total"))
        return self._checked(decode)

    async def unblock(self, client: int, request: Optional[int] = None, *,
                      ctx: Optional[Context] = None, timeout: Optional[float] = None) -> int:
        """End another client's pending request (or all of them): how many."""
        res = await self._roundtrip(P.UNBLOCK, [client, request], ctx, timeout, _NONE)
        return self._uint(res, "canceled")

    async def shutdown(self, *, ctx: Optional[Context] = None,
                       timeout: Optional[float] = None) -> None:
        """Ask the server to shut down, as SIGTERM does."""
        await self._roundtrip(P.SHUTDOWN, [], ctx, timeout, _NONE)


async def dial(addr: str = "tcp://127.0.0.1:7420", *, token: Optional[str] = None,
               tls: Union[bool, ssl.SSLContext, None] = None, ca: Optional[str] = None,
               cert: Optional[str] = None, key: Optional[str] = None,
               server_hostname: Optional[str] = None, client_name: str = "chand-python",
               cancel_grace: float = 1.0, ctx: Optional[Context] = None,
               timeout: Optional[float] = None) -> Conn:
    """Connect, say HELLO and return the :class:`Conn`; arguments as :func:`chand.dial`."""
    want_tls = tls if isinstance(tls, bool) else (True if tls is not None else None)
    address = parse_address(addr, want_tls)
    ctx = ctx or background()
    err = ctx.err()
    if err is not None:
        raise err
    deadline = deadline_of(ctx, timeout)
    left = None if deadline is None else (deadline - P.now_ns()) / 1e9
    if left is not None and left <= 0:
        raise DeadlineExceeded("context deadline exceeded")
    try:
        if address.scheme == "unix":
            opening = asyncio.open_unix_connection(address.path)
        else:
            context = None
            if address.scheme == "tls":
                context = tls if isinstance(tls, ssl.SSLContext) else \
                    _make_tls_context(ca, cert, key)
            opening = asyncio.open_connection(
                address.host, address.port, ssl=context,
                server_hostname=(server_hostname or address.host) if context else None)
        reader, writer = await asyncio.wait_for(opening, left)
    except asyncio.TimeoutError as e:
        raise DeadlineExceeded(f"dial {address}: timed out") from e
    except (OSError, ssl.SSLError) as e:
        raise DialError(f"dial {address}: {e}") from e
    conn = Conn(reader, writer, address, cancel_grace)
    try:
        await conn._hello(client_name, token, ctx, deadline)
    except BaseException:
        await conn.close()
        raise
    return conn


class Chan(P.BaseChan):
    """An asyncio channel handle: a connection and a name (see :class:`chand.Chan`)."""

    __slots__ = ("_conn", "cap")

    def __init__(self, conn: Conn, name: str, cap: Optional[int] = None) -> None:
        super().__init__(name)
        self._conn = conn
        self.cap: Optional[int] = cap
        """The capacity known from MAKE or OPEN (None: unknown, see :meth:`get_cap`)."""

    @property
    def conn(self) -> Conn:
        return self._conn

    def __repr__(self) -> str:
        return f"<chand.aio.Chan {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Chan) and other._conn is self._conn and \
            other._name == self._name

    def __hash__(self) -> int:
        return hash((id(self._conn), self._name))

    async def send(self, value: Any, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> None:
        """``ch <- value``."""
        v = P.encode_value(value, self._conn._info.max_value)
        await self._conn._roundtrip(P.SEND, [self._name, v], ctx, timeout)

    async def recv(self, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> Tuple[Value, bool]:
        """``v, ok := <-ch``."""
        res = await self._conn._roundtrip(P.RECV, [self._name], ctx, timeout)
        return self._recv_result(res)

    def _recv_result(self, res: List[Any]) -> Tuple[Value, bool]:
        c = self._conn

        def decode() -> Tuple[Value, bool]:
            Shape.arity(res, 2, "RECV")
            return c._value(Shape.value(res[0], "value")), Shape.boolean(res[1], "ok")
        return c._checked(decode)

    async def try_send(self, value: Any, *, ctx: Optional[Context] = None) -> bool:
        """Send only if it can complete at once; False if it would block."""
        v = P.encode_value(value, self._conn._info.max_value)
        try:
            await self._conn._roundtrip(P.SEND, [self._name, v], ctx, None, _TRY)
        except DeadlineExceeded:
            if (ctx or background()).err() is not None:
                raise
            return False
        return True

    async def try_recv(self, *, ctx: Optional[Context] = None) -> Optional[Tuple[Value, bool]]:
        """Receive only if it can complete at once: (value, ok), or None."""
        try:
            res = await self._conn._roundtrip(P.RECV, [self._name], ctx, None, _TRY)
        except DeadlineExceeded:
            if (ctx or background()).err() is not None:
                raise
            return None
        return self._recv_result(res)

    def __aiter__(self) -> AsyncIterator[Value]:
        """``async for v in ch``: Go's range, ends when closed and drained."""
        return self.range()

    async def range(self, *, ctx: Optional[Context] = None) -> AsyncIterator[Value]:
        """Go's range, every receive bounded by ctx."""
        while True:
            v, ok = await self.recv(ctx=ctx)
            if not ok:
                return
            yield v

    async def close(self, *, ctx: Optional[Context] = None,
                    timeout: Optional[float] = None) -> None:
        """``close(ch)``."""
        await self._conn._roundtrip(P.CLOSE, [self._name], ctx, timeout, _NONE)

    async def len(self, *, ctx: Optional[Context] = None,
                  timeout: Optional[float] = None) -> int:
        """``len(ch)``."""
        res = await self._conn._roundtrip(P.LEN, [self._name], ctx, timeout, _NONE)
        return self._conn._uint(res, "len")

    async def get_cap(self, *, ctx: Optional[Context] = None,
                      timeout: Optional[float] = None) -> int:
        """``cap(ch)``, asked of the server."""
        res = await self._conn._roundtrip(P.CAP, [self._name], ctx, timeout, _NONE)
        self.cap = self._conn._uint(res, "cap")
        return self.cap

    async def delete(self, *, ctx: Optional[Context] = None,
                     timeout: Optional[float] = None) -> int:
        """Remove the channel; returns the buffered values discarded."""
        res = await self._conn._roundtrip(P.DELETE, [self._name], ctx, timeout, _NONE)
        return self._conn._uint(res, "discarded")

    async def info(self, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> ChanInfo:
        """The server's view of the channel."""
        res = await self._conn._roundtrip(P.INFO, [self._name], ctx, timeout, _NONE)
        return self._conn._checked(lambda: P.chan_info(res[0] if len(res) == 1 else None))

    async def stream(self, credit: int = 64, *, ctx: Optional[Context] = None,
                     timeout: Optional[float] = None) -> "Stream":
        """A receive stream over this channel."""
        return await Stream._open(self._conn, [self], credit, ctx, timeout)


async def select(*cases: Case, default: bool = False, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Tuple[int, Value, bool]:
    """Go's select; as :func:`chand.select`, with ``chand.recv`` / ``chand.send`` cases."""
    conn, wire = select_cases(cases, Conn)
    ctx = ctx or background()
    if conn is None:
        if default:
            return -1, None, True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def fired(err: Error) -> None:
            try:
                loop.call_soon_threadsafe(_wake_future, fut)
            except RuntimeError:
                pass
        token = ctx._watch(fired)
        deadline = deadline_of(ctx, timeout)
        try:
            if token is not None:
                left = None if deadline is None else max(0.0, (deadline - P.now_ns()) / 1e9)
                try:
                    await asyncio.wait_for(fut, left)
                except asyncio.TimeoutError:
                    raise DeadlineExceeded("context deadline exceeded") from None
        finally:
            ctx._unwatch(token)
        e = ctx.err()
        assert e is not None
        raise e
    res = await conn._roundtrip(P.SELECT, [wire, bool(default)], ctx, timeout)
    return select_result(conn, res)


class Stream:
    """An asyncio receive stream: as :class:`chand.Stream`, with ``async for``."""

    def __init__(self) -> None:
        raise TypeError("open streams with Chan.stream or Conn.stream")

    @classmethod
    async def _open(cls, conn: Conn, chans: Sequence[Chan], credit: int,
                    ctx: Optional[Context], timeout: Optional[float]) -> "Stream":
        chans = list(chans)
        if not chans:
            raise ValueError("a stream needs at least one channel")
        for ch in chans:
            if not isinstance(ch, Chan) or ch._conn is not conn:
                raise ValueError("every channel of a stream must be a Chan on its connection")
        if type(credit) is not int or credit < 1:
            raise ValueError("credit is an int of at least 1")
        self = object.__new__(cls)
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
        self._call = await conn._start(P.STREAM, [[c.name for c in chans], credit], self._ctx,
                                       deadline, _BUDGET, P.KIND_STREAM)
        call = self._call

        def fired(err: Error) -> None:
            def on_loop() -> None:
                conn._ctx_fired(call, err)
                if isinstance(err, Canceled):
                    conn._cancel(call)
            try:
                conn._loop.call_soon_threadsafe(on_loop)
            except RuntimeError:
                pass
        self._token = self._ctx._watch(fired)
        if self._token is None:
            conn._cancel(call)
        return self

    def _grant(self, waiting: bool) -> None:
        held = self._granted - self._taken
        if held < self._credit and (waiting or held * 2 <= self._credit):
            n = self._credit - held
            self._granted += n
            self._conn._post(P.CREDIT, self._call.id, n)

    def _stop(self, err: Error) -> None:
        if self._end is None:
            self._end = err
            self._ctx._unwatch(self._token)

    async def recv(self) -> Tuple[int, Value, bool]:
        """The next (index, value, ok); see :meth:`chand.Stream.recv`."""
        if self._end is not None:
            raise _raise_copy(self._end)
        call = self._call
        if not call.done:
            self._grant(not call.replies)
        try:
            await self._conn._wait(call, None, False)
            status, res = self._conn._take(call)
        except Error as e:
            self._stop(e)
            raise
        conn = self._conn
        if status == P.OK and len(res) == 3:
            self._taken += 1

            def decode() -> Tuple[int, Value, bool]:
                return (Shape.uint(res[0], "index"), conn._value(Shape.value(res[1], "value")),
                        Shape.boolean(res[2], "ok"))
            return conn._checked(decode)
        if status == P.OK:
            self.delivered = conn._uint(res, "delivered")
            self._finished = True
            self._stop(Closed("every channel of the stream is closed"))
        else:
            err = P.reply_error(status, res)
            if call.ctx_err is not None and status in (P.CANCELED, P.DEADLINE_EXCEEDED):
                err = call.ctx_err
            self._stop(err)
        assert self._end is not None
        raise _raise_copy(self._end)

    async def items(self) -> AsyncIterator[Tuple[int, Value]]:
        """(index, value) for every value until every channel is closed."""
        while True:
            try:
                index, v, ok = await self.recv()
            except Closed:
                if self._finished:
                    return
                raise
            if ok:
                yield index, v

    async def __aiter__(self) -> AsyncIterator[Value]:
        async for _, v in self.items():
            yield v

    def close(self) -> None:
        """End the stream (CANCEL, if it still runs). Idempotent."""
        if not self._call.done:
            self._conn._cancel(self._call)
        self._stop(Canceled("stream closed"))

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()


class Link:
    """An asyncio link: as :class:`chand.Link`, with ``await link.wait()``."""

    def __init__(self, conn: Conn, call: _Call, outputs: List[Chan], ctx: Context) -> None:
        self._conn = conn
        self._call = call
        self.outputs: Tuple[Chan, ...] = tuple(outputs)
        self._ctx = ctx
        self._result: Optional[Union[int, Error]] = None

        def fired(err: Error) -> None:
            def on_loop() -> None:
                conn._ctx_fired(call, err)
                if isinstance(err, Canceled):
                    conn._cancel(call)
            try:
                conn._loop.call_soon_threadsafe(on_loop)
            except RuntimeError:
                pass
        self._token = ctx._watch(fired)
        if self._token is None:
            conn._cancel(call)

    @property
    def out(self) -> Chan:
        return self.outputs[0]

    @property
    def id(self) -> int:
        return self._call.id

    def cancel(self) -> None:
        """Stop the link (CANCEL) without waiting."""
        self._conn._cancel(self._call)

    def running(self) -> bool:
        return not self._call.done

    async def wait(self) -> int:
        """Wait for the end: the values sent, or why it stopped (raised); see
        :meth:`chand.Link.wait`. Bound it with ``asyncio.wait_for`` (the link goes on)."""
        if self._result is None:
            await self._conn._wait(self._call, None, False)
            self._ctx._unwatch(self._token)
            try:
                status, res = self._conn._take(self._call)
                if status == P.OK:
                    self._result = self._conn._uint(res, "sent")
                else:
                    self._result = P.reply_error(status, res)
            except Error as e:
                self._result = e
        if isinstance(self._result, Error):
            raise _raise_copy(self._result)
        return self._result

    async def __aenter__(self) -> "Link":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.running():
            self.cancel()


def _link_conn(chans: Sequence[Optional[Chan]]) -> Conn:
    conn = None
    for ch in chans:
        if ch is None:
            continue
        if not isinstance(ch, Chan):
            raise TypeError(f"a link's channel is a chand.aio.Chan, not {type(ch).__name__}")
        if conn is None:
            conn = ch._conn
        elif ch._conn is not conn:
            raise ValueError("every channel of a link must be on one connection")
    if conn is None:
        raise ValueError("a link needs a channel")
    return conn


async def _link(conn: Conn, op: int, nouts: int, args: List[Any], done: Optional[Chan],
                outs: Optional[Sequence[P.OutSpec]], ctx: Optional[Context],
                timeout: Optional[float]) -> Link:
    ctx = ctx or background()
    if done is not None and (not isinstance(done, Chan) or done._conn is not conn):
        raise ValueError("the done channel must be a Chan on the link's connection")
    deadline = deadline_of(ctx, timeout)
    wire = [None if done is None else done.name, P.link_outs(outs, nouts), *args]
    call = await conn._start(op, wire, ctx, deadline, _BUDGET, P.KIND_LINK)
    status, res = await conn._next(call, ctx, deadline)
    if status != P.STARTED:
        if status == P.OK:
            conn._break(ProtocolError("a link's first reply is neither STARTED nor an error"))
        raise P.reply_error(status, res)
    names = conn._checked(lambda: P.link_started(res, nouts))
    return Link(conn, call, [Chan(conn, n) for n in names], ctx)


async def or_(*inputs: Chan, done: Optional[Chan] = None,
              outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
              timeout: Optional[float] = None) -> Link:
    """The or-channel (see :func:`chand.or_`)."""
    conn = _link_conn(list(inputs))
    return await _link(conn, P.OR, 1, [[c.name for c in inputs]], done, outs, ctx, timeout)


async def or_done(input: Chan, *, done: Optional[Chan] = None,
                  outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
                  timeout: Optional[float] = None) -> Link:
    """or-done (see :func:`chand.or_done`)."""
    return await _link(_link_conn([input]), P.OR_DONE, 1, [input.name], done, outs, ctx,
                       timeout)


async def tee(input: Chan, *, done: Optional[Chan] = None,
              outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
              timeout: Optional[float] = None) -> Link:
    """tee (see :func:`chand.tee`)."""
    return await _link(_link_conn([input]), P.TEE, 2, [input.name], done, outs, ctx, timeout)


async def bridge(input: Chan, *, done: Optional[Chan] = None,
                 outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Link:
    """bridge (see :func:`chand.bridge`)."""
    return await _link(_link_conn([input]), P.BRIDGE, 1, [input.name], done, outs, ctx,
                       timeout)


async def fan_in(*inputs: Chan, done: Optional[Chan] = None,
                 outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Link:
    """fan-in (see :func:`chand.fan_in`)."""
    conn = _link_conn(list(inputs))
    return await _link(conn, P.FAN_IN, 1, [[c.name for c in inputs]], done, outs, ctx,
                       timeout)


async def repeat(conn: Conn, values: Sequence[Any], *, done: Optional[Chan] = None,
                 outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Link:
    """repeat (see :func:`chand.repeat`)."""
    wire = [P.encode_value(v, conn._info.max_value) for v in values]
    return await _link(conn, P.REPEAT, 1, [wire], done, outs, ctx, timeout)


async def take(input: Chan, n: int, *, done: Optional[Chan] = None,
               outs: Optional[Sequence[P.OutSpec]] = None, ctx: Optional[Context] = None,
               timeout: Optional[float] = None) -> Link:
    """take (see :func:`chand.take`)."""
    return await _link(_link_conn([input]), P.TAKE, 1, [input.name, n], done, outs, ctx,
                       timeout)


async def fan_out(input: Chan, stage: str, workers: int, ordered: bool = False, *,
                  done: Optional[Chan] = None, outs: Optional[Sequence[P.OutSpec]] = None,
                  ctx: Optional[Context] = None, timeout: Optional[float] = None) -> Link:
    """A fan-out job (see :func:`chand.fan_out`)."""
    return await _link(_link_conn([input]), P.FAN_OUT, 1,
                       [input.name, stage, workers, bool(ordered)], done, outs, ctx, timeout)
