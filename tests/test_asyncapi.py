"""The AsyncAPI 3.0 document at /asyncapi.json.

No package on PyPI ships AsyncAPI's official JSON Schema or its JavaScript parser's checks, so the
document is checked three ways: by `asyncapi3` (pydantic models of the whole 3.0 specification, which
refuse unknown fields, wrong enums and misplaced security schemes), by resolving every `$ref` and
matching every channel address to its parameters (what AsyncAPI's own parser checks beyond the
schema), and by checking every schema in it is a valid JSON Schema. The room protocol's schemas are
then held against the messages a live `api.realtime` endpoint really sends and accepts.
"""
from __future__ import annotations

import dataclasses
import re
import time
import warnings
from typing import Annotated, Any

import jsonschema
import jwt
import msgspec
import pytest

from bolt import BoltAPI, Header, Query
from bolt.asyncapi import CLIENT_MESSAGES, ROOM_PATTERN, SERVER_MESSAGES
from bolt.auth import APIKeyAuthentication, IsAuthenticated, JWTAuthentication, SessionAuthentication
from bolt.realtime import names
from bolt.testing import AsyncTestClient, WebSocketTestClient
from demo_apps import jwt_room_api

with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)  # asyncapi3's models shadow a BaseModel attribute
    from asyncapi3 import AsyncAPI3

SECRET = "asyncapi-test-secret-of-32-bytes"


@dataclasses.dataclass
class ChatMessage:
    text: str


class Said(msgspec.Struct):
    user: str
    text: str


class Typing(msgspec.Struct):
    user: str


@dataclasses.dataclass
class Note:
    text: str


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs(value)]
    return []


def check(document: dict[str, Any]) -> None:
    """Valid AsyncAPI 3.0: the specification's models, every reference, every address, every schema."""
    AsyncAPI3.model_validate(document)
    for ref in refs(document):
        resolve(document, ref)
    for channel in document["channels"].values():
        assert set(re.findall(r"\{([^}]+)\}", channel["address"])) == set(channel.get("parameters", {}))
        for message in channel["messages"].values():  # AsyncAPI's default schema format: draft-07 and more
            jsonschema.Draft7Validator.check_schema(message["payload"])
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(schema)


def build_api() -> BoltAPI:
    api = BoltAPI(title="Chat", version="3.0", auth=[JWTAuthentication(secret=SECRET)])

    @api.websocket("/ws/chat/{room}", receives=ChatMessage, sends=[Said, Typing], guards=[IsAuthenticated()])
    async def chat(websocket, room: str, lang: str = "en", x_client: Annotated[str, Header()] = "") -> None:
        await websocket.accept()

    @api.websocket("/ws/notes/{note_id}", auth=[APIKeyAuthentication(["k"]), SessionAuthentication()])
    async def notes(websocket, note_id: int) -> None:
        await websocket.accept()

    @api.websocket("/ws/plain", auth=[])
    async def plain(websocket) -> None:
        await websocket.accept()

    api.realtime("/rt", can_join=True, can_publish=True, model=Note)
    return api


@pytest.fixture
def document() -> dict[str, Any]:
    return build_api().asyncapi(host="chat.example:8000")


def test_the_document_is_valid_asyncapi_3(document):
    assert document["asyncapi"] == "3.0.0"
    assert document["info"] == {"title": "Chat", "version": "3.0"}
    assert document["servers"] == {"default": {"host": "chat.example:8000", "protocol": "ws"}}
    check(document)


class Point(msgspec.Struct, tag="point"):
    at: tuple[int, str]


class Line(msgspec.Struct, tag="line"):
    points: list[Point]


def test_tagged_unions_and_tuples_in_asyncapis_schema_format():
    # msgspec writes JSON Schema 2020-12 with OpenAPI's discriminator object; AsyncAPI's default
    # format is draft-07 with a discriminator that names the property.
    api = BoltAPI()

    @api.websocket("/ws/shapes", receives=Point | Line)
    async def shapes(websocket) -> None:
        await websocket.accept()

    document = api.asyncapi()
    check(document)
    (payload,) = [m["payload"] for m in document["channels"]["ws_shapes"]["messages"].values()]
    assert payload["discriminator"] == "type"
    at = document["components"]["schemas"]["Point"]["properties"]["at"]
    assert at["items"] == [{"type": "integer"}, {"type": "string"}] and at["additionalItems"] is False
    schema = {**payload, "components": document["components"]}
    jsonschema.Draft7Validator(schema).validate({"type": "point", "at": [1, "a"]})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate({"type": "point", "at": [1, "a", 2]})


