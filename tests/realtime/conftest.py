"""The real-time tests' time limit: a hung test fails instead of stalling the run.

The Redis fixtures they use (redis_server, redis_cluster) are the suite's, in tests/conftest.py.
"""
from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

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
