"""Typed `receive_json(Model)` per message, this tree beside another one (the code before a change).

    python benchmarks/typed_json_bench.py [--baseline DIR] [--rounds 5] [--messages 20000]

One WebSocket, fed the same text message by a stub ASGI receive, so that only bolt's work is timed:
reading the message, decoding the JSON and checking it against the model. Models: a dataclass and
a TypedDict (an order of three parts, 160 bytes of JSON), the same as a msgspec Struct and a
pydantic model, and `receive_json()` without a model for reference. Each tree runs in its own
subprocess (`PYTHONPATH=DIR`), the trees alternate over the rounds, and the table shows the
median microseconds per message with the ratio of this tree to the baseline. A model a tree does
not take (a Struct before msgspec came in) shows "-". pydantic must be installed for its row.
Bounded: rounds x trees x models x messages.
"""

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, TypedDict

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = json.dumps({"id": 12, "customer": "ann@example.com", "parts": [
    {"sku": "nut-8", "qty": 40, "price": 0.12}, {"sku": "bolt-8", "qty": 40, "price": 0.3},
    {"sku": "washer", "qty": 80, "price": 0.05}]})


@dataclasses.dataclass
class Part:
    sku: str
    qty: int
    price: float


@dataclasses.dataclass
class Order:
    id: int
    customer: str
    parts: list[Part]


class PartDict(TypedDict):
    sku: str
    qty: int
    price: float


class OrderDict(TypedDict):
    id: int
    customer: str
    parts: list[PartDict]


def models() -> dict[str, Any]:
    found: dict[str, Any] = {"untyped": None, "dataclass": Order, "TypedDict": OrderDict}
    try:
        import msgspec

        class StructPart(msgspec.Struct):
            sku: str
            qty: int
            price: float

        class StructOrder(msgspec.Struct):
            id: int
            customer: str
            parts: list[StructPart]

        found["msgspec Struct"] = StructOrder
    except ImportError:
        pass
    try:
        import pydantic

        class PydanticPart(pydantic.BaseModel):
            sku: str
            qty: int
            price: float

        class PydanticOrder(pydantic.BaseModel):
            id: int
            customer: str
            parts: list[PydanticPart]

        found["pydantic"] = PydanticOrder
    except ImportError:
        pass
    return found


async def time_one(model: Any, messages: int) -> float | None:
    """Microseconds per `receive_json(model)`, or None when this tree refuses the model."""
    from bolt.websocket import WebSocket, WebSocketState

    message = {"type": "websocket.receive", "text": TEXT}

    async def receive() -> dict[str, Any]:
        return message

    websocket = WebSocket({"type": "websocket", "path": "/", "headers": []}, receive, None)
    websocket.application_state = WebSocketState.CONNECTED
    try:
        await websocket.receive_json(model)
    except Exception:
        return None
    started = time.perf_counter()
    for _ in range(messages):
        await websocket.receive_json(model)
    return (time.perf_counter() - started) / messages * 1e6


def worker(messages: int) -> None:
    results = {name: asyncio.run(time_one(model, messages)) for name, model in models().items()}
    print(json.dumps(results))


def run_tree(tree: str, messages: int) -> dict[str, float | None]:
    # The working directory is benchmarks/, so that `bolt` comes from PYTHONPATH and nowhere else.
    env = {**os.environ, "PYTHONPATH": tree}
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--messages", str(messages)]
    out = subprocess.run(command, cwd=os.path.join(ROOT, "benchmarks"), env=env, capture_output=True,
                         text=True, check=True, timeout=300).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", help="another bolt source tree to time beside this one")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.messages)
        return
    trees = {"this tree": ROOT}
    if args.baseline:
        trees["baseline"] = os.path.abspath(args.baseline)
    samples: dict[str, dict[str, list[float]]] = {tree: {} for tree in trees}
    for round_ in range(args.rounds):
        for tree in (list(trees) if round_ % 2 == 0 else list(reversed(trees))):
            for name, value in run_tree(trees[tree], args.messages).items():
                if value is not None:
                    samples[tree].setdefault(name, []).append(value)
    names = list(models())
    print(f"receive_json(model), {len(TEXT)} B message: median us per message over {args.rounds} rounds")
    header = f"{'model':<16}" + "".join(f"{tree:>12}" for tree in trees)
    print(header + (f"{'this/base':>11}" if args.baseline else ""))
    for name in names:
        medians = {tree: statistics.median(samples[tree][name]) if name in samples[tree] else None
                   for tree in trees}
        line = f"{name:<16}" + "".join(f"{m:>12.2f}" if m is not None else f"{'-':>12}"
                                       for m in medians.values())
        if args.baseline and None not in medians.values():
            line += f"{medians['this tree'] / medians['baseline']:>10.2f}x"
        print(line)


if __name__ == "__main__":
    main()
