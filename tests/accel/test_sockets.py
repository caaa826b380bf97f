"""send_many: both implementations write a frame to many sockets and report the same shortfalls."""

from __future__ import annotations

import os
import socket
from types import ModuleType

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="sockets are written as file descriptors on POSIX only")


def pairs(n: int, send_buffer: int | None = None) -> list[tuple[socket.socket, socket.socket]]:
    made = []
    for _ in range(n):
        ours, theirs = socket.socketpair()
        ours.setblocking(False)  # as asyncio's transports keep them
        if send_buffer is not None:
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        made.append((ours, theirs))
    return made


def read_all(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except BlockingIOError:
        pass
    return data


def test_every_socket_gets_the_frame(impl: ModuleType) -> None:
    sockets = pairs(3)
    assert impl.send_many([ours.fileno() for ours, _ in sockets], b"\x81\x02hi") == []
    assert impl.send_many([], b"\x81\x02hi") == []
    for ours, theirs in sockets:
        assert read_all(theirs) == b"\x81\x02hi"
        ours.close()
        theirs.close()


def test_broken_and_invalid_sockets_take_nothing(impl: ModuleType) -> None:
    (good, good_peer), (broken, broken_peer) = pairs(2)
    broken_peer.close()
    assert impl.send_many([broken.fileno(), good.fileno(), -1], b"frame") == [(0, 0), (2, 0)]
    assert read_all(good_peer) == b"frame"
    for sock in (good, good_peer, broken):
        sock.close()


def test_a_full_socket_takes_part_then_nothing(impl: ModuleType) -> None:
    ((ours, theirs),) = pairs(1, send_buffer=4096)
    frame = bytes(range(256)) * 4096  # 1 MiB: more than the buffers between the pair hold
    ((index, taken),) = impl.send_many([ours.fileno()], frame)
    assert index == 0 and 0 < taken < len(frame)
    assert impl.send_many([ours.fileno()], frame) == [(0, 0)]  # still full
    received = b""
    while len(received) < taken:
        received += read_all(theirs)
    assert received == frame[:taken]
    ours.close()
    theirs.close()


def test_both_take_the_same_part_of_a_full_socket(pure: ModuleType, rust: ModuleType) -> None:
    frame = b"\x00" * (1 << 20)
    results = []
    for impl in (pure, rust):
        ((ours, theirs),) = pairs(1, send_buffer=4096)
        results.append(impl.send_many([ours.fileno()], frame))
        ours.close()
        theirs.close()
    assert results[0] == results[1]


def test_many_sockets_split_over_threads_report_their_own_indexes(impl: ModuleType) -> None:
    sockets = pairs(700)  # enough for the Rust side to use a thread per core
    broken = set(range(0, 700, 97))
    for index in broken:
        sockets[index][1].close()
    assert impl.send_many([ours.fileno() for ours, _ in sockets], b"frame") == [(index, 0) for index in sorted(broken)]
    for index, (ours, theirs) in enumerate(sockets):
        if index not in broken:
            assert read_all(theirs) == b"frame"
            theirs.close()
        ours.close()
