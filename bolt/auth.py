"""The guide's import path for authentication and guards, which live in :mod:`bolt.security`.

``from bolt.auth import JWTAuthentication, IsAuthenticated`` and setting paths such as
``"bolt.auth.JWTAuthentication"`` keep working; the code is in :mod:`bolt.security.auth`
(backends, the auth context, the user object) and :mod:`bolt.security.guards`.
"""
from __future__ import annotations

from bolt.security.auth import (
    ANONYMOUS,
    MAX_API_KEY_LENGTH,
    MAX_CACHED_TOKEN_LENGTH,
    MAX_TOKEN_LENGTH,
    AnonymousUser,
    APIKeyAuthentication,
    AuthContext,
    AuthenticationFailed,
    BaseAuthentication,
    JWTAuthentication,
    SessionAuthentication,
    TokenUser,
    anonymous_user,
    auser_for,
    session_user,
    user_for,
)
from bolt.security.guards import (
    AllowAny,
    BaseGuard,
    HasAllPermissions,
    HasAnyPermission,
    HasPermission,
    IsAdminUser,
    IsAuthenticated,
    IsStaff,
    run_guard,
)

__all__ = [
    "ANONYMOUS", "MAX_API_KEY_LENGTH", "MAX_CACHED_TOKEN_LENGTH", "MAX_TOKEN_LENGTH",
    "APIKeyAuthentication", "AllowAny", "AnonymousUser", "AuthContext", "AuthenticationFailed",
    "BaseAuthentication", "BaseGuard", "HasAllPermissions", "HasAnyPermission", "HasPermission",
    "IsAdminUser", "IsAuthenticated", "IsStaff", "JWTAuthentication", "SessionAuthentication", "TokenUser",
    "anonymous_user", "auser_for", "run_guard", "session_user", "user_for",
]
