"""Run an ASGI app under a real uvicorn on 127.0.0.1 for the duration of a test.

    async with serve(app, ws="wsproto") as base:      # base == "127.0.0.1:PORT"
        async with connect(f"ws://{base}/ws/echo") as ws: ...

The server runs on the test's own event loop, on a socket bound to a free port before it starts
(no port race). Startup and shutdown are bounded in time.
"""
from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn

BOLT_PROTOCOL = "bolt.protocol:WebSocketProtocol"


def bolt_protocol_or_skip() -> str:
    """bolt's own WebSocket protocol for uvicorn, or a visible skip while it does not import."""
    try:
        from bolt.protocol import WebSocketProtocol  # noqa: F401
    except Exception as exc:  # not written yet, or broken: say which
        pytest.skip(f"bolt.protocol:WebSocketProtocol unavailable ({type(exc).__name__}: {exc})")
    return BOLT_PROTOCOL


def ws_param(name: str) -> Any:
    """A pytest param for a uvicorn `ws=` implementation; bolt's own is resolved (or skipped) in the test."""
    return pytest.param(name, id=name.split(":")[-1] if ":" in name else name)


WS_IMPLEMENTATIONS = [ws_param("websockets-sansio"), ws_param("wsproto"), ws_param(BOLT_PROTOCOL)]


def resolve_ws(ws: str) -> str:
    return bolt_protocol_or_skip() if ws == BOLT_PROTOCOL else ws


@asynccontextmanager
async def serve(app: Any, *, ws: str = "websockets-sansio", lifespan: str = "on",
                **options: Any) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free 127.0.0.1 port; yields "127.0.0.1:PORT"."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, ws=resolve_ws(ws), lifespan=lifespan, log_level="warning",
                            timeout_graceful_shutdown=2, **options)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.01)
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), 10)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        sock.close()
