"""Deliver one chunk: render per recipient, take capacity, claim, send, record in bulk.

The order matters. Capacity is taken before the claim, and the claim (queued -> sending) comes
just before the provider call, so a delivery is `sending` only while a request is in flight, and
a chunk sent twice (redelivery, recovery) finds nothing left to claim. No database connection is
held while a provider is called. See docs/delivery.md.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select, update

from broadcast import delivery_outcomes, quiet_hours
from broadcast.channels import OutboundMessage
from broadcast.delivery_records import (
    Recipient,
    claim,
    load_alert,
    load_queued,
    move_range,
    release,
)
from broadcast.dispatch import Chunk
from broadcast.errors import BroadcastError
from broadcast.models import Alert, AlertStatus, Delivery, DeliveryState, utcnow
from broadcast.render import AlertTemplate, RecipientContext
from broadcast.runtime import Runtime
from broadcast.suppression import suppressed_among

# Concurrency leases free only when a call ends: look again after about this long.
LEASE_POLL = 1.0
LEASE_PREFIX = "delivery-"


@dataclass
class ChunkOutcome:
    """What happened; `retry_after` (seconds) asks the caller to queue the chunk again."""

    sent: int = 0
    ended: int = 0  # failed, undeliverable, suppressed, in doubt, cancelled, expired
    retry_after: float | None = None
    reason: str = ""  # "throttled", "transient", "yield"
    counts: dict[str, int] = field(default_factory=dict)


def backoff(attempts: int, base: float) -> float:
    """Exponential backoff with jitter: about base * 2^(attempts-1), capped at 10 minutes."""
    ceiling = min(base * 2 ** max(0, attempts - 1), 600.0)
    return random.uniform(ceiling / 2, ceiling)


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
        return outcome
    with rt.engine.begin() as conn:
        if alert.status == AlertStatus.CANCELLED:
            outcome.ended += move_range(conn, chunk, DeliveryState.CANCELLED)
            return outcome
        if utcnow() >= _aware(alert.expires_at):
            outcome.ended += move_range(conn, chunk, DeliveryState.EXPIRED, reason="alert expired")
            finish_if_done(conn, alert)
            return outcome
    template = rt.template(alert.template)
    variables = json.loads(alert.variables)
    limiter = rt.limiter(chunk.channel)
    size = rt.settings.delivery_chunk_size
    if limiter.rate is not None:
        # Small batches under a limit: claimed rows should not wait long for capacity.
        size = max(1, min(size, limiter.rate.count, 50))
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
            messages, rejected = _prepare(rt, conn, template, variables, chunk.channel, batch)
        granted, wait = _take_capacity(rt, chunk, messages, should_yield)
        if rejected:
            with rt.engine.begin() as conn:
                delivery_outcomes.record_rejected(conn, rejected)
            outcome.ended += len(rejected)
        if granted:
            retry_attempts = max(retry_attempts, _send(rt, alert, chunk, granted, batch, outcome))
        if wait is not None and not granted:
            outcome.retry_after = wait
            outcome.reason = "yield" if should_yield and should_yield() else "throttled"
            break
        after = messages[len(granted)].delivery_id - 1 if len(granted) < len(messages) else last
    if retry_attempts and outcome.retry_after is None:
        outcome.retry_after = backoff(retry_attempts, rt.settings.delivery_retry_base)
        outcome.reason = "transient"
    if held is not None and outcome.retry_after is None:
        outcome.retry_after, outcome.reason = held, "quiet-hours"
    with rt.engine.begin() as conn:
        finish_if_done(conn, alert)
    return outcome


def _prepare(rt, conn, template, variables, channel, batch):  # type: ignore[no-untyped-def]
    """Render each recipient's message; rows that cannot be sent come back as rejected."""
    settings = rt.settings
    messages: list[OutboundMessage] = []
    rejected: list[tuple[int, str | None, str, str]] = []
    pairs = [(channel, r.address(channel)) for r in batch if r.address(channel)]
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
            messages.append(_message(rt, template, variables, channel, r, address, settings))
        except BroadcastError as exc:
            rejected.append((r.delivery_id, "render", str(exc), DeliveryState.FAILED))
    return messages, rejected


