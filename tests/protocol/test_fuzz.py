"""Property tests: whatever a client sends, the engine never raises, never hangs, keeps its
memory bounded, and ends (if it ends) with a valid close code."""

from __future__ import annotations

import zlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bolt.protocol import (
    CloseReceived,
    ConnectionFailed,
    ConnectionState,
    DeflateOptions,
    HandshakeFailed,
    Ping,
    Pong,
    Request,
    ServerConnection,
)
from bolt.wire import is_valid_close_code

from .helpers import client_frame, parse_server_frames, request_bytes

MAX_SIZE = 4096
FUZZ = settings(max_examples=300, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    out, last = [], 0
    for p in points + [len(data)]:
        out.append(data[last:p])
        last = p
    return out


def opened(deflate: bool) -> ServerConnection:
    conn = ServerConnection(max_size=MAX_SIZE, max_fragments=64, deflate=DeflateOptions() if deflate else None)
    conn.receive_data(request_bytes("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
    conn.accept()
    return conn


def check_run(conn: ServerConnection, chunks: list[bytes]) -> list:
    events: list = []
    for chunk in chunks:
        events += conn.receive_data(chunk)
        conn.data_to_send()
        # Memory: never more than one frame of unparsed input, one message being built.
        assert conn._frames.buffered <= MAX_SIZE + 14 + (MAX_SIZE >> 6) + 1024 and not conn._buf
        assert conn._messages.buffered <= MAX_SIZE
    for event in events:
        assert type(event) in (str, bytes, Ping, Pong, CloseReceived, ConnectionFailed)
        if isinstance(event, (str, bytes)):
            assert len(event.encode() if isinstance(event, str) else event) <= MAX_SIZE
    ends = [e for e in events if isinstance(e, (CloseReceived, ConnectionFailed))]
    assert len(ends) <= 1 and (not ends or events[-1] is ends[0])
    if ends:
        end = ends[0]
        if isinstance(end, ConnectionFailed):
            assert is_valid_close_code(end.code)
        assert conn.state is ConnectionState.REMOTE_CLOSING
        (frame,) = parse_server_frames(conn.close(end.code, getattr(end, "reason", "")))
        code = int.from_bytes(frame[3][:2], "big") if frame[3] else 1005
        assert code == 1005 or is_valid_close_code(code)
    return events


@FUZZ
@given(st.binary(max_size=3000), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_arbitrary_bytes_after_handshake(data: bytes, cuts: list[int], deflate: bool) -> None:
    check_run(opened(deflate), chunked(data, cuts))


# Frames that are structurally plausible: random header bits, masked, short payloads.
frame_st = st.builds(
    lambda opcode, payload, fin, rsv, masked: client_frame(opcode, payload, fin=fin, rsv=rsv, masked=masked),
    st.integers(min_value=0, max_value=15),
    st.binary(max_size=300),
    st.booleans(),
    st.sampled_from([0, 0, 0, 0x40, 0x20, 0x10]),
    st.sampled_from([True, True, True, True, False]),
)


@FUZZ
@given(st.lists(frame_st, max_size=20), st.lists(st.integers(min_value=0), max_size=8), st.booleans())
def test_random_frames(frames: list[bytes], cuts: list[int], deflate: bool) -> None:
    check_run(opened(deflate), chunked(b"".join(frames), cuts))


message_st = st.one_of(st.text(max_size=500), st.binary(max_size=2000))


@FUZZ
@given(
    st.lists(st.tuples(message_st, st.integers(min_value=1, max_value=5), st.booleans()), max_size=10),
    st.lists(st.integers(min_value=0), max_size=10),
    st.booleans(),
)
def test_valid_messages_round_trip(messages: list, cuts: list[int], deflate: bool) -> None:
    conn = opened(deflate)
    wire = []
    compressor = zlib.compressobj(6, zlib.DEFLATED, -12)
    for message, pieces, ping in messages:
        raw = message.encode() if isinstance(message, str) else message
        opcode = 0x1 if isinstance(message, str) else 0x2
        rsv = 0
        if deflate:
            raw = compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)
            raw = raw[:-4]
            compressor = zlib.compressobj(6, zlib.DEFLATED, -12)  # client_no_context_takeover
            rsv = 0x40
        step = max(1, len(raw) // pieces)
        parts = [raw[i : i + step] for i in range(0, len(raw), step)] or [b""]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            wire.append(client_frame(opcode if i == 0 else 0, part, fin=last, rsv=rsv if i == 0 else 0))
            if ping and not last:
                wire.append(client_frame(0x9, b"p"))
    events = check_run(conn, chunked(b"".join(wire), cuts))
    assert [e for e in events if isinstance(e, (str, bytes))] == [m for m, _, _ in messages]


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=6))
def test_arbitrary_bytes_as_handshake(data: bytes, cuts: list[int]) -> None:
    conn = ServerConnection(max_request_size=1024)
    for chunk in chunked(data, cuts):
        for event in conn.receive_data(chunk):
            assert isinstance(event, (Request, HandshakeFailed))
            if isinstance(event, HandshakeFailed):
                assert 400 <= event.status < 500
                assert conn.data_to_send().startswith(b"HTTP/1.1 4")
        assert len(conn._buf) <= 1024 + len(chunk)


@FUZZ
@given(st.binary(max_size=500), st.binary(max_size=300))
def test_mutated_handshake(noise: bytes, tail: bytes) -> None:
    data = bytearray(request_bytes())
    for i, b in enumerate(noise[:40]):
        data[(i * 37 + b) % len(data)] = b
    conn = ServerConnection()
    events = conn.receive_data(bytes(data) + tail)
    for event in events:
        assert isinstance(event, (Request, HandshakeFailed))
