"""Who can still be sent an alert: the one rule planning, follow-ups and escalation share.

A registrant can be sent on a channel while they are not erased, hold a subscription to it in
an allowed status (active; a transfer notice also goes to pending ones) and have an address that
channel can use. Follow-ups and escalation steps pick registrants from an earlier alert's
deliveries, where a `household` delivery (voice, sharing a number) fares as the call it shared.
`planning.recipients` adds the alert's own targeting (areas, topics, import source) on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import InstrumentedAttribute, aliased

from broadcast.store.addresses import has_address, has_subscription_address
from broadcast.store.tables import Delivery, Registrant, Subscription, SubscriptionStatus
from broadcast.vocabulary import MAY_HAVE_REACHED_STATES

# The call a `household` delivery shared (`Delivery.call_id`); outer-joined by `from_deliveries`.
CALL = aliased(Delivery, name="call")


def sendable(
    statuses: Sequence[str] = (SubscriptionStatus.ACTIVE,), *, channel: str | None = None
) -> list[ColumnElement[bool]]:
    """Conditions on a FROM holding `Registrant` and the `Subscription` row of the channel: the
    subscription is in `statuses`, the registrant is not erased and has an address on the
    channel (`channel` when it is one known channel, so the check uses that column's index)."""
    address = has_address(channel) if channel is not None else has_subscription_address()
    return [Subscription.status.in_(statuses), Registrant.erased_at.is_(None), address]


def fared(column: str) -> ColumnElement[Any]:
    """The delivery's `column`, or that of the call it shared when it was a household one."""
    return func.coalesce(getattr(CALL, column), getattr(Delivery, column))


def from_deliveries(
    columns: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    alert_ids: Sequence[int],
    channel: str | None = None,
) -> Select[Any]:
    """SELECT `columns` FROM the deliveries of `alert_ids` (with the call each shared, `CALL`),
    for registrants who can still be sent on `channel` (the delivery's own channel if None)."""
    on = Delivery.channel if channel is None else channel
    return (
        select(*columns)
        .select_from(Delivery)
        .outerjoin(CALL, CALL.id == Delivery.call_id)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .join(
            Subscription,
            and_(Subscription.registrant_id == Delivery.registrant_id, Subscription.channel == on),
        )
        .where(Delivery.alert_id.in_(alert_ids), *sendable(channel=channel))
    )


def reached(alert_ids: Sequence[int], channels: tuple[str, ...] | None = None) -> Select[Any]:
    """SELECT DISTINCT registrant_id, channel of those the alerts may have reached, who can still
    be sent on that channel (a follow-up's recipients)."""
    statement = from_deliveries([Delivery.registrant_id, Delivery.channel], alert_ids).where(
        fared("state").in_(MAY_HAVE_REACHED_STATES)
    )
    if channels is not None:
        statement = statement.where(Delivery.channel.in_(channels))
    return statement.distinct()
