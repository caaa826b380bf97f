"""The hub: this process's connections by id, user and room, and broadcasting to them."""
from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import secrets
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bolt.connection import client_label
from bolt.extensions import FRAMES
from bolt.realtime.backends.base import Backend
from bolt.realtime.history import HistoryPolicy
from bolt.realtime.messages import BYTES, Message, gap, shared
from bolt.realtime.names import (
    CONNECTION_PREFIX,
    InvalidRoomName,
    check_room,
    check_target,
    connection_room,
    is_reserved,
    user_room,
)
from bolt.realtime.outbox import Outbox, OutboxSettings
from bolt.realtime.presence import JOIN, LEAVE, Member, PresenceEvent, PresenceSubscription
from bolt.wire import CloseCode, SharedFrames, SharedMessage

if TYPE_CHECKING:
    from bolt.metrics import Metrics
    from bolt.websocket import WebSocket

logger = logging.getLogger("bolt.realtime")

# How long closing a connection the hub ends (a slow consumer, a failed send) may take before its
# handler is cancelled instead.
_EVICT_TIMEOUT = 5.0
# How long after a replay its connection skips live messages with ids the replay sent. Those were in
# flight as the replay was read and arrive within moments; later, such an id is a new message's: the
# room's ids started again (its id counter expired, or its history was dropped).
_REPLAY_OVERLAP = 60.0
# Every hub of this process, so code outside the server (bolt.realtime.publish) can find the running one.
_HUBS: weakref.WeakSet[Hub] = weakref.WeakSet()
# How many user ids that cannot name a room a hub remembers having warned about (then it starts afresh).
_UNROUTABLE_MEMORY = 1024


class Connection:
    """The hub's record of one accepted WebSocket."""

    __slots__ = ("id", "user_id", "websocket", "outbox", "rooms", "task", "evicted", "_hub")

    def __init__(self, id: str, user_id: Any, websocket: WebSocket, outbox_settings: OutboxSettings, hub: Hub,
                 on_drop: Callable[[str], None] | None = None, task: asyncio.Task[Any] | None = None) -> None:
        self.id = id
        self.user_id = user_id
        self.websocket = websocket
        self._hub = hub
        # A bound method, not a closure over self (nor a bound method of the hub kept here too):
        # about 250 bytes less per connection.
        self.outbox = Outbox(websocket.asgi_send, outbox_settings, self._end, _shared_writer(websocket), on_drop)
        self.rooms: set[str] = set()
        self.task = task  # the handler's: cancelled when even closing it from the hub is stuck
        self.evicted = False

    @property
    def member(self) -> Member:
        return Member(self.id, self.user_id)

    def _end(self, why: str, error: Exception | None) -> None:
        self._hub._evict(self, why, error)


