"""The Redis backend on a Redis Cluster (7.0+): sharded pub/sub, one hash slot per room.

Everything of one room lives in one hash slot: its channel and keys carry the room as a hash tag
(`bolt:room:{lobby}`, `bolt:seq:{lobby}`, ...), so the script that numbers, keeps and publishes a
message stays one atomic call on the master that owns the room, and the broadcast goes out with
SPUBLISH, which only that master's shard carries. Rooms spread over the masters by their slots.

Commands go through redis-py's cluster client, which follows MOVED and ASK redirects and refreshes
its slot map after a connection error (a failover); at most `max_connections` of them run at once,
and the others wait for their turn (`_WaitingCluster`). The subscriber holds one connection per master
that owns a subscribed room, each checked like the plain backend's: when one of them breaks or stops
answering, the subscriber closes that connection only, reads the slot map again, subscribes that
master's rooms on their current master and signals a gap to those rooms alone; the rooms of the other
masters lost nothing. A master whose slot moves away (resharding) unsubscribes its clients; that is
handled the same way.
"""
from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from bolt.realtime.backends.base import Backend, Subscriber
from bolt.realtime.backends.redis import REDIS_ERRORS, RedisBackend, cancel_tasks

SCHEMES = ("redis+cluster://", "rediss+cluster://")

T = TypeVar("T")
# Set while a command holds a turn: a pipeline's redirected commands run inside it and need no other.
_HOLDS_TURN: ContextVar[bool] = ContextVar("bolt_cluster_turn", default=False)


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """`redis+cluster://[user:password@]host:port[,host:port...]` -> startup nodes and connection options.

    `rediss+cluster://` connects with TLS. Any reachable node is enough to find the others.
    """
    if not url.startswith(SCHEMES):
        raise ValueError(f"not a Redis Cluster URL: {url!r} (use redis+cluster://host:port[,host:port...])")
    scheme, _, rest = url.partition("://")
    credentials, _, hosts = rest.rpartition("@")
    hosts = hosts.split("/", 1)[0].split("?", 1)[0]
    options: dict[str, Any] = {"ssl": scheme == "rediss+cluster"}
    if credentials:
        username, _, password = credentials.partition(":")
        options["username"] = unquote(username) or None
        options["password"] = unquote(password) or None
    nodes = []
    for host in hosts.split(","):
        parts = urlsplit(f"//{host}")
        if not parts.hostname:
            raise ValueError(f"Redis Cluster URL {url!r} names no host in {host!r}")
        nodes.append((parts.hostname, parts.port or 6379))
    return nodes, options


