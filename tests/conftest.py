"""Suite-wide settings, and the Redis fixtures (redis_servers.py) that tests in several folders use."""
from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, settings

from redis_servers import RedisCluster, RedisServer, redis_binary_or_skip, redis_cluster_or_skip

# The CI machine is shared and noisy: hypothesis' timing checks would fail tests for the machine's
# load, not for bolt. Every property test still runs its full number of examples.
settings.register_profile("bolt", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("bolt")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary_or_skip())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = redis_cluster_or_skip()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loop of every async test: asyncio's, or uvloop's with BOLT_TEST_LOOP=uvloop (the loop
    `bolt run` serves on: bolt installs it, as uvicorn[standard] does)."""
    if os.environ.get("BOLT_TEST_LOOP") == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
