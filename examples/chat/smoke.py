"""Check the chat example end to end: the Django page, /ws/echo and a room chat with three clients.

    python smoke.py                          # in-process, through ASGI, with bolt.testing
    python smoke.py http://127.0.0.1:8000    # against a running server (scripts/demo.sh), with `websockets`

Prints one line per check and exits non-zero on the first failure. Every wait is bounded.
"""
from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TIMEOUT = 5.0


def check(label: str, condition: bool, detail: object = "") -> None:
    if not condition:
        raise SystemExit(f"FAIL {label} {detail}")
    print(f"ok   {label}")


async def wait_for_members(count_members, room: str, expected: int) -> None:
    """Joining happens just after the handshake: wait until the room really holds everyone."""
    async with asyncio.timeout(TIMEOUT):
        while await count_members(room) != expected:
            await asyncio.sleep(0.02)


async def in_process() -> None:
    sys.path.insert(0, HERE)
    from chat_site.asgi import application
    from django.test import override_settings

    from bolt.testing import AsyncTestClient, WebSocketTestClient

    http = AsyncTestClient(application)
    with override_settings(ALLOWED_HOSTS=["testserver"]):
        page = await http.get("/")
    check("Django page /", page.status_code == 200 and "bolt chat" in page.text, page.status_code)

    async with WebSocketTestClient(application, "/ws/echo") as ws:
        await ws.send_text("hello")
        reply = await ws.receive_text()
    check("echo", reply == "Echo: hello", reply)

    async def members(room: str) -> int:
        return (await http.get(f"/api/rooms/{room}")).json()["members"]

    async with WebSocketTestClient(application, "/ws/chat/lobby", query_string="name=alice") as alice, \
            WebSocketTestClient(application, "/ws/chat/lobby", query_string="name=bob") as bob, \
            WebSocketTestClient(application, "/ws/chat/other", query_string="name=carol") as carol:
        await wait_for_members(members, "lobby", 2)
        await alice.send_text("hi all")
        expected = {"room": "lobby", "from": "alice", "text": "hi all"}
        check("chat reaches the sender", await alice.receive_json() == expected)
        check("chat reaches the room", await bob.receive_json() == expected)
        try:
            stray = await carol.receive_json(timeout=0.3)
        except TimeoutError:
            stray = None
        check("chat stays in its room", stray is None, stray)
    check("members leave on disconnect", await members("lobby") == 0)


async def against(base: str) -> None:
    from websockets.asyncio.client import connect

    ws_base = "ws" + base[len("http"):]

    def get(path: str) -> tuple[int, str]:
        with urllib.request.urlopen(base + path, timeout=TIMEOUT) as response:
            return response.status, response.read().decode()

    status, body = await asyncio.to_thread(get, "/")
    check("Django page /", status == 200 and "bolt chat" in body, status)

    async with connect(f"{ws_base}/ws/echo", open_timeout=TIMEOUT) as ws:
        await ws.send("hello")
        reply = await asyncio.wait_for(ws.recv(), TIMEOUT)
    check("echo", reply == "Echo: hello", reply)

    async def members(room: str) -> int:
        return json.loads((await asyncio.to_thread(get, f"/api/rooms/{room}"))[1])["members"]

    async with connect(f"{ws_base}/ws/chat/lobby?name=alice", open_timeout=TIMEOUT) as alice, \
            connect(f"{ws_base}/ws/chat/lobby?name=bob", open_timeout=TIMEOUT) as bob, \
            connect(f"{ws_base}/ws/chat/other?name=carol", open_timeout=TIMEOUT) as carol:
        await wait_for_members(members, "lobby", 2)
        await alice.send("hi all")
        expected = {"room": "lobby", "from": "alice", "text": "hi all"}
        check("chat reaches the sender", json.loads(await asyncio.wait_for(alice.recv(), TIMEOUT)) == expected)
        check("chat reaches the room", json.loads(await asyncio.wait_for(bob.recv(), TIMEOUT)) == expected)
        try:
            stray = await asyncio.wait_for(carol.recv(), 0.3)
        except TimeoutError:
            stray = None
        check("chat stays in its room", stray is None, stray)
    async with asyncio.timeout(TIMEOUT):
        while await members("lobby"):
            await asyncio.sleep(0.02)
    check("members leave on disconnect", True)


if __name__ == "__main__":
    asyncio.run(against(sys.argv[1].rstrip("/")) if len(sys.argv) > 1 else in_process())
