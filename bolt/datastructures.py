"""Read-only views over the raw ASGI request data: headers, query parameters, cookies."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl


def raw_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[bytes, bytes]]:
    """Headers given as a mapping or as (name, value) pairs, as ASGI carries them: lower-case
    names, both in latin-1 bytes."""
    if headers is None:  # (an ABC isinstance check is not free: skipped when there are none)
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in items]


def scope_header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """The first value of header `name` (lowercase bytes) in an ASGI scope, without building `Headers`."""
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


class Headers(Mapping[str, str]):
    """Case-insensitive request headers; `get` returns the first value, `getlist` all of them."""

    __slots__ = ("_raw", "_index")

    def __init__(self, raw: list[tuple[bytes, bytes]] | None = None) -> None:
        self._raw = raw or []
        self._index: dict[str, list[str]] | None = None

    def _lookup(self) -> dict[str, list[str]]:
        # Built on first use: most WebSocket handlers never read a header.
        if self._index is None:
            index: dict[str, list[str]] = {}
            for name, value in self._raw:
                # HTTP header bytes are latin-1 by definition, so decoding can never fail.
                index.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
            self._index = index
        return self._index

    def __getitem__(self, key: str) -> str:
        return self._lookup()[key.lower()][0]

    def get(self, key: str, default: Any = None) -> Any:
        if self._index is not None:
            values = self._index.get(key.lower())
            return values[0] if values else default
        # Before anything needs them all, find the one header (the credentials of a handshake, say)
        # without decoding the others.
        try:
            wanted = key.lower().encode("latin-1")
        except UnicodeEncodeError:
            return default  # no header has such a name
        size = len(wanted)
        for name, value in self._raw:
            if len(name) == size and name.lower() == wanted:  # the length first: most names differ in it
                return value.decode("latin-1")
        return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self._lookup())

    def __len__(self) -> int:
        return len(self._lookup())

    def getlist(self, key: str) -> list[str]:
        return list(self._lookup().get(key.lower(), ()))

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        return self._raw

    def __repr__(self) -> str:
        return f"Headers({dict(self.items())!r})"


class QueryParams(Mapping[str, str]):
    """Parsed query string; `get` returns the first value (as URLSearchParams.get does), `getlist` all."""

    __slots__ = ("_items", "_dict")

    def __init__(self, query_string: bytes | str = b"") -> None:
        if isinstance(query_string, bytes):
            # Invalid UTF-8 is replaced rather than rejected: a query value is data, not protocol.
            query_string = query_string.decode("utf-8", errors="replace")
        self._items = parse_qsl(query_string, keep_blank_values=True)
        self._dict: dict[str, str] = {}
        for key, value in self._items:
            self._dict.setdefault(key, value)

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def getlist(self, key: str) -> list[str]:
        return [value for name, value in self._items if name == key]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"QueryParams({self._items!r})"


def parse_cookies(header: str) -> dict[str, str]:
    """Parse a Cookie header leniently: malformed pairs are skipped, never an error. A repeated
    name keeps its last value, as Django's `request.COOKIES` does, so a page and its socket agree."""
    cookies: dict[str, str] = {}
    for chunk in header.split(";"):
        name, sep, value = chunk.partition("=")
        name = name.strip()
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                # Quoted values may hold escapes; SimpleCookie knows how to undo them.
                parsed = SimpleCookie(f"{name}={value}")
                value = parsed[name].value if name in parsed else value[1:-1]
            except CookieError:
                value = value[1:-1]
        cookies[name] = value
    return cookies


class State:
    """Attribute bag for per-connection data a handler or middleware wants to keep."""

    def __init__(self, initial: dict[str, Any] | None = None) -> None:
        super().__setattr__("_data", dict(initial or {}))

    def __setattr__(self, name: str, value: Any) -> None:
        self._data[name] = value

    def __getattr__(self, name: str) -> Any:
        try:
            return self._data[name]
        except KeyError:
            raise AttributeError(f"'State' object has no attribute {name!r}") from None

    def __delattr__(self, name: str) -> None:
        del self._data[name]
