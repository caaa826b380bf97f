"""The uvicorn adapter against a real uvicorn on 127.0.0.1, driven by the websockets client."""

from __future__ import annotations

import asyncio
import logging
import struct
from typing import Any

import pytest
import uvicorn
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from bolt.protocol import SharedMessage, WebSocketProtocol, http
from cyclic_garbage import cyclic_garbage

from .helpers import client_frame, request_bytes
from .server import raw_connect, read_frame, serve

pytestmark = pytest.mark.asyncio


async def echo(scope: dict, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def test_echo_text_and_bytes() -> None:
    async with asyncio.timeout(10), serve(echo) as srv, websockets.connect(srv.url + "/") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        await ws.send(b"\x00\x01" * 100_000)
        assert await ws.recv() == b"\x00\x01" * 100_000
        await ws.send(["frag", "mented"])
        assert await ws.recv() == "fragmented"
        await ws.send(b"z" * (1 << 20))
        assert await ws.recv() == b"z" * (1 << 20)


async def test_scope_and_events() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen["scope"] = scope
        seen["connect"] = await receive()
        await send({"type": "websocket.accept", "subprotocol": "chat", "headers": [(b"x-app", b"1")]})
        seen["disconnect"] = await receive()
        seen["again"] = await receive()  # stays answered once closed

    async with asyncio.timeout(10), serve(app, root_path="/root") as srv:
        async with websockets.connect(srv.url + "/a%20b?q=1", subprotocols=["chat", "other"]) as ws:
            assert ws.subprotocol == "chat"
            assert ws.response.headers["x-app"] == "1"
            assert ws.response.headers["server"] == "uvicorn"
            assert "date" in ws.response.headers
            await ws.close(4001, "bye")
        for _ in range(100):
            if "again" in seen:
                break
            await asyncio.sleep(0.02)
    scope = seen["scope"]
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["path"] == "/root/a b" and scope["raw_path"] == b"/root/a%20b"
    assert scope["root_path"] == "/root" and scope["query_string"] == b"q=1"
    assert scope["subprotocols"] == ["chat", "other"]
    assert scope["scheme"] == "ws" and scope["client"][0] == "127.0.0.1"
    assert "websocket.http.response" in scope["extensions"]
    assert (b"host", f"127.0.0.1:{srv.port}".encode()) in scope["headers"]
    assert seen["connect"] == {"type": "websocket.connect"}
    assert seen["disconnect"] == {"type": "websocket.disconnect", "code": 4001, "reason": "bye"}
    assert seen["again"]["type"] == "websocket.disconnect"


async def test_deflate_negotiated_and_used() -> None:
    async with asyncio.timeout(10), serve(echo) as srv, websockets.connect(srv.url + "/") as ws:
        assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
        await ws.send("compress me " * 1000)
        assert await ws.recv() == "compress me " * 1000


async def test_deflate_off_when_disabled() -> None:
    async with asyncio.timeout(10), serve(echo, ws_per_message_deflate=False) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            assert "sec-websocket-extensions" not in ws.response.headers
            await ws.send("plain")
            assert await ws.recv() == "plain"
            big = bytes(range(256)) * 4096  # 1 MiB: written as header + payload
            await ws.send(big)
            assert await ws.recv() == big


async def test_client_ping_is_answered() -> None:
    async with asyncio.timeout(10), serve(echo) as srv, websockets.connect(srv.url + "/") as ws:
        latency = await asyncio.wait_for(await ws.ping(b"hi"), 5)
        assert latency >= 0


async def test_keepalive_ping_and_timeout() -> None:
    async with asyncio.timeout(10), serve(echo, ws_ping_interval=0.1, ws_ping_timeout=0.2) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes())
        assert head.startswith(b"HTTP/1.1 101")
        opcode, payload = await read_frame(reader)
        assert opcode == 0x9 and len(payload) == 4  # a keepalive ping; we never answer it
        while opcode != 0x8:
            opcode, payload = await read_frame(reader)
        assert struct.unpack("!H", payload[:2])[0] == 1011
        assert await reader.read() == b""  # and the server dropped the connection
        writer.close()


