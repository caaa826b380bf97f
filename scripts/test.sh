#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine and runs it in both builds:
# with the Rust accelerator compiled, and in pure Python (BOLT_NO_ACCEL=1 and an install without cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"

step() { printf '\n==> %s\n' "$*"; }

step "system packages (redis-server for the pub/sub tests)"
if ! command -v redis-server >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

step "bolt with its test dependencies (builds the Rust accelerator when cargo is on PATH)"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
if command -v cargo >/dev/null 2>&1; then
    "$PY" -c "import bolt.accel as a, sys; sys.exit(0 if a.ENABLED else 'accelerator did not build')"
fi

export BOLT_REQUIRE_REDIS=1
step "test suite, accelerated build"
"$PY" -m pytest -q -p no:cacheprovider

step "test suite, pure-Python build (BOLT_NO_ACCEL=1)"
BOLT_NO_ACCEL=1 "$PY" -m pytest -q -p no:cacheprovider
