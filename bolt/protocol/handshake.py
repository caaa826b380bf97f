"""The opening handshake (RFC 6455 section 4.2): parse the upgrade request, check it, answer.

Parsing is small but strict: under `bolt run` an upgrade request reaches this parser first
(`bolt.protocol.http.HeadReader` hands it over unparsed), so it refuses what a strict HTTP/1.1
parser refuses, and it is bounded in size and in header count.
"""

from __future__ import annotations

import binascii
import re
from http import HTTPStatus

from bolt import accel

__all__ = [
    "MAX_HEADERS",
    "MAX_REQUEST_SIZE",
    "HandshakeError",
    "Request",
    "accept_key",
    "build_response",
    "closing_response",
    "header_lines",
    "parse_header_list",
    "parse_request",
    "field_size",
    "head_too_large",
    "request_from_fields",
    "served_version",
    "valid_host",
    "validate_request",
]

MAX_REQUEST_SIZE = 64 * 1024  # request line and headers; more is refused with 431 (414: the line alone)
# Header lines; more are refused with 431. bolt.accel.parse_head's own limit, restated (a test holds the two equal).
MAX_HEADERS = 200

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

try:  # CPython's own SHA-1: in a busy server OpenSSL's (hashlib.sha1) costs several microseconds more per handshake
    from _sha1 import sha1 as _sha1
except ImportError:  # an interpreter without it
    from hashlib import sha1 as _sha1


class HandshakeError(Exception):
    """The upgrade request cannot be accepted; carries the HTTP answer to send instead."""

    def __init__(self, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers or []


def head_too_large(line_too_long: bool) -> HandshakeError:
    """The refusal of a request head past ``MAX_REQUEST_SIZE``: 414 when its request line alone is
    (RFC 9110 15.5.15: the target is what is too long), else 431."""
    if line_too_long:
        return HandshakeError(414, "Request target too long.")
    return HandshakeError(431, "Request headers too large.")


class Request:
    """A parsed upgrade request. ``headers`` keep their order; names are lower-cased."""

    __slots__ = ("method", "target", "http_version", "headers", "key", "subprotocols", "extensions")

    def __init__(self, method: str, target: str, http_version: str, headers: list[tuple[bytes, bytes]]) -> None:
        self.method = method
        self.target = target
        self.http_version = http_version
        self.headers = headers
        self.key = b""
        self.subprotocols: list[str] = []
        # Offered extensions in preference order: (name, [(param, value or None), ...]).
        self.extensions: list[tuple[str, list[tuple[str, str | None]]]] = []

    def __repr__(self) -> str:
        return f"Request(method={self.method!r}, target={self.target!r})"


def parse_request(head: bytes) -> Request:
    """Parse a request head (everything before the blank line, without it), as strictly as an HTTP/1.1
    parser: under `bolt run` this parser is the only one an upgrade meets (see `bolt.accel.parse_head`)."""
    try:
        method, target, version, headers = accel.parse_head(head, _NAMES, _REPEATING, _shared_headers)
    except ValueError as exc:
        raise HandshakeError(*exc.args) from None
    return _request(method, target, version, headers)


def request_from_fields(method: bytes, target: bytes, fields: list[tuple[bytes, bytes]],
                        http_version: bytes = b"1.1") -> Request:
    """A request an HTTP parser has already split into fields, checked as :func:`parse_request`
    checks the same request in bytes: written out as that head and parsed by it.

    ``http_version`` is the version the parser read (``b"1.0"``, say, which is refused).
    """
    # The parser has refused a colon, CR or LF in a name and CR or LF in a value; should one get
    # through, it must not move where a header starts or its name ends once written out.
    if any(b":" in name or b"\r" in value or b"\n" in value for name, value in fields):
        raise HandshakeError(400, "Malformed request header.")
    line = b"%s %s HTTP/%s" % (method, target, http_version)
    return parse_request(line + b"".join([b"\r\n%s: %s" % field for field in fields]))


# An open connection keeps its request's headers (the scope's) for its whole life. Most of them are
# the same on every connection, so those are kept once per process: the header names below, and
# whole headers whose value repeats. The table is bounded (a client choosing the values can fill it, which
# only stops further sharing), and so is each value it keeps.
_REPEATING = frozenset((
    b"host", b"upgrade", b"connection", b"origin", b"user-agent", b"sec-websocket-version",
    b"sec-websocket-extensions", b"sec-websocket-protocol", b"accept-encoding", b"accept-language",
    b"cache-control", b"pragma", b"accept",
))
_NAMES = {name: name for name in _REPEATING | {b"sec-websocket-key", b"cookie", b"authorization"}}
_shared_headers: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}


def _request(method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]]) -> Request:
    try:
        return Request(method.decode("ascii"), target.decode("ascii"), version.decode("ascii"), headers)
    except UnicodeDecodeError:
        raise HandshakeError(400, "Request line is not ASCII.") from None


