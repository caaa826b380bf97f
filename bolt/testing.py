"""In-process test clients: drive a BoltAPI (or any ASGI app) through ASGI, no sockets.

`WebSocketTestClient` runs the handler as a task beside the test and exchanges ASGI messages with it;
`TestClient` / `AsyncTestClient` do the same for HTTP requests.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote, unquote, urlencode

import anyio.from_thread
import orjson

from bolt.datastructures import Headers, raw_headers
from bolt.extensions import TESTING, Testing
from bolt.security.auth import AuthContext
from bolt.security.pipeline import SAFE_METHODS

DEFAULT_TIMEOUT = 5.0
#: The Origin a WebSocketTestClient sends with cookies when the test gives none: the test server's own.
TEST_ORIGIN = "http://testserver"
T = TypeVar("T")
_APP_DONE = {"type": "bolt.testing.app_done"}


class ConnectionClosed(Exception):
    """The server closed the WebSocket; `code` and `reason` are from its close frame."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


class HandlerReturned(ConnectionClosed, TimeoutError):
    """The handler returned without sending anything more or closing, and bolt closed with 1000.

    It is both a ConnectionClosed (what the wire says) and a TimeoutError (no message will ever
    arrive, as a receive timeout would say), so `pytest.raises(TimeoutError)` and
    `pytest.raises(ConnectionClosed)` both hold, and the test does not wait out its timeout.
    """

    def __init__(self, code: int = 1000) -> None:
        super().__init__(code, "")

    def __str__(self) -> str:
        return f"the handler returned without closing: bolt closed the connection with {self.code}"


class HandshakeRejected(Exception):
    """The server refused the WebSocket handshake with an HTTP status (404, 422, 500, ...)."""

    def __init__(self, status_code: int, detail: str, body: Any = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.body = body


class WebSocketDenied(PermissionError):
    """The handshake was refused for security reasons (401, 403, 429); the message holds the detail."""

    def __init__(self, status_code: int, detail: str, body: Any = None) -> None:
        super().__init__(f"{status_code}: {detail}")
        self.status_code = status_code
        self.detail = detail
        self.body = body


def _target_path(path: str) -> tuple[str, bytes]:
    """The scope's ``path`` and ``raw_path`` for a test's path, as a real server fills them: the
    path as sent, with what a client would escape escaped (``raw_path``), and that decoded (``path``)."""
    raw = quote(path.encode("utf-8", "surrogateescape"), safe="/%:@!$&'()*+,;=~")
    return unquote(raw), raw.encode("ascii")


def _request_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
                     cookies: Mapping[str, str] | None) -> list[tuple[bytes, bytes]]:
    """A request's header fields: `headers`, behind a `host: testserver` unless they name a Host."""
    fields = raw_headers(headers)
    if not any(name == b"host" for name, _ in fields):
        fields.insert(0, (b"host", b"testserver"))
    if cookies:
        fields.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode("latin-1")))
    return fields


def _with_origin(headers: list[tuple[bytes, bytes]], origin: str | None) -> list[tuple[bytes, bytes]]:
    """A handshake (or an unsafe request) carrying cookies gets the Origin a browser would send
    (`origin`), unless the test gives one in its headers: cookie credentials without an Origin are
    refused there."""
    names = {name for name, _ in headers}
    if origin is not None and b"cookie" in names and b"origin" not in names:
        if origin == TEST_ORIGIN:  # the default: the page is on the host the request names
            origin = "http://" + next(value for name, value in headers if name == b"host").decode("latin-1")
        headers.append((b"origin", origin.encode("latin-1")))
    return headers


