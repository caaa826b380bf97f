"""The Django integration's edges: deleted users' sockets, origin settings checked at startup, runserver's
port range and shutdown under the autoreloader, a repeated session cookie, signed-cookie sessions.

Database tests follow tests/test_django_db.py: `django_db(transaction=True)`, Django's `AsyncClient` logs in.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed as ClientConnectionClosed

from django_settings import configure_django
from ports import free_port, wait_for_port

configure_django()

from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core import checks  # noqa: E402
from django.test import AsyncClient, override_settings  # noqa: E402

from bolt import BoltAPI  # noqa: E402
from bolt.auth import IsAuthenticated, SessionAuthentication  # noqa: E402
from bolt.sessions import SESSION_ENDED  # noqa: E402
from bolt.testing import ConnectionClosed, WebSocketTestClient  # noqa: E402

api = BoltAPI()


@api.websocket("/ws/me", auth=[SessionAuthentication()], guards=[IsAuthenticated()])
async def me(websocket):
    await websocket.accept()
    await websocket.send_json({"me": websocket.user.username})
    async for _ in websocket.iter_text():
        pass


async def logged_in(username: str) -> dict[str, str]:
    client = AsyncClient()
    await client.aforce_login(await User.objects.acreate(username=username))
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.join(ROOT, "tests", "djangoproject")


# -- deleting a user closes its sockets ------------------------------------------------------------------

def delete_in_a_transaction(username: str) -> None:
    from django.db import transaction

    with transaction.atomic():  # as the admin's delete view does
        User.objects.filter(username=username).delete()


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["instance", "queryset", "transaction"])
async def test_django_deleting_a_user_closes_its_sockets(how: str) -> None:
    cookies = await logged_in(f"del-{how}")
    async with WebSocketTestClient(api, "/ws/me", cookies=cookies) as ws:
        assert await ws.receive_json() == {"me": f"del-{how}"}
        if how == "instance":
            await (await User.objects.aget(username=f"del-{how}")).adelete()
        elif how == "queryset":
            await User.objects.filter(username=f"del-{how}").adelete()
        else:
            await sync_to_async(delete_in_a_transaction, thread_sensitive=False)(f"del-{how}")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_json(timeout=5)
        assert (closed.value.code, closed.value.reason) == (SESSION_ENDED, "session ended")


# -- unusable origin settings are system check errors ---------------------------------------------------

def bolt_check_ids() -> set[str]:
    return {message.id for message in checks.run_checks(tags=["bolt"])}


@pytest.mark.parametrize("entry", ["localhost:3000", "https://app.example/", "https://app.example/path",
                                   "https://app.example:99999", "null", "", "*", "https://app.example",
                                   "http://[::1]:5173", "HTTPS://App.Example:443"])
def test_django_an_origin_the_policy_refuses_is_a_check_error(entry: str) -> None:
    from bolt.security.origin import OriginPolicy

    try:
        OriginPolicy([entry])
        usable = True
    except ValueError:  # what every request with an Origin header would then answer 500 for
        usable = False
    with override_settings(CORS_ALLOWED_ORIGINS=["https://fine.example", entry]):
        assert ("bolt.E003" not in bolt_check_ids()) is usable


with_bad_origin = BoltAPI(cors_allowed_origins=["localhost:3000"])


def test_django_an_apis_unusable_origin_is_a_check_error() -> None:
    with override_settings(ASGI_APPLICATION="test_django_hardening.with_bad_origin"):
        assert "bolt.E003" in bolt_check_ids()


def test_django_an_origin_setting_given_as_one_string_is_a_check_error() -> None:
    with override_settings(CORS_ALLOWED_ORIGINS="https://app.example"):
        assert "bolt.E003" in bolt_check_ids()
    with override_settings(CORS_ALLOWED_ORIGIN_REGEXES=r"https://.*\.example"):
        assert "bolt.E004" in bolt_check_ids()


def test_django_an_origin_regex_that_does_not_compile_is_a_check_error() -> None:
    import re

    for good in ([r"https://.*\.example"], [re.compile(r"https://.*\.example")]):
        with override_settings(CORS_ALLOWED_ORIGIN_REGEXES=good):
            assert bolt_check_ids() == set()
    for bad in (["https://(app.example"], [re.compile(rb"https://app\.example")]):
        with override_settings(CORS_ALLOWED_ORIGIN_REGEXES=bad):
            assert "bolt.E004" in bolt_check_ids()


# -- runserver: the port's range, and sockets closed under the autoreloader ---------------------

def runserver_env(tmp_path: Any) -> dict[str, str]:
    """The environment of tests/djangoproject (see test_django_app.py) with a fresh migrated database."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT, PROJECT]),
               DJANGO_SETTINGS_MODULE="site_settings", BOLT_TEST_DB=str(tmp_path / "db.sqlite3"))
    env.pop("BOLT_TEST_NO_ASGI", None)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT, env=env, check=True)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("reload", [False, True])
