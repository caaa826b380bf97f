"""Credentials that expire while a WebSocket is open: 4401 at exp (+ leeway), one heap and one timer
per event loop, and the in-band refresh (bolt.security.refresh_credentials, the room protocol's `auth`)."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import jwt
import orjson
import pytest

from bolt import BoltAPI, WebSocket
from bolt.auth import APIKeyAuthentication, AuthenticationFailed, HasPermission, IsAuthenticated, JWTAuthentication
from bolt.security import CREDENTIALS_EXPIRED, CREDENTIALS_EXPIRED_REASON, refresh_credentials
from bolt.security.expiry import Deadlines, deadlines
from bolt.testing import ConnectionClosed, WebSocketTestClient
from demo_apps import jwt_room_api

from .conftest import SECRET, bearer

pytestmark = pytest.mark.asyncio


def token(expires_in: float, sub: str = "42", **claims: Any) -> str:
    return jwt.encode({"sub": sub, "exp": int(time.time() + expires_in), **claims}, SECRET, algorithm="HS256")


def echo_api(leeway: float = 0, **route: Any) -> BoltAPI:
    api = BoltAPI(auth=[JWTAuthentication(secret=SECRET, leeway=leeway)])

    @api.websocket("/ws", **route)
    async def echo(websocket: WebSocket):
        await websocket.accept()
        async for text in websocket.iter_text():
            if text.startswith("refresh "):
                try:
                    context = await refresh_credentials(websocket, text[len("refresh "):])
                except AuthenticationFailed as exc:
                    await websocket.send_text(f"refused: {exc.detail}")
                    continue
                await websocket.send_text(f"expires {context.expires_at}")
            else:
                await websocket.send_text(text)

    return api


async def closed_by_server(ws: WebSocketTestClient) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            await ws.receive_text()
    return exc.value


async def test_an_open_socket_is_closed_with_4401_when_its_token_expires(caplog):
    exp = time.time() + 1
    async with WebSocketTestClient(echo_api(), "/ws", headers=bearer(token(1))) as ws:
        await ws.send_text("still here")
        assert await ws.receive_text() == "still here"
        with caplog.at_level("INFO", logger="bolt.security"):
            closed = await closed_by_server(ws)
        assert time.time() >= int(exp)  # not before pyjwt itself would refuse the token
    assert (closed.code, closed.reason) == (CREDENTIALS_EXPIRED, CREDENTIALS_EXPIRED_REASON) == (4401, "Credentials expired")
    assert [r.getMessage() for r in caplog.records] == [
        "closing websocket /ws from testclient:50000: credentials of user 42 expired"]
    assert not [r for r in caplog.records if r.levelno >= 40]  # the handler ended as after a disconnect
    assert len(deadlines()) == 0


async def test_the_leeway_extends_an_open_socket_as_it_extends_the_token():
    # Expired a second ago, but within the 2 s leeway: admitted, then closed when the leeway runs out.
    async with WebSocketTestClient(echo_api(leeway=2), "/ws", headers=bearer(token(-1))) as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
        assert (await closed_by_server(ws)).code == 4401


async def test_credentials_that_do_not_expire_have_no_deadline():
    api = BoltAPI(auth=[APIKeyAuthentication({"k": "alice"})])

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(str(len(deadlines())))
        await websocket.receive_text()

    async with WebSocketTestClient(api, "/ws", headers={"x-api-key": "k"}) as ws:
        assert await ws.receive_text() == "0"


async def test_idle_sockets_share_one_timer_and_leave_nothing_behind():
    loop = asyncio.get_running_loop()
    api = echo_api()

    def timers() -> int:
        return sum(not handle.cancelled() for handle in loop._scheduled)  # type: ignore[attr-defined]

    before = timers()
    # Deadlines in both orders: a later one never arms a timer, an earlier one moves the one timer.
    clients = [WebSocketTestClient(api, "/ws", headers=bearer(token(300 + (i if i % 2 else -i)))) for i in range(200)]
    for client in clients:
        await client.__aenter__()
    assert len(deadlines()) == 200
    assert timers() - before == 1
    for client in clients:
        await client.__aexit__(None, None, None)
    assert len(deadlines()) == 0
    assert deadlines()._heap == []
    # The one timer stays armed for the next connection: the last one out does not cancel it.
    assert timers() - before == 1


async def test_the_heap_stays_proportional_to_the_open_sockets():
    table = Deadlines()
    far = time.time() + 3600

    class Socket:
        pass

    kept = [Socket() for _ in range(10)]
    for i, socket in enumerate(kept):
        table.watch(socket, far + i)
    for i in range(10_000):  # short-lived connections with long-lived tokens
        socket = Socket()
        table.watch(socket, far + i)
        table.forget(socket)
    assert len(table) == 10
    assert len(table._heap) < 200
    for socket in kept:
        table.forget(socket)
    assert table._heap == []


async def test_refresh_moves_the_deadline():
    async with WebSocketTestClient(echo_api(), "/ws", headers=bearer(token(1))) as ws:
        fresh = token(3600)
        await ws.send_text(f"refresh {fresh}")
        assert await ws.receive_text() == f"expires {float(jwt.decode(fresh, options={'verify_signature': False})['exp'])}"
        await asyncio.sleep(2.05 - (time.time() % 1))  # past the first token's exp
        await ws.send_text("alive")
        assert await ws.receive_text() == "alive"


async def test_refresh_refuses_bad_tokens_and_another_user_and_leaves_the_socket_as_it_was():
    api = echo_api(guards=[IsAuthenticated(), HasPermission("chat")])
    async with WebSocketTestClient(api, "/ws", headers=bearer(token(1, permissions=["chat"]))) as ws:
        for bad, detail in ((token(60, sub="43", permissions=["chat"]), "Token is for another user"),
                            (token(-60, permissions=["chat"]), "Token expired"),
                            ("not.a.token", "Invalid token"),
                            (token(60), "Permission denied")):
            await ws.send_text(f"refresh {bad}")
            assert await ws.receive_text() == f"refused: {detail}"
        assert (await closed_by_server(ws)).code == 4401  # the old deadline still holds


async def test_refresh_needs_a_backend_that_takes_tokens():
    api = BoltAPI()

    @api.websocket("/ws", auth=[APIKeyAuthentication({"k": "alice"})])
    async def keyed(websocket: WebSocket):
        await websocket.accept()
        with pytest.raises(AuthenticationFailed, match="takes no token"):
            await refresh_credentials(websocket, "k")
        await websocket.send_text("done")

    @api.websocket("/open")
    async def anonymous(websocket: WebSocket):
        await websocket.accept()
        with pytest.raises(AuthenticationFailed, match="opened without credentials"):
            await refresh_credentials(websocket, token(60))
        await websocket.send_text("done")

    async with WebSocketTestClient(api, "/ws", headers={"x-api-key": "k"}) as ws:
        assert await ws.receive_text() == "done"
    async with WebSocketTestClient(api, "/open") as ws:
        assert await ws.receive_text() == "done"


async def test_refresh_takes_the_test_clients_identity_as_credentials():
    from bolt.security.auth import AuthContext

    identity = AuthContext(user_id="42", backend="jwt")
    async with WebSocketTestClient(echo_api(), "/ws", auth_context=identity) as ws:
        await ws.send_text(f"refresh {token(60, sub='7')}")
        assert await ws.receive_text() == "refused: Token is for another user"
        await ws.send_text(f"refresh {token(60)}")
        assert (await ws.receive_text()).startswith("expires ")


async def test_a_foreign_auth_object_in_the_scope_does_not_break_a_connections_end():
    # An outer ASGI middleware (Starlette's AuthenticationMiddleware, say) may put its own object in
    # scope["auth"] on a route bolt does not authenticate: the connection still leaves the hub.
    api = BoltAPI()
    ended = asyncio.Event()

    @api.websocket("/ws")
    async def hello(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("hi")
        try:
            await websocket.receive_text()
        finally:
            ended.set()

    class Credentials:  # like starlette.authentication.AuthCredentials: scopes, no expiry
        scopes = ["authenticated"]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            scope = dict(scope, auth=Credentials())
        await api(scope, receive, send)

    async with WebSocketTestClient(app, "/ws") as ws:
        assert await ws.receive_text() == "hi"
        assert len(api.hub.local_connections()) == 1
    await asyncio.wait_for(ended.wait(), 5)
    for _ in range(50):
        if not api.hub.local_connections():
            break
        await asyncio.sleep(0.01)
    assert api.hub.local_connections() == []


# -- the room protocol's auth message -----------------------------------------------------------------

async def next_message(ws: WebSocketTestClient) -> Any:
    return orjson.loads(await ws.receive_text())


async def test_the_room_protocol_refreshes_in_band():
    async with WebSocketTestClient(jwt_room_api(SECRET), "/rt", headers=bearer(token(1))) as ws:
        assert (await next_message(ws))["type"] == "hello"
        fresh = token(3600)
        exp = jwt.decode(fresh, options={"verify_signature": False})["exp"]
        await ws.send_json({"type": "auth", "token": fresh, "ref": 1})
        assert await next_message(ws) == {"type": "reply", "ref": 1, "ok": True, "expires_at": exp}
        await ws.send_json({"type": "auth", "token": token(60, sub="intruder"), "ref": 2})
        assert await next_message(ws) == {"type": "reply", "ref": 2, "ok": False,
                                          "error": {"code": "unauthorized", "reason": "Token is for another user"}}
        await ws.send_json({"type": "auth", "token": 7, "ref": 3})
        assert (await next_message(ws))["error"]["code"] == "bad_message"
        await ws.send_json({"type": "auth", "token": "garbage"})  # no ref: an error message
        assert await next_message(ws) == {"type": "error", "error": {"code": "unauthorized", "reason": "Invalid token"}}
        await asyncio.sleep(2.05 - (time.time() % 1))  # past the first token's exp
        await ws.send_json({"type": "ping", "ref": 4})
        assert await next_message(ws) == {"type": "reply", "ref": 4, "ok": True}


async def test_the_room_protocol_closes_with_4401_without_a_refresh():
    async with WebSocketTestClient(jwt_room_api(SECRET), "/rt", headers=bearer(token(1))) as ws:
        assert (await next_message(ws))["type"] == "hello"
        closed = await closed_by_server(ws)
    assert (closed.code, closed.reason) == (4401, "Credentials expired")


class FakeSocket:
    """What the deadlines touch of a WebSocket: its path, its auth, its scope's client, end()."""

    path = "/ws"
    scope = {"client": ("203.0.113.1", 1)}

    def __init__(self) -> None:
        self.ended: list[tuple[int, str]] = []
        self.auth = type("Auth", (), {"user_id": "42"})()

    async def end(self, code: int, reason: str) -> None:
        self.ended.append((code, reason))


