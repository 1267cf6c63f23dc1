"""Fairness between forces: an alert keeps only a window of chunks on the queue, the rest follow
as chunks finish, so a small alert queued behind a big one is sent within the first few chunks
instead of after the whole backlog (delivery.feeds). Feeds in one process and in Redis; real
Dramatiq workers on the stub broker and on Redis; three forces; SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import dramatiq
import pytest
import redis
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import func, select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.dispatch import Chunk, RecordingDispatcher, queue_next
from broadcast.delivery.feeds import Feed, Feeds, MemoryFeeds, RedisFeeds
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.store.tables import Delivery
from broadcast.store.tenancy import national
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.support.forces import add_sharing_senders
from workers.app import WorkerApp
from workers.broker import build_broker

VARS = {"headline": "Scam calls", "message": "Hang up on callers asking for bank details."}


@pytest.fixture(params=["memory", "redis"])
def feeds(request: pytest.FixtureRequest) -> Iterator[Feeds]:
    if request.param == "memory":
        yield MemoryFeeds()
        return
    client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
    client.flushall()
    yield RedisFeeds(client, "test:feed:")
    client.close()


def test_a_feed_hands_out_each_range_once_to_racing_workers(feeds: Feeds) -> None:
    feed = Feed(alert_id=7, channel="sms", after=99, high=1_099, size=100, force_id=3)
    feeds.start(feed)
    taken: list[Chunk] = []
    lock = threading.Lock()

    def take_all() -> None:
        while (chunk := feeds.take(feed.key)) is not None:
            with lock:
                taken.append(chunk)

    threads = [threading.Thread(target=take_all) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ranges = sorted((c.after_id, c.upto_id) for c in taken)
    assert ranges == [(after, after + 100) for after in range(99, 1_099, 100)]
    assert {(c.alert_id, c.channel, c.force_id, c.urgent) for c in taken} == {(7, "sms", 3, False)}
    assert feeds.take(feed.key) is None  # done, and forgotten
    # Started again (the sweeper queuing an alert anew): the new feed replaces the old
    feeds.start(replace(feed, after=900, high=950))
    assert (c := feeds.take(feed.key)) is not None and (c.after_id, c.upto_id) == (900, 950)
    feeds.stop(feed.key)
    assert feeds.take(feed.key) is None


def test_enqueue_queues_a_window_and_each_finished_chunk_queues_the_next(
    runtime: Runtime,
) -> None:
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(25)])
    runtime.settings.delivery_chunk_size = 5
    dispatcher = RecordingDispatcher(window=2)
    alert = alerts.create_alert(
        runtime, "community-alert", VARS, ("sms",), Targeting(everyone=True), operator="pc-a"
    )
    approval.submit(runtime, dispatcher, alert, operator="pc-a")
    first = dispatcher.take()
    assert [c.upto_id - c.after_id for c in first] == [5, 5]
    following = [queue_next(dispatcher, c) for c in first * 3]
    # Five chunks in all, the ranges following on without a gap or an overlap
    ranges = [(c.after_id, c.upto_id) for c in [*first, *(f for f in following if f)]]
    assert len(ranges) == 5 and all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    assert following[3:] == [None, None, None]  # the feed is done


def _platform(runtime: Runtime) -> dict[str, Runtime]:
    base = runtime.platform_settings
    # Sending as the platform, so through this runtime's recording channels.
    suffolk = add_sharing_senders(runtime.base_engine, base, "suffolk")
    dyfed = add_sharing_senders(runtime.base_engine, base, "dyfed-powys")
    return {
        "met": runtime,
        "suffolk": runtime.for_force(suffolk.id),
        "dyfed-powys": runtime.for_force(dyfed.id),
    }


def _send_order(
    runtime: Runtime, channels: dict[str, RecordingChannel], broker: dramatiq.Broker, window: int
) -> tuple[list[str], int]:
    """A big Met alert queued first, then small Suffolk and Dyfed-Powys ones, worked by one
    worker thread: which force each email went out for, in order, and how many rows were sent."""
    for settings in (runtime.settings, runtime.platform_settings):
        settings.dispatch_window, settings.delivery_chunk_size = window, 20
    forces = _platform(runtime)
    for code, people in (("met", 400), ("suffolk", 40), ("dyfed-powys", 40)):
        rt = forces[code]
        add_people(rt.engine, [Person(channels=("email",)) for _ in range(people)])
    app = WorkerApp(broker, lambda: runtime)
    for code in ("met", "suffolk", "dyfed-powys"):
        rt = forces[code]
        alert = alerts.create_alert(
            rt, "community-alert", VARS, ("email",), Targeting(everyone=True), operator="pc"
        )
        approval.submit(rt, app.dispatcher, alert, operator="pc")
    force_of = {rt.force.id: code for code, rt in forces.items()}
    with national(runtime.base_engine).connect() as conn:
        owner = {r.id: r.force_id for r in conn.execute(select(Delivery.id, Delivery.force_id))}
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    try:
        deadline = time.monotonic() + 60
        while len(channels["email"].sent) < 480 and time.monotonic() < deadline:
            time.sleep(0.05)
        worker.join()
    finally:
        worker.stop()
    with national(runtime.base_engine).connect() as conn:
        sent = conn.execute(
            select(func.count()).select_from(Delivery).where(Delivery.state == "sent")
        ).scalar_one()
    return [force_of[owner[m.delivery_id]] for m in channels["email"].sent], sent


@pytest.fixture(params=["stub", "redis"])
def broker(request: pytest.FixtureRequest) -> Iterator[dramatiq.Broker]:
    if request.param == "stub":
        broker = build_broker(None)
    else:
        broker = RedisBroker(url=request.getfixturevalue("redis_url"))
        broker.flush_all()
    yield broker
    broker.close()


def test_small_alerts_of_other_forces_go_out_early_not_after_the_backlog(
    runtime: Runtime, channels: dict[str, RecordingChannel], broker: dramatiq.Broker
) -> None:
    order, sent = _send_order(runtime, channels, broker, window=2)
    # Every email once: the feeds queued each range once and nothing twice
    ids = [m.delivery_id for m in channels["email"].sent]
    assert sent == 480 and len(ids) == len(set(ids)) == 480
    # Suffolk's and Dyfed-Powys's two chunks each sat behind the Met's first two, not its
    # twenty: all of theirs were out within the first 160 emails
    last_small = max(i for i, code in enumerate(order) if code != "met")
    assert last_small < 160, order
    assert order.index("suffolk") < 80


def test_without_a_window_a_small_alert_waits_for_the_whole_backlog(
    runtime: Runtime, channels: dict[str, RecordingChannel]
) -> None:
    order, sent = _send_order(runtime, channels, build_broker(None), window=0)
    assert sent == 480
    # What fairness is for: first in, first out puts all 400 of the Met's emails first
    assert order.index("suffolk") >= 400
