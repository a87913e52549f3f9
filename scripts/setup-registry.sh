#!/usr/bin/env bash
# Install the real services that the OCI registry tests
# (tests/tests/e2e/oci_registry.rs and the `uses: oci://` tests) use, on
# Debian 12:
#
#   docker-registry  the Debian package (distribution 2.8.2 on bookworm);
#                    tests start their own instance on loopback with TLS
#                    (a CA created at test time), htpasswd auth and storage
#                    in a temporary directory (tests/src/registry.rs)
#   apache2-utils    for `htpasswd`, which writes the registry's users file
#   openssl          creates the test CA and the registry's certificate
#   curl             puts hand-made (hostile) manifests into the registry
#   wkg 0.16.1       from crates.io (`cargo install --locked`), the wasm-pkg
#                    tool the interop tests push and pull with
#
# Safe to run again: packages already installed are not touched, and wkg is
# only installed when `wkg --version` is not 0.16.1. The Debian package
# would start and enable a system registry on :5000; this script keeps it
# from starting while it installs and stops and disables it afterwards, so
# nothing is left listening. Uses sudo only when not run as root. Exits
# non-zero, naming the step, when something cannot be installed. Prints the
# installed versions.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(docker-registry apache2-utils openssl curl)
SERVICES=(docker-registry)
WKG_VERSION=0.16.1

source scripts/lib/apt-services.sh

apt_install_missing "${APT_PACKAGES[@]}"

# Stop and disable the system registry, whatever started it.
stop_system_services "${SERVICES[@]}"

command -v docker-registry >/dev/null || fail "docker-registry is not on PATH after installing it"
command -v htpasswd >/dev/null || fail "htpasswd is not on PATH after installing apache2-utils"
command -v openssl >/dev/null || fail "openssl is not on PATH after installing it"
command -v curl >/dev/null || fail "curl is not on PATH after installing it"

# wkg from crates.io, pinned: the interop tests check its artifact format.
if ! wkg --version 2>/dev/null | grep -q " ${WKG_VERSION}\$"; then
  command -v cargo >/dev/null || fail "cargo is not on PATH; run scripts/setup.sh first"
  step "cargo install --locked wkg --version ${WKG_VERSION}"
  cargo install --locked wkg --version "${WKG_VERSION}" || fail "cargo could not install wkg ${WKG_VERSION}"
fi
command -v wkg >/dev/null || fail "wkg is not on PATH after installing it (is ~/.cargo/bin on PATH?)"

step "versions"
docker-registry --version 2>&1 | head -n 1
wkg --version
