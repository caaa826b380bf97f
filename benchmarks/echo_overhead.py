"""What bolt's WebSocket layer costs over a bare ASGI app, served by the same uvicorn.

    python benchmarks/echo_overhead.py [--rounds 5] [--duration 3] [--ws websockets-sansio]

Apps echo 64-byte text messages: a bare ASGI app, a bolt `@api.websocket` route and the same
route in Starlette (and in FastAPI with `--apps bare,bolt,starlette,fastapi`). Each runs in turn under `uvicorn --ws websockets-sansio` pinned to CPU 0, while
this process (the load: 10 connections, one message in flight each) is pinned to CPU 1.

Printed, side by side from one run:
- in-process cost: each app fed by a stub instead of a server, which isolates the framework's own
  cost per message;
- through uvicorn: messages/s, as the best round and the median of rounds that interleave the
  apps (so drift in the machine hits all alike), with ratios to the bare app;
- the server's CPU time per message (from /proc), best round, and bare/app as a ratio comparable to
  the throughput ratio. It measures the overhead directly even when the load is latency-bound or
  the machine is shared, where throughput figures say more about the neighbours than about bolt.
"""
import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _load import Result, free_port, measure, stop_server, wait_for_port, write_json  # noqa: E402

# -- the apps (imported by the uvicorn subprocess as echo_overhead:<name>) ---------------------


async def bare(scope, receive, send):
    """The floor: the least an ASGI app can do to echo."""
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return
        await send({"type": "websocket.send", "text": message["text"]})


def _bolt_app():
    from bolt import BoltAPI, WebSocket

    api = BoltAPI()

    @api.websocket("/ws/echo")
    async def echo(ws: WebSocket):
        await ws.accept()
        async for m in ws.iter_text():
            await ws.send_text(m)

    return api


def _starlette_app():
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    async def echo(ws):
        await ws.accept()
        try:
            async for m in ws.iter_text():
                await ws.send_text(m)
        except WebSocketDisconnect:
            pass

    return Starlette(routes=[WebSocketRoute("/ws/echo", echo)])


def _fastapi_app():
    from fastapi import FastAPI, WebSocket, WebSocketDisconnect

    app = FastAPI()

    @app.websocket("/ws/echo")
    async def echo(ws: WebSocket):
        await ws.accept()
        try:
            async for m in ws.iter_text():
                await ws.send_text(m)
        except WebSocketDisconnect:
            pass

    return app


BUILDERS = {"bare": lambda: bare, "bolt": _bolt_app, "starlette": _starlette_app, "fastapi": _fastapi_app}


def __getattr__(name: str):
    # Built on first use, so that importing one app does not import the others' frameworks.
    if name.endswith("_app") and name[:-4] in BUILDERS:
        return BUILDERS[name[:-4]]()
    raise AttributeError(name)


APPS = {"bare": "echo_overhead:bare", **{name: f"echo_overhead:{name}_app" for name in BUILDERS if name != "bare"}}

# -- the run ---------------------------------------------------------------------------------------


async def in_process_cost(app, messages: int) -> float:
    """Microseconds per echoed message with the server taken away: the app alone, fed by a stub."""
    inbox = [{"type": "websocket.connect"}]
    inbox += [{"type": "websocket.receive", "text": "x" * 64}] * messages
    inbox.append({"type": "websocket.disconnect", "code": 1000})
    feed = iter(inbox)

    async def receive():
        return next(feed)

    async def send(message):
        pass

    scope = {"type": "websocket", "asgi": {"version": "3.0"}, "path": "/ws/echo", "raw_path": b"/ws/echo",
             "root_path": "", "query_string": b"", "headers": [], "subprotocols": [], "scheme": "ws",
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "state": {},
             "extensions": {"websocket.http.response": {}}}
    started = time.perf_counter()
    await app(scope, receive, send)
    return (time.perf_counter() - started) / messages * 1e6


