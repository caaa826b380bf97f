"""The hub with the in-memory backend, driven through WebSocketTestClient: rooms, broadcast, presence, resume."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets

from bolt import BoltAPI, WebSocket
from bolt.auth import APIKeyAuthentication
from bolt.protocol import WebSocketProtocol
from bolt.realtime import InvalidRoomName
from bolt.realtime.hub import Connection
from bolt.realtime.names import check_room
from bolt.realtime.outbox import Outbox
from bolt.testing import WebSocketTestClient
from cyclic_garbage import cyclic_garbage
from uvicorn_server import BOLT_PROTOCOL, serve

KEYS = {"key-alice": "alice", "key-bob": "bob"}


def chat_api(**options: Any) -> BoltAPI:
    """A chat: join the room in the path (resuming after ?since=), broadcast what is typed to the others."""
    api = BoltAPI(**options)

    @api.websocket("/chat/{room}", auth=[APIKeyAuthentication(KEYS)])
    async def chat(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        since = websocket.query_params.get("since")
        await websocket.join(room, since=int(since) if since is not None else None)
        await websocket.send_text("joined")
        async for text in websocket.iter_text():
            if text == "leave":
                await websocket.leave(room)
                await websocket.send_text("left")
            else:
                await api.hub.broadcast(room, {"text": text}, exclude=websocket)

    return api


def client(api: BoltAPI, path: str, user: str | None = None) -> WebSocketTestClient:
    headers = {"x-api-key": f"key-{user}"} if user else None
    return WebSocketTestClient(api, path, headers=headers)


async def joined(*clients: WebSocketTestClient) -> None:
    for ws in clients:
        assert await ws.receive_text() == "joined"


async def until_joined(ws: WebSocketTestClient) -> list[Any]:
    """What the chat sends before "joined" (a join's replay), decoded."""
    received = []
    while (text := await ws.receive_text()) != "joined":
        received.append(json.loads(text))
    return received


@pytest.mark.asyncio
async def test_broadcast_reaches_members_of_the_room_only() -> None:
    api = chat_api()
    async with client(api, "/chat/lobby") as a, client(api, "/chat/lobby") as b, client(api, "/chat/other") as c:
        await joined(a, b, c)
        await a.send_text("hello")
        assert await b.receive_json() == {"text": "hello"}
        with pytest.raises(TimeoutError):  # excluded: the sender
            await a.receive_text(timeout=0.1)
        with pytest.raises(TimeoutError):  # another room
            await c.receive_text(timeout=0.1)


@pytest.mark.asyncio
async def test_str_bytes_and_json_keep_their_frame_type_and_json_is_encoded_once() -> None:
    api = chat_api()
    async with client(api, "/chat/lobby") as a, client(api, "/chat/lobby") as b:
        await joined(a, b)
        assert await api.hub.broadcast("lobby", "plain") is None
        assert await a.receive_text() == await b.receive_text() == "plain"
        await api.hub.broadcast("lobby", b"\x00\x01")
        assert await a.receive_bytes() == await b.receive_bytes() == b"\x00\x01"
        await api.hub.broadcast("lobby", {"n": [1, 2]})
        first, second = await a.receive(), await b.receive()
        assert first["text"] == '{"n":[1,2]}'
        assert first is second  # one pre-built ASGI message shared by every recipient


@pytest.mark.asyncio
async def test_many_clients_at_once() -> None:
    api = chat_api()
    clients = [client(api, "/chat/crowd") for _ in range(50)]
    for ws in clients:
        await ws.__aenter__()
    try:
        await joined(*clients)
        assert len(api.hub.local_members("crowd")) == 50
        await api.hub.broadcast("crowd", "all")
        assert [await ws.receive_text() for ws in clients] == ["all"] * 50
    finally:
        for ws in clients:
            await ws.__aexit__(None, None, None)
    assert api.hub.local_members("crowd") == []


@pytest.mark.asyncio
async def test_leave_and_automatic_leave_on_disconnect() -> None:
    api = chat_api()
    async with client(api, "/chat/lobby") as a:
        await joined(a)
        async with client(api, "/chat/lobby") as b:
            await joined(b)
            assert len(await api.hub.members("lobby")) == 2
            await b.send_text("leave")
            assert await b.receive_text() == "left"
            assert await api.hub.count("lobby") == 1
            await api.hub.broadcast("lobby", "after leave")
            assert await a.receive_text() == "after leave"
            with pytest.raises(TimeoutError):
                await b.receive_text(timeout=0.1)
        async with client(api, "/chat/lobby") as c:
            await joined(c)
            assert await api.hub.count("lobby") == 2
        assert await api.hub.count("lobby") == 1  # c left when it disconnected
    assert await api.hub.count("lobby") == 0
    assert api.hub.health()["connections"] == 0
    assert api.hub.rooms() == []


@pytest.mark.asyncio
async def test_room_names_are_validated_and_case_sensitive() -> None:
    api = chat_api()
    async with client(api, "/chat/Lobby") as upper, client(api, "/chat/lobby") as lower:
        await joined(upper, lower)
        await api.hub.broadcast("Lobby", "upper only")
        assert await upper.receive_text() == "upper only"
        with pytest.raises(TimeoutError):
            await lower.receive_text(timeout=0.1)
    for bad in ["", "a b", "x" * 129, "room\n", "ü", "a*", "~u:alice"]:
        with pytest.raises(InvalidRoomName):
            check_room(bad)
    for bad in ["", "a b", "~x:reserved", "~u:"]:
        with pytest.raises(InvalidRoomName):
            await api.hub.broadcast(bad, "x")


@pytest.mark.asyncio
async def test_a_handler_cannot_join_a_reserved_room() -> None:
    api = BoltAPI()
    errors: list[Exception] = []

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        for room in ("~u:alice", "~c:abc.1"):
            try:
                await websocket.join(room)
            except InvalidRoomName as exc:
                errors.append(exc)
        await websocket.send_text("done")

    async with WebSocketTestClient(api, "/ws") as ws:
        assert await ws.receive_text() == "done"
    assert len(errors) == 2


@pytest.mark.asyncio
async def test_user_room_reaches_every_device_of_one_user() -> None:
    api = chat_api()
    async with client(api, "/chat/a", "alice") as phone, client(api, "/chat/b", "alice") as laptop, \
            client(api, "/chat/a", "bob") as bob:
        await joined(phone, laptop, bob)
        await api.hub.send_to_user("alice", "for alice")
        assert await phone.receive_text() == await laptop.receive_text() == "for alice"
        with pytest.raises(TimeoutError):
            await bob.receive_text(timeout=0.1)
        assert {m.connection_id for m in await api.hub.members(api.hub.user_room("alice"))} == \
            set(api.hub.local_members(api.hub.user_room("alice")))
        assert [m.user_id for m in await api.hub.members("a")] == ["alice", "bob"]


@pytest.mark.asyncio
async def test_connection_room_reaches_one_connection() -> None:
    api = BoltAPI()
    ids: list[str] = []

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        ids.append(api.hub.connection_id(websocket))  # type: ignore[arg-type]
        async for _ in websocket.iter_text():
            pass

    async with WebSocketTestClient(api, "/ws") as one, WebSocketTestClient(api, "/ws") as two:
        await asyncio.sleep(0.01)
        await api.hub.send_to_connection(ids[1], "only you")
        assert await two.receive_text() == "only you"
        with pytest.raises(TimeoutError):
            await one.receive_text(timeout=0.1)


@pytest.mark.asyncio
async def test_presence_events() -> None:
    api = chat_api()
    async with api.hub.on_presence("lobby") as events:
        async with client(api, "/chat/lobby", "alice") as a:
            await joined(a)
            event = await asyncio.wait_for(events.get(), 1)
            assert (event.type, event.room, event.member.user_id) == ("join", "lobby", "alice")
            assert event.to_dict()["connection_id"] == api.hub.local_members("lobby")[0]
        event = await asyncio.wait_for(events.get(), 1)
        assert (event.type, event.member.user_id) == ("leave", "alice")
    assert api.hub.rooms() == []  # the listener released the room


@pytest.mark.asyncio
async def test_resume_replays_what_was_missed() -> None:
    api = chat_api()
    api.hub.keep_history("news", size=10)
    async with client(api, "/chat/news") as a:
        await joined(a)
        ids = [await api.hub.broadcast("news", {"n": n}) for n in range(3)]
        base = ids[0] - 1  # a new history counts on from the clock (see test_ids_outlive_a_lost_history)
        assert ids == [base + 1, base + 2, base + 3]
        assert await a.receive_json() == {"room": "news", "id": base + 1, "data": {"n": 0}}
        await api.hub.broadcast("news", "text too")
        assert [(await a.receive_json())["id"] for _ in range(3)] == [base + 2, base + 3, base + 4]
    # Reconnect having seen the second: the third and fourth come again, then live messages.
    async with client(api, f"/chat/news?since={base + 2}") as b:
        assert await b.receive_json() == {"room": "news", "id": base + 3, "data": {"n": 2}}
        assert await b.receive_json() == {"room": "news", "id": base + 4, "data": "text too"}
        await joined(b)
        await api.hub.broadcast("news", 5)
        assert await b.receive_json() == {"room": "news", "id": base + 5, "data": 5}
    async with client(api, f"/chat/news?since={base + 5}") as c:  # up to date: nothing to replay
        await joined(c)
    async with client(api, "/chat/news?since=0") as d:  # nothing seen, nothing lost: all of it, no gap
        assert [(await d.receive_json())["id"] for _ in range(5)] == [base + n for n in range(1, 6)]
        await joined(d)


@pytest.mark.asyncio
async def test_resume_signals_a_gap_when_history_no_longer_holds_it() -> None:
    api = chat_api()
    api.hub.keep_history("news", size=2)
    base = await api.hub.broadcast("news", 0) - 1
    for n in range(1, 5):
        await api.hub.broadcast("news", n)
    async with client(api, f"/chat/news?since={base + 1}") as a:
        assert await a.receive_json() == {"room": "news", "gap": {"after": base + 1, "before": base + 4}}
        assert [(await a.receive_json())["id"] for _ in range(2)] == [base + 4, base + 5]
        await joined(a)
    async with client(api, "/chat/news?since=0") as c:  # owed the whole history, of which 3 fell out
        assert await c.receive_json() == {"room": "news", "gap": {"after": 0, "before": base + 4}}
        assert [(await c.receive_json())["id"] for _ in range(2)] == [base + 4, base + 5]
        await joined(c)
    # Ids the room never reached: a history that started lower (a clock that went back) replaced it.
    async with client(api, f"/chat/news?since={base + 99}") as b:
        assert await b.receive_json() == {"room": "news", "gap": {"after": base + 99, "before": None}}
        await joined(b)


@pytest.mark.asyncio
async def test_history_expires_by_age() -> None:
    api = chat_api()
    api.hub.keep_history("news", size=10, ttl=0.05)
    old = await api.hub.broadcast("news", "old")
    await asyncio.sleep(0.1)
    await api.hub.broadcast("news", "new")
    async with client(api, "/chat/news?since=0") as a:
        assert await a.receive_json() == {"room": "news", "gap": {"after": 0, "before": old + 1}}
        assert await a.receive_json() == {"room": "news", "id": old + 1, "data": "new"}


@pytest.mark.asyncio
async def test_ids_outlive_a_lost_history() -> None:
    # A client saw 30 messages; the server restarts (its memory history is gone) and 40 new ones are
    # published before the client resumes. The new ids start above the old ones, so it gets all 40,
    # after a gap for what the old history held after its since.
    before = time.time_ns() // 1000
    first = chat_api()
    first.hub.keep_history("news", size=100)
    seen = [await first.hub.broadcast("news", n) for n in range(30)]
    restarted = chat_api()
    restarted.hub.keep_history("news", size=100)
    new = [await restarted.hub.broadcast("news", f"new {n}") for n in range(40)]
    async with client(restarted, f"/chat/news?since={seen[-1]}") as a:
        assert await until_joined(a) == [{"room": "news", "gap": {"after": seen[-1], "before": new[0]}}] + [
            {"room": "news", "id": id, "data": f"new {n}"} for n, id in enumerate(new)]
        await restarted.hub.broadcast("news", "live")
        assert await a.receive_json() == {"room": "news", "id": new[-1] + 1, "data": "live"}
    # Both histories count on from the clock, the new one above the old.
    assert before < seen[0] and seen == list(range(seen[0], seen[0] + 30))
    assert seen[-1] < new[0] and new == list(range(new[0], new[0] + 40))


@pytest.mark.asyncio
async def test_plain_rooms_stay_plain_and_history_rooms_refuse_bytes_and_since_needs_history() -> None:
    api = chat_api()
    api.hub.keep_history("news")
    with pytest.raises(TypeError):
        await api.hub.broadcast("news", b"binary")
    with pytest.raises(ValueError, match="keeps no history"):
        async with client(api, "/chat/plain?since=3"):
            pass


@pytest.mark.asyncio
async def test_join_requires_accept() -> None:
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket) -> None:
        await websocket.join("room")

    with pytest.raises(RuntimeError, match="accept"):
        async with WebSocketTestClient(api, "/ws"):
            pass


