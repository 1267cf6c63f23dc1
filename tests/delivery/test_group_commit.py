"""Group commit: lanes stepping at once are committed together, each claim owned by exactly one
lane and every success recorded (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

from sqlalchemy import select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.group_commit import GroupCommit, _Step
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.store.tables import Delivery
from tests.delivery.factories import Person, add_people

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}
LANES = 8


def test_lanes_stepping_together_each_own_their_claims_and_record_every_success(
    runtime: Runtime,
) -> None:
    add_people(runtime.engine, [Person(channels=("email",))] * 40)
    alert = alerts.create_alert(
        runtime, "community-alert", VARS, ("email",), Targeting(everyone=True), operator="t"
    )
    approval.submit(runtime, RecordingDispatcher(), alert, operator="t")
    with runtime.engine.connect() as conn:
        ids = list(conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars())
    committer = GroupCommit(runtime)
    owned: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(LANES)

    def lane(mine: list[int]) -> None:
        start.wait()
        previous = None
        # Every id is asked for twice (two lanes racing for it): only one may own it.
        for delivery_id in mine + mine:
            # The step records the previous success whether or not the claim is won.
            mine_now = committer.step(previous, delivery_id)
            previous = (delivery_id, f"PID{delivery_id}", 1) if mine_now else None
            if mine_now:
                with lock:
                    owned.append(delivery_id)
        if previous is not None:
            committer.step(previous, None)

    threads = [threading.Thread(target=lane, args=(ids[i::LANES],)) for i in range(LANES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(owned) == ids
    with runtime.engine.connect() as conn:
        states = {r.id: r.state for r in conn.execute(select(Delivery.id, Delivery.state))}
    assert set(states.values()) == {"sent"}
    # Several steps went in one transaction (the lanes waited on each other's commits)
    assert committer.transactions < committer.steps


def test_two_steps_claiming_one_delivery_in_one_batch_give_it_to_one_lane(
    runtime: Runtime,
) -> None:
    # Two copies of one chunk (the scheduler queued the alert, then queued its queued work
    # again) have two lanes ask for the same deliveries in the same transaction
    add_people(runtime.engine, [Person(channels=("email",))] * 3)
    alert = alerts.create_alert(
        runtime, "community-alert", VARS, ("email",), Targeting(everyone=True), operator="t"
    )
    approval.submit(runtime, RecordingDispatcher(), alert, operator="t")
    with runtime.engine.connect() as conn:
        ids = list(conn.execute(select(Delivery.id).order_by(Delivery.id)).scalars())
    batch = [_Step(None, i) for i in ids for _ in range(2)]
    GroupCommit(runtime)._commit(batch)
    # Each delivery is owned by exactly one of the two steps (else both lanes would send it)
    assert all(s.done and s.error is None for s in batch)
    assert sorted(s.claim_id for s in batch if s.owned) == ids
