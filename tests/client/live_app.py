"""A real bolt server for bolt.js's live test: `api.realtime("/ws/rt")` and, on the same origin, the
test pages and bolt.js itself. Run with uvicorn: `uvicorn live_app:app` (tests/client on sys.path).

Rooms starting with "h:" keep a history; "staff" is refused to everyone. `/ws/rl` limits each
connection to 5 messages a second, 10 at once; `/ws/rd` to 5 a second, 3 at once, answering the
extra ones `rate_limited` instead of closing. `/ws/none` is made with `subprotocol=None`, and
`/ws/echo` (not a room endpoint) accepts the last subprotocol the client offers. With
BOLT_LIVE_PUBSUB set (a redis:// URL) the hub uses that backend instead of the process's memory.
"""
from __future__ import annotations

import mimetypes
import os
from pathlib import Path

from bolt import BoltAPI, WebSocket
from bolt.middleware import rate_limit
from bolt.websocket import WebSocketDisconnect

HERE = Path(__file__).resolve().parent
ROOTS = {"/client/": HERE, "/static/": HERE.parent.parent / "bolt" / "static"}

api = BoltAPI(pubsub=os.environ.get("BOLT_LIVE_PUBSUB") or None)
api.hub.keep_history("h:", size=100)
api.realtime("/ws/rt", can_join=lambda websocket, room: room != "staff", can_publish=True)
api.realtime("/ws/rl", can_join=True, can_publish=True, rate_limit=rate_limit(messages=(5, 10)))
api.realtime("/ws/rd", can_join=True, can_publish=True,
             rate_limit=rate_limit(messages=(5, 3), on_message_limit="drop"))
api.realtime("/ws/none", can_join=True, can_publish=True, subprotocol=None)


@api.websocket("/ws/echo")
async def echo_protocol(websocket: WebSocket) -> None:
    offered = websocket.subprotocols
    await websocket.accept(offered[-1] if offered else None)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        pass


def static_file(path: str) -> Path | None:
    for prefix, root in ROOTS.items():
        if path.startswith(prefix):
            candidate = (root / path[len(prefix):]).resolve()
            if candidate.is_file() and candidate.is_relative_to(root.resolve()):
                return candidate
    return None


async def app(scope, receive, send):
    if scope["type"] != "http":
        return await api(scope, receive, send)
    found = static_file(scope["path"])
    if found is None:
        body, status, kind = b"not found", 404, "text/plain"
    else:
        body, status = found.read_bytes(), 200
        kind = "text/javascript" if found.suffix == ".js" else (mimetypes.guess_type(found.name)[0] or "text/plain")
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", kind.encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})
