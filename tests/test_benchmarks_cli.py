"""`python -m benchmarks`, the one command that runs every benchmark: its plan, a real tiny run, skips.

Cheap on purpose: the plan is printed without running anything, the one real run is routing_bench
(a second), and peers run in this interpreter (--python) instead of venvs of their own. No timing
is asserted: the figures are the benchmark's business.
"""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    done = bench("--quick", "--only", "routing_bench,broadcast_bench", "--dry-run", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "run routing_bench (bolt): routing_bench.py --repeat 1" in done.stdout
    assert "run broadcast_bench (channels): broadcast_bench.py --only channels" in done.stdout
    assert "peer starlette:" in done.stdout
    assert not (tmp_path / "out").exists()


def test_a_quick_run_writes_json_markdown_and_plots(tmp_path: Path) -> None:
    done = bench("--quick", "--only", "routing_bench", "--python", sys.executable, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "routing_bench (bolt): ok" in done.stderr  # the progress lines
    result = json.loads((tmp_path / "results.json").read_text())
    assert result["mode"] == "quick" and result["machine"]["cores"]
    [run] = result["runs"]
    assert run["status"] == "ok" and run["benchmark"] == "routing_bench"
    assert {row["probe"] for row in run["rows"]} == {"static", "param", "catch-all", "miss"}
    report = (tmp_path / "results.md").read_text()
    assert "## routing_bench" in report and "benchmarks/routing_bench.py --repeat 1" in report
    assert (tmp_path / "routing.png").exists() == (importlib.util.find_spec("matplotlib") is not None)
    assert not (tmp_path / "raw").exists()


def test_a_peer_that_cannot_run_is_skipped_with_its_reason(tmp_path: Path) -> None:
    done = bench("--quick", "--peers", "django-bolt", "--python", sys.executable, "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    peer = json.loads((tmp_path / "results.json").read_text())["peers"]["django-bolt"]
    assert peer["status"] == "skipped" and "django-bolt" in peer["reason"]


def test_an_unknown_benchmark_is_a_usage_error() -> None:
    done = bench("--only", "no_such_bench", "--dry-run")
    assert done.returncode == 2 and "unknown benchmark(s): no_such_bench" in done.stderr
