"""Check decoded JSON against a type annotation: dataclasses, TypedDicts, containers and scalars.

Used for HTTP bodies and typed WebSocket messages. Errors name the offending field, e.g.
`items[2].price: expected a number, got str`.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict


class ValidationError(ValueError):
    """Decoded JSON that does not match the expected type; `location` names the field."""

    def __init__(self, location: str, message: str) -> None:
        self.location = location
        self.message = message
        super().__init__(f"{location}: {message}" if location else message)


_JSON_NAMES = {dict: "an object", list: "an array", str: "a string", int: "an integer",
               float: "a number", bool: "a boolean", type(None): "null"}


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null",
            int: "integer", float: "number"}.get(type(value), type(value).__name__)


def _fail(loc: str, expected: str, value: Any) -> typing.NoReturn:
    raise ValidationError(loc, f"expected {expected}, got {_type_name(value)}")


def validate(value: Any, annotation: Any, loc: str = "") -> Any:
    """Return `value` converted to `annotation` (dataclasses are instantiated) or raise ValidationError."""
    if annotation is Any or annotation is object:
        return value
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return validate(value, get_args(annotation)[0], loc)
    if origin is Union or origin is types.UnionType:
        errors = []
        for option in get_args(annotation):
            try:
                return validate(value, option, loc)
            except ValidationError as exc:
                errors.append(exc.message)
        raise ValidationError(loc, " or ".join(dict.fromkeys(errors)))
    if origin is Literal:
        choices = get_args(annotation)
        if value not in choices or type(value) not in {type(c) for c in choices}:
            raise ValidationError(loc, f"expected one of {list(choices)!r}")
        return value
    if annotation is None or annotation is type(None):
        if value is not None:
            _fail(loc, "null", value)
        return None
    if annotation is bool:
        if type(value) is not bool:
            _fail(loc, "a boolean", value)
        return value
    if annotation is int:
        if type(value) is not int:
            _fail(loc, "an integer", value)
        return value
    if annotation is float:
        if type(value) not in (int, float):
            _fail(loc, "a number", value)
        return float(value)
    if annotation is str:
        if type(value) is not str:
            _fail(loc, "a string", value)
        return value
    if annotation in (list, dict):
        if type(value) is not annotation:
            _fail(loc, _JSON_NAMES[annotation], value)
        return value
    if origin in (list, typing.Sequence, tuple) or annotation is tuple:
        if type(value) is not list:
            _fail(loc, "an array", value)
        args = get_args(annotation)
        item_type = args[0] if args else Any
        items = [validate(item, item_type, f"{loc}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (dict, typing.Mapping):
        if type(value) is not dict:
            _fail(loc, "an object", value)
        args = get_args(annotation)
        item_type = args[1] if len(args) == 2 else Any
        return {k: validate(v, item_type, _join(loc, k)) for k, v in value.items()}
    if is_typeddict(annotation):
        return _validate_fields(value, annotation, loc, annotation.__required_keys__, dict)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        required = {f.name for f in dataclasses.fields(annotation) if f.init
                    and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        return _validate_fields(value, annotation, loc, required, annotation)
    raise TypeError(f"cannot validate JSON against {annotation!r}")


def _join(loc: str, key: str) -> str:
    return f"{loc}.{key}" if loc else str(key)


def _validate_fields(value: Any, cls: Any, loc: str, required: typing.AbstractSet[str], build: Any) -> Any:
    if type(value) is not dict:
        _fail(loc, "an object", value)
    hints = get_type_hints(cls, include_extras=True)
    if dataclasses.is_dataclass(cls):
        hints = {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}
    missing = [name for name in hints if name in required and name not in value]
    if missing:
        raise ValidationError(_join(loc, missing[0]), "field required")
    unknown = [name for name in value if name not in hints]
    if unknown:
        raise ValidationError(_join(loc, unknown[0]), "unknown field")
    fields = {name: validate(value[name], hints[name], _join(loc, name)) for name in hints if name in value}
    return build(**fields)
