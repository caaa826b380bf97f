"""The OpenAPI 3.1 document of a BoltAPI's HTTP routes, and the security schemes of its backends.

Everything comes from what the routes already declare: the path template, the handler's
parameters as the binder reads them, its return annotation (or `response_model=`), the status
code, and the route's security policy (its backends become security schemes, its guards and
rate limit the 401/403/429 answers it can give).
"""
from __future__ import annotations

import inspect
import types
from typing import Any, Union, get_args, get_origin

import msgspec

from bolt.django import setting
from bolt.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from bolt.routing import Route, split_template
from bolt.schemas import SchemaSet, strip_optional
from bolt.security.auth import APIKeyAuthentication, JWTAuthentication, SessionAuthentication

OPENAPI_VERSION = "3.1.0"
COMPONENTS = "#/components/schemas/{name}"

# What bolt answers when it refuses a request itself: {"detail": "..."}.
ERROR_SCHEMA = {
    "title": "Error",
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# A 422: `errors` when a model's library found problems, each with where (`items[2].price`) and what.
VALIDATION_ERROR_SCHEMA = {
    "title": "ValidationError",
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {
            "type": "object", "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
            "required": ["loc", "msg"]}},
    },
    "required": ["detail"],
}
RATE_LIMITED_SCHEMA = {
    "title": "RateLimited",
    "type": "object",
    "properties": {"detail": {"type": "string"}, "retry_after": {"type": "integer", "minimum": 1}},
    "required": ["detail", "retry_after"],
}

# -- security schemes ---------------------------------------------------------------------------

def backend_schemes(backend: Any) -> dict[str, dict[str, Any]]:
    """The OpenAPI security schemes one authentication backend accepts credentials by, by name.

    A backend of another kind describes itself with an `openapi_security` attribute holding the
    same mapping; one without it is left out of the document.
    """
    if isinstance(backend, JWTAuthentication):
        schemes: dict[str, dict[str, Any]] = {}
        described = f"A JSON Web Token ({', '.join(backend.algorithms)})"
        if backend.header == "authorization":
            schemes["jwt"] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                              "description": f"{described} as `Authorization: Bearer <token>`."}
        elif backend.header is not None:
            schemes["jwt_header"] = {"type": "apiKey", "in": "header", "name": backend.header,
                                     "description": f"{described} in the {backend.header} header."}
        if backend.query_param is not None:
            schemes["jwt_query"] = {"type": "apiKey", "in": "query", "name": backend.query_param,
                                    "description": f"{described} in the query string."}
        if backend.cookie is not None:
            schemes["jwt_cookie"] = {"type": "apiKey", "in": "cookie", "name": backend.cookie,
                                     "description": f"{described} in a cookie."}
        return schemes
    if isinstance(backend, APIKeyAuthentication):
        return {"api_key": {"type": "apiKey", "in": "header", "name": backend.header,
                            "description": "An API key."}}
    if isinstance(backend, SessionAuthentication):
        cookie = setting("SESSION_COOKIE_NAME", "sessionid")
        return {"session": {"type": "apiKey", "in": "cookie", "name": cookie,
                            "description": "Django's session cookie (a logged-in user)."}}
    return dict(getattr(backend, "openapi_security", None) or {})


class SecuritySchemes:
    """The schemes of every backend a document meets, each under one unique name."""

    def __init__(self) -> None:
        self.schemes: dict[str, dict[str, Any]] = {}

    def names(self, backend: Any) -> list[str]:
        """Register a backend's schemes; the names they are known by in this document."""
        names = []
        for name, scheme in backend_schemes(backend).items():
            unique, n = name, 1
            while unique in self.schemes and self.schemes[unique] != scheme:
                n += 1
                unique = f"{name}_{n}"
            self.schemes[unique] = scheme
            names.append(unique)
        return names


def route_policy(api: Any, route: Route) -> Any:
    """The route's compiled security policy (compiled now if no request has used the route yet)."""
    return route.security or api.security.compile(route)


def requirements(api: Any, route: Route, schemes: SecuritySchemes) -> list[dict[str, list[str]]] | None:
    """The route's security requirement: any one of its backends' schemes, or none at all when the
    route has no guard (its backends then only say who the client is). None: no backends."""
    policy = route_policy(api, route)
    names = [name for backend in policy.backends for name in schemes.names(backend)]
    if not names:
        return None
    alternatives: list[dict[str, list[str]]] = [{name: []} for name in dict.fromkeys(names)]
    if not policy.guards:
        alternatives.append({})
    return alternatives


# -- the document -------------------------------------------------------------------------------

def openapi_path(template: str) -> str:
    """bolt's `{name}` and `{name:path}` as OpenAPI's `{name}`."""
    parts = split_template(template)
    return "/" + "/".join(text if kind == "static" else f"{{{text}}}" for kind, text in parts)


