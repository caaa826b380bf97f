"""Broadcast fan-out: one 100-byte message to N connections in one uvicorn process, one message at a time.

Compared side by side in one run, all on stock uvicorn (websockets-sansio) unless noted:

  bare             a plain ASGI app awaiting each connection's `send`: the most any ASGI framework
                   can do on this server, since every message goes through the server's send
  starlette        the hand-written loop from FastAPI's docs: `for ws in connections: await ws.send_text(msg)`
  channels         Django Channels' `group_send` with the InMemoryChannelLayer
  bolt             `await api.hub.broadcast(room, msg)` (memory backend)
  starlette+proto  the Starlette loop under bolt's own WebSocket protocol (`bolt run`'s default)
  bolt+proto       bolt under its own protocol, where a broadcast's frame is encoded once and
                   written to every socket as is (the `bolt.frames` extension)
  redis x2         bolt with the Redis backend, two worker processes, the connections split between them
                   (the broadcast is published by one worker and reaches the other through Redis)
  redis x2+proto   the same under bolt's own protocol
  redis x2 2cores+proto the same with the second worker on core 1 (beside the client): what a second
                   core adds when the 2-core machine also has to run the load client
  bolt 2cores+proto bolt+proto in one worker allowed on both cores, where `send_many` splits a
                   broadcast's sends over two threads
  cluster x2(+proto) the same on a 3-master Redis Cluster (redis+cluster://, SPUBLISH)
  bolt metrics(+proto) bolt with `BoltAPI(metrics="/metrics")`: what the Prometheus counters cost
  realtime(+proto) the room protocol of `api.realtime`: members join with a `join` message, and each
                   round is a client's `publish` that the endpoint parses, checks and broadcasts as an
                   envelope `{"room", "data"}` (on stock uvicorn, and under bolt's protocol); the
                   data is relayed as the client wrote it, or with "decoded", decoded for a
                   `can_publish` policy and encoded again

The servers run pinned to core 0 (`taskset -c 0`), the client to core 1. The client is raw non-blocking
sockets on one epoll loop that only counts bytes, so the server is what gets measured. A control
connection sends "go"; the server broadcasts; the round ends when every connection has the whole frame.
All servers run at once and take turns in a shuffled order, ten rounds each (--block), so a busy
moment on the machine hits them all alike while each server's turn runs with its own data in the
CPU caches, as it would alone in production (Channels, being slow, takes one round in ten). A turn
starts once the previous server has gone idle.

    python benchmarks/broadcast_bench.py [--connections 1000] [--messages 200] [--only bolt,starlette]

With --deflate the members offer permessage-deflate the way browsers do, so every server compresses
what it sends them (uvicorn's default is to accept the offer).

With --stalled, each server also gets one client that never reads, and 60 kB messages so the buffers
between it and the server (up to 4 MiB of kernel send buffer here) fill within a hundred rounds; 100
connections by default. A server whose broadcast waits on that client stops completing rounds.

Each server is also importable on its own: `uvicorn --factory benchmarks.broadcast_bench:make_bolt`.
"""

import argparse
import base64
import os
import random
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

from _load import client_frame, cpu_seconds, free_port, stop_server, wait_for_port, write_json  # noqa: E402

PAYLOAD = "x" * int(os.environ.get("BOLT_BENCH_PAYLOAD", "100"))
ROOM = "bench"


# -- the servers (each imported in its own uvicorn process) ------------------------------------------

def make_bare() -> Any:
    sends: list[Any] = []
    message = {"type": "websocket.send", "text": PAYLOAD}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        member = scope["path"] == "/ws"
        if member:
            sends.append(send)
        while (await receive())["type"] != "websocket.disconnect":
            if not member:
                for each in sends:
                    await each(message)
        if member:
            sends.remove(send)

    return app


