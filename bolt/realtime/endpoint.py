"""The room protocol (docs/realtime-protocol.md): many rooms over one WebSocket, served by `api.realtime(...)`.

A client joins rooms (resuming with `since`), leaves them, publishes to them, pings, and may give
the connection fresh credentials (`auth`, before the old ones expire and close it with 4401); every
message it sends may carry a `ref` that the server's reply echoes. Everything the server sends
goes through the connection's outbox, so replies, presence and room messages arrive in the order
they were produced. Who may join and publish is the endpoint's policy; the default refuses both.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import orjson

from bolt import accel
from bolt.connection import client_label
from bolt.models import ValidationError, codec_for
from bolt.realtime.backends.base import BackendUnavailable, PublishError
from bolt.realtime.hub import Hub
from bolt.realtime.names import InvalidRoomName, check_room, shown
from bolt.realtime.presence import JOIN, Member, PresenceEvent, PresenceSubscription
from bolt.security import refresh_credentials
from bolt.security.auth import AuthenticationFailed
from bolt.security.pipeline import MESSAGE_RATE_EXCEEDED, MessageLimiter
from bolt.websocket import WebSocket

logger = logging.getLogger("bolt.realtime")

VERSION = 1
DEFAULT_MAX_ROOMS = 32
MAX_REF_LENGTH = 64
# How deeply a client message may nest: the message object is level 1, a published value level 2.
MAX_DEPTH = 32
# From this size on, the accelerator's scan and a splice beat decoding and encoding the data with
# orjson (benchmarks/json_relay.py: 0.8x at 135 bytes, 1.6x at 1 KiB, 3.7x at 16 KiB).
RELAY_MIN_SIZE = 512
# The subprotocol the endpoint accepts when a client offers it: a browser refuses a handshake whose
# answer names none of the protocols it offered, so a client offering some must be able to get one.
SUBPROTOCOL = "bolt.v1"
# The latest expires_at a reply states (2**53 s, some 285 million years): beyond it a JSON number no
# longer holds it exactly in JavaScript, and orjson cannot write an int above 2**64 at all.
MAX_EXPIRES_AT = 2**53
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 token: what a subprotocol name may be

# A policy: True (everyone), None (no one) or a callable returning True, sync or async.
Policy = bool | Callable[..., Any] | None


class ProtocolError(Exception):
    """A client message the endpoint refuses: answered with `code` and `reason`, the socket stays open.

    `can_join`, `can_publish` and `on_publish` may raise it to refuse with a code and reason of their own.
    """

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class RealtimeEndpoint:
    """The handler behind `api.realtime(path, ...)`: one instance per route, one `Session` per connection.

    `can_join(websocket, room)` and `can_publish(websocket, room, data)` decide per room (sync or
    async; only a return value of True allows). Left out, nobody may join or publish: a room name is
    chosen by the client, so an endpoint that allowed every name would let anyone listen to any room.
    Pass True to allow every room. `on_publish(websocket, room, data)` may persist or transform a
    message before it is broadcast: its return value replaces `data` unless it is None. Any of the
    three may raise ProtocolError to refuse with a code and reason of its own. `model` checks
    published data as `receive_json(model)` does. `subprotocol` is the one subprotocol the handshake
    accepts, when the client offers it (None: never one); no other offered value (a token, say) is
    ever echoed back.
    """

    def __init__(self, hub: Hub, *, can_join: Policy = None, can_publish: Policy = None,
                 on_publish: Callable[..., Any] | None = None, model: Any = None,
                 max_rooms: int = DEFAULT_MAX_ROOMS, subprotocol: str | None = SUBPROTOCOL) -> None:
        if max_rooms < 1:
            raise ValueError("max_rooms must be at least 1")
        if subprotocol is not None and not _TOKEN.fullmatch(subprotocol):
            raise ValueError(f"subprotocol must be a token (letters, digits, !#$%&'*+-.^_`|~), got {subprotocol!r}")
        for name, policy in (("can_join", can_join), ("can_publish", can_publish)):
            if not (policy is None or isinstance(policy, bool) or callable(policy)):
                raise TypeError(f"{name} must be True, False, None or a callable, not {policy!r}")
        if on_publish is not None and not callable(on_publish):
            raise TypeError("on_publish must be callable")
        self.hub = hub
        self.can_join = can_join
        self.can_publish = can_publish
        self.on_publish = on_publish
        self.model = model
        self.codec = codec_for(model) if model is not None else None  # TypeError for a type no library takes
        self.max_rooms = max_rooms
        self.subprotocol = subprotocol
        # With nothing on the server to look at the data, a large publish is relayed as the
        # client wrote it: checked and spliced into the envelope, never decoded and encoded again.
        self.relays = model is None and on_publish is None and not callable(can_publish)
        self.message_limit: tuple[tuple[float, int], str] | None = None  # set by the api from the route's limit
        self._relays: dict[str, PresenceRelay] = {}

    async def __call__(self, websocket: WebSocket) -> None:
        offered = self.subprotocol is not None and self.subprotocol in websocket.subprotocols
        await websocket.accept(self.subprotocol if offered else None)
        session = Session(self, websocket)
        hello: dict[str, Any] = {
            "type": "hello", "version": VERSION, "connection": self.hub.connection_id(websocket),
            "user": getattr(websocket.auth, "user_id", None), "max_rooms": self.max_rooms}
        if self.message_limit is not None:
            # Announced so that a client can pace its rejoins and queued publishes to stay within it.
            (rate, burst), _ = self.message_limit
            hello["message_limit"] = {"rate": rate, "burst": burst}
        self.hub.post(websocket, orjson.dumps(hello).decode())
        try:
            await session.run()
        finally:
            session.end()

    def relay(self, room: str) -> PresenceRelay:
        """This process's presence relay for `room`, started on first use."""
        relay = self._relays.get(room)
        if relay is None or relay.loop is not asyncio.get_running_loop():
            relay = self._relays[room] = PresenceRelay(self, room)
        return relay

    def relay_done(self, relay: PresenceRelay) -> None:
        if self._relays.get(relay.room) is relay:
            del self._relays[relay.room]


