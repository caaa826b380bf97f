"""Which rooms keep a history, and the in-memory history of one room."""
from __future__ import annotations

import time
from collections import deque

from bolt.realtime.messages import Message


class HistoryPolicy:
    """Keep the last `size` messages of a room, none older than `ttl` seconds."""

    __slots__ = ("size", "ttl")

    def __init__(self, size: int = 100, ttl: float = 300.0) -> None:
        if size < 1 or ttl <= 0:
            raise ValueError("history size and ttl must be positive")
        self.size = size
        self.ttl = ttl

    def __repr__(self) -> str:
        return f"HistoryPolicy(size={self.size}, ttl={self.ttl})"


class Replay:
    """What a backend found for a client resuming after `since`: the kept messages and the room's last id."""

    __slots__ = ("messages", "last")

    def __init__(self, messages: list[Message], last: int) -> None:
        self.messages = messages
        self.last = last

    @property
    def first(self) -> int:
        """The id of the first kept message (kept messages always have one), or `last + 1` when none is kept."""
        if not self.messages:
            return self.last + 1
        seq = self.messages[0].seq
        assert seq is not None, "a message in a room's history has an id"
        return seq


class History:
    """The recent messages of one room, in id order, bounded in count and age."""

    __slots__ = ("policy", "last", "_messages")

    def __init__(self, policy: HistoryPolicy) -> None:
        self.policy = policy
        self.last = 0
        self._messages: deque[Message] = deque(maxlen=policy.size)

    def append(self, message: Message) -> int:
        self.last += 1
        message.seq = self.last
        self._messages.append(message)
        self._expire()
        return self.last

    def since(self, seq: int) -> Replay:
        self._expire()
        return Replay([m for m in self._messages if m.seq > seq], self.last)  # type: ignore[operator]

    def _expire(self) -> None:
        horizon = time.time() - self.policy.ttl
        messages = self._messages
        while messages and messages[0].time < horizon:
            messages.popleft()
