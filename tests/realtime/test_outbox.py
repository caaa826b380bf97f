"""Slow consumers: the bounded outbox, its three policies, the send timeout, and eviction through the api."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
import websockets

from bolt import BoltAPI, WebSocket, WebSocketDisconnect
from bolt.realtime import hub as hub_module
from bolt.realtime.outbox import CLOSE, DROP_NEWEST, DROP_OLDEST, Outbox, OutboxSettings
from demo_apps import room_api
from uvicorn_server import BOLT_PROTOCOL, serve


class Socket:
    """An ASGI send that completes at once while `open`, and blocks (like a full transport) otherwise."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.writable = asyncio.Event()
        self.writable.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.writable.wait()
        self.sent.append(message["text"])


def make(socket: Socket, size: int, policy: str, timeout: float | None = 10.0) -> tuple[Outbox, list[str]]:
    slow: list[str] = []
    return Outbox(socket.send, OutboxSettings(size, policy, timeout), lambda why, error: slow.append(why)), slow


def msg(n: int) -> dict[str, Any]:
    return {"type": "websocket.send", "text": str(n)}


@pytest.mark.asyncio
async def test_writes_at_once_while_the_socket_keeps_up() -> None:
    socket = Socket()
    outbox, _ = make(socket, 4, DROP_OLDEST)
    for n in range(100):
        outbox.put(msg(n))
    assert socket.sent == [str(n) for n in range(100)]  # no task, no waiting
    assert len(outbox) == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("policy, expected", [
    (DROP_OLDEST, ["0", "7", "8", "9"]),   # the blocked send, then the newest three
    (DROP_NEWEST, ["0", "1", "2", "3"]),   # the blocked send, then the first three queued
])
async def test_drop_policies_keep_the_queue_bounded(policy: str, expected: list[str]) -> None:
    socket = Socket()
    socket.writable.clear()
    outbox, slow = make(socket, 3, policy)
    for n in range(10):
        outbox.put(msg(n))
        assert len(outbox) <= 3
    assert outbox.dropped == 6
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert socket.sent == expected and slow == []
    outbox.put(msg(10))  # drained: writes at once again
    assert socket.sent[-1] == "10"


@pytest.mark.asyncio
@pytest.mark.parametrize("policy, expected", [
    (DROP_OLDEST, ["0", "r1", "4", "r5"]),  # 2 and then 3 were the oldest broadcasts waiting
    (DROP_NEWEST, ["0", "r1", "2", "r5"]),  # 4 was the newest message, 3 the newest broadcast waiting
])
async def test_drop_policies_never_drop_a_message_that_is_not_droppable(policy: str, expected: list[str]) -> None:
    socket = Socket()
    socket.writable.clear()
    outbox, slow = make(socket, 3, policy)
    outbox.put(msg(0))  # in flight
    outbox.put({"type": "websocket.send", "text": "r1"}, droppable=False)
    for n in range(2, 5):
        outbox.put(msg(n))
    outbox.put({"type": "websocket.send", "text": "r5"}, droppable=False)
    assert outbox.dropped == 2 and len(outbox) == 3
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert socket.sent == expected and slow == []


@pytest.mark.asyncio
@pytest.mark.parametrize("policy", [DROP_OLDEST, DROP_NEWEST])
async def test_a_queue_full_of_messages_that_may_not_be_dropped_gives_up(policy: str) -> None:
    socket = Socket()
    socket.writable.clear()
    outbox, slow = make(socket, 2, policy)
    outbox.put(msg(0))
    for n in (1, 2):
        outbox.put({"type": "websocket.send", "text": f"r{n}"}, droppable=False)
    outbox.put(msg(3))  # a broadcast is still dropped: itself
    assert slow == [] and outbox.dropped == 1
    outbox.put({"type": "websocket.send", "text": "r4"}, droppable=False)
    assert slow == ["send queue full"] and outbox.closed


@pytest.mark.asyncio
async def test_close_policy_gives_up_when_the_queue_is_full() -> None:
    socket = Socket()
    socket.writable.clear()
    outbox, slow = make(socket, 2, CLOSE)
    for n in range(4):
        outbox.put(msg(n))
    assert slow == ["send queue full"] and outbox.closed and len(outbox) == 0
    outbox.put(msg(99))
    assert len(outbox) == 0


