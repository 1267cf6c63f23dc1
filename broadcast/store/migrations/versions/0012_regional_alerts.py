"""regional alerts: the parts of one alert sent to several forces share a key

Revision ID: 0012
Revises: 0011

An alert for the registrants of several forces (a regional fraud warning) is one alert per
receiving force, each its force's (branded, approved and sent by it); `regional_key` ties the
parts together so `alert status` can show the whole. NULL for every other alert.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("alert", sa.Column("regional_key", sa.String(40), nullable=True))
    op.create_index("ix_alert_regional_key", "alert", ["regional_key"])


def downgrade() -> None:
    op.drop_index("ix_alert_regional_key", "alert")
    with op.batch_alter_table("alert") as batch:
        batch.drop_column("regional_key")
