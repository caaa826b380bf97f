"""Two uvicorn worker processes sharing one real Redis, with real WebSocket clients on each.

Marked slow: each test starts its own redis-server and two `uvicorn tests.realtime.apps.chat:api`
processes on free 127.0.0.1 ports.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from ports import free_port, stop_process, wait_for_port
from redis_servers import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.redis]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PRESENCE_TTL = 1.0


class Worker:
    """One uvicorn process serving tests.realtime.apps.chat."""

    def __init__(self, redis_url: str, ws: str = "websockets-sansio", **env: str) -> None:
        self.port = free_port()
        environment = dict(os.environ, PYTHONPATH=ROOT, BOLT_TEST_REDIS_URL=redis_url,
                           BOLT_TEST_PRESENCE_TTL=str(PRESENCE_TTL), **env)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "tests.realtime.apps.chat:api", "--host", "127.0.0.1",
             "--port", str(self.port), "--ws", ws, "--log-level", "warning"],
            cwd=ROOT, env=environment)
        wait_for_port(self.port, timeout=20, process=self.process)

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    async def get(self, path: str) -> Any:
        def fetch() -> Any:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as response:
                return json.loads(response.read())

        return await asyncio.to_thread(fetch)

    def stop(self) -> None:
        stop_process(self.process, 10)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def workers(redis_server: RedisServer) -> Iterator[tuple[Worker, Worker]]:
    started: list[Worker] = []
    try:
        started.append(Worker(redis_server.url))
        started.append(Worker(redis_server.url))
        yield started[0], started[1]
    finally:
        for worker in started:
            worker.stop()


async def recv_json(ws: ClientConnection, timeout: float = 5.0) -> Any:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def eventually(check: Any, timeout: float) -> float:
    """Await `check()` until true; returns the seconds it took."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


@pytest.mark.asyncio
@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto", "bolt.protocol.uvicorn:WebSocketProtocol"])
async def test_broadcast_reaches_clients_on_both_workers(redis_server: RedisServer, ws: str) -> None:
    one, two = Worker(redis_server.url, ws), Worker(redis_server.url, ws)
    try:
        await _broadcast_both_ways(one, two)
    finally:
        one.stop()
        two.stop()


async def _broadcast_both_ways(one: Worker, two: Worker) -> None:
    async with connect(one.url("/chat/lobby")) as a, connect(two.url("/chat/lobby")) as b:
        assert (await recv_json(a))["joined"] == (await recv_json(b))["joined"] == "lobby"
        await a.send("from one")
        assert await asyncio.wait_for(a.recv(), 5) == "from one"
        assert await asyncio.wait_for(b.recv(), 5) == "from one"
        await b.send("from two")
        assert await asyncio.wait_for(a.recv(), 5) == await asyncio.wait_for(b.recv(), 5) == "from two"
        presence = await one.get("/presence/lobby")
        assert presence["count"] == 2


@pytest.mark.asyncio
async def test_redis_restarted_mid_stream_recovers_and_signals_the_gap(
        redis_server: RedisServer, workers: tuple[Worker, Worker]) -> None:
    one, two = workers
    async with connect(one.url("/chat/h:feed")) as a, connect(two.url("/chat/h:feed")) as b:
        await recv_json(a), await recv_json(b)
        for n in range(3):
            await one.get(f"/broadcast/h:feed?text=m{n}")
        for ws in (a, b):
            received = [await recv_json(ws) for _ in range(3)]
            assert [m["data"] for m in received] == ["m0", "m1", "m2"]
            last = received[-1]["id"]

        redis_server.restart()
        for ws in (a, b):  # each worker noticed, reconnected and told its clients
            assert await recv_json(ws, timeout=15) == {"room": "h:feed", "gap": {"after": last, "before": None}}
        for worker in (one, two):
            health = await worker.get("/health")
            assert health["ok"] and health["reconnects"] == 1
        await one.get("/broadcast/h:feed?text=after")
        for ws in (a, b):
            message = await recv_json(ws)
            # Redis kept nothing: a new counter, started from Redis's clock, above the old ids
            assert message["data"] == "after" and message["id"] > last


@pytest.mark.asyncio
async def test_killed_worker_members_leave_presence_within_the_ttl(workers: tuple[Worker, Worker]) -> None:
    one, two = workers
    async with connect(one.url("/chat/lobby")) as a:
        await recv_json(a)
        b = await connect(two.url("/chat/lobby"))
        await recv_json(b)
        assert (await one.get("/presence/lobby"))["count"] == 2
        two.kill()  # SIGKILL: no shutdown, no goodbye

        async def one_left() -> bool:
            return (await one.get("/presence/lobby"))["count"] == 1

        took = await eventually(one_left, timeout=PRESENCE_TTL * 3)
        assert took <= PRESENCE_TTL + 0.5
        await b.close()  # (the server side is gone)


def stalled_client(port: int, path: str) -> socket.socket:
    """A raw client that completes the handshake and then never reads again, with a tiny receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    assert sock.recv(1024).startswith(b"HTTP/1.1 101")
    return sock


@pytest.mark.asyncio
@pytest.mark.time_limit(120)
@pytest.mark.parametrize("ws", ["websockets-sansio", "bolt.protocol.uvicorn:WebSocketProtocol"])
async def test_a_client_that_stops_reading_is_bounded_and_others_keep_receiving(
        redis_server: RedisServer, ws: str) -> None:
    worker = Worker(redis_server.url, ws, BOLT_TEST_SEND_QUEUE="64", BOLT_TEST_SEND_TIMEOUT="2")
    try:
        stalled = stalled_client(worker.port, "/chat/firehose")
        async with connect(worker.url("/chat/firehose"), max_queue=None) as healthy:
            await recv_json(healthy)
            before = (await worker.get("/rss"))["rss_kib"]
            received = 0

            async def read_all() -> None:
                nonlocal received
                while (await healthy.recv()) != "end":
                    received += 1

            reader = asyncio.create_task(read_all())
            # 4,000 messages of 8 KiB: 32 MiB that would pile up for the stalled client if nothing bounded it.
            await worker.get("/flood/firehose?count=4000&size=8192")
            await asyncio.wait_for(reader, 30)
            # The healthy client kept receiving most of the flood. Its own queue is bounded too, so on a
            # CPU-starved machine it may drop a few hundred: the bound leaves room for that.
            assert received >= 2000
            health = await worker.get("/health")
            after = (await worker.get("/rss"))["rss_kib"]
            assert health["queued"] <= 64 + 64  # both outboxes bounded
            # The stalled client's share was dropped rather than queued (how much of it the kernel's
            # buffers took first depends on the machine's speed), or it was already let go mid-flood.
            assert health["dropped"] > 0 or health["connections"] == 1, health
            assert after - before < 16 * 1024, f"server RSS grew by {after - before} KiB"

            async def evicted() -> bool:  # blocked past the send timeout: the stalled client is let go
                return (await worker.get("/health"))["connections"] == 1

            await eventually(evicted, timeout=15)
        stalled.close()
    finally:
        worker.stop()
