"""`broadcast alert ...`: send an alert, watch it, cancel it, retry or resume it.

This module must not import Dramatiq: `cli.py` injects the worker backend with
`alert_common.set_backend`.
"""

from __future__ import annotations

import contextlib
import json

import typer
from rich.markup import escape
from rich.table import Table

from broadcast.alerts import approval, escalation, regional, scheduling
from broadcast.alerts import compose as core
from broadcast.alerts.outcome import status_label
from broadcast.cli import alert_lifecycle as lc
from broadcast.cli import alert_regional, common, handover, send_guard
from broadcast.cli.alert_common import (
    OPERATOR,
    audit_alert,
    open_runtime,
    parse_variables,
    print_summary,
    worker_backend,
)
from broadcast.cli.progress import watch_progress
from broadcast.cli.wrapped import print_wrapped
from broadcast.delivery import recovery
from broadcast.delivery.planning import Targeting
from broadcast.delivery.quiet_hours import zone
from broadcast.errors import InvalidInput
from broadcast.ops import figures as monitoring_figures
from broadcast.registrants.contacts import normalise_area, normalise_topic

app = typer.Typer(help="Send alerts and follow their delivery.", no_args_is_help=True)


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
            print_wrapped(out, message.body)  # a link is never cut, so it can be copied
        elif channel == "email":
            assert message.subject is not None  # an email always renders a subject
            out.print(f"\n[bold]Email subject[/] {escape(message.subject)}", highlight=False)
        elif channel == "voice":
            out.print("\n[bold]Voice script[/]")
            print_wrapped(out, message.body)
    out.print("\n[bold]ETA[/]")
    for channel, line in preview.eta.items():
        out.print(f"  {channel}: {line}", highlight=False)
    if preview.expiry:
        out.print(f"\n[bold red]Expiry[/] {preview.expiry}", highlight=False)


def _expiry_gate(
    preview: core.AlertPreview, *, urgent: bool, yes: bool, allow_expiry: bool
) -> None:
    """No delivery expires unseen: a routine alert whose ETA runs past its expiry needs the
    operator's word (the prompt, or --allow-expiry with --yes); an urgent one is only warned
    about, since refusing it would delay it more. Exit 1 when refused."""
    if not preview.expiring or urgent or allow_expiry:
        return
    if yes:
        raise common.fail(
            f"{preview.expiry}; not sent: give a longer --expires, or --allow-expiry to send "
            "anyway",
            code=1,
        )
    if not typer.confirm(f"\n{preview.expiring:,} deliveries would expire unsent. Send anyway?"):
        raise common.fail("not sent", code=1)