class WebSocketTestClient:
    """Open a WebSocket to `api` at `path` in-process: `async with WebSocketTestClient(api, "/ws") as ws:`.

    Every receive waits at most `timeout` seconds (default 5) and then raises TimeoutError, so a test
    never hangs. With cookies (and no Origin header of the test's own) it sends `Origin: <origin>`, by
    default the same origin (`http://` and the Host sent, `testserver` unless the headers name
    another), as a browser would; `origin=None` sends none.
    `auth_context=AuthContext(user_id=..., ...)` runs the handler as that user without credentials:
    the route's authentication backends are skipped, its guards and limits still run.
    A refused handshake raises `WebSocketDenied` (a PermissionError) for 401/403/429 and
    `HandshakeRejected` for other statuses. An exception the handler did not handle is re-raised here.
    """

    def __init__(
        self,
        api: Any,
        path: str,
        headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
        query_string: str | Mapping[str, str] = "",
        cors_allowed_origins: Sequence[str] | None = None,
        read_django_settings: bool = True,
        subprotocols: Sequence[str] | None = None,
        cookies: Mapping[str, str] | None = None,
        *,
        client: tuple[str, int] = ("testclient", 50000),
        timeout: float = DEFAULT_TIMEOUT,
        raise_server_exceptions: bool = True,
        origin: str | None = TEST_ORIGIN,
        auth_context: AuthContext | None = None,
    ) -> None:
        path, _, inline_query = path.partition("?")
        scope_path, raw_path = _target_path(path)
        if not isinstance(query_string, str):
            query_string = urlencode(query_string)
        self.app = api
        self.timeout = timeout
        self._handler_returned = False
        # What the test asks of the app beside what a real server sends: the `bolt.testing` extension.
        testing: Testing = {"raise_server_exceptions": raise_server_exceptions,
                            "handler_returned": self._on_handler_returned}
        if auth_context is not None:
            testing["auth"] = auth_context
        if cors_allowed_origins is not None or not read_django_settings:
            allowed = None if cors_allowed_origins is None else list(cors_allowed_origins)  # None: the api's
            testing["origins"] = {"allowed_origins": allowed, "read_django_settings": read_django_settings}
        self.scope: dict[str, Any] = {
            "type": "websocket",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": "ws",
            "server": ("testserver", 80),
            "client": client,
            "root_path": "",
            "path": scope_path,
            "raw_path": raw_path,
            "query_string": (query_string or inline_query).encode(),
            "headers": _with_origin(_request_headers(headers, cookies), origin),
            "subprotocols": list(subprotocols or ()),
            "state": {},
            "extensions": {"websocket.http.response": {}, TESTING: testing},
        }
        if auth_context is not None:
            # Taken as what the route's authentication established; its guards still decide.
            self.scope["auth"] = auth_context
        self.accepted = False
        # The close as this client has taken it in (its own, or the server's once received), and the
        # server's as soon as it is sent: a real client's reader sees that at once (see `closed`).
        self._closed = False
        self._close_code: int | None = None
        self._close_reason: str | None = None
        self._server_close: tuple[int, str] | None = None
        self._open = False
        self.accepted_subprotocol: str | None = None
        self.response_headers: Headers = Headers()
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._app_error: BaseException | None = None
        self._app_error_raised = False

    # -- the app side ----------------------------------------------------------------------------

    async def _app_receive(self) -> dict[str, Any]:
        return await self._to_app.get()

    async def _app_send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if self._closed and kind == "websocket.send":
            # What a real server reports when the peer is gone (ASGI spec 2.4).
            raise OSError("the client has disconnected")
        if kind == "websocket.accept":
            self._open = True  # as the server sees it: the test may not have read the accept yet
        elif kind == "websocket.close" and self._open:
            code, reason = self._server_close = (message.get("code", 1000), message.get("reason") or "")
            # A real server answers the server's close with the client's echo, ending receive().
            self._to_app.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._from_app.put_nowait(message)

    async def _run_app(self) -> None:
        try:
            await self.app(self.scope, self._app_receive, self._app_send)
        except BaseException as exc:  # handed to the test, which decides what to raise
            self._app_error = exc
        finally:
            self._from_app.put_nowait(_APP_DONE)

    def _raise_app_error(self) -> None:
        if self._app_error is not None and not self._app_error_raised \
                and not isinstance(self._app_error, asyncio.CancelledError):
            self._app_error_raised = True
            raise self._app_error

    def _raise_closed(self) -> NoReturn:
        """What a receive after the close raises: the app's error, if not raised yet, else the close again."""
        self._raise_app_error()
        raise ConnectionClosed(self._close_code or 1006, self._close_reason or "")

    async def _next(self, timeout: float | None) -> dict[str, Any]:
        timeout = self.timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(self._from_app.get(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no message from the server within {timeout} s") from None

    # -- connecting ------------------------------------------------------------------------------

    async def __aenter__(self) -> WebSocketTestClient:
        self._to_app.put_nowait({"type": "websocket.connect"})
        self._task = asyncio.create_task(self._run_app())
        message = await self._next(None)
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted = True
            self.accepted_subprotocol = message.get("subprotocol")
            self.response_headers = Headers(list(message.get("headers") or ()))
            return self
        self._closed = True
        await self._finish()
        if kind == "websocket.http.response.start":
            status = message["status"]
            self.response_headers = Headers(list(message.get("headers") or ()))
            body = b""
            while (part := await self._next(None))["type"] == "websocket.http.response.body":
                body += part.get("body", b"")
                if not part.get("more_body"):
                    break
            try:
                payload: Any = orjson.loads(body)
                detail = payload.get("detail", "") if isinstance(payload, dict) else str(payload)
            except orjson.JSONDecodeError:
                payload, detail = body, body.decode("utf-8", "replace")
            self._raise_app_error()
            error_type = WebSocketDenied if status in (401, 403, 429) else HandshakeRejected
            raise error_type(status, str(detail), payload)
        if kind == "websocket.close":
            raise WebSocketDenied(403, message.get("reason") or "Connection refused")
        self._raise_app_error()
        raise HandshakeRejected(500, f"the app ended the handshake with {kind!r}")

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if not self.closed:
            await self.close()
        await self._finish()
        if exc is None:
            self._raise_app_error()

    async def _finish(self) -> None:
        """Wait for the handler to end; cancel it if it ignores the disconnect."""
        if self._task is None or self._task.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.timeout)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- messages --------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is closed: by this client, or by the server as soon as it sent its close
        (messages it sent before that can still be received)."""
        return self._closed or self._server_close is not None

    @property
    def close_code(self) -> int | None:
        """The code of the close that closed the connection (see `closed`), else None."""
        return self._close_code if self._closed or self._server_close is None else self._server_close[0]

    @property
    def close_reason(self) -> str | None:
        """The reason of the close that closed the connection (see `closed`), else None."""
        return self._close_reason if self._closed or self._server_close is None else self._server_close[1]

    async def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            raise ConnectionClosed(self.close_code or 1006, self.close_reason or "")
        self._to_app.put_nowait(message)

    async def send_text(self, data: str) -> None:
        await self.send({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        await self.send({"type": "websocket.receive", "bytes": data})

    async def send_json(self, data: Any, mode: str = "text") -> None:
        payload = orjson.dumps(data)
        await (self.send_bytes(payload) if mode == "binary" else self.send_text(payload.decode()))

    async def receive(self, timeout: float | None = None) -> dict[str, Any]:
        """The next ASGI message from the server; raises ConnectionClosed once it has closed."""
        if self._closed and self._handler_returned:
            raise HandlerReturned(self._close_code or 1000)
        if self._closed and self._from_app.empty():
            self._raise_closed()
        message = await self._next(timeout)
        if message["type"] == "websocket.close":
            self._closed = True
            self._close_code = code = message.get("code", 1000)
            self._close_reason = reason = message.get("reason") or ""
            await self._finish()
            self._raise_app_error()
            if self._handler_returned:
                raise HandlerReturned(code)
            raise ConnectionClosed(code, reason)
        if message is _APP_DONE:
            if self._closed:  # the close was reported already: the app's end changes nothing
                self._raise_closed()
            self._closed = True
            self._raise_app_error()
            self._close_code = self._close_code or 1006
            raise ConnectionClosed(self._close_code, "the app returned without closing")
        return message

    def _on_handler_returned(self) -> None:
        self._handler_returned = True

    async def receive_text(self, timeout: float | None = None) -> str:
        message = await self.receive(timeout)
        if message.get("text") is None:
            raise TypeError("expected a text message, received binary")
        return message["text"]

    async def receive_bytes(self, timeout: float | None = None) -> bytes:
        message = await self.receive(timeout)
        if message.get("bytes") is None:
            raise TypeError("expected a binary message, received text")
        return message["bytes"]

    async def receive_json(self, timeout: float | None = None) -> Any:
        message = await self.receive(timeout)
        data = message.get("text")
        return orjson.loads(data if data is not None else message["bytes"])

    def iter_text(self, timeout: float | None = None) -> AsyncIterator[str]:
        """Text messages until the server closes (the close ends the loop; a timeout raises)."""
        return self._until_closed(self.receive_text, timeout)

    def iter_bytes(self, timeout: float | None = None) -> AsyncIterator[bytes]:
        """Binary messages until the server closes (the close ends the loop; a timeout raises)."""
        return self._until_closed(self.receive_bytes, timeout)

    def iter_json(self, timeout: float | None = None) -> AsyncIterator[Any]:
        """JSON messages until the server closes (the close ends the loop; a timeout raises)."""
        return self._until_closed(self.receive_json, timeout)

    @staticmethod
    async def _until_closed(receive: Callable[[float | None], Awaitable[T]], timeout: float | None) -> AsyncIterator[T]:
        try:
            while True:
                yield await receive(timeout)
        except ConnectionClosed:
            return

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close from the client side and wait for the handler to finish."""
        if self._closed:
            return
        self._closed = True
        self._close_code, self._close_reason = code, reason
        self._to_app.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        await self._finish()


class TestResponse:
    """What the app answered to one HTTP request."""

    __test__ = False  # not a pytest test class

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.content)

    def __repr__(self) -> str:
        return f"<TestResponse {self.status_code}>"


