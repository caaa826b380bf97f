"""The interface between the hub and a pub/sub backend.

The hub calls a `Backend`; a backend calls back only through the `Subscriber` it was started with,
so it never imports the hub.
"""
from __future__ import annotations

from typing import Any, Protocol

from bolt.realtime.history import HistoryPolicy, Replay
from bolt.realtime.messages import Message
from bolt.realtime.presence import Member, PresenceEvent


class Subscriber(Protocol):
    """What a backend hands other processes' traffic to: the hub of this process."""

    #: This process's id, which the backend puts on what it publishes to recognise its own echo.
    node_id: str

    def deliver_remote(self, room: str, message: Message) -> None:
        """A broadcast another process published to `room`."""

    def emit_remote(self, event: PresenceEvent) -> None:
        """A presence event from another process."""

    def signal_gap(self, room: str) -> None:
        """Broadcasts to `room` may have been missed (the backend was unreachable)."""


class BackendUnavailable(ConnectionError):
    """The backend (Redis) cannot be reached."""


class PublishError(BackendUnavailable):
    """The backend did not confirm a broadcast: this process has not delivered it.

    Not confirmed is not the same as not delivered: a command that timed out can still run when Redis
    resumes, and then other processes deliver it (the Redis backend then signals a gap to this
    process's members of the room).
    """


class Backend:
    """Carries broadcasts between processes and keeps presence and history.

    The hub delivers to this process's members itself; a backend only has to bring other processes'
    broadcasts (for rooms this process has subscribed to) back through `Subscriber.deliver_remote`.
    """

    name = "base"
    #: Whether the hub calls `subscribe` and `unsubscribe` as this process's rooms come and go. A
    #: backend that brings no other process's broadcasts (the memory backend) sets it False, and
    #: each connection then skips those calls.
    subscriptions = True

    def __init__(self) -> None:
        #: Set by start(): where other processes' broadcasts and presence events go.
        self.hub: Subscriber | None = None
        # Members of this process, by room: what presence must keep alive.
        self.local: dict[str, dict[str, Member]] = {}

    async def start(self, hub: Subscriber) -> None:
        self.hub = hub

    async def stop(self) -> None:
        self.local.clear()

    async def publish(self, room: str, message: Message, history: HistoryPolicy | None) -> None:
        """Send `message` to other processes; with `history`, first give it the room's next id and keep it."""
        raise NotImplementedError

    async def replay(self, room: str, since: int, history: HistoryPolicy) -> Replay:
        """The kept messages of `room` with ids above `since`, the room's last id and its history's start."""
        raise NotImplementedError

    async def subscribe(self, room: str) -> None:
        """This process now has members (or listeners) in `room`: start hearing its broadcasts."""

    async def unsubscribe(self, room: str) -> None:
        """This process no longer needs `room`'s broadcasts."""

    async def add_member(self, room: str, member: Member) -> None:
        self.local.setdefault(room, {})[member.connection_id] = member

    async def remove_member(self, room: str, member: Member) -> None:
        members = self.local.get(room)
        if members is not None:
            members.pop(member.connection_id, None)
            if not members:
                del self.local[room]

    async def members(self, room: str) -> list[Member]:
        """Everyone in `room`, on every process this backend reaches."""
        return list(self.local.get(room, {}).values())

    async def count(self, room: str) -> int:
        return len(await self.members(room))

    def health(self) -> dict[str, Any]:
        """The backend's part of `Hub.health()`; the same keys on every backend, so a probe reads any.

        A backend without a subscriber (the memory one) is never deaf: `subscriber` is "none".
        """
        return {"backend": self.name, "ok": True, "subscriber": "none", "deaf_since": None, "last_error": None,
                "reconnects": 0, "subscribed_rooms": 0}
