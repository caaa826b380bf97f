"""What goes on the wire, shared by the framework and the protocol engine.

The frame encoder and opcodes of RFC 6455, close codes, and :class:`SharedMessage` (one message
written to many connections). Both :mod:`bolt.realtime` and :mod:`bolt.protocol` import this
module; it imports neither, so ``import bolt`` never loads the protocol engine.

Server frames are never masked (RFC 6455 section 5.1), so encoding is a header in front of
the payload. Client frame headers are decoded by ``decode_header`` in :mod:`bolt.accel` (Rust,
or its pure-Python twin), the one decoder every receive path uses.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "OP_BINARY",
    "OP_CLOSE",
    "OP_CONT",
    "OP_PING",
    "OP_PONG",
    "OP_TEXT",
    "FRAMES",
    "MAX_CLOSE_REASON",
    "CloseCode",
    "SharedMessage",
    "encode_close_payload",
    "encode_frame",
    "encode_header",
    "is_valid_close_code",
    "truncate_reason",
]

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

FIN = 0x80
RSV1 = 0x40  # permessage-deflate's bit; RSV2 and RSV3 (0x30) belong to no extension bolt speaks

_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack


class CloseCode(enum.IntEnum):
    """RFC 6455 close codes (section 7.4.1) plus the IANA-registered 1012-1014."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS_RECEIVED = 1005  # never on the wire: "the close frame had no code"
    ABNORMAL_CLOSURE = 1006  # never on the wire: "the connection dropped without a close frame"
    INVALID_FRAME_PAYLOAD_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015  # never on the wire: "the TLS handshake failed"


# A close frame carries at most 125 bytes: the 2-byte code and up to 123 bytes of reason.
MAX_CLOSE_REASON = 123


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may appear in a close frame.

    1000-1003 and 1007-1014 are the registered codes an endpoint may send; 3000-3999 are
    for libraries and frameworks, 4000-4999 for applications. 1004-1006 and 1015 are
    reserved and must never be sent.
    """
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def truncate_reason(reason: str) -> str:
    """``reason`` cut to the 123 bytes of UTF-8 a close frame allows, on a character boundary."""
    raw = reason.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON:
        return reason
    return raw[:MAX_CLOSE_REASON].decode("utf-8", "ignore")


def encode_frame(opcode: int, payload: bytes, fin: bool = True, rsv1: bool = False) -> bytes:
    """One unmasked frame: header and payload joined, ready for a single transport write."""
    b0 = opcode | (FIN if fin else 0) | (RSV1 if rsv1 else 0)
    n = len(payload)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return _pack_16(b0, 126, n) + payload
    return _pack_64(b0, 127, n) + payload


def encode_header(opcode: int, length: int, rsv1: bool = False) -> bytes:
    """The header of a final, unmasked frame carrying ``length`` payload bytes."""
    b0 = opcode | FIN | (RSV1 if rsv1 else 0)
    if length < 126:
        return bytes((b0, length))
    if length < 65536:
        return _pack_16(b0, 126, length)
    return _pack_64(b0, 127, length)


def encode_close_payload(code: int, reason: str = "") -> bytes:
    """Payload of a close frame; 1005 means "no code" and gives an empty payload."""
    if code == CloseCode.NO_STATUS_RECEIVED:
        return b""
    return code.to_bytes(2, "big") + truncate_reason(reason).encode("utf-8")


class Compression(Protocol):
    """The side of a negotiated compression extension (permessage-deflate) a broadcast needs."""

    min_size: int

    @property
    def shared_key(self) -> tuple[int, int, int] | None: ...

    def compress(self, data: bytes) -> bytes: ...


class SharedMessage:
    """A text (str) or binary (bytes) message to be written, as is, to many connections.

    A broadcast reaches connections that differ in how a message goes on the wire: uncompressed,
    or compressed with permessage-deflate. Compression with ``server_no_context_takeover`` starts
    from a fresh compressor for every message, so its output depends only on the compression
    settings (the extension's ``shared_key``): connections that share them share the compressed
    frame too. Connections that keep their compression context between messages cannot; for them
    :meth:`frame_for` gives None and the message goes through the connection's own encoder.

    Nothing is encoded until a connection asks for a frame, so a message no connection takes
    (every recipient on another server, say) costs nothing.

    A message made with ``batched=True`` promises that whoever hands it to writers calls
    :meth:`flush` after the last of them, before anything else can write to those connections. A
    server's writer may then :meth:`hold` a connection instead of writing to it at once, and
    :meth:`flush` writes the frame to all the held connections in one call.
    """

    __slots__ = ("data", "batched", "_payload", "_plain", "_deflated", "_held")

    def __init__(self, data: str | bytes, batched: bool = False) -> None:
        self.data = data
        self.batched = batched
        self._payload = data if isinstance(data, bytes) else None
        self._plain: bytes | None = None
        self._deflated: dict[tuple[int, int, int], bytes] = {}
        # [frame, write, connections] per frame held back, in the order they were first held
        self._held: list[tuple[bytes, Callable[[bytes, list[Any]], None], list[Any]]] | None = None

    @property
    def payload(self) -> bytes:
        """The message's bytes (UTF-8 for text)."""
        payload = self._payload
        if payload is None:
            payload = self._payload = self.data.encode("utf-8")  # type: ignore[union-attr]
        return payload

    @property
    def opcode(self) -> int:
        return OP_BINARY if isinstance(self.data, bytes) else OP_TEXT

    def frame_for(self, extension: Compression | None) -> bytes | None:
        """The whole frame for a connection with this negotiated extension, or None if it needs its own."""
        if extension is None or len(self.payload) < extension.min_size:
            plain = self._plain
            if plain is None:
                plain = self._plain = encode_frame(self.opcode, self.payload)
            return plain
        key = extension.shared_key
        if key is None:
            return None
        frame = self._deflated.get(key)
        if frame is None:
            # With a shared key the extension compresses each message from a fresh compressor.
            frame = self._deflated[key] = encode_frame(self.opcode, extension.compress(self.payload), rsv1=True)
        return frame

    def hold(self, frame: bytes, connection: Any, write: Callable[[bytes, list[Any]], None]) -> None:
        """Keep `connection` to get `frame` at :meth:`flush`, which calls `write(frame, connections)` once."""
        held = self._held
        if held is None:
            self._held = [(frame, write, [connection])]
            return
        for each in held:
            if each[0] is frame and each[1] is write:
                each[2].append(connection)
                return
        held.append((frame, write, [connection]))

    def flush(self) -> None:
        """Write the frames held back by :meth:`hold` to their connections."""
        held, self._held = self._held, None
        if held is not None:
            for frame, write, connections in held:
                write(frame, connections)


#: The ASGI extension (``scope["extensions"]``) by which bolt's WebSocket protocol offers a
#: connection's :class:`SharedFrames` writer to the framework.
FRAMES = "bolt.frames"


class SharedFrames(Protocol):
    """The value of the `bolt.frames` ASGI extension: a connection's writer of shared messages.

    bolt's WebSocket protocol offers itself, so the extension costs an idle connection nothing.
    """

    def write_shared(self, message: SharedMessage) -> bool:
        """Write `message` in this connection's encoding if it can now; False: send it through ASGI instead."""
        ...

    async def send(self, message: dict[str, Any]) -> None:
        """The ASGI send the server gave the app, to compare with the one a handler holds."""
        ...
