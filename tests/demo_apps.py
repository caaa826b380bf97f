"""Demo apps shared by several test files (the guide's own examples stay verbatim in test_guide_examples.py)."""
from __future__ import annotations

from typing import Any

from bolt import BoltAPI, WebSocket


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
