"""Builds the optional Rust accelerator ``bolt._accel`` when cargo is on PATH; pure Python otherwise.

``BOLT_NO_ACCEL=1`` skips the Rust build too, giving a pure ``py3-none-any`` wheel.
"""

import os
import shutil

from setuptools import setup
from setuptools_rust import Binding, RustExtension


def wants_rust() -> bool:
    return os.environ.get("BOLT_NO_ACCEL", "") in ("", "0") and shutil.which("cargo") is not None


def rust_extensions() -> list[RustExtension]:
    if not wants_rust():
        return []
    return [
        RustExtension(
            "bolt._accel",
            path="bolt_accel/Cargo.toml",
            binding=Binding.PyO3,
            py_limited_api=True,  # the crate uses PyO3's abi3-py311: one wheel for CPython >= 3.11
            optional=True,  # a failed Rust build still installs the pure-Python package
            debug=False,
        )
    ]


def options() -> dict:
    # Tag the wheel cp311-abi3 only when it carries the extension.
    return {"bdist_wheel": {"py_limited_api": "cp311"}} if wants_rust() else {}


setup(rust_extensions=rust_extensions(), options=options())
