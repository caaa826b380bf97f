"""uvicorn adapter: drives :class:`~bolt.protocol.connection.ServerConnection` from asyncio.

Use it as uvicorn's WebSocket protocol::

    uvicorn project.asgi:application --ws bolt.protocol:WebSocketProtocol
    uvicorn.run(app, ws=WebSocketProtocol)

uvicorn's HTTP protocol parses the upgrade request, builds this protocol with
``(config=, server_state=, app_state=)``, hands over the transport and replays the request
through :meth:`WebSocketProtocol.data_received`. The app sees the ASGI WebSocket
interface (spec 2.4) and nothing else.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import itertools
import logging
import math
import os
import socket
import struct
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import unquote

try:  # the kernel's count of unsent bytes (Linux, macOS); elsewhere assume some are left
    from fcntl import ioctl
    from termios import TIOCOUTQ
except ImportError:  # pragma: no cover - Windows
    ioctl = TIOCOUTQ = None  # type: ignore[assignment,misc]
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.utils import (
    ClientDisconnected,
    get_client_addr,
    get_local_addr,
    get_path_with_query_string,
    get_remote_addr,
    is_ssl,
)

from bolt.accel import send_many
from bolt.wire import FRAMES, CloseCode, SharedMessage

from .connection import (
    CloseReceived,
    ConnectionFailed,
    ConnectionState,
    HandshakeFailed,
    Pong,
    Request,
    ServerConnection,
)
from .deflate import DeflateOptions
from .timers import Deadlines, deadlines

if TYPE_CHECKING:
    from uvicorn._types import WWWScope

__all__ = ["WebSocketProtocol"]


def _client_addr(scope: dict[str, Any]) -> str:
    # uvicorn's log helpers are typed for its scope TypedDicts; bolt's scope is a plain dict of the same keys.
    return get_client_addr(cast("WWWScope", scope))


def _path_with_query(scope: dict[str, Any]) -> str:
    return get_path_with_query_string(cast("WWWScope", scope))


def _address(
    transport: asyncio.Transport, name: str, fallback: Callable[[asyncio.Transport], tuple[str, Any] | None]
) -> tuple[str, Any] | None:
    """uvicorn's ``get_local_addr``/``get_remote_addr`` without their system call: asyncio's transports
    keep the socket's ``sockname`` and ``peername`` from when it was accepted, and an IPv4 one serves
    the scope as it is (an idle connection keeps its scope)."""
    info = transport.get_extra_info(name)
    if isinstance(info, tuple):
        return info if len(info) == 2 else (str(info[0]), int(info[1]))
    return fallback(transport)


_App = Callable[[dict[str, Any], Any, Any], Awaitable[object]]
_Rewrite = Callable[[dict[str, Any], Any, Any], Coroutine[Any, Any, None]]


def _scope_rewrite(app: _App) -> tuple[_Rewrite | None, _App]:
    """Split uvicorn's ProxyHeadersMiddleware from the app it wraps: (the scope rewrite, the app).

    The middleware only rewrites the scope (client, scheme) before it awaits the app, yet awaiting
    it would keep its coroutine for the connection's whole life, about 480 bytes of an idle
    connection. The protocol runs the rewrite, a copy whose inner app returns at once, to its end,
    then awaits the app itself.
    """
    if type(app) is not ProxyHeadersMiddleware:  # exactly: a subclass may do more than rewrite
        return None, app
    return _split_proxy_headers(app)


@functools.lru_cache(maxsize=8)  # the middleware, not the app: an app need not be hashable
def _split_proxy_headers(middleware: ProxyHeadersMiddleware) -> tuple[_Rewrite, _App]:
    rewrite = copy.copy(middleware)
    rewrite.app = cast("Any", _scope_only)  # uvicorn types apps with its own scope TypedDicts
    return cast("_Rewrite", rewrite), cast("_App", middleware.app)


async def _scope_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    return None


def _run_at_once(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine that never waits (a scope rewrite) to its end, without a task."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("a scope rewrite waited for something")


LARGE_MESSAGE = 256 * 1024  # from this size a binary message is written as header + payload
# Replies the app sends while more received messages wait for it are held and written together
# (one system call for a batch instead of one each), up to this many bytes.
HOLD_LIMIT = 64 * 1024
_DEFLATE = DeflateOptions()  # read-only policy, shared by every connection
# The scope's "asgi" entry: one per ASGI version, not one per connection (an idle connection keeps its scope).
_ASGI_INFO = {version: {"version": version, "spec_version": "2.4"} for version in ("2.0", "3.0")}
# set.discard reads no context variable: without this each connection's task would keep a copy of one.
_NO_CONTEXT = contextvars.Context()
_LOGGER = logging.getLogger("uvicorn.error")  # looked up once: getLogger takes a lock
_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST, frees the send queue

_OPEN = ConnectionState.OPEN
_HANDSHAKE = ConnectionState.HANDSHAKE
_REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
_CLOSING = ConnectionState.CLOSING


def trailing_bytes(transport: asyncio.BaseTransport) -> bytes:
    """Bytes the client sent behind its upgrade request, still held by the HTTP protocol.

    uvicorn replays only the request head; whatever followed it in the same read (a client
    may pipeline its first frames) would be lost. h11 keeps it as ``trailing_data``;
    httptools reports its offset in the ``HttpParserUpgrade`` being handled right now.
    """
    try:
        http = transport.get_protocol()
    except (AttributeError, NotImplementedError):  # a transport that does not say (a test double)
        return b""
    conn = getattr(http, "conn", None)
    trailing = getattr(conn, "trailing_data", None)
    if trailing is not None:
        return bytes(trailing[0])
    exc = sys.exc_info()[1]
    if exc is not None and type(exc).__name__ == "HttpParserUpgrade" and exc.__traceback__ is not None:
        data = exc.__traceback__.tb_frame.f_locals.get("data")
        if isinstance(data, (bytes, bytearray)) and exc.args and isinstance(exc.args[0], int):
            return bytes(data[exc.args[0] :])
    return b""


def _unsent(transport: asyncio.WriteTransport, sock: socket.socket) -> bool:
    """Whether bytes written to ``transport`` have not all left: in its buffer or the socket's send queue."""
    if transport.get_write_buffer_size():
        return True
    if ioctl is None:
        return True  # cannot tell: assume the worst
    try:
        queued = ioctl(sock.fileno(), TIOCOUTQ, b"\0\0\0\0")  # SIOCOUTQ on a socket
    except (OSError, ValueError):
        return True
    unsent: int = struct.unpack("i", queued)[0]
    return unsent > 0


