"""Deadlines of one length on one event loop, kept by a single timer.

A connection's deadline (its request head, its next keepalive ping) is set when the connection
starts and cleared when it is done, usually long before it is due. With a timer of its own that
is a handle made, pushed on the loop's heap and cancelled on every connection. Deadlines that
all lie the same delay after they were set fall due in the order they were set, so one ordered
dict and one timer per loop and delay hold them all: setting or clearing one is a dict operation.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["Deadlines", "deadlines"]


class Deadlines:
    """Callbacks to call ``delay`` seconds after each was set, unless cleared first."""

    __slots__ = ("_loop", "delay", "_due", "_armed")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        # Weakly, and no timer handle kept either (it holds the loop): these are the values of a
        # dict whose keys, the loops, they would otherwise keep alive.
        self._loop = weakref.ref(loop)
        self.delay = delay
        # callback -> loop time it is due; the order of setting is the order of falling due.
        self._due: OrderedDict[Callable[[], object], float] = OrderedDict()
        self._armed = False  # the timer waits for the first entry's time, or an earlier one

    def __len__(self) -> int:
        return len(self._due)

    def set(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` ``delay`` seconds from now; replaces its pending deadline, if any."""
        loop = self._loop()
        assert loop is not None  # a loop that is running is referenced
        due = self._due
        due.pop(callback, None)
        due[callback] = _now(loop) + self.delay
        if not self._armed:
            self._armed = True
            loop.call_later(self.delay, self._fire)

    def clear(self, callback: Callable[[], object]) -> None:
        """Drop the pending deadline of ``callback``, if it has one."""
        self._due.pop(callback, None)

    def _fire(self) -> None:
        # The timer stays armed when its entry is cleared: it then finds a later first entry, and
        # waits for that one.
        self._armed = False
        loop = self._loop()
        if loop is None:
            return
        due = self._due
        now = _now(loop)
        while due:
            callback, when = next(iter(due.items()))
            if when > now:
                self._armed = True
                loop.call_later(when - now, self._fire)
                return
            del due[callback]
            try:
                callback()
            except Exception as exc:  # as the loop reports a failing timer callback, and go on with the rest
                loop.call_exception_handler({"message": "Exception in deadline callback", "exception": exc})


def _now(loop: asyncio.AbstractEventLoop) -> float:
    """The loop's clock; for a stand-in loop that has only ``call_later`` (uvicorn's protocol tests
    drive protocols with one), asyncio's own clock."""
    clock = getattr(loop, "time", None)
    return clock() if clock is not None else time.monotonic()


# Per event loop and delay; a loop that is gone takes its deadlines with it.
_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, Deadlines]] = weakref.WeakKeyDictionary()


def deadlines(loop: asyncio.AbstractEventLoop, delay: float) -> Deadlines:
    """The deadlines ``delay`` seconds long of ``loop``."""
    by_delay = _per_loop.get(loop)
    if by_delay is None:
        by_delay = _per_loop[loop] = {}
    found = by_delay.get(delay)
    if found is None:
        found = by_delay[delay] = Deadlines(loop, delay)
    return found
