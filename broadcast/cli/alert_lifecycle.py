"""`broadcast alert approve | reject | update | all-clear`, and what `send`, `cancel`, `list`
and `status` show of the lifecycle (approval, schedule, follow-ups, escalation, transitions).

`broadcast/cli/alerts.py` registers the commands on the `alert` app (`register`); no Dramatiq
here either.
"""

from __future__ import annotations

from typing import Any

import typer

from broadcast.alerts import approval, escalation, followups, lifecycle, scheduling
from broadcast.alerts import compose as core
from broadcast.cli import common, handover
from broadcast.cli.alert_common import (
    OPERATOR,
    audit_alert,
    open_runtime,
    parse_variables,
    print_summary,
    worker_backend,
)
from broadcast.cli.progress import watch_progress
from broadcast.clock import aware
from broadcast.delivery import quiet_hours
from broadcast.runtime import Runtime
from broadcast.vocabulary import AlertState


def local(rt: Runtime, when: Any) -> str:
    shown = aware(when).astimezone(quiet_hours.zone(rt))
    return shown.strftime("%Y-%m-%d %H:%M %Z")


def after_submit(rt: Runtime, backend: Any, alert_id: int, state: str, *, wait: bool) -> None:
    """Say what happened to a submitted or approved alert; embedded, deliver it here."""
    out = common.console
    if state == AlertState.PENDING_APPROVAL:
        out.print(
            f"Alert {alert_id} awaits approval: another operator runs "
            f"`broadcast alert approve {alert_id}`. Nothing was sent.",
            highlight=False,
        )
        return
    if state == AlertState.SCHEDULED:
        when = scheduling.scheduled_at(rt, alert_id)
        out.print(
            f"Alert {alert_id} scheduled for {local(rt, when)}; the scheduler releases it "
            "(`broadcast scheduler run` without worker processes).",
            highlight=False,
        )
        return
    counts = core.delivery_counts(rt, alert_id)
    shown = ", ".join(f"{c} {n:,}" for c, n in counts.items()) or "nobody"
    out.print(f"Alert {alert_id} queued: {shown}")
    if backend.embedded:
        out.print("No BROADCAST_REDIS_URL: sending in this process...")
        if wait:
            watch_progress(lambda: core.alert_status(rt, alert_id), run=backend.run)
        else:
            backend.run()
    elif wait:
        watch_progress(lambda: core.alert_status(rt, alert_id))
    if backend.embedded or wait:
        view = core.alert_status(rt, alert_id)
        print_summary(view)
        held = view.states.get("voice", {}).get("queued", 0)
        if backend.embedded and held:
            out.print(
                f"  {held:,} routine call(s) held for quiet hours; `broadcast scheduler run` "
                "places them when the quiet hours end.",
                highlight=False,
            )


@common.one_line_errors
def approve(
    alert_id: int,
    wait: bool = typer.Option(False, "--wait", help="Stay and show progress until done."),
    operator: str = OPERATOR,
) -> None:
    """Approve an alert another operator sent (two-person rule): it goes out, or is scheduled.

    Exit 3: saved, but Redis is down; it goes out when Redis is back (the sweeper).
    """
    rt = open_runtime()
    backend = worker_backend(rt)
    who = operator or common.default_operator()
    state, queue_down = handover.release(
        alert_id, approval.approve, rt, backend.dispatcher, alert_id, operator=who
    )
    audit_alert(rt, "alert.approved", alert_id, who, state=state or AlertState.SENDING)
    if state is None:
        handover.saved_not_queued(rt, alert_id, queue_down)
    after_submit(rt, backend, alert_id, state, wait=wait)


@common.one_line_errors
def reject(
    alert_id: int,
    reason: str = typer.Option(..., "--reason", help="Why; the sender sees it."),
    operator: str = OPERATOR,
) -> None:
    """Reject an alert awaiting approval: it ends and is never sent."""
    rt = open_runtime()
    who = operator or common.default_operator()
    approval.reject(rt, alert_id, operator=who, reason=reason)
    audit_alert(rt, "alert.rejected", alert_id, who, reason=reason)
    common.console.print(f"Alert {alert_id} rejected: {reason}", highlight=False)


