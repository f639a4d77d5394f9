"""A real ``wasmeter serve`` process for the tests: the binary is $WASMETER_BIN (set by
tests/clients.rs), its config a CSV collector over ``feed/*.csv`` in a temp dir."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Awaitable, Callable

BIN = os.environ.get("WASMETER_BIN")

CONFIG = """
data_dir = "data"

[server]
listen = "127.0.0.1:0"

[plugins.csv]
builtin = "csv-collector"

[plugins.delta]
builtin = "field-delta"

[sources.trades]
type = "file"
include = ["feed/*.csv"]
reconcile_interval_ms = 200

[pipelines.trades]
sources = ["trades"]
collector = "csv"
delta = "delta"
checkpoint_interval_ms = 200
topics = ["trades"]
"""


class Host:
    """A running host process on ``dir``'s config."""

    def __init__(self, dir: Path, listen: str | None = None, extra: str = "") -> None:
        (dir / "feed").mkdir(exist_ok=True)
        (dir / "wasmeter.toml").write_text(CONFIG + extra)
        self.dir = dir
        args = [BIN, "--log-level", "info", "serve", "--config", str(dir / "wasmeter.toml"),
                "--admin-listen", "127.0.0.1:0"]
        if listen:
            args += ["--listen", listen]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._log: list[str] = []
        self._stderr = threading.Thread(target=lambda: self._log.extend(self.proc.stderr), daemon=True)
        self._stderr.start()
        # The host prints where it listens first; a failed start closes stdout.
        first = self.proc.stdout.readline()
        prefix = "wasmeter: listening on http://"
        if not first.startswith(prefix):
            self.proc.kill()
            self.proc.wait(20)
            raise RuntimeError(f"host did not start: {first!r}; log:\n{self.log}")
        self.addr = first[len(prefix):].split()[0]
        # Keep draining stdout so the host never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    @property
    def log(self) -> str:
        return "".join(self._log)

    def append(self, file: str, text: str) -> None:
        with open(self.dir / "feed" / file, "a") as f:
            f.write(text)

    def topic(self, topic: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://{self.addr}/api/topics/{topic}", timeout=10) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)

    def stop(self) -> str:
        """SIGTERM and a clean exit within 20 s (else SIGKILL and an error)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                code = self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(20)
                raise RuntimeError(f"host did not stop within 20 s of SIGTERM; log:\n{self.log}")
            if code != 0:
                raise RuntimeError(f"host exited with {code}; log:\n{self.log}")
        self._stderr.join(20)
        return self.log


async def eventually(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Polls ``check`` (sync or async; truthy when done) until done or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if isinstance(last, Awaitable):
                last = await last
            if last:
                return last
        except AssertionError as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {last!r}")
        await asyncio.sleep(0.05)
