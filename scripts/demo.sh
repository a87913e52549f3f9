#!/usr/bin/env bash
# Set everything up and run the example pipeline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> sluice run examples/hello/sluice.yaml"
cd examples/hello
exec ../../target/debug/sluice run sluice.yaml "$@"
