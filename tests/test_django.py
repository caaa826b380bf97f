"""bolt.django: mounting an api beside Django's ASGI handler, the shared lifespan, lazy settings."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from bolt import BoltAPI, WebSocket
from bolt.django import BoltMount, mount, setting
from bolt.testing import AsyncTestClient, HandshakeRejected, WebSocketDenied, WebSocketTestClient
from demo_apps import echo_api
from django_settings import configure_django
from uvicorn_server import WS_IMPLEMENTATIONS, serve

configure_django()

from django.core.asgi import get_asgi_application  # noqa: E402  (needs settings first)
from django.test import override_settings  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_api() -> BoltAPI:
    api = echo_api(path="/ws/echo")

    @api.get("/shared")
    async def shared():
        return {"served_by": "bolt"}

    @api.get("/api/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id}

    return api


class Recorder:
    """A stand-in for Django's app that records the scopes it is given."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"other"})
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})
        else:
            raise ValueError(f"no {scope['type']} here")


async def run_lifespan(app, *, phases=("startup", "shutdown")) -> list[dict[str, Any]]:
    """Drive `app` through a lifespan as a server would and return what it answered."""
    inbox: asyncio.Queue = asyncio.Queue()
    replies: list[dict[str, Any]] = []
    sent = asyncio.Event()

    async def send(message):
        replies.append(message)
        sent.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, send))
    for phase in phases:
        sent.clear()
        await inbox.put({"type": f"lifespan.{phase}"})
        await asyncio.wait_for(sent.wait(), 5)
        if replies[-1]["type"].endswith("failed"):
            break
    await asyncio.wait_for(task, 5)
    return replies


# -- routing --------------------------------------------------------------------------------------


def test_mount_returns_an_asgi_app():
    app = mount(make_api(), Recorder())
    assert isinstance(app, BoltMount)


@pytest.mark.asyncio
async def test_bolt_routes_go_to_bolt_the_rest_to_django():
    app = mount(make_api(), get_asgi_application())
    client = AsyncTestClient(app)

    response = await asyncio.wait_for(client.get("/django/hello"), 10)
    assert response.status_code == 200
    assert response.text == "hello from django"

    response = await asyncio.wait_for(client.get("/api/items/7"), 10)
    assert response.json() == {"id": 7}

    # Both define /shared: bolt's route wins.
    response = await asyncio.wait_for(client.get("/shared"), 10)
    assert response.json() == {"served_by": "bolt"}

    # Neither has it: Django's 404, not bolt's JSON one.
    response = await asyncio.wait_for(client.get("/nowhere"), 10)
    assert response.status_code == 404
    assert not response.headers.get("content-type", "").startswith("application/json")


@pytest.mark.asyncio
async def test_wrong_method_on_a_bolt_path_is_bolts_405():
    other = Recorder()
    response = await AsyncTestClient(mount(make_api(), other)).post("/api/items/7")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert other.scopes == []


@pytest.mark.asyncio
async def test_bolt_websocket_route_through_the_mount():
    app = mount(make_api(), get_asgi_application())
    async with WebSocketTestClient(app, "/ws/echo") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text(timeout=5) == "hi"


@pytest.mark.asyncio
async def test_unmatched_websocket_and_http_go_to_the_other_app():
    other = Recorder()
    app = mount(make_api(), other)
    # A WebSocket to a path bolt only serves over HTTP, and one bolt does not know at all.
    for path in ("/shared", "/ws/unknown"):
        with pytest.raises((HandshakeRejected, WebSocketDenied)):
            async with WebSocketTestClient(app, path):
                pass
    # An HTTP request to a path bolt only serves as a WebSocket.
    response = await AsyncTestClient(app).get("/ws/echo")
    assert response.text == "other"
    assert [(s["type"], s["path"]) for s in other.scopes] == [
        ("websocket", "/shared"), ("websocket", "/ws/unknown"), ("http", "/ws/echo")]


@pytest.mark.asyncio
async def test_an_unknown_websocket_path_beside_django_is_a_clean_404(caplog):
    app = mount(make_api(), get_asgi_application())
    with caplog.at_level("INFO"):
        with pytest.raises(HandshakeRejected) as exc:
            async with WebSocketTestClient(app, "/ws/unknown"):
                pass
    assert (exc.value.status_code, exc.value.body) == (404, {"detail": "Not Found"})
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("bolt.security", "INFO", "refused websocket /ws/unknown from testclient:50000: 404 Not Found (no WebSocket route)")]


