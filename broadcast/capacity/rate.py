"""A channel's capacity, "COUNT/DURATION": at most COUNT units in any window of DURATION."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from broadcast.errors import ConfigurationError
from broadcast.vocabulary import CHANNELS

if TYPE_CHECKING:
    from broadcast.settings import Settings

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# "500/1h", "30/10s", "500/h", "20/0.5s"; spaces around the parts are tolerated.
_PATTERN = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)?\s*([smhd])\s*$", re.IGNORECASE)
_UNLIMITED = {"", "unlimited", "none"}


@dataclass(frozen=True)
class Rate:
    """At most `count` units in any window of `seconds` (a sliding window, not a clock-aligned one).

    Parameters:
      count: Units allowed per window; at least 1.
      seconds: Window length in seconds; greater than 0.
    """

    count: int
    seconds: float

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(
                f"a rate's count must be a whole number >= 1, not {self.count!r}"
            )
        if not self.seconds > 0:
            raise ConfigurationError(
                f"a rate's window must be longer than 0 s, not {self.seconds!r}"
            )

    @classmethod
    def parse(cls, text: str, *, setting: str | None = None) -> Rate:
        """Parse "COUNT/DURATION": units s, m, h or d; the number before the unit is optional.

        Raises:
          ConfigurationError: The text is not a valid rate; the message names `setting` if given.
        """
        where = f"{setting}={text!r}" if setting else repr(text)
        match = _PATTERN.match(text) if isinstance(text, str) else None
        if match is None:
            raise ConfigurationError(
                f"{where} is not a rate: write COUNT/DURATION with a unit of s, m, h or d, "
                "for example 500/1h, 10/1s or 30/10s"
            )
        count, number, unit = int(match[1]), float(match[2] or 1), match[3].lower()
        if count < 1:
            raise ConfigurationError(
                f"{where}: the count must be at least 1 (unset it for no limit)"
            )
        if number <= 0:
            raise ConfigurationError(f"{where}: the duration must be longer than 0")
        return cls(count, number * UNIT_SECONDS[unit])

    @property
    def per_second(self) -> float:
        """The long-run average rate, in units per second."""
        return self.count / self.seconds

    def __str__(self) -> str:
        # The largest unit that divides the window exactly: 3600 s -> "h", 10 s -> "10s".
        for unit in ("d", "h", "m", "s"):
            number = self.seconds / UNIT_SECONDS[unit]
            if number >= 1 and number == int(number):
                shown = "" if number == 1 else str(int(number))
                return f"{self.count}/{shown}{unit}"
        return f"{self.count}/{self.seconds:g}s"


def parse_rate(text: str | None, *, setting: str | None = None) -> Rate | None:
    """Parse a rate setting; None, "" or "unlimited" mean no limit and give None."""
    if text is None or (isinstance(text, str) and text.strip().lower() in _UNLIMITED):
        return None
    return Rate.parse(text, setting=setting)


def channel_rate(settings: Settings, channel: str) -> Rate | None:
    """The configured rate of `channel` ("sms", "email" or "voice"); None means unlimited."""
    if channel not in CHANNELS:
        raise ConfigurationError(
            f"unknown channel {channel!r}; expected one of {', '.join(CHANNELS)}"
        )
    return parse_rate(
        getattr(settings, f"{channel}_rate"), setting=f"BROADCAST_{channel.upper()}_RATE"
    )


def guarded(rate: Rate | None, guard: float) -> Rate | None:
    """The rate a limiter enforces so that the provider, not only the limiter, never sees more
    than COUNT in a window: each grant holds its slot `guard` seconds longer than the window.

    A request reaches the provider some milliseconds after its grant, and that delay varies
    (scheduling, the network). Without a guard, a request delayed more than the one a window
    later could land inside the same window at the provider's end. The guard is capped at 2.5%
    of the window, so it costs at most 2.5% of capacity (0.007% of 500/1h with the 0.25 s default).
    """
    if rate is None or guard <= 0:
        return rate
    return Rate(rate.count, rate.seconds + min(guard, rate.seconds * 0.025))
