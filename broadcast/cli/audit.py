"""`broadcast audit`: what operators did, newest last."""

from __future__ import annotations

import json

import typer

from broadcast.cli import common
from broadcast.ops import audit


@common.one_line_errors
def audit_command(
    since: str | None = typer.Option(None, "--since", help="Only since then: 24h, 7d, or a date."),
    action: str | None = typer.Option(
        None, "--action", help="Only this action (or prefix: 'alert')."
    ),
    limit: int = typer.Option(1000, "--limit", help="At most this many (the newest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """List the audit log of operator actions (alerts, requeues, imports, erasures)."""
    cutoff = audit.parse_since(since) if since else None
    with common.session() as session:
        rows = audit.entries(session=session, since=cutoff, action=action, limit=limit)
    for row in rows:
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "occurred_at": row.occurred_at.isoformat(),
                        "operator": row.operator,
                        "action": row.action,
                        "subject": row.subject,
                        "details": row.details,
                    }
                )
            )
        else:
            details = ", ".join(f"{k}={v}" for k, v in row.details.items())
            typer.echo(
                f"{row.occurred_at:%Y-%m-%d %H:%M:%S}  {row.operator:<14} "
                f"{row.action:<24} {row.subject or '':<22} {details}"
            )
    if not rows and not as_json:
        typer.echo("no audit events" + (" in that period" if since else ""))
