"""Alerts: create, preview (recipients, rendered messages, ETA), status, cancel, retry.

A created alert is a draft; `approval.submit` sends it (through `lifecycle.release`, which plans
the deliveries set-based and hands chunk messages to a `Dispatcher`); the workers (or the
embedded in-process worker) do the rest. See docs/delivery.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import aliased

from broadcast.alerts import lifecycle
from broadcast.alerts.eta import ChannelEta, channel_eta, expiry_line, preview_mine, queued_mine
from broadcast.alerts.outcome import status_label, unreached
from broadcast.capacity.rate import Rate
from broadcast.delivery import planning
from broadcast.delivery.dispatch import Dispatcher
from broadcast.delivery.planning import Targeting
from broadcast.delivery.records import load_alert, recent_alerts
from broadcast.delivery.requeue import requeue_alert
from broadcast.errors import InvalidInput, NotFound
from broadcast.messages.render import RecipientContext, RenderedMessage, preview
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery, new_public_id, utcnow
from broadcast.vocabulary import (
    CHANNELS,
    OPEN_STATES,
    PROBLEM_STATES,
    AlertState,
    DeliveryState,
    split_channels,
)


@dataclass
class AlertPreview:
    template: str
    channels: tuple[str, ...]
    recipients: dict[str, int]
    messages: dict[str, RenderedMessage]
    eta: dict[str, str]
    forecasts: dict[str, ChannelEta] = field(default_factory=dict)
    expires_at: datetime | None = None
    # "103 deliveries (voice 103) would expire unsent at 21:05 BST: ..." or None.
    expiry: str | None = None
    voice_calls: int = 0  # one per number: a household sharing a landline gets one call

    @property
    def expiring(self) -> int:
        """Deliveries the ETA says would still be waiting when the alert expires."""
        return sum(f.expiring for f in self.forecasts.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "template": self.template,
            "channels": list(self.channels),
            "recipients": self.recipients,
            "eta": self.eta,
            "forecast": {c: f.as_dict() for c, f in self.forecasts.items()},
            "expires_at": _iso(self.expires_at),
            "expiring": self.expiring,
            "expiry": self.expiry,
        }


def parse_duration(text: str) -> timedelta:
    """'6h', '90m', '2d', '30s' -> timedelta."""
    rate = Rate.parse(f"1/{text}", setting="--expires")
    return timedelta(seconds=rate.seconds)


def parse_channels(text: str) -> tuple[str, ...]:
    wanted = tuple(dict.fromkeys(c.strip().lower() for c in text.split(",") if c.strip()))
    unknown = [c for c in wanted if c not in CHANNELS]
    if unknown or not wanted:
        raise InvalidInput(
            f"unknown channel {', '.join(unknown) or '(none)'}; use sms, email, voice"
        )
    return wanted


def preview_alert(
    rt: Runtime,
    template_name: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
    *,
    urgent: bool = False,
    expires: timedelta | None = None,
) -> AlertPreview:
    """What `alert send` shows before queueing anything; with `expires` (from now), how many
    deliveries the ETA says would expire unsent."""
    template = rt.template(template_name)
    missing = [c for c in channels if c not in template.channels]
    if missing:
        raise InvalidInput(
            f"template {template_name!r} has no {', '.join(missing)} message "
            f"(it has: {', '.join(template.channels)})"
        )
    settings = rt.settings
    # Real-length signed links, so the SMS segment count shown is the one that will be sent.
    sample_id = new_public_id()
    sample = RecipientContext(
        manage_url=rt.signer.url(sample_id, "manage"),
        unsubscribe_url=rt.signer.url(sample_id, "unsubscribe", "email"),
        name="Alex Example",
    )
    rendered = preview(
        template,
        variables,
        force_name=settings.force_name,
        public_url=settings.public_url,
        recipient=sample,
        max_segments=settings.sms_max_segments,
    )
    with rt.engine.connect() as conn:
        counts = planning.count_recipients(conn, targeting, channels)
        calls = planning.count_calls(conn, targeting) if counts.get("voice") else 0
    segments = rendered["sms"].sms.segments if "sms" in rendered and rendered["sms"].sms else 1
    expires_at = utcnow() + expires if expires is not None else None
    forecasts = {
        channel: channel_eta(
            rt,
            channel,
            preview_mine(rt, targeting, channel),
            segments=segments,
            urgent=urgent,
            expires_at=expires_at,
        )
        for channel in channels
    }
    messages = {c: rendered[c] for c in channels}
    eta = {c: f.text for c, f in forecasts.items()}
    expiry = expiry_line(rt, forecasts.values(), expires_at) if expires_at else None
    return AlertPreview(
        template_name, channels, counts, messages, eta, forecasts, expires_at, expiry, calls
    )


def require_recipients(rt: Runtime, preview: AlertPreview, targeting: Targeting) -> None:
    """An alert that would reach nobody is refused before anything is created, saying why."""
    if any(preview.recipients.values()):
        return
    channels = ", ".join(preview.channels)
    if targeting.source is not None:
        with rt.engine.connect() as conn:
            known = planning.import_sources(conn)
        listed = f"; imported from: {', '.join(known[:10])}" if known else "; nobody was imported"
        raise InvalidInput(
            f"this alert would reach nobody: no one imported from '{targeting.source}' can be "
            f"sent {channels}{listed}"
        )
    raise InvalidInput(
        f"this alert would reach nobody: no active registrant on {channels} matches its targeting"
    )


def create_alert(
    rt: Runtime,
    template_name: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
    *,
    operator: str,
    urgent: bool = False,
    expires: timedelta | None = None,
    sms_segments: int = 1,
    status: str = AlertState.DRAFT,
    starts_at: datetime | None = None,
    idempotency_key: str | None = None,
    regional_key: str | None = None,
) -> Alert:
    """The alert row, a draft for `approval.submit` to send (a test fixture that plans by hand
    passes `status` sending); a scheduled alert's
    expiry counts from `starts_at`. A second alert with the same `idempotency_key` raises
    IntegrityError (`broadcast.alerts.duplicates` looks the first one up)."""
    rt.template(template_name).check_variables(variables)
    expires = expires or parse_duration(rt.settings.alert_default_expiry)
    alert = Alert(
        template=template_name,
        variables=json.dumps(dict(variables)),
        channels=",".join(channels),
        areas=",".join(targeting.areas),
        topics=",".join(targeting.topics),
        everyone=targeting.everyone,
        source=targeting.source,
        urgent=urgent,
        operator=operator,
        sms_segments=sms_segments,
        status=status,
        expires_at=max(utcnow(), starts_at or utcnow()) + expires,
        idempotency_key=idempotency_key,
        regional_key=regional_key,
    )
    with rt.engine.begin() as conn:
        values = alert.model_dump(exclude={"id"})
        key = conn.execute(Alert.__table__.insert().values(**values)).inserted_primary_key
        assert key is not None  # a single-row INSERT has one
        alert.id = key[0]
    return alert


def get_alert(rt: Runtime, alert_id: int) -> Alert:
    alert = load_alert(rt.engine, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    return alert


def list_alerts(rt: Runtime, limit: int = 20) -> list[Alert]:
    return recent_alerts(rt.engine, limit)


def delivery_counts(rt: Runtime, alert_id: int) -> dict[str, int]:
    with rt.engine.connect() as conn:
        rows = conn.execute(
            select(Delivery.channel, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.channel)
        )
        return {channel: int(n) for channel, n in rows}


@dataclass
class AlertStatusView:
    alert: Alert
    states: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: list[dict[str, object]] = field(default_factory=list)
    eta: dict[str, str] = field(default_factory=dict)
    settling: int = 0  # in doubt, to be settled by the sweep (not finished yet)
    forecasts: dict[str, ChannelEta] = field(default_factory=dict)
    # While sending: "3 deliveries (voice 3) would expire unsent at ..." or None.
    expiry: str | None = None

    @property
    def outcome(self) -> str:
        """ "done", or "done, 103 expired" when some deliveries never reached anyone."""
        return status_label(self.alert.status, self.states)

    # `household` deliveries per channel, by the state of the call they share (their outcome).
    households: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return not self.settling and not any(
            counts.get(s) for counts in self.states.values() for s in OPEN_STATES
        )

    def as_dict(self) -> dict[str, object]:
        a = self.alert
        return {
            "id": a.id,
            "template": a.template,
            "status": a.status,
            "outcome": self.outcome,
            "unreached": unreached(self.states),
            "operator": a.operator,
            "urgent": a.urgent,
            "created_at": _iso(a.created_at),
            "expires_at": _iso(a.expires_at),
            "channels": self.states,
            "failures": self.failures,
            "eta": self.eta,
            "forecast": {c: f.as_dict() for c, f in self.forecasts.items()},
            "expiry": self.expiry,
            "households": self.households,
        }


def alert_status(rt: Runtime, alert_id: int) -> AlertStatusView:
    """Counts per channel and state, failures grouped by reason, and the ETA of what is left."""
    alert = get_alert(rt, alert_id)
    view = AlertStatusView(alert)
    with rt.engine.connect() as conn:
        for channel, state, n in conn.execute(
            select(Delivery.channel, Delivery.state, func.count())
            .where(Delivery.alert_id == alert_id)
            .group_by(Delivery.channel, Delivery.state)
        ):
            view.states.setdefault(channel, {})[state] = int(n)
        view.settling = int(
            conn.execute(
                select(func.count()).where(
                    Delivery.alert_id == alert_id,
                    Delivery.state == DeliveryState.IN_DOUBT,
                    Delivery.settle_after.is_not(None),
                )
            ).scalar_one()
        )
        call = aliased(Delivery)
        for channel, state, n in conn.execute(
            select(Delivery.channel, call.state, func.count())
            .join(call, call.id == Delivery.call_id)
            .where(Delivery.alert_id == alert_id, Delivery.state == DeliveryState.HOUSEHOLD)
            .group_by(Delivery.channel, call.state)
        ):
            view.households.setdefault(channel, {})[state] = int(n)
        for channel, state, code, text, n in conn.execute(
            select(
                Delivery.channel,
                Delivery.state,
                Delivery.error_code,
                Delivery.error_text,
                func.count(),
            )
            .where(Delivery.alert_id == alert_id, Delivery.state.in_(PROBLEM_STATES))
            .group_by(Delivery.channel, Delivery.state, Delivery.error_code, Delivery.error_text)
            .order_by(func.count().desc())
        ):
            view.failures.append(
                {"channel": channel, "state": state, "code": code, "reason": text, "count": int(n)}
            )
    for channel in split_channels(alert.channels):
        if view.states.get(channel, {}).get(DeliveryState.QUEUED, 0):
            found = channel_eta(
                rt,
                channel,
                queued_mine(rt, alert_id, channel),
                segments=alert.sms_segments,
                urgent=alert.urgent,
                expires_at=alert.expires_at,
                exclude=alert_id,
                total=sum(view.states[channel].values()),
            )
            view.forecasts[channel], view.eta[channel] = found, found.text
    view.expiry = expiry_line(rt, view.forecasts.values(), alert.expires_at)
    return view


def cancel_alert(rt: Runtime, alert_id: int, *, operator: str = "unknown") -> int:
    """Stop the alert: every delivery not yet claimed by a worker ends `cancelled` now. The
    alert moves to `cancelled` unless it has finished (or `approval.cancel` moved it already)."""
    get_alert(rt, alert_id)
    with rt.engine.begin() as conn:
        lifecycle.transition(conn, alert_id, AlertState.CANCELLED, operator=operator)
        # Workers claim only `queued` rows, so after this commit nothing more goes out. Rows a
        # worker is claiming right now are skipped, not waited for: they are going out, and
        # waiting (on PostgreSQL) let a claim of several rows and this one deadlock.
        unclaimed = (
            select(Delivery.id)
            .where(Delivery.alert_id == alert_id, Delivery.state == DeliveryState.QUEUED)
            .with_for_update(skip_locked=True)
        )
        result = conn.execute(
            update(Delivery)
            .where(Delivery.id.in_(unclaimed.scalar_subquery()))
            .values(state=DeliveryState.CANCELLED, finished_at=utcnow())
        )
    return int(result.rowcount or 0)


def retry_failed(
    rt: Runtime,
    dispatcher: Dispatcher,
    alert_id: int,
    *,
    extend: timedelta | None = None,
    operator: str = "unknown",
) -> int:
    """Queue again the deliveries that ended `failed` (transient failures that ran out of tries);
    permanent failures (`undeliverable`) stay. An expired alert gets `extend` more time."""
    alert = get_alert(rt, alert_id)
    if alert.status == AlertState.CANCELLED:
        raise InvalidInput(f"alert {alert_id} was cancelled; send a new alert instead")
    extend = extend or parse_duration(rt.settings.alert_default_expiry)
    return requeue_alert(rt, dispatcher, alert, operator=operator, extend=extend).deliveries


def _iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.isoformat()
