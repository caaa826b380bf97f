"""Typed values by the libraries that define them: decode, validate, encode and describe JSON.

A *model* is the annotation a handler gives a request body, a query model, a response or a
WebSocket message: a msgspec Struct, a dataclass, a TypedDict, a pydantic model, or an annotation
built from them (`list[Item]`, `Item | None`, `dict[str, int]`). msgspec decodes and validates
JSON into it in one pass. An annotation that holds a pydantic model (or pydantic dataclass) is left
to pydantic, which bolt never imports itself: if a type is a pydantic model, the application has
already imported pydantic.

`codec_for(annotation)` builds the codec of an annotation once; `json_schema` and
`schema_components` describe models for the schema pages.
"""
from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, get_args, get_origin, is_typeddict

import msgspec
import msgspec.inspect

# Codecs are built once per annotation; annotations come from code, but stay bounded anyway.
_MAX_CODECS = 1024


class InvalidJSON(ValueError):
    """Input that is not JSON at all, as opposed to JSON of the wrong shape."""


class ValidationError(ValueError):
    """A value that does not fit its model, in the library's words.

    `location` names the field of the first problem (`items[2].price`; empty for the value
    itself) and `message` says what is wrong; `errors` holds every (location, message) found
    (msgspec stops at the first, pydantic reports them all).
    """

    def __init__(self, location: str, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        self.location = location
        self.message = message
        self.errors = errors if errors is not None else [(location, message)]
        super().__init__(f"{location}: {message}" if location else message)


def _pydantic() -> Any:
    return sys.modules.get("pydantic")


def _is_pydantic_type(annotation: Any) -> bool:
    pydantic = _pydantic()
    return pydantic is not None and isinstance(annotation, type) and (
        issubclass(annotation, pydantic.BaseModel) or hasattr(annotation, "__pydantic_validator__"))


def uses_pydantic(annotation: Any) -> bool:
    """Whether `annotation` is, or holds, a pydantic model or pydantic dataclass."""
    if _pydantic() is None:
        return False
    if _is_pydantic_type(annotation):
        return True
    return any(uses_pydantic(arg) for arg in getattr(annotation, "__args__", ()))


def is_model_class(annotation: Any) -> bool:
    """Whether `annotation` is a class of fields: a Struct, a dataclass, a TypedDict or a pydantic model."""
    if is_typeddict(annotation):
        return True
    return isinstance(annotation, type) and (
        issubclass(annotation, msgspec.Struct) or dataclasses.is_dataclass(annotation)
        or _is_pydantic_type(annotation))


def declares_model(annotation: Any) -> bool:
    """Whether `annotation` is or holds a model class (`Item`, `list[Item]`, `Item | None`).

    A handler's return annotation is its response type only then: `-> dict` or `-> str` stays a hint.
    """
    if is_model_class(annotation):
        return True
    return any(declares_model(arg) for arg in getattr(annotation, "__args__", ()))


_SEQUENCES = (msgspec.inspect.ListType, msgspec.inspect.SetType, msgspec.inspect.FrozenSetType,
              msgspec.inspect.VarTupleType, msgspec.inspect.TupleType)


def fields(annotation: Any) -> dict[str, bool]:
    """The wire names of a model class's fields, each with whether it holds a sequence.

    A query model reads each name from the query string, all its values when it is a sequence.
    """
    if not is_model_class(annotation):
        raise TypeError(f"{annotation!r} is not a Struct, dataclass, TypedDict or pydantic model")
    if uses_pydantic(annotation):
        return {info.alias or name: _is_sequence_annotation(info.annotation)
                for name, info in annotation.__pydantic_fields__.items()}
    found: dict[str, bool] = {}
    for field in msgspec.inspect.type_info(annotation).fields:  # type: ignore[attr-defined]
        kinds = field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        found[field.encode_name] = any(isinstance(kind, _SEQUENCES) for kind in kinds)
    return found


def _is_sequence_annotation(annotation: Any) -> bool:
    is_union = get_origin(annotation) in (typing.Union, types.UnionType)
    options = get_args(annotation) if is_union else (annotation,)
    return any(get_origin(option) in (list, set, frozenset, tuple) or option in (list, set, frozenset, tuple)
               for option in options)


def _location(path: tuple[Any, ...]) -> str:
    text = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)
    return text.removeprefix(".")


_MISSING = "Object missing required field `"