def make_starlette() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    connections: list[WebSocket] = []

    async def member(websocket: WebSocket) -> None:
        await websocket.accept()
        connections.append(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            connections.remove(websocket)

    async def control(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                await websocket.receive_text()
                for connection in connections:  # the loop from FastAPI's docs
                    await connection.send_text(PAYLOAD)
        except WebSocketDisconnect:
            pass

    return Starlette(routes=[WebSocketRoute("/ws", member), WebSocketRoute("/control", control)])


def make_channels() -> Any:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False, SECRET_KEY="bench", INSTALLED_APPS=["channels"], ALLOWED_HOSTS=["*"],
        CHANNEL_LAYERS={"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}},
    )
    django.setup()
    from channels.generic.websocket import AsyncWebsocketConsumer
    from channels.routing import ProtocolTypeRouter, URLRouter
    from django.urls import path

    class Member(AsyncWebsocketConsumer):
        async def connect(self) -> None:
            await self.channel_layer.group_add(ROOM, self.channel_name)
            await self.accept()

        async def disconnect(self, code: int) -> None:
            await self.channel_layer.group_discard(ROOM, self.channel_name)

        async def room_message(self, event: dict[str, Any]) -> None:
            await self.send(text_data=event["text"])

    class Control(AsyncWebsocketConsumer):
        async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
            await self.channel_layer.group_send(ROOM, {"type": "room.message", "text": PAYLOAD})

    return ProtocolTypeRouter({"websocket": URLRouter([path("ws", Member.as_asgi()),
                                                       path("control", Control.as_asgi())])})


def make_bolt() -> Any:
    from bolt import BoltAPI, WebSocket

    api = BoltAPI(pubsub=os.environ.get("BOLT_BENCH_PUBSUB", "memory"),
                  metrics="/metrics" if os.environ.get("BOLT_BENCH_METRICS") else None)

    @api.websocket("/ws")
    async def member(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.join(ROOM)
        async for _ in websocket.iter_text():
            pass

    @api.websocket("/control")
    async def control(websocket: WebSocket) -> None:
        await websocket.accept()
        async for _ in websocket.iter_text():
            await api.hub.broadcast(ROOM, PAYLOAD)

    return api


def make_realtime(can_publish: Any = True) -> Any:
    from bolt import BoltAPI

    api = BoltAPI()
    api.realtime("/ws", can_join=True, can_publish=can_publish)
    api.realtime("/control", can_join=True, can_publish=can_publish)
    return api


def make_realtime_decoded() -> Any:
    """A policy that reads the data: every publish is decoded, then encoded again for the envelope."""
    return make_realtime(can_publish=lambda websocket, room, data: True)


BOLT_PROTOCOL = "bolt.protocol.uvicorn:WebSocketProtocol"
SERVERS = {  # name: (factory, --ws implementation, worker processes)
    "bare": ("make_bare", "websockets-sansio", 1),
    "starlette": ("make_starlette", "websockets-sansio", 1),
    "channels": ("make_channels", "websockets-sansio", 1),
    "bolt": ("make_bolt", "websockets-sansio", 1),
    "starlette+proto": ("make_starlette", BOLT_PROTOCOL, 1),
    "bolt+proto": ("make_bolt", BOLT_PROTOCOL, 1),
    "redis x2": ("make_bolt", "websockets-sansio", 2),
    "redis x2+proto": ("make_bolt", BOLT_PROTOCOL, 2),
    "redis x2 2cores+proto": ("make_bolt", BOLT_PROTOCOL, 2),
    "bolt 2cores+proto": ("make_bolt", BOLT_PROTOCOL, 1),
    "cluster x2": ("make_bolt", "websockets-sansio", 2),
    "cluster x2+proto": ("make_bolt", BOLT_PROTOCOL, 2),
    "bolt metrics": ("make_bolt", "websockets-sansio", 1),
    "bolt metrics+proto": ("make_bolt", BOLT_PROTOCOL, 1),
    "realtime": ("make_realtime", "websockets-sansio", 1),
    "realtime+proto": ("make_realtime", BOLT_PROTOCOL, 1),
    "realtime decoded+proto": ("make_realtime_decoded", BOLT_PROTOCOL, 1),
}


# -- the client --------------------------------------------------------------------------------------

# What browsers offer; servers that accept it compress every message to these clients.
DEFLATE_OFFER = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"


def _handshake(port: int, path: str, receive_buffer: int | None = None, deflate: bool = False) -> socket.socket:
    sock = socket.socket()
    if receive_buffer is not None:  # set before connecting, so the TCP window starts small
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"{DEFLATE_OFFER if deflate else ''}\r\n").encode())
    # Read the response head and nothing after it: a server may send its first message at once.
    while True:
        peeked = sock.recv(4096, socket.MSG_PEEK)
        if not peeked:
            raise ConnectionError(f"handshake on {path} failed")
        end = peeked.find(b"\r\n\r\n")
        if end >= 0:
            response = sock.recv(end + 4)
            break
        time.sleep(0.001)
    if not response.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake on {path} refused: {response[:80]!r}")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _start_redis() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(["taskset", "-c", "0", "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
    wait_for_port("127.0.0.1", port, process, timeout=30)
    return process, f"redis://127.0.0.1:{port}/0"


def _start_cluster(directory: str) -> tuple[list[subprocess.Popen[bytes]], str]:
    """Three Redis Cluster masters (no replicas) on core 0, like the single Redis; their files in `directory`."""
    ports, processes = [], []
    while len(ports) < 3:
        port = free_port()
        if port < 55000 and port not in ports:
            ports.append(port)
    for port in ports:
        processes.append(subprocess.Popen(
            ["taskset", "-c", "0", "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
             "--dir", directory], stdout=subprocess.DEVNULL))
        wait_for_port("127.0.0.1", port, processes[-1], timeout=30)
    subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in ports), "--cluster-yes"],
                   capture_output=True, timeout=60, check=True)
    deadline = time.monotonic() + 30
    while b"cluster_state:ok" not in subprocess.run(["redis-cli", "-p", str(ports[0]), "cluster", "info"],
                                                    capture_output=True, timeout=10).stdout:
        if time.monotonic() > deadline:
            raise TimeoutError("the Redis Cluster was not ok after 30 s")
        time.sleep(0.1)
    return processes, "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in ports)


