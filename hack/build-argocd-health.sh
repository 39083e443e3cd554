#!/usr/bin/env bash
# Builds hack/argocd-health (ArgoCD's own Lua resource-health evaluation, from the argo-cd Go module
# pinned in its go.mod) into the same versioned cache as the control plane, skipped when the cache
# holds it. The key includes a hash of the program's sources, so an edit rebuilds. Only the ArgoCD
# health-check test needs it. Prints the path of the binary on the last line.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/argocd-health"
ARGOCD_VERSION=$(sed -n 's|^[[:space:]]*github.com/argoproj/argo-cd/v3 \(v[^ ]*\)$|\1|p' "$SRC/go.mod" | head -1)
[ -n "$ARGOCD_VERSION" ] || { echo "[argocd-health] no argo-cd/v3 version in $SRC/go.mod" >&2; exit 1; }
HASH=$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
BIN="$CACHE/bin/argocd-health-$ARGOCD_VERSION-$HASH"

log() { echo "[argocd-health] $*" >&2; }

if [ -x "$BIN/argocd-health" ]; then
  log "argocd-health (argo-cd $ARGOCD_VERSION) cached"
  echo "$BIN/argocd-health"
  exit 0
fi

command -v go >/dev/null || { log "Go toolchain not found; install Go >= 1.25"; exit 1; }
mkdir -p "$BIN"
# Parallel test files may all ask for it on a fresh machine: build it once.
exec 9>"$BIN.lock"
flock 9
if [ -x "$BIN/argocd-health" ]; then
  log "argocd-health (argo-cd $ARGOCD_VERSION) cached"
  echo "$BIN/argocd-health"
  exit 0
fi
log "building argocd-health against argo-cd $ARGOCD_VERSION (first time only: several minutes with an empty Go module cache)"
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
(cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$BIN/argocd-health.tmp" . && mv "$BIN/argocd-health.tmp" "$BIN/argocd-health")
echo "$BIN/argocd-health"
