# SPDX-License-Identifier: BSD-2-Clause
"""Contexts: Go's ``context`` package for chand calls.

A context carries a cancellation signal and an optional deadline down a
tree: a child is done when its parent is. Every blocking call takes
``ctx=``; the context's *remaining* budget travels with the request as its
``wait`` in microseconds (PROTOCOL.md §4), so the server ends the wait on
time by itself, and cancelling the context wakes the blocked caller at once
and sends CANCEL for its request.

=====================================  ==========================================
Go                                     chand
=====================================  ==========================================
``context.Background()``               :func:`background`
``ctx, cancel := WithCancel(p)``       ``ctx = with_cancel(p)``; ``ctx.cancel()``
``WithTimeout(p, 2*time.Second)``      ``with_timeout(p, 2.0)``
``WithDeadline(p, t)``                 ``with_deadline(p, t)`` (``time.monotonic()`` clock)
``WithValue(p, k, v)``, ``ctx.Value``  :func:`with_value`, :meth:`Context.value`
``ctx.Err()``, ``ctx.Deadline()``      :meth:`Context.err`, :meth:`Context.deadline`
``<-ctx.Done()``                       ``ctx.done().wait()`` (a :class:`threading.Event`)
``defer cancel()``                     ``with with_timeout(p, 2.0) as ctx: ...``
=====================================  ==========================================

Contexts are thread-safe: cancel from any thread. A deadline context is
made done on time by one shared timer thread, even when no call is running.
Cancellation propagates to children; a child that is dropped without being
cancelled is not kept alive by its parent (children are held weakly).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple, Type

from .errors import Canceled, DeadlineExceeded, Error

__all__ = ["Context", "background", "with_cancel", "with_timeout", "with_deadline",
           "with_value"]

Watcher = Callable[[Error], None]

_CANCELED: Tuple[Type[Error], str] = (Canceled, "context canceled")
_DEADLINE: Tuple[Type[Error], str] = (DeadlineExceeded, "context deadline exceeded")


class Context:
    """A context. Make them with the functions of this module, never directly."""

    _deadline_ns: Optional[int] = None

    def err(self) -> Optional[Error]:
        """``None`` while not done; then a :class:`Canceled` or :class:`DeadlineExceeded`."""
        return None

    def deadline(self) -> Optional[float]:
        """The deadline on the ``time.monotonic()`` clock, or ``None``."""
        d = self._deadline_ns
        return None if d is None else d / 1e9

    def done(self) -> threading.Event:
        """An event set once the context is done (Go's ``ctx.Done()``)."""
        raise NotImplementedError

    def value(self, key: Any) -> Any:
        """The value for key of the nearest context holding it, from here up, or ``None``."""
        return None

    def cancel(self) -> None:
        """Cancel this context and its descendants (idempotent, any thread).

        Raises :class:`ValueError` for contexts that cannot be cancelled
        (:func:`background`, :func:`with_value`).
        """
        raise ValueError("this context cannot be cancelled")

    def __enter__(self) -> "Context":
        return self

    def __exit__(self, *exc: Any) -> None:
        # `defer cancel()`: only cancellable contexts have something to release
        if isinstance(self, _CancelCtx):
            self.cancel()

    # -- for the connections: be told when the context is done ------------------------

    def _watch(self, fn: Watcher) -> Optional[object]:
        """Call fn(err) once when done; None (and no call) if done already."""
        return _NEVER

    def _unwatch(self, token: Optional[object]) -> None:
        pass

    def _add_child(self, child: "_CancelCtx") -> None:
        pass


_NEVER = object()


class _Background(Context):
    _event: Optional[threading.Event] = None

    def done(self) -> threading.Event:
        if self._event is None:
            self._event = threading.Event()     # never set
        return self._event

    def __repr__(self) -> str:
        return "chand.background()"


_BACKGROUND = _Background()


def background() -> Context:
    """The root context: never done, no deadline, no values."""
    return _BACKGROUND


class _CancelCtx(Context):
    def __init__(self, parent: Context, deadline_ns: Optional[int] = None) -> None:
        self._parent = parent
        self._lock = threading.Lock()
        self._err: Optional[Tuple[Type[Error], str]] = None
        self._children: "weakref.WeakSet[_CancelCtx]" = weakref.WeakSet()
        self._watchers: Dict[object, Watcher] = {}
        self._event: Optional[threading.Event] = None
        pd = parent._deadline_ns
        if deadline_ns is not None and (pd is None or deadline_ns < pd):
            self._deadline_ns = deadline_ns
            self._own_deadline = True
        else:
            self._deadline_ns = pd
            self._own_deadline = False
        parent._add_child(self)         # may cancel self at once, if parent is done
        if self._own_deadline and self._err is None:
            assert self._deadline_ns is not None
            if self._deadline_ns <= time.monotonic_ns():
                self._finish(_DEADLINE)
            else:
                _timers.add(self._deadline_ns, self)

    def err(self) -> Optional[Error]:
        e = self._err
        return None if e is None else e[0](e[1])

    def done(self) -> threading.Event:
        with self._lock:
            if self._event is None:
                self._event = threading.Event()
                if self._err is not None:
                    self._event.set()
            return self._event

    def value(self, key: Any) -> Any:
        return self._parent.value(key)

    def cancel(self) -> None:
        self._finish(_CANCELED)

    def _finish(self, why: Tuple[Type[Error], str]) -> None:
        with self._lock:
            if self._err is not None:
                return
            self._err = why
            watchers = list(self._watchers.values())
            self._watchers.clear()
            children = list(self._children)
            self._children.clear()
            if self._event is not None:
                self._event.set()
        if self._own_deadline and why is _CANCELED:
            _timers.discard()   # its timer entry is dead now
        for fn in watchers:
            fn(why[0](why[1]))
        for c in children:
            c._finish(why)

    def _watch(self, fn: Watcher) -> Optional[object]:
        token = object()
        with self._lock:
            if self._err is not None:
                return None
            self._watchers[token] = fn
        return token

    def _unwatch(self, token: Optional[object]) -> None:
        with self._lock:
            self._watchers.pop(token, None)

    def _add_child(self, child: "_CancelCtx") -> None:
        with self._lock:
            why = self._err
            if why is None:
                self._children.add(child)
        if why is not None:
            child._finish(why)

    def __repr__(self) -> str:
        state = "done" if self._err else "live"
        dl = f", deadline={self.deadline():.3f}" if self._deadline_ns is not None else ""
        return f"<chand.Context {state}{dl}>"


class _ValueCtx(Context):
    def __init__(self, parent: Context, key: Any, val: Any) -> None:
        self._parent = parent
        self._key = key
        self._val = val
        self._deadline_ns = parent._deadline_ns

    def err(self) -> Optional[Error]:
        return self._parent.err()

    def done(self) -> threading.Event:
        return self._parent.done()

    def value(self, key: Any) -> Any:
        if key == self._key:
            return self._val
        return self._parent.value(key)

    def _watch(self, fn: Watcher) -> Optional[object]:
        return self._parent._watch(fn)

    def _unwatch(self, token: Optional[object]) -> None:
        self._parent._unwatch(token)

    def _add_child(self, child: "_CancelCtx") -> None:
        self._parent._add_child(child)


def _parent_or_background(parent: Optional[Context]) -> Context:
    if parent is None:
        return _BACKGROUND
    if not isinstance(parent, Context):
        raise TypeError(f"a parent context is a chand.Context, not {type(parent).__name__}")
    return parent


def with_cancel(parent: Optional[Context] = None) -> Context:
    """A child of parent (``None``: background) that :meth:`Context.cancel` cancels."""
    return _CancelCtx(_parent_or_background(parent))


def with_deadline(parent: Optional[Context], deadline: float) -> Context:
    """A cancellable child done at deadline (``time.monotonic()`` seconds), or at the
    parent's deadline if that is earlier."""
    return _CancelCtx(_parent_or_background(parent), int(deadline * 1e9))


def with_timeout(parent: Optional[Context], timeout: float) -> Context:
    """``with_deadline(parent, time.monotonic() + timeout)``; timeout in seconds."""
    return _CancelCtx(_parent_or_background(parent),
                      time.monotonic_ns() + int(timeout * 1e9))


def with_value(parent: Optional[Context], key: Any, val: Any) -> Context:
    """A child carrying key → val; done with its parent, not cancellable itself."""
    return _ValueCtx(_parent_or_background(parent), key, val)


class _Timers:
    """One daemon thread that makes deadline contexts done on time."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: List[Tuple[int, int, "weakref.ref[_CancelCtx]"]] = []
        self._seq = itertools.count()
        self._stale = 0
        self._thread: Optional[threading.Thread] = None

    def add(self, deadline_ns: int, ctx: _CancelCtx) -> None:
        with self._cond:
            heapq.heappush(self._heap, (deadline_ns, next(self._seq), weakref.ref(ctx)))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="chand-timers",
                                                daemon=True)
                self._thread.start()
            elif self._heap[0][0] == deadline_ns:
                self._cond.notify()

    def discard(self) -> None:
        """A context with a timer was done early: drop dead entries once they pile up."""
        with self._cond:
            self._stale += 1
            if self._stale > 64 and self._stale * 2 > len(self._heap):
                self._heap = [e for e in self._heap
                              if (c := e[2]()) is not None and c._err is None]
                heapq.heapify(self._heap)
                self._stale = 0

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        self._cond.wait()
                        continue
                    left = self._heap[0][0] - time.monotonic_ns()
                    if left <= 0:
                        break
                    self._cond.wait(left / 1e9)
                _, _, ref = heapq.heappop(self._heap)
            ctx = ref()
            if ctx is not None:
                ctx._finish(_DEADLINE)


_timers = _Timers()


def deadline_of(ctx: Context, timeout: Optional[float]) -> Optional[int]:
    """The earlier of ctx's deadline and now + timeout, in monotonic ns (None: none)."""
    d = ctx._deadline_ns
    if timeout is not None:
        t = time.monotonic_ns() + int(timeout * 1e9)
        if d is None or t < d:
            d = t
    return d
