"""uvicorn's protocol tests with bolt's WebSocket protocol as a third implementation, and bolt's HTTP protocols.

tests/protocol/run_uvicorn_suite.sh copies this file as ``tests/protocols/conftest.py`` into
the uvicorn sdist it fetched (the one matching the installed uvicorn), where it overrides the
suite's ``ws_protocol_cls`` fixture, and its ``http_protocol_cls`` one to add bolt's HTTP protocols
to uvicorn's: the WebSocket tests (test_websocket.py) run behind all five, uvicorn's HTTP protocol
tests (test_http.py) on all but HeadReader. bolt's own pytest run never loads it: this folder holds no
conftest.py and no test module.

``DEVIATIONS`` lists the tests bolt's protocol fails on purpose, with the reason; each is
marked strictly expected to fail, so the run fails on any other failure and on a listed test
that passes. docs/protocol.md lists the same ids (tests/protocol/test_uvicorn_suite.py checks).
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest
from uvicorn.importer import import_from_string

BOLT = "bolt.protocol:WebSocketProtocol"

# Test name (without the parameters) -> why bolt answers differently, on every HTTP protocol.
DEVIATIONS: dict[str, str] = {
    "test_duplicate_handshake": "an app error after accept is answered with a 1011 close frame; uvicorn drops TCP (1006)",
    "test_asgi_return_value": "an app returning a value after accept is an app error: 1011 close frame, not a dropped TCP (1006)",
    "test_close_transport_on_asgi_return": "an app returning after accept without closing gets a 1000 close frame, "
    "not a dropped TCP (1006)",
    "test_close_resumes_reads_paused_on_an_unconsumed_message": "reading pauses when ws_max_queue messages wait, "
    "not after each one, so one unread message does not pause it (the test's precondition)",
    "test_server_keepalive_ping_pong": "asserts the protocol is an instance of uvicorn's own two classes",
    "test_server_keepalive_disabled": "asserts the protocol is an instance of uvicorn's own two classes",
}


def _if_installed(module: str, path: str, id: str) -> Any:
    """A fixture parameter that skips when `module` is not installed."""
    missing = importlib.util.find_spec(module) is None
    return pytest.param(path, marks=pytest.mark.skipif(missing, reason=f"{module} not installed."), id=id)


_IMPLEMENTATIONS = [
    _if_installed("wsproto", "uvicorn.protocols.websockets.wsproto_impl:WSProtocol", "wsproto"),
    pytest.param("uvicorn.protocols.websockets.websockets_sansio_impl:WebSocketsSansIOProtocol", id="websockets-sansio"),
    pytest.param(BOLT, id="bolt"),
]
# BOLT_UVICORN_SUITE_ONLY=bolt runs bolt's class alone (CI); the default runs all three side by side.
_ONLY = os.environ.get("BOLT_UVICORN_SUITE_ONLY")
if _ONLY:
    _IMPLEMENTATIONS = [p for p in _IMPLEMENTATIONS if p.id == _ONLY]


@pytest.fixture(params=_IMPLEMENTATIONS)
def ws_protocol_cls(request: pytest.FixtureRequest) -> type:
    return import_from_string(request.param)


# The suite's HTTP parsers (uvicorn's httptools and h11 protocols), and bolt's: `HeadReader`, the first
# protocol of every `bolt run` connection, and the two uvicorn protocols with bolt's head deadline.
_HTTP = [
    _if_installed("httptools", "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol", "httptools"),
    pytest.param("uvicorn.protocols.http.h11_impl:H11Protocol", id="h11"),
    pytest.param("bolt.protocol.http:HeadReader", id="bolt-headreader"),
    pytest.param("bolt.protocol.http:HttpToolsProtocol", id="bolt-httptools"),
    pytest.param("bolt.protocol.http:H11Protocol", id="bolt-h11"),
]


@pytest.fixture(params=_HTTP)
def http_protocol_cls(request: pytest.FixtureRequest) -> type:
    if request.param.endswith(":HeadReader") and request.node.module.__name__.endswith("test_http"):
        # Those tests drive one protocol object with request after request; HeadReader hands the
        # connection to another protocol once it has read the first head.
        pytest.skip("HeadReader serves a connection's first request head only")
    return import_from_string(request.param)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is None or callspec.params.get("ws_protocol_cls") != BOLT:
            continue
        reason = DEVIATIONS.get(item.originalname)
        if reason is not None:
            item.add_marker(pytest.mark.xfail(reason=f"bolt deviates on purpose: {reason}", strict=True))
