"""The default backend: one process, nothing to set up."""
from __future__ import annotations

from bolt.realtime.backends.base import Backend
from bolt.realtime.history import History, HistoryPolicy, Replay
from bolt.realtime.messages import Message


class MemoryBackend(Backend):
    """Keeps history in this process; broadcasts reach this process's connections only."""

    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._histories: dict[str, History] = {}

    async def stop(self) -> None:
        await super().stop()
        self._histories.clear()

    def _history(self, room: str, policy: HistoryPolicy) -> History:
        history = self._histories.get(room)
        if history is None:
            history = self._histories[room] = History(policy)
        return history

    async def publish(self, room: str, message: Message, history: HistoryPolicy | None) -> None:
        if history is not None:
            self._history(room, history).append(message)

    async def replay(self, room: str, since: int, history: HistoryPolicy) -> Replay:
        return self._history(room, history).since(since)
