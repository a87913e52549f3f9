#!/usr/bin/env bash
# Install what sluice needs on a fresh Debian 12 machine with rustup, then
# build the runner and the plugins. Safe to run again: every step is a no-op
# when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "==> rustup target add wasm32-wasip2"
  rustup target add wasm32-wasip2
fi

# Python test tools for the quickstart example's test stage.
if ! python3 -c "import pytest, pytest_cov" 2>/dev/null; then
  echo "==> pip install -r examples/quickstart/requirements-dev.txt"
  python3 -m pip install -q -r examples/quickstart/requirements-dev.txt \
    || python3 -m pip install -q --break-system-packages -r examples/quickstart/requirements-dev.txt
fi

# npm sigstore clients for the signature interop tests.
if [ ! -d tests/interop/sigstore-js/node_modules/@sigstore/mock ]; then
  echo "==> npm ci in tests/interop/sigstore-js"
  (cd tests/interop/sigstore-js && npm ci --no-audit --no-fund)
fi

echo "==> building the runner (target/debug/sluice)"
cargo build -p sluice --bin sluice

scripts/build-plugins.sh
