"""The one place that chooses between the Rust accelerator and its pure-Python twins.

The Rust extension ``bolt._accel`` is used when it was built (from this bolt: one that lacks a
function is not used, with a warning) and ``BOLT_NO_ACCEL`` is unset (or ``0``); otherwise the
functions come from ``bolt._accel_py``. Both give identical results.
``ENABLED`` tells which one is in use. The choice is made when a name is first read, so
importing this module loads neither.
"""

from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Any

__all__ = [
    "ENABLED",
    "Utf8Validator",
    "decode_header",
    "json_object_spans",
    "mask",
    "mask_join",
    "parse_head",
    "scan_frames",
    "send_many",
]


def _choose() -> tuple[ModuleType, bool]:
    from bolt import _accel_py

    if os.environ.get("BOLT_NO_ACCEL", "") not in ("", "0"):
        return _accel_py, False
    try:
        from bolt import _accel  # type: ignore[attr-defined]  # the compiled extension: no stub
    except ImportError:  # not built: installed without cargo, or from a pure wheel
        return _accel_py, False
    missing = [name for name in __all__ if name != "ENABLED" and not hasattr(_accel, name)]
    if missing:  # built from an older bolt and left in place: all twins come from one side
        warnings.warn(f"bolt._accel was built from an older bolt (it has no {', '.join(missing)}): using the "
                      "pure-Python twins; reinstall bolt to rebuild it", RuntimeWarning, stacklevel=3)
        return _accel_py, False
    return _accel, True


def __getattr__(name: str) -> Any:
    # The choice is made on first use, not on import: `import bolt` loads no extension, and an
    # app that never reaches an accelerated path never loads one. Afterwards the names are plain
    # module globals, so this runs once.
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    impl, enabled = _choose()
    exports = {export: getattr(impl, export) for export in __all__ if export != "ENABLED"}
    globals().update(exports, ENABLED=enabled)
    return globals()[name]
