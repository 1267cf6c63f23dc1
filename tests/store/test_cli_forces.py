"""`broadcast forces ...` and `--force`: three forces managed and worked as from the CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from broadcast.settings import get_settings
from broadcast.store.tables import AuditEvent, Force
from broadcast.store.tenancy import national
from cli import app

runner = CliRunner()


@pytest.fixture
def platform(database_url: str, engine, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BROADCAST_DATABASE_URL", database_url)
    get_settings.cache_clear()
    for args in (
        ["forces", "amend", "default", "--code", "met", "--name", "Metropolitan Police"],
        ["forces", "add", "suffolk", "--name", "Suffolk Constabulary", "--set", "sms_rate=10/1s"],
        [
            "forces",
            "add",
            "dyfed-powys",
            "--name",
            "Heddlu Dyfed-Powys Police",
            "--host",
            "Alerts.Dyfed-Powys.Police.UK",
            "--set",
            "languages=cy,en",
            "--set",
            "area_postcodes=SA,LD,SY",
        ],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_forces_are_listed_and_shown_with_what_they_set_themselves(platform: None) -> None:
    code, out = invoke("forces", "list", "--json")
    assert code == 0
    listed = {f["code"]: f for f in json.loads(out)}
    assert sorted(listed) == ["dyfed-powys", "met", "suffolk"]
    welsh = listed["dyfed-powys"]
    assert welsh["hosts"] == ["alerts.dyfed-powys.police.uk"]
    assert welsh["profile"] == {"area_postcodes": "SA,LD,SY", "languages": "cy,en"}
    # What it leaves unset is the platform's
    assert welsh["effective"]["sms_rate"] is None and listed["suffolk"]["effective"]["sms_rate"]
    code, out = invoke("forces", "show", "suffolk")
    assert code == 0 and "Suffolk Constabulary" in out and "10/1s  (own)" in out


def test_each_command_works_as_the_force_it_is_given(platform: None) -> None:
    person = ["registrants", "add", "--name", "Jo Border", "--email", "jo@example.com"]
    person += ["--channels", "email", "--areas", "SW1A"]
    # The same person signs up with two forces
    assert invoke("--force", "met", *person)[0] == 0
    assert invoke("--force", "suffolk", *person)[0] == 0
    # And each force lists only its own
    for force, expected in (("met", 1), ("suffolk", 1), ("dyfed-powys", 0)):
        code, out = invoke("--force", force, "registrants", "list", "--format", "json")
        assert code == 0, out
        assert len(json.loads(out)) == expected, force


def test_a_force_must_be_named_when_there_are_several(platform: None) -> None:
    code, out = invoke("registrants", "list")
    assert code == 2
    assert out.strip().splitlines() == [
        "Error: this platform has 3 forces (dyfed-powys, met, suffolk): choose one with "
        "--force CODE or BROADCAST_FORCE"
    ]


def test_an_unknown_force_is_one_line_naming_the_known_ones(
    platform: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out = invoke("--force", "kent", "registrants", "list")
    assert code == 2
    assert out.strip() == "Error: unknown force 'kent'; known forces: dyfed-powys, met, suffolk"
    # BROADCAST_FORCE is the default for --force
    monkeypatch.setenv("BROADCAST_FORCE", "suffolk")
    get_settings.cache_clear()
    assert invoke("registrants", "list")[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forces", "add", "Bad Code", "--name", "X"], "a force code is 2-40 lower-case"),
        (["forces", "add", "kent", "--name", "Kent", "--set", "voice_rate=lots"], "VOICE_RATE"),
        (["forces", "add", "kent", "--name", "Kent", "--set", "database_url=x"], "cannot set"),
        (["forces", "add", "met", "--name", "Again"], "already exists"),
        (
            ["forces", "add", "kent", "--name", "Kent", "--host", "alerts.dyfed-powys.police.uk"],
            "already force dyfed-powys's",
        ),
        (["forces", "amend", "kent", "--name", "Kent"], "unknown force 'kent'"),
    ],
)
def test_bad_force_changes_are_one_line_and_change_nothing(
    platform: None, args: list[str], message: str
) -> None:
    before = invoke("forces", "list", "--json")[1]
    code, out = invoke(*args)
    assert code == 2 and len(out.strip().splitlines()) == 1 and message in out, out
    assert invoke("forces", "list", "--json")[1] == before


def test_each_change_to_a_force_is_in_its_own_audit_log(platform: None, engine) -> None:  # type: ignore[no-untyped-def]
    assert invoke("forces", "amend", "suffolk", "--set", "sms_from=+447700900111")[0] == 0
    with national(engine).connect() as conn:
        rows = conn.execute(
            select(Force.code, AuditEvent.action, AuditEvent.details)
            .join(Force, Force.id == AuditEvent.force_id)
            .where(AuditEvent.action.like("force.%"))
            .order_by(AuditEvent.id)
        ).all()
    assert [(code, action) for code, action, _ in rows] == [
        ("met", "force.amended"),
        ("suffolk", "force.added"),
        ("dyfed-powys", "force.added"),
        ("suffolk", "force.amended"),
    ]
    # What was set is named; its value (a number) is not
    assert json.loads(rows[-1][2]) == {"set": ["sms_from"]}
    assert "+447700900111" not in str(rows)
