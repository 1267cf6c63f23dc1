"""Registrant operations: add, find, amend, unsubscribe, erase, export, list."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlmodel import Session

from broadcast import vocabulary
from broadcast.errors import Conflict, InvalidInput, NotFound, Suppressed
from broadcast.registrants import consent, contacts, suppression
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.validation import RegistrantDraft
from broadcast.store.tables import (
    ConsentEvent,
    Registrant,
    RegistrantArea,
    RegistrantTopic,
    Subscription,
    SubscriptionStatus,
    utcnow,
)
from broadcast.vocabulary import CHANNELS as CHANNELS  # re-exported: registrants.CHANNELS


def find_registrant(*, session: Session, ref: str, region: str = "GB") -> Registrant:
    """Look a registrant up by id, email address or phone number (mobile or landline). A
    landline a household shares names several people: the id must then be given."""
    text = ref.strip()
    registrant: Registrant | None
    if text.isdigit() and not text.startswith("0"):
        registrant = session.get(Registrant, int(text))
    elif "@" in text:
        registrant = session.scalars(
            select(Registrant).where(Registrant.email == contacts.normalise_email(text))
        ).first()
    else:
        try:
            number = contacts.normalise_phone(text, region)
        except InvalidInput:
            raise NotFound(
                f"'{ref}' is not a registrant id, email address or phone number"
            ) from None
        found = session.scalars(
            select(Registrant)
            .where(
                or_(Registrant.mobile == number, Registrant.landline == number),
                Registrant.erased_at.is_(None),
            )
            .order_by(Registrant.id)
        ).all()
        # The mobile is one person's; a landline may be several people's.
        registrant = next((r for r in found if r.mobile == number), None)
        if registrant is None and len(found) > 1:
            ids = ", ".join(str(r.id) for r in found)
            raise InvalidInput(f"that landline is shared by registrants {ids}: give the id")
        registrant = registrant or (found[0] if found else None)
    if registrant is None or registrant.erased_at is not None:
        raise NotFound(f"no registrant matches '{ref}'")
    return registrant


def ensure_addresses_free(
    *, session: Session, email: str | None, mobile: str | None, own_id: int | None = None
) -> None:
    """An email address or a mobile number belongs to at most one registrant (a landline may
    be a household's, shared by several, so it is not checked)."""
    for field, column, value in (
        ("email address", Registrant.email, email),
        ("mobile number", Registrant.mobile, mobile),
    ):
        if not value:
            continue
        statement = select(Registrant.id).where(column == value)
        if own_id is not None:
            statement = statement.where(Registrant.id != own_id)
        owner = session.scalars(statement).first()
        if owner is not None:
            raise Conflict(f"that {field} already belongs to registrant {owner}")


def add_registrant(
    *,
    session: Session,
    draft: RegistrantDraft,
    source: ConsentSource,
    key: bytes,
    status: SubscriptionStatus = SubscriptionStatus.ACTIVE,
    keep_own_opt_outs: bool = False,
) -> Registrant:
    """Create a registrant with a subscription per requested channel, in `status`.

    `keep_own_opt_outs` (pending sign-ups only): an address the person opted out of, or that was
    erased, does not block the sign-up; its suppression stays until the address's owner
    confirms (confirmation.confirm lifts it), so nobody else's sign-up can undo an opt-out.
    """
    ensure_addresses_free(session=session, email=draft.email, mobile=draft.mobile)
    addresses = draft.addresses()
    blocked = suppression.suppressed_among(
        connection=session.connection(), pairs=addresses.items(), key=key
    )
    if keep_own_opt_outs and status == SubscriptionStatus.PENDING:
        blocked = {k: r for k, r in blocked.items() if r not in suppression.OWN_OPT_OUTS}
    if blocked:
        channels = ", ".join(sorted(c for c, _ in blocked))
        raise Suppressed(f"the address given for {channels} is on the suppression list")
    registrant = Registrant(
        name=draft.name,
        postcode=draft.postcode,
        email=draft.email,
        mobile=draft.mobile,
        landline=draft.landline,
        language=draft.language,
    )
    session.add(registrant)
    session.flush()
    assert registrant.id is not None
    now = utcnow()
    for channel, address in addresses.items():
        session.add(
            Subscription(
                registrant_id=registrant.id,
                channel=channel,
                status=status,
                confirmed_at=now if status == SubscriptionStatus.ACTIVE else None,
            )
        )
        consent.record(
            session=session,
            registrant_id=registrant.id,
            key=key,
            channel=channel,
            address=address,
            event=ConsentEvent.SUBSCRIBED,
            source=source,
        )
    _replace_interests(session, registrant.id, draft.areas, draft.topics)
    return registrant


def _replace_interests(
    session: Session, registrant_id: int, areas: Iterable[str], topics: Iterable[str]
) -> None:
    session.execute(delete(RegistrantArea).where(RegistrantArea.registrant_id == registrant_id))
    session.execute(delete(RegistrantTopic).where(RegistrantTopic.registrant_id == registrant_id))
    session.add_all(RegistrantArea(registrant_id=registrant_id, area=a) for a in areas)
    session.add_all(RegistrantTopic(registrant_id=registrant_id, topic=t) for t in topics)


def subscriptions(*, session: Session, registrant_id: int) -> dict[str, Subscription]:
    rows = session.scalars(select(Subscription).where(Subscription.registrant_id == registrant_id))
    return {row.channel: row for row in rows}


def set_status(
    *,
    session: Session,
    registrant: Registrant,
    channel: str,
    status: SubscriptionStatus,
    event: ConsentEvent,
    source: ConsentSource,
    key: bytes,
    reason: str | None = None,
) -> None:
    """Move one channel to a new status and record why in the ledger."""
    assert registrant.id is not None
    current = subscriptions(session=session, registrant_id=registrant.id).get(channel)
    if current is None:
        current = Subscription(registrant_id=registrant.id, channel=channel, status=status)
        session.add(current)
    current.status = status
    current.status_reason = reason
    current.updated_at = utcnow()
    if status == SubscriptionStatus.ACTIVE and current.confirmed_at is None:
        current.confirmed_at = utcnow()
    consent.record(
        session=session,
        registrant_id=registrant.id,
        event=event,
        channel=channel,
        address=vocabulary.address_for(channel, registrant),
        source=source,
        key=key,
    )


def unsubscribe(
    *,
    session: Session,
    registrant: Registrant,
    channels: Iterable[str] | None,
    source: ConsentSource,
    key: bytes,
) -> list[str]:
    """Unsubscribe from the given channels (None: all) and suppress those addresses."""
    assert registrant.id is not None
    held = subscriptions(session=session, registrant_id=registrant.id)
    wanted = list(channels) if channels is not None else list(held)
    done = []
    for channel in wanted:
        if channel not in CHANNELS:
            raise InvalidInput(f"unknown channel '{channel}' (use sms, email, voice)")
        subscription = held.get(channel)
        if subscription is None or subscription.status == SubscriptionStatus.UNSUBSCRIBED:
            continue
        set_status(
            session=session,
            registrant=registrant,
            channel=channel,
            key=key,
            status=SubscriptionStatus.UNSUBSCRIBED,
            event=ConsentEvent.UNSUBSCRIBED,
            source=source,
        )
        address = vocabulary.address_for(channel, registrant)
        if address:
            suppression.suppress(
                session=session, channel=channel, address=address, reason="unsubscribed", key=key
            )
        done.append(channel)
    return done


def erase(*, session: Session, registrant: Registrant, source: ConsentSource, key: bytes) -> None:
    """Right to erasure: personal data gone; ledger events and suppression entries stay."""
    assert registrant.id is not None
    for channel in CHANNELS:
        address = vocabulary.address_for(channel, registrant)
        if address:
            suppression.suppress(
                session=session, channel=channel, address=address, reason="erased", key=key
            )
    session.execute(delete(Subscription).where(Subscription.registrant_id == registrant.id))
    _replace_interests(session, registrant.id, (), ())
    consent.record(
        session=session,
        registrant_id=registrant.id,
        event=ConsentEvent.ERASED,
        source=source,
        key=key,
    )
    registrant.name = registrant.postcode = registrant.email = None
    registrant.mobile = registrant.landline = None
    registrant.erased_at = registrant.updated_at = utcnow()


def views(*, session: Session, registrants: list[Registrant]) -> list[dict[str, Any]]:
    """Registrants as plain dicts (the CLI's JSON shape), loading their channels in bulk."""
    ids = [r.id for r in registrants]
    # Keyed as the rows' `id` is typed (None only before a row is flushed; these are loaded).
    channels: dict[int | None, dict[str, str]] = defaultdict(dict)
    areas: dict[int | None, list[str]] = defaultdict(list)
    topics: dict[int | None, list[str]] = defaultdict(list)
    if ids:
        for sub in session.scalars(select(Subscription).where(Subscription.registrant_id.in_(ids))):
            channels[sub.registrant_id][sub.channel] = sub.status
        for row in session.scalars(
            select(RegistrantArea).where(RegistrantArea.registrant_id.in_(ids))
        ):
            areas[row.registrant_id].append(row.area)
        for topic_row in session.scalars(
            select(RegistrantTopic).where(RegistrantTopic.registrant_id.in_(ids))
        ):
            topics[topic_row.registrant_id].append(topic_row.topic)
    return [
        {
            "id": r.id,
            "name": r.name,
            "email": r.email,
            "mobile": r.mobile,
            "landline": r.landline,
            "postcode": r.postcode,
            "language": r.language,
            "areas": sorted(areas[r.id]),
            "topics": sorted(topics[r.id]),
            "channels": dict(sorted(channels[r.id].items())),
            "created_at": r.created_at.isoformat(),
            "updated_at": r.updated_at.isoformat(),
        }
        for r in registrants
    ]


def _filtered(
    statement: Any, area: str | None, topic: str | None, channel: str | None, status: str | None
) -> Any:
    statement = statement.where(Registrant.erased_at.is_(None))
    if area:
        areas = select(RegistrantArea.registrant_id).where(RegistrantArea.area == area)
        statement = statement.where(Registrant.id.in_(areas))
    if topic:
        topics = select(RegistrantTopic.registrant_id).where(RegistrantTopic.topic == topic)
        statement = statement.where(Registrant.id.in_(topics))
    if channel or status:
        sub = select(Subscription.registrant_id)
        if channel:
            sub = sub.where(Subscription.channel == channel)
        if status:
            sub = sub.where(Subscription.status == status)
        statement = statement.where(Registrant.id.in_(sub))
    return statement


def count_matching(
    *,
    session: Session,
    area: str | None = None,
    topic: str | None = None,
    channel: str | None = None,
    status: str | None = None,
) -> int:
    statement = _filtered(select(func.count(Registrant.id)), area, topic, channel, status)
    return session.scalar(statement) or 0


def iter_views(
    *,
    session: Session,
    area: str | None = None,
    topic: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    page_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Stream matching registrants page by page (keyset on id) so memory stays flat."""
    statement = _filtered(select(Registrant), area, topic, channel, status)
    last_id = 0
    while True:
        page = list(
            session.scalars(
                statement.where(Registrant.id > last_id).order_by(Registrant.id).limit(page_size)
            )
        )
        if not page:
            return
        yield from views(session=session, registrants=page)
        last_id = page[-1].id


def export(*, session: Session, registrant: Registrant) -> dict[str, Any]:
    """Everything held on one registrant (right of access and portability)."""
    assert registrant.id is not None
    [view] = views(session=session, registrants=[registrant])
    held = subscriptions(session=session, registrant_id=registrant.id)
    view["subscriptions"] = {
        channel: {
            "status": sub.status,
            "reason": sub.status_reason,
            "confirmed_at": sub.confirmed_at.isoformat() if sub.confirmed_at else None,
            "updated_at": sub.updated_at.isoformat(),
        }
        for channel, sub in sorted(held.items())
    }
    view["consent_history"] = [
        {
            "event": e.event,
            "channel": e.channel,
            "source": e.source,
            "source_detail": e.source_detail,
            "wording_version": e.wording_version,
            "lawful_basis": e.lawful_basis,
            "operator": e.operator,
            "occurred_at": e.occurred_at.isoformat(),
        }
        for e in consent.history(session=session, registrant_id=registrant.id)
    ]
    return view


def amend(
    *,
    session: Session,
    registrant: Registrant,
    draft: RegistrantDraft,
    changed: set[str],
    source: ConsentSource,
    key: bytes,
    new_channel_status: SubscriptionStatus,
) -> list[str]:
    """Apply the fields named in `changed` from an already validated draft.

    Channels listed in the draft are added (in `new_channel_status`); a contact point that changes
    on an active channel keeps its status when an operator makes the change and is recorded as
    'amended' in the ledger. Returns the names of what changed.
    """
    assert registrant.id is not None
    if changed & {"email", "mobile"}:
        ensure_addresses_free(
            session=session,
            own_id=registrant.id,
            email=draft.email if "email" in changed else None,
            mobile=draft.mobile if "mobile" in changed else None,
        )
    done: list[str] = []
    for name in ("name", "postcode", "email", "mobile", "landline", "language"):
        if name in changed and getattr(registrant, name) != getattr(draft, name):
            setattr(registrant, name, getattr(draft, name))
            done.append(name)
    if "areas" in changed or "topics" in changed:
        current = views(session=session, registrants=[registrant])[0]
        areas = draft.areas if "areas" in changed else current["areas"]
        topics = draft.topics if "topics" in changed else current["topics"]
        _replace_interests(session, registrant.id, areas, topics)
        done += [n for n in ("areas", "topics") if n in changed]
    held = subscriptions(session=session, registrant_id=registrant.id)
    for channel in sorted(draft.channels):
        address = vocabulary.address_for(channel, registrant)
        if address is None:
            raise InvalidInput(f"cannot add {channel}: no address for it")
        sub = held.get(channel)
        if sub is not None and sub.status in (
            SubscriptionStatus.ACTIVE,
            SubscriptionStatus.PENDING,
        ):
            continue
        reason = suppression.suppression_reason(
            session=session, channel=channel, address=address, key=key
        )
        if reason is not None and reason not in suppression.OWN_OPT_OUTS:
            raise Suppressed(f"the {channel} address is suppressed ({reason})")
        suppression.lift(session=session, channel=channel, address=address, key=key)
        event = ConsentEvent.RESUBSCRIBED if sub is not None else ConsentEvent.SUBSCRIBED
        set_status(
            session=session,
            registrant=registrant,
            channel=channel,
            event=event,
            status=new_channel_status,
            source=source,
            key=key,
        )
        done.append(f"+{channel}")
    if done:
        registrant.updated_at = utcnow()
        consent.record(
            session=session,
            registrant_id=registrant.id,
            event=ConsentEvent.AMENDED,
            source=ConsentSource(source.source, ",".join(done), source.operator),
            key=key,
        )
    return done


def suppress_channel(
    *,
    session: Session,
    registrant: Registrant,
    channel: str,
    reason: str,
    source: ConsentSource,
    key: bytes,
) -> None:
    """The provider says the address must not be used again (STOP sent to the provider, bounce,
    invalid number): suppress it and mark the registrant's channel suppressed."""
    address = vocabulary.address_for(channel, registrant)
    if address:
        suppression.suppress(
            session=session, channel=channel, address=address, reason=reason, key=key
        )
    set_status(
        session=session,
        registrant=registrant,
        channel=channel,
        key=key,
        reason=reason,
        status=SubscriptionStatus.SUPPRESSED,
        event=ConsentEvent.SUPPRESSED,
        source=source,
    )
