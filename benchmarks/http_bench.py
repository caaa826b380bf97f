"""HTTP requests per second of bolt beside a bare ASGI app, Starlette, FastAPI and django-bolt, in one run.

    python benchmarks/http_bench.py [--rounds 5] [--duration 5] [--baseline DIR] [--cases hello,items]
                                    [--apps bare,bolt,starlette,fastapi,django-bolt]

Needs wrk, httptools, and the peers of --apps in the same environment (`pip install starlette
fastapi django-bolt`; pydantic comes with FastAPI). Each app of benchmarks/http_apps.py runs in its
own uvicorn worker with the same settings (`--http httptools --loop asyncio`, no access log);
django-bolt serves the same routes from its own Rust server, one process with one worker
(benchmarks/django_bolt_server.py). Every server is pinned to CPU 0, and wrk (one thread, 32
connections) to CPU 1. The servers start once and the wrk runs
alternate between them, round after round, in a new order each round, so that whatever else the
machine does falls on all of them alike.

Two figures per app: the requests per second wrk saw, and the server's CPU time per request
(from /proc), whose inverse is the rate one fully used core would give ("capacity"). On a
machine shared with other work the server rarely has its core to itself, so the rate understates
it, while CPU time per request still compares apps fairly. Each figure is divided by the bare
app's of the same round; the table shows medians over the rounds.

    hello   GET /hello answered {"hello": "world"} (a dict returned by `@api.get`)
    items   POST /items with a 60-byte JSON body decoded into a dataclass (pydantic for FastAPI)

For `items` the bare app answers as for `hello` without reading the body: its ratio is to the
same ceiling. `--baseline DIR` adds "bolt@DIR": the same bolt app served from another source tree (say
`git worktree add /tmp/bolt-main main`), to compare a change against the code before it.
Bounded: rounds x cases x apps x (duration + 1 s warm-up).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
sys.path.insert(0, BENCH)

from _load import cpu_seconds, free_port, stop_server, wait_for_port  # noqa: E402

HOST = "127.0.0.1"
CONNECTIONS = 32
CASES = {
    "hello": ("GET", "/hello", None),
    "items": ("POST", "/items", '{"name": "widget", "price": 9.5, "tags": ["a", "b", "c"]}'),
}


def start(factory: str, pythonpath: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    if factory == "django-bolt":
        command = ["taskset", "-c", "0", sys.executable, os.path.join(BENCH, "django_bolt_server.py"), str(port)]
    else:
        command = ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", "--factory", f"http_apps:{factory}",
                   "--host", HOST, "--port", str(port), "--http", "httptools", "--loop", "asyncio",
                   "--no-access-log", "--log-level", "warning", "--workers", "1"]
    # The working directory is benchmarks/, so that `bolt` is imported from PYTHONPATH and nowhere else.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([pythonpath, BENCH])}
    process = subprocess.Popen(command, cwd=BENCH, env=env)
    wait_for_port(HOST, port, process)
    return process, port


def wrk(server: tuple[subprocess.Popen[bytes], int], case: str, duration: float) -> tuple[float, float]:
    """Requests per second, and server CPU microseconds per request."""
    process, port = server
    method, path, body = CASES[case]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(f'wrk.method = "{method}"\n')
        if body is not None:
            script.write(f"wrk.body = '{body}'\n" 'wrk.headers["Content-Type"] = "application/json"\n')
    try:
        cpu_before = cpu_seconds(process.pid)
        out = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration:g}s",
                              "-s", script.name, f"http://{HOST}:{port}{path}"],
                             capture_output=True, text=True, timeout=duration + 30)
        cpu = cpu_seconds(process.pid) - cpu_before
    finally:
        os.unlink(script.name)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed on {case} (port {port}): {out.stderr or out.stdout}")
    out = out.stdout
    if "Non-2xx" in out:
        raise RuntimeError(f"{case} on port {port} answered errors:\n{out}")
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), cpu * 1e6 / requests


Samples = dict[str, list[tuple[float, float, float, float]]]  # app -> per round: rate, x bare, CPU us, x bare


def report(case: str, args: argparse.Namespace, samples: Samples) -> None:
    method, path, _ = CASES[case]
    print(f"\n{method} {path}: {args.rounds} rounds of {args.duration:g} s, {CONNECTIONS} connections")
    print(f"{'app':<34} {'req/s':>8} {'x bare':>7} {'CPU/req':>9} {'capacity':>9} {'x bare':>7}"
          "   capacity x bare per round")
    for name, rows in samples.items():
        rate, rate_ratio, us, capacity_ratio = (statistics.median(column) for column in zip(*rows))
        per_round = " ".join(f"{row[3]:.2f}" for row in rows)
        print(f"{name:<34} {rate:>8.0f} {rate_ratio:>7.2f} {us:>7.1f}us {1e6 / us:>9.0f}"
              f" {capacity_ratio:>7.2f}   {per_round}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--baseline", help="another bolt source tree to serve beside this one")
    parser.add_argument("--cases", default="hello,items")
    parser.add_argument("--apps", default="bare,bolt,starlette,fastapi",
                        help="subset of bare,bolt,starlette,fastapi,django-bolt (bare is always measured: "
                             "the ratios are to it)")
    args = parser.parse_args()
    chosen = {"bare", *args.apps.split(",")}
    apps = {"bare": ("bare", ROOT), "bolt": ("bolt", ROOT)}
    if args.baseline:
        apps[f"bolt@{args.baseline}"] = ("bolt", os.path.abspath(args.baseline))
    apps.update({"starlette": ("starlette", ROOT), "fastapi": ("fastapi", ROOT), "django-bolt": ("django-bolt", ROOT)})
    apps = {name: app for name, app in apps.items() if name in chosen or name.startswith("bolt@")}
    servers = {}
    try:
        for name, (factory, pythonpath) in apps.items():
            servers[name] = start(factory, pythonpath)
        for case in args.cases.split(","):
            samples: Samples = {name: [] for name in apps}
            names = list(apps)
            for round_ in range(args.rounds):
                order = names[round_ % len(names):] + names[:round_ % len(names)]
                got = {}
                for name in order:
                    wrk(servers[name], case, 1)  # warm-up
                    got[name] = wrk(servers[name], case, args.duration)
                bare_rate, bare_us = got["bare"]
                for name in names:
                    rate, us = got[name]
                    samples[name].append((rate, rate / bare_rate, us, bare_us / us))
            report(case, args, samples)
    finally:
        for process, _ in servers.values():
            stop_server(process)


if __name__ == "__main__":
    main()
