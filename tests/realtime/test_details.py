"""Smaller public behaviours of the hub: exclusion forms, history prefixes, presence overflow, gap callbacks."""
from __future__ import annotations

import asyncio

import pytest

from bolt import BoltAPI, WebSocket
from bolt.realtime import Member, PresenceEvent
from bolt.realtime.history import HistoryPolicy
from bolt.testing import WebSocketTestClient
from demo_apps import room_api


@pytest.mark.asyncio
async def test_exclude_takes_websockets_ids_or_a_mix() -> None:
    sockets: list[WebSocket] = []
    api = room_api(members=sockets)
    async with WebSocketTestClient(api, "/ws") as a, WebSocketTestClient(api, "/ws") as b, \
            WebSocketTestClient(api, "/ws") as c:
        await asyncio.sleep(0.01)
        ids = [api.hub.connection_id(ws) for ws in sockets]
        await api.hub.broadcast("room", "not a", exclude=ids[0])
        await api.hub.broadcast("room", "only c", exclude=[sockets[0], ids[1]])
        assert [await b.receive_text(), await c.receive_text(), await c.receive_text()] == \
            ["not a", "not a", "only c"]
        with pytest.raises(TimeoutError):
            await a.receive_text(timeout=0.05)
        with pytest.raises(TimeoutError):
            await b.receive_text(timeout=0.05)


def test_the_longest_history_prefix_wins() -> None:
    api = BoltAPI()
    api.hub.keep_history("", size=10)
    api.hub.keep_history("chat:", size=50, ttl=60)
    assert api.hub.history_policy("chat:lobby").size == 50  # type: ignore[union-attr]
    assert api.hub.history_policy("news").size == 10  # type: ignore[union-attr]
    assert api.hub.history_policy(api.hub.user_room("alice")) is None  # private rooms never keep history
    with pytest.raises(ValueError):
        HistoryPolicy(size=0)


@pytest.mark.asyncio
async def test_a_presence_reader_that_falls_behind_loses_the_oldest_events() -> None:
    api = BoltAPI()
    async with api.hub.on_presence("room", maxsize=2) as events:
        for n in range(5):
            api.hub._emit(PresenceEvent("join", "room", Member(f"c{n}")))
        assert events.dropped == 3
        assert [(await events.get()).member.connection_id for _ in range(2)] == ["c3", "c4"]
    assert [e async for e in events] == []  # closed: iteration ends


@pytest.mark.asyncio
async def test_gap_callbacks_may_be_async() -> None:
    api = room_api()
    seen: list[tuple[str, int | None]] = []

    @api.hub.on_gap
    async def record(room: str, last: int | None) -> None:
        seen.append((room, last))

    async with WebSocketTestClient(api, "/ws"):
        await asyncio.sleep(0.01)
        api.hub.signal_gap("room")
        await asyncio.sleep(0.01)
    assert seen == [("room", None)]


@pytest.mark.asyncio
async def test_an_async_gap_callback_that_fails_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    api = room_api()

    @api.hub.on_gap
    async def broken(room: str, last: int | None) -> None:
        raise LookupError("no such view")

    api.hub.signal_gap("room")
    await asyncio.sleep(0.01)
    assert "gap callback failed" in caplog.text and "LookupError: no such view" in caplog.text


def test_history_given_again_for_a_prefix_replaces_its_policy() -> None:
    api = BoltAPI()
    api.hub.keep_history("feed:", size=100)
    api.hub.keep_history("feed:", size=2, ttl=10)
    api.hub.keep_history("feed:x", size=7)
    assert repr(api.hub.history_policy("feed:a")) == "HistoryPolicy(size=2, ttl=10)"
    assert repr(api.hub.history_policy("feed:xy")) == "HistoryPolicy(size=7, ttl=300.0)"


def test_members_compare_by_connection_id() -> None:
    assert Member("n.1", "alice") == Member("n.1", None)
    assert len({Member("n.1"), Member("n.1"), Member("n.2")}) == 2
    assert PresenceEvent("leave", "r", Member("n.1", 7)).to_dict() == \
        {"type": "leave", "room": "r", "connection_id": "n.1", "user_id": 7}


@pytest.mark.asyncio
async def test_the_memory_backend_bounds_how_many_rooms_keep_history() -> None:
    from bolt.realtime import MemoryBackend

    api = BoltAPI(pubsub=MemoryBackend(max_histories=2))
    api.hub.keep_history("")
    ids = {}
    for room in ("a", "b", "a", "c"):  # c pushes out b, the room published to least recently
        ids[room] = await api.hub.broadcast(room, room)
    replay = await api.hub.backend.replay("a", 0, HistoryPolicy())  # type: ignore[union-attr]
    assert [m.data for m in replay.messages] == ["a", "a"]
    replay = await api.hub.backend.replay("b", ids["b"], HistoryPolicy())  # type: ignore[union-attr]
    assert replay.messages == [] and replay.last == 0  # b's history is gone, and a resume makes none
    assert len(api.hub.backend._histories) == 2  # type: ignore[union-attr]
    # What b's new history gives reaches a client resuming with the old id, after a gap.
    new = await api.hub.broadcast("b", "again")
    assert new > ids["b"]  # a new history, counting on from the clock
    replay = await api.hub.backend.replay("b", ids["b"], HistoryPolicy())  # type: ignore[union-attr]
    assert [(m.seq, m.data) for m in replay.messages] == [(new, "again")] and replay.first == new
