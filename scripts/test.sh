#!/usr/bin/env bash
# The test command: builds the plugin components from source, then runs every test.
# Works on a fresh machine: it installs the wasm target itself.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

"$ROOT/scripts/build-plugins.sh"
# The plugins' own logic, natively (the SDK falls back to stderr and the OS clock).
cargo test --manifest-path "$ROOT/plugins/Cargo.toml" --workspace
cargo test --workspace --all-targets "$@"
# Doc tests (`--all-targets` skips them).
cargo test --workspace --doc "$@"
