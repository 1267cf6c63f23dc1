"""alerts and deliveries

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from broadcast.store.migrations.columns import when

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(80), nullable=False),
        sa.Column("variables", sa.String(), nullable=False),
        sa.Column("channels", sa.String(40), nullable=False),
        sa.Column("areas", sa.String(2000), nullable=False),
        sa.Column("topics", sa.String(2000), nullable=False),
        sa.Column("everyone", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(300), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("operator", sa.String(120), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("sms_segments", sa.Integer(), nullable=False),
        when("created_at", nullable=False),
        when("expires_at", nullable=False),
        when("finished_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alert.id"), nullable=False),
        sa.Column("registrant_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.String(200), nullable=True),
        sa.Column("error_code", sa.String(40), nullable=True),
        sa.Column("error_text", sa.String(300), nullable=True),
        when("created_at", nullable=False),
        when("claimed_at"),
        when("sent_at"),
        when("finished_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "registrant_id", "channel"),
    )
    op.create_index(
        "ix_delivery_alert_channel_state", "delivery", ["alert_id", "channel", "state", "id"]
    )
    op.create_index("ix_delivery_state_channel", "delivery", ["state", "channel"])
    op.create_index("ix_delivery_provider_id", "delivery", ["provider_id"])


def downgrade() -> None:
    op.drop_table("delivery")
    op.drop_table("alert")
