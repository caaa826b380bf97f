"""Pub/sub backends: where broadcasts, presence and history live beyond one connection."""
from bolt.realtime.backends.base import Backend, BackendUnavailable, PublishError
from bolt.realtime.backends.memory import MemoryBackend

__all__ = ["Backend", "BackendUnavailable", "MemoryBackend", "PublishError", "backend_from_url"]


def backend_from_url(url: str, **options: object) -> Backend:
    """`"memory"`, a `redis://` / `rediss://` / `unix://` URL, or a `redis+cluster://host:port[,host:port...]`
    (`rediss+cluster://`) URL for a Redis Cluster -> a backend instance."""
    if url == "memory":
        return MemoryBackend()
    if url.startswith(("redis+cluster://", "rediss+cluster://")):
        from bolt.realtime.backends.redis_cluster import RedisClusterBackend

        return RedisClusterBackend(url, **options)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from bolt.realtime.backends.redis import RedisBackend  # redis is an optional dependency

        return RedisBackend(url, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown pubsub backend {url!r}: use 'memory', a redis:// or a redis+cluster:// URL")
