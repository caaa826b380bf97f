"""JWTAuthentication: the guide's example, token sources, and every forged or broken token refused."""
from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest

from bolt import BoltAPI, Request, WebSocket
from bolt.auth import AuthContext, AuthenticationFailed, IsAuthenticated, JWTAuthentication
from bolt.testing import AsyncTestClient, WebSocketTestClient

from .conftest import SECRET, bearer, make_token


def protected_api(backend: JWTAuthentication | None = None) -> BoltAPI:
    api = BoltAPI()

    @api.websocket("/ws/protected", auth=[backend or JWTAuthentication(secret=SECRET)], guards=[IsAuthenticated()])
    async def protected(websocket: WebSocket):
        await websocket.accept()
        auth = websocket.auth
        await websocket.send_json({"user_id": auth.user_id, "backend": auth.backend, "source": auth.source,
                                   "is_staff": auth.is_staff, "permissions": sorted(auth.permissions)})

    @api.get("/me", auth=[backend or JWTAuthentication(secret=SECRET)], guards=[IsAuthenticated()])
    async def me(request: Request):
        return {"user_id": request.auth.user_id}

    return api


async def connect(api: BoltAPI, **kwargs) -> dict:
    async with WebSocketTestClient(api, "/ws/protected", **kwargs) as ws:
        return await ws.receive_json()


async def refused(api: BoltAPI, **kwargs) -> PermissionError:
    with pytest.raises(PermissionError) as exc:
        await connect(api, **kwargs)
    return exc.value


@pytest.mark.asyncio
async def test_valid_token_fills_the_auth_context():
    token = make_token({"is_staff": True, "permissions": ["api.view_data", "api.edit"]})
    body = await connect(protected_api(), headers=bearer(token))
    assert body == {"user_id": "42", "backend": "jwt", "source": "header", "is_staff": True,
                    "permissions": ["api.edit", "api.view_data"]}


@pytest.mark.asyncio
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_bearer_scheme_is_case_insensitive(scheme):
    body = await connect(protected_api(), headers={"Authorization": f"{scheme} {make_token()}"})
    assert body["user_id"] == "42"


@pytest.mark.asyncio
async def test_other_authorization_schemes_are_not_tokens():
    exc = await refused(protected_api(), headers={"Authorization": f"Basic {make_token()}"})
    assert (exc.status_code, exc.detail) == (401, "Authentication required")


@pytest.mark.asyncio
async def test_query_param_and_cookie_sources_are_opt_in():
    token = make_token()
    default = protected_api()
    assert (await refused(default, query_string=f"token={token}")).detail == "Authentication required"
    assert (await refused(default, cookies={"jwt": token})).detail == "Authentication required"

    opted_in = protected_api(JWTAuthentication(secret=SECRET, query_param="token", cookie="jwt"))
    assert (await connect(opted_in, query_string=f"token={token}"))["source"] == "query"
    assert (await connect(opted_in, cookies={"jwt": token}))["source"] == "cookie"


@pytest.mark.asyncio
async def test_a_dedicated_header_carries_the_bare_token():
    api = protected_api(JWTAuthentication(secret=SECRET, header="x-access-token"))
    assert (await connect(api, headers={"X-Access-Token": make_token()}))["user_id"] == "42"
    assert (await connect(api, headers={"X-Access-Token": f"Bearer {make_token()}"}))["user_id"] == "42"
    exc = await refused(api, headers=bearer(make_token()))  # Authorization is not read any more
    assert (exc.status_code, exc.detail) == (401, "Authentication required")


@pytest.mark.asyncio
async def test_claim_flags_must_be_json_true():
    body = await connect(protected_api(), headers=bearer(make_token({"is_staff": "false", "permissions": "api.x"})))
    assert body["is_staff"] is False
    assert body["permissions"] == []


# -- attacks: each is a 401, never a 500 -----------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: dict, alg: str = "none") -> str:
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps({"sub": "1", "exp": int(time.time()) + 3600, **claims}).encode())
    return f"{header}.{payload}."


