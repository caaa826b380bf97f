"""bolt.models: each model decoded, validated, encoded and described by its own library."""
from __future__ import annotations

import dataclasses
from typing import TypedDict

import msgspec
import orjson
import pydantic
import pytest

from bolt.models import (
    InvalidJSON,
    ValidationError,
    codec_for,
    is_model_class,
    json_default,
    json_schema,
    schema_components,
    uses_pydantic,
)


class Part(msgspec.Struct):
    name: str
    price: float


@dataclasses.dataclass
class Order:
    parts: list[Part]
    note: str = ""


class Tag(TypedDict):
    label: str


class User(pydantic.BaseModel):
    name: str
    age: int


@pytest.mark.parametrize("model, data, expected", [
    (Part, b'{"name": "nut", "price": 2}', Part("nut", 2.0)),
    (Order, '{"parts": [{"name": "nut", "price": 1.5}]}', Order([Part("nut", 1.5)])),
    (Tag, b'{"label": "x", "other": 1}', {"label": "x"}),
    (list[int], b"[1, 2]", [1, 2]),
    (User, b'{"name": "ann", "age": 3}', User(name="ann", age=3)),
    (list[User], '[{"name": "bob", "age": 4}]', [User(name="bob", age=4)]),
])
def test_decode_from_json_text(model, data, expected):
    assert codec_for(model).decode(data) == expected


@pytest.mark.parametrize("model, data, location, message", [
    (Part, b'{"name": "nut", "price": "cheap"}', "price", "Expected `float`, got `str`"),
    (Order, b'{"parts": [{"name": "a", "price": 1}, {"name": 2, "price": 1}]}', "parts[1].name",
     "Expected `str`, got `int`"),
    (Part, b'{"price": 1}', "name", "Object missing required field `name`"),
    (User, b'{"name": "ann", "age": "old"}', "age",
     "Input should be a valid integer, unable to parse string as an integer"),
    (list[User], b'[{"name": "ann", "age": 1}, {"age": 2}]', "[1].name", "Field required"),
])
def test_validation_errors_name_the_field(model, data, location, message):
    with pytest.raises(ValidationError) as caught:
        codec_for(model).decode(data)
    assert (caught.value.location, caught.value.message) == (location, message)
    assert str(caught.value) == (f"{location}: {message}" if location else message)


@pytest.mark.parametrize("model", [Part, User])
def test_malformed_json_is_not_a_validation_error(model):
    with pytest.raises(InvalidJSON):
        codec_for(model).decode(b'{"name": ')


def test_pydantic_reports_every_error():
    with pytest.raises(ValidationError) as caught:
        codec_for(User).decode(b"{}")
    assert caught.value.errors == [("name", "Field required"), ("age", "Field required")]


def test_validate_decoded_values_and_query_strings():
    assert codec_for(Part).validate({"name": "a", "price": 1}) == Part("a", 1.0)
    with pytest.raises(ValidationError):
        codec_for(Part).validate({"name": "a", "price": "1"})
    assert codec_for(Part).validate({"name": "a", "price": "1.5"}, from_strings=True) == Part("a", 1.5)
    assert codec_for(User).validate({"name": "a", "age": "7"}, from_strings=True) == User(name="a", age=7)


def test_encode_converts_to_the_declared_type_first():
    assert codec_for(Tag).encode({"label": "x", "secret": "s"}) == b'{"label":"x"}'
    assert codec_for(Part).encode({"name": "a", "price": 1, "secret": "s"}) == b'{"name":"a","price":1.0}'
    assert codec_for(User).encode({"name": "a", "age": 1, "secret": "s"}) == b'{"name":"a","age":1}'

    class Row:  # an ORM object, read by attribute
        name = "row"
        price = 3.0
        secret = "s"

    assert codec_for(list[Part]).encode([Row()]) == b'[{"name":"row","price":3.0}]'
    with pytest.raises(ValidationError):
        codec_for(Part).encode({"name": "a"})


def test_codecs_are_built_once_and_unknown_types_refused():
    assert codec_for(list[Part]) is codec_for(list[Part])
    with pytest.raises(TypeError, match="cannot use"):
        codec_for(object())


def test_model_classes_and_pydantic_detection():
    assert all(is_model_class(t) for t in (Part, Order, Tag, User))
    assert not any(is_model_class(t) for t in (int, dict, list[Part]))
    assert uses_pydantic(list[User]) and uses_pydantic(User | None) and not uses_pydantic(list[Part])


def test_json_default_lets_orjson_write_structs_and_pydantic_models():
    assert orjson.loads(orjson.dumps([Part("a", 1), User(name="b", age=2)], default=json_default)) == [
        {"name": "a", "price": 1}, {"name": "b", "age": 2}]
    with pytest.raises(TypeError):
        orjson.dumps(object(), default=json_default)


def test_json_schema_by_each_library():
    schema = json_schema(Order)
    assert schema["$ref"] == "#/$defs/Order"
    assert schema["$defs"]["Part"]["required"] == ["name", "price"]
    assert json_schema(list[int]) == {"type": "array", "items": {"type": "integer"}}
    assert json_schema(User)["$defs"]["User"]["properties"]["age"]["type"] == "integer"


def test_schema_components_share_one_namespace():
    schemas, components = schema_components([Part, list[User], Tag])
    assert schemas == [{"$ref": "#/components/schemas/Part"},
                       {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
                       {"$ref": "#/components/schemas/Tag"}]
    assert set(components) == {"Part", "User", "Tag"}


@dataclasses.dataclass
class Note:
    text: str
    urgent: bool = False


@dataclasses.dataclass(frozen=True)
class Tree:
    name: str
    children: list[Tree] = dataclasses.field(default_factory=list)
    note: Note | None = None
    level: int = 0


class Box(msgspec.Struct):
    notes: dict[str, Note]
    pair: tuple[Note, int] | None = None


@pytest.mark.parametrize("model, data, expected", [
    (Note, b'{"text": "a"}', {"text": "a", "urgent": False}),
    (list[Note] | None, b'[{"text": "a"}]', [{"text": "a", "urgent": False}]),
    (list[Note] | None, b"null", None),
    (Tree, b'{"name": "r", "children": [{"name": "c", "note": {"text": "n"}}]}',
     {"name": "r", "children": [{"name": "c", "children": [], "note": {"text": "n", "urgent": False}, "level": 0}],
      "note": None, "level": 0}),
    (Box, b'{"notes": {"k": {"text": "a"}}, "pair": [{"text": "b"}, 1]}',
     {"notes": {"k": {"text": "a", "urgent": False}}, "pair": [{"text": "b", "urgent": False}, 1]}),
])
def test_decoded_dataclasses_hold_their_defaults(model, data, expected):
    # msgspec leaves plain defaults to the class; encoders that read __dict__ would drop them.
    value = codec_for(model).decode(data)
    assert orjson.loads(orjson.dumps(value, default=json_default)) == expected
    assert orjson.loads(codec_for(model).encode(value)) == expected
    assert orjson.loads(orjson.dumps(codec_for(model).validate(orjson.loads(data)), default=json_default)) == expected