def test_channels_from_paths_parameters_and_handshake_inputs(document):
    chat = document["channels"]["ws_chat_room"]
    assert chat["address"] == "/ws/chat/{room}"
    assert chat["parameters"] == {"room": {"description": "A path parameter (string)."}}
    assert chat["bindings"]["ws"]["query"] == {"type": "object", "properties": {"lang": {"type": "string"}},
                                               "required": []}
    assert chat["bindings"]["ws"]["headers"]["properties"] == {"x-client": {"type": "string"}}
    notes = document["channels"]["ws_notes_note_id"]
    assert notes["parameters"] == {"note_id": {"description": "A path parameter (integer)."}}
    assert "parameters" not in document["channels"]["ws_plain"]


class Feed(msgspec.Struct):
    topic: str
    limit: int = 20


def test_a_query_models_fields_are_the_handshakes_query_parameters():
    api = BoltAPI()

    @api.websocket("/ws/feed")
    async def feed(websocket, params: Annotated[Feed, Query()], lang: str = "en") -> None:
        await websocket.accept()

    document = api.asyncapi()
    check(document)
    query = document["channels"]["ws_feed"]["bindings"]["ws"]["query"]
    assert query == {"type": "object", "required": ["topic"], "properties": {
        "topic": {"type": "string"}, "limit": {"type": "integer", "default": 20}, "lang": {"type": "string"}}}


def test_messages_from_receives_and_sends(document):
    chat = document["channels"]["ws_chat_room"]
    assert set(chat["messages"]) == {"ChatMessage", "Said", "Typing"}
    assert chat["messages"]["Said"]["payload"] == {"$ref": "#/components/schemas/Said"}
    assert document["components"]["schemas"]["ChatMessage"]["required"] == ["text"]
    receive = document["operations"]["receive_ws_chat_room"]
    assert receive["action"] == "receive"
    assert receive["messages"] == [{"$ref": "#/channels/ws_chat_room/messages/ChatMessage"}]
    send = document["operations"]["send_ws_chat_room"]
    assert send["action"] == "send"
    assert [m["$ref"].rsplit("/", 1)[-1] for m in send["messages"]] == ["Said", "Typing"]
    # A route that declares nothing has a channel and an operation with no messages.
    assert document["operations"]["receive_ws_plain"]["messages"] == []
    assert "send_ws_plain" not in document["operations"]


def test_security_schemes_per_route(document):
    schemes = document["components"]["securitySchemes"]
    assert {k: schemes["jwt"][k] for k in ("type", "scheme", "bearerFormat")} == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert {k: schemes["api_key"][k] for k in ("type", "in", "name")} == {
        "type": "httpApiKey", "in": "header", "name": "x-api-key"}
    assert {k: schemes["session"][k] for k in ("type", "in", "name")} == {
        "type": "httpApiKey", "in": "cookie", "name": "sessionid"}
    operations = document["operations"]
    assert operations["receive_ws_chat_room"]["security"] == [{"$ref": "#/components/securitySchemes/jwt"}]
    assert operations["receive_ws_notes_note_id"]["security"] == [
        {"$ref": "#/components/securitySchemes/api_key"}, {"$ref": "#/components/securitySchemes/session"}]
    assert "security" not in operations["receive_ws_plain"]


def test_receives_and_sends_take_types_only():
    api = BoltAPI()
    with pytest.raises(TypeError, match=r"receives= takes types"):
        api.websocket("/ws", receives="ChatMessage")
    with pytest.raises(TypeError, match=r"sends= takes types"):
        api.websocket("/ws", sends=[Said, {"type": "object"}])


def test_the_room_protocol_of_api_realtime(document):
    rt = document["channels"]["rt"]
    assert rt["address"] == "/rt" and "room protocol" in rt["description"]
    assert set(rt["messages"]) == set(CLIENT_MESSAGES) | set(SERVER_MESSAGES)
    receive, send = document["operations"]["receive_rt"], document["operations"]["send_rt"]
    assert [m["$ref"].rsplit("/", 1)[-1] for m in receive["messages"]] == list(CLIENT_MESSAGES)
    assert [m["$ref"].rsplit("/", 1)[-1] for m in send["messages"]] == list(SERVER_MESSAGES)
    assert receive["reply"]["messages"] == [{"$ref": "#/channels/rt/messages/Reply"}]
    # The endpoint's model is what a publish must carry.
    assert document["components"]["schemas"]["Publish"]["properties"]["data"] == {"$ref": "#/components/schemas/Note"}


def test_the_room_pattern_is_the_one_bolt_enforces():
    assert ROOM_PATTERN == f"^{names._ROOM_RE.pattern}$"


def validator(document: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": f"#/components/schemas/{name}",
                                            "components": document["components"]})