ATTACKS = [
    "alg none", "alg None capitalised", "alg outside the list", "bad signature", "tampered payload", "expired",
    "not yet valid", "no exp", "unexpected audience", "no subject", "empty subject", "blank subject", "malformed", "garbage", "two parts",
    "non-JSON header", "header is a list", "exp is a string", "oversized", "empty",
]


def attack_tokens() -> dict[str, str]:
    good = make_token()
    head, payload, signature = good.split(".")
    admin_payload = _b64(json.dumps({"sub": "42", "exp": int(time.time()) + 3600, "is_superuser": True}).encode())
    return {
        "alg none": unsigned_token({"is_superuser": True}),
        "alg None capitalised": unsigned_token({"is_superuser": True}, alg="None"),
        "alg outside the list": make_token(algorithm="HS512"),
        "bad signature": make_token(secret="another-secret-of-sufficient-length-123"),
        "tampered payload": f"{head}.{admin_payload}.{signature}",
        "expired": make_token(expires_in=-60),
        "not yet valid": make_token({"nbf": int(time.time()) + 600}),
        "no exp": jwt.encode({"sub": "42"}, SECRET, algorithm="HS256"),
        "unexpected audience": make_token({"aud": "other-service"}),
        "no subject": jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
        "empty subject": make_token({"sub": ""}),
        "blank subject": make_token({"sub": "  "}),
        "malformed": "not.a.jwt",
        "garbage": "%%%%",
        "two parts": f"{head}.{payload}",
        "non-JSON header": f"{_b64(b'nope')}.{payload}.{signature}",
        "header is a list": f"{_b64(b'[1,2]')}.{payload}.{signature}",
        "exp is a string": make_token({"exp": "tomorrow"}),
        "oversized": make_token({"pad": "x" * 9000}),
        "empty": "",
    }


