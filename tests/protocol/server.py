"""Run an ASGI app under a real uvicorn, on 127.0.0.1 and a free port, with bolt's protocol."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from bolt.protocol import WebSocketProtocol
from bolt.protocol.http import HeadReader


class Served:
    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port
        self.url = f"ws://127.0.0.1:{port}"

    @property
    def connections(self) -> list[Any]:
        return [c for c in self.server.server_state.connections if isinstance(c, WebSocketProtocol)]


@contextlib.asynccontextmanager
async def serve(app: Any, ws: type = WebSocketProtocol, sndbuf: int | None = None, **options: Any) -> AsyncIterator[Served]:
    """Serve ``app`` as `bolt run` does (bolt's ``HeadReader`` first, unless ``http=`` says otherwise);
    ``sndbuf`` sets the kernel send buffer of every accepted socket (they inherit it)."""
    options.setdefault("ws_ping_interval", None)
    options.setdefault("http", HeadReader)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, ws=ws, lifespan="off", log_level="warning", **options)
    server = uvicorn.Server(config)
    sockets = None
    if sndbuf is not None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.bind(("127.0.0.1", 0))
        sockets = [sock]
    task = asyncio.create_task(server.serve(sockets=sockets))
    try:
        async with asyncio.timeout(5):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield Served(server, port)
    finally:
        server.should_exit = True
        async with asyncio.timeout(10):
            await task


async def raw_connect(port: int, request: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """Open a socket, send ``request`` (and whatever follows it), return the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return b0 & 0x0F, await reader.readexactly(n)
