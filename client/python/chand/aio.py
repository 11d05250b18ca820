# SPDX-License-Identifier: BSD-2-Clause
"""chand for asyncio: the surface of the synchronous API, with ``await``.

::

    import chand, chand.aio

    conn = await chand.aio.dial("tcp://127.0.0.1:7420")
    jobs = await conn.make("jobs", 16)
    await jobs.send(b"hello", timeout=2.0)
    v, ok = await jobs.recv()
    async for v in jobs: ...
    i, v, ok = await chand.aio.select(chand.recv(a), chand.send(b, b"x"))

One connection serves any number of tasks at once; its protocol hands
each reply to the call it belongs to as it arrives, and the requests of one
loop iteration leave in one write at its end (CANCEL and ACK at once), a
stream's CREDIT with them. Select cases are the same
``chand.recv(ch)`` / ``chand.send(ch, v)`` as for the sync API (also here
as ``chand.aio.recv`` and ``chand.aio.send``).

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
from typing import (Any, AsyncIterator, Dict, List, Optional, Sequence, Tuple, Union)

from . import _common as C
from . import _proto as P
from ._addr import Address, is_cluster_address, parse_address, tls_wanted
from ._chan import Case, recv, select_cases, select_result, send
from ._common import BaseCall, BaseConn, raise_copy
from ._conn import _make_tls_context
from ._proto import ChanInfo, ClientInfo, InflightInfo, NodeInfo, ServerInfo, Value, Waiter
from .context import Context, background, deadline_of
from .errors import (Canceled, CloseError, ConnectionLost, DeadlineExceeded, DialError,
                     Error, Limit)

__all__ = ["Conn", "Chan", "Message", "Stream", "Link", "dial", "select", "recv", "send", "or_",
           "or_done", "tee", "bridge", "fan_in", "repeat", "take", "fan_out", "CloseError",
           "ClusterConn", "dial_cluster"]

_BUDGET, _TRY, _NONE = 0, 1, 2
_DRAIN_AT = 1 << 20      # await the transport's drain past this much unsent


class _Call(BaseCall):
    """A call of the asyncio connection: its replies, and the future of the task
    awaiting the next one."""

    __slots__ = ("waiter",)

    def __init__(self, op: int, kind: int) -> None:
        BaseCall.__init__(self, op, kind)
        self.waiter: Optional[asyncio.Future[None]] = None


def _wake(call: _Call) -> None:
    w = call.waiter
    if w is not None and not w.done():
        w.set_result(None)


def _wake_future(fut: "asyncio.Future[None]") -> None:
    if not fut.done():
        fut.set_result(None)


class _Protocol(asyncio.Protocol):
    """The transport's side of a :class:`Conn`: bytes in, flow control, the end."""

    def __init__(self) -> None:
        self.conn: Optional["Conn"] = None
        self.early = bytearray()        # arrived before the Conn took over (none, in practice)
        self.paused: Optional[asyncio.Future[None]] = None
        self.lost: Optional[asyncio.Future[None]] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.conn is None:
            self.early += data
        else:
            self.conn._feed(data)

    def eof_received(self) -> bool:
        if self.conn is not None:
            self.conn._break(ConnectionLost(
                "the server closed the connection in the middle of a frame (truncated frame)"
                if self.conn._reader.pending else "the server closed the connection"))
        return False

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.resume_writing()
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)
        if self.conn is not None:
            self.conn._break(ConnectionLost(f"connection lost: {exc}" if exc is not None
                                            else "the server closed the connection"))

    def pause_writing(self) -> None:
        if self.paused is None:
            self.paused = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self.paused is not None:
            _wake_future(self.paused)
            self.paused = None


