"""Rate limiting: token buckets per (route, key), bounded memory, concurrency, order, message limits."""
from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest

from bolt import BoltAPI, Request, WebSocket
from bolt.auth import IsAuthenticated, JWTAuthentication
from bolt.middleware import rate_limit
from bolt.security.ratelimit import BucketTable, TokenBucket
from bolt.testing import AsyncTestClient, ConnectionClosed, WebSocketTestClient

from .conftest import SECRET, bearer, make_token


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def outcome(api: BoltAPI, path: str = "/ws/limited", **kwargs) -> int:
    try:
        async with WebSocketTestClient(api, path, **kwargs) as ws:
            await ws.receive_text()
            return 200
    except PermissionError as exc:
        return exc.status_code


def limited_api(order: str = "below", **limit) -> BoltAPI:
    api = BoltAPI()
    limit = limit or {"rps": 10, "burst": 20}

    async def limited_ws(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("Connected!")

    if order == "below":  # the guide's order
        api.websocket("/ws/limited")(rate_limit(**limit)(limited_ws))
    else:
        rate_limit(**limit)(api.websocket("/ws/limited")(limited_ws))
    return api


# -- the bucket table ------------------------------------------------------------------------------

def test_bucket_admits_burst_then_refills_at_rate():
    clock = FakeClock()
    table = BucketTable(clock=clock)
    assert [table.take("k", 2.0, 3) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert table.take("k", 2.0, 3) == pytest.approx(0.5)
    clock.now += 0.5
    assert table.take("k", 2.0, 3) == 0.0
    assert table.take("k", 2.0, 3) > 0
    clock.now += 100  # refill is capped at the burst
    assert [table.take("k", 2.0, 3) for _ in range(4)][-1] > 0


def test_buckets_are_per_key():
    table = BucketTable(clock=FakeClock())
    assert table.take("a", 1.0, 1) == 0.0
    assert table.take("a", 1.0, 1) > 0
    assert table.take("b", 1.0, 1) == 0.0


def test_refilled_buckets_expire_from_the_table():
    clock = FakeClock()
    table = BucketTable(clock=clock)
    for i in range(100):
        table.take(i, 10.0, 5)
    assert len(table) == 100
    clock.now += 1.0  # every bucket is full again: indistinguishable from a new one
    for i in range(100, 200):
        table.take(i, 10.0, 5)
    assert len(table) == 100  # each insertion dropped an expired bucket


def test_table_is_capped_and_evicts_least_recently_used():
    table = BucketTable(max_keys=10, clock=FakeClock())
    for i in range(10):
        table.take(i, 1.0, 1)
    table.take(0, 1.0, 1)  # touch 0: now 1 is the least recently used
    table.take("new", 1.0, 1)
    assert len(table) == 10
    assert table.take(0, 1.0, 1) > 0  # still remembered: refused
    assert table.take(1, 1.0, 1) == 0.0  # evicted: a fresh bucket


def test_flood_of_100000_distinct_keys_keeps_memory_bounded():
    cap = 10_000
    table = BucketTable(max_keys=cap)  # real clock: no bucket refills during the flood

    def flood(start: int, count: int) -> None:
        for i in range(start, start + count):
            table.take(("ip", f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"), 0.001, 5)

    tracemalloc.start()
    try:
        flood(0, cap)
        gc.collect()
        full, _ = tracemalloc.get_traced_memory()
        flood(cap, 100_000)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(table) == cap
    # Ten times the cap passed through; a table that kept every key would be about eleven times larger.
    assert after < 1.2 * full, f"{full} bytes at the cap, {after} after the flood"


@pytest.mark.asyncio
async def test_flood_through_the_pipeline_stays_at_the_cap():
    api = limited_api(rps=1, burst=1)
    api.security.buckets.max_keys = 500
    for i in range(2_000):
        assert await outcome(api, client=(f"10.0.{i >> 8}.{i & 255}", 40000)) == 200
    assert len(api.security.buckets) == 500


def test_message_bucket():
    clock = FakeClock()
    bucket = TokenBucket(5.0, 2, clock=clock)
    assert [bucket.take() for _ in range(3)] == [True, True, False]
    clock.now += 0.2
    assert bucket.take() is True


# -- the decorator ----------------------------------------------------------------------------------

def test_decorator_validates_its_arguments():
    for bad in ({"rps": 0}, {"rps": -1}, {"rps": float("nan")}, {"rps": 1, "burst": 0}, {"rps": 1, "burst": 1.5},
                {"rps": 1, "key": "cookie"}, {"rps": 1, "key": "header:"}, {},
                {"messages": (0, 1)}, {"rps": 1, "on_message_limit": "ignore"}, {"burst": 5}):
        with pytest.raises((ValueError, TypeError)):
            rate_limit(**bad)


@pytest.mark.asyncio
@pytest.mark.parametrize("order", ["below", "above"])
async def test_guide_example_in_either_decorator_order(order):
    api = limited_api(order, rps=10, burst=20)
    results = [await outcome(api) for _ in range(25)]
    assert results.count(200) in (20, 21)  # 20 burst, plus at most one refilled during the loop
    assert results[:20] == [200] * 20
    assert results[-1] == 429


@pytest.mark.asyncio
async def test_refusal_carries_retry_after():
    api = limited_api(rps=0.5, burst=1)
    assert await outcome(api) == 200
    with pytest.raises(PermissionError) as exc:
        async with WebSocketTestClient(api, "/ws/limited"):
            pass
    assert exc.value.status_code == 429
    assert exc.value.body == {"detail": "Rate limit exceeded", "retry_after": 2}
    assert "Rate limit exceeded" in str(exc.value)


@pytest.mark.asyncio
async def test_http_route_limit_per_ip_with_retry_after():
    api = BoltAPI()

    @rate_limit(rps=1, burst=2)
    @api.get("/items")
    async def items():
        return []

    alice, bob = AsyncTestClient(api, client=("10.0.0.1", 1)), AsyncTestClient(api, client=("10.0.0.2", 1))
    assert [(await alice.get("/items")).status_code for _ in range(3)] == [200, 200, 429]
    refused = await alice.get("/items")
    assert refused.json() == {"detail": "Rate limit exceeded", "retry_after": 1}
    assert refused.headers["retry-after"] == "1"
    assert (await bob.get("/items")).status_code == 200


@pytest.mark.asyncio
async def test_200_simultaneous_handshakes_against_burst_20_admit_exactly_20():
    api = limited_api(rps=0.001, burst=20)

    async def attempt() -> int:
        try:
            async with WebSocketTestClient(api, "/ws/limited") as ws:
                await ws.receive_text()
                await asyncio.sleep(0.05)  # hold the connection so they truly overlap
                return 200
        except PermissionError as exc:
            return exc.status_code

    results = await asyncio.wait_for(asyncio.gather(*(attempt() for _ in range(200))), 30)
    assert results.count(200) == 20
    assert results.count(429) == 180


@pytest.mark.asyncio
async def test_two_apis_never_share_buckets():
    first, second = limited_api(rps=0.001, burst=1), limited_api(rps=0.001, burst=1)
    assert await outcome(first) == 200
    assert await outcome(first) == 429
    assert await outcome(second) == 200


@pytest.mark.asyncio
async def test_routes_of_one_api_have_separate_buckets():
    api = BoltAPI()

    @api.websocket("/ws/a")
    @rate_limit(rps=0.001, burst=1)
    async def a(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("a")

    @api.websocket("/ws/b")
    @rate_limit(rps=0.001, burst=1)
    async def b(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("b")

    assert [await outcome(api, "/ws/a"), await outcome(api, "/ws/a"), await outcome(api, "/ws/b")] == [200, 429, 200]


@pytest.mark.asyncio
async def test_refused_origin_spends_no_token():
    api = limited_api(rps=0.001, burst=1)
    kwargs = {"cors_allowed_origins": ["https://example.com"], "read_django_settings": False}
    for _ in range(5):
        assert await outcome(api, headers={"Origin": "https://evil.com"}, **kwargs) == 403
    assert await outcome(api, headers={"Origin": "https://example.com"}, **kwargs) == 200


@pytest.mark.asyncio
async def test_rate_limit_runs_before_authentication():
    api = BoltAPI()

    @api.websocket("/ws", auth=[JWTAuthentication(secret=SECRET)], guards=[IsAuthenticated()])
    @rate_limit(rps=0.001, burst=2)
    async def handler(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("in")

    # Bad tokens spend tokens too: a credential-guessing flood is limited.
    assert await outcome(api, "/ws", headers=bearer("bad")) == 401
    assert await outcome(api, "/ws", headers=bearer("bad")) == 401
    assert await outcome(api, "/ws", headers=bearer(make_token())) == 429


@pytest.mark.asyncio
async def test_key_by_header_user_and_callable():
    def make(key):
        api = BoltAPI()

        @api.websocket("/ws", auth=[JWTAuthentication(secret=SECRET)])
        @rate_limit(rps=0.001, burst=1, key=key)
        async def handler(websocket: WebSocket):
            await websocket.accept()
            await websocket.send_text("in")

        return api

    api = make("header:x-tenant")
    assert await outcome(api, "/ws", headers={"X-Tenant": "a"}) == 200
    assert await outcome(api, "/ws", headers={"X-Tenant": "a"}) == 429
    assert await outcome(api, "/ws", headers={"X-Tenant": "b"}) == 200

    api = make("user")
    alice, bob = bearer(make_token({"sub": "alice"})), bearer(make_token({"sub": "bob"}))
    # Same address, different users: separate buckets.
    assert [await outcome(api, "/ws", headers=alice), await outcome(api, "/ws", headers=alice),
            await outcome(api, "/ws", headers=bob)] == [200, 429, 200]
    # Anonymous connections fall back to the address.
    assert [await outcome(api, "/ws"), await outcome(api, "/ws")] == [200, 429]

    api = make(lambda conn: conn.query_params.get("room"))
    assert [await outcome(api, "/ws", query_string="room=1"), await outcome(api, "/ws", query_string="room=1"),
            await outcome(api, "/ws", query_string="room=2")] == [200, 429, 200]

    async def tenant(conn):
        return conn.headers.get("x-tenant")

    api = make(tenant)
    assert [await outcome(api, "/ws", headers={"X-Tenant": "a"}), await outcome(api, "/ws", headers={"X-Tenant": "a"}),
            await outcome(api, "/ws")] == [200, 429, 200]  # None: keyed by the address instead


@pytest.mark.asyncio
async def test_key_ip_uses_the_scope_client_not_forwarded_headers():
    api = limited_api(rps=0.001, burst=1)
    assert await outcome(api, headers={"X-Forwarded-For": "1.1.1.1"}, client=("10.0.0.9", 1)) == 200
    assert await outcome(api, headers={"X-Forwarded-For": "2.2.2.2"}, client=("10.0.0.9", 1)) == 429


# -- per-connection message limits -----------------------------------------------------------------

def echo_with_message_limit(**limit) -> BoltAPI:
    api = BoltAPI()

    @api.websocket("/ws/chat")
    @rate_limit(**limit)
    async def chat(websocket: WebSocket):
        await websocket.accept()
        async for message in websocket.iter_text():
            await websocket.send_text(message)

    return api


@pytest.mark.asyncio
async def test_message_limit_closes_with_1008():
    api = echo_with_message_limit(messages=(0.001, 3))
    async with WebSocketTestClient(api, "/ws/chat") as ws:
        for i in range(3):
            await ws.send_text(str(i))
            assert await ws.receive_text() == str(i)
        await ws.send_text("one too many")
        with pytest.raises(ConnectionClosed) as exc:
            await ws.receive_text()
    assert (exc.value.code, exc.value.reason) == (1008, "Message rate exceeded")


@pytest.mark.asyncio
async def test_message_limit_drop_mode_discards_the_excess():
    api = echo_with_message_limit(messages=(0.001, 2), on_message_limit="drop")
    async with WebSocketTestClient(api, "/ws/chat") as ws:
        for i in range(5):
            await ws.send_text(str(i))
        assert await ws.receive_text() == "0"
        assert await ws.receive_text() == "1"
        with pytest.raises(TimeoutError):
            await ws.receive_text(timeout=0.1)


@pytest.mark.asyncio
async def test_message_limit_is_per_connection_and_combines_with_handshake_limit():
    api = echo_with_message_limit(rps=100, burst=100, messages=(0.001, 1))
    for _ in range(2):  # each connection gets its own message bucket
        async with WebSocketTestClient(api, "/ws/chat") as ws:
            await ws.send_text("hi")
            assert await ws.receive_text() == "hi"


@pytest.mark.asyncio
async def test_message_limit_on_http_route_is_ignored():
    api = BoltAPI()

    @api.get("/x")
    @rate_limit(messages=5)
    async def x(request: Request):
        return "ok"

    assert (await AsyncTestClient(api).get("/x")).status_code == 200


# -- IPv6 clients are keyed by prefix ----------------------------------------------------------------

def test_address_key_groups_ipv6_by_prefix_and_unmaps_ipv4():
    from bolt.security.ratelimit import address_key

    assert address_key("203.0.113.7") == "203.0.113.7"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert address_key("2001:DB8:1:2::1", 48) == "2001:db8:1::/48"
    assert address_key("2001:db8::1", 128) == "2001:db8::1"
    assert address_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("/run/app.sock") == "/run/app.sock"
    assert address_key("not:an:address") == "not:an:address"


@pytest.mark.asyncio
async def test_100_addresses_of_one_ipv6_64_share_one_bucket():
    api = limited_api(rps=0.001, burst=3)
    results = [await outcome(api, client=(f"2001:db8:7:7::{i:x}", 4000)) for i in range(1, 101)]
    assert results.count(200) == 3 and results.count(429) == 97
    # Another /64 has its own bucket; an IPv4-mapped address is its IPv4 address.
    assert await outcome(api, client=("2001:db8:7:8::1", 4000)) == 200
    assert [await outcome(api, client=("::ffff:198.51.100.1", 1)) for _ in range(3)] == [200] * 3
    assert await outcome(api, client=("198.51.100.1", 1)) == 429


@pytest.mark.asyncio
async def test_the_ipv6_prefix_is_a_setting():
    from django.test import override_settings

    with override_settings(BOLT_RATE_LIMIT_IPV6_PREFIX=128):
        api = limited_api(rps=0.001, burst=1)
        assert [await outcome(api, client=(f"2001:db8::{i}", 1)) for i in range(1, 4)] == [200] * 3
    with override_settings(BOLT_RATE_LIMIT_IPV6_PREFIX=48):
        api = limited_api(rps=0.001, burst=1)
        assert [await outcome(api, client=(f"2001:db8:0:{i}::1", 1)) for i in range(1, 3)] == [200, 429]
    for bad in (0, 129, "64", True):
        with override_settings(BOLT_RATE_LIMIT_IPV6_PREFIX=bad):
            with pytest.raises(ValueError, match="BOLT_RATE_LIMIT_IPV6_PREFIX"):
                await outcome(limited_api(rps=1))
