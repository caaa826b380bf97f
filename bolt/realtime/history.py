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
    """What a backend found for a client resuming after `since`: the kept messages and the room's last id.

    `start` is where the room's current history began counting (its first id is `start + 1`), or 0
    when the backend does not know: a `since` of 0 (nothing seen yet) is owed only from there.
    """

    __slots__ = ("messages", "last", "start")

    def __init__(self, messages: list[Message], last: int, start: int = 0) -> None:
        self.messages = messages
        self.last = last
        self.start = start

    @property
    def first(self) -> int:
        """The id of the first kept message (kept messages always have one), or `last + 1` when none is kept."""
        if not self.messages:
            return self.last + 1
        seq = self.messages[0].seq
        assert seq is not None, "a message in a room's history has an id"
        return seq


def fresh_counter() -> int:
    """Where a new history's id counter starts: the wall clock in microseconds (its first id is one more).

    An earlier history of the same room (lost with a restart, or evicted) gave ids up to about its
    start plus its message count, so a new one starts above them unless the room averaged more than
    one message per microsecond or the clock stepped back; a client resuming with an old `since` then
    gets the new history with a gap before it. About 1.8e15 today: below 2**53, exact in JavaScript.
    """
    return time.time_ns() // 1000


class History:
    """The recent messages of one room, in id order, bounded in count and age."""

    __slots__ = ("policy", "start", "last", "_messages")

    def __init__(self, policy: HistoryPolicy) -> None:
        self.policy = policy
        self.start = self.last = fresh_counter()
        self._messages: deque[Message] = deque(maxlen=policy.size)

    def append(self, message: Message) -> int:
        self.last += 1
        message.seq = self.last
        self._messages.append(message)
        self._expire()
        return self.last

    def since(self, seq: int) -> Replay:
        self._expire()
        return Replay([m for m in self._messages if m.seq > seq], self.last, self.start)  # type: ignore[operator]

    def _expire(self) -> None:
        horizon = time.time() - self.policy.ttl
        messages = self._messages
        while messages and messages[0].time < horizon:
            messages.popleft()
