"""Origin policy: normalisation, exact entries, regexes, wildcard, same-origin, and the attacks."""
from __future__ import annotations

import pytest
from django.test import override_settings

from bolt import BoltAPI, JSONResponse, WebSocket
from bolt.security.origin import Admission, OriginPolicy, parse_origin
from bolt.testing import AsyncTestClient, WebSocketDenied, WebSocketTestClient

ALLOWED = ["https://example.com", "http://localhost:3000"]


def echo_api(**kwargs) -> BoltAPI:
    api = BoltAPI(**kwargs)

    @api.websocket("/ws/echo")
    async def echo(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("hello")

    @api.get("/items")
    async def items():
        return {"items": []}

    return api


async def handshake(api: BoltAPI, origin: str | None, **kwargs) -> str:
    headers = {"Origin": origin} if origin is not None else {}
    async with WebSocketTestClient(api, "/ws/echo", headers=headers, **kwargs) as ws:
        return await ws.receive_text()


@pytest.mark.parametrize("value, expected", [
    ("https://example.com", ("https", "example.com", 443)),
    ("https://EXAMPLE.com:443", ("https", "example.com", 443)),
    ("HTTP://Example.COM", ("http", "example.com", 80)),
    ("http://localhost:3000", ("http", "localhost", 3000)),
    ("https://example.com/", ("https", "example.com", 443)),
    ("http://[::1]:8000", ("http", "::1", 8000)),
])
def test_parse_origin_normalises(value, expected):
    assert parse_origin(value) == expected


@pytest.mark.parametrize("value", [
    "null", "", "example.com", "https://", "https://user:pw@example.com", "https://example.com/path",
    "https://example.com?q=1", "https://example.com#f", "https://example.com:99999", "https://example.com:abc",
    "https://" + "a" * 3000 + ".com",
])
def test_parse_origin_refuses_what_is_not_an_origin(value):
    assert parse_origin(value) is None


def test_invalid_configured_origin_is_a_configuration_error():
    with pytest.raises(ValueError, match="invalid allowed origin"):
        OriginPolicy(["example.com"])


@pytest.mark.asyncio
async def test_guide_origin_denied():
    api = echo_api()
    with pytest.raises(PermissionError) as exc:
        await handshake(api, "https://evil.com", cors_allowed_origins=["https://example.com"],
                        read_django_settings=False)
    assert "Origin not allowed" in str(exc.value)
    assert exc.value.status_code == 403
    assert exc.value.body == {"detail": "Origin not allowed"}


@pytest.mark.asyncio
async def test_no_origin_header_is_allowed():
    assert await handshake(echo_api(cors_allowed_origins=ALLOWED), None) == "hello"


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", ["https://example.com", "https://EXAMPLE.COM", "https://example.com:443",
                                    "http://localhost:3000"])
async def test_listed_origins_are_allowed_after_normalising(origin):
    assert await handshake(echo_api(cors_allowed_origins=ALLOWED), origin) == "hello"


@pytest.mark.asyncio
@pytest.mark.parametrize("origin", [
    "null",                              # sandboxed iframes, file: pages
    "https://example.com.evil.com",      # suffix trick
    "https://evilexample.com",           # look-alike
    "https://example.com@evil.com",      # user-info trick
    "http://example.com",                # scheme mismatch
    "https://example.com:8443",          # port mismatch
    "http://localhost:3001",             # port mismatch
    "http://localhost",                  # default port is not 3000
    "https://sub.example.com",           # subdomains are not implied
    "https://example.com/evil",          # not an origin at all
    # Not a plain scheme://host[:port], though a lenient URL parser would make one of them.
    "https://example.com/", "https://example.com?", "https://example.com#", "https://example.com:",
    "https://exam\tple.com", "https://example.com\t", " https://example.com",
])
async def test_attacker_origins_are_refused(origin):
    api = echo_api(cors_allowed_origins=ALLOWED)
    with pytest.raises(PermissionError) as exc:
        await handshake(api, origin)
    assert exc.value.status_code == 403
    assert exc.value.detail == "Origin not allowed"
    response = await AsyncTestClient(api).get("/items", headers={"Origin": origin})
    assert (response.status_code, response.json()) == (403, {"detail": "Origin not allowed"})


