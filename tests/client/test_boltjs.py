"""bolt.js in a real headless Chromium, driven by selenium.

- The unit tests (tests/client/test_bolt.js, on a fake WebSocket and a fake clock) run in one page;
  each failing JS test fails here with its name and message.
- A live test runs bolt.js against a real `api.realtime` endpoint under uvicorn, and restarts the
  server under it.

Without chromium, chromedriver or selenium these tests are skipped with the reason;
BOLT_REQUIRE_BROWSER=1 (set by scripts/test.sh) turns that into a failure.
"""
from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser import chromium
from ports import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


class _Files(http.server.SimpleHTTPRequestHandler):
    """/client/... from tests/client, /static/... from bolt/static: the page imports ../static/bolt/bolt.js."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

    def translate_path(self, path: str) -> str:
        path = path.split("?", 1)[0]
        for prefix, root in (("/client/", HERE), ("/static/", ROOT / "bolt" / "static")):
            if path.startswith(prefix):
                return str(root / path[len(prefix):])
        return str(HERE / "missing")

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Files, directory=str(HERE)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def results_of(driver: object, timeout: float = 60) -> list[dict]:
    """Wait for the page's window.__boltResults and return it."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.execute_script("return window.__boltResults !== null && window.__boltResults !== undefined"))
    return driver.execute_script("return window.__boltResults")


def test_boltjs_unit_tests(browser: object, files: str) -> None:
    browser.get(f"{files}/client/index.html")
    results = results_of(browser)
    assert len(results) > 30, f"only {len(results)} JS tests ran"
    failures = [f"{r['name']}: {r['message']}" for r in results if not r["ok"]]
    assert not failures, f"{len(failures)} of {len(results)} bolt.js tests failed:\n" + "\n\n".join(failures)


# -- a real server ---------------------------------------------------------------------------


class LiveServer:
    """tests/client/live_app.py under uvicorn in a subprocess, on one port across restarts."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "live_app:app", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", "--timeout-graceful-shutdown", "1"],
            cwd=HERE, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_for_port(self.port, timeout=20, process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, 10)  # SIGTERM: uvicorn closes its WebSockets with 1012 (service restart)


@pytest.fixture
def bolt_server() -> Iterator[LiveServer]:
    try:
        from bolt import BoltAPI
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"bolt does not import: {exc}")
    if not hasattr(BoltAPI, "realtime"):
        pytest.skip("api.realtime does not exist yet: no live test")
    server = LiveServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_boltjs_against_a_real_server_across_a_restart(browser: object, bolt_server: LiveServer) -> None:
    base = f"http://127.0.0.1:{bolt_server.port}"
    browser.get(f"{base}/client/live.html")
    browser.execute_async_script("window.live.start().then(arguments[0], (e) => arguments[0](String(e)))")
    first = browser.execute_async_script("window.live.phase1().then(arguments[0], (e) => arguments[0]({error: String(e.stack || e)}))")
    assert "error" not in first, first["error"]
    assert first["refused"] == "forbidden"
    assert first["members"] == [first["me"]], first
    assert first["ids"] == [1, 2, 3] and first["texts"] == ["m1", "m2", "m3"], first
    assert first["replyIds"] == [1, 2, 3], first
    assert first["both"] == sorted([first["me"], first["other"]]), first

    bolt_server.stop()
    browser.execute_async_script("window.live.waitFor('reconnecting').then(arguments[0])")
    queued = browser.execute_script("return window.live.publishWhileDown()")  # waits in the queue
    assert queued == 1
    bolt_server.start()  # a fresh memory backend: the room's history and ids start again
    second = browser.execute_async_script("window.live.phase2().then(arguments[0], (e) => arguments[0]({error: String(e.stack || e)}))")
    assert "error" not in second, second["error"]
    assert second["states"][-1] == "open", second
    assert second["gaps"] == [{"after": 3, "before": None}], second
    # The queued publish went out once after the rejoin, and its id (1 again, on a fresh server) was
    # delivered despite being <= the old last id: the gap reset the baseline.
    assert second["ids"] == [1, 2, 3, 1, 2], second
    assert second["texts"][3:] == ["while down", "after"], second
    assert second["members"] == [second["me"]] and second["me"] != first["me"], second


def test_protocols_with_a_token_against_a_real_endpoint(browser: object, bolt_server: LiveServer) -> None:
    """Chromium fails a handshake whose answer names none of the offered subprotocols: the endpoint
    accepts "bolt.v1", and never echoes the token offered beside it."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script("""
      const done = arguments[0];
      import("/static/bolt/bolt.js").then(({ connect }) => {
        const sockets = [];
        class Spy extends WebSocket {
          constructor(...args) { super(...args); sockets.push(this); }
        }
        const conn = connect("/ws/rt", { WebSocket: Spy, protocols: ["bolt.v1", "token.not-for-echo"],
                                         retries: 2, backoff: { initial: 50, max: 100 }, onError: () => {} });
        conn.onState((state) => {
          if (state !== "open" && state !== "closed") return; // done() keeps the first call: close() calls again
          done({ state, protocol: sockets[sockets.length - 1].protocol, attempts: sockets.length });
          conn.close();
        });
      }, (err) => done({ error: String(err) }));
    """)
    assert result == {"state": "open", "protocol": "bolt.v1", "attempts": 1}, result


def test_a_burst_of_joins_and_publishes_stays_within_the_routes_message_rate(browser: object,
                                                                            bolt_server: LiveServer) -> None:
    """11 rooms and 12 publishes at once on a route limited to 5 messages/s, 10 at once: the hello
    announces the limit, bolt.js paces to it, and the server never closes with 1008."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script("""
      const done = arguments[0];
      import("/static/bolt/bolt.js").then(async ({ connect }) => {
        const conn = connect("/ws/rl", { onError: () => {} });
        const closes = [];
        conn.onState((state, detail) => state !== "open" && closes.push(`${state} ${detail.code}`));
        const rooms = [];
        for (let i = 0; i < 11; i++) rooms.push(conn.join(`h:r${i}`));
        const outcome = (p) => p.then(() => "ok", (e) => e.code);
        const joined = await Promise.all(rooms.map((room) => outcome(room.ready)));
        const published = await Promise.all(rooms.concat(rooms[0]).map((room, i) => outcome(room.publish(i))));
        done({ joined, published, closes: closes.slice(), state: conn.state }); // a copy: close() adds to closes
        conn.close();
      }).catch((err) => done({ error: String(err) }));
    """)
    assert result == {"joined": ["ok"] * 11, "published": ["ok"] * 12, "closes": [], "state": "open"}, result
