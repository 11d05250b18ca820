# SPDX-License-Identifier: BSD-2-Clause
"""Exceptions and error values of the chand client.

Every failure the server reports is an exception of its own class, one per
wire status of PROTOCOL.md §3, all subclasses of :class:`Error`: catch
``chand.Closed`` where Go would compare with a closed-channel panic,
``chand.DeadlineExceeded`` and ``chand.Canceled`` where Go checks
``ctx.Err()``. Each carries the server's message and, for the errors of a
SELECT case or a stream's channel, the index of that case.

An :class:`ErrorValue` is different: it is an error travelling *as a value*
(PROTOCOL.md §7, ext type 2), made by the server when a fan-out stage fails
or a bridge meets a bad reference. A receive that yields one succeeded; the
value is returned, never raised, like the notes' ``Result`` type.

A :class:`CloseError` is the error a channel was closed with (PROTOCOL.md
§5 CLOSE): the outcome of the whole stream, Go's ``context.Cause``. It is
not raised either: a receive that finds the channel closed and drained
returns ``ok`` false as always, and the handle's ``err`` tells why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Type

__all__ = [
    "Error",
    "Closed",
    "DeadlineExceeded",
    "Canceled",
    "NotFound",
    "Exists",
    "PermissionDenied",
    "BadRequest",
    "Limit",
    "ProtocolError",
    "ShuttingDown",
    "ConnectionLost",
    "DialError",
    "ErrorValue",
    "CloseError",
    "CLOSE_MESSAGE_MAX",
]

CLOSE_MESSAGE_MAX = 1024
"""The longest message of a :class:`CloseError`, in bytes of UTF-8."""


class Error(Exception):
    """The base of every chand error.

    ``message`` is the server's human-readable text (or the client's own);
    ``index`` is the SELECT case or stream channel the error is about, or
    ``None``; ``status`` is the wire status code (``None`` for errors the
    client makes itself, such as :class:`ConnectionLost`).
    """

    status: Optional[int] = None
    code: Optional[int] = None
    """libchanclient's error code for the same failure (``CHAN_E*`` of chanclient.h,
    e.g. -122 for :class:`Unavailable`), for logs and programs that speak both;
    None where libchanclient has none (:class:`Moved`: it follows those itself)."""

    def __init__(self, message: str = "", index: Optional[int] = None,
                 status: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        text = self.message or type(self).__name__
        if self.index is not None:
            text += f" (case {self.index})"
        return text

    def __repr__(self) -> str:
        extra = f", index={self.index}" if self.index is not None else ""
        return f"{type(self).__name__}({self.message!r}{extra})"


class Closed(Error):
    """CLOSED (1): send on, or close of, a closed channel."""

    status = 1


class DeadlineExceeded(Error):
    """DEADLINE_EXCEEDED (2): the deadline passed before the operation could complete."""

    status = 2


class Canceled(Error):
    """CANCELED (3): the context was cancelled, or an administrator unblocked the request."""

    status = 3


class NotFound(Error):
    """NOT_FOUND (4): no such channel (or it was deleted while the operation waited)."""

    status = 4


class Exists(Error):
    """EXISTS (5): MAKE of an existing name with another capacity."""

    status = 5


class PermissionDenied(Error):
    """PERMISSION_DENIED (6): the client's identity lacks the right."""

    status = 6


class BadRequest(Error):
    """BAD_REQUEST (7): the server rejected the request (a bad name, ...)."""

    status = 7


class Limit(Error):
    """LIMIT (8): a server limit was hit (value size, capacity, pending requests...)."""

    status = 8


class ProtocolError(Error):
    """PROTOCOL (9): the framing contract was broken; the connection is unusable.

    Raised too when the *server* breaks the contract (a malformed frame, a
    reply of the wrong shape, a reply to an unknown request id): the client
    then closes the connection and fails every pending call with it.
    """

    status = 9


