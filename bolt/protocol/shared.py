"""One message written to many connections, each distinct wire encoding built once.

A broadcast reaches connections that differ in how a message goes on the wire: uncompressed, or
compressed with permessage-deflate. Compression with ``server_no_context_takeover`` starts from a
fresh compressor for every message, so its output depends only on the compression settings: all
connections that share those settings can share the compressed frame too. Connections that keep
their compression context between messages cannot; for them :meth:`SharedMessage.frame_for` gives
None and the message goes through the connection's own encoder.
"""

from __future__ import annotations

from .deflate import PerMessageDeflate, deflate_message
from .frames import OP_BINARY, OP_TEXT, encode_frame

__all__ = ["SharedMessage"]


class SharedMessage:
    """A text (str) or binary (bytes) message to be written, as is, to many connections.

    Nothing is encoded until a connection asks for a frame, so a message no connection takes
    (every recipient on another server, say) costs nothing.
    """

    __slots__ = ("data", "_payload", "_plain", "_deflated")

    def __init__(self, data: str | bytes) -> None:
        self.data = data
        self._payload = data if isinstance(data, bytes) else None
        self._plain: bytes | None = None
        self._deflated: dict[tuple[int, int, int], bytes] = {}

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

    def frame_for(self, extension: PerMessageDeflate | None) -> bytes | None:
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
            frame = self._deflated[key] = encode_frame(self.opcode, deflate_message(self.payload, *key), rsv1=True)
        return frame
