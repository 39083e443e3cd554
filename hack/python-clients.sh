#!/usr/bin/env bash
# Creates the Python virtual environment of the third-party Open Inference Protocol v2 clients
# the gateway is tested with (tritonclient's HTTP client, unmodified, from PyPI), skipped when it
# already holds the pinned versions. Prints the path of its python on the last line.
set -euo pipefail
source "$(dirname "$0")/lib/pip-venv.sh"

TRITONCLIENT_VERSION="${TRITONCLIENT_VERSION:-2.73.0}"
VENV="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}/venv-oip-$TRITONCLIENT_VERSION"
pip_venv python-clients "$VENV" "$VENV/bin/python" "tritonclient[http]==$TRITONCLIENT_VERSION" \
  "import tritonclient.http, numpy"
