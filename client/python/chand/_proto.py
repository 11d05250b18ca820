# SPDX-License-Identifier: BSD-2-Clause
"""The wire protocol of PROTOCOL.md, shared by the sync and asyncio clients.

Framing (§1), op numbers (§5, §11, §12, §14), status codes (§3), the
encoding of requests and values (§7), and the checking and decoding of
replies. Nothing here does I/O: the connections feed it bytes and call it
to build frames.

The client sets the deferred-reply bit of §15 on CREDIT only, whose reply
nobody waits for: the server writes that OK with the stream's next value
instead of on its own. Every other request asks for its reply at once, so
WANT is never needed.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import msgpack

from .errors import CloseError, Error, ErrorValue, Limit, ProtocolError, error_for_status

# ---- op numbers -------------------------------------------------------------------------

HELLO = 1
PING = 2
MAKE = 3
OPEN = 4
SEND = 5
RECV = 6
CLOSE = 7
LEN = 8
CAP = 9
SELECT = 10
CANCEL = 11
DELETE = 12
INFO = 13
STATS = 14
CHANNELS = 15
CLIENTS = 16
WAITERS = 17
UNBLOCK = 18
SHUTDOWN = 19
STREAM = 20
CREDIT = 21
ACK = 23
NACK = 24
TOUCH = 25
INFLIGHT = 26
CLUSTER_NODES = 27
OR = 32
OR_DONE = 33
TEE = 34
BRIDGE = 35
FAN_IN = 36
REPEAT = 37
TAKE = 38
FAN_OUT = 39

DEFER = 64
"""An op's bit 6 (PROTOCOL.md §15): the reply may be held and written with the next one.
Used for CREDIT only, whose reply nobody waits for (so no WANT is ever needed)."""

LINK_OPS = frozenset((OR, OR_DONE, TEE, BRIDGE, FAN_IN, REPEAT, TAKE, FAN_OUT))

OP_NAMES: Dict[int, str] = {
    HELLO: "HELLO", PING: "PING", MAKE: "MAKE", OPEN: "OPEN", SEND: "SEND", RECV: "RECV",
    CLOSE: "CLOSE", LEN: "LEN", CAP: "CAP", SELECT: "SELECT", CANCEL: "CANCEL",
    DELETE: "DELETE", INFO: "INFO", STATS: "STATS", CHANNELS: "CHANNELS",
    CLIENTS: "CLIENTS", WAITERS: "WAITERS", UNBLOCK: "UNBLOCK", SHUTDOWN: "SHUTDOWN",
    STREAM: "STREAM", CREDIT: "CREDIT", ACK: "ACK", NACK: "NACK", TOUCH: "TOUCH",
    INFLIGHT: "INFLIGHT", CLUSTER_NODES: "CLUSTER_NODES", OR: "OR", OR_DONE: "OR_DONE",
    TEE: "TEE", BRIDGE: "BRIDGE", FAN_IN: "FAN_IN", REPEAT: "REPEAT", TAKE: "TAKE",
    FAN_OUT: "FAN_OUT",
}

# ---- status codes (§3) ------------------------------------------------------------------

OK = 0
CLOSED = 1
DEADLINE_EXCEEDED = 2
CANCELED = 3
NOT_FOUND = 4
PROTOCOL = 9
SHUTTING_DOWN = 10
STARTED = 11

# ---- limits -------------------------------------------------------------------------------

VERSION = 1
DEFAULT_PORT = 7420
WAIT_MAX_US = 1 << 48            # the largest wait the server accepts (§4)
UINT32_MAX = (1 << 32) - 1
ACK_TAGS_MAX = 65536             # tags in one ACK (§16)
DEFAULT_MAX_DELIVER = 5          # MAKE's ack options' defaults (§16)
DEFAULT_MAX_UNACKED = 1000
DEFAULT_MAX_ACK_PENDING = 0
DEFAULT_MAX_FRAME = 2 << 20      # §8's default, until HELLO says otherwise
READ_LIMIT = 64 << 20            # the largest reply frame accepted, at least
EXT_CHAN = 1
EXT_ERROR = 2

_LEN = struct.Struct(">I")

# ---- values ---------------------------------------------------------------------------------


class ChanRef:
    """A channel reference as decoded, before a connection binds it to a handle."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class BaseChan:
    """What every channel handle (sync or asyncio) shares: a name, and the close error
    its last receive with ``ok`` false found.

    Sending any handle sends a reference to its channel (ext type 1).
    """

    __slots__ = ("_name", "_err")

    def __init__(self, name: str) -> None:
        self._name = name
        self._err: Optional[CloseError] = None

    @property
    def name(self) -> str:
        """The channel's name (for an anonymous channel, ``~`` and 32 hex digits, then
        ``@`` and the node's name on a cluster node)."""
        return self._name

    _conn: Any      # the subclass's connection

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BaseChan) and other._conn is self._conn and \
            other._name == self._name

    def __hash__(self) -> int:
        return hash((id(self._conn), self._name))

    def _recv_result(self, res: List[Any]) -> Tuple[Any, bool]:
        """A RECV reply's (value, ok); ok false records the close error, and a tagged
        value is acknowledged (see :func:`received`)."""
        c = self._conn

        def decode() -> Tuple[Any, bool]:
            v, ok, err = received(res, 0, "RECV", c._ack)
            if not ok:
                self._err = err
            return c._value(v), ok
        return c._checked(decode)

    def _recv_msg_result(self, res: List[Any], message: Callable[..., Any]) -> Any:
        """A RECV reply as a message (made by message(chan, value, ok, tag, count)),
        its value left in flight."""
        c = self._conn

        def decode() -> Any:
            v, ok, err, tag, count = received_msg(res, 0, "RECV")
            if not ok:
                self._err = err
            return message(self, c._value(v), ok, tag, count)
        return c._checked(decode)

    @property
    def err(self) -> Optional[CloseError]:
        """Why the channel ended: Go's ``context.Cause``, libchanclient's ``chan_err``.

        The :class:`CloseError` the channel was closed with, as found by the last
        receive through this handle object that returned ``ok`` false (``recv``,
        ``try_recv``, a range, a select receive case, a stream's close report); None
        when that close carried no error, or while no such receive has returned.
        Receives that return a value leave it as it is.
        """
        return self._err


