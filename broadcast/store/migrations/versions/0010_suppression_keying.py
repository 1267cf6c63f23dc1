"""suppression keying: which key the suppression list's and ledger's address hashes use

Revision ID: 0010
Revises: 0007

Before this revision the hashes were keyed with BROADCAST_SUPPRESSION_KEY or, when that was
unset, the link-signing key itself. A database that already holds hashes keeps that rule
("link-key"), so they keep matching; a new database keys them with a key derived from the link
key ("derived"). Either way BROADCAST_SUPPRESSION_KEY, when set, is used as it is.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppression_keying",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    connection = op.get_bind()
    held = connection.execute(
        sa.text(
            "SELECT EXISTS (SELECT 1 FROM suppression) OR EXISTS "
            "(SELECT 1 FROM consent_ledger WHERE address_hash IS NOT NULL)"
        )
    ).scalar()
    connection.execute(
        sa.text("INSERT INTO suppression_keying (id, scheme) VALUES (1, :scheme)"),
        {"scheme": "link-key" if held else "derived"},
    )


def downgrade() -> None:
    op.drop_table("suppression_keying")
