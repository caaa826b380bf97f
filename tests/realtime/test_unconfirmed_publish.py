"""A publish whose reply Redis did not send in time: this process's members get a gap signal.

The command can still run once Redis resumes, and then the other processes deliver the message and a
room with history keeps it, while this process (which delivers its own broadcasts only when Redis
confirms them, and ignores its own echo) never does: nothing lost means its members are told.
Redis is made to hang for real (SIGSTOP), just longer than the publishing backend's timeout.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from bolt.realtime import PublishError
from bolt.realtime.backends.redis import RedisBackend
from bolt.realtime.backends.redis_cluster import RedisClusterBackend
from bolt.testing import WebSocketTestClient
from redis_servers import RedisCluster, RedisServer

from .test_redis import stop, worker

pytestmark = pytest.mark.redis


@contextlib.contextmanager
def _hung(process: Any) -> Iterator[None]:
    """Redis hangs with its sockets open (SIGSTOP) for the block, and resumes (SIGCONT) after it."""
    process.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        process.send_signal(signal.SIGCONT)


@pytest.mark.asyncio
async def test_a_publish_that_timed_out_gives_this_process_members_a_gap(redis_server: RedisServer) -> None:
    # A subscriber slow to take Redis for gone: the gap must come from the publish, not from an outage.
    one = worker(RedisBackend(redis_server.url, timeout=0.3, health_interval=5.0))
    two = worker(redis_server.url)
    gaps: list[tuple[str, Any]] = []
    one.hub.on_gap(lambda room, last: gaps.append((room, last)))
    try:
        async with WebSocketTestClient(one, "/chat/h:feed") as a, WebSocketTestClient(two, "/chat/h:feed") as b:
            assert await a.receive_text() == await b.receive_text() == "joined"
            last = await one.hub.broadcast("h:feed", "before")
            assert (await a.receive_json())["id"] == (await b.receive_json())["id"] == last
            with _hung(redis_server.process):
                for _ in range(2):
                    with pytest.raises(PublishError):
                        await one.hub.broadcast("h:feed", "unconfirmed")
            # Redis ran the first script once it resumed (the second may not have been sent: its
            # connection timed out too): the other process delivers the message...
            assert await b.receive_json(timeout=5) == {"room": "h:feed", "id": last + 1, "data": "unconfirmed"}
            # ...so this process's member, who will never get it, is told once it may have missed messages.
            assert await a.receive_json(timeout=5) == {"room": "h:feed", "gap": {"after": last, "before": None}}
            assert gaps == [("h:feed", last)]
            assert one.hub.health()["reconnects"] == 0
            newer = await one.hub.broadcast("h:feed", "after")
            assert await a.receive_json() == {"room": "h:feed", "id": newer, "data": "after"}
            # A confirmed publish since: the next unconfirmed one is told again.
            with _hung(redis_server.process), pytest.raises(PublishError):
                await one.hub.broadcast("h:feed", "unconfirmed again")
            assert await a.receive_json(timeout=5) == {"room": "h:feed", "gap": {"after": newer, "before": None}}
            assert gaps == [("h:feed", last), ("h:feed", newer)]
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_publish_cancelled_before_its_reply_gives_this_process_members_a_gap(redis_server: RedisServer) -> None:
    """As when sync publish() gives up (its `timeout`): the broadcast is cancelled, the command may still run."""
    one = worker(RedisBackend(redis_server.url, health_interval=5.0))
    two = worker(redis_server.url)
    try:
        async with WebSocketTestClient(one, "/chat/h:c") as a, WebSocketTestClient(two, "/chat/h:c") as b:
            assert await a.receive_text() == await b.receive_text() == "joined"
            last = await one.hub.broadcast("h:c", "before")  # the command connection is open
            assert (await a.receive_json())["id"] == (await b.receive_json())["id"] == last
            with _hung(redis_server.process):
                broadcast = asyncio.ensure_future(one.hub.broadcast("h:c", "cancelled"))
                await asyncio.sleep(0.2)
                broadcast.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await broadcast
            assert await b.receive_json(timeout=5) == {"room": "h:c", "id": last + 1, "data": "cancelled"}
            assert await a.receive_json(timeout=5) == {"room": "h:c", "gap": {"after": last, "before": None}}
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_publish_redis_refused_gives_no_gap(redis_server: RedisServer) -> None:
    """Redis answered with an error: nothing was published, so nobody missed anything."""
    one = worker(redis_server.url)
    gaps: list[tuple[str, Any]] = []
    one.hub.on_gap(lambda room, last: gaps.append((room, last)))
    admin = Redis.from_url(redis_server.url)
    try:
        async with WebSocketTestClient(one, "/chat/h:feed") as a:
            assert await a.receive_text() == "joined"
            await admin.config_set("maxmemory", 1)  # with noeviction, every write is refused (OOM)
            try:
                with pytest.raises(PublishError, match="maxmemory"):
                    await one.hub.broadcast("h:feed", "refused")
            finally:
                await admin.config_set("maxmemory", 0)
            assert gaps == []
            sent = await one.hub.broadcast("h:feed", "accepted")
            assert await a.receive_json() == {"room": "h:feed", "id": sent, "data": "accepted"}
    finally:
        await admin.aclose()
        await stop(one)


@pytest.mark.asyncio
async def test_a_publish_that_timed_out_on_a_cluster_gives_this_process_members_a_gap(
        redis_cluster: RedisCluster) -> None:
    room = "h:feed"
    one = worker(RedisClusterBackend(redis_cluster.url, timeout=0.3, health_interval=5.0))
    two = worker(redis_cluster.url)
    try:
        async with WebSocketTestClient(one, f"/chat/{room}") as a, WebSocketTestClient(two, f"/chat/{room}") as b:
            assert await a.receive_text() == await b.receive_text() == "joined"
            last = await one.hub.broadcast(room, "before")
            assert (await a.receive_json())["id"] == (await b.receive_json())["id"] == last
            master = redis_cluster.processes[redis_cluster.master_of(f"{{{room}}}")]
            # Well under the cluster's node timeout (1 s): no failover, the master runs the script on resuming.
            with _hung(master), pytest.raises(PublishError):
                await one.hub.broadcast(room, "unconfirmed")
            assert await b.receive_json(timeout=5) == {"room": room, "id": last + 1, "data": "unconfirmed"}
            assert await a.receive_json(timeout=5) == {"room": room, "gap": {"after": last, "before": None}}
    finally:
        await stop(one, two)
