"""Most units in progress at once (BROADCAST_VOICE_CONCURRENCY): slots held by expiring leases.

A call holds a line from the moment it is placed until its status callback says it completed.
Callbacks can be lost, so every slot is a lease with a timeout: an unreleased lease frees
itself when the timeout passes instead of shrinking the channel for good.
"""

from __future__ import annotations

import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable

import redis

from broadcast.errors import ConfigurationError

DEFAULT_PREFIX = "broadcast:concurrency:"

# A sorted set per key: member = lease id, score = expiry in microseconds of Redis TIME.
# ARGV: limit, lease length (us), lease id. Expired leases are dropped before counting.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
return 1
"""

# Extend a lease that is still held (a long call); 0 when it already expired or was released.
_EXTEND = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score or tonumber(score) <= now then return 0 end
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[1])), ARGV[2])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(last[2]) - now) / 1000) + 1000)
return 1
"""

# Release: drop expired leases first so releasing one that already expired reports False.
_RELEASE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
return redis.call('ZREM', KEYS[1], ARGV[1])
"""

_IN_USE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
"""


class ConcurrencyLimiter(ABC):
    """At most `limit` leases held at once per key; None means no limit.

    Parameters:
      limit: Most slots in use at once, or None for no limit.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigurationError(
                f"a concurrency limit must be a whole number >= 1, not {limit!r}"
            )
        self.limit = limit

    def acquire(self, key: str, *, lease_seconds: float, lease_id: str | None = None) -> str | None:
        """Take a slot for at most `lease_seconds`; the lease id to release it, or None if full.

        Acquiring again with a lease id already held succeeds without taking a second slot, so
        a retried job does not hold two lines.
        """
        if lease_seconds <= 0:
            raise ConfigurationError(f"a lease must last longer than 0 s, not {lease_seconds!r}")
        lease_id = lease_id or uuid.uuid4().hex
        if self.limit is None:
            return lease_id
        return lease_id if self._acquire(key, lease_id, lease_seconds, self.limit) else None

    @abstractmethod
    def _acquire(self, key: str, lease_id: str, lease_seconds: float, limit: int) -> bool: ...

    @abstractmethod
    def release(self, key: str, lease_id: str) -> bool:
        """Free the lease's slot; False when it was not held (already released or expired)."""

    @abstractmethod
    def extend(self, key: str, lease_id: str, *, lease_seconds: float) -> bool:
        """Make a held lease last `lease_seconds` from now; False when it is no longer held."""

    @abstractmethod
    def in_use(self, key: str) -> int:
        """Slots held now (expired leases not counted)."""


class RedisConcurrencyLimiter(ConcurrencyLimiter):
    """Lease slots shared by every process and host using one Redis; Redis TIME is the clock."""

    def __init__(self, client: redis.Redis, limit: int | None, *, prefix: str = DEFAULT_PREFIX):
        super().__init__(limit)
        self.client = client
        self.prefix = prefix
        self._acquire_script = client.register_script(_ACQUIRE)
        self._extend_script = client.register_script(_EXTEND)
        self._release_script = client.register_script(_RELEASE)
        self._in_use_script = client.register_script(_IN_USE)

    def _key(self, key: str) -> str:
        return f"{self.prefix}{{{key}}}:leases"

    def _acquire(self, key: str, lease_id: str, lease_seconds: float, limit: int) -> bool:
        args: list[int | str] = [limit, _micros(lease_seconds), lease_id]
        return bool(self._acquire_script(keys=[self._key(key)], args=args))

    def release(self, key: str, lease_id: str) -> bool:
        return bool(self._release_script(keys=[self._key(key)], args=[lease_id]))

    def extend(self, key: str, lease_id: str, *, lease_seconds: float) -> bool:
        args: list[int | str] = [_micros(lease_seconds), lease_id]
        return bool(self._extend_script(keys=[self._key(key)], args=args))

    def in_use(self, key: str) -> int:
        return int(self._in_use_script(keys=[self._key(key)]))


class MemoryConcurrencyLimiter(ConcurrencyLimiter):
    """The in-process twin of RedisConcurrencyLimiter, for the embedded default."""

    def __init__(self, limit: int | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(limit)
        self._clock = clock
        self._lock = threading.Lock()
        self._leases: dict[str, dict[str, float]] = {}  # key -> lease id -> expiry

    def _live(self, key: str) -> dict[str, float]:
        now = self._clock()
        leases = self._leases.setdefault(key, {})
        for lease_id in [lid for lid, expiry in leases.items() if expiry <= now]:
            del leases[lease_id]
        return leases

    def _acquire(self, key: str, lease_id: str, lease_seconds: float, limit: int) -> bool:
        with self._lock:
            leases = self._live(key)
            if lease_id not in leases and len(leases) >= limit:
                return False
            leases.setdefault(lease_id, self._clock() + lease_seconds)
            return True

    def release(self, key: str, lease_id: str) -> bool:
        with self._lock:
            return self._live(key).pop(lease_id, None) is not None

    def extend(self, key: str, lease_id: str, *, lease_seconds: float) -> bool:
        with self._lock:
            leases = self._live(key)
            if lease_id not in leases:
                return False
            leases[lease_id] = self._clock() + lease_seconds
            return True

    def in_use(self, key: str) -> int:
        with self._lock:
            return len(self._live(key))


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)
