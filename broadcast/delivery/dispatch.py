"""How the core hands work to a queue, without knowing which queue system runs it.

A `Chunk` (delivery/chunk.py) names a range of one alert's deliveries on one channel
(`after_id < id <= upto_id`). A message carries only that range: the database, not the
message, says which deliveries in it are still `queued`, so a chunk can be sent again
(redelivery, throttling, recovery) safely.
With a window, an alert's later chunks wait in a feed (delivery/feeds.py) and `queue_next`
queues each as one finishes. `workers/` implements `Dispatcher` with Dramatiq; the core never
imports Dramatiq.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from broadcast.delivery.chunk import QUEUES, Chunk, queue_for
from broadcast.delivery.feeds import Feeds, MemoryFeeds, feed_key

__all__ = [
    "QUEUES",
    "Chunk",
    "Dispatcher",
    "RecordingDispatcher",
    "drop_feed",
    "queue_for",
    "queue_next",
]


class Dispatcher(Protocol):
    """Puts chunk messages on queues.

    `window` is how many chunks of one alert's channel are on the queue at once (the rest wait
    in `feeds` until one finishes: delivery.feeds); 0 queues every chunk at once.
    """

    @property
    def window(self) -> int: ...

    @property
    def feeds(self) -> Feeds: ...

    def enqueue(self, chunks: Sequence[Chunk], *, delay: float = 0.0) -> None:
        """Queue one message per chunk, to be run after `delay` seconds."""
        ...

    def pending(self, queue: str) -> int | None:
        """Messages the broker still holds for `queue` (waiting, delayed or being worked on);
        None when the broker cannot tell."""
        ...

    def worker_beats(self) -> dict[str, float] | None:
        """Each registered worker's last heartbeat (epoch seconds) by worker id (the id its
        claims carry); None when there are no heartbeats to read (no shared broker)."""
        ...

    def forget_workers(self, worker_ids: set[str]) -> None:
        """Drop stopped workers from the registry once their work has been queued again."""
        ...


@dataclass
class RecordingDispatcher:
    """Keeps chunks in a list: for tests, dry runs and benchmarks of planning alone."""

    chunks: list[tuple[Chunk, float]] = field(default_factory=list)
    # Every chunk at once unless a test asks for a window.
    window: int = 0
    feeds: Feeds = field(default_factory=MemoryFeeds)

    def enqueue(self, chunks: Sequence[Chunk], *, delay: float = 0.0) -> None:
        self.chunks.extend((chunk, delay) for chunk in chunks)

    def pending(self, queue: str) -> int | None:
        return None

    def worker_beats(self) -> dict[str, float] | None:
        return None

    def forget_workers(self, worker_ids: set[str]) -> None:
        return None

    def take(self) -> list[Chunk]:
        taken, self.chunks = [c for c, _ in self.chunks], []
        return taken


def queue_next(dispatcher: Dispatcher, chunk: Chunk) -> Chunk | None:
    """After `chunk` finished (sent, ended or given up): queue the next chunk of its feed."""
    following = dispatcher.feeds.take(feed_key(chunk.alert_id, chunk.channel))
    if following is not None:
        dispatcher.enqueue([following])
    return following


def drop_feed(dispatcher: Dispatcher, chunk: Chunk) -> None:
    """The alert is over (cancelled, expired, gone): its feed queues nothing more."""
    dispatcher.feeds.stop(feed_key(chunk.alert_id, chunk.channel))
