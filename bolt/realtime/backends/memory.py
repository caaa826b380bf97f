"""The default backend: one process, nothing to set up."""
from __future__ import annotations

from collections import OrderedDict

from bolt.realtime.backends.base import Backend
from bolt.realtime.history import History, HistoryPolicy, Replay
from bolt.realtime.messages import Message


class MemoryBackend(Backend):
    """Keeps history in this process; broadcasts reach this process's connections only.

    At most `max_histories` rooms keep a history; beyond that the room published to least recently
    loses its history; a new one counts on from the clock (see `fresh_counter`), so a client resuming
    in it with an older id gets what the new history keeps, after a gap.
    """

    name = "memory"
    subscriptions = False  # broadcasts never come from another process

    def __init__(self, max_histories: int = 10_000) -> None:
        super().__init__()
        self.max_histories = max_histories
        self._histories: OrderedDict[str, History] = OrderedDict()

    async def stop(self) -> None:
        await super().stop()
        self._histories.clear()

    def _kept(self, room: str) -> History | None:
        """The room's history, if it has one, marked as the most recently used."""
        history = self._histories.get(room)
        if history is not None:
            self._histories.move_to_end(room)
        return history

    def _history(self, room: str, policy: HistoryPolicy) -> History:
        history = self._kept(room)
        if history is None:
            history = self._histories[room] = History(policy)
            if len(self._histories) > self.max_histories:
                self._histories.popitem(last=False)
        return history

    async def publish(self, room: str, message: Message, history: HistoryPolicy | None) -> None:
        if history is not None:
            self._history(room, history).append(message)

    async def replay(self, room: str, since: int, history: HistoryPolicy) -> Replay:
        kept = self._kept(room)
        if kept is None:  # nothing published since it was lost (or ever): a join makes none
            return Replay([], 0)
        return kept.since(since)
