"""bolt routes that use the ORM, tested under pytest-django: the recipe docs/testing.md describes.

`@pytest.mark.django_db(transaction=True)`: the handler's async ORM calls run in Django's sync
thread, on another database connection than the test's, so the rows a test creates must be
committed for the handler to see them (plain `django_db` wraps the test in a transaction that
connection cannot see, which is what makes such tests hang or fail). Django's own test `Client`
logs users in, and its session cookie opens the socket.
"""
from __future__ import annotations

import pytest

from django_settings import configure_django

configure_django()

from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.test import AsyncClient  # noqa: E402

from bolt import BoltAPI  # noqa: E402
from bolt.auth import IsAuthenticated, SessionAuthentication  # noqa: E402
from bolt.sessions import SESSION_ENDED  # noqa: E402
from bolt.testing import ConnectionClosed, WebSocketDenied, WebSocketTestClient  # noqa: E402

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

api = BoltAPI()


@api.websocket("/ws/users", auth=[SessionAuthentication()], guards=[IsAuthenticated()])
async def users(websocket):
    await websocket.accept()
    await websocket.send_json({"me": websocket.user.username, "users": await User.objects.acount()})
    async for name in websocket.iter_text():
        await User.objects.acreate(username=name)
        await websocket.send_json({"users": await User.objects.acount()})


async def logged_in(username: str) -> tuple[AsyncClient, dict[str, str]]:
    user = await User.objects.acreate(username=username)
    client = AsyncClient()
    await client.aforce_login(user)
    return client, session_cookie(client)


def session_cookie(client: AsyncClient) -> dict[str, str]:
    return {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value}


async def test_a_route_reads_and_writes_the_database() -> None:
    _, cookies = await logged_in("ann")
    async with WebSocketTestClient(api, "/ws/users", cookies=cookies) as ws:
        assert await ws.receive_json() == {"me": "ann", "users": 1}
        await ws.send_text("bob")
        assert await ws.receive_json() == {"users": 2}
    assert await sync_to_async(User.objects.filter(username="bob").exists)()


async def test_logout_closes_the_socket_and_refuses_the_session() -> None:
    client, cookies = await logged_in("cat")
    async with WebSocketTestClient(api, "/ws/users", cookies=cookies) as ws:
        await ws.receive_json()
        await client.alogout()
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_json(timeout=1)
        assert (closed.value.code, closed.value.reason) == (SESSION_ENDED, "session ended")
    with pytest.raises(WebSocketDenied):
        async with WebSocketTestClient(api, "/ws/users", cookies=cookies):
            pass


async def test_changing_ones_password_keeps_ones_socket_and_closes_the_other_sessions() -> None:
    changer, _ = await logged_in("dee")
    other = AsyncClient()
    await other.aforce_login(await User.objects.aget(username="dee"))
    async with WebSocketTestClient(api, "/ws/users", cookies=session_cookie(changer)) as kept, \
            WebSocketTestClient(api, "/ws/users", cookies=session_cookie(other)) as ended:
        await kept.receive_json()
        await ended.receive_json()
        old_key = session_cookie(changer)
        assert (await changer.post("/change-password", {"password": "a-new-secret"})).json() == {"ok": True}
        assert session_cookie(changer) != old_key  # update_session_auth_hash cycled the changer's session
        with pytest.raises(ConnectionClosed) as closed:  # the other session's password hash no longer matches
            await ended.receive_json(timeout=5)
        assert (closed.value.code, closed.value.reason) == (SESSION_ENDED, "session ended")
        await kept.send_text("fay")  # the changer's socket is still open and served
        assert await kept.receive_json() == {"users": 2}
        await changer.alogout()  # the socket follows its session's new key: logging out closes it
        with pytest.raises(ConnectionClosed) as closed:
            await kept.receive_json(timeout=1)
        assert closed.value.code == SESSION_ENDED


@api.post("/ws-users/deactivate", auth=[SessionAuthentication()], guards=[IsAuthenticated()])
async def deactivate(request):
    user = await request.auser()
    user.is_active = False
    await user.asave(update_fields=["is_active"])  # saved from an async bolt route, in sync_to_async's thread
    return {"ok": True}


async def test_deactivating_a_user_from_an_async_route_closes_its_sockets() -> None:
    from bolt.testing import AsyncTestClient

    _, cookies = await logged_in("gus")
    async with WebSocketTestClient(api, "/ws/users", cookies=cookies) as ws:
        await ws.receive_json()
        response = await AsyncTestClient(api).post("/ws-users/deactivate", cookies=cookies,
                                                   headers={"Origin": "http://testserver"})
        assert response.json() == {"ok": True}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_json(timeout=5)
        assert closed.value.code == SESSION_ENDED


def deactivate_in_a_transaction(username: str) -> None:
    """What Django's admin does: the save, then more work, then the commit."""
    from django.db import transaction

    with transaction.atomic():
        user = User.objects.get(username=username)
        user.is_active = False
        user.save()
        User.objects.create(username=f"{username}-audit")  # the rest of the change form's work


async def test_deactivating_a_user_in_a_transaction_closes_its_sockets_once_committed() -> None:
    _, cookies = await logged_in("ida")
    async with WebSocketTestClient(api, "/ws/users", cookies=cookies) as ws:
        await ws.receive_json()
        # In a thread of its own, as a view in another worker thread. (The race the commit hook
        # prevents does not show here: SQLite's shared in-memory test database locks the table, so a
        # check made before the commit fails, and fails closed.)
        await sync_to_async(deactivate_in_a_transaction, thread_sensitive=False)("ida")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_json(timeout=5)
        assert closed.value.code == SESSION_ENDED


async def test_a_session_that_cannot_be_checked_is_closed(monkeypatch, caplog) -> None:
    import bolt.sessions

    async def failing(key: str):
        raise RuntimeError("session store down")

    _, cookies = await logged_in("hal")
    async with WebSocketTestClient(api, "/ws/users", cookies=cookies) as ws:
        await ws.receive_json()
        monkeypatch.setattr(bolt.sessions, "session_user", failing)
        user = await User.objects.aget(username="hal")
        user.set_password("changed")
        await user.asave()
        with pytest.raises(ConnectionClosed) as closed:  # fail closed: a reconnect authenticates afresh
            await ws.receive_json(timeout=5)
        assert closed.value.code == SESSION_ENDED
    assert any("session store down" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
