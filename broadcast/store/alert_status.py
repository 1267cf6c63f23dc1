"""The only writer of `alert.status`: a compare-and-set, and its row in `alert_transition`.

Both happen in the caller's transaction, so the log holds every move and a move nobody made
is never logged. Which moves are allowed is the state machine's business
(`broadcast.alerts.lifecycle.transition`); the delivery engine, below it, uses this directly
for the one move it makes (sending -> done). docs/lifecycle.md
"""

from __future__ import annotations

from sqlalchemy import Connection, insert, update

from broadcast.store.tables import Alert, AlertTransition, utcnow
from broadcast.vocabulary import ALERT_ENDED, AlertState


def set_status(
    conn: Connection,
    alert_id: int,
    to: str,
    *,
    expect: str,
    operator: str,
    reason: str | None = None,
) -> bool:
    """Move the alert from `expect` to `to` and log it; False (nothing written) when its state
    is no longer `expect` (another process moved it first). An ended alert gets `finished_at`;
    one sending again loses it."""
    values: dict[str, object] = {"status": to}
    if to in ALERT_ENDED:
        values["finished_at"] = utcnow()
    elif to == AlertState.SENDING:
        values["finished_at"] = None
    moved = conn.execute(
        update(Alert).where(Alert.id == alert_id, Alert.status == expect).values(**values)
    ).rowcount
    if moved:
        _log(conn, alert_id, expect, to, operator=operator, reason=reason)
    return bool(moved)


def set_first_status(conn: Connection, alert_id: int, to: str, *, operator: str) -> None:
    """A new alert's first state (the log's first line, from no state)."""
    conn.execute(update(Alert).where(Alert.id == alert_id).values(status=to))
    _log(conn, alert_id, None, to, operator=operator)


def _log(
    conn: Connection,
    alert_id: int,
    from_state: str | None,
    to: str,
    *,
    operator: str,
    reason: str | None = None,
) -> None:
    conn.execute(
        insert(AlertTransition).values(
            alert_id=alert_id,
            from_state=from_state,
            to_state=to,
            operator=operator or "unknown",
            reason=(reason or None) and reason[:300],
            occurred_at=utcnow(),
        )
    )
