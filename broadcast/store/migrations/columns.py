"""Column shapes several migrations write: imported by them, so each is written once.

A migration's DDL must never change once released; change these only by adding new helpers.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString


def when(name: str, nullable: bool = True) -> sa.Column[datetime]:
    """A timestamp column (stored as UTC)."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def registrant_tag_table(table: str, column: str) -> None:
    """A registrant's areas or topics: one row per (registrant, tag), indexed by tag first."""
    op.create_table(
        table,
        sa.Column("registrant_id", sa.Integer(), nullable=False),
        sa.Column(column, AutoString(length=40), nullable=False),
        sa.ForeignKeyConstraint(["registrant_id"], ["registrant.id"]),
        sa.PrimaryKeyConstraint("registrant_id", column),
    )
    with op.batch_alter_table(table, schema=None) as batch_op:
        batch_op.create_index(f"ix_{table}_{column}", [column, "registrant_id"], unique=False)
