#!/usr/bin/env bash
# Run the whole test suite: formatting, clippy and rustdoc checks, then unit
# tests and end-to-end tests that run the real binary on real plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Toolchains for the Python, JavaScript and C example stages (the tests
# build them from source).
scripts/setup-guest-toolchains.sh
# Prometheus and nginx, which the delivery tests run for real on loopback, and
# Chromium, which renders `sluice report` headless (html_report.rs).
scripts/setup-delivery-services.sh
# docker-registry (TLS, htpasswd), openssl and curl for the registry tests,
# and wkg for the interop tests (tests/tests/e2e/oci_registry.rs).
scripts/setup-registry.sh
# nats-server with JetStream for the fleet tests (crates/fleet/tests/nats.rs and
# the e2e fleet tests start their own on loopback).
scripts/setup-nats.sh
# Style and docs first: a red check costs seconds, not a whole test run.
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
echo "==> cargo fmt --all --check"
cargo fmt --all --check
echo "==> cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo doc --no-deps --workspace (-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
echo "==> node --test (JavaScript SDK, sdk/js; the JavaScript example)"
node --test sdk/js/test/
(cd examples/stages/javascript && node --test test/)
echo "==> pytest (Python SDK, sdk/python; the Python example)"
# The SDK's component tests run the real runner.
cargo build -q -p sluice
(cd sdk/python && python3 -m pytest -q -p no:cacheprovider)
(cd examples/stages/python && python3 -m pytest -q -p no:cacheprovider test_app.py)
echo "==> cargo test --workspace"
cargo test --workspace "$@"
