//! The no-op body of `sluice-test-noop` as a `wasi:cli/run` command
//! component, so `wasmtime run` can run it: the baseline of the whole-process
//! benchmark (bench/bench.py, section 2). `wasmtime run` cannot instantiate
//! the stage component itself, which imports `sluice:stage/exec` and
//! `sluice:stage/secrets` from the sluice host.
//! Built by `scripts/build-plugins.sh` as
//! target/wasm32-wasip2/release/noop-cmd.wasm (not copied to dist/plugins).
fn main() {}
