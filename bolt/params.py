"""Turn a handler's signature into a binder that produces its keyword arguments per request.

Where a value comes from is decided once, at registration: the connection object by annotation,
path parameters by name, `Annotated[T, Query() | Header() | Cookie() | Body()]` explicitly, other
scalars from the query string and structured types (dataclass, TypedDict, dict, list) from a JSON body.
"""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints, is_typeddict

import orjson

from bolt.connection import HTTPConnection
from bolt.routing import ConversionError, Route, converter_for
from bolt.validation import ValidationError, validate


class Param:
    """Marker for `Annotated[...]`: where a handler argument comes from, and under which name."""

    source = ""

    def __init__(self, alias: str | None = None) -> None:
        self.alias = alias


class Path(Param):
    source = "path"


class Query(Param):
    source = "query"


class Header(Param):
    source = "header"


class Cookie(Param):
    source = "cookie"


class Body(Param):
    source = "body"


class BindError(Exception):
    """A request value that cannot be bound: answered with `status_code` and `detail`."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclasses.dataclass
class _Spec:
    name: str
    source: str  # connection, path, query, header, cookie, body
    key: str
    annotation: Any
    convert: Callable[[str], Any] | None
    default: Any
    many: bool = False


_NO_DEFAULT = inspect.Parameter.empty


def _unwrap(annotation: Any) -> tuple[Any, Param | None]:
    marker = None
    if get_origin(annotation) is typing.Annotated:
        args = get_args(annotation)
        annotation = args[0]
        marker = next((m for m in args[1:] if isinstance(m, Param)), None)
    return annotation, marker


def _strip_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_structured(annotation: Any) -> bool:
    annotation = _strip_optional(annotation)
    return (annotation in (dict, list) or get_origin(annotation) in (dict, list)
            or is_typeddict(annotation) or (isinstance(annotation, type) and dataclasses.is_dataclass(annotation)))


def _annotations(endpoint: Callable[..., Any]) -> tuple[dict[str, Any], set[str]]:
    """The handler's resolved annotations, and the names whose annotation cannot be resolved.

    Under `from __future__ import annotations` annotations are strings, and a name imported inside
    a function is gone by the time they are evaluated; those are reported instead of failing all.
    """
    try:
        return get_type_hints(endpoint, include_extras=True), set()
    except NameError:
        pass
    hints: dict[str, Any] = {}
    unresolved: set[str] = set()
    for name, annotation in getattr(endpoint, "__annotations__", {}).items():
        try:
            hints[name] = eval(annotation, endpoint.__globals__) if isinstance(annotation, str) else annotation
        except NameError:
            unresolved.add(name)
    return hints, unresolved


class Binder:
    """Keyword arguments for one route's handler, computed from a connection."""

    def __init__(self, route: Route, connection_type: type[HTTPConnection]) -> None:
        self.route = route
        self.specs: list[_Spec] = []
        self.needs_body = False
        endpoint = route.endpoint
        hints, unresolved = _annotations(endpoint)
        for index, param in enumerate(inspect.signature(endpoint).parameters.values()):
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            if param.name in unresolved:
                if index == 0 and route.kind == "websocket":
                    self.specs.append(_Spec(param.name, "connection", param.name, connection_type, None,
                                            param.default))
                    continue
                raise TypeError(f"{route.path}: cannot resolve the annotation {param.annotation!r} of "
                                f"{param.name!r}; import that name at module level")
            annotation, marker = _unwrap(hints.get(param.name, str))
            self.specs.append(self._spec(param, index, annotation, marker, connection_type))
        self._simple = all(s.source in ("connection", "path") for s in self.specs)

    def _spec(self, param: inspect.Parameter, index: int, annotation: Any, marker: Param | None,
              connection_type: type[HTTPConnection]) -> _Spec:
        name = param.name
        if isinstance(annotation, type) and issubclass(annotation, HTTPConnection):
            return _Spec(name, "connection", name, annotation, None, param.default)
        if index == 0 and param.annotation is inspect.Parameter.empty and self.route.kind == "websocket":
            return _Spec(name, "connection", name, connection_type, None, param.default)
        source = marker.source if marker else None
        if source is None:
            if name in self.route.param_names:
                source = "path"
            elif _is_structured(annotation):
                source = "body"
            else:
                source = "query"
        if source == "body":
            if self.route.kind == "websocket":
                raise TypeError(f"{self.route.path}: WebSocket handlers have no request body ({name!r})")
            self.needs_body = True
            return _Spec(name, "body", name, annotation, None, param.default)
        key = (marker.alias if marker and marker.alias else name)
        if source == "header" and not (marker and marker.alias):
            key = name.replace("_", "-")
        if source == "path" and key not in self.route.param_names:
            raise TypeError(f"{self.route.path}: {name!r} is not a parameter of the path")
        base = _strip_optional(annotation)
        many = source == "query" and get_origin(base) is list
        if many:
            base = get_args(base)[0] if get_args(base) else str
        try:
            convert = converter_for(base)
        except TypeError as exc:
            raise TypeError(f"{self.route.path}: parameter {name!r}: {exc}") from None
        return _Spec(name, source, key, annotation, convert, param.default, many)

    async def bind(self, conn: HTTPConnection) -> dict[str, Any]:
        """Raises BindError (422, or 400 for a malformed body) when a value is missing or does not convert."""
        if self._simple:
            return self._bind_simple(conn)
        kwargs: dict[str, Any] = {}
        for spec in self.specs:
            if spec.source == "connection":
                kwargs[spec.name] = conn
            elif spec.source == "body":
                kwargs[spec.name] = await self._body(conn, spec)
            else:
                kwargs[spec.name] = self._value(conn, spec)
        return kwargs

    def _bind_simple(self, conn: HTTPConnection) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for spec in self.specs:
            kwargs[spec.name] = conn if spec.source == "connection" else self._value(conn, spec)
        return kwargs

    def _value(self, conn: HTTPConnection, spec: _Spec) -> Any:
        raw: Any
        if spec.source == "path":
            raw = conn.path_params.get(spec.key)
        elif spec.source == "query":
            raw = conn.query_params.getlist(spec.key) if spec.many else conn.query_params.get(spec.key)
        elif spec.source == "header":
            raw = conn.headers.get(spec.key)
        else:
            raw = conn.cookies.get(spec.key)
        if raw is None or (spec.many and not raw):
            if spec.default is not _NO_DEFAULT:
                return spec.default
            raise BindError(422, f"Missing {spec.source} parameter {spec.key!r}")
        assert spec.convert is not None
        try:
            if spec.many:
                return [spec.convert(item) for item in raw]
            value = spec.convert(raw)
        except ConversionError as exc:
            raise BindError(422, f"Invalid {spec.source} parameter {spec.key!r}: {exc}") from None
        if spec.source == "path":
            conn.path_params[spec.key] = value
        return value

    async def _body(self, conn: HTTPConnection, spec: _Spec) -> Any:
        body = await conn.body()  # type: ignore[attr-defined]
        if not body:
            if spec.default is not _NO_DEFAULT:
                return spec.default
            raise BindError(422, "Missing JSON body")
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise BindError(400, f"Invalid JSON body: {exc}") from None
        try:
            return validate(data, spec.annotation, "body")
        except ValidationError as exc:
            raise BindError(422, f"Invalid request body: {exc}") from None


__all__ = ["Binder", "BindError", "Body", "Cookie", "Header", "Path", "Query"]
