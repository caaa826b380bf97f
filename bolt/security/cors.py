"""CORS response headers and preflight answers for HTTP routes.

The origin decision itself is the pipeline's (the same policy as for WebSockets); this module only
tells the browser about it. Setting names follow django-cors-headers.
"""
from __future__ import annotations

from typing import Any

from bolt.datastructures import scope_header
from bolt.django import setting
from bolt.responses import JSONResponse, Response
from bolt.security.origin import Admission

DEFAULT_MAX_AGE = 86400


def is_preflight(scope: dict[str, Any]) -> bool:
    """An OPTIONS request a browser sends before a cross-origin request."""
    return (scope["method"] == "OPTIONS" and scope_header(scope, b"origin") is not None
            and scope_header(scope, b"access-control-request-method") is not None)


def allow_origin_headers(origin: str, admission: Admission) -> dict[str, str]:
    """Access-Control-Allow-Origin and friends for an admitted cross-origin request."""
    credentials = bool(setting("CORS_ALLOW_CREDENTIALS", False))
    # With credentials the spec forbids "*", so the origin is echoed; Vary keeps caches honest.
    value = "*" if admission is Admission.WILDCARD and not credentials else origin
    headers = {"Access-Control-Allow-Origin": value, "Vary": "Origin"}
    if credentials:
        headers["Access-Control-Allow-Credentials"] = "true"
    return headers


def add_cors_headers(scope: dict[str, Any], response: Response, cors: tuple[str, Admission] | None) -> None:
    """Decorate `response` for a cross-origin request the pipeline admitted (`cors`), if any."""
    if cors is None:
        return
    for name, value in allow_origin_headers(*cors).items():
        if name == "Vary":
            add_vary(response, value)
        else:
            response.set_header(name, value)
    expose = setting("CORS_EXPOSE_HEADERS", ())
    if expose:
        response.set_header("Access-Control-Expose-Headers", ", ".join(expose))


def add_vary(response: Response, name: str) -> None:
    """Add ``name`` to the response's Vary list, keeping what the handler put there (RFC 9110 12.5.5)."""
    present = [value.decode("latin-1") for key, value in response.raw_headers if key == b"vary"]
    tokens = [token.strip() for value in present for token in value.split(",") if token.strip()]
    if "*" in tokens or name.lower() in (token.lower() for token in tokens):
        return
    response.set_header("Vary", ", ".join([*tokens, name]))


def preflight_response(scope: dict[str, Any], admission: Admission | None, allowed_methods: list[str]) -> Response:
    """The answer to a preflight: 403 for a refused origin, else 204 listing what may follow."""
    if admission is None:
        return JSONResponse({"detail": "Origin not allowed"}, 403, {"Vary": "Origin"})
    origin = scope_header(scope, b"origin") or ""
    headers = allow_origin_headers(origin, admission)
    methods = set(allowed_methods)
    if "GET" in methods:
        methods.add("HEAD")
    headers["Access-Control-Allow-Methods"] = ", ".join(sorted(methods))
    allow_headers = setting("CORS_ALLOW_HEADERS", None)
    requested = scope_header(scope, b"access-control-request-headers")
    if allow_headers is not None:
        headers["Access-Control-Allow-Headers"] = ", ".join(allow_headers)
    elif requested:
        # The origin is trusted, so whatever headers its page asks for may follow.
        headers["Access-Control-Allow-Headers"] = requested
    headers["Access-Control-Max-Age"] = str(setting("CORS_PREFLIGHT_MAX_AGE", DEFAULT_MAX_AGE))
    headers["Vary"] = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
    return Response(b"", 204, headers)
