"""Graceful drain: a worker told to stop (SIGTERM) closes its WebSockets with 1012 in waves over
BOLT_DRAIN seconds (bolt run --drain), and its clients resume on the other worker behind the same port, losing nothing."""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ports import free_port, stop_process, wait_for_port
from redis_servers import RedisServer

from .test_endpoint_workers import Client
from .test_workers import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.asyncio]
DRAIN = 2.0


def get(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return json.loads(response.read())


async def open_client(port: int) -> Client:
    ws = await connect(f"ws://127.0.0.1:{port}/rt")
    return Client(ws, json.loads(await asyncio.wait_for(ws.recv(), 5)))


def node_of(client: Client) -> str:
    return client.hello["connection"].split(".")[0]


@pytest.mark.time_limit(120)
async def test_a_stopping_worker_hands_its_clients_over_in_waves(redis_server: RedisServer) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT, BOLT_TEST_REDIS_URL=redis_server.url)
    env.pop("BOLT_DRAIN", None)
    server = subprocess.Popen(  # bolt run: bolt's protocol, and --drain handed to both workers
        [sys.executable, "-m", "bolt.cli", "run", "tests.realtime.apps.chat:api", "--port", str(port),
         "--workers", "2", "--drain", str(DRAIN), "--log-level", "warning"],
        cwd=ROOT, env=env)
    clients: list[Client] = []
    try:
        wait_for_port(port, timeout=30, process=server)
        pids: dict[str, int] = {}
        deadline = asyncio.get_running_loop().time() + 30
        # The two workers share the port, and the second may still be starting: ask until both answered.
        while len(pids) < 2 and asyncio.get_running_loop().time() < deadline:
            answer = await asyncio.to_thread(get, port, "/node")
            pids[answer["node"]] = answer["pid"]
            await asyncio.sleep(0.05)
        assert len(pids) == 2
        for _ in range(80):  # enough clients on each worker for the waves to show
            clients.append(await open_client(port))
            if min(sum(node_of(c) == node for c in clients) for node in pids) >= 6:
                break
        victim = max(pids, key=lambda node: sum(node_of(c) == node for c in clients))
        leaving = [c for c in clients if node_of(c) == victim]
        staying = next(c for c in clients if node_of(c) != victim)
        for client in clients:
            assert (await client.request("join", room="h:drain"))[0]["ok"]
        reply, _ = await staying.request("publish", room="h:drain", data=1)
        last_id = reply["id"]
        for client in leaving:
            assert (await client.until(lambda m: "data" in m))["id"] == last_id

        loop = asyncio.get_running_loop()

        async def closed(client: Client) -> tuple[float, int]:
            try:
                while True:
                    await client.ws.recv()
            except ConnectionClosed as exc:
                return loop.time(), exc.rcvd.code if exc.rcvd else 1006

        watchers = [asyncio.create_task(closed(c)) for c in leaving]
        os.kill(pids[victim], signal.SIGTERM)
        published = []
        while not all(w.done() for w in watchers):  # the room goes on while the worker drains
            reply, _ = await staying.request("publish", room="h:drain", data=len(published) + 2)
            published.append(reply["id"])
            await asyncio.sleep(0.1)
        ends = [w.result() for w in watchers]
        assert {code for _, code in ends} == {1012}
        # One wave every DRAIN/10 s: the first closes at once, the sixth no earlier than 1 s after.
        times = sorted(t for t, _ in ends)
        assert times[-1] - times[0] >= 5 * DRAIN / 10 - 0.05

        # Each client comes back through the same port, to a worker that is not the stopping one,
        # and resumes after the last id it saw: everything published during the drain, once.
        for _ in leaving:
            again = await open_client(port)
            clients.append(again)
            assert node_of(again) != victim
            reply, replay = await again.request("join", room="h:drain", since=last_id)
            assert reply["ok"]
            assert [m["id"] for m in replay if "data" in m] == published
    finally:
        for client in clients:
            await client.ws.close()
        stop_process(server, 30)
