"""Guards and backend chaining: 401 without credentials, 403 when authenticated but not allowed."""
from __future__ import annotations

import pytest
from django.test import override_settings

from bolt import BoltAPI, Request, WebSocket
from bolt.auth import (
    AllowAny,
    APIKeyAuthentication,
    BaseGuard,
    HasAllPermissions,
    HasAnyPermission,
    HasPermission,
    IsAdminUser,
    IsAuthenticated,
    IsStaff,
    JWTAuthentication,
)
from bolt.testing import AsyncTestClient, WebSocketTestClient

from .conftest import SECRET, bearer, make_token

JWT = JWTAuthentication(secret=SECRET)


def guarded_api(guards, auth=None) -> BoltAPI:
    api = BoltAPI()

    @api.websocket("/ws", auth=auth if auth is not None else [JWT], guards=guards)
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(f"ok {websocket.auth.user_id}")

    @api.get("/http", auth=auth if auth is not None else [JWT], guards=guards)
    async def http(request: Request):
        return {"user_id": request.auth.user_id}

    return api


async def status_of(api: BoltAPI, headers: dict | None = None) -> tuple[int, str]:
    """The WebSocket outcome, checked to agree with the HTTP route's."""
    try:
        async with WebSocketTestClient(api, "/ws", headers=headers) as ws:
            await ws.receive_text()
            ws_result = (200, "ok")
    except PermissionError as exc:
        ws_result = (exc.status_code, exc.detail)
    response = await AsyncTestClient(api).get("/http", headers=headers)
    http_result = (response.status_code, response.json().get("detail", "ok") if response.status_code != 200 else "ok")
    assert ws_result == http_result, "HTTP and WebSocket disagree"
    return ws_result


ANON = None
USER = bearer(make_token())
STAFF = bearer(make_token({"is_staff": True}))
ADMIN = bearer(make_token({"is_superuser": True}))
READER = bearer(make_token({"permissions": ["api.view_data"]}))
EDITOR = bearer(make_token({"permissions": ["api.view_data", "api.edit_data"]}))

DENIED_401 = (401, "Authentication required")
DENIED_403 = (403, "Permission denied")
OK = (200, "ok")


@pytest.mark.asyncio
@pytest.mark.parametrize("guard, who, expected", [
    (AllowAny(), ANON, OK),
    (IsAuthenticated(), ANON, DENIED_401),
    (IsAuthenticated(), USER, OK),
    (IsAdminUser(), ANON, DENIED_401),
    (IsAdminUser(), STAFF, DENIED_403),
    (IsAdminUser(), ADMIN, OK),
    (IsStaff(), USER, DENIED_403),
    (IsStaff(), STAFF, OK),
    (IsStaff(), ADMIN, DENIED_403),  # superuser is not implicitly staff
    (HasPermission("api.view_data"), ANON, DENIED_401),
    (HasPermission("api.view_data"), USER, DENIED_403),
    (HasPermission("api.view_data"), READER, OK),
    (HasPermission("api.view_data"), ADMIN, OK),  # a superuser holds every permission, as in Django
    (HasAnyPermission("api.edit_data", "api.view_data"), READER, OK),
    (HasAnyPermission("api.edit_data", "api.delete_data"), READER, DENIED_403),
    (HasAllPermissions("api.edit_data", "api.view_data"), READER, DENIED_403),
    (HasAllPermissions("api.edit_data", "api.view_data"), EDITOR, OK),
])
async def test_builtin_guards(guard, who, expected):
    assert await status_of(guarded_api([guard]), who) == expected


@pytest.mark.asyncio
async def test_guards_all_have_to_pass():
    api = guarded_api([IsAuthenticated(), IsStaff(), HasPermission("api.view_data")])
    assert await status_of(api, STAFF) == DENIED_403
    assert await status_of(api, bearer(make_token({"is_staff": True, "permissions": ["api.view_data"]}))) == OK