class RedisClusterBackend(RedisBackend):
    """Broadcasts, presence and history on a Redis Cluster; the options are those of RedisBackend.

    `prefix` may not contain braces: the room is each key's hash tag. `max_backoff` is 1 s by default:
    a failover completes about a second after `cluster-node-timeout`, and the subscriber should see it
    soon after (one attempt costs a CLUSTER SLOTS on a live node).
    """

    name = "redis-cluster"
    publish_command = "SPUBLISH"

    def __init__(self, url: str, **options: Any) -> None:
        if not hasattr(PubSub, "ssubscribe"):
            raise ImportError("a Redis Cluster needs a redis-py with sharded pub/sub: pip install -U redis")
        options.setdefault("max_backoff", 1.0)
        super().__init__(url, **options)
        if "{" in self.prefix or "}" in self.prefix:
            raise ValueError(f"prefix {self.prefix!r} may not contain braces on a Redis Cluster")
        self.startup_nodes, self._url_options = parse_cluster_url(url)
        self._node_options: dict[str, Any] = {}
        self._shards: _Shards | None = None

    # -- keys: the room is the hash tag ---------------------------------------------------------------

    def _channel(self, room: str) -> str:
        return f"{self.prefix}room:{{{room}}}"

    def _room_of(self, channel: bytes) -> str:
        return channel.decode()[len(self.prefix) + 6:-1]  # strip "<prefix>room:{" and "}"

    def _presence_key(self, room: str) -> str:
        return f"{self.prefix}presence:{{{room}}}"

    def _history_keys(self, room: str) -> tuple[str, str, str]:
        return f"{self.prefix}seq:{{{room}}}", f"{self.prefix}history:{{{room}}}", f"{self.prefix}start:{{{room}}}"

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self, hub: Subscriber) -> None:
        await Backend.start(self, hub)
        self.node = hub.node_id
        self._node_options = {"socket_timeout": self.timeout, "socket_connect_timeout": self.timeout,
                              "retry": Retry(NoBackoff(), 0), **self._url_options}
        # No silent retries here either: a publish during a failover fails at once (PublishError), and
        # the client reads the slot map again before its next command.
        # The cluster client answers every command the single-node one is used for.
        self._redis = _WaitingCluster(  # type: ignore[assignment]
            self.max_connections, self.timeout,
            startup_nodes=[ClusterNode(host, port) for host, port in self.startup_nodes], **self._node_options)
        await self._start_listening()

    async def _release_lost(self) -> None:
        if self._shards is not None:
            await self._shards.release_lost()

    async def _close_pubsub(self) -> None:
        shards, self._shards = self._shards, None
        self._pubsub = None
        if shards is not None:
            await shards.aclose()

    async def _close_clients(self) -> None:
        if self._redis is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await self._redis.aclose()
        self._redis = None

    async def _drop_idle_connections(self) -> None:
        """Nothing to drop: the cluster client disconnects a node's idle connections when one fails."""

    async def _server_run_id(self) -> str | None:
        # A failed-over master is a replica that kept the data; there is no one server to compare.
        return None

    # -- subscribing ----------------------------------------------------------------------------------

    async def _open_subscriber(self) -> list[str]:
        """Subscribe every room that no live connection carries; returns those rooms (all, at first)."""
        assert isinstance(self._redis, RedisCluster)
        await self._redis.initialize()  # once: the client's own setup (slot map, command table)
        await self._redis.nodes_manager.initialize()  # the slot map as it is now (after a failover, say)
        if self._shards is None:
            self._shards = _Shards(self._redis, self._node_options, self._pump, self._dispatch)
        shards = self._shards
        self._pubsub = shards
        rooms = [room for room in self._rooms if self._channel(room) not in shards.owner]
        await shards.subscribe([self._channel(room) for room in rooms])
        return rooms

    async def _read(self, pubsub: Any) -> None:
        """Until any master's connection fails (its reader runs on its own)."""
        await pubsub.failed

    async def subscribe(self, room: str) -> None:
        self._rooms.add(room)
        shards = self._shards
        if shards is not None:
            with contextlib.suppress(*REDIS_ERRORS):  # that master's connection is lost: see _Shards
                await shards.subscribe([self._channel(room)])

    async def unsubscribe(self, room: str) -> None:
        self._rooms.discard(room)
        shards = self._shards
        if shards is not None:
            with contextlib.suppress(*REDIS_ERRORS):
                await shards.unsubscribe(self._channel(room))

    def health(self) -> dict[str, Any]:
        report = super().health()
        report["shards"] = len(self._shards.pubsubs) if self._shards is not None else 0
        return report


