"""`vocabulary.address_for` in SQL: which registrant column a channel sends to."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_

from broadcast.store.tables import Registrant, Subscription
from broadcast.vocabulary import ADDRESS_FIELDS, CHANNELS


def address_column(channel: str) -> ColumnElement[str]:
    """The address `channel` sends to (voice: the landline if there is one, else the mobile)."""
    columns = [getattr(Registrant, name) for name in ADDRESS_FIELDS[channel]]
    return columns[0] if len(columns) == 1 else func.coalesce(*columns)


def has_address(channel: str) -> ColumnElement[bool]:
    """The registrant has an address `channel` can use. One IS NOT NULL per column, not one on
    the COALESCE, so planning's queries keep using the columns' indexes and statistics."""
    return or_(*(getattr(Registrant, name).is_not(None) for name in ADDRESS_FIELDS[channel]))


def has_subscription_address() -> ColumnElement[bool]:
    """The registrant has an address for the channel of the joined `Subscription` row."""
    return or_(*(and_(Subscription.channel == c, has_address(c)) for c in CHANNELS))
