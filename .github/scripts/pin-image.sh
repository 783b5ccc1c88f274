#!/usr/bin/env bash
# Rewrites action.yml so the action runs the release's image by digest:
#
#   image: docker://ghcr.io/expedite-dev/expedite:X.Y.Z
# becomes
#   image: docker://ghcr.io/expedite-dev/expedite@sha256:<digest> # X.Y.Z
#
# A tag can be moved; a digest names one image forever, so pinning the action
# to a commit SHA then pins the code that runs. The release workflow runs this
# on the commit it built, and the release commit it makes is what vX.Y.Z and
# the major tag point at. tests/release.rs runs it on sample digests.
#
# Usage: pin-image.sh sha256:<64 hex digits> [path/to/action.yml]
# Exits 2 on bad usage, 1 when action.yml has no tag-form image line to pin
# (already pinned, or edited by hand); the file is left untouched then.
set -euo pipefail

image='ghcr.io/expedite-dev/expedite'
digest="${1:-}"
file="${2:-action.yml}"

if [[ ! "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "pin-image: the digest must be sha256: and 64 lower-case hex digits (got '${digest}')" >&2
  echo "usage: pin-image.sh sha256:<digest> [action.yml]" >&2
  exit 2
fi
if [[ ! -f "$file" ]]; then
  echo "pin-image: ${file}: no such file" >&2
  exit 2
fi

pattern="^  image: docker://${image//./\\.}:([0-9]+\.[0-9]+\.[0-9]+)\$"
matches=$(grep -cE "$pattern" "$file" || true)
if [[ "$matches" != 1 ]]; then
  if grep -qE "^  image: docker://${image//./\\.}@sha256:" "$file"; then
    echo "pin-image: ${file} already runs the image by digest; nothing to pin" >&2
  else
    echo "pin-image: ${file} has ${matches} lines of the form '  image: docker://${image}:X.Y.Z' (expected 1)" >&2
  fi
  exit 1
fi
version=$(sed -nE "s|${pattern}|\\1|p" "$file")

tmp=$(mktemp "${file}.XXXXXX")
trap 'rm -f "$tmp"' EXIT
sed -E "s|${pattern}|  image: docker://${image}@${digest} # ${version}|" "$file" >"$tmp"
chmod --reference="$file" "$tmp" 2>/dev/null || true
mv "$tmp" "$file"
trap - EXIT
echo "pinned ${file}: docker://${image}@${digest} (${version})"
