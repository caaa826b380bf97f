"""The sans-I/O server connection: bytes in, events out; calls in, bytes out.

``ServerConnection`` owns no socket, timer or task. Feed it what the peer sent with
:meth:`ServerConnection.receive_data`, which returns the events it produced; take whatever
it must send on its own (pongs, close replies, error answers) from
:meth:`ServerConnection.data_to_send`. The ``accept``/``reject``/``send_*``/``close``
methods return the bytes to write.

Events: a complete text message arrives as ``str`` and a complete binary message as
``bytes`` (no wrapper object on the hot path); everything else is an instance of
:class:`Request`, :class:`HandshakeFailed`, :class:`Ping`, :class:`Pong`,
:class:`CloseReceived` or :class:`ConnectionFailed`.
"""

from __future__ import annotations

import enum
import zlib

from bolt.accel import Utf8Validator, decode_header, mask, mask_join, scan_frames
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

from .deflate import DeflateOptions, InflateTooLarge, PerMessageDeflate, negotiate
from .handshake import (
    MAX_REQUEST_SIZE,
    HandshakeError,
    Request,
    accept_key,
    build_response,
    parse_request,
    validate_request,
)

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

DEFAULT_MAX_SIZE = 16 * 1024 * 1024  # uvicorn's ws_max_size default
DEFAULT_MAX_FRAGMENTS = 1 << 17
# Pongs kept for data_to_send(); beyond this only the latest pings are answered (RFC 6455 5.5.3
# allows answering just the most recent one), so pings from a peer that does not read cost no memory.
MAX_HELD_PONGS = 16
# A pending frame at least this long is unmasked straight out of its pieces; a shorter one is
# cheaper to join and parse together with whatever follows it.
_MASK_JOIN_MIN = 4096


class ConnectionState(enum.Enum):
    CONNECTING = "connecting"  # waiting for the upgrade request
    HANDSHAKE = "handshake"  # request received; waiting for accept() or reject()
    OPEN = "open"
    CLOSING = "closing"  # we sent a close frame; waiting for the peer's
    REMOTE_CLOSING = "remote_closing"  # the peer closed or failed; we owe a close frame
    CLOSED = "closed"


class HandshakeFailed:
    """The upgrade request was invalid; an HTTP error answer is queued in ``data_to_send``."""

    __slots__ = ("status", "detail")

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return f"HandshakeFailed({self.status}, {self.detail!r})"


class Ping:
    """The peer pinged; the pong is already queued in ``data_to_send``."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"Ping({self.payload!r})"


class Pong:
    """The peer answered a ping (or sent an unsolicited pong)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"Pong({self.payload!r})"


class CloseReceived:
    """The peer sent a close frame (``code`` 1005 when it carried none).

    If we had not closed yet, the state is now ``REMOTE_CLOSING``: answer with
    ``close(code)`` (messages may still be sent first). Otherwise the closing handshake is
    complete. Either way, close the transport after writing.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"CloseReceived({self.code}, {self.reason!r})"


class ConnectionFailed:
    """The peer broke the protocol; input is ignored from here on.

    Unless we had closed already, the state is now ``REMOTE_CLOSING``: send
    ``close(code, reason)`` and close the transport. Replies to messages received before
    the failure may be sent first.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"ConnectionFailed({self.code}, {self.reason!r})"


# What receive_data returns: whole messages as str/bytes, everything else as an event object.
Event = str | bytes | Request | HandshakeFailed | Ping | Pong | CloseReceived | ConnectionFailed


class LocalProtocolError(Exception):
    """The caller asked for something the connection's state does not allow."""


