"""bolt.accel picks the extension unless it is missing or BOLT_NO_ACCEL=1."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bolt import _accel_py

from .conftest import _accel_rust


def enabled_in_subprocess(**env: str) -> bool:
    environ = {k: v for k, v in os.environ.items() if k != "BOLT_NO_ACCEL"} | env
    out = subprocess.run(
        [sys.executable, "-c", "import bolt.accel as a; print(a.ENABLED)"],
        env=environ, capture_output=True, text=True, check=True, timeout=60,
    )
    return out.stdout.strip() == "True"


def test_enabled_iff_the_extension_is_built() -> None:
    assert enabled_in_subprocess() is (_accel_rust is not None)


@pytest.mark.parametrize("value", ["1", "true"])
def test_bolt_no_accel_forces_the_pure_twins(value: str) -> None:
    assert enabled_in_subprocess(BOLT_NO_ACCEL=value) is False


def test_bolt_no_accel_zero_keeps_the_extension() -> None:
    assert enabled_in_subprocess(BOLT_NO_ACCEL="0") is (_accel_rust is not None)


def test_exports_come_from_one_implementation() -> None:
    import bolt.accel as accel

    source = _accel_rust if accel.ENABLED else _accel_py
    for name in accel.__all__[1:]:  # every export but ENABLED
        assert getattr(accel, name) is getattr(source, name)


def test_an_extension_from_an_older_bolt_is_not_used() -> None:
    # A compiled module left from an earlier build, without a function this bolt exports.
    stale = ("import sys, types, warnings; stale = types.ModuleType('bolt._accel'); stale.mask = len; "
             "sys.modules['bolt._accel'] = stale; warnings.simplefilter('always'); "
             "import bolt.accel as a; a.mask; print(a.ENABLED, a.mask is not len)")
    out = subprocess.run([sys.executable, "-c", stale], capture_output=True, text=True, check=True, timeout=60,
                         env={k: v for k, v in os.environ.items() if k != "BOLT_NO_ACCEL"})
    assert out.stdout.split() == ["False", "True"]
    assert "RuntimeWarning: bolt._accel was built from an older bolt (it has no Utf8Validator, decode_header" in out.stderr
