"""Recovery: the database, not the broker, is the source of truth.

- `resume_alert` (CLI `alert resume ID`) and the workers' periodic `sweep` queue again the
  deliveries left `queued` whose messages the broker lost (Redis flushed or restarted);
- `sending` deliveries whose worker stopped (its heartbeat lapsed, or its process is gone from
  this host) are put in doubt at once; any left `sending` longer than
  BROADCAST_DELIVERY_STALE_AFTER too;
- in-doubt deliveries are settled once the provider's acceptance window has passed: SMS and
  calls are looked up at Twilio (found -> `sent`, not found -> sent again); email, which SMTP
  cannot be asked about, is sent again with the same Message-ID (or held for an operator with
  BROADCAST_IN_DOUBT_EMAIL=hold); whatever cannot be settled stays `in-doubt` with a reason;
- deliveries of alerts past their expiry end `expired`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, exists, func, select, update
from sqlmodel import Session

from broadcast.channels import ChannelError, SentQuery
from broadcast.delivery import planning
from broadcast.delivery.deliver import finish_if_done, message_for
from broadcast.delivery.dispatch import Chunk, Dispatcher, queue_for
from broadcast.delivery.records import (
    ClaimedRow,
    load_alert,
    load_recipients,
    record_sent,
    record_state,
)
from broadcast.registrants.confirmation import Policy, expire_pending
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery, utcnow
from broadcast.vocabulary import AlertState, DeliveryState, split_channels

STOPPED = "the worker stopped mid-send"
FOUND = "found at the provider after the send was in doubt"
RESENT_UNKNOWN = "sent again: the provider had no record of it"
RESENT_SAME_ID = "sent again with the same Message-ID after the send was in doubt"


@dataclass
class RecoveryReport:
    requeued_messages: int = 0
    put_in_doubt: int = 0
    found_at_provider: int = 0
    sent_again: int = 0
    in_doubt: int = 0
    expired: int = 0
    confirmations_expired: int = 0

    def __str__(self) -> str:
        # Only what happened: `alert resume` never closes sign-ups, and a line of zeros hides
        # the one count that matters.
        stale = ", ".join(
            f"{n} {what}"
            for n, what in (
                (self.put_in_doubt, "put in doubt"),
                (self.found_at_provider, "found at the provider (sent)"),
                (self.sent_again, "sent again"),
                (self.in_doubt, "left in doubt"),
            )
            if n
        )
        parts = (
            (self.requeued_messages, f"{self.requeued_messages} chunk messages queued again"),
            (stale, f"interrupted sends: {stale}"),
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
        alert = load_alert(conn, chunk.alert_id)
        if alert is not None:
            finish_if_done(conn, alert)


def dead_claimants(
    rt: Runtime, dispatcher: Dispatcher, beats: dict[str, float] | None = None
) -> set[str]:
    """Workers holding `sending` claims that have stopped: their heartbeat lapsed, or (for a
    process on this host without one, like the embedded CLI) the process is gone. `beats`: the
    registry's heartbeats when the caller has read them already."""
    with rt.engine.connect() as conn:
        holders: set[str] = set(
            conn.execute(  # type: ignore[arg-type]  # claimed_by IS NOT NULL: no None
                select(Delivery.claimed_by)
                .where(Delivery.state == DeliveryState.SENDING, Delivery.claimed_by.is_not(None))
                .distinct()
            ).scalars()
        )
    if not holders:
        return set()
    beats = (dispatcher.worker_beats() if beats is None else beats) or {}
    lapsed = _lapsed(rt, beats)
    dead = {h for h in holders if h in lapsed}
    host = socket.gethostname()
    for holder in holders - set(beats):
        kind, _, rest = holder.partition(":")
        owner_host, _, pid = rest.rpartition(":")
        if kind == "local" and owner_host == host and pid.isdigit() and not _alive(int(pid)):
            dead.add(holder)
    return dead


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def interrupted_to_doubt(
    rt: Runtime,
    *,
    dead: Iterable[str],
    stale_after: float,
    alert_id: int | None = None,
) -> set[int]:
    """`sending` rows of stopped workers, or older than `stale_after`, go `in-doubt`, to be
    settled once the provider's window after their claim has passed; their alerts' ids."""
    dead = list(dead)
    window = timedelta(seconds=_window(rt))
    cutoff = utcnow() - timedelta(seconds=stale_after)
    condition = Delivery.claimed_at <= cutoff
    if dead:
        condition = condition | Delivery.claimed_by.in_(dead)
    statement = select(Delivery.id, Delivery.alert_id, Delivery.claimed_at).where(
        Delivery.state == DeliveryState.SENDING, condition
    )
    if alert_id is not None:
        statement = statement.where(Delivery.alert_id == alert_id)
    with rt.engine.begin() as conn:
        rows = list(conn.execute(statement))
        for delivery_id, _, claimed_at in rows:
            conn.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.SENDING)
                .values(
                    state=DeliveryState.IN_DOUBT,
                    error_code="stale",
                    error_text=STOPPED,
                    settle_after=(claimed_at or utcnow()) + window,
                )
            )
    return {row.alert_id for row in rows}


