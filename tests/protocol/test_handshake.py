"""Opening handshake: validation, the 101 answer, refusals, pipelined bytes."""

from __future__ import annotations

import base64
import hashlib

import pytest

from bolt.protocol import ConnectionState, HandshakeFailed, Request, ServerConnection, handshake
from bolt.protocol.connection import LocalProtocolError
from bolt.protocol.deflate import DeflateOptions

from .helpers import KEY, client_frame, request_bytes


def refuse(data: bytes) -> tuple[HandshakeFailed, bytes]:
    conn = ServerConnection()
    events = conn.receive_data(data)
    assert len(events) == 1 and isinstance(events[0], HandshakeFailed), events
    assert conn.state is ConnectionState.CLOSED
    return events[0], conn.data_to_send()


def test_valid_request_and_101_answer() -> None:
    conn = ServerConnection()
    (request,) = conn.receive_data(request_bytes("Sec-WebSocket-Protocol: chat, superchat"))
    assert isinstance(request, Request)
    assert request.target == "/chat?x=1"
    assert request.subprotocols == ["chat", "superchat"]
    assert (b"host", b"example.com") in request.headers
    out = conn.accept("chat", [(b"server", b"bolt")])
    head = out.decode()
    assert head.startswith("HTTP/1.1 101 Switching Protocols\r\n")
    expected = base64.b64encode(hashlib.sha1(KEY + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest()).decode()
    assert f"sec-websocket-accept: {expected}\r\n" in head
    assert "sec-websocket-protocol: chat\r\n" in head
    assert "server: bolt\r\n" in head
    assert head.endswith("\r\n\r\n")
    assert conn.state is ConnectionState.OPEN
    assert conn.request is None  # answered: an open connection does not keep it


def _headers(*extra: str, key: bytes = KEY) -> dict[bytes, tuple[bytes, bytes]]:
    (request,) = ServerConnection().receive_data(request_bytes(*extra, key=key))
    return {header[0]: header for header in request.headers}


def test_headers_that_repeat_are_kept_once_per_process() -> None:
    # An open connection keeps its headers for its whole life; most are the same on every connection.
    other_key = base64.b64encode(b"another 16 bytes")
    one, two = _headers("Origin: https://example.com"), _headers("Origin: https://example.com", key=other_key)
    for name in (b"host", b"upgrade", b"connection", b"sec-websocket-version", b"origin"):
        assert one[name] is two[name]
    assert one[b"sec-websocket-key"] is not two[b"sec-websocket-key"]
    assert one[b"sec-websocket-key"][0] is two[b"sec-websocket-key"][0]  # its name is
    assert two[b"sec-websocket-key"] == (b"sec-websocket-key", other_key)
    assert _headers("X-Custom: same")[b"x-custom"] is not _headers("X-Custom: same")[b"x-custom"]


def test_the_shared_headers_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(handshake, "_shared_headers", {})  # filled here, and not for the tests after this one
    long = "Origin: https://" + "a" * 300 + ".example"
    assert _headers(long)[b"origin"] is not _headers(long)[b"origin"]  # long values are not kept
    for n in range(1100):  # more distinct values than the table keeps: sharing stops, parsing does not
        assert _headers(f"Origin: https://{n}.example")[b"origin"] == (b"origin", f"https://{n}.example".encode())
    assert _headers("Origin: https://new.example")[b"origin"] is not _headers("Origin: https://new.example")[b"origin"]
    assert _headers("Origin: https://new.example")[b"origin"] == (b"origin", b"https://new.example")


def test_request_may_arrive_in_pieces() -> None:
    conn = ServerConnection()
    data = request_bytes()
    assert conn.receive_data(data[:10]) == []
    assert isinstance(conn.receive_data(data[10:])[0], Request)


def test_missing_upgrade_is_426() -> None:
    data = request_bytes().replace(b"Upgrade: websocket\r\n", b"")
    event, out = refuse(data)
    assert event.status == 426
    assert out.startswith(b"HTTP/1.1 426 Upgrade Required\r\n")
    assert b"upgrade: websocket\r\n" in out
    assert b"Upgrade: websocket" in out.split(b"\r\n\r\n", 1)[1]


def test_missing_connection_upgrade_is_426() -> None:
    event, _ = refuse(request_bytes().replace(b"Connection: keep-alive, Upgrade", b"Connection: keep-alive"))
    assert event.status == 426


def test_wrong_version_is_426_with_supported_version() -> None:
    event, out = refuse(request_bytes().replace(b"Version: 13", b"Version: 8"))
    assert event.status == 426
    assert b"sec-websocket-version: 13\r\n" in out
    # RFC 9110 15.5.22: a 426 MUST say what to upgrade to, with the Upgrade connection option; the
    # connection then closes, which the same header says.
    assert b"upgrade: websocket\r\n" in out and b"connection: Upgrade, close\r\n" in out


@pytest.mark.parametrize("offer", ["chat superchat", "a;b", '"chat"', "caf\u00e9", "chat, x y"])
def test_a_subprotocol_that_is_not_a_token_is_400(offer: str) -> None:
    # RFC 6455 4.1: Sec-WebSocket-Protocol is a list of tokens; anything else could be echoed back.
    event, _ = refuse(request_bytes(f"Sec-WebSocket-Protocol: {offer}"))
    assert (event.status, event.detail) == (400, "Invalid Sec-WebSocket-Protocol header.")


def test_subprotocol_lists_keep_their_tokens() -> None:
    conn = ServerConnection()
    (request,) = conn.receive_data(request_bytes("Sec-WebSocket-Protocol: a.b-c_1,, bearer.e30 ,x~"))
    assert request.subprotocols == ["a.b-c_1", "bearer.e30", "x~"]


@pytest.mark.parametrize("host", [b"a b", b"user@evil", b"a:8x", b"caf\xc3\xa9", b"[::1", b"a/b"])
def test_invalid_host_is_400(host: bytes) -> None:
    # RFC 9112 3.2: a Host with an invalid value is refused like a missing one.
    event, out = refuse(request_bytes().replace(b"Host: example.com", b"Host: " + host))
    assert (event.status, event.detail) == (400, "Invalid Host header.")


@pytest.mark.parametrize("host", [b"", b"example.com:8000", b"[::1]:443", b"127.0.0.1", b"xn--caf-dma.example"])
def test_valid_host_forms_are_taken(host: bytes) -> None:
    conn = ServerConnection()
    assert isinstance(conn.receive_data(request_bytes().replace(b"Host: example.com", b"Host: " + host))[0], Request)


@pytest.mark.parametrize("key", [b"", b"short", base64.b64encode(b"x" * 15), b"!!!!!!!!!!!!!!!!!!!!!!!!"])
def test_bad_key_is_400(key: bytes) -> None:
    event, out = refuse(request_bytes(key=key))
    assert event.status == 400
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Sec-WebSocket-Key" in out  # the body says what is wrong


def test_two_keys_are_400() -> None:
    event, _ = refuse(request_bytes("Sec-WebSocket-Key: " + KEY.decode()))
    assert event.status == 400


def test_post_is_refused() -> None:
    event, _ = refuse(request_bytes().replace(b"GET ", b"POST ", 1))
    assert event.status == 405


@pytest.mark.parametrize("version", [b"1.0", b"2.0", b"0.9"])
def test_a_version_below_1_1_or_of_another_major_is_400(version: bytes) -> None:
    event, _ = refuse(request_bytes().replace(b"HTTP/1.1", b"HTTP/" + version, 1))
    assert (event.status, event.detail) == (400, "WebSocket upgrades need HTTP/1.1.")


def test_a_later_http_1_minor_version_is_read_as_1_1() -> None:
    # RFC 6455 4.2.1 asks for HTTP/1.1 or higher; bolt's HTTP protocols hand such a request over as 1.1.
    conn = ServerConnection()
    (event,) = conn.receive_data(request_bytes().replace(b"HTTP/1.1", b"HTTP/1.2", 1))
    assert isinstance(event, Request)


@pytest.mark.parametrize("extra", ["Content-Length: 3", "Transfer-Encoding: chunked", "Content-Length: 0\r\nContent-Length: 0"])
def test_a_body_on_the_upgrade_is_400(extra: str) -> None:
    event, _ = refuse(request_bytes(extra))
    assert (event.status, event.detail) == (400, "An upgrade request has no body.")


def test_an_empty_body_is_allowed() -> None:
    conn = ServerConnection()
    (event,) = conn.receive_data(request_bytes("Content-Length: 0"))
    assert isinstance(event, Request)


@pytest.mark.parametrize(
    "line",
    [b"X-Bad: a\nb", b"X-Bad: a\rb", b"X-Bad: a\x00b", b"X-Bad: a\x7fb", b"X Bad: a", b"X-Bad : a", b"X(Bad): a",
     b": a", b"no colon", b"\tfolded"],
)
def test_a_malformed_header_line_is_400(line: bytes) -> None:
    event, _ = refuse(request_bytes().replace(b"\r\n\r\n", b"\r\n" + line + b"\r\n\r\n"))
    assert event.status == 400


@pytest.mark.parametrize("line", [b"GET  / HTTP/1.1", b"GET / HTTP/1.1 ", b"G(T / HTTP/1.1", b"GET /\x01 HTTP/1.1"])
def test_a_malformed_request_line_is_400(line: bytes) -> None:
    event, _ = refuse(request_bytes().replace(b"GET /chat?x=1 HTTP/1.1", line, 1))
    assert (event.status, event.detail) == (400, "Malformed request line.")


def test_garbage_is_400() -> None:
    event, _ = refuse(b"\x16\x03\x01 hello\r\n\r\n")
    assert event.status == 400


def test_oversized_head_is_431() -> None:
    conn = ServerConnection(max_request_size=1024)
    events = conn.receive_data(b"GET / HTTP/1.1\r\nX: " + b"a" * 2000)
    assert isinstance(events[0], HandshakeFailed) and events[0].status == 431


@pytest.mark.parametrize("line_end", [b" HTTP/1.1\r\nHost: x\r\n\r\n", b""])
def test_a_request_line_past_the_limit_is_414(line_end: bytes) -> None:
    # RFC 9110 15.5.15: the target is what is too long, whether or not its line has ended.
    conn = ServerConnection(max_request_size=1024)
    events = conn.receive_data(b"GET /?q=" + b"a" * 2000 + line_end)
    assert isinstance(events[0], HandshakeFailed) and events[0].status == 414
    events = ServerConnection(max_request_size=1024).receive_request(b"GET", b"/?q=" + b"a" * 2000, [(b"host", b"x")])
    assert isinstance(events[0], HandshakeFailed) and events[0].status == 414


def test_reject_with_body() -> None:
    conn = ServerConnection()
    conn.receive_data(request_bytes())
    out = conn.reject(401, [(b"content-type", b"application/json")], b'{"detail": "no"}')
    assert out.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"content-length: 16\r\n" in out
    assert b"connection: close\r\n" in out
    assert out.endswith(b'\r\n\r\n{"detail": "no"}')
    assert conn.state is ConnectionState.CLOSED


def test_header_injection_is_refused() -> None:
    conn = ServerConnection()
    conn.receive_data(request_bytes())
    with pytest.raises(ValueError):
        conn.accept(None, [(b"x-evil", b"a\r\nset-cookie: b")])


def test_a_callers_header_does_not_repeat_one_the_handshake_set() -> None:
    conn = ServerConnection(deflate=DeflateOptions())
    conn.receive_data(request_bytes("Sec-WebSocket-Protocol: chat", "Sec-WebSocket-Extensions: permessage-deflate"))
    head = conn.accept("chat", [(b"Upgrade", b"h2c"), (b"Sec-WebSocket-Protocol", b"other"),
                                (b"sec-websocket-extensions", b"x-other"), (b"X-Trace", b"1")]).decode()
    lines = head.split("\r\n")
    assert lines[:3] == ["HTTP/1.1 101 Switching Protocols", "upgrade: websocket", "connection: Upgrade"]
    assert [line for line in lines if line.startswith("sec-websocket-protocol")] == ["sec-websocket-protocol: chat"]
    assert [line for line in lines if line.startswith("sec-websocket-extensions")] == [
        "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover"]
    assert "x-trace: 1" in lines and lines[-2:] == ["", ""]

    # Without a chosen subprotocol nor an extension, those names are the caller's to send.
    conn = ServerConnection()
    conn.receive_data(request_bytes())
    head = conn.accept(None, [(b"sec-websocket-protocol", b"mine"), (b"connection", b"close")]).decode()
    assert "sec-websocket-protocol: mine\r\n" in head and "connection: close" not in head


def test_frames_pipelined_behind_the_request_are_kept() -> None:
    conn = ServerConnection()
    data = request_bytes() + client_frame(0x1, b"early") + client_frame(0x2, b"bird")
    (request,) = conn.receive_data(data)
    conn.accept()
    assert conn.receive_data(b"") == ["early", b"bird"]


def test_too_much_pipelined_data_is_refused() -> None:
    conn = ServerConnection(max_size=100, max_request_size=1000)
    conn.receive_data(request_bytes())
    events = conn.receive_data(b"x" * 2000)
    assert isinstance(events[0], HandshakeFailed) and events[0].status == 400


def _fields(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower(), value) for name, value in headers]


