"""The compact envelope with a fake WebSocket: ``envelope="compact"`` asks for it in the
URL; positional frames (JSON and MessagePack) become the same snapshots, updates and
events as map frames, with each update's epoch taken from its topic's snapshot (an
epoch-opening event or a gap for a stream topic); resume sends that epoch."""

from __future__ import annotations

import asyncio

import pytest

import wasmeter_client as wc
from fake import Sockets, until
from wasmeter_client.compact import expand_compact

FAST = {"backoff_base": 0.001, "backoff_cap": 0.002, "idle_timeout": 0}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_each_compact_frame_expands_into_its_map_frame():
    epoch_of = {"t/a": "e1"}.get
    assert expand_compact([0, "t/a", "e1", 5, 10, {"x": 1}], epoch_of) == {
        "type": "snapshot", "topic": "t/a", "epoch": "e1", "seq": 5, "ts": 10, "state": {"x": 1}}
    snap = expand_compact([0, "s", "e9", 5, 10, {}, {"stale": ["x"], "recovered": False, "stream": True}], epoch_of)
    assert (snap["stale"], snap["recovered"], snap["stream"]) == (["x"], False, True)
    assert expand_compact([1, "t/a", 6, 11, {"x": None}], epoch_of) == {
        "type": "update", "topic": "t/a", "epoch": "e1", "seq": 6, "ts": 11, "delta": {"x": None}}
    assert expand_compact([1, "t/a", 7, 12, {}, ["x"]], epoch_of)["stale"] == ["x"]
    assert expand_compact([2, "t/a", 8, 13, {"p": 1}], epoch_of) == {
        "type": "event", "topic": "t/a", "epoch": "e1", "seq": 8, "ts": 13, "fields": {"p": 1}}
    assert expand_compact([2, "n", 1, 13, {"p": 1}, "e7"], epoch_of)["epoch"] == "e7"
    assert expand_compact([9, "t/a"], epoch_of) is None


def test_a_compact_client_holds_the_same_state_and_resumes_with_its_epochs():
    async def main():
        socks = Sockets()
        client = wc.connect("ws://h:1/ws", envelope="compact", connector=socks, **FAST)
        kinds = []
        client.on("topic", lambda e: kinds.append((e.kind, e.state.epoch, e.state.seq)))
        events = []
        client.on("event", events.append)
        await client.subscribe(["t/*", "tape/**"])
        await until(lambda: socks.all and socks.all[0].sent, "the subscribe")
        ws = socks.all[0]
        assert ws.url == "ws://h:1/ws?format=json&envelope=compact"
        ws.push({"type": "subscribed", "id": ws.sent[0]["id"], "topics": ["t/*", "tape/**"]})
        ws.push([0, "t/a", "e1", 5, 1, {"x": 1, "y": 2}])
        ws.push([1, "t/a", 6, 2, {"x": 3, "y": None}, ["z"]])
        ws.push_msgpack([1, "t/a", 7, 3, {"w": True}])
        # A stream created after subscribing: its first event names the epoch; one whose
        # first events were no longer held: the gap does.
        ws.push([2, "tape/n", 1, 4, {"p": 1}, "k1"])
        ws.push([2, "tape/n", 2, 5, {"p": 2}])
        ws.push({"type": "gap", "topic": "tape/g", "epoch": "k2", "after": 0, "next": 40, "missed": 39})
        ws.push([2, "tape/g", 40, 6, {"p": 3}])
        await until(lambda: len(events) == 3, "the events")
        t = client.get("t/a")
        assert (t.epoch, t.seq, t.ts, t.state, t.stale) == ("e1", 7, 3, {"x": 3, "w": True}, {"z"})
        assert kinds[:3] == [("snapshot", "e1", 5), ("update", "e1", 6), ("update", "e1", 7)]
        assert [(e.topic, e.epoch, e.seq) for e in events] == [("tape/n", "k1", 1), ("tape/n", "k1", 2), ("tape/g", "k2", 40)]

        ws.close_with(1001)
        await until(lambda: len(socks.all) == 2 and len(socks.all[1].sent) == 2, "a reconnect")
        ws = socks.all[1]
        assert ws.url == "ws://h:1/ws?format=json&envelope=compact"
        # One subscribe per held pattern.
        assert [m.get("since") for m in ws.sent] == [
            {"t/a": {"epoch": "e1", "seq": 7}},
            {"tape/n": {"epoch": "k1", "seq": 2}, "tape/g": {"epoch": "k2", "seq": 40}},
        ]
        ws.push([1, "t/a", 8, 9, {"x": 4}])
        await until(lambda: client.get("t/a").seq == 8, "the replayed update")
        assert (client.get("t/a").epoch, client.get("t/a").state["x"]) == ("e1", 4)

        # A removed topic forgets its epoch; the next lifetime starts with a snapshot.
        ws.push({"type": "removed", "topic": "t/a", "epoch": "e1"})
        ws.push([0, "t/a", "e2", 1, 10, {"x": 0}])
        ws.push([1, "t/a", 2, 11, {"x": 5}])
        await until(lambda: client.get("t/a") and client.get("t/a").seq == 2, "the new lifetime")
        assert (client.get("t/a").epoch, client.get("t/a").state) == ("e2", {"x": 5})
        await client.close()

    run(main())


def test_the_default_client_ignores_arrays_and_an_unknown_envelope_is_refused():
    async def main():
        with pytest.raises(ValueError, match="envelope 'tiny' is not supported"):
            wc.connect("ws://h:1/ws", envelope="tiny")
        socks = Sockets()
        async with wc.connect("ws://h:1/ws", connector=socks, **FAST) as client:
            await until(lambda: socks.all, "the connect")
            ws = socks.all[0]
            ws.push([0, "t/a", "e1", 5, 1, {"x": 1}])
            ws.push({"type": "snapshot", "topic": "t/b", "epoch": "e", "seq": 1, "ts": 1, "state": {}})
            await until(lambda: client.get("t/b"), "the map frame")
            assert client.get("t/a") is None

    run(main())