def _msgspec_error(exc: msgspec.ValidationError) -> ValidationError:
    # msgspec says where at the end: "Expected `float`, got `str` - at `$.items[2].price`".
    message, sep, path = str(exc).rpartition(" - at `")
    if not sep:
        message, path = str(exc), ""
    path = path.rstrip("`").removeprefix("$").removeprefix(".")
    # A missing field is reported at the object that lacks it; pydantic (and a client) locate the field.
    if message.startswith(_MISSING) and message.endswith("`"):
        field = message[len(_MISSING):-1]
        path = f"{path}.{field}" if path else field
    return ValidationError(path, message)


def _pydantic_error(exc: Any) -> ValueError:
    errors = exc.errors(include_url=False)
    if any(error["type"] == "json_invalid" for error in errors):
        return InvalidJSON(errors[0]["msg"])
    found = [(_location(tuple(error["loc"])), error["msg"]) for error in errors]
    return ValidationError(found[0][0], found[0][1], found)


class Codec:
    """The JSON codec of one annotation, built by `codec_for`."""

    annotation: Any

    def decode(self, data: bytes | str) -> Any:
        """JSON text to a value of the annotation; InvalidJSON or ValidationError when it cannot be."""
        raise NotImplementedError

    def validate(self, value: Any, *, from_strings: bool = False) -> Any:
        """Decoded JSON (dicts, lists, scalars) to a value of the annotation, or ValidationError.

        `from_strings` lets strings stand for numbers and booleans, as in a query string.
        """
        raise NotImplementedError

    def encode(self, value: Any) -> bytes:
        """A value declared as the annotation, as JSON: converted to it first (so fields the
        annotation does not have are left out; objects are read by attribute), then encoded."""
        raise NotImplementedError


Filler = Callable[[Any], None]


def _defaults_filler(info: Any, memo: dict[type, Filler | None]) -> Filler | None:
    """What sets, on the dataclasses msgspec builds for type `info`, the plain defaults it leaves out.

    msgspec does not store a field's plain default on a dataclass it decodes (the class attribute
    answers reads), so encoders that read the instance's `__dict__` (orjson's, msgspec's own)
    would leave those fields out. None when no part of the type holds such a dataclass.
    """
    inspect = msgspec.inspect
    if isinstance(info, inspect.DataclassType):
        return _dataclass_filler(info, memo)
    if isinstance(info, (inspect.StructType, inspect.TypedDictType)):
        is_struct = isinstance(info, inspect.StructType)
        container: type[Any] = info.cls if is_struct else dict
        fields = [(f.name if is_struct else f.encode_name, fill) for f in info.fields
                  if (fill := _defaults_filler(f.type, memo)) is not None]
        if not fields:
            return None

        def fill_fields(value: Any) -> None:
            if not isinstance(value, container):  # another type of a union
                return
            for name, fill in fields:
                fill(getattr(value, name, None) if is_struct else value.get(name))

        return fill_fields
    if isinstance(info, (inspect.ListType, inspect.VarTupleType, inspect.SetType, inspect.FrozenSetType,
                         inspect.DictType)):
        is_dict = isinstance(info, inspect.DictType)
        item = _defaults_filler(info.value_type if isinstance(info, inspect.DictType) else info.item_type, memo)
        if item is None:
            return None

        def fill_items(value: Any) -> None:
            if isinstance(value, (list, tuple, set, frozenset, dict)):
                for x in (value.values() if is_dict and isinstance(value, dict) else value):
                    item(x)

        return fill_items
    if isinstance(info, inspect.TupleType):
        items = [_defaults_filler(t, memo) or _no_fill for t in info.item_types]
        if all(fill is _no_fill for fill in items):
            return None

        def fill_tuple(value: Any) -> None:
            if isinstance(value, tuple):
                for fill, x in zip(items, value):
                    fill(x)

        return fill_tuple
    if isinstance(info, inspect.UnionType):
        options = [fill for t in info.types if (fill := _defaults_filler(t, memo)) is not None]
        if not options:
            return None

        def fill_union(value: Any) -> None:
            for fill in options:  # only the one for the value's own type changes anything
                fill(value)

        return fill_union
    return None


def _dataclass_filler(info: Any, memo: dict[type, Filler | None]) -> Filler | None:
    cls = info.cls
    if cls in memo:  # a recursive type: the filler being built is looked up when it runs
        return lambda value: (memo[cls] or _no_fill)(value)
    memo[cls] = None
    defaults = [(f.name, f.default) for f in info.fields if f.default is not msgspec.inspect.NODEFAULT]
    nested = [(f.name, fill) for f in info.fields
              if (fill := _defaults_filler(f.type, memo)) is not None]
    if not defaults and not nested:
        return None

    def fill_dataclass(value: Any) -> None:
        attributes = getattr(value, "__dict__", None) if isinstance(value, cls) else None
        if attributes is None:  # another type of a union, or slots (msgspec sets those itself)
            return
        for name, default in defaults:
            attributes.setdefault(name, default)
        for name, fill in nested:
            fill(attributes[name])

    memo[cls] = fill_dataclass
    return fill_dataclass


