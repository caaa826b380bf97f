"""Typed WebSocket messages: receive_json(Model)/iter_json(Model) and the room endpoint's model."""
from __future__ import annotations

import dataclasses
from typing import TypedDict

import msgspec
import pydantic
import pytest

from bolt import BoltAPI, WebSocket
from bolt.testing import ConnectionClosed, WebSocketTestClient
from bolt.websocket import CloseCode, MessageValidationError

pytestmark = pytest.mark.asyncio


class Move(msgspec.Struct):
    x: int
    y: int


@dataclasses.dataclass
class Say:
    text: str
    loud: bool = False


class Point(TypedDict):
    x: float


class Login(pydantic.BaseModel):
    user: str
    pin: int


@pytest.mark.parametrize("model, sent, expected", [
    (Move, '{"x": 1, "y": 2}', {"x": 1, "y": 2}),
    (Say, '{"text": "hi"}', {"text": "hi", "loud": False}),
    (Point, '{"x": 1}', {"x": 1.0}),
    (Login, '{"user": "ann", "pin": 1234}', {"user": "ann", "pin": 1234}),
    (list[Move], '[{"x": 0, "y": 0}]', [{"x": 0, "y": 0}]),
])
async def test_each_library_decodes_its_model(model, sent, expected):
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        async for message in websocket.iter_json(model):
            await websocket.send_json(message)  # Structs and pydantic models are sent as JSON too

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_text(sent)
        assert await ws.receive_json() == expected
        await ws.send_bytes(sent.encode())  # binary JSON is read the same way
        assert await ws.receive_json() == expected


async def test_a_message_that_does_not_fit_names_the_field():
    api = BoltAPI()

    @api.websocket("/ws/caught")
    async def caught(websocket: WebSocket):
        await websocket.accept()
        for model in (Move, Login):
            try:
                await websocket.receive_json(model)
            except MessageValidationError as exc:
                await websocket.send_json({"location": exc.location, "detail": exc.detail})

    @api.websocket("/ws/uncaught")
    async def uncaught(websocket: WebSocket):
        await websocket.accept()
        async for _ in websocket.iter_json(list[Move]):
            pass

    async with WebSocketTestClient(api, "/ws/caught") as ws:
        await ws.send_text('{"x": 1, "y": "up"}')
        assert await ws.receive_json() == {"location": "y", "detail": "Expected `int`, got `str`"}
        await ws.send_text('{"user": "ann"}')
        assert await ws.receive_json() == {"location": "pin", "detail": "Field required"}
    async with WebSocketTestClient(api, "/ws/uncaught") as ws:
        await ws.send_text('[{"x": 1, "y": 2}, {"x": 1}]')
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text()
    assert closed.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA
    assert closed.value.reason == "invalid message: [1].y: Object missing required field `y`"


async def test_a_long_close_reason_is_cut_on_a_character_boundary():
    api = BoltAPI()

    Wide = msgspec.defstruct("Wide", [("é" * 60, int)])  # a field name of 120 bytes

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_json(Wide)

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_text('{"' + "é" * 60 + '": "not a number"}')
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text()
    reason = closed.value.reason
    assert closed.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA and reason.startswith("invalid message: ")
    assert len(reason.encode()) in (122, 123) and reason.endswith("é")  # whole characters only


async def test_malformed_json_for_a_model_is_invalid_json():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.receive_json(Move)

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_text('{"x": ')
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text()
    assert closed.value.code == CloseCode.INVALID_FRAME_PAYLOAD_DATA
    assert closed.value.reason.startswith("message is not valid JSON")


@pytest.mark.parametrize("model, bad", [(Move, {"x": 1, "y": "up"}), (Login, {"user": "ann", "pin": []})])
async def test_the_room_endpoint_checks_data_with_the_models_library(model, bad):
    api = BoltAPI()
    seen = []

    def can_publish(websocket, room, data):
        seen.append(type(data))
        return True

    api.realtime("/rt", can_join=True, can_publish=can_publish, model=model)
    good = {"x": 1, "y": 2} if model is Move else {"user": "ann", "pin": 7}
    async with WebSocketTestClient(api, "/rt") as ws:
        assert (await ws.receive_json())["type"] == "hello"
        await ws.send_json({"type": "join", "room": "r", "ref": 1})
        assert (await ws.receive_json())["ok"]
        await ws.send_json({"type": "publish", "room": "r", "data": bad, "ref": 2})
        reply = await ws.receive_json()
        assert reply["error"]["code"] == "invalid_data"
        assert reply["error"]["reason"].startswith("y:" if model is Move else "pin:")
        await ws.send_json({"type": "publish", "room": "r", "data": good, "ref": 3})
        got = [await ws.receive_json(), await ws.receive_json()]
    assert {"room": "r", "data": good} in got
    assert seen == [model]
