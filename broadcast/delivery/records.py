"""Delivery rows: load a batch, claim, and record outcomes in bulk (one statement per kind)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, literal, or_, select, text, update
from sqlmodel import Session

from broadcast.delivery.dispatch import Chunk
from broadcast.store.bulk import one_of
from broadcast.store.tables import Alert, Delivery, Registrant, utcnow
from broadcast.vocabulary import DeliveryState, address_for

_T = Delivery.__table__


@dataclass(frozen=True, slots=True)
class Recipient:
    delivery_id: int
    registrant_id: int
    public_id: str
    name: str | None
    language: str
    email: str | None
    mobile: str | None
    landline: str | None
    attempts: int

    def address(self, channel: str) -> str | None:
        return address_for(channel, self)


# What rendering a delivery's message needs, in Recipient's field order.
RECIPIENT_COLUMNS = (
    Delivery.id,
    Delivery.registrant_id,
    Registrant.public_id,
    Registrant.name,
    Registrant.language,
    Registrant.email,
    Registrant.mobile,
    Registrant.landline,
    Delivery.attempts,
)


def load_queued(connection: Connection, chunk: Chunk, after: int, limit: int) -> list[Recipient]:
    """The next queued deliveries of the chunk (id > after), with what rendering needs."""
    statement = (
        select(*RECIPIENT_COLUMNS)
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .where(
            Delivery.alert_id == chunk.alert_id,
            Delivery.channel == chunk.channel,
            Delivery.state == DeliveryState.QUEUED,
            Delivery.id > after,
            Delivery.id <= chunk.upto_id,
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    return [Recipient(*row) for row in connection.execute(statement)]


@dataclass(frozen=True, slots=True)
class ClaimedRow:
    """A delivery as recovery sees it: whose, where, since when, and why in doubt."""

    alert_id: int
    channel: str
    claimed_at: datetime | None
    error_code: str | None
    error_text: str | None
    recipient: Recipient

    @property
    def delivery_id(self) -> int:
        return self.recipient.delivery_id


def load_recipients(connection: Connection, ids: Sequence[int]) -> list[ClaimedRow]:
    """These deliveries with what rebuilding their messages needs."""
    if not ids:
        return []
    statement = (
        select(
            Delivery.alert_id,
            Delivery.channel,
            Delivery.claimed_at,
            Delivery.error_code,
            Delivery.error_text,
            *RECIPIENT_COLUMNS,
        )
        .join(Registrant, Registrant.id == Delivery.registrant_id)
        .where(one_of(connection, Delivery.id, ids))
        .order_by(Delivery.id)
    )
    # mypy types the slice of a Row this wide short, hence the ignore.
    return [
        ClaimedRow(*row[:5], Recipient(*row[5:]))  # type: ignore[call-arg]
        for row in connection.execute(statement)
    ]


def claim(connection: Connection, ids: Sequence[int], *, claimed_by: str | None = None) -> set[int]:
    """queued -> sending for those still queued, held by worker `claimed_by`; the ids this
    caller now owns."""
    if not ids:
        return set()
    where = (
        Delivery.id == ids[0] if len(ids) == 1 else one_of(connection, Delivery.id, ids),
        Delivery.state == DeliveryState.QUEUED,
    )
    statement = (
        update(Delivery)
        .where(*where)
        .values(
            state=DeliveryState.SENDING,
            claimed_at=utcnow(),
            claimed_by=claimed_by,
            attempts=Delivery.attempts + 1,
        )
        .returning(Delivery.id)
    )
    return set(connection.execute(statement).scalars())


def record_and_claim(
    connection: Connection,
    sent: Sequence[tuple[int, str, int]],
    ids: Sequence[int],
    *,
    claimed_by: str | None = None,
) -> set[int]:
    """`record_sent(sent)` then `claim(ids)`: the ids this caller now owns. On PostgreSQL one
    statement (a data-modifying WITH), the step of every lane waiting on a group commit."""
    if connection.dialect.name != "postgresql" or not sent or not ids:
        record_sent(connection, sent)
        return claim(connection, ids, claimed_by=claimed_by)
    now = utcnow()
    # Row-level security scopes this text statement to the transaction's force, as for
    # _SENT_PG; the ids are the caller's own chunk's.
    rows = json.dumps([[i, p, u] for i, p, u in sent])
    result = connection.execute(
        _RECORD_AND_CLAIM_PG,
        {"rows": rows, "ids": json.dumps(list(ids)), "now": now, "by": claimed_by},
    )
    return set(result.scalars())


def move_range(
    connection: Connection, chunk: Chunk, to_state: str, *, reason: str | None = None
) -> int:
    """Every still-queued delivery of the chunk to a final state (cancelled, expired)."""
    statement = (
        update(Delivery)
        .where(
            Delivery.alert_id == chunk.alert_id,
            Delivery.channel == chunk.channel,
            Delivery.state == DeliveryState.QUEUED,
            Delivery.id > chunk.after_id,
            Delivery.id <= chunk.upto_id,
        )
        .values(state=to_state, error_text=reason, finished_at=utcnow())
    )
    return int(connection.execute(statement).rowcount or 0)


def record_sent(
    connection: Connection, rows: Sequence[tuple[int, str, int]], now: datetime | None = None
) -> None:
    """(delivery id, provider id, units) for each accepted message: sending -> sent. A row the
    sweep already put in doubt (its worker seemed gone) is settled by the late answer too."""
    if not rows:
        return
    now = now or utcnow()
    statement = (
        _T.update()
        # Literals, not an IN list: an expanding parameter cannot go in an executemany (several
        # lanes' successes in one group commit).
        .where(_T.c.id == bindparam("b_id"), or_(*(_T.c.state == literal(s) for s in _ANSWERABLE)))
        .values(
            state=DeliveryState.SENT,
            settle_after=None,
            provider_id=bindparam("b_provider"),
            units=bindparam("b_units"),
            sent_at=now,
            finished_at=now,
            error_code=None,
            error_text=None,
        )
    )
    if connection.dialect.name == "postgresql":
        # One statement with the rows as one JSON parameter: an executemany of 500 UPDATEs
        # was about 40 µs of worker CPU per delivery (docs/performance.md).
        payload = json.dumps([[i, p, u] for i, p, u in rows])
        connection.execute(_SENT_PG, {"rows": payload, "now": now})
        return
    params = [{"b_id": i, "b_provider": p, "b_units": u} for i, p, u in rows]
    connection.execute(statement, params)


_ANSWERABLE = (DeliveryState.SENDING, DeliveryState.IN_DOUBT)
_SENT_PG = text(
    "UPDATE delivery SET state = 'sent', provider_id = v.value->>1, "
    "units = (v.value->>2)::int, sent_at = :now, finished_at = :now, error_code = NULL, "
    "error_text = NULL, settle_after = NULL FROM json_array_elements(CAST(:rows AS json)) AS v "
    "WHERE delivery.id = (v.value->>0)::int AND delivery.state IN ('sending', 'in-doubt')"
)


_RECORD_AND_CLAIM_PG = text(
    f"WITH recorded AS ({_SENT_PG.text} RETURNING delivery.id) "
    "UPDATE delivery SET state = 'sending', claimed_at = :now, claimed_by = :by, "
    "attempts = attempts + 1 WHERE delivery.id = ANY(ARRAY(SELECT json_array_elements_text("
    "CAST(:ids AS json))::int)) AND delivery.state = 'queued' RETURNING delivery.id"
)


def record_state(
    connection: Connection,
    rows: Sequence[tuple[int, str | None, str]],
    state: str,
    *,
    from_states: Sequence[str] = (DeliveryState.SENDING, DeliveryState.QUEUED),
    final: bool = True,
) -> None:
    """(delivery id, error code, reason) for each: move to `state` with that reason."""
    if not rows:
        return
    statement = (
        _T.update()
        .where(
            _T.c.id == bindparam("b_id"),
            or_(*(_T.c.state == literal(state) for state in from_states)),
        )
        .values(
            state=state,
            error_code=bindparam("b_code"),
            error_text=bindparam("b_text"),
            finished_at=utcnow() if final else None,
        )
    )
    params = [{"b_id": i, "b_code": c, "b_text": (t or "")[:300]} for i, c, t in rows]
    connection.execute(statement, params)


def schedule_settling(connection: Connection, ids: Sequence[int], when: datetime) -> None:
    """In-doubt deliveries the sweep settles automatically from `when` (docs/delivery.md)."""
    if ids:
        connection.execute(
            update(Delivery)
            .where(one_of(connection, Delivery.id, ids), Delivery.state == DeliveryState.IN_DOUBT)
            .values(settle_after=when, finished_at=None)
        )


def release(connection: Connection, ids: Sequence[int]) -> None:
    """sending -> queued for claimed deliveries that were not handed to a provider."""
    if ids:
        connection.execute(
            update(Delivery)
            .where(one_of(connection, Delivery.id, ids), Delivery.state == DeliveryState.SENDING)
            .values(state=DeliveryState.QUEUED, attempts=Delivery.attempts - 1)
        )


def load_alert(bind: Engine | Connection, alert_id: int) -> Alert | None:
    """The alert as a detached object (readable after the session closes).

    Inside an open transaction pass its connection: the read joins it instead of taking a
    second connection from the pool while the first is held."""
    with Session(bind, expire_on_commit=False) as session:
        return session.get(Alert, alert_id)


def recent_alerts(engine: Engine, limit: int) -> list[Alert]:
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(Alert).order_by(Alert.id.desc()).limit(limit)))
