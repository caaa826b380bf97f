"""The routes that publish an api's own description: its OpenAPI and AsyncAPI documents and a docs page.

The page is Swagger UI, served from the files of the `swagger-ui-py` package (bolt's `docs`
extra) through bolt's own routes: nothing is loaded from another host, and its Content
Security Policy says so to the browser. Without the package the page says how to get it.

These routes pass the api's security pipeline like any other (an api whose routes all need a
login does not publish its description to anonymous clients) and are left out of the documents.
"""
from __future__ import annotations

import html
import importlib.resources
import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bolt.asyncapi import servers
from bolt.requests import Request
from bolt.responses import HTMLResponse, JSONResponse, Response

MAX_CACHED_DOCUMENTS = 16
SWAGGER_UI_PACKAGE = "swagger_ui"  # from the swagger-ui-py distribution, which ships Swagger UI 5
# The only files served, with their media types: a request can never name any other file.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
INIT_SCRIPT = b"""\
// Starts Swagger UI on the document named by the page (kept out of the page for its CSP).
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapi,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
"""
# Swagger UI sets inline styles and embeds SVG/PNG data: URIs; everything else is this origin's.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'self'")
MISSING = """\
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: docs</title></head>
<body>
<h1>{title}</h1>
<p>The docs page needs Swagger UI's files, which bolt serves from the <code>swagger-ui-py</code>
package. Install it (<code>pip install swagger-ui-py</code>, or in bolt's checkout its <code>docs</code> extra:
<code>pip install -e ".[docs]"</code>) and restart the server.</p>
<p>The OpenAPI document is at <a href="{openapi}">{openapi}</a>.</p>
</body></html>
"""
PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: docs</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/init.js"></script>
</body>
</html>
"""


def swagger_ui_installed() -> bool:
    return importlib.util.find_spec(SWAGGER_UI_PACKAGE) is not None


class DocsRoutes:
    """The endpoints of the schema routes of one api; each document is built on request."""

    def __init__(self, api: Any, openapi_url: str | None, asyncapi_url: str | None, docs_url: str | None) -> None:
        self.api = api
        self.openapi_url = openapi_url
        self.asyncapi_url = asyncapi_url
        self.docs_url = docs_url
        self._assets: dict[str, bytes] = {}
        self._documents: dict[Any, bytes] = {}

    def register(self) -> None:
        options = {"include_in_schema": False}
        if self.openapi_url is not None:
            self.api.get(self.openapi_url, **options)(self.openapi)
        if self.asyncapi_url is not None:
            self.api.get(self.asyncapi_url, **options)(self.asyncapi)
        if self.docs_url is not None:
            if self.openapi_url is None:
                raise ValueError("docs_url needs the OpenAPI document: openapi_url cannot be None")
            self.api.get(self.docs_url, **options)(self.page)
            # A route per file, not a template: the other paths below docs_url stay Django's (mount).
            for name in ("init.js", *ASSETS):
                self.api.get(f"{self.docs_url.rstrip('/')}/{name}", **options)(self._asset_endpoint(name))

    def _document(self, build: Callable[..., dict[str, Any]], **arguments: Any) -> bytes:
        """A document as JSON, built again only when a route or a route's security policy changed.

        Building one for hundreds of routes takes tens of milliseconds, too long to spend on the event
        loop for every request. The key holds each route's compiled policy, so a settings change (which
        drops the policies) or a new route rebuilds; `arguments` come from the server's settings (the
        root path), never from what a client chooses, and the cache is kept small all the same.
        """
        routes = self.api.router.routes
        policies = tuple(route.security or self.api.security.compile(route) for route in routes)
        key = (build, tuple(sorted(arguments.items())), policies)
        body = self._documents.get(key)
        if body is None:
            body = orjson.dumps(build(**arguments))
            if len(self._documents) >= MAX_CACHED_DOCUMENTS:
                self._documents.clear()
            self._documents[key] = body
        return body

    async def openapi(self, request: Request) -> Response:
        body = self._document(self.api.openapi, root_path=request.scope.get("root_path", ""))
        return Response(body, media_type="application/json")

    async def asyncapi(self, request: Request) -> Response:
        body = self._document(self.api.asyncapi)
        host = request.headers.get("host")
        if host:
            # The server entry names the Host header, which each client chooses: it is added to the
            # one cached document, so varying the header cannot make the server build it again.
            entry = servers(host, request.scope.get("scheme"), request.scope.get("root_path", ""))
            body = body[:-1] + b',"servers":' + orjson.dumps(entry) + b"}"
        return Response(body, media_type="application/json")

    async def page(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        assert self.docs_url is not None and self.openapi_url is not None
        values = {"title": html.escape(self.api.title), "openapi": html.escape(root + self.openapi_url),
                  "assets": html.escape(root + self.docs_url.rstrip("/"))}
        if not swagger_ui_installed():
            return HTMLResponse(MISSING.format(**values), 501)
        return HTMLResponse(PAGE.format(**values), headers={"Content-Security-Policy": CSP})

    def _asset_endpoint(self, asset: str) -> Callable[[], Awaitable[Response]]:
        async def endpoint() -> Response:
            return self.asset(asset)
        return endpoint

    def asset(self, asset: str) -> Response:
        """One of the page's files: its script, or one of Swagger UI's `ASSETS`."""
        if asset == "init.js":
            return Response(INIT_SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"})
        media_type = ASSETS.get(asset)
        if media_type is None or not swagger_ui_installed():
            return JSONResponse({"detail": "Not Found"}, 404)
        body = self._assets.get(asset)
        if body is None:
            body = (importlib.resources.files(SWAGGER_UI_PACKAGE) / "static" / asset).read_bytes()
            self._assets[asset] = body
        return Response(body, media_type=media_type, headers={"Cache-Control": "public, max-age=86400"})


__all__ = ["DocsRoutes", "swagger_ui_installed"]
