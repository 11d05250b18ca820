# SPDX-License-Identifier: BSD-2-Clause
"""The asyncio cluster connection: :class:`chand.ClusterConn`'s routing (see
chand._cluster, whose Routes this shares) with ``await``; its handles are
:class:`chand.aio.Chan` objects of the owner's :class:`chand.aio.Conn`."""

from __future__ import annotations

import ssl
from typing import Any, Awaitable, Callable, Dict, List, Optional, Sequence, TypeVar, Union

from ._cluster import (HOPS_MAX, Routes, case_chans, copy_err, hops_exceeded, left_s,
                       moved_target, names_of, node_options, rebind, rebind_cases)
from ._proto import BaseChan
from .aio import dial as _dial_node
from .aio import select as _select
from .context import Context, background, deadline_of
from .errors import ConnectionLost, Moved, NotFound, Unavailable

T = TypeVar("T")


class ClusterConn:
    """A connection to a chand cluster from asyncio; made by
    :func:`chand.aio.dial_cluster`. The same surface as :class:`chand.ClusterConn`
    with ``await``; ``async with`` closes it."""

    def __init__(self, seeds: List[str], dial_kw: Dict[str, Any]) -> None:
        self._routes = Routes(seeds)
        self._kw = dial_kw

    async def _node(self, addr: str, ctx: Context, timeout: Optional[float]) -> Any:
        c = self._routes.conn(addr)
        if c is not None:
            return c
        new = await _dial_node(addr, ctx=ctx, timeout=timeout, _caps={"moved": True}, **self._kw)
        keep = self._routes.install(addr, new)
        if keep is not new:
            await new.close()
        if keep is None:
            raise ConnectionLost("connection closed")
        return keep

    async def _call(self, name: Optional[str], fn: Callable[[Any], Awaitable[T]],
                    ctx: Optional[Context], timeout: Optional[float]) -> T:
        ctx = ctx or background()
        deadline = deadline_of(ctx, timeout)
        to: Optional[str] = None
        for _ in range(HOPS_MAX + 1):
            addrs = [to] if to else self._routes.candidates(name)
            addr, conn = await self._reach(addrs, ctx, left_s(deadline))
            try:
                res = await fn(conn)
            except Moved as e:
                to = moved_target(conn, e)
                self._routes.learn(name, to)
                continue
            except (NotFound, Unavailable):
                self._routes.forget(name)
                raise
            self._routes.learn(name, addr)
            return res
        raise hops_exceeded(name)

    async def _reach(self, addrs: List[str], ctx: Context,
                     timeout: Optional[float]) -> "tuple[str, Any]":
        err: Optional[BaseException] = None
        for addr in addrs:
            try:
                return addr, await self._node(addr, ctx, timeout)
            except Exception as e:      # DialError, a HELLO cut short, ...: the next node
                if self.closed:
                    raise               # closed by close()
                err = e
                self._routes.unreachable(addr)
        assert err is not None
        raise err

    async def make(self, name: Optional[str] = None, cap: int = 0, *,
                   ctx: Optional[Context] = None, timeout: Optional[float] = None,
                   **opts: Any) -> Any:
        """:meth:`chand.aio.Conn.make` on the name's owner."""
        return await self._call(
            name, lambda c: c.make(name, cap, ctx=ctx, timeout=timeout, **opts), ctx, timeout)

    async def open(self, name: str, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> Any:
        """:meth:`chand.aio.Conn.open` on the name's owner."""
        return await self._call(name, lambda c: c.open(name, ctx=ctx, timeout=timeout),
                                ctx, timeout)

    async def handle(self, name: str, *, ctx: Optional[Context] = None,
                     timeout: Optional[float] = None) -> Any:
        """A handle at name's owner: no round trip when it is cached, else an OPEN."""
        owner = self._routes.owner(name)
        if owner is not None:
            return (await self._node(owner, ctx or background(), timeout)).handle(name)
        return await self.open(name, ctx=ctx, timeout=timeout)

    async def where(self, name: str, *, ctx: Optional[Context] = None,
                    timeout: Optional[float] = None) -> str:
        """The ``HOST:PORT`` of name's owner, asked of the cluster now."""
        self._routes.forget(name)
        await self.open(name, ctx=ctx, timeout=timeout)
        owner = self._routes.owner(name)
        if owner is None:
            raise Unavailable(f"{name}: no owner known")
        return owner

    async def node(self, addr: Optional[str] = None, *, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> Any:
        """The :class:`chand.aio.Conn` of node addr, or of any node (admin calls)."""
        ctx = ctx or background()
        addrs = [addr] if addr else self._routes.candidates(None)
        return (await self._reach(addrs, ctx, timeout))[1]

    async def home(self, *chans: Any, ctx: Optional[Context] = None,
                   timeout: Optional[float] = None) -> Any:
        """The :class:`chand.aio.Conn` a select, stream or link over chans goes to (see
        :meth:`chand.ClusterConn.home`)."""
        return await self.node(self._routes.home(names_of(chans)), ctx=ctx, timeout=timeout)

    async def select(self, *cases: Any, default: bool = False, ctx: Optional[Context] = None,
                     timeout: Optional[float] = None) -> "tuple[int, Any, bool]":
        """:func:`chand.aio.select` over channels on several nodes, coordinated by
        :meth:`home` (see :meth:`chand.ClusterConn.select`)."""
        conn = await self.home(*case_chans(cases), ctx=ctx, timeout=timeout)
        sent = rebind_cases(conn, cases)
        res = await _select(*sent, default=default, ctx=ctx, timeout=timeout)
        copy_err(cases, sent, res[0])
        return res

    async def stream(self, chans: Sequence[Any], credit: int = 64, *,
                     ctx: Optional[Context] = None, timeout: Optional[float] = None,
                     manual_ack: bool = False) -> Any:
        """:meth:`chand.aio.Conn.stream` over channels on several nodes, run by
        :meth:`home` (see :meth:`chand.ClusterConn.stream`)."""
        conn = await self.home(*chans, ctx=ctx, timeout=timeout)
        return await conn.stream(rebind(conn, chans), credit, ctx=ctx, timeout=timeout,
                                 manual_ack=manual_ack)

    async def link(self, pattern: Callable[..., Awaitable[T]], *args: Any, done: Any = None,
                   **kw: Any) -> T:
        """A link of chand.aio (``await cl.link(aio.fan_in, a, b, c)``) over channels on
        several nodes, on :meth:`home` of its channels (see :meth:`chand.ClusterConn.link`)."""
        conn = await self.home(*[a for a in args if isinstance(a, BaseChan)], done,
                               ctx=kw.get("ctx"), timeout=kw.get("timeout"))
        return await pattern(*rebind(conn, args), done=rebind(conn, [done])[0], **kw)

    @property
    def nodes(self) -> List[str]:
        return self._routes.nodes()

    @property
    def closed(self) -> bool:
        return self._routes.closed

    async def close(self) -> None:
        for c in self._routes.close():
            await c.close()

    async def __aenter__(self) -> "ClusterConn":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def dial_cluster(seeds: Union[str, Sequence[str]], *, token: Optional[str] = None,
                       tls: Union[bool, ssl.SSLContext, None] = None,
                       ca: Optional[str] = None, cert: Optional[str] = None,
                       key: Optional[str] = None, server_hostname: Optional[str] = None,
                       client_name: str = "chand-python", cancel_grace: float = 1.0,
                       ctx: Optional[Context] = None,
                       timeout: Optional[float] = None) -> ClusterConn:
    """:func:`chand.dial_cluster` for asyncio, with the same arguments: ``cluster+tls://``
    (or ``tls=True``, or an :class:`ssl.SSLContext`) dials every node in TLS, with one
    context made here; ``ca``, ``cert``, ``key`` or ``server_hostname`` without TLS are a
    :class:`ValueError`, raised before anything is dialed."""
    cl = ClusterConn(*node_options(seeds, token=token, tls=tls, ca=ca, cert=cert, key=key,
                                   server_hostname=server_hostname, client_name=client_name,
                                   cancel_grace=cancel_grace))
    try:
        await cl.node(ctx=ctx, timeout=timeout)
    except BaseException:
        await cl.close()
        raise
    return cl
