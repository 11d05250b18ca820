# SPDX-License-Identifier: BSD-2-Clause
"""Address parsing for :func:`chand.dial`.

The forms (those of chanclient(3), plus the short ones chanctl users type):

=====================  ==========================================
``tcp://host:port``    TCP; host is a name, an IPv4 address or ``[v6]``
``tls://host:port``    TLS over TCP
``host:port``          TCP
``[v6]:port``          TCP over IPv6
``host``, ``[v6]``     TCP on the default port, 7420
``unix:/path``         a unix stream socket
``/path``              a unix stream socket
=====================  ==========================================

A port may be left out of the ``tcp://`` and ``tls://`` forms too.

A cluster's address (``cluster://host:port,...``, ``cluster+tls://host:port,...`` or a
list with a comma: :func:`is_cluster_address`) is :func:`chand.dial_cluster`'s, whose
seeds and MOVED targets are each a plain ``HOST:PORT`` (:func:`is_node_address`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Optional

from ._proto import DEFAULT_PORT

__all__ = ["Address", "parse_address", "is_node_address", "is_cluster_address",
           "CLUSTER_PREFIX", "CLUSTER_TLS_PREFIX"]

CLUSTER_PREFIX = "cluster://"
"""A cluster's address (:func:`chand.dial_cluster`): its nodes in plain TCP."""
CLUSTER_TLS_PREFIX = "cluster+tls://"
"""A cluster's address (:func:`chand.dial_cluster`): its nodes in TLS."""


@dataclass(frozen=True)
class Address:
    """A parsed address: ``scheme`` is ``"tcp"``, ``"tls"`` or ``"unix"``."""

    scheme: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix:{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _port(text: str, addr: str) -> int:
    if not text.isdigit() or not 0 < int(text) <= 65535:
        raise ValueError(f"bad port {text!r} in address {addr!r}")
    return int(text)


def _host(host: str, addr: str) -> str:
    """host, which has no space, control character, '/' or '@' (libchanclient's rule)."""
    if any(c in "/@" or ord(c) <= 0x20 or ord(c) == 0x7f for c in host):
        raise ValueError(f"bad host {host!r} in address {addr!r}")
    return host


def _host_port(rest: str, addr: str) -> "tuple[str, int]":
    if not rest:
        raise ValueError(f"no host in address {addr!r}")
    if rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in address {addr!r}")
        host, tail = rest[1:end], rest[end + 1:]
        if not host:
            raise ValueError(f"empty IPv6 address in {addr!r}")
        host = _host(host, addr)
        if not tail:
            return host, DEFAULT_PORT
        if not tail.startswith(":"):
            raise ValueError(f"junk after ']' in address {addr!r}")
        return host, _port(tail[1:], addr)
    if rest.count(":") > 1:     # a bare IPv6 address: no port
        return _host(rest, addr), DEFAULT_PORT
    host, sep, port = rest.partition(":")
    if not host:
        raise ValueError(f"no host in address {addr!r}")
    return _host(host, addr), _port(port, addr) if sep else DEFAULT_PORT


def tls_wanted(tls: object) -> Optional[bool]:
    """A dial's ``tls`` argument as :func:`parse_address` takes it: None or a bool as
    given, an :class:`ssl.SSLContext` asks for TLS. TypeError for anything else (a
    string such as ``"no"`` must not be taken for True)."""
    if tls is None or isinstance(tls, bool):
        return tls
    if isinstance(tls, ssl.SSLContext):
        return True
    raise TypeError(f"tls is a bool or an ssl.SSLContext, not {type(tls).__name__}")


def parse_address(addr: str, tls: Optional[bool] = None) -> Address:
    """Parse addr; ``tls=True`` asks for TLS on a form without a scheme.

    Raises :class:`ValueError` for an address that cannot be parsed.
    """
    if not isinstance(addr, str):
        raise TypeError(f"an address is a str, not {type(addr).__name__}")
    if addr.startswith("unix:") or addr.startswith("/"):
        path = addr[5:] if addr.startswith("unix:") else addr
        if not path:
            raise ValueError(f"no path in address {addr!r}")
        if tls:
            raise ValueError("TLS is for tcp addresses, not unix sockets")
        return Address("unix", path=path)
    scheme = "tls" if tls else "tcp"
    if "://" in addr:
        scheme, _, rest = addr.partition("://")
        if scheme not in ("tcp", "tls"):
            raise ValueError(f"unknown scheme {scheme!r} in address {addr!r}")
        if tls and scheme == "tcp":
            scheme = "tls"
    else:
        rest = addr
    host, port = _host_port(rest, addr)
    return Address(scheme, host=host, port=port)


def is_node_address(addr: object) -> bool:
    """addr names a cluster node as seeds and MOVED replies do (PROTOCOL.md §3, §17):
    ``HOST:PORT`` or ``[V6]:PORT`` and nothing else (no scheme, no unix socket, no port
    left out), libchanclient's rule too."""
    if not isinstance(addr, str) or "/" in addr or "\0" in addr or addr.startswith("unix:"):
        return False
    if addr.startswith("["):
        if "]:" not in addr:
            return False
    elif addr.count(":") != 1:          # no port, or a bare IPv6 address
        return False
    try:
        parse_address(addr)
    except ValueError:
        return False
    return True


def is_cluster_address(addr: object) -> bool:
    """addr names a cluster, :func:`chand.dial_cluster`'s and not :func:`chand.dial`'s:
    ``cluster://...``, ``cluster+tls://...`` or a list with a comma."""
    return isinstance(addr, str) and (addr.startswith((CLUSTER_PREFIX, CLUSTER_TLS_PREFIX))
                                      or "," in addr)
