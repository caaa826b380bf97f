"""The sans-I/O server connection: bytes in, events out; calls in, bytes out.

``ServerConnection`` owns no socket, timer or task. Feed it what the peer sent with
:meth:`ServerConnection.receive_data`, which returns the events it produced (see
:mod:`bolt.protocol.events`); take whatever it must send on its own (pongs, close replies,
error answers) from :meth:`ServerConnection.data_to_send`. The ``accept``/``reject``/``send_*``/
``close`` methods return the bytes to write.

The connection holds the state machine, the opening and closing handshakes and the control
frames; it composes a :class:`~bolt.protocol.frames.FrameDecoder` (bytes to frames) and a
:class:`~bolt.protocol.message.MessageAssembler` (frames to messages).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from bolt.wire import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    CloseCode,
    encode_close_payload,
    encode_frame,
    encode_header,
    is_valid_close_code,
)

from .deflate import DeflateOptions, PerMessageDeflate, negotiate
from .events import CloseReceived, ConnectionFailed, Event, HandshakeFailed, Ping, Pong, ProtocolError
from .frames import NO_LIMIT, FrameDecoder
from .handshake import (
    MAX_REQUEST_SIZE,
    HandshakeError,
    Request,
    accept_key,
    closing_response,
    field_size,
    head_too_large,
    header_lines,
    parse_request,
    request_from_fields,
    validate_request,
)
from .message import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_SIZE, MessageAssembler

__all__ = [
    "CloseReceived",
    "ConnectionFailed",
    "ConnectionState",
    "Event",
    "HandshakeFailed",
    "LocalProtocolError",
    "Ping",
    "Pong",
    "Request",
    "ServerConnection",
]

# Pongs kept for data_to_send(); beyond this only the latest pings are answered (RFC 6455 5.5.3
# allows answering just the most recent one), so pings from a peer that does not read cost no memory.
MAX_HELD_PONGS = 16

# The start of every 101 answer, up to the accept key.
_SWITCHING_PROTOCOLS = (
    b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ")
_ACCEPT_HEADERS = frozenset((b"upgrade", b"connection", b"sec-websocket-accept"))


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"  # waiting for the upgrade request
    HANDSHAKE = "handshake"  # request received; waiting for accept() or reject()
    OPEN = "open"
    CLOSING = "closing"  # we sent a close frame; waiting for the peer's
    REMOTE_CLOSING = "remote_closing"  # the peer closed or failed; we owe a close frame
    CLOSED = "closed"


class LocalProtocolError(Exception):
    """The caller asked for something the connection's state does not allow."""


def _close_payload(payload: bytes) -> tuple[int, str]:
    """The code and reason of a received close frame (RFC 6455 section 5.5.1)."""
    if not payload:
        return CloseCode.NO_STATUS_RECEIVED, ""
    if len(payload) == 1:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not is_valid_close_code(code):
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
    try:
        return code, payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "close reason is not valid UTF-8") from None


