"""households: a landline may be shared by several registrants; one call per number per alert

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _without_landline_unique() -> sa.Table:
    """The registrant table as it stands, minus the landline's unique constraint. 0001 left that
    constraint unnamed and SQLite cannot drop a constraint in place, so on SQLite the table is
    rebuilt from this copy (rows, indexes and the other constraints kept)."""
    table = sa.Table("registrant", sa.MetaData(), autoload_with=op.get_bind())
    for constraint in list(table.constraints):
        if isinstance(constraint, sa.UniqueConstraint) and [c.name for c in constraint.columns] == [
            "landline"
        ]:
            table.constraints.remove(constraint)
    return table


def _landline_unique_name() -> str | None:
    found = [
        c["name"]
        for c in sa.inspect(op.get_bind()).get_unique_constraints("registrant")
        if c["column_names"] == ["landline"]
    ]
    return found[0] if found else None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table(
            "registrant", copy_from=_without_landline_unique(), recreate="always"
        ):
            pass
    else:
        name = _landline_unique_name()
        if name:
            op.drop_constraint(name, "registrant", type_="unique")
    op.create_index("ix_registrant_landline", "registrant", ["landline"])
    with op.batch_alter_table("delivery") as batch:
        batch.add_column(sa.Column("call_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    # Going back needs one registrant per landline again; a database holding households cannot
    # go back without losing someone's number, so the unique constraint's creation then fails.
    with op.batch_alter_table("delivery") as batch:
        batch.drop_column("call_id")
    op.drop_index("ix_registrant_landline", "registrant")
    with op.batch_alter_table("registrant") as batch:
        batch.create_unique_constraint("registrant_landline_key", ["landline"])
