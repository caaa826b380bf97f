"""The code samples in docs/*.md that are marked runnable actually run.

Convention, for every page under docs/: a ```python block whose first line is

    # test: run        runs in a fresh namespace;
    # test: continue   runs in the namespace of the previous runnable block of the same page.

A block runs as a module body, with top-level `await` allowed. Then every function it defined
whose name starts with `test_` is called (awaited when async), as pytest would. Each block is one
test, bounded in time. Django is configured with the tests' settings (tests/django_settings.py)
first, so blocks may use `bolt.django` and `django.test.override_settings`. Blocks without a
marker are illustrations (an asgi.py, a settings.py, shell commands) and are not run.
"""
from __future__ import annotations

import ast
import asyncio
import inspect
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from django_settings import configure_django

DOCS = Path(__file__).resolve().parent.parent / "docs"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"^#\s*test:\s*(run|continue)\b")
TIMEOUT = 30


@dataclass
class Sample:
    page: str
    line: int
    source: str
    chain: list[Sample] = field(default_factory=list)  # earlier blocks whose namespace this one continues

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def collect() -> list[Sample]:
    samples: list[Sample] = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        previous: Sample | None = None
        for match in BLOCK.finditer(text):
            source = match.group(1)
            marker = MARKER.match(source)
            if marker is None:
                continue
            sample = Sample(page.name, text.count("\n", 0, match.start(1)) + 1, source)
            if marker.group(1) == "continue":
                if previous is None:
                    raise ValueError(f"{sample.id}: '# test: continue' with no runnable block before it")
                sample.chain = previous.chain + [previous]
            samples.append(sample)
            previous = sample
    return samples


async def execute(sample: Sample, namespace: dict[str, Any], run_tests: bool = True) -> None:
    """Run one block as a module body in `namespace`, then (if `run_tests`) the test functions it defined."""
    before = set(namespace)
    # Padded so that line numbers in tracebacks are those of the page.
    source = "\n" * (sample.line - 1) + sample.source
    code = compile(source, str(DOCS / sample.page), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(code, namespace)  # noqa: S307  (our own documentation)
    if inspect.iscoroutine(result):
        await result
    if not run_tests:
        return
    for name in sorted(set(namespace) - before):
        func = namespace[name]
        if name.startswith("test_") and callable(func):
            outcome = func()
            if inspect.isawaitable(outcome):
                await outcome


SAMPLES = collect()


@pytest.mark.skipif(not SAMPLES, reason="no runnable samples in docs/")
@pytest.mark.asyncio
@pytest.mark.parametrize("sample", SAMPLES, ids=[s.id for s in SAMPLES])
async def test_doc_sample(sample: Sample) -> None:
    configure_django()
    # A real module, so that what a sample defines can be found through it (dataclasses look up
    # their module in sys.modules), as if the sample were a file of its own.
    module = types.ModuleType(f"docs_{Path(sample.page).stem.replace('-', '_')}")
    sys.modules[module.__name__] = module
    try:
        async with asyncio.timeout(TIMEOUT):
            for earlier in sample.chain:
                await execute(earlier, module.__dict__, run_tests=False)
            await execute(sample, module.__dict__)
    finally:
        del sys.modules[module.__name__]


def test_marker_convention_is_used():
    """Every page of ours has at least one runnable sample (other pages may have none yet)."""
    ours = {"getting-started.md", "websocket.md", "testing.md", "django.md", "http.md"}
    present = {p.name for p in DOCS.glob("*.md")} & ours
    runnable = {s.page for s in SAMPLES}
    assert present <= runnable, f"pages without a '# test: run' sample: {sorted(present - runnable)}"
