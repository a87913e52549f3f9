#!/usr/bin/env bash
# Install the real services that the delivery tests and the nginx/Prometheus
# variant of examples/delivery use, on Debian 12:
#
#   prometheus   the Debian package (2.42 on bookworm); tests start their own
#                instance on loopback with a temporary TSDB
#   nginx        the Debian package (1.22 on bookworm); tests start their own
#                instance with a prefix in a temporary directory
#   chromium     the Debian package; tests/tests/e2e/html_report.rs renders
#                `sluice report`'s page headless and checks the screenshot
#
# Safe to run again: packages already installed are not touched. The Debian
# packages would start and enable system services (prometheus on :9090,
# nginx on :80); this script keeps them from starting while it installs and
# stops and disables any that run afterwards, so nothing is left listening.
# Uses sudo only when not run as root. Exits non-zero, naming the step, when
# something cannot be installed. Prints the installed versions.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(prometheus nginx chromium)
SERVICES=(prometheus nginx)

source scripts/lib/apt-services.sh

apt_install_missing "${APT_PACKAGES[@]}"

# Stop and disable the system services, whatever started them.
stop_system_services "${SERVICES[@]}"
# The system nginx, if one was started anyway (by its own pid file).
if [ -s /run/nginx.pid ]; then
  $sudo nginx -s quit 2>/dev/null || true
fi

command -v prometheus >/dev/null || fail "prometheus is not on PATH after installing it"
command -v nginx >/dev/null || fail "nginx is not on PATH after installing it (it is in /usr/sbin)"
command -v chromium >/dev/null || fail "chromium is not on PATH after installing it"

step "versions"
prometheus --version 2>&1 | head -n 1
nginx -v 2>&1
# Its wrapper script prints a shell warning on some systems; the version
# line is the one that starts with "Chromium".
chromium --version 2>/dev/null | grep -m1 '^Chromium' || true
