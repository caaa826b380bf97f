"""The in-process test clients themselves."""
import asyncio

import pytest

from bolt import BoltAPI, WebSocket
from bolt.testing import (
    AsyncTestClient,
    ConnectionClosed,
    HandshakeRejected,
    WebSocketDenied,
    WebSocketTestClient,
)
from demo_apps import echo_api


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_works_under_anyio_plugin():
    async with WebSocketTestClient(echo_api(), "/ws") as ws:
        await ws.send_text("anyio")
        assert await ws.receive_text() == "anyio"
        assert ws.accepted and not ws.closed
    assert ws.closed and ws.close_code == 1000


@pytest.mark.asyncio
async def test_default_timeout_bounds_every_receive():
    async with WebSocketTestClient(echo_api(), "/ws", timeout=0.05) as ws:
        with pytest.raises(TimeoutError):
            await ws.receive_bytes()


@pytest.mark.asyncio
async def test_sending_after_close_raises_connection_closed():
    async with WebSocketTestClient(echo_api(), "/ws") as ws:
        await ws.close(4000, "done")
        with pytest.raises(ConnectionClosed) as info:
            await ws.send_text("late")
    assert (info.value.code, info.value.reason) == (4000, "done")


@pytest.mark.asyncio
async def test_denials_carry_status_and_detail():
    api = BoltAPI()

    @api.websocket("/ws/{n}")
    async def handler(websocket: WebSocket, n: int):
        await websocket.close()

    with pytest.raises(WebSocketDenied) as denied:
        async with WebSocketTestClient(api, "/ws/1"):
            pass
    assert isinstance(denied.value, PermissionError) and denied.value.status_code == 403
    with pytest.raises(HandshakeRejected) as rejected:
        async with WebSocketTestClient(api, "/ws/x"):
            pass
    assert rejected.value.status_code == 422 and not isinstance(rejected.value, PermissionError)
    assert rejected.value.body == {"detail": rejected.value.detail}


@pytest.mark.asyncio
async def test_handler_that_ignores_disconnect_is_cancelled_not_hung():
    api = BoltAPI()
    import asyncio

    @api.websocket("/ws")
    async def stubborn(websocket: WebSocket):
        await websocket.accept()
        await asyncio.sleep(3600)

    async with WebSocketTestClient(api, "/ws", timeout=0.1) as ws:
        pass
    assert ws.closed


@pytest.mark.asyncio
async def test_raw_asgi_app_and_http_client():
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x", b"1")]})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})

    response = await AsyncTestClient(app).get("/anything")
    assert (response.status_code, response.text, response.headers["x"]) == (200, "ab", "1")


@pytest.mark.asyncio
async def test_a_host_header_given_replaces_the_test_servers():
    seen = []

    async def app(scope, receive, send):
        seen.append([value for name, value in scope["headers"] if name == b"host"])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close"})
            return
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await AsyncTestClient(app).get("/", headers={"Host": "chat.example"})
    await AsyncTestClient(app).get("/")
    with pytest.raises(WebSocketDenied):
        async with WebSocketTestClient(app, "/ws", headers=[("host", "chat.example")]):
            pass
    assert seen == [[b"chat.example"], [b"testserver"], [b"chat.example"]]


@pytest.mark.asyncio
async def test_cookies_come_with_the_test_servers_origin_unless_told_otherwise():
    api = BoltAPI(cors_allowed_origins=["https://app.example", "https://other.example"])

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_json(websocket.headers.get("origin"))

    async def origin(**kwargs):
        async with WebSocketTestClient(api, "/ws", **kwargs) as ws:
            return await ws.receive_json()

    assert await origin() is None
    assert await origin(cookies={"a": "1"}) == "http://testserver"
    assert await origin(headers={"Cookie": "a=1"}) == "http://testserver"
    assert await origin(cookies={"a": "1"}, headers={"Origin": "https://app.example"}) == "https://app.example"
    assert await origin(cookies={"a": "1"}, origin="https://other.example") == "https://other.example"
    assert await origin(cookies={"a": "1"}, origin=None) is None


