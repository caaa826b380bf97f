"""Many connections to one worker: memory per connection, a broadcast to all, and join/leave churn.

    python benchmarks/many_connections.py [-n 100000] [--only bolt,starlette,channels] [--json out.json]

Each server worker is one uvicorn process pinned to core 0, serving the rooms app of broadcast_bench.py
(every member joins one room; a control connection asks for broadcasts):

  bolt        `await api.hub.broadcast(room, msg)` under bolt's own protocol and HeadReader (what `bolt run` serves)
  starlette   the hand-written loop from FastAPI's docs, on stock uvicorn (websockets-sansio)
  channels    Django Channels' `group_send` with the InMemoryChannelLayer, on stock uvicorn

One process can hold no more sockets than its hard RLIMIT_NOFILE, which only CAP_SYS_RESOURCE raises
(a container often lacks it). N connections go to one worker when that limit allows, else to as few
workers as it does (--workers to choose): each its own process and port with its own rooms, and a
broadcast asks every worker at once, so the figure is still one message reaching all N on one core.

The client is one process per worker on core 1: raw non-blocking sockets on one epoll loop, spread
over several loopback source addresses (127.0.0.2, 127.0.0.3, ...) because one address has only the
ephemeral port range (about 28,000 ports) towards one server port. For each server, with deflate off:

  memory     the server's RSS once N connections are open and idle, minus its RSS before, over N
  broadcast  100 B to all N (--broadcasts times): the time from the request until the last
             connection has the frame, p50 and p99
  churn      for --churn-seconds, --churn-rate new connections per second (handshake, join) while as
             many of the oldest close (reset, as a dropped network does): the rate of handshakes
             actually completed, their latency p50/p99, and how many failed

then, once every server has had that turn, again with deflate on (the clients offer
permessage-deflate as browsers do): memory idle, and after one broadcast has used every connection's
compressor. Every phase has a deadline; a server that cannot open N connections in time, or loses
them, is reported as failing there and the run moves on. Keepalive pings are off (this client does
not answer them).

Linux only. It raises the soft RLIMIT_NOFILE to the hard limit; run as root it also raises
net.core.somaxconn when it is below the listen backlog, and says so.
"""
from __future__ import annotations

import argparse
import errno
import json
import multiprocessing
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from broadcast_bench import BOLT_PROTOCOL, DEFLATE_OFFER, _handshake  # noqa: E402

from _load import client_frame, cpu_seconds, free_port, stop_server, wait_for_port  # noqa: E402

SERVERS = {  # name: (factory in broadcast_bench.py, uvicorn --ws)
    "bolt": ("make_bolt", BOLT_PROTOCOL),
    "starlette": ("make_starlette", "websockets-sansio"),
    "channels": ("make_channels", "websockets-sansio"),
}
HOST = "127.0.0.1"
BACKLOG = 4096
PORTS_PER_ADDRESS = 20_000  # of the ~28,000 ephemeral ports towards one server port
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h: pick the port at connect(), by the whole 4-tuple
GO = client_frame(b"go")
CHURN_IN_FLIGHT = 1000  # handshakes pending at once in the churn, over all client processes
LINGER_RESET = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")  # struct linger {1, 0}: close with RST


class PhaseFailed(Exception):
    """A phase did not complete within its deadline; the message says how far it got."""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def prepare_system() -> list[str]:
    """Raise what the run needs (the fd limit to its hard limit; somaxconn as root); say what changed."""
    changes = []
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        changes.append(f"RLIMIT_NOFILE {soft} -> {hard} (this process, its clients and servers)")
    somaxconn = Path("/proc/sys/net/core/somaxconn")
    if int(somaxconn.read_text()) < BACKLOG and os.geteuid() == 0:
        changes.append(f"net.core.somaxconn {somaxconn.read_text().strip()} -> {BACKLOG}")
        somaxconn.write_text(str(BACKLOG))
    return changes


