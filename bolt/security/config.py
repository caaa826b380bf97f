"""The Django settings the security pipeline caches, and the signal that says one changed.

Settings are read with :func:`bolt.django.setting`."""
from __future__ import annotations

from typing import Any

# The settings the security pipeline caches (the others are read per request); a change to any of
# them (override_settings in tests) drops the cached origin and route policies.
WATCHED_SETTINGS = frozenset({
    "CORS_ALLOWED_ORIGINS", "CORS_ALLOWED_ORIGIN_REGEXES", "CORS_ALLOW_ALL_ORIGINS",
    "BOLT_AUTHENTICATION_CLASSES", "BOLT_DEFAULT_GUARDS", "BOLT_RATE_LIMIT_IPV6_PREFIX",
    "BOLT_ALLOW_MISSING_ORIGIN",
})


def watch_settings(receiver: Any) -> None:
    """Connect `receiver(setting=..., **kwargs)` to Django's setting_changed signal, weakly.

    A bound method is held by a weak reference, so a discarded api does not stay alive for the signal.
    """
    try:
        from django.core.signals import setting_changed
    except ImportError:
        return
    setting_changed.connect(receiver)