class AsyncTestClient:
    """Send HTTP requests to an ASGI app in-process: `await client.get("/items", params={...})`.

    A request of a method other than GET, HEAD, OPTIONS or TRACE that carries cookies (and no Origin
    header of the test's own) sends `Origin: <origin>`, by default the same origin (`http://` and
    the Host sent), as a browser would; `origin=None` sends none.
    """

    __test__ = False

    def __init__(self, app: Any, *, client: tuple[str, int] = ("testclient", 50000),
                 raise_server_exceptions: bool = True, origin: str | None = TEST_ORIGIN) -> None:
        self.app = app
        self.client = client
        self.raise_server_exceptions = raise_server_exceptions
        self.origin = origin

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | str | None = None,
                      headers: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
                      cookies: Mapping[str, str] | None = None, json: Any = None,
                      content: bytes | str | None = None) -> TestResponse:
        path, _, query = path.partition("?")
        scope_path, raw_path = _target_path(path)
        if params is not None:
            query = params if isinstance(params, str) else urlencode(params, doseq=True)
        fields = _request_headers(headers, cookies)
        if method.upper() not in SAFE_METHODS:
            fields = _with_origin(fields, self.origin)
        body = b""
        if json is not None:
            body = orjson.dumps(json)
            fields.append((b"content-type", b"application/json"))
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        if body:
            fields.append((b"content-length", str(len(body)).encode()))
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
            "method": method.upper(), "scheme": "http", "server": ("testserver", 80), "client": self.client,
            "root_path": "", "path": scope_path, "raw_path": raw_path,
            "query_string": query.encode(),
            "headers": fields, "state": {},
            "extensions": {TESTING: {"raise_server_exceptions": self.raise_server_exceptions}},
        }
        sent_body = False
        status = 500
        response_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client never disconnects mid-request
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = list(message.get("headers") or ())
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return TestResponse(status, response_headers, b"".join(chunks))

    async def get(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("POST", path, **kwargs)

    async def put(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("PUT", path, **kwargs)

    async def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("PATCH", path, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("DELETE", path, **kwargs)

    async def head(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("HEAD", path, **kwargs)

    async def options(self, path: str, **kwargs: Any) -> TestResponse:
        return await self.request("OPTIONS", path, **kwargs)


class TestClient:
    """The synchronous twin of AsyncTestClient, for plain (non-async) tests.

    Requests run on one event loop in a background thread that lives as long as the client;
    use it as a context manager (or call `close()`) to stop that thread.
    """

    __test__ = False

    def __init__(self, app: Any, **kwargs: Any) -> None:
        self._async = AsyncTestClient(app, **kwargs)
        self._portal_cm: Any = None
        self._portal: Any = None

    def request(self, method: str, path: str, **kwargs: Any) -> TestResponse:
        if self._portal is None:
            self._portal_cm = anyio.from_thread.start_blocking_portal()
            self._portal = self._portal_cm.__enter__()
        return self._portal.call(lambda: self._async.request(method, path, **kwargs))

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("DELETE", path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("HEAD", path, **kwargs)

    def options(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("OPTIONS", path, **kwargs)

    def close(self) -> None:
        if self._portal_cm is not None:
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = self._portal = None

    def __enter__(self) -> TestClient:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()
