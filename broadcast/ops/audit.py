"""The audit log: an append-only record of operator actions (alerts sent and cancelled,
failures requeued or purged, registrants imported, changed or erased).

Details are JSON with counts, templates, targets and registrant ids only: never names, numbers
or addresses, so the log can be shown to anyone entitled to see operations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlmodel import Session

from broadcast.errors import InvalidInput
from broadcast.store.tables import AuditEvent, utcnow

ACTIONS = (
    "alert.sent",
    "alert.approved",
    "alert.rejected",
    "alert.cancelled",
    "alert.retried",
    "alert.resumed",
    "alert.follow-up",
    "alert.regional-part",
    "failures.requeued",
    "failures.purged",
    "registrants.imported",
    "registrant.added",
    "registrant.amended",
    "registrant.unsubscribed",
    "registrant.erased",
    "force.added",
    "force.amended",
)


@dataclass(frozen=True)
class AuditEntry:
    occurred_at: datetime
    operator: str
    action: str
    subject: str | None
    details: dict[str, Any]


def record(
    target: Session | Connection,
    *,
    operator: str,
    action: str,
    subject: str | None = None,
    details: Mapping[str, object] | None = None,
) -> None:
    """Append one event, inside the caller's transaction (it lands only if the action does)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    values = {
        "occurred_at": utcnow(),
        "operator": operator or "unknown",
        "action": action,
        "subject": subject,
        "details": json.dumps(dict(details or {}), default=str, sort_keys=True),
    }
    connection = target.connection() if isinstance(target, Session) else target
    connection.execute(insert(AuditEvent.__table__), [values])


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """'24h', '7d', '30m' (ago), or an ISO date / date-time."""
    now = now or utcnow()
    units = {"m": 60, "h": 3600, "d": 86400}
    stripped = text.strip().lower()
    if stripped[:-1].isdigit() and stripped[-1:] in units:
        return now - timedelta(seconds=int(stripped[:-1]) * units[stripped[-1]])
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput(f"--since '{text}' is not a duration (24h, 7d) or a date") from None
    return value if value.tzinfo else value.replace(tzinfo=now.tzinfo)


def entries(
    *,
    session: Session,
    since: datetime | None = None,
    action: str | None = None,
    limit: int = 1000,
) -> list[AuditEntry]:
    statement = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if since is not None:
        statement = statement.where(AuditEvent.occurred_at >= since)
    if action:
        statement = statement.where(AuditEvent.action.startswith(action))
    rows = list(session.scalars(statement))
    return [
        AuditEntry(r.occurred_at, r.operator, r.action, r.subject, json.loads(r.details))
        for r in reversed(rows)
    ]