@pytest.mark.asyncio
async def test_lifespan_starts_and_stops_the_hub() -> None:
    api = BoltAPI()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "lifespan.startup.complete":
            assert api.hub.backend is not None and api.hub.health()["backend"] == "memory"

    await api({"type": "lifespan"}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert api.hub.backend is None


def test_unknown_pubsub_url_and_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="slow_consumer"):
        BoltAPI(slow_consumer="sometimes")
    api = BoltAPI(pubsub="kafka://x")
    with pytest.raises(ValueError, match="unknown pubsub"):
        asyncio.run(api.hub.start())
    with pytest.raises(ValueError, match="send_queue"):
        @api.websocket("/ws", send_queue=0)
        async def handler(websocket: WebSocket) -> None: ...


@pytest.mark.asyncio
async def test_broadcast_from_another_thread_runs_on_the_hub_loop() -> None:
    api = chat_api()
    async with client(api, "/chat/lobby") as a:
        await joined(a)

        def django_view() -> int | None:  # a sync view using its own event loop, as async_to_sync does
            return asyncio.run(api.hub.broadcast("lobby", "from a thread"))

        assert await asyncio.to_thread(django_view) is None
        assert await a.receive_text() == "from a thread"
        assert len(api.hub.local_members("lobby")) == 1  # the hub was not reset by the other loop


