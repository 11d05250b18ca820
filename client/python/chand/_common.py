# SPDX-License-Identifier: BSD-2-Clause
"""What the sync and the asyncio connections share above the wire: a call's record,
the connection's checks, and the decoding of replies into results.

Nothing here does I/O or waits; each client's Conn inherits :class:`BaseConn` and
adds its own way of writing requests and waiting for replies.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, List, Optional, Sequence, Tuple

from . import _proto as P
from ._proto import (ChanInfo, ClientInfo, InflightInfo, NodeInfo, ServerInfo, Shape, Value,
                     Waiter)
from .context import Context, background, deadline_of
from .errors import CloseError, Error, ProtocolError

__all__ = ["BaseCall", "BaseConn", "BaseStream", "link_conn", "raise_copy"]


def raise_copy(e: Error) -> Error:
    """A fresh exception of e's class and text (a stored one must not be re-raised twice)."""
    c = type(e)(e.message, e.index)
    if e.status is not None and type(e).status != e.status:
        c.status = e.status
    return c


class BaseCall:
    """One request id: its replies (one, or interim ones then the final) and how it ended."""

    __slots__ = ("id", "op", "kind", "replies", "done", "ctx_err", "cancel_sent", "error",
                 "interims", "credit")

    def __init__(self, op: int, kind: int) -> None:
        self.id = 0
        self.op = op
        self.kind = kind
        self.replies: Deque[Tuple[int, List[Any]]] = deque()   # (status, results)
        self.done = False                   # the final reply came, or the connection broke
        self.ctx_err: Optional[Error] = None
        self.cancel_sent = False
        self.error: Optional[Error] = None  # the connection's failure
        self.interims = 0                   # interim replies received
        self.credit = 0                     # a stream's credit granted so far


class BaseConn:
    """The connection state both clients keep, and the checks of their replies."""

    _info: ServerInfo
    _dead: Optional[Error]
    _chan_class: Callable[..., Any]         # the API's channel handle, for references

    @property
    def info(self) -> ServerInfo:
        """What HELLO said: the server, the protocol version and the server's limits."""
        return self._info

    def _break(self, err: Error) -> None:
        raise NotImplementedError

    def _check_dead(self) -> None:
        if self._dead is not None:
            raise raise_copy(self._dead)

    def _checked(self, fn: Callable[[], Any]) -> Any:
        """Run a reply decoder; a reply of the wrong shape breaks the connection."""
        try:
            return fn()
        except ProtocolError as e:
            self._break(e)
            raise

    def _value(self, v: Any) -> Value:
        """A received value, a channel reference made a handle on this connection."""
        if isinstance(v, P.ChanRef):
            return self._chan_class(self, v.name)
        return v

    def _uint(self, res: List[Any], what: str) -> int:
        """The one unsigned result of a reply."""
        return self._checked(lambda: Shape.uint(res[0] if len(res) == 1 else None, what))

    def _decoded(self, fn: Callable[[List[Any]], Any], res: List[Any]) -> Any:
        """fn(res) for one of the decoders below, checked."""
        return self._checked(lambda: fn(res))


class BaseStream:
    """What the sync and the asyncio stream share (see :class:`chand.Stream`): checking
    the arguments, the credit's accounting, and how the stream ended. No I/O."""

    _call: Any                  # the STREAM request's call, set by the subclass
    _token: Optional[object]    # its context watch

    def _setup(self, conn: Any, chans: Sequence[Any], credit: int, ctx: Optional[Context],
               timeout: Optional[float], manual_ack: bool,
               chan_class: type) -> Tuple[List[Any], Optional[int]]:
        """Check the arguments (ValueError) and set the state up; returns STREAM's
        arguments and the deadline."""
        chans = list(chans)
        if not chans:
            raise ValueError("a stream needs at least one channel")
        for ch in chans:
            if not isinstance(ch, chan_class) or ch._conn is not conn:
                raise ValueError("every channel of a stream must be a Chan on its connection")
        if type(credit) is not int or credit < 1:
            raise ValueError("credit is an int of at least 1")
        self._conn = conn
        self.chans = chans
        self._manual = bool(manual_ack)
        self._credit = credit
        self._granted = credit
        self._taken = 0
        self._ctx = ctx or background()
        self._end: Optional[Error] = None
        self._finished = False
        self._errs: Dict[int, CloseError] = {}
        self.delivered: Optional[int] = None
        return [[c.name for c in chans], credit], deadline_of(self._ctx, timeout)

    def _grant(self, waiting: bool) -> None:
        """Grant the credit of the values taken once the stream has to wait or half the
        credit was taken (the subclass's _add_credit sends it)."""
        held = self._granted - self._taken      # never below the server's count
        if held < self._credit and (waiting or held * 2 <= self._credit):
            n = self._credit - held
            self._granted += n
            self._add_credit(n)

    def _add_credit(self, n: int) -> None:
        raise NotImplementedError

    def _stop(self, err: Error) -> None:
        if self._end is None:
            self._end = err
            self._ctx._unwatch(self._token)

    def err(self, index: int = 0) -> Optional[CloseError]:
        """The error chans[index] was closed with, once a receive reported it closed
        (libchanclient's ``chan_stream_err``); None when it was closed without one or
        is not reported closed yet."""
        return self._errs.get(index)