async def test_a_refresh_between_the_timer_and_the_close_wins():
    from bolt.security.expiry import watch

    socket = FakeSocket()
    watch(socket, time.time() - 1)
    deadlines()._fire()  # the timer's callback: the close task is created but has not run yet
    watch(socket, time.time() + 3600)  # what refresh_credentials does meanwhile
    await asyncio.sleep(0.01)
    assert socket.ended == []
    assert len(deadlines()) == 1
    watch(socket, time.time() - 1)
    await asyncio.sleep(0.05)
    assert socket.ended == [(4401, "Credentials expired")]
    assert len(deadlines()) == 0


async def test_a_timer_left_armed_finds_nothing_and_the_next_deadline_still_holds():
    table = Deadlines()
    first, second = FakeSocket(), FakeSocket()
    table.watch(first, time.time() + 0.05)
    table.forget(first)  # the connection ended: the timer stays armed for 0.05 s
    table.watch(second, time.time() + 0.15)  # later than the armed timer: no second timer
    await asyncio.sleep(0.1)
    assert first.ended == [] and second.ended == [] and len(table) == 1
    await asyncio.sleep(0.15)
    assert second.ended == [(4401, "Credentials expired")] and len(table) == 0


async def test_an_armed_timer_does_not_keep_a_finished_loop_alive():
    import gc
    import weakref

    async def one_connection() -> None:
        socket = FakeSocket()
        deadlines().watch(socket, time.time() + 3600)
        deadlines().forget(socket)  # the timer stays armed, an hour away

    def a_loop_that_ends() -> weakref.ref[asyncio.AbstractEventLoop]:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(one_connection())
        loop.close()
        return weakref.ref(loop)

    gone = await asyncio.to_thread(a_loop_that_ends)
    gc.collect()
    assert gone() is None
