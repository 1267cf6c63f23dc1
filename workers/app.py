"""The actors, bound to one broker. Actors are thin: they take a chunk (ids only), call one core
function, and turn "come back later" (throttled, transient) into a delayed message of their own
rather than a Dramatiq retry, because a retry counts against max_retries (docs/delivery.md)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import dramatiq
from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker

from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import Chunk, drop_feed, queue_for, queue_next
from broadcast.delivery.feeds import Feeds, MemoryFeeds, RedisFeeds
from broadcast.delivery.recovery import give_up_chunk
from broadcast.forces.lookup import force_of_alert
from broadcast.runtime import Runtime
from broadcast.vocabulary import CHANNELS
from workers.broker import forget_workers, pending, worker_beats

logger = logging.getLogger(__name__)

URGENT_PRIORITY, ROUTINE_PRIORITY = 0, 10  # Dramatiq runs lower numbers first
# Real errors (database down, a bug) are retried by Dramatiq a few times, then the chunk's
# deliveries end `failed` with the reason (never stuck in `sending`).
MAX_RETRIES = 5
TIME_LIMIT_MS = 30 * 60 * 1000


class DramatiqDispatcher:
    """`broadcast.delivery.dispatch.Dispatcher` on Dramatiq: one message per chunk."""

    def __init__(self, app: WorkerApp) -> None:
        self.app = app
        broker = app.broker
        self.feeds: Feeds = (
            RedisFeeds(broker.client, f"{broker.namespace}:feed:")
            if isinstance(broker, RedisBroker)
            else MemoryFeeds()
        )

    @property
    def window(self) -> int:
        return self.app.runtime().settings.dispatch_window

    def enqueue(self, chunks: Sequence[Chunk], *, delay: float = 0.0) -> None:
        for chunk in chunks:
            actor = self.app.deliver[chunk.queue]
            actor.send_with_options(
                args=chunk.as_args(), delay=int(delay * 1000) if delay > 0 else None
            )

    def pending(self, queue: str) -> int | None:
        return pending(self.app.broker, queue)

    def worker_beats(self) -> dict[str, float] | None:
        return worker_beats(self.app.broker)

    def forget_workers(self, worker_ids: set[str]) -> None:
        forget_workers(self.app.broker, worker_ids)


class WorkerApp:
    """Every actor on one broker, with the runtime they use (built lazily per process)."""

    def __init__(self, broker: Broker, runtime: Callable[[], Runtime]) -> None:
        self.broker = broker
        self.runtime = runtime
        self.dispatcher = DramatiqDispatcher(self)
        self.deliver: dict[str, dramatiq.Actor[..., None]] = {}
        # dramatiq.actor(...)(fn): the form its type hints know for an actor with options.
        self.exhausted = dramatiq.actor(
            actor_name="deliveries_exhausted",
            queue_name="maintenance",
            broker=broker,
            max_retries=3,
        )(self._exhausted)
        for channel in CHANNELS:
            for urgent in (False, True):
                queue = queue_for(channel, urgent)
                self.deliver[queue] = dramatiq.actor(
                    actor_name=f"deliver_{queue}",
                    queue_name=queue,
                    broker=broker,
                    priority=URGENT_PRIORITY if urgent else ROUTINE_PRIORITY,
                    max_retries=MAX_RETRIES,
                    min_backoff=1000,
                    max_backoff=60_000,
                    time_limit=TIME_LIMIT_MS,
                    on_retry_exhausted="deliveries_exhausted",
                )(self._deliver_function(urgent))

    def _deliver_function(self, urgent: bool) -> Callable[..., None]:
        def deliver(
            alert_id: int,
            channel: str,
            after_id: int,
            upto_id: int,
            urgent_: bool,
            force_id: int | None = None,
        ) -> None:
            rt = self.runtime()
            force_id = (
                force_id if force_id is not None else force_of_alert(rt.base_engine, alert_id)
            )
            chunk = Chunk(alert_id, channel, after_id, upto_id, urgent_, force_id)
            should_yield = None
            if not urgent:
                # Routine work steps aside (instead of waiting for capacity) while urgent work
                # for the same channel is queued or running.
                urgent_queue = queue_for(channel, True)
                should_yield = lambda: bool(pending(self.broker, urgent_queue))  # noqa: E731
            if force_id is None:
                drop_feed(self.dispatcher, chunk)
                return  # the alert is gone: nothing to send
            outcome = deliver_chunk(rt.for_force(force_id), chunk, should_yield=should_yield)
            if outcome.retry_after is not None:
                # Not a Dramatiq retry: waiting is not a failure and must not use up retries.
                self.dispatcher.enqueue([chunk], delay=outcome.retry_after)
            elif outcome.closed:
                drop_feed(self.dispatcher, chunk)
            else:
                # Before this message is acknowledged: a crash here redelivers it, and its
                # second finish moves the feed on instead.
                queue_next(self.dispatcher, chunk)

        return deliver

    def _exhausted(self, message: dict[str, Any], retry_info: dict[str, Any]) -> None:
        alert_id, channel, after_id, upto_id, urgent, *rest = message["args"]
        rt = self.runtime()
        force_id = (
            rest[0] if rest and rest[0] is not None else force_of_alert(rt.base_engine, alert_id)
        )
        if force_id is None:
            return
        trace = (message.get("options", {}).get("traceback") or "").strip().splitlines()
        reason = trace[-1] if trace else "the worker kept failing"
        chunk = Chunk(alert_id, channel, after_id, upto_id, urgent, force_id)
        give_up_chunk(
            rt.for_force(force_id),
            chunk,
            f"gave up after {retry_info.get('retries')} worker retries: {reason}",
        )
        queue_next(self.dispatcher, chunk)
