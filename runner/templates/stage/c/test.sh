#!/usr/bin/env bash
# Runs the stage's logic natively ({{name_snake}}_logic.h, no bindings).
set -euo pipefail
cd "$(dirname "$0")"
bin="$(mktemp)"
trap 'rm -f "$bin"' EXIT
"${CC:-cc}" -std=c11 -Wall -Werror -I. -o "$bin" test/logic_test.c
"$bin"
