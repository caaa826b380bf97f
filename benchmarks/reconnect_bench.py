"""Reconnect-to-resumed: how long after a restarted server is back a bolt.js page has rejoined its rooms.

A headless Chromium page (bolt.js with its default options) is in two rooms of an `api.realtime`
endpoint, one with history. The server (uvicorn with bolt's protocol) is stopped, stays down for
--down seconds, and starts again, --restarts times, each after the page has been connected for
--settle seconds (longer than bolt.js's backoff reset, so every restart starts from the first step). Each sample is the time from the server
listening again to the page's rooms both being joined again, by the page's own clock and ours
(the same machine clock). bolt.js waits a full-jitter exponential backoff between attempts, so the
figure is mostly that wait: it is what a user sees.

    python benchmarks/reconnect_bench.py [--restarts 20] [--down 1.0] [--settle 6.0]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from _load import free_port, wait_for_port  # noqa: E402

PAGE = b"""<!doctype html><meta charset="utf-8"><title>reconnect</title>
<script type="module">
import { connect } from "/static/bolt/bolt.js";
const conn = connect("/ws/rt");
const rooms = [conn.join("h:bench", { onMessage() {} }), conn.join("plain", { onMessage() {} })];
window.resumed = [];
let joined = false;
setInterval(() => {
  const now = rooms.every((room) => room.state === "joined");
  if (now && !joined) window.resumed.push(Date.now());
  joined = now;
}, 2);
</script>"""


def make_app() -> Any:
    """The server: the room endpoint, the page and bolt.js on one origin."""
    from bolt import BoltAPI, HTMLResponse, Response

    api = BoltAPI()
    api.hub.keep_history("h:", size=100)
    api.realtime("/ws/rt", can_join=True, can_publish=True)
    bolt_js = open(os.path.join(ROOT, "bolt", "static", "bolt", "bolt.js"), "rb").read()

    @api.get("/")
    async def page() -> Any:
        return HTMLResponse(PAGE)

    @api.get("/static/bolt/bolt.js")
    async def script() -> Any:
        return Response(bolt_js, media_type="text/javascript")

    return api


def start(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.reconnect_bench:make_app", "--host", "127.0.0.1",
         "--port", str(port), "--ws", "bolt.protocol.uvicorn:WebSocketProtocol", "--log-level", "warning"],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    wait_for_port("127.0.0.1", port, process, timeout=30)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)  # a graceful shutdown: the page is told 1012 and reconnects
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def until(condition: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError("the page did not get there")
        time.sleep(0.005)
    return value


def main() -> None:
    from browser import chromium

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--down", type=float, default=1.0, help="seconds the server stays down")
    parser.add_argument("--settle", type=float, default=6.0, help="seconds connected before each restart")
    args = parser.parse_args()
    port = free_port()
    server = start(port)
    driver = chromium()
    samples: list[float] = []
    try:
        driver.get(f"http://127.0.0.1:{port}/")
        until(lambda: driver.execute_script("return (window.resumed || []).length") == 1)
        for n in range(args.restarts):
            time.sleep(args.settle)
            stop(server)
            time.sleep(args.down)
            server = start(port)
            up = time.time() * 1000
            resumed = until(lambda: driver.execute_script("return window.resumed")[n + 1:])
            samples.append(resumed[0] - up)
            print(f"restart {n + 1:2}: rooms resumed {samples[-1]:7.0f} ms after the server was back", flush=True)
    finally:
        driver.quit()
        stop(server)
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"\nreconnect-to-resumed over {len(samples)} restarts ({args.down:.1f} s down): "
          f"p50 {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms, min {ordered[0]:.0f} ms, max {ordered[-1]:.0f} ms")


if __name__ == "__main__":
    main()
