"""Refusals through a real uvicorn on 127.0.0.1, seen by a real client (websockets, httpx)."""
from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from bolt import BoltAPI, Request, WebSocket
from bolt.auth import HasPermission, JWTAuthentication
from bolt.middleware import rate_limit
from demo_apps import jwt_room_api
from uvicorn_server import WS_IMPLEMENTATIONS, serve

from .conftest import SECRET, bearer, make_token

pytestmark = pytest.mark.slow


def secured_api() -> BoltAPI:
    api = BoltAPI(cors_allowed_origins=["https://app.example.com"])
    auth = [JWTAuthentication(secret=SECRET)]

    @api.websocket("/ws/data", auth=auth, guards=[HasPermission("api.view_data")])
    @rate_limit(rps=0.001, burst=3, key="header:x-test-bucket", messages=(0.001, 2))
    async def data(websocket: WebSocket):
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(f"echo {message}")

    @api.get("/data", auth=auth, guards=[HasPermission("api.view_data")])
    @rate_limit(rps=0.001, burst=2)
    async def data_http(request: Request):
        return {"user": request.auth.user_id}

    return api


async def refusal(url: str, **kwargs) -> tuple[int, bytes, dict]:
    with pytest.raises(InvalidStatus) as exc:
        async with asyncio.timeout(5):
            async with connect(url, open_timeout=5, **kwargs):
                pass
    response = exc.value.response
    return response.status_code, response.body, dict(response.headers)


READER = make_token({"permissions": ["api.view_data"]})


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_refusals_carry_the_real_status_and_body(ws):
    async with serve(secured_api(), ws=ws) as base:
        url = f"ws://{base}/ws/data"
        assert (await refusal(url))[:2] == (401, b'{"detail":"Authentication required"}')
        status, body, headers = await refusal(url, additional_headers=bearer("forged.token.value"))
        assert (status, body, headers["www-authenticate"]) == (401, b'{"detail":"Invalid token"}', "Bearer")
        assert (await refusal(url, additional_headers=bearer(make_token())))[:2] == \
            (403, b'{"detail":"Permission denied"}')
        assert (await refusal(url, origin="https://evil.example", additional_headers=bearer(READER)))[:2] == \
            (403, b'{"detail":"Origin not allowed"}')

        limited = {**bearer(READER), "X-Test-Bucket": "429"}
        for _ in range(3):
            async with asyncio.timeout(5):
                async with connect(url, additional_headers=limited, origin="https://app.example.com") as client:
                    await client.send("hi")
                    assert await client.recv() == "echo hi"
        status, body, headers = await refusal(url, additional_headers=limited)
        assert (status, body) == (429, b'{"detail":"Rate limit exceeded","retry_after":1000}')
        assert headers["retry-after"] == "1000"


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_message_flood_is_closed_with_1008(ws):
    async with serve(secured_api(), ws=ws) as base:
        async with asyncio.timeout(5):
            async with connect(f"ws://{base}/ws/data", additional_headers=bearer(READER)) as client:
                for i in range(2):
                    await client.send(str(i))
                    assert await client.recv() == f"echo {i}"
                await client.send("flood")
                with pytest.raises(ConnectionClosedError) as exc:
                    await client.recv()
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (1008, "Message rate exceeded")


@pytest.mark.asyncio
async def test_concurrent_handshakes_through_uvicorn_admit_exactly_the_burst():
    api = BoltAPI()

    @api.websocket("/ws")
    @rate_limit(rps=0.001, burst=10)
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("in")
        await asyncio.sleep(0.2)

    async def attempt(url: str) -> int:
        try:
            async with connect(url, open_timeout=10) as client:
                await client.recv()
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async with serve(api) as base:
        results = await asyncio.wait_for(asyncio.gather(*(attempt(f"ws://{base}/ws") for _ in range(60))), 20)
    assert results.count(101) == 10
    assert results.count(429) == 50


@pytest.mark.asyncio
async def test_without_the_http_response_extension_a_refusal_is_a_403():
    api = secured_api()

    async def app(scope, receive, send):  # a server that does not offer websocket.http.response
        if scope["type"] == "websocket":
            scope["extensions"] = {k: v for k, v in (scope.get("extensions") or {}).items()
                                   if k != "websocket.http.response"}
        await api(scope, receive, send)

    async with serve(app) as base:
        assert (await refusal(f"ws://{base}/ws/data"))[0] == 403


@pytest.mark.asyncio
async def test_http_refusals_and_cors_through_uvicorn():
    async with serve(secured_api()) as base:
        async with httpx.AsyncClient(base_url=f"http://{base}", timeout=5) as client:
            response = await client.get("/data")
            assert (response.status_code, response.json()) == (401, {"detail": "Authentication required"})
            response = await client.get("/data", headers={**bearer(READER), "Origin": "https://app.example.com"})
            assert response.status_code == 200
            assert response.headers["access-control-allow-origin"] == "https://app.example.com"
            await client.get("/data", headers=bearer(READER))
            response = await client.get("/data", headers=bearer(READER))
            assert (response.status_code, response.headers["retry-after"]) == (429, "1000")
            response = await client.options("/data", headers={"Origin": "https://evil.example",
                                                              "Access-Control-Request-Method": "GET"})
            assert response.status_code == 403