@pytest.mark.asyncio
async def test_a_send_blocked_past_the_timeout_gives_up() -> None:
    socket = Socket()
    socket.writable.clear()
    outbox, slow = make(socket, 100, DROP_OLDEST, timeout=0.05)
    outbox.put(msg(1))
    outbox.put(msg(2))
    await asyncio.sleep(0.2)
    assert slow == ["send blocked for more than 0.05 s"] and outbox.closed


@pytest.mark.asyncio
async def test_a_vanished_client_closes_the_outbox_quietly() -> None:
    async def gone(message: dict[str, Any]) -> None:
        raise OSError("the client has disconnected")

    slow: list[str] = []
    outbox = Outbox(gone, OutboxSettings(), lambda why, error: slow.append(why))
    outbox.put(msg(1))
    assert outbox.closed and slow == []


@pytest.mark.asyncio
@pytest.mark.parametrize("blocked", [False, True])  # the send written at once, or by the sender task
async def test_a_send_that_raises_a_bug_gives_up_with_the_exception(blocked: bool) -> None:
    socket = Socket()
    bug = ValueError("a bug in a send layer")

    async def layer(message: dict[str, Any]) -> None:
        if message["text"] == "boom":
            raise bug
        await socket.send(message)

    ended: list[tuple[str, Exception | None]] = []
    outbox = Outbox(layer, OutboxSettings(), lambda why, error: ended.append((why, error)))
    if blocked:
        socket.writable.clear()
        outbox.put(msg(1))
    outbox.put({"type": "websocket.send", "text": "boom"})
    outbox.put(msg(2))
    socket.writable.set()
    await asyncio.sleep(0.01)
    assert ended == [("send failed", bug)] and outbox.closed
    assert socket.sent == (["1"] if blocked else [])


def test_settings_are_checked() -> None:
    for bad in [dict(size=0), dict(policy="later"), dict(timeout=0)]:
        with pytest.raises(ValueError):
            OutboxSettings(**bad)  # type: ignore[arg-type]
    assert OutboxSettings().replace(size=5).size == 5
    assert OutboxSettings().replace(timeout=None).timeout is None


class StalledClient:
    """An ASGI client whose socket stops taking data after the handshake: every send blocks."""

    def __init__(self, api: BoltAPI, path: str) -> None:
        self.api = api
        self.scope = {"type": "websocket", "path": path, "query_string": b"", "headers": [],
                      "subprotocols": [], "client": ("stalled", 1), "server": ("test", 80)}
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.incoming.put_nowait({"type": "websocket.connect"})
        self.accepted = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.accept":
            self.accepted.set()
            return
        await asyncio.Event().wait()  # never writable again

    async def start(self) -> None:
        self.task = asyncio.create_task(self.api(self.scope, self.incoming.get, self.send))
        await asyncio.wait_for(self.accepted.wait(), 1)
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_a_stalled_client_is_bounded_and_does_not_delay_the_others() -> None:
    from bolt.testing import WebSocketTestClient

    api = room_api(send_queue=8)
    stalled = StalledClient(api, "/ws")
    await stalled.start()
    async with WebSocketTestClient(api, "/ws") as healthy:
        await asyncio.sleep(0.01)
        for n in range(1000):
            await api.hub.broadcast("room", str(n))
        assert [await healthy.receive_text() for _ in range(1000)] == [str(n) for n in range(1000)]
        connection = next(c for c in api.hub._connections.values() if c.websocket.client == ("stalled", 1))
        assert len(connection.outbox) == 8 and connection.outbox.dropped == 1000 - 1 - 8
        assert api.hub.health()["dropped"] == 991
    stalled.task.cancel()  # type: ignore[union-attr]
    await asyncio.gather(stalled.task, return_exceptions=True)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_close_policy_evicts_a_stalled_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "_EVICT_TIMEOUT", 0.05)
    api = room_api(send_queue=2, slow_consumer="close")
    stalled = StalledClient(api, "/ws")
    await stalled.start()
    for n in range(5):
        await api.hub.broadcast("room", str(n))
    # Closing with 1013 cannot get through a stalled socket either: the handler is cancelled, and ends cleanly.
    await asyncio.wait_for(stalled.task, 2)  # type: ignore[arg-type]
    assert api.hub.local_members("room") == [] and api.hub.health()["connections"] == 0


