"""Check the chat example end to end: login, the room page, and the live room through /ws/chat.

    python smoke.py                          # in-process, through ASGI, with bolt.testing
    python smoke.py http://127.0.0.1:8000    # against a running server (pip install websockets)

alice and bob log in with the password in SMOKE_PASSWORD (default "smoke-password"). In-process,
smoke.py migrates the database (CHAT_DATABASE, or a throwaway one when unset) and sets both users'
passwords itself; against a server, set them first with `manage.py demo_users --password PASSWORD`.
Prints one line per check, exits non-zero on the first failure; every wait is bounded.
"""
from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import sys
import tempfile
import urllib.parse
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 5.0
PASSWORD = os.environ.get("SMOKE_PASSWORD", "smoke-password")


def check(label: str, condition: bool, detail: object = "") -> None:
    if not condition:
        raise SystemExit(f"FAIL {label} {detail}")
    print(f"ok   {label}")


class Peer:
    """One user's room-protocol connection: send requests, read what comes back in order."""

    def __init__(self, send: Any, recv: Any) -> None:
        self._send, self._recv = send, recv
        self.refs = 0

    async def next(self) -> Any:
        return json.loads(await asyncio.wait_for(self._recv(), TIMEOUT))

    async def request(self, kind: str, **fields: Any) -> tuple[dict[str, Any], list[Any]]:
        self.refs += 1
        await self._send(json.dumps({"type": kind, "ref": self.refs, **fields}))
        before = []
        while True:
            message = await self.next()
            if message.get("type") == "reply" and message.get("ref") == self.refs:
                return message, before
            before.append(message)


async def conversation(alice: Peer, bob: Peer) -> None:
    hello = await alice.next()
    check("hello names the user", hello["type"] == "hello" and hello["user"] is not None, hello)
    await bob.next()
    reply, _ = await alice.request("join", room="room:lobby", presence=True)
    check("alice joins the lobby", reply["ok"], reply)
    reply, _ = await bob.request("join", room="room:staff")
    check("bob may not join the staff room", reply.get("error", {}).get("code") == "forbidden", reply)
    reply, _ = await bob.request("join", room="room:lobby")
    check("bob joins the lobby", reply["ok"], reply)
    reply, own = await bob.request("publish", room="room:lobby", data={"text": "  <b>hi</b> alice "})
    message = own[0]["data"] if own else None
    check("a message is stored and broadcast", reply["ok"] and message and message["author"] == "bob"
          and message["text"] == "<b>hi</b> alice" and isinstance(message["pk"], int), (reply, own))
    while True:
        received = await alice.next()
        if "data" in received:
            break
    check("it reaches the room", received["data"] == message, received)
    reply, _ = await alice.request("publish", room="room:lobby", data={"text": "   "})
    check("empty text is refused", reply.get("error", {}).get("code") == "invalid_data", reply)


async def in_process() -> None:
    if "CHAT_DATABASE" not in os.environ:
        os.environ["CHAT_DATABASE"] = os.path.join(tempfile.mkdtemp(), "db.sqlite3")
    sys.path.insert(0, HERE)
    from chat_site.asgi import application
    from django.core.management import call_command
    from django.test import Client, override_settings

    from bolt.testing import AsyncTestClient, WebSocketTestClient

    await asyncio.to_thread(call_command, "migrate", verbosity=0)
    await asyncio.to_thread(call_command, "demo_users", password=PASSWORD, stdout=open(os.devnull, "w"))

    def session_of(username: str) -> str:
        with override_settings(ALLOWED_HOSTS=["testserver"]):
            client = Client()
            check(f"{username} logs in", client.login(username=username, password=PASSWORD))
            return client.cookies["sessionid"].value

    cookies = {name: {"sessionid": await asyncio.to_thread(session_of, name)} for name in ("alice", "bob")}
    http = AsyncTestClient(application)
    # The test clients' host, as Django's test runner allows it; bolt's routes hold to ALLOWED_HOSTS too.
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        page = await http.get("/login/")
        check("the login page", page.status_code == 200 and "Log in" in page.text, page.status_code)

        async with WebSocketTestClient(application, "/ws/chat", cookies=cookies["alice"]) as a, \
                WebSocketTestClient(application, "/ws/chat", cookies=cookies["bob"]) as b:
            await conversation(Peer(a.send_text, a.receive_text), Peer(b.send_text, b.receive_text))
        try:
            async with WebSocketTestClient(application, "/ws/chat"):
                refused = False
        except PermissionError:
            refused = True
        check("no login, no socket", refused)


def login(base: str, username: str) -> str:
    """Log in through the real login form; returns the session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login/", timeout=TIMEOUT).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    form = urllib.parse.urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token})
    request = urllib.request.Request(f"{base}/login/", form.encode(), headers={"Referer": f"{base}/login/"})
    opener.open(request, timeout=TIMEOUT)
    session = next((c.value for c in jar if c.name == "sessionid"), None)
    check(f"{username} logs in", session is not None)
    return session


async def against(base: str) -> None:
    try:
        from websockets.asyncio.client import connect
    except ImportError:
        raise SystemExit("smoke.py against a server needs the websockets client: pip install websockets") from None

    url = "ws" + base[len("http"):] + "/ws/chat"
    sessions = {name: await asyncio.to_thread(login, base, name) for name in ("alice", "bob")}

    def headers(name: str) -> dict[str, str]:
        return {"Cookie": f"sessionid={sessions[name]}", "Origin": base}

    async with connect(url, additional_headers=headers("alice"), open_timeout=TIMEOUT) as a, \
            connect(url, additional_headers=headers("bob"), open_timeout=TIMEOUT) as b:
        await conversation(Peer(a.send, a.recv), Peer(b.send, b.recv))
    try:
        async with connect(url, additional_headers={"Origin": base}, open_timeout=TIMEOUT):
            refused = False
    except Exception:
        refused = True
    check("no login, no socket", refused)
    print("ok   done")


if __name__ == "__main__":
    asyncio.run(against(sys.argv[1].rstrip("/")) if len(sys.argv) > 1 else in_process())
