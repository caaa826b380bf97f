"""Origin policy: which browser origins may open a WebSocket or make a cross-origin HTTP request.

Origins are compared as (scheme, host, port) triples after normalising: lower-case scheme and host,
default ports made explicit. A string comparison would let `https://example.com.evil.com` or
`https://EXAMPLE.com:443` be judged wrongly; the triple cannot.
"""
from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from bolt.security.hosts import request_host

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# The page's scheme that a WebSocket scheme corresponds to, for the same-origin comparison.
_PAGE_SCHEME = {"ws": "http", "wss": "https", "http": "http", "https": "https"}
_MAX_ORIGIN_LENGTH = 2048

Origin = tuple[str, str, int | None]


class Admission(enum.Enum):
    """How an Origin header was let through; cookie credentials are refused under WILDCARD."""

    SAME_ORIGIN = "same-origin"
    LISTED = "listed"
    WILDCARD = "wildcard"


# An Origin header as browsers send it (RFC 6454 section 7): scheme://host[:port] and nothing more.
# urlsplit alone would take more (it drops tabs and newlines, an empty port, "?", "#" or "/"), and the
# header is echoed back to the client as it came.
_PLAIN_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://(?:\[[0-9A-Fa-f:.]+\]|[^\x00-\x20\x7f/?#@\[\]:]+)(?::[0-9]+)?")


def parse_origin(value: str) -> Origin | None:
    """`scheme://host[:port]` as a normalised triple, or None for anything that is not a plain origin.

    `null`, paths, queries, fragments, user info and bad ports are all refused: a browser never sends them.
    """
    if not value or len(value) > _MAX_ORIGIN_LENGTH or value == "null":
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if not scheme or not host or parts.username is not None or parts.password is not None:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "://" not in value:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS.get(scheme)


def serialize(origin: Origin) -> str:
    """The canonical text of an origin: default ports omitted, as browsers send it."""
    scheme, host, port = origin
    if port is None or DEFAULT_PORTS.get(scheme) == port:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


class OriginPolicy:
    """Allowed origins: exact entries, full-match regexes and the `*` wildcard, plus same-origin."""

    def __init__(self, origins: Iterable[str] = (), regexes: Iterable[str | re.Pattern[str]] = (),
                 allow_all: bool = False) -> None:
        self.allow_all = allow_all
        self.origins: set[Origin] = set()
        for entry in origins:
            if entry == "*":
                self.allow_all = True
                continue
            parsed = parse_origin(entry)
            if parsed is None:
                raise ValueError(f"invalid allowed origin {entry!r}: expected scheme://host[:port]")
            self.origins.add(parsed)
        self.regexes = [re.compile(r) if isinstance(r, str) else r for r in regexes]

    def admit(self, value: str, scope: dict[str, Any]) -> Admission | None:
        """How the Origin header `value` is admitted for this request, or None when it is refused."""
        origin = parse_origin(value) if _PLAIN_ORIGIN.fullmatch(value) else None
        if origin is None:
            return None
        if origin == _own_origin(scope):
            return Admission.SAME_ORIGIN
        if origin in self.origins:
            return Admission.LISTED
        if self.regexes:
            text = serialize(origin)
            if any(r.fullmatch(text) for r in self.regexes):
                return Admission.LISTED
        return Admission.WILDCARD if self.allow_all else None


def _own_origin(scope: dict[str, Any]) -> Origin | None:
    """The origin of the request itself: its scheme (as a page scheme) and its host (the Host
    header, or X-Forwarded-Host where Django's USE_X_FORWARDED_HOST says so)."""
    host = request_host(scope)
    scheme = _PAGE_SCHEME.get(scope.get("scheme") or ("ws" if scope["type"] == "websocket" else "http"))
    if not host or scheme is None:
        return None
    return parse_origin(f"{scheme}://{host}")
