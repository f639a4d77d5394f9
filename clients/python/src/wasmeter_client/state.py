"""The state a subscriber holds per topic, and the event payloads.

Same vocabulary as the JavaScript client (docs/CLIENT.md): a snapshot replaces a
topic's fields, an update applies its delta as an RFC 7396 merge patch on the
top-level fields (``None`` removes a field) and marks ``stale`` fields, an event of a
stream topic replaces them with the event's fields.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def matches(pattern: str, topic: str) -> bool:
    """Does ``topic`` match ``pattern`` (``*`` = one segment, trailing ``**`` = one or more)?"""
    p = pattern.split("/")
    t = topic.split("/")
    for i, seg in enumerate(p):
        if seg == "**" and i == len(p) - 1:
            return len(t) > i
        if i >= len(t):
            return False
        if seg != "*" and seg != t[i]:
            return False
    return len(p) == len(t)


@dataclass
class TopicState:
    """The state held for one topic."""

    topic: str
    #: Opaque; positions of different epochs are not comparable.
    epoch: str
    #: Position of the last applied frame within the epoch.
    seq: int
    #: Time of the last update, Unix ms.
    ts: int
    #: The fields now.
    state: dict[str, Any]
    #: Fields currently stale (they keep their last value).
    stale: set[str] = field(default_factory=set)


@dataclass
class TopicEvent:
    """After every frame that changed a topic (event name ``topic``)."""

    topic: str
    kind: str  # 'snapshot' | 'update' | 'event'
    state: TopicState
    changed: list[str]
    removed: list[str]
    stale: list[str]
    #: False on a snapshot answering a resume that could not be served.
    recovered: bool | None = None


@dataclass
class StreamEvent:
    """One event of a stream topic, emitted once, in order (event name ``event``)."""

    topic: str
    epoch: str
    seq: int
    ts: int
    fields: dict[str, Any]


@dataclass
class GapEvent:
    """Events of a stream topic this client will not get (event name ``gap``)."""

    topic: str
    epoch: str
    after: int
    next: int
    missed: int


@dataclass
class RemovedEvent:
    """The host removed the topic; its state is dropped (event name ``removed``)."""

    topic: str


@dataclass
class ErrorEvent:
    """An error: the server's error frame or one of the client's own (event name ``error``).

    Client codes: ``abusive`` (4002), ``token_expired`` (4004 without ``get_token``),
    ``unauthorized`` (HTTP 401 without ``get_token``), ``token_unavailable``
    (``get_token`` raised). With ``forbidden``, ``patterns`` are the refused ones.
    """

    code: str
    message: str
    id: int | None = None
    patterns: list[str] | None = None


@dataclass
class Status:
    """The connection's status (``client.status`` and event name ``status``)."""

    status: str = "connecting"  # 'connecting' | 'connected' | 'reconnecting' | 'closed'
    #: Reconnect attempts since the last open connection.
    attempt: int = 0
    #: When the next attempt starts (Unix ms) while reconnecting, else None.
    retry_at: float | None = None
    #: After a reconnect, once every resubscription is answered: were all held topics recovered?
    resumed: bool | None = None
    #: Held topics that got fresh snapshots instead of the missed updates.
    not_recovered: list[str] = field(default_factory=list)
    #: Why the client stopped when closed by the server: 4002, 4004 or 401; else None.
    code: int | None = None


def apply_snapshot(topics: dict[str, TopicState], f: dict[str, Any]) -> TopicEvent:
    """Replaces a topic's fields with a snapshot's."""
    old = topics.get(f["topic"])
    state = dict(f.get("state") or {})
    changed = [k for k, v in state.items() if old is None or old.state.get(k, _MISSING) != v]
    removed = [k for k in old.state if k not in state] if old else []
    stale = list(f.get("stale") or [])
    t = TopicState(f["topic"], f["epoch"], f["seq"], f["ts"], state, set(stale))
    topics[f["topic"]] = t
    return TopicEvent(f["topic"], "snapshot", t, changed, removed, stale, f.get("recovered"))


def apply_update(topics: dict[str, TopicState], f: dict[str, Any]) -> TopicEvent:
    """Applies an update's merge patch and stale fields."""
    t = topics.get(f["topic"])
    if t is None or t.epoch != f["epoch"]:
        # Cannot happen with a conforming server (a new epoch starts with a snapshot).
        t = TopicState(f["topic"], f["epoch"], 0, f["ts"], {})
        topics[f["topic"]] = t
    changed: list[str] = []
    removed: list[str] = []
    for k, v in (f.get("delta") or {}).items():
        if v is None:
            if k in t.state:
                removed.append(k)
            t.state.pop(k, None)
        else:
            t.state[k] = v
            changed.append(k)
        t.stale.discard(k)
    stale = list(f.get("stale") or [])
    t.stale.update(stale)
    t.seq = f["seq"]
    t.ts = f["ts"]
    return TopicEvent(f["topic"], "update", t, changed, removed, stale)


def apply_event(topics: dict[str, TopicState], f: dict[str, Any]) -> tuple[StreamEvent, TopicEvent]:
    """A stream topic's event: its fields become the held state."""
    fields = dict(f.get("fields") or {})
    t = TopicState(f["topic"], f["epoch"], f["seq"], f["ts"], dict(fields))
    topics[f["topic"]] = t
    ev = StreamEvent(f["topic"], f["epoch"], f["seq"], f["ts"], fields)
    return ev, TopicEvent(f["topic"], "event", t, list(fields), [], [])


_MISSING = object()
