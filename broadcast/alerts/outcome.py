"""How an alert ended, in words: "done" only when everyone it was for was reached.

An alert whose deliveries ended expired, failed, undeliverable or in doubt reads as incomplete
("done, 103 expired") everywhere an operator looks: `alert list`, `alert status`, /ops and
/metrics. Suppressed (the person opted out) and cancelled deliveries were meant not to go.
"""

from __future__ import annotations

from collections.abc import Mapping

from broadcast.vocabulary import REACHED_STATES, UNREACHED_STATES, AlertState


def unreached(channels: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
    """{state: deliveries} that ended without reaching anyone, over every channel, biggest first."""
    totals = {s: sum(states.get(s, 0) for states in channels.values()) for s in UNREACHED_STATES}
    return {s: n for s, n in sorted(totals.items(), key=lambda kv: -kv[1]) if n}


def reached(states: Mapping[str, int]) -> int:
    """Deliveries of one channel handed to the provider (sent) or confirmed delivered."""
    return sum(states.get(s, 0) for s in REACHED_STATES)


def status_label(status: str, channels: Mapping[str, Mapping[str, int]]) -> str:
    """ "done", "done, 103 expired", "done, 2 failed, 1 undeliverable"; a sending alert is
    "sending" whatever it has lost so far (it is not over yet)."""
    if status == AlertState.SENDING:
        return str(status)
    lost = unreached(channels)
    return ", ".join([str(status), *(f"{n:,} {s}" for s, n in lost.items())])