class _WaitingCluster(RedisCluster):
    """redis-py's cluster client, whose commands wait for a free connection as RedisBackend's pool does.

    redis-py caps the connections of each node and raises MaxConnectionsError at the cap instead of
    waiting. Here at most `max_connections` commands or pipelines of the process run at once, each with
    at most one connection to a node, so no node reaches its cap; the others wait up to `wait` seconds.
    """

    def __init__(self, max_connections: int, wait: float, **options: Any) -> None:
        super().__init__(max_connections=max_connections, **options)
        self._turns = asyncio.Semaphore(max_connections)
        self._size, self._wait = max_connections, wait

    async def run(self, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """`await call(*args, **kwargs)` in a turn of its own."""
        if _HOLDS_TURN.get():
            return await call(*args, **kwargs)
        if self._turns.locked():
            try:
                async with asyncio.timeout(self._wait):
                    await self._turns.acquire()
            except TimeoutError:
                raise RedisConnectionError(
                    f"all {self._size} command connections stayed busy for {self._wait} s") from None
        else:
            await self._turns.acquire()  # free: returns without suspending
        held = _HOLDS_TURN.set(True)
        try:
            return await call(*args, **kwargs)
        finally:
            _HOLDS_TURN.reset(held)
            self._turns.release()

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        return await self.run(super().execute_command, *args, **kwargs)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # which refuses it, as on any cluster client
        return _WaitingPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py makes its own


class _WaitingPipeline(ClusterPipeline):
    """A cluster pipeline that runs in a turn of its client's (`_WaitingCluster`)."""

    cluster_client: _WaitingCluster

    async def execute(self, raise_on_error: bool = True, allow_redirections: bool = True) -> list[Any]:
        return await self.cluster_client.run(super().execute, raise_on_error, allow_redirections)


class _Shards:
    """The subscriber of a cluster: one sharded pub/sub connection per master that owns a subscribed room.

    `failed` resolves with the first error of any connection, and `lost` names every master whose
    connection failed; the backend then releases those (`release_lost`) and subscribes their rooms again,
    keeping the other masters' connections as they are.
    """

    def __init__(self, cluster: RedisCluster, node_options: dict[str, Any],
                 pump: Callable[[Any, Callable[[dict[str, Any]], None]], Awaitable[None]],
                 dispatch: Callable[[bytes, bytes], None]) -> None:
        self.cluster = cluster
        self.node_options = node_options  # how to connect to one master
        self.pump = pump  # reads one pub/sub connection until it fails: RedisBackend._pump
        self.dispatch = dispatch  # hands a room's message on: RedisBackend._dispatch
        self.pubsubs: dict[str, Any] = {}  # node name -> its pub/sub connection
        self.owner: dict[str, str] = {}  # channel -> the node it is subscribed on
        self.leaving: set[str] = set()  # channels this process unsubscribed (their confirmation is not a loss)
        self.clients_of: dict[str, Redis] = {}  # node name -> the client of its pub/sub connection
        self.readers: dict[str, asyncio.Task[None]] = {}
        self.lost: set[str] = set()
        # One (un)subscription at a time: two joins at once must not open two connections to one master.
        self._lock = asyncio.Lock()
        self.failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def fail(self, exc: BaseException, node: str) -> None:
        self.lost.add(node)
        if not self.failed.done():
            self.failed.set_exception(exc)

    async def release_lost(self) -> None:
        """Close the lost masters' connections and forget their channels; arm `failed` again."""
        # First: a connection that fails while these close must resolve the new `failed`.
        lost, self.lost = self.lost, set()
        if self.failed.done():
            if not self.failed.cancelled():
                self.failed.exception()  # retrieved: the backend has seen it
            self.failed = asyncio.get_running_loop().create_future()
        for channel, name in list(self.owner.items()):
            if name in lost:
                del self.owner[channel]
        for name in lost:
            await self._close(name)

    async def _close(self, name: str) -> None:
        reader = self.readers.pop(name, None)
        if reader is not None:
            await cancel_tasks([reader])
        for closable in (self.pubsubs.pop(name, None), self.clients_of.pop(name, None)):
            if closable is not None:
                with contextlib.suppress(*REDIS_ERRORS):
                    await closable.aclose()

    async def _ssubscribe(self, node: ClusterNode, channels: list[str]) -> None:
        pubsub = self.pubsubs.get(node.name)
        if pubsub is not None:
            await pubsub.ssubscribe(*channels)
            return
        client = Redis(host=node.host, port=int(node.port), **self.node_options)
        self.clients_of[node.name] = client
        pubsub = client.pubsub()
        self.pubsubs[node.name] = pubsub
        await pubsub.ssubscribe(*channels)  # connects: only then is there something to read
        self.readers[node.name] = asyncio.get_running_loop().create_task(self._reader(node.name, pubsub))

    async def subscribe(self, channels: list[str]) -> None:
        # SSUBSCRIBE takes channels of one slot at a time.
        by_slot: dict[int, list[str]] = defaultdict(list)
        for channel in channels:
            self.leaving.discard(channel)
            by_slot[key_slot(channel.encode())].append(channel)
        async with self._lock:
            for slot, group in by_slot.items():
                node = self.cluster.nodes_manager.get_node_from_slot(slot)
                try:
                    await self._ssubscribe(node, group)
                except REDIS_ERRORS as exc:
                    self.fail(exc, node.name)
                    raise
                for channel in group:
                    self.owner[channel] = node.name

    async def unsubscribe(self, channel: str) -> None:
        async with self._lock:
            name = self.owner.pop(channel, None)
            pubsub = self.pubsubs.get(name) if name is not None else None
            if name is None or pubsub is None:
                return
            self.leaving.add(channel)
            try:
                await pubsub.sunsubscribe(channel)
            except REDIS_ERRORS as exc:
                self.fail(exc, name)
                raise

    async def _reader(self, name: str, pubsub: Any) -> None:
        try:
            await self.pump(pubsub, self._on_message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # any error, Redis's or a bug: the listener awaiting `failed` reports it
            self.fail(exc, name)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "smessage":
            self.dispatch(message["channel"], message["data"])
        elif kind == "sunsubscribe":
            channel = message["channel"].decode()
            if channel in self.leaving:
                self.leaving.discard(channel)
            elif channel in self.owner:
                # The master unsubscribed us itself: the room's slot has moved to another master.
                raise RedisConnectionError(f"shard channel {channel!r} moved to another master")

    async def aclose(self) -> None:
        for name in list(self.pubsubs):
            await self._close(name)
        if not self.failed.done():
            self.failed.cancel()
        elif not self.failed.cancelled():
            self.failed.exception()  # retrieved: the backend has seen it, or is stopping
