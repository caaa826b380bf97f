"""Authentication backends, the auth context they produce, and the user object behind it.

A backend's `authenticate(conn)` returns an `AuthContext` when its credentials are present and
valid, None when they are absent, and raises `AuthenticationFailed` when they are present but bad.
The guards that read the context are in :mod:`bolt.security.guards`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import jwt

from bolt.django import django_apps_ready, django_settings, setting
from bolt.websocket import WebSocket

if TYPE_CHECKING:
    from jwt.types import Options

MAX_TOKEN_LENGTH = 8192
# Longer tokens are verified every time rather than remembered, which bounds the cache's memory.
MAX_CACHED_TOKEN_LENGTH = 2048
MAX_API_KEY_LENGTH = 1024

# The key type each JWT algorithm verifies with. One backend uses one key type: accepting an HMAC
# algorithm beside a public-key one is how an RSA public key ends up used as an HMAC secret.
_KEY_TYPES = {
    "HS256": "hmac", "HS384": "hmac", "HS512": "hmac",
    "RS256": "rsa", "RS384": "rsa", "RS512": "rsa", "PS256": "rsa", "PS384": "rsa", "PS512": "rsa",
    "ES256": "ec", "ES384": "ec", "ES512": "ec", "ES256K": "ec",
    "EdDSA": "okp",
}


class AuthenticationFailed(Exception):
    """Credentials were presented and are not valid; refused with 401 and `detail`."""

    def __init__(self, detail: str = "Invalid credentials") -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class AuthContext:
    """Who is on the other end, as established by an authentication backend.

    `source` says where the credential came from ("header", "query", "cookie"); the pipeline uses it
    to refuse cookie credentials from origins admitted only by a wildcard.
    """

    user_id: str | None = None
    is_staff: bool = False
    is_superuser: bool = False
    permissions: frozenset[str] = frozenset()
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    backend: str | None = None
    source: str | None = None
    django_user: Any = None  # the Django user, when the backend loaded one
    session_key: str | None = None  # the handshake's Django session, which the WebSocket ends with (bolt.sessions)
    #: When the credentials stop being valid (epoch seconds, leeway included), or None if they do not
    #: expire. An open WebSocket is closed at that moment (bolt.security.expiry).
    expires_at: float | None = None

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    def has_perm(self, permission: str) -> bool:
        """Django's rule: an (active) superuser holds every permission."""
        return self.is_superuser or permission in self.permissions


ANONYMOUS = AuthContext()


def _claim_flag(claims: Mapping[str, Any], name: str) -> bool:
    # Only a JSON true counts: "false" is a truthy string.
    return claims.get(name) is True


def _claim_permissions(claims: Mapping[str, Any]) -> frozenset[str]:
    perms = claims.get("permissions", ())
    if isinstance(perms, str) or not isinstance(perms, (list, tuple)):
        return frozenset()
    return frozenset(p for p in perms if isinstance(p, str))


class BaseAuthentication:
    """Base for authentication backends; subclasses implement `authenticate`.

    A backend whose credentials are tokens may also implement `authenticate_token(conn, token)`,
    which `bolt.security.refresh_credentials` calls with a token sent on an open WebSocket; the
    default returns None (this backend takes no such token).
    """

    #: The challenge a 401 refusal of a route that uses this backend carries in WWW-Authenticate
    #: (RFC 9110 11.6.1), beside those of the route's other backends.
    challenge: str | None = None
    #: Whether the backend reads a cookie: the answers of its HTTP routes then vary by Cookie.
    reads_cookie: bool = False

    async def authenticate(self, conn: Any) -> AuthContext | None:
        raise NotImplementedError

    async def authenticate_token(self, conn: Any, token: str) -> AuthContext | None:
        return None