class Hub:
    """Rooms, broadcast, presence and resume for one `BoltAPI`.

    Every accepted connection is in a room of its own (`hub.connection_room(id)`) and, when
    authenticated, in its user's room (`hub.user_room(user_id)`), so a message can reach one device
    or all of one user's devices. Handlers add rooms with `websocket.join(room)`; a connection leaves
    all its rooms when it ends.
    """

    def __init__(self, backend: str | Backend | None = None, outbox: OutboxSettings | None = None,
                 presence_ttl: float = 30.0) -> None:
        self.node_id = secrets.token_hex(4)
        self.outbox_settings = outbox or OutboxSettings()
        self.presence_ttl = presence_ttl
        self.backend: Backend | None = None
        self._backend_spec = backend
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready: asyncio.Future[None] | None = None
        self._connections: dict[str, Connection] = {}
        # room -> {connection id: outbox}: the fan-out loop touches nothing else.
        self._rooms: dict[str, dict[str, Outbox]] = {}
        # room -> how many of its members here want envelopes even without history (room-protocol clients)
        self._enveloped: dict[str, int] = {}
        # room -> {connection id: messages held back while that connection replays history}
        self._replaying: dict[str, dict[str, list[Message]]] = {}
        # room -> {connection id: (last id its replay sent, until when (monotonic) that id may arrive live)},
        # until a newer live message reaches it
        self._replayed: dict[str, dict[str, tuple[int, float]]] = {}
        self._refs: dict[str, int] = {}
        self._listeners: dict[str, set[PresenceSubscription]] = {}
        self._history_rules: list[tuple[str, HistoryPolicy]] = []
        self._history_cache: dict[str, HistoryPolicy | None] = {}
        self._last_seq: dict[str, int] = {}
        self._gap_callbacks: list[Callable[[str, int | None], Any]] = []
        self._gap_tasks: set[asyncio.Future[Any]] = set()  # async gap callbacks still running
        #: bolt.metrics.Metrics when the api serves metrics (BoltAPI(metrics=...)), else None.
        self.metrics: Metrics | None = None
        self._unroutable: set[int] = set()  # hashes of user ids without a user room, warned about once
        _HUBS.add(self)

    # -- lifecycle --------------------------------------------------------------------------------

    def _make_backend(self) -> Backend:
        spec = self._backend_spec
        if isinstance(spec, Backend):
            return spec
        if spec is None:
            from bolt.django import setting

            spec = setting("BOLT_PUBSUB") or "memory"
        from bolt.realtime.backends import backend_from_url

        options = {"presence_ttl": self.presence_ttl} if spec != "memory" else {}
        return backend_from_url(spec, **options)

    async def start(self) -> None:
        """Connect the backend. Called at server startup, or on first use when no lifespan runs."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            if self._ready is not None and not self._ready.done():
                await asyncio.shield(self._ready)
            return
        if self._loop is not None:
            self._reset()  # a new event loop (e.g. a new test): the old one's connections are gone
        self._loop = loop
        self._ready = ready = loop.create_future()
        try:
            backend = self._make_backend()
            await backend.start(self)
        except BaseException as exc:
            self._loop = None
            ready.set_exception(exc)
            ready.exception()  # retrieved here; waiters re-raise it
            raise
        self.backend = backend
        ready.set_result(None)
        if self.metrics is not None:
            self.metrics.start(self)
        # Started again after stop() with connections still open: the new backend must know their rooms.
        subscribes = backend.subscriptions
        for room in list(self._refs) if subscribes else ():
            await self._guard(backend.subscribe(room), "subscribe")
        for connection in list(self._connections.values()):
            if subscribes:
                await self._guard(backend.subscribe(connection_room(connection.id)), "subscribe")
            for room in list(connection.rooms):
                await self._guard(backend.add_member(room, connection.member), "add presence")

    async def stop(self) -> None:
        """Disconnect the backend (server shutdown). Connections still open keep their local rooms."""
        backend, self.backend = self.backend, None
        self._loop = None
        if self.metrics is not None:
            await self.metrics.stop()
        if backend is not None:
            await backend.stop()

    def _reset(self) -> None:
        for connection in self._connections.values():
            connection.outbox.closed = True
        self._connections.clear()
        self._rooms.clear()
        self._enveloped.clear()
        self._replaying.clear()
        self._replayed.clear()
        self._refs.clear()
        self._listeners.clear()
        self._last_seq.clear()
        self.backend = None

    def _backend_on(self, loop: asyncio.AbstractEventLoop) -> Backend | None:
        """The backend when the hub is started on `loop`; None when `_backend()` must start it first."""
        return self.backend if self._loop is loop else None

    async def _backend(self) -> Backend:
        backend = self._backend_on(asyncio.get_running_loop())
        if backend is None:
            await self.start()
            backend = self.backend
        return backend  # type: ignore[return-value]

    # -- configuration ----------------------------------------------------------------------------

    def keep_history(self, prefix: str = "", size: int = 100, ttl: float = 300.0) -> None:
        """Give rooms whose name starts with `prefix` ids, a history and resume (see bolt.realtime.messages).

        Messages to these rooms are sent as JSON envelopes `{"room", "id", "data"}`; bytes cannot be
        broadcast to them. The longest matching prefix wins; a prefix given again takes its new
        size and ttl.
        """
        rules = [rule for rule in self._history_rules if rule[0] != prefix]  # again: the new one replaces it
        rules.append((prefix, HistoryPolicy(size, ttl)))
        rules.sort(key=lambda rule: len(rule[0]), reverse=True)
        self._history_rules = rules
        self._history_cache.clear()

    def history_policy(self, room: str) -> HistoryPolicy | None:
        """The history kept for `room`, or None for a plain room."""
        try:
            return self._history_cache[room]
        except KeyError:
            pass
        policy = None
        if not is_reserved(room):
            policy = next((p for prefix, p in self._history_rules if room.startswith(prefix)), None)
        if len(self._history_cache) > 10_000:
            self._history_cache.clear()
        self._history_cache[room] = policy
        return policy

    def on_gap(self, callback: Callable[[str, int | None], Any]) -> Callable[[str, int | None], Any]:
        """Call `callback(room, last_id)` (sync or async) when this process may have missed broadcasts to a room."""
        self._gap_callbacks.append(callback)
        return callback

    # -- connections ------------------------------------------------------------------------------

    @staticmethod
    def connection_room(connection_id: str) -> str:
        return connection_room(connection_id)

    @staticmethod
    def user_room(user_id: Any) -> str:
        return user_room(user_id)

    @staticmethod
    def connection_id(websocket: WebSocket) -> str | None:
        """The hub id of an accepted connection (None before accept)."""
        connection = websocket.hub_connection
        return connection.id if connection is not None else None

    async def connect(self, websocket: WebSocket, outbox: OutboxSettings | None = None) -> Connection:
        """Register an accepted connection and put it in its own room and its user's room."""
        existing = websocket.hub_connection
        if existing is not None:
            return existing
        loop = asyncio.get_running_loop()
        backend = self._backend_on(loop)
        if backend is None:  # not started on this loop: start it (a coroutine only then)
            backend = await self._backend()
        auth = getattr(websocket, "auth", None)  # set by the security pipeline when the route has auth
        user_id = getattr(auth, "user_id", None)
        metrics = self.metrics
        connection = Connection(f"{self.node_id}.{next(self._ids)}", user_id, websocket,
                                outbox or self.outbox_settings, self,
                                metrics.dropped if metrics is not None else None, asyncio.current_task(loop))
        if metrics is not None:
            metrics.connected(websocket)  # after the outbox took the server's own send
        websocket.hub_connection = connection
        self._connections[connection.id] = connection
        # Its own room is not kept in the room tables (deliver finds the connection by its id): an idle
        # connection and each handshake are cheaper for it. The backend still routes the room here.
        if backend.subscriptions:
            await self._guard(backend.subscribe(connection_room(connection.id)), "subscribe")
            if backend is not self.backend:  # stopped (or restarted) while subscribing
                backend = await self._backend()
        if user_id is not None:
            try:
                room = user_room(user_id)
            except InvalidRoomName as exc:
                # An identity the authentication vouched for stays connected; only send_to_user cannot reach it.
                self._warn_unroutable(user_id, exc)
            else:
                await self._add(connection, room, backend)
        return connection

    def _warn_unroutable(self, user_id: Any, exc: InvalidRoomName) -> None:
        key = hash(str(user_id))  # not the id itself: a long one would be kept whole
        if key in self._unroutable:
            return
        if len(self._unroutable) >= _UNROUTABLE_MEMORY:
            self._unroutable.clear()
        self._unroutable.add(key)
        logger.warning("%s: its connections have no user room, so send_to_user cannot reach them", exc)

    async def disconnect(self, websocket: WebSocket) -> None:
        """Take a finished connection out of every room (called by the api when the handler ends)."""
        connection, websocket.hub_connection = websocket.hub_connection, None
        if connection is None or self._connections.pop(connection.id, None) is None:
            return
        connection.outbox.close()
        for room in list(connection.rooms):
            await self._remove(connection, room)
        if self.backend is not None and self.backend.subscriptions:
            await self._guard(self.backend.unsubscribe(connection_room(connection.id)), "unsubscribe")

    def _connection(self, websocket: WebSocket) -> Connection:
        connection = websocket.hub_connection
        if connection is None:
            raise RuntimeError("join() and leave() need an accepted connection: call accept() first")
        return connection

    @staticmethod
    def evicted(websocket: WebSocket) -> bool:
        """Whether the hub is ending this connection: a slow consumer, or one whose send layer failed."""
        connection = websocket.hub_connection
        return connection is not None and connection.evicted

    def _evict(self, connection: Connection, why: str, error: Exception | None) -> None:
        """The outbox gave up: close with 1013 (Try Again Later) a slow consumer, with 1011 (Internal
        Error) a connection whose send raised `error`; cancel its handler if even that is stuck."""
        if connection.evicted:
            return
        connection.evicted = True
        scope = connection.websocket.scope
        path, peer = scope.get("path", "-"), client_label(scope)
        if error is not None:
            logger.error("send to connection=%s path=%s client=%s raised: closing it with 1011",
                         connection.id, path, peer, exc_info=error)
            code, reason = CloseCode.INTERNAL_ERROR, "Internal error"  # generic: exception text may hold secrets
        else:
            policy = connection.outbox.policy
            logger.warning("slow consumer evicted connection=%s policy=%s reason=%r path=%s client=%s",
                           connection.id, policy, why, path, peer)
            if self.metrics is not None:
                self.metrics.evicted(policy, why)
            code, reason = CloseCode.TRY_AGAIN_LATER, "Try Again Later: slow consumer"
        asyncio.get_running_loop().create_task(self._end(connection, code, reason))

    async def _end(self, connection: Connection, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(_EVICT_TIMEOUT):
                # end(), not close(): the handler did not close it, so its next receive or send
                # raises WebSocketDisconnect(code) and it finishes through its usual path.
                await connection.websocket.end(code, reason)
                return
        except TimeoutError:
            pass
        except Exception:  # a bug: said here, since nothing awaits this task; the handler is cancelled below
            logger.exception("could not close connection=%s", connection.id)
        if connection.task is not None and not connection.task.done():
            connection.task.cancel("bolt: ended by the hub")

    # -- rooms ------------------------------------------------------------------------------------

    async def join(self, websocket: WebSocket, room: str, since: int | None = None) -> None:
        """Add the connection to `room`; with `since`, first replay what it missed after that id.

        Joining a room the connection is already in does nothing. With `since`, a history that cannot
        be read raises (BackendUnavailable when Redis is away) and leaves the connection out of the room.
        """
        check_room(room)
        connection = self._connection(websocket)
        policy = self.history_policy(room)
        if since is not None and policy is None:
            raise ValueError(f"room {room!r} keeps no history to resume from: see hub.keep_history()")
        if room in connection.rooms:
            return
        if since is None:
            await self._add(connection, room, await self._backend())
            return
        held: list[Message] = []
        self._replaying.setdefault(room, {})[connection.id] = held
        try:
            backend = await self._backend()
            await self._add(connection, room, backend)
            try:
                replay = await backend.replay(room, since, policy)  # type: ignore[arg-type]
            except Exception:
                # Not joined after all (BackendUnavailable: Redis is away), so that joining again replays.
                await self._remove(connection, room)
                raise
        finally:
            waiting = self._replaying.get(room, {})
            waiting.pop(connection.id, None)
            if not waiting:
                self._replaying.pop(room, None)
        outbox, last = connection.outbox, since
        if since > replay.last:
            # An id the room has not reached: its history was lost and nothing was published since (Redis
            # has no counter then), or the new one started lower (the clock went back). All is unknown.
            outbox.put(gap(room, since, None), droppable=False)
        elif since < replay.last:
            # Owed everything after since, or after the history's start when it has seen nothing. A since
            # below the start is an id of an earlier history of the room, whose rest is lost.
            owed = since or replay.start
            first = replay.first
            if first > owed + 1:  # some of what it missed has already fallen out of history
                outbox.put(gap(room, since, first), droppable=False)
        for message in replay.messages:
            outbox.put(message.envelope(room))
            last = message.seq  # type: ignore[assignment]
        for message in held:
            if message.seq is None or message.seq > last:
                outbox.put(message.envelope(room))
                last = message.seq or last
        if last > since:
            # A broadcast of this process may have been published (and so replayed) but not yet
            # delivered: it must not reach this connection a second time.
            self._replayed.setdefault(room, {})[connection.id] = (last, time.monotonic() + _REPLAY_OVERLAP)
            if last > self._last_seq.get(room, 0):
                self._last_seq[room] = last  # delivered, as much as a live message: a gap signal starts after it

    async def leave(self, websocket: WebSocket, room: str) -> None:
        """Take the connection out of `room` (no-op when it is not in it)."""
        check_room(room)
        connection = self._connection(websocket)
        if room in connection.rooms:
            await self._remove(connection, room)

    async def _add(self, connection: Connection, room: str, backend: Backend) -> None:
        connection.rooms.add(room)
        self._rooms.setdefault(room, {})[connection.id] = connection.outbox
        if connection.outbox.envelopes:
            self._enveloped[room] = self._enveloped.get(room, 0) + 1
        if self._retain(room):
            await self._guard(backend.subscribe(room), "subscribe")
        member = connection.member
        await self._guard(backend.add_member(room, member), "add presence")
        if room in self._listeners:  # most rooms (a user's own, say) have no one listening here
            self._emit(PresenceEvent(JOIN, room, member))

    async def _remove(self, connection: Connection, room: str) -> None:
        connection.rooms.discard(room)
        replayed = self._replayed.get(room)
        if replayed is not None:
            replayed.pop(connection.id, None)
            if not replayed:
                del self._replayed[room]
        members = self._rooms.get(room)
        if members is not None and members.pop(connection.id, None) is not None:
            if not members:
                del self._rooms[room]
            if connection.outbox.envelopes:
                left = self._enveloped[room] - 1
                if left:
                    self._enveloped[room] = left
                else:
                    del self._enveloped[room]
        member = connection.member
        if self.backend is not None:
            await self._guard(self.backend.remove_member(room, member), "remove presence")
        if room in self._listeners:
            self._emit(PresenceEvent(LEAVE, room, member))
        if self._release(room):
            await self._guard(self.backend.unsubscribe(room), "unsubscribe")  # type: ignore[union-attr]

    def _retain(self, room: str) -> bool:
        """One more member or listener of `room` here; True for the first, when the backend must subscribe."""
        count = self._refs.get(room, 0)
        self._refs[room] = count + 1
        return count == 0 and self.backend is not None and self.backend.subscriptions

    def _release(self, room: str) -> bool:
        """One member or listener of `room` less here; True for the last, when the backend must unsubscribe."""
        count = self._refs.get(room, 0) - 1
        if count > 0:
            self._refs[room] = count
            return False
        self._refs.pop(room, None)
        self._last_seq.pop(room, None)
        return self.backend is not None and self.backend.subscriptions

    @staticmethod
    async def _guard(operation: Any, what: str) -> None:
        """Run a backend call whose failure must not end the connection (health() reports the outage)."""
        try:
            await operation
        except ConnectionError as exc:
            logger.warning("pubsub backend: %s failed: %s", what, exc)

    def post(self, websocket: WebSocket, text: str) -> None:
        """Queue a text message for one accepted connection of this process, in order with its broadcasts.

        Never waits: it goes through the connection's outbox. The slow-consumer policy never drops
        it (the room protocol's replies come this way): a full queue drops a broadcast instead, and
        a queue with no broadcast left to drop closes the connection with 1013. A connection that
        has ended gets nothing.
        """
        connection = websocket.hub_connection
        if connection is not None:
            connection.outbox.put({"type": "websocket.send", "text": text}, droppable=False)

    def local_members(self, room: str) -> list[str]:
        """Ids of this process's connections in `room`."""
        members, _ = self._members(room)
        return list(members or ())

    def _members(self, room: str) -> tuple[dict[str, Outbox] | None, int]:
        """This process's members of `room` (connection id -> outbox), and how many want envelopes."""
        members = self._rooms.get(room)
        enveloped = self._enveloped.get(room, 0)
        if room.startswith(CONNECTION_PREFIX):  # a connection's own room is not in the tables: see connect()
            connection = self._connections.get(room[len(CONNECTION_PREFIX):])
            if connection is not None:
                members = {**(members or {}), connection.id: connection.outbox}
                enveloped += connection.outbox.envelopes
        return members, enveloped

    async def members(self, room: str) -> list[Member]:
        """Everyone in `room`, across processes when the backend spans them."""
        check_target(room)
        return await (await self._backend()).members(room)

    async def count(self, room: str) -> int:
        """How many connections are in `room`, across processes when the backend spans them."""
        check_target(room)
        return await (await self._backend()).count(room)

    # -- broadcast --------------------------------------------------------------------------------

    async def broadcast(self, room: str, message: Any, exclude: Any = None) -> int | None:
        """Send `message` to every connection in `room`, on every process; returns its id in rooms with history.

        A str goes out as a text message, bytes as a binary message, anything else as JSON (encoded
        once). `exclude` is a WebSocket or connection id, or an iterable of them, not to send to.
        Never waits for a slow client. Raises PublishError when the backend does not confirm the
        message: this process's members did not get it, but other processes may still deliver it (the
        Redis backend then signals a gap to this process's members when its reply timed out).
        """
        check_target(room)
        backend = self.backend
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            hub_loop = self._loop
            if hub_loop is not None and hub_loop.is_running() and not hub_loop.is_closed():
                # Called from another thread's event loop (a Django view through async_to_sync, say):
                # the connections live on the hub's loop, so the broadcast runs there.
                future = asyncio.run_coroutine_threadsafe(self.broadcast(room, message, exclude), hub_loop)
                return await asyncio.wrap_future(future)
            backend = await self._backend()
        elif backend is None:
            backend = await self._backend()
        metrics = self.metrics
        started = time.perf_counter() if metrics is not None else 0.0
        encoded = Message.from_value(message)
        policy = self.history_policy(room)
        if policy is not None and encoded.kind == BYTES:
            raise TypeError(f"room {room!r} keeps history, so its messages are JSON envelopes: bytes cannot be sent")
        await backend.publish(room, encoded, policy)
        count = self.deliver(room, encoded, exclude)
        if metrics is not None:
            metrics.broadcast(count, encoded.data, time.perf_counter() - started)
        return encoded.seq

    async def send_to_user(self, user_id: Any, message: Any) -> None:
        """Send to every connection of one user, on every process."""
        await self.broadcast(user_room(user_id), message)

    async def send_to_connection(self, connection_id: str, message: Any) -> None:
        """Send to one connection, wherever it is connected."""
        await self.broadcast(connection_room(connection_id), message)

    def deliver(self, room: str, message: Message, exclude: Any = None) -> int:
        """Queue `message` for this process's members of `room`; returns how many it was queued for."""
        members, enveloped = self._members(room)
        if not members:
            return 0
        if message.seq is not None:
            self._last_seq[room] = message.seq
            asgi = message.envelope(room)
        else:
            asgi = message.plain()
        frames = shared(asgi)
        held = self._replaying.get(room)
        replayed = self._replayed.get(room)
        wrapped = enveloped and message.seq is None
        if exclude is None and held is None and replayed is None and not wrapped:
            try:
                for outbox in members.values():
                    outbox.put(asgi, frames)
            finally:
                frames.flush()  # the server may hold the frame to write it to all its sockets in one call
            return len(members)
        skip = _ids(exclude)
        envelope = envelope_frames = None
        if wrapped:
            # Room-protocol clients need the room's name on every message: they get the envelope
            # (JSON only; bytes do not reach them), everyone else the plain message.
            envelope = message.envelope(room) if message.kind != BYTES else None
            envelope_frames = shared(envelope) if envelope is not None else None
        count = 0
        try:
            for connection_id, outbox in list(members.items()):
                if connection_id in skip:
                    continue
                if wrapped and outbox.envelopes:
                    if envelope is not None:
                        outbox.put(envelope, envelope_frames)
                        count += 1
                    continue
                if held is not None and connection_id in held:
                    held[connection_id].append(message)
                    continue
                if replayed is not None and connection_id in replayed:
                    last, until = replayed[connection_id]
                    if message.seq is not None and message.seq <= last and time.monotonic() < until:
                        continue  # it had this one in its replay
                    del replayed[connection_id]
                    if not replayed:
                        del self._replayed[room]
                outbox.put(asgi, frames)
                count += 1
        finally:
            frames.flush()
            if envelope_frames is not None:
                envelope_frames.flush()
        return count

    def deliver_remote(self, room: str, message: Message) -> None:
        """A broadcast another process published (called by the backend): deliver it here."""
        count = self.deliver(room, message)
        if self.metrics is not None:
            self.metrics.broadcast(count, message.data, max(0.0, time.time() - message.time), remote=True)

    def signal_gap(self, room: str) -> None:
        """This process may have missed broadcasts to `room` (its backend was unreachable): tell its members."""
        # The ids that follow may have started again (a Redis restarted empty): what this process knows
        # of the old ones must not hold back new messages that reuse them, nor be reported at the next gap.
        last = self._last_seq.pop(room, None)
        self._replayed.pop(room, None)
        history = self.history_policy(room) is not None
        asgi = gap(room, last, None)
        members, _ = self._members(room)
        for outbox in (members or {}).values():
            if history or outbox.envelopes:  # plain clients of a plain room have no gap message to read
                outbox.put(asgi, droppable=False)  # the one notice of a loss: never dropped itself
        for callback in self._gap_callbacks:
            try:
                result = callback(room, last)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._gap_tasks.add(task)  # the loop keeps only a weak reference to a task
                    task.add_done_callback(self._gap_callback_done)
            except Exception:
                logger.exception("gap callback failed")

    def _gap_callback_done(self, task: asyncio.Future[Any]) -> None:
        self._gap_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("gap callback failed", exc_info=task.exception())

    def rooms(self) -> list[str]:
        """Rooms this process listens to (has members or presence listeners in; connections' own rooms left out)."""
        return list(self._refs)

    def room_sizes(self) -> list[int]:
        """How many local members each room has (connections' own rooms left out)."""
        return [len(members) for room, members in self._rooms.items() if not room.startswith(CONNECTION_PREFIX)]

    # -- presence events --------------------------------------------------------------------------

    def on_presence(self, room: str, maxsize: int = 1000) -> PresenceSubscription:
        """Join/leave events of `room`, from every process: `async with hub.on_presence(room) as events:`."""
        check_target(room)
        subscription = PresenceSubscription(room, self._open_listener, self._close_listener, maxsize)
        self._listeners.setdefault(room, set()).add(subscription)
        return subscription

    async def _open_listener(self, subscription: PresenceSubscription) -> None:
        backend = await self._backend()
        if self._retain(subscription.room):
            await self._guard(backend.subscribe(subscription.room), "subscribe")

    async def _close_listener(self, subscription: PresenceSubscription) -> None:
        listeners = self._listeners.get(subscription.room)
        if listeners is not None:
            listeners.discard(subscription)
            if not listeners:
                del self._listeners[subscription.room]
        if subscription.opened and self._release(subscription.room):
            await self._guard(self.backend.unsubscribe(subscription.room), "unsubscribe")  # type: ignore[union-attr]

    def _emit(self, event: PresenceEvent) -> None:
        for subscription in self._listeners.get(event.room, ()):
            subscription.put(event)

    def emit_remote(self, event: PresenceEvent) -> None:
        """A presence event from another process (called by the backend)."""
        self._emit(event)

    # -- code outside the connections (bolt.realtime.publish, bolt.sessions) ---------------------------

    @staticmethod
    def running() -> list[Hub]:
        """The hubs of this process that are serving: started, on an event loop that is still running."""
        return [hub for hub in list(_HUBS) if hub.loop is not None]

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running event loop this hub serves connections on; None when it is not started."""
        loop = self._loop
        if loop is None or self.backend is None or loop.is_closed() or not loop.is_running():
            return None
        return loop

    @property
    def configured_backend(self) -> str | Backend | None:
        """The backend this hub was made with (a URL or a Backend); None means the BOLT_PUBSUB setting."""
        return self._backend_spec

    def publisher(self, backend: str | Backend) -> Hub:
        """A hub with this one's history rules and its own `backend`, to publish from a process that
        serves no connections: its broadcasts get the same ids and history as this hub's."""
        hub = Hub(backend, self.outbox_settings, self.presence_ttl)
        hub._history_rules = list(self._history_rules)
        return hub

    def local_connections(self) -> list[Any]:
        """This process's accepted WebSockets."""
        return [connection.websocket for connection in list(self._connections.values())]

    async def listen(self, room: str, callback: Callable[[str], Any]) -> Callable[[], Any]:
        """Call `callback(text)` with every text broadcast to `room` from any process, until the returned
        coroutine function is awaited. For bolt's own control rooms; clients never see these messages."""
        check_target(room)
        backend = await self._backend()
        key = f"listener.{next(self._ids)}"
        self._rooms.setdefault(room, {})[key] = _Listener(callback)  # type: ignore[assignment]
        if self._retain(room):
            await self._guard(backend.subscribe(room), "subscribe")

        async def stop() -> None:
            members = self._rooms.get(room)
            if members is not None and members.pop(key, None) is not None:
                if not members:
                    del self._rooms[room]
                if self._release(room):
                    await self._guard(self.backend.unsubscribe(room), "unsubscribe")  # type: ignore[union-attr]

        return stop

    # -- health -----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Backend state (is the subscriber connected or deaf?) and local counts."""
        if self.backend is not None:
            report = self.backend.health()
        else:
            report = Backend().health()  # the same keys, before the first connection starts the backend
            report["backend"] = "not started"
        report["node"] = self.node_id
        report["connections"] = len(self._connections)
        report["rooms"] = len(self._refs)
        report["dropped"] = sum(c.outbox.dropped for c in self._connections.values())
        report["queued"] = sum(len(c.outbox) for c in self._connections.values())
        return report


class _Listener:
    """Stands in a room's members like an outbox, handing each delivered message to a callback."""

    __slots__ = ("callback",)
    envelopes = False  # a gap signal is for clients, not for bolt's own listeners

    def __init__(self, callback: Callable[[str], Any]) -> None:
        self.callback = callback

    def put(self, message: dict[str, Any], shared: SharedMessage | None = None) -> None:
        if "text" not in message:
            return
        if shared is not None:
            shared.flush()  # the callback may write to connections: the broadcast reaches them first
        try:
            self.callback(message["text"])
        except Exception:
            logger.exception("hub listener failed")


def _shared_writer(websocket: WebSocket) -> Callable[[SharedMessage], bool] | None:
    """The server's writer of shared messages for this connection, if it has one and nothing wraps its send."""
    frames: SharedFrames | None = (websocket.scope.get("extensions") or {}).get(FRAMES)
    if frames is None or frames.send != websocket.asgi_send:
        return None  # a middleware or an intercept() layer around send must see every message
    return frames.write_shared


def _ids(exclude: Any) -> set[str]:
    if exclude is None:
        return set()
    if isinstance(exclude, str) or hasattr(exclude, "hub_connection"):
        exclude = (exclude,)
    ids = set()
    for item in exclude:
        if isinstance(item, str):
            ids.add(item)
        else:
            connection = item.hub_connection
            if connection is not None:
                ids.add(connection.id)
    return ids

