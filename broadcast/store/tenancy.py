"""Force scoping: every read and write of a force's rows is scoped by one mechanism, here.

A process, command, request or job works "as force X" by using `scoped(engine, X)`: the same
engine (one pool) with an execution option naming the force. Every statement run on it is
scoped before it reaches the database, whatever the query remembered:

- SELECT, UPDATE and DELETE on a force's tables (`Tenant` rows) get `force_id = X` on every
  occurrence of such a table, joins and subqueries included (`with_loader_criteria`);
- INSERT writes `force_id` from the scope (the statement's value, or the column's default for
  INSERT ... SELECT), so a row can only be written into the force it is written as; an insert
  with no scope fails.

On PostgreSQL a second wall stands behind the first: row-level security. Each scoped
transaction runs as the role `broadcast_tenant` with `app.force_id` set (`SET LOCAL`), and the
policies let that role see and write only that force's rows, so raw SQL or a statement this hook
never saw still sees nothing of another force. `national(engine)` is the platform's own view
(migrations, the sweeper, `--force` left out on a platform of several forces): no criteria and
no role, every force's rows. docs/tenancy.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Delete, Engine, Insert, Select, Table, Update, event, literal
from sqlalchemy.engine.interfaces import ExecutionContext
from sqlalchemy.orm import with_loader_criteria

from broadcast.errors import BroadcastError

# The execution option that carries the force, and its value for the platform's own view.
FORCE_OPTION = "force_id"
NATIONAL = "national"
# The PostgreSQL role scoped transactions run as (migration 0011 creates it and its policies).
TENANT_ROLE = "broadcast_tenant"


class Tenant:
    """Marks a table whose rows belong to one force (each has a `force_id` column)."""


class NoForceScope(BroadcastError):
    """A force's row was written without a force to write it as."""


def scoped(engine: Engine, force_id: int) -> Engine:
    """`engine` working as force `force_id`: the same pool, every statement scoped."""
    return engine.execution_options(**{FORCE_OPTION: int(force_id)})


def national(engine: Engine) -> Engine:
    """`engine` seeing every force (the platform's own work: migrations, sweeps, force lists)."""
    return engine.execution_options(**{FORCE_OPTION: NATIONAL})


def force_of(bind: Engine | Connection) -> int | None:
    """The force `bind` works as; None for the national view or no scope at all."""
    value = bind.get_execution_options().get(FORCE_OPTION)
    return value if isinstance(value, int) else None


def current_force(context: ExecutionContext) -> int:
    """The `force_id` column's default: the force the inserting connection works as."""
    value = context.execution_options.get(FORCE_OPTION)
    if not isinstance(value, int):
        raise NoForceScope("a force's row was written without a force scope (use scoped())")
    return value


def _fill_force(_mapper: Any, connection: Connection, target: Any) -> None:
    """An ORM object about to be inserted takes the connection's force, so the object itself
    says which force it belongs to once flushed (the INSERT would write it anyway)."""
    force = force_of(connection)
    if force is not None:
        target.force_id = force


event.listen(Tenant, "before_insert", _fill_force, propagate=True)


def install(engine: Engine) -> None:
    """Put both walls on `engine` (create_db_engine calls this once per engine)."""
    event.listen(engine, "before_execute", _scope_statement, retval=True)
    if engine.dialect.name == "postgresql":
        event.listen(engine, "begin", _enter_force)


def _criteria(force: int) -> Any:
    # One option for every Tenant table; the lambda is called per mapped class (the marker
    # itself has no column, hence the getattr), and its closure variable keeps the statement
    # cacheable: the force is a bound parameter, not part of the SQL.
    return with_loader_criteria(
        Tenant,
        lambda cls: getattr(cls, "force_id", literal(None)) == force,
        include_aliases=True,
    )


def _scope_statement(
    conn: Connection,
    statement: Any,
    multiparams: Any,
    params: Any,
    execution_options: Any,
) -> tuple[Any, Any, Any]:
    force = execution_options.get(FORCE_OPTION, conn.get_execution_options().get(FORCE_OPTION))
    if not isinstance(force, int):
        return statement, multiparams, params
    if isinstance(statement, Insert) and statement.select is None:
        table = statement.table
        if isinstance(table, Table) and "force_id" in table.c:
            # Whatever the row said (a model dumped with force_id None, another force's id):
            # it is written into the force the connection works as.
            statement = statement.values(force_id=force)
            # Row parameters win over the statement's values: theirs are set too.
            multiparams = [_with_force(rows, force) for rows in multiparams]
            params = _with_force(params, force)
    elif isinstance(statement, Insert):
        # INSERT ... SELECT (planning): its rows are read in the force too.
        source = statement.select
        if isinstance(source, Select) and _is_orm(source):
            # On the INSERT itself: an option on the embedded SELECT is not applied.
            statement = statement.options(_criteria(force))
    elif isinstance(statement, Select | Update | Delete):
        if _is_orm(statement):
            statement = statement.options(_criteria(force))
        elif isinstance(statement, Update | Delete):
            target = statement.table
            if isinstance(target, Table) and "force_id" in target.c:
                statement = statement.where(target.c.force_id == force)
    return statement, multiparams, params


def _is_orm(statement: Any) -> bool:
    return bool(statement._propagate_attrs.get("compile_state_plugin") == "orm")


def _with_force(rows: Any, force: int) -> Any:
    if isinstance(rows, dict):
        return {**rows, "force_id": force} if rows else rows
    if isinstance(rows, list | tuple) and rows and all(isinstance(r, dict) for r in rows):
        return [{**r, "force_id": force} for r in rows]
    return rows


def _enter_force(conn: Connection) -> None:
    """PostgreSQL: a scoped transaction runs as the tenant role with its force set (both undone
    by the transaction's end, so a pooled connection goes back clean)."""
    force = conn.get_execution_options().get(FORCE_OPTION)
    if not isinstance(force, int):
        return
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # An int, so safe to write into the SQL; no parameters keeps it one round trip.
        cursor.execute(f"SET LOCAL ROLE {TENANT_ROLE}; SET LOCAL app.force_id = '{int(force)}'")
    finally:
        cursor.close()


@contextmanager
def as_owner(connection: Connection) -> Iterator[None]:
    """PostgreSQL: run the block as the connection's own user rather than the tenant role, for
    the two things that role cannot do: COPY into a table with row-level security (PostgreSQL
    refuses it) and ANALYZE (only the owner may). The store writes the force itself there
    (bulk.bulk_insert), so the first wall still holds; the role comes back after the block."""
    role = connection.dialect.name == "postgresql" and force_of(connection) is not None
    if role:
        connection.exec_driver_sql("RESET ROLE")
    yield
    # (Not after an error: the transaction is then aborted and will be rolled back, which undoes
    # the RESET too; a statement now would only hide the error that aborted it.)
    if role:
        connection.exec_driver_sql(f"SET LOCAL ROLE {TENANT_ROLE}")


def with_force_column(
    connection: Connection, table: Table, columns: list[str], rows: list[tuple[Any, ...]]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """For a bulk write that bypasses the column default: `force_id` from the scope added to
    each row of a force's table (unless the caller gave it)."""
    if "force_id" not in table.c or "force_id" in columns:
        return columns, rows
    force = force_of(connection)
    if force is None:
        raise NoForceScope(f"rows for {table.name} were written without a force scope")
    return [*columns, "force_id"], [(*row, force) for row in rows]
