"""The guide's handlers through a real uvicorn and a real client (the `websockets` package).

Each test runs under uvicorn's two WebSocket implementations and bolt's own protocol (skipped, with
the reason, while `bolt.protocol:WebSocketProtocol` does not import).
"""
from __future__ import annotations

import asyncio
import logging

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bolt import BoltAPI, WebSocket
from bolt.websocket import CloseCode, WebSocketClose, WebSocketDisconnect
from uvicorn_server import WS_IMPLEMENTATIONS, serve

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("ws_impl", WS_IMPLEMENTATIONS)]

TIMEOUT = 20  # seconds for a whole test: server start, exchange, shutdown


def make_api(disconnects: asyncio.Queue) -> BoltAPI:
    api = BoltAPI()

    @api.websocket("/ws/echo")
    async def echo(websocket: WebSocket):
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(f"Echo: {message}")

    @api.websocket("/ws/bytes")
    async def echo_bytes(websocket: WebSocket):
        await websocket.accept()
        async for data in websocket.iter_bytes():
            await websocket.send_bytes(data[::-1])

    @api.websocket("/ws/json")
    async def echo_json(websocket: WebSocket):
        await websocket.accept()
        async for data in websocket.iter_json():
            await websocket.send_json({"got": data})

    @api.websocket("/ws/user/{user_id}")
    async def user_ws(websocket: WebSocket, user_id: int):
        await websocket.accept()
        await websocket.send_json({"user_id": user_id, "type": type(user_id).__name__})

    @api.websocket("/ws/price/{price}")
    async def price_ws(websocket: WebSocket, price: float):
        await websocket.accept()
        await websocket.send_json({"price": price, "type": type(price).__name__})

    @api.websocket("/ws/feature/{enabled}")
    async def feature_ws(websocket: WebSocket, enabled: bool):
        await websocket.accept()
        await websocket.send_json({"enabled": enabled})

    @api.websocket("/ws/user/{user_id}/channel/{channel_id}")
    async def multi(websocket: WebSocket, user_id: int, channel_id: str):
        await websocket.accept()
        await websocket.send_json({"user_id": user_id, "channel_id": channel_id})

    @api.websocket("/ws/info")
    async def info(websocket: WebSocket):
        await websocket.accept()
        host, _port = websocket.client if websocket.client else (None, None)
        await websocket.send_json({
            "path": websocket.path,
            "token": websocket.query_params.get("token"),
            "agent": websocket.headers.get("USER-AGENT"),
            "session": websocket.cookies.get("sessionid"),
            "client": host,
        })

    @api.websocket("/ws/close")
    async def close_handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("goodbye")
        await websocket.close(code=4001, reason="done here")

    @api.websocket("/ws/auth-required")
    async def auth_ws(websocket: WebSocket):
        await websocket.accept()
        auth_msg = await websocket.receive_json()
        if not auth_msg.get("token"):
            raise WebSocketClose(code=CloseCode.POLICY_VIOLATION, reason="Authentication required")
        await websocket.send_text("welcome")

    @api.websocket("/ws/error")
    async def error_ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_text()
        raise RuntimeError("secret database password in the message")

    @api.websocket("/ws/returns")
    async def returns(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("bye")

    @api.websocket("/ws/never-accepts")
    async def never_accepts(websocket: WebSocket):
        return None

    @api.websocket("/ws/text-only")
    async def text_only(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_text()

    @api.websocket("/ws/disconnect")
    async def disconnect(websocket: WebSocket):
        await websocket.accept()
        try:
            async for message in websocket.iter_text():
                await websocket.send_text(message)
        except WebSocketDisconnect as exc:
            first = (exc.code, exc.reason)
            try:
                await websocket.receive_text()
            except WebSocketDisconnect as again:
                disconnects.put_nowait((first, (again.code, again.reason)))

    @api.websocket("/ws/subprotocol")
    async def subprotocol(websocket: WebSocket):
        await websocket.accept(subprotocol="chat.v2" if "chat.v2" in websocket.subprotocols else None)
        await websocket.send_json(websocket.subprotocols)

    return api


@pytest.fixture
def disconnects() -> asyncio.Queue:
    return asyncio.Queue()


@pytest.fixture
def api(disconnects) -> BoltAPI:
    return make_api(disconnects)


async def closed_with(ws) -> tuple[int, str]:
    """Read until the server closes; the code and reason of its close frame."""
    with pytest.raises(ConnectionClosed) as exc:
        while True:
            await ws.recv()
    assert exc.value.rcvd is not None, "no close frame from the server"
    return exc.value.rcvd.code, exc.value.rcvd.reason


async def denied(url: str) -> tuple[int, dict]:
    with pytest.raises(InvalidStatus) as exc:
        async with connect(url, open_timeout=5):
            pass
    response = exc.value.response
    return response.status_code, orjson.loads(response.body) if response.body else {}


@pytest.mark.asyncio
async def test_echo_text_and_bytes(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/echo") as ws:
            for text in ("hello", "ünïcødé ✓", "x" * 70_000):
                await ws.send(text)
                assert await ws.recv() == f"Echo: {text}"
        async with connect(f"ws://{base}/ws/bytes") as ws:
            await ws.send(b"\x00\x01\x02\xff")
            assert await ws.recv() == b"\xff\x02\x01\x00"


@pytest.mark.asyncio
async def test_path_parameters_are_converted(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        cases = {
            "/ws/user/42": {"user_id": 42, "type": "int"},
            "/ws/price/9.5": {"price": 9.5, "type": "float"},
            "/ws/feature/TRUE": {"enabled": True},
            "/ws/feature/off": {"enabled": False},
            "/ws/user/7/channel/general": {"user_id": 7, "channel_id": "general"},
        }
        for path, expected in cases.items():
            async with connect(f"ws://{base}{path}") as ws:
                assert orjson.loads(await ws.recv()) == expected


@pytest.mark.asyncio
async def test_handshake_denials_carry_the_real_status(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        status, body = await denied(f"ws://{base}/ws/nowhere")
        assert status == 404
        assert body["detail"]
        status, body = await denied(f"ws://{base}/ws/user/abc")
        assert status == 422
        assert "user_id" in orjson.dumps(body).decode()
        status, body = await denied(f"ws://{base}/ws/feature/maybe")
        assert status == 422


@pytest.mark.asyncio
async def test_json_round_trip_and_invalid_json(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/json") as ws:
            await ws.send(orjson.dumps({"n": 1, "tags": ["a"]}).decode())
            assert orjson.loads(await ws.recv()) == {"got": {"n": 1, "tags": ["a"]}}
            await ws.send(b'{"binary": true}')
            assert orjson.loads(await ws.recv()) == {"got": {"binary": True}}
            await ws.send("{not json")
            code, _reason = await closed_with(ws)
            assert code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


@pytest.mark.asyncio
async def test_wrong_message_type_closes_1003(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/text-only") as ws:
            await ws.send(b"binary")
            code, _reason = await closed_with(ws)
            assert code == CloseCode.UNSUPPORTED_DATA


@pytest.mark.asyncio
async def test_server_close_code_and_reason(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/close") as ws:
            assert await ws.recv() == "goodbye"
            assert await closed_with(ws) == (4001, "done here")


@pytest.mark.asyncio
async def test_websocket_close_exception(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/auth-required") as ws:
            await ws.send('{"token": ""}')
            assert await closed_with(ws) == (CloseCode.POLICY_VIOLATION, "Authentication required")
        async with connect(f"ws://{base}/ws/auth-required") as ws:
            await ws.send('{"token": "t"}')
            assert await ws.recv() == "welcome"


@pytest.mark.asyncio
async def test_handler_error_closes_1011_without_leaking(api, ws_impl, caplog):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        with caplog.at_level(logging.ERROR, logger="bolt"):
            async with connect(f"ws://{base}/ws/error") as ws:
                await ws.send("go")
                code, reason = await closed_with(ws)
    assert code == CloseCode.INTERNAL_ERROR
    assert "secret" not in reason
    assert any("secret database password" in r.getMessage() or (r.exc_info and "secret" in str(r.exc_info[1]))
               for r in caplog.records), "the traceback is logged server-side"


@pytest.mark.asyncio
async def test_return_closes_1000_and_no_accept_is_403(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/returns") as ws:
            assert await ws.recv() == "bye"
            code, _reason = await closed_with(ws)
            assert code == CloseCode.NORMAL
        status, _body = await denied(f"ws://{base}/ws/never-accepts")
        assert status == 403


@pytest.mark.asyncio
async def test_client_disconnect_reaches_the_handler(api, ws_impl, disconnects):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        async with connect(f"ws://{base}/ws/disconnect") as ws:
            await ws.send("ping")
            assert await ws.recv() == "ping"
            await ws.close(code=4000, reason="going home")
        first, again = await asyncio.wait_for(disconnects.get(), 5)
    assert first == (4000, "going home")
    assert again == first


@pytest.mark.asyncio
async def test_request_data_and_subprotocols(api, ws_impl):
    async with asyncio.timeout(TIMEOUT), serve(api, ws=ws_impl) as base:
        headers = {"User-Agent": "bolt-tests/1", "Cookie": "sessionid=abc123; other=1"}
        async with connect(f"ws://{base}/ws/info?token=t0k", additional_headers=headers,
                           user_agent_header=None) as ws:
            data = orjson.loads(await ws.recv())
        assert data == {"path": "/ws/info", "token": "t0k", "agent": "bolt-tests/1",
                        "session": "abc123", "client": "127.0.0.1"}
        async with connect(f"ws://{base}/ws/subprotocol", subprotocols=["chat.v1", "chat.v2"]) as ws:
            assert ws.subprotocol == "chat.v2"
            assert orjson.loads(await ws.recv()) == ["chat.v1", "chat.v2"]


@pytest.mark.asyncio
async def test_django_view_beside_bolt_websocket(api, ws_impl):
    from django_settings import configure_django

    configure_django()
    from django.core.asgi import get_asgi_application

    from bolt.django import mount

    app = mount(api, get_asgi_application())
    async with asyncio.timeout(TIMEOUT), serve(app, ws=ws_impl) as base:
        async with httpx.AsyncClient(base_url=f"http://{base}", timeout=5) as http:
            response = await http.get("/django/hello")
            assert response.status_code == 200
            assert response.text == "hello from django"
            async with connect(f"ws://{base}/ws/echo") as ws:
                await ws.send("both")
                assert await ws.recv() == "Echo: both"
            response = await http.get("/django/hello")
            assert response.text == "hello from django"


@pytest.mark.asyncio
@pytest.mark.parametrize("refuse", [False, True], ids=["accept", "close"])
async def test_a_client_gone_before_the_handshake_ends_is_no_error(ws_impl, refuse, caplog):
    # The client sends its upgrade and leaves while the handler is still deciding: accept() raises
    # WebSocketDisconnect like any send, close() does nothing, and nothing is logged as an error.
    seen: asyncio.Queue = asyncio.Queue()
    api = BoltAPI()

    @api.websocket("/ws/late")
    async def late(websocket: WebSocket):
        await asyncio.sleep(0.3)
        try:
            if refuse:
                await websocket.close(4003)
            else:
                await websocket.accept()
        except WebSocketDisconnect as exc:
            seen.put_nowait(exc.code)
        else:
            seen.put_nowait(None)

    async with asyncio.timeout(TIMEOUT):
        with caplog.at_level(logging.ERROR):
            async with serve(api, ws=ws_impl) as base:
                host, port = base.split(":")
                reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(b"GET /ws/late HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
                await writer.drain()
                writer.close()
                code = await seen.get()
                await asyncio.sleep(0.1)  # what the server logs once the handler is done
    assert code == (None if refuse else CloseCode.ABNORMAL_CLOSURE)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.mark.asyncio
@pytest.mark.parametrize("http", ["httptools", "h11"])
@pytest.mark.parametrize("declared", [True, False])
async def test_a_body_refused_as_too_large_closes_the_connection(ws_impl: str, http: str, declared: bool):
    # The rest of the body is never read: the connection cannot carry another request, and the
    # client is told to stop sending it rather than push it into a socket nobody reads.
    api = BoltAPI(max_body_size=1000)

    @api.post("/items")
    async def create(item: dict) -> dict:
        return item

    async with serve(api, ws=ws_impl, http=http) as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        framing = b"Content-Length: 100000000" if declared else b"Transfer-Encoding: chunked"
        writer.write(b"POST /items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing + b"\r\n\r\n")
        if not declared:
            writer.write(b"%x\r\n%s\r\n" % (5000, b"a" * 5000))
        answer = await asyncio.wait_for(reader.read(), 5)  # all of it: the server closes after its answer
        assert answer.startswith(b"HTTP/1.1 413 ") and b"connection: close" in answer.lower()
        writer.close()
