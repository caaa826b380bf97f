"""WebSocket semantics: receiving, sending, closing and how handler outcomes map to close codes."""
import logging

import pytest

from bolt import BoltAPI, WebSocket
from bolt.connection import HTTPConnection
from bolt.testing import ConnectionClosed, HandshakeRejected, WebSocketDenied, WebSocketTestClient
from bolt.websocket import (
    CloseCode,
    InvalidJSONMessage,
    MessageTypeError,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketState,
    WebSocketStateError,
)
from demo_apps import echo_api

pytestmark = pytest.mark.asyncio


async def expect_close(ws: WebSocketTestClient) -> ConnectionClosed:
    with pytest.raises(ConnectionClosed) as info:
        await ws.receive_text()
    return info.value


async def test_close_codes_match_the_guide():
    expected = {
        "NORMAL": 1000, "GOING_AWAY": 1001, "PROTOCOL_ERROR": 1002, "UNSUPPORTED_DATA": 1003,
        "NO_STATUS_RECEIVED": 1005, "ABNORMAL_CLOSURE": 1006, "INVALID_FRAME_PAYLOAD_DATA": 1007,
        "POLICY_VIOLATION": 1008, "MESSAGE_TOO_BIG": 1009, "MANDATORY_EXTENSION": 1010,
        "INTERNAL_ERROR": 1011, "SERVICE_RESTART": 1012, "TRY_AGAIN_LATER": 1013, "BAD_GATEWAY": 1014,
        "TLS_HANDSHAKE": 1015,
    }
    assert {c.name: c.value for c in CloseCode} == expected


async def test_binary_for_text_closes_1003_when_uncaught():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_text()

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_bytes(b"\x00")
        closed = await expect_close(ws)
    assert closed.code == CloseCode.UNSUPPORTED_DATA
    assert "binary" in closed.reason


async def test_wrong_message_type_is_catchable():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        try:
            await websocket.receive_bytes()
        except MessageTypeError as exc:
            await websocket.send_text(f"caught: {exc}")
        await websocket.send_text(await websocket.receive_text())

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_text("not bytes")
        assert (await ws.receive_text()).startswith("caught: expected a binary message")
        await ws.send_text("still open")
        assert await ws.receive_text() == "still open"


async def test_invalid_json_is_a_catchable_value_error_and_1007_uncaught():
    api = BoltAPI()

    @api.websocket("/ws/caught")
    async def caught(websocket: WebSocket):
        await websocket.accept()
        try:
            await websocket.receive_json()
        except ValueError as exc:
            assert isinstance(exc, InvalidJSONMessage)
            await websocket.send_json({"error": "bad json"})

    @api.websocket("/ws/uncaught")
    async def uncaught(websocket: WebSocket):
        await websocket.accept()
        async for _ in websocket.iter_json():
            pass

    async with WebSocketTestClient(api, "/ws/caught") as ws:
        await ws.send_text("{nope")
        assert await ws.receive_json() == {"error": "bad json"}
    async with WebSocketTestClient(api, "/ws/uncaught") as ws:
        await ws.send_text('{"ok": 1}')
        await ws.send_text("[1,")
        closed = await expect_close(ws)
    assert closed.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA


async def test_receive_json_accepts_binary_messages():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_json(await websocket.receive_json(), mode="binary")

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_bytes(b'{"a": [1, 2]}')
        assert await ws.receive_bytes() == b'{"a":[1,2]}'


