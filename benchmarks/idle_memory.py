"""Server memory held by idle WebSocket connections, with and without permessage-deflate.

Starts uvicorn serving ``benchmarks/echo_app.py`` in a subprocess, opens N connections from
raw asyncio sockets (each does the handshake, sends one message and reads the echo, so any
compression state has been used), waits, and reads the server's RSS from /proc.

    python benchmarks/idle_memory.py                      # bolt, 10,000 connections
    python benchmarks/idle_memory.py --impls bolt,websockets-sansio,wsproto -n 2000

Linux only. Raises the open-file limit for itself and the server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import subprocess
import sys
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from _load import free_port, stop_server, wait_for_port, write_json  # noqa: E402

IMPLS = {"bolt": "bolt.protocol:WebSocketProtocol", "websockets-sansio": "websockets-sansio", "wsproto": "wsproto"}
MESSAGE = b'{"type": "chat", "room": "lobby", "text": "hello, is anybody out there?", "seq": 1}'


def raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, needed))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        sys.exit(f"need {needed} open files, the hard limit is {hard}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def frame(payload: bytes, rsv1: bool) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    head = bytes((0x81 | (0x40 if rsv1 else 0), 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


async def open_one(port: int, deflate: bool, keep: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if deflate else ""
    writer.write(
        f"GET /idle HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(head[:80])
    negotiated = b"permessage-deflate" in head.lower()
    payload = MESSAGE
    if negotiated:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = (c.compress(MESSAGE) + c.flush(zlib.Z_SYNC_FLUSH))[:-4]
    writer.write(frame(payload, negotiated))
    b0, b1 = await reader.readexactly(2)
    await reader.readexactly(b1 & 0x7F)
    keep.append((reader, writer, negotiated))


async def measure(impl: str, deflate: bool, n: int, settle: float, ping_interval: float) -> dict:
    port = free_port()
    cmd = [
        sys.executable, "-m", "uvicorn", "benchmarks.echo_app:app", "--ws", IMPLS[impl], "--port", str(port),
        "--host", "127.0.0.1", "--log-level", "warning", "--no-access-log", "--lifespan", "off",
        "--ws-per-message-deflate", "true" if deflate else "false", "--backlog", "4096",
        "--ws-ping-interval", str(ping_interval), "--ws-ping-timeout", str(max(20.0, ping_interval)),
    ]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=ROOT)
    keep: list = []
    try:
        wait_for_port("127.0.0.1", port, server)
        await asyncio.sleep(0.5)
        before = rss_kib(server.pid)
        sem = asyncio.Semaphore(200)

        async def bounded() -> None:
            async with sem:
                await asyncio.wait_for(open_one(port, deflate, keep), 30)

        started = time.perf_counter()
        await asyncio.gather(*(bounded() for _ in range(n)))
        opened = time.perf_counter() - started
        await asyncio.sleep(settle)
        after = rss_kib(server.pid)
        return {
            "impl": impl,
            "deflate": deflate,
            "negotiated": sum(1 for *_, neg in keep if neg),
            "connections": len(keep),
            "rss_before_mib": before / 1024,
            "rss_after_mib": after / 1024,
            "per_conn_kib": (after - before) / max(1, len(keep)),
            "open_seconds": opened,
        }
    finally:
        for _, writer, _ in keep:
            writer.transport.abort()
        stop_server(server)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", "--connections", type=int, default=10_000)
    parser.add_argument("--impls", default="bolt", help="comma-separated: " + ", ".join(IMPLS))
    parser.add_argument("--settle", type=float, default=2.0, help="seconds idle before measuring")
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=20.0,
        help="server keepalive interval; bolt frees idle compressors on this tick (settle > 2x to see it)",
    )
    parser.add_argument("--json", help="also write the result rows to this file")
    args = parser.parse_args()
    raise_fd_limit(args.connections + 1000)
    header = ("protocol", "deflate", "conns", "negotiated", "RSS before", "RSS after", "per conn")
    print("{:<20}{:<9}{:>7}{:>11}{:>12}{:>11}{:>11}".format(*header))
    rows = []
    for impl in args.impls.split(","):
        for deflate in (False, True):
            r = await measure(impl, deflate, args.connections, args.settle, args.ping_interval)
            rows.append(r)
            print(
                f"{r['impl']:<20}{'on' if deflate else 'off':<9}{r['connections']:>7}{r['negotiated']:>11}"
                f"{r['rss_before_mib']:>9.1f} MiB{r['rss_after_mib']:>7.1f} MiB{r['per_conn_kib']:>7.1f} KiB",
                flush=True,
            )

    write_json(args.json, rows)


if __name__ == "__main__":
    asyncio.run(main())
