"""forces: one deployment serves many forces; every row of a force's data names its force

Revision ID: 0011
Revises: 0010

A `force` table, and a `force_id` column on every table of a force's data. The install's one
force becomes the default force (id 1, code "default", an empty profile: the environment's
settings still describe it), and every existing row is assigned to it, nothing lost.
Uniqueness moves inside a force: an email or mobile once per force, a suppression entry per
force, an idempotency key per force. On PostgreSQL, row-level security is the second wall
(store/tenancy.py): scoped transactions run as the role `broadcast_tenant`, whose policies show
and accept only the rows of the force in `app.force_id`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

from broadcast.store.migrations.append_only import forbid_changes
from broadcast.store.migrations.columns import when

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

# Every table of a force's data (the ones store.tables marks Tenant).
TENANT_TABLES = (
    "registrant",
    "subscription",
    "registrant_area",
    "registrant_topic",
    "consent_ledger",
    "suppression",
    "alert",
    "delivery",
    "audit_event",
    "alert_lifecycle",
    "alert_transition",
)
ROLE = "broadcast_tenant"


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    op.create_table(
        "force",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", AutoString(length=40), nullable=False),
        sa.Column("name", AutoString(length=200), nullable=True),
        sa.Column("hosts", AutoString(length=1000), nullable=False),
        sa.Column("profile", AutoString(), nullable=False),
        when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code"),
    )
    bind.execute(
        sa.text(
            "INSERT INTO force (id, code, name, hosts, profile, created_at) "
            "VALUES (1, 'default', NULL, '', '{}', CURRENT_TIMESTAMP)"
        )
    )
    if not sqlite:
        # The default force took id 1 by hand: the sequence must hand out 2 next.
        bind.execute(sa.text("SELECT setval('force_id_seq', 1)"))
    for table in TENANT_TABLES:
        if table == "suppression":
            continue  # rebuilt below with force_id in its key
        op.add_column(
            table, sa.Column("force_id", sa.Integer(), nullable=False, server_default="1")
        )
    if sqlite:
        _sqlite_keys()
    else:
        _postgres_keys()
    op.drop_index("ix_subscription_channel_status", "subscription")
    op.create_index(
        "ix_subscription_force_channel_status",
        "subscription",
        ["force_id", "channel", "status", "registrant_id"],
    )
    op.drop_index("ix_registrant_area_area", "registrant_area")
    op.create_index(
        "ix_registrant_area_force_area", "registrant_area", ["force_id", "area", "registrant_id"]
    )
    op.drop_index("ix_registrant_topic_topic", "registrant_topic")
    op.create_index(
        "ix_registrant_topic_force_topic",
        "registrant_topic",
        ["force_id", "topic", "registrant_id"],
    )
    op.drop_index("ix_alert_idempotency_key", "alert")
    op.create_index(
        "ix_alert_force_idempotency_key", "alert", ["force_id", "idempotency_key"], unique=True
    )
    if not sqlite:
        _row_level_security()


def _registrant_without_unique_contacts() -> sa.Table:
    table = sa.Table("registrant", sa.MetaData(), autoload_with=op.get_bind())
    for constraint in list(table.constraints):
        if isinstance(constraint, sa.UniqueConstraint) and [c.name for c in constraint.columns] in (
            ["email"],
            ["mobile"],
        ):
            table.constraints.remove(constraint)
    return table


def _suppression_keyed_by_force() -> sa.Table:
    return sa.Table(
        "suppression",
        sa.MetaData(),
        sa.Column("force_id", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("address_hash", AutoString(length=64), nullable=False),
        sa.Column("channel", AutoString(length=8), nullable=False),
        sa.Column("reason", AutoString(length=40), nullable=False),
        when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("force_id", "address_hash", "channel"),
    )


def _sqlite_keys() -> None:
    # SQLite cannot drop an unnamed constraint or change a primary key in place: both tables are
    # rebuilt from a copy of their definition (rows, indexes and other constraints kept).
    with op.batch_alter_table(
        "registrant", copy_from=_registrant_without_unique_contacts(), recreate="always"
    ) as batch:
        batch.create_unique_constraint("uq_registrant_force_email", ["force_id", "email"])
        batch.create_unique_constraint("uq_registrant_force_mobile", ["force_id", "mobile"])
    op.add_column(
        "suppression", sa.Column("force_id", sa.Integer(), nullable=False, server_default="1")
    )
    with op.batch_alter_table(
        "suppression", copy_from=_suppression_keyed_by_force(), recreate="always"
    ):
        pass


def _postgres_keys() -> None:
    inspector = sa.inspect(op.get_bind())
    for constraint in inspector.get_unique_constraints("registrant"):
        if constraint["column_names"] in (["email"], ["mobile"]):
            op.drop_constraint(str(constraint["name"]), "registrant", type_="unique")
    op.create_unique_constraint("uq_registrant_force_email", "registrant", ["force_id", "email"])
    op.create_unique_constraint("uq_registrant_force_mobile", "registrant", ["force_id", "mobile"])
    op.add_column(
        "suppression", sa.Column("force_id", sa.Integer(), nullable=False, server_default="1")
    )
    primary = inspector.get_pk_constraint("suppression")["name"]
    op.drop_constraint(str(primary), "suppression", type_="primary")
    op.create_primary_key(
        "suppression_pkey", "suppression", ["force_id", "address_hash", "channel"]
    )
    for table in TENANT_TABLES:
        # Existing rows took the default force; new ones must name theirs (the store does).
        op.alter_column(table, "force_id", server_default=None)
        op.create_foreign_key(f"fk_{table}_force", table, "force", ["force_id"], ["id"])


def _row_level_security() -> None:
    # The role is the cluster's, shared by every database on it: made once, by whichever
    # upgrade gets there first (two at once may both try; the loser's error is swallowed).
    op.execute(
        f"""
        DO $$ BEGIN
            CREATE ROLE {ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$
        """
    )
    # The user that runs the app must be able to become the role (a superuser always can).
    op.execute(
        f"""
        DO $$ BEGIN
            IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
                EXECUTE format('GRANT {ROLE} TO %I', current_user);
            END IF;
        EXCEPTION WHEN unique_violation OR duplicate_object THEN NULL;
        END $$
        """
    )
    op.execute(f"GRANT USAGE ON SCHEMA public TO {ROLE}")
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {ROLE}")
    op.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {ROLE}")
    # Tables later migrations create are the role's to use too (their own policies are theirs).
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {ROLE}"
    )
    op.execute(
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {ROLE}"
    )
    for table in TENANT_TABLES:
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        # Unset (a transaction that set no force) reads as NULL: no row matches.
        op.execute(
            f"CREATE POLICY force_isolation ON {table} TO {ROLE} "
            f"USING (force_id = NULLIF(current_setting('app.force_id', true), '')::integer) "
            f"WITH CHECK (force_id = NULLIF(current_setting('app.force_id', true), '')::integer)"
        )


def _sqlite_downgrade_keys() -> None:
    registrant = sa.Table("registrant", sa.MetaData(), autoload_with=op.get_bind())
    for constraint in list(registrant.constraints):
        if isinstance(constraint, sa.UniqueConstraint) and "force_id" in constraint.columns:
            registrant.constraints.remove(constraint)
    with op.batch_alter_table("registrant", copy_from=registrant, recreate="always") as batch:
        batch.drop_column("force_id")
        batch.create_unique_constraint("registrant_email_key", ["email"])
        batch.create_unique_constraint("registrant_mobile_key", ["mobile"])
    suppression = sa.Table(
        "suppression",
        sa.MetaData(),
        sa.Column("address_hash", AutoString(length=64), nullable=False),
        sa.Column("channel", AutoString(length=8), nullable=False),
        sa.Column("reason", AutoString(length=40), nullable=False),
        when("created_at", nullable=False),
        sa.PrimaryKeyConstraint("address_hash", "channel"),
    )
    with op.batch_alter_table("suppression", copy_from=suppression, recreate="always"):
        pass


def downgrade() -> None:
    # Going back folds every force into one install: it fails (on the unique constraints) when
    # two forces hold the same email or mobile, rather than lose either.
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    if not sqlite:
        for table in TENANT_TABLES:
            op.execute(f"DROP POLICY force_isolation ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
            op.drop_constraint(f"fk_{table}_force", table, type_="foreignkey")
    op.drop_index("ix_alert_force_idempotency_key", "alert")
    op.create_index("ix_alert_idempotency_key", "alert", ["idempotency_key"], unique=True)
    op.drop_index("ix_registrant_topic_force_topic", "registrant_topic")
    op.create_index("ix_registrant_topic_topic", "registrant_topic", ["topic", "registrant_id"])
    op.drop_index("ix_registrant_area_force_area", "registrant_area")
    op.create_index("ix_registrant_area_area", "registrant_area", ["area", "registrant_id"])
    op.drop_index("ix_subscription_force_channel_status", "subscription")
    op.create_index(
        "ix_subscription_channel_status", "subscription", ["channel", "status", "registrant_id"]
    )
    if sqlite:
        _sqlite_downgrade_keys()
    else:
        op.drop_constraint("uq_registrant_force_email", "registrant", type_="unique")
        op.drop_constraint("uq_registrant_force_mobile", "registrant", type_="unique")
        op.create_unique_constraint("registrant_email_key", "registrant", ["email"])
        op.create_unique_constraint("registrant_mobile_key", "registrant", ["mobile"])
        op.drop_constraint("suppression_pkey", "suppression", type_="primary")
        op.create_primary_key("suppression_pkey", "suppression", ["address_hash", "channel"])
    for table in TENANT_TABLES:
        if sqlite and table in ("registrant", "suppression"):
            continue  # rebuilt without it above
        with op.batch_alter_table(table) as batch:
            batch.drop_column("force_id")
    if sqlite:
        # Rebuilding a table drops its triggers: the append-only ones come back.
        present = {
            row[0]
            for row in bind.execute(sa.text("SELECT name FROM sqlite_master WHERE type='trigger'"))
        }
        for table in ("consent_ledger", "audit_event"):
            if f"{table}_no_update" not in present:
                forbid_changes(table)
    op.drop_table("force")
