"""Turn a handler's signature into a binder that produces its keyword arguments per request.

Where a value comes from is decided once, at registration: the connection object by annotation
(and an unannotated first parameter: `request` for HTTP, any name for WebSocket), path parameters by
name, `Annotated[T, Query() | Header() | Cookie() | Body()]` explicitly, other scalars from the
query string and models (bolt.models: Structs, dataclasses, TypedDicts, pydantic models, dicts,
lists) from a JSON body. A model marked `Query()` is read from the query string, field by field.
"""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints

from bolt.connection import HTTPConnection
from bolt.models import Codec, InvalidJSON, ValidationError, codec_for, fields, is_model_class
from bolt.routing import ConversionError, Route, converter_for


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
    """A request value that cannot be bound: answered with `status_code` and `detail`.

    `errors` lists the (location, message) of each problem a model's library found.
    """

    def __init__(self, status_code: int, detail: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        if self.errors is None:
            return {"detail": self.detail}
        return {"detail": self.detail, "errors": [{"loc": loc, "msg": msg} for loc, msg in self.errors]}


@dataclasses.dataclass
class _Spec:
    name: str
    source: str  # connection, path, query, query_model, header, cookie, body
    key: str
    annotation: Any
    convert: Callable[[str], Any] | None
    default: Any
    many: bool = False
    codec: Codec | None = None  # body and query models
    fields: dict[str, bool] | None = None  # query models: key -> whether it repeats


_NO_DEFAULT = inspect.Parameter.empty
# The parameter name an HTTP handler's Request goes by, as in django-bolt and django-ninja.
REQUEST_NAME = "request"


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


def is_structured(annotation: Any) -> bool:
    """Whether an unmarked parameter of this annotation is the JSON body (a model, dict or list)."""
    annotation = _strip_optional(annotation)
    return annotation in (dict, list) or get_origin(annotation) in (dict, list) or is_model_class(annotation)


def _at(prefix: str, location: str) -> str:
    if not location:
        return prefix
    return prefix + location if location.startswith("[") else f"{prefix}.{location}"


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
    """Keyword arguments for one route's handler, computed from a connection.

    Raises TypeError at registration for a signature bolt cannot serve: an annotation it cannot
    resolve or convert, a `request` that is not the Request, a path parameter the template lacks,
    or a template parameter the handler does not take.
    """

    def __init__(self, route: Route, connection_type: type[HTTPConnection]) -> None:
        self.route = route
        self.specs: list[_Spec] = []
        self.needs_body = False
        endpoint = route.endpoint
        hints, unresolved = _annotations(endpoint)
        # The return annotation, for the api to find a declared response type in.
        self.returns: Any = hints.get("return", inspect.Signature.empty)
        self.returns_unresolved = "return" in unresolved
        takes_any = False
        for index, param in enumerate(inspect.signature(endpoint).parameters.values()):
            if param.kind is param.VAR_KEYWORD:
                takes_any = True
                continue
            if param.kind is param.VAR_POSITIONAL:
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
        taken = {spec.key for spec in self.specs if spec.source == "path"}
        for name in route.param_names:
            if name in taken:
                continue
            if not takes_any:
                raise TypeError(f"{route.path}: the handler {endpoint.__qualname__} takes no parameter for "
                                f"{{{name}}}; add a parameter {name!r} (with its type) or take **kwargs")
            self.specs.append(_Spec(name, "path", name, str, converter_for(str), _NO_DEFAULT))
        # With no body to read, binding needs no await (see values()).
        self.simple = not self.needs_body

    def _spec(self, param: inspect.Parameter, index: int, annotation: Any, marker: Param | None,
              connection_type: type[HTTPConnection]) -> _Spec:
        name = param.name
        route = self.route
        if isinstance(annotation, type) and issubclass(annotation, HTTPConnection):
            if not issubclass(connection_type, annotation):  # a WebSocket on an HTTP route, or the reverse
                raise TypeError(f"{route.path}: the parameter {name!r} of {route.endpoint.__qualname__} is "
                                f"annotated {annotation.__name__}, but this route gives a "
                                f"{connection_type.__name__}")
            return _Spec(name, "connection", name, annotation, None, param.default)
        unannotated = param.annotation is inspect.Parameter.empty
        if route.kind == "websocket" and index == 0 and unannotated:
            return _Spec(name, "connection", name, connection_type, None, param.default)
        if route.kind == "http" and name == REQUEST_NAME:
            if unannotated:
                return _Spec(name, "connection", name, connection_type, None, param.default)
            raise TypeError(f"{route.path}: the parameter {name!r} of {route.endpoint.__qualname__} is the "
                            f"Request: leave it unannotated or annotate it Request (a query parameter named "
                            f"'request' needs another parameter name and Query('request'))")
        source = marker.source if marker else None
        if source is None:
            if name in route.param_names:
                source = "path"
            elif is_structured(annotation):
                source = "body"
            else:
                source = "query"
        if source == "body":
            if route.kind == "websocket":
                raise TypeError(f"{route.path}: WebSocket handlers have no request body ({name!r})")
            if self.needs_body:  # each would be decoded from the whole body: a client cannot satisfy both
                first = next(spec.name for spec in self.specs if spec.source == "body")
                raise TypeError(f"{route.path}: {route.endpoint.__qualname__} takes two request bodies, {first!r} "
                                f"and {name!r}: a request has one; take one model that holds both")
            self.needs_body = True
            return _Spec(name, "body", name, annotation, None, param.default,
                         codec=self._codec(name, annotation))
        if source == "query" and is_model_class(_strip_optional(annotation)):
            return _Spec(name, "query_model", name, annotation, None, param.default,
                         codec=self._codec(name, annotation), fields=fields(_strip_optional(annotation)))
        key = (marker.alias if marker and marker.alias else name)
        if source == "header" and not (marker and marker.alias):
            key = name.replace("_", "-")
        if source == "path" and key not in route.param_names:
            raise TypeError(f"{route.path}: {name!r} is a path parameter, but the template has no {{{key}}}")
        base = _strip_optional(annotation)
        many = source == "query" and get_origin(base) is list
        if many:
            base = get_args(base)[0] if get_args(base) else str
        try:
            convert = converter_for(base)
        except TypeError as exc:
            raise TypeError(f"{route.path}: parameter {name!r}: {exc}") from None
        return _Spec(name, source, key, annotation, convert, param.default, many)

    def _codec(self, name: str, annotation: Any) -> Codec:
        try:
            return codec_for(annotation)
        except TypeError as exc:
            raise TypeError(f"{self.route.path}: parameter {name!r}: {exc}") from None

    async def bind(self, conn: HTTPConnection) -> dict[str, Any]:
        """Raises BindError (422, or 400 for a malformed body) when a value is missing or does not convert."""
        if self.simple:
            return self.values(conn)
        kwargs: dict[str, Any] = {}
        for spec in self.specs:
            if spec.source == "body":
                kwargs[spec.name] = self._body(await conn.body(), spec)  # type: ignore[attr-defined]
            else:
                kwargs[spec.name] = self._one(conn, spec)
        return kwargs

    def values(self, conn: HTTPConnection) -> dict[str, Any]:
        """`bind` for a handler that takes no body (`simple`): no await needed."""
        return {spec.name: self._one(conn, spec) for spec in self.specs}

    def _one(self, conn: HTTPConnection, spec: _Spec) -> Any:
        if spec.source == "connection":
            return conn
        if spec.source == "query_model":
            return self._query_model(conn, spec)
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

    @staticmethod
    def _query_model(conn: HTTPConnection, spec: _Spec) -> Any:
        assert spec.codec is not None and spec.fields is not None
        query = conn.query_params
        data: dict[str, Any] = {}
        for key, many in spec.fields.items():
            values = query.getlist(key)
            if values:
                data[key] = values if many else values[0]
        if not data and spec.default is not _NO_DEFAULT:
            return spec.default
        try:
            return spec.codec.validate(data, from_strings=True)
        except ValidationError as exc:
            errors = [(_at("query", loc), msg) for loc, msg in exc.errors]
            raise BindError(422, f"Invalid query: {exc}", errors) from None

    @staticmethod
    def _body(body: bytes, spec: _Spec) -> Any:
        if not body:
            if spec.default is not _NO_DEFAULT:
                return spec.default
            raise BindError(422, "Missing JSON body")
        assert spec.codec is not None
        try:
            return spec.codec.decode(body)
        except InvalidJSON as exc:
            raise BindError(400, f"Invalid JSON body: {exc}") from None
        except ValidationError as exc:
            errors = [(_at("body", loc), msg) for loc, msg in exc.errors]
            raise BindError(422, f"Invalid request body: {errors[0][0]}: {exc.message}", errors) from None


__all__ = ["Binder", "BindError", "Body", "Cookie", "Header", "Path", "Query"]