def link_conn(chans: Sequence[Any], chan_class: type, class_name: str) -> Any:
    """The one connection of a link's channels (None entries skipped): TypeError for
    a channel that is not a chan_class (named class_name), ValueError for two
    connections or none."""
    conn = None
    for ch in chans:
        if ch is None:
            continue
        if not isinstance(ch, chan_class):
            raise TypeError(f"a link's channel is a {class_name}, not {type(ch).__name__}")
        if conn is None:
            conn = ch._conn
        elif ch._conn is not conn:
            raise ValueError("every channel of a link must be on one connection")
    if conn is None:
        raise ValueError("a link needs a channel")
    return conn


# ---- replies into results (each raises ProtocolError on a mismatch) ------------------------


def hello_args(client_name: str, token: Optional[str],
               caps: Optional[Dict[str, Any]]) -> List[Any]:
    """HELLO's arguments; caps (a cluster's node connection: ``{"moved": True}``) only
    when given, so that a plain HELLO stays the three-argument form."""
    args: List[Any] = [P.VERSION, client_name, None if token is None else {"token": token}]
    if caps is not None:
        args.append(caps)
    return args


def server_info(res: List[Any]) -> ServerInfo:
    return P.server_info(Shape.mapping(res[0] if len(res) == 1 else None, "HELLO's info"))


def made(res: List[Any]) -> Tuple[str, int]:
    """MAKE's (name, cap)."""
    Shape.arity(res, 3, "MAKE")
    return Shape.string(res[0], "name"), Shape.uint(res[1], "cap")


def inflight(res: List[Any]) -> Tuple[List[InflightInfo], int]:
    Shape.arity(res, 2, "INFLIGHT")
    return ([P.inflight_info(m) for m in Shape.array(res[0], "inflight")],
            Shape.uint(res[1], "total"))


def stats(res: List[Any]) -> Dict[str, int]:
    Shape.arity(res, 1, "STATS")
    m = Shape.mapping(res[0], "stats")
    return {Shape.string(k, "key"): Shape.uint(v, k) for k, v in m.items()}


def channels(res: List[Any]) -> Tuple[List[ChanInfo], int]:
    Shape.arity(res, 2, "CHANNELS")
    return ([P.chan_info(m) for m in Shape.array(res[0], "channels")],
            Shape.uint(res[1], "matched"))


def clients(res: List[Any]) -> List[ClientInfo]:
    Shape.arity(res, 1, "CLIENTS")
    return [P.client_info(m) for m in Shape.array(res[0], "clients")]


def cluster_nodes(res: List[Any]) -> List[NodeInfo]:
    Shape.arity(res, 1, "CLUSTER_NODES")
    return [P.node_info(m) for m in Shape.array(res[0], "nodes")]


def waiters(res: List[Any]) -> Tuple[List[Waiter], int]:
    Shape.arity(res, 2, "WAITERS")
    return ([P.waiter(m) for m in Shape.array(res[0], "waiters")],
            Shape.uint(res[1], "total"))


def chan_info(res: List[Any]) -> ChanInfo:
    return P.chan_info(res[0] if len(res) == 1 else None)
