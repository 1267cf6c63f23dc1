"""The broker seen by operators: queue figures, live workers, dead letters (docs/operations.md).

Dramatiq's Redis layout (dramatiq/brokers/redis/dispatch.lua, checked against 2.2):
  <ns>:<q>                  list of ready message ids
  <ns>:<q>.msgs             hash id -> message, for ready AND fetched-but-unacked messages
  <ns>:<q>.DQ(.msgs)        the delay queue (retries, our capacity waits), same shape
  <ns>:<q>.XQ(.msgs)        dead letters: sorted set scored by when, and their messages
  <ns>:__acks__.<id>.<q>    per worker and queue: ids fetched and not yet acked
  <ns>:__heartbeats__       sorted set worker id -> last command time (ms)
Dramatiq's heartbeat is written only when a process talks to Redis (an idle worker polls about
every second; a busy one with a full prefetch does not), and enqueuing clients write it too.
So `WorkerRegistry`, a middleware, adds our own beat with pid, host and queues.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import redis
from dramatiq import Broker, Middleware, Worker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

from broadcast.delivery.dispatch import QUEUES, Chunk
from broadcast.ops.queues import DeadLetter, QueueFigures, QueueMonitor, WorkerSeen
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from workers.broker import REGISTRY, Scored
from workers.embedded import Backend

NAMESPACE = "dramatiq"
UNKNOWN_REASON = "retries ran out (the worker's log has the traceback)"


class RedisMonitor:
    """`broadcast.ops.queues.QueueMonitor` over a Redis that a RedisBroker uses."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        namespace: str = NAMESPACE,
        heartbeat_timeout: float = 30.0,
        queues: Sequence[str] = QUEUES,
    ) -> None:
        self.client, self.ns, self.timeout = client, namespace, heartbeat_timeout
        self.queue_names = tuple(queues)

    def queues(self) -> list[QueueFigures]:
        pipe = self.client.pipeline(transaction=False)
        for q in self.queue_names:
            key = f"{self.ns}:{q}"
            pipe.llen(key)
            pipe.hlen(f"{key}.msgs")
            pipe.hlen(f"{key}.DQ.msgs")
            pipe.zcard(f"{key}.XQ")
        values = pipe.execute()
        out = []
        for i, q in enumerate(self.queue_names):
            ready, held, delayed, dead = values[4 * i : 4 * i + 4]
            # The hash holds ready and taken messages; a message is in both only for an instant.
            out.append(QueueFigures(q, ready, delayed, max(0, held - ready), dead))
        return out

    def workers(self) -> list[WorkerSeen]:
        now = time.time() * 1000
        client = self.client
        beats = dict(
            cast(Scored, client.zrange(f"{self.ns}:__heartbeats__", 0, -1, withscores=True))
        )
        ours = dict(
            cast(Scored, client.zrange(f"{self.ns}:{REGISTRY}.beats", 0, -1, withscores=True))
        )
        info = cast(dict[bytes, bytes], client.hgetall(f"{self.ns}:{REGISTRY}"))
        held: dict[bytes, set[str]] = {}
        prefix = f"{self.ns}:__acks__."
        for key in self.client.scan_iter(match=f"{prefix}*", count=1000):
            worker_id, _, queue = key.decode()[len(prefix) :].partition(".")
            held.setdefault(worker_id.encode(), set()).add(queue.removesuffix(".DQ"))
        out = []
        # Registered workers, and unregistered ones holding messages (not mere enqueuers).
        for worker_id in set(ours) | set(held):
            last = max(beats.get(worker_id, 0.0), ours.get(worker_id, 0.0))
            if now - last > self.timeout * 1000:
                continue
            details = json.loads(info.get(worker_id, b"{}"))
            queues = tuple(details.get("queues") or sorted(held.get(worker_id, ())))
            out.append(
                WorkerSeen(
                    worker_id.decode(),
                    round(max(0.0, now - last) / 1000, 3),
                    queues,
                    details.get("pid"),
                    details.get("host"),
                    details.get("threads"),
                )
            )
        return sorted(out, key=lambda w: (w.host or "", w.pid or 0, w.id))

    def dead_letters(self, limit: int = 10_000) -> list[DeadLetter]:
        out: list[DeadLetter] = []
        reasons: dict[str, str] | None = None
        for q in self.queue_names:
            key = f"{self.ns}:{q}.XQ"
            scored = cast(Scored, self.client.zrange(key, 0, limit - 1, withscores=True))
            if not scored:
                continue
            reasons = self._exhausted_reasons() if reasons is None else reasons
            bodies = cast(
                list[bytes | None], self.client.hmget(f"{key}.msgs", [m for m, _ in scored])
            )
            for (message_id, score), body in zip(scored, bodies, strict=True):
                when = datetime.fromtimestamp(score / 1000, UTC)
                out.append(_letter(q, message_id.decode(), body, when, reasons))
        return out

    def _exhausted_reasons(self) -> dict[str, str]:
        """Redis keeps a dead letter as it was enqueued, without the traceback; the
        `deliveries_exhausted` message still waiting in `maintenance` carries it."""
        reasons = {}
        for body in self.client.hvals(f"{self.ns}:maintenance.msgs"):
            message = json.loads(body)
            if message.get("actor_name") == "deliveries_exhausted" and message.get("args"):
                failed = message["args"][0]
                reasons[failed.get("message_id", "")] = _last_line(failed)
        return reasons

    def remove_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        """Drop the letters, and their `deliveries_exhausted` messages not yet taken: run after
        a requeue, one would mark the range's freshly queued deliveries failed."""
        removed, origins = 0, set()
        for letter in letters:
            key = f"{self.ns}:{letter.queue}.XQ"
            body = self.client.hget(f"{key}.msgs", letter.message_id)
            if body:
                origins.add(json.loads(body).get("message_id"))
            removed += int(self.client.zrem(key, letter.message_id))
            self.client.hdel(f"{key}.msgs", letter.message_id)
        queue = f"{self.ns}:maintenance"
        waiting = cast(dict[bytes, bytes], self.client.hgetall(f"{queue}.msgs"))
        for redis_id, body in waiting.items():
            message = json.loads(body)
            args = message.get("args") or [{}]
            origin = args[0].get("message_id") if isinstance(args[0], dict) else None
            # Only one still waiting in the list; one a worker holds is left to finish.
            if (
                message.get("actor_name") == "deliveries_exhausted"
                and origin in origins
                and self.client.lrem(queue, 0, redis_id)  # type: ignore[arg-type]  # bytes: as read
            ):
                self.client.hdel(f"{queue}.msgs", redis_id)
        return removed


