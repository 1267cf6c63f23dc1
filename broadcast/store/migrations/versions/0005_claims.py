"""delivery claims: which worker holds a send, when a doubtful one is settled, how it was

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broadcast.store.migrations.columns import when

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(80), nullable=True))
        batch.add_column(when("settle_after"))
        batch.add_column(sa.Column("recovered", sa.String(120), nullable=True))
    # The sweep looks for in-doubt rows due for settling, and for the claims of dead workers.
    op.create_index("ix_delivery_settle_after", "delivery", ["settle_after"])
    op.create_index("ix_delivery_claimed_by", "delivery", ["claimed_by"])


def downgrade() -> None:
    op.drop_index("ix_delivery_claimed_by", "delivery")
    op.drop_index("ix_delivery_settle_after", "delivery")
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("recovered")
        batch.drop_column("settle_after")
        batch.drop_column("claimed_by")
