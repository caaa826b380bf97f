"""`BoltAPI`: the ASGI application, its route decorators and its request/handshake dispatch."""
from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import orjson

from bolt.apidocs import DocsRoutes
from bolt.asyncapi import asyncapi_document, message_types
from bolt.datastructures import raw_headers
from bolt.exceptions import HTTPException
from bolt.extensions import raise_server_exceptions, testing
from bolt.metrics import Metrics, websocket_denied
from bolt.models import Codec, codec_for, declares_model
from bolt.openapi import openapi_document
from bolt.params import Binder, BindError
from bolt.realtime.endpoint import DEFAULT_MAX_ROOMS, SUBPROTOCOL, Policy, RealtimeEndpoint
from bolt.realtime.hub import Hub
from bolt.realtime.outbox import OutboxSettings
from bolt.requests import DEFAULT_MAX_BODY, Request
from bolt.responses import JSONResponse, PlainTextResponse, Response
from bolt.routing import Route, Router, route_path, split_template
from bolt.security import Denial, SecurityPipeline
from bolt.security.expiry import forget as forget_deadline
from bolt.security.hosts import INVALID_HOST, host_allowed
from bolt.security.limits import RATE_LIMIT_ATTR
from bolt.websocket import (
    CloseCode,
    InvalidJSONMessage,
    MessageTypeError,
    WebSocket,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketState,
)
from bolt.wire import truncate_reason

logger = logging.getLogger("bolt")

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

Handler = Callable[..., Any]
_NO_ARGUMENTS: dict[str, Any] = {}  # never changed: `**` copies it into the call
_SEND_WHOLE = Response.__call__


# The options a route takes besides its named arguments. Any other name is refused when the route is
# registered: a misspelt `gaurds=` must not leave a route open without a word.
WEBSOCKET_OPTIONS = frozenset(("include_in_schema", "send_queue", "slow_consumer", "send_timeout",
                               "allow_missing_origin"))
HTTP_OPTIONS = frozenset(("include_in_schema", "tags", "summary", "responses", "allow_missing_origin"))


def _check_options(path: str, options: dict[str, Any], known: frozenset[str]) -> None:
    unknown = options.keys() - known
    if unknown:
        raise TypeError(f"{path}: unknown route option(s) {', '.join(sorted(unknown))}; "
                        f"the route takes {', '.join(sorted(known))} besides its named arguments")


