"""alert idempotency key: `alert send --idempotency-key` sends an alert at most once per key

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: alerts sent without a key (every earlier one) have none; a unique index allows
    # many NULLs on both SQLite and PostgreSQL.
    with op.batch_alter_table("alert") as batch:
        batch.add_column(sa.Column("idempotency_key", sa.String(200), nullable=True))
    op.create_index("ix_alert_idempotency_key", "alert", ["idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_alert_idempotency_key", "alert")
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("idempotency_key")
