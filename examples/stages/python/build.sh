#!/usr/bin/env bash
# Build license-check.wasm from app.py with componentize-py (pip install componentize-py==0.25.1); OUT=path overrides the output.
cd "$(dirname "$0")" && exec componentize-py -d ../../../wit -w stage componentize app -o "${OUT:-license-check.wasm}"
