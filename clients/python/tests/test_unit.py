"""Unit checks of the Python client with a fake WebSocket: state, merge patches, stale
fields, pong, resume with ``since``, close codes, events, and subscriber tokens
(``?token=``, get_token before every connect and before expiry, 4004, HTTP 401,
refused refreshes, forbidden subscribes)."""

from __future__ import annotations

import asyncio
import time

import pytest

import wasmeter_client as wc
from fake import Sockets, jwt, soon_exp, until

FAST = {"backoff_base": 0.001, "backoff_cap": 0.002, "idle_timeout": 0}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_patterns_backoff_and_token_helpers():
    assert wc.matches("trades/*", "trades/BTC") and not wc.matches("trades/*", "trades/BTC/1m")
    assert wc.matches("trades/**", "trades/BTC/1m") and not wc.matches("trades/**", "trades")
    assert wc.matches("**", "a") and wc.matches("a/b", "a/b") and not wc.matches("a/b", "a/c")
    for i in range(100):
        assert 0 <= wc.backoff_delay(i, 0.25, 10) < min(10, 0.25 * 2**i)
    assert wc.token_expiry(jwt(sub="a", exp=1700000000)) == 1700000000
    assert wc.token_expiry(jwt(sub="a")) is None
    assert wc.token_expiry("not a jwt") is None and wc.token_expiry("a.!!!.c") is None
    assert wc.refresh_at(3600, 0) == 3570 and wc.refresh_at(10, 0) == 9 and wc.refresh_at(10, 20) == 10


def test_bad_options_are_refused():
    async def main():
        with pytest.raises(ValueError, match="format 'xml' is not supported"):
            wc.connect("ws://h:1/ws", format="xml")
        with pytest.raises(ValueError, match="expected ws://"):
            wc.connect("ftp://h:1/ws")
        with pytest.raises(TypeError, match="get_token must be a function"):
            wc.connect("ws://h:1/ws", get_token="x")

    run(main())
    with pytest.raises(RuntimeError, match="inside a running event loop"):
        wc.connect("ws://h:1/ws")


def test_a_malformed_frame_is_skipped_and_the_connection_goes_on():
    async def main():
        socks = Sockets()
        async with wc.connect("ws://h:1/ws", connector=socks, **FAST) as client:
            await until(lambda: socks.all, "the connect")
            ws = socks.all[0]
            ws.push({"type": "snapshot", "epoch": "e"})
            ws.inbox.put_nowait("not json")
            ws.push({"type": "snapshot", "topic": "t/a", "epoch": "e", "seq": 1, "ts": 1, "state": {"x": 1}})
            await until(lambda: client.get("t/a"), "the good frame")
            assert len(socks.all) == 1 and client.status.status == "connected"

    run(main())


def test_state_merge_patches_pong_resume_and_unsubscribe():
    async def main():
        socks = Sockets()
        client = wc.connect("http://h:1/ws", connector=socks, **FAST)
        events = []
        client.on("topic", events.append)
        await client.subscribe(["t/*"])
        await until(lambda: socks.all and socks.all[0].sent, "the subscribe")
        ws = socks.all[0]
        assert ws.url == "ws://h:1/ws?format=json"
        assert ws.sent[0]["type"] == "subscribe" and "since" not in ws.sent[0]
        ws.push({"type": "subscribed", "id": ws.sent[0]["id"], "topics": ["t/*"]})
        ws.push({"type": "snapshot", "topic": "t/a", "epoch": "e1", "seq": 5, "ts": 1, "state": {"x": 1, "y": 2}})
        ws.push({"type": "update", "topic": "t/a", "epoch": "e1", "seq": 7, "ts": 2, "delta": {"x": 3, "y": None}, "stale": ["z"]})
        ws.push({"type": "ping"})
        await until(lambda: ws.sent[-1]["type"] == "pong", "the pong")
        t = client.get("t/a")
        assert (t.seq, t.state, t.stale) == (7, {"x": 3}, {"z"})
        assert (events[1].changed, events[1].removed) == (["x"], ["y"])
        ws.close_with(1001)
        await until(lambda: len(socks.all) == 2 and socks.all[1].sent, "a reconnect")
        ws = socks.all[1]
        sub = ws.sent[0]
        assert sub["since"] == {"t/a": {"epoch": "e1", "seq": 7}}
        ws.push({"type": "subscribed", "id": sub["id"], "topics": ["t/*"], "recovered": {"t/a": False}})
        await until(lambda: client.status.resumed is not None, "the resume")
        assert client.status.resumed is False and client.status.not_recovered == ["t/a"]
        ws.push({"type": "snapshot", "topic": "t/a", "epoch": "e2", "seq": 1, "ts": 3, "state": {"x": 9}, "recovered": False})
        await until(lambda: client.get("t/a").epoch == "e2", "the new snapshot")
        assert events[-1].recovered is False
        await client.subscribe("m/*", fields=["vwap"], max_rate_hz=2)
        assert {k: ws.sent[-1][k] for k in ("topics", "fields", "max_rate_hz")} == {"topics": ["m/*"], "fields": ["vwap"], "max_rate_hz": 2}
        await client.unsubscribe(["t/*", "m/*"])
        assert client.topics == {} and ws.sent[-1]["type"] == "unsubscribe"
        assert ws.sent[-1]["topics"] == ["t/*", "m/*"]
        await client.close()
        assert client.status.status == "closed"

    run(main())


