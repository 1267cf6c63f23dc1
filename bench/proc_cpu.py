"""CPU seconds of processes and of the machine, from /proc (Linux), for the benchmarks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; the fields after it are fixed.
    return text[text.rindex(")") + 2 :].split()


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of one process (0.0 when it is gone)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK if fields else 0.0


def group_pids(pgid: int) -> list[int]:
    """Every live process in a process group (a worker group started with its own session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def cpu_sum(pids: Iterable[int]) -> dict[int, float]:
    return {pid: cpu_of(pid) for pid in pids}


def used_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU used between two snapshots; a process absent before counts from its start."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (not idle, not waiting on I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / TICK
