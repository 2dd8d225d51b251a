#!/usr/bin/env bash
# Provides the official Python SDK, pinned in crates/yandex-cloud-ml-emulator/tests/python/
# requirements.txt, in a virtual environment in the cache (for the interop tests and the
# benchmark). Installs it on first use (network access to PyPI), again when the pins change.
# Prints the interpreter's path on the last line of stdout.
#
#   XDG_CACHE_HOME     the cache root (default ~/.cache)
#   PYTHON             the Python that creates the environment (default python3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
. "$root/scripts/lib.sh"

cache="$(cache_dir)"
venv="$cache/python-sdk"
requirements="$root/crates/yandex-cloud-ml-emulator/tests/python/requirements.txt"
pins="$(sha256sum "$requirements" | cut -d' ' -f1)"

hold_lock "$cache/python-sdk.lock"
if [ "$(cat "$venv/.pins" 2>/dev/null)" != "$pins" ] \
  || ! "$venv/bin/python" -c 'import yandex_cloud_ml_sdk, pyarrow, openai' 2>/dev/null; then
  echo "python-sdk: installing the pinned official Python SDK into $venv (from PyPI)" >&2
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" >&2
  echo "$pins" > "$venv/.pins"
fi
echo "$venv/bin/python"
