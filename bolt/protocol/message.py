"""Frames to messages: fragmentation, permessage-deflate, UTF-8 validation and size limits.

:class:`MessageAssembler` takes the data frames of one connection in order, checks each header
against the message in progress, and gives back whole messages (``str`` or ``bytes``).
"""

from __future__ import annotations

import zlib

from bolt.accel import Utf8Validator, mask
from bolt.wire import OP_BINARY, OP_CONT, OP_TEXT, CloseCode

from .deflate import InflateTooLarge, PerMessageDeflate
from .events import ProtocolError

__all__ = ["DEFAULT_MAX_FRAGMENTS", "DEFAULT_MAX_SIZE", "MessageAssembler"]

DEFAULT_MAX_SIZE = 16 * 1024 * 1024  # uvicorn's ws_max_size default
DEFAULT_MAX_FRAGMENTS = 1 << 17

_BAD_UTF8 = "invalid UTF-8 in text message"
_TRUNCATED_UTF8 = "truncated UTF-8 at the end of a text message"


def _rotate(key: bytes, offset: int) -> bytes:
    """The masking key as seen from byte ``offset`` of a payload."""
    r = offset & 3
    return key[r:] + key[:r] if r else key


class MessageAssembler:
    """The messages of one connection, reassembled from its data frames.

    ``max_size`` bounds every message after inflation (1009 when exceeded); ``max_fragments``
    bounds the frames of one message; ``extension`` is the negotiated permessage-deflate, if any.
    ``idle`` is True between messages, when a frame may start a new one and nothing is buffered.
    """

    __slots__ = (
        "max_size",
        "max_fragments",
        "extension",
        "idle",
        "_opcode",
        "_compressed",
        "_parts",
        "_size",
        "_wire",
        "_frames",
        "_utf8",
        "_utf8_fed",
        "_utf8_active",
    )

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE, max_fragments: int = DEFAULT_MAX_FRAGMENTS) -> None:
        self.max_size = max_size
        self.max_fragments = max_fragments
        self.extension: PerMessageDeflate | None = None
        self.idle = True
        self._opcode = 0  # of the message in progress; 0 when none is
        self._compressed = False
        self._parts: bytearray | None = None  # only once a message spans frames
        self._size = 0  # payload bytes so far (inflated when compressed)
        self._wire = 0  # wire bytes so far (bounds compressed input as well)
        self._frames = 0
        self._utf8: Utf8Validator | None = None  # made for the first text message that spans frames or is compressed
        self._utf8_fed = 0  # bytes of the current, still incomplete text frame already validated
        self._utf8_active = False  # the validator holds state for the current message

    @property
    def buffered(self) -> int:
        """Bytes of the message in progress held so far."""
        return len(self._parts) if self._parts is not None else 0

    # ------------------------------------------------------------- headers

    def check_frame(self, b0: int, opcode: int, length: int) -> bool:
        """Check a data frame's header against the message in progress; return whether it is compressed.

        Runs before the payload is buffered, so an oversized message is refused at its header.
        """
        if opcode:
            self._check_start(b0, opcode)
            compressed = bool(b0 & 0x40)
        else:
            self._check_continuation(b0)
            compressed = self._compressed
        if compressed:
            # The inflated size is checked while inflating; this bounds the compressed input.
            if self._wire + length > self.max_size + (self.max_size >> 6) + 1024:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message exceeds {self.max_size} bytes")
        elif self._size + length > self.max_size:
            raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message exceeds {self.max_size} bytes")
        return compressed

    def _check_start(self, b0: int, opcode: int) -> None:
        if opcode > OP_BINARY:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved opcode")
        if self._opcode:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "new message before the previous one ended")
        rsv = b0 & 0x70
        if rsv and (rsv != 0x40 or self.extension is None):
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set without a negotiated extension")

    def _check_continuation(self, b0: int) -> None:
        if not self._opcode:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "continuation frame without a message")
        if b0 & 0x70:
            raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set on a continuation frame")

    # ------------------------------------------- text frames still arriving

    def validate_prefix(self, opcode: int, received: memoryview, key: bytes) -> bool:
        """Validate the (masked) start of an uncompressed frame that is still incomplete.

        Returns True for a text frame, whose later pieces then go to :meth:`validate_more`, so
        bad UTF-8 fails the connection as soon as it arrives.
        """
        if not (opcode == OP_TEXT or (opcode == OP_CONT and self._opcode == OP_TEXT)):
            return False
        if not self._utf8_active:
            self._reset_utf8()
            self._utf8_active = True
            self.idle = False
        fed = self._utf8_fed
        if len(received) > fed:
            self._utf8_fed = len(received)
            self._feed(mask(received[fed:], _rotate(key, fed)))
        return True

    def validate_more(self, data: bytes, key: bytes) -> None:
        """Validate the next piece of the incomplete text frame :meth:`validate_prefix` began."""
        fed = self._utf8_fed
        self._utf8_fed = fed + len(data)
        self._feed(mask(data, _rotate(key, fed)))

    def _feed(self, data: bytes | memoryview) -> None:
        assert self._utf8 is not None  # made when the message began
        if not self._utf8.feed(data):
            raise ProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, _BAD_UTF8)

    # -------------------------------------------------------------- frames

    def add(self, b0: int, opcode: int, payload: bytes) -> str | bytes | None:
        """Take a complete data frame whose header was checked; return the message it completes."""
        if b0 & 0xC0 == 0x80 and opcode and self.idle:  # a whole uncompressed message in one frame
            if opcode == OP_BINARY:
                return payload
            try:
                return payload.decode("utf-8")
            except UnicodeDecodeError:
                raise ProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, _BAD_UTF8) from None
        if opcode:
            self._begin(opcode, bool(b0 & 0x40))
        else:
            self._frames += 1
            if self._frames > self.max_fragments:
                raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, "message has too many fragments")
        fin = bool(b0 & 0x80)
        self._wire += len(payload)
        data = self._inflate(payload, fin) if self._compressed else payload
        self._size += len(data)
        if self._opcode == OP_TEXT:
            self._validate(data, fin)
        if fin:
            return self._finish(data)
        if self._parts is None:
            self._parts = bytearray(data)
        else:
            self._parts += data
        return None

    def _begin(self, opcode: int, compressed: bool) -> None:
        self._opcode = opcode
        self._compressed = compressed
        self._frames = 1
        self._size = 0
        self._wire = 0
        self._parts = None
        self.idle = False
        if not self._utf8_active:
            self._reset_utf8()

    def _reset_utf8(self) -> None:
        if self._utf8 is None:
            self._utf8 = Utf8Validator()
        else:
            self._utf8.reset()

    def _inflate(self, payload: bytes, fin: bool) -> bytes:
        ext = self.extension
        assert ext is not None  # check_frame refuses RSV1 without it
        budget = self.max_size - self._size
        try:
            data = ext.inflate(payload, budget) if payload else b""
            if fin:
                data += ext.finish(budget - len(data))
        except InflateTooLarge:
            ext.abort()
            raise ProtocolError(CloseCode.MESSAGE_TOO_BIG, f"message exceeds {self.max_size} bytes") from None
        except zlib.error:  # corrupt compressed data
            ext.abort()
            raise ProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, "invalid compressed data") from None
        return data

    def _validate(self, data: bytes, fin: bool) -> None:
        """Validate the rest of a text frame (what validate_prefix has not seen)."""
        fed = self._utf8_fed
        self._utf8_fed = 0
        self._utf8_active = True
        self._feed(memoryview(data)[fed:] if fed else data)
        if fin:
            assert self._utf8 is not None  # made when the message began
            if not self._utf8.finish():
                raise ProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, _TRUNCATED_UTF8)

    def _finish(self, data: bytes) -> str | bytes:
        whole: bytes | bytearray = data
        if self._parts is not None:
            whole = self._parts
            whole += data
        is_text = self._opcode == OP_TEXT
        self._opcode = 0
        self._size = 0
        self._wire = 0
        self._compressed = False
        self._parts = None
        self._utf8_active = False
        self.idle = True
        if not is_text:
            return bytes(whole)
        try:
            return whole.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(CloseCode.INVALID_FRAME_PAYLOAD_DATA, _BAD_UTF8) from None

    def release(self) -> None:
        """Drop the message in progress and any inflate state: the connection is ending."""
        self._parts = None
        if self.extension is not None:
            self.extension.abort()
