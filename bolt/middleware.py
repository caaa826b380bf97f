"""The guide's import path for `@rate_limit`, which lives in :mod:`bolt.security.limits`."""
from __future__ import annotations

from bolt.security.limits import ON_MESSAGE_LIMIT, RATE_LIMIT_ATTR, RateLimit, rate_limit

__all__ = ["ON_MESSAGE_LIMIT", "RATE_LIMIT_ATTR", "RateLimit", "rate_limit"]
