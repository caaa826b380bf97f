"""Pure-Python twins of the functions in the Rust extension ``bolt._accel``.

Same names, signatures and results as the extension; ``bolt.accel`` picks one of the two.
The differential tests in ``tests/accel/`` hold both to the same vectors.
"""

from __future__ import annotations

import math
import os
import re
import sys
from codecs import utf_8_decode
from collections.abc import Set as AbstractSet
from itertools import repeat
from json.decoder import scanstring  # type: ignore[attr-defined]  # public at run time, not in typeshed

Buffer = bytes | bytearray | memoryview

__all__ = [
    "Utf8Validator",
    "decode_header",
    "json_object_spans",
    "mask",
    "mask_join",
    "parse_head",
    "scan_frames",
    "send_many",
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
        # XOR with whole repetitions of the key (no slice of it); beyond the data's last byte the
        # result holds key bytes, cut off when the length is not a multiple of 4.
        m = (n + 3) >> 2
        masked = int.from_bytes(data, "little") ^ int.from_bytes(key * m, "little")
        return masked.to_bytes(n, "little") if not n & 3 else masked.to_bytes(m << 2, "little")[:n]
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


def decode_header(data: Buffer, pos: int = 0) -> tuple[int, int, int] | None:
    """Decode the header of the client frame that starts at ``data[pos]``.

    Returns ``(b0, start, length)``: the first byte (FIN, RSV bits, opcode), the offset of the
    payload, which the 4-byte masking key precedes, and the payload length. ``start`` may lie
    beyond the end of ``data`` while the masking key is incomplete. None when the length itself is
    not complete yet. ValueError, with the reason a close frame gives, for an unmasked frame or a
    length that is not minimally encoded (RFC 6455 section 5.2).
    """
    if pos < 0:
        raise ValueError("pos must not be negative")
    if len(data) - pos < 2:
        return None
    b1 = data[pos + 1]
    if not b1 & 0x80:
        raise ValueError("client frames must be masked")
    length = b1 & 0x7F
    if length < 126:
        return data[pos], pos + 6, length
    if length == 126:
        if len(data) - pos < 4:
            return None
        length = (data[pos + 2] << 8) | data[pos + 3]
        if length < 126:
            raise ValueError("payload length not minimally encoded")
        return data[pos], pos + 8, length
    if len(data) - pos < 10:
        return None
    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
    if length >> 63:
        raise ValueError("payload length has the top bit set")
    if length < 65536:
        raise ValueError("payload length not minimally encoded")
    return data[pos], pos + 14, length


def scan_frames(
    data: Buffer, pos: int = 0, max_size: int = 2**63, max_messages: int = sys.maxsize
) -> tuple[list[str | bytes], int]:
    """Decode the run of simple frames that starts at ``data[pos]``, at most ``max_messages`` of them.

    Simple means final, uncompressed, text or binary, masked, minimally encoded, at most
    ``max_size`` payload bytes, complete in ``data``, and for text valid UTF-8. Returns the
    payloads (unmasked; ``str`` for text, ``bytes`` for binary) and the offset of the first frame
    that is not simple, which the caller's full parser takes from there (it may be incomplete or
    invalid), or of the frame behind the last message allowed.
    """
    if pos < 0:
        raise ValueError("pos must not be negative")
    if max_messages < 0:
        raise ValueError("max_messages must not be negative")
    messages: list[str | bytes] = []
    end = len(data)
    for _ in repeat(None, max_messages):  # counts without making an int per frame
        if end - pos < 6:  # the shortest masked frame
            break
        try:
            header = decode_header(data, pos)
        except ValueError:  # malformed: the caller's parser judges it
            break
        if header is None:
            break
        b0, start, length = header
        stop = start + length
        if (b0 != 0x81 and b0 != 0x82) or length > max_size or stop > end:
            break
        payload = mask(data[start:stop], bytes(data[start - 4 : start]))
        if b0 == 0x81:
            try:
                messages.append(payload.decode())
            except UnicodeDecodeError:
                break
        else:
            messages.append(payload)
        pos = stop
    return messages, pos


# The request head of a WebSocket upgrade: RFC 9112's grammar, as strict as an HTTP parser's. A token
# method, a target with no space or control character, and header lines of a token name and a value of
# visible characters, spaces and tabs (no obs-fold, no bare CR or LF, no NUL).
_HTTP_TOKEN = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+"
_REQUEST_LINE = re.compile(rb"(%s) ([\x21-\x7e\x80-\xff]+) HTTP/([0-9]\.[0-9])" % _HTTP_TOKEN)
_FIELD_LINES = re.compile(rb"(?:\r\n%s:[\t\x20-\x7e\x80-\xff]*)*" % _HTTP_TOKEN)
_FIELD = re.compile(rb"\r\n(%s):[ \t]*([^\r\n]*)" % _HTTP_TOKEN)  # on lines _FIELD_LINES has checked

_MAX_HEADERS = 200  # more header lines are refused with 431
_SHARED_MAX = 1024  # headers kept once per process: at most this many,
_SHARED_VALUE_MAX = 256  # of values at most this long

Header = tuple[bytes, bytes]


def _share_header(header: Header, repeating: AbstractSet[bytes], shared: dict[Header, Header]) -> Header:
    """The tuple `shared` keeps for `header` when its name is in `repeating` (see `parse_head`), else `header`."""
    if header[0] not in repeating or len(header[1]) > _SHARED_VALUE_MAX:
        return header
    kept = shared.get(header)
    if kept is not None:
        return kept
    if len(shared) < _SHARED_MAX:
        shared[header] = header
    return header


def parse_head(head: bytes, names: dict[bytes, bytes], repeating: AbstractSet[bytes],
               shared: dict[Header, Header]) -> tuple[bytes, bytes, bytes, list[Header]]:
    """Split the request head of a WebSocket upgrade (everything before the blank line, without it).

    Returns ``(method, target, version, headers)``, ``version`` as in ``b"1.1"``. Header names are
    lower-cased, and given as the object ``names`` maps them to when it has them; values lose the
    spaces and tabs around them. A header whose name is in ``repeating``, with a value of at most 256
    bytes, is the very tuple ``shared`` holds for it, or is added there while ``shared`` has fewer than
    1024: the headers that repeat from one connection to the next are kept once per process.
    ValueError with ``(status, detail)`` for a head the handshake refuses.
    """
    line_end = head.find(b"\r\n")
    if line_end < 0:
        line_end = len(head)
    line = _REQUEST_LINE.fullmatch(head, 0, line_end)
    if line is None:
        raise ValueError(400, "Malformed request line.")
    method, target, version = line.groups()
    if not version.startswith(b"1."):
        raise ValueError(400, "WebSocket upgrades need HTTP/1.1.")
    if _FIELD_LINES.fullmatch(head, line_end) is None:
        raise ValueError(400, "Malformed request header.")
    fields = _FIELD.findall(head, line_end)
    if len(fields) > _MAX_HEADERS:
        raise ValueError(431, "Too many request headers.")
    headers = []
    for name, value in fields:
        low = name.lower()
        headers.append(_share_header((names.get(low, low), value.rstrip(b" \t")), repeating, shared))
    return method, target, version, headers


# JSON scanning for json_object_spans: one regex match per token (whitespace before it included),
# a small state machine for the grammar. Possessive quantifiers keep a failing string linear.
_WS = re.compile(r"[ \t\n\r]*")
_TOKEN = re.compile(
    r"""[ \t\n\r]*+(?:
        (?P<string>"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+")
      | (?P<number>-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][-+]?[0-9]++)?)
      | (?P<literal>true|false|null)
      | (?P<punct>[][{}:,])
    )""",
    re.VERBOSE,
)
_SURROGATE = re.compile("[\ud800-\udfff]")
_END = "unexpected end of input"


def _after_ws(text: str, pos: int) -> int:
    """The first position at or after `pos` that is not JSON whitespace."""
    blank = _WS.match(text, pos)
    return blank.end() if blank is not None else pos  # the pattern matches the empty string: never None


# What the scanner expects next.
_VALUE, _VALUE_OR_CLOSE, _KEY, _KEY_OR_CLOSE, _COLON, _AFTER_VALUE = range(6)


class _Invalid(Exception):
    def __init__(self, pos: int, reason: str) -> None:
        self.pos, self.reason = pos, reason


def _failure(state: int, closer: str, text: str, pos: int) -> _Invalid:
    """The error for text at ``pos`` that is no token, or not one that ``state`` accepts."""
    if pos == len(text):
        return _Invalid(pos, _END)
    char = text[pos]
    if state in (_VALUE, _VALUE_OR_CLOSE):
        reason = {'"': "invalid string", "-": "invalid number"}.get(char, "expected a value")
    elif state in (_KEY, _KEY_OR_CLOSE):
        reason = "invalid string" if char == '"' else "expected a key"
    elif state == _COLON:
        reason = "expected ':'"
    else:
        reason = f"expected ',' or '{closer}'"
    return _Invalid(pos, reason)


def _string(text: str, start: int, end: int) -> str | None:
    """The decoded string token ``text[start:end]``; None for a lone surrogate escape, which
    orjson.loads refuses (the stdlib decoder keeps it as a lone surrogate, which shows it)."""
    if text.find("\\", start, end) < 0:
        return text[start + 1 : end - 1]
    value = scanstring(text, start + 1)[0]
    return None if "\\u" in text[start:end] and _SURROGATE.search(value) else value


def _spans(text: str, max_depth: int) -> dict[str, tuple[int, int]]:
    """json_object_spans for a str without surrogates, raising _Invalid."""
    pos = _after_ws(text, 0)
    if pos == len(text) or text[pos] != "{":
        raise _Invalid(pos, _END if pos == len(text) else "the top level is not an object")
    if max_depth < 1:
        raise _Invalid(pos, "nesting deeper than max_depth")
    spans: dict[str, tuple[int, int]] = {}
    closers = ["}"]  # of the open containers; closers[0] is the top-level object's
    key, value_start = "", 0  # the top-level member being read
    state = _KEY_OR_CLOSE
    pos += 1
    match = _TOKEN.match
    while True:
        token = match(text, pos)
        if token is None:
            raise _failure(state, closers[-1], text, _after_ws(text, pos))
        kind = token.lastgroup
        assert kind is not None  # every alternative of _TOKEN is a named group
        start, pos = token.span(kind)
        char = text[start]
        complete = False  # whether a value ends at pos
        if state == _VALUE or state == _VALUE_OR_CLOSE:
            if len(closers) == 1:
                value_start = start
            if kind == "punct":
                if char == "{" or char == "[":
                    if len(closers) >= max_depth:
                        raise _Invalid(start, "nesting deeper than max_depth")
                    closers.append("}" if char == "{" else "]")
                    state = _KEY_OR_CLOSE if char == "{" else _VALUE_OR_CLOSE
                    continue
                if char != "]" or state != _VALUE_OR_CLOSE:
                    raise _Invalid(start, "expected a value")
                closers.pop()
            elif kind == "string":
                if _string(text, start, pos) is None:
                    raise _Invalid(start, "invalid string")
            elif kind == "number" and (pos - start > 308 or "e" in token[kind] or "E" in token[kind]):
                # orjson refuses a number that is infinite as a double; only these can be.
                if math.isinf(float(token[kind])):
                    raise _Invalid(start, "number out of range")
            complete = True
        elif state == _KEY or state == _KEY_OR_CLOSE:
            if kind == "string":
                name = _string(text, start, pos)
                if name is None:
                    raise _Invalid(start, "invalid string")
                if len(closers) == 1:
                    key = name
                state = _COLON
            elif char == "}" and state == _KEY_OR_CLOSE:
                closers.pop()
                complete = True
            else:
                raise _Invalid(start, "expected a key")
        elif state == _COLON:
            if char != ":" or kind != "punct":
                raise _Invalid(start, "expected ':'")
            state = _VALUE
        elif char == "," and kind == "punct":
            state = _KEY if closers[-1] == "}" else _VALUE
        elif char == closers[-1] and kind == "punct":
            closers.pop()
            complete = True
        else:
            raise _Invalid(start, f"expected ',' or '{closers[-1]}'")
        if complete:
            if not closers:  # the top-level object closed
                pos = _after_ws(text, pos)
                if pos != len(text):
                    raise _Invalid(pos, "unexpected content after the object")
                return spans
            if len(closers) == 1:  # what ended was a top-level member's value
                spans[key] = (value_start, pos)
            state = _AFTER_VALUE


def _byte_offsets(text: str, positions: list[int]) -> dict[int, int]:
    """UTF-8 byte offset of each code point index in ``positions`` (sorted), in one pass."""
    offsets, index, byte = {}, 0, 0
    for pos in positions:
        byte += len(text[index:pos].encode("utf-8"))
        index = pos
        offsets[pos] = byte
    return offsets


def json_object_spans(text: str | Buffer, max_depth: int) -> dict[str, tuple[int, int]]:
    """Validate that ``text`` (str, or UTF-8 bytes) is exactly one strict JSON object nested at
    most ``max_depth`` deep, and return each top-level key -> (start, end) of its value's source
    text, in the input's own units (code points for str, bytes otherwise). ValueError if invalid.
    """
    try:
        if isinstance(text, str):
            surrogate = _SURROGATE.search(text)
            if surrogate:
                raise _Invalid(surrogate.start(), "str contains a surrogate")
            return _spans(text, max_depth)
        try:
            decoded = utf_8_decode(text, "strict", True)[0]
        except UnicodeDecodeError as exc:
            raise _Invalid(exc.start, "invalid UTF-8") from None
        if len(decoded) == len(text):  # ASCII: code point indices are byte offsets
            return _spans(decoded, max_depth)
        try:
            spans = _spans(decoded, max_depth)
        except _Invalid as exc:
            exc.pos = _byte_offsets(decoded, [exc.pos])[exc.pos]
            raise
        offsets = _byte_offsets(decoded, sorted({p for span in spans.values() for p in span}))
        return {key: (offsets[start], offsets[end]) for key, (start, end) in spans.items()}
    except _Invalid as exc:
        raise ValueError(f"invalid JSON at {exc.pos}: {exc.reason}") from None


def send_many(fds: list[int], data: bytes) -> list[tuple[int, int]]:
    """Send the frame ``data`` to every socket of ``fds`` (non-blocking ones); returns ``(index, bytes
    taken)`` for each socket that did not take it whole (0 when its buffer was full or it failed)."""
    incomplete = []
    write = os.write  # write(2) on a socket is send(2) without flags
    for index, fd in enumerate(fds):
        try:
            taken = write(fd, data)
        except OSError:  # full or broken: the caller's transport writes the frame and meets the error
            taken = 0
        if taken != len(data):
            incomplete.append((index, taken))
    return incomplete
