#!/usr/bin/env bash
# Build every Rust plugin (the cdylib crates in plugins/*, tests/plugins/*,
# examples/hello-stage)
# for wasm32-wasip2 and copy the components to dist/plugins/<name>.wasm,
# where the example pipelines and the tests find them. <name> is the
# directory name (hello-stage -> hello).
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
names=()
for dir in plugins/*/ tests/plugins/*/ examples/hello-stage/; do
  [ -f "$dir/Cargo.toml" ] || continue
  # Library crates shared by stages (e.g. plugins/delivery-targets) are not
  # components of their own.
  grep -q cdylib "$dir/Cargo.toml" || continue
  crate=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$dir/Cargo.toml" | head -1)
  name=$(basename "$dir")
  [ "$name" = hello-stage ] && name=hello
  args+=(-p "$crate")
  names+=("$crate:$name")
done
echo "==> building ${#names[@]} plugins for wasm32-wasip2"
cargo build --release --target wasm32-wasip2 "${args[@]}"

mkdir -p dist/plugins
for entry in "${names[@]}"; do
  crate="${entry%%:*}"; name="${entry##*:}"
  cp "target/wasm32-wasip2/release/${crate//-/_}.wasm" "dist/plugins/$name.wasm"
done
ls -l dist/plugins

# Sign every plugin with the demo key (generated once per checkout under
# dist/keys/, never committed). The example pipelines' trust policies trust
# only this key, so what runs is exactly what was built and signed here.
sluice=target/debug/sluice
if [ -x "$sluice" ]; then
  export SLUICE_KEY_PASSWORD="${SLUICE_DEMO_KEY_PASSWORD:-sluice-demo}"
  if [ ! -f dist/keys/demo.key ]; then
    echo "==> generating the demo signing key dist/keys/demo.{key,pub}"
    "$sluice" key generate --out dist/keys/demo
  fi
  echo "==> signing dist/plugins/*.wasm with dist/keys/demo.key"
  for wasm in dist/plugins/*.wasm; do
    "$sluice" plugin sign "$wasm" --key dist/keys/demo.key > /dev/null
  done
fi
