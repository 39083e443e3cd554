#!/usr/bin/env bash
# Creates the Python virtual environment of the third-party Open Inference Protocol v2 clients
# the gateway is tested with (tritonclient's HTTP client, unmodified, from PyPI), skipped when it
# already holds the pinned versions. Prints the path of its python on the last line.
set -euo pipefail

TRITONCLIENT_VERSION="${TRITONCLIENT_VERSION:-2.73.0}"
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
VENV="$CACHE/venv-oip-$TRITONCLIENT_VERSION"
PY="$VENV/bin/python"

log() { echo "[python-clients] $*" >&2; }

ready() { [ -x "$PY" ] && [ -f "$VENV/.complete" ]; }

if ready; then
  log "tritonclient $TRITONCLIENT_VERSION cached"
  echo "$PY"
  exit 0
fi

command -v python3 >/dev/null || { log "python3 not found; install Python >= 3.9"; exit 1; }
mkdir -p "$CACHE"
# Test files run in parallel and may all ask at once: create the environment once.
exec 9>"$VENV.lock"
flock 9
if ready; then
  log "tritonclient $TRITONCLIENT_VERSION cached"
  echo "$PY"
  exit 0
fi
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  log "python3-venv missing; installing it from Debian's packages"
  apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
log "installing tritonclient[http] $TRITONCLIENT_VERSION (first time only)"
"$PY" -m pip install --quiet --disable-pip-version-check "tritonclient[http]==$TRITONCLIENT_VERSION" >&2
"$PY" -c "import tritonclient.http, numpy" >&2
touch "$VENV/.complete"
echo "$PY"