@pytest.mark.asyncio
async def test_the_backend_comes_from_django_settings_when_not_given() -> None:
    from django.test import override_settings

    from django_settings import configure_django  # tests/ is on sys.path (it is not a package)

    configure_django()
    with override_settings(BOLT_PUBSUB="kafka://nowhere"):
        with pytest.raises(ValueError, match="kafka://nowhere"):
            await BoltAPI().hub.start()
    with override_settings(BOLT_PUBSUB="memory"):
        api = BoltAPI()
        await api.hub.start()
        assert api.hub.health()["backend"] == "memory"
    api = BoltAPI()  # no setting: memory
    await api.hub.start()
    assert api.hub.health()["backend"] == "memory"


@pytest.mark.asyncio
async def test_a_message_published_during_a_resume_is_not_delivered_twice() -> None:
    from bolt.realtime import MemoryBackend

    class SlowPublish(MemoryBackend):
        """Stores the message (so a replay sees it) and only then lets the broadcast go on."""

        gate = asyncio.Event()

        async def publish(self, room: str, message: Any, history: Any) -> None:
            await super().publish(room, message, history)
            await self.gate.wait()

    api = chat_api(pubsub=SlowPublish())
    api.hub.keep_history("news")
    async with client(api, "/chat/news") as first:
        await joined(first)
        publishing = asyncio.create_task(api.hub.broadcast("news", "racing"))
        await asyncio.sleep(0.01)  # its id is in history, not yet delivered
        async with client(api, "/chat/news?since=0") as late:
            replayed = await late.receive_json()
            assert replayed == {"room": "news", "id": replayed["id"], "data": "racing"}
            await joined(late)
            SlowPublish.gate.set()
            assert await publishing == replayed["id"]
            await api.hub.broadcast("news", "next")
            assert (await late.receive_json())["id"] == replayed["id"] + 1  # not the racing one again
            assert [(await first.receive_json())["id"] for _ in range(2)] == [replayed["id"], replayed["id"] + 1]


