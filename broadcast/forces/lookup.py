"""Which force a row belongs to, read nationally (a job that names only an alert)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from broadcast.store.tables import Alert
from broadcast.store.tenancy import national


def force_of_alert(engine: Engine, alert_id: int) -> int | None:
    """The force of alert `alert_id`; None when there is no such alert."""
    with national(engine).connect() as conn:
        found = conn.execute(select(Alert.force_id).where(Alert.id == alert_id)).scalar()
    return int(found) if found is not None else None
