"""SessionAuthentication against Django's session engine and async ORM (in-memory SQLite), and the
cross-site WebSocket hijacking defence: cookie credentials need an origin the policy names."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import override_settings

from bolt import BoltAPI, Request, WebSocket
from bolt.auth import HasPermission, IsAdminUser, IsAuthenticated, JWTAuthentication, SessionAuthentication
from bolt.testing import AsyncTestClient, WebSocketTestClient

from .conftest import SECRET, bearer, make_token

# The tables come from pytest-django's test database; the handler's async ORM runs on another
# connection than the test's, so what a test writes must be committed (docs/testing.md).
pytestmark = pytest.mark.django_db(transaction=True)


async def login(username: str, **flags) -> str:
    """A user and a logged-in session for them, as Django's login() would store it; returns the key."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.contrib.sessions.backends.db import SessionStore

    model = get_user_model()
    permissions = flags.pop("permissions", ())
    user = await model.objects.filter(username=username).afirst()
    if user is None:
        user = await model.objects.acreate_user(username=username, password="pw-not-used", **flags)
    for codename in permissions:
        await user.user_permissions.aadd(await Permission.objects.aget(codename=codename))
    session = SessionStore()
    await session.aset(SESSION_KEY, str(user.pk))
    await session.aset(BACKEND_SESSION_KEY, "django.contrib.auth.backends.ModelBackend")
    await session.aset(HASH_SESSION_KEY, user.get_session_auth_hash())
    await session.acreate()
    return session.session_key


def session_api(guards=None, **api_kwargs) -> BoltAPI:
    api = BoltAPI(**api_kwargs)

    @api.websocket("/ws", auth=[SessionAuthentication()], guards=guards or [IsAuthenticated()])
    async def handler(websocket: WebSocket):
        await websocket.accept()
        user = websocket.user
        await websocket.send_json({"user_id": websocket.auth.user_id, "username": user.username,
                                   "backend": websocket.auth.backend, "source": websocket.auth.source})

    @api.get("/http", auth=[SessionAuthentication()], guards=guards or [IsAuthenticated()])
    async def http(request: Request):
        return {"username": request.user.username}

    return api


async def outcome(api: BoltAPI, session_key: str | None, origin: str | None = "", **kwargs):
    """The handshake's JSON, or (status, detail). `origin` "" leaves the test client's default
    (the same origin, with cookies); None sends no Origin at all."""
    cookies = {settings.SESSION_COOKIE_NAME: session_key} if session_key else None
    headers = {"Origin": origin} if origin else None
    if origin is None:
        kwargs["origin"] = None
    try:
        async with WebSocketTestClient(api, "/ws", cookies=cookies, headers=headers, **kwargs) as ws:
            return await ws.receive_json()
    except PermissionError as exc:
        return exc.status_code, exc.detail


@pytest.mark.asyncio
async def test_session_cookie_authenticates_the_django_user():
    key = await login("alice")
    body = await outcome(session_api(), key)
    assert body["username"] == "alice"
    assert (body["backend"], body["source"]) == ("session", "cookie")
    response = await AsyncTestClient(session_api()).get("/http", cookies={settings.SESSION_COOKIE_NAME: key})
    assert response.json() == {"username": "alice"}


@pytest.mark.asyncio
async def test_missing_unknown_or_tampered_session_is_unauthenticated():
    api = session_api()
    assert await outcome(api, None) == (401, "Authentication required")
    assert await outcome(api, "0" * 32) == (401, "Authentication required")
    assert await outcome(api, "x" * 5000) == (401, "Authentication required")


@pytest.mark.asyncio
async def test_session_invalidated_by_password_change():
    from django.contrib.auth import get_user_model

    key = await login("carol")
    user = await get_user_model().objects.aget(username="carol")
    user.set_password("a-new-password")
    await user.asave()
    assert await outcome(session_api(), key) == (401, "Authentication required")


@pytest.mark.asyncio
async def test_inactive_user_is_refused():
    key = await login("dave", is_active=False)
    assert await outcome(session_api(), key) == (401, "Authentication required")


@pytest.mark.asyncio
async def test_guards_read_the_django_user_flags_and_permissions():
    admin = await login("root", is_superuser=True, is_staff=True)
    viewer = await login("viewer", permissions=["view_user"])
    plain = await login("plain")
    admin_api, perm_api = session_api([IsAdminUser()]), session_api([HasPermission("auth.view_user")])
    assert (await outcome(admin_api, admin))["username"] == "root"
    assert await outcome(admin_api, plain) == (403, "Permission denied")
    assert (await outcome(perm_api, viewer))["username"] == "viewer"
    assert await outcome(perm_api, plain) == (403, "Permission denied")


