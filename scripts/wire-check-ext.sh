#!/usr/bin/env bash
# The wire check of proto-ext/: API files missing from the official descriptor set that the
# shared wire check compares proto/ with. Dumps the official descriptors of the same
# `yandexcloud` release (0.413.0, the one pinned for the Python SDK tests) with those files
# added, using the shared tool's own dumper, and compares proto/ and proto-ext/ together with
# them. Prints the comparison's last line ("N messages checked, M wire differences"); exits
# non-zero on any difference.
#
#   scripts/wire-check-ext.sh WIRE_CHECK_DIR     (the shared tools/wire-check directory)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
tool="$(cd "${1:?usage: wire-check-ext.sh WIRE_CHECK_DIR}" && pwd)"
cd "$root"

# The shared check's environment compiles (grpcio-tools); the Python SDK's has yandexcloud.
"$tool/check" proto >/dev/null || true
protoc_venv="${WIRE_CHECK_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wire-check-venv}"
official_python="$(scripts/python-sdk.sh | tail -n 1)"

mapfile -t ext < <(cd proto-ext && find . -name '*.proto' | sed 's|^\./||' | sort)
mapfile -t base < <(cd proto && find . -name '*.proto' -not -path './google/protobuf/*' | sed 's|^\./||' | sort)
file_args=()
for f in "${ext[@]}"; do file_args+=(--file "$f"); done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$official_python" "$tool/official_descriptors.py" "${file_args[@]}" "$work/official.pb" >/dev/null
inc="$("$protoc_venv/bin/python" -c 'import grpc_tools, os; print(os.path.join(os.path.dirname(grpc_tools.__file__), "_proto"))')"
"$protoc_venv/bin/python" -m grpc_tools.protoc -Iproto -Iproto-ext -I"$inc" --include_imports \
  --descriptor_set_out="$work/candidate.pb" "${base[@]}" "${ext[@]}"
"$protoc_venv/bin/python" "$tool/compare_descriptors.py" "$work/official.pb" "$work/candidate.pb" | tail -n 1
