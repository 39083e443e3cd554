#!/usr/bin/env bash
# Creates the Python virtual environment of the S3-compatible server the model-source tests download
# from (moto's standalone server, from PyPI), skipped when it already holds the pinned version.
# Prints the path of its moto_server on the last line.
set -euo pipefail
source "$(dirname "$0")/lib/pip-venv.sh"

MOTO_VERSION="${MOTO_VERSION:-5.2.5}"
VENV="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}/venv-moto-$MOTO_VERSION"
pip_venv s3-server "$VENV" "$VENV/bin/moto_server" "moto[server]==$MOTO_VERSION" "import moto.server, flask"