@pytest.mark.asyncio
async def test_close_policy_sends_1013_to_a_client_that_can_still_take_it() -> None:
    from bolt.testing import ConnectionClosed, WebSocketTestClient

    api = room_api(send_queue=1, slow_consumer="close")
    async with WebSocketTestClient(api, "/ws") as ws:
        await asyncio.sleep(0.01)
        connection = next(iter(api.hub._connections.values()))
        connection.outbox._task = asyncio.create_task(asyncio.sleep(10))  # as if a send were blocked
        for n in range(3):
            await api.hub.broadcast("room", str(n))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text(timeout=1)
        assert closed.value.code == 1013


@pytest.mark.asyncio
@pytest.mark.parametrize("policy", [DROP_NEWEST, DROP_OLDEST])
async def test_a_gap_signal_is_never_dropped(policy: str) -> None:
    # It is the one notice that messages were lost: a queue that drops messages keeps it.
    from bolt.testing import WebSocketTestClient

    api = room_api(send_queue=2, slow_consumer=policy)
    api.hub.keep_history("room")
    async with WebSocketTestClient(api, "/ws"):
        await asyncio.sleep(0.01)
        outbox = next(iter(api.hub._connections.values())).outbox
        blocked = outbox._task = asyncio.create_task(asyncio.sleep(10))  # as if a send were blocked
        for n in range(3):
            await api.hub.broadcast("room", str(n))
        api.hub.signal_gap("room")
        for n in range(3, 6):
            await api.hub.broadcast("room", str(n))
        queued = [message["text"] for message in outbox._queue or ()]
        blocked.cancel()
    gaps = [text for text in queued if '"gap"' in text]
    assert len(gaps) == 1 and gaps[0].endswith(',"before":null}}'), queued


@pytest.mark.asyncio
async def test_an_evicted_handler_sees_1013_as_a_disconnect_not_a_state_error(caplog: pytest.LogCaptureFixture) -> None:
    from bolt.testing import ConnectionClosed, WebSocketTestClient

    api = BoltAPI(send_queue=1, slow_consumer="close")
    ended: list[int] = []

    @api.websocket("/ws")
    async def ticker(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("room")
        try:
            while True:  # sends of its own, no receive: the eviction must reach it through a send
                await asyncio.sleep(0.01)
                await websocket.send_text("tick")
        except WebSocketDisconnect as exc:
            ended.append(exc.code)
            raise

    async with WebSocketTestClient(api, "/ws") as ws:
        connection = next(iter(api.hub._connections.values()))
        connection.outbox._task = asyncio.create_task(asyncio.sleep(10))  # as if a send were blocked
        for n in range(3):
            await api.hub.broadcast("room", str(n))
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await ws.receive_text(timeout=1)
        assert closed.value.code == 1013
    assert ended == [1013]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.asyncio
async def test_a_send_layer_that_raises_ends_the_connection_with_1011(caplog: pytest.LogCaptureFixture) -> None:
    from bolt.testing import ConnectionClosed, WebSocketTestClient

    api = BoltAPI()
    ended: list[int] = []

    def layer(send: Any) -> Any:
        async def checked(message: dict[str, Any]) -> None:
            if message.get("text") == "boom":
                raise ValueError("a bug in the layer")
            await send(message)
        return checked

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        websocket.intercept(send=layer)
        await websocket.accept()
        await websocket.join("room")
        try:
            async for text in websocket.iter_text():
                await websocket.send_text(text)
        except WebSocketDisconnect as exc:
            ended.append(exc.code)
            raise

    async with WebSocketTestClient(api, "/ws") as ws:
        await ws.send_text("hi")
        assert await ws.receive_text() == "hi"
        await api.hub.broadcast("room", "boom")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.receive_text(timeout=1)
        assert (closed.value.code, closed.value.reason) == (1011, "Internal error")
    assert ended == [1011]
    assert api.hub.local_members("room") == [] and api.hub.health()["connections"] == 0
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "closing it with 1011" in record.getMessage() and "a bug in the layer" in caplog.text


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", [BOLT_PROTOCOL, "websockets-sansio"])
async def test_nothing_queued_after_the_handlers_own_close_is_sent(ws: str, caplog: pytest.LogCaptureFixture) -> None:
    api = BoltAPI(allow_missing_origin=True)

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("room")
        await websocket.receive_text()
        await websocket.close(4000, "bye")
        # Still in the room until the handler returns: the server refuses a send after the close.
        api.hub.post(websocket, "late")
        await api.hub.broadcast("room", "late")

    async with asyncio.timeout(10), serve(api, ws=ws) as base:
        client = await websockets.connect(f"ws://{base}/ws")
        await client.send("bye?")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await client.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4000
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
