#!/usr/bin/env bash
# Build every Rust plugin for wasm32-wasip2 and copy the components to
# dist/plugins/<name>.wasm, where the example pipelines and tests find them.
set -euo pipefail
cd "$(dirname "$0")/.."

crates=(
  "sluice-example-hello-stage:hello"
  "sluice-test-fixture:fixture"
)
args=()
for c in "${crates[@]}"; do args+=(-p "${c%%:*}"); done
echo "==> building plugins for wasm32-wasip2"
cargo build --release --target wasm32-wasip2 "${args[@]}"

mkdir -p dist/plugins
for c in "${crates[@]}"; do
  crate="${c%%:*}"; name="${c##*:}"
  cp "target/wasm32-wasip2/release/${crate//-/_}.wasm" "dist/plugins/$name.wasm"
done
ls -l dist/plugins
