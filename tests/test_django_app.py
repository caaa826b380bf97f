"""bolt as a Django app, against real parts: `manage.py runserver` and uvicorn workers on free ports,
redis-server, a second OS process publishing, Django's auth and session apps on a SQLite file.

The project served is tests/djangoproject (settings, asgi.py, api and views).
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from ports import free_port, wait_for_port
from redis_servers import RedisServer, redis_binary_or_skip

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.join(ROOT, "tests", "djangoproject")


@pytest.fixture
def project(tmp_path: Any) -> dict[str, str]:
    """The environment of a fresh test project: its own migrated SQLite file."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, PROJECT]), DJANGO_SETTINGS_MODULE="site_settings",
               BOLT_TEST_DB=str(tmp_path / "db.sqlite3"))
    env.pop("BOLT_TEST_NO_ASGI", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT, env=env, check=True)
    return env


class Server:
    """One server process of the test project on a free port: runserver or a uvicorn worker."""

    def __init__(self, env: dict[str, str], *command: str) -> None:
        self.port = free_port()
        argv = [arg.replace("{port}", str(self.port)) for arg in command]
        self.process = subprocess.Popen([sys.executable, *argv], cwd=PROJECT, env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_port(self.port, timeout=30, process=self.process)

    @classmethod
    def runserver(cls, env: dict[str, str], *options: str) -> Server:
        return cls(env, "manage.py", "runserver", "127.0.0.1:{port}", *options)

    @classmethod
    def uvicorn(cls, env: dict[str, str]) -> Server:
        return cls(env, "-m", "bolt.cli", "run", "site_asgi:application", "--port", "{port}", "--log-level", "warning")

    def ws(self, path: str, session: str | None = None) -> Any:
        headers = {"Cookie": f"sessionid={session}"} if session else None
        return connect(f"ws://127.0.0.1:{self.port}{path}", additional_headers=headers,
                       origin=f"http://127.0.0.1:{self.port}")

    async def http(self, path: str, data: Any = None, session: str | None = None) -> Any:
        def fetch() -> Any:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}",
                                             data=json.dumps(data).encode() if data is not None else None)
            if session:
                request.add_header("Cookie", f"sessionid={session}")
            with urllib.request.urlopen(request, timeout=20) as response:
                body = response.read()
                return json.loads(body) if response.headers.get_content_type() == "application/json" else body

        return await asyncio.to_thread(fetch)

    def stop(self) -> str:
        """Stop the server (and the reloader's child) and return everything it printed."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        return self.process.stdout.read() if self.process.stdout else ""


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def log_in(server: Server, username: str, create: bool = True, **user: Any) -> str:
    """A new session of `username` (created first, with `user`'s fields, unless `create` is false)."""
    if create:
        await server.http("/make-user", dict(user, username=username, password="pw-" + username))
    return (await server.http("/login", {"username": username, "password": "pw-" + username}))["session"]


# -- runserver ----------------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_runserver_serves_bolt_routes_django_and_static_files(project: dict[str, str],
                                                                   servers: list[Server]) -> None:
    server = Server.runserver(project, "--noreload")
    servers.append(server)
    async with server.ws("/ws/echo") as ws:
        await ws.send("over runserver")
        assert await ws.recv() == "over runserver"
    with pytest.raises(InvalidStatus) as refused:
        async with server.ws("/ws/me"):
            pass
    assert refused.value.response.status_code == 401
    assert await server.http("/django/hello") == b"hello from django"
    assert b"color" in await server.http("/static/site.css")  # DEBUG: staticfiles served by runserver
    output = server.stop()
    assert "Starting development server at http://127.0.0.1:" in output
    assert '"WEBSOCKET /ws/echo" 101' in output
    assert '"WEBSOCKET /ws/me" 401' in output
    assert '"GET /django/hello HTTP/1.1" 200' in output


@pytest.mark.asyncio
async def test_runserver_with_the_autoreloader(project: dict[str, str], servers: list[Server]) -> None:
    server = Server.runserver(project)
    servers.append(server)
    async with server.ws("/ws/echo") as ws:
        await ws.send("reloaded")
        assert await ws.recv() == "reloaded"
    assert "Watching for file changes with StatReloader" in server.stop()


def test_runserver_without_asgi_application_says_what_to_set(project: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "manage.py", "runserver", "--noreload"], cwd=PROJECT,
                            env=dict(project, BOLT_TEST_NO_ASGI="1"), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert 'ASGI_APPLICATION = "mysite.asgi.application"' in result.stderr


