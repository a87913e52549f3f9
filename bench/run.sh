#!/usr/bin/env bash
# sluice benchmark suite: one command, prints one table (machine, figures,
# ratios). Not a test: nothing is asserted.
#
#   bench/run.sh                 # full run (~10 min on 2 cores once built)
#   BENCH_QUICK=1 bench/run.sh   # fewer repetitions
#   BENCH_ONLY=2,4 bench/run.sh  # only some sections (1..7, see bench/bench.py)
#
# Builds what it needs: the release runner (thin LTO), every plugin
# (scripts/build-plugins.sh, which also builds tests/plugins/noop and its
# noop-cmd command component), the native scanner, and installs wasmtime-cli
# 48.0.8 under bench/.tools and GNU time if missing. Scratch state goes to
# bench/.work; the table is also written to bench/.work/results.md.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=bench/.tools
if [ ! -x "$tools/bin/wasmtime" ]; then
  echo "==> installing wasmtime-cli 48.0.8 into $tools (slow on 2 cores)" >&2
  cargo install wasmtime-cli --version 48.0.8 --locked --root "$tools"
fi
if [ ! -x /usr/bin/time ]; then
  echo "==> installing GNU time" >&2
  apt-get install -y time >/dev/null || sudo apt-get install -y time >/dev/null
fi

# Section 7 (the fleet) starts its own nats-server on loopback.
if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
  echo "==> installing nats-server" >&2
  bash scripts/setup-nats.sh >/dev/null
fi

echo "==> building the runner (release) and the plugins" >&2
cargo build --release -p sluice
# build-plugins.sh signs with target/debug/sluice when present; sluice's own
# debug build is not needed for the benchmarks (they run with --allow-unsigned).
bash scripts/build-plugins.sh >/dev/null
if grep -q 'scan-native' plugins/scan/Cargo.toml 2>/dev/null || [ -f plugins/scan/src/bin/scan-native.rs ]; then
  cargo build --release -p sluice-plugin-scan --bin scan-native
fi

echo "==> running the benchmarks" >&2
exec python3 bench/bench.py "$@"
