#!/usr/bin/env bash
# Builds the emulator and the bench in release mode, provides the official Python SDK, and
# runs the benchmark. Usage: scripts/bench.sh [--seconds N] [--write BENCHMARKS-table.md]
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/yandex-cloud-ml-sdk-rs"
venv="$cache/python-sdk"
if ! "$venv/bin/python" -c 'import yandex_cloud_ml_sdk' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r crates/yandex-cloud-ml-emulator/tests/python/requirements.txt
fi
cargo build --release -q -p yandex-cloud-ml-emulator -p ycml-bench
target="${CARGO_TARGET_DIR:-target}"
exec "$target/release/ycml-bench" --python "$venv/bin/python" "$@"