class JWTAuthentication(BaseAuthentication):
    """Bearer JSON Web Tokens, verified by pyjwt against an explicit algorithm allow-list.

    `secret` is the HMAC secret (default: Django's SECRET_KEY) or, for RS*/PS*/ES*/EdDSA, the PEM
    public key. `exp` is required unless `require` says otherwise; `nbf`, `aud` and `iss` are checked.
    The token is read from the `header` (`Authorization: Bearer ...`, scheme case-insensitive), then
    from `query_param` and `cookie` when those opt-in sources are named.

    Verified tokens are remembered (at most `cache_size`, each only until its `exp` plus leeway, read
    as pyjwt reads it: `int(exp)`, so `"exp": "1796163422"` counts too), so a client reconnecting with
    the same token is not verified again; only tokens that passed every check enter the cache, keyed by
    the exact token and the key that verified it. `cache_size=0` verifies every time.
    """

    challenge = "Bearer"

    def __init__(self, secret: str | bytes | None = None, algorithms: Iterable[str] = ("HS256",),
                 audience: str | Iterable[str] | None = None, issuer: str | None = None,
                 leeway: float | timedelta = 0,
                 header: str | None = "authorization", query_param: str | None = None,
                 cookie: str | None = None, *, require: Iterable[str] = ("exp",),
                 user_id_claim: str = "sub", max_length: int = MAX_TOKEN_LENGTH, cache_size: int = 1024) -> None:
        algorithms = list(algorithms) if not isinstance(algorithms, str) else [algorithms]
        if not algorithms:
            raise ValueError("JWTAuthentication needs at least one algorithm")
        unknown = [a for a in algorithms if a not in _KEY_TYPES]
        if unknown:
            raise ValueError(f"unsupported JWT algorithms {unknown}; 'none' is never accepted")
        key_types = {_KEY_TYPES[a] for a in algorithms}
        if len(key_types) > 1:
            raise ValueError(f"JWT algorithms {algorithms} need different key types; mixing them "
                             "(HMAC with RSA/EC) opens key-confusion attacks")
        if not (header or query_param or cookie):
            raise ValueError("JWTAuthentication needs a header, query_param or cookie to read the token from")
        self.algorithms = algorithms
        self.key_type = key_types.pop()
        self.audience = audience if audience is None or isinstance(audience, str) else list(audience)
        self.issuer = issuer
        # pyjwt takes a timedelta too; seconds are what the expiry arithmetic below needs.
        self.leeway = leeway.total_seconds() if isinstance(leeway, timedelta) else float(leeway)
        self.header = header.lower() if header else None
        self.query_param = query_param
        self.cookie = cookie
        self.reads_cookie = cookie is not None
        self.user_id_claim = user_id_claim
        self.max_length = max_length
        self.options: Options = {"require": list(require)}
        self.cache_size = cache_size
        # token -> (verifying key, valid until (epoch seconds), context)
        self._verified: OrderedDict[str, tuple[Any, float, AuthContext]] = OrderedDict()
        self._key: Any = None
        if secret is not None:
            # Preparing once refuses a PEM key given as an HMAC secret (or the reverse) at startup.
            self._key = jwt.get_algorithm_by_name(algorithms[0]).prepare_key(secret)
            if self.key_type != "hmac" and hasattr(self._key, "public_key"):
                # Given the private key, verify with its public half (a private key cannot verify).
                self._key = self._key.public_key()
        elif self.key_type != "hmac":
            raise ValueError(f"JWTAuthentication with {algorithms[0]} needs the public key as `secret`")

    def _verification_key(self) -> Any:
        if self._key is not None:
            return self._key
        # Read on each use, so a SECRET_KEY changed by the test suite is honoured.
        secret = setting("SECRET_KEY")
        if not secret:
            raise RuntimeError("JWTAuthentication has no secret: pass secret= or configure Django's SECRET_KEY")
        return secret

    def _token(self, conn: Any) -> tuple[str, str] | None:
        if self.header is not None:
            value = conn.headers.get(self.header)
            if value is not None:
                scheme, _, token = value.strip().partition(" ")
                if scheme.lower() == "bearer":
                    return token.strip(), "header"
                if self.header != "authorization" and not token:
                    return scheme, "header"  # a dedicated header may carry the bare token
        if self.query_param is not None:
            token = conn.query_params.get(self.query_param)
            if token:
                return token, "query"
        if self.cookie is not None:
            token = conn.cookies.get(self.cookie)
            if token:
                return token, "cookie"
        return None

    async def authenticate(self, conn: Any) -> AuthContext | None:
        found = self._token(conn)
        if found is None:
            return None
        return self._authenticate(*found)

    async def authenticate_token(self, conn: Any, token: str) -> AuthContext | None:
        """Verify a token sent on an open WebSocket (an in-band refresh); its source is "message"."""
        return self._authenticate(token, "message")

    def _authenticate(self, token: str, source: str) -> AuthContext:
        if not token or len(token) > self.max_length:
            raise AuthenticationFailed("Invalid token")
        key = self._verification_key()
        cached = self._verified.get(token)
        if cached is not None and cached[0] is key and time.time() < cached[1]:
            self._verified.move_to_end(token)
            context = cached[2]
        else:
            context = self._verify(token, key)
            if self.cache_size and len(token) <= MAX_CACHED_TOKEN_LENGTH:
                valid_until = context.expires_at if context.expires_at is not None else math.inf
                self._verified[token] = (key, valid_until, context)
                if len(self._verified) > self.cache_size:
                    self._verified.popitem(last=False)
        return context if context.source == source else dataclasses.replace(context, source=source)

    def _verify(self, token: str, key: Any) -> AuthContext:
        try:
            claims = jwt.decode(token, key, algorithms=self.algorithms, audience=self.audience, issuer=self.issuer,
                                leeway=self.leeway, options=self.options)
        except jwt.ExpiredSignatureError:
            raise AuthenticationFailed("Token expired") from None
        except (jwt.PyJWTError, ValueError, TypeError, KeyError, OverflowError):
            # Every other way a token can be wrong (bad signature, algorithm, claims, shape) is the
            # same answer to the client; the exception itself is never echoed.
            raise AuthenticationFailed("Invalid token") from None
        subject = claims.get(self.user_id_claim, claims.get("user_id"))
        # A token must name someone: no subject, a structure, or a blank string is no identity.
        if subject is None or isinstance(subject, (dict, list, bool)) or not str(subject).strip():
            raise AuthenticationFailed("Invalid token")
        expires_at = None
        if "exp" in claims:
            try:
                # pyjwt's own reading of exp, so no verdict of ours outlives what it would accept now.
                expires_at = int(claims["exp"]) + self.leeway
            except (ValueError, TypeError, OverflowError):
                raise AuthenticationFailed("Invalid token") from None
        return AuthContext(
            user_id=str(subject),
            is_staff=_claim_flag(claims, "is_staff"),
            is_superuser=_claim_flag(claims, "is_superuser"),
            permissions=_claim_permissions(claims),
            claims=MappingProxyType(claims),
            backend="jwt",
            source="header",
            expires_at=expires_at,
        )


