"""Django integration timings: publish-to-delivery from another process through Redis, and logout-to-close.

  publish   a separate OS process (no server in it) calls `bolt.realtime.publish(room, {"t": ...})`
            every 5 ms; a client of a uvicorn worker of tests/djangoproject receives each message
            and records now - t (same machine, same clock). Reported as p50/p99 in milliseconds.
  logout    a client holds a session-authenticated socket on worker A; the test logs that session
            out through worker B's Django view; the time from sending the logout request to the
            socket's close frame (4001) arriving. Memory backend (one worker) and Redis (two workers).

    python benchmarks/django_bench.py [--messages 2000] [--logouts 50]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from _load import free_port, stop_server, wait_for_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = os.path.join(ROOT, "tests", "djangoproject")

PUBLISHER = """
import sys, time, django
django.setup()
from bolt.realtime import publish
publish("bench", {"t": time.time()})  # connects the publisher before the timed messages
for _ in range(int(sys.argv[1])):
    publish("bench", {"t": time.time()})
    time.sleep(0.005)
publish("bench", {"done": True})
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start_worker(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bolt.cli", "run", "site_asgi:application", "--port", str(port),
                                "--log-level", "warning"], cwd=PROJECT, env=env)
    wait_for_port("127.0.0.1", port, process)
    return process, port


def post(port: int, path: str, data: Any = None, session: str | None = None) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     data=json.dumps(data).encode() if data is not None else None)
    if session:
        request.add_header("Cookie", f"sessionid={session}")
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


async def publish_latency(env: dict[str, str], port: int, messages: int) -> list[float]:
    latencies = []
    async with connect(f"ws://127.0.0.1:{port}/ws/room/bench") as ws:
        await ws.recv()  # joined
        publisher = await asyncio.create_subprocess_exec(sys.executable, "-c", PUBLISHER, str(messages),
                                                         cwd=PROJECT, env=env)
        first = True
        while True:
            data = json.loads(await ws.recv())
            now = time.time()
            if data.get("done"):
                break
            if not first:
                latencies.append((now - data["t"]) * 1000)
            first = False
        await publisher.wait()
    return latencies


async def logout_to_close(login_port: int, logout_port: int, rounds: int) -> list[float]:
    post(login_port, "/make-user", {"username": f"bench{login_port}", "password": "pw"})
    times = []
    for _ in range(rounds):
        session = post(login_port, "/login", {"username": f"bench{login_port}", "password": "pw"})["session"]
        async with connect(f"ws://127.0.0.1:{login_port}/ws/me", additional_headers={"Cookie": f"sessionid={session}"},
                           origin=f"http://127.0.0.1:{login_port}") as ws:
            await ws.recv()
            started = time.perf_counter()
            logout = asyncio.create_task(asyncio.to_thread(post, logout_port, "/logout", None, session))
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as closed:
                assert closed.rcvd is not None and closed.rcvd.code == 4001, closed
                times.append((time.perf_counter() - started) * 1000)
            await logout
    return times


def report(name: str, values: list[float]) -> None:
    print(f"{name:<34} n={len(values):<5} p50 {statistics.median(values):7.2f} ms   "
          f"p99 {percentile(values, 0.99):7.2f} ms   max {max(values):7.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--logouts", type=int, default=50)
    args = parser.parse_args()
    redis_binary = shutil.which("redis-server")
    if redis_binary is None:
        sys.exit("redis-server is needed")
    with tempfile.TemporaryDirectory() as tmp:
        redis_port = free_port()
        redis = subprocess.Popen([redis_binary, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                                  "--appendonly", "no"], stdout=subprocess.DEVNULL)
        wait_for_port("127.0.0.1", redis_port, redis)
        base = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, PROJECT]), DJANGO_SETTINGS_MODULE="site_settings",
                    BOLT_TEST_DB=os.path.join(tmp, "db.sqlite3"))
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=PROJECT, env=base, check=True)
        redis_env = dict(base, BOLT_TEST_PUBSUB=f"redis://127.0.0.1:{redis_port}/0")
        processes = []
        try:
            memory, memory_port = start_worker(base)
            first, first_port = start_worker(redis_env)
            second, second_port = start_worker(redis_env)
            processes += [memory, first, second]
            report("publish -> delivery, redis", asyncio.run(publish_latency(redis_env, first_port, args.messages)))
            report("logout -> close, memory, 1 worker", asyncio.run(logout_to_close(memory_port, memory_port,
                                                                                    args.logouts)))
            report("logout -> close, redis, 2 workers", asyncio.run(logout_to_close(first_port, second_port,
                                                                                    args.logouts)))
        finally:
            for process in processes:
                stop_server(process)
            redis.kill()
            redis.wait()


if __name__ == "__main__":
    main()
