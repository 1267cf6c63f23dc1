from __future__ import annotations

import time
from pathlib import Path

import pytest
from markupsafe import escape

from broadcast.errors import ConfigurationError, InvalidInput, NotFound
from broadcast.messages.render import (
    DEFAULT_DIRECTORY,
    RecipientContext,
    TemplateLibrary,
    list_templates,
    load_template,
    preview,
    render,
)

BUILT_INS = {
    "community-alert",
    "burglary-pattern",
    "fraud-warning",
    "missing-person",
    "transfer-notice",
    "confirm-subscription",
}
# A long real force name and a realistic link length, so the SMS budget is tested honestly.
FORCE = "Metropolitan Police Service"
PUBLIC = "https://alerts.example.police.uk"
RECIPIENT = RecipientContext(
    manage_url=f"{PUBLIC}/m/Tok3nTok3nTok3nTok3nTok3nTok3nTo",
    unsubscribe_url=f"{PUBLIC}/u/Tok3nTok3nTok3nTok3nTok3nTok3nTo",
    name="Priya Shah",
    confirm_url=f"{PUBLIC}/c/Conf1rmConf1rmConf1rmConf1rmConf",
    confirm_code="482913",
)


def write_template(root: Path, name: str, files: dict[str, str], toml: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "template.toml").write_text(toml, encoding="utf-8")
    for filename, text in files.items():
        (folder / filename).write_text(text, encoding="utf-8")


SIMPLE_TOML = """
title = "Test"
description = "A test template"
channels = ["sms", "email"]
[variables.message]
description = "The message"
example = "Hello"
"""
SIMPLE_FILES = {
    "sms.txt": "{{ message }} {{ manage_url }}",
    "email_subject.txt": "About {{ message }}",
    "email.txt": "{{ message }}\n{{ manage_url }}",
    "email.html": "<p>{{ message }}</p><a href='{{ manage_url }}'>manage</a>",
}


@pytest.fixture
def simple(tmp_path: Path) -> TemplateLibrary:
    write_template(tmp_path, "simple", SIMPLE_FILES, SIMPLE_TOML)
    return TemplateLibrary(tmp_path)


def test_built_in_templates_are_listed_with_their_description() -> None:
    infos = {info.name: info for info in list_templates()}

    assert set(infos) >= BUILT_INS
    for info in infos.values():
        assert info.title and info.description
        assert set(info.channels) == {"sms", "email", "voice"}
        for variable in info.variables:
            assert variable.description
            assert variable.example or not variable.required, (info.name, variable.name)


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_every_channel_of_every_built_in_carries_the_way_out(name: str) -> None:
    template = load_template(name)
    examples = template.info.examples

    messages = {
        ch: render(template, ch, examples, RECIPIENT, force_name=FORCE, public_url=PUBLIC)
        for ch in template.channels
    }

    assert RECIPIENT.manage_url in messages["sms"].body
    assert "Manage/stop: " + RECIPIENT.manage_url in messages["sms"].body
    assert RECIPIENT.manage_url in messages["email"].body
    assert f'href="{RECIPIENT.manage_url}"' in messages["email"].html
    assert f">{RECIPIENT.manage_url}</a>" in messages["email"].html  # visible, not just a word
    assert "press 9 to stop these calls" in messages["voice"].body.lower()
    assert messages["email"].subject and "\n" not in messages["email"].subject
    assert FORCE in messages["sms"].body


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_built_in_sms_fits_two_gsm7_segments_with_sample_values(name: str) -> None:
    template = load_template(name)

    sms = render(
        template, "sms", template.info.examples, RECIPIENT, force_name=FORCE, public_url=PUBLIC
    ).sms

    assert sms is not None
    assert sms.encoding == "GSM-7", sms.text
    assert sms.segments <= 2, (sms.length, sms.text)


