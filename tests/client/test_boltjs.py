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

# A WebSocket for the page that hides the hello's message_limit from bolt.js (so it does not pace) and
# counts the publishes it sends (`sent`) and the rate_limited refusals it receives (`refusals`).
UNPACED_SOCKET = """
        let refusals = 0;
        let sent = 0;
        class Unpaced extends WebSocket {
          send(text) {
            if (JSON.parse(text).type === "publish") sent += 1;
            super.send(text);
          }
          set onmessage(fn) {
            super.onmessage = fn && ((event) => {
              const msg = JSON.parse(event.data);
              if (msg.type === "hello") delete msg.message_limit;
              if (msg.error && msg.error.code === "rate_limited") refusals += 1;
              fn({ data: JSON.stringify(msg) });
            });
          }
          get onmessage() { return super.onmessage; }
        }
"""


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

    def __init__(self, **env: str) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.env = env

    def start(self) -> None:
        env = {**os.environ, **self.env,
               "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT), os.environ.get("PYTHONPATH", "")])}
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
    base = first["ids"][0] - 1  # a new history counts on from the clock in microseconds
    assert first["ids"] == [base + 1, base + 2, base + 3] and first["texts"] == ["m1", "m2", "m3"], first
    assert first["replyIds"] == first["ids"], first
    assert first["both"] == sorted([first["me"], first["other"]]), first

    bolt_server.stop()
    browser.execute_async_script("window.live.waitFor('reconnecting').then(arguments[0])")
    queued = browser.execute_script("return window.live.publishWhileDown()")  # waits in the queue
    assert queued == 1
    bolt_server.start()  # a fresh memory backend: the room's history is lost, a new one starts
    second = browser.execute_async_script("window.live.phase2().then(arguments[0], (e) => arguments[0]({error: String(e.stack || e)}))")
    assert "error" not in second, second["error"]
    assert second["states"][-1] == "open", second
    # The rejoin with since=base + 3 finds no history (nothing was published since the restart): a
    # gap whose end is unknown, then the queued publish (sent once, after the rejoin) and the next,
    # numbered by a new history that counts on above the old ids.
    new = second["ids"][3]
    assert new > base + 3, second
    assert second["gaps"] == [{"after": base + 3, "before": None}], second
    assert second["ids"] == [*first["ids"], new, new + 1], second
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


def test_a_publish_of_a_string_cut_inside_an_emoji_is_delivered_with_a_replacement_character(
        browser: object, bolt_server: LiveServer) -> None:
    """Chromium's JSON.stringify writes a lone surrogate as an escape ("\\ud83d") that the server's strict
    JSON check refuses: bolt.js sends U+FFFD instead, so the message is delivered and its reply comes."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script(r"""
      const done = arguments[0];
      import("/static/bolt/bolt.js").then(async ({ connect }) => {
        const conn = connect("/ws/rt", { replyTimeout: 3000, onError: () => {} });
        const got = [];
        const room = conn.join("h:emoji", { onMessage: (data, meta) => got.push([data, meta.id]) });
        await room.ready;
        const cut = "hi \u{1F600}".slice(0, 4);
        const outcome = (p) => p.then((reply) => ({ ok: reply.ok, id: reply.id }), (e) => ({ error: e.code }));
        const replies = [await outcome(room.publish(cut)), await outcome(room.publish({ [cut]: [cut, "\u{1F600}"] }))];
        while (got.length < 2) await new Promise((resolve) => setTimeout(resolve, 20));
        done({ cut: [...cut].map((c) => c.codePointAt(0)), replies, got });
        conn.close();
      }).catch((err) => done({ error: String(err) }));
    """)
    assert result["cut"] == [ord("h"), ord("i"), ord(" "), 0xD83D], result  # a lone surrogate
    first = result["replies"][0]["id"]  # a history's ids start where its clock stood
    assert result["replies"] == [{"ok": True, "id": first}, {"ok": True, "id": first + 1}], result
    assert result["got"] == [["hi \ufffd", first], [{"hi \ufffd": ["hi \ufffd", "\U0001f600"]}, first + 1]], result


def test_joins_answered_rate_limited_are_sent_again_until_they_go_through(browser: object,
                                                                         bolt_server: LiveServer) -> None:
    """A route that answers messages over its rate `rate_limited` (5/s, 3 at once): with the hello's
    message_limit hidden from bolt.js, so that it does not pace, 8 joins at once are partly refused;
    each refused one is sent again after a backoff delay, and every room ends up joined."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script("""
      const done = arguments[0];
      import("/static/bolt/bolt.js").then(async ({ connect }) => {""" + UNPACED_SOCKET + """
        const errors = [];
        const conn = connect("/ws/rd", { WebSocket: Unpaced, backoff: { initial: 400 }, pingInterval: 0,
                                         onError: (e) => errors.push(e.code) });
        const rooms = [];
        for (let i = 0; i < 8; i++) rooms.push(conn.join(`h:d${i}`));
        const joined = await Promise.all(rooms.map((room) => room.ready.then(() => "ok", (e) => e.code)));
        done({ joined, refusals, errors, states: rooms.map((r) => r.state), inRooms: conn.rooms.size });
        conn.close();
      }).catch((err) => done({ error: String(err) }));
    """)
    assert result["joined"] == ["ok"] * 8, result
    assert result["states"] == ["joined"] * 8 and result["inRooms"] == 8, result
    assert result["refusals"] >= 5 and result["errors"] == [], result


def test_a_rejoin_refused_while_redis_is_down_is_retried_until_redis_is_back(browser: object, redis_server) -> None:
    """After a reconnect, a rejoin with since is answered `unavailable` while the server's Redis is
    down: bolt.js keeps the room and its queued publish, sends the join again after a backoff delay,
    and the room is back, with the publish delivered, once Redis is."""
    server = LiveServer(BOLT_LIVE_PUBSUB=redis_server.url)
    server.start()
    try:
        browser.get(f"http://127.0.0.1:{server.port}/client/live.html")
        started = browser.execute_async_script("""
          const done = arguments[0];
          import("/static/bolt/bolt.js").then(async ({ connect }) => {
            const seen = window.seen = { texts: [], gaps: [], errors: [], unavailable: 0 };
            class Spy extends WebSocket {
              set onmessage(fn) {
                super.onmessage = fn && ((event) => {
                  if (event.data.includes('"unavailable"')) seen.unavailable += 1;
                  fn(event);
                });
              }
              get onmessage() { return super.onmessage; }
            }
            const conn = window.conn = connect("/ws/rt", { WebSocket: Spy, backoff: { initial: 200, max: 1000 },
                                                          onError: (e) => seen.errors.push(e.code) });
            const room = window.room = conn.join("h:outage", {
              onMessage: (data) => seen.texts.push(data.text), onGap: (gap) => seen.gaps.push(gap) });
            await room.ready;
            await room.publish({ text: "before" });
            while (seen.texts.length < 1) await new Promise((resolve) => setTimeout(resolve, 20));
            done({ lastId: room.lastId });
          }).catch((err) => done({ error: String(err) }));
        """)
        last_id = started["lastId"]
        assert isinstance(last_id, int), started
        redis_server.stop()
        during = browser.execute_async_script("""
          const done = arguments[0];
          (async () => {
            const seen = window.seen;
            // A network loss: the client reconnects at once and rejoins with since = the id it saw.
            conn._abandon(conn._ws, "a network loss, for the test");
            window.queued = room.publish({ text: "while redis is down" }).then((r) => r.ok, (e) => e.code);
            const start = Date.now();
            while (seen.unavailable < 2 && Date.now() - start < 15000) await new Promise((r) => setTimeout(r, 20));
            done({ unavailable: seen.unavailable, state: room.state, inRooms: conn.rooms.has("h:outage"),
                   lastId: room.lastId, queued: conn._queue.length, errors: seen.errors.slice() });
          })().catch((err) => done({ error: String(err) }));
        """)
        assert during["unavailable"] >= 2, during
        assert during == {**during, "state": "joining", "inRooms": True, "lastId": last_id, "queued": 1,
                          "errors": []}, during
        redis_server.start()  # empty: the room's history and ids are gone
        after = browser.execute_async_script("""
          const done = arguments[0];
          (async () => {
            const seen = window.seen;
            const published = await window.queued;
            await room.publish({ text: "after" });
            while (seen.texts.length < 3) await new Promise((r) => setTimeout(r, 20));
            done({ published, state: room.state, texts: seen.texts, gaps: seen.gaps, errors: seen.errors });
            conn.close();
          })().catch((err) => done({ error: String(err) }));
        """)
        assert after["published"] is True and after["state"] == "joined", after
        assert after["texts"] == ["before", "while redis is down", "after"], after
        assert after["errors"] == [], after
    finally:
        server.stop()


# -- publishes refused for a passing reason ----------------------------------------------------------


def test_publishes_answered_rate_limited_are_sent_again_until_they_go_through(browser: object,
                                                                               bolt_server: LiveServer) -> None:
    """`rate_limited` is answered before the server reads the message (docs/realtime-protocol.md), so
    a publish refused with it was not applied: bolt.js sends it again after a backoff delay. With the
    hello's message_limit hidden from bolt.js, 8 publishes at once on a route answering messages over
    5/s (3 at once) `rate_limited` are partly refused; every one resolves, and each is delivered once."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script("""
      const done = arguments[0];
      import("/static/bolt/bolt.js").then(async ({ connect }) => {""" + UNPACED_SOCKET + """
        const errors = [];
        const got = [];
        const conn = connect("/ws/rd", { WebSocket: Unpaced, backoff: { initial: 400 }, pingInterval: 0,
                                         onError: (e) => errors.push(e.code) });
        const room = conn.join("p:burst", { onMessage: (data) => got.push(data) });
        await room.ready;
        const published = await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(
          (i) => room.publish(i).then((reply) => reply.ok, (e) => e.code)));
        await new Promise((resolve) => setTimeout(resolve, 300)); // anything delivered twice would be here by now
        done({ published, got: got.slice().sort(), refusals, sent, errors, state: conn.state });
        conn.close();
      }).catch((err) => done({ error: String(err) }));
    """)
    assert result.get("published") == [True] * 8, result
    assert result["got"] == list(range(8)), result  # each once, whatever the order
    assert result["refusals"] >= 3 and result["sent"] == 8 + result["refusals"], result
    assert result["errors"] == [] and result["state"] == "open", result


def test_a_publish_answered_unavailable_rejects_and_is_not_sent_again(browser: object, redis_server) -> None:
    """`unavailable` says the publish's fate is unknown (the backend may still carry it), so a resend
    could deliver it twice: the promise rejects with the code and the server's reason, and bolt.js
    sends nothing again."""
    server = LiveServer(BOLT_LIVE_PUBSUB=redis_server.url)
    server.start()
    try:
        browser.get(f"http://127.0.0.1:{server.port}/client/live.html")
        browser.execute_async_script("""
          const done = arguments[0];
          import("/static/bolt/bolt.js").then(async ({ connect }) => {
            const seen = window.seen = { publishes: 0, errors: [] };
            class Spy extends WebSocket {
              send(text) {
                if (JSON.parse(text).type === "publish") seen.publishes += 1;
                super.send(text);
              }
            }
            window.conn = connect("/ws/rt", { WebSocket: Spy, backoff: { initial: 50, max: 200 }, pingInterval: 0,
                                              onError: (e) => seen.errors.push(e.code) });
            window.room = conn.join("plain");
            await room.ready;
            done(true);
          }).catch((err) => done({ error: String(err) }));
        """)
        redis_server.stop()
        result = browser.execute_async_script("""
          const done = arguments[0];
          (async () => {
            const outcome = await room.publish({ text: "while redis is down" }).then(
              (reply) => ({ ok: reply.ok }), (e) => ({ code: e.code, reason: e.reason, name: e.name }));
            await new Promise((resolve) => setTimeout(resolve, 1500)); // several backoff delays
            done({ outcome, publishes: seen.publishes, errors: seen.errors, state: conn.state, room: room.state });
            conn.close();
          })().catch((err) => done({ error: String(err) }));
        """)
    finally:
        server.stop()
    assert result["outcome"]["code"] == "unavailable" and result["outcome"]["name"] == "BoltError", result
    assert "may still be delivered" in result["outcome"]["reason"], result
    assert result["publishes"] == 1 and result["errors"] == [], result
    assert result["state"] == "open" and result["room"] == "joined", result


# -- subprotocols ------------------------------------------------------------------------------------

SUBPROTOCOL_ATTEMPTS = """
  const [path, options, done] = arguments;
  import("/static/bolt/bolt.js").then(({ connect }) => {
    const sockets = [];
    class Spy extends WebSocket {
      constructor(...args) { super(...args); sockets.push(this); }
    }
    const errors = [];
    const states = [];
    const conn = connect(path, { WebSocket: Spy, backoff: { initial: 50, max: 100 }, connectTimeout: 1000,
                                 onError: (e) => errors.push({ code: e.code, message: e.message }), ...options });
    conn.onState((state, detail) => states.push([state, detail.code === undefined ? null : detail.code]));
    setTimeout(() => {
      done({ state: conn.state, reason: conn.reason, closeEvent: conn.closeEvent, errors, attempts: sockets.length,
             protocols: sockets.map((s) => s.protocol), states: states.slice(0, 6) });
      conn.close();
    }, 1500);
  }, (err) => done({ error: String(err) }));