def test_runserver_runs_the_system_checks_and_refuses_to_start_on_an_error(project: dict[str, str]) -> None:
    result = subprocess.run([sys.executable, "manage.py", "runserver", f"127.0.0.1:{free_port()}", "--noreload"],
                            cwd=PROJECT, env=dict(project, BOLT_TEST_PUBSUB="amqp://broker"), capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert "bolt.E001" in result.stderr and "Starting development server" not in result.stdout


@pytest.mark.parametrize("reload", [False, True])
def test_runserver_on_a_taken_port_exits(project: dict[str, str], reload: bool) -> None:
    # Under the autoreloader the server runs in a thread, where uvicorn's own exit ended only that thread.
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}",
                                 *([] if reload else ["--noreload"])], cwd=PROJECT, env=project,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "address already in use" in result.stderr.lower(), result.stderr


# -- Django users and sessions on sockets ----------------------------------------------------------------

@pytest.mark.asyncio
async def test_session_user_and_permissions(project: dict[str, str], servers: list[Server]) -> None:
    server = Server.uvicorn(project)
    servers.append(server)
    plain = await log_in(server, "ann")
    staff = await log_in(server, "bob", staff=True, perms=["add_user"])
    async with server.ws("/ws/me", plain) as ws:
        assert await recv_json(ws) == {"username": "ann", "pk": 1, "can_add_user": False}
    for path in ("/ws/staff", "/ws/add-user"):
        with pytest.raises(InvalidStatus) as refused:
            async with server.ws(path, plain):
                pass
        assert refused.value.response.status_code == 403
        async with server.ws(path, staff) as ws:
            assert (await recv_json(ws))["username"] == "bob"


async def _closed_with(ws: ClientConnection, timeout: float = 1.0) -> tuple[int, str, float]:
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), timeout)
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic() - started


@pytest.mark.asyncio
@pytest.mark.parametrize("pubsub", ["memory", "redis"])
async def test_logout_closes_the_sessions_sockets_in_every_worker(project: dict[str, str], servers: list[Server],
                                                                 pubsub: str) -> None:
    redis = None
    if pubsub == "redis":
        redis = RedisServer(redis_binary_or_skip())
        redis.start()
        project = dict(project, BOLT_TEST_PUBSUB=redis.url)
    try:
        first = Server.uvicorn(project)
        servers.append(first)
        others = [first]
        if redis is not None:
            others.append(Server.uvicorn(project))
            servers.append(others[-1])
        session = await log_in(first, "cat")
        other_session = await log_in(first, "cat", create=False)
        sockets = [await server.ws("/ws/me", session).__aenter__() for server in others]
        kept = await first.ws("/ws/me-kept", session).__aenter__()
        other_device = await others[-1].ws("/ws/me", other_session).__aenter__()
        for ws in (*sockets, kept, other_device):
            await recv_json(ws)
        await others[-1].http("/logout", session=session)
        for ws in sockets:
            code, reason, _ = await _closed_with(ws)
            assert (code, reason) == (4001, "session ended")
        await kept.send("still open")  # the route that opted out
        await other_device.send("still open")  # the user's other session
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(other_device.recv(), 0.3)
        with pytest.raises(InvalidStatus):  # the ended session no longer authenticates
            async with first.ws("/ws/me", session):
                pass
        await kept.close()
        await other_device.close()
    finally:
        if redis is not None:
            redis.stop()


@pytest.mark.asyncio
async def test_password_change_and_session_deletion_close_sockets(project: dict[str, str],
                                                                  servers: list[Server]) -> None:
    server = Server.uvicorn(project)
    servers.append(server)
    session = await log_in(server, "dan")
    async with server.ws("/ws/me", session) as ws:
        await recv_json(ws)
        await server.http("/set-password", {"username": "dan", "password": "new"})
        assert (await _closed_with(ws, timeout=5))[:2] == (4001, "session ended")
    session = await log_in(server, "eve")
    async with server.ws("/ws/me", session) as ws:
        await recv_json(ws)
        await server.http("/delete-sessions", {})
        assert (await _closed_with(ws))[:2] == (4001, "session ended")


@pytest.mark.asyncio
async def test_changing_ones_password_keeps_ones_sockets_and_closes_the_other_sessions(
        project: dict[str, str], servers: list[Server]) -> None:
    server = Server.uvicorn(project)
    servers.append(server)
    changer = await log_in(server, "fox")
    other = await log_in(server, "fox", create=False)
    kept = await server.ws("/ws/me", changer).__aenter__()
    ended = await server.ws("/ws/me", other).__aenter__()
    for ws in (kept, ended):
        await recv_json(ws)
    renewed = (await server.http("/change-password", {"password": "pw-fox-2"}, session=changer))["session"]
    assert renewed != changer  # update_session_auth_hash cycled the changer's session
    assert (await _closed_with(ended, timeout=5))[:2] == (4001, "session ended")  # its hash no longer matches
    with pytest.raises(asyncio.TimeoutError):  # the changer's socket stays open
        await asyncio.wait_for(kept.recv(), 0.5)
    await server.http("/logout", session=renewed)  # and follows the new key: logging out closes it
    assert (await _closed_with(kept))[:2] == (4001, "session ended")


