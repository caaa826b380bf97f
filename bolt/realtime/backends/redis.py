"""The Redis backend: broadcasts, presence and history shared by every process of a deployment.

Each process subscribes only to the channels of rooms it has members (or presence listeners) in.
A broadcast is one PUBLISH (rooms with history: one script that takes the room's next id, keeps the
message in a capped sorted set and publishes it). Presence lives in a sorted set per room scored by
expiry time; each process refreshes its members on a heartbeat, so the members of a process that
died vanish within the TTL and a surviving process announces their leave.

Delivery is at most once: Redis pub/sub keeps nothing for a subscriber that is away. When the
subscriber loses Redis it reconnects with backoff, subscribes again and sends a gap signal to the
rooms it serves; until then `hub.health()` reports it deaf. Joins and leaves made while Redis was
away are written and announced once it is back, including to a Redis that restarted empty.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bolt.realtime.backends.base import Backend, BackendUnavailable, PublishError, Subscriber
from bolt.realtime.history import HistoryPolicy, Replay
from bolt.realtime.messages import Message
from bolt.realtime.names import CONNECTION_PREFIX
from bolt.realtime.presence import JOIN, LEAVE, Member, PresenceEvent

logger = logging.getLogger("bolt.realtime")

PRESENCE = "p"  # message kind on a room channel: a join or leave event
# What a Redis call can raise when Redis is away; a cluster's client adds its own (a slot not covered).
REDIS_ERRORS = (RedisError, RedisClusterException, OSError)

# KEYS: id counter, history set, channel, start. ARGV: node, kind, payload, time (ms), size, ttl (ms).
# One script, so ids enter the history in order even with many publishers. The counter of a room
# nobody publishes to for a day expires too. A new counter (that, or a Redis that lost its data)
# starts at Redis's clock in microseconds, above any id the room's earlier history gave (see
# bolt.realtime.history.fresh_counter), read in the script so that every process agrees, and kept
# beside the counter as the history's start (a replay after 0 is owed only what follows it); Redis 5+
# replicates a script's effects, so a write may follow TIME. Lua numbers are doubles: ids stay exact
# below 2**53 (INCR itself is 64-bit), and string.format('%d') writes them without an exponent.
# PUBLISH here; SPUBLISH on a Redis Cluster (bolt.realtime.backends.redis_cluster).
PUBLISH_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local now = redis.call('TIME')
  local start = string.format('%d', tonumber(now[1]) * 1000000 + tonumber(now[2]))
  redis.call('SET', KEYS[1], start)
  redis.call('SET', KEYS[4], start)
end
local seq = redis.call('INCR', KEYS[1])
local keep = math.max(tonumber(ARGV[6]), 86400000)
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[4], keep)
local id = string.format('%d', seq)
local message = '["' .. ARGV[1] .. '","' .. ARGV[2] .. '",' .. id .. ',' .. ARGV[4] .. ']\\n' .. ARGV[3]
redis.call('ZADD', KEYS[2], id, message)
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[5]) + 1))
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('{publish}', KEYS[3], message)
return seq
"""


class _Silent(RedisConnectionError):
    """Redis left a ping unanswered: it hangs, or its host is gone without closing the socket."""


@contextlib.contextmanager
def _unavailable(what: str, error: type[BackendUnavailable] = BackendUnavailable) -> Iterator[None]:
    try:
        yield
    except REDIS_ERRORS as exc:
        # Some of redis-py's errors have no text (MaxConnectionsError): their name says what failed.
        raise error(f"redis: {what} failed: {str(exc) or type(exc).__name__}") from exc


