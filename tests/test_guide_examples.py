"""Every example of the WebSocket guide, with only its imports changed to `bolt`."""
import time

import jwt
import pytest

from bolt import BoltAPI, WebSocket
from bolt.auth import HasPermission, IsAdminUser, IsAuthenticated, JWTAuthentication
from bolt.middleware import rate_limit
from bolt.testing import ConnectionClosed, WebSocketTestClient
from bolt.websocket import CloseCode, WebSocketClose, WebSocketDisconnect

SECRET = "your-secret"


def create_test_jwt(user_id: int, secret: str, **claims) -> str:
    return jwt.encode({
        "sub": str(user_id),
        "user_id": str(user_id),
        "exp": int(time.time()) + 3600,
        **claims,
    }, secret, algorithm="HS256")


@pytest.mark.asyncio
async def test_quick_start_echo():
    api = BoltAPI()

    @api.websocket("/ws/echo")
    async def echo_handler(websocket: WebSocket):
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(f"Echo: {message}")

    async with WebSocketTestClient(api, "/ws/echo") as ws:
        await ws.send_text("hello")
        assert await ws.receive_text() == "Echo: hello"


@pytest.mark.asyncio
async def test_connection_lifecycle():
    api = BoltAPI()

    @api.websocket("/ws/example")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        try:
            async for message in websocket.iter_text():
                await websocket.send_text(f"Received: {message}")
        except WebSocketDisconnect:
            pass
        finally:
            await websocket.close()

    async with WebSocketTestClient(api, "/ws/example") as ws:
        await ws.send_text("one")
        assert await ws.receive_text() == "Received: one"


@pytest.mark.asyncio
async def test_binary_json_and_close_examples():
    api = BoltAPI()

    @api.websocket("/ws/binary")
    async def binary(websocket: WebSocket):
        await websocket.accept()
        data = await websocket.receive_bytes()
        await websocket.send_bytes(b"\x00\x01\x02" + data)
        async for data in websocket.iter_bytes():
            await websocket.send_bytes(data[::-1])

    @api.websocket("/ws/json")
    async def json_handler(websocket: WebSocket):
        await websocket.accept()
        data = await websocket.receive_json()
        await websocket.send_json({"status": "ok", "count": 42, "got": data})
        async for data in websocket.iter_json():
            await websocket.send_json(data)

    @api.websocket("/ws/error")
    async def error_close(websocket: WebSocket):
        await websocket.accept()
        await websocket.close(code=CloseCode.INTERNAL_ERROR, reason="Server error")

    async with WebSocketTestClient(api, "/ws/binary") as ws:
        await ws.send_bytes(b"\x03")
        assert await ws.receive_bytes() == b"\x00\x01\x02\x03"
        await ws.send_bytes(b"ab")
        assert await ws.receive_bytes() == b"ba"
    async with WebSocketTestClient(api, "/ws/json") as ws:
        await ws.send_json({"cmd": "go"})
        assert await ws.receive_json() == {"status": "ok", "count": 42, "got": {"cmd": "go"}}
        await ws.send_json([1])
        assert await ws.receive_json() == [1]
    async with WebSocketTestClient(api, "/ws/error") as ws:
        with pytest.raises(ConnectionClosed) as exc:
            await ws.receive_text()
        assert (exc.value.code, exc.value.reason) == (CloseCode.INTERNAL_ERROR, "Server error")


@pytest.mark.asyncio
async def test_accessing_request_data():
    api = BoltAPI()

    @api.websocket("/ws/info")
    async def info_handler(websocket: WebSocket):
        await websocket.accept()
        path = websocket.path
        token = websocket.query_params.get("token")
        user_agent = websocket.headers.get("user-agent")
        auth_header = websocket.headers.get("authorization")
        session = websocket.cookies.get("sessionid")
        client_host, client_port = websocket.client if websocket.client else (None, None)
        await websocket.send_json({
            "path": path, "token": token, "user_agent": user_agent, "client": client_host,
            "auth": auth_header, "session": session,
        })

    async with WebSocketTestClient(api, "/ws/info", headers={"User-Agent": "ua", "Authorization": "x"},
                                   query_string="token=t", cookies={"sessionid": "s"}) as ws:
        assert await ws.receive_json() == {"path": "/ws/info", "token": "t", "user_agent": "ua",
                                           "client": "testclient", "auth": "x", "session": "s"}


