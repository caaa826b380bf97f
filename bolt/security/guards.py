"""Guards: callables taking the connection and returning (or awaiting to) a bool.

The subclasses of `BaseGuard` read the `AuthContext` the authentication backends established.
"""
from __future__ import annotations

import inspect
from typing import Any

from bolt.security.auth import AuthContext

__all__ = ["AllowAny", "BaseGuard", "HasAllPermissions", "HasAnyPermission", "HasPermission", "IsAdminUser",
           "IsAuthenticated", "IsStaff", "run_guard"]


class BaseGuard:
    """Base for guards: implement `has_permission(auth, conn)`, sync or async."""

    def has_permission(self, auth: AuthContext, conn: Any) -> Any:
        raise NotImplementedError

    def __call__(self, conn: Any) -> Any:
        return self.has_permission(conn.auth, conn)

    def __repr__(self) -> str:
        args = ", ".join(repr(value) for value in vars(self).values())
        return f"{type(self).__name__}({args})"


class AllowAny(BaseGuard):
    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return True


class IsAuthenticated(BaseGuard):
    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return auth.is_authenticated


class IsAdminUser(BaseGuard):
    """A superuser (the `is_superuser` claim or Django flag)."""

    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return auth.is_authenticated and auth.is_superuser


class IsStaff(BaseGuard):
    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return auth.is_authenticated and auth.is_staff


class HasPermission(BaseGuard):
    def __init__(self, permission: str) -> None:
        self.permission = permission

    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return auth.is_authenticated and auth.has_perm(self.permission)


class HasAnyPermission(BaseGuard):
    def __init__(self, *permissions: str) -> None:
        if not permissions:
            raise ValueError("HasAnyPermission needs at least one permission")
        self.permissions = permissions

    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return auth.is_authenticated and any(auth.has_perm(p) for p in self.permissions)


class HasAllPermissions(BaseGuard):
    def __init__(self, *permissions: str) -> None:
        if not permissions:
            raise ValueError("HasAllPermissions needs at least one permission")
        self.permissions = permissions

    def has_permission(self, auth: AuthContext, conn: Any) -> bool:
        return auth.is_authenticated and all(auth.has_perm(p) for p in self.permissions)


async def run_guard(guard: Any, conn: Any) -> bool:
    """Call a guard (a BaseGuard or any callable taking the connection) and await it if needed."""
    result = guard(conn)
    if result is True or result is False:  # most guards: no awaitable check (an ABC lookup) needed
        return result
    if inspect.isawaitable(result):
        result = await result
    return result is True
