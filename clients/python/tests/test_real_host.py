"""The Python client against a real host (the ``wasmeter`` binary at $WASMETER_BIN):
snapshot + deltas give the state REST reports, in JSON and MessagePack, each with the
map and the compact envelope; the client resumes (``recovered: true``) after a host restart and after a dropped connection."""

from __future__ import annotations

import asyncio

import pytest

import wasmeter_client
from host import eventually
from proxy import Proxy

TOPICS = ["trades/BTC", "trades/ETH"]
FAST = {"backoff_base": 0.05, "backoff_cap": 0.3}


async def same_as_rest(host, client) -> bool:
    """Does the client hold exactly what REST says (position and fields) for every topic?"""
    for topic in TOPICS:
        status, body = await asyncio.to_thread(host.topic, topic)
        if status != 200:
            return False
        held = client.get(topic)
        if held is None or (held.epoch, held.seq) != (body["epoch"], body["seq"]):
            return False
        assert held.state == body["state"], f"{client.format} state of {topic}"
    return True


async def rest_count(host, topic: str, count: int) -> bool:
    status, body = await asyncio.to_thread(host.topic, topic)
    return status == 200 and body["state"].get("count") == count


@pytest.mark.parametrize("envelope", ["map", "compact"])
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_snapshot_and_deltas_equal_rest(hosts, fmt, envelope):
    async def main():
        host = hosts()
        host.append("trades.csv", "BTC,100,1,1700000000000\nETH,3000,2,1700000000001\n")
        await eventually(lambda: rest_count(host, "trades/ETH", 1), "the first topics")
        async with wasmeter_client.connect(f"ws://{host.addr}/ws", format=fmt, envelope=envelope, **FAST) as client:
            kinds: list[str] = []
            client.on("topic", lambda ev: kinds.append(ev.kind))
            await client.subscribe("trades/*")
            await eventually(lambda: same_as_rest(host, client), "the snapshots")
            host.append("trades.csv", "BTC,101,3,1700000000002\nBTC,102.5,1,1700000000003\nETH,2999.25,4,1700000000004\n")
            await eventually(lambda: rest_count(host, "trades/BTC", 3), "the appends in REST")
            await eventually(lambda: same_as_rest(host, client), "the deltas")
            assert "update" in kinds, kinds
            # A compact client got compact frames (its epochs come from expanding them).
            assert bool(client._epochs) == (envelope == "compact")
            assert client.status.status == "connected"

    asyncio.run(main())


@pytest.mark.parametrize("envelope", ["map", "compact"])
@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_resume_after_a_host_restart(hosts, fmt, envelope):
    async def main():
        host = hosts()
        addr = host.addr
        host.append("trades.csv", "BTC,100,1,1700000000000\nETH,3000,2,1700000000001\n")
        await eventually(lambda: rest_count(host, "trades/ETH", 1), "the first topics")
        async with wasmeter_client.connect(f"ws://{addr}/ws", format=fmt, envelope=envelope, **FAST) as client:
            recovered: list[dict] = []
            client.on("subscribed", lambda f: recovered.append(f.get("recovered")))
            await client.subscribe("trades/*")
            host.append("trades.csv", "BTC,101,3,1700000000002\n")
            await eventually(lambda: rest_count(host, "trades/BTC", 2), "the append in REST")
            await eventually(lambda: same_as_rest(host, client), "the state before the restart")
            before = client.get("trades/BTC").seq

            await asyncio.to_thread(host.stop)
            await eventually(lambda: client.status.status == "reconnecting", "the client to notice")
            host = hosts(addr)
            host.append("trades.csv", "BTC,103,2,1700000000005\nETH,3001,1,1700000000006\n")
            await eventually(lambda: rest_count(host, "trades/BTC", 3), "the new appends in REST")
            await eventually(lambda: client.status.resumed is not None, "the resume")
            assert client.status.resumed is True, client.status
            assert recovered[-1] == {"trades/BTC": True, "trades/ETH": True}
            await eventually(lambda: same_as_rest(host, client), "the state after the restart")
            assert client.get("trades/BTC").seq > before

    asyncio.run(main())


def test_resume_after_a_dropped_connection(hosts):
    async def main():
        host = hosts()
        host.append("trades.csv", "BTC,100,1,1700000000000\nETH,3000,2,1700000000001\n")
        await eventually(lambda: rest_count(host, "trades/ETH", 1), "the first topics")
        async with Proxy(host.addr) as proxy:
            async with wasmeter_client.connect(f"ws://{proxy.addr}/ws", format="msgpack", **FAST) as client:
                statuses: list[str] = []
                client.on("status", lambda s: statuses.append(s.status))
                await client.subscribe("trades/*")
                await eventually(lambda: same_as_rest(host, client), "the snapshots")
                # Cut every connection and refuse new ones while the host goes on.
                await proxy.cut()
                await eventually(lambda: "reconnecting" in statuses, "the client to notice")
                host.append("trades.csv", "BTC,101,3,1700000000002\nETH,2999.25,4,1700000000004\n")
                await eventually(lambda: rest_count(host, "trades/BTC", 2), "the appends in REST")
                assert client.get("trades/BTC").state["count"] == 1, "nothing arrives while cut"
                proxy.resume()
                await eventually(lambda: client.status.resumed is not None, "the resume")
                assert client.status.resumed is True, client.status
                await eventually(lambda: same_as_rest(host, client), "the state after the drop")

    asyncio.run(main())
