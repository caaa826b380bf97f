"""The chat's live side: one room-protocol endpoint, authorized per room by the Django models.

Every room of the site is the realtime room "room:<name>". Joining needs a Django login and a room
the user may open (`Room.allows`); a message is checked, stored in the database, then broadcast
with its database id, so a page can always catch up from the database when the live history
cannot help (after a server restart, say).
"""
from dataclasses import dataclass

from bolt import BoltAPI
from bolt.auth import IsAuthenticated, SessionAuthentication
from bolt.realtime import ProtocolError

from chat_site.models import Message, Room

MAX_TEXT = 2000
PREFIX = "room:"

api = BoltAPI(auth=[SessionAuthentication()], guards=[IsAuthenticated()])
# Short outages (a lost network, a server restart with Redis) are bridged by the hub's history.
api.hub.keep_history(PREFIX, size=100, ttl=600)


@dataclass
class Post:
    text: str


async def room_for(realtime_room: str) -> Room | None:
    if not realtime_room.startswith(PREFIX):
        return None
    return await Room.objects.filter(name=realtime_room[len(PREFIX):]).afirst()


async def can_join(websocket, realtime_room: str) -> bool:
    room = await room_for(realtime_room)
    return room is not None and room.allows(websocket.auth.django_user)


async def on_publish(websocket, realtime_room: str, post: Post) -> dict:
    text = post.text.strip()
    if not text:
        raise ProtocolError("invalid_data", "a message needs some text")
    if len(text) > MAX_TEXT:
        raise ProtocolError("invalid_data", f"a message has at most {MAX_TEXT} characters")
    room = await room_for(realtime_room)
    user = websocket.auth.django_user
    message = await Message.objects.acreate(room=room, author=user, text=text)
    message.author = user  # to_json() reads the username without another query
    return message.to_json()


api.realtime("/ws/chat", can_join=can_join, can_publish=True, on_publish=on_publish, model=Post, max_rooms=8)
