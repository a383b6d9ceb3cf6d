"""Read a test database as the migration tests compare it: schema, rows, sample data."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, inspect, text

from app.backend import is_mysql, is_sqlite
from app.migrate.config import is_bookkeeping_table
from app.usernames import username_key

# Columns derived from others of the same row: a sample row holds what the app would write, as
# the migration that adds such a column recomputes it (an arbitrary value would not come back).
DERIVED: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("user_list", "username_key"): lambda row: username_key(row["username"]),
}


def schema_snapshot(connection: Connection) -> dict[str, Any]:
    """Everything about the service's tables that a migration can change (archives excluded)."""
    inspector = inspect(connection)
    snapshot: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        if is_bookkeeping_table(table):
            continue
        columns = [
            (
                c["name"],
                str(c["type"].compile(dialect=connection.dialect)),
                c["nullable"],
                c.get("default"),
                c.get("autoincrement"),
            )
            for c in inspector.get_columns(table)
        ]
        snapshot[table] = {
            "columns": columns,
            "pk": inspector.get_pk_constraint(table),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (i["name"] or "", tuple(str(c) for c in i["column_names"]), i["unique"])
                for i in inspector.get_indexes(table)
            ),
            "foreign_keys": inspector.get_foreign_keys(table),
        }
        if is_mysql(connection.dialect):
            ddl = connection.exec_driver_sql(f"SHOW CREATE TABLE `{table}`").one()[1]
            snapshot[table]["ddl"] = " ".join(
                part for part in ddl.split() if not part.startswith("AUTO_INCREMENT=")
            )
        elif is_sqlite(connection.dialect):
            # The DDL as stored; batch mode's rename back quotes the table name, nothing else.
            stored = connection.exec_driver_sql(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? ORDER BY name",
                (table,),
            )
            snapshot[table]["ddl"] = [
                (kind, name, (sql or "").replace(f'"{table}"', table)) for kind, name, sql in stored
            ]
    return snapshot


def table_rows(connection: Connection) -> dict[str, list[dict[str, Any]]]:
    """Every row of every service table, ordered by its first column."""
    rows = {}
    for table in sorted(inspect(connection).get_table_names()):
        if is_bookkeeping_table(table):
            continue
        result = connection.execute(text(f"SELECT * FROM {table} ORDER BY 1"))
        rows[table] = [dict(r._mapping) for r in result]
    return rows


def insert_sample_rows(connection: Connection, tag: str) -> None:
    """One row in every service table, every column filled with a value of its type."""
    inspector = inspect(connection)
    for table in inspector.get_table_names():
        if is_bookkeeping_table(table):
            continue
        values: dict[str, Any] = {}
        key = set(inspector.get_pk_constraint(table)["constrained_columns"])
        for column in inspector.get_columns(table):
            if column["name"] in key and _is_integer(column["type"]):
                continue  # integer primary keys number themselves
            values[column["name"]] = sample_value(column["type"], tag)
        for (derived_table, name), derive in DERIVED.items():
            if derived_table == table and name in values:
                values[name] = derive(values)
        names = ", ".join(values)
        marks = ", ".join(f":{n}" for n in values)
        connection.execute(
            text(f"INSERT INTO {table} ({names}) VALUES ({marks})"),
            values,
        )


def _is_integer(type_: Any) -> bool:
    try:
        return bool(type_.python_type is int)
    except NotImplementedError:
        return False


def sample_value(type_: Any, tag: str) -> Any:
    python_type: type | None
    try:
        python_type = type_.python_type
    except NotImplementedError:
        python_type = None
    if python_type is str:
        length = getattr(type_, "length", None) or 40
        return f"{tag}é😀"[:length] if length >= 4 else tag[:length]
    if python_type is int:
        return 7
    if python_type is bool:
        return True
    if python_type is datetime:  # whole seconds: MariaDB's DATETIME keeps no fraction
        return datetime(2026, 11, 25, 16, 33, 8)
    return f"{tag}"


def column_names(connection: Connection, table: str) -> Sequence[str]:
    return [c["name"] for c in inspect(connection).get_columns(table)]