def per_process_connections() -> int:
    """Connections one process can hold: its hard fd limit, less room for everything else it opens.

    Raising the hard limit needs CAP_SYS_RESOURCE; without it (a container) this is the ceiling of
    one worker, and more connections need more workers.
    """
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 2000


def system_settings() -> dict[str, str]:
    names = ["net/ipv4/ip_local_port_range", "fs/nr_open", "net/core/somaxconn", "net/ipv4/tcp_max_syn_backlog"]
    return {name.replace("/", "."): " ".join(Path(f"/proc/sys/{name}").read_text().split()) for name in names}


class Swarm:
    """The client side: N WebSocket connections as raw sockets on one epoll, no per-connection objects.

    A connection is an fd in one of two dicts: `handshaking` (connect sent, maybe the request too)
    or `open` (upgraded; insertion order is age, so the oldest leave first in the churn).
    """

    def __init__(self, port: int, deflate: bool, addresses: int) -> None:
        self.port = port
        self.epoll = select.epoll()
        self.addresses = [f"127.0.0.{2 + i}" for i in range(addresses)]
        self.next_address = 0
        extension = DEFLATE_OFFER if deflate else ""
        self.request = (f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                        f"{extension}\r\n").encode()
        self.handshaking: dict[int, tuple[socket.socket, float, bool]] = {}  # fd: (sock, started, request sent)
        self.open: dict[int, socket.socket] = {}
        self.latencies: list[float] = []  # handshake seconds, connect to 101
        self.failures: Counter[str] = Counter()
        self.arrived: set[int] = set()  # open connections that received data since the last reset
        self.lost = 0  # open connections the server closed

    def connect(self) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((self.addresses[self.next_address], 0))
        self.next_address = (self.next_address + 1) % len(self.addresses)
        code = sock.connect_ex((HOST, self.port))
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.failures[errno.errorcode.get(code, str(code))] += 1
            return
        self.handshaking[sock.fileno()] = (sock, time.perf_counter(), False)
        self.epoll.register(sock.fileno(), select.EPOLLOUT)

    def leave_oldest(self) -> None:
        fd, sock = next(iter(self.open.items()))
        del self.open[fd]
        self.arrived.discard(fd)
        self.epoll.unregister(fd)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)  # no TIME_WAIT to use up ports
        sock.close()

    def _fail(self, fd: int, reason: str) -> None:
        sock = self.handshaking.pop(fd)[0]
        self.epoll.unregister(fd)
        sock.close()
        self.failures[reason] += 1

    def pump(self, timeout: float) -> None:
        """Wait up to `timeout` for events and handle them: handshakes advance, arrivals are read."""
        for fd, events in self.epoll.poll(timeout):
            entry = self.handshaking.get(fd)
            if entry is None:
                self._read(fd)
                continue
            sock, started, sent = entry
            if events & (select.EPOLLERR | select.EPOLLHUP) and not events & select.EPOLLIN:
                self._fail(fd, errno.errorcode.get(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR), "reset"))
            elif not sent:
                sock.send(self.request)  # ~200 bytes into an empty send buffer
                self.handshaking[fd] = (sock, started, True)
                self.epoll.modify(fd, select.EPOLLIN)
            else:
                try:
                    head = sock.recv(4096)
                except OSError as exc:
                    self._fail(fd, errno.errorcode.get(exc.errno or 0, "error"))
                    continue
                if not head.startswith(b"HTTP/1.1 101") or not head.endswith(b"\r\n\r\n"):
                    self._fail(fd, (head.split(b"\r\n", 1)[0] or b"closed").decode("latin-1"))
                    continue
                del self.handshaking[fd]
                self.open[fd] = sock
                self.latencies.append(time.perf_counter() - started)

    def _read(self, fd: int) -> None:
        sock = self.open.get(fd)
        if sock is None:
            return
        try:
            while len(data := sock.recv(65536)) == 65536:
                pass
        except BlockingIOError:
            data = b"-"
        except OSError:
            data = b""
        if data:
            self.arrived.add(fd)
        else:  # the server closed it
            del self.open[fd]
            self.epoll.unregister(fd)
            sock.close()
            self.lost += 1

    def open_many(self, n: int, deadline: float, in_flight: int = 1000) -> float:
        """Open connections until `n` are open; seconds taken. Raises PhaseFailed at the deadline."""
        started = time.perf_counter()
        while len(self.open) < n:
            if time.monotonic() > deadline:
                raise PhaseFailed(f"{len(self.open):,} of {n:,} open at the deadline "
                                  f"(failures: {dict(self.failures) or 'none'})")
            want = min(in_flight - len(self.handshaking), n - len(self.open) - len(self.handshaking))
            for _ in range(max(0, want)):
                self.connect()
            self.pump(0.01)
        return time.perf_counter() - started

    def close(self) -> None:
        for sock in [*self.open.values(), *(entry[0] for entry in self.handshaking.values())]:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
            sock.close()
        self.open.clear()
        self.handshaking.clear()
        self.epoll.close()


