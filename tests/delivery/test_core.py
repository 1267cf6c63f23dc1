"""Planning and delivering chunks with recording channels, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy import select, update

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.channels import PermanentChannelError, TransientChannelError
from broadcast.delivery import planning
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.store.tables import Alert, Delivery, Subscription, utcnow
from tests.delivery.factories import Person, add_people

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def _send(rt, targeting, channels=("sms", "email", "voice"), **kwargs):  # type: ignore[no-untyped-def]
    dispatcher = RecordingDispatcher()
    alert = alerts.create_alert(
        rt, "community-alert", VARS, channels, targeting, operator="pc-test", **kwargs
    )
    approval.submit(rt, dispatcher, alert, operator=alert.operator)
    return alert, dispatcher


def _drain(rt, dispatcher) -> None:  # type: ignore[no-untyped-def]
    while chunks := dispatcher.take():
        for chunk in chunks:
            outcome = deliver_chunk(rt, chunk)
            if outcome.retry_after is not None:
                dispatcher.enqueue([chunk])


def _states(rt, alert_id):  # type: ignore[no-untyped-def]
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.channel, Delivery.state).where(Delivery.alert_id == alert_id)
        )
        return Counter(f"{c}:{s}" for c, s in rows)


def test_targeting_districts_sectors_named_topics_and_all(runtime) -> None:  # type: ignore[no-untyped-def]
    # Given people following a district, a sector inside it, another district, a named area
    add_people(
        runtime.engine,
        [
            Person(areas=["SW1A"], topics=["fraud"]),
            Person(areas=["SW1A 1"], topics=["burglary"]),
            Person(areas=["SW1B"]),
            Person(areas=["SW1A 2"], status="unsubscribed"),
            Person(areas=["oakfield-estate"], topics=["fraud"]),
        ],
    )

    def count(t: Targeting) -> int:
        return alerts.preview_alert(runtime, "community-alert", VARS, ("sms",), t).recipients["sms"]

    # Then a district alert reaches the district and its sectors' followers (active only)
    assert count(Targeting(areas=("SW1A",))) == 2
    # a sector alert reaches that sector's and its district's followers, not other sectors
    assert count(Targeting(areas=("SW1A 1",))) == 2
    assert count(Targeting(areas=("SW1A 9",))) == 1
    assert count(Targeting(areas=("oakfield-estate",))) == 1
    assert count(Targeting(areas=("SW1A", "oakfield-estate"), topics=("fraud",))) == 2
    assert count(Targeting(everyone=True)) == 4


def test_every_recipient_once_per_channel_and_repeat_chunks_do_nothing(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    runtime.settings.delivery_chunk_size = 7
    add_people(runtime.engine, [Person() for _ in range(40)] + [Person(channels=("email",))])
    alert, dispatcher = _send(runtime, Targeting(areas=("SW1A",)))
    chunks = [c for c, _ in dispatcher.chunks]
    assert len(chunks) == 6 + 6 + 6
    _drain(runtime, dispatcher)
    # When every chunk is delivered a second time (a redelivered queue message)
    for chunk in chunks:
        assert deliver_chunk(runtime, chunk).sent == 0
    # Then each (registrant, channel) was sent exactly once, with a personal manage link
    assert len(channels["sms"].sent) == 40 and len(channels["email"].sent) == 41
    assert len({m.to for m in channels["email"].sent}) == 41
    sms = channels["sms"].sent[0]
    assert "/manage/" in sms.body and sms.units >= 1
    assert _states(runtime, alert.id) == {"sms:sent": 40, "email:sent": 41, "voice:sent": 40}
    assert alerts.get_alert(runtime, alert.id).status == "done"


def test_failure_classes(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    ids = add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(5)])
    numbers = [f"+447700{900000 + i:06d}" for i in range(5)]
    sms = channels["sms"]
    sms.failures[numbers[0]] = lambda: PermanentChannelError("invalid To number", code="21211")
    sms.failures[numbers[1]] = lambda: PermanentChannelError("STOP", code="21610", suppress=True)
    sms.failures[numbers[2]] = lambda: TransientChannelError("timed out", maybe_sent=True)
    sms.failures[numbers[3]] = lambda: TransientChannelError("503", code="20503")
    alert, dispatcher = _send(runtime, Targeting(everyone=True), channels=("sms",))
    _drain(runtime, dispatcher)
    with runtime.engine.connect() as conn:
        rows = {
            r.registrant_id: r
            for r in conn.execute(select(Delivery).where(Delivery.alert_id == alert.id))
        }
        sub = conn.execute(
            select(Subscription.status).where(Subscription.registrant_id == ids[1])
        ).scalar_one()
    assert rows[ids[0]].state == "undeliverable" and rows[ids[0]].error_code == "21211"
    assert rows[ids[1]].state == "undeliverable" and sub == "suppressed"
    assert rows[ids[2]].state == "in-doubt" and rows[ids[2]].attempts == 1
    # transient: retried with backoff until attempts ran out, then failed with the reason
    assert rows[ids[3]].state == "failed" and "503" in rows[ids[3]].error_text
    assert rows[ids[3]].attempts == runtime.settings.delivery_max_attempts
    assert rows[ids[4]].state == "sent"
    # A later alert does not go to the suppressed number at all
    alert2, dispatcher = _send(runtime, Targeting(everyone=True), channels=("sms",))
    assert alerts.delivery_counts(runtime, alert2.id) == {"sms": 4}
    # retry-failed queues the transient failure again, and only it
    sms.failures.pop(numbers[3])
    assert alerts.retry_failed(runtime, dispatcher, alert.id) == 1


def test_cancel_and_expiry(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(10)])
    alert, dispatcher = _send(runtime, Targeting(everyone=True), channels=("sms",))
    assert alerts.cancel_alert(runtime, alert.id) == 10
    _drain(runtime, dispatcher)
    assert channels["sms"].sent == []
    assert _states(runtime, alert.id) == {"sms:cancelled": 10}
    # An alert that expires while its deliveries wait in the queue (released before its expiry:
    # one past expiry at release plans nothing, `lifecycle.release`)
    expired, dispatcher = _send(runtime, Targeting(everyone=True), channels=("sms",))
    with runtime.engine.begin() as conn:
        past = utcnow() - timedelta(seconds=1)
        conn.execute(update(Alert).where(Alert.id == expired.id).values(expires_at=past))
    _drain(runtime, dispatcher)
    assert _states(runtime, expired.id) == {"sms:expired": 10}


def test_the_sweep_closes_sign_ups_never_confirmed(runtime) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from sqlmodel import Session

    from broadcast.delivery.recovery import expire_unconfirmed
    from broadcast.registrants import people as registrants
    from broadcast.registrants.consent import ConsentSource
    from broadcast.registrants.validation import parse_registrant
    from broadcast.store.tables import SubscriptionStatus, utcnow

    # Given a web sign-up whose confirmation went out four days ago, and a fresh one
    with Session(runtime.engine, expire_on_commit=False) as session:
        for mobile, age in (("07911 123456", 96), ("07920 123456", 1)):
            draft = parse_registrant(
                {"name": "X", "mobile": mobile, "channels": "sms"}, topics=frozenset()
            )
            person = registrants.add_registrant(
                session=session,
                draft=draft,
                source=ConsentSource("web"),
                key=runtime.key,
                status=SubscriptionStatus.PENDING,
            )
            sub = registrants.subscriptions(session=session, registrant_id=person.id)["sms"]
            sub.confirmation_sent_at = utcnow() - timedelta(hours=age)
        session.commit()
    # When the sweep runs, Then only the old one is closed
    assert expire_unconfirmed(runtime) == 1
    assert expire_unconfirmed(runtime) == 0


def test_a_large_plan_leaves_the_planner_statistics_for_the_claims(runtime, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given more registrants than the refresh threshold (lowered so the test stays small)
    monkeypatch.setattr(planning, "ANALYZE_AFTER_DELIVERIES", 300)
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(300)])
    # When an alert to all of them is planned
    alert, _ = _send(runtime, Targeting(everyone=True), channels=("sms",))
    # Then, on PostgreSQL, the delivery table's statistics count them (ANALYZE ran)
    if runtime.engine.dialect.name == "postgresql":
        with runtime.engine.connect() as conn:
            estimated = conn.exec_driver_sql(
                "SELECT reltuples FROM pg_class WHERE relname = 'delivery'"
            ).scalar_one()
        assert estimated == 300
    assert sum(alerts.delivery_counts(runtime, alert.id).values()) == 300


def test_planning_says_how_many_deliveries_it_added(runtime) -> None:  # type: ignore[no-untyped-def]
    # (escalation acts only when deliveries were added; SQLAlchemy hides an INSERT's row count)
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(7)])
    alert = alerts.create_alert(
        runtime, "community-alert", VARS, ("sms",), Targeting(everyone=True), operator="pc-test"
    )
    with runtime.engine.begin() as conn:
        assert planning.plan_deliveries(conn, alert) == 7
    nobody = alerts.create_alert(
        runtime, "community-alert", VARS, ("sms",), Targeting(areas=("ZZ9",)), operator="pc-test"
    )
    with runtime.engine.begin() as conn:
        assert planning.plan_deliveries(conn, nobody) == 0


def _settle_now(rt, dispatcher):  # type: ignore[no-untyped-def]
    from broadcast.delivery import recovery

    return recovery.settle_in_doubt(rt, dispatcher, force=True)


def test_an_email_in_doubt_is_sent_again_with_its_message_id(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    add_people(runtime.engine, [Person(channels=("email",)) for _ in range(3)])
    email = channels["email"]
    email.failures["person1@example.org"] = lambda: TransientChannelError(
        "the mail server hung up", maybe_sent=True
    )
    alert, dispatcher = _send(runtime, Targeting(everyone=True), channels=("email",))
    _drain(runtime, dispatcher)
    # Given an email whose answer was lost: in doubt, and the alert not finished while it is
    assert _states(runtime, alert.id) == {"email:sent": 2, "email:in-doubt": 1}
    assert alerts.get_alert(runtime, alert.id).status == "sending"
    first_key = email.attempted["person1@example.org"][0].message_key
    # When it is settled (SMTP cannot be asked)
    email.failures.clear()
    report = _settle_now(runtime, dispatcher)
    _drain(runtime, dispatcher)
    # Then it is sent again, with the same Message-ID key, flagged, and the alert is done
    assert report.sent_again == 1
    assert [m.message_key for m in email.sent if m.to == "person1@example.org"] == [first_key]
    assert _states(runtime, alert.id) == {"email:sent": 3}
    with runtime.engine.connect() as conn:
        flagged = conn.execute(
            select(Delivery.recovered).where(Delivery.recovered.is_not(None))
        ).scalars()
        assert list(flagged) == ["sent again with the same Message-ID after the send was in doubt"]
    assert alerts.get_alert(runtime, alert.id).status == "done"


def test_an_sms_in_doubt_the_provider_cannot_be_asked_about_is_held(runtime, channels) -> None:  # type: ignore[no-untyped-def]
    add_people(runtime.engine, [Person(channels=("sms",)) for _ in range(2)])
    sms = channels["sms"]
    sms.failures["+447700900001"] = lambda: TransientChannelError("timed out", maybe_sent=True)
    alert, dispatcher = _send(runtime, Targeting(everyone=True), channels=("sms",))
    _drain(runtime, dispatcher)
    report = _settle_now(runtime, dispatcher)
    # A channel that cannot say whether it sent: never resent blindly, kept with a reason
    assert report.in_doubt == 1 and report.sent_again == 0
    with runtime.engine.connect() as conn:
        row = conn.execute(select(Delivery).where(Delivery.state == "in-doubt")).one()
    assert "failures requeue --include-in-doubt" in row.error_text
    assert row.settle_after is None
    assert alerts.get_alert(runtime, alert.id).status == "done"
