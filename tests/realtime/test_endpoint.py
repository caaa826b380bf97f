"""The room protocol of `api.realtime(...)`, in-process with WebSocketTestClient: every message type,
every error, authorization, limits, presence and resume (docs/realtime-protocol.md)."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import orjson
import pytest

from bolt import BoltAPI, WebSocket, accel
from bolt.auth import APIKeyAuthentication
from bolt.middleware import rate_limit
from bolt.realtime import PublishError
from bolt.realtime.endpoint import MAX_DEPTH, RELAY_MIN_SIZE
from bolt.testing import ConnectionClosed, WebSocketTestClient

pytestmark = pytest.mark.asyncio

KEYS = {"key-alice": "alice", "key-bob": "bob", "key-eve": "eve"}


def room_api(**options: Any) -> BoltAPI:
    api = BoltAPI()
    api.hub.keep_history("feed:", size=5)
    defaults: dict[str, Any] = {"auth": [APIKeyAuthentication(KEYS)], "can_join": True, "can_publish": True}
    api.realtime("/rt", **{**defaults, **options})
    return api


class Peer:
    """A protocol client over the test client: sends requests, reads replies in order."""

    def __init__(self, api: BoltAPI, user: str = "alice", path: str = "/rt") -> None:
        self.ws = WebSocketTestClient(api, path, headers={"x-api-key": f"key-{user}"})
        self.refs = 0
        self.hello: dict[str, Any] = {}

    async def __aenter__(self) -> Peer:
        await self.ws.__aenter__()
        self.hello = await self.next()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.ws.__aexit__(*exc)

    async def next(self) -> Any:
        return orjson.loads(await self.ws.receive_text())

    async def send(self, **message: Any) -> None:
        await self.ws.send_text(orjson.dumps(message).decode())

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send a request with a fresh ref and return its reply (other messages before it are kept)."""
        self.refs += 1
        await self.send(type=kind, ref=self.refs, **fields)
        return await self.reply(self.refs)

    async def reply(self, ref: Any) -> dict[str, Any]:
        self.seen: list[Any] = []
        while True:
            message = await self.next()
            if message.get("type") == "reply" and message.get("ref") == ref:
                return message
            self.seen.append(message)


async def test_hello_names_the_connection_and_the_limits() -> None:
    api = room_api(max_rooms=3)
    async with Peer(api) as alice:
        assert alice.hello["type"] == "hello" and alice.hello["version"] == 1
        assert alice.hello["user"] == "alice" and alice.hello["max_rooms"] == 3
        assert alice.hello["connection"] == api.hub.local_members(f"~c:{alice.hello['connection']}")[0]


async def test_join_publish_and_receive_in_a_plain_room() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice, Peer(api, "bob") as bob:
        assert await alice.request("join", room="lobby") == {"type": "reply", "ref": 1, "ok": True}
        assert (await bob.request("join", room="lobby"))["ok"]
        assert await bob.request("publish", room="lobby", data={"text": "hi"}) == {
            "type": "reply", "ref": 2, "ok": True}
        # The sender gets its own message too, before its reply.
        assert bob.seen == [{"room": "lobby", "data": {"text": "hi"}}]
        assert await alice.next() == {"room": "lobby", "data": {"text": "hi"}}


async def test_rooms_with_history_carry_ids_and_resume_with_since() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice:
        await alice.request("join", room="feed:a")
        ids = [(await alice.request("publish", room="feed:a", data=n))["id"] for n in range(3)]
        assert ids == [ids[0], ids[0] + 1, ids[0] + 2]
    async with Peer(api, "bob") as bob:
        reply = await bob.request("join", room="feed:a", since=ids[0])
        assert reply["ok"]
        # The replay is queued before the reply: when it arrives the client is caught up.
        assert bob.seen == [{"room": "feed:a", "id": ids[1], "data": 1}, {"room": "feed:a", "id": ids[2], "data": 2}]