async def test_disconnect_carries_the_client_code_and_repeats(caplog):
    api = BoltAPI()
    seen = []

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        try:
            async for message in websocket.iter_text():
                await websocket.send_text(message)
        except WebSocketDisconnect as exc:
            seen.append((exc.code, exc.reason))
        with pytest.raises(WebSocketDisconnect) as again:
            await websocket.receive_bytes()
        seen.append((again.value.code, again.value.reason))
        # Sending to a client that left reports the disconnect, not a protocol error.
        with pytest.raises(WebSocketDisconnect):
            await websocket.send_text("too late")
        seen.append(websocket.client_state)

    with caplog.at_level(logging.WARNING, logger="bolt"):
        async with WebSocketTestClient(api, "/ws") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "hi"
            await ws.close(code=4001, reason="bye")
    assert seen == [(4001, "bye"), (4001, "bye"), WebSocketState.DISCONNECTED]
    assert not caplog.records


async def test_uncaught_disconnect_ends_cleanly(caplog):
    api = echo_api()  # its handler never catches WebSocketDisconnect

    with caplog.at_level(logging.DEBUG, logger="bolt"):
        async with WebSocketTestClient(api, "/ws") as ws:
            await ws.send_text("x")
            await ws.receive_text()
            await ws.close(CloseCode.GOING_AWAY)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


async def test_websocket_close_exception_sends_that_frame():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        message = await websocket.receive_json()
        if not message.get("token"):
            raise WebSocketClose(code=CloseCode.POLICY_VIOLATION, reason="Authentication required")

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_json({})
        closed = await expect_close(ws)
    assert (closed.code, closed.reason) == (1008, "Authentication required")
    assert ws.close_code == 1008 and ws.close_reason == "Authentication required"


async def test_websocket_close_rejects_codes_that_cannot_be_sent():
    with pytest.raises(ValueError):
        WebSocketClose(1006)
    with pytest.raises(ValueError):
        WebSocketClose(999)
    with pytest.raises(ValueError):
        WebSocketClose(1000, "x" * 124)
    assert WebSocketClose(4000, "custom").code == 4000


async def test_handler_error_closes_1011_without_leaking(caplog):
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        raise RuntimeError("database password is hunter2")

    with caplog.at_level(logging.ERROR, logger="bolt"):
        async with WebSocketTestClient(api, "/ws", raise_server_exceptions=False) as ws:
            closed = await expect_close(ws)
    assert closed.code == CloseCode.INTERNAL_ERROR
    assert "hunter2" not in closed.reason
    assert any(r.exc_info and "hunter2" in str(r.exc_info[1]) for r in caplog.records)


async def test_handler_error_surfaces_in_the_test_by_default():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_text()
        raise KeyError("boom")

    with pytest.raises(KeyError):
        async with WebSocketTestClient(api, "/ws") as ws:
            await ws.send_text("go")
            await ws.receive_text()


async def test_return_without_close_closes_1000():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("bye")

    async with WebSocketTestClient(api, "/ws") as ws:
        assert await ws.receive_text() == "bye"
        # As the guide's timeout example expects, the automatic close is not a message: the one
        # exception is a TimeoutError and the ConnectionClosed the wire shows, raised at once
        # (a 60 s receive timeout would hang this test if it were waited out).
        with pytest.raises(TimeoutError, match="returned without closing") as info:
            await ws.receive_text(timeout=60)
        assert isinstance(info.value, ConnectionClosed) and info.value.code == CloseCode.NORMAL
        assert ws.closed and ws.close_code == CloseCode.NORMAL
        with pytest.raises(ConnectionClosed):  # and again on every later receive
            await ws.receive_json(timeout=60)


async def test_client_iterates_until_the_server_closes():
    api = BoltAPI()

    @api.websocket("/ws/{kind}")
    async def handler(websocket: WebSocket, kind: str):
        await websocket.accept()
        for number in range(3):
            if kind == "bytes":
                await websocket.send_bytes(bytes([number]))
            else:
                await websocket.send_json({"n": number})
        if kind == "json":
            await websocket.close(code=4000)

    async with WebSocketTestClient(api, "/ws/json") as ws:
        assert [item async for item in ws.iter_json()] == [{"n": 0}, {"n": 1}, {"n": 2}]
        assert ws.close_code == 4000
    async with WebSocketTestClient(api, "/ws/text") as ws:  # ends when the handler returns
        assert [item async for item in ws.iter_text(timeout=60)] == ['{"n":0}', '{"n":1}', '{"n":2}']
    async with WebSocketTestClient(api, "/ws/bytes") as ws:
        assert [item async for item in ws.iter_bytes()] == [b"\x00", b"\x01", b"\x02"]


