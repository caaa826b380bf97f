"""The Redis backend against a real redis-server, two hubs in one test standing in for two processes."""
from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from bolt import BoltAPI, WebSocket
from bolt.realtime import BackendUnavailable, PublishError
from bolt.testing import WebSocketTestClient
from redis_servers import RedisServer, redis_binary_or_skip

pytestmark = pytest.mark.redis


def worker(url: Any, **options: Any) -> BoltAPI:
    """One 'process': join the path's room (resuming after ?since=), broadcast what is typed."""
    api = BoltAPI(pubsub=url, **options)
    api.hub.keep_history("h:", size=3)

    @api.websocket("/chat/{room}")
    async def chat(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        since = websocket.query_params.get("since")
        await websocket.join(room, since=int(since) if since is not None else None)
        await websocket.send_text("joined")
        async for text in websocket.iter_text():
            await api.hub.broadcast(room, text)

    return api


async def eventually(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def until_joined(ws: WebSocketTestClient) -> list[Any]:
    """What the chat sends before "joined" (a join's replay), decoded."""
    received = []
    while (text := await ws.receive_text()) != "joined":
        received.append(orjson.loads(text))
    return received


async def stop(*apis: BoltAPI) -> None:
    for api in apis:
        await api.hub.stop()


@pytest.mark.asyncio
async def test_broadcast_reaches_both_processes(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    try:
        async with WebSocketTestClient(one, "/chat/lobby") as a, WebSocketTestClient(two, "/chat/lobby") as b:
            assert await a.receive_text() == await b.receive_text() == "joined"
            await a.send_text("hello")
            assert await a.receive_text() == "hello"  # delivered locally, not echoed twice
            assert await b.receive_text() == "hello"
            await two.hub.broadcast("lobby", {"from": "two"})
            assert await a.receive_json() == await b.receive_json() == {"from": "two"}
            with pytest.raises(TimeoutError):
                await a.receive_text(timeout=0.2)
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_each_process_subscribes_only_to_rooms_it_has_members_in(redis_server: RedisServer) -> None:
    api = worker(redis_server.url)
    client = Redis.from_url(redis_server.url)
    try:
        async with WebSocketTestClient(api, "/chat/lobby") as a:
            assert await a.receive_text() == "joined"
            channels = {c.decode() for c in await client.pubsub_channels("bolt:room:*")}
            own = f"bolt:room:{api.hub.connection_room(api.hub.local_members('lobby')[0])}"
            assert channels == {"bolt:room:lobby", own}
        await eventually(lambda: _no_channels(client))
    finally:
        await client.aclose()
        await stop(api)


async def _next_text(client: WebSocketTestClient) -> str | None:
    try:
        return await client.receive_text(timeout=0.3)
    except TimeoutError:
        return None


async def _no_channels(client: Redis) -> bool:
    return await client.pubsub_channels("bolt:room:*") == []


@pytest.mark.asyncio
async def test_a_connections_own_room_reaches_it_from_another_process(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    client = Redis.from_url(redis_server.url)
    try:
        async with WebSocketTestClient(one, "/chat/lobby") as a, WebSocketTestClient(one, "/chat/lobby") as b:
            assert await a.receive_text() == await b.receive_text() == "joined"
            ids = one.hub.local_members("lobby")
            assert one.hub.local_members(one.hub.connection_room(ids[0])) == ids[:1]
            for n, connection_id in enumerate(ids):
                await two.hub.send_to_connection(connection_id, f"only you, {n}")
                got = await asyncio.gather(_next_text(a), _next_text(b))
                assert sorted(got, key=str) == [None, f"only you, {n}"]  # one of the two, and only one
            await two.hub.send_to_connection("nobody.1", "lost")  # no such connection: no one gets it
            assert await asyncio.gather(_next_text(a), _next_text(b)) == [None, None]
        await eventually(lambda: _no_channels(client))  # its own room's channel went with it
    finally:
        await client.aclose()
        await stop(one, two)


@pytest.mark.asyncio
async def test_presence_across_processes(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    try:
        async with one.hub.on_presence("lobby") as events:
            async with WebSocketTestClient(two, "/chat/lobby") as b:
                assert await b.receive_text() == "joined"
                event = await asyncio.wait_for(events.get(), 2)
                assert event.type == "join" and event.member.connection_id == two.hub.local_members("lobby")[0]
                async with WebSocketTestClient(one, "/chat/lobby") as a:
                    assert await a.receive_text() == "joined"
                    assert await one.hub.count("lobby") == await two.hub.count("lobby") == 2
                    assert len(await two.hub.members("lobby")) == 2
            kinds = [(await asyncio.wait_for(events.get(), 2)).type for _ in range(3)]
            assert kinds == ["join", "leave", "leave"]
        assert await one.hub.count("lobby") == 0
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_members_of_a_process_that_stopped_beating_expire_within_the_ttl(redis_server: RedisServer) -> None:
    survivor, doomed = worker(redis_server.url, presence_ttl=0.6), worker(redis_server.url, presence_ttl=0.6)
    try:
        async with survivor.hub.on_presence("lobby") as events:
            async with WebSocketTestClient(doomed, "/chat/lobby") as b:
                assert await b.receive_text() == "joined"
                assert (await asyncio.wait_for(events.get(), 2)).type == "join"
                assert await survivor.hub.count("lobby") == 1
                # A crash: the heartbeat stops and nobody says goodbye.
                backend = doomed.hub.backend
                for task in backend._tasks:  # type: ignore[union-attr]
                    task.cancel()
                backend._redis = None  # type: ignore[union-attr]
                started = time.monotonic()
                await eventually(lambda: _count_is(survivor, "lobby", 0), timeout=2)
                assert time.monotonic() - started <= 0.6 + 0.1
                leave = await asyncio.wait_for(events.get(), 2)  # announced by the survivor's sweep
                assert leave.type == "leave"
    finally:
        await stop(survivor)


async def _count_is(api: BoltAPI, room: str, expected: int) -> bool:
    try:
        return await api.hub.count(room) == expected
    except BackendUnavailable:
        # Just after Redis comes back, a pooled connection the old server closed can be handed out
        # once before its end is noticed (bolt's commands are not retried): not yet, then.
        return False


@pytest.mark.asyncio
async def test_resume_across_processes_uses_history_in_redis(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    try:
        ids = [await one.hub.broadcast("h:news", {"n": n}) for n in range(5)]
        assert ids == list(range(ids[0], ids[0] + 5))
        async with WebSocketTestClient(two, f"/chat/h:news?since={ids[0]}") as b:
            assert await b.receive_json() == {"room": "h:news", "gap": {"after": ids[0], "before": ids[2]}}
            assert [(await b.receive_json())["id"] for _ in range(3)] == ids[2:]
            assert await b.receive_text() == "joined"
            await one.hub.broadcast("h:news", "live")
            assert await b.receive_json() == {"room": "h:news", "id": ids[4] + 1, "data": "live"}
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_redis_down_and_back(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    gaps: list[tuple[str, Any]] = []
    two.hub.on_gap(lambda room, last: gaps.append((room, last)))
    try:
        async with WebSocketTestClient(one, "/chat/h:feed") as a, WebSocketTestClient(two, "/chat/h:feed") as b:
            assert await a.receive_text() == await b.receive_text() == "joined"
            last = await one.hub.broadcast("h:feed", "before")
            assert (await b.receive_json())["data"] == "before"
            assert (await a.receive_json())["data"] == "before"

            redis_server.stop()
            started = time.monotonic()
            with pytest.raises(PublishError, match="h:feed"):
                await one.hub.broadcast("h:feed", "lost")
            assert time.monotonic() - started < 3  # a clear error, not a hang
            await eventually(lambda: not two.hub.health()["ok"])
            health = two.hub.health()
            assert health["subscriber"] == "reconnecting" and health["deaf_since"] and health["last_error"]

            redis_server.start()
            await eventually(lambda: one.hub.health()["ok"] and two.hub.health()["ok"], timeout=10)
            # Each side learns it may have missed messages: ids after the last one delivered are unknown.
            assert await b.receive_json() == {"room": "h:feed", "gap": {"after": last, "before": None}}
            assert await a.receive_json() == {"room": "h:feed", "gap": {"after": last, "before": None}}
            assert ("h:feed", last) in gaps and two.hub.health()["reconnects"] == 1
            await one.hub.broadcast("h:feed", "after")
            assert (await b.receive_json())["data"] == "after"
            assert (await a.receive_json())["data"] == "after"
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_resumed_connection_gets_the_new_ids_after_redis_restarts_empty(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    try:
        old = [await two.hub.broadcast("h:r", f"old {n}") for n in range(5)]
        async with WebSocketTestClient(one, f"/chat/h:r?since={old[1]}") as a:
            assert [(await a.receive_json())["id"] for _ in range(3)] == old[2:]  # replayed
            assert await a.receive_text() == "joined"
            redis_server.restart()  # empty: the room's new counter starts at Redis's clock
            await eventually(lambda: one.hub.health()["ok"] and one.hub.health()["reconnects"] == 1, timeout=10)
            assert "gap" in await a.receive_json()
            await eventually(lambda: two.hub.health()["ok"], timeout=10)
            new = [await two.hub.broadcast("h:r", f"new {n}") for n in range(6)]
            assert new[0] > old[-1] and new == list(range(new[0], new[0] + 6))
            assert [await a.receive_json() for _ in range(6)] == [
                {"room": "h:r", "id": id, "data": f"new {n}"} for n, id in enumerate(new)]
    finally:
        await stop(one, two)


@pytest.mark.asyncio
@pytest.mark.parametrize("loss", ["flushall", "restart"])
async def test_a_resume_after_the_history_was_lost_gets_the_new_history_after_a_gap(redis_server: RedisServer,
                                                                                    loss: str) -> None:
    """A client saw 30 messages; Redis loses the room (FLUSHALL, or a restart without persistence) and 40
    new ones are published before it resumes with its since: it gets all 40, after a gap."""
    one, two = worker(redis_server.url), worker(redis_server.url)
    for api in (one, two):
        api.hub.keep_history("h:lost", size=100)
    redis = Redis.from_url(redis_server.url)
    try:
        seconds, micros = await redis.time()
        seen = [await one.hub.broadcast("h:lost", n) for n in range(30)]
        if loss == "flushall":
            await redis.flushall()  # nothing tells the processes: only the ids can
        else:
            redis_server.restart()
            await eventually(lambda: one.hub.health()["ok"] and two.hub.health()["ok"], timeout=10)
        new = []
        while len(new) < 40:
            try:
                new.append(await one.hub.broadcast("h:lost", f"new {len(new)}"))
            except PublishError:  # a pooled connection to the old server, noticed closed only now
                pass
        async with WebSocketTestClient(two, f"/chat/h:lost?since={seen[-1]}") as a:
            assert await until_joined(a) == [{"room": "h:lost", "gap": {"after": seen[-1], "before": new[0]}}] + [
                {"room": "h:lost", "id": id, "data": f"new {n}"} for n, id in enumerate(new)]
        async with WebSocketTestClient(two, "/chat/h:lost?since=0") as b:  # the whole new history, no gap
            assert [m["id"] for m in await until_joined(b)] == new
        # Both counters started from Redis's clock, in microseconds, the new one above the old one's ids.
        assert seen[0] > seconds * 1_000_000 + micros and seen == list(range(seen[0], seen[0] + 30))
        assert new[0] > seen[-1] and new == list(range(new[0], new[0] + 40))
    finally:
        await redis.aclose()
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_counter_from_before_history_starts_keeps_counting(redis_server: RedisServer) -> None:
    """A room's counter written before new counters started at the clock (no start key) counts on."""
    one = worker(redis_server.url)
    redis = Redis.from_url(redis_server.url)
    try:
        await redis.set("bolt:seq:h:old", 41)
        assert [await one.hub.broadcast("h:old", n) for n in range(2)] == [42, 43]
        async with WebSocketTestClient(one, "/chat/h:old?since=42") as a:
            assert await a.receive_json() == {"room": "h:old", "id": 43, "data": 1}
            assert await a.receive_text() == "joined"
        async with WebSocketTestClient(one, "/chat/h:old?since=0") as b:  # ids 1 to 41 are not kept
            assert await b.receive_json() == {"room": "h:old", "gap": {"after": 0, "before": 42}}
            assert [(await b.receive_json())["id"] for _ in range(2)] == [42, 43]
            assert await b.receive_text() == "joined"
    finally:
        await redis.aclose()
        await stop(one)


@pytest.mark.asyncio
async def test_a_new_counter_reaches_a_resumed_connection_at_once(redis_server: RedisServer) -> None:
    """A room's id counter expired (a day without messages, here deleted): its new ids start above the
    old ones, so they are delivered at once, not held back as the replay's overlap."""
    one, two = worker(redis_server.url), worker(redis_server.url)
    redis = Redis.from_url(redis_server.url)
    try:
        old = [await two.hub.broadcast("h:e", f"old {n}") for n in range(3)]
        async with WebSocketTestClient(one, "/chat/h:e?since=0") as a:
            assert [(await a.receive_json())["id"] for _ in range(3)] == old
            assert await a.receive_text() == "joined"
            assert await redis.delete("bolt:seq:h:e", "bolt:history:h:e", "bolt:start:h:e") == 3
            new = await two.hub.broadcast("h:e", "new")
            assert new > old[-1]
            assert await a.receive_json() == {"room": "h:e", "id": new, "data": "new"}
    finally:
        await redis.aclose()
        await stop(one, two)


@pytest.mark.asyncio
async def test_the_gap_after_an_outage_starts_after_the_last_replayed_id(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)
    try:
        ids = [await two.hub.broadcast("h:g", n) for n in range(3)]
        async with WebSocketTestClient(one, f"/chat/h:g?since={ids[0]}") as a:
            assert [(await a.receive_json())["id"] for _ in range(2)] == ids[1:]  # replayed, nothing live
            assert await a.receive_text() == "joined"
            redis_server.stop()
            await eventually(lambda: not one.hub.health()["ok"])
            redis_server.start()
            await eventually(lambda: one.hub.health()["ok"], timeout=10)
            assert await a.receive_json() == {"room": "h:g", "gap": {"after": ids[2], "before": None}}
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_join_with_since_that_cannot_read_the_history_raises_and_does_not_join(redis_server: RedisServer) -> None:
    import signal

    from bolt.realtime.backends.redis import RedisBackend

    api = BoltAPI(pubsub=RedisBackend(redis_server.url, timeout=0.3))
    api.hub.keep_history("h:", size=3)

    @api.websocket("/resume")
    async def resume(websocket: WebSocket) -> None:
        await websocket.accept()
        async for since in websocket.iter_text():
            try:
                await websocket.join("h:z", since=int(since))
            except BackendUnavailable:
                await websocket.send_text(f"try again ({len(api.hub.local_members('h:z'))} in the room)")
            else:
                await websocket.send_text("joined")

    try:
        kept = await api.hub.broadcast("h:z", "kept")
        async with WebSocketTestClient(api, "/resume") as ws:
            redis_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            try:
                await ws.send_text("0")
                assert await ws.receive_text(timeout=5) == "try again (0 in the room)"
            finally:
                redis_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            await ws.send_text("0")
            assert await ws.receive_json() == {"room": "h:z", "id": kept, "data": "kept"}
            assert await ws.receive_text() == "joined"
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_a_worker_starts_while_redis_is_down(redis_server: RedisServer) -> None:
    redis_server.stop()
    api = worker(redis_server.url)
    try:
        async with WebSocketTestClient(api, "/chat/lobby") as a:  # connections still work locally
            assert await a.receive_text() == "joined"
            assert not api.hub.health()["ok"]
            with pytest.raises(PublishError):
                await api.hub.broadcast("lobby", "x")
            redis_server.start()
            await eventually(lambda: api.hub.health()["ok"], timeout=10)
            await api.hub.broadcast("lobby", "now")
            assert await a.receive_text() == "now"
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_joins_during_an_outage_are_quick_and_presence_catches_up(redis_server: RedisServer) -> None:
    api = worker(redis_server.url, presence_ttl=0.9)
    try:
        async with WebSocketTestClient(api, "/chat/lobby") as a:
            assert await a.receive_text() == "joined"
            redis_server.stop()
            await eventually(lambda: not api.hub.health()["ok"])
            started = time.monotonic()
            async with WebSocketTestClient(api, "/chat/lobby") as b:
                assert await b.receive_text() == "joined"
                assert time.monotonic() - started < 0.5  # no waiting on the absent Redis
                redis_server.start()  # empty: the heartbeat must put both members back
                await eventually(lambda: _count_is(api, "lobby", 2), timeout=5)
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_joins_and_leaves_during_an_outage_are_announced_when_redis_is_back(redis_server: RedisServer) -> None:
    one, two = worker(redis_server.url), worker(redis_server.url)  # default TTL: no heartbeat during the test
    try:
        async with one.hub.on_presence("lobby") as events:
            a = WebSocketTestClient(two, "/chat/lobby")
            await a.__aenter__()
            assert await a.receive_text() == "joined"
            assert (await asyncio.wait_for(events.get(), 2)).type == "join"
            a_id = two.hub.local_members("lobby")[0]

            backend = two.hub.backend
            catch_up, gate = backend._catch_up, asyncio.Event()

            async def gated(restarted: bool) -> None:  # two announces only once one hears again
                await gate.wait()
                await catch_up(restarted)

            backend._catch_up = gated  # type: ignore[method-assign]
            redis_server.stop()  # it comes back empty: a's entry is gone, and no sweep can announce a's leave
            await eventually(lambda: not one.hub.health()["ok"] and not two.hub.health()["ok"])
            async with WebSocketTestClient(two, "/chat/lobby") as b:
                assert await b.receive_text() == "joined"
                b_id = [m for m in two.hub.local_members("lobby") if m != a_id][0]
                async with WebSocketTestClient(two, "/chat/lobby") as c:  # joins and leaves: never announced
                    assert await c.receive_text() == "joined"
                await a.__aexit__(None, None, None)
                redis_server.start()
                await eventually(lambda: one.hub.health()["ok"] and two.hub.health()["ok"], timeout=10)
                gate.set()
                seen = {(event.type, event.member.connection_id)
                        for event in [await asyncio.wait_for(events.get(), 5) for _ in range(2)]}
                assert seen == {("join", b_id), ("leave", a_id)}
                await eventually(lambda: _count_is(one, "lobby", 1), timeout=2)  # not after a heartbeat
                assert [m.connection_id for m in await one.hub.members("lobby")] == [b_id]
                with pytest.raises(TimeoutError):  # c's join and leave cancelled out; nothing was sent twice
                    await asyncio.wait_for(events.get(), 0.3)
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_clean_stop_writes_the_leaves_redis_missed(redis_server: RedisServer) -> None:
    """A leave whose write failed (no free connection in time) still happens when the process stops cleanly."""
    from bolt.realtime.backends.redis import RedisBackend

    one, two = worker(RedisBackend(redis_server.url, timeout=0.3, max_connections=1)), worker(redis_server.url)
    try:
        async with two.hub.on_presence("lobby") as events:
            a = WebSocketTestClient(one, "/chat/lobby")
            await a.__aenter__()
            assert await a.receive_text() == "joined"
            assert (await asyncio.wait_for(events.get(), 2)).type == "join"
            pool = one.hub.backend._redis.connection_pool  # type: ignore[union-attr]
            busy = await pool.get_connection()  # the only command connection
            try:
                await a.__aexit__(None, None, None)  # its leave finds no connection: kept to be written later
            finally:
                await pool.release(busy)
            assert await two.hub.count("lobby") == 1
            await one.hub.stop()  # long before the heartbeat or the TTL
            assert await two.hub.count("lobby") == 0
            assert (await asyncio.wait_for(events.get(), 2)).type == "leave"
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_redis_that_refuses_info_still_serves() -> None:
    server = RedisServer(redis_binary_or_skip(), "--rename-command", "INFO", "")  # as some managed Redis do
    server.start()
    api = worker(server.url)
    try:
        async with WebSocketTestClient(api, "/chat/lobby") as a:
            assert await a.receive_text() == "joined"
            assert api.hub.health()["ok"]
            await api.hub.broadcast("lobby", "hello")
            assert await a.receive_text() == "hello"
            assert await api.hub.count("lobby") == 1
    finally:
        await stop(api)
        server.stop()


@pytest.mark.asyncio
async def test_a_redis_that_stops_answering_is_detected(redis_server: RedisServer) -> None:
    import signal

    api = worker(redis_server.url)  # default settings: a ping unanswered for health_interval (1 s)
    try:
        async with WebSocketTestClient(api, "/chat/h:feed") as a:
            assert await a.receive_text() == "joined"
            redis_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]  # hung, socket open
            try:
                # Well under the 3 x 2 s of silence the subscriber used to wait for (benchmarks/redis_hang.py).
                await eventually(lambda: not api.hub.health()["ok"], timeout=4)
                assert "no answer" in api.hub.health()["last_error"]
            finally:
                redis_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            await eventually(lambda: api.hub.health()["ok"], timeout=5)
            assert await a.receive_json() == {"room": "h:feed", "gap": {"after": None, "before": None}}
    finally:
        await stop(api)


@pytest.mark.asyncio
async def test_a_publish_that_timed_out_on_a_hung_redis_can_still_be_delivered(redis_server: RedisServer) -> None:
    """PublishError means "not confirmed": Redis runs the command once it resumes (docs/realtime.md)."""
    import signal

    from bolt.realtime.backends.redis import RedisBackend

    one, two = worker(RedisBackend(redis_server.url, timeout=0.3)), worker(redis_server.url)
    try:
        async with WebSocketTestClient(two, "/chat/lobby") as b:
            assert await b.receive_text() == "joined"
            await one.hub.broadcast("lobby", "before")  # the command connection is open
            assert await b.receive_text() == "before"
            redis_server.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            try:
                with pytest.raises(PublishError):
                    await one.hub.broadcast("lobby", "sent while Redis was stopped")
            finally:
                redis_server.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            assert await b.receive_text(timeout=5) == "sent while Redis was stopped"
    finally:
        await stop(one, two)


@pytest.mark.asyncio
async def test_a_hub_listener_survives_an_outage(redis_server: RedisServer) -> None:
    """bolt's control rooms (hub.listen) get no gap message, and their subscription comes back."""
    one, two = worker(redis_server.url), worker(redis_server.url)
    heard: list[str] = []
    try:
        stop_listening = await one.hub.listen("~b:control", heard.append)
        await two.hub.start()
        redis_server.restart()
        await eventually(lambda: one.hub.health()["ok"] and one.hub.health()["reconnects"] == 1, timeout=10)

        async def delivered() -> bool:
            await two.hub.broadcast("~b:control", "after the outage")
            return "after the outage" in heard

        await eventually(delivered, timeout=10)
        await stop_listening()
    finally:
        await stop(one, two)