def send_followup(
    parent_id: int,
    template: str,
    var: list[str],
    *,
    kind: str,
    operator: str | None,
    yes: bool,
    wait: bool = False,
    urgent: bool | None = None,
) -> int:
    """Create, confirm and submit a follow-up of `parent_id`; its id."""
    rt = open_runtime()
    who = operator or common.default_operator()
    variables = parse_variables(var)
    counts = followups.reached_counts(rt, parent_id)
    shown = ", ".join(f"{c} {n:,}" for c, n in counts.items()) or "nobody"
    common.console.print(f"{kind} of alert {parent_id} to those it reached: {shown}")
    if counts and not yes and not typer.confirm(f"Send the {kind}?"):
        raise common.fail("not sent", code=1)
    alert = followups.create_followup(
        rt, parent_id, template, variables, kind=kind, operator=who, urgent=urgent
    )
    assert alert.id is not None
    backend = worker_backend(rt)
    state, queue_down = handover.release(
        alert.id, approval.submit, rt, backend.dispatcher, alert, operator=who
    )
    audit_alert(rt, "alert.follow-up", alert.id, who, kind=kind, of=parent_id, template=template)
    if state is None:
        handover.saved_not_queued(rt, alert.id, queue_down)
    after_submit(rt, backend, alert.id, state, wait=wait)
    typer.echo(f"alert id: {alert.id}")
    return alert.id


YES = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")
VAR = typer.Option([], "--var", help="Template variable, name=value.")


@common.one_line_errors
def update(
    alert_id: int,
    template: str = typer.Argument(..., help="Template of the update, e.g. community-alert."),
    var: list[str] = VAR,
    yes: bool = YES,
    wait: bool = typer.Option(False, "--wait"),
    operator: str = OPERATOR,
) -> None:
    """Send an update to exactly those alert ID reached, on the channels it reached them on."""
    send_followup(alert_id, template, var, kind="update", operator=operator, yes=yes, wait=wait)


@common.one_line_errors
def all_clear(
    alert_id: int,
    template: str = typer.Argument("all-clear", help="Template (default: all-clear)."),
    var: list[str] = VAR,
    yes: bool = YES,
    operator: str = OPERATOR,
) -> None:
    """Tell those alert ID reached that it is over."""
    send_followup(alert_id, template, var, kind="all-clear", operator=operator, yes=yes)


def register(app: typer.Typer) -> None:
    """Add approve, reject, update and all-clear to the `alert` app."""
    app.command()(approve)
    app.command()(reject)
    app.command()(update)
    app.command("all-clear")(all_clear)


def describe_lines(rt: Runtime, alert_id: int) -> list[str]:
    """The lifecycle part of `alert status`: link, approval, schedule, escalation, chain, log."""
    info = lifecycle.info(rt.engine, alert_id)
    lines = []
    if info.parent_id:
        lines.append(f"{info.kind} of alert {info.parent_id}")
    if info.emergency:
        lines.append("EMERGENCY: sent without approval")
    if info.approved_by:
        lines.append(f"approved by {info.approved_by}")
    if info.scheduled_at:
        lines.append(f"scheduled for {local(rt, info.scheduled_at)}")
    if info.reason:
        lines.append(f"reason: {info.reason}")
    if info.escalate:
        after = escalation.describe_window(info.escalate_after)
        lines.append(f"escalates {info.escalate} (not delivered within {after})")
    for child in lifecycle.children(rt.engine, alert_id):
        a = core.get_alert(rt, child.alert_id)
        counts = core.delivery_counts(rt, child.alert_id)
        shown = ", ".join(f"{c} {n:,}" for c, n in counts.items()) or "nobody"
        label = "escalated" if child.kind == "escalation" else child.kind
        lines.append(f"{label}: alert {a.id} {a.template} [{a.status}] {shown}")
    for step in lifecycle.history(rt.engine, alert_id):
        why = f" ({step.reason})" if step.reason else ""
        came = f"{step.from_state} -> " if step.from_state else ""
        lines.append(
            f"{local(rt, step.occurred_at)}  {came}{step.to_state} by {step.operator}{why}"
        )
    return lines


def flags(rt: Runtime, alert_ids: list[int]) -> dict[int, str]:
    """For `alert list`: urgent, EMERGENCY, follow-up/escalation links, the scheduled time."""
    found = lifecycle.infos(rt.engine, alert_ids)
    out = {}
    for alert_id, info in found.items():
        parts = []
        if info.emergency:
            parts.append("EMERGENCY")
        if info.parent_id:
            parts.append(f"{info.kind} of {info.parent_id}")
        if info.scheduled_at and info.scheduled_at > rt.clock.now():
            parts.append(f"at {local(rt, info.scheduled_at)}")
        out[alert_id] = " ".join(parts)
    return out