def _no_fill(value: Any) -> None:
    pass


def _custom_type(info: Any, seen: set[type]) -> type | None:
    """The first class in a type that msgspec would only take with a hook of ours (we give none)."""
    inspect = msgspec.inspect
    if isinstance(info, inspect.CustomType):
        return info.cls
    if isinstance(info, (inspect.StructType, inspect.DataclassType, inspect.TypedDictType,
                         inspect.NamedTupleType)):
        if info.cls in seen:
            return None
        seen.add(info.cls)
        children = [f.type for f in info.fields]
    elif isinstance(info, (inspect.UnionType, inspect.TupleType)):
        children = list(info.types if isinstance(info, inspect.UnionType) else info.item_types)
    elif isinstance(info, inspect.DictType):
        children = [info.key_type, info.value_type]
    else:
        children = [getattr(info, "item_type", None)]  # type: ignore[list-item]  # None: a leaf
    for child in children:
        found = _custom_type(child, seen) if child is not None else None
        if found is not None:
            return found
    return None


class _MsgspecCodec(Codec):
    def __init__(self, annotation: Any) -> None:
        self.annotation = annotation
        self._decoder = msgspec.json.Decoder(annotation)  # TypeError for a type msgspec cannot decode
        self._encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
        info = msgspec.inspect.type_info(annotation)
        custom = _custom_type(info, set())
        if custom is not None:
            raise TypeError(f"msgspec cannot decode {custom.__qualname__} (not a Struct, dataclass, TypedDict, "
                            "pydantic model or JSON type)")
        self._fill = _defaults_filler(info, {}) or _no_fill

    def decode(self, data: bytes | str) -> Any:
        try:
            value = self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise _msgspec_error(exc) from None
        except msgspec.DecodeError as exc:
            raise InvalidJSON(str(exc)) from None
        self._fill(value)
        return value

    def validate(self, value: Any, *, from_strings: bool = False) -> Any:
        try:
            value = msgspec.convert(value, self.annotation, strict=not from_strings)
        except msgspec.ValidationError as exc:
            raise _msgspec_error(exc) from None
        self._fill(value)
        return value

    def encode(self, value: Any) -> bytes:
        if type(value) is not self.annotation:
            try:
                value = msgspec.convert(value, self.annotation, from_attributes=True)
            except msgspec.ValidationError as exc:
                raise _msgspec_error(exc) from None
        self._fill(value)
        return self._encoder.encode(value)


class _PydanticCodec(Codec):
    def __init__(self, annotation: Any, pydantic: Any) -> None:
        self.annotation = annotation
        self.adapter = pydantic.TypeAdapter(annotation)
        self._error = pydantic.ValidationError

    def decode(self, data: bytes | str) -> Any:
        try:
            return self.adapter.validate_json(data)
        except self._error as exc:
            raise _pydantic_error(exc) from None

    def validate(self, value: Any, *, from_strings: bool = False) -> Any:
        # pydantic's default (lax) mode already reads numbers and booleans from strings.
        try:
            return self.adapter.validate_python(value)
        except self._error as exc:
            raise _pydantic_error(exc) from None

    def encode(self, value: Any) -> bytes:
        try:
            value = self.adapter.validate_python(value, from_attributes=True)  # instances pass as they are
        except self._error as exc:
            raise _pydantic_error(exc) from None
        return self.adapter.dump_json(value)


_codecs: dict[Any, Codec] = {}


def codec_for(annotation: Any) -> Codec:
    """The codec of `annotation` (built once); TypeError for a type neither library can handle."""
    try:
        return _codecs[annotation]
    except KeyError:
        pass
    except TypeError:  # an unhashable annotation: built each time
        return _build(annotation)
    if len(_codecs) >= _MAX_CODECS:
        _codecs.clear()
    codec = _codecs[annotation] = _build(annotation)
    return codec


def _build(annotation: Any) -> Codec:
    if uses_pydantic(annotation):
        return _PydanticCodec(annotation, _pydantic())
    try:
        return _MsgspecCodec(annotation)
    except TypeError as exc:
        raise TypeError(f"cannot use {annotation!r} as a model: {exc}") from None


