"""WebSocket echo throughput of several servers, side by side in one run.

    python benchmarks/echo_bench.py [--rounds 2] [--duration 3] [--servers sansio,bolt] [--cases 64B]

Each server runs as a subprocess pinned to CPU 0 (``taskset -c 0``) and serves the bare ASGI
echo app ``benchmarks/echo_app.py`` (picows and django-bolt serve their own echo):

    sansio    uvicorn --ws websockets-sansio
    wsproto   uvicorn --ws wsproto
    bolt      uvicorn --ws bolt.protocol:WebSocketProtocol, Rust accelerator
    bolt-py   the same with BOLT_NO_ACCEL=1 (pure-Python fallback)
    picows    picows' own echo server, the ceiling for a Python server
    django-bolt  django-bolt's Rust server, an `@api.websocket` echo handler (django_bolt_server.py)

``--baseline DIR`` adds ``base`` and ``base-py``: bolt's protocol from another checkout of bolt
(with its extension built in place), so a change is measured against the code before it in one run.

The load runs in this process, pinned to CPU 1: raw asyncio connections that write a frame
masked once in advance and count replies from their headers, skipping payloads unread, so the
client costs far less per message than any server. Servers are interleaved over rounds and the
median is printed with its ratio to websockets-sansio, beside the server's CPU time per message
and the capacity that implies (messages per second of one fully used core).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, replace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))

from _load import (  # noqa: E402
    CLIENT_LOOPS,
    Result,
    free_port,
    measure,
    run_client,
    stop_server,
    wait_for_port,
    write_json,
)

HOST = "127.0.0.1"
PRIORITY_BOOST = -10  # nice increment for the servers and the client


@dataclass(frozen=True)
class Case:
    """One load shape: a message, how many connections, how many messages each keeps in flight."""

    name: str
    opcode: int
    size: int
    connections: int
    depth: int = 1


CASES = {
    "64B": Case("64 B text", 0x1, 64, 10, 32),
    "64KiB": Case("64 KiB binary", 0x2, 64 * 1024, 10, 4),
    "1MiB": Case("1 MiB binary", 0x2, 1024 * 1024, 10),
}

UVICORN = [sys.executable, "-m", "uvicorn", "benchmarks.echo_app:app", "--app-dir", ROOT,
           "--host", HOST, "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
SERVERS: dict[str, tuple[list[str], dict[str, str]]] = {
    "sansio": ([*UVICORN, "--ws", "websockets-sansio"], {}),
    "wsproto": ([*UVICORN, "--ws", "wsproto"], {}),
    "bolt": ([*UVICORN, "--ws", "bolt.protocol:WebSocketProtocol"], {"BOLT_NO_ACCEL": "0"}),
    "bolt-py": ([*UVICORN, "--ws", "bolt.protocol:WebSocketProtocol"], {"BOLT_NO_ACCEL": "1"}),
    "picows": ([sys.executable, os.path.join(ROOT, "benchmarks", "picows_echo.py")], {}),
    "django-bolt": ([sys.executable, os.path.join(ROOT, "benchmarks", "django_bolt_server.py")], {}),
}


def add_baseline(root: str) -> None:
    """Servers ``base`` and ``base-py``: bolt's protocol as the checkout at ``root`` has it."""
    root = os.path.abspath(root)
    uvicorn = [root if arg == ROOT else arg for arg in UVICORN]
    for name, no_accel in (("base", "0"), ("base-py", "1")):
        SERVERS[name] = ([*uvicorn, "--ws", "bolt.protocol:WebSocketProtocol"], {"BOLT_NO_ACCEL": no_accel})
        ROOTS[name] = root


ROOTS: dict[str, str] = {}  # servers that import bolt from another checkout


def start_server(name: str, port: int, cpu: int) -> subprocess.Popen:
    command, extra_env = SERVERS[name]
    command = [*command, "--port", str(port)] if command[1:3] == ["-m", "uvicorn"] else [*command, str(port)]
    root = ROOTS.get(name, ROOT)
    env = {**os.environ, "PYTHONPATH": root, **extra_env}
    return subprocess.Popen(["taskset", "-c", str(cpu), *command], cwd=root, env=env, preexec_fn=raise_priority)


def raise_priority() -> None:
    """Run ahead of other work on a shared machine where allowed (root): with the default
    priority, servers and client wait out other processes' time slices and sit idle."""
    try:
        os.nice(PRIORITY_BOOST)
    except PermissionError:
        pass


