"""`@rate_limit`: token-bucket limits on a route's handshakes or requests, and on WebSocket messages.

The decorator only records the limit on the handler function; the api's security pipeline reads it
the first time the route is used. That is why it works written above or below `@api.websocket` /
`@api.get`: both decorators hand back the very same function object.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

RATE_LIMIT_ATTR = "__bolt_rate_limit__"
ON_MESSAGE_LIMIT = ("close", "drop")


@dataclass(frozen=True)
class RateLimit:
    """A route's limits: `rps`/`burst` per key for handshakes/requests, `messages` per connection."""

    rps: float | None
    burst: int
    key: str | Callable[..., Any]
    messages: tuple[float, int] | None = None
    on_message_limit: str = "close"


def _check_rate(name: str, rps: float) -> None:
    if isinstance(rps, bool) or not isinstance(rps, (int, float)) or not math.isfinite(rps) or rps <= 0:
        raise ValueError(f"{name} must be a positive number, got {rps!r}")


def _check_burst(name: str, burst: int) -> None:
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise ValueError(f"{name} must be a positive integer, got {burst!r}")


def rate_limit(rps: float | None = None, burst: int | None = None, key: str | Callable[..., Any] = "ip", *,
               messages: tuple[float, int] | float | None = None, on_message_limit: str = "close") -> Callable[[F], F]:
    """Limit a route with a token bucket per (route, key).

    `rps` tokens are added per second up to `burst` (default: `rps` rounded up); each handshake or
    request spends one. `key` picks whose bucket: `"ip"` (the ASGI client address), `"user"` (the
    authenticated subject, falling back to the address), `"header:<name>"`, or a callable taking the
    connection and returning a string. Over the limit: 429 with `Retry-After`.

    `messages=(rate, burst)` (or just a rate) limits each WebSocket connection's inbound messages;
    over it the connection is closed with 1008 "Message rate exceeded", or with
    `on_message_limit="drop"` the excess messages are discarded.
    """
    if rps is None and messages is None:
        raise ValueError("rate_limit needs rps, messages, or both")
    if rps is not None:
        _check_rate("rps", rps)
        burst = math.ceil(rps) if burst is None else burst
        _check_burst("burst", burst)
    elif burst is not None:
        raise ValueError("burst given without rps")
    if isinstance(key, str):
        if key not in ("ip", "user") and not (key.startswith("header:") and key[len("header:"):].strip()):
            raise ValueError(f"rate limit key must be 'ip', 'user', 'header:<name>' or a callable, got {key!r}")
    elif not callable(key):
        raise TypeError("rate limit key must be a string or a callable")
    message_limit: tuple[float, int] | None = None
    if messages is not None:
        rate, message_burst = messages if isinstance(messages, tuple) else (messages, None)
        _check_rate("messages rate", rate)
        message_burst = math.ceil(rate) if message_burst is None else message_burst
        _check_burst("messages burst", message_burst)
        message_limit = (float(rate), message_burst)
    if on_message_limit not in ON_MESSAGE_LIMIT:
        raise ValueError(f"on_message_limit must be one of {ON_MESSAGE_LIMIT}, got {on_message_limit!r}")
    spec = RateLimit(float(rps) if rps is not None else None, burst or 0, key, message_limit, on_message_limit)

    def decorator(endpoint: F) -> F:
        setattr(endpoint, RATE_LIMIT_ATTR, spec)
        return endpoint

    return decorator