def _enc_hook(value: Any) -> Any:
    if _is_pydantic_type(type(value)):
        return value.model_dump(mode="json")
    raise NotImplementedError(f"{type(value).__name__} cannot be encoded as JSON")


def json_default(value: Any) -> Any:
    """orjson's `default=`: Structs and pydantic models in other JSON (responses, send_json, broadcasts)."""
    if isinstance(value, msgspec.Struct):
        return msgspec.to_builtins(value)
    if _is_pydantic_type(type(value)):
        return value.model_dump(mode="json")
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


# -- schemas ---------------------------------------------------------------------------------------


def schema_components(annotations: Iterable[Any], *, ref_template: str = "#/components/schemas/{name}",
                      mode: str = "validation") -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """JSON Schemas (2020-12) of `annotations`, each made by its model's library, sharing components.

    Returns one schema per annotation, in order, and the named components they refer to through
    `ref_template` (`{name}` is the component's name, e.g. the class name). `mode` is pydantic's
    "validation" (what a request may hold) or "serialization" (what a response holds); msgspec
    types read and write the same shape.
    """
    annotations = list(annotations)
    schemas: list[dict[str, Any] | None] = [None] * len(annotations)
    components: dict[str, dict[str, Any]] = {}
    by_msgspec = [i for i, a in enumerate(annotations) if not uses_pydantic(a)]
    if by_msgspec:
        found, defs = msgspec.json.schema_components([annotations[i] for i in by_msgspec],
                                                     ref_template=ref_template)
        for i, schema in zip(by_msgspec, found):
            schemas[i] = schema
        components.update(defs)
    by_pydantic = [i for i, a in enumerate(annotations) if uses_pydantic(a)]
    if by_pydantic:
        adapters = [(i, mode, _codec_adapter(annotations[i])) for i in by_pydantic]
        found_map, defs = _pydantic().TypeAdapter.json_schemas(
            adapters, ref_template=ref_template.replace("{name}", "{model}"))
        for i in by_pydantic:
            schemas[i] = found_map[(i, mode)]
        merge_components(components, defs.get("$defs", {}))
    return [schema for schema in schemas if schema is not None], components


def merge_components(components: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> None:
    """Add `new` named components to `components`; a name already there must describe the same model.

    A class used both directly (msgspec) and inside a pydantic model is described by both libraries,
    which differ only in the titles pydantic gives each field: the first description is kept.
    """
    for name, schema in new.items():
        known = components.setdefault(name, schema)
        if known is not schema and _untitled(known) != _untitled(schema):
            raise TypeError(f"two different models are both named {name!r}; rename one of them "
                            "so the schema can tell them apart")


# Keys whose value maps names (of fields, of components) to schemas: the names are data, not keywords.
_SCHEMA_MAPS = frozenset(("properties", "patternProperties", "$defs", "definitions", "dependentSchemas"))
# Keys whose value is an instance (a value the data may hold), never a schema.
_INSTANCES = frozenset(("const", "enum", "default", "examples"))


def transform_schema(schema: Any, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """`schema` rebuilt bottom-up, with `change` applied to each schema object in it, its own included.

    Field and component names, and the values of `const`, `enum`, `default` and `examples`, are left
    as they are: they are data, not keywords.
    """
    if isinstance(schema, list):
        return [transform_schema(item, change) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _INSTANCES:
            out[key] = value
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: transform_schema(sub, change) for name, sub in value.items()}
        else:
            out[key] = transform_schema(value, change)
    return change(out)


def _untitled(schema: Any) -> Any:
    """`schema` without its `title` keywords, which only label it."""
    return transform_schema(schema, lambda node: {key: value for key, value in node.items() if key != "title"})


def _codec_adapter(annotation: Any) -> Any:
    codec = codec_for(annotation)
    assert isinstance(codec, _PydanticCodec)
    return codec.adapter


def json_schema(annotation: Any, *, mode: str = "validation") -> dict[str, Any]:
    """The self-contained JSON Schema of one model: components it refers to are under `$defs`."""
    (schema,), components = schema_components([annotation], ref_template="#/$defs/{name}", mode=mode)
    return {**schema, "$defs": components} if components else schema


__all__ = ["Codec", "InvalidJSON", "ValidationError", "codec_for", "declares_model", "fields", "is_model_class",
           "json_default", "json_schema", "merge_components", "schema_components", "transform_schema",
           "uses_pydantic"]
