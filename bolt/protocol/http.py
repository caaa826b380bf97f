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
import contextvars
import re
from collections.abc import Iterable
from typing import Any, NoReturn, cast

import h11
from uvicorn.logging import TRACE_LOG_LEVEL
from uvicorn.protocols.http.h11_impl import DEFAULT_MAX_INCOMPLETE_EVENT_SIZE
from uvicorn.protocols.http.h11_impl import H11Protocol as _H11Protocol

from .handshake import (
    MAX_HEADERS,
    MAX_REQUEST_SIZE,
    HandshakeError,
    closing_response,
    field_size,
    head_too_large,
    origin_form,
    served_version,
    valid_host,
)
from .timers import Deadlines, deadlines
from .uvicorn import WebSocketProtocol, trailing_bytes

__all__ = [
    "H11Protocol", "HeadDeadline", "HeadReader", "HttpToolsProtocol", "default_http_protocol", "is_websocket_upgrade",
]


def _bolt_websocket_class(ws_class: object) -> type[WebSocketProtocol] | None:
    """uvicorn's configured WebSocket protocol class when it is bolt's (a subclass included), else None."""
    if isinstance(ws_class, type) and issubclass(ws_class, WebSocketProtocol):
        return ws_class
    return None


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
    _upgraded = False  # the connection went to a WebSocket protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_head_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._head_deadlines is not None and self._head_done():
            self._head_deadlines.clear(self._head_timed_out)
            self._head_deadlines = None

    def on_response_complete(self) -> None:
        if not self._next_head_read():
            self._arm_head_deadline()  # before the pipelined request, if any, is started below
        super().on_response_complete()  # type: ignore[misc]

    def _next_head_read(self) -> bool:
        """Whether the next request's head has been read already: it needs no deadline."""
        return False

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
        return self.cycle is not self._head_cycle or self._upgraded

    def _head_timed_out(self) -> None:
        self._head_deadlines = None
        if not self._head_done() and not self.transport.is_closing():
            self.transport.close()

    def _hand_over(self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]], http_version: bytes,
                   trailing: bytes | bytearray | None = None) -> None:
        """Give the upgrade to bolt's WebSocket protocol as parsed (the caller checked that it is bolt's).

        ``trailing``: what the client sent behind the request, when the transport no longer holds it.
        """
        ws_class = cast("type[WebSocketProtocol]", self.ws_protocol_class)
        if self.logger.level <= TRACE_LOG_LEVEL:
            prefix = "%s:%d - " % self.client if self.client else ""
            self.logger.log(TRACE_LOG_LEVEL, "%sUpgrading to WebSocket", prefix)
        self._upgraded = True
        self.transport.resume_reading()  # paused while the upgrade waited, or by uvicorn's flow control
        self.connections.discard(self)
        protocol = ws_class(config=self.config, server_state=self.server_state, app_state=self.app_state)
        protocol.upgrade(self.transport, method, target, fields, http_version,
                         None if trailing is None else bytes(trailing))

    def _hand_over_soon(self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]], http_version: bytes,
                        trailing: bytearray | None = None) -> None:
        """Hand the upgrade over on the loop's next turn, in a fresh context.

        For an upgrade read while the request before it was answered, from that request's task:
        the WebSocket's own task must not inherit that task's context variables.
        """
        self.loop.call_soon(self._hand_over_if_open, method, target, fields, http_version, trailing,
                            context=contextvars.Context())

    def _hand_over_if_open(self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]],
                           http_version: bytes, trailing: bytearray | None) -> None:
        if not self.transport.is_closing():  # the client may have left meanwhile, or the server stopped
            self._hand_over(method, target, fields, http_version, trailing)


def _path_target(target: bytes) -> bytes | None:
    """The target as a path and query: an absolute-form one (``http://host/path?q``) made one, the
    others as they are; None for an absolute form without a host."""
    if target[:1] == b"/" or target == b"*":
        return target
    try:
        return origin_form(target.decode("ascii")).encode("ascii")
    except (HandshakeError, UnicodeDecodeError):
        return None


