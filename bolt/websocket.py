"""The `WebSocket` a handler receives, its states and exceptions; `CloseCode` comes from `bolt.wire`."""
from __future__ import annotations

import enum
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import orjson

from bolt.connection import HTTPConnection
from bolt.datastructures import raw_headers
from bolt.models import Codec, InvalidJSON, ValidationError, codec_for, json_default
from bolt.wire import MAX_CLOSE_REASON, CloseCode, is_valid_close_code

if TYPE_CHECKING:
    from bolt.realtime.hub import Connection, Hub
    from bolt.realtime.outbox import OutboxSettings

#: An ASGI `receive` callable, and an ASGI `send` callable.
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@functools.cache
def _credential_expiry() -> ModuleType:
    """`bolt.security.expiry`, imported on first use (bolt.security imports this module) and then kept:
    an import statement run on every accept costs more than the rest of the deadline's bookkeeping."""
    from bolt.security import expiry

    return expiry


def check_close(code: int, reason: str) -> None:
    """Raise ValueError unless `code` and `reason` can go in a close frame."""
    if not is_valid_close_code(code):
        raise ValueError(f"close code {code} cannot be sent in a close frame")
    if len(reason.encode("utf-8")) > MAX_CLOSE_REASON:
        raise ValueError(f"close reason is longer than {MAX_CLOSE_REASON} bytes of UTF-8")


class WebSocketState(enum.Enum):
    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


