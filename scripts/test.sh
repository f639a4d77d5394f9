#!/usr/bin/env bash
# The test command: builds the plugin components from source, then runs every test.
# Works on a fresh machine: it installs the wasm target itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/build-plugins.sh"

# The dashboard's browser test (tests/browser.rs) drives the system's Chromium with
# playwright-core. Install both when missing (Chromium needs root, as in CI).
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "test.sh: installing chromium" >&2
        (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) >&2
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        echo "test.sh: installing chromium" >&2
        (sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y chromium) >&2
    else
        echo "test.sh: chromium is missing and cannot be installed without root" >&2
    fi
fi
# --- Tools and servers the tests run (servers on free loopback ports), from Debian:
# promtool, Prometheus's own client of the history API (tests/history.rs);
# VictoriaMetrics and Alertmanager (tests/export.rs); redis-server (host/redis/tests,
# tests/cluster.rs).
for tool in promtool:prometheus victoria-metrics:victoria-metrics \
    prometheus-alertmanager:prometheus-alertmanager redis-server:redis-server; do
    bin="${tool%%:*}" package="${tool##*:}"
    if ! command -v "$bin" >/dev/null; then
        if [ "$(id -u)" = 0 ]; then
            echo "test.sh: installing $bin (Debian package $package)" >&2
            (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package") >&2
        elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            echo "test.sh: installing $bin (Debian package $package)" >&2
            (sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package") >&2
        else
            echo "test.sh: $bin is missing and cannot be installed without root" >&2
        fi
    fi
done
# --- end of the servers block.
if command -v npm >/dev/null; then
    if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
        (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund) >&2
    fi
else
    echo "test.sh: npm is missing: the browser test cannot run" >&2
fi

# ---- The client libraries (tests/clients.rs) ----
# clients/js: its devDependencies (ws, typescript, @msgpack/msgpack) from its lock file,
# reinstalled when the lock file changes.
if command -v npm >/dev/null; then
    JS="$ROOT/clients/js"
    LOCK_SUM="$(sha256sum "$JS/package-lock.json" | cut -c1-64)"
    if [ "$(cat "$JS/node_modules/.wasmeter-lock" 2>/dev/null)" != "$LOCK_SUM" ]; then
        (cd "$JS" && npm ci --no-audit --no-fund && echo "$LOCK_SUM" > node_modules/.wasmeter-lock) >&2
    fi
else
    echo "test.sh: npm is missing: the JS client's tests cannot run" >&2
fi
# clients/python: a venv of its own in ~/.cache/wasmeter/pyenv, keyed by what it
# installs (pytest and the package's dependencies, pinned), with the package editable.
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "test.sh: installing python3 and python3-venv" >&2
        (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv) >&2
    else
        echo "test.sh: python3 with venv is missing and cannot be installed without root" >&2
    fi
fi
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
    PY="$ROOT/clients/python"
    PY_KEY="$( (python3 --version; cat "$PY/requirements-test.txt" "$PY/pyproject.toml") | sha256sum | cut -c1-16)"
    PYENV="${XDG_CACHE_HOME:-$HOME/.cache}/wasmeter/pyenv/$PY_KEY"
    if [ ! -e "$PYENV/.complete" ]; then
        echo "test.sh: making the Python client's venv $PYENV" >&2
        rm -rf "$PYENV"
        (python3 -m venv "$PYENV" \
            && "$PYENV/bin/pip" install --quiet --disable-pip-version-check -r "$PY/requirements-test.txt" \
            && "$PYENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -e "$PY" \
            && touch "$PYENV/.complete") >&2
    fi
    export WASMETER_PYTHON="$PYENV/bin/python"
fi

# ---- Guest plugins in Python and JavaScript (tests/guest_plugins.rs) ----
# componentize-py (a cached venv) and componentize-js (npm ci in plugins/js) build the
# examples of plugins/python and plugins/js; unchanged components come from a cache.
# A toolchain that cannot be installed is recorded for the test, which names it (and
# fails under CI), so this step never stops the suite.
"$ROOT/scripts/build-guest-plugins.sh" || echo "test.sh: some guest plugins could not be built (tests/guest_plugins.rs says which)" >&2

# The plugins' own logic, natively (the SDK falls back to stderr and the OS clock).
cargo test --manifest-path "$ROOT/plugins/Cargo.toml" --workspace
cargo test --workspace --all-targets "$@"
# Doc tests (`--all-targets` skips them).
cargo test --workspace --doc "$@"
