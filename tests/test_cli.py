"""`bolt run`'s arguments: a value it cannot serve with is refused before anything starts."""
from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from bolt.cli import build_parser
from bolt.protocol.uvicorn import drain_period


@pytest.mark.parametrize("argument, value", [
    ("--port", "99999"), ("--port", "-1"), ("--port", "http"),
    ("--workers", "0"), ("--workers", "-2"),
    ("--drain", "inf"), ("--drain", "nan"), ("--drain", "-1"), ("--drain", "soon"),
])
def test_out_of_range_values_exit_with_a_usage_error(argument: str, value: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["run", "mysite.asgi:application", argument, value])
    assert exited.value.code == 2
    assert f"argument {argument}" in capsys.readouterr().err


def test_values_in_range_are_taken() -> None:
    args = build_parser().parse_args(["run", "app:api", "--port", "0", "--workers", "2", "--drain", "2.5"])
    assert (args.port, args.workers, args.drain) == (0, 2, 2.5)


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "soon"])
def test_a_drain_period_that_is_not_a_finite_number_closes_at_once(value: str, monkeypatch, caplog) -> None:
    # An infinite period would schedule the last waves, and keep the stopping worker, for ever.
    monkeypatch.setenv("BOLT_DRAIN", value)
    with caplog.at_level(logging.WARNING):
        assert drain_period() == 0.0
    assert "is not a number of seconds" in caplog.text


def test_a_drain_period_is_read_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("BOLT_DRAIN", "3")
    assert drain_period() == 3.0
    monkeypatch.setenv("BOLT_DRAIN", "-3")
    assert drain_period() == 0.0


def test_python_dash_m_bolt_is_the_bolt_command() -> None:
    result = subprocess.run([sys.executable, "-m", "bolt", "run", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: bolt run ")
    result = subprocess.run([sys.executable, "-m", "bolt", "run", "x:app", "--port", "70000"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 2 and "70000 is not a TCP port" in result.stderr
