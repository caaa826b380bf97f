"""Broadcast from any code: `publish(room, message)` in sync code, `await apublish(room, message)` in async code.

In a process that serves connections the message goes through the running hub, exactly as
`hub.broadcast` (ids, history, delivery to this process's clients and, through the backend, to the
other workers'). In a process that serves nothing (a worker, a shell, a management command) it is
published through the configured backend, BOLT_PUBSUB or an explicit `pubsub=`, so the served workers
deliver it; the api's history rules (found from `api=` or the ASGI_APPLICATION setting) give it the
same ids. The memory backend reaches no other process, so publishing with it from such a process is
refused with PublishError.

    from bolt.realtime import publish

    def article_saved(sender, instance, **kwargs):       # a Django signal receiver, a view, a task...
        publish(f"article:{instance.pk}", {"title": instance.title})
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any

from bolt.realtime.backends import Backend, MemoryBackend, PublishError
from bolt.realtime.hub import Hub

#: How long sync `publish()` waits for the backend before raising PublishError.
PUBLISH_TIMEOUT = 10.0


def publish(room: str, message: Any, *, api: Any = None, pubsub: str | Backend | None = None,
            timeout: float = PUBLISH_TIMEOUT) -> int | None:
    """Broadcast `message` to `room` from sync code; returns its id in rooms with history.

    Must not be called on a running event loop (it would block it): use `apublish` there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise PublishError("publish() blocks, and was called on a running event loop: use `await apublish(...)`")
    hub, loop = _route(api, pubsub)
    future = asyncio.run_coroutine_threadsafe(hub.broadcast(room, message), loop)
    try:
        return future.result(timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise PublishError(f"publish to room {room!r} took longer than {timeout} s") from None


async def apublish(room: str, message: Any, *, api: Any = None, pubsub: str | Backend | None = None) -> int | None:
    """Broadcast `message` to `room` from async code; returns its id in rooms with history."""
    hub, loop = _route(api, pubsub)
    if loop is asyncio.get_running_loop():
        return await hub.broadcast(room, message)
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(hub.broadcast(room, message), loop))


def _route(api: Any, pubsub: str | Backend | None) -> tuple[Hub, asyncio.AbstractEventLoop]:
    """The hub to broadcast through and the loop it runs on: the serving hub, else a publisher."""
    hub = api.hub if api is not None else _serving_hub()
    if pubsub is None and hub is not None and hub.loop is not None:
        return hub, hub.loop
    if hub is None and api is None:
        hub = _configured_hub()  # not serving, but its history rules still give the message its id
    spec = pubsub
    if spec is None:
        configured = hub.configured_backend if hub is not None else None
        spec = configured if configured is not None else _setting_backend()
    if spec == "memory" or isinstance(spec, MemoryBackend):
        raise PublishError(
            "this process serves no connections and the pub/sub backend is the memory backend, which reaches "
            "only the process it lives in: nobody can receive this message. Set BOLT_PUBSUB to a redis:// URL "
            "(or pass pubsub=) so the served workers deliver it.")
    return _PUBLISHERS.get(hub, spec)


def _serving_hub() -> Hub | None:
    running = Hub.running()
    if len(running) <= 1:
        return running[0] if running else None
    mounted = _configured_hub()
    if mounted is not None and mounted in running:
        return mounted
    raise PublishError(f"{len(running)} bolt apis serve in this process: say which with publish(..., api=api)")


def _configured_hub() -> Hub | None:
    from bolt.django import asgi_application, find_api

    api = find_api(asgi_application())
    return api.hub if api is not None else None


def _setting_backend() -> str:
    from bolt.django import setting

    return setting("BOLT_PUBSUB") or "memory"


class _Publishers:
    """Publisher hubs of this process, on one event loop in a background thread, kept for reuse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._hubs: dict[tuple[int, Any], Hub] = {}

    def get(self, source: Hub | None, spec: str | Backend) -> tuple[Hub, asyncio.AbstractEventLoop]:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="bolt-publish", daemon=True).start()
            key = (id(source), spec if isinstance(spec, str) else id(spec))
            hub = self._hubs.get(key)
            if hub is None:
                hub = self._hubs[key] = source.publisher(spec) if source is not None else Hub(spec)
            return hub, self._loop


_PUBLISHERS = _Publishers()
