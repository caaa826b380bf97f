"""The `bolt` command: serve an ASGI app with uvicorn and bolt's own WebSocket protocol.

    bolt run mysite.asgi:application [--host 127.0.0.1] [--port 8000] [--reload] [--workers N]

It is uvicorn with two defaults changed:
- WebSocket connections are handled by `bolt.protocol:WebSocketProtocol`. `--ws` overrides it with
  any value uvicorn's `--ws` accepts.
- Each connection starts with `bolt.protocol.http.HeadReader`, which reads the first request head:
  a WebSocket upgrade goes straight to bolt's protocol, anything else to uvicorn's own parser
  (httptools, which bolt installs; h11 without it). Either closes a connection whose request head is not
  complete within 10 s (plain uvicorn waits for ever). `--http` overrides it with any value
  uvicorn's `--http` accepts, such as a subclass with another `head_timeout` as module:Class.
It runs on uvloop (`--loop auto`; bolt depends on it except on Windows, as uvicorn[standard] does).
bolt's own log lines (refused handshakes, slow consumers, ...) are printed at `--log-level` too.
`--drain SECONDS` spreads the 1012 closes of a stopping worker over that many seconds (see
docs/protocol.md, "Graceful drain").
The app is given as `module:attribute`, looked up from the current directory (or `--app-dir`), as
uvicorn does.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

BOLT_PROTOCOL = "bolt.protocol:WebSocketProtocol"


def websocket_protocol() -> str:
    """bolt's WebSocket protocol for uvicorn, as a module:Class string.

    Imported here so that a broken install fails at start with its traceback, rather than serving
    without bolt's handshake limits and deadlines.
    """
    from bolt.protocol import WebSocketProtocol  # noqa: F401

    return BOLT_PROTOCOL


def http_protocol() -> str:
    """bolt's first protocol (`bolt.protocol.http.HeadReader`), as a module:Class string."""
    from bolt.protocol.http import HeadReader

    return f"{HeadReader.__module__}:{HeadReader.__qualname__}"


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (0-65535)")
    return port


def _workers(text: str) -> int:
    workers = int(text)
    if workers < 1:
        raise argparse.ArgumentTypeError(f"{text}: at least one worker is needed")
    return workers


def _seconds(text: str) -> float:
    seconds = float(text)
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds >= 0")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bolt", description="bolt: WebSockets and HTTP routes for Django.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    run = commands.add_parser("run", help="serve an ASGI app with uvicorn and bolt's WebSocket protocol",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("app", help="the ASGI app as module:attribute, e.g. mysite.asgi:application")
    run.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    run.add_argument("--port", type=_port, default=8000, help="port to bind (default: 8000)")
    run.add_argument("--reload", action="store_true", help="restart when Python files change (development)")
    run.add_argument("--workers", type=_workers, default=None,
                     help="number of worker processes (default: $WEB_CONCURRENCY, else 1)")
    run.add_argument("--ws", default=None,
                     help=f"WebSocket protocol, as uvicorn's --ws (default: {BOLT_PROTOCOL} when available)")
    run.add_argument("--http", default=None,
                     help="HTTP protocol, as uvicorn's --http "
                          "(default: uvicorn's parser with a 10 s request-head deadline)")
    run.add_argument("--drain", type=_seconds, default=None, metavar="SECONDS",
                     help="on SIGTERM, close open WebSockets with 1012 in waves over this many seconds "
                          "(default: BOLT_DRAIN, else 0: all at once)")
    run.add_argument("--loop", default="auto", choices=["auto", "asyncio", "uvloop"],
                     help="event loop (default: auto, uvloop, which bolt installs except on Windows; "
                          "else asyncio's)")
    run.add_argument("--app-dir", default=".", help="directory to import the app from (default: .)")
    run.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `bolt` console script."""
    args = build_parser().parse_args(argv)
    if args.reload and args.workers:
        print("bolt run: --reload and --workers cannot be combined", file=sys.stderr)
        return 2
    if args.drain is not None:
        os.environ["BOLT_DRAIN"] = str(args.drain)  # read by the protocol, in every worker process
    import uvicorn

    uvicorn.run(args.app, host=args.host, port=args.port, reload=args.reload, workers=args.workers,
                ws=args.ws or websocket_protocol(), http=args.http or http_protocol(), loop=args.loop,
                app_dir=args.app_dir, log_level=args.log_level, log_config=log_config(args.log_level))
    return 0


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with bolt's loggers (refused handshakes, slow consumers, ...) at `level`
    through the same handler. A Django project's LOGGING, applied when the app loads, still wins."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["bolt"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    return config


if __name__ == "__main__":
    sys.exit(main())
