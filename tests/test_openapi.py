"""The OpenAPI 3.1 document at /openapi.json, checked by openapi-spec-validator, and the /docs page's routes."""
from __future__ import annotations

import dataclasses
from typing import Annotated, TypedDict

import jsonschema
import msgspec
import pydantic
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate

from bolt import BoltAPI, Cookie, Header, HTMLResponse, JSONResponse, Query, apidocs
from bolt.auth import APIKeyAuthentication, IsAuthenticated, JWTAuthentication, SessionAuthentication
from bolt.middleware import rate_limit
from bolt.testing import AsyncTestClient
from django_settings import configure_django

SECRET = "openapi-test-secret-of-32-bytes!"


@dataclasses.dataclass
class Item:
    name: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)


class Stored(msgspec.Struct):
    id: int
    item: Item


class Filter(TypedDict):
    text: str


class Review(pydantic.BaseModel):
    stars: int = pydantic.Field(ge=1, le=5)
    text: str = ""


class NotFound(msgspec.Struct):
    detail: str


class Browse(msgspec.Struct):
    text: str
    tags: list[str] = []
    page: int = 1


def build_api(**options) -> BoltAPI:
    api = BoltAPI(title="Shop", version="2.1", description="Things to buy.", **options)

    @api.get("/items/{item_id}", tags=["items"], responses={404: NotFound})
    async def get_item(item_id: int, verbose: bool = False, x_trace: Annotated[str, Header()] = "",
                       theme: Annotated[str | None, Cookie()] = None) -> Stored:
        """One item.

        Looked up by its id.
        """
        return Stored(item_id, Item("pen", 1.5))

    @api.get("/items")
    async def list_items(ids: Annotated[list[int], Query()], page: int = 1) -> list[Stored]:
        return []

    @api.post("/items", status_code=201, guards=[IsAuthenticated()], auth=[JWTAuthentication(secret=SECRET)])
    async def create_item(item: Item) -> Stored:
        return Stored(1, item)

    @api.post("/search")
    async def search(query: Filter) -> list[str]:
        return []

    @rate_limit(5)
    @api.put("/items/{item_id}/review", auth=[APIKeyAuthentication(["k1"], header="x-key"),
                                              SessionAuthentication()])
    async def review(item_id: int, review: Review) -> Review:
        return review

    @api.get("/files/{rest:path}")
    async def files(rest: str) -> str:
        return rest

    @api.get("/page")
    async def page() -> HTMLResponse:
        return HTMLResponse("<p>hi</p>")

    @api.get("/browse")
    async def browse(request, filters: Annotated[Browse, Query()]) -> list[Item]:
        return []

    @api.get("/cheap", response_model=list[Item])
    async def cheap():
        return [{"name": "pen", "price": 1.0, "secret": "never sent"}]

    @api.get("/hidden", include_in_schema=False)
    async def hidden() -> dict:
        return {}

    return api


def operation(document: dict, method: str, path: str) -> dict:
    return document["paths"][path][method]


def params(op: dict) -> dict[tuple[str, str], dict]:
    return {(p["in"], p["name"]): p for p in op.get("parameters", [])}


@pytest.fixture
def document() -> dict:
    return build_api().openapi()


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"] == "3.1.0"
    assert document["info"] == {"title": "Shop", "version": "2.1", "description": "Things to buy."}
    validate(document, cls=OpenAPIV31SpecValidator)


def test_path_query_header_and_cookie_parameters_with_types_and_defaults(document):
    op = operation(document, "get", "/items/{item_id}")
    found = params(op)
    assert found[("path", "item_id")] == {"name": "item_id", "in": "path", "required": True,
                                          "schema": {"type": "integer"}}
    assert found[("query", "verbose")]["schema"] == {"type": "boolean", "default": False}
    assert found[("query", "verbose")]["required"] is False
    assert found[("header", "x-trace")]["schema"] == {"type": "string", "default": ""}
    assert found[("cookie", "theme")] == {"name": "theme", "in": "cookie", "required": False,
                                          "schema": {"type": "string"}}
    assert op["summary"] == "One item." and op["description"] == "Looked up by its id."
    assert op["tags"] == ["items"] and op["operationId"] == "get_item"


def test_query_lists_and_required_query(document):
    found = params(operation(document, "get", "/items"))
    assert found[("query", "ids")] == {"name": "ids", "in": "query", "required": True, "style": "form",
                                       "explode": True, "schema": {"type": "array", "items": {"type": "integer"}}}
    assert found[("query", "page")]["schema"] == {"type": "integer", "default": 1}


