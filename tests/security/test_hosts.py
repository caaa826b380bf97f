"""Django's ALLOWED_HOSTS on bolt's HTTP routes and WebSocket handshakes, as Django's views hold to it."""
from __future__ import annotations

import pytest
from django.test import override_settings

from bolt import BoltAPI, WebSocket
from bolt.testing import AsyncTestClient, HandshakeRejected, WebSocketTestClient


def host_api() -> BoltAPI:
    api = BoltAPI()

    @api.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "world"}

    @api.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hi")

    return api


async def http_status(api: BoltAPI, host: str, **headers: str) -> int:
    return (await AsyncTestClient(api).get("/hello", headers={"Host": host, **headers})).status_code


async def handshake(api: BoltAPI, host: str) -> int:
    try:
        async with WebSocketTestClient(api, "/ws", headers={"Host": host}) as ws:
            assert await ws.receive_text() == "hi"
            return 101
    except HandshakeRejected as exc:
        return exc.status_code


@pytest.mark.asyncio
async def test_a_host_not_in_allowed_hosts_is_refused_with_400(caplog):
    # DNS rebinding: a page on the attacker's name, resolved to this server, passes for same-origin.
    api = host_api()
    with override_settings(ALLOWED_HOSTS=["chat.example", ".example.org"]):
        assert await http_status(api, "chat.example") == 200
        assert await http_status(api, "chat.example:8000") == 200  # the port is not compared, as in Django
        assert await http_status(api, "www.example.org") == 200
        assert await handshake(api, "chat.example") == 101
        refused = await AsyncTestClient(api).get("/hello", headers={"Host": "evil.example"})
        assert (refused.status_code, refused.json()) == (400, {"detail": "Invalid Host header"})
        with caplog.at_level("WARNING", logger="bolt.security"):
            assert await handshake(api, "evil.example") == 400
        assert "400 Invalid Host header (not in ALLOWED_HOSTS)" in caplog.text
    with override_settings(ALLOWED_HOSTS=["*"]):
        assert await http_status(api, "evil.example") == 200


@pytest.mark.asyncio
async def test_django_defaults_and_forwarded_hosts_are_honoured():
    api = host_api()
    with override_settings(ALLOWED_HOSTS=[], DEBUG=True):  # Django's development default
        assert await http_status(api, "localhost:8000") == 200
        assert await http_status(api, "127.0.0.1") == 200
        assert await http_status(api, "evil.example") == 400
    with override_settings(ALLOWED_HOSTS=[], DEBUG=False):
        assert await http_status(api, "localhost") == 400
    with override_settings(ALLOWED_HOSTS=["public.example"], USE_X_FORWARDED_HOST=True):
        assert await http_status(api, "internal:8000", **{"X-Forwarded-Host": "public.example"}) == 200
        assert await http_status(api, "public.example", **{"X-Forwarded-Host": "evil.example"}) == 400
    with override_settings(ALLOWED_HOSTS=["public.example"]):  # not trusted unless the setting says so
        assert await http_status(api, "internal:8000", **{"X-Forwarded-Host": "public.example"}) == 400


@pytest.mark.asyncio
async def test_forwarded_hosts_are_read_as_django_reads_them():
    api = host_api()
    client = AsyncTestClient(api)
    with override_settings(ALLOWED_HOSTS=["public.example"], USE_X_FORWARDED_HOST=True):
        # A proxy that adds its own line behind the client's: Django joins them, and refuses the list.
        twice = [("Host", "internal"), ("X-Forwarded-Host", "public.example"), ("X-Forwarded-Host", "evil.example")]
        assert (await client.get("/hello", headers=twice)).status_code == 400
        empty = [("Host", "public.example"), ("X-Forwarded-Host", "")]
        assert (await client.get("/hello", headers=empty)).status_code == 400
        # The same host decides what "same origin" is: the page at the public name is at home.
        async with WebSocketTestClient(api, "/ws", headers=[("Host", "internal"), ("X-Forwarded-Host", "public.example"),
                                                           ("Origin", "http://public.example")]) as ws:
            assert await ws.receive_text() == "hi"


@pytest.mark.asyncio
async def test_a_refusal_logs_the_clients_path_on_one_line(caplog):
    api = host_api()
    with override_settings(ALLOWED_HOSTS=["chat.example"]), caplog.at_level("WARNING", logger="bolt.security"):
        await AsyncTestClient(api).get("/x%0aWARNING forged line", headers={"Host": "evil.example"})
    (record,) = caplog.records
    assert "\n" not in record.getMessage() and "'/x\\nWARNING forged line'" in record.getMessage()
