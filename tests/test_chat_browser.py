"""The chat example in two real headless Chromium sessions: two users log in and chat both ways, see
each other online, the server restarts mid-conversation and both pages recover with every message
exactly once, a staff room refuses a member, and the pages log no errors."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from browser import chromium
from ports import free_port, stop_process, wait_for_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "chat")
PASSWORD = "browser-test-password"
WAIT = 20.0


class Site:
    """The example under `bolt run` on a free port, with a database of its own; restartable."""

    def __init__(self, database: str) -> None:
        self.env = dict({k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
                        CHAT_DATABASE=database)
        for args in (["migrate", "--noinput"], ["demo_users", "--password", PASSWORD]):
            subprocess.run([sys.executable, "manage.py", *args], cwd=EXAMPLE, env=self.env, check=True,
                           capture_output=True, timeout=60)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bolt.cli", "run", "chat_site.asgi:application", "--port", str(self.port),
             "--log-level", "warning"], cwd=EXAMPLE, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port, timeout=20, process=self.process)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            stop_process(process, 15, signal.SIGINT)


@pytest.fixture
def site(tmp_path: Any) -> Iterator[Site]:
    site = Site(str(tmp_path / "db.sqlite3"))
    site.start()
    try:
        yield site
    finally:
        site.stop()


def until(condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Page:
    """One user's browser on one room page."""

    def __init__(self, site: Site, username: str) -> None:
        from selenium.webdriver.common.by import By

        self.by = By
        self.driver = chromium()
        self.username = username
        self.driver.get(f"{site.base}/login/")
        self.driver.find_element(By.NAME, "username").send_keys(username)
        self.driver.find_element(By.NAME, "password").send_keys(PASSWORD + "\n")
        until(lambda: "/login/" not in self.driver.current_url, f"{username} to log in")

    def open(self, site: Site, room: str) -> None:
        self.driver.get(f"{site.base}/rooms/{room}/")
        until(lambda: self.js("return window.chat && (window.chat.joined || window.chat.refused)"),
              f"{self.username} to join {room}")

    def js(self, script: str) -> Any:
        return self.driver.execute_script(script)

    def say(self, text: str) -> None:
        field = self.driver.find_element(self.by.CSS_SELECTOR, "#compose input")
        field.send_keys(text + "\n")

    def texts(self) -> list[str]:
        return self.js("return [...document.querySelectorAll('#messages .text')].map(e => e.textContent)")

    def online(self) -> list[str]:
        return self.js("return [...document.querySelectorAll('#people li')].map(e => e.textContent)")

    def state(self) -> str:
        return self.js("return document.getElementById('status').dataset.state")

    def errors(self) -> list[dict[str, Any]]:
        return [entry for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def quit(self) -> None:
        self.driver.quit()


def test_two_users_chat_through_a_server_restart(site: Site) -> None:
    alice, bob = Page(site, "alice"), Page(site, "bob")
    try:
        alice.open(site, "lobby")
        bob.open(site, "lobby")
        until(lambda: set(alice.online()) == {"alice", "bob"}, "alice to see bob online")
        until(lambda: set(bob.online()) == {"alice", "bob"}, "bob to see alice online")
        assert alice.errors() == [] and bob.errors() == []

        alice.say("hello bob <script>alert(1)</script>")
        bob.say("hi alice")
        both = ["hello bob <script>alert(1)</script>", "hi alice"]
        for page in (alice, bob):
            until(lambda: sorted(page.texts()) == sorted(both), f"{page.username} to see both messages")
        # Text is shown as text, never as markup.
        assert bob.js("return document.querySelectorAll('#messages script').length") == 0

        site.stop()
        for page in (alice, bob):
            until(lambda: page.state() in ("reconnecting", "connecting"), f"{page.username} to notice")
        alice.say("while the server is down")  # waits in bolt.js's queue
        site.start()
        for page in (alice, bob):
            until(lambda: page.state() == "open", f"{page.username} to reconnect")
        bob.say("after the restart")
        expected = both + ["while the server is down", "after the restart"]
        for page in (alice, bob):
            until(lambda: sorted(page.texts()) == sorted(expected), f"{page.username} to see all four")
            assert page.js("return window.chat.duplicates") == 0
        # The restart emptied the in-memory history: the pages were told of a gap and caught up
        # from the database instead.
        assert alice.js("return window.chat.gaps") + bob.js("return window.chat.gaps") >= 1
        until(lambda: set(alice.online()) == {"alice", "bob"}, "presence after the restart")
        time.sleep(0.5)  # anything doubled late would show up now
        for page in (alice, bob):
            assert sorted(page.texts()) == sorted(expected)

        # A third page: bob in the staff room, which its policy keeps from members.
        third = Page(site, "bob")
        try:
            third.open(site, "staff")
            assert third.js("return window.chat.refused") == "forbidden"
            assert "not allowed" in third.driver.find_element(third.by.ID, "notice").text
            assert third.texts() == []
        finally:
            third.quit()
    finally:
        alice.quit()
        bob.quit()


def test_an_announcement_from_a_django_view_reaches_the_room(site: Site) -> None:
    alice, bob = Page(site, "alice"), Page(site, "bob")
    try:
        alice.open(site, "random")
        bob.open(site, "random")
        form = alice.driver.find_element(alice.by.CSS_SELECTOR, "#announce input[name=text]")
        form.send_keys("Maintenance at noon\n")
        until(lambda: "Maintenance at noon" in bob.texts(), "bob to see the announcement")
        assert bob.js("return document.querySelector('#messages .announcement .text').textContent") == \
            "Maintenance at noon"
        # Members do not get the form.
        assert bob.driver.find_elements(bob.by.ID, "announce") == []
        assert bob.errors() == []
    finally:
        alice.quit()
        bob.quit()
