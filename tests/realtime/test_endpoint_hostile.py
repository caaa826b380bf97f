"""The room protocol against hostile or odd input: identities that cannot name a user room, expiries
beyond what JSON states exactly, huge echoed values, backend failures a client must not see the
details of, malformed messages over the rate limit, and frames that break WebSocket itself."""
from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest

from bolt import BoltAPI, WebSocket
from bolt.auth import APIKeyAuthentication, JWTAuthentication
from bolt.middleware import rate_limit
from bolt.realtime import InvalidRoomName
from bolt.realtime.backends.redis import RedisBackend
from bolt.testing import WebSocketTestClient
from redis_servers import RedisServer
from uvicorn_server import bolt_protocol_or_skip, serve

from .test_endpoint import Peer, room_api

pytestmark = pytest.mark.asyncio

SECRET = "bolt-realtime-tests-hmac-secret-" + "0123456789abcdef" * 2
DOCS = Path(__file__).resolve().parents[2] / "docs"


def jwt_api() -> BoltAPI:
    api = BoltAPI()
    api.realtime("/rt", auth=[JWTAuthentication(secret=SECRET)], can_join=True, can_publish=True)
    return api


def token(exp: float, sub: str = "42") -> str:
    return jwt.encode({"sub": sub, "exp": exp}, SECRET, algorithm="HS256")


# -- 1. expires_at beyond what a JSON number holds exactly ---------------------------------------------

@pytest.mark.parametrize(("exp", "expires_at"), [(10**20, None), (2**63, None), (2**53, None),
                                                 (2**53 - 1, 2**53 - 1)])
async def test_an_auth_whose_expiry_is_beyond_2_53_is_answered_with_expires_at_null(exp: int, expires_at: Any) -> None:
    headers = {"Authorization": f"Bearer {token(exp)}"}
    async with WebSocketTestClient(jwt_api(), "/rt", headers=headers) as ws:  # accepted at the handshake too
        assert orjson.loads(await ws.receive_text())["type"] == "hello"
        await ws.send_json({"type": "auth", "token": token(exp), "ref": 1})
        assert orjson.loads(await ws.receive_text()) == {"type": "reply", "ref": 1, "ok": True, "expires_at": expires_at}
        await ws.send_json({"type": "ping", "ref": 2})
        assert orjson.loads(await ws.receive_text()) == {"type": "reply", "ref": 2, "ok": True}


# -- 2. user ids that cannot name a user room --------------------------------------------------------

UNROUTABLE = {"key-newline": "a\nb", "key-long": "x" * 129, "key-alice": "alice"}


async def test_a_user_id_that_cannot_name_a_room_connects_without_a_user_room(caplog: pytest.LogCaptureFixture) -> None:
    api = BoltAPI()
    api.realtime("/rt", auth=[APIKeyAuthentication(UNROUTABLE)], can_join=True, can_publish=True)

    @api.websocket("/echo", auth=[APIKeyAuthentication(UNROUTABLE)])
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    with caplog.at_level(logging.WARNING, logger="bolt.realtime"):
        for _ in range(2):  # the second time unannounced
            for user in ("newline", "long"):
                async with Peer(api, user) as peer:
                    assert peer.hello["user"] == UNROUTABLE[f"key-{user}"]
                    assert await peer.request("join", room="lobby") == {"type": "reply", "ref": 1, "ok": True}
                    assert (await peer.request("publish", room="lobby", data="hi"))["ok"]
                    assert peer.seen == [{"room": "lobby", "data": "hi"}]
                async with WebSocketTestClient(api, "/echo", headers={"x-api-key": f"key-{user}"}) as ws:
                    await ws.send_text("still open")
                    assert await ws.receive_text() == "still open"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "user id 'a\\nb' cannot name a room: its connections have no user room, so send_to_user cannot reach them",
        f"user id {'x' * 64!r}... cannot name a room: its connections have no user room, so send_to_user cannot "
        "reach them"], warnings
    with pytest.raises(InvalidRoomName):
        await api.hub.send_to_user("a\nb", "hi")
    async with Peer(api, "alice") as alice:  # a user id that names a room still has its room
        await api.hub.send_to_user("alice", "hi")
        assert await alice.next() == {"room": "~u:alice", "data": "hi"}


# -- 3. unavailable: the backend's words stay in the log ---------------------------------------------

