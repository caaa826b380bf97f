"""decode_header and scan_frames: both implementations decode the same random client frames."""

from __future__ import annotations

import struct
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .strategies import masking_keys, utf8ish


def bytewise(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


def encode(b0: int, payload: bytes, key: bytes | None, length_code: str = "minimal") -> bytes:
    """A client frame; ``length_code`` may force a longer-than-needed length encoding."""
    n = len(payload)
    mask_bit = 0x80 if key is not None else 0
    if length_code == "16" or (length_code == "minimal" and 126 <= n < 65536):
        header = struct.pack("!BBH", b0, mask_bit | 126, n)
    elif length_code == "64" or (length_code == "minimal" and n >= 65536):
        header = struct.pack("!BBQ", b0, mask_bit | 127, n)
    else:
        header = struct.pack("!BB", b0, mask_bit | n)
    return header + (key + bytewise(payload, key) if key is not None else payload)


@st.composite
def frames(draw: st.DrawFn) -> tuple[bytes, str | bytes | None]:
    """One frame and the message scan_frames should return for it, or None if it must stop."""
    b0 = draw(st.sampled_from([0x81, 0x82] * 4 + [0x01, 0x02, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x91, 0x83]))
    payload = draw(utf8ish()) if b0 & 0x0F == 1 else draw(st.binary(max_size=300))
    if draw(st.booleans()):
        payload *= draw(st.sampled_from([1, 50, 300]))  # reach the 16- and 64-bit lengths
    key = draw(masking_keys | st.none()) if draw(st.integers(0, 9)) == 0 else draw(masking_keys)
    length_code = draw(st.sampled_from(["minimal"] * 6 + ["16", "64"]))
    wire = encode(b0, payload, key, length_code)
    minimal = length_code == "minimal" or (length_code == "16" and 126 <= len(payload) < 65536)
    simple = b0 in (0x81, 0x82) and key is not None and minimal
    if simple and b0 == 0x81:
        try:
            return wire, payload.decode("utf-8")
        except UnicodeDecodeError:
            return wire, None
    return wire, (payload if simple else None)


@given(run=st.lists(frames(), max_size=8), cut=st.integers(0, 40), max_size=st.sampled_from([100, 2**20]))
def test_scan_frames_agrees(pure: ModuleType, rust: ModuleType, run: list, cut: int, max_size: int) -> None:
    data = b"".join(wire for wire, _ in run)
    data = data[: max(0, len(data) - cut)]  # often leaves the last frame incomplete
    for buffer in (data, bytearray(data), memoryview(data)):
        assert pure.scan_frames(buffer, 0, max_size) == rust.scan_frames(buffer, 0, max_size)


@given(run=st.lists(frames(), max_size=8), cut=st.integers(0, 40), max_messages=st.integers(0, 9))
def test_scan_frames_agrees_on_a_bound(pure: ModuleType, rust: ModuleType, run: list, cut: int, max_messages: int) -> None:
    data = b"".join(wire for wire, _ in run)
    data = data[: max(0, len(data) - cut)]
    for buffer in (data, bytearray(data), memoryview(data)):
        assert pure.scan_frames(buffer, 0, 2**20, max_messages) == rust.scan_frames(buffer, 0, 2**20, max_messages)


@given(run=st.lists(frames(), max_size=8), max_messages=st.integers(0, 9))
def test_scan_frames_stops_behind_the_last_message_allowed(impl: ModuleType, run: list, max_messages: int) -> None:
    data = b"".join(wire for wire, _ in run)
    unbounded, unbounded_end = impl.scan_frames(data)
    messages, end = impl.scan_frames(data, 0, 2**63 - 1, max_messages)
    assert messages == unbounded[:max_messages]
    if len(unbounded) > max_messages:  # cut short: the frame behind the last message starts at end
        assert end == sum(len(wire) for wire, _ in run[:max_messages])
        assert impl.scan_frames(data, end) == (unbounded[max_messages:], unbounded_end)
    else:
        assert end == unbounded_end


def test_scan_frames_refuses_a_negative_bound(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="max_messages must not be negative"):
        impl.scan_frames(b"", 0, 10, -1)


@given(run=st.lists(frames(), max_size=8), prefix=st.binary(max_size=20))
def test_scan_frames_returns_the_simple_prefix(impl: ModuleType, run: list, prefix: bytes) -> None:
    data = prefix + b"".join(wire for wire, _ in run)
    expected: list[str | bytes] = []
    pos = len(prefix)
    for wire, message in run:
        if message is None:
            break
        expected.append(message)
        pos += len(wire)
    messages, end = impl.scan_frames(data, len(prefix))
    assert messages == expected
    assert end == pos
    assert all(type(m) is (str if isinstance(e, str) else bytes) for m, e in zip(messages, expected))


def test_stops_at_an_oversized_frame(impl: ModuleType) -> None:
    data = encode(0x82, b"a" * 10, b"abcd") + encode(0x82, b"b" * 11, b"abcd")
    assert impl.scan_frames(data, 0, 10) == ([b"a" * 10], 16)


def test_start_beyond_the_end_returns_nothing(impl: ModuleType) -> None:
    assert impl.scan_frames(b"\x81", 5) == ([], 5)
    with pytest.raises(ValueError):
        impl.scan_frames(b"", -1)


def header_or_error(impl: ModuleType, data: bytes | bytearray | memoryview, pos: int) -> object:
    try:
        return impl.decode_header(data, pos)
    except ValueError as exc:
        return f"ValueError: {exc}"


@given(run=st.lists(frames(), min_size=1, max_size=4), cut=st.integers(0, 20), noise=st.binary(max_size=14))
def test_decode_header_agrees(pure: ModuleType, rust: ModuleType, run: list, cut: int, noise: bytes) -> None:
    data = b"".join(wire for wire, _ in run)
    data = data[: max(0, len(data) - cut)] + noise
    for pos in range(min(len(data), 24) + 2):
        for buffer in (data, bytearray(data), memoryview(data)):
            assert header_or_error(pure, buffer, pos) == header_or_error(rust, buffer, pos)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x81\x85abcd", (0x81, 6, 5)),
        (b"\x02\x80", (0x02, 6, 0)),  # the masking key may still be missing
        (b"\x82\xfe\x01\x00", (0x82, 8, 256)),
        (b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00", (0x82, 14, 65536)),
        (b"", None),
        (b"\x81", None),
        (b"\x82\xfe\x01", None),
        (b"\x82\xff\x00\x00\x00\x00\x00\x01\x00", None),
        (b"\x81\x05hello", "ValueError: client frames must be masked"),
        (b"\x82\xfe\x00\x7d", "ValueError: payload length not minimally encoded"),
        (b"\x82\xff\x00\x00\x00\x00\x00\x00\xff\xff", "ValueError: payload length not minimally encoded"),
        (b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00", "ValueError: payload length has the top bit set"),
    ],
)
def test_decode_header_vectors(impl: ModuleType, data: bytes, expected: object) -> None:
    assert header_or_error(impl, data, 0) == expected
    assert header_or_error(impl, b"xyz" + data, 3) == (
        (expected[0], expected[1] + 3, expected[2]) if isinstance(expected, tuple) else expected
    )


def test_decode_header_refuses_a_negative_position(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.decode_header(b"\x81\x80abcd", -1)
