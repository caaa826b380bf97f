"""RFC 6455 rules of the sans-I/O engine, one test per rule."""

from __future__ import annotations

import struct

import pytest

from bolt.protocol import (
    CloseReceived,
    ConnectionFailed,
    ConnectionState,
    LocalProtocolError,
    Ping,
    Pong,
    ServerConnection,
)

from .helpers import client_frame, close_code_of, open_connection, parse_server_frames

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def failed_with(conn: ServerConnection, events: list, code: int) -> None:
    assert isinstance(events[-1], ConnectionFailed), events
    assert events[-1].code == code
    assert conn.state is ConnectionState.REMOTE_CLOSING
    assert close_code_of(conn.close(events[-1].code, events[-1].reason)) == code
    assert conn.state is ConnectionState.CLOSED


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_every_payload_length_encoding(size: int) -> None:
    conn = open_connection()
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert conn.receive_data(client_frame(BINARY, payload)) == [payload]
    out = parse_server_frames(conn.send_bytes(payload))
    assert out == [(BINARY, True, 0, payload)]


def test_text_message() -> None:
    conn = open_connection()
    assert conn.receive_data(client_frame(TEXT, "héllo ☃".encode())) == ["héllo ☃"]


def test_many_frames_in_one_read_and_byte_by_byte() -> None:
    data = b"".join(client_frame(TEXT, f"m{i}".encode()) for i in range(50))
    conn = open_connection()
    assert conn.receive_data(data) == [f"m{i}" for i in range(50)]
    conn = open_connection()
    events = []
    for i in range(len(data)):
        events += conn.receive_data(data[i : i + 1])
    assert events == [f"m{i}" for i in range(50)]


def test_unmasked_client_frame_is_1002() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(TEXT, b"hi", masked=False)), 1002)


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_rsv_bits_without_extension_are_1002(rsv: int) -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(TEXT, b"hi", rsv=rsv)), 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes_are_1002(opcode: int) -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(opcode, b"")), 1002)


def test_fragmented_control_frame_is_1002() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(PING, b"x", fin=False)), 1002)


def test_control_frame_over_125_bytes_is_1002() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(PING, b"x" * 126)), 1002)


def test_non_minimal_length_is_1002() -> None:
    conn = open_connection()
    frame = struct.pack("!BBH", 0x82, 0x80 | 126, 5) + b"\0\0\0\0" + b"hello"
    failed_with(conn, conn.receive_data(frame), 1002)


def test_fragmentation_with_interleaved_control_frames() -> None:
    conn = open_connection()
    data = (
        client_frame(TEXT, b"fra", fin=False)
        + client_frame(PING, b"p1")
        + client_frame(CONT, b"gme", fin=False)
        + client_frame(PONG, b"x")
        + client_frame(CONT, b"nted")
    )
    events = conn.receive_data(data)
    assert [type(e) for e in events] == [Ping, Pong, str]
    assert events[2] == "fragmented"
    assert parse_server_frames(conn.data_to_send()) == [(PONG, True, 0, b"p1")]


def test_continuation_without_message_is_1002() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(CONT, b"x")), 1002)


def test_new_message_inside_fragmented_message_is_1002() -> None:
    conn = open_connection()
    events = conn.receive_data(client_frame(TEXT, b"a", fin=False) + client_frame(TEXT, b"b"))
    failed_with(conn, events, 1002)


def test_invalid_utf8_is_1007() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(TEXT, b"\xff")), 1007)


def test_invalid_utf8_fails_fast_in_fragmented_message() -> None:
    conn = open_connection()
    events = conn.receive_data(client_frame(TEXT, "κόσμε".encode() + b"\xf4\x90", fin=False))
    failed_with(conn, events, 1007)


def test_invalid_utf8_fails_fast_inside_an_incomplete_frame() -> None:
    conn = open_connection()
    frame = client_frame(TEXT, b"hello" + b"\xed\xa0\x80" + b"x" * 100)
    # Only the first part of the frame has arrived: the bad sequence is already visible.
    failed_with(conn, conn.receive_data(frame[:20]), 1007)


def test_utf8_sequence_split_across_frames_is_fine() -> None:
    conn = open_connection()
    snow = "☃".encode()
    data = client_frame(TEXT, snow[:1], fin=False) + client_frame(CONT, snow[1:2], fin=False)
    assert conn.receive_data(data) == []
    assert conn.receive_data(client_frame(CONT, snow[2:])) == ["☃"]


