"""WebSockets end with their Django session: logout, session deletion and password changes close them.

A WebSocket authenticated by `SessionAuthentication` remembers its session key. When a session ends
anywhere (any worker, a management command, the admin), a small event goes to the control room
"~b:sessions" through the hub's backend, so every worker hears it, and each worker closes its sockets
of that session with 4001 "session ended" (SESSION_ENDED):

- `user_logged_out`: the sockets of that session;
- a deleted Session row (database sessions): the sockets of that session;
- a saved user whose password or `is_active` changed, or a deleted user: each socket of that user
  whose session Django no longer accepts (its password hash differs, the user is inactive or gone),
  RENEWAL_GRACE seconds later, unless its session was renewed meanwhile (below).

A session whose key is cycled (`cycle_key()`: `login()` of the same user, `update_session_auth_hash`)
has not ended: the user is still logged in under the new key. Django sends no signal for a cycle, and
on database sessions the cycle deletes the old row, which would look like an end; so connect_signals()
wraps `SessionBase.cycle_key` and `acycle_key`: the old row's deletion is not announced, and a
renewal event ({"session": old, "renewed": new}) moves the sockets to the new key, where a later
logout finds them. A password change is saved before `update_session_auth_hash` cycles the changer's
session, which is why a user event waits RENEWAL_GRACE seconds before closing: the changer's sockets
are renewed by then and stay open.

New handshakes with an ended session are refused anyway: the session no longer authenticates.
The receivers are connected by the "bolt" app's ready(); cache-only session engines send no deletion
signal, so for them only logout and user changes close sockets.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import weakref
from collections.abc import Awaitable, Callable
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
#: Seconds a user event waits before closing a socket whose session Django no longer accepts: time for
#: the request that changed the password to cycle its own session (update_session_auth_hash).
RENEWAL_GRACE = 1.0

# hub -> the event loop on which it listens to the control room (a new loop means listening again)
_watching: weakref.WeakKeyDictionary[Hub, asyncio.AbstractEventLoop] = weakref.WeakKeyDictionary()
# Events being handled: the loop keeps only weak references to tasks.
_handling: set[asyncio.Task[None]] = set()
# A socket's session key since its session was renewed (its AuthContext keeps the handshake's).
_renewed: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# The old key of the session being cycled in this context: its row's deletion is no end.
_cycling: contextvars.ContextVar[str | None] = contextvars.ContextVar("bolt_session_cycling", default=None)


async def watch(hub: Hub) -> None:
    """Make `hub` close its session sockets on session events (idempotent; called at session handshakes)."""
    loop = asyncio.get_running_loop()
    if _watching.get(hub) is loop:
        return
    _watching[hub] = loop
    try:
        # A fresh context: an event delivered in this process must not run in its publisher's (a sync
        # view's, marked by asgiref as holding the thread the ORM calls below would need).
        await hub.listen(CONTROL_ROOM, lambda text: _handle(loop.create_task(_session_event(hub, text),
                                                                             context=contextvars.Context())))
    except BaseException:
        _watching.pop(hub, None)
        raise


def _handle(task: asyncio.Task[None]) -> None:
    _handling.add(task)
    task.add_done_callback(_handling.discard)


def _session_key(websocket: Any) -> str | None:
    return _renewed.get(websocket) or getattr(websocket.scope.get("auth"), "session_key", None)


async def _session_event(hub: Hub, text: str) -> None:
    try:
        event = orjson.loads(text)
        session, user, renewed = event.get("session"), event.get("user"), event.get("renewed")
    except (ValueError, AttributeError):
        logger.warning("ignoring a malformed session event %r", text[:100])
        return
    if renewed is not None:
        for websocket in hub.local_connections():
            if _session_key(websocket) == session:
                _renewed[websocket] = renewed
        return
    if session is not None:
        await _end([ws for ws in hub.local_connections() if _session_key(ws) == session])
        return
    if user is None:
        return
    # The keys as this event finds them, before any await: a renewal that comes after the event (the
    # changer's update_session_auth_hash) changes the key and so keeps its socket open.
    sockets = [(websocket, key) for websocket in hub.local_connections()
               if (key := _session_key(websocket)) is not None and websocket.scope["auth"].user_id == user]
    rejected = []
    for websocket, key in sockets:
        try:
            current = await session_user(key)
            accepted = current.is_authenticated and str(current.pk) == user
        except Exception:  # the session store failed: fail closed (a reconnect authenticates afresh)
            logger.exception("could not check the session of WebSocket %s; closing it", websocket.path)
            accepted = False
        if not accepted:
            rejected.append((websocket, key))
    if rejected:
        await asyncio.sleep(RENEWAL_GRACE)
        await _end([websocket for websocket, key in rejected if _session_key(websocket) == key])


async def _end(websockets: list[Any]) -> None:
    for websocket in websockets:
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


def _after_commit(event: dict[str, str], using: str | None) -> None:
    """Announce `event` once the transaction that caused it commits (at once outside one): a worker
    checking the session before then would read the old row, find it valid, and keep the socket."""
    from django.db import transaction

    transaction.on_commit(functools.partial(announce, event), using=using)


def _session_deleted(sender: Any, instance: Any, using: str | None = None, **kwargs: Any) -> None:
    if instance.session_key != _cycling.get():
        _after_commit({"session": instance.session_key}, using)


def _renewal(old: str | None, store: Any, user: Any) -> dict[str, str] | None:
    """The event for a cycled session, if it was a logged-in one (only those have sockets)."""
    if old and user is not None and store.session_key and store.session_key != old:
        return {"session": old, "renewed": store.session_key}
    return None


def _announcing_cycle_key(cycle_key: Callable[[Any], None]) -> Callable[[Any], None]:
    @functools.wraps(cycle_key)
    def wrapper(self: Any) -> None:
        from django.contrib.auth import SESSION_KEY

        old = self.session_key
        token = _cycling.set(old)
        try:
            cycle_key(self)
        finally:
            _cycling.reset(token)
        event = _renewal(old, self, self.get(SESSION_KEY))
        if event is not None:
            announce(event)

    return wrapper


def _announcing_acycle_key(acycle_key: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    @functools.wraps(acycle_key)
    async def wrapper(self: Any) -> None:
        from django.contrib.auth import SESSION_KEY

        old = self.session_key
        token = _cycling.set(old)
        try:
            await acycle_key(self)
        finally:
            _cycling.reset(token)
        event = _renewal(old, self, await self.aget(SESSION_KEY))
        if event is not None:
            announce(event)

    return wrapper


def _user_saved(sender: Any, instance: Any, created: bool = False, update_fields: Any = None,
                using: str | None = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and not {"password", "is_active"} & set(update_fields)):
        return  # a login's last_login update, say: no session can have ended
    _after_commit({"user": str(instance.pk)}, using)  # the admin saves in a transaction


def _user_deleted(sender: Any, instance: Any, using: str | None = None, **kwargs: Any) -> None:
    # Deleting a user leaves its Session rows (they hold no foreign key): its sessions just stop
    # authenticating, so its sockets are checked as for a deactivated user. (pk is still set here.)
    _after_commit({"user": str(instance.pk)}, using)


def connect_signals() -> None:
    """Connect the receivers (the "bolt" app's ready() does this)."""
    from django.apps import apps
    from django.contrib.auth import get_user_model
    from django.contrib.auth.signals import user_logged_out
    from django.db.models.signals import post_delete, post_save

    if not apps.is_installed("django.contrib.auth"):
        return
    from django.contrib.sessions.backends.base import SessionBase

    user_logged_out.connect(_logged_out, dispatch_uid="bolt.sessions.logged_out")
    if not hasattr(SessionBase.cycle_key, "__wrapped__"):  # ready() may run more than once (tests)
        SessionBase.cycle_key = _announcing_cycle_key(SessionBase.cycle_key)
        SessionBase.acycle_key = _announcing_acycle_key(SessionBase.acycle_key)
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="bolt.sessions.user_saved")
    post_delete.connect(_user_deleted, sender=get_user_model(), dispatch_uid="bolt.sessions.user_deleted")
    if apps.is_installed("django.contrib.sessions"):
        from django.contrib.sessions.models import Session

        post_delete.connect(_session_deleted, sender=Session, dispatch_uid="bolt.sessions.session_deleted")