@pytest.mark.asyncio
@pytest.mark.parametrize("attack", ATTACKS)
async def test_attack_tokens_are_refused_with_401(attack):
    token = attack_tokens()[attack]
    api = protected_api()
    exc = await refused(api, headers={"Authorization": f"Bearer {token}"})
    assert exc.status_code == 401
    assert exc.detail in ("Invalid token", "Token expired", "Authentication required")
    response = await AsyncTestClient(api).get("/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.asyncio
async def test_expired_token_says_so():
    exc = await refused(protected_api(), headers=bearer(make_token(expires_in=-60)))
    assert (exc.status_code, exc.detail) == (401, "Token expired")


@pytest.mark.asyncio
async def test_hs_rs_key_confusion_is_refused(rsa_keys):
    private, public_pem = rsa_keys
    api = protected_api(JWTAuthentication(secret=public_pem, algorithms=["RS256"]))
    assert (await connect(api, headers=bearer(make_token(secret=private, algorithm="RS256"))))["user_id"] == "42"
    # HS256 token whose HMAC key is the server's public key: the classic confusion attack.
    forged = jwt.api_jws.PyJWS()
    forged._algorithms["HS256"].prepare_key = lambda key: key  # let the attacker use a PEM as HMAC key
    payload = json.dumps({"sub": "1", "exp": int(time.time()) + 3600, "is_superuser": True}).encode()
    token = forged.encode(payload, public_pem, algorithm="HS256")
    exc = await refused(api, headers=bearer(token))
    assert (exc.status_code, exc.detail) == (401, "Invalid token")


@pytest.mark.asyncio
async def test_a_private_key_given_as_secret_verifies_with_its_public_half(rsa_keys):
    from cryptography.hazmat.primitives import serialization

    private, _ = rsa_keys
    private_pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    api = protected_api(JWTAuthentication(secret=private_pem, algorithms=["RS256"]))
    assert (await connect(api, headers=bearer(make_token(secret=private, algorithm="RS256"))))["user_id"] == "42"


def test_configuration_refuses_dangerous_algorithm_sets(rsa_keys):
    _, public_pem = rsa_keys
    with pytest.raises(ValueError, match="'none' is never accepted"):
        JWTAuthentication(secret=SECRET, algorithms=["none"])
    with pytest.raises(ValueError, match="key-confusion"):
        JWTAuthentication(secret=public_pem, algorithms=["RS256", "HS256"])
    with pytest.raises(ValueError, match="at least one algorithm"):
        JWTAuthentication(secret=SECRET, algorithms=[])
    with pytest.raises(ValueError, match="public key"):
        JWTAuthentication(algorithms=["RS256"])
    with pytest.raises(jwt.exceptions.InvalidKeyError):
        JWTAuthentication(secret=public_pem, algorithms=["HS256"])  # a PEM key is not an HMAC secret


@pytest.mark.asyncio
async def test_audience_and_issuer_are_checked():
    backend = JWTAuthentication(secret=SECRET, audience="chat", issuer="https://auth.example")
    api = protected_api(backend)
    good = make_token({"aud": "chat", "iss": "https://auth.example"})
    assert (await connect(api, headers=bearer(good)))["user_id"] == "42"
    for claims in ({"aud": "billing", "iss": "https://auth.example"}, {"aud": "chat", "iss": "https://evil"},
                   {"iss": "https://auth.example"}, {"aud": "chat"}):
        exc = await refused(api, headers=bearer(make_token(claims)))
        assert (exc.status_code, exc.detail) == (401, "Invalid token"), claims


@pytest.mark.asyncio
async def test_leeway_tolerates_clock_skew():
    api = protected_api(JWTAuthentication(secret=SECRET, leeway=120))
    assert (await connect(api, headers=bearer(make_token(expires_in=-30))))["user_id"] == "42"


@pytest.mark.asyncio
async def test_ec_public_key(ec_keys):
    private, public_pem = ec_keys
    api = protected_api(JWTAuthentication(secret=public_pem, algorithms=["ES256"]))
    assert (await connect(api, headers=bearer(make_token(secret=private, algorithm="ES256"))))["user_id"] == "42"
    exc = await refused(api, headers=bearer(make_token()))  # HS256 not in the list
    assert exc.status_code == 401


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the test settings' short key
async def test_secret_defaults_to_django_secret_key():
    from django.conf import settings

    api = protected_api(JWTAuthentication())
    token = make_token(secret=settings.SECRET_KEY)
    assert (await connect(api, headers=bearer(token)))["user_id"] == "42"
    assert (await refused(api, headers=bearer(make_token()))).status_code == 401


def test_auth_context_is_immutable():
    context = AuthContext(user_id="1")
    with pytest.raises(AttributeError):
        context.user_id = "2"  # type: ignore[misc]


# -- the verified-token cache ----------------------------------------------------------------------

class _Conn:
    """Just enough of a connection for a backend."""

    def __init__(self, token: str, where: str = "header") -> None:
        from bolt.datastructures import Headers, QueryParams

        self.headers = Headers([(b"authorization", f"Bearer {token}".encode())] if where == "header" else [])
        self.query_params = QueryParams(f"token={token}" if where == "query" else "")
        self.cookies: dict = {}


@pytest.mark.asyncio
async def test_a_verified_token_is_not_verified_again(monkeypatch):
    calls = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    backend = JWTAuthentication(secret=SECRET, query_param="token")
    token = make_token()
    first = await backend.authenticate(_Conn(token))
    second = await backend.authenticate(_Conn(token, "query"))
    assert len(calls) == 1
    assert (first.user_id, first.source, second.user_id, second.source) == ("42", "header", "42", "query")
    # Forged tokens are never remembered: each one is verified (and refused) again.
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await backend.authenticate(_Conn(token[:-2] + "xx"))
    assert len(calls) == 3
    uncached = JWTAuthentication(secret=SECRET, cache_size=0)
    await uncached.authenticate(_Conn(token))
    await uncached.authenticate(_Conn(token))
    assert len(calls) == 5


@pytest.mark.asyncio
async def test_a_cached_token_still_expires():
    backend = JWTAuthentication(secret=SECRET)
    token = jwt.encode({"sub": "1", "exp": int(time.time()) + 1}, SECRET, algorithm="HS256")
    assert (await backend.authenticate(_Conn(token))).user_id == "1"
    await asyncio.sleep(2.05 - (time.time() % 1))  # past exp whatever the sub-second phase
    with pytest.raises(AuthenticationFailed, match="Token expired"):
        await backend.authenticate(_Conn(token))


@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # the test settings' short key
async def test_a_cached_token_is_refused_once_the_secret_key_changes():
    from django.conf import settings
    from django.test import override_settings

    backend = JWTAuthentication()
    token = make_token(secret=settings.SECRET_KEY)
    assert (await backend.authenticate(_Conn(token))).user_id == "42"
    with override_settings(SECRET_KEY="a-rotated-secret-key-" + "r" * 40):
        with pytest.raises(AuthenticationFailed, match="Invalid token"):
            await backend.authenticate(_Conn(token))


@pytest.mark.asyncio
async def test_the_cache_is_bounded():
    backend = JWTAuthentication(secret=SECRET, cache_size=3)
    for i in range(10):
        await backend.authenticate(_Conn(make_token({"sub": str(i)})))
    assert len(backend._verified) == 3
    oversized = make_token({"pad": "p" * 3000})
    await backend.authenticate(_Conn(oversized))
    assert oversized not in backend._verified


def _pyjwt_accepts(token: str, leeway: float = 0) -> bool:
    try:
        jwt.decode(token, SECRET, algorithms=["HS256"], leeway=leeway, options={"require": ["exp"]})
    except jwt.PyJWTError:
        return False
    return True


@pytest.mark.asyncio
@pytest.mark.parametrize("leeway", [0, 30])
@pytest.mark.parametrize("shape", ["int", "float", "digits", "padded digits", "decimal string", "exponent string",
                                   "null", "true", "list", "huge float"])
async def test_the_cache_never_outlives_what_pyjwt_accepts(shape, leeway):
    # The attack: pyjwt accepts "exp": "1796163422"; a cache that honoured only numbers kept it forever.
    now = int(time.time())
    exp = {"int": now + 5, "float": now + 5.9, "digits": str(now + 5), "padded digits": f" {now + 5} ",
           "decimal string": f"{now + 5}.0", "exponent string": "1e12", "null": None, "true": True,
           "list": [now + 5], "huge float": 1e308}[shape]
    token = jwt.encode({"sub": "1", "exp": exp}, SECRET, algorithm="HS256")
    backend = JWTAuthentication(secret=SECRET, leeway=leeway)
    if not _pyjwt_accepts(token, leeway):
        with pytest.raises(AuthenticationFailed):
            await backend.authenticate(_Conn(token))
        assert token not in backend._verified
        return
    context = await backend.authenticate(_Conn(token))
    # pyjwt refuses from int(exp) + leeway on: neither the cache nor the socket deadline may go further.
    assert context.expires_at == backend._verified[token][1] == int(exp) + float(leeway)


@pytest.mark.asyncio
async def test_a_cached_token_with_a_string_exp_expires():
    backend = JWTAuthentication(secret=SECRET)
    token = jwt.encode({"sub": "1", "exp": str(int(time.time()) + 1)}, SECRET, algorithm="HS256")
    assert (await backend.authenticate(_Conn(token))).user_id == "1"
    await asyncio.sleep(2.05 - (time.time() % 1))  # past exp whatever the sub-second phase
    assert not _pyjwt_accepts(token)
    with pytest.raises(AuthenticationFailed, match="Token expired"):
        await backend.authenticate(_Conn(token))


@pytest.mark.asyncio
async def test_a_token_without_exp_never_expires_when_exp_is_not_required():
    backend = JWTAuthentication(secret=SECRET, require=())
    token = jwt.encode({"sub": "1"}, SECRET, algorithm="HS256")
    assert (await backend.authenticate(_Conn(token))).expires_at is None
    assert backend._verified[token][1] == float("inf")
