"""The asyncio client: one connection that survives reconnects.

It keeps every topic's state, reconnects with exponential backoff and full jitter,
resumes with ``since`` = the last (epoch, seq) per topic, answers the server's
heartbeat, reads JSON or MessagePack frames (with the default map envelope or, with
``envelope="compact"``, the positional one, expanded to the same frames), and sends a
subscriber token (``?token=``), refreshing it on the open connection before it expires.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgpack
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from .compact import expand_compact
from .events import Emitter, EventsOverflow, log
from .state import (
    ErrorEvent,
    GapEvent,
    RemovedEvent,
    Status,
    TopicState,
    apply_event,
    apply_snapshot,
    apply_update,
    matches,
)
from .tokens import query_param, refresh_at, token_expiry, with_query

__all__ = ["Client", "connect", "backoff_delay", "EventsOverflow"]

TokenSource = Callable[[], "str | Awaitable[str]"]


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """A full-jitter exponential backoff delay: uniform in [0, min(cap, base * 2^attempt))."""
    return random.random() * min(cap, base * 2 ** min(attempt, 30))


class _TokenUnavailable(Exception):
    pass


class Client:
    """A connection to a wasmeter host's ``/ws`` that survives reconnects.

    Create it with :func:`connect` inside a running event loop; it connects in the
    background. Use it as ``async with connect(url) as client:`` or call
    :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        *,
        format: str = "json",
        envelope: str = "map",
        token: str | None = None,
        get_token: TokenSource | None = None,
        backoff_base: float = 0.25,
        backoff_cap: float = 10.0,
        idle_timeout: float = 45.0,
        connect_timeout: float = 10.0,
        max_frame_bytes: int = 16 * 1024 * 1024,
        connector: Callable[[str], Awaitable[Any]] | None = None,
    ) -> None:
        if format not in ("json", "msgpack"):
            raise ValueError(f"format {format!r} is not supported (use 'json' or 'msgpack')")
        if envelope not in ("map", "compact"):
            raise ValueError(f"envelope {envelope!r} is not supported (use 'map' or 'compact')")
        if get_token is not None and not callable(get_token):
            raise TypeError("get_token must be a function returning a token (or an awaitable of one)")
        if url.startswith("http://"):
            url = "ws://" + url[len("http://") :]
        elif url.startswith("https://"):
            url = "wss://" + url[len("https://") :]
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url {url!r}: expected ws://, wss://, http:// or https://")
        #: The format of the server's frames.
        self.format = format
        #: The envelope of the server's data frames: 'map' or 'compact'.
        self.envelope = envelope
        #: The WebSocket URL (with ``?format=`` and, if compact, ``&envelope=``; the
        #: token is added per connect).
        self.url = with_query(url, format=format, envelope="compact" if envelope == "compact" else None, token=None)
        self._token = token if token is not None else query_param(url, "token")
        self._get_token = get_token
        self._base = backoff_base
        self._cap = backoff_cap
        self._idle = idle_timeout
        self._connect_timeout = connect_timeout
        self._connector = connector or (
            lambda u: ws_connect(
                u, max_size=max_frame_bytes, ping_interval=None, open_timeout=None, close_timeout=2
            )
        )
        #: Every held topic.
        self.topics: dict[str, TopicState] = {}
        # With the compact envelope: each topic's epoch, which its updates leave out.
        self._epochs: dict[str, str] = {}
        #: The last status.
        self.status = Status()
        self._subs: dict[str, tuple[list[str] | None, float | None]] = {}
        self._inflight: dict[int, tuple[list[str], bool]] = {}
        self._events = Emitter()
        self._next_id = 1
        self._closed = False
        self._ws: Any = None
        self._ever_open = False
        self._pending_resume: dict[str, Any] | None = None
        self._refresh_id: int | None = None
        self._refresh_answer: asyncio.Future[bool] | None = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError("wasmeter_client.connect must be called inside a running event loop (e.g. in `async def main`)") from None
        self._task = loop.create_task(self._run())

    # ---- public API ----

    def on(self, name: str, fn: Callable[[Any], None]) -> Callable[[], None]:
        """Calls ``fn(payload)`` for each event ``name``; returns a function that stops it."""
        return self._events.on(name, fn)

    def events(self, maxsize: int = 10_000) -> AsyncIterator[tuple[str, Any]]:
        """Every event from now on as ``(name, payload)``, until the client closes.

        At most ``maxsize`` wait unread; beyond that the iterator raises
        :class:`EventsOverflow` (the held state stays right: read ``get``).
        """
        return self._events.iterate(maxsize)

    async def subscribe(
        self, topics: str | list[str], fields: list[str] | None = None, max_rate_hz: float | None = None
    ) -> None:
        """Subscribes to topic names or patterns; held across reconnects. Subscribing
        again to a pattern replaces its options."""
        patterns = [topics] if isinstance(topics, str) else list(topics)
        for p in patterns:
            self._subs[p] = (fields, max_rate_hz)
        ws = self._ws
        if ws is not None:
            await self._send_subscribe(ws, patterns, fields, max_rate_hz, None)

    async def unsubscribe(self, topics: str | list[str]) -> None:
        """Unsubscribes patterns exactly as subscribed; forgets topics no pattern covers."""
        patterns = [p for p in ([topics] if isinstance(topics, str) else topics) if p in self._subs]
        if not patterns:
            return
        ws = self._ws
        self._forget(patterns)
        if ws is not None:
            await self._send(ws, {"type": "unsubscribe", "id": self._take_id(), "topics": patterns})

    def get(self, topic: str) -> TopicState | None:
        """The state held for a topic, if any."""
        return self.topics.get(topic)

    async def close(self) -> None:
        """Closes for good (no reconnect) and waits for the connection task to end."""
        self._closed = True
        if asyncio.current_task() is not self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.status.status != "closed":
            self._set_status(status="closed", retry_at=None)
        self._events.end()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- the connection loop ----

    async def _run(self) -> None:
        attempt = 0
        try:
            while not self._closed:
                first = attempt == 0 and not self._ever_open
                self._set_status(status="connecting" if first else "reconnecting", retry_at=None, code=None)
                code: int | None = None
                try:
                    token = await self._fetch_token()
                    ws = await self._bounded(self._connector(with_query(self.url, token=token or None)))
                except _TokenUnavailable as e:
                    self._emit_error("token_unavailable", f"get_token failed: {e}")
                except InvalidStatus as e:
                    code = 401 if e.response.status_code == 401 else None
                except (OSError, asyncio.TimeoutError, WebSocketException):
                    pass
                else:
                    attempt = 0
                    code = await self._serve(ws)
                if self._closed:
                    return
                if code == 4002:
                    return self._stop(code, "abusive", "the server closed the connection (4002): too many refused messages; not reconnecting")
                if code in (4004, 401) and self._get_token is None:
                    why = "the token expired (4004)" if code == 4004 else "the token was refused (HTTP 401)"
                    name = "token_expired" if code == 4004 else "unauthorized"
                    return self._stop(code, name, f"{why}; not reconnecting without get_token")
                delay = backoff_delay(attempt, self._base, self._cap)
                attempt += 1
                self._set_status(status="reconnecting", attempt=attempt, retry_at=time.time() * 1000 + delay * 1000)
                await asyncio.sleep(delay)
        finally:
            self._events.end()

    async def _bounded(self, aw: Awaitable[Any]) -> Any:
        if self._connect_timeout > 0:
            return await asyncio.wait_for(aw, self._connect_timeout)
        return await aw

    async def _fetch_token(self) -> str | None:
        if self._get_token is None:
            return self._token
        try:
            token = self._get_token()
            if inspect.isawaitable(token):
                token = await self._bounded(token)
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            raise _TokenUnavailable(f"no token within {self._connect_timeout} s") from None
        except Exception as e:  # the caller's function: any failure is reported
            raise _TokenUnavailable(str(e) or type(e).__name__) from e
        self._token = token
        return token

    async def _serve(self, ws: Any) -> int | None:
        """Runs one open connection; returns its close code (None when it failed or idled)."""
        self._ws = ws
        self._inflight.clear()
        resuming = self._ever_open and bool(self.topics)
        self._ever_open = True
        self._pending_resume = {"waiting": 0, "not_recovered": []} if resuming else None
        self._set_status(status="connected", attempt=0, retry_at=None, resumed=None, not_recovered=[], code=None)
        refresher = asyncio.create_task(self._refresh_loop(ws)) if self._get_token else None
        try:
            # One subscribe per held pattern, in order: a topic's position goes with the
            # first pattern that covers it (the server delivers it with its options).
            resumed: set[str] = set()
            for pattern, (fields, rate) in list(self._subs.items()):
                if self._pending_resume is not None:
                    self._pending_resume["waiting"] += 1
                await self._send_subscribe(ws, [pattern], fields, rate, resumed)
            if self._pending_resume is not None and self._pending_resume["waiting"] == 0:
                self._pending_resume = None
            while True:
                try:
                    raw = await (asyncio.wait_for(ws.recv(), self._idle) if self._idle > 0 else ws.recv())
                except asyncio.TimeoutError:
                    # Nothing for idle_timeout (the server pings every 15 s): a lost connection.
                    await ws.close(4000)
                    return None
                try:
                    frame = json.loads(raw) if isinstance(raw, str) else msgpack.unpackb(raw, raw=False, strict_map_key=False)
                except ValueError:
                    continue
                if isinstance(frame, list):
                    frame = self._expand(frame)
                if isinstance(frame, dict):
                    try:
                        await self._handle(ws, frame)
                    except (KeyError, TypeError, AttributeError) as e:
                        # A frame missing a field the protocol promises: skip it, keep the connection.
                        log.warning("wasmeter_client: skipped a malformed %r frame: %r", frame.get("type"), e)
        except ConnectionClosed as e:
            return e.rcvd.code if e.rcvd is not None else None
        finally:
            self._ws = None
            self._inflight.clear()
            if refresher is not None:
                refresher.cancel()
                try:
                    await refresher
                except asyncio.CancelledError:
                    pass

    def _stop(self, code: int, name: str, message: str) -> None:
        self._closed = True
        self._set_status(status="closed", retry_at=None, code=code)
        self._emit_error(name, message)

    # ---- tokens ----

    async def _refresh_loop(self, ws: Any) -> None:
        """Refreshes the token on this connection before each expiry, while it lasts."""
        while True:
            exp = token_expiry(self._token) if self._token else None
            if exp is None:
                return
            await asyncio.sleep(max(0.0, refresh_at(exp, time.time()) - time.time()))
            try:
                token = await self._fetch_token()
            except _TokenUnavailable as e:
                self._emit_error("token_unavailable", f"get_token failed: {e}")
                return
            rid = self._take_id()
            self._refresh_id = rid
            answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            self._refresh_answer = answer
            await self._send(ws, {"type": "refresh", "id": rid, "token": token})
            # The server answers `refreshed` or an error; if neither comes before the
            # old token expires, the server closes the connection (4004).
            try:
                ok = await asyncio.wait_for(answer, max(1.0, exp - time.time() + 5))
            except asyncio.TimeoutError:
                return
            if not ok:
                return

    def _answer_refresh(self, rid: Any, ok: bool) -> None:
        if rid is not None and rid == self._refresh_id and self._refresh_answer is not None:
            if not self._refresh_answer.done():
                self._refresh_answer.set_result(ok)
            self._refresh_id = None

    # ---- frames ----

    def _take_id(self) -> int:
        i = self._next_id
        self._next_id += 1
        return i

    async def _send(self, ws: Any, msg: dict[str, Any]) -> bool:
        try:
            await ws.send(json.dumps(msg))
            return True
        except ConnectionClosed:
            # The connection loop notices and reconnects (resubscribing everything held).
            return False

    async def _send_subscribe(
        self, ws: Any, patterns: list[str], fields: list[str] | None, rate: float | None, resume: set[str] | None
    ) -> None:
        rid = self._take_id()
        msg: dict[str, Any] = {"type": "subscribe", "id": rid, "topics": patterns}
        if fields:
            msg["fields"] = fields
        if rate:
            msg["max_rate_hz"] = rate
        if resume is not None:
            since = {}
            for topic, t in self.topics.items():
                if topic not in resume and any(matches(p, topic) for p in patterns):
                    since[topic] = {"epoch": t.epoch, "seq": t.seq}
                    resume.add(topic)
            if since:
                msg["since"] = since
        self._inflight[rid] = (patterns, resume is not None)
        if not await self._send(ws, msg):
            self._inflight.pop(rid, None)

    def _forget(self, patterns: list[str]) -> None:
        for p in patterns:
            self._subs.pop(p, None)
        for topic in list(self.topics):
            if not any(matches(p, topic) for p in self._subs):
                del self.topics[topic]
        for topic in list(self._epochs):
            if not any(matches(p, topic) for p in self._subs):
                del self._epochs[topic]

    def _expand(self, a: list[Any]) -> dict[str, Any] | None:
        """A compact data frame as the map frame it stands for; tracks epochs per topic."""
        if self.envelope != "compact":
            return None
        try:
            f = expand_compact(a, self._epochs.get)
        except (IndexError, TypeError) as e:
            log.warning("wasmeter_client: skipped a malformed compact frame: %r", e)
            return None
        if f is not None and f["epoch"] is not None:
            self._epochs[f["topic"]] = f["epoch"]
        return f

    async def _handle(self, ws: Any, f: dict[str, Any]) -> None:
        kind = f.get("type")
        # Gaps and removals are map frames in both envelopes; they move epochs too.
        if kind == "gap" and self.envelope == "compact":
            self._epochs[f["topic"]] = f["epoch"]
        elif kind == "removed":
            self._epochs.pop(f["topic"], None)
        if kind == "ping":
            await self._send(ws, {"type": "pong"})
            return
        if kind == "snapshot":
            self._events.emit("topic", apply_snapshot(self.topics, f))
        elif kind == "update":
            self._events.emit("topic", apply_update(self.topics, f))
        elif kind == "event":
            ev, te = apply_event(self.topics, f)
            self._events.emit("event", ev)
            self._events.emit("topic", te)
        elif kind == "gap":
            t = self.topics.get(f["topic"])
            # Continue from the next event the host still has.
            if t is not None and t.epoch == f["epoch"]:
                t.seq = f["next"] - 1
            self._events.emit("gap", GapEvent(f["topic"], f["epoch"], f["after"], f["next"], f["missed"]))
        elif kind == "removed":
            self.topics.pop(f["topic"], None)
            self._events.emit("removed", RemovedEvent(f["topic"]))
        elif kind == "subscribed":
            sent = self._inflight.pop(f.get("id"), None)
            if self._pending_resume is not None:
                for topic, ok in (f.get("recovered") or {}).items():
                    if not ok:
                        self._pending_resume["not_recovered"].append(topic)
                if sent is None or sent[1]:
                    self._resume_answered()
            self._events.emit("subscribed", f)
        elif kind == "refreshed":
            self._answer_refresh(f.get("id"), True)
            self._events.emit("refreshed", f)
        elif kind == "error":
            self._handle_error(f)
        self._events.emit("frame", f)

    def _handle_error(self, f: dict[str, Any]) -> None:
        rid = f.get("id")
        sent = self._inflight.pop(rid, None) if rid is not None else None
        patterns = None
        if sent is not None:
            if f.get("code") == "forbidden":
                # The token does not allow these patterns: drop them, so they are not sent again.
                patterns = sent[0]
                self._forget(patterns)
            if self._pending_resume is not None and sent[1]:
                self._resume_answered()
        self._answer_refresh(rid, False)
        self._events.emit("error", ErrorEvent(str(f.get("code")), str(f.get("message")), rid, patterns))

    def _resume_answered(self) -> None:
        assert self._pending_resume is not None
        self._pending_resume["waiting"] -= 1
        if self._pending_resume["waiting"] <= 0:
            nr = self._pending_resume["not_recovered"]
            self._pending_resume = None
            self._set_status(resumed=not nr, not_recovered=nr)

    def _emit_error(self, code: str, message: str) -> None:
        self._events.emit("error", ErrorEvent(code, message))

    def _set_status(self, **patch: Any) -> None:
        for k, v in patch.items():
            setattr(self.status, k, v)
        # Listeners get a copy: the status as it was at this event.
        snapshot = Status(**{k: getattr(self.status, k) for k in Status.__dataclass_fields__})
        snapshot.not_recovered = list(self.status.not_recovered)
        self._events.emit("status", snapshot)


def connect(url: str, **options: Any) -> Client:
    """Connects to a wasmeter host's WebSocket endpoint (``ws://host:port/ws``) in the
    background and reconnects until closed. Call inside a running event loop.

    Options: ``format`` ('json' or 'msgpack'), ``envelope`` ('map' or 'compact'),
    ``token``, ``get_token``,
    ``backoff_base`` (0.25 s), ``backoff_cap`` (10 s), ``idle_timeout`` (45 s; 0
    disables), ``connect_timeout`` (10 s; 0 disables), ``max_frame_bytes`` (16 MiB),
    ``connector`` (a coroutine function url -> WebSocket connection, for tests).
    """
    return Client(url, **options)
