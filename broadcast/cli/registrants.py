"""`broadcast registrants ...`: add, find, change, unsubscribe, erase, export and import people."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from broadcast.cli import common
from broadcast.cli.registrant_import import import_csv
from broadcast.cli.registrant_list import list_registrants
from broadcast.delivery.quiet_hours import set_preference as set_quiet_hours
from broadcast.ops import audit
from broadcast.registrants import people as store
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.validation import RegistrantDraft, parse_channels, parse_registrant
from broadcast.store.tables import SubscriptionStatus

app = typer.Typer(help="Manage registrants: the people who receive alerts.", no_args_is_help=True)

REF_HELP = "The registrant's id, email address or phone number."
OPERATOR = typer.Option(
    None, "--operator", help="Who is doing this (default: BROADCAST_OPERATOR or the OS user)."
)


def _operator(operator: str | None) -> str:
    return operator or common.default_operator()


def _source(operator: str | None) -> ConsentSource:
    settings = common.settings()
    return ConsentSource(
        source="cli",
        operator=operator or common.default_operator(),
        wording_version=settings.consent_wording_version,
    )


def _key() -> bytes:
    return common.suppression_key()


def _parse(fields: dict[str, str | None], *, require_channels: bool = True) -> RegistrantDraft:
    settings = common.settings()
    return parse_registrant(
        fields,
        topics=settings.topic_set,
        named_areas=settings.named_area_set,
        region=settings.default_region,
        require_channels=require_channels,
    )


@app.command()
@common.one_line_errors
def add(
    name: str = typer.Option(..., help="Full name."),
    email: str | None = typer.Option(None, help="Email address (for the email channel)."),
    mobile: str | None = typer.Option(None, help="Mobile number (SMS, and voice if no landline)."),
    landline: str | None = typer.Option(None, help="Landline number (voice)."),
    postcode: str | None = typer.Option(None, help="Home postcode."),
    channels: str = typer.Option(..., help="Channels to subscribe, e.g. 'sms,email,voice'."),
    areas: str = typer.Option("", help="Areas followed: postcode districts/sectors or names."),
    topics: str = typer.Option("", help="Topics followed, e.g. 'burglary,fraud'."),
    language: str = typer.Option("en", help="Preferred language (e.g. en, cy)."),
    pending: bool = typer.Option(
        False, "--pending", help="Leave channels pending until the person confirms them."
    ),
    operator: str = OPERATOR,
) -> None:
    """Add one registrant whose consent the operator has taken (channels active at once)."""
    draft = _parse(
        {
            "name": name,
            "email": email,
            "mobile": mobile,
            "landline": landline,
            "postcode": postcode,
            "channels": channels,
            "areas": areas,
            "topics": topics,
            "language": language,
        }
    )
    status = SubscriptionStatus.PENDING if pending else SubscriptionStatus.ACTIVE
    with common.session() as session:
        registrant = store.add_registrant(
            session=session, draft=draft, source=_source(operator), key=_key(), status=status
        )
        audit.record(
            session,
            operator=_operator(operator),
            action="registrant.added",
            subject=f"registrant {registrant.id}",
            details={"channels": sorted(draft.channels), "status": status.value},
        )
        session.commit()
        typer.echo(
            f"added registrant {registrant.id} ({', '.join(sorted(draft.channels))}: {status})"
        )


@app.command()
@common.one_line_errors
def show(
    ref: str = typer.Argument(..., help=REF_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one registrant with their channels and consent history."""
    with common.session() as session:
        registrant = store.find_registrant(session=session, ref=ref)
        data = store.export(session=session, registrant=registrant)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    for key in ("id", "name", "email", "mobile", "landline", "postcode", "language"):
        typer.echo(f"{key:<10} {data[key] or ''}")
    typer.echo(f"{'areas':<10} {', '.join(data['areas'])}")
    typer.echo(f"{'topics':<10} {', '.join(data['topics'])}")
    for channel, sub in data["subscriptions"].items():
        typer.echo(
            f"{channel:<10} {sub['status']}" + (f" ({sub['reason']})" if sub["reason"] else "")
        )
    typer.echo("consent history:")
    for event in data["consent_history"]:
        typer.echo(
            f"  {event['occurred_at']}  {event['event']:<14} {event['channel'] or '-':<6} "
            f"{event['source']} {event['source_detail'] or ''}"
        )


app.command("list")(list_registrants)


