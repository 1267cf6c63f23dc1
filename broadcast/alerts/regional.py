"""An alert for the registrants of several forces (a regional fraud warning).

Each force is the controller of its registrants' data, so a regional alert is one alert per
receiving force, each that force's own: planned over its registrants, branded with its name,
senders and links, sent within its capacity, recorded in its audit log (by the caller). The
sending force's part follows its own policy (two-person approval if it requires it); every other
force's part waits for that force's approval (`alert approve` run as that force), unless the
sender used the audited emergency override. The parts share a `regional_key`, so `alert status`
on any part shows the whole (docs/tenancy.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select

from broadcast.alerts import approval
from broadcast.alerts import compose as alerts
from broadcast.delivery.dispatch import Dispatcher
from broadcast.delivery.planning import Targeting
from broadcast.errors import InvalidInput
from broadcast.forces.registry import ForceInfo, all_forces
from broadcast.runtime import Runtime
from broadcast.store.tables import Alert, Delivery
from broadcast.store.tenancy import national

KEY_PREFIX = "regional-"


@dataclass(frozen=True)
class Part:
    """One receiving force's alert, and the state submitting it left it in."""

    force: ForceInfo
    alert_id: int
    state: str


@dataclass
class PartStatus:
    force_code: str
    force_name: str
    alert_id: int
    status: str
    states: dict[str, int] = field(default_factory=dict)  # deliveries per state

    def as_dict(self) -> dict[str, object]:
        return {
            "force": self.force_code,
            "alert_id": self.alert_id,
            "status": self.status,
            "deliveries": self.states,
        }


def receiving_forces(rt: Runtime, codes: Sequence[str]) -> list[ForceInfo]:
    """The forces named (in the order given, each once); an unknown code is one line listing
    the known ones."""
    known = {f.code: f for f in all_forces(rt.base_engine)}
    chosen: list[ForceInfo] = []
    for code in (c.strip().lower() for c in codes):
        if not code:
            continue
        if code not in known:
            raise InvalidInput(f"no force {code!r}; known forces: {', '.join(sorted(known))}")
        if known[code] not in chosen:
            chosen.append(known[code])
    if not chosen:
        raise InvalidInput("--forces names no force")
    return chosen


def send_regional(
    rt: Runtime,
    dispatcher: Dispatcher,
    forces: Sequence[ForceInfo],
    template: str,
    variables: Mapping[str, str],
    channels: tuple[str, ...],
    targeting: Targeting,
    *,
    operator: str,
    urgent: bool = False,
    expires: timedelta | None = None,
    emergency: bool = False,
) -> list[Part]:
    """Create and submit one alert per receiving force (`rt` is the sending force's)."""
    assert rt.force is not None
    key = KEY_PREFIX + secrets.token_hex(12)
    parts: list[Part] = []
    for force in forces:
        part_rt = rt.for_force(force.id)
        alert = alerts.create_alert(
            part_rt,
            template,
            variables,
            channels,
            targeting,
            operator=operator,
            urgent=urgent,
            expires=expires,
            regional_key=key,
        )
        assert alert.id is not None
        own = force.id == rt.force.id
        state = approval.submit(
            part_rt,
            dispatcher,
            alert,
            operator=operator,
            emergency=emergency,
            needs_approval=not own,
        )
        parts.append(Part(force, alert.id, state))
    return parts


def parts_of(rt: Runtime, alert: Alert) -> list[PartStatus]:
    """Every part of `alert`'s regional alert (none for a plain alert), read nationally: a part
    shows the whole, its siblings' states and counts only (no registrant's data)."""
    if alert.regional_key is None:
        return []
    names = {f.id: f for f in all_forces(rt.base_engine)}
    with national(rt.base_engine).connect() as conn:
        rows = conn.execute(
            select(Alert.id, Alert.force_id, Alert.status)
            .where(Alert.regional_key == alert.regional_key)
            .order_by(Alert.id)
        ).all()
        counts = conn.execute(
            select(Delivery.alert_id, Delivery.state, func.count())
            .where(Delivery.alert_id.in_([r.id for r in rows]))
            .group_by(Delivery.alert_id, Delivery.state)
        ).all()
    found = []
    for row in rows:
        force = names[row.force_id]
        states = {state: int(n) for alert_id, state, n in counts if alert_id == row.id}
        found.append(PartStatus(force.code, force.name or force.code, row.id, row.status, states))
    return found