def _message(rt, template: AlertTemplate, variables, channel, r: Recipient, address, settings):  # type: ignore[no-untyped-def]
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
    return OutboundMessage(
        delivery_id=r.delivery_id,
        channel=channel,
        to=address,
        body=rendered.body,
        subject=rendered.subject,
        html=rendered.html,
        unsubscribe_url=unsubscribe,
        units=rendered.sms.segments if rendered.sms else 1,
    )


def _take_capacity(
    rt: Runtime,
    chunk: Chunk,
    messages: list[OutboundMessage],
    should_yield: Callable[[], bool] | None,
) -> tuple[list[OutboundMessage], float | None]:
    """The leading messages granted now (sleeping at most delivery_capacity_wait for the
    first); when none is granted, the seconds until capacity frees."""
    limiter = rt.limiter(chunk.channel)
    leases = rt.concurrency() if chunk.channel == "voice" else None
    if leases is not None and leases.limit is None:
        leases = None
    if limiter.rate is None and leases is None:
        # Unlimited: nothing to take, and no limiter call (a Redis round trip) per message.
        return list(messages), None
    granted: list[OutboundMessage] = []
    for message in messages:
        lease_id = f"{LEASE_PREFIX}{message.delivery_id}"
        if leases is not None:
            seconds = rt.settings.voice_lease_seconds
            if leases.acquire("voice", lease_seconds=seconds, lease_id=lease_id) is None:
                return granted, (None if granted else LEASE_POLL * random.uniform(1, 1.5))
        attempt = limiter.attempt(chunk.channel, message.units)
        if not attempt.granted and not granted:
            if should_yield is not None and should_yield():
                attempt_wait = attempt.wait
            else:
                max_wait = rt.settings.delivery_capacity_wait
                attempt = limiter.wait_for(chunk.channel, message.units, max_wait=max_wait)
                attempt_wait = attempt.wait
        else:
            attempt_wait = attempt.wait
        if not attempt.granted:
            if leases is not None:
                leases.release("voice", lease_id)
            # A little jitter so chunks told the same moment do not all come back together.
            return granted, (None if granted else attempt_wait + random.uniform(0, 0.05))
        granted.append(message)
    return granted, None


def _send(rt, alert, chunk, granted, batch, outcome) -> int:  # type: ignore[no-untyped-def]
    """Claim, send and record; the highest attempt count among transient retries (0: none)."""
    with rt.engine.begin() as conn:
        owned = claim(conn, [m.delivery_id for m in granted])
    to_send = [m for m in granted if m.delivery_id in owned]
    if chunk.channel == "voice" and len(to_send) < len(granted):
        for m in granted:
            if m.delivery_id not in owned:
                rt.concurrency().release("voice", f"{LEASE_PREFIX}{m.delivery_id}")
    if not to_send:
        return 0
    # The connection went back to the pool above: a slow provider must not hold it.
    try:
        results = rt.channel(chunk.channel).send_many(to_send)
    except BaseException:
        with rt.engine.begin() as conn:
            release(conn, [m.delivery_id for m in to_send])
        raise
    attempts = {r.delivery_id: r.attempts + 1 for r in batch}
    return delivery_outcomes.record_results(rt, alert, chunk, to_send, results, attempts, outcome)


def finish_if_done(conn, alert: Alert) -> bool:  # type: ignore[no-untyped-def]
    """Mark the alert done once no delivery of it is queued or sending."""
    for channel in alert.channels.split(","):
        busy = conn.execute(
            select(Delivery.id)
            .where(
                Delivery.alert_id == alert.id,
                Delivery.channel == channel,
                Delivery.state.in_([DeliveryState.QUEUED, DeliveryState.SENDING]),
            )
            .limit(1)
        ).first()
        if busy is not None:
            return False
    conn.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status == AlertStatus.SENDING)
        .values(status=AlertStatus.DONE, finished_at=utcnow())
    )
    return True


def call_completed(rt: Runtime, provider_id: str) -> bool:
    """A call's status callback said it ended: free its voice line. False if unknown."""
    with rt.engine.connect() as conn:
        row = conn.execute(
            select(Delivery.id, Delivery.channel).where(Delivery.provider_id == provider_id)
        ).first()
    if row is None or row.channel != "voice":
        return False
    return rt.concurrency().release("voice", f"{LEASE_PREFIX}{row.id}")


def _aware(when):  # type: ignore[no-untyped-def]
    # SQLite hands back naive datetimes for timezone-aware columns; they were stored as UTC.
    from datetime import UTC

    return when if when.tzinfo else when.replace(tzinfo=UTC)
