"""Each refusal is logged once, with route, client and reason, and never with the credential."""
from __future__ import annotations

import logging

import pytest

from bolt import BoltAPI, WebSocket
from bolt.auth import APIKeyAuthentication, IsAuthenticated, JWTAuthentication
from bolt.middleware import rate_limit
from bolt.testing import WebSocketTestClient

from .conftest import SECRET, bearer, make_token


@pytest.mark.asyncio
async def test_refusals_are_logged_once_without_credentials(caplog):
    api = BoltAPI(cors_allowed_origins=["https://app.example.com"])

    @api.websocket("/ws/secure", auth=[JWTAuthentication(secret=SECRET), APIKeyAuthentication(["key-s3cr3t-value"])],
                   guards=[IsAuthenticated()])
    @rate_limit(rps=0.001, burst=3)
    async def secure(websocket: WebSocket):
        await websocket.accept()

    expired = make_token(expires_in=-10)
    attempts = [
        ({"Origin": "https://evil.example"}, "Origin not allowed"),
        (bearer(expired), "Token expired"),
        ({"X-API-Key": "key-s3cr3t-valu"}, "Invalid API key"),
        ({}, "Authentication required"),
        ({}, "Rate limit exceeded"),
    ]
    with caplog.at_level(logging.INFO, logger="bolt.security"):
        for headers, detail in attempts:
            caplog.clear()
            with pytest.raises(PermissionError, match=detail):
                async with WebSocketTestClient(api, "/ws/secure", headers=headers, client=("203.0.113.7", 5555)):
                    pass
            records = [r for r in caplog.records if r.name == "bolt.security"]
            assert len(records) == 1, [r.getMessage() for r in records]
            message = records[0].getMessage()
            assert "/ws/secure" in message and "203.0.113.7" in message and detail in message
            assert expired not in message and "key-s3cr3t" not in message
    assert caplog.records[-1].levelno == logging.INFO


@pytest.mark.asyncio
async def test_origin_refusal_is_a_warning(caplog):
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()

    with caplog.at_level(logging.INFO, logger="bolt.security"):
        with pytest.raises(PermissionError):
            async with WebSocketTestClient(api, "/ws", headers={"Origin": "https://evil.example"}):
                pass
    assert [r.levelno for r in caplog.records if r.name == "bolt.security"] == [logging.WARNING]
