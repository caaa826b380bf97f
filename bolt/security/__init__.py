"""The security pipeline shared by HTTP and WebSocket routes: origin -> rate limit -> auth -> guards."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Denial:
    """Why a request or handshake was refused, and how to answer it."""

    status_code: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}


class SecurityPipeline:
    """Runs each route's checks in order and returns the first Denial, or None to let it through."""

    def __init__(self, api: Any) -> None:
        self.api = api

    async def check(self, conn: Any, route: Any) -> Denial | None:
        return None
