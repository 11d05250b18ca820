# SPDX-License-Identifier: BSD-2-Clause
"""chand for Python: Go's channels, select and contexts over the network.

A client of chand(8), written from its wire protocol (PROTOCOL.md) and
shaped like libchanclient (chanclient(3)) and Go::

    import chand

    conn = chand.dial("tcp://127.0.0.1:7420")
    jobs = conn.make("jobs", 16)            # jobs := make(chan []byte, 16)
    jobs.send(b"hello", timeout=2.0)        # jobs <- "hello", at most 2 s
    v, ok = jobs.recv()                     # v, ok := <-jobs
    for v in jobs: ...                      # for v := range jobs
    jobs.close(chand.CloseError(28, "disk full"))   # cancel(cause); receivers' jobs.err
    i, v, ok = chand.select(chand.recv(a), chand.send(b, b"x"), default=True)

The synchronous API is here; ``chand.aio`` has the same surface for asyncio.
"""

from ._addr import Address, parse_address
from ._conn import Conn, dial  # first: _chan and _links build on it
from ._chan import Chan, Message, Op, RecvCase, SendCase, recv, select, send
from ._cluster import ClusterConn, dial_cluster
from ._links import Link, Stream, bridge, fan_in, fan_out, or_, or_done, repeat, take, tee
from ._proto import ChanInfo, ClientInfo, InflightInfo, NodeInfo, ServerInfo, Waiter
from .context import (Context, background, with_cancel, with_deadline, with_timeout,
                      with_value)
from .errors import (BadRequest, Canceled, Closed, CloseError, ConnectionLost,
                     DeadlineExceeded, DialError, Error, ErrorValue, Exists, Limit, Moved,
                     NotFound, PermissionDenied, ProtocolError, ShuttingDown, Storage,
                     Unavailable)

__version__ = "0.1.0"

__all__ = [
    "Address", "parse_address",
    "Chan", "ClusterConn", "Conn", "Link", "Message", "Op", "RecvCase", "SendCase", "Stream",
    "bridge", "dial", "dial_cluster", "fan_in", "fan_out", "or_", "or_done", "recv", "repeat",
    "select",
    "send", "take", "tee",
    "ChanInfo", "ClientInfo", "InflightInfo", "NodeInfo", "ServerInfo", "Waiter",
    "Context", "background", "with_cancel", "with_deadline", "with_timeout", "with_value",
    "BadRequest", "Canceled", "Closed", "ConnectionLost", "DeadlineExceeded", "DialError",
    "CloseError", "Error", "ErrorValue", "Exists", "Limit", "NotFound", "PermissionDenied",
    "Moved", "ProtocolError", "ShuttingDown", "Storage", "Unavailable",
]