@pytest.mark.parametrize("name", sorted(BUILT_INS))
def test_voice_and_text_bodies_are_free_of_markup(name: str) -> None:
    template = load_template(name)
    msgs = preview(template, template.info.examples, force_name=FORCE, public_url=PUBLIC)

    for channel in ("sms", "voice"):
        assert "<" not in msgs[channel].body and "{{" not in msgs[channel].body
    assert "<" not in msgs["email"].body and "{%" not in msgs["email"].body


def test_confirm_subscription_uses_the_opt_in_values_per_channel() -> None:
    msgs = preview(
        "confirm-subscription", {}, force_name=FORCE, public_url=PUBLIC, recipient=RECIPIENT
    )

    assert "482913" in msgs["sms"].body
    assert RECIPIENT.confirm_url in msgs["email"].body
    assert f'href="{RECIPIENT.confirm_url}"' in msgs["email"].html
    assert "press 1" in msgs["voice"].body.lower()
    # Without a code the SMS cannot be rendered: a clear error, not "your code is "
    no_code = RecipientContext(manage_url=RECIPIENT.manage_url)
    with pytest.raises(InvalidInput, match="confirm_code"):
        render("confirm-subscription", "sms", {}, no_code)


def test_missing_variable_is_an_error_naming_variable_and_template() -> None:
    # Given the burglary template and no `area`
    variables = {"period": "since Monday"}
    # When rendering, Then the error names both, before anything is rendered
    with pytest.raises(InvalidInput, match=r"'burglary-pattern' needs area") as caught:
        render("burglary-pattern", "sms", variables, RECIPIENT)
    assert caught.value.field == "area"


def test_unknown_and_reserved_variables_are_refused() -> None:
    with pytest.raises(InvalidInput, match="no variable hedline"):
        render(
            "community-alert", "sms", {"headline": "x", "message": "y", "hedline": "z"}, RECIPIENT
        )
    with pytest.raises(InvalidInput, match="manage_url is set per registrant"):
        render(
            "community-alert",
            "sms",
            {"headline": "x", "message": "y", "manage_url": "https://evil.example"},
            RECIPIENT,
        )


def test_optional_variable_defaults_apply() -> None:
    msgs = preview("transfer-notice", {}, force_name=FORCE, public_url=PUBLIC)

    assert "the Police Message Broadcast service" in msgs["sms"].body
    assert "alerts.example.police.uk." in msgs["voice"].body  # public_url, read aloud


def test_html_is_autoescaped_but_text_channels_are_not() -> None:
    evil = {"headline": "<script>alert(1)</script>", "message": "Tom & Jerry <b>"}

    msgs = preview("community-alert", evil, force_name=FORCE, public_url=PUBLIC)

    assert "<script>" not in msgs["email"].html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in msgs["email"].html
    assert "Tom &amp; Jerry &lt;b&gt;" in msgs["email"].html
    assert "<script>alert(1)</script>" in msgs["email"].subject
    assert "<script>alert(1)</script>" in msgs["email"].body
    assert "Tom & Jerry <b>" in msgs["voice"].body


def test_manage_link_with_ampersand_is_escaped_in_html() -> None:
    recipient = RecipientContext(manage_url=f"{PUBLIC}/m?t=abc&s=def")

    msg = render("community-alert", "email", {"headline": "h", "message": "m"}, recipient)

    assert f'href="{escape(recipient.manage_url)}"' in msg.html


def test_unknown_template_lists_the_known_names() -> None:
    with pytest.raises(NotFound, match="no template 'burglery'.*burglary-pattern.*fraud-warning"):
        load_template("burglery")


def test_over_limit_sms_is_refused() -> None:
    long = {"headline": "Road closed", "message": "Please avoid the area. " * 40}

    with pytest.raises(InvalidInput, match="over the limit of 6"):
        render("community-alert", "sms", long, RECIPIENT)
    assert render("community-alert", "sms", long, RECIPIENT, max_segments=10).sms.segments == 7


def test_sms_is_downgraded_before_counting() -> None:
    variables = {
        "headline": "Don\u2019t open the door",
        "message": "Callers \u2013 fake police\u2026",
    }

    msg = render("community-alert", "sms", variables, RECIPIENT)

    assert msg.sms.encoding == "GSM-7"
    assert "Don't open the door" in msg.body and "Callers - fake police..." in msg.body


