"""`bolt.protocol.http.HeadReader`, the protocol `bolt run` starts every connection with, on a real uvicorn."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from bolt.protocol import WebSocketProtocol, http
from bolt.protocol.handshake import MAX_HEADERS, MAX_REQUEST_SIZE

from .helpers import client_frame, request_bytes
from .server import raw_connect, read_frame, serve

pytestmark = pytest.mark.asyncio

# The HTTP protocols a HeadReader can hand plain HTTP to: uvicorn's parsers with the head deadline.
HTTP_CLASSES = [http.H11Protocol, *([http.HttpToolsProtocol] if http.HttpToolsProtocol else [])]


def reader_for(http_class: type) -> type:
    return type("Reader", (http.HeadReader,), {"http_class": http_class})


async def app(scope: dict, receive: Any, send: Any) -> None:
    """WebSocket: echo text. HTTP: answer ``METHOD path body`` (and the request's Upgrade header, if any)."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] != "websocket.disconnect":
            await send({"type": "websocket.send", "text": message.get("text") or ""})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    upgrade = dict(scope["headers"]).get(b"upgrade", b"")
    answer = b"%s %s %s %s" % (scope["method"].encode(), scope["path"].encode(), body, upgrade)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return head.split(b"\r\n", 1)[0], await reader.readexactly(length)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """What bolt's WebSocket protocol was given by a HeadReader, one entry per connection."""
    seen: list[bytes] = []
    take_over = WebSocketProtocol.take_over

    def spy(self: WebSocketProtocol, transport: Any, data: bytes) -> None:
        seen.append(data)
        take_over(self, transport, data)

    monkeypatch.setattr(WebSocketProtocol, "take_over", spy)
    return seen


async def test_an_upgrade_goes_to_bolt_as_bytes_with_the_frames_behind_it(taken: list[bytes]) -> None:
    early = client_frame(0x1, b"sent with the request")
    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes() + early)
        assert head.startswith(b"HTTP/1.1 101")
        assert await read_frame(reader) == (0x1, b"sent with the request")
        writer.close()
    assert taken == [request_bytes() + early]


async def test_a_head_in_pieces_is_put_together(taken: list[bytes]) -> None:
    request = request_bytes()
    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        for start in range(0, len(request), 9):  # split inside "GET ", inside "\r\n\r\n", everywhere
            writer.write(request[start : start + 9])
            await writer.drain()
            await asyncio.sleep(0.005)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
        writer.write(client_frame(0x1, b"hi"))
        assert await read_frame(reader) == (0x1, b"hi")
        writer.close()
    assert taken == [request]


@pytest.mark.parametrize("http_class", HTTP_CLASSES, ids=lambda cls: cls.__name__)
async def test_plain_http_goes_to_uvicorn_with_the_bytes_read(http_class: type, taken: list[bytes]) -> None:
    async with asyncio.timeout(10), serve(app, http=reader_for(http_class)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        # Two pipelined requests in one write, then a POST with its body in a second write.
        writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /a  ")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /b  ")
        writer.write(b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
        await writer.drain()
        writer.write(b"hello")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"POST /c hello ")
        writer.close()
        # A first read that is not a GET is handed over at once, before its head is complete.
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /d HTTP/1.1\r\nHost: x\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        assert [type(c).__name__ for c in srv.server.server_state.connections] == [http_class.__name__]
        writer.write(b"Content-Length: 0\r\n\r\n")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"POST /d  ")
        writer.close()
    assert taken == []


@pytest.mark.parametrize(
    "headers",
    [
        b"Upgrade: websocket\r\n",  # no Connection: upgrade
        b"Upgrade: h2c\r\nConnection: Upgrade\r\n",  # another protocol
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nConnection: keep-alive\r\n",  # the last one counts
        b"Upgrade: websocket, h2c\r\nConnection: Upgrade\r\n",  # one protocol, as uvicorn reads it
    ],
)
async def test_a_request_uvicorn_would_not_upgrade_is_plain_http(headers: bytes, taken: list[bytes]) -> None:
    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /p HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
        status, body = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK" and body.startswith(b"GET /p  ")
        writer.close()
    assert taken == []


