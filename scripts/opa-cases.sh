#!/usr/bin/env bash
# Extracts OPA's conformance cases (v1/test/cases/testdata) from an OPA clone or bare git
# directory into DEST (git-ignored, e.g. target/opa-cases), with the commit in DEST/OPA_COMMIT.
# OPA's files stay out of this repository: `make conformance OPA_CASES=DEST` reads them there.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 <opa-clone-or-git-dir> <dest>" >&2
  exit 2
fi
src=$1 dest=$2
git_dir=$(git -C "$src" rev-parse --git-dir 2>/dev/null) || { echo "error: $src is not a git clone of OPA" >&2; exit 1; }
case $git_dir in /*) ;; *) git_dir=$src/$git_dir ;; esac
[ "$(git -C "$src" rev-parse --is-bare-repository)" = true ] && git_dir=$src
commit=$(git --git-dir="$git_dir" rev-parse HEAD)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git --git-dir="$git_dir" archive "$commit" v1/test/cases/testdata | tar -x -C "$tmp"
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp/v1/test/cases/testdata" "$dest"
echo "$commit" >"$dest/OPA_COMMIT"
echo "$dest: OPA's cases at $commit ($(find "$dest" -name '*.yaml' | wc -l) files)"
