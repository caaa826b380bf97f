"""ws_max_queue bounds what is decoded, not only what is read: the engine stops at the room left in the
queue and holds the rest of a read, undecoded, until the app has taken half."""

from __future__ import annotations

import asyncio
import socket
import struct
import zlib
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bolt.protocol import (
    CloseReceived,
    ConnectionFailed,
    ConnectionState,
    DeflateOptions,
    Ping,
    ServerConnection,
    WebSocketProtocol,
)

from .helpers import client_frame, open_connection, parse_server_frames, request_bytes
from .server import raw_connect, read_frame, serve

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
RSV1 = 0x40
MAX_QUEUE = 8


def compress(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)  # a fresh context per message: decodes with or without takeover
    return (c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]


def wire(index: int, kind: str) -> bytes:
    """Message ``index`` as a client sends it: ``plain`` (one frame), ``fragmented`` (three frames with
    a ping between them) or ``deflated``."""
    text = str(index).encode()
    if kind == "fragmented":
        return (client_frame(TEXT, text[:1], fin=False) + client_frame(PING, b"p")
                + client_frame(CONT, text[1:2], fin=False) + client_frame(CONT, text[2:]))
    if kind == "deflated":
        return client_frame(TEXT, compress(text), rsv=RSV1) if index % 2 else client_frame(BINARY, text)
    return client_frame(TEXT, text)


def described(events: list[Any]) -> list[Any]:
    """Events as comparable values (the event classes compare by identity)."""
    return [event if isinstance(event, (str, bytes)) else repr(event) for event in events]


def messages_of(events: list[Any]) -> list[str | bytes]:
    return [event for event in events if isinstance(event, (str, bytes))]


# ------------------------------------------------------------------ the engine


def deflate_connection() -> ServerConnection:
    conn = ServerConnection(deflate=DeflateOptions())
    conn.receive_data(request_bytes("Sec-WebSocket-Extensions: permessage-deflate"))
    conn.accept()
    assert conn.extension is not None
    return conn


@pytest.mark.parametrize("kind", ["plain", "fragmented", "deflated"])
def test_the_engine_stops_at_the_bound_and_goes_on_from_there(kind: str) -> None:
    conn = deflate_connection() if kind == "deflated" else open_connection()
    data = b"".join(wire(i, kind) for i in range(100, 200)) + client_frame(PING, b"last") + client_frame(CLOSE, b"\x03\xe8")
    events = conn.receive_data(data, 7)
    assert len(messages_of(events)) == 7
    assert conn.holding and conn.state is ConnectionState.OPEN
    got = messages_of(events)
    while conn.holding:
        events = conn.receive_data(b"", 10)
        assert len(messages_of(events)) <= 10
        got += messages_of(events)
    assert [int(m) for m in got] == list(range(100, 200))
    assert described(events[-2:]) == described([Ping(b"last"), CloseReceived(1000, "")])  # behind the last cut, seen last
    assert conn.state is ConnectionState.REMOTE_CLOSING


def test_nothing_behind_the_cut_is_looked_at() -> None:
    conn = open_connection()
    # A protocol error and a ping behind the cut wait: the messages before them are delivered first.
    data = client_frame(TEXT, b"a") + client_frame(TEXT, b"b") + client_frame(PING, b"x") + client_frame(TEXT, b"\xff")
    assert conn.receive_data(data, 1) == ["a"]
    assert conn.data_to_send() == b""  # the ping is not answered yet
    assert conn.receive_data(b"", 1) == ["b"]
    events = conn.receive_data(b"", 1)
    assert described(events) == described([Ping(b"x"), ConnectionFailed(1007, "invalid UTF-8 in text message")])
    assert not conn.holding


def test_a_bound_of_zero_decodes_nothing() -> None:
    conn = open_connection()
    assert conn.receive_data(client_frame(PING, b"p") + client_frame(TEXT, b"a"), 0) == []
    assert conn.holding and conn.data_to_send() == b""
    assert described(conn.receive_data(b"", 1)) == described([Ping(b"p"), "a"])
    assert conn.receive_data(b"", 0) == [] and not conn.holding
    assert conn.receive_data(client_frame(TEXT, b"a", fin=False), 0) == [] and conn.holding
    assert conn.receive_data(b"", 1) == [] and not conn.holding  # a message in progress, nothing left over
    assert conn.receive_data(b"", 0) == [] and not conn.holding
    assert conn.receive_data(client_frame(CONT, b"b"), 1) == ["ab"]


def test_input_read_while_frames_are_held_is_decoded_behind_them() -> None:
    conn = open_connection()
    assert conn.receive_data(client_frame(TEXT, b"1") + client_frame(TEXT, b"2"), 1) == ["1"]
    assert conn.receive_data(client_frame(TEXT, b"3"), 5) == ["2", "3"]
    assert not conn.holding


