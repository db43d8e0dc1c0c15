#!/usr/bin/env bash
# Obtains the pinned llama.cpp source (v0.5.0) and prints the folder that holds it.
#
# The source comes from the npm package node-llama-cpp@3.22.1, which carries llama.cpp as a
# git bundle. The tarball's sha256 is checked before anything is unpacked. The clone lives in
# a cache folder outside the repository and is reused when present.
# HEED_LLAMA_SOURCE_DIR, when set, names a checkout to use instead; nothing is fetched then.
set -euo pipefail

readonly PACKAGE="node-llama-cpp@3.22.1"
readonly TARBALL="node-llama-cpp-3.22.1.tgz"
readonly SHA256="a0d9dd80eacd2ab1cfe71aee57ac8a806487fd70b3d2a38fbec637752d9e5c5f"
readonly TAG="v0.5.0"

if [[ -n "${HEED_LLAMA_SOURCE_DIR:-}" ]]; then
  if [[ ! -f "$HEED_LLAMA_SOURCE_DIR/include/llama.h" ]]; then
    echo "HEED_LLAMA_SOURCE_DIR=$HEED_LLAMA_SOURCE_DIR has no include/llama.h; point it at a llama.cpp checkout of tag $TAG" >&2
    exit 1
  fi
  echo "$HEED_LLAMA_SOURCE_DIR"
  exit 0
fi

cache="${HEED_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/heed}"
dest="$cache/llama.cpp-$TAG"
if [[ -f "$dest/include/llama.h" ]]; then
  echo "$dest"
  exit 0
fi

command -v npm >/dev/null || { echo "npm is needed to fetch llama.cpp ($PACKAGE); install nodejs and npm" >&2; exit 1; }
command -v git >/dev/null || { echo "git is needed to unpack llama.cpp; install git" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
echo "fetching llama.cpp $TAG from $PACKAGE ..." >&2
(cd "$work" && npm pack --silent "$PACKAGE" >/dev/null)
actual="$(sha256sum "$work/$TARBALL" | cut -d' ' -f1)"
if [[ "$actual" != "$SHA256" ]]; then
  echo "sha256 mismatch for $TARBALL: expected $SHA256, got $actual" >&2
  exit 1
fi
tar -xzf "$work/$TARBALL" -C "$work" package/llama/gitRelease.bundle package/llama/binariesGithubRelease.json
release="$(sed -n 's/.*"release": *"\([^"]*\)".*/\1/p' "$work/package/llama/binariesGithubRelease.json")"
if [[ "$release" != "$TAG" ]]; then
  echo "$PACKAGE carries llama.cpp $release, expected $TAG" >&2
  exit 1
fi

mkdir -p "$cache"
rm -rf "$dest.partial"
git clone --quiet "$work/package/llama/gitRelease.bundle" "$dest.partial" 2>/dev/null
mv "$dest.partial" "$dest"
echo "llama.cpp $TAG is in $dest" >&2
echo "$dest"
