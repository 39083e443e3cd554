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
# shellcheck source=lib/cache.sh
source "$HERE/lib/cache.sh"
BIN="$CACHE/bin/argocd-health-$ARGOCD_VERSION-$HASH"

log() { echo "[argocd-health] $*" >&2; }

once_into_cache argocd-health "$BIN/argocd-health"
command -v go >/dev/null || { log "Go toolchain not found; install Go >= 1.25"; exit 1; }
log "building argocd-health against argo-cd $ARGOCD_VERSION (first time only: several minutes with an empty Go module cache)"
export GOFLAGS="-mod=readonly -buildvcs=false" CGO_ENABLED=0
(cd "$SRC" && go build -trimpath -ldflags "-s -w" -o "$BIN/argocd-health.tmp" . && mv "$BIN/argocd-health.tmp" "$BIN/argocd-health")
echo "$BIN/argocd-health"
