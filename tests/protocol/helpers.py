"""Client-side frames and an opened engine, for the protocol tests."""

from __future__ import annotations

import base64
import os
import struct

from bolt.protocol import ServerConnection

KEY = base64.b64encode(b"0123456789abcdef")


def request_bytes(*extra: str, key: bytes = KEY, target: str = "/chat?x=1") -> bytes:
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: example.com",
        "Upgrade: websocket",
        "Connection: keep-alive, Upgrade",
        "Sec-WebSocket-Key: " + key.decode(),
        "Sec-WebSocket-Version: 13",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def client_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    masked: bool = True,
    key: bytes | None = None,
) -> bytes:
    """A frame as a client sends it: masked, with the shortest length encoding."""
    b0 = (0x80 if fin else 0) | rsv | opcode
    n = len(payload)
    mbit = 0x80 if masked else 0
    if n < 126:
        head = bytes((b0, mbit | n))
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not masked:
        return head + payload
    key = key if key is not None else os.urandom(4)
    masked_payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) if n < 4096 else _mask_big(payload, key)
    return head + key + masked_payload


def _mask_big(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def parse_server_frames(data: bytes) -> list[tuple[int, bool, int, bytes]]:
    """Split unmasked server output into (opcode, fin, rsv, payload)."""
    out = []
    pos = 0
    while pos < len(data):
        b0, b1 = data[pos], data[pos + 1]
        assert not b1 & 0x80, "server frames must not be masked"
        n = b1 & 0x7F
        pos += 2
        if n == 126:
            n = struct.unpack_from("!H", data, pos)[0]
            pos += 2
        elif n == 127:
            n = struct.unpack_from("!Q", data, pos)[0]
            pos += 8
        out.append((b0 & 0x0F, bool(b0 & 0x80), b0 & 0x70, data[pos : pos + n]))
        pos += n
    return out


def close_code_of(data: bytes) -> int:
    frames = parse_server_frames(data)
    assert frames and frames[-1][0] == 0x8, frames
    payload = frames[-1][3]
    return int.from_bytes(payload[:2], "big") if payload else 1005


def open_connection(*extra: str, **kwargs) -> ServerConnection:
    conn = ServerConnection(**kwargs)
    events = conn.receive_data(request_bytes(*extra))
    assert len(events) == 1
    conn.accept()
    return conn