def test_after_our_close_everything_is_decoded() -> None:
    conn = open_connection()
    conn.receive_data(b"".join(client_frame(TEXT, b"m") for _ in range(10)) + client_frame(CLOSE, b"\x03\xe8"), 2)
    conn.close()
    assert described(conn.receive_data(b"", 1)) == [repr(CloseReceived(1000, ""))]  # messages are dropped once we closed
    assert conn.state is ConnectionState.CLOSED and not conn.holding


def test_frames_pipelined_before_accept_are_bounded_too() -> None:
    conn = ServerConnection()
    conn.receive_data(request_bytes() + b"".join(client_frame(TEXT, b"%d" % i) for i in range(5)))
    conn.accept()
    assert conn.holding
    assert conn.receive_data(b"", 2) == ["0", "1"]
    assert conn.receive_data(b"", 5) == ["2", "3", "4"]
    assert not conn.holding


@st.composite
def streams(draw: st.DrawFn) -> tuple[bytes, list[int], list[int]]:
    """Messages of every kind in one stream, cut into reads, and the bound of each call."""
    kinds = draw(st.lists(st.sampled_from(["plain", "fragmented", "deflated", "ping", "big"]), min_size=1, max_size=30))
    parts = []
    for i, kind in enumerate(kinds):
        if kind == "ping":
            parts.append(client_frame(PING, b"%d" % i))
        elif kind == "big":  # completed over several reads (the engine's mask_join path)
            parts.append(client_frame(BINARY, b"%d" % (100 + i) + b"." * 5000))
        else:
            parts.append(wire(100 + i, kind))
    data = b"".join(parts)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=6)))
    bounds = draw(st.lists(st.integers(1, 4), min_size=1, max_size=20))
    return data, cuts, bounds


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams())
def test_bounded_decoding_gives_the_events_of_unbounded_decoding(stream: tuple[bytes, list[int], list[int]]) -> None:
    data, cuts, bounds = stream
    unbounded = deflate_connection()
    expected = unbounded.receive_data(data)
    conn = deflate_connection()
    got: list[Any] = []
    calls = 0
    for start, stop in zip([0, *cuts], [*cuts, len(data)]):
        reads = [data[start:stop]]
        while reads or conn.holding:
            bound = bounds[calls % len(bounds)]
            calls += 1
            events = conn.receive_data(reads.pop() if reads else b"", bound)
            assert len(messages_of(events)) <= bound
            got += events
    assert described(got) == described(expected)
    assert conn.data_to_send() == unbounded.data_to_send()  # the same pongs


# ------------------------------------------------------- a real uvicorn server


class Recording(WebSocketProtocol):
    """Records the deepest the queue has been after each read."""

    deepest: list[int] = []

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        Recording.deepest.append(len(self._queue))


class LateReader:
    """An app that accepts, then reads nothing until `release` is set, then records every message
    up to the disconnect in `received`; with a `reply`, it first sends that and waits a moment."""

    def __init__(self, reply: str | None = None) -> None:
        self.started, self.release = asyncio.Event(), asyncio.Event()
        self.received: list[Any] = []
        self.reply = reply

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        self.started.set()
        await self.release.wait()
        if self.reply is not None:
            await send({"type": "websocket.send", "text": self.reply})
            await asyncio.sleep(0.2)  # a loss the reply finds is noticed before the app reads
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "websocket.disconnect":
                return


def wait_for(predicate: Any) -> Any:
    async def waiting() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    return asyncio.wait_for(waiting(), 5)


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["plain", "fragmented", "deflated"])
async def test_a_handler_that_does_not_read_holds_a_bounded_queue(kind: str) -> None:
    app = LateReader()
    started, release, received = app.started, app.release, app.received
    Recording.deepest = []
    count = 3000
    offer = ("Sec-WebSocket-Extensions: permessage-deflate",) if kind == "deflated" else ()
    async with asyncio.timeout(20), serve(app, ws=Recording, ws_max_queue=MAX_QUEUE) as srv:
        reader, writer, head = await raw_connect(srv.port, request_bytes(*offer))
        assert (b"permessage-deflate" in head) == (kind == "deflated")
        await started.wait()
        # Thousands of frames in one write, then a ping and a close behind them.
        writer.write(b"".join(wire(i, kind) for i in range(1000, 1000 + count))
                     + client_frame(PING, b"behind") + client_frame(CLOSE, b"\x03\xe8bye"))
        (conn,) = srv.connections
        await wait_for(lambda: conn._read_paused and conn.conn.holding)
        await asyncio.sleep(0.2)  # nothing more is decoded while the app does not read
        assert len(conn._queue) <= MAX_QUEUE
        assert max(Recording.deepest) <= MAX_QUEUE
        release.set()
        # The pongs to the fragments' pings come as they are decoded; the last pong, then the close echo.
        frames = []
        while not frames or frames[-1][0] != CLOSE:
            frames.append(await read_frame(reader))
        assert frames[-2:] == [(PONG, b"behind"), (CLOSE, b"\x03\xe8")]
        assert await reader.read() == b""
        writer.close()
    texts = [m.get("text") or m.get("bytes").decode() for m in received[:-1]]
    assert texts == [str(i) for i in range(1000, 1000 + count)]
    assert received[-1] == {"type": "websocket.disconnect", "code": 1000, "reason": "bye"}
    assert max(Recording.deepest) <= MAX_QUEUE + 1  # + the disconnect