class StubMonitor:
    """What can be seen of Dramatiq's in-process stub broker (the embedded default)."""

    def __init__(self, broker: StubBroker) -> None:
        self.broker = broker

    def queues(self) -> list[QueueFigures]:
        out = []
        for q in QUEUES:
            queue, delay = self.broker.queues.get(q), self.broker.queues.get(f"{q}.DQ")
            ready = queue.qsize() if queue else 0
            taken = (queue.unfinished_tasks - ready) if queue else 0
            delayed = delay.unfinished_tasks if delay else 0
            dead = len(self.broker.dead_letters_by_queue.get(q, ()))
            out.append(QueueFigures(q, ready, delayed, max(0, taken), dead))
        return out

    def workers(self) -> None:
        return None  # workers run inside the process that owns the stub broker

    def dead_letters(self, limit: int = 10_000) -> list[DeadLetter]:
        out = []
        for q, messages in self.broker.dead_letters_by_queue.items():
            for proxy in messages[:limit]:
                out.append(_letter(q, proxy.message_id, proxy.message.encode(), None))
        return out

    def remove_dead_letters(self, letters: Sequence[DeadLetter]) -> int:
        removed = 0
        for letter in letters:
            messages = self.broker.dead_letters_by_queue.get(letter.queue, [])
            keep = [m for m in messages if m.message_id != letter.message_id]
            removed += len(messages) - len(keep)
            messages[:] = keep
        return removed


def _letter(
    queue: str,
    message_id: str,
    body: bytes | None,
    when: datetime | None,
    reasons: dict[str, str] | None = None,
) -> DeadLetter:
    message = json.loads(body) if body else {}
    actor, args = message.get("actor_name", "?"), message.get("args") or []
    chunk = None
    if actor.startswith("deliver_") and len(args) in (5, 6):
        chunk = Chunk(*args)
    reason = _last_line(message) or (reasons or {}).get(message.get("message_id", ""), "")
    return DeadLetter(queue, message_id, actor, chunk, when, reason or UNKNOWN_REASON)


def _last_line(message: dict[str, Any]) -> str:
    trace = (message.get("options", {}).get("traceback") or "").strip().splitlines()
    return trace[-1] if trace else ""


