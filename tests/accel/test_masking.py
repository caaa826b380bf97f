"""Masking: both implementations agree with a bytewise XOR and with each other."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .strategies import masking_keys


def bytewise(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


@given(data=st.binary(max_size=2100), key=masking_keys)
def test_mask_agrees(pure: ModuleType, rust: ModuleType, data: bytes, key: bytes) -> None:
    expected = bytewise(data, key)
    for buffer in (data, bytearray(data), memoryview(data)):
        assert pure.mask(buffer, key) == rust.mask(buffer, key) == expected


@given(data=st.binary(max_size=300), key=masking_keys)
def test_mask_is_an_involution(impl: ModuleType, data: bytes, key: bytes) -> None:
    masked = impl.mask(data, key)
    assert type(masked) is bytes
    assert impl.mask(masked, key) == data


@given(
    payloads=st.lists(st.binary(max_size=200), min_size=1, max_size=6),
    keys=st.lists(masking_keys, min_size=6, max_size=6),
)
def test_unmask_payload_slices_of_a_frame_buffer(
    pure: ModuleType, rust: ModuleType, payloads: list[bytes], keys: list[bytes]
) -> None:
    """Frames packed in one read buffer are unmasked through memoryview slices at any offset."""
    buffer = bytearray()
    spans = []
    for payload, key in zip(payloads, keys):
        buffer += b"\x82\x00" + key  # a header stand-in; only the offsets matter here
        spans.append((len(buffer), len(payload), key))
        buffer += bytewise(payload, key)
    view = memoryview(buffer)
    for (start, size, key), payload in zip(spans, payloads):
        piece = view[start : start + size]
        assert pure.mask(piece, key) == rust.mask(piece, key) == payload


@given(parts=st.lists(st.binary(max_size=300), max_size=6), key=masking_keys, kinds=st.data())
def test_mask_join_agrees(
    pure: ModuleType, rust: ModuleType, parts: list[bytes], key: bytes, kinds: st.DataObject
) -> None:
    """The key phase runs on across parts of any length and buffer type."""
    typed = [kinds.draw(st.sampled_from([bytes, bytearray, memoryview]))(part) for part in parts]
    expected = bytewise(b"".join(parts), key)
    assert pure.mask_join(typed, key) == rust.mask_join(typed, key) == expected
    assert pure.mask_join(tuple(typed), key) == rust.mask_join(tuple(typed), key) == expected


def test_mask_join_of_a_large_frame_read_in_pieces(pure: ModuleType, rust: ModuleType) -> None:
    payload = bytes(range(256)) * 4096 + b"tail"
    key = b"\x0f\xf0\x55\xaa"
    wire = b"header" + bytewise(payload, key) + b"next"
    reads = [wire[i : i + 65537] for i in range(0, len(wire), 65537)]
    parts = [memoryview(reads[0])[6:], *reads[1:-1], memoryview(reads[-1])[:-4]]
    assert pure.mask_join(parts, key) == rust.mask_join(parts, key) == payload


@pytest.mark.parametrize("size", [64 * 1024 - 1, 64 * 1024, 1024 * 1024 + 3])
def test_large_buffers_agree(pure: ModuleType, rust: ModuleType, size: int) -> None:
    """Sizes around the point where the extension releases the GIL."""
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    key = b"\x01\xfe\x7f\x80"
    assert pure.mask(data, key) == rust.mask(data, key) == bytewise(data, key)
    assert pure.mask_join([data[:5], data[5:]], key) == rust.mask_join([data[:5], data[5:]], key)


@pytest.mark.parametrize("key", [b"", b"abc", b"abcde"])
def test_key_must_be_four_bytes(impl: ModuleType, key: bytes) -> None:
    with pytest.raises(ValueError):
        impl.mask(b"data", key)
    with pytest.raises(ValueError):
        impl.mask_join([b"data"], key)
