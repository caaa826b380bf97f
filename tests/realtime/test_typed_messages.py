"""receive_json(Model) / iter_json(Model): inbound JSON checked against dataclasses and TypedDicts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypedDict

import pytest

from bolt import BoltAPI, WebSocket
from bolt.testing import ConnectionClosed, WebSocketTestClient
from bolt.websocket import InvalidJSONMessage, MessageValidationError


@dataclass
class Say:
    room: str
    text: str
    priority: int = 0


class Move(TypedDict):
    kind: Literal["move"]
    x: int
    y: int


@pytest.mark.asyncio
async def test_valid_messages_become_models() -> None:
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        say = await websocket.receive_json(Say)
        await websocket.send_json({"type": type(say).__name__, "room": say.room, "priority": say.priority})
        async for move in websocket.iter_json(Move):
            await websocket.send_json(move["x"] + move["y"])

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_json({"room": "lobby", "text": "hi"})
        assert await ws.receive_json() == {"type": "Say", "room": "lobby", "priority": 0}
        await ws.send_json({"kind": "move", "x": 1, "y": 2}, mode="binary")
        assert await ws.receive_json() == 3


@pytest.mark.asyncio
async def test_a_handler_can_catch_a_bad_message() -> None:
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        while True:
            try:
                move = await websocket.receive_json(Move)
            except MessageValidationError as exc:
                assert isinstance(exc, InvalidJSONMessage)
                await websocket.send_json({"error": str(exc), "field": exc.location})
                continue
            await websocket.send_json({"ok": move["x"]})

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_json({"kind": "move", "x": "left", "y": 2})
        reply = await ws.receive_json()
        assert reply["field"] == "x" and "Expected `int`, got `str`" in reply["error"]
        await ws.send_json({"kind": "jump", "x": 1, "y": 2})
        assert (await ws.receive_json())["field"] == "kind"
        await ws.send_json({"kind": "move", "x": 5, "y": 2})
        assert await ws.receive_json() == {"ok": 5}


@pytest.mark.asyncio
async def test_uncaught_bad_message_closes_1007_naming_the_problem() -> None:
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        async for say in websocket.iter_json(Say):
            await websocket.send_text(say.text)

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_json({"room": "lobby"})
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text()
        assert closed.value.code == 1007
        assert "text" in closed.value.reason and len(closed.value.reason.encode()) <= 123
    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_text("{not json")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text()
        assert closed.value.code == 1007 and "not valid JSON" in closed.value.reason
