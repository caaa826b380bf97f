"""Route matching time as the route table grows: bolt's segment tree against a linear regex scan.

    python benchmarks/routing_bench.py [--repeat 5]

For 10, 100 and 1,000 routes (a third static, a third with parameters, a third ending in a
`{name:path}` catch-all, spread over resources) it times matching a static path, a parameter path,
a catch-all path and a miss, each aimed at the LAST registered resource, which is the worst case
for a scan. The tree should stay flat; the scan grows with the table. Bounded: a few seconds.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import timeit

from bolt.routing import Route, Router, split_template

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _load import write_json  # noqa: E402


def endpoint() -> None:  # never called: only matching is timed
    pass


def templates(count: int) -> list[str]:
    paths: list[str] = []
    i = 0
    while len(paths) < count:
        paths.append(f"/api/v1/resource{i}/items")
        paths.append(f"/api/v1/resource{i}/items/{{item_id}}/parts/{{part}}")
        paths.append(f"/files/bucket{i}/{{rest:path}}")
        i += 1
    return paths[:count]


def probes(count: int) -> dict[str, str]:
    last = count // 3 - 1  # the last resource that has all three kinds of route
    return {
        "static": f"/api/v1/resource{last}/items",
        "param": f"/api/v1/resource{last}/items/42/parts/7",
        "catch-all": f"/files/bucket{last}/a/b/c.txt",
        "miss": "/api/v2/nothing/here",
    }


class LinearRegexRouter:
    """The common alternative: one compiled regex per route, tried in order."""

    def __init__(self, paths: list[str]) -> None:
        self.patterns = []
        for path in paths:
            regex = ""
            for kind, text in split_template(path):
                if kind == "static":
                    regex += "/" + re.escape(text)
                elif kind == "param":
                    regex += f"/(?P<{text}>[^/]+)"
                else:
                    regex += f"/(?P<{text}>.+)"
            self.patterns.append(re.compile(f"^{regex}$"))

    def match(self, path: str) -> re.Match | None:
        for pattern in self.patterns:
            found = pattern.match(path)
            if found is not None:
                return found
        return None


def time_match(match, path: str, repeat: int) -> float:
    """Best-of-`repeat` nanoseconds per call of match(path)."""
    timer = timeit.Timer(lambda: match(path))
    once = max(timer.timeit(20) / 20, 1e-8)
    number = max(1, int(0.03 / once))  # about 30 ms per repeat keeps the whole run to seconds
    return min(timer.repeat(repeat, number)) / number * 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()

    kinds = list(probes(3))
    rows = []
    print("ns per match (best of %d); the last resource is probed, worst case for a scan" % args.repeat)
    print(f"{'routes':>7} | " + " ".join(f"{k:>10}" for k in kinds) + " | "
          + " ".join(f"{'scan ' + k:>15}" for k in kinds))
    for size in (int(s) for s in args.sizes.split(",")):
        paths = templates(size)
        router = Router()
        for path in paths:
            router.add(Route(path, endpoint, "http", frozenset({"GET"})))
        scan = LinearRegexRouter(paths)
        tree_times, scan_times = [], []
        for kind, path in probes(size).items():
            assert (router.match(path) is None) == (kind == "miss"), path
            assert (scan.match(path) is None) == (kind == "miss"), path
            tree_times.append(time_match(router.match, path, args.repeat))
            scan_times.append(time_match(scan.match, path, args.repeat))
        print(f"{size:>7} | " + " ".join(f"{t:>10,.0f}" for t in tree_times) + " | "
              + " ".join(f"{t:>15,.0f}" for t in scan_times))
        rows += [{"routes": size, "probe": kind, "tree_ns": tree, "scan_ns": scan_ns}
                 for kind, tree, scan_ns in zip(kinds, tree_times, scan_times)]
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
