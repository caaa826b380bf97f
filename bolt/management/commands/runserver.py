"""`manage.py runserver` serving the project's ASGI application with uvicorn and bolt's WebSocket protocol.

It replaces Django's (and staticfiles') runserver when "bolt" comes before "django.contrib.staticfiles"
in INSTALLED_APPS. The options are Django's: an address and port, --noreload, --ipv6, and, as with
staticfiles, --nostatic and --insecure. The autoreloader is Django's own.
"""
from __future__ import annotations

import errno
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.core.management.commands.runserver import Command as DjangoRunserver
from django.db import connections

from bolt.cli import http_protocol, websocket_protocol
from bolt.django import asgi_application, setting

logger = logging.getLogger("django.server")
#: Seconds the autoreloader's process waits for the server's graceful shutdown (sockets closed with 1012,
#: the lifespan's shutdown) before it exits or restarts.
SHUTDOWN_TIMEOUT = 5.0


class Command(DjangoRunserver):
    help = "Starts a development web server serving ASGI_APPLICATION (bolt's routes and Django) with uvicorn."

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument("--nostatic", action="store_false", dest="use_static_handler",
                            help="Do not serve static files (staticfiles), even with DEBUG on.")
        parser.add_argument("--insecure", action="store_true", dest="insecure_serving",
                            help="Serve static files even with DEBUG off.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not setting("ASGI_APPLICATION"):
            raise CommandError(
                "bolt's runserver serves the ASGI application named by the ASGI_APPLICATION setting, which is "
                "not set. Add to your settings, for a project called mysite:\n"
                '    ASGI_APPLICATION = "mysite.asgi.application"\n'
                "where mysite/asgi.py ends with `application = mount(api, django_app)` (see docs/django.md).")
        super().handle(*args, **options)

    def run(self, **options: Any) -> None:
        """Django's run (the autoreloader's, or inner_run), and the server's graceful shutdown after it.

        Under the autoreloader, inner_run serves in a thread and the main thread watches files: a reload
        (sys.exit(3)), Ctrl-C (KeyboardInterrupt, caught by Django) or SIGTERM (sys.exit(0)) ends the
        main thread, and the process with it, under the running server: its sockets would drop with no
        close frame (1006). So stop the server first, as uvicorn itself does on a signal with --noreload.
        """
        if not 0 <= int(self.port) <= 65535:  # uvicorn would listen on the port modulo 65536
            raise CommandError(f"{self.port!r} is not a valid port number: ports go from 0 to 65535.")
        self._serving: tuple[_Server, threading.Thread] | None = None
        try:
            super().run(**options)
        finally:
            self._stop_serving()

    def _stop_serving(self) -> None:
        if self._serving is None:
            return
        server, thread = self._serving
        if thread is threading.current_thread():  # --noreload: uvicorn handled the signal and shut down
            return
        server.should_exit = True  # uvicorn's main loop sees it within 0.1 s and shuts down gracefully
        thread.join(SHUTDOWN_TIMEOUT)

    def get_handler(self, *args: Any, **options: Any) -> Any:
        """The ASGI application to serve: ASGI_APPLICATION, with static files in development."""
        try:
            app = asgi_application()
        except ImportError as exc:
            raise CommandError(str(exc)) from exc
        use_static = options.get("use_static_handler", True)
        if apps.is_installed("django.contrib.staticfiles") and use_static and (
                setting("DEBUG") or options.get("insecure_serving")):
            from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

            app = ASGIStaticFilesHandler(app)
        return AccessLog(app)

    def inner_run(self, *args: Any, **options: Any) -> None:
        from django.utils import autoreload

        autoreload.raise_last_exception()
        if not options["skip_checks"]:
            self.stdout.write("Performing system checks...\n\n")
            # All the checks, as Django's runserver runs them here (its own get_check_kwargs selects none,
            # so that BaseCommand.execute leaves them to this method).
            check_kwargs = BaseCommand.get_check_kwargs(self, options)
            check_kwargs["display_num_errors"] = True
            self.check(**check_kwargs)
        self.check_migrations()
        for conn in connections.all(initialized_only=True):
            conn.close()
        handler = self.get_handler(*args, **options)
        # log_config=None leaves Django's logging alone; the access lines come from AccessLog.
        # bolt run's protocols: bolt's WebSockets, and the HTTP parser with its request-head deadline.
        config = uvicorn.Config(handler, host=self.addr, port=int(self.port), ws=websocket_protocol(),
                                http=http_protocol(), lifespan="auto", log_config=None, access_log=False,
                                log_level="warning")
        server = _Server(config, self.on_bind)
        self._serving = (server, threading.current_thread())
        try:
            server.run()
        except OSError as exc:
            messages = {errno.EACCES: "You don't have permission to access that port.",
                        errno.EADDRINUSE: "That port is already in use.",
                        errno.EADDRNOTAVAIL: "That IP address can't be assigned to."}
            self.stderr.write(f"Error: {messages.get(exc.errno or 0, exc)}")
            os._exit(1)  # sys.exit would not end the process from the reloader's thread
        except KeyboardInterrupt:
            sys.exit(0)
        except SystemExit:
            # uvicorn logged why (the port is taken, say) and exits, which from the reloader's thread
            # would end only that thread and leave the process serving nothing.
            os._exit(1)
        if not server.started:  # uvicorn logs why (the lifespan failed, say) and returns
            os._exit(1)


class _Server(uvicorn.Server):
    """uvicorn's server, which says where it listens once it does: port 0 is a free port, as with Django."""

    def __init__(self, config: uvicorn.Config, on_bind: Callable[[int], None]) -> None:
        super().__init__(config)
        self.on_bind = on_bind

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.on_bind(self.servers[0].sockets[0].getsockname()[1])


class AccessLog:
    """Logs each request and WebSocket handshake as Django's development server does (logger "django.server").

    A WebSocket line has status 101 when the app accepted it, and the refusal's status (or 403) otherwise.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("root_path", "") + scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        logged = False

        def log(status: int, size: str = "") -> None:
            nonlocal logged
            logged = True
            if kind == "http":
                line = f'"{scope["method"]} {path} HTTP/{scope.get("http_version", "1.1")}" {status} {size}'
            else:
                line = f'"WEBSOCKET {path}" {status}'
            level = logging.WARNING if 400 <= status < 500 else logging.ERROR if status >= 500 else logging.INFO
            logger.log(level, line.rstrip(), extra={"status_code": status})

        status = 0
        size = 0

        async def logging_send(message: dict[str, Any]) -> None:
            nonlocal status, size
            event = message["type"]
            if event in ("http.response.start", "websocket.http.response.start"):
                status = message["status"]
            elif event == "http.response.body":
                size += len(message.get("body", b""))
                if not message.get("more_body"):
                    log(status, str(size))
            elif event == "websocket.accept":
                log(101)
            elif event == "websocket.close" and not logged:
                log(403)  # closed before accept: the server refuses the handshake with 403
            elif event == "websocket.http.response.body" and not message.get("more_body"):
                log(status)
            await send(message)

        started = time.monotonic()
        try:
            await self.app(scope, receive, logging_send)
        finally:
            if kind == "websocket" and logged and status == 0:
                logger.info('"WEBSOCKET %s" closed after %.1f s', path, time.monotonic() - started,
                            extra={"status_code": 101})