def test_django_runserver_refuses_a_port_past_65535(tmp_path: Any, reload: bool) -> None:
    # uvicorn took 99999 as 99999 % 65536 = 34463 while the banner said 99999.
    result = subprocess.run([sys.executable, "manage.py", "runserver", "127.0.0.1:99999",
                             *([] if reload else ["--noreload"])], cwd=PROJECT, env=runserver_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "'99999' is not a valid port number" in result.stderr
    assert "Starting development server" not in result.stdout


@pytest.mark.slow
def test_django_runserver_on_port_0_says_the_port_it_listens_on(tmp_path: Any) -> None:
    import re

    process = subprocess.Popen([sys.executable, "manage.py", "runserver", "127.0.0.1:0", "--noreload"], cwd=PROJECT,
                               env=runserver_env(tmp_path), text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if found := re.search(r"Starting development server at http://127\.0\.0\.1:(\d+)/", line):
                break
        assert found and found[1] != "0"
        with urllib.request.urlopen(f"http://127.0.0.1:{found[1]}/django/hello", timeout=10) as response:
            assert response.read() == b"hello from django"
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


@pytest.mark.slow
@pytest.mark.asyncio
@pytest.mark.parametrize("stop", ["ctrl-c", "reload"])
async def test_django_runserver_under_the_autoreloader_closes_sockets_with_1012(tmp_path: Any, stop: str) -> None:
    # The reloader serves from a thread of its child process; its main thread ending ended the process
    # under uvicorn, and clients saw 1006. A module imported at startup (sitecustomize, from PYTHONPATH)
    # is watched like the project's code: touching it reloads.
    watched = tmp_path / "sitecustomize.py"
    watched.write_text("")
    port = free_port()
    process = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"], cwd=PROJECT,
                               env=runserver_env(tmp_path), text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, timeout=30, process=process)
        async with connect(f"ws://127.0.0.1:{port}/ws/echo", origin=f"http://127.0.0.1:{port}") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
            if stop == "ctrl-c":
                os.killpg(process.pid, signal.SIGINT)  # what the terminal does: reloader and child get it
            else:
                await asyncio.sleep(2.5)  # past the StatReloader's first scan (once a second)
                os.utime(watched)
            with pytest.raises(ClientConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None, "dropped without a close frame (1006)"
            assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1012, "server shutting down")
        if stop == "reload":  # and the new child serves
            await asyncio.sleep(1)
            wait_for_port(port, timeout=30, process=process)
            async with connect(f"ws://127.0.0.1:{port}/ws/echo", origin=f"http://127.0.0.1:{port}") as ws:
                await ws.send("again")
                assert await ws.recv() == "again"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# -- a repeated session cookie: Django's reading, the last value ---------------------------------------

@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_django_a_repeated_session_cookie_is_read_as_django_reads_it() -> None:
    from django.http.cookie import parse_cookie

    name = settings.SESSION_COOKIE_NAME
    key = (await logged_in("rep"))[name]
    header = f"{name}=not-a-session; {name}={key}"
    assert parse_cookie(header)[name] == key  # Django's page sees "rep" logged in: so must its socket
    async with WebSocketTestClient(api, "/ws/me", headers=[("cookie", header)]) as ws:
        assert await ws.receive_json() == {"me": "rep"}


# -- signed-cookie sessions: a logged-out cookie still authenticates (docs/django.md's caveat) ----------

@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_django_signed_cookie_sessions_close_at_logout_but_the_old_cookie_still_authenticates() -> None:
    with override_settings(SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies"):
        client = AsyncClient()
        await client.aforce_login(await User.objects.acreate(username="sig"))
        cookies = {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}
        async with WebSocketTestClient(api, "/ws/me", cookies=cookies) as ws:
            assert await ws.receive_json() == {"me": "sig"}
            await client.alogout()  # the socket of that session closes, as with any engine
            with pytest.raises(ConnectionClosed) as closed:
                await ws.receive_json(timeout=1)
            assert closed.value.code == SESSION_ENDED
        # The cookie holds the session itself, and nothing on the server says it ended: Django accepts it.
        async with WebSocketTestClient(api, "/ws/me", cookies=cookies) as ws:
            assert await ws.receive_json() == {"me": "sig"}
