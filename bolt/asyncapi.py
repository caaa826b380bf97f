"""The AsyncAPI 3.0 document of a BoltAPI's WebSocket routes.

A route is a channel: its address is the path template, its parameters the template's. What a
handler reads with `receive_json(Model)` cannot be seen from outside, so a route declares it:
`@api.websocket(path, receives=Model, sends=[Reply, Event])`. The endpoint of `api.realtime`
is described by its room protocol (docs/realtime-protocol.md). The handshake's credentials are the
security schemes of the route's backends, named as in the OpenAPI document.
"""
from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from bolt.models import transform_schema
from bolt.openapi import SecuritySchemes, openapi_path, route_policy
from bolt.realtime.endpoint import MAX_REF_LENGTH, VERSION
from bolt.realtime.names import MAX_ROOM_LENGTH
from bolt.routing import Route
from bolt.schemas import SchemaSet, strip_optional

ASYNCAPI_VERSION = "3.0.0"
COMPONENTS = "#/components/schemas/{name}"
WS_BINDING_VERSION = "0.1.0"
_ID = re.compile(r"[^A-Za-z0-9_]+")

# The rules of bolt/realtime/names.py, as a JSON Schema pattern (a test keeps the two equal).
ROOM_PATTERN = r"^[A-Za-z0-9_.:@/+=-]{1,%d}$" % MAX_ROOM_LENGTH
HANDSHAKE = ("The handshake passes the route's security pipeline (origin, rate limit, authentication, "
             "guards): a refusal is an HTTP 401, 403 or 429 with a JSON body where the server supports it, "
             "else a close with 1008 before the connection is accepted.")


def message_types(values: Any, option: str) -> tuple[Any, ...]:
    """A `receives=` / `sends=` option as a tuple of types; anything else is refused at registration."""
    if values is None:
        return ()
    items: Iterable[Any] = values if isinstance(values, (list, tuple)) else (values,)
    types = tuple(items)
    for item in types:
        if item is None or isinstance(item, (str, bytes, int, float, bool, dict)):
            raise TypeError(f"{option}= takes types (a model, or a list of them), not {item!r}")
    return types


def _ref(name: str) -> dict[str, str]:
    return {"$ref": COMPONENTS.format(name=name)}


def _object(title: str, properties: dict[str, Any], required: Iterable[str], description: str) -> dict[str, Any]:
    return {"title": title, "description": description, "type": "object", "properties": properties,
            "required": list(required)}