"""


def test_protocols_without_the_endpoints_subprotocol_fail_at_once_with_a_clear_error(
        browser: object, bolt_server: LiveServer) -> None:
    """A token alone in `protocols`: the endpoint answers with no subprotocol, and Chromium fails every
    such handshake (a 1006 close, like a network loss). bolt.js refuses the list before dialing."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script(SUBPROTOCOL_ATTEMPTS, "/ws/rt", {"protocols": ["token.abc"]})
    assert result["attempts"] == 0 and result["state"] == "closed", result
    assert [e["code"] for e in result["errors"]] == ["subprotocol"], result
    assert '"bolt.v1"' in result["reason"] and result["reason"] == result["errors"][0]["message"], result


def test_a_handshake_that_chose_another_subprotocol_closes_with_a_clear_error(
        browser: object, bolt_server: LiveServer) -> None:
    """A server that picks another of the offered subprotocols (here the token): Chromium accepts it,
    since it was offered; bolt.js closes at once instead of waiting for a hello that never comes."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script(SUBPROTOCOL_ATTEMPTS, "/ws/echo", {"protocols": ["bolt.v1", "token.abc"]})
    assert result["attempts"] == 1 and result["protocols"] == ["token.abc"], result
    assert result["state"] == "closed" and [e["code"] for e in result["errors"]] == ["subprotocol"], result
    assert '"token.abc"' in result["reason"], result


def test_an_endpoint_that_answers_no_subprotocol_looks_like_a_network_loss(
        browser: object, bolt_server: LiveServer) -> None:
    """What bolt.js cannot tell (docs/client.md): "bolt.v1" offered to an endpoint made with
    subprotocol=None. Chromium fails the handshake with a 1006 close and gives the page no reason,
    so each attempt counts as a network loss, within `retries`."""
    browser.get(f"http://127.0.0.1:{bolt_server.port}/client/live.html")
    result = browser.execute_async_script(SUBPROTOCOL_ATTEMPTS, "/ws/none", {"protocols": ["bolt.v1"], "retries": 2})
    assert result["attempts"] == 3 and result["state"] == "closed", result
    assert result["reason"] == "gave up after 2 attempts" and result["closeEvent"]["code"] == 1006, result
    assert result["states"] == [["reconnecting", 1006], ["reconnecting", 1006], ["closed", 1006]], result
    assert result["errors"] == [], result