async def test_return_without_accept_is_denied_403():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        return None

    with pytest.raises(WebSocketDenied) as info:
        async with WebSocketTestClient(api, "/ws"):
            pass
    assert info.value.status_code == 403


async def test_close_before_accept_refuses_the_handshake():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.close(CloseCode.POLICY_VIOLATION, "not today")

    with pytest.raises(PermissionError):
        async with WebSocketTestClient(api, "/ws"):
            pass


async def test_send_before_accept_and_after_close_raise_clear_errors():
    api = BoltAPI()
    errors = []

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        with pytest.raises(WebSocketStateError, match="before accept"):
            await websocket.send_text("early")
        with pytest.raises(WebSocketStateError, match="before accept"):
            await websocket.receive_text()
        await websocket.accept()
        with pytest.raises(WebSocketStateError, match="already accepted"):
            await websocket.accept()
        await websocket.close()
        await websocket.close()  # a second close is harmless
        with pytest.raises(WebSocketStateError, match="after close"):
            await websocket.send_json({"late": True})
        errors.append("checked")

    async with WebSocketTestClient(api, "/ws") as ws:
        closed = await expect_close(ws)
    assert closed.code == 1000
    assert errors == ["checked"]


async def test_unknown_path_is_denied_404():
    api = BoltAPI()

    @api.websocket("/ws/known")
    async def handler(websocket: WebSocket):
        await websocket.accept()

    with pytest.raises(HandshakeRejected) as info:
        async with WebSocketTestClient(api, "/ws/unknown"):
            pass
    assert info.value.status_code == 404
    assert info.value.detail == "Not Found"


async def test_unconvertible_path_parameter_is_denied_422():
    api = BoltAPI()

    @api.websocket("/ws/user/{user_id}")
    async def handler(websocket: WebSocket, user_id: int):
        await websocket.accept()

    with pytest.raises(HandshakeRejected) as info:
        async with WebSocketTestClient(api, "/ws/user/abc"):
            pass
    assert info.value.status_code == 422
    assert "user_id" in info.value.detail and "integer" in info.value.detail


async def test_a_path_parameter_with_a_final_newline_is_denied_422():
    api = BoltAPI()

    @api.websocket("/ws/{count}/{ratio}")
    async def handler(websocket: WebSocket, count: int, ratio: float):
        await websocket.accept()

    for path in ("/ws/42\n/1", "/ws/42/1.5\n"):
        with pytest.raises(HandshakeRejected) as info:
            async with WebSocketTestClient(api, path):
                pass
        assert info.value.status_code == 422, path


async def test_the_url_holds_the_root_path_once():
    # ASGI servers put the root path in `path` too (uvicorn's and bolt's protocols).
    scope = {"type": "websocket", "scheme": "ws", "path": "/api/ws/x", "root_path": "/api",
             "query_string": b"a=1", "headers": [(b"host", b"example.com")]}
    assert HTTPConnection(scope).url == "ws://example.com/api/ws/x?a=1"


async def test_another_connections_disconnect_is_the_handlers_error(caplog):
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        raise WebSocketDisconnect(1006)  # what a send to a peer whose client left raises

    with caplog.at_level(logging.ERROR, logger="bolt"):
        async with WebSocketTestClient(api, "/ws", raise_server_exceptions=False) as ws:
            closed = await expect_close(ws)
    assert (closed.code, closed.reason) == (1011, "Internal error")
    assert "WebSocket handler" in caplog.text and "WebSocketDisconnect" in caplog.text


