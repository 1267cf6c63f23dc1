"""Sending an alert twice by mistake: the recent twin, and the idempotency key.

An operator who saw an error (a broker outage, a lost terminal) and runs `alert send` again must
not send everyone a second copy. Two guards:
- `recent_twin`: an alert created within BROADCAST_DUPLICATE_SEND_WINDOW with the same template,
  variables and targeting (areas, topics, everyone, source, channels); the CLI asks, and with
  --yes refuses unless --allow-duplicate;
- `by_key`: an alert sent with the same `--idempotency-key`; the key is a unique column, so even
  two commands racing each other create one alert.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import Session

from broadcast.capacity import Rate
from broadcast.clock import aware
from broadcast.delivery.planning import Targeting
from broadcast.store.tables import Alert, AlertLifecycle, Delivery, utcnow
from broadcast.vocabulary import AlertState, split_channels

# An alert in one of these states has gone, is going, or will go out.
LIVE = (AlertState.PENDING_APPROVAL, AlertState.SCHEDULED, AlertState.SENDING, AlertState.COMPLETED)


def window(text: str) -> timedelta | None:
    """BROADCAST_DUPLICATE_SEND_WINDOW ('10m', '1h'); None when off ('0', '0m', 'off')."""
    value = text.strip().lower()
    if value in ("", "off", "0") or value.rstrip("smhd") == "0":
        return None
    return timedelta(seconds=Rate.parse(f"1/{value}", setting="duplicate_send_window").seconds)


def same_request(
    alert: Alert,
    template: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
) -> bool:
    """Would `alert` reach the same people with the same message? Order of lists is ignored."""

    def items(text: str) -> set[str]:
        return {part for part in text.split(",") if part}

    return (
        alert.template == template
        and json.loads(alert.variables or "{}") == dict(variables)
        and set(split_channels(alert.channels)) == set(channels)
        and items(alert.areas) == set(targeting.areas)
        and items(alert.topics) == set(targeting.topics)
        and bool(alert.everyone) == targeting.everyone
        and (alert.source or None) == (targeting.source or None)
    )


def recent_twin(
    engine: Engine,
    template: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
    *,
    within: timedelta,
    scheduled_at: datetime | None = None,
) -> Alert | None:
    """The newest alert created in the last `within` that is the same request for the same
    time (`--at`, None: now) and that has reached or may still reach people, if any.

    Left out: alerts that never went out and never will (a draft, rejected or expired one,
    one cancelled before release), follow-ups and escalations (made from an alert, not sent
    anew)."""
    since = utcnow() - within
    statement = (
        select(Alert, AlertLifecycle.scheduled_at)
        .outerjoin(AlertLifecycle, AlertLifecycle.alert_id == Alert.id)
        .where(Alert.template == template, Alert.created_at >= since)
        .where(
            or_(
                Alert.status.in_(LIVE),
                and_(Alert.status == AlertState.CANCELLED, AlertLifecycle.released_at.is_not(None)),
            )
        )
        .where(or_(AlertLifecycle.kind.is_(None), AlertLifecycle.kind == "alert"))
        .order_by(Alert.id.desc())
    )
    wanted = aware(scheduled_at) if scheduled_at is not None else None
    with Session(engine) as session:
        for alert, when in session.execute(statement).all():
            if when != wanted:
                continue
            if same_request(alert, template, variables, channels, targeting):
                session.expunge(alert)
                assert isinstance(alert, Alert)  # Session.execute types its rows as Any
                return alert
    return None


def by_key(engine: Engine, key: str) -> Alert | None:
    """The alert sent with this idempotency key, if any."""
    with Session(engine) as session:
        found = select(Alert).where(Alert.idempotency_key == key)
        alert = session.execute(found).scalars().first()
        if alert is not None:
            session.expunge(alert)
        return alert


def age(alert: Alert) -> timedelta:
    return utcnow() - alert.created_at


def delivery_states(engine: Engine, alert_id: int) -> dict[str, int]:
    """Deliveries of the alert per state, every channel together (for "sent 1,200, queued 40")."""
    statement = (
        select(Delivery.state, func.count())
        .where(Delivery.alert_id == alert_id)
        .group_by(Delivery.state)
    )
    with engine.connect() as conn:
        return {state: int(n) for state, n in conn.execute(statement).all()}
