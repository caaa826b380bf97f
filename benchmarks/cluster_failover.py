"""A Redis Cluster master killed mid-broadcast: how long until its room works again, and what was lost.

    python benchmarks/cluster_failover.py [--runs 3] [--node-timeout 1000]

Each run starts 3 masters + 3 replicas on free 127.0.0.1 ports (`redis-cli --cluster create`), two hubs
(two "processes") on `redis+cluster://`, a subscriber of one room on the second hub, and a publisher on
the first that broadcasts every 10 ms. It SIGKILLs the room's master and reports: the time until the
subscriber's clients got the gap signal, until the first broadcast after the kill was published again,
how many broadcasts raised PublishError, and how many published ones the subscriber never got. Bounded:
a run gives up after 60 s. The cluster's files are removed afterwards.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [ROOT, os.path.join(ROOT, "tests")]

from bolt.realtime import Hub, PublishError  # noqa: E402
from redis_servers import RedisCluster, redis_cluster_or_skip  # noqa: E402

ROOM = "h:feed"


async def one_run(node_timeout: int) -> dict[str, float]:
    RedisCluster.NODE_TIMEOUT_MS = node_timeout
    cluster = redis_cluster_or_skip()
    try:
        cluster.start()
        one, two = Hub(cluster.url), Hub(cluster.url)
        for hub in (one, two):
            hub.keep_history("h:", size=1000)
            await hub.start()
        got: list[str] = []
        stop = await two.listen(ROOM, got.append)
        published: list[int] = []
        failed = 0
        killed_at = 0.0
        back_at = 0.0
        async with asyncio.timeout(60):
            for n in range(50):
                published.append(await one.broadcast(ROOM, n))  # type: ignore[arg-type]
                await asyncio.sleep(0.01)
            cluster.kill(cluster.master_of(f"bolt:room:{{{ROOM}}}"))
            killed_at = time.monotonic()
            gap_at = 0.0
            while not back_at or not gap_at or time.monotonic() - back_at < 0.5:
                try:
                    published.append(await one.broadcast(ROOM, "x"))  # type: ignore[arg-type]
                    back_at = back_at or time.monotonic()
                except PublishError:
                    failed += 1
                if not gap_at and any('"gap"' in text for text in got):
                    gap_at = time.monotonic()
                await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)
        ids = {int(text.split('"id":')[1].split(",")[0]) for text in got if '"id":' in text}
        await stop()
        await one.stop()
        await two.stop()
        return {"gap": gap_at - killed_at, "back": back_at - killed_at, "failed": failed,
                "missed": len([seq for seq in published if seq not in ids])}
    finally:
        cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--node-timeout", type=int, default=1000, help="cluster-node-timeout (ms)")
    args = parser.parse_args()
    results = [asyncio.run(one_run(args.node_timeout)) for _ in range(args.runs)]
    print(f"cluster-node-timeout {args.node_timeout} ms")
    print("run  gap signalled (s)  publishing again (s)  PublishError  published but not received")
    for n, r in enumerate(results, 1):
        print(f"{n:>3}  {r['gap']:17.2f}  {r['back']:20.2f}  {r['failed']:12.0f}  {r['missed']:26.0f}")
    print(f"median: gap {statistics.median(r['gap'] for r in results):.2f} s, "
          f"publishing again {statistics.median(r['back'] for r in results):.2f} s")


if __name__ == "__main__":
    main()
