#!/usr/bin/env bash
# The delivery demo: progressive delivery with automatic rollback, on loopback.
#
#   scripts/demo-delivery.sh
#
# 1. starts the example environment (examples/delivery/env/localenv.py: one
#    process per slot and a weighted router on 127.0.0.1:18100) in the
#    background, with a fresh examples/delivery/deploy/;
# 2. installs the first release, 1.0.0, with sluice-bootstrap.yaml (build,
#    deploy, smoke: an empty environment has nothing to run a canary against);
#    then runs examples/delivery/sluice.yaml with SERVICE_VERSION=1.0.0:
#    build, deploy, smoke, canary, monitor pass and 1.0.0 is promoted (exit 0);
# 3. runs it with SERVICE_VERSION=2.0.0, whose new quote tokens overflow a
#    16-bit field for a third of the requests: the canary analysis fails,
#    traffic goes back to 1.0.0, remediate verifies it and writes the
#    incident report (exit 1);
# 4. prints the incident report and what the router serves, then stops the
#    environment (also on Ctrl-C or error).
#
# Needs the runner and the plugins built and signed (scripts/demo.sh or
# scripts/build-plugins.sh), python3, tar and curl.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
EX="$ROOT/examples/delivery"
SLUICE="$ROOT/target/debug/sluice"
ENVPY="$EX/env/localenv.py"
ROUTER="http://127.0.0.1:18100"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo-delivery: $*" >&2; exit 2; }

command -v python3 >/dev/null || die "python3 is missing (apt-get install python3)"
command -v tar >/dev/null || die "tar is missing"
command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
[ -x "$SLUICE" ] || (cd "$ROOT" && cargo build -p sluice --bin sluice)
for p in build deploy smoke canary monitor remediate; do
    [ -f "$ROOT/dist/plugins/$p.wasm" ] || die "dist/plugins/$p.wasm is missing: run scripts/build-plugins.sh"
    [ -f "$ROOT/dist/plugins/$p.wasm.sigstore.json" ] || die "dist/plugins/$p.wasm is not signed: run scripts/build-plugins.sh"
done

# Run records and artifacts stay outside the example (a stage granted the
# workspace must never reach them); the demo keeps its own under target/.
export SLUICE_STATE_DIR="${SLUICE_STATE_DIR:-$ROOT/target/demo-state/delivery}"

cd "$EX"
python3 "$ENVPY" down >/dev/null 2>&1 || true
rm -rf deploy dist
stop_env() { python3 "$ENVPY" down || true; }
trap stop_env EXIT
python3 "$ENVPY" up --detach

LAST_RUN=""
run_pipeline() { # pipeline, version, expected exit code
    local file="$1" version="$2" expect="$3" code=0
    say "sluice run $file with SERVICE_VERSION=$version (expect exit $expect)"
    SERVICE_VERSION="$version" "$SLUICE" run "$file" | tee deploy/last-run.log || code=${PIPESTATUS[0]}
    LAST_RUN="$(awk '$1 == "sluice" && $2 == "run" { print $3; exit }' deploy/last-run.log)"
    if [ "$code" != "$expect" ]; then
        echo "demo-delivery: $file with $version: exit $code, expected $expect" >&2
        exit 1
    fi
}

router_versions() {
    for _ in $(seq 20); do
        curl -fsS "$ROUTER/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])' || echo error
    done | sort | uniq -c
}

run_pipeline sluice-bootstrap.yaml 1.0.0 0
run_pipeline sluice.yaml 1.0.0 0
say "the router serves"
router_versions

run_pipeline sluice.yaml 2.0.0 1
say "after the failed canary, the router serves"
router_versions
say "state.json"
cat deploy/production/state.json; echo

say "incident report"
"$SLUICE" runs show "$LAST_RUN" --json > deploy/last-run.json
python3 - "$LAST_RUN" "$SLUICE_STATE_DIR" <<'PY'
import json, os, sys
run, state = sys.argv[1], sys.argv[2]
record = json.load(open("deploy/last-run.json"))
stage = record["stages"].get("remediate", {})
for a in stage.get("artifacts", []):
    if a["name"] == "incident.md":
        hexd = a["digest"].split(":", 1)[1]
        print(open(os.path.join(state, "cas/sha256", hexd[:2], hexd[2:])).read())
        break
else:
    print("no incident.md in run", run, "- remediate:", stage.get("state"), stage.get("reason"))
    sys.exit(1)
PY
say "done: 1.0.0 promoted, 2.0.0 rolled back automatically"
