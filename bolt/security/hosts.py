"""Django's `ALLOWED_HOSTS` on bolt's routes: a request naming a host the project does not serve is
refused with 400, as Django's own views refuse it.

Such a request is a misdirected client, or DNS rebinding: a page on a name the attacker controls,
resolved to this server, whose requests carry that name as their Host and so pass for same-origin
ones. The list is Django's, read on each request (tests override it), with Django's default while
`DEBUG` is on and it is empty; `USE_X_FORWARDED_HOST` is honoured as Django honours it. Without
Django settings there is no list, and every host passes.
"""
from __future__ import annotations

from typing import Any

from bolt.datastructures import scope_header
from bolt.django import django_settings

#: The detail of the 400 a request for another host gets.
INVALID_HOST = "Invalid Host header"

# What Django allows while DEBUG is on and ALLOWED_HOSTS is empty (HttpRequest.get_host).
_DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]


def host_allowed(scope: dict[str, Any]) -> bool:
    """Whether the request's host is one of Django's `ALLOWED_HOSTS` (always, without Django settings)."""
    settings = django_settings()
    if settings is None:
        return True
    allowed = settings.ALLOWED_HOSTS
    if not allowed and settings.DEBUG:
        allowed = _DEBUG_HOSTS
    if "*" in allowed:
        return True
    host = settings.USE_X_FORWARDED_HOST and scope_header(scope, b"x-forwarded-host") or scope_header(scope, b"host")
    if host is None:  # HTTP/1.0 without Host: the server's own address, as Django's SERVER_NAME
        server = scope.get("server")
        host = server[0] if server else ""
    from django.http.request import split_domain_port, validate_host

    domain, _ = split_domain_port(host)
    return bool(domain) and validate_host(domain, allowed)
