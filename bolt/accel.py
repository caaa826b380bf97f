"""The one place that chooses between the Rust accelerator and its pure-Python twins.

The Rust extension ``bolt._accel`` is used when it was built and ``BOLT_NO_ACCEL`` is unset
(or ``0``); otherwise the functions come from ``bolt._accel_py``. Both give identical results.
``ENABLED`` tells which one is in use.
"""

from __future__ import annotations

import os
from types import ModuleType

__all__ = [
    "ENABLED",
    "Utf8Validator",
    "json_object_spans",
    "mask",
    "mask_into",
    "mask_join",
    "scan_frames",
    "utf8_error_offset",
    "validate_utf8",
]


def _choose() -> tuple[ModuleType, bool]:
    if os.environ.get("BOLT_NO_ACCEL", "") not in ("", "0"):
        from bolt import _accel_py

        return _accel_py, False
    try:
        from bolt import _accel
    except ImportError:  # not built: installed without cargo, or from a pure wheel
        from bolt import _accel_py

        return _accel_py, False
    return _accel, True


_impl, ENABLED = _choose()

json_object_spans = _impl.json_object_spans
mask = _impl.mask
mask_into = _impl.mask_into
mask_join = _impl.mask_join
scan_frames = _impl.scan_frames
Utf8Validator = _impl.Utf8Validator
validate_utf8 = _impl.validate_utf8
utf8_error_offset = _impl.utf8_error_offset
