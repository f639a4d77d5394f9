"""The compact envelope (docs/PROTOCOL.md, "Compact envelope"): positional data frames
expanded into the map frames they stand for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def expand_compact(a: list[Any], epoch_of: Callable[[str], str | None]) -> dict[str, Any] | None:
    """The map frame a compact data frame stands for: ``[0, topic, epoch, seq, ts, state,
    extras?]`` a snapshot, ``[1, topic, seq, ts, delta, stale?]`` an update, ``[2, topic,
    seq, ts, fields, epoch?]`` an event. Updates and events without an epoch take
    ``epoch_of(topic)`` (the topic's last snapshot, gap or epoch-opening event). None for
    an unknown tag."""
    tag = a[0] if a else None
    if tag == 0:
        f = {"type": "snapshot", "topic": a[1], "epoch": a[2], "seq": a[3], "ts": a[4], "state": a[5]}
        extras = a[6] if len(a) > 6 else {}
        for key in ("stale", "recovered", "stream"):
            if key in extras:
                f[key] = extras[key]
        return f
    if tag == 1:
        f = {"type": "update", "topic": a[1], "epoch": epoch_of(a[1]), "seq": a[2], "ts": a[3], "delta": a[4]}
        if len(a) > 5:
            f["stale"] = a[5]
        return f
    if tag == 2:
        epoch = a[5] if len(a) > 5 else epoch_of(a[1])
        return {"type": "event", "topic": a[1], "epoch": epoch, "seq": a[2], "ts": a[3], "fields": a[4]}
    return None
