#!/usr/bin/env bash
# Build the Python, JavaScript and C example stages and sign them with the
# demo key (dist/keys/demo.key, made by scripts/build-plugins.sh), so that
# sluice.yaml here runs under its trust policy.
set -euo pipefail
cd "$(dirname "$0")"
for lang in python javascript c; do
  echo "==> examples/stages/$lang/build.sh"
  "$lang/build.sh"
done
sluice=../../target/debug/sluice
if [ -x "$sluice" ] && [ -f ../../dist/keys/demo.key ]; then
  export SLUICE_KEY_PASSWORD="${SLUICE_DEMO_KEY_PASSWORD:-sluice-demo}"
  for wasm in python/*.wasm javascript/*.wasm c/*.wasm; do
    echo "==> signing $wasm"
    "$sluice" plugin sign "$wasm" --key ../../dist/keys/demo.key > /dev/null
  done
else
  echo "note: not signed (build the runner and run scripts/build-plugins.sh for the demo key first); sluice.yaml's trust policy will refuse these components" >&2
fi
ls -l python/*.wasm javascript/*.wasm c/*.wasm