class Server:
    """One uvicorn process serving one of SERVERS, with its control connection."""

    def __init__(self, name: str, deflate: bool, files: int) -> None:
        factory, ws = SERVERS[name]
        self.port = free_port()
        # bolt's server starts each connection with its HeadReader, as `bolt run` does; the others, uvicorn's parser.
        http = ["--http", "bolt.protocol.http:HeadReader"] if ws == BOLT_PROTOCOL else []
        command = ["taskset", "-c", "0", sys.executable, "-m", "uvicorn", "--factory",
                   f"benchmarks.broadcast_bench:{factory}", "--host", HOST, "--port", str(self.port), "--ws", ws, *http,
                   "--ws-ping-interval", "0", "--ws-per-message-deflate", "true" if deflate else "false",
                   "--backlog", str(BACKLOG), "--log-level", "error", "--no-access-log", "--lifespan", "off"]
        limit = (files, files)
        self.process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                                        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limit))
        wait_for_port(HOST, self.port, self.process, timeout=30)
        self.control = _handshake(self.port, "/control")

    def rss_kib(self) -> int:
        return rss_kib(self.process.pid)

    def settle(self, timeout: float) -> None:
        """Wait until the server stops using CPU (what a phase left it doing is not the next phase's)."""
        deadline = time.monotonic() + timeout
        used = cpu_seconds(self.process.pid)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if (now := cpu_seconds(self.process.pid)) - used < 0.01:
                return
            used = now

    def stop(self) -> None:
        self.control.close()
        stop_server(self.process)