def settle_in_doubt(
    rt: Runtime, dispatcher: Dispatcher, *, alert_id: int | None = None, force: bool = False
) -> RecoveryReport:
    """Settle the in-doubt deliveries that are due (all of them with `force`), then queue
    what is to be sent again."""
    report = RecoveryReport()
    now = utcnow()
    statement = select(Delivery.id).where(
        Delivery.state == DeliveryState.IN_DOUBT, Delivery.settle_after.is_not(None)
    )
    if not force:
        statement = statement.where(Delivery.settle_after <= now)
    if alert_id is not None:
        statement = statement.where(Delivery.alert_id == alert_id)
    with rt.engine.connect() as conn:
        ids = list(conn.execute(statement.order_by(Delivery.id)).scalars())
        recipients = load_recipients(conn, ids)
    groups: dict[tuple[int, str], list[ClaimedRow]] = {}
    for row in recipients:
        groups.setdefault((row.alert_id, row.channel), []).append(row)
    alerts = {a: load_alert(rt.engine, a) for a in {a for a, _ in groups}}
    requeue: set[tuple[int, str]] = set()
    for (group_alert, channel), rows in groups.items():
        alert = alerts[group_alert]
        if alert is not None and _settle_group(rt, alert, channel, rows, report):
            requeue.add((group_alert, channel))
    for group_alert, channel in sorted(requeue):
        alert = alerts[group_alert]
        if alert is not None and alert.status == AlertState.SENDING:
            with rt.engine.connect() as conn:
                report.requeued_messages += _enqueue(rt, conn, dispatcher, alert, channel)
    for alert in alerts.values():
        if alert is not None:
            with rt.engine.begin() as conn:
                finish_if_done(conn, alert)
    return report


