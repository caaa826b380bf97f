"""publish()/apublish() in a process that serves: through the running hub, from threads and coroutines."""
from __future__ import annotations

import asyncio

import pytest

from bolt import BoltAPI
from bolt.realtime import PublishError, apublish, publish
from bolt.testing import WebSocketTestClient
from demo_apps import member_api

pytestmark = pytest.mark.asyncio


def room_api() -> BoltAPI:
    api = member_api()
    api.hub.keep_history("kept")
    return api


async def test_publish_from_a_thread_and_apublish_reach_the_served_hub() -> None:
    api = room_api()
    async with WebSocketTestClient(api, "/ws/kept") as ws:
        assert await ws.receive_text() == "joined"
        first = await asyncio.to_thread(publish, "kept", {"from": "thread"})
        assert await ws.receive_json() == {"room": "kept", "id": first, "data": {"from": "thread"}}
        assert await apublish("kept", {"from": "coroutine"}) == first + 1
        assert await ws.receive_json() == {"room": "kept", "id": first + 1, "data": {"from": "coroutine"}}


async def test_publish_refuses_to_block_an_event_loop() -> None:
    with pytest.raises(PublishError, match="apublish"):
        publish("news", "x")


async def test_several_serving_apis_need_api() -> None:
    first, second = room_api(), room_api()
    async with WebSocketTestClient(first, "/ws/news") as one, WebSocketTestClient(second, "/ws/news") as two:
        await one.receive_text()
        await two.receive_text()
        with pytest.raises(PublishError, match="api="):
            await apublish("news", "to whom?")
        assert await asyncio.to_thread(publish, "news", "to the second", api=second) is None
        assert await two.receive_text() == "to the second"