def monitor_for(broker: Broker, *, heartbeat_timeout: float = 30.0) -> QueueMonitor | None:
    if isinstance(broker, RedisBroker):
        return RedisMonitor(
            broker.client, namespace=broker.namespace, heartbeat_timeout=heartbeat_timeout
        )
    if isinstance(broker, StubBroker):
        return StubMonitor(broker)
    return None


def monitor_for_settings(settings: Settings) -> QueueMonitor | None:
    """For processes without a broker of their own (the web app): Redis, or nothing to see."""
    if not settings.redis_url:
        return None
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2)
    return RedisMonitor(client, heartbeat_timeout=settings.ops_heartbeat_timeout)


class OpsBackend(Backend):
    """The CLI's view: the dispatcher and embedded runner of `Backend`, plus the monitor."""

    def __init__(self, rt: Runtime) -> None:
        super().__init__(rt)
        self.monitor = monitor_for(
            self.app.broker, heartbeat_timeout=rt.settings.ops_heartbeat_timeout
        )


def ops_backend(rt: Runtime) -> OpsBackend:
    return OpsBackend(rt)


class WorkerRegistry(Middleware):
    """Each worker process beats every `interval` seconds with its pid, host, threads and
    queues, and leaves on a clean shutdown; a killed one simply stops beating."""

    def __init__(self, *, interval: float = 10.0) -> None:
        self.interval = interval
        self._stop = threading.Event()

    def after_worker_boot(self, broker: Broker, worker: Worker) -> None:
        if not isinstance(broker, RedisBroker):
            return
        queues = sorted(worker.consumer_whitelist or broker.get_declared_queues())
        details = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "threads": worker.worker_threads,
            "queues": queues,
        }
        key = f"{broker.namespace}:{REGISTRY}"
        broker.client.hset(key, broker.broker_id, json.dumps(details))
        self._stop.clear()
        beat = threading.Thread(
            target=self._beat, args=(broker, key), daemon=True, name="broadcast-registry"
        )
        beat.start()

    def _beat(self, broker: RedisBroker, key: str) -> None:
        while True:
            # Redis away for a moment: the next beat tries again.
            with contextlib.suppress(redis.RedisError):
                broker.client.zadd(f"{key}.beats", {broker.broker_id: time.time() * 1000})
            if self._stop.wait(self.interval):
                return

    def before_worker_shutdown(self, broker: Broker, worker: Worker) -> None:
        self._stop.set()
        if isinstance(broker, RedisBroker):
            key = f"{broker.namespace}:{REGISTRY}"
            broker.client.hdel(key, broker.broker_id)
            broker.client.zrem(f"{key}.beats", broker.broker_id)


def add_worker_registry(broker: Broker, settings: Settings) -> None:
    """Call once where the workers' broker is built. It beats often enough for the sweep to
    tell a stopped worker within BROADCAST_WORKER_LAPSE_AFTER, and /ops within its timeout."""
    if not any(isinstance(m, WorkerRegistry) for m in broker.middleware):
        interval = min(settings.worker_heartbeat_interval, settings.ops_heartbeat_timeout / 3)
        broker.add_middleware(WorkerRegistry(interval=interval))


def add_prometheus(broker: Broker, settings: Settings) -> bool:
    """Dramatiq's own Prometheus middleware (messages, errors, retries, durations per actor)
    when BROADCAST_WORKER_METRICS_PORT is set; the dramatiq CLI forks one exposition server
    per host for it. Call before the CLI collects the broker's middleware forks (at import)."""
    if not settings.worker_metrics_port:
        return False
    from dramatiq.middleware.prometheus import Prometheus

    class BroadcastPrometheus(Prometheus):
        @property
        def forks(self) -> list[Callable[[], int]]:
            return [exposition_server]

    if not any(isinstance(m, Prometheus) for m in broker.middleware):
        broker.add_middleware(BroadcastPrometheus())
    return True


def exposition_server() -> int:
    """The fork process: Dramatiq's exposition server, on our port. Dramatiq reads its port
    from `dramatiq_prom_port` when imported, and this process has only the parent's environment,
    so the port is set on the module instead."""
    from dramatiq.middleware import prometheus

    from broadcast.settings import get_settings

    prometheus.HTTP_PORT = get_settings().worker_metrics_port or prometheus.HTTP_PORT
    return int(prometheus._run_exposition_server())  # 0 when the server stops
