#!/usr/bin/env bash
# Builds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl from the Go module
# proxy into a versioned cache outside the repo. Skips any binary the cache already holds. Prints the
# bin directory on the last line.
set -euo pipefail

ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
K8S_VERSION="${K8S_VERSION:-v1.34.4}"
CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"
BIN="$CACHE/bin/etcd-$ETCD_VERSION-k8s-$K8S_VERSION"
WORK="$CACHE/build"
mkdir -p "$BIN" "$WORK"

log() { echo "[control-plane] $*" >&2; }

export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

build_etcd() {
  [ -x "$BIN/etcd" ] && { log "etcd $ETCD_VERSION cached"; return; }
  log "building etcd $ETCD_VERSION (first time only)"
  local dir="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$dir"
  # etcd's own go.mod has replace directives, so `go install` refuses it; a wrapper module that
  # only requires it builds the same package.
  cat > "$dir/go.mod" <<MOD
module turnpike.dev/build/etcd

go 1.24

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
  cat > "$dir/tools.go" <<'SRC'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
SRC
  (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true
   cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null
   go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" go.etcd.io/etcd/server/v3)
}

build_kube() {
  local tools="kube-apiserver kube-controller-manager kube-scheduler kubectl" missing="" t
  for t in $tools; do [ -x "$BIN/$t" ] || missing="$missing $t"; done
  if [ -z "$missing" ]; then log "kube binaries $K8S_VERSION cached"; return; fi
  log "building$missing $K8S_VERSION (first time only, several minutes)"
  local dir="$WORK/k8s-$K8S_VERSION"
  local staging="v0${K8S_VERSION#v1}"
  mkdir -p "$dir"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 with replaces into ./staging, which
  # a dependent module does not inherit: replace each with its published release instead.
  local gomod
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  local modules
  modules=$(awk '/^replace \(/{r=1;next} r&&/^\)/{r=0} r&&/=> \.\/staging/{print $1}' "$gomod")
  [ -n "$modules" ] || { log "no staging replaces found in $gomod"; exit 1; }
  {
    echo "module turnpike.dev/build/kube"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
    echo
    echo "replace ("
    for m in $modules; do echo "	$m => $m $staging"; done
    echo ")"
  } > "$dir/go.mod"
  cat > "$dir/tools.go" <<'SRC'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubectl/pkg/cmd"
)
SRC
  local major minor
  major=$(echo "$K8S_VERSION" | sed -E 's/^v([0-9]+)\..*/\1/')
  minor=$(echo "$K8S_VERSION" | sed -E 's/^v[0-9]+\.([0-9]+)\..*/\1/')
  local ld="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  (cd "$dir" && go mod tidy >/dev/null 2>&1 || (cd "$dir" && go mod tidy)
   cd "$dir"
   for t in $missing; do
     go build -trimpath -ldflags "$ld" -o "$BIN/$t.tmp" "k8s.io/kubernetes/cmd/$t"
     mv "$BIN/$t.tmp" "$BIN/$t"
   done)
}

command -v go >/dev/null || { log "Go toolchain not found; install Go >= 1.24"; exit 1; }
build_etcd
build_kube
echo "$BIN"
