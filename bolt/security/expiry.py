"""Open WebSockets end when their credentials expire: 4401 "Credentials expired".

An accepted WebSocket whose `AuthContext.expires_at` is set (a JWT's `exp` plus leeway) is closed at
that moment. Each event loop keeps one heap of (deadline, connection) entries and one timer, armed
for the earliest deadline, so an idle socket costs one small heap entry, not a timer of its own.
A connection that ends first marks its entry cancelled; cancelled entries are dropped when they
reach the top of the heap, or all at once when they outnumber the live ones, so the heap stays
proportional to the open sockets. The timer stays armed when the last connection ends (it then
finds nothing to do), so short-lived connections do not each arm and cancel one.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import time
import weakref
from typing import Any

from bolt.connection import client_label

logger = logging.getLogger("bolt.security")

#: The close code and reason of a WebSocket whose credentials expired while it was open.
CREDENTIALS_EXPIRED = 4401
CREDENTIALS_EXPIRED_REASON = "Credentials expired"

# Below this many cancelled entries the heap is never rebuilt: they cost less than the rebuild.
_COMPACT_AFTER = 64


class Deadlines:
    """The credential deadlines (epoch seconds) of one event loop's WebSockets, and its one timer."""

    def __init__(self) -> None:
        self._heap: list[list[Any]] = []
        self._sequence = itertools.count()
        # The armed timer, weakly: the loop holds it while it is pending, and a reference from here would
        # keep the loop (this object's key in _per_loop) alive.
        self._timer: weakref.ref[asyncio.TimerHandle] | None = None
        self._timer_at = math.inf
        self._cancelled = 0
        self._closing: set[asyncio.Task[None]] = set()  # the loop keeps only weak references to tasks
        # Each watched connection's heap entry: [deadline, sequence, websocket or None once cancelled].
        self._entries: dict[Any, list[Any]] = {}

    def __len__(self) -> int:
        """How many open connections have a deadline."""
        return len(self._heap) - self._cancelled

    def watch(self, websocket: Any, deadline: float) -> None:
        """Close `websocket` at `deadline`, replacing any earlier deadline it had."""
        if websocket in self._entries:
            self.forget(websocket)
        entry = [deadline, next(self._sequence), websocket]
        heapq.heappush(self._heap, entry)
        self._entries[websocket] = entry
        if deadline < self._timer_at:
            self._arm(deadline)

    def forget(self, websocket: Any) -> None:
        """Drop the deadline of `websocket`, if it has one."""
        entry = self._entries.pop(websocket, None)
        if entry is not None:
            self._cancel(entry)

    def _cancel(self, entry: list[Any]) -> None:
        if entry[2] is None:
            return
        entry[2] = None
        self._cancelled += 1
        if self._cancelled > _COMPACT_AFTER and 2 * self._cancelled > len(self._heap):
            self._heap = [e for e in self._heap if e[2] is not None]
            heapq.heapify(self._heap)
            self._cancelled = 0
        if self._cancelled == len(self._heap):  # nothing left to wait for; the timer will find nothing
            self._heap.clear()
            self._cancelled = 0

    def _arm(self, deadline: float) -> None:
        timer = self._timer() if self._timer is not None else None
        if timer is not None:
            timer.cancel()
        loop = asyncio.get_running_loop()
        # The loop's clock is monotonic, deadlines are wall-clock: convert at arming time.
        self._timer = weakref.ref(loop.call_at(loop.time() + max(0.0, deadline - time.time()), self._fire))
        self._timer_at = deadline

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        heap = self._heap
        now = time.time()
        # pyjwt refuses a token from exp + leeway on: the socket ends at that very moment.
        while heap and (heap[0][2] is None or heap[0][0] <= now):
            entry = heapq.heappop(heap)
            websocket = entry[2]
            if websocket is None:
                self._cancelled -= 1
                continue
            entry[2] = None
            task = asyncio.get_running_loop().create_task(self._expire(websocket, entry))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        if heap:
            self._arm(heap[0][0])

    async def _expire(self, websocket: Any, entry: list[Any]) -> None:
        if self._entries.get(websocket) is not entry:
            return  # refreshed (or ended) between the timer and this task
        del self._entries[websocket]
        logger.info("closing websocket %s from %s: credentials of user %s expired", websocket.path,
                    client_label(websocket.scope), websocket.auth.user_id)
        try:
            await websocket.end(CREDENTIALS_EXPIRED, CREDENTIALS_EXPIRED_REASON)
        except Exception:  # a bug: said here, since nothing awaits this task
            logger.exception("could not close websocket %s after its credentials expired", websocket.path)


# One Deadlines per event loop; a loop that is gone takes its deadlines with it.
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Deadlines] = weakref.WeakKeyDictionary()
# The last loop asked for and its deadlines: a server runs one loop, and a WeakKeyDictionary lookup
# (a weak reference made per call) is most of the cost of watching a connection.
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], Deadlines] | None = None


def deadlines() -> Deadlines:
    """The running event loop's deadlines."""
    global _last
    loop = asyncio.get_running_loop()
    last = _last
    if last is not None and last[0]() is loop:
        return last[1]
    found = _per_loop.get(loop)
    if found is None:
        found = _per_loop[loop] = Deadlines()
    _last = (weakref.ref(loop), found)
    return found


def watch(websocket: Any, expires_at: float) -> None:
    """Close `websocket` with 4401 at `expires_at` (epoch seconds), replacing any earlier deadline."""
    deadlines().watch(websocket, expires_at)


def forget(websocket: Any) -> None:
    """Drop the connection's deadline (it ended, or its new credentials do not expire)."""
    deadlines().forget(websocket)
