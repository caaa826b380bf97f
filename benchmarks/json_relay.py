"""Relaying a room ``publish``: splice the client's JSON into the envelope, or decode and re-encode.

    python benchmarks/json_relay.py [--quick]

For publish frames of several sizes (as the ASGI server hands them over: ``str``), builds the
outgoing envelope ``{"room":...,"id":...,"data":...}`` as bytes for the wire in three ways, side
by side in one run:

- ``spans``: ``json_object_spans`` (Rust) validates the frame and gives the members' source spans;
  the envelope is the spans' text spliced between constant pieces, ``data`` never decoded;
- ``spans-py``: the same with the pure-Python twin;
- ``orjson``: ``orjson.loads`` the frame, ``orjson.dumps`` the envelope dict.

Each way reads ``type`` and ``room`` as the relay must (to route the message). Prints operations
per second (best of 7 interleaved runs) and the ratios. Needs the extension built.
"""

from __future__ import annotations

import argparse
import json
import sys
import timeit
from collections.abc import Callable

import orjson

from bolt import _accel_py

try:
    from bolt import _accel as _accel_rust
except ImportError:
    sys.exit("bolt._accel is not built; install with cargo on PATH to compare")

MAX_DEPTH = 32
MESSAGE_ID = 18


def publish(data: object) -> str:
    return json.dumps({"type": "publish", "room": "lobby", "data": data, "ref": 7}, ensure_ascii=False)


def _posts(count: int, text: str) -> list[dict[str, object]]:
    return [
        {"user": f"user{i}", "text": text, "ts": 1733097600 + i, "tags": ["a", "b"]} for i in range(count)
    ]


def _nested(depth: int) -> object:
    value: object = {"leaf": [1, 2.5, None, True, "x"]}
    for i in range(depth):
        value = {"level": i, "child": value, "siblings": [i, [i, {"k": "v"}]]}
    return value


FRAMES = {
    "chat ~100 B": publish({"text": "hello everyone, how is it going?", "user": "alice", "ts": 1733097600}),
    "1 KiB": publish(_posts(8, "a message of moderate length, about seventy bytes, ascii only.")),
    "1 KiB non-ASCII": publish(_posts(8, "ünïcödé tëxt with € and 😀, so code points need counting.")),
    "16 KiB": publish(_posts(128, "a message of moderate length, about seventy bytes, ascii only.")),
    "nested (depth 25)": publish(_nested(12)),
}


def relay_with(impl: Callable[[str, int], dict[str, tuple[int, int]]]) -> Callable[[str], bytes]:
    def relay(frame: str) -> bytes:
        spans = impl(frame, MAX_DEPTH)
        ts, te = spans["type"]
        rs, re = spans["room"]
        ds, de = spans["data"]
        if frame[ts:te] != '"publish"':  # escapes would spell it differently: a real relay decodes then
            raise ValueError("not a publish")
        orjson.loads(frame[rs:re])  # the room name, to route the message
        return f'{{"room":{frame[rs:re]},"id":{MESSAGE_ID},"data":{frame[ds:de]}}}'.encode()

    return relay


def relay_orjson(frame: str) -> bytes:
    message = orjson.loads(frame)
    if message["type"] != "publish":
        raise ValueError("not a publish")
    return orjson.dumps({"room": message["room"], "id": MESSAGE_ID, "data": message["data"]})


WAYS: dict[str, Callable[[str], bytes]] = {
    "spans": relay_with(_accel_rust.json_object_spans),
    "spans-py": relay_with(_accel_py.json_object_spans),
    "orjson": relay_orjson,
}


def ops_per_second(
    funcs: dict[str, Callable[[], object]], budget: float, rounds: int = 7
) -> dict[str, float]:
    """Best rate of each function over ``rounds`` runs of about ``budget`` seconds. The runs of
    the different functions alternate, so a change in the machine's load hits them alike."""
    timers = {name: timeit.Timer(func) for name, func in funcs.items()}
    numbers = {name: max(1, int(timer.autorange()[0] * budget / 0.2)) for name, timer in timers.items()}
    best = dict.fromkeys(funcs, float("inf"))
    for _ in range(rounds):
        for name, timer in timers.items():
            best[name] = min(best[name], timer.timeit(numbers[name]) / numbers[name])
    return {name: 1 / seconds for name, seconds in best.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs, noisier figures")
    budget = 0.05 if parser.parse_args().quick else 0.2
    print("| frame | bytes | spans (Rust) | spans-py | orjson | Rust vs orjson | py vs orjson |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, frame in FRAMES.items():
        outputs = {name: way(frame) for name, way in WAYS.items()}
        # The envelopes differ in spelling only (orjson writes compact JSON).
        assert len({json.dumps(orjson.loads(out)) for out in outputs.values()}) == 1, label
        rates = ops_per_second({name: lambda w=way: w(frame) for name, way in WAYS.items()}, budget)
        rust, pure, base = rates["spans"], rates["spans-py"], rates["orjson"]
        print(
            f"| {label} | {len(frame.encode()):,} | {rust:,.0f}/s | {pure:,.0f}/s | {base:,.0f}/s"
            f" | {rust / base:.2f}x | {pure / base:.2f}x |"
        )


if __name__ == "__main__":
    main()