def _names_websocket(connection: bytes, upgrade: bytes) -> bool:
    """uvicorn's rule for a WebSocket upgrade, given the last ``Connection`` and ``Upgrade`` values:
    the first has the token ``upgrade``, the second is ``websocket``."""
    if upgrade.rstrip(b" \t").lower() != b"websocket":
        return False
    return any(token.strip().lower() == b"upgrade" for token in connection.split(b","))


def _asks_websocket(fields: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether parsed request header fields (lower-case names) ask for a WebSocket."""
    connection = upgrade = b""
    for name, value in fields:
        if name == b"connection":
            connection = value
        elif name == b"upgrade":
            upgrade = value
    return _names_websocket(connection, upgrade)


class _BoundedHeads(h11.Connection):
    """h11's connection, with a request head bounded as the engine bounds an upgrade's.

    h11 bounds a head only while it is incomplete (``h11_max_incomplete_event_size``): one that
    arrives whole in a read could be as long as the read, with any number of lines. The other
    answers are those bolt's httptools protocol gives: a request with both Content-Length and
    Transfer-Encoding is refused (400; RFC 9112 section 6.3 lets a server refuse it, and a proxy
    may have framed it the other way); an absolute-form target (``GET http://host/path``, RFC 9112
    section 3.2.2) is served as its path and query; ``CONNECT`` is refused (400: this server is no
    proxy); an HTTP version other than 1.x gets 505 (a later 1.x is served as 1.1, RFC 9112 section
    2.3); and a transfer coding other than chunked gets h11's own status, 501, where uvicorn
    answers every refusal with 400.
    """

    refused: tuple[int, str] | None = None  # the status and detail of a refusal h11 would answer with 400

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # an incomplete head past h11's own bound
                self.refused = (431, "Request headers too large.")
            elif exc.error_status_hint == 501:  # a transfer coding other than chunked (RFC 9112 6.1)
                self.refused = (501, "Only Transfer-Encoding: chunked is supported.")
            raise
        if type(event) is h11.Request:
            headers = event.headers
            # h11 counts Host headers (RFC 9112 section 3.2) but takes any value.
            if not all(valid_host(value) for name, value in headers if name == b"host"):
                raise h11.RemoteProtocolError("Invalid Host header.", error_status_hint=400)
            names = {name for name, _ in headers}
            if b"content-length" in names and b"transfer-encoding" in names:
                raise h11.RemoteProtocolError("Both Content-Length and Transfer-Encoding.", error_status_hint=400)
            if len(headers) > MAX_HEADERS:
                self.refused = (431, "Too many request headers.")
            elif len(event.target) + sum(field_size(name, value) for name, value in headers) > MAX_REQUEST_SIZE:
                refusal = head_too_large(len(event.target) > MAX_REQUEST_SIZE)
                self.refused = (refusal.status, refusal.detail)
            elif event.http_version[:2] != b"1." and not _asks_websocket(headers):  # h11 reads any digit.digit
                self.refused = (505, "HTTP version not supported.")  # an upgrade gets the engine's answer
            if self.refused is not None:
                raise h11.RemoteProtocolError(self.refused[1], error_status_hint=self.refused[0])
            target = _path_target(event.target)
            if target is None or event.method == b"CONNECT":  # a 2xx would switch h11 to a tunnel
                raise h11.RemoteProtocolError("Invalid request target.", error_status_hint=400)
            version = served_version(event.http_version.decode("ascii")).encode("ascii")
            if target is not event.target or version != event.http_version:
                event = h11.Request(method=event.method, target=target, headers=headers, http_version=version)
        return event


class H11Protocol(HeadDeadline, _H11Protocol):
    """uvicorn's h11 protocol with the request-head deadline, and request heads bounded as
    ``HttpToolsProtocol`` bounds them (431 past ``MAX_REQUEST_SIZE`` or ``MAX_HEADERS`` lines)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        incomplete = config.h11_max_incomplete_event_size
        self.conn = _BoundedHeads(h11.SERVER, DEFAULT_MAX_INCOMPLETE_EVENT_SIZE if incomplete is None else incomplete)

    def send_400_response(self, msg: str) -> None:
        refused = cast("_BoundedHeads", self.conn).refused
        if refused is None:
            super().send_400_response(msg)
            return
        self.transport.write(closing_response(refused[0], list(self.server_state.default_headers),
                                              refused[1].encode()))
        self.transport.close()

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        if _bolt_websocket_class(self.ws_protocol_class) is None:
            super().handle_websocket_upgrade(event)
            self._upgraded = True
        elif asyncio.current_task() is None:
            self._hand_over(event.method, event.target, self.headers, event.http_version)
        else:
            # Read in the task of the request before it; h11 keeps what the client sends meanwhile.
            self._handing_over = True
            self._hand_over_soon(event.method, event.target, self.headers, event.http_version)

    _handing_over = False  # an upgrade is to be handed over on the loop's next turn

    def shutdown(self) -> None:
        if self._handing_over:  # h11 has read the upgrade: there is no response left to end
            self.transport.close()
        else:
            super().shutdown()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _HttpToolsProtocol
except ImportError:  # bolt installs httptools; installed without its dependencies, it serves on h11
    HttpToolsProtocol: type | None = None
else:
    import httptools
    from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

    class _Http10Cycle(RequestResponseCycle):
        """The cycle of an HTTP/1.0 request: a response without a Content-Length ends with the
        connection, where uvicorn would send it chunked, a coding HTTP/1.0 does not have (RFC 9112
        6.1). The connection closes after every HTTP/1.0 response."""

        _close_delimited = False

        async def send(self, message: Any) -> None:
            if message["type"] == "http.response.start" and not self.response_started:
                names = {name.lower() for name, _ in message.get("headers", ())}
                if b"content-length" not in names and b"transfer-encoding" not in names:
                    self._close_delimited = True
                    self.chunked_encoding = False
            elif self._close_delimited and message["type"] == "http.response.body":
                self.expected_content_length = len(message.get("body", b""))  # whatever comes is the body
            await super().send(message)

    class HttpToolsProtocol(HeadDeadline, _HttpToolsProtocol):  # type: ignore[no-redef]
        """uvicorn's httptools protocol with the request-head deadline.

        An upgrade pipelined behind requests still being answered waits for their responses (which
        go out in the order of the requests, RFC 9112 section 9.3.2) before bolt's WebSocket protocol
        takes the connection; what the client sends meanwhile is kept for it, with reading paused.
        A request head is bounded as the WebSocket engine bounds an upgrade's (431 past
        ``MAX_REQUEST_SIZE`` or ``MAX_HEADERS`` lines), HTTP/1.1 needs exactly one Host (400), and a
        refused head is answered after the responses owed to the requests before it. HTTP versions
        get h11's answers: a later 1.x is served as 1.1, another major version gets 505.
        """

        # (method, target, fields, version, bytes sent behind it) of an upgrade waiting for its turn.
        _waiting: tuple[bytes, bytes, list[tuple[bytes, bytes]], bytes, bytearray] | None = None
        # httptools keeps a head however long it grows: past MAX_REQUEST_SIZE or MAX_HEADERS lines it is
        # refused with 431. Two counts: the parsed size of the head's target and complete header lines,
        # and the bytes read while it is incomplete (a line that never ends reaches no callback).
        _head_size = 0
        _trailers = 0  # trailer fields of the request's chunked body, counted with its headers
        _head_bytes: int | None = 0  # None while a body is read
        _head_ended_here = False  # a message ended in the read being parsed: that read is not counted
        _before: Any = None  # the request cycle before the last one read (uvicorn keeps only the last)
        _refusal: tuple[int, str] | None = None  # why a parser callback stopped the parser
        # A refusal: status, detail, and the request cycle whose response goes out before it (None: none).
        _refused: tuple[int, str, Any] | None = None
        # A request asking for an Upgrade that is not served (``h2c``): its head written out again without
        # the upgrade, and the header fields it came with, while httptools skips past it (see _feed).
        _replay: tuple[bytes, list[tuple[bytes, bytes]]] | None = None
        _replayed: list[tuple[bytes, bytes]] | None = None

        def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                     _loop: asyncio.AbstractEventLoop | None = None) -> None:
            super().__init__(config, server_state, app_state, _loop)
            # llhttp refuses a version other than 0.9, 1.0, 1.1 and 2.0 with a bare 400; read, it gets
            # the answers h11's gets: 1.x is served as 1.1, another major version gets 505.
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True, lenient_version=True)

        @staticmethod
        def _answered(cycle: Any) -> bool:
            """Whether ``cycle`` (and so every request before it: they are answered in order) has its response."""
            return cycle is None or cycle.response_complete

        def _next_head_read(self) -> bool:
            return bool(self.pipeline) or self._waiting is not None or self._refused is not None

        def handle_websocket_upgrade(self) -> None:
            if _bolt_websocket_class(self.ws_protocol_class) is None:
                super().handle_websocket_upgrade()
                self._upgraded = True
                return
            fields = cast("list[tuple[bytes, bytes]]", self.scope["headers"])  # uvicorn's scope holds a list
            upgrade = (self.scope["method"].encode(), self.url, fields, self.scope["http_version"].encode(),
                       bytearray(trailing_bytes(self.transport)))
            if not self._answered(self.cycle):  # the last request before the upgrade
                self._waiting = upgrade
                self.transport.pause_reading()
                return
            self._hand_over(*upgrade)

        def data_received(self, data: bytes) -> None:
            if self._waiting is not None:  # the WebSocket's first bytes: not for the HTTP parser
                self._waiting[4].extend(data)
                self.transport.pause_reading()
                return
            self._head_ended_here = False
            self._cancel_keep_alive()  # a request is arriving
            self._feed(data)
            if self._head_bytes is None or self._head_ended_here or self._refused or self.transport.is_closing():
                return
            # The read in which the message before it ended is not counted: the bound is one read more.
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_SIZE:
                self.logger.warning("Invalid HTTP request received: request headers too large.")
                self._refuse(431, "Request headers too large.")

        def _cancel_keep_alive(self) -> None:
            """Cancel the idle timer uvicorn arms after a response for the next request."""
            keep_alive = self.timeout_keep_alive_task
            if keep_alive is not None:
                keep_alive.cancel()
                self.timeout_keep_alive_task = None

        def _feed(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            except httptools.HttpParserUpgrade as upgrade:
                replay, self._replay = self._replay, None
                if replay is None:  # a WebSocket upgrade
                    self.handle_websocket_upgrade()
                    return
                # httptools stops at the head of any request with an upgrade and skips its body: the
                # request is read again without it, with the body and whatever follows.
                self._unsupported_upgrade_warning()
                head, self._replayed = replay
                self._feed(head + data[upgrade.args[0]:])

        def _upgrade_served(self) -> bool:
            """Whether the parsed head asks for the WebSocket upgrade this server serves."""
            return self.ws_protocol_class is not None and _asks_websocket(self.headers)

        def _head_without_upgrade(self) -> bytes:
            """The parsed request head written out with ``upgrade`` left out of its Connection headers
            (one left empty is dropped), which is what makes httptools take it as an upgrade."""
            lines = [b"%s %s HTTP/%s" % (self.parser.get_method(), self.url, self.parser.get_http_version().encode())]
            for name, value in self.headers:
                if name == b"connection":
                    value = b",".join(t for t in value.split(b",") if t.strip().lower() != b"upgrade")
                    if not value.strip():
                        continue
                lines.append(name + b": " + value)
            return b"\r\n".join(lines) + b"\r\n\r\n"

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._head_size = self._trailers = 0

        def on_url(self, url: bytes) -> None:
            self._grow_head(len(url), target=True)
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            if len(self.headers) + self._trailers >= MAX_HEADERS:
                self._stop_parser(431, "Too many request headers.")
            self._grow_head(len(name) + len(value) + 4)  # field_size, written out: once per header of every request
            if self._head_bytes is None:
                # A chunked body's trailer field: bounded with the head, never one of its headers (RFC 9110 6.5.1).
                self._trailers += 1
                return
            super().on_header(name, value)

        def _grow_head(self, size: int, target: bool = False) -> None:
            self._head_size += size
            if self._head_size > MAX_REQUEST_SIZE:
                refusal = head_too_large(target)  # while the target grows, it alone is past the limit
                self._stop_parser(refusal.status, refusal.detail)

        def _stop_parser(self, status: int, detail: str) -> NoReturn:
            """Refuse the request from a parser callback: uvicorn then calls send_400_response."""
            self._refusal = (status, detail)
            raise ValueError(detail)

        def on_headers_complete(self) -> None:
            target = _path_target(self.url)
            if target is None or self.parser.get_method() == b"CONNECT":  # CONNECT takes host:port (RFC 9110 9.3.6)
                self._stop_parser(400, "Invalid request target.")
            upgrade = self.parser.should_upgrade()
            served = upgrade and self._upgrade_served()
            version = self.parser.get_http_version()
            if version[:2] != "1." and not served:  # httptools reads 0.9 and 2.0 too
                self._stop_parser(505, "HTTP version not supported.")  # an upgrade gets the engine's answer
            if self._replayed is not None:  # the request read again: with the header fields it came with
                self.headers[:] = self._replayed
                self._replayed = None
            elif upgrade and not served:
                # An upgrade to something else (h2c): ignored (RFC 9110 7.8); the request is served
                # once httptools, which skips it, has been given it again (_feed).
                self._replay = (self._head_without_upgrade(), self.headers)
                return
            self.url = target
            hosts = []
            codings = None
            for name, value in self.headers:  # one pass: this runs for every request
                if name == b"host":
                    hosts.append(value)
                elif name == b"transfer-encoding":
                    codings = value if codings is None else codings + b"," + value
            if codings is not None and codings.replace(b" ", b"").lower() != b"chunked":
                # httptools takes any codings before a final chunked; the others are not decoded.
                self._stop_parser(501, "Only Transfer-Encoding: chunked is supported.")  # RFC 9112 6.1
            if len(hosts) > 1 or (not hosts and version == "1.1"):
                self._stop_parser(400, "Exactly one Host header is required.")  # RFC 9112 3.2, as h11 does
            if hosts and not valid_host(hosts[0]):
                self._stop_parser(400, "Invalid Host header.")
            before = self.cycle
            super().on_headers_complete()  # may still refuse the head (a target httptools cannot split)
            if self.cycle is not before:  # a request cycle was made (an upgrade makes none)
                self._before = before
                if version == "1.0":
                    self.cycle.__class__ = _Http10Cycle
            if served_version(version) != version:  # a later 1.x
                self.scope["http_version"] = "1.1"
            self._head_bytes = None

        def on_message_complete(self) -> None:
            if self._replay is not None:  # the upgrade's head, read again in a moment
                return
            super().on_message_complete()
            self._head_bytes = 0
            self._head_ended_here = True

        def send_400_response(self, msg: str) -> None:
            self._refuse(*(self._refusal or (400, msg)))

        def _refuse(self, status: int, detail: str) -> None:
            """Answer a request the parser refused, then close, after the responses owed to the requests
            before it (uvicorn would write it at once, ahead of them). The first refusal is the one sent."""
            if self._refused is None:
                if self._head_bytes is not None:  # a head: after the last request read before it
                    after = self.cycle
                elif self.cycle.response_started:
                    # That request has (part of) its answer: a second one would be taken as the answer
                    # to the next request. Closing is all that is left, as h11 does.
                    self.transport.close()
                    return
                else:  # the body of the last request read: after the one before it
                    after = self._before
                    if self.pipeline and self.pipeline[0][0] is self.cycle:
                        self.pipeline.popleft()  # queued, never started: the refusal is its answer
                self._refused = (status, detail, after)
            status, detail, after = self._refused
            if not self._answered(after):
                self.transport.pause_reading()  # the parser has stopped: nothing more is read
                return
            self.transport.write(closing_response(status, list(self.server_state.default_headers), detail.encode()))
            self.transport.close()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self.transport.is_closing():
                return
            if self._refused is not None:
                self._refuse(*self._refused[:2])  # now, or later (reading paused again) if still owed
                return
            waiting = self._waiting
            if waiting is None:
                return
            self.transport.pause_reading()  # uvicorn resumed it for a request that is not coming
            if not self._answered(self.cycle):
                return
            self._cancel_keep_alive()  # no next request is coming
            if self._head_deadlines is not None:
                self._head_deadlines.clear(self._head_timed_out)
                self._head_deadlines = None
            # Until it is handed over, what arrives still joins the upgrade's bytes (data_received).
            self._hand_over_soon(*waiting)

        def _hand_over(self, method: bytes, target: bytes, fields: list[tuple[bytes, bytes]], http_version: bytes,
                       trailing: bytes | bytearray | None = None) -> None:
            self._waiting = None
            super()._hand_over(method, target, fields, http_version, trailing)
            # The parser holds this protocol's bound methods: without it, refcounting frees the
            # protocol (and the transport with it) rather than the cyclic GC.
            self.parser = None  # type: ignore[assignment]


def default_http_protocol() -> type:
    """The parser uvicorn's "auto" would pick (httptools when installed, else h11), with the deadline."""
    return HttpToolsProtocol or H11Protocol


# In a request head: a control character (HTAB aside), a CR not before LF, an LF not after CR.
_MALFORMED_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r[^\n]|(?<!\r)\n")
# The request line of a GET, up to its CRLF: one space each side of a target of visible characters.
_GET_LINE = re.compile(rb"GET [^\x00-\x20\x7f]+ HTTP/[0-9]\.[0-9]")
# The two headers that make a request an upgrade, found without parsing the others.
_UPGRADE_FIELDS = re.compile(rb"\r\n(connection|upgrade):[ \t]*([^\r\n]*)", re.IGNORECASE)


def is_websocket_upgrade(head: bytes) -> bool:
    """Whether a request head asks for a WebSocket, by uvicorn's rule: the last ``Connection``
    header has the token ``upgrade`` and the last ``Upgrade`` header is ``websocket``."""
    connection = upgrade = b""
    for name, value in _UPGRADE_FIELDS.findall(head):
        if len(name) == 10:
            connection = value
        else:
            upgrade = value
    return _names_websocket(connection, upgrade)


class HeadReader(asyncio.Protocol):
    """The protocol a connection starts with under `bolt run`: it reads the first request head and
    hands the connection to the protocol that serves it.

    A WebSocket upgrade goes to bolt's ``WebSocketProtocol`` as bytes, which parses and checks the
    head itself: no HTTP protocol object is made for it and uvicorn parses nothing. Anything else
    (another method, a head the WebSocket rule does not match, more than ``MAX_REQUEST_SIZE`` bytes
    without a blank line, an unfinished head holding what no request head holds) goes to
    ``http_class``, a uvicorn HTTP protocol (with the head deadline), with the bytes read so far, as
    if it had read them itself.
    When the WebSocket protocol is not bolt's, every connection goes to ``http_class``.

    It closes a connection whose first request head is not complete ``head_timeout`` seconds after
    the connection was made, also when ``http_class`` is reading the rest of it (its ``cycle``
    says when its first request has started). Pass a subclass to uvicorn's ``http`` setting to
    change either::

        class Patient(HeadReader):
            head_timeout = 30.0
            http_class = H11Protocol
    """

    head_timeout = HeadDeadline.head_timeout
    http_class: type = default_http_protocol()

    __slots__ = ("config", "server_state", "app_state", "loop", "transport", "_head", "_line_read", "_deadlines",
                 "_http")

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.config = config
        self.server_state = server_state
        self.app_state = app_state
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # until connection_made
        self._head: bytearray | None = None  # a GET head read in more than one piece, so far
        self._line_read = False  # the request line of that head has been read (and found well formed)
        self._deadlines: Deadlines | None = None  # while the first head is awaited
        self._http: Any = None  # the HTTP protocol given an incomplete head: the deadline still holds

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)
        self.server_state.connections.add(self)  # until handed over: a stopping server closes it
        self._deadlines = deadlines(self.loop, self.head_timeout)
        self._deadlines.set(self._timed_out)

    def data_received(self, data: bytes) -> None:
        buffered = self._head
        seen = 0
        head: bytes | bytearray = data
        if buffered is not None:
            seen = len(buffered)
            buffered += data
            head = buffered
        if not b"GET ".startswith(head[:4]):  # not a GET: uvicorn's to serve, at once
            self._to_http(bytes(head), complete=head.find(b"\r\n\r\n") >= 0)
            return
        end = head.find(b"\r\n\r\n", max(0, seen - 3))  # only where the new bytes can complete it
        if end < 0:
            # Past bolt's limit, or bytes no request head holds (in what came now) or a malformed request
            # line: uvicorn's parser answers those at once, where waiting would end only at the deadline.
            if (len(head) > MAX_REQUEST_SIZE or _MALFORMED_HEAD.search(head, max(0, seen - 1)) is not None
                    or not self._line_read and not self._request_line_ok(head, seen)):
                self._to_http(bytes(head), complete=False)
            elif buffered is None:
                self._head = bytearray(data)
            return
        whole = bytes(head)  # the bytes read, not a copy, unless they came in pieces
        ws_class = _bolt_websocket_class(self.config.ws_protocol_class)
        if ws_class is not None and is_websocket_upgrade(whole[:end]):
            self._stop_reading()
            ws_class(config=self.config, server_state=self.server_state, app_state=self.app_state,
                     _loop=self.loop).take_over(self.transport, whole)
        else:
            self._to_http(whole, complete=True)

    def _request_line_ok(self, head: bytes | bytearray, seen: int) -> bool:
        """Whether an unfinished head's request line, once read in full, is one a GET upgrade may have
        (the `seen` bytes read before hold no line end: searched from there only)."""
        end = head.find(b"\r\n", max(0, seen - 1))
        if end < 0:
            return True  # not all read yet
        self._line_read = True
        return _GET_LINE.fullmatch(head, 0, end) is not None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_reading()

    def eof_received(self) -> bool | None:
        return None  # the transport closes: no request is coming

    def shutdown(self) -> None:
        """Called by uvicorn when the server stops: no request has started here, so close."""
        self._stop_reading()
        if not self.transport.is_closing():
            self.transport.close()

    def _to_http(self, data: bytes, complete: bool) -> None:
        """Hand the connection to ``http_class``; with the head ``complete``, the deadline is its own."""
        self.server_state.connections.discard(self)
        self._head = None
        transport = self.transport
        protocol = self.http_class(config=self.config, server_state=self.server_state, app_state=self.app_state)
        if complete:
            self._stop_reading()
        else:
            # Its own head deadline starts now; this one, set when the connection was made, still holds.
            self._http = protocol
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        protocol.data_received(data)

    def _stop_reading(self) -> None:
        self._head = None
        if self._deadlines is not None:
            self._deadlines.clear(self._timed_out)
            self._deadlines = None
            self.server_state.connections.discard(self)

    def _timed_out(self) -> None:
        self._deadlines = None
        http, self._http = self._http, None
        if http is None:
            self.server_state.connections.discard(self)
        elif getattr(http, "cycle", None) is not None or self.transport.get_protocol() is not http:
            return  # uvicorn has started its first request (or handed the connection on): the head is done
        if not self.transport.is_closing():
            self.transport.close()