def test_truncated_utf8_at_message_end_is_1007() -> None:
    conn = open_connection()
    data = client_frame(TEXT, b"ok", fin=False) + client_frame(CONT, "☃".encode()[:2])
    failed_with(conn, conn.receive_data(data), 1007)


def test_ping_is_answered_with_pong() -> None:
    conn = open_connection()
    events = conn.receive_data(client_frame(PING, b"are you there"))
    assert isinstance(events[0], Ping) and events[0].payload == b"are you there"
    assert parse_server_frames(conn.data_to_send()) == [(PONG, True, 0, b"are you there")]


def test_close_is_reported_and_echoed() -> None:
    conn = open_connection()
    events = conn.receive_data(client_frame(CLOSE, struct.pack("!H", 1001) + b"bye"))
    assert isinstance(events[0], CloseReceived)
    assert (events[0].code, events[0].reason) == (1001, "bye")
    assert conn.state is ConnectionState.REMOTE_CLOSING
    # Replies may still go out before the echo.
    conn.send_text("last words")
    assert close_code_of(conn.close(events[0].code)) == 1001
    assert conn.state is ConnectionState.CLOSED
    assert conn.receive_data(client_frame(TEXT, b"ignored")) == []


def test_empty_close_is_1005_and_echoed_empty() -> None:
    conn = open_connection()
    events = conn.receive_data(client_frame(CLOSE))
    assert events[0].code == 1005
    assert parse_server_frames(conn.close(1005)) == [(CLOSE, True, 0, b"")]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000])
def test_invalid_close_code_is_1002(code: int) -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(CLOSE, struct.pack("!H", code))), 1002)


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1011, 1012, 1013, 1014, 3000, 4999])
def test_valid_close_codes_are_accepted(code: int) -> None:
    conn = open_connection()
    assert conn.receive_data(client_frame(CLOSE, struct.pack("!H", code)))[0].code == code


def test_one_byte_close_payload_is_1002() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(CLOSE, b"\x03")), 1002)


def test_close_reason_with_bad_utf8_is_1007() -> None:
    conn = open_connection()
    failed_with(conn, conn.receive_data(client_frame(CLOSE, struct.pack("!H", 1000) + b"\xff")), 1007)


def test_server_initiated_close_handshake() -> None:
    conn = open_connection()
    assert close_code_of(conn.close(1000, "done")) == 1000
    assert conn.state is ConnectionState.CLOSING
    # Data after our close is read (to find the peer's close) but not delivered.
    events = conn.receive_data(client_frame(TEXT, b"late") + client_frame(CLOSE, struct.pack("!H", 1000)))
    assert [type(e) for e in events] == [CloseReceived]
    assert conn.state is ConnectionState.CLOSED
    assert conn.data_to_send() == b""
    with pytest.raises(LocalProtocolError):
        conn.send_text("too late")


def test_message_over_limit_is_1009_before_buffering() -> None:
    conn = open_connection(max_size=1000)
    head = client_frame(BINARY, b"x" * 1001)[:14]  # header only: the limit is checked up front
    failed_with(conn, conn.receive_data(head), 1009)


def test_fragmented_message_over_limit_is_1009() -> None:
    conn = open_connection(max_size=1000)
    data = client_frame(BINARY, b"x" * 600, fin=False) + client_frame(CONT, b"x" * 600)
    failed_with(conn, conn.receive_data(data), 1009)


def test_message_at_limit_is_fine() -> None:
    conn = open_connection(max_size=1000)
    data = client_frame(BINARY, b"x" * 500, fin=False) + client_frame(CONT, b"x" * 500)
    assert conn.receive_data(data) == [b"x" * 1000]


def test_fragment_count_is_bounded() -> None:
    conn = open_connection(max_fragments=10)
    data = client_frame(BINARY, b"", fin=False) + b"".join(client_frame(CONT, b"", fin=False) for _ in range(10))
    failed_with(conn, conn.receive_data(data), 1009)


def test_reassembly_is_linear() -> None:
    # 15,000 fragments: quadratic joining would copy ~110 GB here; linear is instant.
    conn = open_connection()
    part = b"y" * 1000
    middle = client_frame(CONT, part, fin=False) * 14998
    data = client_frame(BINARY, part, fin=False) + middle + client_frame(CONT, part)
    (message,) = conn.receive_data(data)
    assert len(message) == 15_000_000


def test_sending_requires_open_state() -> None:
    conn = ServerConnection()
    with pytest.raises(LocalProtocolError):
        conn.send_text("x")
    with pytest.raises(LocalProtocolError):
        conn.close()