BASE = [(b"Host", b"example.com"), (b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
        (b"Sec-WebSocket-Key", KEY), (b"Sec-WebSocket-Version", b"13")]


@pytest.mark.parametrize(
    ("method", "target", "headers", "max_request_size"),
    [
        (b"GET", b"/chat?x=1", BASE + [(b"Sec-WebSocket-Protocol", b"chat, superchat")], 65536),
        (b"GET", b"/", BASE + [(b"X-Padded", b"value \t")], 65536),  # a parser may keep trailing blanks
        (b"GET", b"/", BASE[1:], 65536),  # no Host
        (b"GET", b"/", BASE[:3] + BASE[4:], 65536),  # no key
        (b"GET", b"/", BASE[:4] + [(b"Sec-WebSocket-Version", b"8")], 65536),
        (b"GET", b"/", [BASE[0], (b"Upgrade", b"h2c"), *BASE[2:]], 65536),
        (b"POST", b"/", BASE, 65536),
        (b"GET", "/caf\u00e9".encode(), BASE, 65536),  # not ASCII
        (b"GET", b"/", BASE + [(b"X-N", b"1")] * 196, 65536),  # 201 headers
        (b"GET", b"/", BASE + [(b"X-N", b"1")] * 195, 65536),  # 200 headers
        (b"GET", b"/", BASE, 146),  # the head is 146 bytes: just fits
        (b"GET", b"/", BASE, 145),
    ],
)
def test_a_parsed_request_is_taken_as_its_bytes_would_be(
    method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], max_request_size: int
) -> None:
    written = ServerConnection(max_request_size=max_request_size)
    head = b"%s %s HTTP/1.1\r\n" % (method, target) + b"".join(b"%s: %s\r\n" % h for h in _fields(headers))
    expected = written.receive_data(head + b"\r\n")
    parsed = ServerConnection(max_request_size=max_request_size)
    events = parsed.receive_request(method, target, _fields(headers))
    assert [type(e) for e in events] == [type(e) for e in expected]
    assert parsed.data_to_send() == written.data_to_send()
    assert parsed.state is written.state
    (event,), (other,) = events, expected
    for name in type(other).__slots__:
        assert getattr(event, name) == getattr(other, name), name