async def framework_overhead(names: list[str], rounds: int) -> None:
    apps = {name: BUILDERS[name]() for name in names}
    costs = {name: min([await in_process_cost(apps[name], 100_000) for _ in range(rounds)]) for name in names}
    print("in-process, no server (best of %d x 100,000 messages): the app's own cost per message" % rounds)
    for name in names:
        extra = f"  (+{costs[name] - costs['bare']:.2f} us over bare)" if "bare" in costs and name != "bare" else ""
        print(f"  {name:<10} {costs[name]:6.2f} us{extra}")
    print()


def start_server(target: str, port: int, ws: str, cpu: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", target, "--app-dir", HERE, "--host", "127.0.0.1",
               "--port", str(port), "--ws", ws, "--lifespan", "off", "--log-level", "warning",
               "--no-access-log", "--ws-ping-interval", "0", "--ws-per-message-deflate", "false"]
    return subprocess.Popen(["taskset", "-c", str(cpu)] + command)


async def one(name: str, args: argparse.Namespace) -> Result:
    port = free_port()
    server = start_server(APPS[name], port, args.ws, args.server_cpu)
    try:
        wait_for_port("127.0.0.1", port, server)
        return await measure("127.0.0.1", port, "/ws/echo", payload=b"x" * args.size,
                             connections=args.connections, depth=args.depth,
                             warmup=args.warmup, duration=args.duration, server_pid=server.pid)
    finally:
        stop_server(server)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per app and round")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--depth", type=int, default=1, help="messages in flight per connection")
    parser.add_argument("--size", type=int, default=64, help="message size in bytes")
    parser.add_argument("--ws", default="websockets-sansio", help="uvicorn --ws implementation")
    parser.add_argument("--apps", default="bare,bolt,starlette", help="any of: " + ", ".join(APPS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--nice", type=int, default=-10, help="scheduling priority to run at, when permitted")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.client_cpu})
    try:  # a higher priority (inherited by the servers) keeps other work on a shared machine out of the way
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    except OSError:
        pass

    names = args.apps.split(",")
    await framework_overhead(names, args.rounds)
    rates: dict[str, list[float]] = {name: [] for name in names}
    costs: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            result = await one(name, args)
            rates[name].append(result.rate)
            costs[name].append(result.server_us)
            print(f"round {round_ + 1}: {name:<10} {result.rate:>10,.0f} msg/s {result.server_us:6.1f} us/msg "
                  f"(server CPU {result.server_load:4.0%}, load client CPU {result.client_load:4.0%})", flush=True)

    print(f"\n{args.size}-byte text echo, {args.connections} connections x {args.depth} in flight, "
          f"uvicorn --ws {args.ws} on CPU {args.server_cpu}, load on CPU {args.client_cpu}, "
          f"{args.rounds} rounds x {args.duration:g} s")
    print("best = the app's best round (least disturbed by anything else on the machine)")
    print(f"{'app':<10} {'best msg/s':>11} {'vs bare':>8} {'median msg/s':>13} {'vs bare':>8} "
          f"{'best us CPU/msg':>16} {'bare/app':>9}")
    best = {name: max(rates[name]) for name in names}
    median = {name: statistics.median(rates[name]) for name in names}
    cost = {name: min(costs[name]) for name in names}
    for name in names:
        def ratio(table: dict[str, float], inverse: bool = False) -> str:
            if "bare" not in table or not table[name]:
                return "-"
            return f"{(table['bare'] / table[name] if inverse else table[name] / table['bare']):.3f}x"

        print(f"{name:<10} {best[name]:>11,.0f} {ratio(best):>8} {median[name]:>13,.0f} {ratio(median):>8} "
              f"{cost[name]:>16.1f} {ratio(cost, inverse=True):>9}")
    write_json(args.json, [{"app": name, "best_rate": best[name], "median_rate": median[name],
                            "server_us": cost[name]} for name in names])


if __name__ == "__main__":
    asyncio.run(main())