# -- publish from anywhere --------------------------------------------------------------------------------

PUBLISHER = """
import django, sys
django.setup()
from bolt.realtime import publish
for n in range(3):
    print(publish("news", {"n": n}))
"""


@pytest.mark.redis
@pytest.mark.asyncio
async def test_publish_from_another_process_and_a_sync_view(project: dict[str, str], servers: list[Server],
                                                           redis_server: RedisServer) -> None:  # noqa: F811
    project = dict(project, BOLT_TEST_PUBSUB=redis_server.url)
    workers = [Server.uvicorn(project), Server.uvicorn(project)]
    servers.extend(workers)
    clients = [await worker.ws("/ws/room/news").__aenter__() for worker in workers]
    for ws in clients:
        assert await recv_json(ws) == {"joined": "news"}
    result = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", PUBLISHER], cwd=PROJECT, env=project,
                                     capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    ids = [int(id) for id in result.stdout.split()]  # ids of a room with history, as hub.broadcast gives
    assert ids == list(range(ids[0], ids[0] + 3))  # a new history counts on from Redis's clock
    for ws in clients:
        for n in range(3):
            assert await recv_json(ws) == {"room": "news", "id": ids[n], "data": {"n": n}}
    assert await workers[0].http("/publish?room=news&text=from+a+view") == {"id": ids[2] + 1}
    for ws in clients:
        assert await recv_json(ws) == {"room": "news", "id": ids[2] + 1, "data": {"text": "from a view"}}
    for ws in clients:
        await ws.close()


def test_publish_with_the_memory_backend_and_no_server_is_refused(project: dict[str, str]) -> None:
    script = "import django; django.setup()\nfrom bolt.realtime import publish\npublish('news', 1)"
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, env=project, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 1
    assert "PublishError" in result.stderr and "nobody can receive" in result.stderr


# -- the walkthrough of docs/django.md, followed as written ---------------------------------------------------

PROJECT_FILE = re.compile(r"^```python\n# (mysite/\w+\.py)([^\n]*)\n(.*?)^```", re.S | re.M)


def walkthrough_project(directory: Path) -> Path:
    """`startproject mysite` with the files of the page's first section written in, and its settings added."""
    subprocess.run([sys.executable, "-m", "django", "startproject", "mysite"], cwd=directory, check=True)
    section = (Path(ROOT) / "docs" / "django.md").read_text().split("\n## ")[1]
    assert section.startswith("From startproject to a live page")
    site = directory / "mysite"
    for name, note, source in PROJECT_FILE.findall(section):
        if name != "mysite/settings.py":
            (site / name).write_text(source)
            continue
        assert note == " (additions)" and source.startswith("INSTALLED_APPS = [\n    \"bolt\",")
        settings = site / name
        added = "\n".join(line for line in source.splitlines()[1:] if line.startswith(("ASGI_", "CORS_")))
        settings.write_text(settings.read_text().replace("INSTALLED_APPS = [\n", 'INSTALLED_APPS = [\n    "bolt",\n')
                            + added + "\n")
    return site


@pytest.mark.asyncio
async def test_the_walkthrough_as_written(tmp_path: Path) -> None:
    site = walkthrough_project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = ROOT
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=site, env=env, check=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"], cwd=site,
                              env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=30, process=server)
        async with httpx.AsyncClient(base_url=base) as browser, connect(f"ws://127.0.0.1:{port}/ws/news",
                                                                         origin=base) as socket:
            page = await browser.get("/news/")
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            assert token is not None, page.text
            # What the page's fetch() sends: its origin, the CSRF cookie and the form's token.
            posted = await browser.post("/news/post", data={"csrfmiddlewaretoken": token[1], "headline": "hello"},
                                        headers={"Origin": base})
            assert posted.json() == {"ok": True}
            assert json.loads(await asyncio.wait_for(socket.recv(), 5)) == {"headline": "hello"}
            async with httpx.AsyncClient(base_url=base) as stranger:  # no token: Django's CSRF check refuses it
                assert (await stranger.post("/news/post", data={"headline": "forged"})).status_code == 403
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=15)[0]
    assert "System check identified no issues (0 silenced)." in output, output