@pytest.mark.asyncio
async def test_a_hub_started_again_keeps_its_open_connections() -> None:
    api = chat_api()
    async with client(api, "/chat/lobby", "alice") as a:
        await joined(a)
        await api.hub.stop()
        await api.hub.start()
        assert [m.user_id for m in await api.hub.members("lobby")] == ["alice"]
        await api.hub.broadcast("lobby", "still here")
        assert await a.receive_text() == "still here"



@pytest.mark.asyncio
@pytest.mark.parametrize("ending", ["close", "drop"])
async def test_an_ended_connection_leaves_no_cyclic_garbage(ending: str) -> None:
    """Refcounting frees an ended connection: the cyclic GC, whose full collections walk every object
    of the process, has nothing of it to find (with many connections that walk dominated churn)."""
    api = chat_api()
    bolt_types = (WebSocket, WebSocketProtocol, Connection, Outbox)
    async with asyncio.timeout(10), serve(api, ws=BOLT_PROTOCOL) as address:
        ws = await websockets.connect(f"ws://{address}/chat/lobby", additional_headers={"x-api-key": "key-alice"})
        assert await ws.recv() == "joined"
        with cyclic_garbage(*bolt_types) as left:
            if ending == "close":
                await ws.close()
            else:
                ws.transport.abort()
            while api.hub.local_connections():
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the server's task for the connection ends after the handler
        assert left == []


HEALTH_KEYS = {"ok", "backend", "subscriber", "deaf_since", "last_error", "reconnects", "subscribed_rooms", "node",
               "connections", "rooms", "queued", "dropped"}


@pytest.mark.asyncio
async def test_health_has_the_documented_keys_on_the_memory_backend_and_before_start() -> None:
    api = chat_api()
    before = api.hub.health()
    assert set(before) == HEALTH_KEYS and before["backend"] == "not started" and before["ok"]
    async with client(api, "/chat/lobby", "alice") as ws:
        await joined(ws)
        health = api.hub.health()
        assert set(health) == HEALTH_KEYS
        assert health["backend"] == "memory" and health["ok"] and health["subscriber"] == "none"
        assert health["connections"] == 1 and health["rooms"] >= 1 and health["reconnects"] == 0
    await api.hub.stop()