@pytest.mark.asyncio
async def test_path_parameter_examples():
    api = BoltAPI()

    @api.websocket("/ws/chat/{room_id}")
    async def chat(websocket: WebSocket, room_id: str):
        await websocket.accept()
        await websocket.send_text(f"Joined room: {room_id}")

    @api.websocket("/ws/user/{user_id}")
    async def user_ws(websocket: WebSocket, user_id: int):
        await websocket.accept()
        await websocket.send_json({"user_id": user_id, "type": type(user_id).__name__})

    @api.websocket("/ws/price/{price}")
    async def price_ws(websocket: WebSocket, price: float):
        await websocket.accept()
        await websocket.send_json({"price": price})

    @api.websocket("/ws/feature/{enabled}")
    async def feature_ws(websocket: WebSocket, enabled: bool):
        await websocket.accept()
        await websocket.send_json({"enabled": enabled})

    @api.websocket("/ws/user/{user_id}/channel/{channel_id}")
    async def multi_param(websocket: WebSocket, user_id: int, channel_id: str):
        await websocket.accept()
        await websocket.send_json({"user_id": user_id, "channel_id": channel_id})

    cases = {
        "/ws/chat/lobby": "Joined room: lobby",
        "/ws/user/42": {"user_id": 42, "type": "int"},
        "/ws/price/9.5": {"price": 9.5},
        "/ws/feature/false": {"enabled": False},
        "/ws/user/7/channel/general": {"user_id": 7, "channel_id": "general"},
    }
    for path, expected in cases.items():
        async with WebSocketTestClient(api, path) as ws:
            got = await ws.receive_text() if isinstance(expected, str) else await ws.receive_json()
            assert got == expected


@pytest.mark.asyncio
async def test_disconnect_example():
    api = BoltAPI()
    codes = []

    @api.websocket("/ws/chat")
    async def chat(websocket: WebSocket):
        await websocket.accept()
        try:
            async for message in websocket.iter_text():
                await websocket.send_text(message)
        except WebSocketDisconnect as e:
            codes.append((e.code, e.reason))

    async with WebSocketTestClient(api, "/ws/chat") as ws:
        await ws.send_text("x")
        await ws.receive_text()
    assert codes == [(1000, "")]


@pytest.mark.asyncio
async def test_websocket_close_example():
    api = BoltAPI()

    @api.websocket("/ws/auth-required")
    async def auth_ws(websocket: WebSocket):
        await websocket.accept()
        auth_msg = await websocket.receive_json()
        if not auth_msg.get("token"):
            raise WebSocketClose(code=CloseCode.POLICY_VIOLATION, reason="Authentication required")
        await websocket.send_text("welcome")

    async with WebSocketTestClient(api, "/ws/auth-required") as ws:
        await ws.send_json({"token": "t"})
        assert await ws.receive_text() == "welcome"
    async with WebSocketTestClient(api, "/ws/auth-required") as ws:
        await ws.send_json({})
        with pytest.raises(ConnectionClosed) as exc:
            await ws.receive_text()
        assert exc.value.code == CloseCode.POLICY_VIOLATION


