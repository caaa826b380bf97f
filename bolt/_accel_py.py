"""Pure-Python twins of the functions in the Rust extension ``bolt._accel``.

Same names, signatures and results as the extension; ``bolt.accel`` picks one of the two.
The differential tests in ``tests/accel/`` hold both to the same vectors.
"""

from __future__ import annotations

from codecs import utf_8_decode

Buffer = bytes | bytearray | memoryview

__all__ = [
    "Utf8Validator",
    "mask",
    "mask_into",
    "mask_join",
    "scan_frames",
    "utf8_error_offset",
    "validate_utf8",
]


# Payloads are XOR-ed this many bytes at a time: one big-integer XOR per block runs in C, and
# blocks that fit in cache make large payloads about 2.5x faster than a single huge integer.
_BLOCK = 16384


def _xor_block(block: Buffer, key_int: int, n: int) -> bytes:
    return (int.from_bytes(block, "little") ^ key_int).to_bytes(n, "little")


def _key_int(key: bytes, n: int) -> int:
    return int.from_bytes((key * (n // 4 + 1))[:n], "little")


def mask(data: Buffer, key: bytes) -> bytes:
    """Return ``data`` XOR-ed with the repeating 4-byte masking ``key`` (RFC 6455 section 5.3)."""
    n = len(data)
    if len(key) != 4:
        raise ValueError("masking key must be 4 bytes")
    if n <= _BLOCK:  # the common case, inlined: small messages are the hot path
        if not n:
            return b""
        repeated = (key * (n // 4 + 1))[:n]
        return (int.from_bytes(data, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")
    view = memoryview(data)
    whole = n - n % _BLOCK
    key_int = _key_int(key, _BLOCK)  # _BLOCK is a multiple of 4: every block starts at key[0]
    parts = [_xor_block(view[i : i + _BLOCK], key_int, _BLOCK) for i in range(0, whole, _BLOCK)]
    if whole < n:
        parts.append(_xor_block(view[whole:], _key_int(key, n - whole), n - whole))
    return b"".join(parts)


def mask_join(parts: list[Buffer], key: bytes) -> bytes:
    """Return the concatenation of ``parts`` XOR-ed with ``key``; the key phase runs on across parts."""
    return mask(b"".join(parts), key)


def mask_into(buf: bytearray, key: bytes, offset: int = 0) -> None:
    """XOR ``buf[offset:]`` in place with ``key``; the key's first byte applies at ``offset``."""
    if not isinstance(buf, bytearray):
        raise TypeError("mask_into needs a bytearray")
    if not 0 <= offset <= len(buf):
        raise ValueError("offset out of range")
    buf[offset:] = mask(memoryview(buf)[offset:], key)


# Allowed range of the byte after each lead byte (Unicode table 3-7); later bytes are 80..BF.
_SECOND_BYTE = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


def _tail_is_prefix(tail: bytes) -> bool:
    """Whether ``tail`` (an incomplete sequence CPython held back) can still become valid.

    CPython's incremental decoder defers judging some incomplete sequences, such as a
    surrogate half ``ED A0``, until more bytes arrive; this check makes it fail as early as
    the Rust side does.
    """
    if len(tail) < 2:
        return True
    low, high = _SECOND_BYTE.get(tail[0], (0x80, 0xBF))
    return low <= tail[1] <= high and all(0x80 <= b <= 0xBF for b in tail[2:])


class Utf8Validator:
    """Incremental UTF-8 validator for a message that arrives in pieces.

    ``feed`` fails as soon as the bytes so far cannot begin valid UTF-8, also in the middle
    of a multi-byte sequence; ``finish`` also rejects a truncated final sequence.
    ``error_offset`` is the stream offset of the first invalid sequence, or -1.
    """

    __slots__ = ("_pending", "_fed", "error_offset")

    def __init__(self) -> None:
        self._pending = b""  # bytes of an incomplete sequence at the end of the last feed
        self._fed = 0  # bytes fed before ``_pending``
        self.error_offset = -1

    def reset(self) -> None:
        """Forget everything fed so far, ready for a new message."""
        self._pending = b""
        self._fed = 0
        self.error_offset = -1

    def feed(self, data: Buffer) -> bool:
        """Validate the next piece; False once the stream can no longer be valid UTF-8."""
        if self.error_offset >= 0:
            return False
        chunk = self._pending + data if self._pending else data
        try:
            _, consumed = utf_8_decode(chunk, "strict", False)
        except UnicodeDecodeError as exc:
            self.error_offset = self._fed + exc.start
            return False
        tail = bytes(chunk[consumed:])
        if not _tail_is_prefix(tail):
            self.error_offset = self._fed + consumed
            return False
        self._fed += consumed
        self._pending = tail
        return True

    def finish(self) -> bool:
        """True iff everything fed was valid and ends on a complete character."""
        if self.error_offset >= 0:
            return False
        if self._pending:
            self.error_offset = self._fed
            return False
        return True


def validate_utf8(data: Buffer) -> bool:
    """Whether ``data`` is complete, valid UTF-8."""
    try:
        utf_8_decode(data, "strict", True)
    except UnicodeDecodeError:
        return False
    return True


def utf8_error_offset(data: Buffer) -> int:
    """Offset of the first invalid or truncated sequence in ``data``, or -1 when valid."""
    try:
        utf_8_decode(data, "strict", True)
    except UnicodeDecodeError as exc:
        return exc.start
    return -1


def scan_frames(data: Buffer, pos: int = 0, max_size: int = 2**63) -> tuple[list[str | bytes], int]:
    """Decode the run of simple frames that starts at ``data[pos]``.

    Simple means final, uncompressed, text or binary, masked, minimally encoded, at most
    ``max_size`` payload bytes, complete in ``data``, and for text valid UTF-8. Returns the
    payloads (unmasked; ``str`` for text, ``bytes`` for binary) and the offset of the first frame
    that is not simple, which the caller's full parser takes from there (it may be incomplete or
    invalid).
    """
    if pos < 0:
        raise ValueError("pos must not be negative")
    messages: list[str | bytes] = []
    end = len(data)
    with memoryview(data) as view:
        while end - pos >= 6:
            b0, b1 = view[pos], view[pos + 1]
            if (b0 != 0x81 and b0 != 0x82) or not b1 & 0x80:
                break
            length = b1 & 0x7F
            if length < 126:
                start = pos + 6
            elif length == 126:
                length = int.from_bytes(view[pos + 2 : pos + 4], "big")
                start = pos + 8
                if length < 126:
                    break
            else:
                length = int.from_bytes(view[pos + 2 : pos + 10], "big")
                start = pos + 14
                if length < 65536 or length >> 63:
                    break
            stop = start + length
            if length > max_size or stop > end:
                break
            payload = mask(view[start:stop], bytes(view[start - 4 : start]))
            if b0 == 0x81:
                try:
                    messages.append(payload.decode("utf-8"))
                except UnicodeDecodeError:
                    break
            else:
                messages.append(payload)
            pos = stop
    return messages, pos
