#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy into the same versioned cache as the control plane
# (hack/build-control-plane.sh), skipped when the cache holds it. Only the packaging tests and chart
# authors need it: `helm template` renders config/helm/turnpike without a cluster.
# Prints the path of the helm binary on the last line.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.19.5}"
# shellcheck source=lib/cache.sh
source "$(dirname "$0")/lib/cache.sh"
BIN="$CACHE/bin/helm-$HELM_VERSION"

log() { echo "[helm] $*" >&2; }

once_into_cache helm "$BIN/helm"
command -v go >/dev/null || { log "Go toolchain not found; install Go >= 1.24"; exit 1; }
log "building helm $HELM_VERSION (first time only: a few minutes with an empty Go module cache)"
# helm's go.mod has no replace directives, so `go install` builds it directly. Versions are
# stamped the way helm's own Makefile does: its own, and the Kubernetes version of the client-go it
# builds with, which `helm template` and `helm lint` assume when no cluster is asked (unstamped, they
# assume 1.20 and refuse charts that need newer).
export GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0
gomod=$(cd "$CACHE" && go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
k8s_minor=$(sed -n 's|^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*|\1|p' "$gomod" | head -1)
[ -n "$k8s_minor" ] || { log "cannot find the client-go version in $gomod"; exit 1; }
ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  ld="$ld -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$k8s_minor"
done
GOBIN="$BIN" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
"$BIN/helm" version --short >&2
echo "$BIN/helm"
