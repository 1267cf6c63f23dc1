"""What registrants tell us by SMS keyword (STOP, START, HELP) and by keypress on a call.

Pure core logic with no web imports: the web app validates the Twilio signature, calls these
functions inside one transaction, and turns the reply text into TwiML. Provider status callbacks
are the delivery room's (broadcast/delivery/callbacks.py).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlmodel import Session

from broadcast.errors import InvalidInput
from broadcast.registrants import confirmation, contacts, suppression
from broadcast.registrants import people as registrants
from broadcast.registrants.consent import ConsentSource
from broadcast.settings import Settings
from broadcast.store.tables import ConsentEvent, Registrant, SubscriptionStatus
from broadcast.vocabulary import ChannelName, address_for

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
CONFIRM_DIGIT, UNSUBSCRIBE_DIGIT = "1", "9"


@dataclass(frozen=True)
class InboundOutcome:
    """What happened (`action`) and what to say back (`reply`, SMS text or speech)."""

    action: str
    reply: str


def keyword(body: str) -> str:
    """The message as one upper-case word ("stop." -> "STOP"); "" when it is not one word."""
    words = body.strip().strip(string.punctuation + " ").split()
    return words[0].upper() if len(words) == 1 else ""


def _e164(raw: str, region: str) -> str | None:
    try:
        return contacts.normalise_phone(raw, region)
    except InvalidInput:
        return None


def _by_mobile(session: Session, number: str) -> Registrant | None:
    return session.scalars(
        select(Registrant).where(Registrant.mobile == number, Registrant.erased_at.is_(None))
    ).first()


def _voice_holders(session: Session, number: str) -> list[Registrant]:
    """Everyone whose calls go to `number`: a household may share one landline."""
    found = session.scalars(
        select(Registrant)
        .where(
            or_(Registrant.landline == number, Registrant.mobile == number),
            Registrant.erased_at.is_(None),
        )
        .order_by(Registrant.id)
    ).all()
    # Voice calls the landline when there is one, so the mobile only counts without one.
    return [r for r in found if address_for(ChannelName.VOICE, r) == number]


def _opt_out(
    session: Session,
    registrant: Registrant | None,
    channel: str,
    address: str | None,
    source: ConsentSource,
    key: bytes,
) -> None:
    """Stop a channel for whoever holds `address`: unsubscribe the registrant if we know them,
    and suppress the address either way (a stranger's STOP is honoured too)."""
    if registrant is not None:
        registrants.unsubscribe(
            session=session, registrant=registrant, channels=[channel], source=source, key=key
        )
    if address:
        suppression.suppress(
            session=session, channel=channel, address=address, reason="unsubscribed", key=key
        )


def handle_sms(
    *, session: Session, from_number: str, body: str, settings: Settings
) -> InboundOutcome:
    """Apply an inbound SMS keyword from `from_number` and say what to reply."""
    force, key = settings.force_name, settings.suppression_secret
    word = keyword(body)
    number = _e164(from_number, settings.default_region)
    registrant = _by_mobile(session, number) if number else None
    source = ConsentSource("sms-keyword", detail=word or None)
    if word in STOP_WORDS:
        _opt_out(session, registrant, ChannelName.SMS, number, source, key)
        return InboundOutcome(
            "unsubscribed",
            f"You will no longer get {force} community alerts by text. Reply START to sign up "
            "again.",
        )
    if word in HELP_WORDS:
        return InboundOutcome("help", settings.sms_help_text)
    if word in START_WORDS:
        if registrant is None or number is None:
            signup = settings.public_url.rstrip("/") + "/subscribe"
            return InboundOutcome(
                "not-registered", f"This number is not signed up for {force} alerts: {signup}"
            )
        return _start(session, registrant, number, word, source, settings)
    return InboundOutcome(
        "unmonitored",
        f"This number is not monitored. To contact {force}, call 101, or 999 in an emergency.",
    )


def _start(
    session: Session,
    registrant: Registrant,
    number: str,
    word: str,
    source: ConsentSource,
    settings: Settings,
) -> InboundOutcome:
    force, key = settings.force_name, settings.suppression_secret
    assert registrant.id is not None
    subs = registrants.subscriptions(session=session, registrant_id=registrant.id)
    sub = subs.get(ChannelName.SMS)
    if sub is not None and sub.status == SubscriptionStatus.PENDING:
        # YES, START or UNSTOP from the number itself proves the owner wants it: this confirms
        # the sign-up and lifts the number's own earlier opt-out (confirmation.confirm).
        confirmation.confirm(
            session=session, registrant=registrant, channel=ChannelName.SMS, key=key, source=source
        )
        return InboundOutcome(
            "confirmed",
            f"Thank you: this number now gets {force} community alerts. Reply STOP to stop.",
        )
    if sub is not None and sub.status == SubscriptionStatus.ACTIVE:
        return InboundOutcome(
            "already-active", f"This number already gets {force} community alerts."
        )
    # The person texted from the number themselves: the strongest proof of consent there is, so
    # any suppression of it for SMS goes (a provider opt-out too, which START also clears).
    row = suppression.entry(
        session=session, channel=ChannelName.SMS, hashed=suppression.address_hash(number, key)
    )
    if row is not None:
        session.delete(row)
    registrants.set_status(
        session=session,
        registrant=registrant,
        channel=ChannelName.SMS,
        status=SubscriptionStatus.ACTIVE,
        event=ConsentEvent.RESUBSCRIBED if sub is not None else ConsentEvent.SUBSCRIBED,
        source=source,
        key=key,
    )
    return InboundOutcome(
        "resubscribed",
        f"You will get {force} community alerts by text again. Reply STOP to stop.",
    )


def handle_voice_digit(
    *, session: Session, number: str, digits: str, settings: Settings
) -> InboundOutcome:
    """A key pressed on one of our calls to `number`: 9 stops voice, 1 confirms a pending one."""
    key = settings.suppression_secret
    called = _e164(number, settings.default_region)
    holders = _voice_holders(session, called) if called else []
    source = ConsentSource("voice-keypress", detail=f"pressed {digits[:1]}")
    pressed = digits.strip()[:1]
    if pressed == UNSUBSCRIBE_DIGIT:
        # One call reaches everyone on the number (planning calls a household once), so the
        # number stops getting calls for all of them: whoever answered cannot say who they are.
        for holder in holders:
            _opt_out(session, holder, ChannelName.VOICE, called, source, key)
        if not holders:
            _opt_out(session, None, ChannelName.VOICE, called, source, key)
        return InboundOutcome(
            "unsubscribed",
            f"This number will get no more calls from {settings.force_name}, for anyone "
            "registered on it. Goodbye.",
        )
    if pressed == CONFIRM_DIGIT and any(
        confirmation.confirm(
            session=session, registrant=holder, channel=ChannelName.VOICE, key=key, source=source
        )
        for holder in holders
    ):
        return InboundOutcome("confirmed", "Thank you. Your phone alerts are confirmed. Goodbye.")
    return InboundOutcome("ignored", "Goodbye.")
