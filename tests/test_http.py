"""HTTP routes: dispatch, argument injection, responses, errors and bad input."""
import asyncio
import dataclasses
from typing import Annotated, TypedDict

import pytest

from bolt import (
    BoltAPI,
    Cookie,
    Header,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    Path,
    PlainTextResponse,
    Query,
    Request,
    Response,
    StreamingResponse,
    WebSocket,
)
from bolt.testing import AsyncTestClient, TestClient
from uvicorn_server import serve


@dataclasses.dataclass
class Item:
    name: str
    price: float
    tags: list[str] = dataclasses.field(default_factory=list)


class Patch(TypedDict):
    name: str


def build_api() -> BoltAPI:
    api = BoltAPI(max_body_size=1024)

    @api.get("/hello")
    async def hello():
        return {"hello": "world"}

    @api.get("/search")
    async def search(q: str, limit: int = 10, tag: Annotated[list[str], Query()] = []):  # noqa: B006 (the default under test)
        return {"q": q, "limit": limit, "tags": tag}

    @api.get("/whoami")
    async def whoami(user_agent: Annotated[str, Header()], session: Annotated[str | None, Cookie("sid")] = None):
        return {"agent": user_agent, "session": session}

    @api.post("/items", status_code=201)
    async def create(item: Item):
        return {"name": item.name, "price": item.price, "tags": item.tags}

    @api.patch("/items/{item_id}")
    async def patch(item_id: int, body: Patch):
        return {"id": item_id, **body}

    @api.put("/raw")
    async def raw(request: Request):
        return {"method": request.method, "json": await request.json(), "client": request.client[0]}

    @api.delete("/items/{item_id}")
    async def delete(item_id: int):
        if item_id == 0:
            raise HTTPException(404, "Item not found", headers={"x-reason": "missing"})
        return Response(status_code=204)

    @api.get("/text")
    def text():  # sync handlers run in a worker thread
        return "plain"

    @api.get("/html")
    async def html():
        return HTMLResponse("<b>hi</b>")

    @api.get("/stream")
    async def stream():
        async def chunks():
            for i in range(3):
                yield f"{i},"
        return StreamingResponse(chunks(), media_type="text/plain")

    @api.get("/custom")
    async def custom():
        return JSONResponse({"ok": True}, status_code=202, headers={"X-Custom": "1"})

    @api.get("/boom")
    async def boom():
        raise RuntimeError("secret internals")

    return api


@pytest.fixture
def client():
    return AsyncTestClient(build_api(), raise_server_exceptions=False)


@pytest.mark.asyncio
async def test_json_and_status(client):
    response = await client.get("/hello")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"hello": "world"}
    response = await client.post("/items", json={"name": "pen", "price": 2})
    assert response.status_code == 201
    assert response.json() == {"name": "pen", "price": 2.0, "tags": []}


@pytest.mark.asyncio
async def test_unknown_path_404_and_wrong_method_405(client):
    response = await client.get("/nope")
    assert (response.status_code, response.json()) == (404, {"detail": "Not Found"})
    response = await client.post("/hello")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.json() == {"detail": "Method Not Allowed"}
    response = await client.get("/items/1")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, PATCH"


@pytest.mark.asyncio
async def test_query_header_cookie_injection(client):
    assert (await client.get("/search", params={"q": "x"})).json() == {"q": "x", "limit": 10, "tags": []}
    response = await client.get("/search?q=y&limit=3&tag=a&tag=b")
    assert response.json() == {"q": "y", "limit": 3, "tags": ["a", "b"]}
    response = await client.get("/search")
    assert (response.status_code, response.json()) == (422, {"detail": "Missing query parameter 'q'"})
    response = await client.get("/search?q=x&limit=many")
    assert response.status_code == 422 and "'limit'" in response.json()["detail"]
    response = await client.get("/whoami", headers={"User-Agent": "t"}, cookies={"sid": "abc"})
    assert response.json() == {"agent": "t", "session": "abc"}
    response = await client.get("/whoami")
    assert response.status_code == 422 and "user-agent" in response.json()["detail"]


@pytest.mark.asyncio
async def test_body_validation(client):
    response = await client.post("/items", json={"name": "pen", "price": "cheap"})
    assert response.status_code == 422
    assert response.json() == {"detail": "Invalid request body: body.price: Expected `float`, got `str`",
                               "errors": [{"loc": "body.price", "msg": "Expected `float`, got `str`"}]}
    response = await client.post("/items", json={"price": 1})
    assert response.json()["detail"] == "Invalid request body: body.name: Object missing required field `name`"
    response = await client.patch("/items/3", json={"name": "new"})
    assert response.json() == {"id": 3, "name": "new"}
    response = await client.post("/items", content=b'{"name": ')
    assert response.status_code == 400 and response.json()["detail"].startswith("Invalid JSON body")
    response = await client.post("/items")
    assert (response.status_code, response.json()) == (422, {"detail": "Missing JSON body"})


