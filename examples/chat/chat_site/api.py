"""The example's bolt routes: an echo endpoint and a room chat."""
from bolt import BoltAPI, WebSocket
from bolt.realtime.names import InvalidRoomName
from bolt.websocket import CloseCode, WebSocketClose

api = BoltAPI()

MAX_NAME = 32
MAX_TEXT = 2000


@api.websocket("/ws/echo")
async def echo(websocket: WebSocket):
    """Send every text message straight back."""
    await websocket.accept()
    async for message in websocket.iter_text():
        await websocket.send_text(f"Echo: {message}")


@api.websocket("/ws/chat/{room}")
async def chat(websocket: WebSocket, room: str):
    """Join `room` and relay each text message to everyone in it, the sender included."""
    name = (websocket.query_params.get("name") or "guest").strip()[:MAX_NAME] or "guest"
    await websocket.accept()
    try:
        await websocket.join(room)  # left automatically when the connection ends
    except InvalidRoomName:
        raise WebSocketClose(CloseCode.POLICY_VIOLATION, "invalid room name") from None
    async for text in websocket.iter_text():
        await api.hub.broadcast(room, {"room": room, "from": name, "text": text[:MAX_TEXT]})


@api.get("/api/rooms/{room}")
async def room_info(room: str):
    """How many connections are in `room` right now."""
    try:
        return {"room": room, "members": await api.hub.count(room)}
    except InvalidRoomName:
        return {"room": room, "members": 0}
