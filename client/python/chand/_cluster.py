# SPDX-License-Identifier: BSD-2-Clause
"""A connection to a chand cluster (PROTOCOL.md §17), as libchanclient's cluster://
and cluster+tls:// front (client/cluster.c) makes one.

A :class:`ClusterConn` keeps one :class:`chand.Conn` per node, dialed when first
needed, each saying in HELLO that it follows ``MOVED``; every one of them in TLS
when the cluster connection is (``cluster+tls://``, or ``tls=``), all with the one
:class:`ssl.SSLContext` made when the cluster connection was. A channel's owner is
learnt from the replies: a request goes to the cached owner, else to any node;
a ``MOVED`` names the owner, dialed then, and the same request goes there (at
most :data:`HOPS_MAX` times, then :class:`chand.Unavailable`). ``NOT_FOUND`` and
``UNAVAILABLE`` forget the cached owner, so the next request asks again.

The handles it returns (:meth:`ClusterConn.make`, :meth:`ClusterConn.open`,
:meth:`ClusterConn.handle`) are the owner's :class:`chand.Chan`: every operation
on one, sends and receives, streams, asynchronous ops, goes straight to the
owner with nothing in between. When the channel moves later (its owner left the
cluster), they raise :class:`chand.Moved` or :class:`chand.Unavailable`, and a
fresh handle from the cluster connection finds the new owner.

A select, stream or link over channels of several owners goes through
:meth:`ClusterConn.select`, :meth:`ClusterConn.stream` and :meth:`ClusterConn.link`:
to the node owning the first channel whose owner is cached, naming the channels,
and that node reaches the others.

Thread-safe: one lock guards the node table and the owner cache; dialing and
requests run outside it.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from ._addr import CLUSTER_PREFIX, CLUSTER_TLS_PREFIX, is_node_address, tls_wanted
from ._chan import RecvCase, SendCase, select as _select
from ._conn import _make_tls_context
from ._conn import dial as _dial_node
from ._proto import BaseChan, now_ns
from .context import Context, background, deadline_of
from .errors import ConnectionLost, DialError, Moved, NotFound, ProtocolError, Unavailable

HOPS_MAX = 5
"""MOVED replies followed per request (libchanclient's CLUSTER_HOPS_MAX)."""
NODES_MAX = 64
"""Node addresses one cluster connection knows (libchanclient's CLUSTER_NODES_MAX): a
MOVED naming one more fails with :class:`chand.Unavailable`."""
CACHE_MAX = 65536
"""Cached owners (libchanclient's CLUSTER_CACHE_MAX); when full the cache starts again."""

T = TypeVar("T")


def parse_seeds(seeds: Union[str, Sequence[str]]) -> List[str]:
    """The ``host:port`` seeds of ``cluster://a,b``, ``cluster+tls://a,b``, ``a,b`` or a
    list (ValueError if one is not a plain ``HOST:PORT``, as libchanclient takes them)."""
    if isinstance(seeds, str):
        body = seeds
        for prefix in (CLUSTER_PREFIX, CLUSTER_TLS_PREFIX):
            if seeds.startswith(prefix):
                body = seeds[len(prefix):]
                break
        out = body.split(",")
    else:
        out = list(seeds)
    if not out or len(out) > NODES_MAX or any(not is_node_address(s) or "," in s for s in out):
        raise ValueError(f"bad cluster address {seeds!r}: seeds are host:port, "
                         "comma-separated")
    return list(dict.fromkeys(out))


def node_options(seeds: Union[str, Sequence[str]], *, token: Optional[str],
                 tls: Union[bool, ssl.SSLContext, None], ca: Optional[str],
                 cert: Optional[str], key: Optional[str], server_hostname: Optional[str],
                 client_name: str, cancel_grace: float) -> Tuple[List[str], Dict[str, Any]]:
    """dial_cluster's arguments checked (sync and asyncio alike), before anything is
    dialed: the seeds, and the keywords of every node's dial. With TLS (``cluster+tls://``,
    ``tls=True`` or a context of the caller's) these carry the one SSLContext every node
    is dialed with, made here (a CA file is read once, not per node).

    ValueError: a bad address; ``tls=False`` with ``cluster+tls://``; ``ca``, ``cert``,
    ``key`` or ``server_hostname`` without TLS (dialing in plaintext would send the token
    in the clear to a cluster the caller takes for TLS). DialError: the CA file or the
    client certificate cannot be loaded (as :func:`chand.dial` says it)."""
    addrs = parse_seeds(seeds)
    tls_wanted(tls)     # TypeError for what is neither a bool nor an SSLContext
    tls_scheme = isinstance(seeds, str) and seeds.startswith(CLUSTER_TLS_PREFIX)
    if tls_scheme and tls is False:
        raise ValueError(f"{seeds!r} asks for TLS ({CLUSTER_TLS_PREFIX}) and tls=False "
                         "for none")
    kw: Dict[str, Any] = {"token": token, "client_name": client_name,
                          "cancel_grace": cancel_grace}
    if not (tls_scheme or tls is True or isinstance(tls, ssl.SSLContext)):
        given = [n for n, v in (("ca", ca), ("cert", cert), ("key", key),
                                ("server_hostname", server_hostname)) if v is not None]
        if given:
            raise ValueError(f"{', '.join(given)} given for a cluster dialed in plaintext "
                             f"({seeds!r}): ask for TLS with {CLUSTER_TLS_PREFIX}host:port,... "
                             "or tls=True")
        return addrs, kw
    if isinstance(tls, ssl.SSLContext):
        context = tls
    else:
        try:
            context = _make_tls_context(ca, cert, key)
        except (OSError, ssl.SSLError) as e:
            raise DialError(f"dial {seeds!r}: TLS: {e}") from e
    kw["tls"] = context
    kw["server_hostname"] = server_hostname
    return addrs, kw


class Routes:
    """What a cluster connection knows, sync or asyncio: the node table (``host:port`` ->
    its connection, None until dialed) and the owner cache (channel name -> node). A
    threading.Lock guards both, held for dictionary work only, never across I/O."""

    def __init__(self, seeds: List[str]) -> None:
        self._lock = threading.Lock()
        self._nodes: Dict[str, Any] = dict.fromkeys(seeds)
        self._owners: Dict[str, str] = {}
        self.closed = False

    def conn(self, addr: str) -> Any:
        """Node addr's connection if it has a live one, else None (its owners forgotten
        when it broke); ConnectionLost once closed."""
        with self._lock:
            if self.closed:
                raise ConnectionLost("connection closed")
            c = self._nodes.get(addr)
            if c is None or not c.closed:
                return c
            self._nodes[addr] = None
            self._drop_locked(addr)
            return None

    def install(self, addr: str, new: Any) -> Any:
        """Keep new as node addr's connection unless another thread (task) dialed it
        first: the one to use (new is the caller's to close if it is not that one), or
        None when the cluster connection was closed meanwhile."""
        with self._lock:
            if self.closed:
                return None
            c = self._nodes.get(addr)
            if c is not None and not c.closed:
                return c
            self._nodes[addr] = new
            return new

    def candidates(self, name: Optional[str]) -> List[str]:
        """Where to send a request on name: its cached owner, else every node, those
        connected first (any node answers: it routes or MOVEs)."""
        with self._lock:
            owner = self._owners.get(name) if name is not None else None
            if owner is not None:
                return [owner]
            return sorted(self._nodes, key=lambda a: self._nodes[a] is None)

    def owner(self, name: str) -> Optional[str]:
        with self._lock:
            return self._owners.get(name)

    def home(self, names: Sequence[Optional[str]]) -> str:
        """Where a SELECT, STREAM or link over names goes (libchanclient's owner_of):
        the owner of the first name whose owner is cached, which coordinates it or runs
        it and reaches the other owners (PROTOCOL.md §17); else a node, connected first."""
        with self._lock:
            for n in names:
                owner = self._owners.get(n) if n is not None else None
                if owner is not None:
                    return owner
            return sorted(self._nodes, key=lambda a: self._nodes[a] is None)[0]

    def learn(self, name: Optional[str], addr: str) -> None:
        """name is at addr (a reply from there, or a MOVED naming it). Both tables are
        bounded, whatever the nodes say: Unavailable for a node past NODES_MAX."""
        with self._lock:
            if addr not in self._nodes:
                if len(self._nodes) >= NODES_MAX:
                    raise Unavailable(f"{addr}: the cluster connection knows {NODES_MAX} "
                                      "nodes already")
                self._nodes[addr] = None
            if name is not None:
                if len(self._owners) >= CACHE_MAX and name not in self._owners:
                    self._owners.clear()
                self._owners[name] = addr

    def forget(self, name: Optional[str]) -> None:
        """Gone or fenced: the next request on name asks again."""
        if name is not None:
            with self._lock:
                self._owners.pop(name, None)

    def unreachable(self, addr: str) -> None:
        with self._lock:
            self._drop_locked(addr)

    def _drop_locked(self, addr: str) -> None:
        self._owners = {k: v for k, v in self._owners.items() if v != addr}

    def nodes(self) -> List[str]:
        with self._lock:
            return list(self._nodes)

    def conns(self) -> List[Any]:
        """The nodes' connections dialed so far."""
        with self._lock:
            return [c for c in self._nodes.values() if c is not None]

    def close(self) -> List[Any]:
        """Mark closed; the connections to close."""
        with self._lock:
            self.closed = True
            conns = [c for c in self._nodes.values() if c is not None]
            self._nodes = dict.fromkeys(self._nodes)
            self._owners.clear()
        return conns


def names_of(chans: Sequence[Any]) -> List[Optional[str]]:
    """The names of chans (handles, or None for Go's nil channel)."""
    return [None if c is None else c.name for c in chans]


def rebind(conn: Any, args: Sequence[Any]) -> List[Any]:
    """args with each channel handle made a handle of conn, by name (others as they are)."""
    return [conn.handle(a.name) if isinstance(a, BaseChan) else a for a in args]


def case_chans(cases: Sequence[Any]) -> List[Any]:
    """The channels of select cases (TypeError for anything but chand.recv / chand.send)."""
    if not all(isinstance(c, (RecvCase, SendCase)) for c in cases):
        raise TypeError("select takes chand.recv(ch) and chand.send(ch, v) cases")
    return [c.chan for c in cases]


def rebind_cases(conn: Any, cases: Sequence[Any]) -> List[Any]:
    """select cases with their channels as handles of conn, by name."""
    chans = rebind(conn, case_chans(cases))
    return [SendCase(ch, c.value) if isinstance(c, SendCase) else RecvCase(ch)
            for c, ch in zip(cases, chans)]


def copy_err(cases: Sequence[Any], sent: Sequence[Any], index: int) -> None:
    """A receive case that saw its channel closed: its close error onto the caller's
    handle too, as :meth:`chand.Chan.recv` sets it."""
    if index >= 0 and cases[index].chan is not None and sent[index].chan is not None:
        err = getattr(sent[index].chan, "_err", None)
        if err is not None:
            cases[index].chan._err = err


def moved_target(conn: Any, e: Moved) -> str:
    """The ``HOST:PORT`` that conn's MOVED e names, to send the request to. One naming
    anything else (a unix socket, a scheme) breaks the protocol (§3, §9): conn fails,
    ProtocolError, and nothing is dialed. A node, or whoever sits on its plain TCP, must
    not send a client to a local socket with its token and request."""
    if is_node_address(e.message):
        return e.message
    err = ProtocolError(f"MOVED names {e.message!r}, which is no node's HOST:PORT")
    conn._break(err)
    raise err from None


def hops_exceeded(name: Optional[str]) -> Unavailable:
    return Unavailable(f"{name}: more than {HOPS_MAX} MOVED replies in a row")


def left_s(deadline: Optional[int]) -> Optional[float]:
    """Seconds until deadline (monotonic ns; None: none), at least 0."""
    return None if deadline is None else max(0.0, (deadline - now_ns()) / 1e9)


class ClusterConn:
    """A connection to a chand cluster; made by :func:`chand.dial_cluster`. Thread-safe.
    Use it as a context manager, or call :meth:`close`."""

    def __init__(self, seeds: List[str], dial_kw: Dict[str, Any]) -> None:
        self._routes = Routes(seeds)
        self._kw = dial_kw

    # -- nodes ------------------------------------------------------------------------------

    def _node(self, addr: str, ctx: Context, timeout: Optional[float]) -> Any:
        """Node addr's connection, dialed (no lock held) if there is none or it broke."""
        c = self._routes.conn(addr)
        if c is not None:
            return c
        new = _dial_node(addr, ctx=ctx, timeout=timeout, _caps={"moved": True}, **self._kw)
        new._flush_nodes = self._flush_nodes
        keep = self._routes.install(addr, new)
        if keep is not new:
            new.close()
        if keep is None:
            raise ConnectionLost("connection closed")
        return keep

    def _flush_nodes(self) -> None:
        """Send what is queued for every node: a node connection calls it before it waits,
        so that asynchronous requests leave as on one connection (a wait whose reply
        depends on a request queued for another node would otherwise never end)."""
        for c in self._routes.conns():
            c._flush_before_wait()

    def _call(self, name: Optional[str], fn: Callable[[Any], T], ctx: Optional[Context],
              timeout: Optional[float]) -> T:
        """fn(owner's Conn): routed as described in the module doc."""
        ctx = ctx or background()
        deadline = deadline_of(ctx, timeout)
        to: Optional[str] = None
        for _ in range(HOPS_MAX + 1):
            addrs = [to] if to else self._routes.candidates(name)
            addr, conn = self._reach(addrs, ctx, left_s(deadline))
            try:
                res = fn(conn)
            except Moved as e:
                to = moved_target(conn, e)  # the same request goes there
                self._routes.learn(name, to)
                continue
            except (NotFound, Unavailable):
                self._routes.forget(name)
                raise
            self._routes.learn(name, addr)
            return res
        raise hops_exceeded(name)

    def _reach(self, addrs: List[str], ctx: Context,
               timeout: Optional[float]) -> "tuple[str, Any]":
        """The first of addrs that can be dialed; the last failure if none can."""
        err: Optional[BaseException] = None
        for addr in addrs:
            try:
                return addr, self._node(addr, ctx, timeout)
            except Exception as e:      # DialError, a HELLO cut short, ...: the next node
                if self.closed:
                    raise               # closed by close()
                err = e
                self._routes.unreachable(addr)
        assert err is not None
        raise err

    # -- channels ----------------------------------------------------------------------------

    def make(self, name: Optional[str] = None, cap: int = 0, *,
             ctx: Optional[Context] = None, timeout: Optional[float] = None,
             **opts: Any) -> Any:
        """:meth:`chand.Conn.make` on the name's owner (an anonymous channel is made on
        a node connected already, and owned there). The options are Conn.make's."""
        return self._call(name, lambda c: c.make(name, cap, ctx=ctx, timeout=timeout, **opts),
                          ctx, timeout)

    def open(self, name: str, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> Any:
        """:meth:`chand.Conn.open` on the name's owner."""
        return self._call(name, lambda c: c.open(name, ctx=ctx, timeout=timeout), ctx, timeout)

    def handle(self, name: str, *, ctx: Optional[Context] = None,
               timeout: Optional[float] = None) -> Any:
        """A handle on name at its owner: no round trip when the owner is cached, else
        an OPEN to find it (:class:`chand.NotFound` if there is no such channel)."""
        owner = self._routes.owner(name)
        if owner is not None:
            return self._node(owner, ctx or background(), timeout).handle(name)
        return self.open(name, ctx=ctx, timeout=timeout)

    def where(self, name: str, *, ctx: Optional[Context] = None,
              timeout: Optional[float] = None) -> str:
        """The ``HOST:PORT`` of name's owner, asked of the cluster now (libchanclient's
        chan_cluster_where). :class:`chand.NotFound` if there is no such channel."""
        self._routes.forget(name)
        self.open(name, ctx=ctx, timeout=timeout)
        owner = self._routes.owner(name)
        if owner is None:
            raise Unavailable(f"{name}: no owner known")
        return owner

    def node(self, addr: Optional[str] = None, *, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> Any:
        """The :class:`chand.Conn` of node addr (dialed if need be), or of any node:
        for admin calls, which are per node (:meth:`chand.Conn.cluster_nodes`,
        :meth:`chand.Conn.stats`, ...)."""
        ctx = ctx or background()
        return self._reach([addr] if addr else self._routes.candidates(None), ctx, timeout)[1]

    # -- several channels: at the first cached owner (PROTOCOL.md §17 "Client routing") --------

    def home(self, *chans: Any, ctx: Optional[Context] = None,
             timeout: Optional[float] = None) -> Any:
        """The :class:`chand.Conn` that a select, stream or link over chans goes to: the
        node owning the first of them whose owner is cached (a handle from this cluster
        connection has it), else any node. That node runs the operation and reaches the
        other channels' owners itself."""
        return self.node(self._routes.home(names_of(chans)), ctx=ctx, timeout=timeout)

    def select(self, *cases: Any, default: bool = False, ctx: Optional[Context] = None,
               timeout: Optional[float] = None) -> "tuple[int, Any, bool]":
        """:func:`chand.select` over channels that may live on different nodes (handles
        from this cluster connection, or from any): sent to :meth:`home`, naming the
        channels, which coordinates it (PROTOCOL.md §17 "Cross-node SELECT"): exactly one
        case fires. Results and errors as :func:`chand.select`."""
        conn = self.home(*case_chans(cases), ctx=ctx, timeout=timeout)
        sent = rebind_cases(conn, cases)
        res = _select(*sent, default=default, ctx=ctx, timeout=timeout)
        copy_err(cases, sent, res[0])
        return res

    def stream(self, chans: Sequence[Any], credit: int = 64, *, ctx: Optional[Context] = None,
               timeout: Optional[float] = None, manual_ack: bool = False) -> Any:
        """:meth:`chand.Conn.stream` over chans that may live on different nodes, run by
        :meth:`home` (PROTOCOL.md §17 "Cross-node STREAM"). Every value arrives once, but
        across nodes a channel's close may be reported before its last value."""
        conn = self.home(*chans, ctx=ctx, timeout=timeout)
        return conn.stream(rebind(conn, chans), credit, ctx=ctx, timeout=timeout,
                           manual_ack=manual_ack)

    def link(self, pattern: Callable[..., T], *args: Any, done: Any = None, **kw: Any) -> T:
        """Start a link whose channels may live on different nodes, on :meth:`home` of its
        inputs (PROTOCOL.md §17 "Links in a cluster"): ``cl.link(chand.fan_in, a, b, c)``,
        ``cl.link(chand.take, a, 5)``; pattern is one of chand's link functions taking
        channels (or_, or_done, tee, bridge, fan_in, take, fan_out), args and keywords
        are its own. Its outputs are made on that node; :class:`chand.Link` as returned."""
        conn = self.home(*[a for a in args if isinstance(a, BaseChan)], done,
                         ctx=kw.get("ctx"), timeout=kw.get("timeout"))
        return pattern(*rebind(conn, args), done=rebind(conn, [done])[0], **kw)

    # -- life -------------------------------------------------------------------------------

    @property
    def nodes(self) -> List[str]:
        """The nodes known so far (the seeds, and those MOVED replies named)."""
        return self._routes.nodes()

    @property
    def closed(self) -> bool:
        return self._routes.closed

    def close(self) -> None:
        """Close every node's connection; handles from it raise
        :class:`chand.ConnectionLost`. Idempotent."""
        for c in self._routes.close():
            c.close()

    def __enter__(self) -> "ClusterConn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def dial_cluster(seeds: Union[str, Sequence[str]], *, token: Optional[str] = None,
                 tls: Union[bool, ssl.SSLContext, None] = None, ca: Optional[str] = None,
                 cert: Optional[str] = None, key: Optional[str] = None,
                 server_hostname: Optional[str] = None, client_name: str = "chand-python",
                 cancel_grace: float = 1.0, ctx: Optional[Context] = None,
                 timeout: Optional[float] = None) -> ClusterConn:
    """Connect to a chand cluster (PROTOCOL.md §17) as libchanclient's chan_dial does
    with a cluster's address: seeds is ``"cluster://host:port,host:port"``,
    ``"cluster+tls://host:port,host:port"``, a bare ``"host:port,host:port"``, or a list
    of ``host:port``. One seed is dialed now (those that cannot be reached are passed over:
    a cluster none of whose seeds answers fails here, with the last one's error,
    :class:`chand.DialError` usually); the other nodes when MOVED replies name them.
    ``token``, ``client_name``, ``cancel_grace``, ``ctx`` and ``timeout`` as
    :func:`chand.dial`, for every node.

    TLS: with ``cluster+tls://``, or ``tls=True`` (or an :class:`ssl.SSLContext` of your
    own) on the other forms, every node is dialed in TLS, the seeds and each node a MOVED
    names (a MOVED names a plain ``HOST:PORT``: a cluster with ``tls_listen`` advertises
    its TLS listeners). ``ca``, ``cert``, ``key`` as :func:`chand.dial`'s; the context is
    made once, here, and every node's dial uses it (a context of your own is used as it
    is, ``ca``, ``cert`` and ``key`` aside, as :func:`chand.dial` does).
    ``server_hostname``: the name every node's certificate must carry (default: the host
    of each node's own address, an IP address checked as one). A node whose certificate
    fails verification fails its dial with :class:`chand.DialError`, as
    :func:`chand.dial` does.

    Raises :class:`ValueError` for a bad list, for ``tls=False`` with ``cluster+tls://``,
    and for ``ca``, ``cert``, ``key`` or ``server_hostname`` without TLS (ask for it with
    ``cluster+tls://`` or ``tls=True``; nothing is dialed in plaintext then)."""
    cl = ClusterConn(*node_options(seeds, token=token, tls=tls, ca=ca, cert=cert, key=key,
                                   server_hostname=server_hostname, client_name=client_name,
                                   cancel_grace=cancel_grace))
    try:
        cl.node(ctx=ctx, timeout=timeout)
    except BaseException:
        cl.close()
        raise
    return cl
