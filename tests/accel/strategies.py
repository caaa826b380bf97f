"""Hypothesis strategies for byte strings that stress UTF-8 validation and masking."""

from __future__ import annotations

from hypothesis import strategies as st

masking_keys = st.binary(min_size=4, max_size=4)

# Bytes that start, continue or break multi-byte sequences, including the edges of Unicode
# table 3-7 (overlongs, surrogates, above U+10FFFF).
_tricky_bytes = st.sampled_from(
    [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1,
     0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
)


@st.composite
def utf8ish(draw: st.DrawFn) -> bytes:
    """Mostly valid UTF-8 with a chance of corruption or truncation, and raw noise."""
    kind = draw(st.sampled_from(["valid", "corrupted", "truncated", "noise"]))
    if kind == "noise":
        return bytes(draw(st.lists(_tricky_bytes, max_size=24)))
    data = bytearray(draw(st.text(max_size=40)).encode("utf-8", "surrogatepass"))
    if kind == "corrupted" and data:
        at = draw(st.integers(0, len(data) - 1))
        data[at] = draw(_tricky_bytes)
    elif kind == "truncated" and data:
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@st.composite
def split(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at random points (empty pieces included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=8)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]
