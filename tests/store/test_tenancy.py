"""Forces as tenants: three forces in one database, each seeing only its own rows.

Both walls (docs/tenancy.md): the store's scoping of every statement (SQLite and PostgreSQL) and,
on PostgreSQL, row-level security behind it, which holds even for raw SQL the store never saw.
"""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import DBAPIError, StatementError
from sqlmodel import Session

from broadcast.errors import Conflict, NotFound
from broadcast.forces import registry
from broadcast.registrants import keywords, suppression
from broadcast.registrants import people as store
from broadcast.registrants.consent import ConsentSource
from broadcast.settings import Settings
from broadcast.store.tables import (
    ConsentLedgerEntry,
    Registrant,
    Subscription,
    SuppressedAddress,
)
from broadcast.store.tenancy import NoForceScope, national, scoped
from tests.store.conftest import KEY
from tests.store.factories import draft

CLI = ConsentSource(source="cli", operator="pc-test", wording_version="2026-11")


@pytest.fixture
def forces(engine: Engine) -> dict[str, Engine]:
    """The default force (id 1) renamed met, and two more: an engine working as each."""
    base = Settings(_env_file=None)  # type: ignore[call-arg]
    registry.amend(engine, base, "default", new_code="met", name="Metropolitan Police")
    registry.add(engine, base, "suffolk", "Suffolk Constabulary")
    registry.add(engine, base, "dyfed-powys", "Heddlu Dyfed-Powys Police")
    return {f.code: scoped(engine, f.id) for f in registry.all_forces(engine)}


def add(engine: Engine, **overrides: str) -> Registrant:
    with Session(engine, expire_on_commit=False) as session:
        person = store.add_registrant(
            session=session, draft=draft(**overrides), source=CLI, key=KEY
        )
        session.commit()
        return person


def people(engine: Engine) -> list[str | None]:
    with Session(engine) as session:
        return sorted(r.name for r in session.scalars(select(Registrant)))


def test_the_same_person_registers_with_two_forces_as_two_registrants(
    forces: dict[str, Engine],
) -> None:
    # Given someone living on a border, registered with the Met and with Suffolk
    met = add(forces["met"])
    suffolk = add(forces["suffolk"])
    # Then they are two registrants, each force's own
    assert met.id != suffolk.id
    assert (met.force_id, suffolk.force_id) == (1, 2)
    # And within one force an email or mobile is still one person's
    with pytest.raises(Conflict):
        add(forces["met"], name="Someone Else", mobile="07920 654321")


def test_a_query_that_names_no_force_sees_only_its_own_forces_rows(
    forces: dict[str, Engine],
) -> None:
    add(forces["met"], name="Met One")
    add(forces["met"], name="Met Two", email="two@example.com", mobile="07920 654322")
    add(forces["suffolk"], name="Suffolk One")
    add(forces["dyfed-powys"], name="Dyfed One")
    # Deliberately unscoped statements (no force_id anywhere) under each force
    assert people(forces["met"]) == ["Met One", "Met Two"]
    assert people(forces["suffolk"]) == ["Suffolk One"]
    with forces["dyfed-powys"].connect() as conn:
        assert conn.execute(select(func.count()).select_from(Registrant)).scalar() == 1
        # joins and subqueries too
        joined = (
            select(func.count())
            .select_from(Subscription)
            .join(Registrant, Registrant.id == Subscription.registrant_id)
        )
        assert conn.execute(joined).scalar() == 2  # sms and email of its one person
        inner = select(Subscription.registrant_id)
        assert len(conn.execute(select(Registrant.id).where(Registrant.id.in_(inner))).all()) == 1
    # An UPDATE with no WHERE touches only the force's own rows
    with forces["suffolk"].begin() as conn:
        changed = conn.execute(update(Registrant).values(language="cy")).rowcount
    assert changed == 1
    with national(forces["met"]).connect() as conn:
        languages = dict(conn.execute(select(Registrant.name, Registrant.language)).all())
    assert languages == {"Met One": "en", "Met Two": "en", "Suffolk One": "cy", "Dyfed One": "en"}