def _send_held(frame: bytes, protocols: list[WebSocketProtocol]) -> None:
    """Write one broadcast frame to many connections: a single call (`bolt.accel.send_many`, in Rust
    without the GIL) sends it on every socket whose transport holds nothing, which is what
    ``transport.write`` would do, without a Python call per socket. A transport with bytes still
    buffered, or one closing, gets the frame behind them, and so does a socket that took only part
    of it (its rest) or none (full, or broken: the transport then reports the error as usual).
    """
    direct: list[asyncio.Transport] = []
    fds: list[int] = []
    for protocol in protocols:
        transport = protocol.transport
        if transport.get_write_buffer_size() or transport.is_closing():
            transport.write(frame)
        else:
            direct.append(transport)
            fds.append(protocol._fd)
    for index, taken in send_many(fds, frame):
        direct[index].write(frame[taken:] if taken else frame)


#: A stopping worker closes its open connections in this many waves over the drain period.
DRAIN_WAVES = 10
_drain_turns = itertools.count()  # which wave the next connection told to shut down joins


def drain_period() -> float:
    """Seconds over which a stopping worker closes its open connections: ``BOLT_DRAIN``, 0 by default."""
    try:
        seconds = float(os.environ.get("BOLT_DRAIN") or 0.0)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):  # inf would hold the last waves, and the worker, for ever
        _LOGGER.warning(
            "BOLT_DRAIN=%r is not a number of seconds: connections close at once", os.environ["BOLT_DRAIN"])
        return 0.0
    return max(0.0, seconds)


