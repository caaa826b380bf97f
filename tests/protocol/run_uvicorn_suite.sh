#!/usr/bin/env bash
# uvicorn's own WebSocket and HTTP protocol tests (tests/protocols/test_websocket.py and test_http.py of
# the uvicorn sdist matching the installed uvicorn) with bolt's protocol as a third implementation beside uvicorn's
# wsproto and websockets-sansio ones, on uvicorn's two HTTP protocols (httptools, h11) and bolt's three
# (HeadReader, as `bolt run` serves, and its httptools and h11 protocols).
# The sdist is fetched by pip into a cache directory on first use (never part of this repository);
# tests/protocol/uvicorn_suite/suite_conftest.py adds bolt's class and marks the deviations that
# docs/protocol.md lists as strictly expected failures: any other failure fails the run, and so
# does a listed test that passes. Honours BOLT_NO_ACCEL like the rest of bolt.
# Usage: tests/protocol/run_uvicorn_suite.sh [bolt|wsproto|websockets-sansio]  (default: all three)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PYTHON="$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)')"  # absolute: the run happens in the cache
VERSION="$("$PYTHON" -c 'import uvicorn; print(uvicorn.__version__)')"
CACHE="${BOLT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bolt}/uvicorn-suite-$VERSION"
if [ ! -f "$CACHE/tests/protocols/test_websocket.py" ]; then
    tmp="$(mktemp -d)"
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --no-binary :all: -d "$tmp" "uvicorn==$VERSION"
    tar -xzf "$tmp/uvicorn-$VERSION.tar.gz" -C "$tmp"
    mkdir -p "$CACHE"
    rm -rf "$CACHE/tests"
    mv "$tmp/uvicorn-$VERSION/tests" "$CACHE/tests"
    rm -rf "$tmp"
fi
# The suite's own HTTP client.
"$PYTHON" -c 'import httpx2' 2>/dev/null || "$PYTHON" -m pip install -q --disable-pip-version-check httpx2
cp "$ROOT/tests/protocol/uvicorn_suite/suite_conftest.py" "$CACHE/tests/protocols/conftest.py"
"$PYTHON" -c "import bolt.accel as a; print('bolt.accel.ENABLED =', a.ENABLED, '| uvicorn $VERSION')"
cd "$CACHE"
# bolt's pytest plugins stay out; the suite uses anyio's. Exit status: pytest's (xfail strict).
BOLT_UVICORN_SUITE_ONLY="${1:-}" PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
    "$PYTHON" -m pytest -q -p no:cacheprovider -p no:django -p no:asyncio -o addopts= -o xfail_strict=true \
    --rootdir "$CACHE" -rfEX tests/protocols/test_websocket.py tests/protocols/test_http.py