async def test_keepalive_answered_keeps_connection() -> None:
    async with asyncio.timeout(10), serve(echo, ws_ping_interval=0.05, ws_ping_timeout=0.5) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            await asyncio.sleep(0.4)  # several pings, all answered by the client
            await ws.send("still here")
            assert await ws.recv() == "still here"


async def test_a_pong_unread_while_the_app_is_behind_is_not_a_timeout() -> None:
    # ws_max_queue messages wait for a busy app, so reading pauses: the client's timely pong sits
    # unread in the socket, which must not count as a dead peer.
    taken = asyncio.Event()

    async def busy(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await taken.wait()
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with asyncio.timeout(10), serve(busy, ws_ping_interval=0.1, ws_ping_timeout=0.3) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes())
        assert head.startswith(b"HTTP/1.1 101")
        writer.write(b"".join(client_frame(0x1, b"m%d" % n) for n in range(40)))  # past ws_max_queue (32)
        deadline = asyncio.get_running_loop().time() + 1.0  # several ping timeouts
        while (left := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                opcode, payload = await asyncio.wait_for(read_frame(reader), left)
            except TimeoutError:
                break
            assert opcode == 0x9, (opcode, payload)  # pings only: no close
            writer.write(client_frame(0xA, payload))  # answered at once
        taken.set()
        writer.write(client_frame(0x8, struct.pack("!H", 1000)))
        opcode, payload = await read_frame(reader)
        while opcode == 0x9:
            opcode, payload = await read_frame(reader)
        assert (opcode, payload[:2]) == (0x8, struct.pack("!H", 1000))
        writer.close()


async def test_shutdown_closes_with_1012() -> None:
    disconnect: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        disconnect.append(await receive())

    async with asyncio.timeout(10):
        async with serve(app) as srv:
            ws = await websockets.connect(srv.url + "/")
            srv.server.should_exit = True
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1012
        assert disconnect[0]["code"] == 1012


async def test_denial_with_http_response_extension() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b'{"detail":', "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b' "login first"}'})

    async with asyncio.timeout(10), serve(app) as srv:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(srv.url + "/")
        response = info.value.response
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/json"
        assert response.body == b'{"detail": "login first"}'


async def test_close_before_accept_is_403() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.close", "code": 1008})

    async with asyncio.timeout(10), serve(app) as srv:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(srv.url + "/")
        assert info.value.response.status_code == 403


@pytest.mark.parametrize("when", ["before", "after"])
async def test_app_exception(when: str) -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        if when == "after":
            await send({"type": "websocket.accept"})
        raise RuntimeError("boom")

    async with asyncio.timeout(10), serve(app) as srv:
        if when == "before":
            with pytest.raises(InvalidStatus) as info:
                await websockets.connect(srv.url + "/")
            assert info.value.response.status_code == 500
            assert b"boom" not in info.value.response.body  # no traceback leaks
        else:
            async with websockets.connect(srv.url + "/") as ws:
                with pytest.raises(ConnectionClosed):
                    await ws.recv()
                assert ws.close_code == 1011


async def test_app_returning_without_accept_is_500() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()

    async with asyncio.timeout(10), serve(app) as srv:
        with pytest.raises(InvalidStatus) as info:
            await websockets.connect(srv.url + "/")
        assert info.value.response.status_code == 500


async def test_app_returning_after_accept_closes_1000() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

    async with asyncio.timeout(10), serve(app) as srv, websockets.connect(srv.url + "/") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1000


BOLT_HTTP = [http.H11Protocol, *([http.HttpToolsProtocol] if http.HttpToolsProtocol else [])]


@pytest.mark.parametrize(
    "http", ["h11", "httptools", http.HeadReader, *BOLT_HTTP], ids=lambda http: getattr(http, "__name__", http))
@pytest.mark.parametrize("trusted", [True, False])
async def test_proxy_headers_rewrite_the_scope_of_a_trusted_proxy(http: Any, trusted: bool) -> None:
    # bolt's protocol runs uvicorn's proxy-headers rewrite itself rather than awaiting the middleware.
    if http == "httptools":
        pytest.importorskip("httptools")
    scopes: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    forwarded = ("X-Forwarded-For: 203.0.113.7, 127.0.0.1", "X-Forwarded-Proto: https")
    allowed = "127.0.0.1" if trusted else "192.0.2.1"
    async with asyncio.timeout(10), serve(app, http=http, forwarded_allow_ips=allowed) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes(*forwarded))
        assert head.startswith(b"HTTP/1.1 101")
        writer.write(client_frame(0x1, b"hi"))
        assert await read_frame(reader) == (0x1, b"hi")
        writer.close()
    (scope,) = scopes
    if trusted:
        assert scope["client"] == ("203.0.113.7", 0) and scope["scheme"] == "wss"
    else:
        assert scope["client"][0] == "127.0.0.1" and scope["scheme"] == "ws"


