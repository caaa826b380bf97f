"""bolt as a Django app: `INSTALLED_APPS = ["bolt", ...]` gives bolt.js to staticfiles, bolt's system
checks, bolt's `runserver`, and closes the sockets of sessions that end (see bolt.sessions)."""
from __future__ import annotations

from django.apps import AppConfig


class BoltConfig(AppConfig):
    name = "bolt"
    verbose_name = "bolt"

    def ready(self) -> None:
        from bolt import checks, sessions

        checks.register()
        sessions.connect_signals()
