"""A chat app for the multi-process tests, configured from the environment.

BOLT_TEST_REDIS_URL      the Redis the workers share
BOLT_TEST_PRESENCE_TTL   presence TTL in seconds (short in tests)
BOLT_TEST_SEND_QUEUE     per-connection send queue
BOLT_TEST_SEND_TIMEOUT   send timeout in seconds
"""
from __future__ import annotations

import os
from typing import Any

from bolt import BoltAPI, WebSocket

api = BoltAPI(
    pubsub=os.environ["BOLT_TEST_REDIS_URL"],
    presence_ttl=float(os.environ.get("BOLT_TEST_PRESENCE_TTL", "30")),
    send_queue=int(os.environ.get("BOLT_TEST_SEND_QUEUE", "256")),
    send_timeout=float(os.environ.get("BOLT_TEST_SEND_TIMEOUT", "10")),
)
api.hub.keep_history("h:", size=100)
# The room protocol on the same hub: every room open to everyone.
api.realtime("/rt", can_join=True, can_publish=True)


@api.websocket("/chat/{room}")
async def chat(websocket: WebSocket, room: str) -> None:
    """Join `room` (resuming after ?since=), say "joined", then broadcast every text to the room."""
    await websocket.accept()
    since = websocket.query_params.get("since")
    await websocket.join(room, since=int(since) if since is not None else None)
    await websocket.send_json({"joined": room, "connection": api.hub.connection_id(websocket)})
    async for text in websocket.iter_text():
        await api.hub.broadcast(room, text)


@api.get("/broadcast/{room}")
async def broadcast(room: str, text: str) -> dict[str, Any]:
    return {"id": await api.hub.broadcast(room, text)}


@api.get("/flood/{room}")
async def flood(room: str, count: int, size: int) -> dict[str, Any]:
    """Broadcast `count` messages of `size` bytes as fast as the hub takes them, then "end"."""
    for n in range(count):
        await api.hub.broadcast(room, f"{n:08d}".ljust(size, "x"))
    await api.hub.broadcast(room, "end")
    return {"sent": count}


@api.get("/presence/{room}")
async def presence(room: str) -> dict[str, Any]:
    members = await api.hub.members(room)
    return {"count": len(members), "members": sorted(m.connection_id for m in members)}


@api.get("/node")
async def node() -> dict[str, Any]:
    """Which worker answered: its hub's node id (the prefix of its connection ids) and its pid."""
    return {"node": api.hub.node_id, "pid": os.getpid()}


@api.get("/health")
async def health() -> dict[str, Any]:
    return api.hub.health()


@api.get("/rss")
async def rss() -> dict[str, Any]:
    with open("/proc/self/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {"rss_kib": kib}
