#!/usr/bin/env bash
# Build package-policy.wasm from app.js with ComponentizeJS (pinned in package.json) against WIT sluice:stage@0.2.0 (wit/v0.2); OUT=path overrides the output.
cd "$(dirname "$0")" && { [ -x node_modules/.bin/componentize-js ] || npm ci --no-audit --no-fund; } && exec npx --no-install componentize-js app.js --wit ../../../wit/v0.2 --world-name stage --out "${OUT:-package-policy.wasm}"
