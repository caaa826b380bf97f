"""An app with metrics for the multi-worker test: rooms on the memory backend, metrics at /metrics."""
from __future__ import annotations

from bolt import BoltAPI, WebSocket

api = BoltAPI(metrics="/metrics")


@api.websocket("/ws/{room}")
async def room(websocket: WebSocket, room: str) -> None:
    """Join `room` and echo every text to it."""
    await websocket.accept()
    await websocket.join(room)
    await websocket.send_text("joined")
    async for text in websocket.iter_text():
        await api.hub.broadcast(room, text)