def test_default_directory_is_the_repository_templates_folder() -> None:
    assert Path(__file__).resolve().parent.parent / "templates" == DEFAULT_DIRECTORY


def test_a_force_template_in_its_own_directory(simple: TemplateLibrary) -> None:
    template = simple.load("simple")

    msg = template.render("sms", {"message": "Hi"}, RECIPIENT, force_name="F", public_url="u")

    assert msg.body == f"Hi {RECIPIENT.manage_url}"
    assert template.required_variables == ("message",)
    assert template.channels == ("sms", "email")
    assert [i.name for i in simple.list_templates()] == ["simple"]
    with pytest.raises(InvalidInput, match="no voice message"):
        template.render("voice", {"message": "Hi"}, RECIPIENT)


def test_template_without_the_manage_link_is_refused(tmp_path: Path) -> None:
    files = {**SIMPLE_FILES, "sms.txt": "{{ message }}"}
    write_template(tmp_path, "leaky", files, SIMPLE_TOML)

    with pytest.raises(ConfigurationError, match="no manage/unsubscribe link"):
        TemplateLibrary(tmp_path).load("leaky").render("sms", {"message": "x"}, RECIPIENT)


def test_undeclared_variable_is_caught_when_loading(tmp_path: Path) -> None:
    files = {**SIMPLE_FILES, "email.txt": "{{ mesage }} {{ manage_url }}"}
    write_template(tmp_path, "typo", files, SIMPLE_TOML)

    with pytest.raises(ConfigurationError, match="uses mesage"):
        TemplateLibrary(tmp_path).load("typo")


def test_bad_folder_is_a_configuration_error(tmp_path: Path) -> None:
    write_template(tmp_path, "nofile", {"sms.txt": "x"}, SIMPLE_TOML)
    write_template(tmp_path, "syntax", {**SIMPLE_FILES, "sms.txt": "{{ message "}, SIMPLE_TOML)
    library = TemplateLibrary(tmp_path)

    with pytest.raises(ConfigurationError, match="needs email_subject.txt"):
        library.load("nofile")
    with pytest.raises(ConfigurationError, match="syntax/sms.txt line 1"):
        library.load("syntax")


def test_language_variant_is_chosen_for_the_recipient(tmp_path: Path) -> None:
    files = {**SIMPLE_FILES, "sms.cy.txt": "Neges: {{ message }} {{ manage_url }}"}
    write_template(tmp_path, "simple", files, SIMPLE_TOML)
    template = TemplateLibrary(tmp_path).load("simple")
    welsh = RecipientContext(manage_url="https://x.example/m/1", language="cy-GB")

    assert template.render("sms", {"message": "Hi"}, welsh).body.startswith("Neges: Hi")
    assert template.render("email", {"message": "Hi"}, welsh).subject == "About Hi"
    assert template.languages == ["cy"]


def test_rendering_is_fast() -> None:
    # Templates are compiled once; a render is a context merge plus the compiled function.
    template = load_template("burglary-pattern")
    variables = template.info.examples
    render(template, "sms", variables, RECIPIENT)
    n = 5000

    started = time.perf_counter()
    for i in range(n):
        template.render("sms", variables, RecipientContext(manage_url=f"{PUBLIC}/m/{i:032d}"))
    per_render = (time.perf_counter() - started) / n

    assert per_render < 200e-6, f"{per_render * 1e6:.0f} µs per SMS render"


def test_voice_without_the_press_9_instruction_is_refused(tmp_path: Path) -> None:
    toml = SIMPLE_TOML.replace('["sms", "email"]', '["voice"]')
    write_template(tmp_path, "mute", {"voice.txt": "{{ message }}. Goodbye."}, toml)

    with pytest.raises(ConfigurationError, match="press 9"):
        TemplateLibrary(tmp_path).load("mute").render("voice", {"message": "x"}, RECIPIENT)