def report(results: dict[tuple[str, str], list[Result]], servers: list[str], cases: list[str]) -> None:
    """The table: measured rate, and CPU-bound capacity (1 / server CPU per message).

    On a machine shared with other work the server may not get its core to itself; the rate then
    understates it, while CPU time per message still compares servers fairly.
    """

    def median(case: str, server: str, field: str) -> float:
        return statistics.median(getattr(sample, field) for sample in results[case, server])

    def ratio(value: float, base: float | None) -> str:
        return f"{value / base:.2f}x" if base else "-"

    print(f"\n{'case':<14} {'server':<12} {'msg/s':>9} {'vs sansio':>9} {'CPU/msg':>10} {'capacity':>10}"
          f" {'vs sansio':>9}")
    for case in cases:
        has_base = "sansio" in servers
        base_rate = median(case, "sansio", "rate") if has_base else None
        base_capacity = 1e6 / median(case, "sansio", "server_us") if has_base else None
        for server in servers:
            rate, cpu = median(case, server, "rate"), median(case, server, "server_us")
            print(f"{CASES[case].name:<14} {server:<12} {rate:>9,.0f} {ratio(rate, base_rate):>9}"
                  f" {cpu:>7.1f} us {1e6 / cpu:>10,.0f} {ratio(1e6 / cpu, base_capacity):>9}")
    if {"bolt", "bolt-py"} <= set(servers):
        print()
        for case in cases:
            rate = median(case, "bolt", "rate") / median(case, "bolt-py", "rate")
            cpu = median(case, "bolt-py", "server_us") / median(case, "bolt", "server_us")
            print(f"accelerator vs fallback, {CASES[case].name}: {rate:.2f}x rate, {cpu:.2f}x capacity")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="each server is measured once per round")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds measured per case")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before measuring")
    parser.add_argument("--servers", default=",".join(SERVERS), help=f"subset of {','.join(SERVERS)}")
    parser.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    parser.add_argument("--depth", type=int, default=0, help="messages in flight per connection, all cases")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--baseline", metavar="DIR", help="add servers base and base-py: bolt from checkout DIR")
    parser.add_argument("--client-loop", default="asyncio", choices=CLIENT_LOOPS, help="the load's event loop")
    parser.add_argument("--json", help="also write the result rows to this file")
    return parser.parse_args()


async def main(args: argparse.Namespace) -> None:
    if args.baseline:
        add_baseline(args.baseline)
    servers, cases = args.servers.split(","), args.cases.split(",")
    os.sched_setaffinity(0, {args.client_cpu})
    raise_priority()

    from bolt import accel

    if "bolt" in servers and not accel.ENABLED:
        print("warning: bolt._accel is not built or is disabled; the 'bolt' row measures the fallback")

    if args.depth:
        cases_by_name = {name: replace(CASES[name], depth=args.depth) for name in cases}
    else:
        cases_by_name = {name: CASES[name] for name in cases}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
          " (other work on the machine skews the figures)")
    results: dict[tuple[str, str], list[Result]] = {(c, s): [] for c in cases for s in servers}
    for round_ in range(1, args.rounds + 1):
        for server in servers:
            port = free_port()
            process = start_server(server, port, args.server_cpu)
            try:
                wait_for_port(HOST, port, process)
                for case in cases:
                    shape = cases_by_name[case]
                    sample = await measure(HOST, port, "/", payload=b"x" * shape.size, opcode=shape.opcode,
                                           connections=shape.connections, depth=shape.depth, warmup=args.warmup,
                                           duration=args.duration, server_pid=process.pid)
                    results[case, server].append(sample)
                    print(f"round {round_}: {server:<12} {CASES[case].name:<14} {sample.rate:>10,.0f} msg/s"
                          f" {sample.server_us:>8.1f} us server CPU/msg, busy: server"
                          f" {sample.server_load:4.0%} client {sample.client_load:4.0%}", flush=True)
            finally:
                stop_server(process)
    report(results, servers, cases)
    write_json(args.json, [{"case": CASES[case].name, "server": server,
                            "rate": statistics.median(s.rate for s in samples),
                            "server_us": statistics.median(s.server_us for s in samples)}
                           for (case, server), samples in results.items()])


if __name__ == "__main__":
    arguments = parse_args()
    run_client(main(arguments), arguments.client_loop)
