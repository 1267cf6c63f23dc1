"""Sending double opt-in confirmations (the `confirm-subscription` template) through the
runtime's channels, each one taking capacity from the limiter the delivery lanes use.

So the capacity promise (docs/capacity.md: each channel inside its capacity across every process
on every host) holds for sign-ups too: a confirmation SMS takes its segments from the same
`broadcast:capacity:{sms}` window as alert texts, a confirmation call a unit of the voice rate and,
with a line limit, a voice line.

Confirmations are few and someone is looking at the page, so nothing queues them: each waits at
most `CONFIRMATION_WAIT` seconds for capacity. When none frees by then (an alert is using the
whole channel) it is not sent, and the result says how long until the channel has room, so the
page can ask the person to try again then (docs/web.md).
"""

from __future__ import annotations

import itertools
import logging
import time
import uuid
from dataclasses import dataclass

from broadcast.capacity import ExceedsCapacity
from broadcast.channels import ChannelError, OutboundMessage
from broadcast.delivery.levels import LEASE_POLL, Capacity, rate_levels
from broadcast.messages.render import RecipientContext
from broadcast.registrants.signup import PendingMessage
from broadcast.runtime import Runtime

logger = logging.getLogger(__name__)
TEMPLATE = "confirm-subscription"
# Long enough to ride out a burst of alert traffic, short enough for a page load.
CONFIRMATION_WAIT = 2.0
# A confirmation call ends by itself: at most a minute ringing (Twilio's default timeout), the
# script said twice (about 40 s) and the Gather's 5 s. Its status callback cannot free the line
# (no delivery record names the call), so the lease runs out a little after the call has ended.
CALL_SECONDS = 180.0
LEASE_PREFIX = "confirmation-"
LINE_POLL = 0.2
# Voice lines free only when calls end, at no moment anyone can predict: ask again after this.
LINE_RETRY = 60.0
# Confirmation messages have no delivery record; this id only names outbox files and
# Message-IDs, so it just has to be unique (microseconds since the epoch, then counting up).
_ids = itertools.count(time.time_ns() // 1000)


@dataclass(frozen=True)
class ConfirmationResult:
    """`sent`: the provider accepted it. `busy_for`: not sent because the channel had no
    capacity; seconds until it should have room (None when it was not a capacity refusal)."""

    sent: bool
    busy_for: float | None = None


def outbound(rt: Runtime, message: PendingMessage) -> OutboundMessage:
    """The rendered confirmation, ready for the channel."""
    settings, signer = rt.settings, rt.signer
    recipient = RecipientContext(
        manage_url=signer.url(message.public_id, "manage"),
        unsubscribe_url=signer.url(message.public_id, "unsubscribe", message.channel),
        # No name: nobody has proved they hold this address yet, so a confirmation carries
        # none of the requester's own text under the force's name.
        name="",
        language=message.language,
        confirm_url=(
            f"{settings.public_url.rstrip('/')}/confirm/{message.confirm_token}"
            if message.confirm_token
            else None
        ),
        confirm_code=message.code,
    )
    rendered = rt.template(TEMPLATE).render(
        message.channel,
        {"opted_out": "yes" if message.opted_out else ""},
        recipient,
        force_name=settings.force_name,
        public_url=settings.public_url,
        max_segments=settings.sms_max_segments,
    )
    return OutboundMessage(
        delivery_id=next(_ids),
        channel=message.channel,  # type: ignore[arg-type]
        to=message.to,
        body=rendered.body,
        subject=rendered.subject,
        html=rendered.html,
        unsubscribe_url=recipient.unsubscribe_url,
        units=rendered.sms.segments if rendered.sms else 1,
    )


def send_confirmation(
    rt: Runtime, message: PendingMessage, *, max_wait: float = CONFIRMATION_WAIT
) -> ConfirmationResult:
    """Render one confirmation, take its capacity (waiting up to `max_wait`) and send it.
    Failures are logged without personal data and reported as not sent."""
    ready = outbound(rt, message)
    try:
        busy_for = take_capacity(rt, ready, max_wait=max_wait)
    except ExceedsCapacity as exc:
        logger.warning("confirmation by %s not sent: %s", message.channel, exc)
        return ConfirmationResult(False)
    if busy_for is not None:
        logger.warning(
            "confirmation by %s not sent: no capacity for %.0f s", message.channel, busy_for
        )
        return ConfirmationResult(False, busy_for)
    try:
        rt.channel(message.channel).send(ready)
    except ChannelError as exc:
        logger.warning("confirmation by %s not sent: %s", message.channel, exc)
        return ConfirmationResult(False)
    return ConfirmationResult(True)


def take_capacity(rt: Runtime, message: OutboundMessage, *, max_wait: float) -> float | None:
    """Take the message's units (and, for a call with a line limit, a line) within `max_wait`
    seconds, at the force's level and the platform's: None when taken, else seconds until the
    channel should have room."""
    deadline = time.monotonic() + max_wait
    capacity = Capacity(rt, message.channel)
    lease = f"{LEASE_PREFIX}{uuid.uuid4().hex}"
    seconds = min(CALL_SECONDS, rt.settings.voice_lease_seconds)
    while True:
        remaining = max(0.0, deadline - time.monotonic())
        granted, wait = capacity.take(
            message, max_wait=remaining, lease=lease, lease_seconds=seconds
        )
        if granted:
            return None
        lines_busy = wait is not None and wait >= LEASE_POLL
        if time.monotonic() + LINE_POLL > deadline or not lines_busy:
            return LINE_RETRY if lines_busy else wait
        time.sleep(LINE_POLL)


def capacity_wait(
    rt: Runtime, channel: str, units: int = 1, *, max_wait: float = CONFIRMATION_WAIT
) -> float | None:
    """What `send_confirmation` would report as `busy_for` now (seconds until `units` fit, when
    that is more than `max_wait`), else None. Takes nothing: for pages that must answer as if a
    confirmation had been tried."""
    waits = []
    for level in rate_levels(rt, channel):
        assert level.limiter is not None and level.limiter.rate is not None
        rate, window = level.limiter.rate, level.limiter.window(level.key)
        excess = len(window) + units - rate.count
        if excess > 0:
            waits.append(window[excess - 1] + rate.seconds)
    wait = max(waits, default=0.0)
    return wait if wait > max_wait else None
