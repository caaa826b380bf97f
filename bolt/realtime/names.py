"""Room names: which names a handler may join, and the reserved rooms of connections and users."""
from __future__ import annotations

import re

MAX_ROOM_LENGTH = 128
# Letters, digits and a few separators; no spaces, no wildcards, no "~" (reserved below).
_ROOM_RE = re.compile(r"[A-Za-z0-9_.:@/+=-]{1,%d}" % MAX_ROOM_LENGTH)
# Rooms bolt creates itself start with "~", which a handler-given name cannot contain,
# so no client can join another connection's or another user's private room.
CONNECTION_PREFIX = "~c:"
USER_PREFIX = "~u:"
# bolt's own control rooms (bolt.sessions): never a client's.
CONTROL_PREFIX = "~b:"
# How much of a refused value an error message shows: a client's value is echoed in its reply.
SHOWN_LENGTH = 64


class InvalidRoomName(ValueError):
    """A room name that is empty, too long, or uses characters outside the allowed set."""


def shown(value: object) -> str:
    """`value` for an error message: its repr, cut after SHOWN_LENGTH characters of it (or of a string)."""
    if isinstance(value, str):
        return repr(value[:SHOWN_LENGTH]) + ("..." if len(value) > SHOWN_LENGTH else "")
    text = repr(value)
    return text[:SHOWN_LENGTH] + "..." if len(text) > SHOWN_LENGTH else text


def check_room(room: str) -> str:
    """Return `room` if a handler may join or broadcast to it, else raise InvalidRoomName."""
    if not isinstance(room, str) or _ROOM_RE.fullmatch(room) is None:
        raise InvalidRoomName(
            f"invalid room name {shown(room)}: use 1-{MAX_ROOM_LENGTH} characters from A-Z a-z 0-9 _ . : @ / + = -")
    return room


def check_target(room: str) -> str:
    """Like check_room, but also accept the reserved connection and user rooms (broadcast targets)."""
    if isinstance(room, str) and room.startswith("~"):
        if room.startswith((CONNECTION_PREFIX, USER_PREFIX, CONTROL_PREFIX)) and 3 < len(room) <= MAX_ROOM_LENGTH + 3 \
                and room.isprintable():
            return room
        raise InvalidRoomName(f"invalid reserved room name {shown(room)}")
    return check_room(room)


def connection_room(connection_id: str) -> str:
    """The room that holds exactly one connection."""
    return CONNECTION_PREFIX + connection_id


def user_room(user_id: object) -> str:
    """The room that holds every connection of one user, on every process."""
    name = USER_PREFIX + str(user_id)
    if len(name) > MAX_ROOM_LENGTH + 3 or not name.isprintable():
        raise InvalidRoomName(f"user id {shown(user_id)} cannot name a room")
    return name


def is_reserved(room: str) -> bool:
    return room.startswith("~")
