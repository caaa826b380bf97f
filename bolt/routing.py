"""Path templates compiled into a segment tree, and the converters for path parameters.

Matching walks one tree node per path segment, so its cost depends on the path's depth, not on how
many routes exist. Static segments are tried before parameters, so `/users/me` wins over `/users/{id}`,
where it has a route for the request; a path without parameters is found by one dict lookup, which
gives the same answer as the walk.
"""
from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(?::([a-z]+))?\}$")
_INT = re.compile(r"[+-]?[0-9]{1,64}")  # fullmatch: `$` would let a final newline through
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOL = {"true": True, "1": True, "yes": True, "on": True, "false": False, "0": False, "no": False, "off": False}


def route_path(scope: dict[str, Any]) -> str:
    """The scope's path below its ``root_path`` (which ends at a segment: ``/api`` is not the root of
    ``/apiary``): what a router matches."""
    path: str = scope["path"]
    root = scope.get("root_path")
    if root and path.startswith(root) and path[len(root):len(root) + 1] in ("/", ""):
        return path[len(root):]
    return path


class ConversionError(ValueError):
    """A raw string that does not convert to the annotated type; the message says what was expected."""


def _to_int(raw: str) -> int:
    if not _INT.fullmatch(raw):
        raise ConversionError("expected an integer")
    return int(raw)


