"""Broadcast under bolt's own protocol: each wire encoding built once and written to every recipient that needs it."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from bolt import BoltAPI, WebSocket
from bolt.protocol import SharedMessage, WebSocketProtocol
from demo_apps import member_api
from uvicorn_server import BOLT_PROTOCOL, serve

pytestmark = pytest.mark.asyncio


def fanout_api(**options: Any) -> BoltAPI:
    """Members join a room; the control connection broadcasts what it is told (as JSON: kind and value)."""
    api = member_api(BoltAPI(**options), "/member/{room}")
    api.hub.keep_history("log:")

    @api.websocket("/control")
    async def control(websocket: WebSocket) -> None:
        await websocket.accept()
        async for order in websocket.iter_json():
            value = order["value"].encode() if order["kind"] == "bytes" else order["value"]
            await api.hub.broadcast(order["room"], value)
            await websocket.send_text("sent")

    return api


@pytest.fixture
def written(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, bytes]]:
    """Every frame the bolt.frames writer put on the wire: (protocol id, the frame object)."""
    frames: list[tuple[int, bytes]] = []
    original = WebSocketProtocol.write_shared

    def write_shared(self: WebSocketProtocol, message: SharedMessage) -> bool:
        done = original(self, message)
        if done:
            frames.append((id(self), message.frame_for(self.conn.extension)))  # type: ignore[arg-type]
        return done

    monkeypatch.setattr(WebSocketProtocol, "write_shared", write_shared)
    return frames


async def _order(control: Any, room: str, kind: str, value: Any) -> None:
    await control.send(json.dumps({"room": room, "kind": kind, "value": value}))
    assert await control.recv() == "sent"


async def test_every_kind_of_broadcast_goes_out_as_one_shared_frame(written: list[tuple[int, bytes]]) -> None:
    async with asyncio.timeout(20), serve(fanout_api(), ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        members = [await websockets.connect(f"ws://{base}/member/{room}")
                   for room in ("plain", "plain", "plain", "log:a", "log:a")]
        for ws in members:
            assert await ws.recv() == "joined"
        async with websockets.connect(f"ws://{base}/control") as control:
            await _order(control, "plain", "text", "hello " * 30)
            await _order(control, "plain", "bytes", "\x00\x01")
            await _order(control, "plain", "json", {"n": 1, "é": [True, None]})
            await _order(control, "log:a", "json", {"n": 2})
            for ws in members[:3]:
                assert await ws.recv() == "hello " * 30
                assert await ws.recv() == b"\x00\x01"
                assert json.loads(await ws.recv()) == {"n": 1, "é": [True, None]}
            envelopes = [json.loads(await ws.recv()) for ws in members[3:]]
            assert envelopes == [{"room": "log:a", "id": envelopes[0]["id"], "data": {"n": 2}}] * 2
        for ws in members:
            await ws.close()
    # 3 broadcasts x 3 members + 1 x 2: each broadcast handed all its recipients the very same bytes
    assert len(written) == 11
    for start, count in ((0, 3), (3, 3), (6, 3), (9, 2)):
        batch = written[start:start + count]
        assert len({id(frame) for _, frame in batch}) == 1
        assert len({protocol for protocol, _ in batch}) == count


async def test_compressed_connections_share_one_compressed_frame(written: list[tuple[int, bytes]]) -> None:
    async with asyncio.timeout(20), serve(fanout_api(), ws=BOLT_PROTOCOL) as base:
        plain = await websockets.connect(f"ws://{base}/member/r", compression=None)
        deflated = [await websockets.connect(f"ws://{base}/member/r") for _ in range(3)]
        for ws in deflated:
            assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        for ws in (plain, *deflated):
            assert await ws.recv() == "joined"
        async with websockets.connect(f"ws://{base}/control") as control:
            await _order(control, "r", "text", "squeeze " * 200)
        for ws in (plain, *deflated):
            assert await ws.recv() == "squeeze " * 200
            await ws.close()
    assert len(written) == 4
    frames = {id(frame): frame for _, frame in written}
    assert len(frames) == 2  # one plain frame, one compressed frame shared by the three others
    compressed, plain = sorted(len(frame) for frame in frames.values())
    assert compressed < 100 and plain == 4 + 1600


async def test_a_middleware_that_wraps_send_sees_every_broadcast(written: list[tuple[int, bytes]]) -> None:
    api = fanout_api()
    seen: list[Any] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def record(message: dict[str, Any]) -> None:
            seen.append(message.get("text"))
            await send(message)

        await api(scope, receive, record)

    async with asyncio.timeout(20), serve(recording, ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        async with websockets.connect(f"ws://{base}/member/r") as ws:
            assert await ws.recv() == "joined"
            async with websockets.connect(f"ws://{base}/control") as control:
                await _order(control, "r", "text", "through the middleware")
            assert await ws.recv() == "through the middleware"
    assert written == []
    assert "through the middleware" in seen


async def test_a_layer_intercepting_send_before_accept_sees_every_broadcast(written: list[tuple[int, bytes]]) -> None:
    api = BoltAPI()
    seen: list[Any] = []

    def record(send: Any) -> Any:
        async def recording(message: dict[str, Any]) -> None:
            seen.append(message.get("text"))
            await send(message)

        return recording

    @api.websocket("/member")
    async def member(websocket: WebSocket) -> None:
        websocket.intercept(send=record)
        await websocket.accept()
        await websocket.join("r")
        await websocket.send_text("joined")
        async for _ in websocket.iter_text():
            pass

    async with asyncio.timeout(20), serve(api, ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        async with websockets.connect(f"ws://{base}/member") as ws:
            assert await ws.recv() == "joined"
            await api.hub.broadcast("r", "through the layer")
            assert await ws.recv() == "through the layer"
    assert written == []
    assert [text for text in seen if text is not None] == ["joined", "through the layer"]  # None: accept, close