@pytest.mark.parametrize("proxy_headers", [True, False])
async def test_an_app_that_cannot_be_hashed_is_served(proxy_headers: bool) -> None:
    class Unhashable:  # as a dataclass with eq=True is
        __hash__ = None  # type: ignore[assignment]

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            await echo(scope, receive, send)

    async with asyncio.timeout(10), serve(Unhashable(), proxy_headers=proxy_headers) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"


@pytest.mark.parametrize("http", ["h11", "httptools", http.HeadReader], ids=lambda http: getattr(http, "__name__", http))
async def test_bytes_after_upgrade_are_not_lost(http: Any) -> None:
    if http == "httptools":
        pytest.importorskip("httptools")
    async with asyncio.timeout(10), serve(echo, http=http) as srv:
        await _frames_sent_with_the_request_arrive(srv.port)


async def _frames_sent_with_the_request_arrive(port: int) -> None:
    early = client_frame(0x1, b"sent with the request") + client_frame(0x2, b"\x01\x02")
    reader, writer, head = await raw_connect(port, request_bytes() + early)
    assert head.startswith(b"HTTP/1.1 101")
    assert await read_frame(reader) == (0x1, b"sent with the request")
    assert await read_frame(reader) == (0x2, b"\x01\x02")
    writer.close()


@pytest.mark.parametrize("http_class", BOLT_HTTP, ids=lambda cls: cls.__name__)
async def test_bolt_http_hands_the_parsed_request_over(http_class: type, monkeypatch: pytest.MonkeyPatch) -> None:
    taken: list[tuple[bytes, bytes]] = []
    upgrade = WebSocketProtocol.upgrade

    def spy(self: WebSocketProtocol, transport: Any, method: bytes, target: bytes, fields: Any, *more: Any) -> None:
        taken.append((method, target))
        upgrade(self, transport, method, target, fields, *more)

    monkeypatch.setattr(WebSocketProtocol, "upgrade", spy)
    async with asyncio.timeout(10), serve(echo, http=http_class) as srv:
        await _frames_sent_with_the_request_arrive(srv.port)
        bad = request_bytes().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 7")
        reader, writer, head = await raw_connect(srv.port, bad)
        assert head.startswith(b"HTTP/1.1 426")
        assert b"sec-websocket-version: 13" in head
        assert await reader.read() == b"Unsupported WebSocket version; this server speaks version 13.\n"
        writer.close()
    assert taken == [(b"GET", b"/chat?x=1")] * 2


@pytest.mark.parametrize("http_class", [http.HeadReader, *BOLT_HTTP], ids=lambda cls: cls.__name__)
async def test_bolt_http_protocol_is_freed_without_the_cyclic_gc(http_class: type) -> None:
    """Once it handed the upgrade over, the HTTP protocol (and the transport it holds) is freed by
    refcounting when the connection ends: no work for the cyclic GC on every handshake."""
    async with asyncio.timeout(10), serve(echo, http=http_class) as srv:
        with cyclic_garbage(http_class) as left:
            async with websockets.connect(srv.url + "/") as ws:
                await ws.send("hi")
                assert await ws.recv() == "hi"
            while srv.connections:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # the server's task for the connection ends after the close
    assert left == []


