"""SharedMessage: the frame it shares must be, byte for byte, what the connection itself would send."""

from __future__ import annotations

import random

import pytest

from bolt.protocol import DeflateOptions, ServerConnection, SharedMessage

from .helpers import parse_server_frames, request_bytes
from .test_deflate import deflated, inflate

OFFERS = [
    ("permessage-deflate", DeflateOptions()),
    ("permessage-deflate; server_max_window_bits=10", DeflateOptions()),
    ("permessage-deflate", DeflateOptions(level=1, mem_level=8)),
    ("permessage-deflate", DeflateOptions(compress_min_size=64)),
]


def payloads() -> list[str]:
    rng = random.Random(7)
    words = ["price", "room", "é", "€", "🙂", "0", "{", '"id":', " "]
    return ["", "x", "x" * 63, "x" * 64, "hello " * 300] + [
        "".join(rng.choice(words) for _ in range(rng.randrange(1, 400))) for _ in range(30)]


def test_plain_connections_share_one_frame() -> None:
    conn = ServerConnection()
    conn.receive_data(request_bytes())
    conn.accept()
    for text in payloads():
        message = SharedMessage(text)
        assert message.frame_for(None) == conn.send_text(text)
        assert message.frame_for(None) is message.frame_for(None)  # built once
    data = bytes(range(256)) * 300
    assert SharedMessage(data).frame_for(None) == conn.send_bytes(data)


@pytest.mark.parametrize("offer, options", OFFERS)
def test_compressed_frame_is_what_the_connection_would_send(offer: str, options: DeflateOptions) -> None:
    one, _ = deflated(ServerConnection(), offer, options)
    other, _ = deflated(ServerConnection(), offer, options)
    for text in payloads():
        message = SharedMessage(text)
        frame = message.frame_for(one.extension)
        assert frame == one.send_text(text) == other.send_text(text)
        assert message.frame_for(other.extension) is frame  # compressed once for both
    data = bytes(range(256)) * 300
    assert SharedMessage(data).frame_for(one.extension) == one.send_bytes(data)


def test_connections_with_other_settings_get_their_own_compression() -> None:
    default, _ = deflated(ServerConnection(), "permessage-deflate", DeflateOptions())
    narrow, _ = deflated(ServerConnection(), "permessage-deflate; server_max_window_bits=9", DeflateOptions())
    message = SharedMessage("abc" * 1000)
    a, b = message.frame_for(default.extension), message.frame_for(narrow.extension)
    assert a is not None and b is not None and a is not b
    for frame in (a, b):
        ((opcode, fin, rsv, payload),) = parse_server_frames(frame)
        assert (opcode, fin, rsv) == (0x1, True, 0x40)
        assert inflate(payload) == b"abc" * 1000


def test_a_connection_that_keeps_its_compression_context_is_refused() -> None:
    options = DeflateOptions(client_no_context_takeover=False, server_no_context_takeover=False)
    conn, _ = deflated(ServerConnection(), "permessage-deflate", options)
    assert conn.extension is not None and conn.extension.shared_key is None
    assert SharedMessage("x" * 100).frame_for(conn.extension) is None