def test_lookups_of_another_forces_registrant_say_not_found(forces: dict[str, Engine]) -> None:
    suffolk = add(forces["suffolk"])
    with Session(forces["met"]) as session:
        for ref in (str(suffolk.id), "jo@example.com", "07911 123456"):
            with pytest.raises(NotFound) as found:
                store.find_registrant(session=session, ref=ref)
            # the same words as for someone who does not exist at all
            assert str(found.value) == f"no registrant matches '{ref}'"


def test_a_stop_to_one_force_leaves_the_others_alone(forces: dict[str, Engine]) -> None:
    add(forces["met"])
    add(forces["suffolk"])
    settings = Settings(_env_file=None, suppression_key="k" * 32)  # type: ignore[call-arg]
    key = settings.suppression_secret
    # When the person texts STOP to the Met's number
    with Session(forces["met"]) as session:
        keywords.handle_sms(
            session=session, from_number="+447911123456", body="STOP", settings=settings
        )
        session.commit()
    # Then the Met stops texting them and suppresses the number, in its own list only
    for force, status in (("met", "unsubscribed"), ("suffolk", "active")):
        with Session(forces[force]) as session:
            sms = session.scalars(select(Subscription).where(Subscription.channel == "sms")).one()
            assert sms.status == status
            held = suppression.suppressed_among(
                connection=session.connection(), pairs=[("sms", "+447911123456")], key=key
            )
            assert bool(held) == (force == "met")
    with national(forces["met"]).connect() as conn:
        rows = conn.execute(select(SuppressedAddress.force_id)).scalars().all()
    assert rows == [1]


def test_a_row_written_without_a_force_is_refused(engine: Engine) -> None:
    # Neither the platform's own view nor an engine never scoped can write a force's row
    for unscoped in (national(engine), engine.execution_options(force_id=None)):
        # (SQLAlchemy wraps the column default's error in a StatementError that names it)
        refused = pytest.raises((NoForceScope, StatementError), match="without a force scope")
        with refused, Session(unscoped) as session:
            store.add_registrant(session=session, draft=draft(), source=CLI, key=KEY)
            session.commit()
    assert people(national(engine)) == []


def test_the_ledger_of_each_force_holds_only_its_events(forces: dict[str, Engine]) -> None:
    add(forces["met"])
    add(forces["suffolk"])
    with Session(forces["suffolk"]) as session:
        events = session.scalars(select(ConsentLedgerEntry)).all()
    assert events and {e.force_id for e in events} == {2}


# Row-level security is PostgreSQL's; SQLite has the store's wall only.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_row_level_security_hides_other_forces_from_raw_sql(forces: dict[str, Engine]) -> None:
    add(forces["met"], name="Met One")
    add(forces["suffolk"], name="Suffolk One")
    # SQL the store never parses (exec_driver_sql passes no statement hook), under Suffolk
    with forces["suffolk"].connect() as conn:
        names = [r[0] for r in conn.exec_driver_sql("SELECT name FROM registrant")]
        ledger = conn.exec_driver_sql("SELECT DISTINCT force_id FROM consent_ledger").all()
        changed = conn.exec_driver_sql("UPDATE registrant SET language = 'cy'").rowcount
        conn.commit()
    assert names == ["Suffolk One"] and ledger == [(2,)] and changed == 1
    # Writing a row into another force is refused by the policy's check
    with pytest.raises(DBAPIError, match="row-level security"), forces["suffolk"].begin() as conn:
        conn.execute(text("UPDATE registrant SET force_id = 1"))
    # And a transaction that set no force at all, as the tenant role, sees nothing
    with national(forces["met"]).connect() as conn:
        conn.exec_driver_sql("SET LOCAL ROLE broadcast_tenant")
        assert conn.exec_driver_sql("SELECT count(*) FROM registrant").scalar() == 0
