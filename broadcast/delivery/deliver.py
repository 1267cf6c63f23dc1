"""Deliver one chunk: render per recipient, then let the channel's lanes take capacity, claim,
send and record one message at a time (broadcast.delivery.lanes).

A delivery is `sending` only while its request is in flight: the claim is made when a lane is
free to send at once, and a success is recorded before that lane takes the next message, so a
crash leaves at most `lanes` deliveries per worker process in doubt, and a chunk sent twice
(redelivery, recovery) finds nothing left to claim. No database connection is held while a
provider is called. See docs/delivery.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from broadcast.channels import OutboundMessage
from broadcast.delivery import outcomes as delivery_outcomes
from broadcast.delivery import quiet_hours
from broadcast.delivery.dispatch import Chunk
from broadcast.delivery.lanes import ClaimFeed, run_feed
from broadcast.delivery.levels import Capacity, lease_id, release_lines
from broadcast.delivery.outcomes import ChunkOutcome
from broadcast.delivery.records import (
    Recipient,
    load_alert,
    load_queued,
    move_range,
)
from broadcast.errors import BroadcastError
from broadcast.messages.render import AlertTemplate, RecipientContext
from broadcast.registrants.suppression import suppressed_among
from broadcast.runtime import Runtime
from broadcast.store.alert_status import set_status
from broadcast.store.tables import Alert, Delivery, utcnow
from broadcast.store.tenancy import national
from broadcast.vocabulary import OPEN_STATES, AlertState, DeliveryState, split_channels

# Who the alert log says finished an alert.
ENGINE = "delivery engine"
# A routine chunk that stepped aside for urgent work looks again after this long.
YIELD_AGAIN_AFTER = 1.0

__all__ = [
    "ChunkOutcome",
    "deliver_chunk",
    "finish_if_done",
    "message_for",
]


def deliver_chunk(
    rt: Runtime, chunk: Chunk, *, should_yield: Callable[[], bool] | None = None
) -> ChunkOutcome:
    """Send every still-queued delivery in `chunk` that capacity allows now.

    Parameters:
        should_yield: asked before sleeping for capacity; True puts the chunk back (routine
            chunks pass "is urgent work waiting?" so urgent alerts overtake them).
    """
    outcome = ChunkOutcome()
    alert = load_alert(rt.engine, chunk.alert_id)
    if alert is None:
        outcome.closed = True
        return outcome
    with rt.engine.begin() as conn:
        if alert.status == AlertState.CANCELLED:
            outcome.ended += move_range(conn, chunk, DeliveryState.CANCELLED)
            outcome.closed = True
            return outcome
        if utcnow() >= alert.expires_at:
            outcome.ended += move_range(conn, chunk, DeliveryState.EXPIRED, reason="alert expired")
            finish_if_done(conn, alert)
            outcome.closed = True
            return outcome
    template = rt.template(alert.template)
    variables = json.loads(alert.variables)
    # Built and connected before any capacity is taken: a slow first connection must not sit
    # between a grant and its request (the provider would see a burst over the limit).
    channel = rt.warm_channel(chunk.channel)
    capacity = Capacity(rt, chunk.channel)
    size = rt.settings.delivery_chunk_size
    if (narrowest := capacity.narrowest) is not None:
        # Small batches under a limit: rendered messages should not wait long for capacity.
        size = max(1, min(size, narrowest.count, 50))
    after, retry_attempts, held = chunk.after_id, 0, None
    while True:
        with rt.engine.connect() as conn:
            batch = load_queued(conn, chunk, after, size)
            if not batch:
                break
            last = batch[-1].delivery_id
            # Quiet hours: routine calls to people in their quiet hours stay queued (held).
            batch, hold = quiet_hours.hold_back(rt, conn, alert, chunk.channel, batch)
            held = quiet_hours.earliest(held, hold)
            messages, rejected = _prepare(
                rt, conn, alert, template, variables, chunk.channel, batch
            )
        if rejected:
            with rt.engine.begin() as conn:
                delivery_outcomes.record_rejected(conn, rejected)
            outcome.ended += len(rejected)
        if not messages:
            after = last
            continue
        granted, wait = _first_grant(rt, capacity, messages[0], should_yield)
        if not granted:
            outcome.retry_after = wait
            outcome.reason = "yield" if should_yield and should_yield() else "throttled"
            break
        feed = ClaimFeed(rt, capacity, messages, granted=True)
        run_feed(channel.run_lanes, feed)
        outcome.sent += feed.sent
        if feed.failed:
            attempts = {r.delivery_id: r.attempts + 1 for r in batch}
            retry_attempts = max(
                retry_attempts,
                delivery_outcomes.record_results(
                    rt,
                    alert,
                    chunk,
                    [m for m, _ in feed.failed],
                    [r for _, r in feed.failed],
                    attempts,
                    outcome,
                ),
            )
        after = min(m.delivery_id for m in feed.unsent) - 1 if feed.unsent else last
    if retry_attempts and outcome.retry_after is None:
        outcome.retry_after = delivery_outcomes.backoff(
            retry_attempts, rt.settings.delivery_retry_base
        )
        outcome.reason = "transient"
    if held is not None and outcome.retry_after is None:
        outcome.retry_after, outcome.reason = held, "quiet-hours"
    with rt.engine.begin() as conn:
        finish_if_done(conn, alert)
    return outcome


def _first_grant(
    rt: Runtime,
    capacity: Capacity,
    message: OutboundMessage,
    should_yield: Callable[[], bool] | None,
) -> tuple[bool, float | None]:
    """Capacity for a batch's first message: worth a short sleep (at most
    delivery_capacity_wait) unless urgent work is waiting, when the chunk steps aside."""
    if should_yield is not None and not capacity.unlimited and should_yield():
        # Urgent work for this channel is queued or running: a routine chunk takes none of the
        # capacity (not even a slot free right now), so urgent alerts keep whole windows.
        return False, YIELD_AGAIN_AFTER
    granted, wait = capacity.take(message)
    if granted or capacity.unlimited:
        return granted, wait
    if should_yield is not None and should_yield():
        return False, wait
    return capacity.take(message, max_wait=rt.settings.delivery_capacity_wait)


def _prepare(
    rt: Runtime,
    conn: Connection,
    alert: Alert,
    template: AlertTemplate,
    variables: dict[str, Any],
    channel: str,
    batch: list[Recipient],
) -> tuple[list[OutboundMessage], list[tuple[int, str | None, str, str]]]:
    """Render each recipient's message; rows that cannot be sent come back as rejected."""
    messages: list[OutboundMessage] = []
    rejected: list[tuple[int, str | None, str, str]] = []
    pairs = [(channel, address) for r in batch if (address := r.address(channel))]
    blocked = suppressed_among(connection=conn, pairs=pairs, key=rt.key) if pairs else {}
    for r in batch:
        address = r.address(channel)
        if not address:
            rejected.append((r.delivery_id, None, "no address", DeliveryState.UNDELIVERABLE))
            continue
        if (channel, address) in blocked:
            reason = f"suppressed: {blocked[channel, address]}"
            rejected.append((r.delivery_id, None, reason, DeliveryState.SUPPRESSED))
            continue
        try:
            messages.append(message_for(rt, alert, template, variables, channel, r, address))
        except BroadcastError as exc:
            rejected.append((r.delivery_id, "render", str(exc), DeliveryState.FAILED))
    return messages, rejected


