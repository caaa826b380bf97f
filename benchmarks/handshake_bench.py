"""WebSocket handshakes per second on a route with JWT auth + a guard, beside the same route with none.

Two measurements, side by side in one run:

* in-process: bolt's ASGI app driven directly (connect, accept, disconnect), no server, no sockets:
  the pipeline's cost against the rest of bolt's handshake path;
* through a server: each server in a subprocess on 127.0.0.1, pinned to one core (--server-cpu),
  and concurrent clients in this process, pinned to another (--client-cpu), doing complete
  handshakes (TCP connect, HTTP upgrade, a close each way) in a loop: the cost a deployment sees.

    bolt          this app under `bolt run`'s stack: uvicorn, bolt.protocol, bolt's HTTP protocol
    sansio        this app under stock uvicorn (--ws websockets-sansio)
    django-bolt   the same routes in django-bolt's own Rust server (benchmarks/django_bolt_server.py)
    bolt-bare     a bare ASGI app (accept, then wait for the close) under bolt's stack: the stack's own
                  cost, without BoltAPI
    floor         the same exchange written by hand as an asyncio protocol on uvloop, no ASGI: what
                  the kernel and the event loop take, below any server written in Python

Every route gets the same request (the same Authorization header), so only the checks differ. bolt's
secured route is measured twice: with JWTAuthentication's verified-token cache (a client reconnecting
with its token) and without it (pyjwt verifies every handshake). Rounds alternate between the
servers and routes, and the best round of each counts, which damps noise from the machine. The
server process's CPU time per handshake is reported too (Linux): on a shared machine it is steadier
than the rate, which also depends on the client process getting CPU.

The clients run on uvloop unless told otherwise: clients on asyncio's loop keep their own core
busy, and a server then never has to wake them, which changes its cost per handshake (see
docs/benchmarks.md, "Saturated servers").

    python benchmarks/handshake_bench.py [--servers bolt,sansio,django-bolt] [--seconds 2] [--rounds 3]
                                         [--concurrency 8] [--client-loop uvloop|asyncio]
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import time
from typing import Any

import jwt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _load import (  # noqa: E402
    CLIENT_LOOPS,
    CLOSE_FRAME,
    JWT_SECRET,
    cpu_seconds,
    free_port,
    run_client,
    stop_server,
    wait_for_port,
    write_json,
)
from bolt import BoltAPI, WebSocket, WebSocketDisconnect  # noqa: E402
from bolt.auth import IsAuthenticated, JWTAuthentication  # noqa: E402
from bolt.protocol.handshake import accept_key  # noqa: E402

TOKEN = jwt.encode({"sub": "42", "exp": int(time.time()) + 86400}, JWT_SECRET, algorithm="HS256")
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

    @api.websocket("/ws/secure", auth=[JWTAuthentication(secret=JWT_SECRET)], guards=[IsAuthenticated()])
    async def secure(websocket: WebSocket) -> None:
        await hold(websocket)

    @api.websocket("/ws/secure-cold", auth=[JWTAuthentication(secret=JWT_SECRET, cache_size=0)],
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


# -- through a server ------------------------------------------------------------------------------

SERVERS = ("bolt", "sansio", "django-bolt", "bolt-bare", "floor")
DJANGO_BOLT_ROUTES = ("no security", "JWT + guard")  # its JWT backend has no cache to turn off
BARE = ("bolt-bare", "floor")  # they answer every path alike: measured on the first route only


class Handshake(asyncio.Protocol):
    """One complete handshake: the upgrade request, the 101, a close frame each way, then a TCP close."""

    def __init__(self, request: bytes, done: asyncio.Future[None]) -> None:
        self.request = request
        self.done = done
        self.head = b""
        self.upgraded = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.upgraded:  # the server's close frame
            self.transport.close()
            return
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            return
        if not self.head.startswith(b"HTTP/1.1 101"):
            if not self.done.done():
                self.done.set_exception(RuntimeError(f"handshake refused: {self.head[:40]!r}"))
            self.transport.abort()
            return
        self.upgraded = True
        self.transport.write(CLOSE_FRAME)
        if len(self.head) > end + 4:  # the server's close frame came with the 101
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.done.done():
            return
        if self.upgraded:
            self.done.set_result(None)
        else:
            self.done.set_exception(exc or ConnectionError("closed before the 101"))


async def one_handshake(port: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Authorization: Bearer {TOKEN}\r\n\r\n").encode()
    done: asyncio.Future[None] = loop.create_future()
    await loop.create_connection(lambda: Handshake(request, done), "127.0.0.1", port)
    await done


async def server_rate(port: int, path: str, seconds: float, concurrency: int, pid: int) -> tuple[float, float, float]:
    """Handshakes per second with `concurrency` clients, each doing complete handshakes in a loop; the
    server's CPU microseconds per handshake (steadier than the rate on a busy machine); and the
    clients' CPU use (1.0: a full core, the clients then limit the rate)."""
    deadline = time.perf_counter() + seconds
    counts = [0] * concurrency

    async def worker(i: int) -> None:
        while time.perf_counter() < deadline:
            await asyncio.wait_for(one_handshake(port, path), 10)
            counts[i] += 1

    cpu_before, own_before = cpu_seconds(pid), cpu_seconds(os.getpid())
    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - start
    cpu, own = cpu_seconds(pid) - cpu_before, cpu_seconds(os.getpid()) - own_before
    total = sum(counts)
    return total / elapsed, 1e6 * cpu / total, own / elapsed


