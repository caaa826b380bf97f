"""picows' own WebSocket echo server: the ceiling that echo_bench.py compares against.

    python benchmarks/picows_echo.py PORT

Echoes each data frame as it arrives (the load client never fragments), on the event loop the
uvicorn servers it is compared with pick by default: uvloop when it is installed (bolt installs it),
else asyncio's.
"""

from __future__ import annotations

import asyncio
import sys

from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


class Echo(WSListener):
    """Sends every text or binary frame straight back; answers a close and hangs up."""

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview())


async def serve(port: int) -> None:
    def listener(_request: WSUpgradeRequest) -> Echo:
        return Echo()

    server = await ws_create_server(listener, "127.0.0.1", port, max_frame_size=16 * 1024 * 1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(serve(int(sys.argv[1])))
    except KeyboardInterrupt:
        pass
