"""A force's own template folder overrides the national templates by name and falls back to
them for the rest; its templates may use the national shared parts. Three forces: one with its
own folder, two on the national templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.deliver import deliver_chunk
from broadcast.delivery.dispatch import RecordingDispatcher
from broadcast.delivery.planning import Targeting
from broadcast.errors import ConfigurationError, NotFound
from broadcast.forces import registry
from broadcast.messages.render import DEFAULT_DIRECTORY, library
from broadcast.runtime import Runtime
from tests.delivery.factories import Person, RecordingChannel, add_people
from tests.support.forces import add_sharing_senders

VARS = {"headline": "Road closed", "message": "Avoid the high street tonight."}


def own_folder(tmp_path: Path) -> Path:
    """Suffolk's folder: its own community-alert (SMS in its words, email on the national
    base layout) and a template only it has."""
    folder = tmp_path / "suffolk-templates"
    shutil.copytree(DEFAULT_DIRECTORY / "community-alert", folder / "community-alert")
    (folder / "community-alert" / "sms.txt").write_text(
        "SUFFOLK POLICE: {{ headline }}. {{ message }} Stop: {{ unsubscribe_url }}\n"
    )
    shutil.copytree(DEFAULT_DIRECTORY / "all-clear", folder / "harvest-thefts")
    return folder


def test_a_forces_folder_overrides_by_name_and_falls_back(
    runtime: Runtime, channels: dict[str, RecordingChannel], tmp_path: Path
) -> None:
    base = runtime.platform_settings
    folder = own_folder(tmp_path)
    # Sending as the platform, so through this runtime's recording channels
    engine = runtime.base_engine
    own = add_sharing_senders(engine, base, "suffolk", {"templates_dir": str(folder)})
    suffolk = runtime.for_force(own.id)
    dyfed = runtime.for_force(add_sharing_senders(engine, base, "dyfed").id)
    # Suffolk's community-alert is its own; its email, and every other template, still work
    assert (
        "SUFFOLK POLICE"
        in suffolk.template("community-alert")
        .render("sms", VARS, _recipient(), force_name="S", public_url="https://s", max_segments=3)
        .body
    )
    assert suffolk.template("fraud-warning").info == runtime.template("fraud-warning").info
    assert "harvest-thefts" in library(folder, base.templates_dir).names()
    assert "missing-person" in library(folder, base.templates_dir).names()
    # Other forces do not see Suffolk's own templates
    with pytest.raises(NotFound):
        dyfed.template("harvest-thefts")
    # And an alert sent by each force carries its own words
    sent = {}
    for rt in (suffolk, dyfed, runtime):
        add_people(rt.engine, [Person(channels=("sms", "email"))])
        dispatcher = RecordingDispatcher()
        alert = alerts.create_alert(
            rt, "community-alert", VARS, ("sms", "email"), Targeting(everyone=True), operator="pc"
        )
        approval.submit(rt, dispatcher, alert, operator="pc")
        before = len(channels["sms"].sent)
        for chunk in dispatcher.take():
            deliver_chunk(rt, chunk)
        sent[rt.force.code] = channels["sms"].sent[before].body
    assert sent["suffolk"].startswith("SUFFOLK POLICE: Road closed.")
    assert not sent["dyfed"].startswith("SUFFOLK") and not sent["default"].startswith("SUFFOLK")
    assert all("<html" in m.html for m in channels["email"].sent if m.html)  # the national base


def test_a_forces_folder_that_is_missing_is_a_clear_error(runtime: Runtime, tmp_path: Path) -> None:
    base = runtime.platform_settings
    force = registry.add(
        runtime.base_engine,
        base,
        "suffolk",
        "Suffolk",
        profile={"templates_dir": str(tmp_path / "nowhere")},
    )
    with pytest.raises(ConfigurationError, match="does not exist"):
        runtime.for_force(force.id).template("community-alert")


def _recipient():  # type: ignore[no-untyped-def]
    from broadcast.messages.render import RecipientContext

    return RecipientContext(
        manage_url="https://s/manage/t", unsubscribe_url="https://s/unsubscribe/t", name=""
    )
