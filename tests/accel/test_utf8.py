"""UTF-8 validation of messages, whole and in pieces: both implementations against CPython's decoder."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from .strategies import split, utf8ish


def reference_offset(data: bytes) -> int:
    """Offset of the first invalid or truncated sequence per CPython's strict decoder, or -1."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start
    return -1


def run(impl: ModuleType, pieces: list[bytes]) -> tuple[list[tuple[bool, int]], bool, int]:
    """Feed ``pieces``; every feed result with the offset it left, then finish and its offset."""
    validator = impl.Utf8Validator()
    steps = [(validator.feed(piece), validator.error_offset) for piece in pieces]
    return steps, validator.finish(), validator.error_offset


@given(data=utf8ish())
def test_one_piece_agrees(pure: ModuleType, rust: ModuleType, data: bytes) -> None:
    expected = reference_offset(data)
    for buffer in (data, bytearray(data), memoryview(data)):
        assert run(pure, [buffer]) == run(rust, [buffer])
        assert run(rust, [buffer])[1:] == (expected == -1, expected)


@given(data=st.data(), message=utf8ish())
def test_incremental_agrees_at_random_splits(
    pure: ModuleType, rust: ModuleType, data: st.DataObject, message: bytes
) -> None:
    pieces = data.draw(split(message))
    assert run(pure, pieces) == run(rust, pieces)


@given(data=st.data(), message=utf8ish())
def test_incremental_matches_the_reference(impl: ModuleType, data: st.DataObject, message: bytes) -> None:
    steps, finished, offset = run(impl, data.draw(split(message)))
    expected = reference_offset(message)
    assert finished is (expected == -1)
    assert offset == expected
    # Once a feed fails, every later feed fails too and the offset stays put.
    failed = [ok for ok, _ in steps].index(False) if not all(ok for ok, _ in steps) else len(steps)
    assert all(not ok and off == expected for ok, off in steps[failed:])


@given(message=utf8ish())
def test_byte_at_a_time_fails_on_the_byte_that_breaks_it(impl: ModuleType, message: bytes) -> None:
    """The first failing feed is the first prefix that no continuation can make valid."""
    validator = impl.Utf8Validator()
    for end in range(len(message)):
        if not validator.feed(message[end : end + 1]):
            prefix = message[: end + 1]
            assert not any(_completes(prefix, tail) for tail in _COMPLETIONS)
            return
        assert any(_completes(message[: end + 1], tail) for tail in _COMPLETIONS)


# Every way to finish an incomplete character: 0-3 continuation bytes at the range edges.
_EDGES = [0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF]
_COMPLETIONS = [b""] + [bytes([a]) for a in _EDGES] + [bytes([a, b]) for a in _EDGES for b in _EDGES]
_COMPLETIONS += [bytes([a, b, c]) for a in _EDGES for b in _EDGES for c in _EDGES]


def _completes(prefix: bytes, tail: bytes) -> bool:
    return reference_offset(prefix + tail) == -1


@pytest.mark.parametrize(
    ("pieces", "fails_at_feed", "offset"),
    [
        ([b"ab\xed", b"\xa0"], 1, 2),  # UTF-16 surrogate half, before its last byte arrives
        ([b"\xf4", b"\x90"], 1, 0),  # above U+10FFFF
        ([b"\xe0", b"\x80"], 1, 0),  # overlong 3-byte form
        ([b"\xf0", b"\x80"], 1, 0),  # overlong 4-byte form
        ([b"ok", b"\xc0"], 1, 2),  # never-valid byte
        ([b"\xe2\x82", b"("], 1, 0),  # sequence broken by ASCII
        ([b"\xf5"], 0, 0),
    ],
)
def test_fails_fast_in_the_middle_of_a_character(
    impl: ModuleType, pieces: list[bytes], fails_at_feed: int, offset: int
) -> None:
    validator = impl.Utf8Validator()
    results = [validator.feed(piece) for piece in pieces]
    assert results.index(False) == fails_at_feed
    assert validator.error_offset == offset
    assert validator.feed(b"fine") is False
    assert validator.finish() is False


def test_truncated_end_fails_only_at_finish(impl: ModuleType) -> None:
    validator = impl.Utf8Validator()
    assert validator.feed("ok €".encode()[:-1]) is True
    assert validator.error_offset == -1
    assert validator.finish() is False
    assert validator.error_offset == 3


def test_reset_starts_a_new_message(impl: ModuleType) -> None:
    validator = impl.Utf8Validator()
    validator.feed(b"\xff")
    validator.reset()
    assert validator.error_offset == -1
    assert validator.feed("€".encode()[:1]) and validator.feed("€".encode()[1:])
    assert validator.finish() is True


@pytest.mark.parametrize("kind", [bytes, bytearray])
def test_large_pieces_agree(pure: ModuleType, rust: ModuleType, kind: type) -> None:
    """Pieces large enough that the extension validates them with the GIL released."""
    text = ("héllo wörld €𝄞 " * 20000).encode()
    broken = text[:-7] + b"\xed\xa0\x80" + text[-4:]
    for message in (text, broken):
        pieces = [kind(message[:100_001]), kind(message[100_001:])]
        assert run(pure, pieces) == run(rust, pieces)
        assert run(pure, [kind(message)]) == run(rust, [kind(message)])