def _settle_group(
    rt: Runtime, alert: Alert, channel: str, rows: list[ClaimedRow], report: RecoveryReport
) -> bool:
    """Settle one alert's in-doubt rows on one channel; True when some are to be sent again."""
    template = rt.template(alert.template)
    variables = json.loads(alert.variables)
    queries = []
    for row in rows:
        address = row.recipient.address(channel)
        if address is None:
            continue
        message = message_for(rt, alert, template, variables, channel, row.recipient, address)
        queries.append((row, SentQuery(message, row.claimed_at or utcnow())))
    try:
        answers = rt.channel(channel).find_sent([q for _, q in queries])
    except ChannelError:
        # The provider cannot be reached now: ask again after another window.
        later = utcnow() + timedelta(seconds=_window(rt))
        with rt.engine.begin() as conn:
            conn.execute(
                update(Delivery)
                .where(Delivery.id.in_([r.delivery_id for r, _ in queries]))
                .where(Delivery.state == DeliveryState.IN_DOUBT)
                .values(settle_after=later)
            )
        report.in_doubt += len(queries)
        return False
    found, again, held = [], [], []
    for index, (row, query) in enumerate(queries):
        answer = None if answers is None else answers[index]
        resend_blind = channel == "email" and rt.settings.in_doubt_email == "resend"
        if answer is not None:
            found.append((row.delivery_id, answer, query.message.units))
        elif (answers is None and not resend_blind) or _out_of_attempts(rt, row):
            held.append(row)
        else:
            how = RESENT_UNKNOWN if answers is not None else RESENT_SAME_ID
            again.append((row.delivery_id, how))
    with rt.engine.begin() as conn:
        record_sent(conn, found)
        if found:
            conn.execute(
                update(Delivery)
                .where(Delivery.id.in_([i for i, _, _ in found]))
                .values(recovered=FOUND)
            )
        for delivery_id, how in again:
            conn.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id, Delivery.state == DeliveryState.IN_DOUBT)
                .values(
                    state=DeliveryState.QUEUED,
                    settle_after=None,
                    error_code=None,
                    error_text=None,
                    finished_at=None,
                    recovered=how,
                )
            )
        held_rows = [
            (r.delivery_id, r.error_code, f"{r.error_text or 'in doubt'}; {_why_held(rt, r)}")
            for r in held
        ]
        record_state(conn, held_rows, DeliveryState.IN_DOUBT, from_states=(DeliveryState.IN_DOUBT,))
        if held:
            conn.execute(
                update(Delivery)
                .where(Delivery.id.in_([r.delivery_id for r in held]))
                .values(settle_after=None)
            )
    report.found_at_provider += len(found)
    report.sent_again += len(again)
    report.in_doubt += len(held)
    return bool(again)


def _out_of_attempts(rt: Runtime, row: ClaimedRow) -> bool:
    return row.recipient.attempts >= rt.settings.delivery_max_attempts


def _why_held(rt: Runtime, row: ClaimedRow) -> str:
    if _out_of_attempts(rt, row):
        return f"not sent again after {row.recipient.attempts} attempts"
    if row.channel == "email":
        return "held (BROADCAST_IN_DOUBT_EMAIL=hold); check, then requeue --include-in-doubt"
    return "the provider cannot be asked; check, then failures requeue --include-in-doubt"


def recover(
    rt: Runtime,
    dispatcher: Dispatcher,
    *,
    stale_after: float,
    alert_id: int | None = None,
) -> RecoveryReport:
    """Interrupted sends to doubt, then every due in-doubt delivery settled."""
    dead = dead_claimants(rt, dispatcher)
    touched = interrupted_to_doubt(rt, dead=dead, stale_after=stale_after, alert_id=alert_id)
    report = settle_in_doubt(rt, dispatcher, alert_id=alert_id)
    report.put_in_doubt = len(touched)
    return report


