"""Lossless downgrades: keep dropped columns and tables in archive tables, restore them on upgrade.

In a migration, one line before a drop and one line after the matching re-create:

    archive_columns(revision, "user_list", ["email"])   # downgrade, before dropping the column
    restore_columns(revision, "user_list", ["email"])   # upgrade, after adding it back

An archive is a table `migration_archive_<revision>_<table>` holding the key and the dropped
columns (or every column, for a dropped table) with their values as stored, registered in
`migration_archives` (see `catalog`). From the copy until the step commits, writers are held
off the table (see `fence`), so no write lands between the copy and the drop. Restoring copies
the rows back onto the rows that still exist (the others are dropped with the archive), puts
back the table's id high-water mark, and drops the archive. List or purge archives with
`python -m app.migrate archive`.
"""

import hashlib
import logging
from collections.abc import Sequence

from alembic import context, op
from alembic.util import CommandError
from sqlalchemy import Connection, inspect
from sqlalchemy.engine.interfaces import ReflectedForeignKeyConstraint

from app.backend import is_mysql
from app.config import get_settings
from app.migrate.capture import copy_in_chunks, drop_capture, start_capture
from app.migrate.catalog import (
    References,
    end_archive,
    high_water_mark,
    live_entries,
    record_archive,
)
from app.migrate.config import ARCHIVE_PREFIX
from app.migrate.fence import FenceError, existing_tables, held_fence, hold_writers_off
from app.migrate.id_marks import keep_ids_from, next_id

logger = logging.getLogger(__name__)

MAX_NAME = 64  # MySQL's identifier limit


class IrreversibleMigration(CommandError):
    """A migration step that would lose data, refused unless explicitly allowed."""


def archive_name(revision: str, table: str) -> str:
    name = f"{ARCHIVE_PREFIX}{revision}_{table}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def _quote(name: str) -> str:
    return op.get_context().dialect.identifier_preparer.quote(name)


def _table_exists(connection: Connection, name: str) -> bool:
    if is_mysql(connection.dialect):  # information_schema: also answers under LOCK TABLES
        return bool(existing_tables(connection, [name]))
    return inspect(connection).has_table(name)


def _create_empty_archive(archive: str, source: str, columns: Sequence[str], key: str) -> None:
    # CREATE TABLE ... AS SELECT keeps each column's exact type (and charset/collation on
    # MySQL), so what comes back is byte-identical. Made empty, before the fence: MySQL can
    # create no table under LOCK TABLES. A stale archive of the same step (left by a downgrade
    # that gave up before its drop) is replaced: the live data is the truth.
    a, s = _quote(archive), _quote(source)
    selected = ", ".join(_quote(c) for c in columns) if columns else "*"
    op.execute(f"DROP TABLE IF EXISTS {a}")
    if is_mysql(op.get_context().dialect):
        key_clause = f"(PRIMARY KEY ({_quote(key)}))"
        op.execute(f"CREATE TABLE {a} {key_clause} SELECT {selected} FROM {s} WHERE 1 = 0")  # noqa: S608
    else:
        op.execute(f"CREATE TABLE {a} AS SELECT {selected} FROM {s} WHERE 1 = 0")  # noqa: S608
        op.execute(f"CREATE UNIQUE INDEX {_quote(archive + '_key')} ON {a} ({_quote(key)})")


def _foreign_keys(connection: Connection, table: str, columns: Sequence[str]) -> References:
    """The archived columns that refer to rows of another table (single-column keys)."""
    refers = {}
    for fk in inspect(connection).get_foreign_keys(table):
        constrained, referred = fk["constrained_columns"], fk["referred_columns"]
        if len(constrained) == 1 and constrained[0] in columns:
            refers[constrained[0]] = (fk["referred_table"], referred[0])
    return refers


