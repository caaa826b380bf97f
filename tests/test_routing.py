"""Path templates, converters and match precedence."""
import uuid
from typing import Annotated

import pytest

from bolt import BoltAPI, WebSocket
from bolt.routing import Route, Router, converter_for, route_path
from bolt.testing import AsyncTestClient, HandshakeRejected, WebSocketTestClient


def make_router(*paths: str) -> Router:
    router = Router()
    for path in paths:
        router.add(Route(path, lambda: None, "http", frozenset({"GET"})))
    return router


def matched(router: Router, path: str):
    match = router.match(path)
    if match is None:
        return None
    route = match.leaf.http["GET"]
    return route.path, dict(zip(route.param_names, match.values))


def test_static_wins_over_parameter_in_any_registration_order():
    for order in [("/users/{id}", "/users/me"), ("/users/me", "/users/{id}")]:
        router = make_router(*order)
        assert matched(router, "/users/me") == ("/users/me", {})
        assert matched(router, "/users/42") == ("/users/{id}", {"id": "42"})


def test_backtracks_from_a_static_branch_that_dead_ends():
    router = make_router("/a/static/x", "/a/{p}/y")
    assert matched(router, "/a/static/y") == ("/a/{p}/y", {"p": "static"})


def test_a_leaf_without_a_route_for_the_request_does_not_hide_one_that_has_it():
    router = Router()
    router.add(Route("/users/{uid}", lambda: None, "http", frozenset({"GET"})))
    router.add(Route("/users/me", lambda: None, "http", frozenset({"POST"})))
    router.add(Route("/items/live", lambda: None, "websocket"))
    router.add(Route("/items/{iid}", lambda: None, "http", frozenset({"GET"})))
    router.add(Route("/feeds/{name}", lambda: None, "websocket"))
    router.add(Route("/feeds/all", lambda: None, "http", frozenset({"GET"})))
    router.add(Route("/files/{rest:path}", lambda: None, "http", frozenset({"GET"})))
    router.add(Route("/files/a/b", lambda: None, "http", frozenset({"PUT"})))

    def found(path: str, kind: str = "http", method: str = "GET"):
        match = router.match(path, kind, method)
        if match is None:
            return None
        leaf = match.leaf
        route = leaf.websocket if kind == "websocket" else leaf.http.get(method) or leaf.http.get("GET")
        return (route.path if route else sorted(leaf.http)), list(match.values)

    assert found("/users/me") == ("/users/{uid}", ["me"])
    assert found("/users/me", method="HEAD") == ("/users/{uid}", ["me"])
    assert found("/users/me", method="POST") == ("/users/me", [])
    assert found("/users/me", method="DELETE") == (["POST"], [])  # nothing serves it: the first path's 405
    assert found("/items/live") == ("/items/{iid}", ["live"])
    assert found("/items/live", "websocket") == ("/items/live", [])
    assert found("/items/7", "websocket") is None
    assert found("/feeds/all", "websocket") == ("/feeds/{name}", ["all"])
    assert found("/files/a/b") == ("/files/{rest:path}", ["a/b"])
    assert found("/files/a/b", method="PUT") == ("/files/a/b", [])


def test_an_options_route_is_found_like_any_method():
    router = Router()
    router.add(Route("/users/me", lambda: None, "http", frozenset({"POST"})))
    router.add(Route("/users/{uid}", lambda: None, "http", frozenset({"OPTIONS"})))
    match = router.match("/users/me", "http", "OPTIONS")
    assert match is not None and "OPTIONS" in match.leaf.http and list(match.values) == ["me"]


@pytest.mark.asyncio
async def test_a_route_for_another_method_or_kind_does_not_hide_a_template():
    api = BoltAPI()

    @api.get("/users/{uid}")
    async def user(uid: str):
        return {"uid": uid}

    @api.post("/users/me")
    async def update_me():
        return {"updated": True}

    @api.websocket("/items/live")
    async def live(websocket: WebSocket):
        await websocket.accept()
        await websocket.send_text("live")
        await websocket.close()

    @api.get("/items/{iid}")
    async def item(iid: str):
        return {"iid": iid}

    client = AsyncTestClient(api)
    assert (await client.get("/users/me")).json() == {"uid": "me"}
    assert (await client.post("/users/me")).json() == {"updated": True}
    refused = await client.delete("/users/me")
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"
    assert (await client.get("/items/live")).json() == {"iid": "live"}
    assert api.handles({"type": "http", "method": "GET", "path": "/items/live"})
    assert not api.handles({"type": "websocket", "path": "/items/7"})
    async with WebSocketTestClient(api, "/items/live") as ws:
        assert await ws.receive_text() == "live"


def test_several_parameters_and_catch_all():
    router = make_router("/u/{user}/c/{channel}", "/files/{rest:path}")
    assert matched(router, "/u/7/c/general") == ("/u/{user}/c/{channel}", {"user": "7", "channel": "general"})
    assert matched(router, "/files/a/b/c.txt") == ("/files/{rest:path}", {"rest": "a/b/c.txt"})
    assert matched(router, "/files/") is None
    assert matched(router, "/u/7/c") is None
    assert matched(router, "/u//c/x") is None  # empty segments never bind a parameter


def test_bad_templates_are_refused():
    for bad in ["no-slash", "/a/{x", "/a/{x:int}", "/a/{x:path}/b", "/a/{x}/{x}", "/a/pre{x}"]:
        with pytest.raises(ValueError):
            make_router(bad)


