"""Each connection's bounded outbound queue, its slow-consumer policy, and the task that drains it.

A broadcast never waits for a socket: it appends the (shared, pre-built) ASGI message to every
recipient's outbox and moves on. Under bolt's own protocol an idle outbox writes the broadcast's
frame, encoded once for all connections alike, straight to the transport (the `bolt.frames` extension).
Each outbox has one sender task that writes to its socket. When a
client reads too slowly the queue fills and the policy decides: drop the oldest message, drop the
newest, or close the connection with 1013 (Try Again Later). Only broadcasts are dropped: a message
put with `droppable=False` (a reply, say) is not, and a queue full of those closes the connection.
A send that stays blocked longer than the send timeout means the client has stopped reading
altogether; it is closed the same way.
A send that fails with OSError means the client is gone; any other exception is a bug in a layer
around send (`WebSocket.intercept`), and the connection is ended rather than left half-alive.
"""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from bolt.wire import SharedMessage

logger = logging.getLogger("bolt.realtime")

DROP_OLDEST = "drop_oldest"
DROP_NEWEST = "drop_newest"
CLOSE = "close"
POLICIES = (DROP_OLDEST, DROP_NEWEST, CLOSE)


class OutboxSettings:
    """How many messages may wait for one connection, what happens beyond that, and how long one send may take.

    `envelopes` marks connections that speak the room protocol: every message reaches them wrapped
    as `{"room", "data"}`, also from rooms without history (which send plain messages to others).
    """

    __slots__ = ("size", "policy", "timeout", "envelopes")

    def __init__(self, size: int = 256, policy: str = DROP_OLDEST, timeout: float | None = 10.0,
                 envelopes: bool = False) -> None:
        if size < 1:
            raise ValueError("send_queue must be at least 1")
        if policy not in POLICIES:
            raise ValueError(f"slow_consumer must be one of {', '.join(POLICIES)}, not {policy!r}")
        if timeout is not None and timeout <= 0:
            raise ValueError("send_timeout must be positive or None")
        self.size = size
        self.policy = policy
        self.timeout = timeout
        self.envelopes = envelopes

    def replace(self, size: int | None = None, policy: str | None = None,
                timeout: float | None | bool = False, envelopes: bool | None = None) -> OutboxSettings:
        """A copy with the given fields changed (`timeout=False` keeps the current one)."""
        return OutboxSettings(self.size if size is None else size, self.policy if policy is None else policy,
                              self.timeout if timeout is False else timeout,
                              self.envelopes if envelopes is None else envelopes)

    def __repr__(self) -> str:
        return (f"OutboxSettings(size={self.size}, policy={self.policy!r}, timeout={self.timeout}, "
                f"envelopes={self.envelopes})")


class _Rest:
    """Await the remainder of a coroutine that has already run up to its first suspension.

    The sender steps each send by hand so that a send which completes without suspending (the
    usual case: the transport takes the bytes at once) costs no timer and no extra await.
    """

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self._coro, self._pending
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


class _Kept(dict[str, Any]):
    """A queued ASGI message the policy may not drop: a plain dict to the server, told apart only on overflow."""

    __slots__ = ()