async def test_case_and_blanks_in_the_upgrade_headers_are_read_as_uvicorn_reads_them(taken: list[bytes]) -> None:
    request = request_bytes().replace(b"Upgrade: websocket", b"UPGRADE:  WebSocket \t")
    request = request.replace(b"Connection: keep-alive, Upgrade", b"connection:keep-alive ,upgrade")
    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer, head = await raw_connect(srv.port, request)
        assert head.startswith(b"HTTP/1.1 101")
        writer.close()
    assert len(taken) == 1


@pytest.mark.parametrize(
    ("bad", "status"),
    [
        (b"X-Bad: a\nInjected: b\r\n", 400),  # a bare LF inside a header line
        (b"X-Bad: a\rb\r\n", 400),  # a bare CR
        (b"X-Bad: a\x00b\r\n", 400),  # NUL
        (b"X-Bad: a\r\n folded\r\n", 400),  # obs-fold
        (b"X Bad: a\r\n", 400),  # a space in the name
        (b"X-Bad : a\r\n", 400),  # a space before the colon
        (b"X-B(a)d: a\r\n", 400),  # not a token
    ],
)
@pytest.mark.parametrize("http_name", ["HeadReader", "httptools"])
async def test_a_malformed_upgrade_is_refused_as_uvicorn_refuses_it(bad: bytes, status: int, http_name: str) -> None:
    """What bolt's engine refuses, parsing the head alone, uvicorn's httptools protocol refuses too."""
    if http_name == "httptools":
        pytest.importorskip("httptools")
    request = request_bytes().replace(b"Sec-WebSocket-Version", bad + b"Sec-WebSocket-Version")
    async with asyncio.timeout(10), serve(app, http=http.HeadReader if http_name == "HeadReader" else "httptools") as srv:
        reader, writer, head = await raw_connect(srv.port, request)
        assert head.startswith(b"HTTP/1.1 %d" % status)
        writer.close()


async def test_a_head_without_end_beyond_the_request_limit_goes_to_uvicorn(taken: list[bytes]) -> None:
    async with asyncio.timeout(10), serve(app, http=reader_for(http.H11Protocol)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Long: " + b"y" * 70_000)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 431") or head.startswith(b"HTTP/1.1 400")  # h11's answer, whichever
        writer.close()
    assert taken == []


async def test_a_connection_waiting_for_its_head_is_closed_when_the_server_stops() -> None:
    async with asyncio.timeout(10):
        async with serve(app) as srv:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
            await writer.drain()
            await asyncio.sleep(0.05)
            assert [type(c) for c in srv.server.server_state.connections] == [http.HeadReader]
            loop = asyncio.get_running_loop()
            stopping = loop.time()
        assert await reader.read() == b""  # closed, with nothing sent
        assert loop.time() - stopping < 2  # not held until the head deadline
        writer.close()


async def test_a_client_gone_before_its_head_leaves_nothing_behind() -> None:
    async with asyncio.timeout(10), serve(app) as srv:
        connections = srv.server.server_state.connections
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET / HT")
        await writer.drain()
        await asyncio.sleep(0.05)
        assert len(connections) == 1
        writer.close()
        while connections:
            await asyncio.sleep(0.01)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ("Content-Length: 3", 400),
        ("Transfer-Encoding: chunked", 400),
        ("Content-Length: 3\r\nTransfer-Encoding: chunked", 400),
        ("Content-Length: 0", 101),
    ],
)
@pytest.mark.parametrize("http_name", ["HeadReader", "HttpToolsProtocol"])
async def test_an_upgrade_with_a_body_is_refused(extra: str, status: int, http_name: str) -> None:
    """The bytes after the head are the WebSocket's: a body there is what request smuggling is made of."""
    http_class = getattr(http, http_name)
    if http_class is None:
        pytest.skip("httptools is not installed")
    async with asyncio.timeout(10), serve(app, http=http_class) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes(extra) + b"abc")
        assert head.startswith(b"HTTP/1.1 %d" % status)
        if status == 400 and http_name == "HeadReader":  # httptools refuses the CL + TE conflict itself
            assert await reader.read() == b"An upgrade request has no body.\n"
        writer.close()


