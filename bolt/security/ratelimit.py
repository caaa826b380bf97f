"""Token buckets: a bounded table of per-key buckets for handshakes and requests, and a single
bucket for the messages of one WebSocket connection.

Every take is synchronous, with no await between reading a bucket and writing it back, so on one
event loop concurrent handshakes can never both spend the same token.
"""
from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

logger = logging.getLogger("bolt.security")

DEFAULT_MAX_KEYS = 65_536
# An IPv6 client usually holds a whole /64 (often more): keyed per address it would have 2**64 buckets.
DEFAULT_IPV6_PREFIX = 64


class BucketTable:
    """Token buckets keyed by (route, client key), least recently used first.

    Memory is bounded two ways. A bucket that has refilled to its burst is indistinguishable from a
    new one, so it is dropped as soon as it reaches the front of the table (idle expiry). And the
    table never holds more than `max_keys` buckets: past that the least recently used is evicted,
    which at worst hands that key a fresh burst.
    """

    def __init__(self, max_keys: int = DEFAULT_MAX_KEYS, clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.max_keys = max_keys
        self._clock = clock
        # key -> [tokens, updated_at, full_at]
        self._buckets: OrderedDict[Hashable, list[float]] = OrderedDict()
        self._warned_full = False

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: Hashable, rate: float, burst: int) -> float:
        """Spend one token of `key`'s bucket: 0.0 when admitted, else the seconds until one is available."""
        now = self._clock()
        buckets = self._buckets
        entry = buckets.get(key)
        if entry is None:
            self._make_room(now)
            tokens = float(burst)
        else:
            tokens = min(float(burst), entry[0] + (now - entry[1]) * rate)
            buckets.move_to_end(key)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / rate
        buckets[key] = [tokens, now, now + (burst - tokens) / rate]
        return wait

    def _make_room(self, now: float) -> None:
        buckets = self._buckets
        # Drop refilled buckets from the old end; a couple per insertion keeps the table drained.
        for _ in range(2):
            if not buckets:
                return
            oldest_key, oldest = next(iter(buckets.items()))
            if oldest[2] > now:
                break
            del buckets[oldest_key]
        if len(buckets) >= self.max_keys:
            if not self._warned_full:
                self._warned_full = True
                logger.warning("rate-limit table is full (%d keys): evicting the least recently used buckets",
                               self.max_keys)
            buckets.popitem(last=False)


class TokenBucket:
    """One bucket, for the inbound messages of a single WebSocket connection."""

    __slots__ = ("rate", "burst", "tokens", "updated_at", "_clock")

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self._clock = clock
        self.updated_at = clock()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = self._clock()
        tokens = min(self.burst, self.tokens + (now - self.updated_at) * self.rate)
        self.updated_at = now
        if tokens >= 1.0:
            self.tokens = tokens - 1.0
            return True
        self.tokens = tokens
        return False


def retry_after_seconds(wait: float) -> int:
    """Whole seconds for the Retry-After header: rounded up, at least 1."""
    return max(1, math.ceil(wait))


def check_ipv6_prefix(prefix: object) -> int:
    """The IPv6 prefix length rate limits key by: an integer from 1 to 128 (128 is per address)."""
    if isinstance(prefix, bool) or not isinstance(prefix, int) or not 1 <= prefix <= 128:
        raise ValueError(f"BOLT_RATE_LIMIT_IPV6_PREFIX must be an integer from 1 to 128, got {prefix!r}")
    return prefix


def address_key(host: str, ipv6_prefix: int = DEFAULT_IPV6_PREFIX) -> str:
    """The rate-limit key of a client address: an IPv4 address itself, an IPv6 address's network of
    `ipv6_prefix` bits ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address as its IPv4 address.

    Anything that is not an IP address (a Unix socket's path, a test client's name) is its own key.
    """
    if ":" not in host:
        return host  # IPv4, or not an address: the fast path of every IPv4 handshake
    try:
        address = ipaddress.IPv6Address(host)
    except ValueError:
        return host
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    if ipv6_prefix == 128:
        return str(address)
    network = ipaddress.IPv6Network((int(address) >> (128 - ipv6_prefix) << (128 - ipv6_prefix), ipv6_prefix))
    return str(network)
