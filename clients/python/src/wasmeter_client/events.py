"""Event delivery: callbacks and bounded async iterators."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

log = logging.getLogger("wasmeter_client")

_END = object()
_OVERFLOW = object()


class EventsOverflow(Exception):
    """An ``events()`` reader fell more than its ``maxsize`` events behind."""


class Emitter:
    """Calls listeners and feeds iterators; each iterator's queue is bounded."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}
        self._queues: set[asyncio.Queue[Any]] = set()
        self._ended = False

    def on(self, name: str, fn: Callable[[Any], None]) -> Callable[[], None]:
        """Listens to ``name``; returns a function that stops listening."""
        self._listeners.setdefault(name, []).append(fn)

        def off() -> None:
            if fn in self._listeners.get(name, []):
                self._listeners[name].remove(fn)

        return off

    def emit(self, name: str, payload: Any) -> None:
        """Delivers an event to the listeners and every iterator."""
        for fn in list(self._listeners.get(name, [])):
            try:
                fn(payload)
            except Exception:  # a listener's failure must not break the connection
                log.exception("wasmeter_client listener for %r failed", name)
        for q in list(self._queues):
            if q.full():
                # The reader fell too far behind: end its iterator with an error.
                self._queues.discard(q)
                _drain(q)
                q.put_nowait(_OVERFLOW)
            else:
                q.put_nowait((name, payload))

    def end(self) -> None:
        """Ends every iterator (after the events already queued)."""
        self._ended = True
        for q in list(self._queues):
            self._queues.discard(q)
            if q.full():
                q.get_nowait()
            q.put_nowait(_END)

    async def iterate(self, maxsize: int) -> AsyncIterator[tuple[str, Any]]:
        """``(name, payload)`` pairs until :meth:`end`; at most ``maxsize`` unread."""
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        if self._ended:
            return
        q: asyncio.Queue[Any] = asyncio.Queue(maxsize)
        self._queues.add(q)
        try:
            while True:
                item = await q.get()
                if item is _END:
                    return
                if item is _OVERFLOW:
                    raise EventsOverflow(f"more than {maxsize} events were not read in time")
                yield item
        finally:
            self._queues.discard(q)


def _drain(q: asyncio.Queue[Any]) -> None:
    while not q.empty():
        q.get_nowait()