class WebSocketProtocol(asyncio.Protocol):
    """An ``asyncio.Protocol`` serving one WebSocket connection to an ASGI app.

    Honours uvicorn's ``ws_max_size``, ``ws_max_queue``, ``ws_ping_interval``,
    ``ws_ping_timeout``, ``ws_per_message_deflate`` and ``root_path``. The timeouts below
    (seconds) bound every wait on the peer, so a slow or silent client cannot hold a
    connection open: subclass to change them.
    """

    # Slots keep each connection small and the per-message attribute reads cheap.
    __slots__ = (
        "config", "app", "loop", "logger", "root_path", "app_state", "connections", "tasks", "default_headers",
        "conn", "transport", "_fd", "scope", "_trailing", "_queue", "_waiter", "_max_queue", "_read_paused",
        "_disconnect", "_disconnect_delivered", "_write_paused", "_drain_waiter", "_open", "_app_closed", "_lost",
        "_response", "_ping_interval", "_ping_timeout", "_pings", "_pong_timer", "_ping_payload",
        "close_timer", "_reset_timer", "_remote_close", "_held", "_held_size",
        # Lets a test or a caller override a timeout below on one instance; allocated only then.
        "__dict__",
    )

    close_timeout = 10.0  # for the peer's close frame after we sent ours
    shutdown_close_timeout = 3.0  # the same while the server is stopping
    handshake_timeout = 10.0  # for the upgrade request to arrive in full
    reply_grace = 5.0  # for the app to answer messages that preceded the peer's close

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.logger = _LOGGER
        self.root_path: str = config.root_path
        self.app_state = app_state
        self.connections = server_state.connections
        self.tasks = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers

        deflate = _DEFLATE if config.ws_per_message_deflate else None
        self.conn = ServerConnection(
            max_size=config.ws_max_size, deflate=deflate, response_headers=self.default_headers)
        self.transport: asyncio.Transport = None  # type: ignore[assignment]
        self._fd = -1  # the socket a broadcast may send() to directly (see _send_held); -1 when none
        self.scope: dict[str, Any] = {}
        self._trailing = b""

        # Inbound ASGI events plus one waiter, cheaper than asyncio.Queue. A list, not a deque: it holds
        # a few events at most (ws_max_queue), and an empty deque costs ~700 bytes per idle connection.
        self._queue: list[dict[str, Any]] = []
        self._waiter: asyncio.Future[None] | None = None
        self._max_queue = max(1, getattr(config, "ws_max_queue", 32))
        self._read_paused = False
        self._disconnect: dict[str, Any] | None = None  # the one disconnect event, once queued
        self._disconnect_delivered = False

        # Outbound flow control.
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        self._held: list[bytes] | None = None  # frames written together on the loop's next turn at the latest
        self._held_size = 0

        self._open = False  # accepted and neither side has closed: the send fast path
        self._app_closed = False  # the app sent websocket.close or a denial response
        self._lost = False
        self._response: tuple[int, list[tuple[bytes, bytes]], list[bytes]] | None = None

        self._ping_interval: float | None = config.ws_ping_interval
        self._ping_timeout: float | None = config.ws_ping_timeout
        self._pings: Deadlines | None = None  # while a ping is scheduled: the loop's deadlines it is in
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self.close_timer: asyncio.TimerHandle | None = None  # the deadline of whatever we wait for from the peer
        self._reset_timer: asyncio.TimerHandle | None = None  # drops a closed transport the peer does not drain
        self._remote_close: CloseReceived | ConnectionFailed | None = None  # answer owed after replies

    # ------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._attach(transport)
        self._trailing = trailing_bytes(transport)
        self.close_timer = self.loop.call_later(self.handshake_timeout, self._handshake_timeout)

    def upgrade(self, transport: asyncio.BaseTransport, method: bytes, target: bytes,
                fields: list[tuple[bytes, bytes]], http_version: bytes = b"1.1", trailing: bytes | None = None) -> None:
        """Take over ``transport`` from the HTTP protocol that parsed its upgrade request.

        The same as ``connection_made(transport)``, ``transport.set_protocol(self)`` and
        ``data_received`` with the request written out again, as uvicorn's HTTP protocols do,
        without writing the request and parsing it back (see
        :meth:`~bolt.protocol.connection.ServerConnection.receive_request`). ``trailing`` is what the
        client sent behind the request; without it, call this while the HTTP protocol is still the
        transport's, which holds those bytes.
        ``connection_made`` and ``data_received`` are not called for the request: a subclass that
        hooks them to see it hooks this too.
        """
        self._attach(transport)
        self._trailing = trailing_bytes(transport) if trailing is None else trailing
        transport.set_protocol(self)
        conn = self.conn
        events = conn.receive_request(method, target, fields, http_version)
        out = conn.data_to_send()  # a refusal
        if out:
            self.transport.write(out)
        for event in events:
            self._handle_event(event)

    def take_over(self, transport: asyncio.BaseTransport, data: bytes) -> None:
        """Take over ``transport`` from a protocol that read ``data`` from it and nothing else.

        The same as ``connection_made(transport)``, ``transport.set_protocol(self)`` and
        ``data_received(data)``; when ``data`` holds the whole upgrade request, as it does from
        `bolt.protocol.http.HeadReader`, no timer is set for the rest of it.
        """
        self._attach(transport)
        transport.set_protocol(self)
        self.data_received(data)
        if self.conn.state is ConnectionState.CONNECTING:
            self.close_timer = self.loop.call_later(self.handshake_timeout, self._handshake_timeout)

    def _attach(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport: asyncio's servers give one
        sock = transport.get_extra_info("socket")
        if sock is not None and not is_ssl(self.transport) and os.name == "posix":
            self._fd = sock.fileno()
        self.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._open = False
        self._held = None
        self._stop_keepalive()
        self._cancel_close_timer()
        if self._reset_timer is not None:
            self._reset_timer.cancel()
            self._reset_timer = None
        self.connections.discard(self)
        conn = self.conn
        if conn.holding and conn.state is _OPEN:
            self._take_held()
        if conn.close_code is not None and conn.state is ConnectionState.CLOSED:
            self._put_disconnect(conn.close_code, conn.close_reason)
        else:
            self._put_disconnect(CloseCode.ABNORMAL_CLOSURE)
        # asyncio never resumes writing on a lost transport: wake a send() waiting to drain.
        self._wake_writers()

    def _take_held(self) -> None:
        """Queue what the engine held undecoded behind a full queue when the connection is lost.

        The peer sent it before the connection went, so the app gets its messages before the
        disconnect, as it gets those already queued; the queue's bound no longer matters, since
        nothing more is read (what is held is at most one read). A close frame among them gives
        the disconnect its code; pings go unanswered.
        """
        queue = self._queue
        for event in self.conn.receive_data(b""):
            kind = type(event)
            if kind is str:
                queue.append({"type": "websocket.receive", "text": event})
            elif kind is bytes:
                queue.append({"type": "websocket.receive", "bytes": event})
            elif isinstance(event, (CloseReceived, ConnectionFailed)):
                self._put_disconnect(event.code, event.reason)

    def eof_received(self) -> bool | None:
        return None  # let the transport close; connection_lost reports 1006 if still open

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self.conn.state is _OPEN and not self._lost:
            out = self.conn.data_to_send()  # the pong held while paused
            if out:
                self.transport.write(out)
        self._wake_writers()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        # At most the room left in the queue (at least one message, so every call makes progress):
        # the engine keeps the frames behind the cut, undecoded, and reading pauses until the app
        # has taken half (see receive()).
        room = self._max_queue - len(self._queue)
        events = conn.receive_data(data, room if room > 0 else 1)
        # Once open, what the engine writes on its own is a pong. While the peer does not read
        # it stays in the engine, which keeps only the latest few (RFC 6455 5.5.3), so a ping flood
        # cannot grow the write buffer; resume_writing() sends it.
        if not self._write_paused or conn.state is not _OPEN:
            out = conn.data_to_send()
            if out:
                self.transport.write(out)
        if not events:
            return
        queue = self._queue
        before = len(queue)
        for event in events:
            kind = type(event)
            if kind is str:
                queue.append({"type": "websocket.receive", "text": event})
            elif kind is bytes:
                queue.append({"type": "websocket.receive", "bytes": event})
            else:
                self._handle_event(event)
        if len(queue) != before:
            waiter = self._waiter
            if waiter is not None:
                self._waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            if len(queue) >= self._max_queue and not self._read_paused and not self._lost:
                self._read_paused = True
                self.transport.pause_reading()

    def shutdown(self) -> None:
        """Called by uvicorn on graceful shutdown: close with 1012 (service restart).

        With a drain period (``BOLT_DRAIN`` seconds, ``bolt run --drain``) open connections are
        closed in `DRAIN_WAVES` waves spread over it, so the clients of a stopping worker do not
        all reconnect to the others at the same moment; until its wave a connection works as usual.
        """
        state = self.conn.state
        if state is _OPEN:
            wave = next(_drain_turns) % DRAIN_WAVES
            delay = wave * drain_period() / DRAIN_WAVES
            if delay > 0.0:
                # Nothing is awaited from the peer while open, so the deadline slot is free; a close
                # by either side before the wave cancels or outdates it (_drain checks the state).
                self._cancel_close_timer()
                self.close_timer = self.loop.call_later(delay, self._drain)
            else:
                self._drain()
            return
        self._stop_keepalive()
        if state is _HANDSHAKE and self._response is None:
            self._put_disconnect(CloseCode.ABNORMAL_CLOSURE)  # it never opened
            self.transport.write(self.conn.reject(503, list(self.default_headers), b"Server shutting down.\n"))
            self._close_transport()
        elif state is _REMOTE_CLOSING:
            self._finish_remote_close(self._remote_close or CloseReceived(self.conn.close_code or 1005, ""))
        else:  # our close frame is out (no second one), or the connection never opened
            self._cancel_close_timer()
            self._close_transport()

    def _drain(self) -> None:
        """This connection's wave of a graceful shutdown: tell the app and the peer 1012."""
        self.close_timer = None
        if self.conn.state is _OPEN:
            self._put_disconnect(CloseCode.SERVICE_RESTART)
            self._close(CloseCode.SERVICE_RESTART, "server shutting down", self.shutdown_close_timeout)

    # ----------------------------------------------------------------- events

    def _handle_event(self, event: object) -> None:
        if isinstance(event, Request):
            self._handle_request(event)
        elif isinstance(event, Pong):
            if self._ping_payload is not None and event.payload == self._ping_payload:
                self._ping_payload = None
                if self._pong_timer is not None:
                    self._pong_timer.cancel()
                    self._pong_timer = None
        elif isinstance(event, (CloseReceived, ConnectionFailed)):
            if isinstance(event, ConnectionFailed):
                self.logger.debug("WebSocket protocol error: %s (%d)", event.reason, event.code)
            self._put_disconnect(event.code, event.reason)
            if self.conn.state is not _REMOTE_CLOSING:
                self._cancel_close_timer()  # we had closed first: the handshake is complete
                self._close_transport()
            elif not self._queue or self._queue[0] is self._disconnect:
                self._finish_remote_close(event)
            else:
                # Let the app answer the messages that came before the close (their replies
                # must precede our close frame); receive() sends it once the app is there.
                self._remote_close = event
                self._stop_keepalive()
                self.close_timer = self.loop.call_later(self.reply_grace, self._finish_remote_close, event)
        elif isinstance(event, HandshakeFailed):
            self.logger.warning("Invalid WebSocket upgrade request: %s", event.detail)
            self._close_transport()
        # Ping: the engine already queued the pong.

    def _handle_request(self, request: Request) -> None:
        self._cancel_close_timer()
        if self._trailing:
            self.conn.receive_data(self._trailing)  # kept by the engine until accept()
            self._trailing = b""
        raw_path, _, query = request.target.partition("?")
        transport = self.transport
        self.scope = {
            "type": "websocket",
            "asgi": _ASGI_INFO[self.config.asgi_version],
            "http_version": "1.1",
            "scheme": "wss" if is_ssl(transport) else "ws",
            "server": _address(transport, "sockname", get_local_addr),
            "client": _address(transport, "peername", get_remote_addr),
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path),
            "raw_path": self.root_path.encode("ascii") + raw_path.encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": request.headers,
            "subprotocols": request.subprotocols,
            "state": self.app_state.copy(),
            "extensions": {
                "websocket.http.response": {},
                # Messages encoded once for many connections (see write_shared); its send lets an app check
                # that the send it was given is this protocol's own, with no middleware in between.
                FRAMES: self,
            },
        }
        self._queue.append({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_asgi())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard, context=_NO_CONTEXT)

    def _finish_remote_close(self, event: CloseReceived | ConnectionFailed) -> None:
        """Answer the peer's close (echoing its code) or send our failure code; drop the socket."""
        self._remote_close = None
        self._cancel_close_timer()
        self._open = False
        self._stop_keepalive()
        if self.conn.state is _REMOTE_CLOSING:
            reason = event.reason if isinstance(event, ConnectionFailed) else ""
            if self._held is not None:
                self._flush()
            self.transport.write(self.conn.close(event.code, reason))
        self._close_transport()

    def _handshake_timeout(self) -> None:
        self.close_timer = None
        if self.conn.state is ConnectionState.CONNECTING:
            self._close_transport()

    # ------------------------------------------------------------------- ASGI

    async def _run_asgi(self) -> None:
        try:
            rewrite_scope, app = _scope_rewrite(self.app)
            if rewrite_scope is not None:
                _run_at_once(rewrite_scope(self.scope, self.receive, self.send))
            result = await app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except asyncio.CancelledError:
            self._app_finished(CloseCode.GOING_AWAY)
            raise
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self._app_finished(CloseCode.INTERNAL_ERROR)
        else:
            if self.conn.state is _HANDSHAKE and self._response is None and not self._lost:
                self.logger.error("ASGI callable returned without completing handshake.")
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
                self._app_finished(CloseCode.INTERNAL_ERROR)
                return
            self._app_finished(CloseCode.NORMAL)
        finally:
            # The scope holds this protocol's own bound methods (bolt.frames): once the app is done,
            # dropping them lets refcounting free the connection rather than the cyclic GC, whose
            # full collections cost time in proportion to every object of the process.
            self.scope["extensions"].pop(FRAMES, None)

    def _app_finished(self, code: int) -> None:
        """The app is done: end the connection the way its state calls for."""
        if self._lost:
            return
        state = self.conn.state
        if state is _HANDSHAKE:
            if self._response is None:
                self.transport.write(self.conn.reject(500, list(self.default_headers), b"Internal Server Error"))
                self._close_transport()
            else:  # a denial the app started and did not finish: send it with the body it gave
                self._send_response()
        elif state is _OPEN:
            self._put_disconnect(code, "")
            self._close(code, "", self.close_timeout)
        elif state is _REMOTE_CLOSING:
            self._finish_remote_close(self._remote_close or CloseReceived(self.conn.close_code or 1005, ""))
        elif state is not _CLOSING:
            self._close_transport()

    async def receive(self) -> dict[str, Any]:
        """ASGI ``receive``: the next event; ``websocket.disconnect`` again once closed."""
        queue = self._queue
        if not queue and self._held is not None:
            self._flush()  # the app has answered everything it was given: out go the replies
        while not queue:
            if self._disconnect is not None and self._disconnect_delivered:
                return self._disconnect
            waiter = self._waiter
            if waiter is None or waiter.done():
                waiter = self._waiter = self.loop.create_future()
            await waiter
        message = queue.pop(0)
        if message is self._disconnect:
            self._disconnect_delivered = True
            if self._remote_close is not None:
                self._finish_remote_close(self._remote_close)
        if self._read_paused and len(queue) <= self._max_queue // 2:
            self._resume_reading()
        return message

    def _resume_reading(self) -> None:
        """The app has taken half the queue: decode what the engine held back, then read again.

        Reading stays paused while the engine still holds frames (they filled the queue again),
        so input is decoded in the order it came and the queue never passes ``ws_max_queue``.
        """
        if self._lost:
            self._read_paused = False
            return
        conn = self.conn
        if conn.holding:
            self.data_received(b"")  # still paused here: a full queue does not pause twice
            if conn.holding or len(self._queue) >= self._max_queue or not self._read_paused:
                return
        self._read_paused = False
        self.transport.resume_reading()
        if self._ping_payload is not None and self._pong_timer is None and self._ping_timeout is not None:
            # The pong may have waited unread: it gets the whole timeout again from now.
            self._pong_timer = self.loop.call_later(self._ping_timeout, self._pong_missing)

    async def send(self, message: dict[str, Any]) -> None:
        """ASGI ``send``: a message waits while the transport's write buffer is above its high mark.

        A close never waits: its frame is written at once, and a send still waiting for the
        buffer to drain then raises ``ClientDisconnected``.
        """
        kind = message["type"]
        if self._write_paused and kind == "websocket.send":
            await self._wait_writable()
            if not self._open:
                raise ClientDisconnected()  # closed while this message waited
        if self._open and kind == "websocket.send":
            data = message.get("bytes")
            if data is not None:
                if len(data) < LARGE_MESSAGE:
                    self._write_frame(self.conn.send_bytes(data))
                else:
                    # Two writes beat copying a large payload behind its header.
                    header, payload = self.conn.send_message_parts(data)
                    if self._held is not None:
                        self._flush()
                    self.transport.write(header)
                    self.transport.write(payload)
                return
            text = message.get("text")
            if text is None:
                raise RuntimeError("websocket.send needs 'bytes' or 'text'.")
            self._write_frame(self.conn.send_text(text))
            return
        if self._lost:
            raise ClientDisconnected()
        state = self.conn.state
        if state is _HANDSHAKE:
            await self._send_handshake(message)
        elif self._open and kind == "websocket.close":
            if state is _REMOTE_CLOSING:
                self._app_closed = True
                self._finish_remote_close(self._remote_close or CloseReceived(self.conn.close_code or 1005, ""))
                return
            code = message.get("code") or CloseCode.NORMAL
            reason = message.get("reason") or ""
            self._close(code, reason, self.close_timeout)
            self._app_closed = True
            self._put_disconnect(code, reason)
        elif self._app_closed:
            raise RuntimeError(f"Unexpected ASGI message '{kind}', after sending 'websocket.close'.")
        elif state is _OPEN:
            raise RuntimeError(f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'.")
        else:
            raise ClientDisconnected()  # the peer closed or broke the protocol

    def write_shared(self, message: SharedMessage) -> bool:
        """Write a message shared with other connections, in the encoding this one needs, if it can now.

        The ``bolt.frames`` extension: a broadcast builds each wire encoding of its message once
        (see :mod:`bolt.wire`) and hands the same bytes to every recipient, skipping
        the per-recipient ASGI message and encode. On a plain socket a batched message holds the
        frame, and the caller's flush writes it to all held connections in one call.
        Returns False, having written nothing, when the message must go through :meth:`send`
        instead: the connection is not open, its transport is paused, or it compresses with a
        context kept from earlier messages.
        """
        if self._open and not self._write_paused:
            frame = message.frame_for(self.conn.extension)
            if frame is not None:
                if message.batched and self._fd >= 0:  # written with the other recipients at flush()
                    if self._held is not None:
                        self._flush()  # replies held for this connection leave before the broadcast
                    message.hold(frame, self, _send_held)
                else:
                    self._write_frame(frame)
                return True
        return False

    def _write_frame(self, frame: bytes) -> None:
        """Write a data frame, or hold it while received messages still wait for the app.

        The app answers those without yielding to the event loop, so its replies leave in one
        write once it has answered the last of them (or asks for more with :meth:`receive`), or on
        the loop's next turn, whichever is first. Order is kept: every other write of a frame
        flushes what is held first.
        """
        held = self._held
        if held is None:
            if not self._queue or len(frame) >= HOLD_LIMIT:
                self.transport.write(frame)
            else:
                self._held = [frame]
                self._held_size = len(frame)
                self.loop.call_soon(self._flush)
        elif len(frame) >= HOLD_LIMIT:
            self._flush()
            self.transport.write(frame)
        else:
            held.append(frame)
            self._held_size += len(frame)
            if not self._queue or self._held_size >= HOLD_LIMIT:
                self._flush()

    def _flush(self) -> None:
        """Write the frames held by :meth:`_write_frame`, in one write."""
        held = self._held
        if held is not None:
            self._held = None
            self.transport.write(held[0] if len(held) == 1 else b"".join(held))

    async def _send_handshake(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        response = self._response
        if response is not None:
            if kind != "websocket.http.response.body":
                raise RuntimeError(f"Expected ASGI message 'websocket.http.response.body' but got '{kind}'.")
            response[2].append(message.get("body", b""))
            if not message.get("more_body", False):
                self._send_response()
            return
        if kind == "websocket.accept":
            self._log_handshake("[accepted]")
            headers = list(self.default_headers) + list(message.get("headers") or [])
            self.transport.write(self.conn.accept(message.get("subprotocol"), headers))
            self._open = True
            self._start_keepalive()
            self.data_received(b"")  # frames the client sent right behind its request
        elif kind == "websocket.close":
            self._log_handshake("403")
            self._app_closed = True
            self._put_disconnect(CloseCode.ABNORMAL_CLOSURE)
            self.transport.write(self.conn.reject(403, list(self.default_headers), b""))
            self._close_transport()
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self._log_handshake(str(status))
            headers = list(self.default_headers) + [(n.lower(), v) for n, v in message.get("headers") or []]
            self._response = (status, headers, [])
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'."
            )

    def _log_handshake(self, outcome: str) -> None:
        logger = self.logger
        if logger.isEnabledFor(logging.INFO):  # the client and path are formatted only for a record
            logger.info('%s - "WebSocket %s" %s', _client_addr(self.scope), _path_with_query(self.scope), outcome)

    def _send_response(self) -> None:
        """Answer the upgrade with the denial response the app started, with the body it has sent."""
        assert self._response is not None
        status, headers, body = self._response
        self._app_closed = True
        self._put_disconnect(CloseCode.ABNORMAL_CLOSURE)
        self.transport.write(self.conn.reject(status, headers, b"".join(body)))
        self._close_transport()

    # ---------------------------------------------------------------- helpers

    def _close(self, code: int, reason: str, timeout: float) -> None:
        """Send our close frame, then wait (bounded) for the peer's before dropping the socket."""
        frame = self.conn.close(code, reason)  # raises on a code that may not be sent
        self._open = False
        self._stop_keepalive()
        if self._held is not None:
            self._flush()
        self.transport.write(frame)
        if self._read_paused:
            self._read_paused = False
            self.transport.resume_reading()  # the peer's close frame must get through
        if self.conn.holding:
            # It may be among the frames held back while the queue was full: decode them on the
            # loop's next turn (the app's own disconnect is queued first). Input read meanwhile
            # is decoded behind them.
            self.loop.call_soon(self._read_held)
        self._cancel_close_timer()
        self.close_timer = self.loop.call_later(timeout, self._close_timed_out)
        self._wake_writers()  # a send waiting for the buffer to drain now fails

    def _read_held(self) -> None:
        if self.conn.holding and not self._lost:
            self.data_received(b"")

    def _close_timed_out(self) -> None:
        """The peer did not answer our close frame in time: drop the connection."""
        self.close_timer = None
        self._reset()

    def _cancel_close_timer(self) -> None:
        if self.close_timer is not None:
            self.close_timer.cancel()
            self.close_timer = None

    def _close_transport(self) -> None:
        """Close the transport; reset it if the peer has not taken what is queued within ``close_timeout``.

        ``transport.close()`` waits for the write buffer to drain, which a peer that stopped
        reading never lets happen. A plain socket's transport with an empty buffer closes the
        socket at once: no timer then (the usual case, one fewer per connection).
        """
        if self._held is not None and not self._lost:
            self._flush()
        transport = self.transport
        transport.close()
        self._wake_writers()  # a send waiting for the buffer to drain now fails
        if not self._lost and self._reset_timer is None and (self._fd < 0 or transport.get_write_buffer_size()):
            self._reset_timer = self.loop.call_later(self.close_timeout, self._reset)

    def _reset(self) -> None:
        """Drop the connection now. With data still unsent (in our buffer or the kernel's), abort
        with a TCP reset, which also frees the kernel's send queue; else close it gracefully."""
        self._reset_timer = None
        transport = self.transport
        sock = transport.get_extra_info("socket")
        if sock is None or not _unsent(transport, sock):
            transport.close()
            return
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass  # already gone
        transport.abort()

    def _put_disconnect(self, code: int, reason: str | None = None) -> None:
        """Queue the one ``websocket.disconnect``; ``reason`` only when the peer or the app gave one."""
        if self._disconnect is None:
            message: dict[str, Any] = {"type": "websocket.disconnect", "code": code}
            if reason is not None:
                message["reason"] = reason
            self._disconnect = message
            self._queue.append(message)
            self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_writable(self) -> None:
        while self._write_paused and self._open and not self._lost:
            waiter = self._drain_waiter
            if waiter is None or waiter.done():
                waiter = self._drain_waiter = self.loop.create_future()
            await waiter

    def _wake_writers(self) -> None:
        waiter = self._drain_waiter
        if waiter is not None:
            self._drain_waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -------------------------------------------------------------- keepalive

    def _start_keepalive(self) -> None:
        if self._ping_interval:
            # One timer per loop for every connection's next ping (see bolt.protocol.timers), not one each.
            self._pings = deadlines(self.loop, self._ping_interval)
            self._pings.set(self._send_ping)

    def _stop_keepalive(self) -> None:
        if self._pings is not None:
            self._pings.clear(self._send_ping)
            self._pings = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None

    def _send_ping(self) -> None:
        pings, self._pings = self._pings, None
        if not self._open or pings is None:
            return
        self.conn.release_idle()  # the ping tick doubles as the idle check for deflate memory
        if self._ping_payload is None or self._ping_timeout is None:
            self._ping_payload = os.urandom(4)
            self.transport.write(self.conn.send_ping(self._ping_payload))
            if self._ping_timeout is not None:
                self._pong_timer = self.loop.call_later(self._ping_timeout, self._pong_missing)
        self._pings = pings
        pings.set(self._send_ping)

    def _pong_missing(self) -> None:
        self._pong_timer = None
        if not self._open:
            return
        if self._read_paused:
            # Reading waits for the app, so the pong may be unread in the socket: the peer is not
            # to blame. The timeout starts again when reading resumes (_resume_reading).
            return
        self.logger.info(
            '%s - "WebSocket %s" keepalive ping timeout',
            _client_addr(self.scope),
            _path_with_query(self.scope),
        )
        self._put_disconnect(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        self._open = False
        self._stop_keepalive()
        # The peer is unresponsive: send the close frame and drop the connection (RFC 6455 7.1.7).
        if self._held is not None:
            self._flush()
        self.transport.write(self.conn.close(CloseCode.INTERNAL_ERROR, "keepalive ping timeout"))
        self._close_transport()