async def test_a_resume_beyond_the_history_reports_a_gap_first() -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.request("join", room="feed:b")
        # the room keeps the last 5
        ids = [(await alice.request("publish", room="feed:b", data=n))["id"] for n in range(8)]
    async with Peer(api, "bob") as bob:
        await bob.request("join", room="feed:b", since=ids[0])
        assert bob.seen[0] == {"room": "feed:b", "gap": {"after": ids[0], "before": ids[3]}}
        assert [m["id"] for m in bob.seen[1:]] == ids[3:]


def with_plain_lobby(api: BoltAPI) -> BoltAPI:
    """`api` with /plain: a handler's own connection in the room lobby (not a protocol client)."""

    @api.websocket("/plain")
    async def plain(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("lobby")
        await websocket.send_text("joined")
        await websocket.receive_text()

    return api


async def test_server_broadcasts_reach_protocol_clients_as_envelopes_and_plain_clients_unchanged() -> None:
    api = with_plain_lobby(room_api())

    async with Peer(api) as alice, WebSocketTestClient(api, "/plain") as other:
        await alice.request("join", room="lobby")
        assert await other.receive_text() == "joined"
        await api.hub.broadcast("lobby", "text")
        await api.hub.broadcast("lobby", b"bytes")  # not for protocol clients
        await api.hub.broadcast("lobby", [1, 2])
        assert await alice.next() == {"room": "lobby", "data": "text"}
        assert await alice.next() == {"room": "lobby", "data": [1, 2]}
        assert [await other.receive_text(), await other.receive_bytes(), await other.receive_text()] == [
            "text", b"bytes", "[1,2]"]


@pytest.mark.parametrize("padding", [0, RELAY_MIN_SIZE])
async def test_a_published_value_reaches_plain_clients_as_a_server_broadcast_of_it_would(padding: int) -> None:
    api = with_plain_lobby(room_api(auth=[]))

    text, value = "x" * (padding + 5), {"pad": "y" * padding, "n": [1, 2]}
    async with WebSocketTestClient(api, "/rt") as alice, WebSocketTestClient(api, "/plain") as other:
        await alice.receive_json()
        await alice.send_json({"type": "join", "room": "lobby", "ref": 1})
        assert await alice.receive_json() == {"type": "reply", "ref": 1, "ok": True}
        assert await other.receive_text() == "joined"
        for data, plain_text in [(text, text), (value, orjson.dumps(value).decode())]:
            # Large ones are relayed without decoding when the accelerator is on: the same message either way.
            await alice.send_json({"type": "publish", "room": "lobby", "data": data})
            assert await alice.receive_json() == {"room": "lobby", "data": data}
            assert await other.receive_text() == plain_text
            await api.hub.broadcast("lobby", data)
            assert await alice.receive_json() == {"room": "lobby", "data": data}
            assert await other.receive_text() == plain_text


async def test_direct_messages_arrive_from_the_user_room() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice:
        await api.hub.send_to_user("alice", {"note": 1})
        assert await alice.next() == {"room": "~u:alice", "data": {"note": 1}}


async def test_leave_stops_delivery_and_leaving_twice_succeeds() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice, Peer(api, "bob") as bob:
        await alice.request("join", room="lobby")
        await bob.request("join", room="lobby")
        assert (await alice.request("leave", room="lobby"))["ok"]
        assert (await alice.request("leave", room="lobby"))["ok"]
        await bob.request("publish", room="lobby", data="x")
        assert (await alice.request("ping"))["ok"] and alice.seen == []


async def test_ping_is_always_answered() -> None:
    api = room_api()
    async with Peer(api) as alice:
        assert await alice.request("ping") == {"type": "reply", "ref": 1, "ok": True}
        await alice.send(type="ping")
        assert await alice.next() == {"type": "reply", "ok": True}
        await alice.send(type="ping", ref="a-string-ref")
        assert await alice.next() == {"type": "reply", "ref": "a-string-ref", "ok": True}


@pytest.mark.parametrize("frame, code", [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_json"),
    ('{"room": "x"}', "unknown_type"),
    ('{"type": "subscribe", "room": "x"}', "unknown_type"),
    ('{"type": "join"}', "bad_message"),
    ('{"type": "join", "room": 5}', "bad_message"),
    ('{"type": "join", "room": "a b"}', "invalid_room"),
    ('{"type": "join", "room": "~u:bob"}', "invalid_room"),
    ('{"type": "join", "room": "x", "since": -1}', "bad_message"),
    ('{"type": "join", "room": "x", "since": "3"}', "bad_message"),
    ('{"type": "join", "room": "x", "since": true}', "bad_message"),
    ('{"type": "join", "room": "x", "presence": "yes"}', "bad_message"),
    ('{"type": "join", "room": "plain", "since": 3}', "no_history"),
    ('{"type": "publish", "room": "x", "data": 1}', "not_joined"),
    ('{"type": "publish", "room": "x"}', "bad_message"),
    ('{"type": "join", "room": "x", "ref": {"a": 1}}', "bad_message"),
    ('{"type": "join", "room": "x", "ref": "%s"}' % ("r" * 65), "bad_message"),
])
async def test_malformed_messages_get_an_error_and_the_socket_stays_open(frame: str, code: str) -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.ws.send_text(frame)
        message = await alice.next()
        assert message["type"] == "error" and message["error"]["code"] == code, message
        assert message["error"]["reason"]
        assert (await alice.request("ping"))["ok"]


async def test_errors_with_a_ref_are_replies() -> None:
    api = room_api()
    async with Peer(api) as alice:
        reply = await alice.request("publish", room="nowhere", data=1)
        assert reply["ok"] is False and reply["error"]["code"] == "not_joined"


async def test_binary_frames_are_answered_with_an_error() -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.ws.send_bytes(b'{"type": "ping"}')
        assert (await alice.next())["error"]["code"] == "bad_json"


async def test_the_default_policy_refuses_every_join_and_publish() -> None:
    api = BoltAPI()
    api.realtime("/rt")
    async with Peer(api) as anyone:
        reply = await anyone.request("join", room="lobby")
        assert reply["error"]["code"] == "forbidden"
        assert api.hub.local_members("lobby") == []

    api = BoltAPI()
    api.realtime("/rt", can_join=True)
    async with Peer(api) as anyone:
        await anyone.request("join", room="lobby")
        assert (await anyone.request("publish", room="lobby", data=1))["error"]["code"] == "forbidden"


async def test_can_join_and_can_publish_decide_per_room_sync_or_async() -> None:
    async def can_join(websocket: Any, room: str) -> bool:
        await asyncio.sleep(0)
        return room.startswith("team:") or websocket.auth.user_id == "alice"

    def can_publish(websocket: Any, room: str, data: Any) -> bool:
        return websocket.auth.user_id != "eve" and data != "spam"

    api = room_api(can_join=can_join, can_publish=can_publish)
    async with Peer(api, "eve") as eve, Peer(api, "alice") as alice:
        assert (await eve.request("join", room="staff"))["error"] == {
            "code": "forbidden", "reason": "not allowed to join 'staff'"}
        assert (await alice.request("join", room="staff"))["ok"]
        assert (await eve.request("join", room="team:x"))["ok"]
        assert (await eve.request("publish", room="team:x", data="hi"))["error"]["code"] == "forbidden"
        await alice.request("join", room="team:x")
        assert (await alice.request("publish", room="team:x", data="spam"))["error"]["code"] == "forbidden"
        assert (await alice.request("publish", room="team:x", data="hi"))["ok"]


async def test_a_truthy_value_that_is_not_true_does_not_allow() -> None:
    api = room_api(can_join=lambda websocket, room: "yes")
    async with Peer(api) as alice:
        assert (await alice.request("join", room="lobby"))["error"]["code"] == "forbidden"


async def test_policy_code_that_raises_is_an_internal_error_not_a_traceback(caplog: Any) -> None:
    def can_join(websocket: Any, room: str) -> bool:
        raise RuntimeError("database password is hunter2")

    api = room_api(can_join=can_join)
    async with Peer(api) as alice:
        reply = await alice.request("join", room="lobby")
        assert reply["error"] == {"code": "internal", "reason": "can_join failed on the server"}
        assert "hunter2" not in str(reply)
        assert (await alice.request("ping"))["ok"]
    assert "hunter2" in caplog.text


async def test_on_publish_transforms_and_none_keeps_the_data() -> None:
    stored: list[Any] = []

    async def on_publish(websocket: Any, room: str, data: Any) -> Any:
        stored.append((room, data))
        if isinstance(data, dict):
            return {**data, "from": websocket.auth.user_id}
        return None

    api = room_api(on_publish=on_publish)
    async with Peer(api) as alice:
        await alice.request("join", room="lobby")
        await alice.request("publish", room="lobby", data={"text": "hi"})
        assert alice.seen == [{"room": "lobby", "data": {"text": "hi", "from": "alice"}}]
        await alice.request("publish", room="lobby", data=7)
        assert alice.seen == [{"room": "lobby", "data": 7}]
    assert stored == [("lobby", {"text": "hi"}), ("lobby", 7)]


@dataclasses.dataclass
class Chat:
    text: str
    urgent: bool = False


async def test_a_model_checks_published_data() -> None:
    api = room_api(model=Chat)
    async with Peer(api) as alice:
        await alice.request("join", room="lobby")
        reply = await alice.request("publish", room="lobby", data={"text": 5})
        assert reply["error"]["code"] == "invalid_data" and "text" in reply["error"]["reason"]
        await alice.request("publish", room="lobby", data={"text": "ok"})
        assert alice.seen == [{"room": "lobby", "data": {"text": "ok", "urgent": False}}]


async def test_more_rooms_than_max_rooms_are_refused() -> None:
    api = room_api(max_rooms=2)
    async with Peer(api) as alice:
        assert (await alice.request("join", room="a"))["ok"]
        assert (await alice.request("join", room="b"))["ok"]
        assert (await alice.request("join", room="a"))["ok"]  # already in: nothing changes
        assert (await alice.request("join", room="c"))["error"]["code"] == "too_many_rooms"
        await alice.request("leave", room="a")
        assert (await alice.request("join", room="c"))["ok"]


async def test_presence_lists_members_then_sends_changes() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice:
        await alice.request("join", room="lobby", presence=True)
        members = alice.seen[0]  # the list comes before the reply
        me = {"connection": alice.hello["connection"], "user": "alice"}
        assert members == {"type": "presence", "room": "lobby", "members": [me]}
        async with Peer(api, "bob") as bob:
            await bob.request("join", room="lobby")
            bob_member = {"connection": bob.hello["connection"], "user": "bob"}
            change = await _presence_change(alice)
            assert change == {"type": "presence", "room": "lobby", "join": [bob_member], "leave": []}
        change = await _presence_change(alice)
        assert change == {"type": "presence", "room": "lobby", "join": [], "leave": [bob_member]}


async def _presence_change(peer: Peer) -> dict[str, Any]:
    """The next presence change that is not the peer's own join (which may arrive after its list)."""
    while True:
        message = await peer.next()
        if message.get("type") == "presence" and "members" not in message:
            if message["join"] and message["join"][0]["connection"] == peer.hello["connection"]:
                continue
            return message


async def test_quick_joins_and_leaves_with_presence_leave_no_subscription_behind() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice:
        for _ in range(50):  # each leave comes before the relay's task has started
            await alice.send(type="join", room="lobby", presence=True)
            await alice.send(type="leave", room="lobby")
        await alice.request("ping")
        await asyncio.sleep(0.01)  # the relays' tasks run
        assert "lobby" not in api.hub._listeners
        assert (await alice.request("join", room="lobby", presence=True))["ok"]  # presence still works after
        assert len(api.hub._listeners["lobby"]) == 1
        async with Peer(api, "bob") as bob:
            await bob.request("join", room="lobby")
            assert (await _presence_change(alice))["join"][0]["user"] == "bob"
    await asyncio.sleep(0.01)
    assert "lobby" not in api.hub._listeners and "lobby" not in api.hub.rooms()


async def test_clients_without_presence_get_no_presence_messages() -> None:
    api = room_api()
    async with Peer(api, "alice") as alice:
        await alice.request("join", room="lobby")
        async with Peer(api, "bob") as bob:
            await bob.request("join", room="lobby", presence=True)
        assert (await alice.request("ping"))["ok"] and alice.seen == []


async def test_a_reply_is_never_dropped_by_the_slow_consumer_policy() -> None:
    api = room_api(send_queue=2)  # slow_consumer="drop_oldest", the default
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sent: list[Any] = []
    writable = asyncio.Event()
    writable.set()

    async def send(message: dict[str, Any]) -> None:  # a socket that takes nothing while not writable
        if message["type"] == "websocket.send":
            await writable.wait()
            sent.append(orjson.loads(message["text"]))

    scope = {"type": "websocket", "path": "/rt", "query_string": b"", "headers": [(b"x-api-key", b"key-alice")],
             "subprotocols": [], "client": ("slow", 1), "server": ("test", 80)}
    incoming.put_nowait({"type": "websocket.connect"})
    task = asyncio.create_task(api(scope, incoming.get, send))
    await asyncio.sleep(0.01)
    connection = sent[0]["connection"]
    writable.clear()  # the client is briefly slow: the next send blocks, later messages queue
    await api.hub.send_to_connection(connection, "n0")
    incoming.put_nowait({"type": "websocket.receive", "text": '{"type": "join", "room": "lobby", "ref": 1}'})
    await asyncio.sleep(0.01)
    for n in range(1, 4):
        await api.hub.send_to_connection(connection, f"n{n}")
    writable.set()
    await asyncio.sleep(0.01)
    assert [m.get("data", m.get("type")) for m in sent[1:]] == ["n0", "reply", "n3"]  # n1, n2 dropped instead
    assert sent[2] == {"type": "reply", "ref": 1, "ok": True} and api.hub.health()["dropped"] == 2
    incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(task, 1)


async def test_message_rate_limit_answers_rate_limited_in_drop_mode() -> None:
    api = room_api(rate_limit=rate_limit(messages=(0.001, 3), on_message_limit="drop"))
    async with Peer(api) as alice:
        for _ in range(3):
            assert (await alice.request("ping"))["ok"]
        reply = await alice.request("ping")
        assert reply["error"] == {"code": "rate_limited", "reason": "Message rate exceeded"}


async def test_the_hello_announces_the_message_rate_limit_only_when_there_is_one() -> None:
    for limit, announced in ((rate_limit(messages=(5, 10)), {"rate": 5.0, "burst": 10}),
                             (rate_limit(messages=2.5, on_message_limit="drop"), {"rate": 2.5, "burst": 3}),
                             (rate_limit(rps=10), None), (None, None)):
        async with Peer(room_api(rate_limit=limit)) as alice:
            assert alice.hello.get("message_limit") == announced


async def test_message_rate_limit_closes_with_1008_by_default() -> None:
    api = room_api(rate_limit=rate_limit(messages=(0.001, 2)))
    async with Peer(api) as alice:
        await alice.request("ping")
        await alice.request("ping")
        await alice.send(type="ping", ref=3)
        with pytest.raises(ConnectionClosed) as closed:
            await alice.next()
        assert closed.value.code == 1008


async def test_binary_frames_count_against_the_message_rate_limit(caplog: pytest.LogCaptureFixture) -> None:
    async with Peer(room_api(rate_limit=rate_limit(messages=(0.001, 2), on_message_limit="drop"))) as alice:
        for _ in range(2):
            await alice.ws.send_bytes(b"x")
            assert (await alice.next())["error"]["code"] == "bad_json"
        await alice.ws.send_bytes(b"x")
        assert (await alice.next())["error"] == {"code": "rate_limited", "reason": "Message rate exceeded"}
        assert (await alice.request("ping"))["error"]["code"] == "rate_limited"
    with caplog.at_level(logging.INFO, logger="bolt.security"):
        async with Peer(room_api(rate_limit=rate_limit(messages=(0.001, 2)))) as bob:
            for _ in range(3):
                await bob.ws.send_bytes(b"x")
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await bob.next()
            assert closed.value.code == 1008
    assert "closing websocket /rt from " in caplog.text and "Message rate exceeded" in caplog.text


async def test_a_publish_the_backend_does_not_confirm_is_answered_unavailable_fate_unknown() -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.request("join", room="lobby")
        backend = api.hub.backend

        async def refuse(*args: Any) -> None:
            raise PublishError("redis is away")

        backend.publish = refuse  # type: ignore[method-assign]
        reply = await alice.request("publish", room="lobby", data=1)
        assert reply["error"] == {"code": "unavailable", "reason": "the pub/sub backend did not confirm the message, "
                                  "which may still be delivered"}  # the backend's own words stay in the log


async def test_authentication_and_guards_of_the_route_apply_to_the_handshake() -> None:
    api = room_api()
    with pytest.raises(PermissionError):
        async with WebSocketTestClient(api, "/rt", headers={"x-api-key": "wrong"}):
            pass


async def test_realtime_paths_take_no_parameters_and_policies_are_checked() -> None:
    with pytest.raises(ValueError, match="no parameters"):
        BoltAPI().realtime("/rt/{room}")
    with pytest.raises(TypeError, match="can_join"):
        BoltAPI().realtime("/rt", can_join="everyone")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_rooms"):
        BoltAPI().realtime("/rt", max_rooms=0)


async def test_policies_and_on_publish_refuse_with_their_own_code_by_protocol_error() -> None:
    from bolt.realtime import ProtocolError

    def on_publish(websocket: Any, room: str, data: Any) -> Any:
        if data == "":
            raise ProtocolError("invalid_data", "a message needs some text")
        return data

    api = room_api(on_publish=on_publish)
    async with Peer(api) as alice:
        await alice.request("join", room="lobby")
        assert (await alice.request("publish", room="lobby", data=""))["error"] == {
            "code": "invalid_data", "reason": "a message needs some text"}
        assert alice.seen == []


async def test_a_join_whose_history_cannot_be_read_is_answered_unavailable_and_not_joined() -> None:
    from bolt.realtime import BackendUnavailable

    api = room_api()
    async with Peer(api) as alice:
        await alice.request("ping")
        backend = api.hub.backend

        async def away(*args: Any) -> None:
            raise BackendUnavailable("redis is away")

        original, backend.replay = backend.replay, away  # type: ignore[method-assign]
        reply = await alice.request("join", room="feed:x", since=3)
        assert reply["error"]["code"] == "unavailable"
        assert api.hub.local_members("feed:x") == []
        backend.replay = original  # type: ignore[method-assign]
        assert (await alice.request("join", room="feed:x", since=0))["ok"]


@pytest.mark.parametrize("padding", [0, RELAY_MIN_SIZE])
async def test_a_relayed_publish_reaches_the_room_as_the_same_value(padding: int) -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.request("join", room="feed:raw")
        data = '{ "n": 1e2, "s": "\\u00e9", "list": [1, 2], "pad": "%s" }' % ("x" * padding)
        await alice.ws.send_text('{"type": "publish", "room": "feed:raw", "ref": 9, "data": %s}' % data)
        envelope = await alice.ws.receive_text()
        id = orjson.loads(envelope)["id"]
        assert orjson.loads(envelope) == {"room": "feed:raw", "id": id, "data": orjson.loads(data)}
        if accel.ENABLED and padding:
            # Large and read by nothing on the server: the client's text, spliced in as written.
            assert envelope == '{"room":"feed:raw","id":%d,"data":%s}' % (id, data)
        assert orjson.loads(await alice.ws.receive_text()) == {"type": "reply", "ref": 9, "ok": True, "id": id}


async def test_an_endpoint_that_reads_data_gets_it_decoded() -> None:
    seen: list[Any] = []
    api = room_api(can_publish=lambda websocket, room, data: seen.append(data) is None)
    async with Peer(api) as alice:
        await alice.request("join", room="lobby")
        await alice.ws.send_text('{"type": "publish", "room": "lobby", "data": {"n": 1e2}}')
        assert await alice.next() == {"room": "lobby", "data": {"n": 100.0}}
    assert seen == [{"n": 100.0}]


@pytest.mark.parametrize("padding", [0, RELAY_MIN_SIZE])
@pytest.mark.parametrize("depth, accepted", [(MAX_DEPTH - 1, True), (MAX_DEPTH, False)])
async def test_messages_nest_at_most_max_depth(depth: int, accepted: bool, padding: int) -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.request("join", room="lobby")
        # The message object is level 1, so data of `depth` levels makes depth + 1.
        data = "[" * depth + "]" * depth
        pad = " " * padding  # large frames take the accelerator's path, small ones orjson's
        await alice.ws.send_text('{"type": "publish", "room": "lobby", %s"data": %s}' % (pad, data))
        message = await alice.next()
        if accepted:
            assert message == {"room": "lobby", "data": orjson.loads(data)}
        else:
            assert message["type"] == "error" and message["error"]["code"] == "bad_json"


@pytest.mark.parametrize("padding", [0, RELAY_MIN_SIZE])
@pytest.mark.parametrize("frame", ['{"type": "ping",}', '{"type": "ping"} x', "{'type': 'ping'}",
                                   '{"type": "ping", "n": NaN}', '{"type": "ping", "n": 01}',
                                   '{"type": "ping", "s": "\\ud800"}', '[{"type": "ping"}]'])
async def test_frames_that_are_not_strict_json_are_refused(frame: str, padding: int) -> None:
    api = room_api()
    async with Peer(api) as alice:
        await alice.ws.send_text(frame.replace('"type"', " " * padding + '"type"', 1))
        assert (await alice.next())["error"]["code"] == "bad_json"


@pytest.mark.parametrize("ref, replied", [(2**64 - 1, True), (-(2**63), True), (2**64, False), (10**30, False)])
async def test_a_refused_frame_gets_its_ref_back_only_when_a_reply_can_carry_it(ref: int, replied: bool) -> None:
    # Python's lenient decoder reads integers of any size; a reply is encoded by orjson (64 bits).
    api = room_api()
    async with Peer(api) as alice:
        await alice.ws.send_text('{"type": "ping", "ref": %d, "n": NaN}' % ref)
        error = await alice.next()
        assert error["error"]["code"] == "bad_json"
        assert (error.get("type"), error.get("ref")) == (("reply", ref) if replied else ("error", None)), error
        assert await alice.request("ping") == {"type": "reply", "ref": 1, "ok": True}  # still open


async def test_malformed_messages_count_against_the_message_rate_limit() -> None:
    api = room_api(rate_limit=rate_limit(messages=(0.001, 2)))
    async with Peer(api) as alice:
        await alice.ws.send_text("garbage")
        await alice.ws.send_text("garbage")
        assert (await alice.next())["error"]["code"] == "bad_json"
        assert (await alice.next())["error"]["code"] == "bad_json"
        await alice.ws.send_text("garbage")
        with pytest.raises(ConnectionClosed) as closed:
            await alice.next()
        assert closed.value.code == 1008


async def test_the_handshake_accepts_the_endpoints_subprotocol_and_never_echoes_another() -> None:
    offers = [["bolt.v1", "token.secret"], ["token.secret", "bolt.v1"], ["token.secret"], []]
    for options, accepted in (({}, ["bolt.v1", "bolt.v1", None, None]),
                              ({"subprotocol": "chat.v2"}, [None, None, None, None]),
                              ({"subprotocol": None}, [None, None, None, None])):
        api = room_api(**options)
        for offered, expected in zip(offers, accepted, strict=True):
            async with WebSocketTestClient(api, "/rt", headers={"x-api-key": "key-alice"},
                                           subprotocols=offered) as ws:
                assert ws.accepted_subprotocol == expected, (options, offered)
                assert (await ws.receive_json())["type"] == "hello"
    with pytest.raises(ValueError, match="subprotocol must be a token"):
        room_api(subprotocol="bolt v1")



async def test_a_refused_frame_whose_ref_can_still_be_read_gets_its_reply_the_same_in_both_builds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone surrogate escape (a string cut inside an emoji) fails the strict check, but its ref can
    still be read: the one reply the protocol promises carries it, in the same words whichever way
    the frame was parsed (bolt's accelerator for a large relayed frame, orjson otherwise)."""
    import types

    from bolt import _accel_py
    from bolt.realtime import endpoint

    builds = {"pure": types.SimpleNamespace(ENABLED=False, json_object_spans=_accel_py.json_object_spans)}
    try:
        from bolt import _accel  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - a build without the extension
        pass
    else:
        builds["accel"] = types.SimpleNamespace(ENABLED=True, json_object_spans=_accel.json_object_spans)
    answers = {}
    for name, build in builds.items():
        monkeypatch.setattr(endpoint, "accel", build)
        replies = []
        async with Peer(room_api()) as alice:
            await alice.request("join", room="feed:x")
            for padding in (0, RELAY_MIN_SIZE):
                pad = "x" * padding
                for frame in ('{"type": "publish", "room": "feed:x", "ref": 7, "data": "hi \\ud83d%s"}' % pad,
                              '{"type": "publish", "room": "feed:x", "ref": "r8", "data": {"\\udc00%s": 1}}' % pad,
                              '{"type": "publish", "room": "feed:x", "ref": 9, "data": [NaN, "%s"]}' % pad,
                              # a ref that is itself a lone surrogate cannot be sent back: an error without one
                              '{"type": "ping", "ref": "\\ud800", "pad": "%s"}' % pad):
                    await alice.ws.send_text(frame)
                    replies.append(await alice.next())
            assert (await alice.request("ping"))["ok"]
        assert [(r["type"], r.get("ref"), r.get("ok"), r["error"]["code"]) for r in replies] == [
            ("reply", 7, False, "bad_json"), ("reply", "r8", False, "bad_json"), ("reply", 9, False, "bad_json"),
            ("error", None, None, "bad_json")] * 2, replies
        assert replies[0]["error"]["reason"].startswith(
            "a message is one JSON object, nested at most 32 deep: no low surrogate in string"), replies[0]
        answers[name] = replies
    assert len(set(map(repr, answers.values()))) == 1, answers

async def test_a_refused_frame_over_the_dropping_rate_limit_is_answered_rate_limited_with_its_ref() -> None:
    api = room_api(rate_limit=rate_limit(messages=(0.001, 1), on_message_limit="drop"))
    async with Peer(api) as alice:
        await alice.request("ping")
        await alice.ws.send_text('{"type": "ping", "ref": 2, "s": "\\ud800"}')
        assert await alice.next() == {"type": "reply", "ref": 2, "ok": False,
                                      "error": {"code": "rate_limited", "reason": "Message rate exceeded"}}
