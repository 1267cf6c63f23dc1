"""Caps on confirmation SMS against SMS pumping (artificially inflated traffic).

A pumping script signs up numbers it does not own, in ranges where someone is paid per message
delivered, so each code is money out of the force's account. Per-IP and per-number limits do
not stop it (a new number and address every time); these caps do: at most
`confirmation_sms_rate` codes an hour in all and `confirmation_sms_prefix_rate` an hour per
number prefix (the first `confirmation_prefix_digits` digits after "+": "447911" of
+447911123456). Counts live in Redis when BROADCAST_REDIS_URL is set, so every web process
shares them, else in this process. A refusal is recorded as an alarm for an hour; /ops and
/metrics show it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import cast

from broadcast.capacity import CapacityLimiter
from broadcast.settings import Settings
from broadcast.web.limits import PREFIX, limiter

logger = logging.getLogger(__name__)
ALARM_SECONDS = 3600
SCOPES = ("global", "prefix")


@dataclass(frozen=True)
class CapAlarm:
    """A cap refused `refused` codes in the last hour, the latest at `last` (epoch seconds)."""

    scope: str
    refused: int
    last: float


class SmsCaps:
    def __init__(self, settings: Settings) -> None:
        self.digits = settings.confirmation_prefix_digits
        self._global: CapacityLimiter = limiter(
            settings, settings.confirmation_sms_rate, "sms-cap-global"
        )
        self._prefix: CapacityLimiter = limiter(
            settings, settings.confirmation_sms_prefix_rate, "sms-cap-prefix"
        )
        self._lock = threading.Lock()
        self._alarms: dict[str, list[float]] = {}
        self._redis = None
        if settings.redis_url:
            import redis

            self._redis = redis.Redis.from_url(settings.redis_url)

    def prefix_of(self, number: str) -> str:
        return number.lstrip("+")[: self.digits]

    def allow(self, number: str) -> bool:
        """Charge one confirmation SMS to `number`'s prefix and to the total; False (and an
        alarm) when either cap is reached, and then nothing is sent."""
        if self._prefix.try_acquire(self.prefix_of(number)):
            self._alarm("prefix")
            return False
        if self._global.try_acquire("all"):
            self._alarm("global")
            return False
        return True

    def _alarm(self, scope: str) -> None:
        # The scope only: a prefix is part of a phone number, and logs hold none.
        logger.warning("confirmation SMS not sent: the %s cap is reached (SMS pumping?)", scope)
        now = time.time()
        if self._redis is not None:
            key = f"{PREFIX}sms-cap-alarm:{scope}"
            with self._redis.pipeline() as pipe:
                pipe.zadd(key, {f"{now}:{time.monotonic_ns()}": now})
                pipe.zremrangebyscore(key, 0, now - ALARM_SECONDS)
                pipe.expire(key, ALARM_SECONDS)
                pipe.execute()
            return
        with self._lock:
            times = [t for t in self._alarms.get(scope, []) if t > now - ALARM_SECONDS]
            self._alarms[scope] = [*times, now]

    def alarms(self) -> list[CapAlarm]:
        """The caps that refused a code in the last hour."""
        now = time.time()
        found = []
        for scope in SCOPES:
            if self._redis is not None:
                key = f"{PREFIX}sms-cap-alarm:{scope}"
                scored = self._redis.zrangebyscore(
                    key, now - ALARM_SECONDS, "+inf", withscores=True
                )
                scores = [s for _, s in cast(list[tuple[bytes, float]], scored)]
            else:
                with self._lock:
                    scores = [t for t in self._alarms.get(scope, []) if t > now - ALARM_SECONDS]
            if scores:
                found.append(CapAlarm(scope, len(scores), max(scores)))
        return found
