import os

import pytest

from host import BIN, Host


def in_ci() -> bool:
    return os.environ.get("CI", "") not in ("", "0", "false")


@pytest.fixture
def hosts(tmp_path):
    """Starts hosts on tmp_path (``hosts(listen=None, extra="")``, ``extra`` appended to
    the config); stops every one at the end."""
    if not BIN:
        if in_ci():
            pytest.fail("WASMETER_BIN is not set (tests/clients.rs sets it)")
        pytest.skip("WASMETER_BIN is not set (tests/clients.rs sets it)")
    started: list[Host] = []

    def start(listen: str | None = None, extra: str = "") -> Host:
        h = Host(tmp_path, listen, extra)
        started.append(h)
        return h

    yield start
    for h in started:
        h.stop()
