"""Bytes to frames: the client frames of one connection, decoded as they arrive.

:class:`FrameDecoder` decodes headers with :func:`bolt.accel.decode_header` (the one header
decoder, in Rust or its pure-Python twin), checks them, unmasks payloads, and hands data frames
to the connection's :class:`~bolt.protocol.message.MessageAssembler` and control frames to the
connection. A frame cut by the end of a read is kept until the rest arrives; so are, undecoded,
the frames behind the last message a caller asked for (see :meth:`FrameDecoder.receive`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bolt.accel import decode_header, mask, mask_join, scan_frames
from bolt.wire import OP_PONG, CloseCode

from .events import Event, ProtocolError
from .message import MessageAssembler

__all__ = ["ControlHandler", "FrameDecoder"]

# A pending frame at least this long is unmasked straight out of its pieces; a shorter one is
# cheaper to join and parse together with whatever follows it.
MASK_JOIN_MIN = 4096

# No bound on the messages one call decodes.
NO_LIMIT = sys.maxsize

# Handles a ping, pong or close frame (opcode, payload, events); True once the connection is closed.
ControlHandler = Callable[[int, bytes, list[Event]], bool]


def _header(data: bytes | bytearray, pos: int) -> tuple[int, int, int] | None:
    try:
        header: tuple[int, int, int] | None = decode_header(data, pos)
    except ValueError as exc:  # an unmasked frame or a malformed length
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, str(exc)) from None
    return header


def _check_control(b0: int, opcode: int, length: int) -> None:
    if opcode > OP_PONG:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved opcode")
    if not b0 & 0x80:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "fragmented control frame")
    if length > 125:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "control frame too long")
    if b0 & 0x70:
        raise ProtocolError(CloseCode.PROTOCOL_ERROR, "reserved bits set on a control frame")


class FrameDecoder:
    """Decodes the frames of one connection and passes them on in order."""

    __slots__ = ("messages", "_pending", "_pending_len", "_need", "_text_key", "_held", "_held_pos")

    def __init__(self, messages: MessageAssembler) -> None:
        self.messages = messages
        # The start of a frame cut by the end of a read, kept as pieces so that a large frame
        # is joined once, never regrown read by read. None when nothing is pending (most of
        # the time: no list is kept per idle connection).
        self._pending: list[bytes] | None = None
        self._pending_len = 0
        self._need = 0  # the pending frame's whole length once its header is known, else 0
        self._text_key: bytes | None = None  # masking key of a pending text frame validated as it arrives
        # Input not decoded yet, from _held_pos on: what followed the last message a call was allowed
        # to return, or frames pipelined before the handshake ended. Never beside _pending.
        self._held: bytes | None = None
        self._held_pos = 0

    @property
    def buffered(self) -> int:
        """Bytes held for the next call: an incomplete frame, or input not decoded yet."""
        if self._held is not None:
            return len(self._held) - self._held_pos
        return self._pending_len

    @property
    def holding(self) -> bool:
        """Whether input is held undecoded (behind a cut), which ``receive(b"", ...)`` goes on with."""
        return self._held is not None

    def hold(self, data: bytes) -> None:
        """Keep ``data`` (frames pipelined before the handshake ended) to decode with the next read."""
        if data:
            self._held = data
            self._held_pos = 0

    def clear(self) -> None:
        """Drop whatever is pending: the connection is ending."""
        self._pending = None
        self._pending_len = 0
        self._need = 0
        self._text_key = None
        self._held = None

    def receive(self, data: bytes, events: list[Event], control: ControlHandler, limit: int = NO_LIMIT) -> None:
        """Decode ``data``: complete messages go to ``events``, control frames to ``control``.

        At most ``limit`` messages: decoding stops behind the last of them, and the rest of the
        input (frames complete or not, control frames too) is held, undecoded, until the next
        call, which decodes it before its own ``data`` (``receive(b"", ...)`` goes on with it).
        Raises :class:`ProtocolError` when the peer broke the protocol; ``events`` then holds
        what came before. After a close frame the rest of the input is dropped.
        """
        pos = 0
        if self._held is not None:  # input held behind an earlier limit, or before the handshake ended
            held, pos = self._held, self._held_pos
            self._held = None
            if data:  # rare: reading goes on while input is held only once the connection is closing
                data = held[pos:] + data
                pos = 0
            else:
                data = held
        if self._pending is not None:
            if limit <= 0:  # a caller's bound of 0: the rest of the frame is held, not joined
                self._held, self._held_pos = data, pos
                return
            before = len(events)
            joined = self._join(self._pending, data[pos:] if pos else data, events, control)
            if joined is None:
                return
            data, pos = joined, 0
            limit -= len(events) - before  # a large frame completed in _join may end a message
        messages = self.messages
        if messages.idle:
            # The common read: whole simple messages, decoded in one call (text validated). The
            # frame loop takes over at the first other frame and judges it.
            found, pos = scan_frames(data, pos, messages.max_size, limit)
            events += found
            if pos == len(data):
                return
            limit -= len(found)
        self._decode(data, pos, events, control, limit)

    def _join(self, pending: list[bytes], data: bytes, events: list[Event], control: ControlHandler) -> bytes | None:
        """Add ``data`` to the pending frame; return the bytes to decode, or None while it is incomplete."""
        pending.append(data)
        size = self._pending_len + len(data)
        if size < self._need:
            self._pending_len = size
            if self._text_key is not None:
                self.messages.validate_more(data, self._text_key)
            return None
        self._pending = None
        self._pending_len = 0
        need, self._need = self._need, 0
        self._text_key = None
        if need < MASK_JOIN_MIN:  # a small frame, or a piece that ended inside a frame header
            return b"".join(pending)
        # Its header was checked when it began: unmask the payload straight out of the pieces,
        # one copy instead of joining them and then unmasking.
        first, last = pending[0], pending[-1]
        b0, start, _ = _header(first, 0)  # type: ignore[misc]  # complete: it was decoded before
        cut = len(last) - (size - need)  # where the frame ends in the newest read
        parts = [memoryview(first)[start:], *pending[1:-1], memoryview(last)[:cut]]
        payload = mask_join(parts, bytes(first[start - 4 : start]))
        if self._deliver(b0, payload, events, control):
            return None
        return last[cut:]

    def _decode(self, data: bytes, pos: int, events: list[Event], control: ControlHandler, limit: int) -> None:
        """Decode the frames from ``data[pos]`` on, up to ``limit`` messages; keep what is left."""
        messages = self.messages
        end = len(data)
        if limit <= 0:  # nothing may be decoded (a caller's bound of 0): keep it all
            if pos < end:
                self._held, self._held_pos = data, pos
            return
        with memoryview(data) as view:
            while (header := _header(data, pos)) is not None:
                b0, start, length = header
                opcode = b0 & 0x0F
                compressed = False
                if opcode >= 8:
                    _check_control(b0, opcode, length)
                else:
                    compressed = messages.check_frame(b0, opcode, length)
                stop = start + length
                if stop > end:
                    if start <= end:  # the masking key is in: from here on only the payload is missing
                        self._need = stop - pos
                        key = bytes(view[start - 4 : start])
                        if opcode < 8 and not compressed and messages.validate_prefix(opcode, view[start:end], key):
                            self._text_key = key
                    break
                payload = mask(view[start:stop], bytes(view[start - 4 : start])) if length else b""
                pos = stop
                if self._deliver(b0, payload, events, control):
                    return  # closed: ignore whatever follows
                if b0 & 0x80 and opcode < 8:  # a final data frame: it ended a message
                    limit -= 1
                    if not limit:
                        if pos < end:  # the rest waits, undecoded, for the next call
                            self._held, self._held_pos = data, pos
                        return
        if pos < end:
            rest = data[pos:] if pos else data  # a copy: never pin a large read
            self._pending = [rest]
            self._pending_len = len(rest)

    def _deliver(self, b0: int, payload: bytes, events: list[Event], control: ControlHandler) -> bool:
        """Pass on one complete frame; True once the connection is closed."""
        opcode = b0 & 0x0F
        if opcode >= 8:
            return control(opcode, payload, events)
        message = self.messages.add(b0, opcode, payload)
        if message is not None:
            events.append(message)
        return False
