"""docs/protocol.md lists exactly the uvicorn-suite tests that the suite run expects bolt to fail."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_documented_deviations_are_the_expected_failures() -> None:
    spec = importlib.util.spec_from_file_location("bolt_uvicorn_suite", ROOT / "tests/protocol/uvicorn_suite/suite_conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    doc = (ROOT / "docs/protocol.md").read_text()
    section = doc.split("### uvicorn's protocol test suite", 1)[1].split("\n### ", 1)[0]
    documented = re.findall(r"^\| `(test_\w+)` \|", section, re.MULTILINE)
    assert sorted(documented) == sorted(module.DEVIATIONS)