def test_msgpack_frames_and_the_events_iterator():
    async def main():
        socks = Sockets()
        async with wc.connect("ws://h:1/ws", format="msgpack", connector=socks, **FAST) as client:
            await until(lambda: socks.all, "the connect")
            ws = socks.all[0]
            assert ws.url == "ws://h:1/ws?format=msgpack"
            await client.subscribe("tape/*")
            seen = []

            async def read():
                async for name, ev in client.events():
                    if name in ("event", "gap"):
                        seen.append(ev.seq if name == "event" else f"gap {ev.missed}")
                    if len(seen) == 3:
                        return

            reader = asyncio.create_task(read())
            await asyncio.sleep(0)  # the reader starts listening
            ws.push_msgpack({"type": "event", "topic": "tape/a", "epoch": "e", "seq": 1, "ts": 1, "fields": {"p": 1.5, "b": b"\x01"}})
            ws.push_msgpack({"type": "gap", "topic": "tape/a", "epoch": "e", "after": 1, "next": 5, "missed": 3})
            ws.push_msgpack({"type": "event", "topic": "tape/a", "epoch": "e", "seq": 5, "ts": 2, "fields": {"p": 2}})
            await asyncio.wait_for(reader, 5)
            assert seen == [1, "gap 3", 5]
            assert client.get("tape/a").state == {"p": 2}

    run(main())


def test_a_slow_events_reader_gets_an_overflow_error_not_silent_loss():
    async def main():
        socks = Sockets()
        async with wc.connect("ws://h:1/ws", connector=socks, **FAST) as client:
            it = client.events(maxsize=2)
            first = asyncio.ensure_future(it.__anext__())
            await asyncio.sleep(0)
            await until(lambda: socks.all, "the connect")
            ws = socks.all[0]
            for seq in range(1, 6):
                ws.push({"type": "snapshot", "topic": "t/a", "epoch": "e", "seq": seq, "ts": 1, "state": {}})
            await until(lambda: client.get("t/a") and client.get("t/a").seq == 5, "the frames")
            await first
            with pytest.raises(wc.EventsOverflow, match="more than 2 events"):
                for _ in range(10):
                    await it.__anext__()

    run(main())


def test_4002_is_not_reconnected():
    async def main():
        socks = Sockets()
        client = wc.connect("ws://h:1/ws", connector=socks, **FAST)
        errors = []
        client.on("error", errors.append)
        await until(lambda: socks.all, "the connect")
        socks.all[0].close_with(4002)
        await until(lambda: client.status.status == "closed", "closed")
        assert client.status.code == 4002 and errors[0].code == "abusive"
        assert len(socks.urls) == 1
        await client.close()

    run(main())


def test_a_static_token_goes_on_the_url_also_one_given_in_the_url():
    async def main():
        socks = Sockets()
        a = wc.connect("ws://h:1/ws", token="abc", connector=socks, **FAST)
        b = wc.connect("ws://h:1/ws?token=xyz", connector=socks, **FAST)
        await until(lambda: len(socks.all) == 2, "both connects")
        assert sorted(ws.token for ws in socks.all) == ["abc", "xyz"]
        assert "xyz" not in b.url
        await a.close()
        await b.close()

    run(main())


def test_get_token_before_every_connect_and_a_failing_one_is_retried():
    async def main():
        socks = Sockets()
        calls = []

        async def get_token():
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("issuer down")
            return f"t{len(calls)}"

        client = wc.connect("ws://h:1/ws", get_token=get_token, connector=socks, **FAST)
        errors = []
        client.on("error", errors.append)
        await until(lambda: socks.all, "the connect")
        assert socks.all[0].token == "t1"
        socks.all[0].close_with(1001)
        await until(lambda: len(socks.all) == 2, "a reconnect")
        assert socks.all[1].token == "t3"
        assert errors[0].code == "token_unavailable" and "issuer down" in errors[0].message
        await client.close()

    run(main())


def test_a_get_token_that_never_answers_is_given_up_and_called_again():
    async def main():
        calls = []

        async def get_token():
            calls.append(1)
            await asyncio.Event().wait()

        client = wc.connect("ws://h:1/ws", get_token=get_token, connector=Sockets(), **{**FAST, "connect_timeout": 0.01})
        errors = []
        client.on("error", errors.append)
        await until(lambda: len(calls) >= 2, "a second get_token")
        assert errors[0].code == "token_unavailable" and "no token within 0.01 s" in errors[0].message
        await client.close()

    run(main())


