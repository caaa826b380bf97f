#!/usr/bin/env bash
# Autobahn conformance for bolt's WebSocket protocol.
# Starts benchmarks/echo_app.py under uvicorn with --ws bolt.protocol:WebSocketProtocol and, as
# `bolt run` serves, --http bolt.protocol.http:HeadReader (BOLT_HTTP=httptools for uvicorn's own) on a free
# 127.0.0.1 port, runs the given Autobahn sets (default: core deflate), stops the server and exits
# non-zero unless every case is OK or INFORMATIONAL. Honours BOLT_NO_ACCEL like the rest of bolt;
# BOLT_LOOP=uvloop serves on uvloop instead of asyncio's loop.
# Usage: tests/protocol/run_autobahn.sh [core] [deflate] [limits]
# The Autobahn|Testsuite runs on Python 2.7 only, which current systems no longer ship, so this
# script does not install it: it uses the runner named by AUTOBAHN_RUN (a script taking
# URL SET REPORT_DIR, like the team's tools/autobahn/run.sh, found beside the repository as
# ../shared/tools/autobahn/run.sh when present). Without one it says so and skips (exit 0),
# except under CI (CI=true), where a missing runner is a failure.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUN="${AUTOBAHN_RUN:-$ROOT/../shared/tools/autobahn/run.sh}"
if [ ! -x "$RUN" ]; then
    if [ -n "${CI:-}" ]; then
        echo "autobahn: no runner at $RUN (set AUTOBAHN_RUN); CI needs it" >&2
        exit 1
    fi
    echo "autobahn: skipped, no Autobahn runner (Python 2.7 only; set AUTOBAHN_RUN=/path/to/run.sh to run it)"
    exit 0
fi
SETS=("$@"); [ ${#SETS[@]} -eq 0 ] && SETS=(core deflate)
PYTHON="${PYTHON:-python3}"
PORT="$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
OUT="$(mktemp -d)"
cd "$ROOT"
"$PYTHON" -m uvicorn benchmarks.echo_app:app --ws bolt.protocol:WebSocketProtocol --loop "${BOLT_LOOP:-asyncio}" \
    --http "${BOLT_HTTP:-bolt.protocol.http:HeadReader}" \
    --host 127.0.0.1 --port "$PORT" --log-level warning --lifespan off > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2).close()" 2>/dev/null && break
    sleep 0.1
done
"$PYTHON" -c "import bolt.accel as a; print('bolt.accel.ENABLED =', a.ENABLED, '| loop:', '${BOLT_LOOP:-asyncio}')"
status=0
for set in "${SETS[@]}"; do
    result="$(timeout 1800 "$RUN" "ws://127.0.0.1:$PORT/" "$set" "$OUT/$set" 2>&1)" || status=1
    echo "$result"
    # run.sh lists every case that is not OK/INFORMATIONAL as "  <case>: <verdict>"; other
    # indented output (a blank progress line) is not a failure.
    if grep -qE '^  [0-9]+(\.[0-9]+)*: ' <<<"$result" || ! grep -q "^autobahn $set: " <<<"$result" || grep -q 'no report' <<<"$result"; then
        status=1
    fi
done
if [ "$status" -ne 0 ]; then
    echo "--- server log ($OUT/server.log) ---"; tail -50 "$OUT/server.log"
fi
exit "$status"
