"""Micro-benchmarks of the accelerator: Rust extension vs pure-Python twins, side by side.

    python benchmarks/accel_micro.py [--quick]

Prints time per call and the speed-up for masking, UTF-8 validation and batch frame scanning
at WebSocket-typical sizes. Needs the extension built (``pip install .`` with cargo on PATH).
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable
from types import ModuleType

from bolt import _accel_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _load import client_frame  # noqa: E402

try:
    from bolt import _accel as _accel_rust
except ImportError:
    sys.exit("bolt._accel is not built; install with cargo on PATH to compare")

SIZES = {"64 B": 64, "64 KiB": 64 * 1024, "1 MiB": 1024 * 1024}
KEY = b"\x12\x34\x56\x78"


def per_call(func: Callable[[], object], budget: float) -> float:
    """Best seconds per call over 5 runs, each sized to take about ``budget`` seconds."""
    timer = timeit.Timer(func)
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    return min(timer.repeat(repeat=5, number=number)) / number


def text_of(size: int) -> bytes:
    """Mixed ASCII and multi-byte text, ``size`` bytes, ending on a whole character."""
    data = ("JSON-ish text with some ünïcödé and € signs. " * (size // 40 + 1)).encode()[:size]
    return data[: len(data) - (len(data) - len(data.decode("utf-8", "ignore").encode()))]


def cases(impl: ModuleType) -> dict[str, Callable[[], object]]:
    out: dict[str, Callable[[], object]] = {}
    batch = client_frame(b"x" * 64, 0x1, KEY) * 32
    out["scan_frames 32 x 64 B text"] = lambda: impl.scan_frames(batch)
    for label, opcode in (("text", 0x1), ("binary", 0x2)):
        frame = client_frame(text_of(64 * 1024), opcode, KEY)
        out[f"scan_frames 1 x 64 KiB {label}"] = lambda f=frame: impl.scan_frames(f)
    for label, size in SIZES.items():
        payload = bytes(range(256)) * (size // 256)
        text = text_of(size)

        def feed_in_pieces(text: bytes = text) -> bool:
            validator = impl.Utf8Validator()
            view = memoryview(text)
            for start in range(0, len(view), 16384):
                validator.feed(view[start : start + 16384])
            return validator.finish()

        parts = [payload[i : i + 65536] for i in range(0, size, 65536)]
        out[f"mask {label}"] = lambda p=payload: impl.mask(p, KEY)
        out[f"mask_join {label} in 64 KiB parts"] = lambda p=parts: impl.mask_join(p, KEY)
        out[f"Utf8Validator 16 KiB pieces {label}"] = feed_in_pieces
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    args = parser.parse_args()
    budget = 0.05 if args.quick else 0.2
    rust, pure = cases(_accel_rust), cases(_accel_py)
    print(f"{'case':<40} {'rust':>12} {'python':>12} {'speed-up':>9}", flush=True)
    for name in rust:
        r, p = per_call(rust[name], budget), per_call(pure[name], budget)
        print(f"{name:<40} {r * 1e6:>10.2f}us {p * 1e6:>10.2f}us {p / r:>8.1f}x", flush=True)


if __name__ == "__main__":
    main()
