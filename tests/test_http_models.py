"""HTTP models by their own libraries: bodies, query models and declared responses."""
from __future__ import annotations

import dataclasses
from typing import Annotated, TypedDict

import msgspec
import pydantic
import pytest

from bolt import BoltAPI, Query, Response
from bolt.testing import TestClient


class Item(msgspec.Struct):
    name: str
    price: float
    tags: list[str] = []


class User(pydantic.BaseModel):
    name: str
    age: int


@dataclasses.dataclass
class Filters:
    q: str
    limit: int = 10
    tag: list[str] = dataclasses.field(default_factory=list)
    exact: bool = False


class Public(TypedDict):
    name: str


class Name(msgspec.Struct):
    name: str


class Row:  # an ORM object: declared response types read it by attribute
    def __init__(self, name: str) -> None:
        self.name = name
        self.password = "secret"


class PublicUser(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(from_attributes=True)
    name: str


def build_api() -> BoltAPI:
    api = BoltAPI()

    @api.post("/items", status_code=201)
    async def create(item: Item) -> Item:
        return item

    @api.post("/users")
    async def register(user: User):
        return {"user": user, "next_year": user.age + 1}  # a pydantic model inside a dict

    @api.get("/search")
    async def search(filters: Annotated[Filters, Query()]):
        return filters

    @api.get("/structs")
    async def structs() -> list[Item]:
        return [{"name": "a", "price": 1, "secret": "x"}, Item("b", 2.5)]

    @api.get("/public", response_model=Public)
    async def public():
        return {"name": "ann", "password": "secret"}

    @api.get("/row")
    async def row() -> PublicUser:
        return Row("bob")

    @api.get("/rows")
    async def rows() -> list[Name]:
        return [Row("c")]

    @api.get("/broken")
    async def broken() -> Item:
        return {"name": "no price"}

    @api.get("/either")
    async def either(ok: bool = True) -> Item | Response:
        return Item("x", 1) if ok else Response(b"raw", 202)

    return api


@pytest.fixture
def client():
    return TestClient(build_api(), raise_server_exceptions=False)


def test_struct_body_and_response(client):
    response = client.post("/items", json={"name": "pen", "price": 2, "ignored": True})
    assert (response.status_code, response.json()) == (201, {"name": "pen", "price": 2.0, "tags": []})
    response = client.post("/items", json={"name": "pen", "price": "2"})
    assert response.status_code == 422
    assert response.json() == {"detail": "Invalid request body: body.price: Expected `float`, got `str`",
                               "errors": [{"loc": "body.price", "msg": "Expected `float`, got `str`"}]}
    response = client.post("/items", json=[{"name": "pen"}])
    assert response.json()["detail"] == "Invalid request body: body: Expected `object`, got `array`"
    # A missing field is located at the field, as pydantic locates it.
    response = client.post("/items", json={"name": "pen"})
    assert response.json()["errors"] == [{"loc": "body.price", "msg": "Object missing required field `price`"}]
    response = client.post("/items", content=b'{"name": "pen",')
    assert response.status_code == 400 and response.json()["detail"].startswith("Invalid JSON body")


def test_pydantic_body_reports_every_error(client):
    assert client.post("/users", json={"name": "ann", "age": 30}).json() == {
        "user": {"name": "ann", "age": 30}, "next_year": 31}
    response = client.post("/users", json={"age": "old"})
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"loc": "body.name", "msg": "Field required"},
        {"loc": "body.age", "msg": "Input should be a valid integer, unable to parse string as an integer"}]
    assert response.json()["detail"] == "Invalid request body: body.name: Field required"
    assert client.post("/users", content=b"{").status_code == 400


def test_query_model(client):
    response = client.get("/search?q=lamp&limit=3&tag=a&tag=b&exact=true&other=1")
    assert response.json() == {"q": "lamp", "limit": 3, "tag": ["a", "b"], "exact": True}
    assert client.get("/search?q=x").json() == {"q": "x", "limit": 10, "tag": [], "exact": False}
    response = client.get("/search?q=x&limit=many")
    assert response.status_code == 422
    assert response.json()["errors"] == [{"loc": "query.limit", "msg": "Expected `int`, got `str`"}]
    response = client.get("/search")
    assert response.status_code == 422 and "`q`" in response.json()["detail"]


def test_declared_responses_send_only_their_fields(client):
    assert client.get("/structs").json() == [{"name": "a", "price": 1.0, "tags": []},
                                             {"name": "b", "price": 2.5, "tags": []}]
    assert client.get("/public").json() == {"name": "ann"}
    assert client.get("/row").json() == {"name": "bob"}
    assert client.get("/rows").json() == [{"name": "c"}]
    response = client.get("/either?ok=false")
    assert (response.status_code, response.content) == (202, b"raw")
    assert client.get("/either").json() == {"name": "x", "price": 1.0, "tags": []}


def test_a_response_that_does_not_fit_its_type_is_a_500(client, caplog):
    response = client.get("/broken")
    assert (response.status_code, response.json()) == (500, {"detail": "Internal Server Error"})
    assert any("price" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_undeclared_structs_and_models_are_json_too():
    api = BoltAPI()

    @api.get("/plain")
    async def plain():
        return [Item("a", 1), User(name="b", age=2)]

    assert TestClient(api).get("/plain").json() == [{"name": "a", "price": 1, "tags": []}, {"name": "b", "age": 2}]


def test_a_type_no_library_takes_is_refused_at_registration():
    api = BoltAPI()

    class Opaque:
        pass

    with pytest.raises(TypeError, match="/bad: response type: cannot use"):
        @api.get("/bad", response_model=Opaque)
        async def bad():
            return {}
