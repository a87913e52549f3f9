#!/usr/bin/env bash
# Build package-policy.wasm from app.js with ComponentizeJS (pinned in package.json) against WIT sluice:stage@0.2.0 (wit/v0.2); OUT=path overrides the output.
# ComponentizeJS resolves relative imports only inside the directory it builds from, and refuses symlinks that leave it, so app.js is built in a
# scratch directory next to a copy of the SDK (`sluice-stage` links to sdk/js/src) rather than bundled.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${OUT:-$here/package-policy.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$here"
[ -x node_modules/.bin/componentize-js ] || npm ci --no-audit --no-fund
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp app.js "$work/"
cp -RL sluice-stage "$work/sluice-stage"
cd "$work"
"$here/node_modules/.bin/componentize-js" app.js --wit "$here/../../../wit/v0.2" --world-name stage --out "$out"
