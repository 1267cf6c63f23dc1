"""Rate limits for the web app (per client IP, per contact point, per code) and a replay guard
for Twilio webhooks. Both use Redis when BROADCAST_REDIS_URL is set (several web processes share
the counts), else process memory."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from broadcast.capacity import CapacityLimiter, MemoryLimiter, RedisLimiter, parse_rate
from broadcast.settings import Settings

PREFIX = "broadcast:web:"


def limiter(settings: Settings, text: str, name: str) -> CapacityLimiter:
    rate = parse_rate(text, setting=name)
    if settings.redis_url:
        import redis

        client = redis.Redis.from_url(settings.redis_url)
        return RedisLimiter(client, rate, prefix=f"{PREFIX}{name}:")
    return MemoryLimiter(rate)


def contact_key(value: str, secret: bytes) -> str:
    """A contact point as a short keyed hash, so limiter keys hold no personal data."""
    return hashlib.blake2b(
        value.strip().lower().encode(), key=secret[:64], digest_size=16
    ).hexdigest()


@dataclass
class RateLimits:
    """`per_ip` guards every form post, `per_contact` sign-ups and resends per address, and
    `per_code` code entry per pending sign-up."""

    per_ip: CapacityLimiter
    per_contact: CapacityLimiter
    per_code: CapacityLimiter

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        return cls(
            limiter(settings, settings.web_ip_rate, "ip"),
            limiter(settings, settings.web_contact_rate, "contact"),
            limiter(settings, settings.web_code_rate, "code"),
        )


class ReplayGuard:
    """Remembers signed webhook requests for a day, so a replay is refused.

    `claim` remembers first and atomically (Redis SET NX, or one lock in this process): of any
    number of copies arriving at once exactly one is handled. A request whose handling failed
    is `release`d, so Twilio's retry of it is still accepted.
    """

    TTL = 24 * 3600

    def __init__(self, redis_url: str | None = None, prefix: str = "replay:") -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._prefix = PREFIX + prefix
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url)

    @classmethod
    def from_settings(cls, settings: Settings, prefix: str = "replay:") -> ReplayGuard:
        return cls(settings.redis_url, prefix)

    def claim(self, fingerprint: str, ttl: float | None = None) -> bool:
        """True for the first caller with this fingerprint (within `ttl` seconds), else False."""
        ttl = ttl or self.TTL
        if self._redis is not None:
            return bool(self._redis.set(self._prefix + fingerprint, 1, nx=True, ex=int(ttl)))
        now = time.monotonic()
        with self._lock:
            expires = self._seen.get(fingerprint)
            if expires is not None and expires > now:
                return False
            if len(self._seen) > 100_000:  # drop expired entries now and then, not per request
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            self._seen[fingerprint] = now + ttl
            return True

    def release(self, fingerprint: str) -> None:
        """Forget a claim whose handling failed, so the sender's retry is accepted."""
        if self._redis is not None:
            self._redis.delete(self._prefix + fingerprint)
            return
        with self._lock:
            self._seen.pop(fingerprint, None)