def _to_float(raw: str) -> float:
    if not _FLOAT.fullmatch(raw):
        raise ConversionError("expected a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ConversionError("expected a finite number")
    return value


def _to_bool(raw: str) -> bool:
    try:
        return _BOOL[raw.lower()]
    except KeyError:
        raise ConversionError("expected a boolean (true/false, 1/0, yes/no, on/off)") from None


def _to_uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ConversionError("expected a UUID") from None


def _to_str(raw: str) -> str:
    return raw


CONVERTERS: dict[Any, Callable[[str], Any]] = {
    str: _to_str,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    uuid.UUID: _to_uuid,
}


def converter_for(annotation: Any) -> Callable[[str], Any]:
    """The string converter for a parameter annotation; raises TypeError for unsupported types."""
    try:
        return CONVERTERS[annotation]
    except (KeyError, TypeError):
        raise TypeError(f"unsupported parameter type {annotation!r}; use str, int, float, bool or uuid.UUID") from None


@dataclass
class Route:
    """One registered endpoint: an HTTP method set or a WebSocket handler at a path template."""

    path: str
    endpoint: Callable[..., Any]
    kind: str  # "http" or "websocket"
    methods: frozenset[str] = frozenset()
    param_names: tuple[str, ...] = field(init=False, default=())
    options: dict[str, Any] = field(default_factory=dict)
    # Filled in by BoltAPI: argument binder, the security policy for this route, and for HTTP
    # whether the handler is a coroutine function and the codec of its declared response type.
    binder: Any = None
    security: Any = None
    is_async: bool = True
    response_codec: Any = None

    def __post_init__(self) -> None:
        # Known before the route is added: the binder checks the handler against them.
        self.param_names = tuple(name for kind, name in split_template(self.path) if kind != "static")


class _Leaf:
    __slots__ = ("http", "websocket")

    def __init__(self) -> None:
        self.http: dict[str, Route] = {}
        self.websocket: Route | None = None

    def allowed_methods(self) -> list[str]:
        return sorted(self.http)


class _Node:
    __slots__ = ("static", "param", "catchall", "leaf")

    def __init__(self) -> None:
        self.static: dict[str, _Node] = {}
        self.param: _Node | None = None
        self.catchall: _Leaf | None = None
        self.leaf: _Leaf | None = None


class Match:
    """A matched leaf and the raw parameter values in template order."""

    __slots__ = ("leaf", "values")

    def __init__(self, leaf: _Leaf, values: Sequence[str]) -> None:
        self.leaf = leaf
        self.values = values


def split_template(path: str) -> list[tuple[str, str]]:
    """Split a template into ("static", text) / ("param", name) / ("path", name) parts."""
    if not path.startswith("/"):
        raise ValueError(f"route path must start with '/': {path!r}")
    parts: list[tuple[str, str]] = []
    segments = path[1:].split("/")
    for i, segment in enumerate(segments):
        if "{" in segment or "}" in segment:
            m = _PARAM.match(segment)
            if m is None:
                raise ValueError(f"bad parameter segment {segment!r} in {path!r}: use {{name}} or {{name:path}}")
            name, conv = m.groups()
            if conv not in (None, "path"):
                raise ValueError(f"unknown converter {conv!r} in {path!r}; only ':path' is a converter, "
                                 "other types come from the handler's annotation")
            if conv == "path" and i != len(segments) - 1:
                raise ValueError(f"{{{name}:path}} must be the last segment of {path!r}")
            parts.append(("path" if conv else "param", name))
        else:
            parts.append(("static", segment))
    names = [name for kind, name in parts if kind != "static"]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate parameter name in {path!r}")
    return parts


class Router:
    """Route table for one BoltAPI: add routes, match a request path."""

    def __init__(self) -> None:
        self._root = _Node()
        self._static: dict[str, Match] = {}  # templates without parameters
        self.routes: list[Route] = []

    def add(self, route: Route) -> None:
        parts = split_template(route.path)
        node = self._root
        leaf: _Leaf | None = None
        for kind, text in parts:
            if kind == "static":
                node = node.static.setdefault(text, _Node())
            elif kind == "param":
                node.param = node.param or _Node()
                node = node.param
            else:
                node.catchall = node.catchall or _Leaf()
                leaf = node.catchall
        if leaf is None:
            node.leaf = node.leaf or _Leaf()
            leaf = node.leaf
        if not route.param_names:
            self._static[route.path] = Match(leaf, ())
        if route.kind == "websocket":
            if leaf.websocket is not None:
                raise ValueError(f"a WebSocket route for {route.path!r} is already registered")
            leaf.websocket = route
        else:
            for method in route.methods:
                if method in leaf.http:
                    raise ValueError(f"{method} {route.path!r} is already registered")
            for method in route.methods:
                leaf.http[method] = route
        self.routes.append(route)

    def match(self, path: str, kind: str = "http", method: str | None = None) -> Match | None:
        """The leaf for a request to `path` and the raw parameter values in template order.

        The leaf is the first, in precedence order, with a route for the request: a WebSocket
        route, or one for the HTTP `method` (HEAD: or GET; None: any method). Failing that, an
        HTTP request gets the first leaf with routes for other methods (a 405, or the answer to a
        CORS preflight), so `GET /users/me` reaches `GET /users/{id}` past a `POST /users/me`.
        """
        found = self._static.get(path)
        if found is not None and _serves(found.leaf, kind, method):
            return found
        if not path.startswith("/"):
            return None
        segments = path[1:].split("/")
        values: list[str] = []
        leaf = self._walk(self._root, segments, 0, values, kind, method)
        if leaf is None and kind == "http":
            leaf = self._walk(self._root, segments, 0, values, kind, None)
        return Match(leaf, values) if leaf is not None else None

    def _walk(self, node: _Node, segments: list[str], i: int, values: list[str], kind: str,
              method: str | None) -> _Leaf | None:
        if i == len(segments):
            leaf = node.leaf
            return leaf if leaf is not None and _serves(leaf, kind, method) else None
        segment = segments[i]
        child = node.static.get(segment)
        if child is not None:
            found = self._walk(child, segments, i + 1, values, kind, method)
            if found is not None:
                return found
        if node.param is not None and segment:
            values.append(segment)
            found = self._walk(node.param, segments, i + 1, values, kind, method)
            if found is not None:
                return found
            values.pop()
        if node.catchall is not None and _serves(node.catchall, kind, method):
            rest = "/".join(segments[i:])
            if rest:
                values.append(rest)
                return node.catchall
        return None


def _serves(leaf: _Leaf, kind: str, method: str | None) -> bool:
    """Whether `leaf` has a route for a request of `kind` and `method` (None: any method)."""
    if kind == "websocket":
        return leaf.websocket is not None
    http = leaf.http
    if method is None or method in http:
        return bool(http)
    return method == "HEAD" and "GET" in http
