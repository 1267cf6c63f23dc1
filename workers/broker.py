"""The broker: Redis when BROADCAST_REDIS_URL is set, else Dramatiq's in-process stub broker."""

from __future__ import annotations

from dramatiq import Broker
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker


def build_broker(redis_url: str | None) -> Broker:
    if redis_url:
        return RedisBroker(url=redis_url)
    broker = StubBroker()
    broker.emit_after("process_boot")
    return broker


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
