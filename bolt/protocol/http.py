"""uvicorn's HTTP protocols with a deadline for the request head, as `bolt run` serves them.

uvicorn reads the request head (of a WebSocket upgrade too) in its HTTP protocol, before any
WebSocket protocol exists, and bounds that read by nothing: a client that trickles a head, or
sends none, keeps its socket for as long as it likes. These subclasses close a connection whose
request head is not complete ``head_timeout`` seconds after the connection was made, or after
the previous response on a keep-alive connection. Subclass to change the deadline and pass the
class to uvicorn's ``http`` setting (``bolt run --http module:Class``)::

    class Patient(H11Protocol):
        head_timeout = 30.0

When the WebSocket protocol is bolt's, they also hand it the upgrade request as parsed (see
``WebSocketProtocol.upgrade``) rather than writing it out for it to parse again.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import h11
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol

from .timers import Deadlines, deadlines
from .uvicorn import WebSocketProtocol

__all__ = ["H11Protocol", "HeadDeadline", "HttpToolsProtocol", "default_http_protocol"]


class HeadDeadline:
    """Mixin for a uvicorn HTTP protocol: close the connection when a request head takes too long.

    A head is complete when uvicorn starts its request cycle (``self.cycle`` changes) or hands
    the connection to a WebSocket protocol.
    """

    head_timeout = 10.0

    transport: asyncio.Transport
    loop: asyncio.AbstractEventLoop
    cycle: Any
    ws_protocol_class: Any
    config: Any
    server_state: Any
    app_state: dict[str, Any]
    connections: set[Any]
    logger: Any
    client: tuple[str, int] | None
    _head_deadlines: Deadlines | None = None  # while the head is awaited: where its deadline is
    _head_cycle: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._head_deadlines is not None and self._head_done():
            self._head_deadlines.clear(self._head_timed_out)
            self._head_deadlines = None

    def on_response_complete(self) -> None:
        self._arm_head_deadline()  # before the pipelined request, if any, is started below
        super().on_response_complete()  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_deadlines is not None:
            self._head_deadlines.clear(self._head_timed_out)
            self._head_deadlines = None
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_head_deadline(self) -> None:
        if self._head_deadlines is not None:  # a keep-alive connection's previous head
            self._head_deadlines.clear(self._head_timed_out)
        self._head_cycle = self.cycle
        # One timer per loop for every connection's head (see bolt.protocol.timers), not one each.
        self._head_deadlines = deadlines(self.loop, self.head_timeout)
        self._head_deadlines.set(self._head_timed_out)

    def _head_done(self) -> bool:
        # A mixin: the transport's protocol is this object's uvicorn half (or, once upgraded, another one).
        return self.cycle is not self._head_cycle or self.transport.get_protocol() is not self  # type: ignore[comparison-overlap]

    def _head_timed_out(self) -> None:
        self._head_deadlines = None
        if not self._head_done() and not self.transport.is_closing():
            self.transport.close()

    def _hand_over(self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]]) -> bool:
        """Give the upgrade to bolt's WebSocket protocol as parsed; False when the protocol is another."""
        ws_class = self.ws_protocol_class
        if not (isinstance(ws_class, type) and issubclass(ws_class, WebSocketProtocol)):
            return False
        if self.logger.level <= TRACE_LOG_LEVEL:
            prefix = "%s:%d - " % self.client if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%sUpgrading to WebSocket", prefix)
        self.connections.discard(self)
        protocol = ws_class(config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.upgrade(self.transport, method, target, fields)
        return True


class H11Protocol(HeadDeadline, _H11Protocol):
    """uvicorn's h11 protocol with the request-head deadline."""

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        if not self._hand_over(event.method, event.target, self.headers):
            super().handle_websocket_upgrade(event)


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol
except ImportError:  # httptools is optional (uvicorn[standard])
    HttpToolsProtocol: type | None = None
else:

    class HttpToolsProtocol(HeadDeadline, _HttpToolsProtocol):  # type: ignore[no-redef]
        """uvicorn's httptools protocol with the request-head deadline."""

        def handle_websocket_upgrade(self) -> None:
            fields = cast("list[tuple[bytes, bytes]]", self.scope["headers"])  # uvicorn's scope holds a list
            if self._hand_over(self.scope["method"].encode(), self.url, fields):
                # The parser holds this protocol's bound methods: without it, refcounting frees the
                # protocol (and the transport with it) rather than the cyclic GC.
                self.parser = None  # type: ignore[assignment]
            else:
                super().handle_websocket_upgrade()


def default_http_protocol() -> type:
    """The parser uvicorn's "auto" would pick (httptools when installed, else h11), with the deadline."""
    return HttpToolsProtocol or H11Protocol
