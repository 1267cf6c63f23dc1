"""Follow-ups: `alert update`, `alert all-clear`, and the correction sent by
`alert cancel --notify-sent`. They go to exactly the registrants who were sent the original
(by it or by its escalation steps), on the channels they were sent on, minus anyone who has
since unsubscribed, been suppressed or erased. Recipients are worked out when the follow-up is
released, set-based in one INSERT ... SELECT, like the first alert.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection, Select, and_, func, select
from sqlalchemy.orm import aliased

from broadcast.alerts import compose as alerts
from broadcast.alerts import lifecycle
from broadcast.delivery.planning import Targeting, insert_queued
from broadcast.errors import InvalidInput
from broadcast.runtime import Runtime
from broadcast.store.tables import (
    Alert,
    AlertLifecycle,
    Delivery,
    Registrant,
    Subscription,
    SubscriptionStatus,
)
from broadcast.vocabulary import CHANNELS, MAY_HAVE_REACHED_STATES, AlertState, split_channels

KINDS = lifecycle.FOLLOW_UP_KINDS


def family(conn: Connection, alert_id: int) -> list[int]:
    """The alert and its escalation steps (and theirs)."""
    out, frontier = [alert_id], [alert_id]
    while frontier:
        frontier = list(
            conn.execute(
                select(AlertLifecycle.alert_id).where(
                    AlertLifecycle.parent_id.in_(frontier), AlertLifecycle.kind == "escalation"
                )
            ).scalars()
        )
        out += frontier
    return out


def _reached(
    conn: Connection, parent_id: int, channels: tuple[str, ...] | None = None
) -> Select[int, str]:
    """SELECT DISTINCT registrant_id, channel of those the parent reached, still subscribed. A
    household delivery reached its registrant if the call it shared did."""
    call = aliased(Delivery)
    statement = (
        select(Delivery.registrant_id, Delivery.channel)
        .outerjoin(call, call.id == Delivery.call_id)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .join(
            Subscription,
            and_(
                Subscription.registrant_id == Delivery.registrant_id,
                Subscription.channel == Delivery.channel,
            ),
        )
        .where(
            Delivery.alert_id.in_(family(conn, parent_id)),
            func.coalesce(call.state, Delivery.state).in_(MAY_HAVE_REACHED_STATES),
            Subscription.status == SubscriptionStatus.ACTIVE,
            Registrant.erased_at.is_(None),
        )
        .distinct()
    )
    if channels is not None:
        statement = statement.where(Delivery.channel.in_(channels))
    return statement


def reached_counts(rt: Runtime, parent_id: int) -> dict[str, int]:
    with rt.engine.connect() as conn:
        sub = _reached(conn, parent_id).subquery()
        rows = conn.execute(select(sub.c.channel, func.count()).group_by(sub.c.channel))
        found: dict[str, int] = {str(c): int(n) for c, n in rows}
    return {c: int(found[c]) for c in CHANNELS if found.get(c)}


def plan_followup(conn: Connection, alert: Alert, parent_id: int) -> int:
    """Insert the follow-up's deliveries (state queued); how many."""
    assert alert.id is not None
    channels = split_channels(alert.channels)
    return insert_queued(conn, alert.id, _reached(conn, parent_id, channels))


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