def _json_default(value: Any) -> Any:
    """A parameter's default as JSON, or msgspec.UNSET when it has no JSON form."""
    if value is None or value is inspect.Parameter.empty:
        return msgspec.UNSET
    try:
        return msgspec.to_builtins(value)
    except TypeError:
        return msgspec.UNSET


def _docstring(endpoint: Any) -> tuple[str | None, str | None]:
    doc = inspect.getdoc(endpoint)
    if not doc:
        return None, None
    summary, _, rest = doc.partition("\n")
    return summary.strip() or None, rest.strip() or None


def _return_annotation(route: Route) -> Any:
    """The declared response type: `response_model=`, else the return annotation (or empty)."""
    if route.response_codec is not None:
        return route.response_codec.annotation
    return route.binder.returns


def _response_content(annotation: Any, schemas: SchemaSet) -> dict[str, Any]:
    """The `content` of the success response for a declared return type."""
    if annotation is inspect.Parameter.empty:
        return {"application/json": {"schema": {}}}
    base = strip_optional(annotation)
    if get_origin(base) in (Union, types.UnionType):
        # `Item | JSONResponse`: each member its media type; the models share one schema.
        content: dict[str, Any] = {}
        models = [member for member in get_args(base) if not _is_response_class(member)]
        for member in get_args(base):
            if _is_response_class(member):
                for media_type, entry in _response_content(member, schemas).items():
                    content.setdefault(media_type, entry)
        if models:  # several models in one union have no one schema: any JSON then
            content["application/json"] = {"schema": schemas.schema(models[0]) if len(models) == 1 else {}}
        return content
    if _is_response_class(base):
        if issubclass(base, JSONResponse):
            return {"application/json": {"schema": {}}}
        if issubclass(base, (HTMLResponse, PlainTextResponse)):
            return {base.media_type: {"schema": {"type": "string"}}}
        return {base.media_type or "application/octet-stream": {}}
    if base is str:
        return {"text/plain": {"schema": {"type": "string"}}}
    if base in (bytes, bytearray):
        return {"application/octet-stream": {}}
    return {"application/json": {"schema": schemas.schema(annotation)}}


def _is_response_class(member: Any) -> bool:
    return isinstance(member, type) and issubclass(member, Response)


def _error(description: str, schema: str = "Error", headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description,
                                "content": {"application/json": {"schema": {"$ref": COMPONENTS.format(name=schema)}}}}
    if headers:
        response["headers"] = headers
    return response


def _can_be_invalid(route: Route) -> bool:
    """Whether a request can be answered 422: a value to convert or that may be missing (a `str`
    path segment is always there and always a string)."""
    return any(spec.source != "path" or strip_optional(spec.annotation) is not str
               for spec in route.binder.specs if spec.source != "connection")


