"""Double opt-in: every new channel starts pending until its owner proves they hold the address.

Email gets a link (a signed token), SMS a 6-digit code, voice a call where the listener presses 1.
Only a keyed hash of the code or link token is stored (`Subscription.confirmation_hash`), with the
time it was sent and the wrong tries so far; a new code replaces the old one. Codes and links die
with the pending channel after `pending_expiry_hours`, and after `confirmation_max_attempts`
wrong codes (the registrant can ask for a new one).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlmodel import Session

from broadcast.errors import BroadcastError
from broadcast.registrants import people as registrants
from broadcast.registrants import suppression
from broadcast.registrants.consent import ConsentSource
from broadcast.store.tables import (
    ConsentEvent,
    Registrant,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from broadcast.vocabulary import address_for

if TYPE_CHECKING:
    from broadcast.settings import Settings


class ConfirmationFailed(BroadcastError):
    """The code or link was wrong, used up, locked after too many tries, or expired."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "wrong", "locked", "expired", "not-pending"


@dataclass(frozen=True)
class Policy:
    """How long a pending channel lives and how many wrong codes it takes."""

    expiry: timedelta = timedelta(hours=72)
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            timedelta(hours=settings.pending_expiry_hours), settings.confirmation_max_attempts
        )


def _digest(secret: str, subscription_id: int, key: bytes) -> str:
    # Bound to the subscription, so a code for one sign-up is worthless for another.
    return hmac.digest(key, f"confirm:{subscription_id}:{secret}".encode(), "sha256").hex()


def new_code() -> str:
    """Six random digits, leading zeros kept."""
    return f"{secrets.randbelow(1_000_000):06d}"


def pending(*, session: Session, registrant: Registrant, channel: str) -> Subscription | None:
    assert registrant.id is not None
    sub = registrants.subscriptions(session=session, registrant_id=registrant.id).get(channel)
    return sub if sub is not None and sub.status == SubscriptionStatus.PENDING else None


def issue(*, session: Session, subscription: Subscription, secret: str | None, key: bytes) -> None:
    """Record that a confirmation (code, link token, or a call when `secret` is None) was sent."""
    assert subscription.id is not None
    subscription.confirmation_hash = _digest(secret, subscription.id, key) if secret else None
    subscription.confirmation_sent_at = utcnow()
    subscription.confirmation_attempts = 0
    session.add(subscription)


def _check_live(subscription: Subscription, policy: Policy, now: datetime) -> None:
    sent = subscription.confirmation_sent_at
    if sent is None or now - sent > policy.expiry:
        raise ConfirmationFailed("this confirmation has expired", reason="expired")


def verify(
    *,
    session: Session,
    registrant: Registrant,
    channel: str,
    secret: str,
    key: bytes,
    source: ConsentSource,
    policy: Policy,
) -> None:
    """Confirm a pending channel with the code or link token sent for it.

    Raises:
        ConfirmationFailed: wrong (one try used), locked, expired, or nothing pending.
    """
    sub = pending(session=session, registrant=registrant, channel=channel)
    if sub is None or sub.id is None or sub.confirmation_hash is None:
        raise ConfirmationFailed("there is nothing waiting to be confirmed", reason="not-pending")
    _check_live(sub, policy, utcnow())
    if sub.confirmation_attempts >= policy.max_attempts:
        raise ConfirmationFailed("too many wrong codes; ask for a new one", reason="locked")
    if not hmac.compare_digest(_digest(secret.strip(), sub.id, key), sub.confirmation_hash):
        sub.confirmation_attempts += 1
        session.add(sub)
        raise ConfirmationFailed("that code is not right", reason="wrong")
    confirm(session=session, registrant=registrant, channel=channel, key=key, source=source)


def confirm(
    *, session: Session, registrant: Registrant, channel: str, key: bytes, source: ConsentSource
) -> bool:
    """Make a pending channel active (the owner proved the address); False if none was pending.

    This is the one place an earlier opt-out of the address is lifted: its owner has just
    proved they hold it (a sign-up naming it never lifts it).
    """
    sub = pending(session=session, registrant=registrant, channel=channel)
    if sub is None:
        return False
    sub.confirmation_hash = None
    address = address_for(channel, registrant)
    if address is not None:
        suppression.lift(session=session, channel=channel, address=address, key=key)
    registrants.set_status(
        session=session,
        registrant=registrant,
        channel=channel,
        status=SubscriptionStatus.ACTIVE,
        event=ConsentEvent.CONFIRMED,
        source=source,
        key=key,
    )
    return True


def expire_pending(
    *, session: Session, policy: Policy, key: bytes, now: datetime | None = None
) -> int:
    """Close every pending channel whose confirmation went out longer ago than the policy allows.

    The channel becomes unsubscribed (reason "confirmation expired") without suppressing the
    address: the person never said no, they just did not say yes, and may sign up again.
    Returns how many channels expired.
    """
    cutoff = (now or utcnow()) - policy.expiry
    stale = session.scalars(
        select(Subscription).where(
            Subscription.status == SubscriptionStatus.PENDING,
            func.coalesce(Subscription.confirmation_sent_at, Subscription.updated_at) < cutoff,
        )
    ).all()
    source = ConsentSource("web", detail="confirmation expired")
    for sub in stale:
        registrant = session.get(Registrant, sub.registrant_id)
        if registrant is None:
            continue
        sub.confirmation_hash = None
        registrants.set_status(
            session=session,
            registrant=registrant,
            channel=sub.channel,
            status=SubscriptionStatus.UNSUBSCRIBED,
            event=ConsentEvent.UNSUBSCRIBED,
            source=source,
            key=key,
            reason="confirmation expired",
        )
    return len(stale)