def _tokens(values: list[bytes]) -> list[str]:
    """Comma-separated tokens of every value, lower-cased and trimmed."""
    out = []
    for value in values:
        for token in value.split(b","):
            token = token.strip()
            if token:
                out.append(token.decode("latin-1").lower())
    return out


def parse_header_list(values: list[bytes]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Parse ``Sec-WebSocket-Extensions`` values: ``name; p1; p2=v, name2`` into a list."""
    offers = []
    for value in values:
        for item in value.decode("latin-1").split(","):
            parts = [p.strip() for p in item.split(";")]
            if not parts[0]:
                continue
            params: list[tuple[str, str | None]] = []
            for p in parts[1:]:
                if not p:
                    continue
                k, eq, v = p.partition("=")
                params.append((k.strip().lower(), v.strip().strip('"') if eq else None))
            offers.append((parts[0].lower(), params))
    return offers


# The headers the handshake reads; validate_request collects them in one pass over the request's.
_HANDSHAKE_FIELDS = frozenset((
    b"host", b"upgrade", b"connection", b"sec-websocket-version", b"sec-websocket-key",
    b"sec-websocket-protocol", b"sec-websocket-extensions", b"content-length", b"transfer-encoding",
))


def validate_request(request: Request) -> None:
    """Check the upgrade request against RFC 6455 section 4.2.1, filling key, subprotocols, extensions.

    Raises :class:`HandshakeError` with 426 when the client did not ask for a WebSocket (or
    asked for another version) and 400 for a malformed WebSocket request.
    """
    fields: dict[bytes, list[bytes]] = {}
    for name, value in request.headers:
        if name in _HANDSHAKE_FIELDS:
            values = fields.get(name)
            if values is None:
                fields[name] = [value]
            else:
                values.append(value)
    _check_upgrade(request, fields)
    hosts = fields.get(b"host", ())
    if len(hosts) != 1:
        raise HandshakeError(400, "Exactly one Host header is required.")
    if not valid_host(hosts[0]):
        raise HandshakeError(400, "Invalid Host header.")
    # The bytes after the head are the WebSocket's: a body would be read as frames, and a proxy that
    # reads it as a body would disagree with this server on where the WebSocket starts.
    if b"transfer-encoding" in fields or fields.get(b"content-length", [b"0"]) != [b"0"]:
        raise HandshakeError(400, "An upgrade request has no body.")
    request.key = _websocket_key(fields.get(b"sec-websocket-key", []))
    protocols = fields.get(b"sec-websocket-protocol")
    if protocols:
        offered = [token.strip() for value in protocols for token in value.split(b",") if token.strip()]
        if not all(_TOKEN.fullmatch(token) for token in offered):
            # RFC 6455 4.1: a comma-separated list of tokens. Passed on, "a b" or "a;b" could come
            # back in the 101 as the one subprotocol an app picked.
            raise HandshakeError(400, "Invalid Sec-WebSocket-Protocol header.")
        request.subprotocols = [token.decode("ascii") for token in offered]
    extensions = fields.get(b"sec-websocket-extensions")
    if extensions:
        request.extensions = parse_header_list(extensions)


# RFC 9110 section 5.6.2: a token, as a subprotocol name must be.
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

# RFC 9112 section 3.2: uri-host [ ":" port ] (RFC 3986 section 3.2.2): an IP literal in brackets or
# a registered name (possibly empty), of unreserved, sub-delims and percent-encoded characters only.
_HOST = re.compile(rb"(?:\[[0-9A-Za-z._~!$&'()*+,;=:-]+\]|[0-9A-Za-z._~!$&'()*+,;=%-]*)(?::[0-9]*)?")


def field_size(name: bytes, value: bytes) -> int:
    """The bytes a header line takes in a request head (``name: value`` and its CRLF), as every parser
    here counts a head against ``MAX_REQUEST_SIZE``."""
    return len(name) + len(value) + 4


def served_version(version: str) -> str:
    """The HTTP version a request of ``version`` is served as: a later HTTP/1 minor version as 1.1
    (RFC 9112 section 2.3), any other as it is."""
    return "1.1" if version[:2] == "1." and version not in ("1.0", "1.1") else version


def valid_host(value: bytes) -> bool:
    """Whether ``value`` is a Host header a server may accept (RFC 9112 section 3.2: 400 otherwise)."""
    return _HOST.fullmatch(value) is not None


_WEBSOCKET = [b"websocket"]
_UPGRADE = ([b"Upgrade"], [b"upgrade"], [b"keep-alive, Upgrade"])


def _check_upgrade(request: Request, fields: dict[bytes, list[bytes]]) -> None:
    """A GET over HTTP/1.1 (or a later 1.x, read as 1.1) asking to upgrade to WebSocket version 13."""
    if request.method != "GET":
        raise HandshakeError(405, "WebSocket upgrades must use GET.", [(b"allow", b"GET")])
    if served_version(request.http_version) != "1.1":
        raise HandshakeError(400, "WebSocket upgrades need HTTP/1.1.")
    if request.target[:1] != "/":
        request.target = origin_form(request.target)
    # The connection closes after the refusal: its Connection header says so beside the upgrade.
    upgrade_needed = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade, close")]
    # The values every browser sends are recognised whole before any is split into tokens.
    upgrade = fields.get(b"upgrade", [])
    if upgrade != _WEBSOCKET and "websocket" not in _tokens(upgrade):
        raise HandshakeError(426, "This endpoint speaks WebSocket: send 'Upgrade: websocket'.", upgrade_needed)
    connection = fields.get(b"connection", [])
    if connection not in _UPGRADE and "upgrade" not in _tokens(connection):
        raise HandshakeError(426, "This endpoint speaks WebSocket: send 'Connection: Upgrade'.", upgrade_needed)
    if fields.get(b"sec-websocket-version") != [b"13"]:
        # A 426 names the protocol to upgrade to (RFC 9110 section 15.5.22), here with the version.
        raise HandshakeError(426, "Unsupported WebSocket version; this server speaks version 13.",
                             [*upgrade_needed, (b"sec-websocket-version", b"13")])


# An absolute-form target (RFC 9112 section 3.2.2), which a server must accept: scheme, authority, path.
_ABSOLUTE_FORM = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]+)([^#]*)")


def origin_form(target: str) -> str:
    """The path and query of an absolute-form target; 400 for a target that is neither that nor a path,
    or whose authority is no host a Host header could name (user information included)."""
    absolute = _ABSOLUTE_FORM.fullmatch(target)
    if absolute is None or not valid_host(absolute.group(1).encode("ascii")):
        raise HandshakeError(400, "The request target must be a path or an absolute URI.")
    path = absolute.group(2)
    return path if path[:1] == "/" else "/" + path  # "ws://host" and "ws://host?q" address the root


def _websocket_key(keys: list[bytes]) -> bytes:
    """The one Sec-WebSocket-Key, which must be 16 bytes in base64."""
    if len(keys) != 1:
        raise HandshakeError(400, "Exactly one Sec-WebSocket-Key header is required.")
    try:
        raw = binascii.a2b_base64(keys[0], strict_mode=True)  # only the base64 alphabet, padded as it must be
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise HandshakeError(400, "Sec-WebSocket-Key must be 16 bytes, base64-encoded.")
    return keys[0]


def accept_key(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` value proving the server read ``key``."""
    return binascii.b2a_base64(_sha1(key + _GUID).digest(), newline=False)


def _status_line(status: int) -> bytes:
    try:
        reason = HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        reason = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


# Every status line of a known status, made once: an enum lookup per response costs more than the rest.
_STATUS_LINES = {status.value: _status_line(status.value) for status in HTTPStatus}


def header_lines(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The lines of ``headers`` in a response head, each ending in CRLF.

    ValueError for a header that would split the response or move a name's end: a CR or LF
    anywhere, or a colon in a name.
    """
    lines = [b"%s: %s\r\n" % header for header in headers]
    fields = b"".join(lines)
    # Each test runs over all the headers at once. find, not `in`: on bytes, `in` first tries its
    # operand as an int, raising and clearing a TypeError inside CPython.
    if (fields.count(b"\n") != len(lines) or fields.count(b"\r") != len(lines)
            or b"".join([name for name, _ in headers]).find(b":") >= 0):
        for name, value in headers:
            if b"\r" in name or b"\n" in name or b"\r" in value or b"\n" in value or b":" in name:
                raise ValueError(f"invalid response header {name!r}")
    return fields


def closing_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A whole response after which the connection closes: ``headers`` plus the content type (plain
    text), length and ``connection: close`` they lack."""
    names = {name.lower() for name, _ in headers}
    extra = []
    if b"content-type" not in names and body:
        extra.append((b"content-type", b"text/plain; charset=utf-8"))
    if b"content-length" not in names:
        extra.append((b"content-length", str(len(body)).encode("ascii")))
    if b"connection" not in names:
        extra.append((b"connection", b"close"))
    return build_response(status, list(headers) + extra, body)


def build_response(status: int, headers: list[tuple[bytes, bytes]], body: bytes | None = None) -> bytes:
    """Serialise an HTTP/1.1 response head (and body, when given).

    Header names and values must not contain CR or LF, nor names a colon (ValueError).
    """
    status_line = _STATUS_LINES.get(status) or _status_line(status)
    return b"".join((status_line, header_lines(headers), b"\r\n", body or b""))