class ServerConnection:
    """Server side of one WebSocket connection (RFC 6455 + RFC 7692), without I/O.

    ``max_size`` bounds every message after inflation (1009 when exceeded);
    ``max_fragments`` bounds the frames of one message; ``deflate`` enables
    permessage-deflate with the given policy when the client offers it;
    ``response_headers`` (a server's ``date`` and ``server``, say) go first on the refusals
    the connection answers on its own.
    """

    __slots__ = (
        "state",
        "deflate_options",
        "max_request_size",
        "response_headers",
        "request",
        "subprotocol",
        "extension",
        "close_code",
        "close_reason",
        "_out",
        "_buf",
        "_messages",
        "_frames",
    )

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        deflate: DeflateOptions | None = None,
        max_request_size: int = MAX_REQUEST_SIZE,
        response_headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        self.state = ConnectionState.CONNECTING
        self.deflate_options = deflate
        self.max_request_size = max_request_size
        self.response_headers = response_headers
        self.request: Request | None = None
        self.subprotocol: str | None = None
        self.extension: PerMessageDeflate | None = None
        # Close code and reason once a close frame was sent or received.
        self.close_code: int | None = None
        self.close_reason = ""
        self._out: list[bytes] = []
        self._buf = bytearray()  # the request head, then bytes pipelined before accept()
        self._messages = MessageAssembler(max_size, max_fragments)
        self._frames = FrameDecoder(self._messages)

    @property
    def max_size(self) -> int:
        return self._messages.max_size

    # ---------------------------------------------------------------- input

    def receive_data(self, data: bytes, max_messages: int | None = None) -> list[Event]:
        """Feed bytes read from the peer; return the events they complete.

        With ``max_messages``, at most that many messages (``str`` and ``bytes`` events) are
        returned: decoding stops behind the last of them, and the rest of the input stays in the
        connection, undecoded (control frames behind the cut too), until the next call, which
        decodes it first; ``receive_data(b"", n)`` goes on with it alone (see :attr:`holding`).
        The bound applies while the connection is open: once we have closed, messages are
        dropped, and everything is decoded.
        """
        state = self.state
        events: list[Event] = []
        if state is ConnectionState.OPEN or state is ConnectionState.CLOSING:
            closing = state is ConnectionState.CLOSING
            limit = NO_LIMIT if max_messages is None or closing else max_messages
            try:
                self._frames.receive(data, events, self._control_frame, limit)
            except ProtocolError as exc:
                self._fail(exc.code, exc.reason, events)
            if closing:  # we closed: messages are no longer delivered
                events = [event for event in events if not isinstance(event, (str, bytes))]
        elif state is ConnectionState.CONNECTING:
            self._buf += data
            self._receive_request(events)
        elif state is ConnectionState.HANDSHAKE:
            # A client may pipeline frames behind its request; keep them until accept().
            self._buf += data
            if len(self._buf) > self.max_request_size + self.max_size:
                self._refuse(HandshakeError(400, "Too much data sent before the handshake completed."), events)
        return events

    @property
    def holding(self) -> bool:
        """Whether received input is held undecoded behind a ``max_messages`` cut (or pipelined
        behind the request and not yet decoded after :meth:`accept`)."""
        return self._frames.holding

    def data_to_send(self) -> bytes:
        """Bytes the connection produced on its own since the last call."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def receive_request(self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]],
                        http_version: bytes = b"1.1") -> list[Event]:
        """Feed an upgrade request an HTTP parser has read, instead of its bytes; return its events.

        For a server whose HTTP layer parsed the request already: the result, and what
        :meth:`data_to_send` then holds, are those of :meth:`receive_data` given the request
        written out again (``METHOD target HTTP/<http_version>``, one ``name: value`` line per field).
        """
        if self.state is not ConnectionState.CONNECTING or self._buf:
            raise LocalProtocolError(f"cannot take a parsed request in state {self.state.value}")
        events: list[Event] = []
        # The size of that head, without its final blank line, as _receive_request measures it.
        line = len(method) + len(target) + len(http_version) + 7
        size = line + sum(field_size(name, value) for name, value in fields)
        if size > self.max_request_size:
            self._refuse(head_too_large(line > self.max_request_size), events)
            return events
        try:
            request = request_from_fields(method, target, fields, http_version)
        except HandshakeError as exc:
            self._refuse(exc, events)
            return events
        self._take_request(request, events)
        return events

    def _receive_request(self, events: list[Event]) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if (end if end >= 0 else len(buf)) > self.max_request_size:
            line_end = buf.find(b"\r\n", 0, self.max_request_size + 2)
            self._refuse(head_too_large(line_end < 0 or line_end > self.max_request_size), events)
            return
        if end < 0:
            return
        try:
            request = parse_request(bytes(buf[:end]))
        except HandshakeError as exc:
            self._refuse(exc, events)
            return
        del buf[: end + 4]
        self._take_request(request, events)

    def _take_request(self, request: Request, events: list[Event]) -> None:
        try:
            validate_request(request)
        except HandshakeError as exc:
            self._refuse(exc, events)
            return
        self.request = request
        self.state = ConnectionState.HANDSHAKE
        events.append(request)

    def _refuse(self, exc: HandshakeError, events: list[Event]) -> None:
        body = exc.detail.encode("utf-8") + b"\n"
        self._out.append(closing_response(exc.status, [*self.response_headers, *exc.headers], body))
        self.state = ConnectionState.CLOSED
        self._buf = bytearray()
        events.append(HandshakeFailed(exc.status, exc.detail))

    def _control_frame(self, opcode: int, payload: bytes, events: list[Event]) -> bool:
        """Handle a ping, pong or close; return True once the connection is closed."""
        if opcode == OP_PING:
            if self.state is ConnectionState.OPEN:
                out = self._out  # once open it holds nothing but pongs
                if len(out) >= MAX_HELD_PONGS:
                    del out[0]
                out.append(encode_frame(OP_PONG, payload))
            events.append(Ping(payload))
            return False
        if opcode == OP_PONG:
            events.append(Pong(payload))
            return False
        code, reason = _close_payload(payload)
        if self.state is ConnectionState.OPEN:
            self.state = ConnectionState.REMOTE_CLOSING
        else:
            self.state = ConnectionState.CLOSED
        self.close_code, self.close_reason = code, reason
        self._release()
        events.append(CloseReceived(code, reason))
        return True

    def _fail(self, code: int, reason: str, events: list[Event]) -> None:
        if self.state is ConnectionState.OPEN:
            self.state = ConnectionState.REMOTE_CLOSING
            self.close_code, self.close_reason = code, reason
        else:
            self.state = ConnectionState.CLOSED
        self._release()
        events.append(ConnectionFailed(code, reason))

    def _release(self) -> None:
        self._buf = bytearray()
        self._frames.clear()
        self._messages.release()

    # --------------------------------------------------------------- output

    def accept(self, subprotocol: str | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
        """Answer the request with 101 and open the connection.

        Bytes the client sent right after its request stay buffered: call
        ``receive_data(b"")`` after writing the answer to process them.
        """
        if self.state is not ConnectionState.HANDSHAKE or self.request is None:
            raise LocalProtocolError(f"cannot accept in state {self.state.value}")
        request = self.request
        # The lines this engine writes itself are correct by construction; what a caller chose is checked.
        head = [_SWITCHING_PROTOCOLS, accept_key(request.key), b"\r\n"]
        chosen = []
        if subprotocol:
            self.subprotocol = subprotocol
            chosen.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        if self.deflate_options is not None and request.extensions:
            self.extension = self._messages.extension = negotiate(request.extensions, self.deflate_options)
            if self.extension is not None:
                head.append(b"sec-websocket-extensions: %s\r\n" % self.extension.response)
        if headers:
            reserved = _ACCEPT_HEADERS  # a caller's header does not repeat one the handshake has set
            if subprotocol:
                reserved = reserved | {b"sec-websocket-protocol"}
            if self.extension is not None:
                reserved = reserved | {b"sec-websocket-extensions"}
            chosen += [(name.lower(), value) for name, value in headers if name.lower() not in reserved]
        if chosen:
            head.append(header_lines(chosen))
        head.append(b"\r\n")
        self.state = ConnectionState.OPEN
        self.request = None  # answered: an open connection does not keep it
        if self._buf:
            self._frames.hold(bytes(self._buf))
            self._buf = bytearray()
        return b"".join(head)

    def reject(self, status: int, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"") -> bytes:
        """Refuse the upgrade with an ordinary HTTP response; the connection is then closed."""
        if self.state is not ConnectionState.HANDSHAKE:
            raise LocalProtocolError(f"cannot reject in state {self.state.value}")
        self.state = ConnectionState.CLOSED
        self._buf = bytearray()
        return closing_response(status, headers or [], body)

    def send_text(self, text: str) -> bytes:
        """One text message as a single frame."""
        if self.state is not ConnectionState.OPEN and self.state is not ConnectionState.REMOTE_CLOSING:
            raise LocalProtocolError(f"cannot send in state {self.state.value}")
        data = text.encode("utf-8")
        ext = self.extension
        if ext is None:
            n = len(data)
            return bytes((0x81, n)) + data if n < 126 else encode_frame(OP_TEXT, data)
        if len(data) >= ext.min_size:
            return encode_frame(OP_TEXT, ext.compress(data), rsv1=True)
        return encode_frame(OP_TEXT, data)

    def send_bytes(self, data: bytes) -> bytes:
        """One binary message as a single frame."""
        if self.state is not ConnectionState.OPEN and self.state is not ConnectionState.REMOTE_CLOSING:
            raise LocalProtocolError(f"cannot send in state {self.state.value}")
        ext = self.extension
        if ext is None:
            n = len(data)
            return bytes((0x82, n)) + data if n < 126 else encode_frame(OP_BINARY, data)
        if len(data) >= ext.min_size:
            return encode_frame(OP_BINARY, ext.compress(data), rsv1=True)
        return encode_frame(OP_BINARY, data)

    def send_message_parts(self, data: bytes | str) -> tuple[bytes, bytes]:
        """One message as (header, payload), to be written in that order.

        For large messages: the payload is written as is, never copied behind a header.
        """
        if self.state is not ConnectionState.OPEN and self.state is not ConnectionState.REMOTE_CLOSING:
            raise LocalProtocolError(f"cannot send in state {self.state.value}")
        if isinstance(data, str):
            opcode, data = OP_TEXT, data.encode("utf-8")
        else:
            opcode = OP_BINARY
        ext = self.extension
        if ext is not None and len(data) >= ext.min_size:
            data = ext.compress(data)
            return encode_header(opcode, len(data), rsv1=True), data
        return encode_header(opcode, len(data)), data

    def send_ping(self, payload: bytes = b"") -> bytes:
        """A ping frame (payload at most 125 bytes)."""
        if self.state is not ConnectionState.OPEN:
            raise LocalProtocolError(f"cannot ping in state {self.state.value}")
        if len(payload) > 125:
            raise ValueError("ping payload is limited to 125 bytes")
        return encode_frame(OP_PING, payload)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> bytes:
        """Send a close frame.

        From ``OPEN`` this starts the closing handshake (state ``CLOSING``: wait for the
        peer's close, bounded by a timeout, before closing the socket). From
        ``REMOTE_CLOSING`` it completes it (``CLOSED``): after a :class:`CloseReceived`
        pass its code to echo it; after a :class:`ConnectionFailed` pass the failure code.
        Pongs still waiting in ``data_to_send`` are dropped: nothing may follow a close frame.
        """
        state = self.state
        if state is not ConnectionState.OPEN and state is not ConnectionState.REMOTE_CLOSING:
            raise LocalProtocolError(f"cannot close in state {state.value}")
        if code != CloseCode.NO_STATUS_RECEIVED and not is_valid_close_code(code):
            raise ValueError(f"invalid close code {code}")
        self._out = []  # pongs not yet collected: nothing may follow the close frame
        if state is ConnectionState.OPEN:
            self.state = ConnectionState.CLOSING
            self.close_code, self.close_reason = code, reason
        else:
            self.state = ConnectionState.CLOSED
        return encode_frame(OP_CLOSE, encode_close_payload(code, reason))

    def release_idle(self) -> None:
        """Free compression state that is not needed while the connection is idle."""
        if self.extension is not None:
            self.extension.release_idle()
