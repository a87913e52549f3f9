#!/usr/bin/env bash
# Builds {{name}}.wasm, a WebAssembly component, in this directory:
# wit-bindgen C bindings for the stage world (wit/), clang-19 with wasi-libc,
# linked into a component by the Rust toolchain's wasm-component-ld.
# Needs (Debian 12): apt-get install clang-19 lld-19 wasi-libc
# libclang-rt-19-dev-wasm32; cargo install wit-bindgen-cli --version 0.61.0.
# OUT=path writes the component elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
wit-bindgen c wit --world stage --out-dir gen >/dev/null
ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld"
clang-19 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Igen -I. \
  -fuse-ld="$ld" -Wl,--wasi-adapter=reactor \
  -o "${OUT:-{{name}}.wasm}" {{name}}.c gen/stage.c gen/stage_component_type.o
echo "built ${OUT:-{{name}}.wasm}"
