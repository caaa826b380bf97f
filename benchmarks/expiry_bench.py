"""What closing sockets at their credentials' expiry costs, and how late it happens.

memory:  traced Python memory (tracemalloc) of N idle in-process WebSockets authenticated by JWT,
         three ways, in one run: tokens without `exp` (nothing to track), bolt's one heap and one
         timer per event loop, and a `loop.call_at` timer per socket (the design bolt avoids).
latency: N sockets through uvicorn (a subprocess, bolt's protocol) whose tokens expire at the same
         second; how long after `exp` each client sees its 4401 close.

    python benchmarks/expiry_bench.py                 # both, 2,000 sockets
    python benchmarks/expiry_bench.py memory -n 5000
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _load import free_port, stop_server, wait_for_port  # noqa: E402
from bolt import BoltAPI, WebSocket  # noqa: E402
from bolt.auth import JWTAuthentication  # noqa: E402
from bolt.security import expiry  # noqa: E402

SECRET = "expiry-bench-hmac-secret-" + "x" * 40


def make_api() -> BoltAPI:
    api = BoltAPI(auth=[JWTAuthentication(secret=SECRET, require=())])

    @api.websocket("/idle")
    async def idle(websocket: WebSocket):
        await websocket.accept()
        async for _ in websocket.iter_text():
            pass

    return api


app = make_api()  # the latency run's server: uvicorn benchmarks.expiry_bench:app


def token(sub: int, exp: int | None) -> str:
    claims: dict[str, Any] = {"sub": str(sub)}
    if exp is not None:
        claims["exp"] = exp
    return jwt.encode(claims, SECRET, algorithm="HS256")


def timer_per_socket(websocket: Any, expires_at: float) -> None:
    """The alternative design, for comparison: one asyncio timer handle per socket."""
    loop = asyncio.get_running_loop()
    handle = loop.call_at(loop.time() + expires_at - time.time(),
                          lambda: loop.create_task(websocket.end(expiry.CREDENTIALS_EXPIRED,
                                                                 expiry.CREDENTIALS_EXPIRED_REASON)))
    websocket.scope["bench.timer"] = handle


async def traced_kib(n: int, mode: str) -> float:
    from bolt.testing import WebSocketTestClient

    api = make_api()
    exp = None if mode == "no exp" else int(time.time()) + 3600
    tokens = [token(i, exp) for i in range(n)]
    clients = [WebSocketTestClient(api, "/idle", headers={"Authorization": f"Bearer {t}"}) for t in tokens]
    await clients[0].__aenter__()  # warm up: imports, caches, the loop's first timer
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for client in clients[1:]:
        await client.__aenter__()
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    for client in clients:
        await client.__aexit__(None, None, None)
    return used / 1024


def memory(n: int) -> None:
    results = {}
    for mode in ("no exp", "bolt heap", "timer per socket"):
        original = expiry.watch
        if mode == "timer per socket":
            expiry.watch = timer_per_socket  # type: ignore[assignment]  # what WebSocket.accept() calls
        try:
            results[mode] = asyncio.run(traced_kib(n, mode))
        finally:
            expiry.watch = original  # type: ignore[assignment]
    base = results["no exp"]
    print(f"memory of {n} idle JWT sockets (tracemalloc, in-process)")
    print(f"{'mode':<20}{'traced':>12}{'per socket':>14}{'over no exp':>14}")
    for mode, kib in results.items():
        per_socket, extra = kib * 1024 / (n - 1), (kib - base) * 1024 / (n - 1)
        print(f"{mode:<20}{kib:>9.0f} KiB{per_socket:>10.0f} B{extra:>12.0f} B")


async def latency(n: int, lead: int) -> None:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.expiry_bench:app",
                               "--port", str(port), "--ws", "bolt.protocol:WebSocketProtocol",
                               "--log-level", "warning", "--lifespan", "off"], cwd=ROOT)
    try:
        wait_for_port("127.0.0.1", port, server)
        exp = int(time.time()) + lead
        late: list[float] = []
        codes: list[int] = []
        sem = asyncio.Semaphore(200)

        async def one(i: int) -> None:
            async with sem:
                client = await connect(f"ws://127.0.0.1:{port}/idle", open_timeout=30,
                                       additional_headers={"Authorization": f"Bearer {token(i, exp)}"})
            try:
                await asyncio.wait_for(client.wait_closed(), lead + 30)
            except ConnectionClosed:
                pass
            late.append(time.time() - exp)
            codes.append(client.close_code or 0)

        await asyncio.gather(*(one(i) for i in range(n)))
        late.sort()
        print(f"{n} sockets whose tokens expire at the same second (uvicorn, bolt's protocol)")
        print(f"close codes: {sorted(set(codes))}; seconds after exp: median {statistics.median(late):.3f}, "
              f"p99 {late[int(len(late) * 0.99) - 1]:.3f}, max {late[-1]:.3f}, min {late[0]:.3f}")
    finally:
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", nargs="?", choices=("memory", "latency", "both"), default="both")
    parser.add_argument("-n", "--sockets", type=int, default=2000)
    parser.add_argument("--lead", type=int, default=15, help="seconds from the start until the tokens expire")
    args = parser.parse_args()
    if args.what in ("memory", "both"):
        memory(args.sockets)
    if args.what in ("latency", "both"):
        asyncio.run(latency(args.sockets, args.lead))


if __name__ == "__main__":
    main()
