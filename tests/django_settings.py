"""Django settings shared by the tests that need Django: call `configure_django()` before using it.

Idempotent, so any test module may call it at import time. Settings for features under test
(CORS origins, auth) are overridden per test with `django.test.override_settings`, not added here.
"""
from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def configure_django() -> None:
    """Configure Django once per process (in-memory SQLite, auth/sessions, tests' urls) and set it up."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    if HERE not in sys.path:  # so ROOT_URLCONF resolves under any pytest import mode
        sys.path.insert(0, HERE)
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bolt-tests-only-not-secret",
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "bolt",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        ROOT_URLCONF="django_urls",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
    )
    django.setup()