@app.command()
@common.one_line_errors
def amend(
    ref: str = typer.Argument(..., help=REF_HELP),
    name: str | None = typer.Option(None, help="New name."),
    email: str | None = typer.Option(None, help="New email address."),
    mobile: str | None = typer.Option(None, help="New mobile number."),
    landline: str | None = typer.Option(None, help="New landline number."),
    postcode: str | None = typer.Option(None, help="New postcode."),
    areas: str | None = typer.Option(None, help="Replace the areas followed."),
    topics: str | None = typer.Option(None, help="Replace the topics followed."),
    language: str | None = typer.Option(None, help="New preferred language."),
    add_channels: str | None = typer.Option(
        None, "--add-channels", help="Subscribe to these channels too (e.g. 'voice')."
    ),
    pending: bool = typer.Option(
        False, "--pending", help="Leave added channels pending until confirmed."
    ),
    quiet_hours: str | None = typer.Option(
        None, "--quiet-hours", help="No routine calls then: 22:00-07:00, 'off' or 'default'."
    ),
    operator: str = OPERATOR,
) -> None:
    """Change a registrant's details, areas, topics, channels or quiet hours."""
    given = {
        "name": name,
        "email": email,
        "mobile": mobile,
        "landline": landline,
        "postcode": postcode,
        "areas": areas,
        "topics": topics,
        "language": language,
    }
    changed = {k for k, v in given.items() if v is not None}
    if not changed and not add_channels and quiet_hours is None:
        raise common.fail("nothing to change: give at least one option (see --help)")
    with common.session() as session:
        registrant = store.find_registrant(session=session, ref=ref)
        current = store.views(session=session, registrants=[registrant])[0]
        merged = {
            k: (
                given[k]
                if given[k] is not None
                else (";".join(current[k]) if k in ("areas", "topics") else current[k])
            )
            for k in given
        }
        merged["channels"] = add_channels or ""
        draft = _parse(merged, require_channels=False)
        done = store.amend(
            session=session,
            registrant=registrant,
            draft=draft,
            changed=changed,
            source=_source(operator),
            key=_key(),
            new_channel_status=SubscriptionStatus.PENDING if pending else SubscriptionStatus.ACTIVE,
        )
        if quiet_hours is not None:  # broadcast/delivery/quiet_hours.py (docs/lifecycle.md)
            done += set_quiet_hours(session=session, registrant=registrant, text=quiet_hours)
        if done:
            audit.record(
                session,
                operator=_operator(operator),
                action="registrant.amended",
                subject=f"registrant {registrant.id}",
                details={"changed": done},
            )
        session.commit()
    typer.echo(f"registrant {registrant.id}: " + (", ".join(done) if done else "no change"))


@app.command()
@common.one_line_errors
def unsubscribe(
    ref: str = typer.Argument(..., help=REF_HELP),
    channel: str | None = typer.Option(None, help="One channel (sms, email, voice); default: all."),
    operator: str = OPERATOR,
) -> None:
    """Unsubscribe from one channel or all; the address is suppressed for good."""
    channels = sorted(parse_channels(channel)) if channel else None
    with common.session() as session:
        registrant = store.find_registrant(session=session, ref=ref)
        done = store.unsubscribe(
            session=session,
            registrant=registrant,
            channels=channels,
            source=_source(operator),
            key=_key(),
        )
        if done:
            audit.record(
                session,
                operator=_operator(operator),
                action="registrant.unsubscribed",
                subject=f"registrant {registrant.id}",
                details={"channels": done},
            )
        session.commit()
    typer.echo(
        f"registrant {registrant.id}: unsubscribed from "
        + (", ".join(done) if done else "nothing (already unsubscribed)")
    )


@app.command()
@common.one_line_errors
def erase(
    ref: str = typer.Argument(..., help=REF_HELP),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    operator: str = OPERATOR,
) -> None:
    """Right to erasure: delete the personal data; keep ledger events and suppression."""
    with common.session() as session:
        registrant = store.find_registrant(session=session, ref=ref)
        if not yes and not typer.confirm(
            f"Erase registrant {registrant.id}? This cannot be undone"
        ):
            raise typer.Exit(1)
        store.erase(session=session, registrant=registrant, source=_source(operator), key=_key())
        audit.record(
            session,
            operator=_operator(operator),
            action="registrant.erased",
            subject=f"registrant {registrant.id}",
        )
        session.commit()
    typer.echo(f"registrant {registrant.id} erased (ledger events and suppression kept)")


@app.command()
@common.one_line_errors
def export(
    ref: str = typer.Argument(..., help=REF_HELP),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write to this file, not stdout."
    ),
) -> None:
    """Right of access and portability: everything held on one registrant, as JSON."""
    with common.session() as session:
        registrant = store.find_registrant(session=session, ref=ref)
        data = json.dumps(
            store.export(session=session, registrant=registrant), indent=2, default=str
        )
    if output:
        output.write_text(data + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}")
    else:
        typer.echo(data)


# The bulk transfer is a command of its own size, so it lives in its own module.
app.command("import")(import_csv)
