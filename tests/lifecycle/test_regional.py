"""A regional alert through the real CLI (embedded, outbox channels), three forces, SQLite and
PostgreSQL: one alert per receiving force in its name, the sender's own part out at once, the
others waiting for their own force's approval or rejection, and `alert status` on any part
showing the whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from broadcast.channels.outbox import read_json_lines
from broadcast.forces import registry
from broadcast.settings import get_settings
from broadcast.store.engine import engine_for
from broadcast.store.tenancy import scoped
from tests.delivery.conftest import clean_postgres
from tests.delivery.factories import Person, add_people

SEND = ["alert", "send", "fraud-warning", "--all", "--channels", "sms", "--yes"]
FRAUD = [
    "--var",
    "scam=Courier fraud",
    "--var",
    "advice=Police will never collect your bank card.",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def platform(request, tmp_path: Path, monkeypatch, cli) -> Iterator[dict[str, Engine]]:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'b.db'}"
    else:
        url = clean_postgres(request.getfixturevalue("postgres_url"))
    monkeypatch.setenv("BROADCAST_DATABASE_URL", url)
    monkeypatch.setenv("BROADCAST_VOICE_RATE", "")
    get_settings.cache_clear()
    for args in (
        ["forces", "amend", "default", "--code", "met", "--name", "Metropolitan Police"],
        ["forces", "add", "suffolk", "--name", "Suffolk Constabulary"],
        ["forces", "add", "essex", "--name", "Essex Police"],
    ):
        done = cli(*args)
        assert done.exit_code == 0, done.output
    engine = engine_for(url)
    forces = {f.code: scoped(engine, f.id) for f in registry.all_forces(engine)}
    for code, people in (("met", 2), ("suffolk", 3), ("essex", 4)):
        add_people(forces[code], [Person(channels=("sms",)) for _ in range(people)])
    yield forces


def texts(tmp_path: Path) -> list[str]:
    """Every force's SMS outbox (the Met's at outbox/, the others' at outbox/<code>/)."""
    return [m["body"] for p in (tmp_path / "outbox").rglob("sms.jsonl") for m in read_json_lines(p)]


def ids_of(output: str) -> dict[str, int]:
    line = next(x for x in output.splitlines() if x.startswith("alert ids: "))
    pairs = line.removeprefix("alert ids: ").split(", ")
    return {code: int(n) for code, n in (p.split() for p in pairs)}


def test_a_regional_alert_is_one_alert_per_force_each_with_its_approval(
    platform, cli, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    # The Met sends a fraud warning to its own registrants and Suffolk's and Essex's
    sent = cli(
        "--force", "met", *SEND, *FRAUD, "--forces", "met,suffolk,essex", "--operator", "pc-m"
    )
    assert sent.exit_code == 0, sent.output
    for line in ("met (Metropolitan Police): sms 2", "suffolk (Suffolk Constabulary): sms 3;"):
        assert line in sent.output, sent.output
    ids = ids_of(sent.output)
    assert len(set(ids.values())) == 3
    assert f"alert {ids['suffolk']} awaits Suffolk Constabulary's approval" in sent.output
    # The Met's part went out at once, in the Met's name; the others wait
    out = texts(tmp_path)
    assert len(out) == 2 and all(t.startswith("Metropolitan Police") for t in out), out
    whole = json.loads(cli("--force", "met", "alert", "status", str(ids["met"]), "--json").output)
    parts = {p["force"]: p for p in whole["regional"]["parts"]}
    assert {c: p["status"] for c, p in parts.items()} == {
        "met": "done",
        "suffolk": "pending-approval",
        "essex": "pending-approval",
    }
    # Suffolk's part is Suffolk's: the Met cannot approve it, nor even see it
    seen = cli("--force", "met", "alert", "status", str(ids["suffolk"]))
    assert seen.exit_code == 2 and f"no alert {ids['suffolk']}" in seen.output
    # Suffolk's approver releases it: Suffolk's registrants get it in Suffolk's name
    ok = cli("--force", "suffolk", "alert", "approve", str(ids["suffolk"]), "--operator", "sgt-s")
    assert ok.exit_code == 0, ok.output
    out = texts(tmp_path)
    assert len(out) == 5 and sum(t.startswith("Suffolk Constabulary") for t in out) == 3
    # Essex declines: none of its registrants get it
    no = cli(
        "--force",
        "essex",
        "alert",
        "reject",
        str(ids["essex"]),
        "--reason",
        "not here",
        "--operator",
        "sgt-e",
    )
    assert no.exit_code == 0, no.output
    assert len(texts(tmp_path)) == 5
    # Any part shows the whole
    shown = cli("--force", "suffolk", "alert", "status", str(ids["suffolk"]))
    assert "Regional alert: 3 forces, 5 of 5 deliveries sent" in shown.output, shown.output
    assert f"essex (Essex Police): alert {ids['essex']} [rejected] none planned" in shown.output
    # Each force's audit log says who asked it, from where
    audit = cli("--force", "essex", "audit", "--json")
    assert "alert.regional-part" in audit.output and '"from_force": "met"' in audit.output


def test_unknown_forces_and_options_a_regional_alert_cannot_take(platform, cli) -> None:  # type: ignore[no-untyped-def]
    unknown = cli("--force", "met", *SEND, *FRAUD, "--forces", "met,kent")
    assert unknown.exit_code == 2
    assert "no force 'kent'; known forces: essex, met, suffolk" in unknown.output
    later = cli("--force", "met", *SEND, *FRAUD, "--forces", "suffolk", "--at", "2030-01-01 09:00")
    assert later.exit_code == 2 and "is sent now" in later.output
    assert "Traceback" not in unknown.output + later.output
