"""A WebSocket load client light enough that the server, not the client, is what gets measured.

Raw asyncio protocols, one per connection: the masked client frame is built once and written
again for every message; replies are counted by reading frame headers only (no unmasking, no
UTF-8 decoding, no buffering of payloads: server frames are unmasked). Each connection keeps
`depth` messages in flight. Shared by the echo benchmarks, with the helpers to run their servers.
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

JWT_SECRET = "handshake-benchmark-secret-" + "x" * 40  # HS256 key of every benchmark server's JWT routes


def client_frame(payload: bytes, opcode: int = 0x1, mask: bytes = b"\x37\xfa\x21\x3d") -> bytes:
    """One final, masked client frame (RFC 6455 section 5.2) carrying `payload`."""
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return header + mask + masked


CLOSE_FRAME = client_frame(struct.pack("!H", 1000), opcode=0x8)


class EchoLoad(asyncio.Protocol):
    """One connection: handshake, then keep `depth` copies of `frame` in flight and count replies.

    Replies are counted from their headers alone; payload bytes are skipped as they arrive, never
    buffered, so a 1 MiB echo costs the client no copy. A header split across reads is kept until
    it is complete.
    """

    def __init__(self, host: str, port: int, path: str, frame: bytes, depth: int) -> None:
        loop = asyncio.get_running_loop()
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode()
        self.frame = frame
        self.depth = depth
        self.received = 0
        self.running = True
        self.upgraded = loop.create_future()
        self.closed = loop.create_future()
        self.transport: asyncio.Transport | None = None
        self._response = bytearray()  # the 101 response, until complete
        self._header = bytearray()  # a reply header split across reads
        self._skip = 0  # payload bytes of the current reply still to arrive
        self._data_reply = False  # the current reply is an echo (not a control frame)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport.write(self.request)

    def start(self) -> None:
        self.transport.write(self.frame * self.depth)

    def stop(self) -> None:
        self.running = False
        self.transport.write(CLOSE_FRAME)

    def data_received(self, data: bytes) -> None:
        if not self.upgraded.done():
            self._response += data
            end = self._response.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self._response[:end]).split(b"\r\n", 1)[0]
            if b" 101 " not in status:
                self.upgraded.set_exception(ConnectionError(status.decode("latin-1")))
                return
            self.upgraded.set_result(None)
            data = bytes(self._response[end + 4 :])
        replies = self._count(data)
        if replies:
            self.received += replies
            if self.running:
                self.transport.write(self.frame * replies)

    def _count(self, data: bytes) -> int:
        """Replies completed by `data`; only headers are looked at."""
        replies = 0
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                taken = min(self._skip, end - pos)
                self._skip -= taken
                pos += taken
                if self._skip:
                    break
                replies += self._data_reply
                continue
            header = self._header
            before = len(header)
            header += data[pos : pos + 10]  # server frames are unmasked: at most 10 header bytes
            size = 2 if len(header) < 2 else 2 + {126: 2, 127: 8}.get(header[1] & 0x7F, 0)
            if len(header) < size:
                break
            pos += size - before
            opcode, length = header[0] & 0x0F, header[1] & 0x7F
            if length == 126:
                length = int.from_bytes(header[2:4], "big")
            elif length == 127:
                length = int.from_bytes(header[2:10], "big")
            header.clear()
            self._data_reply = opcode in (0x1, 0x2)
            if opcode == 0x8:
                self.running = False
            self._skip = length
            if not length:
                replies += self._data_reply
        return replies

    def connection_lost(self, exc: Exception | None) -> None:
        self.running = False
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed during the handshake"))
        if not self.closed.done():
            self.closed.set_result(None)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    """One measurement: throughput, and where the CPU went while it was taken."""

    rate: float  # messages echoed per second
    server_us: float  # server CPU microseconds per message (0 without the server's pid)
    server_load: float  # server CPU use over the run, 1.0 = one core busy
    client_load: float  # the same for this load process: near 1.0 means the client limits the figure


async def measure(host: str, port: int, path: str, *, payload: bytes, connections: int, depth: int,
                  warmup: float, duration: float, server_pid: int | None = None,
                  opcode: int = 0x1) -> Result:
    """Echo `payload` over `connections` for `warmup` + `duration` seconds; measure the last `duration`."""
    loop = asyncio.get_running_loop()
    frame = client_frame(payload, opcode)
    clients: list[EchoLoad] = []
    try:
        for _ in range(connections):
            _transport, client = await loop.create_connection(
                lambda: EchoLoad(host, port, path, frame, depth), host, port)
            clients.append(client)
        await asyncio.wait_for(asyncio.gather(*(c.upgraded for c in clients)), 10)
        for c in clients:
            c.start()
        await asyncio.sleep(warmup)
        before = sum(c.received for c in clients)
        cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
        own_before = cpu_seconds(os.getpid())
        started = time.perf_counter()
        await asyncio.sleep(duration)
        count = sum(c.received for c in clients) - before
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(server_pid) - cpu_before if server_pid else 0.0
        own_cpu = cpu_seconds(os.getpid()) - own_before
        for c in clients:
            c.stop()
        await asyncio.wait([c.closed for c in clients], timeout=2)
    finally:
        for c in clients:
            c.transport.abort()
    return Result(count / elapsed, server_cpu * 1e6 / count if count else 0.0,
                  server_cpu / elapsed, own_cpu / elapsed)


def wait_for_port(host: str, port: int, process: Any = None, timeout: float = 15) -> None:
    """Wait until a server listens on `port`; fail early if its `process` (a Popen) has exited."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        else:
            return


def stop_server(process: Any) -> None:
    """Stop a server subprocess (a Popen) as Ctrl-C would, killing it if it does not exit in 10 s."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_json(path: str | None, rows: list[dict[str, Any]]) -> None:
    """Write a benchmark's result rows to `path` (its --json option), for `python -m benchmarks` to plot."""
    if path:
        with open(path, "w") as file:
            json.dump(rows, file, indent=2)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


CLIENT_LOOPS = ("uvloop", "asyncio")


def run_client(main: Coroutine[Any, Any, Any], loop: str) -> Any:
    """Run a benchmark's client side on `loop`: "uvloop" (installed with bolt) or "asyncio"."""
    if loop == "uvloop":
        import uvloop

        return uvloop.run(main)
    return asyncio.run(main)
