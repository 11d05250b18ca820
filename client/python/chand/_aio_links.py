# SPDX-License-Identifier: BSD-2-Clause
"""Streams and links for asyncio (see chand.aio; PROTOCOL.md §12, §14)."""

from __future__ import annotations

from typing import Any, AsyncIterator, List, Optional, Sequence, Tuple, Union

from . import _proto as P
from ._common import BaseStream, link_conn, raise_copy
from ._links import _interim, _link_end
from ._proto import Value
from .aio import _BUDGET, Chan, Conn, Message, _Call
from .context import Context, background, deadline_of
from .errors import Canceled, Closed, Error, ProtocolError

__all__ = ["Stream", "Link", "or_", "or_done", "tee", "bridge", "fan_in", "repeat", "take",
           "fan_out"]


class Stream(BaseStream):
    """An asyncio receive stream: as :class:`chand.Stream`, with ``async for``."""

    def __init__(self) -> None:
        raise TypeError("open streams with Chan.stream or Conn.stream")

    @classmethod
    async def _open(cls, conn: Conn, chans: Sequence[Chan], credit: int,
                    ctx: Optional[Context], timeout: Optional[float],
                    manual_ack: bool = False) -> "Stream":
        self = object.__new__(cls)
        args, deadline = self._setup(conn, chans, credit, ctx, timeout, manual_ack, Chan)
        self._call = await conn._start(P.STREAM, args, self._ctx, deadline, _BUDGET,
                                       P.KIND_STREAM, credit)
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

    def _add_credit(self, n: int) -> None:
        self._call.credit += n          # before the server can use it
        # with the loop iteration's requests, at the latest as the task waits; its OK
        # deferred (PROTOCOL.md §15): see chand.Stream._add_credit
        self._conn._post(P.CREDIT | P.DEFER, self._call.id, n, defer=True)

    async def recv(self) -> Tuple[int, Value, bool]:
        """The next (index, value, ok); see :meth:`chand.Stream.recv` (an ack channel's
        value is acknowledged as it is returned)."""
        index, v, ok, tag, _ = await self._recv()
        if tag:
            self._conn._ack(tag)
        return index, v, ok

    async def recv_msg(self) -> Tuple[int, Message]:
        """(index, :class:`chand.aio.Message`), keeping an ack channel's value in
        flight; see :meth:`chand.Stream.recv_msg`."""
        index, v, ok, tag, count = await self._recv()
        return index, Message(self.chans[index], v, ok, tag, count)

    async def _recv(self) -> Tuple[int, Value, bool, int, int]:
        if self._end is not None:
            raise raise_copy(self._end)
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
        if status == P.OK and len(res) in (3, 4, 5):
            self._taken += 1
            return conn._checked(lambda: _interim(self, res))
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
        raise raise_copy(self._end)

    async def items(self) -> AsyncIterator[Tuple[int, Any]]:
        """(index, value) for every value until every channel is closed; with
        ``manual_ack``, (index, :class:`chand.aio.Message`)."""
        while True:
            try:
                if self._manual:
                    index, m = await self.recv_msg()
                    v, ok = m, m.ok
                else:
                    index, v, ok = await self.recv()
            except Closed:
                if self._finished:
                    return
                raise
            if ok:
                yield index, v

    async def __aiter__(self) -> AsyncIterator[Any]:
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
            self._result = _link_end(self._conn, self._call)
        if isinstance(self._result, Error):
            raise raise_copy(self._result)
        return self._result

    async def __aenter__(self) -> "Link":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.running():
            self.cancel()


def _link_conn(chans: Sequence[Optional[Chan]]) -> Conn:
    return link_conn(chans, Chan, "chand.aio.Chan")


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
