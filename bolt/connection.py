"""What HTTP requests and WebSocket connections have in common: the scope and views over it."""
from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from bolt.datastructures import Headers, QueryParams, State, parse_cookies


@functools.cache
def _anonymous() -> Any:
    """The empty AuthContext, imported on first use (the security package imports this module) and then
    kept: an import statement run on every read of `auth` costs more than the rest of it."""
    from bolt.security.auth import ANONYMOUS

    return ANONYMOUS


def client_label(scope: Mapping[str, Any]) -> str:
    """The client's address as bolt's log lines give it: "host:port", or "unknown" without one."""
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "unknown"


class HTTPConnection:
    """Base of `Request` and `WebSocket`: path, headers, query, cookies, client, state, auth."""

    def __init__(self, scope: dict[str, Any], path_params: dict[str, Any] | None = None) -> None:
        self.scope = scope
        self.path_params: dict[str, Any] = path_params if path_params is not None else {}
        self._headers: Headers | None = None
        self._query: QueryParams | None = None
        self._cookies: dict[str, str] | None = None
        self._state: State | None = None
        self._user: Any = None  # loaded by auser(), then what `user` returns

    @property
    def path(self) -> str:
        return self.scope["path"]

    @property
    def url(self) -> str:
        """The full URL as the client addressed it (scheme, host, path, query; the path holds the
        root path, as ASGI servers give it)."""
        scheme = self.scope.get("scheme") or ("ws" if self.scope["type"] == "websocket" else "http")
        host = self.headers.get("host")
        if host is None:
            server = self.scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        query = self.scope.get("query_string", b"")
        url = f"{scheme}://{host}{self.path}"
        return f"{url}?{query.decode('latin-1')}" if query else url

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers(self.scope.get("headers"))
        return self._headers

    @property
    def query_params(self) -> QueryParams:
        if self._query is None:
            self._query = QueryParams(self.scope.get("query_string", b""))
        return self._query

    @property
    def cookies(self) -> dict[str, str]:
        if self._cookies is None:
            self._cookies = {}
            for header in self.headers.getlist("cookie"):
                self._cookies.update(parse_cookies(header))
        return self._cookies

    @property
    def client(self) -> tuple[str, int] | None:
        client = self.scope.get("client")
        return (client[0], client[1]) if client else None

    @property
    def state(self) -> State:
        """Per-connection attributes; seeded from the scope's `state` (the lifespan state) when present."""
        if self._state is None:
            self._state = State(self.scope.get("state"))
        return self._state

    @property
    def app(self) -> Any:
        """The `BoltAPI` serving this connection."""
        return self.scope.get("app")

    @property
    def auth(self) -> Any:
        """The `bolt.security.auth.AuthContext` the security pipeline established (empty when unauthenticated)."""
        auth = self.scope.get("auth")
        return auth if auth is not None else _anonymous()

    @property
    def user(self) -> Any:
        """The Django user (session auth, or once `auser()` loaded it), a `TokenUser` (token or API key)
        or an AnonymousUser."""
        if self._user is not None:
            return self._user
        from bolt.security.auth import user_for

        return user_for(self)

    async def auser(self) -> Any:
        """The Django user model instance of the authenticated subject, loaded once with the async ORM."""
        if self._user is None:
            from bolt.security.auth import auser_for

            self._user = await auser_for(self)
        return self._user
