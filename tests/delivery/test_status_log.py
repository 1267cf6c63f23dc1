"""Every change of `alert.status` is in the transition log, the delivery engine's too
(broadcast/store/alert_status.py is the only writer)."""

from __future__ import annotations

from sqlalchemy import select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.channels import TransientChannelError
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.store.tables import AlertTransition
from tests.delivery.factories import Person, add_people

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def _log(rt, alert_id):  # type: ignore[no-untyped-def]
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(AlertTransition.from_state, AlertTransition.to_state, AlertTransition.operator)
            .where(AlertTransition.alert_id == alert_id)
            .order_by(AlertTransition.id)
        )
        return [tuple(r) for r in rows]


def _drain(rt, dispatcher) -> None:  # type: ignore[no-untyped-def]
    while chunks := dispatcher.take():
        for chunk in chunks:
            if deliver_chunk(rt, chunk).retry_after is not None:
                dispatcher.enqueue([chunk])


def test_done_retry_and_cancel_are_logged(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    # Given an alert whose one text fails for a transient reason until the tries run out
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(2)])
    channels["sms"].failures["+447700900000"] = lambda: TransientChannelError("503", code="20503")
    alert = alerts.create_alert(
        runtime, "community-alert", VARS, ("sms",), Targeting(everyone=True), operator="pc-test"
    )
    dispatcher = RecordingDispatcher()
    approval.submit(runtime, dispatcher, alert, operator=alert.operator)
    _drain(runtime, dispatcher)
    # Then the engine's move to done is a logged step, not one made up from finished_at
    assert alerts.get_alert(runtime, alert.id).status == "done"
    assert _log(runtime, alert.id) == [
        (None, "draft", "pc-test"),
        ("draft", "sending", "pc-test"),
        ("sending", "done", "delivery engine"),
    ]
    # When an operator retries the failure, and cancels before it is sent
    assert alerts.retry_failed(runtime, dispatcher, alert.id, operator="sgt-1") == 1
    assert alerts.cancel_alert(runtime, alert.id, operator="sgt-2") == 1
    # Then both moves are logged with who made them
    assert _log(runtime, alert.id)[3:] == [
        ("done", "sending", "sgt-1"),
        ("sending", "cancelled", "sgt-2"),
    ]
    # And cancelling again changes nothing
    assert alerts.cancel_alert(runtime, alert.id, operator="sgt-2") == 0
    assert len(_log(runtime, alert.id)) == 5