def test_the_token_is_refreshed_on_the_open_connection_when_due():
    async def main():
        socks = Sockets()
        exp = soon_exp()
        start = time.time()
        tokens = [jwt(exp=exp), jwt(exp=exp + 3600)]
        client = wc.connect("ws://h:1/ws", get_token=lambda: tokens.pop(0), connector=socks, **FAST)
        refreshed = []
        client.on("refreshed", refreshed.append)
        await until(lambda: socks.all, "the connect")
        ws = socks.all[0]
        await until(lambda: any(m["type"] == "refresh" for m in ws.sent), "a refresh")
        i = next(i for i, m in enumerate(ws.sent) if m["type"] == "refresh")
        msg = ws.sent[i]
        # Due 10% of the lifetime (0.1 s) before exp; not sent earlier.
        assert ws.sent_at[i] >= exp - (exp - start) / 10 - 0.01, "not before it is due"
        assert msg["token"] == jwt(exp=exp + 3600) and isinstance(msg["id"], int)
        ws.push({"type": "refreshed", "id": msg["id"], "expires_at": (exp + 3600) * 1000})
        await until(lambda: refreshed, "the answer")
        assert len(socks.all) == 1, "on the same connection"
        await client.close()

    run(main())


def test_a_refused_refresh_is_an_error_and_the_client_waits_for_the_close():
    async def main():
        socks = Sockets()
        exp = soon_exp()
        client = wc.connect("ws://h:1/ws", get_token=lambda: jwt(exp=exp), connector=socks, **FAST)
        errors = []
        client.on("error", errors.append)
        await until(lambda: socks.all, "the connect")
        ws = socks.all[0]
        await until(lambda: any(m["type"] == "refresh" for m in ws.sent), "a refresh")
        rid = next(m for m in ws.sent if m["type"] == "refresh")["id"]
        ws.push({"type": "error", "id": rid, "code": "unauthorized", "message": "token signature invalid"})
        await until(lambda: errors, "the error")
        assert errors[0].code == "unauthorized" and client.status.status == "connected"
        await client.close()

    run(main())


@pytest.mark.parametrize("how", ["close 4004", "http 401"])
def test_an_expired_or_refused_token_without_get_token_stops(how):
    async def main():
        socks = Sockets()
        if how == "http 401":
            socks.refuse.append(401)
        client = wc.connect("ws://h:1/ws", token=jwt(exp=1), connector=socks, **FAST)
        errors = []
        client.on("error", errors.append)
        if how == "close 4004":
            await until(lambda: socks.all, "the connect")
            socks.all[0].close_with(4004)
        await until(lambda: client.status.status == "closed", "closed")
        code, name = (4004, "token_expired") if how == "close 4004" else (401, "unauthorized")
        assert client.status.code == code and errors[0].code == name
        assert len(socks.urls) == 1, "no reconnect loop"
        await client.close()

    run(main())


@pytest.mark.parametrize("how", ["close 4004", "http 401"])
def test_an_expired_or_refused_token_with_get_token_reconnects_with_a_new_one(how):
    async def main():
        socks = Sockets()
        if how == "http 401":
            socks.refuse.append(401)
        n = iter(range(1, 100))
        client = wc.connect("ws://h:1/ws", get_token=lambda: f"t{next(n)}", connector=socks, **FAST)
        if how == "close 4004":
            await until(lambda: socks.all, "the connect")
            socks.all[0].close_with(4004)
        await until(lambda: len(socks.urls) == 2 and socks.all, "a reconnect")
        assert "token=t2" in socks.urls[1]
        await client.close()

    run(main())


def test_a_forbidden_subscribe_names_the_patterns_and_is_not_sent_again():
    async def main():
        socks = Sockets()
        client = wc.connect("ws://h:1/ws", token="t", connector=socks, **FAST)
        errors = []
        client.on("error", errors.append)
        await until(lambda: socks.all, "the connect")
        ws = socks.all[0]
        await client.subscribe("ok/*")
        await client.subscribe(["secret/*", "other/x"])
        ok, refused = ws.sent
        ws.push({"type": "subscribed", "id": ok["id"], "topics": ["ok/*"]})
        ws.push({"type": "error", "id": refused["id"], "code": "forbidden", "message": "outside the token"})
        await until(lambda: errors, "the error")
        assert errors[0].code == "forbidden" and errors[0].patterns == ["secret/*", "other/x"]
        ws.close_with(1001)
        await until(lambda: len(socks.all) == 2 and socks.all[1].sent, "a reconnect")
        assert [m["topics"] for m in socks.all[1].sent] == [["ok/*"]]
        await client.close()

    run(main())
