"""Django's `ALLOWED_HOSTS` on bolt's routes: a request naming a host the project does not serve is
refused with 400, as Django's own views refuse it.

Such a request is a misdirected client, or DNS rebinding: a page on a name the attacker controls,
resolved to this server, whose requests carry that name as their Host and so pass for same-origin
ones. The list is Django's, with Django's default while `DEBUG` is on and it is empty; with
`USE_X_FORWARDED_HOST` the host is the `X-Forwarded-Host` header's, as Django reads it, for this
check and for the same-origin check alike. Without Django settings there is no list, and every
host passes. The settings are read once and again when Django says one changed (tests override
them); each host's verdict is kept, a few hundred at most.
"""
from __future__ import annotations

from typing import Any

from bolt.datastructures import scope_header
from bolt.django import django_settings
from bolt.security.config import watch_settings

#: The detail of the 400 a request for another host gets.
INVALID_HOST = "Invalid Host header"

# What Django allows while DEBUG is on and ALLOWED_HOSTS is empty (HttpRequest.get_host).
_DEBUG_HOSTS = [".localhost", "127.0.0.1", "[::1]"]
_SETTINGS = frozenset({"ALLOWED_HOSTS", "DEBUG", "USE_X_FORWARDED_HOST"})
_MAX_VERDICTS = 512


class _Hosts:
    """The allowed hosts as read from the settings (None: any host), and the verdicts given so far."""

    def __init__(self) -> None:
        settings = django_settings()
        self.allowed: list[str] | None = None
        self.forwarded = False
        if settings is not None:
            allowed = list(settings.ALLOWED_HOSTS) or (_DEBUG_HOSTS if settings.DEBUG else [])
            self.allowed = None if "*" in allowed else allowed
            self.forwarded = bool(settings.USE_X_FORWARDED_HOST)
        self.verdicts: dict[str, bool] = {}


_hosts: _Hosts | None = None


def _current() -> _Hosts:
    global _hosts
    if _hosts is None:
        _hosts = _Hosts()
    return _hosts


def _setting_changed(setting: str = "", **kwargs: Any) -> None:
    global _hosts
    if setting in _SETTINGS:
        _hosts = None


watch_settings(_setting_changed)


def request_host(scope: dict[str, Any]) -> str | None:
    """The host a request names, as Django's `get_host()` reads it: `X-Forwarded-Host` with
    `USE_X_FORWARDED_HOST` (repeated ones joined with commas, as Django joins them), else `Host`."""
    if _current().forwarded:
        forwarded = [value for name, value in scope.get("headers") or () if name == b"x-forwarded-host"]
        if forwarded:
            return b",".join(forwarded).decode("latin-1")
    return scope_header(scope, b"host")


def host_allowed(scope: dict[str, Any]) -> bool:
    """Whether the request's host is one of Django's `ALLOWED_HOSTS` (always, without Django settings)."""
    hosts = _current()
    if hosts.allowed is None:
        return True
    host = request_host(scope)
    if host is None:  # HTTP/1.0 without Host: the server's own address, as Django's SERVER_NAME
        server = scope.get("server")
        host = server[0] if server else ""
    verdict = hosts.verdicts.get(host)
    if verdict is None:
        from django.http.request import split_domain_port, validate_host

        domain, _ = split_domain_port(host)
        verdict = bool(domain) and validate_host(domain, hosts.allowed)
        if len(hosts.verdicts) >= _MAX_VERDICTS:  # hosts come from clients: the table stays small
            hosts.verdicts.clear()
        hosts.verdicts[host] = verdict
    return verdict
