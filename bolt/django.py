"""Serve bolt beside Django: one ASGI app for `asgi.py`, and lazy access to Django settings.

    # asgi.py
    import os
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

    from django.core.asgi import get_asgi_application
    django_app = get_asgi_application()      # sets Django up before the api's modules import models

    from bolt.django import mount
    from mysite.api import api
    application = mount(api, django_app)

Scopes whose path matches one of the api's routes (of the same kind: HTTP or WebSocket) go to bolt;
every other scope goes to Django, except a WebSocket for which bolt has no route when the other app is
Django's own handler (it serves HTTP only): bolt refuses that one with 404 "Not Found". The lifespan is
shared: bolt's startup and shutdown hooks always run, and the other app takes part too when it speaks
the lifespan protocol. Django's own handler does not (it raises ValueError for any scope that is not
HTTP); that refusal is noticed, logged at DEBUG level and otherwise ignored, so it never stops the
server from starting.
"""
from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

logger = logging.getLogger("bolt.django")

def django_settings() -> Any | None:
    """Django's settings object when there are settings: configured (by `settings.configure()`,
    `django.setup()` or `get_asgi_application()`), or named by DJANGO_SETTINGS_MODULE, which Django
    loads on first use as it always does (so `CORS_ALLOWED_ORIGINS` in the settings also counts for
    an api served on its own, `bolt run myapp:api`). Else None: bolt runs without Django too."""
    try:
        from django.conf import settings
    except ImportError:
        return None
    if settings.configured or os.environ.get("DJANGO_SETTINGS_MODULE"):
        return settings
    return None


def django_apps_ready() -> None:
    """Load Django's apps if the settings are there but nothing has set Django up yet.

    An api served on its own (`DJANGO_SETTINGS_MODULE=mysite.settings bolt run mysite.api:api`)
    has settings but no app registry, which models and `django.contrib.auth` need: bolt then calls
    `django.setup()` the first time it needs them, as `manage.py` and `get_asgi_application()` do.
    """
    from django.apps import apps

    if not apps.ready and not apps.loading:
        import django

        django.setup(set_prefix=False)


def setting(name: str, default: Any = None) -> Any:
    """The Django setting `name`, or `default` when it is unset or Django is not configured.

    Read on every call, never cached at import time, so bolt works with no Django settings at all
    and picks up settings that tests override.
    """
    settings = django_settings()
    return default if settings is None else getattr(settings, name, default)


class BoltMount:
    """An ASGI app sending the api's routes to the api and everything else to another ASGI app."""

    def __init__(self, api: Any, app: Any) -> None:
        self.api = api
        self.app = app
        self._app_takes_websockets = not _is_django_handler(app)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
        elif kind in ("http", "websocket") and self.api.handles(scope):
            await self.api(scope, receive, send)
        elif kind == "websocket" and not self._app_takes_websockets:
            # Django's handler raises for a WebSocket scope (a traceback and a 500 per scanner probe):
            # the api refuses the path it has no route for with a clean 404 and one log line.
            await self.api(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Fan the server's lifespan out to bolt and to the other app, and fold their answers into one."""
        apps = [_LifespanApp(self.api, scope, required=True), _LifespanApp(self.app, scope, required=False)]
        try:
            while True:
                message = await receive()
                phase = message["type"].rsplit(".", 1)[-1]  # startup or shutdown
                replies = await asyncio.gather(*(a.step(message) for a in apps if a.active))
                failures = [r for r in replies if r is not None and r["type"].endswith(".failed")]
                if failures:
                    await send({"type": f"lifespan.{phase}.failed",
                                "message": "; ".join(f.get("message", "") for f in failures)})
                    return
                await send({"type": f"lifespan.{phase}.complete"})
                if phase == "shutdown":
                    return
        finally:
            for a in apps:
                if not a.task.done():
                    a.task.cancel()
            await asyncio.gather(*(a.task for a in apps), return_exceptions=True)


def _is_django_handler(app: Any) -> bool:
    """Whether `app` is Django's own ASGI handler (or its static-files subclass), which serves HTTP only."""
    try:
        from django.core.handlers.asgi import ASGIHandler
    except ImportError:
        return False
    return isinstance(app, ASGIHandler)


def mount(api: Any, django_asgi_app: Any) -> BoltMount:
    """The ASGI application for `asgi.py`: `api`'s routes served by bolt, all the rest by Django."""
    return BoltMount(api, django_asgi_app)


class _LifespanApp:
    """One app's side of a shared lifespan: its own message queue and task."""

    def __init__(self, app: Any, scope: dict[str, Any], required: bool) -> None:
        self.app = app
        self.required = required  # bolt must take part; the other app may decline
        self.active = True
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._spoke = False
        self.task = asyncio.create_task(app(scope, self._inbox.get, self._outbox.put))

    async def step(self, message: dict[str, Any]) -> dict[str, Any] | None:
        """Hand the app one server message and return its reply; None once it has left the lifespan."""
        self._inbox.put_nowait(message)
        reply = asyncio.ensure_future(self._outbox.get())
        await asyncio.wait({reply, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if reply.done():
            self._spoke = True
            return reply.result()
        reply.cancel()
        self.active = False
        exc = None if self.task.cancelled() else self.task.exception()
        if self.required or self._spoke:
            phase = message["type"].rsplit(".", 1)[-1]
            detail = repr(exc) if exc is not None else "the app left the lifespan without answering"
            return {"type": f"lifespan.{phase}.failed", "message": detail}
        # Never answered: the app does not support the lifespan protocol (Django's handler raises ValueError).
        logger.debug("%r does not support the ASGI lifespan; only bolt's hooks run", self.app, exc_info=exc)
        return None


def find_api(app: Any, depth: int = 8) -> Any:
    """The BoltAPI inside an ASGI app: the app itself, or reached through the `api`, `app` or `application`
    attributes of the wrappers around it (bolt's mount, Django's static files handler, ...); else None."""
    from bolt.api import BoltAPI

    for _ in range(depth):
        if isinstance(app, BoltAPI):
            return app
        if isinstance(app, BoltMount):
            return app.api
        app = getattr(app, "app", None) or getattr(app, "application", None)
        if app is None:
            return None
    return None


def asgi_application() -> Any:
    """The ASGI application named by the ASGI_APPLICATION setting; None when that setting is unset.

    Raises ImportError with the setting's value when the name does not import.
    """
    path = setting("ASGI_APPLICATION")
    if not path:
        return None
    from django.utils.module_loading import import_string

    try:
        return import_string(path)
    except ImportError as exc:
        raise ImportError(f"ASGI_APPLICATION = {path!r} could not be imported: {exc}") from exc
