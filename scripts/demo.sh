#!/usr/bin/env bash
# Set everything up, sign the plugins with a freshly generated demo key, and
# run the quickstart pipeline (lint -> test -> scan -> build) under a trust
# policy that trusts only that key.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "==> sluice run examples/quickstart/sluice.yaml"
cd examples/quickstart
exec ../../target/debug/sluice run sluice.yaml "$@"