@pytest.mark.asyncio
async def test_custom_guards_subclass_sync_and_async_callables():
    class EvenUser(BaseGuard):
        def has_permission(self, auth, conn):
            return auth.is_authenticated and int(auth.user_id) % 2 == 0

    def from_office(conn) -> bool:
        return conn.headers.get("x-office") == "hq"

    async def async_ok(conn) -> bool:
        return conn.auth.claims.get("tier") == "gold"

    assert await status_of(guarded_api([EvenUser()]), bearer(make_token({"sub": "2"}))) == OK
    assert await status_of(guarded_api([EvenUser()]), bearer(make_token({"sub": "3"}))) == DENIED_403
    assert await status_of(guarded_api([from_office]), {"x-office": "hq"}) == OK
    # A refusal with no credentials at all is a 401, whoever refused.
    assert await status_of(guarded_api([from_office]), {"x-office": "home"}) == DENIED_401
    assert await status_of(guarded_api([async_ok]), bearer(make_token({"tier": "gold"}))) == OK
    assert await status_of(guarded_api([async_ok]), bearer(make_token({"tier": "tin"}))) == DENIED_403


@pytest.mark.asyncio
async def test_a_guard_returning_a_truthy_non_bool_does_not_admit():
    assert await status_of(guarded_api([lambda conn: "yes"]), USER) == DENIED_403


def ws_route(api: BoltAPI):
    return next(route for route in api.router.routes if route.path == "/ws")


def test_misconfigured_guards_and_backends_are_configuration_errors():
    api = guarded_api(["IsAuthenticated"])
    with pytest.raises(TypeError, match="not callable"):
        api.security.compile(ws_route(api))
    api = guarded_api([IsAuthenticated])
    with pytest.raises(TypeError, match=r"pass an instance, IsAuthenticated\(\)"):
        api.security.compile(ws_route(api))
    api = guarded_api([], auth=[JWTAuthentication])
    with pytest.raises(TypeError, match="pass an instance"):
        api.security.compile(ws_route(api))
    api = guarded_api([], auth=["bolt.auth.JWTAuthentication"])
    with pytest.raises(TypeError, match="not an authentication backend"):
        api.security.compile(ws_route(api))


@pytest.mark.asyncio
async def test_unauthenticated_route_has_an_empty_auth_context():
    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        auth = websocket.auth
        await websocket.send_json([auth.user_id, auth.is_authenticated, sorted(auth.permissions), dict(auth.claims),
                                   auth.backend, websocket.user.is_authenticated])

    async with WebSocketTestClient(api, "/ws", headers=USER) as ws:
        assert await ws.receive_json() == [None, False, [], {}, None, False]


