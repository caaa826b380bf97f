"""django-bolt's own server (`manage.py runbolt`: Actix in Rust) with the routes the benchmarks measure.

    python benchmarks/django_bolt_server.py PORT

Needs `pip install django-bolt`. The Django project is this file: settings are configured in
process and `BOLT_API` points runbolt at the `api` below, so nothing is written to disk. One
process with one Actix worker, as bolt runs under one uvicorn worker; the benchmarks pin it to a
core. Its request logging is off, as the access logs of bolt's servers are; its
compression never applies (the responses are small, and the clients accept no encoding).

    GET /hello          {"hello": "world"}                      (http_bench.py)
    POST /items         a JSON body decoded into a msgspec Struct (http_bench.py)
    WS /ws/open         accept, wait for the close               (handshake_bench.py)
    WS /ws/secure       the same behind JWT auth + IsAuthenticated (handshake_bench.py)
    WS /                echo every message back                  (echo_bench.py)
"""
# No `from __future__ import annotations`: django-bolt reads the handlers' annotations, local names included.

import io
import sys
from typing import Any

import django
import msgspec
from django.conf import settings

from _load import JWT_SECRET

api: Any = None  # the BoltAPI runbolt finds through settings.BOLT_API


class Item(msgspec.Struct):
    name: str
    price: float
    tags: list[str]


def build_api() -> Any:
    from django_bolt import BoltAPI
    from django_bolt.auth import IsAuthenticated, JWTAuthentication
    from django_bolt.websocket import WebSocket, WebSocketDisconnect

    app = BoltAPI(enable_logging=False, compression=False)

    @app.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @app.post("/items")
    async def create(item: Item) -> dict[str, Any]:
        return {"name": item.name, "price": item.price, "tags": item.tags}

    async def hold(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive()
        except WebSocketDisconnect:
            pass

    @app.websocket("/ws/open")
    async def open_route(websocket: WebSocket) -> None:
        await hold(websocket)

    @app.websocket("/ws/secure", auth=[JWTAuthentication(secret=JWT_SECRET)], guards=[IsAuthenticated()])
    async def secure(websocket: WebSocket) -> None:
        await hold(websocket)

    @app.websocket("/")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message.get("text") is not None:
                    await websocket.send_text(message["text"])
                else:
                    await websocket.send_bytes(message["bytes"])
        except WebSocketDisconnect:
            pass

    return app


def main(port: int) -> None:
    global api
    settings.configure(SECRET_KEY="django-bolt-benchmark-" + "x" * 40, DEBUG=False, ALLOWED_HOSTS=["*"],
                       INSTALLED_APPS=["django_bolt"], ROOT_URLCONF=__name__, DATABASES={}, USE_TZ=True,
                       BOLT_API=[f"{__name__}:api"])
    django.setup()
    api = build_api()
    from django.core.management import call_command

    try:  # its startup lines go nowhere, as uvicorn's do at --log-level warning
        call_command("runbolt", host="127.0.0.1", port=port, processes=1, workers=1, no_admin=True,
                     stdout=io.StringIO())
    except KeyboardInterrupt:  # the benchmarks stop their servers with SIGINT
        pass


urlpatterns: list[Any] = []  # ROOT_URLCONF: Django's own URLs are not served

if __name__ == "__main__":
    main(int(sys.argv[1]))
