#!/usr/bin/env bash
# Build size-budget.wasm: wit-bindgen C bindings, clang-19 + wasi-libc, linked into a component by the Rust toolchain's wasm-component-ld; OUT=path overrides the output.
cd "$(dirname "$0")" && set -e && wit-bindgen c ../../../wit --world stage --out-dir gen && exec clang-19 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Igen -fuse-ld="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld" -Wl,--wasi-adapter=reactor -o "${OUT:-size-budget.wasm}" size-budget.c gen/stage.c gen/stage_component_type.o