@pytest.mark.asyncio
async def test_no_policy_refuses_every_foreign_origin_but_allows_same_origin():
    api = echo_api()
    with pytest.raises(PermissionError):
        await handshake(api, "https://example.com")
    # The test client's Host is "testserver" and its scheme ws: the page would be http://testserver.
    assert await handshake(api, "http://testserver") == "hello"
    with pytest.raises(PermissionError):
        await handshake(api, "https://testserver")  # a page on another scheme is another origin


@pytest.mark.asyncio
async def test_wildcard_allows_all_origins_but_not_null():
    api = echo_api(cors_allowed_origins=["*"])
    assert await handshake(api, "https://anything.example") == "hello"
    with pytest.raises(PermissionError):
        await handshake(api, "null")


@pytest.mark.asyncio
async def test_test_client_override_replaces_the_api_list():
    api = echo_api(cors_allowed_origins=["https://example.com"])
    with pytest.raises(PermissionError):
        await handshake(api, "https://example.com", cors_allowed_origins=["https://other.com"],
                        read_django_settings=False)
    assert await handshake(api, "https://other.com", cors_allowed_origins=["https://other.com"]) == "hello"


@pytest.mark.asyncio
async def test_django_settings_are_read_and_can_be_skipped():
    api = echo_api()
    with override_settings(CORS_ALLOWED_ORIGINS=["https://django.example"]):
        assert await handshake(api, "https://django.example") == "hello"
        with pytest.raises(PermissionError):
            await handshake(api, "https://django.example", read_django_settings=False)
    # Leaving override_settings drops the cached policy.
    with pytest.raises(PermissionError):
        await handshake(api, "https://django.example")


@pytest.mark.asyncio
async def test_django_regexes_must_match_the_whole_origin():
    api = echo_api()
    with override_settings(CORS_ALLOWED_ORIGIN_REGEXES=[r"https://[a-z]+\.example\.com"]):
        assert await handshake(api, "https://app.example.com") == "hello"
        assert await handshake(api, "https://APP.example.com:443") == "hello"
        for origin in ("https://app.example.com.evil.com", "https://app.example.community",
                       "http://app.example.com"):
            with pytest.raises(PermissionError):
                await handshake(api, origin)


@pytest.mark.asyncio
async def test_django_allow_all_origins():
    api = echo_api()
    with override_settings(CORS_ALLOW_ALL_ORIGINS=True):
        assert await handshake(api, "https://whatever.example") == "hello"


def test_admission_kinds():
    scope = {"type": "websocket", "scheme": "wss", "headers": [(b"host", b"app.example.com")]}
    policy = OriginPolicy(["https://example.com"], [r"https://.*\.partner\.com"], allow_all=True)
    assert policy.admit("https://app.example.com", scope) is Admission.SAME_ORIGIN
    assert policy.admit("https://example.com", scope) is Admission.LISTED
    assert policy.admit("https://x.partner.com", scope) is Admission.LISTED
    assert policy.admit("https://evil.com", scope) is Admission.WILDCARD
    assert policy.admit("null", scope) is None


# -- HTTP: the same policy, plus CORS headers and preflight -------------------------------------

@pytest.mark.asyncio
async def test_http_foreign_origin_refused_with_the_same_message():
    client = AsyncTestClient(echo_api(cors_allowed_origins=ALLOWED))
    response = await client.get("/items", headers={"Origin": "https://example.com.evil.com"})
    assert response.status_code == 403
    assert response.json() == {"detail": "Origin not allowed"}
    assert "access-control-allow-origin" not in response.headers


