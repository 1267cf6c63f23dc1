"""Queue figures, live workers and a killed worker, against real Redis and worker processes."""

from __future__ import annotations

import json
import signal
import time

from broadcast.alerts import compose as alerts
from broadcast.store.tables import DeliveryState
from tests.delivery.processes import stop_workers, wait_until
from tests.ops.conftest import HEARTBEAT_TIMEOUT, Ops
from workers.broker import build_broker
from workers.embedded import Backend
from workers.monitor import RedisMonitor, StubMonitor, monitor_for


def figures(monitor: RedisMonitor) -> dict[str, tuple[int, int, int, int]]:
    return {q.queue: (q.ready, q.delayed, q.in_progress, q.dead) for q in monitor.queues()}


def test_figures_match_what_was_enqueued_and_processed(ops: Ops) -> None:
    # Given 3 SMS and 3 email chunk messages queued, and one SMS chunk delayed by a minute
    alert = ops.planned_alert(30, ("sms", "email"))
    backend = Backend(ops.rt)
    backend.dispatcher.enqueue(ops.chunks(alert, "sms") + ops.chunks(alert, "email"))
    backend.dispatcher.enqueue(ops.chunks(alert, "sms")[:1], delay=60)
    monitor = monitor_for(backend.app.broker, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    assert isinstance(monitor, RedisMonitor)
    # Then, with no worker running, the figures are exactly that
    seen = figures(monitor)
    assert seen["sms"] == (3, 1, 0, 0) and seen["email"] == (3, 0, 0, 0)
    assert all(v == (0, 0, 0, 0) for q, v in seen.items() if q not in ("sms", "email"))
    assert monitor.workers() == []  # enqueuing clients are not workers
    # And the CLI says the same, with the oldest waiting delivery's age
    shown = json.loads(ops.cli("queues", "--json").stdout)
    by_queue = {q["queue"]: q for q in shown["queues"]}
    assert by_queue["sms"] | {"queue": "sms"} == {
        "queue": "sms",
        "ready": 3,
        "delayed": 1,
        "in_progress": 0,
        "dead": 0,
    }
    assert shown["waiting"]["sms"]["queued"] == 30 and shown["waiting"]["sms"]["oldest_age"] >= 0
    assert shown["workers"] == []
    # When a worker serving sms, email and maintenance runs
    process = ops.start_workers(("sms", "email", "maintenance"))
    done = lambda: alerts.alert_status(ops.rt, alert.id).done  # noqa: E731
    wait_until(done, 30, "the alert to be sent", ops.log)
    # Then everything was processed; the delayed message is still held for its time
    # (a chunk's deliveries are committed before its message is acked, so wait for both queues)
    acked = {"sms": (0, 1, 0, 0), "email": (0, 0, 0, 0)}
    wait_until(lambda: figures(monitor).items() >= acked.items(), 5, "acks", ops.log)
    states = alerts.alert_status(ops.rt, alert.id).states
    assert states == {"sms": {DeliveryState.SENT: 30}, "email": {DeliveryState.SENT: 30}}
    # And the worker is listed alive with its pid and the queues it serves
    workers = monitor.workers()
    assert len(workers) == 1
    assert workers[0].queues == ("email", "maintenance", "sms")
    assert workers[0].threads == 2 and workers[0].pid not in (None, process.pid)
    # When it is killed outright (no clean shutdown, no goodbye)
    killed_at = time.monotonic()
    stop_workers(process, signal.SIGKILL)
    assert len(monitor.workers()) == 1  # its last beat is still fresh
    # Then it drops off the list once its heartbeat is older than the timeout
    wait_until(lambda: monitor.workers() == [], HEARTBEAT_TIMEOUT + 2, "the dead worker to go")
    gone_after = time.monotonic() - killed_at
    print(f"killed worker left the live list after {gone_after:.2f} s")
    assert gone_after <= HEARTBEAT_TIMEOUT + 1.0


def test_a_clean_shutdown_leaves_the_list_at_once(ops: Ops) -> None:
    monitor = RedisMonitor(Backend(ops.rt).app.broker.client, heartbeat_timeout=30)
    process = ops.start_workers(("voice", "voice_urgent"))
    wait_until(lambda: len(monitor.workers()) == 1, 15, "the worker to register", ops.log)
    assert monitor.workers()[0].queues == ("voice", "voice_urgent")
    # SIGTERM to the main process only (as a process manager does): a clean Dramatiq shutdown,
    # and the registry says goodbye
    process.send_signal(signal.SIGTERM)
    process.wait(20)
    # A long timeout, so only the goodbye (not an expired beat) can empty the list.
    assert monitor.workers() == []


def test_stub_broker_figures() -> None:
    # Given the embedded default: Dramatiq's stub broker in this process
    from workers.app import WorkerApp

    broker = build_broker(None)
    app = WorkerApp(broker, lambda: None)  # type: ignore[arg-type,return-value]
    from broadcast.delivery.dispatch import Chunk

    app.dispatcher.enqueue([Chunk(1, "sms", 0, 10), Chunk(1, "sms", 10, 20)])
    app.dispatcher.enqueue([Chunk(1, "voice", 0, 10, urgent=True)], delay=30)
    monitor = monitor_for(broker)
    assert isinstance(monitor, StubMonitor)
    seen = {q.queue: (q.ready, q.delayed, q.in_progress, q.dead) for q in monitor.queues()}
    assert seen["sms"] == (2, 0, 0, 0) and seen["voice_urgent"] == (0, 1, 0, 0)
    assert monitor.workers() is None and monitor.dead_letters() == []
