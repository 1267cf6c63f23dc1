"""The tables. Operations on them live in the domain modules (registrants, consent, importer...)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from broadcast.store.tenancy import Tenant, current_force
from broadcast.store.utc import UTCDateTime
from broadcast.vocabulary import AlertState, DeliveryState


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp(**kwargs: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), **kwargs))


def _force_id() -> Any:
    """The force a row belongs to: filled from the writer's force scope (store.tenancy)."""
    return Field(default=None, nullable=False, sa_column_kwargs={"default": current_force})


def new_public_id() -> str:
    return secrets.token_hex(16)


def new_public_ids(count: int) -> list[str]:
    """`count` ids like new_public_id's, from one read of the OS's random source (a bulk import
    makes thousands at a time, and each read is a system call)."""
    raw = secrets.token_hex(16 * count)
    return [raw[start : start + 32] for start in range(0, 32 * count, 32)]


class SubscriptionStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    SUPPRESSED = "suppressed"


class ConsentEvent(StrEnum):
    SUBSCRIBED = "subscribed"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    RESUBSCRIBED = "re-subscribed"
    AMENDED = "amended"
    IMPORTED = "imported"
    SUPPRESSED = "suppressed"
    ERASED = "erased"


class Force(SQLModel, table=True):
    """One force on the platform: its code, name, page hosts and what it sets for itself.

    `profile` is a JSON object of settings that override the platform's for this force (its
    brand, senders, areas, templates, capacity, policy: broadcast.forces.profile lists them);
    a setting it leaves out falls back to the environment's. The default force (id 1, made by
    migration 0011 from a single-force install) starts with an empty profile, so the settings
    that described the one force still do.
    """

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=40, unique=True, nullable=False)
    name: str | None = Field(default=None, max_length=200)
    # Host names its registrant pages answer on, comma-separated ("alerts.met.police.uk").
    hosts: str = Field(default="", max_length=1000, nullable=False)
    profile: str = Field(default="{}", nullable=False)  # JSON object
    created_at: datetime = _timestamp(nullable=False)


