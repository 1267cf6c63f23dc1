"""The `broadcast` command line: community-liaison teams and operators start here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from broadcast import log_scrub
from broadcast.cli import alert_common, alerts, common, forces, registrants, sms, web
from broadcast.cli import audit as audit_cli
from broadcast.cli import doctor as doctor_cli
from broadcast.cli import ops as ops_cli
from broadcast.cli import scheduler as scheduler_cli
from broadcast.cli.dev_database import open_announced
from broadcast.store.engine import current_revision, head_revision, upgrade

if TYPE_CHECKING:
    from broadcast.runtime import Runtime
    from workers.embedded import Backend
    from workers.monitor import OpsBackend

log_scrub.install()  # no token, email or phone number in any log line the commands write

app = typer.Typer(
    help="Send community alerts by SMS, email and voice, and manage who receives them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(forces.app, name="forces")
app.add_typer(registrants.app, name="registrants")
app.add_typer(sms.app, name="sms")
app.add_typer(alerts.app, name="alert")
app.add_typer(scheduler_cli.app, name="scheduler")
app.add_typer(web.app)


@app.callback()
def choose_force(
    force: str | None = typer.Option(
        None,
        "--force",
        envvar="BROADCAST_FORCE",
        help="The force the command works as (its code); default: the only force there is.",
    ),
) -> None:
    """Send community alerts by SMS, email and voice, and manage who receives them."""
    common.chosen_force_code = force


def _worker_backend(rt: Runtime) -> Backend:
    # Imported on use: only alert commands need Dramatiq, and the core never imports it.
    from workers.embedded import backend

    return backend(rt)


alert_common.set_backend(_worker_backend)


def _ops_backend(rt: Runtime) -> OpsBackend:
    # Imported on use, like _worker_backend: the queue monitor reads Dramatiq's broker.
    from workers.monitor import ops_backend

    return ops_backend(rt)


ops_cli.set_backend(_ops_backend)
app.command("queues")(ops_cli.queues_command)
app.add_typer(ops_cli.failures_app, name="failures")

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.command("audit")(audit_cli.audit_command)
app.command("doctor")(doctor_cli.doctor_command)


@app.command("config")
@common.one_line_errors
def show_config(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Print the effective settings (environment and .env), secrets masked."""
    shown = common.settings().masked()
    if as_json:
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    for name, value in shown.items():
        typer.echo(f"BROADCAST_{name.upper():<28} {'' if value is None else value}")


@app.command("demo")
@common.one_line_errors
def demo() -> None:
    """Run the main job with fictional people and show the result, for two forces side by side.

    Imports a sample transfer file, sends the imported people the data-transfer notice, sends a
    community alert to one area, and shows what landed in the outbox (no provider needed). Then
    adds a second force on the same platform, a Welsh one (dyfed-powys), imports its own
    registrants and sends them a bilingual Welsh and English alert from its own template
    folder, into its own outbox.
    """
    from importlib.resources import files

    from broadcast.forces import registry

    samples = Path(str(files("broadcast") / "samples"))
    sample = samples / "registrants.csv"
    forces = registry.all_forces(common.platform_engine())
    home = min(forces, key=lambda f: f.id)
    name = home.name or common.settings().force_name
    typer.echo(f"1. {name} (force {home.code}): import the sample transfer file {sample.name}")
    _run(["--force", home.code, "registrants", "import", str(sample), "--operator", "demo"])
    typer.echo("\nRegistrants now held (first 5):")
    common.chosen_force_code = home.code
    _demo_table(limit=5)
    typer.echo(f"\n2. Tell everyone imported from {sample.name} who now holds their details")
    _run(
        [
            *("--force", home.code, "alert", "send", "transfer-notice", "--source", sample.name),
            *("--channels", "sms,email,voice", "--yes", "--operator", "demo"),
            "--allow-duplicate",  # running the demo again sends again, on purpose
            *("--var", "previous_service=the Police Message Broadcast service"),
        ]
    )
    typer.echo("\n3. A community alert to everyone following SE1")
    _run(
        [
            *("--force", home.code, "alert", "send", "community-alert", "--area", "SE1"),
            *("--channels", "sms,email", "--yes", "--allow-duplicate", "--operator", "demo"),
            *("--var", "headline=Road closed in SE1 after a collision"),
            *("--var", "message=Blackfriars Road is closed both ways. Please avoid the area."),
        ]
    )
    welsh = "dyfed-powys"
    typer.echo(f"\n4. A second force on the same platform: Heddlu Dyfed-Powys Police ({welsh})")
    if not any(f.code == welsh for f in forces):
        _run(
            [
                *("forces", "add", welsh, "--name", "Heddlu Dyfed-Powys Police"),
                *("--set", "area_postcodes=SA,LD,SY", "--set", "languages=cy,en"),
                *("--set", f"templates_dir={samples / 'templates' / welsh}"),
            ]
        )
    welsh_sample = samples / f"{welsh}.csv"
    _run(["--force", welsh, "registrants", "import", str(welsh_sample), "--operator", "demo"])
    typer.echo("\n5. Its bilingual community alert (its own template: Welsh first, then English)")
    _run(
        [
            *("--force", welsh, "alert", "send", "community-alert", "--all", "--channels"),
            *("sms,email", "--yes", "--allow-duplicate", "--operator", "demo"),
            *("--var", "headline_cy=A483 ar gau ar ôl gwrthdrawiad"),
            *("--var", "message_cy=Mae'r A483 ar gau i'r ddau gyfeiriad. Osgowch yr ardal."),
            *("--var", "headline=A483 closed after a collision"),
            *("--var", "message=The A483 is closed both ways. Please avoid the area."),
        ]
    )
    typer.echo("\n6. No provider is configured, so each force's messages went to its outbox:")
    platform = common.settings()
    for force in registry.all_forces(common.platform_engine()):
        if force.code in (home.code, welsh):
            _show_outbox(force.name or platform.force_name, force.settings(platform).outbox_dir)
    typer.echo(
        "\nThis database now holds two forces: other commands take --force "
        f"{home.code} or --force {welsh} (or BROADCAST_FORCE={home.code})."
    )