class OpenAPIBuilder:
    """Builds the document of one api; a new builder for each document."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.schemas = SchemaSet(COMPONENTS)
        self.security = SecuritySchemes()
        self._operation_ids: set[str] = set()

    def build(self, *, root_path: str = "") -> dict[str, Any]:
        paths: dict[str, dict[str, Any]] = {}
        for route in self.api.router.routes:
            if route.kind != "http" or not route.options.get("include_in_schema", True):
                continue
            item = paths.setdefault(openapi_path(route.path), {})
            for method in sorted(route.methods):
                item[method.lower()] = self.operation(route, method)
        self.schemas.components.setdefault("Error", ERROR_SCHEMA)
        info: dict[str, Any] = {"title": self.api.title, "version": self.api.version}
        if self.api.description:
            info["description"] = self.api.description
        document: dict[str, Any] = {"openapi": OPENAPI_VERSION, "info": info}
        if root_path:
            document["servers"] = [{"url": root_path}]
        document["paths"] = paths
        components: dict[str, Any] = {"schemas": dict(sorted(self.schemas.components.items()))}
        if self.security.schemes:
            components["securitySchemes"] = self.security.schemes
        document["components"] = components
        return document

    def _operation_id(self, route: Route, method: str) -> str:
        base = getattr(route.endpoint, "__name__", "operation")
        candidate = base if base not in self._operation_ids else f"{base}_{method.lower()}"
        n = 1
        while candidate in self._operation_ids:
            n += 1
            candidate = f"{base}_{method.lower()}_{n}"
        self._operation_ids.add(candidate)
        return candidate

    def operation(self, route: Route, method: str) -> dict[str, Any]:
        summary, description = _docstring(route.endpoint)
        operation: dict[str, Any] = {"operationId": self._operation_id(route, method)}
        if route.options.get("tags"):
            operation["tags"] = list(route.options["tags"])
        summary = route.options.get("summary") or summary
        if summary:
            operation["summary"] = summary
        if description:
            operation["description"] = description
        parameters, body = self.parameters(route)
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            operation["requestBody"] = body
        operation["responses"] = self.responses(route, _can_be_invalid(route), body is not None)
        security = requirements(self.api, route, self.security)
        if security is not None:
            operation["security"] = security
        return operation

    def parameters(self, route: Route) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        parameters: list[dict[str, Any]] = []
        body: dict[str, Any] | None = None
        path_kinds = dict((name, kind) for kind, name in split_template(route.path) if kind != "static")
        for spec in route.binder.specs:
            if spec.source == "connection":
                continue
            required = spec.default is inspect.Parameter.empty
            if spec.source == "body":
                schema = self.schemas.schema(strip_optional(spec.annotation))
                body = {"required": required, "content": {"application/json": {"schema": schema}}}
                continue
            if spec.source == "query_model":
                parameters += self._query_model(spec.annotation)
                continue
            schema = dict(self.schemas.schema(strip_optional(spec.annotation)))
            default = _json_default(spec.default)
            if default is not msgspec.UNSET:
                schema["default"] = default
            parameter: dict[str, Any] = {"name": spec.key, "in": spec.source,
                                         "required": True if spec.source == "path" else required,
                                         "schema": schema}
            if path_kinds.get(spec.key) == "path":
                parameter["description"] = "The rest of the path; may contain '/'."
            if getattr(spec, "many", False):
                parameter["style"], parameter["explode"] = "form", True
            parameters.append(parameter)
        # A template parameter the handler does not take is still part of the path.
        taken = {p["name"] for p in parameters if p["in"] == "path"}
        for name in route.param_names:
            if name not in taken:
                parameters.append({"name": name, "in": "path", "required": True, "schema": {"type": "string"}})
        return parameters, body

    def _query_model(self, model: Any) -> list[dict[str, Any]]:
        """A query model's fields, each a query parameter of its own (a list field repeats)."""
        fields, required = self.schemas.fields(model)
        parameters = []
        for key, field in fields.items():
            parameter = {"name": key, "in": "query", "required": key in required, "schema": field}
            if field.get("type") == "array":
                parameter["style"], parameter["explode"] = "form", True
            parameters.append(parameter)
        return parameters

    def responses(self, route: Route, can_be_invalid: bool, has_body: bool) -> dict[str, Any]:
        status = str(route.options.get("status_code", 200))
        responses: dict[str, Any] = {
            status: {"description": "Success", "content": _response_content(_return_annotation(route), self.schemas)},
        }
        if status == "204":
            responses[status].pop("content")
        if has_body:
            responses["400"] = _error("The body is not valid JSON, or the client left before sending it.")
            responses["413"] = _error("The body is larger than the api's max_body_size.")
        if can_be_invalid:
            responses["422"] = _error("A parameter or the body is missing or does not match its type.",
                                      "ValidationError")
            self.schemas.components.setdefault("ValidationError", VALIDATION_ERROR_SCHEMA)
        policy = route_policy(self.api, route)
        if policy.backends or policy.guards:
            headers = None
            if policy.challenge:
                headers = {"WWW-Authenticate": {"description": "The authentication scheme to use.",
                                                "schema": {"type": "string"}}}
            responses["401"] = _error("Credentials are missing (and a guard needs them) or are not valid.",
                                      headers=headers)
        forbidden = "The request's Origin is not allowed."
        if policy.guards:
            forbidden = "A guard refused the request, or its Origin is not allowed."
        responses["403"] = _error(forbidden)
        if policy.limit is not None:
            retry = {"Retry-After": {"description": "Seconds to wait before trying again.",
                                     "schema": {"type": "integer"}}}
            responses["429"] = _error("The route's rate limit is exceeded.", "RateLimited", retry)
            self.schemas.components.setdefault("RateLimited", RATE_LIMITED_SCHEMA)
        for code, declared in (route.options.get("responses") or {}).items():
            responses[str(code)] = self._declared_response(declared)
        return dict(sorted(responses.items()))

    def _declared_response(self, declared: Any) -> dict[str, Any]:
        """A `responses={404: ...}` entry: a description, or a type whose JSON the response carries."""
        if isinstance(declared, str):
            return {"description": declared}
        return {"description": getattr(declared, "__name__", "Response"),
                "content": {"application/json": {"schema": self.schemas.schema(declared)}}}


def openapi_document(api: Any, *, root_path: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of `api`'s HTTP routes, as a JSON-ready dict."""
    return OpenAPIBuilder(api).build(root_path=root_path)


__all__ = ["OpenAPIBuilder", "backend_schemes", "openapi_document", "openapi_path"]
