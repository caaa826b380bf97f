"""Who is in a room: members, join/leave events, and the bounded stream a handler reads them from."""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

JOIN = "join"
LEAVE = "leave"


class Member:
    """One connection in a room: its id (unique across processes) and its user id, if authenticated."""

    __slots__ = ("connection_id", "user_id")

    def __init__(self, connection_id: str, user_id: Any = None) -> None:
        self.connection_id = connection_id
        self.user_id = user_id

    def to_list(self) -> list[Any]:
        return [self.connection_id, self.user_id]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Member) and other.connection_id == self.connection_id

    def __hash__(self) -> int:
        return hash(self.connection_id)

    def __repr__(self) -> str:
        return f"Member({self.connection_id!r}, user_id={self.user_id!r})"


class PresenceEvent:
    """A member joined (`type == "join"`) or left (`"leave"`) `room`."""

    __slots__ = ("type", "room", "member")

    def __init__(self, type: str, room: str, member: Member) -> None:
        self.type = type
        self.room = room
        self.member = member

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, handy to forward to clients."""
        return {"type": self.type, "room": self.room, "connection_id": self.member.connection_id,
                "user_id": self.member.user_id}

    def __repr__(self) -> str:
        return f"PresenceEvent({self.type!r}, {self.room!r}, {self.member!r})"


class PresenceSubscription:
    """Join and leave events of one room, read with `async for event in subscription`.

    Use it as an async context manager so the hub stops feeding it when the handler is done. A reader
    that falls behind by more than `maxsize` events loses the oldest ones (`dropped` counts them).
    """

    def __init__(self, room: str, on_open: Callable[[PresenceSubscription], Any],
                 on_close: Callable[[PresenceSubscription], Any], maxsize: int = 1000) -> None:
        self.room = room
        self.dropped = 0
        self._events: deque[PresenceEvent] = deque(maxlen=maxsize)
        self._waiter: asyncio.Future[None] | None = None
        self._on_open = on_open
        self._on_close = on_close
        self._opened = False
        self._closed = False

    @property
    def opened(self) -> bool:
        """Whether `open()` has run: the hub then listens to the room for this subscription."""
        return self._opened

    def put(self, event: PresenceEvent) -> None:
        """Queue `event` for the reader (called by the hub), dropping the oldest when the queue is full."""
        if len(self._events) == self._events.maxlen:
            self.dropped += 1
        self._events.append(event)
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> PresenceEvent:
        """The next event, waiting for one if needed."""
        if not self._opened:
            await self.open()
        while not self._events:
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        return self._events.popleft()

    def drain(self) -> list[PresenceEvent]:
        """The events already waiting, without waiting for more."""
        events = list(self._events)
        self._events.clear()
        return events

    def __aiter__(self) -> PresenceSubscription:
        return self

    async def __anext__(self) -> PresenceEvent:
        return await self.get()

    async def open(self) -> None:
        """Start hearing events from other processes too (done on first use)."""
        if not self._opened:
            self._opened = True
            await self._on_open(self)

    async def __aenter__(self) -> PresenceSubscription:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop receiving events."""
        if not self._closed:
            self._closed = True
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
            await self._on_close(self)
