from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from broadcast.cli import sms

# The real top-level cli.py mounts the sub-app the same way.
root = typer.Typer()
root.add_typer(sms.app, name="sms")
runner = CliRunner()


def run(*args: str, stdin: str | None = None):
    return runner.invoke(root, ["sms", *args], input=stdin)


def test_count_json_has_exactly_the_documented_keys() -> None:
    result = run("count", "Lock your doors tonight.", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"encoding": "GSM-7", "segments": 1, "characters": 24}


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [("a" * 161, "GSM-7", 2), ("a" * 159 + "€", "GSM-7", 2), ("🚨" * 35, "UCS-2", 1)],
)
def test_count_json_counts_exactly(text: str, encoding: str, segments: int) -> None:
    data = json.loads(run("count", text, "--json").stdout)

    assert (data["encoding"], data["segments"]) == (encoding, segments)


def test_downgrade_is_on_by_default_and_can_be_turned_off() -> None:
    # Given a draft with a stray en dash
    text = "Road closed \u2013 avoid the area"
    # When counted normally, Then the dash is replaced and the text stays GSM-7
    assert json.loads(run("count", text, "--json").stdout)["encoding"] == "GSM-7"
    # When counted with --no-downgrade, Then the dash forces UCS-2
    assert json.loads(run("count", text, "--no-downgrade", "--json").stdout)["encoding"] == "UCS-2"


def test_plain_output_is_human_readable() -> None:
    result = run("count", "Zoë says \u201chi\u201d")

    assert result.exit_code == 0
    assert "Encoding:   UCS-2" in result.stdout
    assert "Segments:   1" in result.stdout
    assert "Characters: 13" in result.stdout
    assert "UCS-2 because of: 'ë'" in result.stdout
    assert 'Sent as:    Zoë says "hi"' in result.stdout


def test_plain_output_warns_over_the_segment_limit() -> None:
    result = run("count", "a" * 1000)

    assert result.exit_code == 0
    assert "Segments:   7" in result.stdout
    assert "Warning:" in result.stdout and "limit of 6" in result.stdout


def test_text_can_come_from_stdin() -> None:
    result = run("count", "-", "--json", stdin="a" * 200 + "\n")

    assert json.loads(result.stdout) == {"encoding": "GSM-7", "segments": 2, "characters": 200}


@pytest.mark.parametrize("text", ["", "bad \udcff byte"])
def test_bad_input_is_one_line_and_exit_2(text: str) -> None:
    result = run("count", text)

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
