#!/usr/bin/env bash
# Build license-check.wasm from app.py with componentize-py (pip install componentize-py==0.25.1) against WIT sluice:stage@0.2.0 (wit/v0.2); OUT=path overrides the output.
cd "$(dirname "$0")" && exec componentize-py -d ../../../wit/v0.2 -w stage componentize app -o "${OUT:-license-check.wasm}"
