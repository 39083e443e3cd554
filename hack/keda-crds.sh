#!/usr/bin/env bash
# Prints the directory holding KEDA's own CRD YAML (config/crd/bases), taken from KEDA's Go module
# through the module proxy (cached in the Go module cache). Tests install ScaledObject and
# TriggerAuthentication from there, so desired ScaledObjects are checked against KEDA's real schema.
set -euo pipefail
KEDA_VERSION="${KEDA_VERSION:-v2.21.0}"
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
work="$CACHE/build/keda-$KEDA_VERSION"
mkdir -p "$work"
# go mod download needs a module context only for GOFLAGS=-mod=mod; a bare directory is enough.
dir=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" |
  sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -f "$dir/config/crd/bases/keda.sh_scaledobjects.yaml" ] || {
  echo "[keda] KEDA $KEDA_VERSION module has no config/crd/bases/keda.sh_scaledobjects.yaml" >&2
  exit 1
}
echo "$dir/config/crd/bases"