@pytest.mark.asyncio
async def test_http_allowed_origin_gets_cors_headers():
    client = AsyncTestClient(echo_api(cors_allowed_origins=ALLOWED))
    response = await client.get("/items", headers={"Origin": "https://example.com"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://example.com"
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in response.headers
    plain = await client.get("/items")
    assert "access-control-allow-origin" not in plain.headers


@pytest.mark.asyncio
async def test_http_404_and_405_carry_cors_headers_for_an_allowed_origin():
    # Without them a page's fetch sees a network error instead of the status.
    client = AsyncTestClient(echo_api(cors_allowed_origins=ALLOWED))
    for response, status in ((await client.get("/nope", headers={"Origin": "https://example.com"}), 404),
                             (await client.delete("/items", headers={"Origin": "https://example.com"}), 405)):
        assert response.status_code == status
        assert response.headers["access-control-allow-origin"] == "https://example.com"
        assert response.headers["vary"] == "Origin"
    for origin in ("https://example.com.evil.com", None):
        headers = {"Origin": origin} if origin else {}
        response = await client.get("/nope", headers=headers)
        assert response.status_code == 404 and "access-control-allow-origin" not in response.headers


@pytest.mark.asyncio
@pytest.mark.parametrize("vary, expected", [("Accept-Encoding", "Accept-Encoding, Origin"),
                                            ("accept-encoding, origin", "accept-encoding, origin"), ("*", "*")])
async def test_http_cors_adds_origin_to_the_handlers_vary(vary, expected):
    # Vary is a list (RFC 9110 12.5.5): dropping the handler's entry would let a cache mix variants.
    api = BoltAPI(cors_allowed_origins=ALLOWED)

    @api.get("/varied")
    async def varied():
        return JSONResponse({}, headers={"Vary": vary})

    response = await AsyncTestClient(api).get("/varied", headers={"Origin": "https://example.com"})
    assert response.headers["access-control-allow-origin"] == "https://example.com"
    assert response.headers["vary"] == expected


@pytest.mark.asyncio
async def test_http_credentials_setting_echoes_origin_even_for_wildcard():
    client = AsyncTestClient(echo_api(cors_allowed_origins=["*"]))
    response = await client.get("/items", headers={"Origin": "https://a.example"})
    assert response.headers["access-control-allow-origin"] == "*"
    with override_settings(CORS_ALLOW_CREDENTIALS=True, CORS_EXPOSE_HEADERS=["x-total"]):
        response = await client.get("/items", headers={"Origin": "https://a.example"})
    assert response.headers["access-control-allow-origin"] == "https://a.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-expose-headers"] == "x-total"


@pytest.mark.asyncio
async def test_http_preflight():
    client = AsyncTestClient(echo_api(cors_allowed_origins=ALLOWED))
    response = await client.options("/items", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "https://example.com"
    assert response.headers["access-control-allow-methods"] == "GET, HEAD"
    assert response.headers["access-control-allow-headers"] == "authorization, content-type"
    assert response.headers["access-control-max-age"] == "86400"

    refused = await client.options("/items", headers={
        "Origin": "https://evil.com", "Access-Control-Request-Method": "GET"})
    assert refused.status_code == 403
    assert refused.json() == {"detail": "Origin not allowed"}
    assert "access-control-allow-origin" not in refused.headers

    # Not a preflight (no Access-Control-Request-Method): an ordinary OPTIONS, here 405.
    plain = await client.options("/items", headers={"Origin": "https://example.com"})
    assert plain.status_code == 405


@pytest.mark.asyncio
async def test_http_same_origin_post_needs_no_configuration():
    api = BoltAPI()

    @api.post("/submit")
    async def submit():
        return {"ok": True}

    client = AsyncTestClient(api)
    assert (await client.post("/submit", headers={"Origin": "http://testserver"})).status_code == 200
    response = await client.post("/submit", headers={"Origin": "http://testserver.evil.com"})
    assert response.status_code == 403


@pytest.mark.asyncio
async def test_read_django_settings_false_keeps_the_apis_own_origins():
    api = echo_api(cors_allowed_origins=ALLOWED)
    with override_settings(CORS_ALLOWED_ORIGINS=["https://django.example"]):
        async with WebSocketTestClient(api, "/ws/echo", headers={"Origin": "https://example.com"},
                                       read_django_settings=False) as ws:
            assert ws.accepted
        with pytest.raises(WebSocketDenied):
            async with WebSocketTestClient(api, "/ws/echo", headers={"Origin": "https://django.example"},
                                           read_django_settings=False):
                pass
