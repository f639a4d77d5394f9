#!/usr/bin/env bash
# The built-in plugins shipped inside the wasmeter binary (host/cli/builtin/*.wasm)
# are prebuilt components, so that `wasmeter serve` works on a machine without a
# wasm toolchain. This script rebuilds them from plugins/ and either updates the
# committed copies (--update) or fails if they differ from their sources (--check).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODE="${1:---check}"
BUILTINS=(csv_collector jsonl_collector system_collector field_delta counter_rate ewma rolling_minmax vwap threshold_alert)
OUT="$ROOT/target/plugins/wasm32-wasip2/release"
DEST="$ROOT/host/cli/builtin"

"$ROOT/scripts/build-plugins.sh" >/dev/null

case "$MODE" in
--update)
    mkdir -p "$DEST"
    for name in "${BUILTINS[@]}"; do
        cp "$OUT/$name.wasm" "$DEST/$name.wasm"
    done
    echo "updated ${#BUILTINS[@]} built-in plugins in ${DEST#"$ROOT"/}"
    ;;
--check)
    stale=()
    for name in "${BUILTINS[@]}"; do
        cmp -s "$OUT/$name.wasm" "$DEST/$name.wasm" || stale+=("$name")
    done
    if [ ${#stale[@]} -gt 0 ]; then
        echo "built-in plugins out of date with plugins/: ${stale[*]}" >&2
        echo "run scripts/builtin-plugins.sh --update and commit host/cli/builtin/" >&2
        exit 1
    fi
    echo "built-in plugins match their sources"
    ;;
*)
    echo "usage: $0 [--check|--update]" >&2
    exit 2
    ;;
esac