@pytest.mark.asyncio
async def test_without_the_http_response_extension_the_404_is_a_close_before_accept():
    app = mount(make_api(), get_asgi_application())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/ws/unknown", "headers": [], "query_string": b"", "extensions": {}}
    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "Not Found"}]


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_scanners_probing_websocket_paths_through_uvicorn_get_404_and_no_traceback(ws, caplog):
    # The attack: each probe of /ws/* under the Django mount logged Django's ValueError traceback
    # ("Django can only handle ASGI/HTTP connections") and was answered 500.
    from websockets.asyncio.client import connect
    from websockets.exceptions import InvalidStatus

    api = make_api()
    with caplog.at_level("INFO"):
        async with serve(mount(api, get_asgi_application()), ws=ws) as base:  # lifespan on
            for path in ("/ws/unknown", "/ws/admin/../x", "/shared"):
                with pytest.raises(InvalidStatus) as exc:
                    async with asyncio.timeout(5):
                        async with connect(f"ws://{base}{path}", open_timeout=5):
                            pass
                assert (exc.value.response.status_code, exc.value.response.body) == (404, b'{"detail":"Not Found"}')
            async with connect(f"ws://{base}/ws/echo", open_timeout=5) as client:  # bolt's own route still works
                await client.send("hi")
                assert await client.recv() == "hi"
    assert not [r for r in caplog.records if r.levelno >= 40]
    assert sum("404 Not Found (no WebSocket route)" in r.getMessage() for r in caplog.records) == 3


@pytest.mark.asyncio
async def test_websocket_param_errors_stay_with_bolt():
    api = BoltAPI()

    @api.websocket("/ws/user/{user_id}")
    async def user(websocket: WebSocket, user_id: int):
        await websocket.accept()

    other = Recorder()
    with pytest.raises(HandshakeRejected) as exc:
        async with WebSocketTestClient(mount(api, other), "/ws/user/abc"):
            pass
    assert exc.value.status_code == 422
    assert other.scopes == []


@pytest.mark.asyncio
async def test_root_path_is_respected():
    other = Recorder()
    app = mount(make_api(), other)

    async def behind_prefix(scope, receive, send):
        # What a server run with --root-path /prefix hands the app for /prefix/api/items/3.
        scope["root_path"] = "/prefix"
        scope["path"] = "/prefix" + scope["path"]
        await app(scope, receive, send)

    response = await AsyncTestClient(behind_prefix).get("/api/items/3")
    assert response.json() == {"id": 3}
    assert other.scopes == []


# -- lifespan -------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_lifespan_with_django_runs_bolt_hooks_and_completes():
    api = make_api()
    events: list[str] = []
    api.on_startup(lambda: events.append("startup"))
    api.on_shutdown(lambda: events.append("shutdown"))
    replies = await run_lifespan(mount(api, get_asgi_application()))
    assert [r["type"] for r in replies] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["startup", "shutdown"]


@pytest.mark.asyncio
async def test_lifespan_reaches_an_app_that_supports_it():
    events: list[str] = []
    api = make_api()

    @api.on_startup
    async def bolt_start():
        events.append("bolt startup")

    api.on_shutdown(lambda: events.append("bolt shutdown"))
    other = BoltAPI(on_startup=[lambda: events.append("other startup")],
                    on_shutdown=[lambda: events.append("other shutdown")])
    replies = await run_lifespan(mount(api, other))
    assert [r["type"] for r in replies] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert sorted(events) == ["bolt shutdown", "bolt startup", "other shutdown", "other startup"]


@pytest.mark.asyncio
async def test_lifespan_failure_of_either_app_is_reported():
    def boom():
        raise RuntimeError("database unreachable")

    failing_bolt = BoltAPI(on_startup=[boom])
    replies = await run_lifespan(mount(failing_bolt, get_asgi_application()))
    assert replies[-1]["type"] == "lifespan.startup.failed"
    assert "database unreachable" in replies[-1]["message"]

    failing_other = BoltAPI(on_startup=[boom])
    replies = await run_lifespan(mount(make_api(), failing_other))
    assert replies[-1]["type"] == "lifespan.startup.failed"


@pytest.mark.asyncio
async def test_lifespan_refusal_is_not_a_failure():
    other = Recorder()  # raises ValueError for lifespan, as Django's handler does
    replies = await run_lifespan(mount(make_api(), other))
    assert [r["type"] for r in replies] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


# -- settings -------------------------------------------------------------------------------------


