"""bolt.metrics: the Prometheus endpoint, what it counts, its log lines, and multiprocess mode with 2 workers."""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bolt import BoltAPI, WebSocket, WebSocketClose
from bolt.auth import APIKeyAuthentication
from bolt.testing import HandshakeRejected, WebSocketTestClient
from demo_apps import room_api
from ports import free_port, stop_process, wait_for_port
from uvicorn_server import serve

from .test_outbox import StalledClient

KEY = {"x-api-key": "k1"}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a text exposition."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


def scrape(base: str, path: str = "/metrics", headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(f"http://{base}{path}", headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/plain")
        return response.read().decode()


def chat_api(**options: Any) -> BoltAPI:
    api = BoltAPI(metrics="/ops/metrics", auth=[APIKeyAuthentication({"k1": "alice"})], **options)

    @api.websocket("/ws/{room}")
    async def room(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.join(room)
        async for text in websocket.iter_text():
            await websocket.send_text("ok")
            await api.hub.broadcast(room, text)

    return api


@pytest.mark.asyncio
async def test_handshakes_the_handler_refuses_are_counted_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    api = BoltAPI(metrics="/ops/metrics")

    @api.websocket("/ws/closes/{n}")
    async def closes(websocket: WebSocket, n: int) -> None:
        await websocket.close()

    @api.websocket("/ws/returns/{n}")
    async def returns(websocket: WebSocket, n: int) -> None:
        return None

    @api.websocket("/ws/raises/{n}")
    async def raises(websocket: WebSocket, n: int) -> None:
        raise WebSocketClose(1008, "no")

    caplog.set_level(logging.INFO, logger="bolt.security")
    async with serve(api) as base:
        before = await asyncio.to_thread(scrape, base, "/ops/metrics")
        for path in ("closes", "returns", "raises"):
            with pytest.raises(InvalidStatus) as refused:
                async with connect(f"ws://{base}/ws/{path}/7"):
                    pass
            assert refused.value.response.status_code == 403
        text = await asyncio.to_thread(scrape, base, "/ops/metrics")
    delta = {key: v - samples(before).get(key, 0.0) for key, v in samples(text).items()}
    assert delta[("bolt_websocket_handshakes_total", (("outcome", "denied"), ("reason", "forbidden")))] == 3
    denials = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused websocket")]
    # Logged with the route, as the pipeline's refusals are: the log groups by route, not by URL.
    assert [line.split(" from ")[0] for line in denials] == [f"refused websocket /ws/{path}/{{n}}"
                                                              for path in ("closes", "returns", "raises")]
    assert all(": 403 " in line for line in denials)


@pytest.mark.asyncio
async def test_the_endpoint_counts_handshakes_messages_and_broadcasts(caplog: pytest.LogCaptureFixture) -> None:
    api = chat_api()
    caplog.set_level(logging.INFO, logger="bolt.security")
    async with serve(api) as base:
        before = await asyncio.to_thread(scrape, base, "/ops/metrics", KEY)
        async with connect(f"ws://{base}/ws/lobby", additional_headers=KEY) as a, \
                connect(f"ws://{base}/ws/lobby", additional_headers=KEY) as b:
            await a.send("hello")
            assert await a.recv() == "ok"
            assert await a.recv() == await b.recv() == "hello"
            text = await asyncio.to_thread(scrape, base, "/ops/metrics", KEY)
            assert value(text, "bolt_websocket_connections") == 2
            # "lobby", and the room of the user both connections authenticate as
            assert value(text, "bolt_rooms") == 2 and value(text, "bolt_room_members") == 4
            assert value(text, "bolt_largest_room_members") == 2
        for query, headers in (("", {"x-api-key": "wrong-secret-token"}), ("?token=wrong-secret-token", {"x-api-key": "x"})):
            with pytest.raises(InvalidStatus):
                async with connect(f"ws://{base}/ws/lobby{query}", additional_headers=headers):
                    pass
        text = await asyncio.to_thread(scrape, base, "/ops/metrics", KEY)
    delta = {key: v - samples(before).get(key, 0.0) for key, v in samples(text).items()}
    assert delta[("bolt_websocket_handshakes_total", (("outcome", "accepted"), ("reason", "")))] == 2
    assert delta[("bolt_websocket_handshakes_total", (("outcome", "denied"), ("reason", "auth")))] == 2
    assert delta[("bolt_websocket_messages_received_total", ())] == 1
    assert delta[("bolt_websocket_received_bytes_total", ())] == 5
    assert delta[("bolt_websocket_messages_sent_total", ())] == 3  # "ok", and "hello" to both
    assert delta[("bolt_websocket_sent_bytes_total", ())] == 2 + 2 * 5
    assert delta[("bolt_broadcast_recipients_total", (("origin", "local"),))] == 2
    assert delta[("bolt_broadcast_seconds_count", (("origin", "local"),))] == 1
    assert value(text, "bolt_backend_up", backend="memory") == 1
    assert value(text, "bolt_websocket_connections") == 0
    denials = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused websocket")]
    assert len(denials) == 2
    assert all(line.startswith("refused websocket /ws/{room} from 127.0.0.1:") and ": 401 " in line
               for line in denials)
    assert not any("wrong-secret-token" in r.getMessage() for r in caplog.records)  # never a credential


@pytest.mark.asyncio
async def test_drops_and_evictions_are_counted_by_policy(caplog: pytest.LogCaptureFixture) -> None:
    from bolt.realtime import hub as hub_module

    caplog.set_level(logging.WARNING, logger="bolt.realtime")
    for policy in ("drop_oldest", "close"):
        api = room_api(BoltAPI(metrics="/metrics", send_queue=2, slow_consumer=policy))

        metrics = api.hub.metrics
        dropped = metrics.instruments.dropped.labels(policy)._value.get()  # type: ignore[union-attr]
        evicted = metrics.instruments.evictions.labels(policy, "queue_full")._value.get()  # type: ignore[union-attr]
        stalled = StalledClient(api, "/ws")
        await stalled.start()
        for n in range(5):
            await api.hub.broadcast("room", str(n))
        assert metrics.instruments.dropped.labels(policy)._value.get() - dropped >= 1  # type: ignore[union-attr]
        if policy == "close":
            hub_module._EVICT_TIMEOUT, saved = 0.05, hub_module._EVICT_TIMEOUT
            try:
                await asyncio.wait_for(stalled.task, 2)  # type: ignore[arg-type]
            finally:
                hub_module._EVICT_TIMEOUT = saved
            assert metrics.instruments.evictions.labels(policy, "queue_full")._value.get() - evicted == 1  # type: ignore[union-attr]
        else:
            stalled.task.cancel()  # type: ignore[union-attr]
            await asyncio.gather(stalled.task, return_exceptions=True)  # type: ignore[arg-type]
        await api.hub.stop()
    lines = [r.getMessage() for r in caplog.records if "slow consumer evicted" in r.getMessage()]
    assert len(lines) == 1 and "policy=close reason='send queue full' path=/ws client=stalled:1" in lines[0]


@pytest.mark.asyncio
async def test_an_api_without_metrics_has_no_endpoint_and_still_logs_denials(caplog: pytest.LogCaptureFixture) -> None:
    api = BoltAPI()
    caplog.set_level(logging.INFO)
    assert api.hub.metrics is None
    with pytest.raises(HandshakeRejected):
        async with WebSocketTestClient(api, "/nowhere?token=secret"):
            pass
    # One line, without the query string where tokens travel.
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("bolt.security", "refused websocket /nowhere from testclient:50000: 404 Not Found (no WebSocket route)")]


@pytest.mark.slow
def test_two_uvicorn_workers_report_together_in_multiprocess_mode(tmp_path: Any) -> None:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT, PROMETHEUS_MULTIPROC_DIR=str(tmp_path))
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.realtime.apps.metrics_app:api", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "2", "--log-level", "warning"], cwd=ROOT, env=env)
    try:
        wait_for_port(port, timeout=30, process=process)
        base = f"127.0.0.1:{port}"

        async def clients() -> None:
            sockets = [await connect(f"ws://{base}/ws/lobby") for _ in range(6)]
            for ws in sockets:
                assert await asyncio.wait_for(ws.recv(), 5) == "joined"
            # Each worker samples its own gauges every second; any worker's endpoint adds them up. The
            # parent binds the port, so the second worker may still be starting when the first answers.
            deadline = time.monotonic() + 20
            while True:
                text = await asyncio.to_thread(scrape, base)
                pids = {dict(labels).get("pid") for (name, labels) in samples(text) if name == "bolt_backend_up"}
                if value(text, "bolt_websocket_connections") == 6 and len(pids) == 2:  # a series per live worker
                    break
                assert time.monotonic() < deadline, text
                await asyncio.sleep(0.2)
            assert value(text, "bolt_websocket_handshakes_total", outcome="accepted", reason="") == 6
            for ws in sockets:
                await ws.close()

        asyncio.run(clients())
        os.kill(process.pid, 0)
    finally:
        stop_process(process, 15)