def _archive(revision: str, table: str, columns: Sequence[str], key: str, kind: str) -> None:
    archive = archive_name(revision, table)
    a, s = _quote(archive), _quote(table)
    if context.is_offline_mode():
        op.get_context().impl.static_output(
            f"-- the online run holds writers off {table} (LOCK TABLES on MySQL) from this copy "
            "until the step commits: keep writers away while this script runs"
        )
        _create_empty_archive(archive, table, columns, key)
        selected = ", ".join(_quote(c) for c in columns) if columns else "*"
        op.execute(f"INSERT INTO {a} SELECT {selected} FROM {s}")  # noqa: S608
        return
    connection = op.get_bind()
    refers = {key: (table, key), **_foreign_keys(connection, table, columns)}
    selected = ", ".join(_quote(c) for c in columns)
    copy_all = f"INSERT INTO {a} ({selected}) SELECT {selected} FROM {s}"  # noqa: S608
    fence = held_fence(connection)
    if fence is not None:  # a stale archive of this step, locked with the table since it began
        if archive not in fence.write:
            raise FenceError(
                f"cannot archive {table} in a step that already holds {sorted(fence.write)} "
                "locked (MySQL creates no table under LOCK TABLES): one archive per revision"
            )
        drop_capture(connection, archive)
        op.execute(f"DELETE FROM {a}")  # noqa: S608
        op.execute(copy_all)
    else:
        mysql = is_mysql(connection.dialect)
        if mysql:
            drop_capture(connection, archive)  # left by a run that died: they write into it
        _create_empty_archive(archive, table, columns, key)
        captured = False
        try:
            captured = mysql and start_capture(connection, table, archive, columns, key)
            if captured:
                copy_in_chunks(connection, table, archive, columns, key, get_settings())
            hold_writers_off(connection, [table, archive])
        except Exception:
            _abandon(connection, archive, triggers=mysql)
            raise
        if captured:
            drop_capture(connection, archive)  # under the fence: the archive is complete
        else:  # SQLite (one exclusive transaction), or MySQL without triggers: inside the fence
            op.execute(copy_all)
    record_archive(
        connection,
        archive=archive,
        revision=revision,
        source_table=table,
        kind=kind,
        refers=refers,
        next_id=next_id(connection, table, key),
    )


def _abandon(connection: Connection, archive: str, *, triggers: bool) -> None:
    """After giving up before the fence: drop the triggers, then the half-made archive."""
    quote = connection.dialect.identifier_preparer.quote
    try:
        if triggers:
            drop_capture(connection, archive)
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {quote(archive)}")
    except Exception:
        # The triggers keep the archive complete while they stay; the next run drops both.
        logger.warning("could not drop the archive %s after giving up", archive, exc_info=True)


def archive_columns(revision: str, table: str, columns: Sequence[str], *, key: str = "id") -> None:
    """Before dropping `columns` of `table`: keep their values, keyed by `key`."""
    _archive(revision, table, [key, *columns], key, "columns")


def restore_columns(revision: str, table: str, columns: Sequence[str], *, key: str = "id") -> None:
    """After re-adding `columns`: put back what `archive_columns` kept, then drop the archive.

    Only rows that still exist get their values back; the archived values of rows deleted
    meanwhile are dropped with the archive.
    """
    archive = archive_name(revision, table)
    if context.is_offline_mode():
        op.get_context().impl.static_output(f"-- offline mode: restore from {archive} skipped")
        return
    connection = op.get_bind()
    if not _table_exists(connection, archive):
        return
    hold_writers_off(connection, [table, archive])  # usually held since the step began
    a, t, k = _quote(archive), _quote(table), _quote(key)
    if is_mysql(connection.dialect):
        drop_capture(connection, archive)  # leftovers would write into what is restored
        # A join names the archive once: under LOCK TABLES each mention needs a lock of its own.
        sets = ", ".join(f"{t}.{_quote(c)} = {a}.{_quote(c)}" for c in columns)
        op.execute(f"UPDATE {t} INNER JOIN {a} ON {a}.{k} = {t}.{k} SET {sets}")  # noqa: S608
    else:
        sets = ", ".join(
            f"{_quote(c)} = (SELECT {a}.{_quote(c)} FROM {a} WHERE {a}.{k} = {t}.{k})"  # noqa: S608
            for c in columns
        )
        op.execute(f"UPDATE {t} SET {sets} WHERE {k} IN (SELECT {k} FROM {a})")  # noqa: S608
    op.execute(f"DROP TABLE {a}")
    end_archive(connection, archive, "restored")


def archive_table(revision: str, table: str, *, key: str = "id") -> None:
    """Before dropping `table`: keep all of its rows, and the next id it would hand out."""
    columns = (
        []  # offline --sql: no connection to list them, copy every column with *
        if context.is_offline_mode()
        else [c["name"] for c in inspect(op.get_bind()).get_columns(table)]
    )
    _archive(revision, table, columns, key, "table")