def start_server(name: str, cpu: int, loop: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if name == "django-bolt":
        command = [sys.executable, os.path.join(HERE, "django_bolt_server.py"), str(port)]
    else:
        command = [sys.executable, __file__, "--serve", str(port), "--stack", name, "--loop", loop]
    process = subprocess.Popen(["taskset", "-c", str(cpu), *command])
    wait_for_port("127.0.0.1", port, process)
    return process, port


async def bare_app(scope: dict, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await receive()


class Floor(asyncio.Protocol):
    """The server side of one handshake, by hand: read the request, write the 101, answer the
    client's close frame with one and close. Nothing is checked; it is a measure, not a server."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.upgraded = False

    def data_received(self, data: bytes) -> None:
        if self.upgraded:
            self.transport.write(b"\x88\x02\x03\xe8")  # close, 1000
            self.transport.close()
            return
        key = next(line.partition(b":")[2].strip() for line in data.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                             b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n")
        self.upgraded = True


def serve(port: int, server: str, loop: str) -> None:
    """This app under uvicorn: with bolt's protocols as `bolt run` picks them, or stock uvicorn's;
    or the bare app under bolt's, or the floor protocol on uvloop."""
    if server == "floor":
        import uvloop

        async def run_floor() -> None:
            listening = await asyncio.get_running_loop().create_server(Floor, "127.0.0.1", port)
            await listening.serve_forever()

        uvloop.run(run_floor())
        return
    import uvicorn

    from bolt.cli import http_protocol, websocket_protocol

    stack = server in ("bolt", "bolt-bare")
    ws, http = (websocket_protocol(), http_protocol()) if stack else ("websockets-sansio", "auto")
    uvicorn.run(bare_app if server == "bolt-bare" else app, host="127.0.0.1", port=port, ws=ws, http=http, loop=loop,
                log_level="warning", access_log=False, lifespan="off")


# -- report ----------------------------------------------------------------------------------------

def routes_of(server: str) -> list[str]:
    if server in BARE:
        return list(ROUTES)[:1]
    return list(DJANGO_BOLT_ROUTES if server == "django-bolt" else ROUTES)


async def main(args: argparse.Namespace) -> None:
    servers = args.servers.split(",")
    os.sched_setaffinity(0, {args.client_cpu})
    in_process: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, path in ROUTES.items():
            in_process[name] = max(in_process.get(name, 0.0), await in_process_rate(path, args.seconds))

    results: dict[tuple[str, str], dict[str, float]] = {(s, r): {} for s in servers for r in routes_of(s)}
    running = {}
    try:
        for server in servers:
            running[server] = start_server(server, args.server_cpu, args.loop)
        for _ in range(args.rounds):
            for (server, route), row in results.items():
                process, port = running[server]
                rate, cpu, client = await server_rate(port, ROUTES[route], args.seconds, args.concurrency,
                                                      process.pid)
                if rate > row.get("rate", 0.0):
                    row.update(rate=rate, client_load=client, server_load=rate * cpu / 1e6)
                row["cpu"] = min(row.get("cpu", float("inf")), cpu)
    finally:
        for process, _ in running.values():
            stop_server(process)

    print(f"\nbest of {args.rounds} rounds of {args.seconds:g} s, {args.concurrency} concurrent clients on CPU "
          f"{args.client_cpu} ({args.client_loop}), servers on CPU {args.server_cpu}\n")
    print(f"bolt in-process (no server): {', '.join(f'{r} {v:,.0f}/s' for r, v in in_process.items())}\n")
    print(f"{'server':<13}{'route':<24}{'handshakes/s':>14}{'server CPU':>14}{'capacity':>12}{'server busy':>13}"
          f"{'client busy':>13}")
    for (server, route), row in results.items():
        print(f"{server:<13}{route:<24}{row['rate']:>14,.0f}{row['cpu']:>11,.0f} us{1e6 / row['cpu']:>12,.0f}"
              f"{row['server_load']:>13.0%}{row['client_load']:>13.0%}")
    print("\ncapacity: handshakes per second of one fully used core (1 / server CPU per handshake); it is the")
    print("server's own only while the server is busy near 100%: a server that waits for its clients spends")
    print("more or less per handshake than a saturated one (see docs/benchmarks.md)")
    if "django-bolt" in servers:
        print("\nvs django-bolt (same route; rate and capacity):")
        for server in servers:
            if server != "django-bolt":
                for route in routes_of(server):
                    if route not in DJANGO_BOLT_ROUTES:
                        continue
                    mine, theirs = results[server, route], results["django-bolt", route]
                    print(f"{server:<13}{route:<24}{mine['rate'] / theirs['rate']:>13.2f}x"
                          f"{theirs['cpu'] / mine['cpu']:>13.2f}x")
    write_json(args.json, [{"server": "bolt in-process", "route": r, "rate": v} for r, v in in_process.items()]
               + [{"server": s, "route": r, **row} for (s, r), row in results.items()])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="bolt,sansio", help=f"subset of {','.join(SERVERS)}")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--loop", default="auto",
                        help="uvicorn's event loop: auto (uvloop, installed with bolt, as bolt run picks it), asyncio, uvloop")
    parser.add_argument("--stack", help=argparse.SUPPRESS)
    parser.add_argument("--client-loop", default="uvloop", choices=CLIENT_LOOPS,
                        help="the clients' event loop: uvloop keeps every server busy (their capacity); on "
                             "asyncio the clients, not the servers, set the pace")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.stack, args.loop)
    else:
        run_client(main(args), args.client_loop)
