# shellcheck shell=bash
# Sourced by the scripts/setup-*.sh that install Debian packages shipping
# system services the tests never use (they start their own instances on
# loopback): install only what is missing without letting those services
# start, then stop and disable them so nothing is left listening.
#
# Defines, for the sourcing script (named in messages as `setup-NAME`, from
# its file name):
#   fail MESSAGE…                  print `setup-NAME: error: MESSAGE` and exit 1
#   step MESSAGE…                  print `==> MESSAGE`
#   apt_install_missing PKG…       apt-get install the packages not installed yet
#   stop_system_services SVC…      stop and disable the services, however started
# and `$sudo` (empty when running as root).

setup_name="$(basename "$0" .sh)"

fail() { echo "$setup_name: error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || fail "not root and sudo is not installed; run this script as root"
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive

# Set while this library's policy-rc.d is in place (read by the EXIT trap).
apt_policy_added=""
apt_remove_policy() { if [ -n "$apt_policy_added" ]; then $sudo rm -f /usr/sbin/policy-rc.d; fi; }

apt_install_missing() {
  local pkg
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -gt 0 ] || return 0

  # Keep the packages' maintainer scripts from starting their services
  # (invoke-rc.d honours /usr/sbin/policy-rc.d exit 101). An existing
  # policy-rc.d (Docker images ship one) is left as it is.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\n# added by sluice scripts/%s while installing\nexit 101\n' "$(basename "$0")" \
      | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 755 /usr/sbin/policy-rc.d
    apt_policy_added=1
  fi
  trap apt_remove_policy EXIT

  step "apt-get update"
  $sudo apt-get update -qq || fail "apt-get update failed"
  step "apt-get install ${missing[*]}"
  # No recommends: they pull in more system services the tests do not use
  # (prometheus recommends prometheus-node-exporter).
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" \
    || fail "apt-get could not install ${missing[*]}"
  apt_remove_policy
  apt_policy_added=""
  trap - EXIT
}

stop_system_services() {
  local svc
  for svc in "$@"; do
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
}
