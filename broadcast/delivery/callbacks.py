"""Provider status callbacks: a message or call Twilio reports delivered or undeliverable.

Called by the web app's Twilio routes (after the signature check) inside one transaction.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from broadcast.channels.twilio.errors import classify
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.people import suppress_channel
from broadcast.store.tables import Delivery, Registrant
from broadcast.vocabulary import CALLBACK_MOVABLE_STATES, DeliveryState

# Twilio message and call statuses that end a delivery, and what they mean for us.
DELIVERED = frozenset({"delivered", "read", "completed"})
UNDELIVERABLE = frozenset({"undelivered", "failed", "busy", "no-answer", "canceled"})


def delivery_state(status: str) -> str | None:
    """Our delivery state for a Twilio message or call status; None while still in progress."""
    status = status.strip().lower()
    if status in DELIVERED:
        return DeliveryState.DELIVERED
    if status in UNDELIVERABLE:
        return DeliveryState.UNDELIVERABLE
    return None


def apply_status_callback(
    session: Session,
    provider_id: str,
    status: str,
    error_code: str | None,
    key: bytes | None = None,
) -> bool:
    """Move the delivery with this provider id to delivered/undeliverable; True if it changed.

    Repeated or out-of-order callbacks are harmless: only a delivery still on its way (queued,
    sending, sent, in doubt) moves, so a final state never changes again, and in-progress
    statuses ("sent", "ringing"...) change nothing. An error code that means the recipient
    opted out at the provider (21610) suppresses the address, given the suppression `key`.
    """
    state = delivery_state(status)
    if state is None or not provider_id:
        return False
    row = session.scalars(select(Delivery).where(Delivery.provider_id == provider_id)).first()
    if row is None or row.state not in CALLBACK_MOVABLE_STATES:
        return False
    row.state = state
    if state == DeliveryState.UNDELIVERABLE and error_code:
        code = int(error_code) if error_code.isdigit() and len(error_code) < 9 else None
        kind, reason = classify(code, None)
        row.error_code = error_code[:40]
        row.error_text = reason[:300]
        registrant = session.get(Registrant, row.registrant_id)
        if kind == "suppress" and key is not None and registrant is not None:
            source = ConsentSource(source="provider-callback", detail=f"Twilio {error_code}")
            suppress_channel(
                session=session,
                registrant=registrant,
                channel=row.channel,
                reason="opted-out",
                source=source,
                key=key,
            )
    session.add(row)
    return True
