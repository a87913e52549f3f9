#!/usr/bin/env bash
# The quickstart pipeline (lint -> test -> scan -> build) run across a small
# fleet on this machine: a NATS server with JetStream on loopback, three
# `sluice agent`s with disjoint labels, and `sluice run --executor nats://…`
# dispatching each stage to the agent its `runs-on:` names.
#
#   scripts/fleet-demo.sh             # from the repository root
#   SLUICE_DEMO_SKIP_SETUP=1 scripts/fleet-demo.sh   # reuse target/debug/sluice and dist/
#
# Everything lives in a temporary directory (the server's store, the agents'
# configs, caches and logs, a copy of examples/quickstart with `runs-on:`
# added) and is removed at the end; the server and the agents are stopped
# even when the run fails. The agents verify every plugin under their own
# policy (the quickstart's: only the demo key) and see the workspace at the
# coordinator's path (`workspace: shared`, as agents on one machine or on a
# shared file system do). Extra arguments go to `sluice run`.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

if [ -z "${SLUICE_DEMO_SKIP_SETUP:-}" ]; then
  scripts/setup.sh
  scripts/setup-nats.sh
fi

sluice="$root/target/debug/sluice"
nats_server="${SLUICE_NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
[ -x "$nats_server" ] || { echo "fleet-demo: nats-server not found; run scripts/setup-nats.sh" >&2; exit 1; }

work="$(mktemp -d -t sluice-fleet-demo.XXXXXX)"
pids=()
cleanup() {
  # Agents first (SIGTERM: they finish or hand back their jobs), then NATS.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[$i]}" 2>/dev/null || true
    wait "${pids[$i]}" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port (the kernel picks it).
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
url="nats://127.0.0.1:$port"
namespace=demo

echo "==> nats-server -js on $url (store in $work/nats)"
"$nats_server" -js -sd "$work/nats" -a 127.0.0.1 -p "$port" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.05
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { cat "$work/nats.log" >&2; echo "fleet-demo: nats-server did not start" >&2; exit 1; }

# A copy of the quickstart whose plugin and key paths point back at dist/,
# with each stage pinned to an agent by label.
cp -r examples/quickstart "$work/quickstart"
rm -rf "$work/quickstart/reports" "$work/quickstart/dist"
sed -i "s#\.\./\.\./dist/#$root/dist/#g" "$work/quickstart/sluice.yaml" "$work/quickstart/sluice-policy.yaml"
sed -i -e 's/^  lint:$/  lint:\n    runs-on: role=check/' \
       -e 's/^  scan:$/  scan:\n    runs-on: role=check/' \
       -e 's/^  test:$/  test:\n    runs-on: role=test/' \
       -e 's/^  build:$/  build:\n    runs-on: role=build/' \
       "$work/quickstart/sluice.yaml"

for spec in checker:role=check tester:role=test builder:role=build; do
  name="${spec%%:*}"
  label="${spec#*:}"
  mkdir -p "$work/$name"
  cat >"$work/$name/agent.yaml" <<EOF
name: $name
nats: { url: "$url", namespace: $namespace }
labels: [$label]
concurrency: 2
policy: $work/quickstart/sluice-policy.yaml
accept: { max-grants: { workspace: write, exec: [python3] } }
workspace: shared
cache-dir: $work/$name/cache
ack-wait: 15s
heartbeat: 2s
EOF
  echo "==> sluice agent $name ($label)"
  "$sluice" agent --config "$work/$name/agent.yaml" --state-dir "$work/$name/state" \
    >"$work/$name/agent.log" 2>&1 &
  pids+=($!)
done
for name in checker tester builder; do
  for _ in $(seq 200); do
    grep -q "taking jobs from" "$work/$name/agent.log" && break
    sleep 0.05
  done
  grep -q "taking jobs from" "$work/$name/agent.log" || {
    cat "$work/$name/agent.log" >&2
    echo "fleet-demo: agent $name did not start" >&2
    exit 1
  }
done

echo "==> sluice agents list"
"$sluice" agents list --nats "$url?namespace=$namespace"

executor="$url?namespace=$namespace"
echo "==> sluice run sluice.yaml --executor $executor"
cd "$work/quickstart"
status=0
"$sluice" run sluice.yaml --executor "$executor" \
  --state-dir "$work/coordinator-state" "$@" || status=$?
for name in checker tester builder; do
  echo "--- agent $name"
  cat "$work/$name/agent.log"
done
exit "$status"
