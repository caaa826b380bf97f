"""What :meth:`ServerConnection.receive_data` returns.

A complete text message arrives as ``str`` and a complete binary message as ``bytes`` (no
wrapper object on the hot path); everything else is one of the small classes below, or the
:class:`~bolt.protocol.handshake.Request` that opens the connection.
"""

from __future__ import annotations

from .handshake import Request

__all__ = ["CloseReceived", "ConnectionFailed", "Event", "HandshakeFailed", "Ping", "Pong", "ProtocolError"]


class HandshakeFailed:
    """The upgrade request was invalid; an HTTP error answer is queued in ``data_to_send``."""

    __slots__ = ("status", "detail")

    def __init__(self, status: int, detail: str) -> None:
        self.status = status
        self.detail = detail

    def __repr__(self) -> str:
        return f"HandshakeFailed({self.status}, {self.detail!r})"


class Ping:
    """The peer pinged; the pong is already queued in ``data_to_send``."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"Ping({self.payload!r})"


class Pong:
    """The peer answered a ping (or sent an unsolicited pong)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __repr__(self) -> str:
        return f"Pong({self.payload!r})"


class CloseReceived:
    """The peer sent a close frame (``code`` 1005 when it carried none).

    If we had not closed yet, the state is now ``REMOTE_CLOSING``: answer with
    ``close(code)`` (messages may still be sent first). Otherwise the closing handshake is
    complete. Either way, close the transport after writing.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"CloseReceived({self.code}, {self.reason!r})"


class ConnectionFailed:
    """The peer broke the protocol; input is ignored from here on.

    Unless we had closed already, the state is now ``REMOTE_CLOSING``: send
    ``close(code, reason)`` and close the transport. Replies to messages received before
    the failure may be sent first.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason

    def __repr__(self) -> str:
        return f"ConnectionFailed({self.code}, {self.reason!r})"


# What receive_data returns: whole messages as str/bytes, everything else as an event object.
Event = str | bytes | Request | HandshakeFailed | Ping | Pong | CloseReceived | ConnectionFailed


class ProtocolError(Exception):
    """Raised inside the engine when the peer broke the protocol; it fails the connection with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
