#!/usr/bin/env bash
# Install the toolchains that build the example stages in examples/stages/
# (Python, JavaScript, C) on Debian 12 with rustup. Safe to run again: each
# step is skipped when its tool is already there at the pinned version.
# Exits non-zero, naming the step, when something cannot be installed.
#
#   Python      componentize-py 0.25.1                      (pip)
#   JavaScript  @bytecodealliance/componentize-js 0.23.0     (npm ci, lockfile in examples/stages/javascript)
#   C           clang-19, lld-19, wasi-libc, libclang-rt-19-dev-wasm32 (apt)
#               wit-bindgen-cli 0.61.0                      (cargo install --locked)
#               wasm-component-ld                           (ships with the Rust toolchain)
set -euo pipefail
cd "$(dirname "$0")/.."

COMPONENTIZE_PY_VERSION=0.25.1
WIT_BINDGEN_VERSION=0.61.0
APT_PACKAGES=(clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32)

fail() { echo "setup-guest-toolchains: error: $*" >&2; exit 1; }
step() { echo "==> $*"; }

# --- Python: componentize-py ------------------------------------------------
command -v python3 >/dev/null || fail "python3 is not installed (apt-get install python3 python3-pip)"
if [ "$(python3 -m pip show componentize-py 2>/dev/null | sed -n 's/^Version: //p')" != "$COMPONENTIZE_PY_VERSION" ]; then
  step "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
  python3 -m pip install -q "componentize-py==$COMPONENTIZE_PY_VERSION" \
    || python3 -m pip install -q --break-system-packages "componentize-py==$COMPONENTIZE_PY_VERSION" \
    || fail "pip could not install componentize-py==$COMPONENTIZE_PY_VERSION"
  # pyenv only sees new console scripts after a rehash.
  if command -v pyenv >/dev/null; then pyenv rehash; fi
fi
command -v componentize-py >/dev/null \
  || fail "componentize-py was installed but is not on PATH (add python3's scripts directory, e.g. ~/.local/bin)"

# --- JavaScript: ComponentizeJS (pinned by examples/stages/javascript/package-lock.json)
command -v npm >/dev/null || fail "node/npm are not installed (apt-get install nodejs npm; node >= 18)"
if [ ! -x examples/stages/javascript/node_modules/.bin/componentize-js ]; then
  step "npm ci in examples/stages/javascript (@bytecodealliance/componentize-js)"
  # `npm ci` refuses this lockfile on some npm versions (optional
  # per-platform packages it expects listed); `npm install` keeps the locked
  # versions where it can.
  (cd examples/stages/javascript && { npm ci --no-audit --no-fund 2>/dev/null || npm install --no-audit --no-fund; }) \
    || fail "npm could not install componentize-js in examples/stages/javascript"
fi

# --- C: clang-19 + wasi-libc (apt), wit-bindgen (cargo), wasm-component-ld (rustup)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  step "apt-get install ${missing[*]}"
  $sudo apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" \
    || fail "apt-get could not install ${missing[*]}"
fi
command -v clang-19 >/dev/null || fail "clang-19 is not on PATH after installing it"
[ -f /usr/lib/wasm32-wasi/libc.a ] || fail "wasi-libc is not at /usr/lib/wasm32-wasi"

if ! wit-bindgen --version 2>/dev/null | grep -q "$WIT_BINDGEN_VERSION"; then
  step "cargo install wit-bindgen-cli@$WIT_BINDGEN_VERSION (a few minutes)"
  cargo install -q --locked wit-bindgen-cli --version "$WIT_BINDGEN_VERSION" \
    || fail "cargo install wit-bindgen-cli@$WIT_BINDGEN_VERSION failed"
fi

wcl="$(rustc --print sysroot)/lib/rustlib/$(rustc -vV | sed -n 's/^host: //p')/bin/wasm-component-ld"
[ -x "$wcl" ] || fail "wasm-component-ld not found at $wcl (it ships with Rust >= 1.82; rustup update stable)"

step "guest toolchains ready: componentize-py $COMPONENTIZE_PY_VERSION, componentize-js $(cd examples/stages/javascript && node -p 'require("./node_modules/@bytecodealliance/componentize-js/package.json").version'), $(clang-19 --version | head -1), $(wit-bindgen --version)"