def _ext_hook(code: int, data: bytes) -> Any:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"ext type {code} holds invalid UTF-8") from None
    if code == EXT_CHAN:
        return ChanRef(text)
    if code == EXT_ERROR:
        return ErrorValue(text)
    raise ProtocolError(f"unknown ext type {code} in a reply")


def encode_value(value: Any, max_value: int) -> Any:
    """The msgpack object for a value to send (bytes, str as UTF-8, or a channel)."""
    if type(value) is not bytes:        # bytes, the common case, with one test
        if isinstance(value, BaseChan):
            return msgpack.ExtType(EXT_CHAN, value.name.encode("utf-8"))
        if isinstance(value, str):
            value = value.encode("utf-8")
        elif isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value)
        elif isinstance(value, ErrorValue):
            raise TypeError("error values are made by the server only; they cannot be sent")
        else:
            raise TypeError(f"a value is bytes, str or a channel, not {type(value).__name__}")
    if len(value) > max_value:
        raise Limit(f"value of {len(value)} bytes is over the server's max_value {max_value}")
    return value


def encode_close_error(error: Any) -> List[Any]:
    """CLOSE's arguments after the name: none for a plain close, else ``[[code, message]]``.

    error is None, a :class:`CloseError` or a (code, message) tuple, checked as
    CloseError checks it (ValueError).
    """
    if error is None:
        return []
    if isinstance(error, tuple):
        if len(error) != 2:
            raise ValueError("a close error is a (code, message) tuple")
        error = CloseError(*error)
    elif not isinstance(error, CloseError):
        raise TypeError("a close error is a chand.CloseError or a (code, message) tuple, "
                        f"not {type(error).__name__}")
    return [[error.code, error.message]]


