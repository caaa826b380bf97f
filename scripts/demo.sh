#!/usr/bin/env bash
# Installs bolt and the chat example into a private venv (.venv-demo) and serves it with `bolt run`:
# log in as one of the two demo users it prints, open a room, chat from two browsers.
#   bash scripts/demo.sh                 (HOST, PORT and PYTHON may be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
VENV="${VENV:-$ROOT/.venv-demo}"

step() { printf '\n==> %s\n' "$*"; }

step "bolt and its dependencies in $VENV (the Rust accelerator too when cargo is on PATH)"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
[ -x "$VENV/bin/python" ] || "${PYTHON:-python3}" -m venv "$VENV"
PY="$VENV/bin/python"
"$PY" -m pip install -q --disable-pip-version-check -e .

cd examples/chat
step "the example's SQLite database (examples/chat/db.sqlite3) and its demo users"
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py demo_users

step "serving on http://$HOST:$PORT/  (log in with a user above in two browsers; Ctrl-C stops)"
exec "$PY" -m bolt.cli run chat_site.asgi:application --host "$HOST" --port "$PORT"
