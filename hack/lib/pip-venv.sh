# shellcheck shell=bash
# One Python virtual environment from PyPI in the cache outside the repo, created once (a lock, as
# test files run in parallel may all ask at once) and reused while it holds the pinned version.
#
#   pip_venv <log name> <venv dir> <path to print> <pip requirement> <python import check>
#
# Prints <path to print> (a python or an entry point inside the venv) on the last line.
pip_venv() {
  local name="$1" venv="$2" entry="$3" requirement="$4" check="$5"
  log() { echo "[$name] $*" >&2; }
  ready() { [ -x "$entry" ] && [ -f "$venv/.complete" ]; }
  if ready; then
    log "$requirement cached"
    echo "$entry"
    return 0
  fi
  command -v python3 >/dev/null || { log "python3 not found; install Python >= 3.9"; return 1; }
  mkdir -p "$(dirname "$venv")"
  exec 9>"$venv.lock"
  flock 9
  if ready; then
    echo "$entry"
    return 0
  fi
  if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
    log "python3-venv missing; installing it from Debian's packages"
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  log "installing $requirement (first time only)"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$requirement" >&2
  "$venv/bin/python" -c "$check" >&2
  touch "$venv/.complete"
  echo "$entry"
}
