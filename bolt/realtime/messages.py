"""What a broadcast carries, and its wire forms: plain, or enveloped with a sequence id in rooms with history.

Plain rooms send exactly what was broadcast: a str as a text message, bytes as a binary message,
anything else as JSON text. Rooms with history send JSON envelopes so a client can resume:

    {"room": "lobby", "id": 17, "data": <the message>}       a message; ids grow by one per broadcast
    {"room": "lobby", "data": <the message>}                 a room without history, to a room-protocol client
    {"room": "lobby", "gap": {"after": 5, "before": 12}}     messages after 5 and before 12 are lost
                                                             ("before" is null when not known)
"""
from __future__ import annotations

import time
from typing import Any, cast

import orjson

from bolt.models import json_default
from bolt.wire import SharedMessage

TEXT = "t"    # a str, sent as a text message
JSON = "j"    # anything else, encoded once as JSON text
BYTES = "b"   # bytes, sent as a binary message


class Message:
    """One broadcast, encoded once for all its recipients."""

    __slots__ = ("kind", "data", "seq", "time")

    def __init__(self, kind: str, data: str | bytes, seq: int | None = None, time: float = 0.0) -> None:
        self.kind = kind
        self.data = data
        self.seq = seq
        self.time = time

    @classmethod
    def from_value(cls, value: Any) -> Message:
        if isinstance(value, str):
            return cls(TEXT, value, time=time.time())
        if isinstance(value, (bytes, bytearray, memoryview)):
            return cls(BYTES, bytes(value), time=time.time())
        return cls(JSON, orjson.dumps(value, default=json_default).decode(), time=time.time())

    def payload(self) -> bytes:
        """The message as bytes, for backends that store or forward it."""
        return self.data if isinstance(self.data, bytes) else self.data.encode()

    @classmethod
    def from_payload(cls, kind: str, payload: bytes, seq: int | None, sent: float) -> Message:
        return cls(kind, payload if kind == BYTES else payload.decode(), seq, sent)

    def plain(self) -> dict[str, Any]:
        """The ASGI send message for a room without history."""
        if self.kind == BYTES:
            return {"type": "websocket.send", "bytes": self.data}
        return {"type": "websocket.send", "text": self.data}

    def envelope(self, room: str) -> dict[str, Any]:
        """The message wrapped with its room, and its id in rooms with history (not for bytes)."""
        data = cast(str, self.data) if self.kind == JSON else orjson.dumps(self.data).decode()
        head = orjson.dumps(room).decode()
        if self.seq is None:
            return {"type": "websocket.send", "text": f'{{"room":{head},"data":{data}}}'}
        return {"type": "websocket.send", "text": f'{{"room":{head},"id":{self.seq},"data":{data}}}'}


def shared(message: dict[str, Any]) -> SharedMessage:
    """An ASGI send message as a SharedMessage, for servers that write one encoding to many connections.

    It is batched: the hub flushes it once every recipient has it (see `Hub.deliver`)."""
    data = message.get("bytes")
    return SharedMessage(data if data is not None else message["text"], batched=True)


def gap(room: str, after: int | None, before: int | None) -> dict[str, Any]:
    """The ASGI send message telling a client that messages after `after` and before `before` are lost."""
    text = orjson.dumps({"room": room, "gap": {"after": after, "before": before}}).decode()
    return {"type": "websocket.send", "text": text}
