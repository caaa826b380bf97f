"""Errors a handler raises to answer with an HTTP error status."""
from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

_CLASS_PHRASES = {4: "Client Error", 5: "Server Error"}


class HTTPException(Exception):
    """Answer the request with `status_code` and a JSON body `{"detail": detail}`."""

    def __init__(self, status_code: int, detail: Any = None, headers: Mapping[str, str] | None = None) -> None:
        if not 100 <= status_code <= 599:
            raise ValueError(f"{status_code} is not an HTTP status code")
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:  # a status of no registry's (499, say): its class speaks for it
                detail = _CLASS_PHRASES.get(status_code // 100, "Error")
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status_code}: {self.detail}"
