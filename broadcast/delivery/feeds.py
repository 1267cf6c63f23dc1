"""Fairness between alerts (and so between forces): each alert keeps only a few chunks queued.

Without this, an alert's every chunk goes on its channel's queue at once, and the queue is
first in, first out: force B's 5,000-person alert waits behind all 2,000 chunks of force A's
1,000,000-person one. With a window of W, `enqueue_alert` queues an alert's first W chunks per
channel and keeps the rest here as a *feed*: the next range of `size` ids after the last one
queued. When a worker finishes a chunk it takes the next range from that chunk's feed and
queues it, behind whatever other alerts queued meanwhile. So every alert that is sending has
W chunks in the queue at any moment, and workers take turns between them: a new alert's first
chunk waits behind at most W of each other alert's, never behind their whole backlog.

Taking from a feed is atomic (a Redis script, or a lock in one process), so a chunk finished
twice (a redelivery) moves its feed on once per finish, never queuing the same range twice
from one finish; a range queued twice anyway is harmless, as claims make copies send nothing.
The feed lives beside the queue it feeds (in the broker's Redis): if Redis loses the queue it
loses the feed too, and the sweeper queues the alert again from the database, starting a new
feed (docs/delivery.md, docs/tenancy.md).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Protocol

import redis

from broadcast.delivery.chunk import Chunk

# A feed is dropped this long after it was started, whatever happens (alerts expire sooner).
FEED_LIFETIME_SECONDS = 8 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Feed:
    """One alert's channel: ranges of `size` ids up to `high`, the next one starting after
    `after`."""

    alert_id: int
    channel: str
    after: int
    high: int
    size: int
    urgent: bool = False
    force_id: int | None = None

    @property
    def key(self) -> str:
        return feed_key(self.alert_id, self.channel)


def feed_key(alert_id: int, channel: str) -> str:
    return f"{alert_id}:{channel}"


def next_chunk(feed: Feed) -> Chunk | None:
    """The range after `feed.after`, or None when the feed has reached its end."""
    if feed.after >= feed.high:
        return None
    upto = min(feed.after + feed.size, feed.high)
    return Chunk(feed.alert_id, feed.channel, feed.after, upto, feed.urgent, feed.force_id)


class Feeds(Protocol):
    """Where each alert's not-yet-queued chunks wait."""

    def start(self, feed: Feed) -> None:
        """Begin (or begin again) the feed under its key, replacing any earlier one."""
        ...

    def take(self, key: str) -> Chunk | None:
        """The feed's next chunk, moving it on; None when the feed is done or unknown."""
        ...

    def stop(self, key: str) -> None:
        """Forget the feed: nothing more of it is queued."""
        ...


class MemoryFeeds:
    """Feeds for one process (the embedded worker, tests)."""

    def __init__(self) -> None:
        self._feeds: dict[str, Feed] = {}
        self._lock = threading.Lock()

    def start(self, feed: Feed) -> None:
        with self._lock:
            self._feeds[feed.key] = feed

    def stop(self, key: str) -> None:
        with self._lock:
            self._feeds.pop(key, None)

    def take(self, key: str) -> Chunk | None:
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                return None
            chunk = next_chunk(feed)
            if chunk is None:
                del self._feeds[key]
                return None
            self._feeds[key] = replace(feed, after=chunk.upto_id)
            return chunk


# KEYS[1]: the feed's hash. Moves `after` on by `size` unless it has reached `high`; returns
# the range's start and every field needed to build the chunk, or nil (feed done or unknown).
_TAKE = """
local fields = redis.call('HMGET', KEYS[1], 'after', 'high', 'size', 'urgent', 'force')
if not fields[1] then return nil end
local after, high = tonumber(fields[1]), tonumber(fields[2])
if after >= high then redis.call('DEL', KEYS[1]) return nil end
redis.call('HSET', KEYS[1], 'after', math.min(after + tonumber(fields[3]), high))
return {fields[1], fields[2], fields[3], fields[4], fields[5]}
"""


class RedisFeeds:
    """Feeds shared by every worker on every host, in the broker's Redis."""

    def __init__(self, client: redis.Redis, prefix: str = "broadcast:feed:") -> None:
        self._client = client
        self._prefix = prefix
        self._take = client.register_script(_TAKE)

    def start(self, feed: Feed) -> None:
        key = self._prefix + feed.key
        with self._client.pipeline() as pipe:
            pipe.delete(key)
            pipe.hset(
                key,
                mapping={
                    "after": feed.after,
                    "high": feed.high,
                    "size": feed.size,
                    "urgent": int(feed.urgent),
                    "force": "" if feed.force_id is None else feed.force_id,
                },
            )
            pipe.expire(key, FEED_LIFETIME_SECONDS)
            pipe.execute()

    def stop(self, key: str) -> None:
        self._client.delete(self._prefix + key)

    def take(self, key: str) -> Chunk | None:
        reply = self._take(keys=[self._prefix + key])
        if reply is None:
            return None
        after, high, size, urgent, force = (
            part.decode() if isinstance(part, bytes) else str(part) for part in reply
        )
        alert_id, channel = key.split(":", 1)
        feed = Feed(
            int(alert_id),
            channel,
            int(after),
            int(high),
            int(size),
            urgent == "1",
            int(force) if force else None,
        )
        return next_chunk(feed)
