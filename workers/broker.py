"""The broker: Redis when BROADCAST_REDIS_URL is set, else Dramatiq's in-process stub broker."""

from __future__ import annotations

from typing import cast

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker

# Our worker registry (workers/monitor.py): hash id -> JSON; "<REGISTRY>.beats": id -> ms.
REGISTRY = "__broadcast_workers__"
# A sorted set read with its scores. The broker's client speaks bytes (no decode_responses), but
# redis-py types every reply as `bytes | str`, so the readers say which one they get.
Scored = list[tuple[bytes, float]]


def build_broker(redis_url: str | None) -> Broker:
    if redis_url:
        return RedisBroker(url=redis_url)
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


def worker_id_of(broker: Broker) -> str | None:
    """The id this process's claims carry: its broker id, which its heartbeats are keyed by."""
    return broker.broker_id if isinstance(broker, RedisBroker) else None


def pending(broker: Broker, queue: str) -> int | None:
    """Messages the broker holds for a queue: waiting, delayed, or taken but not yet acked."""
    if isinstance(broker, RedisBroker):
        # Dramatiq keeps every message of a queue in the hash "<ns>:<queue>.msgs" until it is
        # acknowledged, so this counts in-flight messages too.
        client, ns = broker.client, broker.namespace
        return int(client.hlen(f"{ns}:{queue}.msgs")) + int(client.hlen(f"{ns}:{queue}.DQ.msgs"))
    if isinstance(broker, StubBroker):
        total = 0
        for name in (queue, f"{queue}.DQ"):
            if name in broker.queues:
                total += broker.queues[name].unfinished_tasks
        return total
    return None


def worker_beats(broker: Broker) -> dict[str, float] | None:
    """Registered worker processes' last beats (epoch seconds), by broker id."""
    if not isinstance(broker, RedisBroker):
        return None
    key = f"{broker.namespace}:{REGISTRY}.beats"
    beats = cast(Scored, broker.client.zrange(key, 0, -1, withscores=True))
    return {key.decode(): score / 1000 for key, score in beats}


def forget_workers(broker: Broker, worker_ids: set[str]) -> None:
    """Take stopped workers out of the registry (their work has been queued again)."""
    if isinstance(broker, RedisBroker) and worker_ids:
        key = f"{broker.namespace}:{REGISTRY}"
        broker.client.zrem(f"{key}.beats", *worker_ids)
        broker.client.hdel(key, *worker_ids)
