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


def _limiter(settings: Settings, text: str, name: str) -> CapacityLimiter:
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
            _limiter(settings, settings.web_ip_rate, "ip"),
            _limiter(settings, settings.web_contact_rate, "contact"),
            _limiter(settings, settings.web_code_rate, "code"),
        )


class ReplayGuard:
    """Remembers signed webhook requests already handled, for a day, so a replay is refused."""

    TTL = 24 * 3600

    def __init__(self, redis_url: str | None = None) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}
        self._redis = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url)

    @classmethod
    def from_settings(cls, settings: Settings) -> ReplayGuard:
        return cls(settings.redis_url)

    def seen(self, fingerprint: str) -> bool:
        if self._redis is not None:
            return bool(self._redis.exists(PREFIX + "replay:" + fingerprint))
        with self._lock:
            expires = self._seen.get(fingerprint)
            return expires is not None and expires > time.monotonic()

    def remember(self, fingerprint: str) -> None:
        if self._redis is not None:
            self._redis.set(PREFIX + "replay:" + fingerprint, 1, ex=self.TTL)
            return
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 100_000:  # drop expired entries now and then, not per request
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            self._seen[fingerprint] = now + self.TTL