def _show_outbox(name: str, outbox: Path) -> None:
    from broadcast.channels.outbox import read_json_lines
    from broadcast.cli.wrapped import print_wrapped

    emails = sorted((outbox / "email").glob("*.eml"))
    sms, calls = (
        read_json_lines(path) if (path := outbox / f"{c}.jsonl").exists() else []
        for c in ("sms", "voice")
    )
    typer.echo(f"\n   {name}, in {outbox}/:")
    typer.echo(f"   {len(sms)} SMS in {outbox / 'sms.jsonl'}")
    typer.echo(f"   {len(calls)} calls (with their TwiML) in {outbox / 'voice.jsonl'}")
    typer.echo(f"   {len(emails)} emails in {outbox / 'email'}/")
    if sms:
        typer.echo(f"   The last SMS, to {sms[-1]['to']}:")
        print_wrapped(common.console, str(sms[-1]["body"]), indent=3)


def _demo_table(limit: int) -> None:
    """The first registrants in the columns that fit 80 columns (`registrants list` shows all)."""
    from rich.table import Table

    from broadcast.registrants import people as store

    table = Table("id", "name", "postcode", "channels", "topics")
    with common.session() as session:
        for _, row in zip(range(limit), store.iter_views(session=session), strict=False):
            channels = (c if s == "active" else f"{c} ({s})" for c, s in row["channels"].items())
            table.add_row(
                str(row["id"]),
                row["name"] or "",
                row["postcode"] or "",
                ", ".join(channels),
                ", ".join(row["topics"]),
            )
    common.console.print(table)


def _run(args: list[str]) -> None:
    """Run another broadcast command as if typed, stopping the demo if it fails."""
    command = typer.main.get_command(app)
    try:
        command.main(args, prog_name="broadcast", standalone_mode=False)
    except typer.Exit as exit_:
        if exit_.exit_code:
            raise


@db_app.command("upgrade")
@common.one_line_errors
def db_upgrade() -> None:
    """Apply every pending migration to the configured database (the Procfile's `release:`).

    Safe to run from several processes at once: they take turns on a lock and the later ones
    find nothing to do (docs/store.md)."""
    from broadcast.store.engine import create_db_engine

    engine = open_announced(common.settings(), create_db_engine)
    before = upgrade(engine)
    after = current_revision(engine)
    typer.echo(f"schema at {after}" + (" (was empty)" if before is None else f" (was {before})"))


@db_app.command("status")
@common.one_line_errors
def db_status() -> None:
    """Show the schema revision of the database and the newest one this code knows."""
    from broadcast.store.engine import create_db_engine

    engine = open_announced(common.settings(), create_db_engine)
    typer.echo(f"database: {current_revision(engine) or 'empty'}; code: {head_revision()}")


if __name__ == "__main__":
    app()
