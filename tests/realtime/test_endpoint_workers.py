"""The room protocol across two uvicorn workers sharing a real Redis, on every WebSocket implementation
bolt supports: publish on one worker, receive on the other, presence across both, resume on either."""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from redis_servers import RedisServer

from .test_workers import Worker

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.asyncio]
SERVERS = ["websockets-sansio", "wsproto", "bolt.protocol.uvicorn:WebSocketProtocol"]


class Client:
    def __init__(self, ws: ClientConnection, hello: dict[str, Any]) -> None:
        self.ws = ws
        self.hello = hello
        self.refs = 0

    @classmethod
    async def open(cls, worker: Worker) -> Client:
        ws = await connect(worker.url("/rt"))
        return cls(ws, json.loads(await asyncio.wait_for(ws.recv(), 5)))

    async def next(self) -> Any:
        return json.loads(await asyncio.wait_for(self.ws.recv(), 5))

    async def request(self, kind: str, **fields: Any) -> tuple[dict[str, Any], list[Any]]:
        self.refs += 1
        await self.ws.send(json.dumps({"type": kind, "ref": self.refs, **fields}))
        before = []
        while True:
            message = await self.next()
            if message.get("type") == "reply" and message.get("ref") == self.refs:
                return message, before
            before.append(message)

    async def until(self, predicate: Any) -> Any:
        while True:
            message = await self.next()
            if predicate(message):
                return message


@pytest.mark.parametrize("ws", SERVERS)
async def test_room_protocol_across_workers(redis_server: RedisServer, ws: str) -> None:
    one, two = Worker(redis_server.url, ws), Worker(redis_server.url, ws)
    try:
        alice, bob = await Client.open(one), await Client.open(two)
        reply, _ = await alice.request("join", room="h:lobby", presence=True)
        assert reply["ok"]
        reply, _ = await bob.request("join", room="h:lobby")
        bob_member = {"connection": bob.hello["connection"], "user": None}
        change = await alice.until(lambda m: m.get("type") == "presence" and bob_member in m.get("join", []))
        assert change["leave"] == []

        reply, own = await bob.request("publish", room="h:lobby", data={"text": "hi"})
        first = reply["id"]
        assert reply == {"type": "reply", "ref": 2, "ok": True, "id": first}
        assert own == [{"room": "h:lobby", "id": first, "data": {"text": "hi"}}]
        assert await alice.until(lambda m: "data" in m) == {"room": "h:lobby", "id": first, "data": {"text": "hi"}}

        await alice.ws.close()
        await bob.request("publish", room="h:lobby", data=2)
        await bob.request("publish", room="h:lobby", data=3)
        # Alice comes back on the other worker and resumes after the last id she saw.
        alice = await Client.open(two)
        reply, replay = await alice.request("join", room="h:lobby", since=first)
        assert reply["ok"]
        assert replay == [{"room": "h:lobby", "id": first + 1, "data": 2}, {"room": "h:lobby", "id": first + 2, "data": 3}]
        await bob.ws.close()
        await alice.ws.close()
    finally:
        one.stop()
        two.stop()


async def test_a_publish_while_redis_is_down_is_answered_unavailable(redis_server: RedisServer) -> None:
    worker = Worker(redis_server.url, "bolt.protocol.uvicorn:WebSocketProtocol")
    try:
        alice = await Client.open(worker)
        assert (await alice.request("join", room="h:outage"))[0]["ok"]
        redis_server.stop()
        reply, before = await alice.request("publish", room="h:outage", data="lost")
        assert reply["ok"] is False and reply["error"]["code"] == "unavailable", reply
        assert [m for m in before if "data" in m] == []  # nobody got it, the sender neither
        redis_server.start()
        for _ in range(100):  # the worker reconnects by itself
            reply, _ = await alice.request("publish", room="h:outage", data="kept")
            if reply["ok"]:
                break
            await asyncio.sleep(0.1)
        assert reply["ok"], reply
        await alice.ws.close()
    finally:
        worker.stop()
