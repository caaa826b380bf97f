"""`Denial`: the answer to a refused request or handshake."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Denial:
    """Why a request or handshake was refused, and how to answer it: status, headers, JSON body."""

    status_code: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"detail": self.detail, **self.extra}