class BoltAPI:
    """An ASGI application holding HTTP and WebSocket routes and the security policy they share."""

    def __init__(
        self,
        *,
        cors_allowed_origins: Sequence[str] | None = None,
        auth: Sequence[Any] | None = None,
        guards: Sequence[Any] | None = None,
        on_startup: Sequence[Callable[[], Any]] = (),
        on_shutdown: Sequence[Callable[[], Any]] = (),
        max_body_size: int = DEFAULT_MAX_BODY,
        pubsub: Any = None,
        send_queue: int = 256,
        slow_consumer: str = "drop_oldest",
        send_timeout: float | None = 10.0,
        presence_ttl: float = 30.0,
        title: str = "bolt API",
        version: str = "0.1.0",
        description: str | None = None,
        openapi_url: str | None = "/openapi.json",
        asyncapi_url: str | None = "/asyncapi.json",
        docs_url: str | None = "/docs",
        allow_missing_origin: bool | None = None,
        metrics: str | None = None,
    ) -> None:
        """`pubsub` is "memory", a redis:// URL or a Backend; None reads Django's BOLT_PUBSUB (default "memory").

        `title`, `version` and `description` describe the api in its OpenAPI document (served at
        `openapi_url`), its AsyncAPI document (`asyncapi_url`) and the docs page (`docs_url`);
        None switches one off (docs/http.md).

        `allow_missing_origin=True` lets WebSocket handshakes, and HTTP requests of a method other
        than GET, HEAD, OPTIONS or TRACE, that authenticate by cookie (or session) through without an
        Origin header (refused with 403 "Origin required" by default); None reads Django's
        BOLT_ALLOW_MISSING_ORIGIN. A route may say so too:
        `@api.websocket(path, allow_missing_origin=True)`, `@api.post(path, allow_missing_origin=True)`.

        `send_queue`, `slow_consumer` ("drop_oldest", "drop_newest" or "close") and `send_timeout` bound
        what a broadcast may queue for one client; a route can override them in `@api.websocket(...)`.
        `metrics="/metrics"` serves Prometheus metrics at that path (docs/metrics.md).
        """
        self.router = Router()
        self.cors_allowed_origins = list(cors_allowed_origins) if cors_allowed_origins is not None else None
        self.auth = list(auth) if auth is not None else None
        self.guards = list(guards) if guards is not None else None
        self.max_body_size = max_body_size
        self.allow_missing_origin = allow_missing_origin
        self._startup = list(on_startup)
        self._shutdown = list(on_shutdown)
        self.security = SecurityPipeline(self)
        self.hub = Hub(pubsub, OutboxSettings(send_queue, slow_consumer, send_timeout), presence_ttl)
        self.title = title
        self.version = version
        self.description = description
        self.docs = DocsRoutes(self, openapi_url, asyncapi_url, docs_url)
        self.docs.register()
        if metrics is not None:
            self.hub.metrics = Metrics(metrics)
            self.get(metrics)(self._metrics)

    async def _metrics(self) -> Response:
        return self.hub.metrics.response(self.hub)  # type: ignore[union-attr]

    # -- registration ----------------------------------------------------------------------------

    def websocket(self, path: str, *, auth: Sequence[Any] | None = None, guards: Sequence[Any] | None = None,
                  receives: Any = None, sends: Any = None, **options: Any) -> Callable[[Handler], Handler]:
        """Register an async WebSocket handler at `path`; `auth` and `guards` override the api defaults.

        `receives` and `sends` (a model, or a list of them) declare the messages the handler reads
        and writes, for the AsyncAPI document; they change nothing at run time.
        """
        options = dict(options, receives=message_types(receives, "receives"), sends=message_types(sends, "sends"))

        def decorator(endpoint: Handler) -> Handler:
            if not inspect.iscoroutinefunction(endpoint):
                raise TypeError(f"WebSocket handler {endpoint.__qualname__} must be an async function")
            self._add_websocket(path, endpoint, auth, guards, options)
            return endpoint

        return decorator

    def realtime(self, path: str, *, auth: Sequence[Any] | None = None, guards: Sequence[Any] | None = None,
                 can_join: Policy = None, can_publish: Policy = None, on_publish: Handler | None = None,
                 model: Any = None, max_rooms: int = DEFAULT_MAX_ROOMS,
                 rate_limit: Callable[[Handler], Handler] | None = None, subprotocol: str | None = SUBPROTOCOL,
                 **options: Any) -> RealtimeEndpoint:
        """Serve the room protocol (docs/realtime-protocol.md) at `path`: the endpoint bolt.js connects to.

        `can_join(websocket, room)` and `can_publish(websocket, room, data)` (sync or async) allow a
        room only by returning True; left out, nobody may join or publish (pass True to allow all).
        `on_publish(websocket, room, data)` may store or replace a message before it is broadcast,
        `model` checks published data, `max_rooms` bounds the rooms of one connection, and
        `rate_limit=rate_limit(...)` limits handshakes and messages (an over-limit message is answered
        `rate_limited` with `on_message_limit="drop"`). The handshake accepts `subprotocol` when the
        client offers it, and no subprotocol otherwise (None: never one). Other options are those of
        `websocket()`.
        """
        if any(kind != "static" for kind, _ in split_template(path)):
            raise ValueError(f"a realtime path takes no parameters: {path!r}")
        endpoint = RealtimeEndpoint(self.hub, can_join=can_join, can_publish=can_publish, on_publish=on_publish,
                                    model=model, max_rooms=max_rooms, subprotocol=subprotocol)

        async def realtime(websocket: WebSocket) -> None:
            await endpoint(websocket)

        realtime.__qualname__ = f"realtime({path!r})"
        if rate_limit is not None:
            rate_limit(realtime)
            spec = getattr(realtime, RATE_LIMIT_ATTR, None)
            if spec is not None and spec.messages is not None:
                # The endpoint answers over-limit messages itself instead of the pipeline dropping them.
                endpoint.message_limit = (spec.messages, spec.on_message_limit)
                setattr(realtime, RATE_LIMIT_ATTR, dataclasses.replace(spec, messages=None))
        route = self._add_websocket(path, realtime, auth, guards, options, envelopes=True)
        route.options["realtime"] = endpoint  # the AsyncAPI document describes its room protocol
        return endpoint

    def _add_websocket(self, path: str, endpoint: Handler, auth: Sequence[Any] | None,
                       guards: Sequence[Any] | None, options: dict[str, Any], envelopes: bool = False) -> Route:
        _check_options(path, options, WEBSOCKET_OPTIONS | {"receives", "sends"})
        route = Route(path, endpoint, "websocket", options=dict(options, auth=auth, guards=guards))
        if envelopes or {"send_queue", "slow_consumer", "send_timeout"} & options.keys():
            route.options["outbox"] = self.hub.outbox_settings.replace(
                options.get("send_queue"), options.get("slow_consumer"), options.get("send_timeout", False),
                envelopes=envelopes)
        route.binder = Binder(route, WebSocket)
        self.router.add(route)
        return route

    def route(self, path: str, methods: Sequence[str], *, auth: Sequence[Any] | None = None,
              guards: Sequence[Any] | None = None, status_code: int = 200, response_model: Any = None,
              **options: Any) -> Callable[[Handler], Handler]:
        """Register an HTTP handler (async, or sync run in a worker thread) for `methods` at `path`.

        The response type is `response_model`, or else the handler's return annotation when it
        names a model (`-> Item`, `-> list[Item]`): what the handler returns is converted to it and
        encoded by the model's library, so fields the type does not declare are never sent.
        `tags`, `summary`, `responses` ({status: description or model}) and `include_in_schema`
        describe the route in the OpenAPI document (docs/http.md).
        """
        allowed = frozenset(m.upper() for m in methods)
        unknown = allowed - set(HTTP_METHODS)
        if unknown:
            raise ValueError(f"unknown HTTP methods: {sorted(unknown)}")
        _check_options(path, options, HTTP_OPTIONS)

        def decorator(endpoint: Handler) -> Handler:
            route = Route(path, endpoint, "http", allowed,
                          options=dict(options, auth=auth, guards=guards, status_code=status_code))
            binder = Binder(route, Request)
            route.binder = binder
            route.is_async = inspect.iscoroutinefunction(endpoint)
            route.response_codec = self._response_codec(route, response_model)
            self.router.add(route)
            return endpoint

        return decorator

    @staticmethod
    def _response_codec(route: Route, response_model: Any) -> Codec | None:
        declared = response_model
        if declared is None:
            if route.binder.returns_unresolved:
                raise TypeError(f"{route.path}: cannot resolve the return annotation of "
                                f"{route.endpoint.__qualname__}; import its names at module level, or pass "
                                "response_model=")
            returns = route.binder.returns
            if not declares_model(returns) or _names_response(returns):
                return None
            declared = returns
        try:
            return codec_for(declared)
        except TypeError as exc:
            raise TypeError(f"{route.path}: response type: {exc}") from None

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["GET"], **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["POST"], **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PUT"], **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["PATCH"], **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["DELETE"], **kwargs)

    def head(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["HEAD"], **kwargs)

    def options(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self.route(path, ["OPTIONS"], **kwargs)

    def openapi(self, *, root_path: str = "") -> dict[str, Any]:
        """The OpenAPI 3.1 document of the HTTP routes, as served at `openapi_url`."""
        return openapi_document(self, root_path=root_path)

    def asyncapi(self, *, host: str | None = None, scheme: str | None = None, root_path: str = "") -> dict[str, Any]:
        """The AsyncAPI 3.0 document of the WebSocket routes; `host` adds a server entry."""
        return asyncapi_document(self, host=host, scheme=scheme, root_path=root_path)

    def on_startup(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Run `func` (sync or async) when the server starts."""
        self._startup.append(func)
        return func

    def on_shutdown(self, func: Callable[[], Any]) -> Callable[[], Any]:
        """Run `func` (sync or async) when the server stops."""
        self._shutdown.append(func)
        return func

    def handles(self, scope: dict[str, Any]) -> bool:
        """Whether a route of this api matches the scope's path (used to share a server with Django)."""
        return self.router.match(route_path(scope), scope["type"], scope.get("method")) is not None

    # -- ASGI --------------------------------------------------------------------------------------

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            phase = message["type"].rsplit(".", 1)[-1]  # startup or shutdown
            hooks = self._startup if phase == "startup" else self._shutdown
            try:
                if phase == "startup":
                    await self.hub.start()
                for hook in hooks:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
                if phase == "shutdown":
                    await self.hub.stop()
            except Exception as exc:
                logger.exception("lifespan %s failed", phase)
                await send({"type": f"lifespan.{phase}.failed", "message": repr(exc)})
                return
            await send({"type": f"lifespan.{phase}.complete"})
            if phase == "shutdown":
                return

    # -- WebSocket -------------------------------------------------------------------------------

    async def _websocket(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope["app"] = self
        if not host_allowed(scope):
            await self._refuse_host(scope, receive, send)
            return
        match = self.router.match(route_path(scope), "websocket")
        route = match.leaf.websocket if match is not None else None
        if match is None or route is None:
            refusal = self.security.deny(scope["path"], scope, Denial(404, "Not Found"), "no WebSocket route")
            await self._deny_websocket(scope, send, refusal)
            return
        websocket = WebSocket(scope, receive, send, dict(zip(route.param_names, match.values)), self.hub)
        denial = await self.security.check(websocket, route)
        if denial is not None:
            await self._deny_websocket(scope, send, denial)
            return
        try:
            kwargs = await route.binder.bind(websocket)
        except BindError as exc:
            denial = self.security.deny(route.path, scope, Denial(exc.status_code, exc.detail), "parameters")
            await self._deny_websocket(scope, send, denial)
            return
        # The handler runs in this frame rather than a helper's: every message's await passes
        # through each frame on the stack, so one frame fewer is measurable on the echo path.
        websocket.outbox = route.options.get("outbox")  # handed to the hub when the handler accepts
        try:
            handler = route.endpoint(**kwargs)
            del kwargs  # the handler's frame holds its arguments; this one need not keep them while it runs
            await handler
        except asyncio.CancelledError:
            if not self.hub.evicted(websocket):
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]  # the hub ended a slow consumer
        except WebSocketDisconnect:
            # This connection ended (its client left, or the hub ended it): a normal end, not an error.
            # While it is still open, the disconnect is another's (a send to a peer whose client left),
            # which the handler let through: its error like any other.
            if websocket.application_state is WebSocketState.CONNECTED and await self._handler_failed(
                    websocket, route, scope):
                raise
        except WebSocketClose as exc:
            await self._end_websocket(websocket, route.path, exc.code, exc.reason)
        except (MessageTypeError, InvalidJSONMessage) as exc:
            await self._end_websocket(websocket, route.path, exc.close_code, truncate_reason(str(exc)))
        except Exception:
            if await self._handler_failed(websocket, route, scope):
                raise
        else:
            if websocket.application_state is WebSocketState.CONNECTING:
                logger.warning("WebSocket handler %s returned without accept()", route.endpoint.__qualname__)
            elif websocket.application_state is WebSocketState.CONNECTED:
                test = testing(scope)
                if test is not None and "handler_returned" in test:
                    test["handler_returned"]()
            elif websocket.client_state is WebSocketState.CONNECTING:  # close() before accept(): a 403 was sent
                self._count_denied(self.security.deny(route.path, scope, Denial(403, "Connection refused"),
                                                      "the handler closed it before accept()"))
            await self._end_websocket(websocket, route.path, CloseCode.NORMAL, "")
        finally:
            forget_deadline(websocket)
            await self.hub.disconnect(websocket)

    async def _handler_failed(self, websocket: WebSocket, route: Route, scope: dict[str, Any]) -> bool:
        """Log the handler's exception and end its connection with 1011 (a 500 before accept());
        whether the exception is to be raised again (a test client that asked for it)."""
        logger.exception("WebSocket handler %s for %s raised", route.endpoint.__qualname__, websocket.path)
        # The reason is generic on purpose: exception text may hold secrets.
        await self._end_websocket(websocket, route.path, CloseCode.INTERNAL_ERROR, "Internal error", status_code=500)
        return raise_server_exceptions(scope)

    async def _end_websocket(self, websocket: WebSocket, route_path: str, code: int, reason: str,
                             status_code: int = 403) -> None:
        """Close an accepted connection, or refuse one the handler never accepted (logged with its route)."""
        if websocket.application_state is WebSocketState.CONNECTING:
            denial = self.security.deny(route_path, websocket.scope,
                                        Denial(status_code, reason or "Connection refused"), "the handler refused it")
            await self._deny_websocket(websocket.scope, websocket.asgi_send, denial)
            websocket.application_state = WebSocketState.DISCONNECTED
        elif websocket.application_state is WebSocketState.CONNECTED:
            await websocket.close(code, reason)

    async def _refuse_host(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Answer a request or handshake for a host not in Django's ALLOWED_HOSTS: 400, logged."""
        denial = self.security.deny(scope["path"], scope, Denial(400, INVALID_HOST), "not in ALLOWED_HOSTS")
        if scope["type"] == "websocket":
            await self._deny_websocket(scope, send, denial)
        else:
            await JSONResponse(denial.body(), denial.status_code)(scope, receive, send)

    async def _deny_websocket(self, scope: dict[str, Any], send: Any, denial: Denial) -> None:
        """Refuse a handshake: the real status and JSON body where the server supports it, else a 403."""
        self._count_denied(denial)
        if "websocket.http.response" in (scope.get("extensions") or {}):
            body = orjson.dumps(denial.body())
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            headers += raw_headers(denial.headers)
            await send({"type": "websocket.http.response.start", "status": denial.status_code, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": CloseCode.POLICY_VIOLATION,
                        "reason": truncate_reason(denial.detail)})

    def _count_denied(self, denial: Denial) -> None:
        if self.hub.metrics is not None:
            websocket_denied(self.hub.metrics, denial)

    # -- the ASGI entry, and HTTP ----------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Kept small: this frame lives as long as the connection, and an idle WebSocket should not
        # carry the HTTP path's locals (about 250 bytes).
        scope_type = scope["type"]
        if scope_type == "http":
            await self._http(scope, receive, send)
        elif scope_type == "websocket":
            await self._websocket(scope, receive, send)
        elif scope_type == "lifespan":
            await self._lifespan(receive, send)
        else:
            raise ValueError(f"unsupported ASGI scope type {scope_type!r}")

    async def _unrouted(self, scope: dict[str, Any], receive: Any, send: Any, response: Response) -> None:
        """A 404 or 405, with the CORS headers an admitted origin gets, so a page sees the status."""
        self.security.add_unrouted_cors_headers(scope, response)
        await response(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        # Each step a plain route does not need is skipped: every coroutine layer and lookup costs
        # measurably per request (benchmarks/http_bench.py).
        scope["app"] = self
        if not host_allowed(scope):
            await self._refuse_host(scope, receive, send)
            return
        method = scope["method"]
        match = self.router.match(route_path(scope), "http", method)
        if match is None:
            await self._unrouted(scope, receive, send, JSONResponse({"detail": "Not Found"}, 404))
            return
        if method == "OPTIONS":
            preflight = self.security.preflight(scope, match.leaf.allowed_methods())
            if preflight is not None:
                await preflight(scope, receive, send)
                return
        route = match.leaf.http.get(method)
        if route is None and method == "HEAD":
            route = match.leaf.http.get("GET")
        if route is None:
            allowed = set(match.leaf.allowed_methods())
            if "GET" in allowed:
                allowed.add("HEAD")
            headers = {"allow": ", ".join(sorted(allowed))}
            await self._unrouted(scope, receive, send, JSONResponse({"detail": "Method Not Allowed"}, 405, headers))
            return
        response: Response | None = None
        request: Request | None = None
        try:
            kwargs: dict[str, Any] = _NO_ARGUMENTS
            # A handler that takes nothing, on a route with nothing to check, needs no Request.
            if route.binder.specs or not self.security.unchecked(route, scope):
                path_params = dict(zip(route.param_names, match.values))
                request = Request(scope, receive, path_params, self.max_body_size)
                security = self.security
                denial = None if security.unchecked(route, scope) else await security.check(request, route)
                if denial is not None:
                    response = JSONResponse(denial.body(), denial.status_code, denial.headers)
                else:
                    binder = route.binder
                    kwargs = binder.values(request) if binder.simple else await binder.bind(request)
            if response is None:
                if route.is_async:
                    result = await route.endpoint(**kwargs)
                else:
                    result = await anyio.to_thread.run_sync(lambda: route.endpoint(**kwargs))
                if isinstance(result, Response):
                    response = result
                elif route.response_codec is not None:
                    response = Response(route.response_codec.encode(result), route.options["status_code"],
                                        media_type="application/json")
                elif isinstance(result, (dict, list)):
                    response = JSONResponse(result, route.options["status_code"])
                else:
                    response = self._to_response(result, route.options["status_code"])
        except BindError as exc:
            response = JSONResponse(exc.body(), exc.status_code)
        except HTTPException as exc:
            response = JSONResponse({"detail": exc.detail}, exc.status_code, exc.headers)
        except Exception:
            logger.exception("HTTP handler %s for %s raised", route.endpoint.__qualname__, scope["path"])
            if raise_server_exceptions(scope):
                raise
            response = JSONResponse({"detail": "Internal Server Error"}, 500)
        if request is not None and (request.cors is not None or route.security.reads_cookie):
            self.security.add_response_headers(request, route, response)
        if type(response).__call__ is _SEND_WHOLE:  # Response.__call__, written out: one await fewer
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": response.raw_headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})
        else:
            await response(scope, receive, send)

    @staticmethod
    def _to_response(result: Any, status_code: int) -> Response:
        if isinstance(result, str):
            return PlainTextResponse(result, status_code)
        if isinstance(result, (bytes, bytearray)):
            return Response(result, status_code, media_type="application/octet-stream")
        return JSONResponse(result, status_code)


def _names_response(annotation: Any) -> bool:
    """Whether an annotation is, or is a union with, a Response class (returned as it is)."""
    if isinstance(annotation, type) and issubclass(annotation, Response):
        return True
    return any(_names_response(arg) for arg in getattr(annotation, "__args__", ()))