def message_for(
    rt: Runtime,
    alert: Alert,
    template: AlertTemplate,
    variables: dict[str, Any],
    channel: str,
    r: Recipient,
    address: str,
) -> OutboundMessage:
    """The message one recipient gets; the same every time it is built (recovery rebuilds it to
    ask the provider, and email keeps its Message-ID)."""
    settings = rt.settings
    unsubscribe = rt.signer.url(r.public_id, "unsubscribe", channel)
    recipient = RecipientContext(
        manage_url=rt.signer.url(r.public_id, "manage"),
        unsubscribe_url=unsubscribe,
        name=r.name or "",
        language=r.language or "en",
    )
    rendered = template.render(
        channel,
        variables,
        recipient,
        force_name=settings.force_name,
        public_url=settings.public_url,
        max_segments=settings.sms_max_segments,
    )
    created = int(alert.created_at.timestamp() * 1e6)
    return OutboundMessage(
        delivery_id=r.delivery_id,
        channel=channel,  # type: ignore[arg-type]
        to=address,
        body=rendered.body,
        subject=rendered.subject,
        html=rendered.html,
        unsubscribe_url=unsubscribe,
        units=rendered.sms.segments if rendered.sms else 1,
        message_key=f"alert.{alert.id}.{created}.{r.delivery_id}",
    )


def finish_if_done(conn: Connection, alert: Alert) -> bool:
    """Mark the alert done once no delivery of it is queued, sending or waiting to be settled."""
    for channel in split_channels(alert.channels):
        busy = conn.execute(
            select(Delivery.id)
            .where(
                Delivery.alert_id == alert.id,
                Delivery.channel == channel,
                or_(
                    Delivery.state.in_(OPEN_STATES),
                    # In doubt and still to be settled by the sweep: not finished yet.
                    and_(
                        Delivery.state == DeliveryState.IN_DOUBT,
                        Delivery.settle_after.is_not(None),
                    ),
                ),
            )
            .limit(1)
        ).first()
        if busy is not None:
            return False
    assert alert.id is not None
    # Logged like every other move (docs/lifecycle.md); a second finisher finds it done already.
    set_status(conn, alert.id, AlertState.COMPLETED, expect=AlertState.SENDING, operator=ENGINE)
    return True


def call_completed(rt: Runtime, provider_id: str) -> bool:
    """A call's status callback said it ended: free its voice line, at its force's level and
    the platform's. False if unknown."""
    with national(rt.base_engine).connect() as conn:
        row = conn.execute(
            select(Delivery.id, Delivery.channel, Delivery.force_id).where(
                Delivery.provider_id == provider_id
            )
        ).first()
    if row is None or row.channel != "voice":
        return False
    return release_lines(rt.for_force(row.force_id), lease_id(row.id))
