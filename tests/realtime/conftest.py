"""Fixtures for the real-time tests: a time limit on every test and a private redis-server.

The Redis tests start their own `redis-server` on a free 127.0.0.1 port and stop it afterwards. When
the binary is missing they are skipped with a reason `pytest -rs` lists; BOLT_REQUIRE_REDIS=1 (set
by CI) turns that skip into a failure.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator

import pytest
from ports import free_port, wait_for_port

TEST_TIME_LIMIT = 60  # seconds; a hung test fails instead of stalling the run


@pytest.fixture(autouse=True)
def _time_limit(request: pytest.FixtureRequest) -> Iterator[None]:
    limit = request.node.get_closest_marker("time_limit")
    seconds = limit.args[0] if limit else TEST_TIME_LIMIT

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"test exceeded its {seconds} s time limit")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "time_limit(seconds): override the real-time tests' time limit")


class RedisServer:
    """A throwaway redis-server (no persistence) that a test can stop and start again on the same port."""

    def __init__(self, binary: str, *options: str) -> None:
        self.binary = binary
        self.options = options
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             *self.options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()


def redis_binary_or_skip() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("BOLT_REQUIRE_REDIS") == "1":
            pytest.fail("BOLT_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("redis-server is not installed: Redis tests skipped (BOLT_REQUIRE_REDIS=1 makes this fail)")
    return binary


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(redis_binary_or_skip())
    server.start()
    try:
        yield server
    finally:
        server.stop()