class Session:
    """One connection's side of the protocol: its rooms and the dispatch of its messages."""

    def __init__(self, endpoint: RealtimeEndpoint, websocket: WebSocket) -> None:
        self.endpoint = endpoint
        self.hub = endpoint.hub
        self.websocket = websocket
        self.rooms: set[str] = set()
        self.watching: dict[str, PresenceRelay] = {}
        limit = endpoint.message_limit
        self.limiter = (MessageLimiter(limit[0], limit[1], websocket.path, client_label(websocket.scope))
                        if limit is not None else None)
        self.handlers = {"join": self.join, "leave": self.leave, "publish": self.publish, "ping": self.ping,
                         "auth": self.authenticate}

    async def run(self) -> None:
        receive, limiter = self.websocket.receive, self.limiter
        while True:
            message = await receive()  # raises WebSocketDisconnect when the client goes
            # The limit counts every message, well-formed or not, binary ones too.
            over_limit = False
            if limiter is not None and not limiter.bucket.take():
                limiter.exceeded()  # closes with 1008 under "close"
                over_limit = True
            text = message.get("text")
            if text is None:
                if over_limit:
                    self.error(None, "rate_limited", MESSAGE_RATE_EXCEEDED)
                else:
                    self.error(None, "bad_json", "binary frames are not part of the protocol: send JSON text")
                continue
            await self.handle(text, over_limit)

    async def handle(self, text: str, over_limit: bool) -> None:
        try:
            request = self.parse(text)
        except ValueError as exc:
            # Refused, but a ref that can still be read gets its one reply: a lone surrogate escape
            # ("\ud83d", a string cut inside an emoji) fails the strict check only.
            ref = _lenient_ref(text)
            if over_limit:
                self.error(ref, "rate_limited", MESSAGE_RATE_EXCEEDED)
            else:
                self.error(ref, "bad_json", f"a message is one JSON object, nested at most {MAX_DEPTH} deep: {exc}")
            return
        ref = request.get("ref")
        valid_ref = _valid_ref(ref)
        # The limit first: every extra message is answered rate_limited, a malformed one too.
        if over_limit:
            self.error(ref if valid_ref else None, "rate_limited", MESSAGE_RATE_EXCEEDED)
            return
        if not valid_ref:
            self.error(None, "bad_message",
                       f"ref must be a string of at most {MAX_REF_LENGTH} characters or an integer")
            return
        kind = request.get("type")
        handler = self.handlers.get(kind) if isinstance(kind, str) else None
        try:
            if handler is None:
                raise ProtocolError("unknown_type", f"unknown message type {shown(kind)}: use join, leave, publish, "
                                    "ping or auth" if kind is not None else "a message needs a type")
            extra = await handler(request)
        except ProtocolError as exc:
            self.error(ref, exc.code, exc.reason)
            return
        if ref is not None:
            reply: dict[str, Any] = {"type": "reply", "ref": ref, "ok": True}
            if extra:
                reply.update(extra)
            self.post(reply)

    def parse(self, text: str) -> dict[str, Any]:
        """The message as a dict (ValueError unless it is one strict JSON object within MAX_DEPTH).

        Both ways give the same verdicts (tests/accel/test_json.py holds json_object_spans to
        orjson's). A large publish that nothing on the server reads is not decoded at all: its data
        stays the client's text, checked, and is spliced into the envelope. A string is decoded all
        the same: broadcast as a str, it reaches plain connections as the text itself, not as JSON.
        """
        if self.endpoint.relays and accel.ENABLED and len(text) >= RELAY_MIN_SIZE:
            try:
                spans = accel.json_object_spans(text, MAX_DEPTH)
            except ValueError:
                spans = None  # refused: orjson below says why, in the same words as the build without accel
            if spans is not None:
                request: dict[str, Any] = {}
                for key, (start, end) in spans.items():
                    value = text[start:end]
                    relayed = key == "data" and value[0] != '"'
                    request[key] = orjson.Fragment(value) if relayed else orjson.loads(value)
                return request
        request = orjson.loads(text)  # JSONDecodeError is a ValueError
        if not isinstance(request, dict):
            raise ValueError("not an object")
        if _deeper_than(request, MAX_DEPTH):
            raise ValueError(f"nested more than {MAX_DEPTH} deep")
        return request

    # -- messages ---------------------------------------------------------------------------------

    async def join(self, request: dict[str, Any]) -> None:
        room = _room(request)
        since = request.get("since")
        if since is not None and (type(since) is not int or since < 0):
            raise ProtocolError("bad_message", "since must be a non-negative integer")
        presence = request.get("presence", False)
        if not isinstance(presence, bool):
            raise ProtocolError("bad_message", "presence must be true or false")
        if room in self.rooms:
            return
        if len(self.rooms) >= self.endpoint.max_rooms:
            raise ProtocolError("too_many_rooms", f"a connection may be in at most {self.endpoint.max_rooms} rooms")
        if not await self.allowed(self.endpoint.can_join, "can_join", room):
            raise ProtocolError("forbidden", f"not allowed to join {room!r}")
        if since is not None and self.hub.history_policy(room) is None:
            raise ProtocolError("no_history", f"room {room!r} keeps no history to resume from")
        relay = self.endpoint.relay(room) if presence else None
        if relay is not None:
            relay.watch(self)  # before joining: the changes that follow the member list must not be missed
        try:
            await self.hub.join(self.websocket, room, since)
        except BaseException as exc:
            if relay is not None:
                relay.unwatch(self)
            if not isinstance(exc, BackendUnavailable):
                raise
            # The history could not be read: out again, so that the client's retry replays it. The
            # backend's words (hosts, ports) stay in the log: they are no business of a client's.
            logger.warning("history of %r could not be read for a join: %s", room, exc)
            await self.hub.leave(self.websocket, room)
            raise ProtocolError("unavailable", "the room's history could not be read: try again") from None
        self.rooms.add(room)
        if relay is not None:
            self.watching[room] = relay
            await relay.send_members(self)

    async def leave(self, request: dict[str, Any]) -> None:
        room = _room(request)
        if room not in self.rooms:
            return
        self.rooms.discard(room)
        relay = self.watching.pop(room, None)
        if relay is not None:
            relay.unwatch(self)
        await self.hub.leave(self.websocket, room)

    async def publish(self, request: dict[str, Any]) -> dict[str, Any] | None:
        room = _room(request)
        if "data" not in request:
            raise ProtocolError("bad_message", "a publish needs data")
        if room not in self.rooms:
            raise ProtocolError("not_joined", f"join {room!r} before publishing to it")
        data = request["data"]
        endpoint = self.endpoint
        if endpoint.codec is not None:
            try:
                data = endpoint.codec.validate(data)
            except ValidationError as exc:
                raise ProtocolError("invalid_data", str(exc)) from None
        if not await self.allowed(endpoint.can_publish, "can_publish", room, data):
            raise ProtocolError("forbidden", f"not allowed to publish to {room!r}")
        if endpoint.on_publish is not None:
            result = await self.call(endpoint.on_publish, "on_publish", room, data)
            if result is not None:
                data = result
        try:
            seq = await self.hub.broadcast(room, data)
        except PublishError as exc:
            # Not confirmed is not lost (PublishError): the reason must not tell the client it is safe to
            # retry. The backend's words (hosts, ports) stay in the log.
            logger.warning("publish to %r not confirmed: %s", room, exc)
            raise ProtocolError("unavailable", "the pub/sub backend did not confirm the message, which may still "
                                "be delivered") from None
        except TypeError:
            logger.exception("on_publish for %r returned a value that cannot be sent", room)
            raise ProtocolError("internal", "the server could not send this message") from None
        return {"id": seq} if seq is not None else None

    async def authenticate(self, request: dict[str, Any]) -> dict[str, Any]:
        """New credentials on the open socket: the route's authentication runs again with `token`."""
        token = request.get("token")
        if not isinstance(token, str) or not token:
            raise ProtocolError("bad_message", "an auth needs a token (a non-empty string)")
        try:
            context = await refresh_credentials(self.websocket, token)
        except AuthenticationFailed as exc:
            raise ProtocolError("unauthorized", exc.detail) from None
        expires_at = context.expires_at
        if expires_at is not None and expires_at >= MAX_EXPIRES_AT:
            expires_at = None  # as good as never, and stated as such
        elif expires_at is not None and expires_at.is_integer():
            expires_at = int(expires_at)
        return {"expires_at": expires_at}

    async def ping(self, request: dict[str, Any]) -> None:
        if request.get("ref") is None:
            self.post({"type": "reply", "ok": True})

    # -- helpers ----------------------------------------------------------------------------------

    async def allowed(self, policy: Policy, name: str, *args: Any) -> bool:
        if policy is None or isinstance(policy, bool):
            return policy is True
        return await self.call(policy, name, *args) is True

    async def call(self, function: Callable[..., Any], name: str, *args: Any) -> Any:
        """Run the endpoint's own code; its failure is logged and answered, never sent as a traceback."""
        try:
            result = function(self.websocket, *args)
            if inspect.isawaitable(result):
                result = await result
        except ProtocolError:
            raise
        except Exception:
            logger.exception("%s of the realtime endpoint %s raised", name, self.websocket.path)
            raise ProtocolError("internal", f"{name} failed on the server") from None
        return result

    def post(self, message: dict[str, Any]) -> None:
        self.hub.post(self.websocket, orjson.dumps(message).decode())

    def error(self, ref: Any, code: str, reason: str) -> None:
        error = {"code": code, "reason": reason}
        if ref is None:
            self.post({"type": "error", "error": error})
        else:
            self.post({"type": "reply", "ref": ref, "ok": False, "error": error})

    def end(self) -> None:
        for relay in self.watching.values():
            relay.unwatch(self)
        self.watching.clear()


