"""`broadcast sms ...`: help an officer draft an SMS that fits in as few segments as possible."""

from __future__ import annotations

import json
import sys

import typer

from broadcast.errors import BroadcastError
from broadcast.messages.sms_text import (
    GSM_PART,
    GSM_SINGLE,
    UCS2,
    UCS2_PART,
    UCS2_SINGLE,
    analyse,
    check_max_segments,
    non_gsm_characters,
)

app = typer.Typer(help="SMS drafting tools: encoding and segment counts.", no_args_is_help=True)


@app.command()
def count(
    text: str = typer.Argument(..., help="The SMS body; '-' reads it from standard input."),
    no_downgrade: bool = typer.Option(
        False, "--no-downgrade", help="Count the text exactly as given (no smart-quote fixes)."
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print JSON: encoding, segments, characters."
    ),
) -> None:
    """Print the encoding (GSM-7 or UCS-2), segment count and character count of an SMS body."""
    if text == "-":
        text = sys.stdin.read().removesuffix("\n")
    try:
        if not text:
            raise BroadcastError("nothing to count: the text is empty")
        result = analyse(text, downgrade=not no_downgrade)
    except BroadcastError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from None

    if as_json:
        payload = {
            "encoding": result.encoding,
            "segments": result.segments,
            "characters": result.characters,
        }
        typer.echo(json.dumps(payload))
        return

    single, per = (UCS2_SINGLE, UCS2_PART) if result.encoding == UCS2 else (GSM_SINGLE, GSM_PART)
    unit = "UTF-16 units" if result.encoding == UCS2 else "septets"
    typer.echo(f"Encoding:   {result.encoding}")
    typer.echo(f"Segments:   {result.segments}")
    typer.echo(f"Characters: {result.characters}")
    typer.echo(
        f"Length:     {result.length} {unit} "
        f"({single} fit in one message, {per} per segment after that)"
    )
    if result.encoding == UCS2:
        shown = " ".join(repr(ch) for ch in non_gsm_characters(result.text)[:10])
        typer.echo(f"UCS-2 because of: {shown}")
    if result.text != text:
        typer.echo(f"Sent as:    {result.text}")
    try:
        check_max_segments(result)
    except BroadcastError as exc:
        typer.echo(f"Warning: {exc}; it would be refused when sending.")