async def test_every_receive_after_a_close_reports_that_close():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.close(1000, "done")

    async with WebSocketTestClient(api, "/ws") as ws:
        for _ in range(3):
            with pytest.raises(ConnectionClosed) as info:
                await ws.receive_text()
            assert (info.value.code, info.value.reason) == (1000, "done")


async def test_request_data_is_exposed():
    api = BoltAPI()

    @api.websocket("/ws/info/{room}")
    async def info(websocket: WebSocket, room: str):
        websocket.state.visits = 1
        await websocket.accept(headers={"X-Server": "bolt"})
        await websocket.send_json({
            "path": websocket.path,
            "url": websocket.url,
            "token": websocket.query_params.get("token"),
            "tags": websocket.query_params.getlist("tag"),
            "agent": websocket.headers.get("USER-AGENT"),
            "agent_lower": websocket.headers["user-agent"],
            "session": websocket.cookies.get("sessionid"),
            "client": list(websocket.client),
            "path_params": websocket.path_params,
            "subprotocols": websocket.subprotocols,
            "visits": websocket.state.visits,
            "scope_type": websocket.scope["type"],
        })

    async with WebSocketTestClient(
        api, "/ws/info/lobby", headers={"User-Agent": "pytest"}, query_string="token=abc&tag=a&tag=b",
        cookies={"sessionid": "s1"}, subprotocols=["v1"], client=("10.0.0.7", 4321),
    ) as ws:
        data = await ws.receive_json()
        assert ws.response_headers.get("x-server") == "bolt"
    assert data == {
        "path": "/ws/info/lobby", "url": "ws://testserver/ws/info/lobby?token=abc&tag=a&tag=b",
        "token": "abc", "tags": ["a", "b"], "agent": "pytest", "agent_lower": "pytest", "session": "s1",
        "client": ["10.0.0.7", 4321], "path_params": {"room": "lobby"}, "subprotocols": ["v1"],
        "visits": 1, "scope_type": "websocket",
    }


async def test_subprotocol_negotiation():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        chosen = next((p for p in ("v2", "v1") if p in websocket.subprotocols), None)
        await websocket.accept(subprotocol=chosen)
        await websocket.send_text(str(chosen))

    async with WebSocketTestClient(api, "/ws", subprotocols=["v1", "v2"]) as ws:
        assert ws.accepted_subprotocol == "v2"
        assert await ws.receive_text() == "v2"
    async with WebSocketTestClient(api, "/ws") as ws:
        assert ws.accepted_subprotocol is None


async def test_accepting_a_subprotocol_the_client_did_not_offer_fails():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept(subprotocol="v9")

    with pytest.raises(ValueError, match="not offered"):
        async with WebSocketTestClient(api, "/ws", subprotocols=["v1"]):
            pass


async def test_receive_timeout():
    api = BoltAPI()

    @api.websocket("/ws/slow")
    async def slow(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_text()

    async with WebSocketTestClient(api, "/ws/slow") as ws:
        with pytest.raises(TimeoutError):
            await ws.receive_text(timeout=0.05)


async def test_many_clients_at_once():
    api = BoltAPI()

    @api.websocket("/ws/{n}")
    async def handler(websocket: WebSocket, n: int):
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"{n}:{text}")

    clients = [WebSocketTestClient(api, f"/ws/{n}") for n in range(50)]
    for c in clients:
        await c.__aenter__()
    for n, c in enumerate(clients):
        await c.send_text(str(n * 2))
    assert [await c.receive_text() for c in clients] == [f"{n}:{n * 2}" for n in range(50)]
    for c in clients:
        await c.__aexit__(None, None, None)


async def test_sync_websocket_handler_is_refused_at_registration():
    api = BoltAPI()
    with pytest.raises(TypeError, match="async"):
        @api.websocket("/ws")
        def handler(websocket):  # pragma: no cover - never called
            pass
