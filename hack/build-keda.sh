#!/usr/bin/env bash
# Builds KEDA's operator and metrics adapter (cmd/operator, cmd/adapter of github.com/kedacore/keda/v2)
# from the Go module proxy into a versioned cache outside the repo, at the version whose CRDs
# hack/keda-crds.sh installs. Skips any binary the cache already holds. Prints the bin directory on
# the last line. First build: about 6 minutes (operator) + 2 minutes (adapter) on 2 cores.
set -euo pipefail

KEDA_VERSION="${KEDA_VERSION:-v2.21.0}"
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
BIN="$CACHE/bin/keda-$KEDA_VERSION"
DIR="$CACHE/build/keda-build-$KEDA_VERSION"
mkdir -p "$BIN" "$DIR"

log() { echo "[keda] $*" >&2; }

if [ -x "$BIN/keda-operator" ] && [ -x "$BIN/keda-adapter" ]; then
  log "operator/adapter $KEDA_VERSION cached"
  echo "$BIN"
  exit 0
fi
command -v go >/dev/null || { log "Go toolchain not found; install Go >= 1.26"; exit 1; }

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

# KEDA's own go.mod has a replace and an exclude, which a dependent module does not inherit: a
# wrapper module that requires KEDA and repeats them builds the same packages with the same versions.
src=$(cd "$DIR" && go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -f "$src/go.mod" ] || { log "KEDA $KEDA_VERSION module not found"; exit 1; }
{
  echo "module turnpike.dev/build/keda"
  echo
  sed -n 's/^go \(.*\)/go \1/p' "$src/go.mod"
  echo
  echo "require github.com/kedacore/keda/v2 $KEDA_VERSION"
  echo
  grep -E '^(replace|exclude) ' "$src/go.mod" || true
} > "$DIR/go.mod"
cat > "$DIR/tools.go" <<'SRC'
//go:build tools

package tools

import (
	_ "github.com/kedacore/keda/v2/cmd/adapter"
	_ "github.com/kedacore/keda/v2/cmd/operator"
)
SRC
ld="-s -w -X=github.com/kedacore/keda/v2/version.Version=$KEDA_VERSION -X=github.com/kedacore/keda/v2/version.GitCommit=module-proxy"
cd "$DIR"
[ -f go.sum ] || go mod tidy -e >/dev/null 2>&1 || go mod tidy
if [ ! -x "$BIN/keda-operator" ]; then
  log "building KEDA operator $KEDA_VERSION (first time only, about 6 minutes)"
  go build -trimpath -ldflags "$ld" -o "$BIN/keda-operator.tmp" github.com/kedacore/keda/v2/cmd/operator
  mv "$BIN/keda-operator.tmp" "$BIN/keda-operator"
fi
if [ ! -x "$BIN/keda-adapter" ]; then
  log "building KEDA metrics adapter $KEDA_VERSION (first time only, about 2 minutes)"
  go build -trimpath -ldflags "$ld" -o "$BIN/keda-adapter.tmp" github.com/kedacore/keda/v2/cmd/adapter
  mv "$BIN/keda-adapter.tmp" "$BIN/keda-adapter"
fi
echo "$BIN"
