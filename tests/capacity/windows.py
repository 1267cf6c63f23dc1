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


def utilisation(grants: list[tuple[float, int]], count: int, seconds: float, windows: int) -> float:
    """Share of capacity used over `windows` + 1 windows, counted from the first grant.

    With a backlog, an exact sliding log grants a batch as each window's first units expire, so
    batch k is due at first + k * seconds. Counting what was granted up to 5% of a window after
    batch `windows` was due measures the rate kept: a limiter that fell behind by more than that
    (or left capacity unused) shows up as a share below 1.
    """
    first = min(at for at, _ in grants)
    used = units_between(grants, first, first + (windows + 0.05) * seconds)
    return used / ((windows + 1) * count)
