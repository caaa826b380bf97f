"""permessage-deflate (RFC 7692): negotiation, round trips, bombs, memory policy."""

from __future__ import annotations

import zlib

import pytest

from bolt.protocol import ConnectionFailed, ConnectionState, DeflateOptions, ServerConnection

from .helpers import client_frame, parse_server_frames, request_bytes

TEXT, BINARY, CONT = 0x1, 0x2, 0x0
RSV1 = 0x40


def deflated(conn: ServerConnection, offer: str, options: DeflateOptions | None = None) -> tuple[ServerConnection, str]:
    conn.deflate_options = options or DeflateOptions()
    conn.receive_data(request_bytes(f"Sec-WebSocket-Extensions: {offer}"))
    head = conn.accept().decode()
    line = [h for h in head.split("\r\n") if h.startswith("sec-websocket-extensions")]
    return conn, line[0].split(": ", 1)[1] if line else ""


def client_compress(data: bytes, c: zlib._Compress | None = None) -> bytes:
    c = c or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(payload: bytes, d: zlib._Decompress | None = None) -> bytes:
    d = d or zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


@pytest.mark.parametrize(
    ("offer", "answer"),
    [
        ("permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        (
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12",
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10",
        ),
        (
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9",
        ),
        # Unusable offers are declined one by one; the next acceptable one wins.
        (
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; foo, permessage-deflate",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("permessage-deflate; server_max_window_bits=16", ""),
        # RFC 7692 7.1.2: a decimal 8 to 15 without a leading zero; anything else declines the offer.
        ("permessage-deflate; server_max_window_bits=09", ""),
        ("permessage-deflate; client_max_window_bits=+9", ""),
        ("permessage-deflate; server_max_window_bits", ""),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", ""),
        ("x-webkit-deflate-frame", ""),
    ],
)
def test_negotiation(offer: str, answer: str) -> None:
    _, got = deflated(ServerConnection(), offer)
    assert got == answer


@pytest.mark.parametrize("value", [b"\xb9", b"\xb2", b"1\xb3", b"\xd9\xa9"])
def test_a_window_size_in_non_ascii_digits_declines_the_offer(value: bytes) -> None:
    # Latin-1 superscripts and Arabic-Indic digits are digits to str.isdigit(), not to RFC 7692.
    conn = ServerConnection()
    conn.deflate_options = DeflateOptions()
    conn.receive_data(request_bytes("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=BITS")
                      .replace(b"BITS", value))
    assert b"sec-websocket-extensions" not in conn.accept()


def test_connections_that_agree_alike_share_their_terms() -> None:
    # An idle connection keeps only a reference to what it agreed, not a copy of it.
    one, _ = deflated(ServerConnection(), "permessage-deflate")
    two, _ = deflated(ServerConnection(), "permessage-deflate")
    other, _ = deflated(ServerConnection(), "permessage-deflate; server_max_window_bits=10")
    assert one.extension is not None and two.extension is not None and other.extension is not None
    assert one.extension is not two.extension
    assert one.extension.terms is two.extension.terms
    assert other.extension.terms is not one.extension.terms
    assert other.extension.shared_key == (10, 6, 5) and one.extension.shared_key == (12, 6, 5)


def test_context_takeover_kept_when_configured() -> None:
    options = DeflateOptions(client_no_context_takeover=False, server_no_context_takeover=False)
    _, got = deflated(ServerConnection(), "permessage-deflate", options)
    assert got == "permessage-deflate"


def test_no_deflate_unless_enabled() -> None:
    conn = ServerConnection()
    conn.receive_data(request_bytes("Sec-WebSocket-Extensions: permessage-deflate"))
    assert b"extensions" not in conn.accept()


def test_round_trip_with_context_takeover() -> None:
    options = DeflateOptions(client_no_context_takeover=False, server_no_context_takeover=False)
    conn, _ = deflated(ServerConnection(), "permessage-deflate", options)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    d = zlib.decompressobj(-15)
    for i in range(5):
        text = f"hello {i} " * 50
        assert conn.receive_data(client_frame(TEXT, client_compress(text.encode(), c), rsv=RSV1)) == [text]
        ((op, fin, rsv, payload),) = parse_server_frames(conn.send_text(text))
        assert (op, fin, rsv) == (TEXT, True, RSV1)
        assert inflate(payload, d).decode() == text


def test_compressed_fragmented_message() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate")
    data = client_compress(b"x" * 10_000)
    frames = client_frame(BINARY, data[:5], fin=False, rsv=RSV1) + client_frame(CONT, data[5:])
    assert conn.receive_data(frames) == [b"x" * 10_000]


def test_rsv1_on_continuation_is_1002() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate")
    data = client_compress(b"abc")
    events = conn.receive_data(client_frame(TEXT, data, fin=False, rsv=RSV1) + client_frame(CONT, b"", rsv=RSV1))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1002


def test_decompression_bomb_is_1009() -> None:
    conn = ServerConnection(max_size=1 << 20)
    conn, _ = deflated(conn, "permessage-deflate")
    bomb = client_compress(b"\0" * (50 << 20))  # 50 MiB of zeros in ~50 KiB
    assert len(bomb) < 100_000
    events = conn.receive_data(client_frame(BINARY, bomb, rsv=RSV1))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009
    assert conn.state is ConnectionState.REMOTE_CLOSING


def test_inflated_size_exactly_at_limit_is_fine() -> None:
    conn = ServerConnection(max_size=100_000)
    conn, _ = deflated(conn, "permessage-deflate")
    assert conn.receive_data(client_frame(BINARY, client_compress(b"a" * 100_000), rsv=RSV1)) == [b"a" * 100_000]
    conn = ServerConnection(max_size=100_000)
    conn, _ = deflated(conn, "permessage-deflate")
    events = conn.receive_data(client_frame(BINARY, client_compress(b"a" * 100_001), rsv=RSV1))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1009


def test_corrupt_compressed_data_is_1007() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate")
    events = conn.receive_data(client_frame(BINARY, b"\xff\xff\xff\xff", rsv=RSV1))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1007


def test_invalid_utf8_inside_compressed_text_is_1007() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate")
    events = conn.receive_data(client_frame(TEXT, client_compress(b"ok \xff"), rsv=RSV1))
    assert isinstance(events[-1], ConnectionFailed) and events[-1].code == 1007


def test_empty_message_compresses_to_one_byte() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate")
    ((_, _, rsv, payload),) = parse_server_frames(conn.send_bytes(b""))
    assert rsv == RSV1 and inflate(payload) == b""
    assert conn.receive_data(client_frame(BINARY, b"\x00", rsv=RSV1)) == [b""]


def test_idle_connection_holds_no_zlib_state() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate")
    ext = conn.extension
    assert ext is not None
    conn.receive_data(client_frame(TEXT, client_compress(b"hi there"), rsv=RSV1))
    conn.send_text("hello")
    assert ext._decompressor is None  # client_no_context_takeover: freed after each message
    assert ext._compressor is None  # server_no_context_takeover: freed after each message


def test_kept_compressor_is_freed_when_idle() -> None:
    options = DeflateOptions(server_no_context_takeover=False)
    conn, _ = deflated(ServerConnection(), "permessage-deflate", options)
    ext = conn.extension
    assert ext is not None
    conn.send_text("hello")
    assert ext._compressor is not None  # kept while active, for the compression ratio
    conn.release_idle()  # first tick: something was sent since the last one
    assert ext._compressor is not None
    conn.release_idle()  # a whole idle period
    assert ext._compressor is None
    # A fresh compressor is always readable by a client that kept its context.
    d = zlib.decompressobj(-15)
    first = parse_server_frames(conn.send_text("one"))[0][3]
    assert inflate(first, d) == b"one"


def test_server_no_context_takeover_resets_every_message() -> None:
    conn, answer = deflated(ServerConnection(), "permessage-deflate; server_no_context_takeover")
    assert "server_no_context_takeover" in answer
    for _ in range(3):
        payload = parse_server_frames(conn.send_text("same text " * 20))[0][3]
        assert inflate(payload) == b"same text " * 20  # each decodes alone


def test_small_messages_can_skip_compression() -> None:
    conn, _ = deflated(ServerConnection(), "permessage-deflate", DeflateOptions(compress_min_size=100))
    assert parse_server_frames(conn.send_text("tiny"))[0][2] == 0
    assert parse_server_frames(conn.send_text("x" * 200))[0][2] == RSV1
