#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine and runs it in both builds:
# with the Rust accelerator compiled, and in pure Python (BOLT_NO_ACCEL=1, and installs without cargo).
#   bash scripts/test.sh               everything (about 35-50 minutes on 2 cores)
#   QUICK=1 bash scripts/test.sh       only ruff and mypy, the pytest suite in the accelerated build, and the docs site
# Everything Python goes into a private venv (.venv-test), so the run proves the declared dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${VENV:-$ROOT/.venv-test}"

step() { printf '\n==> %s\n' "$*"; }

step "system packages (redis-server for the pub/sub tests, chromium and chromedriver for bolt.js's tests)"
missing_packages=()
command -v redis-server >/dev/null 2>&1 || missing_packages+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing_packages+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing_packages+=(chromium-driver)
if [ ${#missing_packages[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing_packages[@]}" >/dev/null
fi

step "venv with bolt and its test dependencies (builds the Rust accelerator: cargo is on PATH)"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "cargo not found: the accelerated build needs Rust" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check --upgrade pip
"$PY" -m pip install -q --disable-pip-version-check -e ".[test]"
"$PY" -c "import bolt.accel as a, sys; sys.exit(0 if a.ENABLED else 'the accelerator did not build')"
export PYTHON="$PY" BOLT_REQUIRE_REDIS=1 BOLT_REQUIRE_BROWSER=1

step "lint: ruff check bolt tests benchmarks (the rules are in pyproject.toml)"
"$PY" -m ruff check bolt tests benchmarks

step "types: mypy (the baseline for bolt, strict for bolt.protocol and bolt.security; pyproject.toml)"
"$PY" -m mypy

step "test suite, accelerated build (a missing extension fails the accel tests instead of skipping them)"
BOLT_REQUIRE_ACCEL=1 "$PY" -m pytest -q -p no:cacheprovider

step "docs site: mkdocs build --strict (every page in the nav, every link and anchor resolved)"
"$PY" -m pip install -q --disable-pip-version-check -e ".[site]"
site_dir=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$PY" -m mkdocs build --strict --quiet --site-dir "$site_dir"
rm -rf "$site_dir"
[ -n "${QUICK:-}" ] && exit 0

step "test suite, pure-Python build (BOLT_NO_ACCEL=1)"
BOLT_NO_ACCEL=1 "$PY" -m pytest -q -p no:cacheprovider

step "bolt's protocol and the hub on uvloop (the loop bolt run serves on): their tests again"
# Servers the suite starts in subprocesses already run on uvloop (uvicorn's --loop auto); the
# in-process ones run on the test's loop, asyncio's unless BOLT_TEST_LOOP says otherwise.
BOLT_TEST_LOOP=uvloop BOLT_REQUIRE_ACCEL=1 "$PY" -m pytest -q -p no:cacheprovider tests/protocol tests/realtime

step "Rust unit tests of the accelerator"
cargo test -q --release --manifest-path bolt_accel/Cargo.toml

step "installs in fresh venvs: without cargo (pure Python) and with it (extension), wheels of both kinds"
timeout 1200 bash scripts/check_install.sh "$PY"

step "uvicorn's own WebSocket and HTTP protocol tests against bolt's protocols (sdist fetched by pip), accelerated and pure Python"
bash tests/protocol/run_uvicorn_suite.sh bolt
BOLT_NO_ACCEL=1 bash tests/protocol/run_uvicorn_suite.sh bolt

step "Autobahn conformance of bolt's protocol (core + deflate): accelerated, pure Python, and accelerated on uvloop"
# Needs an Autobahn runner (AUTOBAHN_RUN, or the team's tools/autobahn/run.sh beside the clone or
# in the shared folder of the machine CI runs on); without one it prints a skip line, except under CI.
for candidate in "$ROOT/../shared/tools/autobahn/run.sh" /work/shared/tools/autobahn/run.sh; do
    [ -x "$candidate" ] && { export AUTOBAHN_RUN="${AUTOBAHN_RUN:-$candidate}"; break; }
done
bash tests/protocol/run_autobahn.sh core deflate
BOLT_NO_ACCEL=1 bash tests/protocol/run_autobahn.sh core deflate
BOLT_LOOP=uvloop bash tests/protocol/run_autobahn.sh core deflate
