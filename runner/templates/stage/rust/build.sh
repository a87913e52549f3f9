#!/usr/bin/env bash
# Builds {{name}}.wasm, a WebAssembly component (wasm32-wasip2), in this
# directory. Needs the Rust target: rustup target add wasm32-wasip2.
# CARGO_TARGET_DIR is honoured (share one between stages to build faster);
# OUT=path writes the component elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --target wasm32-wasip2
target_dir="${CARGO_TARGET_DIR:-target}"
cp "$target_dir/wasm32-wasip2/release/{{name_snake}}.wasm" "${OUT:-{{name}}.wasm}"
echo "built ${OUT:-{{name}}.wasm}"