@pytest.mark.asyncio
async def test_request_object(client):
    response = await client.put("/raw", json=[1, 2])
    assert response.json() == {"method": "PUT", "json": [1, 2], "client": "testclient"}
    response = await client.put("/raw", content=b"\xff\xfe")
    assert response.status_code == 400


@pytest.mark.asyncio
async def test_oversized_body_is_413(client):
    response = await client.put("/raw", json={"x": "a" * 2000})
    assert (response.status_code, response.json()) == (413, {"detail": "Request body too large"})


@pytest.mark.asyncio
async def test_http_exception_and_empty_response(client):
    response = await client.delete("/items/0")
    assert (response.status_code, response.json()) == (404, {"detail": "Item not found"})
    assert response.headers["x-reason"] == "missing"
    response = await client.delete("/items/5")
    assert response.status_code == 204 and response.content == b""


@pytest.mark.asyncio
async def test_http_exception_with_a_status_of_no_registry():
    api = BoltAPI()

    @api.get("/gone")
    async def gone():
        raise HTTPException(499)

    response = await AsyncTestClient(api).get("/gone")
    assert (response.status_code, response.json()) == (499, {"detail": "Client Error"})
    with pytest.raises(ValueError, match="42 is not an HTTP status code"):
        HTTPException(42)


@pytest.mark.asyncio
async def test_response_classes(client):
    response = await client.get("/text")
    assert (response.text, response.headers["content-type"]) == ("plain", "text/plain; charset=utf-8")
    assert (await client.get("/html")).headers["content-type"] == "text/html; charset=utf-8"
    assert (await client.get("/stream")).text == "0,1,2,"
    response = await client.get("/custom")
    assert (response.status_code, response.headers["x-custom"], response.json()) == (202, "1", {"ok": True})


@pytest.mark.asyncio
async def test_head_uses_get_without_body(client):
    response = await client.head("/hello")
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == str(len(b'{"hello":"world"}'))


@pytest.mark.asyncio
async def test_unexpected_error_is_a_generic_500(client, caplog):
    response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "Internal Server Error"}
    assert "secret" not in response.text
    assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


@pytest.mark.asyncio
async def test_handler_error_raises_in_tests_by_default():
    with pytest.raises(RuntimeError, match="secret internals"):
        await AsyncTestClient(build_api()).get("/boom")


@pytest.mark.asyncio
async def test_bad_input_never_500(client):
    # Non-UTF-8 query bytes, non-ASCII header bytes and malformed cookies are all tolerated.
    api = BoltAPI()

    @api.get("/echo")
    async def echo(request: Request):
        return {"q": dict(request.query_params), "cookies": request.cookies, "agent": request.headers.get("x-a")}

    c = AsyncTestClient(api)
    response = await c.get("/echo?q=%ff%fe&x=%zz")
    assert response.status_code == 200 and response.json()["q"]["q"] == "\ufffd\ufffd"
    response = await c.get("/echo", headers=[("x-a", "caf\u00e9")], cookies=None)
    assert response.json()["agent"] == "caf\u00e9"
    response = await c.get("/echo", headers=[("cookie", 'a=1; ;=x; broken; b="q\\"t"; c=2')])
    assert response.json()["cookies"] == {"a": "1", "b": 'q"t', "c": "2"}
    response = await c.get("/echo/\udcff")
    assert response.status_code == 404


