"""The Redis backend on a real Redis Cluster: 3 masters + 3 replicas started on 127.0.0.1 by the test.

Two hubs in one test stand in for two processes (as in test_redis.py); the last test runs two uvicorn
workers. Marked `redis`: with BOLT_REQUIRE_REDIS=1 (CI) a missing redis-server 7+ fails them.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from redis.crc import key_slot
from websockets.asyncio.client import connect

from bolt.realtime import PublishError
from bolt.realtime.backends import backend_from_url
from bolt.realtime.backends.redis_cluster import RedisClusterBackend, parse_cluster_url
from bolt.realtime.presence import Member
from bolt.testing import WebSocketTestClient
from redis_servers import RedisCluster

from .test_redis import eventually, stop, until_joined, worker

pytestmark = pytest.mark.redis

# Rooms whose slots fall on different masters of a 3-master cluster (slots 0-5460, 5461-10922, 10923-16383).
ROOMS = {}
for _n in range(100):
    ROOMS.setdefault(key_slot(f"h:r{_n}".encode()) * 3 // 16384, f"h:r{_n}")


def test_cluster_urls_parse() -> None:
    nodes, options = parse_cluster_url("redis+cluster://u:p%40ss@10.0.0.1:7000,10.0.0.2,[::1]:7002")
    assert nodes == [("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002)]
    assert options == {"ssl": False, "username": "u", "password": "p@ss"}
    assert parse_cluster_url("rediss+cluster://h:1")[1] == {"ssl": True}
    assert isinstance(backend_from_url("redis+cluster://127.0.0.1:7000"), RedisClusterBackend)
    with pytest.raises(ValueError, match="braces"):
        RedisClusterBackend("redis+cluster://127.0.0.1:7000", prefix="{bolt}:")


@pytest.mark.asyncio
async def test_every_key_of_a_room_is_in_one_slot_and_rooms_spread_over_masters(redis_cluster: RedisCluster) -> None:
    api = worker(redis_cluster.url)
    try:
        backend = RedisClusterBackend(redis_cluster.url)
        keys = [backend._channel("h:x"), backend._presence_key("h:x"), *backend._history_keys("h:x")]
        assert len({key_slot(key.encode()) for key in keys}) == 1
        clients = [WebSocketTestClient(api, f"/chat/{room}") for room in ROOMS.values()]
        for ws in clients:
            await ws.__aenter__()
            assert await ws.receive_text() == "joined"
        assert api.hub.health()["shards"] == 3  # one subscriber connection per master
        channels = set()
        for port in redis_cluster.ports:
            channels |= set(redis_cluster.command(port, "pubsub", "shardchannels").split())
        assert {f"bolt:room:{{{room}}}" for room in ROOMS.values()} <= channels
        for ws in clients:
            await ws.__aexit__(None, None, None)
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_a_process_that_only_publishes(redis_cluster: RedisCluster) -> None:
    """A hub with no rooms of its own (a Django view's process, say) publishes from its first call."""
    listener, publisher = worker(redis_cluster.url), worker(redis_cluster.url)
    heard: list[str] = []
    try:
        stop_listening = await listener.hub.listen("~b:control", heard.append)
        await publisher.hub.start()
        await publisher.hub.broadcast("~b:control", "first")
        assert await publisher.hub.broadcast("h:x", "kept") > 1_700_000_000_000_000  # Redis's clock, in µs
        await eventually(lambda: heard == ["first"])
        await stop_listening()
    finally:
        await stop(listener, publisher)


@pytest.mark.asyncio
async def test_broadcast_resume_and_presence_across_processes(redis_cluster: RedisCluster) -> None:
    one, two = worker(redis_cluster.url), worker(redis_cluster.url)
    try:
        for room in ROOMS.values():
            async with WebSocketTestClient(one, f"/chat/{room}") as a, WebSocketTestClient(two, f"/chat/{room}") as b:
                assert await a.receive_text() == await b.receive_text() == "joined"
                assert await one.hub.count(room) == 2
                assert len(await two.hub.members(room)) == 2
                await a.send_text("hello")
                assert json.loads(await a.receive_text())["data"] == json.loads(await b.receive_text())["data"] == "hello"
                last = await two.hub.broadcast(room, "from two")
                assert json.loads(await a.receive_text())["data"] == "from two"
            # History lives in the room's slot: a client of the other process resumes from it.
            async with WebSocketTestClient(two, f"/chat/{room}?since={last - 1}") as c:
                assert json.loads(await c.receive_text()) == {"room": room, "id": last, "data": "from two"}
                assert await c.receive_text() == "joined"
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_resume_after_the_history_was_flushed_gets_the_new_history_after_a_gap(
        redis_cluster: RedisCluster) -> None:
    """Each room (one per master) saw 30 messages; every master is flushed and 40 new ones are published
    before a client resumes with its since: it gets all 40, after a gap."""
    one, two = worker(redis_cluster.url), worker(redis_cluster.url)
    for api in (one, two):
        api.hub.keep_history("h:r", size=100)  # the rooms of ROOMS
    try:
        seen = {room: [await one.hub.broadcast(room, n) for n in range(30)] for room in ROOMS.values()}
        for room in ROOMS.values():
            redis_cluster.command(redis_cluster.master_of(f"bolt:seq:{{{room}}}"), "flushall")
        for room, old in seen.items():
            new = [await one.hub.broadcast(room, f"new {n}") for n in range(40)]
            async with WebSocketTestClient(two, f"/chat/{room}?since={old[-1]}") as a:
                assert await until_joined(a) == [{"room": room, "gap": {"after": old[-1], "before": new[0]}}] + [
                    {"room": room, "id": id, "data": f"new {n}"} for n, id in enumerate(new)]
            assert new[0] > old[-1] and new == list(range(new[0], new[0] + 40))
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_burst_of_commands_waits_for_free_connections(redis_cluster: RedisCluster) -> None:
    """Far more commands at once than `max_connections`: they queue up, as on one Redis, and none fails."""
    one, two = worker(redis_cluster.url), worker(redis_cluster.url)  # 32 command connections
    try:
        async with WebSocketTestClient(two, "/chat/h:burst") as b:
            assert await b.receive_text() == "joined"
            ids = sorted(await asyncio.gather(*(one.hub.broadcast("h:burst", n) for n in range(300))))  # type: ignore[type-var]
            assert ids == list(range(ids[0], ids[0] + 300))
            assert sorted([json.loads(await b.receive_text())["id"] for _ in range(300)]) == ids
        backend = one.hub.backend
        assert backend is not None
        members = [Member(f"m.{n}", None) for n in range(300)]
        await asyncio.gather(*(backend.add_member("burst", member) for member in members))
        assert await two.hub.count("burst") == 300
        await asyncio.gather(*(backend.remove_member("burst", member) for member in members))
        assert await two.hub.count("burst") == 0  # no ghost left behind
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_command_that_finds_no_free_connection_in_time_says_so(redis_cluster: RedisCluster) -> None:
    import signal

    room = ROOMS[0]
    api = worker(RedisClusterBackend(redis_cluster.url, max_connections=1, timeout=0.3))
    try:
        await api.hub.broadcast(room, "before")
        process = redis_cluster.processes[redis_cluster.master_of(f"bolt:room:{{{room}}}")]
        process.send_signal(signal.SIGSTOP)  # briefly: well under the cluster's node timeout
        try:
            results = await asyncio.gather(*(api.hub.broadcast(room, n) for n in range(3)), return_exceptions=True)
        finally:
            process.send_signal(signal.SIGCONT)
        assert all(isinstance(result, PublishError) for result in results)
        assert any("command connections stayed busy for 0.3 s" in str(result) for result in results)
        assert all(str(result).partition("failed: ")[2] for result in results)  # each says what failed
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_members_of_a_process_that_stopped_beating_expire_on_every_shard(redis_cluster: RedisCluster) -> None:
    survivor, doomed = worker(redis_cluster.url, presence_ttl=0.6), worker(redis_cluster.url, presence_ttl=0.6)
    rooms = list(ROOMS.values())
    try:
        listeners = [survivor.hub.on_presence(room) for room in rooms]
        events = [await listener.__aenter__() for listener in listeners]
        clients = [WebSocketTestClient(doomed, f"/chat/{room}") for room in rooms]
        for ws in clients:
            await ws.__aenter__()
            assert await ws.receive_text() == "joined"
        for queue in events:
            assert (await asyncio.wait_for(queue.get(), 2)).type == "join"
        backend = doomed.hub.backend
        for task in backend._tasks:  # type: ignore[union-attr]  # a crash: no heartbeat, no goodbye
            task.cancel()
        client, backend._redis = backend._redis, None  # type: ignore[union-attr]
        for room, queue in zip(rooms, events):
            assert (await asyncio.wait_for(queue.get(), 5)).type == "leave"  # the survivor's sweep
            assert await survivor.hub.count(room) == 0
        for listener in listeners:
            await listener.__aexit__(None, None, None)
        await backend._close_pubsub()  # type: ignore[union-attr]
        await client.aclose()  # type: ignore[union-attr]
    finally:
        await stop(survivor)


@pytest.mark.asyncio
@pytest.mark.time_limit(90)
async def test_a_master_killed_mid_broadcast_fails_over_and_the_gap_is_signalled(redis_cluster: RedisCluster) -> None:
    """Only the rooms of the killed master get a gap: the other masters' rooms lost nothing."""
    room = ROOMS[0]
    one, two = worker(redis_cluster.url), worker(redis_cluster.url)
    gaps: list[str] = []
    two.hub.on_gap(lambda gap_room, last: gaps.append(gap_room))
    try:
        async with WebSocketTestClient(two, f"/chat/{room}") as b, \
                WebSocketTestClient(two, f"/chat/{ROOMS[1]}") as c, WebSocketTestClient(two, f"/chat/{ROOMS[2]}") as d:
            for ws in (b, c, d):
                assert await ws.receive_text() == "joined"
            sent, failed = 0, 0
            done = asyncio.Event()

            async def publish() -> None:
                nonlocal sent, failed
                while not done.is_set():
                    try:
                        await one.hub.broadcast(room, f"m{sent + failed}")
                        sent += 1
                    except PublishError:  # while the master is down, until the client sees the new slot map
                        failed += 1
                    await asyncio.sleep(0.01)

            publisher = asyncio.create_task(publish())
            received: list[dict[str, Any]] = []

            async def until(check: Any) -> None:
                while not check():
                    received.append(json.loads(await b.receive_text(timeout=20)))

            await until(lambda: len(received) >= 5)
            master = redis_cluster.master_of(f"bolt:room:{{{room}}}")
            redis_cluster.kill(master)  # SIGKILL, mid-broadcast
            await until(lambda: any("gap" in m for m in received))
            gap = next(m for m in received if "gap" in m)
            assert gap["room"] == room and gap["gap"]["before"] is None
            assert gap["gap"]["after"] == max(m["id"] for m in received if "id" in m)  # the last id it had
            # After the failover the replica serves the room: broadcasts flow again, with ids after the gap.
            await until(lambda: "gap" not in received[-1] and received[-1]["id"] > gap["gap"]["after"])
            done.set()
            await asyncio.wait_for(publisher, 10)
            assert sent > 5
            assert redis_cluster.master_of(f"bolt:room:{{{room}}}") != master
            await eventually(lambda: two.hub.health()["ok"] and one.hub.health()["ok"], timeout=10)
            assert two.hub.health()["reconnects"] >= 1
            assert {gap_room for gap_room in gaps if gap_room.startswith("h:")} == {room}  # ~ rooms are internal
            assert two.hub.health()["shards"] == 3
            for ws, other in ((c, ROOMS[1]), (d, ROOMS[2])):  # the surviving masters' rooms: no gap message
                await one.hub.broadcast(other, "after")
                assert json.loads(await ws.receive_text(timeout=5))["data"] == "after"
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_room_whose_slots_are_lost_is_unavailable_not_an_error(redis_cluster: RedisCluster) -> None:
    """A master and its replica both gone: the room's slots are down; its broadcasts raise PublishError."""
    room = ROOMS[2]
    api = worker(redis_cluster.url)
    try:
        await api.hub.broadcast(room, "before")
        master = redis_cluster.master_of(f"bolt:room:{{{room}}}")
        replica = redis_cluster.replica_of(master)
        redis_cluster.kill(replica)
        redis_cluster.kill(master)
        for _ in range(20):
            with pytest.raises(PublishError):
                await api.hub.broadcast(room, "lost")
            await asyncio.sleep(0.1)
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_a_master_that_stops_answering_is_detected(redis_cluster: RedisCluster) -> None:
    import signal

    room = ROOMS[1]
    api = worker(redis_cluster.url)  # default settings: a ping unanswered for health_interval (1 s)
    try:
        async with WebSocketTestClient(api, f"/chat/{room}") as a:
            assert await a.receive_text() == "joined"
            process = redis_cluster.processes[redis_cluster.master_of(f"bolt:room:{{{room}}}")]
            process.send_signal(signal.SIGSTOP)  # hung, its sockets open
            try:
                await eventually(lambda: not api.hub.health()["ok"], timeout=4)
                assert "no answer" in api.hub.health()["last_error"]
            finally:
                process.send_signal(signal.SIGCONT)
            await eventually(lambda: api.hub.health()["ok"], timeout=20)
            assert json.loads(await a.receive_text(timeout=5)) == {"room": room, "gap": {"after": None, "before": None}}
    finally:
        await stop(api)


@pytest.mark.asyncio
@pytest.mark.slow
async def test_broadcast_between_two_uvicorn_workers_on_the_cluster(redis_cluster: RedisCluster) -> None:
    from .test_workers import Worker, recv_json

    one, two = Worker(redis_cluster.url), Worker(redis_cluster.url)
    try:
        for room in ROOMS.values():
            async with connect(one.url(f"/chat/{room}")) as a, connect(two.url(f"/chat/{room}")) as b:
                assert (await recv_json(a))["joined"] == (await recv_json(b))["joined"] == room
                await a.send("from one")
                assert (await recv_json(a))["data"] == (await recv_json(b))["data"] == "from one"
                await b.send("from two")
                assert (await recv_json(a))["data"] == (await recv_json(b))["data"] == "from two"
                assert (await one.get(f"/presence/{room}"))["count"] == 2
    finally:
        one.stop()
        two.stop()
