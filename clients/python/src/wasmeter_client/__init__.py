"""Client of the wasmeter subscriber protocol: live topic state over WebSocket (JSON or
MessagePack), with resume, reconnects and subscriber tokens. See docs/CLIENT.md.

    import asyncio, wasmeter_client

    async def main():
        async with wasmeter_client.connect("ws://127.0.0.1:8080/ws", format="msgpack") as client:
            await client.subscribe("trades/*", fields=["price"])
            async for name, ev in client.events():
                if name == "topic":
                    print(ev.topic, ev.state.seq, ev.state.state)

    asyncio.run(main())
"""

from .client import Client, EventsOverflow, backoff_delay, connect
from .state import (
    ErrorEvent,
    GapEvent,
    RemovedEvent,
    Status,
    StreamEvent,
    TopicEvent,
    TopicState,
    matches,
)
from .tokens import refresh_at, token_expiry

__all__ = [
    "Client",
    "connect",
    "TopicState",
    "TopicEvent",
    "StreamEvent",
    "GapEvent",
    "RemovedEvent",
    "ErrorEvent",
    "Status",
    "EventsOverflow",
    "matches",
    "backoff_delay",
    "token_expiry",
    "refresh_at",
]
