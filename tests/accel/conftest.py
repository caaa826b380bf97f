"""Both accelerator implementations as a parametrized fixture.

The Rust side is skipped, with a reason that ``pytest -rs`` lists, only when ``bolt._accel`` was
not built; ``BOLT_REQUIRE_ACCEL=1`` turns that skip into a failure, for CI runs that built it.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from bolt import _accel_py

try:
    from bolt import _accel as _accel_rust
except ImportError:
    _accel_rust = None

RUST_MISSING = "Rust extension bolt._accel is not built: Rust side of the differential tests skipped"


def rust_or_skip() -> ModuleType:
    """The Rust module, or skip (fail under BOLT_REQUIRE_ACCEL=1) when it is not built."""
    if _accel_rust is None:
        if os.environ.get("BOLT_REQUIRE_ACCEL") == "1":
            pytest.fail("BOLT_REQUIRE_ACCEL=1 but bolt._accel is not built")
        pytest.skip(RUST_MISSING)
    return _accel_rust


@pytest.fixture(scope="session")
def rust() -> ModuleType:
    return rust_or_skip()


@pytest.fixture(scope="session")
def pure() -> ModuleType:
    return _accel_py


@pytest.fixture(scope="session", params=["python", "rust"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """Each implementation in turn, for checks against a reference."""
    return _accel_py if request.param == "python" else rust_or_skip()
