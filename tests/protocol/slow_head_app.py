"""The app and the short-deadline HTTP protocols that test_hardening serves with `bolt run`."""

from __future__ import annotations

from typing import Any

from bolt.protocol import http


async def app(scope: dict, receive: Any, send: Any) -> None:
    """Echo WebSocket messages; answer HTTP with 200."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


class QuickH11Protocol(http.H11Protocol):
    head_timeout = 0.5


class QuickHeadReader(http.HeadReader):
    head_timeout = 0.5


if http.HttpToolsProtocol is not None:

    class QuickHttpToolsProtocol(http.HttpToolsProtocol):  # type: ignore[misc, valid-type]
        head_timeout = 0.5
