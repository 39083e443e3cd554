#!/usr/bin/env bash
# Creates the Python virtual environment of the S3-compatible server the model-source tests download
# from (moto's standalone server, from PyPI), skipped when it already holds the pinned version.
# Prints the path of its moto_server on the last line.
set -euo pipefail

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
VENV="$CACHE/venv-moto-$MOTO_VERSION"
SERVER="$VENV/bin/moto_server"

log() { echo "[s3-server] $*" >&2; }

ready() { [ -x "$SERVER" ] && [ -f "$VENV/.complete" ]; }

if ready; then
  log "moto $MOTO_VERSION cached"
  echo "$SERVER"
  exit 0
fi

command -v python3 >/dev/null || { log "python3 not found; install Python >= 3.9"; exit 1; }
mkdir -p "$CACHE"
# Test files run in parallel and may all ask at once: create the environment once.
exec 9>"$VENV.lock"
flock 9
if ready; then
  echo "$SERVER"
  exit 0
fi
if ! python3 -c "import ensurepip, venv" 2>/dev/null; then
  log "python3-venv missing; installing it from Debian's packages"
  apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
fi
rm -rf "$VENV"
python3 -m venv "$VENV"
log "installing moto[server] $MOTO_VERSION (first time only)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
"$VENV/bin/python" -c "import moto.server, flask" >&2
touch "$VENV/.complete"
echo "$SERVER"