class Clients:
    """One client process per worker (a process may hold no more fds than its hard limit), driven by pipes.

    Each child owns a Swarm towards one worker; the parent sends it a command and waits for its answer.
    perf_counter is CLOCK_MONOTONIC, so the children's timestamps compare with the parent's.
    """

    def __init__(self, ports: list[int], deflate: bool, addresses: int) -> None:
        context = multiprocessing.get_context("fork")
        self.pipes = []
        self.processes = []
        for port in ports:
            parent, child = context.Pipe()
            process = context.Process(target=_client_main, args=(child, port, deflate, addresses), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def ask(self, *command: Any) -> list[Any]:
        """Send `command` to every child, then collect their answers (a child's PhaseFailed is raised here)."""
        for pipe in self.pipes:
            pipe.send(command)
        answers = [pipe.recv() for pipe in self.pipes]
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return answers

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(("close",))
        for process in self.processes:
            process.join(10)
            if process.is_alive():
                process.kill()


def _client_main(pipe: Any, port: int, deflate: bool, addresses: int) -> None:
    os.sched_setaffinity(0, {1})
    swarm = Swarm(port, deflate, addresses)
    while True:
        command, *args = pipe.recv()
        try:
            if command == "close":
                swarm.close()
                pipe.send(None)
                return
            pipe.send(getattr(ClientCommands, command)(swarm, *args))
        except (PhaseFailed, OSError) as exc:
            pipe.send(PhaseFailed(str(exc)))


class ClientCommands:
    """What a client process does on a parent's command, over its own swarm."""

    @staticmethod
    def open(swarm: Swarm, n: int, deadline: float) -> tuple[float, list[float]]:
        return swarm.open_many(n, deadline), swarm.latencies

    @staticmethod
    def arm(swarm: Swarm) -> None:
        """Forget earlier arrivals; the next broadcast is awaited from here."""
        for fd in list(swarm.open):
            swarm._read(fd)
        swarm.arrived.clear()

    @staticmethod
    def wait(swarm: Swarm, deadline: float) -> float:
        """The perf_counter time at which every open connection had received something since `arm`."""
        while len(swarm.arrived) < len(swarm.open):
            if time.monotonic() > deadline:
                raise PhaseFailed(f"a broadcast reached {len(swarm.arrived):,} of {len(swarm.open):,} "
                                  "connections of a worker by the deadline")
            swarm.pump(0)
            # Sleeping rather than blocking in epoll: the server's sends then wake no one, so what is
            # measured is the server's cost (give or take this granularity), as in broadcast_bench.py.
            time.sleep(0.0002)
        return time.perf_counter()

    @staticmethod
    def lost(swarm: Swarm) -> int:
        return swarm.lost

    @staticmethod
    def churn(swarm: Swarm, seconds: float, rate: float, in_flight: int, deadline: float) -> dict[str, Any]:
        """`rate` joins and as many leaves per second for `seconds`: what was done, and the latencies.

        At most `in_flight` handshakes are pending at once, as a client pool would limit them; a join
        due while they are all pending is not issued (the shortfall). Without the bound, SYNs beyond
        the listen backlog are dropped and retried after 1 s, 3 s..., which measures TCP, not the server.
        """
        swarm.latencies = []
        failures_before = sum(swarm.failures.values())
        issued = skipped = 0
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < seconds:
            for _ in range(int(elapsed * rate) - issued - skipped):
                if len(swarm.handshaking) >= in_flight:
                    skipped += 1
                    continue
                swarm.connect()
                if swarm.open:
                    swarm.leave_oldest()
                issued += 1
            swarm.pump(0.005)
        span = time.perf_counter() - started
        in_span = len(swarm.latencies)
        end = min(deadline, time.monotonic() + 10)
        while swarm.handshaking and time.monotonic() < end:
            swarm.pump(0.01)
        return {"seconds": span, "issued": issued, "not_issued": skipped, "completed_in_span": in_span,
                "failed": sum(swarm.failures.values()) - failures_before, "latencies": swarm.latencies}


def broadcast(clients: Clients, servers: list[Server], deadline: float) -> float:
    """One broadcast: seconds from the request until every connection of every worker has received it."""
    clients.ask("arm")
    for pipe in clients.pipes:
        pipe.send(("wait", deadline))
    time.sleep(0.01)  # every child is polling
    started = time.perf_counter()
    for server in servers:
        server.control.sendall(GO)
    finished = []
    for pipe in clients.pipes:
        answer = pipe.recv()
        if isinstance(answer, Exception):
            raise answer
        finished.append(answer)
    return max(finished) - started


def churn(clients: Clients, seconds: float, rate: int, deadline: float) -> dict[str, Any]:
    """`rate` joins and as many leaves per second in all, for `seconds`; what was sustained."""
    own = [cpu_seconds(p.pid) for p in clients.processes]
    share = len(clients.pipes)
    parts = clients.ask("churn", seconds, rate / share, max(1, CHURN_IN_FLIGHT // share), deadline)
    span = max(part["seconds"] for part in parts)
    latencies = [value for part in parts for value in part["latencies"]]
    return {
        "target_per_s": rate, "seconds": round(span, 2), "issued": sum(part["issued"] for part in parts),
        "not_issued": sum(part["not_issued"] for part in parts), "completed": len(latencies),
        "failed": sum(part["failed"] for part in parts),
        "sustained_per_s": sum(part["completed_in_span"] for part in parts) / span,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else None,
        "client_load": sum(cpu_seconds(p.pid) - before for p, before in zip(clients.processes, own)) / span,
    }


def run_server(name: str, n: int, deflate: bool, args: argparse.Namespace, deadline: float) -> dict[str, Any]:
    """Every phase for one server and one deflate setting; a failed phase ends the run with its reason."""
    workers = args.workers or -(-n // per_process_connections())
    shares = [n // workers + (i < n % workers) for i in range(workers)]
    result: dict[str, Any] = {"server": name, "deflate": deflate, "connections": n, "workers": workers, "failed": ""}
    label = f"{name} deflate {'on' if deflate else 'off'}"
    servers: list[Server] = []
    clients = None
    phase = "start"
    try:
        servers = [Server(name, deflate, resource.getrlimit(resource.RLIMIT_NOFILE)[1]) for _ in range(workers)]
        clients = Clients([s.port for s in servers], deflate, addresses=max(shares) // PORTS_PER_ADDRESS + 2)
        time.sleep(0.5)
        before = sum(s.rss_kib() for s in servers)
        phase = "open"
        open_deadline = min(deadline, time.monotonic() + args.open_timeout)
        started = time.perf_counter()
        for pipe, share in zip(clients.pipes, shares):
            pipe.send(("open", share, open_deadline))
        opened = [pipe.recv() for pipe in clients.pipes]
        for answer in opened:
            if isinstance(answer, Exception):
                raise answer
        result["open_seconds"] = time.perf_counter() - started
        result["handshake_p99_ms"] = percentile([v for _, part in opened for v in part], 0.99) * 1000
        for s in servers:
            s.settle(10)
        after = sum(s.rss_kib() for s in servers)
        result.update(rss_before_mib=before / 1024, rss_idle_mib=after / 1024, idle_kib_per_conn=(after - before) / n)
        print(f"  {label}: {n:,} open on {workers} worker(s) in {result['open_seconds']:.1f} s, "
              f"{result['idle_kib_per_conn']:.2f} KiB per idle connection", file=sys.stderr, flush=True)
        phase = "broadcast"
        times = []
        for _ in range(1 if deflate else args.broadcasts):
            times.append(broadcast(clients, servers, min(deadline, time.monotonic() + args.broadcast_timeout)))
            for s in servers:
                s.settle(5)
        result["broadcast_p50_ms"] = statistics.median(times) * 1000
        result["broadcast_p99_ms"] = percentile(times, 0.99) * 1000
        result["broadcasts"] = len(times)
        result["deliveries_per_s"] = n * len(times) / sum(times)
        if deflate:
            result["after_broadcast_kib_per_conn"] = (sum(s.rss_kib() for s in servers) - before) / n
        print(f"  {label}: broadcast to all p50 {result['broadcast_p50_ms']:,.0f} ms"
              f" p99 {result['broadcast_p99_ms']:,.0f} ms", file=sys.stderr, flush=True)
        if not deflate and args.churn_seconds:
            phase = "churn"
            result["churn"] = c = churn(clients, args.churn_seconds, args.churn_rate, deadline)
            print(f"  {label}: churn {c['sustained_per_s']:,.0f}/s of {args.churn_rate:,}/s, handshake p50 "
                  f"{c['p50_ms'] or 0:.0f} ms p99 {c['p99_ms'] or 0:.0f} ms", file=sys.stderr, flush=True)
        result["lost"] = sum(clients.ask("lost"))
    except (PhaseFailed, OSError, RuntimeError) as exc:
        result["failed"] = f"{phase}: {exc}"
        print(f"  {label}: FAILED in {phase}: {exc}", file=sys.stderr, flush=True)
    finally:
        if clients is not None:
            clients.close()
        for s in servers:
            if s.process.poll() is not None and "failed" not in result:
                result["failed"] = f"a worker exited with status {s.process.returncode}"
            s.stop()
    return result


def table(results: list[dict[str, Any]]) -> str:
    def cell(value: Any, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    rows = ["| server | workers | deflate | KiB/conn idle | KiB/conn after a broadcast "
            "| broadcast to all p50 / p99 (ms) "
            "| deliveries/s | churn sustained (/s) | handshake p50 / p99 under churn (ms) | failed |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        c = r.get("churn") or {}
        broadcast_ms = (f"{r['broadcast_p50_ms']:,.0f} / {r['broadcast_p99_ms']:,.0f}"
                        if "broadcast_p50_ms" in r else "-")
        churn_ms = f"{c['p50_ms']:,.0f} / {c['p99_ms']:,.0f}" if c.get("p50_ms") is not None else "-"
        rows.append(f"| {r['server']} | {r.get('workers', '-')} | {'on' if r['deflate'] else 'off'} "
                    f"| {cell(r.get('idle_kib_per_conn'), '.2f')} "
                    f"| {cell(r.get('after_broadcast_kib_per_conn'), '.2f')} | {broadcast_ms} "
                    f"| {cell(r.get('deliveries_per_s'), ',.0f')} | {cell(c.get('sustained_per_s'), ',.0f')} "
                    f"| {churn_ms} | {r['failed']} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--connections", type=int, default=100_000)
    parser.add_argument("--only", default=",".join(SERVERS), help="comma-separated subset of: " + ", ".join(SERVERS))
    parser.add_argument("--broadcasts", type=int, default=20)
    parser.add_argument("--churn-rate", type=int, default=10_000, help="joins (and leaves) per second")
    parser.add_argument("--churn-seconds", type=float, default=5.0, help="0 skips the churn")
    parser.add_argument("--deflate", choices=("off", "on", "both"), default="both",
                        help="the runs without permessage-deflate, with it, or both (the default)")
    parser.add_argument("--open-timeout", type=float, default=120.0, help="seconds to open all connections")
    parser.add_argument("--broadcast-timeout", type=float, default=60.0, help="seconds for one broadcast")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds for the whole run")
    parser.add_argument("--workers", type=int, default=0,
                        help="server processes (default: as few as the per-process fd limit allows)")
    parser.add_argument("--json", help="write the results to this file")
    args = parser.parse_args()
    deadline = time.monotonic() + args.budget
    n = args.connections
    changes = prepare_system()
    if args.workers and -(-n // args.workers) > per_process_connections():
        raise SystemExit(f"{n:,} connections over {args.workers} worker(s) exceed {per_process_connections():,} "
                         "per process (the hard RLIMIT_NOFILE); use more workers")
    print(f"system: {system_settings()}; changed: {changes or 'nothing'}; "
          f"at most {per_process_connections():,} connections per process", file=sys.stderr, flush=True)
    results = []
    # Every server without deflate first, so a spent budget costs the deflate runs, not a server.
    for deflate in {"off": (False,), "on": (True,), "both": (False, True)}[args.deflate]:
        for name in args.only.split(","):
            earlier = [r for r in results if r["server"] == name]
            unopened = deflate and earlier and earlier[0]["failed"].startswith("open")
            reason = ("run budget spent" if time.monotonic() > deadline else
                      "not run: could not open them with deflate off" if unopened else None)
            if reason:
                results.append({"server": name, "deflate": deflate, "connections": n, "failed": reason})
                continue
            results.append(run_server(name, n, deflate, args, deadline))
    results.sort(key=lambda r: list(SERVERS).index(r["server"]))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"connections": n, "system": system_settings(), "changed": changes,
                                               "per_process_connections": per_process_connections(),
                                               "results": results}, indent=2))


if __name__ == "__main__":
    main()
