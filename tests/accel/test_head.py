"""parse_head: both implementations split (or refuse) the same request heads, and share the same headers."""

from __future__ import annotations

from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

NAMES = {b"host": b"host", b"upgrade": b"upgrade", b"authorization": b"authorization"}
REPEATING = frozenset((b"host", b"upgrade"))

# Pieces of request heads, valid and not: the parser's edges are separators, controls and non-ASCII.
_pieces = st.sampled_from([
    b"GET", b"POST", b" ", b"  ", b"/", b"/ws?a=1", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/11",
    b"\r\n", b"\r", b"\n", b"\t", b":", b": ", b"Host", b"HOST", b"Upgrade", b"websocket", b"X-Y", b"a b",
    b"\x00", b"\x7f", b"\x80", b"\xff", b"(", b"~", b"1", b".",
])
_lines = st.sampled_from([
    b"\r\nHost: example.com", b"\r\nUpgrade: websocket \t", b"\r\nAUTHORIZATION:Bearer x", b"\r\nX-Empty:",
    b"\r\nX-Long: " + b"v" * 300, b"\r\nHost:\t\x80\xff", b"\r\nHo st: x", b"\r\n folded", b"\r\n",
    b"\r\nX: a\rb", b"\r\nX: \x00",
])


@st.composite
def heads(draw: st.DrawFn) -> bytes:
    """A request line and header lines, each drawn whole or from loose pieces."""
    if draw(st.booleans()):
        line = b"GET " + draw(st.sampled_from([b"/", b"/ws", b"/\x80", b"*"])) + b" HTTP/1.1"
    else:
        line = b"".join(draw(st.lists(_pieces, max_size=6)))
    rest = draw(st.lists(_lines | st.builds(bytes.join, st.just(b""), st.lists(_pieces, max_size=5)), max_size=6))
    return line + b"".join(rest)


def parse(impl: ModuleType, head: bytes, shared: dict) -> object:
    try:
        return impl.parse_head(head, NAMES, REPEATING, shared)
    except ValueError as exc:
        return exc.args


@given(heads())
def test_both_implementations_agree(pure: ModuleType, rust: ModuleType, head: bytes) -> None:
    shared_pure: dict = {}
    shared_rust: dict = {}
    assert parse(pure, head, shared_pure) == parse(rust, head, shared_rust)
    assert shared_pure == shared_rust


@pytest.mark.parametrize(("head", "expected"), [
    (b"GET /ws HTTP/1.1\r\nHost: a\r\nX-Y:  b c \t", (b"GET", b"/ws", b"1.1", [(b"host", b"a"), (b"x-y", b"b c")])),
    (b"GET / HTTP/1.0", (b"GET", b"/", b"1.0", [])),
    (b"GET /\x80 HTTP/1.1", (b"GET", b"/\x80", b"1.1", [])),  # ASCII is the caller's to check
    (b"GET / HTTP/2.0", (400, "WebSocket upgrades need HTTP/1.1.")),
    (b"GET  / HTTP/1.1", (400, "Malformed request line.")),
    (b"GET / HTTP/1.1\n", (400, "Malformed request line.")),
    (b"GET / HTTP/1.1\r\nHost: a\r\n folded", (400, "Malformed request header.")),
    (b"GET / HTTP/1.1\r\nHost: a\rb", (400, "Malformed request header.")),
    (b"GET / HTTP/1.1\r\nHost : a", (400, "Malformed request header.")),
    (b"GET / HTTP/1.1" + b"\r\nA: b" * 201, (431, "Too many request headers.")),
])
def test_vectors(impl: ModuleType, head: bytes, expected: object) -> None:
    assert parse(impl, head, {}) == expected


def test_repeating_headers_are_shared(impl: ModuleType) -> None:
    shared: dict = {}
    first = impl.parse_head(b"GET / HTTP/1.1\r\nHOST: a\r\nAuthorization: t", NAMES, REPEATING, shared)[3]
    second = impl.parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nauthorization: t", NAMES, REPEATING, shared)[3]
    assert first[0] is second[0]  # the same Host header: one tuple for both
    assert first[1] is not second[1] and first[1][0] is second[1][0] is NAMES[b"authorization"]
    assert list(shared) == [(b"host", b"a")]


def test_sharing_is_bounded(impl: ModuleType) -> None:
    shared: dict = {}
    head = b"GET / HTTP/1.1\r\nHost: " + b"v" * 257
    assert impl.parse_head(head, NAMES, REPEATING, shared)[3] == [(b"host", b"v" * 257)] and not shared
    for n in range(1100):
        impl.parse_head(b"GET / HTTP/1.1\r\nHost: %d" % n, NAMES, REPEATING, shared)
    assert len(shared) == 1024
