"""The HTTP `Request` a handler can ask for."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from bolt.connection import HTTPConnection
from bolt.exceptions import HTTPException

if TYPE_CHECKING:
    from bolt.security.origin import Admission

DEFAULT_MAX_BODY = 10 * 1024 * 1024


# A refusal that leaves the body unread closes the connection: the rest of the body would otherwise
# have to be read and thrown away before a next request, which the client may not even send.
_UNREAD_BODY = {"Connection": "close"}


class Request(HTTPConnection):
    """An HTTP request: method, headers, query, cookies, client, and the body read on demand."""

    def __init__(self, scope: dict[str, Any], receive: Any, path_params: dict[str, Any] | None = None,
                 max_body_size: int = DEFAULT_MAX_BODY) -> None:
        super().__init__(scope, path_params)
        self._receive = receive
        self._body: bytes | None = None
        self._max_body_size = max_body_size
        #: A cross-origin request the security pipeline admitted: its Origin and how it was admitted,
        #: for the CORS headers of the response. None for same-origin requests.
        self.cors: tuple[str, Admission] | None = None

    @property
    def method(self) -> str:
        return self.scope["method"]

    async def body(self) -> bytes:
        """The whole request body; 413 when it exceeds the api's `max_body_size`."""
        if self._body is None:
            # Read from the raw headers: the Headers index is built only for handlers that use it.
            declared = next((v for k, v in self.scope.get("headers") or () if k == b"content-length"), None)
            if declared is not None and declared.isdigit() and int(declared) > self._max_body_size:
                raise HTTPException(413, "Request body too large", _UNREAD_BODY)
            chunks: list[bytes] = []
            size = 0
            while True:
                message = await self._receive()
                if message["type"] == "http.disconnect":
                    raise HTTPException(400, "Client disconnected before sending the body")
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > self._max_body_size:
                    raise HTTPException(413, "Request body too large", _UNREAD_BODY)
                chunks.append(chunk)
                if not message.get("more_body", False):
                    break
            self._body = chunks[0] if len(chunks) == 1 else b"".join(chunks)  # one message: no copy
        return self._body

    async def json(self) -> Any:
        """The body parsed as JSON; 400 with a clear detail when it is not valid JSON."""
        body = await self.body()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise HTTPException(400, f"Invalid JSON body: {exc}") from None
