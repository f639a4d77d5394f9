"""A fake WebSocket connection for the unit tests: records what the client sends and
lets the test deliver frames and close it with a code."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Close
from websockets.http11 import Response


class FakeWS:
    def __init__(self, url: str) -> None:
        self.url = url
        self.sent: list[dict[str, Any]] = []
        #: When each message was sent (time.time()).
        self.sent_at: list[float] = []
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.closed: int | None = None

    @property
    def token(self) -> str | None:
        return parse_qs(urlsplit(self.url).query).get("token", [None])[0]

    async def send(self, s: str) -> None:
        if self.closed is not None:
            raise ConnectionClosed(None, Close(self.closed, ""))
        self.sent.append(json.loads(s))
        self.sent_at.append(time.time())

    async def recv(self) -> Any:
        item = await self.inbox.get()
        if isinstance(item, Close):
            self.closed = item.code
            raise ConnectionClosed(item, None)
        return item

    async def close(self, code: int = 1000) -> None:
        self.closed = code

    def push(self, frame: dict[str, Any]) -> None:
        self.inbox.put_nowait(json.dumps(frame))

    def push_msgpack(self, frame: dict[str, Any]) -> None:
        self.inbox.put_nowait(msgpack.packb(frame))

    def close_with(self, code: int) -> None:
        self.inbox.put_nowait(Close(code, ""))


class Sockets:
    """The connector: every connect makes a FakeWS, or fails with a queued HTTP status."""

    def __init__(self) -> None:
        self.all: list[FakeWS] = []
        self.urls: list[str] = []
        self.refuse: list[int] = []

    async def __call__(self, url: str) -> FakeWS:
        self.urls.append(url)
        if self.refuse:
            raise InvalidStatus(Response(self.refuse.pop(0), "refused", Headers()))
        ws = FakeWS(url)
        self.all.append(ws)
        return ws


def jwt(**claims: Any) -> str:
    """A JWT (unsigned: the client never verifies) whose payload is ``claims``."""
    b64 = lambda o: base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'HS256'})}.{b64(claims)}.c2ln"


def soon_exp() -> float:
    """An `exp` one second away (NumericDate may have a fraction)."""
    return time.time() + 1.0


async def until(cond, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.002)