@pytest.mark.asyncio
async def test_protected_websocket():
    api = BoltAPI()
    secret = "test-secret"

    @api.websocket(
        "/ws/protected",
        auth=[JWTAuthentication(secret=secret)],
        guards=[IsAuthenticated()],
    )
    async def protected(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("authenticated")

    with pytest.raises(PermissionError) as exc:
        async with WebSocketTestClient(api, "/ws/protected"):
            pass
    assert "Authentication required" in str(exc.value)

    token = create_test_jwt(123, secret)
    headers = {"Authorization": f"Bearer {token}"}
    async with WebSocketTestClient(api, "/ws/protected", headers=headers) as ws:
        msg = await ws.receive_text()
        assert msg == "authenticated"


@pytest.mark.asyncio
async def test_admin_and_permission_guards():
    api = BoltAPI()

    @api.websocket("/ws/admin", auth=[JWTAuthentication(secret=SECRET)], guards=[IsAdminUser()])
    async def admin_ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("Welcome, admin!")

    @api.websocket("/ws/data", auth=[JWTAuthentication(secret=SECRET)], guards=[HasPermission("api.view_data")])
    async def data_ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("data")

    def bearer(**claims):
        return {"Authorization": f"Bearer {create_test_jwt(1, SECRET, **claims)}"}

    async with WebSocketTestClient(api, "/ws/admin", headers=bearer(is_superuser=True)) as ws:
        assert await ws.receive_text() == "Welcome, admin!"
    with pytest.raises(PermissionError, match="Permission denied"):
        async with WebSocketTestClient(api, "/ws/admin", headers=bearer()):
            pass
    async with WebSocketTestClient(api, "/ws/data", headers=bearer(permissions=["api.view_data"])) as ws:
        assert await ws.receive_text() == "data"
    with pytest.raises(PermissionError, match="Permission denied"):
        async with WebSocketTestClient(api, "/ws/data", headers=bearer(permissions=["api.other"])):
            pass


@pytest.mark.asyncio
async def test_origin_denied():
    api = BoltAPI()

    @api.websocket("/ws/echo")
    async def echo(websocket: WebSocket):
        await websocket.accept()

    with pytest.raises(PermissionError) as exc:
        async with WebSocketTestClient(
            api,
            "/ws/echo",
            headers={"Origin": "https://evil.com"},
            cors_allowed_origins=["https://example.com"],
            read_django_settings=False,
        ):
            pass

    assert "Origin not allowed" in str(exc.value)

    async with WebSocketTestClient(api, "/ws/echo", headers={"Origin": "https://example.com"},
                                   cors_allowed_origins=["https://example.com"], read_django_settings=False) as ws:
        assert ws.accepted
    async with WebSocketTestClient(api, "/ws/echo", cors_allowed_origins=["https://example.com"],
                                   read_django_settings=False) as ws:
        assert ws.accepted  # no Origin header: same-origin or non-browser client


@pytest.mark.asyncio
async def test_rate_limited_example():
    api = BoltAPI()

    @api.websocket("/ws/limited")
    @rate_limit(rps=10, burst=20)
    async def limited_ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("Connected!")

    for _ in range(20):
        async with WebSocketTestClient(api, "/ws/limited") as ws:
            assert await ws.receive_text() == "Connected!"
    with pytest.raises(PermissionError, match="Rate limit exceeded"):
        async with WebSocketTestClient(api, "/ws/limited"):
            pass


@pytest.mark.asyncio
async def test_server_close():
    api = BoltAPI()

    @api.websocket("/ws/close")
    async def close_handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("goodbye")
        await websocket.close(code=CloseCode.NORMAL, reason="done")

    async with WebSocketTestClient(api, "/ws/close") as ws:
        msg = await ws.receive_text()
        assert msg == "goodbye"

        with pytest.raises(ConnectionClosed) as exc:
            await ws.receive_text()

        assert exc.value.code == CloseCode.NORMAL


@pytest.mark.asyncio
async def test_timeout():
    api = BoltAPI()

    @api.websocket("/ws/slow")
    async def slow(websocket: WebSocket):
        await websocket.accept()

    async with WebSocketTestClient(api, "/ws/slow") as ws:
        with pytest.raises(TimeoutError):
            await ws.receive_text(timeout=0.1)
