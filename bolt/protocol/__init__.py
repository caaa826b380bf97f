"""bolt's WebSocket protocol: a sans-I/O engine (RFC 6455, RFC 7692) and its uvicorn adapter.

``ServerConnection`` is the engine and needs nothing but the standard library and
:mod:`bolt.accel`. ``WebSocketProtocol`` plugs it into uvicorn
(``--ws bolt.protocol:WebSocketProtocol``); it is imported on first use so the engine stays
usable without uvicorn. :mod:`bolt.protocol.http` holds uvicorn's HTTP protocols with a deadline
for the request head, which ``bolt run`` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bolt.wire import CloseCode, SharedMessage

from .connection import (
    CloseReceived,
    ConnectionFailed,
    ConnectionState,
    HandshakeFailed,
    LocalProtocolError,
    Ping,
    Pong,
    Request,
    ServerConnection,
)
from .deflate import DeflateOptions

if TYPE_CHECKING:
    from .uvicorn import WebSocketProtocol

__all__ = [
    "CloseCode",
    "CloseReceived",
    "ConnectionFailed",
    "ConnectionState",
    "DeflateOptions",
    "HandshakeFailed",
    "LocalProtocolError",
    "Ping",
    "Pong",
    "Request",
    "ServerConnection",
    "SharedMessage",
    "WebSocketProtocol",
]


def __getattr__(name: str) -> Any:
    if name == "WebSocketProtocol":
        from .uvicorn import WebSocketProtocol

        return WebSocketProtocol
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