class APIKeyAuthentication(BaseAuthentication):
    """Static API keys read from a header, compared in constant time.

    `api_keys` is a key, a collection of keys, or a mapping of key to the user id it stands for;
    `key_permissions` maps a key to the permissions it grants. The key never appears in the
    context: its user id defaults to a short fingerprint.
    """

    def __init__(self, api_keys: str | Iterable[str] | Mapping[str, str], header: str = "x-api-key",
                 key_permissions: Mapping[str, Iterable[str]] | None = None) -> None:
        if isinstance(api_keys, str):  # one key, not a collection of its characters
            api_keys = [api_keys]
        owners = dict(api_keys) if isinstance(api_keys, Mapping) else {k: None for k in api_keys}
        if not owners or any(not isinstance(k, str) or not k for k in owners):
            raise ValueError("APIKeyAuthentication needs at least one non-empty string key")
        perms = key_permissions or {}
        self.header = header.lower()
        self.challenge = f'APIKey header="{self.header}"'  # no registered scheme; this one names the header
        self._keys = [
            (key.encode(), owner or f"apikey:{hashlib.sha256(key.encode()).hexdigest()[:16]}",
             frozenset(perms.get(key, ())))
            for key, owner in owners.items()
        ]

    async def authenticate(self, conn: Any) -> AuthContext | None:
        presented = conn.headers.get(self.header)
        if presented is None:
            return None
        raw = presented.strip().encode("latin-1")
        if not raw or len(raw) > MAX_API_KEY_LENGTH:
            raise AuthenticationFailed("Invalid API key")
        match = None
        for key, owner, perms in self._keys:
            # Every key is compared, so the time taken does not say which one (if any) was close.
            if hmac.compare_digest(key, raw):
                match = (owner, perms)
        if match is None:
            raise AuthenticationFailed("Invalid API key")
        return AuthContext(user_id=match[0], permissions=match[1], backend="api_key", source="header")


