"""The Python client against a real host with ``[auth]`` (the ``wasmeter`` binary at
$WASMETER_BIN): short tokens from ``get_token`` are refreshed on the open connection,
which outlives them and keeps receiving updates; a subscription outside the token is
refused (``forbidden``) and dropped; a fixed token that expires ends the client (4004)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import wasmeter_client
from host import eventually

SECRET = b"a secret for the Python client test, 32+ bytes"
# The host closes a connection at exp + leeway; the client refreshes shortly before exp.
AUTH = """
[auth]
hmac_secret_file = "secret"
leeway_secs = 2
"""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(topics: list[str], secs: int, sub: str = "py-test") -> str:
    """An HS256 JWT for ``topics`` expiring in ``secs`` seconds."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps({"sub": sub, "exp": int(time.time()) + secs, "topics": topics}).encode())
    sig = hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64url(sig)}"


def test_tokens_are_refreshed_refused_topics_dropped_and_an_expired_token_ends_the_client(hosts, tmp_path):
    (tmp_path / "secret").write_bytes(SECRET)

    async def main():
        host = hosts(extra=AUTH)
        host.append("trades.csv", "BTC,100,1,1700000000000\n")
        minted = 0

        def get_token() -> str:
            nonlocal minted
            minted += 1
            return mint(["trades/*"], 3)

        refreshed, errors, statuses = [], [], []
        async with wasmeter_client.connect(f"ws://{host.addr}/ws", get_token=get_token) as client:
            client.on("refreshed", refreshed.append)
            client.on("error", errors.append)
            client.on("status", lambda s: statuses.append(s.status))
            await client.subscribe("trades/*")
            await client.subscribe("system/*")
            await eventually(lambda: (t := client.get("trades/BTC")) and t.state.get("price") == 100, "the snapshot")
            await eventually(lambda: any(e.code == "forbidden" for e in errors), "the refusal of system/*")
            await eventually(lambda: len(refreshed) >= 3, "three refreshes")
            host.append("trades.csv", "BTC,101,1,1700000000001\n")
            await eventually(lambda: client.get("trades/BTC").state.get("price") == 101, "an update after them")
            assert "reconnecting" not in statuses, statuses
            assert minted >= 4, minted

        async with wasmeter_client.connect(f"ws://{host.addr}/ws", token=mint(["trades/*"], 1)) as fixed:
            await fixed.subscribe("trades/*")
            await eventually(lambda: fixed.status.status == "closed", "the expiry", timeout=20)
            assert fixed.status.code == 4004, fixed.status

    asyncio.run(main())
