#!/usr/bin/env bash
# Builds {{name}}.wasm, a WebAssembly component, in this directory from
# app.py with componentize-py (pip install componentize-py==0.25.1), against
# the stage contract in wit/ (sluice:stage@0.2.0), with the SDK in
# sluice_stage/ on the Python path. OUT=path writes the component elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
command -v componentize-py >/dev/null \
  || { echo "build.sh: componentize-py is not on PATH: pip install componentize-py==0.25.1" >&2; exit 1; }
[ -d sluice_stage ] || { echo "build.sh: sluice_stage/ (the SDK) is missing next to app.py" >&2; exit 1; }
componentize-py -d wit -w stage componentize -p . app -o "${OUT:-{{name}}.wasm}"
echo "built ${OUT:-{{name}}.wasm}"