def protocol_schemas(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The messages of the room protocol, version 1, as JSON Schemas; `data` is what a publish carries."""
    room = _ref("Room")
    ref = _ref("Ref")
    member = _ref("Member")
    members = {"type": "array", "items": member}
    error = {"type": "object", "properties": {"code": {"type": "string", "examples": [
        "bad_json", "bad_message", "unknown_type", "invalid_room", "forbidden", "not_joined", "too_many_rooms",
        "no_history", "invalid_data", "rate_limited", "unavailable", "unauthorized", "internal"]},
        "reason": {"type": "string"}}, "required": ["code", "reason"]}
    return {
        "Room": {"type": "string", "pattern": ROOM_PATTERN, "description": "A room name."},
        "Ref": {"description": "Echoed in the reply to this message.",
                "anyOf": [{"type": "string", "maxLength": MAX_REF_LENGTH}, {"type": "integer"}]},
        "Member": _object("Member", {"connection": {"type": "string"}, "user": {"type": ["string", "null"]}},
                          ["connection", "user"], "One connection in a room."),
        "Join": _object("Join", {"type": {"const": "join"}, "room": room, "ref": ref,
                                 "since": {"type": "integer", "minimum": 0},
                                 "presence": {"type": "boolean"}}, ["type", "room"],
                        "Join a room; with `since`, first receive what the room still holds after that id; "
                        "with `presence`, receive who is in the room and who comes and goes."),
        "Leave": _object("Leave", {"type": {"const": "leave"}, "room": room, "ref": ref}, ["type", "room"],
                         "Leave a room."),
        "Publish": _object("Publish", {"type": {"const": "publish"}, "room": room, "ref": ref, "data": data},
                           ["type", "room", "data"], "Broadcast `data` to everyone in a room the connection is in."),
        "Ping": _object("Ping", {"type": {"const": "ping"}, "ref": ref}, ["type"], "Ask for a reply."),
        "Auth": _object("Auth", {"type": {"const": "auth"}, "token": {"type": "string", "minLength": 1}, "ref": ref},
                        ["type", "token"],
                        "Fresh credentials for the open connection, checked as at the handshake, before the ones "
                        "it was opened with expire (then it is closed with 4401)."),
        "Hello": _object("Hello", {"type": {"const": "hello"}, "version": {"const": VERSION},
                                   "connection": {"type": "string"}, "user": {"type": ["string", "null"]},
                                   "max_rooms": {"type": "integer", "minimum": 1},
                                   "message_limit": {
                                       "type": "object", "required": ["rate", "burst"],
                                       "properties": {"rate": {"type": "number", "exclusiveMinimum": 0},
                                                      "burst": {"type": "integer", "minimum": 1}},
                                       "description": "The route's message rate limit (messages per second, "
                                                      "burst), when it has one."}},
                         ["type", "version", "connection", "user", "max_rooms"],
                         "Sent once, right after the handshake."),
        "RoomMessage": _object("RoomMessage", {"room": {"type": "string"}, "id": {"type": "integer"}, "data": {}},
                               ["room", "data"],
                               "A message in a room (`id` in rooms with history); `~c:` and `~u:` rooms carry "
                               "messages sent to this connection or its user."),
        "Gap": _object("Gap", {"room": {"type": "string"}, "gap": {
            "type": "object", "properties": {"after": {"type": ["integer", "null"]},
                                             "before": {"type": ["integer", "null"]}},
            "required": ["after", "before"]}}, ["room", "gap"],
            "Messages after `after` and before `before` are lost to this connection."),
        "Reply": _object("Reply", {"type": {"const": "reply"}, "ref": ref, "ok": {"type": "boolean"},
                                   "id": {"type": "integer"}, "error": error,
                                   "expires_at": {"type": ["number", "null"]}}, ["type", "ok"],
                         "The one answer to a message that carried a `ref` (and to every ping); to an accepted "
                         "`auth`, `expires_at` is when the new credentials expire (epoch seconds, null: never)."),
        "ProtocolError": _object("ProtocolError", {"type": {"const": "error"}, "error": error}, ["type", "error"],
                                 "A message without a `ref` failed; the connection stays open."),
        "Presence": {"title": "Presence", "description": "Who is in a room: the full list after a join, then changes.",
                     "oneOf": [
                         _object("PresenceList", {"type": {"const": "presence"}, "room": {"type": "string"},
                                                  "members": members}, ["type", "room", "members"],
                                 "Everyone in the room."),
                         _object("PresenceChange", {"type": {"const": "presence"}, "room": {"type": "string"},
                                                    "join": members, "leave": members},
                                 ["type", "room", "join", "leave"], "Members that came and went."),
                     ]},
    }


CLIENT_MESSAGES = ("Join", "Leave", "Publish", "Ping", "Auth")
SERVER_MESSAGES = ("Hello", "RoomMessage", "Gap", "Reply", "ProtocolError", "Presence")


class AsyncAPIBuilder:
    """Builds the document of one api; a new builder for each document."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.schemas = SchemaSet(COMPONENTS)
        self.security = SecuritySchemes()
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}

    def build(self, *, host: str | None = None, scheme: str | None = None, root_path: str = "") -> dict[str, Any]:
        for route in self.api.router.routes:
            if route.kind == "websocket" and route.options.get("include_in_schema", True):
                self.channel(route)
        info: dict[str, Any] = {"title": self.api.title, "version": self.api.version}
        if self.api.description:
            info["description"] = self.api.description
        document: dict[str, Any] = {"asyncapi": ASYNCAPI_VERSION, "info": info}
        if host:
            document["servers"] = servers(host, scheme, root_path)
        document["defaultContentType"] = "application/json"
        document["channels"] = self.channels
        document["operations"] = self.operations
        components: dict[str, Any] = {"schemas": {name: transform_schema(schema, _draft07)
                                                  for name, schema in sorted(self.schemas.components.items())}}
        if self.security.schemes:
            components["securitySchemes"] = {name: _asyncapi_scheme(s) for name, s in self.security.schemes.items()}
        document["components"] = components
        return document

    def _channel_id(self, route: Route) -> str:
        base = _ID.sub("_", route.path).strip("_") or "root"
        candidate, n = base, 1
        while candidate in self.channels:
            n += 1
            candidate = f"{base}_{n}"
        return candidate

    def channel(self, route: Route) -> None:
        channel_id = self._channel_id(route)
        channel: dict[str, Any] = {"address": openapi_path(route.path), "description": HANDSHAKE}
        parameters, bindings = self._handshake(route)
        if parameters:
            channel["parameters"] = parameters
        if bindings:
            channel["bindings"] = {"ws": {**bindings, "bindingVersion": WS_BINDING_VERSION}}
        self.channels[channel_id] = channel
        endpoint = route.options.get("realtime")
        if endpoint is not None:
            received, sent = self._protocol(endpoint)
            channel["description"] = ("bolt's room protocol, version 1 (docs/realtime-protocol.md): many rooms "
                                      "over one socket, with resume, presence, publish and replies. " + HANDSHAKE)
        else:
            received = self._messages(route.options.get("receives") or (), channel_id, "received")
            sent = self._messages(route.options.get("sends") or (), channel_id, "sent")
        channel["messages"] = {**received, **sent}
        security = self._security(route)
        here = {"$ref": f"#/channels/{channel_id}"}

        def refs(messages: dict[str, Any]) -> list[dict[str, str]]:
            return [{"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in messages]

        receive: dict[str, Any] = {"action": "receive", "channel": here, "messages": refs(received),
                                   "summary": "Messages a client sends on this channel."}
        if endpoint is not None:
            receive["reply"] = {"channel": here, "messages": [{"$ref": f"#/channels/{channel_id}/messages/Reply"}]}
        if security:
            receive["security"] = security
        self.operations[f"receive_{channel_id}"] = receive
        if sent:
            send: dict[str, Any] = {"action": "send", "channel": here, "messages": refs(sent),
                                    "summary": "Messages the server sends on this channel."}
            if security:
                send["security"] = security
            self.operations[f"send_{channel_id}"] = send

    def _handshake(self, route: Route) -> tuple[dict[str, Any], dict[str, Any]]:
        """The path parameters, and the query and headers the handler reads (as the ws binding has them)."""
        parameters = {name: {"description": "A path parameter."} for name in route.param_names}
        query: dict[str, Any] = {}
        headers: dict[str, Any] = {}
        required: dict[str, list[str]] = {"query": [], "header": []}
        for spec in route.binder.specs:
            if spec.source == "path" and spec.key in parameters:
                kind = self.schemas.schema(strip_optional(spec.annotation)).get("type", "string")
                parameters[spec.key] = {"description": f"A path parameter ({kind})."}
            elif spec.source in ("query", "header"):
                target = query if spec.source == "query" else headers
                target[spec.key] = self.schemas.schema(strip_optional(spec.annotation))
                if spec.default is inspect.Parameter.empty:
                    required[spec.source].append(spec.key)
            elif spec.source == "query_model":  # each field is a query parameter of its own
                fields, needed = self.schemas.fields(spec.annotation)
                query.update(fields)
                required["query"] += [key for key in fields if key in needed]
        bindings: dict[str, Any] = {}
        if query:
            bindings["query"] = {"type": "object", "properties": query, "required": required["query"]}
        if headers:
            bindings["headers"] = {"type": "object", "properties": headers, "required": required["header"]}
        return parameters, bindings

    def _messages(self, types: Iterable[Any], channel_id: str, direction: str) -> dict[str, Any]:
        messages: dict[str, Any] = {}
        for n, annotation in enumerate(types, 1):
            schema = self.schemas.schema(annotation)
            name = schema["$ref"].rsplit("/", 1)[-1] if "$ref" in schema else f"{direction}_{n}"
            messages[name] = {"name": name, "title": name, "payload": transform_schema(schema, _draft07)}
        return messages

    def _protocol(self, endpoint: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        data = self.schemas.schema(endpoint.model) if endpoint.model is not None else {}
        for name, schema in protocol_schemas(data).items():
            self.schemas.components.setdefault(name, schema)

        def message(name: str) -> dict[str, Any]:
            schema = self.schemas.components[name]
            return {"name": name, "title": name, "summary": schema["description"], "payload": _ref(name)}

        return ({name: message(name) for name in CLIENT_MESSAGES},
                {name: message(name) for name in SERVER_MESSAGES})

    def _security(self, route: Route) -> list[dict[str, str]]:
        policy = route_policy(self.api, route)
        names = [name for backend in policy.backends for name in self.security.names(backend)]
        return [{"$ref": f"#/components/securitySchemes/{name}"} for name in dict.fromkeys(names)]


def _draft07(schema: dict[str, Any]) -> dict[str, Any]:
    """One schema object of msgspec or pydantic (JSON Schema 2020-12, OpenAPI's discriminator) in
    AsyncAPI's default schema format, a superset of draft-07: a discriminator is the name of the
    property, and the items of a tuple are a list."""
    discriminator = schema.get("discriminator")
    if isinstance(discriminator, dict):
        schema["discriminator"] = discriminator["propertyName"]
    if "prefixItems" in schema:
        rest = schema.pop("items", None)
        schema["items"] = schema.pop("prefixItems")
        if rest is not None:
            schema["additionalItems"] = rest  # false for a fixed-length tuple
    return schema


def _asyncapi_scheme(scheme: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI security scheme in AsyncAPI's words: an API key over HTTP is `httpApiKey`."""
    if scheme.get("type") == "apiKey":
        return {**scheme, "type": "httpApiKey"}
    return scheme


def servers(host: str, scheme: str | None = None, root_path: str = "") -> dict[str, Any]:
    """The document's `servers`: the one a client reached it at (`host` as its Host header gave it)."""
    server: dict[str, Any] = {"host": host, "protocol": "wss" if scheme in ("https", "wss") else "ws"}
    if root_path:
        server["pathname"] = root_path
    return {"default": server}


def asyncapi_document(api: Any, *, host: str | None = None, scheme: str | None = None,
                      root_path: str = "") -> dict[str, Any]:
    """The AsyncAPI 3.0 document of `api`'s WebSocket routes, as a JSON-ready dict."""
    return AsyncAPIBuilder(api).build(host=host, scheme=scheme, root_path=root_path)


__all__ = ["AsyncAPIBuilder", "asyncapi_document", "message_types", "protocol_schemas"]
