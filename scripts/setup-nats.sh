#!/usr/bin/env bash
# Install the NATS server that the fleet (`sluice agent`, `sluice run
# --executor nats://…`) and its e2e tests and benchmarks use, on Debian 12:
#
#   nats-server  the Debian package (2.9.10 on bookworm), with JetStream;
#                tests start their own `nats-server -js -sd <tmpdir>` on
#                loopback, never the system service
#
# Safe to run again: a package already installed is not touched. The Debian
# package would start and enable a system service (nats-server on :4222);
# this script keeps it from starting while it installs and stops and
# disables it afterwards, so nothing is left listening. Uses sudo only when
# not run as root. Exits non-zero, naming the step, when something cannot
# be installed. Prints the installed version.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(nats-server)
SERVICES=(nats-server)

source scripts/lib/apt-services.sh

apt_install_missing "${APT_PACKAGES[@]}"

# Stop and disable the system service, whatever started it: tests run their
# own servers on free ports, and a system one on :4222 would only be in the way.
step "stopping and disabling the system service ${SERVICES[*]}"
stop_system_services "${SERVICES[@]}"

# Debian puts it in /usr/sbin, which is not on a normal user's PATH: tests
# look there too (or take SLUICE_NATS_SERVER).
nats_server="$(command -v nats-server || true)"
if [ -z "$nats_server" ] && [ -x /usr/sbin/nats-server ]; then nats_server=/usr/sbin/nats-server; fi
[ -n "$nats_server" ] || fail "nats-server is not on PATH nor in /usr/sbin after installing it"

step "version"
version="$("$nats_server" --version 2>&1)" || fail "$nats_server --version failed: $version"
echo "$nats_server: ${version%%$'\n'*}"
