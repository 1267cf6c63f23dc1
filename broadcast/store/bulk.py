"""Fast bulk inserts: COPY on PostgreSQL, one prepared executemany on SQLite.

The ORM's bulk path spends most of its time per row in Python; imports and fan-out write
hundreds of thousands of rows, so they bypass it here, converting values with the column types'
own bind processors so what lands is exactly what the ORM would have written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Select,
    String,
    Table,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstrumentedAttribute

from broadcast.store import tenancy


def bulk_insert(
    connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Insert rows given as tuples in `columns` order."""
    if not rows:
        return
    names, rows = tenancy.with_force_column(connection, table, list(columns), rows)
    if connection.dialect.name == "postgresql":
        with tenancy.as_owner(connection):
            _copy(connection, table, names, rows)
    else:
        _executemany(connection, table, names, rows)


def bulk_insert_returning_ids(
    connection: Connection, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> list[int]:
    """Insert rows into a table with an integer `id` key; the new ids, in the rows' order."""
    if not rows:
        return []
    if connection.dialect.name == "postgresql":
        sequence = f"{table.name}_id_seq"
        ids = list(
            connection.execute(
                text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"),
                {"n": len(rows)},
            ).scalars()
        )
        with_ids = [(i, *r) for i, r in zip(ids, rows, strict=True)]
        bulk_insert(connection, table, ["id", *columns], with_ids)
        return ids
    bulk_insert(connection, table, columns, rows)
    # SQLite gives a rowid table max(rowid)+1 for each new row, and this transaction holds the
    # database's only write lock from its first INSERT, so the new ids are the last len(rows).
    last = connection.exec_driver_sql(f'SELECT max(id) FROM "{table.name}"').scalar_one()
    return list(range(last - len(rows) + 1, last + 1))


def _copy(
    connection: Connection, table: Table, columns: list[str], values: list[tuple[Any, ...]]
) -> None:
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    names = ", ".join(f'"{c}"' for c in columns)
    statement = f'COPY "{table.name}" ({names}) FROM STDIN'
    driver_error = connection.dialect.loaded_dbapi.Error
    try:
        with cursor.copy(statement) as copy:
            for row in values:
                copy.write_row(row)
    except driver_error as error:
        # As SQLAlchemy wraps what it executes itself (IntegrityError for a unique key...), so
        # callers catch one family of errors whichever path wrote the rows.
        raise DBAPIError.instance(statement, None, error, driver_error) from error


def _executemany(
    connection: Connection, table: Table, columns: list[str], values: list[tuple[Any, ...]]
) -> None:
    dialect = connection.dialect
    processors = [table.c[column].type._cached_bind_processor(dialect) for column in columns]
    if any(processors):
        # Convert column by column (transposing is done in C); batches repeat values (one
        # timestamp per batch), so each distinct value is converted once.
        by_column = list(zip(*values, strict=True))
        for index, processor in enumerate(processors):
            if processor is not None:
                memo: dict[Any, Any] = {None: None}
                by_column[index] = tuple(
                    memo[v] if v in memo else memo.setdefault(v, processor(v))
                    for v in by_column[index]
                )
        values = list(zip(*by_column, strict=True))
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', values)


def one_of(
    connection: Connection,
    column: ColumnElement[Any] | InstrumentedAttribute[Any],
    values: Sequence[Any],
) -> ColumnElement[bool]:
    """`column IN values` with the values sent as one JSON parameter and unpacked by the database.

    A plain IN list becomes thousands of bind parameters, each handled in Python by SQLAlchemy
    and the driver; one JSON string is handled in C on both sides.
    """
    payload = bindparam(None, json.dumps(list(values)), type_=String)
    if connection.dialect.name == "postgresql":
        element: ColumnElement[Any] = func.json_array_elements_text(
            cast(payload, JSON)
        ).column_valued("value")
        if not isinstance(column.type, String):
            element = cast(element, column.type)
        # `= ANY(ARRAY(...))` rather than `IN (SELECT ...)`: the planner guesses 100 rows for the
        # JSON function either way, but only this form keeps to the column's index instead of
        # hashing the values and scanning the whole table.
        return column == any_(func.array(select(element).scalar_subquery()))
    members: Select[Any] = select(literal_column("value")).select_from(func.json_each(payload))
    return column.in_(members.scalar_subquery())


def prefer_indexes(connection: Connection) -> None:
    """For the rest of this transaction, have PostgreSQL look rows up through their indexes.

    A table an import is filling has no planner statistics yet, and the planner then guesses
    that a scan of the whole table is cheaper than probing an index for each value of a
    `one_of` list, which costs rows x values comparisons (seen: 1.5 s for one lookup of 12,500
    contact points in a 5,000-row table, against 30 ms through the indexes).
    """
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")


def refresh_statistics(connection: Connection, *tables: str) -> None:
    """ANALYZE these tables on PostgreSQL, after writing many rows to them: what follows a bulk
    write (claims, targeted planning) comes at once, before autovacuum has caught up or where it
    is off, and without statistics the planner picks scans that cost many times the right plan
    (measured in docs/performance.md). SQLite's planner does without."""
    if connection.dialect.name == "postgresql":
        with tenancy.as_owner(connection):
            connection.exec_driver_sql(f"ANALYZE {', '.join(tables)}")
