"""The package's layering: ``import bolt`` stays out of the protocol engine, no import cycles, and
modules that meet only through each other's public names.

The cycle check reads the source with ``ast`` rather than importing: it walks each module's
import-time imports (module level, including ``try``/``if`` blocks; not function bodies, not
``if TYPE_CHECKING:``) and looks for a cycle among bolt's modules. Importing ``a.b.c`` runs the
``__init__`` of ``a`` and ``a.b`` first, so those count as imported too, except for packages that
contain the importing module: their ``__init__`` has already started by the time it runs.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

import bolt
from bolt import BoltAPI, Request, WebSocket
from bolt.auth import APIKeyAuthentication, IsAuthenticated
from bolt.middleware import rate_limit
from bolt.testing import AsyncTestClient, WebSocketTestClient

ROOT = Path(bolt.__file__).parent


def test_import_bolt_loads_neither_the_protocol_nor_the_accelerator() -> None:
    code = "import sys, bolt; print(sorted(m for m in sys.modules if m.startswith('bolt')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(ast.literal_eval(out))
    assert not {m for m in loaded if m == "bolt.protocol" or m.startswith("bolt.protocol.")}
    assert "bolt._accel" not in loaded
    assert "bolt._accel_py" not in loaded


def _modules() -> dict[str, Path]:
    modules = {}
    for path in ROOT.rglob("*.py"):
        parts = ("bolt", *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_time_nodes(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                found += _import_time_nodes(node.body)
            found += _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _import_time_nodes(block)
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The bolt modules whose code runs when module `name` is imported, one step deep."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_time_nodes(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        targets.add(base)
        targets.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            # A package that holds `name` has already begun importing: its __init__ does not run again.
            if candidate in modules and candidate != name and not (name + ".").startswith(candidate + "."):
                found.add(candidate)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_module_is_part_of_an_import_cycle() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_protocol_and_the_framework_meet_only_in_bolt_wire() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    protocol = {name for name in modules if name == "bolt.protocol" or name.startswith("bolt.protocol.")}
    for name in sorted(set(modules) - protocol):
        assert not graph[name] & protocol, f"{name} imports the protocol engine"
    for name in sorted(protocol):
        assert graph[name] - protocol <= {"bolt.wire", "bolt.accel"}, f"{name} imports the framework"
    assert not graph["bolt.wire"], "bolt.wire must stay a leaf"


def test_the_realtime_backends_never_import_the_hub() -> None:
    """The hub calls its backend; the backend answers through the Subscriber it was started with."""
    for path in sorted((ROOT / "realtime" / "backends").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):  # every import, TYPE_CHECKING and local ones too
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert "bolt.realtime.hub" not in names, f"{path.name} imports the hub"


# Names bolt's modules give a WebSocket they are handed.
_WEBSOCKET_NAMES = {"websocket", "ws", "socket"}


def _websocket_private_reads(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        owner = node.value
        name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else None
        if name in _WEBSOCKET_NAMES:
            found.append(f"{name}.{node.attr} (line {node.lineno})")
    return found


def test_no_module_reaches_into_a_websocket() -> None:
    """Outside bolt/websocket.py, a WebSocket is used through its public, typed surface only."""
    for name, path in sorted(_modules().items()):
        if name == "bolt.websocket":
            continue
        assert _websocket_private_reads(ast.parse(path.read_text())) == [], name


def test_the_private_read_scan_finds_one() -> None:
    assert _websocket_private_reads(ast.parse("websocket._send\nconnection.websocket._receive\nws.send")) == [
        "websocket._send (line 1)", "websocket._receive (line 2)"]


# Private names a module may read from elsewhere, each for a reason; keep this list tiny.
_FOREIGN_PRIVATE_ALLOWED = {
    # Django documents a model's `_default_manager` for code that must not rely on `objects`.
    ("bolt.security.auth", "_default_manager"),
    # The standard library's hard exit (`os._exit`), the only one that ends the process from a thread.
    ("bolt.management.commands.runserver", "_exit"),
}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _class_members(tree: ast.AST) -> set[str]:
    """Every name a class of this module defines: methods, class attributes, slots, `self.x = ...`."""
    names: set[str] = set()
    for cls in (node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)):
        for stmt in cls.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(stmt.name)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target] if isinstance(
                stmt, ast.AnnAssign) else []
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
                    if target.id == "__slots__" and stmt.value is not None:
                        names.update(elt.value for elt in ast.walk(stmt.value)
                                     if isinstance(elt, ast.Constant) and isinstance(elt.value, str))
        for node in ast.walk(cls):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                names.add(node.attr)
    return names


def _is_own(owner: ast.expr) -> bool:
    """`self`, `cls` or `super()`: an object reading its own (or its base class's) members."""
    if isinstance(owner, ast.Name):
        return owner.id in ("self", "cls")
    return isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"


def _foreign_private_reads(source: str, modules: AbstractSet[str] = frozenset()) -> list[tuple[str, str]]:
    """Another module's private names this source touches, as (name, where): `x._name` where no class
    of the source defines `_name` and `x` is not the object itself, and `from bolt.m import _name` of
    anything but a module (`modules`: bolt's module names)."""
    tree = ast.parse(source)
    own = _class_members(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            if node.attr not in own and not _is_own(node.value):
                found.append((node.attr, f"{ast.unparse(node)} (line {node.lineno})"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bolt"):
            found += [(alias.name, f"from {node.module} import {alias.name} (line {node.lineno})")
                      for alias in node.names
                      if _is_private(alias.name) and f"{node.module}.{alias.name}" not in modules]
    return found


def test_no_module_touches_another_modules_private_names() -> None:
    """Modules meet through public, typed names. bolt/protocol/ is held to its own rule: it imports only
    bolt.wire and bolt.accel."""
    modules = _modules()
    module_names = {*modules, "bolt._accel"}  # the compiled extension is a module too
    for name, path in sorted(modules.items()):
        if name == "bolt.protocol" or name.startswith("bolt.protocol."):
            continue
        found = [where for private, where in _foreign_private_reads(path.read_text(), module_names)
                 if (name, private) not in _FOREIGN_PRIVATE_ALLOWED]
        assert found == [], name


def test_the_private_name_scan_finds_one() -> None:
    source = """
from bolt.realtime.backends.redis import RedisBackend, _cancel
from bolt import _accel_py


class Box:
    __slots__ = ("_kept",)
    _shared = 1

    def __init__(self, websocket, other):
        self._items = []
        super()._setup()
        websocket._send(other._kept, other._items, other._shared, other.__dict__)
        self.backend._pump()
"""
    found = [where for _, where in _foreign_private_reads(source, {"bolt._accel_py"})]
    assert found == ["from bolt.realtime.backends.redis import _cancel (line 2)", "websocket._send (line 13)",
                     "self.backend._pump (line 14)"]


# The keys of an HTTP or WebSocket scope in the ASGI spec (2.4), and the two bolt adds: docs/architecture.md.
_SCOPE_KEYS = {"type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "query_string", "root_path",
               "headers", "client", "server", "subprotocols", "state", "extensions", "app", "auth"}
_DOCUMENTED_EXTENSIONS = {"websocket.http.response", "bolt.frames", "bolt.testing"}


@pytest.mark.asyncio
async def test_a_handled_connection_leaves_only_documented_keys_in_its_scope() -> None:
    api = BoltAPI(auth=[APIKeyAuthentication({"key": "alice"})], guards=[IsAuthenticated()],
                  cors_allowed_origins=["https://app.example"], metrics="/metrics")
    seen: list[dict] = []

    @api.websocket("/ws")
    @rate_limit(messages=(100, 100))
    async def handler(websocket: WebSocket) -> None:
        seen.append(websocket.scope)
        await websocket.accept()
        await websocket.join("lobby")
        await api.hub.broadcast("lobby", "hello")
        await websocket.auser()  # loaded once, kept by the connection
        await websocket.send_text(websocket.auth.user_id)
        await websocket.receive_text()  # then returns without closing

    @api.get("/items")
    async def items(request: Request) -> dict:
        seen.append(request.scope)
        return {"user": str(request.user)}

    async with WebSocketTestClient(api, "/ws", headers={"x-api-key": "key", "origin": "https://app.example"}) as ws:
        assert await ws.receive_text() == "hello"
        assert await ws.receive_text() == "alice"
        await ws.send_text("bye")
    response = await AsyncTestClient(api).get("/items", headers={"x-api-key": "key", "origin": "https://app.example"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert len(seen) == 2
    for scope in seen:
        assert set(scope) <= _SCOPE_KEYS
        assert set(scope["extensions"]) <= _DOCUMENTED_EXTENSIONS


# docs/architecture.md, "Where each module sits": the layers, lowest first. A module may import
# (at import time) only from its own layer and the ones before it.
LAYERS = [
    ["bolt.wire", "bolt.accel", "bolt._accel_py", "bolt._accel"],
    ["bolt.protocol"],
    ["bolt.datastructures", "bolt.extensions", "bolt.django", "bolt.connection", "bolt.requests", "bolt.responses",
     "bolt.exceptions", "bolt.models", "bolt.schemas", "bolt.params", "bolt.routing", "bolt.websocket"],
    ["bolt.security", "bolt.auth", "bolt.middleware"],
    ["bolt.realtime"],
    ["bolt.sessions", "bolt.metrics", "bolt.openapi", "bolt.asyncapi", "bolt.apidocs", "bolt.api", "bolt.testing",
     "bolt.checks", "bolt.apps", "bolt.management", "bolt.cli", "bolt"],
]


def _layer(module: str) -> int:
    """The layer of `module`: that of the longest listed name it is, or is inside."""
    matches = [(len(name), index) for index, names in enumerate(LAYERS) for name in names
               if module == name or module.startswith(name + ".")]
    assert matches, f"{module} is in no layer of docs/architecture.md"
    return max(matches)[1]


def test_imports_point_down_the_documented_layers() -> None:
    modules = _modules()
    for name, path in sorted(modules.items()):
        for target in _imports(name, path, modules) - {"bolt"}:  # `from bolt import accel` names bolt.accel
            assert _layer(target) <= _layer(name), f"{name} imports {target}, a layer above it"


def test_every_module_is_placed_in_docs_architecture() -> None:
    text = (ROOT.parent / "docs" / "architecture.md").read_text()
    section = text.split("## Where each module sits", 1)[1].split("\n## ", 1)[0]
    for name, path in sorted(_modules().items()):
        if path.name != "__init__.py":
            assert f"`{path.name}`" in section, f"{name} is not placed in docs/architecture.md"
