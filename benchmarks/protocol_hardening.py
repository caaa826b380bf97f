"""Attacks from issue 11 against bolt's protocol, measured: ping flood, evicted slow consumers, slowloris.

    python benchmarks/protocol_hardening.py [--ping-mib 1024] [--clients 20]

Run it from a checkout (or with PYTHONPATH pointing at one) to measure that checkout; BOLT_NO_ACCEL=1
measures the pure-Python build. Every part stops by itself.

- ping flood: a client that never reads sends --ping-mib MiB of 125-byte pings to an echo server
  (`uvicorn --ws bolt.protocol:WebSocketProtocol`, its own process); server RSS before and after.
- eviction: --clients clients join a room and stop reading (4 KiB receive buffers; the server's
  sockets get 16 KiB send buffers, so its kernel queues fill fast); broadcasts of 64 KiB until the
  hub evicts them (a send blocked 0.5 s). Then the close code each client reads once it reads again
  right after its eviction, and, with close_timeout = 0.5 s, how many server sockets are still
  ESTABLISHED 5 s after the last eviction.
- slowloris: 20 sockets trickle a request head a header line at a time: seconds until the server
  closes them, under plain uvicorn and under `bolt run` (35 s at most).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import uvicorn

ROOT = Path(__file__).resolve().parents[1]
REQUEST = (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int) -> None:
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listening on {port}")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def ping_frame(payload: bytes) -> bytes:
    key = b"\x01\x02\x03\x04"
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return bytes((0x89, 0x80 | len(payload))) + key + masked


def stalled(port: int, target: bytes = REQUEST) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(target)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    return sock


def ping_flood(mib: int) -> None:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "uvicorn", "benchmarks.echo_app:app", "--ws",
                               "bolt.protocol:WebSocketProtocol", "--port", str(port), "--log-level", "error",
                               "--lifespan", "off"], cwd=ROOT)
    try:
        wait_for(port)
        sock = stalled(port)
        before = rss_mib(server.pid)
        chunk = ping_frame(b"p" * 125) * 8192  # 1 MiB of pings per write
        sock.settimeout(60)
        sent = 0
        started = time.monotonic()
        try:
            while sent < mib << 20 and time.monotonic() - started < 300:
                sock.sendall(chunk)
                sent += len(chunk)
        except OSError as exc:
            print(f"  the server stopped taking pings after {sent >> 20} MiB: {exc!r}")
        time.sleep(1)
        print(f"ping flood: {sent >> 20} MiB of pings from a client that never reads: "
              f"server RSS {before:.0f} -> {rss_mib(server.pid):.0f} MiB")
        sock.close()
    finally:
        server.terminate()
        server.wait(10)


def established(port: int) -> int:
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
            count += 1
    return count


async def read_close_code(sock: socket.socket) -> str:
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        while True:
            b0, b1 = await asyncio.wait_for(reader.readexactly(2), 15)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await reader.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(n)
            if b0 & 0x0F == 0x8:
                return f"{struct.unpack('!H', payload[:2])[0]} {payload[2:].decode()!r}"
    except (asyncio.IncompleteReadError, ConnectionResetError):
        return "no close frame (reset or EOF)"
    except TimeoutError:
        return "nothing within 15 s"
    finally:
        writer.close()


async def eviction(clients: int) -> None:
    from bolt import BoltAPI
    from bolt.protocol import WebSocketProtocol

    sys.path.insert(0, str(ROOT / "tests"))
    from demo_apps import room_api  # the app tests/protocol/test_hardening.py evicts

    class QuickClose(WebSocketProtocol):
        close_timeout = 0.5

    api = room_api(BoltAPI(send_queue=4, send_timeout=0.5))

    for quick in (False, True):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)  # accepted sockets inherit it
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(api, ws=QuickClose if quick else WebSocketProtocol, lifespan="off",
                                log_level="critical", ws_ping_interval=None)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        socks = [await loop.run_in_executor(None, stalled, port) for _ in range(clients)]
        while api.hub.health()["connections"] < clients:
            await asyncio.sleep(0.01)
        started = time.monotonic()
        while api.hub.health()["connections"] and time.monotonic() - started < 30:
            await api.hub.broadcast("room", "x" * 65536)
            await asyncio.sleep(0.01)
        if quick:
            await asyncio.sleep(5)
            print(f"eviction: {clients} clients evicted in {time.monotonic() - started - 5:.1f} s; 5 s later "
                  f"{established(port)} server sockets ESTABLISHED (close_timeout 0.5 s)")
            for sock in socks:
                sock.close()
        else:
            codes = await asyncio.gather(*(read_close_code(sock) for sock in socks))
            seen: dict[str, int] = {}
            for code in codes:
                seen[code] = seen.get(code, 0) + 1
            print(f"eviction: close seen by {clients} evicted clients reading again: {seen}")
        server.should_exit = True
        server.force_exit = True
        try:
            await asyncio.wait_for(task, 15)
        except TimeoutError:
            task.cancel()
            print("  (server did not stop within 15 s: sockets still held)")
        for connection in list(server.server_state.connections):
            connection.transport.abort()
        listener.close()


async def trickle(port: int, limit: float) -> float | None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
    try:
        while time.monotonic() - started < limit:
            writer.write(b"X: y\r\n")
            try:
                await asyncio.wait_for(reader.read(), 0.5)
                return time.monotonic() - started
            except TimeoutError:
                continue
    except ConnectionError:
        return time.monotonic() - started
    finally:
        writer.close()
    return None


async def slowloris() -> None:
    for name, command in [
        ("plain uvicorn", ["-m", "uvicorn", "--ws", "bolt.protocol:WebSocketProtocol", "benchmarks.echo_app:app"]),
        ("bolt run", ["-m", "bolt.cli", "run", "benchmarks.echo_app:app"]),
    ]:
        port = free_port()
        server = subprocess.Popen([sys.executable, *command, "--port", str(port), "--log-level", "error"], cwd=ROOT)
        try:
            wait_for(port)
            times = await asyncio.gather(*(trickle(port, 35) for _ in range(20)))
            closed = [t for t in times if t is not None]
            text = f"closed after {min(closed):.1f}-{max(closed):.1f} s" if closed else "none closed"
            print(f"slowloris, {name}: {len(closed)}/20 trickling sockets closed within 35 s ({text})")
        finally:
            server.terminate()
            server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ping-mib", type=int, default=1024)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--only", choices=["ping", "eviction", "slowloris"])
    args = parser.parse_args()
    import bolt.accel

    print(f"bolt from {Path(bolt.accel.__file__).parents[1]}, accelerator {bolt.accel.ENABLED}, "
          f"BOLT_NO_ACCEL={os.environ.get('BOLT_NO_ACCEL', '')}")
    if args.only in (None, "ping"):
        ping_flood(args.ping_mib)
    if args.only in (None, "eviction"):
        asyncio.run(eviction(args.clients))
    if args.only in (None, "slowloris"):
        asyncio.run(slowloris())


if __name__ == "__main__":
    main()