def test_duplicate_route_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        make_router("/a/{x}", "/a/{y}")


@pytest.mark.parametrize("raw,expected", [
    ("true", True), ("FALSE", False), ("1", True), ("0", False), ("Yes", True),
    ("no", False), ("ON", True), ("off", False),
])
def test_bool_converter(raw, expected):
    assert converter_for(bool)(raw) is expected


@pytest.mark.parametrize("annotation,raw", [
    (int, "1.5"), (int, "abc"), (int, "١٢"), (int, "1_000"), (int, " 1"), (int, "9" * 100),
    (float, "nan"), (float, "inf"), (float, "1e400"), (float, "x"), (bool, "maybe"), (uuid.UUID, "not-a-uuid"),
])
def test_converters_refuse_bad_values(annotation, raw):
    with pytest.raises(ValueError):
        converter_for(annotation)(raw)


def test_unsupported_annotation_is_refused_at_registration():
    api = BoltAPI()
    with pytest.raises(TypeError, match="unsupported parameter type"):
        @api.websocket("/ws/{when}")
        async def handler(websocket: WebSocket, when: bytes):
            pass


@pytest.mark.asyncio
async def test_guide_parameter_types_reach_the_handler():
    api = BoltAPI()
    uid = uuid.uuid4()

    @api.websocket("/ws/p/{i}/{f}/{b}/{u}/{s}")
    async def handler(websocket: WebSocket, i: int, f: float, b: bool, u: uuid.UUID, s: Annotated[str, "doc"]):
        await websocket.accept()
        await websocket.send_json([type(i).__name__, i, f, b, str(u), s, websocket.path_params["i"]])

    async with WebSocketTestClient(api, f"/ws/p/-5/2.5/on/{uid}/hello") as ws:
        assert await ws.receive_json() == ["int", -5, 2.5, True, str(uid), "hello", -5]


@pytest.mark.asyncio
@pytest.mark.parametrize("path,name", [("/ws/p/x/1.0/true", "i"), ("/ws/p/1/abc/true", "f"),
                                       ("/ws/p/1/1.0/perhaps", "b")])
async def test_each_bad_parameter_is_named_in_the_422(path, name):
    api = BoltAPI()

    @api.websocket("/ws/p/{i}/{f}/{b}")
    async def handler(websocket: WebSocket, i: int, f: float, b: bool):
        await websocket.accept()

    with pytest.raises(HandshakeRejected) as info:
        async with WebSocketTestClient(api, path):
            pass
    assert info.value.status_code == 422
    assert repr(name) in info.value.detail


@pytest.mark.asyncio
async def test_http_path_conversion_error_is_422_json():
    api = BoltAPI()

    @api.get("/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id}

    client = AsyncTestClient(api)
    assert (await client.get("/items/3")).json() == {"id": 3}
    response = await client.get("/items/three")
    assert response.status_code == 422
    assert response.json() == {"detail": "Invalid path parameter 'item_id': expected an integer"}


def test_matching_cost_does_not_grow_with_route_count():
    # Count tree nodes visited instead of timing: deterministic and machine-independent.
    small = make_router(*[f"/r{i}/{{id}}" for i in range(10)])
    large = make_router(*[f"/r{i}/{{id}}" for i in range(5000)])
    visits = {}
    for name, router in (("small", small), ("large", large)):
        count = 0
        walk = router._walk

        def counting(*args, walk=walk):
            nonlocal count
            count += 1
            return walk(*args)

        router._walk = counting
        assert router.match("/r9/42") is not None
        visits[name] = count
    assert visits["small"] == visits["large"]


def test_handler_with_unresolvable_string_annotations():
    # As in a module with `from __future__ import annotations` whose names were imported in a function.
    api = BoltAPI()

    async def handler(websocket: "LocalWebSocket", room: "str"):  # noqa: F821
        await websocket.accept()
        await websocket.send_text(room)

    api.websocket("/ws/{room}")(handler)

    async def check():
        async with WebSocketTestClient(api, "/ws/lobby") as ws:
            assert await ws.receive_text() == "lobby"

    import asyncio
    asyncio.run(check())

    async def bad(websocket: WebSocket, n: "LocalInt"):  # noqa: F821
        pass

    with pytest.raises(TypeError, match="import that name at module level"):
        api.websocket("/ws2/{n}")(bad)


def test_route_path_strips_the_root_path_at_a_segment_boundary():
    assert route_path({"path": "/api/ws", "root_path": "/api"}) == "/ws"
    assert route_path({"path": "/api", "root_path": "/api"}) == ""
    assert route_path({"path": "/apiary/ws", "root_path": "/api"}) == "/apiary/ws"  # not below /api
    assert route_path({"path": "/ws", "root_path": "/api"}) == "/ws"  # a server that left the root out
    assert route_path({"path": "/ws"}) == "/ws"


def test_a_misspelt_route_option_is_refused_at_registration():
    # `gaurds=` taken silently would leave the route open.
    api = BoltAPI()
    with pytest.raises(TypeError, match="unknown route option.* gaurds"):
        @api.websocket("/ws", gaurds=[])
        async def ws(websocket): ...
    with pytest.raises(TypeError, match="unknown route option.* can_joins"):
        api.realtime("/rt", can_joins=True)
    with pytest.raises(TypeError, match="unknown route option.* response_models"):
        @api.get("/items", response_models=dict)
        async def items(): ...
    @api.websocket("/ws/ok", include_in_schema=False, send_queue=8, allow_missing_origin=True)
    async def fine(websocket): ...
