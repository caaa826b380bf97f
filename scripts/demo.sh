#!/usr/bin/env bash
# Installs bolt and the chat example on a fresh machine and serves it with uvicorn:
# Django's page at http://127.0.0.1:8000/, bolt's /ws/echo and /ws/chat/{room} beside it.
#   bash scripts/demo.sh                 (HOST, PORT and PYTHON may be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

step() { printf '\n==> %s\n' "$*"; }

step "bolt and its dependencies (Django, uvicorn, wsproto, ...)"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
"$PY" -m pip install -q --disable-pip-version-check -e .

step "the example's SQLite database (examples/chat/db.sqlite3)"
(cd examples/chat && "$PY" manage.py migrate --noinput -v 0)

step "serving on http://$HOST:$PORT/  (open it in two tabs and join the same room; Ctrl-C stops)"
cd examples/chat
exec "$PY" -m uvicorn chat_site.asgi:application --host "$HOST" --port "$PORT"