def restore_table(revision: str, table: str) -> None:
    """After re-creating `table`: its id high-water mark, then the rows `archive_table` kept.

    Rows whose foreign keys point at rows deleted meanwhile are dropped with the archive. The
    high-water mark is put back even if the archive was purged: ids are never handed out twice.
    """
    archive = archive_name(revision, table)
    if context.is_offline_mode():
        op.get_context().impl.static_output(f"-- offline mode: restore from {archive} skipped")
        return
    connection = op.get_bind()
    mark = high_water_mark(connection, table)
    archived = _table_exists(connection, archive)
    if mark is None and not archived:
        return
    foreign_keys = inspect(connection).get_foreign_keys(table)
    referred = {fk["referred_table"] for fk in foreign_keys} - {table}
    hold_writers_off(connection, [table, *([archive] if archived else [])], read_only=referred)
    if archived and is_mysql(connection.dialect):
        drop_capture(connection, archive)
    if mark is not None:
        keep_ids_from(connection, table, mark)
    if not archived:
        return
    inspector = inspect(connection)
    kept = {c["name"] for c in inspector.get_columns(archive)}
    names = [c["name"] for c in inspector.get_columns(table) if c["name"] in kept]
    a, t = _quote(archive), _quote(table)
    columns = ", ".join(_quote(n) for n in names)
    where = _rows_still_referred(a, foreign_keys, table, kept)
    op.execute(f"INSERT INTO {t} ({columns}) SELECT {columns} FROM {a}{where}")  # noqa: S608
    op.execute(f"DROP TABLE {a}")
    end_archive(connection, archive, "restored")


def _rows_still_referred(
    archive: str, foreign_keys: Sequence[ReflectedForeignKeyConstraint], table: str, kept: set[str]
) -> str:
    """` WHERE ...` keeping archived rows whose foreign keys point at rows that still exist."""
    conditions = []
    for fk in foreign_keys:
        constrained, referred = fk["constrained_columns"], fk["referred_columns"]
        referred_table = fk["referred_table"]
        if referred_table == table or not set(constrained) <= kept:
            continue  # a self-reference is restored whole; a key not archived has nothing to do
        mine = [f"{archive}.{_quote(c)}" for c in constrained]
        theirs = ", ".join(_quote(c) for c in referred)
        target = mine[0] if len(mine) == 1 else f"({', '.join(mine)})"
        nulls = " OR ".join(f"{m} IS NULL" for m in mine)
        conditions.append(
            f"({nulls} OR {target} IN (SELECT {theirs} FROM {_quote(referred_table)}))"  # noqa: S608
        )
    return (" WHERE " + " AND ".join(conditions)) if conditions else ""


def refuse_data_loss(revision: str, reason: str) -> None:
    """Call first in a step that cannot be reversed without loss: it refuses unless allowed."""
    if get_settings().migration_allow_data_loss:
        op.get_context().impl.static_output(f"-- {revision}: data loss allowed: {reason}")
        return
    raise IrreversibleMigration(
        f"migration {revision} cannot be reversed without losing data: {reason}. "
        "Set MIGRATION_ALLOW_DATA_LOSS=1 to run it anyway, deliberately."
    )


def fence_pending_restores(connection: Connection, revision: str) -> None:
    """As a step of `revision` starts: hold writers off the tables it will restore into.

    A restore must not overwrite a write that lands after the column is re-added and before
    its values are copied back, so the fence starts before the step's first statement. Only
    tables that exist can be locked: a table the step re-creates is fenced by `restore_table`
    right after its CREATE (MySQL creates no table under LOCK TABLES).
    """
    if not is_mysql(connection.dialect):
        return
    entries = [e for e in live_entries(connection) if e.revision == revision]
    names = {e.archive for e in entries} | {e.source_table for e in entries}
    present = existing_tables(connection, names)
    tables = []
    for entry in entries:
        if entry.archive in present and entry.source_table in present:
            tables += [entry.source_table, entry.archive]
    if not tables:
        return
    referred = {t for e in entries for t, _column in e.refers.values()}
    hold_writers_off(connection, tables, read_only=existing_tables(connection, referred))
    for archive in tables[1::2]:
        drop_capture(connection, archive)  # a run that died while copying left them
