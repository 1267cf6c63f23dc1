"""The shared words: channels and their order, which address each channel uses, alert states
and the named groups of delivery states.

Every module that needs one of these asks here, so a rule ("voice uses the landline, else the
mobile") is written once. Kernel module: it imports only the standard library.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Protocol


class ChannelName(StrEnum):
    """A channel's name, as stored in `subscription.channel` and `delivery.channel`."""

    SMS = "sms"
    EMAIL = "email"
    VOICE = "voice"


# The same names as a type, for the channel interface (`OutboundMessage.channel`, `Channel.name`)
# where plain strings travel; tests/test_vocabulary.py checks it matches ChannelName.
ChannelLiteral = Literal["sms", "email", "voice"]

# The canonical order: previews, figures, queues and messages list channels in this order.
CHANNELS: tuple[str, ...] = tuple(c.value for c in ChannelName)

# Which registrant fields a channel sends to, in order of preference: voice calls the landline
# when there is one, else the mobile (store.addresses says the same in SQL).
ADDRESS_FIELDS: dict[str, tuple[str, ...]] = {
    ChannelName.SMS: ("mobile",),
    ChannelName.EMAIL: ("email",),
    ChannelName.VOICE: ("landline", "mobile"),
}


class HasAddresses(Protocol):
    """A registrant, a draft, or a delivery's recipient: anything with the three addresses."""

    @property
    def email(self) -> str | None: ...
    @property
    def mobile(self) -> str | None: ...
    @property
    def landline(self) -> str | None: ...


def address_for(channel: str, person: HasAddresses) -> str | None:
    """The address `channel` sends to for `person`; None when they have none for it."""
    *preferred, last = ADDRESS_FIELDS[channel]
    for name in preferred:
        address: str | None = getattr(person, name)
        if address:
            return address
    found: str | None = getattr(person, last)
    return found


def split_channels(text: str) -> tuple[str, ...]:
    """`Alert.channels` ("sms,email") as a tuple, in stored order; empty entries are dropped."""
    return tuple(c for c in text.split(",") if c)


class AlertState(StrEnum):
    """`alert.status`. `completed` is stored as "done", the value the delivery engine has always
    written (and tools read); the state machine is in broadcast.alerts.lifecycle."""

    DRAFT = "draft"
    PENDING_APPROVAL = "pending-approval"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    COMPLETED = "done"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


# States that end an alert (its `finished_at` is set on the way in).
ALERT_ENDED = frozenset(
    {AlertState.COMPLETED, AlertState.CANCELLED, AlertState.REJECTED, AlertState.EXPIRED}
)


class DeliveryState(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    FAILED = "failed"
    UNDELIVERABLE = "undeliverable"
    SUPPRESSED = "suppressed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    IN_DOUBT = "in-doubt"
    # Another registrant's call to the same number in the same alert (a household sharing a
    # landline) is this one's call too: one call per number per alert (see planning).
    HOUSEHOLD = "household"


_D = DeliveryState

# Not yet over: waiting for a worker or in a provider request.
OPEN_STATES = (_D.QUEUED, _D.SENDING)

# States nothing moves a delivery out of by itself (status callbacks may still move sent on).
FINAL_STATES = frozenset(
    {
        _D.SENT,
        _D.DELIVERED,
        _D.FAILED,
        _D.UNDELIVERABLE,
        _D.SUPPRESSED,
        _D.CANCELLED,
        _D.EXPIRED,
        _D.IN_DOUBT,
        _D.HOUSEHOLD,
    }
)

# Handed to the provider (sent) or confirmed delivered.
REACHED_STATES = (_D.SENT, _D.DELIVERED)

# Sent, or maybe sent: everyone who may have had the alert (follow-ups must reach them all).
MAY_HAVE_REACHED_STATES = (_D.SENT, _D.DELIVERED, _D.IN_DOUBT)

# Ended without reaching anyone: an alert with any reads as incomplete ("done, 103 expired").
UNREACHED_STATES = (_D.EXPIRED, _D.FAILED, _D.UNDELIVERABLE, _D.IN_DOUBT)

# What `failures list` and `alert status` show as problems: the unreached ones (expired too: a
# call held past its alert's expiry never reached anyone) and suppressed. Only `failed` (minus
# render errors) is ever put back.
PROBLEM_STATES = (*UNREACHED_STATES, _D.SUPPRESSED)

# Ended badly for sure: escalation moves on to the next channel at once.
ENDED_BADLY_STATES = (_D.FAILED, _D.UNDELIVERABLE)

# Sent (or maybe) but not confirmed delivered: escalation moves on once its window has passed.
NOT_CONFIRMED_STATES = (_D.SENT, _D.IN_DOUBT)

# A provider status callback may still move these on: the provider has (or may have) the message.
CALLBACK_MOVABLE_STATES = frozenset({_D.QUEUED, _D.SENDING, _D.SENT, _D.IN_DOUBT})
