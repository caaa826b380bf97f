"""Where a broadcast's time goes per recipient: bolt's hub, asyncio's transport, and the send() syscall.

    python benchmarks/fanout_profile.py [--connections 1000] [--rounds 15]

In one process, on real loopback TCP sockets that nobody reads during a round (they are drained
between rounds), it times per recipient:

  hub, no socket       `hub.deliver` to outboxes whose writer is bolt's `write_shared` over a
                       transport that drops the frame: the framework's own cost
  transport.write      the same with each connection's asyncio transport writing the frame (how
                       broadcasts were written before `send_many`)
  send_many            the same with the frames held and written by `bolt.accel.send_many` at flush
  send() alone         `bolt.accel.send_many` on the sockets, nothing else: the kernel's share

Run it pinned to one core (`taskset -c 0`) for steadier figures. `BOLT_NO_ACCEL=1` measures the
pure-Python `send_many`. The protocol objects are bolt's `WebSocketProtocol`, set up as an open
connection without a handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from typing import Any

from bolt import accel
from bolt.protocol.uvicorn import WebSocketProtocol
from bolt.realtime.hub import Hub
from bolt.realtime.messages import Message
from bolt.realtime.outbox import Outbox, OutboxSettings


class _Plain:
    extension = None  # no permessage-deflate: every recipient shares the plain frame


class _Dropping:
    """A transport that takes every frame and sends nothing."""

    write = staticmethod(len)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False


def _hub(transports: list[Any], fds: list[int]) -> Hub:
    """A hub whose room "r" holds one outbox per transport, written through bolt's protocol."""
    hub = Hub()
    members = {}
    for n, (transport, fd) in enumerate(zip(transports, fds)):
        protocol = WebSocketProtocol.__new__(WebSocketProtocol)  # an open connection, no handshake
        protocol._open, protocol._write_paused, protocol.conn = True, False, _Plain()
        protocol._held, protocol._queue = None, []  # no replies held, no messages waiting for the app
        protocol.transport, protocol._fd = transport, fd
        members[str(n)] = Outbox(None, OutboxSettings(), lambda why: None, protocol.write_shared)  # type: ignore[arg-type]
    hub._rooms["r"] = members  # type: ignore[assignment]
    return hub


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    n = args.connections

    accepted: list[asyncio.Transport] = []

    class Server(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.append(transport)  # type: ignore[arg-type]

    server = await asyncio.get_running_loop().create_server(Server, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clients = []
    for _ in range(n):
        clients.append(socket.create_connection(("127.0.0.1", port)))
        clients[-1].setblocking(False)
        if len(clients) % 50 == 0:
            await asyncio.sleep(0.01)  # let the server accept within its backlog
    while len(accepted) < n:
        await asyncio.sleep(0.01)
    fds = [transport.get_extra_info("socket").fileno() for transport in accepted]

    def drain() -> None:
        for client in clients:
            try:
                while client.recv(1 << 20):
                    pass
            except BlockingIOError:
                pass

    message = Message.from_value("x" * 100)
    frame = bytes((0x81, 100)) + b"x" * 100
    cases: dict[str, Any] = {
        "hub, no socket": _hub([_Dropping()] * n, [-1] * n),
        "transport.write": _hub(accepted, [-1] * n),
        "send_many": _hub(accepted, fds),
    }
    timings: dict[str, list[float]] = {name: [] for name in [*cases, "send() alone"]}
    for _ in range(args.rounds):
        for name, hub in cases.items():
            drain()
            started = time.perf_counter()
            hub.deliver("r", message)
            timings[name].append((time.perf_counter() - started) / n * 1e6)
        drain()
        started = time.perf_counter()
        accel.send_many(fds, frame)
        timings["send() alone"].append((time.perf_counter() - started) / n * 1e6)
    print(f"{n} recipients, 100 B, {'Rust' if accel.ENABLED else 'pure-Python'} send_many")
    for name, values in timings.items():
        print(f"{name:<18} min {min(values):5.2f} us  median {statistics.median(values):5.2f} us per recipient")
    for client in clients:
        client.close()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
