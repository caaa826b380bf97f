"""The checks every HTTP request and WebSocket handshake passes, in order:
origin -> rate limit -> authentication -> guards.

A route's policy (its backends, guards and limits) is compiled the first time the route is used, so
it sees decorators applied after registration and Django settings configured after import.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from bolt.connection import HTTPConnection, client_label
from bolt.datastructures import scope_header
from bolt.django import setting
from bolt.extensions import testing
from bolt.routing import route_path
from bolt.security import cors, expiry
from bolt.security.auth import ANONYMOUS, AuthContext, AuthenticationFailed
from bolt.security.config import WATCHED_SETTINGS, watch_settings
from bolt.security.denial import Denial
from bolt.security.guards import run_guard
from bolt.security.hosts import INVALID_HOST
from bolt.security.limits import RATE_LIMIT_ATTR, RateLimit
from bolt.security.origin import Admission, OriginPolicy
from bolt.security.ratelimit import (
    DEFAULT_IPV6_PREFIX,
    DEFAULT_MAX_KEYS,
    BucketTable,
    TokenBucket,
    address_key,
    check_ipv6_prefix,
    retry_after_seconds,
)
from bolt.websocket import Receive, WebSocketClose, WebSocketState
from bolt.wire import CloseCode

if TYPE_CHECKING:
    from bolt.requests import Request

logger = logging.getLogger("bolt.security")

# Where the pipeline puts the AuthContext it established (read back as `conn.auth`).
AUTH_SCOPE_KEY = "auth"

ORIGIN_NOT_ALLOWED = "Origin not allowed"
ORIGIN_REQUIRED = "Origin required"
# The methods a browser may send without Origin (same-origin GET and HEAD; RFC 9110 9.2.1's safe ones).
SAFE_METHODS = frozenset(("GET", "HEAD", "OPTIONS", "TRACE"))
RATE_LIMITED = "Rate limit exceeded"
AUTH_REQUIRED = "Authentication required"
PERMISSION_DENIED = "Permission denied"
MESSAGE_RATE_EXCEEDED = "Message rate exceeded"


def _import(path_or_object: Any) -> Any:
    """A settings entry: a dotted path to a class (instantiated without arguments) or an instance."""
    if not isinstance(path_or_object, str):
        return path_or_object
    from importlib import import_module

    module, _, name = path_or_object.rpartition(".")
    return getattr(import_module(module), name)()


def _name(guard: Any) -> str:
    return getattr(guard, "__qualname__", None) or repr(guard)


class RoutePolicy:
    """One route's compiled security: what to run, precomputed so the hot path only branches."""

    __slots__ = ("backends", "guards", "limit", "limit_after_auth", "key_of", "bucket_id", "messages",
                 "message_mode", "challenge", "trivial", "ipv6_prefix", "allow_missing_origin", "reads_cookie")

    def __init__(self, route: Any, backends: Sequence[Any], guards: Sequence[Any], limit: RateLimit | None,
                 ipv6_prefix: int = DEFAULT_IPV6_PREFIX, allow_missing_origin: bool = False) -> None:
        self.backends = tuple(backends)
        self.guards = tuple(guards)
        self.limit = limit if limit is not None and limit.rps is not None else None
        self.messages = limit.messages if limit is not None and route.kind == "websocket" else None
        self.message_mode = limit.on_message_limit if limit is not None else "close"
        self.limit_after_auth = self.limit is not None and self.limit.key == "user"
        self.key_of = _key_function(self.limit.key) if self.limit is not None else None
        self.bucket_id = id(route)
        self.challenge = ", ".join(b.challenge for b in self.backends if getattr(b, "challenge", None)) or None
        self.trivial = not (self.backends or self.guards or self.limit or self.messages)
        self.ipv6_prefix = ipv6_prefix
        self.allow_missing_origin = allow_missing_origin
        self.reads_cookie = any(getattr(b, "reads_cookie", False) for b in self.backends)


def _key_function(key: str | Callable[[Any], Any]) -> Callable[[Any], Any]:
    if callable(key):
        return key
    if key in ("ip", "user"):
        return lambda conn: None  # "user" is resolved by the pipeline after authentication
    header = key[len("header:"):].strip().lower()
    return lambda conn: conn.headers.get(header)


