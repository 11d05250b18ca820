# SPDX-License-Identifier: BSD-2-Clause
"""Streams and links, for the synchronous API (PROTOCOL.md §12, §14)."""

from __future__ import annotations

import threading
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from . import _proto as P
from ._chan import Chan, Message
from ._common import BaseStream, link_conn, raise_copy
from ._conn import _BUDGET, Conn, _Call
from ._proto import Shape, Value
from .context import Context, background, deadline_of
from .errors import Canceled, Closed, Error, ProtocolError

__all__ = ["Stream", "Link", "or_", "or_done", "tee", "bridge", "fan_in", "repeat", "take",
           "fan_out"]


# ---- streams -----------------------------------------------------------------------------------


class Stream(BaseStream):
    """A receive stream (PROTOCOL.md §14): ``credit`` receives kept pending on the server.

    Over one channel it is like ``credit`` goroutines blocked in ``<-ch``, queued FIFO
    with the channel's other receivers; over several, like ``credit`` blocked selects
    over those receive cases. The server sends each value as it takes it; the client
    grants the credit of the values taken back when :meth:`recv` has to wait, or once
    half the credit was taken (then with the connection's next write, at the latest
    when it waits), so the stream is ``credit`` receives deep whenever the program
    waits on it. A value taken by the stream went to nobody else.

    ``for v in stream`` yields the values and ends once every channel is closed and
    drained, a close with an error included (:meth:`err` gives each channel's);
    :meth:`items` yields (index, value). The context (and ``timeout``) bound
    the stream's whole life. One thread at a time per stream.

    On an ack channel (PROTOCOL.md §16) :meth:`recv`, :meth:`items` and iteration
    acknowledge each value as they return it; :meth:`recv_msg`, and iteration of a
    stream opened with ``manual_ack=True``, give :class:`Message` objects whose
    values stay in flight until acked. :meth:`close` (or leaving
    a ``with`` block) ends it: values already sent but not taken are dropped.
    """

    def __init__(self, conn: Conn, chans: Sequence[Chan], credit: int,
                 ctx: Optional[Context], timeout: Optional[float],
                 manual_ack: bool = False) -> None:
        args, deadline = self._setup(conn, chans, credit, ctx, timeout, manual_ack, Chan)
        self._call = conn._start(P.STREAM, args, self._ctx, deadline, _BUDGET, P.KIND_STREAM,
                                 credit)
        self._token = self._ctx._watch(self._ctx_done)
        if self._token is None:
            conn._cancel(self._call)

    def _ctx_done(self, err: Error) -> None:
        with self._conn._lock:
            if self._call.ctx_err is None:
                self._call.ctx_err = err
        if isinstance(err, Canceled):
            self._conn._cancel(self._call)

    def _add_credit(self, n: int) -> None:
        with self._conn._lock:
            self._call.credit += n      # before the server can use it
        # queued: it leaves with the connection's next write, at the latest as the
        # thread waits (so the stream is credit deep whenever it waits); its OK is
        # deferred (PROTOCOL.md §15), written with the next value
        self._conn._post(P.CREDIT | P.DEFER, self._call.id, n, defer=True)

    def recv(self) -> Tuple[int, Value, bool]:
        """The next value: (index, value, True), or (index, None, False) once when
        chans[index] is closed and drained (its close error, if any, is then
        ``err(index)`` and ``chans[index].err``). Raises :class:`Closed` once every
        channel was reported closed, or why the stream ended otherwise (and so does
        every later call); values taken before the end come first. A value of an
        ack channel is acknowledged as it is returned (libchanclient's
        chan_stream_recv); :meth:`recv_msg` keeps it in flight."""
        index, v, ok, tag, _ = self._recv()
        if tag:
            self._conn._ack(tag)
        return index, v, ok

    def recv_msg(self) -> Tuple[int, Message]:
        """:meth:`recv` that keeps an ack channel's value in flight (libchanclient's
        chan_stream_recv_msg): (index, :class:`Message`) to ack, nack or touch; the
        message's ``ok`` is false for chans[index]'s close report."""
        index, v, ok, tag, count = self._recv()
        return index, Message(self.chans[index], v, ok, tag, count)

    def _recv(self) -> Tuple[int, Value, bool, int, int]:
        if self._end is not None:
            raise raise_copy(self._end)
        call = self._call
        if not call.done:
            self._grant(not call.replies)
        try:
            status, res = self._conn._next(call, None, None)
        except Error as e:
            self._stop(e)
            raise
        if status == P.OK and len(res) in (3, 4, 5):
            self._taken += 1
            try:
                return _interim(self, res)
            except ProtocolError as e:
                self._conn._break(e)
                raise
        if status == P.OK:
            self.delivered = self._conn._uint(res, "delivered")
            self._finished = True
            self._stop(Closed("every channel of the stream is closed"))
        else:
            err = P.reply_error(status, res)
            if call.ctx_err is not None and status in (P.CANCELED, P.DEADLINE_EXCEEDED):
                err = call.ctx_err
            self._stop(err)
        assert self._end is not None
        raise raise_copy(self._end)

    def items(self) -> Iterator[Tuple[int, Any]]:
        """Yield (index, value) for every value until every channel is closed; with
        ``manual_ack``, (index, :class:`Message`) instead, to ack each."""
        while True:
            try:
                if self._manual:
                    index, m = self.recv_msg()
                    v, ok = m, m.ok
                else:
                    index, v, ok = self.recv()
            except Closed:
                if self._finished:
                    return
                raise
            if ok:
                yield index, v

    def __iter__(self) -> Iterator[Any]:
        """The values (with ``manual_ack``, the :class:`Message` of each)."""
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


def _interim(stream: Any, res: List[Any]) -> Tuple[int, Value, bool, int, int]:
    """A stream's interim reply (sync or asyncio): a value, or a close report that
    records the channel's close error on the stream and on the channel's handle:
    (index, value, ok, tag, count), tag and count 0 but from an ack channel (not
    acknowledged here)."""
    index = res[0]
    if type(index) is not int or not 0 <= index < len(stream.chans):
        Shape.uint(index, "index")     # raises for a non-integer or a negative one
        raise ProtocolError(f"a stream value from channel {index} of {len(stream.chans)}")
    v, ok, err, tag, count = P.received_msg(res, 1, "STREAM")
    if not ok:
        if err is not None:
            stream._errs[index] = err
        stream.chans[index]._err = err
    elif type(v) is not bytes:
        v = stream._conn._value(v)      # a channel reference: a handle
    return index, v, ok, tag, count


def _link_end(conn: Any, call: Any) -> Union[int, Error]:
    """A finished link's result, from its final reply: the count of values it sent, or
    the error it ended with (both connection kinds, sync and asyncio)."""
    try:
        status, res = conn._take(call)
        if status == P.OK:
            return conn._uint(res, "sent")
        return P.reply_error(status, res)
    except Error as e:
        return e


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
        if not self._call.done:
            self._conn._read_arrived()
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
                if not self._conn._wait(self._call, deadline, False):
                    raise TimeoutError("the link is still running")
                self._ctx._unwatch(self._token)
                self._result = _link_end(self._conn, self._call)
            if isinstance(self._result, Error):
                raise raise_copy(self._result)
            return self._result

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.running():
            self.cancel()

    def __repr__(self) -> str:
        return f"<chand.Link {P.OP_NAMES.get(self._call.op)} id={self.id}>"


def _link_conn(chans: Sequence[Optional[Chan]]) -> Conn:
    return link_conn(chans, Chan, "chand.Chan")


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