class ShuttingDown(Error):
    """SHUTTING_DOWN (10): the server is stopping."""

    status = 10


class Moved(Error):
    """MOVED (12): in a cluster, the channel lives on another node; the message is its
    ``HOST:PORT`` (PROTOCOL.md §17). Sent only to clients whose HELLO asked for it."""

    status = 12


class Unavailable(Error):
    """UNAVAILABLE (13): in a cluster, the node cannot serve the channel now (it is
    owned elsewhere, or the node lost its etcd session); the message says why.
    libchanclient's CHAN_EUNAVAILABLE (``code`` -122); retrying later, or at the
    named node, may succeed."""

    status = 13


class Storage(Error):
    """STORAGE (14): a durable channel's record could not be written (disk full, I/O
    error) or the server keeps no data (no ``data_dir``); plain channels keep working,
    and the server retries by itself (PROTOCOL.md §16)."""

    status = 14


class ConnectionLost(Error):
    """The connection broke or was closed; every pending call fails with it at once."""


class DialError(Error):
    """:func:`chand.dial` could not resolve, connect or complete the TLS handshake.

    The underlying :class:`OSError` (or :class:`ssl.SSLError`) is the
    exception's ``__cause__``.
    """


_BY_STATUS: Dict[int, Type[Error]] = {
    cls.status: cls
    for cls in (Closed, DeadlineExceeded, Canceled, NotFound, Exists, PermissionDenied,
                BadRequest, Limit, ProtocolError, ShuttingDown, Moved, Unavailable, Storage)
    if cls.status is not None
}


# chanclient.h's CHAN_E* codes, set on each class here rather than in forty class bodies
for _cls, _code in ((Closed, -101), (DeadlineExceeded, -102), (Canceled, -103),
                    (NotFound, -104), (Exists, -105), (PermissionDenied, -106),
                    (BadRequest, -107), (Limit, -108), (ProtocolError, -109),
                    (ShuttingDown, -110), (ConnectionLost, -112), (DialError, -114),
                    (Storage, -121), (Unavailable, -122)):
    _cls.code = _code
del _cls, _code


def error_for_status(status: int, message: str, index: Optional[int] = None) -> Error:
    """The exception for a wire status; an unknown status gives a plain :class:`Error`."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        e = Error(f"unknown status {status}: {message}", index, status)
        e.code = -118       # CHAN_EUNKNOWN
        return e
    return cls(message, index)


class ErrorValue:
    """An error received as a value (ext type 2): returned by receives, never raised.

    Only the server makes them; sending one is a :class:`TypeError`.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ErrorValue) and other.message == self.message

    def __hash__(self) -> int:
        return hash(("chand.ErrorValue", self.message))

    def __repr__(self) -> str:
        return f"ErrorValue({self.message!r})"

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CloseError:
    """The error a channel was closed with: ``ch.close(CloseError(28, "disk full"))``.

    ``code`` is the application's, an int from 0 to 2**64 - 1; ``message`` a str of
    at most :data:`CLOSE_MESSAGE_MAX` (1024) bytes of UTF-8. Anything else is a
    :class:`ValueError`. Receivers find it, once the channel is drained, as the
    ``err`` of the handle they received through (libchanclient's ``chan_err``).
    """

    code: int
    message: str = ""

    def __post_init__(self) -> None:
        if type(self.code) is not int or not 0 <= self.code < 1 << 64:
            raise ValueError("a close error's code is an int from 0 to 2**64 - 1")
        if not isinstance(self.message, str):
            raise ValueError("a close error's message is a str")
        try:
            n = len(self.message.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("a close error's message is not valid UTF-8") from None
        if n > CLOSE_MESSAGE_MAX:
            raise ValueError(f"a close error's message of {n} bytes is over "
                             f"{CLOSE_MESSAGE_MAX}")

    def __str__(self) -> str:
        return f"closed with error {self.code}: {self.message}"