@pytest.mark.parametrize("http_class", [http.HeadReader, *BOLT_HTTP], ids=lambda cls: cls.__name__)
async def test_bolt_http_replays_the_request_to_another_websocket_protocol(http_class: type) -> None:
    async with asyncio.timeout(10), serve(echo, ws="websockets-sansio", http=http_class) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            await ws.send("hello")
            assert await ws.recv() == "hello"


async def test_invalid_upgrade_request_is_refused() -> None:
    async with asyncio.timeout(10), serve(echo) as srv:
        bad = request_bytes().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 7")
        reader, writer, head = await raw_connect(srv.port, bad)
        assert head.startswith(b"HTTP/1.1 426")
        assert b"sec-websocket-version: 13" in head
        writer.close()


async def test_message_too_big_is_1009() -> None:
    async with asyncio.timeout(10), serve(echo, ws_max_size=1000) as srv:
        async with websockets.connect(srv.url + "/", compression=None) as ws:
            await ws.send(b"x" * 1001)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009


async def test_protocol_error_reply_order() -> None:
    """Messages before a protocol error are answered before the 1002 close."""
    async with asyncio.timeout(10), serve(echo) as srv:
        data = client_frame(0x1, b"first") + client_frame(0x1, b"bad", rsv=0x20)
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        writer.write(data)
        assert await read_frame(reader) == (0x1, b"first")
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1002
        writer.close()


