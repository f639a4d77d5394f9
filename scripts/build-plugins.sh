#!/usr/bin/env bash
# Builds every guest plugin of plugins/ into a WebAssembly component.
#
#   scripts/build-plugins.sh [extra cargo args...]     (from any directory)
#
# Components land in target/plugins/wasm32-wasip2/release/<crate_name>.wasm. The
# wasm32-wasip2 target links through wasm-component-ld, so the output already is a
# component. Extra arguments go to `cargo build` (e.g. `-p csv-collector`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET=wasm32-wasip2
OUT_DIR="$ROOT/target/plugins/$TARGET/release"

# An outer cargo (build script, `cargo test` of the host, an IDE) may leak settings meant
# for the host's native build into this one.
unset CARGO_ENCODED_RUSTFLAGS RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET \
      CARGO_BUILD_RUSTFLAGS CARGO_MANIFEST_DIR CARGO_PRIMARY_PACKAGE RUSTC_WRAPPER \
      RUSTC_WORKSPACE_WRAPPER CARGO_MAKEFLAGS

if ! rustup target list --installed 2>/dev/null | grep -qx "$TARGET"; then
    echo "build-plugins: installing the $TARGET target" >&2
    rustup target add "$TARGET" >&2
fi

# Reproducible output: no machine-specific paths in the components (the built-in
# plugins shipped in the binary are checked byte for byte against a fresh build).
CARGO_HOME_DIR="${CARGO_HOME:-$HOME/.cargo}"
export RUSTFLAGS="--remap-path-prefix=$CARGO_HOME_DIR=/cargo --remap-path-prefix=$ROOT=/wasmeter"

CARGO_TARGET_DIR="$ROOT/target/plugins" cargo build \
    --manifest-path "$ROOT/plugins/Cargo.toml" \
    --release --target "$TARGET" "$@"

echo "Components in ${OUT_DIR#"$ROOT"/}:"
shopt -s nullglob
components=("$OUT_DIR"/*.wasm)
if [ ${#components[@]} -eq 0 ]; then
    echo "build-plugins: no component was built" >&2
    exit 1
fi
for wasm in "${components[@]}"; do
    printf '  %-24s %8d bytes\n' "$(basename "$wasm")" "$(stat -c %s "$wasm")"
done