class PresenceRelay:
    """One room's presence for this process's protocol clients that asked for it.

    One subscription and one task per room (not per client) turn join and leave events into
    `presence` messages. A client that is still waiting for its member list has the changes
    buffered, and gets them right after the list: some may already be in it, which is harmless.
    """

    def __init__(self, endpoint: RealtimeEndpoint, room: str) -> None:
        self.endpoint = endpoint
        self.room = room
        self.loop = asyncio.get_running_loop()
        self.watchers: dict[Session, list[str] | None] = {}
        # Registered with the hub now, not when the task starts: the joins that follow must be heard.
        self.subscription: PresenceSubscription = endpoint.hub.on_presence(room)
        self.running = False
        self.task = self.loop.create_task(self.run())

    def watch(self, session: Session) -> None:
        self.watchers[session] = []  # changes wait here until its member list has been sent

    def unwatch(self, session: Session) -> None:
        self.watchers.pop(session, None)
        if not self.watchers:
            self.endpoint.relay_done(self)
            # A task cancelled before its first step never runs, so it could not close the
            # subscription: one that has not started yet finds no watchers and closes it itself.
            if self.running:
                self.task.cancel()

    async def send_members(self, session: Session) -> None:
        """Send `session` the full member list, then the changes held back meanwhile."""
        try:
            members = await self.endpoint.hub.members(self.room)
        except BackendUnavailable as exc:
            # Without the backend only changes can be told; the list follows the next overflow or join.
            logger.warning("presence list of %r unavailable: %s", self.room, exc)
            members = []
        held = self.watchers.get(session)
        if held is None:
            return  # it left meanwhile
        session.post({"type": "presence", "room": self.room, "members": [_member(m) for m in members]})
        self.watchers[session] = None
        for text in held:
            session.hub.post(session.websocket, text)

    async def run(self) -> None:
        self.running = True
        subscription = self.subscription
        dropped = 0
        try:
            while self.watchers:  # none when everyone left before this task started
                events = [await subscription.get()]  # opened on first use
                events.extend(subscription.drain())
                if subscription.dropped != dropped:
                    dropped = subscription.dropped  # changes were lost: everyone gets a fresh list
                    for session in list(self.watchers):
                        if self.watchers.get(session) is None:
                            self.watchers[session] = []
                            await self.send_members(session)
                    continue
                self.dispatch(events)
        except asyncio.CancelledError:
            pass
        except Exception:
            logger.exception("presence relay for %r failed", self.room)
        finally:
            # Not `async with`: a cancel while it opened would skip its exit, and leave the subscription registered.
            await subscription.aclose()

    def dispatch(self, events: list[PresenceEvent]) -> None:
        joins = [_member(e.member) for e in events if e.type == JOIN]
        leaves = [_member(e.member) for e in events if e.type != JOIN]
        text = orjson.dumps({"type": "presence", "room": self.room, "join": joins, "leave": leaves}).decode()
        hub = self.endpoint.hub
        for session, held in self.watchers.items():
            if held is None:
                hub.post(session.websocket, text)
            else:
                held.append(text)