@pytest.mark.asyncio
async def test_ipv6_clients_behind_a_trusted_proxy_share_their_64s_bucket():
    # The attack: 100 addresses of one /64 (what one IPv6 host is given) each got a fresh bucket.
    api = BoltAPI()

    @api.websocket("/ws")
    @rate_limit(rps=0.001, burst=3)
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("in")

    async def attempt(url: str, client: str) -> int:
        try:
            async with connect(url, open_timeout=5, additional_headers={"X-Forwarded-For": client}) as ws:
                await ws.recv()
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    async with serve(api, proxy_headers=True, forwarded_allow_ips="*") as base:
        url = f"ws://{base}/ws"
        async with asyncio.timeout(30):
            results = [await attempt(url, f"2001:db8:7:7::{i:x}") for i in range(1, 101)]
            other = await attempt(url, "2001:db8:7:8::1")
            mapped = [await attempt(url, "::ffff:198.51.100.1") for _ in range(3)]
            plain = await attempt(url, "198.51.100.1")
    assert (results.count(101), results.count(429)) == (3, 97)
    assert other == 101
    assert (mapped, plain) == ([101] * 3, 429)


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_cookie_credentials_without_origin_are_refused_through_uvicorn(ws):
    # The attack: a proxy that strips Origin turned the cross-site check off for cookie credentials.
    api = BoltAPI()

    @api.websocket("/ws", auth=[JWTAuthentication(secret=SECRET, cookie="jwt")])
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(websocket.auth.source)

    cookie = {"Cookie": f"jwt={make_token()}"}
    async with serve(api, ws=ws) as base:
        url = f"ws://{base}/ws"
        assert (await refusal(url, additional_headers=cookie))[:2] == (403, b'{"detail":"Origin required"}')
        async with asyncio.timeout(5):
            async with connect(url, additional_headers=cookie, origin=f"http://{base}") as client:
                assert await client.recv() == "cookie"
            async with connect(url, additional_headers=bearer(make_token())) as client:  # a header token needs none
                assert await client.recv() == "header"


def expiring(seconds: int, sub: str = "42") -> tuple[str, int]:
    import time

    import jwt

    exp = int(time.time()) + seconds
    return jwt.encode({"sub": sub, "exp": str(exp)}, SECRET, algorithm="HS256"), exp  # a string exp, as pyjwt allows


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_an_expired_token_closes_its_open_socket_with_4401_through_uvicorn(ws):
    # The attack: a token past its exp (a string exp, even) kept its open socket working forever.
    import json
    import time

    token, exp = expiring(2)
    async with serve(jwt_room_api(SECRET), ws=ws) as base:
        async with asyncio.timeout(10):
            async with connect(f"ws://{base}/rt", additional_headers=bearer(token)) as client:
                assert json.loads(await client.recv())["type"] == "hello"
                with pytest.raises(ConnectionClosedError) as exc:
                    while True:
                        await client.recv()
                closed_at = time.time()
            # The same token cannot open a new socket either: the cache says expired too.
            assert (await refusal(f"ws://{base}/rt", additional_headers=bearer(token)))[:2] == \
                (401, b'{"detail":"Token expired"}')
    assert (exc.value.rcvd.code, exc.value.rcvd.reason) == (4401, "Credentials expired")
    assert closed_at >= exp
    print(f"closed {closed_at - exp:.3f} s after exp")  # the figure of the closing note


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
async def test_an_in_band_refresh_keeps_the_socket_open_through_uvicorn(ws):
    import json
    import time

    token, exp = expiring(1)
    fresh, fresh_exp = expiring(3)
    async with serve(jwt_room_api(SECRET), ws=ws) as base:
        async with asyncio.timeout(10):
            async with connect(f"ws://{base}/rt", additional_headers=bearer(token)) as client:
                assert json.loads(await client.recv())["type"] == "hello"
                await client.send(json.dumps({"type": "auth", "token": expiring(60, sub="7")[0], "ref": 1}))
                assert json.loads(await client.recv())["error"] == {"code": "unauthorized",
                                                                    "reason": "Token is for another user"}
                await client.send(json.dumps({"type": "auth", "token": fresh, "ref": 2}))
                assert json.loads(await client.recv()) == {"type": "reply", "ref": 2, "ok": True,
                                                           "expires_at": fresh_exp}
                await asyncio.sleep(max(0.0, exp + 1 - time.time()))  # past the first token's exp
                await client.send(json.dumps({"type": "ping", "ref": 3}))
                assert json.loads(await client.recv())["ref"] == 3
                with pytest.raises(ConnectionClosedError) as exc:
                    while True:
                        await client.recv()
                assert time.time() >= fresh_exp
    assert exc.value.rcvd.code == 4401
