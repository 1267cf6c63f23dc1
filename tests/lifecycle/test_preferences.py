"""A registrant's quiet hours: `registrants amend --quiet-hours` and the manage page."""

from __future__ import annotations

from broadcast.store.tables import Registrant
from tests.web.conftest import Web, csrf_token, make_web, smtp, twilio, web  # noqa: F401
from tests.web.test_manage import active_registrant, signer


def quiet_of(engine, registrant_id: int) -> str | None:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return (
            conn.execute(Registrant.__table__.select().where(Registrant.id == registrant_id))
            .one()
            .quiet_hours
        )


def test_amend_quiet_hours(db, cli) -> None:  # type: ignore[no-untyped-def]
    added = cli(
        "registrants",
        "add",
        "--name",
        "Sam",
        "--mobile",
        "07911 123456",
        "--channels",
        "sms,voice",
        "--areas",
        "SW1A",
    )
    assert added.exit_code == 0, added.output
    rid = 1
    done = cli("registrants", "amend", str(rid), "--quiet-hours", "22:30-07:00")
    assert done.exit_code == 0 and "quiet_hours" in done.output, done.output
    assert quiet_of(db, rid) == "22:30-07:00"
    assert cli("registrants", "amend", str(rid), "--quiet-hours", "off").exit_code == 0
    assert quiet_of(db, rid) == "off"
    bad = cli("registrants", "amend", str(rid), "--quiet-hours", "late")
    assert bad.exit_code == 2 and "21:00-08:00" in bad.output
    assert cli("registrants", "amend", str(rid), "--quiet-hours", "default").exit_code == 0
    assert quiet_of(db, rid) is None


def test_manage_page_sets_quiet_hours(web: Web) -> None:  # noqa: F811
    registrant = active_registrant(web)
    path = f"/manage/{signer(web).token(registrant.public_id, 'manage')}"
    with web.client() as client:
        page = client.get(path)
        assert "Quiet hours for calls" in page.text and "21:00-08:00" in page.text
        form = {"action": "quiet_hours", "quiet_hours": "nonsense"}
        refused = client.post(path, data=form | {"csrf_token": csrf_token(client, path)})
        assert refused.status_code == 400 and "must look like" in refused.text
        form["quiet_hours"] = "22:00-07:30"
        saved = client.post(path, data=form | {"csrf_token": csrf_token(client, path)})
    assert saved.status_code == 200 and "quiet hours have been saved" in saved.text
    assert 'value="22:00-07:30"' in saved.text
    stored = web.registrant(email="alex@example.org")
    assert stored is not None and stored.quiet_hours == "22:00-07:30"