def test_setting_reads_django_settings_lazily():
    assert setting("BOLT_SOMETHING_UNSET", "fallback") == "fallback"
    with override_settings(BOLT_TEST_VALUE=42):
        assert setting("BOLT_TEST_VALUE") == 42
    assert setting("BOLT_TEST_VALUE", None) is None
    assert setting("SECRET_KEY") == "bolt-tests-only-not-secret"


def test_bolt_runs_without_django_settings():
    code = textwrap.dedent("""
        import asyncio, os, sys
        os.environ.pop("DJANGO_SETTINGS_MODULE", None)
        from bolt import BoltAPI, WebSocket
        from bolt.django import django_settings, setting
        from bolt.testing import WebSocketTestClient

        api = BoltAPI()

        @api.websocket("/ws")
        async def echo(websocket: WebSocket):
            await websocket.accept()
            async for text in websocket.iter_text():
                await websocket.send_text(text)

        async def main():
            async with WebSocketTestClient(api, "/ws") as ws:
                await ws.send_text("x")
                assert await ws.receive_text() == "x"

        assert setting("CORS_ALLOWED_ORIGINS", ["default"]) == ["default"]
        assert django_settings() is None
        asyncio.run(main())
        from django.conf import settings
        assert not settings.configured, "bolt configured Django behind the user's back"
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def run_with_settings(code: str, settings_module: str, settings_dir: Path) -> None:
    """Run `code` in a fresh interpreter whose DJANGO_SETTINGS_MODULE is `settings_module` (in
    `settings_dir`) and nothing has set Django up; it prints "ok" when its checks hold."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=settings_module,
               PYTHONPATH=os.pathsep.join([str(settings_dir), ROOT]))
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_a_settings_module_named_by_the_environment_is_read(tmp_path):
    # `DJANGO_SETTINGS_MODULE=mysite.settings bolt run mysite.api:api`: nothing calls django.setup(), yet
    # the CORS_ALLOWED_ORIGINS of those settings decide, as Django loads its settings on first use.
    (tmp_path / "plain_settings.py").write_text(
        'SECRET_KEY = "x" * 50\nALLOWED_HOSTS = ["testserver"]\nCORS_ALLOWED_ORIGINS = ["https://app.example.com"]\n')
    code = textwrap.dedent("""
        import asyncio
        from bolt import BoltAPI, WebSocket
        from bolt.testing import WebSocketDenied, WebSocketTestClient

        api = BoltAPI()

        @api.websocket("/ws")
        async def hello(websocket: WebSocket):
            await websocket.accept()
            await websocket.send_text("hi")

        async def main():
            async with WebSocketTestClient(api, "/ws", headers={"Origin": "https://app.example.com"}) as ws:
                assert await ws.receive_text() == "hi"
            try:
                async with WebSocketTestClient(api, "/ws", headers={"Origin": "https://evil.example"}):
                    raise AssertionError("an unlisted origin was admitted")
            except WebSocketDenied as exc:
                assert exc.status_code == 403

        asyncio.run(main())
        print("ok")
    """)
    run_with_settings(code, "plain_settings", tmp_path)


def test_an_api_served_on_its_own_sets_django_up_for_users(tmp_path):
    # The same invocation: nothing calls django.setup(), yet `.user` needs Django's app registry.
    (tmp_path / "auth_settings.py").write_text(
        'SECRET_KEY = "x" * 50\nALLOWED_HOSTS = ["testserver"]\n'
        'INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"]\n'
        'SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"\n'
        f'DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3", "NAME": {str(tmp_path / "db")!r}}}}}\n')
    code = textwrap.dedent("""
        import asyncio
        from bolt import BoltAPI, Request, WebSocket
        from bolt.auth import SessionAuthentication
        from bolt.testing import AsyncTestClient, WebSocketTestClient

        api = BoltAPI()

        @api.get("/me", auth=[SessionAuthentication()])
        async def me(request: Request):
            return {"user": type(request.user).__name__}

        @api.websocket("/ws")
        async def hello(websocket: WebSocket):
            await websocket.accept()
            await websocket.send_text(type(websocket.user).__name__)

        async def main():
            response = await AsyncTestClient(api).get("/me", cookies={"sessionid": "no-such-session"})
            assert response.status_code == 200, response.text
            assert response.json() == {"user": "AnonymousUser"}
            async with WebSocketTestClient(api, "/ws") as ws:
                assert await ws.receive_text() == "AnonymousUser"

        asyncio.run(main())
        from django.apps import apps
        assert apps.ready
        print("ok")
    """)
    run_with_settings(code, "auth_settings", tmp_path)
