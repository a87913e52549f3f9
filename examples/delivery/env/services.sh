#!/usr/bin/env bash
# nginx and Prometheus for the delivery example's nginx variant, on loopback:
#
#   env/services.sh up     # nginx on :18180 (upstreams from deploy/production/nginx/),
#                          # prometheus on :19090 scraping the slots
#   env/services.sh down
#
# Run from anywhere; files go under examples/delivery/deploy/. Install the
# programs with scripts/setup-delivery-services.sh. The slots themselves are
# run by env/localenv.py (start it too).
set -euo pipefail
EX="$(cd "$(dirname "$0")/.." && pwd)"
cd "$EX"
PROM_PID=deploy/prometheus/prometheus.pid

need() { command -v "$1" >/dev/null || { echo "services.sh: $1 is not installed: run scripts/setup-delivery-services.sh" >&2; exit 2; }; }

up() {
    need nginx; need prometheus
    mkdir -p deploy/nginx/tmp deploy/production/nginx deploy/prometheus
    # nginx needs an upstream block before the first deploy writes one.
    if [ ! -f deploy/production/nginx/upstreams.conf ]; then
        printf 'upstream sluice {\n    server 127.0.0.1:18101;\n}\n' > deploy/production/nginx/upstreams.conf
    fi
    nginx -p ./ -c env/nginx.conf -t -q
    nginx -p ./ -c env/nginx.conf
    prometheus --config.file=env/prometheus.yml --storage.tsdb.path=deploy/prometheus/data \
        --web.listen-address=127.0.0.1:19090 > deploy/prometheus/prometheus.log 2>&1 &
    echo $! > "$PROM_PID"
    for _ in $(seq 50); do
        curl -fsS http://127.0.0.1:19090/-/ready >/dev/null 2>&1 && break
        sleep 0.2
    done
    echo "nginx on http://127.0.0.1:18180, prometheus on http://127.0.0.1:19090"
}

down() {
    if [ -f deploy/nginx/nginx.pid ]; then nginx -p ./ -c env/nginx.conf -s quit || true; fi
    if [ -f "$PROM_PID" ]; then kill "$(cat "$PROM_PID")" 2>/dev/null || true; rm -f "$PROM_PID"; fi
    echo "nginx and prometheus stopped"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
