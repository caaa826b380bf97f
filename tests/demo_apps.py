"""Demo apps shared by several test files (the guide's own examples stay verbatim in test_guide_examples.py).

Each helper adds its route to the `api` it is given (a plain BoltAPI by default) and returns that api, so a
test can add the routes it needs beside it.
"""
from __future__ import annotations

from typing import Any

from bolt import BoltAPI, WebSocket
from bolt.auth import IsAuthenticated, JWTAuthentication


def room_api(api: BoltAPI | None = None, members: list[WebSocket] | None = None, **route_options: Any) -> BoltAPI:
    """`api` (a plain BoltAPI by default) with /ws: join "room", then read and ignore text until the client leaves.

    `route_options` go to the route (per-route outbox settings, say); `members`, when given, collects every
    WebSocket once it has joined.
    """
    api = api if api is not None else BoltAPI()

    @api.websocket("/ws", **route_options)
    async def handler(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("room")
        if members is not None:
            members.append(websocket)
        async for _ in websocket.iter_text():
            pass

    return api


def echo_api(api: BoltAPI | None = None, path: str = "/ws") -> BoltAPI:
    """`api` with a text echo at `path`: every text message comes back as it was sent."""
    api = api if api is not None else BoltAPI()

    @api.websocket(path)
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(text)

    return api


def member_api(api: BoltAPI | None = None, path: str = "/ws/{room}") -> BoltAPI:
    """`api` with `path` (it names a {room}): join that room, send "joined", then ignore text until the client leaves."""
    api = api if api is not None else BoltAPI()

    @api.websocket(path)
    async def member(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.join(room)
        await websocket.send_text("joined")
        async for _ in websocket.iter_text():
            pass

    return api


def jwt_room_api(secret: str) -> BoltAPI:
    """A BoltAPI with the room protocol at /rt behind JWT authentication (HS256 with `secret`): an
    authenticated client may join and publish to any room, and refresh its token in band."""
    api = BoltAPI()
    api.realtime("/rt", auth=[JWTAuthentication(secret=secret)], guards=[IsAuthenticated()], can_join=True,
                 can_publish=True)
    return api
