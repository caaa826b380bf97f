"""Attacks on a real server that must not cost it memory or sockets (issue 11, findings 3-6).

Each test runs bolt's protocol under uvicorn on 127.0.0.1 and plays the attacker with raw
sockets. Timeouts here only keep a broken build from hanging; the measured figures are in
benchmarks/protocol_hardening.py.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets

from bolt import BoltAPI
from bolt.protocol import WebSocketProtocol
from bolt.protocol.connection import MAX_HELD_PONGS
from demo_apps import room_api
from ports import free_port, wait_for_port

from .helpers import client_frame, request_bytes
from .server import read_frame, serve

HERE = Path(__file__).parent
SERVER_PORT_STATES = Path("/proc/net/tcp")


async def stalled_client(port: int, target: str = "/") -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads (a tiny receive buffer)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, request_bytes(target=target))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await loop.sock_recv(sock, 1)
        assert chunk, "server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101")
    return sock


def established(port: int) -> int:
    """Sockets of the server on ``port`` still in ESTABLISHED (state 01), from the kernel's table."""
    count = 0
    for line in SERVER_PORT_STATES.read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":
            count += 1
    return count


async def read_until_close(sock: socket.socket) -> int | None:
    """Read a stalled client's backlog; the close code it ends with, or None if reset/EOF first."""
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        while True:
            opcode, payload = await read_frame(reader)
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0]
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return None
    finally:
        writer.close()


# --- 3 and 4: evicted slow consumers -------------------------------------------------------


class QuickClose(WebSocketProtocol):
    close_timeout = 0.5


def evicting_room_api() -> BoltAPI:
    return room_api(BoltAPI(send_queue=4, send_timeout=0.5))  # a send blocked that long: the client stopped reading


@pytest.mark.skipif(not SERVER_PORT_STATES.exists(), reason="needs Linux's /proc/net/tcp")
@pytest.mark.asyncio
async def test_evicted_stalled_clients_are_reset_after_the_close_timeout() -> None:
    api = evicting_room_api()
    async with asyncio.timeout(30), serve(api, ws=QuickClose, sndbuf=16384) as srv:
        clients = [await stalled_client(srv.port, "/ws") for _ in range(20)]
        while api.hub.health()["connections"] < 20:
            await asyncio.sleep(0.01)
        payload = "x" * 65536
        while api.hub.health()["connections"]:  # broadcast until every stalled client is evicted
            await api.hub.broadcast("room", payload)
            await asyncio.sleep(0.01)
        while srv.connections:  # the close timeout resets them: no peer can hold its socket
            await asyncio.sleep(0.05)
        assert established(srv.port) == 0
        for sock in clients:
            sock.close()


@pytest.mark.asyncio
async def test_an_evicted_client_that_reads_again_is_told_1013() -> None:
    api = evicting_room_api()
    async with asyncio.timeout(30), serve(api, sndbuf=16384) as srv:
        sock = await stalled_client(srv.port, "/ws")
        while api.hub.health()["connections"] < 1:
            await asyncio.sleep(0.01)
        while api.hub.health()["connections"]:
            await api.hub.broadcast("room", "x" * 65536)
            await asyncio.sleep(0.01)
        # The close frame went out behind the backlog at once; reading the backlog reaches it.
        assert await read_until_close(sock) == 1013


@pytest.mark.asyncio
async def test_close_does_not_wait_for_a_paused_transport() -> None:
    sent_close = asyncio.Event()
    blocked: list[BaseException] = []

    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})

        async def flood() -> None:
            try:
                while True:
                    await send({"type": "websocket.send", "bytes": b"y" * 65536})
            except OSError as exc:  # the close frees the send that waits for the buffer to drain
                blocked.append(exc)

        task = asyncio.create_task(flood())
        while not srv.connections[0]._write_paused:
            await asyncio.sleep(0.01)
        await send({"type": "websocket.close", "code": 4000, "reason": "policy"})
        sent_close.set()
        await task

    async with asyncio.timeout(30), serve(app) as srv:
        sock = await stalled_client(srv.port)
        await sent_close.wait()
        while not blocked:
            await asyncio.sleep(0.01)
        assert await read_until_close(sock) == 4000


# --- 5: ping flood -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_ping_flood_from_a_client_that_never_reads_is_bounded() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with asyncio.timeout(60), serve(app) as srv:
        sock = await stalled_client(srv.port)
        loop = asyncio.get_running_loop()
        pings = client_frame(0x9, b"p" * 125) * 500  # ~66 KB per write
        for _ in range(300):  # ~20 MB of pings, each asking for a 127-byte pong
            await loop.sock_sendall(sock, pings)
        await asyncio.sleep(0.2)
        (conn,) = srv.connections
        assert len(conn.conn._out) <= MAX_HELD_PONGS  # held pongs: the latest few, not one per ping
        # The transport's buffer stopped at about its high-water mark instead of one pong per ping.
        assert conn.transport.get_write_buffer_size() < 1 << 20
        sock.close()


@pytest.mark.asyncio
async def test_held_pongs_go_out_when_the_client_reads_again() -> None:
    async def app(scope: dict, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with asyncio.timeout(30), serve(app) as srv, websockets.connect(srv.url + "/") as ws:
        # A client that reads gets every pong (one read holds fewer than MAX_HELD_PONGS pings).
        for n in range(5):
            await asyncio.wait_for(await ws.ping(str(n)), 5)


# --- 6: slowloris before the upgrade, under `bolt run` --------------------------------------


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
    """Send a request head a header line at a time, never its end; what the server answered at the close."""
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    try:
        while True:
            writer.write(b"X: y\r\n")
            try:
                return await asyncio.wait_for(reader.read(), 0.2)
            except TimeoutError:
                continue
    except ConnectionResetError:
        return b""
    finally:
        writer.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("parser", ["HeadReader", "H11Protocol", "HttpToolsProtocol"])
async def test_bolt_run_closes_sockets_that_trickle_a_request_head(parser: str) -> None:
    from bolt.protocol import http

    if getattr(http, parser) is None:
        pytest.skip("httptools is not installed")
    port = free_port()
    command = [sys.executable, "-m", "bolt.cli", "run", "slow_head_app:app", "--port", str(port),
               "--app-dir", str(HERE), "--log-level", "warning", "--http", f"slow_head_app:Quick{parser}"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, 20, process)
        async with asyncio.timeout(30):
            # A WebSocket opened through the same parser outlives the head deadline.
            async with websockets.connect(f"ws://127.0.0.1:{port}/") as ws:
                trickling = [await asyncio.open_connection("127.0.0.1", port) for _ in range(10)]
                ends = await asyncio.gather(*(trickle(reader, writer) for reader, writer in trickling))
                assert ends == [b""] * 10  # closed by the server, with nothing sent
                await ws.send("still open")
                assert await ws.recv() == "still open"
    finally:
        process.terminate()
        process.wait(10)


def test_bolt_run_uses_the_head_deadline_by_default() -> None:
    from bolt.cli import http_protocol
    from bolt.protocol.http import HeadDeadline, HeadReader, default_http_protocol

    cls = default_http_protocol()
    assert issubclass(cls, HeadDeadline) and cls.head_timeout == 10.0
    assert HeadReader.head_timeout == 10.0 and HeadReader.http_class is cls
    assert http_protocol() == "bolt.protocol.http:HeadReader"
