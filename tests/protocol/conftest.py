"""Registers the ``autobahn`` marker used by the protocol tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "autobahn: runs the Autobahn suite (set BOLT_AUTOBAHN=1)")
