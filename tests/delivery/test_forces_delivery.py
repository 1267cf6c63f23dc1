"""An alert is its force's: planned over its registrants only, sent in its name with links to its
pages, and handed to workers as that force (three forces, SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.delivery.records import load_alert
from broadcast.forces import registry
from broadcast.runtime import Runtime
from broadcast.store.tables import Delivery, Registrant
from broadcast.store.tenancy import national
from broadcast.vocabulary import AlertState
from tests.delivery.factories import Person, RecordingChannel, add_people

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def _forces(rt: Runtime) -> dict[str, registry.ForceInfo]:
    base = rt.platform_settings
    registry.amend(rt.base_engine, base, "default", new_code="met", name="Metropolitan Police")
    registry.add(
        rt.base_engine,
        base,
        "suffolk",
        "Suffolk Constabulary",
        profile={"public_url": "https://alerts.suffolk.police.uk", "sms_from": "+447700900111"},
    )
    registry.add(rt.base_engine, base, "dyfed-powys", "Heddlu Dyfed-Powys Police")
    return {f.code: f for f in registry.all_forces(rt.base_engine)}


def test_an_alert_reaches_only_its_forces_registrants_in_its_name(runtime: Runtime) -> None:
    forces = _forces(runtime)
    recording = {name: RecordingChannel(name=name) for name in ("sms", "email")}
    suffolk = Runtime(
        runtime.platform_settings,
        engine=runtime.base_engine,
        channels=recording,
        force=forces["suffolk"],
    )
    # Given the same person registered with the Met and with Suffolk (each force's first person
    # has the same email and mobile), and others in each force
    add_people(runtime.engine, [Person(areas=["IP1"])] * 2)
    add_people(suffolk.engine, [Person(areas=["IP1"])] * 3)
    add_people(runtime.for_force(forces["dyfed-powys"].id).engine, [Person(areas=["IP1"])] * 2)
    # When Suffolk sends an alert to everyone in IP1
    dispatcher = RecordingDispatcher()
    alert = alerts.create_alert(
        suffolk,
        "community-alert",
        VARS,
        ("sms", "email"),
        Targeting(areas=("IP1",)),
        operator="pc-s",
    )
    approval.submit(suffolk, dispatcher, alert, operator="pc-s")
    chunks = dispatcher.take()
    # Then its chunks name Suffolk, and only Suffolk's three registrants get it, once a channel
    assert {c.force_id for c in chunks} == {forces["suffolk"].id}
    for chunk in chunks:
        deliver_chunk(suffolk, chunk)
    assert sorted(len(c.sent) for c in recording.values()) == [3, 3]
    with national(runtime.base_engine).connect() as conn:
        rows = conn.execute(select(Delivery.force_id, Delivery.registrant_id, Delivery.state))
        planned = [r for r in rows if r.force_id == forces["suffolk"].id]
        # (planned over Suffolk's registrants only: an INSERT ... SELECT reads in its force too)
        assert len(planned) == 6 and {r.state for r in planned} == {"sent"}
        suffolk_people = conn.execute(
            select(Registrant.id).where(Registrant.force_id == forces["suffolk"].id)
        )
        assert {r.registrant_id for r in planned} == set(suffolk_people.scalars())
    assert load_alert(suffolk.engine, alert.id).status == AlertState.COMPLETED  # type: ignore[arg-type,union-attr]
    # And each message is signed by Suffolk, its links on Suffolk's pages
    email = recording["email"].sent[0]
    assert "Suffolk Constabulary" in email.body
    assert email.unsubscribe_url and email.unsubscribe_url.startswith(
        "https://alerts.suffolk.police.uk/"
    )
    assert "Metropolitan" not in email.body + (email.html or "")
    # And the Met, working as itself, sees neither the alert nor its deliveries
    with runtime.engine.connect() as conn:
        assert conn.execute(select(Delivery.id)).first() is None


def test_a_worker_works_as_each_jobs_force(runtime: Runtime) -> None:
    forces = _forces(runtime)
    # A job's runtime is its force's: scoped to it, with its settings and links
    suffolk = runtime.for_force(forces["suffolk"].id)
    assert suffolk.force.code == "suffolk" and suffolk.settings.sms_from == "+447700900111"
    assert suffolk.signer.url("ab" * 16, "manage").startswith("https://alerts.suffolk.police.uk/")
    assert runtime.for_force(forces["suffolk"].id) is suffolk  # built once per process
    # A force with senders of its own gets channels of its own; limiters stay the platform's
    assert suffolk._channels is not runtime._channels
    assert suffolk.limiter("sms") is runtime.limiter("sms")


def test_a_force_at_its_own_address_gets_channels_that_call_back_there(runtime: Runtime) -> None:
    # Given a force named as the platform and sending as it, but at a host of its own
    platform = runtime.platform_settings
    force = registry.add(
        runtime.base_engine, platform, "essex", platform.force_name, hosts=["alerts.essex.test"]
    )
    essex = runtime.for_force(force.id)
    # Then it is at that host, and its channels are its own: a Twilio channel's status
    # callbacks go to the address it was built with, and must reach this force's pages
    assert essex.settings.public_url == "https://alerts.essex.test"
    assert essex._channels is not runtime._channels