@app.command()
@common.one_line_errors
def send(
    template: str = typer.Argument(..., help="Template name, e.g. community-alert."),
    area: list[str] = typer.Option([], "--area", help="Postcode district/sector or named area."),
    topic: list[str] = typer.Option([], "--topic", help="Only registrants following a topic."),
    everyone: bool = typer.Option(False, "--all", help="Every active registrant."),
    source: str | None = typer.Option(
        None, "--source", help="transfer-notice: the file imported (its path or name) or origin."
    ),
    channels: str = typer.Option("sms,email,voice", "--channels"),
    var: list[str] = typer.Option([], "--var", help="Template variable, name=value."),
    urgent: bool = typer.Option(False, "--urgent", help="Go ahead of routine backlog."),
    expires: str | None = typer.Option(
        None, "--expires", help="Give up after this long (6h, 90m)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would be sent; send nothing."),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: the preview as JSON."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    allow_expiry: bool = typer.Option(
        False,
        "--allow-expiry",
        help="Send even if the ETA says some deliveries would expire unsent (needed with --yes).",
    ),
    wait: bool = typer.Option(False, "--wait", help="Stay and show progress until done."),
    operator: str | None = typer.Option(
        None, "--operator", help="Who sends (default: BROADCAST_OPERATOR or the OS user)."
    ),
    at: str | None = typer.Option(
        None, "--at", help="Send later: '2026-11-23 07:30' (local) or ISO."
    ),
    emergency: bool = typer.Option(False, "--emergency", help="No second approval (audited)."),
    escalate: str | None = typer.Option(
        None, "--escalate", help="Next channels if not reached: sms>voice"
    ),
    escalate_after: str | None = typer.Option(
        None, "--escalate-after", help="Window (default 15m)."
    ),
    idempotency_key: str | None = typer.Option(
        None,
        "--idempotency-key",
        help="Run again with the same key: the first alert, not a new one.",
    ),
    allow_duplicate: bool = typer.Option(
        False, "--allow-duplicate", help="Send even if the same alert was sent minutes ago."
    ),
    forces: str | None = typer.Option(
        None,
        "--forces",
        help="A regional alert to these forces' registrants (met,suffolk): one alert per force, "
        "in its name; another force's needs its approval.",
    ),
) -> None:
    """Preview, confirm, and queue (or schedule, or submit for approval) an alert.

    Exit 3: saved, but Redis is down; it goes out when Redis is back. Do not send it again.

    A repeat of an alert of the last BROADCAST_DUPLICATE_SEND_WINDOW (10m) asks first.

    With --yes a repeat is refused unless --allow-duplicate is given.
    """
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
    variables = parse_variables(var)
    rt = open_runtime()
    if idempotency_key is not None:
        key_args = (rt, idempotency_key, template, variables, chosen, targeting)
        if (earlier := send_guard.already_sent(*key_args)) is not None:
            return send_guard.report_already_sent(rt, earlier, idempotency_key)
    if forces is not None:
        if at or escalate or idempotency_key or source or as_json:
            raise InvalidInput(
                "a regional alert (--forces) is sent now: leave out --at, --escalate, "
                "--idempotency-key, --source and --json"
            )
        lifetime = core.parse_duration(expires or settings.alert_default_expiry)
        return alert_regional.send(
            rt,
            forces,
            template,
            variables,
            chosen,
            targeting,
            urgent=urgent,
            expires=core.parse_duration(expires) if expires else None,
            lifetime=lifetime,
            emergency=emergency,
            operator=operator or common.default_operator(),
            yes=yes,
            dry_run=dry_run,
            wait=wait,
            print_preview=_print_preview,
        )
    when = scheduling.parse_at(at, zone=zone(rt), now=rt.clock.now()) if at else None
    chain = escalation.parse_chain(escalate, chosen) if escalate else None
    window = escalation.window_seconds(escalate_after, settings.escalate_after) if chain else None
    if chain:
        core.preview_alert(rt, template, variables, tuple(chain.split(">")), Targeting())
    if as_json and not dry_run:
        raise InvalidInput("--json goes with --dry-run")
    # A scheduled alert's ETA is not known now, so only an immediate send is checked for expiry.
    lifetime = core.parse_duration(expires or settings.alert_default_expiry)
    preview = handover.preview(
        rt,
        template,
        variables,
        chosen,
        targeting,
        urgent=urgent,
        expires=None if when else lifetime,
    )
    core.require_recipients(rt, preview, targeting)
    if as_json:
        typer.echo(json.dumps(preview.as_dict()))
        return
    _print_preview(preview)
    twin_args = (rt, template, variables, chosen, targeting)
    send_guard.check_recent_twin(
        *twin_args, yes=yes, allow_duplicate=allow_duplicate, dry_run=dry_run, scheduled_at=when
    )
    if dry_run:
        common.console.print("\nDry run: nothing was queued.")
        return
    _expiry_gate(preview, urgent=urgent, yes=yes, allow_expiry=allow_expiry)
    if not yes and not typer.confirm(f"\nSend to {sum(preview.recipients.values()):,} deliveries?"):
        raise common.fail("not sent", code=1)
    sms = preview.messages.get("sms")
    who = operator or common.default_operator()
    alert, created = send_guard.create_once(
        idempotency_key,
        core.create_alert,
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
        idempotency_key=idempotency_key,
    )
    if not created:  # another command took the same key a moment ago
        assert idempotency_key is not None  # only a key finds an earlier alert
        return send_guard.report_already_sent(rt, alert, idempotency_key)
    assert alert.id is not None
    backend = worker_backend(rt)
    state, queue_down = handover.release(
        alert.id,
        approval.submit,
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
    audit_alert(
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
        state=state or "sending",
        emergency=emergency,
        scheduled_at=when,
        escalate=chain,
    )
    if state is None:
        handover.saved_not_queued(rt, alert.id, queue_down)
    lc.after_submit(rt, backend, alert.id, state, wait=wait)
    typer.echo(f"alert id: {alert.id}")


@app.command("list")
@common.one_line_errors
def list_(limit: int = typer.Option(20, help="How many, newest first.")) -> None:
    """Recent alerts with who sent them."""
    rt = open_runtime()
    table = Table("id", "created", "template", "channels", "flags", "status", "operator")
    for column in table.columns[5:]:
        column.no_wrap = True  # "pending-approval" and operators read whole
    found = core.list_alerts(rt, limit)
    ids = [a.id for a in found if a.id is not None]
    notes = lc.flags(rt, ids)
    counts = monitoring_figures.delivery_counts(rt.engine, alert_ids=ids) if ids else {}
    for a in found:
        extra = notes.get(a.id or 0, "")
        table.add_row(
            str(a.id),
            a.created_at.strftime("%Y-%m-%d %H:%M"),
            a.template,
            a.channels,
            " ".join(f for f in ("urgent" if a.urgent else "", extra) if f),
            status_label(a.status, counts.get(a.id, {})),
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
    rt = open_runtime()
    if watch:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the watch, status follows
            watch_progress(lambda: core.alert_status(rt, alert_id))
    view = handover.without_broker(rt, lambda r: core.alert_status(r, alert_id), json=as_json)
    parts = regional.parts_of(rt, view.alert)
    if as_json:
        extra: dict[str, object] = {"lifecycle": lc.describe_lines(rt, alert_id)}
        if parts:
            extra["regional"] = {
                "key": view.alert.regional_key,
                "parts": [p.as_dict() for p in parts],
            }
        typer.echo(json.dumps(view.as_dict() | extra))
        return
    a = view.alert
    common.console.print(
        f"Alert {a.id} {a.template} [{view.outcome}] by {a.operator}"
        f"{' URGENT' if a.urgent else ''}",
        highlight=False,
        markup=False,  # "[done]" is not a style
    )
    print_summary(view)
    for channel, line in view.eta.items():
        common.console.print(f"  ETA {channel}: {line}", highlight=False)
    if view.expiry:
        common.console.print(f"  ! {view.expiry}", highlight=False)
    for line in lc.describe_lines(rt, alert_id):
        common.console.print(f"  {line}", highlight=False, markup=False)
    if parts:
        _print_parts(parts)


def _print_parts(parts: list[regional.PartStatus]) -> None:
    """The whole of a regional alert: each force's part, its state and deliveries."""
    sent = sum(p.states.get("sent", 0) + p.states.get("delivered", 0) for p in parts)
    total = sum(sum(p.states.values()) for p in parts)
    common.console.print(
        f"Regional alert: {len(parts)} forces, {sent:,} of {total:,} deliveries sent",
        highlight=False,
    )
    for p in parts:
        counts = ", ".join(f"{s} {n:,}" for s, n in sorted(p.states.items())) or "none planned"
        common.console.print(
            f"  {p.force_code} ({p.force_name}): alert {p.alert_id} [{p.status}] {counts}",
            highlight=False,
            markup=False,
        )


@app.command()
@common.one_line_errors
def cancel(
    alert_id: int,
    notify_sent: str | None = typer.Option(
        None, "--notify-sent", help="Send this template as a correction to those already reached."
    ),
    var: list[str] = typer.Option([], "--var", help="Variable of the correction, name=value."),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the transition log)."),
    operator: str = OPERATOR,
) -> None:
    """Nothing not yet handed to a provider goes out after this returns (scheduled or awaiting
    approval: it never goes out)."""
    rt = open_runtime()
    who = operator or common.default_operator()
    n = approval.cancel(rt, alert_id, operator=who, reason=reason)
    audit_alert(rt, "alert.cancelled", alert_id, operator, deliveries_stopped=n)
    common.console.print(f"Alert {alert_id} cancelled: {n:,} deliveries will not be sent.")
    if notify_sent:
        lc.send_followup(alert_id, notify_sent, var, kind="correction", operator=who, yes=True)


@app.command("retry-failed")
@common.one_line_errors
def retry_failed(alert_id: int, operator: str = OPERATOR) -> None:
    """Queue again the deliveries that failed for transient reasons.

    Exit 3: saved, but Redis is down; it goes out when Redis is back (the sweeper).
    """
    rt = open_runtime()
    backend = worker_backend(rt)
    who = operator or common.default_operator()
    n, queue_down = handover.release(
        alert_id, core.retry_failed, rt, backend.dispatcher, alert_id, operator=who
    )
    audit_alert(rt, "alert.retried", alert_id, operator, deliveries_requeued=n)
    if n is None:
        handover.saved_not_queued(
            rt,
            alert_id,
            queue_down,
            what=f"Alert {alert_id}: its failed deliveries are queued again and go out",
        )
    common.console.print(f"{n:,} deliveries queued again.")
    if n and backend.embedded:
        backend.run()


@app.command()
@common.one_line_errors
def resume(
    alert_id: int,
    stale_after: float | None = typer.Option(
        None, help="Seconds before a `sending` delivery is stale."
    ),
    operator: str = OPERATOR,
) -> None:
    """After a broker loss or a worker crash: queue what is left, settle stale sends.

    Exit 3: saved, but Redis is down; it goes out when Redis is back (the sweeper).
    """
    rt = open_runtime()
    backend = worker_backend(rt)
    report, queue_down = handover.release(
        alert_id, recovery.resume_alert, rt, backend.dispatcher, alert_id, stale_after=stale_after
    )
    audit_alert(rt, "alert.resumed", alert_id, operator, report=str(report or "queue unreachable"))
    if report is None:
        handover.saved_not_queued(
            rt, alert_id, queue_down, what=f"Alert {alert_id}: what is left is queued and goes out"
        )
    common.console.print(f"Alert {alert_id}: {report}")
    if backend.embedded:
        backend.run()


# After the sending commands, so that `alert --help` lists them in the same order as always.
lc.register(app)
