"""The two levels of capacity a delivery takes: its force's own, then the platform's.

A force whose profile sets a channel's rate (`voice_rate`, `sms_rate`, `email_rate`) or voice
lines (`voice_concurrency`) has a limit of its own, keyed `<channel>@<force code>` in the same
limiters (so exact across every worker on every host). The platform's limits (the Twilio
account's messages per second, the SMTP relay's rate, BROADCAST_*_RATE) are keyed by channel
alone and shared by every force. A delivery takes both, its force's first: when the platform
then refuses, the unit the force gave is spent (a sliding window cannot give one back), which
costs only that force and only while the platform is the narrower limit. A force that sets none
has only the platform's level, which is exactly a single-force install (docs/tenancy.md).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from broadcast.capacity import CapacityLimiter, ConcurrencyLimiter
from broadcast.capacity.rate import Rate
from broadcast.channels import OutboundMessage
from broadcast.runtime import Runtime
from broadcast.vocabulary import ChannelName

# Concurrency leases free only when a call ends: look again after about this long.
LEASE_POLL = 1.0
LEASE_PREFIX = "delivery-"


def lease_id(delivery_id: int) -> str:
    """The voice line lease a call holds until its status callback says it ended."""
    return f"{LEASE_PREFIX}{delivery_id}"


@dataclass(frozen=True, slots=True)
class Level:
    """One limit: a limiter (rate) or a set of voice lines, and the key it counts under."""

    key: str
    limiter: CapacityLimiter | None = None
    lines: ConcurrencyLimiter | None = None


def rate_levels(rt: Runtime, channel: str) -> list[Level]:
    """The rate limits of `channel` for `rt`'s force: its own (if any), then the platform's."""
    levels = []
    own = rt.force_limiter(channel)
    if own is not None and own.rate is not None:
        levels.append(Level(rt.force_key(channel), limiter=own))
    platform = rt.limiter(channel)
    if platform.rate is not None:
        levels.append(Level(channel, limiter=platform))
    return levels


def line_levels(rt: Runtime) -> list[Level]:
    """The voice line limits for `rt`'s force: its own (if any), then the platform's."""
    levels = []
    own = rt.force_concurrency()
    if own is not None and own.limit is not None:
        levels.append(Level(rt.force_key(ChannelName.VOICE), lines=own))
    platform = rt.concurrency()
    if platform.limit is not None:
        levels.append(Level(ChannelName.VOICE, lines=platform))
    return levels


def release_lines(rt: Runtime, lease: str) -> bool:
    """Give a call's line back at every level (its status callback said it ended)."""
    released = False
    for level in line_levels(rt):
        assert level.lines is not None
        released = level.lines.release(level.key, lease) or released
    return released


class Capacity:
    """What a delivery on `channel` takes: voice lines (with a line limit) and rate, at the
    force's level and the platform's."""

    def __init__(self, rt: Runtime, channel: str) -> None:
        self.rt, self.channel = rt, channel
        self.rates = rate_levels(rt, channel)
        self.lines = line_levels(rt) if channel == ChannelName.VOICE else []

    @property
    def unlimited(self) -> bool:
        return not self.rates and not self.lines

    @property
    def narrowest(self) -> Rate | None:
        """The smallest rate (fewest units a second) of the levels; None when unlimited."""
        rates = [level.limiter.rate for level in self.rates if level.limiter and level.limiter.rate]
        return min(rates, key=lambda r: r.count / r.seconds, default=None)

    def take(
        self,
        message: OutboundMessage,
        *,
        max_wait: float = 0.0,
        lease: str | None = None,
        lease_seconds: float | None = None,
    ) -> tuple[bool, float | None]:
        """(granted, seconds until capacity frees when not); waits up to `max_wait` for each
        rate. A line is leased as `lease` (default: the delivery's own `lease_id`)."""
        if self.unlimited:
            return True, None
        lease = lease or lease_id(message.delivery_id)
        seconds = lease_seconds or self.rt.settings.voice_lease_seconds
        taken: list[Level] = []
        for level in self.lines:
            assert level.lines is not None
            if level.lines.acquire(level.key, lease_seconds=seconds, lease_id=lease) is None:
                self._release(taken, lease)
                return False, LEASE_POLL * random.uniform(1, 1.5)
            taken.append(level)
        for level in self.rates:
            assert level.limiter is not None
            attempt = level.limiter.attempt(level.key, message.units)
            if not attempt.granted and max_wait > 0:
                attempt = level.limiter.wait_for(level.key, message.units, max_wait=max_wait)
            if not attempt.granted:
                self._release(taken, lease)
                # A little jitter so chunks told the same moment do not all come back together.
                return False, attempt.wait + random.uniform(0, 0.05)
        return True, None

    def give_back(self, message: OutboundMessage, lease: str | None = None) -> None:
        """Free the voice lines of a message that will not be sent now (rate grants stay used)."""
        self._release(self.lines, lease or lease_id(message.delivery_id))

    @staticmethod
    def _release(levels: list[Level], lease: str) -> None:
        for level in levels:
            assert level.lines is not None
            level.lines.release(level.key, lease)