@pytest.mark.redis
async def test_unavailable_reasons_do_not_tell_the_client_about_the_backend(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    api = BoltAPI(pubsub=RedisBackend(redis_server.url, timeout=0.3))
    api.hub.keep_history("feed:", size=5)
    api.realtime("/rt", auth=[APIKeyAuthentication({"key-alice": "alice"})], can_join=True, can_publish=True)
    try:
        async with Peer(api) as alice:
            assert (await alice.request("join", room="lobby"))["ok"]
            redis_server.stop()
            with caplog.at_level(logging.WARNING, logger="bolt.realtime"):
                # Twice each: the first may find its connection closed, the next is refused ("Error 111
                # connecting to 127.0.0.1:<port>").
                published = [await alice.request("publish", room="lobby", data=n) for n in range(2)]
                joined = [await alice.request("join", room="feed:x", since=0) for _ in range(2)]
        assert [reply["error"] for reply in published] == [{"code": "unavailable", "reason": "the pub/sub backend "
                                                            "did not confirm the message, which may still be delivered"}] * 2
        assert [reply["error"] for reply in joined] == [
            {"code": "unavailable", "reason": "the room's history could not be read: try again"}] * 2
        # The detail is the server's: in its log, at WARNING.
        logged = [r.getMessage() for r in caplog.records if r.name == "bolt.realtime" and r.levelno == logging.WARNING]
        address = f"127.0.0.1:{redis_server.port}"
        assert any(m.startswith("publish to 'lobby' not confirmed: ") and address in m for m in logged), logged
        assert any(m.startswith("history of 'feed:x' could not be read for a join: ") and address in m
                   for m in logged), logged
    finally:
        await api.hub.stop()


# -- 4. echoed values are cut short --------------------------------------------------------------------

@pytest.mark.parametrize(("message", "code", "shown"), [
    ({"type": "join", "room": "\x7f" * 300_000}, "invalid_room", "invalid room name '" + "\\x7f" * 64 + "'..."),
    ({"type": "x" * 300_000}, "unknown_type", "unknown message type '" + "x" * 64 + "'..."),
    ({"type": list(range(100_000))}, "unknown_type", "unknown message type [0, 1, 2,"),
    ({"type": "join", "room": "~u:alice"}, "invalid_room", "invalid room name '~u:alice': use"),
])
async def test_a_refused_value_is_echoed_cut_short(message: dict[str, Any], code: str, shown: str) -> None:
    async with Peer(room_api()) as alice:
        await alice.send(**message, ref=1)
        frame = await alice.ws.receive_text()
        reply = orjson.loads(frame)
        assert reply["error"]["code"] == code and reply["error"]["reason"].startswith(shown), reply
        assert len(frame) < 500


# -- 5. over the dropping rate limit, a malformed message is still answered rate_limited ----------

async def test_a_message_with_an_invalid_ref_over_the_dropping_limit_is_answered_rate_limited() -> None:
    api = room_api(rate_limit=rate_limit(messages=(0.001, 1), on_message_limit="drop"))
    async with Peer(api) as alice:
        assert (await alice.request("ping"))["ok"]
        for ref in (1.5, "r" * 65, [1]):
            await alice.send(type="ping", ref=ref)
            assert await alice.next() == {"type": "error",
                                          "error": {"code": "rate_limited", "reason": "Message rate exceeded"}}


# -- 6. the close codes of WebSocket itself are in the spec ---------------------------------------------

async def _closed_by(base: str, frame: bytes) -> int:
    """Send `frame` after a raw handshake on /rt and return the close code the server answers with."""
    host, port = base.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(f"GET /rt HTTP/1.1\r\nHost: {base}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nx-api-key: key-alice\r\n\r\n".encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    writer.write(frame)
    try:
        while True:  # the hello, then the close frame
            first, length = await reader.readexactly(2)
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            payload = await reader.readexactly(length)
            if first & 0x0F == 0x8:
                return int(struct.unpack("!H", payload[:2])[0])
    finally:
        writer.close()


def _masked(first: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    return bytes([first, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_the_spec_lists_the_close_codes_of_invalid_utf8_and_framing_violations() -> None:
    async with asyncio.timeout(20), serve(room_api(), ws=bolt_protocol_or_skip()) as base:
        assert await _closed_by(base, _masked(0x81, b'{"type": "\xff"}')) == 1007  # invalid UTF-8 in a text frame
        assert await _closed_by(base, _masked(0xC1, b'{"type": "ping"}')) == 1002  # RSV1 without an extension
    spec = (DOCS / "realtime-protocol.md").read_text()
    closes = spec[spec.index("None of these closes the connection."):spec.index("## Versions")]
    assert "1007 for a text message that is not valid UTF-8" in closes
    assert "1002 for a frame that breaks the WebSocket protocol" in closes
