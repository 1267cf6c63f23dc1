"""`broadcast alert send ... --forces met,suffolk`: one alert per receiving force
(alerts.regional), previewed force by force, each part submitted under its force's policy."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import typer

from broadcast.alerts import compose as core
from broadcast.alerts import regional
from broadcast.cli import alert_lifecycle as lc
from broadcast.cli import common, handover
from broadcast.cli.alert_common import audit_alert, worker_backend
from broadcast.delivery.planning import Targeting
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.vocabulary import AlertState


def send(
    rt: Runtime,
    codes: str,
    template: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
    *,
    urgent: bool,
    expires: timedelta | None,
    lifetime: timedelta,
    emergency: bool,
    operator: str,
    yes: bool,
    dry_run: bool,
    wait: bool,
    print_preview: Callable[[core.AlertPreview], None],
) -> None:
    assert rt.force is not None
    forces = regional.receiving_forces(rt, codes.split(","))
    previews: dict[str, core.AlertPreview] = {}
    for force in forces:
        part_rt = rt.for_force(force.id)
        preview = handover.preview(
            part_rt, template, variables, channels, targeting, urgent=urgent, expires=lifetime
        )
        if sum(preview.recipients.values()):
            previews[force.code] = preview
    if not previews:
        raise InvalidInput("no registrant of those forces matches the targeting: nothing to send")
    first = next(iter(previews.values()))
    print_preview(first)
    out = common.console
    out.print("\n[bold]Regional alert[/]: one alert per force, in its name", highlight=False)
    for force in forces:
        found = previews.get(force.code)
        counts = ", ".join(f"{c} {n:,}" for c, n in found.recipients.items()) if found else ""
        who = "" if force.id == rt.force.id else "; needs its approval"
        line = f"{counts}{who}" if found else "nobody targeted: no alert"
        out.print(f"  {force.code} ({force.name or force.code}): {line}", highlight=False)
    if dry_run:
        out.print("\nDry run: nothing was queued.")
        return
    total = sum(sum(p.recipients.values()) for p in previews.values())
    if not yes and not typer.confirm(f"\nSend to {total:,} deliveries in {len(previews)} forces?"):
        raise common.fail("not sent", code=1)
    backend = worker_backend(rt)
    parts = regional.send_regional(
        rt,
        backend.dispatcher,
        [f for f in forces if f.code in previews],
        template,
        variables,
        channels,
        targeting,
        operator=operator,
        urgent=urgent,
        expires=expires,
        emergency=emergency,
    )
    for part in parts:
        part_rt = rt.for_force(part.force.id)
        details = {"template": template, "channels": sorted(channels), "state": part.state}
        if part.force.id == rt.force.id:
            audit_alert(
                part_rt, "alert.sent", part.alert_id, operator, **details, emergency=emergency
            )
        else:
            # In the receiving force's own log: who asked it to send, from which force.
            audit_alert(
                part_rt,
                "alert.regional-part",
                part.alert_id,
                operator,
                **details,
                from_force=rt.force.code,
            )
    released = []
    for part in parts:
        name = part.force.name or part.force.code
        if part.state == AlertState.PENDING_APPROVAL:
            out.print(
                f"{part.force.code}: alert {part.alert_id} awaits {name}'s approval "
                f"(`broadcast --force {part.force.code} alert approve {part.alert_id}`).",
                highlight=False,
            )
        else:
            released.append(part)
    own = next((p for p in released if p.force.id == rt.force.id), None)
    if own is not None:
        lc.after_submit(rt, backend, own.alert_id, own.state, wait=wait)
    elif released and backend.embedded:
        backend.run()
    for part in released:
        if part is not own:
            planned = core.delivery_counts(rt.for_force(part.force.id), part.alert_id)
            shown = ", ".join(f"{c} {n:,}" for c, n in planned.items())
            out.print(f"{part.force.code}: alert {part.alert_id} queued: {shown}")
    typer.echo("alert ids: " + ", ".join(f"{p.force.code} {p.alert_id}" for p in parts))
