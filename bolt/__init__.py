"""bolt: fast, secure WebSockets and HTTP routes for Django projects."""
from bolt.api import BoltAPI
from bolt.exceptions import HTTPException
from bolt.params import Body, Cookie, Header, Path, Query
from bolt.realtime import PublishError
from bolt.requests import Request
from bolt.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from bolt.websocket import (
    CloseCode,
    MessageValidationError,
    WebSocket,
    WebSocketClose,
    WebSocketDisconnect,
    WebSocketState,
)

__all__ = [
    "BoltAPI", "Body", "CloseCode", "Cookie", "HTMLResponse", "HTTPException", "Header", "JSONResponse",
    "MessageValidationError", "Path", "PlainTextResponse", "PublishError", "Query", "Request", "Response",
    "StreamingResponse", "WebSocket", "WebSocketClose", "WebSocketDisconnect", "WebSocketState",
]
__version__ = "0.1.0"