def check_name(name: Any) -> str:
    """Check a channel name on the client side (the server checks it too)."""
    if not isinstance(name, str):
        raise TypeError(f"a channel name is a str, not {type(name).__name__}")
    return name


# ---- frames -----------------------------------------------------------------------------------


def frame(obj: Sequence[Any]) -> bytes:
    """One frame: the 4-byte big-endian length, then the msgpack array."""
    body = msgpack.packb(obj, use_bin_type=True)
    return _LEN.pack(len(body)) + body


frame_head = _LEN.pack
"""A frame's head for a body of n bytes (for a connection packing with a Packer of its own)."""


def frame_length(buf: Union[bytes, bytearray], limit: int, pos: int = 0) -> int:
    """The body length from the frame head at buf[pos:pos + 4], checked against limit."""
    (n,) = _LEN.unpack_from(buf, pos)
    if n == 0:
        raise ProtocolError("the server sent a frame of length 0")
    if n > limit:
        raise ProtocolError(f"the server sent a frame of {n} bytes (limit {limit})")
    return n


class ReplyReader:
    """A connection's input: the bytes read, decoded into replies (id, status, results)
    frame by frame as they complete. One msgpack streaming unpacker is fed every
    frame's body: reused, it costs under two thirds of an unpackb a frame. One thread
    at a time feeds it (the sync connection's leader, the asyncio loop)."""

    __slots__ = ("_buf", "_u")

    _BIG = 1 << 20      # an unpacker that took a body this long is replaced: its buffer stays

    def __init__(self) -> None:
        self._buf = bytearray()         # read, not yet a whole frame
        self._u = self._unpacker()

    @staticmethod
    def _unpacker() -> msgpack.Unpacker:
        # max_buffer_size 0: no limit of its own; frame_length bounds what is fed
        return msgpack.Unpacker(raw=False, ext_hook=_ext_hook, use_list=True,
                                strict_map_key=True, max_buffer_size=0)

    @property
    def pending(self) -> int:
        """Bytes read that are not yet a whole frame."""
        return len(self._buf)

    def feed(self, data: Union[bytes, bytearray, memoryview],
             limit: int) -> List[Tuple[int, int, List[Any]]]:
        """The replies of the frames data completes; ProtocolError for a bad frame
        (:func:`frame_length`, :meth:`body`), after which the reader is not to be fed
        again (the connection breaks)."""
        buf = self._buf
        buf += data
        replies = []
        head = _LEN.unpack_from
        pos, end = 0, len(buf)
        while end - pos >= 4:
            (n,) = head(buf, pos)
            if not 0 < n <= limit:
                frame_length(buf, limit, pos)       # raises, saying which
            if end - pos - 4 < n:
                break
            pos += 4
            replies.append(self.body(buf[pos:pos + n]))
            pos += n
        del buf[:pos]
        return replies

    def body(self, body: Union[bytes, bytearray]) -> Tuple[int, int, List[Any]]:
        """A reply body: (id, status, results); ProtocolError for anything malformed,
        after which the reader is not to be used again (its unpacker may hold the rest)."""
        u, n = self._u, len(body)
        try:
            at = u.tell()
            u.feed(body)
            obj = u.unpack()
            if u.tell() - at != n:
                raise ValueError(f"{n - (u.tell() - at)} bytes after the reply")
        except ProtocolError:
            raise
        except Exception as e:  # msgpack's own errors: OutOfData, FormatError, StackError, ...
            raise ProtocolError(f"malformed reply frame: {e or type(e).__name__}") from None
        if n >= self._BIG:
            self._u = self._unpacker()
        if not isinstance(obj, list) or len(obj) < 2:
            raise ProtocolError("a reply frame is not an array of at least 2 elements")
        rid, status = obj[0], obj[1]
        if type(rid) is not int or rid < 0 or type(status) is not int:
            raise ProtocolError("a reply's id or status is not an integer")
        return rid, status, obj[2:]


