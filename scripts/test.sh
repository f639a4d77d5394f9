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
# The metric history's Prometheus API is checked with Prometheus's own client,
# promtool (tests/history.rs), from the Debian package.
if ! command -v promtool >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "test.sh: installing promtool (Debian package prometheus)" >&2
        (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus) >&2
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        echo "test.sh: installing promtool (Debian package prometheus)" >&2
        (sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus) >&2
    else
        echo "test.sh: promtool is missing and cannot be installed without root" >&2
    fi
fi
# --- Export (tests/export.rs): a real VictoriaMetrics and Alertmanager, from Debian.
for tool in victoria-metrics:victoria-metrics prometheus-alertmanager:prometheus-alertmanager; do
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
# --- end of the export block.
if command -v npm >/dev/null; then
    if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ]; then
        (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund) >&2
    fi
else
    echo "test.sh: npm is missing: the browser test cannot run" >&2
fi

# The plugins' own logic, natively (the SDK falls back to stderr and the OS clock).
cargo test --manifest-path "$ROOT/plugins/Cargo.toml" --workspace
cargo test --workspace --all-targets "$@"
# Doc tests (`--all-targets` skips them).
cargo test --workspace --doc "$@"