async def cancel_tasks(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel `tasks` and wait for them. A cancellation that lands as redis-py's read timeout fires can be
    swallowed (asyncio.timeout turns it into the timeout), so a task still running is cancelled again."""
    pending = set(tasks)
    for _ in range(100):  # 10 s at most
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)
    logger.warning("%d redis backend tasks did not stop", len(pending))


def _now_ms() -> int:
    return int(time.time() * 1000)


class RedisBackend(Backend):
    """Pub/sub, presence and history in Redis (redis-py's asyncio client).

    A subclass for another Redis topology (`RedisClusterBackend`) overrides these protected hooks and
    uses this state, and nothing else of the class's internals:

    - key names: `_channel`, `_room_of`, `_presence_key`, `_history_keys`;
    - the subscriber: `_open_subscriber`, `_read`, `_release_lost`, `_close_pubsub`, `_server_run_id`,
      `_drop_idle_connections`, and `_close_clients` at stop; its `start` makes the clients and calls
      `_start_listening`;
    - shared with it: `_pump` (read one subscriber connection) and `_dispatch` (hand a message on);
    - state: `_redis` (the command client), `_pubsub` (what `_read` is given), `_rooms` (the rooms
      this process subscribes to).
    """

    name = "redis"
    publish_command = "PUBLISH"

    def __init__(self, url: str, *, prefix: str = "bolt:", presence_ttl: float = 30.0, timeout: float = 2.0,
                 max_backoff: float = 5.0, max_connections: int = 32, health_interval: float = 1.0) -> None:
        """`timeout` bounds every Redis call (and the wait for a pooled connection), `max_backoff` the
        subscriber's reconnect delay; `max_connections` caps this process's command connections. The
        subscriber pings after `health_interval` seconds of silence and gives Redis as long again to answer."""
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.presence_ttl = presence_ttl
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.max_connections = max_connections
        self.health_interval = health_interval
        self.node = ""
        self._redis: Redis | None = None
        self._sub_redis: Redis | None = None
        self._pubsub: Any = None
        self._script: Any = None
        self._rooms: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()
        self._deaf_since: float | None = None
        self._last_error: str | None = None
        self._reconnects = 0
        # Presence changes made while Redis was away, by (room, connection id): announced on reconnect.
        self._missed: dict[tuple[str, str], tuple[str, Member]] = {}
        self._run_id: str | None = None  # the Redis server's; a new one means it restarted empty
        # Rooms told of an unconfirmed publish and since then sent none that was confirmed: one gap
        # each, however many publishes time out while Redis hangs.
        self._unconfirmed_rooms: set[str] = set()

    # -- keys ---------------------------------------------------------------------------------------

    def _channel(self, room: str) -> str:
        """The pub/sub channel of `room`."""
        return f"{self.prefix}room:{room}"

    def _room_of(self, channel: bytes) -> str:
        """The room of a channel `_channel` named."""
        return channel.decode()[len(self.prefix) + 5:]  # strip "<prefix>room:"

    def _presence_key(self, room: str) -> str:
        """The sorted set of `room`'s members, scored by expiry time."""
        return f"{self.prefix}presence:{room}"

    def _history_keys(self, room: str) -> tuple[str, str, str]:
        """The id counter, the history set and the history's start (the counter's first value) of `room`."""
        return f"{self.prefix}seq:{room}", f"{self.prefix}history:{room}", f"{self.prefix}start:{room}"

    def _header(self, kind: str, seq: int = 0, sent: int = 0) -> bytes:
        return orjson.dumps([self.node, kind, seq, sent]) + b"\n"

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self, hub: Subscriber) -> None:
        await super().start(hub)
        self.node = hub.node_id
        # No silent retries: a failed command must surface (publish) or be noticed (subscriber).
        options: dict[str, Any] = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                                   "retry": Retry(NoBackoff(), 0)}
        # A bounded pool that waits for a free connection: a burst of joins queues up instead of opening
        # one Redis connection per WebSocket.
        pool = BlockingConnectionPool.from_url(self.url, max_connections=self.max_connections,
                                               timeout=self.timeout, **options)
        self._redis = Redis(connection_pool=pool)
        self._sub_redis = Redis.from_url(self.url, **options)
        await self._start_listening()

    async def _start_listening(self) -> None:
        """With the clients made: load the publish script, start the subscriber and the heartbeat."""
        assert self._redis is not None
        self._script = self._redis.register_script(PUBLISH_SCRIPT.replace("{publish}", self.publish_command))
        self._listening = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._listen()), loop.create_task(self._heartbeat())]
        # Wait (briefly) for the subscriber, so a room joined right after startup is heard at once.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                await self._listening.wait()

    async def stop(self) -> None:
        await cancel_tasks(self._tasks)
        self._tasks = []
        # A clean stop says goodbye: this process's members leave, and so do those whose leave could not
        # be written earlier. Once Redis fails to answer, the rest expire after the TTL instead.
        with contextlib.suppress(BackendUnavailable, *REDIS_ERRORS):
            for room, members in list(self.local.items()):
                for member in list(members.values()):
                    await self.remove_member(room, member)
            if self._missed and self._deaf_since is None:
                await self._write_missed(False)
        await self._close_pubsub()
        await self._close_clients()
        await super().stop()

    async def _close_clients(self) -> None:
        """Close the command and subscriber clients (at stop)."""
        for client in (self._redis, self._sub_redis):
            if client is not None:
                with contextlib.suppress(*REDIS_ERRORS):
                    await client.aclose(close_connection_pool=True)
        self._redis = self._sub_redis = None

    # -- publishing ---------------------------------------------------------------------------------

    async def publish(self, room: str, message: Message, history: HistoryPolicy | None) -> None:
        assert self._redis is not None, "backend not started"
        sent = _now_ms()
        try:
            with _unavailable(f"publish to room {room!r}", PublishError):
                if history is None:
                    await self._redis.execute_command(self.publish_command, self._channel(room),
                                                      self._header(message.kind, 0, sent) + message.payload())
                else:
                    seq_key, history_key, start_key = self._history_keys(room)
                    seq = await self._script(keys=[seq_key, history_key, self._channel(room), start_key],
                                             args=[self.node, message.kind, message.payload(), sent, history.size,
                                                   int(history.ttl * 1000)])
                    message.seq = int(seq)
            self._unconfirmed_rooms.discard(room)
        except PublishError as exc:
            if isinstance(exc.__cause__, RedisTimeoutError):
                self._unconfirmed(room)
            raise
        except asyncio.CancelledError:
            self._unconfirmed(room)
            raise

    def _unconfirmed(self, room: str) -> None:
        """A publish was sent but not confirmed (its reply timed out, or it was cancelled).

        Redis may still run it: the other processes then deliver it and the history keeps it, but this
        process never will (it skips its own echo), so its members are told they may have missed it.
        A refused or broken connection needs no signal here: nothing was sent, or Redis went away and
        the subscriber signals the gap when it is back. One signal per room until a publish to it is
        confirmed: a hung Redis (or one that times out connecting) must not have every publish make
        the room's clients reload.
        """
        if room not in self._unconfirmed_rooms:
            self._unconfirmed_rooms.add(room)
            self.hub.signal_gap(room)  # type: ignore[union-attr]

    async def replay(self, room: str, since: int, history: HistoryPolicy) -> Replay:
        assert self._redis is not None, "backend not started"
        seq_key, history_key, start_key = self._history_keys(room)
        with _unavailable(f"read history of room {room!r}"):
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrangebyscore(history_key, f"({since}", "+inf")
                pipe.get(seq_key)
                pipe.get(start_key)
                entries, last, start = await pipe.execute()
        horizon = time.time() - history.ttl
        messages = []
        for entry in entries:
            message = self._parse(entry)[1]
            if message is not None and message.time >= horizon:
                messages.append(message)
        # No start: a counter made before histories kept theirs (its ids began at 1), or none at all.
        return Replay(messages, int(last or 0), int(start or 0) if last else 0)

    # -- subscribing --------------------------------------------------------------------------------

    async def subscribe(self, room: str) -> None:
        self._rooms.add(room)
        pubsub = self._pubsub
        if pubsub is not None:
            try:
                await pubsub.subscribe(self._channel(room))
            except REDIS_ERRORS as exc:
                self._deafened(exc)  # the subscriber reconnects and subscribes every room again

    async def unsubscribe(self, room: str) -> None:
        self._rooms.discard(room)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.unsubscribe(self._channel(room))

    def _deafened(self, exc: BaseException) -> None:
        if self._deaf_since is None:
            self._deaf_since = time.time()
            logger.warning("redis subscriber lost its connection (%s); reconnecting", exc)
        self._last_error = f"{type(exc).__name__}: {exc}"

    async def _drop_idle_connections(self) -> None:
        """The subscriber lost Redis, so pooled command connections are dead too: drop the idle ones
        now rather than fail the next command on each of them."""
        if self._redis is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._redis.connection_pool.disconnect(inuse_connections=False)

    async def _close_pubsub(self) -> None:
        """Close the subscriber connection, if one is open."""
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await pubsub.aclose()

    async def _release_lost(self) -> None:
        """The subscriber failed: close what of it is lost (here its one connection)."""
        await self._close_pubsub()

    async def _server_run_id(self) -> str | None:
        """The Redis server's run id, new at every start; None where INFO is not allowed (some managed Redis)."""
        assert self._sub_redis is not None
        try:
            return (await self._sub_redis.info("server")).get("run_id")
        except ResponseError:
            return None

    async def _listen(self) -> None:
        """Hold one subscriber connection; when it breaks, reconnect with backoff and signal the gap."""
        backoff = 0.05
        first = True
        while True:
            try:
                rooms = await self._open_subscriber()
                run_id = await self._server_run_id()
                restarted = None not in (run_id, self._run_id) and run_id != self._run_id
                self._run_id = run_id
                was_deaf = self._deaf_since is not None and not first
                if was_deaf:
                    await self._drop_idle_connections()
                    logger.warning("redis subscriber reconnected after %.1f s; signalling a gap to %d rooms",
                                   time.time() - self._deaf_since, len(rooms))  # type: ignore[operator]
                    self._reconnects += 1
                    self._unconfirmed_rooms.clear()  # the gap below covers them
                    for room in rooms:
                        self.hub.signal_gap(room)  # type: ignore[union-attr]
                self._deaf_since = None
                if was_deaf or restarted:
                    await self._catch_up(restarted)
                first = False
                backoff = 0.05
                self._listening.set()
                await self._read(self._pubsub)
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                self._deafened(exc)
                first = False
            except Exception:  # a bug must not leave the process deaf for good
                logger.exception("redis subscriber failed")
                self._deafened(RuntimeError("subscriber error"))
                first = False
            await self._release_lost()
            await self._drop_idle_connections()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    async def _open_subscriber(self) -> list[str]:
        """Connect the subscriber (`self._pubsub`) and subscribe to every room; returns those rooms."""
        assert self._sub_redis is not None
        pubsub = self._sub_redis.pubsub(ignore_subscribe_messages=True)
        # A channel of its own keeps the connection subscribed even with no rooms.
        await pubsub.subscribe(f"{self.prefix}node:{self.node}")
        self._pubsub = pubsub
        rooms = list(self._rooms)
        if rooms:
            await pubsub.subscribe(*(self._channel(room) for room in rooms))
        return rooms

    async def _read(self, pubsub: Any) -> None:
        """Dispatch messages until the connection fails or Redis stops answering."""
        await self._pump(pubsub, self._on_message)

    def _on_message(self, message: dict[str, Any]) -> None:
        if message["type"] == "message":
            self._dispatch(message["channel"], message["data"])

    async def _pump(self, pubsub: Any, handle: Callable[[dict[str, Any]], None]) -> None:
        """Hand every message of one subscriber connection to `handle` until the connection fails.

        A server that hangs, or a host that vanishes without closing the socket, raises no error on a
        quiet channel: when nothing has arrived for `health_interval` seconds the subscriber pings, and
        a ping unanswered for another `health_interval` counts as a lost connection.
        """
        loop = asyncio.get_running_loop()
        interval = self.health_interval
        heard = loop.time()
        pinged: float | None = None
        while True:
            message = await pubsub.get_message(timeout=interval / 4)
            now = loop.time()
            if message is not None:
                heard, pinged = now, None
                handle(message)
                continue
            if pinged is not None:
                if now - pinged > interval:
                    raise _Silent(f"no answer from Redis to a ping for {now - pinged:.1f} s")
            elif now - heard > interval:
                await pubsub.ping()
                pinged = now

    def _parse(self, data: bytes) -> tuple[str, Message | None, bytes]:
        header, _, payload = data.partition(b"\n")
        node, kind, seq, sent = orjson.loads(header)
        if kind == PRESENCE:
            return node, None, payload
        return node, Message.from_payload(kind, payload, seq or None, sent / 1000), payload

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        """Hand one message of a room's channel to the hub, unless this process published it."""
        room = self._room_of(channel)
        try:
            node, message, payload = self._parse(data)
        except (ValueError, TypeError):
            logger.warning("ignoring a malformed message on %r", channel)
            return
        if node == self.node:
            return  # this process delivered it already
        if message is not None:
            self.hub.deliver_remote(room, message)  # type: ignore[union-attr]
        else:
            kind, connection_id, user_id = orjson.loads(payload)
            self.hub.emit_remote(PresenceEvent(kind, room, Member(connection_id, user_id)))  # type: ignore[union-attr]

    # -- presence -----------------------------------------------------------------------------------

    def _announce(self, pipe: Any, room: str, kind: str, member: Member) -> None:
        pipe.execute_command(self.publish_command, self._channel(room),
                             self._header(PRESENCE) + orjson.dumps([kind, *member.to_list()]))

    def _note_missed(self, room: str, kind: str, member: Member) -> None:
        key = (room, member.connection_id)
        earlier = self._missed.pop(key, None)
        if earlier is None or earlier[0] == kind:
            self._missed[key] = (kind, member)
        # else a join and a leave within one outage: nobody else saw either, so neither is announced

    async def _catch_up(self, restarted: bool) -> None:
        """Redis is back: write and announce the presence changes made while it was away, then beat."""
        await self._write_missed(restarted)
        await self._beat()  # the other members of this process, refreshed (or put back in an emptied Redis) now

    async def _write_missed(self, restarted: bool) -> None:
        """Write and announce the presence changes that could not reach Redis when they were made.

        A leave is announced when this process removes the member's entry, or when Redis restarted
        empty (the entry is gone, and no sweep will ever announce it); otherwise the entry expired
        during the outage and the process whose sweep removed it has announced the leave.
        """
        assert self._redis is not None
        for key, change in list(self._missed.items()):
            if self._missed.get(key) is not change:
                continue  # superseded by a change made since
            kind, member = change
            room = key[0]
            async with self._redis.pipeline(transaction=False) as pipe:
                if kind == JOIN:
                    self._add_entry(pipe, room, member)
                    self._announce(pipe, room, JOIN, member)
                    await pipe.execute()
                elif await self._redis.zrem(self._presence_key(room), orjson.dumps(member.to_list())) or restarted:
                    self._announce(pipe, room, LEAVE, member)
                    await pipe.execute()
            if self._missed.get(key) is change:
                del self._missed[key]

    def _add_entry(self, pipe: Any, room: str, member: Member) -> None:
        key, ttl_ms = self._presence_key(room), int(self.presence_ttl * 1000)
        pipe.zadd(key, {orjson.dumps(member.to_list()): _now_ms() + ttl_ms})
        pipe.pexpire(key, 2 * ttl_ms)

    async def add_member(self, room: str, member: Member) -> None:
        await super().add_member(room, member)
        assert self._redis is not None
        if self._deaf_since is not None:
            # Redis is away: no accept waits on it; the member is written and announced once it is back.
            self._note_missed(room, JOIN, member)
            return
        self._missed.pop((room, member.connection_id), None)
        try:
            with _unavailable(f"add presence in room {room!r}"):
                async with self._redis.pipeline(transaction=False) as pipe:
                    self._add_entry(pipe, room, member)
                    self._announce(pipe, room, JOIN, member)
                    await pipe.execute()
        except BackendUnavailable:
            self._note_missed(room, JOIN, member)
            raise

    async def remove_member(self, room: str, member: Member) -> None:
        await super().remove_member(room, member)
        if self._redis is None:
            return
        if self._deaf_since is not None:
            self._note_missed(room, LEAVE, member)  # removed and announced once Redis is back
            return
        self._missed.pop((room, member.connection_id), None)
        try:
            with _unavailable(f"remove presence in room {room!r}"):
                if await self._redis.zrem(self._presence_key(room), orjson.dumps(member.to_list())):
                    async with self._redis.pipeline(transaction=False) as pipe:
                        self._announce(pipe, room, LEAVE, member)
                        await pipe.execute()
        except BackendUnavailable:
            self._note_missed(room, LEAVE, member)
            raise

    async def members(self, room: str) -> list[Member]:
        assert self._redis is not None
        with _unavailable(f"read presence of room {room!r}"):
            raw = await self._redis.zrangebyscore(self._presence_key(room), _now_ms(), "+inf")
        return [Member(*orjson.loads(entry)) for entry in cast("list[bytes]", raw)]

    async def count(self, room: str) -> int:
        assert self._redis is not None
        with _unavailable(f"count presence of room {room!r}"):
            return int(await self._redis.zcount(self._presence_key(room), _now_ms(), "+inf"))

    async def _heartbeat(self) -> None:
        """Keep this process's members alive and retire the members of processes that stopped beating."""
        while True:
            await asyncio.sleep(self.presence_ttl / 3)
            try:
                if self._missed and self._deaf_since is None:
                    await self._catch_up(False)  # changes whose Redis call failed with no outage seen
                else:
                    await self._beat()
            except REDIS_ERRORS as exc:
                logger.warning("redis presence heartbeat failed: %s", exc)
                self._last_error = f"{type(exc).__name__}: {exc}"

    async def _beat(self) -> None:
        assert self._redis is not None
        now, ttl_ms = _now_ms(), int(self.presence_ttl * 1000)
        rooms = [room for room in self._rooms if not room.startswith(CONNECTION_PREFIX)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for room, members in self.local.items():
                key = self._presence_key(room)
                pipe.zadd(key, {orjson.dumps(m.to_list()): now + ttl_ms for m in members.values()})
                pipe.pexpire(key, 2 * ttl_ms)
            for room in rooms:
                pipe.zrangebyscore(self._presence_key(room), "-inf", now)
            results = await pipe.execute()
        expired = results[len(results) - len(rooms):] if rooms else []
        for room, entries in zip(rooms, expired):
            for entry in entries:
                # ZREM succeeds for exactly one process, which then announces the leave.
                if await self._redis.zrem(self._presence_key(room), entry):
                    member = Member(*orjson.loads(entry))
                    async with self._redis.pipeline(transaction=False) as pipe:
                        self._announce(pipe, room, LEAVE, member)
                        await pipe.execute()
                    self.hub.emit_remote(PresenceEvent(LEAVE, room, member))  # type: ignore[union-attr]

    # -- health -------------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        deaf = self._deaf_since is not None or not self._listening.is_set()
        return {
            "backend": self.name,
            "ok": not deaf,
            "subscriber": "reconnecting" if self._deaf_since is not None
            else ("listening" if self._listening.is_set() else "connecting"),
            "deaf_since": self._deaf_since,
            "last_error": self._last_error,
            "reconnects": self._reconnects,
            "subscribed_rooms": len(self._rooms),
        }
