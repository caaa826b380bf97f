"""Autobahn conformance (core and permessage-deflate sets) through a real uvicorn.

Slow (minutes) and needs the Autobahn tool from ../shared/tools: opt in with BOLT_AUTOBAHN=1.
The same run is available as ``tests/protocol/run_autobahn.sh`` for CI.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("run_autobahn.sh")


@pytest.mark.autobahn
@pytest.mark.skipif(os.environ.get("BOLT_AUTOBAHN") != "1", reason="set BOLT_AUTOBAHN=1 to run Autobahn")
def test_autobahn_core_and_deflate_all_ok() -> None:
    result = subprocess.run([str(SCRIPT), "core", "deflate"], capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stdout + result.stderr