@pytest.mark.parametrize("field", [(b"X-A", b"1\r\nOrigin: https://evil.example"), (b"X-A", b"1\nB: 2"),
                                   (b"Origin: https://evil.example\r\nX", b"1"), (b"X:Y", b"1")])
def test_a_parsed_field_cannot_add_or_rename_a_header(field: tuple[bytes, bytes]) -> None:
    # A parser refuses these; if one got through, writing the fields out must not make a new header of it.
    conn = ServerConnection()
    (event,) = conn.receive_request(b"GET", b"/", [*_fields(BASE), field])
    assert isinstance(event, HandshakeFailed) and event.status == 400


def test_a_parsed_request_only_before_any_bytes() -> None:
    conn = ServerConnection()
    conn.receive_data(b"GET / HTTP/1.1\r\n")
    with pytest.raises(LocalProtocolError):
        conn.receive_request(b"GET", b"/", _fields(BASE))


@pytest.mark.parametrize("target, path", [("http://example.com/chat?x=1", "/chat?x=1"), ("ws://example.com:8000", "/"),
                                          ("wss://example.com?q=1", "/?q=1"), ("HTTPS://h/a/b", "/a/b")])
def test_an_absolute_form_target_is_read_as_its_path(target: str, path: str) -> None:
    # RFC 9112 3.2.2: a server must accept the absolute form; routing sees the path and query.
    (request,) = ServerConnection().receive_data(request_bytes(target=target))
    assert isinstance(request, Request) and request.target == path


@pytest.mark.parametrize("target", ["chat", "*", "example.com/chat", "http:/chat", "http://h/chat#frag",
                                    # an authority no Host header may hold: RFC 9110 4.2.4 (user information)
                                    "ws://[::1/chat", "ws://h:abc/chat", "ws://user:pw@h/chat", "ws://h\\x/chat"])
def test_a_target_neither_a_path_nor_an_absolute_uri_is_400(target: str) -> None:
    event, out = refuse(request_bytes(target=target))
    assert event.status == 400 and b"must be a path or an absolute URI" in out


def test_max_headers_is_the_head_parsers_limit() -> None:
    # handshake.MAX_HEADERS (which bolt's httptools protocol also enforces) restates bolt.accel.parse_head's
    # limit, in Rust and in its twin: this holds the three to one number, in either build.
    extra = [f"X-N: {n}" for n in range(handshake.MAX_HEADERS - 5)]  # request_bytes() has 5 header lines
    (request,) = ServerConnection().receive_data(request_bytes(*extra))
    assert isinstance(request, Request) and len(request.headers) == handshake.MAX_HEADERS
    event, _ = refuse(request_bytes(*extra, "X-N: last"))
    assert event.status == 431