# -- cross-site WebSocket hijacking -----------------------------------------------------------------

@pytest.mark.asyncio
async def test_cookie_auth_from_a_foreign_origin_is_refused():
    key = await login("alice")
    api = session_api(cors_allowed_origins=["https://app.example.com"])
    assert await outcome(api, key, "https://evil.example") == (403, "Origin not allowed")
    assert (await outcome(api, key, "https://app.example.com"))["username"] == "alice"
    # With no origin policy at all only the same origin gets through.
    bare = session_api()
    assert await outcome(bare, key, "https://evil.example") == (403, "Origin not allowed")
    assert (await outcome(bare, key, "http://testserver"))["username"] == "alice"


@pytest.mark.asyncio
async def test_cookie_credentials_are_never_accepted_from_a_wildcard_origin(caplog):
    key = await login("alice")
    api = session_api(cors_allowed_origins=["*"])
    with caplog.at_level("WARNING", logger="bolt.security"):
        assert await outcome(api, key, "https://evil.example") == (403, "Origin not allowed")
        assert await outcome(api, key, "https://evil.example") == (403, "Origin not allowed")
    assert sum("allows every origin" in r.getMessage() for r in caplog.records) == 1  # warned once per route
    # Without a cookie a wildcard origin is fine, and so is the same origin with one.
    assert await outcome(api, None, "https://evil.example") == (401, "Authentication required")
    assert (await outcome(api, key, "http://testserver"))["username"] == "alice"
    with override_settings(CORS_ALLOW_ALL_ORIGINS=True):
        assert await outcome(session_api(), key, "https://evil.example") == (403, "Origin not allowed")


@pytest.mark.asyncio
async def test_cookie_credentials_without_an_origin_are_refused(caplog):
    # A proxy or an embedded engine that drops Origin would silently switch the CSWSH check off.
    key = await login("alice")
    api = session_api(cors_allowed_origins=["https://app.example.com"])
    with caplog.at_level("INFO", logger="bolt.security"):
        assert await outcome(api, key, origin=None) == (403, "Origin required")
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "refused websocket /ws from testclient:50000: 403 Origin required "
                    "(cookie credentials without an Origin header)")]
    # The test client sends the same origin with cookies by default, as a browser does.
    assert (await outcome(api, key))["username"] == "alice"
    # No cookie, no Origin: a non-browser client, judged by its credentials alone.
    assert await outcome(api, None, origin=None) == (401, "Authentication required")
    # A GET needs no Origin: browsers leave it out of same-origin GETs.
    response = await AsyncTestClient(api).get("/http", cookies={settings.SESSION_COOKIE_NAME: key})
    assert response.json() == {"username": "alice"}


