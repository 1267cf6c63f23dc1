"""Recovery: the database, not the broker, is the source of truth.

- `resume_alert` (CLI `alert resume ID`) and the workers' periodic `sweep` queue again the
  deliveries left `queued` whose messages the broker lost (Redis flushed or restarted);
- stale `sending` deliveries (a worker died mid-send) are resolved by asking Twilio's message /
  call list for that number since the claim; found -> `sent`, not found -> `queued` again; where
  the provider cannot tell (email), they end `in-doubt` and are reported, never resent blindly;
- deliveries of alerts past their expiry end `expired`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import exists, select, update
from sqlmodel import Session

from broadcast import planning
from broadcast.confirmation import Policy, expire_pending
from broadcast.delivery import finish_if_done
from broadcast.delivery_records import Recipient, load_alert, record_sent, record_state
from broadcast.dispatch import Chunk, Dispatcher, queue_for
from broadcast.models import Alert, AlertStatus, Delivery, DeliveryState, Registrant, utcnow
from broadcast.runtime import Runtime


@dataclass
class RecoveryReport:
    requeued_messages: int = 0
    found_at_provider: int = 0
    requeued_unsent: int = 0
    in_doubt: int = 0
    expired: int = 0
    confirmations_expired: int = 0

    def __str__(self) -> str:
        # Only what happened: `alert resume` never closes sign-ups, and a line of zeros hides
        # the one count that matters.
        stale = ", ".join(
            f"{n} {what}"
            for n, what in (
                (self.found_at_provider, "found at the provider (sent)"),
                (self.requeued_unsent, "not found (queued again)"),
                (self.in_doubt, "in doubt"),
            )
            if n
        )
        parts = (
            (self.requeued_messages, f"{self.requeued_messages} chunk messages queued again"),
            (stale, f"stale sends: {stale}"),
            (self.expired, f"{self.expired} deliveries expired"),
            (
                self.confirmations_expired,
                f"{self.confirmations_expired} unconfirmed sign-ups closed",
            ),
        )
        return "; ".join(text for shown, text in parts if shown) or "nothing to recover"


def give_up_chunk(rt: Runtime, chunk: Chunk, reason: str) -> None:
    """A chunk whose worker kept failing: its unfinished deliveries end `failed` with why."""
    with rt.engine.begin() as conn:
        ids = list(
            conn.execute(
                select(Delivery.id).where(
                    Delivery.alert_id == chunk.alert_id,
                    Delivery.channel == chunk.channel,
                    Delivery.id > chunk.after_id,
                    Delivery.id <= chunk.upto_id,
                    Delivery.state == DeliveryState.QUEUED,
                )
            ).scalars()
        )
        record_state(conn, [(i, "worker", reason) for i in ids], DeliveryState.FAILED)
        alert = load_alert(rt.engine, chunk.alert_id)
        if alert is not None:
            finish_if_done(conn, alert)


def resolve_stale(
    rt: Runtime, *, stale_after: float, alert_id: int | None = None
) -> RecoveryReport:
    """Settle deliveries claimed more than `stale_after` seconds ago and still `sending`."""
    report = RecoveryReport()
    cutoff = utcnow() - timedelta(seconds=stale_after)
    statement = (
        select(Delivery, Registrant)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .where(Delivery.state == DeliveryState.SENDING, Delivery.claimed_at <= cutoff)
    )
    if alert_id is not None:
        statement = statement.where(Delivery.alert_id == alert_id)
    from sqlmodel import Session

    with Session(rt.engine) as session:
        rows = [(d.id, d.channel, d.claimed_at, r) for d, r in session.execute(statement)]
    found, unsent, doubtful = [], [], []
    for delivery_id, channel, claimed_at, registrant in rows:
        recipient = Recipient(
            delivery_id,
            registrant.id,
            registrant.public_id,
            None,
            "en",
            registrant.email,
            registrant.mobile,
            registrant.landline,
            0,
        )
        address = recipient.address(channel)
        sid = _provider_lookup(rt, channel, address, claimed_at) if address else None
        if sid == "":
            unsent.append(delivery_id)
        elif sid is not None:
            found.append((delivery_id, sid, 1))
        else:
            doubtful.append((delivery_id, "stale", "worker stopped mid-send; check the provider"))
    with rt.engine.begin() as conn:
        record_sent(conn, found)
        record_state(conn, doubtful, DeliveryState.IN_DOUBT, from_states=(DeliveryState.SENDING,))
        if unsent:
            conn.execute(
                update(Delivery)
                .where(Delivery.id.in_(unsent), Delivery.state == DeliveryState.SENDING)
                .values(state=DeliveryState.QUEUED)
            )
    report.found_at_provider, report.requeued_unsent = len(found), len(unsent)
    report.in_doubt = len(doubtful)
    return report


def _provider_lookup(rt: Runtime, channel: str, to: str, since: datetime) -> str | None:
    """The SID of a message/call to `to` created since the claim; "" if the provider has none;
    None when the provider cannot be asked (email, the outbox)."""
    client = getattr(rt.channel(channel), "client", None)
    if client is None or channel == "email":
        return None
    since = (since if since.tzinfo else since.replace(tzinfo=UTC)) - timedelta(seconds=2)
    try:
        if channel == "sms":
            items = client.messages.list(to=to, date_sent_after=since, limit=20)
        else:
            items = client.calls.list(to=to, start_time_after=since, limit=20)
    except Exception:
        return None  # cannot ask now: leave for in-doubt rather than guess
    return items[0].sid if items else ""


def expire_alerts(rt: Runtime) -> int:
    """Deliveries still queued for alerts past their expiry end `expired`."""
    now = utcnow()
    with rt.engine.begin() as conn:
        ids = list(
            conn.execute(
                select(Alert.id).where(Alert.status == AlertStatus.SENDING, Alert.expires_at <= now)
            ).scalars()
        )
        if not ids:
            return 0
        result = conn.execute(
            update(Delivery)
            .where(Delivery.alert_id.in_(ids), Delivery.state == DeliveryState.QUEUED)
            .values(state=DeliveryState.EXPIRED, error_text="alert expired", finished_at=now)
        )
    for alert_id in ids:
        alert = load_alert(rt.engine, alert_id)
        with rt.engine.begin() as conn:
            finish_if_done(conn, alert)
    return int(result.rowcount or 0)


def resume_alert(
    rt: Runtime, dispatcher: Dispatcher, alert_id: int, *, stale_after: float | None = None
) -> RecoveryReport:
    """Finish an alert after the broker lost messages or a worker died."""
    stale = rt.settings.delivery_stale_after if stale_after is None else stale_after
    report = resolve_stale(rt, stale_after=stale, alert_id=alert_id)
    report.expired = expire_alerts(rt)
    alert = load_alert(rt.engine, alert_id)
    if alert is not None and alert.status == AlertStatus.SENDING:
        with rt.engine.connect() as conn:
            report.requeued_messages = planning.enqueue_alert(
                conn, dispatcher, alert, size=rt.settings.delivery_chunk_size
            )
        with rt.engine.begin() as conn:
            finish_if_done(conn, alert)
    return report


def expire_unconfirmed(rt: Runtime) -> int:
    """Sign-ups never confirmed within BROADCAST_PENDING_EXPIRY_HOURS are closed."""
    with Session(rt.engine) as session:
        closed = expire_pending(
            session=session, policy=Policy.from_settings(rt.settings), key=rt.key
        )
        session.commit()
    return closed


def sweep(rt: Runtime, dispatcher: Dispatcher, *, grace: float = 30.0) -> RecoveryReport:
    """The periodic check: stale sends, expiry, and queued work the broker no longer holds."""
    report = resolve_stale(rt, stale_after=rt.settings.delivery_stale_after)
    report.expired = expire_alerts(rt)
    report.confirmations_expired = expire_unconfirmed(rt)
    cutoff = utcnow() - timedelta(seconds=grace)
    with rt.engine.connect() as conn:
        alerts = (
            conn.execute(
                select(Alert.id).where(
                    Alert.status == AlertStatus.SENDING, Alert.created_at <= cutoff
                )
            )
            .scalars()
            .all()
        )
    for alert_id in alerts:
        alert = load_alert(rt.engine, alert_id)
        assert alert is not None
        for channel in alert.channels.split(","):
            queue = queue_for(channel, alert.urgent)
            if dispatcher.pending(queue) != 0:
                continue  # the broker still holds work for this queue (or cannot tell)
            with rt.engine.connect() as conn:
                waiting = conn.execute(
                    select(
                        exists().where(
                            Delivery.alert_id == alert_id,
                            Delivery.channel == channel,
                            Delivery.state == DeliveryState.QUEUED,
                        )
                    )
                ).scalar()
                if waiting:
                    report.requeued_messages += planning.enqueue_alert(
                        conn,
                        dispatcher,
                        alert,
                        size=rt.settings.delivery_chunk_size,
                        channels=(channel,),
                    )
    return report