async def test_a_head_without_cr_is_answered_at_once() -> None:
    async with asyncio.timeout(5), serve(app) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /lf HTTP/1.1\nHost: x\n\n")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 400")  # uvicorn's httptools answer
        writer.close()


@pytest.mark.parametrize("unfinished", [
    b"GET /lf HTTP/1.1\r\nHost: x\n\r\n",  # an LF without its CR, then what looks like the end
    b"GET /cr HTTP/1.1\r\nHost: x\r\r\n",  # a CR without its LF
    b"GET /nul HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n",
    b"GET /a b HTTP/1.1\r\nHost: x\r\n",  # a space in the target
    b"GET /x HTTP/1.1 extra\r\n",
])
@pytest.mark.parametrize("pieces", [1, 3])
async def test_an_unfinished_head_that_cannot_be_a_request_is_answered_at_once(unfinished: bytes, pieces: int) -> None:
    async with asyncio.timeout(5), serve(app) as srv:  # the head deadline is 10 s: an answer comes first
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        size = -(-len(unfinished) // pieces)
        for start in range(0, len(unfinished), size):
            writer.write(unfinished[start : start + size])
            await writer.drain()
            await asyncio.sleep(0.01)
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 400")
        writer.close()


class QuickReader(http.HeadReader):
    head_timeout = 0.5


async def trickle_until_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> float:
    """Send a header line every 50 ms until the server closes; when that was (loop time)."""
    loop = asyncio.get_running_loop()
    while True:
        try:
            writer.write(b"X: y\r\n")
            if await asyncio.wait_for(reader.read(), 0.05) == b"":
                return loop.time()
        except TimeoutError:
            continue
        except ConnectionError:
            return loop.time()


@pytest.mark.parametrize(
    "first", [b"POST / HTTP/1.1\r\nHost: x\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"y" * 70_000 + b"\r\n"])
async def test_the_first_head_deadline_holds_after_the_hand_over(first: bytes) -> None:
    """A head handed to uvicorn's protocol unfinished must still be complete ``head_timeout`` after the
    connection was made, not that long after the hand-over."""
    async with asyncio.timeout(10), serve(app, http=QuickReader) as srv:
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        opened = loop.time()
        await asyncio.sleep(0.3)
        writer.write(first)  # handed over now, 0.3 s in
        closed = await trickle_until_closed(reader, writer)
        assert closed - opened < 0.75  # 0.5 s, not 0.8 s
        writer.close()


async def test_the_first_head_deadline_leaves_a_keep_alive_connection_alone() -> None:
    async with asyncio.timeout(10), serve(app, http=QuickReader) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /a HTTP/1.1\r\nHost: x\r\n")  # handed over unfinished
        await asyncio.sleep(0.1)
        writer.write(b"Content-Length: 0\r\n\r\n")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"POST /a  ")
        writer.write(b"GET /b HTTP/1.1\r\n")  # the next head, slowly, past the first head's deadline
        await asyncio.sleep(0.6)
        writer.write(b"Host: x\r\n\r\n")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /b  ")
        writer.close()


async def test_a_refused_upgrade_carries_the_server_headers() -> None:
    """The engine's own refusals carry uvicorn's default headers (date, server), as its other answers do."""
    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes().replace(b"Version: 13", b"Version: 7"))
        lines = head.lower().split(b"\r\n")
        assert lines[0].startswith(b"http/1.1 426")
        assert any(line.startswith(b"date: ") for line in lines) and b"server: uvicorn" in lines
        writer.close()


async def slow_app(scope: dict, receive: Any, send: Any) -> None:
    """`app`, with HTTP answers that take a moment: an upgrade behind one must wait for it."""
    if scope["type"] == "http":
        await asyncio.sleep(0.2)
    await app(scope, receive, send)


async def read_all(reader: asyncio.StreamReader) -> bytes:
    data = b""
    while chunk := await reader.read(65536):
        data += chunk
    return data


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_an_upgrade_behind_requests_is_answered_after_them(http_class: type) -> None:
    # RFC 9112 9.3.2: responses go out in the order of the requests, the 101 too.
    early = client_frame(0x1, b"behind the upgrade")
    plain = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
    async with asyncio.timeout(10), serve(slow_app, http=reader_for(http_class)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(plain + plain.replace(b"one", b"two") + request_bytes() + early)
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /two  ")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        assert await read_frame(reader) == (0x1, b"behind the upgrade")
        writer.write(client_frame(0x1, b"after"))
        assert await read_frame(reader) == (0x1, b"after")
        writer.close()

        # A refused upgrade behind a request: the request's answer first, then the refusal, then the end.
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(plain + request_bytes().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 8"))
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
        rest = await read_all(reader)
        assert rest.startswith(b"HTTP/1.1 426 ")
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("line, status", [
    (b"GET /chat HTTP/1.0", b"400"), (b"GET /chat HTTP/2.0", b"400"), (b"GET http://example.com/chat?x=1 HTTP/1.1", b"101"),
    (b"GET ws://example.com HTTP/1.1", b"101"), (b"GET chat HTTP/1.1", b"400"), (b"GET * HTTP/1.1", b"400")])
async def test_an_upgrade_uvicorn_parsed_gets_the_answer_its_bytes_get(line: bytes, status: bytes,
                                                                      http_class: type) -> None:
    request = line + request_bytes()[request_bytes().index(b"\r\n"):]
    async with asyncio.timeout(10), serve(slow_app, http=reader_for(http_class)) as srv:
        # First on the connection, the upgrade is read by bolt; after a request, by uvicorn's parser.
        for first in (b"", b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(first + request)
            if first:  # answered first, even when the parser refuses the request behind it
                assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.split(b" ")[1] == status, (first, head)
            writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("first", [b"", b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 300000\r\n\r\n" + b"b" * 300000])
async def test_a_head_beyond_the_limits_is_refused_with_431_or_414(first: bytes, http_class: type) -> None:
    # uvicorn's httptools protocol keeps a head however long it grows, and h11 bounds only an
    # incomplete one; bolt's both stop at the engine's limits.
    endless = b"GET /two HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * (MAX_REQUEST_SIZE + 1024)
    whole = endless + b"\r\n\r\n"  # complete, and likely read at once: the parsed size refuses it
    many = b"GET /two HTTP/1.1\r\nHost: x\r\n" + b"X-N: 1\r\n" * MAX_HEADERS + b"\r\n"
    fits = b"GET /two HTTP/1.1\r\nHost: x\r\n" + b"X-N: 1\r\n" * (MAX_HEADERS - 1) + b"\r\n"
    long_target = b"GET /two?q=" + b"a" * (MAX_REQUEST_SIZE + 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"  # 414
    async with asyncio.timeout(10), serve(app, http=http_class) as srv:
        for head, answer in ((endless, b"HTTP/1.1 431 "), (whole, b"HTTP/1.1 431 "), (many, b"HTTP/1.1 431 "),
                             (long_target, b"HTTP/1.1 414 "), (fits, b"HTTP/1.1 200 ")):
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            if first:  # a large body before it is not counted as the next head
                writer.write(first + head[:100])
                assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"POST /one " + b"b" * 300000 + b" ")
                head = head[100:]  # the read that ended the body is not counted: the bound is one read more
            writer.write(head)
            status, body = await read_response(reader)
            assert status.startswith(answer), (head[:40], status)
            if answer != b"HTTP/1.1 200 ":
                assert body in (b"Request headers too large.", b"Too many request headers.", b"Request target too long.")
                assert await reader.read() == b""  # and the connection is closed
            writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("request_head, status", [
    (b"GET /one HTTP/1.1\r\n\r\n", b"400"), (b"GET /one HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
    (b"GET /one HTTP/1.0\r\n\r\n", b"200"), (b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n", b"200"),
    (b"GET /one HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
    # RFC 9112 3.2: a Host with an invalid value is a 400 as well.
    (b"GET /one HTTP/1.1\r\nHost: a b\r\n\r\n", b"400"), (b"GET /one HTTP/1.1\r\nHost: user@evil\r\n\r\n", b"400"),
    (b"GET /one HTTP/1.1\r\nHost: a:8x\r\n\r\n", b"400"), (b"GET /one HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", b"200"),
    (b"GET /one HTTP/1.1\r\nHost: \r\n\r\n", b"200"), (b"GET /one HTTP/1.1\r\nHost: a.example:8000\r\n\r\n", b"200")])
async def test_an_http11_request_needs_exactly_one_host(http_class: type, request_head: bytes, status: bytes) -> None:
    async with asyncio.timeout(10), serve(app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(request_head)
        assert (await reader.readuntil(b"\r\n\r\n")).split(b" ")[1] == status
        writer.close()


@pytest.mark.skipif(http.HttpToolsProtocol is None, reason="httptools is not installed")
@pytest.mark.parametrize("body", [b"3\r\nabc\r\nzz\r\n", b"3\r\nabc\r\n0\r\n" + b"T: v\r\n" * (MAX_HEADERS + 10)])
async def test_a_refused_body_is_answered_at_once(body: bytes) -> None:
    # The request whose body the parser refuses owes no earlier answer: its refusal goes out now.
    async with asyncio.timeout(10), serve(app, http=http.HttpToolsProtocol) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        answer = await asyncio.wait_for(reader.read(), 5)  # then the connection is closed
        assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ")), answer
        writer.close()


@pytest.mark.skipif(http.HttpToolsProtocol is None, reason="httptools is not installed")
@pytest.mark.parametrize("refused", [b"GET http:// HTTP/1.1\r\nHost: x\r\n\r\n",  # a target httptools cannot split
                                     b"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"])
async def test_a_refused_request_behind_one_being_answered_is_answered_after_it(refused: bytes) -> None:
    async with asyncio.timeout(10), serve(slow_app, http=http.HttpToolsProtocol) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n" + refused)
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
        assert (await reader.read()).startswith(b"HTTP/1.1 400 ")  # then the connection is closed
        writer.close()


async def headers_app(scope: dict, receive: Any, send: Any) -> None:
    """Answers with the request's header fields, one per line, once its body is read."""
    while (await receive()).get("more_body"):
        pass
    answer = b"\n".join(b"%s=%s" % field for field in scope["headers"]) + b"\npath=" + scope["path"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_trailer_fields_never_join_the_request_headers(http_class: type) -> None:
    # RFC 9110 6.5.1: a trailer is not a header; a trailing X-Forwarded-For or Authorization would
    # pass for what the proxy in front checked.
    async with asyncio.timeout(10), serve(headers_app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /one HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.1.1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n0\r\nX-Forwarded-For: 6.6.6.6\r\nAuthorization: Bearer t\r\nHost: evil\r\n\r\n"
                     b"GET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        status, fields = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert fields.split(b"\n") == [b"host=x", b"x-forwarded-for=1.1.1.1", b"transfer-encoding=chunked",
                                       b"path=/one"]
        assert (await read_response(reader))[1] == b"host=x\npath=/two"  # the next request is intact
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("target, path", [(b"http://example.com/items?x=1", b"/items"), (b"http://example.com", b"/")])
async def test_an_absolute_form_target_is_served_as_its_path(http_class: type, target: bytes, path: bytes) -> None:
    async with asyncio.timeout(10), serve(headers_app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\n\r\n")
        status, fields = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK" and fields.endswith(b"\npath=" + path)
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("target", [b"http://[::1/items", b"http://x:abc/items", b"http://user@example.com/items"])
async def test_an_absolute_form_target_with_a_bad_authority_is_refused(http_class: type, target: bytes) -> None:
    answer = await only_answer(http_class, b"GET " + target + b" HTTP/1.1\r\nHost: example.com\r\n\r\n")
    assert answer == b"HTTP/1.1 400 Bad Request"


async def only_answer(http_class: type, request: bytes) -> bytes:
    """The status line of the one answer a server gives `request` (and what follows it in the same
    write) before it closes the connection."""
    async with asyncio.timeout(10), serve(app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(request)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_content_length_beside_transfer_encoding_is_refused(http_class: type) -> None:
    # RFC 9112 6.3: a proxy may have framed it by the other header; the pipelined request behind it
    # must not be answered.
    assert (await only_answer(http_class, b"POST /one HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
            ).startswith(b"HTTP/1.1 400 ")


@pytest.mark.skipif(http.HttpToolsProtocol is None, reason="httptools is not installed")
@pytest.mark.parametrize("path", ["/stream", "/done"])
async def test_a_refused_body_after_its_response_started_closes_without_a_second_answer(path: str) -> None:
    async def answers_first(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"transfer-encoding", b"chunked")]
                    if path == "/stream" else [(b"content-length", b"2")]})
        if path == "/stream":
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
            await asyncio.sleep(5)  # still streaming when the bad chunk comes
        await send({"type": "http.response.body", "body": b"ok"[: 2 if path == "/done" else 0]})

    async with asyncio.timeout(10), serve(answers_first, http=http.HttpToolsProtocol) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 ")
        await asyncio.sleep(0.2)
        writer.write(b"zz\r\n")
        rest = await asyncio.wait_for(reader.read(), 3)  # the connection closes, with no 400 in it
        assert b"HTTP/1.1 400" not in rest, rest
        writer.close()


class QuickHttpTools(http.HttpToolsProtocol or object):  # type: ignore[misc]
    head_timeout = 0.3


@pytest.mark.skipif(http.HttpToolsProtocol is None, reason="httptools is not installed")
async def test_the_head_deadline_spares_a_pipelined_request_being_answered() -> None:
    # Its head was read with the request before it: its answer may take longer than the deadline.
    async def slower(scope: dict, receive: Any, send: Any) -> None:
        await asyncio.sleep(0.5 if scope.get("path") == "/two" else 0.0)
        await app(scope, receive, send)

    async with asyncio.timeout(10), serve(slower, http=QuickHttpTools) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /two  ")
        writer.close()


REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_a_waiting_upgrade_does_not_inherit_the_context_of_the_request_before_it(http_class: type) -> None:
    seen: list[str] = []

    async def marking(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            seen.append(REQUEST_ID.get())
        else:
            REQUEST_ID.set(scope["path"])
        await slow_app(scope, receive, send)

    async with asyncio.timeout(10), serve(marking, http=reader_for(http_class)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n" + request_bytes())
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        writer.close()
    assert seen == ["none"]


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_frames_sent_while_an_upgrade_waits_reach_the_websocket_and_it_reads_on(http_class: type) -> None:
    async with asyncio.timeout(10), serve(slow_app, http=reader_for(http_class)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n" + request_bytes())
        await asyncio.sleep(0.05)  # a read of its own, while /one is being answered
        writer.write(client_frame(0x1, b"while waiting"))
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /one  ")
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101 ")
        assert await read_frame(reader) == (0x1, b"while waiting")
        for text in (b"after", b"and after"):
            writer.write(client_frame(0x1, text))
            assert await read_frame(reader) == (0x1, text)
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("framing, body", [(b"Content-Length: 5", b"hello"),
                                           (b"Transfer-Encoding: chunked", b"5\r\nhello\r\n0\r\n\r\n")])
async def test_an_upgrade_not_served_is_ignored_and_the_request_served_whole(
        http_class: type, framing: bytes, body: bytes) -> None:
    # What `curl --http2` sends: the body and the request pipelined behind it come in the same read
    # as the head, which httptools skips past once it sees an upgrade.
    async with asyncio.timeout(10), serve(app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"POST /one HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                     b"HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n" + framing + b"\r\n\r\n" + body
                     + b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n"
                     + b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"POST /one hello h2c")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /two  h2c")
        assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"GET /three  ")
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_an_ignored_upgrade_keeps_the_header_fields_it_came_with(http_class: type) -> None:
    async with asyncio.timeout(10), serve(headers_app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n\r\n")
        status, fields = await read_response(reader)
        assert status == b"HTTP/1.1 200 OK"
        assert fields.split(b"\n") == [b"host=x", b"connection=keep-alive, Upgrade", b"upgrade=h2c", b"path=/one"]
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("target", [b"example.com:443", b"/one"])
async def test_connect_is_refused(http_class: type, target: bytes) -> None:
    # A server that is not a proxy has no tunnel to open: httptools takes every CONNECT for an
    # upgrade, and h11 switches to a tunnel on the app's 2xx, after which it refuses the body.
    request = b"CONNECT " + target + b" HTTP/1.1\r\nHost: example.com:443\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
    assert (await only_answer(http_class, request)).startswith(b"HTTP/1.1 400 ")


async def streaming_app(scope: dict, receive: Any, send: Any) -> None:
    """Answers with a body of two parts and no Content-Length."""
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"one,", "more_body": True})
    await send({"type": "http.response.body", "body": b"two"})


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_an_http10_response_without_length_ends_with_the_connection(http_class: type) -> None:
    # RFC 9112 6.1: HTTP/1.0 has no chunked coding.
    async with asyncio.timeout(10), serve(streaming_app, http=http_class) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /one HTTP/1.0\r\n\r\n")
        head, _, body = (await asyncio.wait_for(reader.read(), 5)).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"transfer-encoding" not in head.lower(), head
        assert b"connection: close" in head.lower() and body == b"one,two"
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
@pytest.mark.parametrize("version", [b"2.0", b"0.9", b"3.7"])
async def test_a_request_of_another_http_version_is_refused_with_505(http_class: type, version: bytes) -> None:
    # Not served as HTTP/1.1 with a scope saying "2.0", which an app would take for HTTP/2.
    request = b"GET /one HTTP/" + version + b"\r\nHost: x\r\n\r\n"
    assert (await only_answer(reader_for(http_class), request)).startswith(b"HTTP/1.1 505 ")


async def version_app(scope: dict, receive: Any, send: Any) -> None:
    """Answers with the request's ``http_version``."""
    await receive()
    answer = scope["http_version"].encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % len(answer))]})
    await send({"type": "http.response.body", "body": answer})


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_a_later_http_1_minor_version_is_served_as_1_1(http_class: type) -> None:
    # RFC 9112 2.3: a minor version above the highest implemented is read as that one; the scope
    # keeps to the versions ASGI names.
    async with asyncio.timeout(10), serve(version_app, http=reader_for(http_class)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        for version in (b"1.2", b"1.9", b"1.0"):  # HTTP/1.0 closes (h11 keeps no 1.0 connection)
            writer.write(b"GET /one HTTP/" + version + b"\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            assert await read_response(reader) == (b"HTTP/1.1 200 OK", b"1.1" if version != b"1.0" else b"1.0")
        writer.close()


@pytest.mark.parametrize("http_class", HTTP_CLASSES)
async def test_a_transfer_coding_other_than_chunked_is_refused_with_501(http_class: type) -> None:
    # RFC 9112 6.1: the body would reach the app still gzip-coded, framed by its chunks.
    request = b"POST /one HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    assert (await only_answer(http_class, request)).startswith(b"HTTP/1.1 501 ")
