"""bolt.protocol.timers: many deadlines of one length on a real event loop, one timer for them all."""
from __future__ import annotations

import asyncio
import gc
import weakref
from typing import Any

import pytest

from bolt.protocol.timers import deadlines


@pytest.mark.asyncio
async def test_deadlines_fall_due_in_the_order_they_were_set() -> None:
    loop = asyncio.get_running_loop()
    fired: list[str] = []
    done = asyncio.Event()
    timers = deadlines(loop, 0.05)
    assert deadlines(loop, 0.05) is timers and deadlines(loop, 0.5) is not timers

    def callback(name: str) -> Any:
        def fire() -> None:
            fired.append(name)
            if name == "last":
                done.set()
        return fire

    cleared, renewed = callback("cleared"), callback("renewed")
    timers.set(cleared)
    timers.set(renewed)
    timers.set(callback("first"))
    timers.clear(cleared)
    timers.set(renewed)  # set again: due a delay from now, behind the ones set before
    timers.set(callback("last"))
    await asyncio.wait_for(done.wait(), 5)
    assert fired == ["first", "renewed", "last"]
    assert len(timers) == 0


@pytest.mark.asyncio
async def test_a_failing_callback_is_reported_and_the_others_still_run() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    loop.set_exception_handler(lambda _, context: reported.append(context))
    done = asyncio.Event()

    def fail() -> None:
        raise RuntimeError("boom")

    try:
        timers = deadlines(loop, 0.01)
        timers.set(fail)
        timers.set(done.set)
        await asyncio.wait_for(done.wait(), 5)
    finally:
        loop.set_exception_handler(None)
    assert [type(c["exception"]) for c in reported] == [RuntimeError]


def test_a_closed_loop_is_not_kept_alive() -> None:
    loop = asyncio.new_event_loop()
    deadlines(loop, 10.0).set(lambda: None)  # its timer pending when the loop closes
    gone = weakref.ref(loop)
    loop.close()
    del loop
    gc.collect()
    assert gone() is None
