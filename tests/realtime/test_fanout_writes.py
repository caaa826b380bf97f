"""Broadcasts under bolt's protocol go to every idle socket in one `send_many` call: what that must not change.

Order with a connection's own sends, a socket that takes only part of a frame, slow consumers, and
clients that are gone. Both builds run these (BOLT_NO_ACCEL=1 for the pure-Python one).
"""
from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from bolt import BoltAPI, WebSocket
from bolt.protocol import uvicorn as protocol_module
from uvicorn_server import BOLT_PROTOCOL, serve

pytestmark = pytest.mark.asyncio

BIG = 200_000  # more than an empty socket's send buffer takes at once


def fanout_api(**options: Any) -> BoltAPI:
    api = BoltAPI(**options)

    @api.websocket("/member")
    async def member(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("room")
        await websocket.send_text("joined")
        async for order in websocket.iter_json():
            # Broadcasts interleaved with this connection's own messages, direct and queued.
            for n in range(order["count"]):
                await api.hub.broadcast("room", f"b{n}")
                await websocket.send_text(f"d{n}")
                api.hub.post(websocket, f"p{n}")

    @api.websocket("/replier")
    async def replier(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("room")
        await websocket.send_text("joined")
        async for text in websocket.iter_text():
            await websocket.send_text(f"r{text}")  # held while more received messages wait
            await api.hub.broadcast("room", f"b{text}")

    @api.websocket("/control")
    async def control(websocket: WebSocket) -> None:
        await websocket.accept()
        async for order in websocket.iter_json():
            for n in range(order["count"]):
                await api.hub.broadcast("room", f"{n:06d}" + "x" * (order["size"] - 6))
                await asyncio.sleep(order.get("pause", 0))  # lets the readers of this process keep up
            await websocket.send_text("sent")

    return api


@pytest.fixture
def incomplete(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every socket that `send_many` reported as not taking a whole frame."""
    seen: list[tuple[int, int]] = []
    original = protocol_module.send_many

    def recording(fds: list[int], data: bytes) -> list[tuple[int, int]]:
        result = original(fds, data)
        seen.extend(result)
        return result

    monkeypatch.setattr(protocol_module, "send_many", recording)
    return seen


def small_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small TCP window
    return sock


async def _member(base: str, **options: Any) -> Any:
    if "sock" in options:
        host, port = base.split(":")
        options["sock"].connect((host, int(port)))
    ws = await websockets.connect(f"ws://{base}/member", max_size=None, **options)
    assert await ws.recv() == "joined"
    return ws


@pytest.mark.parametrize("deflate", [False, True])
async def test_broadcasts_keep_their_order_with_the_connections_own_sends(deflate: bool) -> None:
    async with asyncio.timeout(20), serve(fanout_api(), ws=BOLT_PROTOCOL, ws_per_message_deflate=deflate) as base:
        sender, other = await _member(base), await _member(base)
        await sender.send(json.dumps({"count": 50}))
        assert [await sender.recv() for _ in range(150)] == [f"{kind}{n}" for n in range(50) for kind in "bdp"]
        assert [await other.recv() for _ in range(50)] == [f"b{n}" for n in range(50)]
        await sender.close()
        await other.close()


async def test_a_broadcast_follows_replies_held_for_messages_received_together() -> None:
    async with asyncio.timeout(20), serve(fanout_api(), ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        ws = await websockets.connect(f"ws://{base}/replier")
        assert await ws.recv() == "joined"
        # Twenty messages in one write, so the server reads them together; masked with a zero key.
        ws.transport.write(b"".join(b"\x81" + bytes([0x80 | len(m)]) + bytes(4) + m
                                    for m in (str(n).encode() for n in range(20))))
        assert [await ws.recv() for _ in range(40)] == [f"{kind}{n}" for n in range(20) for kind in "rb"]
        await ws.close()


async def test_a_socket_that_takes_part_of_a_frame_gets_the_rest_in_order(
        incomplete: list[tuple[int, int]]) -> None:
    async with asyncio.timeout(30), serve(fanout_api(), ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        slow = await _member(base, sock=small_socket(), max_queue=1)  # reads nothing until asked
        fast = await _member(base)
        async with websockets.connect(f"ws://{base}/control") as control:
            await control.send(json.dumps({"count": 20, "size": BIG}))
            expected = [f"{n:06d}" + "x" * (BIG - 6) for n in range(20)]
            assert [await fast.recv() for _ in range(20)] == expected
            assert await control.recv() == "sent"
            assert [await slow.recv() for _ in range(20)] == expected  # nothing lost or torn
        assert any(0 < taken < BIG + 10 for _, taken in incomplete)  # a frame was split: its rest was queued
        await slow.close()
        await fast.close()


async def test_a_slow_consumer_is_still_evicted_with_1013() -> None:
    api = fanout_api(send_queue=2, slow_consumer="close")
    async with asyncio.timeout(30), serve(api, ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        slow = await _member(base, sock=small_socket(), max_queue=1)
        fast = await _member(base)
        async with websockets.connect(f"ws://{base}/control") as control:
            await control.send(json.dumps({"count": 40, "size": BIG, "pause": 0.01}))
            assert [(await fast.recv())[:6] for _ in range(40)] == [f"{n:06d}" for n in range(40)]
            assert await control.recv() == "sent"
        received = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append((await slow.recv())[:6])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert received == [f"{n:06d}" for n in range(len(received))]  # what it got came whole and in order
        assert len(received) < 40
        await fast.close()


async def test_clients_that_are_gone_are_skipped_and_the_others_get_everything() -> None:
    api = fanout_api()
    async with asyncio.timeout(20), serve(api, ws=BOLT_PROTOCOL, ws_per_message_deflate=False) as base:
        members = [await _member(base) for _ in range(6)]
        for ws in members[::2]:  # gone without a close frame: a TCP reset, as a lost network does
            sock = ws.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            ws.transport.abort()
        async with websockets.connect(f"ws://{base}/control") as control:
            for _ in range(3):
                await control.send(json.dumps({"count": 5, "size": 100}))
                assert await control.recv() == "sent"
        for ws in members[1::2]:
            assert [(await ws.recv())[:6] for _ in range(15)] == [f"{n:06d}" for n in range(5)] * 3
        for _ in range(100):
            if api.hub.health()["connections"] == 3:
                break
            await asyncio.sleep(0.02)
        assert api.hub.health()["connections"] == 3
        for ws in members[1::2]:
            await ws.close()
