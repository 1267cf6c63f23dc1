"""A household sharing a landline gets one call per alert, and everyone on it counts as reached
through that call: first alerts, follow-ups and escalation steps alike (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from broadcast.alerts import compose as alerts
from broadcast.alerts import escalation, lifecycle
from broadcast.channels import PermanentChannelError
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.store.tables import AlertLifecycle, Delivery
from tests.delivery.factories import Person, add_people
from tests.delivery.test_core import VARS, _drain, _send, _states

HOME = "+442079461234"


def _household(runtime) -> list[int]:  # type: ignore[no-untyped-def]
    """Three people on one landline, one with a landline of their own, one called on a mobile."""
    return add_people(
        runtime.engine,
        [
            Person(channels=("sms", "voice"), landline=HOME, name="Alice"),
            Person(channels=("sms", "voice"), landline=HOME, name="Bob"),
            Person(channels=("sms", "voice"), landline=HOME, name="Cara"),
            Person(channels=("voice",), landline="+442079460000", name="Dev"),
            Person(channels=("voice",), name="Eve"),
        ],
    )


def _calls(runtime, alert_id: int) -> dict[int, tuple[str, int | None]]:  # type: ignore[no-untyped-def]
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.registrant_id, Delivery.state, Delivery.call_id).where(
                Delivery.alert_id == alert_id, Delivery.channel == "voice"
            )
        )
        return {r: (s, c) for r, s, c in rows}


def test_one_call_per_landline_and_the_household_counts_as_reached(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    # Given a household of three on one landline, and two people on numbers of their own
    alice, bob, cara, dev, eve = _household(runtime)
    # When a voice alert goes to everyone, the preview counts five people and three calls
    preview = alerts.preview_alert(
        runtime, "community-alert", VARS, ("voice",), Targeting(everyone=True)
    )
    assert (preview.recipients["voice"], preview.voice_calls) == (5, 3)
    assert preview.eta["voice"].startswith("3 calls")
    alert, dispatcher = _send(runtime, Targeting(everyone=True), channels=("voice",))
    _drain(runtime, dispatcher)
    # Then each number is called once
    called = Counter(m.to for m in channels["voice"].sent)
    assert called == {HOME: 1, "+442079460000": 1, "+447700900004": 1}
    # And the household's other members are represented by the call they shared
    calls = _calls(runtime, alert.id)
    first = next(i for i in (alice, bob, cara) if calls[i][0] == "sent")
    with runtime.engine.connect() as conn:
        call_id = conn.execute(
            select(Delivery.id).where(
                Delivery.alert_id == alert.id, Delivery.registrant_id == first
            )
        ).scalar_one()
    assert first == alice
    assert calls[bob] == calls[cara] == ("household", call_id)
    assert calls[dev][0] == calls[eve][0] == "sent"
    # And the status shows the call reached the household, nobody lost, the alert done
    view = alerts.alert_status(runtime, alert.id)
    assert view.states["voice"] == {"sent": 3, "household": 2}
    assert view.households == {"voice": {"sent": 2}}
    assert view.failures == []
    assert alerts.get_alert(runtime, alert.id).status == "done"
    assert _states(runtime, alert.id) == {"voice:sent": 3, "voice:household": 2}


def test_a_follow_up_calls_the_household_once_again(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    # Given an alert that reached the household through one call
    alice, bob, cara, _, _ = _household(runtime)
    alert, dispatcher = _send(runtime, Targeting(everyone=True), channels=("voice",))
    _drain(runtime, dispatcher)
    channels["voice"].sent.clear()
    # When an update follows it
    update = alerts.create_alert(
        runtime, "community-alert", VARS, ("voice",), Targeting(), operator="pc-test"
    )
    with runtime.engine.begin() as conn:
        planned = lifecycle.plan_followup(conn, update, alert.id)
    # Then everyone the first reached (the household included) is planned, one call a number
    assert planned == 3
    calls = _calls(runtime, update.id)
    assert set(calls) == set(_calls(runtime, alert.id))
    assert [calls[i][0] for i in (alice, bob, cara)] == ["queued", "household", "household"]


def test_an_escalation_step_calls_a_household_once(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    # Given an SMS alert escalating to voice, whose texts to two of the household fail
    alice, bob, cara, _, _ = _household(runtime)
    for n in (0, 1):
        channels["sms"].failures[f"+447700{900000 + n:06d}"] = lambda: PermanentChannelError(
            "unreachable", code="30003"
        )
    alert = alerts.create_alert(
        runtime,
        "community-alert",
        VARS,
        ("sms",),
        Targeting(everyone=True),
        operator="pc-test",
        status="draft",
    )
    dispatcher = RecordingDispatcher()
    with runtime.engine.begin() as conn:
        lifecycle.attach(
            conn,
            AlertLifecycle(alert_id=alert.id, escalate="sms>voice", escalate_after=3600),
            operator="pc-test",
        )
    lifecycle.release(runtime, dispatcher, alert.id, operator="pc-test")
    _drain(runtime, dispatcher)
    # When the escalation step runs
    child, added = escalation.escalate_alert(runtime, dispatcher, alert.id)
    _drain(runtime, dispatcher)
    # Then the household line is called once, for both whose texts failed
    assert added == 1
    assert [m.to for m in channels["voice"].sent] == [HOME]
    calls = _calls(runtime, child)
    assert set(calls) == {alice, bob}
    assert calls[alice][0] == "sent" and calls[bob][0] == "household"
    # And running the step again adds nobody
    assert escalation.escalate_alert(runtime, dispatcher, alert.id) == (child, 0)


def test_when_the_households_call_fails_everyone_on_it_escalates(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    # Given a voice alert escalating to SMS, and the household's one call failing
    alice, bob, cara, dev, eve = _household(runtime)
    channels["voice"].failures[HOME] = lambda: PermanentChannelError("busy", code="busy")
    alert = alerts.create_alert(
        runtime,
        "community-alert",
        VARS,
        ("voice",),
        Targeting(everyone=True),
        operator="pc-test",
        status="draft",
    )
    dispatcher = RecordingDispatcher()
    with runtime.engine.begin() as conn:
        lifecycle.attach(
            conn,
            AlertLifecycle(alert_id=alert.id, escalate="voice>sms", escalate_after=3600),
            operator="pc-test",
        )
    lifecycle.release(runtime, dispatcher, alert.id, operator="pc-test")
    _drain(runtime, dispatcher)
    # When the escalation step runs
    child, added = escalation.escalate_alert(runtime, dispatcher, alert.id)
    _drain(runtime, dispatcher)
    # Then each of the household gets their text: the call they shared reached none of them
    assert added == 3
    assert {m.to for m in channels["sms"].sent} == {f"+447700{900000 + n:06d}" for n in (0, 1, 2)}
    assert set(_calls(runtime, alert.id)) == {alice, bob, cara, dev, eve}
