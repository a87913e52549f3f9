#!/usr/bin/env bash
# Run the whole test suite: unit tests and end-to-end tests that run the
# real binary on real plugins.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Toolchains for the Python, JavaScript and C example stages (the tests
# build them from source).
scripts/setup-guest-toolchains.sh
# Prometheus and nginx, which the delivery tests run for real on loopback.
scripts/setup-delivery-services.sh
echo "==> cargo test --workspace"
cargo test --workspace "$@"
