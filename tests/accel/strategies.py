"""Hypothesis strategies for byte strings that stress UTF-8 validation and masking, and for JSON."""

from __future__ import annotations

import json

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


# JSON: values as Python objects (floats finite, so every one serializes to strict JSON), objects
# written out in varied styles, and corruptions of those texts.
_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=16,
)


@st.composite
def json_objects(draw: st.DrawFn) -> str:
    """An object serialized with random spacing, indentation and escaping (never surrogates:
    ``st.text`` excludes them, and escaped astral characters become valid pairs)."""
    value = draw(st.dictionaries(st.text(max_size=6), json_values, max_size=5))
    indent = draw(st.none() | st.integers(0, 2))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\t", " :\r\n")]))
    text = json.dumps(value, ensure_ascii=draw(st.booleans()), indent=indent, separators=separators)
    padding = st.text(alphabet=" \t\r\n", max_size=2)
    return draw(padding) + text + draw(padding)


# Pieces that break JSON in the ways RFC 8259 forbids and lenient parsers accept.
_json_breakers = st.sampled_from(
    ["", ",", ":", "{", "}", "[", "]", '"', "\\", "\\u", "\\ud800", "\\udc00", "\\x", "0", "01", "-",
     ".", "e", "1e999", "NaN", "Infinity", "true", "nul", "/**/", "\x00", "\x1f", "\x7f", "\x0c",
     "\u00a0", "\ufeff", " ", "\t", "é", "\U0001f600", "\ud800"]
)


@st.composite
def mutated_json(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few spots deleted, replaced or inserted into."""
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 2))
        text = text[:at] + draw(_json_breakers) + text[at + cut :]
    return text