def _member(member: Member) -> dict[str, Any]:
    return {"connection": member.connection_id, "user": member.user_id}


def _room(request: dict[str, Any]) -> str:
    room = request.get("room")
    if room is None:
        raise ProtocolError("bad_message", f"a {request['type']} needs a room")
    if not isinstance(room, str):
        raise ProtocolError("bad_message", "room must be a string")
    try:
        return check_room(room)
    except InvalidRoomName as exc:
        raise ProtocolError("invalid_room", str(exc)) from None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether a decoded JSON value nests deeper than `limit` (a container is one level, its members the next)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        members = item.values() if isinstance(item, dict) else item
        stack.extend((member, depth + 1) for member in members if isinstance(member, (dict, list)))
    return False


def _lenient_ref(text: str) -> Any:
    """The ref of a message the strict check refused, when Python's lenient decoder still reads one
    (lone surrogate escapes, NaN); None otherwise, or when that ref could not be sent back."""
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        return None
    ref = message.get("ref") if isinstance(message, dict) else None
    if not _valid_ref(ref):
        return None
    if isinstance(ref, str):
        try:
            ref.encode()
        except UnicodeEncodeError:  # a lone surrogate of its own: no reply could carry it
            return None
    return ref


def _valid_ref(ref: Any) -> bool:
    if ref is None:
        return True
    if type(ref) is int:
        return -(2**63) <= ref < 2**64  # what a reply can carry (orjson); Python's decoder reads any size
    return isinstance(ref, str) and len(ref) <= MAX_REF_LENGTH
