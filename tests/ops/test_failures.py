"""Dead letters appear, purge records them as failed, requeue sends transient failures again
(never undeliverable or suppressed ones): real Redis, a real worker process, the real CLI."""

from __future__ import annotations

import json

from sqlalchemy import func, select, update

from broadcast.ops import audit, failures
from broadcast.store.tables import Alert, AuditEvent, Delivery, DeliveryState
from tests.delivery.processes import wait_until
from tests.ops.conftest import Ops
from workers.embedded import Backend
from workers.monitor import RedisMonitor


def states(ops: Ops, alert_id: int) -> dict[str, int]:
    with ops.rt.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.state, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.state)
        )
        return {state: n for state, n in rows}


def set_template(ops: Ops, alert_ids: list[int], template: str) -> None:
    with ops.rt.engine.begin() as conn:
        conn.execute(update(Alert).where(Alert.id.in_(alert_ids)).values(template=template))


def test_dead_letters_purge_and_requeue(ops: Ops) -> None:
    backend = Backend(ops.rt)
    monitor = RedisMonitor(backend.app.broker.client)
    # Given two alerts (10 and 20 people: everyone at the time) whose template was removed
    # mid-send, so their 3 chunks crash the actor
    first, second = ops.planned_alert(10), ops.planned_alert(10)
    set_template(ops, [first.id, second.id], "withdrawn-template")
    for chunk in ops.chunks(first) + ops.chunks(second):
        # No retries, so the dead letter comes at once (the actor's default is 5 with backoff).
        backend.app.deliver["sms"].send_with_options(args=chunk.as_args(), max_retries=0)
    # When a worker serves sms but not maintenance (so nothing settles the dead chunks yet)
    ops.start_workers(("sms",))
    dead = lambda: {q.queue: q.dead for q in monitor.queues()}["sms"]  # noqa: E731
    wait_until(lambda: dead() == 3, 20, "three dead letters", ops.log)
    # Then the dead letters show, with the reason, and their deliveries are still queued
    listed = json.loads(ops.cli("failures", "list", "--json").stdout)
    assert [(d["queue"], d["count"]) for d in listed["dead_letters"]] == [("sms", 3)]
    assert "withdrawn-template" in listed["dead_letters"][0]["reason"]
    assert listed["failures"] == []
    assert states(ops, first.id) == {DeliveryState.QUEUED: 10}
    assert {q.queue: q.ready for q in monitor.queues()}["maintenance"] == 3  # "give up" messages
    # When the first alert's dead letter is purged
    purged = ops.cli("failures", "purge", "--alert", str(first.id), "--yes")
    assert purged.returncode == 0, purged.stderr
    assert "1 dead letters recorded as failed" in purged.stdout
    # Then its deliveries are recorded failed with the reason; the other letter stays
    assert states(ops, first.id) == {DeliveryState.FAILED: 10}
    assert dead() == 2 and states(ops, second.id) == {DeliveryState.QUEUED: 20}
    groups = failures.failure_groups(ops.rt.engine, alert_id=first.id)
    assert len(groups) == 1 and groups[0].requeueable
    assert groups[0].reason.startswith("dead-lettered: ")
    # Given two of them turn out undeliverable and suppressed (never to be sent again)
    with ops.rt.engine.begin() as conn:
        ids = (
            conn.execute(
                select(Delivery.id)
                .where(Delivery.alert_id == first.id)
                .order_by(Delivery.id)
                .limit(2)
            )
            .scalars()
            .all()
        )
        conn.execute(update(Delivery).where(Delivery.id == ids[0]).values(state="undeliverable"))
        conn.execute(update(Delivery).where(Delivery.id == ids[1]).values(state="suppressed"))
    # When the template is back and the operator requeues everything
    set_template(ops, [first.id, second.id], "community-alert")
    requeued = ops.cli("failures", "requeue", "--yes")
    assert requeued.returncode == 0, requeued.stderr
    # Then the remaining dead letter was settled and every transient failure sent; only those
    assert "28 deliveries of 2 alert(s) queued again" in requeued.stdout, requeued.stdout
    assert "2 dead letters settled" in requeued.stdout
    sent = lambda a: states(ops, a).get(DeliveryState.SENT, 0)  # noqa: E731
    wait_until(lambda: sent(first.id) == 8 and sent(second.id) == 20, 20, "resends", ops.log)
    assert states(ops, first.id) == {"sent": 8, "undeliverable": 1, "suppressed": 1}
    # And no dead letter is left, nor a stale "give up" message that would fail requeued work
    maintenance = {q.queue: q for q in monitor.queues()}["maintenance"]
    assert dead() == 0 and (maintenance.ready, maintenance.in_progress) == (0, 0)
    # And both operator actions are in the audit log, by the operator who ran them
    with ops.rt.engine.connect() as conn:
        rows = conn.execute(select(AuditEvent.action, AuditEvent.operator, AuditEvent.details))
        events = [(a, o, json.loads(d)) for a, o, d in rows if a.startswith("failures.")]
    assert [(a, o) for a, o, _ in events] == [
        ("failures.purged", "duty-inspector"),
        ("failures.requeued", "duty-inspector"),
    ]
    assert events[0][2]["dead_letters"] == 1 and events[1][2]["deliveries"] == 28
    assert audit.ACTIONS  # the actions used are the audit module's own


def test_nothing_to_requeue_says_so(ops: Ops) -> None:
    result = ops.cli("failures", "requeue", "--yes")
    assert result.returncode == 0 and "Nothing to requeue." in result.stdout
    assert ops.cli("failures", "list").stdout.strip() == "No failed deliveries."
