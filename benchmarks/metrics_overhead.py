"""What metrics cost the fan-out, without sockets: hub.broadcast to N in-process connections, metrics off vs on.

    python benchmarks/metrics_overhead.py [--connections 1000] [--broadcasts 2000] [--rounds 5]

Each connection is an ASGI client whose send completes at once, so the figure is bolt's own work per
broadcast (outboxes, the shared message, and with metrics its counters and histograms), in CPU
time of this process. The two variants alternate, `--rounds` times each, and the best round of each
is reported.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bolt import BoltAPI, WebSocket  # noqa: E402


def make(metrics: bool) -> BoltAPI:
    api = BoltAPI(metrics="/metrics" if metrics else None, send_queue=100_000)

    @api.websocket("/ws")
    async def member(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join("room")
        await websocket.receive_text()

    return api


async def connect(api: BoltAPI, n: int) -> list[asyncio.Queue]:
    queues = []
    for i in range(n):
        queue: asyncio.Queue = asyncio.Queue()
        queue.put_nowait({"type": "websocket.connect"})
        accepted = asyncio.Event()

        async def send(message: dict, accepted: asyncio.Event = accepted) -> None:
            if message["type"] == "websocket.accept":
                accepted.set()

        scope = {"type": "websocket", "path": "/ws", "query_string": b"", "headers": [], "subprotocols": [],
                 "client": ("127.0.0.1", i), "server": ("test", 80)}
        asyncio.get_running_loop().create_task(api(scope, queue.get, send))
        await accepted.wait()
        queues.append(queue)
    await asyncio.sleep(0.01)
    return queues


async def run(connections: int, broadcasts: int, rounds: int) -> dict[str, float]:
    apis = {"off": make(False), "on": make(True)}
    for api in apis.values():
        await connect(api, connections)
    best = {name: 0.0 for name in apis}
    for _ in range(rounds):
        for name, api in apis.items():
            started = time.process_time()  # CPU time: other processes on the machine count less
            for _ in range(broadcasts):
                await api.hub.broadcast("room", "x" * 100)
            best[name] = max(best[name], broadcasts * connections / (time.process_time() - started))
    for api in apis.values():
        await api.hub.stop()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--broadcasts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    best = asyncio.run(run(args.connections, args.broadcasts, args.rounds))
    print(f"metrics off: {best['off']:,.0f} deliveries/s   metrics on: {best['on']:,.0f} deliveries/s   "
          f"({best['on'] / best['off'] - 1:+.1%})")


if __name__ == "__main__":
    main()
