"""Optional Django settings: read only when Django is installed and its settings are configured."""
from __future__ import annotations

from typing import Any

# The settings the security pipeline caches (the others are read per request); a change to any of
# them (override_settings in tests) drops the cached origin and route policies.
WATCHED_SETTINGS = frozenset({
    "CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGIN_REGEXES", "CORS_ALLOW_ALL_ORIGINS",
    "BOLT_AUTHENTICATION_CLASSES", "BOLT_DEFAULT_GUARDS", "BOLT_RATE_LIMIT_IPV6_PREFIX",
    "BOLT_ALLOW_MISSING_ORIGIN",
})


def django_settings() -> Any | None:
    """Django's settings object when it is configured, else None (bolt runs without Django too)."""
    try:
        from django.conf import settings
    except ImportError:
        return None
    return settings if settings.configured else None


def setting(name: str, default: Any = None) -> Any:
    """One Django setting, or `default` when Django is absent, unconfigured, or lacks the setting."""
    settings = django_settings()
    return getattr(settings, name, default) if settings is not None else default


def watch_settings(receiver: Any) -> None:
    """Connect `receiver(setting=..., **kwargs)` to Django's setting_changed signal, weakly.

    A bound method is held by a weak reference, so a discarded api does not stay alive for the signal.
    """
    try:
        from django.core.signals import setting_changed
    except ImportError:
        return
    setting_changed.connect(receiver)
