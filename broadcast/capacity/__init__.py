"""Channel capacity: exact sliding-window rate limits, concurrency leases and ETAs.

Pick the Redis limiters when workers share a Redis, the memory twins for the embedded default.
See docs/capacity.md for the design and the measured figures.
"""

from __future__ import annotations

from broadcast.capacity.concurrency import (
    ConcurrencyLimiter,
    MemoryConcurrencyLimiter,
    RedisConcurrencyLimiter,
)
from broadcast.capacity.eta import (
    UNIT_NAMES,
    Forecast,
    Work,
    describe,
    estimate,
    finish_at,
    forecast,
    human_duration,
)
from broadcast.capacity.limiter import Attempt, CapacityLimiter, ExceedsCapacity
from broadcast.capacity.memory_limiter import MemoryLimiter
from broadcast.capacity.rate import Rate, channel_rate, guarded, parse_rate
from broadcast.capacity.redis_limiter import RedisLimiter
from broadcast.vocabulary import CHANNELS

__all__ = [
    "CHANNELS",
    "UNIT_NAMES",
    "Attempt",
    "CapacityLimiter",
    "ConcurrencyLimiter",
    "ExceedsCapacity",
    "Forecast",
    "MemoryConcurrencyLimiter",
    "MemoryLimiter",
    "Rate",
    "RedisConcurrencyLimiter",
    "RedisLimiter",
    "Work",
    "channel_rate",
    "describe",
    "estimate",
    "finish_at",
    "forecast",
    "guarded",
    "human_duration",
    "parse_rate",
]
