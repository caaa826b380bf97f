"""Real-time messaging for bolt: the hub, rooms, broadcast, presence, resume and pub/sub backends."""
from bolt.realtime.backends import Backend, BackendUnavailable, MemoryBackend, PublishError
from bolt.realtime.endpoint import ProtocolError, RealtimeEndpoint
from bolt.realtime.history import HistoryPolicy
from bolt.realtime.hub import Hub
from bolt.realtime.names import InvalidRoomName
from bolt.realtime.outbox import CLOSE, DROP_NEWEST, DROP_OLDEST, OutboxSettings
from bolt.realtime.presence import Member, PresenceEvent, PresenceSubscription
from bolt.realtime.publish import apublish, publish

__all__ = [
    "Backend", "BackendUnavailable", "CLOSE", "DROP_NEWEST", "DROP_OLDEST", "HistoryPolicy", "Hub",
    "InvalidRoomName", "Member", "MemoryBackend", "OutboxSettings", "PresenceEvent", "PresenceSubscription",
    "ProtocolError", "PublishError", "RealtimeEndpoint", "apublish", "publish",
]
