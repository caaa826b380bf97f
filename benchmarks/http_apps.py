"""The apps benchmarks/http_bench.py serves, one factory each (`uvicorn --factory http_apps:NAME`).

Every app answers `GET /hello` with `{"hello": "world"}` as JSON; the frameworks also take
`POST /items`, a JSON body decoded into a typed model and answered as JSON.
"""
import dataclasses
from typing import Any

BODY = b'{"hello":"world"}'


@dataclasses.dataclass
class Item:
    name: str
    price: float
    tags: list[str]


def bare() -> Any:
    """The ceiling: a raw ASGI app sending a prepared response, with nothing in between."""
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    body = {"type": "http.response.body", "body": BODY}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send(start)
        await send(body)

    return app


def bolt() -> Any:
    from bolt import BoltAPI

    api = BoltAPI()

    @api.get("/hello")
    async def hello():
        return {"hello": "world"}

    @api.post("/items")
    async def create(item: Item):
        return {"name": item.name, "price": item.price, "tags": item.tags}

    return api


def starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def hello(request: Any) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    async def create(request: Any) -> JSONResponse:
        item = Item(**await request.json())
        return JSONResponse({"name": item.name, "price": item.price, "tags": item.tags})

    return Starlette(routes=[Route("/hello", hello), Route("/items", create, methods=["POST"])])


def fastapi() -> Any:
    import pydantic
    from fastapi import FastAPI

    class PydanticItem(pydantic.BaseModel):
        name: str
        price: float
        tags: list[str]

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/hello")
    async def hello():
        return {"hello": "world"}

    @app.post("/items")
    async def create(item: PydanticItem):
        return {"name": item.name, "price": item.price, "tags": item.tags}

    return app