@pytest.mark.asyncio
@pytest.mark.parametrize("close_frame", [False, True])
async def test_messages_held_when_the_connection_is_lost_still_reach_the_app(close_frame: bool) -> None:
    # The client sends a burst (and maybe its close frame) and resets the connection while the app is
    # behind; the app's reply then finds the connection gone. What the client sent before it went
    # is delivered all the same, the held part too, and then the disconnect.
    app = LateReader(reply="late")
    started, release, received = app.started, app.release, app.received
    count = 500
    async with asyncio.timeout(10), serve(app, ws_max_queue=MAX_QUEUE) as srv:
        _, writer, _ = await raw_connect(srv.port, request_bytes())
        await started.wait()
        tail = client_frame(CLOSE, b"\x0f\xa1gone") if close_frame else b""
        writer.write(b"".join(client_frame(TEXT, str(i).encode()) for i in range(count)) + tail)
        (conn,) = srv.connections
        await wait_for(lambda: conn._read_paused and conn.conn.holding)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # a reset: the server learns of it when it writes
        release.set()
        await wait_for(lambda: bool(received) and received[-1]["type"] == "websocket.disconnect")
    assert [m["text"] for m in received[:-1]] == [str(i) for i in range(count)]
    expected = {"type": "websocket.disconnect", "code": 4001, "reason": "gone"} if close_frame else \
        {"type": "websocket.disconnect", "code": 1006}
    assert received[-1] == expected


@pytest.mark.asyncio
async def test_a_close_from_the_app_completes_with_a_close_frame_held_behind_the_cut() -> None:
    started = asyncio.Event()
    close = asyncio.Event()
    disconnect: list[Any] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        started.set()
        await close.wait()
        await send({"type": "websocket.close", "code": 4000, "reason": "enough"})
        while (message := await receive())["type"] != "websocket.disconnect":
            pass
        disconnect.append(message)

    async with asyncio.timeout(10), serve(app, ws_max_queue=MAX_QUEUE) as srv:
        reader, writer, _ = await raw_connect(srv.port, request_bytes())
        await started.wait()
        writer.write(b"".join(client_frame(TEXT, b"x") for _ in range(500)) + client_frame(CLOSE, b"\x03\xe8"))
        (conn,) = srv.connections
        await wait_for(lambda: conn.conn.holding)
        close.set()
        assert await read_frame(reader) == (CLOSE, b"\x0f\xa0enough")
        # Our close frame answered the peer's, which was held: the server closes at once, not after close_timeout.
        assert await asyncio.wait_for(reader.read(), 2) == b""
        assert conn.conn.state is ConnectionState.CLOSED
        writer.close()
    # The app closed before the peer's close frame was decoded: its disconnect carries its own code.
    assert disconnect == [{"type": "websocket.disconnect", "code": 4000, "reason": "enough"}]


def test_a_bound_of_zero_holds_the_rest_of_a_large_frame_too() -> None:
    # A frame of 4 KiB or more cut by the end of a read is joined from its parts; with no room,
    # its rest waits with what follows, and nothing is decoded.
    conn = open_connection()
    big, small = client_frame(BINARY, b"x" * 5000), client_frame(TEXT, b"after")
    assert conn.receive_data(big[:100], 1) == [] and not conn.holding
    assert conn.receive_data(big[100:] + small, 0) == [] and conn.holding
    assert conn.receive_data(b"", 1) == [b"x" * 5000] and conn.holding
    assert conn.receive_data(b"", 1) == ["after"] and not conn.holding


def test_pongs_are_only_parsed_in_order() -> None:
    # parse_server_frames reads what the engine wrote for the pings, in order.
    conn = open_connection()
    conn.receive_data(client_frame(PING, b"1") + client_frame(TEXT, b"t") + client_frame(PING, b"2"), 1)
    assert [f[3] for f in parse_server_frames(conn.data_to_send())] == [b"1"]
    conn.receive_data(b"", 1)
    assert [f[3] for f in parse_server_frames(conn.data_to_send())] == [b"2"]
