# Sourced by the scripts that build or fetch something into the cache outside the repo.
# shellcheck shell=bash

CACHE="${TURNPIKE_CACHE:-$HOME/.cache/turnpike}"

# once_into_cache TAG FILE: when FILE is in the cache, prints its path and ends the calling script.
# Otherwise takes a lock beside FILE's folder (parallel test files may all ask for it on a fresh
# machine, and only the first should build it), checks again, and returns to build it.
once_into_cache() {
  local tag=$1 file=$2
  local dir
  dir=$(dirname "$file")
  if [ -e "$file" ]; then
    echo "[$tag] $(basename "$file") cached" >&2
    echo "$file"
    exit 0
  fi
  mkdir -p "$dir"
  exec 9>"$dir.lock"
  flock 9
  if [ -e "$file" ]; then
    echo "$file"
    exit 0
  fi
}