def test_client_messages_of_the_protocol_page_fit_and_bad_ones_do_not(document):
    good = [("Join", {"type": "join", "room": "lobby", "since": 5, "presence": True, "ref": 1}),
            ("Leave", {"type": "leave", "room": "lobby", "ref": "a"}),
            ("Publish", {"type": "publish", "room": "lobby", "data": {"text": "hi"}}),
            ("Ping", {"type": "ping"}),
            ("Auth", {"type": "auth", "token": "eyJhbGciOi.e30.sig", "ref": 5})]
    for name, message in good:
        validator(document, name).validate(message)
    bad = [("Join", {"type": "join", "room": "no spaces"}), ("Join", {"type": "join", "room": "a", "since": -1}),
           ("Publish", {"type": "publish", "room": "lobby", "data": {"text": 3}}),
           ("Leave", {"type": "leave", "room": "lobby", "ref": "x" * 65}),
           ("Auth", {"type": "auth", "token": ""}), ("Auth", {"type": "auth"})]
    for name, message in bad:
        assert not validator(document, name).is_valid(message), message


SERVER_TYPES = {"hello": "Hello", "reply": "Reply", "error": "ProtocolError", "presence": "Presence"}


def kind(message: dict[str, Any]) -> str:
    """Which of the document's server messages this one is, by its shape."""
    if "type" in message:
        return SERVER_TYPES[message["type"]]
    return "Gap" if "gap" in message else "RoomMessage"


@pytest.mark.asyncio
async def test_what_a_live_realtime_endpoint_sends_fits_the_document():
    api = BoltAPI()
    api.hub.keep_history("feed:", size=5)
    api.realtime("/rt", can_join=True, can_publish=True, model=Note)
    document = api.asyncapi()
    check(document)
    seen: dict[str, list[dict[str, Any]]] = {}
    async with WebSocketTestClient(api, "/rt") as ws:
        await ws.send_json({"type": "join", "room": "feed:a", "presence": True, "ref": 1})
        await ws.send_json({"type": "publish", "room": "feed:a", "data": {"text": "hi"}, "ref": "p"})
        await ws.send_json({"type": "publish", "room": "feed:a", "data": {"text": 3}, "ref": 2})
        await ws.send_json({"type": "dance"})
        await ws.send_json({"type": "ping", "ref": "last"})
        for _ in range(20):  # until the ping's reply: the messages before it, in whatever order they came
            message = await ws.receive_json(timeout=5)
            validator(document, kind(message)).validate(message)
            seen.setdefault(kind(message), []).append(message)
            if message.get("ref") == "last":
                break
    assert seen["Hello"][0]["version"] == 1
    first = seen["RoomMessage"][0]["id"]  # a new history's ids count on from the clock
    assert seen["RoomMessage"] == [{"room": "feed:a", "id": first, "data": {"text": "hi"}}]
    assert seen["ProtocolError"][0]["error"]["code"] == "unknown_type"
    assert [r["ok"] for r in seen["Reply"]] == [True, True, False, True]
    assert seen["Reply"][2]["error"]["code"] == "invalid_data"
    assert seen["Presence"][0]["members"] == [{"connection": seen["Hello"][0]["connection"], "user": None}]


@pytest.mark.asyncio
async def test_the_replies_to_auth_fit_the_document():
    secret = "asyncapi-test-secret-of-32-bytes!"
    api = jwt_room_api(secret)
    document = api.asyncapi()
    check(document)
    token = jwt.encode({"sub": "42", "exp": int(time.time()) + 60}, secret, algorithm="HS256")
    intruder = jwt.encode({"sub": "7", "exp": int(time.time()) + 60}, secret, algorithm="HS256")
    async with WebSocketTestClient(api, "/rt", headers={"Authorization": f"Bearer {token}"}) as ws:
        validator(document, "Hello").validate(await ws.receive_json())
        for message in ({"type": "auth", "token": token, "ref": 1}, {"type": "auth", "token": intruder, "ref": 2},
                        {"type": "auth", "token": "garbage"}):
            validator(document, "Auth").validate(message)
            await ws.send_json(message)
        accepted, refused, error = [await ws.receive_json() for _ in range(3)]
    validator(document, "Reply").validate(accepted)
    assert accepted["ok"] and isinstance(accepted["expires_at"], int)
    validator(document, "Reply").validate(refused)
    assert refused["error"]["code"] == "unauthorized"
    validator(document, "ProtocolError").validate(error)
    assert error["error"]["code"] == "unauthorized"


@pytest.mark.asyncio
async def test_served_at_asyncapi_json_with_the_requests_host():
    api = build_api()
    response = await AsyncTestClient(api).get("/asyncapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    served = response.json()
    assert served["servers"] == {"default": {"host": "testserver", "protocol": "ws"}}
    assert served == api.asyncapi(host="testserver", scheme="http")
    check(served)
    assert (await AsyncTestClient(BoltAPI(asyncapi_url=None)).get("/asyncapi.json")).status_code == 404
