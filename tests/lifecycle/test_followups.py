"""Updates, all-clears and corrections reach exactly those the first alert reached."""

from __future__ import annotations

from sqlalchemy import select

from broadcast.alerts import approval, followups, lifecycle
from broadcast.alerts import compose as alerts
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.runtime import Runtime
from broadcast.settings import Settings
from broadcast.store.engine import create_db_engine, upgrade
from broadcast.store.tables import Delivery
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.lifecycle.conftest import VARS
from tests.support.forces import default_force

VARIABLES = {"headline": "Road closed", "message": "Avoid the high street."}


def targets(engine, alert_id: int) -> set[tuple[int, str]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.registrant_id, Delivery.channel).where(Delivery.alert_id == alert_id)
        )
        return {(r, c) for r, c in rows}


def test_update_and_all_clear_reach_exactly_the_first_recipients(db, cli) -> None:  # type: ignore[no-untyped-def]
    # Given an alert sent to SW1A by SMS and email (E1 is not targeted)
    first = add_people(db, [Person(areas=["SW1A"], channels=("sms", "email")) for _ in range(4)])
    add_people(db, [Person(areas=["E1"], channels=("sms", "email")) for _ in range(2)])
    send = ["alert", "send", "community-alert", "--area", "SW1A", "--channels", "sms,email"]
    assert cli(*send, *VARS, "--yes").exit_code == 0
    reached = targets(db, 1)
    assert reached == {(r, c) for r in first for c in ("sms", "email")}
    # And since then two more people joined SW1A, and the first one stopped texts
    add_people(db, [Person(areas=["SW1A"], channels=("sms", "email")) for _ in range(2)])
    assert cli("registrants", "unsubscribe", str(first[0]), "--channel", "sms").exit_code == 0
    # When an update and an all-clear are sent for alert 1
    update = cli("alert", "update", "1", "community-alert", *VARS, "--yes", "--operator", "pc-1")
    assert update.exit_code == 0, update.output
    clear = cli("alert", "all-clear", "1", "--yes")
    assert clear.exit_code == 0, clear.output
    # Then each went to exactly alert 1's recipients, on their channels, minus the unsubscribed
    expected = reached - {(first[0], "sms")}
    assert targets(db, 2) == expected
    assert targets(db, 3) == expected
    # And the chain shows on both sides
    status = cli("alert", "status", "1").output
    assert "update: alert 2 community-alert [done]" in status
    assert "all-clear: alert 3 all-clear [done]" in status
    assert "update of alert 1" in cli("alert", "status", "2").output
    # An alert that would reach nobody is refused; a follow-up of one that reached nobody too
    nobody = cli(*send[:4], "E9", "--channels", "sms", *VARS, "--yes")
    assert nobody.exit_code == 2 and "would reach nobody" in nobody.output
    later = cli(*send, *VARS, "--yes", "--at", "2099-01-01 09:00")
    assert later.exit_code == 0, later.output
    assert cli("alert", "cancel", "4").exit_code == 0
    nobody = cli("alert", "update", "4", "community-alert", *VARS, "--yes")
    assert nobody.exit_code == 2 and "reached nobody" in nobody.output


def test_cancel_midway_sends_a_correction_to_those_reached(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        voice_rate=None,
        delivery_chunk_size=3,
        _env_file=None,
    )
    engine = create_db_engine(settings.database_url)
    upgrade(engine)
    engine = default_force(engine)
    sms = RecordingChannel(name="sms")
    rt = Runtime(settings, engine=engine, channels={"sms": sms})
    people = add_people(engine, [Person(channels=("sms",)) for _ in range(7)])
    dispatcher = RecordingDispatcher()
    alert = alerts.create_alert(
        rt,
        "community-alert",
        VARIABLES,
        ("sms",),
        Targeting(everyone=True),
        operator="pc-1",
        status="draft",
    )
    assert approval.submit(rt, dispatcher, alert, operator="pc-1") == "sending"
    # Given only the first chunk (3 of 7) was delivered before the cancel
    chunks = dispatcher.take()
    assert len(chunks) == 3
    deliver_chunk(rt, chunks[0])
    # When the alert is cancelled with a correction for those already reached
    assert approval.cancel(rt, alert.id, operator="sgt-2", reason="wrong street") == 4
    correction = followups.create_followup(
        rt, alert.id, "community-alert", VARIABLES, kind="correction", operator="sgt-2"
    )
    assert approval.submit(rt, dispatcher, correction, operator="sgt-2") == "sending"
    for chunk in dispatcher.take() + chunks[1:]:
        deliver_chunk(rt, chunk)
    # Then the rest never went out, and the three reached got the correction
    by_alert: dict[int, list[str]] = {}
    with engine.connect() as conn:
        for alert_id, to in conn.execute(select(Delivery.alert_id, Delivery.registrant_id)):
            by_alert.setdefault(alert_id, []).append(to)
    sent_to = [m.to for m in sms.sent]
    assert len(sent_to) == 6 and len(set(sent_to[:3])) == 3 and sent_to[3:] == sent_to[:3]
    assert sorted(by_alert[correction.id]) == people[:3]
    assert alerts.get_alert(rt, alert.id).status == "cancelled"
    steps = [(s.to_state, s.operator, s.reason) for s in lifecycle.history(engine, alert.id)]
    assert steps[-1] == ("cancelled", "sgt-2", "wrong street")
