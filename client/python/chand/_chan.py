# SPDX-License-Identifier: BSD-2-Clause
"""Channel handles and select, for the synchronous API (see _conn for the model)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence, Tuple, Union

from . import _common as C
from . import _proto as P
from ._common import raise_copy
from ._conn import _BUDGET, _NONE, _TRY, Conn
from ._proto import ChanInfo, Shape, Value
from .context import _BACKGROUND, Context, background, deadline_of
from .errors import CloseError, DeadlineExceeded, Error, ProtocolError

if TYPE_CHECKING:
    from ._links import Stream

__all__ = ["Chan", "Message", "Op", "RecvCase", "SendCase", "recv", "send", "select"]


# ---- channels ---------------------------------------------------------------------------------


class Chan(P.BaseChan):
    """A channel handle: a connection and a name. Thread-safe.

    Values are :class:`bytes` (a :class:`str` is sent as its UTF-8 bytes, as a
    convenience; it is received as bytes), channel handles (sending one sends a
    reference to its channel; receiving one gives a :class:`Chan` on the receiving
    connection), or, received only, :class:`chand.ErrorValue`.

    Besides the name, a handle keeps only what it learnt: the capacity, and
    :attr:`err`, the close error its last receive with ``ok`` false found.
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
        """``v, ok := <-ch``: (value, True), or (None, False) once closed and drained
        (then :attr:`err` is the error it was closed with, or None)."""
        res = self._conn._roundtrip(P.RECV, [self._name], ctx, timeout)
        return self._recv_result(res)

    def recv_msg(self, *, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> "Message":
        """Receive, keeping an ack channel's value in flight: libchanclient's
        chan_recv_msg. Returns a :class:`Message` (value, ok, tag, count) to
        :meth:`Message.ack`, :meth:`Message.nack` or :meth:`Message.touch`.

        From a plain channel the tag is 0 (nothing to ack); with ``ok`` false
        (closed and drained) :attr:`err` is set as by :meth:`recv`. As a context
        manager the message acks itself when the block ends normally and nacks
        itself when it raises::

            with jobs.recv_msg() as m:
                work(m.value)
        """
        res = self._conn._roundtrip(P.RECV, [self._name], ctx, timeout)
        return self._recv_msg_result(res, Message)

    def send_async(self, value: Any, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> "Op":
        """Start ``ch <- value`` and return at once with the :class:`Op` in flight, to
        :meth:`Op.wait` for later: Go's ``go func() { ch <- v }()`` with a way to join
        it, libchanclient's chan_send_async.

        This keeps many operations in flight from one thread (pipelining). The server
        runs each with the semantics of its blocking form, in the order sent. The
        request is queued with the connection's others and leaves in one write when a
        thread waits (:meth:`Op.wait` or any blocking call), when the queue passes
        64 KiB, or on :meth:`Conn.flush`; through a :class:`ClusterConn`, a wait sends
        what is queued for every node, as on one connection. The deadline (``timeout``, ctx's) travels
        with the request; a cancel of ctx is acted on while :meth:`Op.wait` waits.
        Raises at once what :meth:`send` raises before sending (:class:`Limit`, the
        context's error, :class:`ConnectionLost`).
        """
        v = P.encode_value(value, self._conn._info.max_value)
        return Op(self, P.SEND, [self._name, v], ctx, timeout)

    def recv_async(self, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> "Op":
        """Start ``<-ch`` and return at once with the :class:`Op` in flight, whose
        :meth:`Op.wait` gives ``(value, ok)`` as :meth:`recv`: libchanclient's
        chan_recv_async (see :meth:`send_async`)."""
        return Op(self, P.RECV, [self._name], ctx, timeout)


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
        """``for v := range ch`` whose every receive is bounded by ctx.

        A close with an error ends it normally too; :attr:`err` then says why.
        """
        while True:
            v, ok = self.recv(ctx=ctx)
            if not ok:
                return
            yield v

    def close(self, error: Union[CloseError, Tuple[int, str], None] = None, *,
              ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """``close(ch)``. Raises :class:`Closed` if it was closed already.

        With ``error`` (a :class:`CloseError`, or a (code, message) tuple) the channel
        is closed *with an error*, the outcome of the whole stream (Go's
        ``cancel(cause)``): receivers still get the buffered values, then ``ok``
        false with the error as their handle's :attr:`err`, and links pass it on
        to their outputs. A bad code or message raises :class:`ValueError` before
        anything is sent. A channel keeps the error of its first close only.
        """
        args = [self._name, *P.encode_close_error(error)]
        self._conn._roundtrip(P.CLOSE, args, ctx, timeout, _NONE)

    def len(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> int:
        """``len(ch)``: the values in the buffer."""
        res = self._conn._roundtrip(P.LEN, [self._name], ctx, timeout, _NONE)
        return self._conn._uint(res, "len")

    def __len__(self) -> int:
        return self.len()

    def get_cap(self, *, ctx: Optional[Context] = None,
                timeout: Optional[float] = None) -> int:
        """``cap(ch)``, asked of the server."""
        res = self._conn._roundtrip(P.CAP, [self._name], ctx, timeout, _NONE)
        self._cap = self._conn._uint(res, "cap")
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
        return self._conn._uint(res, "discarded")

    def info(self, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> ChanInfo:
        """The server's view: len, cap, closed, anonymous, waiting senders and receivers,
        and ``close_error``, the :class:`CloseError` it was closed with (or None)."""
        res = self._conn._roundtrip(P.INFO, [self._name], ctx, timeout, _NONE)
        return self._conn._decoded(C.chan_info, res)

    def stream(self, credit: int = 64, *, ctx: Optional[Context] = None,
               timeout: Optional[float] = None, manual_ack: bool = False) -> "Stream":
        """A receive stream over this channel (see :class:`Stream`); with manual_ack,
        its iteration yields :class:`Message` objects to ack."""
        from ._links import Stream     # _links builds on this module
        return Stream(self._conn, [self], credit, ctx, timeout, manual_ack)


# ---- messages (ack channels, PROTOCOL.md §16) -------------------------------------------------


class Message(P.BaseMessage):
    """A value received by :meth:`Chan.recv_msg`: :attr:`value`, :attr:`ok`, and, from
    an ack channel, its :attr:`tag` and delivery :attr:`count` (1 the first time).

    A tagged value stays in flight on the server until :meth:`ack`; :meth:`nack`
    gives it back, :meth:`touch` restarts its ack_wait. A message of a plain channel
    (tag 0) has nothing to settle: these methods raise :class:`ValueError` for it,
    as libchanclient's return CHAN_EINVAL.

    ``with ch.recv_msg() as m:`` acks on a normal exit and nacks (delay 0) when the
    block raises, then lets the exception through; a message already settled inside
    the block, untagged, or ``ok`` false is left alone. A failing nack on the way out
    is not raised over the block's exception (a value never nacked comes back after
    ack_wait or with its connection anyway).
    """

    __slots__ = ()
    chan: Chan

    def ack(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """Acknowledge: the value is done for good (one round trip, see
        :meth:`Conn.ack` for many). :class:`NotFound` if it is no longer in flight
        (given back after ack_wait, say), :class:`PermissionDenied` if another
        connection holds it."""
        P.check_tag(self.tag)
        self.chan._conn.ack(self.tag, ctx=ctx, timeout=timeout)
        self._settled = True

    def nack(self, delay: float = 0.0, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> None:
        """Give the value back to its channel now, or after delay seconds; it is
        delivered again with its count + 1 (or dead-lettered after max_deliver)."""
        P.check_tag(self.tag)
        self.chan._conn._tag_op(P.NACK, [self.tag, P.delay_us(delay)], ctx, timeout)
        self._settled = True

    def touch(self, *, ctx: Optional[Context] = None, timeout: Optional[float] = None) -> None:
        """Start the value's ack_wait again, for a long job."""
        P.check_tag(self.tag)
        self.chan._conn._tag_op(P.TOUCH, [self.tag], ctx, timeout)

    def __enter__(self) -> "Message":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self.settled or not self.ok:
            return
        if exc_type is None:
            self.ack()
            return
        try:
            self.nack()
        except Error:
            pass


# ---- operations in flight (pipelining) ----------------------------------------------------------


class Op:
    """A send or receive in flight, made by :meth:`Chan.send_async` or
    :meth:`Chan.recv_async` (libchanclient's chan_op_t). One thread at a time waits."""

    __slots__ = ("_chan", "_ctx", "_deadline", "_call", "_result", "_err")

    def __init__(self, chan: Chan, op: int, args: List[Any], ctx: Optional[Context],
                 timeout: Optional[float]) -> None:
        self._chan = chan
        self._ctx = ctx or _BACKGROUND
        self._deadline = deadline_of(self._ctx, timeout)
        self._call: Any = chan._conn._start(op, args, self._ctx, self._deadline, _BUDGET,
                                            defer=True)
        self._result: Any = None
        self._err: Optional[Error] = None

    def wait(self) -> Any:
        """The result of the blocking form: None for a send, ``(value, ok)`` for a
        receive; or raises its error (:class:`Closed`, :class:`DeadlineExceeded`, ...).
        A second wait returns (or raises) the same again."""
        call = self._call
        if call is not None:
            self._call = None
            c = self._chan._conn
            try:
                status, res = c._next(call, self._ctx, self._deadline)
                if status != P.OK:
                    raise P.reply_error(status, res)
                if call.op == P.RECV:
                    self._result = self._chan._recv_result(res)
            except Error as e:
                self._err = e
                raise
        if self._err is not None:
            raise raise_copy(self._err)
        return self._result

    def __repr__(self) -> str:
        return f"<chand.Op on {self._chan._name!r}{' done' if self._call is None else ''}>"


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


def select_result(conn: Any, cases: Sequence[Case], default: bool,
                  res: List[Any]) -> Tuple[int, Value, bool]:
    """SELECT's (index, value, ok); a receive case's ``ok`` false sets its handle's err.
    A case the server could not have chosen (out of range, a nil channel's, a default
    not asked for) is a ProtocolError (PROTOCOL.md §9, bad replies)."""
    def decode() -> Tuple[int, Value, bool]:
        index = Shape.int_(res[0] if res else None, "index")
        if not -1 <= index < len(cases):
            raise ProtocolError(f"SELECT chose case {index} of {len(cases)}")
        if index < 0 and not default:
            raise ProtocolError("SELECT chose a default it was not given")
        if index >= 0 and cases[index].chan is None:
            raise ProtocolError(f"SELECT chose case {index}, a nil channel's")
        v, ok, err = P.received(res, 1, "SELECT", conn._ack, nil_ok=True)
        if err is not None and index < 0:
            raise ProtocolError("SELECT's default carries a close error")
        case = cases[index] if index >= 0 else None
        if not ok and isinstance(case, RecvCase) and case.chan is not None:
            case.chan._err = err
        return index, conn._value(v), ok
    return conn._checked(decode)


def select(*cases: Case, default: bool = False, ctx: Optional[Context] = None,
           timeout: Optional[float] = None) -> Tuple[int, Value, bool]:
    """Go's select over receive and send cases, chosen uniformly among the ready ones.

    Returns (index, value, ok): for a receive case the value and ok of ``v, ok :=
    <-ch`` (with ``ok`` false the case's handle gets its :attr:`Chan.err`, as from
    :meth:`Chan.recv`); (index, None, True) for a send case; (-1, None, True) for the
    default (with ``default=True`` when no case is ready). A timeout (Go's ``case
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
    return select_result(conn, cases, default, res)