# ---- deadlines ----------------------------------------------------------------------------


def now_ns() -> int:
    """The monotonic clock of deadlines, in ns."""
    return time.monotonic_ns()


def wait_us(deadline_ns: Optional[int], now: int) -> Optional[int]:
    """The request's wait for a deadline: µs rounded up (never 0), capped; None = forever.

    The caller has checked that the deadline is still ahead.
    """
    if deadline_ns is None:
        return None
    left = deadline_ns - now
    return min((left + 999) // 1000, WAIT_MAX_US)


def reply_error(status: int, results: List[Any]) -> Error:
    """The exception for an error reply [message] or [message, index]."""
    message = results[0] if results and isinstance(results[0], str) else ""
    index = None
    if len(results) >= 2 and type(results[1]) is int:
        index = results[1]
    return error_for_status(status, message, index)


# ---- call kinds: which replies are final --------------------------------------------------

KIND_PLAIN = 0
KIND_LINK = 1
KIND_STREAM = 2


def is_final(kind: int, status: int, nresults: int) -> bool:
    """Whether a reply ends its request (links and streams get interim replies first)."""
    if kind == KIND_LINK:
        return status != STARTED
    if kind == KIND_STREAM:     # an interim value or close report, with its error or not
        return not (status == OK and nresults in (3, 4, 5))
    return True


def check_interim(kind: int, interims: int, credit: int) -> None:
    """An interim reply is the n-th of its request: more than a link's one STARTED, or
    more stream values than the credit granted, breaks the protocol (and would let a
    server grow the client's memory without bound)."""
    if kind == KIND_LINK and interims > 1:
        raise ProtocolError("a link was answered STARTED twice")
    if kind == KIND_STREAM and interims > credit:
        raise ProtocolError(f"a stream got {interims} values for a credit of {credit}")


def route_reply(calls: Dict[int, Any], abandoned: Dict[int, int], rid: int, status: int,
                results: List[Any]) -> Optional[Any]:
    """File one reply, sync and asyncio alike: the call it belongs to (its ``replies``,
    ``interims``, ``done`` updated, to be woken by the caller), or None when there is
    nobody to wake (a SHUTTING_DOWN notice, or the end of an abandoned request).

    A connection notice other than SHUTTING_DOWN, or a reply to an id that is not
    pending, raises: the connection is unusable.
    """
    if rid == 0:        # a connection notice (§2)
        if status == SHUTTING_DOWN:
            return None     # pending requests get replies of their own
        raise reply_error(status, results)
    call = calls.get(rid)
    if call is None:
        kind = abandoned.get(rid)
        if kind is None:
            raise ProtocolError(f"the server replied to request id {rid}, which is not pending")
        if is_final(kind, status, len(results)):
            del abandoned[rid]
        return None
    final = call.kind == KIND_PLAIN or is_final(call.kind, status, len(results))
    if not final:
        call.interims += 1
        check_interim(call.kind, call.interims, call.credit)
    call.replies.append((status, results))
    if final:
        del calls[rid]
        call.done = True
    return call


# ---- result checking ------------------------------------------------------------------------


class Shape:
    """Checks of reply results; each raises ProtocolError on a mismatch."""

    @staticmethod
    def arity(results: List[Any], n: int, what: str) -> None:
        if len(results) != n:
            raise ProtocolError(f"{what} reply has {len(results)} results, not {n}")

    @staticmethod
    def uint(v: Any, what: str) -> int:
        if type(v) is not int or v < 0:
            raise ProtocolError(f"{what} is not an unsigned integer")
        return v

    @staticmethod
    def int_(v: Any, what: str) -> int:
        if type(v) is not int:
            raise ProtocolError(f"{what} is not an integer")
        return v

    @staticmethod
    def boolean(v: Any, what: str) -> bool:
        if type(v) is not bool:
            raise ProtocolError(f"{what} is not a boolean")
        return v

    @staticmethod
    def string(v: Any, what: str) -> str:
        if not isinstance(v, str):
            raise ProtocolError(f"{what} is not a string")
        return v

    @staticmethod
    def mapping(v: Any, what: str) -> Dict[str, Any]:
        if not isinstance(v, dict):
            raise ProtocolError(f"{what} is not a map")
        return v

    @staticmethod
    def array(v: Any, what: str) -> List[Any]:
        if not isinstance(v, list):
            raise ProtocolError(f"{what} is not an array")
        return v

    @staticmethod
    def value(v: Any, what: str) -> Any:
        if v is None or isinstance(v, (bytes, ChanRef, ErrorValue)):
            return v
        raise ProtocolError(f"{what} is not a value (bin, channel or error)")


def close_error(v: Any, what: str = "close error") -> CloseError:
    """A close error as replies carry it: ``[code, message]``."""
    if not isinstance(v, list) or len(v) != 2:
        raise ProtocolError(f"{what} is not [code, message]")
    code = Shape.uint(v[0], f"{what}'s code")
    message = Shape.string(v[1], f"{what}'s message")
    try:
        return CloseError(code, message)
    except ValueError as e:
        raise ProtocolError(f"{what}: {e}") from None


def received_msg(res: List[Any], first: int, what: str,
                 nil_ok: bool = False) -> Tuple[Any, bool, Optional[CloseError], int, int]:
    """A receive's ``value, ok`` (from res[first] on), the close error a reply one
    result longer carries (PROTOCOL.md §5 CLOSE), and the tag and delivery count a
    reply two results longer carries (a value from an ack channel, §16):
    (value, ok, error or None, tag, count); tag and count are 0 without them. A
    value comes with ok true and nil with ok false (nil_ok: or true, a SELECT's
    send case or default)."""
    n = len(res) - first
    if n == 2:      # a plain value or close report, most replies: checked here, no calls
        value, ok = res[first], res[first + 1]
        if type(ok) is bool and (type(value) is bytes or value is None) and ok == (value is not None):
            return value, ok, None, 0, 0
    if n not in (2, 3, 4):
        raise ProtocolError(f"{what} reply has {len(res)} results, not {first + 2}, "
                            f"{first + 3} or {first + 4}")
    value = Shape.value(res[first], "value")
    ok = Shape.boolean(res[first + 1], "ok")
    if n == 2:
        if ok != (value is not None) and not (nil_ok and ok):
            raise ProtocolError(f"{what}: a value must come with ok true, nil with ok false")
        return value, ok, None, 0, 0
    if n == 4:
        tag = Shape.uint(res[first + 2], "tag")
        count = Shape.uint(res[first + 3], "count")
        if not ok or tag == 0 or count == 0:
            raise ProtocolError(f"{what}: an ack channel's value must have ok true, "
                                "tag and count 1 or more")
        return value, ok, None, tag, count
    if ok or value is not None:
        raise ProtocolError(f"{what} reply carries a close error with a value")
    return None, False, close_error(res[first + 2]), 0, 0


def received(res: List[Any], first: int, what: str,
             ack: Optional[Callable[[int], None]] = None,
             nil_ok: bool = False) -> Tuple[Any, bool, Optional[CloseError]]:
    """:func:`received_msg` for the untagged receives: (value, ok, error or None). A
    tagged value (from an ack channel) is acknowledged by ack(tag) as it is returned,
    as libchanclient's chan_recv does."""
    value, ok, err, tag, _ = received_msg(res, first, what, nil_ok)
    if tag and ack is not None:
        ack(tag)
    return value, ok, err


# ---- ack channels (§16) ---------------------------------------------------------------------


def _seconds_us(v: Any, what: str, low: int) -> int:
    """Seconds (int or float) to µs rounded up, within low to 2^48 µs (ValueError)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(f"{what} is a number of seconds")
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is a finite number of seconds")
    us = -int(-v * 1e6 // 1)
    if not low <= us <= WAIT_MAX_US:
        raise ValueError(f"{what} is {low} µs to 2^48 µs, not {v!r} s")
    return us


def ack_opts(ack_wait: Optional[float], max_deliver: int, max_unacked: int,
             dead_letter: Optional[str],
             max_ack_pending: int = DEFAULT_MAX_ACK_PENDING,
             durable: bool = False) -> Optional[Dict[str, Any]]:
    """MAKE's third argument: None for a plain channel (ack_wait None, not durable), else
    the map of §16. ack_wait is in seconds (rounded up to µs). ValueError for a value out
    of range, or for ack options without ack_wait."""
    if type(durable) is not bool:
        raise ValueError("durable is a bool")
    if ack_wait is None:
        if max_deliver != DEFAULT_MAX_DELIVER or max_unacked != DEFAULT_MAX_UNACKED or \
                max_ack_pending != DEFAULT_MAX_ACK_PENDING or dead_letter is not None:
            raise ValueError("max_deliver, max_unacked, max_ack_pending and dead_letter "
                             "need ack_wait")
        return {"durable": True} if durable else None
    us = _seconds_us(ack_wait, "ack_wait", 1)
    for key, v in (("max_deliver", max_deliver), ("max_unacked", max_unacked),
                   ("max_ack_pending", max_ack_pending)):
        if type(v) is not int or not 0 <= v <= UINT32_MAX:
            raise ValueError(f"{key} is an int from 0 (unlimited) to 2^32-1")
    m: Dict[str, Any] = {"ack_wait": us, "max_deliver": max_deliver,
                         "max_unacked": max_unacked}
    if max_ack_pending != 0:
        m["max_ack_pending"] = max_ack_pending  # only when set, as libchanclient: older servers
    if dead_letter is not None:
        m["dead_letter"] = check_name(dead_letter)
    if durable:
        m["durable"] = True  # only when set, as max_ack_pending
    return m


def check_tags(tags: Sequence[Any]) -> List[int]:
    """ACK's tag list: 1 to 65,536 tags, each an int of 1 or more (ValueError)."""
    out = list(tags)
    if not 1 <= len(out) <= ACK_TAGS_MAX:
        raise ValueError(f"ACK takes 1 to {ACK_TAGS_MAX} tags, not {len(out)}")
    for t in out:
        check_tag(t)
    return out


def check_tag(tag: Any) -> int:
    """A tag to ACK, NACK or TOUCH: an int of 1 or more (0 is a plain channel's value's,
    which has none: ValueError, as libchanclient's CHAN_EINVAL)."""
    if type(tag) is not int or not 1 <= tag < (1 << 64):
        raise ValueError("a tag is an int of 1 or more (a plain channel's value has none)")
    return tag


def delay_us(delay: float) -> int:
    """NACK's delay, seconds to µs rounded up (0 to 2^48 µs, ValueError)."""
    return _seconds_us(delay, "delay", 0)


class BaseMessage:
    """What a received message is, in both APIs: :attr:`value`, :attr:`ok`, and for a
    value of an ack channel its :attr:`tag` and delivery :attr:`count` (0 and 0 for a
    plain channel's value, or with ``ok`` false)."""

    __slots__ = ("chan", "value", "ok", "tag", "count", "_settled")

    def __init__(self, chan: Any, value: Any, ok: bool, tag: int, count: int) -> None:
        self.chan = chan            # the handle it was received through
        self.value = value
        self.ok = ok
        self.tag = tag
        self.count = count
        self._settled = False

    @property
    def settled(self) -> bool:
        """True once this object acked or nacked its value (or it has no tag)."""
        return self._settled or self.tag == 0

    def __iter__(self) -> Any:
        """``v, ok = msg`` as from ``recv()``."""
        return iter((self.value, self.ok))

    def __repr__(self) -> str:
        return (f"<chand.Message tag={self.tag} count={self.count} ok={self.ok} "
                f"value={self.value!r}>")


# ---- public records -----------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What HELLO said: the negotiated version, the server, and its limits."""

    version: int
    server: str
    max_frame: int
    max_value: int
    max_pending: int
    max_select_cases: int
    max_stream_credit: int  # 0: the server has no streams


@dataclass(frozen=True)
class ChanInfo:
    """A channel as INFO (and CHANNELS) describe it."""

    name: str
    len: int
    cap: int
    closed: bool
    anonymous: bool
    senders: int    # waiting, select cases included
    receivers: int
    bytes: int      # buffered bytes
    close_error: Optional[CloseError] = None    # the error it was closed with, if any
    ack_wait: Optional[float] = None    # seconds; None: not an ack channel (§16)
    inflight: int = 0                   # values in flight (ack channel)
    redelivered: int = 0                # values given back and delivered again
    dead_lettered: int = 0              # values sent to the dead letter
    max_unacked: int = 0                # its limits (ack channel); 0: none
    max_ack_pending: int = 0


@dataclass(frozen=True)
class InflightInfo:
    """One value in flight on an ack channel (INFLIGHT): the connection holding it, its
    tag, its delivery count and how long it has been held."""

    client: int
    tag: int
    count: int
    age_ms: int


@dataclass(frozen=True)
class ClientInfo:
    """One connection of the server (CLIENTS)."""

    id: int
    peer: str
    name: str
    pending: int
    age_ms: int
    unsent: int


@dataclass(frozen=True)
class NodeInfo:
    """One live node of a cluster (CLUSTER_NODES, PROTOCOL.md §17), as the answering
    node's mirror of etcd has it."""

    name: str
    advertise: str          # "HOST:PORT"; "" when its key is malformed
    owned: int              # the channels it owns
    self: bool              # the node that answered
    lease_left_ms: int      # for self: until etcd may expire its lease; else 0


@dataclass(frozen=True)
class Waiter:
    """One pending request (WAITERS): ``cases`` is a list of (dir, name or None), dir 0 = recv;
    ``home`` names the cluster node a remote waiter came from (a cross-node select's group or a
    forwarded request), None for a local client's."""

    client: int
    request: int
    op: str
    waited_ms: int
    cases: List[Tuple[int, Optional[str]]] = field(default_factory=list)
    home: Optional[str] = None


def _get(m: Dict[str, Any], key: str, check: Callable[[Any, str], Any], default: Any = None,
         required: bool = True) -> Any:
    if key not in m:
        if required:
            raise ProtocolError(f"reply map lacks {key!r}")
        return default
    return check(m[key], key)


def server_info(m: Dict[str, Any]) -> ServerInfo:
    """HELLO's map; the negotiated version must be one this client speaks."""
    u = Shape.uint
    version = _get(m, "version", u)
    if not 1 <= version <= VERSION:
        raise ProtocolError(f"the server negotiated protocol version {version}; "
                            f"this client speaks 1 to {VERSION}")
    return ServerInfo(
        version=version,
        server=_get(m, "server", Shape.string, "", False),
        max_frame=_get(m, "max_frame", u, DEFAULT_MAX_FRAME, False),
        max_value=_get(m, "max_value", u, 1 << 20, False),
        max_pending=_get(m, "max_pending", u, 4096, False),
        max_select_cases=_get(m, "max_select_cases", u, 1024, False),
        max_stream_credit=_get(m, "max_stream_credit", u, 0, False),
    )


def chan_info(m: Any) -> ChanInfo:
    m = Shape.mapping(m, "channel info")
    u, b = Shape.uint, Shape.boolean
    return ChanInfo(
        name=_get(m, "name", Shape.string), len=_get(m, "len", u), cap=_get(m, "cap", u),
        closed=_get(m, "closed", b), anonymous=_get(m, "anonymous", b, False, False),
        senders=_get(m, "senders", u, 0, False), receivers=_get(m, "receivers", u, 0, False),
        bytes=_get(m, "bytes", u, 0, False),
        close_error=_get(m, "close_error", close_error, None, False),
        ack_wait=_get(m, "ack_wait", lambda v, k: Shape.uint(v, k) / 1e6, None, False),
        inflight=_get(m, "inflight", u, 0, False),
        redelivered=_get(m, "redelivered", u, 0, False),
        dead_lettered=_get(m, "dead_lettered", u, 0, False),
        max_unacked=_get(m, "max_unacked", u, 0, False),
        max_ack_pending=_get(m, "max_ack_pending", u, 0, False),
    )


def inflight_info(m: Any) -> InflightInfo:
    m = Shape.mapping(m, "inflight entry")
    u = Shape.uint
    return InflightInfo(client=_get(m, "client", u), tag=_get(m, "tag", u),
                        count=_get(m, "count", u, 0, False),
                        age_ms=_get(m, "age_ms", u, 0, False))


def client_info(m: Any) -> ClientInfo:
    m = Shape.mapping(m, "client info")
    u = Shape.uint
    return ClientInfo(
        id=_get(m, "id", u), peer=_get(m, "peer", Shape.string, "", False),
        name=_get(m, "name", Shape.string, "", False), pending=_get(m, "pending", u, 0, False),
        age_ms=_get(m, "age_ms", u, 0, False), unsent=_get(m, "unsent", u, 0, False),
    )


def node_info(m: Any) -> NodeInfo:
    m = Shape.mapping(m, "node info")
    u = Shape.uint
    return NodeInfo(
        name=_get(m, "name", Shape.string), advertise=_get(m, "advertise", Shape.string),
        owned=_get(m, "owned", u, 0, False), self=_get(m, "self", u, 0, False) == 1,
        lease_left_ms=_get(m, "lease_left_ms", u, 0, False),
    )


def _op_name(v: Any, what: str) -> str:
    if isinstance(v, str):
        return v
    return OP_NAMES.get(Shape.uint(v, what), str(v))


def waiter(m: Any) -> Waiter:
    m = Shape.mapping(m, "waiter")
    cases: List[Tuple[int, Optional[str]]] = []
    for c in _get(m, "cases", Shape.array, [], False):
        c = Shape.array(c, "case")
        if len(c) != 2 or (c[1] is not None and not isinstance(c[1], str)):
            raise ProtocolError("a waiter's case is not [dir, name | nil]")
        cases.append((Shape.uint(c[0], "dir"), c[1]))
    return Waiter(client=_get(m, "client", Shape.uint), request=_get(m, "request", Shape.uint),
                  op=_get(m, "op", _op_name), waited_ms=_get(m, "waited_ms", Shape.uint, 0, False),
                  cases=cases, home=_get(m, "home", Shape.string, None, False))


# ---- link outputs -----------------------------------------------------------------------------

OutSpec = Optional[Tuple[Optional[str], int]]


def link_outs(outs: Optional[Sequence[OutSpec]], n: int) -> Optional[List[Any]]:
    """The `outs` argument of a link request (§12)."""
    if outs is None:
        return None
    outs = list(outs)
    if len(outs) != n:
        raise ValueError(f"this link has {n} output(s), {len(outs)} given")
    wire: List[Any] = []
    for o in outs:
        if o is None:
            wire.append(None)
            continue
        name, cap = o
        if name is not None:
            check_name(name)
        if type(cap) is not int or cap < 0:
            raise ValueError("an output's cap is a non-negative int")
        wire.append([name, cap])
    return wire


def link_started(results: List[Any], nouts: int) -> List[str]:
    """The output names of a STARTED reply."""
    Shape.arity(results, 1, "STARTED")
    names = Shape.array(results[0], "STARTED's outputs")
    if len(names) != nouts or not all(isinstance(s, str) for s in names):
        raise ProtocolError("STARTED does not name the link's outputs")
    return names


Value = Union[bytes, BaseChan, ErrorValue, None]
