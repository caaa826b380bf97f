"""How long a worker takes to notice a hung Redis: SIGSTOP the redis-server, time until health() says not ok.

    python benchmarks/redis_hang.py [--runs 5]

Each run starts a private redis-server (no persistence) on a free 127.0.0.1 port, starts a hub with the
Redis backend and its default settings, joins one room, stops the server with SIGSTOP and polls
`hub.health()` every 10 ms. It then resumes the server (SIGCONT) and times the recovery too. Bounded:
a run gives up after 20 s.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from _load import free_port, wait_for_port  # noqa: E402
from bolt.realtime import Hub  # noqa: E402

LIMIT = 20.0


async def _until(check, limit: float = LIMIT) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            return float("nan")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def one_run() -> tuple[float, float]:
    port = free_port()
    server = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process=server)
        hub = Hub(f"redis://127.0.0.1:{port}/0")
        await hub.start()
        unsubscribe = await hub.listen("hang", lambda text: None)
        await asyncio.sleep(0.5)
        server.send_signal(signal.SIGSTOP)
        detected = await _until(lambda: not hub.health()["ok"])
        server.send_signal(signal.SIGCONT)
        recovered = await _until(lambda: hub.health()["ok"])
        await unsubscribe()
        await hub.stop()
        return detected, recovered
    finally:
        server.send_signal(signal.SIGCONT)
        server.kill()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    results = [asyncio.run(one_run()) for _ in range(runs)]
    detected = [r[0] for r in results]
    recovered = [r[1] for r in results]
    print("run  detected (s)  recovered after SIGCONT (s)")
    for n, (d, r) in enumerate(results, 1):
        print(f"{n:>3}  {d:12.2f}  {r:12.2f}")
    print(f"median detected {statistics.median(detected):.2f} s, max {max(detected):.2f} s; "
          f"median recovered {statistics.median(recovered):.2f} s")


if __name__ == "__main__":
    main()
