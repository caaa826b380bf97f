"""Handshakes per second on a route with JWT auth + a guard against the same route with no security.

Two measurements, side by side in one run:

* in-process: the ASGI app driven directly (connect, accept, disconnect), no server, no sockets:
  the pipeline's cost against the rest of bolt's handshake path;
* through uvicorn: a real server in a subprocess on 127.0.0.1, with concurrent clients doing full
  TCP + HTTP upgrade + close handshakes: the cost a deployment sees.

Every route gets the same request (the same Authorization header), so only the checks differ. The
secured route is measured twice: with JWTAuthentication's verified-token cache (a client reconnecting
with its token) and without it (pyjwt verifies every handshake). Rounds alternate between the routes
and the best round of each counts, which damps noise from the machine. Through uvicorn the server
process's CPU time per handshake is reported too (Linux): on a shared machine it is steadier than
the rate, which also depends on the client process getting CPU.

    python benchmarks/handshake_bench.py [--seconds 2] [--rounds 3] [--concurrency 16] [--ws websockets-sansio]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import time

import jwt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _load import cpu_seconds, free_port, stop_server, wait_for_port, write_json  # noqa: E402
from bolt import BoltAPI, WebSocket, WebSocketDisconnect  # noqa: E402
from bolt.auth import IsAuthenticated, JWTAuthentication  # noqa: E402

SECRET = "handshake-benchmark-secret-" + "x" * 40
TOKEN = jwt.encode({"sub": "42", "exp": int(time.time()) + 86400}, SECRET, algorithm="HS256")
ROUTES = {
    "no security": "/ws/open",
    "JWT + guard": "/ws/secure",  # one client token, remembered after its first verification
    "JWT + guard, no cache": "/ws/secure-cold",  # pyjwt verifies the token on every handshake
}


def build_app() -> BoltAPI:
    api = BoltAPI()

    async def hold(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            await websocket.receive()
        except WebSocketDisconnect:
            pass

    api.websocket("/ws/open")(hold)

    @api.websocket("/ws/secure", auth=[JWTAuthentication(secret=SECRET)], guards=[IsAuthenticated()])
    async def secure(websocket: WebSocket) -> None:
        await hold(websocket)

    @api.websocket("/ws/secure-cold", auth=[JWTAuthentication(secret=SECRET, cache_size=0)],
                   guards=[IsAuthenticated()])
    async def secure_cold(websocket: WebSocket) -> None:
        await hold(websocket)

    return api


app = build_app()


# -- in-process ------------------------------------------------------------------------------------

def _scope(path: str) -> dict:
    return {
        "type": "websocket", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "ws",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "root_path": "", "path": path,
        "raw_path": path.encode(), "query_string": b"", "subprotocols": [],
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {TOKEN}".encode())],
        "extensions": {"websocket.http.response": {}},
    }


async def in_process_rate(path: str, seconds: float) -> float:
    """Handshakes per second driving the ASGI app directly."""
    template = _scope(path)
    done = 0
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(200):
            inbox = [{"type": "websocket.disconnect", "code": 1000}, {"type": "websocket.connect"}]
            sent: list[dict] = []

            async def receive() -> dict:
                return inbox.pop()

            async def send(message: dict) -> None:
                sent.append(message)

            await app(dict(template, headers=list(template["headers"])), receive, send)
            if sent[0]["type"] != "websocket.accept":
                raise RuntimeError(f"handshake refused: {sent}")
        done += 200
    return done / (time.perf_counter() - start)


# -- through uvicorn -------------------------------------------------------------------------------

CLOSE_FRAME = bytes([0x88, 0x82, 1, 2, 3, 4]) + bytes(b ^ m for b, m in zip(b"\x03\xe8", b"\x01\x02"))


async def one_handshake(port: int, path: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                      f"Authorization: Bearer {TOKEN}\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head[:40]!r}")
        writer.write(CLOSE_FRAME)
        await reader.read(64)  # the server's close frame
    finally:
        writer.close()


async def server_rate(port: int, path: str, seconds: float, concurrency: int, pid: int) -> tuple[float, float]:
    """Handshakes per second with `concurrency` clients, each doing complete handshakes in a loop, and
    the server's CPU microseconds per handshake (steadier than the rate on a busy machine)."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            await asyncio.wait_for(one_handshake(port, path), 10)
            counts[i] += 1

    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu_after = cpu_seconds(pid)
    total = sum(counts)
    cpu = 1e6 * (cpu_after - cpu_before) / total
    return total / elapsed, cpu


def serve(port: int, ws: str) -> None:
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=port, ws=ws, log_level="warning", access_log=False, lifespan="off")


# -- report ----------------------------------------------------------------------------------------

async def main(args: argparse.Namespace) -> None:
    results: dict[str, dict[str, float]] = {name: {} for name in ROUTES}
    for _ in range(args.rounds):
        for name, path in ROUTES.items():
            rate = await in_process_rate(path, args.seconds)
            results[name]["in-process"] = max(results[name].get("in-process", 0.0), rate)

    port = free_port()
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port), "--ws", args.ws])
    try:
        wait_for_port("127.0.0.1", port, process)
        for _ in range(args.rounds):
            for name, path in ROUTES.items():
                rate, cpu = await server_rate(port, path, args.seconds, args.concurrency, process.pid)
                results[name]["uvicorn"] = max(results[name].get("uvicorn", 0.0), rate)
                results[name]["cpu"] = min(results[name].get("cpu", float("inf")), cpu)
    finally:
        stop_server(process)

    print(f"\nbest of {args.rounds} rounds of {args.seconds:g} s "
          f"(uvicorn ws={args.ws}, {args.concurrency} concurrent clients)\n")
    print(f"{'':<30}{'in-process':>14}{'uvicorn':>14}{'uvicorn server CPU':>22}")
    print(f"{'route':<30}{'handshakes/s':>14}{'handshakes/s':>14}{'us/handshake':>22}")
    for name in ROUTES:
        row = results[name]
        cpu = f"{row['cpu']:,.0f}" if "cpu" in row else "n/a"
        print(f"{name:<30}{row['in-process']:>14,.0f}{row['uvicorn']:>14,.0f}{cpu:>22}")
    write_json(args.json, [{"route": name, **row} for name, row in results.items()])
    plain = results["no security"]
    print("\npipeline overhead (fewer handshakes/s, or more server CPU per handshake):")
    for name in list(ROUTES)[1:]:
        row = results[name]
        cpu = f"{100 * (row['cpu'] / plain['cpu'] - 1):.1f}%" if "cpu" in row and "cpu" in plain else "n/a"
        print(f"{name:<30}{100 * (1 - row['in-process'] / plain['in-process']):>13.1f}%"
              f"{100 * (1 - row['uvicorn'] / plain['uvicorn']):>13.1f}%{cpu:>22}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn's WebSocket implementation")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.ws)
    else:
        asyncio.run(main(args))
