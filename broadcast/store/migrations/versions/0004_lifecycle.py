"""alert lifecycle: approval, scheduling, follow-ups, escalation, transitions

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broadcast.store.migrations.columns import when

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_lifecycle",
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alert.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("parent_id", sa.Integer(), sa.ForeignKey("alert.id"), nullable=True),
        when("scheduled_at"),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("approved_by", sa.String(120), nullable=True),
        sa.Column("escalate", sa.String(40), nullable=True),
        sa.Column("escalate_after", sa.Integer(), nullable=True),
        when("released_at"),
        sa.Column("reason", sa.String(300), nullable=True),
        sa.PrimaryKeyConstraint("alert_id"),
    )
    op.create_index("ix_alert_lifecycle_parent_id", "alert_lifecycle", ["parent_id"])
    op.create_index("ix_alert_lifecycle_scheduled_at", "alert_lifecycle", ["scheduled_at"])
    op.create_table(
        "alert_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alert.id"), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("operator", sa.String(120), nullable=False),
        sa.Column("reason", sa.String(300), nullable=True),
        when("occurred_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_transition_alert_id", "alert_transition", ["alert_id"])


def downgrade() -> None:
    op.drop_index("ix_alert_transition_alert_id", "alert_transition")
    op.drop_table("alert_transition")
    op.drop_index("ix_alert_lifecycle_scheduled_at", "alert_lifecycle")
    op.drop_index("ix_alert_lifecycle_parent_id", "alert_lifecycle")
    op.drop_table("alert_lifecycle")
