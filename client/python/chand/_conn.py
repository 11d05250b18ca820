# SPDX-License-Identifier: BSD-2-Clause
"""The synchronous client: connections (dial, calls, replies, admin).

One :class:`Conn` is one socket. It is thread-safe: any number of threads
may block in calls on it at once, each call has its own request id, and
every reply goes to the call it belongs to (replies come back in any order,
PROTOCOL.md §1). A blocked call blocks only its own thread. There is no
reader thread: a waiting call reads the socket itself while no other
thread does (leader/follower, see Conn._wait), so a lone caller never waits
for another thread to wake it. Requests queue and leave in one write: at
once for a blocking call (with those of the threads calling meanwhile), or,
for the asynchronous operations (Chan.send_async, Chan.recv_async), when a
thread waits.

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

import itertools
import os
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import msgpack

from . import _common as C
from . import _proto as P
from ._addr import Address, is_cluster_address, parse_address, tls_wanted
from ._common import BaseCall, BaseConn, raise_copy
from ._transport import TLS, Plain
from ._proto import ChanInfo, ClientInfo, InflightInfo, NodeInfo, ServerInfo, Waiter
from .context import _BACKGROUND, Context, background, deadline_of
from .errors import Canceled, ConnectionLost, DeadlineExceeded, DialError, Error, Limit

__all__ = ["Conn", "dial"]


# how a call's wait is sent
_BUDGET = 0      # the context's remaining budget (nil without a deadline)
_TRY = 1         # 0: do not wait
_NONE = 2        # nil: the op does not wait (its wait is validated and ignored)

_DEFAULT_ADDR = "tcp://127.0.0.1:7420"
_QUEUE_MAX = 64 << 10    # queued asynchronous requests written at once past this


# ---- calls ----------------------------------------------------------------------------------


class _Call(BaseCall):
    """A call of the sync connection: its replies, and the condition its thread sleeps
    on while another thread reads (made when it does)."""

    __slots__ = ("cond",)

    def __init__(self, op: int, kind: int) -> None:
        BaseCall.__init__(self, op, kind)
        self.cond: Optional[threading.Condition] = None

    def wake(self) -> None:
        """Wake the thread following for this call, if one is (under the lock)."""
        if self.cond is not None:
            self.cond.notify_all()


class Conn(BaseConn):
    """A connection to chand; make one with :func:`dial`. Thread-safe.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(self, transport: Plain, address: Address, cancel_grace: float) -> None:
        self._t = transport
        self.address = address
        self._grace = cancel_grace
        self._lock = threading.Lock()
        self._calls: Dict[int, _Call] = {}
        self._abandoned: Dict[int, int] = {}     # id -> kind: replies still to come, unwanted
        self._ids = itertools.count(1)           # request ids (next() is atomic)
        self._packer = msgpack.Packer(use_bin_type=True)
        self._dead: Optional[Error] = None
        self._info = ServerInfo(P.VERSION, "", P.DEFAULT_MAX_FRAME, 1 << 20, 4096, 1024, 0)
        self._leader: Optional[int] = None       # the thread reading the socket (_wait)
        self._followers: List[_Call] = []        # calls waiting for it, to lead next
        self._led = threading.Condition(self._lock)     # the leader left
        self._reader = P.ReplyReader()           # what was read, into replies
        self._wq = bytearray()                   # requests to write, in order
        self._flushing = False                   # a thread writes the queue
        # a cluster node's (ClusterConn): a wait sends what is queued for every node
        self._flush_nodes: Optional[Callable[[], None]] = None
        self._wake_r, self._wake_w = os.pipe()   # wakes the leader's poll (a context ended)
        os.set_blocking(self._wake_w, False)
        self._poll = select.poll()               # the leader's only
        self._poll.register(transport.fd, select.POLLIN)
        self._poll.register(self._wake_r, select.POLLIN)
        self._fds_open = True
        transport.full = self._write_blocked
        transport.start()

    # -- life ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once the connection broke or was closed.

        Replies are read by the calls waiting for them, so when no call waits this
        reads what has arrived first, to notice a connection the server ended.
        """
        self._read_arrived()
        return self._dead is not None

    def close(self) -> None:
        """Close the connection: pending and later calls raise :class:`ConnectionLost`.

        Anonymous channels held only by this connection go with it. Idempotent.
        """
        self._break(ConnectionLost("connection closed"))
        with self._lock:
            # the socket goes once nobody polls it: the leader saw the shutdown by now
            end = P.now_ns() + 5 * 10**9
            while self._leader is not None and P.now_ns() < end:
                self._led.wait((end - P.now_ns()) / 1e9)
            if not self._fds_open:
                return
            self._fds_open = False
        self._t.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<chand.Conn {self.address}{' closed' if self._dead is not None else ''}>"

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
                call.wake()
            self._wake_leader()
        self._t.shutdown()

    # -- reading: leader/follower ----------------------------------------------------------
    #
    # No reader thread: a call waiting for its reply reads the socket itself when no other
    # thread does (it leads), and files every reply it reads; the other waiting calls
    # sleep on their conditions (they follow) until their reply is filed or the leader
    # leaves and hands the reading to one of them. A lone caller so never waits for
    # another thread to wake it, which is most of a round trip's cost in Python.

    def _lead(self) -> bool:
        """Take the reading if nobody has it."""
        with self._lock:
            if self._leader is not None or self._dead is not None:
                return False
            self._leader = threading.get_ident()
            return True

    def _unlead(self) -> None:
        with self._lock:
            self._unlead_locked()

    def _unlead_locked(self) -> None:
        self._leader = None
        if self._followers:
            self._followers[0].wake()
        self._led.notify_all()

    def _read_arrived(self) -> None:
        """File the replies that have arrived, unless another thread reads (it does)."""
        if self._dead is None and self._lead():
            try:
                self._pump(0.0)
            finally:
                self._unlead()

    def _wake_leader(self) -> None:
        """Wake the leader out of its poll (under the lock)."""
        if self._leader is not None and self._fds_open:
            try:
                os.write(self._wake_w, b"w")
            except OSError:
                pass        # full: it is woken already

    def _wait(self, call: _Call, until: Optional[int], watch_ctx: bool) -> bool:
        """Until the call has a reply or failed (True), or its context ended (watch_ctx)
        or the monotonic time until (ns) passed (False); leads the reading meanwhile
        whenever nobody else does."""
        lock = self._lock
        leading = False
        if self._flush_nodes is not None:
            self._flush_nodes()         # requests queued for the other nodes leave too
        lock.acquire()
        try:
            while True:
                if call.replies or call.done:
                    return True
                if self._dead is not None:     # a call _break did not know (a link's)
                    call.done = True
                    call.error = self._dead
                    return True
                if watch_ctx and call.ctx_err is not None:
                    return False
                timeout = None
                if until is not None:
                    left = until - P.now_ns()
                    if left <= 0:
                        return False
                    timeout = left / 1e9
                if not leading and self._leader is not None:
                    if self._wq and not self._flushing:
                        lock.release()
                        self._flush_before_wait()
                        lock.acquire()
                        continue
                    if call.cond is None:
                        call.cond = threading.Condition(lock)
                    self._followers.append(call)
                    try:
                        call.cond.wait(timeout)
                    finally:
                        self._followers.remove(call)
                    continue
                leading = True
                self._leader = threading.get_ident()
                lock.release()
                try:
                    self._pump(timeout)
                finally:
                    lock.acquire()
        finally:
            if leading:
                self._unlead_locked()
            elif self._leader is None and self._followers:
                # a follower woken to lead may be leaving with its reply instead
                self._followers[0].wake()
            lock.release()

    def _pump(self, timeout: Optional[float]) -> None:
        """The leader: file what has arrived, else wait for input at most timeout
        seconds (None: no bound) or until woken. A broken connection is broken here."""
        t = self._t
        try:
            # after a read that took everything, poll first: one system call less
            data = None if t.drained and timeout != 0 else t.read()
            if data is None:
                if timeout == 0:
                    return
                self._flush_before_wait()
                ms = None if timeout is None else int(timeout * 1000) + 1
                readable = False
                for fd, _ in self._poll.poll(ms):
                    if fd == self._wake_r:
                        os.read(self._wake_r, 512)
                    else:
                        readable = True
                data = t.read() if readable else None
                if data is None:
                    return
            if not data:
                if self._reader.pending:
                    raise ConnectionLost("the server closed the connection in the middle "
                                         "of a frame (truncated frame)")
                raise ConnectionLost("the server closed the connection")
            self._file(data)
        except Error as e:
            self._break(e)
        except (OSError, ValueError) as e:
            self._break(ConnectionLost(f"connection lost: {e}"))

    def _file(self, data: memoryview) -> None:
        """Decode every whole frame of the input and hand each reply to its call."""
        replies = self._reader.feed(data, max(P.READ_LIMIT, 2 * self._info.max_frame))
        with self._lock:
            for rid, status, results in replies:
                call = P.route_reply(self._calls, self._abandoned, rid, status, results)
                if call is not None:
                    call.wake()
                if status == P.PROTOCOL:    # the server closes the connection after it (§9)
                    raise P.reply_error(status, results)

    # -- writing -------------------------------------------------------------------------

    def _write_blocked(self) -> None:
        """The socket is full: wait until it takes more, reading meanwhile when nobody
        else does (chand may be waiting for its replies to be read before it reads on)."""
        me = threading.get_ident()
        took = self._leader != me and self._lead()
        reading = took or self._leader == me     # the leader writes the queue before polling
        try:
            p = select.poll()
            p.register(self._t.fd, select.POLLOUT | (select.POLLIN if reading else 0))
            # not reading, look again now and then: the leader may leave
            for _, ev in p.poll(None if reading else 50):
                if ev & select.POLLIN:
                    self._pump(0.0)
        finally:
            if took:
                self._unlead()

    def _queue_locked(self, msg: Sequence[Any], defer: bool) -> bool:
        """Pack a request (by the connection's one packer, so under the lock) and queue
        its frame; True when the caller is to write the queue now: not when another
        thread writes it (it takes this one along, its failure breaks the connection),
        nor with defer (an asynchronous op) until a thread waits, the queue passes
        _QUEUE_MAX or :meth:`flush`. :class:`Limit` for a request over max_frame."""
        body = self._packer.pack(msg)
        n = len(body)
        if n > self._info.max_frame:
            raise Limit(f"request of {n} bytes is over the server's max_frame "
                        f"{self._info.max_frame}")
        wq = self._wq
        wq += P.frame_head(n)
        wq += body
        if self._flushing or (defer and len(wq) < _QUEUE_MAX):
            return False
        self._flushing = True
        return True

    def _write_queue(self) -> None:
        """Write the queue until it is empty, as the one writer (_flushing set): the
        requests keep their order, and those of threads calling meanwhile leave in one
        write."""
        try:
            while True:
                with self._lock:
                    data = self._wq
                    if not data or self._dead is not None:
                        self._flushing = False
                        return
                    self._wq = bytearray()
                self._t.sendall(data)
        except BaseException as e:
            with self._lock:
                self._flushing = False
            if not isinstance(e, OSError):
                raise
            self._break(ConnectionLost(f"connection lost: {e}"))
            self._check_dead()

    def _flush_before_wait(self) -> None:
        """About to wait for replies: asynchronous requests leave now, in one write."""
        if self._wq:
            try:
                self.flush()
            except Error:
                pass        # broken: the waiting call fails with the connection

    def flush(self) -> None:
        """Write every queued request now, without waiting for a reply (libchanclient's
        chan_conn_flush): the requests of :meth:`Chan.send_async` and
        :meth:`Chan.recv_async` otherwise leave when a thread waits."""
        with self._lock:
            if self._flushing or not self._wq:
                return
            self._flushing = True
        self._write_queue()

    def _ack(self, tag: int) -> None:
        """Acknowledge an ack channel's value (PROTOCOL.md §16) returned untagged, as
        libchanclient's chan_recv does; its reply is dropped."""
        self._post(P.ACK, [tag])

    def _post(self, op: int, *args: Any, defer: bool = False) -> None:
        """A request nobody waits for (CANCEL, CREDIT, ACK): its reply is expected and
        dropped. With defer it is queued as an asynchronous op's (see _queue_locked)."""
        rid = next(self._ids)
        try:
            with self._lock:
                if self._dead is not None:
                    return
                write = self._queue_locked([op, rid, None, *args], defer)
                self._abandoned[rid] = P.KIND_PLAIN
            if write:
                self._write_queue()
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
               kind: int = P.KIND_PLAIN, credit: int = 0, defer: bool = False) -> _Call:
        """Check the context, link a call under a fresh id and send its request (with
        defer, queue it: see _queue_locked)."""
        ctx = ctx or _BACKGROUND
        e = ctx.err()
        if e is not None:
            raise e                             # done already: nothing is sent
        wait: Optional[int] = None
        if how == _TRY:
            wait = 0
        elif how == _BUDGET and deadline is not None:
            now = time.monotonic_ns()
            if deadline <= now:
                raise DeadlineExceeded("context deadline exceeded")
            wait = P.wait_us(deadline, now)
        call = _Call(op, kind)
        call.credit = credit
        call.id = next(self._ids)
        with self._lock:
            if self._dead is not None:
                raise raise_copy(self._dead)
            write = self._queue_locked([op, call.id, wait, *args], defer)
            self._calls[call.id] = call
        if write:
            self._write_queue()     # a failure fails the call with the connection
        return call

    def _next(self, call: _Call, ctx: Optional[Context],
              deadline: Optional[int]) -> Tuple[int, List[Any]]:
        """Wait for the call's next reply, watching ctx and deadline (see the module doc).

        Returns (status, results); raises the connection's failure or the context's error.
        """
        if call.replies:
            return self._take(call)     # filed already (a pipeline's): nothing to watch
        ctx = ctx or background()

        def fired(err: Error) -> None:
            with self._lock:
                if call.ctx_err is None:
                    call.ctx_err = err
                call.wake()
                self._wake_leader()

        token = ctx._watch(fired)
        if token is None:
            call.ctx_err = call.ctx_err or ctx.err()
        try:
            ready = self._wait(call, deadline, True)
        finally:
            ctx._unwatch(token)
        if not ready:
            if call.ctx_err is None:
                call.ctx_err = DeadlineExceeded("context deadline exceeded")
            if isinstance(call.ctx_err, Canceled):
                self._cancel(call)
            ready = self._wait(call, P.now_ns() + int(self._grace * 1e9), False)
            if not ready:
                with self._lock:
                    if self._calls.pop(call.id, None) is not None:
                        # the server did not confirm in time: give up on the request
                        self._abandoned[call.id] = call.kind
                        call.done = True
                self._cancel_abandoned(call)
                raise call.ctx_err
        return self._take(call)

    def _cancel_abandoned(self, call: _Call) -> None:
        if not call.cancel_sent:
            call.cancel_sent = True
            self._post(P.CANCEL, call.id)

    def _take(self, call: _Call) -> Tuple[int, List[Any]]:
        # no lock: only the call's own thread takes, the reading thread only appends
        if not call.replies:
            assert call.error is not None
            raise raise_copy(call.error)
        status, results = call.replies.popleft()
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

    # -- HELLO ------------------------------------------------------------------------------

    def _hello(self, client_name: str, token: Optional[str], ctx: Context,
               deadline: Optional[int], caps: Optional[Dict[str, Any]]) -> None:
        res = self._roundtrip(P.HELLO, C.hello_args(client_name, token, caps), ctx,
                              None if deadline is None else (deadline - P.now_ns()) / 1e9)
        self._info = self._decoded(C.server_info, res)

    # -- channels ----------------------------------------------------------------------------

    def ping(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """One round trip."""
        self._roundtrip(P.PING, [], ctx, timeout, _NONE)

    def make(self, name: Optional[str] = None, cap: int = 0, *,
             ack_wait: Optional[float] = None, max_deliver: int = P.DEFAULT_MAX_DELIVER,
             max_unacked: int = P.DEFAULT_MAX_UNACKED, dead_letter: Optional[str] = None,
             max_ack_pending: int = P.DEFAULT_MAX_ACK_PENDING, durable: bool = False,
             ctx: Optional[Context] = None, timeout: Optional[float] = None) -> "Chan":
        """Go's ``make(chan T, cap)``: create name, or open it if it exists with this cap.

        ``name=None`` makes an anonymous channel, named by the server ``~`` and 32 hex
        digits (a cluster node adds ``@`` and its node name), which lives while a
        connection that made or opened it is open.

        With ``ack_wait`` (seconds) it is an *ack channel* (PROTOCOL.md §16,
        libchanclient's chan_make_opts): a value received by :meth:`Chan.recv_msg`
        stays in flight until acked, and comes back if it is not within ack_wait.
        ``max_deliver`` (0: unlimited) deliveries of one value before it goes to the
        ``dead_letter`` channel (or is dropped); ``max_unacked`` (0: unlimited) values
        in flight per connection; ``max_ack_pending`` (0, the default: unlimited) values
        in flight on the whole channel, every connection's together (NATS's
        max_ack_pending): at either limit receives wait, in the order they were made,
        until acks make room. These need ack_wait; ranges are checked
        (:class:`ValueError`). ``durable=True`` keeps the channel in the server's journal
        (PROTOCOL.md §16): it must be named and buffered, on a server with data_dir; an ack
        channel keeps its options too. An existing name must have the same cap, options
        and durability. Raises :class:`Exists` (another cap, options or durability),
        :class:`BadRequest` (bad name, options on an anonymous channel, durable and
        anonymous or unbuffered), :class:`Storage` (durable without data_dir, or the
        journal failing), :class:`Limit`.
        """
        if name is not None:
            P.check_name(name)
        if type(cap) is not int or cap < 0:
            raise ValueError("cap is a non-negative int")
        opts = P.ack_opts(ack_wait, max_deliver, max_unacked, dead_letter, max_ack_pending,
                          durable)
        args: List[Any] = [name, cap] if opts is None else [name, cap, opts]
        res = self._roundtrip(P.MAKE, args, ctx, timeout, _NONE)
        return Chan(self, *self._decoded(C.made, res))

    def open(self, name: str, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> "Chan":
        """A handle on an existing channel (:class:`NotFound` if there is none).

        Opening an anonymous channel keeps it alive while this connection is open.
        """
        res = self._roundtrip(P.OPEN, [P.check_name(name)], ctx, timeout, _NONE)
        return Chan(self, name, self._uint(res, "cap"))

    def handle(self, name: str) -> "Chan":
        """A handle on name without a round trip (not checked)."""
        return Chan(self, P.check_name(name))

    def stream(self, chans: Sequence["Chan"], credit: int = 64, *,
               ctx: Optional[Context] = None, timeout: Optional[float] = None,
               manual_ack: bool = False) -> "Stream":
        """A receive stream over chans (see :class:`Stream`); with manual_ack, its
        iteration yields :class:`Message` objects to ack."""
        return Stream(self, chans, credit, ctx, timeout, manual_ack)

    # -- ack channels (PROTOCOL.md §16) --------------------------------------------------------

    def ack(self, *tags: int, ctx: Optional[Context] = None,
            timeout: Optional[float] = None) -> int:
        """Acknowledge values of ack channels by their tags (1 to 65,536, of messages
        this connection received with :meth:`Chan.recv_msg`), in one request:
        libchanclient's chan_ack_n. Returns how many were acked.

        Every tag still in flight is acked even when another is not; the error is the
        first bad tag's: :class:`NotFound` (not in flight: unknown, acked already,
        given back after ack_wait), :class:`PermissionDenied` (another connection's).
        """
        wire = P.check_tags(tags)
        res = self._roundtrip(P.ACK, [wire], ctx, timeout, _NONE)
        return self._uint(res, "acked")

    def _tag_op(self, op: int, args: List[Any], ctx: Optional[Context],
                timeout: Optional[float]) -> None:
        """NACK or TOUCH: ``[id, 0]``."""
        self._roundtrip(op, args, ctx, timeout, _NONE)

    # -- admin (PROTOCOL.md §11) ---------------------------------------------------------------

    def inflight(self, name: str, limit: int = 0, *, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Tuple[List[InflightInfo], int]:
        """The values of the ack channel name held by connections, oldest first, at
        most limit (0: 1000): (entries, total). :class:`NotFound` for no such channel,
        :class:`BadRequest` for a plain one. Needs the admin right."""
        res = self._roundtrip(P.INFLIGHT, [P.check_name(name), limit], ctx, timeout, _NONE)
        return self._decoded(C.inflight, res)

    def stats(self, *, ctx: Optional[Context] = None,
              timeout: Optional[float] = None) -> Dict[str, int]:
        """The server's counters (uptime_ms, connections, channels, waiters, ...)."""
        res = self._roundtrip(P.STATS, [], ctx, timeout, _NONE)
        return self._decoded(C.stats, res)

    def channels(self, pattern: Optional[str] = None, limit: int = 0, *,
                 ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> Tuple[List[ChanInfo], int]:
        """Channels matching the glob pattern (None: all), at most limit (0: 1000).

        Returns (infos, matched), matched counting every match.
        """
        res = self._roundtrip(P.CHANNELS, [pattern, limit], ctx, timeout, _NONE)
        return self._decoded(C.channels, res)

    def clients(self, *, ctx: Optional[Context] = None,
                timeout: Optional[float] = None) -> List[ClientInfo]:
        """Every connection of the server."""
        res = self._roundtrip(P.CLIENTS, [], ctx, timeout, _NONE)
        return self._decoded(C.clients, res)

    def cluster_nodes(self, *, ctx: Optional[Context] = None,
                      timeout: Optional[float] = None) -> List[NodeInfo]:
        """The live nodes of the cluster as this node sees them (CLUSTER_NODES, PROTOCOL.md
        §17); :class:`BadRequest` from a node without cluster_etcd. Needs the admin right."""
        res = self._roundtrip(P.CLUSTER_NODES, [], ctx, timeout, _NONE)
        return self._decoded(C.cluster_nodes, res)

    def waiters(self, limit: int = 0, *, ctx: Optional[Context] = None,
                timeout: Optional[float] = None) -> Tuple[List[Waiter], int]:
        """Every pending request (the broker's goroutine dump): (waiters, total)."""
        res = self._roundtrip(P.WAITERS, [limit], ctx, timeout, _NONE)
        return self._decoded(C.waiters, res)

    def unblock(self, client: int, request: Optional[int] = None, *,
                ctx: Optional[Context] = None, timeout: Optional[float] = None) -> int:
        """End one pending request of another client (or all, request None) with
        CANCELED; returns how many. :class:`NotFound` for an unknown client or request."""
        res = self._roundtrip(P.UNBLOCK, [client, request], ctx, timeout, _NONE)
        return self._uint(res, "canceled")

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
         timeout: Optional[float] = None, _caps: Optional[Dict[str, Any]] = None) -> Conn:
    """Connect to chand, say HELLO and return the :class:`Conn`.

    addr: ``host:port``, ``[v6]:port``, ``host`` (port 7420), ``tcp://host:port``,
    ``tls://host:port``, ``unix:/path`` or ``/path``. ``tls``: True (or an
    :class:`ssl.SSLContext` of your own) for TLS on an address without ``tls://``.
    ``ca``: the CA file that signs the server's certificate (default: the system's);
    ``cert``/``key``: a client certificate for mutual TLS; ``server_hostname``: the name
    the certificate must carry (default: the host dialled, an IP address checked as
    one). ``token``: the authentication token sent in HELLO. ``cancel_grace``: how long
    a call whose context ended waits for the server's confirmation. ``ctx``'s deadline
    and ``timeout`` bound connecting, the TLS handshake and HELLO; a cancel of ``ctx``
    is noticed before connecting and during HELLO (the name lookup itself is the
    system resolver's, and not bounded).

    Raises :class:`ValueError` (bad address; a cluster's, ``cluster://...``,
    ``cluster+tls://...`` or a list with a comma, is :func:`chand.dial_cluster`'s),
    :class:`TypeError` (``tls`` neither a bool nor an :class:`ssl.SSLContext`),
    :class:`DialError` (cannot connect or TLS failed; the OSError is its ``__cause__``),
    :class:`PermissionDenied` (token refused), :class:`DeadlineExceeded`,
    :class:`ProtocolError`.
    """
    if is_cluster_address(addr):
        raise ValueError(f"{addr!r} names a cluster: chand.dial_cluster dials one")
    address = parse_address(addr, tls_wanted(tls))
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
        transport: Plain
        if address.scheme == "tls":
            context = tls if isinstance(tls, ssl.SSLContext) else \
                _make_tls_context(ca, cert, key)
            t = TLS(sock, context, server_hostname or address.host)
            sock.settimeout(left())
            t.handshake()
            transport = t
        else:
            transport = Plain(sock)
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
        conn._hello(client_name, token, ctx, deadline, _caps)
    except BaseException:
        conn.close()
        raise
    return conn


# the handles, made by Conn's methods; imported last, as they build on Conn
from ._chan import Chan  # noqa: E402
from ._links import Stream  # noqa: E402

Conn._chan_class = Chan
