"""The exact sliding-log limiter shared by every process and host using one Redis."""

from __future__ import annotations

import redis

from broadcast.capacity.limiter import Attempt, CapacityLimiter
from broadcast.capacity.rate import Rate

DEFAULT_PREFIX = "broadcast:capacity:"

# One sorted-set member per unit granted, scored by the grant time in microseconds of the Redis
# server's clock (TIME), so every host shares one clock. The member is a sequence number from
# a counter key, which keeps members unique even when two grants share a microsecond.
# Units in the window = ZCARD after dropping members older than the window; a refusal reads the
# score of the member whose expiry makes room, which is the exact wait. Both keys expire one
# window (plus a second) after the last grant, so an idle channel leaves nothing behind.
# Numbers: Lua's doubles hold microsecond timestamps exactly (< 2^53); string.format("%d")
# avoids Lua's default "%.14g", which would round them.
_ATTEMPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local count = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local units = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local used = redis.call('ZCARD', KEYS[1])
local excess = used + units - count
if excess > 0 then
  local freeing = redis.call('ZRANGE', KEYS[1], excess - 1, excess - 1, 'WITHSCORES')
  return {0, tonumber(freeing[2]) + window - now, now}
end
local last = redis.call('INCRBY', KEYS[2], units)
local args = {}
for i = 1, units do
  args[#args + 1] = string.format('%d', now)
  args[#args + 1] = last - units + i
end
redis.call('ZADD', KEYS[1], unpack(args))
local ttl = math.ceil(window / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, 0, now}
"""

_USAGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now - tonumber(ARGV[1])), '+inf')
"""

# The window's grant times in microseconds before now (<= 0), oldest first.
_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local low = string.format('(%d', now - tonumber(ARGV[1]))
local found = redis.call('ZRANGEBYSCORE', KEYS[1], low, '+inf', 'WITHSCORES')
local out = {}
for i = 2, #found, 2 do out[#out + 1] = string.format('%d', tonumber(found[i]) - now) end
return out
"""

_TIME = "local t = redis.call('TIME') return t[1] * 1000000 + t[2]"


class RedisLimiter(CapacityLimiter):
    """Exact sliding-window limiter in Redis: one atomic Lua script per attempt.

    Parameters:
      client: A Redis client; share one per process (it holds the connection pool).
      rate: The capacity, or None for no limit.
      prefix: Namespace of the keys; the key given to each call (the channel) follows it.
      jitter: See CapacityLimiter.

    Examples:

      >>> limiter = RedisLimiter(redis.Redis.from_url(url), Rate.parse("500/1h"))
      >>> if limiter.acquire("voice", max_wait=5): place_call()
    """

    def __init__(
        self,
        client: redis.Redis,
        rate: Rate | None,
        *,
        prefix: str = DEFAULT_PREFIX,
        jitter: float = 0.005,
    ) -> None:
        super().__init__(rate, jitter=jitter)
        self.client = client
        self.prefix = prefix
        self._attempt_script = client.register_script(_ATTEMPT)
        self._usage_script = client.register_script(_USAGE)
        self._time_script = client.register_script(_TIME)
        self._window_script = client.register_script(_WINDOW)

    def keys(self, key: str) -> tuple[str, str]:
        """The Redis keys of `key`'s log and counter; the braces keep both in one Cluster slot."""
        return f"{self.prefix}{{{key}}}:log", f"{self.prefix}{{{key}}}:seq"

    def _attempt(self, key: str, units: int, rate: Rate) -> Attempt:
        granted, wait_us, now_us = self._attempt_script(
            keys=self.keys(key), args=[rate.count, _micros(rate.seconds), units]
        )
        return Attempt(bool(granted), int(wait_us) / 1e6, int(now_us) / 1e6)

    def _usage(self, key: str, rate: Rate) -> int:
        return int(self._usage_script(keys=self.keys(key)[:1], args=[_micros(rate.seconds)]))

    def _window(self, key: str, rate: Rate) -> list[float]:
        found = self._window_script(keys=self.keys(key)[:1], args=[_micros(rate.seconds)])
        return [int(us) / 1e6 for us in found]

    def _now(self) -> float:
        return int(self._time_script()) / 1e6


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)
