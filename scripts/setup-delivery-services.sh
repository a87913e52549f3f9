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

fail() { echo "setup-delivery-services: error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "not root and sudo is not installed; run this script as root"
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if [ ${#missing[@]} -gt 0 ]; then
  # Keep the packages' maintainer scripts from starting their services
  # (invoke-rc.d honours /usr/sbin/policy-rc.d exit 101). An existing
  # policy-rc.d (Docker images ship one) is left as it is.
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# added by sluice scripts/setup-delivery-services.sh while installing\nexit 101\n' \
      | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  remove_policy() { if [ -n "$policy_added" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi; }
  trap remove_policy EXIT

  step "apt-get update"
  $sudo apt-get update -qq || fail "apt-get update failed"
  step "apt-get install ${missing[*]}"
  # No recommends: prometheus recommends prometheus-node-exporter, another
  # system service the tests do not use.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" \
    || fail "apt-get could not install ${missing[*]}"
  remove_policy
  trap - EXIT
fi

# Stop and disable the system services, whatever started them.
for svc in "${SERVICES[@]}"; do
  if command -v systemctl >/dev/null; then
    # stop needs a running systemd; disable also works offline (containers).
    if [ -d /run/systemd/system ]; then $sudo systemctl stop "$svc" 2>/dev/null || true; fi
    $sudo systemctl disable "$svc" >/dev/null 2>&1 || true
  fi
  if [ -x "/etc/init.d/$svc" ]; then
    $sudo "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    if command -v update-rc.d >/dev/null; then
      $sudo update-rc.d "$svc" disable >/dev/null 2>&1 || true
    fi
  fi
done
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
