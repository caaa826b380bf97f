"""The runnable example (examples/chat) works: in-process, under uvicorn, and under `bolt run`.

The example configures Django from its own settings module, which a process can do only once, so
each check runs it in a child process with a database of its own: `examples/chat/smoke.py` logs two
users in and has them chat through the room protocol, in-process (bolt.testing) or against a server
(the `websockets` client).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from bolt import cli
from ports import free_port, stop_process, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "chat")


PASSWORD = "example-test-password"


def example_env(database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return dict(env, CHAT_DATABASE=database, SMOKE_PASSWORD=PASSWORD)


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=EXAMPLE, env=env, check=True, capture_output=True,
                   timeout=60)


def run_smoke(env: dict[str, str], *args: str) -> None:
    result = subprocess.run([sys.executable, "smoke.py", *args], cwd=EXAMPLE, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no login, no socket" in result.stdout


def serve_example(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=EXAMPLE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def test_the_example_passes_the_system_checks(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "check", "--fail-level", "WARNING"], cwd=EXAMPLE,
                            env=example_env(str(tmp_path / "db.sqlite3")), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_example_in_process(tmp_path):
    run_smoke(example_env(str(tmp_path / "db.sqlite3")))


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["uvicorn", "bolt run", "bolt run --loop asyncio", "runserver"])
def test_example_through_a_real_server(launcher, tmp_path):
    env = example_env(str(tmp_path / "db.sqlite3"))
    manage(env, "migrate", "--noinput")
    manage(env, "demo_users", "--password", PASSWORD)
    port = free_port()
    if launcher == "uvicorn":
        command = [sys.executable, "-m", "uvicorn", "chat_site.asgi:application", "--host", "127.0.0.1",
                   "--port", str(port), "--ws", "websockets-sansio", "--log-level", "warning"]
    elif launcher == "runserver":  # bolt's, since "bolt" comes before staticfiles in INSTALLED_APPS
        command = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    else:
        command = [sys.executable, "-m", "bolt.cli", "run", "chat_site.asgi:application", "--port", str(port),
                   "--log-level", "warning", *launcher.split()[2:]]
    process = serve_example(command, env)
    try:
        wait_for_port(port, timeout=20, process=process)
        run_smoke(env, f"http://127.0.0.1:{port}")
    finally:
        stop_process(process, 10, signal.SIGINT)


def test_cli_serves_bolts_protocols():
    assert cli.websocket_protocol() == "bolt.protocol:WebSocketProtocol"


def test_cli_arguments(monkeypatch):
    calls = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    assert cli.main(["run", "site.asgi:application", "--port", "9000", "--workers", "2", "--ws", "wsproto"]) == 0
    app, kwargs = calls[0]
    assert app == "site.asgi:application"
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 9000 and kwargs["workers"] == 2
    assert kwargs["ws"] == "wsproto" and kwargs["reload"] is False
    assert kwargs["loop"] == "auto"  # uvloop when installed
    assert cli.main(["run", "site.asgi:application", "--loop", "asyncio"]) == 0
    assert calls[1][1]["loop"] == "asyncio"
    assert cli.main(["run", "site.asgi:application", "--reload", "--workers", "2"]) == 2
    with pytest.raises(SystemExit):
        cli.main([])


LOGGED_APP = '''
from bolt import BoltAPI
api = BoltAPI()
'''


@pytest.mark.parametrize("level, shown", [("info", True), ("warning", False)])
def test_bolt_run_prints_bolts_own_log_lines_at_its_log_level(level, shown, tmp_path):
    (tmp_path / "logged_app.py").write_text(LOGGED_APP)
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bolt.cli", "run", "logged_app:api", "--port", str(port),
                                "--log-level", level], cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=20, process=process)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /ws/nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                         b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         b"Sec-WebSocket-Version: 13\r\n\r\n")
            assert sock.recv(100).startswith(b"HTTP/1.1 404 ")
    finally:
        stop_process(process, 10, signal.SIGINT)
    log = process.stderr.read()
    line = "INFO:     refused websocket /ws/nowhere from 127.0.0.1:"
    assert (line in log) is shown, log