@pytest.mark.asyncio
async def test_an_unsafe_http_request_with_cookie_credentials_needs_an_origin():
    # Browsers send Origin on every POST, PUT, PATCH and DELETE, same-origin ones included: a cookie
    # without one is a request whose cross-site check cannot be made (cross-site request forgery).
    key = await login("alice")
    api = BoltAPI()

    @api.post("/transfer", auth=[SessionAuthentication()], guards=[IsAuthenticated()])
    async def transfer(request: Request):
        return {"done": request.user.username}

    @api.delete("/open", auth=[SessionAuthentication()], allow_missing_origin=True)
    async def opted_out(request: Request):
        return {"done": request.user.username}

    cookies = {settings.SESSION_COOKIE_NAME: key}
    refused = await AsyncTestClient(api, origin=None).post("/transfer", cookies=cookies)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Origin required"})
    assert (await AsyncTestClient(api).post("/transfer", cookies=cookies)).json() == {"done": "alice"}  # same origin
    forged = await AsyncTestClient(api).post("/transfer", cookies=cookies, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403
    # The test client's default Origin follows the Host it sends: still the same origin.
    moved = await AsyncTestClient(api).post("/transfer", cookies=cookies, headers={"Host": "bank.example"})
    assert moved.json() == {"done": "alice"}
    # Without a cookie there is nothing ambient to forge: the credentials decide.
    assert (await AsyncTestClient(api, origin=None).post("/transfer")).status_code == 401
    assert (await AsyncTestClient(api, origin=None).delete("/open", cookies=cookies)).json() == {"done": "alice"}


@pytest.mark.asyncio
async def test_a_listed_origin_sends_cookie_credentials_to_http_routes_only_with_cors_allow_credentials():
    # A form post from a listed origin needs no preflight: without credentials allowed, the browser
    # would hide the answer from the page, but the transfer would happen in the user's name.
    key = await login("alice")
    api = session_api(cors_allowed_origins=["https://app.example.com"])
    cookies = {settings.SESSION_COOKIE_NAME: key}
    partner = {"Origin": "https://app.example.com"}
    refused = await AsyncTestClient(api).get("/http", cookies=cookies, headers=partner)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Origin not allowed"})
    assert (await AsyncTestClient(api).get("/http", headers=partner)).status_code == 401  # no cookie: credentials decide
    assert (await AsyncTestClient(api).get("/http", cookies=cookies)).json() == {"username": "alice"}  # same origin
    assert (await outcome(api, key, "https://app.example.com"))["username"] == "alice"  # WebSockets have no CORS
    with override_settings(CORS_ALLOW_CREDENTIALS=True):
        allowed = await AsyncTestClient(api).get("/http", cookies=cookies, headers=partner)
        assert allowed.json() == {"username": "alice"}
        assert allowed.headers["access-control-allow-credentials"] == "true"


@pytest.mark.asyncio
async def test_answers_of_routes_that_read_a_cookie_vary_by_cookie():
    key = await login("alice")
    api = session_api()

    @api.get("/token", auth=[JWTAuthentication(secret=SECRET)], guards=[IsAuthenticated()])
    async def by_token(request: Request):
        return {}

    client = AsyncTestClient(api)
    answer = await client.get("/http", cookies={settings.SESSION_COOKIE_NAME: key})
    assert answer.status_code == 200 and answer.headers["vary"] == "Cookie"
    refused = await client.get("/http")  # an anonymous answer must not be served to a logged-in user either
    assert refused.status_code == 401 and refused.headers["vary"] == "Cookie"
    assert "vary" not in (await client.get("/token", headers=bearer(make_token()))).headers


@pytest.mark.asyncio
async def test_missing_origin_opt_outs_route_api_and_setting():
    key = await login("alice")
    api = session_api(allow_missing_origin=True)
    assert (await outcome(api, key, origin=None))["username"] == "alice"
    with override_settings(BOLT_ALLOW_MISSING_ORIGIN=True):
        assert (await outcome(session_api(), key, origin=None))["username"] == "alice"
        # The api's own word wins over the setting.
        assert await outcome(session_api(allow_missing_origin=False), key, origin=None) == (403, "Origin required")
    route = BoltAPI()

    @route.websocket("/ws", auth=[SessionAuthentication()], allow_missing_origin=True)
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_json({"username": websocket.user.username})

    assert (await outcome(route, key, origin=None))["username"] == "alice"


@pytest.mark.asyncio
async def test_jwt_cookie_is_held_to_the_same_rule():
    api = BoltAPI(cors_allowed_origins=["*"])

    @api.websocket("/ws", auth=[JWTAuthentication(secret=SECRET, cookie="jwt", query_param="token")],
                   guards=[IsAuthenticated()])
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(websocket.auth.source)

    token = make_token()
    with pytest.raises(PermissionError, match="Origin not allowed"):
        async with WebSocketTestClient(api, "/ws", cookies={"jwt": token}, headers={"Origin": "https://evil.example"}):
            pass
    # A token in the query string is not ambient: the page had to know it.
    async with WebSocketTestClient(api, "/ws", query_string=f"token={token}",
                                   headers={"Origin": "https://evil.example"}) as ws:
        assert await ws.receive_text() == "query"


# -- the user object --------------------------------------------------------------------------------

@pytest.mark.asyncio
async def test_user_for_token_auth_is_a_token_user_and_auser_loads_the_model():
    from django.contrib.auth import get_user_model

    await login("erin")
    erin = await get_user_model().objects.aget(username="erin")
    api = BoltAPI()

    @api.websocket("/ws", auth=[JWTAuthentication(secret=SECRET)])
    async def handler(websocket: WebSocket):
        await websocket.accept()
        before = repr(websocket.user)
        loaded = await websocket.auser()
        await websocket.send_json([before, getattr(loaded, "username", None), websocket.user is loaded,
                                   loaded.is_authenticated])

    async with WebSocketTestClient(api, "/ws", headers=bearer(make_token({"sub": str(erin.pk)}))) as ws:
        assert await ws.receive_json() == [f"TokenUser('{erin.pk}')", "erin", True, True]
    async with WebSocketTestClient(api, "/ws", headers=bearer(make_token({"sub": "999999"}))) as ws:
        assert (await ws.receive_json())[1:] == ["", True, False]  # no such user: Django's AnonymousUser
    async with WebSocketTestClient(api, "/ws") as ws:
        assert "AnonymousUser" in (await ws.receive_json())[0]
