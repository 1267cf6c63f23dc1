"""What each send result means for its delivery, recorded in bulk.

sent -> `sent`; transient -> back to `queued` for a retry with backoff, or `failed` once the
attempts run out or the next try would fall after the alert's expiry; transient that may have
reached the provider -> `in-doubt`, settled by the sweep once the provider's acceptance window
has passed (looked up, or for email sent again with the same Message-ID); permanent ->
`undeliverable`, and with `suppress` the address joins the suppression list and the
subscription is `suppressed`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import Connection, select
from sqlmodel import Session

from broadcast.channels import (
    ChannelError,
    OutboundMessage,
    PermanentChannelError,
    SendResult,
    TransientChannelError,
)
from broadcast.delivery.dispatch import Chunk
from broadcast.delivery.levels import lease_id, release_lines
from broadcast.delivery.records import record_sent, record_state, schedule_settling
from broadcast.registrants import suppression
from broadcast.registrants.consent import ConsentSource
from broadcast.registrants.people import suppress_channel
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery, Registrant, utcnow
from broadcast.vocabulary import ChannelName, DeliveryState

SUPPRESS_REASON = {"sms": "opted-out", "voice": "opted-out", "email": "bounced"}
# The longest wait between two tries of a delivery.
RETRY_CAP = 600.0


def retry_ceiling(attempts: int, base: float) -> float:
    """The longest wait after try number `attempts`: base * 2^(attempts-1), capped at 10 min."""
    return min(base * 2.0 ** max(0, attempts - 1), RETRY_CAP)


def backoff(attempts: int, base: float) -> float:
    """The wait before the next try: a random point in the upper half of `retry_ceiling`, so
    chunks that failed together do not all come back together."""
    ceiling = retry_ceiling(attempts, base)
    return random.uniform(ceiling / 2, ceiling)


@dataclass
class ChunkOutcome:
    """What happened; `retry_after` (seconds) asks the caller to queue the chunk again."""

    sent: int = 0
    ended: int = 0  # failed, undeliverable, suppressed, in doubt, cancelled, expired
    retry_after: float | None = None
    reason: str = ""  # "throttled", "transient", "yield"
    closed: bool = False  # the alert is over (gone, cancelled, expired): nothing more to queue
    counts: dict[str, int] = field(default_factory=dict)


def record_rejected(conn: Connection, rejected: Sequence[tuple[int, str | None, str, str]]) -> None:
    """(id, code, reason, state) for deliveries refused before sending."""
    by_state: dict[str, list[tuple[int, str | None, str]]] = {}
    for delivery_id, code, reason, state in rejected:
        by_state.setdefault(state, []).append((delivery_id, code, reason))
    for state, rows in by_state.items():
        record_state(conn, rows, state, from_states=(DeliveryState.QUEUED,))


def record_results(
    rt: Runtime,
    alert: Alert,
    chunk: Chunk,
    sent_messages: Sequence[OutboundMessage],
    results: Sequence[SendResult | ChannelError],
    attempts: Mapping[int, int],
    outcome: ChunkOutcome,
) -> int:
    """Record every result; the highest attempt count among deliveries left for a retry."""
    settings = rt.settings
    expires = alert.expires_at
    now = utcnow()
    sent: list[tuple[int, str, int]] = []
    kinds: dict[str, list[tuple[int, str | None, str]]] = {
        DeliveryState.IN_DOUBT: [],
        DeliveryState.FAILED: [],
        DeliveryState.UNDELIVERABLE: [],
        DeliveryState.QUEUED: [],
    }
    to_suppress: list[OutboundMessage] = []
    retry_attempts = 0
    for message, result in zip(sent_messages, results, strict=True):
        if isinstance(result, SendResult):
            sent.append((message.delivery_id, result.provider_id, message.units))
            continue
        _release_line(rt, chunk, message)
        row = (message.delivery_id, result.code, result.reason)
        if isinstance(result, PermanentChannelError):
            kinds[DeliveryState.UNDELIVERABLE].append(row)
            if result.suppress:
                to_suppress.append(message)
        elif isinstance(result, TransientChannelError) and result.maybe_sent:
            kinds[DeliveryState.IN_DOUBT].append(
                (message.delivery_id, result.code, f"may have been sent: {result.reason}")
            )
        else:
            tries = attempts.get(message.delivery_id, 1)
            # The latest the retry can come (backoff's ceiling, not its random draw).
            next_try = now + timedelta(seconds=retry_ceiling(tries, settings.delivery_retry_base))
            if tries >= settings.delivery_max_attempts or next_try >= expires:
                reason = f"gave up after {tries} attempt{'s' if tries > 1 else ''}: "
                kinds[DeliveryState.FAILED].append((row[0], row[1], reason + _reason(result)))
            else:
                kinds[DeliveryState.QUEUED].append(row)
                retry_attempts = max(retry_attempts, tries)
    with rt.engine.begin() as conn:
        record_sent(conn, sent, now)
        for state, rows in kinds.items():
            final = state != DeliveryState.QUEUED
            record_state(conn, rows, state, from_states=(DeliveryState.SENDING,), final=final)
        settle_at = now + timedelta(seconds=settings.provider_accept_window)
        schedule_settling(conn, [row[0] for row in kinds[DeliveryState.IN_DOUBT]], settle_at)
    if to_suppress:
        _suppress(rt, chunk.channel, to_suppress)
    outcome.sent += len(sent)
    outcome.ended += sum(len(v) for k, v in kinds.items() if k != DeliveryState.QUEUED)
    for state, rows in kinds.items():
        if rows:
            outcome.counts[state] = outcome.counts.get(state, 0) + len(rows)
    return retry_attempts


def _reason(error: ChannelError) -> str:
    return f"{error.reason} (code {error.code})" if error.code else error.reason


def _release_line(rt: Runtime, chunk: Chunk, message: OutboundMessage) -> None:
    if chunk.channel == ChannelName.VOICE:
        release_lines(rt, lease_id(message.delivery_id))


def _suppress(rt: Runtime, channel: str, messages: Sequence[OutboundMessage]) -> None:
    """The recipient said stop (or the mailbox bounced): never use the address on this channel."""
    source = ConsentSource(source="delivery", detail="provider reported opt-out or bounce")
    with Session(rt.engine) as session:
        for message in messages:
            registrant_id = session.execute(
                select(Delivery.registrant_id).where(Delivery.id == message.delivery_id)
            ).scalar_one()
            registrant = session.get(Registrant, registrant_id)
            if registrant is None:
                suppression.suppress(
                    session=session,
                    channel=channel,
                    address=message.to,
                    reason=SUPPRESS_REASON[channel],
                    key=rt.key,
                )
                continue
            suppress_channel(
                session=session,
                registrant=registrant,
                channel=channel,
                reason=SUPPRESS_REASON[channel],
                source=source,
                key=rt.key,
            )
        session.commit()