class _Recording:
    """A connection's transport, recording what is written through it (uvloop's transports cannot be patched)."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self.transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


async def test_replies_to_one_read_leave_in_one_write() -> None:
    """Replies to messages that arrived together are written together, in order, before a close."""
    async with asyncio.timeout(10), serve(echo) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        (conn,) = srv.connections
        conn.transport = recording = _Recording(conn.transport)
        messages = [f"message {i}".encode() for i in range(20)]
        writer.write(b"".join(client_frame(0x1, m) for m in messages))
        for m in messages:
            assert await read_frame(reader) == (0x1, m)
        assert len(recording.writes) == 1
        writer.write(client_frame(0x1, b"last") + client_frame(0x8, struct.pack("!H", 1000)))
        assert await read_frame(reader) == (0x1, b"last")
        assert await read_frame(reader) == (0x8, struct.pack("!H", 1000))
        writer.close()


async def test_send_waits_while_transport_is_paused() -> None:
    sent = 0

    async def app(scope: dict, receive: Any, send: Any) -> None:
        nonlocal sent
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            await send({"type": "websocket.send", "bytes": b"x" * (1 << 20)})
            sent += 1

    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())  # never reads frames
        await asyncio.sleep(0.5)
        assert 0 < sent < 40  # bounded by socket buffers, not by the app's loop
        (conn,) = srv.connections
        assert conn._write_paused
        writer.close()


async def test_reading_pauses_when_app_falls_behind() -> None:
    started, release = asyncio.Event(), asyncio.Event()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        started.set()
        await release.wait()  # does not read meanwhile

    async with asyncio.timeout(10), serve(app, ws_max_queue=8) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        await started.wait()
        frame = client_frame(0x2, b"y" * 1000)
        for _ in range(200):
            writer.write(frame * 50)
            await asyncio.sleep(0)
        await asyncio.sleep(0.3)
        (conn,) = srv.connections
        assert conn._read_paused
        # Bounded by the queue limit: what else was read waits in the engine, undecoded.
        assert len(conn._queue) <= 8
        assert conn.conn.holding
        release.set()
        writer.close()


async def test_slow_close_is_dropped_after_timeout() -> None:
    class Quick(WebSocketProtocol):
        close_timeout = 0.2

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 1000})

    async with asyncio.timeout(10), serve(app, ws=Quick) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        assert (await read_frame(reader))[0] == 0x8
        # We never answer the close: the server must drop us on its own.
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()


async def test_handshake_that_never_completes_times_out() -> None:
    class Quick(WebSocketProtocol):
        handshake_timeout = 0.1

    class Transport(asyncio.Transport):
        closed = False

        def get_protocol(self) -> None:
            return None

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return default

        def close(self) -> None:
            self.closed = True

    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(echo, ws=Quick, lifespan="off")
    protocol = Quick(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    protocol.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and then nothing
    await asyncio.sleep(0.3)
    assert transport.closed


async def test_app_closing_with_a_reserved_code_fails_cleanly() -> None:
    errors: list[BaseException] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        try:
            await send({"type": "websocket.close", "code": 1006})
        except ValueError as exc:
            errors.append(exc)
            raise

    async with asyncio.timeout(10), serve(app) as srv, websockets.connect(srv.url + "/") as ws:
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 1011
    assert errors


async def test_replies_precede_the_close_echo_and_app_sees_the_code() -> None:
    seen: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            seen.append(message)
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message["text"].upper()})

    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        close = client_frame(0x8, struct.pack("!H", 4000) + b"done")
        writer.write(client_frame(0x1, b"one") + client_frame(0x1, b"two") + close)
        assert await read_frame(reader) == (0x1, b"ONE")
        assert await read_frame(reader) == (0x1, b"TWO")
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 4000
        assert await reader.read() == b""
        writer.close()
    assert seen[-1] == {"type": "websocket.disconnect", "code": 4000, "reason": "done"}


async def test_app_sees_the_protocol_error_code() -> None:
    seen: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        seen.append(await receive())

    async with asyncio.timeout(10), serve(app) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        writer.write(client_frame(0x1, b"\xff\xfe"))
        opcode, payload = await read_frame(reader)
        assert opcode == 0x8 and struct.unpack("!H", payload[:2])[0] == 1007
        writer.close()
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.02)
    assert seen[0]["type"] == "websocket.disconnect" and seen[0]["code"] == 1007


async def test_frames_extension_writes_shared_messages_while_open() -> None:
    results: list[bool] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        frames = scope["extensions"]["bolt.frames"]
        assert frames.send == send  # the app can tell that nothing wraps the server's send
        await receive()
        results.append(frames.write_shared(SharedMessage("early")))  # before accept: refused
        await send({"type": "websocket.accept"})
        results.append(frames.write_shared(SharedMessage("héllo")))
        results.append(frames.write_shared(SharedMessage(b"\x00" * 70_000)))
        await send({"type": "websocket.send", "text": "after"})  # one stream with the ASGI sends
        await receive()
        await send({"type": "websocket.close", "code": 1000})
        results.append(frames.write_shared(SharedMessage("late")))  # after our close: refused

    async with asyncio.timeout(10), serve(app, ws_per_message_deflate=False) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            assert await ws.recv() == "héllo"
            assert await ws.recv() == b"\x00" * 70_000
            assert await ws.recv() == "after"
            await ws.send("done")
            with pytest.raises(ConnectionClosed):
                await ws.recv()
    assert results == [False, True, True, False]


async def test_frames_extension_compresses_once_for_all_deflate_connections() -> None:
    message = SharedMessage("squeeze me " * 500)
    results: list[bool] = []
    both = asyncio.Event()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        results.append(scope["extensions"]["bolt.frames"].write_shared(message))
        if len(results) == 2:
            both.set()
        await both.wait()
        await send({"type": "websocket.send", "text": "and its own"})  # the connection's own encoder after it

    async with asyncio.timeout(10), serve(app) as srv:
        async with websockets.connect(srv.url + "/") as one, websockets.connect(srv.url + "/") as two:
            for ws in (one, two):
                assert "permessage-deflate" in ws.response.headers["sec-websocket-extensions"]
                assert await ws.recv() == "squeeze me " * 500
                assert await ws.recv() == "and its own"
    assert results == [True, True]
    (frame,) = message._deflated.values()  # one compression served both connections
    assert len(frame) < 100


async def test_frames_extension_refuses_while_the_transport_is_paused() -> None:
    results: list[bool] = []
    paused = asyncio.Event()
    resumed = asyncio.Event()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        write = scope["extensions"]["bolt.frames"].write_shared
        await receive()
        await send({"type": "websocket.accept"})
        await paused.wait()
        results.append(write(SharedMessage("while paused")))
        await resumed.wait()
        results.append(write(SharedMessage("resumed")))

    async with asyncio.timeout(10), serve(app) as srv:
        async with websockets.connect(srv.url + "/", compression=None) as ws:
            (conn,) = srv.connections
            conn.pause_writing()  # as the transport does above its high-water mark
            paused.set()
            await asyncio.sleep(0.05)
            conn.resume_writing()
            resumed.set()
            assert await ws.recv() == "resumed"
    assert results == [False, True]


async def test_scope_server_is_the_local_address() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen["server"] = scope["server"]
        await send({"type": "websocket.close"})

    async with asyncio.timeout(10), serve(app) as srv:
        with pytest.raises(InvalidStatus):
            async with websockets.connect(srv.url + "/"):
                pass
    assert seen["server"] == ("127.0.0.1", srv.port)


async def test_scope_client_is_the_peer_address() -> None:
    seen: dict[str, Any] = {}

    async def app(scope: dict, receive: Any, send: Any) -> None:
        seen["client"] = scope["client"]
        await send({"type": "websocket.accept"})
        await receive()

    async with asyncio.timeout(10), serve(app) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            local = ws.transport.get_extra_info("sockname")
    assert seen["client"] == ("127.0.0.1", local[1])


async def test_no_reset_timer_when_nothing_is_left_to_send() -> None:
    armed: list[bool] = []

    class Recording(WebSocketProtocol):
        def _close_transport(self) -> None:
            super()._close_transport()
            armed.append(self._reset_timer is not None)

    async with asyncio.timeout(10), serve(echo, ws=Recording) as srv:
        async with websockets.connect(srv.url + "/") as ws:
            await ws.send("hi")
            assert await ws.recv() == "hi"
        for _ in range(100):
            if armed:
                break
            await asyncio.sleep(0.01)
    assert armed and not any(armed)


async def test_handshake_outcomes_are_logged_at_info() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["path"] == "/no":
            await send({"type": "websocket.close"})
        elif scope["path"] == "/teapot":
            await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
            await send({"type": "websocket.http.response.body", "body": b""})
        else:
            await echo(scope, receive, send)

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("uvicorn.error")
    handler = Collect()
    async with asyncio.timeout(10), serve(app) as srv:
        level = logger.level
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            async with websockets.connect(srv.url + "/yes?x=1"):
                pass
            for path in ("/no", "/teapot"):
                with pytest.raises(InvalidStatus):
                    async with websockets.connect(srv.url + path):
                        pass
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)
    outcomes = [m.split(" - ", 1)[1] for m in records if '"WebSocket ' in m]
    assert outcomes == ['"WebSocket /yes?x=1" [accepted]', '"WebSocket /no" 403', '"WebSocket /teapot" 418']


@pytest.mark.parametrize("http_class", BOLT_HTTP, ids=lambda cls: cls.__name__)
async def test_served_on_a_unix_socket(http_class: type, tmp_path: Any) -> None:
    # Behind a proxy on the same host (uvicorn --uds): no TCP addresses for the scope.
    scopes: list[dict] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        scopes.append(scope)
        await echo(scope, receive, send)

    path = str(tmp_path / "bolt.sock")
    config = uvicorn.Config(app, uds=path, ws=WebSocketProtocol, http=http_class, lifespan="off",
                            log_level="warning", ws_ping_interval=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(10):
            while not server.started:
                await asyncio.sleep(0.01)
            async with websockets.unix_connect(path, "ws://localhost/") as ws:
                await ws.send("over a unix socket")
                assert await ws.recv() == "over a unix socket"
    finally:
        server.should_exit = True
        await task
    (scope,) = scopes
    assert scope["client"] is None and scope["path"] == "/"
