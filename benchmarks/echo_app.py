"""A bare ASGI app that echoes every WebSocket message back unchanged.

Used by the Autobahn conformance run and the echo benchmarks, so every protocol
implementation is measured serving exactly the same app::

    uvicorn benchmarks.echo_app:app --ws bolt.protocol:WebSocketProtocol
"""


async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        else:  # websocket.disconnect
            return
