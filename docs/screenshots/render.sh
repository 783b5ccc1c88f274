#!/usr/bin/env bash
# Renders the drill's job summary the way GitHub shows it and screenshots it:
#   docs/drill-summary.md       the markdown `expedite drill` wrote
#   docs/drill-summary.png      the top: the drill's verdict, steps and
#                               timeline, with the first deploy's summary open
#   docs/drill-summary-full.png every command's summary open
#
# GitHub's renderer: cmark-gfm with GitHub's extensions (Python `cmarkgfm`,
# from .ci/.venv), raw <details>/<summary> kept, ```mermaid drawn by the npm
# `mermaid` package, styled by `github-markdown-css` (light); Debian's
# Chromium screenshots the page through `playwright-core`. Nothing is fetched
# from the network but the packages themselves.
#
# Run by hand when a summary changes (not in .ci/run: it installs Chromium):
#   bash docs/screenshots/render.sh
# EXPEDITE_BIN=path/to/expedite uses another binary than target/debug/expedite.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
start=$SECONDS
say() { printf '== %s (%ss)\n' "$*" "$((SECONDS - start))"; }

sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_updated=""
apt_install() {
  [ -n "$apt_updated" ] || { $sudo apt-get update -qq; apt_updated=1; }
  $sudo apt-get install -y -qq "$@" >/dev/null
}

bin="${EXPEDITE_BIN:-target/debug/expedite}"
if [ ! -x "$bin" ]; then
  say "building $bin (cargo build --locked)"
  cargo build --locked
fi

python=.ci/.venv/bin/python
if ! "$python" -c 'import cmarkgfm' 2>/dev/null; then
  say "cmarkgfm into .ci/.venv"
  [ -x "$python" ] || python3 -m venv .ci/.venv
  .ci/.venv/bin/pip install --quiet --disable-pip-version-check -r .ci/requirements.txt
fi

chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  say "Chromium (apt-get install chromium)"
  apt_install chromium
fi
# The fonts GitHub's stylesheet asks for (Noto Sans, Liberation Mono for
# code) and colour emoji for the ✅ / ↩️ in the titles.
fonts="$(fc-list : file 2>/dev/null || true)"
if ! grep -q 'NotoColorEmoji' <<<"$fonts" || ! grep -q 'NotoSans-Regular' <<<"$fonts" \
  || ! grep -q 'LiberationMono-Regular' <<<"$fonts"; then
  say "fonts (apt-get install fonts-noto-core fonts-noto-color-emoji fonts-liberation)"
  apt_install fonts-noto-core fonts-noto-color-emoji fonts-liberation
fi

if [ ! -d "$here/node_modules/mermaid" ] || [ ! -d "$here/node_modules/playwright-core" ] \
  || [ ! -d "$here/node_modules/github-markdown-css" ] \
  || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  say "npm ci (mermaid, github-markdown-css, playwright-core)"
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
say "expedite drill (the incident on the built-in sandbox)"
"$bin" drill --summary-file "$tmp/summary.md" >"$tmp/drill.log" 2>&1 || {
  cat "$tmp/drill.log" >&2
  echo "render.sh: the drill failed; nothing written" >&2
  exit 1
}
grep -E '^(✓|✗)|drill passed' "$tmp/drill.log" || true

say "markdown -> HTML (cmark-gfm, GitHub's extensions)"
"$python" "$here/render.py" --open first-deploy "$tmp/summary.md" "$tmp/top.html"
"$python" "$here/render.py" --open all "$tmp/summary.md" "$tmp/full.html"

say "screenshots (Chromium)"
node "$here/render.mjs" \
  "$tmp/top.html" "$tmp/drill-summary.png" \
  "$tmp/full.html" "$tmp/drill-summary-full.png"

cp "$tmp/summary.md" docs/drill-summary.md
cp "$tmp/drill-summary.png" "$tmp/drill-summary-full.png" docs/
say "wrote docs/drill-summary.md, docs/drill-summary.png, docs/drill-summary-full.png"