@pytest.mark.asyncio
async def test_auth_context_runs_the_handler_as_that_user_and_guards_still_decide():
    from bolt.auth import HasPermission, IsAuthenticated, JWTAuthentication
    from bolt.security.auth import AuthContext

    api = BoltAPI()

    @api.websocket("/ws/admin", auth=[JWTAuthentication(secret="s" * 32)],
                   guards=[IsAuthenticated(), HasPermission("chat.moderate")])
    async def admin(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_json({"user": websocket.auth.user_id, "staff": websocket.auth.is_staff})

    moderator = AuthContext(user_id="7", is_staff=True, permissions=frozenset({"chat.moderate"}))
    async with WebSocketTestClient(api, "/ws/admin", auth_context=moderator) as ws:  # no token minted
        assert await ws.receive_json() == {"user": "7", "staff": True}
    with pytest.raises(WebSocketDenied) as denied:  # the guards still run on the given context
        async with WebSocketTestClient(api, "/ws/admin", auth_context=AuthContext(user_id="8")):
            pass
    assert denied.value.status_code == 403
    with pytest.raises(WebSocketDenied) as denied:  # and without one, the route's authentication applies
        async with WebSocketTestClient(api, "/ws/admin"):
            pass
    assert denied.value.status_code == 401


@pytest.mark.asyncio
async def test_any_asgi_caller_can_offer_the_testing_extension():
    """docs/testing.md: what the clients ask of the app is the `bolt.testing` extension, nothing private."""
    api = BoltAPI()

    @api.websocket("/ws")
    async def returns(websocket: WebSocket):
        await websocket.accept()

    @api.websocket("/boom")
    async def boom(websocket: WebSocket):
        raise LookupError("a bug")

    returned: list[bool] = []
    sent: list[dict] = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(message):
        sent.append(message)

    def scope(path: str) -> dict:
        testing = {"handler_returned": lambda: returned.append(True), "raise_server_exceptions": True}
        return {"type": "websocket", "path": path, "headers": [], "query_string": b"",
                "extensions": {"bolt.testing": testing}}

    await api(scope("/ws"), receive, send)
    assert returned == [True]
    assert sent[-1]["type"] == "websocket.close"
    with pytest.raises(LookupError):
        await api(scope("/boom"), receive, send)


@pytest.mark.anyio
async def test_paths_are_percent_decoded_as_a_server_decodes_them():
    # ASGI: scope["path"] is decoded, raw_path is what was sent; a test must see what a server sees.
    api = BoltAPI()

    @api.get("/files/{name}")
    async def file(name: str):
        return {"name": name}

    @api.websocket("/ws/files/{name}")
    async def ws_file(websocket: WebSocket, name: str):
        await websocket.accept()
        await websocket.send_json({"name": name, "raw_path": websocket.scope["raw_path"].decode()})
        await websocket.close()

    client = AsyncTestClient(api)
    assert (await client.get("/files/a%20b")).json() == {"name": "a b"}
    assert (await client.get("/files/caf\u00e9")).json() == {"name": "caf\u00e9"}
    async with WebSocketTestClient(api, "/ws/files/a%21b c") as ws:
        assert await ws.receive_json() == {"name": "a!b c", "raw_path": "/ws/files/a%21b%20c"}


@pytest.mark.anyio
async def test_a_server_close_shows_at_once_and_earlier_messages_still_arrive():
    # A real client's reader takes the close frame in as it comes; the test client says so at once.
    api = BoltAPI()

    @api.websocket("/ws/bye")
    async def bye(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("first")
        await websocket.close(4000, "done")

    async with WebSocketTestClient(api, "/ws/bye") as ws:
        for _ in range(20):
            if ws.closed:
                break
            await asyncio.sleep(0.01)
        assert (ws.closed, ws.close_code, ws.close_reason) == (True, 4000, "done")
        with pytest.raises(ConnectionClosed):
            await ws.send_text("too late")
        assert await ws.receive_text() == "first"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text()
        assert (closed.value.code, closed.value.reason) == (4000, "done")