def expire_alerts(rt: Runtime) -> int:
    """Deliveries still queued for alerts past their expiry end `expired`."""
    now = utcnow()
    with rt.engine.begin() as conn:
        ids = list(
            conn.execute(
                select(Alert.id).where(Alert.status == AlertState.SENDING, Alert.expires_at <= now)
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
        assert alert is not None  # its id was just read from the alert table
        with rt.engine.begin() as conn:
            finish_if_done(conn, alert)
    return int(result.rowcount or 0)


def resume_alert(
    rt: Runtime, dispatcher: Dispatcher, alert_id: int, *, stale_after: float | None = None
) -> RecoveryReport:
    """Finish an alert after the broker lost messages or a worker died."""
    stale = rt.settings.delivery_stale_after if stale_after is None else stale_after
    dead = dead_claimants(rt, dispatcher)
    touched = interrupted_to_doubt(rt, dead=dead, stale_after=stale, alert_id=alert_id)
    # Sends just interrupted are settled once the provider's window after their claim has
    # passed (at most BROADCAST_PROVIDER_ACCEPT_WINDOW from now): wait for it here, so that
    # one `resume` finishes the job.
    due = _last_settle_time(rt, alert_id)
    if due is not None:
        time.sleep(max(0.0, min((due - utcnow()).total_seconds(), _window(rt))))
    report = settle_in_doubt(rt, dispatcher, alert_id=alert_id)
    report.put_in_doubt = len(touched)
    report.expired = expire_alerts(rt)
    alert = load_alert(rt.engine, alert_id)
    if alert is not None and alert.status == AlertState.SENDING:
        with rt.engine.connect() as conn:
            report.requeued_messages = planning.enqueue_alert(
                conn, dispatcher, alert, size=rt.settings.delivery_chunk_size
            )
        with rt.engine.begin() as conn:
            finish_if_done(conn, alert)
    return report


def next_settling(rt: Runtime) -> datetime | None:
    """When the next in-doubt delivery is due to be settled (None: none waits)."""
    with rt.engine.connect() as conn:
        earliest = conn.execute(
            select(func.min(Delivery.settle_after)).where(
                Delivery.state == DeliveryState.IN_DOUBT, Delivery.settle_after.is_not(None)
            )
        ).scalar()
    return earliest


def _last_settle_time(rt: Runtime, alert_id: int) -> datetime | None:
    with rt.engine.connect() as conn:
        latest = conn.execute(
            select(func.max(Delivery.settle_after)).where(
                Delivery.alert_id == alert_id, Delivery.state == DeliveryState.IN_DOUBT
            )
        ).scalar()
    return latest


def _window(rt: Runtime) -> float:
    return rt.settings.provider_accept_window


def expire_unconfirmed(rt: Runtime) -> int:
    """Sign-ups never confirmed within BROADCAST_PENDING_EXPIRY_HOURS are closed."""
    with Session(rt.engine) as session:
        closed = expire_pending(
            session=session, policy=Policy.from_settings(rt.settings), key=rt.key
        )
        session.commit()
    return closed


def sweep(rt: Runtime, dispatcher: Dispatcher, *, grace: float = 30.0) -> RecoveryReport:
    """The periodic check: stopped workers' sends, in-doubt deliveries, expiry, and queued work
    the broker no longer holds."""
    beats = dispatcher.worker_beats() or {}
    dead = dead_claimants(rt, dispatcher, beats)
    lapsed = _lapsed(rt, beats)
    touched = interrupted_to_doubt(rt, dead=dead, stale_after=rt.settings.delivery_stale_after)
    report = settle_in_doubt(rt, dispatcher)
    report.put_in_doubt = len(touched)
    report.expired = expire_alerts(rt)
    report.confirmations_expired = expire_unconfirmed(rt)
    # Alerts younger than `grace` may still be being queued by `alert send`; with a worker just
    # stopped, every sending alert is looked at.
    cutoff = utcnow() - timedelta(seconds=0 if lapsed else grace)
    with rt.engine.connect() as conn:
        alerts = (
            conn.execute(
                select(Alert.id).where(
                    Alert.status == AlertState.SENDING, Alert.created_at <= cutoff
                )
            )
            .scalars()
            .all()
        )
    for alert_id in alerts:
        alert = load_alert(rt.engine, alert_id)
        assert alert is not None
        for channel in split_channels(alert.channels):
            queue = queue_for(channel, alert.urgent)
            # A stopped worker's fetched messages come back only when Dramatiq's own heartbeat
            # times out (a minute): queue its work again now (claims make copies harmless).
            if not lapsed and dispatcher.pending(queue) != 0:
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
                    report.requeued_messages += _enqueue(rt, conn, dispatcher, alert, channel)
    if lapsed:
        dispatcher.forget_workers(lapsed)
    return report


def _enqueue(
    rt: Runtime, conn: Connection, dispatcher: Dispatcher, alert: Alert, channel: str
) -> int:
    """Queue the alert's queued deliveries on one channel again (claims make copies harmless)."""
    size = rt.settings.delivery_chunk_size
    return planning.enqueue_alert(conn, dispatcher, alert, size=size, channels=(channel,))


def _lapsed(rt: Runtime, beats: dict[str, float]) -> set[str]:
    """Registered workers silent for longer than BROADCAST_WORKER_LAPSE_AFTER."""
    now = utcnow().timestamp()
    return {w for w, beat in beats.items() if now - beat > rt.settings.worker_lapse_after}
