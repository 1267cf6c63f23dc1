"""The broker seen from outside: queue figures, workers alive, dead letters.

The database says what happened to every delivery; the broker (behind the `QueueMonitor`
protocol, implemented in `workers/monitor.py`) says what is queued, delayed, running or
dead-lettered and which workers are alive. This module never imports Dramatiq. The figures for
the screens are in `broadcast.ops.figures`; failures, requeue and purge in
`broadcast.ops.failures`. docs/operations.md
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from broadcast.delivery.dispatch import Chunk


@dataclass(frozen=True)
class QueueFigures:
    """Messages of one queue: waiting, delayed (retries, capacity waits), taken by a worker
    (running or prefetched) and dead-lettered."""

    queue: str
    ready: int
    delayed: int
    in_progress: int
    dead: int


@dataclass(frozen=True)
class WorkerSeen:
    id: str
    seen_ago: float  # seconds since its last heartbeat
    queues: tuple[str, ...]
    pid: int | None = None
    host: str | None = None
    threads: int | None = None


@dataclass(frozen=True)
class DeadLetter:
    """A message the broker gave up on; `chunk` when it was a delivery chunk."""

    queue: str
    message_id: str
    actor: str
    chunk: Chunk | None
    dead_at: datetime | None
    reason: str


class QueueMonitor(Protocol):
    """The broker seen from outside (Redis layout or stub broker)."""

    def queues(self) -> list[QueueFigures]: ...

    def workers(self) -> list[WorkerSeen] | None:
        """Workers alive now; None when the broker cannot tell."""
        ...

    def dead_letters(self, limit: int = 10_000) -> list[DeadLetter]: ...

    def remove_dead_letters(self, letters: Sequence[DeadLetter]) -> int: ...