class WebSocketDisconnect(Exception):
    """The client closed the connection (or it dropped): `code` and `reason` are the client's."""

    def __init__(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocketClose(Exception):
    """Raise in a handler to close the connection with this code and reason."""

    def __init__(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        check_close(code, reason)
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class WebSocketStateError(RuntimeError):
    """An operation the connection's state does not allow, such as sending before `accept()`."""


class MessageTypeError(TypeError):
    """A text message arrived where binary was expected, or the reverse. Uncaught, it closes with 1003."""

    close_code = CloseCode.UNSUPPORTED_DATA


class InvalidJSONMessage(ValueError):
    """A message that should hold JSON does not. Uncaught, it closes with 1007."""

    close_code = CloseCode.INVALID_FRAME_PAYLOAD_DATA


class MessageValidationError(InvalidJSONMessage):
    """A JSON message that does not match the handler's model. Uncaught, it closes with 1007.

    `location` names the offending field (e.g. `items[2].price`), `detail` says what is wrong.
    """

    def __init__(self, location: str, detail: str) -> None:
        super().__init__(f"invalid message: {location}: {detail}" if location else f"invalid message: {detail}")
        self.location = location
        self.detail = detail


class WebSocket(HTTPConnection):
    """One WebSocket connection, as handed to a `@api.websocket` handler."""

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send,
                 path_params: dict[str, Any] | None = None, hub: Hub | None = None) -> None:
        super().__init__(scope, path_params)
        self._receive = receive
        self._send = send
        self.client_state = WebSocketState.CONNECTING
        self.application_state = WebSocketState.CONNECTING
        self.accepted_subprotocol: str | None = None
        # Set once the client's close (or our own) is known; receive_* then raises it again.
        self._disconnect: WebSocketDisconnect | None = None
        self._connect_received = False
        self._closed_by_app = False
        #: The api's hub (rooms, broadcast, presence), which the connection joins on accept; None
        #: for a WebSocket built outside a `BoltAPI`, which then has no rooms.
        self.hub = hub
        #: The route's send-queue settings (`@api.websocket(outbox=...)`), handed to the hub on accept;
        #: None for the hub's defaults.
        self.outbox: OutboxSettings | None = None
        #: The hub's record of this connection (its id, rooms and send queue) from accept() until it ends.
        self.hub_connection: Connection | None = None

    @property
    def subprotocols(self) -> list[str]:
        """The subprotocols the client offered, in its order of preference."""
        return list(self.scope.get("subprotocols") or ())

    # -- the ASGI transport ------------------------------------------------------------------------

    def intercept(self, receive: Callable[[Receive], Receive] | None = None,
                  send: Callable[[Send], Send] | None = None) -> None:
        """Put a layer around this connection's ASGI `receive` and/or `send`.

        Each function is given the callable in use and returns the one every later message goes
        through; a layer added later sits outside the earlier ones. bolt's message rate limit and
        its metrics are such layers. The layer is set up once, so messages pay only its own cost.
        """
        if receive is not None:
            self._receive = receive(self._receive)
        if send is not None:
            self._send = send(self._send)

    @property
    def asgi_send(self) -> Send:
        """The ASGI `send` this connection writes through, with the layers added so far.

        It is the send the app was called with until something `intercept`s it: comparing the two
        tells whether every message still reaches the server unchanged.
        """
        return self._send

    # -- handshake -------------------------------------------------------------------------------

    async def _receive_connect(self) -> None:
        if self._connect_received:
            return
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._client_gone(message)
        if message["type"] != "websocket.connect":
            raise WebSocketStateError(f"expected 'websocket.connect', got {message['type']!r}")
        self._connect_received = True

    async def accept(self, subprotocol: str | None = None,
                     headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        """Complete the handshake, optionally choosing one of `subprotocols` and adding headers."""
        if self.application_state is not WebSocketState.CONNECTING:
            raise WebSocketStateError("accept() called on a connection that is already accepted or closed")
        if subprotocol is not None and subprotocol not in self.subprotocols:
            raise ValueError(f"subprotocol {subprotocol!r} was not offered by the client")
        await self._receive_connect()
        try:
            await self._send({"type": "websocket.accept", "subprotocol": subprotocol,
                              "headers": raw_headers(headers)})
        except OSError:
            self._lost()  # the client left before the handshake completed
        self.application_state = self.client_state = WebSocketState.CONNECTED
        self.accepted_subprotocol = subprotocol
        if self.hub is not None:
            await self.hub.connect(self, self.outbox)
        expires_at = getattr(self.scope.get("auth"), "expires_at", None)
        if expires_at is not None:
            _credential_expiry().watch(self, expires_at)

    # -- receiving -------------------------------------------------------------------------------

    def _client_gone(self, message: Mapping[str, Any]) -> NoReturn:
        self._disconnect = WebSocketDisconnect(message.get("code", CloseCode.NORMAL), message.get("reason") or "")
        self.client_state = self.application_state = WebSocketState.DISCONNECTED
        # A copy: the one kept here must not hold the traceback (its frames hold this WebSocket), or
        # every ended connection is a reference cycle that only the cyclic GC frees.
        raise WebSocketDisconnect(self._disconnect.code, self._disconnect.reason)

    def _refuse_receive(self) -> NoReturn:
        if self._disconnect is not None:
            raise WebSocketDisconnect(self._disconnect.code, self._disconnect.reason)
        raise WebSocketStateError("receive called before accept()")

    def _unexpected(self, message: Mapping[str, Any], wanted: str) -> NoReturn:
        """Raise the right error for a message that is not the `wanted` ("text"/"bytes") kind."""
        if message["type"] == "websocket.disconnect":
            self._client_gone(message)
        if message["type"] != "websocket.receive":
            raise WebSocketStateError(f"unexpected ASGI message {message['type']!r}")
        if wanted == "text":
            raise MessageTypeError("expected a text message, received binary")
        raise MessageTypeError("expected a binary message, received text")

    async def receive(self) -> dict[str, Any]:
        """The next `websocket.receive` ASGI message; raises WebSocketDisconnect once the client is gone."""
        if self.application_state is not WebSocketState.CONNECTED:
            self._refuse_receive()
        message = await self._receive()
        if message["type"] != "websocket.receive":
            self._unexpected(message, "")
        return message

    # receive_text/receive_bytes await the server directly rather than through receive(): they are
    # the per-message hot path, and each coroutine layer costs measurably at tens of thousands a second.

    async def receive_text(self) -> str:
        if self.application_state is not WebSocketState.CONNECTED:
            self._refuse_receive()
        message = await self._receive()
        text = message.get("text")
        if text is None:
            self._unexpected(message, "text")
        return text

    async def receive_bytes(self) -> bytes:
        if self.application_state is not WebSocketState.CONNECTED:
            self._refuse_receive()
        message = await self._receive()
        data = message.get("bytes")
        if data is None:
            self._unexpected(message, "bytes")
        return data

    async def receive_json(self, model: Any = None) -> Any:
        """The next message (text or binary) parsed as JSON, and decoded into `model` when given.

        `model` is a msgspec Struct, a dataclass, a TypedDict, a pydantic model or an annotation
        built from them (`list[Item]`, ...), decoded and checked in one pass by its library (see
        bolt.models); a message that does not fit raises MessageValidationError.
        """
        if model is not None:
            return await self._receive_model(codec_for(model))
        message = await self.receive()
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""  # neither: not JSON, said as such
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidJSONMessage(f"message is not valid JSON: {exc}") from None

    async def _receive_model(self, codec: Codec) -> Any:
        message = await self.receive()
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""  # neither: not JSON, said as such
        try:
            return codec.decode(data)
        except InvalidJSON as exc:
            raise InvalidJSONMessage(f"message is not valid JSON: {exc}") from None
        except ValidationError as exc:
            raise MessageValidationError(exc.location, exc.message) from None

    def iter_text(self) -> AsyncIterator[str]:
        """Text messages until the client disconnects (then WebSocketDisconnect is raised)."""
        return _Messages(self.receive_text)

    def iter_bytes(self) -> AsyncIterator[bytes]:
        """Binary messages until the client disconnects (then WebSocketDisconnect is raised)."""
        return _Messages(self.receive_bytes)

    def iter_json(self, model: Any = None) -> AsyncIterator[Any]:
        """JSON messages (decoded into `model` when given) until the client disconnects."""
        if model is None:
            return _Messages(self.receive_json)
        codec = codec_for(model)  # found once, not per message
        return _Messages(lambda: self._receive_model(codec))

    # -- rooms -----------------------------------------------------------------------------------

    async def join(self, room: str, since: int | None = None) -> None:
        """Join `room` of the api's hub (left automatically when the connection ends).

        With `since` (the last id the client saw, in a room with history) the messages it missed are
        sent first, or a gap signal when they are no longer kept.
        """
        await self._room_hub().join(self, room, since)

    async def leave(self, room: str) -> None:
        """Leave `room`."""
        await self._room_hub().leave(self, room)

    def _room_hub(self) -> Hub:
        if self.hub is None:
            raise RuntimeError("rooms need a WebSocket served by a BoltAPI route (this one has no hub)")
        return self.hub

    # -- sending ---------------------------------------------------------------------------------

    def _refuse_send(self) -> NoReturn:
        if self.application_state is WebSocketState.CONNECTING:
            raise WebSocketStateError("cannot send before accept()")
        if self._closed_by_app or self._disconnect is None:
            raise WebSocketStateError("cannot send after close()")
        raise WebSocketDisconnect(self._disconnect.code, self._disconnect.reason)

    async def send(self, message: dict[str, Any]) -> None:
        """Send a raw ASGI `websocket.send` message on an accepted connection."""
        if self.application_state is not WebSocketState.CONNECTED:
            self._refuse_send()
        try:
            await self._send(message)
        except OSError:
            self._lost()

    def _lost(self) -> NoReturn:
        # The server reports a vanished client by OSError (ASGI 2.4); to the handler it is a disconnect.
        self._disconnect = WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE)
        self.client_state = self.application_state = WebSocketState.DISCONNECTED
        raise WebSocketDisconnect(CloseCode.ABNORMAL_CLOSURE) from None

    # send_text/send_bytes repeat send()'s few lines instead of calling it: one await fewer per message.

    async def send_text(self, data: str) -> None:
        if self.application_state is not WebSocketState.CONNECTED:
            self._refuse_send()
        try:
            await self._send({"type": "websocket.send", "text": data})
        except OSError:
            self._lost()

    async def send_bytes(self, data: bytes) -> None:
        if self.application_state is not WebSocketState.CONNECTED:
            self._refuse_send()
        try:
            await self._send({"type": "websocket.send", "bytes": data})
        except OSError:
            self._lost()

    async def send_json(self, data: Any, mode: str = "text") -> None:
        """Serialize with orjson and send as a text message (or binary with mode="binary").

        Structs and pydantic models may be in `data`, as in a JSON response.
        """
        payload = orjson.dumps(data, default=json_default)
        if mode == "binary":
            await self.send({"type": "websocket.send", "bytes": payload})
        else:
            await self.send({"type": "websocket.send", "text": payload.decode()})

    async def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the connection. Closing twice, or after the client left, does nothing."""
        await self._close(code, reason, by_handler=True)

    async def end(self, code: int, reason: str = "") -> None:
        """Close an accepted connection from outside its handler (another task: a session that ended,
        credentials that expired). The handler's next receive or send raises WebSocketDisconnect with
        this code and reason, as if the client had left, so it finishes through its usual path.
        Ending a connection that is not open does nothing."""
        check_close(code, reason)
        if self.application_state is WebSocketState.CONNECTED:
            await self._close(code, reason, by_handler=False)

    async def _close(self, code: int, reason: str, by_handler: bool) -> None:
        check_close(code, reason)
        if self.application_state is WebSocketState.DISCONNECTED:
            return
        if self.application_state is WebSocketState.CONNECTING:
            self._closed_by_app = True  # a refused handshake: the server answers 403
        else:
            self._closed_by_app = by_handler
            self._disconnect = WebSocketDisconnect(code, reason)
            if self.hub_connection is not None:
                # Nothing may follow the close frame: a broadcast sent after it is an error in the server.
                self.hub_connection.outbox.close()
        self.application_state = WebSocketState.DISCONNECTED
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:
            pass  # the client left first: the close we wanted has happened


class _Messages:
    """The iterator behind `iter_text`/`iter_bytes`/`iter_json`: each step is one receive call,
    with no async-generator frame between the handler's loop and the server."""

    __slots__ = ("_next",)

    def __init__(self, receive: Any) -> None:
        self._next = receive

    def __aiter__(self) -> _Messages:
        return self

    def __anext__(self) -> Any:
        return self._next()
