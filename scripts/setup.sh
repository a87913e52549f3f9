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

echo "==> building the runner (target/debug/sluice)"
cargo build -p sluice --bin sluice

scripts/build-plugins.sh
