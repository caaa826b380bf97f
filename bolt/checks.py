"""bolt's system checks (`manage.py check`), registered by the app's ready() under the "bolt" tag.

bolt.W001  cookie or session authentication with no origin policy (no origin setting or argument, even empty)
bolt.W002  the memory backend with more than one worker configured (WEB_CONCURRENCY)
bolt.W003  ASGI_APPLICATION does not mount a BoltAPI (runserver would answer bolt's routes with 404)
bolt.W004  staticfiles comes before bolt in INSTALLED_APPS (its runserver wins over bolt's)
bolt.W005  an HTTP route of the mounted api has the path of a Django URL, which it hides
bolt.E001  BOLT_PUBSUB is not a URL bolt can use
bolt.E002  ASGI_APPLICATION does not import
bolt.E003  an allowed origin (CORS_ALLOWED_ORIGINS, BoltAPI(cors_allowed_origins=...)) is not scheme://host[:port]
bolt.E004  a CORS_ALLOWED_ORIGIN_REGEXES entry is not a regular expression that compiles
"""
from __future__ import annotations

import os
import re
from typing import Any

from django.core import checks
from django.utils.module_loading import import_string

from bolt.django import asgi_application, find_api, setting
from bolt.security.origin import parse_origin

_UNSET = object()  # a setting's default that tells "not set" from "set to a false value"


def register() -> None:
    for check in (check_origin_policy, check_origin_entries, check_pubsub, check_asgi_application, check_app_order,
                  check_shadowed_urls):
        checks.register(check, "bolt")


def _origin_policy_configured(api: Any) -> bool:
    """Whether the project states its origins: a setting or api argument given, even empty (same origin only)."""
    return (setting("CORS_ALLOWED_ORIGINS", _UNSET) is not _UNSET
            or setting("CORS_ALLOWED_ORIGIN_REGEXES", _UNSET) is not _UNSET
            or (api is not None and api.cors_allowed_origins is not None))


def _uses_cookie_auth(api: Any) -> bool:
    """Whether the default authentication or any route's reads a cookie (sessions, or a JWT cookie)."""
    entries: list[Any] = list(setting("BOLT_AUTHENTICATION_CLASSES", ()) or ())
    if api is not None:
        entries += api.auth or []
        for route in api.router.routes:
            entries += route.options.get("auth") or []
    for entry in entries:
        if isinstance(entry, str):  # a dotted path, made with no arguments by the pipeline: its class says
            try:
                entry = import_string(entry)
            except ImportError:
                continue  # the pipeline reports it when the route is first used
        if getattr(entry, "reads_cookie", False):
            return True
    return False


def _mounted_api() -> Any:
    try:
        return find_api(asgi_application())
    except Exception:
        return None  # reported by check_asgi_application


