#!/usr/bin/env bash
# The benchmarks (BENCHMARKS.md): builds the host as it is shipped (`--profile
# production`, Cargo.toml) and the load generator, runs every end-to-end scenario
# against the real `wasmeter` binary and the bare floor server in the same run, then
# the criterion benches (plugin calls, the pipeline's path, swap pause, the metric
# store).
#
#   scripts/bench.sh                 everything (about 20 minutes on 2 cores)
#   scripts/bench.sh latency ...     one scenario; arguments go to wasmeter-loadgen
#   BENCH_SKIP_CRITERION=1 scripts/bench.sh
#
# Results: target/bench/<scenario>.md and .json (under $CARGO_TARGET_DIR if set).
# Not part of scripts/test.sh: benchmarks measure, tests check behaviour.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

# 10,000 connections need as many file descriptors in the generator and the host.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "bench.sh: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)," \
     "$(free -g | awk '/Mem:/ {print $2}') GiB, open files $(ulimit -n), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

cargo build --profile production --workspace --bin wasmeter --bin wasmeter-loadgen
OUT="$TARGET_DIR/bench"
loadgen() {
    "$TARGET_DIR/production/wasmeter-loadgen" --host-bin "$TARGET_DIR/production/wasmeter" "$@"
}
loadgen --out "$OUT" "${@:-all}"
# Several hosts through Redis against one host with the memory broker (needs
# Debian's redis-server; about 3 minutes).
if [ $# -eq 0 ]; then
    loadgen --out "$OUT" cluster
fi
# The throughput goals of BENCHMARKS.md, a pipeline of two shards, the floor in
# the same run (about 4 minutes): 30,000 records/s one per write over 10 files;
# 100,000 records/s over 10,000 symbols through the collector, a derived metric
# (the demo's vwap) and the field delta; the backlog catch-up.
if [ $# -eq 0 ]; then
    goal() {
        local name=$1
        shift
        loadgen --out "$OUT/goal-$name" --shards 2 "$@"
    }
    goal live-30k latency --rates 30000 --subscribers 10 --files 10 --one-per-write --rounds 3
    # 30 s: the metric history cuts its first chunks 6-12 s into a feed of 10
    # samples/s per series; a shorter window ends before the steady state.
    goal live-100k latency --rates 100000 --subscribers 10 --topics 10000 --all-topics --metrics vwap --secs 30
    goal backlog backlog
fi

if [ $# -eq 0 ] && [ -z "${BENCH_SKIP_CRITERION:-}" ]; then
    # Plugin call overhead per kind and instantiation need the real components.
    "$ROOT/scripts/build-plugins.sh" >&2
    cargo bench -p wasmeter-plugin --bench plugin_calls
    # The pipeline's cost per record without source or server, and its pause
    # while a plugin is swapped, per kind.
    cargo bench -p wasmeter-pipeline --bench pipeline_path
    cargo bench -p wasmeter-pipeline --bench swap_pause
    # The metric store: writes (1,000 series; 50,000 from all over them, as the
    # 10,000-symbol feed), bytes per sample, queries, closing (a checkpoint).
    cargo bench -p wasmeter-tsdb --bench tsdb
fi
echo "bench.sh: results in $OUT" >&2