class Registrant(SQLModel, Tenant, table=True):
    """A person who signed up. Erasure blanks every personal field and keeps the row as a tombstone
    so ledger events and delivery records still point somewhere."""

    # A person registered with two forces is two registrants: email and mobile are unique
    # within a force, not across forces (each force is the controller of its own data).
    __table_args__ = (
        UniqueConstraint("force_id", "email", name="uq_registrant_force_email"),
        UniqueConstraint("force_id", "mobile", name="uq_registrant_force_mobile"),
    )

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    # What links carry instead of the id: random, so a link reveals nothing and can't be guessed.
    public_id: str = Field(default_factory=new_public_id, max_length=32, unique=True)
    name: str | None = Field(default=None, max_length=200)
    postcode: str | None = Field(default=None, max_length=8)
    email: str | None = Field(default=None, max_length=320)
    # An email address or a mobile number identifies one person; a landline may be shared by a
    # household, so it is indexed (voice dedupe, keypresses) but not unique (migration 0006).
    mobile: str | None = Field(default=None, max_length=20)
    landline: str | None = Field(default=None, max_length=20, index=True)
    language: str = Field(default="en", max_length=12)
    # The registrant's own quiet hours for calls, "21:00-08:00" (local time); None: force default.
    quiet_hours: str | None = Field(default=None, max_length=11)
    created_at: datetime = _timestamp(nullable=False)
    updated_at: datetime = _timestamp(nullable=False)
    erased_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class Subscription(SQLModel, Tenant, table=True):
    """One registrant's status on one channel; the address itself is on the registrant."""

    __table_args__ = (
        UniqueConstraint("registrant_id", "channel"),
        Index(
            "ix_subscription_force_channel_status", "force_id", "channel", "status", "registrant_id"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    registrant_id: int = Field(foreign_key="registrant.id", nullable=False)
    channel: str = Field(max_length=8, nullable=False)
    status: str = Field(max_length=16, nullable=False)
    status_reason: str | None = Field(default=None, max_length=200)
    confirmed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # Double opt-in: a keyed hash of the code or link nonce sent, when, and wrong tries so far.
    confirmation_hash: str | None = Field(default=None, max_length=64)
    confirmation_sent_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    confirmation_attempts: int = Field(default=0, nullable=False)
    updated_at: datetime = _timestamp(nullable=False)


class RegistrantArea(SQLModel, Tenant, table=True):
    __tablename__ = "registrant_area"
    __table_args__ = (Index("ix_registrant_area_force_area", "force_id", "area", "registrant_id"),)

    force_id: int | None = _force_id()
    registrant_id: int = Field(foreign_key="registrant.id", primary_key=True)
    area: str = Field(max_length=40, primary_key=True)


class RegistrantTopic(SQLModel, Tenant, table=True):
    __tablename__ = "registrant_topic"
    __table_args__ = (
        Index("ix_registrant_topic_force_topic", "force_id", "topic", "registrant_id"),
    )

    force_id: int | None = _force_id()
    registrant_id: int = Field(foreign_key="registrant.id", primary_key=True)
    topic: str = Field(max_length=40, primary_key=True)


class ConsentLedgerEntry(SQLModel, Tenant, table=True):
    """Append-only (database triggers refuse UPDATE and DELETE). It holds no personal data in
    clear, so erasure never has to touch it: the address appears only as a keyed hash."""

    __tablename__ = "consent_ledger"

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    registrant_id: int = Field(index=True, nullable=False)
    event: str = Field(max_length=24, nullable=False)
    channel: str | None = Field(default=None, max_length=8)
    address_hash: str | None = Field(default=None, max_length=64)
    source: str = Field(max_length=40, nullable=False)
    source_detail: str | None = Field(default=None, max_length=300)
    # For transfers: where the consent was first given (e.g. "PMB") and when.
    origin: str | None = Field(default=None, max_length=120)
    consented_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    wording_version: str | None = Field(default=None, max_length=40)
    lawful_basis: str | None = Field(default=None, max_length=60)
    operator: str | None = Field(default=None, max_length=120)
    occurred_at: datetime = _timestamp(nullable=False)


class SuppressedAddress(SQLModel, Tenant, table=True):
    """An address on a channel that must never be messaged again, kept only as a keyed HMAC."""

    __tablename__ = "suppression"

    # Each force keeps its own list: a STOP to one force leaves the person's others alone.
    force_id: int | None = Field(
        default=None, primary_key=True, sa_column_kwargs={"default": current_force}
    )
    address_hash: str = Field(primary_key=True, max_length=64)
    channel: str = Field(primary_key=True, max_length=8)
    reason: str = Field(max_length=40, nullable=False)
    created_at: datetime = _timestamp(nullable=False)


class SuppressionKeying(SQLModel, table=True):
    """One row: how the address hashes are keyed, "link-key" (before 0010) or "derived"."""

    __tablename__ = "suppression_keying"

    id: int | None = Field(default=None, primary_key=True)
    scheme: str = Field(max_length=16, nullable=False)


# --- Alerts and deliveries (the delivery engine; see docs/delivery.md) -------------------------


class Alert(SQLModel, Tenant, table=True):
    """One alert as the officer sent it: template, variables, targeting, channels."""

    __table_args__ = (
        Index("ix_alert_force_idempotency_key", "force_id", "idempotency_key", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    template: str = Field(max_length=80, nullable=False)
    variables: str = Field(default="{}", nullable=False)  # JSON object
    channels: str = Field(max_length=40, nullable=False)  # "sms,email,voice"
    areas: str = Field(default="", max_length=2000)  # comma-separated
    topics: str = Field(default="", max_length=2000)
    everyone: bool = Field(default=False, nullable=False)
    source: str | None = Field(default=None, max_length=300)  # transfer notice: import source
    urgent: bool = Field(default=False, nullable=False)
    operator: str = Field(max_length=120, nullable=False)
    status: str = Field(default=AlertState.SENDING, max_length=16, nullable=False)
    sms_segments: int = Field(default=1, nullable=False)  # of the preview, for ETAs
    created_at: datetime = _timestamp(nullable=False)
    expires_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # `alert send --idempotency-key`: the same key again returns this alert, sends nothing.
    idempotency_key: str | None = Field(default=None, max_length=200)
    # The parts of one alert sent to several forces share it (alerts.regional).
    regional_key: str | None = Field(default=None, max_length=40, index=True)


class Delivery(SQLModel, Tenant, table=True):
    """One (alert, registrant, channel): the unit of idempotency. Workers claim it (queued ->
    sending) in the database before calling a provider, so a repeated queue message is a no-op."""

    __table_args__ = (
        UniqueConstraint("alert_id", "registrant_id", "channel"),
        Index("ix_delivery_alert_channel_state", "alert_id", "channel", "state", "id"),
        Index("ix_delivery_state_channel", "state", "channel"),
        Index("ix_delivery_provider_id", "provider_id"),
        Index("ix_delivery_settle_after", "settle_after"),
        Index("ix_delivery_claimed_by", "claimed_by"),
    )

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    alert_id: int = Field(foreign_key="alert.id", nullable=False)
    registrant_id: int = Field(nullable=False)
    channel: str = Field(max_length=8, nullable=False)
    state: str = Field(default=DeliveryState.QUEUED, max_length=16, nullable=False)
    attempts: int = Field(default=0, nullable=False)
    units: int = Field(default=1, nullable=False)
    provider_id: str | None = Field(default=None, max_length=200)
    error_code: str | None = Field(default=None, max_length=40)
    error_text: str | None = Field(default=None, max_length=300)
    # For a `household` delivery: the delivery whose call to the same number reaches this one.
    call_id: int | None = Field(default=None)
    created_at: datetime = _timestamp(nullable=False)
    claimed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    # The worker process holding the claim (its broker id): a claim whose worker stopped beating
    # is settled at once (docs/delivery.md, "Recovery").
    claimed_by: str | None = Field(default=None, max_length=80)
    # An `in-doubt` delivery is settled automatically from this moment (None: it waits for an
    # operator); `recovered` says how a settled one was handled ("sent again ...").
    settle_after: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    recovered: str | None = Field(default=None, max_length=120)


class AuditEvent(SQLModel, Tenant, table=True):
    """What an operator did, append-only like the consent ledger. No personal data: registrants
    appear only by id, alerts by id and template, imports by file name and counts."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    occurred_at: datetime = _timestamp(nullable=False, index=True)
    operator: str = Field(max_length=120, nullable=False)
    action: str = Field(max_length=40, nullable=False, index=True)
    subject: str | None = Field(default=None, max_length=120)
    details: str = Field(default="{}", nullable=False)  # JSON object


# --- Alert lifecycle (approval, scheduling, follow-ups, escalation; see docs/lifecycle.md) ------


class AlertLifecycle(SQLModel, Tenant, table=True):
    """What the lifecycle adds to an alert: how it relates to others and when it goes out. An
    alert without a row is a plain alert sent at once (alerts from before migration 0004)."""

    __tablename__ = "alert_lifecycle"

    force_id: int | None = _force_id()
    alert_id: int = Field(foreign_key="alert.id", primary_key=True)
    # alert | update | all-clear | correction | escalation
    kind: str = Field(default="alert", max_length=16, nullable=False)
    parent_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    scheduled_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True, index=True)
    )
    emergency: bool = Field(default=False, nullable=False)
    approved_by: str | None = Field(default=None, max_length=120)
    escalate: str | None = Field(default=None, max_length=40)  # "sms>voice>email"
    escalate_after: int | None = Field(default=None)  # seconds
    released_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime(), nullable=True)
    )
    reason: str | None = Field(default=None, max_length=300)  # why rejected or cancelled


class AlertTransition(SQLModel, Tenant, table=True):
    """Every change of an alert's state, who made it and when (append-only by convention)."""

    __tablename__ = "alert_transition"

    id: int | None = Field(default=None, primary_key=True)
    force_id: int | None = _force_id()
    alert_id: int = Field(foreign_key="alert.id", nullable=False, index=True)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16, nullable=False)
    operator: str = Field(max_length=120, nullable=False)
    reason: str | None = Field(default=None, max_length=300)
    occurred_at: datetime = _timestamp(nullable=False)