class Outbox:
    """The bounded queue between broadcasts and one connection's socket.

    While the socket keeps up, `put` writes at once: it steps the ASGI send by hand, and a send that
    completes without suspending (the transport took the bytes) costs no task switch and no timer.
    The first send that would wait is handed to a sender task; until that task has drained the queue,
    later messages queue behind it, bounded by the policy.
    """

    __slots__ = ("_send", "_write", "_queue", "_size", "policy", "_timeout", "_on_end", "_on_drop", "_task",
                 "closed", "dropped", "envelopes")

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]], settings: OutboxSettings,
                 on_end: Callable[[str, Exception | None], None],
                 write: Callable[[SharedMessage], bool] | None = None,
                 on_drop: Callable[[str], None] | None = None) -> None:
        """`on_end(why, error)` is called when the outbox gives up on the connection: `error` is None when
        the policy closes a slow consumer, else the exception a send raised (not an OSError: a bug).
        `on_drop(policy)` is called for each dropped message."""
        self._send = send
        self._write = write  # the server's writer of shared messages, when it offers one for this connection
        # Messages wait only while a sender task runs: the deque (~700 bytes) exists only then.
        self._queue: deque[dict[str, Any]] | None = None
        self._size = settings.size
        self.policy = settings.policy  # what a full queue does: read by the hub's eviction log
        self._timeout = settings.timeout
        self._on_end: Callable[[str, Exception | None], None] | None = on_end
        self._on_drop = on_drop
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.dropped = 0
        self.envelopes = settings.envelopes

    def __len__(self) -> int:
        """Messages waiting (not counting one being written)."""
        return len(self._queue) if self._queue is not None else 0

    def put(self, message: dict[str, Any], shared: SharedMessage | None = None, droppable: bool = True) -> None:
        """Send or queue one ASGI send message; never blocks. Applies the policy when the queue is full.

        `shared` is the same message encoded for many connections, written directly when the server takes it.
        A message that is not `droppable` is never dropped: the policy drops a broadcast instead.
        """
        if self.closed:
            return
        if self._task is None:  # idle: write now (inlined: this is the fan-out's per-recipient cost)
            if shared is not None and self._write is not None and self._write(shared):
                return
            coro = self._send(message)
            try:
                pending = coro.send(None)  # type: ignore[attr-defined]
            except StopIteration:
                return
            except OSError as exc:
                self._lost(exc)
                return
            except Exception as exc:
                self._give_up("send failed", exc)
                return
            # The transport is full: the sender task finishes this send, then drains what queues meanwhile.
            self._queue = deque()
            self._task = asyncio.get_running_loop().create_task(self._drain(_Rest(coro, pending)))  # type: ignore[arg-type]
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self._size and not self._make_room(queue, droppable):
            return
        queue.append(message if droppable else _Kept(message))

    def _make_room(self, queue: deque[dict[str, Any]], droppable: bool) -> bool:
        """Apply the policy to a full queue: True when a waiting message made room for the new one."""
        self.dropped += 1
        if self._on_drop is not None:
            self._on_drop(self.policy)
        if self.policy == CLOSE:
            self._give_up("send queue full")
            return False
        if droppable and self.policy == DROP_NEWEST:
            return False
        # The oldest (drop_oldest) or newest (drop_newest) waiting message that may be dropped; with
        # no replies waiting that is the first one looked at.
        order = range(len(queue)) if self.policy == DROP_OLDEST else range(len(queue) - 1, -1, -1)
        for index in order:
            if type(queue[index]) is not _Kept:
                del queue[index]
                return True
        if not droppable:  # nothing waiting may be dropped, nor may the new message
            self._give_up("send queue full")
        return False  # or, under drop_oldest, the new message is the oldest that may be dropped

    def _lost(self, exc: OSError) -> None:
        # The client is gone; its handler learns that on its next receive.
        logger.debug("outbox send failed: %r", exc)
        self.closed = True
        self._queue = None

    def _give_up(self, why: str, error: Exception | None = None) -> None:
        on_end = self._on_end
        self.close()
        if on_end is not None:
            on_end(why, error)

    def close(self) -> None:
        """Stop sending, forget queued messages and let go of the callbacks (the connection is leaving)."""
        self.closed = True
        self._queue = None
        # The callbacks usually hold the connection that holds this outbox: dropping them lets
        # refcounting free an ended connection at once, instead of the cyclic GC (a full
        # collection costs time in proportion to every object of the process).
        self._on_end = self._on_drop = None
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _drain(self, rest: _Rest) -> None:
        queue, send = self._queue, self._send
        assert queue is not None  # made with this task
        try:
            while True:
                try:
                    async with asyncio.timeout(self._timeout):
                        await rest
                except TimeoutError:
                    self._give_up(f"send blocked for more than {self._timeout} s")
                    return
                while True:
                    if self.closed:
                        return
                    if not queue:
                        self._task = self._queue = None  # idle again: the next put writes at once
                        return
                    coro = send(queue.popleft())
                    try:
                        pending = coro.send(None)  # type: ignore[attr-defined]
                    except StopIteration:
                        continue
                    rest = _Rest(coro, pending)  # type: ignore[arg-type]
                    break
        except OSError as exc:
            self._lost(exc)
        except Exception as exc:
            self._give_up("send failed", exc)
