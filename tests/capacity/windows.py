"""Checks on recorded grants: (time, units) pairs, independent of the limiter under test."""

from __future__ import annotations


def max_in_window(grants: list[tuple[float, int]], seconds: float) -> int:
    """Most units granted in any half-open window (t - seconds, t] of the recorded grants."""
    grants = sorted(grants)
    most = total = left = 0
    for at, units in grants:
        total += units
        while grants[left][0] <= at - seconds:
            total -= grants[left][1]
            left += 1
        most = max(most, total)
    return most


def units_between(grants: list[tuple[float, int]], start: float, end: float) -> int:
    """Units granted in [start, end)."""
    return sum(units for at, units in grants if start <= at < end)
