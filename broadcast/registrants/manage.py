"""Applying a manage-page form: the store's amend, plus double opt-in for anything new.

A channel the registrant unticks is unsubscribed (and its address suppressed) before any address
changes, so the suppression names the old address. A channel added, or whose address changed,
goes back to pending and gets a fresh confirmation (sent by the caller once committed).
"""

from __future__ import annotations

from sqlmodel import Session

from broadcast.registrants import people as registrants
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.links import LinkSigner
from broadcast.registrants.signup import PendingMessage, live_registrant, prepare
from broadcast.registrants.validation import RegistrantDraft
from broadcast.store.tables import ConsentEvent, SubscriptionStatus
from broadcast.vocabulary import address_for

LIVE = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PENDING)


def save_changes(
    *,
    session: Session,
    public_id: str,
    draft: RegistrantDraft,
    source: ConsentSource,
    key: bytes,
    signer: LinkSigner,
) -> list[PendingMessage]:
    """Apply the form; the confirmations to send once committed."""
    registrant = live_registrant(session, public_id)
    if registrant is None:
        return []
    assert registrant.id is not None
    held = registrants.subscriptions(session=session, registrant_id=registrant.id)
    before = {c: address_for(c, registrant) for c in registrants.CHANNELS}
    dropped = [c for c, s in held.items() if s.status in LIVE and c not in draft.channels]
    if dropped:
        registrants.unsubscribe(
            session=session, registrant=registrant, channels=dropped, source=source, key=key
        )
    view = registrants.views(session=session, registrants=[registrant])[0]
    changed = {
        f
        for f in ("name", "postcode", "email", "mobile", "landline")
        if getattr(draft, f) != getattr(registrant, f)
    }
    changed |= {f for f in ("areas", "topics") if set(getattr(draft, f)) != set(view[f])}
    was_live = {c for c, s in held.items() if s.status in LIVE and c not in dropped}
    registrants.amend(
        session=session,
        registrant=registrant,
        draft=draft,
        changed=changed,
        source=source,
        key=key,
        new_channel_status=SubscriptionStatus.PENDING,
    )
    to_confirm = [c for c in sorted(draft.channels) if c not in was_live]
    for channel in sorted(draft.channels & was_live):
        if address_for(channel, registrant) != before[channel]:
            # A new address has to be proved like a new sign-up before alerts go to it.
            registrants.set_status(
                session=session,
                registrant=registrant,
                channel=channel,
                status=SubscriptionStatus.PENDING,
                event=ConsentEvent.AMENDED,
                source=ConsentSource(source.source, "new address, awaiting confirmation"),
                key=key,
            )
            to_confirm.append(channel)
    return [
        m
        for c in to_confirm
        if (m := prepare(session=session, registrant=registrant, channel=c, key=key, signer=signer))
    ]
