"""WebSockets end with their Django session: logout, session deletion and password changes close them.

A WebSocket authenticated by `SessionAuthentication` remembers its session key. When a session ends
anywhere (any worker, a management command, the admin), a small event goes to the control room
"~b:sessions" through the hub's backend, so every worker hears it, and each worker closes its sockets
of that session with 4001 "session ended" (SESSION_ENDED):

- `user_logged_out`: the sockets of that session;
- a deleted Session row (database sessions): the sockets of that session;
- a saved user whose password or `is_active` changed: each socket of that user whose session Django
  no longer accepts (its password hash differs, the user is inactive) — one kept valid by
  `update_session_auth_hash` stays open.

New handshakes with an ended session are refused anyway: the session no longer authenticates.
The receivers are connected by the "bolt" app's ready(); cache-only session engines send no deletion
signal, so for them only logout and user changes close sockets.
"""
from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

import orjson

from bolt.realtime.backends import PublishError
from bolt.realtime.hub import Hub
from bolt.realtime.names import CONTROL_PREFIX
from bolt.security.auth import session_user

logger = logging.getLogger("bolt.sessions")

#: The close code and reason of a WebSocket whose Django session ended.
SESSION_ENDED = 4001
SESSION_ENDED_REASON = "session ended"
CONTROL_ROOM = CONTROL_PREFIX + "sessions"

# hub -> the event loop on which it listens to the control room (a new loop means listening again)
_watching: weakref.WeakKeyDictionary[Hub, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
# Events being handled: the loop keeps only weak references to tasks.
_handling: set[asyncio.Task[None]] = set()


async def watch(hub: Hub) -> None:
    """Make `hub` close its session sockets on session events (idempotent; called at session handshakes)."""
    loop = asyncio.get_running_loop()
    if _watching.get(hub) is loop:
        return
    _watching[hub] = loop
    try:
        await hub.listen(CONTROL_ROOM, lambda text: _handle(loop.create_task(_session_event(hub, text))))
    except BaseException:
        _watching.pop(hub, None)
        raise


def _handle(task: asyncio.Task[None]) -> None:
    _handling.add(task)
    task.add_done_callback(_handling.discard)


async def _session_event(hub: Hub, text: str) -> None:
    try:
        event = orjson.loads(text)
        session, user = event.get("session"), event.get("user")
    except (ValueError, AttributeError):
        logger.warning("ignoring a malformed session event %r", text[:100])
        return
    for websocket in hub.local_connections():
        auth = websocket.scope.get("auth")
        key = getattr(auth, "session_key", None)
        if key is None:
            continue
        if session is not None and key == session:
            ended = True
        elif user is not None and auth.user_id == user:
            current = await session_user(key)
            ended = not current.is_authenticated or str(current.pk) != auth.user_id
        else:
            continue
        if ended:
            logger.info("closing WebSocket %s: its session ended", websocket.path)
            try:
                await websocket.end(SESSION_ENDED, SESSION_ENDED_REASON)
            except Exception:  # a bug; the other connections must still be closed
                logger.exception("could not close WebSocket %s after its session ended", websocket.path)


def announce(event: dict[str, str], timeout: float = 5.0) -> None:
    """Send a session event to every worker, from sync or async code (signal receivers).

    Through each hub serving in this process (its backend carries it to the other workers), or, when
    none serves here, through the configured backend.
    """
    from bolt.realtime.publish import publish

    hubs = Hub.running()
    if not hubs:
        try:
            publish(CONTROL_ROOM, event)
        except PublishError as exc:
            _report_error(exc)
        return
    try:
        current = asyncio.get_running_loop()
    except RuntimeError:
        current = None
    for hub in hubs:
        future = asyncio.run_coroutine_threadsafe(hub.broadcast(CONTROL_ROOM, event), hub.loop)  # type: ignore[arg-type]
        if current is not None:
            future.add_done_callback(_report)  # on an event loop: never block it
            continue
        try:
            future.result(timeout)
        except Exception as exc:  # a signal receiver: a failure here must not fail the logout
            _report_error(exc)


def _report(future: Any) -> None:
    if not future.cancelled() and future.exception() is not None:
        _report_error(future.exception())


def _report_error(exc: BaseException) -> None:
    if not isinstance(exc, (ConnectionError, TimeoutError)):  # not the backend: a bug
        logger.error("could not tell the workers that a session ended", exc_info=exc)
    elif Hub.running():
        logger.warning("could not tell the workers that a session ended: %s", exc)
    else:
        # Nothing serves in this process and the backend reaches no other: no socket to close.
        logger.debug("session event not published: %s", exc)


# -- signal receivers -------------------------------------------------------------------------------

def _logged_out(sender: Any, request: Any = None, **kwargs: Any) -> None:
    key = getattr(getattr(request, "session", None), "session_key", None)
    if key:
        announce({"session": key})


def _session_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    announce({"session": instance.session_key})


def _user_saved(sender: Any, instance: Any, created: bool = False, update_fields: Any = None,
                **kwargs: Any) -> None:
    if created or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return  # a login's last_login update, say: no session can have ended
    announce({"user": str(instance.pk)})


def connect_signals() -> None:
    """Connect the receivers (the "bolt" app's ready() does this)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_delete, post_save

    if not apps.is_installed("django.contrib.auth"):
        return
    user_logged_out.connect(_logged_out, dispatch_uid="bolt.sessions.logged_out")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="bolt.sessions.user_saved")
    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        post_delete.connect(_session_deleted, sender=Session, dispatch_uid="bolt.sessions.session_deleted")