def test_close_rejects_reserved_codes_from_the_app() -> None:
    conn = open_connection()
    with pytest.raises(ValueError):
        conn.close(1006)


def test_long_close_reason_is_truncated_on_a_character_boundary() -> None:
    conn = open_connection()
    (frame,) = parse_server_frames(conn.close(1000, "é" * 100))
    assert len(frame[3]) <= 125
    frame[3][2:].decode("utf-8")


def test_ping_payload_limit() -> None:
    conn = open_connection()
    with pytest.raises(ValueError):
        conn.send_ping(b"x" * 126)
    assert parse_server_frames(conn.send_ping(b"abc")) == [(PING, True, 0, b"abc")]


def test_large_text_frame_in_pieces_is_validated_as_it_arrives() -> None:
    text = "κόσμε " * 5000
    frame = client_frame(TEXT, text.encode())
    conn = open_connection()
    events = []
    for i in range(0, len(frame), 1000):
        events += conn.receive_data(frame[i : i + 1000])
    assert events == [text]
    bad = client_frame(TEXT, b"a" * 5000 + b"\xc0\xaf" + b"b" * 5000)
    conn = open_connection()
    assert conn.receive_data(bad[:3000]) == []
    # The bad bytes arrive in the second piece: failure comes before the frame is complete.
    failed_with(conn, conn.receive_data(bad[3000:6000]), 1007)


@pytest.mark.parametrize("message", ["tëxt", b"\x00" * 70000, b""])
def test_message_parts_match_the_single_frame(message: str | bytes) -> None:
    conn = open_connection()
    single = conn.send_text(message) if isinstance(message, str) else conn.send_bytes(message)
    assert b"".join(conn.send_message_parts(message)) == single


@pytest.mark.parametrize("size", [20, 2000])
def test_size_limit_applies_to_single_small_frames(size: int) -> None:
    conn = open_connection(max_size=10 if size == 20 else 1000)
    failed_with(conn, conn.receive_data(client_frame(BINARY, b"x" * size)), 1009)


@pytest.mark.parametrize("opcode", [TEXT, BINARY])
def test_frame_completed_over_reads_then_more_frames_in_the_last_read(opcode: int) -> None:
    payload = "ünïcode ".encode() * 20000
    big = client_frame(opcode, payload)
    tail = client_frame(TEXT, b"next") + client_frame(PING, b"p") + client_frame(BINARY, b"after") + big[:10]
    conn = open_connection()
    events = []
    for i in range(0, len(big) - 5, 40000):
        events += conn.receive_data(big[i : min(i + 40000, len(big) - 5)])
    assert events == []
    events = conn.receive_data(big[-5:] + tail)
    assert events[0] == (payload.decode() if opcode == TEXT else payload)
    assert events[1] == "next" and isinstance(events[2], Ping) and events[3] == b"after"
    assert len(events) == 4
    assert conn.receive_data(big[10:]) == [events[0]]


def test_bad_utf8_at_the_end_of_a_frame_completed_over_reads_is_1007() -> None:
    frame = client_frame(TEXT, b"a" * 100000 + b"\xe2\x82")  # truncated final character
    conn = open_connection()
    assert conn.receive_data(frame[:60000]) == []
    failed_with(conn, conn.receive_data(frame[60000:] + client_frame(TEXT, b"ignored")), 1007)


def test_batch_of_messages_resumes_after_a_control_frame() -> None:
    data = client_frame(TEXT, b"a") + client_frame(PING, b"") + client_frame(BINARY, b"b") + client_frame(TEXT, b"c")
    conn = open_connection()
    events = conn.receive_data(data + client_frame(TEXT, b"\xff"))
    assert events[0] == "a" and isinstance(events[1], Ping) and events[2:4] == [b"b", "c"]
    failed_with(conn, events, 1007)


def test_only_the_latest_pings_are_answered_and_never_after_a_close() -> None:
    from bolt.protocol.connection import MAX_HELD_PONGS

    conn = open_connection()
    conn.receive_data(b"".join(client_frame(0x9, str(n).encode()) for n in range(100)))
    pongs = conn.data_to_send()
    latest = [str(n).encode() for n in range(100 - MAX_HELD_PONGS, 100)]
    assert pongs == b"".join(bytes((0x8A, len(payload))) + payload for payload in latest)
    conn.receive_data(client_frame(0x9, b"late"))  # not collected before the close
    assert conn.close(1000).startswith(b"\x88")
    assert conn.data_to_send() == b""
