"""JSON Schemas of Python types, with named models collected once as shared components.

Used by the OpenAPI and AsyncAPI documents. Each model is described by its own library
(bolt.models: msgspec for Structs, dataclasses, TypedDicts and plain types, pydantic for its
models), named after its class, written once under that name and referred to everywhere else.
"""
from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any, Union, get_args, get_origin

from bolt.models import merge_components, schema_components


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


class SchemaSet:
    """The schemas of the types a document mentions, and the components they refer to.

    `ref_template` is where components live, e.g. "#/components/schemas/{name}".
    """

    def __init__(self, ref_template: str) -> None:
        self.ref_template = ref_template
        self.components: dict[str, dict[str, Any]] = {}

    def schemas(self, annotations: Sequence[Any]) -> list[dict[str, Any]]:
        """The JSON Schema of each annotation, in order; models they name go to `components`.

        One mode for requests and responses alike (pydantic's "validation"): a model is one
        component whichever way it travels.
        """
        found, components = schema_components([strip_annotated(a) for a in annotations],
                                              ref_template=self.ref_template)
        merge_components(self.components, components)
        return found

    def schema(self, annotation: Any) -> dict[str, Any]:
        return self.schemas([annotation])[0]

    def fields(self, model: Any) -> tuple[dict[str, Any], set[str]]:
        """The schemas of a model's fields by name, and the names that are required (a query model's)."""
        schema = self.schema(strip_optional(model))
        if "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return dict(schema.get("properties", {})), set(schema.get("required", ()))


__all__ = ["SchemaSet", "strip_annotated", "strip_optional"]