def test_a_query_model_is_one_parameter_per_field_and_the_request_is_none(document):
    op = operation(document, "get", "/browse")
    assert op["parameters"] == [
        {"name": "text", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "tags", "in": "query", "required": False, "style": "form", "explode": True,
         "schema": {"type": "array", "items": {"type": "string"}, "default": []}},
        {"name": "page", "in": "query", "required": False, "schema": {"type": "integer", "default": 1}},
    ]


def test_response_model_is_the_documented_response(document):
    schema = operation(document, "get", "/cheap")["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/Item"}}


def test_catch_all_path_parameter(document):
    op = operation(document, "get", "/files/{rest}")
    assert params(op)[("path", "rest")]["description"] == "The rest of the path; may contain '/'."
    assert op["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}
    assert "422" not in op["responses"]  # a str segment is always there and always a string


def test_bodies_and_responses_from_dataclass_struct_typeddict_and_pydantic_models(document):
    schemas = document["components"]["schemas"]
    create = operation(document, "post", "/items")
    assert create["requestBody"] == {"required": True, "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}}
    assert create["responses"]["201"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Stored"}
    assert "200" not in create["responses"]
    assert schemas["Item"]["required"] == ["name", "price"]
    assert schemas["Stored"]["properties"]["item"] == {"$ref": "#/components/schemas/Item"}
    assert operation(document, "post", "/search")["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Filter"}
    review = operation(document, "put", "/items/{item_id}/review")
    assert review["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Review"}
    assert schemas["Review"]["properties"]["stars"]["minimum"] == 1
    listed = operation(document, "get", "/items")["responses"]["200"]["content"]["application/json"]["schema"]
    assert listed == {"type": "array", "items": {"$ref": "#/components/schemas/Stored"}}
    assert operation(document, "get", "/page")["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}}
    assert operation(document, "get", "/items/{item_id}")["responses"]["404"]["content"]["application/json"] == {
        "schema": {"$ref": "#/components/schemas/NotFound"}}


def test_error_responses_follow_the_inputs_and_the_security_pipeline(document):
    plain = operation(document, "get", "/page")["responses"]
    assert set(plain) == {"200", "403"}  # any route refuses a disallowed Origin
    read = operation(document, "get", "/items/{item_id}")["responses"]
    assert {"422", "403"} <= set(read) and "401" not in read and "400" not in read
    create = operation(document, "post", "/items")["responses"]
    assert {"201", "400", "401", "403", "413", "422"} == set(create)
    assert "WWW-Authenticate" in create["401"]["headers"]
    assert create["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ValidationError"}
    assert document["components"]["schemas"]["ValidationError"]["properties"]["errors"]["items"]["required"] == [
        "loc", "msg"]
    review = operation(document, "put", "/items/{item_id}/review")["responses"]
    assert review["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert review["429"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/RateLimited"}
    assert document["components"]["schemas"]["Error"]["required"] == ["detail"]


def test_security_schemes_and_per_route_requirements(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["jwt"]["type"] == "http" and schemes["jwt"]["scheme"] == "bearer"
    assert schemes["jwt"]["bearerFormat"] == "JWT"
    assert schemes["api_key"] == {"type": "apiKey", "in": "header", "name": "x-key", "description": "An API key."}
    assert {k: schemes["session"][k] for k in ("type", "in", "name")} == {
        "type": "apiKey", "in": "cookie", "name": "sessionid"}
    # A guard makes a credential necessary; without one, anonymous requests pass too ({}).
    assert operation(document, "post", "/items")["security"] == [{"jwt": []}]
    assert operation(document, "put", "/items/{item_id}/review")["security"] == [
        {"api_key": []}, {"session": []}, {}]
    assert "security" not in operation(document, "get", "/page")


def test_jwt_from_query_and_cookie_and_a_backend_describing_itself():
    class Ticket:
        openapi_security = {"ticket": {"type": "apiKey", "in": "query", "name": "ticket"}}

        async def authenticate(self, conn):
            return None

    api = BoltAPI(auth=[JWTAuthentication(secret=SECRET, header=None, query_param="token", cookie="jwt"), Ticket()],
                  guards=[IsAuthenticated()])

    @api.get("/me")
    async def me() -> dict:
        return {}

    document = api.openapi()
    validate(document, cls=OpenAPIV31SpecValidator)
    schemes = document["components"]["securitySchemes"]
    assert {k: schemes["jwt_query"][k] for k in ("in", "name")} == {"in": "query", "name": "token"}
    assert {k: schemes["jwt_cookie"][k] for k in ("in", "name")} == {"in": "cookie", "name": "jwt"}
    assert operation(document, "get", "/me")["security"] == [{"jwt_query": []}, {"jwt_cookie": []}, {"ticket": []}]


def test_two_backends_of_a_kind_get_two_names():
    api = BoltAPI()

    @api.get("/a", auth=[APIKeyAuthentication(["k"], header="x-a")])
    async def a() -> None: ...

    @api.get("/b", auth=[APIKeyAuthentication(["k"], header="x-b")])
    async def b() -> None: ...

    document = api.openapi()
    assert document["components"]["securitySchemes"]["api_key_2"]["name"] == "x-b"
    assert operation(document, "get", "/b")["security"] == [{"api_key_2": []}, {}]


ThingA = dataclasses.make_dataclass("Thing", [("a", int)])
ThingB = dataclasses.make_dataclass("Thing", [("b", str)])


def test_two_models_with_one_name_are_a_clear_error():
    api = BoltAPI()

    @api.post("/one")
    async def one(thing: ThingA) -> None: ...  # type: ignore[valid-type]

    @api.post("/two")
    async def two(thing: ThingB) -> None: ...  # type: ignore[valid-type]

    with pytest.raises(TypeError, match="two different models are both named 'Thing'"):
        api.openapi()


@dataclasses.dataclass
class Book:
    title: str  # a field named like the keyword pydantic adds to each field's schema
    price: float


class BookReview(pydantic.BaseModel):
    book: Book
    stars: int


def test_a_class_described_by_msgspec_and_by_pydantic_is_one_component():
    # Book is read by msgspec on /books and by pydantic inside BookReview: two descriptions, one model.
    api = BoltAPI()

    @api.post("/books")
    async def add(book: Book) -> None: ...

    @api.post("/reviews")
    async def review(review: BookReview) -> None: ...

    document = api.openapi()
    validate(document, cls=OpenAPIV31SpecValidator)
    assert {"Book", "BookReview"} <= set(document["components"]["schemas"])
    assert set(document["components"]["schemas"]["Book"]["properties"]) == {"title", "price"}


@pytest.mark.asyncio
async def test_what_the_routes_answer_fits_what_the_document_says(document):
    def check(response, method: str, path: str, status: int) -> None:
        assert response.status_code == status, response.json()
        declared = operation(document, method, path)["responses"][str(status)]
        schema = declared["content"]["application/json"]["schema"]
        jsonschema.validate(response.json(), {**schema, "components": document["components"]})

    configure_django()  # SessionAuthentication reads the session cookie's name
    client = AsyncTestClient(build_api())
    check(await client.get("/items/7"), "get", "/items/{item_id}", 200)
    check(await client.get("/items/seven"), "get", "/items/{item_id}", 422)
    check(await client.get("/browse?text=a&tags=x&tags=y"), "get", "/browse", 200)
    check(await client.get("/browse"), "get", "/browse", 422)
    check(await client.get("/cheap"), "get", "/cheap", 200)
    check(await client.post("/items", json={"name": "pen", "price": 2}), "post", "/items", 401)
    check(await client.post("/items", json={"name": "pen", "price": 2}, headers={"Authorization": "Bearer nope"}),
          "post", "/items", 401)
    invalid = await client.put("/items/1/review", json={"stars": 9})
    check(invalid, "put", "/items/{item_id}/review", 422)
    assert invalid.json()["errors"][0]["loc"] == "body.stars"
    check(await client.put("/items/1/review", json={"stars": 5}), "put", "/items/{item_id}/review", 200)
    for _ in range(6):
        limited = await client.put("/items/1/review", json={"stars": 5})
    check(limited, "put", "/items/{item_id}/review", 429)
    check(await client.get("/page", headers={"Origin": "https://elsewhere.example"}), "get", "/page", 403)


@pytest.mark.asyncio
async def test_served_at_openapi_json_and_not_listed_itself():
    api = build_api()
    response = await AsyncTestClient(api).get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    served = response.json()
    assert served == api.openapi()
    assert "/hidden" not in served["paths"]
    assert not [path for path in served["paths"] if path.startswith(("/openapi.json", "/asyncapi.json", "/docs"))]


@pytest.mark.asyncio
async def test_urls_are_configurable_and_can_be_switched_off():
    api = build_api(openapi_url="/api/schema.json", docs_url="/api/docs")
    client = AsyncTestClient(api)
    assert (await client.get("/api/schema.json")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 404
    page = await client.get("/api/docs")
    assert 'data-openapi="/api/schema.json"' in page.text
    off = AsyncTestClient(build_api(openapi_url=None, asyncapi_url=None, docs_url=None))
    for path in ("/openapi.json", "/asyncapi.json", "/docs"):
        assert (await off.get(path)).status_code == 404
    with pytest.raises(ValueError, match="docs_url needs the OpenAPI document"):
        BoltAPI(openapi_url=None)


@pytest.mark.asyncio
async def test_schema_routes_pass_the_apis_guards():
    api = BoltAPI(auth=[JWTAuthentication(secret=SECRET)], guards=[IsAuthenticated()])
    response = await AsyncTestClient(api).get("/openapi.json")
    assert response.status_code == 401 and response.json() == {"detail": "Authentication required"}


@pytest.mark.asyncio
async def test_root_path_becomes_the_server_url():
    api = build_api()
    assert "servers" not in api.openapi()
    document = api.openapi(root_path="/shop")
    assert document["servers"] == [{"url": "/shop"}]
    validate(document, cls=OpenAPIV31SpecValidator)


def test_a_return_type_that_may_be_a_response_class_is_described():
    # What the route accepts at run time; one such route broke the whole document.
    api = BoltAPI()

    class Item(msgspec.Struct):
        id: int

    @api.get("/a")
    async def a() -> Item | JSONResponse:
        return Item(1)

    @api.get("/b")
    async def b() -> dict | HTMLResponse:
        return {}

    paths = api.openapi()["paths"]
    assert paths["/a"]["get"]["responses"]["200"]["content"] == {
        "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}}
    assert paths["/b"]["get"]["responses"]["200"]["content"] == {
        "text/html": {"schema": {"type": "string"}}, "application/json": {"schema": {"type": "object"}}}


@pytest.mark.asyncio
async def test_docs_page_and_its_assets_come_from_the_installed_package():
    client = AsyncTestClient(build_api())
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text
    bundle = await client.get("/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and bundle.headers["content-type"].startswith("text/javascript")
    assert b"SwaggerUIBundle" in bundle.content
    assert (await client.get("/docs/swagger-ui.css")).headers["content-type"].startswith("text/css")
    assert b"SwaggerUIBundle(" in (await client.get("/docs/init.js")).content
    for name in ("index.html", "..%2Fcore.py", "swagger-editor-bundle.js"):
        assert (await client.get(f"/docs/{name}")).status_code == 404


def test_the_docs_page_claims_only_its_own_files_below_its_url():
    # Mounted beside Django, every path bolt handles is bolt's: /docs/guide stays a Django URL.
    api = build_api()
    served = [path for path in ("/docs", "/docs/init.js", "/docs/swagger-ui.css", "/docs/guide", "/docs/a.js")
              if api.handles({"type": "http", "method": "GET", "path": path})]
    assert served == ["/docs", "/docs/init.js", "/docs/swagger-ui.css"]


@pytest.mark.asyncio
async def test_docs_page_without_swagger_ui_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(apidocs, "SWAGGER_UI_PACKAGE", "bolt_no_such_package")
    client = AsyncTestClient(build_api())
    page = await client.get("/docs")
    assert page.status_code == 501
    assert "pip install swagger-ui-py" in page.text and 'href="/openapi.json"' in page.text
    assert (await client.get("/docs/swagger-ui-bundle.js")).status_code == 404
    assert (await client.get("/openapi.json")).status_code == 200


@pytest.mark.asyncio
async def test_the_served_document_is_built_again_only_when_routes_or_their_security_change():
    from django.test import override_settings

    configure_django()
    api = BoltAPI()
    client = AsyncTestClient(api)

    @api.get("/one")
    async def one() -> None: ...

    first = await client.get("/openapi.json")
    again = await client.get("/openapi.json")
    assert first.content == again.content and len(api.docs._documents) == 1

    @api.get("/two")
    async def two() -> None: ...

    assert "/two" in (await client.get("/openapi.json")).json()["paths"]
    # A settings change drops the compiled policies, and so the cached document.
    with override_settings(BOLT_AUTHENTICATION_CLASSES=[APIKeyAuthentication(["k"])]):
        document = (await client.get("/openapi.json")).json()
        assert operation(document, "get", "/two")["security"] == [{"api_key": []}, {}]
    assert "security" not in operation((await client.get("/openapi.json")).json(), "get", "/two")
    cached = len(api.docs._documents)
    for n in range(40):  # each client names its Host: one AsyncAPI document serves them all
        served = (await client.get("/asyncapi.json", headers={"host": f"h{n}.example"})).json()
        assert served["servers"] == {"default": {"host": f"h{n}.example", "protocol": "ws"}}
    assert len(api.docs._documents) == cached + 1