def test_sync_test_client_and_lifespan_hooks():
    events = []
    api = build_api()
    api.on_startup(lambda: events.append("up"))

    @api.on_shutdown
    async def down():
        events.append("down")

    with TestClient(api) as client:
        assert client.get("/hello").json() == {"hello": "world"}
        assert client.get("/text").text == "plain"

    async def run_lifespan():
        messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
        sent = []

        async def receive():
            return next(messages)

        async def send(message):
            sent.append(message["type"])

        await api({"type": "lifespan"}, receive, send)
        return sent

    import asyncio
    assert asyncio.run(run_lifespan()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["up", "down"]


def test_plain_text_response_default_media_type():
    assert PlainTextResponse("x").raw_headers[-1] == (b"content-type", b"text/plain; charset=utf-8")


# -- handler conventions ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_unannotated_request_parameter_is_the_request():
    api = BoltAPI()

    @api.get("/plain")
    async def plain(request):
        return {"request": request.query_params.get("request"), "type": type(request).__name__}

    @api.get("/items/{item_id}")
    def later(item_id: int, request, q: str = ""):  # sync, and not first: still the Request
        return {"id": item_id, "path": request.path, "q": q}

    client = AsyncTestClient(api)
    assert (await client.get("/plain")).json() == {"request": None, "type": "Request"}
    # A query parameter named like the request never replaces it.
    assert (await client.get("/plain?request=x")).json() == {"request": "x", "type": "Request"}
    assert (await client.get("/items/3?q=a&request=y")).json() == {"id": 3, "path": "/items/3", "q": "a"}


def test_a_request_parameter_with_another_type_is_refused_at_registration():
    api = BoltAPI()
    with pytest.raises(TypeError, match="'request' of .* is the Request"):
        @api.get("/r")
        async def view(request: str):
            return {}
    # A query parameter spelled "request" takes another name and an alias.
    @api.get("/q")
    async def query(req: Annotated[str, Query("request")]):
        return {"req": req}

    assert TestClient(api).get("/q?request=x").json() == {"req": "x"}


def test_a_connection_of_the_other_kind_is_refused_at_registration():
    api = BoltAPI()
    with pytest.raises(TypeError, match="'request' of .* is annotated WebSocket, but this route gives a Request"):
        @api.get("/r")
        async def view(request: WebSocket):
            return {}
    with pytest.raises(TypeError, match="'ws' of .* is annotated Request, but this route gives a WebSocket"):
        @api.websocket("/ws")
        async def handler(ws: Request):
            pass


def test_two_body_parameters_are_refused_at_registration():
    # Each would be decoded from the whole body, and OpenAPI can describe only one.
    api = BoltAPI()

    @dataclasses.dataclass
    class User:
        email: str

    with pytest.raises(TypeError, match="takes two request bodies, 'item' and 'user'"):
        @api.post("/buy")
        async def buy(item: Item, user: User):
            return {}


def test_path_parameters_must_match_the_template_at_registration():
    api = BoltAPI()
    before = list(api.router.routes)  # the schema routes
    with pytest.raises(TypeError, match=r"takes no parameter for \{item_id\}"):
        @api.get("/items/{item_id}")
        async def no_id():
            return {}
    with pytest.raises(TypeError, match=r"the template has no \{other\}"):
        @api.get("/things/{thing_id}")
        async def wrong(thing_id: int, other: Annotated[int, Path()]):
            return {}
    with pytest.raises(TypeError, match=r"takes no parameter for \{room\}"):
        @api.websocket("/ws/{room}")
        async def ws(websocket):
            pass
    assert api.router.routes == before  # a refused handler leaves no route behind

    @api.get("/files/{folder}/{name}")
    async def anything(**params):  # **kwargs takes every template parameter, as a string
        return params

    assert TestClient(api).get("/files/a/b").json() == {"folder": "a", "name": "b"}


def bodiless_api() -> BoltAPI:
    api = BoltAPI()

    @api.delete("/items/{item_id}", status_code=204)
    async def delete(item_id: int) -> None:
        return None

    @api.get("/cached")
    async def cached():
        raise HTTPException(304)

    @api.get("/stream-204")
    async def stream_204():
        return StreamingResponse(iter([b"never sent"]), status_code=204)

    @api.get("/hello")
    async def hello():
        return {"hello": "world"}

    return api


@pytest.mark.asyncio
@pytest.mark.parametrize("method, path, status", [("DELETE", "/items/1", 204), ("GET", "/cached", 304),
                                                  ("GET", "/stream-204", 204)])
async def test_204_and_304_have_no_content(method, path, status):
    # RFC 9110 15.3.5 / 15.4.5: no body, and no Content-Length or Content-Type describing one.
    response = await AsyncTestClient(bodiless_api()).request(method, path)
    assert (response.status_code, response.content) == (status, b"")
    assert "content-length" not in response.headers and "content-type" not in response.headers


@pytest.mark.asyncio
@pytest.mark.parametrize("http", ["h11", "httptools"])
async def test_a_204_leaves_a_keep_alive_connection_usable(http):
    from uvicorn_server import serve

    async with serve(bodiless_api(), http=http) as base:
        host, port = base.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"DELETE /items/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            first = await reader.readuntil(b"\r\n\r\n")
            second = await reader.readuntil(b"\r\n\r\n")
            body = await reader.readexactly(len(b'{"hello":"world"}'))
        writer.close()
    assert first.startswith(b"HTTP/1.1 204 ") and b"content-length" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200 ") and body == b'{"hello":"world"}'


@pytest.mark.asyncio
@pytest.mark.parametrize("http", ["bolt.protocol.http:HeadReader", "h11"])
async def test_an_endless_stream_ends_when_its_client_leaves(http):
    # Server-sent events: the generator never ends by itself; the server keeps taking sends for a
    # client that left, so only the disconnect stops it.
    ended = asyncio.Event()
    api = BoltAPI()

    @api.get("/events")
    async def events():
        async def ticks():
            try:
                while True:
                    yield "data: tick\n\n"
                    await asyncio.sleep(0.01)
            finally:
                ended.set()

        return StreamingResponse(ticks(), media_type="text/event-stream")

    async with asyncio.timeout(10), serve(api, http=http) as base:
        host, port = base.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"data: tick\n\n")
        writer.close()
        await asyncio.wait_for(ended.wait(), 2)
