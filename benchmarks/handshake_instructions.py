"""Instructions a bolt server executes per WebSocket handshake, counted by valgrind's callgrind.

Timings on a shared machine move by 10-20% from one minute to the next; an instruction count does
not: the same code and requests give the same count within 0.1%, whatever else the machine runs.
So a change to the handshake path is measured here, against the code before it (``--baseline``, a
checkout of bolt whose extension is built in place), and timed with handshake_bench.py beside the
peers. The count covers the server process in user space (the interpreter, uvloop, the extension,
the C library), not the kernel's share, nor cache misses, which a smaller count usually brings
down too.

Each tree serves handshake_bench.py's app under `bolt run`'s stack, under callgrind. For each
route, after a warm-up, the counters are zeroed, the clients (in this process) complete
``--handshakes`` handshakes (an upgrade, a close each way), and the counters are read.

    python benchmarks/handshake_instructions.py [--baseline ../bolt-before] [--routes open,secure]
                                                [--handshakes 1000]

``BOLT_NO_ACCEL=1`` in the environment counts the pure-Python build. Needs valgrind
(``apt-get install valgrind``); the server runs about 50 times slower under it, hence the
small default count.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from handshake_bench import ROUTES, one_handshake  # noqa: E402

from _load import free_port, stop_server, wait_for_port, write_json  # noqa: E402

ROUTE_NAMES = {"open": "no security", "secure": "JWT + guard", "secure-cold": "JWT + guard, no cache"}
CONCURRENCY = 8


async def handshakes(port: int, path: str, count: int) -> None:
    async def client() -> None:
        for _ in range(count // CONCURRENCY):
            await asyncio.wait_for(one_handshake(port, path), 60)

    await asyncio.gather(*(client() for _ in range(CONCURRENCY)))


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True)


def count_tree(tree: str, routes: list[str], count: int, workdir: str) -> dict[str, float]:
    """Instructions per handshake on each route, for the bolt checkout in `tree`."""
    port = free_port()
    out = os.path.join(workdir, f"callgrind.{port}")
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
         sys.executable, os.path.join(tree, "benchmarks", "handshake_bench.py"), "--serve", str(port),
         "--stack", "bolt"],
        cwd=tree, env=dict(os.environ, PYTHONPATH=tree), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    counts = {}
    try:
        wait_for_port("127.0.0.1", port, server, timeout=180)
        for dump, route in enumerate(routes, start=1):
            path = ROUTES[ROUTE_NAMES[route]]
            asyncio.run(handshakes(port, path, 200))  # warm-up: caches filled, code paths taken once
            callgrind_control("--zero", str(server.pid))
            asyncio.run(handshakes(port, path, count))
            callgrind_control("--dump", str(server.pid))
            counts[route] = summary(f"{out}.{dump}") / count
    finally:
        stop_server(server)
        for name in glob.glob(out + "*"):
            os.remove(name)
    return counts


def summary(path: str) -> int:
    """The instruction total of a callgrind dump (its `summary:` line), once the file is written."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as dump:
                for line in dump:
                    if line.startswith("summary:"):
                        return int(line.split()[1])
        time.sleep(0.2)
    raise RuntimeError(f"callgrind wrote no summary to {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", default="open,secure", help=f"subset of {','.join(ROUTE_NAMES)}")
    parser.add_argument("--handshakes", type=int, default=1000, help="per route (a multiple of 8)")
    parser.add_argument("--baseline", metavar="DIR", help="also count bolt from checkout DIR")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("valgrind is not installed: apt-get install valgrind")
    routes = args.routes.split(",")
    trees = {"bolt": os.path.dirname(HERE)}
    if args.baseline:
        trees["baseline"] = os.path.abspath(args.baseline)
    build = "pure Python" if os.environ.get("BOLT_NO_ACCEL", "") not in ("", "0") else "accelerated"
    with tempfile.TemporaryDirectory() as workdir:
        results = {name: count_tree(tree, routes, args.handshakes, workdir) for name, tree in trees.items()}
    print(f"\ninstructions per handshake, server process in user space ({build} build, "
          f"{args.handshakes} handshakes per route, {CONCURRENCY} concurrent clients)\n")
    print(f"{'route':<24}" + "".join(f"{name:>14}" for name in results) + ("   bolt vs baseline" if args.baseline else ""))
    for route in routes:
        row = f"{ROUTE_NAMES[route]:<24}" + "".join(f"{counts[route]:>14,.0f}" for counts in results.values())
        if args.baseline:
            row += f"   {results['bolt'][route] / results['baseline'][route] - 1:+.1%}"
        print(row)
    write_json(args.json, [{"server": name, "route": ROUTE_NAMES[route], "instructions": counts[route], "build": build}
                           for name, counts in results.items() for route in routes])


if __name__ == "__main__":
    main()