def _frame_size(data: bytes) -> int:
    """The size of the server frame `data` starts with (2 while even its length is unknown)."""
    if len(data) < 2:
        return 2
    n = data[1] & 0x7F
    if n < 126:
        return 2 + n
    extra = 2 if n == 126 else 8
    if len(data) < 2 + extra:
        return 2 + extra
    return 2 + extra + int.from_bytes(data[2:2 + extra], "big")


class Target:
    """One server under test (one or two worker processes) with its member sockets and control socket."""

    def __init__(self, name: str, connections: int, stalled: bool = False, deflate: bool = False) -> None:
        self.name = name
        self.connections = connections
        self.stalled = stalled
        self.deflate = deflate
        self.stuck_after: int | None = None
        self.processes: list[subprocess.Popen[bytes]] = []
        self.sockets: list[socket.socket] = []
        self.latencies: list[float] = []
        self.cpu = 0.0  # server CPU seconds (every process) during the recorded rounds
        self.rounds = 0
        self.directory: str | None = None  # a Redis Cluster's files

    def start(self) -> None:
        factory, ws_impl, workers = SERVERS[self.name]
        env = dict(os.environ, PYTHONPATH=ROOT)
        if self.name.startswith("cluster"):
            import tempfile

            self.directory = tempfile.mkdtemp(prefix="bolt-bench-cluster-")
            cluster, env["BOLT_BENCH_PUBSUB"] = _start_cluster(self.directory)
            self.processes.extend(cluster)
        elif workers > 1:
            redis_process, env["BOLT_BENCH_PUBSUB"] = _start_redis()
            self.processes.append(redis_process)
        if "metrics" in self.name:
            env["BOLT_BENCH_METRICS"] = "1"
        ports = []
        for worker in range(workers):  # every worker on core 0, like the single-process servers, unless "2cores"
            port = free_port()
            cores = ("0,1" if workers == 1 else str(worker % 2)) if "2cores" in self.name else "0"
            self.processes.append(subprocess.Popen(
                ["taskset", "-c", cores, sys.executable, "-m", "uvicorn", "--factory",
                 f"benchmarks.broadcast_bench:{factory}", "--host", "127.0.0.1", "--port", str(port),
                 "--ws", ws_impl, "--ws-ping-interval", "0", "--log-level", "warning", "--no-access-log"], cwd=ROOT, env=env))
            wait_for_port("127.0.0.1", port, self.processes[-1], timeout=30)
            ports.append(port)
        # The stalled client joins first, so a loop over members in join order meets it first.
        self.stalled_socket = _handshake(ports[0], "/ws", receive_buffer=4096) if self.stalled else None
        self.sockets = [_handshake(ports[i % workers], "/ws", deflate=self.deflate) for i in range(self.connections)]
        self.control = _handshake(ports[0], "/control")
        self.go = GO
        if factory.startswith("make_realtime"):
            self._join_rooms()
        # Edge-triggered: one event when a frame lands in a socket's receive buffer, and no read needed
        # to see it. The client then costs a few epoll calls per round instead of a recv per connection,
        # so it is not what limits the measurement; the buffers are drained between rounds, untimed.
        self.epoll = select.epoll()
        for sock in self.sockets:
            sock.setblocking(False)
            self.epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLET)

    def _join_rooms(self) -> None:
        """Room-protocol members: read the hello, join the room (no ref: no reply); the control publishes."""
        join = client_frame(b'{"type":"join","room":"%s"}' % ROOM.encode())
        for sock in [*self.sockets, self.control]:
            hello = b""
            while len(hello) < _frame_size(hello):
                hello += sock.recv(65536)
            sock.sendall(join)
        self.go = client_frame(b'{"type":"publish","room":"%s","data":"%s"}' % (ROOM.encode(), PAYLOAD.encode()))

    def settle(self, timeout: float = 2.0) -> None:
        """Wait until this server's processes have stopped using CPU, so the next server's turn has the core."""
        pids = [process.pid for process in self.processes]
        deadline = time.monotonic() + timeout
        used = sum(cpu_seconds(pid) for pid in pids)
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = sum(cpu_seconds(pid) for pid in pids)
            if now == used:
                return
            used = now

    def round(self, record: bool) -> None:
        """Broadcast one message and wait until it has reached every connection's socket."""
        arrived: set[int] = set()
        poll, connections = self.epoll.poll, self.connections
        deadline = time.monotonic() + (5 if self.stalled else 60)
        cpu = self._cpu() if record else 0.0
        started = time.perf_counter()
        self.control.sendall(self.go)
        while len(arrived) < connections:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {connections - len(arrived)} connections still waiting")
            for fd, _ in poll(0):
                arrived.add(fd)
            # Sleeping (rather than blocking in epoll) means the server's sends wake no one: each round
            # measures the server's own cost, give or take this 0.2 ms granularity.
            time.sleep(0.0002)
        elapsed = time.perf_counter() - started
        self.rounds += 1
        if record:
            self.latencies.append(elapsed)
            self.cpu += self._cpu() - cpu
        self._drain()

    def _cpu(self) -> float:
        # Counted in clock ticks: one round is shorter than a tick, but the sum over many is fair.
        return sum(cpu_seconds(process.pid) for process in self.processes)

    def _drain(self) -> None:
        for sock in self.sockets:
            data = b""
            while len(data) < _frame_size(data):  # a whole frame, as the round promised
                try:
                    data += sock.recv(65536)
                except BlockingIOError:
                    select.select([sock], [], [], 5.0)
            if len(data) != _frame_size(data):
                raise RuntimeError(f"{self.name}: expected one frame, got {len(data)} bytes: {data[:16]!r}")
            if self.deflate == (data[0] & 0x40 == 0) and len(PAYLOAD) > 16:
                raise RuntimeError(f"{self.name}: compression {'expected' if self.deflate else 'unexpected'}")

    def result(self) -> dict[str, Any]:
        latencies = sorted(self.latencies) or [float("inf")]
        return {
            "server": self.name, "messages": len(self.latencies), "stuck_after": self.stuck_after,
            "rounds": self.rounds,
            "deliveries_per_s": self.connections * len(latencies) / sum(latencies),
            "cpu_us_per_delivery": self.cpu / max(1, self.connections * len(self.latencies)) * 1e6,
            "p50_ms": statistics.median(latencies) * 1000,
            "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        }

    def stop(self) -> None:
        for sock in self.sockets + ([self.stalled_socket] if self.stalled_socket else []):
            sock.close()
        for process in reversed(self.processes):
            stop_server(process)
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)


