"""The bolt api of the test project."""
from bolt import BoltAPI
from bolt.auth import HasPermission, IsAuthenticated, IsStaff, SessionAuthentication

api = BoltAPI()
api.hub.keep_history("news")


@api.websocket("/ws/echo")
async def echo(websocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(text)


@api.websocket("/ws/room/{name}")
async def room(websocket, name: str):
    await websocket.accept()
    await websocket.join(name)
    await websocket.send_json({"joined": name})
    async for _ in websocket.iter_text():
        pass


async def _me(websocket):
    await websocket.accept()
    user = websocket.user
    await websocket.send_json({"username": user.username, "pk": user.pk,
                               "can_add_user": await user.ahas_perm("auth.add_user")})
    async for _ in websocket.iter_text():
        pass


session = [SessionAuthentication()]
api.websocket("/ws/me", auth=session, guards=[IsAuthenticated()])(_me)
api.websocket("/ws/me-kept", auth=[SessionAuthentication(close_on_session_end=False)], guards=[IsAuthenticated()])(_me)
api.websocket("/ws/staff", auth=session, guards=[IsStaff()])(_me)
api.websocket("/ws/add-user", auth=session, guards=[HasPermission("auth.add_user")])(_me)
