#!/usr/bin/env bash
# Builds {{name}}.wasm, a WebAssembly component, in this directory with
# ComponentizeJS against the stage contract in wit/ (sluice:stage@0.2.0).
# ComponentizeJS is taken from ./node_modules/.bin (`npm install` puts the
# versions package.json pins there) or $SLUICE_JS_TOOLCHAIN/node_modules/.bin.
# It resolves app.js's relative imports (./sluice-stage/...) itself, as long
# as they stay inside this directory, so no bundler is needed.
# OUT=path writes the component elsewhere.
set -euo pipefail
out="${OUT:-{{name}}.wasm}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")"
bin=""
for dir in ./node_modules/.bin ${SLUICE_JS_TOOLCHAIN:+"$SLUICE_JS_TOOLCHAIN/node_modules/.bin"}; do
  if [ -x "$dir/componentize-js" ]; then bin="$dir"; break; fi
done
if [ -z "$bin" ]; then
  echo "build.sh: componentize-js not found in ./node_modules/.bin${SLUICE_JS_TOOLCHAIN:+ or $SLUICE_JS_TOOLCHAIN/node_modules/.bin}; run \`npm install\` here (or set SLUICE_JS_TOOLCHAIN to a directory whose node_modules has it)" >&2
  exit 2
fi
"$bin/componentize-js" app.js --wit wit --world-name stage --out "$out"
echo "built $out"
