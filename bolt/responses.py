"""HTTP responses: plain bytes, text, HTML, JSON (orjson) and streamed bodies."""
from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

import anyio
import orjson

from bolt.datastructures import raw_headers
from bolt.models import json_default

_CONTENT_TYPES: dict[tuple[str, str], bytes] = {}


async def _cancel_on_disconnect(receive: Any, scope: anyio.CancelScope) -> None:
    """Cancel `scope` when the client disconnects (reading, and dropping, a body nobody read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def _has_content(status_code: int) -> bool:
    """Whether a response with this status may carry content: not a 1xx, 204 or 304 (RFC 9110 6.4.1),
    whose head is the whole response (RFC 9112 6.3), so a body would be read as the next response."""
    return status_code >= 200 and status_code != 204 and status_code != 304


def _content_type(media_type: str, charset: str) -> bytes:
    """The content-type header value, encoded once per media type."""
    value = _CONTENT_TYPES.get((media_type, charset))
    if value is None:
        text = f"{media_type}; charset={charset}" if media_type.startswith("text/") else media_type
        value = _CONTENT_TYPES[media_type, charset] = text.encode("latin-1")
    return value


class Response:
    """A complete HTTP response; the body is sent in one piece."""

    media_type: str | None = None
    charset = "utf-8"

    def __init__(self, content: Any = b"", status_code: int = 200,
                 headers: Mapping[str, str] | None = None, media_type: str | None = None) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        if not _has_content(status_code):
            self.body = b""
            self.raw_headers = self._build_headers(headers, content=False)
            return
        self.body = body = self.render(content)
        if headers or self.media_type is None:
            self.raw_headers = self._build_headers(headers)
        else:  # the common case, on every request: written out rather than merged
            self.raw_headers = [(b"content-length", b"%d" % len(body)),
                                (b"content-type", _content_type(self.media_type, self.charset))]

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        if isinstance(content, (bytes, bytearray, memoryview)):
            return bytes(content)
        return str(content).encode(self.charset)

    def _build_headers(self, headers: Mapping[str, str] | None, length: bool = True,
                       content: bool = True) -> list[tuple[bytes, bytes]]:
        """``headers`` with the content's length (unless not ``length``) and type added; neither
        without ``content``."""
        raw = raw_headers(headers)
        if not content:
            return raw
        names = {k for k, _ in raw}
        if length and b"content-length" not in names:
            raw.append((b"content-length", b"%d" % len(self.body)))
        if self.media_type is not None and b"content-type" not in names:
            raw.append((b"content-type", _content_type(self.media_type, self.charset)))
        return raw

    def set_header(self, name: str, value: str) -> None:
        """Set (replace) one response header."""
        key = name.lower().encode("latin-1")
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != key]
        self.raw_headers.append((key, value.encode("latin-1")))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        body = b"" if scope.get("method") == "HEAD" else self.body
        await send({"type": "http.response.body", "body": body})


class PlainTextResponse(Response):
    media_type = "text/plain"


class HTMLResponse(Response):
    media_type = "text/html"


class JSONResponse(Response):
    """`content` serialized with orjson (dataclasses, UUIDs, datetimes, msgspec Structs and pydantic
    models included)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=json_default, option=orjson.OPT_NON_STR_KEYS)


class StreamingResponse(Response):
    """A body produced chunk by chunk from a (sync or async) iterable of bytes or str.

    When the client goes away before the end, the iteration is cancelled at its next await (an
    async generator's `finally` runs): an endless stream (server-sent events) ends with its client.
    """

    def __init__(self, content: Iterable[Any] | AsyncIterable[Any], status_code: int = 200,
                 headers: Mapping[str, str] | None = None, media_type: str | None = None) -> None:
        self.status_code = status_code
        if media_type is not None:
            self.media_type = media_type
        self.body = b""
        self.content = content
        self.raw_headers = self._build_headers(headers, length=False, content=_has_content(status_code))

    async def _chunks(self) -> AsyncIterable[Any]:
        if isinstance(self.content, AsyncIterable):
            async for chunk in self.content:
                yield chunk
        else:
            iterator = iter(self.content)
            done = object()
            while (chunk := await anyio.to_thread.run_sync(next, iterator, done)) is not done:
                yield chunk

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        if scope.get("method") != "HEAD" and _has_content(self.status_code):
            # A server keeps taking sends for a client that left: only receive() tells.
            finished = False
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_on_disconnect, receive, group.cancel_scope)
                async for chunk in self._chunks():
                    data = chunk if isinstance(chunk, bytes) else str(chunk).encode(self.charset)
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                finished = True
                group.cancel_scope.cancel()  # all sent: stop listening
            if not finished:
                return  # the client left
        await send({"type": "http.response.body", "body": b""})
