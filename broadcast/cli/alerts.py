"""`broadcast alert ...`: send an alert, watch it, cancel it, retry or resume it.

This module must not import Dramatiq: `cli.py` injects the worker backend with `set_backend`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import typer
from rich.table import Table

from broadcast import alerts as core
from broadcast import approval, audit, escalation, recovery, scheduling
from broadcast.cli import common
from broadcast.cli.progress import watch_progress
from broadcast.clock import clock_of
from broadcast.contacts import normalise_area, normalise_topic
from broadcast.errors import ConfigurationError, InvalidInput
from broadcast.planning import Targeting
from broadcast.quiet_hours import zone
from broadcast.runtime import Runtime

app = typer.Typer(help="Send alerts and follow their delivery.", no_args_is_help=True)
_backend_factory: Callable[[Runtime], Any] | None = None


def set_backend(factory: Callable[[Runtime], Any]) -> None:
    """Called by cli.py: builds the object with `.dispatcher`, `.embedded` and `.run()`."""
    global _backend_factory
    _backend_factory = factory


def _runtime() -> Runtime:
    return Runtime(common.settings(), engine=common.engine())


def _backend(rt: Runtime) -> Any:
    if _backend_factory is None:
        raise ConfigurationError("no worker backend configured (run through the broadcast CLI)")
    return _backend_factory(rt)


OPERATOR = typer.Option(None, "--operator", help="Who is doing this (default: the OS user).")


def _audit(
    rt: Runtime, action: str, alert_id: int | None, operator: str | None, **details: Any
) -> None:
    with rt.engine.begin() as connection:
        audit.record(
            connection,
            operator=operator or common.default_operator(),
            action=action,
            subject=f"alert {alert_id}",
            details=details,
        )


def _variables(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInput(f"--var {pair!r} must look like name=value")
        out[name.strip()] = value
    return out


def _print_preview(preview: core.AlertPreview) -> None:
    out = common.console
    counts = ", ".join(f"{c} {preview.recipients[c]:,}" for c in preview.channels)
    if preview.recipients.get("voice", 0) > preview.voice_calls:
        calls = f"{preview.voice_calls:,} call{'' if preview.voice_calls == 1 else 's'}"
        counts += f" ({calls}: one per number, households share)"
    out.print(f"[bold]Template[/] {preview.template}   [bold]Recipients[/] {counts}")
    for channel, message in preview.messages.items():
        if channel == "sms" and message.sms:
            a = message.sms
            out.print(
                f"\n[bold]SMS[/] ({a.encoding}, {a.segments} segment(s), {a.characters} chars)"
            )
            out.print(message.body, highlight=False)
        elif channel == "email":
            out.print(f"\n[bold]Email subject[/] {message.subject}", highlight=False)
        elif channel == "voice":
            out.print("\n[bold]Voice script[/]")
            out.print(message.body, highlight=False)
    out.print("\n[bold]ETA[/]")
    for channel, line in preview.eta.items():
        out.print(f"  {channel}: {line}", highlight=False)


@app.command()
@common.one_line_errors
def send(
    template: str = typer.Argument(..., help="Template name, e.g. community-alert."),
    area: list[str] = typer.Option([], "--area", help="Postcode district/sector or named area."),
    topic: list[str] = typer.Option([], "--topic", help="Only registrants following a topic."),
    everyone: bool = typer.Option(False, "--all", help="Every active registrant."),
    source: str = typer.Option(
        None, "--source", help="transfer-notice: the file imported (its path or name) or origin."
    ),
    channels: str = typer.Option("sms,email,voice", "--channels"),
    var: list[str] = typer.Option([], "--var", help="Template variable, name=value."),
    urgent: bool = typer.Option(False, "--urgent", help="Go ahead of routine backlog."),
    expires: str = typer.Option(None, "--expires", help="Give up after this long (6h, 90m)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent; send nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    wait: bool = typer.Option(False, "--wait", help="Stay and show progress until done."),
    operator: str = typer.Option(None, "--operator", help="Who sends (default: the OS user)."),
    at: str = typer.Option(None, "--at", help="Send later: '2026-11-23 07:30' (local) or ISO."),
    emergency: bool = typer.Option(False, "--emergency", help="No second approval (audited)."),
    escalate: str = typer.Option(
        None, "--escalate", help="Next channels if not reached: sms>voice"
    ),
    escalate_after: str = typer.Option(None, "--escalate-after", help="Window (default 15m)."),
) -> None:
    """Preview, confirm, and queue (or schedule, or submit for approval) an alert."""
    settings = common.settings()
    if template == "transfer-notice" and not source:
        raise InvalidInput("transfer-notice needs --source FILE-OR-SOURCE (who was imported)")
    if source and (area or everyone):
        raise InvalidInput("--source picks the recipients itself; leave out --area/--all")
    if not source and not everyone and not area:
        raise InvalidInput("say who gets the alert: --area ... (and --topic ...) or --all")
    if everyone and area:
        raise InvalidInput("use either --area or --all, not both")
    targeting = Targeting(
        areas=tuple(normalise_area(a, settings.named_area_set) for a in area),
        topics=tuple(normalise_topic(t, settings.topic_set) for t in topic),
        everyone=everyone,
        source=source,
    )
    chosen = core.parse_channels(channels)
    variables = _variables(var)
    rt = _runtime()
    when = scheduling.parse_at(at, zone=zone(rt), now=clock_of(rt).now()) if at else None
    chain = escalation.parse_chain(escalate, chosen) if escalate else None
    window = escalation.window_seconds(escalate_after, settings.escalate_after) if chain else None
    if chain:
        core.preview_alert(rt, template, variables, tuple(chain.split(">")), Targeting())
    preview = core.preview_alert(rt, template, variables, chosen, targeting, urgent=urgent)
    core.require_recipients(rt, preview, targeting)
    _print_preview(preview)
    if dry_run:
        common.console.print("\nDry run: nothing was queued.")
        return
    if not yes and not typer.confirm(f"\nSend to {sum(preview.recipients.values()):,} deliveries?"):
        raise common.fail("not sent", code=1)
    sms = preview.messages.get("sms")
    who = operator or common.default_operator()
    alert = core.create_alert(
        rt,
        template,
        variables,
        chosen,
        targeting,
        operator=who,
        urgent=urgent,
        expires=core.parse_duration(expires) if expires else None,
        sms_segments=sms.sms.segments if sms and sms.sms else 1,
        status="draft",
        starts_at=when,
    )
    assert alert.id is not None
    backend = _backend(rt)
    state = approval.submit(
        rt,
        backend.dispatcher,
        alert,
        operator=who,
        emergency=emergency,
        scheduled_at=when,
        escalate=chain,
        escalate_after=window,
    )
    counts = core.delivery_counts(rt, alert.id)
    _audit(
        rt,
        "alert.sent",
        alert.id,
        operator,
        template=template,
        channels=sorted(chosen),
        areas=list(targeting.areas),
        topics=list(targeting.topics),
        everyone=everyone,
        source=source,
        urgent=urgent,
        deliveries=counts,
        state=state,
        emergency=emergency,
        scheduled_at=when,
        escalate=chain,
    )
    lc.after_submit(rt, backend, alert.id, state, wait=wait)
    typer.echo(f"alert id: {alert.id}")


def _summary(view: core.AlertStatusView) -> None:
    for channel, states in sorted(view.states.items()):
        parts = ", ".join(f"{s} {n:,}" for s, n in sorted(states.items()))
        common.console.print(f"  {channel}: {parts}", highlight=False)
    for channel, calls in sorted(view.households.items()):
        shared = sum(calls.values())
        outcome = ", ".join(f"{s} {n:,}" for s, n in sorted(calls.items()))
        common.console.print(
            f"  {channel}: household {shared:,} = registrants sharing a number called once for "
            f"everyone on it (those calls: {outcome})",
            highlight=False,
        )
    for f in view.failures[:10]:
        common.console.print(
            f"  ! {f['channel']} {f['state']} x{f['count']}: {f['reason'] or ''}", highlight=False
        )


@app.command("list")
@common.one_line_errors
def list_(limit: int = typer.Option(20, help="How many, newest first.")) -> None:
    """Recent alerts with who sent them."""
    rt = _runtime()
    table = Table("id", "created", "template", "channels", "flags", "status", "operator")
    for column in table.columns[5:]:
        column.no_wrap = True  # "pending-approval" and operators read whole
    found = core.list_alerts(rt, limit)
    notes = lc.flags(rt, [a.id for a in found if a.id is not None])
    for a in found:
        extra = notes.get(a.id or 0, "")
        table.add_row(
            str(a.id),
            a.created_at.strftime("%Y-%m-%d %H:%M"),
            a.template,
            a.channels,
            " ".join(f for f in ("urgent" if a.urgent else "", extra) if f),
            a.status,
            a.operator,
        )
    common.console.print(table)


@app.command()
@common.one_line_errors
def status(
    alert_id: int,
    watch: bool = typer.Option(False, "--watch", help="Refresh until the alert is done."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Counts per channel and state, failures with reasons, and the ETA of what is left."""
    rt = _runtime()
    if watch:
        watch_progress(lambda: core.alert_status(rt, alert_id))
    view = core.alert_status(rt, alert_id)
    if as_json:
        typer.echo(json.dumps(view.as_dict() | {"lifecycle": lc.describe_lines(rt, alert_id)}))
        return
    a = view.alert
    common.console.print(
        f"Alert {a.id} {a.template} [{a.status}] by {a.operator}{' URGENT' if a.urgent else ''}",
        highlight=False,
        markup=False,  # "[done]" is not a style
    )
    _summary(view)
    for channel, line in view.eta.items():
        common.console.print(f"  ETA {channel}: {line}", highlight=False)
    for line in lc.describe_lines(rt, alert_id):
        common.console.print(f"  {line}", highlight=False, markup=False)