class SessionAuthentication(BaseAuthentication):
    """Django's session cookie resolved to the Django user with the async ORM.

    The browser attaches this cookie to any page's WebSocket, so the pipeline only accepts it from
    origins that are the same origin or explicitly allowed: never from one admitted by `*`.

    A WebSocket authenticated this way is closed with 4001 "session ended" when its session ends in
    any worker: logout, session deletion, a password change that invalidates the session, the user
    deactivated (see bolt.sessions; "bolt" must be in INSTALLED_APPS). `close_on_session_end=False`
    lets a route's sockets outlive their session.
    """

    reads_cookie = True

    def __init__(self, *, close_on_session_end: bool = True) -> None:
        self.close_on_session_end = close_on_session_end

    async def authenticate(self, conn: Any) -> AuthContext | None:
        settings = django_settings()
        if settings is None:
            raise RuntimeError("SessionAuthentication needs Django settings to be configured")
        session_key = conn.cookies.get(settings.SESSION_COOKIE_NAME)
        if not session_key:
            return None
        user = await session_user(session_key)
        if not user.is_authenticated:
            return None  # an expired or foreign session is simply no session
        bound = self.close_on_session_end and isinstance(conn, WebSocket)
        if bound and conn.hub is not None:
            from bolt.sessions import watch

            await watch(conn.hub)
        return AuthContext(
            user_id=str(user.pk),
            is_staff=bool(user.is_staff),
            is_superuser=bool(user.is_superuser),
            permissions=frozenset(await user.aget_all_permissions()),
            backend="session",
            source="cookie",
            django_user=user,
            session_key=session_key if bound else None,
        )


async def session_user(session_key: str) -> Any:
    """The user of a Django session, as Django's `aget_user` finds it (it checks the session's password
    hash and that the user is still active); AnonymousUser when the session is gone or no longer valid.

    Only a question: the session is left as it is. (For a request, `aget_user` flushes a session whose
    hash no longer matches; here that would race with the request that is changing the password and
    renewing its own session: see bolt.sessions.)"""
    from importlib import import_module

    settings = django_settings()
    assert settings is not None, "a Django session is read only once Django's settings are loaded"
    django_apps_ready()
    from django.contrib.auth import aget_user

    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return await aget_user(_SessionCarrier(_ReadOnlySession(store)))


class _SessionCarrier:
    """The one attribute of an HttpRequest that `aget_user` reads."""

    __slots__ = ("session",)

    def __init__(self, session: Any) -> None:
        self.session = session


class _ReadOnlySession:
    """What `aget_user` uses of a session store, with its writes (flush, cycle, set) left out."""

    __slots__ = ("_store",)

    def __init__(self, store: Any) -> None:
        self._store = store

    async def aget(self, key: str, default: Any = None) -> Any:
        return await self._store.aget(key, default)

    async def aset(self, key: str, value: Any) -> None:
        pass

    async def aflush(self) -> None:
        pass

    async def acycle_key(self) -> None:
        pass


# -- the user object ------------------------------------------------------------------------------

class AnonymousUser:
    """Stands in for Django's AnonymousUser when Django is not configured."""

    pk = id = None
    is_authenticated = False
    is_anonymous = True
    is_active = is_staff = is_superuser = False

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def __repr__(self) -> str:
        return "AnonymousUser"


class TokenUser:
    """The user a token or API key describes, before (or without) loading a Django model."""

    is_authenticated = True
    is_anonymous = False
    is_active = True

    def __init__(self, auth: AuthContext) -> None:
        self.auth = auth
        self.pk = self.id = auth.user_id
        self.is_staff = auth.is_staff
        self.is_superuser = auth.is_superuser

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return self.auth.has_perm(perm)

    def __repr__(self) -> str:
        return f"TokenUser({self.pk!r})"


def anonymous_user() -> Any:
    if django_settings() is not None:
        django_apps_ready()
        from django.contrib.auth.models import AnonymousUser as DjangoAnonymousUser

        return DjangoAnonymousUser()
    return AnonymousUser()


def user_for(conn: Any) -> Any:
    """`conn.user`: the Django user the authentication found, a TokenUser for token/API-key auth, else anonymous."""
    auth = conn.auth
    if auth.django_user is not None:
        return auth.django_user
    return TokenUser(auth) if auth.is_authenticated else anonymous_user()


async def auser_for(conn: Any) -> Any:
    """`await conn.auser()`: the Django user model instance for the authenticated subject (`conn` keeps it)."""
    auth = conn.auth
    if auth.django_user is not None:
        return auth.django_user
    if auth.is_authenticated and django_settings() is not None:
        django_apps_ready()
        from django.contrib.auth import get_user_model
        from django.core.exceptions import ValidationError

        model = get_user_model()
        try:
            return await model._default_manager.aget(pk=auth.user_id)
        except (model.DoesNotExist, ValueError, TypeError, ValidationError):  # no user, or not a key (a UUID's)
            return anonymous_user()
    return TokenUser(auth) if auth.is_authenticated else anonymous_user()
