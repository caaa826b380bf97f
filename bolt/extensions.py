"""The ASGI extensions bolt reads from `scope["extensions"]`, beyond the ones ASGI defines.

An ASGI server (or whatever calls the app in its place) offers an extension by putting its name
in `scope["extensions"]`; the app uses it only when present. bolt knows two:

- `bolt.frames`, offered by bolt's own WebSocket protocol: a connection's writer of messages
  encoded once for many connections (docs/protocol.md).
- `bolt.testing`, offered by bolt's test clients: what a test asks of the app (docs/testing.md).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

from bolt.wire import FRAMES

if TYPE_CHECKING:
    from bolt.security.auth import AuthContext

__all__ = ["FRAMES", "TESTING", "OriginOverride", "Testing", "testing"]

TESTING = "bolt.testing"


class OriginOverride(TypedDict):
    """The origin policy a test asks for instead of the api's: these origins (None: the api's own),
    and Django's CORS settings only when `read_django_settings`."""

    allowed_origins: list[str] | None
    read_django_settings: bool


class Testing(TypedDict, total=False):
    """The `bolt.testing` extension; every key is optional."""

    #: Re-raise an exception a handler did not handle (after answering 500 or closing with 1011).
    raise_server_exceptions: bool
    #: Called when bolt closes a connection (1000) because its handler returned without closing it.
    handler_returned: Callable[[], None]
    #: The origin policy to check the request against instead of the api's.
    origins: OriginOverride
    #: Taken as what the route's authentication established; its guards and limits still run.
    auth: AuthContext


def testing(scope: dict[str, Any]) -> Testing | None:
    """The `bolt.testing` extension of this scope, or None outside bolt's test clients."""
    extensions = scope.get("extensions")
    return extensions.get(TESTING) if extensions else None


def raise_server_exceptions(scope: dict[str, Any]) -> bool:
    """Whether a test client asked for a handler's unhandled exception to be re-raised."""
    options = testing(scope)
    return options is not None and options.get("raise_server_exceptions", False)