GO = client_frame(b"go")


def run(names: list[str], connections: int, messages: int, warmup: int,
        stalled: bool = False, block: int = 10, deflate: bool = False) -> list[dict[str, Any]]:
    """Start every server, then interleave their turns so all of them see the same machine load."""
    targets = [Target(name, connections, stalled, deflate) for name in names]
    try:
        for target in targets:
            target.start()
        time.sleep(1.0)  # let every handler reach its join
        shuffle = random.Random(0).shuffle  # a new order each turn: no server always follows the same one
        order = list(targets)
        for first in range(0, warmup + messages, block):
            shuffle(order)
            for target in order:
                for round_ in range(first, min(first + block, warmup + messages)):
                    # Channels is ~20x slower: one round in ten keeps the run bounded.
                    if target.stuck_after is not None or (target.name == "channels" and round_ % 10):
                        continue
                    try:
                        target.round(record=round_ >= warmup)
                    except TimeoutError:
                        if not stalled:
                            raise
                        target.stuck_after = target.rounds  # the next round never reached everyone
                target.settle()  # what it still does after its last round (Channels has plenty) is not the next one's
        return [target.result() for target in targets]
    finally:
        for target in targets:
            target.stop()


def _has_bolt_protocol() -> bool:
    try:
        from bolt.protocol.uvicorn import WebSocketProtocol  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=None, help="1000 (100 with --stalled)")
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--block", type=int, default=10, help="rounds per server per turn")
    parser.add_argument("--deflate", action="store_true",
                        help="members offer permessage-deflate, as browsers do (servers then compress)")
    parser.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(SERVERS))
    parser.add_argument("--stalled", action="store_true", help="add a client that never reads (4 KiB messages)")
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()
    if args.stalled and "BOLT_BENCH_PAYLOAD" not in os.environ:
        os.environ["BOLT_BENCH_PAYLOAD"] = "60000"  # inherited by the servers; re-exec so ours matches
        os.execv(sys.executable, [sys.executable, *sys.argv])
    names = [n for n in args.only.split(",") if n] or [
        n for n in SERVERS
        if (not n.endswith("+proto") or _has_bolt_protocol())
        and (not n.startswith(("redis", "cluster")) or shutil.which("redis-server"))]
    os.sched_setaffinity(0, {1})  # the client on core 1, the servers on core 0
    args.connections = args.connections or (100 if args.stalled else 1000)
    results = run(names, args.connections, args.messages, args.warmup, args.stalled, args.block, args.deflate)
    write_json(args.json, [dict(r, connections=args.connections, deflate=args.deflate) for r in results])
    if args.stalled:
        for r in results:
            verdict = ("every round reached every reader" if r["stuck_after"] is None else
                       f"stuck: round {r['stuck_after'] + 1} never reached the {args.connections} readers")
            print(f"{r['server']:<16} {verdict} ({r['rounds']} rounds completed)")
        return
    for r in results:
        print(f"{r['server']:<16} {r['deliveries_per_s']:>12,.0f} deliveries/s  p50 {r['p50_ms']:7.2f} ms"
              f"  p99 {r['p99_ms']:7.2f} ms  server CPU {r['cpu_us_per_delivery']:5.2f} us/delivery"
              f"  ({r['messages']} messages)", flush=True)
    by_name = {r["server"]: r for r in results}
    print()
    print("| server | deliveries/s | p50 to all (ms) | p99 to all (ms) | server CPU per delivery (us) "
          "| vs starlette | vs channels | CPU vs starlette |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        def ratio(other: str) -> str:
            if other not in by_name:
                return "-"
            return f"{r['deliveries_per_s'] / by_name[other]['deliveries_per_s']:.2f}x"

        starlette = by_name.get("starlette")
        cpu_ratio = (f"{starlette['cpu_us_per_delivery'] / r['cpu_us_per_delivery']:.2f}x"
                     if starlette and r["cpu_us_per_delivery"] else "-")
        print(f"| {r['server']} | {r['deliveries_per_s']:,.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
              f"{r['cpu_us_per_delivery']:.2f} | {ratio('starlette')} | {ratio('channels')} | {cpu_ratio} |")


if __name__ == "__main__":
    main()