@pytest.mark.asyncio
async def test_api_defaults_and_route_overrides():
    api = BoltAPI(auth=[JWT], guards=[IsAuthenticated()])

    @api.websocket("/ws/default")
    async def default(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(websocket.auth.user_id)

    @api.websocket("/ws/public", guards=[])
    async def public(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("public")

    with pytest.raises(PermissionError, match="Authentication required"):
        async with WebSocketTestClient(api, "/ws/default"):
            pass
    async with WebSocketTestClient(api, "/ws/default", headers=USER) as ws:
        assert await ws.receive_text() == "42"
    async with WebSocketTestClient(api, "/ws/public") as ws:
        assert await ws.receive_text() == "public"


class SettingsGuard(IsStaff):
    """Importable by dotted path from BOLT_DEFAULT_GUARDS."""


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the test settings' short key
async def test_django_settings_supply_defaults():
    from django.conf import settings

    api = BoltAPI()

    @api.websocket("/ws")
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text(str(websocket.auth.backend))

    staff = bearer(make_token({"is_staff": True}, secret=settings.SECRET_KEY))
    with override_settings(BOLT_AUTHENTICATION_CLASSES=["bolt.auth.JWTAuthentication"],
                           BOLT_DEFAULT_GUARDS=[f"{__name__}.SettingsGuard"]):
        async with WebSocketTestClient(api, "/ws", headers=staff) as ws:
            assert await ws.receive_text() == "jwt"
        with pytest.raises(PermissionError, match="Authentication required"):
            async with WebSocketTestClient(api, "/ws"):
                pass
    # Leaving the override recompiles the route: no security at all now.
    async with WebSocketTestClient(api, "/ws") as ws:
        assert await ws.receive_text() == "None"


# -- API keys ------------------------------------------------------------------------------------

API_KEYS = APIKeyAuthentication({"k-live-123": "service-a", "k-live-456": "service-b"},
                                key_permissions={"k-live-123": ["api.view_data"]})


@pytest.mark.asyncio
async def test_api_key_authentication():
    api = guarded_api([HasPermission("api.view_data")], auth=[API_KEYS])
    assert await status_of(api, {"X-API-Key": "k-live-123"}) == OK
    assert await status_of(api, {"X-API-Key": "k-live-456"}) == DENIED_403
    assert await status_of(api, ANON) == DENIED_401
    for wrong in ("k-live-12", "k-live-1234", "K-LIVE-123", "k-live-123\x00", "x" * 5000):
        assert await status_of(api, {"X-API-Key": wrong}) == (401, "Invalid API key"), wrong


@pytest.mark.asyncio
async def test_a_single_api_key_is_one_key_not_its_characters():
    api = guarded_api([IsAuthenticated()], auth=[APIKeyAuthentication("s3cr3t-key")])
    assert await status_of(api, {"X-API-Key": "s3cr3t-key"}) == OK
    for wrong in ("s", "-", "3"):
        assert await status_of(api, {"X-API-Key": wrong}) == (401, "Invalid API key"), wrong


def test_api_key_context_never_holds_the_key():
    backend = APIKeyAuthentication(["secret-key-value"])
    owner = backend._keys[0][1]
    assert owner.startswith("apikey:") and "secret-key-value" not in owner


def test_api_key_configuration_errors():
    with pytest.raises(ValueError):
        APIKeyAuthentication([])
    with pytest.raises(ValueError):
        APIKeyAuthentication([""])
    with pytest.raises(ValueError):
        APIKeyAuthentication(b"bytes-key")  # type: ignore[arg-type]  # a key is text


@pytest.mark.asyncio
async def test_first_successful_backend_wins_and_bad_credentials_refuse_only_if_none_succeeds():
    api = guarded_api([IsAuthenticated()], auth=[JWT, API_KEYS])
    # A bad token beside a good key: the key wins.
    assert await status_of(api, {**bearer("garbage"), "X-API-Key": "k-live-456"}) == OK
    # Only bad credentials: the first backend's failure is the answer.
    assert await status_of(api, {**bearer("garbage"), "X-API-Key": "nope"}) == (401, "Invalid token")
    # A bad token on a route that does not even require auth is still refused.
    open_api = guarded_api([], auth=[JWT])
    assert await status_of(open_api, bearer("garbage")) == (401, "Invalid token")
    assert await status_of(open_api, ANON) == OK


@pytest.mark.asyncio
@pytest.mark.parametrize("auth, challenge", [
    ([API_KEYS], 'APIKey header="x-api-key"'),
    ([APIKeyAuthentication(["k"], header="X-Service-Key")], 'APIKey header="x-service-key"'),
    ([JWT, API_KEYS], 'Bearer, APIKey header="x-api-key"'),
])
async def test_a_401_names_the_challenge_of_every_backend_of_the_route(auth, challenge):
    # RFC 9110 11.6.1: a 401 carries at least one challenge, so a client knows what to present.
    api = guarded_api([IsAuthenticated()], auth=auth)
    for headers in (ANON, {"X-API-Key": "nope", "X-Service-Key": "nope"}):
        response = await AsyncTestClient(api).get("/http", headers=headers)
        assert (response.status_code, response.headers["www-authenticate"]) == (401, challenge)
