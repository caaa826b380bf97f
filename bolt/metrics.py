"""Prometheus metrics for operators: `BoltAPI(metrics="/metrics")` (needs prometheus_client: the `metrics` extra).

The hot path stays cheap: a broadcast makes one histogram observation (its time) and adds its
recipients and bytes to plain integers, and each message received or sent directly adds to plain
integers too. Those integers go into Prometheus's counters when the gauges (open connections, rooms,
backend health) are sampled: once a second by each worker, and at each scrape. Rarer events (a
handshake, a drop, an eviction) update their counters at once. With
`PROMETHEUS_MULTIPROC_DIR` set (several uvicorn workers), every worker writes its values there and the
endpoint of any worker reports them all (prometheus_client's multiprocess mode).

The log lines are not this module's: metrics on or off, a refused handshake is logged once by the
security pipeline (`bolt.security`) and an evicted slow consumer by the hub (`bolt.realtime`).
"""
from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

from bolt.responses import Response

if TYPE_CHECKING:
    from bolt.realtime.hub import Hub
    from bolt.security.denial import Denial
    from bolt.websocket import Receive, Send, WebSocket


SAMPLE_INTERVAL = 1.0  # seconds between two samples of the gauges
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Denial details the security pipeline uses, as bounded label values.
_REASONS = {"Origin not allowed": "origin", "Origin required": "origin", "Rate limit exceeded": "rate_limit",
            "Authentication required": "auth", "Permission denied": "permission", "Not Found": "not_found"}
_STATUS_REASONS = {400: "bad_request", 401: "auth", 403: "forbidden", 404: "not_found", 422: "bad_request",
                   429: "rate_limit"}


def denial_reason(denial: Denial) -> str:
    """A short, bounded name for why a handshake was refused (a label value, never free text)."""
    return _REASONS.get(denial.detail) or _STATUS_REASONS.get(denial.status_code, "other")


def websocket_denied(metrics: Metrics, denial: Denial) -> None:
    """Count a refused handshake (the refusal's one log line is bolt.security's)."""
    metrics.handshakes.labels("denied", denial_reason(denial)).inc()


def _size(data: str | bytes) -> int:
    if isinstance(data, str) and not data.isascii():
        return len(data.encode())
    return len(data)