@app.command()
@common.one_line_errors
def cancel(
    alert_id: int,
    notify_sent: str = typer.Option(
        None, "--notify-sent", help="Send this template as a correction to those already reached."
    ),
    var: list[str] = typer.Option([], "--var", help="Variable of the correction, name=value."),
    reason: str = typer.Option(None, "--reason", help="Why (kept in the transition log)."),
    operator: str = OPERATOR,
) -> None:
    """Nothing not yet handed to a provider goes out after this returns (scheduled or awaiting
    approval: it never goes out)."""
    rt = _runtime()
    who = operator or common.default_operator()
    n = approval.cancel(rt, alert_id, operator=who, reason=reason)
    _audit(rt, "alert.cancelled", alert_id, operator, deliveries_stopped=n)
    common.console.print(f"Alert {alert_id} cancelled: {n:,} deliveries will not be sent.")
    if notify_sent:
        lc.send_followup(alert_id, notify_sent, var, kind="correction", operator=who, yes=True)


@app.command("retry-failed")
@common.one_line_errors
def retry_failed(alert_id: int, operator: str = OPERATOR) -> None:
    """Queue again the deliveries that failed for transient reasons."""
    rt = _runtime()
    backend = _backend(rt)
    n = core.retry_failed(rt, backend.dispatcher, alert_id)
    _audit(rt, "alert.retried", alert_id, operator, deliveries_requeued=n)
    common.console.print(f"{n:,} deliveries queued again.")
    if n and backend.embedded:
        backend.run()


@app.command()
@common.one_line_errors
def resume(
    alert_id: int,
    stale_after: float = typer.Option(None, help="Seconds before a `sending` delivery is stale."),
    operator: str = OPERATOR,
) -> None:
    """After a broker loss or a worker crash: queue what is left, settle stale sends."""
    rt = _runtime()
    backend = _backend(rt)
    report = recovery.resume_alert(rt, backend.dispatcher, alert_id, stale_after=stale_after)
    _audit(rt, "alert.resumed", alert_id, operator, report=str(report))
    common.console.print(f"Alert {alert_id}: {report}")
    if backend.embedded:
        backend.run()


# The lifecycle commands (approve, reject, update, all-clear) register on `app` when imported.
from broadcast.cli import alert_lifecycle as lc  # noqa: E402
