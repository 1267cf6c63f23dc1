"""Build registrants and runtimes for delivery tests, in bulk and without the CLI."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from broadcast.channels import Channel, ChannelError, OutboundMessage, SendResult
from broadcast.store.tables import (
    ConsentLedgerEntry,
    Registrant,
    RegistrantArea,
    RegistrantTopic,
    Subscription,
    new_public_ids,
    utcnow,
)


@dataclass
class Person:
    areas: Sequence[str] = ("SW1A",)
    topics: Sequence[str] = ()
    channels: Sequence[str] = ("sms", "email", "voice")
    status: str = "active"
    imported_from: str | None = None
    name: str = "Alex Example"
    landline: str | None = None  # E.164; several people may share one (a household)


def add_people(engine: Engine, people: Sequence[Person]) -> list[int]:
    """Insert registrants with numbers/emails derived from their position in their force (so
    the first person of two forces is the same person registered with both); their ids."""
    now = utcnow()
    with engine.begin() as conn:
        start = conn.execute(select(func.count()).select_from(Registrant)).scalar_one()
        public_ids = new_public_ids(len(people))
        rows = [
            {
                "public_id": public_ids[i],
                "name": p.name,
                "email": f"person{start + i}@example.org",
                "mobile": f"+447700{900000 + start + i:06d}",
                "landline": p.landline,
                "language": "en",
                "created_at": now,
                "updated_at": now,
            }
            for i, p in enumerate(people)
        ]
        # Plain SQLAlchemy executemany (insertmanyvalues): independent of broadcast.store.bulk.
        table = Registrant.__table__
        ids = list(
            conn.execute(
                table.insert().returning(table.c.id, sort_by_parameter_order=True), rows
            ).scalars()
        )
        subs, areas, topics, ledger = [], [], [], []
        for rid, p in zip(ids, people, strict=True):
            for channel in p.channels:
                subs.append(
                    {
                        "registrant_id": rid,
                        "channel": channel,
                        "status": p.status,
                        "updated_at": now,
                        "confirmation_attempts": 0,
                    }
                )
                if p.imported_from:
                    ledger.append(
                        {
                            "registrant_id": rid,
                            "event": "imported",
                            "channel": channel,
                            "source": "csv-import",
                            "source_detail": p.imported_from,
                            "occurred_at": now,
                        }
                    )
            areas += [{"registrant_id": rid, "area": a} for a in p.areas]
            topics += [{"registrant_id": rid, "topic": t} for t in p.topics]
        if subs:
            conn.execute(Subscription.__table__.insert(), subs)
        if areas:
            conn.execute(RegistrantArea.__table__.insert(), areas)
        if topics:
            conn.execute(RegistrantTopic.__table__.insert(), topics)
        if ledger:
            conn.execute(ConsentLedgerEntry.__table__.insert(), ledger)
    return ids


@dataclass
class RecordingChannel(Channel):
    """Keeps every message; `failures` maps a recipient to the error to raise for it."""

    name: str = "sms"  # type: ignore[assignment]
    sent: list[OutboundMessage] = field(default_factory=list)
    failures: dict[str, Callable[[], ChannelError]] = field(default_factory=dict)
    attempted: dict[str, list[OutboundMessage]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self.attempted.setdefault(message.to, []).append(message)
        failure = self.failures.get(message.to)
        if failure is not None:
            raise failure()
        with self._lock:
            self.sent.append(message)
            return SendResult(f"REC{message.delivery_id}", "queued")