class Conn(BaseConn):
    """An asyncio connection to chand; make one with :func:`dial`.

    Use it with ``async with``, or ``await conn.close()``.
    """

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol, address: Address,
                 cancel_grace: float) -> None:
        self._transport = transport
        self._proto = protocol
        self.address = address
        self._grace = cancel_grace
        self._loop = asyncio.get_running_loop()
        self._calls: Dict[int, _Call] = {}
        self._abandoned: Dict[int, int] = {}
        self._next_id = 1
        self._dead: Optional[Error] = None
        self._info = ServerInfo(P.VERSION, "", P.DEFAULT_MAX_FRAME, 1 << 20, 4096, 1024, 0)
        self._reader = P.ReplyReader()  # what was read, into replies
        self._wq = bytearray()          # requests of this loop iteration, written at its end
        self._timed: Dict[_Call, int] = {}      # waiting calls with a deadline (ns): _arm
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[int] = None
        transport.set_write_buffer_limits(high=_DRAIN_AT)
        protocol.conn = self
        if protocol.early:
            self._feed(bytes(protocol.early))

    @property
    def closed(self) -> bool:
        """True once the connection broke or was closed."""
        return self._dead is not None

    async def close(self) -> None:
        """Close the connection: pending and later calls raise :class:`ConnectionLost`."""
        self._break(ConnectionLost("connection closed"))
        if self._proto.lost is not None:
            await asyncio.shield(self._proto.lost)

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
        if self._timer is not None:
            self._timer.cancel()
            self._timer = self._timer_at = None
        if not self._transport.is_closing():
            self._transport.close()

    # -- reading: the protocol feeds every byte in as it arrives ------------------------------

    def _feed(self, data: bytes) -> None:
        """Decode every whole frame of the input and hand each reply to its call."""
        if self._dead is not None:
            return
        try:
            replies = self._reader.feed(data, max(P.READ_LIMIT, 2 * self._info.max_frame))
            for rid, status, results in replies:
                call = P.route_reply(self._calls, self._abandoned, rid, status, results)
                if call is not None:
                    _wake(call)
                if status == P.PROTOCOL:    # the server closes the connection after it (§9)
                    raise P.reply_error(status, results)
        except Error as e:
            self._break(e)

    # -- writing ---------------------------------------------------------------------------------

    def _write(self, msg: Sequence[Any]) -> None:
        data = P.frame(msg)
        if len(data) - 4 > self._info.max_frame:
            raise Limit(f"request of {len(data) - 4} bytes is over the server's max_frame "
                        f"{self._info.max_frame}")
        if not self._wq:
            self._loop.call_soon(self._flush)
        self._wq += data

    def _flush(self) -> None:
        """The requests of a loop iteration leave in one write, at its end."""
        data, self._wq = self._wq, bytearray()
        if data and not self._transport.is_closing():
            self._transport.write(data)

    async def _drain(self) -> None:
        """Wait while the transport holds more than _DRAIN_AT unsent bytes."""
        while self._proto.paused is not None:
            await asyncio.shield(self._proto.paused)
        self._check_dead()

    def _ack(self, tag: int) -> None:
        """Acknowledge an ack channel's value (PROTOCOL.md §16) returned untagged, as
        libchanclient's chan_recv does; its reply is dropped."""
        self._post(P.ACK, [tag])

    def _post(self, op: int, *args: Any, defer: bool = False) -> None:
        """A request nobody waits for (CANCEL, CREDIT, ACK), written at once; with defer,
        with the loop iteration's other requests at its end."""
        if self._dead is not None:
            return
        rid = self._next_id
        self._next_id += 1
        self._abandoned[rid] = P.KIND_PLAIN
        try:
            self._write([op, rid, None, *args])
            if not defer:
                self._flush()
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
                     kind: int = P.KIND_PLAIN, credit: int = 0) -> _Call:
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
        call.credit = credit
        call.id = self._next_id
        self._next_id += 1
        self._calls[call.id] = call
        try:
            self._write([op, call.id, wait, *args])
        except BaseException:
            self._calls.pop(call.id, None)
            raise
        if self._proto.paused is not None:
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
            if until is not None and until <= P.now_ns():
                return False
            fut: asyncio.Future[None] = self._loop.create_future()
            call.waiter = fut
            if until is not None:
                self._timed[call] = until
                if self._timer_at is None or until < self._timer_at:
                    self._arm(until)
            try:
                await fut
            finally:
                call.waiter = None
                if until is not None:
                    del self._timed[call]

    # The calls waiting with a deadline share one timer, at the earliest of them: one
    # timer a call (asyncio's heap of handles, most cancelled) cost more than the rest of
    # a call's wait. It wakes the calls whose time is up and re-arms for the next.

    def _arm(self, until: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = until
        self._timer = self._loop.call_later(max(0, until - P.now_ns()) / 1e9, self._expire)

    def _expire(self) -> None:
        self._timer = self._timer_at = None
        now = P.now_ns()
        later: Optional[int] = None
        for call, until in self._timed.items():
            if until <= now:
                _wake(call)
            elif later is None or until < later:
                later = until
        if later is not None:
            self._arm(later)

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
        if call.replies:
            return self._take(call)     # filed already: nothing to watch
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
            raise raise_copy(call.error)
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

    # -- the operations: see the sync Conn for each one's documentation -----------------------

    async def _hello(self, client_name: str, token: Optional[str], ctx: Context,
                     deadline: Optional[int], caps: Optional[Dict[str, Any]]) -> None:
        timeout = None if deadline is None else (deadline - P.now_ns()) / 1e9
        res = await self._roundtrip(P.HELLO, C.hello_args(client_name, token, caps), ctx,
                                    timeout)
        self._info = self._decoded(C.server_info, res)

    async def ping(self, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> None:
        """One round trip."""
        await self._roundtrip(P.PING, [], ctx, timeout, _NONE)

    async def make(self, name: Optional[str] = None, cap: int = 0, *,
                   ack_wait: Optional[float] = None,
                   max_deliver: int = P.DEFAULT_MAX_DELIVER,
                   max_unacked: int = P.DEFAULT_MAX_UNACKED,
                   dead_letter: Optional[str] = None,
                   max_ack_pending: int = P.DEFAULT_MAX_ACK_PENDING, durable: bool = False,
                   ctx: Optional[Context] = None, timeout: Optional[float] = None) -> "Chan":
        """``make(chan T, cap)``; name None makes an anonymous channel. With ``ack_wait``
        (seconds), an ack channel with ``max_deliver``, ``max_unacked``,
        ``max_ack_pending`` and ``dead_letter``; ``durable``, as :meth:`chand.Conn.make`."""
        if name is not None:
            P.check_name(name)
        if type(cap) is not int or cap < 0:
            raise ValueError("cap is a non-negative int")
        opts = P.ack_opts(ack_wait, max_deliver, max_unacked, dead_letter, max_ack_pending,
                          durable)
        args: List[Any] = [name, cap] if opts is None else [name, cap, opts]
        res = await self._roundtrip(P.MAKE, args, ctx, timeout, _NONE)
        return Chan(self, *self._decoded(C.made, res))

    async def open(self, name: str, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> "Chan":
        """A handle on an existing channel (:class:`NotFound` if there is none)."""
        res = await self._roundtrip(P.OPEN, [P.check_name(name)], ctx, timeout, _NONE)
        return Chan(self, name, self._uint(res, "cap"))

    def handle(self, name: str) -> "Chan":
        """A handle on name without a round trip (not checked)."""
        return Chan(self, P.check_name(name))

    async def stream(self, chans: Sequence["Chan"], credit: int = 64, *,
                     ctx: Optional[Context] = None, timeout: Optional[float] = None,
                     manual_ack: bool = False) -> "Stream":
        """A receive stream over chans (see :class:`Stream`); with manual_ack, its
        iteration yields :class:`Message` objects to ack."""
        return await Stream._open(self, chans, credit, ctx, timeout, manual_ack)

    async def ack(self, *tags: int, ctx: Optional[Context] = None,
                  timeout: Optional[float] = None) -> int:
        """Acknowledge 1 to 65,536 tags in one request: how many were acked (see
        :meth:`chand.Conn.ack`; :class:`NotFound`, :class:`PermissionDenied`)."""
        wire = P.check_tags(tags)
        res = await self._roundtrip(P.ACK, [wire], ctx, timeout, _NONE)
        return self._uint(res, "acked")

    async def _tag_op(self, op: int, args: List[Any], ctx: Optional[Context],
                      timeout: Optional[float]) -> None:
        """NACK or TOUCH: ``[id, 0]``."""
        await self._roundtrip(op, args, ctx, timeout, _NONE)

    async def inflight(self, name: str, limit: int = 0, *, ctx: Optional[Context] = None,
                       timeout: Optional[float] = None) -> Tuple[List[InflightInfo], int]:
        """The values of the ack channel name in flight: (entries, total), as
        :meth:`chand.Conn.inflight`."""
        res = await self._roundtrip(P.INFLIGHT, [P.check_name(name), limit], ctx, timeout,
                                    _NONE)
        return self._decoded(C.inflight, res)

    async def stats(self, *, ctx: Optional[Context] = None,
                    timeout: Optional[float] = None) -> Dict[str, int]:
        """The server's counters."""
        res = await self._roundtrip(P.STATS, [], ctx, timeout, _NONE)
        return self._decoded(C.stats, res)

    async def channels(self, pattern: Optional[str] = None, limit: int = 0, *,
                       ctx: Optional[Context] = None,
                       timeout: Optional[float] = None) -> Tuple[List[ChanInfo], int]:
        """Channels matching the glob pattern: (infos, matched)."""
        res = await self._roundtrip(P.CHANNELS, [pattern, limit], ctx, timeout, _NONE)
        return self._decoded(C.channels, res)

    async def clients(self, *, ctx: Optional[Context] = None,
                      timeout: Optional[float] = None) -> List[ClientInfo]:
        """Every connection of the server."""
        res = await self._roundtrip(P.CLIENTS, [], ctx, timeout, _NONE)
        return self._decoded(C.clients, res)

    async def cluster_nodes(self, *, ctx: Optional[Context] = None,
                            timeout: Optional[float] = None) -> List[NodeInfo]:
        """The live nodes of the cluster as this node sees them (CLUSTER_NODES, PROTOCOL.md
        §17); :class:`BadRequest` from a node without cluster_etcd. Needs the admin right."""
        res = await self._roundtrip(P.CLUSTER_NODES, [], ctx, timeout, _NONE)
        return self._decoded(C.cluster_nodes, res)

    async def waiters(self, limit: int = 0, *, ctx: Optional[Context] = None,
                      timeout: Optional[float] = None) -> Tuple[List[Waiter], int]:
        """Every pending request: (waiters, total)."""
        res = await self._roundtrip(P.WAITERS, [limit], ctx, timeout, _NONE)
        return self._decoded(C.waiters, res)

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
               timeout: Optional[float] = None, _caps: Optional[Dict[str, Any]] = None) -> Conn:
    """Connect, say HELLO and return the :class:`Conn`; arguments as :func:`chand.dial`
    (a cluster's address is :func:`dial_cluster`'s)."""
    if is_cluster_address(addr):
        raise ValueError(f"{addr!r} names a cluster: chand.aio.dial_cluster dials one")
    address = parse_address(addr, tls_wanted(tls))
    ctx = ctx or background()
    err = ctx.err()
    if err is not None:
        raise err
    deadline = deadline_of(ctx, timeout)
    left = None if deadline is None else (deadline - P.now_ns()) / 1e9
    if left is not None and left <= 0:
        raise DeadlineExceeded("context deadline exceeded")
    loop = asyncio.get_running_loop()
    try:
        if address.scheme == "unix":
            opening = loop.create_unix_connection(_Protocol, address.path)
        else:
            context = None
            if address.scheme == "tls":
                context = tls if isinstance(tls, ssl.SSLContext) else \
                    _make_tls_context(ca, cert, key)
            opening = loop.create_connection(
                _Protocol, address.host, address.port, ssl=context,
                server_hostname=(server_hostname or address.host) if context else None)
        transport, protocol = await asyncio.wait_for(opening, left)
    except asyncio.TimeoutError as e:
        raise DeadlineExceeded(f"dial {address}: timed out") from e
    except (OSError, ssl.SSLError) as e:
        raise DialError(f"dial {address}: {e}") from e
    conn = Conn(transport, protocol, address, cancel_grace)
    try:
        await conn._hello(client_name, token, ctx, deadline, _caps)
    except BaseException:
        await conn.close()
        raise
    return conn


class Chan(P.BaseChan):
    """An asyncio channel handle: a connection and a name (see :class:`chand.Chan`).

    :attr:`err` is the close error its last receive with ``ok`` false found.
    """

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

    async def send(self, value: Any, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> None:
        """``ch <- value``."""
        v = P.encode_value(value, self._conn._info.max_value)
        await self._conn._roundtrip(P.SEND, [self._name, v], ctx, timeout)

    async def recv(self, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> Tuple[Value, bool]:
        """``v, ok := <-ch``; with ``ok`` false, :attr:`err` is the close error (or None)."""
        res = await self._conn._roundtrip(P.RECV, [self._name], ctx, timeout)
        return self._recv_result(res)

    async def recv_msg(self, *, ctx: Optional[Context] = None,
                       timeout: Optional[float] = None) -> "Message":
        """Receive keeping an ack channel's value in flight: a :class:`Message` to ack,
        nack or touch, as :meth:`chand.Chan.recv_msg`; ``async with`` acks it on a
        normal exit and nacks it when the block raises."""
        res = await self._conn._roundtrip(P.RECV, [self._name], ctx, timeout)
        return self._recv_msg_result(res, Message)


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
        """Go's range, every receive bounded by ctx; a close with an error ends it
        normally too (:attr:`err` says why)."""
        while True:
            v, ok = await self.recv(ctx=ctx)
            if not ok:
                return
            yield v

    async def close(self, error: Union[CloseError, Tuple[int, str], None] = None, *,
                    ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """``close(ch)``, with an error if ``error`` is given (see :meth:`chand.Chan.close`)."""
        args = [self._name, *P.encode_close_error(error)]
        await self._conn._roundtrip(P.CLOSE, args, ctx, timeout, _NONE)

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
        """The server's view of the channel (``close_error`` included)."""
        res = await self._conn._roundtrip(P.INFO, [self._name], ctx, timeout, _NONE)
        return self._conn._decoded(C.chan_info, res)

    async def stream(self, credit: int = 64, *, ctx: Optional[Context] = None,
                     timeout: Optional[float] = None, manual_ack: bool = False) -> "Stream":
        """A receive stream over this channel; with manual_ack, its iteration yields
        :class:`Message` objects to ack."""
        return await Stream._open(self._conn, [self], credit, ctx, timeout, manual_ack)


class Message(P.BaseMessage):
    """A value received by :meth:`Chan.recv_msg`, as :class:`chand.Message` with
    ``await``: :meth:`ack`, :meth:`nack`, :meth:`touch`, and ``async with`` (ack on a
    normal exit, nack when the block raises)."""

    __slots__ = ()
    chan: Chan

    async def ack(self, *, ctx: Optional[Context] = None,
                  timeout: Optional[float] = None) -> None:
        """Acknowledge: the value is done for good."""
        P.check_tag(self.tag)
        await self.chan._conn.ack(self.tag, ctx=ctx, timeout=timeout)
        self._settled = True

    async def nack(self, delay: float = 0.0, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> None:
        """Give the value back now, or after delay seconds."""
        P.check_tag(self.tag)
        await self.chan._conn._tag_op(P.NACK, [self.tag, P.delay_us(delay)], ctx, timeout)
        self._settled = True

    async def touch(self, *, ctx: Optional[Context] = None,
                    timeout: Optional[float] = None) -> None:
        """Start the value's ack_wait again."""
        P.check_tag(self.tag)
        await self.chan._conn._tag_op(P.TOUCH, [self.tag], ctx, timeout)

    async def __aenter__(self) -> "Message":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.settled or not self.ok:
            return
        if exc_type is None:
            await self.ack()
            return
        try:
            await self.nack()
        except Error:
            pass


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
    return select_result(conn, cases, default, res)


Conn._chan_class = Chan

# streams and links, which build on Conn and Chan
from ._aio_links import (Link, Stream, bridge, fan_in, fan_out, or_, or_done,  # noqa: E402
                         repeat, take, tee)
# the cluster connection, which dials through dial above
from ._aio_cluster import ClusterConn, dial_cluster  # noqa: E402