class _Fail(Exception):
    """Internal: abort parsing and fail the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


def _rotate(key: bytes, offset: int) -> bytes:
    """The masking key as seen from byte ``offset`` of a payload."""
    r = offset & 3
    return key[r:] + key[:r] if r else key


class ServerConnection:
    """Server side of one WebSocket connection (RFC 6455 + RFC 7692), without I/O.

    ``max_size`` bounds every message after inflation (1009 when exceeded);
    ``max_fragments`` bounds the frames of one message; ``deflate`` enables
    permessage-deflate with the given policy when the client offers it.
    """

    def __init__(
        self,
        max_size: int = DEFAULT_MAX_SIZE,
        max_fragments: int = DEFAULT_MAX_FRAGMENTS,
        deflate: DeflateOptions | None = None,
        max_request_size: int = MAX_REQUEST_SIZE,
    ) -> None:
        self.state = ConnectionState.CONNECTING
        self.max_size = max_size
        self.max_fragments = max_fragments
        self.deflate_options = deflate
        self.max_request_size = max_request_size
        self.request: Request | None = None
        self.subprotocol: str | None = None
        self.extension: PerMessageDeflate | None = None
        # Close code and reason once a close frame was sent or received.
        self.close_code: int | None = None
        self.close_reason = ""
        self._out: list[bytes] = []
        self._buf = bytearray()  # the request head, then bytes pipelined before accept()
        self._chunks: list[bytes] = []  # unparsed input once open: the start of one frame
        self._chunks_len = 0
        self._need = 0
        self._pending_key: tuple[bytes, int] | None = None  # text frame being validated piecewise
        # The message being reassembled (only when it spans frames or is compressed).
        self._msg_opcode = 0  # 0 when no message is in progress
        self._msg_compressed = False
        self._msg_parts: bytearray | None = None
        self._msg_size = 0  # payload bytes so far (inflated when compressed)
        self._msg_wire = 0  # wire bytes so far (bounds compressed input as well)
        self._msg_frames = 0
        self._utf8 = Utf8Validator()
        self._utf8_fed = 0  # bytes of the current, still incomplete text frame already validated
        self._utf8_active = False  # the validator holds state for the current message

    # ---------------------------------------------------------------- input

    def receive_data(self, data: bytes) -> list[Event]:
        """Feed bytes read from the peer; return the events they complete."""
        state = self.state
        if state is ConnectionState.OPEN and not self._chunks and not self._msg_opcode and not self._utf8_active:
            # The common read: whole simple messages, decoded in one call (text validated).
            found: list[Event]
            found, pos = scan_frames(data, 0, self.max_size)
            if pos == len(data):
                return found
            self._receive_frames(data, pos, found)
            return found
        events: list[Event] = []
        if state is ConnectionState.OPEN or state is ConnectionState.CLOSING:
            chunks = self._chunks
            if chunks:
                # Part of a frame is pending. Until the frame is complete just keep the
                # pieces: a large frame is then joined once, never regrown read by read.
                chunks.append(data)
                size = self._chunks_len + len(data)
                if size < self._need:
                    if self._pending_key is None or self._validate_chunk(data, events):
                        self._chunks_len = size
                    return events
                self._chunks = []
                self._chunks_len = 0
                if self._need >= _MASK_JOIN_MIN:
                    data = self._complete_frame(chunks, size, events)
                else:  # a small frame, or a piece that ended inside a frame header
                    data = b"".join(chunks)
            if data:
                pos = 0
                if self.state is ConnectionState.OPEN and not self._msg_opcode and not self._utf8_active:
                    found, pos = scan_frames(data, 0, self.max_size)
                    events.extend(found)
                self._receive_frames(data, pos, events)
        elif state is ConnectionState.CONNECTING:
            self._buf += data
            self._receive_request(events)
        elif state is ConnectionState.HANDSHAKE:
            # A client may pipeline frames behind its request; keep them until accept().
            self._buf += data
            if len(self._buf) > self.max_request_size + self.max_size:
                self._reject_pipelined(events)
        return events

    def _receive_frames(self, data: bytes, pos: int, events: list[Event]) -> None:
        """Parse the frames from ``data[pos]`` on; keep an incomplete last one for the next read."""
        consumed = self._parse(data, pos, events)
        if consumed < len(data) and self.state is not ConnectionState.CLOSED:
            rest = data[consumed:] if consumed else data  # a copy: never pin a large read
            if self.state is not ConnectionState.REMOTE_CLOSING:
                self._chunks = [rest]
                self._chunks_len = len(rest)

    def _complete_frame(self, chunks: list[bytes], size: int, events: list[Event]) -> bytes:
        """Deliver the pending frame, now complete in ``chunks``; return the bytes after it.

        Its header was checked when it began, so its payload is unmasked straight out of the
        pieces: one copy instead of joining them and then unmasking.
        """
        first = chunks[0]
        b0, hlen, _ = decode_header(first)  # complete: it was decoded when the frame began
        last = chunks[-1]
        cut = len(last) - (size - self._need)  # where the frame ends in the newest read
        parts = [memoryview(first)[hlen:], *chunks[1:-1], memoryview(last)[:cut]]
        payload = mask_join(parts, bytes(first[hlen - 4 : hlen]))
        self._need = 0
        self._pending_key = None
        try:
            if self._frame(b0, b0 & 0x0F, payload, events):
                return b""
        except _Fail as exc:
            self._fail(exc.code, exc.reason, events)
            return b""
        return last[cut:]

    def _validate_chunk(self, data: bytes, events: list[Event]) -> bool:
        """Fail fast on bad UTF-8 in the newest piece of a pending text frame."""
        key, hlen = self._pending_key  # type: ignore[misc]
        offset = self._chunks_len - hlen  # payload bytes of this frame before ``data``
        if self._utf8.feed(mask(data, _rotate(key, offset))):
            self._utf8_fed = offset + len(data)
            return True
        self._fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in text message", events)
        return False

    def data_to_send(self) -> bytes:
        """Bytes the connection produced on its own since the last call."""
        out = self._out
        if not out:
            return b""
        self._out = []
        return out[0] if len(out) == 1 else b"".join(out)

    def _max_pending(self) -> int:
        return self.max_size + (self.max_size >> 6) + 1024

    def _receive_request(self, events: list[Event]) -> None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self.max_request_size:
                self._refuse(HandshakeError(431, "Request headers too large."), events)
            return
        if end > self.max_request_size:
            self._refuse(HandshakeError(431, "Request headers too large."), events)
            return
        try:
            request = parse_request(bytes(buf[:end]))
            validate_request(request)
        except HandshakeError as exc:
            self._refuse(exc, events)
            return
        del buf[: end + 4]
        self.request = request
        self.state = ConnectionState.HANDSHAKE
        events.append(request)

    def _refuse(self, exc: HandshakeError, events: list[Event]) -> None:
        body = exc.detail.encode("utf-8") + b"\n"
        self._out.append(self._http_response(exc.status, exc.headers, body))
        self.state = ConnectionState.CLOSED
        self._buf = bytearray()
        events.append(HandshakeFailed(exc.status, exc.detail))

    def _reject_pipelined(self, events: list[Event]) -> None:
        self._refuse(HandshakeError(400, "Too much data sent before the handshake completed."), events)

    # --------------------------------------------------------------- frames

    def _parse(self, buf: bytes | bytearray, pos: int, events: list[Event]) -> int:
        """Parse every complete frame in ``buf`` from ``pos`` on; return where the first incomplete one starts."""
        end = len(buf)
        self._need = 0  # bytes that complete the pending frame, when its header is known
        self._pending_key = None
        try:
            with memoryview(buf) as view:
                while True:
                    try:
                        header = decode_header(buf, pos)
                    except ValueError as exc:
                        raise _Fail(CloseCode.PROTOCOL_ERROR, str(exc)) from None
                    if header is None:
                        break
                    b0, start, length = header
                    opcode = b0 & 0x0F
                    if opcode >= 8:
                        self._check_control_header(b0, opcode, length)
                    else:
                        self._check_data_header(b0, opcode)
                        compressed = bool(b0 & 0x40) if opcode else self._msg_compressed
                        self._check_size(length, compressed)
                    stop = start + length
                    if stop > end:
                        if end < start:
                            break  # the masking key is still incomplete
                        self._need = stop - pos
                        if opcode < 8 and not compressed:
                            self._validate_partial(opcode, view, start, end, bytes(buf[start - 4 : start]), start - pos)
                        break
                    payload = mask(view[start:stop], bytes(buf[start - 4 : start])) if length else b""
                    pos = stop
                    if self._frame(b0, opcode, payload, events):
                        return pos  # closed: ignore whatever follows
        except _Fail as exc:
            self._fail(exc.code, exc.reason, events)
            return end
        return pos

    @staticmethod
    def _check_control_header(b0: int, opcode: int, length: int) -> None:
        if opcode > OP_PONG:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "reserved opcode")
        if not b0 & 0x80:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
        if length > 125:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "control frame too long")
        if b0 & 0x70:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "reserved bits set on a control frame")

    def _frame(self, b0: int, opcode: int, payload: bytes, events: list[Event]) -> bool:
        """Handle one complete frame whose header was checked; return True once closed."""
        if opcode == OP_TEXT and b0 & 0xC0 == 0x80 and not self._utf8_active:
            # A whole, uncompressed text message in one frame.
            try:
                text = payload.decode("utf-8")
            except UnicodeDecodeError:
                raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in text message") from None
            if self.state is ConnectionState.OPEN:
                events.append(text)
        elif opcode == OP_BINARY and b0 & 0xC0 == 0x80:
            if self.state is ConnectionState.OPEN:
                events.append(payload)
        elif opcode < 8:
            self._data_frame(b0, opcode, payload, events)
        else:
            return self._control_frame(opcode, payload, events)
        return False

    def _check_data_header(self, b0: int, opcode: int) -> None:
        rsv = b0 & 0x70
        if opcode == 0:
            if not self._msg_opcode:
                raise _Fail(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
            if rsv:
                raise _Fail(CloseCode.PROTOCOL_ERROR, "reserved bits set on a continuation frame")
            return
        if opcode > OP_BINARY:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "reserved opcode")
        if self._msg_opcode:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "new message before the previous one ended")
        if rsv and (rsv != 0x40 or self.extension is None):
            raise _Fail(CloseCode.PROTOCOL_ERROR, "reserved bits set without a negotiated extension")

    def _check_size(self, length: int, compressed: bool) -> None:
        """Refuse a frame that would take its message over the limit, before buffering it."""
        if compressed:
            # Inflated size is checked while inflating; this bounds the compressed input.
            if self._msg_wire + length > self._max_pending():
                raise _Fail(CloseCode.MESSAGE_TOO_BIG, f"message exceeds {self.max_size} bytes")
        elif self._msg_size + length > self.max_size:
            raise _Fail(CloseCode.MESSAGE_TOO_BIG, f"message exceeds {self.max_size} bytes")

    def _validate_partial(self, opcode: int, view: memoryview, start: int, end: int, key: bytes, hlen: int) -> None:
        """Validate the part of a text frame received so far, to fail fast on bad UTF-8."""
        if not (opcode == OP_TEXT or (opcode == 0 and self._msg_opcode == OP_TEXT)):
            return
        if not self._utf8_active:
            self._utf8.reset()
            self._utf8_active = True
        self._pending_key = (key, hlen)  # later pieces are checked as they arrive
        fed = self._utf8_fed
        if end - start <= fed:
            return
        chunk = mask(view[start + fed : end], _rotate(key, fed))
        self._utf8_fed = end - start
        if not self._utf8.feed(chunk):
            raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in text message")

    def _data_frame(self, b0: int, opcode: int, payload: bytes, events: list[Event]) -> None:
        """A data frame that is fragmented, compressed or follows partial validation."""
        fin = b0 & 0x80
        if opcode:
            self._msg_opcode = opcode
            self._msg_compressed = bool(b0 & 0x40)
            self._msg_frames = 1
            self._msg_size = 0
            self._msg_wire = 0
            self._msg_parts = None
            if not self._utf8_active:
                self._utf8.reset()
        else:
            self._msg_frames += 1
            if self._msg_frames > self.max_fragments:
                raise _Fail(CloseCode.MESSAGE_TOO_BIG, "message has too many fragments")
        self._msg_wire += len(payload)
        ext = self.extension
        if self._msg_compressed:
            assert ext is not None
            budget = self.max_size - self._msg_size
            try:
                data = ext.inflate(payload, budget) if payload else b""
                if fin:
                    data += ext.finish(budget - len(data))
            except InflateTooLarge:
                ext.abort()
                raise _Fail(CloseCode.MESSAGE_TOO_BIG, f"message exceeds {self.max_size} bytes") from None
            except zlib.error:  # corrupt compressed data
                ext.abort()
                raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid compressed data") from None
        else:
            data = payload
        self._msg_size += len(data)
        if self._msg_opcode == OP_TEXT:
            fed = self._utf8_fed
            self._utf8_fed = 0
            self._utf8_active = True
            if not self._utf8.feed(memoryview(data)[fed:] if fed else data):
                raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in text message")
            if fin and not self._utf8.finish():
                raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "truncated UTF-8 at the end of a text message")
        parts = self._msg_parts
        if fin:
            whole: bytes | bytearray
            if parts is None:
                whole = data
            else:
                parts += data
                whole = parts
            is_text = self._msg_opcode == OP_TEXT
            self._msg_opcode = 0
            self._msg_size = 0
            self._msg_wire = 0
            self._msg_compressed = False
            self._msg_parts = None
            self._utf8_active = False
            if self.state is ConnectionState.OPEN:
                if is_text:
                    try:
                        events.append(whole.decode("utf-8"))
                    except UnicodeDecodeError:
                        raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid UTF-8 in text message") from None
                else:
                    events.append(bytes(whole))
        elif parts is None:
            self._msg_parts = bytearray(data)
        else:
            parts += data

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
        if len(payload) == 1:
            raise _Fail(CloseCode.PROTOCOL_ERROR, "close frame with a 1-byte payload")
        if payload:
            code = int.from_bytes(payload[:2], "big")
            if not is_valid_close_code(code):
                raise _Fail(CloseCode.PROTOCOL_ERROR, f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _Fail(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "close reason is not valid UTF-8") from None
        else:
            code, reason = CloseCode.NO_STATUS_RECEIVED, ""
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
        self._chunks = []
        self._chunks_len = 0
        self._msg_parts = None
        if self.extension is not None:
            self.extension.abort()

    # --------------------------------------------------------------- output

    def accept(self, subprotocol: str | None = None, headers: list[tuple[bytes, bytes]] | None = None) -> bytes:
        """Answer the request with 101 and open the connection.

        Bytes the client sent right after its request stay buffered: call
        ``receive_data(b"")`` after writing the answer to process them.
        """
        if self.state is not ConnectionState.HANDSHAKE or self.request is None:
            raise LocalProtocolError(f"cannot accept in state {self.state.value}")
        request = self.request
        out = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", accept_key(request.key)),
        ]
        if subprotocol:
            self.subprotocol = subprotocol
            out.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        if self.deflate_options is not None and request.extensions:
            self.extension = negotiate(request.extensions, self.deflate_options)
            if self.extension is not None:
                out.append((b"sec-websocket-extensions", self.extension.response))
        if headers:
            reserved = {name for name, _ in out}
            out.extend((name.lower(), value) for name, value in headers if name.lower() not in reserved)
        self.state = ConnectionState.OPEN
        if self._buf:
            self._chunks = [bytes(self._buf)]
            self._chunks_len = len(self._buf)
            self._buf = bytearray()
        return build_response(101, out)

    def reject(self, status: int, headers: list[tuple[bytes, bytes]] | None = None, body: bytes = b"") -> bytes:
        """Refuse the upgrade with an ordinary HTTP response; the connection is then closed."""
        if self.state is not ConnectionState.HANDSHAKE:
            raise LocalProtocolError(f"cannot reject in state {self.state.value}")
        self.state = ConnectionState.CLOSED
        self._buf = bytearray()
        return self._http_response(status, headers or [], body)

    @staticmethod
    def _http_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
        names = {name.lower() for name, _ in headers}
        extra = []
        if b"content-type" not in names and body:
            extra.append((b"content-type", b"text/plain; charset=utf-8"))
        if b"content-length" not in names:
            extra.append((b"content-length", str(len(body)).encode("ascii")))
        if b"connection" not in names:
            extra.append((b"connection", b"close"))
        return build_response(status, list(headers) + extra, body)

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
