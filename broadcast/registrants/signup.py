"""Sign-up and re-confirmation: the self-service policy over the store and double opt-in.

No enumeration: `subscribe` does the same visible thing whether the addresses are new, already
registered or suppressed; only the messages that go out differ, and they go to the addresses'
owners. Functions here only prepare confirmations (`PendingMessage`); the caller sends them after
the transaction commits (broadcast/delivery/confirmations.py), so a slow provider never holds a
database connection.

Against SMS pumping and strangers' sign-ups (docs/security-pumping.md): where both an email
address and a mobile are given, only the email goes out; the SMS code follows once the email is
confirmed (`after_email_confirmed`). A sign-up never lifts an opt-out: the code goes to the
opted-out number (once a day at most) saying that entering it re-subscribes the number, and only
the confirmation lifts the suppression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlmodel import Session, col

from broadcast.registrants import confirmation, suppression
from broadcast.registrants import people as registrants
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.links import LinkClaims, LinkSigner
from broadcast.registrants.validation import RegistrantDraft
from broadcast.store.tables import (
    ConsentEvent,
    Registrant,
    SubscriptionStatus,
    new_public_id,
    utcnow,
)
from broadcast.vocabulary import ChannelName, address_for

OWN_OPT_OUTS = suppression.OWN_OPT_OUTS
# An opted-out address gets at most one code in this long, whoever signs up with it.
OPTED_OUT_RESEND = timedelta(hours=24)
REOPENABLE = (None, SubscriptionStatus.PENDING, SubscriptionStatus.UNSUBSCRIBED)


@dataclass(frozen=True)
class PendingMessage:
    """One confirmation to send once the database transaction has committed."""

    public_id: str
    channel: str
    to: str
    language: str
    code: str | None = None
    confirm_token: str | None = None
    opted_out: bool = False  # the address had opted out: the message says what confirming does


@dataclass
class SignupOutcome:
    """`code_public_id`: whose SMS code the follow-up page asks for (a decoy when none was sent,
    so the page looks the same either way)."""

    code_public_id: str | None
    messages: list[PendingMessage] = field(default_factory=list)


def prepare(
    *, session: Session, registrant: Registrant, channel: str, key: bytes, signer: LinkSigner
) -> PendingMessage | None:
    """Issue a fresh code / link / call for a pending channel; the message to send, or None."""
    sub = confirmation.pending(session=session, registrant=registrant, channel=channel)
    address = address_for(channel, registrant)
    if sub is None or address is None:
        return None
    reason = suppression.suppression_reason(
        session=session, channel=channel, address=address, key=key
    )
    opted_out = reason in OWN_OPT_OUTS
    if opted_out and _sent_within(sub.confirmation_sent_at, OPTED_OUT_RESEND):
        return None
    session.flush()
    code = token = None
    if channel == ChannelName.SMS:
        code = confirmation.new_code()
    elif channel == ChannelName.EMAIL:
        token = signer.token(registrant.public_id, "confirm", ChannelName.EMAIL)
    confirmation.issue(session=session, subscription=sub, secret=code or token, key=key)
    return PendingMessage(
        registrant.public_id,
        channel,
        address,
        registrant.language,
        code=code,
        confirm_token=token,
        opted_out=opted_out,
    )


def _sent_within(sent_at: datetime | None, window: timedelta) -> bool:
    if sent_at is None:
        return False
    return utcnow() - sent_at < window


def live_registrant(session: Session, public_id: str) -> Registrant | None:
    """The live registrant a link points to, or None (unknown or erased)."""
    return session.scalars(
        select(Registrant).where(
            col(Registrant.public_id) == public_id, col(Registrant.erased_at).is_(None)
        )
    ).first()


def after_email_confirmed(
    *, session: Session, registrant: Registrant, key: bytes, signer: LinkSigner
) -> PendingMessage | None:
    """The SMS code held back until the email was confirmed (email first), if one is due."""
    assert registrant.id is not None
    sub = registrants.subscriptions(session=session, registrant_id=registrant.id).get(
        ChannelName.SMS
    )
    if sub is None or sub.status != SubscriptionStatus.PENDING or sub.confirmation_sent_at:
        return None
    return prepare(
        session=session, registrant=registrant, channel=ChannelName.SMS, key=key, signer=signer
    )


def _owner(session: Session, draft: RegistrantDraft) -> Registrant | None:
    """Who these addresses already belong to: by email, else by mobile. A landline identifies
    nobody (a household shares one), so a sign-up with only a landline is a new registrant."""
    clauses = []
    if draft.email:
        clauses.append(col(Registrant.email) == draft.email)
    if draft.mobile:
        clauses.append(col(Registrant.mobile) == draft.mobile)
    if not clauses:
        return None
    found = session.scalars(select(Registrant).where(or_(*clauses))).all()
    return next((r for r in found if r.email == draft.email), found[0] if found else None)


def reopen(
    *, session: Session, registrant: Registrant, channel: str, source: ConsentSource, key: bytes
) -> bool:
    """Make a channel pending again for a fresh confirmation; False if it must stay as it is
    (already active, or suppressed for a reason that is not the person's own opt-out)."""
    assert registrant.id is not None
    sub = registrants.subscriptions(session=session, registrant_id=registrant.id).get(channel)
    status = sub.status if sub is not None else None
    address = address_for(channel, registrant)
    if status not in REOPENABLE or address is None:
        return False
    if status == SubscriptionStatus.PENDING:
        return True
    reason = suppression.suppression_reason(
        session=session, channel=channel, address=address, key=key
    )
    if reason is not None and reason not in OWN_OPT_OUTS:
        return False
    registrants.set_status(
        session=session,
        registrant=registrant,
        channel=channel,
        status=SubscriptionStatus.PENDING,
        event=ConsentEvent.RESUBSCRIBED if sub is not None else ConsentEvent.SUBSCRIBED,
        source=source,
        key=key,
    )
    return True


def subscribe(
    *,
    session: Session,
    draft: RegistrantDraft,
    source: ConsentSource,
    key: bytes,
    signer: LinkSigner,
) -> SignupOutcome:
    """Register `draft` with every channel pending and prepare the confirmations."""
    owner = _owner(session, draft)
    targets: list[tuple[Registrant, str]] = []
    if owner is not None:
        # Someone already holds (some of) these addresses: only their owner's matching channels
        # are (re)confirmed, to the owner's own addresses; nothing else about them changes.
        for channel in sorted(draft.channels):
            address = draft.address_for(channel)
            if address is None or address_for(channel, owner) != address:
                continue
            if reopen(session=session, registrant=owner, channel=channel, source=source, key=key):
                targets.append((owner, channel))
    else:
        addresses = draft.addresses()
        blocked = suppression.suppressed_among(
            connection=session.connection(), pairs=addresses.items(), key=key
        )
        if all(reason in OWN_OPT_OUTS for reason in blocked.values()):
            # An earlier opt-out or erasure of these addresses does not block a new sign-up,
            # but only the owner's confirmation lifts it; it stays pending (no alerts) until
            # then. Bounces and other suppressions block it.
            created = registrants.add_registrant(
                session=session,
                draft=draft,
                source=source,
                key=key,
                status=SubscriptionStatus.PENDING,
                keep_own_opt_outs=True,
            )
            targets = [(created, channel) for channel in sorted(draft.channels)]
    if email_first(draft):
        # The SMS code waits for the email confirmation: a pumping script that types numbers
        # it does not own then also needs a mailbox per number (after_email_confirmed).
        targets = [
            (r, c)
            for r, c in targets
            if c != ChannelName.SMS or (r, ChannelName.EMAIL) not in targets
        ]
    messages = [
        m
        for registrant, channel in targets
        if (
            m := prepare(
                session=session, registrant=registrant, channel=channel, key=key, signer=signer
            )
        )
    ]
    if email_first(draft):
        return SignupOutcome(None, messages)  # the same "check your email" page either way
    code_for = next((m.public_id for m in messages if m.channel == ChannelName.SMS), None)
    if code_for is None and ChannelName.SMS in draft.channels:
        code_for = new_public_id()
    return SignupOutcome(code_for, messages)


def email_first(draft: RegistrantDraft) -> bool:
    """Both an email address and SMS given: confirm the email before any code is texted."""
    return ChannelName.SMS in draft.channels and ChannelName.EMAIL in draft.channels


def confirm(
    *,
    session: Session,
    claims: LinkClaims,
    secret: str,
    key: bytes,
    policy: confirmation.Policy,
    signer: LinkSigner,
) -> tuple[str | None, PendingMessage | None]:
    """Check a confirmation link or code. (None, the SMS code held back for email first, if
    any) when confirmed, else (why not, None). Unknown sign-ups fail exactly like a wrong code."""
    registrant = live_registrant(session, claims.public_id)
    if registrant is None or claims.channel is None:
        return "wrong", None
    try:
        confirmation.verify(
            session=session,
            registrant=registrant,
            channel=claims.channel,
            secret=secret,
            key=key,
            source=ConsentSource("web", detail=f"confirmed by {claims.channel}"),
            policy=policy,
        )
    except confirmation.ConfirmationFailed as exc:
        return exc.reason, None
    if claims.channel != ChannelName.EMAIL:
        return None, None
    return None, after_email_confirmed(
        session=session, registrant=registrant, key=key, signer=signer
    )


def resend_code(
    *, session: Session, public_id: str, key: bytes, signer: LinkSigner
) -> PendingMessage | None:
    """A fresh SMS code for a pending sign-up ("send me a new code"), or None."""
    registrant = live_registrant(session, public_id)
    if registrant is None:
        return None
    return prepare(
        session=session, registrant=registrant, channel=ChannelName.SMS, key=key, signer=signer
    )