class _Instruments:
    """The process's metric objects: created once, shared by every api (Prometheus names are global)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.connections = Gauge("bolt_websocket_connections", "Open (accepted) WebSocket connections",
                                 multiprocess_mode="livesum")
        self.handshakes = Counter("bolt_websocket_handshakes", "WebSocket handshakes by outcome and denial reason",
                                  ["outcome", "reason"])
        self.received = Counter("bolt_websocket_messages_received", "Messages received from clients")
        self.received_bytes = Counter("bolt_websocket_received_bytes", "Payload bytes received from clients")
        self.sent = Counter("bolt_websocket_messages_sent",
                            "Messages sent to clients (each broadcast recipient counts)")
        self.sent_bytes = Counter("bolt_websocket_sent_bytes", "Payload bytes sent to clients")
        self.recipients = Counter("bolt_broadcast_recipients", "Local recipients of broadcasts (the fan-out), by "
                                  "origin; divided by bolt_broadcast_seconds_count, the mean fan-out", ["origin"])
        self.latency = Histogram("bolt_broadcast_seconds",
                                 "local: broadcast() from call to queued for every local recipient (publish "
                                 "included); remote: from the publisher's clock to queued here",
                                 ["origin"], buckets=_LATENCY_BUCKETS)
        self.dropped = Counter("bolt_outbox_dropped", "Messages dropped from full send queues", ["policy"])
        self.evictions = Counter("bolt_slow_consumer_evictions", "Slow consumers closed with 1013",
                                 ["policy", "reason"])
        self.backend_up = Gauge("bolt_backend_up", "1 when the pub/sub backend is connected and listening",
                                ["backend"], multiprocess_mode="liveall")
        self.reconnects = Counter("bolt_backend_reconnects", "Times the backend's subscriber reconnected")
        self.rooms = Gauge("bolt_rooms", "Rooms with local members (connections' own rooms left out)",
                           multiprocess_mode="livesum")
        self.memberships = Gauge("bolt_room_members", "Local room memberships (presence entries this process keeps)",
                                 multiprocess_mode="livesum")
        self.largest_room = Gauge("bolt_largest_room_members", "Local members of the largest room",
                                  multiprocess_mode="livemax")
        self.queued = Gauge("bolt_outbox_queued", "Messages waiting in send queues", multiprocess_mode="livesum")


_instruments: _Instruments | None = None


def _shared_instruments() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


class Metrics:
    """One api's metrics endpoint and the hooks its hub calls; see the module docstring."""

    def __init__(self, path: str) -> None:
        try:
            import prometheus_client  # noqa: F401
        except ImportError:
            raise ImportError("BoltAPI(metrics=...) needs prometheus_client (bolt's 'metrics' extra): "
                              "pip install prometheus_client") from None
        if not path.startswith("/"):
            raise ValueError(f"metrics path must start with '/': {path!r}")
        self.path = path
        instruments = _shared_instruments()
        self.instruments = instruments
        self.handshakes = instruments.handshakes
        self._accepted = instruments.handshakes.labels("accepted", "")
        self._latency = {False: instruments.latency.labels("local"), True: instruments.latency.labels("remote")}
        # Counted on the hot path as plain integers; added to the counters by flush().
        self.received = self.received_bytes = self.sent = self.sent_bytes = 0
        self.recipients = {False: 0, True: 0}
        self._sampler: asyncio.Task[None] | None = None
        self._reconnects = 0

    # -- hooks (called by the hub) ----------------------------------------------------------------------

    def connected(self, websocket: WebSocket) -> None:
        """An accepted connection: count it and count what it receives and sends outside broadcasts."""
        self._accepted.inc()
        websocket.intercept(self._count_received, self._count_sent)

    def _count_received(self, receive: Receive) -> Receive:
        async def counted_receive() -> dict[str, Any]:
            message = await receive()
            if message["type"] == "websocket.receive":
                self.received += 1
                data = message.get("text")
                self.received_bytes += _size(data if data is not None else message.get("bytes") or b"")
            return message

        return counted_receive

    def _count_sent(self, send: Send) -> Send:
        async def counted_send(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.send":
                self.sent += 1
                data = message.get("text")
                self.sent_bytes += _size(data if data is not None else message.get("bytes") or b"")
            await send(message)

        return counted_send

    def broadcast(self, recipients: int, data: str | bytes, seconds: float, remote: bool = False) -> None:
        """One broadcast queued for `recipients` local connections, `seconds` after it started."""
        self._latency[remote].observe(seconds)
        if recipients:
            self.recipients[remote] += recipients
            self.sent += recipients
            self.sent_bytes += recipients * _size(data)

    def flush(self) -> None:
        """Add what the hot path counted since the last flush to the Prometheus counters."""
        instruments = self.instruments
        for counter, name in ((instruments.received, "received"), (instruments.received_bytes, "received_bytes"),
                              (instruments.sent, "sent"), (instruments.sent_bytes, "sent_bytes")):
            amount = getattr(self, name)
            if amount:
                counter.inc(amount)
                setattr(self, name, 0)
        for remote, amount in self.recipients.items():
            if amount:
                instruments.recipients.labels("remote" if remote else "local").inc(amount)
                self.recipients[remote] = 0

    def dropped(self, policy: str) -> None:
        self.instruments.dropped.labels(policy).inc()

    def evicted(self, policy: str, why: str) -> None:
        self.instruments.evictions.labels(policy, "send_timeout" if "blocked" in why else "queue_full").inc()

    # -- gauges ---------------------------------------------------------------------------------------

    def start(self, hub: Hub) -> None:
        """Sample `hub`'s gauges every SAMPLE_INTERVAL on the running loop, until stop()."""
        if self._sampler is None or self._sampler.done():
            self._sampler = asyncio.get_running_loop().create_task(self._sample_forever(hub))

    async def stop(self) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            sampler.cancel()
            await asyncio.gather(sampler, return_exceptions=True)
            self.flush()
            mark_process_dead()

    async def _sample_forever(self, hub: Hub) -> None:
        while True:
            self.sample(hub)
            await asyncio.sleep(SAMPLE_INTERVAL)

    def sample(self, hub: Hub) -> None:
        self.flush()
        instruments = self.instruments
        health = hub.health()
        instruments.connections.set(health["connections"])
        instruments.queued.set(health["queued"])
        instruments.backend_up.labels(str(health.get("backend"))).set(1 if health.get("ok") else 0)
        reconnects = int(health.get("reconnects") or 0)
        if reconnects > self._reconnects:
            instruments.reconnects.inc(reconnects - self._reconnects)
        self._reconnects = reconnects
        sizes = hub.room_sizes()
        instruments.rooms.set(len(sizes))
        instruments.memberships.set(sum(sizes))
        instruments.largest_room.set(max(sizes, default=0))

    # -- the endpoint ---------------------------------------------------------------------------------

    def response(self, hub: Hub | None = None) -> Response:
        """The text exposition of every metric: this process's, or every worker's in multiprocess mode."""
        from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

        if hub is not None:
            self.sample(hub)  # this worker's gauges as they are now
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:
            registry = REGISTRY
        return Response(generate_latest(registry), headers={"content-type": CONTENT_TYPE_LATEST})


def mark_process_dead() -> None:
    """In multiprocess mode, drop this worker's live gauges (at shutdown)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
