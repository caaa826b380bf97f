"""The security pipeline shared by HTTP and WS: origin -> rate limit -> auth -> guards; and the end
of open WebSockets whose credentials expire, with their in-band refresh."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bolt.security.denial import Denial
from bolt.security.expiry import CREDENTIALS_EXPIRED, CREDENTIALS_EXPIRED_REASON
from bolt.security.origin import Admission, OriginPolicy
from bolt.security.pipeline import SecurityPipeline

if TYPE_CHECKING:
    from bolt.security.auth import AuthContext

__all__ = ["CREDENTIALS_EXPIRED", "CREDENTIALS_EXPIRED_REASON", "Admission", "Denial", "OriginPolicy",
           "SecurityPipeline", "refresh_credentials"]


async def refresh_credentials(websocket: Any, token: str) -> AuthContext:
    """Give an open WebSocket new credentials: `token` goes through the route's authentication
    backends (those with `authenticate_token`, such as JWTAuthentication) and guards again.

    On success the connection's `auth` is the new context and its 4401 deadline moves to the new
    expiry (or goes, for credentials that do not expire). Raises AuthenticationFailed, leaving the
    connection as it was, when the token is invalid or expired, is for another user (or another kind
    of credentials), or fails a guard.
    """
    context: AuthContext = await websocket.app.security.refresh(websocket, token)
    return context
