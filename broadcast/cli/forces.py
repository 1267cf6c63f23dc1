"""`broadcast forces add|list|show|amend`: the forces on the platform (docs/tenancy.md)."""

from __future__ import annotations

import json
from typing import Any

import typer

from broadcast.cli import common
from broadcast.forces import registry
from broadcast.forces.profile import PROFILE_FIELDS
from broadcast.forces.registry import ForceInfo, ForceRefused
from broadcast.ops import audit
from broadcast.store.tenancy import scoped

app = typer.Typer(
    help="The forces on this platform: each with its own registrants, alerts, brand and capacity.",
    no_args_is_help=True,
)

SET_HELP = (
    "A setting the force sets for itself, NAME=VALUE (repeat): "
    + ", ".join(PROFILE_FIELDS)
    + ". Unset ones are the platform's (BROADCAST_...)."
)


def _audit(force: ForceInfo, action: str, details: dict[str, Any]) -> None:
    """A platform action on a force goes into that force's own audit log (what was set, not
    the values: the log holds no contact details)."""
    with scoped(common.platform_engine(), force.id).begin() as conn:
        audit.record(
            conn,
            operator=common.default_operator(),
            action=action,
            subject=f"force {force.code}",
            details=details,
        )


def _pairs(values: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ForceRefused(f"--set takes NAME=VALUE, not {item!r}")
        out[name.strip().replace("-", "_").lower()] = value.strip()
    return out


def _as_dict(force: ForceInfo) -> dict[str, Any]:
    effective = force.settings(common.settings())
    return {
        "code": force.code,
        "name": force.name or effective.force_name,
        "hosts": list(force.hosts),
        "profile": force.profile,
        "effective": {
            name: str(getattr(effective, name)) if getattr(effective, name) is not None else None
            for name in PROFILE_FIELDS
        },
    }


@app.command("add")
@common.one_line_errors
def add(
    code: str = typer.Argument(..., help="Short code: met, suffolk, dyfed-powys."),
    name: str = typer.Option(..., "--name", help="The force's name, as messages sign it."),
    host: list[str] = typer.Option([], "--host", help="A host name its pages answer on (repeat)."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
) -> None:
    """Add a force."""
    force = registry.add(
        common.platform_engine(), common.settings(), code, name, hosts=host, profile=_pairs(set_)
    )
    _audit(force, "force.added", {"hosts": list(force.hosts), "set": sorted(force.profile)})
    typer.echo(f"Added force {force.code} ({force.name}).")


@app.command("list")
@common.one_line_errors
def list_forces(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the forces."""
    forces = registry.all_forces(common.platform_engine())
    if as_json:
        typer.echo(json.dumps([_as_dict(f) for f in forces], indent=2))
        return
    for force in forces:
        name = force.name or common.settings().force_name
        typer.echo(f"{force.code:<20} {name:<40} {', '.join(force.hosts)}")


@app.command("show")
@common.one_line_errors
def show(
    code: str = typer.Argument(..., help="The force's code."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Show a force: what it sets for itself, and what it works with (its or the platform's)."""
    shown = _as_dict(registry.by_code(common.platform_engine(), code))
    if as_json:
        typer.echo(json.dumps(shown, indent=2))
        return
    typer.echo(f"{shown['code']}: {shown['name']}")
    typer.echo(f"  hosts: {', '.join(shown['hosts']) or '(none: the platform public_url)'}")
    for name, label in PROFILE_FIELDS.items():
        own = "own" if name in shown["profile"] else "platform"
        value = shown["effective"][name]
        typer.echo(f"  {label:<58} {'' if value is None else value}  ({own})")


@app.command("amend")
@common.one_line_errors
def amend(
    code: str = typer.Argument(..., help="The force's code."),
    name: str | None = typer.Option(None, "--name", help="A new name."),
    new_code: str | None = typer.Option(None, "--code", help="A new code."),
    host: list[str] = typer.Option(
        [], "--host", help="Its host names, replacing the ones it had (repeat)."
    ),
    no_hosts: bool = typer.Option(False, "--no-hosts", help="Remove all its host names."),
    set_: list[str] = typer.Option([], "--set", help=SET_HELP),
    unset: list[str] = typer.Option(
        [], "--unset", help="A setting to hand back to the platform's (repeat)."
    ),
) -> None:
    """Change a force's name, code, hosts or settings."""
    hosts = [] if no_hosts else (host or None)
    force = registry.amend(
        common.platform_engine(),
        common.settings(),
        code,
        name=name,
        new_code=new_code,
        hosts=hosts,
        set_values=_pairs(set_),
        unset=[u.replace("-", "_").lower() for u in unset],
    )
    changed = {
        "code": new_code,
        "name": name is not None,
        "hosts": list(force.hosts) if hosts is not None else None,
        "set": sorted(_pairs(set_)),
        "unset": sorted(unset),
    }
    _audit(force, "force.amended", {k: v for k, v in changed.items() if v})
    typer.echo(f"Amended force {force.code}.")