class SecurityPipeline:
    """Runs each route's checks in order and returns the first Denial, or None to let it through.

    Owned by one BoltAPI: its rate-limit buckets are never shared with another api.
    """

    def __init__(self, api: Any, max_keys: int = DEFAULT_MAX_KEYS) -> None:
        self.api = api
        self.buckets = BucketTable(max_keys)
        self._origin_policies: dict[Any, OriginPolicy] = {}
        self._wildcard_cookie_warned: set[int] = set()
        watch_settings(self._settings_changed)

    # -- configuration ---------------------------------------------------------------------------

    def _settings_changed(self, *, setting: str, **kwargs: Any) -> None:
        if setting in WATCHED_SETTINGS:
            self.reset()

    def reset(self) -> None:
        """Forget compiled route policies and origin policies (after a settings change)."""
        self._origin_policies.clear()
        for route in self.api.router.routes:
            route.security = None

    def origin_policy(self, scope: dict[str, Any]) -> OriginPolicy:
        """The origin policy for this request: the api's list plus Django's CORS settings.

        A test client may replace the api's list and skip Django (the `bolt.testing` extension's
        `origins`); the policy is then built by the same code from those values.
        """
        test = testing(scope)
        override = test.get("origins") if test is not None else None
        if override is None:
            cache_key: Any = None
        else:
            allowed = override["allowed_origins"]
            cache_key = (None if allowed is None else tuple(allowed), override["read_django_settings"])
        policy = self._origin_policies.get(cache_key)
        if policy is None:
            if override is None:
                policy = self._build_origin_policy(self.api.cors_allowed_origins or (), True)
            else:
                allowed, read_django = cache_key
                policy = self._build_origin_policy(self.api.cors_allowed_origins or () if allowed is None else allowed,
                                                   read_django)
            if len(self._origin_policies) >= 64:  # overrides come from tests; keep the cache small anyway
                self._origin_policies.clear()
            self._origin_policies[cache_key] = policy
        return policy

    @staticmethod
    def _build_origin_policy(origins: Sequence[str], read_django: bool) -> OriginPolicy:
        origins = list(origins)
        regexes: list[Any] = []
        allow_all = False
        if read_django:
            origins += list(setting("CORS_ALLOWED_ORIGINS", ()) or ())
            regexes += list(setting("CORS_ALLOWED_ORIGIN_REGEXES", ()) or ())
            allow_all = bool(setting("CORS_ALLOW_ALL_ORIGINS", False))
        return OriginPolicy(origins, regexes, allow_all)

    def compile(self, route: Any) -> RoutePolicy:
        """Build (once) the policy of `route` from its options, the api defaults and Django settings."""
        auth = route.options.get("auth")
        if auth is None:
            auth = self.api.auth
        if auth is None:
            auth = [_import(entry) for entry in setting("BOLT_AUTHENTICATION_CLASSES", ()) or ()]
        guards = route.options.get("guards")
        if guards is None:
            guards = self.api.guards
        if guards is None:
            guards = [_import(entry) for entry in setting("BOLT_DEFAULT_GUARDS", ()) or ()]
        for item in (*auth, *guards):
            if isinstance(item, type):  # a common slip: IsAuthenticated instead of IsAuthenticated()
                raise TypeError(f"{item.__name__} is a class: pass an instance, {item.__name__}()")
        for backend in auth:
            if not callable(getattr(backend, "authenticate", None)):
                raise TypeError(f"{backend!r} is not an authentication backend (it has no authenticate())")
        for guard in guards:
            if not callable(guard):
                raise TypeError(f"guard {guard!r} is not callable")
        prefix = check_ipv6_prefix(setting("BOLT_RATE_LIMIT_IPV6_PREFIX", DEFAULT_IPV6_PREFIX))
        allow_missing_origin = route.options.get("allow_missing_origin")
        if allow_missing_origin is None:
            allow_missing_origin = self.api.allow_missing_origin
        if allow_missing_origin is None:
            allow_missing_origin = setting("BOLT_ALLOW_MISSING_ORIGIN", False)
        policy = RoutePolicy(route, auth, guards, getattr(route.endpoint, RATE_LIMIT_ATTR, None), prefix,
                             bool(allow_missing_origin))
        route.security = policy
        return policy

    # -- the checks ------------------------------------------------------------------------------

    def unchecked(self, route: Any, scope: dict[str, Any]) -> bool:
        """Whether `check` would pass this request without looking at it: the route has nothing to
        check and the request carries no Origin. The HTTP path then skips awaiting `check`."""
        policy: RoutePolicy = route.security or self.compile(route)
        return policy.trivial and scope_header(scope, b"origin") is None

    async def check(self, conn: Any, route: Any) -> Denial | None:
        """Origin, rate limit, authentication, guards: the first refusal, or None."""
        policy: RoutePolicy = route.security or self.compile(route)
        scope = conn.scope
        origin = scope_header(scope, b"origin")
        if policy.trivial and origin is None:
            return None

        admission = None
        if origin is not None:
            admission = self.origin_policy(scope).admit(origin, scope)
            if admission is None:
                return self.deny(route.path, scope, Denial(403, ORIGIN_NOT_ALLOWED), f"origin {origin[:200]!r}")
            if admission is not Admission.SAME_ORIGIN and scope["type"] == "http":
                conn.cors = (origin, admission)

        if policy.limit is not None and not policy.limit_after_auth:
            denial = await self._take(policy, conn, route, ANONYMOUS)
            if denial is not None:
                return denial

        auth = ANONYMOUS
        test = testing(scope)
        if test is not None and "auth" in test:
            auth = test["auth"]  # the test client's auth_context: as if a backend had found it
        elif policy.backends:
            try:
                found = await self._authenticate(policy, lambda backend: backend.authenticate(conn))
                auth = found or ANONYMOUS
            except AuthenticationFailed as exc:
                return self.deny(route.path, scope, self._unauthorized(policy, exc.detail), exc.detail)
            if auth.source == "cookie" and admission is Admission.WILDCARD:
                self._warn_wildcard_cookie(route)
                return self.deny(route.path, scope, Denial(403, ORIGIN_NOT_ALLOWED),
                                  f"cookie credentials from origin {(origin or '')[:200]!r} admitted only by '*'")
            if (auth.source == "cookie" and admission is Admission.LISTED and scope["type"] == "http"
                    and not setting("CORS_ALLOW_CREDENTIALS", False)):
                # The browser would not let the page read the answer, but a simple request's side
                # effects would happen in the user's name: CORS without credentials means without.
                return self.deny(route.path, scope, Denial(403, ORIGIN_NOT_ALLOWED),
                                 f"cookie credentials from origin {(origin or '')[:200]!r} without "
                                 "CORS_ALLOW_CREDENTIALS")
            if (auth.source == "cookie" and origin is None and not policy.allow_missing_origin
                    and scope.get("method") not in SAFE_METHODS):
                # Browsers send Origin on every WebSocket and every request of an unsafe method (only
                # a same-origin GET or HEAD goes without); without one, the cross-site check cannot
                # be made, and a proxy that strips it must not silently switch it off.
                return self.deny(route.path, scope, Denial(403, ORIGIN_REQUIRED),
                                 "cookie credentials without an Origin header")
            scope[AUTH_SCOPE_KEY] = auth

        if policy.limit_after_auth:
            denial = await self._take(policy, conn, route, auth)
            if denial is not None:
                return denial

        for guard in policy.guards:
            if not await run_guard(guard, conn):
                if not auth.is_authenticated:
                    return self.deny(route.path, scope, self._unauthorized(policy, AUTH_REQUIRED),
                                      f"{_name(guard)} without credentials")
                return self.deny(route.path, scope, Denial(403, PERMISSION_DENIED),
                                  f"{_name(guard)} for user {auth.user_id}")

        if policy.messages is not None:
            limiter = MessageLimiter(policy.messages, policy.message_mode, route.path, client_label(scope))
            conn.intercept(receive=limiter)
        return None

    async def refresh(self, websocket: Any, token: str) -> AuthContext:
        """New credentials for an open WebSocket: see `bolt.security.refresh_credentials`."""
        try:
            context = await self._refresh(websocket, token)
        except AuthenticationFailed as exc:
            logger.info("refused credentials refresh on websocket %s from %s: %s", websocket.path,
                        client_label(websocket.scope), exc.detail)
            raise
        logger.info("refreshed credentials on websocket %s from %s for user %s", websocket.path,
                    client_label(websocket.scope), context.user_id)
        return context

    async def _refresh(self, websocket: Any, token: str) -> AuthContext:
        policy = self._policy_of(websocket)
        current = websocket.auth
        if policy is None or not current.is_authenticated:
            raise AuthenticationFailed("This connection was opened without credentials")
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed("Invalid token")

        async def attempt(backend: Any) -> AuthContext | None:
            # A duck-typed backend without authenticate_token takes no token, as BaseAuthentication's default.
            method = getattr(backend, "authenticate_token", None)
            return await method(websocket, token) if method is not None else None

        context = await self._authenticate(policy, attempt)
        if context is None:
            raise AuthenticationFailed("This route's authentication takes no token")
        if context.user_id != current.user_id or context.backend != current.backend:
            # One socket is one identity: its rooms, presence and user room were chosen for it.
            raise AuthenticationFailed("Token is for another user")
        probe = HTTPConnection(dict(websocket.scope, **{AUTH_SCOPE_KEY: context}), websocket.path_params)
        for guard in policy.guards:
            if not await run_guard(guard, probe):
                raise AuthenticationFailed(PERMISSION_DENIED)
        if websocket.application_state is not WebSocketState.CONNECTED:
            raise AuthenticationFailed("The connection has ended")
        websocket.scope[AUTH_SCOPE_KEY] = context
        if context.expires_at is None:
            expiry.forget(websocket)
        else:
            expiry.watch(websocket, context.expires_at)
        return context

    def _policy_of(self, websocket: Any) -> RoutePolicy | None:
        """The policy of the api's WebSocket route that `websocket` came in by, as configured now (None:
        not one of them)."""
        match = self.api.router.match(route_path(websocket.scope), "websocket")
        route = match.leaf.websocket if match is not None else None
        if route is None:
            return None
        policy: RoutePolicy = route.security or self.compile(route)
        return policy

    # -- CORS for HTTP routes ---------------------------------------------------------------------

    def preflight(self, scope: dict[str, Any], allowed_methods: list[str]) -> Any:
        """The response to a CORS preflight, or None when the OPTIONS request is not one."""
        if not cors.is_preflight(scope):
            return None
        origin = scope_header(scope, b"origin") or ""
        admission = self.origin_policy(scope).admit(origin, scope)
        if admission is None:
            logger.warning("refused preflight %s from %s: origin %r", scope["path"], client_label(scope), origin[:200])
        return cors.preflight_response(scope, admission, allowed_methods)

    @staticmethod
    def add_response_headers(request: Request, route: Any, response: Any) -> None:
        """Add what the checks made the answer depend on: CORS headers for a cross-origin request the
        pipeline admitted, and `Vary: Cookie` where a backend reads a cookie (a shared cache must not
        give one user's answer to another)."""
        if request.cors is not None:
            cors.add_cors_headers(request.scope, response, request.cors)
        if route.security.reads_cookie:
            cors.add_vary(response, "Cookie")

    def add_unrouted_cors_headers(self, scope: dict[str, Any], response: Any) -> None:
        """Add the CORS headers to a 404 or 405 (no route checked the request) when the request's
        origin is admitted, so that a page's fetch sees the status rather than a network error."""
        origin = scope_header(scope, b"origin")
        if origin is None:
            return
        admission = self.origin_policy(scope).admit(origin, scope)
        if admission is not None and admission is not Admission.SAME_ORIGIN:
            cors.add_cors_headers(scope, response, (origin, admission))

    @staticmethod
    async def _authenticate(policy: RoutePolicy,
                            attempt: Callable[[Any], Awaitable[AuthContext | None]]) -> AuthContext | None:
        """`await attempt(backend)` for each backend in turn: the first context wins; bad credentials
        (AuthenticationFailed) refuse only if no backend succeeds; None when none had any to check."""
        failure: AuthenticationFailed | None = None
        for backend in policy.backends:
            try:
                context = await attempt(backend)
            except AuthenticationFailed as exc:
                failure = failure or exc
                continue
            if context is not None:
                return context
        if failure is not None:
            raise failure
        return None

    async def _take(self, policy: RoutePolicy, conn: Any, route: Any, auth: AuthContext) -> Denial | None:
        limit = policy.limit
        assert limit is not None and limit.rps is not None and policy.key_of is not None
        key = policy.key_of(conn)
        if inspect.isawaitable(key):
            key = await key
        if key is None and limit.key == "user" and auth.is_authenticated:
            key = ("user", auth.user_id)
        if key is None:
            client = conn.scope.get("client")
            key = ("ip", address_key(client[0], policy.ipv6_prefix) if client else None)
        # No await from here to the return: reading and spending the token is one step.
        wait = self.buckets.take((policy.bucket_id, key), limit.rps, limit.burst)
        if wait == 0.0:
            return None
        seconds = retry_after_seconds(wait)
        denial = Denial(429, RATE_LIMITED, {"Retry-After": str(seconds)}, {"retry_after": seconds})
        return self.deny(route.path, conn.scope, denial, "rate limit")

    @staticmethod
    def _unauthorized(policy: RoutePolicy, detail: str) -> Denial:
        headers = {"WWW-Authenticate": policy.challenge} if policy.challenge else {}
        return Denial(401, detail, headers)

    def _warn_wildcard_cookie(self, route: Any) -> None:
        if id(route) not in self._wildcard_cookie_warned:
            self._wildcard_cookie_warned.add(id(route))
            logger.warning("route %s accepts cookie credentials but the origin policy allows every origin ('*'): "
                           "cookie credentials from cross-site pages are refused; list the allowed origins instead",
                           route.path)

    @staticmethod
    def deny(path: str, scope: dict[str, Any], denial: Denial, reason: str) -> Denial:
        """Log one refusal (one line, WARNING for origin and host refusals, else INFO) and return `denial`."""
        # The reason names the check, never the credential itself.
        warn = denial.detail in (ORIGIN_NOT_ALLOWED, ORIGIN_REQUIRED, INVALID_HOST)
        level = logging.WARNING if warn else logging.INFO
        # A path is the client's (percent-decoded): one with a line break could forge a log line.
        shown = path if path.isprintable() else ascii(path)
        logger.log(level, "refused %s %s from %s: %d %s (%s)", scope["type"], shown, client_label(scope),
                   denial.status_code, denial.detail, reason)
        return denial


class MessageLimiter:
    """`@rate_limit(messages=...)` on one WebSocket: a layer around its ASGI receive (`WebSocket.intercept`)
    in which each message spends a token of the connection's own bucket. Over the limit, the
    connection is closed with 1008 ("close") or the message is dropped ("drop")."""

    def __init__(self, messages: tuple[float, int], mode: str, path: str, client: str) -> None:
        self.bucket = TokenBucket(*messages)
        self.mode = mode
        self.path = path
        self.client = client
        self.warned = False

    def __call__(self, receive: Receive) -> Receive:
        take = self.bucket.take

        async def limited_receive() -> dict[str, Any]:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive" or take():
                    return message
                self.exceeded()

        return limited_receive

    def exceeded(self) -> None:
        """One message over the limit: close the connection, or let the message be dropped."""
        if self.mode == "close":
            logger.info("closing websocket %s from %s: %s", self.path, self.client, MESSAGE_RATE_EXCEEDED)
            raise WebSocketClose(CloseCode.POLICY_VIOLATION, MESSAGE_RATE_EXCEEDED)
        if not self.warned:
            self.warned = True
            logger.info("dropping messages on websocket %s from %s: %s", self.path, self.client,
                        MESSAGE_RATE_EXCEEDED)
