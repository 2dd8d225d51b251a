# Shared by the scripts that provide test prerequisites (sourced, not run).

# The cache outside the clone: target dir, Python SDK, models.
cache_dir() {
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/yandex-cloud-ml-sdk-rs"
}

# Holds an exclusive lock on the file $1 until the script exits, so that parallel test
# processes do the work once and the others wait for it (flock(1), util-linux; without it the
# script runs unlocked).
hold_lock() {
  mkdir -p "$(dirname "$1")"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$1"
    flock 9
  fi
}
