#!/usr/bin/env bash
# Reproduces every table of BENCHMARKS.md: builds the emulator and ycml-bench in release mode
# (with the local model), provides the official Python SDK and the model, and runs each
# section of the benchmark in turn, printing its report.
#
#   scripts/bench.sh [--seconds N] [--rounds N]    every section
#   BENCH_SECTIONS="main hostile" scripts/bench.sh  only these (main hostile upload batch chat
#                                                    local-model local-model-1-thread)
# --seconds and --rounds apply to the main section (unary, streams, in flight, ratios).
set -euo pipefail
cd "$(dirname "$0")/.."
sections="${BENCH_SECTIONS:-main hostile upload batch chat local-model local-model-1-thread}"
wants() { [[ " $sections " == *" $1 "* ]]; }

python="$(scripts/python-sdk.sh | tail -n 1)"
cargo build --release -q -p yandex-cloud-ml-emulator -p ycml-bench \
  --features yandex-cloud-ml-emulator/local-model,ycml-bench/local-model
bench="${CARGO_TARGET_DIR:-target}/release/ycml-bench"

section() { printf '\n## %s\n\n' "$1"; }
if wants main; then section "main: unary, streams, 10,000 in flight, emulator alone, ratios"
  "$bench" --python "$python" "$@"; fi
if wants hostile; then section "hostile"; "$bench" hostile --seconds 8; fi
if wants upload; then section "upload"; "$bench" upload --size-mib 1024; fi
if wants batch; then section "batch"; "$bench" batch --rows 100000; fi
if wants chat; then section "chat"; "$bench" chat --calls 2100 --streams 210; fi
if wants local-model || wants local-model-1-thread; then
  model="$(scripts/fetch-model.sh | tail -n 1)"
  if wants local-model; then section "local model"; "$bench" local-model --model "$model"; fi
  if wants local-model-1-thread; then section "local model, one thread per side, 2 slots"
    RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1 "$bench" local-model --model "$model" --slots 2; fi
fi
