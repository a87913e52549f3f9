#!/usr/bin/env bash
# Run the whole test suite: formatting, clippy and rustdoc checks, then unit
# tests and end-to-end tests that run the real binary on real plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Toolchains for the Python, JavaScript and C example stages (the tests
# build them from source).
scripts/setup-guest-toolchains.sh
# Prometheus and nginx, which the delivery tests run for real on loopback.
scripts/setup-delivery-services.sh
# Style and docs first: a red check costs seconds, not a whole test run.
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
echo "==> cargo fmt --all --check"
cargo fmt --all --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo doc --no-deps (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p sluice -p sluice-files -p sluice-pipeline -p sluice-trust -p sluice-record -p sluice-engine -p sluice-host -p sluice-types -p sluice-sdk
echo "==> cargo test --workspace"
cargo test --workspace "$@"
