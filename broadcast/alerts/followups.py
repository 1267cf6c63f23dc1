"""Follow-ups: `alert update`, `alert all-clear`, and the correction sent by
`alert cancel --notify-sent`. They go to exactly the registrants who were sent the original
(by it or by its escalation steps), on the channels they were sent on, minus anyone who has
since unsubscribed, been suppressed or erased (`delivery.targeting.reached`). Recipients are
worked out when the follow-up is released (`lifecycle.plan_followup`), set-based in one
INSERT ... SELECT, like the first alert.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select

from broadcast.alerts import compose as alerts
from broadcast.alerts import lifecycle
from broadcast.delivery.planning import Targeting
from broadcast.delivery.targeting import reached
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, AlertLifecycle
from broadcast.vocabulary import CHANNELS, AlertState

KINDS = lifecycle.FOLLOW_UP_KINDS


def reached_counts(rt: Runtime, parent_id: int) -> dict[str, int]:
    with rt.engine.connect() as conn:
        sub = reached(lifecycle.family(conn, parent_id)).subquery()
        rows = conn.execute(select(sub.c.channel, func.count()).group_by(sub.c.channel))
        found: dict[str, int] = {str(c): int(n) for c, n in rows}
    return {c: int(found[c]) for c in CHANNELS if found.get(c)}


def create_followup(
    rt: Runtime,
    parent_id: int,
    template_name: str,
    variables: Mapping[str, str],
    *,
    kind: str,
    operator: str,
    urgent: bool | None = None,
) -> Alert:
    """A draft follow-up linked to `parent_id`, on the channels the parent reached people on."""
    if kind not in KINDS:
        raise ValueError(f"unknown follow-up kind {kind!r}")
    parent = alerts.get_alert(rt, parent_id)
    counts = reached_counts(rt, parent_id)
    if not counts:
        raise InvalidInput(
            f"alert {parent_id} ({parent.status}) has reached nobody; nobody to follow up"
        )
    template = rt.template(template_name)
    missing = [c for c in counts if c not in template.channels]
    if missing:
        raise InvalidInput(
            f"alert {parent_id} reached people by {', '.join(missing)}, which template "
            f"{template_name!r} has no message for"
        )
    sms_segments = 1
    if "sms" in counts:
        preview = alerts.preview_alert(
            rt, template_name, variables, ("sms",), Targeting(), urgent=bool(urgent)
        )
        sms = preview.messages["sms"].sms
        sms_segments = sms.segments if sms else 1
    alert = alerts.create_alert(
        rt,
        template_name,
        variables,
        tuple(counts),
        Targeting(),
        operator=operator,
        urgent=parent.urgent if urgent is None else urgent,
        sms_segments=sms_segments,
        status=AlertState.DRAFT,
    )
    assert alert.id is not None
    with rt.engine.begin() as conn:
        lifecycle.attach(
            conn,
            AlertLifecycle(alert_id=alert.id, kind=kind, parent_id=parent_id),
            operator=operator,
        )
    return alert
