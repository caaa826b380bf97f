"""JSON Schemas of Python types, with named models collected once as shared components.

Used by the OpenAPI and AsyncAPI documents. msgspec describes its Structs, dataclasses, TypedDicts
and plain types; pydantic describes its own models (and any type that holds one). Each library
names a model after its class, and the schema of a model is written once, under that name, and
referred to everywhere else.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

import msgspec


def _pydantic_base() -> type | None:
    try:
        from pydantic import BaseModel
    except ImportError:
        return None
    return BaseModel


def strip_annotated(annotation: Any) -> Any:
    """`Annotated[T, ...]` -> `T` (bolt's markers say where a value comes from, not what it is)."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def strip_optional(annotation: Any) -> Any:
    """`T | None` -> `T`: a parameter that may be absent is not one that may be null."""
    annotation = strip_annotated(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return strip_annotated(args[0])
    return annotation


def _uses_pydantic(annotation: Any, base: type | None) -> bool:
    if base is None:
        return False
    if isinstance(annotation, type) and issubclass(annotation, base):
        return True
    return any(_uses_pydantic(arg, base) for arg in get_args(annotation))


class SchemaSet:
    """The schemas of the types a document mentions, and the components they refer to.

    `ref_template` is where components live, e.g. "#/components/schemas/{name}".
    """

    def __init__(self, ref_template: str) -> None:
        self.ref_template = ref_template
        self.components: dict[str, dict[str, Any]] = {}

    def schemas(self, annotations: Sequence[Any]) -> list[dict[str, Any]]:
        """The JSON Schema of each annotation, in order; models they name go to `components`."""
        base = _pydantic_base()
        plain = [strip_annotated(a) for a in annotations]
        out: list[dict[str, Any] | None] = [None] * len(plain)
        by_msgspec = [i for i, a in enumerate(plain) if not _uses_pydantic(a, base)]
        if by_msgspec:
            found, components = msgspec.json.schema_components(
                [plain[i] for i in by_msgspec], ref_template=self.ref_template)
            for i, schema in zip(by_msgspec, found):
                out[i] = schema
            self._merge(components)
        for i, annotation in enumerate(plain):
            if out[i] is None:
                out[i] = self._pydantic(annotation, base)
        return typing.cast("list[dict[str, Any]]", out)

    def schema(self, annotation: Any) -> dict[str, Any]:
        return self.schemas([annotation])[0]

    def _pydantic(self, annotation: Any, base: Any) -> dict[str, Any]:
        from pydantic import TypeAdapter

        template = self.ref_template.replace("{name}", "{model}")
        schema = TypeAdapter(annotation).json_schema(ref_template=template)
        self._merge(schema.pop("$defs", {}))
        if isinstance(annotation, type) and issubclass(annotation, base):
            # A model itself is a component too, as msgspec's are.
            name = annotation.__name__
            self._merge({name: schema})
            return {"$ref": self.ref_template.format(name=name)}
        return schema

    def _merge(self, components: dict[str, dict[str, Any]]) -> None:
        for name, schema in components.items():
            known = self.components.setdefault(name, schema)
            if known != schema:
                raise TypeError(f"two different models are both named {name!r}; rename one of them "
                                "so the schema can tell them apart")


__all__ = ["SchemaSet", "strip_annotated", "strip_optional"]
