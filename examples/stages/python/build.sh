#!/usr/bin/env bash
# Build license-check.wasm from app.py with componentize-py (pip install componentize-py==0.25.1) against WIT
# sluice:stage@0.2.0 (wit/v0.2), with the Python SDK (sdk/python/sluice_stage) on the path; OUT=path overrides the output.
cd "$(dirname "$0")" && exec componentize-py -d ../../../wit/v0.2 -w stage componentize -p . -p ../../../sdk/python app -o "${OUT:-license-check.wasm}"
