"""Which force a row belongs to, read nationally (a job that names only an alert, a link that
names only a registrant)."""

from __future__ import annotations

from sqlalchemy import Engine, select

from broadcast.store.tables import Alert, Registrant
from broadcast.store.tenancy import national


def force_of_alert(engine: Engine, alert_id: int) -> int | None:
    """The force of alert `alert_id`; None when there is no such alert."""
    with national(engine).connect() as conn:
        found = conn.execute(select(Alert.force_id).where(Alert.id == alert_id)).scalar()
    return int(found) if found is not None else None


def force_of_registrant(engine: Engine, public_id: str) -> int | None:
    """The force of the registrant with `public_id` (unique across the platform); None when
    there is none."""
    with national(engine).connect() as conn:
        found = conn.execute(
            select(Registrant.force_id).where(Registrant.public_id == public_id)
        ).scalar()
    return int(found) if found is not None else None