def check_origin_policy(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    api = _mounted_api()
    if not _uses_cookie_auth(api) or _origin_policy_configured(api):
        return []
    return [checks.Warning(
        "bolt routes authenticate by cookie and no origin policy is set: only the server's own origin is allowed.",
        hint="Pages served from another origin (a dev server on another port, 'localhost' vs '127.0.0.1') will "
             "be refused. List them in CORS_ALLOWED_ORIGINS, or BoltAPI(cors_allowed_origins=[...]); "
             "CORS_ALLOWED_ORIGINS = [] says that the server's own origin is the only one.",
        id="bolt.W001")]


def _entries(name: str, check_id: str) -> tuple[list[Any], list[checks.CheckMessage]]:
    """A list setting's entries, or an error when it is a single string (whose characters would be read)."""
    value = setting(name, ())
    if isinstance(value, (str, bytes)):
        return [], [checks.Error(f"{name} must be a list, not the string {value!r}.", hint=f"{name} = [{value!r}]",
                                 id=check_id)]
    return list(value or ()), []


def check_origin_entries(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """The origin policy is built at the first request that has an Origin, which an unusable entry fails
    (500): catch it at startup, with the policy's own parser."""
    origins, found = _entries("CORS_ALLOWED_ORIGINS", "bolt.E003")
    sources = [("CORS_ALLOWED_ORIGINS", origins)]
    api = _mounted_api()
    if api is not None and api.cors_allowed_origins:
        sources.append(("BoltAPI(cors_allowed_origins=...)", api.cors_allowed_origins))
    for name, entries in sources:
        for entry in entries:
            if entry == "*" or (isinstance(entry, str) and parse_origin(entry) is not None):
                continue
            found.append(checks.Error(
                f"{name} has {entry!r}, which is not an origin: every request with an Origin header would fail.",
                hint="An origin is scheme://host[:port] and nothing more: 'https://app.example', "
                     "'http://localhost:3000'. '*' allows every origin.", id="bolt.E003"))
    regexes, errors = _entries("CORS_ALLOWED_ORIGIN_REGEXES", "bolt.E004")
    found += errors
    for regex in regexes:
        try:
            # A str pattern, as the policy matches origins (text) with it; a string is compiled as the policy does.
            pattern = regex if isinstance(regex, re.Pattern) else re.compile(regex)
            if not isinstance(pattern.pattern, str):
                raise TypeError("a bytes pattern cannot match an origin")
        except (re.error, TypeError) as exc:
            found.append(checks.Error(
                f"CORS_ALLOWED_ORIGIN_REGEXES has {regex!r}, which is not a usable regular expression: {exc}",
                id="bolt.E004"))
    return found


def check_pubsub(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    url = setting("BOLT_PUBSUB") or "memory"
    if not isinstance(url, str):
        return []  # a Backend instance
    if url == "memory":
        workers = os.environ.get("WEB_CONCURRENCY", "1")
        if workers.isdigit() and int(workers) > 1:
            return [checks.Warning(
                f"BOLT_PUBSUB is the memory backend but WEB_CONCURRENCY={workers} workers are configured: "
                "a broadcast reaches only the clients of the worker that sent it.",
                hint='Set BOLT_PUBSUB = "redis://..." so every worker delivers every broadcast.',
                id="bolt.W002")]
        return []
    cluster = url.startswith(("redis+cluster://", "rediss+cluster://"))
    if not cluster and not url.startswith(("redis://", "rediss://", "unix://")):
        return [checks.Error(f"BOLT_PUBSUB = {url!r} is not a backend bolt knows.",
                             hint='Use "memory", a redis:// (rediss://, unix://) URL or, for a Redis Cluster, '
                                  'redis+cluster://host:port[,host:port...].', id="bolt.E001")]
    try:
        if cluster:
            from bolt.realtime.backends.redis_cluster import parse_cluster_url

            parse_cluster_url(url)
        else:
            from redis.connection import parse_url

            parse_url(url)
    except ImportError:
        return [checks.Error("BOLT_PUBSUB names Redis but the redis package is not installed.",
                             hint="pip install redis (bolt's \"redis\" extra)", id="bolt.E001")]
    except ValueError as exc:
        return [checks.Error(f"BOLT_PUBSUB = {url!r} does not parse: {exc}", id="bolt.E001")]
    return []


def check_asgi_application(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    name = setting("ASGI_APPLICATION")
    if not name:
        return []  # runserver says what to set when it is needed
    try:
        app = asgi_application()
    except Exception as exc:
        return [checks.Error(str(exc) if isinstance(exc, ImportError) else
                             f"ASGI_APPLICATION = {name!r} failed to import: {exc!r}",
                             id="bolt.E002")]
    if find_api(app) is None:
        return [checks.Warning(
            f"ASGI_APPLICATION = {name!r} does not mount a bolt api: its WebSocket and "
            "HTTP routes would be answered by Django (404).",
            hint="End asgi.py with `application = mount(api, django_app)` (bolt.django.mount).",
            id="bolt.W003")]
    return []


def check_app_order(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    installed = list(setting("INSTALLED_APPS", ()))
    names = [entry.rsplit(".apps.", 1)[0] for entry in installed]
    if "bolt" in names and "django.contrib.staticfiles" in names and \
            names.index("django.contrib.staticfiles") < names.index("bolt"):
        return [checks.Warning(
            "django.contrib.staticfiles comes before bolt in INSTALLED_APPS, so `runserver` is staticfiles' "
            "(WSGI, no WebSockets), not bolt's.",
            hint='Put "bolt" before "django.contrib.staticfiles".', id="bolt.W004")]
    return []


def check_shadowed_urls(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """bolt answers its routes' paths first (bolt.django.mount): a Django URL at the same path is never reached."""
    from django.urls import Resolver404, resolve

    api = _mounted_api()
    if api is None:
        return []
    found = []
    for route in api.router.routes:
        if route.kind != "http" or route.param_names:
            continue  # templated paths would need sample values; the literal ones are the likely clashes
        try:
            match = resolve(route.path)
        except Resolver404:
            continue
        found.append(checks.Warning(
            f"bolt's route {route.path} hides the Django URL {match.route or route.path!r} "
            f"({match.view_name or match.func!r}): bolt answers that path.",
            hint="Move one of them. bolt's own schema pages move with BoltAPI(openapi_url=..., asyncapi_url=..., "
                 "docs_url=...), or None to switch one off.",
            id="bolt.W005"))
    return found
