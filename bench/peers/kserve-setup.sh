#!/usr/bin/env bash
# Installs the KServe peer of the benchmark (bench/sections/kserve.ts) into a Python virtual
# environment outside the repo: PyPI kserve (its ModelServer) and onnxruntime, pinned. Idempotent:
# a complete environment (marked by a stamp file naming the pins) is left alone. Not part of
# `make test`; only `npm run bench` calls it. Prints the venv's python path on the last line.
set -euo pipefail

KSERVE_VERSION=0.21.0
ONNXRUNTIME_VERSION=1.24.3
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
VENV="$CACHE/venv-kserve"
STAMP="$VENV/.turnpike-stamp"
WANT="kserve==$KSERVE_VERSION onnxruntime==$ONNXRUNTIME_VERSION"

if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' || {
  echo "kserve-setup: Python >= 3.9 is needed (found $("$PYTHON" --version 2>&1))" >&2
  exit 1
}
mkdir -p "$CACHE"
# One installer at a time: a second bench waits instead of mixing two pip runs in one venv.
exec 9>"$VENV.lock"
flock 9
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
  echo "$VENV/bin/python"
  exit 0
fi
rm -rf "$VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-input \
  "kserve==$KSERVE_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION" >&2
echo "$WANT" >"$STAMP"
echo "$VENV/bin/python"
